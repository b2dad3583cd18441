// Models against the reference: parameter counts, names and shapes, whole-model gradients, modes.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <cct/core/precision.hpp>
#include <cct/models/registry.hpp>
#include <cct/nn/init.hpp>
#include <cct/ops/loss.hpp>
#include <cct/ops/reduce.hpp>
#include <cct/optim/adamw.hpp>

#include "../examples/layer_scale_block.hpp"
#include "test_helpers.hpp"

using cct::Shape;
using cct::Tensor;
namespace models = cct::models;

namespace {

// The reference's table (architecture.md), all parameters, learnable positional embedding.
const std::vector<std::tuple<std::string, int64_t, int64_t>> kReferenceCounts = {
    {"cct_2_3x2_32", 283723, 295333},   {"cct_4_3x2_32", 482123, 493733},   {"cct_6_3x1_32", 3233803, 3256933},
    {"cct_6_3x2_32", 3326923, 3350053}, {"cct_7_3x1_32", 3760139, 3783269}, {"cct_7_3x2_32", 3853259, 3876389},
    {"cvt_2_4_32", 214539, 226149},     {"cvt_7_4_32", 3716619, 3739749},   {"vit_2_4_32", 214666, 226276},
    {"vit_7_4_32", 3716874, 3740004}};

// The reference's listing, expanded: name → shape, in state-dict order.
std::vector<std::pair<std::string, Shape>> reference_listing(const models::ModelConfig& c, int64_t tokens) {
  const int64_t D = c.embedding_dim, F = static_cast<int64_t>(D * c.mlp_ratio);
  std::vector<std::pair<std::string, Shape>> out;
  if (c.family == models::Family::kCCT) {
    for (int64_t i = 0; i < c.num_conv_layers; ++i) {
      const int64_t in = i == 0 ? c.in_channels : 64, o = i + 1 == c.num_conv_layers ? D : 64;
      out.push_back({"tokenizer.conv_layers." + std::to_string(i) + ".0.weight", {o, in, c.kernel_size, c.kernel_size}});
    }
  } else {
    out.push_back({"tokenizer.conv_layers.0.0.weight", {D, c.in_channels, c.patch_size, c.patch_size}});
    out.push_back({"tokenizer.conv_layers.0.0.bias", {D}});
  }
  // PyTorch's state_dict lists a module's own parameters before its children's, so the classifier's
  // class_emb / positional_emb come before attention_pool (architecture.md lists them by module).
  const bool vit = c.family == models::Family::kViTLite;
  if (vit) out.push_back({"classifier.class_emb", {1, 1, D}});
  out.push_back({"classifier.positional_emb", {1, tokens + (vit ? 1 : 0), D}});
  if (!vit) {
    out.push_back({"classifier.attention_pool.weight", {1, D}});
    out.push_back({"classifier.attention_pool.bias", {1}});
  }
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string b = "classifier.blocks." + std::to_string(l) + ".";
    out.push_back({b + "pre_norm.weight", {D}});
    out.push_back({b + "pre_norm.bias", {D}});
    out.push_back({b + "self_attn.qkv.weight", {3 * D, D}});
    out.push_back({b + "self_attn.proj.weight", {D, D}});
    out.push_back({b + "self_attn.proj.bias", {D}});
    out.push_back({b + "linear1.weight", {F, D}});
    out.push_back({b + "linear1.bias", {F}});
    out.push_back({b + "norm1.weight", {D}});
    out.push_back({b + "norm1.bias", {D}});
    out.push_back({b + "linear2.weight", {D, F}});
    out.push_back({b + "linear2.bias", {D}});
  }
  out.push_back({"classifier.norm.weight", {D}});
  out.push_back({"classifier.norm.bias", {D}});
  out.push_back({"classifier.fc.weight", {c.num_classes, D}});
  out.push_back({"classifier.fc.bias", {c.num_classes}});
  return out;
}

// A model small enough for finite differences: 1 layer, D = 16, 2 heads, 4×4 images with 2 channels.
models::ModelConfig tiny_config(models::Family family) {
  models::ModelConfig c;
  c.name = "tiny";
  c.family = family;
  c.num_layers = 1;
  c.num_heads = 2;
  c.embedding_dim = 16;
  c.mlp_ratio = 1.5;
  c.kernel_size = 3;
  c.num_conv_layers = 1;
  c.patch_size = 2;
  c.image_size = 4;
  c.in_channels = 2;
  c.num_classes = 3;
  c.seed = 3;
  return c;
}

}  // namespace

