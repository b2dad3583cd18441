// Writes the fuzzers' seed corpora, fuzz/corpus/<target>/: a few tiny valid files per reader, made with
// cct's own writers where it has them. The seeds are checked in; rerun this only to regenerate them:
//   g++ -std=c++17 -O1 -Iinclude -I/usr/include/eigen3 fuzz/make_seeds.cpp -lz -o /tmp/make_seeds && /tmp/make_seeds fuzz/corpus
// (tests/test_fuzz_regressions.cpp checks that every seed is still accepted.)
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <cct/data/image_io.hpp>
#include <cct/data/stb_implementation.hpp>  // built without CMake: stb's code, once
#include <cct/io/atomic_file.hpp>
#include <cct/io/safetensors.hpp>
#include <cct/models/checkpoint.hpp>
#include <cct/text/vocabulary.hpp>

namespace fs = std::filesystem;
using namespace cct;

namespace {

fs::path g_root;

void put(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::create_directories(g_root / target);
  io::write_file_atomic((g_root / target / name).string(), bytes);
}

std::string gzip(const std::string& plain) {
  z_stream stream{};
  deflateInit2(&stream, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&stream, static_cast<uLong>(plain.size())) + 64, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
  stream.avail_in = static_cast<uInt>(plain.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  deflate(&stream, Z_FINISH);
  out.resize(out.size() - stream.avail_out);
  deflateEnd(&stream);
  return out;
}

// An unsigned-byte IDX array with the given dimensions; data bytes count up.
std::string idx_array(const std::vector<uint32_t>& dims) {
  std::string out = {'\0', '\0', '\x08', static_cast<char>(dims.size())};
  uint64_t count = 1;
  for (uint32_t dim : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((dim >> shift) & 0xff);
    count *= dim;
  }
  for (uint64_t i = 0; i < count; ++i) out += static_cast<char>(i * 37 % 251);
  return out;
}

// CIFAR records: `label_bytes` label bytes (value i % 10) then 3072 pixel bytes.
std::string cifar_records(int records, int label_bytes) {
  std::string out;
  for (int r = 0; r < records; ++r) {
    for (int b = 0; b < label_bytes; ++b) out += static_cast<char>((r + b) % 10);
    for (int i = 0; i < 3072; ++i) out += static_cast<char>((i * 7 + r) % 256);
  }
  return out;
}

std::string image_bytes(const char* format, int width, int height, int channels) {
  std::vector<uint8_t> pixels(static_cast<size_t>(width * height * channels));
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 29 % 256);
  std::string out;
  auto append = [](void* context, void* bytes, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(bytes), static_cast<size_t>(size));
  };
  const std::string kind = format;
  if (kind == "png") stbi_write_png_to_func(append, &out, width, height, channels, pixels.data(), width * channels);
  if (kind == "bmp") stbi_write_bmp_to_func(append, &out, width, height, channels, pixels.data());
  if (kind == "jpg") stbi_write_jpg_to_func(append, &out, width, height, channels, pixels.data(), 80);
  return out;
}

std::string read_back(const fs::path& path) { return io::read_file(path.string()); }

// A tiny model's checkpoint (saved with save_model, so it carries its config).
std::string tiny_checkpoint(models::Family family, nn::PositionalEmbedding positional) {
  models::ModelConfig config;
  config.name = "fuzz_tiny";
  config.family = family;
  config.num_layers = 1;
  config.num_heads = 2;
  config.embedding_dim = 8;
  config.mlp_ratio = 1.0;
  config.kernel_size = 3;
  config.num_conv_layers = 1;
  config.patch_size = 4;
  config.image_size = 8;
  config.in_channels = 1;
  config.num_classes = 3;
  config.positional_embedding = positional;
  auto model = models::create<float>(config);
  const fs::path path = fs::temp_directory_path() / "cct_make_seeds.safetensors";
  models::save_model(path.string(), *model);
  std::string bytes = read_back(path);
  fs::remove(path);
  return bytes;
}

