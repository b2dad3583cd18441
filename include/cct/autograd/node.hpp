// Node: one recorded op in the autograd graph, and `record`, the call by which an op creates it.
//
// A node holds (1) one edge per input of the op: the node that produced that input, or the leaf
// tensor that wants a gradient, or nothing; (2) the op's backward function, a closure that owns exactly
// the tensors its backward needs (always detached, so a node never keeps another graph alive through
// them); (3) the gradient flowing into the op's output, accumulated over all of its consumers.
// The engine frees (2) and (3) as soon as the node's backward has run.
#pragma once

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "../core/shape.hpp"
#include "grad_mode.hpp"

namespace cct {
template <typename T>
class Tensor;
namespace detail {
template <typename T>
struct TensorImpl;
}
}  // namespace cct

namespace cct::autograd {

template <typename T>
struct Node;

template <typename T>
using GradList = std::vector<Tensor<T>>;

// Which inputs of an op need a gradient; backward functions may skip the others.
using NeedsGrad = std::vector<bool>;

template <typename T>
using BackwardFn = std::function<GradList<T>(const Tensor<T>& grad_output, const NeedsGrad& needs)>;

template <typename T>
struct Edge {
  std::shared_ptr<Node<T>> node;                  // input produced by an op ...
  std::shared_ptr<detail::TensorImpl<T>> leaf;    // ... or a leaf that requires grad ...
  bool active() const { return node || leaf; }   // ... or neither: no gradient flows there
};

template <typename T>
struct Node {
  const char* name = "";        // the op, for error messages
  std::vector<Edge<T>> inputs;
  std::vector<Shape> input_shapes;
  Shape output_shape;
  BackwardFn<T> backward;
  Tensor<T> grad_output;         // accumulated during the backward pass

  void release() {
    backward = nullptr;
    grad_output = Tensor<T>();
  }

  // Dropping the last handle of a long chain would recurse once per node; unlink iteratively instead.
  ~Node() {
    std::vector<std::shared_ptr<Node>> pending;
    for (auto& edge : inputs)
      if (edge.node) pending.push_back(std::move(edge.node));
    while (!pending.empty()) {
      std::shared_ptr<Node> node = std::move(pending.back());
      pending.pop_back();
      if (node.use_count() == 1)
        for (auto& edge : node->inputs)
          if (edge.node) pending.push_back(std::move(edge.node));
    }
  }
};

// True when an op on these inputs must record a node.
template <typename T>
bool any_requires_grad(std::initializer_list<const Tensor<T>*> inputs) {
  if (!is_grad_enabled()) return false;
  for (const Tensor<T>* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

// Records `output` as produced by op `name` from `inputs` (undefined tensors allowed, e.g. no bias).
// Does nothing when grad mode is off or no input requires grad, so ops call it unconditionally;
// build the closure only when `any_requires_grad` says so if capturing is costly.
template <typename T>
void record(const char* name, Tensor<T>& output, const std::vector<Tensor<T>>& inputs, BackwardFn<T> backward) {
  if (!is_grad_enabled()) return;
  bool needed = false;
  for (const auto& t : inputs) needed = needed || (t.defined() && t.requires_grad());
  if (!needed) return;

  auto node = std::make_shared<Node<T>>();
  node->name = name;
  node->inputs.reserve(inputs.size());
  for (const auto& t : inputs) {
    Edge<T> edge;
    if (t.defined() && t.requires_grad()) {
      if (t.grad_fn()) edge.node = t.grad_fn();
      else edge.leaf = t.impl();
    }
    node->inputs.push_back(std::move(edge));
    node->input_shapes.push_back(t.defined() ? t.shape() : Shape{});
  }
  node->output_shape = output.shape();
  node->backward = std::move(backward);
  output.impl()->grad_fn = std::move(node);
  output.impl()->requires_grad = true;
}

}  // namespace cct::autograd

// Tensor's header includes the engine, which needs Node complete; so Tensor comes after Node here.
#include "../core/tensor.hpp"
