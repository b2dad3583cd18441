// Matrix products: matmul (plain, batched, shared b, every transpose combination) and linear.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <sstream>
#include <thread>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <cct/autograd/gradcheck.hpp>
#include <cct/core/precision.hpp>
#include <cct/ops/kernels/gemm_bf16.hpp>
#include <cct/ops/matmul.hpp>

#include "test_helpers.hpp"

using cct::Shape;
using cct::Tensor;
using cct::testing::check_gradients;
using cct::testing::forward_backward;
using cct::testing::forward_backward_bf16;
using cct::testing::max_difference;
using cct::testing::rounded_to_bf16;
using cct::testing::random_constant;
using cct::testing::random_leaf;
using cct::testing::ThreadCountGuard;
using Inputs = std::vector<Tensor<double>>;

namespace {

// Flat index of element (row, col) of op(x_item), x_item being the matrix at `item` of a row-major
// (..., rows, cols). Sizes are passed in: the tests build at -O0, where accessor calls in the inner
// loops would cost more than the arithmetic.
int64_t op_index(int64_t rows, int64_t cols, int64_t item, bool transposed, int64_t row, int64_t col) {
  const int64_t r = transposed ? col : row, c = transposed ? row : col;
  return item * rows * cols + r * cols + c;
}

// op(a)·op(b) by the definition, in double: batched when both are N-D, b shared when b is 2-D.
template <typename T>
Tensor<double> naive_matmul(const Tensor<T>& a, const Tensor<T>& b, bool transpose_a, bool transpose_b) {
  const int64_t M = transpose_a ? a.size(-1) : a.size(-2), K = transpose_a ? a.size(-2) : a.size(-1);
  const int64_t N = transpose_b ? b.size(-2) : b.size(-1);
  const int64_t batch = a.numel() / (M * K);
  const bool shared_b = b.dim() == 2;
  Shape out_shape(a.shape().begin(), a.shape().end() - 2);
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor<double> out = Tensor<double>::zeros(out_shape);
  const int64_t a_rows = a.size(-2), a_cols = a.size(-1), b_rows = b.size(-2), b_cols = b.size(-1);
  const T *a_data = a.data(), *b_data = b.data();
  double* out_data = out.data();
  for (int64_t i = 0; i < batch; ++i)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double sum = 0;
        for (int64_t k = 0; k < K; ++k)
          sum += static_cast<double>(a_data[op_index(a_rows, a_cols, i, transpose_a, m, k)]) *
                 static_cast<double>(b_data[op_index(b_rows, b_cols, shared_b ? 0 : i, transpose_b, k, n)]);
        out_data[(i * M + m) * N + n] = sum;
      }
  return out;
}

// x·Wᵀ + b by the definition, in double.
template <typename T>
Tensor<double> naive_linear(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias) {
  const int64_t in = weight.size(1), out_features = weight.size(0), rows = x.numel() / in;
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  Tensor<double> out = Tensor<double>::empty(out_shape);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out_features; ++o) {
      double sum = bias.defined() ? static_cast<double>(bias.data()[o]) : 0.0;
      for (int64_t k = 0; k < in; ++k)
        sum += static_cast<double>(x.data()[r * in + k]) * static_cast<double>(weight.data()[o * in + k]);
      out.data()[r * out_features + o] = sum;
    }
  return out;
}

// Stored shape of an operand whose op() is rows×cols, with leading batch dims.
Shape stored_shape(Shape batch, int64_t rows, int64_t cols, bool transposed) {
  batch.push_back(transposed ? cols : rows);
  batch.push_back(transposed ? rows : cols);
  return batch;
}

// Restores the thread count when a test that changes it ends, even by a failed REQUIRE.
const bool kFlags[] = {false, true};

}  // namespace

TEST_CASE("matmul forward values by hand", "[ops][matmul]") {
  // [1 2 3; 4 5 6] · [7 8; 9 10; 11 12] = [58 64; 139 154]
  auto a = Tensor<float>::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  auto b = Tensor<float>::from_vector({7, 8, 9, 10, 11, 12}, {3, 2});
  auto c = cct::matmul(a, b);
  REQUIRE(c.shape() == Shape{2, 2});
  REQUIRE(c.to_vector() == std::vector<float>{58, 64, 139, 154});
  // aᵀ·aᵀ... with transposes: bᵀ (2×3) · aᵀ (3×2) = (a·b)ᵀ = [58 139; 64 154]
  REQUIRE(cct::matmul(b, a, true, true).to_vector() == std::vector<float>{58, 139, 64, 154});
  // aᵀ·a (3×3): columns of a dotted together.
  REQUIRE(cct::matmul(a, a, true, false).to_vector() == std::vector<float>{17, 22, 27, 22, 29, 36, 27, 36, 45});
  // a·aᵀ (2×2): rows of a dotted together.
  REQUIRE(cct::matmul(a, a, false, true).to_vector() == std::vector<float>{14, 32, 32, 77});

  // Batched: item 0 is the product above, item 1 multiplies by the identity.
  auto batched_a = Tensor<double>::from_vector({1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0}, {2, 2, 3});
  auto batched_b = Tensor<double>::from_vector({7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6}, {2, 3, 2});
  REQUIRE(cct::matmul(batched_a, batched_b).to_vector() == std::vector<double>{58, 64, 139, 154, 1, 2, 3, 4});
  // Shared b: each item of a is multiplied by the same b.
  auto shared = cct::matmul(batched_a, Tensor<double>::from_vector({7, 8, 9, 10, 11, 12}, {3, 2}));
  REQUIRE(shared.shape() == Shape{2, 2, 2});
  REQUIRE(shared.to_vector() == std::vector<double>{58, 64, 139, 154, 7, 8, 9, 10});
}

