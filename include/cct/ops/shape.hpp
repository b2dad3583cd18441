// Shape ops: reshape/view, permute/transpose, narrow/slice, concat/split, (un)squeeze, flatten, expand.
//
// reshape and the ops built on it (view, squeeze, unsqueeze, flatten) share the input's storage, as
// every tensor is contiguous; the others materialise a fresh contiguous tensor (see core/tensor.hpp)
// through one strided-copy kernel. Each forward is followed by its backward.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "../autograd/node.hpp"
#include "../core/parallel.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "kernels/broadcast.hpp"
#include "registry.hpp"

namespace cct {

namespace detail {

// A strided walk: element idx of a dense (sizes) block sits at Σ idx[d]·strides[d] in a strided buffer.
struct StridedLayout {
  Shape sizes;
  Shape strides;
};

// Drops size-1 dims and merges neighbours that step through memory as one dim, so the copy loops
// below see as few (and as long) runs as possible. A permute of (B, C, H, W) to (B, H, W, C) becomes
// a plain 3-D transpose, a broadcast over several leading dims a single stride-0 dim.
inline StridedLayout simplify_strided_layout(const Shape& sizes, const Shape& strides) {
  StridedLayout out;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    if (!out.sizes.empty() && out.strides.back() == strides[d] * sizes[d]) {
      out.sizes.back() *= sizes[d];
      out.strides.back() = strides[d];
    } else {
      out.sizes.push_back(sizes[d]);
      out.strides.push_back(strides[d]);
    }
  }
  return out;
}

// Calls fn(dense_offset, strided_offset, count, stride) for every run along the last dim of the
// layout, runs split across threads (each run is handled by exactly one thread).
template <typename Fn>
void for_each_strided_run(const StridedLayout& layout, Fn&& fn) {
  const int64_t rank = static_cast<int64_t>(layout.sizes.size());
  if (rank == 0) {
    fn(int64_t{0}, int64_t{0}, int64_t{1}, int64_t{0});
    return;
  }
  const int64_t inner = layout.sizes[rank - 1];
  const int64_t inner_stride = layout.strides[rank - 1];
  const int64_t runs = shape_numel(layout.sizes) / inner;
  parallel_for(0, runs, std::max<int64_t>(1, (int64_t{1} << 14) / inner), [&](int64_t begin, int64_t end) {
    for (int64_t run = begin; run < end; ++run) {
      int64_t rest = run, offset = 0;
      for (int64_t d = rank - 2; d >= 0; --d) {
        offset += (rest % layout.sizes[d]) * layout.strides[d];
        rest /= layout.sizes[d];
      }
      fn(run * inner, offset, inner, inner_stride);
    }
  });
}

// dst (dense, of shape `sizes`) = src read through `strides`. When the source's unit-stride dim is
// not the destination's last one (a transpose), the copy goes in 32×32 tiles so that both sides stay
// in cache; otherwise it copies whole runs.
template <typename T>
void strided_gather(const T* src, const Shape& sizes, const Shape& strides, T* dst) {
  if (shape_numel(sizes) == 0) return;
  const StridedLayout layout = simplify_strided_layout(sizes, strides);
  const int64_t rank = static_cast<int64_t>(layout.sizes.size());
  int64_t unit_dim = -1;  // a dim other than the last that walks the source contiguously
  if (rank >= 2 && layout.strides[rank - 1] != 1)
    for (int64_t d = 0; d < rank - 1; ++d)
      if (layout.strides[d] == 1) unit_dim = d;

  if (unit_dim < 0) {
    for_each_strided_run(layout, [&](int64_t dense, int64_t strided, int64_t count, int64_t stride) {
      T* out = dst + dense;
      const T* in = src + strided;
      if (stride == 1) std::copy(in, in + count, out);
      else if (stride == 0) std::fill(out, out + count, *in);
      else
        for (int64_t i = 0; i < count; ++i) out[i] = in[i * stride];
    });
    return;
  }

  constexpr int64_t kTile = 32;
  const Shape dense_strides = contiguous_strides(layout.sizes);
  const int64_t rows = layout.sizes[unit_dim], cols = layout.sizes[rank - 1];
  const int64_t row_stride_dst = dense_strides[unit_dim], col_stride_src = layout.strides[rank - 1];
  const int64_t row_tiles = (rows + kTile - 1) / kTile;
  const int64_t planes = shape_numel(layout.sizes) / (rows * cols);  // the other dims, together
  const int64_t tasks = planes * row_tiles;
  parallel_for(0, tasks, std::max<int64_t>(1, (int64_t{1} << 14) / (kTile * cols)), [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      int64_t plane = task / row_tiles, src_base = 0, dst_base = 0;
      for (int64_t d = rank - 2; d >= 0; --d) {
        if (d == unit_dim) continue;
        const int64_t index = plane % layout.sizes[d];
        plane /= layout.sizes[d];
        src_base += index * layout.strides[d];
        dst_base += index * dense_strides[d];
      }
      const int64_t row_begin = (task % row_tiles) * kTile, row_end = std::min(rows, row_begin + kTile);
      for (int64_t col_begin = 0; col_begin < cols; col_begin += kTile) {
        const int64_t col_end = std::min(cols, col_begin + kTile);
        for (int64_t r = row_begin; r < row_end; ++r) {
          T* out = dst + dst_base + r * row_stride_dst;
          const T* in = src + src_base + r;
          for (int64_t c = col_begin; c < col_end; ++c) out[c] = in[c * col_stride_src];
        }
      }
    }
  });
}

