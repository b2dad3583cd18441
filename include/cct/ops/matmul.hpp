// Matrix products: matmul (plain, batched, and batched against one shared matrix, with optional
// transposes) and linear (PyTorch's x·Wᵀ + b). Each forward is followed by its backward.
//
// Transposes are never materialised: every product, forward or backward, is one call pattern of
// kernels::gemm / gemm_serial with the right transpose flags and leading dimensions. Whenever the
// batch can be folded into the rows (or, for a gradient summed over the batch, into the reduction
// dim) of a single GEMM, it is, because one large GEMM beats many small ones. Float products follow
// current_precision() (core/precision.hpp) as it was when the forward ran, backward products included.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "../autograd/node.hpp"
#include "../core/parallel.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "../core/precision.hpp"
#include "kernels/gemm.hpp"
#include "kernels/gemm_bf16.hpp"
#include "registry.hpp"

namespace cct {

// True when this CPU computes bf16 products natively (AVX512_BF16); elsewhere Precision::kBF16 runs a
// portable path that gives the same results more slowly than fp32. Trainers pick their default from it.
inline bool bf16_is_native() { return kernels::bf16_fast_path_available(); }


namespace detail {

// One operand of a (batched) GEMM: item i is the matrix at data + i·batch_stride with row stride `ld`,
// used as is or transposed. batch_stride 0 shares one matrix across the batch.
template <typename T>
struct GemmOperand {
  const T* data;
  int64_t ld;
  bool transposed;
  int64_t batch_stride;
};

// C_i = op(A_i)·op(B_i) for i < batch, C_i being the contiguous M×N block at c + i·M·N; or, with
// sum_over_batch, the single M×N result C = Σ_i op(A_i)·op(B_i) (the gradient of a shared operand).
//
// Threads go across the batch (single-threaded GEMMs inside) when that splits evenly or the items are
// too small to split on their own; a few large items run one after another, each parallel itself.
// `precision` is the one the op recorded (bf16 applies to float only).
template <typename T>
void gemm_batched(Precision precision, int64_t batch, int64_t M, int64_t N, int64_t K, const GemmOperand<T>& a,
                  const GemmOperand<T>& b, T* c, bool sum_over_batch) {
  if (batch == 0) {
    if (sum_over_batch) std::fill(c, c + M * N, T(0));
    return;
  }
  auto item = [&](int64_t i, T beta, T* c_item, bool serial) {
    const T* a_item = a.data + i * a.batch_stride;
    const T* b_item = b.data + i * b.batch_stride;
    if (serial)
      kernels::gemm_serial<T>(precision, a.transposed, b.transposed, M, N, K, T(1), a_item, a.ld, b_item, b.ld, beta,
                              c_item, N);
    else
      kernels::gemm<T>(precision, a.transposed, b.transposed, M, N, K, T(1), a_item, a.ld, b_item, b.ld, beta, c_item, N);
  };

  const int threads = num_threads();
  const int64_t item_work = std::max<int64_t>(1, M * N * K);
  const bool split_batch = threads > 1 && batch > 1 && !in_parallel_region() &&
                           (item_work < kernels::kGemmParallelWork || batch % threads == 0 || batch >= 4 * threads);
  // Enough items per thread that each one's share is worth a thread team.
  const int64_t grain = std::max<int64_t>(1, kernels::kGemmParallelWork / item_work);

  if (!split_batch) {
    for (int64_t i = 0; i < batch; ++i)
      item(i, sum_over_batch && i > 0 ? T(1) : T(0), sum_over_batch ? c : c + i * M * N, false);
    return;
  }
  if (!sum_over_batch) {
    parallel_for(0, batch, grain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) item(i, T(0), c + i * M * N, true);
    });
    return;
  }
  // Summed over the batch: each chunk of items accumulates into its own M×N partial (chunk 0 straight
  // into C), and the partials are added in chunk order, so the result depends only on the thread count.
  const int64_t chunks = std::min<int64_t>(threads, std::max<int64_t>(1, batch / grain));
  std::vector<T> partials(static_cast<size_t>((chunks - 1) * M * N));
  parallel_for(0, chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
      T* target = chunk == 0 ? c : partials.data() + (chunk - 1) * M * N;
      const int64_t first = batch * chunk / chunks, last = batch * (chunk + 1) / chunks;
      for (int64_t i = first; i < last; ++i) item(i, i == first ? T(0) : T(1), target, true);
    }
  });
  parallel_for(0, M * N, 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t chunk = 1; chunk < chunks; ++chunk) {
      const T* partial = partials.data() + (chunk - 1) * M * N;
      for (int64_t e = begin; e < end; ++e) c[e] += partial[e];
    }
  });
}

