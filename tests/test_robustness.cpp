// Bad inputs that had no test elsewhere (docs/robustness.md lists every case and where it is tested):
// checkpoints whose stored config is corrupt or hostile, zero and negative sizes, images of the wrong
// size, empty data sets and corpora. Each must be refused with a cct::Error whose message says what is
// wrong, before any large allocation.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <cct/data/image_io.hpp>
#include <cct/data/loader.hpp>
#include <cct/io/json.hpp>
#include <cct/io/safetensors.hpp>
#include <cct/models/checkpoint.hpp>
#include <cct/models/registry.hpp>
#include <cct/text/datasets.hpp>
#include <cct/text/vocabulary.hpp>
#include <cct/text/word_vectors.hpp>

#include "test_helpers.hpp"

namespace fs = std::filesystem;
using namespace cct;
using Catch::Contains;

namespace {

struct RobustnessDir {
  fs::path path;
  RobustnessDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / ("cct_test_robustness_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~RobustnessDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::string file(const std::string& name, const std::string& content = {}) const {
    const std::string target = (path / name).string();
    io::write_file_atomic(target, content);
    return target;
  }
};

models::ModelConfig tiny_config(models::Family family = models::Family::kCCT) {
  models::ModelConfig c;
  c.name = "tiny";
  c.family = family;
  c.num_layers = 1;
  c.num_heads = 2;
  c.embedding_dim = 8;
  c.mlp_ratio = 2.0;
  c.kernel_size = 3;
  c.num_conv_layers = 1;
  c.patch_size = 4;
  c.image_size = 8;
  c.in_channels = 3;
  c.num_classes = 4;
  return c;
}

// A valid checkpoint of the tiny model with one metadata entry replaced.
std::string checkpoint_with(const RobustnessDir& dir, const std::string& key, const std::string& value) {
  const std::string valid = (dir.path / "valid.safetensors").string();
  models::save_model(valid, *models::create<float>(tiny_config()));
  io::Metadata metadata;
  const auto tensors = io::load_safetensors<float>(valid, &metadata);
  metadata[key] = value;
  const std::string path = (dir.path / ("bad_" + key + ".safetensors")).string();
  io::save_safetensors(path, tensors, metadata);
  return path;
}

// A tiny text model's config: 9 words of 4 dimensions, 7 words per text.
models::TextModelConfig tiny_text_config() {
  models::TextModelConfig c;
  c.name = "tiny_text";
  c.family = models::TextFamily::kCCT;
  c.num_layers = 1;
  c.num_heads = 2;
  c.embedding_dim = 8;
  c.kernel_size = 2;
  c.vocab_size = 9;
  c.word_embedding_dim = 4;
  c.seq_len = 7;
  c.num_classes = 3;
  return c;
}

// A valid text checkpoint with one metadata entry replaced.
std::string text_checkpoint_with(const RobustnessDir& dir, const std::string& key, const std::string& value) {
  const std::string valid = (dir.path / "valid_text.safetensors").string();
  models::save_model(valid, *models::create_text<float>(tiny_text_config()));
  io::Metadata metadata;
  const auto tensors = io::load_safetensors<float>(valid, &metadata);
  metadata[key] = value;
  const std::string path = (dir.path / ("bad_text_" + key + ".safetensors")).string();
  io::save_safetensors(path, tensors, metadata);
  return path;
}

}  // namespace

TEST_CASE("a checkpoint whose stored config is corrupt or describes a huge model is refused before building it",
          "[robustness][checkpoint]") {
  RobustnessDir dir;
  const std::string valid = (dir.path / "valid.safetensors").string();
  models::save_model(valid, *models::create<float>(tiny_config()));
  REQUIRE(models::load_model(valid)->config().embedding_dim == 8);  // the untouched file loads

  struct Case {
    const char* key;
    const char* value;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"embedding_dim", "1000000", "a model larger than the"},   // 4·10^12 weights from a 10 kB file
      {"num_layers", "100000000", "a model larger than the"},
      {"num_classes", "9000000000", "a model larger than the"},
      {"image_size", "1000000", "a model larger than the"},      // a 10^12-pixel first activation
      {"kernel_size", "100000", "a model larger than the"},
      {"num_conv_layers", "1000000", "a model larger than the"},
      {"mlp_ratio", "1e300", "mlp_ratio"},                       // D · ratio would overflow the size cast
      {"mlp_ratio", "nan", "mlp_ratio"},
      {"embedding_dim", "0", "embedding_dim = 0; it must be positive"},
      {"num_heads", "-2", "num_heads = -2; it must be positive"},
      {"in_channels", "0", "in_channels = 0; it must be positive"},
      {"dropout", "2.5", "dropout"},
      {"stochastic_depth", "nan", "stochastic_depth"},
      {"num_layers", "two", "is not an integer"},
      {"num_layers", "12abc", "metadata 'num_layers' is not an integer: '12abc'"},  // not read as 12
      {"image_size", "32 ", "is not an integer"},
      {"mlp_ratio", "2.0x", "metadata 'mlp_ratio' is not a number: '2.0x'"},
      {"family", "resnet", "unknown model family 'resnet'"},
  };
  for (const Case& c : cases) {
    INFO(c.key << " = " << c.value);
    const std::string path = checkpoint_with(dir, c.key, c.value);
    REQUIRE_THROWS_WITH(models::read_model_config(path), Contains(c.message) && Contains(path));
    REQUIRE_THROWS_AS(models::load_model(path), cct::Error);
  }
}

