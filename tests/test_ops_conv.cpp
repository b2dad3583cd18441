// Convolution and max pooling: values by hand, a direct-loop reference, thread-count independence,
// error messages and finite-difference gradients.
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <cct/nn/tokenizer.hpp>
#include <cct/ops/conv.hpp>
#include <cct/ops/conv_pool.hpp>
#include <cct/ops/elementwise.hpp>
#include <cct/ops/pool.hpp>
#include <cct/ops/reduce.hpp>

#include "test_helpers.hpp"

using cct::Conv2dParams;
using cct::Shape;
using cct::Tensor;
using cct::testing::check_gradients;
using cct::testing::forward_backward;
using cct::testing::forward_backward_bf16;
using cct::testing::max_difference;
using cct::testing::rounded_to_bf16;
using cct::testing::random_constant;
using cct::testing::random_leaf;
using Inputs = std::vector<Tensor<double>>;

namespace {

// The definition, one output element at a time: out[n,o,oh,ow] = b[o] + Σ_{c,i,j} w[o,c,i,j]·x[n,c,ih,iw]
// with ih = oh·stride_h − padding_h + i (and likewise iw), reading 0 outside the input.
template <typename T>
Tensor<double> reference_conv2d(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, Conv2dParams p) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), KH = w.size(2), KW = w.size(3);
  const int64_t OH = (H + 2 * p.padding_h - KH) / p.stride_h + 1, OW = (W + 2 * p.padding_w - KW) / p.stride_w + 1;
  Tensor<double> out = Tensor<double>::zeros({N, O, OH, OW});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double sum = b.defined() ? static_cast<double>(b(o)) : 0.0;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t ih = oh * p.stride_h - p.padding_h + i, iw = ow * p.stride_w - p.padding_w + j;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                sum += static_cast<double>(w(o, c, i, j)) * static_cast<double>(x(n, c, ih, iw));
              }
          out(n, o, oh, ow) = sum;
        }
  return out;
}

// Max over each window's in-bounds elements (padding never contributes).
// A max_pool2d configuration of the tests below: input shape, kernel, stride and padding as (h, w).
struct PoolCase {
  Shape x;
  int64_t kh, kw, sh, sw, ph, pw;
};

std::string describe(const PoolCase& c) {
  return "x " + cct::shape_str(c.x) + " kernel (" + std::to_string(c.kh) + ", " + std::to_string(c.kw) + ") stride (" +
         std::to_string(c.sh) + ", " + std::to_string(c.sw) + ") padding (" + std::to_string(c.ph) + ", " +
         std::to_string(c.pw) + ")";
}

Tensor<double> max_pool2d(const Tensor<double>& x, const PoolCase& c) {
  return cct::max_pool2d(x, std::array<int64_t, 2>{c.kh, c.kw}, std::array<int64_t, 2>{c.sh, c.sw},
                         std::array<int64_t, 2>{c.ph, c.pw});
}

Tensor<double> reference_max_pool2d(const Tensor<double>& x, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                    int64_t ph, int64_t pw) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = (H + 2 * ph - kh) / sh + 1, OW = (W + 2 * pw - kw) / sw + 1;
  Tensor<double> out = Tensor<double>::empty({N, C, OH, OW});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double best = -std::numeric_limits<double>::infinity();
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; ++j) {
              const int64_t ih = oh * sh - ph + i, iw = ow * sw - pw + j;
              if (ih >= 0 && ih < H && iw >= 0 && iw < W) best = std::max(best, x(n, c, ih, iw));
            }
          out(n, c, oh, ow) = best;
        }
  return out;
}

// A leaf whose values are a shuffled, evenly spaced grid in [-1, 1): all distinct and far apart
// compared with the finite-difference step, so no pooling window's argmax changes under it.
Tensor<double> distinct_leaf(const Shape& shape, uint64_t seed) {
  const int64_t n = cct::shape_numel(shape);
  std::vector<double> values(n);
  for (int64_t i = 0; i < n; ++i) values[i] = -1.0 + 2.0 * static_cast<double>(i) / static_cast<double>(n);
  cct::Generator gen(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(values[i], values[gen.randint(i + 1)]);
  Tensor<double> t = Tensor<double>::from_vector(values, shape);
  t.requires_grad_();
  return t;
}

// Runs the op under `threads` threads and returns its output followed by the gradients of `inputs`.
template <typename Fn>
std::vector<std::vector<float>> forward_backward(int threads, const std::vector<Tensor<float>>& inputs, Fn fn) {
  const int saved = cct::num_threads();
  cct::set_num_threads(threads);
  std::vector<Tensor<float>> leaves;
  for (const auto& input : inputs) {
    leaves.push_back(input.clone());
    leaves.back().requires_grad_();
  }
  Tensor<float> out = fn(leaves);
  cct::Generator gen(99);
  out.backward(Tensor<float>::uniform(out.shape(), -1, 1, gen));
  cct::set_num_threads(saved);
  std::vector<std::vector<float>> results{out.to_vector()};
  for (const auto& leaf : leaves) results.push_back(leaf.grad().to_vector());
  return results;
}

}  // namespace