// The adjoint of strided_gather for layouts that never hit one element twice (slices):
// dst read through `strides` = src (dense). Elements of dst outside the layout are left alone.
template <typename T>
void strided_scatter(const T* src, const Shape& sizes, const Shape& strides, T* dst) {
  if (shape_numel(sizes) == 0) return;
  for_each_strided_run(simplify_strided_layout(sizes, strides),
                       [&](int64_t dense, int64_t strided, int64_t count, int64_t stride) {
                         const T* in = src + dense;
                         T* out = dst + strided;
                         for (int64_t i = 0; i < count; ++i) out[i * stride] = in[i];
                       });
}

// A copy of x broadcast to `shape` (x's shape must broadcast to it; checked by the callers).
template <typename T>
Tensor<T> broadcast_copy(const Tensor<T>& x, const Shape& shape) {
  Tensor<T> out = Tensor<T>::empty(shape);
  strided_gather(x.data(), shape, broadcast_strides(x.shape(), shape), out.data());
  return out;
}

// x[..., start : start + length·step : step, ...] along `dim` (already validated), as a new tensor.
template <typename T>
Tensor<T> strided_slice_copy(const Tensor<T>& x, int64_t dim, int64_t start, int64_t length, int64_t step) {
  Shape out_shape = x.shape();
  out_shape[dim] = length;
  Shape strides = contiguous_strides(x.shape());
  const int64_t offset = start * strides[dim];
  strides[dim] *= step;
  Tensor<T> out = Tensor<T>::empty(out_shape);
  if (out.numel() > 0) strided_gather(x.data() + offset, out_shape, strides, out.data());
  return out;
}

// The adjoint of strided_slice_copy: zeros of `input_shape` with `gradient` written into the slice.
template <typename T>
Tensor<T> strided_slice_backward(const Tensor<T>& gradient, const Shape& input_shape, int64_t dim, int64_t start,
                                 int64_t step) {
  Tensor<T> out = Tensor<T>::zeros(input_shape);
  Shape strides = contiguous_strides(input_shape);
  const int64_t offset = start * strides[dim];
  strides[dim] *= step;
  if (gradient.numel() > 0) strided_scatter(gradient.data(), gradient.shape(), strides, out.data() + offset);
  return out;
}

// Shares x's storage under `shape` (same element count, checked by the callers) and records a node
// named `op` whose backward views the gradient back.
template <typename T>
Tensor<T> reshape_view(const Tensor<T>& x, const Shape& shape, const char* op) {
  Tensor<T> out = x.view_as_shape(shape);
  autograd::record<T>(op, out, {x}, [input_shape = x.shape()](const Tensor<T>& g, const autograd::NeedsGrad&) {
    return autograd::GradList<T>{g.view_as_shape(input_shape)};
  });
  return out;
}

}  // namespace detail

