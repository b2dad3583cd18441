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
#include "../distributed/communicator.hpp"
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
  double loss_sum = 0;       // the sums the figures above come from, which shards add up
  int64_t top5_correct = 0;

  // loss, top1 and top5 from the sums.
  void finish() {
    const double samples = static_cast<double>(std::max<int64_t>(1, count));
    loss = loss_sum / samples;
    top1 = 100.0 * confusion.accuracy();
    top5 = 100.0 * static_cast<double>(top5_correct) / samples;
  }
};

// Data-parallel evaluation: each rank evaluated its shard of the split; afterwards every rank holds the
// whole split's figures (the counts are exact; the loss sums in another order than one process would).
inline void all_reduce(Evaluation& evaluation, distributed::Communicator& world) {
  if (world.size() == 1) return;
  const int64_t cells = evaluation.confusion.num_classes() * evaluation.confusion.num_classes();
  world.all_reduce_sum(evaluation.confusion.counts_data(), cells);
  int64_t counts[2] = {evaluation.count, evaluation.top5_correct};
  world.all_reduce_sum(counts, 2);
  evaluation.count = counts[0];
  evaluation.top5_correct = counts[1];
  evaluation.loss_sum = world.sum(evaluation.loss_sum);
  evaluation.finish();
}

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
  const int64_t k = std::min<int64_t>(5, num_classes);
  for (int64_t index = 0; index < num_batches; ++index) {
    Tensor<int64_t> labels;
    const Tensor<float> logits = batch_logits(index, labels);
    const int64_t size = labels.size(0);
    result.loss_sum += static_cast<double>(cross_entropy(logits, labels).item()) * static_cast<double>(size);
    result.top5_correct += topk_correct(logits, labels, k);
    result.confusion.add_batch(logits, labels);
    result.count += size;
    bar.update(index + 1, {{"acc", 100.0 * result.confusion.accuracy()}}, result.count);
  }
  bar.finish({{"acc", 100.0 * result.confusion.accuracy()}});
  if (was_training) model.train();
  result.finish();
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
