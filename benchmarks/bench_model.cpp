// bench_model: img/s of a registered model, inference (eval, no grad) and a full training step
// (forward, label-smoothed cross-entropy, backward, AdamW update), median/min/max after warm-up,
// with the achieved GFLOP/s and the process's peak resident memory.
//
//   bench_model [--model cct_2_3x2_32] [--batch 128] [--threads 2] [--iters 10] [--warmup 2]
//               [--budget-s S] [--mode both|train|infer] [--precision fp32|bf16]
//
// --precision bf16 runs the float products (linear, convolutions, attention products, forward and
// backward) with bf16 operands and fp32 accumulation (cct::set_default_precision); weights, gradients
// and AdamW state stay fp32. Without AVX512_BF16 it runs a portable path that is slower than fp32.
//
// --budget-s S stops timing a phase once its timed runs add up to S seconds (at least one is timed),
// which keeps long steps affordable in a side-by-side run (see time_runs).
//
// GFLOP/s come from the model's MAC count (models::model_stats): a forward pass costs
// 2 · (conv + linear + attention-product MACs) FLOPs per image, a training step about three times
// that (the backward pass computes two products per forward one: the input's and the weight's
// gradient). Element-wise work (norms, softmax, GELU, the optimiser) is not counted, so the figure
// is "useful matmul-equivalent work per second", comparable across implementations of the same model.
//
// Inference runs first, then training; peak RSS is read after each phase, so `peak_rss_infer_mb` is
// the inference peak and `peak_rss_mb` the whole run's (training's, which is larger). The last line,
// `RESULT {json}`, carries every figure for scripts (benchmarks/run_side_by_side.sh).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <cct/cct.hpp>

