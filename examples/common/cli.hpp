// The command-line pieces both trainers share: the training-loop options (cct::train::LoopOptions),
// a positive-number check with a readable message, starting or resuming a run folder, and running a
// subcommand with Ctrl-C handling and one "error: ..." line for anything that goes wrong.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>
#include <algorithm>

#include <CLI/CLI.hpp>

#include <cct/core/generator.hpp>
#include <cct/core/parallel.hpp>
#include <cct/data/shard.hpp>
#include <cct/distributed/communicator.hpp>
#include <cct/io/json.hpp>
#include <cct/train/fit.hpp>
#include <cct/train/run_folder.hpp>

namespace trainer_cli {

// The processes this trainer runs in: one, or the MPI job it joined under mpirun (examples/common/
// mpi_job.hpp sets it in main). `abort_job` ends every rank after an error, so none waits forever.
inline cct::distributed::Communicator* current_world = &cct::distributed::Communicator::local();
inline std::function<void(int)> abort_job;
inline cct::distributed::Communicator& world() { return *current_world; }

// This rank's share of a data set: `pad` for training (every rank the same number of steps), not for
// evaluation (no sample counted twice).
inline cct::data::Shard data_shard(bool pad) { return {world().rank(), world().size(), pad}; }

// "--epochs: must be a positive number, got 0" (CLI::PositiveNumber's message quotes DBL_MAX as the bound).
inline const CLI::Validator& positive() {
  static const CLI::Validator validator(
      [](std::string& input) -> std::string {
        double value = 0;
        const bool number = CLI::detail::lexical_cast(input, value);
        return number && value > 0 ? std::string() : "must be a positive number, got " + input;
      },
      "POSITIVE", "positive");
  return validator;
}

// The options of cct::train::fit, with `sample` naming what a batch holds ("images", "sentences").
inline void add_loop_options(CLI::App* command, cct::train::LoopOptions& loop, const std::string& sample) {
  command->add_option("--epochs", loop.epochs, "training epochs")->capture_default_str()->check(positive());
  command->add_option("--batch-size", loop.batch_size, sample + " per step")->capture_default_str()->check(positive());
  command->add_option("--lr", loop.lr, "peak learning rate (AdamW)")->capture_default_str()->check(positive());
  command->add_option("--min-lr", loop.min_lr, "learning rate at the end of the cosine")->capture_default_str();
  command->add_option("--weight-decay", loop.weight_decay, "AdamW decoupled weight decay (not on biases and 1-D params)")
      ->capture_default_str();
  command->add_option("--warmup-epochs", loop.warmup_epochs, "linear warm-up epochs")->capture_default_str();
  command->add_option("--cooldown-epochs", loop.cooldown_epochs, "epochs at --min-lr after the cosine")
      ->capture_default_str();
  command->add_option("--label-smoothing", loop.label_smoothing, "label smoothing of the cross-entropy")
      ->capture_default_str();
  command->add_option("--clip-grad", loop.clip_grad, "clip the global gradient norm to this (0: off)")
      ->capture_default_str();
  command->add_option("--threads", loop.threads, "compute threads (default: all cores)")->capture_default_str();
  command->add_option("--seed", loop.seed, "seed for weights, data order, validation split, augmentation and dropout")
      ->capture_default_str();
  command->add_option("--val-split", loop.val_split,
                      "fraction of the training set held out for model selection, for data without a validation "
                      "part (AG News: any value above 0 validates on its dev.csv instead); 0: train on all of it and "
                      "test the epoch with the best training accuracy (the test set is used only for the final numbers)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.9));
  command->add_flag("--skip-nonfinite", loop.skip_nonfinite,
                    "skip a step whose loss or gradient is NaN/inf instead of stopping");
  command->add_option("--time-budget", loop.time_budget,
                      "minutes for the whole run (data, training, validation, test): the trainer measures its "
                      "speed in the first steps and fits --epochs to the budget (0: off)")
      ->capture_default_str();
  command->add_option("--schedule", loop.schedule, "learning rate after the warm-up: cosine or linear (to --min-lr)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cosine", "linear"}));
  command->add_option("--ema", loop.ema,
                      "keep an exponential moving average of the weights with this decay (e.g. 0.999) and "
                      "validate, test and save it (0: off)")
      ->capture_default_str();
  command->add_option("--precision", loop.precision,
                      "auto, bf16 or fp32: bf16 runs the big products (linear, convolutions, attention) on bf16 "
                      "operands with fp32 accumulation, weights and optimiser state stay fp32, no loss scaling is "
                      "needed; auto picks bf16 where the CPU has AVX512_BF16")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "bf16", "fp32"}));
}

