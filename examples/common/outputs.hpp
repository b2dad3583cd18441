// What `eval` and `predict` write, the same for images and text: eval.json + confusion_matrix.svg in an
// optional folder, and the top classes of each prediction as text lines or JSON.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <cct/io/atomic_file.hpp>
#include <cct/io/json.hpp>
#include <cct/train/evaluate.hpp>
#include <cct/train/plots.hpp>
#include <cct/train/run_folder.hpp>

namespace trainer_cli {

// The checkpoint's class names, or "class 0", "class 1", ... when it has none (or the wrong number).
inline std::vector<std::string> class_names_or_indices(std::vector<std::string> names, int64_t num_classes) {
  if (static_cast<int64_t>(names.size()) == num_classes) return names;
  names.clear();
  for (int64_t c = 0; c < num_classes; ++c) names.push_back("class " + std::to_string(c));
  return names;
}

// Indices of the `k` most probable classes, most probable first (ties keep the lower index first).
inline std::vector<int64_t> top_classes(const float* probabilities, int64_t num_classes, int64_t k) {
  std::vector<int64_t> order(static_cast<size_t>(num_classes));
  for (int64_t c = 0; c < num_classes; ++c) order[static_cast<size_t>(c)] = c;
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t x, int64_t y) { return probabilities[x] > probabilities[y]; });
  order.resize(static_cast<size_t>(std::clamp<int64_t>(k, 1, num_classes)));
  return order;
}

// [{"class", "index", "probability"}, ...] for `order`.
inline cct::json::Array top_json(const std::vector<int64_t>& order, const float* probabilities,
                                 const std::vector<std::string>& class_names) {
  cct::json::Array top;
  for (int64_t c : order)
    top.push_back(cct::json::Value(cct::json::Object{{"class", cct::json::Value(class_names[static_cast<size_t>(c)])},
                                                     {"index", cct::json::Value(c)},
                                                     {"probability", cct::json::Value(static_cast<double>(probabilities[c]))}}));
  return top;
}

// One prediction as JSON: `input` (e.g. {"image": path}) plus the most probable class, the top classes,
// every probability and the raw logits (so results can be compared with PyTorch's to the last digit).
inline cct::json::Object prediction_json(cct::json::Object input, const float* probabilities, const float* logits,
                                         int64_t num_classes, int64_t top_k,
                                         const std::vector<std::string>& class_names) {
  const std::vector<int64_t> top = top_classes(probabilities, num_classes, top_k);
  cct::json::Array all_probabilities, raw_logits;
  for (int64_t c = 0; c < num_classes; ++c) {
    all_probabilities.push_back(cct::json::Value(static_cast<double>(probabilities[c])));
    raw_logits.push_back(cct::json::Value(static_cast<double>(logits[c])));
  }
  input.set("prediction", cct::json::Value(class_names[static_cast<size_t>(top.front())]));
  input.set("top", cct::json::Value(top_json(top, probabilities, class_names)));
  input.set("probabilities", cct::json::Value(std::move(all_probabilities)));
  input.set("logits", cct::json::Value(std::move(raw_logits)));
  return input;
}

// The document `predict --json` prints: the checkpoint, its class names and one entry per input, written
// as the predictions come (one per line), so memory stays bounded however many inputs there are.
class PredictionsWriter {
 public:
  PredictionsWriter(const std::string& checkpoint, const std::vector<std::string>& class_names) {
    cct::json::Array names;
    for (const auto& name : class_names) names.push_back(cct::json::Value(name));
    std::printf("{\n  \"checkpoint\": %s,\n  \"class_names\": %s,\n  \"predictions\": [",
                cct::json::dump(cct::json::Value(checkpoint)).c_str(), cct::json::dump(cct::json::Value(names)).c_str());
  }
  void add(const cct::json::Object& prediction) {
    std::printf("%s\n    %s", count_++ ? "," : "", cct::json::dump(cct::json::Value(prediction)).c_str());
  }
  void finish() { std::printf("\n  ]\n}\n"); }

 private:
  int64_t count_ = 0;
};

// "  87.50%  cat" lines for `order`.
inline void print_top(const std::vector<int64_t>& order, const float* probabilities,
                      const std::vector<std::string>& class_names) {
  for (int64_t c : order)
    std::printf("  %6.2f%%  %s\n", 100.0 * probabilities[c], class_names[static_cast<size_t>(c)].c_str());
}

// eval.json (the evaluation plus `fields`) and confusion_matrix.svg in `out`, created if needed.
inline void write_evaluation(const std::string& out, const cct::train::Evaluation& evaluation,
                             const std::vector<std::string>& class_names, const std::string& title,
                             const cct::json::Object& fields) {
  const cct::train::RunFolder folder(out);
  cct::train::write_confusion_matrix_svg(folder.file("confusion_matrix.svg"), evaluation.confusion, class_names, title);
  cct::json::Object document = fields;
  const cct::json::Object results = cct::train::evaluation_json(evaluation);  // named: a temporary would die before the loop body
  for (const auto& [key, value] : results.members()) document.set(key, value);
  cct::io::write_file_atomic(folder.file("eval.json"), cct::json::dump(cct::json::Value(document), 2) + "\n");
}

}  // namespace trainer_cli
