// Data-parallel pieces that work on a model: averaging every gradient across ranks in one fused
// allreduce, and copying rank 0's parameters to every rank at the start. MPI-free: they talk to a
// Communicator (cct/distributed/mpi_world.hpp for mpirun, Communicator::local() for one process).
//
//   GradientAverager average(model);          // once: sizes one contiguous buffer
//   loss.backward(); average(world);          // every step, before optimizer.step()
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "../config.hpp"
#include "../nn/module.hpp"
#include "communicator.hpp"

namespace cct::distributed {

// Averages the gradients of a model's trainable parameters over all ranks: one pack into a buffer
// allocated once, one in-place allreduce (a call per tensor would pay the latency ~50 times a step),
// one unpack with the 1/size scale. A parameter whose gradient is undefined on this rank (not used in
// this step) contributes zeros, so every rank sends the same layout. `extra` scalars (e.g. the loss)
// ride in the same message and come back summed, not averaged.
class GradientAverager {
 public:
  explicit GradientAverager(const nn::Module<float>& model) {
    for (const auto& entry : model.named_parameters())
      if (entry.second.requires_grad()) {
        params_.push_back(entry.second);
        total_ += entry.second.numel();
      }
  }

  int64_t numel() const { return total_; }
  int64_t bytes() const { return total_ * static_cast<int64_t>(sizeof(float)); }

  void operator()(Communicator& world, std::vector<float>* extra = nullptr) {
    if (world.size() == 1) return;  // a single process averages nothing: bit-identical to no averaging
    const int64_t extras = extra ? static_cast<int64_t>(extra->size()) : 0;
    buffer_.resize(static_cast<size_t>(total_ + extras));  // allocates on the first step only
    float* cursor = buffer_.data();
    for (const Tensor<float>& param : params_) {
      const Tensor<float> grad = param.grad();
      if (grad.defined()) std::memcpy(cursor, grad.data(), sizeof(float) * static_cast<size_t>(param.numel()));
      else std::memset(cursor, 0, sizeof(float) * static_cast<size_t>(param.numel()));
      cursor += param.numel();
    }
    if (extras) std::memcpy(cursor, extra->data(), sizeof(float) * static_cast<size_t>(extras));
    world.all_reduce_sum(buffer_.data(), total_ + extras);
    const float scale = 1.0f / static_cast<float>(world.size());
    cursor = buffer_.data();
    for (Tensor<float>& param : params_) {
      if (!param.grad().defined()) param.set_grad(Tensor<float>::zeros(param.shape()));  // receives the average
      float* grad = param.grad().data();
      for (int64_t i = 0; i < param.numel(); ++i) grad[i] = cursor[i] * scale;
      cursor += param.numel();
    }
    if (extras) std::memcpy(extra->data(), cursor, sizeof(float) * static_cast<size_t>(extras));
  }

 private:
  std::vector<Tensor<float>> params_;
  int64_t total_ = 0;
  std::vector<float> buffer_;
};

// Copies rank `root`'s parameters and buffers into every rank (one message each), so that ranks that
// initialised or loaded differently start from the same weights.
inline void broadcast_parameters(nn::Module<float>& model, Communicator& world, int root = 0) {
  if (world.size() == 1) return;
  std::vector<Tensor<float>> tensors;
  int64_t total = 0;
  for (const auto& entry : model.named_parameters()) tensors.push_back(entry.second), total += entry.second.numel();
  for (const auto& entry : model.named_buffers()) tensors.push_back(entry.second), total += entry.second.numel();
  std::vector<float> buffer(static_cast<size_t>(total));
  float* cursor = buffer.data();
  for (const Tensor<float>& t : tensors) {
    std::memcpy(cursor, t.data(), sizeof(float) * static_cast<size_t>(t.numel()));
    cursor += t.numel();
  }
  world.broadcast(buffer.data(), total, root);
  cursor = buffer.data();
  for (const Tensor<float>& t : tensors) {
    std::memcpy(t.data(), cursor, sizeof(float) * static_cast<size_t>(t.numel()));
    cursor += t.numel();
  }
}

}  // namespace cct::distributed
