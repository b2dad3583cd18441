// Optimizer<T>: the base of cct's optimisers: parameter groups, the flat parallel update loop, and the
// optimiser's state dict (for checkpoints that resume training bit for bit).
//
// Parameters are held by name ("classifier.fc.weight"), so the state can be saved under stable names:
//   optimizer.step                       number of step() calls (0-d tensor)
//   optimizer.<param name>.<slot>        a state tensor of the parameter's shape (exp_avg, ...)
//   optimizer.<param name>.step          the parameter's own update count (0-d), for optimisers whose
//                                        update depends on it (AdamW's bias correction)
// The state is allocated once, zero-filled, for every parameter of every group, the first time it is
// needed (step(), state_dict() or load_state_dict()); a step then allocates nothing. A zero state is
// exactly PyTorch's "no state yet" for the update rules here (see sgd.hpp and adamw.hpp).
//
// Like PyTorch, a step skips every parameter whose gradient is undefined (never reached by backward,
// or cleared), and runs under NoGradGuard, updating the parameters' storage in place.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "../autograd/grad_mode.hpp"
#include "../config.hpp"
#include "../core/parallel.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"

namespace cct::optim {

// (name, tensor) pairs: the same type as cct::nn::NamedTensors<T>, so Module::named_parameters() and
// Module::state_dict() results pass straight in.
template <typename T>
using NamedTensors = std::vector<std::pair<std::string, Tensor<T>>>;

// A group of parameters sharing a learning rate and a weight decay. A negative value means "the
// optimiser's default" (the lr / weight_decay of its options), resolved when the optimiser is built.
template <typename T = float>
struct ParamGroup {
  NamedTensors<T> params;
  double lr = -1.0;
  double weight_decay = -1.0;
};

// The reference recipe's split (timm's add_weight_decay, as the CCT training script uses it): weight
// decay for every parameter of rank >= 2, including the (1, N, D) positional embedding and the
// (1, 1, D) class token; none for biases (a name ending in "bias") and for parameters of rank 0 or 1
// (LayerNorm weights). Frozen parameters (requires_grad false) are left out entirely. Returns two
// groups in timm's order, {no decay (weight_decay 0), decay (weight_decay)}, both with the
// optimiser's default lr; either may be empty.
template <typename T>
std::vector<ParamGroup<T>> param_groups_no_decay_for_1d(const NamedTensors<T>& named_parameters,
                                                        double weight_decay) {
  CCT_CHECK(weight_decay >= 0.0 && std::isfinite(weight_decay),
            "param_groups_no_decay_for_1d: weight_decay must be finite and >= 0, got ", weight_decay);
  ParamGroup<T> no_decay, decay;
  no_decay.weight_decay = 0.0;
  decay.weight_decay = weight_decay;
  for (const auto& [name, tensor] : named_parameters) {
    CCT_CHECK(tensor.defined(), "param_groups_no_decay_for_1d: parameter '", name, "' is undefined");
    if (!tensor.requires_grad()) continue;
    const bool is_bias = name == "bias" || (name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0);
    if (is_bias || tensor.dim() <= 1) no_decay.params.emplace_back(name, tensor);
    else decay.params.emplace_back(name, tensor);
  }
  return {std::move(no_decay), std::move(decay)};
}

template <typename T = float>
class Optimizer {
  static_assert(std::is_floating_point_v<T>, "Optimizer<T>: T is float or double");

 public:
  using value_type = T;

  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient.
  virtual void step() = 0;
  // "SGD", "AdamW": used in error messages.
  virtual std::string type_name() const = 0;

  // Zeroes every parameter's gradient, keeping its buffer (or drops it with set_to_none).
  void zero_grad(bool set_to_none = false) {
    for (const Entry& entry : entries_) {
      if (set_to_none) entry.param.clear_grad();
      else entry.param.zero_grad();
    }
  }

  // The learning rate of every group (what a schedule sets each step or epoch).
  void set_lr(double lr) {
    check_lr(lr);
    for (auto& group : groups_) group.lr = lr;
  }
  // The first group's learning rate (all groups share it unless set otherwise at construction).
  double lr() const { return groups_.front().lr; }

  const std::vector<ParamGroup<T>>& param_groups() const { return groups_; }
  // step() calls so far (restored by load_state_dict).
  int64_t step_count() const { return step_count_; }

  // The state under the names in the header comment, in parameter order after "optimizer.step". State
  // tensors are handles sharing the optimiser's storage (as Module::state_dict): clone() them for a
  // snapshot that later steps do not change. Step counts are exact in float up to 2^24 steps.
  NamedTensors<T> state_dict() const {
    ensure_state();
    NamedTensors<T> out;
    out.emplace_back("optimizer.step", count_tensor(step_count_, "optimizer.step"));
    const std::vector<std::string> slots = state_slots();
    for (size_t i = 0; i < entries_.size(); ++i) {
      const std::string prefix = "optimizer." + entries_[i].name + ".";
      for (size_t s = 0; s < slots.size(); ++s) out.emplace_back(prefix + slots[s], state_[i][s].detach());
      if (uses_param_steps()) out.emplace_back(prefix + "step", count_tensor(param_steps_[i], prefix + "step"));
    }
    return out;
  }

