// embedding: looks up rows of a (vocab_size, embedding_dim) table by integer index, with the scatter-add
// backward into the table and an optional padding row that receives no gradient.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../autograd/node.hpp"
#include "../core/parallel.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "registry.hpp"

namespace cct {

// ---- embedding: out[..., :] = weight[indices[...], :] ---------------------------------------------------
// ∂L/∂weight[v, :] = Σ over positions n with indices[n] = v of g[n, :], except row padding_idx (zero).
// Output shape: indices.shape + (embedding_dim). padding_idx < 0 means no padding row.
// Saves a copy of the indices.
template <typename T>
Tensor<T> embedding(const Tensor<int64_t>& indices, const Tensor<T>& weight, int64_t padding_idx = -1) {
  CCT_CHECK_SHAPE(weight.dim() == 2, "embedding: weight must be (vocab_size, embedding_dim), got shape ",
                  shape_str(weight.shape()));
  const int64_t vocab_size = weight.size(0), embedding_dim = weight.size(1);
  CCT_CHECK(padding_idx < vocab_size, "embedding: padding_idx ", padding_idx, " is out of range for vocab_size ",
            vocab_size);
  const int64_t count = indices.numel();
  const int64_t* pi = indices.data();
  for (int64_t n = 0; n < count; ++n)
    CCT_CHECK(pi[n] >= 0 && pi[n] < vocab_size, "embedding: index ", pi[n], " at position ", n,
              " is out of range for vocab_size ", vocab_size, " (valid: 0 to ", vocab_size - 1, ")");

  Shape out_shape = indices.shape();
  out_shape.push_back(embedding_dim);
  Tensor<T> out = Tensor<T>::empty(out_shape);
  const T* pw = weight.data();
  T* po = out.data();
  parallel_for(0, count, std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(1, embedding_dim)),
               [&](int64_t begin, int64_t end) {
                 for (int64_t n = begin; n < end; ++n)
                   std::copy(pw + pi[n] * embedding_dim, pw + (pi[n] + 1) * embedding_dim, po + n * embedding_dim);
               });

  if (autograd::any_requires_grad<T>({&weight}))
    autograd::record<T>(
        "embedding", out, {weight},
        [indices = indices.clone(), vocab_size, embedding_dim, padding_idx](const Tensor<T>& g,
                                                                           const autograd::NeedsGrad&) {
          Tensor<T> grad_weight = Tensor<T>::zeros({vocab_size, embedding_dim});
          const int64_t count = indices.numel();
          const int64_t* pi = indices.data();
          const T* pg = g.data();
          T* pgw = grad_weight.data();
          // Several positions may share an index, so threads split the embedding columns: each thread
          // owns a column range of every row and adds positions in order (race-free, deterministic).
          parallel_for(0, embedding_dim, std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(1, count)),
                       [&](int64_t column_begin, int64_t column_end) {
                         for (int64_t n = 0; n < count; ++n) {
                           if (pi[n] == padding_idx) continue;
                           T* row = pgw + pi[n] * embedding_dim;
                           const T* g_row = pg + n * embedding_dim;
                           for (int64_t j = column_begin; j < column_end; ++j) row[j] += g_row[j];
                         }
                       });
          return autograd::GradList<T>{grad_weight};
        });
  return out;
}

// The names this header's backward nodes carry (ops/registry.hpp; each has a gradient check).
CCT_REGISTER_OPS(embedding, "embedding");

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPS_EMBEDDING_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE Tensor<T> embedding<T>(const Tensor<int64_t>&, const Tensor<T>&, int64_t);
CCT_FOR_FLOATING_TYPES(CCT_OPS_EMBEDDING_TEMPLATES)
#undef CCT_OPS_EMBEDDING_TEMPLATES
#endif

}  // namespace cct
