// The three commands of cct_text: train, eval, predict.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include <cct/cct.hpp>

#include "../common/metrics.hpp"
#include "../common/plots.hpp"
#include "../common/progress.hpp"
#include "text_data.hpp"
#include "text_loader.hpp"
#include "text_training_state.hpp"

namespace cct::text_trainer {

// Defaults: the best TREC recipe found on a 2-core CPU: text_cct_2_k4 with random 300-d word vectors,
// 32 words (TREC questions average 10; 6 of 5,452 are longer), words seen at least twice (the others
// train "<unk>", which the test set's unseen words then map to), dropout 0.2 and weight decay 0.3
// against over-fitting, 20 epochs: 88.0% TREC test accuracy, about 1 minute of compute per 10 epochs
// on 2 free cores. AG News sentences average 45 words: use --seq-len 64 there.
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
  int64_t epochs = 20;
  int64_t batch_size = 64;
  double lr = 1e-3;
  double min_lr = 1e-5;
  double weight_decay = 0.3;
  int64_t warmup_epochs = 2;
  double label_smoothing = 0.1;
  double clip_grad = 0.0;
  int threads = 0;
  uint64_t seed = 0;
  double val_split = 0.1;
  std::string out = "runs/text_trec";
  bool resume = false;
  bool skip_nonfinite = false;

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
    o.set("epochs", json::Value(epochs));
    o.set("batch_size", json::Value(batch_size));
    o.set("lr", json::Value(lr));
    o.set("min_lr", json::Value(min_lr));
    o.set("weight_decay", json::Value(weight_decay));
    o.set("warmup_epochs", json::Value(warmup_epochs));
    o.set("label_smoothing", json::Value(label_smoothing));
    o.set("clip_grad", json::Value(clip_grad));
    o.set("threads", json::Value(static_cast<int64_t>(threads)));
    o.set("seed", json::Value(static_cast<int64_t>(seed)));
    o.set("val_split", json::Value(val_split));
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
    t.epochs = o.at("epochs").as_int();
    t.batch_size = o.at("batch_size").as_int();
    t.lr = o.at("lr").as_double();
    t.min_lr = o.at("min_lr").as_double();
    t.weight_decay = o.at("weight_decay").as_double();
    t.warmup_epochs = o.at("warmup_epochs").as_int();
    t.label_smoothing = o.at("label_smoothing").as_double();
    t.clip_grad = o.at("clip_grad").as_double();
    t.threads = static_cast<int>(o.at("threads").as_int());
    t.seed = static_cast<uint64_t>(o.at("seed").as_int());
    t.val_split = o.at("val_split").as_double();
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

inline void make_directories(const std::string& path) {
  std::string partial;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      if (!partial.empty() && ::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
        throw IoError("cannot create output folder '" + partial + "': " + std::strerror(errno));
    }
    if (i < path.size()) partial += path[i];
  }
}

inline nn::PositionalEmbedding parse_positional_embedding(const std::string& name) {
  if (name == "sine") return nn::PositionalEmbedding::kSine;
  if (name == "learnable") return nn::PositionalEmbedding::kLearnable;
  if (name == "none") return nn::PositionalEmbedding::kNone;
  throw Error("unknown --positional-embedding '" + name + "'; use sine, learnable or none");
}

