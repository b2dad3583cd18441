// Data augmentation: the PIL-like image ops, AutoAugment (CIFAR-10 policy), RandAugment,
// RandomErasing, and batch-level Mixup / CutMix with soft (optionally smoothed) targets.
//
// The ops follow torchvision's tensor implementations on uint8 images (torchvision 0.14, the release
// matching PyTorch 1.13): same formulas, float32 arithmetic where torchvision uses it, truncation on
// the way back to uint8, nearest-neighbour sampling for the geometric ops, and the same magnitude
// tables, so AutoAugment/RandAugment samples have the distribution of torchvision's. The random
// choices are drawn from the cct::Generator passed in, in the order torchvision draws them.
// Mixup/CutMix follow timm's `Mixup` in batch mode: one λ per batch, the partner of sample b is sample
// B-1-b, CutMix λ corrected to the area actually pasted.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../core/generator.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "dataset.hpp"
#include "transforms.hpp"

namespace cct::data {

// ---- the single ops ---------------------------------------------------------------------------------

namespace augment {

constexpr double kPi = 3.14159265358979323846;

// Rounds a product to float right here. torchvision's arithmetic is unfused (each op rounds); under
// -march=native the compiler would otherwise fuse `a * b + c` into an FMA and move results across
// truncation and rounding boundaries. The volatile round trip is the portable fence against that.
inline float unfused(float x) {
  volatile float fenced = x;
  return fenced;
}

// torchvision's _get_inverse_affine_matrix: maps output coordinates to input coordinates, both
// relative to the image centre, for a rotation by `angle` degrees, translation, unit scale and shears
// (degrees) about `center` (also relative to the image centre).
inline std::array<double, 6> inverse_affine_matrix(double center_x, double center_y, double angle, double translate_x,
                                                   double translate_y, double shear_x, double shear_y) {
  const double rot = angle * kPi / 180.0, sx = shear_x * kPi / 180.0, sy = shear_y * kPi / 180.0;
  const double a = std::cos(rot - sy) / std::cos(sy);
  const double b = -std::cos(rot - sy) * std::tan(sx) / std::cos(sy) - std::sin(rot);
  const double c = std::sin(rot - sy) / std::cos(sy);
  const double d = -std::sin(rot - sy) * std::tan(sx) / std::cos(sy) + std::cos(rot);
  // det([[a, b], [c, d]]) = 1, so the inverse of the rotation-shear part is [[d, -b], [-c, a]].
  std::array<double, 6> m = {d, -b, 0.0, -c, a, 0.0};
  m[2] += m[0] * (-center_x - translate_x) + m[1] * (-center_y - translate_y);
  m[5] += m[3] * (-center_x - translate_x) + m[4] * (-center_y - translate_y);
  m[2] += center_x;
  m[5] += center_y;
  return m;
}

// Resamples with nearest neighbours through an inverse matrix in centred coordinates (as torchvision's
// affine grid + grid_sample(align_corners=False), in float32); pixels mapped from outside the image
// become `fill`.
inline void affine_nearest(Image& image, const std::array<double, 6>& inverse, uint8_t fill) {
  const int64_t h = image.height, w = image.width;
  const float half_w = 0.5f * static_cast<float>(w), half_h = 0.5f * static_cast<float>(h);
  // The grid is normalised to [-1, 1] by the input size, then unnormalised by grid_sample.
  const float t0 = static_cast<float>(inverse[0]) / half_w, t1 = static_cast<float>(inverse[1]) / half_w,
              t2 = static_cast<float>(inverse[2]) / half_w;
  const float t3 = static_cast<float>(inverse[3]) / half_h, t4 = static_cast<float>(inverse[4]) / half_h,
              t5 = static_cast<float>(inverse[5]) / half_h;
  std::vector<int64_t> source(static_cast<size_t>(h * w), -1);
  for (int64_t y = 0; y < h; ++y) {
    const float base_y = -half_h + 0.5f + static_cast<float>(y);
    for (int64_t x = 0; x < w; ++x) {
      const float base_x = -half_w + 0.5f + static_cast<float>(x);
      const float grid_x = unfused(base_x * t0) + unfused(base_y * t1) + t2;
      const float grid_y = unfused(base_x * t3) + unfused(base_y * t4) + t5;
      const float ix = std::nearbyint(unfused((grid_x + 1.0f) * half_w) - 0.5f);
      const float iy = std::nearbyint(unfused((grid_y + 1.0f) * half_h) - 0.5f);
      if (ix >= 0.0f && ix < static_cast<float>(w) && iy >= 0.0f && iy < static_cast<float>(h))
        source[static_cast<size_t>(y * w + x)] = static_cast<int64_t>(iy) * w + static_cast<int64_t>(ix);
    }
  }
  Image out(image.channels, h, w);
  for (int64_t c = 0; c < image.channels; ++c) {
    const uint8_t* src = image.plane(c);
    uint8_t* dst = out.plane(c);
    for (int64_t i = 0; i < h * w; ++i) {
      const int64_t s = source[static_cast<size_t>(i)];
      dst[i] = s < 0 ? fill : src[s];
    }
  }
  image = std::move(out);
}

// Shears along x by `magnitude` (x_in = x_out + magnitude·y_out about the top-left corner).
inline void shear_x(Image& image, double magnitude, uint8_t fill = 0) {
  const double degrees = std::atan(magnitude) * 180.0 / kPi;
  affine_nearest(image,
                 inverse_affine_matrix(-0.5 * static_cast<double>(image.width), -0.5 * static_cast<double>(image.height),
                                       0.0, 0.0, 0.0, degrees, 0.0),
                 fill);
}
inline void shear_y(Image& image, double magnitude, uint8_t fill = 0) {
  const double degrees = std::atan(magnitude) * 180.0 / kPi;
  affine_nearest(image,
                 inverse_affine_matrix(-0.5 * static_cast<double>(image.width), -0.5 * static_cast<double>(image.height),
                                       0.0, 0.0, 0.0, 0.0, degrees),
                 fill);
}
// Moves the content right (x) or down (y) by whole pixels.
inline void translate_x(Image& image, int64_t pixels, uint8_t fill = 0) {
  affine_nearest(image, inverse_affine_matrix(0.0, 0.0, 0.0, static_cast<double>(pixels), 0.0, 0.0, 0.0), fill);
}
inline void translate_y(Image& image, int64_t pixels, uint8_t fill = 0) {
  affine_nearest(image, inverse_affine_matrix(0.0, 0.0, 0.0, 0.0, static_cast<double>(pixels), 0.0, 0.0), fill);
}
// Rotates counter-clockwise by `degrees` about the image centre.
inline void rotate(Image& image, double degrees, uint8_t fill = 0) {
  affine_nearest(image, inverse_affine_matrix(0.0, 0.0, -degrees, 0.0, 0.0, 0.0, 0.0), fill);
}

namespace detail {
// torchvision's _blend on uint8: ratio·a + (1 - ratio)·b in float32, clamped, truncated.
inline uint8_t blend(float ratio, float other_ratio, float a, float b) {
  const float value = unfused(ratio * a) + unfused(other_ratio * b);
  return static_cast<uint8_t>(std::clamp(value, 0.0f, 255.0f));
}
// rgb_to_grayscale on uint8: 0.2989 R + 0.587 G + 0.114 B in float32, truncated.
inline Image grayscale(const Image& image) {
  if (image.channels != 3) return image;
  Image gray(1, image.height, image.width);
  const uint8_t *r = image.plane(0), *g = image.plane(1), *b = image.plane(2);
  for (int64_t i = 0; i < image.plane_size(); ++i)
    gray.pixels[static_cast<size_t>(i)] = static_cast<uint8_t>(unfused(0.2989f * static_cast<float>(r[i])) +
                                                                unfused(0.587f * static_cast<float>(g[i])) +
                                                                unfused(0.114f * static_cast<float>(b[i])));
  return gray;
}
}  // namespace detail

// factor 0 gives black, 1 the image.
inline void brightness(Image& image, double factor) {
  const auto ratio = static_cast<float>(factor), other = static_cast<float>(1.0 - factor);
  for (uint8_t& p : image.pixels) p = detail::blend(ratio, other, static_cast<float>(p), 0.0f);
}

// Saturation: factor 0 gives the grayscale image, 1 the image. Grayscale images are left unchanged.
inline void color(Image& image, double factor) {
  if (image.channels == 1) return;
  const Image gray = detail::grayscale(image);
  const auto ratio = static_cast<float>(factor), other = static_cast<float>(1.0 - factor);
  for (int64_t c = 0; c < image.channels; ++c) {
    uint8_t* p = image.plane(c);
    for (int64_t i = 0; i < image.plane_size(); ++i)
      p[i] = detail::blend(ratio, other, static_cast<float>(p[i]), static_cast<float>(gray.pixels[static_cast<size_t>(i)]));
  }
}

// factor 0 gives the mean gray level (of the grayscale image), 1 the image.
inline void contrast(Image& image, double factor) {
  const Image gray = detail::grayscale(image);
  uint64_t sum = 0;
  for (uint8_t p : gray.pixels) sum += p;
  const float mean = static_cast<float>(sum) / static_cast<float>(gray.pixels.size());
  const auto ratio = static_cast<float>(factor), other = static_cast<float>(1.0 - factor);
  for (uint8_t& p : image.pixels) p = detail::blend(ratio, other, static_cast<float>(p), mean);
}

// factor 0 gives a smoothed image (3×3 kernel [1 1 1; 1 5 1; 1 1 1]/13 inside, borders kept), 1 the
// image, above 1 sharpens. Images of 2 pixels or fewer in a dimension are left unchanged.
inline void sharpness(Image& image, double factor) {
  const int64_t h = image.height, w = image.width;
  if (h <= 2 || w <= 2) return;
  const auto ratio = static_cast<float>(factor), other = static_cast<float>(1.0 - factor);
  std::vector<uint8_t> blurred(static_cast<size_t>(h * w));
  for (int64_t c = 0; c < image.channels; ++c) {
    uint8_t* p = image.plane(c);
    std::copy(p, p + h * w, blurred.begin());
    for (int64_t y = 1; y < h - 1; ++y)
      for (int64_t x = 1; x < w - 1; ++x) {
        int64_t sum = 4 * p[y * w + x];
        for (int64_t dy = -1; dy <= 1; ++dy)
          for (int64_t dx = -1; dx <= 1; ++dx) sum += p[(y + dy) * w + x + dx];
        // round(sum / 13): sum/13 is never exactly half-way, so rounding half up is exact.
        blurred[static_cast<size_t>(y * w + x)] = static_cast<uint8_t>((2 * sum + 13) / 26);
      }
    for (int64_t i = 0; i < h * w; ++i)
      p[i] = detail::blend(ratio, other, static_cast<float>(p[i]), static_cast<float>(blurred[static_cast<size_t>(i)]));
  }
}

// Keeps the top `bits` bits of every value (0..8).
inline void posterize(Image& image, int bits) {
  CCT_CHECK(bits >= 0 && bits <= 8, "posterize: bits must be in [0, 8], got ", bits);
  const auto mask = static_cast<uint8_t>(0xFF00u >> bits);
  for (uint8_t& p : image.pixels) p = static_cast<uint8_t>(p & mask);
}

// Inverts every value at or above the threshold.
inline void solarize(Image& image, double threshold) {
  const auto t = static_cast<float>(threshold);
  for (uint8_t& p : image.pixels)
    if (static_cast<float>(p) >= t) p = static_cast<uint8_t>(255 - p);
}

inline void invert(Image& image) {
  for (uint8_t& p : image.pixels) p = static_cast<uint8_t>(255 - p);
}

// Stretches each channel to the full [0, 255] range (constant channels are left as they are).
inline void autocontrast(Image& image) {
  for (int64_t c = 0; c < image.channels; ++c) {
    uint8_t* p = image.plane(c);
    const auto [lo, hi] = std::minmax_element(p, p + image.plane_size());
    if (lo == p + image.plane_size() || *lo == *hi) continue;
    const auto minimum = static_cast<float>(*lo);
    // torchvision writes 255 / (max - min), which PyTorch evaluates as reciprocal(max - min) · 255.
    const float scale = (1.0f / (static_cast<float>(*hi) - minimum)) * 255.0f;
    for (int64_t i = 0; i < image.plane_size(); ++i)
      p[i] = static_cast<uint8_t>(std::clamp((static_cast<float>(p[i]) - minimum) * scale, 0.0f, 255.0f));
  }
}

// Histogram equalisation per channel (PIL's ImageOps.equalize, as torchvision computes it).
inline void equalize(Image& image) {
  for (int64_t c = 0; c < image.channels; ++c) {
    uint8_t* p = image.plane(c);
    std::array<int64_t, 256> histogram{};
    for (int64_t i = 0; i < image.plane_size(); ++i) ++histogram[p[i]];
    // step = (count of all values but the last non-empty bin) / 255, floored.
    int64_t last_nonzero = 255;
    while (last_nonzero > 0 && histogram[static_cast<size_t>(last_nonzero)] == 0) --last_nonzero;
    int64_t total = 0;
    for (int64_t v = 0; v < last_nonzero; ++v) total += histogram[static_cast<size_t>(v)];
    const int64_t step = total / 255;
    if (step == 0) continue;
    std::array<uint8_t, 256> lut{};
    int64_t cumulative = 0;
    for (int64_t v = 0; v < 256; ++v) {
      // lut[v] uses the cumulative count *before* v (torchvision pads the cumsum by one on the left).
      lut[static_cast<size_t>(v)] = static_cast<uint8_t>(std::min<int64_t>(255, (cumulative + step / 2) / step));
      cumulative += histogram[static_cast<size_t>(v)];
    }
    for (int64_t i = 0; i < image.plane_size(); ++i) p[i] = lut[p[i]];
  }
}

}  // namespace augment

// ---- the op vocabulary of AutoAugment / RandAugment ---------------------------------------------------

enum class AugmentOp {
  Identity,
  ShearX,
  ShearY,
  TranslateX,
  TranslateY,
  Rotate,
  Brightness,
  Color,
  Contrast,
  Sharpness,
  Posterize,
  Solarize,
  AutoContrast,
  Equalize,
  Invert
};

inline const char* augment_op_name(AugmentOp op) {
  switch (op) {
    case AugmentOp::Identity: return "Identity";
    case AugmentOp::ShearX: return "ShearX";
    case AugmentOp::ShearY: return "ShearY";
    case AugmentOp::TranslateX: return "TranslateX";
    case AugmentOp::TranslateY: return "TranslateY";
    case AugmentOp::Rotate: return "Rotate";
    case AugmentOp::Brightness: return "Brightness";
    case AugmentOp::Color: return "Color";
    case AugmentOp::Contrast: return "Contrast";
    case AugmentOp::Sharpness: return "Sharpness";
    case AugmentOp::Posterize: return "Posterize";
    case AugmentOp::Solarize: return "Solarize";
    case AugmentOp::AutoContrast: return "AutoContrast";
    case AugmentOp::Equalize: return "Equalize";
    case AugmentOp::Invert: return "Invert";
  }
  return "?";
}

// torchvision's _apply_op: `magnitude` is the signed value from the magnitude table (enhance ops use
// 1 + magnitude as their factor; translations and posterize truncate it to an integer).
inline void apply_augment_op(Image& image, AugmentOp op, double magnitude, uint8_t fill = 0) {
  switch (op) {
    case AugmentOp::Identity: return;
    case AugmentOp::ShearX: return augment::shear_x(image, magnitude, fill);
    case AugmentOp::ShearY: return augment::shear_y(image, magnitude, fill);
    case AugmentOp::TranslateX: return augment::translate_x(image, static_cast<int64_t>(magnitude), fill);
    case AugmentOp::TranslateY: return augment::translate_y(image, static_cast<int64_t>(magnitude), fill);
    case AugmentOp::Rotate: return augment::rotate(image, magnitude, fill);
    case AugmentOp::Brightness: return augment::brightness(image, 1.0 + magnitude);
    case AugmentOp::Color: return augment::color(image, 1.0 + magnitude);
    case AugmentOp::Contrast: return augment::contrast(image, 1.0 + magnitude);
    case AugmentOp::Sharpness: return augment::sharpness(image, 1.0 + magnitude);
    case AugmentOp::Posterize: return augment::posterize(image, static_cast<int>(magnitude));
    case AugmentOp::Solarize: return augment::solarize(image, magnitude);
    case AugmentOp::AutoContrast: return augment::autocontrast(image);
    case AugmentOp::Equalize: return augment::equalize(image);
    case AugmentOp::Invert: return augment::invert(image);
  }
}

namespace detail {
// torch.linspace(start, end, steps)[index] in float32, bit for bit: torch fills the first half from
// the start and the second from the end, each with one fused multiply-add.
inline float torch_linspace_at(double start, double end, int64_t steps, int64_t index) {
  const auto s = static_cast<float>(start), e = static_cast<float>(end);
  if (steps == 1) return s;
  const float step = (e - s) / static_cast<float>(steps - 1);
  return index < steps / 2 ? std::fma(step, static_cast<float>(index), s)
                           : std::fma(-step, static_cast<float>(steps - index - 1), e);
}

// The magnitude of `op` at bin `bin` of `num_bins` for a width × height image, unsigned, and whether
// the op takes a random sign: torchvision's _augmentation_space (shared by AutoAugment, 10 bins, and
// RandAugment, 31 bins).
inline std::pair<double, bool> augment_magnitude(AugmentOp op, int64_t bin, int64_t num_bins, int64_t width, int64_t height) {
  switch (op) {
    case AugmentOp::ShearX:
    case AugmentOp::ShearY: return {torch_linspace_at(0.0, 0.3, num_bins, bin), true};
    case AugmentOp::TranslateX:
      return {torch_linspace_at(0.0, 150.0 / 331.0 * static_cast<double>(width), num_bins, bin), true};
    case AugmentOp::TranslateY:
      return {torch_linspace_at(0.0, 150.0 / 331.0 * static_cast<double>(height), num_bins, bin), true};
    case AugmentOp::Rotate: return {torch_linspace_at(0.0, 30.0, num_bins, bin), true};
    case AugmentOp::Brightness:
    case AugmentOp::Color:
    case AugmentOp::Contrast:
    case AugmentOp::Sharpness: return {torch_linspace_at(0.0, 0.9, num_bins, bin), true};
    case AugmentOp::Posterize: {
      const float scaled = static_cast<float>(bin) / static_cast<float>(static_cast<double>(num_bins - 1) / 4.0);
      return {8.0 - std::nearbyint(scaled), false};
    }
    case AugmentOp::Solarize: return {torch_linspace_at(255.0, 0.0, num_bins, bin), false};
    default: return {0.0, false};
  }
}
}  // namespace detail

// AutoAugment with the CIFAR-10 policy (Cubuk et al. 2019) as torchvision defines it: pick one of 25
// sub-policies uniformly; apply each of its two ops with its probability, at its magnitude bin (of 10),
// with a random sign for signed ops. Geometric ops fill with `fill` (torchvision's default is 0;
// the Compact Transformers authors' own copy of the policy used 128).
struct AutoAugment {
  struct Step {
    AugmentOp op;
    double probability;
    int magnitude_bin;  // -1: the op takes no magnitude
  };
  using SubPolicy = std::array<Step, 2>;

