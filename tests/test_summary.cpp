// Model summary: MACs and parameter totals against the reference table, the rows of the printed
// table, and the analytic output shapes against real forward passes.
#include <cmath>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <cct/autograd/grad_mode.hpp>
#include <cct/models/registry.hpp>
#include <cct/models/summary.hpp>

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
