// Reductions: sum, mean and var over any set of dims; max and min along one dim or over everything.
//
// Every reduction sees its input as (outer, reduced, inner): element (o, r, i) lives at
// o·reduced·inner + r·inner + i and output element o·inner + i gathers over r. Reduced dims that are
// adjacent in memory (ignoring size-1 dims) are read in place; otherwise they are first copied to the
// end (outer = the kept dims, inner = 1). Threads split the output elements, and each output element
// is summed in one fixed order, in double, so results do not depend on the thread count.
// Each forward is followed by its backward.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../autograd/node.hpp"
#include "../core/parallel.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "shape.hpp"
#include "registry.hpp"

namespace cct {

namespace detail {

struct ReduceLayout {
  int64_t outer = 1;
  int64_t reduced = 1;  // also the number of elements behind each output element
  int64_t inner = 1;
  Shape keepdim_shape;               // the input's shape with every reduced dim set to 1
  Shape out_shape;                   // the result's shape (keepdim_shape, or it without the reduced dims)
  std::vector<int64_t> permutation;  // non-empty when the input must be permuted first (kept dims, then reduced)

  // Enough output elements per chunk that a thread gets ~16k inputs, so small reductions stay serial.
  int64_t grain() const { return std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(1, reduced)); }
};

// The layout of a reduction over the dims flagged in is_reduced.
inline ReduceLayout reduce_layout(const Shape& shape, const std::vector<bool>& is_reduced, bool keepdim) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  ReduceLayout layout;
  layout.keepdim_shape = shape;
  for (int64_t d = 0; d < rank; ++d) {
    if (is_reduced[d]) layout.keepdim_shape[d] = 1;
    else layout.out_shape.push_back(shape[d]);
  }
  if (keepdim) layout.out_shape = layout.keepdim_shape;

  // The reduced dims read in place when, skipping size-1 dims, they form one block: kept, reduced, kept.
  enum { kBefore, kInside, kAfter } phase = kBefore;
  bool one_block = true;
  for (int64_t d = 0; d < rank; ++d) {
    if (shape[d] == 1) continue;
    if (is_reduced[d]) {
      one_block = one_block && phase != kAfter;
      phase = kInside;
      layout.reduced *= shape[d];
    } else if (phase == kBefore) {
      layout.outer *= shape[d];
    } else {
      phase = kAfter;
      layout.inner *= shape[d];
    }
  }
  if (!one_block) {
    layout.outer = layout.inner = 1;
    for (int64_t d = 0; d < rank; ++d)
      if (!is_reduced[d]) {
        layout.permutation.push_back(d);
        layout.outer *= shape[d];
      }
    for (int64_t d = 0; d < rank; ++d)
      if (is_reduced[d]) layout.permutation.push_back(d);
  }
  return layout;
}

// The layout of a reduction over a list of dims (negative ones count from the end; no repeats).
inline ReduceLayout reduce_layout(const Shape& shape, const std::vector<int64_t>& dims, bool keepdim, const char* op) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  // An empty list means "all dims" in PyTorch but reads as "none": refuse it rather than guess.
  CCT_CHECK_SHAPE(!dims.empty(), op, ": the list of dims is empty (call ", op, "(x) to reduce every dim of shape ",
                  shape_str(shape), ")");
  std::vector<bool> is_reduced(rank, false);
  for (int64_t dim : dims) {
    const int64_t d = normalize_dim(dim, rank, op);
    CCT_CHECK_SHAPE(!is_reduced[d], op, ": dim ", dim, " appears more than once in dims ", shape_str(dims),
                    " for a tensor of shape ", shape_str(shape));
    is_reduced[d] = true;
  }
  return reduce_layout(shape, is_reduced, keepdim);
}

// The layout of a reduction of every element to a 0-d result.
inline ReduceLayout reduce_all_layout(const Shape& shape) {
  return reduce_layout(shape, std::vector<bool>(shape.size(), true), false);
}

// x's elements in the (outer, reduced, inner) order of the layout: x itself, or a permuted copy.
template <typename T>
Tensor<T> reduce_source(const Tensor<T>& x, const ReduceLayout& layout) {
  if (layout.permutation.empty()) return x;
  const Shape in_strides = contiguous_strides(x.shape());
  Shape sizes, strides;
  for (int64_t d : layout.permutation) {
    sizes.push_back(x.shape()[d]);
    strides.push_back(in_strides[d]);
  }
  Tensor<T> out = Tensor<T>::empty(sizes);
  strided_gather(x.data(), sizes, strides, out.data());
  return out;
}

