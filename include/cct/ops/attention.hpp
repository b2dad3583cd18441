// Fused multi-head self-attention on a packed qkv tensor: softmax(q kᵀ · scale) v per head, with
// attention dropout and an optional key padding mask, forward and backward in one place.
//
// Layout, as the reference's `qkv.reshape(B, N, 3, H, hd)`: qkv is (B, N, 3D); q, k and v are columns
// [0, D), [D, 2D), [2D, 3D) and head h uses columns [h·hd, (h+1)·hd) of each. The output (B, N, D) puts
// head h's result at columns [h·hd, (h+1)·hd) (heads concatenated). Each (batch, head) pair is one
// independent task: threads split the B·H tasks and run single-threaded GEMMs on strided views, so
// no q/k/v copies or permutes are ever materialised.
//
// Saved for backward: qkv, the attention probabilities P (B, H, N, N) before dropout, and the dropout
// decisions as bits. Under bf16, qkv is saved as a bf16 copy (half the memory): q, k and v enter only
// bf16 products, which round them anyway, so the gradients are the same bit for bit.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "../autograd/node.hpp"
#include "../core/precision.hpp"
#include "kernels/gemm.hpp"
#include "kernels/gemm_bf16.hpp"
#include "kernels/vector_math.hpp"
#include "registry.hpp"