TEST_CASE("conv2d forward values by hand", "[ops][conv]") {
  // x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,2],[3,4]].
  auto x = Tensor<float>::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  auto w = Tensor<float>::from_vector({1, 2, 3, 4}, {1, 1, 2, 2});
  auto b = Tensor<float>::from_vector({1}, {1});

  auto plain = cct::conv2d(x, w, Tensor<float>());
  REQUIRE(plain.shape() == Shape{1, 1, 2, 2});
  REQUIRE(plain.to_vector() == std::vector<float>{37, 47, 67, 77});
  REQUIRE(cct::conv2d(x, w, b).to_vector() == std::vector<float>{38, 48, 68, 78});

  // Stride 2, padding 1: windows start at rows/cols -1 and 1; padded taps read 0.
  auto strided = cct::conv2d(x, w, Tensor<float>(), 2, 1);
  REQUIRE(strided.shape() == Shape{1, 1, 2, 2});
  REQUIRE(strided.to_vector() == std::vector<float>{4, 18, 36, 77});

  auto padded = cct::conv2d(x, w, Tensor<float>(), 1, 1);
  REQUIRE(padded.shape() == Shape{1, 1, 4, 4});
  REQUIRE(padded.to_vector() == std::vector<float>{4, 11, 18, 9, 18, 37, 47, 21, 36, 67, 77, 33, 14, 23, 26, 9});

  // Two output channels and two input channels: channel sums add up.
  auto x2 = Tensor<float>::from_vector({1, 2, 3, 4, 10, 20, 30, 40}, {1, 2, 2, 2});
  auto w2 = Tensor<float>::from_vector({1, 0, 0, 0, 0, 0, 0, 1, /**/ 1, 1, 1, 1, 0, 0, 0, 0}, {2, 2, 2, 2});
  REQUIRE(cct::conv2d(x2, w2, Tensor<float>::from_vector({0.5f, -1.0f})).to_vector() ==
          std::vector<float>{1 + 40 + 0.5f, 10 - 1});

  // Gradients by hand for the plain case with upstream ones: dL/dw[i][j] = Σ of the window sums,
  // dL/dx counts how many windows cover each pixel, weighted by the tap.
  auto xl = x.clone(), wl = w.clone();
  xl.requires_grad_();
  wl.requires_grad_();
  cct::conv2d(xl, wl, Tensor<float>()).backward(Tensor<float>::ones({1, 1, 2, 2}));
  REQUIRE(wl.grad().to_vector() == std::vector<float>{1 + 2 + 4 + 5, 2 + 3 + 5 + 6, 4 + 5 + 7 + 8, 5 + 6 + 8 + 9});
  REQUIRE(xl.grad().to_vector() == std::vector<float>{1, 3, 2, 4, 10, 6, 3, 7, 4});
}

TEST_CASE("conv2d matches a direct reference loop", "[ops][conv]") {
  struct Case {
    Shape x, w;
    Conv2dParams params;
    bool bias;
  };
  const std::vector<Case> cases = {
      {{2, 3, 7, 9}, {4, 3, 3, 3}, {1, 1, 1, 1}, true},
      {{3, 3, 8, 8}, {5, 3, 3, 3}, {2, 2, 1, 1}, true},
      {{1, 2, 11, 10}, {3, 2, 5, 4}, {2, 3, 3, 1}, false},
      {{2, 2, 5, 6}, {3, 2, 3, 3}, {1, 1, 3, 3}, true},        // padding wider than the kernel's half
      {{2, 3, 23, 21}, {8, 3, 7, 7}, {2, 2, 3, 3}, true},      // CCT-224 tokenizer geometry
      {{3, 1, 9, 6}, {4, 1, 3, 6}, {2, 1, 1, 0}, true},        // text: kernel (k, E), stride (s, 1), padding (p, 0)
      {{2, 1, 10, 8}, {5, 1, 2, 8}, {1, 1, 0, 0}, false},
      {{2, 5, 4, 3}, {6, 5, 1, 1}, {1, 1, 0, 0}, true},        // pointwise: no unfolding
      {{2, 4, 5, 5}, {3, 4, 1, 1}, {2, 2, 1, 1}, false},       // 1×1 kernel with stride and padding
      {{1, 3, 4, 4}, {2, 3, 4, 4}, {1, 1, 0, 0}, true},        // kernel covers the whole input
      // Stride 1 with out_w == width (im2col's block-copy path): rows partly in the padding, several
      // wrapped columns, and a window taller than the padded image's valid rows.
      {{2, 2, 6, 5}, {3, 2, 5, 3}, {1, 1, 1, 1}, true},
      {{2, 2, 4, 3}, {2, 2, 3, 5}, {1, 1, 2, 2}, false},
      {{1, 1, 2, 4}, {2, 1, 5, 3}, {1, 1, 3, 1}, true},
      {{2, 3, 5, 1}, {2, 3, 3, 1}, {1, 1, 2, 0}, true},
  };
  uint64_t seed = 100;
  for (const auto& c : cases) {
    INFO("x " << cct::shape_str(c.x) << " w " << cct::shape_str(c.w) << " stride (" << c.params.stride_h << ", "
              << c.params.stride_w << ") padding (" << c.params.padding_h << ", " << c.params.padding_w << ")");
    cct::Generator gen(seed++);
    auto x = Tensor<float>::uniform(c.x, -1, 1, gen);
    auto w = Tensor<float>::uniform(c.w, -1, 1, gen);
    auto b = c.bias ? Tensor<float>::uniform({c.w[0]}, -1, 1, gen) : Tensor<float>();
    auto out = cct::conv2d(x, w, b, c.params);
    CCT_REQUIRE_CLOSE(out.to<double>(), reference_conv2d(x, w, b, c.params), 1e-5);
    auto xd = x.to<double>(), wd = w.to<double>();
    auto bd = c.bias ? b.to<double>() : Tensor<double>();
    CCT_REQUIRE_CLOSE(cct::conv2d(xd, wd, bd, c.params), reference_conv2d(xd, wd, bd, c.params), 1e-12);
  }
  // The int form means the same stride and padding on both dims.
  cct::Generator gen(7);
  auto x = Tensor<double>::uniform({2, 3, 9, 7}, -1, 1, gen);
  auto w = Tensor<double>::uniform({4, 3, 3, 3}, -1, 1, gen);
  REQUIRE(cct::conv2d(x, w, Tensor<double>(), 2, 1).to_vector() ==
          cct::conv2d(x, w, Tensor<double>(), Conv2dParams{2, 2, 1, 1}).to_vector());
}

