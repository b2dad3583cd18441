// Text classifiers: TextCCT, TextCVT and TextViTLite = word embedding → TextTokenizer (a convolution
// over time) → TransformerClassifier, with the padding mask carried through every stage; their
// registry (text_cct_2_k4, text_cvt_6, ...) and checkpoints that carry the vocabulary.
//
// Module tree and parameter names (the reference's text models):
//   embedder.embeddings.weight            (V, E)   padding row 1; frozen when freeze_embedding
//   tokenizer.conv_layers.0.weight        (D, 1, k, E)
//   classifier.*                          as the image models (architecture.md), N = tokens after the tokenizer
//
// Where this departs from the authors' text code, which does not run as published (architecture.md):
//  - Their classifier gives every text model a positional table with one row too many (N + 1 rows
//    for N tokens, N + 2 with the class token), so adding it to the tokens fails. Here the table has
//    the intended N rows (N + 1 with ViT-Lite's class token), as in the image models.
//  - Their mask path fails; here it works as intended: padded words are zeroed after the lookup (as
//    their Embedder does), the tokenizer derives which tokens are real (nn/text_tokenizer.hpp) and
//    zeroes the others, and the classifier ignores them as attention keys and in SeqPool.
// The positional embedding defaults to the fixed sine table, the reference text models' default.
//
// Parameter counts. With the default sine table the trainable parameters of tokenizer + classifier
// equal the reference's published counts exactly (4 classes, E = 300, 64 words): text_cct_2 with
// k = 1 / 2 / 4: 237,701 / 276,101 / 352,901; text_cct_4: 436,101 / 474,501 / 551,301; text_cct_6:
// 3,236,613 / 3,313,413 / 3,467,013. Those numbers are conv (D·k·E) + classifier without any
// positional table, so they count no table at all: they are the sine models' trainable parameters,
// and whether the frozen table has N or N + 1 rows cannot show in them. A learnable table adds
// N·D (N = 34 tokens for k = 1, 33 for k = 2 and 4).
#pragma once

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../io/checkpoint.hpp"
#include "../nn/embedding.hpp"
#include "../nn/text_tokenizer.hpp"
#include "../nn/transformer_classifier.hpp"
#include "../text/vocabulary.hpp"
#include "model_config.hpp"

namespace cct::models {

enum class TextFamily { kCCT, kCVT, kViTLite };

inline const char* text_family_name(TextFamily family) {
  switch (family) {
    case TextFamily::kCCT: return "text_cct";
    case TextFamily::kCVT: return "text_cvt";
    default: return "text_vit_lite";
  }
}

struct TextModelConfig {
  std::string name;                  // the registered name, e.g. "text_cct_2_k4"
  TextFamily family = TextFamily::kCCT;
  // Encoder.
  int64_t num_layers = 2, num_heads = 2, embedding_dim = 128;
  double mlp_ratio = 1.0;
  // Tokenizer: TextCCT slides a kernel_size window with stride max(1, k/2 − 1) and padding
  // max(1, k/2) (the image rule), then max-pools; TextCVT / TextViTLite cut patch_size-word patches.
  int64_t kernel_size = 4, patch_size = 4;
  // Data.
  int64_t vocab_size = 0;            // rows of the embedding table (the vocabulary's size)
  int64_t word_embedding_dim = 300;  // E
  int64_t seq_len = 64;              // words per text (padded / truncated)
  int64_t num_classes = 4;
  nn::PositionalEmbedding positional_embedding = nn::PositionalEmbedding::kSine;
  bool freeze_embedding = false;     // keep the word vectors fixed (e.g. pretrained GloVe)
  // Regularisation (the reference text models' values).
  double dropout = 0.0, attention_dropout = 0.1, stochastic_depth = 0.1;
  uint64_t seed = 0;                 // initialisation

  bool operator==(const TextModelConfig& other) const { return to_metadata() == other.to_metadata(); }