// The model's regularisation, the same three knobs in both trainers (timm's --drop, --attn-drop,
// --drop-path).
inline void add_regularisation_options(CLI::App* command, double& dropout, double& attention_dropout,
                                       double& stochastic_depth) {
  command->add_option("--dropout", dropout, "dropout after the positional embedding and in the MLPs")
      ->capture_default_str();
  command->add_option("--attention-dropout", attention_dropout, "dropout of the attention weights")
      ->capture_default_str();
  command->add_option("--stochastic-depth", stochastic_depth, "largest drop-path rate (last layer)")
      ->capture_default_str();
}

// With --resume, the flags given on the command line against the saved run's settings: --epochs sets a
// new end (so a finished run can be extended), --time-budget gives the continuation that many minutes,
// and any other flag whose value differs from the saved one is refused, naming both values, instead of
// being silently ignored.
template <typename Options>
void apply_resume_flags(const CLI::App& command, const Options& given, Options& saved, const std::string& config_path) {
  const cct::json::Object given_json = given.to_json(), saved_json = saved.to_json();
  for (const CLI::Option* option : command.get_options()) {
    if (option->count() == 0) continue;
    const std::string name = option->get_name();
    if (name == "--resume" || name == "--out" || name.rfind("--", 0) != 0) continue;
    std::string key = name.substr(2);
    std::replace(key.begin(), key.end(), '-', '_');
    if (key == "epochs") {
      saved.loop.epochs = given.loop.epochs;
      continue;
    }
    if (key == "time_budget") {
      saved.loop.time_budget = given.loop.time_budget;
      saved.loop.extend_by_budget = true;
      continue;
    }
    const cct::json::Value* now = given_json.find(key);
    const cct::json::Value* before = saved_json.find(key);
    if (now && before && cct::json::dump(*now) != cct::json::dump(*before))
      throw cct::Error(name + " " + cct::json::dump(*now) + " differs from the run being resumed (" + name + " " +
                       cct::json::dump(*before) + " in " + config_path +
                       "); --resume continues a run with its own settings (only --epochs and --time-budget may "
                       "extend it): drop the flag, or start a new run with another --out");
  }
}

// Starts a run in options.out, or with options.resume takes the saved settings of the run there (so the
// continuation is the same run); checks every option before any folder is made, locks the folder
// against a second run, sets threads and seed, and writes config.json before any work.
template <typename Options>
cct::train::RunFolder start_run(Options& options, const CLI::App& command) {
  if (options.resume) {
    const Options given = options;
    const std::string out = options.out;
    options = Options::from_json(cct::train::RunFolder::read_saved_config(out));
    options.out = out;
    options.resume = true;
    apply_resume_flags(command, given, options, out + "/config.json");
    std::printf("resuming %s/last.safetensors with its saved settings (%s/config.json)\n", out.c_str(), out.c_str());
  }
  options.loop.validate();
  options.validate();
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (options.loop.threads > 4 * cores) {
    std::printf("note: --threads %d is more than 4 per core on this machine (%d cores); using %d\n", options.loop.threads,
                cores, 4 * cores);
    options.loop.threads = 4 * cores;
  }
  if (options.loop.threads > 0) cct::set_num_threads(options.loop.threads);
  cct::manual_seed(options.loop.seed);
  cct::train::apply_precision(options.loop.precision);
  // Rank 0 makes, locks and writes the folder; the others use it once it is there (a shared folder).
  cct::distributed::Communicator& job = world();
  if (!job.is_root()) {
    job.barrier();
    return cct::train::RunFolder(options.out);
  }
  cct::train::RunFolder run(options.out);
  run.lock();
  cct::json::Object settings = options.to_json();
  if (job.size() > 1) {
    settings.set("world_size", cct::json::Value(static_cast<int64_t>(job.size())));
    std::printf("data-parallel: %d ranks x %lld per step = %lld per step in all (scale --lr with the global batch "
                "if you change it; see README, Training on several machines)\n",
                job.size(), static_cast<long long>(options.loop.batch_size),
                static_cast<long long>(options.loop.batch_size * job.size()));
  }
  run.write_config(settings);
  job.barrier();
  return run;
}

