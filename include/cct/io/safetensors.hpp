// safetensors checkpoints: a validated reader, an atomic writer, and strict/lenient loading into tensors.
//
// The format (the one PyTorch's `safetensors` package uses, so files move between PyTorch and cct
// unchanged when tensor names follow the reference PyTorch modules):
//   bytes [0, 8)        N, the header length, a little-endian uint64
//   bytes [8, 8 + N)    a JSON object: name -> {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
//                       plus an optional "__metadata__": {string: string}; may be padded with spaces
//   bytes [8 + N, end)  the tensors' raw little-endian row-major data; offsets [b, e) are relative to
//                       the first data byte, and together the tensors tile the data exactly (no gaps,
//                       no overlaps, nothing after the last one).
// The reader checks every one of those rules up front, so a damaged file fails with one clear
// cct::IoError naming the file (and the tensor) before any data is copied.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "atomic_file.hpp"
#include "input_file.hpp"
#include "json.hpp"

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "cct's safetensors I/O copies tensor bytes as they are and therefore needs a little-endian host"
#endif

namespace cct::io {

// ---- dtypes -----------------------------------------------------------------------------------
enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

inline const char* dtype_str(DType dtype) {
  switch (dtype) {
    case DType::F64: return "F64";
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::I16: return "I16";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::BOOL: return "BOOL";
  }
  return "?";
}

inline size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: case DType::I16: return 2;
    case DType::I8: case DType::U8: case DType::BOOL: return 1;
  }
  return 0;
}

inline std::optional<DType> parse_dtype(std::string_view text) {
  for (DType dtype : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16,
                      DType::I8, DType::U8, DType::BOOL})
    if (text == dtype_str(dtype)) return dtype;
  return std::nullopt;
}

inline bool is_floating(DType dtype) {
  return dtype == DType::F64 || dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16;
}

// The safetensors dtype of a C++ element type.
template <typename T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, double>) return DType::F64;
  else if constexpr (std::is_same_v<T, float>) return DType::F32;
  else if constexpr (std::is_same_v<T, int64_t>) return DType::I64;
  else if constexpr (std::is_same_v<T, int32_t>) return DType::I32;
  else if constexpr (std::is_same_v<T, int16_t>) return DType::I16;
  else if constexpr (std::is_same_v<T, int8_t>) return DType::I8;
  else if constexpr (std::is_same_v<T, uint8_t>) return DType::U8;
  else static_assert(sizeof(T) == 0, "no safetensors dtype for this element type");
}

inline std::string describe(DType dtype, const Shape& shape) {
  return std::string(dtype_str(dtype)) + " " + shape_str(shape);
}

using Metadata = std::map<std::string, std::string>;

// Real headers are a few hundred bytes per tensor; anything larger is a corrupt length field.
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;

namespace detail {

inline std::string file_prefix(const std::string& path) { return "safetensors file '" + path + "': "; }
inline std::string tensor_prefix(const std::string& path, std::string_view name) {
  return file_prefix(path) + "tensor '" + std::string(name) + "': ";
}

// A read-only file descriptor with positioned reads (pread needs no shared seek position, so a
// const reader stays safe to use from several threads).
class ReadOnlyFile {
 public:
  ReadOnlyFile() = default;
  // Opened through InputFile: a FIFO or a folder is refused without blocking.
  explicit ReadOnlyFile(const std::string& path) : file_(path, "safetensors file"), fd_(file_.fd()), size_(file_.size()) {}

  uint64_t size() const { return size_; }

