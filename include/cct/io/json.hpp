// cct::json: a small, strict JSON value type with a bounded parser and a writer (no dependencies).
//
// Used for safetensors headers, config.json and metadata. Deliberately strict (RFC 8259 only): no
// comments, no trailing commas, no NaN/Infinity, no leading zeros, no control characters or invalid
// UTF-8 inside strings, no lone surrogates, no duplicate object keys, and nothing after the value but
// whitespace. Objects keep their members in insertion (file) order. A number without a fraction or
// exponent that fits int64 is an integer; every other number is a double, so writing and re-parsing
// keeps each number's kind. Every parse error is a json::ParseError (a cct::Error) carrying the byte
// position where the input went wrong.
#pragma once

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "../config.hpp"

namespace cct::json {

// A malformed document; `position()` is the 0-based byte offset of the offending character.
class ParseError : public Error {
 public:
  ParseError(const std::string& message, size_t position)
      : Error(message + " at byte " + std::to_string(position)), position_(position) {}
  size_t position() const { return position_; }

 private:
  size_t position_;
};

class Value;
using Array = std::vector<Value>;

// An object's members in insertion order. Lookup is a linear scan: the documents cct reads have at
// most a few hundred keys, and file order is what a reader of the header expects to see.
class Object {
 public:
  using Member = std::pair<std::string, Value>;

  Object() = default;
  Object(std::initializer_list<Member> members);

  // The member's value, or nullptr when the key is absent.
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  // The member's value; throws cct::Error naming the key when it is absent.
  const Value& at(std::string_view key) const;
  // Replaces the value of an existing key in place (keeping its position) or appends a new member.
  void set(std::string key, Value value);
  // Appends without checking for an existing key (the parser checks duplicates itself).
  void append_unchecked(std::string key, Value value);

  size_t size() const { return members_.size(); }
  bool empty() const { return members_.empty(); }
  std::vector<Member>::const_iterator begin() const { return members_.begin(); }
  std::vector<Member>::const_iterator end() const { return members_.end(); }
  const std::vector<Member>& members() const { return members_; }

  friend bool operator==(const Object& a, const Object& b);
  friend bool operator!=(const Object& a, const Object& b) { return !(a == b); }

 private:
  std::vector<Member> members_;
};

enum class Type { Null, Bool, Int, Double, String, Array, Object };

inline const char* type_name(Type type) {
  switch (type) {
    case Type::Null: return "null";
    case Type::Bool: return "a boolean";
    case Type::Int: return "an integer";
    case Type::Double: return "a floating-point number";
    case Type::String: return "a string";
    case Type::Array: return "an array";
    case Type::Object: return "an object";
  }
  return "unknown";
}

class Value {
 public:
  Value() = default;  // null
  Value(std::nullptr_t) {}
  Value(bool value) : data_(value) {}
  // Every integer type becomes int64 (unsigned values above INT64_MAX are rejected).
  template <typename I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
  Value(I value) : data_(static_cast<int64_t>(value)) {
    if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(int64_t))
      CCT_CHECK(value <= static_cast<uint64_t>(INT64_MAX), "json::Value: integer ", value, " exceeds int64");
  }
  Value(double value) : data_(value) {}
  Value(float value) : data_(static_cast<double>(value)) {}
  Value(std::string value) : data_(std::move(value)) {}
  Value(std::string_view value) : data_(std::string(value)) {}
  Value(const char* value) : data_(std::string(value)) {}
  Value(Array value) : data_(std::move(value)) {}
  Value(Object value) : data_(std::move(value)) {}

  Type type() const { return static_cast<Type>(data_.index()); }
  bool is_null() const { return type() == Type::Null; }
  bool is_bool() const { return type() == Type::Bool; }
  bool is_int() const { return type() == Type::Int; }
  bool is_double() const { return type() == Type::Double; }
  bool is_number() const { return is_int() || is_double(); }
  bool is_string() const { return type() == Type::String; }
  bool is_array() const { return type() == Type::Array; }
  bool is_object() const { return type() == Type::Object; }

