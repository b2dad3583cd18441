// Model summary (like torchinfo): one row per module with its output shape, parameters and
// multiply-accumulates, plus totals, computed from the input shape without running the model.
//
// Each module describes itself (nn::Module::describe, nn/layer_description.hpp): given its input shape
// it returns its output shape and its own MACs, and describes its children with the inputs they see.
// The summary knows no layer types, so a layer of your own brings its own row by overriding describe;
// one that does not still gets its row and parameter count, with its output shape, and the shapes and
// MACs below it, shown as unknown ("?"). Nothing runs the layers' forwards, so summarising never touches
// the weights and a 22M-parameter model costs microseconds.
//
// MACs are counted per image, as the paper counts them: convolutions Cout·Cin·k·k·Hout·Wout and linear
// layers in·out per token; normalisation, activations, pooling, the positional embedding and SeqPool's
// weighted sum (N·D) are not counted. The two attention products of each layer (q·kᵀ and A·v, together
// 2·N²·D) get a row of their own, typed "AttentionMatmuls", whose MACs are reported separately: a
// container's MACs and ModelStats::macs are conv + linear only, ModelStats::attention_macs the rest.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../core/shape.hpp"
#include "../nn/layer_description.hpp"
#include "../nn/module.hpp"
#include "compact_transformer.hpp"

namespace cct::models {

// One line of the summary. Rows come depth first in registration order (state-dict order), each
// module's attention products right after its qkv projection.
struct SummaryRow {
  std::string name;                   // dotted name from the root ("" for the root itself)
  std::string type;                   // the module's type_name(), or "AttentionMatmuls"
  int depth = 0;                      // 0 for the root
  std::optional<Shape> output_shape;  // absent where the shape could not be derived
  int64_t params = 0;                 // the module's own parameters plus its descendants'
  int64_t macs = 0;                   // per image; conv + linear of the subtree, or the attention products
  bool attention_matmuls = false;     // the q·kᵀ and A·v row (its MACs are not in its parents')
};

// Totals of a summary. MACs per image.
struct ModelStats {
  int64_t params = 0;            // every parameter, frozen ones (a sine table) included
  int64_t trainable_params = 0;
  int64_t macs = 0;              // conv + linear, the paper's count
  int64_t attention_macs = 0;    // q·kᵀ and A·v of every layer: 2·N²·D each
};

namespace detail {

// A shape error that already names the module it came from; the modules around it pass it on as is.
class NamedShapeError : public ShapeError {
 public:
  using ShapeError::ShapeError;
};

inline std::string child_name(const std::string& parent, const std::string& child) {
  return parent.empty() ? child : parent + "." + child;
}

// Asks each module to describe itself (Module::describe) and collects the rows. Shapes carry the
// batch; a module reports MACs for the whole input, which the walker divides by the batch size.
template <typename T>
class SummaryWalker {
 public:
  explicit SummaryWalker(int64_t batch_size) : batch_size_(batch_size) {}

  struct Subtree {
    std::vector<SummaryRow> rows;  // the module's own row first, then its descendants'
    std::optional<Shape> output;
  };

  // The rows of `module` and its subtree for `input` (std::nullopt: unknown, so nothing below is asked).
  Subtree describe(const nn::Module<T>& module, const std::string& name, int depth,
                   const std::optional<Shape>& input) const {
    SummaryRow row{name, module.type_name(), depth, std::nullopt, module.num_parameters(), 0, false};
    ChildDescriber children(*this, module, name, depth);
    if (input) {
      try {
        const nn::LayerDescription description = module.describe(*input, children);
        row.output_shape = description.output_shape;
        row.macs = description.macs / batch_size_;
      } catch (const NamedShapeError&) {
        throw;
      } catch (const ShapeError& error) {
        throw NamedShapeError("summary: '" + (name.empty() ? std::string("(root)") : name) + "' (" +
                              module.type_name() + "): " + error.what());
      }
    }
    Subtree out{{row}, row.output_shape};
    children.append_rows_in_registration_order(out.rows);
    // A module's MACs: its own plus its children's (attention products excluded).
    for (size_t r = 1; r < out.rows.size(); ++r)
      if (out.rows[r].depth == depth + 1 && !out.rows[r].attention_matmuls) out.rows[0].macs += out.rows[r].macs;
    return out;
  }

 private:
  // What one module's describe() reaches its children through. Rows are kept per child and put in
  // registration order at the end, whatever order describe() visited the children in.
  class ChildDescriber final : public nn::Describer<T> {
   public:
    ChildDescriber(const SummaryWalker& walker, const nn::Module<T>& module, const std::string& name, int depth)
        : walker_(walker), module_(module), name_(name), depth_(depth) {}

