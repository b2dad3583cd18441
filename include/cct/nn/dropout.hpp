// Dropout (per element) and DropPath (stochastic depth: per sample), both active only in training.
#pragma once

#include "../ops/dropout.hpp"
#include "../ops/elementwise.hpp"
#include "containers.hpp"

namespace cct::nn {

// Training-time randomness (dropout masks, drop-path) draws from cct::default_generator(), so one
// manual_seed() makes a run reproducible and its state is what a checkpoint saves to resume exactly.

// Zeroes whole samples of a residual branch with probability p and scales the rest by 1/(1−p)
// ("Deep Networks with Stochastic Depth"). The per-sample mask is a constant (B, 1, ..., 1) tensor, so
// the gradient is the broadcast multiply's: ∂out/∂x = mask.
template <typename T>
Tensor<T> drop_path(const Tensor<T>& x, double p, bool training, Generator& gen = default_generator()) {
  CCT_CHECK(p >= 0 && p < 1, "drop_path: probability must be in [0, 1), got ", p);
  if (!training || p == 0) return x;
  CCT_CHECK_SHAPE(x.dim() >= 1, "drop_path: needs a batch dim, got shape ", shape_str(x.shape()));
  Shape mask_shape(x.dim(), 1);
  mask_shape[0] = x.size(0);
  Tensor<T> mask = Tensor<T>::empty(mask_shape);
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  for (int64_t b = 0; b < x.size(0); ++b) mask.data()[b] = gen.uniform() < p ? T(0) : scale;
  return mul(x, mask);
}

template <typename T = float>
class Dropout : public UnaryModule<T> {
 public:
  explicit Dropout(double p = 0.5) : p_(p) {
    CCT_CHECK(p >= 0 && p <= 1, "Dropout: probability must be in [0, 1], got ", p);
  }
  Tensor<T> forward(const Tensor<T>& x) override { return dropout(x, p_, this->is_training(), default_generator()); }
  double p() const { return p_; }
  std::string type_name() const override { return "Dropout"; }
  LayerDescription describe(const Shape& input, Describer<T>&) const override { return {input}; }

 private:
  double p_;
};

template <typename T = float>
class DropPath : public UnaryModule<T> {
 public:
  explicit DropPath(double p = 0.0) : p_(p) {
    CCT_CHECK(p >= 0 && p < 1, "DropPath: probability must be in [0, 1), got ", p);
  }
  Tensor<T> forward(const Tensor<T>& x) override { return drop_path(x, p_, this->is_training(), default_generator()); }
  double p() const { return p_; }
  std::string type_name() const override { return "DropPath"; }
  LayerDescription describe(const Shape& input, Describer<T>&) const override { return {input}; }

 private:
  double p_;
};

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_NN_DROPOUT_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE Tensor<T> drop_path<T>(const Tensor<T>&, double, bool, Generator&); \
  CCT_EXTERN_TEMPLATE class Dropout<T>; \
  CCT_EXTERN_TEMPLATE class DropPath<T>;
CCT_FOR_FLOATING_TYPES(CCT_NN_DROPOUT_TEMPLATES)
#undef CCT_NN_DROPOUT_TEMPLATES
#endif

}  // namespace cct::nn
