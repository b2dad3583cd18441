// Max pooling: max_pool2d (N, C, H, W) and max_pool1d (N, C, L), with backward.
//
// PyTorch semantics (ceil_mode = false, dilation 1): output size floor((H + 2·padding − kernel)/stride) + 1,
// padding acts as −∞ (it never wins) and must be at most half the kernel, so every window holds at
// least one real element. NaN propagates (a NaN in a window is its maximum). On ties the first maximum
// in row-major window order wins (for NaN too, where PyTorch's CPU kernel picks the last). Forward stores, per output element, the flat index of its maximum
// within its (H, W) plane (int32); backward adds each output gradient onto that one input element.
// Work is split over the N·C planes, which are independent in both directions.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "../autograd/node.hpp"
#include "../core/parallel.hpp"
#include "kernels/cpu_features.hpp"
#include "kernels/im2col.hpp"
#include "kernels/simd_loads.hpp"
#include "registry.hpp"

namespace cct {

namespace detail {

// The running maximum updated with `candidate`: a NaN wins (NaN is the maximum), a tie keeps `current`
// (PyTorch's rule), and there is no branch, so loops over rows vectorise.
template <typename T>
inline T nan_max(T current, T candidate) {
  return (candidate > current || candidate != candidate) ? candidate : current;
}

// Whether `candidate` at input row candidate_row replaces the running maximum `current` at current_row,
// so that the first maximum in row-major window order wins (the first NaN when there is one): a larger
// value, a NaN over a number, or the same value (or NaN) from an earlier row. Callers visit columns
// left to right, so an equal value in the same row keeps the earlier column.
template <typename T>
inline bool takes_over(T candidate, int32_t candidate_row, T current, int32_t current_row) {
  const bool candidate_nan = candidate != candidate, current_nan = current != current;
  // Bitwise, not short-circuit: no branch, so callers' loops over positions vectorise.
  return (candidate > current) | (candidate_nan & !current_nan) |
         (((candidate == current) | (candidate_nan & current_nan)) & (candidate_row < current_row));
}

#if CCT_HAVE_AVX512_DISPATCH
// One kernel column of the row passes below, for 16 outputs: (value, value_row) at kernel column k takes
// over (best, best_row, best_k) by takes_over's rule: larger, or a NaN over a number, or equal (both NaN
// included) from an earlier row.
CCT_TARGET_AVX512 inline void take_first_maximum(__m512 value, __m512i value_row, int64_t k, __m512& best,
                                                 __m512i& best_row, __m512i& best_k) {
  const __mmask16 value_nan = _mm512_cmp_ps_mask(value, value, _CMP_UNORD_Q);
  const __mmask16 best_nan = _mm512_cmp_ps_mask(best, best, _CMP_UNORD_Q);
  const __mmask16 same = _mm512_cmp_ps_mask(value, best, _CMP_EQ_OQ) | (value_nan & best_nan);
  const __mmask16 take = _mm512_cmp_ps_mask(value, best, _CMP_GT_OQ) | (value_nan & __mmask16(~best_nan)) |
                         (same & _mm512_cmplt_epi32_mask(value_row, best_row));
  best = _mm512_mask_mov_ps(best, take, value);
  best_row = _mm512_mask_mov_epi32(best_row, take, value_row);
  best_k = _mm512_mask_mov_epi32(best_k, take, _mm512_set1_epi32(static_cast<int32_t>(k)));
}

// The horizontal pass of a float pool with column stride 2, in AVX-512: out[ow] = the maximum of
// window[2·ow + k] for k < kernel (the nan_max / takes_over rules of the loops below), for ow < out_w.
// With `rows` (not null) the window's values come with their input rows, and argmax[ow] receives the
// flat in-plane index of the first maximum in row-major window order, as max_pool_planes_body writes it.
// A stride known only at run time left these loops scalar (about 1.3 cycles per input element, a
// seventh of a bf16 CCT-2 inference); here 16 outputs take two loads and a permute per kernel column.
// `window` and `rows` must be readable 2·out_w + kernel + 32 elements far (the callers pad them).
CCT_TARGET_AVX512 inline void max_pool_row_stride2(const float* window, const int32_t* rows, int64_t out_w,
                                                   int64_t kernel, int64_t width, int64_t padding,
                                                   float* out, int32_t* argmax) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  for (int64_t ow = 0; ow < out_w; ow += 16) {
    const __mmask16 store = out_w - ow >= 16 ? __mmask16(0xffff) : __mmask16((1u << (out_w - ow)) - 1);
    const float* base = window + 2 * ow;
    __m512 best = _mm512_permutex2var_ps(_mm512_loadu_ps(base), even, _mm512_loadu_ps(base + 16));
    if (!rows) {
      for (int64_t k = 1; k < kernel; ++k) {
        const __m512 value = _mm512_permutex2var_ps(_mm512_loadu_ps(base + k), even, _mm512_loadu_ps(base + k + 16));
        // nan_max: a larger value or a NaN takes over.
        const __mmask16 take = _mm512_cmp_ps_mask(value, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(value, value, _CMP_UNORD_Q);
        best = _mm512_mask_mov_ps(best, take, value);
      }
      _mm512_mask_storeu_ps(out + ow, store, best);
      continue;
    }
    const int32_t* row_base = rows + 2 * ow;
    __m512i best_row = _mm512_permutex2var_epi32(_mm512_loadu_si512(row_base), even, _mm512_loadu_si512(row_base + 16));
    __m512i best_k = _mm512_setzero_si512();
    for (int64_t k = 1; k < kernel; ++k) {
      const __m512 value = _mm512_permutex2var_ps(_mm512_loadu_ps(base + k), even, _mm512_loadu_ps(base + k + 16));
      const __m512i value_row =
          _mm512_permutex2var_epi32(_mm512_loadu_si512(row_base + k), even, _mm512_loadu_si512(row_base + k + 16));
      take_first_maximum(value, value_row, k, best, best_row, best_k);
    }
    _mm512_mask_storeu_ps(out + ow, store, best);
    // index = best_row · width + 2·ow + best_k − padding
    const __m512i column = _mm512_add_epi32(_mm512_slli_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int32_t>(ow))), 1),
                                            _mm512_sub_epi32(best_k, _mm512_set1_epi32(static_cast<int32_t>(padding))));
    const __m512i index = _mm512_add_epi32(_mm512_mullo_epi32(best_row, _mm512_set1_epi32(static_cast<int32_t>(width))), column);
    _mm512_mask_storeu_epi32(argmax + ow, store, index);
  }
}