TEST_CASE("conv1d matches the reference on height-1 images", "[ops][conv]") {
  cct::Generator gen(21);
  auto x = Tensor<double>::uniform({3, 4, 13}, -1, 1, gen);
  auto w = Tensor<double>::uniform({5, 4, 3}, -1, 1, gen);
  auto b = Tensor<double>::uniform({5}, -1, 1, gen);
  for (auto [stride, padding] : std::vector<std::pair<int64_t, int64_t>>{{1, 0}, {1, 1}, {2, 1}, {3, 2}}) {
    INFO("stride " << stride << " padding " << padding);
    auto out = cct::conv1d(x, w, b, stride, padding);
    const int64_t length = (13 + 2 * padding - 3) / stride + 1;
    REQUIRE(out.shape() == Shape{3, 5, length});
    auto expected = reference_conv2d(x.view_as_shape({3, 4, 1, 13}), w.view_as_shape({5, 4, 1, 3}), b,
                                     Conv2dParams{1, stride, 0, padding});
    CCT_REQUIRE_CLOSE(out, expected.view_as_shape({3, 5, length}), 1e-12);
  }
  // By hand: [1, 2, 3, 4] with kernel [1, -1], padding 1: [0-1, 1-2, 2-3, 3-4, 4-0].
  auto seq = Tensor<float>::from_vector({1, 2, 3, 4}, {1, 1, 4});
  auto diff = Tensor<float>::from_vector({1, -1}, {1, 1, 2});
  REQUIRE(cct::conv1d(seq, diff, Tensor<float>(), 1, 1).to_vector() == std::vector<float>{-1, -1, -1, -1, 4});
}

TEST_CASE("conv2d and max_pool2d give the same results on one and two threads", "[ops][conv][pool][parallel]") {
  // 20 images: more than one image per weight-gradient group, and uneven thread chunks.
  cct::Generator gen(31);
  const std::vector<Tensor<float>> conv_inputs{Tensor<float>::uniform({20, 3, 9, 8}, -1, 1, gen),
                                               Tensor<float>::uniform({6, 3, 3, 3}, -1, 1, gen),
                                               Tensor<float>::uniform({6}, -1, 1, gen)};
  auto conv = [](const std::vector<Tensor<float>>& in) { return cct::conv2d(in[0], in[1], in[2], 2, 1); };
  const auto conv_serial = forward_backward(1, conv_inputs, conv);
  const auto conv_parallel = forward_backward(2, conv_inputs, conv);
  REQUIRE(conv_serial.size() == 4);
  for (size_t i = 0; i < conv_serial.size(); ++i) REQUIRE(conv_serial[i] == conv_parallel[i]);

  const std::vector<Tensor<float>> pointwise_inputs{Tensor<float>::uniform({5, 4, 6, 6}, -1, 1, gen),
                                                    Tensor<float>::uniform({3, 4, 1, 1}, -1, 1, gen)};
  auto pointwise = [](const std::vector<Tensor<float>>& in) { return cct::conv2d(in[0], in[1], Tensor<float>()); };
  REQUIRE(forward_backward(1, pointwise_inputs, pointwise) == forward_backward(2, pointwise_inputs, pointwise));

  const std::vector<Tensor<float>> pool_inputs{Tensor<float>::uniform({7, 5, 11, 10}, -1, 1, gen)};
  auto pool = [](const std::vector<Tensor<float>>& in) { return cct::max_pool2d(in[0], 3, 2, 1); };
  REQUIRE(forward_backward(1, pool_inputs, pool) == forward_backward(2, pool_inputs, pool));
}

