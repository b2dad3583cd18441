// Per-sample geometric transforms on uint8 (C, H, W) images, their composition, and normalisation.
//
// A transform is any callable `void(Image&, Generator&)`: it draws its randomness only from the
// Generator it is handed, so the DataLoader can make every sample's augmentation a pure function of
// (seed, epoch, sample index). The random ones follow torchvision's definitions (same parameter
// distributions, same order of draws), with cct's Generator as the random source.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../core/generator.hpp"
#include "../core/parallel.hpp"
#include "../core/shape.hpp"
#include "dataset.hpp"

namespace cct::data {

using Transform = std::function<void(Image&, Generator&)>;

// A float (C, H, W) image inside a batch, after normalisation: what RandomErasing works on.
struct FloatImageView {
  float* data = nullptr;
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
};
using FloatTransform = std::function<void(const FloatImageView&, Generator&)>;

// Applies its transforms in order, all drawing from the same generator.
class Compose {
 public:
  Compose() = default;
  // Implicit, so that `options.transform = {RandomCrop{}, RandomHorizontalFlip{}}` reads naturally.
  Compose(std::initializer_list<Transform> transforms) : transforms_(transforms) {}
  explicit Compose(std::vector<Transform> transforms) : transforms_(std::move(transforms)) {}
  Compose& add(Transform transform) {
    transforms_.push_back(std::move(transform));
    return *this;
  }
  void operator()(Image& image, Generator& gen) const {
    for (const Transform& transform : transforms_) transform(image, gen);
  }
  bool empty() const { return transforms_.empty(); }
  size_t size() const { return transforms_.size(); }

 private:
  std::vector<Transform> transforms_;
};

// ---- normalisation --------------------------------------------------------------------------------

// out = (pixel / 255 - mean[c]) / stddev[c]. Empty mean/stddev is the identity (pixel / 255); one
// value applies to every channel.
struct Normalize {
  std::vector<float> mean;
  std::vector<float> stddev;

  Normalize() = default;
  Normalize(std::vector<float> mean_, std::vector<float> stddev_) : mean(std::move(mean_)), stddev(std::move(stddev_)) {
    CCT_CHECK(mean.size() == stddev.size(), "Normalize: ", mean.size(), " means but ", stddev.size(),
              " standard deviations");
    for (float s : stddev) CCT_CHECK(s > 0.0f, "Normalize: standard deviations must be positive, got ", s);
  }
  // The constants of the Compact Transformers training recipe.
  static Normalize cifar10() { return Normalize({0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}); }
  static Normalize cifar100() { return Normalize({0.5071f, 0.4867f, 0.4408f}, {0.2675f, 0.2565f, 0.2761f}); }

  float mean_of(int64_t c) const { return mean.empty() ? 0.0f : mean[mean.size() == 1 ? 0 : static_cast<size_t>(c)]; }
  float std_of(int64_t c) const {
    return stddev.empty() ? 1.0f : stddev[stddev.size() == 1 ? 0 : static_cast<size_t>(c)];
  }

  void check_channels(int64_t channels) const {
    CCT_CHECK_SHAPE(mean.size() <= 1 || static_cast<int64_t>(mean.size()) == channels, "Normalize: ", mean.size(),
                    " channel means for images with ", channels, " channels");
  }

  // Normalises one (C, H, W) image into `out` (C·H·W floats).
  void apply(const uint8_t* chw, int64_t channels, int64_t height, int64_t width, float* out) const {
    check_channels(channels);
    const int64_t plane = height * width;
    for (int64_t c = 0; c < channels; ++c) {
      const float scale = 1.0f / (255.0f * std_of(c));
      const float offset = -mean_of(c) / std_of(c);
      const uint8_t* in = chw + c * plane;
      float* dst = out + c * plane;
      for (int64_t i = 0; i < plane; ++i) dst[i] = static_cast<float>(in[i]) * scale + offset;
    }
  }