// out[k] = Σ_r term(x(o, r, i), k) / divisor for k = o·inner + i, accumulated in double.
template <typename T, typename Out, typename Term>
void reduce_sum_kernel(const T* x, const ReduceLayout& layout, double divisor, Out* out, Term term) {
  const int64_t reduced = layout.reduced, inner = layout.inner;
  const int64_t total = layout.outer * inner;
  if (inner == 1) {
    parallel_for(0, total, layout.grain(), [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const T* line = x + k * reduced;
        double acc = 0;
        for (int64_t r = 0; r < reduced; ++r) acc += term(line[r], k);
        out[k] = static_cast<Out>(acc / divisor);
      }
    });
    return;
  }
  // Rows of `inner` elements are added whole, so the loads are contiguous.
  parallel_for(0, total, layout.grain(), [&](int64_t begin, int64_t end) {
    std::vector<double> acc(std::min(inner, end - begin));
    for (int64_t k = begin; k < end;) {
      const int64_t o = k / inner, first = k % inner, count = std::min(inner - first, end - k);
      std::fill(acc.begin(), acc.begin() + count, 0.0);
      const T* block = x + o * reduced * inner + first;
      for (int64_t r = 0; r < reduced; ++r) {
        const T* row = block + r * inner;
        for (int64_t i = 0; i < count; ++i) acc[i] += term(row[i], k + i);
      }
      for (int64_t i = 0; i < count; ++i) out[k + i] = static_cast<Out>(acc[i] / divisor);
      k += count;
    }
  });
}

// The backward of sum and mean: the gradient broadcast back over the reduced dims, times scale.
template <typename T>
Tensor<T> sum_backward(const Tensor<T>& gradient, const Shape& keepdim_shape, const Shape& input_shape, T scale) {
  Tensor<T> out = broadcast_copy(gradient.view_as_shape(keepdim_shape), input_shape);
  if (scale != T(1)) {
    T* p = out.data();
    parallel_for(0, out.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) p[i] *= scale;
    });
  }
  return out;
}

template <typename T>
Tensor<T> sum_or_mean(const Tensor<T>& x, const ReduceLayout& layout, bool is_mean, const char* op) {
  const Tensor<T> source = reduce_source(x, layout);
  const double count = is_mean ? static_cast<double>(layout.reduced) : 1.0;  // an empty mean is 0/0 = NaN
  Tensor<T> out = Tensor<T>::empty(layout.out_shape);
  reduce_sum_kernel(source.data(), layout, count, out.data(), [](T v, int64_t) { return static_cast<double>(v); });
  autograd::record<T>(op, out, {x},
                      [keep = layout.keepdim_shape, input_shape = x.shape(), scale = static_cast<T>(1.0 / count)](
                          const Tensor<T>& g, const autograd::NeedsGrad&) {
                        return autograd::GradList<T>{sum_backward(g, keep, input_shape, scale)};
                      });
  return out;
}

}  // namespace detail

// ---- sum: out = Σ x over dims ---------------------------------------------------------------------
// ∂out/∂x = 1 at every position that was summed: the gradient is broadcast back over the dims.
template <typename T>
Tensor<T> sum(const Tensor<T>& x, const std::vector<int64_t>& dims, bool keepdim = false) {
  return detail::sum_or_mean(x, detail::reduce_layout(x.shape(), dims, keepdim, "sum"), false, "sum");
}
template <typename T>
Tensor<T> sum(const Tensor<T>& x, int64_t dim, bool keepdim = false) {
  return sum(x, std::vector<int64_t>{dim}, keepdim);
}
// The sum of every element, as a 0-d tensor.
template <typename T>
Tensor<T> sum(const Tensor<T>& x) {
  return detail::sum_or_mean(x, detail::reduce_all_layout(x.shape()), false, "sum");
}

// ---- mean: out = (1/n) Σ x over dims, n the number of elements reduced into each output ------------
// ∂out/∂x = 1/n: the gradient broadcast back over the dims and divided by n.
template <typename T>
Tensor<T> mean(const Tensor<T>& x, const std::vector<int64_t>& dims, bool keepdim = false) {
  return detail::sum_or_mean(x, detail::reduce_layout(x.shape(), dims, keepdim, "mean"), true, "mean");
}
template <typename T>
Tensor<T> mean(const Tensor<T>& x, int64_t dim, bool keepdim = false) {
  return mean(x, std::vector<int64_t>{dim}, keepdim);
}
template <typename T>
Tensor<T> mean(const Tensor<T>& x) {
  return detail::sum_or_mean(x, detail::reduce_all_layout(x.shape()), true, "mean");
}