TEST_CASE("conv2d_max_pool2d equals max_pool2d(conv2d(x)), values and gradients, on one and two threads",
          "[ops][conv][pool][parallel]") {
  // 13 images of odd sizes, with and without bias, and a pointwise convolution.
  cct::Generator gen(37);
  const std::vector<Tensor<float>> with_bias{Tensor<float>::uniform({13, 3, 11, 9}, -1, 1, gen),
                                             Tensor<float>::uniform({5, 3, 3, 3}, -1, 1, gen),
                                             Tensor<float>::uniform({5}, -1, 1, gen)};
  for (const bool bias : {false, true}) {
    const std::vector<Tensor<float>> inputs(with_bias.begin(), with_bias.begin() + (bias ? 3 : 2));
    for (const Conv2dParams params : {Conv2dParams{1, 1, 1, 1}, Conv2dParams{2, 1, 0, 1}}) {
      INFO("bias " << bias << ", conv stride (" << params.stride_h << ", " << params.stride_w << ")");
      const auto bias_of = [bias](const std::vector<Tensor<float>>& in) { return bias ? in[2] : Tensor<float>(); };
      auto fused = [&](const std::vector<Tensor<float>>& in) {
        return cct::conv2d_max_pool2d(in[0], in[1], bias_of(in), params, 3, 2, 1);
      };
      auto separate = [&](const std::vector<Tensor<float>>& in) {
        return cct::max_pool2d(cct::conv2d(in[0], in[1], bias_of(in), params), 3, 2, 1);
      };
      const auto expected = forward_backward(1, inputs, separate);
      for (const int threads : {1, 2}) {
        const auto got = forward_backward(threads, inputs, fused);
        REQUIRE(got.size() == expected.size());
        // Output, image and weight gradients bit for bit (the same GEMMs and pool loops); the bias
        // gradient sums the pooled gradients directly, in another order.
        for (size_t i = 0; i < 3; ++i) REQUIRE(got[i] == expected[i]);
        REQUIRE(got.size() == (bias ? 4u : 3u));
        if (bias)
          for (size_t j = 0; j < got[3].size(); ++j) REQUIRE(got[3][j] == Approx(expected[3][j]).margin(1e-4));
      }
    }
  }
  const std::vector<Tensor<float>> pointwise_inputs{Tensor<float>::uniform({4, 6, 8, 8}, -1, 1, gen),
                                                    Tensor<float>::uniform({3, 6, 1, 1}, -1, 1, gen)};
  auto fused = [](const std::vector<Tensor<float>>& in) {
    return cct::conv2d_max_pool2d(in[0], in[1], Tensor<float>(), Conv2dParams{}, 2, 2);
  };
  auto separate = [](const std::vector<Tensor<float>>& in) {
    return cct::max_pool2d(cct::conv2d(in[0], in[1], Tensor<float>()), 2, 2);
  };
  REQUIRE(forward_backward(2, pointwise_inputs, fused) == forward_backward(1, pointwise_inputs, separate));
}

TEST_CASE("conv2d batched gradients equal the sum of per-image gradients", "[ops][conv]") {
  const int64_t batch = 19;
  auto x = random_leaf({batch, 2, 6, 5}, 41);
  auto w = random_leaf({3, 2, 3, 3}, 42);
  auto b = random_leaf({3}, 43);
  auto upstream = random_constant({batch, 3, 3, 3}, 44);
  cct::conv2d(x, w, b, 2, 1).backward(upstream);

  Tensor<double> weight_sum = Tensor<double>::zeros(w.shape()), bias_sum = Tensor<double>::zeros({3});
  const int64_t image_size = 2 * 6 * 5, out_size = 3 * 3 * 3;
  for (int64_t n = 0; n < batch; ++n) {
    auto image = Tensor<double>::from_vector(std::vector<double>(x.data() + n * image_size, x.data() + (n + 1) * image_size),
                                             {1, 2, 6, 5});
    auto g = Tensor<double>::from_vector(
        std::vector<double>(upstream.data() + n * out_size, upstream.data() + (n + 1) * out_size), {1, 3, 3, 3});
    auto wn = w.detach().clone(), bn = b.detach().clone();
    image.requires_grad_();
    wn.requires_grad_();
    bn.requires_grad_();
    cct::conv2d(image, wn, bn, 2, 1).backward(g);
    for (int64_t i = 0; i < image_size; ++i) REQUIRE(image.grad().data()[i] == Approx(x.grad().data()[n * image_size + i]).margin(1e-12));
    for (int64_t i = 0; i < w.numel(); ++i) weight_sum.data()[i] += wn.grad().data()[i];
    for (int64_t i = 0; i < 3; ++i) bias_sum.data()[i] += bn.grad().data()[i];
  }
  CCT_REQUIRE_CLOSE(w.grad(), weight_sum, 1e-12);
  CCT_REQUIRE_CLOSE(b.grad(), bias_sum, 1e-12);
}

