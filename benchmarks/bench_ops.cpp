// bench_ops: per-op micro-benchmarks of the hot ops of CCT-2/3x2 and CCT-7/3x1 at batch 128, to show
// where the time goes and how far each op is from the machine's limits.
//
//   bench_ops [--threads N] [--batch B] [--runs R] [--filter TEXT]
//
// Without --threads every case runs with 1 and then 2 threads. --filter keeps the cases whose label
// contains TEXT (e.g. --filter attention). Each case runs once to warm up, then R timed runs; the
// median and min are reported.
//
// Compute-bound ops report GFLOP/s (a product of M×K by K×N counts 2·M·N·K FLOPs; a "fwd+bwd" row
// counts the products the backward pass computes as well). Memory-bound ops (layer_norm, softmax,
// GELU, max-pool) report GB/s of the minimum traffic: each input tensor read once and each output
// written once (forward: x in, y out; backward: the saved tensor and the incoming gradient in, the
// input's gradient out). Three probes give the ceilings to compare with: the fp32 FMA peak of the cores
// (independent vector multiply-adds, no memory), the bf16 peak (independent `vdpbf16ps`, bf16 pairs into
// fp32 accumulators, 64 FLOPs each; only where the CPU has AVX512_BF16) and a streaming copy (memory
// bandwidth). Every GFLOP/s row also says what fraction of both peaks it reaches, at its thread count.
//
// Where the CPU has AVX512_BF16, every compute-bound row is followed by a "bf16" twin: the same op under
// cct::PrecisionGuard(kBF16) (bf16 operands, fp32 accumulation), with the same FLOP count.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <cct/cct.hpp>

namespace {

struct Options {
  std::vector<int> thread_counts{1, 2};
  int64_t batch = 128;
  int runs = 5;
  std::string filter;
};

[[noreturn]] void usage(const char* program) {
  std::fprintf(stderr, "usage: %s [--threads N] [--batch B] [--runs R] [--filter TEXT]\n", program);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h" || i + 1 >= argc) usage(argv[0]);
    const std::string value = argv[++i];
    if (arg == "--filter") {
      options.filter = value;
      continue;
    }
    const long number = std::strtol(value.c_str(), nullptr, 10);
    if (number <= 0) usage(argv[0]);
    if (arg == "--threads") options.thread_counts = {static_cast<int>(number)};
    else if (arg == "--batch") options.batch = number;
    else if (arg == "--runs") options.runs = static_cast<int>(number);
    else usage(argv[0]);
  }
  return options;
}

struct Timing {
  double median, min;  // seconds
};

Timing time_runs(int runs, const std::function<void()>& fn) {
  fn();  // warm-up: page faults, caches, the thread team
  std::vector<double> seconds;
  for (int r = 0; r < runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  const size_t n = seconds.size();
  return {n % 2 ? seconds[n / 2] : 0.5 * (seconds[n / 2 - 1] + seconds[n / 2]), seconds.front()};
}

enum class Unit { kGflops, kGbytes };

// One benchmark: `work` FLOPs or bytes per call of `fn`. Cases with the same `step` are the products of
// one training step of an encoder layer; main also reports them together (their FLOPs over their times).
struct Case {
  std::string label;
  Unit unit;
  double work;
  std::function<void()> fn;
  std::string step = "";
};

// The fp32 and bf16 peaks (GFLOP/s) measured at one thread count; 0 where not measured.
struct Peaks {
  double fp32 = 0, bf16 = 0;
};

void report(const Case& c, int threads, const Timing& t, const Peaks& peaks) {
  const double rate = c.work / t.median * 1e-9, best = c.work / t.min * 1e-9;
  std::printf("%-66s threads=%d  median %9.3f ms (min %9.3f)  %8.1f %s (best %8.1f)", c.label.c_str(), threads,
              1e3 * t.median, 1e3 * t.min, rate, c.unit == Unit::kGflops ? "GFLOP/s" : "GB/s  ", best);
  if (c.unit == Unit::kGflops && c.label.rfind("peak:", 0) != 0) {
    if (peaks.fp32 > 0) std::printf("  %5.1f%% of fp32 peak", 100 * rate / peaks.fp32);
    if (peaks.bf16 > 0) std::printf("  %5.1f%% of bf16 peak", 100 * rate / peaks.bf16);
  }
  std::printf("\n");
  std::fflush(stdout);
}

std::string shape_text(const cct::Shape& shape) { return cct::shape_str(shape); }

// ---- ceilings ------------------------------------------------------------------------------------

// Independent multiply-adds on registers: each thread keeps 16 accumulators in flight, enough to cover
// the FMA latency on both pipes. Returns the sum so the compiler cannot drop the loop.
float fma_probe(int64_t iterations) {
#if defined(__AVX512F__)
  using Vec = __m512;
  constexpr int kLanes = 16;
  auto broadcast = [](float v) { return _mm512_set1_ps(v); };
  auto fma = [](Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); };
  auto lane0 = [](Vec a) { return _mm512_reduce_add_ps(a); };
#elif defined(__FMA__)
  using Vec = __m256;
  constexpr int kLanes = 8;
  auto broadcast = [](float v) { return _mm256_set1_ps(v); };
  auto fma = [](Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); };
  auto lane0 = [](Vec a) { return _mm256_cvtss_f32(a); };