  uint8_t fill = 0;

  static const std::vector<SubPolicy>& cifar10_policy() {
    using O = AugmentOp;
    static const std::vector<SubPolicy> policy = {
        {{{O::Invert, 0.1, -1}, {O::Contrast, 0.2, 6}}},
        {{{O::Rotate, 0.7, 2}, {O::TranslateX, 0.3, 9}}},
        {{{O::Sharpness, 0.8, 1}, {O::Sharpness, 0.9, 3}}},
        {{{O::ShearY, 0.5, 8}, {O::TranslateY, 0.7, 9}}},
        {{{O::AutoContrast, 0.5, -1}, {O::Equalize, 0.9, -1}}},
        {{{O::ShearY, 0.2, 7}, {O::Posterize, 0.3, 7}}},
        {{{O::Color, 0.4, 3}, {O::Brightness, 0.6, 7}}},
        {{{O::Sharpness, 0.3, 9}, {O::Brightness, 0.7, 9}}},
        {{{O::Equalize, 0.6, -1}, {O::Equalize, 0.5, -1}}},
        {{{O::Contrast, 0.6, 7}, {O::Sharpness, 0.6, 5}}},
        {{{O::Color, 0.7, 7}, {O::TranslateX, 0.5, 8}}},
        {{{O::Equalize, 0.3, -1}, {O::AutoContrast, 0.4, -1}}},
        {{{O::TranslateY, 0.4, 3}, {O::Sharpness, 0.2, 6}}},
        {{{O::Brightness, 0.9, 6}, {O::Color, 0.2, 8}}},
        {{{O::Solarize, 0.5, 2}, {O::Invert, 0.0, -1}}},
        {{{O::Equalize, 0.2, -1}, {O::AutoContrast, 0.6, -1}}},
        {{{O::Equalize, 0.2, -1}, {O::Equalize, 0.6, -1}}},
        {{{O::Color, 0.9, 9}, {O::Equalize, 0.6, -1}}},
        {{{O::AutoContrast, 0.8, -1}, {O::Solarize, 0.2, 8}}},
        {{{O::Brightness, 0.1, 3}, {O::Color, 0.7, 0}}},
        {{{O::Solarize, 0.4, 5}, {O::AutoContrast, 0.9, -1}}},
        {{{O::TranslateY, 0.9, 9}, {O::TranslateY, 0.7, 9}}},
        {{{O::AutoContrast, 0.9, -1}, {O::Solarize, 0.8, 3}}},
        {{{O::Equalize, 0.8, -1}, {O::Invert, 0.1, -1}}},
        {{{O::TranslateY, 0.7, 9}, {O::AutoContrast, 0.9, -1}}},
    };
    return policy;
  }

