// Vectorised elementwise math on contiguous arrays: exp and erf through Eigen's SIMD kernels, and the
// softmax row kernels also in 16 AVX-512 lanes chosen at run time (not public API).
//
// Scalar std::exp and std::erf calls dominated attention's softmax and GELU: a CCT-7 forward evaluates
// about 235 million exponentials and 117 million error functions per batch of 128, and libm does them one
// at a time. For float these kernels run Eigen's packet functions on 4, 8 or 16 lanes (SSE, AVX, AVX-512):
// exp is within 1 ulp of the correctly rounded result on [−88.7, 88.7] and propagates NaN and +∞; erf is
// a rational approximation within a few ulp. Double keeps std::exp and std::erf (it serves the gradient
// checks, not speed).
//
// Every float element goes through the packet path, the last partial packet too (through a padded
// copy), so a result never depends on where an array starts or where a thread's chunk begins: outputs
// stay bit-identical for any thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../../config.hpp"  // before Eigen: it sets EIGEN_DONT_PARALLELIZE

#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>

#include "cpu_features.hpp"
#include "lanes.hpp"

namespace cct::kernels {

namespace detail {

using FloatPacket = Eigen::internal::packet_traits<float>::type;
constexpr int64_t kFloatPacketSize = Eigen::internal::packet_traits<float>::size;

// out[i] = op(in₀[i], in₁[i]) for i < n, packet by packet; `op` maps packets to a packet. The partial
// packet at the end is computed on a zero-padded copy and only its first `n mod size` lanes are kept.
template <typename Op>
void packet_map(int64_t n, const float* in0, const float* in1, float* out, Op op) {
  using namespace Eigen::internal;
  int64_t i = 0;
  for (; i + kFloatPacketSize <= n; i += kFloatPacketSize)
    pstoreu(out + i, op(ploadu<FloatPacket>(in0 + i), ploadu<FloatPacket>(in1 ? in1 + i : in0 + i)));
  if (i < n) {
    alignas(64) float a[kFloatPacketSize] = {}, b[kFloatPacketSize] = {}, result[kFloatPacketSize];
    std::copy(in0 + i, in0 + n, a);
    if (in1) std::copy(in1 + i, in1 + n, b);
    pstoreu(result, op(ploadu<FloatPacket>(a), ploadu<FloatPacket>(in1 ? b : a)));
    std::copy(result, result + (n - i), out + i);
  }
}

}  // namespace detail

#if CCT_HAVE_AVX512_DISPATCH
namespace detail {
// Softmax rows in 16 lanes, compiled for AVX-512 by attribute and taken wherever the CPU has it (also in
// builds without -mavx512f, whose Eigen packets are 4 SSE lanes). GCC turned lane_max's loop into 16
// scalar maxima and kept lane_sum's lanes on the stack: the two were half of attention's softmax.

// Eigen 3.4's pexp<Packet16f> (Cephes' polynomial on r = x − m·ln 2), operation for operation, so it
// gives the bits Eigen's own AVX-512 packet gives in -march=native builds. (Eigen's generic exp for
// narrower packets splits ln 2 in two and differs in the last bit now and then.)
CCT_TARGET_AVX512 inline __m512 exp16(__m512 input) {
  const __m512 x = _mm512_max_ps(_mm512_set1_ps(-88.3762626647949f), _mm512_min_ps(_mm512_set1_ps(88.3762626647950f), input));
  const __m512 m = _mm512_floor_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)));
  const __m512 r = _mm512_fmadd_ps(m, _mm512_set1_ps(-0.6931471805599453f), x);
  const __m512 r2 = _mm512_mul_ps(r, r), r3 = _mm512_mul_ps(r2, r);
  __m512 y = _mm512_fmadd_ps(_mm512_set1_ps(1.9875691500E-4f), r, _mm512_set1_ps(1.3981999507E-3f));
  __m512 y1 = _mm512_fmadd_ps(_mm512_set1_ps(4.1665795894E-2f), r, _mm512_set1_ps(1.6666665459E-1f));
  const __m512 y2 = _mm512_add_ps(r, _mm512_set1_ps(1.0f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073E-3f));
  y1 = _mm512_fmadd_ps(y1, r, _mm512_set1_ps(5.0000001201E-1f));
  y = _mm512_fmadd_ps(y, r3, y1);
  y = _mm512_fmadd_ps(y, r2, y2);
  const __m512i two_to_m = _mm512_slli_epi32(_mm512_cvttps_epi32(_mm512_add_ps(m, _mm512_set1_ps(127.0f))), 23);
  return _mm512_max_ps(input, _mm512_mul_ps(y, _mm512_castsi512_ps(two_to_m)));
}

// The 16 lanes combined as lane_sum and lane_max combine theirs (pairwise, halves first): `combine`
// is v[k] + v[k + w] for a sum, lane_max's comparison for a maximum.
template <typename Combine>
CCT_TARGET_AVX512 inline float combine_lanes16(__m512 lanes, Combine combine) {
  alignas(64) float v[16];
  _mm512_store_ps(v, lanes);
  for (int width = 8; width > 0; width /= 2)
    for (int k = 0; k < width; ++k) v[k] = combine(v[k], v[k + width]);
  return v[0];
}