// The vertical pass in AVX-512, for the same kernel: column_max[w] = the maximum of src[h·width + w]
// over rows h in [h_begin, h_end), and with `column_row` (not null) the row it came from, by the rules
// of the loops below (rows in order: a larger value or a NaN takes over; recording, only a first NaN).
// Straight from the input rows, sixteen columns per vector: the scalar path's copy and fill calls per
// output row were most of a CCT tokenizer's pooling.
// Sixteen columns [w, w + 16) of it (those in `mask`) in registers.
CCT_TARGET_AVX512 inline void max_pool_columns(const float* src, int64_t width, int64_t w, __mmask16 mask, int64_t h_begin,
                                               int64_t h_end, bool recording, __m512& best, __m512i& best_row) {
  best = kernels::load_floats(mask, src + h_begin * width + w);
  best_row = _mm512_set1_epi32(static_cast<int32_t>(h_begin));
  for (int64_t h = h_begin + 1; h < h_end; ++h) {
    const __m512 value = kernels::load_floats(mask, src + h * width + w);
    const __mmask16 value_nan = _mm512_cmp_ps_mask(value, value, _CMP_UNORD_Q);
    const __mmask16 nan_takes = recording ? __mmask16(value_nan & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q)) : value_nan;
    const __mmask16 take = _mm512_cmp_ps_mask(value, best, _CMP_GT_OQ) | nan_takes;
    best = _mm512_mask_mov_ps(best, take, value);
    best_row = _mm512_mask_mov_epi32(best_row, take, _mm512_set1_epi32(static_cast<int32_t>(h)));
  }
}