TEST_CASE("parameter counts equal the reference table for 10 and 100 classes", "[models]") {
  cct::nn::init::SkipInitGuard structure_only;  // counts and names need no random weights
  for (const auto& [name, count10, count100] : kReferenceCounts) {
    INFO(name);
    CHECK(models::create(name, {10})->num_parameters() == count10);
    CHECK(models::create(name, {100})->num_parameters() == count100);
  }
  CHECK(models::create("cct_7_3x1_32_c100")->num_parameters() == 3783269);
  CHECK(models::create("cct_7_7x2_224")->num_parameters() == 4573735);
  CHECK(models::create("cct_14_7x2_224")->num_parameters() == 22367273);
  CHECK(models::create("cct_14_7x2_384")->num_parameters() == 22513193);
  // A sine table is a parameter that is not trained.
  auto sine = models::create("cct_7_3x1_32_sine");
  CHECK(sine->num_parameters(/*trainable_only=*/true) == 3694603);
  CHECK(sine->num_parameters() == 3760139);
  CHECK(models::create("vit_7_4_32_sine")->num_parameters(true) == 3700234);
  // Per encoder block: 4D² + 2DF + 6D + F.
  auto block = models::create("cct_7_3x1_32")->classifier->blocks->at<cct::nn::TransformerEncoderLayer<float>>(0);
  CHECK(block->num_parameters() == 4 * 256 * 256 + 2 * 256 * 512 + 6 * 256 + 512);
}

TEST_CASE("every registered variant builds, and unknown names list the known ones", "[models]") {
  cct::nn::init::SkipInitGuard structure_only;  // counts and names need no random weights
  for (const auto& name : models::registered_models()) {
    if (name.find("_224") != std::string::npos || name.find("_384") != std::string::npos) continue;  // large
    INFO(name);
    auto model = models::create(name);
    CHECK(model->num_parameters() > 0);
    CHECK(model->config().name == name);
  }
  REQUIRE_THROWS_WITH(models::create("cct_3_3x2_32"), Catch::Contains("unknown model 'cct_3_3x2_32'") &&
                                                        Catch::Contains("cct_7_3x1_32") && Catch::Contains("vit_7_4_32"));
  REQUIRE(models::create("vit_lite_7_4_32")->num_parameters() == 3716874);
}

TEST_CASE("tensor names and shapes equal the reference listing", "[models]") {
  cct::nn::init::SkipInitGuard structure_only;  // counts and names need no random weights
  for (const std::string name : {"cct_2_3x2_32", "cct_7_3x1_32", "cvt_7_4_32", "vit_7_4_32"}) {
    INFO(name);
    auto model = models::create(name);
    const auto expected = reference_listing(model->config(), model->sequence_length());
    const auto actual = model->state_dict();
    REQUIRE(actual.size() == expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      INFO(expected[i].first);
      CHECK(actual[i].first == expected[i].first);
      CHECK(actual[i].second.shape() == expected[i].second);
    }
  }
  CHECK(models::create("cct_7_3x1_32")->sequence_length() == 256);
  CHECK(models::create("cct_2_3x2_32")->sequence_length() == 64);
  CHECK(models::create("cct_14_7x2_224")->sequence_length() == 196);
  CHECK(models::create("cct_14_7x2_384")->sequence_length() == 576);
}

