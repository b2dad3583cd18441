// Optimisers (SGD, AdamW), their state dicts, parameter groups, gradient clipping and the lr schedule.
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <cct/core/parallel.hpp>
#include <cct/nn/module.hpp>
#include <cct/optim/adamw.hpp>
#include <cct/optim/clip.hpp>
#include <cct/optim/optimizer.hpp>
#include <cct/optim/schedule.hpp>
#include <cct/optim/sgd.hpp>

#include "test_helpers.hpp"

using cct::Shape;
using cct::Tensor;
using namespace cct::optim;

namespace {

template <typename T>
Tensor<T> parameter(const std::vector<T>& values, const Shape& shape) {
  Tensor<T> t = Tensor<T>::from_vector(values, shape);
  t.requires_grad_();
  return t;
}

template <typename T>
void set_grad(const Tensor<T>& param, const std::vector<T>& values) {
  param.set_grad(Tensor<T>::from_vector(values, param.shape()));
}

// The gradients of the AdamW reference run: element k of step t (t = 0, 1, 2) is
// scale·(k + 1)·(−1)^(k + t) + 0.05·t (the same formula is in the Python script quoted below).
template <typename T>
std::vector<T> reference_grad(int n, int t, double scale) {
  std::vector<T> out;
  for (int k = 0; k < n; ++k)
    out.push_back(static_cast<T>(scale * (k + 1) * ((k + t) % 2 == 0 ? 1.0 : -1.0) + 0.05 * t));
  return out;
}

template <typename T>
void require_values(const Tensor<T>& actual, const std::vector<double>& expected, double tolerance) {
  REQUIRE(actual.numel() == static_cast<int64_t>(expected.size()));
  for (size_t k = 0; k < expected.size(); ++k) {
    INFO("element " << k);
    REQUIRE(static_cast<double>(actual.data()[k]) == Approx(expected[k]).margin(tolerance).epsilon(tolerance));
  }
}

}  // namespace

// ---- SGD ------------------------------------------------------------------------------------------

TEST_CASE("SGD without momentum is p - lr g", "[optim][sgd]") {
  auto p = parameter<double>({1.0, -2.0}, {2});
  SGD<double> sgd({{"p", p}}, SGDOptions{0.1});
  set_grad<double>(p, {0.5, 1.0});
  sgd.step();
  // 1 - 0.1·0.5 = 0.95, -2 - 0.1·1 = -2.1
  require_values(p, {0.95, -2.1}, 1e-15);
  REQUIRE(sgd.step_count() == 1);
  REQUIRE(sgd.state_dict().size() == 1);  // only "optimizer.step": no momentum buffer without momentum
}

TEST_CASE("SGD with momentum and weight decay, two steps (hand-computed)", "[optim][sgd]") {
  // p0 = (1, -2), lr 0.1, momentum 0.9, weight decay 0.01; g1 = (0.5, 1), g2 = (-1, 0.5).
  auto p = parameter<double>({1.0, -2.0}, {2});
  SGD<double> sgd({{"p", p}}, SGDOptions{0.1, 0.9, false, 0.01});
  set_grad<double>(p, {0.5, 1.0});
  sgd.step();
  // d = g + 0.01·p = (0.51, 0.98); b = d; p = p - 0.1·b = (0.949, -2.098)
  require_values(p, {0.949, -2.098}, 1e-14);
  require_values(sgd.state_dict()[1].second, {0.51, 0.98}, 1e-14);
  set_grad<double>(p, {-1.0, 0.5});
  sgd.step();
  // d = g + 0.01·p = (-0.99051, 0.47902); b = 0.9·(0.51, 0.98) + d = (-0.53151, 1.36102);
  // p = (0.949 + 0.053151, -2.098 - 0.136102) = (1.002151, -2.234102)
  require_values(sgd.state_dict()[1].second, {-0.53151, 1.36102}, 1e-14);
  require_values(p, {1.002151, -2.234102}, 1e-14);
}

