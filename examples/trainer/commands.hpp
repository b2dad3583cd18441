// The three commands of cct_trainer: train, eval, predict.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <cct/cct.hpp>
#include <cct/data/image_io.hpp>
#include <cct/data/loader.hpp>
#include <cct/models/summary.hpp>

#include "../common/metrics.hpp"
#include "../common/plots.hpp"
#include "../common/progress.hpp"
#include "attention_overlay.hpp"
#include "data_source.hpp"
#include "training_state.hpp"

namespace cct::trainer {

// Defaults: a recipe that trains cct_2_3x2_32 well on a 2-core CPU in about an hour.
struct TrainOptions {
  std::string model = "cct_2_3x2_32";
  std::string data;
  std::string format = "auto";
  int64_t image_size = 32;
  int64_t epochs = 40;
  int64_t batch_size = 128;
  double lr = 1e-3;
  double min_lr = 1e-5;
  double weight_decay = 0.05;
  int64_t warmup_epochs = 3;
  int64_t cooldown_epochs = 0;
  double label_smoothing = 0.1;
  std::string augment = "basic";
  double mixup = 0.0;
  double cutmix = 0.0;
  int64_t mix_off_epoch = 0;
  double random_erasing = 0.0;
  double clip_grad = 0.0;
  int threads = 0;
  uint64_t seed = 0;
  double val_split = 0.05;
  int64_t limit_train = 0;
  int64_t limit_test = 0;
  std::string out = "runs/cct_2_3x2_32";
  bool resume = false;
  bool skip_nonfinite = false;

  json::Object to_json() const {
    json::Object o;
    o.set("model", json::Value(model));
    o.set("data", json::Value(data));
    o.set("format", json::Value(format));
    o.set("image_size", json::Value(image_size));
    o.set("epochs", json::Value(epochs));
    o.set("batch_size", json::Value(batch_size));
    o.set("lr", json::Value(lr));
    o.set("min_lr", json::Value(min_lr));
    o.set("weight_decay", json::Value(weight_decay));
    o.set("warmup_epochs", json::Value(warmup_epochs));
    o.set("cooldown_epochs", json::Value(cooldown_epochs));
    o.set("label_smoothing", json::Value(label_smoothing));
    o.set("augment", json::Value(augment));
    o.set("mixup", json::Value(mixup));
    o.set("cutmix", json::Value(cutmix));
    o.set("mix_off_epoch", json::Value(mix_off_epoch));
    o.set("random_erasing", json::Value(random_erasing));
    o.set("clip_grad", json::Value(clip_grad));
    o.set("threads", json::Value(static_cast<int64_t>(threads)));
    o.set("seed", json::Value(static_cast<int64_t>(seed)));
    o.set("val_split", json::Value(val_split));
    o.set("limit_train", json::Value(limit_train));
    o.set("limit_test", json::Value(limit_test));
    o.set("out", json::Value(out));
    return o;
  }
  static TrainOptions from_json(const json::Object& o) {
    TrainOptions t;
    t.model = o.at("model").as_string();
    t.data = o.at("data").as_string();
    t.format = o.at("format").as_string();
    t.image_size = o.at("image_size").as_int();
    t.epochs = o.at("epochs").as_int();
    t.batch_size = o.at("batch_size").as_int();
    t.lr = o.at("lr").as_double();
    t.min_lr = o.at("min_lr").as_double();
    t.weight_decay = o.at("weight_decay").as_double();
    t.warmup_epochs = o.at("warmup_epochs").as_int();
    t.cooldown_epochs = o.at("cooldown_epochs").as_int();
    t.label_smoothing = o.at("label_smoothing").as_double();
    t.augment = o.at("augment").as_string();
    t.mixup = o.at("mixup").as_double();
    t.cutmix = o.at("cutmix").as_double();
    t.mix_off_epoch = o.at("mix_off_epoch").as_int();
    t.random_erasing = o.at("random_erasing").as_double();
    t.clip_grad = o.at("clip_grad").as_double();
    t.threads = static_cast<int>(o.at("threads").as_int());
    t.seed = static_cast<uint64_t>(o.at("seed").as_int());
    t.val_split = o.at("val_split").as_double();
    t.limit_train = o.at("limit_train").as_int();
    t.limit_test = o.at("limit_test").as_int();
    t.out = o.at("out").as_string();
    return t;
  }
};

struct EvalOptions {
  std::string checkpoint, data, format = "auto", split = "test", out;
  int64_t batch_size = 256;
  int threads = 0;
};

struct PredictOptions {
  std::string checkpoint, attention_png;
  std::vector<std::string> images;
  int64_t top_k = 5;
  bool json = false;
  int threads = 0;
};

// ---- shared pieces ---------------------------------------------------------------------------------

// A metric for final.json / eval.json: JSON has no NaN or infinity, so a diverged model's loss is null.
inline json::Value finite_or_null(double value) { return std::isfinite(value) ? json::Value(value) : json::Value(); }

inline std::string resolve_data_dir(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("CCT_DATA_DIR")) return env;
  throw Error("no data: pass --data DIR or set CCT_DATA_DIR (a CIFAR-10 binary folder, an IDX folder, or a "
              "folder with train/ and test/ image folders; scripts/train_cifar10.sh prepares CIFAR-10)");
}

