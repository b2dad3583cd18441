// Tensor<T>: a cheap handle to an n-dimensional, row-major, contiguous array that may take part in
// reverse-mode automatic differentiation.
//
// Memory layout (a deliberate choice): every tensor is contiguous and starts at the beginning of its
// storage. Ops that would produce a strided view in PyTorch (permute, transpose, narrow, slicing)
// materialise a fresh contiguous tensor instead; `reshape` of a contiguous tensor shares the storage.
// This keeps every kernel a simple loop over dense memory (what GEMM and SIMD want) at the cost of a
// copy per layout change, which the models here make few of. `contiguous()` therefore returns the
// tensor itself and exists so code written for strided libraries reads naturally.
//
// Copying a Tensor copies the handle: both share data, gradient and graph node. `clone()` copies data.
// T is float (training) or double (gradient checks); integer element types (int64_t for class targets
// and token ids) can hold data but take no part in autograd.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "../config.hpp"  // before Eigen: it sets EIGEN_DONT_PARALLELIZE

#include <Eigen/Core>

#include "generator.hpp"
#include "shape.hpp"
#include "storage.hpp"

namespace cct {

template <typename T>
class Tensor;

namespace autograd {
template <typename T>
struct Node;
// Defined in autograd/engine.hpp (included at the end of this header).
template <typename T>
void run_backward(const Tensor<T>& root, const Tensor<T>* gradient);
}  // namespace autograd

namespace detail {
template <typename T>
struct TensorImpl {
  std::shared_ptr<Storage<T>> storage;
  Shape shape;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl<T>> grad;            // leaves only: owned, accumulated in place
  std::shared_ptr<autograd::Node<T>> grad_fn;     // the op that produced this tensor, if recorded
};
}  // namespace detail

template <typename T>
constexpr const char* dtype_name() {
  if constexpr (std::is_same_v<T, float>) return "F32";
  else if constexpr (std::is_same_v<T, double>) return "F64";
  else if constexpr (std::is_same_v<T, int64_t>) return "I64";
  else if constexpr (std::is_same_v<T, int32_t>) return "I32";
  else if constexpr (std::is_same_v<T, uint8_t>) return "U8";
  else return "unknown";
}

template <typename T>
class Tensor {
 public:
  using value_type = T;
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using MatrixMap = Eigen::Map<Matrix, Eigen::Aligned64>;

  // An undefined tensor (no storage); `defined()` is false. Used for "no bias", "no gradient".
  Tensor() = default;

  // ---- creation ------------------------------------------------------------------------------
  // Uninitialised contents: only for buffers that are written before they are read.
  static Tensor empty(const Shape& shape) {
    check_shape_valid(shape, "Tensor::empty");
    Tensor t;
    t.impl_ = std::make_shared<detail::TensorImpl<T>>();
    t.impl_->storage = std::make_shared<Storage<T>>(shape_numel(shape));
    t.impl_->shape = shape;
    return t;
  }
  static Tensor full(const Shape& shape, T value) {
    Tensor t = empty(shape);
    std::fill(t.data(), t.data() + t.numel(), value);
    return t;
  }
  static Tensor zeros(const Shape& shape) { return full(shape, T(0)); }
  static Tensor ones(const Shape& shape) { return full(shape, T(1)); }
  static Tensor scalar(T value) { return full({}, value); }
  static Tensor zeros_like(const Tensor& other) { return zeros(other.shape()); }
  static Tensor ones_like(const Tensor& other) { return ones(other.shape()); }

