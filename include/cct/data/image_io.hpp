// Image files: decoding PNG/JPEG/BMP (stb_image), writing PNGs atomically (stb_image_write), and
// tiling images into one captioned PNG grid for looking at samples and augmentations.
//
// stb's implementation is compiled once per program, not in every file that includes this header:
// CMake builds it into a small static library that cct::cct links (see stb_implementation.hpp, which a
// build without CMake includes in exactly one .cpp). This header sees stb's declarations only, with
// the settings of stb_config.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../io/atomic_file.hpp"
#include "dataset.hpp"

#if !__has_include(<stb/stb_image.h>) || !__has_include(<stb/stb_image_write.h>)
#error "cct/data/image_io.hpp (image folders, PNG output; included by cct/image_data.hpp and cct/cct.hpp) needs stb's headers: apt-get install libstb-dev (scripts/install_deps.sh does), or include cct/library.hpp, which needs no stb"
#endif
#include "stb_config.hpp"
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
// Tiny bitmap font for captions (all functions static by design: nothing to link).
#include <stb/stb_easy_font.h>

namespace cct::data {

enum class Layout { CHW, HWC };

// Images with more pixels than this are refused before decoding (67 megapixels, e.g. 8192 × 8192): a
// few bytes of header can otherwise make the decoder allocate gigabytes.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

namespace detail {
// Guards stb_image 2.27 (Debian 12's) against a heap overflow it has on corrupt JPEGs: a Huffman table
// (DHT segment) whose 16 code counts add up to more than 256 symbols overruns fixed 257-byte arrays
// (fixed upstream in 2.28 by the same check). stb sees a DHT segment only after the bytes FF C4 (a
// marker is the byte after a run of FF; entropy-coded data stuffs FF as FF 00), so walking every FF C4
// as stb would read it, tables and all, covers whatever stb can be made to parse. Bytes past the end
// read as 0, as stb reads them (so a walk stops there: zero counts cannot overflow). Real files hold a
// few DHT segments; a file crafted to hold many overlapping ones is refused once the walks have read
// 16 bytes per byte of the file (plus 1 MiB), which bounds the time spent here.
inline bool jpeg_huffman_tables_valid(const uint8_t* bytes, size_t size) {
  // stb reads a JPEG when the file starts with its SOI marker: FF D8, after any number of FF fill bytes.
  size_t start = 0;
  while (start < size && bytes[start] == 0xFF) ++start;
  if (start == 0 || start >= size || bytes[start] != 0xD8) return true;  // not a JPEG
  const auto at = [&](size_t i) -> int { return i < size ? bytes[i] : 0; };
  uint64_t budget = 16 * static_cast<uint64_t>(size) + (uint64_t{1} << 20);
  for (size_t marker = 2; marker + 1 < size; ++marker) {
    if (bytes[marker] != 0xFF || bytes[marker + 1] != 0xC4) continue;
    size_t pos = marker + 2;
    int64_t remaining = (at(pos) << 8 | at(pos + 1)) - 2;
    pos += 2;
    while (remaining > 0 && pos < size) {
      if (budget < 17) return false;
      budget -= 17;
      const int table = at(pos++);
      if ((table >> 4) > 1 || (table & 15) > 3) break;  // stb refuses the segment itself
      int64_t symbols = 0;
      for (int i = 0; i < 16; ++i) symbols += at(pos++);
      if (symbols > 256) return false;
      pos += static_cast<size_t>(symbols);
      remaining -= 17 + symbols;
    }
  }
  return true;
}

// stb_image reads the missing pixel rows of a truncated BMP as zeros, so a 500-byte file may claim
// millions of pixels. A BMP stb reads as raw rows (every compression code but RLE's 1 and 2) must hold
// them: at least all but the last, which some writers leave unpadded. Unknown headers are left to stb.
inline bool bmp_holds_its_pixels(const uint8_t* bytes, size_t size) {
  if (size < 26 || bytes[0] != 'B' || bytes[1] != 'M') return true;
  const auto u32 = [&](size_t i) -> uint32_t {
    return uint32_t{bytes[i]} | uint32_t{bytes[i + 1]} << 8 | uint32_t{bytes[i + 2]} << 16 | uint32_t{bytes[i + 3]} << 24;
  };
  const auto u16 = [&](size_t i) -> uint32_t { return uint32_t{bytes[i]} | uint32_t{bytes[i + 1]} << 8; };
  const uint32_t offset = u32(10), header = u32(14);
  int64_t width = 0, height = 0, bits = 0;
  if (header == 12) {  // OS/2 BITMAPCOREHEADER: 16-bit sizes
    width = u16(18), height = u16(20), bits = u16(24);
  } else if (header >= 40 && size >= 34) {
    width = static_cast<int32_t>(u32(18)), height = static_cast<int32_t>(u32(22)), bits = u16(28);
    const uint32_t compression = u32(30);
    if (compression == 1 || compression == 2) return true;  // RLE: stb refuses it; it reads any other as raw rows
  } else {
    return true;
  }
  if (height < 0) height = -height;  // top-down rows
  if (width <= 0 || height == 0 || bits <= 0) return true;  // stb refuses these itself
  const double row_bytes = std::ceil(static_cast<double>(width) * static_cast<double>(bits) / 32.0) * 4.0;
  return static_cast<double>(size) >= static_cast<double>(offset) + row_bytes * static_cast<double>(height - 1);
}

// A PNG's chunks without its zero-length IDAT chunks, in `out`; false (and `out` untouched) when the file
// is not a PNG or has none. Empty IDAT chunks are legal, but stb_image 2.27 answers a leading one with
// memcpy(NULL, ..., 0), undefined behaviour; without them the image decodes the same. Chunks are walked
// only while they fit in the file: whatever follows is copied as it is and left to stb.
inline bool png_without_empty_idat(const uint8_t* bytes, size_t size, std::string& out) {
  static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size < 8 || !std::equal(signature, signature + 8, bytes)) return false;
  const auto chunk_length = [&](size_t at) -> uint64_t {
    return uint64_t{bytes[at]} << 24 | uint64_t{bytes[at + 1]} << 16 | uint64_t{bytes[at + 2]} << 8 | bytes[at + 3];
  };
  const auto is_empty_idat = [&](size_t at) {
    return chunk_length(at) == 0 && std::equal(bytes + at + 4, bytes + at + 8, "IDAT");
  };
  bool found = false;
  for (size_t at = 8; at + 12 <= size && !found; at += 12 + chunk_length(at)) {
    if (is_empty_idat(at)) found = true;
    if (12 + chunk_length(at) > size - at) break;
  }
  if (!found) return false;
  out.assign(reinterpret_cast<const char*>(bytes), 8);
  size_t at = 8;
  while (at + 12 <= size && 12 + chunk_length(at) <= size - at) {
    const size_t chunk_size = static_cast<size_t>(12 + chunk_length(at));
    if (!is_empty_idat(at)) out.append(reinterpret_cast<const char*>(bytes + at), chunk_size);
    at += chunk_size;
  }
  out.append(reinterpret_cast<const char*>(bytes + at), size - at);
  return true;
}
}  // namespace detail

