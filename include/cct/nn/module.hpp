// Module<T>: the base of every layer and model: named parameters, buffers and children, dotted names,
// the state dict, train/eval mode and gradient housekeeping.
//
// Names and order follow PyTorch exactly, because checkpoints and the reference models' parameter
// names (classifier.blocks.0.self_attn.qkv.weight, ...) are keyed by them:
//  - named_modules(): depth first, self first (""), children in registration order, each module once.
//  - named_parameters() / named_buffers(): for each module of named_modules(), its own tensors in
//    registration order; a tensor reachable under two names (weight tying) is listed once.
//  - state_dict(): per module its own parameters, then its own persistent buffers, then each child
//    recursively, whatever order parameters and children were registered in (PyTorch's
//    `_save_to_state_dict` rule). Shared tensors appear under every name, as in PyTorch.
// A frozen parameter (trainable = false, e.g. a fixed sine positional table) is still a parameter:
// it is in the state dict under its reference name, as nn.Parameter(requires_grad=False) is. Whether a
// parameter is trainable is its tensor's requires_grad(), so freezing later with requires_grad_(false)
// (on the tensor or on a whole subtree) is seen by trainable_parameters() and num_parameters().
//
// Modules are created with std::make_shared and never copied; a parent holds its children by
// std::shared_ptr. Tensors are handles, so a layer keeps the reference register_parameter returns
// (or a copy of the handle) and load_state_dict writes into the same storage.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "../autograd/grad_mode.hpp"
#include "../config.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "layer_description.hpp"

namespace cct::nn {

// (dotted name, tensor) pairs in state-dict order: what state_dict() returns and load_state_dict takes.
template <typename T>
using NamedTensors = std::vector<std::pair<std::string, Tensor<T>>>;

// What a non-strict load_state_dict left out.
struct ShapeMismatch {
  std::string name;
  Shape expected;  // the module's tensor
  Shape got;       // the state dict's tensor
};
struct LoadReport {
  std::vector<std::string> missing_keys;     // in the module, absent from the state dict: left as they were
  std::vector<std::string> unexpected_keys;  // in the state dict, not in the module: ignored
  std::vector<ShapeMismatch> mismatched;     // in both with different shapes: left as they were
  int64_t loaded = 0;                        // tensors copied
  bool complete() const { return missing_keys.empty() && unexpected_keys.empty() && mismatched.empty(); }
};

template <typename T>
class Module {
  static_assert(std::is_floating_point_v<T>, "Module<T>: T is float (training) or double (gradient checks)");

 public:
  using value_type = T;
  using ModulePtr = std::shared_ptr<Module<T>>;

  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = delete;
  Module& operator=(Module&&) = delete;

  // The class name shown in summaries and error messages ("Linear", "CCT", ...).
  virtual std::string type_name() const { return "Module"; }
  // Extra text inside the parentheses of repr(), e.g. "in_features=128, out_features=10".
  virtual std::string extra_repr() const { return ""; }

  // What the model summary (models/summary.hpp) shows for this module given the shape of its input
  // (batch first): the output shape and the MACs of its own computation, computed from shapes alone.
  // A module with children describes each through `children.child(name, input)`; a layer checks the
  // input with CCT_CHECK_SHAPE (the summary adds the module's name to the message). The default knows
  // nothing: the output is unknown ("?") and the children are listed with unknown shapes.
  virtual LayerDescription describe(const Shape& input, Describer<T>& children) const {
    (void)input;
    (void)children;
    return {};
  }

  // ---- registration -----------------------------------------------------------------------------
  // Adds a parameter. A trainable one is marked requires_grad; a frozen one is marked not to, and is
  // still saved and loaded. The tensor must be a leaf (detach() a computed one first). The returned
  // reference stays valid for the module's lifetime.
  Tensor<T>& register_parameter(std::string name, Tensor<T> tensor, bool trainable = true) {
    check_new_name(name, "register_parameter");
    CCT_CHECK(tensor.defined(), type_name(), ".register_parameter('", name, "'): the tensor is undefined");
    CCT_CHECK(tensor.is_leaf(), type_name(), ".register_parameter('", name,
              "'): a parameter must be a leaf tensor, but this one was produced by an op; detach() it first");
    tensor.requires_grad_(trainable);
    parameters_.push_back({std::move(name), std::move(tensor), true});
    return parameters_.back().tensor;
  }

