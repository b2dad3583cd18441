// gemm_fp32_avx512: the fp32 product on AVX-512 for builds compiled without it (not public API).
//
//   C = alpha · op(A) · op(B) + beta · C,   each C element summed over k in order with fused multiply-adds
//
// A consumer's own project gets no -march flag, so Eigen compiles its GEMM for SSE2 and the product ran
// several times slower than in a -march=native build. This kernel is compiled for AVX-512 with target
// attributes and chosen at run time from CPUID, so such builds still multiply at AVX-512 speed. Builds
// that already target AVX-512 (-march=native on such a CPU) keep Eigen's kernel: their results do not
// change. Blocking: op(B) is packed per (kKc × kNc) block into panels of 64 columns; op(A) is read in
// place, 6 rows at a time; a 6×64 tile of 24 zmm accumulators walks the depth. Each element of C gets
// the same operations wherever it lies in a block, so splitting C across threads never changes it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "cpu_features.hpp"
#include "simd_loads.hpp"

namespace cct::kernels {

// Whether float products take this kernel: on every CPU that has AVX512F, whatever the build targets.
// In builds without AVX-512 it replaces Eigen's SSE kernel; in -march=native builds it also beats
// Eigen's own AVX-512 kernel on cct's shapes (bench_model cct_2_3x2_32 fp32, batch 128, 2 threads, three
// alternating rounds on 2026-12-02: training 807-877 against 604-733 img/s, inference 2482-2772 against
// 1869-2339; cct_7_3x1_32 inference 85-87 against 65-73), and native and portable builds then multiply
// floats alike.
inline bool fp32_avx512_dispatch() { return cpu_has_avx512f(); }

#if CCT_HAVE_AVX512_DISPATCH
namespace detail {

constexpr int64_t kF32Mr = 6;     // rows of the register tile
constexpr int64_t kF32Nr = 64;    // columns of the register tile (4 zmm)
constexpr int64_t kF32Kc = 256;   // depth of a block: a 64-column B panel is 64 KiB
constexpr int64_t kF32Nc = 512;   // columns of a packed B block (512 KiB, in L2)

// The packed op(B) block, per thread for its lifetime (see gemm_workspace in gemm.hpp for why).
inline float* fp32_panel_workspace(int64_t size) {
  struct Buffer {
    void* data = nullptr;
    int64_t capacity = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffer;
  const int64_t bytes = ((size * static_cast<int64_t>(sizeof(float)) + 63) / 64) * 64;
  if (buffer.capacity < bytes) {
    std::free(buffer.data);
    buffer.data = nullptr;
    buffer.capacity = 0;
    buffer.data = std::aligned_alloc(64, static_cast<size_t>(bytes));
    if (buffer.data == nullptr) throw std::bad_alloc();
    buffer.capacity = bytes;
  }
  return static_cast<float*>(buffer.data);
}

// Transposes a 16×16 block of 32-bit values held one row per register: afterwards r[j] is column j.
// (The zero-masked forms with every lane selected are the plain instructions; GCC 12's unmasked
// intrinsics start from an "undefined" register that -Wall reports as used uninitialized.)
CCT_TARGET_AVX512 inline void transpose_16x16(__m512i r[16]) {
  const __mmask16 all16 = 0xffff;
  const __mmask8 all8 = 0xff;
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_maskz_unpacklo_epi32(all16, r[i], r[i + 1]);
    t[i + 1] = _mm512_maskz_unpackhi_epi32(all16, r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_maskz_unpacklo_epi64(all8, t[i], t[i + 2]);
    r[i + 1] = _mm512_maskz_unpackhi_epi64(all8, t[i], t[i + 2]);
    r[i + 2] = _mm512_maskz_unpacklo_epi64(all8, t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_maskz_unpackhi_epi64(all8, t[i + 1], t[i + 3]);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_maskz_shuffle_i32x4(all16, r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_maskz_shuffle_i32x4(all16, r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_maskz_shuffle_i32x4(all16, r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_maskz_shuffle_i32x4(all16, r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_maskz_shuffle_i32x4(all16, t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_maskz_shuffle_i32x4(all16, t[i], t[i + 8], 0xdd);
  }
}

CCT_TARGET_AVX512 inline __mmask16 first_lanes(int64_t count) {
  return count >= 16 ? __mmask16(0xffff) : count <= 0 ? __mmask16(0) : __mmask16((1u << count) - 1);
}

// Packs op(B)'s block (depth × cols, cols ≤ 64) as dst[k·64 + j], zero beyond cols.
CCT_TARGET_AVX512 inline void pack_fp32_panel(const float* B, int64_t ldb, bool trans_b, int64_t depth, int64_t cols,
                                              float* dst) {
  if (!trans_b) {  // op(B)[k][j] = B[k·ldb + j]: rows copied
    for (int64_t k = 0; k < depth; ++k)
      for (int64_t j0 = 0; j0 < kF32Nr; j0 += 16)
        _mm512_store_ps(dst + k * kF32Nr + j0, load_floats(first_lanes(cols - j0), B + k * ldb + j0));
    return;
  }
  // op(B)[k][j] = B[j·ldb + k]: 16×16 blocks transposed in registers.
  for (int64_t j0 = 0; j0 < kF32Nr; j0 += 16) {
    const int64_t valid = cols - j0 < 0 ? 0 : std::min<int64_t>(16, cols - j0);
    for (int64_t k0 = 0; k0 < depth; k0 += 16) {
      const __mmask16 mask = first_lanes(depth - k0);
      __m512i r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = i < valid ? _mm512_castps_si512(load_floats(mask, B + (j0 + i) * ldb + k0)) : _mm512_setzero_si512();
      transpose_16x16(r);
      const int64_t count = std::min<int64_t>(16, depth - k0);
      for (int64_t k = 0; k < count; ++k) _mm512_store_si512(dst + (k0 + k) * kF32Nr + j0, r[k]);
    }
  }
}

// The register tile: C[Mr × 16·Nv] = alpha · Σ_k op(A)[r][k] · panel[k] + beta · C, op(A)[r][k] being
// a[r·a_row_step + k·a_depth_step]; the last vector's columns limited by last_mask; beta == 0 never reads C.
template <int Mr, int Nv>
CCT_TARGET_AVX512 void fp32_tile(int64_t depth, const float* a, int64_t a_row_step, int64_t a_depth_step,
                                 const float* panel, float* c, int64_t ldc, float alpha, float beta,
                                 __mmask16 last_mask) {
  __m512 acc[Mr][Nv];
  const float* a_rows[Mr];
#pragma GCC unroll 8
  for (int r = 0; r < Mr; ++r) {
    a_rows[r] = a + r * a_row_step;
#pragma GCC unroll 4
    for (int v = 0; v < Nv; ++v) acc[r][v] = _mm512_setzero_ps();
  }
  for (int64_t k = 0, a_offset = 0; k < depth; ++k, a_offset += a_depth_step) {
    __m512 b[Nv];
#pragma GCC unroll 4
    for (int v = 0; v < Nv; ++v) b[v] = _mm512_load_ps(panel + k * kF32Nr + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < Mr; ++r) {
      const __m512 a_value = _mm512_set1_ps(a_rows[r][a_offset]);
#pragma GCC unroll 4
      for (int v = 0; v < Nv; ++v) acc[r][v] = _mm512_fmadd_ps(a_value, b[v], acc[r][v]);
    }
  }
  const __m512 alpha_vec = _mm512_set1_ps(alpha), beta_vec = _mm512_set1_ps(beta);
#pragma GCC unroll 8
  for (int r = 0; r < Mr; ++r) {
    float* c_row = c + r * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < Nv; ++v) {
      const __mmask16 mask = v == Nv - 1 ? last_mask : __mmask16(0xffff);
      __m512 result = _mm512_mul_ps(acc[r][v], alpha_vec);
      if (beta != 0.0f) result = _mm512_fmadd_ps(load_floats(mask, c_row + 16 * v), beta_vec, result);
      _mm512_mask_storeu_ps(c_row + 16 * v, mask, result);
    }
  }
}

using Fp32Tile = void (*)(int64_t, const float*, int64_t, int64_t, const float*, float*, int64_t, float, float,
                          __mmask16);

template <int Mr>
constexpr Fp32Tile fp32_tile_with_rows(int vectors) {
  return vectors == 1 ? &fp32_tile<Mr, 1> : vectors == 2 ? &fp32_tile<Mr, 2> : vectors == 3 ? &fp32_tile<Mr, 3>
                                                                                           : &fp32_tile<Mr, 4>;
}

inline Fp32Tile fp32_tile_for(int64_t rows, int64_t vectors) {
  const int v = static_cast<int>(vectors);
  switch (rows) {
    case 1: return fp32_tile_with_rows<1>(v);
    case 2: return fp32_tile_with_rows<2>(v);
    case 3: return fp32_tile_with_rows<3>(v);
    case 4: return fp32_tile_with_rows<4>(v);
    case 5: return fp32_tile_with_rows<5>(v);
    default: return fp32_tile_with_rows<6>(v);
  }
}

// The whole product (M, N, K > 0) on one thread.
CCT_TARGET_AVX512 inline void gemm_fp32_avx512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                                               float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                                               float beta, float* C, int64_t ldc) {
  // op(A)[i][k] = A[i·lda + k], or A[k·lda + i] when transposed.
  const int64_t a_row_step = trans_a ? 1 : lda, a_depth_step = trans_a ? lda : 1;
  float* packed = fp32_panel_workspace(kF32Kc * ((std::min(N, kF32Nc) + kF32Nr - 1) / kF32Nr) * kF32Nr);
  for (int64_t jc = 0; jc < N; jc += kF32Nc) {
    const int64_t nc = std::min(kF32Nc, N - jc);
    for (int64_t pc = 0; pc < K; pc += kF32Kc) {
      const int64_t kc = std::min(kF32Kc, K - pc);
      const float beta_block = pc == 0 ? beta : 1.0f;  // later depth blocks add onto the first's result
      for (int64_t jr = 0; jr < nc; jr += kF32Nr) {
        const float* b_block = trans_b ? B + (jc + jr) * ldb + pc : B + pc * ldb + jc + jr;
        pack_fp32_panel(b_block, ldb, trans_b, kc, std::min(kF32Nr, nc - jr), packed + (jr / kF32Nr) * kc * kF32Nr);
      }
      for (int64_t ir = 0; ir < M; ir += kF32Mr) {
        const int64_t rows = std::min(kF32Mr, M - ir);
        const float* a_block = A + ir * a_row_step + pc * a_depth_step;
        for (int64_t jr = 0; jr < nc; jr += kF32Nr) {
          const int64_t cols = std::min(kF32Nr, nc - jr), vectors = (cols + 15) / 16;
          fp32_tile_for(rows, vectors)(kc, a_block, a_row_step, a_depth_step, packed + (jr / kF32Nr) * kc * kF32Nr,
                                       C + ir * ldc + jc + jr, ldc, alpha, beta_block,
                                       first_lanes(cols - 16 * (vectors - 1)));
        }
      }
    }
  }
}

}  // namespace detail
#endif  // CCT_HAVE_AVX512_DISPATCH

}  // namespace cct::kernels