// ---- reshape / view: the same elements, in the same order, under another shape -------------------
// At most one size may be -1: it is inferred from the others. Shares x's storage.
// ∂out/∂x = identity (the gradient is reshaped back).
template <typename T>
Tensor<T> reshape(const Tensor<T>& x, Shape shape) {
  int64_t inferred = -1, known = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == -1) {
      CCT_CHECK_SHAPE(inferred < 0, "reshape: more than one -1 in target shape ", shape_str(shape),
                      " (input shape ", shape_str(x.shape()), ")");
      inferred = static_cast<int64_t>(d);
    } else {
      CCT_CHECK_SHAPE(shape[d] >= 0, "reshape: invalid size ", shape[d], " in target shape ", shape_str(shape),
                      " (input shape ", shape_str(x.shape()), ")");
      known *= shape[d];
    }
  }
  if (inferred >= 0) {
    CCT_CHECK_SHAPE(known > 0 && x.numel() % known == 0, "reshape: cannot reshape a tensor of shape ",
                    shape_str(x.shape()), " (", x.numel(), " elements) into shape ", shape_str(shape));
    shape[inferred] = x.numel() / known;
  }
  CCT_CHECK_SHAPE(shape_numel(shape) == x.numel(), "reshape: cannot reshape a tensor of shape ",
                  shape_str(x.shape()), " (", x.numel(), " elements) into shape ", shape_str(shape), " (",
                  shape_numel(shape), " elements)");
  return detail::reshape_view(x, shape, "reshape");
}

template <typename T>
Tensor<T> view(const Tensor<T>& x, const Shape& shape) { return reshape(x, shape); }

// ---- permute: out dim d is x dim dims[d] (materialised) -----------------------------------------
// ∂out/∂x: the gradient permuted by the inverse permutation.
template <typename T>
Tensor<T> permute(const Tensor<T>& x, const std::vector<int64_t>& dims) {
  const int64_t rank = x.dim();
  CCT_CHECK_SHAPE(static_cast<int64_t>(dims.size()) == rank, "permute: dims ", shape_str(dims),
                  " are not a permutation of the dims of a tensor of shape ", shape_str(x.shape()));
  std::vector<int64_t> order(rank);
  std::vector<bool> seen(rank, false);
  for (int64_t d = 0; d < rank; ++d) {
    const int64_t wrapped = dims[d] < 0 ? dims[d] + rank : dims[d];
    CCT_CHECK_SHAPE(wrapped >= 0 && wrapped < rank && !seen[wrapped], "permute: dims ", shape_str(dims),
                    " are not a permutation of the dims of a tensor of shape ", shape_str(x.shape()));
    seen[wrapped] = true;
    order[d] = wrapped;
  }
  const Shape in_strides = contiguous_strides(x.shape());
  Shape out_shape(rank), read_strides(rank);
  std::vector<int64_t> inverse(rank);
  for (int64_t d = 0; d < rank; ++d) {
    out_shape[d] = x.shape()[order[d]];
    read_strides[d] = in_strides[order[d]];
    inverse[order[d]] = d;
  }
  Tensor<T> out = Tensor<T>::empty(out_shape);
  detail::strided_gather(x.data(), out_shape, read_strides, out.data());
  autograd::record<T>("permute", out, {x}, [inverse](const Tensor<T>& g, const autograd::NeedsGrad&) {
    return autograd::GradList<T>{permute(g, inverse)};
  });
  return out;
}

// Swaps two dims (materialised). ∂out/∂x: the gradient with the same two dims swapped back.
template <typename T>
Tensor<T> transpose(const Tensor<T>& x, int64_t dim0, int64_t dim1) {
  const int64_t rank = x.dim();
  const int64_t a = normalize_dim(dim0, rank, "transpose"), b = normalize_dim(dim1, rank, "transpose");
  std::vector<int64_t> order(rank);
  for (int64_t d = 0; d < rank; ++d) order[d] = d;
  std::swap(order[a], order[b]);
  return permute(x, order);
}

