// Vectorised elementwise math on contiguous arrays: exp and erf through Eigen's SIMD kernels (not public API).
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

// values[i] = exp(values[i] − shift) in place; returns Σᵢ values[i] (the softmax denominator), summed in
// an order that depends only on n.
template <typename T>
T exp_shifted_sum(T* values, int64_t n, T shift) {
  if (n <= 0) return T(0);
  if constexpr (std::is_same_v<T, float>) {
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