namespace {

struct Timing {
  double median = 0, min = 0, max = 0;  // seconds
  int runs = 0;                         // timed runs (0: the phase did not run)
};

template <typename Fn>
double seconds_of(Fn& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// `warmup` untimed runs, then up to `iters` timed ones. With a budget (seconds, > 0) the timed runs stop
// once they add up to it (at least one is timed), and a warm-up run that takes more than half the budget
// ends the warm-up and counts as a timed run: against a step that long the first call's one-off costs
// (page faults, first allocations) are negligible, and a second multi-minute step would buy nothing.
template <typename Fn>
Timing time_runs(int warmup, int iters, double budget, Fn&& fn) {
  std::vector<double> seconds;
  double total = 0;
  for (int i = 0; i < warmup; ++i) {
    const double run = seconds_of(fn);
    if (budget > 0 && run > budget / 2) {
      seconds.push_back(run);
      total = run;
      break;
    }
  }
  while (static_cast<int>(seconds.size()) < iters && !(budget > 0 && total >= budget)) {
    seconds.push_back(seconds_of(fn));
    total += seconds.back();
  }
  std::sort(seconds.begin(), seconds.end());
  const size_t n = seconds.size();
  const double median = n % 2 ? seconds[n / 2] : 0.5 * (seconds[n / 2 - 1] + seconds[n / 2]);
  return {median, seconds.front(), seconds.back(), static_cast<int>(n)};
}

// Linux reports ru_maxrss in KiB.
double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

// User + system CPU seconds of this process so far (all threads); the side-by-side script compares it
// with the machine's busy time to spot other load.
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + 1e-6 * (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

void print_phase(const char* label, int64_t batch, double flops_per_image, const Timing& t) {
  std::printf("%-10s %8.1f img/s  %7.1f GFLOP/s  (median %.1f ms, min %.1f, max %.1f, %d runs)\n", label,
              batch / t.median, flops_per_image * batch / t.median * 1e-9, 1e3 * t.median, 1e3 * t.min, 1e3 * t.max,
              t.runs);
}

std::string phase_json(int64_t batch, double flops_per_image, const Timing& t) {
  if (t.runs == 0) return "null";
  char buffer[256];
  std::snprintf(buffer, sizeof buffer,
                "{\"img_per_s\": %.3f, \"gflops\": %.3f, \"median_ms\": %.3f, \"min_ms\": %.3f, \"max_ms\": %.3f, "
                "\"runs\": %d}",
                batch / t.median, flops_per_image * batch / t.median * 1e-9, 1e3 * t.median, 1e3 * t.min,
                1e3 * t.max, t.runs);
  return buffer;
}

[[noreturn]] void usage(const char* program) {
  std::fprintf(stderr,
               "usage: %s [--model NAME] [--batch B] [--threads T] [--iters N] [--warmup W] [--budget-s S] "
               "[--mode both|train|infer] [--precision fp32|bf16]\n",
               program);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_name = "cct_2_3x2_32";
  int64_t batch = 128;
  int threads = 2, iters = 10, warmup = 2;
  double budget = 0;
  std::string mode = "both";
  cct::Precision precision = cct::Precision::kFP32;
  for (int i = 1; i < argc; i += 2) {
    const std::string key = argv[i];
    if (key == "--help" || key == "-h" || i + 1 >= argc) usage(argv[0]);
    const std::string value = argv[i + 1];
    if (key == "--model") model_name = value;
    else if (key == "--batch") batch = std::atoll(value.c_str());
    else if (key == "--threads") threads = std::atoi(value.c_str());
    else if (key == "--iters") iters = std::atoi(value.c_str());
    else if (key == "--warmup") warmup = std::atoi(value.c_str());
    else if (key == "--budget-s") budget = std::atof(value.c_str());
    else if (key == "--mode") mode = value;
    else if (key == "--precision" && (value == "fp32" || value == "bf16")) precision = cct::parse_precision(value);
    else usage(argv[0]);
  }
  if (batch < 1 || threads < 1 || iters < 1 || warmup < 0 || budget < 0 ||
      (mode != "both" && mode != "train" && mode != "infer"))
    usage(argv[0]);

  const double baseline_rss = peak_rss_mb();
  cct::set_num_threads(threads);
  cct::set_default_precision(precision);
  const bool bf16_fast = cct::kernels::bf16_fast_path_available();
  auto model = cct::models::create(model_name);
  const auto& config = model->config();
  const cct::models::ModelStats stats = cct::models::model_stats(*model);
  const double forward_flops = 2.0 * static_cast<double>(stats.macs + stats.attention_macs);
  const double train_flops = 3.0 * forward_flops;

  cct::Generator gen(1);
  auto images = cct::Tensor<float>::randn({batch, config.in_channels, config.image_size, config.image_size}, gen);
  auto labels = cct::Tensor<int64_t>::empty({batch});
  for (int64_t i = 0; i < batch; ++i) labels(i) = gen.randint(config.num_classes);

  std::printf("cct %s: model %s (%.3f GMACs/image incl. attention), batch %lld, threads %d (OpenMP max %d), "
              "precision %s%s, up to %d iterations after %d warm-up\n",
              CCT_VERSION_STRING, model_name.c_str(), (stats.macs + stats.attention_macs) * 1e-9,
              static_cast<long long>(batch), threads, cct::num_threads(), cct::precision_name(precision),
              precision == cct::Precision::kBF16 ? (bf16_fast ? " (AVX512_BF16)" : " (portable path)") : "", iters,
              warmup);

  Timing infer, train;
  double infer_rss = 0;
  if (mode != "train") {
    model->eval();
    infer = time_runs(warmup, iters, budget, [&] {
      cct::NoGradGuard no_grad;
      model->forward(images);
    });
    infer_rss = peak_rss_mb();
    print_phase("inference", batch, forward_flops, infer);
  }
  if (mode != "infer") {
    model->train();
    cct::optim::AdamW<float> optimizer(cct::optim::param_groups_no_decay_for_1d(model->named_parameters(), 0.05),
                                       {5e-4});
    train = time_runs(warmup, iters, budget, [&] {
      auto loss = cct::cross_entropy(model->forward(images), labels, 0.1);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
    });
    print_phase("training", batch, train_flops, train);
  }
  const double peak_rss = peak_rss_mb();
  std::printf("peak RSS %.0f MB (inference phase %.0f MB, at start %.0f MB)\n", peak_rss, infer_rss, baseline_rss);
  std::printf("RESULT {\"impl\": \"cct\", \"model\": \"%s\", \"precision\": \"%s\", \"bf16_fast_path\": %s, "
              "\"batch\": %lld, \"threads\": %d, \"iters\": %d, "
              "\"warmup\": %d, \"macs_per_image\": %lld, \"attention_macs_per_image\": %lld, \"infer\": %s, "
              "\"train\": %s, \"peak_rss_mb\": %.1f, \"peak_rss_infer_mb\": %.1f, \"baseline_rss_mb\": %.1f, "
              "\"cpu_s\": %.2f}\n",
              model_name.c_str(), cct::precision_name(precision), bf16_fast ? "true" : "false",
              static_cast<long long>(batch), threads, iters, warmup,
              static_cast<long long>(stats.macs), static_cast<long long>(stats.attention_macs),
              phase_json(batch, forward_flops, infer).c_str(), phase_json(batch, train_flops, train).c_str(), peak_rss,
              infer_rss, baseline_rss, cpu_seconds());
  return 0;
}
