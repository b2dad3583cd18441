// AdamW<T>: Adam with decoupled weight decay, the update of torch.optim.AdamW (amsgrad off).
//
// Per parameter p with gradient g, learning rate η, weight decay λ (the group's), betas β1, β2,
// and t this parameter's update count (1 at its first update):
//   p = p · (1 − η·λ)                          (decoupled decay, applied before the Adam step)
//   m = β1·m + (1 − β1)·g
//   v = β2·v + (1 − β2)·g²
//   p = p − (η / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
// The moments start at zero (as in PyTorch). Scalars are computed in double and the element update in
// T, in the order PyTorch's single-tensor implementation uses, so float results agree with it to
// rounding. The element loop is written with Eigen arrays because they vectorise the square root
// (a plain std::sqrt loop does not, as long as sqrt may set errno).
#pragma once

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "../autograd/grad_mode.hpp"
#include "../config.hpp"
#include "optimizer.hpp"

namespace cct::optim {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // PyTorch's AdamW default; for groups that do not set their own
};

template <typename T = float>
class AdamW : public Optimizer<T> {
 public:
  // One group holding every parameter given (e.g. module.named_parameters()).
  AdamW(const NamedTensors<T>& params, AdamWOptions options = {})
      : AdamW(std::vector<ParamGroup<T>>{ParamGroup<T>{params, -1.0, -1.0}}, options) {}
  AdamW(std::vector<ParamGroup<T>> groups, AdamWOptions options = {})
      : Optimizer<T>(std::move(groups), options.lr, options.weight_decay), options_(options) {
    CCT_CHECK(options.beta1 >= 0.0 && options.beta1 < 1.0, "AdamW: beta1 must be in [0, 1), got ", options.beta1);
    CCT_CHECK(options.beta2 >= 0.0 && options.beta2 < 1.0, "AdamW: beta2 must be in [0, 1), got ", options.beta2);
    CCT_CHECK(options.eps >= 0.0, "AdamW: eps must be >= 0, got ", options.eps);
    coefficients_.resize(this->entries_.size());
  }

  std::string type_name() const override { return "AdamW"; }
  const AdamWOptions& options() const { return options_; }

  void step() override {
    NoGradGuard no_grad;
    this->begin_step();
    // Per-parameter scalars, before the parallel loop (update counts differ between parameters that
    // missed a step).
    for (size_t i = 0; i < this->entries_.size(); ++i) {
      if (!this->active_[i]) continue;
      const ParamGroup<T>& group = this->groups_[this->entries_[i].group];
      const double t = static_cast<double>(this->param_steps_[i]);
      Coefficients& c = coefficients_[i];
      c.decay = static_cast<T>(1.0 - group.lr * group.weight_decay);
      c.neg_step_size = static_cast<T>(-group.lr / (1.0 - std::pow(options_.beta1, t)));
      c.bias_correction2_sqrt = static_cast<T>(std::sqrt(1.0 - std::pow(options_.beta2, t)));
    }
    const T beta1 = static_cast<T>(options_.beta1), beta2 = static_cast<T>(options_.beta2);
    const T one_minus_beta1 = static_cast<T>(1.0 - options_.beta1);
    const T one_minus_beta2 = static_cast<T>(1.0 - options_.beta2);
    const T eps = static_cast<T>(options_.eps);
    this->for_each_active_range([&](size_t i, int64_t begin, int64_t end) {
      const Coefficients c = coefficients_[i];
      T* param = this->entries_[i].param.data();
      const T* grad = this->grad_data_[i];
      T* exp_avg = this->state_[i][0].data();
      T* exp_avg_sq = this->state_[i][1].data();
      using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
      const int64_t n = end - begin;
      Eigen::Map<Array> p(param + begin, n), m(exp_avg + begin, n), v(exp_avg_sq + begin, n);
      const Eigen::Map<const Array> g(grad + begin, n);
      p *= c.decay;
      m = m * beta1 + one_minus_beta1 * g;
      v = v * beta2 + one_minus_beta2 * g.square();
      p += c.neg_step_size * (m / (v.sqrt() / c.bias_correction2_sqrt + eps));
    });
  }

 protected:
  std::vector<std::string> state_slots() const override { return {"exp_avg", "exp_avg_sq"}; }
  bool uses_param_steps() const override { return true; }

 private:
  struct Coefficients {
    T decay = T(1);
    T neg_step_size = T(0);
    T bias_correction2_sqrt = T(1);
  };

  AdamWOptions options_;
  std::vector<Coefficients> coefficients_;  // per entry, refreshed each step
};

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPTIM_ADAMW_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class AdamW<T>;
CCT_FOR_FLOATING_TYPES(CCT_OPTIM_ADAMW_TEMPLATES)
#undef CCT_OPTIM_ADAMW_TEMPLATES
#endif

}  // namespace cct::optim
