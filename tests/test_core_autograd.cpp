// Tensor core, generator, autograd engine, elementwise ops and activations.
#include <cmath>
#include <limits>

#include <cct/ops/activation.hpp>
#include <cct/ops/elementwise.hpp>

#include "test_helpers.hpp"

using cct::Shape;
using cct::Tensor;
using cct::testing::check_gradients;
using cct::testing::random_constant;
using cct::testing::random_leaf;
using Inputs = std::vector<Tensor<double>>;

TEST_CASE("tensor creation, shape and element access", "[tensor]") {
  auto z = Tensor<float>::zeros({2, 3});
  REQUIRE(z.shape() == Shape{2, 3});
  REQUIRE(z.numel() == 6);
  REQUIRE(z.dim() == 2);
  REQUIRE(z.size(-1) == 3);
  for (float v : z.to_vector()) REQUIRE(v == 0.0f);
  REQUIRE(Tensor<float>::ones({4}).to_vector() == std::vector<float>{1, 1, 1, 1});
  REQUIRE(Tensor<float>::full({2}, 7.5f).to_vector() == std::vector<float>{7.5f, 7.5f});
  REQUIRE(Tensor<double>::arange(4).to_vector() == std::vector<double>{0, 1, 2, 3});
  REQUIRE(Tensor<double>::arange(1.0, 2.0, 0.25).to_vector() == std::vector<double>{1, 1.25, 1.5, 1.75});

  auto t = Tensor<float>::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(t(1, 2) == 6.0f);
  REQUIRE(t.at({0, -1}) == 3.0f);
  t(0, 0) = 10.0f;
  REQUIRE(t.data()[0] == 10.0f);
  REQUIRE(t.matrix()(1, 0) == 4.0f);
  REQUIRE(Tensor<float>::scalar(2.5f).item() == 2.5f);
  REQUIRE(reinterpret_cast<uintptr_t>(t.data()) % cct::kStorageAlignment == 0);

  REQUIRE_THROWS_AS(Tensor<float>::from_vector({1, 2, 3}, {2, 2}), cct::ShapeError);
  REQUIRE_THROWS_WITH(t(2, 0), Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(t.item(), Catch::Contains("exactly one element"));
  REQUIRE_THROWS_AS(Tensor<float>().shape(), cct::Error);
}

TEST_CASE("handles share data; clone and detach", "[tensor]") {
  auto a = Tensor<float>::ones({3});
  auto b = a;
  b.data()[0] = 5;
  REQUIRE(a.data()[0] == 5);
  auto c = a.clone();
  c.data()[1] = 9;
  REQUIRE(a.data()[1] == 1);
  auto d = a.detach();
  REQUIRE(d.shares_storage(a));
  auto v = a.view_as_shape({1, 3});
  REQUIRE(v.shape() == Shape{1, 3});
  REQUIRE(v.shares_storage(a));
  REQUIRE_THROWS_AS(a.view_as_shape({2, 2}), cct::ShapeError);
}

TEST_CASE("generator is reproducible and independent of the thread count", "[generator]") {
  cct::Generator g1(42), g2(42), g3(43);
  auto a = Tensor<double>::randn({1000}, g1);
  auto b = Tensor<double>::randn({1000}, g2);
  auto c = Tensor<double>::randn({1000}, g3);
  REQUIRE(a.to_vector() == b.to_vector());
  REQUIRE(a.to_vector() != c.to_vector());

  const int saved = cct::num_threads();
  cct::set_num_threads(1);
  cct::Generator serial(7);
  auto big_serial = Tensor<float>::uniform({100000}, -1, 1, serial);
  cct::set_num_threads(2);
  cct::Generator parallel(7);
  auto big_parallel = Tensor<float>::uniform({100000}, -1, 1, parallel);
  cct::set_num_threads(saved);
  REQUIRE(big_serial.to_vector() == big_parallel.to_vector());
  REQUIRE(serial.counter() == parallel.counter());

  double sum = 0, sum_sq = 0;
  for (double v : a.to_vector()) sum += v, sum_sq += v * v;
  REQUIRE(sum / 1000 == Approx(0).margin(0.1));
  REQUIRE(sum_sq / 1000 == Approx(1).margin(0.15));
  for (float v : big_serial.to_vector()) REQUIRE((v >= -1 && v < 1));

  cct::Generator resumed(0);
  resumed.set_state(g1.seed(), g1.counter());
  REQUIRE(resumed.next_u64() == g1.next_u64());
}

TEST_CASE("elementwise forward values", "[ops][elementwise]") {
  auto a = Tensor<float>::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  auto row = Tensor<float>::from_vector({10, 20, 30}, {3});
  auto col = Tensor<float>::from_vector({100, 200}, {2, 1});
  REQUIRE((a + row).to_vector() == std::vector<float>{11, 22, 33, 14, 25, 36});
  REQUIRE((a + col).to_vector() == std::vector<float>{101, 102, 103, 204, 205, 206});
  REQUIRE((row + col).shape() == Shape{2, 3});
  REQUIRE((a - row).to_vector() == std::vector<float>{-9, -18, -27, -6, -15, -24});
  REQUIRE((a * col).to_vector() == std::vector<float>{100, 200, 300, 800, 1000, 1200});
  REQUIRE((a / a).to_vector() == std::vector<float>(6, 1.0f));
  REQUIRE((a * 2).to_vector() == std::vector<float>{2, 4, 6, 8, 10, 12});
  REQUIRE((1 - a).to_vector() == std::vector<float>{0, -1, -2, -3, -4, -5});
  REQUIRE((12 / a).to_vector() == std::vector<float>{12, 6, 4, 3, 2.4f, 2});
  REQUIRE((-a).to_vector()[0] == -1);
  REQUIRE(cct::exp(Tensor<double>::from_vector({0.0, 1.0})).to_vector()[1] == Approx(std::exp(1.0)));
  REQUIRE(cct::log(Tensor<double>::from_vector({1.0, std::exp(2.0)})).to_vector()[1] == Approx(2.0));
  REQUIRE(cct::sqrt(Tensor<float>::from_vector({9.0f})).item() == 3.0f);
  REQUIRE(cct::pow(Tensor<double>::from_vector({2.0}), 3.0).item() == Approx(8.0));
  REQUIRE_THROWS_WITH(a + Tensor<float>::ones({2}), Catch::Contains("add") && Catch::Contains("(2, 3)") &&
                                                      Catch::Contains("(2,)"));
}

TEST_CASE("activation forward values", "[ops][activation]") {
  auto x = Tensor<double>::from_vector({-2.0, 0.0, 1.5});
  REQUIRE(cct::relu(x).to_vector() == std::vector<double>{0, 0, 1.5});
  auto g = cct::gelu(x).to_vector();
  REQUIRE(g[0] == Approx(-0.0455002638963584));  // x·Φ(x) at -2 (exact erf form)
  REQUIRE(g[1] == 0.0);
  REQUIRE(g[2] == Approx(1.3997999127061740));
  REQUIRE(cct::tanh(x).to_vector()[2] == Approx(std::tanh(1.5)));
  auto s = cct::sigmoid(Tensor<double>::from_vector({0.0, -1000.0, 1000.0})).to_vector();
  REQUIRE(s == std::vector<double>{0.5, 0.0, 1.0});
}

TEST_CASE("the vectorised gelu and its gradient agree with the scalar reference in float", "[ops][activation]") {
  // Every 1/64 over [-12, 12] plus the ends of float's range. Both forms compute 1 + erf(x/√2) in float,
  // so the error allowed is a few ulp of 1 (8 · 2⁻²³) scaled by |x|, not relative to the (tiny) result.
  std::vector<float> values;
  for (int i = -768; i <= 768; ++i) values.push_back(static_cast<float>(i) / 64.0f);
  for (float v : {-1e30f, -100.0f, -7.5f, 1e-30f, -1e-30f, 7.5f, 100.0f, 1e30f}) values.push_back(v);
  auto x = Tensor<float>::from_vector(values).requires_grad_(true);
  auto y = cct::gelu(x);
  y.backward(Tensor<float>::ones(y.shape()));
  const auto out = y.to_vector(), grad = x.grad().to_vector();
  for (size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    const double expected = cct::gelu_value(v), expected_grad = cct::gelu_derivative(v);
    INFO("x = " << v);
    const double tolerance = 8 * 1.1920929e-7 * std::max(1.0, std::abs(v));
    REQUIRE(std::abs(out[i] - expected) <= tolerance);
    REQUIRE(std::abs(grad[i] - expected_grad) <= tolerance);
  }
  const auto nan = cct::gelu(Tensor<float>::from_vector({std::nanf(""), 1.0f})).to_vector();
  REQUIRE(std::isnan(nan[0]));
  REQUIRE(nan[1] == Approx(0.8413447f));
}

TEST_CASE("gradients of elementwise ops match finite differences", "[ops][elementwise][gradcheck]") {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 4}, {3, 4}}, {{2, 3, 5}, {5}}, {{2, 1, 4}, {3, 1}}, {{1}, {2, 3}}, {{}, {3}}};
  for (const auto& [sa, sb] : shapes) {
    INFO("shapes " << cct::shape_str(sa) << " and " << cct::shape_str(sb));
    Inputs in{random_leaf(sa, 1), random_leaf(sb, 2, 0.5, 1.5)};
    check_gradients([](const Inputs& x) { return x[0] + x[1]; }, in);
    check_gradients([](const Inputs& x) { return x[0] - x[1]; }, in);
    check_gradients([](const Inputs& x) { return x[0] * x[1]; }, in);
    check_gradients([](const Inputs& x) { return x[0] / x[1]; }, in);
  }
  Inputs one{random_leaf({3, 5}, 3)};
  Inputs positive{random_leaf({4, 3}, 4, 0.2, 2.0)};
  check_gradients([](const Inputs& x) { return -x[0] * 3.0 + 2.0; }, one);
  check_gradients([](const Inputs& x) { return 1.0 - x[0] / 4.0; }, one);
  check_gradients([](const Inputs& x) { return 2.0 / x[0]; }, positive);
  check_gradients([](const Inputs& x) { return cct::exp(x[0]); }, one);
  check_gradients([](const Inputs& x) { return cct::log(x[0]); }, positive);
  check_gradients([](const Inputs& x) { return cct::sqrt(x[0]); }, positive);
  check_gradients([](const Inputs& x) { return cct::pow(x[0], 2.5); }, positive);
  check_gradients([](const Inputs& x) { return cct::pow(x[0], -1.0); }, positive);
  // One operand held constant: only the other gets a gradient.
  check_gradients([](const Inputs& x) { return x[0] * x[1]; }, {random_leaf({2, 3}, 5), random_constant({3}, 6)});
}

