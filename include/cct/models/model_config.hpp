// ModelConfig: everything needed to build a ViT-Lite, CVT or CCT, and its table of stored fields, the
// round trip through the string map that checkpoints store as metadata (so a checkpoint can rebuild
// its own model).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "../config.hpp"
#include "../nn/positional_embedding.hpp"
#include "config_metadata.hpp"

namespace cct::models {

enum class Family { kCCT, kCVT, kViTLite };

inline const EnumNames<Family>& family_names() {
  static const EnumNames<Family> names = {{"cct", Family::kCCT}, {"cvt", Family::kCVT}, {"vit_lite", Family::kViTLite}};
  return names;
}

// The stored names of the positional embeddings (as nn::positional_embedding_name writes them).
inline const EnumNames<nn::PositionalEmbedding>& positional_embedding_names() {
  static const EnumNames<nn::PositionalEmbedding> names = {{"learnable", nn::PositionalEmbedding::kLearnable},
                                                           {"sine", nn::PositionalEmbedding::kSine},
                                                           {"none", nn::PositionalEmbedding::kNone}};
  return names;
}

inline const char* family_name(Family family) {
  for (const auto& [name, value] : family_names())
    if (value == family) return name;
  return "?";
}

// The paper's encoder sizes: layers → heads, embedding dim, MLP ratio.
struct EncoderSize {
  int64_t num_layers, num_heads, embedding_dim;
  double mlp_ratio;
};
inline EncoderSize encoder_size(int64_t num_layers) {
  switch (num_layers) {
    case 2: return {2, 2, 128, 1.0};
    case 4: return {4, 2, 128, 1.0};
    case 6: return {6, 4, 256, 2.0};
    case 7: return {7, 4, 256, 2.0};
    case 14: return {14, 6, 384, 3.0};
    default:
      throw Error(detail::concat("no encoder size for ", num_layers, " layers; the paper defines 2, 4, 6, 7 and 14"));
  }
}

struct ModelConfig {
  std::string name;                  // the registered name it was built from, e.g. "cct_7_3x1_32"
  Family family = Family::kCCT;
  // Encoder (the paper's size table).
  int64_t num_layers = 2, num_heads = 2, embedding_dim = 128;
  double mlp_ratio = 1.0;
  // Tokenizer: CCT uses kernel_size and num_conv_layers; CVT / ViT-Lite use patch_size.
  int64_t kernel_size = 3, num_conv_layers = 2, patch_size = 4;
  // Data.
  int64_t image_size = 32, in_channels = 3, num_classes = 10;
  nn::PositionalEmbedding positional_embedding = nn::PositionalEmbedding::kLearnable;
  // Regularisation (the reference's defaults).
  double dropout = 0.0, attention_dropout = 0.1, stochastic_depth = 0.1;
  uint64_t seed = 0;                 // initialisation

  bool operator==(const ModelConfig& other) const { return to_metadata() == other.to_metadata(); }

  // The one table of stored fields (config_metadata.hpp): key, kind and valid range of each. The seed
  // is not stored: a loaded model takes its weights from the file.
  template <typename Self, typename Fields>
  static void visit_fields(Self& c, Fields& f) {
    f.text("model", c.name);
    f.choice("family", c.family, family_names(), "model family");
    f.integer("num_layers", c.num_layers, 1);
    f.integer("num_heads", c.num_heads, 1);
    f.integer("embedding_dim", c.embedding_dim, 1);
    f.number("mlp_ratio", c.mlp_ratio, 0, 64, /*low_open=*/true);
    f.integer("kernel_size", c.kernel_size, 1);
    f.integer("num_conv_layers", c.num_conv_layers, 1);
    f.integer("patch_size", c.patch_size, 1);
    f.integer("image_size", c.image_size, 1);
    f.integer("in_channels", c.in_channels, 1);
    f.integer("num_classes", c.num_classes, 1);
    f.choice("positional_embedding", c.positional_embedding, positional_embedding_names(), "positional_embedding");
    f.number("dropout", c.dropout, 0, 1);
    f.number("attention_dropout", c.attention_dropout, 0, 1);
    f.number("stochastic_depth", c.stochastic_depth, 0, 1);
  }

  std::map<std::string, std::string> to_metadata() const { return config_to_metadata(*this); }

  // Rebuilds a config from checkpoint metadata, validating each field; `source` (a file name) is quoted
  // in errors (IoError).
  static ModelConfig from_metadata(const std::map<std::string, std::string>& metadata, const std::string& source) {
    return config_from_metadata<ModelConfig>(metadata, source);
  }
};

// A config from the paper's size table: the shared part of cct_config, cvt_config and vit_lite_config.
inline ModelConfig sized_config(Family family, int64_t num_layers, int64_t image_size, int64_t num_classes) {
  const EncoderSize size = encoder_size(num_layers);
  ModelConfig c;
  c.family = family;
  c.num_layers = size.num_layers;
  c.num_heads = size.num_heads;
  c.embedding_dim = size.embedding_dim;
  c.mlp_ratio = size.mlp_ratio;
  c.image_size = image_size;
  c.num_classes = num_classes;
  return c;
}

}  // namespace cct::models
