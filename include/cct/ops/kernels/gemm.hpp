// gemm: C = alpha · op(A) · op(B) + beta · C on row-major buffers, through Eigen (not public API).
//
// op(X) is X or Xᵀ. A is M×K (or K×M when transposed), B is K×N (or N×K), C is M×N; lda/ldb/ldc are
// row strides in elements. Eigen runs single-threaded (config.hpp); when called outside a parallel
// region and the product is large, gemm splits C's rows (or columns, for short wide products) across
// threads itself, so it never nests thread teams.
#pragma once

#include <cstdint>

#include "../../config.hpp"  // before Eigen: it sets EIGEN_DONT_PARALLELIZE

#include <Eigen/Core>

#include "../../core/parallel.hpp"

namespace cct::kernels {

template <typename T>
using RowMajorMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using ConstMatrixMap = Eigen::Map<const RowMajorMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using MatrixMap = Eigen::Map<RowMajorMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// Single-threaded product on a block; the building block of everything below.
template <typename T>
void gemm_serial(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                 const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  MatrixMap<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (beta == T(0)) c.setZero();
  else if (beta != T(1)) c *= beta;
  if (K == 0) return;
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
