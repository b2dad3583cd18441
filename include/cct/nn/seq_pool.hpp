// SeqPool: CCT's attention-based pooling of a token sequence into one vector.
//   w = softmax over tokens of attention_pool(x),  z = Σ_t w_t x_t
// so the model learns which tokens matter; w is what an attention picture of a prediction shows.
#pragma once

#include <limits>

#include "../ops/matmul.hpp"
#include "../ops/shape.hpp"
#include "../ops/softmax.hpp"
#include "linear.hpp"

namespace cct::nn {

// x: (B, N, D) → (B, D), scoring tokens with `attention_pool` (Linear(D, 1)). key_padding_mask:
// undefined or (B, N), nonzero = real token; padded tokens get weight 0. When `weights_out` is given
// it receives w as (B, N). A free function so that a classifier can own `attention_pool` directly
// under the reference's name (classifier.attention_pool.weight).
template <typename T>
Tensor<T> seq_pool(const Tensor<T>& x, Linear<T>& attention_pool,
                   const Tensor<uint8_t>& key_padding_mask = Tensor<uint8_t>(), Tensor<T>* weights_out = nullptr) {
  CCT_CHECK_SHAPE(x.dim() == 3, "seq_pool: expected (B, N, D), got ", shape_str(x.shape()));
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2);
  Tensor<T> scores = attention_pool.forward(x);  // (B, N, 1)
  if (key_padding_mask.defined()) {
    CCT_CHECK_SHAPE(key_padding_mask.shape() == Shape({B, N}), "seq_pool: key_padding_mask must be ",
                    shape_str({B, N}), ", got ", shape_str(key_padding_mask.shape()));
    // A large negative score (not −inf, so an all-padding row stays finite) gives exactly 0 weight.
    Tensor<T> penalty = Tensor<T>::zeros({B, N, 1});
    for (int64_t i = 0; i < B * N; ++i)
      if (!key_padding_mask.data()[i]) penalty.data()[i] = static_cast<T>(-1e9);
    scores = add(scores, penalty);
  }
  Tensor<T> weights = softmax(scores, 1);  // (B, N, 1)
  if (weights_out) *weights_out = weights.detach().view_as_shape({B, N});
  return reshape(matmul(weights, x, /*transpose_a=*/true), {B, D});  // (B, 1, N)·(B, N, D)
}

// SeqPool as a module of its own, for custom models.
template <typename T = float>
class SeqPool : public Module<T> {
 public:
  explicit SeqPool(int64_t embedding_dim, Generator& gen = default_generator()) {
    attention_pool = this->register_module("attention_pool", std::make_shared<Linear<T>>(embedding_dim, 1, true, gen));
  }
  Tensor<T> forward(const Tensor<T>& x, const Tensor<uint8_t>& key_padding_mask = Tensor<uint8_t>(),
                    Tensor<T>* weights_out = nullptr) {
    return seq_pool(x, *attention_pool, key_padding_mask, weights_out);
  }
  std::string type_name() const override { return "SeqPool"; }
  // (B, N, D) → (B, D). Only attention_pool's MACs count; the weighted sum (N·D) is not, as in the paper.
  LayerDescription describe(const Shape& input, Describer<T>& children) const override {
    CCT_CHECK_SHAPE(input.size() == 3, "SeqPool takes (B, N, D), but its input would be ", shape_str(input));
    children.child("attention_pool", input);
    return {Shape{input[0], input[2]}};
  }

  std::shared_ptr<Linear<T>> attention_pool;
};

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_NN_SEQ_POOL_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE Tensor<T> seq_pool<T>(const Tensor<T>&, Linear<T>&, const Tensor<uint8_t>&, Tensor<T>*); \
  CCT_EXTERN_TEMPLATE class SeqPool<T>;
CCT_FOR_FLOATING_TYPES(CCT_NN_SEQ_POOL_TEMPLATES)
#undef CCT_NN_SEQ_POOL_TEMPLATES
#endif

}  // namespace cct::nn