TEST_CASE("SGD with Nesterov momentum and weight decay, two steps (hand-computed)", "[optim][sgd]") {
  auto p = parameter<double>({1.0, -2.0}, {2});
  SGD<double> sgd({{"p", p}}, SGDOptions{0.1, 0.9, true, 0.01});
  set_grad<double>(p, {0.5, 1.0});
  sgd.step();
  // d = (0.51, 0.98); b = d; d = d + 0.9·b = (0.969, 1.862); p = (1 - 0.0969, -2 - 0.1862)
  require_values(p, {0.9031, -2.1862}, 1e-14);
  set_grad<double>(p, {-1.0, 0.5});
  sgd.step();
  // d = g + 0.01·p = (-0.990969, 0.478138); b = 0.9·(0.51, 0.98) + d = (-0.531969, 1.360138);
  // d = d + 0.9·b = (-1.4697411, 1.7022622); p = (0.9031 + 0.14697411, -2.1862 - 0.17022622)
  require_values(p, {1.05007411, -2.35642622}, 1e-14);
  // (torch.optim.SGD gives the same four vectors for both variants.)
}

TEST_CASE("SGD: options are checked", "[optim][sgd]") {
  auto p = parameter<float>({1.0f}, {1});
  REQUIRE_THROWS_WITH(SGD<float>({{"p", p}}, SGDOptions{0.1, 0.0, true}), Catch::Contains("nesterov"));
  REQUIRE_THROWS_WITH(SGD<float>({{"p", p}}, SGDOptions{-1.0}), Catch::Contains("learning rate"));
  REQUIRE_THROWS_WITH(SGD<float>(NamedTensors<float>{}, SGDOptions{}), Catch::Contains("empty parameter list"));
  REQUIRE_THROWS_WITH(SGD<float>({{"p", p}, {"q", p}}, SGDOptions{}), Catch::Contains("same tensor"));
  auto q = parameter<float>({1.0f}, {1});
  REQUIRE_THROWS_WITH(SGD<float>({{"p", p}, {"p", q}}, SGDOptions{}), Catch::Contains("appears twice"));
}

TEST_CASE("optimiser skips parameters without a gradient; zero_grad keeps buffers; lr", "[optim]") {
  auto a = parameter<float>({1.0f, 2.0f}, {2});
  auto b = parameter<float>({3.0f}, {1});
  SGD<float> sgd({{"a", a}, {"b", b}}, SGDOptions{0.5});
  set_grad<float>(a, {1.0f, -1.0f});
  sgd.step();
  REQUIRE(a.to_vector() == std::vector<float>{0.5f, 2.5f});
  REQUIRE(b.to_vector() == std::vector<float>{3.0f});  // no gradient: untouched

  sgd.zero_grad();
  REQUIRE(a.grad().defined());
  REQUIRE(a.grad().to_vector() == std::vector<float>{0.0f, 0.0f});
  REQUIRE_FALSE(b.grad().defined());
  sgd.zero_grad(/*set_to_none=*/true);
  REQUIRE_FALSE(a.grad().defined());

  REQUIRE(sgd.lr() == 0.5);
  sgd.set_lr(0.25);
  REQUIRE(sgd.lr() == 0.25);
  for (const auto& group : sgd.param_groups()) REQUIRE(group.lr == 0.25);
  REQUIRE_THROWS(sgd.set_lr(std::numeric_limits<double>::quiet_NaN()));
}

TEST_CASE("the flat parallel update touches every element of every parameter exactly once", "[optim]") {
  // Sizes around the parallel grain (2^15) and zero-size / one-element parameters in between.
  const std::vector<int64_t> sizes{100003, 1, 0, 32768, 7, 40000};
  NamedTensors<float> params;
  std::vector<std::vector<float>> before, grads;
  cct::Generator gen(5);
  for (size_t i = 0; i < sizes.size(); ++i) {
    Tensor<float> p = Tensor<float>::uniform({sizes[i]}, -1, 1, gen);
    p.requires_grad_();
    Tensor<float> g = Tensor<float>::uniform({sizes[i]}, -1, 1, gen);
    p.set_grad(g);
    before.push_back(p.to_vector());
    grads.push_back(g.to_vector());
    params.emplace_back("p" + std::to_string(i), p);
  }
  SGD<float> sgd(params, SGDOptions{0.5});
  sgd.step();
  for (size_t i = 0; i < sizes.size(); ++i) {
    const float* data = params[i].second.data();
    for (int64_t k = 0; k < sizes[i]; ++k)
      if (data[k] != before[i][k] + -0.5f * grads[i][k]) FAIL("parameter " << i << " element " << k);
  }
}