  // The inverse, rounded and clamped to uint8 (for looking at normalised or mixed batches).
  Image denormalize(const float* chw, int64_t channels, int64_t height, int64_t width) const {
    check_channels(channels);
    Image image(channels, height, width);
    const int64_t plane = height * width;
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < plane; ++i) {
        const float value = (chw[c * plane + i] * std_of(c) + mean_of(c)) * 255.0f;
        image.pixels[static_cast<size_t>(c * plane + i)] = static_cast<uint8_t>(std::clamp(std::nearbyint(value), 0.0f, 255.0f));
      }
    return image;
  }
};

// Per-channel mean and (population) standard deviation of a dataset's pixels, scaled to [0, 1]: the
// Normalize for data sets without published constants. Sums are exact integers, so the result does
// not depend on the thread count.
inline Normalize compute_mean_std(const ImageDataset& dataset) {
  CCT_CHECK(!dataset.empty(), "compute_mean_std: the dataset is empty");
  const int64_t channels = dataset.channels(), plane = dataset.height() * dataset.width();
  std::vector<uint64_t> sum(static_cast<size_t>(channels), 0), sum_sq(static_cast<size_t>(channels), 0);
  std::mutex merge;
  parallel_for(0, dataset.size(), 64, [&](int64_t begin, int64_t end) {
    std::vector<uint64_t> local(static_cast<size_t>(channels), 0), local_sq(static_cast<size_t>(channels), 0);
    for (int64_t n = begin; n < end; ++n) {
      const uint8_t* image = dataset.image_data(n);
      for (int64_t c = 0; c < channels; ++c) {
        uint64_t s = 0, s2 = 0;
        for (int64_t i = 0; i < plane; ++i) {
          const uint64_t v = image[c * plane + i];
          s += v;
          s2 += v * v;
        }
        local[static_cast<size_t>(c)] += s;
        local_sq[static_cast<size_t>(c)] += s2;
      }
    }
    std::lock_guard<std::mutex> lock(merge);
    for (int64_t c = 0; c < channels; ++c) {
      sum[static_cast<size_t>(c)] += local[static_cast<size_t>(c)];
      sum_sq[static_cast<size_t>(c)] += local_sq[static_cast<size_t>(c)];
    }
  });
  const double count = static_cast<double>(dataset.size()) * static_cast<double>(plane);
  std::vector<float> mean(static_cast<size_t>(channels)), stddev(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    const double m = static_cast<double>(sum[static_cast<size_t>(c)]) / count;
    const double variance = std::max(0.0, static_cast<double>(sum_sq[static_cast<size_t>(c)]) / count - m * m);
    mean[static_cast<size_t>(c)] = static_cast<float>(m / 255.0);
    // A constant channel would give std 0; 1/255 keeps Normalize finite and the values unchanged in scale.
    stddev[static_cast<size_t>(c)] = static_cast<float>(std::max(std::sqrt(variance), 1.0) / 255.0);
  }
  return Normalize(std::move(mean), std::move(stddev));
}

// ---- deterministic geometry -----------------------------------------------------------------------

// The window (top, left, height, width) of `image`; parts outside the image read as `fill` (so a
// window larger than the image pads it).
inline Image crop(const Image& image, int64_t top, int64_t left, int64_t height, int64_t width, uint8_t fill = 0) {
  CCT_CHECK_SHAPE(height >= 0 && width >= 0, "crop: negative size ", height, "x", width);
  Image out(image.channels, height, width, fill);
  const int64_t y0 = std::max<int64_t>(0, -top), y1 = std::min<int64_t>(height, image.height - top);
  const int64_t x0 = std::max<int64_t>(0, -left), x1 = std::min<int64_t>(width, image.width - left);
  if (y0 >= y1 || x0 >= x1) return out;
  for (int64_t c = 0; c < image.channels; ++c)
    for (int64_t y = y0; y < y1; ++y)
      std::copy_n(image.plane(c) + (y + top) * image.width + left + x0, x1 - x0, out.plane(c) + y * width + x0);
  return out;
}

// Pads every side with `padding` pixels of `fill`.
inline Image pad(const Image& image, int64_t padding, uint8_t fill = 0) {
  CCT_CHECK_SHAPE(padding >= 0, "pad: negative padding ", padding);
  return crop(image, -padding, -padding, image.height + 2 * padding, image.width + 2 * padding, fill);
}

