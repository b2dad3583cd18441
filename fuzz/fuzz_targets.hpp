// The fuzz targets: one function per file reader, each feeding arbitrary bytes through the reader's
// public entry point. Shared by the libFuzzer drivers (fuzz/fuzz_<name>.cpp, built by scripts/fuzz.sh
// with clang) and by tests/test_fuzz_regressions.cpp, which replays every saved crashing input under
// the ordinary g++ build.
//
// The contract each target checks: a bad input is rejected with a cct::Error (caught by run_target),
// never a crash, a hang, a huge allocation, or any other exception type (which escapes run_target and
// so fails the fuzzer or the test). Readers that take a path get the input written to a temporary file.
#pragma once

#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <cct/data/image_io.hpp>
#include <cct/core/generator.hpp>
#include <cct/data/cifar.hpp>
#include <cct/data/idx.hpp>
#include <cct/data/transforms.hpp>
#include <cct/io/json.hpp>
#include <cct/io/safetensors.hpp>
#include <cct/models/checkpoint.hpp>
#include <cct/text/datasets.hpp>
#include <cct/text/vocabulary.hpp>
#include <cct/text/word_vectors.hpp>

namespace cct::fuzz {

// A private scratch folder for the process, removed at exit (a crashing run leaves it in $TMPDIR).
class ScratchDir {
 public:
  static ScratchDir& instance() {
    static ScratchDir dir;
    return dir;
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  // Replaces `name` in the scratch folder with exactly `bytes`.
  std::string write(const std::string& name, const void* bytes, size_t size) const {
    const std::string target = file(name);
    std::FILE* out = std::fopen(target.c_str(), "wb");
    if (!out) std::abort();  // the harness itself is broken, not the reader
    if (size > 0 && std::fwrite(bytes, 1, size, out) != size) std::abort();
    if (std::fclose(out) != 0) std::abort();
    return target;
  }

 private:
  ScratchDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/cct-fuzz-XXXXXX";
    if (!::mkdtemp(pattern.data())) std::abort();
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string path_;
};

// Consumes `value`'s result so the optimiser cannot drop the work that produced it.
template <typename T>
inline void keep(const T& value) {
  asm volatile("" : : "g"(&value) : "memory");
}

// Runs both readings of one input; it is accepted when either accepts it, and refused with the second
// reading's error when both refuse it.
template <typename First, typename Second>
inline void either(First&& first, Second&& second) {
  bool accepted = false;
  try {
    first();
    accepted = true;
  } catch (const Error&) {
  }
  try {
    second();
  } catch (const Error&) {
    if (!accepted) throw;
  }
}

// ---- the targets ---------------------------------------------------------------------------------

// CIFAR-10 test batch and CIFAR-100 test file (fine or coarse labels) holding the input; accepted
// when either reader takes it.
inline void cifar(const uint8_t* data, size_t size) {
  const ScratchDir& dir = ScratchDir::instance();
  dir.write("test_batch.bin", data, size);
  dir.write("test.bin", data, size);
  either([&] { keep(data::read_cifar10(dir.path(), false)); },
         [&] { keep(data::read_cifar100(dir.path(), false, size % 2 == 1)); });
}

// An IDX file (plain, or gzip when the input starts with 1f 8b), then as images or labels by rank.
inline void idx(const uint8_t* data, size_t size) {
  const std::string path = ScratchDir::instance().write("input.idx", data, size);
  const data::IdxArray array = data::read_idx(path);
  keep(array);
  if (array.dims.size() == 3) keep(data::read_idx_images(path));
  if (array.dims.size() == 1) keep(data::read_idx_labels(path));
}

// The input gzip-compressed first, so the IDX parser is reached behind a valid gzip stream.
inline void idx_gzip(const uint8_t* data, size_t size) {
  z_stream stream{};
  if (deflateInit2(&stream, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  std::vector<unsigned char> compressed(deflateBound(&stream, static_cast<uLong>(size)) + 64);
  stream.next_in = const_cast<Bytef*>(data);
  stream.avail_in = static_cast<uInt>(size);
  stream.next_out = compressed.data();
  stream.avail_out = static_cast<uInt>(compressed.size());
  if (deflate(&stream, Z_FINISH) != Z_STREAM_END) std::abort();
  compressed.resize(compressed.size() - stream.avail_out);
  deflateEnd(&stream);
  idx(compressed.data(), compressed.size());
}

// PNG / JPEG / BMP decoding (stb_image), kept channels chosen by the input length, then a resize.
inline void image(const uint8_t* data, size_t size) {
  static constexpr int kChannels[3] = {0, 1, 3};
  const data::Image decoded = data::decode_image(data, size, kChannels[size % 3], "fuzz input");
  keep(decoded);
  if (decoded.channels == 1 || decoded.channels == 3) keep(data::resize_bilinear(decoded, 5, 7));
}

// A safetensors file: header JSON, offsets and layout; every tensor read raw and converted.
inline void safetensors(const uint8_t* data, size_t size) {
  const std::string path = ScratchDir::instance().write("input.safetensors", data, size);
  const io::SafeTensorsReader reader(path);
  keep(reader.metadata());
  for (const io::TensorInfo& info : reader.tensors()) {
    std::vector<uint8_t> raw(static_cast<size_t>(info.nbytes()));
    reader.read_raw(info, raw.data());
    keep(raw);
    try {
      if (io::is_floating(info.dtype)) keep(reader.read_converted<float>(info.name));
      else keep(reader.read_converted<int64_t>(info.name));
    } catch (const Error&) {
    }
  }
}

// A model checkpoint: the config in the metadata, then (for small configs only, so a hostile size
// cannot make the harness allocate gigabytes) the model built from it and its weights loaded strictly.
inline void checkpoint(const uint8_t* data, size_t size) {
  const std::string path = ScratchDir::instance().write("input.safetensors", data, size);
  const models::ModelConfig config = models::read_model_config(path);
  const auto small = [](int64_t value, int64_t limit) { return value >= -4 && value <= limit; };
  if (!(small(config.num_layers, 2) && small(config.num_heads, 8) && small(config.embedding_dim, 32) &&
        config.mlp_ratio >= -1 && config.mlp_ratio <= 4 && small(config.kernel_size, 9) &&
        small(config.num_conv_layers, 3) && small(config.patch_size, 33) && small(config.image_size, 33) &&
        small(config.in_channels, 3) && small(config.num_classes, 16)))
    return;
  auto model = models::create<float>(config);
  keep(models::load_weights(path, *model, /*strict=*/true));
}

// A text model checkpoint: the config in the metadata (validated and bounded by the file), then (for
// small configs only, as above) the model built from it, its weights loaded strictly, and the stored
// vocabulary read.
inline void text_checkpoint(const uint8_t* data, size_t size) {
  const std::string path = ScratchDir::instance().write("input.safetensors", data, size);
  const models::TextModelConfig config = models::read_text_model_config(path);
  const auto small = [](int64_t value, int64_t limit) { return value >= -4 && value <= limit; };
  if (!(small(config.num_layers, 2) && small(config.num_heads, 8) && small(config.embedding_dim, 32) &&
        config.mlp_ratio >= -1 && config.mlp_ratio <= 4 && small(config.kernel_size, 9) &&
        small(config.patch_size, 9) && small(config.vocab_size, 64) && small(config.word_embedding_dim, 16) &&
        small(config.seq_len, 33) && small(config.num_classes, 16)))
    return;
  const models::LoadedTextModel<float> loaded = models::load_text_model<float>(path);
  keep(loaded.model);
  keep(loaded.vocabulary);
}

// json::parse, and for a document it accepts: writing it (compact and indented) and parsing that
// again must give the same value.
inline void json_parse(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const json::Value value = json::parse(text);
  for (int indent : {-1, 2})
    if (json::parse(json::dump(value, indent)) != value) std::abort();  // a writer/reader mismatch
}

// A vocabulary JSON document (the text trainer's vocabulary.json).
inline void vocabulary(const uint8_t* data, size_t size) {
  const text::Vocabulary vocab = text::Vocabulary::from_json(std::string_view(reinterpret_cast<const char*>(data), size));
  keep(vocab.encode("the cat sat on the mat", 4));
}

// TREC question files, read as UTF-8 and as Latin-1 (the default, which accepts any byte).
inline void trec(const uint8_t* data, size_t size) {
  const std::string path = ScratchDir::instance().write("input.label", data, size);
  either([&] { keep(text::read_trec(path, text::Encoding::kUtf8)); }, [&] { keep(text::read_trec(path)); });
}

// AG News: the official 3-field CSV and the 2-field subset CSV, each cleaned.
inline void ag_news(const uint8_t* data, size_t size) {
  const std::string path = ScratchDir::instance().write("input.csv", data, size);
  either([&] { keep(text::read_ag_news(path)); }, [&] { keep(text::read_ag_news_subset(path)); });
}

// "label sentence" files (MR, SST, Subj, CR, MPQA), with given class names (as UTF-8), and without.
inline void label_sentence(const uint8_t* data, size_t size) {
  const std::string path = ScratchDir::instance().write("input.txt", data, size);
  either(
      [&] {
        text::LabelSentenceOptions options;
        options.class_names = {"negative", "positive"};
        options.encoding = text::Encoding::kUtf8;
        text::read_label_sentence_file(path, options).validate();
      },
      [&] { text::read_label_sentence_file(path).validate(); });
}

// GloVe text vectors; when they load, the coverage and embedding matrix of a small vocabulary.
inline void glove(const uint8_t* data, size_t size) {
  const std::string path = ScratchDir::instance().write("input.txt", data, size);
  text::GloveOptions options;
  options.lowercase = size % 2 == 1;
  const text::WordVectors vectors = text::read_glove(path, options);
  const text::Vocabulary vocab({"<unk>", "<pad>", "the", "a", "cat"});
  keep(text::coverage(vectors, vocab));
  Generator gen(7);
  keep(text::embedding_matrix(vocab, vectors, gen));
}

// ---- registry ------------------------------------------------------------------------------------

using Target = void (*)(const uint8_t* data, size_t size);

struct NamedTarget {
  const char* name;
  Target run;
};

// Every target; the names are the folders under fuzz/corpus/ and fuzz/regressions/.
inline const std::vector<NamedTarget>& targets() {
  static const std::vector<NamedTarget> all = {
      {"cifar", cifar},         {"idx", idx},       {"idx_gzip", idx_gzip},     {"image", image},
      {"safetensors", safetensors}, {"checkpoint", checkpoint}, {"text_checkpoint", text_checkpoint},
      {"json", json_parse},     {"vocabulary", vocabulary},
      {"trec", trec},           {"ag_news", ag_news}, {"label_sentence", label_sentence}, {"glove", glove}};
  return all;
}

inline Target find_target(std::string_view name) {
  for (const NamedTarget& target : targets())
    if (name == target.name) return target.run;
  return nullptr;
}

// Runs one input: true when the reader accepted it, false when it refused it with a cct::Error.
// Anything else (a crash, another exception type) is a bug and is left to escape.
inline bool run_target(Target target, const uint8_t* data, size_t size) {
  try {
    target(data, size);
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace cct::fuzz
