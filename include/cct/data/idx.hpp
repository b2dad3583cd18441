// Readers for IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed, and the MNIST-style dataset.
//
// IDX: two zero bytes, a type byte (0x08 = unsigned byte, the only type these data sets use), the
// number of dimensions, then each dimension as a big-endian uint32, then the data. A file that starts
// with the gzip magic 1f 8b is inflated with zlib first (link zlib: ZLIB::ZLIB / -lz).
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../core/tensor.hpp"
#include "../io/atomic_file.hpp"
#include "dataset.hpp"

namespace cct::data {

// An IDX array of unsigned bytes: its dimensions (outermost first) and its row-major data.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};

namespace detail {

inline uint32_t read_little_endian_u32(const std::string& bytes, size_t offset) {
  return uint32_t{static_cast<uint8_t>(bytes[offset])} | (uint32_t{static_cast<uint8_t>(bytes[offset + 1])} << 8) |
         (uint32_t{static_cast<uint8_t>(bytes[offset + 2])} << 16) | (uint32_t{static_cast<uint8_t>(bytes[offset + 3])} << 24);
}

inline bool is_gzip(const std::string& bytes) {
  return bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f && static_cast<uint8_t>(bytes[1]) == 0x8b;
}

// Inflates a gzip file held in memory (several concatenated members are joined, as gunzip does).
inline std::string gunzip(const std::string& compressed, const std::string& path) {
  z_stream stream{};
  // 16 + MAX_WBITS: expect a gzip header and trailer (CRC and length are checked by zlib).
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) throw IoError("cannot inflate '" + path + "': zlib init failed");
  struct End {
    z_stream* s;
    ~End() { inflateEnd(s); }
  } end{&stream};
  // The last four bytes of a gzip member hold its uncompressed size (mod 2^32): a good first guess,
  // trusted only up to deflate's maximum ratio (about 1032:1) so a corrupt trailer cannot make it huge.
  size_t expected = 1 << 16;
  if (compressed.size() >= 18)
    expected = std::max<size_t>(expected, std::min<size_t>(read_little_endian_u32(compressed, compressed.size() - 4),
                                                           compressed.size() * 1032));
  std::string out(expected, '\0');
  size_t produced = 0;
  size_t consumed = 0;
  while (true) {
    if (produced == out.size()) out.resize(out.size() * 2);
    const size_t in_chunk = std::min<size_t>(compressed.size() - consumed, 1u << 30);
    const size_t out_chunk = std::min<size_t>(out.size() - produced, 1u << 30);
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data() + consumed));
    stream.avail_in = static_cast<uInt>(in_chunk);
    stream.next_out = reinterpret_cast<Bytef*>(&out[produced]);
    stream.avail_out = static_cast<uInt>(out_chunk);
    const int status = inflate(&stream, Z_NO_FLUSH);
    consumed += in_chunk - stream.avail_in;
    produced += out_chunk - stream.avail_out;
    if (status == Z_STREAM_END) {
      // Another member follows only if its magic does; anything else after the first member is an error.
      if (consumed == compressed.size()) break;
      if (!is_gzip(compressed.substr(consumed, 2)))
        throw IoError("cannot inflate '" + path + "': " + std::to_string(compressed.size() - consumed) +
                      " bytes of garbage after the gzip stream");
      inflateReset(&stream);
      continue;
    }
    if (status == Z_OK) continue;
    if (status == Z_BUF_ERROR) {
      // No progress possible: with output space left, the input ended inside the stream.
      if (produced < out.size()) throw IoError("cannot inflate '" + path + "': the gzip stream is truncated");
      continue;  // the output was full: it grows at the top of the loop
    }
    throw IoError("cannot inflate '" + path + "': corrupt gzip data (" +
                  std::string(stream.msg ? stream.msg : "zlib error " + std::to_string(status)) + ")");
  }
  out.resize(produced);
  return out;
}

