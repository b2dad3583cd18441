// The three commands of cct_text: train, eval, predict. Training runs through cct::train::fit; this
// file holds what is particular to text: the vocabulary, word vectors, and the text checkpoint.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include <cct/cct.hpp>
#include <cct/train/fit.hpp>

#include "../common/cli.hpp"
#include "../common/outputs.hpp"
#include "text_checkpoint.hpp"
#include "text_data.hpp"
#include "text_loader.hpp"

namespace text_trainer {
using namespace cct;

// Defaults: the best TREC recipe found on a 2-core CPU (docs/text_recipes.md): text_cct_2_k4 with random
// 300-d word vectors, 32 words (TREC questions average 10; 6 of 5,452 are longer), words seen at least
// twice (the others train "<unk>", which the test set's unseen words then map to), dropout 0.2, word
// dropout 0.2 and weight decay 0.1 against over-fitting, 20 epochs at lr 2e-3 with warm-up then a straight line down,
// an EMA of the weights (0.99: TREC has only 85 steps an epoch), all training sentences (no validation
// split; --val-split 0.1 holds some out). AG News sentences average 45 words: use --seq-len 64 there.
struct TrainOptions {
  std::string dataset = "trec";
  std::string data_dir;
  std::string model = "text_cct_2_k4";
  int64_t seq_len = 32;
  int64_t embedding_dim = 300;  // word vector size without --glove (with it: the file's)
  std::string glove;
  bool freeze_embeddings = false;
  int64_t min_freq = 2;
  int64_t max_vocab = 0;
  std::string positional_embedding = "sine";
  double dropout = 0.2;
  double attention_dropout = 0.1;
  double stochastic_depth = 0.1;
  double word_dropout = 0.2;
  train::LoopOptions loop = [] {
    train::LoopOptions loop;
    loop.epochs = 20;
    loop.batch_size = 64;
    loop.lr = 2e-3;
    loop.weight_decay = 0.1;
    loop.warmup_epochs = 2;
    loop.val_split = 0.0;
    loop.schedule = "linear";
    loop.ema = 0.99;
    return loop;
  }();
  std::string out = "runs/text_trec";
  bool resume = false;

  // The text options' ranges (the loop's are LoopOptions::validate's).
  void validate() const {
    (void)models::registered_text_config(model);  // an unknown --model fails before any folder is made
    train::check::whole("--seq-len", seq_len, 1, 4096);
    train::check::whole("--embedding-dim", embedding_dim, 1, 4096);
    train::check::whole("--min-freq", min_freq, 1, int64_t{1} << 40);
    train::check::whole("--max-vocab", max_vocab, 0, int64_t{1} << 24);
    train::check::below("--dropout", dropout, 0, 1);
    train::check::below("--attention-dropout", attention_dropout, 0, 1);
    train::check::below("--stochastic-depth", stochastic_depth, 0, 1);
    train::check::below("--word-dropout", word_dropout, 0, 1);
  }

