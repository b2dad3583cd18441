// Classification counts: top-k hits of a batch of logits, and a confusion matrix with per-class
// accuracy, precision, a JSON form and a text table.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <cct/config.hpp>
#include <cct/core/tensor.hpp>
#include <cct/io/json.hpp>

namespace cct::train {

// How many rows of `logits` (B, C) have their target among the k highest scores. A target counts when
// fewer than k classes score strictly higher, so ties go in the model's favour (as a sort would for
// one of them); a NaN target score never counts.
template <typename T>
int64_t topk_correct(const Tensor<T>& logits, const Tensor<int64_t>& targets, int64_t k) {
  CCT_CHECK_SHAPE(logits.dim() == 2, "topk_correct: logits must be (batch, classes), got ", shape_str(logits.shape()));
  CCT_CHECK_SHAPE(targets.dim() == 1 && targets.size(0) == logits.size(0), "topk_correct: targets of shape ",
                  shape_str(targets.shape()), " do not match logits of shape ", shape_str(logits.shape()));
  const int64_t batch = logits.size(0), classes = logits.size(1);
  CCT_CHECK(k >= 1 && k <= classes, "topk_correct: k must be in [1, ", classes, "], got ", k);
  int64_t correct = 0;
  for (int64_t row = 0; row < batch; ++row) {
    const int64_t target = targets.data()[row];
    CCT_CHECK(target >= 0 && target < classes, "topk_correct: target ", target, " out of range for ", classes, " classes");
    const T* scores = logits.data() + row * classes;
    const T target_score = scores[target];
    if (std::isnan(target_score)) continue;
    const auto higher = std::count_if(scores, scores + classes, [&](T score) { return score > target_score; });
    correct += higher < k;
  }
  return correct;
}

// Counts of (true class, predicted class) pairs: rows are the true class, columns the prediction.
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int64_t num_classes) : num_classes_(num_classes) {
    CCT_CHECK(num_classes >= 1, "ConfusionMatrix: num_classes must be positive, got ", num_classes);
    counts_.assign(static_cast<size_t>(num_classes * num_classes), 0);
  }

  void add(int64_t predicted, int64_t target) {
    CCT_CHECK(predicted >= 0 && predicted < num_classes_ && target >= 0 && target < num_classes_,
              "ConfusionMatrix::add: predicted ", predicted, " / target ", target, " out of range for ", num_classes_,
              " classes");
    ++counts_[index(target, predicted)];
  }

  // Adds the argmax of each row of `logits` (B, C) against `targets` (B).
  template <typename T>
  void add_batch(const Tensor<T>& logits, const Tensor<int64_t>& targets) {
    CCT_CHECK_SHAPE(logits.dim() == 2 && logits.size(1) == num_classes_ && targets.dim() == 1 &&
                        targets.size(0) == logits.size(0),
                    "ConfusionMatrix::add_batch: expected logits (B, ", num_classes_, ") and targets (B), got ",
                    shape_str(logits.shape()), " and ", shape_str(targets.shape()));
    for (int64_t row = 0; row < logits.size(0); ++row) {
      const T* scores = logits.data() + row * num_classes_;
      add(std::max_element(scores, scores + num_classes_) - scores, targets.data()[row]);
    }
  }

  int64_t num_classes() const { return num_classes_; }
  // The counts, row-major (target, predicted), for summing the matrices of several processes.
  int64_t* counts_data() { return counts_.data(); }
  int64_t count(int64_t target, int64_t predicted) const {
    CCT_CHECK(predicted >= 0 && predicted < num_classes_ && target >= 0 && target < num_classes_,
              "ConfusionMatrix::count: target ", target, " / predicted ", predicted, " out of range for ", num_classes_,
              " classes");
    return counts_[index(target, predicted)];
  }
  int64_t total() const {
    int64_t sum = 0;
    for (int64_t c : counts_) sum += c;
    return sum;
  }
  int64_t correct() const {
    int64_t sum = 0;
    for (int64_t c = 0; c < num_classes_; ++c) sum += count(c, c);
    return sum;
  }
  int64_t class_total(int64_t target) const {
    int64_t sum = 0;
    for (int64_t p = 0; p < num_classes_; ++p) sum += count(target, p);
    return sum;
  }
  // Fraction correct in [0, 1]; 0 for an empty matrix.
  double accuracy() const {
    const int64_t n = total();
    return n > 0 ? static_cast<double>(correct()) / static_cast<double>(n) : 0.0;
  }
  // Per true class, the fraction predicted correctly (recall), in [0, 1]; NaN for a class with no samples.
  std::vector<double> per_class_accuracy() const {
    std::vector<double> result(static_cast<size_t>(num_classes_));
    for (int64_t c = 0; c < num_classes_; ++c) result[static_cast<size_t>(c)] = ratio(count(c, c), class_total(c));
    return result;
  }
  // Per predicted class, the fraction that was right (precision); NaN for a class never predicted.
  std::vector<double> per_class_precision() const {
    std::vector<double> result(static_cast<size_t>(num_classes_));
    for (int64_t c = 0; c < num_classes_; ++c) {
      int64_t predicted = 0;
      for (int64_t t = 0; t < num_classes_; ++t) predicted += count(t, c);
      result[static_cast<size_t>(c)] = ratio(count(c, c), predicted);
    }
    return result;
  }

  // {"num_classes", "total", "correct", "accuracy", "matrix": rows of counts (true class by row),
  //  "per_class_accuracy", "per_class_precision"} (null for an undefined per-class value).
  json::Object to_json() const {
    json::Array matrix;
    for (int64_t t = 0; t < num_classes_; ++t) {
      json::Array row;
      for (int64_t p = 0; p < num_classes_; ++p) row.emplace_back(count(t, p));
      matrix.emplace_back(std::move(row));
    }
    auto as_array = [](const std::vector<double>& values) {
      json::Array array;
      for (double v : values) array.push_back(std::isfinite(v) ? json::Value(v) : json::Value());
      return array;
    };
    return json::Object{{"num_classes", num_classes_},
                        {"total", total()},
                        {"correct", correct()},
                        {"accuracy", accuracy()},
                        {"matrix", std::move(matrix)},
                        {"per_class_accuracy", as_array(per_class_accuracy())},
                        {"per_class_precision", as_array(per_class_precision())}};
  }

  // An aligned text table: the matrix with a recall column when there are at most `max_matrix_classes`
  // classes, otherwise only the per-class accuracy. Class names default to the indices.
  std::string to_string(const std::vector<std::string>& class_names = {}, int64_t max_matrix_classes = 20) const {
    std::vector<std::string> names(static_cast<size_t>(num_classes_));
    for (int64_t c = 0; c < num_classes_; ++c)
      names[static_cast<size_t>(c)] = static_cast<int64_t>(class_names.size()) == num_classes_
                                          ? class_names[static_cast<size_t>(c)]
                                          : std::to_string(c);
    size_t name_width = 5;  // "class"
    for (const std::string& name : names) name_width = std::max(name_width, name.size());
    const std::vector<double> recall = per_class_accuracy();
    std::string out;
    if (num_classes_ <= max_matrix_classes) {
      // Columns are as wide as the longest count, at least 5: headings are the class names cut to that
      // width (the rows carry the full names), so ten CIFAR classes fit in 90 columns.
      const size_t column_width = std::max<size_t>(
          5, std::to_string(std::max<int64_t>(1, *std::max_element(counts_.begin(), counts_.end()))).size());
      out += "confusion matrix (rows: true class, columns: predicted class)\n";
      out += pad_right("", name_width);
      for (const std::string& name : names) out += "  " + pad_left(name.substr(0, column_width), column_width);
      out += "  recall\n";
      for (int64_t t = 0; t < num_classes_; ++t) {
        out += pad_right(names[static_cast<size_t>(t)], name_width);
        for (int64_t p = 0; p < num_classes_; ++p) out += "  " + pad_left(std::to_string(count(t, p)), column_width);
        out += "  " + pad_left(percent(recall[static_cast<size_t>(t)]), 6) + "\n";
      }
    } else {
      out += pad_right("class", name_width) + "  accuracy  correct/total\n";
      for (int64_t c = 0; c < num_classes_; ++c)
        out += pad_right(names[static_cast<size_t>(c)], name_width) + "  " + pad_left(percent(recall[static_cast<size_t>(c)]), 8) +
               "  " + std::to_string(count(c, c)) + "/" + std::to_string(class_total(c)) + "\n";
    }
    out += "accuracy " + percent(accuracy()) + " (" + std::to_string(correct()) + "/" + std::to_string(total()) + ")\n";
    return out;
  }

 private:
  size_t index(int64_t target, int64_t predicted) const { return static_cast<size_t>(target * num_classes_ + predicted); }
  static double ratio(int64_t part, int64_t whole) {
    return whole > 0 ? static_cast<double>(part) / static_cast<double>(whole) : std::numeric_limits<double>::quiet_NaN();
  }
  static std::string percent(double fraction) {
    if (!std::isfinite(fraction)) return "-";
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%.1f%%", 100.0 * fraction);
    return buffer;
  }
  static std::string pad_left(const std::string& text, size_t width) {
    return text.size() >= width ? text : std::string(width - text.size(), ' ') + text;
  }
  static std::string pad_right(const std::string& text, size_t width) {
    return text.size() >= width ? text : text + std::string(width - text.size(), ' ');
  }

  int64_t num_classes_;
  std::vector<int64_t> counts_;
};

}  // namespace cct::train
