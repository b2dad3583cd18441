// Model checkpoints: safetensors files whose tensors carry the reference PyTorch names, so a file moves
// between PyTorch (`model.load_state_dict(safetensors.torch.load_file(path))`) and cct unchanged.
//
// Metadata records the format and the model's config, so `load_compact_transformer(path)` rebuilds the
// model a file was saved from. A training checkpoint may add tensors under "optimizer." and
// "training." (optimiser state, RNG state, epoch); loading a model ignores them.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../models/registry.hpp"
#include "safetensors.hpp"

namespace cct::io {

inline constexpr const char* kCheckpointFormat = "cct-checkpoint-1";
inline const std::vector<std::string>& non_model_prefixes() {
  static const std::vector<std::string> prefixes = {"optimizer.", "training."};
  return prefixes;
}

// Saves the model's state dict (parameters, frozen tables, persistent buffers) plus `extra_tensors`
// and metadata, atomically (a temporary file renamed into place).
template <typename T>
void save_model(const std::string& path, const models::CompactTransformer<T>& model, Metadata metadata = {},
                const std::vector<std::pair<std::string, Tensor<T>>>& extra_tensors = {}) {
  auto tensors = model.state_dict();
  tensors.insert(tensors.end(), extra_tensors.begin(), extra_tensors.end());
  for (const auto& [key, value] : model.config().to_metadata()) metadata[key] = value;
  metadata["format"] = kCheckpointFormat;
  save_safetensors(path, tensors, metadata);
}

namespace detail {
inline std::string describe_config(const models::ModelConfig& c) {
  return cct::detail::concat("'", c.name, "' (", models::family_name(c.family), ", ", c.num_layers, " layers, D ",
                             c.embedding_dim, ", ", c.num_classes, " classes, ", c.in_channels, "×", c.image_size, "×",
                             c.image_size, " input)");
}
inline bool same_architecture(const models::ModelConfig& a, const models::ModelConfig& b) {
  return a.family == b.family && a.num_layers == b.num_layers && a.num_heads == b.num_heads &&
         a.embedding_dim == b.embedding_dim && a.mlp_ratio == b.mlp_ratio && a.num_classes == b.num_classes &&
         a.in_channels == b.in_channels && a.image_size == b.image_size &&
         (a.family == models::Family::kCCT ? a.kernel_size == b.kernel_size && a.num_conv_layers == b.num_conv_layers
                                           : a.patch_size == b.patch_size) &&
         a.positional_embedding == b.positional_embedding;
}

// A stored config is untrusted input: before a model is built from it, its sizes must be positive, its
// ratios finite, and the model it describes must fit the file, whose tensors hold every weight. So a
// corrupt or hostile checkpoint is refused with a message instead of making the loader allocate
// terabytes (or cast a NaN to a size) before the tensor check would catch it. The bounds are loose:
// the weight matrices of the encoder, head and first conv layer (a lower bound on the parameters), and
// the first activation of one image, (image_size + 2)² × D, within 16 times the file's elements.
inline void check_stored_config(const models::ModelConfig& c, const SafeTensorsReader& reader) {
  const std::string prefix = file_prefix(reader.path()) + "its model config ";
  const auto positive = [&](const char* key, int64_t value) {
    if (value < 1) throw IoError(prefix + "has " + key + " = " + std::to_string(value) + "; it must be positive");
  };
  positive("num_layers", c.num_layers);
  positive("num_heads", c.num_heads);
  positive("embedding_dim", c.embedding_dim);
  positive("image_size", c.image_size);
  positive("in_channels", c.in_channels);
  positive("num_classes", c.num_classes);
  if (c.family == models::Family::kCCT) {
    positive("kernel_size", c.kernel_size);
    positive("num_conv_layers", c.num_conv_layers);
  } else {
    positive("patch_size", c.patch_size);
  }
  if (!(std::isfinite(c.mlp_ratio) && c.mlp_ratio > 0 && c.mlp_ratio <= 64))
    throw IoError(prefix + "has mlp_ratio = " + std::to_string(c.mlp_ratio) + "; it must be in (0, 64]");
  for (const auto& [key, p] : {std::pair<const char*, double>{"dropout", c.dropout},
                               {"attention_dropout", c.attention_dropout},
                               {"stochastic_depth", c.stochastic_depth}})
    if (!(p >= 0 && p <= 1)) throw IoError(prefix + "has " + key + " = " + std::to_string(p) + "; it must be in [0, 1]");

  double file_elements = 0;
  for (const TensorInfo& info : reader.tensors()) file_elements += static_cast<double>(info.numel);
  const double D = static_cast<double>(c.embedding_dim), L = static_cast<double>(c.num_layers);
  const double hidden = std::floor(D * c.mlp_ratio);
  double weights = L * (4 * D * D + 2 * D * hidden) + D * static_cast<double>(c.num_classes);
  const double channels = static_cast<double>(c.in_channels);
  if (c.family == models::Family::kCCT) {
    const double k2 = static_cast<double>(c.kernel_size) * static_cast<double>(c.kernel_size);
    weights += channels * k2 * std::min(64.0, D) + static_cast<double>(c.num_conv_layers - 1) * 64 * k2 * std::min(64.0, D);
  } else {
    weights += channels * static_cast<double>(c.patch_size) * static_cast<double>(c.patch_size) * D;
  }
  const double side = static_cast<double>(c.image_size) + 2;
  if (weights > file_elements || side * side * D > 16 * file_elements)
    throw IoError(prefix + "describes " + describe_config(c) + ", a model larger than the " +
                  cct::detail::concat(static_cast<int64_t>(file_elements)) +
                  " elements the file holds: the metadata is corrupt");
}
}  // namespace detail

// The config stored in a checkpoint written by save_model, checked against the file (see above).
inline models::ModelConfig read_model_config(const std::string& path) {
  const SafeTensorsReader reader(path);
  const Metadata& metadata = reader.metadata();
  if (!metadata.count("model"))
    throw IoError(detail::file_prefix(path) + "has no model config in its metadata (not written by cct?); build the "
                  "model yourself and load the weights with load_model(path, model)");
  const models::ModelConfig config = models::ModelConfig::from_metadata(metadata, path);
  detail::check_stored_config(config, reader);
  return config;
}

// Loads weights into an existing model. Strict: the file must hold exactly the model's tensors (training
// entries aside) with the same shapes, else one IoError names the file and every offending tensor; and a
// file whose metadata describes another architecture is refused up front with both descriptions.
// strict = false (fine-tuning, e.g. a new head): loads what matches, returns what it skipped.
template <typename T>
LoadReport load_model(const std::string& path, models::CompactTransformer<T>& model, bool strict = true) {
  {
    const SafeTensorsReader reader(path);
    if (strict && reader.metadata().count("model")) {
      const models::ModelConfig stored = models::ModelConfig::from_metadata(reader.metadata(), path);
      if (!detail::same_architecture(stored, model.config()))
        throw IoError(cct::io::detail::file_prefix(path) + "is a checkpoint of " + detail::describe_config(stored) +
                      " but the model is " + detail::describe_config(model.config()) +
                      "; build the model the checkpoint was saved from, or load with strict = false to take the "
                      "matching tensors only");
    }
  }
  return load_into(path, model.state_dict(), strict, non_model_prefixes());
}

// Rebuilds the model a checkpoint was saved from and loads its weights.
template <typename T = float>
std::shared_ptr<models::CompactTransformer<T>> load_compact_transformer(const std::string& path) {
  auto model = models::create<T>(read_model_config(path));
  load_model(path, *model, /*strict=*/true);
  return model;
}

}  // namespace cct::io
