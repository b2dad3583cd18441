// What a cct_text training checkpoint holds beyond the model: the vocabulary (so the file alone
// classifies raw text), optimiser state, where training stands (TrainingPosition, shared with the image
// trainer), the RNG state, the data set and its class names, and the run's settings. One safetensors
// file, written atomically (temporary file, then rename).
#pragma once

#include <string>
#include <vector>

#include <cct/io/json.hpp>
#include <cct/io/safetensors.hpp>
#include <cct/models/checkpoint.hpp>
#include <cct/models/text.hpp>
#include <cct/optim/optimizer.hpp>
#include <cct/text/vocabulary.hpp>

#include "../trainer/training_state.hpp"

namespace cct::text_trainer {

using trainer::metadata_entry;
using trainer::TrainingPosition;

struct TextDataInfo {
  std::string dataset;  // "trec", "ag_news", ...
  std::vector<std::string> class_names;
};

inline void save_text_training_checkpoint(const std::string& path, const models::TextCompactTransformer<float>& model,
                                          const text::Vocabulary& vocabulary, const optim::Optimizer<float>& optimizer,
                                          const TrainingPosition& position, const TextDataInfo& data_info,
                                          const std::string& args_json) {
  io::Metadata metadata;
  metadata["training.epoch"] = std::to_string(position.epoch);
  metadata["training.batch"] = std::to_string(position.batch);
  metadata["training.global_step"] = std::to_string(position.global_step);
  metadata["training.best_accuracy"] = json::dump(json::Value(position.best_accuracy));
  metadata["training.best_epoch"] = std::to_string(position.best_epoch);
  metadata["training.epoch_loss_sum"] = json::dump(json::Value(position.epoch_loss_sum));
  metadata["training.epoch_correct"] = std::to_string(position.epoch_correct);
  metadata["training.epoch_seen"] = std::to_string(position.epoch_seen);
  metadata["training.rng_seed"] = std::to_string(default_generator().seed());
  metadata["training.rng_counter"] = std::to_string(default_generator().counter());
  metadata["training.args"] = args_json;
  json::Array names;
  for (const auto& name : data_info.class_names) names.push_back(json::Value(name));
  metadata["data.class_names"] = json::dump(json::Value(names));
  metadata["data.dataset"] = data_info.dataset;
  models::save_model(path, model, &vocabulary, metadata, optimizer.state_dict());
}

inline TextDataInfo read_text_data_info(const io::SafeTensorsReader& reader) {
  TextDataInfo info;
  const auto& metadata = reader.metadata();
  auto it = metadata.find("data.class_names");
  if (it != metadata.end()) {
    const json::Value names = json::parse(it->second);  // named: a temporary would die before the loop body
    for (const auto& v : names.as_array()) info.class_names.push_back(v.as_string());
  }
  if ((it = metadata.find("data.dataset")) != metadata.end()) info.dataset = it->second;
  return info;
}

// The settings of the run that wrote the checkpoint (empty for a plain model file).
inline json::Object read_training_args(const io::SafeTensorsReader& reader) {
  const auto it = reader.metadata().find("training.args");
  if (it == reader.metadata().end()) return {};
  json::Value parsed = json::parse(it->second);
  return parsed.is_object() ? parsed.as_object() : json::Object{};
}

// Restores model weights, optimiser state, RNG state and position from a training checkpoint.
inline TrainingPosition load_text_training_checkpoint(const std::string& path,
                                                      models::TextCompactTransformer<float>& model,
                                                      optim::Optimizer<float>& optimizer) {
  models::load_weights(path, model, /*strict=*/true);
  const io::SafeTensorsReader reader(path);
  auto state = optimizer.state_dict();
  for (auto& [name, tensor] : state) {
    if (!reader.contains(name))
      throw IoError("checkpoint '" + path + "' has no optimiser entry '" + name +
                    "': it was not written by `cct_text train`, or for another optimiser setup");
    tensor = reader.read<float>(name);
  }
  optimizer.load_state_dict(state);
  const auto& metadata = reader.metadata();
  TrainingPosition position;
  position.epoch = std::stoll(metadata_entry(metadata, "training.epoch", path));
  position.batch = std::stoll(metadata_entry(metadata, "training.batch", path));
  position.global_step = std::stoll(metadata_entry(metadata, "training.global_step", path));
  position.best_accuracy = std::stod(metadata_entry(metadata, "training.best_accuracy", path));
  position.best_epoch = std::stoll(metadata_entry(metadata, "training.best_epoch", path));
  position.epoch_loss_sum = std::stod(metadata_entry(metadata, "training.epoch_loss_sum", path));
  position.epoch_correct = std::stoll(metadata_entry(metadata, "training.epoch_correct", path));
  position.epoch_seen = std::stoll(metadata_entry(metadata, "training.epoch_seen", path));
  default_generator().set_state(std::stoull(metadata_entry(metadata, "training.rng_seed", path)),
                                std::stoull(metadata_entry(metadata, "training.rng_counter", path)));
  return position;
}

}  // namespace cct::text_trainer
