// The fused multi_head_attention op: values against hand-computed numbers and against the same math
// composed from reshape/permute/matmul/softmax, key padding, attention dropout, gradients, threads
// and errors.
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include <cct/ops/attention.hpp>
#include <cct/ops/elementwise.hpp>
#include <cct/ops/matmul.hpp>
#include <cct/ops/shape.hpp>
#include <cct/ops/softmax.hpp>

#include "test_helpers.hpp"

using cct::AttentionOptions;
using cct::Shape;
using cct::Tensor;
using cct::testing::check_gradients;
using cct::testing::forward_backward;
using cct::testing::forward_backward_bf16;
using cct::testing::max_difference;
using cct::testing::rounded_to_bf16;
using cct::testing::random_leaf;
using cct::testing::ThreadCountGuard;
using Inputs = std::vector<Tensor<double>>;
using Mask = Tensor<uint8_t>;

namespace {

AttentionOptions heads(int64_t num_heads, double dropout = 0.0, bool training = false) {
  AttentionOptions options;
  options.num_heads = num_heads;
  options.dropout = dropout;
  options.training = training;
  return options;
}

// The reference's unfused attention, written with the library's general ops:
//   qkv.reshape(B, N, 3, H, hd).permute(2, 0, 3, 1, 4) → q, k, v (B, H, N, hd)
//   softmax(q kᵀ · hd^−0.5 + key penalty) v, then heads back to (B, N, D).
// Padded keys get −inf added to their scores, which softmax turns into an exact zero.
template <typename T>
Tensor<T> naive_attention(const Tensor<T>& qkv, int64_t num_heads, const Mask& key_padding_mask = Mask()) {
  const int64_t B = qkv.size(0), N = qkv.size(1), D = qkv.size(2) / 3, H = num_heads, hd = D / H;
  Tensor<T> split = cct::permute(cct::reshape(qkv, {B, N, 3, H, hd}), {2, 0, 3, 1, 4});  // (3, B, H, N, hd)
  auto part = [&](int64_t which) { return cct::reshape(cct::narrow(split, 0, which, 1), {B, H, N, hd}); };
  Tensor<T> scores = cct::matmul(part(0), part(1), false, true) * static_cast<T>(1.0 / std::sqrt(double(hd)));
  if (key_padding_mask.defined()) {
    Tensor<T> penalty = Tensor<T>::zeros({B, 1, 1, N});
    for (int64_t i = 0; i < B * N; ++i)
      if (!key_padding_mask.data()[i]) penalty.data()[i] = -std::numeric_limits<T>::infinity();
    scores = scores + penalty;
  }
  Tensor<T> out = cct::matmul(cct::softmax(scores, -1), part(2));  // (B, H, N, hd)
  return cct::reshape(cct::permute(out, {0, 2, 1, 3}), {B, N, D});
}

Mask make_mask(const Shape& shape, const std::vector<uint8_t>& values) {
  Mask mask = Mask::empty(shape);
  std::copy(values.begin(), values.end(), mask.data());
  return mask;
}

}  // namespace

