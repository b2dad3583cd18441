// gradcheck: compares autograd's gradients with central finite differences, in double precision.
//
// For a function f of several tensors, gradcheck forms the scalar L = Σ f(x)·w with fixed random
// weights w (so that every output element's gradient is exercised with a different upstream value),
// runs backward once, and for every element x_i of every input that requires grad compares ∂L/∂x_i
// with (L(x_i + h) − L(x_i − h)) / 2h. It reports the worst element rather than stopping at the first.
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "../core/tensor.hpp"
#include "grad_mode.hpp"

namespace cct {

struct GradcheckOptions {
  double step = 1e-6;        // h
  double atol = 1e-5;        // pass when |analytic − numeric| ≤ atol + rtol·|numeric|
  double rtol = 1e-4;
  uint64_t seed = 1234;      // for the output weights w
};

struct GradcheckResult {
  bool passed = true;
  double max_abs_error = 0;  // worst |analytic − numeric|
  std::string message;       // where the worst element was, with both values
};

using GradcheckFn = std::function<Tensor<double>(const std::vector<Tensor<double>>&)>;

inline GradcheckResult gradcheck(const GradcheckFn& fn, std::vector<Tensor<double>> inputs,
                                 const GradcheckOptions& options = {}) {
  // Fresh leaves, so the caller's tensors and their gradients are untouched.
  for (auto& input : inputs) {
    const bool wanted = input.requires_grad();
    input = input.clone();
    if (wanted) input.requires_grad_();
  }
  Tensor<double> probe;
  {
    NoGradGuard no_grad;
    probe = fn(inputs);
  }
  Generator gen(options.seed);
  const Tensor<double> weights = Tensor<double>::uniform(probe.shape(), 0.5, 1.5, gen);
  auto weighted_sum = [&](const Tensor<double>& out) {
    double sum = 0;
    for (int64_t i = 0; i < out.numel(); ++i) sum += out.data()[i] * weights.data()[i];
    return sum;
  };

  Tensor<double> out = fn(inputs);
  CCT_CHECK(out.requires_grad(), "gradcheck: the function's output does not require grad");
  out.backward(weights);

  GradcheckResult result;
  NoGradGuard no_grad;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor<double>& input = inputs[k];
    if (!input.requires_grad()) continue;
    const Tensor<double> analytic = input.grad();
    for (int64_t i = 0; i < input.numel(); ++i) {
      const double saved = input.data()[i];
      input.data()[i] = saved + options.step;
      const double plus = weighted_sum(fn(inputs));
      input.data()[i] = saved - options.step;
      const double minus = weighted_sum(fn(inputs));
      input.data()[i] = saved;
      const double numeric = (plus - minus) / (2 * options.step);
      const double got = analytic.defined() ? analytic.data()[i] : 0.0;
      const double error = std::abs(got - numeric);
      const bool ok = error <= options.atol + options.rtol * std::abs(numeric) && std::isfinite(got);
      const std::string where = detail::concat("input ", k, " ", shape_str(input.shape()), " element ", i,
                                               ": analytic ", got, " vs numeric ", numeric);
      if (!ok && result.passed) {  // report the first failure
        result.passed = false;
        result.message = where;
      }
      if (error > result.max_abs_error) {
        result.max_abs_error = error;
        if (result.passed) result.message = "worst at " + where;
      }
    }
  }
  return result;
}

}  // namespace cct
