// Softmax, log-softmax, layer_norm, cross_entropy, dropout and embedding: values, nasty inputs, gradients.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <cct/ops/dropout.hpp>
#include <cct/ops/elementwise.hpp>
#include <cct/ops/embedding.hpp>
#include <cct/ops/loss.hpp>
#include <cct/ops/norm.hpp>
#include <cct/ops/softmax.hpp>

#include "test_helpers.hpp"

using cct::Shape;
using cct::Tensor;
using cct::testing::check_gradients;
using cct::testing::random_constant;
using cct::testing::random_leaf;
using cct::testing::ThreadCountGuard;
using Inputs = std::vector<Tensor<double>>;

namespace {
// Restores the thread count a test changed.
bool all_finite(const Tensor<float>& t) {
  for (float v : t.to_vector())
    if (!std::isfinite(v)) return false;
  return true;
}
}  // namespace

// ---- softmax / log_softmax --------------------------------------------------------------------------

TEST_CASE("softmax and log_softmax forward values", "[ops][softmax]") {
  // softmax([1, 2, 3]) = e^k / (e + e² + e³); log Σ e^k = 3 + log(1 + e⁻¹ + e⁻²) = 3.40760596444438.
  auto x = Tensor<double>::from_vector({1, 2, 3});
  auto y = cct::softmax(x, 0).to_vector();
  REQUIRE(y[0] == Approx(0.09003057317038046).epsilon(1e-12));
  REQUIRE(y[1] == Approx(0.24472847105479764).epsilon(1e-12));
  REQUIRE(y[2] == Approx(0.66524095577482190).epsilon(1e-12));
  auto log_y = cct::log_softmax(x, -1).to_vector();
  REQUIRE(log_y[0] == Approx(-2.4076059644443806).epsilon(1e-12));
  REQUIRE(log_y[1] == Approx(-1.4076059644443806).epsilon(1e-12));
  REQUIRE(log_y[2] == Approx(-0.4076059644443806).epsilon(1e-12));

  // Along dim 0 of a (2, 3) tensor every column is a two-way softmax: [a, b] → [σ(a − b), σ(b − a)].
  auto m = Tensor<double>::from_vector({0, 1, 5, 0, 3, 5}, {2, 3});
  auto columns = cct::softmax(m, 0).to_vector();
  const double s = 1.0 / (1.0 + std::exp(-2.0));  // σ(2)
  REQUIRE(columns[0] == Approx(0.5));
  REQUIRE(columns[3] == Approx(0.5));
  REQUIRE(columns[1] == Approx(1 - s));
  REQUIRE(columns[4] == Approx(s));
  REQUIRE(columns[2] == Approx(0.5));
  // Middle dim of (2, 2, 2): pairs (x[i, 0, k], x[i, 1, k]).
  auto cube = Tensor<double>::from_vector({0, 0, std::log(3.0), 0, 1, 1, 1, 1}, {2, 2, 2});
  auto middle = cct::softmax(cube, 1).to_vector();
  REQUIRE(middle[0] == Approx(0.25));
  REQUIRE(middle[2] == Approx(0.75));
  REQUIRE(middle[1] == Approx(0.5));
  REQUIRE(middle[7] == Approx(0.5));

  REQUIRE_THROWS_AS(cct::softmax(m, 2), cct::ShapeError);
  REQUIRE_THROWS_WITH(cct::log_softmax(m, -3), Catch::Contains("log_softmax") && Catch::Contains("dim -3"));
}