  std::map<std::string, std::string> to_metadata() const {
    return {{"model", name},
            {"family", text_family_name(family)},
            {"num_layers", std::to_string(num_layers)},
            {"num_heads", std::to_string(num_heads)},
            {"embedding_dim", std::to_string(embedding_dim)},
            {"mlp_ratio", number(mlp_ratio)},
            {"kernel_size", std::to_string(kernel_size)},
            {"patch_size", std::to_string(patch_size)},
            {"vocab_size", std::to_string(vocab_size)},
            {"word_embedding_dim", std::to_string(word_embedding_dim)},
            {"seq_len", std::to_string(seq_len)},
            {"num_classes", std::to_string(num_classes)},
            {"positional_embedding", nn::positional_embedding_name(positional_embedding)},
            {"freeze_embedding", freeze_embedding ? "true" : "false"},
            {"dropout", number(dropout)},
            {"attention_dropout", number(attention_dropout)},
            {"stochastic_depth", number(stochastic_depth)}};
  }

  // Rebuilds a config from checkpoint metadata; `source` (a file name) is quoted in errors.
  static TextModelConfig from_metadata(const std::map<std::string, std::string>& metadata, const std::string& source) {
    auto get = [&](const char* key) -> const std::string& {
      auto it = metadata.find(key);
      if (it == metadata.end())
        throw Error(cct::detail::concat(source, ": checkpoint metadata has no '", key,
                                        "' entry, so the text model cannot be rebuilt from it"));
      return it->second;
    };
    auto integer = [&](const char* key) {
      try {
        size_t used = 0;
        const int64_t value = std::stoll(get(key), &used);
        if (used == get(key).size()) return value;
      } catch (const std::logic_error&) {
      }
      throw Error(cct::detail::concat(source, ": metadata '", key, "' is not an integer: '", get(key), "'"));
    };
    auto real = [&](const char* key) {
      try {
        size_t used = 0;
        const double value = std::stod(get(key), &used);
        if (used == get(key).size()) return value;
      } catch (const std::logic_error&) {
      }
      throw Error(cct::detail::concat(source, ": metadata '", key, "' is not a number: '", get(key), "'"));
    };
    TextModelConfig c;
    c.name = get("model");
    const std::string& family = get("family");
    if (family == "text_cct") c.family = TextFamily::kCCT;
    else if (family == "text_cvt") c.family = TextFamily::kCVT;
    else if (family == "text_vit_lite") c.family = TextFamily::kViTLite;
    else throw Error(cct::detail::concat(source, ": '", family, "' is not a text model family (text_cct, text_cvt, "
                                         "text_vit_lite)"));
    c.num_layers = integer("num_layers");
    c.num_heads = integer("num_heads");
    c.embedding_dim = integer("embedding_dim");
    c.mlp_ratio = real("mlp_ratio");
    c.kernel_size = integer("kernel_size");
    c.patch_size = integer("patch_size");
    c.vocab_size = integer("vocab_size");
    c.word_embedding_dim = integer("word_embedding_dim");
    c.seq_len = integer("seq_len");
    c.num_classes = integer("num_classes");
    const std::string& pe = get("positional_embedding");
    if (pe == "learnable") c.positional_embedding = nn::PositionalEmbedding::kLearnable;
    else if (pe == "sine") c.positional_embedding = nn::PositionalEmbedding::kSine;
    else if (pe == "none") c.positional_embedding = nn::PositionalEmbedding::kNone;
    else throw Error(cct::detail::concat(source, ": unknown positional_embedding '", pe, "' in metadata"));
    const std::string& freeze = get("freeze_embedding");
    if (freeze != "true" && freeze != "false")
      throw Error(cct::detail::concat(source, ": metadata 'freeze_embedding' must be true or false, got '", freeze, "'"));
    c.freeze_embedding = freeze == "true";
    c.dropout = real("dropout");
    c.attention_dropout = real("attention_dropout");
    c.stochastic_depth = real("stochastic_depth");
    return c;
  }

