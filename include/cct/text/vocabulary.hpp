// Vocabulary: the token ↔ index table of a text model, built from training text, with encoding of
// texts into fixed-length index sequences plus padding masks, and JSON / checkpoint-metadata storage.
//
// Layout: index 0 is "<unk>" (every token not in the table) and index 1 is "<pad>" (filler after the
// last token; the text models' padding index is 1, as in the reference). Corpus tokens follow, most
// frequent first; equal counts are ordered by the tokens' bytes (so "apple" before "banana"), which
// makes a vocabulary a pure function of its corpus and options. The tokenizer options travel with
// the vocabulary, so text is always split the way the vocabulary was built.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../core/tensor.hpp"
#include "../io/atomic_file.hpp"
#include "../io/json.hpp"
#include "tokenizer.hpp"

namespace cct::text {

struct VocabularyOptions {
  int64_t min_freq = 1;  // a token needs at least this many occurrences in the corpus
  int64_t max_size = 0;  // largest vocabulary, the two reserved tokens included (0: no limit)
};

// One text as the model sees it: seq_len indices and the matching mask (1 = real token, 0 = padding).
struct EncodedText {
  std::vector<int64_t> ids;
  std::vector<uint8_t> mask;
  int64_t num_tokens = 0;  // tokens the text had before truncation to seq_len
};

// Texts stacked for a model: ids (B, seq_len) and mask (B, seq_len).
struct EncodedBatch {
  Tensor<int64_t> ids;
  Tensor<uint8_t> mask;
};

class Vocabulary {
 public:
  static constexpr int64_t kUnknownIndex = 0;
  static constexpr int64_t kPaddingIndex = 1;
  static constexpr const char* kUnknownToken = "<unk>";
  static constexpr const char* kPaddingToken = "<pad>";
  static constexpr const char* kFormat = "cct-vocabulary-1";
  static constexpr const char* kMetadataKey = "vocabulary";

  // The two reserved tokens only.
  explicit Vocabulary(TokenizerOptions tokenizer_options = {})
      : Vocabulary(std::vector<std::string>{kUnknownToken, kPaddingToken}, tokenizer_options) {}

  // From a complete token list in index order; it must start with "<unk>", "<pad>" and hold each token once.
  explicit Vocabulary(std::vector<std::string> tokens, TokenizerOptions tokenizer_options = {})
      : tokens_(std::move(tokens)), tokenizer_(tokenizer_options) {
    CCT_CHECK(tokens_.size() >= 2 && tokens_[0] == kUnknownToken && tokens_[1] == kPaddingToken,
              "Vocabulary: the token list must start with \"", kUnknownToken, "\" and \"", kPaddingToken, "\"");
    index_.reserve(tokens_.size());
    for (size_t i = 0; i < tokens_.size(); ++i) {
      CCT_CHECK(!tokens_[i].empty(), "Vocabulary: token ", i, " is empty");
      CCT_CHECK(index_.emplace(tokens_[i], static_cast<int64_t>(i)).second, "Vocabulary: token \"", tokens_[i],
                "\" appears twice (indices ", index_[tokens_[i]], " and ", i, ")");
    }
  }

  // Counts the tokens of `texts` and keeps those with count ≥ min_freq, most frequent first (ties by
  // bytes), cut to max_size entries in all.
  static Vocabulary build(const std::vector<std::string>& texts, const VocabularyOptions& options = {},
                          const TokenizerOptions& tokenizer_options = {}) {
    const Tokenizer tokenizer(tokenizer_options);
    std::unordered_map<std::string, int64_t> counts;
    std::vector<std::string> tokens;
    for (const auto& text : texts) {
      tokens.clear();
      tokenizer.tokenize_into(text, tokens);
      for (auto& token : tokens) ++counts[std::move(token)];
    }
    return from_counts(counts, options, tokenizer_options);
  }

