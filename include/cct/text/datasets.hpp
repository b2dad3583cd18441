// Text classification corpora: TextDataset and readers for TREC, AG News (the official CSV and the
// subset CSV) and the "label sentence" files of MR, SST-1/2, Subj, CR and MPQA.
//
// Every reader returns texts as valid UTF-8 (see Encoding) and labels 0..K-1 with their class names.
// Every problem in a file is a cct::IoError naming the file and the 1-based line, e.g.
//   TREC: 'train_5500.label' line 12: unknown coarse class 'FOO' (expected ABBR, DESC, ENTY, HUM, LOC or NUM)
// Lines holding only whitespace are skipped; "\r\n" line ends are accepted.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../io/atomic_file.hpp"
#include "tokenizer.hpp"

namespace cct::text {

struct TextDataset {
  std::vector<std::string> texts;
  std::vector<int64_t> labels;            // 0 .. class_names.size() - 1
  std::vector<std::string> class_names;

  int64_t size() const { return static_cast<int64_t>(texts.size()); }
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
  std::vector<int64_t> class_counts() const {
    std::vector<int64_t> counts(class_names.size(), 0);
    for (int64_t label : labels)
      if (label >= 0 && label < num_classes()) ++counts[static_cast<size_t>(label)];
    return counts;
  }
  // Throws cct::Error unless texts and labels pair up and every label names a class.
  void validate() const {
    CCT_CHECK(texts.size() == labels.size(), "TextDataset: ", texts.size(), " texts but ", labels.size(), " labels");
    for (size_t i = 0; i < labels.size(); ++i)
      CCT_CHECK(labels[i] >= 0 && labels[i] < num_classes(), "TextDataset: label ", labels[i], " of example ", i,
                " is out of range for ", num_classes(), " classes");
  }
  // The examples at `rows` (repeats allowed), same classes.
  TextDataset subset(const std::vector<int64_t>& rows) const {
    TextDataset out;
    out.class_names = class_names;
    out.texts.reserve(rows.size());
    out.labels.reserve(rows.size());
    for (int64_t row : rows) {
      CCT_CHECK(row >= 0 && row < size(), "TextDataset::subset: row ", row, " is out of range for ", size(),
                " examples");
      out.texts.push_back(texts[static_cast<size_t>(row)]);
      out.labels.push_back(labels[static_cast<size_t>(row)]);
    }
    return out;
  }
};

// How a reader turns a file's bytes into UTF-8.
enum class Encoding {
  kAuto,    // per line: valid UTF-8 is kept, any other line is read as Latin-1 (MR and Subj are Latin-1)
  kUtf8,    // invalid UTF-8 is an error naming the line
  kLatin1,  // every byte ≥ 0x80 is a Latin-1 character (the official TREC files)
};

namespace detail {

// "<what>: '<path>' line <n>: <message>"
[[noreturn]] inline void fail_at(const std::string& what, const std::string& path, int64_t line,
                                 const std::string& message) {
  throw IoError(what + ": '" + path + "' line " + std::to_string(line) + ": " + message);
}

// The start of a line for error messages, shown as read (bytes are not decoded here).
inline std::string excerpt(std::string_view line) {
  constexpr size_t kMax = 60;
  return "'" + std::string(line.substr(0, kMax)) + (line.size() > kMax ? "...'" : "'");
}

inline std::string read_corpus_file(const std::string& path, const std::string& what) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) throw IoError(what + ": missing file '" + path + "'");
  return io::read_file(path);
}

inline std::string decode(std::string_view bytes, Encoding encoding, const std::string& what, const std::string& path,
                          int64_t line) {
  switch (encoding) {
    case Encoding::kLatin1: return latin1_to_utf8(bytes);
    case Encoding::kUtf8:
      if (!is_valid_utf8(bytes)) fail_at(what, path, line, "is not valid UTF-8 (read it with Encoding::kLatin1 or kAuto)");
      return std::string(bytes);
    default: return is_valid_utf8(bytes) ? std::string(bytes) : latin1_to_utf8(bytes);
  }
}

inline std::string_view trim(std::string_view text) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  return text;
}

// Calls fn(line_number, line) for each line (without its "\n" or "\r\n"), 1-based.
template <typename Fn>
void for_each_line(std::string_view content, Fn&& fn) {
  int64_t number = 0;
  size_t start = 0;
  while (start < content.size()) {
    size_t end = content.find('\n', start);
    if (end == std::string_view::npos) end = content.size();
    std::string_view line = content.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    fn(++number, line);
    start = end + 1;
  }
}