inline void make_directories(const std::string& path) {
  std::string partial;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      if (!partial.empty() && ::mkdir(partial.c_str(), 0755) != 0) {
        const int error = errno;
        struct stat info {};
        if (error != EEXIST)
          throw IoError("cannot create output folder '" + partial + "': " + std::strerror(error));
        if (::stat(partial.c_str(), &info) != 0 || !S_ISDIR(info.st_mode))
          throw IoError("cannot use output folder '" + path + "': '" + partial + "' exists and is not a folder");
      }
    }
    if (i < path.size()) partial += path[i];
  }
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

struct EvalResult {
  double loss = 0, top1 = 0, top5 = 0;
  int64_t count = 0;
  tools::ConfusionMatrix confusion{1};
};

// Loss, top-1 and top-5 of `model` on `dataset` (eval mode, no augmentation).
inline EvalResult evaluate(models::CompactTransformer<float>& model, const data::ImageDataset& dataset,
                           const data::Normalize& normalize, int64_t batch_size, const char* label = "eval") {
  data::LoaderOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  options.normalize = normalize;
  data::DataLoader loader(dataset, options);
  EvalResult result;
  result.confusion = tools::ConfusionMatrix(dataset.num_classes());
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  tools::ProgressBar bar(loader.num_batches(), label);
  loader.start_epoch(0);
  data::Batch batch;
  double loss_sum = 0;
  int64_t top5 = 0;
  for (int64_t step = 0; loader.next(batch); ++step) {
    Tensor<float> logits = model.forward(batch.images);
    loss_sum += cross_entropy(logits, batch.labels).item() * batch.size();
    top5 += tools::topk_correct(logits, batch.labels, std::min<int64_t>(5, dataset.num_classes()));
    for (int64_t i = 0; i < batch.size(); ++i) {
      const float* row = logits.data() + i * logits.size(1);
      const int64_t predicted = std::max_element(row, row + logits.size(1)) - row;
      result.confusion.add(predicted, batch.labels(i));
    }
    result.count += batch.size();
    bar.update(step + 1, {{"acc", 100.0 * result.confusion.accuracy()}}, result.count);
  }
  bar.finish({{"acc", 100.0 * result.confusion.accuracy()}});
  if (was_training) model.train();
  result.loss = loss_sum / std::max<int64_t>(1, result.count);
  result.top1 = 100.0 * result.confusion.accuracy();
  result.top5 = 100.0 * static_cast<double>(top5) / std::max<int64_t>(1, result.count);
  return result;
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

  // Fail before any training if the output folder cannot be written.
  make_directories(options.out);
  io::write_file_atomic(config_path, json::dump(json::Value(options.to_json()), 2) + "\n");

  const std::string data_dir = resolve_data_dir(options.data);
  const auto started = std::chrono::steady_clock::now();
  DataSplits splits = read_data(data_dir, parse_format(options.format), options.image_size);
  data::ImageDataset train_set = limit_images(splits.train, options.limit_train, options.seed);
  data::ImageDataset test_set = limit_images(splits.test, options.limit_test, options.seed + 1);
  data::ImageDataset val_set;
  if (options.val_split > 0) std::tie(train_set, val_set) = train_set.split(options.val_split, options.seed);
  std::printf("data: %s from %s: %lld train, %lld validation, %lld test images, %lld classes, %lldx%lldx%lld (%.1f s)\n",
              format_name(splits.format), data_dir.c_str(), static_cast<long long>(train_set.size()),
              static_cast<long long>(val_set.size()), static_cast<long long>(test_set.size()),
              static_cast<long long>(train_set.num_classes()), static_cast<long long>(train_set.channels()),
              static_cast<long long>(train_set.height()), static_cast<long long>(train_set.width()),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());

  models::ModelOptions model_options;
  model_options.num_classes = train_set.num_classes();
  model_options.in_channels = train_set.channels();
  model_options.image_size = train_set.height();
  model_options.seed = options.seed;
  auto model = models::create(options.model, model_options);
  CCT_CHECK(train_set.height() == train_set.width(), "the models take square images; got ", train_set.height(), "x",
            train_set.width(), " (use --image-size with an image folder)");
  const models::ModelStats stats = models::model_stats(*model);
  std::printf("model: %s, %s parameters (%s trainable), %.3f GMACs per image (%.3f G with attention); "
              "`model_summary %s` prints the layers\n",
              options.model.c_str(), models::detail::with_thousands(stats.params).c_str(),
              models::detail::with_thousands(stats.trainable_params).c_str(), stats.macs / 1e9,
              (stats.macs + stats.attention_macs) / 1e9, options.model.c_str());

  data::LoaderOptions loader_options;
  loader_options.batch_size = options.batch_size;
  loader_options.shuffle = true;
  loader_options.drop_last = true;
  loader_options.seed = options.seed;
  loader_options.normalize = splits.normalize;
  loader_options.transform = make_augmentation(options.augment, train_set);
  if (options.random_erasing > 0) {
    data::RandomErasing erasing;
    erasing.p = options.random_erasing;
    loader_options.float_transforms.push_back(erasing);
  }
  std::optional<data::MixupOptions> mixup;
  if (options.mixup > 0 || options.cutmix > 0) {
    data::MixupOptions mix;
    mix.mixup_alpha = options.mixup;
    mix.cutmix_alpha = options.cutmix;
    mix.label_smoothing = options.label_smoothing;
    mixup = mix;
  }
  loader_options.mixup = mixup;
  data::DataLoader loader(train_set, loader_options);
  const int64_t steps_per_epoch = loader.num_batches();
  CCT_CHECK(steps_per_epoch > 0, "the training set (", train_set.size(), " images) is smaller than one batch of ",
            options.batch_size);

  {
    // What the model sees: the first augmented batch, as a picture.
    const data::Batch sample = loader.make_batch(0, 0);
    std::vector<data::Image> shown;
    std::vector<std::string> captions;
    const int64_t C = train_set.channels(), H = train_set.height(), W = train_set.width();
    for (int64_t i = 0; i < std::min<int64_t>(32, sample.size()); ++i) {
      shown.push_back(splits.normalize.denormalize(sample.images.data() + i * C * H * W, C, H, W));
      captions.push_back(train_set.class_names()[static_cast<size_t>(sample.labels(i))]);
    }
    data::GridOptions grid;
    grid.upscale = H < 64 ? 3 : 1;
    data::write_image_grid(options.out + "/augmented_samples.png", shown, captions, grid);
  }

  optim::AdamW<float> optimizer(optim::param_groups_no_decay_for_1d(model->named_parameters(), options.weight_decay),
                                {options.lr});
  CCT_CHECK(options.cooldown_epochs >= 0 && options.cooldown_epochs < options.epochs, "--cooldown-epochs (",
            options.cooldown_epochs, ") must be below --epochs (", options.epochs, ")");
  const int64_t cosine_epochs = options.epochs - options.cooldown_epochs;
  int64_t warmup_epochs = options.warmup_epochs;
  if (warmup_epochs >= cosine_epochs) {
    warmup_epochs = cosine_epochs / 2;
    std::printf("note: %lld warm-up epochs do not fit a %lld-epoch schedule; warming up for %lld\n",
                static_cast<long long>(options.warmup_epochs), static_cast<long long>(cosine_epochs),
                static_cast<long long>(warmup_epochs));
  }
  optim::CosineSchedule schedule{options.lr, 1e-6, options.min_lr, warmup_epochs, cosine_epochs, options.cooldown_epochs};
  schedule = schedule.per_iteration(steps_per_epoch);

  DataInfo data_info{train_set.class_names(), splits.normalize.mean, splits.normalize.stddev};
  // The run's settings without its output folder, so a run copied or resumed elsewhere checkpoints the same bytes.
  json::Object saved_args = options.to_json();
  json::Object args_without_out;
  for (const auto& [key, value] : saved_args.members())
    if (key != "out") args_without_out.set(key, value);
  const std::string args_json = json::dump(json::Value(args_without_out));
  const std::string metrics_path = options.out + "/metrics.jsonl";
  TrainingPosition position;
  if (options.resume) {
    position = load_training_checkpoint(last_path, *model, optimizer);
    tools::truncate_after_epoch(metrics_path, position.epoch);
    std::printf("resumed at epoch %lld, batch %lld (step %lld)\n", static_cast<long long>(position.epoch + 1),
                static_cast<long long>(position.batch), static_cast<long long>(position.global_step));
  } else {
    std::remove(metrics_path.c_str());
  }
  tools::MetricsLog metrics(metrics_path);
  auto save_last = [&] { save_training_checkpoint(last_path, *model, optimizer, position, data_info, args_json); };

  std::printf("training %s for %lld epochs of %lld steps (batch %lld, AdamW lr %g, wd %g, %s augmentation, %d threads)\n",
              options.model.c_str(), static_cast<long long>(options.epochs), static_cast<long long>(steps_per_epoch),
              static_cast<long long>(options.batch_size), options.lr, options.weight_decay, options.augment.c_str(),
              num_threads());
  int64_t skipped_steps = 0;
  for (int64_t epoch = position.epoch; epoch < options.epochs; ++epoch) {
    if (options.mix_off_epoch > 0 && epoch >= options.mix_off_epoch) loader.set_mixup(std::nullopt);
    model->train();
    loader.start_epoch(epoch);
    data::Batch batch;
    for (int64_t skip = 0; skip < position.batch; ++skip) loader.next(batch);  // resume mid-epoch
    const auto epoch_start = std::chrono::steady_clock::now();
    tools::ProgressBar bar(steps_per_epoch, "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs));
    if (position.batch > 0) bar.start_at(position.batch);
    int64_t step_in_epoch = position.batch, seen = 0;
    double loss_sum = position.epoch_loss_sum;
    int64_t correct = position.epoch_correct, counted = position.epoch_seen;
    while (loader.next(batch)) {
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
      optimizer.set_lr(schedule.lr_at(position.global_step));
      Tensor<float> logits = model->forward(batch.images);
      Tensor<float> loss = batch.soft_targets.defined() ? cross_entropy(logits, batch.soft_targets)
                                                         : cross_entropy(logits, batch.labels, options.label_smoothing);
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
          ++step_in_epoch;
          continue;
        }
        throw Error(detail::concat(what, " at epoch ", epoch + 1, ", step ", position.global_step,
                                   "; training stopped. ",
                                   path_exists(last_path) ? "The last good checkpoint is " + last_path
                                                          : std::string("No checkpoint was saved yet"),
                                   ". Try a lower --lr, --clip-grad 1, or --skip-nonfinite"));
      }
      if (options.clip_grad > 0) optim::clip_grad_norm_(model->named_parameters(), options.clip_grad);
      optimizer.step();
      ++position.global_step;
      ++step_in_epoch;

      loss_sum += static_cast<double>(loss_value) * batch.size();
      for (int64_t i = 0; i < batch.size(); ++i) {
        const float* row = logits.data() + i * logits.size(1);
        correct += (std::max_element(row, row + logits.size(1)) - row) == batch.labels(i);
      }
      counted += batch.size();
      seen += batch.size();
      bar.update(step_in_epoch, {{"loss", loss_sum / counted}, {"acc", 100.0 * correct / counted}, {"lr", optimizer.lr()}},
                 seen);
    }
    bar.finish({{"loss", loss_sum / std::max<int64_t>(1, counted)}, {"acc", 100.0 * correct / std::max<int64_t>(1, counted)}});
    const double epoch_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();

    json::Object line;
    line.set("epoch", json::Value(epoch + 1));
    line.set("lr", json::Value(optimizer.lr()));
    line.set("train_loss", json::Value(loss_sum / std::max<int64_t>(1, counted)));
    line.set("train_acc", json::Value(100.0 * correct / std::max<int64_t>(1, counted)));
    double selection = 100.0 * correct / std::max<int64_t>(1, counted);
    if (!val_set.empty()) {
      const EvalResult val = evaluate(*model, val_set, splits.normalize, 256, "  validation");
      line.set("val_loss", json::Value(val.loss));
      line.set("val_acc", json::Value(val.top1));
      line.set("val_top5", json::Value(val.top5));
      selection = val.top1;
      std::printf("  validation: loss %.4f, top-1 %.2f%%, top-5 %.2f%%\n", val.loss, val.top1, val.top5);
    }
    line.set("epoch_seconds", json::Value(epoch_seconds));
    line.set("img_per_s", json::Value(seen / std::max(1e-9, epoch_seconds)));
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
    // best before last: a crash between the two then repeats this epoch on resume (and rewrites the same
    // best file) instead of leaving a last checkpoint that names an epoch best.safetensors never got.
    if (improved) save_training_checkpoint(best_path, *model, optimizer, position, data_info, args_json);
    save_last();
    tools::write_curves_svg(options.out + "/curves.svg", tools::read_metrics(metrics_path));
  }

  // Final numbers: the best checkpoint on the test set.
  if (path_exists(best_path)) models::load_weights(best_path, *model, true);
  const EvalResult test = evaluate(*model, test_set, splits.normalize, 256, "test");
  tools::write_confusion_matrix_svg(options.out + "/confusion_matrix.svg", test.confusion, test_set.class_names());
  json::Object final_result;
  final_result.set("model", json::Value(options.model));
  final_result.set("best_epoch", json::Value(position.best_epoch));
  final_result.set("test_loss", finite_or_null(test.loss));
  final_result.set("test_acc", finite_or_null(test.top1));
  final_result.set("test_top5", finite_or_null(test.top5));
  final_result.set("minutes", json::Value(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() / 60.0));
  final_result.set("confusion_matrix", test.confusion.to_json());
  io::write_file_atomic(options.out + "/final.json", json::dump(json::Value(final_result), 2) + "\n");
  std::printf("\n%s", test.confusion.to_string(test_set.class_names()).c_str());
  std::printf("test (best epoch %lld): top-1 %.2f%%, top-5 %.2f%%, loss %.4f; outputs in %s/\n",
              static_cast<long long>(position.best_epoch), test.top1, test.top5, test.loss, options.out.c_str());
  return 0;
}