  // Reads exactly `count` bytes at `offset`; `what` prefixes the error (it names file and tensor).
  void read_exact(uint64_t offset, void* destination, uint64_t count, const std::string& what) const {
    char* out = static_cast<char*>(destination);
    while (count > 0) {
      const size_t chunk = static_cast<size_t>(std::min<uint64_t>(count, uint64_t{1} << 30));
      const ssize_t got = ::pread(fd_, out, chunk, static_cast<off_t>(offset));
      if (got < 0) {
        const int error = errno;
        if (error == EINTR) continue;
        throw IoError(what + "read failed: " + errno_text(error));
      }
      if (got == 0) throw IoError(what + "the file ends early (truncated while open?)");
      out += got;
      offset += static_cast<uint64_t>(got);
      count -= static_cast<uint64_t>(got);
    }
  }

 private:
  InputFile file_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// IEEE half and bfloat16 to float, for explicit conversions of checkpoints saved in 16 bits.
inline float half_to_float(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu;
  const uint32_t mantissa = half & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    // Zero or subnormal: mantissa · 2^-24, exact in float.
    const float magnitude = static_cast<float>(mantissa) * (1.0f / 16777216.0f);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) bits = sign | 0x7f800000u | (mantissa << 13);  // inf / NaN
  else bits = sign | ((exponent + 112) << 23) | (mantissa << 13);   // rebias 15 -> 127
  float out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}
inline float bfloat16_to_float(uint16_t value) {
  const uint32_t bits = static_cast<uint32_t>(value) << 16;
  float out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}

template <typename Raw>
Raw load_raw(const uint8_t* bytes, int64_t index) {
  Raw value;
  std::memcpy(&value, bytes + static_cast<size_t>(index) * sizeof(Raw), sizeof(Raw));
  return value;
}

}  // namespace detail

// ---- writing ----------------------------------------------------------------------------------

// One tensor to save: its name, dtype, shape and raw little-endian bytes. `owner` keeps the bytes
// alive (make_entry stores the tensor's handle there), so an entry can outlive the tensor variable.
struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  const void* data = nullptr;
  size_t nbytes = 0;
  std::shared_ptr<const void> owner;
};

template <typename T>
TensorEntry make_entry(std::string name, const Tensor<T>& tensor) {
  CCT_CHECK(tensor.defined(), "safetensors: tensor '", name, "' is undefined and cannot be saved");
  TensorEntry entry;
  entry.name = std::move(name);
  entry.dtype = dtype_of<T>();
  entry.shape = tensor.shape();
  entry.nbytes = static_cast<size_t>(tensor.numel()) * sizeof(T);
  entry.data = entry.nbytes ? static_cast<const void*>(tensor.data()) : nullptr;
  entry.owner = tensor.impl();
  return entry;
}

// Writes `tensors` (in the given order) and `metadata` to `path` atomically. Names must be non-empty,
// unique and not "__metadata__"; each entry's byte count must match its dtype and shape.
inline void save_safetensors(const std::string& path, const std::vector<TensorEntry>& tensors,
                             const Metadata& metadata = {}) {
  const std::string prefix = detail::file_prefix(path);
  std::set<std::string_view> seen;
  json::Object header;
  if (!metadata.empty()) {
    json::Object meta;
    for (const auto& [key, value] : metadata) meta.append_unchecked(key, json::Value(value));
    header.append_unchecked("__metadata__", json::Value(std::move(meta)));
  }
  uint64_t offset = 0;
  for (const TensorEntry& entry : tensors) {
    if (entry.name.empty()) throw IoError(prefix + "cannot save a tensor with an empty name");
    if (entry.name == "__metadata__")
      throw IoError(prefix + "'__metadata__' is reserved and cannot name a tensor");
    if (!seen.insert(entry.name).second) throw IoError(prefix + "duplicate tensor name '" + entry.name + "'");
    check_shape_valid(entry.shape, "save_safetensors");
    const uint64_t expected = static_cast<uint64_t>(shape_numel(entry.shape)) * dtype_size(entry.dtype);
    if (entry.nbytes != expected || (entry.nbytes > 0 && entry.data == nullptr))
      throw IoError(detail::tensor_prefix(path, entry.name) + std::to_string(entry.nbytes) + " bytes given for " +
                    describe(entry.dtype, entry.shape) + ", which needs " + std::to_string(expected));
    json::Array shape;
    for (int64_t size : entry.shape) shape.emplace_back(size);
    json::Object info;
    info.append_unchecked("dtype", json::Value(dtype_str(entry.dtype)));
    info.append_unchecked("shape", json::Value(std::move(shape)));
    info.append_unchecked("data_offsets", json::Value(json::Array{json::Value(offset), json::Value(offset + entry.nbytes)}));
    header.append_unchecked(entry.name, json::Value(std::move(info)));
    offset += entry.nbytes;
  }
  std::string header_text = json::dump(json::Value(std::move(header)));
  // Pad with spaces so the data starts 8-byte aligned (as PyTorch's writer does): a reader that
  // maps the file can then view F64/I64 data in place.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  const uint64_t header_length = header_text.size();
  unsigned char length_bytes[8];
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<unsigned char>(header_length >> (8 * i));

  AtomicFileWriter writer(path);
  writer.write(length_bytes, sizeof(length_bytes));
  writer.write(header_text);
  for (const TensorEntry& entry : tensors) writer.write(entry.data, entry.nbytes);
  writer.commit();
}