  // Applies sub-policy `index` with the given uniform draws and sign bits (the deterministic core).
  void apply_sub_policy(Image& image, size_t index, const std::array<double, 2>& draws,
                        const std::array<int64_t, 2>& signs) const {
    CCT_CHECK(index < cifar10_policy().size(), "AutoAugment: sub-policy ", index, " of ", cifar10_policy().size());
    const SubPolicy& sub = cifar10_policy()[index];
    for (size_t i = 0; i < 2; ++i) {
      const Step& step = sub[i];
      if (!(draws[i] <= step.probability)) continue;
      double magnitude = 0.0;
      if (step.magnitude_bin >= 0) {
        const auto [value, is_signed] = detail::augment_magnitude(step.op, step.magnitude_bin, 10, image.width, image.height);
        magnitude = is_signed && signs[i] == 0 ? -value : value;
      }
      apply_augment_op(image, step.op, magnitude, fill);
    }
  }

  void operator()(Image& image, Generator& gen) const {
    // torchvision's get_params order: policy id, two probabilities, two signs.
    const auto index = static_cast<size_t>(gen.randint(static_cast<int64_t>(cifar10_policy().size())));
    const std::array<double, 2> draws = {gen.uniform(), gen.uniform()};
    const std::array<int64_t, 2> signs = {gen.randint(2), gen.randint(2)};
    apply_sub_policy(image, index, draws, signs);
  }
};

// RandAugment (Cubuk et al. 2020) as torchvision defines it: `num_ops` times, pick one of 14 ops
// uniformly and apply it at magnitude bin `magnitude` of `num_magnitude_bins`, with a random sign for
// signed ops. The recipe uses num_ops 2, magnitude 9.
struct RandAugment {
  int64_t num_ops = 2;
  int64_t magnitude = 9;
  int64_t num_magnitude_bins = 31;
  uint8_t fill = 0;

