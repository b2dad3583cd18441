// Linear: y = x Wᵀ + b over the last dim, as torch.nn.Linear (weight (out, in), bias (out)).
#pragma once

#include "../ops/matmul.hpp"
#include "init.hpp"
#include "containers.hpp"

namespace cct::nn {

template <typename T = float>
class Linear : public UnaryModule<T> {
 public:
  // Weights start as the reference's init: truncated normal, std 0.02 (cut at ±2, which never bites);
  // bias zero.
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator& gen = default_generator())
      : in_features_(in_features), out_features_(out_features) {
    CCT_CHECK(in_features > 0 && out_features > 0, "Linear: sizes must be positive, got in_features=",
              in_features, ", out_features=", out_features);
    weight = this->register_parameter("weight", Tensor<T>::empty({out_features, in_features}));
    init::trunc_normal_(weight, 0.0, 0.02, -2.0, 2.0, gen);
    if (bias) this->bias = this->register_parameter("bias", Tensor<T>::zeros({out_features}));
  }

  // x: (..., in_features) → (..., out_features)
  Tensor<T> forward(const Tensor<T>& x) override { return linear(x, weight, bias); }

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  std::string type_name() const override { return "Linear"; }
  // in·out MACs per row: the paper's count (the bias adds are not counted).
  LayerDescription describe(const Shape& input, Describer<T>&) const override {
    CCT_CHECK_SHAPE(!input.empty() && input.back() == in_features_, "Linear takes (..., ", in_features_,
                    "), but its input would be ", shape_str(input));
    Shape output = input;
    output.back() = out_features_;
    return {output, shape_numel(input) / in_features_ * in_features_ * out_features_};
  }

  Tensor<T> weight, bias;  // bias undefined when constructed without one

 private:
  int64_t in_features_, out_features_;
};

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_NN_LINEAR_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class Linear<T>;
CCT_FOR_FLOATING_TYPES(CCT_NN_LINEAR_TEMPLATES)
#undef CCT_NN_LINEAR_TEMPLATES
#endif

}  // namespace cct::nn
