// The picture behind `predict --attention`: each image beside a copy tinted by its SeqPool weights,
// i.e. how much each token (a patch of the image) contributed to the pooled representation.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <cct/data/image_io.hpp>
#include <cct/data/transforms.hpp>

namespace image_trainer {
using namespace cct;

// A blue → red colour ramp for a weight in [0, 1].
inline void heat_colour(float t, float rgb[3]) {
  t = std::clamp(t, 0.0f, 1.0f);
  rgb[0] = std::clamp(1.5f - std::abs(4.0f * t - 3.0f), 0.0f, 1.0f);
  rgb[1] = std::clamp(1.5f - std::abs(4.0f * t - 2.0f), 0.0f, 1.0f);
  rgb[2] = std::clamp(1.5f - std::abs(4.0f * t - 1.0f), 0.0f, 1.0f);
}

// weights: (B, grid·grid) SeqPool weights; writes one grid PNG with [image | overlay] per input.
inline void write_attention_overlay(const std::string& path, const std::vector<data::Image>& images,
                                    const Tensor<float>& weights, int64_t grid, const std::vector<std::string>& class_names,
                                    const Tensor<float>& probabilities) {
  CCT_CHECK(weights.dim() == 2 && weights.size(1) == grid * grid, "attention overlay: expected ", grid * grid,
            " token weights per image, got shape ", shape_str(weights.shape()));
  const int64_t side = 128;  // display size of each panel
  std::vector<data::Image> panels;
  std::vector<std::string> captions;
  for (size_t b = 0; b < images.size(); ++b) {
    data::Image shown = data::resize_bilinear(images[b], side, side);
    if (shown.channels == 1) {
      data::Image rgb(3, side, side);
      for (int64_t c = 0; c < 3; ++c) std::copy(shown.pixels.begin(), shown.pixels.end(), rgb.plane(c));
      shown = rgb;
    }
    const float* w = weights.data() + static_cast<int64_t>(b) * grid * grid;
    const float max_weight = std::max(1e-12f, *std::max_element(w, w + grid * grid));
    data::Image overlay = shown;
    for (int64_t y = 0; y < side; ++y)
      for (int64_t x = 0; x < side; ++x) {
        // Bilinear lookup in the token grid (token centres at (i + 0.5) · side / grid).
        const float gy = std::clamp((y + 0.5f) * grid / side - 0.5f, 0.0f, static_cast<float>(grid - 1));
        const float gx = std::clamp((x + 0.5f) * grid / side - 0.5f, 0.0f, static_cast<float>(grid - 1));
        const int64_t y0 = static_cast<int64_t>(gy), x0 = static_cast<int64_t>(gx);
        const int64_t y1 = std::min(y0 + 1, grid - 1), x1 = std::min(x0 + 1, grid - 1);
        const float fy = gy - y0, fx = gx - x0;
        const float value = (1 - fy) * ((1 - fx) * w[y0 * grid + x0] + fx * w[y0 * grid + x1]) +
                            fy * ((1 - fx) * w[y1 * grid + x0] + fx * w[y1 * grid + x1]);
        float rgb[3];
        heat_colour(value / max_weight, rgb);
        for (int64_t c = 0; c < 3; ++c) {
          uint8_t& pixel = overlay.plane(c)[y * side + x];
          pixel = static_cast<uint8_t>(std::lround(0.45f * pixel + 0.55f * 255.0f * rgb[c]));
        }
      }
    const int64_t classes = probabilities.size(1);
    const float* p = probabilities.data() + static_cast<int64_t>(b) * classes;
    const int64_t best = std::max_element(p, p + classes) - p;
    panels.push_back(shown);
    captions.push_back(class_names[static_cast<size_t>(best)]);
    panels.push_back(overlay);
    char probability[32];  // the caption font has no '%' sign
    std::snprintf(probability, sizeof probability, "p=%.2f", static_cast<double>(p[best]));
    captions.push_back(probability);
  }
  data::GridOptions options;
  options.columns = 2;
  data::write_image_grid(path, panels, captions, options);
}

}  // namespace image_trainer