  static const std::array<AugmentOp, 14>& ops() {
    using O = AugmentOp;
    static const std::array<AugmentOp, 14> list = {O::Identity,   O::ShearX,     O::ShearY,   O::TranslateX, O::TranslateY,
                                                   O::Rotate,     O::Brightness, O::Color,    O::Contrast,   O::Sharpness,
                                                   O::Posterize,  O::Solarize,   O::AutoContrast, O::Equalize};
    return list;
  }

  void operator()(Image& image, Generator& gen) const {
    CCT_CHECK(magnitude >= 0 && magnitude < num_magnitude_bins, "RandAugment: magnitude ", magnitude,
              " is outside [0, ", num_magnitude_bins, ")");
    for (int64_t i = 0; i < num_ops; ++i) {
      const AugmentOp op = ops()[static_cast<size_t>(gen.randint(static_cast<int64_t>(ops().size())))];
      const auto [value, is_signed] = detail::augment_magnitude(op, magnitude, num_magnitude_bins, image.width, image.height);
      // As torchvision, the sign is drawn only for signed ops.
      const double signed_value = is_signed && gen.randint(2) == 1 ? -value : value;
      apply_augment_op(image, op, signed_value, fill);
    }
  }
};

// ---- RandomErasing (on the normalised float image) ----------------------------------------------------

// torchvision's RandomErasing: with probability p, erase a rectangle of random area (a `scale` fraction)
// and aspect ratio (log-uniform in `ratio`), tried 10 times, with `value` (0 = the dataset mean after
// normalisation) or, when random_values, with standard-normal noise per pixel.
struct RandomErasing {
  double p = 0.5;
  double scale_min = 0.02;
  double scale_max = 0.33;
  double ratio_min = 0.3;
  double ratio_max = 3.3;
  float value = 0.0f;
  bool random_values = false;

