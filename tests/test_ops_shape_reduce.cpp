// Shape ops (reshape, permute, narrow, slice, concat, split, squeeze, flatten, expand) and reductions
// (sum, mean, var, max, min): forward values, error messages and gradient checks.
#include <cmath>
#include <limits>
#include <numeric>

#include <cct/ops/elementwise.hpp>
#include <cct/ops/reduce.hpp>
#include <cct/ops/shape.hpp>

#include "test_helpers.hpp"

using cct::Shape;
using cct::Tensor;
using cct::testing::check_gradients;
using cct::testing::random_constant;
using cct::testing::random_leaf;
using Catch::Contains;
using Inputs = std::vector<Tensor<double>>;
using Values = std::vector<double>;

namespace {

// 0, 1, 2, ... in the given shape.
Tensor<double> iota(const Shape& shape) {
  Tensor<double> t = Tensor<double>::empty(shape);
  std::iota(t.begin(), t.end(), 0.0);
  return t;
}

// A leaf whose values are a shuffled 0.1·(0..n−1) plus a little noise: all distinct and at least
// ~0.1 apart, so a finite-difference step never changes which element is the max or min.
Tensor<double> spaced_distinct_leaf(const Shape& shape, uint64_t seed) {
  cct::Generator gen(seed);
  Tensor<double> t = Tensor<double>::empty(shape);
  const int64_t n = t.numel();
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[gen.randint(i + 1)]);
  for (int64_t i = 0; i < n; ++i) t.data()[i] = 0.1 * static_cast<double>(order[i]) + 0.01 * gen.uniform();
  t.requires_grad_();
  return t;
}

// Reference permute by index arithmetic, independent of the kernel's tiling and dim merging.
Tensor<double> naive_permute(const Tensor<double>& x, const std::vector<int64_t>& dims) {
  const int64_t rank = x.dim();
  Shape out_shape(rank);
  for (int64_t d = 0; d < rank; ++d) out_shape[d] = x.shape()[dims[d]];
  Tensor<double> out = Tensor<double>::empty(out_shape);
  const Shape in_strides = cct::contiguous_strides(x.shape());
  for (int64_t flat = 0; flat < out.numel(); ++flat) {
    int64_t rest = flat, offset = 0;
    for (int64_t d = rank - 1; d >= 0; --d) {
      offset += (rest % out_shape[d]) * in_strides[dims[d]];
      rest /= out_shape[d];
    }
    out.data()[flat] = x.data()[offset];
  }
  return out;
}

}  // namespace

// ============================== forward values ===================================================

TEST_CASE("reshape and view share storage and infer one -1", "[ops][shape]") {
  auto x = iota({2, 3, 4});
  auto y = cct::reshape(x, {4, -1});
  REQUIRE(y.shape() == Shape{4, 6});
  REQUIRE(y.shares_storage(x));
  REQUIRE(y.to_vector() == x.to_vector());
  REQUIRE(cct::reshape(x, {-1}).shape() == Shape{24});
  REQUIRE(cct::view(x, {2, 12}).shape() == Shape{2, 12});
  REQUIRE(cct::reshape(Tensor<double>::scalar(3.0), {1, 1}).shape() == Shape{1, 1});
  REQUIRE(cct::reshape(iota({1, 1}), {}).shape() == Shape{});

  REQUIRE_THROWS_AS(cct::reshape(iota({2, 3}), {4, -1}), cct::ShapeError);
  REQUIRE_THROWS_WITH(cct::reshape(iota({2, 3}), {4, -1}),
                      Contains("reshape") && Contains("(2, 3)") && Contains("(4, -1)"));
  REQUIRE_THROWS_WITH(cct::reshape(iota({2, 3}), {5}), Contains("reshape") && Contains("(2, 3)") && Contains("(5,)"));
  REQUIRE_THROWS_WITH(cct::reshape(iota({2, 3}), {-1, -1}), Contains("more than one -1"));
  REQUIRE_THROWS_WITH(cct::reshape(iota({2, 3}), {-2, -3}), Contains("invalid size -2"));
}

