// EncoderBlock: what TransformerClassifier asks of each of its encoder blocks, and the factory that
// builds them. The reference's block (TransformerEncoderLayer) is one implementation; a block of your
// own (LayerScale, another attention) derives from EncoderBlock and is plugged in through the factory
// (see docs/adding_a_layer.md), with no copy of the classifier.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "../core/generator.hpp"
#include "containers.hpp"

namespace cct::nn {

// The sizes the classifier asks of block `index`: what every block of a given width needs to know.
struct EncoderLayerConfig {
  int64_t embedding_dim = 128;
  int64_t num_heads = 2;
  int64_t mlp_hidden_dim = 128;     // F
  double dropout = 0.0;             // after the MLP's activation, after linear2 and after proj
  double attention_dropout = 0.1;
  double drop_path = 0.0;           // stochastic depth rate of this layer
};

// A block maps tokens (B, N, D) to tokens (B, N, D). It derives from UnaryModule, so it also sits in a
// Sequential. A subclass overrides the three-argument forward; write `using EncoderBlock<T>::forward;`
// in it so that forward(x) stays callable on the subclass too (C++ hides overloads otherwise).
template <typename T = float>
class EncoderBlock : public UnaryModule<T> {
 public:
  // key_padding_mask: undefined or (B, N), nonzero = real token (text models): padded tokens must not
  // be attended to. attention_out: when not null, the block writes its attention probabilities
  // (B, H, N, N) there (for pictures and tests), or leaves it undefined if it has none.
  virtual Tensor<T> forward(const Tensor<T>& x, const Tensor<uint8_t>& key_padding_mask, Tensor<T>* attention_out) = 0;

  Tensor<T> forward(const Tensor<T>& x) override { return forward(x, Tensor<uint8_t>(), nullptr); }
  Tensor<T> forward(const Tensor<T>& x, const Tensor<uint8_t>& key_padding_mask) {
    return forward(x, key_padding_mask, nullptr);
  }
};

// Builds block `index` (0 = nearest the input) of a classifier from the sizes it asks for. Random
// initialisation draws from `gen`, the classifier's generator, so a model built from one seed has the
// same weights on any thread count. The block is registered as `blocks.<index>`: its parameter names
// continue from there (classifier.blocks.0.self_attn.qkv.weight, ...).
template <typename T = float>
using EncoderBlockFactory =
    std::function<std::shared_ptr<EncoderBlock<T>>(int64_t index, const EncoderLayerConfig& config, Generator& gen)>;

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_NN_ENCODER_BLOCK_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class EncoderBlock<T>;
CCT_FOR_FLOATING_TYPES(CCT_NN_ENCODER_BLOCK_TEMPLATES)
#undef CCT_NN_ENCODER_BLOCK_TEMPLATES
#endif

}  // namespace cct::nn