TEST_CASE("max_pool2d forward and backward values by hand", "[ops][pool]") {
  auto x = Tensor<float>::from_vector({1, 5, 2, 0, 3, 4, 8, 1, 9, 0, 6, 7, 2, 3, 1, 5}, {1, 1, 4, 4});
  x.requires_grad_();
  auto out = cct::max_pool2d(x, 2, 2);
  REQUIRE(out.shape() == Shape{1, 1, 2, 2});
  REQUIRE(out.to_vector() == std::vector<float>{5, 8, 9, 7});
  out.backward(Tensor<float>::from_vector({1, 2, 3, 4}, {1, 1, 2, 2}));
  REQUIRE(x.grad().to_vector() == std::vector<float>{0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 0, 4, 0, 0, 0, 0});

  // Padding is −∞: with all-negative inputs no window ever takes a padded 0.
  auto negative = Tensor<float>::from_vector({-1, -2, -3, -4, -5, -6, -7, -8, -9}, {1, 1, 3, 3});
  auto cct_pool = cct::max_pool2d(negative, 3, 2, 1);
  REQUIRE(cct_pool.shape() == Shape{1, 1, 2, 2});
  REQUIRE(cct_pool.to_vector() == std::vector<float>{-1, -2, -4, -5});
  auto corners = cct::max_pool2d(negative, 2, 1, 1);
  REQUIRE(corners.shape() == Shape{1, 1, 4, 4});
  REQUIRE(corners.to_vector() ==
          std::vector<float>{-1, -1, -2, -3, -1, -1, -2, -3, -4, -4, -5, -6, -7, -7, -8, -9});

  // Overlapping windows sharing one maximum add their gradients on it; ties go to the first maximum.
  auto peak = Tensor<double>::from_vector({1, 2, 1, 2, 9, 2, 1, 2, 1}, {1, 1, 3, 3});
  peak.requires_grad_();
  cct::max_pool2d(peak, 2, 1).backward(Tensor<double>::ones({1, 1, 2, 2}));
  REQUIRE(peak.grad().to_vector() == std::vector<double>{0, 0, 0, 0, 4, 0, 0, 0, 0});
  auto flat = Tensor<double>::full({1, 1, 2, 3}, 3.0);
  flat.requires_grad_();
  cct::max_pool2d(flat, std::array<int64_t, 2>{2, 2}, std::array<int64_t, 2>{1, 1}).backward(Tensor<double>::ones({1, 1, 1, 2}));
  REQUIRE(flat.grad().to_vector() == std::vector<double>{1, 1, 0, 0, 0, 0});

  // NaN propagates as in PyTorch, wherever it sits in the window; its gradient goes to the first NaN.
  const float nan = std::nanf("");
  auto with_nan = Tensor<float>::from_vector({1, nan, 3, 4, nan, 5, nan, nan}, {1, 1, 1, 8});
  with_nan.requires_grad_();
  auto pooled = cct::max_pool2d(with_nan, std::array<int64_t, 2>{1, 2}, std::array<int64_t, 2>{1, 2});
  const auto pooled_values = pooled.to_vector();
  REQUIRE(std::isnan(pooled_values[0]));
  REQUIRE(pooled_values[1] == 4);
  REQUIRE(std::isnan(pooled_values[2]));
  REQUIRE(std::isnan(pooled_values[3]));
  pooled.backward(Tensor<float>::from_vector({1, 2, 3, 4}, {1, 1, 1, 4}));
  REQUIRE(with_nan.grad().to_vector() == std::vector<float>{0, 1, 0, 2, 3, 0, 4, 0});

  // max_pool1d by hand: [3, 1, 4, 1, 5, 9, 2] with kernel 3, stride 2, padding 1.
  auto seq = Tensor<float>::from_vector({3, 1, 4, 1, 5, 9, 2}, {1, 1, 7});
  REQUIRE(cct::max_pool1d(seq, 3, 2, 1).to_vector() == std::vector<float>{3, 4, 9, 9});
}

TEST_CASE("max_pool2d matches a direct reference loop", "[ops][pool]") {
  const std::vector<PoolCase> cases = {{{2, 3, 7, 7}, 3, 3, 2, 2, 1, 1}, {{1, 2, 16, 16}, 3, 3, 2, 2, 1, 1},
                                   {{2, 2, 5, 7}, 2, 2, 2, 2, 0, 0}, {{3, 1, 9, 6}, 3, 2, 1, 2, 1, 1},
                                   {{1, 4, 6, 6}, 4, 4, 3, 3, 2, 2}, {{2, 2, 4, 5}, 1, 1, 1, 1, 0, 0}};
  uint64_t seed = 300;
  for (const auto& c : cases) {
    INFO(describe(c));
    auto x = random_constant(c.x, seed++);
    auto out = max_pool2d(x, c);
    CCT_REQUIRE_CLOSE(out, reference_max_pool2d(x, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw), 0.0);
  }
  auto seq = random_constant({2, 3, 11}, 310);
  CCT_REQUIRE_CLOSE(cct::max_pool1d(seq, 3, 2, 1),
                    reference_max_pool2d(seq.view_as_shape({2, 3, 1, 11}), 1, 3, 1, 2, 0, 1).view_as_shape({2, 3, 6}), 0.0);
}

TEST_CASE("max_pool2d backward routes each gradient to the first maximum, with ties, NaN and -inf", "[ops][pool]") {
  // Values from {-inf, -1, 0, 1, 2, NaN} make ties everywhere; the reference scans each window in
  // row-major order and keeps the first maximum (the first NaN when there is one). In float and
  // double: float pools with column stride 2 take their own AVX-512 loops where the CPU has it (rows of
  // up to 32 columns entirely in registers; wider ones in 16-output steps).
  const std::vector<PoolCase> cases = {{{2, 3, 7, 7}, 3, 3, 2, 2, 1, 1}, {{1, 2, 8, 9}, 3, 3, 2, 2, 1, 1},
                                   {{2, 2, 5, 7}, 2, 2, 2, 2, 0, 0}, {{3, 1, 9, 6}, 3, 2, 1, 2, 1, 1},
                                   {{1, 4, 6, 6}, 4, 4, 3, 3, 2, 2}, {{1, 1, 1, 12}, 1, 3, 1, 2, 0, 1},
                                   {{1, 2, 5, 37}, 3, 3, 2, 2, 1, 1}, {{1, 1, 3, 70}, 2, 4, 1, 2, 0, 2},
                                   // rows of 17 to 32 columns: the register path's second vector
                                   {{2, 2, 5, 32}, 3, 3, 2, 2, 1, 1}, {{1, 2, 4, 23}, 2, 4, 1, 2, 0, 2}};
  const auto check = [&cases](auto zero) {
    using T = decltype(zero);
    const T choices[] = {-std::numeric_limits<T>::infinity(), -1, 0, 1, 2, std::numeric_limits<T>::quiet_NaN()};
    cct::Generator gen(77);
    for (const auto& c : cases) {
      INFO(describe(c) << (std::is_same_v<T, float> ? " float" : " double"));
      auto x = Tensor<T>::empty(c.x);
      for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = choices[gen.randint(6)];
      x.requires_grad_();
      auto out = cct::max_pool2d(x, {c.kh, c.kw}, {c.sh, c.sw}, {c.ph, c.pw});
      const int64_t N = c.x[0], C = c.x[1], H = c.x[2], W = c.x[3], OH = out.size(2), OW = out.size(3);
      auto upstream = Tensor<T>::empty(out.shape());
      for (int64_t i = 0; i < upstream.numel(); ++i) upstream.data()[i] = static_cast<T>(i + 1);
      out.backward(upstream);
      auto expected = Tensor<T>::zeros(c.x);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t ch = 0; ch < C; ++ch)
          for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
              int64_t best_h = -1, best_w = -1;
              T best = 0;
              for (int64_t i = 0; i < c.kh; ++i)
                for (int64_t j = 0; j < c.kw; ++j) {
                  const int64_t ih = oh * c.sh - c.ph + i, iw = ow * c.sw - c.pw + j;
                  if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                  const T v = x.detach()(n, ch, ih, iw);
                  const bool better = best_h < 0 || (std::isnan(v) && !std::isnan(best)) || (!std::isnan(best) && v > best);
                  if (better) best = v, best_h = ih, best_w = iw;
                }
              const T value = out.detach()(n, ch, oh, ow);
              REQUIRE((std::isnan(best) ? std::isnan(value) : value == best));
              expected(n, ch, best_h, best_w) += upstream(n, ch, oh, ow);
            }
      REQUIRE(x.grad().to_vector() == expected.to_vector());
      cct::NoGradGuard no_grad;  // the inference path gives the same values
      const auto inferred = cct::max_pool2d(x.detach(), {c.kh, c.kw}, {c.sh, c.sw}, {c.ph, c.pw});
      const auto a = inferred.to_vector(), b = out.detach().to_vector();
      for (size_t i = 0; i < a.size(); ++i) REQUIRE((std::isnan(a[i]) ? std::isnan(b[i]) : a[i] == b[i]));
    }
  };
  check(0.0);
  check(0.0f);
}

