// The training loop shared by every classifier trainer (images, text, a user's own data): AdamW with a
// warm-up + cosine schedule per iteration, gradient clipping, a NaN/inf policy, Ctrl-C handling,
// progress bars, metrics.jsonl, checkpoints (best before last), curves, and the final test with the
// best weights. What differs between data sets lives behind `Task`; `fit` is written once.
//
//   struct MyTask : train::Task { ... };            // data, model, checkpoint format
//   train::RunFolder run("runs/mine");
//   train::fit(task, options, run, settings, /*resume=*/false, &interrupted, started);
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "../core/parallel.hpp"
#include "../core/precision.hpp"
#include "../distributed/communicator.hpp"
#include "../distributed/gradients.hpp"
#include "../io/json.hpp"
#include "../io/safetensors.hpp"
#include "../nn/module.hpp"
#include "../ops/matmul.hpp"
#include "../optim/adamw.hpp"
#include "../optim/clip.hpp"
#include "../optim/schedule.hpp"
#include "evaluate.hpp"
#include "metrics_log.hpp"
#include "plots.hpp"
#include "progress.hpp"
#include "run_folder.hpp"
#include "training_state.hpp"
#include "weight_average.hpp"

namespace cct::train {

// The settings every trainer shares. They are stored flat in config.json next to the trainer's own.
// Errors name them by the trainers' flags, which are the field names with dashes (--batch-size for
// batch_size), so they read right both on the command line and in code.
struct LoopOptions {
  int64_t epochs = 10;
  int64_t batch_size = 128;
  double lr = 1e-3;
  double min_lr = 1e-5;         // at the end of the cosine
  double weight_decay = 0.05;   // AdamW, decoupled; not on biases and other 1-D parameters
  int64_t warmup_epochs = 3;
  int64_t cooldown_epochs = 0;  // at min_lr after the cosine
  double label_smoothing = 0.1;
  double clip_grad = 0.0;       // global gradient norm; 0: off
  int threads = 0;              // 0: all cores
  uint64_t seed = 0;
  double val_split = 0.05;      // fraction of the training set held out for model selection
  bool skip_nonfinite = false;  // skip (at most 100) steps whose loss or gradient is not finite
  double time_budget = 0;       // minutes for the whole run; > 0: `epochs` is fitted to it at the start
  std::string schedule = "cosine";  // after the warm-up: "cosine" to min_lr, or "linear" to min_lr
  double ema = 0;               // decay of the weight average that is validated and saved; 0: off
  // Where a time budget last re-fitted a linear decay after the warm-up (0: never): from this step the
  // learning rate falls in a straight line from `refit_lr` to min_lr at the end of `epochs`.
  int64_t refit_step = 0;
  double refit_lr = 0;
  std::string precision = "auto";  // products in "bf16" or "fp32"; "auto": bf16 where the CPU has AVX512_BF16

  bool extend_by_budget = false;  // --resume --time-budget M: continue for M more minutes (not saved)

  void validate() const;  // below: throws cct::Error naming the option and its allowed range

