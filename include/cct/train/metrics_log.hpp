// The training log: a crash-safe metrics.jsonl (one JSON object per epoch) and its readers.
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
#include <filesystem>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <cct/config.hpp>
#include <cct/core/tensor.hpp>
#include <cct/io/atomic_file.hpp>
#include <cct/io/json.hpp>

namespace cct::train {

namespace detail {

inline bool file_exists(const std::string& path) {
  std::error_code error;
  return std::filesystem::exists(path, error);
}

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

}  // namespace cct::train