#else
  (void)iterations;
  return 0.0f;
#endif
#if defined(__AVX512F__) || defined(__FMA__)
  (void)kLanes;
  Vec acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = broadcast(0.001f * static_cast<float>(i));
  const Vec multiplier = broadcast(0.999999f), addend = broadcast(1e-7f);
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < 16; ++i) acc[i] = fma(acc[i], multiplier, addend);
  float sum = 0;
  for (int i = 0; i < 16; ++i) sum += lane0(acc[i]);
  return sum;
#endif
}

// The bf16 ceiling: 16 independent `vdpbf16ps` chains (each 16 lanes × 2 pairs × multiply and add = 64
// FLOPs per instruction). Compiled for AVX512_BF16 by attribute, called only where CPUID has it.
#if CCT_HAVE_BF16_KERNEL
CCT_TARGET_AVX512_BF16 float dpbf16_probe(int64_t iterations) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x33d633d6);  // 1, 1e-7
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  float sum = 0;
  for (int i = 0; i < 16; ++i) sum += _mm512_reduce_add_ps(acc[i]);
  return sum;
}
#else
float dpbf16_probe(int64_t) { return 0.0f; }
#endif

constexpr int fma_lanes() {
#if defined(__AVX512F__)
  return 16;
#elif defined(__FMA__)
  return 8;
#else
  return 0;
#endif
}

// ---- the cases -------------------------------------------------------------------------------------

constexpr int64_t kBf16PeakIterations = 4'000'000;

struct EncoderShape {
  const char* model;
  int64_t tokens, dim, heads, mlp_hidden;
};