// ---- narrow: x[..., start : start + length, ...] along dim (materialised) ------------------------
// ∂out/∂x: the gradient placed at the narrowed positions, zero elsewhere.
template <typename T>
Tensor<T> narrow(const Tensor<T>& x, int64_t dim, int64_t start, int64_t length) {
  const int64_t d = normalize_dim(dim, x.dim(), "narrow");
  const int64_t size = x.shape()[d];
  CCT_CHECK_SHAPE(start >= 0 && length >= 0 && start + length <= size, "narrow: start ", start, " and length ",
                  length, " are out of range for dim ", dim, " (size ", size, ") of a tensor of shape ",
                  shape_str(x.shape()));
  Tensor<T> out = detail::strided_slice_copy(x, d, start, length, 1);
  autograd::record<T>("narrow", out, {x},
                      [input_shape = x.shape(), d, start](const Tensor<T>& g, const autograd::NeedsGrad&) {
                        return autograd::GradList<T>{detail::strided_slice_backward(g, input_shape, d, start, 1)};
                      });
  return out;
}

// ---- slice: x[..., start:end:step, ...] along dim, Python's rules (materialised) -----------------
// Negative start/end count from the end; both are then clamped to [0, size]; step must be positive.
// Pass kSliceEnd as end for "to the end". ∂out/∂x: the gradient scattered back to the kept positions.
constexpr int64_t kSliceEnd = std::numeric_limits<int64_t>::max();

template <typename T>
Tensor<T> slice(const Tensor<T>& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1) {
  const int64_t d = normalize_dim(dim, x.dim(), "slice");
  CCT_CHECK_SHAPE(step > 0, "slice: step must be positive, got ", step, " (tensor of shape ", shape_str(x.shape()),
                  ")");
  const int64_t size = x.shape()[d];
  auto clamp_index = [size](int64_t index) {
    if (index < 0) index = index < -size ? 0 : index + size;  // written so -kSliceEnd cannot overflow
    return std::min(index, size);
  };
  const int64_t first = clamp_index(start), last = clamp_index(end);
  const int64_t length = last > first ? (last - first + step - 1) / step : 0;
  Tensor<T> out = detail::strided_slice_copy(x, d, first, length, step);
  autograd::record<T>("slice", out, {x},
                      [input_shape = x.shape(), d, first, step](const Tensor<T>& g, const autograd::NeedsGrad&) {
                        return autograd::GradList<T>{detail::strided_slice_backward(g, input_shape, d, first, step)};
                      });
  return out;
}

// ---- concat: tensors joined along dim (every other dim equal) ---------------------------------------
// ∂out/∂inputs[k]: the gradient's slab of inputs[k] along dim; none for inputs that need none.
template <typename T>
Tensor<T> concat(const std::vector<Tensor<T>>& inputs, int64_t dim) {
  CCT_CHECK_SHAPE(!inputs.empty(), "concat: needs at least one tensor");
  const Shape& first = inputs[0].shape();
  const int64_t rank = static_cast<int64_t>(first.size());
  const int64_t d = normalize_dim(dim, rank, "concat");
  auto all_shapes = [&]() {
    std::string text;
    for (size_t k = 0; k < inputs.size(); ++k) text += (k ? ", " : "") + shape_str(inputs[k].shape());
    return text;
  };
  Shape out_shape = first;
  out_shape[d] = 0;
  std::vector<int64_t> offsets;  // start of each input along dim
  for (const auto& t : inputs) {
    bool fits = t.dim() == rank;
    for (int64_t k = 0; fits && k < rank; ++k) fits = k == d || t.shape()[k] == first[k];
    CCT_CHECK_SHAPE(fits, "concat: along dim ", dim, " every other dim must match, got shapes ", all_shapes());
    offsets.push_back(out_shape[d]);
    out_shape[d] += t.shape()[d];
  }
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < d; ++k) outer *= first[k];
  for (int64_t k = d + 1; k < rank; ++k) inner *= first[k];
  const int64_t out_row = out_shape[d] * inner;  // one outer index's worth of output

  Tensor<T> out = Tensor<T>::empty(out_shape);
  T* po = out.data();
  const int64_t count = static_cast<int64_t>(inputs.size());
  // Each (outer index, input) pair is one contiguous block copy; threads split the pairs.
  parallel_for(0, outer * count, std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(1, out_row / count)),
               [&](int64_t begin, int64_t end) {
                 for (int64_t task = begin; task < end; ++task) {
                   const int64_t o = task / count, k = task % count;
                   const int64_t block = inputs[k].shape()[d] * inner;
                   const T* in = inputs[k].data() + o * block;
                   std::copy(in, in + block, po + o * out_row + offsets[k] * inner);
                 }
               });

  std::vector<int64_t> sizes;
  for (const auto& t : inputs) sizes.push_back(t.shape()[d]);
  autograd::record<T>("concat", out, inputs, [d, offsets, sizes](const Tensor<T>& g, const autograd::NeedsGrad& needs) {
    autograd::GradList<T> grads(sizes.size());
    for (size_t k = 0; k < sizes.size(); ++k)
      if (needs[k]) grads[k] = detail::strided_slice_copy(g, d, offsets[k], sizes[k], 1);
    return grads;
  });
  return out;
}

