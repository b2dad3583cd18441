// dropout: zeroes each element with probability p while training and scales the survivors by 1/(1 − p),
// so the expected value is unchanged; the identity in evaluation.
//
// The mask comes from Generator::fill_uniform (element i gets draw counter + i), so it depends only on
// the generator's state and the tensor's size, never on the thread count. It is saved for backward.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../autograd/node.hpp"
#include "../core/generator.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "registry.hpp"

namespace cct {

// ---- dropout: y = x ⊙ m, m_i = 1/(1 − p) with probability 1 − p, else 0 ------------------------------------
// ∂y/∂x = m (the same mask). Returns x itself when !training or p == 0; p == 1 gives zeros.
// Saves the mask.
template <typename T>
Tensor<T> dropout(const Tensor<T>& x, double p, bool training, Generator& gen = default_generator()) {
  CCT_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability p must be in [0, 1], got ", p);
  if (!training || p == 0.0) return x;

  const int64_t n = x.numel();
  Tensor<T> mask = Tensor<T>::empty(x.shape());
  T* pm = mask.data();
  if (p == 1.0) {
    std::fill(pm, pm + n, T(0));  // every element dropped; no draws are needed to know that
  } else {
    gen.fill_uniform(pm, n, 0.0, 1.0);
    const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
    parallel_for(0, n, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) pm[i] = static_cast<double>(pm[i]) < p ? T(0) : keep_scale;
    });
  }

  Tensor<T> out = Tensor<T>::empty(x.shape());
  const T* px = x.data();
  T* po = out.data();
  parallel_for(0, n, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) po[i] = px[i] * pm[i];
  });

  if (autograd::any_requires_grad<T>({&x}))
    autograd::record<T>("dropout", out, {x}, [mask](const Tensor<T>& g, const autograd::NeedsGrad&) {
      Tensor<T> grad = Tensor<T>::empty(g.shape());
      const T* pg = g.data();
      const T* pm = mask.data();
      T* pgi = grad.data();
      parallel_for(0, grad.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) pgi[i] = pg[i] * pm[i];
      });
      return autograd::GradList<T>{grad};
    });
  return out;
}

// The names this header's backward nodes carry (ops/registry.hpp; each has a gradient check).
CCT_REGISTER_OPS(dropout, "dropout");

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPS_DROPOUT_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE Tensor<T> dropout<T>(const Tensor<T>&, double, bool, Generator&);
CCT_FOR_FLOATING_TYPES(CCT_OPS_DROPOUT_TEMPLATES)
#undef CCT_OPS_DROPOUT_TEMPLATES
#endif

}  // namespace cct