template <typename T>
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor<T>>>& tensors,
                      const Metadata& metadata = {}) {
  std::vector<TensorEntry> entries;
  entries.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) entries.push_back(make_entry(name, tensor));
  save_safetensors(path, entries, metadata);
}

// ---- reading ----------------------------------------------------------------------------------

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  int64_t numel = 0;
  uint64_t begin = 0;  // byte range within the data section
  uint64_t end = 0;
  uint64_t nbytes() const { return end - begin; }
};

// Opens a safetensors file and validates its whole layout; tensors are read on demand.
// Keeps the file open, so a checkpoint atomically replaced meanwhile does not mix old and new data.
class SafeTensorsReader {
 public:
  explicit SafeTensorsReader(std::string path) : path_(std::move(path)), file_(path_) { parse_header(); }

  const std::string& path() const { return path_; }
  const Metadata& metadata() const { return metadata_; }
  // In header (file) order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const TensorInfo& info : tensors_) out.push_back(info.name);
    return out;
  }
  bool contains(std::string_view name) const { return index_.count(std::string(name)) != 0; }
  const TensorInfo& info(std::string_view name) const {
    const auto it = index_.find(std::string(name));
    if (it == index_.end()) throw IoError(detail::tensor_prefix(path_, name) + "no such tensor in the file");
    return tensors_[it->second];
  }

  // The tensor as stored; its dtype must be exactly T's (F32 for float, F64 for double, ...).
  template <typename T>
  Tensor<T> read(std::string_view name) const {
    const TensorInfo& entry = info(name);
    check_dtype<T>(entry, "; use read_converted<T>() to convert it explicitly");
    Tensor<T> out = Tensor<T>::empty(entry.shape);
    read_raw(entry, out.numel() ? out.data() : nullptr);
    return out;
  }

  // The tensor converted to T: floating types accept F64/F32/F16/BF16 (F64 -> float rounds), integer
  // types accept any integer dtype or BOOL (values that do not fit T are an error). Never mixes
  // integer and floating point.
  template <typename T>
  Tensor<T> read_converted(std::string_view name) const {
    static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>, "read_converted: numeric T only");
    const TensorInfo& entry = info(name);
    if (is_floating(entry.dtype) != std::is_floating_point_v<T>)
      throw IoError(detail::tensor_prefix(path_, entry.name) + "cannot convert " + dtype_str(entry.dtype) +
                    " to " + dtype_str(dtype_of<T>()) + " (integer and floating-point data do not mix)");
    std::vector<uint8_t> raw(static_cast<size_t>(entry.nbytes()));
    read_raw(entry, raw.data());
    Tensor<T> out = Tensor<T>::empty(entry.shape);
    const uint8_t* bytes = raw.data();
    for (int64_t i = 0; i < entry.numel; ++i) {
      if constexpr (std::is_floating_point_v<T>) {
        out.data()[i] = static_cast<T>(load_floating(entry.dtype, bytes, i));
      } else {
        const int64_t value = load_integer(entry.dtype, bytes, i);
        if (value < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
            (value > 0 && static_cast<uint64_t>(value) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
          throw IoError(detail::tensor_prefix(path_, entry.name) + "element " + std::to_string(i) + " = " +
                        std::to_string(value) + " does not fit " + dtype_str(dtype_of<T>()));
        out.data()[i] = static_cast<T>(value);
      }
    }
    return out;
  }

  // Copies the tensor into `destination`, whose dtype and shape must match the file's exactly.
  template <typename T>
  void read_into(std::string_view name, const Tensor<T>& destination) const {
    const TensorInfo& entry = info(name);
    check_dtype<T>(entry, "");
    if (destination.shape() != entry.shape)
      throw IoError(detail::tensor_prefix(path_, entry.name) + "file has shape " + shape_str(entry.shape) +
                    ", destination has " + shape_str(destination.shape()));
    read_raw(entry, destination.numel() ? destination.data() : nullptr);
  }

  // The tensor's raw bytes (entry.nbytes() of them) into `destination`.
  void read_raw(const TensorInfo& entry, void* destination) const {
    file_.read_exact(data_start_ + entry.begin, destination, entry.nbytes(), detail::tensor_prefix(path_, entry.name));
  }

 private:
  [[noreturn]] void fail(const std::string& message) const { throw IoError(detail::file_prefix(path_) + message); }
  [[noreturn]] void fail(std::string_view tensor, const std::string& message) const {
    throw IoError(detail::tensor_prefix(path_, tensor) + message);
  }

  template <typename T>
  void check_dtype(const TensorInfo& entry, const char* hint) const {
    if (entry.dtype != dtype_of<T>())
      fail(entry.name, std::string("stored as ") + dtype_str(entry.dtype) + ", but " + dtype_str(dtype_of<T>()) +
                           " was requested" + hint);
  }

  static double load_floating(DType dtype, const uint8_t* bytes, int64_t i) {
    switch (dtype) {
      case DType::F64: return detail::load_raw<double>(bytes, i);
      case DType::F32: return detail::load_raw<float>(bytes, i);
      case DType::F16: return detail::half_to_float(detail::load_raw<uint16_t>(bytes, i));
      case DType::BF16: return detail::bfloat16_to_float(detail::load_raw<uint16_t>(bytes, i));
      default: return 0;  // excluded by the caller
    }
  }
  static int64_t load_integer(DType dtype, const uint8_t* bytes, int64_t i) {
    switch (dtype) {
      case DType::I64: return detail::load_raw<int64_t>(bytes, i);
      case DType::I32: return detail::load_raw<int32_t>(bytes, i);
      case DType::I16: return detail::load_raw<int16_t>(bytes, i);
      case DType::I8: return detail::load_raw<int8_t>(bytes, i);
      case DType::U8: return detail::load_raw<uint8_t>(bytes, i);
      case DType::BOOL: return detail::load_raw<uint8_t>(bytes, i) != 0;
      default: return 0;  // excluded by the caller
    }
  }

  void parse_header() {
    const uint64_t file_size = file_.size();
    if (file_size < 8)
      fail("only " + std::to_string(file_size) + " bytes, too short for the 8-byte header length");
    unsigned char length_bytes[8];
    file_.read_exact(0, length_bytes, 8, detail::file_prefix(path_));
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | length_bytes[i];
    if (header_length > kMaxHeaderBytes)
      fail("header length " + std::to_string(header_length) + " is absurd (limit " +
           std::to_string(kMaxHeaderBytes) + " bytes): not a safetensors file, or a corrupt one");
    if (header_length > file_size - 8)
      fail("header length " + std::to_string(header_length) + " exceeds the " + std::to_string(file_size - 8) +
           " bytes that follow it (truncated file?)");
    std::string header_text(static_cast<size_t>(header_length), '\0');
    file_.read_exact(8, header_text.data(), header_length, detail::file_prefix(path_));
    data_start_ = 8 + header_length;
    const uint64_t data_size = file_size - data_start_;

    json::Value header;
    try {
      header = json::parse(header_text);
    } catch (const json::ParseError& error) {
      fail(std::string("malformed header (JSON byte ") + std::to_string(error.position()) + ", file byte " +
           std::to_string(error.position() + 8) + "): " + error.what());
    }
    if (!header.is_object()) fail(std::string("header is ") + json::type_name(header.type()) + ", not a JSON object");

    for (const auto& [name, value] : header.as_object()) {
      if (name == "__metadata__") {
        parse_metadata(value);
        continue;
      }
      if (name.empty()) fail("a tensor has an empty name");
      tensors_.push_back(parse_tensor(name, value));
      index_.emplace(name, tensors_.size() - 1);  // duplicates were rejected by the JSON parser
    }
    check_layout(data_size);
  }

  void parse_metadata(const json::Value& value) {
    if (!value.is_object())
      fail(std::string("\"__metadata__\" is ") + json::type_name(value.type()) + ", expected an object of strings");
    for (const auto& [key, entry] : value.as_object()) {
      if (!entry.is_string())
        fail("\"__metadata__\" entry '" + key + "' is " + json::type_name(entry.type()) + ", expected a string");
      metadata_.emplace(key, entry.as_string());
    }
  }

  TensorInfo parse_tensor(const std::string& name, const json::Value& value) const {
    if (!value.is_object()) fail(name, std::string("entry is ") + json::type_name(value.type()) + ", expected an object");
    const json::Object& fields = value.as_object();
    for (const auto& field : fields)
      if (field.first != "dtype" && field.first != "shape" && field.first != "data_offsets")
        fail(name, "unexpected field \"" + field.first + "\"");
    const auto required = [&](const char* key, json::Type type) -> const json::Value& {
      const json::Value* field = fields.find(key);
      if (!field) fail(name, std::string("missing field \"") + key + "\"");
      if (field->type() != type)
        fail(name, std::string("field \"") + key + "\" is " + json::type_name(field->type()) + ", expected " +
                       json::type_name(type));
      return *field;
    };

    TensorInfo info;
    info.name = name;
    const std::string& dtype_text = required("dtype", json::Type::String).as_string();
    const std::optional<DType> dtype = parse_dtype(dtype_text);
    if (!dtype) fail(name, "unknown dtype \"" + dtype_text + "\"");
    info.dtype = *dtype;

    for (const json::Value& size : required("shape", json::Type::Array).as_array()) {
      if (!size.is_int()) fail(name, std::string("shape entry is ") + json::type_name(size.type()) + ", expected an integer");
      if (size.as_int() < 0) fail(name, "shape entry " + std::to_string(size.as_int()) + " is negative");
      info.shape.push_back(size.as_int());
    }
    // A zero anywhere makes the tensor empty whatever the other sizes; otherwise the product must fit.
    int64_t numel = std::count(info.shape.begin(), info.shape.end(), 0) ? 0 : 1;
    for (int64_t size : info.shape)
      if (numel != 0 && __builtin_mul_overflow(numel, size, &numel))
        fail(name, "the element count of shape " + shape_str(info.shape) + " overflows int64");
    info.numel = numel;
    uint64_t expected_bytes = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(numel), static_cast<uint64_t>(dtype_size(info.dtype)),
                               &expected_bytes))
      fail(name, "the byte size of " + describe(info.dtype, info.shape) + " overflows");

    const json::Array& offsets = required("data_offsets", json::Type::Array).as_array();
    if (offsets.size() != 2) fail(name, "data_offsets has " + std::to_string(offsets.size()) + " entries, expected 2");
    for (const json::Value& offset : offsets)
      if (!offset.is_int() || offset.as_int() < 0)
        fail(name, "data_offsets must be two non-negative integers, got " + json::dump(value.at("data_offsets")));
    info.begin = static_cast<uint64_t>(offsets[0].as_int());
    info.end = static_cast<uint64_t>(offsets[1].as_int());
    if (info.begin > info.end)
      fail(name, "data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) + ") end before they begin");
    if (info.end - info.begin != expected_bytes)
      fail(name, "data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) + ") hold " +
                     std::to_string(info.end - info.begin) + " bytes, but " + describe(info.dtype, info.shape) +
                     " needs " + std::to_string(expected_bytes));
    return info;
  }

  // The tensors must tile [0, data_size) exactly: sorted by offset, each begins where the previous ends.
  void check_layout(uint64_t data_size) const {
    std::vector<const TensorInfo*> by_offset;
    for (const TensorInfo& info : tensors_) by_offset.push_back(&info);
    std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
      return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    const auto range = [](const TensorInfo& info) {
      return "[" + std::to_string(info.begin) + ", " + std::to_string(info.end) + ")";
    };
    uint64_t position = 0;
    const TensorInfo* previous = nullptr;
    for (const TensorInfo* info : by_offset) {
      if (info->end > data_size)
        fail(info->name, "data_offsets " + range(*info) + " run past the end of the data section (" +
                             std::to_string(data_size) + " bytes): the file is truncated or the offsets are wrong");
      if (info->begin < position)
        fail(info->name, "data_offsets " + range(*info) + " overlap those of tensor '" + previous->name + "' " +
                             range(*previous));
      if (info->begin > position)
        fail(info->name, "data_offsets " + range(*info) + " leave a gap of " + std::to_string(info->begin - position) +
                             " bytes after " +
                             (previous ? "tensor '" + previous->name + "' " + range(*previous) : std::string("the header")));
      position = info->end;
      previous = info;
    }
    if (position != data_size)
      fail(std::to_string(data_size - position) + " unexpected bytes after the last tensor's data" +
           (previous ? " ('" + previous->name + "' ends at " + std::to_string(position) + ")" : std::string()));
  }

  std::string path_;
  detail::ReadOnlyFile file_;
  Metadata metadata_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
  uint64_t data_start_ = 0;
};

