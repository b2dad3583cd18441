// TransformerEncoderLayer: the reference's block, which is NOT textbook pre-norm:
//   x = x + drop_path(self_attn(pre_norm(x)))
//   x = norm1(x)                  ← the residual stream itself is replaced by its LayerNorm
//   x = x + drop_path(linear2(gelu(linear1(x))))
// Copied exactly so that weights trained with the reference code give the same logits here.
#pragma once

#include "../ops/activation.hpp"
#include "attention.hpp"
#include "dropout.hpp"
#include "encoder_block.hpp"
#include "layer_norm.hpp"
#include "linear.hpp"

namespace cct::nn {

template <typename T = float>
class TransformerEncoderLayer : public EncoderBlock<T> {
 public:
  explicit TransformerEncoderLayer(const EncoderLayerConfig& config, Generator& gen = default_generator())
      : config_(config) {
    const int64_t D = config.embedding_dim, F = config.mlp_hidden_dim;
    pre_norm = this->register_module("pre_norm", std::make_shared<LayerNorm<T>>(D));
    self_attn = this->register_module(
        "self_attn", std::make_shared<MultiHeadSelfAttention<T>>(
                         AttentionConfig{D, config.num_heads, config.attention_dropout, config.dropout}, gen));
    linear1 = this->register_module("linear1", std::make_shared<Linear<T>>(D, F, true, gen));
    dropout1 = this->register_module("dropout1", std::make_shared<Dropout<T>>(config.dropout));
    norm1 = this->register_module("norm1", std::make_shared<LayerNorm<T>>(D));
    linear2 = this->register_module("linear2", std::make_shared<Linear<T>>(F, D, true, gen));
    dropout2 = this->register_module("dropout2", std::make_shared<Dropout<T>>(config.dropout));
    drop_path = this->register_module("drop_path", std::make_shared<DropPath<T>>(config.drop_path));
  }

  // x: (B, N, D) → (B, N, D); forward(x) and forward(x, key_padding_mask) come from EncoderBlock.
  using EncoderBlock<T>::forward;
  Tensor<T> forward(const Tensor<T>& x, const Tensor<uint8_t>& key_padding_mask, Tensor<T>* attention_out) override {
    Tensor<T> src = add(x, drop_path->forward(self_attn->forward(pre_norm->forward(x), key_padding_mask, attention_out)));
    src = norm1->forward(src);
    Tensor<T> mlp = dropout2->forward(linear2->forward(dropout1->forward(gelu(linear1->forward(src)))));
    return add(src, drop_path->forward(mlp));
  }

  const EncoderLayerConfig& config() const { return config_; }
  std::string type_name() const override { return "TransformerEncoderLayer"; }
  // Rows in registration order; the MLP's hidden activations (B, N, F) run through dropout1 and linear2.
  LayerDescription describe(const Shape& input, Describer<T>& children) const override {
    Shape hidden = input;
    if (!hidden.empty()) hidden.back() = config_.mlp_hidden_dim;
    for (const char* name : {"pre_norm", "self_attn", "linear1"}) children.child(name, input);
    children.child("dropout1", hidden);
    children.child("norm1", input);
    children.child("linear2", hidden);
    for (const char* name : {"dropout2", "drop_path"}) children.child(name, input);
    return {input};
  }

  std::shared_ptr<LayerNorm<T>> pre_norm, norm1;
  std::shared_ptr<MultiHeadSelfAttention<T>> self_attn;
  std::shared_ptr<Linear<T>> linear1, linear2;
  std::shared_ptr<Dropout<T>> dropout1, dropout2;
  std::shared_ptr<DropPath<T>> drop_path;

 private:
  EncoderLayerConfig config_;
};

// The factory of the reference's block: what TransformerClassifier builds unless given another.
template <typename T = float>
EncoderBlockFactory<T> reference_encoder_block() {
  return [](int64_t /*index*/, const EncoderLayerConfig& config, Generator& gen) -> std::shared_ptr<EncoderBlock<T>> {
    return std::make_shared<TransformerEncoderLayer<T>>(config, gen);
  };
}

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_NN_ENCODER_LAYER_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class TransformerEncoderLayer<T>;
CCT_FOR_FLOATING_TYPES(CCT_NN_ENCODER_LAYER_TEMPLATES)
#undef CCT_NN_ENCODER_LAYER_TEMPLATES
#endif

}  // namespace cct::nn
