// ImageDataset: labelled uint8 images (N, C, H, W) held in memory, with subsets and seeded splits.
//
// Images stay uint8 until a batch is assembled (a quarter of the memory of float, and what the
// augmentations work on); the DataLoader converts and normalises per batch. A dataset is an immutable
// value with cheap copies: the pixel tensor is a shared handle, so handing a dataset to a DataLoader
// or taking its class names costs nothing. Nothing in cct writes into a dataset's pixels after it
// has been built.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../core/generator.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "../io/atomic_file.hpp"

namespace cct::data {

// One image as the per-sample transforms see it: channel-major (C, H, W) uint8, plane after plane.
// Transforms may change its size (crop, resize), so it owns its pixels.
struct Image {
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint8_t> pixels;

  Image() = default;
  Image(int64_t channels_, int64_t height_, int64_t width_, uint8_t value = 0)
      : channels(channels_), height(height_), width(width_) {
    CCT_CHECK_SHAPE(channels >= 0 && height >= 0 && width >= 0, "Image: negative size (", channels, ", ",
                    height, ", ", width, ")");
    pixels.assign(static_cast<size_t>(channels * height * width), value);
  }
  // Copies a (C, H, W) buffer.
  static Image from_chw(const uint8_t* chw, int64_t channels, int64_t height, int64_t width) {
    Image image(channels, height, width);
    std::memcpy(image.pixels.data(), chw, image.pixels.size());
    return image;
  }

  int64_t numel() const { return channels * height * width; }
  int64_t plane_size() const { return height * width; }
  uint8_t* plane(int64_t c) { return pixels.data() + c * plane_size(); }
  const uint8_t* plane(int64_t c) const { return pixels.data() + c * plane_size(); }
  uint8_t& at(int64_t c, int64_t y, int64_t x) { return pixels[static_cast<size_t>((c * height + y) * width + x)]; }
  uint8_t at(int64_t c, int64_t y, int64_t x) const {
    return pixels[static_cast<size_t>((c * height + y) * width + x)];
  }
  Shape shape() const { return {channels, height, width}; }

  bool operator==(const Image& other) const {
    return channels == other.channels && height == other.height && width == other.width && pixels == other.pixels;
  }
  bool operator!=(const Image& other) const { return !(*this == other); }
};

// A well-mixed seed from a base seed and a few integers (epoch, sample index, purpose): chained
// SplitMix64 finalisers, so nearby inputs give unrelated streams. Loaders use it for per-epoch and
// per-sample streams; a user's own pipeline can too.
inline uint64_t derive_seed(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0) {
  uint64_t h = Generator::mix(seed + Generator::kGolden);
  for (uint64_t value : {a, b, c}) h = Generator::mix(h ^ Generator::mix(value + Generator::kGolden));
  return h;
}

namespace detail {
using data::derive_seed;

// Helpers shared by the file readers.
inline std::string join_path(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}
// Without exceptions: a path that cannot be looked at (no permission, a dangling link) counts as absent.
inline bool path_exists(const std::string& path) {
  std::error_code error;
  return std::filesystem::exists(path, error);
}
inline bool is_folder(const std::string& path) {
  std::error_code error;
  return std::filesystem::is_directory(path, error);
}

// The folder that holds `probe`: `dir` itself, or `dir/<subfolder>` (the name the official tarball unpacks to).
inline std::string find_data_dir(const std::string& dir, const std::string& probe, const std::string& subfolder) {
  std::error_code error;
  if (std::filesystem::exists(join_path(dir, probe), error)) return dir;
  const std::string nested = join_path(dir, subfolder);
  if (std::filesystem::exists(join_path(nested, probe), error)) return nested;
  return dir;
}

// Reads a whole file, throwing cct::IoError "<what>: missing file '<path>'" when it is absent.
inline std::string read_data_file(const std::string& path, const std::string& what) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) throw IoError(what + ": missing file '" + path + "'");
  return io::read_file(path);
}
}  // namespace detail

// A uniformly random permutation of 0..n-1 (Fisher-Yates driven by `gen`).
inline std::vector<int64_t> random_permutation(int64_t n, Generator& gen) {
  std::vector<int64_t> order(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(gen.randint(i + 1))]);
  return order;
}

class ImageDataset {
 public:
  ImageDataset() = default;

  // images: (N, C, H, W) uint8; labels: N values in [0, class_names.size()).
  ImageDataset(Tensor<uint8_t> images, std::vector<int64_t> labels, std::vector<std::string> class_names)
      : images_(std::move(images)), labels_(std::move(labels)), class_names_(std::move(class_names)) {
    CCT_CHECK_SHAPE(images_.defined() && images_.dim() == 4, "ImageDataset: images must be (N, C, H, W), got ",
                    images_.defined() ? shape_str(images_.shape()) : std::string("an undefined tensor"));
    CCT_CHECK_SHAPE(static_cast<int64_t>(labels_.size()) == images_.size(0), "ImageDataset: ", labels_.size(),
                    " labels for ", images_.size(0), " images");
    const int64_t classes = num_classes();
    CCT_CHECK(classes > 0, "ImageDataset: needs at least one class name");
    for (size_t i = 0; i < labels_.size(); ++i)
      CCT_CHECK(labels_[i] >= 0 && labels_[i] < classes, "ImageDataset: label ", labels_[i], " of image ", i,
                " is outside [0, ", classes, ")");
  }

