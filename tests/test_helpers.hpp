// Shared helpers for the test suite: random inputs and a Catch2-friendly gradient check.
#pragma once

#include <catch2/catch.hpp>

#include <cct/autograd/gradcheck.hpp>
#include <cct/core/tensor.hpp>

namespace cct::testing {

// A random double tensor in [-1, 1) that requires grad (a leaf for gradcheck).
inline Tensor<double> random_leaf(const Shape& shape, uint64_t seed, double low = -1.0, double high = 1.0) {
  Generator gen(seed);
  Tensor<double> t = Tensor<double>::uniform(shape, low, high, gen);
  t.requires_grad_();
  return t;
}

// The same without requires_grad (held fixed by gradcheck).
inline Tensor<double> random_constant(const Shape& shape, uint64_t seed, double low = -1.0, double high = 1.0) {
  Generator gen(seed);
  return Tensor<double>::uniform(shape, low, high, gen);
}

// Fails the current test with gradcheck's message when autograd and finite differences disagree.
inline void check_gradients(const GradcheckFn& fn, const std::vector<Tensor<double>>& inputs,
                            GradcheckOptions options = {}) {
  const GradcheckResult result = gradcheck(fn, inputs, options);
  INFO(result.message);
  CHECK(result.passed);
}

}  // namespace cct::testing

// Elementwise closeness of two tensors (same shape; |a - b| <= atol + rtol |b|).
#define CCT_REQUIRE_CLOSE(actual, expected, tolerance)                                              \
  do {                                                                                              \
    const auto& cct_a = (actual);                                                                   \
    const auto& cct_e = (expected);                                                                 \
    REQUIRE(cct_a.shape() == cct_e.shape());                                                        \
    for (int64_t cct_i = 0; cct_i < cct_a.numel(); ++cct_i) {                                       \
      INFO("element " << cct_i);                                                                    \
      REQUIRE(static_cast<double>(cct_a.data()[cct_i]) ==                                           \
              Approx(static_cast<double>(cct_e.data()[cct_i])).margin(tolerance).epsilon(tolerance)); \
    }                                                                                               \
  } while (0)
