// Softmax and log-softmax along any dim: fused, numerically stable kernels and their backward.
//
// A tensor is seen as (outer, dim_size, inner) around the reduced dim, so element (o, d, i) lives at
// o·dim_size·inner + d·inner + i. Each of the outer·inner lines is independent: threads split lines.
// Every line subtracts its maximum before exponentiating, so logits of any magnitude stay finite.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "../autograd/node.hpp"
#include "../core/parallel.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "kernels/vector_math.hpp"
#include "registry.hpp"

namespace cct {

namespace detail {

struct LineLayout {
  int64_t outer = 1;
  int64_t dim_size = 1;
  int64_t inner = 1;

  int64_t lines() const { return outer * inner; }
  // Offset of the first element of line `line` (the others follow every `inner` elements).
  int64_t line_start(int64_t line) const { return (line / inner) * dim_size * inner + line % inner; }
  // Enough lines per chunk that a thread gets ~16k elements, so small tensors stay serial.
  int64_t grain() const { return std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(1, dim_size)); }
};

inline LineLayout line_layout(const Shape& shape, int64_t dim, const char* op) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  LineLayout layout;
  if (rank == 0) {  // a scalar is a single line of one element (dim 0 or -1), as in PyTorch
    normalize_dim(dim, 1, op);
    return layout;
  }
  const int64_t d = normalize_dim(dim, rank, op);
  for (int64_t k = 0; k < d; ++k) layout.outer *= shape[k];
  layout.dim_size = shape[d];
  for (int64_t k = d + 1; k < rank; ++k) layout.inner *= shape[k];
  return layout;
}

// Writes softmax (kLog false) or log-softmax (kLog true) of x[0], x[stride], ..., x[(n−1)·stride] into
// y at the same offsets. y may alias x.
template <typename T, bool kLog>
void softmax_line(const T* x, T* y, int64_t n, int64_t stride) {
  if constexpr (std::is_same_v<T, float> && !kLog) {
    if (stride == 1) {
      // A contiguous float line (softmax over the last dim, as in attention): the vector row kernels
      // instead of libm's one exponential at a time (bench_ops cct_7 softmax(-1) forward 67-73 → 18 ms).
      if (y != x) std::copy(x, x + n, y);
      const float sum = kernels::exp_shifted_sum(y, n, kernels::row_max(y, n, -std::numeric_limits<float>::infinity()));
      const float inverse = 1.0f / sum;
      for (int64_t k = 0; k < n; ++k) y[k] *= inverse;
      return;
    }
  }
  T max_value = -std::numeric_limits<T>::infinity();
  for (int64_t k = 0; k < n; ++k) max_value = std::max(max_value, x[k * stride]);
  T sum = T(0);
  if constexpr (kLog) {
    for (int64_t k = 0; k < n; ++k) sum += std::exp(x[k * stride] - max_value);
    // (x − max) − log Σ: the first difference is exact for the largest logit, however big it is.
    const T log_sum = std::log(sum);
    for (int64_t k = 0; k < n; ++k) y[k * stride] = (x[k * stride] - max_value) - log_sum;
  } else {
    for (int64_t k = 0; k < n; ++k) {
      const T e = std::exp(x[k * stride] - max_value);
      y[k * stride] = e;
      sum += e;
    }
    const T inverse = T(1) / sum;
    for (int64_t k = 0; k < n; ++k) y[k * stride] *= inverse;
  }
}

template <typename T, bool kLog>
Tensor<T> softmax_forward(const Tensor<T>& x, const LineLayout& layout) {
  Tensor<T> out = Tensor<T>::empty(x.shape());
  const T* px = x.data();
  T* py = out.data();
  parallel_for(0, layout.lines(), layout.grain(), [&](int64_t begin, int64_t end) {
    for (int64_t line = begin; line < end; ++line) {
      const int64_t offset = layout.line_start(line);
      softmax_line<T, kLog>(px + offset, py + offset, layout.dim_size, layout.inner);
    }
  });
  return out;
}

