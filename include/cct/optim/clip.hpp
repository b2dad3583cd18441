// Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_) and a finiteness check of the
// gradients (for detecting a diverged step in the trainer).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "../autograd/grad_mode.hpp"
#include "../config.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "optimizer.hpp"

namespace cct::optim {

namespace detail {
// Sum of squares of every defined gradient, in double. The work is cut into fixed blocks whose
// partial sums are added in order, so the result does not depend on the thread count.
template <typename T>
double grad_sum_of_squares(const std::vector<Tensor<T>>& grads) {
  constexpr int64_t kBlock = 1 << 15;
  struct Block {
    const T* data;
    int64_t count;
  };
  std::vector<Block> blocks;
  for (const Tensor<T>& grad : grads)
    for (int64_t start = 0; start < grad.numel(); start += kBlock)
      blocks.push_back({grad.data() + start, std::min(kBlock, grad.numel() - start)});
  std::vector<double> partial(blocks.size(), 0.0);
  parallel_for(0, static_cast<int64_t>(blocks.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> values(blocks[b].data, blocks[b].count);
      partial[b] = values.template cast<double>().square().sum();
    }
  });
  double total = 0.0;
  for (double value : partial) total += value;
  return total;
}
}  // namespace detail

// Scales the gradients of `params` in place so that their global L2 norm (all gradients taken as one
// vector) is at most max_norm, and returns the norm before clipping (computed in double).
// As PyTorch: the factor is max_norm / (norm + 1e-6), applied only when below 1; parameters without a
// gradient are ignored; no gradients at all gives 0. Unlike PyTorch, a non-finite norm leaves the
// gradients as they are (PyTorch multiplies them by NaN): check grads_finite() to skip such a step.
template <typename T>
double clip_grad_norm_(const std::vector<Tensor<T>>& params, double max_norm) {
  CCT_CHECK(max_norm > 0.0, "clip_grad_norm_: max_norm must be > 0, got ", max_norm);
  std::vector<Tensor<T>> grads;
  for (const Tensor<T>& param : params)
    if (param.defined() && param.grad().defined()) grads.push_back(param.grad());
  if (grads.empty()) return 0.0;
  const double total_norm = std::sqrt(detail::grad_sum_of_squares(grads));
  if (!std::isfinite(total_norm)) return total_norm;
  const double clip_coef = max_norm / (total_norm + 1e-6);
  if (clip_coef < 1.0) {
    NoGradGuard no_grad;
    const T scale = static_cast<T>(clip_coef);
    for (const Tensor<T>& grad : grads) {
      T* data = grad.data();
      parallel_for(0, grad.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) data[k] *= scale;
      });
    }
  }
  return total_norm;
}

// The same for named parameters (Module::named_parameters()).
template <typename T>
double clip_grad_norm_(const NamedTensors<T>& named_params, double max_norm) {
  std::vector<Tensor<T>> params;
  params.reserve(named_params.size());
  for (const auto& entry : named_params) params.push_back(entry.second);
  return clip_grad_norm_(params, max_norm);
}

// The name of the first parameter (in the given order) whose gradient holds a NaN or an infinity, or
// nullopt when every defined gradient is finite:
//   if (auto bad = grads_finite(model.named_parameters())) { /* skip the step, report *bad */ }
template <typename T>
std::optional<std::string> grads_finite(const NamedTensors<T>& named_params) {
  for (const auto& [name, param] : named_params) {
    if (!param.defined()) continue;
    const Tensor<T> grad = param.grad();
    if (!grad.defined()) continue;
    if (!Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(grad.data(), grad.numel()).allFinite()) return name;
  }
  return std::nullopt;
}

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPTIM_CLIP_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE double clip_grad_norm_<T>(const std::vector<Tensor<T>>&, double); \
  CCT_EXTERN_TEMPLATE double clip_grad_norm_<T>(const NamedTensors<T>&, double); \
  CCT_EXTERN_TEMPLATE std::optional<std::string> grads_finite<T>(const NamedTensors<T>&);
CCT_FOR_FLOATING_TYPES(CCT_OPTIM_CLIP_TEMPLATES)
#undef CCT_OPTIM_CLIP_TEMPLATES
#endif

}  // namespace cct::optim
