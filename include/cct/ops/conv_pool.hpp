// conv2d_max_pool2d: max_pool2d(conv2d(x)) as one op, image by image, for CCT's tokenizer.
//
// Run apart, the convolution writes its whole (N, O, H, W) output to memory and the max-pool reads it
// back: four times the pooled size, twice over, and in a bf16 CCT-2 inference the pool alone was 13% of
// the time. Fused, each thread convolves one image into a scratch buffer that stays in cache and pools
// it from there, so only the pooled output (and, when recording, its argmax) reaches memory, and the
// full-size output is never allocated. Values and gradients equal the two ops' (same GEMMs, same pool
// loops, the same argmax rule); only the bias gradient sums in another order.
#pragma once

#include <array>
#include <cstdint>
#include <limits>

#include "conv.hpp"
#include "pool.hpp"
#include "registry.hpp"

namespace cct {

// ---- conv2d_max_pool2d: out = max_pool2d(conv2d(x, weight, bias, conv), kernel, stride, padding) ----------
// x (N, C, H, W), weight (O, C, kh, kw), bias (O,) or undefined; the pool's kernel, stride and padding
// apply along both spatial dims. Output (N, O, H'', W'') as the two ops give it.
// With y = conv2d(x) and a(o) the argmax of output o's window: ∂L/∂y[i] = Σ_{o: a(o) = i} g[o], then
// conv2d's backward on that, image by image;  ∂L/∂bias[c] = Σ_{n, p} g[n, c, p] (each g[o] lands on one y).
template <typename T>
Tensor<T> conv2d_max_pool2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                            const Conv2dParams& conv, int64_t pool_kernel, int64_t pool_stride,
                            int64_t pool_padding = 0) {
  const char* op = "conv2d_max_pool2d";
  const kernels::ConvGeometry g = detail::conv2d_geometry(op, x, weight, bias, conv);
  const int64_t batch = x.size(0), out_channels = weight.size(0);
  const kernels::ConvGeometry pool =
      detail::max_pool2d_geometry(op, {batch, out_channels, g.out_h, g.out_w}, {pool_kernel, pool_kernel},
                                  {pool_stride, pool_stride}, {pool_padding, pool_padding});
  CCT_CHECK(g.out_h * g.out_w <= std::numeric_limits<int32_t>::max(), op, ": convolution outputs of ", g.out_h,
            " x ", g.out_w, " elements are too large for int32 argmax indices");
  const int64_t positions = g.out_positions(), pooled = pool.out_positions(), image_size = g.image_size();

  Tensor<T> out = Tensor<T>::empty({batch, out_channels, pool.out_h, pool.out_w});
  const Precision precision = current_precision();  // of every GEMM here, backward included
  const bool recording = autograd::any_requires_grad<T>({&x, &weight, &bias});
  const Tensor<int32_t> argmax = recording ? Tensor<int32_t>::empty({batch * out_channels * pooled}) : Tensor<int32_t>();
  const T* px = x.data();
  const T* pw = weight.data();
  const T* pb = bias.defined() ? bias.data() : nullptr;
  T* po = out.data();
  int32_t* pa = recording ? argmax.data() : nullptr;
  parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    // Per-thread scratch from the storage cache: the patch matrix and one image's convolution output.
    detail::PatchMatrix<T> patches(g, precision);
    const Tensor<T> image_out = Tensor<T>::empty({out_channels * positions});
    for (int64_t n = begin; n < end; ++n) {
      detail::conv_one_image(precision, g, out_channels, pw, pb, px + n * image_size, patches, image_out.data());
      const int64_t first = n * out_channels * pooled;
      detail::max_pool_planes_dispatch(pool, image_out.data(), po + first, pa ? pa + first : nullptr, 0,
                                       out_channels);
    }
  });
  if (!recording) return out;

  autograd::record<T>(
      op, out, {x, weight, bias},
      [x = x.detach(), weight = weight.detach(), argmax, precision, bias_shape = bias.defined() ? bias.shape() : Shape{},
       batch, out_channels, g, positions, pooled](const Tensor<T>& grad_output, const autograd::NeedsGrad& needs) {
        const T* pg = grad_output.data();
        const int32_t* pa = argmax.data();
        Tensor<T> grad_x, grad_weight, grad_bias;
        if (needs[2]) grad_bias = detail::channel_sums(pg, batch, out_channels, pooled, bias_shape);
        // Image n's convolution-output gradient, scattered from its pooled gradient into the scratch.
        const auto image_grad = [pg, pa, out_channels, positions, pooled](int64_t n, T* scratch) -> const T* {
          std::fill(scratch, scratch + out_channels * positions, T(0));
          for (int64_t c = 0; c < out_channels; ++c) {
            T* plane = scratch + c * positions;
            const int64_t first = (n * out_channels + c) * pooled;
            for (int64_t o = first; o < first + pooled; ++o) plane[pa[o]] += pg[o];
          }
          return scratch;
        };
        detail::conv_backward_images(x, weight, precision, batch, out_channels, g, needs[0], needs[1],
                                     /*grad_needs_scratch=*/true, image_grad, grad_x, grad_weight);
        return autograd::GradList<T>{grad_x, grad_weight, grad_bias};
      });
  return out;
}

// The names this header's backward nodes carry (ops/registry.hpp; each has a gradient check).
CCT_REGISTER_OPS(conv_pool, "conv2d_max_pool2d");

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPS_CONV_POOL_TEMPLATES(T)                                                                            \
  CCT_EXTERN_TEMPLATE Tensor<T> conv2d_max_pool2d<T>(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&, \
                                                     const Conv2dParams&, int64_t, int64_t, int64_t);
CCT_FOR_FLOATING_TYPES(CCT_OPS_CONV_POOL_TEMPLATES)
#undef CCT_OPS_CONV_POOL_TEMPLATES
#endif

}  // namespace cct