TEST_CASE("gradients of activations match finite differences", "[ops][activation][gradcheck]") {
  // Keep relu's inputs away from its kink at 0, where finite differences are meaningless.
  auto away_from_zero = random_leaf({4, 6}, 11, 0.1, 1.0);
  {
    cct::NoGradGuard guard;
    for (int64_t i = 0; i < away_from_zero.numel(); i += 2) away_from_zero.data()[i] *= -1;
  }
  check_gradients([](const Inputs& x) { return cct::relu(x[0]); }, {away_from_zero});
  Inputs wide{random_leaf({5, 7}, 12, -4.0, 4.0)};
  check_gradients([](const Inputs& x) { return cct::gelu(x[0]); }, wide);
  check_gradients([](const Inputs& x) { return cct::tanh(x[0]); }, wide);
  check_gradients([](const Inputs& x) { return cct::sigmoid(x[0]); }, wide);
}

TEST_CASE("autograd: diamond graph, reuse and accumulation", "[autograd]") {
  auto x = Tensor<double>::from_vector({2.0, 3.0});
  x.requires_grad_();
  // y = x·x + x  (x used three times, two paths through a shared node)
  auto shared = x * x;
  auto y = shared + shared * x + x;  // x² + x³ + x → dy/dx = 2x + 3x² + 1
  y.backward(Tensor<double>::ones({2}));
  REQUIRE(x.grad().to_vector() == std::vector<double>{2 * 2 + 3 * 4 + 1, 2 * 3 + 3 * 9 + 1});

  // A second forward/backward accumulates; zero_grad resets in place.
  auto z = x * 2.0;
  z.backward(Tensor<double>::ones({2}));
  REQUIRE(x.grad().to_vector() == std::vector<double>{17 + 2, 34 + 2});
  const double* grad_buffer = x.grad().data();
  x.zero_grad();
  REQUIRE(x.grad().to_vector() == std::vector<double>{0, 0});
  (x * 3.0).backward(Tensor<double>::ones({2}));
  REQUIRE(x.grad().to_vector() == std::vector<double>{3, 3});
  REQUIRE(x.grad().data() == grad_buffer);  // accumulated into the same buffer

  // A leaf used as both operands: gradients of the two edges add.
  auto w = Tensor<double>::from_vector({5.0});
  w.requires_grad_();
  (w + w).backward();
  REQUIRE(w.grad().item() == 2.0);
  // The leaf's gradient is its own buffer, not shared with the one it came from.
  auto p = Tensor<double>::from_vector({1.0}), q = Tensor<double>::from_vector({1.0});
  p.requires_grad_();
  q.requires_grad_();
  (p + q).backward();
  REQUIRE_FALSE(p.grad().shares_storage(q.grad()));
}

