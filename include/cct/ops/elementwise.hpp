// Elementwise arithmetic with NumPy broadcasting: add, sub, mul, div, neg, exp, log, sqrt, pow,
// their scalar forms, and the C++ operators. Each forward is followed by its backward.
#pragma once

#include <cmath>
#include <type_traits>

#include "../autograd/node.hpp"
#include "kernels/broadcast.hpp"
#include "registry.hpp"

namespace cct {

// A scalar operand of an op on Tensor<T>: a non-deduced T, so `x * 2` works for Tensor<float>.
template <typename T>
using Scalar = typename std::common_type<T>::type;

namespace detail {
// out = f(a, b) elementwise over the broadcast shape.
template <typename T, typename F>
Tensor<T> broadcast_binary(const Tensor<T>& a, const Tensor<T>& b, const char* op, F f) {
  const Shape out_shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), op);
  Tensor<T> out = Tensor<T>::empty(out_shape);
  const T* pa = a.data();
  const T* pb = b.data();
  T* po = out.data();
  if (a.shape() == b.shape()) {
    parallel_for(0, out.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) po[i] = f(pa[i], pb[i]);
    });
    return out;
  }
  kernels::for_each_broadcast_row(out_shape, a.shape(), b.shape(),
                                  [&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb) {
                                    for (int64_t i = 0; i < n; ++i) po[o + i] = f(pa[ia + i * sa], pb[ib + i * sb]);
                                  });
  return out;
}

// out = f(x) elementwise.
template <typename T, typename F>
Tensor<T> map(const Tensor<T>& x, F f) {
  Tensor<T> out = Tensor<T>::empty(x.shape());
  const T* px = x.data();
  T* po = out.data();
  parallel_for(0, out.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) po[i] = f(px[i]);
  });
  return out;
}

// out = f(x, y) for two tensors of one shape (used by backward functions).
template <typename T, typename F>
Tensor<T> zip(const Tensor<T>& x, const Tensor<T>& y, F f) {
  Tensor<T> out = Tensor<T>::empty(x.shape());
  const T* px = x.data();
  const T* py = y.data();
  T* po = out.data();
  parallel_for(0, out.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) po[i] = f(px[i], py[i]);
  });
  return out;
}
}  // namespace detail

// ---- add: out = a + b ---------------------------------------------------------------------------
// ∂out/∂a = 1, ∂out/∂b = 1; each gradient is summed over the dims its input was broadcast along.
template <typename T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> out = detail::broadcast_binary(a, b, "add", [](T x, T y) { return x + y; });
  autograd::record<T>("add", out, {a, b},
                      [sa = a.shape(), sb = b.shape()](const Tensor<T>& g, const autograd::NeedsGrad& needs) {
                        return autograd::GradList<T>{needs[0] ? kernels::sum_to_shape(g, sa) : Tensor<T>(),
                                                     needs[1] ? kernels::sum_to_shape(g, sb) : Tensor<T>()};
                      });
  return out;
}

// ---- sub: out = a - b ---------------------------------------------------------------------------
// ∂out/∂a = 1, ∂out/∂b = -1.
template <typename T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> out = detail::broadcast_binary(a, b, "sub", [](T x, T y) { return x - y; });
  autograd::record<T>("sub", out, {a, b},
                      [sa = a.shape(), sb = b.shape()](const Tensor<T>& g, const autograd::NeedsGrad& needs) {
                        Tensor<T> gb;
                        if (needs[1]) gb = detail::map(kernels::sum_to_shape(g, sb), [](T v) { return -v; });
                        return autograd::GradList<T>{needs[0] ? kernels::sum_to_shape(g, sa) : Tensor<T>(), gb};
                      });
  return out;
}

// ---- mul: out = a · b ---------------------------------------------------------------------------
// ∂out/∂a = b, ∂out/∂b = a. Saves both inputs.
template <typename T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> out = detail::broadcast_binary(a, b, "mul", [](T x, T y) { return x * y; });
  if (autograd::any_requires_grad<T>({&a, &b}))
    autograd::record<T>("mul", out, {a, b},
                        [a = a.detach(), b = b.detach()](const Tensor<T>& g, const autograd::NeedsGrad& needs) {
                          auto times = [](T x, T y) { return x * y; };
                          Tensor<T> ga, gb;
                          if (needs[0]) ga = kernels::sum_to_shape(detail::broadcast_binary(g, b, "mul", times), a.shape());
                          if (needs[1]) gb = kernels::sum_to_shape(detail::broadcast_binary(g, a, "mul", times), b.shape());
                          return autograd::GradList<T>{ga, gb};
                        });
  return out;
}