// Decodes an encoded PNG, JPEG or BMP held in memory into a (C, H, W) image. channels 0 keeps the
// file's own channel count; 1 or 3 converts (grayscale ↔ RGB; alpha is dropped). `name` is used in
// error messages.
inline Image decode_image(const uint8_t* bytes, size_t size, int channels, const std::string& name) {
  CCT_CHECK(channels == 0 || channels == 1 || channels == 3, "decode_image: channels must be 0, 1 or 3, got ", channels);
  if (size == 0) throw IoError("cannot decode image '" + name + "': the file is empty");
  if (size > static_cast<size_t>(INT32_MAX)) throw IoError("cannot decode image '" + name + "': file too large");
  if (!detail::jpeg_huffman_tables_valid(bytes, size))
    throw IoError("cannot decode image '" + name + "': corrupt JPEG (invalid Huffman tables)");
  if (!detail::bmp_holds_its_pixels(bytes, size))
    throw IoError("cannot decode image '" + name + "': truncated BMP (the file is shorter than its pixel rows)");
  std::string without_empty_chunks;
  if (detail::png_without_empty_idat(bytes, size, without_empty_chunks)) {
    bytes = reinterpret_cast<const uint8_t*>(without_empty_chunks.data());
    size = without_empty_chunks.size();
  }
  int width = 0, height = 0, stored = 0;
  if (stbi_info_from_memory(bytes, static_cast<int>(size), &width, &height, &stored) &&
      static_cast<int64_t>(width) * height > kMaxImagePixels)
    throw IoError("cannot decode image '" + name + "': " + std::to_string(width) + "x" + std::to_string(height) +
                  " pixels exceed the limit of " + std::to_string(kMaxImagePixels));
  stbi_uc* decoded = stbi_load_from_memory(bytes, static_cast<int>(size), &width, &height, &stored, channels);
  if (!decoded) {
    const char* reason = stbi_failure_reason();
    throw IoError("cannot decode image '" + name + "': " + (reason ? reason : "unknown stb_image error"));
  }
  struct Free {
    stbi_uc* p;
    ~Free() { stbi_image_free(p); }
  } release{decoded};
  int out_channels = channels;
  if (channels == 0) out_channels = stored == 2 ? 1 : stored == 4 ? 3 : stored;  // drop alpha
  const int decoded_channels = channels == 0 ? stored : channels;
  Image image(out_channels, height, width);
  const int64_t plane = static_cast<int64_t>(height) * width;
  for (int64_t i = 0; i < plane; ++i)
    for (int c = 0; c < out_channels; ++c) image.pixels[static_cast<size_t>(c * plane + i)] = decoded[i * decoded_channels + c];
  return image;
}