  // Typed access; each throws cct::Error naming the expected and actual kinds on a mismatch.
  // as_int is exact (a double such as 2.0 is not an integer); as_double accepts both kinds.
  bool as_bool() const { return get<bool>(Type::Bool); }
  int64_t as_int() const { return get<int64_t>(Type::Int); }
  double as_double() const {
    return is_int() ? static_cast<double>(std::get<int64_t>(data_)) : get<double>(Type::Double);
  }
  const std::string& as_string() const { return get<std::string>(Type::String); }
  const Array& as_array() const { return get<Array>(Type::Array); }
  Array& as_array() { return get<Array>(Type::Array); }
  const Object& as_object() const { return get<Object>(Type::Object); }
  Object& as_object() { return get<Object>(Type::Object); }

  // Object member access (the value must be an object; at() throws for a missing key).
  const Value* find(std::string_view key) const { return as_object().find(key); }
  const Value& at(std::string_view key) const { return as_object().at(key); }

  friend bool operator==(const Value& a, const Value& b) { return a.data_ == b.data_; }
  friend bool operator!=(const Value& a, const Value& b) { return !(a == b); }

 private:
  template <typename V>
  const V& get(Type expected) const {
    CCT_CHECK(type() == expected, "json: expected ", type_name(expected), ", got ", type_name(type()));
    return std::get<V>(data_);
  }
  template <typename V>
  V& get(Type expected) {
    CCT_CHECK(type() == expected, "json: expected ", type_name(expected), ", got ", type_name(type()));
    return std::get<V>(data_);
  }

  // Alternative order matches `Type`.
  std::variant<std::monostate, bool, int64_t, double, std::string, Array, Object> data_;
};

// ---- Object members (need the complete Value) ------------------------------------------------
inline Object::Object(std::initializer_list<Member> members) {
  for (const Member& member : members) set(member.first, member.second);
}
inline const Value* Object::find(std::string_view key) const {
  for (const Member& member : members_)
    if (member.first == key) return &member.second;
  return nullptr;
}
inline Value* Object::find(std::string_view key) {
  for (Member& member : members_)
    if (member.first == key) return &member.second;
  return nullptr;
}
inline const Value& Object::at(std::string_view key) const {
  const Value* value = find(key);
  CCT_CHECK(value != nullptr, "json: object has no member \"", key, "\"");
  return *value;
}
inline void Object::set(std::string key, Value value) {
  if (Value* existing = find(key)) {
    *existing = std::move(value);
    return;
  }
  members_.emplace_back(std::move(key), std::move(value));
}
inline void Object::append_unchecked(std::string key, Value value) {
  members_.emplace_back(std::move(key), std::move(value));
}
inline bool operator==(const Object& a, const Object& b) { return a.members_ == b.members_; }

// ---- parser -----------------------------------------------------------------------------------
struct ParseOptions {
  size_t max_depth = 64;  // nesting of arrays/objects; bounds the parser's recursion
};

namespace detail {

class Parser {
 public:
  Parser(std::string_view text, const ParseOptions& options) : text_(text), options_(options) {}

  Value parse_document() {
    skip_whitespace();
    Value value = parse_value(0);
    skip_whitespace();
    if (pos_ != text_.size()) fail("unexpected trailing content after the JSON value");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& message) const { throw ParseError("json: " + message, pos_); }
  [[noreturn]] void fail_at(const std::string& message, size_t position) const {
    throw ParseError("json: " + message, position);
  }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }

