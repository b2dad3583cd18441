// Pretrained word vectors: a reader for the GloVe text format, vocabulary coverage, and the embedding
// matrix a text model starts from.
//
// Format: one word per line, "word v1 v2 … vD", fields separated by spaces or tabs. D is set by the
// first line and every line must have it; a word2vec-style first line "<count> <dim>" is accepted and
// skipped. A few lines of the large GloVe files (840B) hold words with spaces in them: the vector is
// always the LAST D fields and the word is what comes before them, but a line whose extra fields are
// all numbers is reported as having the wrong number of values. Errors are cct::IoError naming the
// file and line. Values are read as float.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../core/generator.hpp"
#include "../core/tensor.hpp"
#include "../io/input_file.hpp"
#include "tokenizer.hpp"
#include "vocabulary.hpp"

namespace cct::text {

struct GloveOptions {
  // Store only these words (every line is still read, validated and counted in the statistics);
  // nullptr stores all. Pass a vocabulary's tokens to load a full GloVe file in little memory.
  const std::unordered_set<std::string>* keep = nullptr;
  int64_t max_lines = 0;   // stop after this many vectors (GloVe files are sorted by frequency); 0: all
  bool lowercase = false;  // store words lower-cased (tokenizer rule 5); the first vector of a form wins
};

class WordVectors {
 public:
  int64_t dim() const { return dim_; }
  int64_t size() const { return static_cast<int64_t>(words_.size()); }
  const std::vector<std::string>& words() const { return words_; }
  bool contains(const std::string& word) const { return index_.count(word) != 0; }
  // The word's D values, or nullptr when it has none.
  const float* find(const std::string& word) const {
    const auto found = index_.find(word);
    return found == index_.end() ? nullptr : values_.data() + found->second * dim_;
  }
  // Mean and standard deviation of every value of every vector read from the file (kept or not).
  double value_mean() const { return count_ ? sum_ / static_cast<double>(count_) : 0.0; }
  double value_std() const {
    if (count_ < 2) return 0.0;
    const double mean = value_mean();
    const double n = static_cast<double>(count_);
    return std::sqrt(std::max(0.0, (sum_squares_ - n * mean * mean) / (n - 1)));
  }
  int64_t vectors_read() const { return vectors_read_; }
  int64_t duplicates() const { return duplicates_; }  // words seen again later in the file (ignored)

  // Adds a vector (first one wins); the reader's building block, also for vectors made in code.
  void add(std::string word, const float* values, int64_t dim) {
    if (dim_ == 0) dim_ = dim;
    CCT_CHECK(dim == dim_, "WordVectors::add: '", word, "' has ", dim, " values, the others ", dim_);
    account(values, dim);
    store(std::move(word), values);
  }

 private:
  friend WordVectors read_glove(const std::string& path, const GloveOptions& options);

  void account(const float* values, int64_t dim) {
    ++vectors_read_;
    for (int64_t i = 0; i < dim; ++i) {
      sum_ += values[i];
      sum_squares_ += static_cast<double>(values[i]) * values[i];
    }
    count_ += dim;
  }
  void store(std::string word, const float* values) {
    if (!index_.emplace(word, size()).second) {
      ++duplicates_;
      return;
    }
    words_.push_back(std::move(word));
    values_.insert(values_.end(), values, values + dim_);
  }

