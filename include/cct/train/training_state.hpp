// Where a training run stands, as a training checkpoint stores it: epoch, batch, optimiser step, the
// best validation result so far, the running sums of the epoch in progress, and the RNG state. These
// travel as "training.*" metadata next to the model's tensors and the optimiser's "optimizer.*" tensors,
// so one safetensors file resumes a run exactly.
#pragma once

#include <cstdint>
#include <string>

#include "../core/generator.hpp"
#include "../io/json.hpp"
#include "../io/safetensors.hpp"
#include "../optim/optimizer.hpp"

namespace cct::train {

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

// The "training.*" entries of a checkpoint: the position, the default generator's state, and the run's
// settings (`args_json`, a JSON object without the output folder).
inline void write_training_metadata(io::Metadata& metadata, const TrainingPosition& position,
                                    const std::string& args_json) {
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
}

namespace detail {

inline const std::string& training_entry(const io::Metadata& metadata, const std::string& key,
                                         const std::string& path) {
  auto it = metadata.find(key);
  if (it == metadata.end())
    throw IoError("checkpoint '" + path + "' has no '" + key + "' entry: it is a model file, not a training checkpoint");
  return it->second;
}

// The whole entry must be one number: "12abc" is refused, not read as 12.
template <typename Number>
Number parse_training_number(const io::Metadata& metadata, const std::string& key, const std::string& path) {
  const std::string& text = training_entry(metadata, key, path);
  size_t used = 0;
  Number value{};
  try {
    if constexpr (std::is_same_v<Number, double>) value = std::stod(text, &used);
    else if constexpr (std::is_same_v<Number, uint64_t>) value = std::stoull(text, &used);
    else value = static_cast<Number>(std::stoll(text, &used));
  } catch (const std::logic_error&) {
    used = 0;
  }
  if (used == 0 || used != text.size())
    throw IoError("checkpoint '" + path + "': metadata '" + key + "' is not a number: '" + text + "'");
  return value;
}

}  // namespace detail

// The settings of the run that wrote a checkpoint (an empty object for a plain model file).
inline json::Object read_training_args(const io::SafeTensorsReader& reader) {
  const auto it = reader.metadata().find("training.args");
  if (it == reader.metadata().end()) return {};
  json::Value parsed = json::parse(it->second);
  return parsed.is_object() ? parsed.as_object() : json::Object{};
}

// Restores the optimiser's state, the default generator and the position from a training checkpoint
// (the model's weights are the caller's: they depend on the model's kind).
inline TrainingPosition read_training_state(const io::SafeTensorsReader& reader, optim::Optimizer<float>& optimizer) {
  const std::string& path = reader.path();
  auto state = optimizer.state_dict();
  for (auto& [name, tensor] : state) {
    if (!reader.contains(name))
      throw IoError("checkpoint '" + path + "' has no optimiser entry '" + name +
                    "': it was not written by `train`, or for another optimiser setup");
    tensor = reader.read<float>(name);
  }
  optimizer.load_state_dict(state);
  const io::Metadata& metadata = reader.metadata();
  using detail::parse_training_number;
  TrainingPosition position;
  position.epoch = parse_training_number<int64_t>(metadata, "training.epoch", path);
  position.batch = parse_training_number<int64_t>(metadata, "training.batch", path);
  position.global_step = parse_training_number<int64_t>(metadata, "training.global_step", path);
  position.best_accuracy = parse_training_number<double>(metadata, "training.best_accuracy", path);
  position.best_epoch = parse_training_number<int64_t>(metadata, "training.best_epoch", path);
  position.epoch_loss_sum = parse_training_number<double>(metadata, "training.epoch_loss_sum", path);
  position.epoch_correct = parse_training_number<int64_t>(metadata, "training.epoch_correct", path);
  position.epoch_seen = parse_training_number<int64_t>(metadata, "training.epoch_seen", path);
  if (position.epoch < 0 || position.batch < 0 || position.global_step < 0 || position.epoch_seen < 0)
    throw IoError("checkpoint '" + path + "': its training position (epoch " + std::to_string(position.epoch) +
                  ", batch " + std::to_string(position.batch) + ") is negative: the metadata is corrupt");
  default_generator().set_state(parse_training_number<uint64_t>(metadata, "training.rng_seed", path),
                                parse_training_number<uint64_t>(metadata, "training.rng_counter", path));
  return position;
}

}  // namespace cct::train
