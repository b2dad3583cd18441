// Model summary: MACs and parameter totals against the reference table, the rows of the printed
// table, and the analytic output shapes against real forward passes.
#include <cmath>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <cct/autograd/grad_mode.hpp>
#include <cct/models/registry.hpp>
#include <cct/nn/init.hpp>
#include <cct/models/summary.hpp>
#include <cct/nn/layer_scale.hpp>

#include "../examples/layer_scale_block.hpp"
#include "test_helpers.hpp"

using cct::Shape;
using cct::Tensor;
namespace models = cct::models;
namespace nn = cct::nn;

namespace {

const models::SummaryRow& find_row(const std::vector<models::SummaryRow>& rows, const std::string& name) {
  for (const auto& row : rows)
    if (row.name == name) return row;
  FAIL("no summary row named '" << name << "'");
  return rows.front();
}

// The line of the printed table whose first column (after the indent) is `name`.
std::string table_line(const std::string& table, const std::string& name) {
  std::istringstream lines(table);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string first;
    words >> first;
    if (first == name) return line;
  }
  FAIL("no table line for '" << name << "' in\n" << table);
  return "";
}

Shape shape_of(const models::SummaryRow& row) {
  REQUIRE(row.output_shape.has_value());
  return *row.output_shape;
}

}  // namespace

TEST_CASE("MACs per image equal the reference table", "[summary]") {
  cct::nn::init::SkipInitGuard structure_only;  // MACs need no random weights
  // architecture.md: conv + linear MACs (and with the attention products), rounded as printed there.
  struct Reference {
    std::string name;
    double giga, tolerance;
    double giga_with_attention;  // 0: not given
  };
  const std::vector<Reference> table = {{"cct_2_3x2_32", 0.033, 0.0005, 0.035}, {"cct_7_3x1_32", 0.947, 0.0005, 1.182},
                                        {"cct_7_3x2_32", 0.274, 0.0005, 0.0},   {"cvt_7_4_32", 0.236, 0.0005, 0.0},
                                        {"vit_7_4_32", 0.239, 0.0005, 0.0},     {"cct_14_7x2_224", 5.11, 0.005, 0.0}};
  for (const auto& reference : table) {
    INFO(reference.name);
    const auto model = models::create<float>(reference.name);
    const models::ModelStats stats = models::model_stats(*model);
    REQUIRE(static_cast<double>(stats.macs) / 1e9 == Approx(reference.giga).margin(reference.tolerance));
    if (reference.giga_with_attention > 0)
      REQUIRE(static_cast<double>(stats.macs + stats.attention_macs) / 1e9 ==
              Approx(reference.giga_with_attention).margin(0.0005));
    // Attention products: 2·N²·D per layer.
    const int64_t N = model->sequence_length() + (model->config().family == models::Family::kViTLite ? 1 : 0);
    REQUIRE(stats.attention_macs == model->config().num_layers * 2 * N * N * model->config().embedding_dim);
    REQUIRE(stats.params == model->num_parameters());
    REQUIRE(stats.trainable_params == model->num_parameters(true));
  }

  // Exactly, for cct_2_3x2_32 (D = 128, F = 128, two layers, 64 tokens):
  //   conv 3→64, 3×3 at 32×32: 64·3·9·1024 = 1,769,472;  conv 64→128, 3×3 at 16×16: 128·64·9·256 = 18,874,368
  //   per layer 64 tokens · (3D² + D² + 2DF) = 64 · 98,304 = 6,291,456, two layers 12,582,912
  //   attention_pool 64·128 = 8,192;  fc 128·10 = 1,280          → 33,236,224
  //   attention products 2 · 64² · 128 = 1,048,576 per layer       → 2,097,152
  const models::ModelStats small = models::model_stats(*models::create<float>("cct_2_3x2_32"));
  REQUIRE(small.macs == 33236224);
  REQUIRE(small.attention_macs == 2097152);
  REQUIRE(small.params == 283723);

  // A sine table is a parameter, but not a trainable one (the reference's 3,694,603).
  const models::ModelStats sine = models::model_stats(*models::create<float>("cct_7_3x1_32_sine"));
  REQUIRE(sine.params == 3760139);
  REQUIRE(sine.trainable_params == 3694603);
}

