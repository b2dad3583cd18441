// Parameter initialisers (PyTorch's nn.init): constant, normal, uniform, truncated normal, Kaiming and
// Xavier, all in place, outside the graph, and drawn from an explicit Generator so that a model built
// from the same seed has the same weights on every run and thread count.
#pragma once

#include <cmath>
#include <cstdint>

#include "../autograd/grad_mode.hpp"
#include "../config.hpp"
#include "../core/generator.hpp"
#include "../core/scoped_flag.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"

namespace cct::nn::init {

// ---- fans -----------------------------------------------------------------------------------------
// For a weight (out, in, k1, k2, ...): the receptive field is k1·k2·...; fan_in = in·receptive field,
// fan_out = out·receptive field. A Linear weight (out, in) has receptive field 1.
inline int64_t receptive_field(const Shape& shape) {
  CCT_CHECK_SHAPE(shape.size() >= 2, "init: fan in and fan out need a weight of rank >= 2 (out, in, ...), got shape ",
                  shape_str(shape));
  int64_t field = 1;
  for (size_t d = 2; d < shape.size(); ++d) field *= shape[d];
  return field;
}
inline int64_t fan_in(const Shape& shape) {
  const int64_t field = receptive_field(shape);  // checks the rank before shape[1] is read
  return shape[1] * field;
}
inline int64_t fan_out(const Shape& shape) {
  const int64_t field = receptive_field(shape);  // checks the rank first
  return shape[0] * field;
}

// Which fan Kaiming scales by: fan_in keeps the forward activations' variance, fan_out the gradients'.
enum class FanMode { fan_in, fan_out };

// The recommended gain for ReLU-family layers: sqrt(2 / (1 + negative_slope²)) (sqrt(2) for ReLU).
inline double leaky_relu_gain(double negative_slope = 0.0) {
  return std::sqrt(2.0 / (1.0 + negative_slope * negative_slope));
}

namespace detail {
inline int64_t selected_fan(const Shape& shape, FanMode mode, const char* op) {
  const int64_t fan = mode == FanMode::fan_in ? fan_in(shape) : fan_out(shape);
  CCT_CHECK_SHAPE(fan > 0, op, ": the fan of shape ", shape_str(shape), " is zero");
  return fan;
}
// Φ, the standard normal CDF.
inline double normal_cdf(double x) { return 0.5 * (1.0 + std::erf(x * 0.70710678118654752440)); }
}  // namespace detail

// ---- constants ------------------------------------------------------------------------------------
template <typename T>
const Tensor<T>& constant_(const Tensor<T>& tensor, double value) {
  NoGradGuard no_grad;
  tensor.fill_(static_cast<T>(value));
  return tensor;
}
template <typename T>
const Tensor<T>& zeros_(const Tensor<T>& tensor) { return constant_(tensor, 0.0); }
template <typename T>
const Tensor<T>& ones_(const Tensor<T>& tensor) { return constant_(tensor, 1.0); }

// ---- skipping initialisation -----------------------------------------------------------------------
namespace detail {
inline bool& skip_init_flag() {
  thread_local bool skip = false;  // per thread, as grad mode
  return skip;
}
}  // namespace detail

inline bool is_init_skipped() { return detail::skip_init_flag(); }

// RAII, PyTorch's skip_init: within its scope the random initialisers below (normal_, uniform_,
// trunc_normal_ and the Kaiming and Xavier ones built on them) leave their tensors as they are (zeros
// for new parameters) and draw nothing. For a model whose weights are loaded next, or whose structure
// alone is wanted (parameter counts, names, shapes, MACs): drawing 22M normals for cct_14_7x2_384 costs
// more than building it. Constant initialisers and computed tables (the sine embedding) still run. The
// generator does not advance, so what is drawn after the scope differs from a build that initialised.
class SkipInitGuard : ScopedFlag {
 public:
  SkipInitGuard() : ScopedFlag(detail::skip_init_flag(), true) {}
};

// ---- random -----------------------------------------------------------------------------------------
// N(mean, std²).
template <typename T>
const Tensor<T>& normal_(const Tensor<T>& tensor, double mean, double std, Generator& gen) {
  CCT_CHECK(std >= 0 && std::isfinite(std) && std::isfinite(mean), "init::normal_: needs a finite mean and std >= 0, got mean ",
            mean, ", std ", std);
  if (is_init_skipped()) return tensor;
  NoGradGuard no_grad;
  gen.fill_normal(tensor.data(), tensor.numel(), mean, std);
  return tensor;
}

// U[low, high).
template <typename T>
const Tensor<T>& uniform_(const Tensor<T>& tensor, double low, double high, Generator& gen) {
  CCT_CHECK(low <= high && std::isfinite(low) && std::isfinite(high), "init::uniform_: needs finite low <= high, got [",
            low, ", ", high, ")");
  if (is_init_skipped()) return tensor;
  NoGradGuard no_grad;
  gen.fill_uniform(tensor.data(), tensor.numel(), low, high);
  return tensor;
}

// N(mean, std²) restricted to [a, b]: every value is drawn normally and redrawn until it lies in
// [a, b] (checked on the stored, rounded value, so float tensors respect the bounds too). The first
// draws are those normal_ would make, so when nothing falls outside (the reference's ±2 bounds on
// std 0.02) the result equals normal_'s; redraws then come serially in element order, which keeps the
// result deterministic for a given generator state and independent of the thread count.
template <typename T>
const Tensor<T>& trunc_normal_(const Tensor<T>& tensor, double mean, double std, double a, double b, Generator& gen) {
  CCT_CHECK(a < b, "init::trunc_normal_: needs a < b, got [", a, ", ", b, "]");
  CCT_CHECK(std >= 0 && std::isfinite(std) && std::isfinite(mean), "init::trunc_normal_: needs a finite mean and std >= 0, got mean ",
            mean, ", std ", std);
  if (std == 0) {
    CCT_CHECK(a <= mean && mean <= b, "init::trunc_normal_: std is 0 and the mean ", mean, " lies outside [", a,
              ", ", b, "]");
    return constant_(tensor, mean);
  }
  // Rejection needs about 1/mass draws per value; below 1% mass that is slow and almost surely a mistake.
  const double mass = detail::normal_cdf((b - mean) / std) - detail::normal_cdf((a - mean) / std);
  CCT_CHECK(mass >= 0.01, "init::trunc_normal_: [", a, ", ", b, "] holds only ", mass, " of the mass of N(", mean,
            ", ", std, "²); resampling would be too slow (is the mean more than 2 std outside the bounds?)");
  if (is_init_skipped()) return tensor;
  NoGradGuard no_grad;
  gen.fill_normal(tensor.data(), tensor.numel(), mean, std);
  T* values = tensor.data();
  const auto inside = [&](T v) { return static_cast<double>(v) >= a && static_cast<double>(v) <= b; };
  for (int64_t i = 0; i < tensor.numel(); ++i)
    while (!inside(values[i])) values[i] = static_cast<T>(mean + std * gen.normal());
  return tensor;
}

// ---- scaled by the fan ----------------------------------------------------------------------------
// Kaiming (He) normal, PyTorch's defaults: std = gain / sqrt(fan) with gain = sqrt(2 / (1 + slope²)),
// i.e. std = sqrt(2 / fan_in) for a ReLU layer. The reference CCT initialises its conv weights so.
template <typename T>
const Tensor<T>& kaiming_normal_(const Tensor<T>& tensor, Generator& gen, double negative_slope = 0.0,
                                 FanMode mode = FanMode::fan_in) {
  const int64_t fan = detail::selected_fan(tensor.shape(), mode, "init::kaiming_normal_");
  return normal_(tensor, 0.0, leaky_relu_gain(negative_slope) / std::sqrt(static_cast<double>(fan)), gen);
}

// Kaiming uniform: U(±gain·sqrt(3 / fan)), the same variance as kaiming_normal_. With
// negative_slope = sqrt(5) it is PyTorch's default initialisation of nn.Linear and nn.Conv2d weights.
template <typename T>
const Tensor<T>& kaiming_uniform_(const Tensor<T>& tensor, Generator& gen, double negative_slope = 0.0,
                                  FanMode mode = FanMode::fan_in) {
  const int64_t fan = detail::selected_fan(tensor.shape(), mode, "init::kaiming_uniform_");
  const double bound = leaky_relu_gain(negative_slope) * std::sqrt(3.0 / static_cast<double>(fan));
  return uniform_(tensor, -bound, bound, gen);
}

// Xavier (Glorot) uniform: U(±gain·sqrt(6 / (fan_in + fan_out))).
template <typename T>
const Tensor<T>& xavier_uniform_(const Tensor<T>& tensor, Generator& gen, double gain = 1.0) {
  const int64_t fans = fan_in(tensor.shape()) + fan_out(tensor.shape());
  CCT_CHECK_SHAPE(fans > 0, "init::xavier_uniform_: the fans of shape ", shape_str(tensor.shape()), " are zero");
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(fans));
  return uniform_(tensor, -bound, bound, gen);
}

}  // namespace cct::nn::init
