// cct against PyTorch: checkpoints written by an independent PyTorch implementation of the reference
// (tests/fixtures/reference_models.py) rebuild the same model from their metadata, load strictly, and
// give the reference's logits, in float and in double.
//
// The fixtures (tests/fixtures/parity_*.safetensors, from make_parity_fixtures.py) hold the state dict,
// cct's model metadata, and under "training." (ignored by load_weights) an input batch and the reference's
// float32 and float64 logits. The full-size registered models are checked on demand (not in ctest, as it
// must not need torch):
//   /usr/bin/python3 tests/fixtures/make_parity_fixtures.py --registered cct_7_3x1_32 --out /tmp/x.safetensors
//   CCT_PARITY_FILE=/tmp/x.safetensors ./tests/test_pytorch_parity "[parity-file]" -s
// (-s prints the captured differences of passing checks.) tests/fixtures/check_converter.sh runs the same
// check on weights saved with torch.save and converted by scripts/convert_checkpoint.py.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <cct/autograd/grad_mode.hpp>
#include <cct/models/checkpoint.hpp>
#include <cct/models/registry.hpp>

#include "test_helpers.hpp"

using cct::Tensor;
namespace io = cct::io;
namespace models = cct::models;

namespace {

const std::string kFixtureDir = std::string(CCT_SOURCE_DIR) + "/tests/fixtures/";

template <typename A, typename B>
double max_abs_difference(const Tensor<A>& a, const Tensor<B>& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a.data()[i]) - static_cast<double>(b.data()[i])));
  return worst;
}

template <typename T>
double max_abs(const Tensor<T>& a) {
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::abs(static_cast<double>(a.data()[i])));
  return worst;
}

// Differences span 1e-16 to 1e-4; Catch2 prints doubles in fixed notation, so capture them as text.
std::string scientific(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3e", value);
  return text;
}

bool is_training_entry(const std::string& name) { return name.rfind("training.", 0) == 0; }

// Everything a parity file asserts. The input and the reference logits are read from `reference_path`
// (by default the checkpoint itself).
void check_parity_file(const std::string& path, std::string reference_path = "") {
  if (reference_path.empty()) reference_path = path;
  CAPTURE(path, reference_path);
  const models::ModelConfig config = models::read_model_config(path);
  CAPTURE(config.name);
  const io::SafeTensorsReader reader(path), reference(reference_path);
  const Tensor<float> input = reference.read<float>("training.input");
  const Tensor<float> expected_f32 = reference.read<float>("training.logits_f32");
  const Tensor<double> expected_f64 = reference.read<double>("training.logits_f64");
  cct::NoGradGuard no_grad;

  // float: load strictly through the checkpoint API; the training.* entries are ignored.
  auto model = models::create<float>(config);
  model->eval();
  const Tensor<float> own_table =
      model->classifier->positional_emb.defined() ? model->classifier->positional_emb.clone() : Tensor<float>();
  const io::LoadReport report = models::load_weights(path, *model);
  REQUIRE(report.complete());
  const auto state = model->state_dict();
  REQUIRE(report.loaded.size() == state.size());

  // Names in the file's order (PyTorch's state-dict order) equal cct's state-dict order.
  std::vector<std::string> file_names, model_names;
  for (const auto& info : reader.tensors())
    if (!is_training_entry(info.name)) file_names.push_back(info.name);
  for (const auto& entry : state) model_names.push_back(entry.first);
  REQUIRE(model_names == file_names);

  // A sine table is a fixed function: cct's own matches the reference's. The reference rounds the angle
  // p / 10000^(2i/D) to float32 before taking sin/cos, so an entry may differ by half an ulp of the
  // largest position p (p · 2^-24) plus float rounding.
  if (config.positional_embedding == cct::nn::PositionalEmbedding::kSine) {
    const double sine_table_difference = max_abs_difference(own_table, reader.read<float>("classifier.positional_emb"));
    const double largest_position = static_cast<double>(own_table.size(1) - 1);
    const std::string sine_table_max_difference = scientific(sine_table_difference);
    CAPTURE(sine_table_max_difference);
    REQUIRE(sine_table_difference < largest_position * std::ldexp(1.0, -23) + 1e-6);
  }

  const Tensor<float> logits = model->forward(input);
  const double logit_scale = max_abs(expected_f64);
  const double max_difference_f32 = max_abs_difference(logits, expected_f32);
  const double max_difference_to_f64 = max_abs_difference(logits, expected_f64);
  const std::string float_vs_torch_float32 = scientific(max_difference_f32);
  const std::string float_vs_torch_float64 = scientific(max_difference_to_f64);
  CAPTURE(logit_scale, float_vs_torch_float32, float_vs_torch_float64);
  REQUIRE(logit_scale > 0.1);  // the fixture's logits are not vanishingly small (the check would be weak)
  REQUIRE(max_difference_f32 < 1e-4);
  REQUIRE(max_difference_to_f64 < 1e-4);

  // double: the same float32 weights, widened, against PyTorch in float64; agreement to rounding.
  auto model64 = models::create<double>(config);
  model64->eval();
  cct::nn::NamedTensors<double> widened;
  for (const auto& info : reader.tensors())
    if (!is_training_entry(info.name)) widened.emplace_back(info.name, reader.read_converted<double>(info.name));
  model64->load_state_dict(widened, /*strict=*/true);
  const Tensor<double> logits64 = model64->forward(input.to<double>());
  const double max_difference_f64 = max_abs_difference(logits64, expected_f64);
  const std::string double_vs_torch_float64 = scientific(max_difference_f64);
  CAPTURE(double_vs_torch_float64);
  REQUIRE(max_difference_f64 < 1e-9);
}

}  // namespace