// Parses a whole non-negative decimal integer; false when `text` is anything else.
inline bool parse_label(std::string_view text, int64_t& value) {
  if (text.empty() || text.size() > 9) return false;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  return result.ec == std::errc() && result.ptr == text.data() + text.size() && value >= 0;
}

// One CSV record: its fields and the line it starts on.
struct CsvRecord {
  int64_t line = 0;
  std::vector<std::string> fields;
};

// RFC 4180 CSV: fields separated by ',', records by "\n" or "\r\n"; a field in double quotes may hold
// commas, line breaks and doubled quotes ("" = one "). As in Python's csv module a quote inside an
// unquoted field is an ordinary character and empty lines are skipped. Errors: text between a closing
// quote and the next comma, and a quoted field still open at the end of the file.
inline std::vector<CsvRecord> parse_csv(std::string_view content, const std::string& what, const std::string& path) {
  std::vector<CsvRecord> records;
  int64_t line = 1;
  size_t i = 0;
  const size_t n = content.size();
  while (i < n) {
    if (content[i] == '\n' || (content[i] == '\r' && i + 1 < n && content[i + 1] == '\n')) {  // empty line
      i += content[i] == '\r' ? 2 : 1;
      ++line;
      continue;
    }
    CsvRecord record;
    record.line = line;
    while (true) {
      std::string field;
      if (i < n && content[i] == '"') {
        const int64_t opened = line;
        ++i;
        while (true) {
          if (i >= n) fail_at(what, path, opened, "a quoted field is not closed before the end of the file");
          const char c = content[i];
          if (c == '"') {
            if (i + 1 < n && content[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (c == '\n') ++line;
          field += c;
          ++i;
        }
        const bool at_end = i >= n || content[i] == ',' || content[i] == '\n' ||
                            (content[i] == '\r' && i + 1 < n && content[i + 1] == '\n') ||
                            (content[i] == '\r' && i + 1 == n);
        if (!at_end)
          fail_at(what, path, line, "unexpected '" + std::string(1, content[i]) +
                                        "' after a closing quote (a quote inside a quoted field is written \"\")");
      } else {
        while (i < n && content[i] != ',' && content[i] != '\n' &&
               !(content[i] == '\r' && (i + 1 == n || content[i + 1] == '\n')))
          field += content[i++];
      }
      record.fields.push_back(std::move(field));
      if (i < n && content[i] == ',') {
        ++i;
        continue;
      }
      if (i < n && content[i] == '\r') ++i;
      if (i < n && content[i] == '\n') {
        ++i;
        ++line;
      }
      break;
    }
    records.push_back(std::move(record));
  }
  return records;
}

// Windows-1252 characters for the numeric references 128–159 that AG News uses (&#151; is an em dash).
inline uint32_t windows1252(uint32_t code) {
  static constexpr std::array<uint16_t, 32> kTable = {
      0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
      0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
      0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};
  return code >= 128 && code < 160 ? kTable[code - 128] : code;
}

inline void append_utf8(std::string& out, uint32_t code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

// If text[i] starts an HTML character reference ("&name;" / "&#123;", or the same with a space for
// the '&', as AG News stores them), appends its character and returns its length; else returns 0.
inline size_t decode_reference(std::string_view text, size_t i, std::string& out) {
  if (text[i] != '&' && text[i] != ' ') return 0;
  const size_t semicolon = text.substr(0, i + 10).find(';', i + 1);  // names are short: look 9 bytes ahead
  if (semicolon == std::string_view::npos) return 0;
  const std::string_view body = text.substr(i + 1, semicolon - i - 1);
  if (body.size() >= 2 && body[0] == '#') {
    uint32_t code = 0;
    const auto result = std::from_chars(body.data() + 1, body.data() + body.size(), code);
    if (result.ec != std::errc() || result.ptr != body.data() + body.size() || code == 0 || code > 0x10FFFF ||
        (code >= 0xD800 && code <= 0xDFFF))
      return 0;
    append_utf8(out, windows1252(code));
    return semicolon - i + 1;
  }
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kNamed = {{{"quot", "\""},
                                                                                          {"amp", "&"},
                                                                                          {"lt", "<"},
                                                                                          {"gt", ">"},
                                                                                          {"apos", "'"},
                                                                                          {"nbsp", " "},
                                                                                          {"hellip", "..."}}};
  for (const auto& [name, replacement] : kNamed)
    if (body == name) {
      out += replacement;
      return semicolon - i + 1;
    }
  return 0;
}

}  // namespace detail

// AG News stores text with two conventions of its own, which this undoes:
//  - a backslash marks a former line break ("A second\team" is "A second" / "team", "\\" a paragraph),
//    so it becomes a space, except "\$", an escaped dollar sign, which becomes "$";
//  - HTML character references lost their '&' to a space (" #39;s", " quot;", " amp;"): these and the
//    intact forms ("&lt;", "&#39;") become their characters (numeric ones 128–159 read as Windows-1252),
//    the space that replaced the '&' included: "Haiti #39;s" → "Haiti's".
// Runs of spaces are left as they are (the tokenizer ignores them).
inline std::string clean_ag_news_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '\\') {
      if (i + 1 < text.size() && text[i + 1] == '$') {
        out += '$';
        i += 2;
      } else {
        out += ' ';
        ++i;
      }
      continue;
    }
    if (const size_t length = detail::decode_reference(text, i, out)) {
      i += length;
      continue;
    }
    out += text[i++];
  }
  return out;
}

