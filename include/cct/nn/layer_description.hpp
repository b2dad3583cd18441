// What a layer tells the model summary about itself: Module::describe(input, children) returns a
// LayerDescription (its output shape and multiply-accumulates for that input), and describes its
// children through a Describer, which the summary implements (models/summary.hpp). So a new layer
// brings its own summary row; the summary knows no layer types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "../core/shape.hpp"

namespace cct::nn {

// One module's answer for one input shape (batch first).
struct LayerDescription {
  std::optional<Shape> output_shape;  // std::nullopt: unknown, shown as "?"
  // Multiply-accumulates of the module's own computation on the whole input (the summary divides by
  // the batch size): convolutions and linear layers, as the paper counts. Children report their own.
  int64_t macs = 0;
};

// The summary's side of describe(): a module with children calls child() once per child it runs, with
// the input that child sees, and gets the child's output shape back (std::nullopt if that child cannot
// tell). Children it never names are listed with unknown shapes. Rows keep registration order
// whatever order the children are described in.
template <typename T>
class Describer {
 public:
  virtual ~Describer() = default;
  // Describes child `name` (a registered child of the module being described) for `input`, adding
  // its rows (and its subtree's) to the summary; a second call for the same child only computes the shape.
  virtual std::optional<Shape> child(const std::string& name, const std::optional<Shape>& input) = 0;
  // Adds a row for attention products (q·kᵀ and A·v: `macs` for the whole input) whose output is the
  // attention map `map_shape` (B, H, N, N), right after the child described last. These MACs are
  // reported apart from the conv + linear total, as the paper does.
  virtual void attention_products(const Shape& map_shape, int64_t macs) = 0;
};

}  // namespace cct::nn