  json::Object to_json() const {
    json::Object o;
    o.set("dataset", json::Value(dataset));
    o.set("data_dir", json::Value(data_dir));
    o.set("model", json::Value(model));
    o.set("seq_len", json::Value(seq_len));
    o.set("embedding_dim", json::Value(embedding_dim));
    o.set("glove", json::Value(glove));
    o.set("freeze_embeddings", json::Value(freeze_embeddings));
    o.set("min_freq", json::Value(min_freq));
    o.set("max_vocab", json::Value(max_vocab));
    o.set("positional_embedding", json::Value(positional_embedding));
    o.set("dropout", json::Value(dropout));
    o.set("attention_dropout", json::Value(attention_dropout));
    o.set("stochastic_depth", json::Value(stochastic_depth));
    o.set("word_dropout", json::Value(word_dropout));
    loop.to_json(o);
    o.set("out", json::Value(out));
    return o;
  }
  static TrainOptions from_json(const json::Object& o) {
    TrainOptions t;
    t.dataset = o.at("dataset").as_string();
    t.data_dir = o.at("data_dir").as_string();
    t.model = o.at("model").as_string();
    t.seq_len = o.at("seq_len").as_int();
    t.embedding_dim = o.at("embedding_dim").as_int();
    t.glove = o.at("glove").as_string();
    t.freeze_embeddings = o.at("freeze_embeddings").as_bool();
    t.min_freq = o.at("min_freq").as_int();
    t.max_vocab = o.at("max_vocab").as_int();
    t.positional_embedding = o.at("positional_embedding").as_string();
    t.dropout = o.at("dropout").as_double();
    t.attention_dropout = o.at("attention_dropout").as_double();
    t.stochastic_depth = o.at("stochastic_depth").as_double();
    const json::Value* words = o.find("word_dropout");
    t.word_dropout = words ? words->as_double() : 0.0;  // runs from before the option had none
    t.loop.from_json(o);
    t.out = o.at("out").as_string();
    return t;
  }
};

struct EvalOptions {
  std::string checkpoint, dataset, data_dir, split = "test", out;
  int64_t batch_size = 256;
  int threads = 0;
};

struct PredictOptions {
  std::string checkpoint;
  std::vector<std::string> sentences;  // empty: one sentence per line of stdin
  int64_t top_k = 3;
  bool json = false;
  int threads = 0;
};

// ---- shared pieces ---------------------------------------------------------------------------------

inline nn::PositionalEmbedding parse_positional_embedding(const std::string& name) {
  if (name == "sine") return nn::PositionalEmbedding::kSine;
  if (name == "learnable") return nn::PositionalEmbedding::kLearnable;
  if (name == "none") return nn::PositionalEmbedding::kNone;
  throw Error("unknown --positional-embedding '" + name + "'; use sine, learnable or none");
}

// The batches of `dataset` in file order, through the shared evaluation loop.
inline train::Evaluation evaluate_text(models::TextCompactTransformer<float>& model, const text::TextDataset& dataset,
                                       const text::Vocabulary& vocabulary, int64_t batch_size, const std::string& label) {
  TextLoaderOptions options;
  options.batch_size = batch_size;
  options.seq_len = model.config().seq_len;
  options.shuffle = false;
  const TextLoader loader(dataset, vocabulary, options);
  const std::vector<int64_t> order = loader.epoch_order(0);
  return train::evaluate(
      model, loader.num_batches(), model.config().num_classes,
      [&](int64_t index, Tensor<int64_t>& labels) {
        const TextBatch batch = loader.batch(order, index);
        labels = batch.labels;
        return model.forward(batch.ids, batch.mask);
      },
      label, "seq");
}

inline void print_split(const char* what, const text::TextDataset& data, const std::string& source) {
  std::printf("  %-10s %6lld sentences  %s\n", what, static_cast<long long>(data.size()), source.c_str());
}

// How much of the text the model will see: unknown words and truncation at seq_len.
inline void describe_vocabulary(const text::Vocabulary& vocabulary, const TextSplits& splits, const TrainOptions& options) {
  int64_t words = 0, test_words = 0, unknown = 0, truncated = 0;
  const text::Tokenizer& tokenizer = vocabulary.tokenizer();
  for (const auto* texts : {&splits.train.texts, &splits.test.texts})
    for (const auto& sentence : *texts) {
      const auto tokens = tokenizer.tokenize(sentence);
      words += static_cast<int64_t>(tokens.size());
      truncated += static_cast<int64_t>(tokens.size()) > options.seq_len;
      if (texts == &splits.test.texts) {
        test_words += static_cast<int64_t>(tokens.size());
        for (const auto& token : tokens) unknown += !vocabulary.contains(token);
      }
    }
  const int64_t sentences = splits.train.size() + splits.test.size();
  std::printf("vocabulary: %s tokens (min-freq %lld%s); %.1f words per sentence, %lld of %lld sentences longer "
              "than --seq-len %lld; %.1f%% of test words unknown\n",
              train::format_thousands(vocabulary.size()).c_str(), static_cast<long long>(options.min_freq),
              options.max_vocab ? (", max " + std::to_string(options.max_vocab)).c_str() : "",
              static_cast<double>(words) / static_cast<double>(std::max<int64_t>(1, sentences)),
              static_cast<long long>(truncated), static_cast<long long>(sentences),
              static_cast<long long>(options.seq_len),
              test_words ? 100.0 * static_cast<double>(unknown) / static_cast<double>(test_words) : 0.0);
}

// A new model for `vocabulary`, its word vectors from --glove when given.
inline std::shared_ptr<models::TextCompactTransformer<float>> create_text_model(const TrainOptions& options,
                                                                                const text::Vocabulary& vocabulary,
                                                                                int64_t num_classes) {
  models::TextModelOptions model_options;
  model_options.vocab_size = vocabulary.size();
  model_options.num_classes = num_classes;
  model_options.word_embedding_dim = options.embedding_dim;
  model_options.seq_len = options.seq_len;
  model_options.positional_embedding = parse_positional_embedding(options.positional_embedding);
  model_options.freeze_embedding = options.freeze_embeddings;
  model_options.dropout = options.dropout;
  model_options.attention_dropout = options.attention_dropout;
  model_options.stochastic_depth = options.stochastic_depth;
  model_options.seed = options.loop.seed;
  Tensor<float> pretrained;
  if (!options.glove.empty()) {
    const std::unordered_set<std::string> wanted(vocabulary.tokens().begin(), vocabulary.tokens().end());
    text::GloveOptions glove_options;
    glove_options.keep = &wanted;
    glove_options.lowercase = vocabulary.tokenizer().options().lowercase;
    const text::WordVectors vectors = text::read_glove(options.glove, glove_options);
    const text::Coverage covered = text::coverage(vectors, vocabulary);
    std::string examples;
    for (size_t i = 0; i < std::min<size_t>(8, covered.missing.size()); ++i) examples += " " + covered.missing[i];
    std::printf("GloVe: %s, %s vectors of %lld dimensions (this sets the word embedding size); %.1f%% of the "
                "vocabulary covered (%lld / %lld)%s%s\n",
                options.glove.c_str(), train::format_thousands(vectors.vectors_read()).c_str(),
                static_cast<long long>(vectors.dim()), 100.0 * covered.fraction(), static_cast<long long>(covered.found),
                static_cast<long long>(covered.total), covered.missing.empty() ? "" : "; most frequent missing:",
                examples.c_str());
    model_options.word_embedding_dim = vectors.dim();
    Generator gen(data::derive_seed(options.loop.seed, 0, 0, /*purpose=*/11));
    pretrained = text::embedding_matrix<float>(vocabulary, vectors, gen);
  } else if (options.freeze_embeddings) {
    std::printf("note: --freeze-embeddings without --glove keeps the random word vectors fixed\n");
  }
  return models::create_text<float>(options.model, model_options, pretrained);
}

// ---- train -----------------------------------------------------------------------------------------

// Sentences for cct::train::fit: seeded shuffled batches for training, file order for evaluation, and
// checkpoints that carry the vocabulary.
class TextTask : public train::Task {
 public:
  TextTask(const TrainOptions& options, std::shared_ptr<models::TextCompactTransformer<float>> model,
           text::Vocabulary vocabulary, const TextSplits& splits)
      : options_(options),
        model_(std::move(model)),
        vocabulary_(std::move(vocabulary)),
        splits_(splits),
        loader_(splits_.train, vocabulary_, loader_options(options, model_->config().seq_len)),
        info_{options.dataset, splits_.train.class_names} {}

