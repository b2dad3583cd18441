// gemm_bf16: C = alpha · op(A) · op(B) + beta · C with A and B rounded to bfloat16 and fp32
// accumulation, on row-major float buffers (not public API). Same arguments as gemm in gemm.hpp.
//
//   C[i][j] = alpha · Σ_k bf16(op(A)[i][k]) · bf16(op(B)[k][j]) + beta · C[i][j]
//   bf16(x): x rounded to nearest-even at 8 significant bits (relative error ≤ 2^-8); products are exact in fp32.
//
// Two paths, chosen at run time:
// - fast: AVX512_BF16 (`vdpbf16ps`: 16 fp32 lanes each += a[2l]·b[2l] + a[2l+1]·b[2l+1]), compiled with
//   target attributes so it needs no -march flag, and used when CPUID says the CPU has it. GotoBLAS
//   blocking: op(B) is packed per (kKc × kNc) block into panels of kNr = 64 columns, op(A) per
//   (kMc × kKc) block into panels of kMr = 6 rows when untransposed (row by row) and whole when
//   transposed (pair by pair across the block's rows), both as bf16 pairs along K (odd K padded with a
//   zero); a 6×64 register tile (24 zmm accumulators) walks the pairs. Packing buffers live per thread.
// - portable: plain C++ doing the same arithmetic in the same order (so the same results), one
//   element at a time; slower than plain fp32, and says so once.
//
// Each element of C is computed by the same sequence of operations wherever its row or column falls
// in a block, so splitting C across threads (as gemm does) never changes a result.
//
// Either operand may also be given as bf16 bit patterns (uint16_t, see narrow_to_bf16): an op that
// saves a bf16 copy of an operand for its backward (half the memory of fp32) passes that copy, forward
// and backward, and gets the same result bit for bit as from the float it was narrowed from, since
// rounding is then a no-op (and packing reads half the bytes).
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <new>
#include <type_traits>

#include "../../core/precision.hpp"
#include "gemm.hpp"  // and through it gemm_fp32_avx512.hpp: CPUID, the 16×16 transpose
#include "simd_loads.hpp"

// The same compilers and CPUs as the fp32 AVX-512 kernel (GCC ≥ 10 and Clang ≥ 9 know AVX512_BF16).
#if CCT_HAVE_AVX512_DISPATCH
#define CCT_HAVE_BF16_KERNEL 1
#define CCT_TARGET_AVX512_BF16 __attribute__((target("avx512f,avx512bf16,avx512bw,avx512vl,fma")))
#else
#define CCT_HAVE_BF16_KERNEL 0
#endif

namespace cct::kernels {

// x rounded to the nearest bfloat16 (ties to even), returned as a float; NaN stays NaN, and values
// below 2^-126 become ±0, as the AVX512_BF16 conversion makes them (it treats denormals as zero).
inline float round_to_bf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  if ((bits & 0x7f800000u) == 0) {
    bits &= 0x80000000u;
  } else if ((bits & 0x7fffffffu) > 0x7f800000u) {
    bits |= 0x00400000u;  // quiet NaN: truncating must not turn it into infinity
  } else {
    bits += 0x7fffu + ((bits >> 16) & 1u);
  }
  bits &= 0xffff0000u;
  std::memcpy(&x, &bits, sizeof bits);
  return x;
}

// Whether this CPU (and the OS, which must save the zmm registers) supports AVX512F/BW/VL and
// AVX512_BF16. Read once from CPUID: leaf 7 subleaf 1 EAX bit 5 is AVX512_BF16.
inline bool cpu_has_avx512_bf16() {
#if CCT_HAVE_BF16_KERNEL
  static const bool supported = [] {
    if (!cpu_has_avx512f()) return false;  // includes the OS saving the zmm registers
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx);
    const unsigned max_subleaf = eax;
    if (!(ebx & (1u << 30)) || !(ebx & (1u << 31)) || max_subleaf < 1) return false;  // AVX512BW, AVX512VL
    __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx);
    return (eax & (1u << 5)) != 0;
  }();
  return supported;
