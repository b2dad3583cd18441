// The model registry: every variant of the paper by name, e.g.
//   auto model = cct::models::create("cct_7_3x1_32", {.num_classes = 10});
// Names: cct_L_KxC_R, cvt_L_P_R, vit_L_P_R (alias vit_lite_L_P_R), each with an optional "_sine"
// suffix (fixed sinusoidal positional table), plus cct_7_3x1_32_c100 (CIFAR-100).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cct.hpp"
#include "compact_transformer.hpp"
#include "cvt.hpp"
#include "vit_lite.hpp"

namespace cct::models {

// Overrides on top of a registered variant; zero / empty means "as registered".
struct ModelOptions {
  int64_t num_classes = 0;
  int64_t in_channels = 0;
  int64_t image_size = 0;      // e.g. 28 for Fashion-MNIST
  std::optional<nn::PositionalEmbedding> positional_embedding;
  std::optional<double> dropout, attention_dropout, stochastic_depth;
  uint64_t seed = 0;
};

// Every registered name, in a stable order.
inline std::vector<std::string> registered_models() {
  std::vector<std::string> base = {"cct_2_3x2_32",  "cct_4_3x2_32",   "cct_6_3x1_32",   "cct_6_3x2_32",
                                   "cct_7_3x1_32",  "cct_7_3x2_32",   "cct_7_3x1_32_c100", "cct_7_7x2_224",
                                   "cct_14_7x2_224", "cct_14_7x2_384", "cvt_2_4_32",     "cvt_4_4_32",
                                   "cvt_6_4_32",    "cvt_7_4_32",     "vit_2_4_32",     "vit_4_4_32",
                                   "vit_6_4_32",    "vit_7_4_32"};
  std::vector<std::string> names;
  for (const auto& name : base) {
    names.push_back(name);
    names.push_back(name + "_sine");
  }
  return names;
}

// The config of a registered name (without options applied).
inline ModelConfig registered_config(const std::string& requested) {
  std::string name = requested;
  if (name.rfind("vit_lite_", 0) == 0) name = "vit_" + name.substr(9);
  bool sine = false;
  if (name.size() > 5 && name.compare(name.size() - 5, 5, "_sine") == 0) {
    sine = true;
    name = name.substr(0, name.size() - 5);
  }
  ModelConfig config;
  bool found = false;
  for (const auto& known : registered_models()) found = found || known == name;
  if (found) {
    int layers = 0, kernel = 0, convs = 0, size = 0;
    char tail[16] = {0};
    if (std::sscanf(name.c_str(), "cct_%d_%dx%d_%d%15s", &layers, &kernel, &convs, &size, tail) >= 4) {
      config = cct_config(layers, kernel, convs, size);
      if (std::string(tail) == "_c100") config.num_classes = 100;
      if (size == 224 && layers == 7) config.num_classes = 102;  // Flowers-102
      if (layers == 14) config.num_classes = 1000;                // ImageNet
    } else if (std::sscanf(name.c_str(), "cvt_%d_%d_%d", &layers, &kernel, &size) == 3) {
      config = cvt_config(layers, kernel, size);
    } else if (std::sscanf(name.c_str(), "vit_%d_%d_%d", &layers, &kernel, &size) == 3) {
      config = vit_lite_config(layers, kernel, size);
    } else {
      found = false;
    }
  }
  if (!found) {
    std::string known;
    for (const auto& n : registered_models()) known += (known.empty() ? "" : ", ") + n;
    throw Error(detail::concat("unknown model '", requested, "'; known models: ", known));
  }
  config.name = requested;
  if (sine) config.positional_embedding = nn::PositionalEmbedding::kSine;
  return config;
}

inline ModelConfig make_config(const std::string& name, const ModelOptions& options = {}) {
  ModelConfig config = registered_config(name);
  if (options.num_classes) config.num_classes = options.num_classes;
  if (options.in_channels) config.in_channels = options.in_channels;
  if (options.image_size) config.image_size = options.image_size;
  if (options.positional_embedding) config.positional_embedding = *options.positional_embedding;
  if (options.dropout) config.dropout = *options.dropout;
  if (options.attention_dropout) config.attention_dropout = *options.attention_dropout;
  if (options.stochastic_depth) config.stochastic_depth = *options.stochastic_depth;
  config.seed = options.seed;
  return config;
}

template <typename T = float>
std::shared_ptr<CompactTransformer<T>> create(const ModelConfig& config) {
  return std::make_shared<CompactTransformer<T>>(config);
}

template <typename T = float>
std::shared_ptr<CompactTransformer<T>> create(const std::string& name, const ModelOptions& options = {}) {
  return create<T>(make_config(name, options));
}

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_MODELS_REGISTRY_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE std::shared_ptr<CompactTransformer<T>> create<T>(const ModelConfig&); \
  CCT_EXTERN_TEMPLATE std::shared_ptr<CompactTransformer<T>> create<T>(const std::string&, const ModelOptions&);
CCT_FOR_FLOATING_TYPES(CCT_MODELS_REGISTRY_TEMPLATES)
#undef CCT_MODELS_REGISTRY_TEMPLATES
#endif

}  // namespace cct::models