  void skip_whitespace() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }

  static std::string describe(char c) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f) return std::string("'") + c + "'";
    static const char* hex = "0123456789abcdef";
    return std::string("byte 0x") + hex[byte >> 4] + hex[byte & 15];
  }

  void expect_literal(std::string_view literal) {
    if (text_.substr(pos_, literal.size()) != literal)
      fail("invalid literal (expected \"" + std::string(literal) + "\")");
    pos_ += literal.size();
  }

  Value parse_value(size_t depth) {
    if (at_end()) fail("unexpected end of input, expected a value");
    switch (peek()) {
      case '{': return parse_object(depth + 1);
      case '[': return parse_array(depth + 1);
      case '"': return Value(parse_string());
      case 't': expect_literal("true"); return Value(true);
      case 'f': expect_literal("false"); return Value(false);
      case 'n': expect_literal("null"); return Value();
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return parse_number();
        fail("unexpected " + describe(peek()) + ", expected a value");
    }
  }

  void check_depth(size_t depth) const {
    if (depth > options_.max_depth)
      fail("nesting deeper than the limit of " + std::to_string(options_.max_depth));
  }

  Value parse_object(size_t depth) {
    check_depth(depth);
    ++pos_;  // '{'
    Object object;
    skip_whitespace();
    if (!at_end() && peek() == '}') {
      ++pos_;
      return Value(std::move(object));
    }
    while (true) {
      skip_whitespace();
      if (at_end()) fail("unexpected end of input inside an object, expected a key");
      if (peek() != '"') fail("unexpected " + describe(peek()) + ", expected a string key");
      const size_t key_position = pos_;
      std::string key = parse_string();
      if (object.contains(key)) fail_at("duplicate key \"" + key + "\"", key_position);
      skip_whitespace();
      if (at_end()) fail("unexpected end of input, expected ':'");
      if (peek() != ':') fail("unexpected " + describe(peek()) + ", expected ':'");
      ++pos_;
      skip_whitespace();
      Value value = parse_value(depth);
      object.append_unchecked(std::move(key), std::move(value));
      skip_whitespace();
      if (at_end()) fail("unexpected end of input inside an object, expected ',' or '}'");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return Value(std::move(object));
      }
      fail("unexpected " + describe(peek()) + ", expected ',' or '}'");
    }
  }

  Value parse_array(size_t depth) {
    check_depth(depth);
    ++pos_;  // '['
    Array array;
    skip_whitespace();
    if (!at_end() && peek() == ']') {
      ++pos_;
      return Value(std::move(array));
    }
    while (true) {
      skip_whitespace();
      array.push_back(parse_value(depth));
      skip_whitespace();
      if (at_end()) fail("unexpected end of input inside an array, expected ',' or ']'");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return Value(std::move(array));
      }
      fail("unexpected " + describe(peek()) + ", expected ',' or ']'");
    }
  }

  static void append_utf8(std::string& out, uint32_t code_point) {
    if (code_point < 0x80) {
      out += static_cast<char>(code_point);
    } else if (code_point < 0x800) {
      out += static_cast<char>(0xc0 | (code_point >> 6));
      out += static_cast<char>(0x80 | (code_point & 0x3f));
    } else if (code_point < 0x10000) {
      out += static_cast<char>(0xe0 | (code_point >> 12));
      out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code_point & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (code_point >> 18));
      out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code_point & 0x3f));
    }
  }

  uint32_t parse_hex4() {
    if (text_.size() - pos_ < 4) fail("truncated \\u escape (needs 4 hex digits)");
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = peek();
      uint32_t digit;
      if (c >= '0' && c <= '9') digit = static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') digit = static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') digit = static_cast<uint32_t>(c - 'A' + 10);
      else fail("invalid hex digit " + describe(c) + " in \\u escape");
      value = value * 16 + digit;
      ++pos_;
    }
    return value;
  }

  // One raw (unescaped) UTF-8 sequence starting at pos_, validated: no overlong forms, no
  // surrogates, nothing above U+10FFFF.
  void copy_utf8_sequence(std::string& out) {
    const size_t start = pos_;
    const auto lead = static_cast<unsigned char>(text_[pos_]);
    size_t length;
    uint32_t code_point;
    if (lead >= 0xc2 && lead <= 0xdf) length = 2, code_point = lead & 0x1f;
    else if (lead >= 0xe0 && lead <= 0xef) length = 3, code_point = lead & 0x0f;
    else if (lead >= 0xf0 && lead <= 0xf4) length = 4, code_point = lead & 0x07;
    else fail("invalid UTF-8 lead byte in string");
    if (text_.size() - pos_ < length) fail("truncated UTF-8 sequence in string");
    for (size_t i = 1; i < length; ++i) {
      const auto byte = static_cast<unsigned char>(text_[pos_ + i]);
      if ((byte & 0xc0) != 0x80) fail_at("invalid UTF-8 continuation byte in string", pos_ + i);
      code_point = (code_point << 6) | (byte & 0x3f);
    }
    const bool overlong = (length == 3 && code_point < 0x800) || (length == 4 && code_point < 0x10000);
    if (overlong) fail("overlong UTF-8 encoding in string");
    if (code_point >= 0xd800 && code_point <= 0xdfff) fail("UTF-8 encoded surrogate in string");
    if (code_point > 0x10ffff) fail("UTF-8 code point above U+10FFFF in string");
    out.append(text_.substr(start, length));
    pos_ += length;
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (at_end()) fail("unterminated string");
      const char c = peek();
      const auto byte = static_cast<unsigned char>(c);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (byte < 0x20) fail("unescaped control character " + describe(c) + " in string");
      if (byte >= 0x80) {
        copy_utf8_sequence(out);
        continue;
      }
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      const size_t escape_position = pos_;
      ++pos_;
      if (at_end()) fail("unterminated escape sequence");
      const char escape = peek();
      ++pos_;
      switch (escape) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t code_point = parse_hex4();
          if (code_point >= 0xdc00 && code_point <= 0xdfff)
            fail_at("unpaired low surrogate in \\u escape", escape_position);
          if (code_point >= 0xd800 && code_point <= 0xdbff) {
            // A high surrogate must be followed by an escaped low surrogate (UTF-16 pair).
            if (text_.substr(pos_, 2) != "\\u") fail_at("unpaired high surrogate in \\u escape", escape_position);
            pos_ += 2;
            const uint32_t low = parse_hex4();
            if (low < 0xdc00 || low > 0xdfff) fail_at("unpaired high surrogate in \\u escape", escape_position);
            code_point = 0x10000 + ((code_point - 0xd800) << 10) + (low - 0xdc00);
          }
          append_utf8(out, code_point);
          break;
        }
        default:
          pos_ = escape_position;
          fail("invalid escape sequence \\" + std::string(1, escape));
      }
    }
  }

  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  Value parse_number() {
    const size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (at_end() || !is_digit(peek())) fail("expected a digit in number");
    if (peek() == '0') {
      ++pos_;
      if (!at_end() && is_digit(peek())) fail_at("leading zero in number", start);
    } else {
      while (!at_end() && is_digit(peek())) ++pos_;
    }
    bool integral = true;
    if (!at_end() && peek() == '.') {
      integral = false;
      ++pos_;
      if (at_end() || !is_digit(peek())) fail("expected a digit after the decimal point");
      while (!at_end() && is_digit(peek())) ++pos_;
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      integral = false;
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (at_end() || !is_digit(peek())) fail("expected a digit in the exponent");
      while (!at_end() && is_digit(peek())) ++pos_;
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    if (integral) {
      int64_t value = 0;
      const auto result = std::from_chars(first, last, value);
      if (result.ec == std::errc() && result.ptr == last) return Value(value);
      // Too large for int64: fall through and keep it as a double, as JSON allows.
    }
    double value = 0;
    const auto result = std::from_chars(first, last, value);
    if (result.ec != std::errc() || result.ptr != last || !std::isfinite(value))
      fail_at("number out of the range of a double", start);
    return Value(value);
  }

  std::string_view text_;
  ParseOptions options_;
  size_t pos_ = 0;
};

}  // namespace detail