TEST_CASE("initialisation follows the reference", "[models]") {
  auto model = models::create("cct_7_3x1_32", {10});
  std::map<std::string, Tensor<float>> params;
  for (const auto& [name, tensor] : model->named_parameters()) params[name] = tensor;
  auto stats = [](const Tensor<float>& t) {
    double sum = 0, sq = 0;
    for (float v : t.to_vector()) sum += v, sq += double(v) * v;
    const double mean = sum / t.numel();
    return std::make_pair(mean, std::sqrt(sq / t.numel() - mean * mean));
  };
  CHECK(stats(params["classifier.blocks.0.self_attn.qkv.weight"]).second == Approx(0.02).epsilon(0.03));
  CHECK(stats(params["classifier.positional_emb"]).second == Approx(0.2).epsilon(0.03));
  CHECK(stats(params["tokenizer.conv_layers.0.0.weight"]).second == Approx(std::sqrt(2.0 / 27)).epsilon(0.1));
  for (float v : params["classifier.blocks.0.linear1.bias"].to_vector()) CHECK(v == 0.0f);
  for (float v : params["classifier.norm.weight"].to_vector()) CHECK(v == 1.0f);
  // Same seed → same weights; different seed → different weights.
  auto again = models::create("cct_2_3x2_32", {10, 0, 0, {}, {}, {}, {}, 5});
  auto same = models::create("cct_2_3x2_32", {10, 0, 0, {}, {}, {}, {}, 5});
  auto other = models::create("cct_2_3x2_32", {10, 0, 0, {}, {}, {}, {}, 6});
  CHECK(again->state_dict()[0].second.to_vector() == same->state_dict()[0].second.to_vector());
  CHECK(again->state_dict()[0].second.to_vector() != other->state_dict()[0].second.to_vector());
  // The sine table is the reference's formula and frozen.
  auto sine = models::create("cct_2_3x2_32_sine");
  auto pe = sine->classifier->positional_emb;
  CHECK_FALSE(pe.requires_grad());
  CHECK(pe(0, 3, 0) == Approx(std::sin(3.0)));
  CHECK(pe(0, 3, 1) == Approx(std::cos(3.0)));
  CHECK(pe(0, 5, 6) == Approx(std::sin(5.0 / std::pow(10000.0, 6.0 / 128))));
  CHECK(pe(0, 5, 7) == Approx(std::cos(5.0 / std::pow(10000.0, 6.0 / 128))));
}

TEST_CASE("forward shapes, 28x28 one-channel input and input errors", "[models]") {
  cct::NoGradGuard no_grad;
  auto model = models::create("cct_2_3x2_32");
  model->eval();
  auto logits = model->forward(Tensor<float>::randn({3, 3, 32, 32}));
  CHECK(logits.shape() == Shape{3, 10});
  auto fashion = models::create("cct_2_3x2_32", {10, 1, 28});
  fashion->eval();
  CHECK(fashion->sequence_length() == 49);
  CHECK(fashion->forward(Tensor<float>::randn({2, 1, 28, 28})).shape() == Shape{2, 10});
  auto vit = models::create("vit_2_4_32", {10, 1, 28});
  CHECK(vit->forward(Tensor<float>::randn({2, 1, 28, 28})).shape() == Shape{2, 10});
  REQUIRE_THROWS_WITH(model->forward(Tensor<float>::randn({2, 3, 28, 28})),
                      Catch::Contains("cct_2_3x2_32") && Catch::Contains("(2, 3, 28, 28)"));
}

TEST_CASE("dropout, drop-path and attention dropout act only in training", "[models]") {
  auto model = models::create("cct_2_3x2_32");
  auto images = Tensor<float>::randn({4, 3, 32, 32});
  cct::NoGradGuard no_grad;
  model->eval();
  CHECK(model->forward(images).to_vector() == model->forward(images).to_vector());
  model->train();
  CHECK(model->forward(images).to_vector() != model->forward(images).to_vector());
  CHECK(model->classifier->blocks->at<cct::nn::TransformerEncoderLayer<float>>(1)->drop_path->p() == Approx(0.1));
  CHECK(model->classifier->blocks->at<cct::nn::TransformerEncoderLayer<float>>(0)->drop_path->p() == 0.0);
}

TEST_CASE("whole-model gradients match finite differences (double)", "[models][gradcheck]") {
  for (auto family : {models::Family::kCCT, models::Family::kCVT, models::Family::kViTLite}) {
    INFO(models::family_name(family));
    auto model = models::create<double>(tiny_config(family));
    model->eval();  // dropout off: the function must be deterministic
    auto images = cct::testing::random_leaf({2, 2, 4, 4}, 21);
    cct::testing::check_gradients([&](const std::vector<Tensor<double>>& x) { return model->forward(x[0]); }, {images});

    // Every parameter tensor: a few elements each, against central differences of a weighted loss.
    auto weights = cct::testing::random_constant({2, 3}, 22);
    auto loss_of = [&]() { return cct::sum(cct::mul(model->forward(images), weights)).item(); };
    model->zero_grad();
    cct::sum(cct::mul(model->forward(images), weights)).backward();
    cct::NoGradGuard no_grad;
    for (auto& [name, p] : model->named_parameters()) {
      if (!p.requires_grad()) continue;
      INFO(name);
      REQUIRE(p.grad().defined());
      for (int64_t i = 0; i < p.numel(); i += std::max<int64_t>(1, p.numel() / 5)) {
        const double saved = p.data()[i], h = 1e-6;
        p.data()[i] = saved + h;
        const double plus = loss_of();
        p.data()[i] = saved - h;
        const double minus = loss_of();
        p.data()[i] = saved;
        CHECK(p.grad().data()[i] == Approx((plus - minus) / (2 * h)).margin(1e-6).epsilon(1e-4));
      }
    }
  }
}