TEST_CASE("softmax and log_softmax of huge logits stay finite and correct", "[ops][softmax]") {
  auto x = Tensor<float>::from_vector({1e4f, -1e4f, 0.0f, 1e4f}, {1, 4});
  auto y = cct::softmax(x, -1);
  REQUIRE(all_finite(y));
  REQUIRE(y.to_vector() == std::vector<float>{0.5f, 0.0f, 0.0f, 0.5f});
  auto log_y = cct::log_softmax(x, -1);
  REQUIRE(all_finite(log_y));
  const float log_half = -std::log(2.0f);
  REQUIRE(log_y(0, 0) == Approx(log_half));
  REQUIRE(log_y(0, 1) == Approx(-2e4f - std::log(2.0f)));
  REQUIRE(log_y(0, 2) == Approx(-1e4f - std::log(2.0f)));
  REQUIRE(log_y(0, 3) == Approx(log_half));

  // Along dim 0 as well (strided lines), in double.
  auto column = Tensor<double>::from_vector({-1e4, 1e4}, {2, 1});
  REQUIRE(cct::softmax(column, 0).to_vector() == std::vector<double>{0.0, 1.0});
  REQUIRE(cct::log_softmax(column, 0).to_vector() == std::vector<double>{-2e4, 0.0});
}

TEST_CASE("float softmax over the last dim (the vector row kernels) agrees with double for every row length",
          "[ops][softmax]") {
  // Contiguous float lines take the row kernels of kernels/vector_math.hpp (16 AVX-512 lanes where the
  // CPU has them, Eigen's packets elsewhere): full vectors, a masked tail, rows shorter than one vector.
  // Each probability is within a few float ulps of the double softmax (exp within 1 ulp, then a sum and
  // a division) plus what rounding x − max to float costs (up to 2⁻²⁴·|x − max| relative); padding at −∞
  // gets exactly 0.
  cct::Generator gen(5);
  for (const int64_t n : {1, 3, 15, 16, 17, 31, 64, 255, 256, 300}) {
    INFO("row length " << n);
    auto x = Tensor<float>::randn({3, n}, gen);
    for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] *= 6.0f;
    if (n > 4) x.data()[n + 2] = -std::numeric_limits<float>::infinity();
    const std::vector<float> y = cct::softmax(x, -1).to_vector();
    for (int64_t r = 0; r < 3; ++r) {
      double max_value = -INFINITY, sum = 0;
      for (int64_t j = 0; j < n; ++j) max_value = std::max(max_value, double(x.data()[r * n + j]));
      for (int64_t j = 0; j < n; ++j) sum += std::exp(double(x.data()[r * n + j]) - max_value);
      for (int64_t j = 0; j < n; ++j) {
        const double shifted = double(x.data()[r * n + j]) - max_value, expected = std::exp(shifted) / sum;
        if (std::isinf(shifted)) continue;  // the padding, checked below
        REQUIRE(std::abs(y[r * n + j] - expected) <= (6e-7 + 6e-8 * std::abs(shifted)) * expected + 1e-30);
      }
    }
    if (n > 4) REQUIRE(y[n + 2] == 0.0f);
  }
}

TEST_CASE("gradients of softmax and log_softmax match finite differences", "[ops][softmax][gradcheck]") {
  const Shape shape{3, 4, 5};
  for (int64_t dim : {0, 1, 2, -1, -2}) {
    INFO("dim " << dim);
    Inputs in{random_leaf(shape, 20 + static_cast<uint64_t>(dim + 2), -2.0, 2.0)};
    check_gradients([dim](const Inputs& x) { return cct::softmax(x[0], dim); }, in);
    check_gradients([dim](const Inputs& x) { return cct::log_softmax(x[0], dim); }, in);
  }
  Inputs odd{random_leaf({7}, 30, -3.0, 3.0)};
  check_gradients([](const Inputs& x) { return cct::softmax(x[0], 0); }, odd);
  check_gradients([](const Inputs& x) { return cct::log_softmax(x[0], -1); }, odd);
  // Composition: the gradient of a downstream op reaches the input through both.
  check_gradients([](const Inputs& x) { return cct::softmax(x[0], 1) * cct::log_softmax(x[0], 0); },
                  {random_leaf({3, 5}, 31)});
}

// ---- layer_norm -------------------------------------------------------------------------------------