// Parses one complete JSON document (surrounding whitespace allowed).
inline Value parse(std::string_view text, const ParseOptions& options = {}) {
  return detail::Parser(text, options).parse_document();
}

// ---- writer -----------------------------------------------------------------------------------
namespace detail {

// The length of the valid UTF-8 sequence at text[i] (no overlong forms, surrogates or code points above
// U+10FFFF), or 0 when the bytes there are not valid UTF-8.
inline size_t valid_utf8_length(std::string_view text, size_t i) {
  const auto at = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = at(i);
  size_t length = 0;
  uint32_t code_point = 0;
  if (lead >= 0xc2 && lead <= 0xdf) length = 2, code_point = lead & 0x1fu;
  else if (lead >= 0xe0 && lead <= 0xef) length = 3, code_point = lead & 0x0fu;
  else if (lead >= 0xf0 && lead <= 0xf4) length = 4, code_point = lead & 0x07u;
  else return 0;
  if (text.size() - i < length) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((at(i + k) & 0xc0) != 0x80) return 0;
    code_point = (code_point << 6) | (at(i + k) & 0x3fu);
  }
  if ((length == 3 && code_point < 0x800) || (length == 4 && code_point < 0x10000)) return 0;  // overlong
  if ((code_point >= 0xd800 && code_point <= 0xdfff) || code_point > 0x10ffff) return 0;
  return length;
}

