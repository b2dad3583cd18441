// Convolutions: conv2d (N, C, H, W) and conv1d (N, C, L), groups = 1, via im2col + GEMM, with backward.
//
// Work is split over the batch: each thread takes a contiguous run of images, unfolds each into its
// own patch buffer and multiplies with a single-threaded GEMM straight into the NCHW output. With
// fewer images than threads the loop runs on one thread and the GEMM splits itself instead.
//
// Saved for backward: the input and the weight only. Backward unfolds each image again rather than
// keeping the (C·kh·kw)-times larger patch matrices alive between forward and backward.
// The weight gradient sums one product per image; images are summed in a fixed number of groups
// (independent of the thread count) whose partial sums are added in group order. So whenever the
// batch loop is what runs in parallel (at least as many images, and groups, as threads), outputs and
// gradients are bit-for-bit the same for any thread count; a GEMM that splits itself may round
// differently.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "../autograd/node.hpp"
#include "../core/parallel.hpp"
#include "../core/precision.hpp"
#include "kernels/gemm.hpp"
#include "kernels/gemm_bf16.hpp"
#include "kernels/im2col.hpp"
#include "registry.hpp"

namespace cct {

// Per-dimension stride and zero padding of conv2d, as an aggregate: Conv2dParams{stride_h, stride_w,
// padding_h, padding_w}. A text model's (k, E) kernel sliding over tokens uses {s, 1, p, 0}.
struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t padding_h = 0, padding_w = 0;
};

namespace detail {

// The batch is cut into at most this many weight-gradient partial sums (enough to keep every thread
// of a small CPU busy), and they hold at most kConvPartialElements elements together, so that a very
// large weight does not multiply its memory; fewer groups than threads just run one after another,
// each with a GEMM that splits itself across the threads.
constexpr int64_t kConvWeightGradGroups = 16;
constexpr int64_t kConvPartialElements = int64_t(1) << 24;

// One thread's patch matrix (patch_size × positions, im2col's output). Under bf16, for geometries
// im2col unfolds by block copies, it holds bf16 patterns: the products round it anyway, so results are
// the same bit for bit, with half the bytes to write and to pack and no conversion in the packing. A
// pointwise convolution needs none (the image is its patch matrix).
template <typename T>
struct PatchMatrix {
  Tensor<T> values;
  Tensor<uint16_t> bf16;
  PatchMatrix(const kernels::ConvGeometry& g, Precision precision) {
    if (g.is_pointwise()) return;
    if (std::is_same_v<T, float> && precision == Precision::kBF16 && kernels::unfolds_by_blocks(g))
      bf16 = Tensor<uint16_t>::empty({g.patch_size() * g.out_positions()});
    else
      values = Tensor<T>::empty({g.patch_size() * g.out_positions()});
  }
};

// C = A · op(cols(image)) + beta · C, cols being image's patch matrix, unfolded into `patches` first
// (op transposes when trans_cols): the products a convolution makes with its patch matrices.
template <typename T>
void gemm_with_patches(Precision precision, const kernels::ConvGeometry& g, const T* image, PatchMatrix<T>& patches,
                       bool trans_cols, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, T beta, T* C,
                       int64_t ldc) {
  const int64_t positions = g.out_positions();
  if constexpr (std::is_same_v<T, float>) {
    if (patches.bf16.defined()) {
      kernels::im2col_by_blocks(image, g, patches.bf16.data(), [](const float* src, int64_t n, uint16_t* dst) {
        kernels::narrow_to_bf16_serial(src, n, dst);
      });
      kernels::gemm_bf16(false, trans_cols, M, N, K, 1.0f, A, lda, patches.bf16.data(), positions, beta, C, ldc);
      return;
    }
  }
  if (patches.values.defined()) {
    kernels::im2col(image, g, patches.values.data());
    image = patches.values.data();
  }
  kernels::gemm<T>(precision, false, trans_cols, M, N, K, T(1), A, lda, image, positions, beta, C, ldc);
}

// y = weight · cols(image) (+ bias): one image's (out_channels, positions) output, with `patches` its
// patch scratch. What the conv forwards share.
template <typename T>
void conv_one_image(Precision precision, const kernels::ConvGeometry& g, int64_t out_channels, const T* pw,
                    const T* pb, const T* image, PatchMatrix<T>& patches, T* y) {
  const int64_t patch = g.patch_size(), positions = g.out_positions();
  // Starting from the bias (beta = 1) saves the GEMM's own zeroing pass and a separate bias pass.
  if (pb)
    for (int64_t o = 0; o < out_channels; ++o) std::fill(y + o * positions, y + (o + 1) * positions, pb[o]);
  gemm_with_patches(precision, g, image, patches, false, out_channels, positions, patch, pw, patch, pb ? T(1) : T(0),
                    y, positions);
}

// out[c] = Σ_{n, p} g[n, c, p] for g of shape (batch, channels, positions), in `shape`: a bias gradient.
template <typename T>
Tensor<T> channel_sums(const T* g, int64_t batch, int64_t channels, int64_t positions, const Shape& shape) {
  Tensor<T> out = Tensor<T>::empty(shape);
  T* po = out.data();
  parallel_for(0, channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      T sum = T(0);
      for (int64_t n = 0; n < batch; ++n) {
        const T* row = g + (n * channels + c) * positions;
        for (int64_t p = 0; p < positions; ++p) sum += row[p];
      }
      po[c] = sum;
    }
  });
  return out;
}