// Mirrors left-right in place.
inline void hflip(Image& image) {
  for (int64_t c = 0; c < image.channels; ++c)
    for (int64_t y = 0; y < image.height; ++y) {
      uint8_t* row = image.plane(c) + y * image.width;
      std::reverse(row, row + image.width);
    }
}

namespace detail {
// Separable resampling weights (PIL's and torchvision's antialiased bilinear): output pixel o covers
// input positions around (o + 0.5)·scale with a triangle filter whose radius is max(scale, 1) input
// pixels, so upsampling is plain bilinear (align_corners=False) and downsampling averages instead of
// aliasing. Weights are normalised over the taps inside the image (this is the edge handling).
struct ResampleTaps {
  std::vector<int64_t> first;   // first input index per output
  std::vector<int64_t> count;   // taps per output
  std::vector<float> weights;   // out × max_taps
  int64_t max_taps = 0;
};

inline ResampleTaps bilinear_taps(int64_t in_size, int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filter_scale = std::max(scale, 1.0);
  const double support = filter_scale;  // triangle radius 1, stretched when downsampling
  ResampleTaps taps;
  taps.max_taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  taps.first.resize(static_cast<size_t>(out_size));
  taps.count.resize(static_cast<size_t>(out_size));
  taps.weights.assign(static_cast<size_t>(out_size * taps.max_taps), 0.0f);
  for (int64_t o = 0; o < out_size; ++o) {
    const double center = (static_cast<double>(o) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(center - support + 0.5));
    const int64_t hi = std::min<int64_t>(in_size, static_cast<int64_t>(center + support + 0.5));
    double total = 0.0;
    std::vector<double> w;
    for (int64_t i = lo; i < hi; ++i) {
      const double distance = std::abs((static_cast<double>(i) - center + 0.5) / filter_scale);
      w.push_back(distance < 1.0 ? 1.0 - distance : 0.0);
      total += w.back();
    }
    taps.first[static_cast<size_t>(o)] = lo;
    taps.count[static_cast<size_t>(o)] = hi - lo;
    for (int64_t k = 0; k < hi - lo; ++k)
      taps.weights[static_cast<size_t>(o * taps.max_taps + k)] =
          static_cast<float>(total > 0.0 ? w[static_cast<size_t>(k)] / total : 0.0);
  }
  return taps;
}
}  // namespace detail

// Resizes to (height, width) with antialiased bilinear interpolation (see detail::bilinear_taps).
inline Image resize_bilinear(const Image& image, int64_t height, int64_t width) {
  CCT_CHECK_SHAPE(height > 0 && width > 0, "resize_bilinear: target size must be positive, got ", height, "x", width);
  CCT_CHECK_SHAPE(image.height > 0 && image.width > 0, "resize_bilinear: empty source image ", image.height, "x",
                  image.width);
  if (height == image.height && width == image.width) return image;
  const detail::ResampleTaps across = detail::bilinear_taps(image.width, width);
  const detail::ResampleTaps down = detail::bilinear_taps(image.height, height);
  Image out(image.channels, height, width);
  std::vector<float> rows(static_cast<size_t>(image.height * width));
  for (int64_t c = 0; c < image.channels; ++c) {
    const uint8_t* src = image.plane(c);
    for (int64_t y = 0; y < image.height; ++y)
      for (int64_t x = 0; x < width; ++x) {
        const float* w = &across.weights[static_cast<size_t>(x * across.max_taps)];
        const uint8_t* in = src + y * image.width + across.first[static_cast<size_t>(x)];
        float value = 0.0f;
        for (int64_t k = 0; k < across.count[static_cast<size_t>(x)]; ++k) value += w[k] * static_cast<float>(in[k]);
        rows[static_cast<size_t>(y * width + x)] = value;
      }
    uint8_t* dst = out.plane(c);
    for (int64_t y = 0; y < height; ++y) {
      const float* w = &down.weights[static_cast<size_t>(y * down.max_taps)];
      const int64_t first = down.first[static_cast<size_t>(y)], count = down.count[static_cast<size_t>(y)];
      for (int64_t x = 0; x < width; ++x) {
        float value = 0.0f;
        for (int64_t k = 0; k < count; ++k) value += w[k] * rows[static_cast<size_t>((first + k) * width + x)];
        dst[y * width + x] = static_cast<uint8_t>(std::clamp(std::nearbyint(value), 0.0f, 255.0f));
      }
    }
  }
  return out;
}

