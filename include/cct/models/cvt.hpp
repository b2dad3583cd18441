// CVT (Compact Vision Transformer: ViT's patch embedding with CCT's SeqPool instead of a class token):
// the config of a cvt_L_P_R variant. The model is a CompactTransformer built from it.
#pragma once

#include "model_config.hpp"

namespace cct::models {

// cvt_L_P_R: L encoder layers, patch size P, image size R.
inline ModelConfig cvt_config(int64_t num_layers, int64_t patch_size, int64_t image_size = 32, int64_t num_classes = 10) {
  ModelConfig c = sized_config(Family::kCVT, num_layers, image_size, num_classes);
  c.name = detail::concat("cvt_", num_layers, "_", patch_size, "_", image_size);
  c.patch_size = patch_size;
  c.num_conv_layers = 1;
  return c;
}

}  // namespace cct::models
