// TextTokenizer: turns a sequence of word vectors into transformer tokens, carrying a padding mask along.
//   TextCCT:               Conv2d(1, D, (k, E), stride (s, 1), padding (p, 0), bias=false) → ReLU →
//                          MaxPool2d((2, 1), stride (2, 1), padding (1, 0))
//   TextCVT / TextViTLite: Conv2d(1, D, (P, E), stride (P, 1), padding 0, bias=false), nothing after
// The kernel spans the whole word vector (E wide), so the convolution slides over time only: input
// (B, S, E) is viewed as one-channel images (B, 1, S, E), the conv gives (B, D, S', 1) and the tokens
// are (B, S'', D), token t covering the words under its receptive field.
//
// Names follow the reference's TextTokenizer, whose `conv_layers` is ONE nn.Sequential(conv, activation
// or Identity, pool or Identity): the weight is conv_layers.0.weight (not conv_layers.0.0.weight as in
// the image tokenizer, which nests a Sequential per block).
//
// Mask: token t is real when any real word lies under its receptive field: the conv's window, then the
// pool's window over conv positions (padding positions of either count as not real). As in the
// reference, tokens that are not real are multiplied by 0, so whatever padding produced never leaks
// into the transformer, which masks them as attention keys and in SeqPool.
#pragma once

#include <algorithm>
#include <array>
#include <memory>
#include <string>

#include "../ops/elementwise.hpp"
#include "../ops/shape.hpp"
#include "conv.hpp"

namespace cct::nn {

struct TextTokenizerConfig {
  int64_t word_embedding_dim = 300;  // E, the width of the input word vectors
  int64_t embedding_dim = 128;       // D, the size of a token
  int64_t kernel_size = 4, stride = 1, padding = 2;  // over time
  bool activation = true;            // ReLU after the conv
  bool max_pool = true;              // max-pool over time after the conv
  int64_t pooling_kernel = 2, pooling_stride = 2, pooling_padding = 1;
};

// Conv2d(1, D, (k, E), stride (s, 1), padding (p, 0), bias=false): a 1-D convolution over time whose
// kernel covers whole word vectors. (B, 1, S, E) → (B, D, S', 1), S' = (S + 2p − k)/s + 1.
// Weight (D, 1, k, E), Kaiming normal std sqrt(2 / (k·E)) as the reference initialises it.
template <typename T = float>
class WordConv2d : public UnaryModule<T> {
 public:
  WordConv2d(int64_t word_embedding_dim, int64_t out_channels, int64_t kernel_size, int64_t stride, int64_t padding,
             Generator& gen = default_generator())
      : kernel_size_(kernel_size), stride_(stride), padding_(padding) {
    CCT_CHECK(word_embedding_dim > 0 && out_channels > 0 && kernel_size > 0 && stride > 0 && padding >= 0,
              "WordConv2d: sizes, kernel and stride must be positive and padding non-negative, got E=",
              word_embedding_dim, ", D=", out_channels, ", kernel ", kernel_size, ", stride ", stride, ", padding ",
              padding);
    weight = this->register_parameter("weight", Tensor<T>::empty({out_channels, 1, kernel_size, word_embedding_dim}));
    init::kaiming_normal_(weight, gen);
  }

  Tensor<T> forward(const Tensor<T>& x) override {
    return conv2d(x, weight, Tensor<T>(), Conv2dParams{stride_, 1, padding_, 0});
  }
  int64_t output_length(int64_t length) const { return (length + 2 * padding_ - kernel_size_) / stride_ + 1; }
  int64_t kernel_size() const { return kernel_size_; }
  int64_t stride() const { return stride_; }
  int64_t padding() const { return padding_; }
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override {
    return "1, " + std::to_string(weight.size(0)) + ", kernel_size=(" + std::to_string(kernel_size_) + ", " +
           std::to_string(weight.size(3)) + "), stride=(" + std::to_string(stride_) + ", 1), padding=(" +
           std::to_string(padding_) + ", 0), bias=False";
  }

  Tensor<T> weight;

 private:
  int64_t kernel_size_, stride_, padding_;
};

// MaxPool2d((k, 1), stride (s, 1), padding (p, 0)): max over time only; padding acts as −∞.
template <typename T = float>
class TimeMaxPool2d : public UnaryModule<T> {
 public:
  TimeMaxPool2d(int64_t kernel_size, int64_t stride, int64_t padding)
      : kernel_size_(kernel_size), stride_(stride), padding_(padding) {}
  Tensor<T> forward(const Tensor<T>& x) override {
    return max_pool2d(x, std::array<int64_t, 2>{kernel_size_, 1}, std::array<int64_t, 2>{stride_, 1},
                      std::array<int64_t, 2>{padding_, 0});
  }
  int64_t output_length(int64_t length) const { return (length + 2 * padding_ - kernel_size_) / stride_ + 1; }
  int64_t kernel_size() const { return kernel_size_; }
  int64_t stride() const { return stride_; }
  int64_t padding() const { return padding_; }
  std::string type_name() const override { return "MaxPool2d"; }

