// CompactTransformer: tokenizer + classifier, the shape shared by ViT-Lite, CVT and CCT. Built at run
// time from a ModelConfig, so a variant is data, not a type. Parameter names are the reference's:
// tokenizer.conv_layers.0.0.weight, classifier.blocks.0.self_attn.qkv.weight, ...
#pragma once

#include "../nn/tokenizer.hpp"
#include "../nn/transformer_classifier.hpp"
#include "model_config.hpp"

namespace cct::models {

template <typename T = float>
class CompactTransformer : public nn::Module<T> {
 public:
  explicit CompactTransformer(const ModelConfig& config) : config_(config) {
    CCT_CHECK(config.num_classes >= 1 && config.in_channels >= 1 && config.image_size >= 1,
              config.name, ": num_classes, in_channels and image_size must be positive");
    Generator gen(config.seed);
    tokenizer = this->register_module("tokenizer", std::make_shared<nn::ConvTokenizer<T>>(tokenizer_config(config), gen));
    nn::ClassifierConfig classifier_config;
    classifier_config.seq_pool = config.family != Family::kViTLite;
    classifier_config.embedding_dim = config.embedding_dim;
    classifier_config.num_layers = config.num_layers;
    classifier_config.num_heads = config.num_heads;
    classifier_config.mlp_ratio = config.mlp_ratio;
    classifier_config.num_classes = config.num_classes;
    classifier_config.sequence_length = tokenizer->sequence_length(config.image_size, config.image_size);
    classifier_config.positional_embedding = config.positional_embedding;
    classifier_config.dropout = config.dropout;
    classifier_config.attention_dropout = config.attention_dropout;
    classifier_config.stochastic_depth = config.stochastic_depth;
    classifier = this->register_module("classifier", std::make_shared<nn::TransformerClassifier<T>>(classifier_config, gen));
  }

  // images (B, C, H, W) → logits (B, num_classes)
  Tensor<T> forward(const Tensor<T>& images, nn::ClassifierTrace* trace = nullptr) {
    CCT_CHECK_SHAPE(images.dim() == 4 && images.size(1) == config_.in_channels &&
                        images.size(2) == config_.image_size && images.size(3) == config_.image_size,
                    config_.name, ": expected images of shape (B, ", config_.in_channels, ", ", config_.image_size,
                    ", ", config_.image_size, "), got ", shape_str(images.shape()));
    return classifier->forward(tokenizer->forward(images), Tensor<uint8_t>(), trace);
  }
  Tensor<T> operator()(const Tensor<T>& images) { return forward(images); }
  // For the model summary: images (B, C, H, W) → tokens → logits (B, num_classes).
  nn::LayerDescription describe(const Shape& input, nn::Describer<T>& children) const override {
    CCT_CHECK_SHAPE(input.size() == 4 && input[1] == config_.in_channels, config_.name, " takes images (B, ",
                    config_.in_channels, ", H, W), but its input would be ", shape_str(input));
    return {children.child("classifier", children.child("tokenizer", input))};
  }

  const ModelConfig& config() const { return config_; }
  int64_t sequence_length() const { return classifier->config().sequence_length; }
  std::string type_name() const override {
    switch (config_.family) {
      case Family::kCCT: return "CCT";
      case Family::kCVT: return "CVT";
      default: return "ViTLite";
    }
  }

  std::shared_ptr<nn::ConvTokenizer<T>> tokenizer;
  std::shared_ptr<nn::TransformerClassifier<T>> classifier;

 private:
  static nn::TokenizerConfig tokenizer_config(const ModelConfig& c) {
    nn::TokenizerConfig t;
    t.in_channels = c.in_channels;
    t.embedding_dim = c.embedding_dim;
    if (c.family == Family::kCCT) {
      // The reference's rule: stride max(1, k/2 − 1), padding max(1, k/2); 64 channels between blocks.
      t.num_conv_layers = c.num_conv_layers;
      t.kernel_size = c.kernel_size;
      t.stride = std::max<int64_t>(1, c.kernel_size / 2 - 1);
      t.padding = std::max<int64_t>(1, c.kernel_size / 2);
      t.in_planes = 64;
      t.activation = true;
      t.max_pool = true;
      t.conv_bias = false;
    } else {
      // Patch embedding: one P×P conv with stride P, bias, nothing after.
      t.num_conv_layers = 1;
      t.kernel_size = c.patch_size;
      t.stride = c.patch_size;
      t.padding = 0;
      t.activation = false;
      t.max_pool = false;
      t.conv_bias = true;
    }
    return t;
  }

  ModelConfig config_;
};

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_MODELS_COMPACT_TRANSFORMER_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class CompactTransformer<T>;
CCT_FOR_FLOATING_TYPES(CCT_MODELS_COMPACT_TRANSFORMER_TEMPLATES)
#undef CCT_MODELS_COMPACT_TRANSFORMER_TEMPLATES
#endif

}  // namespace cct::models