// ∂L/∂x and ∂L/∂weight of a convolution (see conv_forward), given each image's output gradient:
// image_grad(n, scratch) returns image n's (out_channels, positions) gradient, written into `scratch`
// (out_channels · positions elements, per thread) when grad_needs_scratch, or pointing elsewhere.
// Shared by conv_forward's backward and conv2d_max_pool2d's (ops/conv_pool.hpp), whose images'
// gradients exist only one at a time.
template <typename T, typename ImageGrad>
void conv_backward_images(const Tensor<T>& x, const Tensor<T>& weight, Precision precision, int64_t batch,
                          int64_t out_channels, const kernels::ConvGeometry& g, bool need_x, bool need_weight,
                          bool grad_needs_scratch, const ImageGrad& image_grad, Tensor<T>& grad_x,
                          Tensor<T>& grad_weight) {
  if (!need_x && !need_weight) return;
  const int64_t patch = g.patch_size(), positions = g.out_positions(), image_size = g.image_size();
  const bool pointwise = g.is_pointwise();
  const T* px = x.data();
  const T* pw = weight.data();
  if (need_x) grad_x = Tensor<T>::empty(x.shape());
  T* pgx = need_x ? grad_x.data() : nullptr;
  const int64_t weight_size = out_channels * patch;
  const int64_t groups = std::min({batch, kConvWeightGradGroups,
                                   std::max<int64_t>(1, kConvPartialElements / std::max<int64_t>(1, weight_size))});
  const Tensor<T> partials = need_weight ? Tensor<T>::empty({groups * weight_size}) : Tensor<T>();
  parallel_for(0, groups, 1, [&](int64_t group_begin, int64_t group_end) {
    const bool need_grad_cols = need_x && !pointwise;
    PatchMatrix<T> patches(need_weight ? g : kernels::ConvGeometry{}, precision);  // (a default geometry is pointwise)
    const Tensor<T> grad_cols_buffer = need_grad_cols ? Tensor<T>::empty({patch * positions}) : Tensor<T>();
    const Tensor<T> grad_buffer = grad_needs_scratch ? Tensor<T>::empty({out_channels * positions}) : Tensor<T>();
    T* const grad_cols = need_grad_cols ? grad_cols_buffer.data() : nullptr;
    for (int64_t group = group_begin; group < group_end; ++group) {
      const int64_t first = batch * group / groups, last = batch * (group + 1) / groups;
      for (int64_t n = first; n < last; ++n) {
        const T* gn = image_grad(n, grad_needs_scratch ? grad_buffer.data() : nullptr);
        if (need_weight)
          gemm_with_patches(precision, g, px + n * image_size, patches, true, out_channels, patch, positions, gn,
                            positions, n == first ? T(0) : T(1), partials.data() + group * weight_size, patch);
        if (need_x) {
          T* gx = pgx + n * image_size;
          T* target = pointwise ? gx : grad_cols;
          kernels::gemm<T>(precision, true, false, patch, positions, out_channels, T(1), pw, patch, gn, positions, T(0),
                           target, positions);
          if (!pointwise) {
            std::fill(gx, gx + image_size, T(0));
            kernels::col2im(grad_cols, g, gx);
          }
        }
      }
    }
  });
  if (need_weight) {
    grad_weight = Tensor<T>::empty(weight.shape());
    T* pgw = grad_weight.data();
    parallel_for(0, weight_size, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        T sum = T(0);
        for (int64_t group = 0; group < groups; ++group) sum += partials.data()[group * weight_size + i];
        pgw[i] = sum;
      }
    });
  }
}