#else
  return false;
#endif
}

// The bf16 bit pattern of round_to_bf16(x), and back: the upper 16 bits of the float.
inline uint16_t bf16_bits(float x) {
  x = round_to_bf16(x);
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return static_cast<uint16_t>(bits >> 16);
}
inline float bf16_to_float(uint16_t bits) {
  const uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float x;
  std::memcpy(&x, &widened, sizeof x);
  return x;
}

namespace detail {
// Forcing the portable path: tests compare the two paths, and CCT_FORCE_PORTABLE_BF16=1 lets anyone
// see what a CPU without AVX512_BF16 would compute.
inline std::atomic<bool>& force_portable_bf16_flag() {
  static std::atomic<bool> forced{[] {
    const char* value = std::getenv("CCT_FORCE_PORTABLE_BF16");
    return value != nullptr && value[0] != '\0' && std::strcmp(value, "0") != 0;
  }()};
  return forced;
}
inline std::atomic<bool>& portable_bf16_notice_printed() {
  static std::atomic<bool> printed{false};
  return printed;
}
}  // namespace detail

inline void force_portable_bf16(bool forced) { detail::force_portable_bf16_flag().store(forced); }

// Whether bf16 products run the AVX512_BF16 kernel (else the slower portable path).
inline bool bf16_fast_path_available() { return cpu_has_avx512_bf16() && !detail::force_portable_bf16_flag().load(); }

// Printed once per process, the first time a bf16 product runs the portable path.
inline void note_portable_bf16() {
  if (detail::portable_bf16_notice_printed().exchange(true)) return;
  if (cpu_has_avx512_bf16())
    std::cerr << "cct: bf16 products run the portable path (forced), which is slower than fp32\n";
  else
    std::cerr << "cct: this CPU has no AVX512_BF16, so bf16 products run a portable path that is slower than fp32 "
                 "here (fp32 is the faster choice on this CPU)\n";
}

namespace detail {

// Per-thread buffers for the packed or rounded operands, kept for the thread's lifetime (see
// gemm_workspace in gemm.hpp for why), 64-byte aligned so packed rows never straddle cache lines.
template <typename T>
T* bf16_workspace(int slot, int64_t size) {
  struct Buffer {
    void* data = nullptr;
    int64_t capacity = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffers[2];
  Buffer& buffer = buffers[slot];
  const int64_t bytes = ((size * static_cast<int64_t>(sizeof(T)) + 63) / 64) * 64;
  if (buffer.capacity < bytes) {
    std::free(buffer.data);
    buffer.data = nullptr;
    buffer.capacity = 0;
    buffer.data = std::aligned_alloc(64, static_cast<size_t>(bytes));
    if (buffer.data == nullptr) throw std::bad_alloc();
    buffer.capacity = bytes;
  }
  return static_cast<T*>(buffer.data);
}

constexpr int64_t kBf16Kc = 512;  // depth of a block (256 pairs); measured a little faster than 256

// Portable path: the same arithmetic as the AVX512_BF16 kernel, one element at a time. op(A) and op(B)
// are rounded into contiguous copies; per depth block, each pair adds its odd product, then its even
// one, to an fp32 accumulator (what `vdpbf16ps` does per lane; the products are exact, so fused or
// not makes no difference), and the block's sum is scaled into C as the kernel does. The results
// equal the fast path's bit for bit (barring values below 2^-126, which the hardware flushes to 0).
// A B element as the rounded float the products use (a bf16 pattern is one already).
inline float rounded_operand(float x) { return round_to_bf16(x); }
inline float rounded_operand(uint16_t bits) { return bf16_to_float(bits); }

template <typename ASource, typename BSource>
void gemm_bf16_portable(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const ASource* A,
                        int64_t lda, const BSource* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  float* a_rounded = bf16_workspace<float>(0, M * K);      // op(A), M × K
  float* b_rounded = bf16_workspace<float>(1, K * N + N);  // op(B), K × N, then one accumulator row
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) a_rounded[i * K + k] = rounded_operand(trans_a ? A[k * lda + i] : A[i * lda + k]);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) b_rounded[k * N + j] = rounded_operand(trans_b ? B[j * ldb + k] : B[k * ldb + j]);
  float* sums = b_rounded + K * N;
  for (int64_t block = 0; block < K; block += kBf16Kc) {
    const int64_t block_end = std::min(K, block + kBf16Kc);
    const float beta_block = block == 0 ? beta : 1.0f;
    for (int64_t i = 0; i < M; ++i) {
      const float* a_row = a_rounded + i * K;
      std::fill(sums, sums + N, 0.0f);
      for (int64_t k = block; k < block_end; k += 2) {
        if (k + 1 < block_end) {
          const float a_odd = a_row[k + 1];
          const float* b_odd = b_rounded + (k + 1) * N;
          for (int64_t j = 0; j < N; ++j) sums[j] += a_odd * b_odd[j];
        }
        const float a_even = a_row[k];
        const float* b_even = b_rounded + k * N;
        for (int64_t j = 0; j < N; ++j) sums[j] += a_even * b_even[j];
      }
      float* c_row = C + i * ldc;
      for (int64_t j = 0; j < N; ++j)
        c_row[j] = beta_block == 0.0f ? alpha * sums[j] : std::fma(c_row[j], beta_block, alpha * sums[j]);
    }
  }
}