// ---- var: out = Σ (x − mean)² / (n − 1) (unbiased) or / n over dims ----------------------------------
// Two passes (the mean first, then the squared deviations), both in double, so a large common offset
// does not cancel away the variance. ∂out/∂x = 2(x − mean)/(n − 1) or 2(x − mean)/n: the mean's own
// dependence on x drops out because the deviations sum to zero. Saves the input and the mean.
template <typename T>
Tensor<T> var(const Tensor<T>& x, const std::vector<int64_t>& dims, bool keepdim = false, bool unbiased = true) {
  const detail::ReduceLayout layout = detail::reduce_layout(x.shape(), dims, keepdim, "var");
  const Tensor<T> source = detail::reduce_source(x, layout);
  const int64_t count = layout.outer * layout.inner;
  std::vector<double> means(count);
  detail::reduce_sum_kernel(source.data(), layout, static_cast<double>(layout.reduced), means.data(),
                            [](T v, int64_t) { return static_cast<double>(v); });
  // n − 1 = 0 (a single element, unbiased) gives 0/0 = NaN, as in PyTorch.
  const double denominator = static_cast<double>(layout.reduced) - (unbiased ? 1.0 : 0.0);
  Tensor<T> out = Tensor<T>::empty(layout.out_shape);
  detail::reduce_sum_kernel(source.data(), layout, denominator, out.data(), [&means](T v, int64_t k) {
    const double deviation = static_cast<double>(v) - means[k];
    return deviation * deviation;
  });

  if (autograd::any_requires_grad<T>({&x})) {
    Tensor<T> mean_kept = Tensor<T>::empty(layout.keepdim_shape);
    std::transform(means.begin(), means.end(), mean_kept.data(), [](double m) { return static_cast<T>(m); });
    autograd::record<T>("var", out, {x},
                        [x = x.detach(), mean_kept, keep = layout.keepdim_shape,
                         factor = static_cast<T>(2.0 / denominator)](const Tensor<T>& g, const autograd::NeedsGrad&) {
                          Tensor<T> grad = detail::broadcast_copy(g.view_as_shape(keep), x.shape());
                          const Tensor<T> mean_full = detail::broadcast_copy(mean_kept, x.shape());
                          T* pg = grad.data();
                          const T* px = x.data();
                          const T* pm = mean_full.data();
                          parallel_for(0, grad.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
                            for (int64_t i = begin; i < end; ++i) pg[i] *= factor * (px[i] - pm[i]);
                          });
                          return autograd::GradList<T>{grad};
                        });
  }
  return out;
}
template <typename T>
Tensor<T> var(const Tensor<T>& x, int64_t dim, bool keepdim = false, bool unbiased = true) {
  return var(x, std::vector<int64_t>{dim}, keepdim, unbiased);
}

// ---- max / min along a dim, and over everything ----------------------------------------------------
// The extreme value of each line and its index along the dim (the first one on ties; NaN counts as
// the extreme, so it propagates). ∂values/∂x = 1 at the chosen index only. Saves the indices.
template <typename T>
struct MaxResult {
  Tensor<T> values;
  Tensor<int64_t> indices;
};
template <typename T>
using MinResult = MaxResult<T>;

namespace detail {

template <typename T, bool kMax>
MaxResult<T> extreme_along(const Tensor<T>& x, int64_t outer, int64_t reduced, int64_t inner, const Shape& out_shape,
                           const char* op, int64_t dim) {
  CCT_CHECK_SHAPE(reduced > 0, op, ": cannot reduce over dim ", dim, " of size 0 in a tensor of shape ",
                  shape_str(x.shape()));
  MaxResult<T> result{Tensor<T>::empty(out_shape), Tensor<int64_t>::empty(out_shape)};
  const T* px = x.data();
  T* best = result.values.data();
  int64_t* where = result.indices.data();
  auto better = [](T candidate, T current) {
    if constexpr (kMax) return candidate > current || (std::isnan(candidate) && !std::isnan(current));
    else return candidate < current || (std::isnan(candidate) && !std::isnan(current));
  };
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / reduced);
  parallel_for(0, outer * inner, grain, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end;) {
      // A run of outputs that share o: the inputs are scanned row by row, contiguously.
      const int64_t o = k / inner, first = k % inner, count = std::min(inner - first, end - k);
      const T* block = px + o * reduced * inner + first;
      for (int64_t i = 0; i < count; ++i) {
        best[k + i] = block[i];
        where[k + i] = 0;
      }
      for (int64_t r = 1; r < reduced; ++r) {
        const T* row = block + r * inner;
        for (int64_t i = 0; i < count; ++i)
          if (better(row[i], best[k + i])) {
            best[k + i] = row[i];
            where[k + i] = r;
          }
      }
      k += count;
    }
  });
  autograd::record<T>(op, result.values, {x},
                      [indices = result.indices, input_shape = x.shape(), reduced, inner](
                          const Tensor<T>& g, const autograd::NeedsGrad&) {
                        Tensor<T> grad = Tensor<T>::zeros(input_shape);
                        T* pg = grad.data();
                        const T* pgo = g.data();
                        const int64_t* pi = indices.data();
                        parallel_for(0, g.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
                          for (int64_t k = begin; k < end; ++k)
                            pg[((k / inner) * reduced + pi[k]) * inner + k % inner] = pgo[k];
                        });
                        return autograd::GradList<T>{grad};
                      });
  return result;
}