TEST_CASE("layer_norm forward values", "[ops][layer_norm]") {
  // Row 0 [1, 2, 3, 4]: mean 2.5, biased var 1.25, x̂ = [−1.5, −0.5, 0.5, 1.5]/√1.25.
  // Row 1 [−1, 1, −1, 1]: mean 0, var 1, x̂ = x.   y = x̂·[1, 2, 0.5, −1] + [0, 1, −1, 2].
  auto x = Tensor<double>::from_vector({1, 2, 3, 4, -1, 1, -1, 1}, {2, 4});
  auto weight = Tensor<double>::from_vector({1, 2, 0.5, -1});
  auto bias = Tensor<double>::from_vector({0, 1, -1, 2});
  const double a = 1.5 / std::sqrt(1.25), b = 0.5 / std::sqrt(1.25);  // 1.3416407864998738, 0.4472135954999579
  const std::vector<double> expected{-a, 1 - 2 * b, -1 + 0.5 * b, 2 - a, -1, 3, -1.5, 1};
  auto y = cct::layer_norm(x, weight, bias, 0.0);
  CCT_REQUIRE_CLOSE(y, Tensor<double>::from_vector(expected, {2, 4}), 1e-12);
  REQUIRE(y(0, 1) == Approx(0.10557280900008412).epsilon(1e-12));

  // Without affine parameters: x̂ itself.
  auto plain = cct::layer_norm(x, Tensor<double>(), Tensor<double>(), 0.0);
  CCT_REQUIRE_CLOSE(plain, Tensor<double>::from_vector({-a, -b, b, a, -1, 1, -1, 1}, {2, 4}), 1e-12);
  // The default eps = 1e-5 enters as 1/√(var + eps): row 1 is scaled by 1/√1.00001.
  auto with_eps = cct::layer_norm(x, Tensor<double>(), Tensor<double>());
  REQUIRE(with_eps(1, 1) == Approx(1.0 / std::sqrt(1.00001)).epsilon(1e-12));
  REQUIRE(with_eps(0, 3) == Approx(1.5 / std::sqrt(1.25001)).epsilon(1e-12));

  REQUIRE_THROWS_AS(cct::layer_norm(x, Tensor<double>::ones({3}), bias), cct::ShapeError);
  REQUIRE_THROWS_WITH(cct::layer_norm(x, weight, Tensor<double>::ones({2, 4})),
                      Catch::Contains("layer_norm") && Catch::Contains("bias") && Catch::Contains("(2, 4)"));
}

TEST_CASE("layer_norm of a constant row is finite and equals the bias", "[ops][layer_norm]") {
  auto x = Tensor<float>::full({3, 5}, 7.25f);
  x(1, 2) = 1e6f;  // one non-constant row between constant ones
  for (int64_t j = 0; j < 5; ++j) x(2, j) = -3.0f;
  auto weight = Tensor<float>::from_vector({2, 3, 4, 5, 6});
  auto bias = Tensor<float>::from_vector({0.5f, -1, 2, 0, 3});
  auto y = cct::layer_norm(x, weight, bias);
  REQUIRE(all_finite(y));
  for (int64_t row : {0, 2})
    for (int64_t j = 0; j < 5; ++j) REQUIRE(y(row, j) == bias(j));
  // Its gradient is finite too (rstd = 1/√eps is large but finite).
  auto leaf = x.clone();
  leaf.requires_grad_();
  cct::layer_norm(leaf, weight, bias).backward(Tensor<float>::ones({3, 5}));
  REQUIRE(all_finite(leaf.grad()));
}