inline std::string matmul_operands_str(const Shape& a, const Shape& b, bool transpose_a, bool transpose_b) {
  return concat("a of shape ", shape_str(a), " and b of shape ", shape_str(b), " (transpose_a=",
                transpose_a ? "true" : "false", ", transpose_b=", transpose_b ? "true" : "false", ")");
}

}  // namespace detail

// ---- matmul: out = op(a)·op(b) ----------------------------------------------------------------------
// op(x) is x, or x with its last two dims swapped when its transpose flag is set. Shapes:
//   a (M', K') and b (K'', N')                     -> (M, N)
//   a (..., ·, ·) and b (..., ·, ·), same leading dims -> (..., M, N): one product per batch item
//   a (..., ·, ·) and b 2-D                        -> (..., M, N): b shared by every batch item
// ∂out/∂op(a) = g·op(b)ᵀ, ∂out/∂op(b) = op(a)ᵀ·g; a gradient of a transposed operand is the transpose
// of that, and the shared b's gradient is summed over the batch. Saves both inputs.
template <typename T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b, bool transpose_a = false, bool transpose_b = false) {
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  const int64_t rank_a = a.dim(), rank_b = b.dim();
  CCT_CHECK_SHAPE(rank_a >= 2 && rank_b >= 2, "matmul: needs operands of at least 2 dims, got ",
                  detail::matmul_operands_str(sa, sb, transpose_a, transpose_b));
  const bool shared_b = rank_a > 2 && rank_b == 2;
  CCT_CHECK_SHAPE(rank_b == 2 || rank_a == rank_b, "matmul: batched operands must have the same rank "
                  "(or b must be 2-D, shared by the batch), got ", detail::matmul_operands_str(sa, sb, transpose_a, transpose_b));
  const Shape batch_shape(sa.begin(), sa.end() - 2);
  CCT_CHECK_SHAPE(shared_b || rank_a == 2 || Shape(sb.begin(), sb.end() - 2) == batch_shape,
                  "matmul: batch dims differ (no broadcasting), got ",
                  detail::matmul_operands_str(sa, sb, transpose_a, transpose_b));

  // Stored sizes of one item, and the sizes of the product of its op()s.
  const int64_t a_rows = sa[rank_a - 2], a_cols = sa[rank_a - 1];
  const int64_t b_rows = sb[rank_b - 2], b_cols = sb[rank_b - 1];
  const int64_t M = transpose_a ? a_cols : a_rows, K = transpose_a ? a_rows : a_cols;
  const int64_t K_b = transpose_b ? b_cols : b_rows, N = transpose_b ? b_rows : b_cols;
  CCT_CHECK_SHAPE(K == K_b, "matmul: inner dims differ (", K, " vs ", K_b, ") for ",
                  detail::matmul_operands_str(sa, sb, transpose_a, transpose_b));

  const int64_t batch = shape_numel(batch_shape);
  const Precision precision = current_precision();  // backward reuses it, wherever it runs
  Shape out_shape = batch_shape;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor<T> out = Tensor<T>::empty(out_shape);

  const int64_t a_item = a_rows * a_cols, b_item = shared_b ? 0 : b_rows * b_cols;
  const detail::GemmOperand<T> a_op{a.data(), a_cols, transpose_a, a_item};
  const detail::GemmOperand<T> b_op{b.data(), b_cols, transpose_b, b_item};
  if (shared_b && !transpose_a) {
    // Untransposed a items stacked on top of each other are one (batch·M)×K matrix.
    detail::gemm_batched<T>(precision, 1, batch * M, N, K, a_op, b_op, out.data(), false);
  } else {
    detail::gemm_batched<T>(precision, batch, M, N, K, a_op, b_op, out.data(), false);
  }

  if (autograd::any_requires_grad<T>({&a, &b}))
    autograd::record<T>(
        "matmul", out, {a, b},
        [a = a.detach(), b = b.detach(), precision, transpose_a, transpose_b, shared_b, batch, M, N, K, a_item, b_item, a_cols,
         b_cols](const Tensor<T>& g, const autograd::NeedsGrad& needs) {
          const detail::GemmOperand<T> g_plain{g.data(), N, false, M * N};
          const detail::GemmOperand<T> g_transposed{g.data(), N, true, M * N};
          const detail::GemmOperand<T> a_as_stored{a.data(), a_cols, transpose_a, a_item};
          const detail::GemmOperand<T> b_as_stored{b.data(), b_cols, transpose_b, b_item};
          // The same operands with their transpose flag flipped: op(x)ᵀ without a copy.
          const detail::GemmOperand<T> a_flipped{a.data(), a_cols, !transpose_a, a_item};
          const detail::GemmOperand<T> b_flipped{b.data(), b_cols, !transpose_b, b_item};

          Tensor<T> grad_a, grad_b;
          if (needs[0]) {
            grad_a = Tensor<T>::empty(a.shape());
            if (!transpose_a) {
              // ∂a = g·op(b)ᵀ (M×K); with a shared b the batch folds into the rows.
              if (shared_b) detail::gemm_batched<T>(precision, 1, batch * M, K, N, g_plain, b_flipped, grad_a.data(), false);
              else detail::gemm_batched<T>(precision, batch, M, K, N, g_plain, b_flipped, grad_a.data(), false);
            } else {
              // ∂a = (g·op(b)ᵀ)ᵀ = op(b)·gᵀ (K×M).
              detail::gemm_batched<T>(precision, batch, K, M, N, b_as_stored, g_transposed, grad_a.data(), false);
            }
          }
          if (needs[1]) {
            grad_b = Tensor<T>::empty(b.shape());
            // A shared b sums its items' gradients. Untransposed a items stacked are one (batch·M)×K
            // matrix, so then that sum is a single GEMM with the batch folded into the reduction dim.
            const bool fold = shared_b && !transpose_a;
            const bool sum_over_batch = shared_b && !fold;
            const int64_t items = fold ? 1 : batch, reduction = fold ? batch * M : M;
            if (!transpose_b) {
              // ∂b = op(a)ᵀ·g (K×N).
              detail::gemm_batched<T>(precision, items, K, N, reduction, a_flipped, g_plain, grad_b.data(), sum_over_batch);
            } else {
              // ∂b = (op(a)ᵀ·g)ᵀ = gᵀ·op(a) (N×K).
              detail::gemm_batched<T>(precision, items, N, K, reduction, g_transposed, a_as_stored, grad_b.data(), sum_over_batch);
            }
          }
          return autograd::GradList<T>{grad_a, grad_b};
        });
  return out;
}