std::vector<Case> make_cases(int64_t batch, cct::Generator& gen) {
  std::vector<Case> cases;
  const EncoderShape encoders[] = {{"cct_2", 64, 128, 2, 128}, {"cct_7", 256, 256, 4, 512}};
  using cct::Tensor;

  // Ceilings. The FMA probe's length is fixed per thread; parallel_for gives each thread one chunk.
  if (fma_lanes() > 0) {
    constexpr int64_t kIterations = 4'000'000;
    auto sink = std::make_shared<std::vector<float>>(64);
    cases.push_back({std::string("peak: vector FMA, ") + std::to_string(fma_lanes() * 32) + "-bit, per thread",
                     Unit::kGflops, 0.0, [sink] {
                       const int threads = cct::num_threads();
                       cct::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
                         for (int64_t t = begin; t < end; ++t) (*sink)[t % 64] += fma_probe(kIterations);
                       });
                     }});
    // Work depends on the thread count: filled in by main.
    cases.back().work = -static_cast<double>(kIterations) * 16 * fma_lanes() * 2;
  }
  if (cct::kernels::cpu_has_avx512_bf16()) {
    auto sink = std::make_shared<std::vector<float>>(64);
    cases.push_back({"peak: vdpbf16ps (bf16 pairs -> fp32), 512-bit, per thread", Unit::kGflops, 0.0, [sink] {
                       cct::parallel_for(0, cct::num_threads(), 1, [&](int64_t begin, int64_t end) {
                         for (int64_t t = begin; t < end; ++t) (*sink)[t % 64] += dpbf16_probe(kBf16PeakIterations);
                       });
                     }});
    cases.back().work = -static_cast<double>(kBf16PeakIterations) * 16 * 64;
  }
  {
    const int64_t elements = int64_t(1) << 25;  // 128 MiB each way, far beyond the caches
    auto source = std::make_shared<Tensor<float>>(Tensor<float>::uniform({elements}, -1, 1, gen));
    auto target = std::make_shared<Tensor<float>>(Tensor<float>::empty({elements}));
    cases.push_back({"peak: streaming copy 128 MiB", Unit::kGbytes, 2.0 * elements * sizeof(float), [=] {
                       const float* in = source->data();
                       float* out = target->data();
                       cct::parallel_for(0, elements, 1 << 16, [&](int64_t begin, int64_t end) {
                         std::memcpy(out + begin, in + begin, (end - begin) * sizeof(float));
                       });
                     }});
  }

  // Encoder matmuls: forward y = x·Wᵀ (+ b), and the two backward products dX = dY·W, dW = dYᵀ·X.
  for (const EncoderShape& e : encoders) {
    struct Projection {
      const char* name;
      int64_t in, out;
    };
    std::vector<Projection> projections = {{"qkv", e.dim, 3 * e.dim}, {"proj", e.dim, e.dim}};
    if (e.mlp_hidden != e.dim) {
      projections.push_back({"fc1", e.dim, e.mlp_hidden});
      projections.push_back({"fc2", e.mlp_hidden, e.dim});
    } else {
      projections[1].name = "proj/fc1/fc2";
    }
    const int64_t rows = batch * e.tokens;
    for (const Projection& p : projections) {
      auto x = std::make_shared<Tensor<float>>(Tensor<float>::uniform({rows, p.in}, -1, 1, gen));
      auto w = std::make_shared<Tensor<float>>(Tensor<float>::uniform({p.out, p.in}, -0.1, 0.1, gen));
      auto b = std::make_shared<Tensor<float>>(Tensor<float>::uniform({p.out}, -0.1, 0.1, gen));
      auto dy = std::make_shared<Tensor<float>>(Tensor<float>::uniform({rows, p.out}, -1, 1, gen));
      const double flops = 2.0 * rows * p.in * p.out;
      const std::string dims = std::to_string(rows) + "x" + std::to_string(p.in) + "->" + std::to_string(p.out);
      const std::string prefix = std::string(e.model) + " " + p.name + " ";
      const std::string step = std::string(e.model) + " encoder layer";
      cases.push_back({prefix + "linear fwd " + dims, Unit::kGflops, flops, [=] { cct::linear(*x, *w, *b); }, step});
      cases.push_back({prefix + "dX=dY.W " + dims, Unit::kGflops, flops, [=] { cct::matmul(*dy, *w); }, step});
      cases.push_back({prefix + "dW=dYt.X " + dims, Unit::kGflops, flops, [=] { cct::matmul(*dy, *x, true, false); }, step});
    }
  }

  // Tokenizer convolutions (3x3, stride 1, padding 1): forward, and forward + backward. The first conv
  // sees the images (no input gradient: 2 products in all); the second one needs dX too (3 products).
  struct ConvShape {
    const char* label;
    int64_t in_channels, out_channels, size;
    bool input_grad;
  };
  const ConvShape convs[] = {{"cct_2 conv1", 3, 64, 32, false},
                             {"cct_2 conv2", 64, 128, 16, true},
                             {"cct_7 conv1", 3, 256, 32, false}};
  for (const ConvShape& c : convs) {
    auto x = std::make_shared<Tensor<float>>(Tensor<float>::uniform({batch, c.in_channels, c.size, c.size}, -1, 1, gen));
    auto w = std::make_shared<Tensor<float>>(Tensor<float>::uniform({c.out_channels, c.in_channels, 3, 3}, -0.1, 0.1, gen));
    auto dy = std::make_shared<Tensor<float>>(Tensor<float>::uniform({batch, c.out_channels, c.size, c.size}, -1, 1, gen));
    const double flops = 2.0 * batch * c.out_channels * c.in_channels * 9 * c.size * c.size;
    const std::string dims = shape_text(x->shape()) + " * " + shape_text(w->shape());
    cases.push_back({std::string(c.label) + " fwd " + dims, Unit::kGflops, flops, [=] {
                       cct::NoGradGuard no_grad;
                       cct::conv2d(*x, *w, Tensor<float>(), 1, 1);
                     }});
    cases.push_back({std::string(c.label) + " fwd+bwd " + dims, Unit::kGflops, flops * (c.input_grad ? 3 : 2), [=] {
                       Tensor<float> input = *x, weight = *w;
                       input.clear_grad();
                       weight.clear_grad();
                       input.requires_grad_(c.input_grad);
                       weight.requires_grad_(true);
                       cct::conv2d(input, weight, Tensor<float>(), 1, 1).backward(*dy);
                     }});
  }
  // The tokenizers' max-pools: CCT-2's two (after each conv) and CCT-7's one; "recording" also writes
  // the argmax that the backward needs (4 more bytes per output).
  for (const auto& [model, channels, side] : {std::tuple<const char*, int64_t, int64_t>{"cct_2", 64, 32},
                                              {"cct_2", 128, 16}, {"cct_7", 256, 32}}) {
    auto x = std::make_shared<Tensor<float>>(Tensor<float>::uniform({batch, channels, side, side}, -1, 1, gen));
    const double bytes = (x->numel() + x->numel() / 4) * 4.0;
    cases.push_back({std::string(model) + " max_pool2d 3/2/1 fwd " + shape_text(x->shape()), Unit::kGbytes, bytes, [=] {
                       cct::NoGradGuard no_grad;
                       cct::max_pool2d(*x, 3, 2, 1);
                     }});
    cases.push_back({std::string(model) + " max_pool2d 3/2/1 fwd recording " + shape_text(x->shape()), Unit::kGbytes,
                     bytes + x->numel(), [=] {
                       Tensor<float> input = *x;
                       input.requires_grad_(true);
                       cct::max_pool2d(input, 3, 2, 1);
                     }});
  }

  // Attention on packed qkv: q·kᵀ and P·v forward (4·B·N²·D FLOPs), four products more backward.
  for (const EncoderShape& e : encoders) {
    auto qkv = std::make_shared<Tensor<float>>(Tensor<float>::uniform({batch, e.tokens, 3 * e.dim}, -1, 1, gen));
    auto dy = std::make_shared<Tensor<float>>(Tensor<float>::uniform({batch, e.tokens, e.dim}, -1, 1, gen));
    const double flops = 4.0 * batch * e.tokens * e.tokens * e.dim;
    const std::string dims = shape_text(qkv->shape()) + " heads " + std::to_string(e.heads);
    cases.push_back({std::string(e.model) + " attention fwd (eval) " + dims, Unit::kGflops, flops, [=] {
                       cct::NoGradGuard no_grad;
                       cct::multi_head_attention(*qkv, cct::AttentionOptions{e.heads, 0.1, false});
                     }});
    cases.push_back({std::string(e.model) + " attention fwd+bwd (p=0.1) " + dims, Unit::kGflops, 3 * flops, [=] {
                       Tensor<float> input = *qkv;
                       input.clear_grad();
                       input.requires_grad_(true);
                       cct::multi_head_attention(input, cct::AttentionOptions{e.heads, 0.1, true}).backward(*dy);
                     }, std::string(e.model) + " encoder layer"});
  }

  // Memory-bound ops on the encoder's activations.
  for (const EncoderShape& e : encoders) {
    const std::string model = e.model;
    {
      auto x = std::make_shared<Tensor<float>>(Tensor<float>::uniform({batch, e.tokens, e.dim}, -1, 1, gen));
      auto w = std::make_shared<Tensor<float>>(Tensor<float>::uniform({e.dim}, 0.5, 1.5, gen));
      auto b = std::make_shared<Tensor<float>>(Tensor<float>::uniform({e.dim}, -0.5, 0.5, gen));
      const double bytes = x->numel() * 4.0;
      const std::string dims = shape_text(x->shape());
      cases.push_back({model + " layer_norm fwd " + dims, Unit::kGbytes, 2 * bytes, [=] {
                         cct::NoGradGuard no_grad;
                         cct::layer_norm(*x, *w, *b);
                       }});
      cases.push_back({model + " layer_norm fwd+bwd " + dims, Unit::kGbytes, 5 * bytes, [=] {
                         Tensor<float> input = *x, weight = *w, bias = *b;
                         for (Tensor<float>* t : {&input, &weight, &bias}) {
                           t->clear_grad();
                           t->requires_grad_(true);
                         }
                         cct::layer_norm(input, weight, bias).backward(*x);
                       }});
    }
    {
      auto x = std::make_shared<Tensor<float>>(Tensor<float>::uniform({batch, e.heads, e.tokens, e.tokens}, -4, 4, gen));
      const double bytes = x->numel() * 4.0;
      const std::string dims = shape_text(x->shape());
      cases.push_back({model + " softmax(-1) fwd " + dims, Unit::kGbytes, 2 * bytes, [=] {
                         cct::NoGradGuard no_grad;
                         cct::softmax(*x, -1);
                       }});
      cases.push_back({model + " softmax(-1) fwd+bwd " + dims, Unit::kGbytes, 5 * bytes, [=] {
                         Tensor<float> input = *x;
                         input.clear_grad();
                         input.requires_grad_(true);
                         cct::softmax(input, -1).backward(*x);
                       }});
    }
    {
      auto x = std::make_shared<Tensor<float>>(Tensor<float>::uniform({batch, e.tokens, e.mlp_hidden}, -3, 3, gen));
      const double bytes = x->numel() * 4.0;
      const std::string dims = shape_text(x->shape());
      cases.push_back({model + " gelu fwd " + dims, Unit::kGbytes, 2 * bytes, [=] {
                         cct::NoGradGuard no_grad;
                         cct::gelu(*x);
                       }});
      cases.push_back({model + " gelu fwd+bwd " + dims, Unit::kGbytes, 5 * bytes, [=] {
                         Tensor<float> input = *x;
                         input.clear_grad();
                         input.requires_grad_(true);
                         cct::gelu(input).backward(*x);
                       }});
    }
  }
  return cases;
}