  const text::Vocabulary& vocabulary() const { return vocabulary_; }

  nn::Module<float>& model() override { return *model_; }
  std::string model_name() const override { return options_.model; }
  const std::vector<std::string>& class_names() const override { return info_.class_names; }
  std::string unit() const override { return "seq"; }
  std::string title() const override { return options_.model + " on " + options_.dataset; }
  std::string recipe() const override {
    if (options_.word_dropout <= 0) return "";
    char text[48];
    std::snprintf(text, sizeof text, "word dropout %g", options_.word_dropout);
    return text;
  }

  int64_t steps_per_epoch() const override { return loader_.num_batches(); }
  void start_epoch(int64_t epoch, int64_t first_step) override {
    order_ = loader_.epoch_order(epoch);
    epoch_ = epoch;
    next_step_ = first_step;
  }
  bool next_batch() override {
    if (next_step_ >= loader_.num_batches()) return false;
    batch_ = loader_.batch(order_, next_step_++, epoch_);
    return true;
  }
  train::TrainStep forward(double label_smoothing) override {
    train::TrainStep step;
    step.logits = model_->forward(batch_.ids, batch_.mask);
    step.loss = cross_entropy(step.logits, batch_.labels, label_smoothing);
    step.labels = batch_.labels;
    return step;
  }