TEST_CASE("matmul matches a naive loop for every transpose combination", "[ops][matmul]") {
  const int64_t M = 5, K = 7, N = 3;
  uint64_t seed = 100;
  for (bool transpose_a : kFlags)
    for (bool transpose_b : kFlags) {
      INFO("transpose_a=" << transpose_a << " transpose_b=" << transpose_b);
      // 2-D × 2-D
      auto a = random_constant(stored_shape({}, M, K, transpose_a), ++seed);
      auto b = random_constant(stored_shape({}, K, N, transpose_b), ++seed);
      auto c = cct::matmul(a, b, transpose_a, transpose_b);
      REQUIRE(c.shape() == Shape{M, N});
      CCT_REQUIRE_CLOSE(c, naive_matmul(a, b, transpose_a, transpose_b), 1e-12);

      // Batched with two leading dims.
      auto batched_a = random_constant(stored_shape({2, 3}, M, K, transpose_a), ++seed);
      auto batched_b = random_constant(stored_shape({2, 3}, K, N, transpose_b), ++seed);
      auto batched = cct::matmul(batched_a, batched_b, transpose_a, transpose_b);
      REQUIRE(batched.shape() == Shape{2, 3, M, N});
      CCT_REQUIRE_CLOSE(batched, naive_matmul(batched_a, batched_b, transpose_a, transpose_b), 1e-12);

      // N-D × shared 2-D b.
      auto shared = cct::matmul(batched_a, b, transpose_a, transpose_b);
      REQUIRE(shared.shape() == Shape{2, 3, M, N});
      CCT_REQUIRE_CLOSE(shared, naive_matmul(batched_a, b, transpose_a, transpose_b), 1e-12);

      // Float, large enough that the batch is split across threads and the items are big.
      cct::Generator gen(++seed);
      auto fa = Tensor<float>::uniform(stored_shape({6}, 33, 65, transpose_a), -1, 1, gen);
      auto fb = Tensor<float>::uniform(stored_shape({6}, 65, 47, transpose_b), -1, 1, gen);
      CCT_REQUIRE_CLOSE(cct::matmul(fa, fb, transpose_a, transpose_b), naive_matmul(fa, fb, transpose_a, transpose_b),
                        1e-4);
    }
}

TEST_CASE("matmul handles empty and single-element shapes", "[ops][matmul]") {
  auto a = Tensor<float>::ones({3, 0});
  auto b = Tensor<float>::ones({0, 4});
  auto c = cct::matmul(a, b);  // inner dim 0: a sum over nothing
  REQUIRE(c.shape() == Shape{3, 4});
  for (float v : c.to_vector()) REQUIRE(v == 0.0f);
  REQUIRE(cct::matmul(Tensor<float>::ones({0, 2, 3}), Tensor<float>::ones({3, 5})).shape() == Shape{0, 2, 5});
  REQUIRE(cct::matmul(Tensor<float>::full({1, 1}, 3), Tensor<float>::full({1, 1}, 4)).item() == 12.0f);
}

TEST_CASE("float and double matmul agree on a large product", "[ops][matmul]") {
  auto a = random_constant({200, 300}, 7);
  auto b = random_constant({300, 150}, 8);
  auto c_double = cct::matmul(a, b);
  auto c_float = cct::matmul(a.to<float>(), b.to<float>());
  // Entries are sums of 300 products of magnitude < 1 (typical size ~5); float keeps ~1e-6 relative.
  CCT_REQUIRE_CLOSE(c_float, c_double, 2e-4);
  auto x = random_constant({4, 50, 300}, 9);
  auto w = random_constant({150, 300}, 10);
  auto bias = random_constant({150}, 11);
  CCT_REQUIRE_CLOSE(cct::linear(x.to<float>(), w.to<float>(), bias.to<float>()), cct::linear(x, w, bias), 2e-4);
}

TEST_CASE("linear matches a naive loop", "[ops][linear]") {
  // By hand: x = [1 2; 3 4], W = [1 0; 0 1; 1 1], b = [10 20 30] → x·Wᵀ + b = [11 22 33; 13 24 37]
  auto x = Tensor<float>::from_vector({1, 2, 3, 4}, {2, 2});
  auto w = Tensor<float>::from_vector({1, 0, 0, 1, 1, 1}, {3, 2});
  auto b = Tensor<float>::from_vector({10, 20, 30}, {3});
  REQUIRE(cct::linear(x, w, b).to_vector() == std::vector<float>{11, 22, 33, 13, 24, 37});
  REQUIRE(cct::linear(x, w).to_vector() == std::vector<float>{1, 2, 3, 3, 4, 7});

  const std::vector<Shape> x_shapes = {{7}, {5, 7}, {2, 5, 7}, {3, 2, 4, 7}, {0, 7}};
  uint64_t seed = 300;
  for (const Shape& shape : x_shapes) {
    INFO("x shape " << cct::shape_str(shape));
    auto input = random_constant(shape, ++seed);
    auto weight = random_constant({9, 7}, ++seed);
    auto bias = random_constant({9}, ++seed);
    Shape expected_shape = shape;
    expected_shape.back() = 9;
    auto with_bias = cct::linear(input, weight, bias);
    REQUIRE(with_bias.shape() == expected_shape);
    CCT_REQUIRE_CLOSE(with_bias, naive_linear(input, weight, bias), 1e-12);
    CCT_REQUIRE_CLOSE(cct::linear(input, weight), naive_linear(input, weight, Tensor<double>()), 1e-12);
  }
}

namespace {
// Gradients of L = Σ g ⊙ (op(a)·op(b)) by the definition, one multiply-add at a time, in double.
std::pair<Tensor<double>, Tensor<double>> naive_matmul_gradients(const Tensor<double>& a, const Tensor<double>& b,
                                                                 bool transpose_a, bool transpose_b,
                                                                 const Tensor<double>& g) {
  const int64_t M = transpose_a ? a.size(-1) : a.size(-2), K = transpose_a ? a.size(-2) : a.size(-1);
  const int64_t N = transpose_b ? b.size(-2) : b.size(-1);
  const int64_t batch = a.numel() / (M * K);
  const bool shared_b = b.dim() == 2;
  auto grad_a = Tensor<double>::zeros(a.shape()), grad_b = Tensor<double>::zeros(b.shape());
  const int64_t a_rows = a.size(-2), a_cols = a.size(-1), b_rows = b.size(-2), b_cols = b.size(-1);
  const double *a_data = a.data(), *b_data = b.data(), *g_data = g.data();
  double *grad_a_data = grad_a.data(), *grad_b_data = grad_b.data();
  for (int64_t i = 0; i < batch; ++i)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        const double upstream = g_data[(i * M + m) * N + n];
        for (int64_t k = 0; k < K; ++k) {
          const int64_t ia = op_index(a_rows, a_cols, i, transpose_a, m, k);
          const int64_t ib = op_index(b_rows, b_cols, shared_b ? 0 : i, transpose_b, k, n);
          grad_a_data[ia] += upstream * b_data[ib];
          grad_b_data[ib] += upstream * a_data[ia];
        }
      }
  return {grad_a, grad_b};
}
}  // namespace