TEST_CASE("multi_head_attention forward values by hand", "[ops][attention]") {
  // Two heads of size 1 (scale 1), two tokens. Row layout: [q_h0, q_h1, k_h0, k_h1, v_h0, v_h1].
  // Head 0: keys (0, ln 3). Query 1 sees scores (0, ln 3) → weights (1/4, 3/4) → 1/4·1 + 3/4·5 = 4;
  //         query 0 sees (0, 0) → (1/2, 1/2) → 3.
  // Head 1: keys (0, 0), so both queries average the values: (10 + 20) / 2 = 15.
  const double ln3 = std::log(3.0);
  auto qkv = Tensor<double>::from_vector({0, 2, 0, 0, 1, 10,  //
                                          1, -1, ln3, 0, 5, 20},
                                         {1, 2, 6});
  Tensor<double> probabilities;
  auto out = cct::multi_head_attention(qkv, heads(2), Mask(), cct::default_generator(), &probabilities);
  CCT_REQUIRE_CLOSE(out, Tensor<double>::from_vector({3, 15, 4, 15}, {1, 2, 2}), 1e-12);
  CCT_REQUIRE_CLOSE(probabilities, Tensor<double>::from_vector({0.5, 0.5, 0.25, 0.75, 0.5, 0.5, 0.5, 0.5}, {1, 2, 2, 2}),
                    1e-12);

  // The scale is head_dim^−0.5: one head of size 2 with q·k = 2·ln 3 gives the scores (0, √2·ln 3).
  auto wide = Tensor<double>::from_vector({0, 0, 0, 0, 1, 0,  //
                                           1, 1, ln3, ln3, 5, 0},
                                          {1, 2, 6});
  auto wide_out = cct::multi_head_attention(wide, heads(1));
  const double e = std::exp(std::sqrt(2.0) * ln3), w1 = e / (1 + e);
  REQUIRE(wide_out(0, 1, 0) == Approx((1 - w1) * 1 + w1 * 5).epsilon(1e-12));
  REQUIRE(wide_out(0, 0, 0) == Approx(3.0).epsilon(1e-12));
}

TEST_CASE("multi_head_attention equals the composition of reshape, permute, matmul and softmax",
          "[ops][attention]") {
  // (B, N, D, H), odd sequence lengths and every head count from 1 to 4.
  const std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>> cases = {
      {1, 1, 4, 1}, {2, 5, 6, 1}, {3, 7, 8, 2}, {2, 9, 12, 3}, {1, 13, 16, 4}, {2, 4, 20, 4}, {1, 33, 24, 3}};
  uint64_t seed = 100;
  for (const auto& [B, N, D, H] : cases) {
    INFO("B=" << B << " N=" << N << " D=" << D << " H=" << H);
    auto qkv = random_leaf({B, N, 3 * D}, ++seed, -2.0, 2.0);
    auto fused = cct::multi_head_attention(qkv, heads(H));
    auto reference_input = qkv.clone().requires_grad_();
    auto naive = naive_attention(reference_input, H);
    CCT_REQUIRE_CLOSE(fused, naive, 1e-12);

    // Backward too: the same upstream gradient gives the same qkv gradient.
    auto upstream = cct::testing::random_constant({B, N, D}, ++seed);
    fused.backward(upstream);
    naive.backward(upstream);
    CCT_REQUIRE_CLOSE(qkv.grad(), reference_input.grad(), 1e-11);
  }

  // float agrees with double to float rounding.
  auto qkv = random_leaf({2, 11, 3 * 16}, 7, -2.0, 2.0);
  auto as_float = cct::multi_head_attention(qkv.detach().to<float>(), heads(4));
  CCT_REQUIRE_CLOSE(as_float.to<double>(), cct::multi_head_attention(qkv.detach(), heads(4)), 1e-5);
}