// ---- AdamW ----------------------------------------------------------------------------------------

// Expected values: /usr/bin/python3 with torch 1.13 (float64), torch.optim.AdamW(lr=0.1, betas=(0.9,
// 0.999), eps=1e-8) on w = [[0.5, -1, 2], [0, 0.25, -0.75]], b = [0.1, -0.2, 0.3]; gradients of step t
// (t = 0, 1, 2) from reference_grad: w.grad = reference_grad(6, t, 0.1).reshape(2, 3), b.grad =
// reference_grad(3, t, 1.0); printed with repr() after 3 steps. The "with decay" run uses groups
// [{"params": [b], "weight_decay": 0}, {"params": [w], "weight_decay": 0.1}] and sets b.grad = None in
// step t = 1 (so b is updated twice, with bias corrections for its own steps 1 and 2).
TEST_CASE("AdamW without weight decay matches torch.optim.AdamW over 3 steps", "[optim][adamw]") {
  const std::vector<double> expected_w{0.30755515435138137, -0.9092218403138375,  1.8484025438190301,
                                       0.10968345642116306, 0.10745961137699787, -0.6340315804596565};
  const std::vector<double> expected_b{-0.03552036734908718, -0.07534831283517524, 0.16926311061954225};
  auto run = [&](auto zero) {
    using T = decltype(zero);
    auto w = parameter<T>({0.5, -1.0, 2.0, 0.0, 0.25, -0.75}, {2, 3});
    auto b = parameter<T>({0.1, -0.2, 0.3}, {3});
    AdamW<T> adamw({{"w", w}, {"b", b}}, AdamWOptions{0.1, 0.9, 0.999, 1e-8, 0.0});
    for (int t = 0; t < 3; ++t) {
      set_grad<T>(w, reference_grad<T>(6, t, 0.1));
      set_grad<T>(b, reference_grad<T>(3, t, 1.0));
      adamw.step();
    }
    const double tolerance = std::is_same_v<T, double> ? 1e-13 : 2e-6;
    require_values(w, expected_w, tolerance);
    require_values(b, expected_b, tolerance);
  };
  SECTION("double") { run(0.0); }
  SECTION("float") { run(0.0f); }
}

TEST_CASE("AdamW with decoupled weight decay and a skipped step matches torch.optim.AdamW", "[optim][adamw]") {
  const std::vector<double> expected_w{0.2949609911583475,  -0.8813481079598556, 1.7910286657849541,
                                       0.10780471598409587, 0.10202436133719787, -0.6136532747145406};
  const std::vector<double> expected_b{-0.10013477478252379, -0.00016648662211450616, 0.09992798596508196};
  auto run = [&](auto zero) {
    using T = decltype(zero);
    auto w = parameter<T>({0.5, -1.0, 2.0, 0.0, 0.25, -0.75}, {2, 3});
    auto b = parameter<T>({0.1, -0.2, 0.3}, {3});
    std::vector<ParamGroup<T>> groups{{{{"b", b}}, -1.0, 0.0}, {{{"w", w}}, -1.0, 0.1}};
    AdamW<T> adamw(groups, AdamWOptions{0.1, 0.9, 0.999, 1e-8, 0.5});  // 0.5: overridden by both groups
    REQUIRE(adamw.param_groups()[0].weight_decay == 0.0);
    REQUIRE(adamw.param_groups()[1].weight_decay == 0.1);
    REQUIRE(adamw.param_groups()[1].lr == 0.1);
    for (int t = 0; t < 3; ++t) {
      set_grad<T>(w, reference_grad<T>(6, t, 0.1));
      if (t == 1) b.clear_grad();
      else set_grad<T>(b, reference_grad<T>(3, t, 1.0));
      adamw.step();
    }
    const double tolerance = std::is_same_v<T, double> ? 1e-13 : 2e-6;
    require_values(w, expected_w, tolerance);
    require_values(b, expected_b, tolerance);
    // Per-parameter update counts: w stepped 3 times, b twice.
    for (const auto& [name, tensor] : adamw.state_dict()) {
      if (name == "optimizer.step") REQUIRE(tensor.item() == T(3));
      if (name == "optimizer.w.step") REQUIRE(tensor.item() == T(3));
      if (name == "optimizer.b.step") REQUIRE(tensor.item() == T(2));
    }
  };
  SECTION("double") { run(0.0); }
  SECTION("float") { run(0.0f); }
}