TEST_CASE("matmul and linear backward match naive gradients on larger shapes", "[ops][matmul][linear]") {
  // Large enough that threads split the batch, and that a shared b's gradient is summed in per-thread
  // partials (transpose_a) or folded into one GEMM (no transpose_a).
  uint64_t seed = 500;
  for (bool transpose_a : kFlags)
    for (bool transpose_b : kFlags)
      for (bool shared : {false, true}) {
        INFO("transpose_a=" << transpose_a << " transpose_b=" << transpose_b << " shared b=" << shared);
        const int64_t batch = 64, M = 31, K = 33, N = 29;
        auto a = random_leaf(stored_shape({batch}, M, K, transpose_a), ++seed);
        auto b = random_leaf(stored_shape(shared ? Shape{} : Shape{batch}, K, N, transpose_b), ++seed);
        auto out = cct::matmul(a, b, transpose_a, transpose_b);
        auto g = random_constant(out.shape(), ++seed);
        out.backward(g);
        auto [expected_a, expected_b] = naive_matmul_gradients(a, b, transpose_a, transpose_b, g);
        CCT_REQUIRE_CLOSE(a.grad(), expected_a, 1e-10);
        CCT_REQUIRE_CLOSE(b.grad(), expected_b, 1e-10);
      }

  auto x = random_leaf({16, 40, 48}, ++seed);
  auto w = random_leaf({36, 48}, ++seed);
  auto bias = random_leaf({36}, ++seed);
  auto out = cct::linear(x, w, bias);
  auto g = random_constant(out.shape(), ++seed);
  out.backward(g);
  // linear(x, W, b) = x·Wᵀ + b with the batch folded into rows: the shared-b matmul with transpose_b.
  auto [expected_x, expected_w] = naive_matmul_gradients(x, w, false, true, g);
  CCT_REQUIRE_CLOSE(x.grad(), expected_x, 1e-10);
  CCT_REQUIRE_CLOSE(w.grad(), expected_w, 1e-10);
  auto expected_bias = Tensor<double>::zeros({36});
  for (int64_t r = 0; r < 16 * 40; ++r)
    for (int64_t o = 0; o < 36; ++o) expected_bias.data()[o] += g.data()[r * 36 + o];
  CCT_REQUIRE_CLOSE(bias.grad(), expected_bias, 1e-10);
}

TEST_CASE("multithreaded matmul and linear equal the single-threaded results", "[ops][matmul][linear][threads]") {
  ThreadCountGuard guard;
  cct::Generator gen(21);
  auto a = Tensor<float>::uniform({256, 300}, -1, 1, gen);
  auto b = Tensor<float>::uniform({300, 200}, -1, 1, gen);
  auto few_a = Tensor<float>::uniform({3, 160, 120}, -1, 1, gen);  // few large items: each GEMM splits itself
  auto few_b = Tensor<float>::uniform({3, 140, 160}, -1, 1, gen);
  auto many_a = Tensor<float>::uniform({64, 24, 40}, -1, 1, gen);  // many small items: threads split the batch
  auto many_b = Tensor<float>::uniform({64, 40, 24}, -1, 1, gen);
  auto shared_b = Tensor<float>::uniform({24, 36}, -1, 1, gen);
  auto x = Tensor<float>::uniform({8, 64, 96}, -1, 1, gen);
  auto w = Tensor<float>::uniform({80, 96}, -1, 1, gen);
  auto bias = Tensor<float>::uniform({80}, -1, 1, gen);

  // Outputs and every input gradient, for an upstream gradient of all ones.
  auto run = [](const std::vector<Tensor<float>>& constants, auto op) {
    std::vector<Tensor<float>> leaves;
    for (const auto& c : constants) leaves.push_back(c.clone().requires_grad_());
    Tensor<float> out = op(leaves);
    out.backward(Tensor<float>::ones(out.shape()));
    std::vector<Tensor<float>> results{out.detach()};
    for (const auto& leaf : leaves) results.push_back(leaf.grad());
    return results;
  };
  auto everything = [&] {
    std::vector<std::vector<Tensor<float>>> results;
    results.push_back(run({a, b}, [](const auto& in) { return cct::matmul(in[0], in[1]); }));
    results.push_back(run({few_a, few_b}, [](const auto& in) { return cct::matmul(in[0], in[1], true, true); }));
    results.push_back(run({many_a, many_b}, [](const auto& in) { return cct::matmul(in[0], in[1]); }));
    results.push_back(run({many_a, shared_b}, [](const auto& in) { return cct::matmul(in[0], in[1], true, false); }));
    results.push_back(run({x, w}, [](const auto& in) { return cct::matmul(in[0], in[1], false, true); }));
    results.push_back(run({x, w, bias}, [](const auto& in) { return cct::linear(in[0], in[1], in[2]); }));
    return results;
  };
  cct::set_num_threads(1);
  auto serial = everything();
  cct::set_num_threads(2);
  auto parallel = everything();
  for (size_t i = 0; i < serial.size(); ++i)
    for (size_t j = 0; j < serial[i].size(); ++j) {
      INFO("case " << i << ", tensor " << j << " (0 = output, then input gradients)");
      // Relative for large sums (the gradients of shared operands add up thousands of terms).
      CCT_REQUIRE_CLOSE(parallel[i][j], serial[i][j], 1e-5);
    }
}

TEST_CASE("gradients of matmul match finite differences", "[ops][matmul][gradcheck]") {
  uint64_t seed = 700;
  for (bool transpose_a : kFlags)
    for (bool transpose_b : kFlags) {
      INFO("transpose_a=" << transpose_a << " transpose_b=" << transpose_b);
      auto fn = [transpose_a, transpose_b](const Inputs& in) {
        return cct::matmul(in[0], in[1], transpose_a, transpose_b);
      };
      // 2-D, batched (one and two leading dims), and a shared 2-D b.
      check_gradients(fn, {random_leaf(stored_shape({}, 3, 5, transpose_a), ++seed),
                           random_leaf(stored_shape({}, 5, 2, transpose_b), ++seed)});
      check_gradients(fn, {random_leaf(stored_shape({3}, 2, 5, transpose_a), ++seed),
                           random_leaf(stored_shape({3}, 5, 3, transpose_b), ++seed)});
      check_gradients(fn, {random_leaf(stored_shape({2, 2}, 3, 1, transpose_a), ++seed),
                           random_leaf(stored_shape({2, 2}, 1, 3, transpose_b), ++seed)});
      check_gradients(fn, {random_leaf(stored_shape({2, 3}, 3, 4, transpose_a), ++seed),
                           random_leaf(stored_shape({}, 4, 3, transpose_b), ++seed)});
      // Only one operand requires grad.
      check_gradients(fn, {random_constant(stored_shape({2}, 3, 4, transpose_a), ++seed),
                           random_leaf(stored_shape({}, 4, 3, transpose_b), ++seed)});
      check_gradients(fn, {random_leaf(stored_shape({2}, 3, 4, transpose_a), ++seed),
                           random_constant(stored_shape({2}, 4, 3, transpose_b), ++seed)});
    }
  // The same tensor as both operands: a·aᵀ.
  check_gradients([](const Inputs& in) { return cct::matmul(in[0], in[0], false, true); },
                  {random_leaf({2, 3, 4}, ++seed)});
}