  void to_json(json::Object& o) const {
    o.set("epochs", json::Value(epochs));
    o.set("batch_size", json::Value(batch_size));
    o.set("lr", json::Value(lr));
    o.set("min_lr", json::Value(min_lr));
    o.set("weight_decay", json::Value(weight_decay));
    o.set("warmup_epochs", json::Value(warmup_epochs));
    o.set("cooldown_epochs", json::Value(cooldown_epochs));
    o.set("label_smoothing", json::Value(label_smoothing));
    o.set("clip_grad", json::Value(clip_grad));
    o.set("threads", json::Value(static_cast<int64_t>(threads)));
    o.set("seed", json::Value(static_cast<int64_t>(seed)));
    o.set("val_split", json::Value(val_split));
    o.set("skip_nonfinite", json::Value(skip_nonfinite));
    o.set("time_budget", json::Value(time_budget));
    o.set("schedule", json::Value(schedule));
    o.set("ema", json::Value(ema));
    o.set("precision", json::Value(precision));
    if (refit_step > 0) {
      o.set("refit_step", json::Value(refit_step));
      o.set("refit_lr", json::Value(refit_lr));
    }
  }
  void from_json(const json::Object& o) {
    epochs = o.at("epochs").as_int();
    batch_size = o.at("batch_size").as_int();
    lr = o.at("lr").as_double();
    min_lr = o.at("min_lr").as_double();
    weight_decay = o.at("weight_decay").as_double();
    warmup_epochs = o.at("warmup_epochs").as_int();
    cooldown_epochs = o.at("cooldown_epochs").as_int();
    label_smoothing = o.at("label_smoothing").as_double();
    clip_grad = o.at("clip_grad").as_double();
    threads = static_cast<int>(o.at("threads").as_int());
    seed = static_cast<uint64_t>(o.at("seed").as_int());
    val_split = o.at("val_split").as_double();
    if (const json::Value* skip = o.find("skip_nonfinite")) skip_nonfinite = skip->as_bool();
    if (const json::Value* budget = o.find("time_budget")) time_budget = budget->as_double();
    if (const json::Value* shape = o.find("schedule")) schedule = shape->as_string();
    if (const json::Value* decay = o.find("ema")) ema = decay->as_double();
    if (const json::Value* products = o.find("precision")) precision = products->as_string();
    if (const json::Value* step = o.find("refit_step")) refit_step = step->as_int();
    if (const json::Value* rate = o.find("refit_lr")) refit_lr = rate->as_double();
  }
};

// Checks of option values, each naming the option and what it allows in the user's units, for
// LoopOptions::validate and the trainers' own options. NaN and infinity fail every range.
namespace check {

inline void in_range(const char* option, double value, double low, double high, const char* unit = "") {
  if (!(std::isfinite(value) && value >= low && value <= high))
    throw Error(cct::detail::concat(option, " must be between ", low, " and ", high, unit, ", got ", value));
}
inline void at_least(const char* option, double value, double low, const char* unit = "") {
  if (!(std::isfinite(value) && value >= low))
    throw Error(cct::detail::concat(option, " must be a finite number of at least ", low, unit, ", got ", value));
}
inline void below(const char* option, double value, double low, double high_exclusive) {
  if (!(std::isfinite(value) && value >= low && value < high_exclusive))
    throw Error(cct::detail::concat(option, " must be at least ", low, " and below ", high_exclusive, ", got ", value));
}
inline void whole(const char* option, int64_t value, int64_t low, int64_t high) {
  if (value < low || value > high)
    throw Error(cct::detail::concat(option, " must be a whole number from ", low, " to ", high, ", got ", value));
}

}  // namespace check

// Every value fit uses, checked before a run folder is made, so a bad option never leaves one behind.
inline void LoopOptions::validate() const {
  check::whole("--epochs", epochs, 1, 1000000);
  check::whole("--batch-size", batch_size, 1, 1 << 16);
  if (!(std::isfinite(lr) && lr > 0)) throw Error(cct::detail::concat("--lr must be a positive finite number, got ", lr));
  check::in_range("--min-lr", min_lr, 0, lr, " (--lr)");
  check::at_least("--weight-decay", weight_decay, 0);
  check::whole("--warmup-epochs", warmup_epochs, 0, 1000000);
  if (cooldown_epochs < 0 || cooldown_epochs >= epochs)
    throw Error(cct::detail::concat("--cooldown-epochs (", cooldown_epochs, ") must be below --epochs (", epochs,
                                    ") and at least 0"));
  check::below("--label-smoothing", label_smoothing, 0, 1);
  check::at_least("--clip-grad", clip_grad, 0);
  check::whole("--threads", threads, 0, 4096);
  check::in_range("--val-split", val_split, 0, 0.9);
  check::in_range("--time-budget", time_budget, 0, 60 * 24 * 365, " minutes");
  if (schedule != "cosine" && schedule != "linear")
    throw Error("--schedule must be cosine or linear, got '" + schedule + "'");
  check::below("--ema", ema, 0, 1);
  if (precision != "auto" && precision != "bf16" && precision != "fp32")
    throw Error("--precision must be auto, bf16 or fp32, got '" + precision + "'");
}

// Sets the process-wide precision of the products for `requested` (auto, bf16, fp32) and says which
// one runs and why; returns it.
inline Precision apply_precision(const std::string& requested) {
  Precision chosen = Precision::kFP32;
  if (requested == "auto") {
    chosen = bf16_is_native() ? Precision::kBF16 : Precision::kFP32;
    std::printf("precision: %s (%s; --precision fp32|bf16 to choose)\n", precision_name(chosen),
                bf16_is_native() ? "this CPU has AVX512_BF16: bf16 products, fp32 weights and accumulation"
                                 : "this CPU has no AVX512_BF16, where bf16 would be slower than fp32");
  } else {
    chosen = parse_precision(requested);
    std::printf("precision: %s%s\n", precision_name(chosen),
                chosen == Precision::kBF16 && !bf16_is_native()
                    ? " (this CPU has no AVX512_BF16: a portable bf16 path runs, slower than fp32)"
                    : "");
  }
  set_default_precision(chosen);
  return chosen;
}

enum class Split { kValidation, kTest };

// One training step's forward pass: the logits (B, classes), the loss to minimise, and the targets.
struct TrainStep {
  Tensor<float> logits, loss;
  Tensor<int64_t> labels;
};

// What `fit` needs from a data set and its model.
class Task {
 public:
  virtual ~Task() = default;