TEST_CASE("gradients of layer_norm match finite differences", "[ops][layer_norm][gradcheck]") {
  const Shape shape{2, 3, 5};  // odd D
  auto x = random_leaf(shape, 40, -2.0, 2.0);
  auto weight = random_leaf({5}, 41, 0.5, 1.5);
  auto bias = random_leaf({5}, 42);
  check_gradients([](const Inputs& in) { return cct::layer_norm(in[0], in[1], in[2]); }, {x, weight, bias});
  check_gradients([](const Inputs& in) { return cct::layer_norm(in[0], Tensor<double>(), Tensor<double>()); }, {x});
  check_gradients([](const Inputs& in) { return cct::layer_norm(in[0], in[1], Tensor<double>()); }, {x, weight});
  check_gradients([](const Inputs& in) { return cct::layer_norm(in[0], Tensor<double>(), in[1]); }, {x, bias});
  // Large eps and constant affine parameters (only x needs a gradient).
  check_gradients([](const Inputs& in) { return cct::layer_norm(in[0], in[1], in[2], 0.5); },
                  {x, random_constant({5}, 43), random_constant({5}, 44)});
  // Only the affine parameters need gradients.
  check_gradients([](const Inputs& in) { return cct::layer_norm(in[0], in[1], in[2]); },
                  {random_constant({4, 7}, 45), random_leaf({7}, 46), random_leaf({7}, 47)});
  check_gradients([](const Inputs& in) { return cct::layer_norm(in[0], in[1], in[2]); },
                  {random_leaf({1}, 48), random_leaf({1}, 49), random_leaf({1}, 50)});
}

TEST_CASE("layer_norm backward over many row blocks matches a direct sum and any thread count",
          "[ops][layer_norm]") {
  // 600 × 33 splits the column sums into several blocks; compare with a plain serial evaluation.
  const int64_t rows = 600, width = 33;
  auto x = random_constant({rows, width}, 51, -3.0, 3.0);
  auto weight = random_constant({width}, 52, 0.5, 1.5);
  auto bias = random_constant({width}, 53);
  auto upstream = random_constant({rows, width}, 54);

  auto run = [&](int threads) {
    ThreadCountGuard guard;
    cct::set_num_threads(threads);
    auto xl = x.clone(), wl = weight.clone(), bl = bias.clone();
    xl.requires_grad_();
    wl.requires_grad_();
    bl.requires_grad_();
    cct::layer_norm(xl, wl, bl).backward(upstream);
    return std::vector<Tensor<double>>{xl.grad(), wl.grad(), bl.grad()};
  };
  const auto one = run(1), two = run(2);
  for (size_t k = 0; k < 3; ++k) REQUIRE(one[k].to_vector() == two[k].to_vector());

  std::vector<double> grad_w(width, 0.0), grad_b(width, 0.0);
  double max_error = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t j = 0; j < width; ++j) mean += x(r, j);
    mean /= width;
    for (int64_t j = 0; j < width; ++j) var += (x(r, j) - mean) * (x(r, j) - mean);
    var /= width;
    const double rstd = 1 / std::sqrt(var + 1e-5);
    double mean_gh = 0, mean_ghxh = 0;
    for (int64_t j = 0; j < width; ++j) {
      const double xh = (x(r, j) - mean) * rstd, gh = upstream(r, j) * weight(j);
      grad_w[j] += upstream(r, j) * xh;
      grad_b[j] += upstream(r, j);
      mean_gh += gh / width;
      mean_ghxh += gh * xh / width;
    }
    for (int64_t j = 0; j < width; ++j) {
      const double xh = (x(r, j) - mean) * rstd, gh = upstream(r, j) * weight(j);
      max_error = std::max(max_error, std::abs(one[0](r, j) - rstd * (gh - mean_gh - xh * mean_ghxh)));
    }
  }
  REQUIRE(max_error < 1e-10);
  CCT_REQUIRE_CLOSE(one[1], Tensor<double>::from_vector(grad_w), 1e-10);
  CCT_REQUIRE_CLOSE(one[2], Tensor<double>::from_vector(grad_b), 1e-10);
}

// ---- cross_entropy ----------------------------------------------------------------------------------