TEST_CASE("gradients of linear match finite differences", "[ops][linear][gradcheck]") {
  auto x3 = random_leaf({2, 3, 5}, 801);
  auto w = random_leaf({4, 5}, 802);
  auto bias = random_leaf({4}, 803);
  check_gradients([](const Inputs& in) { return cct::linear(in[0], in[1], in[2]); }, {x3, w, bias});
  check_gradients([](const Inputs& in) { return cct::linear(in[0], in[1]); }, {x3, w});
  check_gradients([](const Inputs& in) { return cct::linear(in[0], in[1], in[2]); },
                  {random_leaf({3, 5}, 804), w, bias});
  check_gradients([](const Inputs& in) { return cct::linear(in[0], in[1], in[2]); },
                  {random_leaf({5}, 805), w, bias});
  // x held constant (a first layer), and only the bias trained.
  check_gradients([](const Inputs& in) { return cct::linear(in[0], in[1], in[2]); },
                  {random_constant({2, 3, 5}, 806), w, bias});
  check_gradients([](const Inputs& in) { return cct::linear(in[0], in[1], in[2]); },
                  {random_constant({2, 3, 5}, 807), random_constant({4, 5}, 808), bias});
}

TEST_CASE("matmul and linear reject mismatched shapes with clear messages", "[ops][matmul][linear]") {
  auto a = Tensor<float>::ones({2, 3});
  auto b = Tensor<float>::ones({4, 5});
  REQUIRE_THROWS_AS(cct::matmul(a, b), cct::ShapeError);
  REQUIRE_THROWS_WITH(cct::matmul(a, b), Catch::Contains("matmul") && Catch::Contains("(2, 3)") &&
                                             Catch::Contains("(4, 5)") && Catch::Contains("3 vs 4"));
  // Transposing b does not make it fit either, and the message says which operand was transposed.
  REQUIRE_THROWS_WITH(cct::matmul(a, b, false, true),
                      Catch::Contains("transpose_b=true") && Catch::Contains("3 vs 5"));
  REQUIRE_THROWS_WITH(cct::matmul(a, Tensor<float>::ones({2, 5}), false, false), Catch::Contains("3 vs 2"));
  REQUIRE_NOTHROW(cct::matmul(a, Tensor<float>::ones({2, 5}), true, false));
  REQUIRE_THROWS_WITH(cct::matmul(Tensor<float>::ones({3}), a),
                      Catch::Contains("matmul") && Catch::Contains("at least 2 dims") && Catch::Contains("(3,)"));
  REQUIRE_THROWS_WITH(cct::matmul(Tensor<float>::ones({2, 2, 3}), Tensor<float>::ones({3, 3, 4})),
                      Catch::Contains("batch dims differ") && Catch::Contains("(2, 2, 3)") &&
                          Catch::Contains("(3, 3, 4)"));
  REQUIRE_THROWS_WITH(cct::matmul(Tensor<float>::ones({2, 2, 3}), Tensor<float>::ones({1, 2, 3, 4})),
                      Catch::Contains("same rank"));
  REQUIRE_THROWS_WITH(cct::matmul(a, Tensor<float>::ones({2, 3, 4})), Catch::Contains("same rank"));

  auto x = Tensor<float>::ones({2, 4, 6});
  auto w = Tensor<float>::ones({8, 5});
  REQUIRE_THROWS_AS(cct::linear(x, w), cct::ShapeError);
  REQUIRE_THROWS_WITH(cct::linear(x, w), Catch::Contains("linear") && Catch::Contains("(2, 4, 6)") &&
                                             Catch::Contains("(8, 5)") && Catch::Contains("6 input features"));
  REQUIRE_THROWS_WITH(cct::linear(x, Tensor<float>::ones({8, 6}), Tensor<float>::ones({6})),
                      Catch::Contains("linear") && Catch::Contains("bias") && Catch::Contains("(6,)") &&
                          Catch::Contains("(8,)"));
  REQUIRE_THROWS_WITH(cct::linear(x, Tensor<float>::ones({6})), Catch::Contains("linear") &&
                                                                   Catch::Contains("(out, in)"));
}

// ---- bf16 GEMM kernel (ops/kernels/gemm_bf16.hpp) ---------------------------------------------------
//
// Tolerances. bf16 keeps 8 significant bits, so rounding one operand costs a relative error of at most
// u = 2^-8, and an exact product of two rounded operands is off by at most 2u + u² relative:
//   |C − C_exact| ≤ |alpha|·Σ_k |a_k||b_k|·(2^-7 + 2^-16) + fp32 slack,
// the fp32 slack being what summing K exact products (and applying alpha and beta) in fp32 may add:
// (K + 4)·2^-24 relative to |alpha|·Σ|a||b| + |beta·c|. The fast and the portable paths form the same
// exact products and sum them in the same order, so they agree bit for bit (tolerance 0).