  // Restores a state_dict() of an optimiser of the same type over the same parameters (same names and
  // shapes). Strict: every expected entry must be present with its shape and nothing else may be;
  // otherwise an error names each missing, unexpected or mismatched entry and nothing is loaded.
  // Learning rates and weight decays are not part of the state (the schedule sets the lr).
  void load_state_dict(const NamedTensors<T>& state) {
    ensure_state();
    std::unordered_map<std::string, const Tensor<T>*> given;
    for (const auto& [name, tensor] : state) {
      CCT_CHECK(given.emplace(name, &tensor).second, type_name(), "::load_state_dict: '", name,
                "' appears more than once");
      CCT_CHECK(tensor.defined(), type_name(), "::load_state_dict: '", name, "' is an undefined tensor");
    }
    // Every entry this optimiser saves, with its shape; a count ("...step", shape ()) may also come as
    // any one-element tensor.
    struct Expected {
      std::string name;
      Shape shape;
      bool is_count;
    };
    std::vector<Expected> expected;
    expected.push_back({"optimizer.step", Shape{}, true});
    const std::vector<std::string> slots = state_slots();
    for (const Entry& entry : entries_) {
      for (const auto& slot : slots) expected.push_back({"optimizer." + entry.name + "." + slot, entry.param.shape(), false});
      if (uses_param_steps()) expected.push_back({"optimizer." + entry.name + ".step", Shape{}, true});
    }
    std::string problems;
    std::unordered_set<std::string> known;
    for (const auto& [name, shape, is_count] : expected) {
      known.insert(name);
      const auto found = given.find(name);
      if (found == given.end()) {
        problems += "\n  missing: '" + name + "'";
      } else if (is_count ? found->second->numel() != 1 : found->second->shape() != shape) {
        problems += "\n  shape mismatch for '" + name + "': expected " + shape_str(shape) + ", got " +
                    shape_str(found->second->shape());
      } else if (is_count) {
        const double value = static_cast<double>(found->second->item());
        if (!(value >= 0.0 && value == std::floor(value)))
          problems += "\n  '" + name + "' must hold a non-negative whole number, got " + std::to_string(value);
      }
    }
    for (const auto& [name, tensor] : state)
      if (!known.count(name)) problems += "\n  unexpected: '" + name + "'";
    CCT_CHECK(problems.empty(), type_name(), "::load_state_dict (strict) failed:", problems,
              "\n(nothing was loaded)");

    step_count_ = static_cast<int64_t>(given.at("optimizer.step")->item());
    for (size_t i = 0; i < entries_.size(); ++i) {
      const std::string prefix = "optimizer." + entries_[i].name + ".";
      for (size_t s = 0; s < slots.size(); ++s) state_[i][s].copy_(*given.at(prefix + slots[s]));
      if (uses_param_steps()) param_steps_[i] = static_cast<int64_t>(given.at(prefix + "step")->item());
    }
  }

 protected:
  struct Entry {
    std::string name;
    Tensor<T> param;
    size_t group;
    int64_t offset;  // first element in the flat concatenation of all parameters
  };

  // Checks the groups, fills in default lr / weight decay, and lays the parameters out flat.
  Optimizer(std::vector<ParamGroup<T>> groups, double default_lr, double default_weight_decay)
      : groups_(std::move(groups)) {
    check_lr(default_lr);
    check_weight_decay(default_weight_decay);
    std::unordered_set<std::string> names;
    std::unordered_set<const void*> tensors;
    for (size_t g = 0; g < groups_.size(); ++g) {
      ParamGroup<T>& group = groups_[g];
      if (group.lr < 0) group.lr = default_lr;
      if (group.weight_decay < 0) group.weight_decay = default_weight_decay;
      check_lr(group.lr);
      check_weight_decay(group.weight_decay);
      for (const auto& [name, param] : group.params) {
        CCT_CHECK(param.defined(), "optimizer: parameter '", name, "' is undefined");
        CCT_CHECK(param.is_leaf(), "optimizer: parameter '", name, "' is not a leaf tensor (it was produced by an op)");
        CCT_CHECK(!name.empty(), "optimizer: a parameter has an empty name");
        CCT_CHECK(names.insert(name).second, "optimizer: parameter name '", name,
                  "' appears twice (the state is saved by name, so names must be unique)");
        CCT_CHECK(tensors.insert(param.impl().get()).second, "optimizer: parameter '", name,
                  "' is the same tensor as an earlier parameter (listed twice)");
        entries_.push_back({name, param, g, total_numel_});
        total_numel_ += param.numel();
      }
    }
    CCT_CHECK(!entries_.empty(), "optimizer: got an empty parameter list");
    active_.assign(entries_.size(), 0);
    grad_data_.assign(entries_.size(), nullptr);
  }

