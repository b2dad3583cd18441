// The backward engine: walks the recorded graph from a root in reverse topological order.
//
// Order: a node runs only after every consumer of its output has delivered its gradient, which a
// dependency count per node guarantees (Kahn's algorithm; no recursion, so depth is unlimited).
// Gradients of intermediate results are summed out of place (a gradient tensor may be shared by two
// inputs, e.g. both sides of an add); a leaf owns its gradient buffer and accumulates in place, so
// repeated backward passes add up until zero_grad(). Each node's closure and incoming gradient are
// released right after it runs, so peak memory falls as the pass proceeds. The pass runs in no-grad
// mode: cct computes first derivatives only.
#pragma once

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "../core/tensor.hpp"
#include "grad_mode.hpp"
#include "node.hpp"

namespace cct {

template <typename T>
void Tensor<T>::check_inplace(const char* op) const {
  CCT_CHECK(!(is_grad_enabled() && requires_grad()), op,
            ": in-place change of a tensor that requires grad; wrap it in cct::NoGradGuard "
            "(as optimisers do) or detach() it first");
}

namespace autograd {

namespace detail {
template <typename T>
void add_into(Tensor<T>& target, const Tensor<T>& gradient) {
  if (!target.defined()) {
    target = gradient;  // shared, never written in place: see the header comment
    return;
  }
  Tensor<T> sum = Tensor<T>::empty(target.shape());
  const T* a = target.data();
  const T* b = gradient.data();
  T* out = sum.data();
  const int64_t n = sum.numel();
  parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = a[i] + b[i];
  });
  target = sum;
}

template <typename T>
void accumulate_leaf(const std::shared_ptr<cct::detail::TensorImpl<T>>& leaf, const Tensor<T>& gradient) {
  if (!leaf->grad) {
    leaf->grad = gradient.clone().impl();  // the leaf owns its buffer from now on
    return;
  }
  T* out = leaf->grad->storage->data();
  const T* in = gradient.data();
  const int64_t n = gradient.numel();
  parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] += in[i];
  });
}
}  // namespace detail

template <typename T>
void run_backward(const Tensor<T>& root, const Tensor<T>* gradient) {
  CCT_CHECK(root.requires_grad(), "backward(): the tensor does not require grad (no input of the "
            "computation was marked requires_grad_(), or it was computed under NoGradGuard)");
  Tensor<T> seed;
  if (gradient) {
    CCT_CHECK_SHAPE(gradient->defined() && gradient->shape() == root.shape(), "backward(gradient): gradient shape ",
                    gradient->defined() ? shape_str(gradient->shape()) : "undefined",
                    " does not match the tensor's shape ", shape_str(root.shape()));
    seed = *gradient;
  } else {
    CCT_CHECK_SHAPE(root.numel() == 1, "backward(): called on a tensor of shape ", shape_str(root.shape()),
                    " with ", root.numel(), " elements; reduce it to a scalar loss first, or pass the gradient "
                    "explicitly with backward(gradient)");
    seed = Tensor<T>::ones(root.shape());
  }

  NoGradGuard no_grad;
  if (root.is_leaf()) {
    detail::accumulate_leaf(root.impl(), seed);
    return;
  }

  // Count, for every node reachable from the root, how many edges point at it.
  Node<T>* root_node = root.grad_fn().get();
  std::unordered_map<Node<T>*, int> pending_consumers;
  std::vector<Node<T>*> stack{root_node};
  pending_consumers[root_node] = 0;
  while (!stack.empty()) {
    Node<T>* node = stack.back();
    stack.pop_back();
    for (const auto& edge : node->inputs) {
      if (!edge.node) continue;
      auto [it, first_visit] = pending_consumers.try_emplace(edge.node.get(), 0);
      ++it->second;
      if (first_visit) stack.push_back(edge.node.get());
    }
  }

  detail::add_into(root_node->grad_output, seed);
  std::vector<Node<T>*> ready{root_node};
  while (!ready.empty()) {
    Node<T>* node = ready.back();
    ready.pop_back();

    GradList<T> grads;
    if (node->grad_output.defined()) {
      CCT_CHECK(node->backward, "backward(): the graph through op '", node->name, "' was already used by an "
                "earlier backward pass and freed; run the forward computation again");
      NeedsGrad needs(node->inputs.size());
      for (size_t i = 0; i < needs.size(); ++i) needs[i] = node->inputs[i].active();
      grads = node->backward(node->grad_output, needs);
      CCT_CHECK(grads.size() == node->inputs.size(), "internal error: op '", node->name, "' returned ",
                grads.size(), " gradients for ", node->inputs.size(), " inputs");
    }
    node->release();

    for (size_t i = 0; i < node->inputs.size(); ++i) {
      const Edge<T>& edge = node->inputs[i];
      if (!edge.active()) continue;
      const bool has_grad = i < grads.size() && grads[i].defined();
      if (has_grad)
        CCT_CHECK_SHAPE(grads[i].shape() == node->input_shapes[i], "internal error: op '", node->name,
                        "' produced a gradient of shape ", shape_str(grads[i].shape()), " for input ", i,
                        " of shape ", shape_str(node->input_shapes[i]));
      if (edge.node) {
        if (has_grad) detail::add_into(edge.node->grad_output, grads[i]);
        if (--pending_consumers[edge.node.get()] == 0) ready.push_back(edge.node.get());
      } else if (has_grad) {
        detail::accumulate_leaf(edge.leaf, grads[i]);
      }
    }
  }
}

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_AUTOGRAD_ENGINE_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE void run_backward<T>(const Tensor<T>&, const Tensor<T>*);
CCT_FOR_FLOATING_TYPES(CCT_AUTOGRAD_ENGINE_TEMPLATES)
#undef CCT_AUTOGRAD_ENGINE_TEMPLATES
#endif

}  // namespace autograd

// Free-function spelling, as in torch.autograd.backward.
template <typename T>
void backward(const Tensor<T>& root) { root.backward(); }

}  // namespace cct