namespace {

// Forces the portable bf16 path for a scope (or lets the fast one run), restoring the setting after.
struct ForcePortableBf16 {
  bool saved = cct::kernels::detail::force_portable_bf16_flag().load();
  explicit ForcePortableBf16(bool forced) { cct::kernels::force_portable_bf16(forced); }
  ~ForcePortableBf16() { cct::kernels::force_portable_bf16(saved); }
};

// Runs body(portable) on each bf16 path: the portable one, and the fast one where this CPU has it,
// with that path forced for the call.
template <typename Body>
void for_each_bf16_path(const Body& body) {
  for (const bool portable : kFlags) {
    if (!portable && !cct::kernels::cpu_has_avx512_bf16()) continue;
    ForcePortableBf16 force(portable);
    body(portable);
  }
}

// A strided row-major float operand with its op() dims, filled with uniform values in [-1, 1).
struct GemmOperandData {
  int64_t rows, cols, ld;
  std::vector<float> values;
  GemmOperandData(int64_t op_rows, int64_t op_cols, bool transposed, uint64_t seed)
      : rows(transposed ? op_cols : op_rows), cols(transposed ? op_rows : op_cols), ld(cols + 3) {
    cct::Generator gen(seed);
    auto t = Tensor<float>::uniform({std::max<int64_t>(1, rows * ld)}, -1, 1, gen);
    values = t.to_vector();
  }
  double at(bool transposed, int64_t r, int64_t c) const {  // element (r, c) of op(X)
    return transposed ? values[c * ld + r] : values[r * ld + c];
  }
};

struct Bf16Case {
  int64_t M, N, K;
  bool trans_a, trans_b;
  float alpha, beta;
};

std::string describe(const Bf16Case& c) {
  return cct::detail::concat("M=", c.M, " N=", c.N, " K=", c.K, " trans_a=", c.trans_a, " trans_b=", c.trans_b,
                             " alpha=", c.alpha, " beta=", c.beta);
}

// Runs gemm_bf16 on one case; returns C (M × (N + 2) with a stride, the padding must stay untouched).
std::vector<float> run_bf16_case(const Bf16Case& c, const GemmOperandData& a, const GemmOperandData& b,
                                 const std::vector<float>& c_initial) {
  std::vector<float> out = c_initial;
  cct::kernels::gemm_bf16(c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, a.values.data(), a.ld, b.values.data(), b.ld,
                          c.beta, out.data(), c.N + 2);
  return out;
}

const Bf16Case kBf16Cases[] = {
    {1, 1, 1, false, false, 1, 0},      {2, 3, 2, true, false, 1, 0},       {7, 17, 3, false, true, 0.75f, 0.5f},
    {13, 64, 31, true, true, -2, 1},    {5, 65, 33, false, false, 1, 1},    {70, 100, 65, true, false, 0.5f, -1},
    {6, 16, 513, false, true, 1, 0},    {19, 130, 1025, true, true, 1, 0.25f}, {200, 1, 7, false, false, 1, 0},
    {1, 300, 40, false, true, 1, 0},    {97, 129, 128, false, false, 1, 0},  {12, 48, 1, true, false, 3, 2},
    {250, 33, 37, true, false, 1, 0.5f},  // transposed op(A) over two row blocks (192 + 58)
};

}  // namespace