// Every tensor of the file in file order; each must be stored as T's dtype exactly.
template <typename T = float>
std::vector<std::pair<std::string, Tensor<T>>> load_safetensors(const std::string& path, Metadata* metadata = nullptr) {
  const SafeTensorsReader reader(path);
  std::vector<std::pair<std::string, Tensor<T>>> out;
  out.reserve(reader.tensors().size());
  for (const TensorInfo& info : reader.tensors()) out.emplace_back(info.name, reader.read<T>(info.name));
  if (metadata) *metadata = reader.metadata();
  return out;
}

// ---- loading into existing tensors --------------------------------------------------------------

struct TensorMismatch {
  std::string name;
  std::string in_file;   // e.g. "F32 (3, 4)"
  std::string expected;  // the destination's dtype and shape
};

// What load_into did: `loaded` were copied; the rest were skipped.
struct LoadReport {
  std::vector<std::string> loaded;
  std::vector<std::string> missing;      // wanted, not in the file
  std::vector<std::string> unexpected;   // in the file, not wanted
  std::vector<TensorMismatch> mismatched;  // in both, with a different shape or dtype

  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }

  // One line per kind of problem, each listing (at most 20) names.
  std::string summary() const {
    constexpr size_t kMaxListed = 20;
    std::string out;
    const auto list = [&](const char* what, size_t count, const auto& name_at) {
      if (count == 0) return;
      if (!out.empty()) out += "; ";
      out += std::to_string(count) + " " + what + ": ";
      for (size_t i = 0; i < std::min(count, kMaxListed); ++i) out += (i ? ", " : "") + name_at(i);
      if (count > kMaxListed) out += ", ... (" + std::to_string(count - kMaxListed) + " more)";
    };
    list("missing from the file", missing.size(), [&](size_t i) { return "'" + missing[i] + "'"; });
    list("unexpected in the file", unexpected.size(), [&](size_t i) { return "'" + unexpected[i] + "'"; });
    list("with a different shape or dtype", mismatched.size(), [&](size_t i) {
      return "'" + mismatched[i].name + "' (file " + mismatched[i].in_file + ", expected " + mismatched[i].expected + ")";
    });
    return out.empty() ? "all " + std::to_string(loaded.size()) + " tensors loaded" : out;
  }
};