  virtual nn::Module<float>& model() = 0;
  virtual std::string model_name() const = 0;
  virtual const std::vector<std::string>& class_names() const = 0;
  virtual std::string unit() const { return "img"; }    // what a sample is, for rates: img/s, seq/s
  virtual std::string title() const { return ""; }       // heading of the plots
  virtual std::string recipe() const { return ""; }      // extra words for the "training ..." line

  // Training data: `steps_per_epoch` batches per epoch; start_epoch positions the data at `first_step`
  // (a resumed run), next_batch fetches the next batch (false at the end of the epoch), and forward runs
  // the model on it in training mode.
  virtual int64_t steps_per_epoch() const = 0;
  virtual void start_epoch(int64_t epoch, int64_t first_step) = 0;
  virtual bool next_batch() = 0;
  virtual TrainStep forward(double label_smoothing) = 0;

  // Evaluation data: how many batches a split has (0: no such split) and the logits of batch `index`
  // (called in order 0, 1, ... after eval_batches).
  virtual int64_t eval_batches(Split split) = 0;
  virtual Tensor<float> eval_logits(Split split, int64_t index, Tensor<int64_t>& labels) = 0;

  // Checkpoints: the task adds what its kind of model needs to rebuild itself (config, vocabulary,
  // normalisation) to `metadata`, and writes the file atomically.
  virtual void save_checkpoint(const std::string& path, io::Metadata metadata,
                               const optim::NamedTensors<float>& extra_tensors) = 0;
  virtual void load_weights(const std::string& path) = 0;