// Writes `text` as a JSON string. The output is always valid UTF-8: bytes that are not (a file name in
// Latin-1, a truncated sequence) become U+FFFD, as Python's errors="replace" does, so a document with
// such a name still parses everywhere.
inline void write_string(std::string& out, std::string_view text) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (byte < 0x20) {
          out += "\\u00";
          out += hex[byte >> 4];
          out += hex[byte & 15];
        } else if (byte < 0x80) {
          out += c;
        } else if (const size_t length = valid_utf8_length(text, i)) {
          out.append(text.data() + i, length);
          i += length - 1;
        } else {
          out += "\xef\xbf\xbd";  // U+FFFD REPLACEMENT CHARACTER, for one invalid byte
        }
    }
  }
  out += '"';
}

inline void write_double(std::string& out, double value) {
  CCT_CHECK(std::isfinite(value), "json: cannot write ", value, " (JSON has no NaN or infinity)");
  char buffer[32];
  // Shortest representation that parses back to the same double.
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  std::string_view text(buffer, static_cast<size_t>(result.ptr - buffer));
  out += text;
  // Keep it a double when re-parsed: "2" would come back as an integer.
  if (text.find_first_of(".eE") == std::string_view::npos) out += ".0";
}

inline void newline(std::string& out, int indent, int level) {
  if (indent < 0) return;
  out += '\n';
  out.append(static_cast<size_t>(indent) * static_cast<size_t>(level), ' ');
}

inline void write_value(std::string& out, const Value& value, int indent, int level) {
  switch (value.type()) {
    case Type::Null: out += "null"; break;
    case Type::Bool: out += value.as_bool() ? "true" : "false"; break;
    case Type::Int: out += std::to_string(value.as_int()); break;
    case Type::Double: write_double(out, value.as_double()); break;
    case Type::String: write_string(out, value.as_string()); break;
    case Type::Array: {
      const Array& array = value.as_array();
      out += '[';
      for (size_t i = 0; i < array.size(); ++i) {
        if (i) out += ',';
        newline(out, indent, level + 1);
        write_value(out, array[i], indent, level + 1);
      }
      if (!array.empty()) newline(out, indent, level);
      out += ']';
      break;
    }
    case Type::Object: {
      const Object& object = value.as_object();
      out += '{';
      bool first = true;
      for (const auto& [key, member] : object) {
        if (!first) out += ',';
        first = false;
        newline(out, indent, level + 1);
        write_string(out, key);
        out += indent < 0 ? ":" : ": ";
        write_value(out, member, indent, level + 1);
      }
      if (!object.empty()) newline(out, indent, level);
      out += '}';
      break;
    }
  }
}

}  // namespace detail

// Compact JSON when indent < 0 (the default); otherwise one member per line, `indent` spaces a level.
inline std::string dump(const Value& value, int indent = -1) {
  std::string out;
  detail::write_value(out, value, indent, 0);
  return out;
}

}  // namespace cct::json