#if CCT_HAVE_BF16_KERNEL

constexpr int64_t kBf16Mr = 6;          // rows of the register tile
constexpr int64_t kBf16Nv = 4;          // zmm vectors (of 16 columns) across the register tile
constexpr int64_t kBf16Nr = 16 * kBf16Nv;
constexpr int64_t kBf16Mc = 192;        // rows of a packed A block (192 KiB, in L2)
constexpr int64_t kBf16Nc = 1024;       // columns of a packed B block (1 MiB at most)

// Packing: a (lanes × depth) slice of a float matrix, x(l, k) = src[l·lane_stride + k·depth_stride], into
// bf16 pairs along depth, pair(l, p) = bf16(x(l, 2p)) | bf16(x(l, 2p+1)) << 16 (0 beyond depth). Three
// cases, by which neighbours are adjacent in memory and which layout the tile reads:

// 16 floats from `row` (count of them valid) rounded to bf16 pairs: dword q of the result is the pair
// (row[2q], row[2q+1]); `count` is the number of floats left, so a missing odd partner reads as 0.
CCT_TARGET_AVX512_BF16 inline __m512i convert_pairs(const float* row, int64_t count) {
  const __mmask16 low_mask = count >= 16 ? __mmask16(0xffff) : __mmask16((1u << count) - 1);
  const __mmask16 high_mask = count >= 32   ? __mmask16(0xffff)
                              : count <= 16 ? __mmask16(0)
                                            : __mmask16((1u << (count - 16)) - 1);
  const __m512 low = load_floats(low_mask, row);
  const __m512 high = load_floats(high_mask, row + 16);
  return (__m512i)_mm512_cvtne2ps_pbh(high, low);
}
// The same from bf16 patterns: already pairs in memory, one masked load.
CCT_TARGET_AVX512_BF16 inline __m512i convert_pairs(const uint16_t* row, int64_t count) {
  const __mmask32 mask = count >= 32 ? __mmask32(0xffffffffu) : __mmask32((1ull << count) - 1);
  return load_words(mask, row);
}

