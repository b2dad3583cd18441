// Conv2d and MaxPool2d modules over (B, C, H, W), as torch.nn.Conv2d / torch.nn.MaxPool2d.
#pragma once

#include <cmath>

#include "../ops/conv.hpp"
#include "../ops/pool.hpp"
#include "containers.hpp"
#include "init.hpp"

namespace cct::nn {

struct Conv2dConfig {
  int64_t in_channels = 3, out_channels = 64;
  int64_t kernel_size = 3, stride = 1, padding = 0;
  bool bias = false;
};

template <typename T = float>
class Conv2d : public UnaryModule<T> {
 public:
  // Weight: Kaiming normal, std = sqrt(2 / fan_in) (what the reference tokenizer applies); bias:
  // PyTorch's default uniform(±1/sqrt(fan_in)).
  explicit Conv2d(const Conv2dConfig& config, Generator& gen = default_generator()) : config_(config) {
    CCT_CHECK(config.in_channels > 0 && config.out_channels > 0 && config.kernel_size > 0 && config.stride > 0 &&
                  config.padding >= 0,
              "Conv2d: channels, kernel size and stride must be positive and padding non-negative");
    const int64_t k = config.kernel_size;
    weight = this->register_parameter("weight", Tensor<T>::empty({config.out_channels, config.in_channels, k, k}));
    init::kaiming_normal_(weight, gen);
    if (config.bias) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(config.in_channels * k * k));
      bias = this->register_parameter("bias", Tensor<T>::empty({config.out_channels}));
      init::uniform_(bias, -bound, bound, gen);
    }
  }

  // (B, C_in, H, W) → (B, C_out, H', W')
  Tensor<T> forward(const Tensor<T>& x) override { return conv2d(x, weight, bias, config_.stride, config_.padding); }
  // Spatial size after this convolution, for an input of size `size`.
  int64_t output_size(int64_t size) const {
    return (size + 2 * config_.padding - config_.kernel_size) / config_.stride + 1;
  }
  const Conv2dConfig& config() const { return config_; }
  std::string type_name() const override { return "Conv2d"; }
  // Cout·Cin·k·k MACs per output position.
  LayerDescription describe(const Shape& input, Describer<T>&) const override {
    const Conv2dConfig& c = config_;
    CCT_CHECK_SHAPE(input.size() == 4 && input[1] == c.in_channels, "Conv2d takes (B, ", c.in_channels,
                    ", H, W), but its input would be ", shape_str(input));
    CCT_CHECK_SHAPE(input[2] + 2 * c.padding >= c.kernel_size && input[3] + 2 * c.padding >= c.kernel_size,
                    "Conv2d: the input ", shape_str(input), " padded by ", c.padding, " is smaller than the kernel ",
                    c.kernel_size);
    const Shape output{input[0], c.out_channels, output_size(input[2]), output_size(input[3])};
    return {output, shape_numel(output) * c.in_channels * c.kernel_size * c.kernel_size};
  }

  Tensor<T> weight, bias;

 private:
  Conv2dConfig config_;
};

template <typename T = float>
class MaxPool2d : public UnaryModule<T> {
 public:
  MaxPool2d(int64_t kernel_size, int64_t stride, int64_t padding = 0)
      : kernel_size_(kernel_size), stride_(stride), padding_(padding) {}
  Tensor<T> forward(const Tensor<T>& x) override { return max_pool2d(x, kernel_size_, stride_, padding_); }
  int64_t output_size(int64_t size) const { return (size + 2 * padding_ - kernel_size_) / stride_ + 1; }
  std::string type_name() const override { return "MaxPool2d"; }
  // Pooling counts no MACs.
  LayerDescription describe(const Shape& input, Describer<T>&) const override {
    CCT_CHECK_SHAPE(input.size() == 4, "MaxPool2d takes (B, C, H, W), but its input would be ", shape_str(input));
    const int64_t height = output_size(input[2]), width = output_size(input[3]);
    CCT_CHECK_SHAPE(height > 0 && width > 0, "MaxPool2d: the input ", shape_str(input), " is smaller than the window");
    return {Shape{input[0], input[1], height, width}};
  }

 private:
  int64_t kernel_size_, stride_, padding_;
};

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_NN_CONV_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class Conv2d<T>; \
  CCT_EXTERN_TEMPLATE class MaxPool2d<T>;
CCT_FOR_FLOATING_TYPES(CCT_NN_CONV_TEMPLATES)
#undef CCT_NN_CONV_TEMPLATES
#endif

}  // namespace cct::nn
