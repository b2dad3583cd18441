// gemm: C = alpha · op(A) · op(B) + beta · C on row-major buffers, through Eigen's GEMM kernel (not public API).
//
// op(X) is X or Xᵀ. A is M×K (or K×M when transposed), B is K×N (or N×K), C is M×N; lda/ldb/ldc are
// row strides in elements. Eigen runs single-threaded (config.hpp); when called outside a parallel
// region and the product is large, gemm splits C's rows (or columns, for short wide products) across
// threads itself, so it never nests thread teams. Float products on a CPU with AVX-512 take the kernel
// of gemm_fp32_avx512.hpp instead of Eigen's, in every build (see fp32_avx512_dispatch for why).
#pragma once

#include <cstdint>
#include <type_traits>

#include "../../config.hpp"  // before Eigen: it sets EIGEN_DONT_PARALLELIZE

#include <Eigen/Core>

#include "../../core/parallel.hpp"
#include "gemm_fp32_avx512.hpp"

namespace cct::kernels {

template <typename T>
using RowMajorMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using ConstMatrixMap = Eigen::Map<const RowMajorMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using MatrixMap = Eigen::Map<RowMajorMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

namespace detail {

// Per-thread packing buffers for Eigen's GEMM, kept for the thread's lifetime. Eigen otherwise
// allocates them on every product above 128 KiB, and glibc serves such sizes with fresh mmap'ed pages:
// a CCT-2 forward spent a fifth of its time in page faults inside the packing routines.
template <typename T>
T* gemm_workspace(int slot, Eigen::Index size) {
  struct Buffer {
    T* data = nullptr;
    Eigen::Index capacity = 0;
    ~Buffer() { Eigen::internal::aligned_free(data); }
  };
  thread_local Buffer buffers[2];
  Buffer& buffer = buffers[slot];
  if (buffer.capacity < size) {
    Eigen::internal::aligned_free(buffer.data);
    buffer.data = nullptr;  // stays consistent if the allocation below throws
    buffer.capacity = 0;
    buffer.data = static_cast<T*>(Eigen::internal::aligned_malloc(static_cast<size_t>(size) * sizeof(T)));
    buffer.capacity = size;
  }
  return buffer.data;
}

// Eigen's cache blocking for a row-major result (computed as the column-major transpose, as Eigen's own
// product does), with the packing buffers taken from gemm_workspace instead of the heap.
template <typename T>
class WorkspaceBlocking : public Eigen::internal::level3_blocking<T, T> {
 public:
  WorkspaceBlocking(Eigen::Index rows, Eigen::Index cols, Eigen::Index depth) {
    this->m_mc = cols;
    this->m_nc = rows;
    this->m_kc = depth;
    Eigen::internal::computeProductBlockingSizes<T, T, 1>(this->m_kc, this->m_mc, this->m_nc, Eigen::Index(1));
    this->m_blockA = gemm_workspace<T>(0, this->m_mc * this->m_kc);
    this->m_blockB = gemm_workspace<T>(1, this->m_kc * this->m_nc);
  }
};

// C (row-major, ldc) += alpha · op(A) · op(B) through Eigen's GEMM kernel with reused packing buffers.
template <typename T, int LhsOrder, int RhsOrder>
void gemm_accumulate(Eigen::Index M, Eigen::Index N, Eigen::Index K, T alpha, const T* A, Eigen::Index lda, const T* B,
                     Eigen::Index ldb, T* C, Eigen::Index ldc) {
  WorkspaceBlocking<T> blocking(M, N, K);
  Eigen::internal::general_matrix_matrix_product<Eigen::Index, T, LhsOrder, false, T, RhsOrder, false, Eigen::RowMajor,
                                                 1>::run(M, N, K, A, lda, B, ldb, C, 1, ldc, alpha, blocking);
}

}  // namespace detail

// Single-threaded product on a block; the building block of everything below.
template <typename T>
void gemm_serial(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                 const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
#if CCT_HAVE_AVX512_DISPATCH
  // A CPU with AVX-512: cct's AVX-512 kernel instead of Eigen's (SSE in a portable build, AVX-512 in a
  // native one; cct's is faster than both on these shapes).
  if constexpr (std::is_same_v<T, float>) {
    if (M > 1 && N > 1 && K > 0 && M + N + K >= 20 && fp32_avx512_dispatch()) {
      detail::gemm_fp32_avx512(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      return;
    }
  }
#endif
  MatrixMap<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (beta == T(0)) c.setZero();
  else if (beta != T(1)) c *= beta;
  if (K == 0) return;
  // Vectors and tiny products take Eigen's expression path (GEMV or a coefficient loop, no packing).
  if (M > 1 && N > 1 && M + N + K >= 20) {
    constexpr int kRow = Eigen::RowMajor, kCol = Eigen::ColMajor;
    // A row-major K×M block read as op(A) = Aᵀ is the column-major M×K matrix with the same stride.
    if (!trans_a && !trans_b) detail::gemm_accumulate<T, kRow, kRow>(M, N, K, alpha, A, lda, B, ldb, C, ldc);
    else if (trans_a && !trans_b) detail::gemm_accumulate<T, kCol, kRow>(M, N, K, alpha, A, lda, B, ldb, C, ldc);
    else if (!trans_a && trans_b) detail::gemm_accumulate<T, kRow, kCol>(M, N, K, alpha, A, lda, B, ldb, C, ldc);
    else detail::gemm_accumulate<T, kCol, kCol>(M, N, K, alpha, A, lda, B, ldb, C, ldc);
    return;
  }
  const ConstMatrixMap<T> a(A, trans_a ? K : M, trans_a ? M : K, Eigen::OuterStride<>(lda));
  const ConstMatrixMap<T> b(B, trans_b ? N : K, trans_b ? K : N, Eigen::OuterStride<>(ldb));
  if (!trans_a && !trans_b) c.noalias() += alpha * a * b;
  else if (trans_a && !trans_b) c.noalias() += alpha * a.transpose() * b;
  else if (!trans_a && trans_b) c.noalias() += alpha * a * b.transpose();
  else c.noalias() += alpha * a.transpose() * b.transpose();
}

// Below this many multiply-adds a product is not worth a thread team.
constexpr int64_t kGemmParallelWork = 1 << 18;

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  const int threads = num_threads();
  if (threads <= 1 || in_parallel_region() || M * N * K < kGemmParallelWork) {
    gemm_serial(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (M >= N || M >= 64 * threads) {
    // Rows of C come from rows of op(A): row i of op(A) starts at A + i*lda, or column i of A when transposed.
    parallel_for(0, M, 1, [&](int64_t begin, int64_t end) {
      const T* a_block = trans_a ? A + begin : A + begin * lda;
      gemm_serial(trans_a, trans_b, end - begin, N, K, alpha, a_block, lda, B, ldb, beta, C + begin * ldc, ldc);
    });
  } else {
    parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
      const T* b_block = trans_b ? B + begin * ldb : B + begin;
      gemm_serial(trans_a, trans_b, M, end - begin, K, alpha, A, lda, b_block, ldb, beta, C + begin, ldc);
    });
  }
}

}  // namespace cct::kernels