// Lanes l0 .. l0 + 15 of two rows (those in `mask`, the rest 0) rounded to bf16: row `even`'s in words
// 0-15, row `odd`'s in words 16-31 (zero where `odd` is null).
CCT_TARGET_AVX512_BF16 inline __m512i two_rows_as_words(const float* even, const float* odd, __mmask16 mask) {
  const __m512 x = load_floats(mask, even);
  const __m512 y = odd ? load_floats(mask, odd) : _mm512_setzero_ps();
  return (__m512i)_mm512_cvtne2ps_pbh(y, x);  // one conversion of both rows
}
CCT_TARGET_AVX512_BF16 inline __m512i two_rows_as_words(const uint16_t* even, const uint16_t* odd, __mmask16 mask) {
  const __m256i x = load_words(mask, even);
  const __m256i y = odd ? load_words(mask, odd) : _mm256_setzero_si256();
  return _mm512_inserti64x4(_mm512_castsi256_si512(x), y, 1);
}

// Pairs adjacent in memory (depth_stride 1), lane by lane: dst[l·pairs + p]. Plain vector stores; the
// tile reads each lane's pairs as a stream (op(A) untransposed).
template <typename Source>
CCT_TARGET_AVX512_BF16 inline void pack_pairs_by_lane(const Source* src, int64_t lane_stride, int64_t lanes,
                                                      int64_t depth, uint32_t* dst) {
  const int64_t pairs = (depth + 1) / 2;
  for (int64_t l = 0; l < lanes; ++l) {
    const Source* row = src + l * lane_stride;
    for (int64_t p0 = 0; p0 < pairs; p0 += 16) {
      const int64_t count = pairs - p0 < 16 ? pairs - p0 : 16;
      _mm512_mask_storeu_epi32(dst + l * pairs + p0, __mmask16((1u << count) - 1),
                               convert_pairs(row + 2 * p0, depth - 2 * p0));
    }
  }
}

// Pairs adjacent in memory, interleaved by pair: dst[p·width + l] (op(B) transposed). Sixteen lanes at a
// time are converted and transposed in registers (16×16 dwords), so every store is a full vector.
template <typename Source>
CCT_TARGET_AVX512_BF16 inline void pack_pairs_transposing(const Source* src, int64_t lane_stride, int64_t lanes,
                                                          int64_t width, int64_t depth, uint32_t* dst) {
  const int64_t pairs = (depth + 1) / 2;
  for (int64_t l0 = 0; l0 < width; l0 += 16) {
    const int64_t valid = lanes - l0 <= 0 ? 0 : (lanes - l0 < 16 ? lanes - l0 : 16);
    const int64_t stored = width - l0 < 16 ? width - l0 : 16;
    const __mmask16 store_mask = stored >= 16 ? __mmask16(0xffff) : __mmask16((1u << stored) - 1);
    for (int64_t p0 = 0; p0 < pairs; p0 += 16) {
      __m512i r[16];  // r[i]: lane l0 + i, pairs p0 .. p0 + 15
      for (int i = 0; i < 16; ++i)
        r[i] = i < valid ? convert_pairs(src + (l0 + i) * lane_stride + 2 * p0, depth - 2 * p0) : _mm512_setzero_si512();
      transpose_16x16(r);
      // r[j] now holds pair p0 + j of the sixteen lanes.
      const int64_t count = pairs - p0 < 16 ? pairs - p0 : 16;
      for (int j = 0; j < count; ++j) _mm512_mask_storeu_epi32(dst + (p0 + j) * width + l0, store_mask, r[j]);
    }
  }
}