// A tiny text model's checkpoint, with its vocabulary when given one (as cct_text saves it).
std::string tiny_text_checkpoint(models::TextFamily family, nn::PositionalEmbedding positional,
                                 const text::Vocabulary* vocabulary) {
  models::TextModelConfig config;
  config.name = "fuzz_tiny_text";
  config.family = family;
  config.num_layers = 1;
  config.num_heads = 2;
  config.embedding_dim = 8;
  config.mlp_ratio = 1.0;
  config.kernel_size = 2;
  config.patch_size = 2;
  config.vocab_size = vocabulary ? vocabulary->size() : 6;
  config.word_embedding_dim = 4;
  config.seq_len = 6;
  config.num_classes = 3;
  config.positional_embedding = positional;
  auto model = models::create_text<float>(config);
  const fs::path path = fs::temp_directory_path() / "cct_make_seeds.safetensors";
  models::save_model(path.string(), *model, vocabulary);
  std::string bytes = read_back(path);
  fs::remove(path);
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  g_root = argc > 1 ? argv[1] : "fuzz/corpus";

  put("cifar", "cifar100_one_record.bin", cifar_records(1, 2));
  put("cifar", "cifar100_two_records.bin", cifar_records(2, 2));
  put("cifar", "cifar10_two_records.bin", cifar_records(2, 1));

  for (const char* target : {"idx", "idx_gzip"}) {
    put(target, "images_2x3x4.idx", idx_array({2, 3, 4}));
    put(target, "labels_5.idx", idx_array({5}));
    put(target, "matrix_2x2.idx", idx_array({2, 2}));
  }
  put("idx", "images_2x3x4.idx.gz", gzip(idx_array({2, 3, 4})));
  put("idx", "labels_5.idx.gz", gzip(idx_array({5})));

  put("image", "rgb_3x2.png", image_bytes("png", 3, 2, 3));
  put("image", "gray_5x4.png", image_bytes("png", 5, 4, 1));
  put("image", "rgba_2x2.png", image_bytes("png", 2, 2, 4));
  put("image", "rgb_4x3.bmp", image_bytes("bmp", 4, 3, 3));
  put("image", "rgb_8x8.jpg", image_bytes("jpg", 8, 8, 3));
  put("image", "gray_3x5.jpg", image_bytes("jpg", 3, 5, 1));

  {
    const fs::path path = fs::temp_directory_path() / "cct_make_seeds.safetensors";
    io::Metadata metadata = {{"format", "pt"}, {"note", "fuzz seed"}};
    std::vector<io::TensorEntry> entries;
    entries.push_back(io::make_entry("weight", Tensor<float>::full({2, 3}, 0.5f)));
    entries.push_back(io::make_entry("steps", Tensor<int64_t>::full({2}, 7)));
    entries.push_back(io::make_entry("mask", Tensor<uint8_t>::full({3}, 1)));
    entries.push_back(io::make_entry("empty", Tensor<float>::empty({0, 4})));
    entries.push_back(io::make_entry("scalar", Tensor<double>::full({}, 2.0)));
    io::save_safetensors(path.string(), entries, metadata);
    put("safetensors", "mixed_dtypes.safetensors", read_back(path));
    io::save_safetensors(path.string(), std::vector<io::TensorEntry>{});
    put("safetensors", "no_tensors.safetensors", read_back(path));
    // F16 and BF16 (not written by cct, read with conversion): a hand-made header.
    const std::string header = R"({"half":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                               R"("brain":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]}})";
    std::string file(8, '\0');
    for (int i = 0; i < 8; ++i) file[static_cast<size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
    file += header;
    file += std::string("\x00\x3c\x00\xc0\x80\x3f", 6);  // 1.0, -2.0 (half); 1.0 (bfloat16)
    put("safetensors", "half_bfloat16.safetensors", file);
    fs::remove(path);
  }

  put("checkpoint", "cct_tiny.safetensors", tiny_checkpoint(models::Family::kCCT, nn::PositionalEmbedding::kLearnable));
  put("checkpoint", "cvt_tiny_sine.safetensors", tiny_checkpoint(models::Family::kCVT, nn::PositionalEmbedding::kSine));
  put("checkpoint", "vit_tiny.safetensors", tiny_checkpoint(models::Family::kViTLite, nn::PositionalEmbedding::kLearnable));

  {
    const text::Vocabulary words = text::Vocabulary::build({"the cat sat", "a dog"});
    put("text_checkpoint", "text_cct_vocabulary.safetensors",
        tiny_text_checkpoint(models::TextFamily::kCCT, nn::PositionalEmbedding::kSine, &words));
    put("text_checkpoint", "text_cvt_learnable.safetensors",
        tiny_text_checkpoint(models::TextFamily::kCVT, nn::PositionalEmbedding::kLearnable, nullptr));
    put("text_checkpoint", "text_vit_vocabulary.safetensors",
        tiny_text_checkpoint(models::TextFamily::kViTLite, nn::PositionalEmbedding::kLearnable, &words));
  }

  put("json", "object.json", R"({"a": [1, 2.5, -3e-2, true, false, null], "b": {"c": "\u00e9\n\ud83d\ude00"}})");
  put("json", "array.json", R"([[], {}, "", 0, -0.0, 12345678901234567890, 1E+2])");
  put("json", "string.json", "\"tab\\t quote\\\" slash\\/ back\\\\\"");
  put("json", "number.json", "  -12.75e1  ");

  const text::Vocabulary vocab = text::Vocabulary::build({"The cat sat on the mat.", "A dog, a cat!"});
  put("vocabulary", "small.json", vocab.to_json(1));
  put("vocabulary", "reserved_only.json", text::Vocabulary().to_json());

  put("trec", "train.label", "DESC:manner How did serfdom develop in and then leave Russia ?\n"
                             "ENTY:cremat What films featured the character Popeye Doyle ?\r\n"
                             "NUM:date When was Ozzy Osbourne born ?\n\n"
                             "LOC:other Where is caf\xe9 du monde ?\n");
  put("ag_news", "official.csv", "\"3\",\"Wall St. Bears\",\"Reuters - Short-sellers, Wall Street's dwindling\\band.\"\n"
                                 "\"2\",\"A \"\"quoted\"\" title\",\"Haiti #39;s team won &lt;big&gt;\"\r\n");
  put("ag_news", "subset.csv", "text,label\n\"Oil prices rise, again\",2\nStocks fall,3\n");
  put("label_sentence", "sst2.txt", "1 a gorgeous , witty , seductive movie .\n0 the plot is nothing\n\n1\tgood\n");
  put("label_sentence", "cr.txt", "0 \n1 works well\r\n");
  put("glove", "glove_4d.txt", "the 0.1 0.2 -0.3 0.4\ncat 1 2 3 4\nNew York 0.5 0.5 0.5 0.5\n");
  put("glove", "word2vec_header.txt", "2 3\nthe 0.1 0.2 0.3\na -1e-3 2.5 0\n");
  return 0;
}