  // Fields of final.json beyond the shared ones (data set name, vocabulary size, ...).
  virtual void describe_final(json::Object& final_result) const { (void)final_result; }
};

// Evaluates a task's split with the shared loop (eval mode, no gradients, progress bar). Under a
// data-parallel run each rank evaluates its shard (the task's eval_batches) and the figures are summed.
inline Evaluation evaluate(Task& task, Split split, const std::string& label,
                           distributed::Communicator& world = distributed::Communicator::local()) {
  const int64_t batches = task.eval_batches(split);
  Evaluation result = evaluate(
      task.model(), batches, static_cast<int64_t>(task.class_names().size()),
      [&](int64_t index, Tensor<int64_t>& labels) { return task.eval_logits(split, index, labels); }, label, task.unit());
  all_reduce(result, world);
  return result;
}

namespace detail {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Seconds per training step, from `steps` batches (the wait for data, forward and backward) at the
// start of the first epoch (after one untimed step that warms caches and buffers). The weights are not updated and the default generator
// is put back, so the run that follows is the same as one started with the fitted --epochs.
inline double measure_step_seconds(Task& task, int64_t steps) {
  const Generator saved = default_generator();
  nn::Module<float>& model = task.model();
  model.train();
  task.start_epoch(0, 0);
  double seconds = 0;
  int64_t timed = 0;
  for (int64_t i = 0; i <= steps; ++i) {
    const auto start = std::chrono::steady_clock::now();  // the wait for data counts: it is part of a step
    if (!task.next_batch()) break;
    const TrainStep step = task.forward(0.0);
    step.loss.backward();
    model.zero_grad();
    if (i > 0) {
      seconds += seconds_since(start);
      ++timed;
    }
  }
  default_generator() = saved;
  return timed > 0 ? seconds / static_cast<double>(timed) : 0.0;
}

}  // namespace detail

// The learning rate at each step: warm-up, then the cosine or the straight line of options.schedule.
inline std::function<double(int64_t)> make_schedule(const LoopOptions& options, int64_t steps_per_epoch) {
  CCT_CHECK(options.schedule == "cosine" || options.schedule == "linear", "--schedule must be cosine or linear, got '",
            options.schedule, "'");
  const int64_t cosine_epochs = options.epochs - options.cooldown_epochs;
  int64_t warmup_epochs = options.warmup_epochs;
  if (warmup_epochs >= cosine_epochs) {
    warmup_epochs = cosine_epochs / 2;
    std::printf("note: %lld warm-up epochs do not fit a %lld-epoch schedule; warming up for %lld\n",
                static_cast<long long>(options.warmup_epochs), static_cast<long long>(cosine_epochs),
                static_cast<long long>(warmup_epochs));
  }
  if (options.schedule == "linear") {
    const optim::LinearDecaySchedule linear{options.lr, 1e-6, options.min_lr, warmup_epochs * steps_per_epoch,
                                            cosine_epochs * steps_per_epoch};
    if (options.refit_step <= 0) return [linear](int64_t step) { return linear.lr_at(step); };
    // A budget re-fitted the decay at refit_step: a straight line from the rate reached there to min_lr at
    // the new end. (The steps before it ran on earlier fits; only resumed runs ask, and they resume later.)
    const optim::LinearDecaySchedule refitted{options.refit_lr, options.refit_lr, options.min_lr, options.refit_step,
                                              std::max(options.refit_step, cosine_epochs * steps_per_epoch)};
    const int64_t refit_step = options.refit_step;
    return [linear, refitted, refit_step](int64_t step) {
      return step < refit_step ? linear.lr_at(step) : refitted.lr_at(step);
    };
  }
  const optim::CosineSchedule cosine =
      optim::CosineSchedule{options.lr, 1e-6, options.min_lr, warmup_epochs, cosine_epochs, options.cooldown_epochs}
          .per_iteration(steps_per_epoch);
  return [cosine](int64_t step) { return cosine.lr_at(step); };
}

// Trains `task` as `options` say, writing into `run`; returns 0 when done, 130 when interrupted (after
// saving last.safetensors). `settings` are the run's settings as config.json holds them (the trainer's
// own and the loop's); without the output folder they go into every checkpoint, and with a time budget
// config.json is rewritten with the fitted epochs, so --resume continues the same run and --epochs N
// reproduces it elsewhere. `started` is when the run began (data loading included), for the minutes.
//
// Data-parallel training (`world` of several ranks, e.g. cct/distributed/mpi_world.hpp under mpirun):
// every rank runs `fit` on its own shard of the data (the task's loaders), the gradients are averaged in
// one allreduce per step, validation and the test are summed over the ranks' shards, and rank 0 alone
// writes into `run` (the other ranks read its checkpoints, so --out must be a folder every rank sees).
// What rank 0 decides from its clock (the epochs a time budget allows) is broadcast. Output goes to
// stdout on every rank: MPI programs silence the others (distributed::quiet_unless_root).
inline int fit(Task& task, LoopOptions options, const RunFolder& run, json::Object settings, bool resume,
               volatile std::sig_atomic_t* interrupted, std::chrono::steady_clock::time_point started,
               distributed::Communicator& world = distributed::Communicator::local()) {
  options.validate();
  const bool root = world.is_root();
  if (world.size() > 1) settings.set("world_size", json::Value(static_cast<int64_t>(world.size())));
  nn::Module<float>& model = task.model();
  const int64_t steps_per_epoch = task.steps_per_epoch();
  CCT_CHECK(steps_per_epoch > 0, "the training set is smaller than one batch of ", options.batch_size);

  const bool budgeted = options.time_budget > 0;
  double test_seconds_estimate = 0;
  if (budgeted && !resume) {
    // Fit whole epochs into the budget: what is left after start-up, less the final test, over the time
    // of one epoch (its steps, its validation and checkpoints). Evaluation runs about 3x faster per
    // sample than a training step (no backward pass).
    const double step_seconds = detail::measure_step_seconds(task, 8);
    const double per_sample = step_seconds / static_cast<double>(options.batch_size);
    const int64_t val_batches = task.eval_batches(Split::kValidation);
    const double validation = static_cast<double>(val_batches) * 256 * per_sample / 3;
    const double test = static_cast<double>(task.eval_batches(Split::kTest)) * 256 * per_sample / 3;
    test_seconds_estimate = test;
    const double epoch_seconds = static_cast<double>(steps_per_epoch) * step_seconds + validation + 0.5;
    // 3% of the budget is kept back: the first steps' pace is a sample, and a run over budget is worse
    // than one a few steps short.
    const double left = options.time_budget * 60 * 0.97 - detail::seconds_since(started) - test;
    options.epochs = std::max<int64_t>(1, static_cast<int64_t>(std::floor(left / epoch_seconds)));
    options.epochs = world.broadcast_value(options.epochs);  // every rank runs rank 0's schedule
    options.cooldown_epochs = std::min(options.cooldown_epochs, options.epochs - 1);
    std::printf("time budget %.1f min: %.3f s per step of %lld (measured), %.1f s per epoch with validation -> "
                "%lld epochs (%lld steps); reproduce with --epochs %lld\n",
                options.time_budget, step_seconds, static_cast<long long>(options.batch_size), epoch_seconds,
                static_cast<long long>(options.epochs), static_cast<long long>(options.epochs * steps_per_epoch),
                static_cast<long long>(options.epochs));
    options.to_json(settings);
    settings.set("fitted_total_steps", json::Value(options.epochs * steps_per_epoch));
    if (root) run.write_config(settings);
  }
  CCT_CHECK(options.cooldown_epochs >= 0 && options.cooldown_epochs < options.epochs, "--cooldown-epochs (",
            options.cooldown_epochs, ") must be below --epochs (", options.epochs, ")");

  optim::AdamW<float> optimizer(optim::param_groups_no_decay_for_1d(model.named_parameters(), options.weight_decay),
                                {options.lr});
  if (!resume) distributed::broadcast_parameters(model, world);  // every rank starts from rank 0's weights
  distributed::GradientAverager average_gradients(model);
  std::optional<WeightAverage> average;
  if (options.ema > 0) average.emplace(model, options.ema);
  WeightAverage* const ema = average ? &*average : nullptr;

  const std::string last_path = run.last_checkpoint(), best_path = run.best_checkpoint();
  const std::string metrics_path = run.metrics_path();
  TrainingPosition position;
  if (resume) {
    const io::SafeTensorsReader reader(last_path);
    // The same classes in the same order, or the resumed weights would answer for other classes.
    const auto names = reader.metadata().find("data.class_names");
    if (names != reader.metadata().end()) {
      json::Array current;
      for (const auto& name : task.class_names()) current.push_back(json::Value(name));
      if (json::dump(json::parse(names->second)) != json::dump(json::Value(current)))
        throw IoError("cannot resume " + last_path + ": it was trained on the classes " + names->second +
                      " but the data now has " + json::dump(json::Value(current)) +
                      "; resume with the run's own data, or start a new run");
    }
    task.load_weights(last_path);
    if (ema) ema->restore(reader);
    position = read_training_state(reader, optimizer);
    if (!root) position.epoch_loss_sum = 0, position.epoch_correct = position.epoch_seen = 0;  // rank 0 carries them
    world.barrier();  // every rank has read the checkpoint before rank 0 touches the folder
    if (root) truncate_after_epoch(metrics_path, position.epoch);
    if (options.extend_by_budget) {
      // M more minutes at the pace of the epochs so far (training, validation and checkpoints).
      double seconds = 0;
      int64_t epochs_seen = 0;
      for (const json::Object& record : read_metrics(metrics_path)) {
        for (const char* key : {"epoch_seconds", "validation_seconds"})
          if (const json::Value* value = record.find(key); value && value->is_number()) seconds += value->as_double();
        ++epochs_seen;
      }
      CCT_CHECK(epochs_seen > 0, "--time-budget with --resume needs at least one finished epoch in ", metrics_path,
                " to know the pace; pass --epochs instead");
      const double per_epoch = seconds / static_cast<double>(epochs_seen);
      options.epochs = position.epoch + std::max<int64_t>(1, static_cast<int64_t>(options.time_budget * 60 * 0.97 / per_epoch));
      options.epochs = world.broadcast_value(options.epochs);
      std::printf("time budget %.1f more minutes at %.1f s per epoch: continuing to epoch %lld\n", options.time_budget,
                  per_epoch, static_cast<long long>(options.epochs));
      options.to_json(settings);
      if (root) run.write_config(settings);
    }
    std::printf("resumed at epoch %lld, batch %lld (step %lld)\n", static_cast<long long>(position.epoch + 1),
                static_cast<long long>(position.batch), static_cast<long long>(position.global_step));
  } else if (root) {
    std::remove(metrics_path.c_str());
  }
  std::optional<MetricsLog> metrics;
  if (root) metrics.emplace(metrics_path);
  std::function<double(int64_t)> lr_at = make_schedule(options, steps_per_epoch);
  // Checkpoints hold the weights that are evaluated (the average, with --ema) under the model's names,
  // so predict and eval use them; the trained weights travel under "training.raw." for --resume.
  // The run's settings without its output folder, so a run copied or resumed elsewhere checkpoints the
  // same bytes.
  const auto args_of = [](const json::Object& all) {
    json::Object args;
    for (const auto& [key, value] : all.members())
      if (key != "out") args.set(key, value);
    return json::dump(json::Value(args));
  };
  std::string args_json = args_of(settings);
  const auto save = [&](const std::string& path) {
    if (!root) return;
    io::Metadata metadata;
    write_training_metadata(metadata, position, args_json);
    metadata["training.precision"] = precision_name(default_precision());  // the weights themselves are fp32
    json::Array names;
    for (const auto& name : task.class_names()) names.push_back(json::Value(name));
    metadata["data.class_names"] = json::dump(json::Value(names));
    optim::NamedTensors<float> extra = optimizer.state_dict();
    const WeightAverage::Swap swapped(ema);
    if (ema)
      for (auto& entry : ema->stored()) extra.push_back(std::move(entry));
    task.save_checkpoint(path, metadata, extra);
  };

  const std::string recipe = task.recipe();
  std::printf("training %s for %lld epochs of %lld steps (batch %lld, AdamW lr %g, %s schedule, wd %g, label "
              "smoothing %g%s%s%s, %d threads)\n",
              task.model_name().c_str(), static_cast<long long>(options.epochs), static_cast<long long>(steps_per_epoch),
              static_cast<long long>(options.batch_size), options.lr, options.schedule.c_str(), options.weight_decay,
              options.label_smoothing, ema ? (", EMA " + std::to_string(options.ema).substr(0, 6)).c_str() : "",
              recipe.empty() ? "" : ", ", recipe.c_str(), num_threads());
  ProgressOptions progress;
  progress.unit = task.unit();
  int64_t skipped_steps = 0;
  double paced_seconds = 0;  // time of the epochs run so far (training, validation, checkpoints), for the re-fit
  int64_t paced_epochs = 0;
  for (int64_t epoch = position.epoch; epoch < options.epochs; ++epoch) {
    model.train();
    task.start_epoch(epoch, position.batch);
    const auto epoch_start = std::chrono::steady_clock::now();
    double data_seconds = 0, compute_seconds = 0, allreduce_seconds = 0;
    ProgressBar bar(steps_per_epoch, "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs),
                    stdout, progress);
    if (position.batch > 0) bar.start_at(position.batch);
    int64_t step_in_epoch = position.batch, seen = 0;
    double loss_sum = position.epoch_loss_sum;
    int64_t correct = position.epoch_correct, counted = position.epoch_seen;
    for (;;) {
      auto moment = std::chrono::steady_clock::now();
      if (!task.next_batch()) break;
      data_seconds += detail::seconds_since(moment);
      // Checked with a batch in hand, so a saved position always has a step left in its epoch (the
      // resumed run fetches the same batch again: the loaders are deterministic). All ranks stop at the
      // same step when any of them is interrupted.
      if (world.any(*interrupted != 0)) {
        if (world.size() > 1) {  // the partial epoch's figures over all ranks (rank 0 carries them on resume)
          loss_sum = world.sum(loss_sum);
          correct = world.sum(correct);
          counted = world.sum(counted);
        }
        position.epoch = epoch;
        position.batch = step_in_epoch;
        position.epoch_loss_sum = loss_sum;
        position.epoch_correct = correct;
        position.epoch_seen = counted;
        save(last_path);
        world.barrier();  // no rank exits (which ends an MPI job) before rank 0's checkpoint is written
        std::printf("\ninterrupted: saved %s at epoch %lld, batch %lld; continue with --resume --out %s\n",
                    last_path.c_str(), static_cast<long long>(epoch + 1), static_cast<long long>(step_in_epoch),
                    run.path().c_str());
        return 130;
      }
      moment = std::chrono::steady_clock::now();
      optimizer.set_lr(lr_at(position.global_step));
      const TrainStep step = task.forward(options.label_smoothing);
      const float loss_value = step.loss.item();
      // Every rank takes the same branch: the loss checked is the sum over the ranks (NaN if any is),
      // and the gradients checked are the averaged ones.
      const double checked_loss = world.size() > 1 ? world.sum(static_cast<double>(loss_value)) : loss_value;
      std::optional<std::string> bad_gradient;
      if (std::isfinite(checked_loss)) {
        optimizer.zero_grad();
        step.loss.backward();
        const auto reduce_start = std::chrono::steady_clock::now();
        average_gradients(world);
        allreduce_seconds += detail::seconds_since(reduce_start);
        bad_gradient = optim::grads_finite(model.named_parameters());
      }
      if (!std::isfinite(checked_loss) || bad_gradient) {
        const std::string what = !std::isfinite(checked_loss)
                                     ? "the loss is " + std::to_string(world.size() > 1 ? checked_loss : loss_value) +
                                           (world.size() > 1 ? " (summed over the ranks)" : "")
                                                            : "the gradient of '" + *bad_gradient + "' is not finite";
        if (options.skip_nonfinite && ++skipped_steps <= 100) {
          std::fprintf(stderr, "\nwarning: %s at epoch %lld, step %lld; skipping this step\n", what.c_str(),
                       static_cast<long long>(epoch + 1), static_cast<long long>(position.global_step));
          ++step_in_epoch;
          continue;
        }
        throw Error(cct::detail::concat(what, " at epoch ", epoch + 1, ", step ", position.global_step,
                                        "; training stopped. ",
                                        run.has("last.safetensors") ? "The last good checkpoint is " + last_path
                                                                    : std::string("No checkpoint was saved yet"),
                                        ". Try a lower --lr, --clip-grad 1, or --skip-nonfinite"));
      }
      if (options.clip_grad > 0) optim::clip_grad_norm_(model.named_parameters(), options.clip_grad);
      optimizer.step();
      if (ema) ema->update(position.global_step);
      compute_seconds += detail::seconds_since(moment);
      ++position.global_step;
      ++step_in_epoch;

      const int64_t size = step.labels.size(0);
      loss_sum += static_cast<double>(loss_value) * static_cast<double>(size);
      const int64_t classes = step.logits.size(1);
      for (int64_t i = 0; i < size; ++i) {
        const float* row = step.logits.data() + i * classes;
        correct += (std::max_element(row, row + classes) - row) == step.labels.data()[i];
      }
      counted += size;
      seen += size;
      bar.update(step_in_epoch,
                 {{"loss", loss_sum / static_cast<double>(counted)},
                  {"acc", 100.0 * static_cast<double>(correct) / static_cast<double>(counted)},
                  {"lr", optimizer.lr()}},
                 seen * world.size());  // the job's rate, all ranks together
    }
    if (world.size() > 1) {  // the epoch's figures over all ranks' samples
      loss_sum = world.sum(loss_sum);
      correct = world.sum(correct);
      counted = world.sum(counted);
      seen = world.sum(seen);
    }
    const double train_loss = loss_sum / static_cast<double>(std::max<int64_t>(1, counted));
    const double train_acc = 100.0 * static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(1, counted));
    bar.finish({{"loss", train_loss}, {"acc", train_acc}});
    const double epoch_seconds = detail::seconds_since(epoch_start);

    json::Object line;
    line.set("epoch", json::Value(epoch + 1));
    line.set("lr", json::Value(optimizer.lr()));
    line.set("train_loss", json::Value(train_loss));
    line.set("train_acc", json::Value(train_acc));
    double selection = train_acc;
    const auto validation_start = std::chrono::steady_clock::now();
    if (task.eval_batches(Split::kValidation) > 0) {
      const WeightAverage::Swap swapped(ema);
      const Evaluation val = evaluate(task, Split::kValidation, ema ? "  validation (EMA)" : "  validation", world);
      line.set("val_loss", json::Value(val.loss));
      line.set("val_acc", json::Value(val.top1));
      line.set("val_top5", json::Value(val.top5));
      selection = val.top1;
      std::printf("  validation%s: loss %.4f, top-1 %.2f%%, top-5 %.2f%%\n", ema ? " (EMA)" : "", val.loss, val.top1,
                  val.top5);
    }
    const double validation_seconds = detail::seconds_since(validation_start);

    position.epoch = epoch + 1;
    position.batch = 0;
    position.epoch_loss_sum = 0;
    position.epoch_correct = position.epoch_seen = 0;
    const bool improved = selection > position.best_accuracy;
    if (improved) {
      position.best_accuracy = selection;
      position.best_epoch = epoch + 1;
    }
    // Time fields last: everything before them is reproducible bit for bit.
    const double elapsed_minutes = detail::seconds_since(started) / 60.0;
    line.set("epoch_seconds", json::Value(epoch_seconds));
    line.set(task.unit() + "_per_s", json::Value(static_cast<double>(seen) / std::max(1e-9, epoch_seconds)));
    line.set("data_seconds", json::Value(data_seconds));
    line.set("compute_seconds", json::Value(compute_seconds));
    line.set("validation_seconds", json::Value(validation_seconds));
    if (world.size() > 1) line.set("allreduce_seconds", json::Value(allreduce_seconds));  // part of compute
    line.set("elapsed_minutes", json::Value(elapsed_minutes));
    // The line before the checkpoints: a crash after it repeats this epoch on resume, which cuts the line
    // off and writes it again; the other order would leave a checkpoint whose epoch has no line.
    if (root) metrics->append(line);
    // Best before last: a crash between the two then repeats this epoch on resume (and rewrites the same
    // best file) instead of leaving a last checkpoint that names an epoch best.safetensors never got.
    const auto checkpoint_start = std::chrono::steady_clock::now();
    if (improved) save(best_path);
    save(last_path);
    const double checkpoint_seconds = detail::seconds_since(checkpoint_start);
    if (root)
      write_curves_svg(run.curves_path(), read_metrics(metrics_path), task.title().empty() ? "training curves" : task.title());
    if (budgeted && !resume) {
      // Fit the epochs again to the mean pace of the whole epochs so far (training, validation and
      // checkpoints), which the first steps only sample, and which a shared machine changes as the run
      // goes. In the warm-up (whose rates do not depend on the run's length) the run stays the same as one
      // started with the new --epochs. Later, with a linear decay, the rest of the decay is re-drawn from the
      // rate reached now to min_lr at the new end (refit_step/refit_lr in config.json, which --resume
      // follows), so the rate never jumps; the last epoch is never re-fitted. A mean over all epochs keeps
      // one slow epoch from cutting the run short.
      const int64_t warmup_steps = options.warmup_epochs * steps_per_epoch;
      paced_seconds += epoch_seconds + validation_seconds + checkpoint_seconds;
      ++paced_epochs;
      const bool in_warmup = position.global_step <= warmup_steps;
      const bool redraw = options.schedule == "linear" && options.cooldown_epochs == 0;
      if ((in_warmup || redraw) && options.epochs - position.epoch >= 2) {
        const int64_t val_batches = task.eval_batches(Split::kValidation);
        if (val_batches > 0)
          test_seconds_estimate = validation_seconds * static_cast<double>(task.eval_batches(Split::kTest)) /
                                  static_cast<double>(val_batches);
        const double pace = paced_seconds / static_cast<double>(paced_epochs);
        const double left = options.time_budget * 60 * 0.97 - elapsed_minutes * 60 - test_seconds_estimate;
        const int64_t refit = world.broadcast_value(
            position.epoch + std::max<int64_t>(1, static_cast<int64_t>(std::floor(left / pace))));
        if (refit != options.epochs && (!in_warmup || refit - options.cooldown_epochs > options.warmup_epochs)) {
          std::printf("  time budget: %.1f s per epoch so far: %lld epochs instead of %lld%s%lld%s\n", pace,
                      static_cast<long long>(refit), static_cast<long long>(options.epochs),
                      in_warmup ? " (reproduce with --epochs " : "; the decay from step ",
                      static_cast<long long>(in_warmup ? refit : position.global_step),
                      in_warmup ? ")" : " on is re-drawn to end there");
          if (!in_warmup) {
            options.refit_lr = lr_at(position.global_step);
            options.refit_step = position.global_step;
          }
          options.epochs = refit;
          options.to_json(settings);
          settings.set("fitted_total_steps", json::Value(options.epochs * steps_per_epoch));
          if (root) run.write_config(settings);
          args_json = args_of(settings);
          lr_at = make_schedule(options, steps_per_epoch);
        }
      }
    }
    if (budgeted)
      std::printf("  time budget: %.1f of %.1f minutes used, %.1f left\n", elapsed_minutes, options.time_budget,
                  options.time_budget - elapsed_minutes);
  }