template <typename T, bool kMax>
MaxResult<T> extreme_dim(const Tensor<T>& x, int64_t dim, bool keepdim, const char* op) {
  const int64_t rank = x.dim();
  // A scalar is one line of one element along dim 0 (or -1), as in PyTorch.
  const int64_t d = normalize_dim(dim, std::max<int64_t>(rank, 1), op);
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < d && k < rank; ++k) outer *= x.shape()[k];
  for (int64_t k = d + 1; k < rank; ++k) inner *= x.shape()[k];
  const int64_t reduced = rank == 0 ? 1 : x.shape()[d];
  Shape out_shape = x.shape();
  if (rank > 0) {
    if (keepdim) out_shape[d] = 1;
    else out_shape.erase(out_shape.begin() + d);
  }
  return extreme_along<T, kMax>(x, outer, reduced, inner, out_shape, op, dim);
}

}  // namespace detail

template <typename T>
MaxResult<T> max(const Tensor<T>& x, int64_t dim, bool keepdim = false) {
  return detail::extreme_dim<T, true>(x, dim, keepdim, "max");
}
template <typename T>
MinResult<T> min(const Tensor<T>& x, int64_t dim, bool keepdim = false) {
  return detail::extreme_dim<T, false>(x, dim, keepdim, "min");
}
// The largest (smallest) element as a 0-d tensor; the gradient goes to its first occurrence.
template <typename T>
Tensor<T> max(const Tensor<T>& x) {
  CCT_CHECK_SHAPE(x.numel() > 0, "max: needs at least one element, got a tensor of shape ", shape_str(x.shape()));
  return detail::extreme_along<T, true>(x, 1, x.numel(), 1, {}, "max", -1).values;
}
template <typename T>
Tensor<T> min(const Tensor<T>& x) {
  CCT_CHECK_SHAPE(x.numel() > 0, "min: needs at least one element, got a tensor of shape ", shape_str(x.shape()));
  return detail::extreme_along<T, false>(x, 1, x.numel(), 1, {}, "min", -1).values;
}

// The names this header's backward nodes carry (ops/registry.hpp; each has a gradient check).
CCT_REGISTER_OPS(reduce, "sum", "mean", "var", "max", "min");

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPS_REDUCE_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE Tensor<T> sum<T>(const Tensor<T>&, const std::vector<int64_t>&, bool); \
  CCT_EXTERN_TEMPLATE Tensor<T> sum<T>(const Tensor<T>&, int64_t, bool); \
  CCT_EXTERN_TEMPLATE Tensor<T> sum<T>(const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> mean<T>(const Tensor<T>&, const std::vector<int64_t>&, bool); \
  CCT_EXTERN_TEMPLATE Tensor<T> mean<T>(const Tensor<T>&, int64_t, bool); \
  CCT_EXTERN_TEMPLATE Tensor<T> mean<T>(const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> var<T>(const Tensor<T>&, const std::vector<int64_t>&, bool, bool); \
  CCT_EXTERN_TEMPLATE Tensor<T> var<T>(const Tensor<T>&, int64_t, bool, bool); \
  CCT_EXTERN_TEMPLATE MaxResult<T> max<T>(const Tensor<T>&, int64_t, bool); \
  CCT_EXTERN_TEMPLATE MinResult<T> min<T>(const Tensor<T>&, int64_t, bool); \
  CCT_EXTERN_TEMPLATE Tensor<T> max<T>(const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> min<T>(const Tensor<T>&);
CCT_FOR_FLOATING_TYPES(CCT_OPS_REDUCE_TEMPLATES)
#undef CCT_OPS_REDUCE_TEMPLATES
#endif

}  // namespace cct
