// cross_entropy: mean classification loss over a batch of logits, with class-index targets (and
// optional label smoothing) or with soft target distributions (mixup / cutmix). Log-softmax is fused in.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../autograd/node.hpp"
#include "../core/parallel.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "softmax.hpp"
#include "registry.hpp"

namespace cct {

namespace detail {

template <typename T>
void check_logits(const Tensor<T>& logits, const char* op) {
  CCT_CHECK_SHAPE(logits.dim() == 2, op, ": logits must be (batch, classes), got shape ", shape_str(logits.shape()));
  CCT_CHECK_SHAPE(logits.size(0) > 0 && logits.size(1) > 0, op,
                  ": logits need at least one sample and one class, got shape ", shape_str(logits.shape()));
}

// Row-wise log-softmax of (B, C) logits.
template <typename T>
Tensor<T> row_log_softmax(const Tensor<T>& logits) {
  LineLayout layout;
  layout.outer = logits.size(0);
  layout.dim_size = logits.size(1);
  return softmax_forward<T, true>(logits, layout);
}

// Sums per-row losses in row order (double), so the loss does not depend on the thread count.
inline double ordered_sum(const std::vector<double>& values) {
  double total = 0;
  for (double v : values) total += v;
  return total;
}

}  // namespace detail

// ---- cross_entropy with class indices ---------------------------------------------------------------
// loss = (1/B) Σ_b Σ_c −t_bc · log_softmax(logits)_bc,  t_b = (1 − ε)·onehot(target_b) + ε/C
// (PyTorch's label smoothing). ∂loss/∂logits = (softmax(logits) − t) / B. Saves the log-probabilities.
// Targets must lie in [0, C); the result is a scalar (shape ()).
template <typename T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const Tensor<int64_t>& targets, double label_smoothing = 0.0) {
  detail::check_logits(logits, "cross_entropy");
  const int64_t batch = logits.size(0), classes = logits.size(1);
  CCT_CHECK_SHAPE(targets.shape() == Shape{batch}, "cross_entropy: targets of shape ", shape_str(targets.shape()),
                  " do not match logits of shape ", shape_str(logits.shape()), "; expected (", batch, ",)");
  CCT_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
            "cross_entropy: label_smoothing must be in [0, 1], got ", label_smoothing);
  const int64_t* pt = targets.data();
  for (int64_t b = 0; b < batch; ++b)
    CCT_CHECK(pt[b] >= 0 && pt[b] < classes, "cross_entropy: target ", pt[b], " of sample ", b,
              " is out of range for C = ", classes, " classes (valid: 0 to ", classes - 1, ")");

  const Tensor<T> log_probs = detail::row_log_softmax(logits);
  const T* lp = log_probs.data();
  const double on_target = 1.0 - label_smoothing;
  const double uniform = label_smoothing / static_cast<double>(classes);
  std::vector<double> row_loss(static_cast<size_t>(batch));
  parallel_for(0, batch, std::max<int64_t>(1, (int64_t{1} << 14) / classes), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const T* row = lp + b * classes;
      double loss = -on_target * static_cast<double>(row[pt[b]]);
      if (uniform != 0.0) {
        double sum = 0;
        for (int64_t c = 0; c < classes; ++c) sum += row[c];
        loss -= uniform * sum;
      }
      row_loss[static_cast<size_t>(b)] = loss;
    }
  });
  Tensor<T> out = Tensor<T>::scalar(static_cast<T>(detail::ordered_sum(row_loss) / static_cast<double>(batch)));

  if (autograd::any_requires_grad<T>({&logits}))
    autograd::record<T>(
        "cross_entropy", out, {logits},
        [log_probs, targets = targets.clone(), on_target, uniform, batch, classes](const Tensor<T>& g,
                                                                                    const autograd::NeedsGrad&) {
          Tensor<T> grad = Tensor<T>::empty(log_probs.shape());
          const T scale = g.item() / static_cast<T>(batch);
          const T* lp = log_probs.data();
          const int64_t* pt = targets.data();
          T* pg = grad.data();
          parallel_for(0, batch, std::max<int64_t>(1, (int64_t{1} << 14) / classes), [&](int64_t begin, int64_t end) {
            for (int64_t b = begin; b < end; ++b)
              for (int64_t c = 0; c < classes; ++c) {
                const double target = uniform + (c == pt[b] ? on_target : 0.0);
                pg[b * classes + c] = scale * static_cast<T>(std::exp(lp[b * classes + c]) - static_cast<T>(target));
              }
          });
          return autograd::GradList<T>{grad};
        });
  return out;
}