TEST_CASE("permute and transpose move elements", "[ops][shape]") {
  auto m = Tensor<double>::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  auto t = cct::transpose(m, 0, 1);
  REQUIRE(t.shape() == Shape{3, 2});
  REQUIRE(t.to_vector() == Values{1, 4, 2, 5, 3, 6});
  REQUIRE_FALSE(t.shares_storage(m));

  auto x = iota({2, 3, 4});  // x(a, b, c) = 12a + 4b + c
  auto p = cct::permute(x, {2, 0, 1});
  REQUIRE(p.shape() == Shape{4, 2, 3});
  REQUIRE(p(3, 1, 2) == 12 * 1 + 4 * 2 + 3);
  REQUIRE(p(1, 0, 1) == 4 * 1 + 1);
  REQUIRE(cct::permute(x, {-1, 0, -2}).to_vector() == p.to_vector());
  REQUIRE(cct::transpose(x, -1, 0)(3, 2, 1) == 12 * 1 + 4 * 2 + 3);
  REQUIRE(cct::permute(Tensor<double>::scalar(5.0), {}).item() == 5.0);

  // Shapes large enough for the tiled transpose path, with sizes that are not multiples of the tile,
  // size-1 dims, and permutations whose dims merge.
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases = {
      {{3, 37, 45}, {0, 2, 1}}, {{3, 37, 45}, {2, 0, 1}}, {{5, 1, 70, 33}, {0, 3, 1, 2}},
      {{2, 3, 4, 5}, {2, 3, 0, 1}}, {{64, 65}, {1, 0}}, {{4, 5, 6}, {0, 1, 2}}};
  for (const auto& [shape, dims] : cases) {
    INFO("shape " << cct::shape_str(shape) << " dims " << cct::shape_str(dims));
    auto big = iota(shape);
    REQUIRE(cct::permute(big, dims).to_vector() == naive_permute(big, dims).to_vector());
  }

  REQUIRE_THROWS_WITH(cct::permute(x, {0, 0, 2}), Contains("permute") && Contains("(0, 0, 2)") &&
                                                      Contains("not a permutation") && Contains("(2, 3, 4)"));
  REQUIRE_THROWS_WITH(cct::permute(x, {0, 1}), Contains("permute") && Contains("(2, 3, 4)"));
  REQUIRE_THROWS_WITH(cct::permute(x, {0, 1, 3}), Contains("not a permutation"));
  REQUIRE_THROWS_WITH(cct::transpose(x, 0, 3), Contains("transpose") && Contains("rank 3"));
}

TEST_CASE("narrow and slice follow Python's rules", "[ops][shape]") {
  auto x = iota({3, 5});  // rows 0..4, 5..9, 10..14
  REQUIRE(cct::narrow(x, 1, 1, 3).to_vector() == Values{1, 2, 3, 6, 7, 8, 11, 12, 13});
  REQUIRE(cct::narrow(x, 0, 2, 1).to_vector() == Values{10, 11, 12, 13, 14});
  REQUIRE(cct::narrow(x, -1, 4, 0).shape() == Shape{3, 0});

  REQUIRE(cct::slice(x, 1, 0, 5, 2).to_vector() == Values{0, 2, 4, 5, 7, 9, 10, 12, 14});
  REQUIRE(cct::slice(x, 1, 1, cct::kSliceEnd, 3).to_vector() == Values{1, 4, 6, 9, 11, 14});
  REQUIRE(cct::slice(x, 1, -2, cct::kSliceEnd).to_vector() == Values{3, 4, 8, 9, 13, 14});
  REQUIRE(cct::slice(x, 0, -100, -1).to_vector() == Values{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});  // clamped start
  REQUIRE(cct::slice(x, 0, 1, 100).shape() == Shape{2, 5});                                // clamped end
  REQUIRE(cct::slice(x, 1, 4, 2).shape() == Shape{3, 0});                                  // empty
  REQUIRE(cct::slice(x, -1, -4, -1, 2).to_vector() == Values{1, 3, 6, 8, 11, 13});

  REQUIRE_THROWS_WITH(cct::narrow(x, 1, 3, 3), Contains("narrow") && Contains("out of range") && Contains("(3, 5)"));
  REQUIRE_THROWS_WITH(cct::narrow(x, 0, -1, 1), Contains("narrow") && Contains("(3, 5)"));
  REQUIRE_THROWS_WITH(cct::narrow(x, 2, 0, 1), Contains("narrow") && Contains("rank 2"));
  REQUIRE_THROWS_WITH(cct::slice(x, 0, 0, 2, 0), Contains("slice") && Contains("step") && Contains("(3, 5)"));
}

