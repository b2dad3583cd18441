// An exponential moving average of a model's weights (EMA, as timm's ModelEmaV2 and short-budget recipes
// use): after every optimiser step  ema ← d·ema + (1 − d)·w  with d = min(decay, (1 + t) / (10 + t)) at
// step t, so the early average is not dominated by the random initial weights. Evaluating the averaged
// weights is usually better than the last ones, at no training cost.
//
// `Swap` puts the averaged weights into the model for a scope (validation, saving) and the trained
// ones back at its end; parameters keep their storage, so the optimiser's references stay valid.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../io/safetensors.hpp"
#include "../nn/module.hpp"

namespace cct::train {

class WeightAverage {
 public:
  static constexpr const char* kRawPrefix = "training.raw.";  // where checkpoints keep the trained weights

  WeightAverage(nn::Module<float>& model, double decay) : decay_(decay) {
    CCT_CHECK(std::isfinite(decay) && decay > 0 && decay < 1, "the EMA decay must be in (0, 1), got ", decay);
    for (auto& [name, tensor] : model.named_parameters()) {
      live_.emplace_back(name, tensor);
      average_.push_back(tensor.clone());
    }
  }

  double decay() const { return decay_; }

  // After optimiser step `step` (0-based).
  void update(int64_t step) {
    const float t = static_cast<float>(step);
    const float d = std::min(static_cast<float>(decay_), (1.0f + t) / (10.0f + t));
    for (size_t i = 0; i < live_.size(); ++i) {
      const float* w = live_[i].second.data();
      float* a = average_[i].data();
      const int64_t n = average_[i].numel();
      for (int64_t j = 0; j < n; ++j) a[j] = d * a[j] + (1.0f - d) * w[j];
    }
  }

  // Exchanges the model's weights with the averaged ones (call twice to undo).
  void swap() {
    for (size_t i = 0; i < live_.size(); ++i) {
      float* w = live_[i].second.data();
      std::swap_ranges(w, w + live_[i].second.numel(), average_[i].data());
    }
  }

  class Swap {
   public:
    explicit Swap(WeightAverage* average) : average_(average) {
      if (average_) average_->swap();
    }
    ~Swap() {
      if (average_) average_->swap();
    }
    Swap(const Swap&) = delete;
    Swap& operator=(const Swap&) = delete;

   private:
    WeightAverage* average_;
  };

  // The tensors not in the model right now, under kRawPrefix: inside a Swap, the trained weights.
  std::vector<std::pair<std::string, Tensor<float>>> stored(const std::string& prefix = kRawPrefix) const {
    std::vector<std::pair<std::string, Tensor<float>>> out;
    for (size_t i = 0; i < live_.size(); ++i) out.emplace_back(prefix + live_[i].first, average_[i]);
    return out;
  }

  // After the model was loaded from a checkpoint saved inside a Swap (so it holds the average): the
  // average takes those weights and the model gets the trained ones back from kRawPrefix.
  void restore(const io::SafeTensorsReader& reader) {
    for (size_t i = 0; i < live_.size(); ++i) {
      const std::string name = kRawPrefix + live_[i].first;
      if (!reader.contains(name))
        throw IoError("checkpoint '" + reader.path() + "' has no '" + name +
                      "': it was written without --ema, so it cannot resume a run with --ema");
      const Tensor<float> raw = reader.read<float>(name);
      CCT_CHECK(raw.numel() == live_[i].second.numel(), "checkpoint '", reader.path(), "': '", name, "' has ",
                raw.numel(), " elements, the model's '", live_[i].first, "' ", live_[i].second.numel());
      std::copy(live_[i].second.data(), live_[i].second.data() + raw.numel(), average_[i].data());
      std::copy(raw.data(), raw.data() + raw.numel(), live_[i].second.data());
    }
  }

 private:
  double decay_;
  std::vector<std::pair<std::string, Tensor<float>>> live_;
  std::vector<Tensor<float>> average_;
};

}  // namespace cct::train