// ConvTokenizer runs each block as conv → max-pool → ReLU for speed; the blocks hold (and Sequential
// runs) the reference order conv → ReLU → max-pool. Max commutes with the monotone ReLU, so outputs and
// every gradient must be identical, bit for bit, including windows that are all negative.
TEST_CASE("ConvTokenizer's pool-then-ReLU order equals the reference's ReLU-then-pool, values and gradients",
          "[ops][pool][nn]") {
  cct::nn::TokenizerConfig config;
  config.embedding_dim = 6;
  config.num_conv_layers = 2;
  config.in_planes = 4;
  cct::Generator init(5);
  cct::nn::ConvTokenizer<double> tokenizer(config, init);
  const Tensor<double> upstream = random_constant({2, tokenizer.sequence_length(18, 18), 6}, 12);  // (B, tokens, D)

  // Output and the gradients of the images and of both conv weights, one way or the other.
  const auto run = [&](bool reference_order) {
    Tensor<double> images = random_leaf({2, 3, 18, 18}, 11);
    tokenizer.zero_grad(/*set_to_none=*/true);
    Tensor<double> tokens;
    if (reference_order) {
      Tensor<double> x = images;
      for (int64_t i = 0; i < tokenizer.conv_layers->size(); ++i)
        x = tokenizer.conv_layers->at<cct::nn::Sequential<double>>(i)->forward(x);
      tokens = cct::transpose(cct::reshape(x, {x.size(0), x.size(1), x.size(2) * x.size(3)}), 1, 2);
    } else {
      tokens = tokenizer.forward(images);
    }
    cct::sum(cct::mul(tokens, upstream)).backward();
    std::vector<std::vector<double>> results{tokens.to_vector(), images.grad().to_vector()};
    for (const auto& parameter : tokenizer.parameters()) results.push_back(parameter.grad().to_vector());
    return results;
  };
  const auto fast = run(false), reference = run(true);
  REQUIRE(fast.size() == 4);  // tokens, images, two conv weights
  for (size_t i = 0; i < fast.size(); ++i) REQUIRE(fast[i] == reference[i]);
}