  void operator()(const FloatImageView& image, Generator& gen) const {
    if (!(gen.uniform() < p)) return;
    const int64_t height = image.height, width = image.width;
    const double area = static_cast<double>(height * width);
    const double log_min = std::log(ratio_min), log_max = std::log(ratio_max);
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double erase_area = area * gen.uniform(scale_min, scale_max);
      const double aspect = std::exp(gen.uniform(log_min, log_max));
      const auto h = static_cast<int64_t>(std::nearbyint(std::sqrt(erase_area * aspect)));
      const auto w = static_cast<int64_t>(std::nearbyint(std::sqrt(erase_area / aspect)));
      if (!(h < height && w < width)) continue;
      std::vector<float> noise;
      if (random_values) {
        noise.resize(static_cast<size_t>(image.channels * h * w));
        for (float& v : noise) v = static_cast<float>(gen.normal());
      }
      const int64_t top = gen.randint(height - h + 1), left = gen.randint(width - w + 1);
      for (int64_t c = 0; c < image.channels; ++c)
        for (int64_t y = 0; y < h; ++y)
          for (int64_t x = 0; x < w; ++x)
            image.data[(c * height + top + y) * width + left + x] =
                random_values ? noise[static_cast<size_t>((c * h + y) * w + x)] : value;
      return;
    }
  }
};

