// bench_matmul: GFLOP/s of cct::matmul on a square float product and of cct::linear on the shapes a
// CCT encoder layer runs (batch 128), with 1 and 2 threads unless --threads picks one count.
//
//   bench_matmul [--threads N] [--size S] [--runs R]
//
// Each case runs once to warm up (page faults, caches, thread team), then R timed runs; the median,
// min and max are reported. A product of M×K by K×N counts 2·M·N·K floating-point operations.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <cct/core/parallel.hpp>
#include <cct/core/tensor.hpp>
#include <cct/ops/matmul.hpp>

namespace {

struct Options {
  std::vector<int> thread_counts{1, 2};
  int64_t size = 1024;
  int runs = 10;
};

[[noreturn]] void usage(const char* program) {
  std::fprintf(stderr, "usage: %s [--threads N] [--size S] [--runs R]\n", program);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") usage(argv[0]);
    if (i + 1 >= argc) usage(argv[0]);
    const long value = std::strtol(argv[++i], nullptr, 10);
    if (value <= 0) usage(argv[0]);
    if (arg == "--threads") options.thread_counts = {static_cast<int>(value)};
    else if (arg == "--size") options.size = value;
    else if (arg == "--runs") options.runs = static_cast<int>(value);
    else usage(argv[0]);
  }
  return options;
}

struct Timing {
  double median, min, max;  // seconds
};

Timing time_runs(int runs, const std::function<void()>& fn) {
  fn();  // warm-up
  std::vector<double> seconds;
  for (int r = 0; r < runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  const size_t n = seconds.size();
  const double median = n % 2 ? seconds[n / 2] : 0.5 * (seconds[n / 2 - 1] + seconds[n / 2]);
  return {median, seconds.front(), seconds.back()};
}

void report(const char* label, int threads, double flops, const Timing& t) {
  std::printf("%-44s threads=%d  median %8.2f ms (min %8.2f, max %8.2f)  %7.1f GFLOP/s (best %7.1f)\n", label,
              threads, 1e3 * t.median, 1e3 * t.min, 1e3 * t.max, flops / t.median * 1e-9, flops / t.min * 1e-9);
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  cct::NoGradGuard no_grad;
  cct::Generator gen(2024);

  const int64_t n = options.size;
  const auto a = cct::Tensor<float>::uniform({n, n}, -1, 1, gen);
  const auto b = cct::Tensor<float>::uniform({n, n}, -1, 1, gen);

  // CCT encoder projections, as (rows = batch·tokens) × in × out: qkv for CCT-2 (dim 128, 64 tokens),
  // then qkv and the two MLP layers for CCT-7 (dim 256, 256 tokens, MLP ratio 2).
  struct LinearCase {
    const char* label;
    int64_t batch, tokens, in, out;
  };
  const std::vector<LinearCase> encoder = {{"linear (128*64) x 128 -> 384  (qkv, dim 128)", 128, 64, 128, 384},
                                           {"linear (128*256) x 256 -> 768 (qkv, dim 256)", 128, 256, 256, 768},
                                           {"linear (128*256) x 256 -> 512 (mlp fc1)", 128, 256, 256, 512},
                                           {"linear (128*256) x 512 -> 256 (mlp fc2)", 128, 256, 512, 256}};

  std::printf("cct %s, float32, %d timed runs after one warm-up, %d hardware threads available\n",
              CCT_VERSION_STRING, options.runs, cct::num_threads());
  for (int threads : options.thread_counts) {
    cct::set_num_threads(threads);
    const std::string label = "matmul " + std::to_string(n) + "x" + std::to_string(n) + "x" + std::to_string(n);
    report(label.c_str(), threads, 2.0 * n * n * n, time_runs(options.runs, [&] { cct::matmul(a, b); }));
  }
  for (const LinearCase& c : encoder) {
    const auto x = cct::Tensor<float>::uniform({c.batch, c.tokens, c.in}, -1, 1, gen);
    const auto weight = cct::Tensor<float>::uniform({c.out, c.in}, -0.1, 0.1, gen);
    const auto bias = cct::Tensor<float>::uniform({c.out}, -0.1, 0.1, gen);
    const double flops = 2.0 * c.batch * c.tokens * c.in * c.out;
    for (int threads : options.thread_counts) {
      cct::set_num_threads(threads);
      report(c.label, threads, flops, time_runs(options.runs, [&] { cct::linear(x, weight, bias); }));
    }
  }
  return 0;
}
