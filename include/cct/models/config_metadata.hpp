// How a model config is written to checkpoint metadata and read back: each config (ModelConfig,
// TextModelConfig) lists its fields once, in `visit_fields`, with each field's key, kind and valid
// range; ConfigWriter and ConfigReader walk that one table. Reading is strict (a value is taken only
// when the whole string parses: "12abc" is refused) and validates every range as it goes, so a config
// read from a file is either valid field by field or refused with the file and the key named.
// (Whether the sizes fit the file they came from is checked one layer up, in models/checkpoint.hpp.)
#pragma once

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../config.hpp"

namespace cct::models {

// Checkpoint metadata: the safetensors "__metadata__" map (io::Metadata is the same type).
using ConfigMetadata = std::map<std::string, std::string>;

// The names an enum field is written as, e.g. {{"cct", Family::kCCT}, ...}.
template <typename Enum>
using EnumNames = std::vector<std::pair<const char*, Enum>>;

}  // namespace cct::models

namespace cct::detail {

// Strict number parsing: the whole string must be the number, so "12abc", "12 ", "" and "0x10" are
// refused instead of being read as their prefix. `where` names the file and key for the message.
inline int64_t parse_integer(const std::string& text, const std::string& where) {
  if (!text.empty() && (text[0] == '-' || (text[0] >= '0' && text[0] <= '9'))) {
    errno = 0;
    char* end = nullptr;
    const long long value = std::strtoll(text.c_str(), &end, 10);
    if (errno == 0 && end == text.c_str() + text.size()) return static_cast<int64_t>(value);
  }
  throw IoError(cct::detail::concat(where, " is not an integer: '", text, "'"));
}

inline double parse_number(const std::string& text, const std::string& where) {
  // strtod also reads "nan" and "inf"; they are numbers here, and the field's range refuses them.
  if (!text.empty() && !std::isspace(static_cast<unsigned char>(text[0]))) {
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (end == text.c_str() + text.size()) return value;
  }
  throw IoError(cct::detail::concat(where, " is not a number: '", text, "'"));
}

// Doubles are written with 17 significant digits, so they read back bit-exactly.
inline std::string format_number(double value) {
  std::ostringstream out;
  out.precision(17);
  out << value;
  return out.str();
}

}  // namespace cct::detail

namespace cct::models {

// Writes each field as a string. The ranges are the reader's business: what is written comes from a
// model that exists, and what is read comes from a file that may not be cct's.
class ConfigWriter {
 public:
  void text(const char* key, const std::string& value) { metadata_[key] = value; }
  void integer(const char* key, const int64_t& value, int64_t /*minimum*/) { metadata_[key] = std::to_string(value); }
  void number(const char* key, const double& value, double /*low*/, double /*high*/, bool /*low_open*/ = false) {
    metadata_[key] = cct::detail::format_number(value);
  }
  void flag(const char* key, const bool& value) { metadata_[key] = value ? "true" : "false"; }
  template <typename Enum>
  void choice(const char* key, const Enum& value, const EnumNames<Enum>& names, const char* /*what*/) {
    for (const auto& [name, option] : names)
      if (option == value) metadata_[key] = name;
  }
  const ConfigMetadata& metadata() const { return metadata_; }

 private:
  ConfigMetadata metadata_;
};

// Reads and validates each field; every error is an IoError that starts with `source` (the file).
class ConfigReader {
 public:
  ConfigReader(const ConfigMetadata& metadata, std::string source) : metadata_(metadata), source_(std::move(source)) {}

  void text(const char* key, std::string& value) { value = get(key); }
  void integer(const char* key, int64_t& value, int64_t minimum) {
    value = cct::detail::parse_integer(get(key), where(key));
    if (value < minimum)
      fail(cct::detail::concat("has ", key, " = ", value, "; it must be ",
                               minimum == 1 ? std::string("positive") : cct::detail::concat("at least ", minimum)));
  }
  // A number in [low, high], or (low, high] when low_open; NaN is never in range.
  void number(const char* key, double& value, double low, double high, bool low_open = false) {
    value = cct::detail::parse_number(get(key), where(key));
    const bool above_low = low_open ? value > low : value >= low;
    if (!(above_low && value <= high))
      fail(cct::detail::concat("has ", key, " = ", cct::detail::format_number(value), "; it must be in ", low_open ? "(" : "[",
                               low, ", ", high, "]"));
  }
  void flag(const char* key, bool& value) {
    const std::string& text = get(key);
    if (text != "true" && text != "false")
      throw IoError(cct::detail::concat(where(key), " must be true or false, got '", text, "'"));
    value = text == "true";
  }
  template <typename Enum>
  void choice(const char* key, Enum& value, const EnumNames<Enum>& names, const char* what) {
    const std::string& text = get(key);
    std::string known;
    for (const auto& [name, option] : names) {
      if (text == name) {
        value = option;
        return;
      }
      known += (known.empty() ? "" : ", ") + std::string(name);
    }
    throw IoError(cct::detail::concat(source_, ": unknown ", what, " '", text, "' in metadata '", key, "' (known: ", known,
                                      ")"));
  }

 private:
  const std::string& get(const char* key) const {
    const auto it = metadata_.find(key);
    if (it == metadata_.end())
      throw IoError(cct::detail::concat(source_, ": checkpoint metadata has no '", key,
                                        "' entry, so the model cannot be rebuilt from it"));
    return it->second;
  }
  std::string where(const char* key) const { return cct::detail::concat(source_, ": metadata '", key, "'"); }
  [[noreturn]] void fail(const std::string& message) const {
    throw IoError(cct::detail::concat(source_, ": its model config ", message));
  }

  const ConfigMetadata& metadata_;
  std::string source_;
};

// The two directions, for any config with a `visit_fields(config, fields)` table.
template <typename Config>
ConfigMetadata config_to_metadata(const Config& config) {
  ConfigWriter writer;
  Config::visit_fields(config, writer);
  return writer.metadata();
}

template <typename Config>
Config config_from_metadata(const ConfigMetadata& metadata, const std::string& source) {
  Config config;
  ConfigReader reader(metadata, source);
  Config::visit_fields(config, reader);
  return config;
}

}  // namespace cct::models