  // Adds a buffer: state that is not trained (running statistics, masks, fixed tables). Persistent
  // buffers are part of the state dict; non-persistent ones are not (caches that are recomputed).
  Tensor<T>& register_buffer(std::string name, Tensor<T> tensor, bool persistent = true) {
    check_new_name(name, "register_buffer");
    CCT_CHECK(tensor.defined(), type_name(), ".register_buffer('", name, "'): the tensor is undefined");
    CCT_CHECK(!tensor.requires_grad(), type_name(), ".register_buffer('", name,
              "'): a buffer must not require grad; use register_parameter for a tensor that is trained, "
              "or detach() it");
    buffers_.push_back({std::move(name), std::move(tensor), persistent});
    return buffers_.back().tensor;
  }

  // Adds a child module; its tensors get the prefix "name.". Returns the same pointer, typed.
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<Module<T>, M>, "register_module: M must derive from cct::nn::Module<T>");
    check_new_name(name, "register_module");
    CCT_CHECK(module != nullptr, type_name(), ".register_module('", name, "'): the module is null");
    for (const auto& entry : module->named_modules())
      CCT_CHECK(entry.second != this, type_name(), ".register_module('", name,
                "'): the module contains this module (registering it would make a cycle)");
    children_.push_back({std::move(name), module});
    return module;
  }

  // ---- queries ----------------------------------------------------------------------------------
  // Depth first, self first with name `prefix` (""), each module once even if registered twice.
  std::vector<std::pair<std::string, Module<T>*>> named_modules(const std::string& prefix = "") {
    std::vector<std::pair<std::string, Module<T>*>> out;
    std::unordered_set<const Module<T>*> seen;
    collect_modules(prefix, out, seen);
    return out;
  }
  std::vector<std::pair<std::string, const Module<T>*>> named_modules(const std::string& prefix = "") const {
    std::vector<std::pair<std::string, Module<T>*>> all = const_cast<Module*>(this)->named_modules(prefix);
    return {all.begin(), all.end()};
  }

  std::vector<std::pair<std::string, ModulePtr>> named_children() const {
    std::vector<std::pair<std::string, ModulePtr>> out;
    for (const auto& child : children_) out.emplace_back(child.name, child.module);
    return out;
  }

  // The parameters with dotted names ("blocks.0.fc.weight"): own ones only when recurse is false.
  // The tensors are the module's own handles, so gradients and requires_grad are visible through them.
  NamedTensors<T> named_parameters(bool recurse = true) const { return collect_tensors(&Module::parameters_, recurse); }
  std::vector<Tensor<T>> parameters(bool recurse = true) const { return values(named_parameters(recurse)); }
  // The parameters an optimiser should update (requires_grad), in the same order.
  std::vector<Tensor<T>> trainable_parameters(bool recurse = true) const {
    std::vector<Tensor<T>> out;
    for (const auto& entry : named_parameters(recurse))
      if (entry.second.requires_grad()) out.push_back(entry.second);
    return out;
  }
  // All buffers, persistent or not.
  NamedTensors<T> named_buffers(bool recurse = true) const { return collect_tensors(&Module::buffers_, recurse); }
  std::vector<Tensor<T>> buffers(bool recurse = true) const { return values(named_buffers(recurse)); }

  // Element count of the (distinct) parameters, or of the trainable ones only.
  int64_t num_parameters(bool trainable_only = false) const {
    int64_t total = 0;
    for (const auto& entry : named_parameters())
      if (!trainable_only || entry.second.requires_grad()) total += entry.second.numel();
    return total;
  }

  // Parameters and persistent buffers in PyTorch's state-dict order (see the header comment). The
  // tensors are detached handles sharing the module's storage: clone() them for a snapshot.
  NamedTensors<T> state_dict() const {
    NamedTensors<T> out;
    append_state(std::string(), out);
    return out;
  }

  // ---- lookups ----------------------------------------------------------------------------------
  // Own tensors and children by plain name.
  Tensor<T>& parameter(const std::string& name) { return find_entry(parameters_, name, "parameter").tensor; }
  const Tensor<T>& parameter(const std::string& name) const {
    return const_cast<Module*>(this)->parameter(name);
  }
  Tensor<T>& buffer(const std::string& name) { return find_entry(buffers_, name, "buffer").tensor; }
  const Tensor<T>& buffer(const std::string& name) const { return const_cast<Module*>(this)->buffer(name); }
  ModulePtr child(const std::string& name) const {
    for (const auto& entry : children_)
      if (entry.name == name) return entry.module;
    throw Error(detail::concat(type_name(), ": no child module '", name, "' (children: ",
                               join_names(children_), ")"));
  }
  // The child, cast to its concrete type (error if it is another type).
  template <class M>
  std::shared_ptr<M> child_as(const std::string& name) const {
    auto typed = std::dynamic_pointer_cast<M>(child(name));
    CCT_CHECK(typed != nullptr, type_name(), ": child '", name, "' is a ", child(name)->type_name(),
              ", not the requested type");
    return typed;
  }
  bool has_parameter(const std::string& name) const { return find_or_null(parameters_, name) != nullptr; }
  bool has_buffer(const std::string& name) const { return find_or_null(buffers_, name) != nullptr; }
  bool has_child(const std::string& name) const {
    for (const auto& entry : children_)
      if (entry.name == name) return true;
    return false;
  }

  // By dotted path from this module: find_module("classifier.blocks.0"), find_parameter(
  // "classifier.fc.weight"). "" is this module. Errors name the segment that was not found.
  Module<T>& find_module(const std::string& path) {
    Module<T>* current = this;
    std::string walked;
    size_t start = 0;
    while (!path.empty()) {
      const size_t dot = path.find('.', start);
      const std::string segment = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      CCT_CHECK(!segment.empty(), type_name(), ": malformed module path '", path, "' (empty segment)");
      CCT_CHECK(current->has_child(segment), type_name(), ": no module '", path, "': ",
                walked.empty() ? "this " + current->type_name() : "'" + walked + "' (" + current->type_name() + ")",
                " has no child '", segment, "' (children: ", join_names(current->children_), ")");
      current = current->child(segment).get();
      walked += (walked.empty() ? "" : ".") + segment;
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    return *current;
  }
  Tensor<T>& find_parameter(const std::string& path) {
    auto [owner, leaf] = split_path(path, "parameter");
    Module<T>& module = find_module(owner);
    CCT_CHECK(module.has_parameter(leaf), type_name(), ": no parameter '", path, "': ",
              owner.empty() ? "this module" : "'" + owner + "'", " (", module.type_name(),
              ") has parameters: ", join_names(module.parameters_));
    return module.parameter(leaf);
  }
  Tensor<T>& find_buffer(const std::string& path) {
    auto [owner, leaf] = split_path(path, "buffer");
    Module<T>& module = find_module(owner);
    CCT_CHECK(module.has_buffer(leaf), type_name(), ": no buffer '", path, "': ",
              owner.empty() ? "this module" : "'" + owner + "'", " (", module.type_name(),
              ") has buffers: ", join_names(module.buffers_));
    return module.buffer(leaf);
  }
  const Module<T>& find_module(const std::string& path) const { return const_cast<Module*>(this)->find_module(path); }
  const Tensor<T>& find_parameter(const std::string& path) const {
    return const_cast<Module*>(this)->find_parameter(path);
  }
  const Tensor<T>& find_buffer(const std::string& path) const { return const_cast<Module*>(this)->find_buffer(path); }

  // ---- modes and gradients ----------------------------------------------------------------------
  // Training mode (dropout, drop-path active) for this module and every descendant.
  Module& train(bool on = true) {
    training_ = on;
    for (auto& child : children_) child.module->train(on);
    return *this;
  }
  Module& eval() { return train(false); }
  bool is_training() const { return training_; }

  // Zeroes every parameter's gradient, keeping the buffers so the next backward does not allocate;
  // with set_to_none the gradients are dropped instead (undefined until the next backward).
  void zero_grad(bool set_to_none = false) {
    for (auto& tensor : parameters()) {
      if (set_to_none) tensor.clear_grad();
      else tensor.zero_grad();
    }
  }

  // Marks every parameter of the subtree trainable or frozen (e.g. freeze a pretrained backbone).
  // As in PyTorch, `true` also unfreezes parameters registered frozen (a sine table): prefer
  // requires_grad_ on the individual tensors when the subtree holds any.
  Module& requires_grad_(bool trainable = true) {
    for (auto& tensor : parameters()) tensor.requires_grad_(trainable);
    return *this;
  }

  // Calls fn on every module of the subtree, children before their parent (PyTorch's apply order),
  // e.g. to re-initialise every layer of one type.
  Module& apply(const std::function<void(Module<T>&)>& fn) {
    for (auto& child : children_) child.module->apply(fn);
    fn(*this);
    return *this;
  }

  // ---- loading ----------------------------------------------------------------------------------
  // Copies values from `state` into this module's parameters and persistent buffers (matched by
  // dotted name; order does not matter). Strict: any missing, unexpected or shape-mismatched tensor is
  // an error naming each of them, and nothing is copied. Non-strict: copies what matches and returns
  // what was skipped. (Unlike PyTorch, a shape mismatch is skipped rather than fatal when not strict,
  // so a model with a new head can take every other tensor of a pretrained one.)
  LoadReport load_state_dict(const NamedTensors<T>& state, bool strict = true) {
    const NamedTensors<T> own = state_dict();
    LoadReport report;
    std::vector<std::pair<Tensor<T>, Tensor<T>>> copies;  // (destination, source)

    std::unordered_map<std::string, const Tensor<T>*> given;
    for (const auto& entry : state) {
      CCT_CHECK(given.emplace(entry.first, &entry.second).second, "load_state_dict: '", entry.first,
                "' appears more than once in the state dict");
      CCT_CHECK(entry.second.defined(), "load_state_dict: '", entry.first, "' is an undefined tensor");
    }
    std::unordered_set<std::string> known;
    for (const auto& mine : own) {
      known.insert(mine.first);
      const auto found = given.find(mine.first);
      if (found == given.end()) report.missing_keys.push_back(mine.first);
      else if (found->second->shape() != mine.second.shape())
        report.mismatched.push_back({mine.first, mine.second.shape(), found->second->shape()});
      else
        copies.emplace_back(mine.second, *found->second);
    }
    for (const auto& entry : state)
      if (!known.count(entry.first)) report.unexpected_keys.push_back(entry.first);

    if (strict && !report.complete()) throw Error(describe_problems(report));
    NoGradGuard no_grad;
    for (auto& [destination, source] : copies) destination.copy_(source);
    report.loaded = static_cast<int64_t>(copies.size());
    return report;
  }

  // A PyTorch-style tree: "Net(\n  (blocks): ModuleList(\n    (0): Block(...)\n  )\n)".
  std::string repr() const {
    const std::string extra = extra_repr();
    if (children_.empty()) return type_name() + "(" + extra + ")";
    std::string out = type_name() + "(\n";
    if (!extra.empty()) out += indent(extra) + "\n";
    for (const auto& child : children_)
      out += indent("(" + child.name + "): " + child.module->repr()) + "\n";
    return out + ")";
  }

 private:
  struct TensorEntry {
    std::string name;
    Tensor<T> tensor;
    bool persistent;  // buffers only; parameters are always saved
  };
  struct ChildEntry {
    std::string name;
    ModulePtr module;
  };

  void check_new_name(const std::string& name, const char* what) const {
    CCT_CHECK(!name.empty(), type_name(), ".", what, ": the name is empty");
    CCT_CHECK(name.find('.') == std::string::npos, type_name(), ".", what, "('", name,
              "'): a name may not contain '.' (dots separate the levels of a dotted name)");
    const char* taken = find_or_null(parameters_, name) ? "a parameter"
                        : find_or_null(buffers_, name) ? "a buffer"
                        : has_child(name)              ? "a child module"
                                                       : nullptr;
    CCT_CHECK(taken == nullptr, type_name(), ".", what, "('", name, "'): the name is already used by ", taken,
              " of this module");
  }

  static const TensorEntry* find_or_null(const std::deque<TensorEntry>& entries, const std::string& name) {
    for (const auto& entry : entries)
      if (entry.name == name) return &entry;
    return nullptr;
  }
  TensorEntry& find_entry(std::deque<TensorEntry>& entries, const std::string& name, const char* what) {
    for (auto& entry : entries)
      if (entry.name == name) return entry;
    throw Error(detail::concat(type_name(), ": no ", what, " '", name, "' (", what, "s: ", join_names(entries),
                               name.find('.') != std::string::npos ? "; use find_" + std::string(what) +
                                                                         " for a dotted path"
                                                                   : std::string(),
                               ")"));
  }

  template <class Entries>
  static std::string join_names(const Entries& entries) {
    if (entries.empty()) return "none";
    std::string out;
    for (const auto& entry : entries) out += (out.empty() ? "" : ", ") + entry.name;
    return out;
  }

  static std::pair<std::string, std::string> split_path(const std::string& path, const char* what) {
    CCT_CHECK(!path.empty(), "find_", what, ": the path is empty");
    const size_t dot = path.rfind('.');
    if (dot == std::string::npos) return {std::string(), path};
    return {path.substr(0, dot), path.substr(dot + 1)};
  }

  void collect_modules(const std::string& prefix, std::vector<std::pair<std::string, Module<T>*>>& out,
                       std::unordered_set<const Module<T>*>& seen) {
    if (!seen.insert(this).second) return;
    out.emplace_back(prefix, this);
    for (auto& child : children_)
      child.module->collect_modules(prefix.empty() ? child.name : prefix + "." + child.name, out, seen);
  }

  NamedTensors<T> collect_tensors(std::deque<TensorEntry> Module::*member, bool recurse) const {
    NamedTensors<T> out;
    std::unordered_set<const void*> seen;  // tensor identity: a tied weight is listed once
    auto add_own = [&](const std::string& prefix, const Module<T>& module) {
      for (const auto& entry : module.*member)
        if (seen.insert(entry.tensor.impl().get()).second)
          out.emplace_back(prefix.empty() ? entry.name : prefix + "." + entry.name, entry.tensor);
    };
    if (!recurse) {
      add_own(std::string(), *this);
      return out;
    }
    for (const auto& [prefix, module] : named_modules()) add_own(prefix, *module);
    return out;
  }

  static std::vector<Tensor<T>> values(const NamedTensors<T>& named) {
    std::vector<Tensor<T>> out;
    out.reserve(named.size());
    for (const auto& entry : named) out.push_back(entry.second);
    return out;
  }

  void append_state(const std::string& prefix, NamedTensors<T>& out) const {
    const auto full = [&](const std::string& name) { return prefix.empty() ? name : prefix + "." + name; };
    for (const auto& entry : parameters_) out.emplace_back(full(entry.name), entry.tensor.detach());
    for (const auto& entry : buffers_)
      if (entry.persistent) out.emplace_back(full(entry.name), entry.tensor.detach());
    for (const auto& child : children_) child.module->append_state(full(child.name), out);
  }

  std::string describe_problems(const LoadReport& report) const {
    std::string out = "load_state_dict (strict) into " + type_name() + " failed:";
    if (!report.missing_keys.empty()) {
      out += "\n  missing from the state dict:";
      for (const auto& name : report.missing_keys) out += " '" + name + "'";
    }
    if (!report.unexpected_keys.empty()) {
      out += "\n  unexpected in the state dict:";
      for (const auto& name : report.unexpected_keys) out += " '" + name + "'";
    }
    for (const auto& mismatch : report.mismatched)
      out += "\n  shape mismatch for '" + mismatch.name + "': the module has " + shape_str(mismatch.expected) +
             ", the state dict has " + shape_str(mismatch.got);
    return out + "\n(nothing was loaded; pass strict = false to load the tensors that match)";
  }

  static std::string indent(const std::string& text) {
    std::string out = "  ";
    for (char c : text) {
      out += c;
      if (c == '\n') out += "  ";
    }
    return out;
  }

  std::deque<TensorEntry> parameters_;  // a deque keeps the references register_* returned valid
  std::deque<TensorEntry> buffers_;
  std::vector<ChildEntry> children_;
  bool training_ = true;
};

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_NN_MODULE_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class Module<T>;
CCT_FOR_FLOATING_TYPES(CCT_NN_MODULE_TEMPLATES)
#undef CCT_NN_MODULE_TEMPLATES
#endif

}  // namespace cct::nn