TEST_CASE("cross_entropy forward values, with and without label smoothing", "[ops][loss]") {
  // Row 0: logits [1, 2, 3], target 2: −log_softmax = log(1 + e⁻¹ + e⁻²) = 0.4076059644443806.
  // Row 1: logits [0, 0, 0], target 0: log 3 = 1.0986122886681098.
  auto logits = Tensor<double>::from_vector({1, 2, 3, 0, 0, 0}, {2, 3});
  auto targets = Tensor<int64_t>::from_vector({2, 0});
  const double row0 = 0.4076059644443806, row1 = 1.0986122886681098;
  auto loss = cct::cross_entropy(logits, targets);
  REQUIRE(loss.shape() == Shape{});
  REQUIRE(loss.item() == Approx((row0 + row1) / 2).epsilon(1e-12));  // 0.7531091265562452

  // ε = 0.1: loss_b = −0.9·lp[t] − (0.1/3)·Σ_c lp_c. Row 0: Σ lp = 3·lp[2] − 3, so the loss is
  // −lp[2] + 0.1 = 0.5076059644443806; row 1 has equal log-probabilities, so it stays log 3.
  auto smoothed = cct::cross_entropy(logits, targets, 0.1);
  REQUIRE(smoothed.item() == Approx((row0 + 0.1 + row1) / 2).epsilon(1e-12));  // 0.8031091265562452

  // Soft targets: row 0 t = [0.2, 0.3, 0.5]: 0.2·2.4076… + 0.3·1.4076… + 0.5·0.4076… = 1.1076059644443806.
  auto soft = Tensor<double>::from_vector({0.2, 0.3, 0.5, 1, 0, 0}, {2, 3});
  REQUIRE(cct::cross_entropy(logits, soft).item() == Approx((1.1076059644443806 + row1) / 2).epsilon(1e-12));
  // One-hot soft targets equal the index form; smoothed one-hot targets equal label smoothing.
  auto one_hot = Tensor<double>::from_vector({0, 0, 1, 1, 0, 0}, {2, 3});
  REQUIRE(cct::cross_entropy(logits, one_hot).item() == Approx(loss.item()).epsilon(1e-12));
  auto smooth_dist = Tensor<double>::from_vector(
      {0.1 / 3, 0.1 / 3, 0.9 + 0.1 / 3, 0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3}, {2, 3});
  REQUIRE(cct::cross_entropy(logits, smooth_dist).item() == Approx(smoothed.item()).epsilon(1e-12));

  // Backward: (softmax − onehot)/B. Row 0: ([0.0900306, 0.2447285, 0.6652410] − [0, 0, 1]) / 2.
  auto leaf = logits.clone();
  leaf.requires_grad_();
  cct::cross_entropy(leaf, targets).backward();
  auto g = leaf.grad();
  REQUIRE(g(0, 0) == Approx(0.09003057317038046 / 2).epsilon(1e-12));
  REQUIRE(g(0, 1) == Approx(0.24472847105479764 / 2).epsilon(1e-12));
  REQUIRE(g(0, 2) == Approx((0.6652409557748219 - 1) / 2).epsilon(1e-12));
  REQUIRE(g(1, 0) == Approx((1.0 / 3 - 1) / 2).epsilon(1e-12));
  REQUIRE(g(1, 2) == Approx(1.0 / 6).epsilon(1e-12));
}

TEST_CASE("cross_entropy errors name the problem", "[ops][loss]") {
  auto logits = Tensor<double>::zeros({2, 3});
  REQUIRE_THROWS_WITH(cct::cross_entropy(logits, Tensor<int64_t>::from_vector({0, 3})),
                      Catch::Contains("target 3") && Catch::Contains("C = 3"));
  REQUIRE_THROWS_WITH(cct::cross_entropy(logits, Tensor<int64_t>::from_vector({-1, 0})),
                      Catch::Contains("target -1"));
  REQUIRE_THROWS_AS(cct::cross_entropy(logits, Tensor<int64_t>::from_vector({0, 1, 2})), cct::ShapeError);
  REQUIRE_THROWS_AS(cct::cross_entropy(Tensor<double>::zeros({6}), Tensor<int64_t>::from_vector({0})),
                    cct::ShapeError);
  REQUIRE_THROWS_WITH(cct::cross_entropy(logits, Tensor<int64_t>::from_vector({0, 1}), 1.5),
                      Catch::Contains("label_smoothing"));
  REQUIRE_THROWS_AS(cct::cross_entropy(logits, Tensor<double>::zeros({2, 4})), cct::ShapeError);
}