CCT_TARGET_AVX512 inline void max_pool_column_pass(const float* src, int64_t width, int64_t h_begin, int64_t h_end,
                                                   float* column_max, int32_t* column_row) {
  for (int64_t w = 0; w < width; w += 16) {
    const __mmask16 mask = width - w >= 16 ? __mmask16(0xffff) : __mmask16((1u << (width - w)) - 1);
    __m512 best;
    __m512i best_row;
    max_pool_columns(src, width, w, mask, h_begin, h_end, column_row != nullptr, best, best_row);
    // Full vectors are stored whole: the row pass reloads them at once, and a masked store does not
    // forward to a load (the load would wait for the store to retire).
    if (mask == __mmask16(0xffff)) {
      _mm512_storeu_ps(column_max + w, best);
      if (column_row) _mm512_storeu_si512(column_row + w, best_row);
    } else {
      _mm512_mask_storeu_ps(column_max + w, mask, best);
      if (column_row) _mm512_mask_storeu_epi32(column_row + w, mask, best_row);
    }
  }
}

// Both passes in registers, for rows of at most 32 columns and at most 16 outputs (a CCT tokenizer's
// 32 and 16): the column maxima stay in two vectors and each kernel column's window values are one
// two-vector permute, instead of a round trip through the column buffer whose unaligned reloads
// waited on the stores just made. Same rules and the same argmax as the two passes above.
CCT_TARGET_AVX512 inline void max_pool_narrow_row(const float* src, int64_t width, int64_t h_begin, int64_t h_end,
                                                  int64_t out_w, int64_t kernel, int64_t padding, float* out,
                                                  int32_t* argmax) {
  const bool recording = argmax != nullptr;
  __m512 low, high = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512i low_row, high_row = _mm512_setzero_si512();
  max_pool_columns(src, width, 0, width >= 16 ? __mmask16(0xffff) : __mmask16((1u << width) - 1), h_begin, h_end,
                   recording, low, low_row);
  if (width > 16)
    max_pool_columns(src, width, 16, width >= 32 ? __mmask16(0xffff) : __mmask16((1u << (width - 16)) - 1), h_begin,
                     h_end, recording, high, high_row);
  const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __mmask16 store = out_w >= 16 ? __mmask16(0xffff) : __mmask16((1u << out_w) - 1);
  const __m512 minus_infinity = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const __m512i padding_row = _mm512_set1_epi32(std::numeric_limits<int32_t>::max());
  const __m512i zero = _mm512_setzero_si512(), limit = _mm512_set1_epi32(static_cast<int32_t>(width));
  __m512 best = minus_infinity;
  __m512i best_row = padding_row, best_k = zero;
  for (int64_t k = 0; k < kernel; ++k) {
    // Output ow reads column 2·ow + k − padding; outside [0, width) it is padding (−∞, the largest row).
    const __m512i column = _mm512_add_epi32(_mm512_slli_epi32(lane, 1), _mm512_set1_epi32(static_cast<int32_t>(k - padding)));
    const __mmask16 inside = _mm512_cmpge_epi32_mask(column, zero) & _mm512_cmplt_epi32_mask(column, limit);
    const __m512 value = _mm512_mask_mov_ps(minus_infinity, inside, _mm512_permutex2var_ps(low, column, high));
    if (k == 0) {
      best = value;
      if (recording) best_row = _mm512_mask_mov_epi32(padding_row, inside, _mm512_permutex2var_epi32(low_row, column, high_row));
      continue;
    }
    if (!recording) {  // nan_max: a larger value or a NaN takes over
      const __mmask16 value_nan = _mm512_cmp_ps_mask(value, value, _CMP_UNORD_Q);
      best = _mm512_mask_mov_ps(best, _mm512_cmp_ps_mask(value, best, _CMP_GT_OQ) | value_nan, value);
      continue;
    }
    const __m512i value_row = _mm512_mask_mov_epi32(padding_row, inside, _mm512_permutex2var_epi32(low_row, column, high_row));
    take_first_maximum(value, value_row, k, best, best_row, best_k);
  }
  _mm512_mask_storeu_ps(out, store, best);
  if (recording) {
    // index = best_row · width + 2·ow + best_k − padding
    const __m512i column = _mm512_add_epi32(_mm512_slli_epi32(lane, 1),
                                            _mm512_sub_epi32(best_k, _mm512_set1_epi32(static_cast<int32_t>(padding))));
    _mm512_mask_storeu_epi32(argmax, store, _mm512_add_epi32(_mm512_mullo_epi32(best_row, limit), column));
  }
}
#endif

