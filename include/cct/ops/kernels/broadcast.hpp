// Broadcasting loops shared by the elementwise ops (not public API).
#pragma once

#include <cstdint>
#include <vector>

#include "../../core/parallel.hpp"
#include "../../core/tensor.hpp"

namespace cct::kernels {

// Calls fn(out_offset, a_offset, b_offset, count, a_step, b_step) once per row of the broadcast output,
// where a row is the run along the last output dim; a_step and b_step are 0 (broadcast) or 1.
// Rows are split across threads; each output element is written by exactly one thread.
template <typename Fn>
void for_each_broadcast_row(const Shape& out_shape, const Shape& a_shape, const Shape& b_shape, Fn&& fn) {
  const int64_t rank = static_cast<int64_t>(out_shape.size());
  const int64_t total = shape_numel(out_shape);
  if (total == 0) return;
  const int64_t inner = rank == 0 ? 1 : out_shape[rank - 1];
  const int64_t rows = total / inner;
  const Shape a_strides = broadcast_strides(a_shape, out_shape);
  const Shape b_strides = broadcast_strides(b_shape, out_shape);
  const int64_t a_step = rank == 0 ? 0 : a_strides[rank - 1];
  const int64_t b_step = rank == 0 ? 0 : b_strides[rank - 1];
  parallel_for(0, rows, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, inner)), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      int64_t rest = row, a_offset = 0, b_offset = 0;
      for (int64_t d = rank - 2; d >= 0; --d) {
        const int64_t index = rest % out_shape[d];
        rest /= out_shape[d];
        a_offset += index * a_strides[d];
        b_offset += index * b_strides[d];
      }
      fn(row * inner, a_offset, b_offset, inner, a_step, b_step);
    }
  });
}

// Sums `gradient` (of a broadcast result's shape) down to `shape`, the shape of an input that was
// broadcast: the adjoint of broadcasting. Returns `gradient` itself when nothing was broadcast.
template <typename T>
Tensor<T> sum_to_shape(const Tensor<T>& gradient, const Shape& shape) {
  if (gradient.shape() == shape) return gradient;
  const Shape& out_shape = gradient.shape();
  const int64_t rank = static_cast<int64_t>(out_shape.size());
  Tensor<T> result = Tensor<T>::zeros(shape);
  const int64_t total = gradient.numel();
  if (total == 0) return result;
  const int64_t inner = out_shape[rank - 1];
  const Shape strides = broadcast_strides(shape, out_shape);
  const int64_t step = strides[rank - 1];
  const T* g = gradient.data();
  T* r = result.data();
  // Serial on purpose: several output rows land on the same result row.
  for (int64_t row = 0; row < total / inner; ++row) {
    int64_t rest = row, offset = 0;
    for (int64_t d = rank - 2; d >= 0; --d) {
      offset += (rest % out_shape[d]) * strides[d];
      rest /= out_shape[d];
    }
    const T* g_row = g + row * inner;
    if (step == 0) {
      T sum = T(0);
      for (int64_t i = 0; i < inner; ++i) sum += g_row[i];
      r[offset] += sum;
    } else {
      for (int64_t i = 0; i < inner; ++i) r[offset + i] += g_row[i];
    }
  }
  return result;
}

}  // namespace cct::kernels