  int64_t eval_batches(train::Split split) override {
    const text::TextDataset& dataset = split == train::Split::kTest ? splits_.test : splits_.val;
    if (dataset.size() == 0) return 0;
    TextLoaderOptions options;
    options.batch_size = 256;
    options.seq_len = model_->config().seq_len;
    options.shuffle = false;
    options.shard = trainer_cli::data_shard(/*pad=*/false);  // under mpirun, this rank's share
    eval_loader_ = std::make_unique<TextLoader>(dataset, vocabulary_, options);
    eval_order_ = eval_loader_->epoch_order(0);
    return eval_loader_->num_batches();
  }
  Tensor<float> eval_logits(train::Split, int64_t index, Tensor<int64_t>& labels) override {
    const TextBatch batch = eval_loader_->batch(eval_order_, index);
    labels = batch.labels;
    return model_->forward(batch.ids, batch.mask);
  }

  void save_checkpoint(const std::string& path, io::Metadata metadata,
                       const optim::NamedTensors<float>& extra_tensors) override {
    metadata["data.dataset"] = info_.dataset;
    models::save_model(path, *model_, &vocabulary_, metadata, extra_tensors);
  }
  void load_weights(const std::string& path) override { models::load_weights(path, *model_, /*strict=*/true); }
  void describe_final(json::Object& final_result) const override {
    final_result.set("dataset", json::Value(options_.dataset));
    final_result.set("glove", json::Value(options_.glove));
    final_result.set("vocabulary_size", json::Value(vocabulary_.size()));
  }

 private:
  static TextLoaderOptions loader_options(const TrainOptions& options, int64_t seq_len) {
    TextLoaderOptions loader;
    loader.batch_size = options.loop.batch_size;
    loader.seq_len = seq_len;
    loader.shuffle = true;
    loader.seed = options.loop.seed;
    loader.word_dropout = options.word_dropout;
    loader.shard = trainer_cli::data_shard(/*pad=*/true);  // under mpirun, this rank's share
    return loader;
  }