TEST_CASE("multi_head_attention with a key padding mask", "[ops][attention]") {
  SECTION("padded keys get exactly zero probability; rows sum to 1; the composition agrees") {
    const int64_t B = 2, N = 7, D = 6, H = 3;
    auto qkv = random_leaf({B, N, 3 * D}, 31, -3.0, 3.0);
    auto mask = make_mask({B, N}, {1, 1, 0, 1, 1, 0, 0,  //
                                   1, 1, 1, 1, 1, 1, 0});
    Tensor<double> probabilities;
    auto out = cct::multi_head_attention(qkv, heads(H), mask, cct::default_generator(), &probabilities);
    REQUIRE(probabilities.shape() == Shape{B, H, N, N});
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < N; ++i) {
          double row_sum = 0;
          for (int64_t j = 0; j < N; ++j) {
            const double p = probabilities(b, h, i, j);
            if (!mask(b, j)) REQUIRE(p == 0.0);
            else REQUIRE(p > 0.0);
            row_sum += p;
          }
          REQUIRE(row_sum == Approx(1.0).epsilon(1e-12));
        }
    CCT_REQUIRE_CLOSE(out, naive_attention(qkv.detach(), H, mask), 1e-12);

    // Padded keys and values do not influence anything, so their gradient is zero.
    out.backward(Tensor<double>::ones(out.shape()));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < N; ++j)
        if (!mask(b, j))
          for (int64_t c = D; c < 3 * D; ++c) REQUIRE(qkv.grad()(b, j, c) == 0.0);
  }

  SECTION("a sequence padded from 5 to 8 tokens gives the unpadded outputs at the real positions") {
    const int64_t N = 5, padded = 8, D = 8, H = 2;
    auto real = random_leaf({1, N, 3 * D}, 41).detach();
    // The padding rows hold huge junk (scores in the thousands): if any of it leaked into a real position,
    // even only through the softmax's running max, the outputs would differ.
    auto junk = Tensor<double>::uniform({1, padded - N, 3 * D}, -1e4, 1e4);
    auto with_padding = cct::concat(std::vector<Tensor<double>>{real, junk}, 1);
    auto mask = make_mask({1, padded}, {1, 1, 1, 1, 1, 0, 0, 0});
    auto expected = cct::multi_head_attention(real, heads(H));
    auto got = cct::narrow(cct::multi_head_attention(with_padding, heads(H), mask), 1, 0, N);
    CCT_REQUIRE_CLOSE(got, expected, 1e-12);

    // Same in float, and with the mask on a batch where the other sequence is not padded at all.
    auto other = Tensor<double>::uniform({1, padded, 3 * D}, -1.0, 1.0);
    auto batch = cct::concat(std::vector<Tensor<double>>{with_padding, other}, 0).to<float>();
    auto batch_mask = make_mask({2, padded}, {1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1});
    auto batch_out = cct::multi_head_attention(batch, heads(H), batch_mask).to<double>();
    CCT_REQUIRE_CLOSE(cct::narrow(cct::narrow(batch_out, 0, 0, 1), 1, 0, N), expected, 1e-5);
    CCT_REQUIRE_CLOSE(cct::narrow(batch_out, 0, 1, 1), cct::multi_head_attention(other, heads(H)), 1e-5);
  }

  SECTION("a sequence whose every key is padded attends to nothing (zero output, finite gradient)") {
    auto qkv = random_leaf({2, 3, 12}, 51);
    auto mask = make_mask({2, 3}, {0, 0, 0, 1, 0, 1});
    auto out = cct::multi_head_attention(qkv, heads(2), mask);
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t c = 0; c < 4; ++c) REQUIRE(out(0, i, c) == 0.0);
    out.backward(Tensor<double>::ones(out.shape()));
    for (double g : qkv.grad().to_vector()) REQUIRE(std::isfinite(g));
  }
}

TEST_CASE("gradients of multi_head_attention match finite differences", "[ops][attention][gradcheck]") {
  SECTION("no mask, several head counts and odd lengths") {
    for (const auto& [B, N, D, H] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
             {1, 3, 2, 1}, {2, 5, 6, 3}, {1, 4, 8, 4}, {2, 3, 4, 2}}) {
      INFO("B=" << B << " N=" << N << " D=" << D << " H=" << H);
      check_gradients([H = H](const Inputs& in) { return cct::multi_head_attention(in[0], heads(H)); },
                      {random_leaf({B, N, 3 * D}, static_cast<uint64_t>(60 + N + D), -1.5, 1.5)});
    }
  }
  SECTION("with a key padding mask") {
    auto mask = make_mask({2, 5}, {1, 0, 1, 1, 0, 1, 1, 1, 1, 0});
    check_gradients([&](const Inputs& in) { return cct::multi_head_attention(in[0], heads(2), mask); },
                    {random_leaf({2, 5, 12}, 71, -1.5, 1.5)});
  }
  SECTION("with attention dropout while training (a fresh generator per call repeats the mask)") {
    check_gradients(
        [](const Inputs& in) {
          cct::Generator fixed(2024);
          return cct::multi_head_attention(in[0], heads(2, 0.3, true), Mask(), fixed);
        },
        {random_leaf({2, 5, 12}, 81, -1.5, 1.5)});
    auto mask = make_mask({1, 6}, {1, 1, 0, 1, 1, 1});
    check_gradients(
        [&](const Inputs& in) {
          cct::Generator fixed(7);
          return cct::multi_head_attention(in[0], heads(3, 0.3, true), mask, fixed);
        },
        {random_leaf({1, 6, 9}, 82, -1.5, 1.5)});
  }
}