TEST_CASE("conv and pool error messages", "[ops][conv][pool]") {
  auto x = Tensor<float>::zeros({1, 3, 5, 5});
  REQUIRE_THROWS_AS(cct::conv2d(x, Tensor<float>::zeros({4, 2, 3, 3}), Tensor<float>()), cct::ShapeError);
  REQUIRE_THROWS_WITH(cct::conv2d(x, Tensor<float>::zeros({4, 2, 3, 3}), Tensor<float>()),
                      Catch::Contains("conv2d") && Catch::Contains("(1, 3, 5, 5)") && Catch::Contains("(4, 2, 3, 3)"));
  REQUIRE_THROWS_WITH(cct::conv2d(Tensor<float>::zeros({1, 1, 2, 2}), Tensor<float>::zeros({1, 1, 5, 5}), Tensor<float>(), 1, 1),
                      Catch::Contains("conv2d") && Catch::Contains("larger than the padded input (4, 4)"));
  REQUIRE_THROWS_WITH(cct::conv2d(Tensor<float>::zeros({3, 5, 5}), Tensor<float>::zeros({4, 3, 3, 3}), Tensor<float>()),
                      Catch::Contains("conv2d: input must be 4-D") && Catch::Contains("(3, 5, 5)"));
  REQUIRE_THROWS_WITH(cct::conv2d(x, Tensor<float>::zeros({4, 3, 3, 3}), Tensor<float>::zeros({3})),
                      Catch::Contains("bias shape (3,)") && Catch::Contains("(4, 3, 3, 3)"));
  REQUIRE_THROWS_WITH(cct::conv2d(x, Tensor<float>::zeros({4, 3, 3, 3}), Tensor<float>(), 0, 0),
                      Catch::Contains("stride must be at least 1"));
  REQUIRE_THROWS_WITH(cct::conv1d(Tensor<float>::zeros({2, 3, 4}), Tensor<float>::zeros({5, 2, 3}), Tensor<float>()),
                      Catch::Contains("conv1d") && Catch::Contains("(2, 3, 4)") && Catch::Contains("(5, 2, 3)"));
  REQUIRE_THROWS_WITH(cct::conv1d(Tensor<float>::zeros({2, 3, 4}), Tensor<float>::zeros({5, 3, 7}), Tensor<float>()),
                      Catch::Contains("conv1d") && Catch::Contains("larger"));

  REQUIRE_THROWS_WITH(cct::max_pool2d(x, 3, 2, 2), Catch::Contains("max_pool2d") && Catch::Contains("half the kernel"));
  REQUIRE_THROWS_WITH(cct::max_pool2d(x, 7, 1, 0), Catch::Contains("max_pool2d") && Catch::Contains("larger"));
  REQUIRE_THROWS_WITH(cct::max_pool2d(Tensor<float>::zeros({5, 5}), 2, 2), Catch::Contains("4-D"));
  REQUIRE_THROWS_WITH(cct::max_pool1d(Tensor<float>::zeros({1, 2, 5}), 2, 1, 2), Catch::Contains("half the kernel"));

  // The fused op names itself, and the pool's input is the convolution's output (here 3 x 3).
  REQUIRE_THROWS_WITH(cct::conv2d_max_pool2d(x, Tensor<float>::zeros({4, 2, 3, 3}), Tensor<float>(), {}, 2, 2),
                      Catch::Contains("conv2d_max_pool2d") && Catch::Contains("(4, 2, 3, 3)"));
  REQUIRE_THROWS_WITH(cct::conv2d_max_pool2d(x, Tensor<float>::zeros({4, 3, 3, 3}), Tensor<float>(), {}, 5, 1),
                      Catch::Contains("conv2d_max_pool2d") && Catch::Contains("larger than the padded input (3, 3)"));
}

TEST_CASE("gradients of conv2d and conv1d match finite differences", "[ops][conv][gradcheck]") {
  auto with_bias = [](Conv2dParams p) {
    return [p](const Inputs& in) { return cct::conv2d(in[0], in[1], in[2], p); };
  };
  auto without_bias = [](Conv2dParams p) {
    return [p](const Inputs& in) { return cct::conv2d(in[0], in[1], Tensor<double>(), p); };
  };
  {
    INFO("3x3, stride 1, padding 1, with bias");
    check_gradients(with_bias({1, 1, 1, 1}), {random_leaf({2, 3, 5, 5}, 1), random_leaf({4, 3, 3, 3}, 2), random_leaf({4}, 3)});
  }
  {
    INFO("3x3, no padding, no bias");
    check_gradients(without_bias({1, 1, 0, 0}), {random_leaf({2, 3, 5, 5}, 4), random_leaf({4, 3, 3, 3}, 5)});
  }
  {
    INFO("stride 2, padding 1, odd sizes");
    check_gradients(with_bias({2, 2, 1, 1}), {random_leaf({2, 3, 7, 6}, 6), random_leaf({4, 3, 3, 3}, 7), random_leaf({4}, 8)});
  }
  {
    INFO("rectangular kernel, stride (2, 1), padding (1, 0)");
    check_gradients(with_bias({2, 1, 1, 0}), {random_leaf({2, 2, 7, 5}, 9), random_leaf({3, 2, 3, 2}, 10), random_leaf({3}, 11)});
  }
  {
    INFO("text kernel (3, E), stride (1, 1), padding (1, 0)");
    check_gradients(with_bias({1, 1, 1, 0}), {random_leaf({2, 1, 6, 4}, 12), random_leaf({3, 1, 3, 4}, 13), random_leaf({3}, 14)});
  }
  {
    INFO("kernel 7, stride 2, padding 3");
    check_gradients(without_bias({2, 2, 3, 3}), {random_leaf({1, 2, 9, 8}, 15), random_leaf({2, 2, 7, 7}, 16)});
  }
  {
    INFO("stride 1, output as wide as the input: wrapped columns, rows in the padding");
    check_gradients(with_bias({1, 1, 3, 2}), {random_leaf({2, 2, 3, 4}, 30), random_leaf({3, 2, 5, 5}, 31), random_leaf({3}, 32)});
  }
  {
    INFO("pointwise 1x1");
    check_gradients(with_bias({1, 1, 0, 0}), {random_leaf({2, 3, 3, 4}, 17), random_leaf({4, 3, 1, 1}, 18), random_leaf({4}, 19)});
  }
  {
    INFO("weight held constant: only the input and bias get gradients");
    check_gradients(with_bias({1, 1, 1, 1}), {random_leaf({2, 2, 4, 4}, 20), random_constant({3, 2, 3, 3}, 21), random_leaf({3}, 22)});
  }
  {
    INFO("input held constant");
    check_gradients(without_bias({2, 1, 0, 1}), {random_constant({2, 2, 5, 4}, 23), random_leaf({3, 2, 2, 3}, 24)});
  }
  {
    INFO("conv1d, stride 2, padding 1");
    check_gradients([](const Inputs& in) { return cct::conv1d(in[0], in[1], in[2], 2, 1); },
                    {random_leaf({2, 3, 9}, 25), random_leaf({4, 3, 3}, 26), random_leaf({4}, 27)});
    check_gradients([](const Inputs& in) { return cct::conv1d(in[0], in[1], Tensor<double>()); },
                    {random_leaf({3, 2, 6}, 28), random_leaf({2, 2, 4}, 29)});
  }
}

