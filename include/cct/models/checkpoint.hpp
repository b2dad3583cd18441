// Model checkpoints for every family (CCT, CVT, ViT-Lite and their text variants): safetensors files whose
// tensors carry the reference PyTorch names, so a file moves between PyTorch
// (`model.load_state_dict(safetensors.torch.load_file(path))`) and cct unchanged. One set of names, with
// the same meaning for image and text models:
//   save_model(path, model, metadata, extra_tensors)     state dict + config (+ vocabulary), atomically
//   load_weights(path, model, strict)                    loads INTO a model that already exists
//   load_model<T>(path), load_text_model<T>(path)        REBUILD the model from the stored config, then load
//   read_model_config(path), read_text_model_config(path) the stored config, validated and bounded by the file
// Metadata counts as cct's only when it carries the format marker ("format": "cct-checkpoint-1"). Any
// other safetensors file (a PyTorch state dict converted without --model, a file with foreign metadata
// such as {"model": "cct_2_3x2_32"}) holds weights only: it loads with load_weights into a model built
// with models::create / models::create_text, and load_model says so.
// A training checkpoint may add tensors under "optimizer." and "training."; loading a model ignores them.
//
// Layering: this header sits above models/ and io/safetensors.hpp and includes both; io/ never includes
// models/ (a ctest test, include_directions, enforces it).
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../io/safetensors.hpp"
#include "../text/vocabulary.hpp"
#include "registry.hpp"
#include "text.hpp"