inline std::string thousands(int64_t value) {
  std::string digits = std::to_string(value), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

struct EvalResult {
  double loss = 0, accuracy = 0;  // accuracy in %
  int64_t count = 0;
  tools::ConfusionMatrix confusion{1};
};

// Loss and accuracy of `model` on `dataset` (eval mode, file order).
inline EvalResult evaluate(models::TextCompactTransformer<float>& model, const text::TextDataset& dataset,
                           const text::Vocabulary& vocabulary, int64_t batch_size, const char* label = "eval") {
  TextLoaderOptions options;
  options.batch_size = batch_size;
  options.seq_len = model.config().seq_len;
  options.shuffle = false;
  const TextLoader loader(dataset, vocabulary, options);
  EvalResult result;
  result.confusion = tools::ConfusionMatrix(model.config().num_classes);
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  tools::ProgressOptions progress;
  progress.unit = "seq";
  tools::ProgressBar bar(loader.num_batches(), label, stdout, progress);
  const std::vector<int64_t> order = loader.epoch_order(0);
  double loss_sum = 0;
  for (int64_t step = 0; step < loader.num_batches(); ++step) {
    const TextBatch batch = loader.batch(order, step);
    const Tensor<float> logits = model.forward(batch.ids, batch.mask);
    loss_sum += cross_entropy(logits, batch.labels).item() * static_cast<double>(batch.size());
    result.confusion.add_batch(logits, batch.labels);
    result.count += batch.size();
    bar.update(step + 1, {{"acc", 100.0 * result.confusion.accuracy()}}, result.count);
  }
  bar.finish({{"acc", 100.0 * result.confusion.accuracy()}});
  if (was_training) model.train();
  result.loss = loss_sum / static_cast<double>(std::max<int64_t>(1, result.count));
  result.accuracy = 100.0 * result.confusion.accuracy();
  return result;
}

inline void print_split(const char* what, const text::TextDataset& data, const std::string& source) {
  std::printf("  %-10s %6lld sentences  %s\n", what, static_cast<long long>(data.size()), source.c_str());
}

// ---- train -----------------------------------------------------------------------------------------

inline int run_train(TrainOptions options, volatile std::sig_atomic_t* interrupted) {
  // Resuming takes the run's own settings, so the continuation is the same run.
  const std::string config_path = options.out + "/config.json";
  const std::string last_path = options.out + "/last.safetensors", best_path = options.out + "/best.safetensors";
  if (options.resume) {
    if (!path_exists(last_path))
      throw IoError("--resume: no checkpoint '" + last_path + "' to resume from (start without --resume)");
    const std::string out = options.out;
    options = TrainOptions::from_json(json::parse(io::read_file(config_path)).as_object());
    options.out = out;
    options.resume = true;
    std::printf("resuming %s with its saved settings (%s)\n", last_path.c_str(), config_path.c_str());
  }
  if (options.threads > 0) set_num_threads(options.threads);
  manual_seed(options.seed);
  const nn::PositionalEmbedding positional = parse_positional_embedding(options.positional_embedding);

  // Fail before any training if the output folder cannot be written.
  make_directories(options.out);
  io::write_file_atomic(config_path, json::dump(json::Value(options.to_json()), 2) + "\n");

  const std::string data_dir = resolve_text_data_dir(options.data_dir);
  const auto started = std::chrono::steady_clock::now();
  const TextSplits splits = read_text_data(options.dataset, data_dir, options.val_split, options.seed);
  const text::TextDataset &train_set = splits.train, &val_set = splits.val, &test_set = splits.test;
  std::printf("data: %s, %lld classes (", options.dataset.c_str(), static_cast<long long>(train_set.num_classes()));
  for (size_t c = 0; c < train_set.class_names.size(); ++c)
    std::printf("%s%s", c ? ", " : "", train_set.class_names[c].c_str());
  std::printf(")\n");
  print_split("train", train_set, splits.train_source);
  if (val_set.size() > 0) print_split("validation", val_set, splits.val_source);
  print_split("test", test_set, splits.test_source);

  // The vocabulary comes from the training text only (a resumed run reads the one it saved).
  text::Vocabulary vocabulary;
  if (options.resume) {
    vocabulary = text::Vocabulary::from_metadata(io::SafeTensorsReader(last_path).metadata(), last_path);
  } else {
    text::VocabularyOptions vocabulary_options;
    vocabulary_options.min_freq = options.min_freq;
    vocabulary_options.max_size = options.max_vocab;
    vocabulary = text::Vocabulary::build(train_set.texts, vocabulary_options);
  }
  {
    // How much of the text the model will see: unknown words and truncation at seq_len.
    int64_t words = 0, unknown = 0, truncated = 0;
    const text::Tokenizer& tokenizer = vocabulary.tokenizer();
    for (const auto& texts : {&train_set.texts, &test_set.texts})
      for (const auto& sentence : *texts) {
        const auto tokens = tokenizer.tokenize(sentence);
        words += static_cast<int64_t>(tokens.size());
        truncated += static_cast<int64_t>(tokens.size()) > options.seq_len;
        if (texts == &test_set.texts)
          for (const auto& token : tokens) unknown += !vocabulary.contains(token);
      }
    std::printf("vocabulary: %s tokens (min-freq %lld%s); %.1f words per sentence, %lld of %lld sentences longer "
                "than --seq-len %lld; %.1f%% of test words unknown\n",
                thousands(vocabulary.size()).c_str(), static_cast<long long>(options.min_freq),
                options.max_vocab ? (", max " + std::to_string(options.max_vocab)).c_str() : "",
                static_cast<double>(words) / static_cast<double>(train_set.size() + test_set.size()),
                static_cast<long long>(truncated), static_cast<long long>(train_set.size() + test_set.size()),
                static_cast<long long>(options.seq_len), [&] {
                  int64_t test_words = 0;
                  for (const auto& sentence : test_set.texts) test_words += static_cast<int64_t>(tokenizer.tokenize(sentence).size());
                  return test_words ? 100.0 * static_cast<double>(unknown) / static_cast<double>(test_words) : 0.0;
                }());
  }

  std::shared_ptr<models::TextCompactTransformer<float>> model;
  if (options.resume) {
    model = models::create_text<float>(models::read_text_model_config(last_path));
  } else {
    models::TextModelOptions model_options;
    model_options.vocab_size = vocabulary.size();
    model_options.num_classes = train_set.num_classes();
    model_options.word_embedding_dim = options.embedding_dim;
    model_options.seq_len = options.seq_len;
    model_options.positional_embedding = positional;
    model_options.freeze_embedding = options.freeze_embeddings;
    model_options.dropout = options.dropout;
    model_options.attention_dropout = options.attention_dropout;
    model_options.stochastic_depth = options.stochastic_depth;
    model_options.seed = options.seed;
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
                  options.glove.c_str(), thousands(vectors.vectors_read()).c_str(), static_cast<long long>(vectors.dim()),
                  100.0 * covered.fraction(), static_cast<long long>(covered.found), static_cast<long long>(covered.total),
                  covered.missing.empty() ? "" : "; most frequent missing:", examples.c_str());
      model_options.word_embedding_dim = vectors.dim();
      Generator gen(data::detail::derive_seed(options.seed, 0, 0, /*purpose=*/11));
      pretrained = text::embedding_matrix<float>(vocabulary, vectors, gen);
    } else if (options.freeze_embeddings) {
      std::printf("note: --freeze-embeddings without --glove keeps the random word vectors fixed\n");
    }
    model = models::create_text<float>(options.model, model_options, pretrained);
  }
  std::printf("model: %s, %s parameters (%s trainable, %s in tokenizer + transformer), word vectors %lld-d%s, "
              "%lld words -> %lld tokens\n",
              options.model.c_str(), thousands(model->num_parameters()).c_str(),
              thousands(model->num_parameters(/*trainable_only=*/true)).c_str(),
              thousands(model->num_transformer_parameters()).c_str(),
              static_cast<long long>(model->config().word_embedding_dim),
              model->config().freeze_embedding ? " (frozen)" : "", static_cast<long long>(model->config().seq_len),
              static_cast<long long>(model->sequence_length()));

  TextLoaderOptions loader_options;
  loader_options.batch_size = options.batch_size;
  loader_options.seq_len = model->config().seq_len;
  loader_options.shuffle = true;
  loader_options.seed = options.seed;
  const TextLoader loader(train_set, vocabulary, loader_options);
  const int64_t steps_per_epoch = loader.num_batches();

  optim::AdamW<float> optimizer(optim::param_groups_no_decay_for_1d(model->named_parameters(), options.weight_decay),
                                {options.lr});
  int64_t warmup_epochs = options.warmup_epochs;
  if (warmup_epochs >= options.epochs) {
    warmup_epochs = options.epochs / 2;
    std::printf("note: %lld warm-up epochs do not fit a %lld-epoch schedule; warming up for %lld\n",
                static_cast<long long>(options.warmup_epochs), static_cast<long long>(options.epochs),
                static_cast<long long>(warmup_epochs));
  }
  optim::CosineSchedule schedule{options.lr, 1e-6, options.min_lr, warmup_epochs, options.epochs, 0};
  schedule = schedule.per_iteration(steps_per_epoch);

  const TextDataInfo data_info{options.dataset, train_set.class_names};
  // The run's settings without its output folder, so a run copied or resumed elsewhere checkpoints the same bytes.
  const json::Object saved_args = options.to_json();  // named: a temporary would die before the loop body
  json::Object args_without_out;
  for (const auto& [key, value] : saved_args.members())
    if (key != "out") args_without_out.set(key, value);
  const std::string args_json = json::dump(json::Value(args_without_out));
  const std::string metrics_path = options.out + "/metrics.jsonl";
  TrainingPosition position;
  if (options.resume) {
    position = load_text_training_checkpoint(last_path, *model, optimizer);
    tools::truncate_after_epoch(metrics_path, position.epoch);
    std::printf("resumed at epoch %lld, batch %lld (step %lld)\n", static_cast<long long>(position.epoch + 1),
                static_cast<long long>(position.batch), static_cast<long long>(position.global_step));
  } else {
    std::remove(metrics_path.c_str());
  }
  tools::MetricsLog metrics(metrics_path);
  auto save_last = [&] {
    save_text_training_checkpoint(last_path, *model, vocabulary, optimizer, position, data_info, args_json);
  };

  std::printf("training for %lld epochs of %lld steps (batch %lld, AdamW lr %g, wd %g, label smoothing %g, %d threads)\n",
              static_cast<long long>(options.epochs), static_cast<long long>(steps_per_epoch),
              static_cast<long long>(options.batch_size), options.lr, options.weight_decay, options.label_smoothing,
              num_threads());
  tools::ProgressOptions progress;
  progress.unit = "seq";
  int64_t skipped_steps = 0;
  for (int64_t epoch = position.epoch; epoch < options.epochs; ++epoch) {
    model->train();
    const std::vector<int64_t> order = loader.epoch_order(epoch);
    const auto epoch_start = std::chrono::steady_clock::now();
    tools::ProgressBar bar(steps_per_epoch, "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs),
                           stdout, progress);
    if (position.batch > 0) bar.start_at(position.batch);
    int64_t seen = 0;
    double loss_sum = position.epoch_loss_sum;
    int64_t correct = position.epoch_correct, counted = position.epoch_seen;
    for (int64_t step_in_epoch = position.batch; step_in_epoch < steps_per_epoch; ++step_in_epoch) {
      if (*interrupted) {
        position.epoch = epoch;
        position.batch = step_in_epoch;
        position.epoch_loss_sum = loss_sum;
        position.epoch_correct = correct;
        position.epoch_seen = counted;
        save_last();
        std::printf("\ninterrupted: saved %s at epoch %lld, batch %lld; continue with --resume --out %s\n",
                    last_path.c_str(), static_cast<long long>(epoch + 1), static_cast<long long>(step_in_epoch),
                    options.out.c_str());
        return 130;
      }
      const TextBatch batch = loader.batch(order, step_in_epoch);
      optimizer.set_lr(schedule.lr_at(position.global_step));
      Tensor<float> logits = model->forward(batch.ids, batch.mask);
      Tensor<float> loss = cross_entropy(logits, batch.labels, options.label_smoothing);
      const float loss_value = loss.item();
      std::optional<std::string> bad_gradient;
      if (std::isfinite(loss_value)) {
        optimizer.zero_grad();
        loss.backward();
        bad_gradient = optim::grads_finite(model->named_parameters());
      }
      if (!std::isfinite(loss_value) || bad_gradient) {
        const std::string what = !std::isfinite(loss_value)
                                     ? "the loss is " + std::to_string(loss_value)
                                     : "the gradient of '" + *bad_gradient + "' is not finite";
        if (options.skip_nonfinite && ++skipped_steps <= 100) {
          std::fprintf(stderr, "\nwarning: %s at epoch %lld, step %lld; skipping this step\n", what.c_str(),
                       static_cast<long long>(epoch + 1), static_cast<long long>(position.global_step));
          continue;
        }
        throw Error(cct::detail::concat(what, " at epoch ", epoch + 1, ", step ", position.global_step,
                                        "; training stopped. The last good checkpoint is ", last_path,
                                        ". Try a lower --lr, --clip-grad 1, or --skip-nonfinite"));
      }
      if (options.clip_grad > 0) optim::clip_grad_norm_(model->named_parameters(), options.clip_grad);
      optimizer.step();
      ++position.global_step;

      loss_sum += static_cast<double>(loss_value) * static_cast<double>(batch.size());
      for (int64_t i = 0; i < batch.size(); ++i) {
        const float* row = logits.data() + i * logits.size(1);
        correct += (std::max_element(row, row + logits.size(1)) - row) == batch.labels.data()[i];
      }
      counted += batch.size();
      seen += batch.size();
      bar.update(step_in_epoch + 1,
                 {{"loss", loss_sum / static_cast<double>(counted)},
                  {"acc", 100.0 * static_cast<double>(correct) / static_cast<double>(counted)},
                  {"lr", optimizer.lr()}},
                 seen);
    }
    const double train_loss = loss_sum / static_cast<double>(std::max<int64_t>(1, counted));
    const double train_acc = 100.0 * static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(1, counted));
    bar.finish({{"loss", train_loss}, {"acc", train_acc}});
    const double epoch_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();

    json::Object line;
    line.set("epoch", json::Value(epoch + 1));
    line.set("lr", json::Value(optimizer.lr()));
    line.set("train_loss", json::Value(train_loss));
    line.set("train_acc", json::Value(train_acc));
    double selection = train_acc;
    if (val_set.size() > 0) {
      const EvalResult val = evaluate(*model, val_set, vocabulary, 256, "  validation");
      line.set("val_loss", json::Value(val.loss));
      line.set("val_acc", json::Value(val.accuracy));
      selection = val.accuracy;
      std::printf("  validation: loss %.4f, accuracy %.2f%%\n", val.loss, val.accuracy);
    }
    // Time fields last: everything before them is reproducible bit for bit.
    line.set("epoch_seconds", json::Value(epoch_seconds));
    line.set("seq_per_s", json::Value(static_cast<double>(seen) / std::max(1e-9, epoch_seconds)));
    line.set("elapsed_minutes",
             json::Value(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() / 60.0));
    metrics.append(line);

    position.epoch = epoch + 1;
    position.batch = 0;
    position.epoch_loss_sum = 0;
    position.epoch_correct = position.epoch_seen = 0;
    const bool improved = selection > position.best_accuracy;
    if (improved) {
      position.best_accuracy = selection;
      position.best_epoch = epoch + 1;
    }
    save_last();
    if (improved) save_text_training_checkpoint(best_path, *model, vocabulary, optimizer, position, data_info, args_json);
    tools::write_curves_svg(options.out + "/curves.svg", tools::read_metrics(metrics_path),
                            options.model + " on " + options.dataset);
  }

  // Final numbers: the best checkpoint on the test set.
  if (path_exists(best_path)) models::load_weights(best_path, *model, true);
  const EvalResult test = evaluate(*model, test_set, vocabulary, 256, "test");
  tools::write_confusion_matrix_svg(options.out + "/confusion_matrix.svg", test.confusion, test_set.class_names,
                                    options.model + " on " + options.dataset + " (test)");
  const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() / 60.0;
  json::Object final_result;
  final_result.set("model", json::Value(options.model));
  final_result.set("dataset", json::Value(options.dataset));
  final_result.set("glove", json::Value(options.glove));
  final_result.set("epochs", json::Value(options.epochs));
  final_result.set("best_epoch", json::Value(position.best_epoch));
  final_result.set("best_val_acc", json::Value(position.best_accuracy));
  final_result.set("test_loss", json::Value(test.loss));
  final_result.set("test_acc", json::Value(test.accuracy));
  final_result.set("test_size", json::Value(test.count));
  final_result.set("vocabulary_size", json::Value(vocabulary.size()));
  final_result.set("minutes", json::Value(minutes));
  final_result.set("confusion_matrix", test.confusion.to_json());
  io::write_file_atomic(options.out + "/final.json", json::dump(json::Value(final_result), 2) + "\n");
  std::printf("\n%s", test.confusion.to_string(test_set.class_names).c_str());
  std::printf("test (best epoch %lld): accuracy %.2f%%, loss %.4f on %lld sentences; %.1f minutes; outputs in %s/\n",
              static_cast<long long>(position.best_epoch), test.accuracy, test.loss, static_cast<long long>(test.count),
              minutes, options.out.c_str());
  return 0;
}