// ---- cross_entropy with soft targets (B, C) -----------------------------------------------------------
// loss = (1/B) Σ_b Σ_c −t_bc · log_softmax(logits)_bc. The targets are constants (no gradient flows to
// them); they need not sum to one: ∂loss/∂logits_bc = (softmax_bc · Σ_c' t_bc' − t_bc) / B.
// Saves the log-probabilities and the targets.
template <typename T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const Tensor<T>& soft_targets) {
  detail::check_logits(logits, "cross_entropy (soft targets)");
  CCT_CHECK_SHAPE(soft_targets.shape() == logits.shape(), "cross_entropy (soft targets): targets of shape ",
                  shape_str(soft_targets.shape()), " do not match logits of shape ", shape_str(logits.shape()));
  const int64_t batch = logits.size(0), classes = logits.size(1);

  const Tensor<T> log_probs = detail::row_log_softmax(logits);
  const T* lp = log_probs.data();
  const T* pt = soft_targets.data();
  std::vector<double> row_loss(static_cast<size_t>(batch));
  parallel_for(0, batch, std::max<int64_t>(1, (int64_t{1} << 14) / classes), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      double loss = 0;
      // A zero target weight contributes nothing, even against a log-probability of −∞.
      for (int64_t c = 0; c < classes; ++c)
        if (pt[b * classes + c] != T(0)) loss -= static_cast<double>(pt[b * classes + c]) * lp[b * classes + c];
      row_loss[static_cast<size_t>(b)] = loss;
    }
  });
  Tensor<T> out = Tensor<T>::scalar(static_cast<T>(detail::ordered_sum(row_loss) / static_cast<double>(batch)));

  if (autograd::any_requires_grad<T>({&logits}))
    autograd::record<T>(
        "cross_entropy_soft", out, {logits},
        [log_probs, targets = soft_targets.detach(), batch, classes](const Tensor<T>& g, const autograd::NeedsGrad&) {
          Tensor<T> grad = Tensor<T>::empty(log_probs.shape());
          const T scale = g.item() / static_cast<T>(batch);
          const T* lp = log_probs.data();
          const T* pt = targets.data();
          T* pg = grad.data();
          parallel_for(0, batch, std::max<int64_t>(1, (int64_t{1} << 14) / classes), [&](int64_t begin, int64_t end) {
            for (int64_t b = begin; b < end; ++b) {
              T target_mass = T(0);
              for (int64_t c = 0; c < classes; ++c) target_mass += pt[b * classes + c];
              for (int64_t c = 0; c < classes; ++c) {
                const int64_t i = b * classes + c;
                pg[i] = scale * (std::exp(lp[i]) * target_mass - pt[i]);
              }
            }
          });
          return autograd::GradList<T>{grad};
        });
  return out;
}

// The names this header's backward nodes carry (ops/registry.hpp; each has a gradient check).
CCT_REGISTER_OPS(loss, "cross_entropy", "cross_entropy_soft");

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPS_LOSS_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE Tensor<T> cross_entropy<T>(const Tensor<T>&, const Tensor<int64_t>&, double); \
  CCT_EXTERN_TEMPLATE Tensor<T> cross_entropy<T>(const Tensor<T>&, const Tensor<T>&);
CCT_FOR_FLOATING_TYPES(CCT_OPS_LOSS_TEMPLATES)
#undef CCT_OPS_LOSS_TEMPLATES
#endif

}  // namespace cct