// Each compute-bound case followed by its bf16 twin (same op and FLOPs, under a bf16 PrecisionGuard),
// where the CPU runs bf16 fast; elsewhere bf16 would be slower than fp32 and is not shown.
std::vector<Case> with_bf16_twins(const std::vector<Case>& cases) {
  if (!cct::kernels::cpu_has_avx512_bf16()) return cases;
  std::vector<Case> out;
  for (const Case& c : cases) {
    out.push_back(c);
    if (c.unit != Unit::kGflops || c.label.rfind("peak:", 0) == 0) continue;
    out.push_back({"bf16 " + c.label, c.unit, c.work, [fn = c.fn] {
                     cct::PrecisionGuard bf16(cct::Precision::kBF16);
                     fn();
                   }, c.step.empty() ? "" : "bf16 " + c.step});
  }
  return out;
}

// The two compute ceilings at the current thread count (median of `runs`).
Peaks measure_peaks(const std::vector<Case>& cases, int threads, int runs) {
  Peaks peaks;
  for (const Case& c : cases) {
    const bool fp32 = c.label.rfind("peak: vector FMA", 0) == 0, bf16 = c.label.rfind("peak: vdpbf16ps", 0) == 0;
    if (!fp32 && !bf16) continue;
    const double rate = -c.work * threads / time_runs(runs, c.fn).median * 1e-9;
    (fp32 ? peaks.fp32 : peaks.bf16) = rate;
  }
  return peaks;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  cct::Generator gen(7);
  const std::vector<Case> cases = with_bf16_twins(make_cases(options.batch, gen));
  std::printf("cct %s bench_ops, float32 (bf16 rows: bf16 operands, fp32 accumulation; AVX512_BF16 %s), batch %lld, "
              "%d timed runs after one warm-up, %d hardware threads\n",
              CCT_VERSION_STRING, cct::kernels::cpu_has_avx512_bf16() ? "yes" : "no: no bf16 rows",
              static_cast<long long>(options.batch), options.runs, cct::num_threads());
  std::vector<Peaks> peaks;
  for (int threads : options.thread_counts) {
    cct::set_num_threads(threads);
    peaks.push_back(measure_peaks(cases, threads, options.runs));
  }
  // Per training-step group and thread count: its cases, those that ran, FLOPs, median seconds.
  struct StepTotal {
    int cases = 0, ran = 0;
    double work = 0, median = 0, min = 0;
  };
  std::map<std::pair<std::string, int>, StepTotal> steps;
  for (const Case& c : cases) {
    const bool selected = options.filter.empty() || c.label.find(options.filter) != std::string::npos;
    for (size_t t = 0; t < options.thread_counts.size(); ++t) {
      const int threads = options.thread_counts[t];
      StepTotal* step = c.step.empty() ? nullptr : &steps[{c.step, threads}];
      if (step) ++step->cases;
      if (!selected) continue;
      cct::set_num_threads(threads);
      Case scaled = c;
      if (scaled.work < 0) scaled.work = -scaled.work * threads;  // per-thread work (the peak probes)
      const Timing timing = time_runs(options.runs, scaled.fn);
      report(scaled, threads, timing, peaks[t]);
      if (step) {
        ++step->ran;
        step->work += scaled.work;
        step->median += timing.median;
        step->min += timing.min;
      }
    }
  }
  // The products of one encoder layer's training step together (the four projections' forward, ∂X and
  // ∂W, and attention forward + backward): what the bf16-peak target of the encoder products refers to.
  for (const auto& [key, step] : steps) {
    if (step.ran == 0 || step.ran != step.cases) continue;  // only groups the filter kept whole
    const size_t t = std::find(options.thread_counts.begin(), options.thread_counts.end(), key.second) -
                     options.thread_counts.begin();
    report({key.first + " products, all together (training step)", Unit::kGflops, step.work, [] {}}, key.second,
           {step.median, step.min}, peaks[t]);
  }
  return 0;
}