TEST_CASE("attention dropout drops a fraction p of the probabilities and scales the rest", "[ops][attention]") {
  // With hd = N and each head's v equal to the identity, head h's output rows are its (dropped-out)
  // probability rows, so the op's output shows the dropout mask directly.
  const int64_t B = 2, H = 2, N = 128, hd = N, D = H * hd;
  Tensor<double> qkv = Tensor<double>::uniform({B, N, 3 * D}, -1.0, 1.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < N; ++i)
      for (int64_t c = 0; c < D; ++c) qkv(b, i, 2 * D + c) = (c % hd == i) ? 1.0 : 0.0;

  const double p = 0.3;
  cct::Generator gen(99);
  Tensor<double> probabilities;
  auto out = cct::multi_head_attention(qkv, heads(H, p, true), Mask(), gen, &probabilities);
  REQUIRE(gen.counter() == static_cast<uint64_t>(B * H * N * N));  // one reserved draw per probability
  int64_t dropped = 0, wrongly_scaled = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < N; ++j) {
          const double kept = out(b, i, h * hd + j), original = probabilities(b, h, i, j);
          REQUIRE(original > 0.0);
          if (kept == 0.0) ++dropped;
          else if (std::abs(kept - original / (1 - p)) > 1e-12 * kept) ++wrongly_scaled;
        }
  REQUIRE(wrongly_scaled == 0);
  // 65536 Bernoulli(0.3): the fraction's standard deviation is about 0.0018.
  REQUIRE(static_cast<double>(dropped) / (B * H * N * N) == Approx(p).margin(0.01));

  // probabilities_out holds the probabilities before dropout: every row sums to 1.
  for (int64_t r = 0; r < B * H * N; ++r) {
    double row_sum = 0;
    for (int64_t j = 0; j < N; ++j) row_sum += probabilities.data()[r * N + j];
    REQUIRE(row_sum == Approx(1.0).epsilon(1e-12));
  }

  // The same seed repeats the mask; the next call (counter advanced) and another seed do not.
  cct::Generator again(99);
  REQUIRE(cct::multi_head_attention(qkv, heads(H, p, true), Mask(), again).to_vector() == out.to_vector());
  REQUIRE(cct::multi_head_attention(qkv, heads(H, p, true), Mask(), again).to_vector() != out.to_vector());
  cct::Generator other(100);
  REQUIRE(cct::multi_head_attention(qkv, heads(H, p, true), Mask(), other).to_vector() != out.to_vector());

  // Not training (or p = 0): no dropout, no draws; the output is exactly the probabilities.
  cct::Generator untouched(5);
  auto eval_out = cct::multi_head_attention(qkv, heads(H, p, false), Mask(), untouched);
  auto zero_p = cct::multi_head_attention(qkv, heads(H, 0.0, true), Mask(), untouched);
  REQUIRE(untouched.counter() == 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < N; ++j) {
          REQUIRE(eval_out(b, i, h * hd + j) == Approx(probabilities(b, h, i, j)).epsilon(1e-12));
          REQUIRE(zero_p(b, i, h * hd + j) == eval_out(b, i, h * hd + j));
        }

  // p = 1 drops everything.
  cct::Generator all(1);
  for (double v : cct::multi_head_attention(qkv, heads(H, 1.0, true), Mask(), all).to_vector()) REQUIRE(v == 0.0);
}

