// Activations: relu, gelu (exact, erf form), tanh, sigmoid. Each forward is followed by its backward.
#pragma once

#include <cmath>

#include "elementwise.hpp"
#include "kernels/vector_math.hpp"
#include "registry.hpp"

namespace cct {

// ---- relu: out = max(x, 0) ------------------------------------------------------------------------
// ∂out/∂x = 1 where out > 0, else 0 (0 at x = 0, as PyTorch). Saves the output.
template <typename T>
Tensor<T> relu(const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [](T v) { return v > T(0) ? v : T(0); });
  if (autograd::any_requires_grad<T>({&x}))
    autograd::record<T>("relu", out, {x}, [y = out.detach()](const Tensor<T>& g, const autograd::NeedsGrad&) {
      return autograd::GradList<T>{detail::zip(g, y, [](T gv, T yv) { return yv > T(0) ? gv : T(0); })};
    });
  return out;
}

// ---- gelu: out = x·Φ(x), Φ(x) = ½(1 + erf(x/√2)) ---------------------------------------------------
// ∂out/∂x = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π). Saves the input.
template <typename T>
T gelu_value(T x) { return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440))); }
template <typename T>
T gelu_derivative(T x) {
  const T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
  const T pdf = std::exp(T(-0.5) * x * x) * T(0.39894228040143267794);
  return cdf + x * pdf;
}

// gelu_value and gelu_derivative are the scalar reference; the op runs the vectorised kernels of
// kernels/vector_math.hpp (the same formulas, a few ulp apart in float).
template <typename T>
Tensor<T> gelu(const Tensor<T>& x) {
  Tensor<T> out = Tensor<T>::empty(x.shape());
  parallel_for(0, x.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
    kernels::gelu_forward(x.data() + begin, out.data() + begin, end - begin);
  });
  if (autograd::any_requires_grad<T>({&x}))
    autograd::record<T>("gelu", out, {x}, [x = x.detach()](const Tensor<T>& g, const autograd::NeedsGrad&) {
      Tensor<T> grad_x = Tensor<T>::empty(x.shape());
      parallel_for(0, x.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
        kernels::gelu_backward(g.data() + begin, x.data() + begin, grad_x.data() + begin, end - begin);
      });
      return autograd::GradList<T>{grad_x};
    });
  return out;
}

// ---- tanh: out = tanh x ---------------------------------------------------------------------------
// ∂out/∂x = 1 − out². Saves the output.
template <typename T>
Tensor<T> tanh(const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [](T v) { return std::tanh(v); });
  if (autograd::any_requires_grad<T>({&x}))
    autograd::record<T>("tanh", out, {x}, [y = out.detach()](const Tensor<T>& g, const autograd::NeedsGrad&) {
      return autograd::GradList<T>{detail::zip(g, y, [](T gv, T yv) { return gv * (T(1) - yv * yv); })};
    });
  return out;
}

// ---- sigmoid: out = 1 / (1 + e⁻ˣ) -------------------------------------------------------------------
// ∂out/∂x = out·(1 − out). Saves the output. Evaluated so that neither branch overflows.
template <typename T>
Tensor<T> sigmoid(const Tensor<T>& x) {
  Tensor<T> out = detail::map(x, [](T v) {
    if (v >= T(0)) return T(1) / (T(1) + std::exp(-v));
    const T e = std::exp(v);
    return e / (T(1) + e);
  });
  if (autograd::any_requires_grad<T>({&x}))
    autograd::record<T>("sigmoid", out, {x}, [y = out.detach()](const Tensor<T>& g, const autograd::NeedsGrad&) {
      return autograd::GradList<T>{detail::zip(g, y, [](T gv, T yv) { return gv * yv * (T(1) - yv); })};
    });
  return out;
}

// The names this header's backward nodes carry (ops/registry.hpp; each has a gradient check).
CCT_REGISTER_OPS(activation, "relu", "gelu", "tanh", "sigmoid");

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPS_ACTIVATION_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE Tensor<T> relu<T>(const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> gelu<T>(const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> tanh<T>(const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE Tensor<T> sigmoid<T>(const Tensor<T>&);
CCT_FOR_FLOATING_TYPES(CCT_OPS_ACTIVATION_TEMPLATES)
#undef CCT_OPS_ACTIVATION_TEMPLATES
#endif

}  // namespace cct