// Reads and decodes one image file (see decode_image). Throws cct::IoError naming the file.
inline Image read_image(const std::string& path, int channels = 0) {
  const std::string bytes = io::read_file(path);
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), channels, path);
}

// Writes 1-, 3- or 4-channel uint8 pixels as a PNG, atomically (a temporary file renamed over `path`).
inline void write_png(const std::string& path, const uint8_t* data, int64_t width, int64_t height, int64_t channels,
                      Layout layout = Layout::HWC) {
  CCT_CHECK(channels == 1 || channels == 3 || channels == 4, "write_png: channels must be 1, 3 or 4, got ", channels);
  CCT_CHECK(width > 0 && height > 0 && width < (1 << 24) && height < (1 << 24), "write_png: bad size ", width, "x", height);
  std::vector<uint8_t> interleaved;
  const uint8_t* hwc = data;
  if (layout == Layout::CHW && channels > 1) {
    const int64_t plane = width * height;
    interleaved.resize(static_cast<size_t>(plane * channels));
    for (int64_t i = 0; i < plane; ++i)
      for (int64_t c = 0; c < channels; ++c) interleaved[static_cast<size_t>(i * channels + c)] = data[c * plane + i];
    hwc = interleaved.data();
  }
  std::string encoded;
  auto append = [](void* context, void* bytes, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(bytes), static_cast<size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &encoded, static_cast<int>(width), static_cast<int>(height), static_cast<int>(channels),
                              hwc, static_cast<int>(width * channels)))
    throw IoError("cannot write '" + path + "': PNG encoding failed");
  io::write_file_atomic(path, encoded);
}

inline void write_png(const std::string& path, const Image& image) {
  write_png(path, image.pixels.data(), image.width, image.height, image.channels, Layout::CHW);
}

struct GridOptions {
  int64_t columns = 8;      // images per row
  int64_t upscale = 1;      // each image pixel becomes an upscale × upscale block (nearest)
  int64_t spacing = 2;      // background pixels between tiles and around the grid
  uint8_t background = 255;
};