    std::optional<Shape> child(const std::string& child, const std::optional<Shape>& input) override {
      CCT_CHECK(module_.has_child(child), "summary: ", module_.type_name(), "::describe asks for child '", child,
                "', which '", name_.empty() ? std::string("(root)") : name_, "' does not have; it has: ",
                child_names());
      Subtree subtree = walker_.describe(*module_.child(child), child_name(name_, child), depth_ + 1, input);
      Slot& slot = slots_[child];
      if (!slot.described) slot.rows = std::move(subtree.rows);  // a second call only computes the shape
      slot.described = true;
      last_ = child;
      return subtree.output;
    }

    void attention_products(const Shape& map_shape, int64_t macs) override {
      SummaryRow row{child_name(name_, "matmuls"), "AttentionMatmuls", depth_ + 1, map_shape,
                     /*params=*/0, macs / walker_.batch_size_, /*attention_matmuls=*/true};
      (last_.empty() ? leading_ : slots_[last_].after).push_back(std::move(row));
    }

    // Children that describe() did not name are listed with unknown shapes.
    void append_rows_in_registration_order(std::vector<SummaryRow>& out) {
      out.insert(out.end(), leading_.begin(), leading_.end());
      for (const auto& [child, pointer] : module_.named_children()) {
        Slot& slot = slots_[child];
        if (!slot.described)
          slot.rows = walker_.describe(*pointer, child_name(name_, child), depth_ + 1, std::nullopt).rows;
        out.insert(out.end(), slot.rows.begin(), slot.rows.end());
        out.insert(out.end(), slot.after.begin(), slot.after.end());
      }
    }

   private:
    struct Slot {
      bool described = false;
      std::vector<SummaryRow> rows;   // the child's subtree
      std::vector<SummaryRow> after;  // attention products described right after it
    };
    std::string child_names() const {
      std::string names;
      for (const auto& [child, pointer] : module_.named_children()) names += (names.empty() ? "" : ", ") + child;
      return names.empty() ? "no children" : names;
    }

    const SummaryWalker& walker_;
    const nn::Module<T>& module_;
    const std::string& name_;
    int depth_;
    std::map<std::string, Slot> slots_;
    std::vector<SummaryRow> leading_;  // attention products described before any child
    std::string last_;
  };