// ---- split: consecutive pieces along dim, each a narrow (its own node) ------------------------------
// Pieces of split_size; the last one is smaller when split_size does not divide the dim.
template <typename T>
std::vector<Tensor<T>> split(const Tensor<T>& x, int64_t split_size, int64_t dim = 0) {
  const int64_t d = normalize_dim(dim, x.dim(), "split");
  const int64_t size = x.shape()[d];
  CCT_CHECK_SHAPE(split_size > 0, "split: split_size must be positive, got ", split_size, " (tensor of shape ",
                  shape_str(x.shape()), ")");
  std::vector<Tensor<T>> pieces;
  for (int64_t start = 0; start < size; start += split_size)
    pieces.push_back(narrow(x, d, start, std::min(split_size, size - start)));
  if (pieces.empty()) pieces.push_back(narrow(x, d, 0, 0));  // an empty dim splits into one empty piece
  return pieces;
}

// Pieces of the given sizes, which must add up to the dim's size.
template <typename T>
std::vector<Tensor<T>> split(const Tensor<T>& x, const std::vector<int64_t>& sizes, int64_t dim = 0) {
  const int64_t d = normalize_dim(dim, x.dim(), "split");
  int64_t total = 0;
  bool valid = true;
  for (int64_t s : sizes) {
    valid = valid && s >= 0;
    total += s;
  }
  CCT_CHECK_SHAPE(valid && total == x.shape()[d], "split: sizes ", shape_str(sizes), " do not add up to dim ", dim,
                  " (size ", x.shape()[d], ") of a tensor of shape ", shape_str(x.shape()));
  std::vector<Tensor<T>> pieces;
  int64_t start = 0;
  for (int64_t s : sizes) {
    pieces.push_back(narrow(x, d, start, s));
    start += s;
  }
  return pieces;
}

// ---- unsqueeze / squeeze / flatten: reshapes that share storage --------------------------------------
// A new size-1 dim at position dim, which may be in [-(rank+1), rank] (-1 appends).
template <typename T>
Tensor<T> unsqueeze(const Tensor<T>& x, int64_t dim) {
  const int64_t rank = x.dim();
  CCT_CHECK_SHAPE(dim >= -(rank + 1) && dim <= rank, "unsqueeze: dim ", dim, " is out of range [", -(rank + 1), ", ",
                  rank, "] for a tensor of shape ", shape_str(x.shape()));
  const int64_t d = dim < 0 ? dim + rank + 1 : dim;
  Shape shape = x.shape();
  shape.insert(shape.begin() + d, 1);
  return detail::reshape_view(x, shape, "unsqueeze");
}

// Removes dim, whose size must be 1.
template <typename T>
Tensor<T> squeeze(const Tensor<T>& x, int64_t dim) {
  const int64_t d = normalize_dim(dim, x.dim(), "squeeze");
  CCT_CHECK_SHAPE(x.shape()[d] == 1, "squeeze: dim ", dim, " has size ", x.shape()[d],
                  ", not 1, in a tensor of shape ", shape_str(x.shape()));
  Shape shape = x.shape();
  shape.erase(shape.begin() + d);
  return detail::reshape_view(x, shape, "squeeze");
}

// Removes every size-1 dim.
template <typename T>
Tensor<T> squeeze(const Tensor<T>& x) {
  Shape shape;
  for (int64_t s : x.shape())
    if (s != 1) shape.push_back(s);
  return detail::reshape_view(x, shape, "squeeze");
}

