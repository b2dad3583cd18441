// The three commands of cct_trainer: train, eval, predict. Training runs through cct::train::fit; this
// file holds what is particular to images: reading the data, augmentation, and the image checkpoint.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <cct/cct.hpp>
#include <cct/data/image_io.hpp>
#include <cct/data/loader.hpp>
#include <cct/models/summary.hpp>
#include <cct/train/fit.hpp>

#include "../common/cli.hpp"
#include "../common/outputs.hpp"
#include "attention_overlay.hpp"
#include "data_info.hpp"
#include "data_source.hpp"
#include "model_source.hpp"

namespace image_trainer {
using namespace cct;

// Defaults: a recipe that trains cct_2_3x2_32 well on a 2-core CPU in about an hour.
struct TrainOptions {
  std::string model = "cct_2_3x2_32";
  std::string data;
  std::string format = "auto";
  int64_t image_size = 32;
  // The defaults are the short-budget recipe of docs/time_to_accuracy.md (80% on CIFAR-10 in 15
  // minutes on 2 cores with --time-budget 15): warm-up then a straight line down, a high peak learning
  // rate, an average of the weights, flip-averaged evaluation, all training images, no regularisation
  // beyond crop + flip and label smoothing (a short run underfits).
  train::LoopOptions loop = [] {
    train::LoopOptions loop;
    loop.epochs = 16;
    loop.batch_size = 128;
    loop.lr = 2e-3;
    loop.weight_decay = 0.05;
    loop.warmup_epochs = 3;
    loop.val_split = 0.0;
    loop.schedule = "linear";
    loop.ema = 0.999;
    return loop;
  }();
  std::string augment = "basic";
  double mixup = 0.0;
  double cutmix = 0.0;
  int64_t mix_off_epoch = 0;
  double random_erasing = 0.0;
  // The reference models use attention dropout and stochastic depth 0.1 (300-epoch runs); short runs
  // underfit and train faster without them.
  double dropout = 0.0;
  double attention_dropout = 0.0;
  double stochastic_depth = 0.0;
  int64_t limit_train = 0;
  int64_t limit_test = 0;
  bool tta_flip = true;  // validate and test on the average of each image's and its mirror image's logits
  std::string out = "runs/cct_2_3x2_32";
  bool resume = false;

  // The image options' ranges (the loop's are LoopOptions::validate's).
  void validate() const {
    (void)models::registered_config(model);  // an unknown --model fails before any folder is made
    train::check::whole("--image-size", image_size, 1, 1024);
    train::check::at_least("--mixup", mixup, 0);
    train::check::at_least("--cutmix", cutmix, 0);
    train::check::whole("--mix-off-epoch", mix_off_epoch, 0, 1000000);
    train::check::in_range("--random-erasing", random_erasing, 0, 1);
    train::check::below("--dropout", dropout, 0, 1);
    train::check::below("--attention-dropout", attention_dropout, 0, 1);
    train::check::below("--stochastic-depth", stochastic_depth, 0, 1);
    train::check::whole("--limit-train", limit_train, 0, int64_t{1} << 40);
    train::check::whole("--limit-test", limit_test, 0, int64_t{1} << 40);
  }