namespace {
// Random parameters (one above the parallel grain) with gradients that depend on the step.
struct AdamWRun {
  NamedTensors<float> params;
  explicit AdamWRun(uint64_t seed) {
    cct::Generator gen(seed);
    const std::vector<std::pair<std::string, Shape>> shapes{
        {"blocks.0.weight", {200, 210}}, {"blocks.0.bias", {200}}, {"pos", {1, 5, 3}}, {"scale", {}}};
    for (const auto& [name, shape] : shapes) {
      Tensor<float> p = Tensor<float>::uniform(shape, -1, 1, gen);
      p.requires_grad_();
      params.emplace_back(name, p);
    }
  }
  void set_grads(int step) {
    for (size_t i = 0; i < params.size(); ++i) {
      cct::Generator gen(1000 + 10 * step + i);
      params[i].second.set_grad(Tensor<float>::uniform(params[i].second.shape(), -1, 1, gen));
    }
  }
  std::unique_ptr<AdamW<float>> make_optimizer() const {
    return std::make_unique<AdamW<float>>(param_groups_no_decay_for_1d(params, 0.05),
                                          AdamWOptions{1e-2, 0.9, 0.999, 1e-8, 0.0});
  }
};
}  // namespace

TEST_CASE("AdamW state_dict round trip resumes bit for bit", "[optim][adamw][state]") {
  AdamWRun uninterrupted(3);
  auto reference = uninterrupted.make_optimizer();
  for (int step = 0; step < 5; ++step) {
    uninterrupted.set_grads(step);
    reference->step();
  }

  // Two steps, then "checkpoint" the parameters and the optimiser state (as copies).
  AdamWRun first(3);
  auto optimizer = first.make_optimizer();
  for (int step = 0; step < 2; ++step) {
    first.set_grads(step);
    optimizer->step();
  }
  NamedTensors<float> saved_state;
  for (const auto& [name, tensor] : optimizer->state_dict()) saved_state.emplace_back(name, tensor.clone());
  REQUIRE(saved_state.size() == 1 + 4 * 3);
  REQUIRE(saved_state[0].first == "optimizer.step");
  REQUIRE(saved_state[0].second.item() == 2.0f);
  REQUIRE(saved_state[0].second.dim() == 0);
  // Names follow the parameters, in group order (timm: no-decay group first).
  REQUIRE(saved_state[1].first == "optimizer.blocks.0.bias.exp_avg");
  REQUIRE(saved_state[2].first == "optimizer.blocks.0.bias.exp_avg_sq");
  REQUIRE(saved_state[3].first == "optimizer.blocks.0.bias.step");

  // A fresh run: parameters restored from the checkpoint, a new optimiser loading the state.
  AdamWRun resumed(99);  // different initial values, overwritten below
  for (size_t i = 0; i < resumed.params.size(); ++i) {
    cct::NoGradGuard no_grad;
    resumed.params[i].second.copy_(first.params[i].second);
  }
  auto fresh = resumed.make_optimizer();
  fresh->load_state_dict(saved_state);
  REQUIRE(fresh->step_count() == 2);
  for (int step = 2; step < 5; ++step) {
    resumed.set_grads(step);
    fresh->step();
  }
  for (size_t i = 0; i < resumed.params.size(); ++i) {
    INFO(resumed.params[i].first);
    REQUIRE(resumed.params[i].second.to_vector() == uninterrupted.params[i].second.to_vector());
  }
  const auto final_state = fresh->state_dict(), reference_state = reference->state_dict();
  REQUIRE(final_state.size() == reference_state.size());
  for (size_t i = 0; i < final_state.size(); ++i) {
    INFO(final_state[i].first);
    REQUIRE(final_state[i].first == reference_state[i].first);
    REQUIRE(final_state[i].second.to_vector() == reference_state[i].second.to_vector());
  }
}