  // The tokenizer this config builds.
  nn::TextTokenizerConfig tokenizer_config() const {
    nn::TextTokenizerConfig t;
    t.word_embedding_dim = word_embedding_dim;
    t.embedding_dim = embedding_dim;
    if (family == TextFamily::kCCT) {
      t.kernel_size = kernel_size;
      t.stride = std::max<int64_t>(1, kernel_size / 2 - 1);
      t.padding = std::max<int64_t>(1, kernel_size / 2);
      t.activation = true;
      t.max_pool = true;
      t.pooling_kernel = 2;
      t.pooling_stride = 2;
      t.pooling_padding = 1;
    } else {
      t.kernel_size = patch_size;
      t.stride = patch_size;
      t.padding = 0;
      t.activation = false;
      t.max_pool = false;
    }
    return t;
  }

 private:
  static std::string number(double value) {
    std::ostringstream out;
    out.precision(17);
    out << value;
    return out.str();
  }
};

// The reference's Embedder: the word table under the child name "embeddings"; padded positions
// (mask 0) are zeroed after the lookup, so a padded word contributes nothing whatever its index.
template <typename T = float>
class TextEmbedder : public nn::Module<T> {
 public:
  explicit TextEmbedder(std::shared_ptr<nn::Embedding<T>> table) {
    embeddings = this->register_module("embeddings", std::move(table));
  }
  // ids (B, S), mask (B, S) or undefined → (B, S, E)
  Tensor<T> forward(const Tensor<int64_t>& ids, const Tensor<uint8_t>& mask = Tensor<uint8_t>()) {
    Tensor<T> embedded = embeddings->forward(ids);
    if (!mask.defined()) return embedded;
    CCT_CHECK_SHAPE(mask.shape() == ids.shape(), "TextEmbedder: mask ", shape_str(mask.shape()),
                    " does not match ids ", shape_str(ids.shape()));
    Shape keep_shape = ids.shape();
    keep_shape.push_back(1);
    Tensor<T> keep = Tensor<T>::empty(keep_shape);
    for (int64_t i = 0; i < mask.numel(); ++i) keep.data()[i] = mask.data()[i] ? T(1) : T(0);
    return mul(embedded, keep);
  }
  std::string type_name() const override { return "Embedder"; }

  std::shared_ptr<nn::Embedding<T>> embeddings;
};

template <typename T = float>
class TextCompactTransformer : public nn::Module<T> {
 public:
  static constexpr int64_t kPaddingIndex = text::Vocabulary::kPaddingIndex;

  // `pretrained`: an optional (vocab_size, word_embedding_dim) table (text::embedding_matrix) to start
  // from; otherwise N(0, 1) rows with a zero padding row. The embedding is drawn from its own
  // generator (seeded from config.seed), so the transformer's initial weights do not depend on the
  // vocabulary size or on whether a pretrained table was given.
  explicit TextCompactTransformer(const TextModelConfig& config, const Tensor<T>& pretrained = Tensor<T>())
      : config_(config) {
    CCT_CHECK(config.vocab_size >= 2, config.name, ": vocab_size must be at least 2 (\"<unk>\" and \"<pad>\"), got ",
              config.vocab_size, "; set it to the vocabulary's size");
    CCT_CHECK(config.num_classes >= 1 && config.word_embedding_dim >= 1 && config.seq_len >= 1, config.name,
              ": num_classes, word_embedding_dim and seq_len must be positive");
    std::shared_ptr<nn::Embedding<T>> table;
    if (pretrained.defined()) {
      CCT_CHECK_SHAPE(pretrained.shape() == Shape({config.vocab_size, config.word_embedding_dim}), config.name,
                      ": the pretrained table is ", shape_str(pretrained.shape()), " but the model needs (vocab_size ",
                      config.vocab_size, ", word_embedding_dim ", config.word_embedding_dim, ")");
      table = std::make_shared<nn::Embedding<T>>(pretrained, kPaddingIndex, config.freeze_embedding);
    } else {
      Generator embedding_gen(config.seed ^ 0x7E47E3BEDull);
      table = std::make_shared<nn::Embedding<T>>(config.vocab_size, config.word_embedding_dim, kPaddingIndex,
                                                 config.freeze_embedding, embedding_gen);
    }
    embedder = this->register_module("embedder", std::make_shared<TextEmbedder<T>>(table));
    Generator gen(config.seed);
    tokenizer = this->register_module("tokenizer", std::make_shared<nn::TextTokenizer<T>>(config.tokenizer_config(), gen));
    nn::ClassifierConfig c;
    c.seq_pool = config.family != TextFamily::kViTLite;
    c.embedding_dim = config.embedding_dim;
    c.num_layers = config.num_layers;
    c.num_heads = config.num_heads;
    c.mlp_ratio = config.mlp_ratio;
    c.num_classes = config.num_classes;
    c.sequence_length = tokenizer->sequence_length(config.seq_len);
    c.positional_embedding = config.positional_embedding;
    c.dropout = config.dropout;
    c.attention_dropout = config.attention_dropout;
    c.stochastic_depth = config.stochastic_depth;
    classifier = this->register_module("classifier", std::make_shared<nn::TransformerClassifier<T>>(c, gen));
  }

