// ConvTokenizer: turns images into a sequence of tokens.
//   CCT:          C blocks of Conv2d(k, s, p, no bias) → ReLU → MaxPool2d(3, 2, 1)
//   CVT/ViT-Lite: one Conv2d(P×P, stride P, bias) and nothing after (patch embedding)
// then (B, C, H, W) → (B, H·W, C) with token t = h·W + w. Parameter names follow the reference:
// conv_layers.{i}.0.weight (the conv is child 0 of each block).
#pragma once

#include <memory>

#include "../ops/conv_pool.hpp"
#include "../ops/shape.hpp"
#include "conv.hpp"

namespace cct::nn {

struct TokenizerConfig {
  int64_t in_channels = 3;
  int64_t embedding_dim = 128;       // channels of the last conv = token size D
  int64_t num_conv_layers = 1;
  int64_t kernel_size = 3, stride = 1, padding = 1;
  int64_t in_planes = 64;            // channels between conv blocks
  bool activation = true;            // ReLU after each conv
  bool max_pool = true;              // MaxPool2d(pooling_kernel, pooling_stride, pooling_padding)
  int64_t pooling_kernel = 3, pooling_stride = 2, pooling_padding = 1;
  bool conv_bias = false;
};

template <typename T = float>
class ConvTokenizer : public UnaryModule<T> {
 public:
  explicit ConvTokenizer(const TokenizerConfig& config, Generator& gen = default_generator()) : config_(config) {
    CCT_CHECK(config.num_conv_layers >= 1, "ConvTokenizer: needs at least one conv layer, got ", config.num_conv_layers);
    conv_layers = this->register_module("conv_layers", std::make_shared<ModuleList<T>>());
    for (int64_t i = 0; i < config.num_conv_layers; ++i) {
      const int64_t in = i == 0 ? config.in_channels : config.in_planes;
      const int64_t out = i + 1 == config.num_conv_layers ? config.embedding_dim : config.in_planes;
      auto block = std::make_shared<Sequential<T>>();
      block->push_back(std::make_shared<Conv2d<T>>(
          Conv2dConfig{in, out, config.kernel_size, config.stride, config.padding, config.conv_bias}, gen));
      if (config.activation) block->push_back(std::make_shared<ReLU<T>>());
      if (config.max_pool)
        block->push_back(
            std::make_shared<MaxPool2d<T>>(config.pooling_kernel, config.pooling_stride, config.pooling_padding));
      conv_layers->push_back(block);
    }
  }

  // (B, C, H, W) → (B, H'·W', D)
  Tensor<T> forward(const Tensor<T>& images) override {
    CCT_CHECK_SHAPE(images.dim() == 4 && images.size(1) == config_.in_channels, "ConvTokenizer: expected images (B, ",
                    config_.in_channels, ", H, W), got ", shape_str(images.shape()));
    Tensor<T> x = images;
    for (int64_t i = 0; i < conv_layers->size(); ++i) {
      auto block = conv_layers->template at<Sequential<T>>(i);
      if (config_.activation && config_.max_pool) {
        // The block is conv → ReLU → max-pool, run as conv → max-pool → ReLU: max commutes with the
        // monotone ReLU, so values and gradients are the same (for inputs without NaN), and the ReLU
        // and its backward touch a quarter of the elements. The conv and the pool run as one op
        // (ops/conv_pool.hpp), so the full-size convolution output never goes through memory.
        const auto conv = std::dynamic_pointer_cast<Conv2d<T>>((*block)[0]);
        CCT_CHECK(conv != nullptr, "ConvTokenizer: conv_layers.", i, ".0 is no longer a Conv2d");
        const Conv2dConfig& c = conv->config();
        x = conv2d_max_pool2d(x, conv->weight, conv->bias, Conv2dParams{c.stride, c.stride, c.padding, c.padding},
                              config_.pooling_kernel, config_.pooling_stride, config_.pooling_padding);
        x = (*block)[1]->forward(x);  // ReLU
      } else {
        x = block->forward(x);
      }
    }
    const int64_t B = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
    return transpose(reshape(x, {B, C, HW}), 1, 2);
  }

  // Tokens produced for an image of height × width (the reference computes it with a dummy forward).
  int64_t sequence_length(int64_t height, int64_t width) const {
    for (int64_t i = 0; i < config_.num_conv_layers; ++i) {
      height = conv_size(height), width = conv_size(width);
      CCT_CHECK(height > 0 && width > 0, "ConvTokenizer: the image is too small for ", config_.num_conv_layers,
                " conv layers of kernel ", config_.kernel_size);
    }
    return height * width;
  }
  // Side length of the token grid for a square image (tokens form a grid of grid × grid).
  int64_t grid_size(int64_t image_size) const {
    int64_t size = image_size;
    for (int64_t i = 0; i < config_.num_conv_layers; ++i) size = conv_size(size);
    return size;
  }

  const TokenizerConfig& config() const { return config_; }
  std::string type_name() const override { return "ConvTokenizer"; }
  // The conv blocks check the images themselves (so a summary error names the conv that refused them).
  LayerDescription describe(const Shape& input, Describer<T>& children) const override {
    const std::optional<Shape> maps = children.child("conv_layers", input);
    if (!maps || maps->size() != 4) return {};
    return {Shape{(*maps)[0], (*maps)[2] * (*maps)[3], (*maps)[1]}};  // (B, H·W, C)
  }

  std::shared_ptr<ModuleList<T>> conv_layers;

 private:
  int64_t conv_size(int64_t size) const {
    size = (size + 2 * config_.padding - config_.kernel_size) / config_.stride + 1;
    if (config_.max_pool) size = (size + 2 * config_.pooling_padding - config_.pooling_kernel) / config_.pooling_stride + 1;
    return size;
  }
  TokenizerConfig config_;
};

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_NN_TOKENIZER_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class ConvTokenizer<T>;
CCT_FOR_FLOATING_TYPES(CCT_NN_TOKENIZER_TEMPLATES)
#undef CCT_NN_TOKENIZER_TEMPLATES
#endif

}  // namespace cct::nn