TEST_CASE("concat and split", "[ops][shape]") {
  auto a = Tensor<double>::from_vector({1, 2, 3, 4}, {2, 2});
  auto b = Tensor<double>::from_vector({5, 6}, {2, 1});
  auto c = Tensor<double>::from_vector({7, 8, 9, 10, 11, 12}, {2, 3});
  auto joined = cct::concat(std::vector<Tensor<double>>{a, b, c}, -1);
  REQUIRE(joined.shape() == Shape{2, 6});
  REQUIRE(joined.to_vector() == Values{1, 2, 5, 7, 8, 9, 3, 4, 6, 10, 11, 12});
  auto rows = cct::concat(std::vector<Tensor<double>>{a, Tensor<double>::from_vector({0, -1}, {1, 2})}, 0);
  REQUIRE(rows.to_vector() == Values{1, 2, 3, 4, 0, -1});
  REQUIRE_THROWS_WITH(cct::concat(std::vector<Tensor<double>>{a, c}, 0),
                      Contains("concat") && Contains("(2, 2)") && Contains("(2, 3)"));
  REQUIRE_THROWS_WITH(cct::concat(std::vector<Tensor<double>>{a, iota({2})}, 0), Contains("concat"));
  REQUIRE_THROWS_WITH(cct::concat(std::vector<Tensor<double>>{}, 0), Contains("concat"));

  auto x = iota({5, 2});
  auto pieces = cct::split(x, 2, 0);  // sizes 2, 2, 1: the last piece is the remainder
  REQUIRE(pieces.size() == 3);
  REQUIRE(pieces[0].to_vector() == Values{0, 1, 2, 3});
  REQUIRE(pieces[1].to_vector() == Values{4, 5, 6, 7});
  REQUIRE(pieces[2].shape() == Shape{1, 2});
  REQUIRE(pieces[2].to_vector() == Values{8, 9});
  REQUIRE(cct::split(x, 5, 0).size() == 1);
  REQUIRE(cct::split(x, 7, 0)[0].shape() == Shape{5, 2});
  auto by_sizes = cct::split(iota({2, 6}), {1, 0, 5}, -1);
  REQUIRE(by_sizes.size() == 3);
  REQUIRE(by_sizes[0].to_vector() == Values{0, 6});
  REQUIRE(by_sizes[1].shape() == Shape{2, 0});
  REQUIRE(by_sizes[2].to_vector() == Values{1, 2, 3, 4, 5, 7, 8, 9, 10, 11});
  REQUIRE_THROWS_WITH(cct::split(x, {2, 2}, 0), Contains("split") && Contains("(2, 2)") && Contains("(5, 2)"));
  REQUIRE_THROWS_WITH(cct::split(x, 0, 0), Contains("split") && Contains("positive"));
}

