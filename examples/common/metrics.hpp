// Training metrics: a crash-safe metrics.jsonl log (one JSON object per epoch), a confusion matrix with
// per-class accuracy and a text rendering, and top-k counting.
//
// metrics.jsonl: each append opens the file, writes one whole line, fsyncs and closes, so after a crash
// the file holds complete lines plus at most one torn last line. Readers skip such a last line (with a
// warning); MetricsLog cuts it off before appending so it never ends up in the middle.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <cct/config.hpp>
#include <cct/core/tensor.hpp>
#include <cct/io/atomic_file.hpp>
#include <cct/io/json.hpp>

namespace cct::tools {

namespace detail {

inline bool file_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

inline void warn(std::FILE* warnings, const std::string& message) {
  if (warnings) std::fprintf(warnings, "warning: %s\n", message.c_str());
}

// JSON has no NaN or infinity; a diverged loss is logged as null (read back as a gap in the curves).
inline json::Value finite_or_null(const json::Value& value) {
  if (value.is_double() && !std::isfinite(value.as_double())) return json::Value();
  if (value.is_array()) {
    json::Array out;
    for (const json::Value& item : value.as_array()) out.push_back(finite_or_null(item));
    return json::Value(std::move(out));
  }
  if (value.is_object()) {
    json::Object out;
    for (const auto& [key, member] : value.as_object()) out.append_unchecked(key, finite_or_null(member));
    return json::Value(std::move(out));
  }
  return value;
}

// The records of a metrics file's text. A last line that does not parse (a write torn by a crash) is
// skipped with a warning; a bad line anywhere else means the file is corrupt and throws.
inline std::vector<json::Object> parse_metrics_lines(const std::string& text, const std::string& path,
                                                     std::FILE* warnings) {
  std::vector<std::pair<size_t, std::string>> lines;  // (line number, text) of the non-blank lines
  size_t start = 0, number = 1;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.emplace_back(number, std::move(line));
    start = end + 1;
    ++number;
  }
  std::vector<json::Object> records;
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto& [line_number, line] = lines[i];
    const std::string where = "metrics file '" + path + "' line " + std::to_string(line_number);
    json::Value value;
    try {
      value = json::parse(line);
    } catch (const json::ParseError& error) {
      if (i + 1 == lines.size()) {
        warn(warnings, where + " is incomplete (an interrupted write?) and was ignored: " + error.what());
        break;
      }
      throw IoError(where + " is not valid JSON: " + error.what());
    }
    if (!value.is_object()) throw IoError(where + " is " + json::type_name(value.type()) + ", expected an object");
    records.push_back(std::move(value.as_object()));
  }
  return records;
}

}  // namespace detail

// Every record of a metrics.jsonl file, in order. Throws cct::IoError when the file is missing or
// corrupt; an incomplete last line is ignored with a warning on `warnings` (nullptr: silently).
inline std::vector<json::Object> read_metrics(const std::string& path, std::FILE* warnings = stderr) {
  return detail::parse_metrics_lines(io::read_file(path), path, warnings);
}

// For resuming at the end of `epoch`: rewrites the file (atomically) keeping the records whose "epoch"
// is <= `epoch` and those without an "epoch". A missing file is left missing. Returns the number of
// records removed.
inline size_t truncate_after_epoch(const std::string& path, int64_t epoch, std::FILE* warnings = stderr) {
  if (!detail::file_exists(path)) return 0;
  const std::vector<json::Object> records = read_metrics(path, warnings);
  std::string kept;
  size_t removed = 0;
  for (const json::Object& record : records) {
    const json::Value* record_epoch = record.find("epoch");
    if (record_epoch && record_epoch->is_number() && record_epoch->as_double() > static_cast<double>(epoch)) {
      ++removed;
      continue;
    }
    kept += json::dump(json::Value(record)) + "\n";
  }
  io::write_file_atomic(path, kept);
  return removed;
}

// Appends records to a metrics.jsonl file, one line each, durably (see the file comment).
class MetricsLog {
 public:
  // Cuts an incomplete last line left by a crash (with a warning), so new lines start on a line of
  // their own. The file is created by the first append.
  explicit MetricsLog(std::string path, std::FILE* warnings = stderr) : path_(std::move(path)) {
    if (!detail::file_exists(path_)) return;
    const std::string text = io::read_file(path_);
    if (text.empty() || text.back() == '\n') return;
    const size_t keep = text.find_last_of('\n') == std::string::npos ? 0 : text.find_last_of('\n') + 1;
    detail::warn(warnings, "metrics file '" + path_ + "' ended in an incomplete line (an interrupted write?); removed it");
    if (::truncate(path_.c_str(), static_cast<off_t>(keep)) != 0) {
      const int error = errno;
      throw IoError("cannot truncate '" + path_ + "': " + io::detail::errno_text(error));
    }
  }

  const std::string& path() const { return path_; }

  // Writes `record` as one compact JSON line (non-finite numbers become null) and fsyncs it.
  void append(const json::Object& record) const {
    const std::string line = json::dump(detail::finite_or_null(json::Value(record))) + "\n";
    const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) fail("cannot open", errno);
    // O_APPEND puts the whole write at the end; a loop only continues after a partial write.
    for (size_t done = 0; done < line.size();) {
      const ssize_t written = ::write(fd, line.data() + done, line.size() - done);
      if (written < 0) {
        if (errno == EINTR) continue;
        const int error = errno;
        ::close(fd);
        fail("cannot append to", error);
      }
      done += static_cast<size_t>(written);
    }
    if (::fsync(fd) != 0) {
      const int error = errno;
      ::close(fd);
      fail("cannot fsync", error);
    }
    if (::close(fd) != 0) fail("cannot close", errno);
  }

 private:
  [[noreturn]] void fail(const char* what, int error) const {
    throw IoError(std::string(what) + " the metrics file '" + path_ + "': " + io::detail::errno_text(error));
  }

  std::string path_;
};

// The values of `key` across records, NaN where a record lacks it or holds null (for plotting).
inline std::vector<double> metric_column(const std::vector<json::Object>& records, const std::string& key) {
  std::vector<double> column;
  column.reserve(records.size());
  for (const json::Object& record : records) {
    const json::Value* value = record.find(key);
    column.push_back(value && value->is_number() ? value->as_double() : std::numeric_limits<double>::quiet_NaN());
  }
  return column;
}

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

}  // namespace cct::tools