  // ids (B, seq_len) and mask (B, seq_len), 1 = real word (as text::Vocabulary::encode makes them) →
  // logits (B, num_classes). Without a mask, every index other than "<pad>" (1) counts as a word.
  Tensor<T> forward(const Tensor<int64_t>& ids, const Tensor<uint8_t>& mask = Tensor<uint8_t>(),
                    nn::ClassifierTrace* trace = nullptr) {
    CCT_CHECK_SHAPE(ids.dim() == 2 && ids.size(1) == config_.seq_len, config_.name, ": expected ids (B, ",
                    config_.seq_len, "), got ", shape_str(ids.shape()));
    const Tensor<uint8_t> word_mask = mask.defined() ? mask : padding_mask(ids);
    return forward_embedded(embedder->forward(ids, word_mask), word_mask, trace);
  }
  Tensor<T> operator()(const Tensor<int64_t>& ids, const Tensor<uint8_t>& mask = Tensor<uint8_t>()) {
    return forward(ids, mask);
  }

  // From word vectors (B, seq_len, E) onwards (the embedder's output, or vectors made elsewhere).
  Tensor<T> forward_embedded(const Tensor<T>& embedded, const Tensor<uint8_t>& mask = Tensor<uint8_t>(),
                             nn::ClassifierTrace* trace = nullptr) {
    CCT_CHECK_SHAPE(embedded.dim() == 3 && embedded.size(1) == config_.seq_len &&
                        embedded.size(2) == config_.word_embedding_dim,
                    config_.name, ": expected word vectors (B, ", config_.seq_len, ", ", config_.word_embedding_dim,
                    "), got ", shape_str(embedded.shape()));
    if (mask.defined())
      CCT_CHECK_SHAPE(mask.shape() == Shape({embedded.size(0), config_.seq_len}), config_.name, ": expected a mask (",
                      embedded.size(0), ", ", config_.seq_len, "), got ", shape_str(mask.shape()));
    nn::TextTokens<T> tokens = tokenizer->forward(embedded, mask);
    return classifier->forward(tokens.tokens, tokens.mask, trace);
  }

  // 1 where ids is not "<pad>".
  static Tensor<uint8_t> padding_mask(const Tensor<int64_t>& ids) {
    Tensor<uint8_t> mask = Tensor<uint8_t>::empty(ids.shape());
    for (int64_t i = 0; i < ids.numel(); ++i) mask.data()[i] = ids.data()[i] != kPaddingIndex ? 1 : 0;
    return mask;
  }

  const TextModelConfig& config() const { return config_; }
  // Tokens the transformer sees (without ViT-Lite's class token).
  int64_t sequence_length() const { return classifier->config().sequence_length; }
  // Parameters of tokenizer + classifier that are trained: what the reference's published counts count.
  int64_t num_transformer_parameters() const {
    return tokenizer->num_parameters(/*trainable_only=*/true) + classifier->num_parameters(/*trainable_only=*/true);
  }
  std::string type_name() const override {
    switch (config_.family) {
      case TextFamily::kCCT: return "TextCCT";
      case TextFamily::kCVT: return "TextCVT";
      default: return "TextViTLite";
    }
  }

