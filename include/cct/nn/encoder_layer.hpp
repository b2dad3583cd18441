// TransformerEncoderLayer: the reference's block, which is NOT textbook pre-norm:
//   x = x + drop_path(self_attn(pre_norm(x)))
//   x = norm1(x)                  ← the residual stream itself is replaced by its LayerNorm
//   x = x + drop_path(linear2(gelu(linear1(x))))
// Copied exactly so that weights trained with the reference code give the same logits here.
#pragma once

#include "../ops/activation.hpp"
#include "attention.hpp"
#include "dropout.hpp"
#include "layer_norm.hpp"
#include "linear.hpp"

namespace cct::nn {

struct EncoderLayerConfig {
  int64_t embedding_dim = 128;
  int64_t num_heads = 2;
  int64_t mlp_hidden_dim = 128;     // F
  double dropout = 0.0;             // after the MLP's activation, after linear2 and after proj
  double attention_dropout = 0.1;
  double drop_path = 0.0;           // stochastic depth rate of this layer
};

template <typename T = float>
class TransformerEncoderLayer : public UnaryModule<T> {
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

  // x: (B, N, D) → (B, N, D)
  Tensor<T> forward(const Tensor<T>& x) override { return forward(x, Tensor<uint8_t>()); }
  Tensor<T> forward(const Tensor<T>& x, const Tensor<uint8_t>& key_padding_mask, Tensor<T>* attention_out = nullptr) {
    Tensor<T> src = add(x, drop_path->forward(self_attn->forward(pre_norm->forward(x), key_padding_mask, attention_out)));
    src = norm1->forward(src);
    Tensor<T> mlp = dropout2->forward(linear2->forward(dropout1->forward(gelu(linear1->forward(src)))));
    return add(src, drop_path->forward(mlp));
  }

  const EncoderLayerConfig& config() const { return config_; }
  std::string type_name() const override { return "TransformerEncoderLayer"; }

  std::shared_ptr<LayerNorm<T>> pre_norm, norm1;
  std::shared_ptr<MultiHeadSelfAttention<T>> self_attn;
  std::shared_ptr<Linear<T>> linear1, linear2;
  std::shared_ptr<Dropout<T>> dropout1, dropout2;
  std::shared_ptr<DropPath<T>> drop_path;

 private:
  EncoderLayerConfig config_;
};

}  // namespace cct::nn