// The forward loops of max_pool over planes [begin, end) of geometry g: what max_pool_forward runs on
// each thread. Separable maxima: for each output row, first the column maxima over the window's input rows
// (contiguous, so vectorised), then for each kernel column k the maxima over the output positions
// (independent iterations, no dependency chain). The column buffer carries −∞ where the padding is.
// When recording (pa not null), each column maximum also remembers its input row, and the second pass
// picks the first maximum in row-major window order: the argmax that backward routes the gradient to.
// Always inlined into its two callers below, so each compiles it for its own instruction set.
template <typename T>
CCT_ALWAYS_INLINE void max_pool_planes_body(const kernels::ConvGeometry& g, const T* px, T* po, int32_t* pa,
                                            int64_t begin, int64_t end) {
  const int64_t plane_size = g.height * g.width, positions = g.out_positions();
  const int64_t padded_width = std::max((g.out_w - 1) * g.stride_w + g.kernel_w, g.padding_w + g.width);
  // kRowSlack more elements than the pass reads, so that max_pool_row_stride2 may load past the end.
  constexpr int64_t kRowSlack = 48;
  std::vector<T> column_max(static_cast<size_t>(padded_width + kRowSlack), -std::numeric_limits<T>::infinity());
  // Padding columns hold the largest row, so a real element of equal value always wins.
  std::vector<int32_t> column_row(pa ? static_cast<size_t>(padded_width + kRowSlack) : 0,
                                  std::numeric_limits<int32_t>::max());
#if CCT_HAVE_AVX512_DISPATCH
  const bool stride2_kernel = std::is_same_v<T, float> && g.stride_w == 2 && kernels::cpu_has_avx512f();
#else
  constexpr bool stride2_kernel = false;
#endif
  T* const cm = column_max.data() + g.padding_w;  // cm[w] for w in [−padding_w, padded_width − padding_w)
  int32_t* const ch = pa ? column_row.data() + g.padding_w : nullptr;
  const T* const window_start = column_max.data();
  const int32_t* const window_row = pa ? column_row.data() : nullptr;
  std::vector<int32_t> best_row(pa ? static_cast<size_t>(g.out_w) : 0);
  std::vector<int32_t> best_k(pa ? static_cast<size_t>(g.out_w) : 0);
  for (int64_t plane = begin; plane < end; ++plane) {
    const T* src = px + plane * plane_size;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const int64_t h0 = oh * g.stride_h - g.padding_h;
      const int64_t h_begin = std::max<int64_t>(h0, 0), h_end = std::min(h0 + g.kernel_h, g.height);
      T* out_row = po + plane * positions + oh * g.out_w;
#if CCT_HAVE_AVX512_DISPATCH
      if constexpr (std::is_same_v<T, float>) {
        if (stride2_kernel && g.width <= 32 && g.out_w <= 16) {
          max_pool_narrow_row(src, g.width, h_begin, h_end, g.out_w, g.kernel_w, g.padding_w, out_row,
                              pa ? pa + plane * positions + oh * g.out_w : nullptr);
          continue;
        }
        if (stride2_kernel) {
          max_pool_column_pass(src, g.width, h_begin, h_end, cm, ch);
          max_pool_row_stride2(window_start, window_row, g.out_w, g.kernel_w, g.width, g.padding_w, out_row,
                               pa ? pa + plane * positions + oh * g.out_w : nullptr);
          continue;
        }
      }
#endif
      std::copy(src + h_begin * g.width, src + (h_begin + 1) * g.width, cm);
      if (!pa) {
        for (int64_t h = h_begin + 1; h < h_end; ++h) {
          const T* row = src + h * g.width;
          for (int64_t w = 0; w < g.width; ++w) cm[w] = nan_max(cm[w], row[w]);
        }
        for (int64_t ow = 0; ow < g.out_w; ++ow) out_row[ow] = window_start[ow * g.stride_w];
        for (int64_t k = 1; k < g.kernel_w; ++k)
          for (int64_t ow = 0; ow < g.out_w; ++ow)
            out_row[ow] = nan_max(out_row[ow], window_start[ow * g.stride_w + k]);
        continue;
      }
      std::fill(ch, ch + g.width, static_cast<int32_t>(h_begin));
      for (int64_t h = h_begin + 1; h < h_end; ++h) {
        const T* row = src + h * g.width;
        // Rows arrive in order, so only a larger value or a first NaN takes over.
        for (int64_t w = 0; w < g.width; ++w) {
          const bool take = row[w] > cm[w] || (row[w] != row[w] && cm[w] == cm[w]);
          cm[w] = take ? row[w] : cm[w];
          ch[w] = take ? static_cast<int32_t>(h) : ch[w];
        }
      }
      int32_t* argmax_row = pa + plane * positions + oh * g.out_w;
      // Then kernel column by kernel column over all output positions at once: no
      // dependency between positions and selects instead of branches, so it vectorises
      // (a branchy per-window search was a tenth of a CCT training step).
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        out_row[ow] = window_start[ow * g.stride_w];
        best_row[ow] = window_row[ow * g.stride_w];
        best_k[ow] = 0;
      }
      for (int32_t k = 1; k < g.kernel_w; ++k)
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          const T value = window_start[ow * g.stride_w + k];
          const int32_t value_row = window_row[ow * g.stride_w + k];
          const bool take = takes_over(value, value_row, out_row[ow], best_row[ow]);
          out_row[ow] = take ? value : out_row[ow];
          best_row[ow] = take ? value_row : best_row[ow];
          best_k[ow] = take ? k : best_k[ow];
        }
      for (int64_t ow = 0; ow < g.out_w; ++ow)
        argmax_row[ow] = static_cast<int32_t>(best_row[ow] * g.width + ow * g.stride_w + best_k[ow] -
                                              g.padding_w);
    }
  }
}