  json::Object to_json() const {
    json::Object o;
    o.set("model", json::Value(model));
    o.set("data", json::Value(data));
    o.set("format", json::Value(format));
    o.set("image_size", json::Value(image_size));
    loop.to_json(o);
    o.set("augment", json::Value(augment));
    o.set("mixup", json::Value(mixup));
    o.set("cutmix", json::Value(cutmix));
    o.set("mix_off_epoch", json::Value(mix_off_epoch));
    o.set("random_erasing", json::Value(random_erasing));
    o.set("dropout", json::Value(dropout));
    o.set("attention_dropout", json::Value(attention_dropout));
    o.set("stochastic_depth", json::Value(stochastic_depth));
    o.set("limit_train", json::Value(limit_train));
    o.set("limit_test", json::Value(limit_test));
    o.set("tta_flip", json::Value(tta_flip));
    o.set("out", json::Value(out));
    return o;
  }
  static TrainOptions from_json(const json::Object& o) {
    TrainOptions t;
    t.model = o.at("model").as_string();
    t.data = o.at("data").as_string();
    t.format = o.at("format").as_string();
    t.image_size = o.at("image_size").as_int();
    t.loop.from_json(o);
    t.augment = o.at("augment").as_string();
    t.mixup = o.at("mixup").as_double();
    t.cutmix = o.at("cutmix").as_double();
    t.mix_off_epoch = o.at("mix_off_epoch").as_int();
    t.random_erasing = o.at("random_erasing").as_double();
    // Runs saved before these options existed used the reference values (and no flip averaging).
    t.attention_dropout = t.stochastic_depth = 0.1;
    if (const json::Value* v = o.find("dropout")) t.dropout = v->as_double();
    if (const json::Value* v = o.find("attention_dropout")) t.attention_dropout = v->as_double();
    if (const json::Value* v = o.find("stochastic_depth")) t.stochastic_depth = v->as_double();
    t.limit_train = o.at("limit_train").as_int();
    t.limit_test = o.at("limit_test").as_int();
    const json::Value* flip = o.find("tta_flip");
    t.tta_flip = flip && flip->as_bool();
    t.out = o.at("out").as_string();
    return t;
  }
};

struct EvalOptions {
  ModelSource source;
  std::string data, format = "auto", split = "test", out;
  int64_t batch_size = 256;
  int threads = 0;
  bool tta_flip = false;
};

struct PredictOptions {
  ModelSource source;
  std::string attention_png;
  std::vector<std::string> images;
  int64_t top_k = 5;
  bool json = false;
  int threads = 0;
};

// ---- shared pieces ---------------------------------------------------------------------------------

inline std::string resolve_data_dir(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("CCT_DATA_DIR")) return env;
  throw Error("no data: pass --data DIR or set CCT_DATA_DIR (a CIFAR-10 binary folder, an IDX folder, or a "
              "folder with train/ and test/ image folders; scripts/train_cifar10.sh prepares CIFAR-10)");
}

// A seeded random subset of `limit` images (all classes represented), or the whole set for limit 0.
inline data::ImageDataset limit_images(const data::ImageDataset& dataset, int64_t limit, uint64_t seed) {
  if (limit <= 0 || limit >= dataset.size()) return dataset;
  Generator gen(seed);
  std::vector<int64_t> indices = data::random_permutation(dataset.size(), gen);
  indices.resize(static_cast<size_t>(limit));
  std::sort(indices.begin(), indices.end());
  return dataset.subset(indices);
}

// The model's logits for `images` (B, C, H, W), or with `flip` the mean of the logits of the images and
// of their mirror images (test-time augmentation: the training crops were flipped half of the time).
inline Tensor<float> image_logits(models::CompactTransformer<float>& model, const Tensor<float>& images, bool flip) {
  Tensor<float> logits = model.forward(images);
  if (!flip) return logits;
  Tensor<float> mirrored = Tensor<float>::empty(images.shape());
  const int64_t W = images.size(3), rows = images.numel() / W;
  const float* in = images.data();
  float* out = mirrored.data();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t x = 0; x < W; ++x) out[r * W + x] = in[r * W + (W - 1 - x)];
  const Tensor<float> mirrored_logits = model.forward(mirrored);
  for (int64_t i = 0; i < logits.numel(); ++i) logits.data()[i] = 0.5f * (logits.data()[i] + mirrored_logits.data()[i]);
  return logits;
}

// Evaluates `model` on `dataset` in file order (no augmentation) with the shared evaluation loop.
inline train::Evaluation evaluate_images(models::CompactTransformer<float>& model, const data::ImageDataset& dataset,
                                         const data::Normalize& normalize, int64_t batch_size, const std::string& label,
                                         bool flip) {
  data::LoaderOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  options.normalize = normalize;
  data::DataLoader loader(dataset, options);
  loader.start_epoch(0);
  data::Batch batch;
  return train::evaluate(
      model, loader.num_batches(), dataset.num_classes(),
      [&](int64_t, Tensor<int64_t>& labels) {
        loader.next(batch);
        labels = batch.labels;
        return image_logits(model, batch.images, flip);
      },
      label, "img");
}

