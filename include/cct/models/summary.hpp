// Model summary (like torchinfo): one row per module with its output shape, parameters and
// multiply-accumulates, plus totals, computed from the input shape without running the model.
//
// The summary walks the module tree and propagates shapes analytically through the layer types it
// knows (Conv2d, MaxPool2d, Linear, LayerNorm, activations, dropouts, Sequential, ModuleList,
// MultiHeadSelfAttention, TransformerEncoderLayer, SeqPool, ConvTokenizer, TransformerClassifier,
// CompactTransformer). Nothing is hooked into the layers' forwards, so summarising never touches the
// weights and a 22M-parameter model costs microseconds. A module of another type still gets its row and
// parameter count; its output shape, and the shapes and MACs below it, are shown as unknown ("?").
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
#include <optional>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../core/shape.hpp"
#include "../nn/attention.hpp"
#include "../nn/containers.hpp"
#include "../nn/conv.hpp"
#include "../nn/dropout.hpp"
#include "../nn/encoder_layer.hpp"
#include "../nn/layer_norm.hpp"
#include "../nn/linear.hpp"
#include "../nn/module.hpp"
#include "../nn/seq_pool.hpp"
#include "../nn/tokenizer.hpp"
#include "../nn/transformer_classifier.hpp"
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

template <typename T>
class SummaryWalker {
 public:
  explicit SummaryWalker(int64_t batch_size) : batch_size_(batch_size) {}

  // Adds the rows of `module` and its subtree; returns its output shape for input `input`.
  std::optional<Shape> visit(const nn::Module<T>& module, const std::string& name, int depth,
                             const std::optional<Shape>& input) {
    const size_t index = rows_.size();
    rows_.push_back(SummaryRow{name, module.type_name(), depth, std::nullopt, module.num_parameters(), 0, false});
    const std::optional<Shape> output = propagate(module, index, input);
    rows_[index].output_shape = output;
    // A container's MACs are its descendants' (attention products excluded); a leaf set its own.
    for (size_t r = index + 1; r < rows_.size(); ++r)
      if (rows_[r].depth == depth + 1 && !rows_[r].attention_matmuls) rows_[index].macs += rows_[r].macs;
    return output;
  }

  std::vector<SummaryRow> take_rows() { return std::move(rows_); }

 private:
  using Input = std::optional<Shape>;

  static std::string child_name(const std::string& parent, const std::string& child) {
    return parent.empty() ? child : parent + "." + child;
  }

  // Visits the children of row `index` in registration order, each with the input
  // `input_for(child name)` gives; returns the output of the child named `wanted` (if any).
  template <typename InputFor>
  Input visit_children(const nn::Module<T>& module, size_t index, InputFor input_for, const std::string& wanted = "") {
    const std::string name = rows_[index].name;
    const int depth = rows_[index].depth;
    Input result;
    for (const auto& [child, pointer] : module.named_children()) {
      Input output = visit(*pointer, child_name(name, child), depth + 1, input_for(child));
      if (child == wanted) result = output;
    }
    return result;
  }
  // Visits the children as a chain: each one's output is the next one's input. Returns the last output.
  Input visit_chain(const nn::Module<T>& module, size_t index, Input x) {
    const std::string name = rows_[index].name;
    const int depth = rows_[index].depth;
    for (const auto& [child, pointer] : module.named_children()) x = visit(*pointer, child_name(name, child), depth + 1, x);
    return x;
  }