TEST_CASE("multi_head_attention gives identical results on 1 and 2 threads", "[ops][attention]") {
  const Tensor<double> input = random_leaf({3, 9, 3 * 12}, 91, -2.0, 2.0).detach();
  auto mask = make_mask({3, 9}, {1, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                 1, 1, 1, 1, 0, 0, 0, 0, 0,  //
                                 1, 0, 1, 0, 1, 0, 1, 0, 1});
  auto run = [&](int threads) {
    ThreadCountGuard guard;
    cct::set_num_threads(threads);
    auto qkv = input.clone().requires_grad_();
    cct::Generator gen(3);
    auto out = cct::multi_head_attention(qkv, heads(3, 0.2, true), mask, gen);
    out.backward(cct::testing::random_constant(out.shape(), 92));
    return std::make_pair(out.to_vector(), qkv.grad().to_vector());
  };
  const auto one = run(1), two = run(2);
  REQUIRE(one.first == two.first);
  REQUIRE(one.second == two.second);
}

TEST_CASE("multi_head_attention errors name the problem", "[ops][attention]") {
  auto qkv = Tensor<float>::zeros({2, 3, 18});  // D = 6
  REQUIRE_THROWS_AS(cct::multi_head_attention(qkv, heads(4)), cct::ShapeError);
  REQUIRE_THROWS_WITH(cct::multi_head_attention(qkv, heads(4)),
                      Catch::Contains("multi_head_attention") && Catch::Contains("6 is not divisible by 4"));
  REQUIRE_THROWS_WITH(cct::multi_head_attention(qkv, heads(0)), Catch::Contains("not divisible"));
  REQUIRE_THROWS_WITH(cct::multi_head_attention(Tensor<float>::zeros({2, 3, 16}), heads(1)),
                      Catch::Contains("(B, N, 3D)") && Catch::Contains("(2, 3, 16)"));
  REQUIRE_THROWS_WITH(cct::multi_head_attention(Tensor<float>::zeros({3, 18}), heads(1)), Catch::Contains("(B, N, 3D)"));

  REQUIRE_THROWS_AS(cct::multi_head_attention(qkv, heads(2), Mask::ones({2, 4})), cct::ShapeError);
  REQUIRE_THROWS_WITH(cct::multi_head_attention(qkv, heads(2), Mask::ones({2, 4})),
                      Catch::Contains("key_padding_mask") && Catch::Contains("(2, 3)") && Catch::Contains("(2, 4)"));
  REQUIRE_THROWS_WITH(cct::multi_head_attention(qkv, heads(2), Mask::ones({6})),
                      Catch::Contains("key_padding_mask") && Catch::Contains("(6,)"));
  REQUIRE_THROWS_WITH(cct::multi_head_attention(qkv, heads(2, 1.5, true)), Catch::Contains("dropout"));
}

TEST_CASE("inference attention (no graph, no probabilities kept) equals the recording path", "[ops][attention]") {
  // Without a graph the op keeps one (N, N) block per thread instead of all B·H of them; the
  // arithmetic is the same, so the outputs must be identical, with and without a padding mask.
  const int64_t B = 3, N = 9, D = 8, H = 2;
  auto qkv = random_leaf({B, N, 3 * D}, 57, -4.0, 4.0).to<float>().requires_grad_(true);
  const auto mask = make_mask({B, N}, {1, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                       1, 0, 1, 1, 0, 1, 1, 0, 0,  //
                                       0, 0, 0, 0, 0, 0, 0, 0, 0});
  for (const bool masked : {false, true}) {
    INFO("masked: " << masked);
    const Mask used = masked ? mask : Mask();
    const auto recorded = cct::multi_head_attention(qkv, heads(H), used);
    REQUIRE(recorded.requires_grad());
    Tensor<float> inferred;
    {
      cct::NoGradGuard no_grad;
      inferred = cct::multi_head_attention(qkv, heads(H), used);
    }
    REQUIRE_FALSE(inferred.requires_grad());
    REQUIRE(inferred.to_vector() == recorded.detach().to_vector());
    if (masked)  // the fully padded sequence attends to nothing
      for (int64_t j = 0; j < N; ++j)
        for (int64_t c = 0; c < D; ++c) REQUIRE(inferred(2, j, c) == 0.0f);
  }
}