TEST_CASE("cross_entropy stays finite for extreme logits", "[ops][loss]") {
  auto logits = Tensor<float>::from_vector({1e4f, -1e4f, 0.0f, -1e4f, 1e4f, 1e4f}, {2, 3});
  logits.requires_grad_();
  auto targets = Tensor<int64_t>::from_vector({1, 2});
  // Row 0 picks a logit 2e4 below the maximum: loss 2e4. Row 1 picks one of two tied maxima: log 2.
  auto loss = cct::cross_entropy(logits, targets);
  REQUIRE(std::isfinite(loss.item()));
  REQUIRE(loss.item() == Approx((2e4 + std::log(2.0)) / 2));
  loss.backward();
  REQUIRE(all_finite(logits.grad()));
  REQUIRE(logits.grad()(0, 0) == Approx(0.5f));
  REQUIRE(logits.grad()(0, 1) == Approx(-0.5f));

  for (double smoothing : {0.1, 1.0}) {
    auto smoothed = cct::cross_entropy(logits, targets, smoothing);
    REQUIRE(std::isfinite(smoothed.item()));
  }
  auto soft = Tensor<float>::from_vector({0, 0.5f, 0.5f, 1, 0, 0}, {2, 3});
  auto soft_loss = cct::cross_entropy(logits, soft);
  REQUIRE(std::isfinite(soft_loss.item()));
  logits.zero_grad();
  soft_loss.backward();
  REQUIRE(all_finite(logits.grad()));
}

TEST_CASE("gradients of cross_entropy match finite differences", "[ops][loss][gradcheck]") {
  const auto targets = Tensor<int64_t>::from_vector({4, 0, 2, 4, 1});
  for (double smoothing : {0.0, 0.1}) {
    INFO("label_smoothing " << smoothing);
    check_gradients([&](const Inputs& x) { return cct::cross_entropy(x[0], targets, smoothing); },
                    {random_leaf({5, 5}, 60, -3.0, 3.0)});
  }
  const auto odd_targets = Tensor<int64_t>::from_vector({6, 3, 0});
  check_gradients([&](const Inputs& x) { return cct::cross_entropy(x[0], odd_targets, 0.25); },
                  {random_leaf({3, 7}, 61, -2.0, 2.0)});
  // Loss scaled by a downstream op: the upstream gradient is not 1.
  check_gradients([&](const Inputs& x) { return cct::cross_entropy(x[0], targets) * 3.5; },
                  {random_leaf({5, 5}, 62)});

  // Soft targets: a proper distribution per row (mixup), and unnormalised non-negative weights.
  auto mix = random_constant({4, 6}, 63, 0.0, 1.0);
  for (int64_t b = 0; b < 4; ++b) {
    double total = 0;
    for (int64_t c = 0; c < 6; ++c) total += mix(b, c);
    for (int64_t c = 0; c < 6; ++c) mix(b, c) /= total;
  }
  check_gradients([](const Inputs& x) { return cct::cross_entropy(x[0], x[1]); },
                  {random_leaf({4, 6}, 64, -2.0, 2.0), mix});
  check_gradients([](const Inputs& x) { return cct::cross_entropy(x[0], x[1]); },
                  {random_leaf({3, 5}, 65, -2.0, 2.0), random_constant({3, 5}, 66, 0.0, 2.0)});
}

// ---- dropout ----------------------------------------------------------------------------------------