  std::shared_ptr<TextEmbedder<T>> embedder;
  std::shared_ptr<nn::TextTokenizer<T>> tokenizer;
  std::shared_ptr<nn::TransformerClassifier<T>> classifier;

 private:
  TextModelConfig config_;
};

// The three families as types (a config of another family is refused).
template <typename T = float>
class TextCCT : public TextCompactTransformer<T> {
 public:
  explicit TextCCT(const TextModelConfig& config, const Tensor<T>& pretrained = Tensor<T>())
      : TextCompactTransformer<T>(checked(config), pretrained) {}

 private:
  static const TextModelConfig& checked(const TextModelConfig& config) {
    CCT_CHECK(config.family == TextFamily::kCCT, "TextCCT: config '", config.name, "' is for ",
              text_family_name(config.family));
    return config;
  }
};
template <typename T = float>
class TextCVT : public TextCompactTransformer<T> {
 public:
  explicit TextCVT(const TextModelConfig& config, const Tensor<T>& pretrained = Tensor<T>())
      : TextCompactTransformer<T>(checked(config), pretrained) {}

 private:
  static const TextModelConfig& checked(const TextModelConfig& config) {
    CCT_CHECK(config.family == TextFamily::kCVT, "TextCVT: config '", config.name, "' is for ",
              text_family_name(config.family));
    return config;
  }
};
template <typename T = float>
class TextViTLite : public TextCompactTransformer<T> {
 public:
  explicit TextViTLite(const TextModelConfig& config, const Tensor<T>& pretrained = Tensor<T>())
      : TextCompactTransformer<T>(checked(config), pretrained) {}

