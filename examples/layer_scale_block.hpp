// LayerScaleBlock: an encoder block of your own, plugged into nn::TransformerClassifier through its
// block factory. Pre-norm with LayerScale on each residual branch (CaiT, DeiT III):
//   x = x + drop_path(ls1 · attn(norm1(x)))
//   x = x + drop_path(ls2 · linear2(gelu(linear1(norm2(x)))))
// γ starts small, so each block starts close to the identity, which is what lets deep stacks train.
// Used by examples/custom_variant.cpp and by the tests (tests/test_models.cpp); docs/adding_a_layer.md
// walks through it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <cct/nn/attention.hpp>
#include <cct/nn/dropout.hpp>
#include <cct/nn/encoder_block.hpp>
#include <cct/nn/layer_norm.hpp>
#include <cct/nn/layer_scale.hpp>
#include <cct/nn/linear.hpp>
#include <cct/ops/activation.hpp>

template <typename T = float>
class LayerScaleBlock : public cct::nn::EncoderBlock<T> {
 public:
  // `config` holds the sizes the classifier asks for (width, heads, MLP width, dropouts, this block's
  // drop-path rate); `gen` is the classifier's generator, so the weights follow from the model's seed.
  LayerScaleBlock(const cct::nn::EncoderLayerConfig& config, double init_value, cct::Generator& gen)
      : mlp_hidden_dim_(config.mlp_hidden_dim) {
    namespace nn = cct::nn;
    const int64_t D = config.embedding_dim, F = config.mlp_hidden_dim;
    norm1 = this->register_module("norm1", std::make_shared<nn::LayerNorm<T>>(D));
    attn = this->register_module("attn", std::make_shared<nn::MultiHeadSelfAttention<T>>(
                                             nn::AttentionConfig{D, config.num_heads, config.attention_dropout,
                                                                 config.dropout},
                                             gen));
    ls1 = this->register_module("ls1", std::make_shared<nn::LayerScale<T>>(D, init_value));
    norm2 = this->register_module("norm2", std::make_shared<nn::LayerNorm<T>>(D));
    linear1 = this->register_module("linear1", std::make_shared<nn::Linear<T>>(D, F, true, gen));
    linear2 = this->register_module("linear2", std::make_shared<nn::Linear<T>>(F, D, true, gen));
    ls2 = this->register_module("ls2", std::make_shared<nn::LayerScale<T>>(D, init_value));
    drop_path = this->register_module("drop_path", std::make_shared<nn::DropPath<T>>(config.drop_path));
  }

  // x: (B, N, D) → (B, N, D). The mask and the attention map go to the attention layer, so the block
  // also works in the text models and in `ClassifierTrace`.
  using cct::nn::EncoderBlock<T>::forward;
  cct::Tensor<T> forward(const cct::Tensor<T>& x, const cct::Tensor<uint8_t>& key_padding_mask,
                         cct::Tensor<T>* attention_out) override {
    const cct::Tensor<T> attended = attn->forward(norm1->forward(x), key_padding_mask, attention_out);
    const cct::Tensor<T> h = cct::add(x, drop_path->forward(ls1->forward(attended)));
    const cct::Tensor<T> mlp = linear2->forward(cct::gelu(linear1->forward(norm2->forward(h))));
    return cct::add(h, drop_path->forward(ls2->forward(mlp)));
  }

  std::string type_name() const override { return "LayerScaleBlock"; }
  // For the model summary: the children with the inputs they see; the MLP's hidden width is F.
  cct::nn::LayerDescription describe(const cct::Shape& input, cct::nn::Describer<T>& children) const override {
    cct::Shape hidden = input;
    if (!hidden.empty()) hidden.back() = mlp_hidden_dim_;
    for (const char* name : {"norm1", "attn", "ls1", "norm2", "linear1"}) children.child(name, input);
    children.child("linear2", hidden);
    for (const char* name : {"ls2", "drop_path"}) children.child(name, input);
    return {input};
  }

  std::shared_ptr<cct::nn::LayerNorm<T>> norm1, norm2;
  std::shared_ptr<cct::nn::MultiHeadSelfAttention<T>> attn;
  std::shared_ptr<cct::nn::LayerScale<T>> ls1, ls2;
  std::shared_ptr<cct::nn::Linear<T>> linear1, linear2;
  std::shared_ptr<cct::nn::DropPath<T>> drop_path;

 private:
  int64_t mlp_hidden_dim_;
};

// The factory that makes every block of a classifier a LayerScaleBlock with γ starting at init_value.
template <typename T = float>
cct::nn::EncoderBlockFactory<T> layer_scale_blocks(double init_value = 1e-5) {
  return [init_value](int64_t /*index*/, const cct::nn::EncoderLayerConfig& config,
                      cct::Generator& gen) -> std::shared_ptr<cct::nn::EncoderBlock<T>> {
    return std::make_shared<LayerScaleBlock<T>>(config, init_value, gen);
  };
}