TEST_CASE("the summary table lists every module with its shape, parameters and MACs", "[summary]") {
  const auto model = models::create<float>("cct_2_3x2_32");
  const std::string table = models::summary(*model, 4);
  INFO(table);

  // Every module of the tree has a row, in named_modules order, indented by depth.
  const std::vector<models::SummaryRow> rows = models::summary_rows(*model, 4);
  std::vector<std::string> module_names;
  for (const auto& row : rows)
    if (!row.attention_matmuls) module_names.push_back(row.name);
  std::vector<std::string> expected_names;
  for (const auto& [name, module] : model->named_modules()) expected_names.push_back(name);
  REQUIRE(module_names == expected_names);
  REQUIRE(table.find("\n      tokenizer.conv_layers.0 ") != std::string::npos);  // depth 3

  auto line = table_line(table, "cct_2_3x2_32");
  CHECK(line.find("CCT") != std::string::npos);
  CHECK(line.find("(4, 10)") != std::string::npos);  // the batch shows in shapes...
  CHECK(line.find("283,723") != std::string::npos);
  CHECK(line.find("33,236,224") != std::string::npos);  // ...not in the per-image MACs

  line = table_line(table, "tokenizer.conv_layers.0.0");
  CHECK(line.find("Conv2d") != std::string::npos);
  CHECK(line.find("(4, 64, 32, 32)") != std::string::npos);
  CHECK(line.find("1,728") != std::string::npos);  // 64·3·3·3
  CHECK(line.find("1,769,472") != std::string::npos);

  line = table_line(table, "tokenizer.conv_layers.1.2");
  CHECK(line.find("MaxPool2d") != std::string::npos);
  CHECK(line.find("(4, 128, 8, 8)") != std::string::npos);

  line = table_line(table, "tokenizer");
  CHECK(line.find("(4, 64, 128)") != std::string::npos);
  CHECK(line.find("75,456") != std::string::npos);  // 1,728 + 73,728

  line = table_line(table, "classifier.blocks.1.self_attn.qkv");
  CHECK(line.find("Linear") != std::string::npos);
  CHECK(line.find("(4, 64, 384)") != std::string::npos);
  CHECK(line.find("49,152") != std::string::npos);
  CHECK(line.find("3,145,728") != std::string::npos);  // 64 tokens · 128 · 384

  line = table_line(table, "classifier.blocks.1.self_attn.matmuls");
  CHECK(line.find("AttentionMatmuls") != std::string::npos);
  CHECK(line.find("(4, 2, 64, 64)") != std::string::npos);
  CHECK(line.find("*1,048,576") != std::string::npos);

  // A block's MACs are its linear layers' only (the attention products are listed, not added).
  line = table_line(table, "classifier.blocks.0");
  CHECK(line.find("99,200") != std::string::npos);  // 4D² + 2DF + 6D + F with D = F = 128
  CHECK(line.find("6,291,456") != std::string::npos);

  line = table_line(table, "classifier.fc");
  CHECK(line.find("(4, 10)") != std::string::npos);
  CHECK(line.find("1,290") != std::string::npos);

  CHECK(table.find("Total params:            283,723") != std::string::npos);
  CHECK(table.find("Trainable params:        283,723") != std::string::npos);
  CHECK(table.find("33,236,224 (0.033 G)") != std::string::npos);
  CHECK(table.find("35,333,376 (0.035 G)") != std::string::npos);
  CHECK(table.find("1.13 MB") != std::string::npos);  // 283,723 · 4 bytes

  // The row sums agree with the totals.
  const models::SummaryRow& root = rows.front();
  REQUIRE(root.params == 283723);
  int64_t leaf_macs = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const bool leaf = i + 1 == rows.size() || rows[i + 1].depth <= rows[i].depth;
    if (leaf && !rows[i].attention_matmuls) leaf_macs += rows[i].macs;
  }
  REQUIRE(leaf_macs == root.macs);

  REQUIRE_THROWS_WITH(models::summary(*model, 0), Catch::Contains("batch_size"));
}