 private:
  static const TextModelConfig& checked(const TextModelConfig& config) {
    CCT_CHECK(config.family == TextFamily::kViTLite, "TextViTLite: config '", config.name, "' is for ",
              text_family_name(config.family));
    return config;
  }
};

// ---- registry ----------------------------------------------------------------------------------------
// Names:
//   text_cct_L_kK   L ∈ {2, 4, 6} encoder layers, conv kernel K ∈ {1, 2, 4} over time
//   text_cct_L      the same with K = 4 (the reference's default kernel)
//   text_cvt_L      patches of 4 words, SeqPool;  text_cvt_6 has D = 128 (4 heads, MLP ratio 2)
//   text_vit_L      patches of 4 words, class token (alias text_vit_lite_L)
// Encoder sizes are the image models' (L = 2, 4: 2 heads, D 128, ratio 1; L = 6: 4 heads, D 256, ratio 2).
// Registered defaults: 4 classes, E = 300, 64 words, sine positional table; vocab_size must be given.

struct TextModelOptions {
  int64_t vocab_size = 0;          // required (the vocabulary's size)
  int64_t num_classes = 0;         // zero: as registered (4)
  int64_t word_embedding_dim = 0;  // zero: 300 (set it to the pretrained vectors' dimension)
  int64_t seq_len = 0;             // zero: 64
  int64_t kernel_size = 0;         // TextCCT only; zero: from the name
  std::optional<nn::PositionalEmbedding> positional_embedding;
  std::optional<bool> freeze_embedding;
  std::optional<double> dropout, attention_dropout, stochastic_depth;
  uint64_t seed = 0;
};

inline std::vector<std::string> registered_text_models() {
  std::vector<std::string> names;
  for (int layers : {2, 4, 6})
    for (int kernel : {1, 2, 4}) names.push_back(cct::detail::concat("text_cct_", layers, "_k", kernel));
  for (int layers : {2, 4, 6}) names.push_back(cct::detail::concat("text_cvt_", layers));
  for (int layers : {2, 4, 6}) names.push_back(cct::detail::concat("text_vit_", layers));
  return names;
}

// The config of a registered name (vocab_size still 0).
inline TextModelConfig registered_text_config(const std::string& requested) {
  std::string name = requested;
  if (name.rfind("text_vit_lite_", 0) == 0) name = "text_vit_" + name.substr(14);
  int layers = 0, kernel = 4;
  char tail = 0;
  TextModelConfig c;
  std::string canonical;  // the name as it must be spelled (rejects "text_cct_02", trailing text, ...)
  if (std::sscanf(name.c_str(), "text_cct_%d_k%d%c", &layers, &kernel, &tail) == 2) {
    c.family = TextFamily::kCCT;
    canonical = cct::detail::concat("text_cct_", layers, "_k", kernel);
  } else if (std::sscanf(name.c_str(), "text_cct_%d%c", &layers, &tail) == 1) {
    c.family = TextFamily::kCCT;
    canonical = cct::detail::concat("text_cct_", layers);
  } else if (std::sscanf(name.c_str(), "text_cvt_%d%c", &layers, &tail) == 1) {
    c.family = TextFamily::kCVT;
    canonical = cct::detail::concat("text_cvt_", layers);
  } else if (std::sscanf(name.c_str(), "text_vit_%d%c", &layers, &tail) == 1) {
    c.family = TextFamily::kViTLite;
    canonical = cct::detail::concat("text_vit_", layers);
  }
  const bool known_size = layers == 2 || layers == 4 || layers == 6;
  const bool known_kernel = kernel == 1 || kernel == 2 || kernel == 4;
  if (canonical != name || !known_size || !known_kernel) {
    std::string known;
    for (const auto& n : registered_text_models()) known += (known.empty() ? "" : ", ") + n;
    throw Error(cct::detail::concat("unknown text model '", requested, "'; known text models: ", known,
                                    " (text_cct_L alone means kernel 4; text_vit_lite_L = text_vit_L)"));
  }
  const EncoderSize size = encoder_size(layers);
  c.name = requested;
  c.num_layers = size.num_layers;
  c.num_heads = size.num_heads;
  c.embedding_dim = size.embedding_dim;
  c.mlp_ratio = size.mlp_ratio;
  if (c.family == TextFamily::kCVT && layers == 6) c.embedding_dim = 128;  // the reference's text_cvt_6
  c.kernel_size = kernel;
  c.patch_size = 4;
  return c;
}

inline TextModelConfig make_text_config(const std::string& name, const TextModelOptions& options = {}) {
  TextModelConfig config = registered_text_config(name);
  config.vocab_size = options.vocab_size;
  if (options.num_classes) config.num_classes = options.num_classes;
  if (options.word_embedding_dim) config.word_embedding_dim = options.word_embedding_dim;
  if (options.seq_len) config.seq_len = options.seq_len;
  if (options.kernel_size) {
    CCT_CHECK(config.family == TextFamily::kCCT, name, ": kernel_size applies to TextCCT only");
    config.kernel_size = options.kernel_size;
  }
  if (options.positional_embedding) config.positional_embedding = *options.positional_embedding;
  if (options.freeze_embedding) config.freeze_embedding = *options.freeze_embedding;
  if (options.dropout) config.dropout = *options.dropout;
  if (options.attention_dropout) config.attention_dropout = *options.attention_dropout;
  if (options.stochastic_depth) config.stochastic_depth = *options.stochastic_depth;
  config.seed = options.seed;
  return config;
}

template <typename T = float>
std::shared_ptr<TextCompactTransformer<T>> create_text(const TextModelConfig& config,
                                                       const Tensor<T>& pretrained = Tensor<T>()) {
  switch (config.family) {
    case TextFamily::kCCT: return std::make_shared<TextCCT<T>>(config, pretrained);
    case TextFamily::kCVT: return std::make_shared<TextCVT<T>>(config, pretrained);
    default: return std::make_shared<TextViTLite<T>>(config, pretrained);
  }
}

template <typename T = float>
std::shared_ptr<TextCompactTransformer<T>> create_text(const std::string& name, const TextModelOptions& options,
                                                       const Tensor<T>& pretrained = Tensor<T>()) {
  return create_text<T>(make_text_config(name, options), pretrained);
}

// ---- checkpoints ---------------------------------------------------------------------------------------
// A safetensors file with the model's state dict under the reference names, the config in the
// metadata (as the image models' checkpoints) and, when given, the vocabulary under "vocabulary", so
// that load_text_model rebuilds a model that reads raw text. A training checkpoint may add tensors
// under "optimizer." and "training."; loading a model ignores them.

template <typename T>
void save_text_model(const std::string& path, const TextCompactTransformer<T>& model,
                     const text::Vocabulary* vocabulary = nullptr, io::Metadata metadata = {},
                     const std::vector<std::pair<std::string, Tensor<T>>>& extra_tensors = {}) {
  if (vocabulary)
    CCT_CHECK(vocabulary->size() == model.config().vocab_size, "save_text_model: the vocabulary has ",
              vocabulary->size(), " tokens but the model's embedding has ", model.config().vocab_size, " rows");
  auto tensors = model.state_dict();
  tensors.insert(tensors.end(), extra_tensors.begin(), extra_tensors.end());
  for (const auto& [key, value] : model.config().to_metadata()) metadata[key] = value;
  if (vocabulary) vocabulary->to_metadata(metadata);
  metadata["format"] = io::kCheckpointFormat;
  io::save_safetensors(path, tensors, metadata);
}

inline TextModelConfig read_text_model_config(const std::string& path) {
  const io::SafeTensorsReader reader(path);
  if (!reader.metadata().count("model"))
    throw IoError(io::detail::file_prefix(path) + "has no model config in its metadata (not written by cct?)");
  try {
    return TextModelConfig::from_metadata(reader.metadata(), path);
  } catch (const IoError&) {
    throw;
  } catch (const Error& error) {
    throw IoError(error.what());
  }
}

// Loads weights into an existing text model. Strict: the file must be a checkpoint of the same
// architecture and hold exactly the model's tensors (training entries aside), else one IoError says why.
template <typename T>
io::LoadReport load_text_weights(const std::string& path, TextCompactTransformer<T>& model, bool strict = true) {
  if (strict) {
    const io::SafeTensorsReader reader(path);
    if (reader.metadata().count("model")) {
      TextModelConfig stored = read_text_model_config(path);
      TextModelConfig mine = model.config();
      // Names, seeds and regularisation may differ; the tensors' layout may not.
      stored.seed = mine.seed;
      stored.dropout = mine.dropout;
      stored.attention_dropout = mine.attention_dropout;
      stored.stochastic_depth = mine.stochastic_depth;
      stored.freeze_embedding = mine.freeze_embedding;
      const std::string stored_name = stored.name;
      stored.name = mine.name;
      if (!(stored == mine))
        throw IoError(io::detail::file_prefix(path) + "is a checkpoint of '" + stored_name +
                      "' with another architecture than the model '" + mine.name + "' (compare the metadata: " +
                      "family, sizes, vocab_size, word_embedding_dim, seq_len, num_classes, positional_embedding)");
    }
  }
  return io::load_into(path, model.state_dict(), strict, io::non_model_prefixes());
}

template <typename T = float>
struct LoadedTextModel {
  std::shared_ptr<TextCompactTransformer<T>> model;
  text::Vocabulary vocabulary;  // only the reserved tokens when the file holds none
  bool has_vocabulary = false;
};

// Rebuilds the text model a checkpoint was saved from, loads its weights, and reads its vocabulary.
template <typename T = float>
LoadedTextModel<T> load_text_model(const std::string& path) {
  LoadedTextModel<T> out;
  out.model = create_text<T>(read_text_model_config(path));
  load_text_weights(path, *out.model, /*strict=*/true);
  const io::SafeTensorsReader reader(path);
  if (reader.metadata().count(text::Vocabulary::kMetadataKey)) {
    out.vocabulary = text::Vocabulary::from_metadata(reader.metadata(), path);
    out.has_vocabulary = true;
  }
  return out;
}

}  // namespace cct::models
