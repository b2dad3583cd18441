// ModelConfig: everything needed to build a ViT-Lite, CVT or CCT, and its round trip through the
// string map that checkpoints store as metadata (so a checkpoint can rebuild its own model).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "../config.hpp"
#include "../nn/positional_embedding.hpp"

namespace cct::models {

enum class Family { kCCT, kCVT, kViTLite };

inline const char* family_name(Family family) {
  switch (family) {
    case Family::kCCT: return "cct";
    case Family::kCVT: return "cvt";
    default: return "vit_lite";
  }
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

  std::map<std::string, std::string> to_metadata() const {
    return {{"model", name},
            {"family", family_name(family)},
            {"num_layers", std::to_string(num_layers)},
            {"num_heads", std::to_string(num_heads)},
            {"embedding_dim", std::to_string(embedding_dim)},
            {"mlp_ratio", number(mlp_ratio)},
            {"kernel_size", std::to_string(kernel_size)},
            {"num_conv_layers", std::to_string(num_conv_layers)},
            {"patch_size", std::to_string(patch_size)},
            {"image_size", std::to_string(image_size)},
            {"in_channels", std::to_string(in_channels)},
            {"num_classes", std::to_string(num_classes)},
            {"positional_embedding", nn::positional_embedding_name(positional_embedding)},
            {"dropout", number(dropout)},
            {"attention_dropout", number(attention_dropout)},
            {"stochastic_depth", number(stochastic_depth)}};
  }

  // Rebuilds a config from checkpoint metadata; `source` (a file name) is quoted in errors.
  static ModelConfig from_metadata(const std::map<std::string, std::string>& metadata, const std::string& source) {
    auto get = [&](const char* key) -> const std::string& {
      auto it = metadata.find(key);
      if (it == metadata.end())
        throw Error(detail::concat(source, ": checkpoint metadata has no '", key,
                                   "' entry, so the model cannot be rebuilt from it; pass --model explicitly"));
      return it->second;
    };
    auto integer = [&](const char* key) {
      try {
        return static_cast<int64_t>(std::stoll(get(key)));
      } catch (const std::logic_error&) {
        throw Error(detail::concat(source, ": metadata '", key, "' is not an integer: '", get(key), "'"));
      }
    };
    auto real = [&](const char* key) {
      try {
        return std::stod(get(key));
      } catch (const std::logic_error&) {
        throw Error(detail::concat(source, ": metadata '", key, "' is not a number: '", get(key), "'"));
      }
    };
    ModelConfig c;
    c.name = get("model");
    const std::string& family = get("family");
    if (family == "cct") c.family = Family::kCCT;
    else if (family == "cvt") c.family = Family::kCVT;
    else if (family == "vit_lite") c.family = Family::kViTLite;
    else throw Error(detail::concat(source, ": unknown model family '", family, "' in metadata"));
    c.num_layers = integer("num_layers");
    c.num_heads = integer("num_heads");
    c.embedding_dim = integer("embedding_dim");
    c.mlp_ratio = real("mlp_ratio");
    c.kernel_size = integer("kernel_size");
    c.num_conv_layers = integer("num_conv_layers");
    c.patch_size = integer("patch_size");
    c.image_size = integer("image_size");
    c.in_channels = integer("in_channels");
    c.num_classes = integer("num_classes");
    const std::string& pe = get("positional_embedding");
    if (pe == "learnable") c.positional_embedding = nn::PositionalEmbedding::kLearnable;
    else if (pe == "sine") c.positional_embedding = nn::PositionalEmbedding::kSine;
    else if (pe == "none") c.positional_embedding = nn::PositionalEmbedding::kNone;
    else throw Error(detail::concat(source, ": unknown positional_embedding '", pe, "' in metadata"));
    c.dropout = real("dropout");
    c.attention_dropout = real("attention_dropout");
    c.stochastic_depth = real("stochastic_depth");
    return c;
  }

 private:
  static std::string number(double value) {
    std::ostringstream out;
    out.precision(17);
    out << value;
    return out.str();
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