// Merges dims start_dim..end_dim (inclusive) into one. A scalar flattens to shape (1,).
template <typename T>
Tensor<T> flatten(const Tensor<T>& x, int64_t start_dim = 0, int64_t end_dim = -1) {
  if (x.dim() == 0) return detail::reshape_view(x, {1}, "flatten");
  const int64_t first = normalize_dim(start_dim, x.dim(), "flatten");
  const int64_t last = normalize_dim(end_dim, x.dim(), "flatten");
  CCT_CHECK_SHAPE(first <= last, "flatten: start_dim ", start_dim, " comes after end_dim ", end_dim,
                  " for a tensor of shape ", shape_str(x.shape()));
  Shape shape(x.shape().begin(), x.shape().begin() + first);
  int64_t merged = 1;
  for (int64_t d = first; d <= last; ++d) merged *= x.shape()[d];
  shape.push_back(merged);
  shape.insert(shape.end(), x.shape().begin() + last + 1, x.shape().end());
  return detail::reshape_view(x, shape, "flatten");
}

// ---- expand: x broadcast to shape (materialised) --------------------------------------------------
// NumPy rules: x's dims align with the trailing dims of shape and must equal them or be 1; a -1 in
// shape keeps x's size there. ∂out/∂x: the gradient summed over the broadcast dims.
template <typename T>
Tensor<T> expand(const Tensor<T>& x, Shape shape) {
  const int64_t rank = static_cast<int64_t>(shape.size()), lead = rank - x.dim();
  bool fits = lead >= 0;
  for (int64_t d = 0; fits && d < rank; ++d) {
    const int64_t own = d < lead ? -2 : x.shape()[d - lead];  // -2: a new leading dim
    if (shape[d] == -1 && own != -2) shape[d] = own;
    fits = shape[d] >= 0 && (own == -2 || own == 1 || own == shape[d]);
  }
  CCT_CHECK_SHAPE(fits, "expand: a tensor of shape ", shape_str(x.shape()), " cannot be broadcast to shape ",
                  shape_str(shape));
  Tensor<T> out = detail::broadcast_copy(x, shape);
  autograd::record<T>("expand", out, {x}, [input_shape = x.shape()](const Tensor<T>& g, const autograd::NeedsGrad&) {
    return autograd::GradList<T>{kernels::sum_to_shape(g, input_shape)};
  });
  return out;
}

// The names this header's backward nodes carry (ops/registry.hpp; each has a gradient check).
CCT_REGISTER_OPS(shape, "reshape", "unsqueeze", "squeeze", "flatten", "permute", "narrow", "slice", "concat", "expand");

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPS_SHAPE_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE Tensor<T> reshape<T>(const Tensor<T>&, Shape); \
  CCT_EXTERN_TEMPLATE Tensor<T> view<T>(const Tensor<T>&, const Shape&); \
  CCT_EXTERN_TEMPLATE Tensor<T> permute<T>(const Tensor<T>&, const std::vector<int64_t>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> transpose<T>(const Tensor<T>&, int64_t, int64_t); \
  CCT_EXTERN_TEMPLATE Tensor<T> narrow<T>(const Tensor<T>&, int64_t, int64_t, int64_t); \
  CCT_EXTERN_TEMPLATE Tensor<T> slice<T>(const Tensor<T>&, int64_t, int64_t, int64_t, int64_t); \
  CCT_EXTERN_TEMPLATE Tensor<T> concat<T>(const std::vector<Tensor<T>>&, int64_t); \
  CCT_EXTERN_TEMPLATE std::vector<Tensor<T>> split<T>(const Tensor<T>&, int64_t, int64_t); \
  CCT_EXTERN_TEMPLATE std::vector<Tensor<T>> split<T>(const Tensor<T>&, const std::vector<int64_t>&, int64_t); \
  CCT_EXTERN_TEMPLATE Tensor<T> unsqueeze<T>(const Tensor<T>&, int64_t); \
  CCT_EXTERN_TEMPLATE Tensor<T> squeeze<T>(const Tensor<T>&, int64_t); \
  CCT_EXTERN_TEMPLATE Tensor<T> squeeze<T>(const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> flatten<T>(const Tensor<T>&, int64_t, int64_t); \
  CCT_EXTERN_TEMPLATE Tensor<T> expand<T>(const Tensor<T>&, Shape);
CCT_FOR_FLOATING_TYPES(CCT_OPS_SHAPE_TEMPLATES)
#undef CCT_OPS_SHAPE_TEMPLATES
#endif

}  // namespace cct