// ---- Gamma / Beta sampling ------------------------------------------------------------------------------

// Gamma(shape, 1) by Marsaglia & Tsang (2000); shapes below 1 use Gamma(shape + 1)·U^(1/shape).
inline double sample_gamma(double shape, Generator& gen) {
  CCT_CHECK(shape > 0.0, "sample_gamma: shape must be positive, got ", shape);
  if (shape < 1.0) {
    const double boost = std::pow(1.0 - gen.uniform(), 1.0 / shape);  // U in (0, 1]
    return sample_gamma(shape + 1.0, gen) * boost;
  }
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    const double x = gen.normal();
    double v = 1.0 + c * x;
    if (v <= 0.0) continue;
    v = v * v * v;
    const double u = 1.0 - gen.uniform();  // in (0, 1], so the log is finite
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}

// Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
inline double sample_beta(double a, double b, Generator& gen) {
  const double x = sample_gamma(a, gen), y = sample_gamma(b, gen);
  // Both can underflow to 0 for tiny shapes; the limit is then a coin flip between 0 and 1.
  if (x + y <= 0.0) return gen.uniform() < a / (a + b) ? 1.0 : 0.0;
  return x / (x + y);
}

// ---- Mixup / CutMix ----------------------------------------------------------------------------------------

struct MixupOptions {
  double mixup_alpha = 0.8;      // Beta(α, α) for Mixup λ; 0 disables Mixup
  double cutmix_alpha = 1.0;     // Beta(α, α) for CutMix λ; 0 disables CutMix
  double prob = 1.0;             // probability that a batch is mixed at all
  double switch_prob = 0.5;      // with both enabled: probability of CutMix rather than Mixup
  double label_smoothing = 0.1;  // applied to the one-hot targets before mixing
  bool correct_lam = true;       // CutMix: λ = 1 - (clipped box area) / (image area)
  int64_t num_classes = 0;       // 0: the DataLoader fills in the dataset's class count
};