TEST_CASE("autograd: no-grad mode, errors and freed graphs", "[autograd]") {
  auto x = Tensor<float>::ones({3});
  x.requires_grad_();
  {
    cct::NoGradGuard guard;
    REQUIRE_FALSE(cct::is_grad_enabled());
    auto y = x * 2.0f;
    REQUIRE_FALSE(y.requires_grad());
    REQUIRE(y.is_leaf());
    {
      cct::EnableGradGuard enable;
      REQUIRE((x * 2.0f).requires_grad());
    }
  }
  REQUIRE(cct::is_grad_enabled());

  auto y = x * 2.0f;
  REQUIRE(y.requires_grad());
  REQUIRE_FALSE(y.is_leaf());
  REQUIRE_THROWS_WITH(y.backward(), Catch::Contains("non-scalar") || Catch::Contains("3 elements"));
  REQUIRE_THROWS_WITH(y.backward(Tensor<float>::ones({2})), Catch::Contains("does not match"));
  REQUIRE_THROWS_WITH(Tensor<float>::ones({1}).backward(), Catch::Contains("does not require grad"));
  REQUIRE_THROWS_WITH(y.requires_grad_(), Catch::Contains("leaf"));
  REQUIRE_THROWS_WITH(x.fill_(0.0f), Catch::Contains("in-place"));

  auto loss = cct::exp(x * 2.0f);
  loss.backward(Tensor<float>::ones({3}));
  REQUIRE_THROWS_WITH(loss.backward(Tensor<float>::ones({3})), Catch::Contains("already used"));

  // Branches that do not require grad are not recorded.
  auto constant = Tensor<float>::ones({3});
  auto mixed = constant * 4.0f + x;
  mixed.backward(Tensor<float>::ones({3}));
  REQUIRE_FALSE(constant.grad().defined());
}