TEST_CASE("unsqueeze, squeeze and flatten", "[ops][shape]") {
  auto x = iota({3, 1, 2, 1});
  REQUIRE(cct::squeeze(x).shape() == Shape{3, 2});
  REQUIRE(cct::squeeze(x).to_vector() == x.to_vector());
  REQUIRE(cct::squeeze(x).shares_storage(x));
  REQUIRE(cct::squeeze(x, 1).shape() == Shape{3, 2, 1});
  REQUIRE(cct::squeeze(x, -1).shape() == Shape{3, 1, 2});
  REQUIRE(cct::squeeze(iota({1, 1})).shape() == Shape{});
  REQUIRE_THROWS_WITH(cct::squeeze(x, 2), Contains("squeeze") && Contains("dim 2 has size 2") &&
                                              Contains("(3, 1, 2, 1)"));

  auto v = iota({3, 2});
  REQUIRE(cct::unsqueeze(v, 0).shape() == Shape{1, 3, 2});
  REQUIRE(cct::unsqueeze(v, 2).shape() == Shape{3, 2, 1});
  REQUIRE(cct::unsqueeze(v, -1).shape() == Shape{3, 2, 1});
  REQUIRE(cct::unsqueeze(v, -3).shape() == Shape{1, 3, 2});
  REQUIRE(cct::unsqueeze(Tensor<double>::scalar(1.0), 0).shape() == Shape{1});
  REQUIRE_THROWS_WITH(cct::unsqueeze(v, 3), Contains("unsqueeze") && Contains("(3, 2)"));
  REQUIRE_THROWS_WITH(cct::unsqueeze(v, -4), Contains("unsqueeze"));

  auto y = iota({2, 3, 4, 5});
  REQUIRE(cct::flatten(y).shape() == Shape{120});
  REQUIRE(cct::flatten(y, 1).shape() == Shape{2, 60});
  REQUIRE(cct::flatten(y, 1, 2).shape() == Shape{2, 12, 5});
  REQUIRE(cct::flatten(y, -2, -1).shape() == Shape{2, 3, 20});
  REQUIRE(cct::flatten(y, 2, 2).shape() == Shape{2, 3, 4, 5});
  REQUIRE(cct::flatten(Tensor<double>::scalar(2.0)).shape() == Shape{1});
  REQUIRE_THROWS_WITH(cct::flatten(y, 2, 1), Contains("flatten") && Contains("(2, 3, 4, 5)"));
}

TEST_CASE("expand broadcasts to a shape", "[ops][shape]") {
  auto col = Tensor<double>::from_vector({1, 2}, {2, 1});
  auto e = cct::expand(col, {3, 2, 2});
  REQUIRE(e.shape() == Shape{3, 2, 2});
  REQUIRE(e.to_vector() == Values{1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2});
  REQUIRE(cct::expand(col, {-1, 4}).to_vector() == Values{1, 1, 1, 1, 2, 2, 2, 2});
  REQUIRE(cct::expand(Tensor<double>::scalar(7.0), {2}).to_vector() == Values{7, 7});
  REQUIRE(cct::expand(Tensor<double>::from_vector({3, 4}), {2, 2}).to_vector() == Values{3, 4, 3, 4});
  REQUIRE_THROWS_WITH(cct::expand(col, {2, 3, 3}), Contains("expand") && Contains("(2, 1)") && Contains("(2, 3, 3)"));
  REQUIRE_THROWS_WITH(cct::expand(col, {1}), Contains("expand"));
  REQUIRE_THROWS_WITH(cct::expand(col, {-1, 2, 2}), Contains("expand"));  // -1 for a new dim
}

TEST_CASE("sum and mean over dims", "[ops][reduce]") {
  auto x = iota({2, 3, 4});  // x(a, b, c) = 12a + 4b + c
  REQUIRE(cct::sum(x).shape() == Shape{});
  REQUIRE(cct::sum(x).item() == 276);  // 0 + 1 + ... + 23
  REQUIRE(cct::mean(x).item() == 11.5);
  // Over the last dim: Σ_c (12a + 4b + c) = 48a + 16b + 6.
  REQUIRE(cct::sum(x, -1).to_vector() == Values{6, 22, 38, 54, 70, 86});
  REQUIRE(cct::sum(x, 2, true).shape() == Shape{2, 3, 1});
  // Over dim 1: Σ_b = 36a + 12 + 3c.
  REQUIRE(cct::sum(x, 1).to_vector() == Values{12, 15, 18, 21, 48, 51, 54, 57});
  REQUIRE(cct::mean(x, 1, true).shape() == Shape{2, 1, 4});
  REQUIRE(cct::mean(x, 1, true).to_vector() == Values{4, 5, 6, 7, 16, 17, 18, 19});
  // Over dims 0 and 2 (not adjacent): Σ_a Σ_c = 4·12 + 2·16b + 2·6 = 60 + 32b.
  REQUIRE(cct::sum(x, {0, 2}).to_vector() == Values{60, 92, 124});
  REQUIRE(cct::sum(x, {-1, 0}, true).shape() == Shape{1, 3, 1});
  REQUIRE(cct::mean(x, {2, 0}).to_vector() == Values{7.5, 11.5, 15.5});
  REQUIRE(cct::sum(x, {0, 1}).to_vector() == Values{60, 66, 72, 78});
  REQUIRE(cct::sum(x, {0, 1, 2}).shape() == Shape{});
  // Size-1 dims between reduced dims do not break up the in-place reduction.
  REQUIRE(cct::sum(iota({2, 1, 3}), {0, 2}).to_vector() == Values{15});
  REQUIRE(cct::sum(Tensor<double>::scalar(4.0)).item() == 4.0);
  REQUIRE(cct::sum(iota({2, 0}), 1).to_vector() == Values{0, 0});
  REQUIRE(std::isnan(cct::mean(iota({0})).item()));
  REQUIRE(cct::sum(Tensor<float>::from_vector({0.5f, 1.5f, 2.0f}, {3})).item() == 4.0f);

  REQUIRE_THROWS_WITH(cct::sum(x, {1, -2}), Contains("sum") && Contains("more than once") && Contains("(2, 3, 4)"));
  REQUIRE_THROWS_WITH(cct::mean(x, 3), Contains("mean") && Contains("rank 3"));
  REQUIRE_THROWS_WITH(cct::sum(x, std::vector<int64_t>{}), Contains("sum") && Contains("empty"));
}