template <typename T>
void max_pool_planes(const kernels::ConvGeometry& g, const T* px, T* po, int32_t* pa, int64_t begin, int64_t end) {
  max_pool_planes_body(g, px, po, pa, begin, end);
}

#if CCT_HAVE_AVX512_DISPATCH && !defined(__AVX512F__)
// The same loops compiled for AVX-512, for builds without it (kernels/cpu_features.hpp): compiled for
// SSE2, the strided, selecting passes were over a quarter of a bf16 CCT-2 training step.
template <typename T>
CCT_TARGET_AVX512 void max_pool_planes_avx512(const kernels::ConvGeometry& g, const T* px, T* po, int32_t* pa,
                                               int64_t begin, int64_t end) {
  max_pool_planes_body(g, px, po, pa, begin, end);
}
#endif

// max_pool_planes compiled for the best instruction set this CPU has.
template <typename T>
void max_pool_planes_dispatch(const kernels::ConvGeometry& g, const T* px, T* po, int32_t* pa, int64_t begin,
                              int64_t end) {
#if CCT_HAVE_AVX512_DISPATCH && !defined(__AVX512F__)
  if (kernels::avx512_dispatch()) return max_pool_planes_avx512(g, px, po, pa, begin, end);
#endif
  max_pool_planes(g, px, po, pa, begin, end);
}