// ---- encoder blocks of your own, through the classifier's block factory --------------------------

namespace {

// Three blocks of width 16 (2 heads, MLP 32) over 5 tokens, SeqPool, 3 classes.
cct::nn::ClassifierConfig small_classifier_config() {
  cct::nn::ClassifierConfig config;
  config.embedding_dim = 16;
  config.num_layers = 3;
  config.num_heads = 2;
  config.mlp_ratio = 2.0;
  config.num_classes = 3;
  config.sequence_length = 5;
  config.stochastic_depth = 0.2;
  return config;
}

using FloatTensors = cct::nn::NamedTensors<float>;

}  // namespace

TEST_CASE("a custom encoder block plugs into the classifier through the factory and trains", "[models][blocks]") {
  namespace nn = cct::nn;
  const nn::ClassifierConfig config = small_classifier_config();
  std::vector<std::pair<int64_t, double>> asked;  // (index, drop-path rate) of each block the factory built
  const nn::EncoderBlockFactory<float> factory = [&](int64_t index, const nn::EncoderLayerConfig& layer,
                                                     cct::Generator& gen) -> std::shared_ptr<nn::EncoderBlock<float>> {
    asked.emplace_back(index, layer.drop_path);
    CHECK(layer.embedding_dim == 16);
    CHECK(layer.num_heads == 2);
    CHECK(layer.mlp_hidden_dim == 32);
    return std::make_shared<LayerScaleBlock<float>>(layer, /*init_value=*/0.5, gen);
  };
  cct::Generator gen(3);
  nn::TransformerClassifier<float> classifier(config, gen, factory);

  // The factory is asked for each block in order, with the stochastic-depth rate rising linearly to the last.
  REQUIRE(asked.size() == 3);
  for (int64_t l = 0; l < 3; ++l) {
    CHECK(asked[l].first == l);
    CHECK(asked[l].second == Approx(0.2 * l / 2));
  }
  REQUIRE(classifier.blocks->at<LayerScaleBlock<float>>(2)->drop_path->p() == Approx(0.2));

  // Names fall out of the tree: the classifier's own, then the block's children under blocks.<index>.
  std::vector<std::string> keys;
  for (const auto& [key, tensor] : classifier.state_dict()) keys.push_back(key);
  const std::vector<std::string> block_keys = {
      "blocks.1.norm1.weight",   "blocks.1.norm1.bias",    "blocks.1.attn.qkv.weight", "blocks.1.attn.proj.weight",
      "blocks.1.attn.proj.bias", "blocks.1.ls1.gamma",     "blocks.1.norm2.weight",    "blocks.1.norm2.bias",
      "blocks.1.linear1.weight", "blocks.1.linear1.bias",  "blocks.1.linear2.weight",  "blocks.1.linear2.bias",
      "blocks.1.ls2.gamma"};
  REQUIRE(keys.size() == 3 + 3 * block_keys.size() + 4);  // positional_emb, attention_pool; norm, fc
  CHECK(std::vector<std::string>(keys.begin(), keys.begin() + 3) ==
        std::vector<std::string>{"positional_emb", "attention_pool.weight", "attention_pool.bias"});
  CHECK(std::vector<std::string>(keys.begin() + 3 + 13, keys.begin() + 3 + 26) == block_keys);
  CHECK(std::vector<std::string>(keys.end() - 4, keys.end()) ==
        std::vector<std::string>{"norm.weight", "norm.bias", "fc.weight", "fc.bias"});
  CHECK(classifier.find_parameter("blocks.2.ls2.gamma").to_vector() == std::vector<float>(16, 0.5f));

  // Tiny data: 12 token sequences whose mean depends on the class.
  cct::Generator data_gen(11);
  Tensor<float> tokens = Tensor<float>::randn({12, 5, 16}, data_gen);
  Tensor<int64_t> labels = Tensor<int64_t>::empty({12});
  for (int64_t i = 0; i < 12; ++i) {
    labels(i) = i % 3;
    for (int64_t j = 0; j < 5 * 16; ++j) tokens.data()[i * 5 * 16 + j] += 0.5f * static_cast<float>(i % 3 - 1);
  }

  // Gradients reach every parameter of every block, LayerScale's γ included.
  classifier.train();
  cct::cross_entropy(classifier.forward(tokens), labels).backward();
  for (const auto& [name, parameter] : classifier.named_parameters()) {
    INFO(name);
    REQUIRE(parameter.grad().defined());
    const std::vector<float> grad = parameter.grad().to_vector();
    CHECK(std::any_of(grad.begin(), grad.end(), [](float g) { return g != 0.0f && std::isfinite(g); }));
  }

  // And the loss falls over a few AdamW steps.
  classifier.eval();  // deterministic steps: no dropout, no drop-path
  cct::optim::AdamW<float> optimizer(classifier.named_parameters(), cct::optim::AdamWOptions{/*lr=*/1e-2});
  std::vector<float> losses;
  for (int step = 0; step < 15; ++step) {
    Tensor<float> loss = cct::cross_entropy(classifier.forward(tokens), labels);
    losses.push_back(loss.item());
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  INFO("first loss " << losses.front() << ", last " << losses.back());
  REQUIRE(losses.back() < 0.5f * losses.front());

  // The attention maps of the custom blocks reach the trace, one per block.
  cct::NoGradGuard no_grad;
  nn::ClassifierTrace trace;
  trace.want_attention = true;
  classifier.forward(tokens, Tensor<uint8_t>(), &trace);
  REQUIRE(trace.attention.size() == 3);
  for (const auto& map : trace.attention) CHECK(map.shape() == Shape{12, 2, 5, 5});

  // What it saves loads back into the same architecture (other weights until loaded) and gives its logits.
  cct::Generator other_gen(4);
  nn::TransformerClassifier<float> reloaded(config, other_gen, layer_scale_blocks<float>());
  reloaded.eval();
  REQUIRE(reloaded.forward(tokens).to_vector() != classifier.forward(tokens).to_vector());
  FloatTensors saved;
  for (const auto& [key, tensor] : classifier.state_dict()) saved.emplace_back(key, tensor.clone());
  reloaded.load_state_dict(saved);
  REQUIRE(reloaded.forward(tokens).to_vector() == classifier.forward(tokens).to_vector());
}

TEST_CASE("the default blocks are the reference's, and a broken factory is refused", "[models][blocks]") {
  namespace nn = cct::nn;
  const nn::ClassifierConfig config = small_classifier_config();
  // No factory and the reference's factory build the same blocks from the same draws.
  cct::Generator gen_a(5), gen_b(5);
  nn::TransformerClassifier<float> by_default(config, gen_a);
  nn::TransformerClassifier<float> explicit_reference(config, gen_b, nn::reference_encoder_block<float>());
  const auto a = by_default.state_dict(), b = explicit_reference.state_dict();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    CHECK(a[i].first == b[i].first);
    CHECK(a[i].second.to_vector() == b[i].second.to_vector());
  }
  CHECK(by_default.blocks->at<nn::TransformerEncoderLayer<float>>(0)->type_name() == "TransformerEncoderLayer");
  CHECK(by_default.find_parameter("blocks.2.self_attn.qkv.weight").shape() == Shape{48, 16});

  REQUIRE_THROWS_WITH(nn::TransformerClassifier<float>(config, gen_a, nn::EncoderBlockFactory<float>()),
                      Catch::Contains("factory is empty") && Catch::Contains("reference_encoder_block"));
  const nn::EncoderBlockFactory<float> returns_null = [](int64_t, const nn::EncoderLayerConfig&, cct::Generator&) {
    return std::shared_ptr<nn::EncoderBlock<float>>();
  };
  REQUIRE_THROWS_WITH(nn::TransformerClassifier<float>(config, gen_a, returns_null),
                      Catch::Contains("returned no block for block 0"));
}