TEST_CASE("analytic output shapes equal real forward shapes", "[summary]") {
  cct::NoGradGuard no_grad;
  for (const std::string name : {"cct_2_3x2_32", "cct_7_3x1_32", "cvt_2_4_32", "vit_2_4_32"}) {
    INFO(name);
    const auto model = models::create<float>(name);
    model->eval();
    const int64_t B = 2;
    const std::vector<models::SummaryRow> rows = models::summary_rows(*model, B);
    cct::Generator gen(1);
    const Tensor<float> images = Tensor<float>::randn({B, 3, 32, 32}, gen);

    // Each conv block and each layer inside it.
    Tensor<float> x = images;
    for (int64_t i = 0; i < model->tokenizer->conv_layers->size(); ++i) {
      const auto block = model->tokenizer->conv_layers->at<nn::Sequential<float>>(i);
      const std::string block_name = "tokenizer.conv_layers." + std::to_string(i);
      for (int64_t j = 0; j < block->size(); ++j) {
        x = (*block)[j]->forward(x);
        REQUIRE(shape_of(find_row(rows, block_name + "." + std::to_string(j))) == x.shape());
      }
      REQUIRE(shape_of(find_row(rows, block_name)) == x.shape());
    }
    const Tensor<float> tokens = model->tokenizer->forward(images);
    REQUIRE(shape_of(find_row(rows, "tokenizer")) == tokens.shape());

    nn::ClassifierTrace trace;
    trace.want_attention = true;
    const Tensor<float> logits = model->classifier->forward(tokens, Tensor<uint8_t>(), &trace);
    REQUIRE(shape_of(find_row(rows, "classifier")) == logits.shape());
    REQUIRE(shape_of(rows.front()) == logits.shape());
    for (size_t l = 0; l < trace.attention.size(); ++l)
      REQUIRE(shape_of(find_row(rows, "classifier.blocks." + std::to_string(l) + ".self_attn.matmuls")) ==
              trace.attention[l].shape());
  }

  // A standalone tokenizer of another shape: kernel 5, two blocks, a non-square 20×27 input.
  nn::TokenizerConfig config;
  config.embedding_dim = 96;
  config.num_conv_layers = 2;
  config.kernel_size = 5;
  config.stride = 1;
  config.padding = 2;
  config.in_planes = 32;
  nn::ConvTokenizer<float> tokenizer(config);
  const Tensor<float> odd = Tensor<float>::ones({2, 3, 20, 27});
  const std::vector<models::SummaryRow> rows = models::summary_rows(tokenizer, odd.shape());
  REQUIRE(shape_of(rows.front()) == tokenizer.forward(odd).shape());
  REQUIRE(shape_of(rows.front()) == Shape{2, 5 * 7, 96});
  // 32·3·25 at 20×27, then 96·32·25 at 10×14.
  REQUIRE(rows.front().macs == 32 * 3 * 25 * 20 * 27 + 96 * 32 * 25 * 10 * 14);

  // A standalone classifier (class token, so one more token than it is given).
  nn::ClassifierConfig classifier_config;
  classifier_config.seq_pool = false;
  classifier_config.embedding_dim = 32;
  classifier_config.num_layers = 1;
  classifier_config.num_heads = 4;
  classifier_config.mlp_ratio = 2.0;
  classifier_config.num_classes = 7;
  classifier_config.sequence_length = 9;
  nn::TransformerClassifier<float> classifier(classifier_config);
  const Tensor<float> some_tokens = Tensor<float>::ones({3, 9, 32});
  const std::vector<models::SummaryRow> classifier_rows = models::summary_rows(classifier, some_tokens.shape());
  REQUIRE(shape_of(classifier_rows.front()) == classifier.forward(some_tokens).shape());
  REQUIRE(shape_of(find_row(classifier_rows, "blocks.0.linear1")) == Shape{3, 10, 64});
  REQUIRE(find_row(classifier_rows, "blocks.0.self_attn.matmuls").macs == 2 * 10 * 10 * 32);
}

