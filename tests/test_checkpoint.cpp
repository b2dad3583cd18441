// Model checkpoints (models/checkpoint.hpp): bit-exact round trips, the config rebuilt from metadata,
// strict loading errors that name the file and the tensor, lenient loading into a new head, and
// atomic saving that never leaves a partial or damaged checkpoint behind.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <cct/autograd/grad_mode.hpp>
#include <cct/models/checkpoint.hpp>
#include <cct/models/registry.hpp>

#include "test_helpers.hpp"

using cct::Shape;
using cct::Tensor;
namespace fs = std::filesystem;
namespace io = cct::io;
namespace models = cct::models;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("cct_test_checkpoint_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(path)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

// A small CCT (quick to build, run and save), 1 layer: fewer than 20 tensors, so error summaries list
// every name.
models::ModelConfig small_config(uint64_t seed = 1) {
  models::ModelConfig c;
  c.name = "small_cct";
  c.family = models::Family::kCCT;
  c.num_layers = 1;
  c.num_heads = 2;
  c.embedding_dim = 16;
  c.mlp_ratio = 2.0;
  c.kernel_size = 3;
  c.num_conv_layers = 2;
  c.image_size = 8;
  c.num_classes = 3;
  c.seed = seed;
  return c;
}

models::ModelOptions seeded(uint64_t seed, int64_t num_classes = 0) {
  models::ModelOptions options;
  options.seed = seed;
  options.num_classes = num_classes;
  return options;
}

template <typename T>
bool bitwise_equal(const Tensor<T>& a, const Tensor<T>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<size_t>(a.numel())) == 0;
}

template <typename T>
void require_same_state(const models::CompactTransformer<T>& a, const models::CompactTransformer<T>& b) {
  const auto left = a.state_dict(), right = b.state_dict();
  REQUIRE(left.size() == right.size());
  for (size_t i = 0; i < left.size(); ++i) {
    INFO(left[i].first);
    REQUIRE(left[i].first == right[i].first);
    REQUIRE(bitwise_equal(left[i].second, right[i].second));
  }
}

std::string read_bytes(const std::string& path) { return io::read_file(path); }
void write_bytes(const std::string& path, const std::string& bytes) { io::write_file_atomic(path, bytes); }

// The model's tensors with one removed / added / replaced, saved with the model's own metadata.
void save_edited(const std::string& path, const models::CompactTransformer<float>& model,
                 const std::function<void(cct::nn::NamedTensors<float>&)>& edit) {
  auto tensors = model.state_dict();
  edit(tensors);
  io::Metadata metadata = model.config().to_metadata();
  metadata["format"] = models::kCheckpointFormat;
  io::save_safetensors(path, tensors, metadata);
}

std::string load_error(const std::string& path, models::CompactTransformer<float>& model) {
  try {
    models::load_weights(path, model);
  } catch (const cct::IoError& error) {
    return error.what();
  }
  return "(no error)";
}

// The message of the cct::Error `fn` throws ("(no error)" when it throws none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const cct::Error& error) {
    return error.what();
  }
  return "(no error)";
}

