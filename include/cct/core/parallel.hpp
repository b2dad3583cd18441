// parallel_for: cct's one way to use threads. OpenMP when the compiler has it, a plain loop otherwise.
//
// The range is split statically into one contiguous chunk per thread, so the work each thread does
// (and any per-chunk partial result) depends only on the thread count, never on timing. A call made
// from inside a parallel region runs serially: cct never nests thread teams.
#pragma once

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cct {

inline int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline void set_num_threads(int threads) {
#ifdef _OPENMP
  omp_set_num_threads(std::max(1, threads));
#else
  (void)threads;
#endif
}

inline bool in_parallel_region() {
#ifdef _OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

// Calls fn(chunk_begin, chunk_end) over [begin, end) in parallel when the range holds more than
// `grain` items; each thread gets at most one chunk.
template <typename Fn>
void parallel_for(int64_t begin, int64_t end, int64_t grain, Fn&& fn) {
  const int64_t count = end - begin;
  if (count <= 0) return;
#ifdef _OPENMP
  const int64_t max_chunks = std::max<int64_t>(1, count / std::max<int64_t>(1, grain));
  const int threads = static_cast<int>(std::min<int64_t>(num_threads(), max_chunks));
  if (threads > 1 && !in_parallel_region()) {
#pragma omp parallel num_threads(threads)
    {
      const int64_t team = omp_get_num_threads(), id = omp_get_thread_num();
      const int64_t chunk_begin = begin + count * id / team;
      const int64_t chunk_end = begin + count * (id + 1) / team;
      if (chunk_begin < chunk_end) fn(chunk_begin, chunk_end);
    }
    return;
  }
#endif
  fn(begin, end);
}

}  // namespace cct