  bool empty() const { return size() == 0; }
  int64_t size() const { return images_.defined() ? images_.size(0) : 0; }
  int64_t channels() const { return images_.defined() ? images_.size(1) : 0; }
  int64_t height() const { return images_.defined() ? images_.size(2) : 0; }
  int64_t width() const { return images_.defined() ? images_.size(3) : 0; }
  int64_t image_numel() const { return channels() * height() * width(); }
  int64_t num_classes() const { return static_cast<int64_t>(class_names_.size()); }

  // The whole (N, C, H, W) tensor (shared: treat it as read-only).
  const Tensor<uint8_t>& images() const { return images_; }
  const std::vector<int64_t>& labels() const { return labels_; }
  const std::vector<std::string>& class_names() const { return class_names_; }

  int64_t label(int64_t index) const { return labels_[static_cast<size_t>(check_index(index))]; }
  // Pointer to image `index`, (C, H, W) contiguous.
  const uint8_t* image_data(int64_t index) const { return images_.data() + check_index(index) * image_numel(); }
  Image image(int64_t index) const { return Image::from_chw(image_data(index), channels(), height(), width()); }

  // How many images each class has.
  std::vector<int64_t> class_counts() const {
    std::vector<int64_t> counts(static_cast<size_t>(num_classes()), 0);
    for (int64_t label : labels_) ++counts[static_cast<size_t>(label)];
    return counts;
  }

  // A new dataset holding the images at `indices`, in that order (repeats allowed), same classes.
  ImageDataset subset(const std::vector<int64_t>& indices) const {
    const int64_t n = static_cast<int64_t>(indices.size());
    const int64_t numel = image_numel();
    Tensor<uint8_t> images = Tensor<uint8_t>::empty({n, channels(), height(), width()});
    std::vector<int64_t> labels(indices.size());
    for (int64_t i = 0; i < n; ++i) {
      const int64_t source = indices[static_cast<size_t>(i)];
      std::memcpy(images.data() + i * numel, image_data(source), static_cast<size_t>(numel));
      labels[static_cast<size_t>(i)] = labels_[static_cast<size_t>(source)];
    }
    return ImageDataset(images, std::move(labels), class_names_);
  }

  // Splits into (train, validation) with round(val_fraction * count) images in validation, drawn with a
  // Generator seeded by `seed` (the same seed always gives the same split). Stratified (the default)
  // rounds per class, so both parts keep the class balance; otherwise it draws from all images at once.
  // Both parts keep the original order of their images.
  std::pair<ImageDataset, ImageDataset> split(double val_fraction, uint64_t seed, bool stratified = true) const {
    CCT_CHECK(val_fraction >= 0.0 && val_fraction <= 1.0, "ImageDataset::split: val_fraction must be in [0, 1], got ",
              val_fraction);
    Generator gen(seed);
    std::vector<uint8_t> in_val(static_cast<size_t>(size()), 0);
    auto draw = [&](const std::vector<int64_t>& pool) {
      const auto take = static_cast<int64_t>(std::llround(val_fraction * static_cast<double>(pool.size())));
      const std::vector<int64_t> order = random_permutation(static_cast<int64_t>(pool.size()), gen);
      for (int64_t i = 0; i < take; ++i) in_val[static_cast<size_t>(pool[static_cast<size_t>(order[static_cast<size_t>(i)])])] = 1;
    };
    if (stratified) {
      std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(num_classes()));
      for (int64_t i = 0; i < size(); ++i) by_class[static_cast<size_t>(labels_[static_cast<size_t>(i)])].push_back(i);
      for (const auto& pool : by_class) draw(pool);
    } else {
      std::vector<int64_t> all(static_cast<size_t>(size()));
      for (int64_t i = 0; i < size(); ++i) all[static_cast<size_t>(i)] = i;
      draw(all);
    }
    std::vector<int64_t> train_indices, val_indices;
    for (int64_t i = 0; i < size(); ++i) (in_val[static_cast<size_t>(i)] ? val_indices : train_indices).push_back(i);
    return {subset(train_indices), subset(val_indices)};
  }

 private:
  int64_t check_index(int64_t index) const {
    CCT_CHECK(index >= 0 && index < size(), "ImageDataset: index ", index, " is out of range for ", size(), " images");
    return index;
  }

  Tensor<uint8_t> images_;
  std::vector<int64_t> labels_;
  std::vector<std::string> class_names_;
};

}  // namespace cct::data