// ---- div: out = a / b ---------------------------------------------------------------------------
// ∂out/∂a = 1/b, ∂out/∂b = -a/b². Saves both inputs.
template <typename T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> out = detail::broadcast_binary(a, b, "div", [](T x, T y) { return x / y; });
  if (autograd::any_requires_grad<T>({&a, &b}))
    autograd::record<T>("div", out, {a, b},
                        [a = a.detach(), b = b.detach()](const Tensor<T>& g, const autograd::NeedsGrad& needs) {
                          Tensor<T> ga, gb;
                          if (needs[0])
                            ga = kernels::sum_to_shape(detail::broadcast_binary(g, b, "div", [](T x, T y) { return x / y; }),
                                                       a.shape());
                          if (needs[1]) {
                            Tensor<T> a_over_b2 = detail::broadcast_binary(a, b, "div", [](T x, T y) { return -x / (y * y); });
                            gb = kernels::sum_to_shape(
                                detail::broadcast_binary(g, a_over_b2, "div", [](T x, T y) { return x * y; }), b.shape());
                          }
                          return autograd::GradList<T>{ga, gb};
                        });
  return out;
}

// ---- scalar forms: x + s, x · s, ... --------------------------------------------------------------
// ∂(x + s)/∂x = 1; ∂(x · s)/∂x = s.
template <typename T>
Tensor<T> add(const Tensor<T>& x, Scalar<T> scalar) {
  Tensor<T> out = detail::map(x, [scalar](T v) { return v + scalar; });
  autograd::record<T>("add_scalar", out, {x}, [](const Tensor<T>& g, const autograd::NeedsGrad&) {
    return autograd::GradList<T>{g};
  });
  return out;
}
template <typename T>
Tensor<T> mul(const Tensor<T>& x, Scalar<T> scalar) {
  Tensor<T> out = detail::map(x, [scalar](T v) { return v * scalar; });
  autograd::record<T>("mul_scalar", out, {x}, [scalar](const Tensor<T>& g, const autograd::NeedsGrad&) {
    return autograd::GradList<T>{detail::map(g, [scalar](T v) { return v * scalar; })};
  });
  return out;
}
template <typename T>
Tensor<T> sub(const Tensor<T>& x, Scalar<T> scalar) { return add(x, -scalar); }
template <typename T>
Tensor<T> div(const Tensor<T>& x, Scalar<T> scalar) { return mul(x, T(1) / scalar); }

// ---- neg: out = -x --------------------------------------------------------------------------------
template <typename T>
Tensor<T> neg(const Tensor<T>& x) { return mul(x, T(-1)); }

// s - x and s / x, for the operators with a scalar on the left.
// ∂(s - x)/∂x = -1; ∂(s / x)/∂x = -s / x².
template <typename T>
Tensor<T> rsub(Scalar<T> scalar, const Tensor<T>& x) { return add(neg(x), scalar); }
template <typename T>
Tensor<T> rdiv(Scalar<T> scalar, const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [scalar](T v) { return scalar / v; });
  if (autograd::any_requires_grad<T>({&x}))
    autograd::record<T>("rdiv_scalar", out, {x}, [scalar, x = x.detach()](const Tensor<T>& g, const autograd::NeedsGrad&) {
      return autograd::GradList<T>{detail::zip(g, x, [scalar](T gv, T xv) { return -gv * scalar / (xv * xv); })};
    });
  return out;
}

// ---- exp: out = eˣ --------------------------------------------------------------------------------
// ∂out/∂x = eˣ = out. Saves the output.
template <typename T>
Tensor<T> exp(const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [](T v) { return std::exp(v); });
  if (autograd::any_requires_grad<T>({&x}))
    autograd::record<T>("exp", out, {x}, [y = out.detach()](const Tensor<T>& g, const autograd::NeedsGrad&) {
      return autograd::GradList<T>{detail::zip(g, y, [](T gv, T yv) { return gv * yv; })};
    });
  return out;
}

