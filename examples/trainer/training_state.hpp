// What a training checkpoint holds beyond the model: optimiser state, where training stands (epoch,
// batch, step), the RNG state, the best validation result, and the data normalisation and class names
// that `predict` needs. Saved in one safetensors file next to the model weights, atomically.
#pragma once

#include <string>
#include <vector>

#include <cct/models/checkpoint.hpp>
#include <cct/io/json.hpp>
#include <cct/optim/optimizer.hpp>

namespace cct::trainer {

struct TrainingPosition {
  int64_t epoch = 0;        // the epoch to run next (or in progress, when batch > 0)
  int64_t batch = 0;        // the next batch within that epoch
  int64_t global_step = 0;  // optimiser steps so far
  double best_accuracy = -1;
  int64_t best_epoch = -1;
  // Running sums of the epoch in progress, so an epoch resumed mid-way reports the same numbers.
  double epoch_loss_sum = 0;
  int64_t epoch_correct = 0, epoch_seen = 0;
};

struct DataInfo {
  std::vector<std::string> class_names;
  std::vector<float> mean, std;
};

inline std::string floats_to_json(const std::vector<float>& values) {
  json::Array array;
  for (float v : values) array.push_back(json::Value(static_cast<double>(v)));
  return json::dump(json::Value(array));
}
inline std::vector<float> floats_from_json(const std::string& text) {
  std::vector<float> out;
  const json::Value parsed = json::parse(text);  // named: a temporary would die before the loop body
  for (const auto& v : parsed.as_array()) out.push_back(static_cast<float>(v.as_double()));
  return out;
}

// Writes model + optimiser + position + RNG state + data info to `path` (temp file, then rename).
inline void save_training_checkpoint(const std::string& path, const models::CompactTransformer<float>& model,
                                     const optim::Optimizer<float>& optimizer, const TrainingPosition& position,
                                     const DataInfo& data_info, const std::string& args_json) {
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
  metadata["data.mean"] = floats_to_json(data_info.mean);
  metadata["data.std"] = floats_to_json(data_info.std);
  models::save_model(path, model, metadata, optimizer.state_dict());
}

inline const std::string& metadata_entry(const io::Metadata& metadata, const std::string& key, const std::string& path) {
  auto it = metadata.find(key);
  if (it == metadata.end())
    throw IoError("checkpoint '" + path + "' has no '" + key + "' entry: it is a model file, not a training checkpoint");
  return it->second;
}

inline DataInfo read_data_info(const io::SafeTensorsReader& reader) {
  DataInfo info;
  const auto& metadata = reader.metadata();
  auto it = metadata.find("data.class_names");
  if (it != metadata.end()) {
    const json::Value names = json::parse(it->second);
    for (const auto& v : names.as_array()) info.class_names.push_back(v.as_string());
  }
  if ((it = metadata.find("data.mean")) != metadata.end()) info.mean = floats_from_json(it->second);
  if ((it = metadata.find("data.std")) != metadata.end()) info.std = floats_from_json(it->second);
  return info;
}

// Restores model weights, optimiser state, RNG state and position from a training checkpoint.
inline TrainingPosition load_training_checkpoint(const std::string& path, models::CompactTransformer<float>& model,
                                                 optim::Optimizer<float>& optimizer) {
  models::load_weights(path, model, /*strict=*/true);
  const io::SafeTensorsReader reader(path);
  auto state = optimizer.state_dict();
  for (auto& [name, tensor] : state) {
    if (!reader.contains(name))
      throw IoError("checkpoint '" + path + "' has no optimiser entry '" + name +
                    "': it was not written by `train`, or for another optimiser setup");
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

}  // namespace cct::trainer
