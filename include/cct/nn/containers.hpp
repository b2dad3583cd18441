// Containers and parameter-free layers: UnaryModule (one tensor in, one out), Sequential, ModuleList,
// and the ReLU, GELU and Identity modules that wrap the activation ops.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../core/tensor.hpp"
#include "../ops/activation.hpp"
#include "module.hpp"

namespace cct::nn {

// A module computing one tensor from one tensor; what Sequential chains.
template <typename T>
class UnaryModule : public Module<T> {
 public:
  virtual Tensor<T> forward(const Tensor<T>& x) = 0;
  Tensor<T> operator()(const Tensor<T>& x) { return forward(x); }
};

// Applies its modules in order; they are children "0", "1", ... (so an inner Conv2d of the third
// block of a Sequential named "conv_layers" has weight "conv_layers.2.0.weight"). Empty, it is the identity.
template <typename T>
class Sequential : public UnaryModule<T> {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<UnaryModule<T>>> modules) {
    for (auto& module : modules) push_back(std::move(module));
  }

  // Appends a module and returns it, typed, so the caller can keep a handle to it.
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<UnaryModule<T>, M>, "Sequential::push_back: M must derive from UnaryModule<T>");
    CCT_CHECK(module != nullptr, "Sequential::push_back: the module is null");
    this->register_module(std::to_string(modules_.size()), module);
    modules_.push_back(module);
    return module;
  }

  Tensor<T> forward(const Tensor<T>& x) override {
    Tensor<T> out = x;
    for (auto& module : modules_) out = module->forward(out);
    return out;
  }

  int64_t size() const { return static_cast<int64_t>(modules_.size()); }
  bool empty() const { return modules_.empty(); }
  const std::shared_ptr<UnaryModule<T>>& operator[](int64_t index) const {
    CCT_CHECK(index >= 0 && index < size(), "Sequential: index ", index, " is out of range for ", size(),
              " modules");
    return modules_[static_cast<size_t>(index)];
  }
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }

  std::string type_name() const override { return "Sequential"; }
  LayerDescription describe(const Shape& input, Describer<T>& children) const override {
    std::optional<Shape> x = input;
    for (size_t i = 0; i < modules_.size(); ++i) x = children.child(std::to_string(i), x);
    return {x};
  }

 private:
  std::vector<std::shared_ptr<UnaryModule<T>>> modules_;
};

// Holds modules that the owner calls itself (e.g. the encoder blocks); children "0" .. "n-1".
// `Element` narrows what it holds, so operator[] and iteration give that type directly; with the
// default (any Module<T>) use at<M>(i) for typed access.
template <typename T, typename Element = Module<T>>
class ModuleList : public Module<T> {
  static_assert(std::is_base_of_v<Module<T>, Element>, "ModuleList: Element must derive from Module<T>");

 public:
  ModuleList() = default;
  explicit ModuleList(std::vector<std::shared_ptr<Element>> modules) {
    for (auto& module : modules) push_back(std::move(module));
  }

  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<Element, M>, "ModuleList::push_back: M must derive from the list's Element type");
    CCT_CHECK(module != nullptr, "ModuleList::push_back: the module is null");
    this->register_module(std::to_string(modules_.size()), module);
    modules_.push_back(module);
    return module;
  }

  int64_t size() const { return static_cast<int64_t>(modules_.size()); }
  bool empty() const { return modules_.empty(); }
  const std::shared_ptr<Element>& operator[](int64_t index) const { return modules_[checked_index(index)]; }
  // Element i as its concrete type M; an error names both types when it is not an M.
  template <class M>
  std::shared_ptr<M> at(int64_t index) const {
    const auto& module = modules_[checked_index(index)];
    auto typed = std::dynamic_pointer_cast<M>(module);
    CCT_CHECK(typed != nullptr, "ModuleList::at<M>(", index, "): element ", index, " is a ",
              module->type_name(), ", not the requested type");
    return typed;
  }
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }

  std::string type_name() const override { return "ModuleList"; }
  // For the summary the elements run one after another, as cct's owners use them (encoder blocks,
  // tokenizer blocks).
  LayerDescription describe(const Shape& input, Describer<T>& children) const override {
    std::optional<Shape> x = input;
    for (size_t i = 0; i < modules_.size(); ++i) x = children.child(std::to_string(i), x);
    return {x};
  }

 private:
  size_t checked_index(int64_t index) const {
    CCT_CHECK(index >= 0 && index < size(), "ModuleList: index ", index, " is out of range for ", size(),
              " modules");
    return static_cast<size_t>(index);
  }

  std::vector<std::shared_ptr<Element>> modules_;
};

template <typename T>
class ReLU : public UnaryModule<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override { return cct::relu(x); }
  std::string type_name() const override { return "ReLU"; }
  LayerDescription describe(const Shape& input, Describer<T>&) const override { return {input}; }
};

// Exact (erf) GELU, as the reference encoder's MLP uses.
template <typename T>
class GELU : public UnaryModule<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override { return cct::gelu(x); }
  std::string type_name() const override { return "GELU"; }
  LayerDescription describe(const Shape& input, Describer<T>&) const override { return {input}; }
};

// Returns its input (the same handle): a placeholder where a layer is optional.
template <typename T>
class Identity : public UnaryModule<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override { return x; }
  std::string type_name() const override { return "Identity"; }
  LayerDescription describe(const Shape& input, Describer<T>&) const override { return {input}; }
};

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_NN_CONTAINERS_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class UnaryModule<T>; \
  CCT_EXTERN_TEMPLATE class Sequential<T>; \
  CCT_EXTERN_TEMPLATE class ReLU<T>; \
  CCT_EXTERN_TEMPLATE class GELU<T>; \
  CCT_EXTERN_TEMPLATE class Identity<T>;
CCT_FOR_FLOATING_TYPES(CCT_NN_CONTAINERS_TEMPLATES)
#undef CCT_NN_CONTAINERS_TEMPLATES
#endif

}  // namespace cct::nn