// out = weight ⋆ x (+ bias), where x holds `batch` images of geometry g and weight is
// (out_channels, g.patch_size()) in memory. The output is allocated with `out_shape` and gradients
// are returned in the shapes of x, weight and bias, so conv1d shares this with conv2d.
// ∂L/∂weight = Σₙ gₙ · colsₙᵀ,  ∂L/∂colsₙ = weightᵀ · gₙ (folded back by col2im),  ∂L/∂bias[o] = Σₙ,ₚ gₙ[o, p]
// where gₙ is the (out_channels, out_positions) gradient of image n and colsₙ its im2col patch matrix.
template <typename T>
Tensor<T> conv_forward(const char* op, const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                       int64_t batch, int64_t out_channels, const kernels::ConvGeometry& g, const Shape& out_shape) {
  Tensor<T> out = Tensor<T>::empty(out_shape);
  const Precision precision = current_precision();  // of every GEMM here, backward included
  const int64_t patch = g.patch_size(), positions = g.out_positions(), image_size = g.image_size();
  const bool pointwise = g.is_pointwise();
  const T* px = x.data();
  const T* pw = weight.data();
  const T* pb = bias.defined() ? bias.data() : nullptr;
  T* po = out.data();
  parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    // Scratch from the storage cache: freed and reused every step without touching the kernel.
    PatchMatrix<T> patches(g, precision);
    for (int64_t n = begin; n < end; ++n)
      conv_one_image(precision, g, out_channels, pw, pb, px + n * image_size, patches, po + n * out_channels * positions);
  });

  if (!autograd::any_requires_grad<T>({&x, &weight, &bias})) return out;
  autograd::record<T>(
      op, out, {x, weight, bias},
      [x = x.detach(), weight = weight.detach(), precision, bias_shape = bias.defined() ? bias.shape() : Shape{}, batch,
       out_channels, g](const Tensor<T>& grad_output, const autograd::NeedsGrad& needs) {
        const int64_t positions = g.out_positions();
        const T* pg = grad_output.data();
        Tensor<T> grad_x, grad_weight, grad_bias;
        if (needs[2]) grad_bias = channel_sums(pg, batch, out_channels, positions, bias_shape);
        conv_backward_images(
            x, weight, precision, batch, out_channels, g, needs[0], needs[1], /*grad_needs_scratch=*/false,
            [pg, out_channels, positions](int64_t n, T*) { return pg + n * out_channels * positions; }, grad_x,
            grad_weight);
        return autograd::GradList<T>{grad_x, grad_weight, grad_bias};
      });
  return out;
}

inline void check_conv_options(const char* op, int64_t stride_h, int64_t stride_w, int64_t padding_h,
                               int64_t padding_w) {
  CCT_CHECK(stride_h >= 1 && stride_w >= 1, op, ": stride must be at least 1, got (", stride_h, ", ", stride_w, ")");
  CCT_CHECK(padding_h >= 0 && padding_w >= 0, op, ": padding must be non-negative, got (", padding_h, ", ",
            padding_w, ")");
}

template <typename T>
void check_conv_bias(const char* op, const Tensor<T>& bias, const Tensor<T>& weight) {
  if (!bias.defined()) return;
  CCT_CHECK_SHAPE(bias.shape() == Shape{weight.shape()[0]}, op, ": bias shape ", shape_str(bias.shape()),
                  " does not match weight shape ", shape_str(weight.shape()), " (needs (", weight.shape()[0], ",))");
}

// Checks conv2d's arguments (naming `op` in errors) and returns its geometry.
template <typename T>
kernels::ConvGeometry conv2d_geometry(const char* op, const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                                      const Conv2dParams& params) {
  CCT_CHECK_SHAPE(x.dim() == 4, op, ": input must be 4-D (N, C, H, W), got shape ", shape_str(x.shape()));
  CCT_CHECK_SHAPE(weight.dim() == 4, op, ": weight must be 4-D (out_channels, in_channels, kh, kw), got shape ",
                  shape_str(weight.shape()));
  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  CCT_CHECK_SHAPE(xs[1] == ws[1], op, ": input shape ", shape_str(xs), " has ", xs[1],
                  " channels but weight shape ", shape_str(ws), " expects ", ws[1]);
  CCT_CHECK_SHAPE(ws[2] >= 1 && ws[3] >= 1, op, ": empty kernel in weight shape ", shape_str(ws));
  check_conv_bias(op, bias, weight);
  check_conv_options(op, params.stride_h, params.stride_w, params.padding_h, params.padding_w);
  CCT_CHECK_SHAPE(xs[2] + 2 * params.padding_h >= ws[2] && xs[3] + 2 * params.padding_w >= ws[3], op, ": kernel (",
                  ws[2], ", ", ws[3], ") of weight shape ", shape_str(ws), " is larger than the padded input (",
                  xs[2] + 2 * params.padding_h, ", ", xs[3] + 2 * params.padding_w, ") of input shape ", shape_str(xs),
                  " with padding (", params.padding_h, ", ", params.padding_w, ")");
  kernels::ConvGeometry g;
  g.channels = xs[1];
  g.height = xs[2];
  g.width = xs[3];
  g.kernel_h = ws[2];
  g.kernel_w = ws[3];
  g.stride_h = params.stride_h;
  g.stride_w = params.stride_w;
  g.padding_h = params.padding_h;
  g.padding_w = params.padding_w;
  g.out_h = kernels::conv_output_size(g.height, g.kernel_h, g.stride_h, g.padding_h);
  g.out_w = kernels::conv_output_size(g.width, g.kernel_w, g.stride_w, g.padding_w);
  return g;
}
}  // namespace detail

