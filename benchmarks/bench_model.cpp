// bench_model: img/s of a registered model, inference (eval, no grad) and a full training step
// (forward, label-smoothed cross-entropy, backward, AdamW update), median/min/max after warm-up.
//
//   bench_model [--model cct_2_3x2_32] [--batch 128] [--threads 2] [--iters 10] [--warmup 2]
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
  double median, min, max;
};

template <typename Fn>
Timing time_runs(int warmup, int iters, Fn&& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> seconds;
  for (int i = 0; i < iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return {seconds[seconds.size() / 2], seconds.front(), seconds.back()};
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_name = "cct_2_3x2_32";
  int64_t batch = 128;
  int threads = 2, iters = 10, warmup = 2;
  std::string mode = "both";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--model") model_name = value;
    else if (key == "--batch") batch = std::atoll(value.c_str());
    else if (key == "--threads") threads = std::atoi(value.c_str());
    else if (key == "--iters") iters = std::atoi(value.c_str());
    else if (key == "--warmup") warmup = std::atoi(value.c_str());
    else if (key == "--mode") mode = value;
    else {
      std::fprintf(stderr, "usage: %s [--model NAME] [--batch B] [--threads T] [--iters N] [--warmup W] [--mode both|train|infer]\n", argv[0]);
      return 2;
    }
  }
  cct::set_num_threads(threads);
  auto model = cct::models::create(model_name);
  const auto& config = model->config();
  cct::Generator gen(1);
  auto images = cct::Tensor<float>::randn({batch, config.in_channels, config.image_size, config.image_size}, gen);
  auto labels = cct::Tensor<int64_t>::empty({batch});
  for (int64_t i = 0; i < batch; ++i) labels(i) = gen.randint(config.num_classes);

  std::printf("model %s, batch %lld, threads %d, %d iterations after %d warm-up\n", model_name.c_str(),
              static_cast<long long>(batch), threads, iters, warmup);
  if (mode != "train") {
    model->eval();
    const Timing t = time_runs(warmup, iters, [&] {
      cct::NoGradGuard no_grad;
      model->forward(images);
    });
    std::printf("inference: %8.1f img/s (median %.1f ms, min %.1f, max %.1f)\n", batch / t.median, 1e3 * t.median,
                1e3 * t.min, 1e3 * t.max);
  }
  if (mode != "infer") {
    model->train();
    cct::optim::AdamW<float> optimizer(cct::optim::param_groups_no_decay_for_1d(model->named_parameters(), 0.05),
                                       {5e-4});
    const Timing t = time_runs(warmup, iters, [&] {
      auto loss = cct::cross_entropy(model->forward(images), labels, 0.1);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
    });
    std::printf("training:  %8.1f img/s (median %.1f ms, min %.1f, max %.1f)\n", batch / t.median, 1e3 * t.median,
                1e3 * t.min, 1e3 * t.max);
  }
  std::printf("peak RSS %.0f MB\n", peak_rss_mb());
  return 0;
}