  // The same from token counts gathered elsewhere.
  static Vocabulary from_counts(const std::unordered_map<std::string, int64_t>& counts,
                                const VocabularyOptions& options = {}, const TokenizerOptions& tokenizer_options = {}) {
    CCT_CHECK(options.min_freq >= 1, "Vocabulary: min_freq must be at least 1, got ", options.min_freq);
    CCT_CHECK(options.max_size == 0 || options.max_size >= 2, "Vocabulary: max_size must be 0 (no limit) or at least 2 "
              "(the reserved \"<unk>\" and \"<pad>\"), got ", options.max_size);
    std::vector<std::pair<std::string, int64_t>> kept;
    for (const auto& [token, count] : counts)
      if (count >= options.min_freq && token != kUnknownToken && token != kPaddingToken) kept.emplace_back(token, count);
    std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    if (options.max_size > 0 && static_cast<int64_t>(kept.size()) > options.max_size - 2)
      kept.resize(static_cast<size_t>(options.max_size - 2));
    std::vector<std::string> tokens = {kUnknownToken, kPaddingToken};
    tokens.reserve(kept.size() + 2);
    for (auto& entry : kept) tokens.push_back(std::move(entry.first));
    return Vocabulary(std::move(tokens), tokenizer_options);
  }

  // ---- lookups -----------------------------------------------------------------------------------
  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  bool contains(const std::string& token) const { return index_.count(token) != 0; }
  // The token's index, kUnknownIndex when it is not in the vocabulary.
  int64_t index(const std::string& token) const {
    const auto found = index_.find(token);
    return found == index_.end() ? kUnknownIndex : found->second;
  }
  const std::string& token(int64_t index) const {
    CCT_CHECK(index >= 0 && index < size(), "Vocabulary: index ", index, " is out of range for ", size(), " tokens");
    return tokens_[static_cast<size_t>(index)];
  }
  const std::vector<std::string>& tokens() const { return tokens_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }

  std::vector<int64_t> indices(const std::vector<std::string>& tokens) const {
    std::vector<int64_t> out;
    out.reserve(tokens.size());
    for (const auto& token : tokens) out.push_back(index(token));
    return out;
  }

  // ---- encoding ----------------------------------------------------------------------------------
  // The first seq_len tokens of `text` as indices, then "<pad>" up to seq_len; mask 1 on real tokens.
  EncodedText encode(std::string_view text, int64_t seq_len) const {
    EncodedText out;
    out.ids.resize(static_cast<size_t>(checked_length(seq_len)));
    out.mask.resize(out.ids.size());
    std::vector<std::string> tokens;
    out.num_tokens = encode_into(text, seq_len, tokens, out.ids.data(), out.mask.data());
    return out;
  }

  // Every text of `texts`, stacked: ids (B, seq_len), mask (B, seq_len).
  EncodedBatch encode_batch(const std::vector<std::string>& texts, int64_t seq_len) const {
    std::vector<int64_t> rows(texts.size());
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
    return encode_batch(texts, rows, seq_len);
  }
  // texts[rows[0]], texts[rows[1]], ... stacked (a mini-batch of a data set).
  EncodedBatch encode_batch(const std::vector<std::string>& texts, const std::vector<int64_t>& rows,
                            int64_t seq_len) const {
    const int64_t length = checked_length(seq_len), batch = static_cast<int64_t>(rows.size());
    EncodedBatch out{Tensor<int64_t>::empty({batch, length}), Tensor<uint8_t>::empty({batch, length})};
    std::vector<std::string> tokens;
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t row = rows[static_cast<size_t>(b)];
      CCT_CHECK(row >= 0 && row < static_cast<int64_t>(texts.size()), "Vocabulary::encode_batch: row ", row,
                " is out of range for ", texts.size(), " texts");
      encode_into(texts[static_cast<size_t>(row)], length, tokens, out.ids.data() + b * length,
                  out.mask.data() + b * length);
    }
    return out;
  }