TEST_CASE("reductions do not depend on the thread count", "[ops][reduce]") {
  auto x = Tensor<float>::uniform({64, 301, 7}, -1, 1);
  const int saved = cct::num_threads();
  cct::set_num_threads(1);
  const auto serial_inner = cct::sum(x, 1).to_vector();
  const auto serial_rows = cct::sum(x, {0, 2}).to_vector();
  const auto serial_var = cct::var(x, -1).to_vector();
  const auto serial_max = cct::max(x, 1).indices.to_vector();
  cct::set_num_threads(2);
  REQUIRE(cct::sum(x, 1).to_vector() == serial_inner);
  REQUIRE(cct::sum(x, {0, 2}).to_vector() == serial_rows);
  REQUIRE(cct::var(x, -1).to_vector() == serial_var);
  REQUIRE(cct::max(x, 1).indices.to_vector() == serial_max);
  cct::set_num_threads(saved);
}

TEST_CASE("var is two-pass and unbiased by default", "[ops][reduce]") {
  auto x = Tensor<double>::from_vector({1, 2, 3, 4, 2, 4, 6, 8}, {2, 4});
  // Row 0: mean 2.5, squared deviations sum 5; row 1: mean 5, sum 20.
  REQUIRE(cct::var(x, 1).to_vector() == Values{5.0 / 3, 20.0 / 3});
  REQUIRE(cct::var(x, 1, true, false).to_vector() == Values{5.0 / 4, 20.0 / 4});
  REQUIRE(cct::var(x, 1, true).shape() == Shape{2, 1});
  // Columns: pairs (1,2), (2,4), (3,6), (4,8) → unbiased var (b − a)²/2.
  REQUIRE(cct::var(x, 0).to_vector() == Values{0.5, 2, 4.5, 8});
  auto all = cct::var(x, {0, 1});
  REQUIRE(all.shape() == Shape{});
  REQUIRE(all.item() == Approx(37.5 / 7));  // mean 3.75, Σ(x − mean)² = 37.5

  // A large common offset: a one-pass E[x²] − E[x]² in float would lose every digit here.
  auto offset = Tensor<float>::from_vector({10000.5f, 10001.5f, 10002.5f, 10003.5f});
  REQUIRE(cct::var(offset, 0).item() == Approx(5.0 / 3).epsilon(1e-6));
  REQUIRE(std::isnan(cct::var(Tensor<double>::from_vector({3.0}), 0).item()));
  REQUIRE_THROWS_WITH(cct::var(x, {0, 0}), Contains("var") && Contains("more than once"));
}