// out[plane, oh, ow] = max over the window of x[plane]; `planes` = N·C planes of geometry g (channels = 1).
// ∂out[plane, o]/∂x[plane, i] = 1 if i is the window's argmax, else 0; so ∂L/∂x[plane, i] = Σ_{o: argmax(o) = i} g[o].
template <typename T>
Tensor<T> max_pool_forward(const char* op, const Tensor<T>& x, int64_t planes, const kernels::ConvGeometry& g,
                           const Shape& out_shape) {
  CCT_CHECK(g.height * g.width <= std::numeric_limits<int32_t>::max(), op, ": planes of ", g.height, " x ",
            g.width, " elements are too large for int32 argmax indices");
  Tensor<T> out = Tensor<T>::empty(out_shape);
  const bool recording = autograd::any_requires_grad<T>({&x});
  const int64_t plane_size = g.height * g.width, positions = g.out_positions();
  // From the storage cache like every tensor: no fresh (page-faulting) allocation per training step.
  const Tensor<int32_t> argmax = recording ? Tensor<int32_t>::empty({planes * positions}) : Tensor<int32_t>();
  const T* px = x.data();
  T* po = out.data();
  int32_t* pa = recording ? argmax.data() : nullptr;
  parallel_for(0, planes, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, positions * g.kernel_h * g.kernel_w)),
               [&](int64_t begin, int64_t end) { max_pool_planes_dispatch(g, px, po, pa, begin, end); });

  if (recording)
    autograd::record<T>(op, out, {x},
                        [argmax, x_shape = x.shape(), planes, plane_size, positions](const Tensor<T>& grad_output,
                                                                                     const autograd::NeedsGrad&) {
                          Tensor<T> grad_x = Tensor<T>::empty(x_shape);
                          const T* pg = grad_output.data();
                          const int32_t* pa = argmax.data();
                          T* pgx = grad_x.data();
                          parallel_for(0, planes, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, plane_size)),
                                       [&](int64_t begin, int64_t end) {
                                         for (int64_t plane = begin; plane < end; ++plane) {
                                           T* dst = pgx + plane * plane_size;
                                           std::fill(dst, dst + plane_size, T(0));
                                           const int64_t first = plane * positions;
                                           for (int64_t o = first; o < first + positions; ++o) dst[pa[o]] += pg[o];
                                         }
                                       });
                          return autograd::GradList<T>{grad_x};
                        });
  return out;
}

inline void check_pool_options(const char* op, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
                               int64_t stride_w, int64_t padding_h, int64_t padding_w) {
  CCT_CHECK(kernel_h >= 1 && kernel_w >= 1, op, ": kernel must be at least 1, got (", kernel_h, ", ", kernel_w, ")");
  CCT_CHECK(stride_h >= 1 && stride_w >= 1, op, ": stride must be at least 1, got (", stride_h, ", ", stride_w, ")");
  CCT_CHECK(padding_h >= 0 && padding_w >= 0, op, ": padding must be non-negative, got (", padding_h, ", ",
            padding_w, ")");
  CCT_CHECK(padding_h <= kernel_h / 2 && padding_w <= kernel_w / 2, op, ": padding (", padding_h, ", ", padding_w,
            ") must be at most half the kernel (", kernel_h, ", ", kernel_w, ")");
}

// Checks max_pool2d's options against an input of shape (N, C, H, W) (naming `op` in errors) and
// returns the geometry of one (H, W) plane.
inline kernels::ConvGeometry max_pool2d_geometry(const char* op, const Shape& xs, std::array<int64_t, 2> kernel,
                                                 std::array<int64_t, 2> stride, std::array<int64_t, 2> padding) {
  check_pool_options(op, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1]);
  CCT_CHECK_SHAPE(xs[2] >= 1 && xs[3] >= 1, op, ": empty spatial dims in input shape ", shape_str(xs));
  CCT_CHECK_SHAPE(xs[2] + 2 * padding[0] >= kernel[0] && xs[3] + 2 * padding[1] >= kernel[1], op, ": kernel (",
                  kernel[0], ", ", kernel[1], ") is larger than the padded input (", xs[2] + 2 * padding[0], ", ",
                  xs[3] + 2 * padding[1], ") of input shape ", shape_str(xs));
  kernels::ConvGeometry g;
  g.height = xs[2];
  g.width = xs[3];
  g.kernel_h = kernel[0];
  g.kernel_w = kernel[1];
  g.stride_h = stride[0];
  g.stride_w = stride[1];
  g.padding_h = padding[0];
  g.padding_w = padding[1];
  g.out_h = kernels::conv_output_size(g.height, g.kernel_h, g.stride_h, g.padding_h);
  g.out_w = kernels::conv_output_size(g.width, g.kernel_w, g.stride_w, g.padding_w);
  return g;
}

}  // namespace detail