// ---- eval ------------------------------------------------------------------------------------------

inline int run_eval(const EvalOptions& options) {
  if (options.threads > 0) set_num_threads(options.threads);
  auto model = models::load_model(options.checkpoint);
  const io::SafeTensorsReader reader(options.checkpoint);
  DataInfo info = read_data_info(reader);
  const std::string data_dir = resolve_data_dir(options.data);
  DataSplits splits = read_data(data_dir, parse_format(options.format), model->config().image_size);
  const data::ImageDataset& dataset = options.split == "test" ? splits.test : splits.train;
  CCT_CHECK(dataset.num_classes() == model->config().num_classes, "checkpoint '", options.checkpoint, "' has ",
            model->config().num_classes, " classes but the data in '", data_dir, "' has ", dataset.num_classes());
  CCT_CHECK(dataset.channels() == model->config().in_channels && dataset.height() == model->config().image_size,
            "checkpoint '", options.checkpoint, "' takes ", model->config().in_channels, "x", model->config().image_size,
            "x", model->config().image_size, " images but the data has ", dataset.channels(), "x", dataset.height(), "x",
            dataset.width());
  data::Normalize normalize = info.mean.empty() ? splits.normalize : data::Normalize(info.mean, info.std);
  const EvalResult result = evaluate(*model, dataset, normalize, options.batch_size);
  std::printf("%s", result.confusion.to_string(dataset.class_names()).c_str());
  std::printf("%s on %lld %s images: top-1 %.2f%%, top-5 %.2f%%, loss %.4f\n", model->config().name.c_str(),
              static_cast<long long>(result.count), options.split.c_str(), result.top1, result.top5, result.loss);
  if (!options.out.empty()) {
    make_directories(options.out);
    tools::write_confusion_matrix_svg(options.out + "/confusion_matrix.svg", result.confusion, dataset.class_names());
    json::Object out;
    out.set("checkpoint", json::Value(options.checkpoint));
    out.set("split", json::Value(options.split));
    out.set("top1", finite_or_null(result.top1));
    out.set("top5", finite_or_null(result.top5));
    out.set("loss", finite_or_null(result.loss));
    out.set("confusion_matrix", result.confusion.to_json());
    io::write_file_atomic(options.out + "/eval.json", json::dump(json::Value(out), 2) + "\n");
  }
  return 0;
}

