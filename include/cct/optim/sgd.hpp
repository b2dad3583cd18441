// SGD<T>: stochastic gradient descent with momentum, Nesterov momentum and coupled weight decay,
// the update of torch.optim.SGD (dampening 0).
//
// Per parameter p with gradient g, momentum μ, weight decay λ (the group's), learning rate η:
//   d = g + λ·p                        (coupled decay: it passes through the momentum)
//   b = μ·b + d                        (momentum buffer; PyTorch starts it at b = d, which is the same
//                                       as starting from the zero buffer kept here)
//   d = d + μ·b  (Nesterov)   or   d = b   (classic)      (skipped when μ = 0)
//   p = p − η·d
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "../autograd/grad_mode.hpp"
#include "../config.hpp"
#include "optimizer.hpp"

namespace cct::optim {

struct SGDOptions {
  double lr = 1e-2;
  double momentum = 0.0;
  bool nesterov = false;      // needs momentum > 0
  double weight_decay = 0.0;  // default for groups that do not set their own
};

template <typename T = float>
class SGD : public Optimizer<T> {
 public:
  // One group holding every parameter given (e.g. module.named_parameters()).
  SGD(const NamedTensors<T>& params, SGDOptions options = {})
      : SGD(std::vector<ParamGroup<T>>{ParamGroup<T>{params, -1.0, -1.0}}, options) {}
  SGD(std::vector<ParamGroup<T>> groups, SGDOptions options = {})
      : Optimizer<T>(std::move(groups), options.lr, options.weight_decay), options_(options) {
    CCT_CHECK(options.momentum >= 0.0 && options.momentum < 1.0 + 1e-12, "SGD: momentum must be in [0, 1], got ",
              options.momentum);
    CCT_CHECK(!options.nesterov || options.momentum > 0.0, "SGD: nesterov momentum needs momentum > 0");
  }

  std::string type_name() const override { return "SGD"; }
  const SGDOptions& options() const { return options_; }

  void step() override {
    NoGradGuard no_grad;
    this->begin_step();
    const bool use_momentum = options_.momentum != 0.0;
    const bool nesterov = options_.nesterov;
    const T momentum = static_cast<T>(options_.momentum);
    this->for_each_active_range([&](size_t i, int64_t begin, int64_t end) {
      const ParamGroup<T>& group = this->groups_[this->entries_[i].group];
      const T weight_decay = static_cast<T>(group.weight_decay);
      const T neg_lr = static_cast<T>(-group.lr);
      T* param = this->entries_[i].param.data();
      const T* grad = this->grad_data_[i];
      T* buffer = use_momentum ? this->state_[i][0].data() : nullptr;
      for (int64_t k = begin; k < end; ++k) {
        T direction = grad[k];
        if (weight_decay != T(0)) direction += weight_decay * param[k];
        if (use_momentum) {
          buffer[k] = momentum * buffer[k] + direction;
          direction = nesterov ? direction + momentum * buffer[k] : buffer[k];
        }
        param[k] += neg_lr * direction;
      }
    });
  }

 protected:
  std::vector<std::string> state_slots() const override {
    if (options_.momentum != 0.0) return {"momentum_buffer"};
    return {};
  }

 private:
  SGDOptions options_;
};

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPTIM_SGD_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class SGD<T>;
CCT_FOR_FLOATING_TYPES(CCT_OPTIM_SGD_TEMPLATES)
#undef CCT_OPTIM_SGD_TEMPLATES
#endif

}  // namespace cct::optim