// ---- mixed precision (core/precision.hpp) on whole models ---------------------------------------------

TEST_CASE("bf16 logits stay close to fp32 for every registered CIFAR variant", "[models][bf16]") {
  // Tolerance: bf16 operands carry relative error ≤ 2^-8 per product, and through up to 7 encoder layers
  // the logits (about ±0.1–0.8 at initialisation) moved by at most 0.4% of the largest one when this was
  // written (0.0031 of 0.75, cct_6_3x2_32). Required: max |Δlogit| ≤ 0.02·max |logit| + 0.001 (about 5x
  // that), and the bf16 logits must differ from fp32 (the products really ran in bf16).
  cct::NoGradGuard no_grad;
  cct::Generator gen(8);
  const Tensor<float> images = Tensor<float>::randn({4, 3, 16, 16}, gen);
  int checked = 0;
  for (const auto& name : models::registered_models()) {
    if (name.find("_224") != std::string::npos || name.find("_384") != std::string::npos) continue;  // not CIFAR
    INFO(name);
    auto model = models::create(name, {10, 3, /*image_size=*/16});
    model->eval();
    const Tensor<float> fp32 = model->forward(images);
    Tensor<float> bf16;
    {
      cct::PrecisionGuard guard(cct::Precision::kBF16);
      bf16 = model->forward(images);
    }
    double largest = 0;
    for (float v : fp32.to_vector()) largest = std::max(largest, std::fabs(static_cast<double>(v)));
    const double difference = cct::testing::max_difference(bf16, fp32);
    CAPTURE(largest, difference);
    CHECK(difference <= 0.02 * largest + 0.001);
    CHECK(difference > 0);
    ++checked;
  }
  CHECK(checked >= 10);
}