TEST_CASE("PyTorch-written checkpoints rebuild their model and give the reference's logits", "[parity][torch]") {
  for (const char* name : {"parity_cct", "parity_cct_sine", "parity_cvt", "parity_vit", "parity_vit_sine"}) {
    SECTION(name) { check_parity_file(kFixtureDir + name + ".safetensors"); }
  }
}

TEST_CASE("parity fixtures cover the model families and their options", "[parity][torch]") {
  // Guards against a regenerated fixture set that silently loses a case.
  const auto config = [](const char* name) { return models::read_model_config(kFixtureDir + name + ".safetensors"); };
  using models::Family;
  using cct::nn::PositionalEmbedding;
  CHECK(config("parity_cct").family == Family::kCCT);
  CHECK(config("parity_cct").num_conv_layers == 2);
  CHECK(config("parity_cct_sine").kernel_size == 7);
  CHECK(config("parity_cct_sine").in_channels == 1);
  CHECK(config("parity_cct_sine").positional_embedding == PositionalEmbedding::kSine);
  CHECK(config("parity_cvt").family == Family::kCVT);
  CHECK(config("parity_cvt").mlp_ratio == 1.5);
  CHECK(config("parity_vit").family == Family::kViTLite);
  CHECK(config("parity_vit").positional_embedding == PositionalEmbedding::kLearnable);
  CHECK(config("parity_vit_sine").family == Family::kViTLite);
  CHECK(config("parity_vit_sine").positional_embedding == PositionalEmbedding::kSine);
  // The fixture's input and logits really are what the checks above compare against.
  const io::SafeTensorsReader reader(kFixtureDir + "parity_cct.safetensors");
  CHECK(reader.info("training.input").shape == cct::Shape({3, 3, 16, 16}));
  CHECK(reader.info("training.logits_f32").shape == cct::Shape({3, 5}));
  CHECK(reader.info("training.logits_f64").dtype == io::DType::F64);
  CHECK(reader.metadata().at("format") == models::kCheckpointFormat);
}

// Manual: a file from make_parity_fixtures.py --registered NAME, or one converted from a PyTorch
// checkpoint by scripts/convert_checkpoint.py with the reference input and logits in the file named by
// CCT_PARITY_REFERENCE. Hidden from ctest (tag "[.]"); run it explicitly with CCT_PARITY_FILE set
// (without the variable it fails, saying so).
TEST_CASE("a registered model written by PyTorch (CCT_PARITY_FILE) gives the reference's logits", "[.][parity-file]") {
  const char* path = std::getenv("CCT_PARITY_FILE");
  if (!path || !*path)
    FAIL("set CCT_PARITY_FILE to a file from tests/fixtures/make_parity_fixtures.py --registered NAME --out FILE");
  // The Python registry copy (scripts/convert_checkpoint.py) wrote the metadata: it must be cct's.
  const models::ModelConfig config = models::read_model_config(path);
  CAPTURE(config.name);
  REQUIRE(config == models::make_config(config.name));
  const char* reference = std::getenv("CCT_PARITY_REFERENCE");
  check_parity_file(path, reference ? reference : "");
}