// Parses the command line. Usage errors print CLI11's message and exit 2 (help and --version: 0),
// as docs/robustness.md says, instead of CLI11's own codes 105-114.
inline int parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }
  return -1;  // parsed: run the command
}

// Set by SIGINT / SIGTERM while a command runs: the training loop saves a checkpoint and stops.
inline volatile std::sig_atomic_t interrupted = 0;
inline void on_interrupt(int) { interrupted = 1; }

// Runs `command` with Ctrl-C handling, and turns any exception into one "error: ..." line (exit 1).
inline int run_command(const std::function<int()>& command) {
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  try {
    return command();
  } catch (const std::exception& error) {
    std::fflush(stdout);
    const std::string where = world().where();
    std::fprintf(stderr, "error%s: %s\n", where.empty() ? "" : (" (" + where + ")").c_str(), error.what());
    std::fflush(stderr);
    if (world().size() > 1 && abort_job) abort_job(1);  // the other ranks would wait in their next collective
    return 1;
  }
}

// The options every predict command has: how many classes to show, JSON output, threads.
inline void add_predict_options(CLI::App* command, int64_t& top_k, bool& json, int& threads, const std::string& per) {
  command->add_option("--top-k", top_k, "classes to show per " + per)->capture_default_str()->check(positive());
  command->add_flag("--json", json, "machine-readable output with every probability and the raw logits");
  command->add_option("--threads", threads, "compute threads")->capture_default_str();
}

struct Subcommand {
  CLI::App* command;
  std::function<int()> run;
};

// `plot --run DIR`: draws DIR/curves.svg again from DIR/metrics.jsonl with this version's plots (loss and
// accuracy per epoch, accuracy against minutes), e.g. for a run written by an older version.
inline Subcommand add_plot_command(CLI::App& app, std::string& run_folder) {
  CLI::App* command = app.add_subcommand("plot", "draw a run's curves.svg again from its metrics.jsonl");
  command->add_option("--run", run_folder, "the run's output folder (its --out)")->required();
  return {command, [&run_folder] {
            std::error_code error;
            if (!std::filesystem::is_directory(run_folder, error))
              throw cct::IoError("plot --run: '" + run_folder + "' is not a run folder (give a training run's --out)");
            const cct::train::RunFolder run(run_folder);
            const std::vector<cct::json::Object> records = cct::train::read_metrics(run.metrics_path());
            if (records.empty())
              throw cct::IoError("no epochs in '" + run.metrics_path() + "': nothing to plot");
            cct::train::write_curves_svg(run.curves_path(), records, "training curves");
            std::printf("%s: %zu epochs drawn\n", run.curves_path().c_str(), records.size());
            return 0;
          }};
}


// main() of a trainer: parse, then run the chosen subcommand with Ctrl-C handling and error lines.
inline int parse_and_run(CLI::App& app, int argc, char** argv, const std::vector<Subcommand>& subcommands) {
  if (const int code = parse(app, argc, argv); code >= 0) return code;
  return run_command([&] {
    for (const Subcommand& subcommand : subcommands)
      if (*subcommand.command) return subcommand.run();
    return 2;
  });
}

}  // namespace trainer_cli