// ---- TREC --------------------------------------------------------------------------------------------
// Lines "COARSE:fine question tokens", e.g. "DESC:manner How did serfdom develop ?". The label is the
// coarse class, in the order ABBR DESC ENTY HUM LOC NUM (0–5); the text is everything after the first
// space. The official training file is Latin-1 (one 0xF0 byte), hence the default.
inline const std::vector<std::string>& trec_classes() {
  static const std::vector<std::string> classes = {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"};
  return classes;
}

inline TextDataset read_trec(const std::string& path, Encoding encoding = Encoding::kLatin1) {
  const std::string what = "TREC";
  const std::string content = detail::read_corpus_file(path, what);
  TextDataset data;
  data.class_names = trec_classes();
  detail::for_each_line(content, [&](int64_t number, std::string_view line) {
    if (detail::trim(line).empty()) return;
    const size_t colon = line.find(':'), space = line.find(' ');
    if (colon == std::string_view::npos || space == std::string_view::npos || colon > space)
      detail::fail_at(what, path, number, "expected 'COARSE:fine question', got " + detail::excerpt(line));
    const std::string_view coarse = line.substr(0, colon);
    const auto& classes = trec_classes();
    const auto found = std::find(classes.begin(), classes.end(), coarse);
    if (found == classes.end())
      detail::fail_at(what, path, number, "unknown coarse class '" + std::string(coarse.substr(0, 20)) +
                                              "' (expected ABBR, DESC, ENTY, HUM, LOC or NUM)");
    const std::string_view question = detail::trim(line.substr(space + 1));
    if (question.empty()) detail::fail_at(what, path, number, "the question is empty");
    data.texts.push_back(detail::decode(question, encoding, what, path, number));
    data.labels.push_back(found - classes.begin());
  });
  if (data.texts.empty()) throw IoError(what + ": '" + path + "' holds no questions");
  return data;
}

// ---- AG News -----------------------------------------------------------------------------------------
struct AgNewsOptions {
  bool clean = true;  // apply clean_ag_news_text
  Encoding encoding = Encoding::kAuto;
};

inline const std::vector<std::string>& ag_news_classes() {
  static const std::vector<std::string> classes = {"World", "Sports", "Business", "Sci/Tech"};
  return classes;
}

namespace detail {
inline std::string ag_news_text(std::string_view text, const AgNewsOptions& options, const std::string& what,
                                const std::string& path, int64_t line) {
  std::string decoded = decode(text, options.encoding, what, path, line);
  return options.clean ? clean_ag_news_text(decoded) : decoded;
}
}  // namespace detail

// The official CSV (train.csv / test.csv): records "class","title","description" with class 1–4
// (World, Sports, Business, Sci/Tech → labels 0–3). The text is "title description".
inline TextDataset read_ag_news(const std::string& path, const AgNewsOptions& options = {}) {
  const std::string what = "AG News";
  const std::string content = detail::read_corpus_file(path, what);
  TextDataset data;
  data.class_names = ag_news_classes();
  for (const auto& record : detail::parse_csv(content, what, path)) {
    if (record.fields.size() != 3)
      detail::fail_at(what, path, record.line, "expected 3 fields (class, title, description), got " +
                                                   std::to_string(record.fields.size()));
    int64_t label = 0;
    if (!detail::parse_label(detail::trim(record.fields[0]), label) || label < 1 || label > 4)
      detail::fail_at(what, path, record.line, "class must be 1, 2, 3 or 4, got " + detail::excerpt(record.fields[0]));
    data.texts.push_back(detail::ag_news_text(record.fields[1] + " " + record.fields[2], options, what, path, record.line));
    data.labels.push_back(label - 1);
  }
  if (data.texts.empty()) throw IoError(what + ": '" + path + "' holds no records");
  return data;
}

// The subset CSV: records "title description",label with label 0–3 (world, sports, business, tech).
// A first record whose label field reads "label" (any case) is a header and is skipped.
inline TextDataset read_ag_news_subset(const std::string& path, const AgNewsOptions& options = {}) {
  const std::string what = "AG News subset";
  const std::string content = detail::read_corpus_file(path, what);
  TextDataset data;
  data.class_names = {"world", "sports", "business", "tech"};
  bool first = true;
  for (const auto& record : detail::parse_csv(content, what, path)) {
    if (record.fields.size() != 2)
      detail::fail_at(what, path, record.line, "expected 2 fields (text, label), got " +
                                                   std::to_string(record.fields.size()));
    std::string label_text(detail::trim(record.fields[1]));
    std::transform(label_text.begin(), label_text.end(), label_text.begin(),
                   [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
    const bool header = first && label_text == "label";
    first = false;
    if (header) continue;
    int64_t label = 0;
    if (!detail::parse_label(label_text, label) || label > 3)
      detail::fail_at(what, path, record.line, "label must be 0, 1, 2 or 3, got " + detail::excerpt(record.fields[1]));
    data.texts.push_back(detail::ag_news_text(record.fields[0], options, what, path, record.line));
    data.labels.push_back(label);
  }
  if (data.texts.empty()) throw IoError(what + ": '" + path + "' holds no records");
  return data;
}

// ---- "label sentence" files (MR, SST-1, SST-2, Subj, CR, MPQA) -----------------------------------------
// The largest label a label-sentence file may use when no class names are given.
inline constexpr int64_t kMaxUnnamedLabel = 9999;

struct LabelSentenceOptions {
  Encoding encoding = Encoding::kAuto;
  // Names of classes 0..K-1. Empty: "0", "1", ... up to the largest label in the file.
  std::vector<std::string> class_names;
};

// Lines "<label> <sentence>", the label a non-negative integer, separated from the sentence by
// whitespace. A label with nothing after it is an empty text: the CR and MPQA files have a few such
// lines (sentences the original preprocessing emptied), and the data sets' sizes count them.
inline TextDataset read_label_sentence_file(const std::string& path, const LabelSentenceOptions& options = {}) {
  const std::string what = "label-sentence file";
  const std::string content = detail::read_corpus_file(path, what);
  TextDataset data;
  int64_t largest = -1;
  detail::for_each_line(content, [&](int64_t number, std::string_view line) {
    const std::string_view trimmed = detail::trim(line);
    if (trimmed.empty()) return;
    const size_t gap = trimmed.find_first_of(" \t");
    int64_t label = 0;
    if (!detail::parse_label(trimmed.substr(0, gap), label))
      detail::fail_at(what, path, number, "expected '<label> <sentence>' with a non-negative integer label, got " +
                                              detail::excerpt(line));
    const std::string_view sentence = gap == std::string_view::npos ? std::string_view() : detail::trim(trimmed.substr(gap));
    if (!options.class_names.empty() && label >= static_cast<int64_t>(options.class_names.size()))
      detail::fail_at(what, path, number, "label " + std::to_string(label) + " is out of range for the " +
                                              std::to_string(options.class_names.size()) + " class names given");
    // Without names every label up to the largest becomes a class, so one corrupt line must not ask for
    // a billion of them.
    if (options.class_names.empty() && label > kMaxUnnamedLabel)
      detail::fail_at(what, path, number, "label " + std::to_string(label) + " is above " +
                                              std::to_string(kMaxUnnamedLabel) +
                                              ", the largest a file may use without class names (give class_names)");
    largest = std::max(largest, label);
    data.texts.push_back(detail::decode(sentence, options.encoding, what, path, number));
    data.labels.push_back(label);
  });
  if (data.texts.empty()) throw IoError(what + ": '" + path + "' holds no sentences");
  data.class_names = options.class_names;
  for (int64_t k = static_cast<int64_t>(data.class_names.size()); k <= largest; ++k)
    data.class_names.push_back(std::to_string(k));
  return data;
}

}  // namespace cct::text