  int64_t dim_ = 0;
  std::vector<std::string> words_;
  std::vector<float> values_;  // size() × dim(), row-major
  std::unordered_map<std::string, int64_t> index_;
  double sum_ = 0, sum_squares_ = 0;
  int64_t count_ = 0, vectors_read_ = 0, duplicates_ = 0;
};

namespace detail {
inline bool parse_float(std::string_view text, float& value) {
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  return result.ec == std::errc() && result.ptr == text.data() + text.size() && std::isfinite(value);
}
inline bool parse_count(std::string_view text, int64_t& value) {
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  return result.ec == std::errc() && result.ptr == text.data() + text.size() && value > 0;
}
}  // namespace detail

inline WordVectors read_glove(const std::string& path, const GloveOptions& options = {}) {
  const std::string what = "GloVe";
  io::InputFile file(path, "GloVe file");
  const auto fail = [&](int64_t line, const std::string& message) {
    throw IoError(what + ": '" + path + "' line " + std::to_string(line) + ": " + message);
  };
  WordVectors vectors;
  std::string line;
  std::vector<std::string_view> fields;
  std::vector<float> values;
  int64_t number = 0;
  bool first = true;
  while (file.read_line(line)) {
    ++number;
    fields.clear();
    const std::string_view view(line);
    for (size_t i = 0; i < view.size();) {
      while (i < view.size() && (view[i] == ' ' || view[i] == '\t')) ++i;
      const size_t start = i;
      while (i < view.size() && view[i] != ' ' && view[i] != '\t') ++i;
      if (i > start) fields.push_back(view.substr(start, i - start));
    }
    if (fields.empty()) continue;
    if (first) {
      first = false;
      int64_t count = 0, dim = 0;
      if (fields.size() == 2 && detail::parse_count(fields[0], count) && detail::parse_count(fields[1], dim)) {
        vectors.dim_ = dim;  // word2vec header
        continue;
      }
      if (fields.size() < 2) fail(number, "expected 'word v1 ... vD', got one field");
      if (vectors.dim_ == 0) vectors.dim_ = static_cast<int64_t>(fields.size()) - 1;
    }
    const int64_t D = vectors.dim_;
    const int64_t extra = static_cast<int64_t>(fields.size()) - 1 - D;
    if (extra < 0)
      fail(number, "has " + std::to_string(fields.size() - 1) + " values, expected " + std::to_string(D) +
                       " (the dimension set by the first line)");
    values.resize(static_cast<size_t>(D));
    for (int64_t i = 0; i < D; ++i) {
      const std::string_view field = fields[static_cast<size_t>(extra + 1 + i)];
      if (!detail::parse_float(field, values[static_cast<size_t>(i)]))
        fail(number, "value " + std::to_string(i + 1) + " '" + std::string(field.substr(0, 30)) +
                         "' is not a finite number");
    }
    std::string word(fields[0]);
    if (extra > 0) {
      bool all_numbers = true;
      float ignored = 0;
      for (int64_t i = 1; i <= extra; ++i) all_numbers = all_numbers && detail::parse_float(fields[static_cast<size_t>(i)], ignored);
      if (all_numbers)
        fail(number, "has " + std::to_string(fields.size() - 1) + " values, expected " + std::to_string(D) +
                         " (the dimension set by the first line)");
      // The word is everything before the vector, inner spacing as in the file.
      const size_t word_end = static_cast<size_t>(fields[static_cast<size_t>(extra)].data() - view.data()) +
                              fields[static_cast<size_t>(extra)].size();
      word = std::string(view.substr(0, word_end));
    }
    if (!is_valid_utf8(word)) word = repair_utf8(word);
    if (options.lowercase) word = lowercase(word);
    vectors.account(values.data(), D);
    if (!options.keep || options.keep->count(word)) vectors.store(std::move(word), values.data());
    if (options.max_lines > 0 && vectors.vectors_read() >= options.max_lines) break;
  }
  if (vectors.vectors_read() == 0) throw IoError(what + ": '" + path + "' holds no vectors");
  return vectors;
}

// How much of a vocabulary has vectors. The reserved "<unk>" and "<pad>" are not counted.
struct Coverage {
  int64_t found = 0;
  int64_t total = 0;
  std::vector<std::string> missing;  // in vocabulary order (most frequent first)
  double fraction() const { return total ? static_cast<double>(found) / static_cast<double>(total) : 0.0; }
};

inline Coverage coverage(const WordVectors& vectors, const Vocabulary& vocabulary) {
  Coverage out;
  for (int64_t i = 2; i < vocabulary.size(); ++i) {
    const std::string& token = vocabulary.token(i);
    ++out.total;
    if (vectors.contains(token)) ++out.found;
    else out.missing.push_back(token);
  }
  return out;
}

// The (V, D) matrix a text model's embedding starts from, V = vocabulary.size(), D = vectors.dim():
//  - a word with a vector gets it;
//  - every other row ("<unk>" too, unless the file has a vector for it) is drawn from N(0, σ²) with σ = vectors.value_std() (the
//    spread of the pretrained values, so new words look like the rest), unless `std` ≥ 0 is given;
//  - the "<pad>" row (index 1) is zero.
// The whole matrix is drawn first, one draw per element in row order, so a missing word's row depends
// only on the generator and its index, not on which other words were found.
template <typename T = float>
Tensor<T> embedding_matrix(const Vocabulary& vocabulary, const WordVectors& vectors, Generator& gen,
                           double std = -1.0) {
  const int64_t V = vocabulary.size(), D = vectors.dim();
  CCT_CHECK(D > 0, "embedding_matrix: the word vectors are empty");
  Tensor<T> matrix = Tensor<T>::normal({V, D}, 0.0, std >= 0 ? std : vectors.value_std(), gen);
  for (int64_t i = 0; i < V; ++i) {
    T* row = matrix.data() + i * D;
    if (i == Vocabulary::kPaddingIndex) {
      std::fill(row, row + D, T(0));
    } else if (const float* found = vectors.find(vocabulary.token(i))) {
      for (int64_t j = 0; j < D; ++j) row[j] = static_cast<T>(found[j]);
    }
  }
  return matrix;
}

}  // namespace cct::text
