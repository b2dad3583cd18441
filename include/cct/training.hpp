// The training layer: fit(Task) with its run folder, checkpoints, evaluation, progress bar, metrics,
// plots, and the MPI-free part of data-parallel training (cct/distributed/mpi_world.hpp, which needs
// MPI, is included on its own).
#pragma once

#include "train/confusion_matrix.hpp"
#include "train/evaluate.hpp"
#include "train/fit.hpp"
#include "train/metrics_log.hpp"
#include "train/plots.hpp"
#include "train/progress.hpp"
#include "train/run_folder.hpp"
#include "train/terminal.hpp"
#include "train/training_state.hpp"
#include "train/weight_average.hpp"
#include "distributed/communicator.hpp"
#include "distributed/gradients.hpp"