// What one batch got: λ (the weight of each sample's own label), and for CutMix the pasted box
// [top, bottom) × [left, right).
struct MixupDecision {
  double lam = 1.0;
  bool cutmix = false;
  int64_t top = 0, bottom = 0, left = 0, right = 0;
};

// timm's Mixup in batch mode.
class Mixup {
 public:
  explicit Mixup(MixupOptions options) : options_(options) {
    CCT_CHECK(options_.mixup_alpha >= 0.0 && options_.cutmix_alpha >= 0.0, "Mixup: alphas must be non-negative");
    CCT_CHECK(options_.mixup_alpha > 0.0 || options_.cutmix_alpha > 0.0, "Mixup: enable Mixup or CutMix (an alpha > 0)");
    CCT_CHECK(options_.label_smoothing >= 0.0 && options_.label_smoothing < 1.0, "Mixup: label_smoothing must be in [0, 1)");
    CCT_CHECK(options_.num_classes > 0, "Mixup: num_classes must be positive");
  }
  const MixupOptions& options() const { return options_; }

  // Draws the batch's decision in timm's order: apply?, CutMix?, λ ~ Beta, then the box centre.
  MixupDecision sample(int64_t height, int64_t width, Generator& gen) const {
    MixupDecision decision;
    if (!(gen.uniform() < options_.prob)) return decision;
    double lam = 1.0;
    if (options_.mixup_alpha > 0.0 && options_.cutmix_alpha > 0.0) {
      decision.cutmix = gen.uniform() < options_.switch_prob;
      const double alpha = decision.cutmix ? options_.cutmix_alpha : options_.mixup_alpha;
      lam = sample_beta(alpha, alpha, gen);
    } else if (options_.mixup_alpha > 0.0) {
      lam = sample_beta(options_.mixup_alpha, options_.mixup_alpha, gen);
    } else {
      decision.cutmix = true;
      lam = sample_beta(options_.cutmix_alpha, options_.cutmix_alpha, gen);
    }
    decision.lam = lam;
    if (lam == 1.0) {
      decision.cutmix = false;
      return decision;
    }
    if (decision.cutmix) {
      // timm's rand_bbox: a box of sides ⌊size·√(1-λ)⌋ centred uniformly, clipped to the image.
      const double ratio = std::sqrt(1.0 - lam);
      const auto cut_h = static_cast<int64_t>(static_cast<double>(height) * ratio);
      const auto cut_w = static_cast<int64_t>(static_cast<double>(width) * ratio);
      const int64_t cy = gen.randint(height), cx = gen.randint(width);
      decision.top = std::clamp<int64_t>(cy - cut_h / 2, 0, height);
      decision.bottom = std::clamp<int64_t>(cy + cut_h / 2, 0, height);
      decision.left = std::clamp<int64_t>(cx - cut_w / 2, 0, width);
      decision.right = std::clamp<int64_t>(cx + cut_w / 2, 0, width);
      if (options_.correct_lam) {
        const double box = static_cast<double>((decision.bottom - decision.top) * (decision.right - decision.left));
        decision.lam = 1.0 - box / static_cast<double>(height * width);
      }
    }
    return decision;
  }