  // 0, 1, ..., n-1 as a 1-D tensor; and start, start+step, ... below end.
  static Tensor arange(int64_t n) { return arange(T(0), static_cast<T>(n), T(1)); }
  static Tensor arange(T start, T end, T step = T(1)) {
    CCT_CHECK(step != T(0), "Tensor::arange: step must be non-zero");
    const double span = (static_cast<double>(end) - static_cast<double>(start)) / static_cast<double>(step);
    const int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(span)));
    Tensor t = empty({n});
    for (int64_t i = 0; i < n; ++i) t.data()[i] = static_cast<T>(start + static_cast<T>(i) * step);
    return t;
  }

  // Takes the values in row-major order; their count must equal the shape's element count.
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
    CCT_CHECK_SHAPE(static_cast<int64_t>(values.size()) == shape_numel(shape), "Tensor::from_vector: ",
                    values.size(), " values do not fill shape ", shape_str(shape), " (",
                    shape_numel(shape), " elements)");
    Tensor t = empty(shape);
    std::copy(values.begin(), values.end(), t.data());
    return t;
  }
  static Tensor from_vector(const std::vector<T>& values) {
    return from_vector(values, {static_cast<int64_t>(values.size())});
  }

  static Tensor uniform(const Shape& shape, double low, double high, Generator& gen = default_generator()) {
    Tensor t = empty(shape);
    gen.fill_uniform(t.data(), t.numel(), low, high);
    return t;
  }
  static Tensor randn(const Shape& shape, Generator& gen = default_generator()) {
    return normal(shape, 0.0, 1.0, gen);
  }
  static Tensor normal(const Shape& shape, double mean, double std, Generator& gen = default_generator()) {
    Tensor t = empty(shape);
    gen.fill_normal(t.data(), t.numel(), mean, std);
    return t;
  }

  // ---- shape and data access -----------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return checked().shape; }
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const { return shape()[normalize_dim(d, dim(), "Tensor::size")]; }
  int64_t numel() const { return checked().storage ? shape_numel(impl_->shape) : 0; }
  // Handles share data, so the pointer is writable from a const handle (as in PyTorch).
  T* data() const { return checked().storage->data(); }
  T* begin() const { return data(); }
  T* end() const { return data() + numel(); }

  T item() const {
    CCT_CHECK_SHAPE(numel() == 1, "Tensor::item: needs exactly one element, tensor has shape ",
                    shape_str(shape()));
    return data()[0];
  }

  // Element by full index, e.g. t.at({1, 2}); negative indices count from the end.
  T& at(std::initializer_list<int64_t> index) const { return data()[offset_of(index)]; }
  template <typename... Index>
  T& operator()(Index... index) const {
    return data()[offset_of({static_cast<int64_t>(index)...})];
  }

  std::vector<T> to_vector() const { return std::vector<T>(data(), data() + numel()); }

  // An Eigen view of a 2-D tensor (rows × cols), writable, sharing the data.
  MatrixMap matrix() const {
    CCT_CHECK_SHAPE(dim() == 2, "Tensor::matrix: needs a 2-D tensor, got shape ", shape_str(shape()));
    return MatrixMap(data(), shape()[0], shape()[1]);
  }

  // ---- autograd -------------------------------------------------------------------------------
  bool requires_grad() const { return defined() && impl_->requires_grad; }
  // Marks a leaf as a parameter whose gradient backward() should accumulate.
  Tensor& requires_grad_(bool value = true) {
    CCT_CHECK(is_leaf(), "requires_grad_: only leaf tensors can be marked; this one was produced by an op "
                         "(detach() it first)");
    static_assert(std::is_floating_point_v<T>, "only floating-point tensors can require grad");
    checked().requires_grad = value;
    return *this;
  }
  bool is_leaf() const { return checked().grad_fn == nullptr; }
  const std::shared_ptr<autograd::Node<T>>& grad_fn() const { return checked().grad_fn; }

  // The accumulated gradient of a leaf (undefined until a backward pass reaches it).
  Tensor grad() const { return Tensor(checked().grad); }
  // Sets the gradient to zero, keeping its buffer so the next backward accumulates without allocating.
  void zero_grad() const {
    if (checked().grad) std::fill(impl_->grad->storage->data(), impl_->grad->storage->data() + numel(), T(0));
  }
  // Drops the gradient buffer entirely.
  void clear_grad() const { checked().grad.reset(); }
  // Replaces the gradient (used by the engine and by optimisers that load state).
  void set_grad(const Tensor& gradient) const {
    CCT_CHECK_SHAPE(!gradient.defined() || gradient.shape() == shape(), "set_grad: gradient of shape ",
                    gradient.defined() ? shape_str(gradient.shape()) : "()", " for a tensor of shape ",
                    shape_str(shape()));
    checked().grad = gradient.impl_;
  }

  // Reverse-mode differentiation from this tensor. Without an argument the tensor must hold one
  // element (a loss); otherwise `gradient` is d(loss)/d(this) and must have this tensor's shape.
  void backward() const { autograd::run_backward<T>(*this, nullptr); }
  void backward(const Tensor& gradient) const { autograd::run_backward<T>(*this, &gradient); }

  // ---- copies and views -----------------------------------------------------------------------
  // Shares data, drops the graph: the result is a leaf that does not require grad.
  Tensor detach() const {
    Tensor t;
    t.impl_ = std::make_shared<detail::TensorImpl<T>>();
    t.impl_->storage = checked().storage;
    t.impl_->shape = impl_->shape;
    return t;
  }
  // Copies data into new storage; no graph (use ops for differentiable copies).
  Tensor clone() const {
    Tensor t = empty(shape());
    std::copy(data(), data() + numel(), t.data());
    return t;
  }
  Tensor contiguous() const { return *this; }  // always contiguous: see the header comment
  // A new handle sharing storage with another shape of the same element count; no graph.
  Tensor view_as_shape(const Shape& new_shape) const {
    CCT_CHECK_SHAPE(shape_numel(new_shape) == numel(), "view: cannot view shape ", shape_str(shape()),
                    " as ", shape_str(new_shape));
    Tensor t = detach();
    t.impl_->shape = new_shape;
    return t;
  }
  template <typename U>
  Tensor<U> to() const {
    Tensor<U> t = Tensor<U>::empty(shape());
    std::transform(data(), data() + numel(), t.data(), [](T v) { return static_cast<U>(v); });
    return t;
  }

  // ---- in-place updates (not recorded: for optimisers, initialisers and buffers) ---------------
  const Tensor& fill_(T value) const {
    check_inplace("fill_");
    std::fill(data(), data() + numel(), value);
    return *this;
  }
  const Tensor& zero_() const { return fill_(T(0)); }
  const Tensor& copy_(const Tensor& source) const {
    check_inplace("copy_");
    CCT_CHECK_SHAPE(source.shape() == shape(), "copy_: source shape ", shape_str(source.shape()),
                    " differs from destination shape ", shape_str(shape()));
    std::copy(source.data(), source.data() + numel(), data());
    return *this;
  }

  // Same storage and shape handle (identity, not value equality).
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  bool shares_storage(const Tensor& other) const {
    return defined() && other.defined() && impl_->storage == other.impl_->storage;
  }
  const std::shared_ptr<detail::TensorImpl<T>>& impl() const { return impl_; }
  explicit Tensor(std::shared_ptr<detail::TensorImpl<T>> impl) : impl_(std::move(impl)) {}

 private:
  detail::TensorImpl<T>& checked() const {
    CCT_CHECK(impl_ != nullptr, "use of an undefined tensor (default-constructed, or an absent gradient)");
    return *impl_;
  }
  void check_inplace(const char* op) const;
  int64_t offset_of(std::initializer_list<int64_t> index) const {
    const Shape& s = shape();
    CCT_CHECK_SHAPE(static_cast<int64_t>(index.size()) == dim(), "Tensor element access: ", index.size(),
                    " indices for a tensor of shape ", shape_str(s));
    int64_t offset = 0, d = 0;
    for (int64_t i : index) {
      const int64_t wrapped = i < 0 ? i + s[d] : i;
      CCT_CHECK_SHAPE(wrapped >= 0 && wrapped < s[d], "Tensor element access: index ", i,
                      " is out of range for dim ", d, " of shape ", shape_str(s));
      offset = offset * s[d] + wrapped;
      ++d;
    }
    return offset;
  }

  std::shared_ptr<detail::TensorImpl<T>> impl_;
};

}  // namespace cct

// The engine needs the complete Tensor; including it here means `backward()` always links.
#include "../autograd/engine.hpp"