inline data::Compose make_augmentation(const std::string& kind, const data::ImageDataset& dataset) {
  data::Compose transform;
  if (kind == "none") return transform;
  const int64_t h = dataset.height(), w = dataset.width();
  if (kind == "autoaugment") transform.add(data::AutoAugment{});
  if (kind == "randaugment") transform.add(data::RandAugment{});
  transform.add(data::RandomCrop{h, w, std::max<int64_t>(1, h / 8)});
  transform.add(data::RandomHorizontalFlip{});
  return transform;
}

// ---- train -----------------------------------------------------------------------------------------

// Images for cct::train::fit: a background DataLoader with augmentation (and Mixup/CutMix) for
// training, plain loaders for validation and test, and checkpoints that record the normalisation.
class ImageTask : public train::Task {
 public:
  ImageTask(const TrainOptions& options, std::shared_ptr<models::CompactTransformer<float>> model,
            data::ImageDataset train_set, data::ImageDataset val_set, data::ImageDataset test_set,
            const data::Normalize& normalize, data::LoaderOptions loader_options)
      : options_(options),
        model_(std::move(model)),
        train_set_(std::move(train_set)),
        val_set_(std::move(val_set)),
        test_set_(std::move(test_set)),
        normalize_(normalize),
        loader_(train_set_, loader_options),
        data_info_{train_set_.class_names(), normalize.mean, normalize.stddev} {}

  data::DataLoader& loader() { return loader_; }

  nn::Module<float>& model() override { return *model_; }
  std::string model_name() const override { return options_.model; }
  const std::vector<std::string>& class_names() const override { return train_set_.class_names(); }
  std::string recipe() const override {
    return options_.augment + " augmentation" + (options_.tta_flip ? ", flip-averaged evaluation" : "");
  }

  int64_t steps_per_epoch() const override { return loader_.num_batches(); }
  void start_epoch(int64_t epoch, int64_t first_step) override {
    if (options_.mix_off_epoch > 0 && epoch >= options_.mix_off_epoch) loader_.set_mixup(std::nullopt);
    loader_.start_epoch(epoch);
    for (int64_t skip = 0; skip < first_step; ++skip) loader_.next(batch_);  // resume mid-epoch
  }
  bool next_batch() override { return loader_.next(batch_); }
  train::TrainStep forward(double label_smoothing) override {
    train::TrainStep step;
    step.logits = model_->forward(batch_.images);
    step.loss = batch_.soft_targets.defined() ? cross_entropy(step.logits, batch_.soft_targets)
                                              : cross_entropy(step.logits, batch_.labels, label_smoothing);
    step.labels = batch_.labels;
    return step;
  }

  int64_t eval_batches(train::Split split) override {
    const data::ImageDataset& dataset = split == train::Split::kTest ? test_set_ : val_set_;
    if (dataset.empty()) return 0;
    data::LoaderOptions options;
    options.batch_size = 256;
    options.shuffle = false;
    options.normalize = normalize_;
    options.shard = trainer_cli::data_shard(/*pad=*/false);  // under mpirun, this rank's share
    eval_loader_ = std::make_unique<data::DataLoader>(dataset, options);
    eval_loader_->start_epoch(0);
    return eval_loader_->num_batches();
  }
  Tensor<float> eval_logits(train::Split, int64_t, Tensor<int64_t>& labels) override {
    eval_loader_->next(eval_batch_);
    labels = eval_batch_.labels;
    return image_logits(*model_, eval_batch_.images, options_.tta_flip);
  }

  void save_checkpoint(const std::string& path, io::Metadata metadata,
                       const optim::NamedTensors<float>& extra_tensors) override {
    write_normalisation(metadata, data_info_);
    models::save_model(path, *model_, metadata, extra_tensors);
  }
  void load_weights(const std::string& path) override { models::load_weights(path, *model_, /*strict=*/true); }

 private:
  TrainOptions options_;
  std::shared_ptr<models::CompactTransformer<float>> model_;
  data::ImageDataset train_set_, val_set_, test_set_;
  data::Normalize normalize_;
  data::DataLoader loader_;
  std::unique_ptr<data::DataLoader> eval_loader_;
  data::Batch batch_, eval_batch_;
  DataInfo data_info_;
};

