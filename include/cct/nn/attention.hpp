// MultiHeadSelfAttention: the reference's `Attention` (qkv without bias, attention dropout, proj).
#pragma once

#include "../ops/attention.hpp"
#include "dropout.hpp"
#include "linear.hpp"

namespace cct::nn {

struct AttentionConfig {
  int64_t embedding_dim = 128;
  int64_t num_heads = 2;
  double attention_dropout = 0.1;   // on the attention probabilities
  double projection_dropout = 0.0;  // after proj (0 in every CCT variant)
};

template <typename T = float>
class MultiHeadSelfAttention : public Module<T> {
 public:
  explicit MultiHeadSelfAttention(const AttentionConfig& config, Generator& gen = default_generator())
      : config_(config) {
    CCT_CHECK(config.num_heads > 0 && config.embedding_dim % config.num_heads == 0,
              "MultiHeadSelfAttention: embedding_dim ", config.embedding_dim, " is not divisible by num_heads ",
              config.num_heads);
    qkv = this->register_module("qkv", std::make_shared<Linear<T>>(config.embedding_dim, 3 * config.embedding_dim,
                                                                   /*bias=*/false, gen));
    proj = this->register_module("proj", std::make_shared<Linear<T>>(config.embedding_dim, config.embedding_dim,
                                                                    /*bias=*/true, gen));
    proj_drop = this->register_module("proj_drop", std::make_shared<Dropout<T>>(config.projection_dropout));
  }

  // x: (B, N, D) → (B, N, D). key_padding_mask: undefined or (B, N), nonzero = real token.
  // When `attention_out` is given it receives the attention probabilities (B, H, N, N).
  Tensor<T> forward(const Tensor<T>& x, const Tensor<uint8_t>& key_padding_mask = Tensor<uint8_t>(),
                    Tensor<T>* attention_out = nullptr) {
    CCT_CHECK_SHAPE(x.dim() == 3 && x.size(2) == config_.embedding_dim, "MultiHeadSelfAttention: expected (B, N, ",
                    config_.embedding_dim, "), got ", shape_str(x.shape()));
    AttentionOptions options;
    options.num_heads = config_.num_heads;
    options.dropout = config_.attention_dropout;
    options.training = this->is_training();
    Tensor<T> heads = multi_head_attention(qkv->forward(x), options, key_padding_mask, default_generator(), attention_out);
    return proj_drop->forward(proj->forward(heads));
  }
  Tensor<T> operator()(const Tensor<T>& x) { return forward(x); }

  const AttentionConfig& config() const { return config_; }
  std::string type_name() const override { return "MultiHeadSelfAttention"; }
  // (B, N, D) → (B, N, D): qkv and proj report their own MACs; the two attention products (q·kᵀ and
  // A·v, N·N·D each per image) get a row of their own after qkv, shaped like the attention map.
  LayerDescription describe(const Shape& input, Describer<T>& children) const override {
    CCT_CHECK_SHAPE(input.size() == 3 && input[2] == config_.embedding_dim, "MultiHeadSelfAttention takes (B, N, ",
                    config_.embedding_dim, "), but its input would be ", shape_str(input));
    const int64_t B = input[0], N = input[1];
    children.child("qkv", input);
    children.attention_products(Shape{B, config_.num_heads, N, N}, B * 2 * N * N * config_.embedding_dim);
    children.child("proj", input);
    children.child("proj_drop", input);
    return {input};
  }

  std::shared_ptr<Linear<T>> qkv, proj;
  std::shared_ptr<Dropout<T>> proj_drop;

 private:
  AttentionConfig config_;
};

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_NN_ATTENTION_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class MultiHeadSelfAttention<T>;
CCT_FOR_FLOATING_TYPES(CCT_NN_ATTENTION_TEMPLATES)
#undef CCT_NN_ATTENTION_TEMPLATES
#endif

}  // namespace cct::nn
