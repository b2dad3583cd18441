// Shape: the sizes of a tensor's dimensions, outermost first, and the checked helpers around it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "../config.hpp"

namespace cct {

using Shape = std::vector<int64_t>;

// "(2, 3, 4)"; a scalar (rank 0) prints as "()".
inline std::string shape_str(const Shape& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ",";
  return out + ")";
}

inline int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// Sizes must be non-negative and their product (that of the non-zero ones too, which the strides
// multiply) must fit in int64, so that shape_numel and contiguous_strides never overflow.
inline void check_shape_valid(const Shape& shape, const char* op) {
  int64_t product = 1;
  for (int64_t s : shape) {
    CCT_CHECK_SHAPE(s >= 0, op, ": negative size in shape ", shape_str(shape));
    CCT_CHECK_SHAPE(s == 0 || !__builtin_mul_overflow(product, s, &product), op, ": shape ", shape_str(shape),
                    " has more elements than a 64-bit count can hold");
  }
}

// Row-major strides (in elements) of a contiguous tensor of this shape.
inline Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size(), 1);
  for (int64_t d = static_cast<int64_t>(shape.size()) - 2; d >= 0; --d)
    strides[d] = strides[d + 1] * shape[d + 1];
  return strides;
}

// Maps a possibly negative dim (-1 is the last) to [0, rank); throws naming the op otherwise.
inline int64_t normalize_dim(int64_t dim, int64_t rank, const char* op) {
  const int64_t wrapped = dim < 0 ? dim + rank : dim;
  CCT_CHECK_SHAPE(wrapped >= 0 && wrapped < rank, op, ": dim ", dim,
                  " is out of range for a tensor of rank ", rank);
  return wrapped;
}

// NumPy broadcasting: align trailing dims; each pair must be equal or contain a 1.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    CCT_CHECK_SHAPE(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ",
                    shape_str(b), " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Strides that read `shape` as if expanded to `target` (0 where broadcast).
inline Shape broadcast_strides(const Shape& shape, const Shape& target) {
  const Shape own = contiguous_strides(shape);
  Shape out(target.size(), 0);
  const size_t offset = target.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i) out[offset + i] = shape[i] == 1 ? 0 : own[i];
  return out;
}

}  // namespace cct