void require_contains_all(const std::string& message, const std::vector<std::string>& parts) {
  CAPTURE(message);
  for (const std::string& part : parts) {
    INFO("expected: " << part);
    REQUIRE(message.find(part) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("save_model / load_model round-trip bit-exactly", "[io][checkpoint]") {
  TempDir dir;
  cct::NoGradGuard no_grad;
  cct::Generator gen(11);
  for (const std::string name : {"cct_2_3x2_32", "vit_2_4_32_sine"}) {
    INFO(name);
    auto model = models::create(name, seeded(7));
    model->eval();
    const std::string path = dir.file(name + ".safetensors");
    const Tensor<float> epoch = Tensor<float>::scalar(12.0f);
    models::save_model(path, *model, {{"note", "saved by test_checkpoint"}}, {{"training.epoch", epoch}});

    auto loaded = models::load_model(path);
    REQUIRE(loaded->config() == model->config());
    REQUIRE(loaded->type_name() == model->type_name());
    REQUIRE(loaded->is_training());  // a new model, as in PyTorch
    loaded->eval();
    require_same_state(*loaded, *model);
    // The frozen sine table stays frozen.
    if (model->config().positional_embedding == cct::nn::PositionalEmbedding::kSine) {
      REQUIRE_FALSE(loaded->classifier->positional_emb.requires_grad());
      REQUIRE(loaded->num_parameters(true) == model->num_parameters(true));
    }

    const Tensor<float> images = Tensor<float>::randn({2, 3, 32, 32}, gen);
    REQUIRE(bitwise_equal(loaded->forward(images), model->forward(images)));

    // The user's metadata and the training entry are in the file, next to the config.
    const io::SafeTensorsReader reader(path);
    REQUIRE(reader.metadata().at("note") == "saved by test_checkpoint");
    REQUIRE(reader.metadata().at("format") == models::kCheckpointFormat);
    REQUIRE(reader.metadata().at("model") == name);
    REQUIRE(reader.read<float>("training.epoch").item() == 12.0f);
  }

  // Double models round-trip too (F64 tensors), and saving again gives the same bytes.
  auto model64 = models::create<double>(small_config(3));
  const std::string path64 = dir.file("small64.safetensors");
  models::save_model(path64, *model64);
  auto loaded64 = models::load_model<double>(path64);
  require_same_state(*loaded64, *model64);
  models::save_model(dir.file("again.safetensors"), *loaded64);
  REQUIRE(read_bytes(dir.file("again.safetensors")) == read_bytes(path64));
}

TEST_CASE("checkpoint metadata rebuilds the same model config", "[io][checkpoint]") {
  // Every registered variant, through the string map that checkpoints store.
  for (const std::string& name : models::registered_models()) {
    INFO(name);
    const models::ModelConfig config = models::make_config(name);
    REQUIRE(models::ModelConfig::from_metadata(config.to_metadata(), "test") == config);
  }
  // Options that change the architecture or regularisation survive too, through a real file.
  TempDir dir;
  models::ModelOptions options = seeded(5, 7);
  options.in_channels = 1;
  options.image_size = 28;
  options.positional_embedding = cct::nn::PositionalEmbedding::kNone;
  options.dropout = 0.05;
  options.attention_dropout = 0.2;
  options.stochastic_depth = 0.3;
  auto model = models::create("vit_lite_2_4_32", options);
  const std::string path = dir.file("vit.safetensors");
  models::save_model(path, *model);
  const models::ModelConfig read = models::read_model_config(path);
  REQUIRE(read == model->config());
  REQUIRE(read.name == "vit_lite_2_4_32");
  REQUIRE(read.num_classes == 7);
  REQUIRE(read.image_size == 28);
  REQUIRE(read.in_channels == 1);
  REQUIRE(read.positional_embedding == cct::nn::PositionalEmbedding::kNone);
  REQUIRE(read.dropout == 0.05);
  REQUIRE(read.attention_dropout == 0.2);
  REQUIRE(read.stochastic_depth == 0.3);
  auto loaded = models::load_model(path);
  require_same_state(*loaded, *model);

  // Damaged metadata is reported with the file and the key; integers parse whole ("12abc" is not 12).
  const std::string damaged = dir.file("damaged.safetensors");
  for (const char* value : {"two", "12abc", "", "2.0"}) {
    INFO("num_layers = '" << value << "'");
    io::Metadata bad = model->config().to_metadata();
    bad["format"] = models::kCheckpointFormat;
    bad["num_layers"] = value;
    io::save_safetensors(damaged, model->state_dict(), bad);
    REQUIRE_THROWS_WITH(models::read_model_config(damaged),
                        Catch::Contains(damaged) && Catch::Contains("metadata 'num_layers' is not an integer: '" +
                                                                    std::string(value) + "'"));
    REQUIRE_THROWS_AS(models::load_model(damaged), cct::IoError);
  }
  REQUIRE_THROWS_WITH(models::ModelConfig::from_metadata({{"num_layers", "12abc"}, {"model", "m"}, {"family", "cct"}}, "f"),
                      Catch::Contains("f: metadata 'num_layers' is not an integer: '12abc'"));
}

TEST_CASE("a file without cct's format marker holds weights only: load_weights takes it, load_model says what to do",
          "[io][checkpoint]") {
  TempDir dir;
  auto model = models::create("cct_2_3x2_32", seeded(5));
  // No metadata, PyTorch's {"format": "pt"}, and foreign metadata that names a model (as a converter
  // might write it) but is not cct's: all three are weights only.
  const std::vector<io::Metadata> foreign = {{}, {{"format", "pt"}}, {{"model", "cct_2_3x2_32"}}};
  for (size_t i = 0; i < foreign.size(); ++i) {
    INFO("metadata #" << i);
    const std::string path = dir.file("weights_" + std::to_string(i) + ".safetensors");
    io::save_safetensors(path, model->state_dict(), foreign[i]);
    const std::vector<std::string> weights_only = {path, "has no model config in its metadata", "holds weights only",
                                                   "models::create(name)", "models::load_weights(path, model)"};
    require_contains_all(error_of([&] { models::read_model_config(path); }), weights_only);
    require_contains_all(error_of([&] { models::load_model(path); }), weights_only);
    // The route the message names works.
    auto built = models::create("cct_2_3x2_32", seeded(6));
    REQUIRE(models::load_weights(path, *built).complete());
    require_same_state(*built, *model);
    // Strict loading still checks every tensor: weights of another model are refused by name.
    auto other = models::create("cct_2_3x2_32", seeded(6, 7));
    REQUIRE_THROWS_WITH(models::load_weights(path, *other), Catch::Contains(path) && Catch::Contains("classifier.fc.weight"));
  }
}

TEST_CASE("the rebuild and load names refuse a checkpoint of the other kind and name the right function",
          "[io][checkpoint]") {
  TempDir dir;
  models::TextModelOptions options;
  options.vocab_size = 20;
  auto text_model = models::create_text("text_cct_2_k1", options);
  const std::string text_path = dir.file("text.safetensors");
  models::save_model(text_path, *text_model);
  const std::string image_path = dir.file("image.safetensors");
  models::save_model(image_path, *models::create("cct_2_3x2_32", seeded(1)));

  const std::vector<std::string> text_file = {text_path, "is a checkpoint of a text model (family 'text_cct')",
                                              "models::load_text_model(path)"};
  require_contains_all(error_of([&] { models::read_model_config(text_path); }), text_file);
  require_contains_all(error_of([&] { models::load_model(text_path); }), text_file);
  auto image_model = models::create("cct_2_3x2_32", seeded(2));
  require_contains_all(error_of([&] { models::load_weights(text_path, *image_model); }), text_file);

  const std::vector<std::string> image_file = {image_path, "is a checkpoint of an image model (family 'cct')",
                                               "models::load_model(path)"};
  require_contains_all(error_of([&] { models::read_text_model_config(image_path); }), image_file);
  require_contains_all(error_of([&] { models::load_text_model(image_path); }), image_file);
  require_contains_all(error_of([&] { models::load_weights(image_path, *text_model); }), image_file);

  // And each kind rebuilds through its own name, with the same meaning: the model the file was saved from.
  REQUIRE(models::load_model(image_path)->config() == models::read_model_config(image_path));
  REQUIRE(models::load_text_model(text_path).model->config() == text_model->config());
  REQUIRE_FALSE(models::load_text_model(text_path).has_vocabulary);
}

TEST_CASE("strict loading names the file and every offending tensor, and changes nothing", "[io][checkpoint]") {
  TempDir dir;
  auto source = models::create(small_config(1));
  auto target = models::create(small_config(2));
  const auto before = target->state_dict();
  std::vector<Tensor<float>> snapshot;
  for (const auto& entry : before) snapshot.push_back(entry.second.clone());
  const auto unchanged = [&] {
    const auto now = target->state_dict();
    for (size_t i = 0; i < now.size(); ++i)
      if (!bitwise_equal(now[i].second, snapshot[i])) return false;
    return true;
  };

  SECTION("missing tensor") {
    const std::string path = dir.file("missing.safetensors");
    save_edited(path, *source, [](auto& tensors) {
      tensors.erase(std::find_if(tensors.begin(), tensors.end(),
                                 [](const auto& e) { return e.first == "classifier.blocks.0.norm1.bias"; }));
    });
    const std::string message = load_error(path, *target);
    CAPTURE(message);
    REQUIRE(message.find(path) != std::string::npos);
    REQUIRE(message.find("1 missing from the file: 'classifier.blocks.0.norm1.bias'") != std::string::npos);
  }
  SECTION("unexpected tensor") {
    const std::string path = dir.file("unexpected.safetensors");
    save_edited(path, *source, [](auto& tensors) { tensors.emplace_back("classifier.head.weight", Tensor<float>::zeros({2})); });
    const std::string message = load_error(path, *target);
    CAPTURE(message);
    REQUIRE(message.find(path) != std::string::npos);
    REQUIRE(message.find("1 unexpected in the file: 'classifier.head.weight'") != std::string::npos);
    // Training entries are not unexpected: a training checkpoint loads as a model.
    save_edited(path, *source, [](auto& tensors) {
      tensors.emplace_back("optimizer.step", Tensor<float>::scalar(3.0f));
      tensors.emplace_back("training.epoch", Tensor<float>::scalar(4.0f));
    });
    REQUIRE(models::load_weights(path, *target).complete());
    require_same_state(*target, *source);
    return;  // the target was loaded on purpose
  }
  SECTION("wrong shape") {
    const std::string path = dir.file("shape.safetensors");
    save_edited(path, *source, [](auto& tensors) {
      for (auto& [name, tensor] : tensors)
        if (name == "classifier.fc.bias") tensor = Tensor<float>::zeros({4});
    });
    const std::string message = load_error(path, *target);
    CAPTURE(message);
    REQUIRE(message.find(path) != std::string::npos);
    REQUIRE(message.find("'classifier.fc.bias' (file F32 (4,), expected F32 (3,))") != std::string::npos);
  }
  SECTION("wrong dtype: a double checkpoint into a float model") {
    const std::string path = dir.file("double.safetensors");
    models::save_model(path, *models::create<double>(small_config(1)));
    const std::string message = load_error(path, *target);
    CAPTURE(message);
    REQUIRE(message.find(path) != std::string::npos);
    REQUIRE(message.find("'tokenizer.conv_layers.0.0.weight' (file F64 (64, 3, 3, 3), expected F32 (64, 3, 3, 3))") !=
            std::string::npos);
    REQUIRE(message.find("'classifier.fc.weight' (file F64 (3, 16), expected F32 (3, 16))") != std::string::npos);
  }
  SECTION("truncated file") {
    const std::string path = dir.file("truncated.safetensors");
    models::save_model(path, *source);
    const std::string bytes = read_bytes(path);
    write_bytes(path, bytes.substr(0, bytes.size() - 10));
    const std::string message = load_error(path, *target);
    CAPTURE(message);
    REQUIRE(message.find(path) != std::string::npos);
    REQUIRE(message.find("truncated") != std::string::npos);
    // The last tensor of the state dict is the one that runs past the end.
    REQUIRE(message.find("tensor 'classifier.fc.bias'") != std::string::npos);
    REQUIRE_THROWS_WITH(models::load_model(path), Catch::Contains(path) && Catch::Contains("truncated"));
    // Cut inside the header: too short for the header length it announces.
    write_bytes(path, bytes.substr(0, 100));
    REQUIRE_THROWS_WITH(models::load_weights(path, *target), Catch::Contains(path) && Catch::Contains("exceeds"));
  }
  SECTION("malformed header") {
    const std::string path = dir.file("malformed.safetensors");
    models::save_model(path, *source);
    std::string bytes = read_bytes(path);
    const size_t brace = bytes.find('{', 8);
    REQUIRE(brace == 8);
    bytes[brace] = '[';  // the header is no longer a JSON object... nor valid JSON
    write_bytes(path, bytes);
    const std::string message = load_error(path, *target);
    CAPTURE(message);
    REQUIRE(message.find(path) != std::string::npos);
    REQUIRE(message.find("malformed header") != std::string::npos);
  }
  SECTION("not a checkpoint at all") {
    const std::string path = dir.file("notes.txt");
    write_bytes(path, "these are not the weights you are looking for");
    const std::string message = load_error(path, *target);
    CAPTURE(message);
    REQUIRE(message.find(path) != std::string::npos);
  }
  REQUIRE(unchanged());
}

TEST_CASE("a checkpoint of another model is refused, naming both models", "[io][checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("cct_7.safetensors");
  models::save_model(path, *models::create("cct_7_3x1_32", seeded(1)));
  auto small = models::create("cct_2_3x2_32", seeded(2));
  const std::string message = load_error(path, *small);
  CAPTURE(message);
  REQUIRE(message.find(path) != std::string::npos);
  REQUIRE(message.find("'cct_7_3x1_32' (cct, 7 layers, D 256") != std::string::npos);
  REQUIRE(message.find("'cct_2_3x2_32' (cct, 2 layers, D 128") != std::string::npos);

  // A different head size is another architecture too (strict), under the same name.
  const std::string ten = dir.file("ten_classes.safetensors");
  models::save_model(ten, *models::create("cct_2_3x2_32", seeded(3)));
  auto hundred = models::create("cct_2_3x2_32", seeded(4, 100));
  const std::string head_message = load_error(ten, *hundred);
  CAPTURE(head_message);
  REQUIRE(head_message.find("10 classes") != std::string::npos);
  REQUIRE(head_message.find("100 classes") != std::string::npos);
}

TEST_CASE("lenient loading into a new head takes every matching tensor and reports the rest", "[io][checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("pretrained.safetensors");
  auto pretrained = models::create("cct_2_3x2_32", seeded(3));
  models::save_model(path, *pretrained);
  auto finetune = models::create("cct_2_3x2_32", seeded(4, 100));
  const Tensor<float> fresh_head = finetune->classifier->fc->weight.clone();

  const io::LoadReport report = models::load_weights(path, *finetune, /*strict=*/false);
  REQUIRE(report.missing.empty());
  REQUIRE(report.unexpected.empty());
  REQUIRE(report.mismatched.size() == 2);
  REQUIRE(report.mismatched[0].name == "classifier.fc.weight");
  REQUIRE(report.mismatched[0].in_file == "F32 (10, 128)");
  REQUIRE(report.mismatched[0].expected == "F32 (100, 128)");
  REQUIRE(report.mismatched[1].name == "classifier.fc.bias");
  REQUIRE(report.loaded.size() == finetune->state_dict().size() - 2);
  REQUIRE(report.summary().find("2 with a different shape or dtype: 'classifier.fc.weight'") != std::string::npos);

  // Loaded tensors equal the source, the skipped head kept its own initialisation.
  REQUIRE(bitwise_equal(finetune->find_parameter("classifier.blocks.1.linear1.weight"),
                        pretrained->find_parameter("classifier.blocks.1.linear1.weight")));
  REQUIRE(bitwise_equal(finetune->find_parameter("tokenizer.conv_layers.0.0.weight"),
                        pretrained->find_parameter("tokenizer.conv_layers.0.0.weight")));
  REQUIRE(bitwise_equal(finetune->classifier->positional_emb, pretrained->classifier->positional_emb));
  REQUIRE(bitwise_equal(finetune->classifier->fc->weight, fresh_head));
}

TEST_CASE("saving is atomic: failures throw IoError and leave no partial or damaged file", "[io][checkpoint]") {
  TempDir dir;
  auto model = models::create(small_config(1));

  // Missing directory: an error naming the path, and nothing is created.
  const std::string missing = dir.file("no_such_dir/model.safetensors");
  REQUIRE_THROWS_AS(models::save_model(missing, *model), cct::IoError);
  REQUIRE_THROWS_WITH(models::save_model(missing, *model), Catch::Contains(missing));
  REQUIRE(dir.listing().empty());

  // The parent is a regular file (root ignores permission bits, but not this).
  write_bytes(dir.file("a_file"), "x");
  const std::string under_file = dir.file("a_file/model.safetensors");
  REQUIRE_THROWS_WITH(models::save_model(under_file, *model), Catch::Contains(under_file) && Catch::Contains("Not a directory"));
  REQUIRE(dir.listing() == std::vector<std::string>{"a_file"});
  REQUIRE(read_bytes(dir.file("a_file")) == "x");

  // Overwriting a checkpoint whose write fails halfway (file size limit) keeps the old one intact.
  const std::string path = dir.file("model.safetensors");
  models::save_model(path, *model);
  const std::string original = read_bytes(path);
  REQUIRE(original.size() > 8192);
  auto other = models::create(small_config(2));
  std::string message;
  {
    struct rlimit old_limit {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of being killed
    struct rlimit small = old_limit;
    small.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    try {
      models::save_model(path, *other);
    } catch (const cct::IoError& error) {
      message = error.what();
    }
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    ::signal(SIGXFSZ, old_handler);
  }
  CAPTURE(message);
  REQUIRE(message.find(path) != std::string::npos);
  REQUIRE(read_bytes(path) == original);
  REQUIRE(dir.listing() == std::vector<std::string>{"a_file", "model.safetensors"});
  auto reloaded = models::load_model(path);
  require_same_state(*reloaded, *model);

  // And a successful overwrite replaces it completely.
  models::save_model(path, *other);
  require_same_state(*models::load_model(path), *other);
  REQUIRE(dir.listing() == std::vector<std::string>{"a_file", "model.safetensors"});
}
