// Evaluation of a classifier over a sequence of batches: mean loss, top-1 and top-5 accuracy and the
// confusion matrix, in eval mode without gradients, with a progress bar. The batches come from a
// callback, so images and text (or any input a model takes) share this one loop.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

#include "../autograd/grad_mode.hpp"
#include "../io/json.hpp"
#include "../nn/module.hpp"
#include "../ops/loss.hpp"
#include "confusion_matrix.hpp"
#include "progress.hpp"

namespace cct::train {

struct Evaluation {
  double loss = 0, top1 = 0, top5 = 0;  // accuracies in %
  int64_t count = 0;
  ConfusionMatrix confusion{1};
};

// The logits of batch `index` (B, classes); `labels` receives its targets (B).
using EvalBatchFn = std::function<Tensor<float>(int64_t index, Tensor<int64_t>& labels)>;

inline Evaluation evaluate(nn::Module<float>& model, int64_t num_batches, int64_t num_classes, const EvalBatchFn& batch_logits,
                           const std::string& label = "eval", const std::string& unit = "img") {
  Evaluation result;
  result.confusion = ConfusionMatrix(num_classes);
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  ProgressOptions progress;
  progress.unit = unit;
  ProgressBar bar(num_batches, label, stdout, progress);
  double loss_sum = 0;
  int64_t top5 = 0;
  const int64_t k = std::min<int64_t>(5, num_classes);
  for (int64_t index = 0; index < num_batches; ++index) {
    Tensor<int64_t> labels;
    const Tensor<float> logits = batch_logits(index, labels);
    const int64_t size = labels.size(0);
    loss_sum += static_cast<double>(cross_entropy(logits, labels).item()) * static_cast<double>(size);
    top5 += topk_correct(logits, labels, k);
    result.confusion.add_batch(logits, labels);
    result.count += size;
    bar.update(index + 1, {{"acc", 100.0 * result.confusion.accuracy()}}, result.count);
  }
  bar.finish({{"acc", 100.0 * result.confusion.accuracy()}});
  if (was_training) model.train();
  const double count = static_cast<double>(std::max<int64_t>(1, result.count));
  result.loss = loss_sum / count;
  result.top1 = 100.0 * result.confusion.accuracy();
  result.top5 = 100.0 * static_cast<double>(top5) / count;
  return result;
}

// A metric for final.json / eval.json: JSON has no NaN or infinity, so a diverged model's loss is null.
inline json::Value finite_or_null(double value) { return std::isfinite(value) ? json::Value(value) : json::Value(); }

// The JSON form of an evaluation: top-1, top-5, loss (null when not finite), count, confusion matrix.
inline json::Object evaluation_json(const Evaluation& evaluation) {
  json::Object out;
  out.set("top1", finite_or_null(evaluation.top1));
  out.set("top5", finite_or_null(evaluation.top5));
  out.set("loss", finite_or_null(evaluation.loss));
  out.set("count", json::Value(evaluation.count));
  out.set("confusion_matrix", evaluation.confusion.to_json());
  return out;
}

}  // namespace cct::train