TEST_CASE("max and min return values and first indices", "[ops][reduce]") {
  auto x = Tensor<double>::from_vector({3, 7, 7, 1, 9, 2, 9, 4, -1, 0, -1, 5}, {2, 2, 3});
  auto along_last = cct::max(x, -1);
  REQUIRE(along_last.values.shape() == Shape{2, 2});
  REQUIRE(along_last.values.to_vector() == Values{7, 9, 9, 5});
  REQUIRE(along_last.indices.to_vector() == std::vector<int64_t>{1, 1, 0, 2});  // ties: the first
  auto along_middle = cct::max(x, 1, true);
  REQUIRE(along_middle.values.shape() == Shape{2, 1, 3});
  REQUIRE(along_middle.values.to_vector() == Values{3, 9, 7, 9, 4, 5});
  REQUIRE(along_middle.indices.to_vector() == std::vector<int64_t>{0, 1, 0, 0, 0, 1});
  auto smallest = cct::min(x, 0);
  REQUIRE(smallest.values.to_vector() == Values{3, 4, -1, 0, -1, 2});
  REQUIRE(smallest.indices.to_vector() == std::vector<int64_t>{0, 1, 1, 1, 1, 0});
  REQUIRE(cct::min(x, 2).indices.to_vector() == std::vector<int64_t>{0, 0, 2, 1});
  REQUIRE(cct::min(Tensor<double>::from_vector({2, 1, 1, 3}), 0).indices.item() == 1);  // ties: the first

  REQUIRE(cct::max(x).shape() == Shape{});
  REQUIRE(cct::max(x).item() == 9);
  REQUIRE(cct::min(x).item() == -1);
  REQUIRE(cct::max(Tensor<double>::scalar(2.0), 0).values.item() == 2.0);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  REQUIRE(std::isnan(cct::max(Tensor<double>::from_vector({1, nan, 3})).item()));
  REQUIRE(cct::max(Tensor<double>::from_vector({1, nan, 3}), 0).indices.item() == 1);

  REQUIRE_THROWS_WITH(cct::max(iota({2, 0}), 1), Contains("max") && Contains("size 0") && Contains("(2, 0)"));
  REQUIRE_THROWS_WITH(cct::min(iota({0})), Contains("min") && Contains("(0,)"));
  REQUIRE_THROWS_WITH(cct::max(x, 3), Contains("max") && Contains("rank 3"));
}

// ============================== gradients ========================================================

TEST_CASE("gradcheck itself fails on a wrong backward", "[gradcheck]") {
  // The identity, recorded with a backward that doubles the gradient: gradcheck must catch it.
  auto wrong_identity = [](const Inputs& x) {
    Tensor<double> out = x[0].clone();
    cct::autograd::record<double>("wrong_identity", out, {x[0]},
                                  [](const Tensor<double>& g, const cct::autograd::NeedsGrad&) {
                                    return cct::autograd::GradList<double>{g * 2.0};
                                  });
    return out;
  };
  auto right_identity = [](const Inputs& x) {
    Tensor<double> out = x[0].clone();
    cct::autograd::record<double>("identity", out, {x[0]}, [](const Tensor<double>& g, const cct::autograd::NeedsGrad&) {
      return cct::autograd::GradList<double>{g};
    });
    return out;
  };
  const Inputs in{random_leaf({3, 2}, 1)};
  const cct::GradcheckResult wrong = cct::gradcheck(wrong_identity, in);
  REQUIRE_FALSE(wrong.passed);
  REQUIRE(wrong.max_abs_error > 0.4);  // 2g vs g with weights in [0.5, 1.5)
  REQUIRE_THAT(wrong.message, Contains("analytic"));
  REQUIRE(cct::gradcheck(right_identity, in).passed);
}

TEST_CASE("gradients of reshape, squeeze, unsqueeze, flatten", "[ops][shape][gradcheck]") {
  Inputs odd{random_leaf({3, 5, 2}, 21)};
  check_gradients([](const Inputs& x) { return cct::reshape(x[0], {5, -1}) * cct::reshape(x[0], {5, 6}); }, odd);
  check_gradients([](const Inputs& x) { return cct::view(x[0], {2, 15}); }, odd);
  check_gradients([](const Inputs& x) { return cct::flatten(x[0], 1); }, odd);
  check_gradients([](const Inputs& x) { return cct::flatten(x[0]) * 2.0; }, odd);
  check_gradients([](const Inputs& x) { return cct::unsqueeze(x[0], -2); }, odd);
  Inputs ones{random_leaf({4, 1, 3, 1}, 22)};
  check_gradients([](const Inputs& x) { return cct::squeeze(x[0]); }, ones);
  check_gradients([](const Inputs& x) { return cct::squeeze(x[0], 1) * cct::squeeze(x[0], 1); }, ones);
  check_gradients([](const Inputs& x) { return cct::flatten(x[0], 1, 2); }, ones);
}