  // The tokens of `ids` joined by spaces, padding left out (for looking at what a model was given).
  std::string decode(const std::vector<int64_t>& ids) const {
    std::string out;
    for (int64_t id : ids) {
      if (id == kPaddingIndex) continue;
      if (!out.empty()) out += ' ';
      out += token(id);
    }
    return out;
  }

  // ---- storage -----------------------------------------------------------------------------------
  // {"format": "cct-vocabulary-1", "lowercase": ..., "split_punctuation": ..., "tokens": [...]}
  // with the tokens in index order.
  std::string to_json(int indent = -1) const {
    json::Array tokens;
    tokens.reserve(tokens_.size());
    for (const auto& token : tokens_) tokens.emplace_back(token);
    const json::Object document{{"format", kFormat},
                                {"lowercase", tokenizer_.options().lowercase},
                                {"split_punctuation", tokenizer_.options().split_punctuation},
                                {"tokens", std::move(tokens)}};
    return json::dump(document, indent);
  }

  // Parses what to_json wrote; `source` (a file name) is quoted in errors, which are cct::IoError.
  static Vocabulary from_json(std::string_view text, const std::string& source = "vocabulary") {
    const std::string prefix = "vocabulary '" + source + "': ";
    try {
      const json::Value document = json::parse(text);
      if (!document.is_object()) throw IoError(prefix + "expected a JSON object");
      const json::Value* format = document.find("format");
      if (!format || !format->is_string() || format->as_string() != kFormat)
        throw IoError(prefix + "not a cct vocabulary (expected \"format\": \"" + kFormat + "\")");
      TokenizerOptions options;
      options.lowercase = document.at("lowercase").as_bool();
      options.split_punctuation = document.at("split_punctuation").as_bool();
      std::vector<std::string> tokens;
      for (const auto& token : document.at("tokens").as_array()) tokens.push_back(token.as_string());
      return Vocabulary(std::move(tokens), options);
    } catch (const IoError&) {
      throw;
    } catch (const Error& error) {
      throw IoError(prefix + error.what());
    }
  }

  void save(const std::string& path) const { io::write_file_atomic(path, to_json(1) + "\n"); }
  static Vocabulary load(const std::string& path) { return from_json(io::read_file(path), path); }

  // Stores the vocabulary under metadata["vocabulary"] (compact JSON), for a checkpoint.
  void to_metadata(std::map<std::string, std::string>& metadata) const { metadata[kMetadataKey] = to_json(); }
  static Vocabulary from_metadata(const std::map<std::string, std::string>& metadata, const std::string& source) {
    const auto found = metadata.find(kMetadataKey);
    if (found == metadata.end())
      throw IoError(source + ": the metadata holds no vocabulary (no \"" + kMetadataKey + "\" entry)");
    return from_json(found->second, source);
  }

  bool operator==(const Vocabulary& other) const {
    return tokens_ == other.tokens_ && tokenizer_.options() == other.tokenizer_.options();
  }
  bool operator!=(const Vocabulary& other) const { return !(*this == other); }

 private:
  static int64_t checked_length(int64_t seq_len) {
    CCT_CHECK(seq_len >= 1, "Vocabulary: seq_len must be at least 1, got ", seq_len);
    return seq_len;
  }

  int64_t encode_into(std::string_view text, int64_t seq_len, std::vector<std::string>& tokens, int64_t* ids,
                      uint8_t* mask) const {
    tokens.clear();
    tokenizer_.tokenize_into(text, tokens);
    const int64_t kept = std::min<int64_t>(seq_len, static_cast<int64_t>(tokens.size()));
    for (int64_t i = 0; i < seq_len; ++i) {
      ids[i] = i < kept ? index(tokens[static_cast<size_t>(i)]) : kPaddingIndex;
      mask[i] = i < kept ? 1 : 0;
    }
    return static_cast<int64_t>(tokens.size());
  }

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int64_t> index_;
  Tokenizer tokenizer_;
};

}  // namespace cct::text