TEST_CASE("summary errors name the layer; unknown modules show unknown shapes", "[summary]") {
  nn::TokenizerConfig config;  // 3 input channels
  nn::ConvTokenizer<float> tokenizer(config);
  REQUIRE_THROWS_AS(models::summary_rows(tokenizer, {1, 4, 32, 32}), cct::ShapeError);
  REQUIRE_THROWS_WITH(models::summary_rows(tokenizer, {1, 4, 32, 32}),
                      Catch::Contains("conv_layers.0.0") && Catch::Contains("Conv2d") && Catch::Contains("(1, 4, 32, 32)"));
  nn::TokenizerConfig patches;  // one 4×4 conv with stride 4, no padding
  patches.kernel_size = patches.stride = 4;
  patches.padding = 0;
  patches.activation = patches.max_pool = false;
  nn::ConvTokenizer<float> patch_tokenizer(patches);
  REQUIRE(shape_of(models::summary_rows(patch_tokenizer, {1, 3, 4, 8}).front()) == Shape{1, 2, 128});
  REQUIRE_THROWS_WITH(models::summary_rows(patch_tokenizer, {1, 3, 3, 8}), Catch::Contains("smaller than the kernel 4"));
  REQUIRE_THROWS_WITH(models::summary_rows(tokenizer, {}), Catch::Contains("batch size"));

  // A user module the summary does not know: its row and parameters are listed, its shapes are "?".
  struct Custom : nn::Module<float> {
    Custom() { register_module("head", std::make_shared<nn::Linear<float>>(8, 2)); }
    std::string type_name() const override { return "Custom"; }
  };
  Custom custom;
  const auto rows = models::summary_rows(custom, {1, 8});
  REQUIRE(rows.size() == 2);
  REQUIRE(rows[0].type == "Custom");
  REQUIRE(rows[0].params == 18);
  REQUIRE_FALSE(rows[0].output_shape.has_value());
  REQUIRE(rows[1].name == "head");
  REQUIRE_FALSE(rows[1].output_shape.has_value());
  REQUIRE(models::summary(custom, {1, 8}).find("?") != std::string::npos);
}

// ---- layers of your own describe themselves (Module::describe) --------------------------------------

TEST_CASE("LayerScale describes itself to the model summary", "[summary][layer_scale]") {
  nn::Sequential<float> block;
  block.push_back(std::make_shared<nn::Linear<float>>(8, 4));
  block.push_back(std::make_shared<nn::LayerScale<float>>(4));
  const std::vector<models::SummaryRow> rows = models::summary_rows(block, {2, 8});
  REQUIRE(rows[2].type == "LayerScale");
  REQUIRE(rows[2].output_shape == Shape{2, 4});
  REQUIRE(rows[2].macs == 0);
  REQUIRE(rows[0].macs == 8 * 4);  // per image: the Linear's
  nn::LayerScale<float> wrong_width(5);
  REQUIRE_THROWS_WITH(models::summary_rows(wrong_width, {2, 4}),
                      Catch::Contains("LayerScale takes (..., 5)") && Catch::Contains("(2, 4)"));
}

TEST_CASE("a module of your own gets full rows, in registration order whatever order it describes", "[summary]") {
  // Registers `scale` before `head` but runs (and describes) head first.
  struct HeadThenScale : nn::Module<float> {
    HeadThenScale() {
      scale = register_module("scale", std::make_shared<nn::LayerScale<float>>(4));
      head = register_module("head", std::make_shared<nn::Linear<float>>(8, 4));
    }
    std::string type_name() const override { return "HeadThenScale"; }
    nn::LayerDescription describe(const Shape& input, nn::Describer<float>& children) const override {
      return {children.child("scale", children.child("head", input))};
    }
    std::shared_ptr<nn::LayerScale<float>> scale;
    std::shared_ptr<nn::Linear<float>> head;
  };
  HeadThenScale model;
  const auto rows = models::summary_rows(model, {3, 8});
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].type == "HeadThenScale");
  CHECK(shape_of(rows[0]) == Shape{3, 4});
  CHECK(rows[0].macs == 32);
  CHECK(rows[1].name == "scale");
  CHECK(shape_of(rows[1]) == Shape{3, 4});
  CHECK(rows[2].name == "head");
  CHECK(shape_of(rows[2]) == Shape{3, 4});
  const std::string table = models::summary(model, {3, 8});
  INFO(table);
  CHECK(table_line(table, "scale").find("LayerScale") != std::string::npos);
  CHECK(table.find('?') == std::string::npos);  // nothing unknown

  // Naming a child it does not have is an error that lists the children it has.
  struct Confused : nn::Module<float> {
    Confused() { register_module("head", std::make_shared<nn::Linear<float>>(8, 4)); }
    nn::LayerDescription describe(const Shape& input, nn::Describer<float>& children) const override {
      return {children.child("tail", input)};
    }
  };
  Confused confused;
  REQUIRE_THROWS_WITH(models::summary_rows(confused, {1, 8}),
                      Catch::Contains("'tail'") && Catch::Contains("it has: head"));
}

