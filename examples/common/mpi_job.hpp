// Joining an MPI job for the life of a trainer's main(): under mpirun (in a build with MPI, where CMake
// defines CCT_WITH_MPI), MPI is initialised, trainer_cli::world() becomes the job, only rank 0 prints,
// and an error on any rank ends the whole job (MPI_Abort) instead of leaving the others waiting.
// Started without mpirun, or built without MPI, the trainer is one process as before.
#pragma once

#include <memory>

#ifdef CCT_WITH_MPI
#include <cct/distributed/mpi_world.hpp>
#endif

#include "cli.hpp"

namespace trainer_cli {

class MpiJob {
 public:
  MpiJob(int& argc, char**& argv) {
#ifdef CCT_WITH_MPI
    if (!cct::distributed::MpiWorld::launched_by_mpirun()) return;
    world_ = std::make_unique<cct::distributed::MpiWorld>(&argc, &argv);
    current_world = world_.get();
    abort_job = [world = world_.get()](int code) { world->abort(code); };
    cct::distributed::quiet_unless_root(*world_);
#else
    (void)argc;
    (void)argv;
#endif
  }
  MpiJob(const MpiJob&) = delete;
  MpiJob& operator=(const MpiJob&) = delete;
  ~MpiJob() {
    current_world = &cct::distributed::Communicator::local();
    abort_job = nullptr;
  }

 private:
#ifdef CCT_WITH_MPI
  std::unique_ptr<cct::distributed::MpiWorld> world_;
#endif
};

}  // namespace trainer_cli
