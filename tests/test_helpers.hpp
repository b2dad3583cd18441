// Shared helpers for the test suite: random inputs and a Catch2-friendly gradient check.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <cmath>
#include <vector>

#include <string>

#include <cct/autograd/gradcheck.hpp>
#include <cct/core/parallel.hpp>
#include <cct/core/tensor.hpp>
#include <cct/ops/kernels/gemm_bf16.hpp>

namespace cct::testing {

// A test that needs something this machine lacks (the shared data sets, a Debian data package) skips:
// under ctest, which runs one test case per process and sets CCT_SKIP_EXIT_CODE, the process exits with
// that code so ctest reports the test as skipped (never as passed); run by hand, it warns and returns.
#define CCT_SKIP_TEST(message)                                                 \
  do {                                                                         \
    if (const char* code = std::getenv("CCT_SKIP_EXIT_CODE")) {                \
      std::cout << "SKIPPED: " << message << std::endl;                        \
      std::exit(std::atoi(code));                                              \
    }                                                                          \
    WARN("skipped: " << message);                                              \
    return;                                                                    \
  } while (false)

// Restores the thread count a test changes (set_num_threads), even when a check fails.
struct ThreadCountGuard {
  int saved = num_threads();
  ~ThreadCountGuard() { set_num_threads(saved); }
};

// The shared data sets (../shared/data beside the repository, or CCT_DATA_DIR).
inline std::string source_data_dir() {
  if (const char* env = std::getenv("CCT_DATA_DIR")) return env;
  return std::string(CCT_SOURCE_DIR) + "/../shared/data";
}

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

// A copy of x with every element rounded to bf16: fp32 products of such copies are what bf16 computes.
inline Tensor<float> rounded_to_bf16(const Tensor<float>& x) {
  Tensor<float> out = x.detach().clone();
  for (int64_t i = 0; i < out.numel(); ++i) out.data()[i] = kernels::round_to_bf16(out.data()[i]);
  return out;
}

// Largest |a − b| over two tensors with the same number of elements.
inline double max_difference(const Tensor<float>& a, const Tensor<float>& b) {
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a.data()[i]) - static_cast<double>(b.data()[i])));
  return worst;
}

// Output and input gradients of op(inputs as fresh leaves) for upstream gradient g.
template <typename Op>
std::vector<Tensor<float>> forward_backward(const std::vector<Tensor<float>>& inputs, const Tensor<float>& g, Op op) {
  std::vector<Tensor<float>> leaves;
  for (const auto& input : inputs) leaves.push_back(input.detach().clone().requires_grad_());
  Tensor<float> out = op(leaves);
  out.backward(g);
  std::vector<Tensor<float>> results{out.detach()};
  for (const auto& leaf : leaves) results.push_back(leaf.grad());
  return results;
}

// The same, with the forward run under a bf16 PrecisionGuard and the backward after the guard's scope
// (it must keep its forward's precision).
template <typename Op>
std::vector<Tensor<float>> forward_backward_bf16(const std::vector<Tensor<float>>& inputs, const Tensor<float>& g,
                                                 Op op) {
  std::vector<Tensor<float>> leaves;
  for (const auto& input : inputs) leaves.push_back(input.detach().clone().requires_grad_());
  Tensor<float> out;
  {
    PrecisionGuard guard(Precision::kBF16);
    out = op(leaves);
  }
  out.backward(g);
  std::vector<Tensor<float>> results{out.detach()};
  for (const auto& leaf : leaves) results.push_back(leaf.grad());
  return results;
}

// Whether ops under bf16 save bf16 copies of operands (core/precision.hpp), for a scope.
struct SaveBf16OperandsGuard {
  bool saved = detail::save_bf16_operands_flag().load();
  explicit SaveBf16OperandsGuard(bool enabled) { detail::save_bf16_operands_flag().store(enabled); }
  ~SaveBf16OperandsGuard() { detail::save_bf16_operands_flag().store(saved); }
};

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