TEST_CASE("a classifier of custom blocks: rows, shapes and MACs from the blocks' describe", "[summary][blocks]") {
  nn::ClassifierConfig config;
  config.embedding_dim = 32;
  config.num_layers = 2;
  config.num_heads = 4;
  config.mlp_ratio = 2.0;
  config.num_classes = 7;
  config.sequence_length = 9;
  cct::Generator gen(0);
  nn::TransformerClassifier<float> classifier(config, gen, layer_scale_blocks<float>());
  const int64_t B = 3, N = 9, D = 32, F = 64;
  const std::vector<models::SummaryRow> rows = models::summary_rows(classifier, {B, N, D});
  const std::string table = models::summary(classifier, {B, N, D});
  INFO(table);
  CHECK(find_row(rows, "blocks.1").type == "LayerScaleBlock");
  CHECK(shape_of(find_row(rows, "blocks.1")) == Shape{B, N, D});
  CHECK(find_row(rows, "blocks.1").macs == N * (3 * D * D + D * D + 2 * D * F));  // qkv, proj, linear1, linear2
  CHECK(find_row(rows, "blocks.1.ls2").type == "LayerScale");
  CHECK(shape_of(find_row(rows, "blocks.1.ls2")) == Shape{B, N, D});
  CHECK(shape_of(find_row(rows, "blocks.1.linear1")) == Shape{B, N, F});
  CHECK(find_row(rows, "blocks.1.attn.matmuls").macs == 2 * N * N * D);
  CHECK(shape_of(find_row(rows, "blocks.1.attn.matmuls")) == Shape{B, 4, N, N});
  CHECK(table.find('?') == std::string::npos);

  // The analytic shapes are the real ones.
  cct::NoGradGuard no_grad;
  classifier.eval();
  const Tensor<float> tokens = Tensor<float>::ones({B, N, D});
  CHECK(shape_of(rows.front()) == classifier.forward(tokens).shape());
  CHECK(shape_of(find_row(rows, "blocks.0")) == classifier.blocks->at<LayerScaleBlock<float>>(0)->forward(tokens).shape());
  const models::ModelStats stats = models::model_stats(classifier, {B, N, D});
  CHECK(stats.attention_macs == 2 * (2 * N * N * D));
  CHECK(stats.macs == rows.front().macs);
}

TEST_CASE("a block that does not describe itself shows '?', and the rest of the model its shapes", "[summary][blocks]") {
  // A block without describe(): the summary cannot know what it computes.
  struct Opaque : nn::EncoderBlock<float> {
    explicit Opaque(int64_t width) { mix = register_module("mix", std::make_shared<nn::Linear<float>>(width, width)); }
    using nn::EncoderBlock<float>::forward;
    Tensor<float> forward(const Tensor<float>& x, const Tensor<uint8_t>&, Tensor<float>*) override {
      return mix->forward(x);
    }
    std::string type_name() const override { return "Opaque"; }
    std::shared_ptr<nn::Linear<float>> mix;
  };
  nn::ClassifierConfig config;
  config.embedding_dim = 8;
  config.num_layers = 1;
  config.num_classes = 3;
  config.sequence_length = 4;
  nn::TransformerClassifier<float> classifier(config, cct::default_generator(),
                                              [](int64_t, const nn::EncoderLayerConfig& layer, cct::Generator&) {
                                                return std::make_shared<Opaque>(layer.embedding_dim);
                                              });
  const std::vector<models::SummaryRow> rows = models::summary_rows(classifier, {2, 4, 8});
  CHECK_FALSE(find_row(rows, "blocks.0").output_shape.has_value());
  CHECK_FALSE(find_row(rows, "blocks.0.mix").output_shape.has_value());
  CHECK(find_row(rows, "blocks.0").params == 72);
  // A block keeps (B, N, D) by contract, so what follows the blocks still has its shapes.
  CHECK(shape_of(find_row(rows, "norm")) == Shape{2, 4, 8});
  CHECK(shape_of(find_row(rows, "fc")) == Shape{2, 3});
  CHECK(shape_of(rows.front()) == Shape{2, 3});
  const std::string table = models::summary(classifier, {2, 4, 8});
  CHECK(table.find("? unknown") != std::string::npos);
  CHECK(table_line(table, "blocks.0.mix").find('?') != std::string::npos);
}