TEST_CASE("optimiser load_state_dict is strict and names the problem", "[optim][state]") {
  AdamWRun run(4);
  auto optimizer = run.make_optimizer();
  run.set_grads(0);
  optimizer->step();
  NamedTensors<float> good;
  for (const auto& [name, tensor] : optimizer->state_dict()) good.emplace_back(name, tensor.clone());

  AdamWRun other(4);
  auto target = other.make_optimizer();
  const auto untouched = target->state_dict()[1].second.to_vector();

  SECTION("missing entry") {
    NamedTensors<float> state(good.begin(), good.end());
    state.erase(state.begin() + 2);
    REQUIRE_THROWS_WITH(target->load_state_dict(state), Catch::Contains("missing: 'optimizer.blocks.0.bias.exp_avg_sq'"));
  }
  SECTION("shape mismatch") {
    NamedTensors<float> state(good.begin(), good.end());
    state[1].second = Tensor<float>::zeros({7});
    REQUIRE_THROWS_WITH(target->load_state_dict(state),
                        Catch::Contains("shape mismatch for 'optimizer.blocks.0.bias.exp_avg'"));
  }
  SECTION("unexpected entry") {
    NamedTensors<float> state(good.begin(), good.end());
    state.emplace_back("optimizer.head.weight.exp_avg", Tensor<float>::zeros({2}));
    REQUIRE_THROWS_WITH(target->load_state_dict(state), Catch::Contains("unexpected: 'optimizer.head.weight.exp_avg'"));
  }
  SECTION("an SGD state into AdamW") {
    SGD<float> sgd(run.params, SGDOptions{0.1, 0.9});
    REQUIRE_THROWS_WITH(target->load_state_dict(sgd.state_dict()),
                        Catch::Contains("unexpected: 'optimizer.blocks.0.weight.momentum_buffer'"));
  }
  SECTION("a fractional step count") {
    NamedTensors<float> state(good.begin(), good.end());
    state[0].second = Tensor<float>::scalar(1.5f);
    REQUIRE_THROWS_WITH(target->load_state_dict(state), Catch::Contains("'optimizer.step' must hold"));
  }
  // Nothing was loaded by the failed attempt.
  REQUIRE(target->step_count() == 0);
  REQUIRE(target->state_dict()[1].second.to_vector() == untouched);
  // The good state loads, and a one-element (1,) tensor is accepted for a count.
  NamedTensors<float> state(good.begin(), good.end());
  state[0].second = Tensor<float>::from_vector({1.0f}, {1});
  target->load_state_dict(state);
  REQUIRE(target->step_count() == 1);
}

TEST_CASE("SGD momentum state round trip", "[optim][sgd][state]") {
  auto p = parameter<double>({1.0, -2.0}, {2});
  SGD<double> sgd({{"p", p}}, SGDOptions{0.1, 0.9, false, 0.01});
  set_grad<double>(p, {0.5, 1.0});
  sgd.step();
  const auto state = sgd.state_dict();
  REQUIRE(state.size() == 2);
  REQUIRE(state[1].first == "optimizer.p.momentum_buffer");

  auto q = parameter<double>({0.949, -2.098}, {2});  // p after the first step
  SGD<double> resumed({{"p", q}}, SGDOptions{0.1, 0.9, false, 0.01});
  resumed.load_state_dict(state);
  set_grad<double>(q, {-1.0, 0.5});
  resumed.step();
  require_values(q, {1.002151, -2.234102}, 1e-14);  // as the uninterrupted run above
}

// ---- parameter groups -------------------------------------------------------------------------------

namespace {
struct TinyLinear : cct::nn::Module<float> {
  TinyLinear(int64_t in, int64_t out) {
    register_parameter("weight", Tensor<float>::zeros({out, in}));
    register_parameter("bias", Tensor<float>::zeros({out}));
  }
};
struct TinyNorm : cct::nn::Module<float> {
  explicit TinyNorm(int64_t dim) {
    register_parameter("weight", Tensor<float>::ones({dim}));
    register_parameter("bias", Tensor<float>::zeros({dim}));
  }
};
struct TinyClassifier : cct::nn::Module<float> {
  TinyClassifier() {
    register_parameter("class_emb", Tensor<float>::ones({1, 1, 4}));
    register_parameter("positional_emb", Tensor<float>::ones({1, 3, 4}));
    register_parameter("sine_table", Tensor<float>::ones({1, 3, 4}), /*trainable=*/false);
    register_module("norm", std::make_shared<TinyNorm>(4));
    register_module("fc", std::make_shared<TinyLinear>(4, 2));
    register_module("pool", std::make_shared<TinyLinear>(4, 1));
    // A bias of rank 2 is still a bias (timm tests the name).
    auto odd = std::make_shared<cct::nn::Module<float>>();
    odd->register_parameter("bias", Tensor<float>::ones({2, 2}));
    register_module("odd", odd);
  }
};

std::vector<std::string> names_of(const ParamGroup<float>& group) {
  std::vector<std::string> out;
  for (const auto& entry : group.params) out.push_back(entry.first);
  return out;
}
}  // namespace