// Copies the file's tensors into `tensors` by name (dtype must be T's exactly; no conversion).
// strict: any missing, unexpected or mismatched tensor throws ONE IoError naming the file and all of
// them, and nothing is copied. Lenient: matching tensors are copied, the others are skipped and listed
// in the returned report. The data is written in place (not recorded by autograd), like
// torch.no_grad() + copy_. File tensors whose names start with one of `ignored_prefixes` (e.g. the
// "optimizer." entries of a training checkpoint) are neither loaded nor reported as unexpected.
template <typename T>
LoadReport load_into(const std::string& path, const std::vector<std::pair<std::string, Tensor<T>>>& tensors,
                     bool strict = true, const std::vector<std::string>& ignored_prefixes = {}) {
  const SafeTensorsReader reader(path);
  LoadReport report;
  std::set<std::string_view> wanted;
  std::vector<std::pair<const TensorInfo*, const Tensor<T>*>> plan;
  for (const auto& [name, tensor] : tensors) {
    CCT_CHECK(wanted.insert(name).second, "load_into: the destination list names '", name, "' twice");
    CCT_CHECK(tensor.defined(), "load_into: destination tensor '", name, "' is undefined");
    if (!reader.contains(name)) {
      report.missing.push_back(name);
      continue;
    }
    const TensorInfo& info = reader.info(name);
    if (info.dtype != dtype_of<T>() || info.shape != tensor.shape()) {
      report.mismatched.push_back({name, describe(info.dtype, info.shape), describe(dtype_of<T>(), tensor.shape())});
      continue;
    }
    plan.emplace_back(&info, &tensor);
  }
  const auto ignored = [&](const std::string& name) {
    for (const auto& prefix : ignored_prefixes)
      if (name.compare(0, prefix.size(), prefix) == 0) return true;
    return false;
  };
  for (const TensorInfo& info : reader.tensors())
    if (!wanted.count(info.name) && !ignored(info.name)) report.unexpected.push_back(info.name);
  if (strict && !report.complete())
    throw IoError(detail::file_prefix(path) + "does not match the expected tensors: " + report.summary());
  for (const auto& [info, tensor] : plan) {
    reader.read_raw(*info, tensor->numel() ? tensor->data() : nullptr);
    report.loaded.push_back(info->name);
  }
  return report;
}

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_IO_SAFETENSORS_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE void save_safetensors<T>(const std::string&, const std::vector<std::pair<std::string, Tensor<T>>>&, const Metadata&); \
  CCT_EXTERN_TEMPLATE std::vector<std::pair<std::string, Tensor<T>>> load_safetensors<T>(const std::string&, Metadata*); \
  CCT_EXTERN_TEMPLATE LoadReport load_into<T>(const std::string&, const std::vector<std::pair<std::string, Tensor<T>>>&, bool, const std::vector<std::string>&);
CCT_FOR_FLOATING_TYPES(CCT_IO_SAFETENSORS_TEMPLATES)
#undef CCT_IO_SAFETENSORS_TEMPLATES
#endif

}  // namespace cct::io