// Lanes adjacent in memory (lane_stride 1), interleaved by pair: dst[p·width + l] (op(A) transposed,
// op(B) untransposed): the pair's two floats come from neighbouring depth rows.
template <typename Source>
CCT_TARGET_AVX512_BF16 inline void pack_pairs_across_rows(const Source* src, int64_t depth_stride, int64_t lanes,
                                                          int64_t width, int64_t depth, uint32_t* dst) {
  const int64_t pairs = (depth + 1) / 2;
  // Word 2l of a pair vector is lane l's even element, word 2l + 1 its odd one (word 16 + l of `both`).
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                              23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (int64_t p = 0; p < pairs; ++p) {
    const Source* even = src + 2 * p * depth_stride;
    const bool has_odd = 2 * p + 1 < depth;
    for (int64_t l0 = 0; l0 < width; l0 += 16) {
      const int64_t valid = lanes - l0 <= 0 ? 0 : (lanes - l0 < 16 ? lanes - l0 : 16);
      const int64_t stored = width - l0 < 16 ? width - l0 : 16;
      const __mmask16 load_mask = valid >= 16 ? __mmask16(0xffff) : __mmask16((1u << valid) - 1);
      const __mmask16 store_mask = stored >= 16 ? __mmask16(0xffff) : __mmask16((1u << stored) - 1);
      // Both rows' words in one vector and one word permute that interleaves them into pairs: two
      // instructions where widening each half, shifting and or-ing took six.
      const __m512i both = two_rows_as_words(even + l0, has_odd ? even + depth_stride + l0 : nullptr, load_mask);
      _mm512_mask_storeu_epi32(dst + p * width + l0, store_mask, _mm512_permutexvar_epi16(interleave, both));
    }
  }
}