// ---- transforms -----------------------------------------------------------------------------------

// Resize to a fixed size (antialiased bilinear).
struct Resize {
  int64_t height = 0;
  int64_t width = 0;
  void operator()(Image& image, Generator&) const { image = resize_bilinear(image, height, width); }
};

// The central (height, width) window (torchvision's rounding of the offsets).
struct CenterCrop {
  int64_t height = 0;
  int64_t width = 0;
  void operator()(Image& image, Generator&) const {
    const auto top = static_cast<int64_t>(std::nearbyint(static_cast<double>(image.height - height) / 2.0));
    const auto left = static_cast<int64_t>(std::nearbyint(static_cast<double>(image.width - width) / 2.0));
    image = crop(image, top, left, height, width);
  }
};

// Pads every side with `padding` pixels of `fill`, then takes a uniformly placed (height, width)
// window: torchvision's RandomCrop(size, padding) (CIFAR: 32 with padding 4).
struct RandomCrop {
  int64_t height = 32;
  int64_t width = 32;
  int64_t padding = 4;
  uint8_t fill = 0;
  void operator()(Image& image, Generator& gen) const {
    const int64_t padded_h = image.height + 2 * padding, padded_w = image.width + 2 * padding;
    CCT_CHECK_SHAPE(padded_h >= height && padded_w >= width, "RandomCrop: a ", height, "x", width,
                    " crop does not fit a ", image.height, "x", image.width, " image padded by ", padding);
    const int64_t top = padded_h == height ? 0 : gen.randint(padded_h - height + 1);
    const int64_t left = padded_w == width ? 0 : gen.randint(padded_w - width + 1);
    image = crop(image, top - padding, left - padding, height, width, fill);
  }
};

// Mirrors left-right with probability p.
struct RandomHorizontalFlip {
  double p = 0.5;
  void operator()(Image& image, Generator& gen) const {
    if (gen.uniform() < p) hflip(image);
  }
};

// torchvision's RandomResizedCrop: a window of random area (a `scale` fraction of the image) and
// aspect ratio (log-uniform in `ratio`), tried 10 times, else a central crop at the clamped ratio;
// then resized to (height, width) with antialiased bilinear interpolation.
struct RandomResizedCrop {
  int64_t height = 32;
  int64_t width = 32;
  double scale_min = 0.08;
  double scale_max = 1.0;
  double ratio_min = 3.0 / 4.0;
  double ratio_max = 4.0 / 3.0;

  void operator()(Image& image, Generator& gen) const {
    const double area = static_cast<double>(image.height * image.width);
    const double log_min = std::log(ratio_min), log_max = std::log(ratio_max);
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double target_area = area * gen.uniform(scale_min, scale_max);
      const double aspect = std::exp(gen.uniform(log_min, log_max));
      const auto w = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area * aspect)));
      const auto h = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area / aspect)));
      if (w > 0 && w <= image.width && h > 0 && h <= image.height) {
        const int64_t top = gen.randint(image.height - h + 1);
        const int64_t left = gen.randint(image.width - w + 1);
        image = resize_bilinear(crop(image, top, left, h, w), height, width);
        return;
      }
    }
    const double in_ratio = static_cast<double>(image.width) / static_cast<double>(image.height);
    int64_t w = image.width, h = image.height;
    if (in_ratio < ratio_min) h = static_cast<int64_t>(std::nearbyint(static_cast<double>(w) / ratio_min));
    else if (in_ratio > ratio_max) w = static_cast<int64_t>(std::nearbyint(static_cast<double>(h) * ratio_max));
    image = resize_bilinear(crop(image, (image.height - h) / 2, (image.width - w) / 2, h, w), height, width);
  }
};

}  // namespace cct::data