  // Final numbers: the best checkpoint on the test set (with --ema, its averaged weights).
  world.barrier();  // rank 0's last checkpoints are complete before any rank reads them
  const bool has_best = world.broadcast_value(static_cast<int64_t>(run.has("best.safetensors"))) != 0;
  if (has_best) task.load_weights(best_path);
  else if (ema) ema->swap();
  const Evaluation test = evaluate(task, Split::kTest, "test", world);
  if (!root) return 0;
  const std::string title = task.title();
  write_confusion_matrix_svg(run.confusion_path(), test.confusion, task.class_names(),
                             title.empty() ? "confusion matrix" : title + " (test)");
  const double minutes = detail::seconds_since(started) / 60.0;
  json::Object final_result;
  final_result.set("model", json::Value(task.model_name()));
  task.describe_final(final_result);
  final_result.set("epochs", json::Value(options.epochs));
  final_result.set("best_epoch", json::Value(position.best_epoch));
  final_result.set("best_val_acc", finite_or_null(position.best_accuracy));
  final_result.set("test_loss", finite_or_null(test.loss));
  final_result.set("test_acc", finite_or_null(test.top1));
  final_result.set("test_top5", finite_or_null(test.top5));
  final_result.set("test_size", json::Value(test.count));
  final_result.set("minutes", json::Value(minutes));
  if (budgeted) final_result.set("time_budget_minutes", json::Value(options.time_budget));
  final_result.set("confusion_matrix", test.confusion.to_json());
  io::write_file_atomic(run.final_path(), json::dump(json::Value(final_result), 2) + "\n");
  std::printf("\n%s", test.confusion.to_string(task.class_names()).c_str());
  std::printf("test (best epoch %lld): top-1 %.2f%%, top-5 %.2f%%, loss %.4f on %lld %s; %.1f minutes; outputs in %s/\n",
              static_cast<long long>(position.best_epoch), test.top1, test.top5, test.loss,
              static_cast<long long>(test.count), task.unit() == "img" ? "images" : "sequences", minutes,
              run.path().c_str());
  return 0;
}

}  // namespace cct::train
