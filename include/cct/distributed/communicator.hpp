// What a data-parallel training loop needs from the processes it runs in: who am I (rank), how many
// are we (size), sums across all of them, copies from one of them, and a barrier. The interface has no
// MPI in it, so the training layer (cct/train) is written once for one process and for many; a single
// process uses `Communicator::local()`, whose operations do nothing, and cct/distributed/mpi_world.hpp
// implements it with MPI for `mpirun -np N`.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace cct::distributed {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  bool is_root() const { return rank() == 0; }

  // In-place sums over all ranks of `count` elements: afterwards every rank holds the same sums.
  virtual void all_reduce_sum(float* data, int64_t count) = 0;
  virtual void all_reduce_sum(double* data, int64_t count) = 0;
  virtual void all_reduce_sum(int64_t* data, int64_t count) = 0;
  // In-place copies of rank `root`'s `count` elements into every rank.
  virtual void broadcast(float* data, int64_t count, int root = 0) = 0;
  virtual void broadcast(double* data, int64_t count, int root = 0) = 0;
  virtual void broadcast(int64_t* data, int64_t count, int root = 0) = 0;
  virtual void barrier() = 0;

  // "rank 1 of 4" in messages; empty for a single process, whose messages need no rank.
  std::string where() const {
    return size() > 1 ? "rank " + std::to_string(rank()) + " of " + std::to_string(size()) : std::string();
  }

  // Scalar conveniences over the array forms.
  double sum(double value) {
    all_reduce_sum(&value, 1);
    return value;
  }
  int64_t sum(int64_t value) {
    all_reduce_sum(&value, 1);
    return value;
  }
  bool any(bool value) { return sum(static_cast<int64_t>(value)) > 0; }
  int64_t broadcast_value(int64_t value, int root = 0) {
    broadcast(&value, 1, root);
    return value;
  }
  double broadcast_value(double value, int root = 0) {
    broadcast(&value, 1, root);
    return value;
  }

  // One process: every operation leaves the data as it is.
  static Communicator& local();
};

namespace detail {
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(float*, int64_t) override {}
  void all_reduce_sum(double*, int64_t) override {}
  void all_reduce_sum(int64_t*, int64_t) override {}
  void broadcast(float*, int64_t, int) override {}
  void broadcast(double*, int64_t, int) override {}
  void broadcast(int64_t*, int64_t, int) override {}
  void barrier() override {}
};
}  // namespace detail

inline Communicator& Communicator::local() {
  static detail::LocalCommunicator single;
  return single;
}

// Sends this process's standard output to /dev/null unless it is rank 0, so that a job prints one
// progress bar and one set of results; errors (stderr) still come from every rank.
inline void quiet_unless_root(const Communicator& world) {
  if (!world.is_root() && !std::freopen("/dev/null", "w", stdout)) std::fclose(stdout);
}

}  // namespace cct::distributed