  // State tensors per parameter, in this order (e.g. {"exp_avg", "exp_avg_sq"}); may be empty.
  virtual std::vector<std::string> state_slots() const = 0;
  // Whether each parameter keeps its own update count ("optimizer.<name>.step").
  virtual bool uses_param_steps() const { return false; }

  // Allocates the zero state once (every slot, every parameter).
  void ensure_state() const {
    if (state_ready_) return;
    const size_t slot_count = state_slots().size();
    state_.assign(entries_.size(), {});
    for (size_t i = 0; i < entries_.size(); ++i)
      for (size_t s = 0; s < slot_count; ++s) state_[i].push_back(Tensor<T>::zeros(entries_[i].param.shape()));
    param_steps_.assign(entries_.size(), 0);
    state_ready_ = true;
  }

  // Marks which parameters take part in this step (those with a defined gradient of the right size)
  // and counts the step. Called by step() under NoGradGuard before the element loop.
  void begin_step() {
    ensure_state();
    ++step_count_;
    for (size_t i = 0; i < entries_.size(); ++i) {
      const Tensor<T> grad = entries_[i].param.grad();
      active_[i] = grad.defined() ? 1 : 0;
      grad_data_[i] = active_[i] ? grad.data() : nullptr;
      if (!active_[i]) continue;
      CCT_CHECK_SHAPE(grad.numel() == entries_[i].param.numel(), type_name(), "::step: the gradient of '",
                      entries_[i].name, "' has shape ", shape_str(grad.shape()), " but the parameter has ",
                      shape_str(entries_[i].param.shape()));
      ++param_steps_[i];
    }
  }

  // Calls fn(entry_index, begin, end) over element ranges of the active parameters, splitting the
  // flat concatenation of all parameters evenly across threads (small parameters share a thread).
  template <typename Fn>
  void for_each_active_range(Fn&& fn) const {
    parallel_for(0, total_numel_, 1 << 15, [&](int64_t begin, int64_t end) {
      // The entry holding element `begin`: the last one whose offset is <= begin.
      size_t i = static_cast<size_t>(
          std::upper_bound(entries_.begin(), entries_.end(), begin,
                           [](int64_t value, const Entry& entry) { return value < entry.offset; }) -
          entries_.begin() - 1);
      for (; i < entries_.size() && entries_[i].offset < end; ++i) {
        if (!active_[i]) continue;
        const int64_t first = std::max(begin, entries_[i].offset) - entries_[i].offset;
        const int64_t last = std::min(end, entries_[i].offset + entries_[i].param.numel()) - entries_[i].offset;
        if (first < last) fn(i, first, last);
      }
    });
  }

  static void check_lr(double lr) {
    CCT_CHECK(lr >= 0.0 && std::isfinite(lr), "optimizer: the learning rate must be finite and >= 0, got ", lr);
  }
  static void check_weight_decay(double weight_decay) {
    CCT_CHECK(weight_decay >= 0.0 && std::isfinite(weight_decay),
              "optimizer: weight_decay must be finite and >= 0, got ", weight_decay);
  }

  std::vector<ParamGroup<T>> groups_;
  std::vector<Entry> entries_;
  int64_t total_numel_ = 0;
  int64_t step_count_ = 0;
  std::vector<char> active_;         // per entry, this step
  std::vector<const T*> grad_data_;  // per entry, this step (null when inactive)
  // Allocated on first use, which a const state_dict() may be.
  mutable std::vector<std::vector<Tensor<T>>> state_;  // [entry][slot]
  mutable std::vector<int64_t> param_steps_;           // [entry]
  mutable bool state_ready_ = false;

 private:
  static Tensor<T> count_tensor(int64_t count, const std::string& name) {
    if constexpr (std::is_same_v<T, float>)
      CCT_CHECK(count <= (int64_t(1) << 24), "optimizer state_dict: '", name, "' = ", count,
                " cannot be stored exactly in a float tensor");
    return Tensor<T>::scalar(static_cast<T>(count));
  }
};

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_OPTIM_OPTIMIZER_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class Optimizer<T>; \
  CCT_EXTERN_TEMPLATE std::vector<ParamGroup<T>> param_groups_no_decay_for_1d<T>(const NamedTensors<T>&, double);
CCT_FOR_FLOATING_TYPES(CCT_OPTIM_OPTIMIZER_TEMPLATES)
#undef CCT_OPTIM_OPTIMIZER_TEMPLATES
#endif

}  // namespace cct::optim