  int64_t batch_size_;
};

// 1234567 → "1,234,567".
inline std::string with_thousands(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

inline std::string format_fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

inline std::string pad_right(const std::string& text, size_t width) {
  return text.size() >= width ? text : text + std::string(width - text.size(), ' ');
}
inline std::string pad_left(const std::string& text, size_t width) {
  return text.size() >= width ? text : std::string(width - text.size(), ' ') + text;
}

}  // namespace detail

// The rows for `module` given its input shape (batch first). Throws ShapeError where the shapes do
// not fit a layer (e.g. 4 channels into a 3-channel conv), naming the module.
template <typename T>
std::vector<SummaryRow> summary_rows(const nn::Module<T>& module, const Shape& input_shape) {
  CCT_CHECK_SHAPE(!input_shape.empty() && input_shape[0] >= 1, "summary: the input shape must start with a batch size >= 1, got ",
                  shape_str(input_shape));
  return detail::SummaryWalker<T>(input_shape[0]).describe(module, "", 0, input_shape).rows;
}

// The input a CompactTransformer takes: (batch_size, in_channels, image_size, image_size).
template <typename T>
Shape summary_input_shape(const CompactTransformer<T>& model, int64_t batch_size = 1) {
  CCT_CHECK(batch_size >= 1, "summary: batch_size must be >= 1, got ", batch_size);
  const ModelConfig& c = model.config();
  return {batch_size, c.in_channels, c.image_size, c.image_size};
}

template <typename T>
std::vector<SummaryRow> summary_rows(const CompactTransformer<T>& model, int64_t batch_size = 1) {
  return summary_rows(static_cast<const nn::Module<T>&>(model), summary_input_shape(model, batch_size));
}

template <typename T>
ModelStats model_stats(const nn::Module<T>& module, const Shape& input_shape) {
  ModelStats stats;
  stats.params = module.num_parameters();
  stats.trainable_params = module.num_parameters(/*trainable_only=*/true);
  const std::vector<SummaryRow> rows = summary_rows(module, input_shape);
  stats.macs = rows.front().macs;
  for (const SummaryRow& row : rows)
    if (row.attention_matmuls) stats.attention_macs += row.macs;
  return stats;
}

template <typename T>
ModelStats model_stats(const CompactTransformer<T>& model) {
  return model_stats(static_cast<const nn::Module<T>&>(model), summary_input_shape(model, 1));
}

// The table: name (indented by depth), type, output shape, parameters, MACs per image, then totals.
// `title` heads the table (the root row shows it as its name).
template <typename T>
std::string summary(const nn::Module<T>& module, const Shape& input_shape, const std::string& title = "") {
  using detail::pad_left;
  using detail::pad_right;
  using detail::with_thousands;
  const std::vector<SummaryRow> rows = summary_rows(module, input_shape);
  const ModelStats stats = model_stats(module, input_shape);
  const std::string root_name = title.empty() ? module.type_name() : title;

  std::vector<std::vector<std::string>> cells = {{"Layer", "Type", "Output shape", "Params", "MACs/image"}};
  for (const SummaryRow& row : rows) {
    const std::string name = std::string(2 * static_cast<size_t>(row.depth), ' ') + (row.name.empty() ? root_name : row.name);
    const bool counted = !row.output_shape || row.macs > 0 || row.type == "Conv2d" || row.type == "Linear";
    std::string macs = !row.output_shape ? "?" : counted ? with_thousands(row.macs) : "--";
    if (row.attention_matmuls) macs = "*" + macs;
    cells.push_back({name, row.type, row.output_shape ? shape_str(*row.output_shape) : "?", with_thousands(row.params), macs});
  }
  std::vector<size_t> width(5, 0);
  for (const auto& line : cells)
    for (size_t c = 0; c < 5; ++c) width[c] = std::max(width[c], line[c].size());
  const size_t total_width = width[0] + width[1] + width[2] + width[3] + width[4] + 8;

  std::string out = root_name + ": input " + shape_str(input_shape) + "\n";
  const std::string heavy(total_width, '='), light(total_width, '-');
  out += heavy + "\n";
  for (size_t i = 0; i < cells.size(); ++i) {
    const auto& line = cells[i];
    out += pad_right(line[0], width[0]) + "  " + pad_right(line[1], width[1]) + "  " + pad_right(line[2], width[2]) +
           "  " + pad_left(line[3], width[3]) + "  " + pad_left(line[4], width[4]) + "\n";
    if (i == 0) out += light + "\n";
  }
  out += heavy + "\n";
  const auto giga = [](int64_t macs) { return detail::format_fixed(static_cast<double>(macs) / 1e9, 3) + " G"; };
  out += "Total params:            " + with_thousands(stats.params) + "\n";
  out += "Trainable params:        " + with_thousands(stats.trainable_params) + "\n";
  out += "Non-trainable params:    " + with_thousands(stats.params - stats.trainable_params) + "\n";
  out += "MACs per image (conv + linear):           " + with_thousands(stats.macs) + " (" + giga(stats.macs) + ")\n";
  out += "MACs per image with attention matmuls:    " + with_thousands(stats.macs + stats.attention_macs) + " (" +
         giga(stats.macs + stats.attention_macs) + ")\n";
  out += "Parameter memory:        " +
         detail::format_fixed(static_cast<double>(stats.params) * sizeof(T) / 1e6, 2) + " MB (" +
         std::to_string(sizeof(T) * 8) + "-bit)\n";
  out += "(* attention products q·kᵀ and A·v, 2·N²·D per layer: not in their parents' MACs nor in the conv + "
         "linear total; -- no MACs counted)\n";
  if (std::any_of(rows.begin(), rows.end(), [](const SummaryRow& row) { return !row.output_shape; }))
    out += "(? unknown: a module that does not override nn::Module::describe, or one below it; their MACs are "
           "not in the totals)\n";
  return out;
}

// The summary of a model for a batch of `batch_size` images of its configured size. MACs are per image.
template <typename T>
std::string summary(const CompactTransformer<T>& model, int64_t batch_size = 1) {
  return summary(static_cast<const nn::Module<T>&>(model), summary_input_shape(model, batch_size), model.config().name);
}

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_MODELS_SUMMARY_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE std::string summary<T>(const CompactTransformer<T>&, int64_t); \
  CCT_EXTERN_TEMPLATE ModelStats model_stats<T>(const CompactTransformer<T>&);
CCT_FOR_FLOATING_TYPES(CCT_MODELS_SUMMARY_TEMPLATES)
#undef CCT_MODELS_SUMMARY_TEMPLATES
#endif

}  // namespace cct::models