  TrainOptions options_;
  std::shared_ptr<models::TextCompactTransformer<float>> model_;
  text::Vocabulary vocabulary_;
  TextSplits splits_;
  TextLoader loader_;
  TextDataInfo info_;
  std::vector<int64_t> order_, eval_order_;
  int64_t next_step_ = 0, epoch_ = 0;
  TextBatch batch_;
  std::unique_ptr<TextLoader> eval_loader_;
};

inline int run_train(TrainOptions options, const CLI::App& command) {
  const auto started = std::chrono::steady_clock::now();
  const train::RunFolder run = trainer_cli::start_run(options, command);
  parse_positional_embedding(options.positional_embedding);  // a bad name fails before the data is read

  const std::string data_dir = resolve_text_data_dir(options.data_dir);
  const TextSplits splits = read_text_data(options.dataset, data_dir, options.loop.val_split, options.loop.seed);
  std::printf("data: %s, %lld classes (", options.dataset.c_str(), static_cast<long long>(splits.train.num_classes()));
  for (size_t c = 0; c < splits.train.class_names.size(); ++c)
    std::printf("%s%s", c ? ", " : "", splits.train.class_names[c].c_str());
  std::printf(")\n");
  print_split("train", splits.train, splits.train_source);
  if (splits.val.size() > 0) print_split("validation", splits.val, splits.val_source);
  print_split("test", splits.test, splits.test_source);

  // The vocabulary comes from the training text only (a resumed run reads the one it saved, and
  // rebuilds its model from the checkpoint: the word vectors are in it).
  text::Vocabulary vocabulary;
  std::shared_ptr<models::TextCompactTransformer<float>> model;
  if (options.resume) {
    vocabulary = text::Vocabulary::from_metadata(io::SafeTensorsReader(run.last_checkpoint()).metadata(),
                                                 run.last_checkpoint());
    describe_vocabulary(vocabulary, splits, options);
    model = models::create_text<float>(models::read_text_model_config(run.last_checkpoint()));
  } else {
    text::VocabularyOptions vocabulary_options;
    vocabulary_options.min_freq = options.min_freq;
    vocabulary_options.max_size = options.max_vocab;
    vocabulary = text::Vocabulary::build(splits.train.texts, vocabulary_options);
    describe_vocabulary(vocabulary, splits, options);
    model = create_text_model(options, vocabulary, splits.train.num_classes());
  }
  std::printf("model: %s, %s parameters (%s trainable, %s in tokenizer + transformer), word vectors %lld-d%s, "
              "%lld words -> %lld tokens\n",
              options.model.c_str(), train::format_thousands(model->num_parameters()).c_str(),
              train::format_thousands(model->num_parameters(/*trainable_only=*/true)).c_str(),
              train::format_thousands(model->num_transformer_parameters()).c_str(),
              static_cast<long long>(model->config().word_embedding_dim),
              model->config().freeze_embedding ? " (frozen)" : "", static_cast<long long>(model->config().seq_len),
              static_cast<long long>(model->sequence_length()));

  TextTask task(options, model, std::move(vocabulary), splits);
  return train::fit(task, options.loop, run, options.to_json(), options.resume, &trainer_cli::interrupted, started,
                    trainer_cli::world());
}

// ---- eval ------------------------------------------------------------------------------------------

inline int run_eval(const EvalOptions& options) {
  if (options.threads > 0) set_num_threads(options.threads);
  const models::LoadedTextModel<float> loaded = models::load_text_model<float>(options.checkpoint);
  CCT_CHECK(loaded.has_vocabulary, "checkpoint '", options.checkpoint,
            "' holds no vocabulary, so its model cannot read text (it was not written by cct_text)");
  const io::SafeTensorsReader reader(options.checkpoint);
  const TextDataInfo info = read_text_data_info(reader);
  const json::Object args = train::read_training_args(reader);
  // The data set and the split settings of the run, so the same sentences are held out.
  const std::string dataset = !options.dataset.empty() ? options.dataset : info.dataset;
  if (dataset.empty())
    throw Error("checkpoint '" + options.checkpoint + "' does not say which data set it was trained on; pass --dataset");
  const double val_split = args.find("val_split") ? args.at("val_split").as_double() : 0.1;
  const uint64_t seed = args.find("seed") ? static_cast<uint64_t>(args.at("seed").as_int()) : 0;
  std::string data_dir = options.data_dir;
  if (data_dir.empty() && !std::getenv("CCT_DATA_DIR") && args.find("data_dir")) data_dir = args.at("data_dir").as_string();
  data_dir = resolve_text_data_dir(data_dir);
  const TextSplits splits = read_text_data(dataset, data_dir, val_split, seed);
  const text::TextDataset& data = options.split == "test" ? splits.test : options.split == "val" ? splits.val : splits.train;
  CCT_CHECK(data.size() > 0, "data set '", dataset, "' has no ", options.split, " part (validation needs --val-split > 0 "
            "when the data set has no dev file)");
  models::TextCompactTransformer<float>& model = *loaded.model;
  CCT_CHECK(data.num_classes() == model.config().num_classes, "checkpoint '", options.checkpoint, "' has ",
            model.config().num_classes, " classes but data set '", dataset, "' has ", data.num_classes());
  const train::Evaluation result = evaluate_text(model, data, loaded.vocabulary, options.batch_size, "eval");
  std::printf("%s", result.confusion.to_string(data.class_names).c_str());
  std::printf("%s on %lld %s sentences of %s: accuracy %.2f%%, loss %.4f\n", model.config().name.c_str(),
              static_cast<long long>(result.count), options.split.c_str(), dataset.c_str(), result.top1, result.loss);
  if (!options.out.empty())
    trainer_cli::write_evaluation(options.out, result, data.class_names,
                                  model.config().name + " on " + dataset + " (" + options.split + ")",
                                  json::Object{{"checkpoint", json::Value(options.checkpoint)},
                                               {"dataset", json::Value(dataset)},
                                               {"split", json::Value(options.split)}});
  return 0;
}

// ---- predict ---------------------------------------------------------------------------------------

inline int run_predict(const PredictOptions& options) {
  if (options.threads > 0) set_num_threads(options.threads);
  const models::LoadedTextModel<float> loaded = models::load_text_model<float>(options.checkpoint);
  CCT_CHECK(loaded.has_vocabulary, "checkpoint '", options.checkpoint,
            "' holds no vocabulary, so its model cannot read text (it was not written by cct_text)");
  models::TextCompactTransformer<float>& model = *loaded.model;
  model.eval();
  const int64_t classes = model.config().num_classes, seq_len = model.config().seq_len;
  const std::vector<std::string> class_names = trainer_cli::class_names_or_indices(
      read_text_data_info(io::SafeTensorsReader(options.checkpoint)).class_names, classes);

  // Sentences from the arguments, or from stdin a chunk at a time (memory stays bounded however long the
  // input is; a line longer than 1 MiB is refused).
  constexpr int64_t kChunk = 256;
  constexpr size_t kMaxLine = size_t{1} << 20;
  size_t next_argument = 0;
  int64_t line_number = 0;
  const auto next_chunk = [&](std::vector<std::string>& chunk) {
    chunk.clear();
    if (!options.sentences.empty()) {
      while (next_argument < options.sentences.size() && static_cast<int64_t>(chunk.size()) < kChunk)
        chunk.push_back(options.sentences[next_argument++]);
      return;
    }
    std::string line;
    while (static_cast<int64_t>(chunk.size()) < kChunk && std::getline(std::cin, line)) {
      ++line_number;
      CCT_CHECK(line.size() <= kMaxLine, "predict: line ", line_number, " of stdin is ", line.size(),
                " bytes long; sentences longer than 1 MiB are refused");
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") != std::string::npos) chunk.push_back(line);
    }
  };
  std::vector<std::string> sentences;
  next_chunk(sentences);
  CCT_CHECK(!sentences.empty(), "predict: no sentences (give them as arguments or one per line on stdin)");
  std::optional<trainer_cli::PredictionsWriter> document;
  if (options.json) document.emplace(options.checkpoint, class_names);
  for (; !sentences.empty(); next_chunk(sentences)) {
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < static_cast<int64_t>(sentences.size()); ++i) rows.push_back(i);
    const text::EncodedBatch encoded = loaded.vocabulary.encode_batch(sentences, rows, seq_len);
    Tensor<float> logits;
    {
      NoGradGuard no_grad;
      logits = model.forward(encoded.ids, encoded.mask);
    }
    const Tensor<float> probabilities = softmax(logits, 1);
    for (size_t b = 0; b < rows.size(); ++b) {
      const std::string& sentence = sentences[b];
      const float* p = probabilities.data() + static_cast<int64_t>(b) * classes;
      const float* z = logits.data() + static_cast<int64_t>(b) * classes;
      const std::vector<int64_t> ids(encoded.ids.data() + static_cast<int64_t>(b) * seq_len,
                                     encoded.ids.data() + (static_cast<int64_t>(b) + 1) * seq_len);
      if (document) {
        const json::Object input{{"text", json::Value(sentence)}, {"tokens", json::Value(loaded.vocabulary.decode(ids))}};
        document->add(trainer_cli::prediction_json(input, p, z, classes, options.top_k, class_names));
      } else {
        std::printf("%s\n", sentence.c_str());
        trainer_cli::print_top(trainer_cli::top_classes(p, classes, options.top_k), p, class_names);
      }
    }
  }
  if (document) document->finish();
  return 0;
}

}  // namespace text_trainer