TEST_CASE("a text checkpoint whose stored config is corrupt or describes a huge model is refused before building it",
          "[robustness][checkpoint][text]") {
  RobustnessDir dir;
  const std::string valid = (dir.path / "valid_text.safetensors").string();
  models::save_model(valid, *models::create_text<float>(tiny_text_config()));
  REQUIRE(models::load_text_model(valid).model->config().vocab_size == 9);  // the untouched file loads

  struct Case {
    const char* key;
    const char* value;
    const char* message;
  };
  // Without the bound, the first rows would allocate the embedding table (10^12 × 4 floats, or 9 × 10^11)
  // or the positional table before any tensor of the file is looked at.
  const std::vector<Case> cases = {
      {"vocab_size", "1000000000000", "a model larger than the"},
      {"word_embedding_dim", "100000000000", "a model larger than the"},
      {"embedding_dim", "1000000", "a model larger than the"},
      {"num_layers", "100000000", "a model larger than the"},
      {"num_classes", "9000000000", "a model larger than the"},
      {"kernel_size", "1000000000", "a model larger than the"},
      {"seq_len", "1000000000000", "a model larger than the"},
      {"vocab_size", "1", "vocab_size = 1; it must be at least 2"},
      {"seq_len", "0", "seq_len = 0; it must be positive"},
      {"num_heads", "-2", "num_heads = -2; it must be positive"},
      {"mlp_ratio", "1e300", "mlp_ratio"},
      {"mlp_ratio", "nan", "mlp_ratio"},
      {"dropout", "2.5", "dropout"},
      {"attention_dropout", "nan", "attention_dropout"},
      {"seq_len", "12abc", "metadata 'seq_len' is not an integer: '12abc'"},
      {"freeze_embedding", "yes", "must be true or false"},
      {"family", "cct", "is a checkpoint of an image model (family 'cct'); rebuild it with models::load_model(path)"},
      {"family", "text_resnet", "unknown text model family 'text_resnet'"},
  };
  for (const Case& c : cases) {
    INFO(c.key << " = " << c.value);
    const std::string path = text_checkpoint_with(dir, c.key, c.value);
    REQUIRE_THROWS_WITH(models::read_text_model_config(path), Contains(c.message) && Contains(path));
    REQUIRE_THROWS_WITH(models::load_text_model(path), Contains(c.message) && Contains(path));
  }
}

