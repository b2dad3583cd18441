// TransformerClassifier: positional embedding → encoder blocks → LayerNorm → pooling → fc, the
// `classifier` half of every model in the reference (the tokenizer is the other half).
// Pooling is SeqPool (CCT, CVT) or the class token (ViT-Lite, which prepends a learned token).
// The encoder blocks are the reference's TransformerEncoderLayer unless a factory builds others
// (encoder_block.hpp): the classifier only calls them through the EncoderBlock interface.
#pragma once

#include <vector>

#include "../ops/shape.hpp"
#include "encoder_layer.hpp"
#include "positional_embedding.hpp"
#include "seq_pool.hpp"

namespace cct::nn {

struct ClassifierConfig {
  bool seq_pool = true;              // false: class token (ViT-Lite)
  int64_t embedding_dim = 128;
  int64_t num_layers = 2;
  int64_t num_heads = 2;
  double mlp_ratio = 1.0;
  int64_t num_classes = 10;
  int64_t sequence_length = 64;      // tokens from the tokenizer (without the class token)
  PositionalEmbedding positional_embedding = PositionalEmbedding::kLearnable;
  double dropout = 0.0;              // after the positional embedding, and inside each block
  double attention_dropout = 0.1;
  double stochastic_depth = 0.1;     // drop-path rate of the last block; linearly from 0 at the first
};

// Optional outputs for pictures and debugging.
struct ClassifierTrace {
  Tensor<float> pool_weights;                 // (B, N) SeqPool weights, when seq_pool
  std::vector<Tensor<float>> attention;       // per block (B, H, N, N), when requested (undefined for a
                                              // custom block that has no attention map)
  bool want_attention = false;
};

template <typename T = float>
class TransformerClassifier : public Module<T> {
 public:
  // make_block builds each encoder block (default: the reference's TransformerEncoderLayer); it is
  // called in order, after the pooling and positional parameters are drawn from `gen`, so the default
  // blocks get exactly the weights they always had for a given seed.
  explicit TransformerClassifier(const ClassifierConfig& config, Generator& gen = default_generator(),
                                 const EncoderBlockFactory<T>& make_block = reference_encoder_block<T>())
      : config_(config) {
    const int64_t D = config.embedding_dim;
    CCT_CHECK(config.num_layers >= 1 && config.num_classes >= 1 && config.sequence_length >= 1,
              "TransformerClassifier: num_layers, num_classes and sequence_length must be positive");
    const int64_t tokens = config.sequence_length + (config.seq_pool ? 0 : 1);
    // Registration order follows the reference so that state-dict order matches too.
    if (!config.seq_pool) class_emb = this->register_parameter("class_emb", Tensor<T>::zeros({1, 1, D}));
    else attention_pool = this->register_module("attention_pool", std::make_shared<Linear<T>>(D, 1, true, gen));
    if (config.positional_embedding == PositionalEmbedding::kLearnable) {
      positional_emb = this->register_parameter("positional_emb", Tensor<T>::empty({1, tokens, D}));
      init::trunc_normal_(positional_emb, 0.0, 0.2, -2.0, 2.0, gen);
    } else if (config.positional_embedding == PositionalEmbedding::kSine) {
      positional_emb = this->register_parameter("positional_emb", sine_positional_table<T>(tokens, D), /*trainable=*/false);
    }
    dropout = this->register_module("dropout", std::make_shared<Dropout<T>>(config.dropout));
    CCT_CHECK(make_block != nullptr, "TransformerClassifier: the block factory is empty; pass "
              "nn::reference_encoder_block<T>() for the reference's blocks");
    blocks = this->register_module("blocks", std::make_shared<ModuleList<T, EncoderBlock<T>>>());
    for (int64_t l = 0; l < config.num_layers; ++l) {
      const double rate = config.num_layers == 1 ? 0.0 : config.stochastic_depth * l / (config.num_layers - 1);
      EncoderLayerConfig layer{D, config.num_heads, static_cast<int64_t>(D * config.mlp_ratio), config.dropout,
                               config.attention_dropout, rate};
      std::shared_ptr<EncoderBlock<T>> block = make_block(l, layer, gen);
      CCT_CHECK(block != nullptr, "TransformerClassifier: the block factory returned no block for block ", l,
                " (a null pointer)");
      blocks->push_back(std::move(block));
    }
    norm = this->register_module("norm", std::make_shared<LayerNorm<T>>(D));
    fc = this->register_module("fc", std::make_shared<Linear<T>>(D, config.num_classes, true, gen));
  }