 private:
  int64_t kernel_size_, stride_, padding_;
};

// Tokens and which of them are real.
template <typename T>
struct TextTokens {
  Tensor<T> tokens;       // (B, N, D)
  Tensor<uint8_t> mask;   // (B, N), 1 = real; undefined when no input mask was given
};

template <typename T = float>
class TextTokenizer : public Module<T> {
 public:
  explicit TextTokenizer(const TextTokenizerConfig& config, Generator& gen = default_generator()) : config_(config) {
    conv_layers = this->register_module("conv_layers", std::make_shared<Sequential<T>>());
    conv = conv_layers->push_back(std::make_shared<WordConv2d<T>>(
        config.word_embedding_dim, config.embedding_dim, config.kernel_size, config.stride, config.padding, gen));
    if (config.activation) conv_layers->push_back(std::make_shared<ReLU<T>>());
    else conv_layers->push_back(std::make_shared<Identity<T>>());
    if (config.max_pool)
      pool = conv_layers->push_back(
          std::make_shared<TimeMaxPool2d<T>>(config.pooling_kernel, config.pooling_stride, config.pooling_padding));
    else conv_layers->push_back(std::make_shared<Identity<T>>());
  }

  // embedded (B, S, E) and mask (B, S) (1 = real word; may be undefined) → tokens (B, N, D), mask (B, N).
  TextTokens<T> forward(const Tensor<T>& embedded, const Tensor<uint8_t>& mask = Tensor<uint8_t>()) {
    CCT_CHECK_SHAPE(embedded.dim() == 3 && embedded.size(2) == config_.word_embedding_dim,
                    "TextTokenizer: expected word vectors (B, S, ", config_.word_embedding_dim, "), got ",
                    shape_str(embedded.shape()));
    const int64_t B = embedded.size(0), S = embedded.size(1);
    const int64_t N = sequence_length(S);
    Tensor<T> x = conv_layers->forward(unsqueeze(embedded, 1));  // (B, D, N, 1)
    TextTokens<T> out;
    out.tokens = transpose(reshape(x, {B, config_.embedding_dim, N}), 1, 2);
    if (mask.defined()) {
      out.mask = forward_mask(mask);
      Tensor<T> keep = Tensor<T>::empty({B, N, 1});
      for (int64_t i = 0; i < B * N; ++i) keep.data()[i] = out.mask.data()[i] ? T(1) : T(0);
      out.tokens = mul(out.tokens, keep);
    }
    return out;
  }

  // The token mask for a word mask (B, S): token t is real when a real word lies under its window.
  Tensor<uint8_t> forward_mask(const Tensor<uint8_t>& mask) const {
    CCT_CHECK_SHAPE(mask.dim() == 2, "TextTokenizer: expected a mask (B, S), got ", shape_str(mask.shape()));
    const int64_t B = mask.size(0), S = mask.size(1);
    const int64_t conv_length = conv_output_length(S);
    const int64_t N = sequence_length(S);
    Tensor<uint8_t> conv_mask = window_any(mask, B, S, conv_length, config_.kernel_size, config_.stride, config_.padding);
    if (!config_.max_pool) return conv_mask;
    return window_any(conv_mask, B, conv_length, N, config_.pooling_kernel, config_.pooling_stride,
                      config_.pooling_padding);
  }

  // Tokens made from S words.
  int64_t sequence_length(int64_t seq_len) const {
    int64_t length = conv_output_length(seq_len);
    if (config_.max_pool) {
      CCT_CHECK(length + 2 * config_.pooling_padding >= config_.pooling_kernel, "TextTokenizer: ", seq_len,
                " words are too few for the pooling kernel ", config_.pooling_kernel);
      length = (length + 2 * config_.pooling_padding - config_.pooling_kernel) / config_.pooling_stride + 1;
    }
    return length;
  }

  const TextTokenizerConfig& config() const { return config_; }
  std::string type_name() const override { return "TextTokenizer"; }

  std::shared_ptr<Sequential<T>> conv_layers;
  std::shared_ptr<WordConv2d<T>> conv;     // conv_layers[0]
  std::shared_ptr<TimeMaxPool2d<T>> pool;  // conv_layers[2], null without max_pool

 private:
  int64_t conv_output_length(int64_t seq_len) const {
    CCT_CHECK(seq_len >= 1 && seq_len + 2 * config_.padding >= config_.kernel_size, "TextTokenizer: ", seq_len,
              " words are too few for the kernel ", config_.kernel_size, " with padding ", config_.padding);
    return (seq_len + 2 * config_.padding - config_.kernel_size) / config_.stride + 1;
  }

  // out[b, t] = 1 when in[b, i] is set for some i in [t·stride − padding, t·stride − padding + kernel) ∩ [0, length).
  static Tensor<uint8_t> window_any(const Tensor<uint8_t>& in, int64_t batch, int64_t length, int64_t out_length,
                                    int64_t kernel, int64_t stride, int64_t padding) {
    Tensor<uint8_t> out = Tensor<uint8_t>::zeros({batch, out_length});
    for (int64_t b = 0; b < batch; ++b) {
      const uint8_t* row = in.data() + b * length;
      for (int64_t t = 0; t < out_length; ++t) {
        const int64_t begin = std::max<int64_t>(0, t * stride - padding);
        const int64_t end = std::min<int64_t>(length, t * stride - padding + kernel);
        uint8_t any = 0;
        for (int64_t i = begin; i < end; ++i) any |= row[i] ? 1 : 0;
        out.data()[b * out_length + t] = any;
      }
    }
    return out;
  }

  TextTokenizerConfig config_;
};

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_NN_TEXT_TOKENIZER_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class WordConv2d<T>; \
  CCT_EXTERN_TEMPLATE class TimeMaxPool2d<T>; \
  CCT_EXTERN_TEMPLATE class TextTokenizer<T>;
CCT_FOR_FLOATING_TYPES(CCT_NN_TEXT_TOKENIZER_TEMPLATES)
#undef CCT_NN_TEXT_TOKENIZER_TEMPLATES
#endif

}  // namespace cct::nn