TEST_CASE("gradients of permute and transpose", "[ops][shape][gradcheck]") {
  Inputs odd{random_leaf({3, 5, 2}, 31)};
  for (const std::vector<int64_t>& dims : std::vector<std::vector<int64_t>>{{2, 0, 1}, {1, 2, 0}, {0, -1, 1}, {0, 1, 2}}) {
    INFO("dims " << cct::shape_str(dims));
    check_gradients([dims](const Inputs& x) { return cct::permute(x[0], dims); }, odd);
  }
  check_gradients([](const Inputs& x) { return cct::transpose(x[0], 0, 2); }, odd);
  check_gradients([](const Inputs& x) { return cct::transpose(x[0], -1, 1); }, {random_leaf({4, 1, 3}, 32)});
  // A square transpose large enough for the tiled path (weights differ per element, so a misplaced
  // gradient shows up).
  check_gradients([](const Inputs& x) { return cct::transpose(x[0], 0, 1); }, {random_leaf({33, 35}, 33)});
}

TEST_CASE("gradients of narrow, slice, split and concat", "[ops][shape][gradcheck]") {
  Inputs odd{random_leaf({3, 5, 2}, 41)};
  check_gradients([](const Inputs& x) { return cct::narrow(x[0], 1, 1, 3); }, odd);
  check_gradients([](const Inputs& x) { return cct::narrow(x[0], -1, 1, 1); }, odd);
  check_gradients([](const Inputs& x) { return cct::slice(x[0], 1, 0, cct::kSliceEnd, 2); }, odd);
  check_gradients([](const Inputs& x) { return cct::slice(x[0], 0, -2, 3); }, odd);
  check_gradients([](const Inputs& x) { return cct::slice(x[0], 1, 4, 0); }, odd);  // empty slice: zero gradient
  // Every piece of a split used, with the uneven last piece weighted differently.
  check_gradients(
      [](const Inputs& x) {
        auto pieces = cct::split(x[0], 2, 1);  // sizes 2, 2, 1
        return cct::concat(std::vector<Tensor<double>>{pieces[2] * 3.0, pieces[0], pieces[1] * pieces[1]}, 1);
      },
      odd);
  check_gradients([](const Inputs& x) { return cct::split(x[0], {1, 2}, 0)[1]; }, odd);
  Inputs three{random_leaf({4, 1, 3}, 42), random_leaf({4, 2, 3}, 43), random_leaf({4, 3, 3}, 44)};
  check_gradients([](const Inputs& x) { return cct::concat(x, 1); }, three);
  check_gradients([](const Inputs& x) { return cct::concat(std::vector<Tensor<double>>{x[0], x[0]}, 0); }, three);
  Inputs last_dim{random_leaf({2, 3}, 45), random_constant({2, 1}, 46), random_leaf({2, 2}, 47)};
  check_gradients([](const Inputs& x) { return cct::concat(x, -1); }, last_dim);

  // An input that does not require grad gets none.
  auto needs = random_leaf({2, 3}, 48);
  auto fixed = random_constant({2, 2}, 49);
  cct::sum(cct::concat(std::vector<Tensor<double>>{fixed, needs}, 1)).backward();
  REQUIRE_FALSE(fixed.grad().defined());
  REQUIRE(needs.grad().to_vector() == Values(6, 1.0));
}

TEST_CASE("gradients of expand", "[ops][shape][gradcheck]") {
  check_gradients([](const Inputs& x) { return cct::expand(x[0], {3, 4, 5}); }, {random_leaf({4, 1}, 51)});
  check_gradients([](const Inputs& x) { return cct::expand(x[0], {2, 3, 5, 2}); }, {random_leaf({3, 1, 2}, 52)});
  check_gradients([](const Inputs& x) { return cct::expand(x[0], {3, 2}); }, {random_leaf({}, 53)});
  check_gradients([](const Inputs& x) { return cct::expand(x[0], {-1, 3}); }, {random_leaf({5, 3}, 54)});
}