// ---- predict ---------------------------------------------------------------------------------------

inline int run_predict(const PredictOptions& options) {
  if (options.threads > 0) set_num_threads(options.threads);
  auto model = models::load_model(options.checkpoint);
  model->eval();
  const io::SafeTensorsReader reader(options.checkpoint);
  const DataInfo info = read_data_info(reader);
  const auto& config = model->config();
  std::vector<std::string> class_names = info.class_names;
  if (static_cast<int64_t>(class_names.size()) != config.num_classes) {
    class_names.clear();
    for (int64_t c = 0; c < config.num_classes; ++c) class_names.push_back("class " + std::to_string(c));
  }
  const data::Normalize normalize = info.mean.empty() ? data::Normalize() : data::Normalize(info.mean, info.std);

  const int64_t B = static_cast<int64_t>(options.images.size()), C = config.in_channels, S = config.image_size;
  Tensor<float> batch = Tensor<float>::empty({B, C, S, S});
  std::vector<data::Image> originals;
  for (int64_t b = 0; b < B; ++b) {
    data::Image image = data::read_image(options.images[static_cast<size_t>(b)], static_cast<int>(C));
    originals.push_back(image);
    if (image.height != S || image.width != S) image = data::resize_bilinear(image, S, S);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < S * S; ++i)
        batch.data()[(b * C + c) * S * S + i] = (image.plane(c)[i] / 255.0f - normalize.mean_of(c)) / normalize.std_of(c);
  }
  nn::ClassifierTrace trace;
  Tensor<float> logits;
  {
    NoGradGuard no_grad;
    logits = model->forward(batch, &trace);
  }
  Tensor<float> probabilities = softmax(logits, 1);
  const int64_t k = std::min<int64_t>(options.top_k, config.num_classes);
  json::Array results;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> order(static_cast<size_t>(config.num_classes));
    for (int64_t c = 0; c < config.num_classes; ++c) order[static_cast<size_t>(c)] = c;
    const float* p = probabilities.data() + b * config.num_classes;
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t x, int64_t y) { return p[x] > p[y]; });
    if (options.json) {
      json::Object entry;
      entry.set("image", json::Value(options.images[static_cast<size_t>(b)]));
      json::Array top, raw;
      for (int64_t i = 0; i < k; ++i) {
        json::Object t;
        t.set("class", json::Value(class_names[static_cast<size_t>(order[static_cast<size_t>(i)])]));
        t.set("index", json::Value(order[static_cast<size_t>(i)]));
        t.set("probability", json::Value(static_cast<double>(p[order[static_cast<size_t>(i)]])));
        top.push_back(json::Value(t));
      }
      for (int64_t c = 0; c < config.num_classes; ++c)
        raw.push_back(json::Value(static_cast<double>(logits.data()[b * config.num_classes + c])));
      entry.set("top", json::Value(top));
      entry.set("logits", json::Value(raw));
      results.push_back(json::Value(entry));
    } else {
      std::printf("%s\n", options.images[static_cast<size_t>(b)].c_str());
      for (int64_t i = 0; i < k; ++i)
        std::printf("  %6.2f%%  %s\n", 100.0 * p[order[static_cast<size_t>(i)]],
                    class_names[static_cast<size_t>(order[static_cast<size_t>(i)])].c_str());
    }
  }
  if (options.json) std::printf("%s\n", json::dump(json::Value(results), 2).c_str());
  if (!options.attention_png.empty()) {
    CCT_CHECK(trace.pool_weights.defined(), model->config().name,
              " has no SeqPool (ViT-Lite reads its class token), so there are no token weights to show");
    write_attention_overlay(options.attention_png, originals, trace.pool_weights, model->tokenizer->grid_size(S),
                            class_names, probabilities);
    if (!options.json) std::printf("attention overlay written to %s\n", options.attention_png.c_str());
  }
  return 0;
}

}  // namespace cct::trainer