// What the model sees: the first augmented batch, as a picture.
inline void write_augmented_samples(const std::string& path, data::DataLoader& loader, const data::ImageDataset& train_set,
                                    const data::Normalize& normalize) {
  const data::Batch sample = loader.make_batch(0, 0);
  std::vector<data::Image> shown;
  std::vector<std::string> captions;
  const int64_t C = train_set.channels(), H = train_set.height(), W = train_set.width();
  for (int64_t i = 0; i < std::min<int64_t>(32, sample.size()); ++i) {
    shown.push_back(normalize.denormalize(sample.images.data() + i * C * H * W, C, H, W));
    captions.push_back(train_set.class_names()[static_cast<size_t>(sample.labels(i))]);
  }
  data::GridOptions grid;
  grid.upscale = H < 64 ? 3 : 1;
  data::write_image_grid(path, shown, captions, grid);
}

// A budget of this many minutes or more trains long enough (about 70 epochs of cct_2_3x2_32 here at 60
// minutes) for augmentation and the reference's regularisation to pay; a short one (16 epochs at 15
// minutes) underfits with them. docs/time_to_accuracy.md has the runs; budgets between 15 and 60 minutes
// were not measured, so the line is drawn between the two.
constexpr double kLongRecipeMinutes = 45;

// With a long --time-budget, the long recipe's settings for each of its flags the user did not give:
// AutoAugment, attention dropout 0.1, stochastic depth 0.1. Said in one line, saved in config.json.
inline void choose_recipe_for_budget(TrainOptions& options, const CLI::App& command) {
  if (options.resume || options.loop.time_budget < kLongRecipeMinutes) return;
  const auto given = [&](const char* flag) { return command.get_option(flag)->count() > 0; };
  std::string chosen;
  const auto choose = [&](const char* flag, const std::string& value) {
    chosen += (chosen.empty() ? "" : " ") + std::string(flag) + " " + value;
  };
  if (!given("--augment")) {
    options.augment = "autoaugment";
    choose("--augment", "autoaugment");
  }
  if (!given("--attention-dropout")) {
    options.attention_dropout = 0.1;
    choose("--attention-dropout", "0.1");
  }
  if (!given("--stochastic-depth")) {
    options.stochastic_depth = 0.1;
    choose("--stochastic-depth", "0.1");
  }
  if (!chosen.empty())
    std::printf("recipe: a %g-minute budget (>= %g) trains long enough for augmentation and regularisation: %s "
                "(give these flags to choose otherwise)\n",
                options.loop.time_budget, kLongRecipeMinutes, chosen.c_str());
}