TEST_CASE("gradients of sum and mean", "[ops][reduce][gradcheck]") {
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases = {
      {{3, 5, 2}, {1}}, {{3, 5, 2}, {-1}}, {{3, 5, 2}, {0, 2}}, {{3, 5, 2}, {2, 1}}, {{3, 5, 2}, {0, 1, 2}},
      {{4, 1, 3}, {1}}, {{4, 1, 3}, {0, -1}}, {{2, 3, 1, 4}, {1, 3}}, {{5}, {0}}};
  uint64_t seed = 60;
  for (const auto& [shape, dims] : cases)
    for (bool keepdim : {false, true}) {
      INFO("shape " << cct::shape_str(shape) << " dims " << cct::shape_str(dims) << " keepdim " << keepdim);
      Inputs in{random_leaf(shape, ++seed)};
      check_gradients([dims = dims, keepdim](const Inputs& x) { return cct::sum(x[0], dims, keepdim); }, in);
      check_gradients([dims = dims, keepdim](const Inputs& x) { return cct::mean(x[0], dims, keepdim); }, in);
    }
  Inputs odd{random_leaf({3, 5, 2}, 70)};
  check_gradients([](const Inputs& x) { return cct::sum(x[0]); }, odd);
  check_gradients([](const Inputs& x) { return cct::mean(x[0] * x[0]); }, odd);
  check_gradients([](const Inputs& x) { return cct::sum(x[0], 1, true) * x[0]; }, odd);
  check_gradients([](const Inputs& x) { return cct::mean(x[0], -2); }, odd);
  check_gradients([](const Inputs& x) { return cct::sum(x[0]); }, {random_leaf({}, 71)});
}

TEST_CASE("gradients of var", "[ops][reduce][gradcheck]") {
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases = {
      {{3, 5, 2}, {1}}, {{3, 5, 2}, {0, 2}}, {{3, 5, 2}, {-1, -2, -3}}, {{4, 1, 3}, {-1}}, {{4, 1, 3}, {0, 1}}};
  uint64_t seed = 80;
  for (const auto& [shape, dims] : cases)
    for (bool keepdim : {false, true})
      for (bool unbiased : {true, false}) {
        INFO("shape " << cct::shape_str(shape) << " dims " << cct::shape_str(dims) << " keepdim " << keepdim
                      << " unbiased " << unbiased);
        check_gradients([dims = dims, keepdim, unbiased](const Inputs& x) { return cct::var(x[0], dims, keepdim, unbiased); },
                        {random_leaf(shape, ++seed)});
      }
  check_gradients([](const Inputs& x) { return cct::var(x[0] * x[0], 0); }, {random_leaf({5, 3}, 99)});
}

TEST_CASE("gradients of max and min", "[ops][reduce][gradcheck]") {
  const std::vector<Shape> shapes = {{3, 5, 2}, {4, 1, 3}};
  uint64_t seed = 100;
  for (const Shape& shape : shapes)
    for (int64_t dim = -3; dim < 3; ++dim)
      for (bool keepdim : {false, true}) {
        INFO("shape " << cct::shape_str(shape) << " dim " << dim << " keepdim " << keepdim);
        Inputs in{spaced_distinct_leaf(shape, ++seed)};
        check_gradients([dim, keepdim](const Inputs& x) { return cct::max(x[0], dim, keepdim).values; }, in);
        check_gradients([dim, keepdim](const Inputs& x) { return cct::min(x[0], dim, keepdim).values; }, in);
      }
  Inputs odd{spaced_distinct_leaf({3, 5, 2}, 120)};
  check_gradients([](const Inputs& x) { return cct::max(x[0]); }, odd);
  check_gradients([](const Inputs& x) { return cct::min(x[0]) * cct::max(x[0]); }, odd);

  // Ties: the whole gradient goes to the first maximum.
  auto tied = Tensor<double>::from_vector({2, 5, 5, 1, 5, 0}, {2, 3});
  tied.requires_grad_();
  cct::sum(cct::max(tied, 1).values).backward();
  REQUIRE(tied.grad().to_vector() == Values{0, 1, 0, 0, 1, 0});
  tied.zero_grad();
  cct::max(tied).backward();
  REQUIRE(tied.grad().to_vector() == Values{0, 1, 0, 0, 0, 0});
}
