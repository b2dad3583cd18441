// Text classifiers: TextCCT, TextCVT and TextViTLite = word embedding → TextTokenizer (a convolution
// over time) → TransformerClassifier, with the padding mask carried through every stage; one class,
// TextCompactTransformer, built at run time from a TextModelConfig (the family is data, not a type),
// and their registry (text_cct_2_k4, text_cvt_6, ...). Their checkpoints: models/checkpoint.hpp.
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
#include <string>
#include <utility>
#include <vector>

#include "../nn/embedding.hpp"
#include "../nn/text_tokenizer.hpp"
#include "../nn/transformer_classifier.hpp"
#include "../text/vocabulary.hpp"
#include "model_config.hpp"

namespace cct::models {

enum class TextFamily { kCCT, kCVT, kViTLite };

inline const EnumNames<TextFamily>& text_family_names() {
  static const EnumNames<TextFamily> names = {
      {"text_cct", TextFamily::kCCT}, {"text_cvt", TextFamily::kCVT}, {"text_vit_lite", TextFamily::kViTLite}};
  return names;
}

inline const char* text_family_name(TextFamily family) {
  for (const auto& [name, value] : text_family_names())
    if (value == family) return name;
  return "?";
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

  // The one table of stored fields (config_metadata.hpp): key, kind and valid range of each. The seed
  // is not stored: a loaded model takes its weights from the file.
  template <typename Self, typename Fields>
  static void visit_fields(Self& c, Fields& f) {
    f.text("model", c.name);
    f.choice("family", c.family, text_family_names(), "text model family");
    f.integer("num_layers", c.num_layers, 1);
    f.integer("num_heads", c.num_heads, 1);
    f.integer("embedding_dim", c.embedding_dim, 1);
    f.number("mlp_ratio", c.mlp_ratio, 0, 64, /*low_open=*/true);
    f.integer("kernel_size", c.kernel_size, 1);
    f.integer("patch_size", c.patch_size, 1);
    f.integer("vocab_size", c.vocab_size, 2);  // "<unk>" and "<pad>" at least
    f.integer("word_embedding_dim", c.word_embedding_dim, 1);
    f.integer("seq_len", c.seq_len, 1);
    f.integer("num_classes", c.num_classes, 1);
    f.choice("positional_embedding", c.positional_embedding, positional_embedding_names(), "positional_embedding");
    f.flag("freeze_embedding", c.freeze_embedding);
    f.number("dropout", c.dropout, 0, 1);
    f.number("attention_dropout", c.attention_dropout, 0, 1);
    f.number("stochastic_depth", c.stochastic_depth, 0, 1);
  }

  std::map<std::string, std::string> to_metadata() const { return config_to_metadata(*this); }

  // Rebuilds a config from checkpoint metadata, validating each field; `source` (a file name) is quoted
  // in errors (IoError).
  static TextModelConfig from_metadata(const std::map<std::string, std::string>& metadata, const std::string& source) {
    return config_from_metadata<TextModelConfig>(metadata, source);
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
  return std::make_shared<TextCompactTransformer<T>>(config, pretrained);
}

template <typename T = float>
std::shared_ptr<TextCompactTransformer<T>> create_text(const std::string& name, const TextModelOptions& options,
                                                       const Tensor<T>& pretrained = Tensor<T>()) {
  return create_text<T>(make_text_config(name, options), pretrained);
}

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_MODELS_TEXT_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class TextEmbedder<T>; \
  CCT_EXTERN_TEMPLATE class TextCompactTransformer<T>; \
  CCT_EXTERN_TEMPLATE std::shared_ptr<TextCompactTransformer<T>> create_text<T>(const TextModelConfig&, const Tensor<T>&); \
  CCT_EXTERN_TEMPLATE std::shared_ptr<TextCompactTransformer<T>> create_text<T>(const std::string&, const TextModelOptions&, const Tensor<T>&);
CCT_FOR_FLOATING_TYPES(CCT_MODELS_TEXT_TEMPLATES)
#undef CCT_MODELS_TEXT_TEMPLATES
#endif

}  // namespace cct::models
