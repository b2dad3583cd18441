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
