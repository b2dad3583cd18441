// cct: version, the CCT_ macros, and the one exception type every error derives from.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#define CCT_VERSION_MAJOR 0
#define CCT_VERSION_MINOR 1
#define CCT_VERSION_PATCH 0
#define CCT_VERSION_STRING "0.1.0"

// Parallelism comes from cct's own loops (OpenMP across the batch, rows or heads), so Eigen's GEMM
// must stay single-threaded inside them: nested thread teams oversubscribe a small CPU badly.
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif

// Compiled mode (opt-in; header-only stays the default). A program that links cct::compiled is built with
// CCT_COMPILED: the float and double instantiations of the ops, layers, models, optimisers and
// checkpoint functions are then declared `extern template` at the end of their headers, so the
// program's own translation units do not compile them again; the library cct_compiled compiles each
// of them once (its two units define CCT_INSTANTIATE_FLOAT or CCT_INSTANTIATE_DOUBLE). The code is the
// same either way; only where it is compiled changes. Headers write their list once, as
//   #ifdef CCT_EXTERN_TEMPLATE
//   #define CCT_X(T) CCT_EXTERN_TEMPLATE Tensor<T> relu(const Tensor<T>&);
//   CCT_FOR_FLOATING_TYPES(CCT_X)
//   #endif
#if defined(CCT_INSTANTIATE_FLOAT) || defined(CCT_INSTANTIATE_DOUBLE)
#define CCT_EXTERN_TEMPLATE template
#if defined(CCT_INSTANTIATE_FLOAT)
#define CCT_FOR_FLOATING_TYPES(X) X(float)
#else
#define CCT_FOR_FLOATING_TYPES(X) X(double)
#endif
#elif defined(CCT_COMPILED)
#define CCT_EXTERN_TEMPLATE extern template
#define CCT_FOR_FLOATING_TYPES(X) X(float) X(double)
#endif

namespace cct {

// Base of every error cct throws. Catch `cct::Error` to handle them all.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A shape that does not fit the op (the message names the op and the shapes involved).
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A file that is missing, truncated, malformed or unwritable (the message names the file).
class IoError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <typename... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}
}  // namespace detail

}  // namespace cct

// CCT_CHECK(condition, message parts...): throws cct::Error with the parts streamed together.
#define CCT_CHECK(condition, ...)                                          \
  do {                                                                     \
    if (!(condition)) throw ::cct::Error(::cct::detail::concat(__VA_ARGS__)); \
  } while (0)

// CCT_CHECK_SHAPE: the same, but throws cct::ShapeError.
#define CCT_CHECK_SHAPE(condition, ...)                                         \
  do {                                                                          \
    if (!(condition)) throw ::cct::ShapeError(::cct::detail::concat(__VA_ARGS__)); \
  } while (0)