inline int run_train(TrainOptions options, const CLI::App& command) {
  const auto started = std::chrono::steady_clock::now();
  choose_recipe_for_budget(options, command);
  const train::RunFolder run = trainer_cli::start_run(options, command);
  const train::LoopOptions& loop = options.loop;

  const std::string data_dir = resolve_data_dir(options.data);
  DataSplits splits = read_data(data_dir, parse_format(options.format), options.image_size);
  data::ImageDataset train_set = limit_images(splits.train, options.limit_train, loop.seed);
  data::ImageDataset test_set = limit_images(splits.test, options.limit_test, loop.seed + 1);
  data::ImageDataset val_set;
  if (loop.val_split > 0) std::tie(train_set, val_set) = train_set.split(loop.val_split, loop.seed);
  std::printf("data: %s from %s: %lld train, %lld validation, %lld test images, %lld classes, %lldx%lldx%lld (%.1f s)\n",
              format_name(splits.format), data_dir.c_str(), static_cast<long long>(train_set.size()),
              static_cast<long long>(val_set.size()), static_cast<long long>(test_set.size()),
              static_cast<long long>(train_set.num_classes()), static_cast<long long>(train_set.channels()),
              static_cast<long long>(train_set.height()), static_cast<long long>(train_set.width()),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());

  CCT_CHECK(train_set.height() == train_set.width(), "the models take square images; got ", train_set.height(), "x",
            train_set.width(), " (use --image-size with an image folder)");
  models::ModelOptions model_options;
  model_options.num_classes = train_set.num_classes();
  model_options.in_channels = train_set.channels();
  model_options.image_size = train_set.height();
  model_options.seed = loop.seed;
  model_options.dropout = options.dropout;
  model_options.attention_dropout = options.attention_dropout;
  model_options.stochastic_depth = options.stochastic_depth;
  auto model = models::create(options.model, model_options);
  const models::ModelStats stats = models::model_stats(*model);
  std::printf("model: %s, %s parameters (%s trainable), %.3f GMACs per image (%.3f G with attention); "
              "`model_summary %s` prints the layers\n",
              options.model.c_str(), train::format_thousands(stats.params).c_str(),
              train::format_thousands(stats.trainable_params).c_str(), stats.macs / 1e9,
              (stats.macs + stats.attention_macs) / 1e9, options.model.c_str());

  data::LoaderOptions loader_options;
  loader_options.batch_size = loop.batch_size;
  loader_options.shuffle = true;
  loader_options.drop_last = true;
  loader_options.seed = loop.seed;
  loader_options.normalize = splits.normalize;
  loader_options.shard = trainer_cli::data_shard(/*pad=*/true);  // under mpirun, this rank's share
  loader_options.transform = make_augmentation(options.augment, train_set);
  if (options.random_erasing > 0) {
    data::RandomErasing erasing;
    erasing.p = options.random_erasing;
    loader_options.float_transforms.push_back(erasing);
  }
  if (options.mixup > 0 || options.cutmix > 0) {
    data::MixupOptions mix;
    mix.mixup_alpha = options.mixup;
    mix.cutmix_alpha = options.cutmix;
    mix.label_smoothing = loop.label_smoothing;
    loader_options.mixup = mix;
  }
  ImageTask task(options, model, train_set, val_set, test_set, splits.normalize, loader_options);
  CCT_CHECK(task.steps_per_epoch() > 0, "the training set (", train_set.size(), " images) is smaller than one batch of ",
            loop.batch_size);
  if (trainer_cli::world().is_root())
    write_augmented_samples(run.file("augmented_samples.png"), task.loader(), train_set, splits.normalize);
  return train::fit(task, loop, run, options.to_json(), options.resume, &trainer_cli::interrupted, started,
                    trainer_cli::world());
}

// ---- eval ------------------------------------------------------------------------------------------

inline int run_eval(const EvalOptions& options) {
  if (options.threads > 0) set_num_threads(options.threads);
  const LoadedImageModel loaded = load_image_model(options.source);
  models::CompactTransformer<float>& model = *loaded.model;
  const models::ModelConfig& config = model.config();
  const Preprocessing& preprocessing = loaded.preprocessing;
  const std::string data_dir = resolve_data_dir(options.data);
  DataSplits splits = read_data(data_dir, parse_format(options.format), preprocessing.resize_to);
  data::ImageDataset& dataset = options.split == "test" ? splits.test : splits.train;
  const std::string& checkpoint = options.source.checkpoint;
  CCT_CHECK(dataset.num_classes() == config.num_classes, "checkpoint '", checkpoint, "' has ", config.num_classes,
            " classes but the data in '", data_dir, "' has ", dataset.num_classes());
  CCT_CHECK(dataset.channels() == config.in_channels && dataset.height() == preprocessing.resize_to &&
                dataset.width() == preprocessing.resize_to,
            "checkpoint '", checkpoint, "' takes ", config.in_channels, "x", config.image_size, "x", config.image_size,
            " images", preprocessing.resize_to != config.image_size ? " (cropped from " + std::to_string(preprocessing.resize_to) + ")" : "",
            " but the data has ", dataset.channels(), "x", dataset.height(), "x", dataset.width());
  std::printf("preprocessing: %s\n", preprocessing.description.c_str());
  data::LoaderOptions loader_options;
  loader_options.batch_size = options.batch_size;
  loader_options.shuffle = false;
  loader_options.normalize = preprocessing.normalize;
  if (preprocessing.resize_to != preprocessing.size)
    loader_options.transform.add(data::CenterCrop{preprocessing.size, preprocessing.size});
  data::DataLoader loader(dataset, loader_options);
  loader.start_epoch(0);
  data::Batch batch;
  const train::Evaluation result = train::evaluate(
      model, loader.num_batches(), config.num_classes,
      [&](int64_t, Tensor<int64_t>& labels) {
        loader.next(batch);
        labels = batch.labels;
        return image_logits(model, batch.images, options.tta_flip);
      },
      options.tta_flip ? "eval (flip-averaged)" : "eval", "img");
  std::printf("%s", result.confusion.to_string(loaded.class_names).c_str());
  std::printf("%s on %lld %s images: top-1 %.2f%%, top-5 %.2f%%, loss %.4f\n", config.name.c_str(),
              static_cast<long long>(result.count), options.split.c_str(), result.top1, result.top5, result.loss);
  if (!options.out.empty())
    trainer_cli::write_evaluation(options.out, result, loaded.class_names, config.name + " (" + options.split + ")",
                                  json::Object{{"checkpoint", json::Value(checkpoint)},
                                               {"split", json::Value(options.split)},
                                               {"tta_flip", json::Value(options.tta_flip)}});
  return 0;
}