// Backward of either op from the saved output y and the upstream gradient g, line by line:
//   softmax:     g_in = y ⊙ (g − Σ g⊙y)
//   log-softmax: g_in = g − softmax ⊙ Σ g, with softmax = exp(y)
template <typename T, bool kLog>
Tensor<T> softmax_backward(const Tensor<T>& g, const Tensor<T>& y, const LineLayout& layout) {
  Tensor<T> grad_input = Tensor<T>::empty(y.shape());
  const T* pg = g.data();
  const T* py = y.data();
  T* pgi = grad_input.data();
  const int64_t n = layout.dim_size, stride = layout.inner;
  parallel_for(0, layout.lines(), layout.grain(), [&](int64_t begin, int64_t end) {
    for (int64_t line = begin; line < end; ++line) {
      const int64_t offset = layout.line_start(line);
      const T* gl = pg + offset;
      const T* yl = py + offset;
      T* out = pgi + offset;
      T sum = T(0);
      if constexpr (kLog) {
        for (int64_t k = 0; k < n; ++k) sum += gl[k * stride];
        for (int64_t k = 0; k < n; ++k) out[k * stride] = gl[k * stride] - std::exp(yl[k * stride]) * sum;
      } else {
        for (int64_t k = 0; k < n; ++k) sum += gl[k * stride] * yl[k * stride];
        for (int64_t k = 0; k < n; ++k) out[k * stride] = yl[k * stride] * (gl[k * stride] - sum);
      }
    }
  });
  return grad_input;
}

}  // namespace detail

// ---- softmax: y_k = e^(x_k − m) / Σ_j e^(x_j − m) along `dim` (m the line's maximum) ----------------
// ∂L/∂x = y ⊙ (g − Σ g⊙y) along the line. Saves only the output.
template <typename T>
Tensor<T> softmax(const Tensor<T>& x, int64_t dim) {
  const detail::LineLayout layout = detail::line_layout(x.shape(), dim, "softmax");
  Tensor<T> out = detail::softmax_forward<T, false>(x, layout);
  if (autograd::any_requires_grad<T>({&x}))
    autograd::record<T>("softmax", out, {x}, [y = out.detach(), layout](const Tensor<T>& g, const autograd::NeedsGrad&) {
      return autograd::GradList<T>{detail::softmax_backward<T, false>(g, y, layout)};
    });
  return out;
}

// ---- log_softmax: y_k = (x_k − m) − log Σ_j e^(x_j − m) along `dim` ---------------------------------
// ∂L/∂x = g − e^y ⊙ Σ g along the line. Saves only the output.
template <typename T>
Tensor<T> log_softmax(const Tensor<T>& x, int64_t dim) {
  const detail::LineLayout layout = detail::line_layout(x.shape(), dim, "log_softmax");
  Tensor<T> out = detail::softmax_forward<T, true>(x, layout);
  if (autograd::any_requires_grad<T>({&x}))
    autograd::record<T>("log_softmax", out, {x}, [y = out.detach(), layout](const Tensor<T>& g, const autograd::NeedsGrad&) {
      return autograd::GradList<T>{detail::softmax_backward<T, true>(g, y, layout)};
    });
  return out;
}

// The names this header's backward nodes carry (ops/registry.hpp; each has a gradient check).
CCT_REGISTER_OPS(softmax, "softmax", "log_softmax");

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPS_SOFTMAX_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE Tensor<T> softmax<T>(const Tensor<T>&, int64_t); \
  CCT_EXTERN_TEMPLATE Tensor<T> log_softmax<T>(const Tensor<T>&, int64_t);
CCT_FOR_FLOATING_TYPES(CCT_OPS_SOFTMAX_TEMPLATES)
#undef CCT_OPS_SOFTMAX_TEMPLATES
#endif

}  // namespace cct
