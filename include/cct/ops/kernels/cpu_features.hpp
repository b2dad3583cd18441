// CPU features for run-time dispatch (not public API): whether the compiler can build AVX-512 code with
// target attributes (CCT_HAVE_AVX512_DISPATCH, CCT_TARGET_AVX512) and whether this CPU runs it.
//
// A consumer's own project gets no -march flag, so its loops compile for SSE2. The hot kernels (the
// GEMMs, the max-pool loops) are compiled a second time for AVX-512 with target attributes and chosen
// at run time from CPUID, so such builds keep most of a -march=native build's speed.
#pragma once

#if (defined(__x86_64__) || defined(__i386__)) && \
    ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10) || (defined(__clang__) && __clang_major__ >= 9))
#define CCT_HAVE_AVX512_DISPATCH 1
#include <cpuid.h>
#include <immintrin.h>
#define CCT_TARGET_AVX512 __attribute__((target("avx512f,fma")))
#else
#define CCT_HAVE_AVX512_DISPATCH 0
#endif

// A loop body shared by a kernel and its AVX-512 twin: inlined into each, so each compiles it for its
// own instruction set.
#if defined(__GNUC__) || defined(__clang__)
#define CCT_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define CCT_ALWAYS_INLINE inline
#endif

namespace cct::kernels {

// Whether this CPU has AVX512F and the OS saves the zmm registers (CPUID leaf 7 EBX bit 16, XCR0).
inline bool cpu_has_avx512f() {
#if CCT_HAVE_AVX512_DISPATCH
  static const bool supported = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 27))) return false;  // OSXSAVE
    unsigned xcr0_low = 0, xcr0_high = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    if ((xcr0_low & 0xe6u) != 0xe6u) return false;  // SSE, AVX, opmask and both zmm halves saved
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    return (ebx & (1u << 16)) != 0;
  }();
  return supported;
#else
  return false;
#endif
}

// Whether loops with an AVX-512 twin take it: only in builds not compiled for AVX-512 (those compile
// every loop for it already), on CPUs that have it.
inline bool avx512_dispatch() {
#if CCT_HAVE_AVX512_DISPATCH && !defined(__AVX512F__)
  return cpu_has_avx512f();
#else
  return false;
#endif
}

}  // namespace cct::kernels