namespace cct {

struct AttentionOptions {
  int64_t num_heads = 1;
  double dropout = 0.0;  // on the attention probabilities, only when training
  bool training = false;
};

namespace detail {
// Keep decision and scale for attention dropout at flat index i of (B, H, N, N).
struct AttentionDropout {
  double p = 0;
  uint64_t seed = 0, base = 0;
  bool active() const { return p > 0; }
  // keep[i] = 1 where element offset + i survives (draw < (1 − p)·2⁵³), else 0, for i < n. Drawn once in
  // the forward and saved for the backward: drawing each element three times, one at a time, was most
  // of the attention backward. The loop has no branch, so it vectorises.
  void fill_keep(uint64_t offset, int64_t n, uint8_t* keep) const {
    const uint64_t threshold = p >= 1 ? 0 : static_cast<uint64_t>((1.0 - p) * 9007199254740992.0);  // 2^53
    const uint64_t first = seed + (base + offset + 1) * Generator::kGolden;
    for (int64_t i = 0; i < n; ++i)
      keep[i] = (Generator::mix(first + static_cast<uint64_t>(i) * Generator::kGolden) >> 11) < threshold;
  }
  // The decisions saved between forward and backward are bits (bytes at the rate the forward draws
  // them would be 33 MB per CCT-7 layer at batch 128; bits are 4 MB): n keep flags into ⌈n/8⌉ bytes
  // and back.
  // Eight 0/1 bytes at a time through one 64-bit word each way (the multiply gathers byte k's bit into
  // bit k; the mask and add spread bit k back to byte k), so neither direction costs a loop per bit.
  static void pack_keep(const uint8_t* keep, int64_t n, uint8_t* bits) {
    int64_t byte = 0;
    for (; byte * 8 + 8 <= n; ++byte) {
      uint64_t word;
      std::memcpy(&word, keep + byte * 8, 8);
      bits[byte] = static_cast<uint8_t>((word * 0x0102040810204080ull) >> 56);
    }
    if (byte * 8 < n) {
      uint8_t packed = 0;
      for (int64_t k = 0; byte * 8 + k < n; ++k) packed |= static_cast<uint8_t>(keep[byte * 8 + k] << k);
      bits[byte] = packed;
    }
  }
  static void unpack_keep(const uint8_t* bits, int64_t n, uint8_t* keep) {
    int64_t byte = 0;
    for (; byte * 8 + 8 <= n; ++byte) {
      const uint64_t spread = (bits[byte] * 0x0101010101010101ull) & 0x8040201008040201ull;
      const uint64_t word = ((spread + 0x7f7f7f7f7f7f7f7full) >> 7) & 0x0101010101010101ull;
      std::memcpy(keep + byte * 8, &word, 8);
    }
    for (int64_t i = byte * 8; i < n; ++i) keep[i] = (bits[i >> 3] >> (i & 7)) & 1;
  }
  // The factor of a kept element, 1/(1 − p) (inverted dropout); a dropped one is multiplied by 0.
  template <typename T>
  T kept_scale() const {
    return p >= 1 ? T(0) : static_cast<T>(1.0 / (1.0 - p));
  }
  // out[i] = x[i] · (keep[i] ? kept : 0), written as a product with the 0/1 flag: the same values, and
  // no branch, so it vectorises (the select compiled to a scalar branch per element, about 40% of
  // CCT-2's attention forward).
  template <typename T>
  static void apply(const T* x, const uint8_t* keep, T kept, int64_t n, T* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * (static_cast<T>(keep[i]) * kept);
  }
};

// One head's backward product whose B operand is q, k or v: floats at the forward's precision, or
// (bf16 training) the saved bf16 patterns, which the bf16 kernel reads as they are (no widening).
template <typename T>
void head_product(Precision precision, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc) {
  kernels::gemm_serial<T>(precision, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, T(0), C, ldc);
}
inline void head_product(Precision, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                         const float* A, int64_t lda, const uint16_t* B, int64_t ldb, float* C, int64_t ldc) {
  kernels::gemm_bf16_serial(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, 0.0f, C, ldc);
}
}  // namespace detail

// qkv: (B, N, 3D). key_padding_mask: undefined, or (B, N) with nonzero for real tokens and 0 for
// padding; padded keys get zero attention weight. If `probabilities_out` is given it receives the
// attention probabilities (B, H, N, N) (for visualisation).
template <typename T>
Tensor<T> multi_head_attention(const Tensor<T>& qkv, const AttentionOptions& options,
                               const Tensor<uint8_t>& key_padding_mask = Tensor<uint8_t>(),
                               Generator& gen = default_generator(), Tensor<T>* probabilities_out = nullptr) {
  CCT_CHECK_SHAPE(qkv.dim() == 3 && qkv.size(2) % 3 == 0, "multi_head_attention: qkv must be (B, N, 3D), got ",
                  shape_str(qkv.shape()));
  const int64_t B = qkv.size(0), N = qkv.size(1), D = qkv.size(2) / 3, H = options.num_heads;
  CCT_CHECK_SHAPE(H > 0 && D % H == 0, "multi_head_attention: embedding dim ", D, " is not divisible by ",
                  H, " heads");
  CCT_CHECK(options.dropout >= 0 && options.dropout <= 1, "multi_head_attention: dropout must be in [0, 1], got ",
            options.dropout);
  const bool masked = key_padding_mask.defined();
  if (masked)
    CCT_CHECK_SHAPE(key_padding_mask.shape() == Shape({B, N}), "multi_head_attention: key_padding_mask must be ",
                    shape_str({B, N}), ", got ", shape_str(key_padding_mask.shape()));
  const int64_t hd = D / H, row = 3 * D;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(hd)));

  // q·kᵀ and P·v (and their backward products) follow the precision of the forward; softmax stays fp32.
  const Precision precision = current_precision();

  detail::AttentionDropout drop;
  if (options.training && options.dropout > 0) {
    drop.p = options.dropout;
    drop.seed = gen.seed();
    drop.base = gen.reserve(static_cast<uint64_t>(B * H * N * N));
  }

  // Backward (and a caller who asks for them) needs every probability; plain inference keeps only one
  // (N, N) block per thread, which stays in cache instead of streaming B·H·N² values through memory.
  const bool recording = autograd::any_requires_grad<T>({&qkv});
  const bool keep_probabilities = recording || probabilities_out != nullptr;
  Tensor<T> probabilities = keep_probabilities ? Tensor<T>::empty({B, H, N, N}) : Tensor<T>();
  // The keep decisions of attention dropout, saved for the backward: one bit per probability.
  const int64_t mask_bytes = (N * N + 7) / 8;
  const Tensor<uint8_t> keep_mask =
      drop.active() && recording ? Tensor<uint8_t>::empty({B * H * mask_bytes}) : Tensor<uint8_t>();
  bool save_bf16 = false;
  if constexpr (std::is_same_v<T, float>) save_bf16 = recording && precision == Precision::kBF16 && detail::save_bf16_operands_flag().load();
  const Tensor<uint16_t> qkv_bf16 = save_bf16 ? Tensor<uint16_t>::empty(qkv.shape()) : Tensor<uint16_t>();
  Tensor<T> out = Tensor<T>::empty({B, N, D});
  const T* base_qkv = qkv.data();
  const uint8_t* mask = masked ? key_padding_mask.data() : nullptr;
  parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    // Scratch from the storage cache (no page faults per step).
    const Tensor<T> dropped = drop.active() ? Tensor<T>::empty({N * N}) : Tensor<T>();
    const Tensor<uint8_t> keep_scratch = drop.active() ? Tensor<uint8_t>::empty({N * N}) : Tensor<uint8_t>();
    const Tensor<T> scores = keep_probabilities ? Tensor<T>() : Tensor<T>::empty({N * N});
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / H, h = task % H;
      const T* q = base_qkv + b * N * row + h * hd;
      const T* k = q + D;
      const T* v = q + 2 * D;
      if constexpr (std::is_same_v<T, float>) {
        if (save_bf16 && h == 0) {
          // The whole (N, 3D) block of batch item b at its first head, in one contiguous pass instead of
          // each head's 32-float slivers of rows 3D apart; whichever thread runs head 0 of b does it, so
          // each value is narrowed exactly once (the forward itself reads only the float qkv).
          kernels::narrow_to_bf16_serial(base_qkv + b * N * row, N * row, qkv_bf16.data() + b * N * row);
        }
      }
      T* P = keep_probabilities ? probabilities.data() + task * N * N : scores.data();
      // S = q kᵀ · scale, then a row softmax over the keys.
      kernels::gemm_serial<T>(precision, false, true, N, N, hd, scale, q, row, k, row, T(0), P, N);
      for (int64_t i = 0; i < N; ++i) {
        T* p_row = P + i * N;
        constexpr T minus_infinity = -std::numeric_limits<T>::infinity();
        if (mask)
          for (int64_t j = 0; j < N; ++j)
            if (!mask[b * N + j]) p_row[j] = minus_infinity;
        T max_value = kernels::row_max(p_row, N, minus_infinity);
        if (max_value == minus_infinity) max_value = T(0);  // every key masked: no −∞ − (−∞)
        T sum = kernels::exp_shifted_sum(p_row, N, max_value);
        if (mask) {
          // Padded keys get exactly zero weight (the SIMD exp of −∞ is a tiny denormal, not 0).
          sum = T(0);
          for (int64_t j = 0; j < N; ++j) {
            if (!mask[b * N + j]) p_row[j] = T(0);
            sum += p_row[j];
          }
        }
        const T inv = sum > T(0) ? T(1) / sum : T(0);  // a row with every key masked attends to nothing
        for (int64_t j = 0; j < N; ++j) p_row[j] *= inv;
      }
      const T* weights = P;
      if (drop.active()) {
        uint8_t* keep = keep_scratch.data();
        drop.fill_keep(static_cast<uint64_t>(task * N * N), N * N, keep);
        if (keep_mask.defined()) detail::AttentionDropout::pack_keep(keep, N * N, keep_mask.data() + task * mask_bytes);
        const T kept = drop.kept_scale<T>();
        detail::AttentionDropout::apply(P, keep, kept, N * N, dropped.data());
        weights = dropped.data();
      }
      // o = weights · v, written into this head's columns of the output.
      kernels::gemm_serial<T>(precision, false, false, N, hd, N, T(1), weights, N, v, row, T(0), out.data() + b * N * D + h * hd, D);
    }
  });
  if (probabilities_out) *probabilities_out = probabilities.detach();
  if (!recording) return out;

  // ∂v = Pdᵀ g;  ∂Pd = g vᵀ;  ∂P = ∂Pd ⊙ dropout;  ∂S = P ⊙ (∂P − rowsum(∂P ⊙ P));
  // ∂q = ∂S k · scale;  ∂k = ∂Sᵀ q · scale.
  autograd::record<T>(
        "multi_head_attention", out, {qkv},
        [qkv = save_bf16 ? Tensor<T>() : qkv.detach(), qkv_bf16, probabilities, keep_mask, mask_bytes, precision, drop, B,
         N, D, H, hd, scale](const Tensor<T>& g, const autograd::NeedsGrad&) {
          const int64_t row = 3 * D;
          Tensor<T> grad_qkv = Tensor<T>::empty({B, N, row});
          parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
            const Tensor<T> dP = Tensor<T>::empty({N * N});
            const Tensor<T> dropped = drop.active() ? Tensor<T>::empty({N * N}) : Tensor<T>();
            const Tensor<uint8_t> keep_scratch = drop.active() ? Tensor<uint8_t>::empty({N * N}) : Tensor<uint8_t>();
            for (int64_t task = begin; task < end; ++task) {
              const int64_t b = task / H, h = task % H;
              const int64_t offset = b * N * row + h * hd;  // of this head's q columns in qkv
              T* dq = grad_qkv.data() + offset;
              T* dk = dq + D;
              T* dv = dq + 2 * D;
              const T* gb = g.data() + b * N * D + h * hd;
              const T* P = probabilities.data() + task * N * N;
              const uint8_t* keep = nullptr;
              if (drop.active()) {
                detail::AttentionDropout::unpack_keep(keep_mask.data() + task * mask_bytes, N * N, keep_scratch.data());
                keep = keep_scratch.data();
              }
              const T kept = drop.kept_scale<T>();
              const T* weights = P;
              if (keep) {
                detail::AttentionDropout::apply(P, keep, kept, N * N, dropped.data());
                weights = dropped.data();
              }
              kernels::gemm_serial<T>(precision, true, false, N, hd, N, T(1), weights, N, gb, D, T(0), dv, row);
              // The products with q, k and v (k at q + D, v at q + 2D, rows `row` apart): floats, or under
              // bf16 the saved patterns themselves.
              auto products_with_qkv = [&](const auto* q) {
                detail::head_product(precision, false, true, N, N, hd, T(1), gb, D, q + 2 * D, row, dP.data(), N);
                for (int64_t i = 0; i < N; ++i) {
                  T* d_row = dP.data() + i * N;
                  const T* p_row = P + i * N;
                  if (keep) detail::AttentionDropout::apply(d_row, keep + i * N, kept, N, d_row);
                  const T dot = kernels::lane_sum<T>(N, [d_row, p_row](int64_t j) { return d_row[j] * p_row[j]; });
                  for (int64_t j = 0; j < N; ++j) d_row[j] = p_row[j] * (d_row[j] - dot);
                }
                detail::head_product(precision, false, false, N, hd, N, scale, dP.data(), N, q + D, row, dq, row);
                detail::head_product(precision, true, false, N, hd, N, scale, dP.data(), N, q, row, dk, row);
              };
              if constexpr (std::is_same_v<T, float>) {
                if (qkv_bf16.defined()) {
                  products_with_qkv(qkv_bf16.data() + offset);
                  continue;
                }
              }
              products_with_qkv(qkv.data() + offset);
            }
          });
          return autograd::GradList<T>{grad_qkv};
        });
  return out;
}

// The names this header's backward nodes carry (ops/registry.hpp; each has a gradient check).
CCT_REGISTER_OPS(attention, "multi_head_attention");

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPS_ATTENTION_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE Tensor<T> multi_head_attention<T>(const Tensor<T>&, const AttentionOptions&, const Tensor<uint8_t>&, Generator&, Tensor<T>*);
CCT_FOR_FLOATING_TYPES(CCT_OPS_ATTENTION_TEMPLATES)
#undef CCT_OPS_ATTENTION_TEMPLATES
#endif

}  // namespace cct