TEST_CASE("zero and negative sizes are refused with a message naming the size", "[robustness][sizes]") {
  REQUIRE_THROWS_WITH(Tensor<float>::empty({2, -1}), Contains("negative size") && Contains("(2, -1)"));
  REQUIRE_THROWS_AS(Tensor<float>::zeros({-3}), cct::ShapeError);

  struct Case {
    const char* what;
    void (*change)(models::ModelConfig&);
    const char* message;
  };
  const std::vector<Case> cases = {
      {"num_classes 0", [](models::ModelConfig& c) { c.num_classes = 0; }, "must be positive"},
      {"in_channels -1", [](models::ModelConfig& c) { c.in_channels = -1; }, "must be positive"},
      {"image_size 0", [](models::ModelConfig& c) { c.image_size = 0; }, "must be positive"},
      {"num_layers 0", [](models::ModelConfig& c) { c.num_layers = 0; }, "must be positive"},
      {"num_heads 0", [](models::ModelConfig& c) { c.num_heads = 0; }, "num_heads"},
      {"embedding_dim 6, num_heads 4", [](models::ModelConfig& c) { c.embedding_dim = 6, c.num_heads = 4; },
       "not divisible by num_heads"},
      {"embedding_dim 0", [](models::ModelConfig& c) { c.embedding_dim = 0; }, "must be positive"},
      {"mlp_ratio -1", [](models::ModelConfig& c) { c.mlp_ratio = -1; }, "Linear: sizes must be positive"},
      {"num_conv_layers 0", [](models::ModelConfig& c) { c.num_conv_layers = 0; }, "at least one conv layer"},
      {"kernel_size 0", [](models::ModelConfig& c) { c.kernel_size = 0; }, "must be positive"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    models::ModelConfig config = tiny_config();
    c.change(config);
    REQUIRE_THROWS_WITH(models::create<float>(config), Contains(c.message));
  }
  models::ModelConfig vit = tiny_config(models::Family::kViTLite);
  vit.patch_size = 0;  // also the stride: refused before the token count divides by it
  REQUIRE_THROWS_WITH(models::create<float>(vit), Contains("must be positive"));
  // A patch larger than the image: refused by the model or, at the latest, by its first forward.
  vit.patch_size = 16;
  const auto build_and_run = [&] { models::create<float>(vit)->forward(Tensor<float>::zeros({1, 3, 8, 8})); };
  REQUIRE_THROWS_AS(build_and_run(), cct::Error);

  REQUIRE_THROWS_WITH(text::Vocabulary().encode("a b", 0), Contains("seq_len must be at least 1, got 0"));
}

TEST_CASE("images of the wrong size, channel count or rank are refused by the model", "[robustness][images]") {
  auto model = models::create<float>(tiny_config());
  model->eval();
  REQUIRE(model->forward(Tensor<float>::zeros({2, 3, 8, 8})).shape() == Shape({2, 4}));
  for (const Shape& shape : {Shape{2, 3, 8, 9}, Shape{2, 3, 7, 7}, Shape{2, 1, 8, 8}, Shape{3, 8, 8}, Shape{2, 4, 8, 8}}) {
    INFO(shape_str(shape));
    REQUIRE_THROWS_WITH(model->forward(Tensor<float>::zeros(shape)),
                        Contains("expected images of shape (B, 3, 8, 8)") && Contains(shape_str(shape)));
  }
}

TEST_CASE("empty data sets and corpora are refused with a message naming the file", "[robustness][empty]") {
  REQUIRE_THROWS_WITH(data::DataLoader(data::ImageDataset(Tensor<uint8_t>::empty({0, 1, 2, 2}), {}, {"a"}), {}),
                      Contains("the dataset is empty"));
  data::LoaderOptions zero_batch;
  zero_batch.batch_size = 0;
  REQUIRE_THROWS_WITH(data::DataLoader(data::ImageDataset(Tensor<uint8_t>::zeros({1, 1, 2, 2}), {0}, {"a"}), zero_batch),
                      Contains("batch_size must be positive, got 0"));

  RobustnessDir dir;
  for (const std::string& content : {std::string(), std::string("\n  \n\r\n\t\n")}) {
    INFO("content of " << content.size() << " bytes");
    const std::string path = dir.file("empty.txt", content);
    REQUIRE_THROWS_WITH(text::read_trec(path), Contains("holds no questions") && Contains(path));
    // CSV: a line of blanks is a record with one (blank) field, as in Python's csv module.
    const std::string csv_message = content.empty() ? "holds no records" : "got 1";
    REQUIRE_THROWS_WITH(text::read_ag_news(path), Contains(csv_message) && Contains(path));
    REQUIRE_THROWS_WITH(text::read_ag_news_subset(path), Contains(csv_message) && Contains(path));
    REQUIRE_THROWS_WITH(text::read_label_sentence_file(path), Contains("holds no sentences") && Contains(path));
    REQUIRE_THROWS_WITH(text::read_glove(path), Contains("holds no vectors") && Contains(path));
  }
  // A word2vec header and nothing else is empty too.
  REQUIRE_THROWS_WITH(text::read_glove(dir.file("header_only.txt", "3 50\n")), Contains("holds no vectors"));
}

TEST_CASE("a vocabulary file that is not one, or is inconsistent, is refused naming the file", "[robustness][vocabulary]") {
  const auto error_of = [](const std::string& text) {
    try {
      text::Vocabulary::from_json(text, "vocab.json");
    } catch (const IoError& error) {
      return std::string(error.what());
    }
    FAIL("accepted: " << text);
    return std::string();
  };
  const std::string head = R"({"format": "cct-vocabulary-1", "lowercase": true, "split_punctuation": true, "tokens": )";
  CHECK_THAT(error_of("[1, 2]"), Contains("vocab.json") && Contains("expected a JSON object"));
  CHECK_THAT(error_of(R"({"format": "something-else"})"), Contains("not a cct vocabulary"));
  CHECK_THAT(error_of(head + R"(["<unk>", "<pad>", "a", "a"]})"), Contains("appears twice"));
  CHECK_THAT(error_of(head + R"(["a", "<pad>"]})"), Contains("must start with"));
  CHECK_THAT(error_of(head + R"(["<unk>", "<pad>", 7]})"), Contains("expected a string"));
  CHECK_THAT(error_of(R"({"format": "cct-vocabulary-1", "tokens": []})"), Contains("lowercase"));
  CHECK_THAT(error_of(head + R"(["<unk>", "<pad>"])"), Contains("vocab.json") && Contains("byte"));  // truncated JSON
}

TEST_CASE("an image header claiming a huge size is refused before decoding", "[robustness][images]") {
  // A PNG signature and an IHDR chunk for a 16384 x 16384 grayscale image (2^28 pixels), nothing else:
  // stb_image would allocate its 256 MiB output before finding that the pixel data is missing.
  std::string png = "\x89PNG\r\n\x1a\n";
  png += std::string("\0\0\0\x0dIHDR", 8);
  png += std::string("\0\0\x40\0\0\0\x40\0", 8);   // width, height: 16384 (big-endian)
  png += std::string("\x08\0\0\0\0", 5);              // 8-bit grayscale, no interlacing
  png += std::string("\0\0\0\0", 4);                   // CRC (stb does not check it)
  const auto bytes = reinterpret_cast<const uint8_t*>(png.data());
  REQUIRE_THROWS_WITH(data::decode_image(bytes, png.size(), 0, "huge.png"),
                      Contains("huge.png") && Contains("16384x16384 pixels exceed the limit of 67108864"));
}

TEST_CASE("every reader refuses a FIFO or a folder at once, naming it, instead of blocking", "[robustness][files]") {
  RobustnessDir dir;
  const std::string fifo = (dir.path / "pipe").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);  // no writer ever opens it: a blocking open would hang here
  const auto start = std::chrono::steady_clock::now();
  REQUIRE_THROWS_WITH(io::read_file(fifo), Catch::Contains("FIFO") && Catch::Contains(fifo));
  REQUIRE_THROWS_WITH(io::SafeTensorsReader(fifo), Catch::Contains("safetensors file") && Catch::Contains("FIFO"));
  REQUIRE_THROWS_WITH(data::read_image(fifo), Catch::Contains("FIFO"));
  REQUIRE_THROWS_WITH(text::read_glove(fifo), Catch::Contains("GloVe file") && Catch::Contains("FIFO"));
  REQUIRE(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  REQUIRE_THROWS_WITH(io::read_file(dir.path.string()), Catch::Contains("a folder, not a regular file"));
  REQUIRE_THROWS_WITH(io::read_file("/dev/null"), Catch::Contains("a device"));
}

TEST_CASE("JSON output is valid UTF-8 whatever bytes a name holds", "[robustness][json]") {
  const std::string latin1_name = std::string("chat_\xe9t\xe9.png");            // Latin-1 é: invalid UTF-8
  const std::string truncated = std::string("ok \xc3");                        // a lead byte without its tail
  const std::string overlong = std::string("\xc0\xaf") + "/etc";               // an overlong '/'
  const std::string fine = "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x90\x88";        // é ✓ 🐈 stay as they are
  json::Object object;
  object.set("latin1", json::Value(latin1_name));
  object.set("truncated", json::Value(truncated));
  object.set("overlong", json::Value(overlong));
  object.set("fine", json::Value(fine));
  const std::string text = json::dump(json::Value(object));
  const json::Value parsed = json::parse(text);  // the strict parser refuses invalid UTF-8
  REQUIRE(parsed.as_object().at("latin1").as_string() == "chat_\xef\xbf\xbdt\xef\xbf\xbd.png");
  REQUIRE(parsed.as_object().at("truncated").as_string() == "ok \xef\xbf\xbd");
  REQUIRE(parsed.as_object().at("overlong").as_string() == "\xef\xbf\xbd\xef\xbf\xbd/etc");
  REQUIRE(parsed.as_object().at("fine").as_string() == fine);
}