// ---- log: out = ln x ------------------------------------------------------------------------------
// ∂out/∂x = 1/x. Saves the input.
template <typename T>
Tensor<T> log(const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [](T v) { return std::log(v); });
  if (autograd::any_requires_grad<T>({&x}))
    autograd::record<T>("log", out, {x}, [x = x.detach()](const Tensor<T>& g, const autograd::NeedsGrad&) {
      return autograd::GradList<T>{detail::zip(g, x, [](T gv, T xv) { return gv / xv; })};
    });
  return out;
}

// ---- sqrt: out = √x -------------------------------------------------------------------------------
// ∂out/∂x = 1 / (2√x) = 1 / (2·out). Saves the output.
template <typename T>
Tensor<T> sqrt(const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [](T v) { return std::sqrt(v); });
  if (autograd::any_requires_grad<T>({&x}))
    autograd::record<T>("sqrt", out, {x}, [y = out.detach()](const Tensor<T>& g, const autograd::NeedsGrad&) {
      return autograd::GradList<T>{detail::zip(g, y, [](T gv, T yv) { return gv / (T(2) * yv); })};
    });
  return out;
}

// ---- pow: out = xᵖ (scalar exponent) -----------------------------------------------------------------
// ∂out/∂x = p·xᵖ⁻¹. Saves the input.
template <typename T>
Tensor<T> pow(const Tensor<T>& x, Scalar<T> exponent) {
  Tensor<T> out = detail::map(x, [exponent](T v) { return std::pow(v, exponent); });
  if (autograd::any_requires_grad<T>({&x}))
    autograd::record<T>("pow", out, {x}, [exponent, x = x.detach()](const Tensor<T>& g, const autograd::NeedsGrad&) {
      return autograd::GradList<T>{
          detail::zip(g, x, [exponent](T gv, T xv) { return gv * exponent * std::pow(xv, exponent - T(1)); })};
    });
  return out;
}

// ---- operators ------------------------------------------------------------------------------------
template <typename T> Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) { return add(a, b); }
template <typename T> Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) { return sub(a, b); }
template <typename T> Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) { return mul(a, b); }
template <typename T> Tensor<T> operator/(const Tensor<T>& a, const Tensor<T>& b) { return div(a, b); }
template <typename T> Tensor<T> operator-(const Tensor<T>& x) { return neg(x); }
template <typename T> Tensor<T> operator+(const Tensor<T>& x, Scalar<T> s) { return add(x, s); }
template <typename T> Tensor<T> operator+(Scalar<T> s, const Tensor<T>& x) { return add(x, s); }
template <typename T> Tensor<T> operator-(const Tensor<T>& x, Scalar<T> s) { return sub(x, s); }
template <typename T> Tensor<T> operator-(Scalar<T> s, const Tensor<T>& x) { return rsub(s, x); }
template <typename T> Tensor<T> operator*(const Tensor<T>& x, Scalar<T> s) { return mul(x, s); }
template <typename T> Tensor<T> operator*(Scalar<T> s, const Tensor<T>& x) { return mul(x, s); }
template <typename T> Tensor<T> operator/(const Tensor<T>& x, Scalar<T> s) { return div(x, s); }
template <typename T> Tensor<T> operator/(Scalar<T> s, const Tensor<T>& x) { return rdiv(s, x); }

// The names this header's backward nodes carry (ops/registry.hpp; each has a gradient check).
CCT_REGISTER_OPS(elementwise, "add", "sub", "mul", "div", "add_scalar", "mul_scalar", "rdiv_scalar", "exp", "log", "sqrt", "pow");

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPS_ELEMENTWISE_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE Tensor<T> add<T>(const Tensor<T>&, const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> sub<T>(const Tensor<T>&, const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> mul<T>(const Tensor<T>&, const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> div<T>(const Tensor<T>&, const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> add<T>(const Tensor<T>&, T); \
  CCT_EXTERN_TEMPLATE Tensor<T> sub<T>(const Tensor<T>&, T); \
  CCT_EXTERN_TEMPLATE Tensor<T> mul<T>(const Tensor<T>&, T); \
  CCT_EXTERN_TEMPLATE Tensor<T> div<T>(const Tensor<T>&, T); \
  CCT_EXTERN_TEMPLATE Tensor<T> neg<T>(const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> rsub<T>(T, const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> rdiv<T>(T, const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> exp<T>(const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> log<T>(const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> sqrt<T>(const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> pow<T>(const Tensor<T>&, T);
CCT_FOR_FLOATING_TYPES(CCT_OPS_ELEMENTWISE_TEMPLATES)
#undef CCT_OPS_ELEMENTWISE_TEMPLATES
#endif

}  // namespace cct