TEST_CASE("dropout: identity in eval, masks while training", "[ops][dropout]") {
  auto x = Tensor<float>::uniform({200000}, 1.0, 2.0);
  cct::Generator gen(5);
  REQUIRE(cct::dropout(x, 0.3, false, gen).is_same(x));
  REQUIRE(cct::dropout(x, 0.0, true, gen).is_same(x));
  REQUIRE(gen.counter() == 0);  // no draws in eval

  const double p = 0.3;
  auto y = cct::dropout(x, p, true, gen);
  REQUIRE(y.shape() == x.shape());
  int64_t dropped = 0, wrongly_scaled = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (y.data()[i] == 0.0f) ++dropped;
    else if (std::abs(y.data()[i] - x.data()[i] / (1 - p)) > 1e-6 * y.data()[i]) ++wrongly_scaled;
  }
  REQUIRE(wrongly_scaled == 0);
  // 200k Bernoulli(0.3): standard deviation of the fraction ≈ 0.001.
  REQUIRE(static_cast<double>(dropped) / x.numel() == Approx(p).margin(0.005));

  // Same seed → same mask; a different seed → a different one; the generator advances.
  cct::Generator again(5);
  REQUIRE(cct::dropout(x, p, true, again).to_vector() == y.to_vector());
  REQUIRE(cct::dropout(x, p, true, again).to_vector() != y.to_vector());
  cct::Generator other(6);
  REQUIRE(cct::dropout(x, p, true, other).to_vector() != y.to_vector());

  // p = 1 drops everything.
  const auto all_dropped = cct::dropout(x, 1.0, true, gen).to_vector();
  REQUIRE(std::count(all_dropped.begin(), all_dropped.end(), 0.0f) == x.numel());
  REQUIRE_THROWS_WITH(cct::dropout(x, -0.1, true, gen), Catch::Contains("dropout") && Catch::Contains("[0, 1]"));
  REQUIRE_THROWS_AS(cct::dropout(x, 1.5, false, gen), cct::Error);
}

TEST_CASE("dropout mask does not depend on the thread count", "[ops][dropout]") {
  auto x = Tensor<double>::ones({100003});
  auto masked = [&](int threads) {
    ThreadCountGuard guard;
    cct::set_num_threads(threads);
    cct::Generator gen(77);
    return cct::dropout(x, 0.5, true, gen).to_vector();
  };
  REQUIRE(masked(1) == masked(2));
}

TEST_CASE("dropout backward uses the forward mask", "[ops][dropout][gradcheck]") {
  auto x = Tensor<double>::uniform({1000}, 1.0, 2.0);
  x.requires_grad_();
  cct::Generator gen(8);
  auto y = cct::dropout(x, 0.4, true, gen);
  y.backward(Tensor<double>::ones({1000}));
  for (int64_t i = 0; i < 1000; ++i) REQUIRE(x.grad().data()[i] == Approx(y.data()[i] / x.data()[i]));

  // A fresh generator with a fixed seed inside the function gives the same mask on every evaluation.
  check_gradients([](const Inputs& in) {
    cct::Generator fixed(123);
    return cct::dropout(in[0], 0.3, true, fixed);
  }, {random_leaf({4, 5}, 70)});
  check_gradients([](const Inputs& in) {
    cct::Generator fixed(9);
    return cct::dropout(in[0], 1.0, true, fixed) + in[0];
  }, {random_leaf({3}, 71)});
}

// ---- embedding --------------------------------------------------------------------------------------