// ---- max_pool2d ------------------------------------------------------------------------------------
// x (N, C, H, W) → (N, C, floor((H + 2·padding_h − kernel_h)/stride_h) + 1, same along W).
// kernel, stride and padding are (h, w) pairs; see the header comment for semantics and gradient.
template <typename T>
Tensor<T> max_pool2d(const Tensor<T>& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                     std::array<int64_t, 2> padding = {0, 0}) {
  CCT_CHECK_SHAPE(x.dim() == 4, "max_pool2d: input must be 4-D (N, C, H, W), got shape ", shape_str(x.shape()));
  const Shape& xs = x.shape();
  const kernels::ConvGeometry g = detail::max_pool2d_geometry("max_pool2d", xs, kernel, stride, padding);
  return detail::max_pool_forward("max_pool2d", x, xs[0] * xs[1], g, {xs[0], xs[1], g.out_h, g.out_w});
}

// The same kernel, stride and padding along both spatial dims (CCT's tokenizer: kernel 3, stride 2, padding 1).
template <typename T>
Tensor<T> max_pool2d(const Tensor<T>& x, int64_t kernel, int64_t stride, int64_t padding = 0) {
  return max_pool2d(x, std::array<int64_t, 2>{kernel, kernel}, std::array<int64_t, 2>{stride, stride},
                    std::array<int64_t, 2>{padding, padding});
}

// ---- max_pool1d ------------------------------------------------------------------------------------
// x (N, C, L) → (N, C, floor((L + 2·padding − kernel)/stride) + 1): max_pool2d on planes of height 1.
template <typename T>
Tensor<T> max_pool1d(const Tensor<T>& x, int64_t kernel, int64_t stride, int64_t padding = 0) {
  CCT_CHECK_SHAPE(x.dim() == 3, "max_pool1d: input must be 3-D (N, C, L), got shape ", shape_str(x.shape()));
  CCT_CHECK(kernel >= 1 && stride >= 1 && padding >= 0, "max_pool1d: needs kernel >= 1, stride >= 1 and padding "
            ">= 0, got kernel ", kernel, ", stride ", stride, ", padding ", padding);
  CCT_CHECK(padding <= kernel / 2, "max_pool1d: padding ", padding, " must be at most half the kernel ", kernel);
  const Shape& xs = x.shape();
  CCT_CHECK_SHAPE(xs[2] >= 1, "max_pool1d: empty input length in shape ", shape_str(xs));
  CCT_CHECK_SHAPE(xs[2] + 2 * padding >= kernel, "max_pool1d: kernel ", kernel, " is larger than the padded input length ",
                  xs[2] + 2 * padding, " of input shape ", shape_str(xs));
  kernels::ConvGeometry g;
  g.width = xs[2];
  g.kernel_w = kernel;
  g.stride_w = stride;
  g.padding_w = padding;
  g.out_w = kernels::conv_output_size(g.width, g.kernel_w, g.stride_w, g.padding_w);
  return detail::max_pool_forward("max_pool1d", x, xs[0] * xs[1], g, {xs[0], xs[1], g.out_w});
}

// The names this header's backward nodes carry (ops/registry.hpp; each has a gradient check).
CCT_REGISTER_OPS(pool, "max_pool2d", "max_pool1d");

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPS_POOL_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE Tensor<T> max_pool2d<T>(const Tensor<T>&, std::array<int64_t, 2>, std::array<int64_t, 2>, std::array<int64_t, 2>); \
  CCT_EXTERN_TEMPLATE Tensor<T> max_pool2d<T>(const Tensor<T>&, int64_t, int64_t, int64_t); \
  CCT_EXTERN_TEMPLATE Tensor<T> max_pool1d<T>(const Tensor<T>&, int64_t, int64_t, int64_t);
CCT_FOR_FLOATING_TYPES(CCT_OPS_POOL_TEMPLATES)
#undef CCT_OPS_POOL_TEMPLATES
#endif

}  // namespace cct