TEST_CASE("autograd: a long chain is freed without recursion", "[autograd]") {
  auto x = Tensor<float>::ones({1});
  x.requires_grad_();
  auto y = x;
  for (int i = 0; i < 200000; ++i) y = y + 0.0f;
  y.backward();
  REQUIRE(x.grad().item() == 1.0f);
  y = Tensor<float>();  // drops 200k nodes; a recursive destructor would overflow the stack here
  SUCCEED();
}

TEST_CASE("storage cache reuses freed large blocks and can be emptied", "[tensor][storage]") {
  // The limit may come from CCT_STORAGE_CACHE_MB (the sanitizer runs set 0); this test needs caching on.
  const size_t environment_limit = cct::detail::StorageCache::instance().limit();
  cct::set_storage_cache_limit(size_t(8) << 30);
  cct::empty_storage_cache();
  const float* first = nullptr;
  {
    auto big = Tensor<float>::zeros({1 << 18});  // 1 MiB: cached when freed
    first = big.data();
  }
  CHECK(cct::storage_cache_bytes() >= (size_t(1) << 20));
  auto again = Tensor<float>::ones({1 << 18});
  CHECK(again.data() == first);  // the same block came back
  CHECK(again.to_vector()[12345] == 1.0f);
  CHECK(cct::storage_cache_bytes() == 0);
  {
    auto other = Tensor<float>::zeros({1 << 17});
  }
  cct::empty_storage_cache();
  CHECK(cct::storage_cache_bytes() == 0);
  const size_t saved = size_t(8) << 30;
  cct::set_storage_cache_limit(0);
  { auto dropped = Tensor<float>::zeros({1 << 18}); }
  CHECK(cct::storage_cache_bytes() == 0);  // a limit of 0 disables caching
  cct::set_storage_cache_limit(saved);
  // Small tensors never enter the cache.
  { auto small = Tensor<float>::zeros({16}); }
  CHECK(cct::storage_cache_bytes() == 0);
  cct::set_storage_cache_limit(environment_limit);
}