TEST_CASE("param_groups_no_decay_for_1d follows the reference recipe", "[optim][groups]") {
  TinyClassifier model;
  model.find_parameter("pool.weight").requires_grad_(false);  // frozen later: also skipped
  const auto groups = param_groups_no_decay_for_1d(model.named_parameters(), 0.06);
  REQUIRE(groups.size() == 2);
  REQUIRE(groups[0].weight_decay == 0.0);
  REQUIRE(groups[1].weight_decay == 0.06);
  REQUIRE(names_of(groups[0]) ==
          std::vector<std::string>{"norm.weight", "norm.bias", "fc.bias", "pool.bias", "odd.bias"});
  REQUIRE(names_of(groups[1]) == std::vector<std::string>{"class_emb", "positional_emb", "fc.weight"});

  // Through AdamW with zero gradients the Adam term is 0, so only the decoupled decay moves a
  // parameter: decayed ones shrink by (1 - lr·wd), the others and the frozen ones stay.
  AdamW<float> adamw(groups, AdamWOptions{0.5});
  for (auto& tensor : model.parameters()) tensor.set_grad(Tensor<float>::zeros_like(tensor));
  {
    cct::NoGradGuard no_grad;
    for (auto& tensor : model.parameters()) tensor.fill_(1.0f);
  }
  adamw.step();
  const float decayed = static_cast<float>(1.0 - 0.5 * 0.06);
  for (const auto& [name, tensor] : model.named_parameters()) {
    INFO(name);
    const bool decays = name == "class_emb" || name == "positional_emb" || name == "fc.weight";
    for (float v : tensor.to_vector()) REQUIRE(v == (decays ? decayed : 1.0f));
  }
}

// ---- clipping and finiteness ----------------------------------------------------------------------

TEST_CASE("clip_grad_norm_ returns the global norm and scales above max_norm", "[optim][clip]") {
  auto a = parameter<double>({0.0, 0.0}, {2});
  auto b = parameter<double>({0.0}, {1, 1});
  auto no_grad = parameter<double>({5.0}, {1});
  NamedTensors<double> params{{"a", a}, {"b", b}, {"c", no_grad}};
  set_grad<double>(a, {3.0, 4.0});
  set_grad<double>(b, {12.0});
  // ‖(3, 4, 12)‖ = √169 = 13.
  SECTION("below max_norm: unchanged") {
    REQUIRE(clip_grad_norm_(params, 20.0) == Approx(13.0).epsilon(1e-15));
    REQUIRE(a.grad().to_vector() == std::vector<double>{3.0, 4.0});
    REQUIRE(b.grad().to_vector() == std::vector<double>{12.0});
  }
  SECTION("above max_norm: scaled by max_norm / (norm + 1e-6)") {
    REQUIRE(clip_grad_norm_(params, 6.5) == Approx(13.0).epsilon(1e-15));
    const double scale = 6.5 / 13.000001;  // 0.49999996153846...
    require_values(a.grad(), {3.0 * scale, 4.0 * scale}, 1e-15);
    require_values(b.grad(), {12.0 * scale}, 1e-15);
    REQUIRE(clip_grad_norm_(params, 1e3) == Approx(6.5).epsilon(1e-6));  // the new norm
  }
  SECTION("no gradients at all") {
    REQUIRE(clip_grad_norm_(NamedTensors<double>{{"c", no_grad}}, 1.0) == 0.0);
  }
  REQUIRE_THROWS(clip_grad_norm_(params, 0.0));
}