  // The output shape of `module`, whose row is rows_[index], for input `in`; adds its children's rows.
  // A leaf layer sets its own MACs (before any row is added, so `row` stays valid).
  Input propagate(const nn::Module<T>& module, size_t index, const Input& in) {
    SummaryRow& row = rows_[index];
    const std::string where =
        "summary: '" + (row.name.empty() ? std::string("(root)") : row.name) + "' (" + module.type_name() + ")";

    if (const auto* conv = dynamic_cast<const nn::Conv2d<T>*>(&module)) {
      if (!in) return std::nullopt;
      const nn::Conv2dConfig& c = conv->config();
      CCT_CHECK_SHAPE(in->size() == 4 && (*in)[1] == c.in_channels, where, " takes (B, ", c.in_channels,
                      ", H, W), but its input would be ", shape_str(*in));
      CCT_CHECK_SHAPE((*in)[2] + 2 * c.padding >= c.kernel_size && (*in)[3] + 2 * c.padding >= c.kernel_size, where,
                      ": the input ", shape_str(*in), " padded by ", c.padding, " is smaller than the kernel ",
                      c.kernel_size);
      const int64_t height = conv->output_size((*in)[2]), width = conv->output_size((*in)[3]);
      row.macs = c.out_channels * c.in_channels * c.kernel_size * c.kernel_size * height * width;
      return Shape{(*in)[0], c.out_channels, height, width};
    }
    if (const auto* pool = dynamic_cast<const nn::MaxPool2d<T>*>(&module)) {
      if (!in) return std::nullopt;
      CCT_CHECK_SHAPE(in->size() == 4, where, " takes (B, C, H, W), but its input would be ", shape_str(*in));
      const int64_t height = pool->output_size((*in)[2]), width = pool->output_size((*in)[3]);
      CCT_CHECK_SHAPE(height > 0 && width > 0, where, ": the input ", shape_str(*in), " is smaller than the window");
      return Shape{(*in)[0], (*in)[1], height, width};
    }
    if (const auto* linear = dynamic_cast<const nn::Linear<T>*>(&module)) {
      if (!in) return std::nullopt;
      CCT_CHECK_SHAPE(!in->empty() && in->back() == linear->in_features(), where, " takes (..., ",
                      linear->in_features(), "), but its input would be ", shape_str(*in));
      const int64_t rows_per_image = shape_numel(*in) / linear->in_features() / batch_size_;
      row.macs = linear->in_features() * linear->out_features() * rows_per_image;
      Shape out = *in;
      out.back() = linear->out_features();
      return out;
    }
    if (dynamic_cast<const nn::LayerNorm<T>*>(&module) || dynamic_cast<const nn::ReLU<T>*>(&module) ||
        dynamic_cast<const nn::GELU<T>*>(&module) || dynamic_cast<const nn::Identity<T>*>(&module) ||
        dynamic_cast<const nn::Dropout<T>*>(&module) || dynamic_cast<const nn::DropPath<T>*>(&module))
      return in;
    // cct's ModuleLists (tokenizer blocks, encoder blocks) run their elements in order.
    if (dynamic_cast<const nn::Sequential<T>*>(&module) || module.type_name() == "ModuleList")
      return visit_chain(module, index, in);

    if (const auto* attention = dynamic_cast<const nn::MultiHeadSelfAttention<T>*>(&module)) {
      const nn::AttentionConfig& c = attention->config();
      const std::string name = rows_[index].name;
      const int depth = rows_[index].depth;
      for (const auto& [child, pointer] : module.named_children()) {
        visit(*pointer, child_name(name, child), depth + 1, in);
        if (child == "qkv") add_attention_row(name, depth + 1, in, c.embedding_dim, c.num_heads);
      }
      return in;
    }
    if (const auto* layer = dynamic_cast<const nn::TransformerEncoderLayer<T>*>(&module)) {
      Input hidden = in;  // (B, N, F) between linear1 and linear2
      if (hidden) hidden->back() = layer->config().mlp_hidden_dim;
      visit_children(module, index, [&](const std::string& child) {
        return child == "dropout1" || child == "linear2" ? hidden : in;
      });
      return in;
    }
    if (dynamic_cast<const nn::SeqPool<T>*>(&module)) {
      visit_children(module, index, [&](const std::string&) { return in; });
      if (!in || in->size() != 3) return std::nullopt;
      return Shape{(*in)[0], (*in)[2]};
    }
    if (dynamic_cast<const nn::ConvTokenizer<T>*>(&module)) {
      const Input maps = visit_children(
          module, index, [&](const std::string& child) { return child == "conv_layers" ? in : Input(); }, "conv_layers");
      if (!maps || maps->size() != 4) return std::nullopt;
      return Shape{(*maps)[0], (*maps)[2] * (*maps)[3], (*maps)[1]};  // (B, H·W, C)
    }
    if (const auto* classifier = dynamic_cast<const nn::TransformerClassifier<T>*>(&module)) {
      const nn::ClassifierConfig& c = classifier->config();
      if (in)
        CCT_CHECK_SHAPE(in->size() == 3 && (*in)[1] == c.sequence_length && (*in)[2] == c.embedding_dim, where,
                        " takes tokens (B, ", c.sequence_length, ", ", c.embedding_dim, "), but its input would be ",
                        shape_str(*in));
      Input sequence, pooled;
      if (in) {
        sequence = Shape{(*in)[0], c.sequence_length + (c.seq_pool ? 0 : 1), c.embedding_dim};  // + class token
        pooled = Shape{(*in)[0], c.embedding_dim};
      }
      visit_children(module, index, [&](const std::string& child) { return child == "fc" ? pooled : sequence; });
      if (!in) return std::nullopt;
      return Shape{(*in)[0], c.num_classes};
    }
    if (const auto* model = dynamic_cast<const CompactTransformer<T>*>(&module)) {
      const ModelConfig& c = model->config();
      if (in)
        CCT_CHECK_SHAPE(in->size() == 4 && (*in)[1] == c.in_channels, where, " takes images (B, ", c.in_channels,
                        ", H, W), but its input would be ", shape_str(*in));
      const std::string name = rows_[index].name;
      const int depth = rows_[index].depth;
      const Input tokens = visit(*model->tokenizer, child_name(name, "tokenizer"), depth + 1, in);
      return visit(*model->classifier, child_name(name, "classifier"), depth + 1, tokens);
    }
    // Unknown type: list its subtree, shapes unknown.
    visit_children(module, index, [](const std::string&) { return Input(); });
    return std::nullopt;
  }

  // q·kᵀ (N·N·D MACs) and A·v (N·N·D MACs), shown with the attention map's shape (B, H, N, N).
  void add_attention_row(const std::string& name, int depth, const Input& in, int64_t embedding_dim, int64_t num_heads) {
    SummaryRow row{child_name(name, "matmuls"), "AttentionMatmuls", depth, std::nullopt, 0, 0, true};
    if (in && in->size() == 3) {
      const int64_t tokens = (*in)[1];
      row.output_shape = Shape{(*in)[0], num_heads, tokens, tokens};
      row.macs = 2 * tokens * tokens * embedding_dim;
    }
    rows_.push_back(row);
  }

  int64_t batch_size_;
  std::vector<SummaryRow> rows_;
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
  detail::SummaryWalker<T> walker(input_shape[0]);
  walker.visit(module, "", 0, input_shape);
  return walker.take_rows();
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
  return out;
}

// The summary of a model for a batch of `batch_size` images of its configured size. MACs are per image.
template <typename T>
std::string summary(const CompactTransformer<T>& model, int64_t batch_size = 1) {
  return summary(static_cast<const nn::Module<T>&>(model), summary_input_shape(model, batch_size), model.config().name);
}

}  // namespace cct::models