TEST_CASE("multi_head_attention under bf16 saves a bf16 copy of qkv and gives the same results bit for bit",
          "[ops][attention][bf16]") {
  // q, k and v enter only bf16 products, which round them anyway: with dropout and a padding mask, the
  // output and ∂qkv equal those of the run that keeps the float qkv.
  cct::Generator gen(42);
  const int64_t B = 3, N = 29, D = 24;
  const auto qkv = Tensor<float>::uniform({B, N, 3 * D}, -1, 1, gen), g = Tensor<float>::uniform({B, N, D}, -1, 1, gen);
  auto mask = Tensor<uint8_t>::full({B, N}, 1);
  for (int64_t j = 20; j < N; ++j) mask.data()[1 * N + j] = 0;
  AttentionOptions options;
  options.num_heads = 3;
  options.dropout = 0.2;
  options.training = true;
  std::vector<Tensor<float>> runs[2];
  for (const bool save_copy : {true, false}) {
    cct::testing::SaveBf16OperandsGuard save(save_copy);
    cct::Generator dropout_gen(7);  // the same dropout decisions in both runs
    auto op = [&](const std::vector<Tensor<float>>& in) { return cct::multi_head_attention(in[0], options, mask, dropout_gen); };
    runs[save_copy ? 0 : 1] = forward_backward_bf16({qkv}, g, op);
  }
  REQUIRE(runs[0][0].to_vector() == runs[1][0].to_vector());
  REQUIRE(runs[0][1].to_vector() == runs[1][1].to_vector());
  REQUIRE(max_difference(runs[0][1], Tensor<float>::zeros({B, N, 3 * D})) > 0);  // a gradient really flowed
}

TEST_CASE("multi_head_attention under bf16 stays close to fp32, and double ignores the setting", "[ops][attention][bf16]") {
  // q·kᵀ and P·v (and the four backward products) take bf16 operands; softmax stays fp32. P itself is
  // rounded inside, so there is no fp32 emulation: outputs and gradients must stay within a bf16-sized
  // distance of fp32 (each product's operands carry relative error ≤ 2^-8; 0.05 absolute covers sums of
  // up to 16 terms of size ≤ 1 with margin) and must differ from fp32 (the products really are bf16).
  cct::Generator gen(41);
  const int64_t B = 2, N = 37, D = 32;
  const auto qkv = Tensor<float>::uniform({B, N, 3 * D}, -1, 1, gen), g = Tensor<float>::uniform({B, N, D}, -1, 1, gen);
  AttentionOptions options;
  options.num_heads = 2;
  auto op = [&](const std::vector<Tensor<float>>& in) { return cct::multi_head_attention(in[0], options); };
  const auto bf16 = forward_backward_bf16({qkv}, g, op);
  const auto fp32 = forward_backward({qkv}, g, op);
  for (size_t t = 0; t < 2; ++t) {
    INFO("tensor " << t << " (output, ∂qkv)");
    const double difference = max_difference(bf16[t], fp32[t]);
    CHECK(difference < 0.05);
    CHECK(difference > 1e-4);
  }

  const auto fn = [](const Inputs& in) {
    AttentionOptions two_heads;
    two_heads.num_heads = 2;
    return cct::multi_head_attention(in[0], two_heads);
  };
  const Inputs inputs{random_leaf({2, 3, 12}, 12)};
  const cct::GradcheckResult plain = cct::gradcheck(fn, inputs);
  cct::PrecisionGuard guard(cct::Precision::kBF16);
  const cct::GradcheckResult guarded = cct::gradcheck(fn, inputs);
  REQUIRE(plain.passed);
  REQUIRE(guarded.max_abs_error == plain.max_abs_error);
  REQUIRE(guarded.message == plain.message);
}