// ---- conv2d: out[n, o] = bias[o] + Σ_c weight[o, c] ⋆ x[n, c] ---------------------------------------
// x (N, C, H, W), weight (O, C, kh, kw), bias (O,) or an undefined Tensor<T>() for none.
// Output (N, O, floor((H + 2·padding_h − kh)/stride_h) + 1, floor((W + 2·padding_w − kw)/stride_w) + 1);
// padding is zeros. Gradients: see detail::conv_forward.
template <typename T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, const Conv2dParams& params) {
  const kernels::ConvGeometry g = detail::conv2d_geometry("conv2d", x, weight, bias, params);
  const int64_t batch = x.size(0), out_channels = weight.size(0);
  return detail::conv_forward("conv2d", x, weight, bias, batch, out_channels, g, {batch, out_channels, g.out_h, g.out_w});
}

// The same stride and padding along both spatial dims.
template <typename T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, int64_t stride = 1,
                 int64_t padding = 0) {
  return conv2d(x, weight, bias, Conv2dParams{stride, stride, padding, padding});
}

// ---- conv1d: out[n, o] = bias[o] + Σ_c weight[o, c] ⋆ x[n, c] ----------------------------------------
// x (N, C, L), weight (O, C, k), bias (O,) or undefined. Output (N, O, floor((L + 2·padding − k)/stride) + 1).
// It is conv2d on images of height 1 (the memory layouts coincide, so nothing is copied).
template <typename T>
Tensor<T> conv1d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, int64_t stride = 1,
                 int64_t padding = 0) {
  CCT_CHECK_SHAPE(x.dim() == 3, "conv1d: input must be 3-D (N, C, L), got shape ", shape_str(x.shape()));
  CCT_CHECK_SHAPE(weight.dim() == 3, "conv1d: weight must be 3-D (out_channels, in_channels, k), got shape ",
                  shape_str(weight.shape()));
  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  CCT_CHECK_SHAPE(xs[1] == ws[1], "conv1d: input shape ", shape_str(xs), " has ", xs[1],
                  " channels but weight shape ", shape_str(ws), " expects ", ws[1]);
  CCT_CHECK_SHAPE(ws[2] >= 1, "conv1d: empty kernel in weight shape ", shape_str(ws));
  detail::check_conv_bias("conv1d", bias, weight);
  detail::check_conv_options("conv1d", 1, stride, 0, padding);
  CCT_CHECK_SHAPE(xs[2] + 2 * padding >= ws[2], "conv1d: kernel ", ws[2], " of weight shape ", shape_str(ws),
                  " is larger than the padded input length ", xs[2] + 2 * padding, " of input shape ", shape_str(xs),
                  " with padding ", padding);

  kernels::ConvGeometry g;
  g.channels = xs[1];
  g.width = xs[2];
  g.kernel_w = ws[2];
  g.stride_w = stride;
  g.padding_w = padding;
  g.out_w = kernels::conv_output_size(g.width, g.kernel_w, g.stride_w, g.padding_w);
  return detail::conv_forward("conv1d", x, weight, bias, xs[0], ws[0], g, {xs[0], ws[0], g.out_w});
}

// The names this header's backward nodes carry (ops/registry.hpp; each has a gradient check).
CCT_REGISTER_OPS(conv, "conv2d", "conv1d");

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPS_CONV_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE Tensor<T> conv2d<T>(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&, const Conv2dParams&); \
  CCT_EXTERN_TEMPLATE Tensor<T> conv2d<T>(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&, int64_t, int64_t); \
  CCT_EXTERN_TEMPLATE Tensor<T> conv1d<T>(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&, int64_t, int64_t);
CCT_FOR_FLOATING_TYPES(CCT_OPS_CONV_TEMPLATES)
#undef CCT_OPS_CONV_TEMPLATES
#endif

}  // namespace cct