// ---- linear: out = x·Wᵀ + b --------------------------------------------------------------------------
// x (..., in), weight (out, in), bias (out) or an undefined Tensor<T>() for none -> (..., out).
// All leading dims of x fold into the rows of one GEMM; the bias is written into the output first and
// the GEMM accumulates onto it (beta = 1), so no pass over the output follows the product.
// ∂x = g·W, ∂W = gᵀ·x (summed over every row), ∂b = Σ_rows g. Saves the weight, and x when the
// weight needs a gradient (only ∂W reads x): under bf16 a bf16 copy of x, since that product rounds x
// to bf16 anyway; half the memory, the same ∂W bit for bit.
template <typename T>
Tensor<T> linear(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = Tensor<T>()) {
  const Shape& sx = x.shape();
  const Shape& sw = weight.shape();
  const bool has_bias = bias.defined();
  auto describe = [&] {
    return detail::concat("x of shape ", shape_str(sx), ", weight of shape ", shape_str(sw), ", bias ",
                          has_bias ? "of shape " + shape_str(bias.shape()) : std::string("none"));
  };
  CCT_CHECK_SHAPE(x.dim() >= 1 && weight.dim() == 2, "linear: needs x of shape (..., in) and weight of shape "
                  "(out, in), got ", describe());
  const int64_t in_features = sx.back(), out_features = sw[0];
  CCT_CHECK_SHAPE(sw[1] == in_features, "linear: x has ", in_features, " input features but weight expects ",
                  sw[1], ": ", describe());
  CCT_CHECK_SHAPE(!has_bias || bias.shape() == Shape{out_features}, "linear: bias must have shape (",
                  out_features, ",): ", describe());

  const int64_t rows = shape_numel(Shape(sx.begin(), sx.end() - 1));
  Shape out_shape = sx;
  out_shape.back() = out_features;
  Tensor<T> out = Tensor<T>::empty(out_shape);
  T* po = out.data();
  if (has_bias) {
    const T* pb = bias.data();
    parallel_for(0, rows, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, out_features)),
                 [&](int64_t begin, int64_t end) {
                   for (int64_t r = begin; r < end; ++r) std::copy(pb, pb + out_features, po + r * out_features);
                 });
  }
  const Precision precision = current_precision();  // backward reuses it, wherever it runs
  const bool recording = autograd::any_requires_grad<T>({&x, &weight, &bias});
  // The bf16 copy of x is made first and is what the product reads (half the bytes to pack).
  Tensor<uint16_t> saved_x_bf16;
  if constexpr (std::is_same_v<T, float>) {
    if (recording && weight.requires_grad() && precision == Precision::kBF16 && detail::save_bf16_operands_flag().load()) {
      saved_x_bf16 = Tensor<uint16_t>::empty(sx);
      kernels::narrow_to_bf16(x.data(), x.numel(), saved_x_bf16.data());
      kernels::gemm_bf16(false, true, rows, out_features, in_features, 1.0f, saved_x_bf16.data(), in_features,
                         weight.data(), in_features, has_bias ? 1.0f : 0.0f, po, out_features);
    }
  }
  if (!saved_x_bf16.defined())
    kernels::gemm<T>(precision, false, true, rows, out_features, in_features, T(1), x.data(), in_features, weight.data(),
                     in_features, has_bias ? T(1) : T(0), po, out_features);

  if (!recording) return out;
  const Tensor<T> saved_x = weight.requires_grad() && !saved_x_bf16.defined() ? x.detach() : Tensor<T>();
  autograd::record<T>(
        "linear", out, {x, weight, bias},
        [saved_x, saved_x_bf16, x_shape = sx, weight = weight.detach(), precision, rows, in_features, out_features](
            const Tensor<T>& g, const autograd::NeedsGrad& needs) {
          Tensor<T> grad_x, grad_weight, grad_bias;
          if (needs[0]) {
            // ∂x = g·W: (rows × out)·(out × in).
            grad_x = Tensor<T>::empty(x_shape);
            kernels::gemm<T>(precision, false, false, rows, in_features, out_features, T(1), g.data(), out_features,
                             weight.data(), in_features, T(0), grad_x.data(), in_features);
          }
          if (needs[1]) {
            // ∂W = gᵀ·x: every row of every batch item lies in the reduction dim of one GEMM.
            grad_weight = Tensor<T>::empty(weight.shape());
            if constexpr (std::is_same_v<T, float>) {
              if (saved_x_bf16.defined()) {
                kernels::gemm_bf16(true, false, out_features, in_features, rows, 1.0f, g.data(), out_features,
                                   saved_x_bf16.data(), in_features, 0.0f, grad_weight.data(), in_features);
              }
            }
            if (saved_x.defined())
              kernels::gemm<T>(precision, true, false, out_features, in_features, rows, T(1), g.data(), out_features,
                               saved_x.data(), in_features, T(0), grad_weight.data(), in_features);
          }
          if (needs[2]) {
            // ∂b = column sums of g. Threads take blocks of columns and walk all rows, so each sum is
            // accumulated in the same order whatever the thread count; double accumulators keep
            // float sums over tens of thousands of rows accurate.
            grad_bias = Tensor<T>::empty({out_features});
            const T* pg = g.data();
            T* pb = grad_bias.data();
            parallel_for(0, out_features, std::max<int64_t>(16, (1 << 15) / std::max<int64_t>(1, rows)),
                         [&](int64_t begin, int64_t end) {
                           std::vector<double> sums(static_cast<size_t>(end - begin), 0.0);
                           for (int64_t r = 0; r < rows; ++r) {
                             const T* g_row = pg + r * out_features + begin;
                             for (int64_t j = 0; j < end - begin; ++j) sums[j] += g_row[j];
                           }
                           for (int64_t j = 0; j < end - begin; ++j) pb[begin + j] = static_cast<T>(sums[j]);
                         });
          }
          return autograd::GradList<T>{grad_x, grad_weight, grad_bias};
        });
  return out;
}

// The names this header's backward nodes carry (ops/registry.hpp; each has a gradient check).
CCT_REGISTER_OPS(matmul, "matmul", "linear");

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPS_MATMUL_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE Tensor<T> matmul<T>(const Tensor<T>&, const Tensor<T>&, bool, bool); \
  CCT_EXTERN_TEMPLATE Tensor<T> linear<T>(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&);
CCT_FOR_FLOATING_TYPES(CCT_OPS_MATMUL_TEMPLATES)
#undef CCT_OPS_MATMUL_TEMPLATES
#endif

}  // namespace cct