TEST_CASE("gradients of conv2d_max_pool2d match finite differences", "[ops][conv][pool][gradcheck]") {
  {
    INFO("3x3 conv, padding 1, bias; pool 3, stride 2, padding 1 (CCT's tokenizer)");
    check_gradients([](const Inputs& in) { return cct::conv2d_max_pool2d(in[0], in[1], in[2], {1, 1, 1, 1}, 3, 2, 1); },
                    {random_leaf({2, 2, 6, 5}, 61), random_leaf({3, 2, 3, 3}, 62), random_leaf({3}, 63)});
  }
  {
    INFO("strided conv without bias; pool 2, stride 2");
    check_gradients(
        [](const Inputs& in) { return cct::conv2d_max_pool2d(in[0], in[1], Tensor<double>(), {2, 1, 1, 0}, 2, 2); },
        {random_leaf({2, 2, 8, 6}, 64), random_leaf({3, 2, 3, 3}, 65)});
  }
}

TEST_CASE("gradients of max_pool2d and max_pool1d match finite differences", "[ops][pool][gradcheck]") {
  check_gradients([](const Inputs& in) { return cct::max_pool2d(in[0], 3, 2, 1); }, {distinct_leaf({2, 3, 7, 7}, 1)});
  check_gradients([](const Inputs& in) { return cct::max_pool2d(in[0], 3, 2, 1); }, {distinct_leaf({2, 2, 6, 5}, 2)});
  check_gradients([](const Inputs& in) { return cct::max_pool2d(in[0], 2, 2); }, {distinct_leaf({1, 3, 5, 7}, 3)});
  check_gradients([](const Inputs& in) { return cct::max_pool2d(in[0], 2, 1); }, {distinct_leaf({2, 2, 4, 5}, 4)});
  check_gradients(
      [](const Inputs& in) {
        return cct::max_pool2d(in[0], std::array<int64_t, 2>{3, 2}, std::array<int64_t, 2>{1, 2}, std::array<int64_t, 2>{1, 0});
      },
      {distinct_leaf({2, 2, 5, 6}, 5)});
  check_gradients([](const Inputs& in) { return cct::max_pool1d(in[0], 3, 2, 1); }, {distinct_leaf({2, 3, 9}, 6)});
  check_gradients([](const Inputs& in) { return cct::max_pool1d(in[0], 2, 2); }, {distinct_leaf({3, 2, 7}, 7)});
  // Pooling after a convolution, as in CCT's tokenizer (conv → relu-free here → pool).
  check_gradients(
      [](const Inputs& in) { return cct::max_pool2d(cct::conv2d(in[0], in[1], Tensor<double>(), 1, 1), 3, 2, 1); },
      {distinct_leaf({2, 2, 5, 5}, 8), random_leaf({3, 2, 3, 3}, 9)});
}

TEST_CASE("conv2d under bf16 computes its GEMMs on bf16 operands, backward included", "[ops][conv][bf16]") {
  // Every im2col GEMM (forward, ∂x, ∂W) multiplies bf16-rounded operands: the results equal fp32 on
  // rounded inputs and a rounded upstream gradient up to fp32 summation order (1e-4; bf16's own error
  // here is near 1e-2, which the second check demands). The bias gradient is an fp32 reduction.
  cct::Generator gen(31);
  const auto x = Tensor<float>::uniform({3, 3, 9, 9}, -1, 1, gen), w = Tensor<float>::uniform({8, 3, 3, 3}, -1, 1, gen);
  const auto bias = Tensor<float>::uniform({8}, -1, 1, gen), g = Tensor<float>::uniform({3, 8, 9, 9}, -1, 1, gen);
  auto op = [](const std::vector<Tensor<float>>& in) { return cct::conv2d(in[0], in[1], in[2], 1, 1); };
  const auto bf16 = forward_backward_bf16({x, w, bias}, g, op);
  const auto emulated = forward_backward({rounded_to_bf16(x), rounded_to_bf16(w), bias}, rounded_to_bf16(g), op);
  const auto fp32 = forward_backward({x, w, bias}, g, op);
  for (size_t t = 0; t < 3; ++t) {
    INFO("tensor " << t << " (output, ∂x, ∂W)");
    CCT_REQUIRE_CLOSE(bf16[t], emulated[t], 1e-4);
    CHECK(max_difference(bf16[t], fp32[t]) > 1e-3);
  }
  REQUIRE(bf16[3].to_vector() == fp32[3].to_vector());

  // Double convolutions, gradient checks included, ignore the setting.
  const auto fn = [](const Inputs& in) { return cct::conv2d(in[0], in[1], in[2], Conv2dParams{2, 1, 1, 0}); };
  const Inputs inputs{random_leaf({2, 2, 7, 5}, 9), random_leaf({3, 2, 3, 2}, 10), random_leaf({3}, 11)};
  const cct::GradcheckResult plain = cct::gradcheck(fn, inputs);
  cct::PrecisionGuard guard(cct::Precision::kBF16);
  const cct::GradcheckResult guarded = cct::gradcheck(fn, inputs);
  REQUIRE(plain.passed);
  REQUIRE(guarded.max_abs_error == plain.max_abs_error);
  REQUIRE(guarded.message == plain.message);
}