TEST_CASE("clip_grad_norm_ over many blocks does not depend on the thread count", "[optim][clip]") {
  cct::Generator gen(11);
  auto make = [&] {
    auto p = Tensor<float>::zeros({100000});
    p.requires_grad_();
    return p;
  };
  std::vector<Tensor<float>> params{make(), make()};
  const Tensor<float> g0 = Tensor<float>::uniform({100000}, -1, 1, gen);
  const Tensor<float> g1 = Tensor<float>::uniform({100000}, -1, 1, gen);
  double expected_sq = 0.0;
  for (const auto* g : {&g0, &g1})
    for (float v : g->to_vector()) expected_sq += static_cast<double>(v) * v;
  const int saved = cct::num_threads();
  std::vector<double> norms;
  for (int threads : {1, 2}) {
    cct::set_num_threads(threads);
    params[0].set_grad(g0.clone());
    params[1].set_grad(g1.clone());
    norms.push_back(clip_grad_norm_(params, 1e9));
  }
  cct::set_num_threads(saved);
  REQUIRE(norms[0] == norms[1]);
  REQUIRE(norms[0] == Approx(std::sqrt(expected_sq)).epsilon(1e-12));
}

TEST_CASE("grads_finite names the first parameter with a NaN or infinite gradient", "[optim][clip]") {
  auto a = parameter<float>({0.0f, 0.0f}, {2});
  auto b = parameter<float>({0.0f, 0.0f, 0.0f}, {3});
  auto c = parameter<float>({0.0f}, {1});
  NamedTensors<float> params{{"a", a}, {"b", b}, {"c", c}};
  REQUIRE_FALSE(grads_finite(params).has_value());  // no gradients yet
  set_grad<float>(a, {1.0f, -0.0f});
  set_grad<float>(b, {1.0f, 2.0f, 3e38f});
  set_grad<float>(c, {-1e-38f});
  REQUIRE_FALSE(grads_finite(params).has_value());
  b.grad().data()[1] = std::numeric_limits<float>::quiet_NaN();
  c.grad().data()[0] = std::numeric_limits<float>::infinity();
  REQUIRE(grads_finite(params) == std::optional<std::string>("b"));
  b.grad().data()[1] = 0.0f;
  REQUIRE(grads_finite(params) == std::optional<std::string>("c"));
  c.grad().data()[0] = -std::numeric_limits<float>::infinity();
  REQUIRE(grads_finite(params) == std::optional<std::string>("c"));
}

// ---- schedule -------------------------------------------------------------------------------------

