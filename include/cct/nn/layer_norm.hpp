// LayerNorm over the last dim with a learnable scale and shift, as torch.nn.LayerNorm(D, eps=1e-5).
#pragma once

#include "../ops/norm.hpp"
#include "containers.hpp"

namespace cct::nn {

template <typename T = float>
class LayerNorm : public UnaryModule<T> {
 public:
  explicit LayerNorm(int64_t normalized_size, double eps = 1e-5) : eps_(eps) {
    CCT_CHECK(normalized_size > 0, "LayerNorm: size must be positive, got ", normalized_size);
    weight = this->register_parameter("weight", Tensor<T>::ones({normalized_size}));
    bias = this->register_parameter("bias", Tensor<T>::zeros({normalized_size}));
  }

  // x: (..., D) → (..., D)
  Tensor<T> forward(const Tensor<T>& x) override { return layer_norm(x, weight, bias, static_cast<T>(eps_)); }
  std::string type_name() const override { return "LayerNorm"; }
  // Normalisation counts no MACs.
  LayerDescription describe(const Shape& input, Describer<T>&) const override {
    CCT_CHECK_SHAPE(!input.empty() && input.back() == weight.size(0), "LayerNorm takes (..., ", weight.size(0),
                    "), but its input would be ", shape_str(input));
    return {input};
  }

  Tensor<T> weight, bias;

 private:
  double eps_;
};

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_NN_LAYER_NORM_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class LayerNorm<T>;
CCT_FOR_FLOATING_TYPES(CCT_NN_LAYER_NORM_TEMPLATES)
#undef CCT_NN_LAYER_NORM_TEMPLATES
#endif

}  // namespace cct::nn