// ---- eval ------------------------------------------------------------------------------------------

inline int run_eval(const EvalOptions& options) {
  if (options.threads > 0) set_num_threads(options.threads);
  const models::LoadedTextModel<float> loaded = models::load_text_model<float>(options.checkpoint);
  CCT_CHECK(loaded.has_vocabulary, "checkpoint '", options.checkpoint,
            "' holds no vocabulary, so its model cannot read text (it was not written by cct_text)");
  const io::SafeTensorsReader reader(options.checkpoint);
  const TextDataInfo info = read_text_data_info(reader);
  const json::Object args = read_training_args(reader);
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
  const EvalResult result = evaluate(model, data, loaded.vocabulary, options.batch_size);
  std::printf("%s", result.confusion.to_string(data.class_names).c_str());
  std::printf("%s on %lld %s sentences of %s: accuracy %.2f%%, loss %.4f\n", model.config().name.c_str(),
              static_cast<long long>(result.count), options.split.c_str(), dataset.c_str(), result.accuracy, result.loss);
  if (!options.out.empty()) {
    make_directories(options.out);
    tools::write_confusion_matrix_svg(options.out + "/confusion_matrix.svg", result.confusion, data.class_names,
                                      model.config().name + " on " + dataset + " (" + options.split + ")");
    json::Object out;
    out.set("checkpoint", json::Value(options.checkpoint));
    out.set("dataset", json::Value(dataset));
    out.set("split", json::Value(options.split));
    out.set("accuracy", json::Value(result.accuracy));
    out.set("loss", json::Value(result.loss));
    out.set("count", json::Value(result.count));
    out.set("confusion_matrix", result.confusion.to_json());
    io::write_file_atomic(options.out + "/eval.json", json::dump(json::Value(out), 2) + "\n");
  }
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
  std::vector<std::string> class_names = read_text_data_info(io::SafeTensorsReader(options.checkpoint)).class_names;
  if (static_cast<int64_t>(class_names.size()) != classes) {
    class_names.clear();
    for (int64_t c = 0; c < classes; ++c) class_names.push_back("class " + std::to_string(c));
  }

  std::vector<std::string> sentences = options.sentences;
  if (sentences.empty()) {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") != std::string::npos) sentences.push_back(line);
    }
    CCT_CHECK(!sentences.empty(), "predict: no sentences (give them as arguments or one per line on stdin)");
  }

  const int64_t k = std::clamp<int64_t>(options.top_k, 1, classes);
  json::Array results;
  constexpr int64_t kChunk = 256;
  for (int64_t begin = 0; begin < static_cast<int64_t>(sentences.size()); begin += kChunk) {
    std::vector<int64_t> rows;
    for (int64_t i = begin; i < std::min<int64_t>(begin + kChunk, static_cast<int64_t>(sentences.size())); ++i)
      rows.push_back(i);
    const text::EncodedBatch encoded = loaded.vocabulary.encode_batch(sentences, rows, seq_len);
    Tensor<float> logits;
    {
      NoGradGuard no_grad;
      logits = model.forward(encoded.ids, encoded.mask);
    }
    const Tensor<float> probabilities = softmax(logits, 1);
    for (size_t b = 0; b < rows.size(); ++b) {
      const std::string& sentence = sentences[static_cast<size_t>(rows[b])];
      const float* p = probabilities.data() + static_cast<int64_t>(b) * classes;
      const float* z = logits.data() + static_cast<int64_t>(b) * classes;
      std::vector<int64_t> order(static_cast<size_t>(classes));
      for (int64_t c = 0; c < classes; ++c) order[static_cast<size_t>(c)] = c;
      std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return p[x] > p[y]; });
      const std::vector<int64_t> ids(encoded.ids.data() + static_cast<int64_t>(b) * seq_len,
                                     encoded.ids.data() + (static_cast<int64_t>(b) + 1) * seq_len);
      if (options.json) {
        json::Object entry;
        entry.set("text", json::Value(sentence));
        entry.set("tokens", json::Value(loaded.vocabulary.decode(ids)));
        entry.set("prediction", json::Value(class_names[static_cast<size_t>(order[0])]));
        json::Array top, probs, raw;
        for (int64_t i = 0; i < k; ++i) {
          const int64_t c = order[static_cast<size_t>(i)];
          top.push_back(json::Value(json::Object{{"class", json::Value(class_names[static_cast<size_t>(c)])},
                                                 {"index", json::Value(c)},
                                                 {"probability", json::Value(static_cast<double>(p[c]))}}));
        }
        for (int64_t c = 0; c < classes; ++c) {
          probs.push_back(json::Value(static_cast<double>(p[c])));
          raw.push_back(json::Value(static_cast<double>(z[c])));
        }
        entry.set("top", json::Value(std::move(top)));
        entry.set("probabilities", json::Value(std::move(probs)));
        entry.set("logits", json::Value(std::move(raw)));
        results.push_back(json::Value(std::move(entry)));
      } else {
        std::printf("%s\n", sentence.c_str());
        for (int64_t i = 0; i < k; ++i)
          std::printf("  %6.2f%%  %s\n", 100.0 * p[order[static_cast<size_t>(i)]],
                      class_names[static_cast<size_t>(order[static_cast<size_t>(i)])].c_str());
      }
    }
  }
  if (options.json) {
    json::Array names;
    for (const auto& name : class_names) names.push_back(json::Value(name));
    const json::Object document{{"checkpoint", json::Value(options.checkpoint)},
                                {"class_names", json::Value(std::move(names))},
                                {"predictions", json::Value(std::move(results))}};
    std::printf("%s\n", json::dump(json::Value(document), 2).c_str());
  }
  return 0;
}

}  // namespace cct::text_trainer
