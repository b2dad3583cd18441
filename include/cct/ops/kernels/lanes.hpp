// Row reductions over independent lanes (not public API): sums and maxima of short rows (layer-norm
// statistics, softmax denominators, attention's backward dot products).
//
// One running sum makes every add wait for the previous one: a row of 128 floats took ~4 cycles per
// element. With 16 lanes the adds pipeline and vectorise, and the lanes are combined pairwise in a fixed
// order that depends only on the row's length, so results never depend on the thread count.
#pragma once

#include <cstdint>

namespace cct::kernels {

constexpr int64_t kReductionLanes = 16;

// Σ_j term(j) for j < n, accumulated in `Acc`.
template <typename Acc, typename Term>
inline Acc lane_sum(int64_t n, const Term& term) {
  Acc lanes[kReductionLanes] = {};
  int64_t j = 0;
  for (; j + kReductionLanes <= n; j += kReductionLanes)
    for (int64_t k = 0; k < kReductionLanes; ++k) lanes[k] += term(j + k);
  for (int64_t k = 0; j < n; ++j, ++k) lanes[k] += term(j);
  for (int64_t width = kReductionLanes / 2; width > 0; width /= 2)
    for (int64_t k = 0; k < width; ++k) lanes[k] += lanes[k + width];
  return lanes[0];
}

// max(init, x[0], ..., x[n−1]) with std::max's rule (a NaN element never replaces the running maximum),
// so the result equals a left-to-right std::max fold (up to the sign of a zero maximum).
template <typename T>
inline T lane_max(const T* x, int64_t n, T init) {
  T lanes[kReductionLanes];
  for (int64_t k = 0; k < kReductionLanes; ++k) lanes[k] = init;
  int64_t j = 0;
  for (; j + kReductionLanes <= n; j += kReductionLanes)
    for (int64_t k = 0; k < kReductionLanes; ++k) lanes[k] = lanes[k] < x[j + k] ? x[j + k] : lanes[k];
  for (int64_t k = 0; j < n; ++j, ++k) lanes[k] = lanes[k] < x[j] ? x[j] : lanes[k];
  for (int64_t width = kReductionLanes / 2; width > 0; width /= 2)
    for (int64_t k = 0; k < width; ++k) lanes[k] = lanes[k] < lanes[k + width] ? lanes[k + width] : lanes[k];
  return lanes[0];
}

}  // namespace cct::kernels
