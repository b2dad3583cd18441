// im2col / col2im: unfold a padded image into the patch matrix a convolution multiplies by its weight,
// and fold a patch matrix back (the adjoint), for conv.hpp (not public API).
//
// For one image (C, H, W) and a kernel (kh, kw) the patch matrix `cols` is (C·kh·kw) × (out_h·out_w),
// row-major: row (c·kh + i)·kw + j holds, for every output position (oh, ow), the input pixel
// x[c, oh·stride_h − padding_h + i, ow·stride_w − padding_w + j], or 0 where that lies in the padding.
// Then output (O, out_h·out_w) = weight (O, C·kh·kw) · cols, which is already the NCHW layout.
#pragma once

#include <algorithm>
#include <cstdint>

namespace cct::kernels {

// Sizes of one convolution (or pooling) window sweep over a single image.
struct ConvGeometry {
  int64_t channels = 1, height = 1, width = 1;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t padding_h = 0, padding_w = 0;
  int64_t out_h = 1, out_w = 1;

  int64_t image_size() const { return channels * height * width; }
  int64_t patch_size() const { return channels * kernel_h * kernel_w; }  // rows of cols
  int64_t out_positions() const { return out_h * out_w; }                 // columns of cols
  // A 1×1 kernel with stride 1 and no padding: cols is the image itself, so no unfolding is needed.
  bool is_pointwise() const {
    return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && padding_h == 0 && padding_w == 0;
  }
};

// floor((input + 2·padding − kernel) / stride) + 1; callers check that input + 2·padding ≥ kernel.
inline int64_t conv_output_size(int64_t input, int64_t kernel, int64_t stride, int64_t padding) {
  return (input + 2 * padding - kernel) / stride + 1;
}

// The output positions [begin, end) whose input index o·stride − padding + offset lies in [0, input).
// Computing the range once per kernel row lets the inner loops run without bounds checks.
struct ValidRange {
  int64_t begin, end;
};
inline ValidRange valid_output_range(int64_t outputs, int64_t input, int64_t stride, int64_t padding,
                                     int64_t offset) {
  const int64_t first_input = offset - padding;  // input index read by output position 0
  const int64_t begin = first_input >= 0 ? 0 : (-first_input + stride - 1) / stride;
  const int64_t last = input - 1 - first_input;  // largest o·stride that stays inside
  const int64_t end = last >= 0 ? std::min(outputs, last / stride + 1) : 0;
  return {std::min(begin, end), end};
}

// Whether im2col unfolds g by block copies: stride 1 with as many output columns as input columns (a
// "same" convolution), where a row of cols is the plane shifted by one offset.
inline bool unfolds_by_blocks(const ConvGeometry& g) {
  return g.stride_h == 1 && g.stride_w == 1 && g.out_w == g.width;
}

// im2col for such a geometry: per row of cols one block copy, copy(src, n, dst) (which may convert,
// e.g. to bf16 patterns, Col being their type), then zeros where the window hangs over the padding
// (whole output rows above and below, the wrapped-around columns in between). Copying row by row made
// three library calls per 16 pixels, a third of a CCT-2 conv's GEMM time.
template <typename T, typename Col, typename Copy>
void im2col_by_blocks(const T* image, const ConvGeometry& g, Col* cols, const Copy& copy) {
  const int64_t out_w = g.out_w, positions = g.out_positions();
  for (int64_t c = 0; c < g.channels; ++c) {
    const T* plane = image + c * g.height * g.width;
    for (int64_t i = 0; i < g.kernel_h; ++i) {
      const ValidRange rows = valid_output_range(g.out_h, g.height, 1, g.padding_h, i);
      for (int64_t j = 0; j < g.kernel_w; ++j) {
        const ValidRange columns = valid_output_range(out_w, g.width, 1, g.padding_w, j);
        Col* dst = cols + ((c * g.kernel_h + i) * g.kernel_w + j) * positions;
        const int64_t offset = (i - g.padding_h) * g.width + (j - g.padding_w);  // src index − dst index
        // The valid rows' span, clipped to the plane: what is clipped is wrapped columns only.
        const int64_t first = std::min(std::max(rows.begin * out_w, -offset), rows.end * out_w);
        const int64_t last = std::max(first, std::min(rows.end * out_w, g.height * g.width - offset));
        std::fill(dst, dst + first, Col(0));
        copy(plane + first + offset, last - first, dst + first);
        std::fill(dst + last, dst + positions, Col(0));
        if (columns.begin > 0 || columns.end < out_w)
          for (int64_t oh = rows.begin; oh < rows.end; ++oh) {
            Col* row = dst + oh * out_w;
            for (int64_t ow = 0; ow < columns.begin; ++ow) row[ow] = Col(0);
            for (int64_t ow = columns.end; ow < out_w; ++ow) row[ow] = Col(0);
          }
      }
    }
  }
}

// Fills cols (patch_size × out_positions) from one image (C, H, W).
template <typename T>
void im2col(const T* image, const ConvGeometry& g, T* cols) {
  const int64_t out_w = g.out_w, positions = g.out_positions();
  if (unfolds_by_blocks(g)) {
    im2col_by_blocks(image, g, cols, [](const T* src, int64_t n, T* dst) { std::copy(src, src + n, dst); });
    return;
  }
  for (int64_t c = 0; c < g.channels; ++c) {
    const T* plane = image + c * g.height * g.width;
    for (int64_t i = 0; i < g.kernel_h; ++i) {
      const ValidRange rows = valid_output_range(g.out_h, g.height, g.stride_h, g.padding_h, i);
      for (int64_t j = 0; j < g.kernel_w; ++j) {
        const ValidRange cols_in = valid_output_range(out_w, g.width, g.stride_w, g.padding_w, j);
        T* dst = cols + ((c * g.kernel_h + i) * g.kernel_w + j) * positions;
        std::fill(dst, dst + rows.begin * out_w, T(0));
        for (int64_t oh = rows.begin; oh < rows.end; ++oh) {
          // src[ow·stride_w] is the pixel under kernel tap (i, j) for output column ow.
          const T* src = plane + (oh * g.stride_h - g.padding_h + i) * g.width + (j - g.padding_w);
          T* row = dst + oh * out_w;
          std::fill(row, row + cols_in.begin, T(0));
          if (g.stride_w == 1) {
            std::copy(src + cols_in.begin, src + cols_in.end, row + cols_in.begin);
          } else {
            for (int64_t ow = cols_in.begin; ow < cols_in.end; ++ow) row[ow] = src[ow * g.stride_w];
          }
          std::fill(row + cols_in.end, row + out_w, T(0));
        }
        std::fill(dst + rows.end * out_w, dst + positions, T(0));
      }
    }
  }
}

// The adjoint of im2col: adds every entry of cols onto the pixel it was copied from (padding entries
// are dropped). `image` must be initialised (usually zeroed) by the caller.
template <typename T>
void col2im(const T* cols, const ConvGeometry& g, T* image) {
  const int64_t out_w = g.out_w, positions = g.out_positions();
  if (g.stride_h == 1 && g.stride_w == 1 && out_w == g.width) {
    // The "same" stride-1 case of im2col's block copy: a row of cols adds onto the plane shifted by one
    // offset, as one contiguous span when no column wraps, else row by row over the valid columns;
    // unit-stride loops that vectorise, where the general loop's run-time stride kept them scalar.
    for (int64_t c = 0; c < g.channels; ++c) {
      T* plane = image + c * g.height * g.width;
      for (int64_t i = 0; i < g.kernel_h; ++i) {
        const ValidRange rows = valid_output_range(g.out_h, g.height, 1, g.padding_h, i);
        for (int64_t j = 0; j < g.kernel_w; ++j) {
          const ValidRange columns = valid_output_range(out_w, g.width, 1, g.padding_w, j);
          const T* src = cols + ((c * g.kernel_h + i) * g.kernel_w + j) * positions;
          const int64_t offset = (i - g.padding_h) * g.width + (j - g.padding_w);  // plane index − src index
          if (columns.begin == 0 && columns.end == out_w) {
            for (int64_t k = rows.begin * out_w; k < rows.end * out_w; ++k) plane[k + offset] += src[k];
          } else {
            for (int64_t oh = rows.begin; oh < rows.end; ++oh)
              for (int64_t k = oh * out_w + columns.begin; k < oh * out_w + columns.end; ++k) plane[k + offset] += src[k];
          }
        }
      }
    }
    return;
  }
  for (int64_t c = 0; c < g.channels; ++c) {
    T* plane = image + c * g.height * g.width;
    for (int64_t i = 0; i < g.kernel_h; ++i) {
      const ValidRange rows = valid_output_range(g.out_h, g.height, g.stride_h, g.padding_h, i);
      for (int64_t j = 0; j < g.kernel_w; ++j) {
        const ValidRange cols_in = valid_output_range(out_w, g.width, g.stride_w, g.padding_w, j);
        const T* src_rows = cols + ((c * g.kernel_h + i) * g.kernel_w + j) * positions;
        for (int64_t oh = rows.begin; oh < rows.end; ++oh) {
          T* dst = plane + (oh * g.stride_h - g.padding_h + i) * g.width + (j - g.padding_w);
          const T* row = src_rows + oh * out_w;
          for (int64_t ow = cols_in.begin; ow < cols_in.end; ++ow) dst[ow * g.stride_w] += row[ow];
        }
      }
    }
  }
}

}  // namespace cct::kernels