// max(init, x[0], ..., x[n−1]) with lane_max's comparisons (a NaN in x is skipped, as there).
CCT_TARGET_AVX512 inline float lane_max_avx512(const float* x, int64_t n, float init) {
  __m512 lanes = _mm512_set1_ps(init);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) lanes = _mm512_max_ps(_mm512_loadu_ps(x + j), lanes);  // x > lane ? x : lane
  if (j < n) {
    const __mmask16 tail = __mmask16((1u << (n - j)) - 1);
    lanes = _mm512_mask_max_ps(lanes, tail, _mm512_maskz_loadu_ps(tail, x + j), lanes);
  }
  return combine_lanes16(lanes, [](float a, float b) { return a < b ? b : a; });
}

// exp_shifted_sum for floats: each exponential stored and added to its lane in one pass.
CCT_TARGET_AVX512 inline float exp_shifted_sum_avx512(float* values, int64_t n, float shift) {
  const __m512 shift_vector = _mm512_set1_ps(shift);
  __m512 lanes = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(values + i), shift_vector));
    _mm512_storeu_ps(values + i, e);
    lanes = _mm512_add_ps(lanes, e);
  }
  if (i < n) {
    const __mmask16 tail = __mmask16((1u << (n - i)) - 1);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, values + i), shift_vector));
    _mm512_mask_storeu_ps(values + i, tail, e);
    lanes = _mm512_mask_add_ps(lanes, tail, lanes, e);
  }
  return combine_lanes16(lanes, [](float a, float b) { return a + b; });
}
}  // namespace detail
#endif

// max(init, x[0], ..., x[n−1]) of a row (lane_max; in 16 vector lanes where the CPU has AVX-512).
template <typename T>
T row_max(const T* x, int64_t n, T init) {
#if CCT_HAVE_AVX512_DISPATCH
  if constexpr (std::is_same_v<T, float>)
    if (cpu_has_avx512f()) return detail::lane_max_avx512(x, n, init);
#endif
  return lane_max(x, n, init);
}

// values[i] = exp(values[i] − shift) in place; returns Σᵢ values[i] (the softmax denominator), summed in
// an order that depends only on n.
template <typename T>
T exp_shifted_sum(T* values, int64_t n, T shift) {
  if (n <= 0) return T(0);
  if constexpr (std::is_same_v<T, float>) {
#if CCT_HAVE_AVX512_DISPATCH
    if (cpu_has_avx512f()) return detail::exp_shifted_sum_avx512(values, n, shift);
#endif
    using namespace Eigen::internal;
    const detail::FloatPacket shift_packet = pset1<detail::FloatPacket>(shift);
    detail::packet_map(n, values, nullptr, values,
                       [&](const detail::FloatPacket& x, const detail::FloatPacket&) { return pexp(psub(x, shift_packet)); });
    return lane_sum<float>(n, [values](int64_t i) { return values[i]; });
  } else {
    T sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += values[i] = std::exp(values[i] - shift);
    return sum;
  }
}

// out[i] = x·Φ(x) = ½·x·(1 + erf(x/√2)).
template <typename T>
void gelu_forward(const T* x, T* out, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    using namespace Eigen::internal;
    using P = detail::FloatPacket;
    const P half = pset1<P>(0.5f), one = pset1<P>(1.0f), inv_sqrt2 = pset1<P>(0.70710678118654752440f);
    detail::packet_map(n, x, nullptr, out, [&](const P& v, const P&) {
      return pmul(pmul(half, v), padd(one, perf(pmul(v, inv_sqrt2))));
    });
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = T(0.5) * x[i] * (T(1) + std::erf(x[i] * T(0.70710678118654752440)));
  }
}

// grad_x[i] = grad[i]·(Φ(x) + x·φ(x)), φ(x) = e^(−x²/2)/√(2π).
template <typename T>
void gelu_backward(const T* grad, const T* x, T* grad_x, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    using namespace Eigen::internal;
    using P = detail::FloatPacket;
    const P half = pset1<P>(0.5f), minus_half = pset1<P>(-0.5f), one = pset1<P>(1.0f),
            inv_sqrt2 = pset1<P>(0.70710678118654752440f), inv_sqrt_2pi = pset1<P>(0.39894228040143267794f);
    detail::packet_map(n, x, grad, grad_x, [&](const P& v, const P& g) {
      const P cdf = pmul(half, padd(one, perf(pmul(v, inv_sqrt2))));
      const P pdf = pmul(pexp(pmul(minus_half, pmul(v, v))), inv_sqrt_2pi);
      return pmul(g, padd(cdf, pmul(v, pdf)));
    });
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const T cdf = T(0.5) * (T(1) + std::erf(x[i] * T(0.70710678118654752440)));
      const T pdf = std::exp(T(-0.5) * x[i] * x[i]) * T(0.39894228040143267794);
      grad_x[i] = grad[i] * (cdf + x[i] * pdf);
    }
  }
}

}  // namespace cct::kernels