namespace cct::models {

// The marker that makes a file's metadata cct's. Image and text checkpoints share it; the stored
// "family" (cct, cvt, vit_lite / text_cct, text_cvt, text_vit_lite) tells them apart.
inline constexpr const char* kCheckpointFormat = "cct-checkpoint-1";

// Tensors of a training checkpoint that are not the model's.
inline const std::vector<std::string>& non_model_prefixes() {
  static const std::vector<std::string> prefixes = {"optimizer.", "training."};
  return prefixes;
}

// Whether metadata was written by save_model (carries the format marker).
inline bool is_cct_checkpoint(const io::Metadata& metadata) {
  const auto it = metadata.find("format");
  return it != metadata.end() && it->second == kCheckpointFormat;
}

namespace checkpoint_detail {

inline std::string describe(const ModelConfig& c) {
  return cct::detail::concat("'", c.name, "' (", family_name(c.family), ", ", c.num_layers, " layers, D ", c.embedding_dim,
                             ", ", c.num_classes, " classes, ", c.in_channels, "×", c.image_size, "×", c.image_size,
                             " input)");
}
inline std::string describe(const TextModelConfig& c) {
  return cct::detail::concat("'", c.name, "' (", text_family_name(c.family), ", ", c.num_layers, " layers, D ",
                             c.embedding_dim, ", ", c.num_classes, " classes, vocabulary ", c.vocab_size, " × ",
                             c.word_embedding_dim, ", ", c.seq_len, " words)");
}

// The stored fields that fix the tensors' layout (the name and the regularisation do not).
inline ConfigMetadata architecture(const ModelConfig& c) {
  ConfigMetadata fields = c.to_metadata();
  for (const char* key : {"model", "dropout", "attention_dropout", "stochastic_depth"}) fields.erase(key);
  if (c.family == Family::kCCT) {
    fields.erase("patch_size");
  } else {
    fields.erase("kernel_size");
    fields.erase("num_conv_layers");
  }
  return fields;
}
inline ConfigMetadata architecture(const TextModelConfig& c) {
  ConfigMetadata fields = c.to_metadata();
  for (const char* key : {"model", "dropout", "attention_dropout", "stochastic_depth", "freeze_embedding"})
    fields.erase(key);
  return fields;
}

// Lower bounds on what a config's model holds and needs, in elements: `weights` counts the largest
// weight matrices (every one of them is a tensor of the file), `activation` the first activation of
// one input. Doubles: a hostile config's products must not wrap around.
struct SizeBound {
  double weights, activation;
};
inline double encoder_weights(int64_t num_layers, int64_t embedding_dim, double mlp_ratio, int64_t num_classes) {
  const double D = static_cast<double>(embedding_dim), hidden = std::floor(D * mlp_ratio);
  return static_cast<double>(num_layers) * (4 * D * D + 2 * D * hidden) + D * static_cast<double>(num_classes);
}
inline SizeBound size_bound(const ModelConfig& c) {
  const double D = static_cast<double>(c.embedding_dim), channels = static_cast<double>(c.in_channels);
  double weights = encoder_weights(c.num_layers, c.embedding_dim, c.mlp_ratio, c.num_classes);
  if (c.family == Family::kCCT) {
    const double k2 = static_cast<double>(c.kernel_size) * static_cast<double>(c.kernel_size);
    weights += channels * k2 * std::min(64.0, D) + static_cast<double>(c.num_conv_layers - 1) * 64 * k2 * std::min(64.0, D);
  } else {
    weights += channels * static_cast<double>(c.patch_size) * static_cast<double>(c.patch_size) * D;
  }
  const double side = static_cast<double>(c.image_size) + 2;
  return {weights, side * side * D};
}
inline SizeBound size_bound(const TextModelConfig& c) {
  const double D = static_cast<double>(c.embedding_dim), E = static_cast<double>(c.word_embedding_dim);
  const double window = static_cast<double>(c.family == TextFamily::kCCT ? c.kernel_size : c.patch_size);
  const double weights = static_cast<double>(c.vocab_size) * E + D * window * E +
                         encoder_weights(c.num_layers, c.embedding_dim, c.mlp_ratio, c.num_classes);
  return {weights, static_cast<double>(c.seq_len) * std::max(D, E)};
}

// A stored config is untrusted input. Its fields were range-checked as they were read
// (config_metadata.hpp); here the model it describes must fit the file, whose tensors hold every
// weight, so a corrupt or hostile checkpoint is refused with a message instead of making the loader
// allocate terabytes before the tensor check would catch it. The bounds are loose: the weights above
// within the file's element count, one input's first activation within 16 times it.
template <typename Config>
void check_fits_file(const Config& config, const io::SafeTensorsReader& reader) {
  double file_elements = 0;
  for (const io::TensorInfo& info : reader.tensors()) file_elements += static_cast<double>(info.numel);
  const SizeBound bound = size_bound(config);
  if (bound.weights > file_elements || bound.activation > 16 * file_elements)
    throw IoError(io::detail::file_prefix(reader.path()) + "its model config describes " + describe(config) +
                  ", a model larger than the " + cct::detail::concat(static_cast<int64_t>(file_elements)) +
                  " elements the file holds: the metadata is corrupt");
}

// Whether a stored family names a model of the other kind than the reader wants (an unknown family is
// left to the config reader, which lists the known ones).
inline bool other_kind(const std::string& family, bool want_text) {
  if (want_text) {
    for (const auto& entry : family_names())
      if (family == entry.first) return true;
  } else {
    for (const auto& entry : text_family_names())
      if (family == entry.first) return true;
  }
  return false;
}

// The config of the model a checkpoint was saved from, of the kind `Config` names: refused with what
// to do instead when the file holds weights only or a model of the other kind.
template <typename Config>
Config read_stored_config(const io::SafeTensorsReader& reader) {
  constexpr bool want_text = std::is_same_v<Config, TextModelConfig>;
  const std::string& path = reader.path();
  const io::Metadata& metadata = reader.metadata();
  if (!is_cct_checkpoint(metadata))
    throw IoError(io::detail::file_prefix(path) + "has no model config in its metadata (no \"format\": \"" +
                  kCheckpointFormat + "\" entry), so it holds weights only and cannot rebuild its model: build the "
                  "model with " + (want_text ? "models::create_text(name, {vocab_size})" : "models::create(name)") +
                  " and load the file into it with models::load_weights(path, model)");
  const auto family = metadata.find("family");
  if (family != metadata.end() && other_kind(family->second, want_text))
    throw IoError(io::detail::file_prefix(path) + "is a checkpoint of " + (want_text ? "an image" : "a text") +
                  " model (family '" + family->second + "'); rebuild it with " +
                  (want_text ? "models::load_model(path)" : "models::load_text_model(path)"));
  Config config = Config::from_metadata(metadata, "safetensors file '" + path + "'");
  check_fits_file(config, reader);
  return config;
}

// Strict loading first compares the stored architecture (when the file has one) with the model's, so
// a checkpoint of another model is refused with both descriptions rather than a list of tensors.
template <typename Config>
void check_same_architecture(const io::SafeTensorsReader& reader, const Config& mine) {
  if (!is_cct_checkpoint(reader.metadata())) return;  // weights only: the tensor check decides
  const Config stored = read_stored_config<Config>(reader);
  if (architecture(stored) != architecture(mine))
    throw IoError(io::detail::file_prefix(reader.path()) + "is a checkpoint of " + describe(stored) +
                  " but the model is " + describe(mine) + ", another architecture: build the model the checkpoint "
                  "was saved from (" + (std::is_same_v<Config, TextModelConfig> ? "models::load_text_model" : "models::load_model") +
                  "(path) rebuilds it), or load with strict = false to take the matching tensors only");
}

template <typename T, typename Model>
void save_with_config(const std::string& path, const Model& model, io::Metadata metadata,
                      const std::vector<std::pair<std::string, Tensor<T>>>& extra_tensors) {
  auto tensors = model.state_dict();
  tensors.insert(tensors.end(), extra_tensors.begin(), extra_tensors.end());
  for (const auto& [key, value] : model.config().to_metadata()) metadata[key] = value;
  metadata["format"] = kCheckpointFormat;
  io::save_safetensors(path, tensors, metadata);
}

}  // namespace checkpoint_detail

// ---- save ------------------------------------------------------------------------------------------
// The model's state dict (parameters, frozen tables, persistent buffers) plus `extra_tensors`, with its
// config and the format marker added to `metadata`, written atomically (a temporary file renamed into
// place).

template <typename T>
void save_model(const std::string& path, const CompactTransformer<T>& model, io::Metadata metadata = {},
                const std::vector<std::pair<std::string, Tensor<T>>>& extra_tensors = {}) {
  checkpoint_detail::save_with_config<T>(path, model, std::move(metadata), extra_tensors);
}

template <typename T>
void save_model(const std::string& path, const TextCompactTransformer<T>& model, io::Metadata metadata = {},
                const std::vector<std::pair<std::string, Tensor<T>>>& extra_tensors = {}) {
  checkpoint_detail::save_with_config<T>(path, model, std::move(metadata), extra_tensors);
}

// A text model with its vocabulary (under "vocabulary"), so load_text_model rebuilds a model that reads
// raw text.
template <typename T>
void save_model(const std::string& path, const TextCompactTransformer<T>& model, const text::Vocabulary* vocabulary,
                io::Metadata metadata = {}, const std::vector<std::pair<std::string, Tensor<T>>>& extra_tensors = {}) {
  if (vocabulary) {
    CCT_CHECK(vocabulary->size() == model.config().vocab_size, "save_model '", path, "': the vocabulary has ",
              vocabulary->size(), " tokens but the model's embedding has ", model.config().vocab_size, " rows");
    vocabulary->to_metadata(metadata);
  }
  checkpoint_detail::save_with_config<T>(path, model, std::move(metadata), extra_tensors);
}

// ---- read the stored config ------------------------------------------------------------------------
// Validated field by field and bounded by the file's size before anything is built from it.

inline ModelConfig read_model_config(const std::string& path) {
  return checkpoint_detail::read_stored_config<ModelConfig>(io::SafeTensorsReader(path));
}

inline TextModelConfig read_text_model_config(const std::string& path) {
  return checkpoint_detail::read_stored_config<TextModelConfig>(io::SafeTensorsReader(path));
}

// ---- load into an existing model ---------------------------------------------------------------------
// Strict: the file must hold exactly the model's tensors (training entries aside) with the same shapes,
// else one IoError names the file and every offending tensor; and a cct checkpoint of another
// architecture is refused up front with both descriptions. A weights-only file loads when its tensors
// match. strict = false (fine-tuning, e.g. a new head): loads what matches, returns what it skipped.

template <typename T>
io::LoadReport load_weights(const std::string& path, CompactTransformer<T>& model, bool strict = true) {
  if (strict) checkpoint_detail::check_same_architecture(io::SafeTensorsReader(path), model.config());
  return io::load_into(path, model.state_dict(), strict, non_model_prefixes());
}

template <typename T>
io::LoadReport load_weights(const std::string& path, TextCompactTransformer<T>& model, bool strict = true) {
  if (strict) checkpoint_detail::check_same_architecture(io::SafeTensorsReader(path), model.config());
  return io::load_into(path, model.state_dict(), strict, non_model_prefixes());
}

// ---- rebuild from the file -----------------------------------------------------------------------------

// The image model a checkpoint was saved from, with its weights.
template <typename T = float>
std::shared_ptr<CompactTransformer<T>> load_model(const std::string& path) {
  auto model = create<T>(read_model_config(path));
  load_weights(path, *model, /*strict=*/true);
  return model;
}

template <typename T = float>
struct LoadedTextModel {
  std::shared_ptr<TextCompactTransformer<T>> model;
  text::Vocabulary vocabulary;  // only the reserved tokens when the file holds none
  bool has_vocabulary = false;
};

// The text model a checkpoint was saved from, with its weights and (when saved with one) its vocabulary.
template <typename T = float>
LoadedTextModel<T> load_text_model(const std::string& path) {
  LoadedTextModel<T> out;
  out.model = create_text<T>(read_text_model_config(path));
  load_weights(path, *out.model, /*strict=*/true);
  const io::SafeTensorsReader reader(path);
  if (reader.metadata().count(text::Vocabulary::kMetadataKey)) {
    out.vocabulary = text::Vocabulary::from_metadata(reader.metadata(), path);
    out.has_vocabulary = true;
  }
  return out;
}

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_MODELS_CHECKPOINT_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE void save_model<T>(const std::string&, const CompactTransformer<T>&, io::Metadata, const std::vector<std::pair<std::string, Tensor<T>>>&); \
  CCT_EXTERN_TEMPLATE io::LoadReport load_weights<T>(const std::string&, CompactTransformer<T>&, bool); \
  CCT_EXTERN_TEMPLATE io::LoadReport load_weights<T>(const std::string&, TextCompactTransformer<T>&, bool); \
  CCT_EXTERN_TEMPLATE std::shared_ptr<CompactTransformer<T>> load_model<T>(const std::string&); \
  CCT_EXTERN_TEMPLATE LoadedTextModel<T> load_text_model<T>(const std::string&);
CCT_FOR_FLOATING_TYPES(CCT_MODELS_CHECKPOINT_TEMPLATES)
#undef CCT_MODELS_CHECKPOINT_TEMPLATES
#endif

}  // namespace cct::models
