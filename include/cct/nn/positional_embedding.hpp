// Positional embeddings: the sine table of "Attention Is All You Need" as the reference builds it.
#pragma once

#include <cmath>

#include "../core/tensor.hpp"

namespace cct::nn {

enum class PositionalEmbedding { kLearnable, kSine, kNone };

inline const char* positional_embedding_name(PositionalEmbedding kind) {
  switch (kind) {
    case PositionalEmbedding::kLearnable: return "learnable";
    case PositionalEmbedding::kSine: return "sine";
    default: return "none";
  }
}

// (1, seq_len, D) with pe[p, i] = p / 10000^(2·floor(i/2)/D), then sin for even i and cos for odd i
// (interleaved, exactly as the reference's sinusoidal_embedding).
template <typename T>
Tensor<T> sine_positional_table(int64_t seq_len, int64_t embedding_dim) {
  Tensor<T> table = Tensor<T>::empty({1, seq_len, embedding_dim});
  for (int64_t p = 0; p < seq_len; ++p)
    for (int64_t i = 0; i < embedding_dim; ++i) {
      // The reference builds the angles in a float32 tensor before sin/cos; rounding the same way keeps
      // a table trained here identical to one built there.
      const float angle = static_cast<float>(
          static_cast<double>(p) / std::pow(10000.0, 2.0 * static_cast<double>(i / 2) / static_cast<double>(embedding_dim)));
      table.data()[p * embedding_dim + i] = static_cast<T>(i % 2 == 0 ? std::sin(angle) : std::cos(angle));
    }
  return table;
}

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_NN_POSITIONAL_EMBEDDING_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE Tensor<T> sine_positional_table<T>(int64_t, int64_t);
CCT_FOR_FLOATING_TYPES(CCT_NN_POSITIONAL_EMBEDDING_TEMPLATES)
#undef CCT_NN_POSITIONAL_EMBEDDING_TEMPLATES
#endif

}  // namespace cct::nn
