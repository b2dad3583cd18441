// The MPI implementation of Communicator, for programs started with `mpirun -np N`. Needs <mpi.h> and
// MPI's libraries: link the CMake target cct::distributed (present when CMake finds MPI). The rest of
// cct stays header-only and MPI-free.
//
//   cct::distributed::MpiWorld world(argc, argv);   // MPI_Init; MPI_Finalize when it goes out of scope
//   cct::distributed::GradientAverager average(model);
//   ... loss.backward(); average(world); optimizer.step();
//
// Errors end the whole job: a rank that throws should call world.abort(code) (MPI_Abort kills every
// rank, so the others never wait forever in a collective), and mpirun ends the job when a rank dies.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>

#include "../config.hpp"
#include "communicator.hpp"

namespace cct::distributed {

class MpiWorld final : public Communicator {
 public:
  // True when this process was started by an MPI launcher (Open MPI's mpirun, or a PMI/PMIx one such
  // as srun or MPICH's hydra): a program can then choose MpiWorld, and Communicator::local() otherwise
  // (MPI_Init in a process started without mpirun is slow and, in containers, noisy).
  static bool launched_by_mpirun() {
    for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
      if (std::getenv(variable)) return true;
    return false;
  }

  MpiWorld(int* argc, char*** argv) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      // Only the main thread calls MPI (the data loader's threads and OpenMP never do).
      int provided = 0;
      MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
      owns_ = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  MpiWorld(const MpiWorld&) = delete;
  MpiWorld& operator=(const MpiWorld&) = delete;
  ~MpiWorld() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owns_ && !finalized) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void all_reduce_sum(float* data, int64_t count) override { reduce(data, count, MPI_FLOAT); }
  void all_reduce_sum(double* data, int64_t count) override { reduce(data, count, MPI_DOUBLE); }
  void all_reduce_sum(int64_t* data, int64_t count) override { reduce(data, count, MPI_INT64_T); }
  void broadcast(float* data, int64_t count, int root) override { bcast(data, count, MPI_FLOAT, root); }
  void broadcast(double* data, int64_t count, int root) override { bcast(data, count, MPI_DOUBLE, root); }
  void broadcast(int64_t* data, int64_t count, int root) override { bcast(data, count, MPI_INT64_T, root); }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }

  // Ends every rank of the job with `code` (what a rank that hit an error calls after reporting it).
  [[noreturn]] void abort(int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
  }

 private:
  // MPI counts are int: larger messages go in chunks.
  static int chunk(int64_t left) { return static_cast<int>(std::min<int64_t>(left, std::numeric_limits<int>::max())); }

  template <typename T>
  void reduce(T* data, int64_t count, MPI_Datatype type) {
    for (int64_t done = 0; done < count;) {
      const int n = chunk(count - done);
      MPI_Allreduce(MPI_IN_PLACE, data + done, n, type, MPI_SUM, MPI_COMM_WORLD);
      done += n;
    }
  }
  template <typename T>
  void bcast(T* data, int64_t count, MPI_Datatype type, int root) {
    CCT_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " is not a rank of this job of ", size_);
    for (int64_t done = 0; done < count;) {
      const int n = chunk(count - done);
      MPI_Bcast(data + done, n, type, root, MPI_COMM_WORLD);
      done += n;
    }
  }

  int rank_ = 0, size_ = 1;
  bool owns_ = false;
};

}  // namespace cct::distributed