  // Mixes images (B, C, H, W) in place according to `decision`; sample b is mixed with sample B-1-b.
  static void mix_images(const Tensor<float>& images, const MixupDecision& decision) {
    CCT_CHECK_SHAPE(images.dim() == 4, "Mixup: images must be (B, C, H, W), got ", shape_str(images.shape()));
    if (decision.lam == 1.0 && !decision.cutmix) return;
    const int64_t batch = images.size(0), channels = images.size(1), height = images.size(2), width = images.size(3);
    const int64_t numel = channels * height * width;
    // Partners read the original values: keep a copy.
    const Tensor<float> original = images.clone();
    for (int64_t b = 0; b < batch; ++b) {
      float* out = images.data() + b * numel;
      const float* partner = original.data() + (batch - 1 - b) * numel;
      if (decision.cutmix) {
        for (int64_t c = 0; c < channels; ++c)
          for (int64_t y = decision.top; y < decision.bottom; ++y)
            for (int64_t x = decision.left; x < decision.right; ++x)
              out[(c * height + y) * width + x] = partner[(c * height + y) * width + x];
      } else {
        const auto keep = static_cast<float>(decision.lam), take = static_cast<float>(1.0 - decision.lam);
        for (int64_t i = 0; i < numel; ++i) out[i] = out[i] * keep + partner[i] * take;
      }
    }
  }

  // Soft targets (B, num_classes): λ·smooth(one_hot(y_b)) + (1-λ)·smooth(one_hot(y_{B-1-b})), where
  // smoothing puts smoothing/K on every class and 1 - smoothing + smoothing/K on the true one.
  static Tensor<float> mix_targets(const Tensor<int64_t>& labels, int64_t num_classes, double lam, double smoothing) {
    CCT_CHECK_SHAPE(labels.dim() == 1, "Mixup: labels must be (B,), got ", shape_str(labels.shape()));
    const int64_t batch = labels.size(0);
    const double off = smoothing / static_cast<double>(num_classes), on = 1.0 - smoothing + off;
    Tensor<float> targets = Tensor<float>::empty({batch, num_classes});
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t own = labels.data()[b], partner = labels.data()[batch - 1 - b];
      CCT_CHECK(own >= 0 && own < num_classes, "Mixup: label ", own, " is outside [0, ", num_classes, ")");
      float* row = targets.data() + b * num_classes;
      for (int64_t k = 0; k < num_classes; ++k)
        row[k] = static_cast<float>(lam * (k == own ? on : off) + (1.0 - lam) * (k == partner ? on : off));
    }
    return targets;
  }

  // Draws a decision, mixes `images` in place and returns the soft targets.
  Tensor<float> operator()(const Tensor<float>& images, const Tensor<int64_t>& labels, Generator& gen,
                           MixupDecision* decision_out = nullptr) const {
    CCT_CHECK_SHAPE(images.dim() == 4 && labels.dim() == 1 && labels.size(0) == images.size(0),
                    "Mixup: images ", shape_str(images.shape()), " and labels ", shape_str(labels.shape()),
                    " do not form a batch");
    const MixupDecision decision = sample(images.size(2), images.size(3), gen);
    mix_images(images, decision);
    if (decision_out) *decision_out = decision;
    return mix_targets(labels, options_.num_classes, decision.lam, options_.label_smoothing);
  }

 private:
  MixupOptions options_;
};

}  // namespace cct::data