TEST_CASE("round_to_bf16 rounds to nearest even at 8 significant bits", "[ops][matmul][bf16]") {
  using cct::kernels::round_to_bf16;
  const float one = 1.0f, ulp = std::ldexp(1.0f, -7);  // bf16 spacing just above 1
  REQUIRE(round_to_bf16(one) == one);
  REQUIRE(round_to_bf16(one + ulp) == one + ulp);
  REQUIRE(round_to_bf16(one + ulp / 2) == one);                  // tie: down to the even neighbour
  REQUIRE(round_to_bf16(one + 3 * ulp / 2) == one + 2 * ulp);    // tie: up to the even neighbour
  REQUIRE(round_to_bf16(one + ulp / 2 + std::ldexp(1.0f, -20)) == one + ulp);  // above the tie: up
  REQUIRE(round_to_bf16(-(one + ulp / 4)) == -one);
  REQUIRE(std::isinf(round_to_bf16(std::numeric_limits<float>::max())));  // beyond bf16's largest finite value
  REQUIRE(std::isinf(round_to_bf16(std::numeric_limits<float>::infinity())));
  REQUIRE(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  // Below 2^-126 values become ±0, as AVX512_BF16's conversion treats denormals; 2^-126 itself stays.
  REQUIRE(round_to_bf16(std::numeric_limits<float>::min()) == std::numeric_limits<float>::min());
  REQUIRE(round_to_bf16(std::numeric_limits<float>::denorm_min()) == 0.0f);
  REQUIRE(std::signbit(round_to_bf16(-std::numeric_limits<float>::denorm_min())));
  // A NaN whose payload lies only in the low 16 bits must not be truncated into infinity.
  uint32_t low_payload_nan_bits = 0x7f800001u;
  float low_payload_nan;
  std::memcpy(&low_payload_nan, &low_payload_nan_bits, sizeof low_payload_nan);
  REQUIRE(std::isnan(round_to_bf16(low_payload_nan)));
}

TEST_CASE("bf16 gemm matches a double reference within bf16 rounding, on both paths", "[ops][matmul][bf16]") {
  const bool fast_available = cct::kernels::cpu_has_avx512_bf16();
  if (!fast_available) WARN("this CPU has no AVX512_BF16: only the portable bf16 path is tested");
  uint64_t seed = 500;
  for_each_bf16_path([&](bool portable) {
    for (const Bf16Case& c : kBf16Cases) {
      INFO((portable ? "portable: " : "fast: ") << describe(c));
      const GemmOperandData a(c.M, c.K, c.trans_a, ++seed), b(c.K, c.N, c.trans_b, ++seed);
      cct::Generator gen(++seed);
      const std::vector<float> c_initial = Tensor<float>::uniform({c.M * (c.N + 2)}, -1, 1, gen).to_vector();
      const std::vector<float> out = run_bf16_case(c, a, b, c_initial);
      double worst_ratio = 0;
      for (int64_t i = 0; i < c.M; ++i) {
        for (int64_t j = 0; j < c.N; ++j) {
          double exact = 0, magnitude = 0;
          for (int64_t k = 0; k < c.K; ++k) {
            exact += a.at(c.trans_a, i, k) * b.at(c.trans_b, k, j);
            magnitude += std::fabs(a.at(c.trans_a, i, k) * b.at(c.trans_b, k, j));
          }
          const double old_c = c_initial[i * (c.N + 2) + j];
          const double expected = c.alpha * exact + c.beta * old_c;
          const double scaled = std::fabs(c.alpha) * magnitude;
          const double fp32_slack = (c.K + 4) * std::ldexp(1.0, -24) * (scaled + std::fabs(c.beta * old_c));
          const double tolerance = scaled * (std::ldexp(1.0, -7) + std::ldexp(1.0, -16)) + fp32_slack + 1e-30;
          const double error = std::fabs(out[i * (c.N + 2) + j] - expected);
          worst_ratio = std::max(worst_ratio, error / tolerance);
        }
        for (int64_t j = c.N; j < c.N + 2; ++j) REQUIRE(out[i * (c.N + 2) + j] == c_initial[i * (c.N + 2) + j]);
      }
      INFO("worst error / tolerance = " << worst_ratio);
      REQUIRE(worst_ratio <= 1.0);
    }
  });
}

TEST_CASE("bf16 gemm really rounds its operands", "[ops][matmul][bf16]") {
  // 1 + 2^-10 is not a bf16 value: it rounds to 1, so (1 + 2^-10)·1 comes out as exactly 1 (fp32 would
  // keep the 2^-10), on either path.
  for_each_bf16_path([&](bool portable) {
    const float a = 1.0f + std::ldexp(1.0f, -10), b = 1.0f;
    float c = 0;
    cct::kernels::gemm_bf16(false, false, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
    REQUIRE(c == 1.0f);
    // beta = 0 ignores whatever C held, NaN included; beta = 1 adds onto it.
    c = std::numeric_limits<float>::quiet_NaN();
    cct::kernels::gemm_bf16(false, false, 1, 1, 1, 1.0f, &b, 1, &b, 1, 0.0f, &c, 1);
    REQUIRE(c == 1.0f);
    cct::kernels::gemm_bf16(false, false, 1, 1, 1, 1.0f, &b, 1, &b, 1, 1.0f, &c, 1);
    REQUIRE(c == 2.0f);
  });
}

TEST_CASE("bf16 gemm: the fast path and the portable path agree bit for bit", "[ops][matmul][bf16]") {
  if (!cct::kernels::cpu_has_avx512_bf16()) {
    WARN("this CPU has no AVX512_BF16: there is no fast path to compare");
    return;
  }
  uint64_t seed = 900;
  for (const Bf16Case& c : kBf16Cases) {
    INFO(describe(c));
    const GemmOperandData a(c.M, c.K, c.trans_a, ++seed), b(c.K, c.N, c.trans_b, ++seed);
    cct::Generator gen(++seed);
    const std::vector<float> c_initial = Tensor<float>::uniform({c.M * (c.N + 2)}, -1, 1, gen).to_vector();
    std::vector<float> fast, portable;
    {
      ForcePortableBf16 force(false);
      fast = run_bf16_case(c, a, b, c_initial);
    }
    {
      ForcePortableBf16 force(true);
      portable = run_bf16_case(c, a, b, c_initial);
    }
    REQUIRE(fast == portable);
  }
}

TEST_CASE("narrow_to_bf16 gives round_to_bf16's bit patterns, on both paths", "[ops][matmul][bf16]") {
  const float nan_value = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> values = {0.0f, -0.0f, 1.0f, 1.0f + std::ldexp(1.0f, -8), 1.0f + 3 * std::ldexp(1.0f, -8),
                               -2.5e-3f, std::numeric_limits<float>::max(), -std::numeric_limits<float>::infinity(),
                               std::numeric_limits<float>::min(), std::numeric_limits<float>::denorm_min(), nan_value};
  cct::Generator gen(3);
  for (float v : Tensor<float>::uniform({26}, -100, 100, gen).to_vector()) values.push_back(v);  // 37: a partial vector
  for_each_bf16_path([&](bool portable) {
    std::vector<uint16_t> narrowed(values.size());
    cct::kernels::narrow_to_bf16(values.data(), static_cast<int64_t>(values.size()), narrowed.data());
    for (size_t i = 0; i < values.size(); ++i) {
      INFO((portable ? "portable: " : "fast: ") << "value " << i << " = " << values[i]);
      const float back = cct::kernels::bf16_to_float(narrowed[i]);
      if (std::isnan(values[i])) {
        REQUIRE(std::isnan(back));
      } else {
        REQUIRE(narrowed[i] == cct::kernels::bf16_bits(values[i]));
        REQUIRE(back == cct::kernels::round_to_bf16(values[i]));
      }
    }
  });
}

TEST_CASE("bf16 gemm takes operands as bf16 patterns and gives the same bits as from floats", "[ops][matmul][bf16]") {
  // What linear relies on when it saves a bf16 copy of x and multiplies with it: rounding a bf16 value
  // is a no-op, so A, B or both given as patterns change nothing.
  uint64_t seed = 1100;
  for_each_bf16_path([&](bool portable) {
    for (const Bf16Case& c : kBf16Cases) {
      INFO((portable ? "portable: " : "fast: ") << describe(c));
      const GemmOperandData a(c.M, c.K, c.trans_a, ++seed), b(c.K, c.N, c.trans_b, ++seed);
      cct::Generator gen(++seed);
      const std::vector<float> c_initial = Tensor<float>::uniform({c.M * (c.N + 2)}, -1, 1, gen).to_vector();
      std::vector<uint16_t> a_bits(a.values.size()), b_bits(b.values.size());
      cct::kernels::narrow_to_bf16(a.values.data(), static_cast<int64_t>(a.values.size()), a_bits.data());
      cct::kernels::narrow_to_bf16(b.values.data(), static_cast<int64_t>(b.values.size()), b_bits.data());
      const std::vector<float> from_floats = run_bf16_case(c, a, b, c_initial);
      std::vector<float> a_as_bits = c_initial, b_as_bits = c_initial, both_as_bits = c_initial;
      cct::kernels::gemm_bf16(c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, a_bits.data(), a.ld, b.values.data(), b.ld,
                              c.beta, a_as_bits.data(), c.N + 2);
      cct::kernels::gemm_bf16(c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, a.values.data(), a.ld, b_bits.data(), b.ld,
                              c.beta, b_as_bits.data(), c.N + 2);
      cct::kernels::gemm_bf16(c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, a_bits.data(), a.ld, b_bits.data(), b.ld,
                              c.beta, both_as_bits.data(), c.N + 2);
      REQUIRE(a_as_bits == from_floats);
      REQUIRE(b_as_bits == from_floats);
      REQUIRE(both_as_bits == from_floats);
    }
  });
}

TEST_CASE("bf16 gemm results do not depend on the thread count", "[ops][matmul][bf16][threads]") {
  ThreadCountGuard guard;
  // Tall (rows split across threads) and short wide (columns split), both with two depth blocks.
  const Bf16Case cases[] = {{300, 200, 600, false, true, 1, 0}, {70, 700, 530, true, false, 0.5f, 1}};
  uint64_t seed = 1300;
  for_each_bf16_path([&](bool portable) {
    for (const Bf16Case& c : cases) {
      INFO((portable ? "portable: " : "fast: ") << describe(c));
      const GemmOperandData a(c.M, c.K, c.trans_a, ++seed), b(c.K, c.N, c.trans_b, ++seed);
      cct::Generator gen(++seed);
      const std::vector<float> c_initial = Tensor<float>::uniform({c.M * (c.N + 2)}, -1, 1, gen).to_vector();
      cct::set_num_threads(1);
      const std::vector<float> serial = run_bf16_case(c, a, b, c_initial);
      cct::set_num_threads(2);
      const std::vector<float> parallel = run_bf16_case(c, a, b, c_initial);
      REQUIRE(parallel == serial);  // bit for bit
    }
  });
}

// ---- the precision setting (core/precision.hpp) in matmul and linear ----------------------------------

TEST_CASE("PrecisionGuard: scoped, nested, per thread, over a process-wide default", "[ops][bf16][precision]") {
  using cct::Precision;
  REQUIRE(cct::current_precision() == Precision::kFP32);
  {
    cct::PrecisionGuard bf16(Precision::kBF16);
    REQUIRE(cct::current_precision() == Precision::kBF16);
    {
      cct::PrecisionGuard fp32(Precision::kFP32);
      REQUIRE(cct::current_precision() == Precision::kFP32);
    }
    REQUIRE(cct::current_precision() == Precision::kBF16);
    // Another thread sees the default, not this thread's guard.
    Precision seen = Precision::kBF16;
    std::thread([&] { seen = cct::current_precision(); }).join();
    REQUIRE(seen == Precision::kFP32);
  }
  REQUIRE(cct::current_precision() == Precision::kFP32);
  cct::set_default_precision(Precision::kBF16);
  REQUIRE(cct::current_precision() == Precision::kBF16);
  Precision seen = Precision::kFP32;
  std::thread([&] { seen = cct::current_precision(); }).join();
  REQUIRE(seen == Precision::kBF16);
  {
    cct::PrecisionGuard fp32(Precision::kFP32);
    REQUIRE(cct::current_precision() == Precision::kFP32);
  }
  cct::set_default_precision(Precision::kFP32);
  REQUIRE(cct::current_precision() == Precision::kFP32);
  REQUIRE(cct::parse_precision("bf16") == Precision::kBF16);
  REQUIRE(cct::parse_precision("fp32") == Precision::kFP32);
  REQUIRE(std::string(cct::precision_name(Precision::kBF16)) == "bf16");
  REQUIRE_THROWS_AS(cct::parse_precision("fp16"), cct::Error);
}

TEST_CASE("matmul and linear under bf16 compute on bf16 operands, backward included", "[ops][matmul][linear][bf16]") {
  // Under the guard every product (forward, ∂a, ∂b) multiplies bf16-rounded operands, so it equals the
  // fp32 computation on rounded inputs and a rounded upstream gradient, up to fp32 summation order
  // (tolerance 1e-4, against bf16's own error of about 1e-2 here, which the last check demands).
  // The backward runs after the guard's scope has ended: it keeps the precision of its forward.
  cct::Generator gen(77);
  struct MatmulCase {
    Shape a, b;
    bool transpose_a, transpose_b;
  };
  const MatmulCase cases[] = {{{40, 70}, {70, 50}, false, false},
                              {{3, 70, 40}, {3, 50, 70}, true, true},
                              {{4, 33, 70}, {70, 50}, false, false},   // shared b folded into the rows
                              {{4, 70, 33}, {50, 70}, true, true}};    // shared b summed over the batch
  for_each_bf16_path([&](bool portable) {
    for (const MatmulCase& c : cases) {
      INFO((portable ? "portable: " : "fast: ") << "a " << cct::shape_str(c.a) << " b " << cct::shape_str(c.b));
      const auto a = Tensor<float>::uniform(c.a, -1, 1, gen), b = Tensor<float>::uniform(c.b, -1, 1, gen);
      auto op = [&](const std::vector<Tensor<float>>& in) { return cct::matmul(in[0], in[1], c.transpose_a, c.transpose_b); };
      const Tensor<float> probe = cct::matmul(a, b, c.transpose_a, c.transpose_b);
      const auto g = Tensor<float>::uniform(probe.shape(), -1, 1, gen);
      const auto bf16 = forward_backward_bf16({a, b}, g, op);
      const auto emulated = forward_backward({rounded_to_bf16(a), rounded_to_bf16(b)}, rounded_to_bf16(g), op);
      const auto fp32 = forward_backward({a, b}, g, op);
      for (size_t t = 0; t < 3; ++t) {
        INFO("tensor " << t << " (output, ∂a, ∂b)");
        CCT_REQUIRE_CLOSE(bf16[t], emulated[t], 1e-4);
        CHECK(max_difference(bf16[t], fp32[t]) > 1e-3);  // really bf16, not fp32
      }
    }
  });

  // linear: x·Wᵀ + b with ∂x = g·W and ∂W = gᵀ·x in bf16; the bias and its gradient stay fp32.
  const auto x = Tensor<float>::uniform({4, 33, 70}, -1, 1, gen), w = Tensor<float>::uniform({50, 70}, -1, 1, gen);
  const auto bias = Tensor<float>::uniform({50}, -1, 1, gen), g = Tensor<float>::uniform({4, 33, 50}, -1, 1, gen);
  auto op = [](const std::vector<Tensor<float>>& in) { return cct::linear(in[0], in[1], in[2]); };
  const auto bf16 = forward_backward_bf16({x, w, bias}, g, op);
  const auto emulated = forward_backward({rounded_to_bf16(x), rounded_to_bf16(w), bias}, rounded_to_bf16(g), op);
  const auto fp32 = forward_backward({x, w, bias}, g, op);
  for (size_t t = 0; t < 3; ++t) {
    INFO("linear tensor " << t << " (output, ∂x, ∂W)");
    CCT_REQUIRE_CLOSE(bf16[t], emulated[t], 1e-4);
    CHECK(max_difference(bf16[t], fp32[t]) > 1e-3);
  }
  REQUIRE(bf16[3].to_vector() == fp32[3].to_vector());  // ∂b is a fp32 reduction of g, untouched
}

TEST_CASE("linear under bf16 saves a bf16 copy of x and gives the same results bit for bit", "[ops][linear][bf16]") {
  // ∂W = gᵀ·x rounds x to bf16, so the copy saved for it (half the memory) changes nothing.
  cct::Generator gen(78);
  const auto x = Tensor<float>::uniform({3, 41, 70}, -1, 1, gen), w = Tensor<float>::uniform({50, 70}, -1, 1, gen);
  const auto bias = Tensor<float>::uniform({50}, -1, 1, gen), g = Tensor<float>::uniform({3, 41, 50}, -1, 1, gen);
  auto op = [](const std::vector<Tensor<float>>& in) { return cct::linear(in[0], in[1], in[2]); };
  for_each_bf16_path([&](bool portable) {
    std::vector<Tensor<float>> with_copy, with_floats;
    {
      cct::testing::SaveBf16OperandsGuard save(true);
      with_copy = forward_backward_bf16({x, w, bias}, g, op);
    }
    {
      cct::testing::SaveBf16OperandsGuard save(false);
      with_floats = forward_backward_bf16({x, w, bias}, g, op);
    }
    for (size_t t = 0; t < 4; ++t) {
      INFO((portable ? "portable: " : "fast: ") << "tensor " << t << " (output, ∂x, ∂W, ∂b)");
      REQUIRE(with_copy[t].to_vector() == with_floats[t].to_vector());
    }
  });
}

TEST_CASE("the precision setting never reaches double products or gradient checks", "[ops][matmul][linear][bf16]") {
  auto a = random_leaf({3, 4, 5}, 1), b = random_leaf({5, 6}, 2);
  auto x = random_leaf({2, 3, 5}, 3), w = random_leaf({4, 5}, 4), bias = random_leaf({4}, 5);
  const cct::GradcheckFn fn = [](const Inputs& in) {
    return cct::linear(cct::matmul(in[0], in[1]), in[2], in[3]);
  };
  const Inputs inputs{a, b, random_leaf({7, 6}, 6), random_leaf({7}, 7)};
  const cct::GradcheckResult plain = cct::gradcheck(fn, inputs);
  cct::GradcheckResult guarded;
  Tensor<double> guarded_out;
  {
    cct::PrecisionGuard guard(cct::Precision::kBF16);
    guarded = cct::gradcheck(fn, inputs);
    guarded_out = cct::linear(x, w, bias);
  }
  REQUIRE(plain.passed);
  REQUIRE(guarded.passed == plain.passed);
  REQUIRE(guarded.max_abs_error == plain.max_abs_error);  // exactly: the same double arithmetic
  REQUIRE(guarded.message == plain.message);
  REQUIRE(guarded_out.to_vector() == cct::linear(x, w, bias).to_vector());
}

TEST_CASE("bf16 on the portable path says once that it is slower than fp32", "[ops][matmul][bf16]") {
  ForcePortableBf16 force(true);
  cct::kernels::detail::portable_bf16_notice_printed().store(false);
  std::ostringstream captured;
  std::streambuf* saved = std::cerr.rdbuf(captured.rdbuf());
  cct::Generator gen(5);
  const auto x = Tensor<float>::uniform({8, 20}, -1, 1, gen), w = Tensor<float>::uniform({12, 20}, -1, 1, gen);
  Tensor<float> first, second, fp32 = cct::linear(x, w);
  {
    cct::PrecisionGuard guard(cct::Precision::kBF16);
    first = cct::linear(x, w);
    second = cct::linear(x, w);
  }
  std::cerr.rdbuf(saved);
  const std::string text = captured.str();
  INFO("stderr: " << text);
  REQUIRE(text.find("slower than fp32") != std::string::npos);
  REQUIRE(std::count(text.begin(), text.end(), '\n') == 1);
  REQUIRE(first.to_vector() == second.to_vector());
  CCT_REQUIRE_CLOSE(first, cct::linear(rounded_to_bf16(x), rounded_to_bf16(w)), 1e-5);
  REQUIRE(max_difference(first, fp32) > 1e-4);
}

// ---- fp32 GEMM: the AVX-512 kernel every build dispatches to on a CPU with AVX-512 (ops/kernels/gemm_fp32_avx512.hpp) ----

TEST_CASE("fp32 gemm matches a double reference within fp32 rounding, whichever kernel runs", "[ops][matmul][gemm]") {
  // Tolerance: summing K products in fp32 (and applying alpha and beta) is off by at most about
  // (K + 4)·2^-24 relative to |alpha|·Σ|a||b| + |beta·c|, for any summation order.
  INFO("AVX-512 kernel dispatched: " << cct::kernels::fp32_avx512_dispatch());
  uint64_t seed = 2000;
  for (const Bf16Case& c : kBf16Cases) {
    INFO(describe(c));
    const GemmOperandData a(c.M, c.K, c.trans_a, ++seed), b(c.K, c.N, c.trans_b, ++seed);
    cct::Generator gen(++seed);
    const std::vector<float> c_initial = Tensor<float>::uniform({c.M * (c.N + 2)}, -1, 1, gen).to_vector();
    std::vector<float> out = c_initial;
    cct::kernels::gemm<float>(c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, a.values.data(), a.ld, b.values.data(),
                              b.ld, c.beta, out.data(), c.N + 2);
    double worst_ratio = 0;
    for (int64_t i = 0; i < c.M; ++i) {
      for (int64_t j = 0; j < c.N; ++j) {
        double exact = 0, magnitude = 0;
        for (int64_t k = 0; k < c.K; ++k) {
          exact += a.at(c.trans_a, i, k) * b.at(c.trans_b, k, j);
          magnitude += std::fabs(a.at(c.trans_a, i, k) * b.at(c.trans_b, k, j));
        }
        const double old_c = c_initial[i * (c.N + 2) + j];
        const double tolerance =
            (c.K + 4) * std::ldexp(1.0, -24) * (std::fabs(c.alpha) * magnitude + std::fabs(c.beta * old_c)) + 1e-30;
        worst_ratio = std::max(worst_ratio, std::fabs(out[i * (c.N + 2) + j] - (c.alpha * exact + c.beta * old_c)) / tolerance);
      }
      for (int64_t j = c.N; j < c.N + 2; ++j) REQUIRE(out[i * (c.N + 2) + j] == c_initial[i * (c.N + 2) + j]);
    }
    INFO("worst error / tolerance = " << worst_ratio);
    REQUIRE(worst_ratio <= 1.0);
  }
}

TEST_CASE("the dispatched fp32 AVX-512 kernel gives the same bits on any thread count", "[ops][matmul][gemm][threads]") {
  if (!cct::kernels::fp32_avx512_dispatch()) {
    WARN("this CPU has no AVX-512: floats are multiplied with Eigen's kernel, nothing dispatched to compare");
    return;
  }
  ThreadCountGuard guard;
  const Bf16Case cases[] = {{300, 200, 600, false, true, 1, 0}, {70, 700, 530, true, false, 0.5f, 1}};
  uint64_t seed = 2500;
  for (const Bf16Case& c : cases) {
    INFO(describe(c));
    const GemmOperandData a(c.M, c.K, c.trans_a, ++seed), b(c.K, c.N, c.trans_b, ++seed);
    cct::Generator gen(++seed);
    const std::vector<float> c_initial = Tensor<float>::uniform({c.M * (c.N + 2)}, -1, 1, gen).to_vector();
    auto run = [&] {
      std::vector<float> out = c_initial;
      cct::kernels::gemm<float>(c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, a.values.data(), a.ld,
                                b.values.data(), b.ld, c.beta, out.data(), c.N + 2);
      return out;
    };
    cct::set_num_threads(1);
    const std::vector<float> serial = run();
    cct::set_num_threads(2);
    REQUIRE(run() == serial);
  }
}
