// Word tokenizer for text classification: lower-cases a UTF-8 string and splits it into words and
// punctuation marks, plus the UTF-8 / Latin-1 helpers the corpus readers share.
//
// Tokenizer rules, applied left to right to the bytes of the text:
//  1. Repair: a text that is not valid UTF-8 is repaired first, every byte that is not part of a
//     valid UTF-8 sequence being read as a Latin-1 character (so 0xE9 becomes "é"). Every token is
//     therefore valid UTF-8, and a vocabulary always writes as JSON.
//  2. Separators: ASCII whitespace and control bytes (0x00–0x20 and 0x7F) and the no-break space
//     U+00A0 end the current token and are dropped.
//  3. Punctuation (when split_punctuation is on): each ASCII punctuation character
//     ! " # $ % & ' ( ) * + , - . / : ; < = > ? @ [ \ ] ^ _ ` { | } ~
//     is a token of its own ("u.s." → u . s .; "six-month" → six - month; "$10" → $ 10), except an
//     apostrophe with a word character directly on both sides, which stays inside its word:
//     "don't" and "o'clock" are one token each, while "'hello'" → ' hello ' and "students'" →
//     students '. (Corpora that are already tokenised, such as TREC's "celebrities ' real", keep
//     their free-standing apostrophes.)
//  4. Word characters: everything else — ASCII letters and digits and every non-ASCII character,
//     including non-ASCII punctuation such as “ ” ’ — (non-ASCII bytes are never split, so a
//     multi-byte character is never cut in half; "don’t" with a typographic apostrophe is one token).
//  5. Lower-casing (when on): A–Z and the Latin-1 capitals U+00C0–U+00DE (À…Þ, except × U+00D7) become
//     small letters; other characters are left as they are (no full Unicode case folding).
// The tokenizer can never produce the reserved vocabulary tokens "<unk>" and "<pad>", since '<' and
// '>' are punctuation.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cct::text {

// ---- UTF-8 -------------------------------------------------------------------------------------------

namespace detail {
// Length of the valid UTF-8 sequence starting at text[i] (1–4), or 0 when the bytes there are not one
// (overlong forms, surrogates and code points above U+10FFFF are invalid, as RFC 3629 says).
inline size_t utf8_sequence_length(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) length = 2;
  else if (lead == 0xE0) length = 3, low = 0xA0;
  else if (lead >= 0xE1 && lead <= 0xEC) length = 3;
  else if (lead == 0xED) length = 3, high = 0x9F;
  else if (lead >= 0xEE && lead <= 0xEF) length = 3;
  else if (lead == 0xF0) length = 4, low = 0x90;
  else if (lead >= 0xF1 && lead <= 0xF3) length = 4;
  else if (lead == 0xF4) length = 4, high = 0x8F;
  else return 0;
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return length;
}

inline void append_latin1(std::string& out, unsigned char byte) {
  if (byte < 0x80) {
    out += static_cast<char>(byte);
  } else {
    out += static_cast<char>(0xC0 | (byte >> 6));
    out += static_cast<char>(0x80 | (byte & 0x3F));
  }
}
}  // namespace detail

inline bool is_valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t length = detail::utf8_sequence_length(text, i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

// Every byte as a Latin-1 (ISO 8859-1) character: bytes ≥ 0x80 become two-byte UTF-8 sequences.
inline std::string latin1_to_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) detail::append_latin1(out, static_cast<unsigned char>(c));
  return out;
}

// Valid UTF-8 sequences are kept; every other byte is read as Latin-1. Valid input comes back unchanged.
inline std::string repair_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t length = detail::utf8_sequence_length(text, i);
    if (length == 0) {
      detail::append_latin1(out, static_cast<unsigned char>(text[i]));
      ++i;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  return out;
}

// Rule 5 of the tokenizer on its own: A–Z and À…Þ (except ×) to small letters. `text` must be valid UTF-8.
inline std::string lowercase(std::string_view text) {
  std::string out(text);
  for (size_t i = 0; i < out.size(); ++i) {
    const auto c = static_cast<unsigned char>(out[i]);
    if (c >= 'A' && c <= 'Z') {
      out[i] = static_cast<char>(c + ('a' - 'A'));
    } else if (c == 0xC3 && i + 1 < out.size()) {
      const auto second = static_cast<unsigned char>(out[i + 1]);
      if (second >= 0x80 && second <= 0x9E && second != 0x97) out[i + 1] = static_cast<char>(second + 0x20);
      ++i;
    }
  }
  return out;
}

// ---- tokenizer ---------------------------------------------------------------------------------------

struct TokenizerOptions {
  bool lowercase = true;
  bool split_punctuation = true;  // false: split on separators only (rule 3 off)

  bool operator==(const TokenizerOptions& other) const {
    return lowercase == other.lowercase && split_punctuation == other.split_punctuation;
  }
  bool operator!=(const TokenizerOptions& other) const { return !(*this == other); }
};

class Tokenizer {
 public:
  explicit Tokenizer(TokenizerOptions options = {}) : options_(options) {}

  std::vector<std::string> tokenize(std::string_view text) const {
    std::vector<std::string> tokens;
    tokenize_into(text, tokens);
    return tokens;
  }

  // Appends the tokens of `text` to `tokens` (reuses the caller's vector across many texts).
  void tokenize_into(std::string_view text, std::vector<std::string>& tokens) const {
    if (!is_valid_utf8(text)) {
      const std::string repaired = repair_utf8(text);
      split(repaired, tokens);
    } else {
      split(text, tokens);
    }
  }

  const TokenizerOptions& options() const { return options_; }

  static bool is_ascii_punctuation(unsigned char c) {
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
  }

 private:
  static bool is_separator_at(std::string_view text, size_t i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c <= 0x20 || c == 0x7F) return true;
    return c == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0xA0;  // U+00A0
  }
  bool is_word_at(std::string_view text, size_t i) const {
    if (i >= text.size() || is_separator_at(text, i)) return false;
    return !(options_.split_punctuation && is_ascii_punctuation(static_cast<unsigned char>(text[i])));
  }

  // `text` is valid UTF-8 here.
  void split(std::string_view text, std::vector<std::string>& tokens) const {
    std::string current;
    const auto flush = [&]() {
      if (!current.empty()) tokens.push_back(std::move(current));
      current.clear();
    };
    for (size_t i = 0; i < text.size();) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (is_separator_at(text, i)) {
        flush();
        i += c == 0xC2 ? 2 : 1;
        continue;
      }
      if (options_.split_punctuation && is_ascii_punctuation(c)) {
        // `current` is non-empty only when the previous character was a word character.
        if (c == '\'' && !current.empty() && is_word_at(text, i + 1)) {
          current += '\'';
        } else {
          flush();
          tokens.emplace_back(1, static_cast<char>(c));
        }
        ++i;
        continue;
      }
      if (options_.lowercase && c >= 'A' && c <= 'Z') {
        current += static_cast<char>(c + ('a' - 'A'));
        ++i;
      } else if (options_.lowercase && c == 0xC3) {  // U+00C0–U+00FF: capitals are C3 80–C3 9E
        auto second = static_cast<unsigned char>(text[i + 1]);
        if (second >= 0x80 && second <= 0x9E && second != 0x97) second += 0x20;
        current += static_cast<char>(c);
        current += static_cast<char>(second);
        i += 2;
      } else {
        current += static_cast<char>(c);
        ++i;
      }
    }
    flush();
  }

  TokenizerOptions options_;
};

}  // namespace cct::text