  // tokens: (B, N, D) → logits (B, classes). key_padding_mask: undefined or (B, N) (text models).
  Tensor<T> forward(const Tensor<T>& tokens, const Tensor<uint8_t>& key_padding_mask = Tensor<uint8_t>(),
                    ClassifierTrace* trace = nullptr) {
    CCT_CHECK_SHAPE(tokens.dim() == 3 && tokens.size(1) == config_.sequence_length &&
                        tokens.size(2) == config_.embedding_dim,
                    "TransformerClassifier: expected tokens (B, ", config_.sequence_length, ", ",
                    config_.embedding_dim, "), got ", shape_str(tokens.shape()));
    const int64_t B = tokens.size(0);
    Tensor<T> x = tokens;
    Tensor<uint8_t> mask = key_padding_mask;
    if (!config_.seq_pool) {
      x = concat(std::vector<Tensor<T>>{expand(class_emb, {B, 1, config_.embedding_dim}), x}, 1);
      if (mask.defined()) mask = with_class_token(mask);
    }
    if (positional_emb.defined()) x = add(x, positional_emb);
    x = dropout->forward(x);
    for (const auto& block : *blocks) {
      Tensor<T> attention;
      x = block->forward(x, mask, trace && trace->want_attention ? &attention : nullptr);
      if (trace && trace->want_attention)
        trace->attention.push_back(attention.defined() ? attention.template to<float>() : Tensor<float>());
    }
    x = norm->forward(x);
    Tensor<T> pooled;
    if (config_.seq_pool) {
      Tensor<T> weights;
      pooled = seq_pool(x, *attention_pool, mask, trace ? &weights : nullptr);
      if (trace) trace->pool_weights = weights.template to<float>();
    } else {
      pooled = reshape(narrow(x, 1, 0, 1), {B, config_.embedding_dim});
    }
    return fc->forward(pooled);
  }

  const ClassifierConfig& config() const { return config_; }
  std::string type_name() const override { return "TransformerClassifier"; }
  // tokens (B, N, D) → logits (B, classes); with a class token the blocks see N + 1 tokens.
  LayerDescription describe(const Shape& input, Describer<T>& children) const override {
    const ClassifierConfig& c = config_;
    CCT_CHECK_SHAPE(input.size() == 3 && input[1] == c.sequence_length && input[2] == c.embedding_dim,
                    "TransformerClassifier takes tokens (B, ", c.sequence_length, ", ", c.embedding_dim,
                    "), but its input would be ", shape_str(input));
    const Shape sequence{input[0], c.sequence_length + (c.seq_pool ? 0 : 1), c.embedding_dim};
    if (attention_pool) children.child("attention_pool", sequence);
    children.child("dropout", sequence);
    children.child("blocks", sequence);  // every block keeps (B, N, D), so norm sees `sequence` even if a
    children.child("norm", sequence);    // custom block cannot describe itself
    children.child("fc", Shape{input[0], c.embedding_dim});
    return {Shape{input[0], c.num_classes}};
  }

  Tensor<T> class_emb, positional_emb;  // each undefined when not used
  std::shared_ptr<Linear<T>> attention_pool;
  std::shared_ptr<Dropout<T>> dropout;
  std::shared_ptr<ModuleList<T, EncoderBlock<T>>> blocks;
  std::shared_ptr<LayerNorm<T>> norm;
  std::shared_ptr<Linear<T>> fc;

 private:
  static Tensor<uint8_t> with_class_token(const Tensor<uint8_t>& mask) {
    const int64_t B = mask.size(0), N = mask.size(1);
    Tensor<uint8_t> out = Tensor<uint8_t>::empty({B, N + 1});
    for (int64_t b = 0; b < B; ++b) {
      out.data()[b * (N + 1)] = 1;
      std::copy(mask.data() + b * N, mask.data() + (b + 1) * N, out.data() + b * (N + 1) + 1);
    }
    return out;
  }

  ClassifierConfig config_;
};

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_NN_TRANSFORMER_CLASSIFIER_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class TransformerClassifier<T>;
CCT_FOR_FLOATING_TYPES(CCT_NN_TRANSFORMER_CLASSIFIER_TEMPLATES)
#undef CCT_NN_TRANSFORMER_CLASSIFIER_TEMPLATES
#endif

}  // namespace cct::nn