// ---- predict ---------------------------------------------------------------------------------------

inline int run_predict(const PredictOptions& options) {
  if (options.threads > 0) set_num_threads(options.threads);
  const LoadedImageModel loaded = load_image_model(options.source);
  models::CompactTransformer<float>& model = *loaded.model;
  const models::ModelConfig& config = model.config();
  const std::vector<std::string>& class_names = loaded.class_names;
  if (!options.json) std::printf("preprocessing: %s\n", loaded.preprocessing.description.c_str());

  // A chunk of images at a time: memory stays bounded however many (and however large) the images are.
  // For --attention only a 128x128 copy of each image is kept (the size the overlay draws it at).
  const int64_t B = static_cast<int64_t>(options.images.size()), C = config.in_channels, S = config.image_size;
  const int64_t chunk = 64, classes = config.num_classes;
  std::vector<data::Image> originals;
  std::vector<float> pool_weights, all_probabilities;
  int64_t tokens = 0;
  std::optional<trainer_cli::PredictionsWriter> document;
  if (options.json) document.emplace(options.source.checkpoint, class_names);
  for (int64_t first = 0; first < B; first += chunk) {
    const int64_t count = std::min(chunk, B - first);
    Tensor<float> batch = Tensor<float>::empty({count, C, S, S});
    for (int64_t b = 0; b < count; ++b) {
      const data::Image image = data::read_image(options.images[static_cast<size_t>(first + b)], static_cast<int>(C));
      preprocess(image, loaded.preprocessing, batch.data() + b * C * S * S);
      if (!options.attention_png.empty()) originals.push_back(data::resize_bilinear(image, 128, 128));
    }
    nn::ClassifierTrace trace;
    Tensor<float> logits;
    {
      NoGradGuard no_grad;
      logits = model.forward(batch, &trace);
    }
    const Tensor<float> probabilities = softmax(logits, 1);
    for (int64_t b = 0; b < count; ++b) {
      const float* p = probabilities.data() + b * classes;
      const std::string& path = options.images[static_cast<size_t>(first + b)];
      if (options.json) {
        document->add(trainer_cli::prediction_json(json::Object{{"image", json::Value(path)}}, p,
                                                   logits.data() + b * classes, classes, options.top_k, class_names));
      } else {
        std::printf("%s\n", path.c_str());
        trainer_cli::print_top(trainer_cli::top_classes(p, classes, options.top_k), p, class_names);
      }
    }
    if (!options.attention_png.empty()) {
      CCT_CHECK(trace.pool_weights.defined(), config.name,
                " has no SeqPool (ViT-Lite reads its class token), so there are no token weights to show");
      tokens = trace.pool_weights.size(1);
      pool_weights.insert(pool_weights.end(), trace.pool_weights.data(), trace.pool_weights.data() + trace.pool_weights.numel());
      all_probabilities.insert(all_probabilities.end(), probabilities.data(), probabilities.data() + probabilities.numel());
    }
  }
  if (document) document->finish();
  if (!options.attention_png.empty()) {
    write_attention_overlay(options.attention_png, originals, Tensor<float>::from_vector(pool_weights, {B, tokens}),
                            model.tokenizer->grid_size(S), class_names,
                            Tensor<float>::from_vector(all_probabilities, {B, classes}));
    if (!options.json) std::printf("attention overlay written to %s\n", options.attention_png.c_str());
  }
  return 0;
}

}  // namespace image_trainer
