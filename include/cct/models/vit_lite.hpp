// ViT-Lite (a small Vision Transformer: patch embedding, a learned class token, no SeqPool): the config
// of a vit_L_P_R variant. The model is a CompactTransformer built from it.
#pragma once

#include "model_config.hpp"

namespace cct::models {

// vit_L_P_R: L encoder layers, patch size P, image size R (older papers: vit_lite_L_P_R).
inline ModelConfig vit_lite_config(int64_t num_layers, int64_t patch_size, int64_t image_size = 32,
                                   int64_t num_classes = 10) {
  ModelConfig c = sized_config(Family::kViTLite, num_layers, image_size, num_classes);
  c.name = detail::concat("vit_", num_layers, "_", patch_size, "_", image_size);
  c.patch_size = patch_size;
  c.num_conv_layers = 1;
  return c;
}

}  // namespace cct::models