inline uint32_t read_big_endian_u32(const std::string& bytes, size_t offset) {
  return (uint32_t{static_cast<uint8_t>(bytes[offset])} << 24) | (uint32_t{static_cast<uint8_t>(bytes[offset + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(bytes[offset + 2])} << 8) | uint32_t{static_cast<uint8_t>(bytes[offset + 3])};
}

}  // namespace detail

// Reads an unsigned-byte IDX file (plain or gzipped). `expected_rank` > 0 also checks the number of
// dimensions. Throws cct::IoError naming the file for a missing file, bad magic, an unsupported type,
// or a size that does not match the header (truncated or with trailing bytes).
inline IdxArray read_idx(const std::string& path, int expected_rank = 0) {
  std::string bytes = detail::read_data_file(path, "IDX");
  if (detail::is_gzip(bytes)) bytes = detail::gunzip(bytes, path);
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0)
    throw IoError("IDX: '" + path + "' does not start with the IDX magic (two zero bytes, type, rank)");
  const auto type = static_cast<uint8_t>(bytes[2]);
  const int rank = static_cast<uint8_t>(bytes[3]);
  if (type != 0x08)
    throw IoError("IDX: '" + path + "' holds element type " + std::to_string(type) +
                  "; only unsigned bytes (type 8) are supported");
  if (rank == 0) throw IoError("IDX: '" + path + "' declares zero dimensions");
  if (expected_rank > 0 && rank != expected_rank)
    throw IoError("IDX: '" + path + "' has " + std::to_string(rank) + " dimensions, expected " +
                  std::to_string(expected_rank));
  const size_t header = 4 + 4 * static_cast<size_t>(rank);
  if (bytes.size() < header) throw IoError("IDX: '" + path + "' is truncated inside its header");
  IdxArray array;
  constexpr uint64_t kLargestCount = uint64_t{1} << 40;
  uint64_t count = 1, nonzero_count = 1;
  for (int d = 0; d < rank; ++d) {
    const uint32_t dim = detail::read_big_endian_u32(bytes, 4 + 4 * static_cast<size_t>(d));
    array.dims.push_back(static_cast<int64_t>(dim));
    // Checked before multiplying: a product that wraps around 2⁶⁴ (to 0, say) would match a short file.
    // Zero sizes are skipped so that (0, 2³², 2³²) is refused too: its tensor's strides would overflow.
    if (dim != 0 && nonzero_count > kLargestCount / dim)
      throw IoError("IDX: '" + path + "' declares an implausibly large array (dimension " + std::to_string(d) +
                    " is " + std::to_string(dim) + ")");
    if (dim != 0) nonzero_count *= dim;
    count *= dim;
  }
  const uint64_t available = bytes.size() - header;
  if (available != count)
    throw IoError("IDX: '" + path + "' " + (available < count ? "is truncated" : "has trailing bytes") + ": the header " +
                  "declares " + std::to_string(count) + " data bytes, the file holds " + std::to_string(available));
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return array;
}

// An IDX image file (N, H, W) as an (N, 1, H, W) tensor.
inline Tensor<uint8_t> read_idx_images(const std::string& path) {
  IdxArray array = read_idx(path, 3);
  Tensor<uint8_t> images = Tensor<uint8_t>::empty({array.dims[0], 1, array.dims[1], array.dims[2]});
  std::copy(array.data.begin(), array.data.end(), images.data());
  return images;
}

// An IDX label file (N) as N integers.
inline std::vector<int64_t> read_idx_labels(const std::string& path) {
  const IdxArray array = read_idx(path, 1);
  return std::vector<int64_t>(array.data.begin(), array.data.end());
}

namespace detail {
// `dir/<stem>` in any of the spellings the data sets ship with: idx3-ubyte or idx3.ubyte style names,
// plain or .gz. Returns the first that exists, else the canonical gzipped name (for the error).
inline std::string find_idx_file(const std::string& dir, const std::string& prefix, const std::string& kind) {
  std::error_code error;
  for (const std::string& separator : {std::string("-"), std::string(".")})
    for (const std::string& suffix : {std::string(""), std::string(".gz")}) {
      const std::string candidate = join_path(dir, prefix + separator + kind + suffix);
      if (std::filesystem::exists(candidate, error)) return candidate;
    }
  return join_path(dir, prefix + "-" + kind + ".gz");
}
}  // namespace detail

// MNIST-format data set in `dir`: train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz] (train)
// or t10k-…; labels must lie below class_names.size() and match the images in number.
inline ImageDataset read_mnist(const std::string& dir, bool train, std::vector<std::string> class_names = {}) {
  if (class_names.empty()) class_names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_path = detail::find_idx_file(dir, prefix + "-images", "idx3-ubyte");
  const std::string labels_path = detail::find_idx_file(dir, prefix + "-labels", "idx1-ubyte");
  Tensor<uint8_t> images = read_idx_images(images_path);
  std::vector<int64_t> labels = read_idx_labels(labels_path);
  if (static_cast<int64_t>(labels.size()) != images.size(0))
    throw IoError("MNIST: '" + labels_path + "' holds " + std::to_string(labels.size()) + " labels but '" + images_path +
                  "' holds " + std::to_string(images.size(0)) + " images");
  if (labels.empty()) throw IoError("MNIST: '" + images_path + "' holds no images");
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] >= static_cast<int64_t>(class_names.size()))
      throw IoError("MNIST: '" + labels_path + "' label " + std::to_string(i) + " is " + std::to_string(labels[i]) +
                    ", outside [0, " + std::to_string(class_names.size()) + ")");
  return ImageDataset(images, std::move(labels), std::move(class_names));
}

inline const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

// Fashion-MNIST: the same files as MNIST, with its class names (Debian's dataset-fashion-mnist puts
// them in /usr/share/datasets/fashion-mnist).
inline ImageDataset read_fashion_mnist(const std::string& dir, bool train) {
  return read_mnist(dir, train, fashion_mnist_class_names());
}

}  // namespace cct::data
