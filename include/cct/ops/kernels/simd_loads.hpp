// Partial-vector loads for the AVX-512 kernels (not public API): the lanes a mask selects, zero in the
// others, as a plain load whenever the mask selects every lane.
//
// Why not always the masked instruction: a masked load that misses L1 measured several times slower
// than a plain one on Zen 5 (a max-pool pass over a 33 MB input ran at a third of its speed), and
// nearly every call in a kernel loads a whole vector; only row ends are partial.
#pragma once

#include <cstdint>

#include "cpu_features.hpp"

#if CCT_HAVE_AVX512_DISPATCH
#define CCT_TARGET_AVX512_BW __attribute__((target("avx512f,avx512bw,avx512vl")))

namespace cct::kernels {

CCT_TARGET_AVX512 inline __m512 load_floats(__mmask16 mask, const float* p) {
  return mask == __mmask16(0xffff) ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mask, p);
}

// 32 or 16 16-bit words (bf16 patterns).
CCT_TARGET_AVX512_BW inline __m512i load_words(__mmask32 mask, const uint16_t* p) {
  return mask == __mmask32(0xffffffffu) ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi16(mask, p);
}
CCT_TARGET_AVX512_BW inline __m256i load_words(__mmask16 mask, const uint16_t* p) {
  return mask == __mmask16(0xffff) ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                                   : _mm256_maskz_loadu_epi16(mask, p);
}

}  // namespace cct::kernels
#endif