TEST_CASE("embedding forward values and errors", "[ops][embedding]") {
  auto weight = Tensor<double>::from_vector({0, 1, 10, 11, 20, 21, 30, 31}, {4, 2});
  auto indices = Tensor<int64_t>::from_vector({3, 0, 3, 1, 2, 2}, {2, 3});
  auto out = cct::embedding(indices, weight);
  REQUIRE(out.shape() == Shape{2, 3, 2});
  REQUIRE(out.to_vector() == std::vector<double>{30, 31, 0, 1, 30, 31, 10, 11, 20, 21, 20, 21});
  REQUIRE(cct::embedding(Tensor<int64_t>::from_vector({2}), weight).shape() == Shape{1, 2});

  REQUIRE_THROWS_WITH(cct::embedding(Tensor<int64_t>::from_vector({1, 4}), weight),
                      Catch::Contains("index 4") && Catch::Contains("vocab_size 4"));
  REQUIRE_THROWS_WITH(cct::embedding(Tensor<int64_t>::from_vector({-2}), weight), Catch::Contains("index -2"));
  REQUIRE_THROWS_AS(cct::embedding(indices, Tensor<double>::zeros({4})), cct::ShapeError);
  REQUIRE_THROWS_WITH(cct::embedding(indices, weight, 4), Catch::Contains("padding_idx 4"));
}

TEST_CASE("gradients of embedding match finite differences; the padding row gets none",
          "[ops][embedding][gradcheck]") {
  // Repeated indices (rows 1 and 4 used twice), an unused row (0) and the padding row (3).
  const auto indices = Tensor<int64_t>::from_vector({1, 3, 4, 1, 4, 2, 3}, {7});
  check_gradients([&](const Inputs& w) { return cct::embedding(indices, w[0]); }, {random_leaf({6, 5}, 80)});
  // With a padding row, the output at padding positions still reads that row, but by definition no
  // gradient flows to it; zeroing those outputs makes finite differences agree with that convention,
  // while every other row is checked as usual (the padding row's exact zero is checked below).
  const auto not_padding = Tensor<double>::from_vector({1, 0, 1, 1, 1, 1, 0}, {7, 1});
  check_gradients([&](const Inputs& w) { return cct::embedding(indices, w[0], 3) * not_padding; },
                  {random_leaf({6, 5}, 81)});
  const auto grid = Tensor<int64_t>::from_vector({0, 2, 2, 1, 0, 0}, {2, 3});
  const auto grid_not_padding = Tensor<double>::from_vector({0, 1, 1, 1, 0, 0}, {2, 3, 1});
  check_gradients([&](const Inputs& w) { return cct::embedding(grid, w[0], 0) * grid_not_padding; },
                  {random_leaf({3, 4}, 82)});

  auto weight = random_leaf({6, 5}, 83);
  auto upstream = random_constant({7, 5}, 84);
  cct::embedding(indices, weight, 3).backward(upstream);
  auto grad = weight.grad();
  for (int64_t j = 0; j < 5; ++j) {
    REQUIRE(grad(3, j) == 0.0);  // padding row: exactly zero although used twice
    REQUIRE(grad(0, j) == 0.0);  // unused row
    REQUIRE(grad(1, j) == Approx(upstream(0, j) + upstream(3, j)));
    REQUIRE(grad(2, j) == Approx(upstream(5, j)));
  }
}

TEST_CASE("embedding backward is the same for any thread count", "[ops][embedding]") {
  cct::Generator gen(90);
  auto indices = Tensor<int64_t>::empty({4000});
  for (int64_t n = 0; n < indices.numel(); ++n) indices.data()[n] = gen.randint(50);
  auto upstream = Tensor<float>::randn({4000, 24}, gen);
  auto grad_for = [&](int threads) {
    ThreadCountGuard guard;
    cct::set_num_threads(threads);
    auto weight = Tensor<float>::randn({50, 24});
    weight.requires_grad_();
    cct::embedding(indices, weight, 7).backward(upstream);
    return weight.grad().to_vector();
  };
  const auto serial = grad_for(1), parallel = grad_for(2);
  REQUIRE(serial == parallel);
  // Spot check one row against a direct sum.
  float expected = 0;
  for (int64_t n = 0; n < 4000; ++n)
    if (indices.data()[n] == 11) expected += upstream(n, 5);
  REQUIRE(serial[11 * 24 + 5] == Approx(expected).epsilon(1e-4));
  for (int64_t j = 0; j < 24; ++j) REQUIRE(serial[7 * 24 + j] == 0.0f);
}