namespace detail {
// Rasterises `text` with stb_easy_font (axis-aligned quads) into an RGB (H, W, 3) canvas at (x, y),
// clipped to the box [x, x + max_width).
inline void draw_text(std::vector<uint8_t>& canvas, int64_t canvas_width, int64_t canvas_height, int64_t x, int64_t y,
                      int64_t max_width, const std::string& text) {
  if (text.empty()) return;
  std::vector<char> mutable_text(text.begin(), text.end());
  mutable_text.push_back('\0');
  // 270 bytes per character is stb_easy_font's documented worst case.
  std::vector<char> vertices(text.size() * 270 + 64);
  unsigned char color[4] = {0, 0, 0, 255};
  const int quads = stb_easy_font_print(0.0f, 0.0f, mutable_text.data(), color, vertices.data(),
                                        static_cast<int>(vertices.size()));
  for (int q = 0; q < quads; ++q) {
    // Each vertex: x, y, z (floats) and 4 colour bytes; corners 0 and 2 span the quad.
    float corner0[2], corner2[2];
    std::memcpy(corner0, vertices.data() + (q * 4 + 0) * 16, sizeof corner0);
    std::memcpy(corner2, vertices.data() + (q * 4 + 2) * 16, sizeof corner2);
    const auto qx0 = static_cast<int64_t>(corner0[0]), qy0 = static_cast<int64_t>(corner0[1]);
    const auto qx1 = static_cast<int64_t>(corner2[0]), qy1 = static_cast<int64_t>(corner2[1]);
    for (int64_t py = qy0; py < qy1; ++py)
      for (int64_t px = qx0; px < qx1; ++px) {
        const int64_t cx = x + px, cy = y + py;
        if (px >= max_width || cx < 0 || cy < 0 || cx >= canvas_width || cy >= canvas_height) continue;
        for (int c = 0; c < 3; ++c) canvas[static_cast<size_t>((cy * canvas_width + cx) * 3 + c)] = 0;
      }
  }
}
}  // namespace detail

// Tiles images (each (C, H, W) with 1 or 3 channels; sizes may differ, tiles take the largest) into
// one RGB PNG, `columns` per row, each optionally captioned underneath (captions empty or one per
// image). Written atomically.
inline void write_image_grid(const std::string& path, const std::vector<Image>& images,
                             const std::vector<std::string>& captions = {}, GridOptions options = {}) {
  CCT_CHECK(!images.empty(), "write_image_grid: no images to write to '", path, "'");
  CCT_CHECK(captions.empty() || captions.size() == images.size(), "write_image_grid: ", captions.size(),
            " captions for ", images.size(), " images");
  CCT_CHECK(options.columns > 0 && options.upscale > 0 && options.spacing >= 0,
            "write_image_grid: columns and upscale must be positive and spacing non-negative");
  int64_t tile_h = 0, tile_w = 0;
  for (const Image& image : images) {
    CCT_CHECK(image.channels == 1 || image.channels == 3, "write_image_grid: images must have 1 or 3 channels, got ",
              image.channels);
    tile_h = std::max(tile_h, image.height * options.upscale);
    tile_w = std::max(tile_w, image.width * options.upscale);
  }
  const int64_t caption_h = captions.empty() ? 0 : 12;
  const auto count = static_cast<int64_t>(images.size());
  const int64_t columns = std::min(options.columns, count);
  const int64_t rows = (count + columns - 1) / columns;
  const int64_t gap = options.spacing;
  const int64_t width = columns * (tile_w + gap) + gap;
  const int64_t height = rows * (tile_h + caption_h + gap) + gap;
  std::vector<uint8_t> canvas(static_cast<size_t>(width * height * 3), options.background);
  for (int64_t n = 0; n < count; ++n) {
    const Image& image = images[static_cast<size_t>(n)];
    const int64_t x0 = gap + (n % columns) * (tile_w + gap);
    const int64_t y0 = gap + (n / columns) * (tile_h + caption_h + gap);
    for (int64_t y = 0; y < image.height * options.upscale; ++y)
      for (int64_t x = 0; x < image.width * options.upscale; ++x)
        for (int64_t c = 0; c < 3; ++c) {
          const int64_t source_c = image.channels == 1 ? 0 : c;
          canvas[static_cast<size_t>(((y0 + y) * width + x0 + x) * 3 + c)] =
              image.at(source_c, y / options.upscale, x / options.upscale);
        }
    if (!captions.empty())
      detail::draw_text(canvas, width, height, x0, y0 + tile_h + 2, tile_w, captions[static_cast<size_t>(n)]);
  }
  write_png(path, canvas.data(), width, height, 3, Layout::HWC);
}

}  // namespace cct::data