// Expected values from the formula in schedule.hpp, evaluated separately (python3 math): with base
// 1e-3, min 1e-6, warmup from 1e-5 over 10 steps, total 100, cooldown 5:
//   cosine at t/T = 0.1: 1e-6 + 0.5·(1e-3 − 1e-6)·(1 + cos(0.1π)) = 9.755527298894294e-4
//   t/T = 0.5: 5.005e-4;  t/T = 0.99: 1.2464730973170658e-6;  prefix, (t − w)/(T − w) = 1/90:
//   9.996957180960385e-4.
TEST_CASE("CosineSchedule: warmup, cosine and cooldown values (timm formulas)", "[optim][schedule]") {
  const CosineSchedule schedule{1e-3, 1e-5, 1e-6, 10, 100, 5};
  REQUIRE(schedule.num_steps() == 105);
  REQUIRE(schedule.lr_at(0) == Approx(1e-5).epsilon(1e-14));                  // start of warmup
  REQUIRE(schedule.lr_at(5) == Approx(5.05e-4).epsilon(1e-14));                // 1e-5 + 5·9.9e-5
  REQUIRE(schedule.lr_at(9) == Approx(9.01e-4).epsilon(1e-14));                // last warmup step
  REQUIRE(schedule.lr_at(10) == Approx(9.755527298894294e-4).epsilon(1e-14));  // end of warmup
  REQUIRE(schedule.lr_at(50) == Approx(5.005e-4).epsilon(1e-14));              // mid-cosine
  REQUIRE(schedule.lr_at(99) == Approx(1.2464730973170658e-6).epsilon(1e-12)); // last cosine step
  for (int64_t t : {100, 101, 104, 105, 1000}) REQUIRE(schedule.lr_at(t) == 1e-6);  // cooldown and after

  // Monotonic pieces: rising through the warmup, falling through the cosine.
  for (int64_t t = 1; t < 10; ++t) REQUIRE(schedule.lr_at(t) > schedule.lr_at(t - 1));
  for (int64_t t = 11; t <= 100; ++t) REQUIRE(schedule.lr_at(t) < schedule.lr_at(t - 1));
  for (int64_t t = 0; t < 105; ++t) {
    REQUIRE(schedule.lr_at(t) <= 1e-3);
    REQUIRE(schedule.lr_at(t) >= 1e-6);
  }

  SECTION("warmup_prefix: the cosine starts at base_lr after the warmup") {
    CosineSchedule prefixed = schedule;
    prefixed.warmup_prefix = true;
    REQUIRE(prefixed.lr_at(5) == schedule.lr_at(5));
    REQUIRE(prefixed.lr_at(10) == Approx(1e-3).epsilon(1e-14));
    REQUIRE(prefixed.lr_at(11) == Approx(9.996957180960385e-4).epsilon(1e-14));
    REQUIRE(prefixed.lr_at(55) == Approx(5.005e-4).epsilon(1e-14));
    REQUIRE(prefixed.lr_at(100) == 1e-6);
    for (int64_t t = 11; t <= 100; ++t) REQUIRE(prefixed.lr_at(t) < prefixed.lr_at(t - 1));
  }
  SECTION("per_iteration scales every length") {
    const CosineSchedule iterations = schedule.per_iteration(4);
    REQUIRE(iterations.num_steps() == 420);
    REQUIRE(iterations.lr_at(20) == Approx(schedule.lr_at(5)).epsilon(1e-14));
    REQUIRE(iterations.lr_at(200) == Approx(schedule.lr_at(50)).epsilon(1e-14));
    REQUIRE(iterations.lr_at(22) > schedule.lr_at(5));  // moves within an epoch
  }
  SECTION("no warmup") {
    const CosineSchedule plain{1e-3, 1e-5, 0.0, 0, 100};
    REQUIRE(plain.lr_at(0) == 1e-3);
    REQUIRE(plain.lr_at(50) == Approx(5e-4).epsilon(1e-14));
    REQUIRE(plain.lr_at(100) == 0.0);
  }
  SECTION("the reference's current recipe: 300 epochs + 10 cooldown") {
    const CosineSchedule recipe{5.5e-4, 1e-5, 1e-5, 10, 300, 10};
    REQUIRE(recipe.num_steps() == 310);
    REQUIRE(recipe.lr_at(0) == 1e-5);
    REQUIRE(recipe.lr_at(10) < 5.5e-4);  // timm's cosine already ran 10 of its 300 epochs
    REQUIRE(recipe.lr_at(10) == Approx(1e-5 + 0.5 * 5.4e-4 * (1 + std::cos(3.14159265358979323846 / 30))).epsilon(1e-14));
    REQUIRE(recipe.lr_at(305) == 1e-5);
  }
  SECTION("invalid settings are errors") {
    REQUIRE_THROWS_WITH(schedule.lr_at(-1), Catch::Contains("step must be >= 0"));
    CosineSchedule bad = schedule;
    bad.warmup_steps = 200;
    REQUIRE_THROWS_WITH(bad.lr_at(0), Catch::Contains("warmup_steps"));
    bad = schedule;
    bad.total_steps = 0;
    REQUIRE_THROWS_WITH(bad.lr_at(0), Catch::Contains("total_steps"));
  }
}

TEST_CASE("CosineSchedule::constant and driving an optimiser", "[optim][schedule]") {
  const CosineSchedule constant = CosineSchedule::constant(3e-4);
  for (int64_t t : {0, 1, 10, 100000}) REQUIRE(constant.lr_at(t) == 3e-4);

  auto p = parameter<float>({1.0f}, {1});
  SGD<float> sgd({{"p", p}}, SGDOptions{1.0});
  const CosineSchedule schedule{1e-1, 1e-2, 1e-3, 2, 10, 2};
  for (int64_t epoch = 0; epoch < schedule.num_steps(); ++epoch) {
    sgd.set_lr(schedule.lr_at(epoch));
    REQUIRE(sgd.lr() == schedule.lr_at(epoch));
  }
  REQUIRE(sgd.lr() == 1e-3);
}
