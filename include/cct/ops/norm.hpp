// layer_norm over the last dim (PyTorch semantics: biased variance, optional affine weight and bias),
// with a fused forward and a fused backward.
//
// Forward, one row at a time: mean and rstd = 1/√(var + eps), then y = (x − mean)·rstd·w + b. The row's
// mean and rstd are saved with the input, so backward never recomputes the statistics.
// Backward, one row at a time, with x̂ = (x − mean)·rstd and ĝ = g⊙w:
//   grad_x = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ⊙x̂))
//   grad_w = Σ_rows g⊙x̂,   grad_b = Σ_rows g
// The column sums are split into a number of row blocks that depends only on the tensor's shape; each
// block sums its rows, then the blocks are added in order, so the result is the same for any thread
// count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../autograd/node.hpp"
#include "../core/parallel.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "kernels/lanes.hpp"
#include "registry.hpp"

namespace cct {

namespace detail {

// How many row blocks the column sums of layer_norm's backward use: ~4k elements per block, at most
// 64, so small tensors run serially and large ones split evenly across any thread count.
inline int64_t layer_norm_blocks(int64_t rows, int64_t width) {
  const int64_t by_size = (rows * width) / 4096;
  return std::max<int64_t>(1, std::min<int64_t>({by_size, int64_t{64}, rows}));
}

}  // namespace detail

// ---- layer_norm: y = (x − mean)/√(var + eps) · weight + bias, statistics over the last dim ------------
// ∂L/∂x = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ⊙x̂)), ĝ = g⊙w;  ∂L/∂w = Σ_rows g⊙x̂;  ∂L/∂b = Σ_rows g.
// weight and bias have shape (D) or are undefined (no scale / no shift). Saves x, mean and rstd.
template <typename T>
Tensor<T> layer_norm(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, double eps = 1e-5) {
  CCT_CHECK_SHAPE(x.dim() >= 1, "layer_norm: input must have at least one dim, got shape ", shape_str(x.shape()));
  const int64_t width = x.size(-1);
  CCT_CHECK_SHAPE(!weight.defined() || weight.shape() == Shape{width}, "layer_norm: weight of shape ",
                  weight.defined() ? shape_str(weight.shape()) : "", " does not match the last dim of input ",
                  shape_str(x.shape()), "; expected (", width, ",)");
  CCT_CHECK_SHAPE(!bias.defined() || bias.shape() == Shape{width}, "layer_norm: bias of shape ",
                  bias.defined() ? shape_str(bias.shape()) : "", " does not match the last dim of input ",
                  shape_str(x.shape()), "; expected (", width, ",)");
  CCT_CHECK(eps >= 0, "layer_norm: eps must be non-negative, got ", eps);

  const int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  Tensor<T> out = Tensor<T>::empty(x.shape());
  Tensor<T> mean = Tensor<T>::empty({rows});
  Tensor<T> rstd = Tensor<T>::empty({rows});
  const T* px = x.data();
  const T* pw = weight.defined() ? weight.data() : nullptr;
  const T* pb = bias.defined() ? bias.data() : nullptr;
  T* py = out.data();
  T* pmean = mean.data();
  T* prstd = rstd.data();
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(1, width));
  parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const T* xr = px + row * width;
      T* yr = py + row * width;
      // Statistics in double, and the variance from deviations (not E[x²] − E[x]²), so rows with a large
      // offset or tiny spread lose no precision; a constant row gets var = 0 exactly and y = b.
      const double sum = kernels::lane_sum<double>(width, [xr](int64_t j) { return static_cast<double>(xr[j]); });
      const double row_mean = width > 0 ? sum / static_cast<double>(width) : 0.0;
      const double squares = kernels::lane_sum<double>(width, [xr, row_mean](int64_t j) {
        const double deviation = static_cast<double>(xr[j]) - row_mean;
        return deviation * deviation;
      });
      const double variance = width > 0 ? squares / static_cast<double>(width) : 0.0;
      const T m = static_cast<T>(row_mean);
      const T r = static_cast<T>(1.0 / std::sqrt(variance + eps));
      pmean[row] = m;
      prstd[row] = r;
      for (int64_t j = 0; j < width; ++j) {
        T value = (xr[j] - m) * r;
        if (pw) value *= pw[j];
        if (pb) value += pb[j];
        yr[j] = value;
      }
    }
  });

  if (autograd::any_requires_grad<T>({&x, &weight, &bias}))
    autograd::record<T>(
        "layer_norm", out, {x, weight, bias},
        [x = x.detach(), w = weight.defined() ? weight.detach() : Tensor<T>(), mean, rstd, rows, width](
            const Tensor<T>& g, const autograd::NeedsGrad& needs) {
          Tensor<T> grad_x, grad_w, grad_b;
          if (needs[0]) grad_x = Tensor<T>::empty(x.shape());
          const int64_t blocks = detail::layer_norm_blocks(rows, width);
          // Per-block column sums for w (first `width` entries of a block) and b (next `width`).
          std::vector<T> partial;
          if (needs[1] || needs[2]) partial.assign(static_cast<size_t>(blocks * 2 * width), T(0));
          const T* px = x.data();
          const T* pw = w.defined() ? w.data() : nullptr;
          const T* pg = g.data();
          const T* pmean = mean.data();
          const T* prstd = rstd.data();
          T* pgx = needs[0] ? grad_x.data() : nullptr;
          const bool want_w = needs[1], want_b = needs[2];
          parallel_for(0, blocks, 1, [&](int64_t block_begin, int64_t block_end) {
            std::vector<T> x_hat(static_cast<size_t>(width)), g_hat(static_cast<size_t>(width));
            T* xh = x_hat.data();
            T* gh = g_hat.data();
            for (int64_t block = block_begin; block < block_end; ++block) {
              T* sum_w = partial.empty() ? nullptr : partial.data() + block * 2 * width;
              T* sum_b = sum_w ? sum_w + width : nullptr;
              for (int64_t row = rows * block / blocks; row < rows * (block + 1) / blocks; ++row) {
                const T* xr = px + row * width;
                const T* gr = pg + row * width;
                const T m = pmean[row], r = prstd[row];
                // Element-wise first (vectorises), then the two row sums over the stored x̂ and ĝ.
                for (int64_t j = 0; j < width; ++j) xh[j] = (xr[j] - m) * r;
                if (pw) {
                  for (int64_t j = 0; j < width; ++j) gh[j] = gr[j] * pw[j];
                } else {
                  std::copy(gr, gr + width, gh);
                }
                if (want_w)
                  for (int64_t j = 0; j < width; ++j) sum_w[j] += gr[j] * xh[j];
                if (want_b)
                  for (int64_t j = 0; j < width; ++j) sum_b[j] += gr[j];
                if (pgx) {
                  const double sum_g_hat = kernels::lane_sum<double>(width, [gh](int64_t j) { return static_cast<double>(gh[j]); });
                  const double sum_g_hat_x_hat =
                      kernels::lane_sum<double>(width, [gh, xh](int64_t j) { return static_cast<double>(gh[j] * xh[j]); });
                  const T mean_g_hat = static_cast<T>(sum_g_hat / static_cast<double>(width));
                  const T mean_g_hat_x_hat = static_cast<T>(sum_g_hat_x_hat / static_cast<double>(width));
                  T* gxr = pgx + row * width;
                  for (int64_t j = 0; j < width; ++j) gxr[j] = r * (gh[j] - mean_g_hat - xh[j] * mean_g_hat_x_hat);
                }
              }
            }
          });
          if (want_w || want_b) {
            if (want_w) grad_w = Tensor<T>::zeros({width});
            if (want_b) grad_b = Tensor<T>::zeros({width});
            for (int64_t block = 0; block < blocks; ++block) {
              const T* sum_w = partial.data() + block * 2 * width;
              const T* sum_b = sum_w + width;
              for (int64_t j = 0; j < width; ++j) {
                if (want_w) grad_w.data()[j] += sum_w[j];
                if (want_b) grad_b.data()[j] += sum_b[j];
              }
            }
          }
          return autograd::GradList<T>{grad_x, grad_w, grad_b};
        });
  return out;
}

// The names this header's backward nodes carry (ops/registry.hpp; each has a gradient check).
CCT_REGISTER_OPS(norm, "layer_norm");

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPS_NORM_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE Tensor<T> layer_norm<T>(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&, double);
CCT_FOR_FLOATING_TYPES(CCT_OPS_NORM_TEMPLATES)
#undef CCT_OPS_NORM_TEMPLATES
#endif

}  // namespace cct
