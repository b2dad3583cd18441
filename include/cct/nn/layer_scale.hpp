// LayerScale: a learnable per-channel factor, y = x · γ over the last dim ("Going deeper with Image
// Transformers", Touvron et al. 2021), with timm's parameter name `gamma`.
#pragma once

#include <string>

#include "../ops/elementwise.hpp"
#include "containers.hpp"

namespace cct::nn {

// y = x · γ, γ of shape (D) broadcast over x's leading dims. Built from `mul`, so autograd already has
// the gradient: ∂y/∂x = γ, ∂y/∂γ = x summed over the leading dims.
template <typename T>
Tensor<T> layer_scale(const Tensor<T>& x, const Tensor<T>& gamma) {
  CCT_CHECK_SHAPE(gamma.dim() == 1 && x.dim() >= 1 && x.size(-1) == gamma.size(0), "layer_scale: x of shape ",
                  shape_str(x.shape()), " does not end in gamma's size ", shape_str(gamma.shape()));
  return mul(x, gamma);
}

template <typename T = float>
class LayerScale : public UnaryModule<T> {
 public:
  explicit LayerScale(int64_t dim, double init_value = 1e-5) : init_value_(init_value) {
    CCT_CHECK(dim > 0, "LayerScale: dim must be positive, got ", dim);
    gamma = this->register_parameter("gamma", Tensor<T>::full({dim}, static_cast<T>(init_value)));
  }

  // x: (..., dim) → (..., dim)
  Tensor<T> forward(const Tensor<T>& x) override { return layer_scale(x, gamma); }

  std::string type_name() const override { return "LayerScale"; }
  std::string extra_repr() const override {
    return "dim=" + std::to_string(gamma.size(0)) + ", init_value=" + std::to_string(init_value_);
  }
  // For the model summary: the shape is kept; an elementwise product counts no MACs.
  LayerDescription describe(const Shape& input, Describer<T>&) const override {
    CCT_CHECK_SHAPE(!input.empty() && input.back() == gamma.size(0), "LayerScale takes (..., ", gamma.size(0),
                    "), but its input would be ", shape_str(input));
    return {input};
  }

  Tensor<T> gamma;  // (dim): a handle sharing storage with the registered parameter

 private:
  double init_value_;
};

}  // namespace cct::nn
