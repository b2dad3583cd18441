// cct: the umbrella header: every public header but cct/distributed/mpi_world.hpp (which needs MPI).
// A program that needs less includes less (compile time): cct/library.hpp is the core library,
// cct/image_data.hpp and cct/text_data.hpp the data readers and loaders, cct/training.hpp the training
// layer.
#pragma once

#include "library.hpp"
#include "image_data.hpp"
#include "text_data.hpp"
#include "training.hpp"