// The register tile: C[Mr × 16·Nv] = alpha · (Ã panel · B̃ panel) + beta · C over `pairs` K-pairs; the
// last vector's columns are limited by `last_mask`. Row r's pair p is a_panel[r·a_row_step + p·a_pair_step]
// (either packing of op(A)); B̃'s pair p is the 64 dwords at b_panel + 64·p. beta == 0 never reads C.
template <int Mr, int Nv>
CCT_TARGET_AVX512_BF16 void bf16_tile(int64_t pairs, const uint32_t* a_panel, int64_t a_row_step,
                                      int64_t a_pair_step, const uint32_t* b_panel, float* c, int64_t ldc, float alpha,
                                      float beta, __mmask16 last_mask) {
  __m512 acc[Mr][Nv];
  const uint32_t* a_rows[Mr];
#pragma GCC unroll 8
  for (int r = 0; r < Mr; ++r) {
    a_rows[r] = a_panel + r * a_row_step;
#pragma GCC unroll 4
    for (int v = 0; v < Nv; ++v) acc[r][v] = _mm512_setzero_ps();
  }
  for (int64_t p = 0, a_offset = 0; p < pairs; ++p, a_offset += a_pair_step) {
    const uint32_t* b = b_panel + p * kBf16Nr;
    __m512bh b_vec[Nv];
#pragma GCC unroll 4
    for (int v = 0; v < Nv; ++v) b_vec[v] = (__m512bh)_mm512_load_si512(b + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < Mr; ++r) {
      const __m512bh a_pair = (__m512bh)_mm512_set1_epi32(static_cast<int>(a_rows[r][a_offset]));
#pragma GCC unroll 4
      for (int v = 0; v < Nv; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a_pair, b_vec[v]);
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

using Bf16Tile = void (*)(int64_t, const uint32_t*, int64_t, int64_t, const uint32_t*, float*, int64_t, float, float,
                          __mmask16);

template <int Mr>
constexpr Bf16Tile bf16_tile_with_rows(int vectors) {
  return vectors == 1 ? &bf16_tile<Mr, 1> : vectors == 2 ? &bf16_tile<Mr, 2> : vectors == 3 ? &bf16_tile<Mr, 3>
                                                                                           : &bf16_tile<Mr, 4>;
}

inline Bf16Tile bf16_tile_for(int64_t rows, int64_t vectors) {
  const int v = static_cast<int>(vectors);
  switch (rows) {
    case 1: return bf16_tile_with_rows<1>(v);
    case 2: return bf16_tile_with_rows<2>(v);
    case 3: return bf16_tile_with_rows<3>(v);
    case 4: return bf16_tile_with_rows<4>(v);
    case 5: return bf16_tile_with_rows<5>(v);
    default: return bf16_tile_with_rows<6>(v);
  }
}

template <typename ASource, typename BSource>
CCT_TARGET_AVX512_BF16 void gemm_bf16_avx512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                                             const ASource* A, int64_t lda, const BSource* B, int64_t ldb, float beta,
                                             float* C, int64_t ldc) {
  // op(A)[i][k] = A[i·lda + k] (pairs adjacent) or A[k·lda + i]; op(B)[k][j] = B[k·ldb + j] or B[j·ldb + k].
  const int64_t a_row_stride = trans_a ? 1 : lda, a_depth_stride = trans_a ? lda : 1;
  const int64_t b_col_stride = trans_b ? ldb : 1, b_depth_stride = trans_b ? 1 : ldb;
  const int64_t max_pairs = kBf16Kc / 2;
  uint32_t* b_packed = bf16_workspace<uint32_t>(1, max_pairs * ((std::min(N, kBf16Nc) + kBf16Nr - 1) / kBf16Nr) * kBf16Nr);
  // Transposed, op(A)'s block is packed whole, pair by pair across all its rows (pair p of row i at
  // p·a_width + i): full-vector loads and stores, where 6-row panels read every row of Aᵀ in 6-float
  // slivers through masked loads (weight gradients, gᵀ·x, ran at 50-56% of the bf16 peak that way).
  const int64_t a_width = (std::min(M, kBf16Mc) + 15) / 16 * 16;
  uint32_t* a_packed = bf16_workspace<uint32_t>(
      0, max_pairs * (trans_a ? a_width : (std::min(M, kBf16Mc) + kBf16Mr - 1) / kBf16Mr * kBf16Mr));
  for (int64_t jc = 0; jc < N; jc += kBf16Nc) {
    const int64_t nc = std::min(kBf16Nc, N - jc);
    for (int64_t pc = 0; pc < K; pc += kBf16Kc) {
      const int64_t kc = std::min(kBf16Kc, K - pc), pairs = (kc + 1) / 2;
      const float beta_block = pc == 0 ? beta : 1.0f;  // later depth blocks add onto the first's result
      for (int64_t jr = 0; jr < nc; jr += kBf16Nr) {
        const BSource* b_block = B + (jc + jr) * b_col_stride + pc * b_depth_stride;
        uint32_t* b_panel = b_packed + (jr / kBf16Nr) * pairs * kBf16Nr;
        if (trans_b) pack_pairs_transposing(b_block, ldb, std::min(kBf16Nr, nc - jr), kBf16Nr, kc, b_panel);
        else pack_pairs_across_rows(b_block, ldb, std::min(kBf16Nr, nc - jr), kBf16Nr, kc, b_panel);
      }
      for (int64_t ic = 0; ic < M; ic += kBf16Mc) {
        const int64_t mc = std::min(kBf16Mc, M - ic);
        if (trans_a) {
          pack_pairs_across_rows(A + ic * a_row_stride + pc * a_depth_stride, lda, mc, a_width, kc, a_packed);
        } else {
          for (int64_t ir = 0; ir < mc; ir += kBf16Mr)
            pack_pairs_by_lane(A + (ic + ir) * a_row_stride + pc * a_depth_stride, lda, std::min(kBf16Mr, mc - ir), kc,
                               a_packed + (ir / kBf16Mr) * pairs * kBf16Mr);
        }
        // Untransposed, a panel lists each row's pairs in turn; transposed, the block lists each pair's rows.
        const int64_t a_row_step = trans_a ? 1 : pairs, a_pair_step = trans_a ? a_width : 1;
        for (int64_t jr = 0; jr < nc; jr += kBf16Nr) {
          const int64_t cols = std::min(kBf16Nr, nc - jr), vectors = (cols + 15) / 16;
          const int64_t last_cols = cols - 16 * (vectors - 1);
          const __mmask16 last_mask = last_cols == 16 ? __mmask16(0xffff) : __mmask16((1u << last_cols) - 1);
          const uint32_t* b_panel = b_packed + (jr / kBf16Nr) * pairs * kBf16Nr;
          for (int64_t ir = 0; ir < mc; ir += kBf16Mr) {
            const int64_t rows = std::min(kBf16Mr, mc - ir);
            const uint32_t* a_panel = trans_a ? a_packed + ir : a_packed + (ir / kBf16Mr) * pairs * kBf16Mr;
            bf16_tile_for(rows, vectors)(pairs, a_panel, a_row_step, a_pair_step, b_panel, C + (ic + ir) * ldc + jc + jr, ldc,
                                         alpha, beta_block, last_mask);
          }
        }
      }
    }
  }
}

#endif  // CCT_HAVE_BF16_KERNEL

}  // namespace detail

// Single-threaded bf16 product; the building block of gemm_bf16. A and B: floats, or bf16 patterns.
template <typename ASource, typename BSource>
void gemm_bf16_serial(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const ASource* A,
                      int64_t lda, const BSource* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  static_assert((std::is_same_v<ASource, float> || std::is_same_v<ASource, uint16_t>) &&
                    (std::is_same_v<BSource, float> || std::is_same_v<BSource, uint16_t>),
                "gemm_bf16: operands are float or bf16 bit patterns (uint16_t)");
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum: only beta · C remains
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
#if CCT_HAVE_BF16_KERNEL
  if (bf16_fast_path_available()) {
    detail::gemm_bf16_avx512(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
#endif
  note_portable_bf16();
  detail::gemm_bf16_portable(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// Splits C across threads exactly as gemm does (static chunks; results independent of the count).
template <typename ASource, typename BSource>
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const ASource* A, int64_t lda,
               const BSource* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int threads = num_threads();
  if (threads <= 1 || in_parallel_region() || M * N * K < kGemmParallelWork) {
    gemm_bf16_serial(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (M >= N || M >= 64 * threads) {
    parallel_for(0, M, 1, [&](int64_t begin, int64_t end) {
      const ASource* a_block = trans_a ? A + begin : A + begin * lda;
      gemm_bf16_serial(trans_a, trans_b, end - begin, N, K, alpha, a_block, lda, B, ldb, beta, C + begin * ldc, ldc);
    });
  } else {
    parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
      const BSource* b_block = trans_b ? B + begin * ldb : B + begin;
      gemm_bf16_serial(trans_a, trans_b, M, end - begin, K, alpha, A, lda, b_block, ldb, beta, C + begin, ldc);
    });
  }
}

// ---- bf16 copies of operands ---------------------------------------------------------------------
// dst[i] = bf16_bits(src[i]) for i < n: what an op saves for its backward in place of a float operand
// that only ever enters bf16 products (half the memory). The fast path's conversion gives the same
// patterns as round_to_bf16.
#if CCT_HAVE_BF16_KERNEL
namespace detail {
CCT_TARGET_AVX512_BF16 inline void narrow_to_bf16_avx512(const float* src, int64_t n, uint16_t* dst) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i)));
  if (i < n) {
    const __mmask16 mask = __mmask16((1u << (n - i)) - 1);
    _mm256_mask_storeu_epi16(dst + i, mask, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + i)));
  }
}
}  // namespace detail
#endif

inline void narrow_to_bf16_serial(const float* src, int64_t n, uint16_t* dst) {
#if CCT_HAVE_BF16_KERNEL
  if (bf16_fast_path_available()) {
    detail::narrow_to_bf16_avx512(src, n, dst);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_bits(src[i]);
}

inline void narrow_to_bf16(const float* src, int64_t n, uint16_t* dst) {
  parallel_for(0, n, 1 << 16, [&](int64_t begin, int64_t end) { narrow_to_bf16_serial(src + begin, end - begin, dst + begin); });
}

// gemm / gemm_serial at a precision: float products under Precision::kBF16 take the bf16 kernel;
// everything else (fp32, and double always) is the plain product.
template <typename T>
void gemm(Precision precision, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>) {
    if (precision == Precision::kBF16) {
      gemm_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      return;
    }
  }
  gemm<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <typename T>
void gemm_serial(Precision precision, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                 const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>) {
    if (precision == Precision::kBF16) {
      gemm_bf16_serial(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      return;
    }
  }
  gemm_serial<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace cct::kernels