TEST_CASE("a small CCT trained in bf16 reaches the same loss band as in fp32", "[models][bf16][training]") {
  // Same initialisation and data, 40 AdamW steps on a fixed batch of 32 images, dropout off so both runs
  // see the same function. Master weights, gradients and AdamW state stay fp32 in both. The band: the
  // mean loss of the last 5 steps within 10% (+0.02) of fp32's, both far below the start.
  cct::models::ModelConfig config = cct::models::cct_config(2, 3, 2, /*image_size=*/16, /*num_classes=*/10);
  config.embedding_dim = 64;
  config.dropout = config.attention_dropout = config.stochastic_depth = 0;
  config.seed = 1;
  cct::Generator gen(5);
  const Tensor<float> images = Tensor<float>::randn({32, 3, 16, 16}, gen);
  Tensor<int64_t> labels = Tensor<int64_t>::empty({32});
  for (int64_t i = 0; i < 32; ++i) labels(i) = gen.randint(10);

  auto train = [&](cct::Precision precision) {
    auto model = models::create(config);
    model->train();
    cct::optim::AdamW<float> optimizer(model->named_parameters(), {/*lr=*/2e-3, 0.9, 0.999, 1e-8, /*wd=*/0.0});
    std::vector<float> losses;
    for (int step = 0; step < 40; ++step) {
      Tensor<float> loss;
      {
        cct::PrecisionGuard guard(precision);
        loss = cct::cross_entropy(model->forward(images), labels);
      }
      optimizer.zero_grad();
      loss.backward();  // the products keep their forward's precision
      optimizer.step();
      losses.push_back(loss.item());
    }
    return losses;
  };
  const std::vector<float> fp32 = train(cct::Precision::kFP32), bf16 = train(cct::Precision::kBF16);
  auto tail_mean = [](const std::vector<float>& losses) {  // the last 5 steps
    return (losses[35] + losses[36] + losses[37] + losses[38] + losses[39]) / 5.0;
  };
  CAPTURE(fp32.front(), bf16.front(), tail_mean(fp32), tail_mean(bf16));
  CHECK(std::fabs(bf16.front() - fp32.front()) < 0.05);
  CHECK(tail_mean(fp32) < 0.6 * fp32.front());  // it learned
  // Measured when written: 2.274 -> 0.143 (fp32) and 2.274 -> 0.140 (bf16).
  CHECK(std::fabs(tail_mean(bf16) - tail_mean(fp32)) <= 0.1 * tail_mean(fp32) + 0.02);
}
