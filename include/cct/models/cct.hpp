// CCT (Compact Convolutional Transformer: a conv tokenizer of conv → ReLU → max-pool blocks, and SeqPool):
// the config of a cct_L_KxC_R variant. The model is a CompactTransformer built from it (a variant is data,
// not a type).
#pragma once

#include "model_config.hpp"

namespace cct::models {

// cct_L_KxC_R: L encoder layers, conv kernel K, C conv blocks, image size R.
inline ModelConfig cct_config(int64_t num_layers, int64_t kernel_size, int64_t num_conv_layers, int64_t image_size = 32,
                              int64_t num_classes = 10) {
  ModelConfig c = sized_config(Family::kCCT, num_layers, image_size, num_classes);
  c.name = detail::concat("cct_", num_layers, "_", kernel_size, "x", num_conv_layers, "_", image_size);
  c.kernel_size = kernel_size;
  c.num_conv_layers = num_conv_layers;
  return c;
}

}  // namespace cct::models
