// Generator: the seeded random source behind every random tensor, initialiser, dropout mask and shuffle.
//
// It is counter-based SplitMix64: draw number i of a generator seeded with s is
// mix(s + (i + 1) * 0x9E3779B97F4A7C15), where mix is the SplitMix64 finaliser. Filling a buffer
// therefore gives element j the draw (counter + j) no matter how many threads fill it, so results are
// the same across runs and thread counts. Uniform floats use the top 53 (double) or 24 (float) bits;
// normals use Box-Muller on two consecutive draws. The whole state is two integers (seed, counter),
// which checkpoints store to resume exactly.
#pragma once

#include <cmath>
#include <cstdint>

#include "../config.hpp"
#include "parallel.hpp"

namespace cct {

class Generator {
 public:
  static constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

  explicit Generator(uint64_t seed = 0x5EEDull) : seed_(seed) {}

  void manual_seed(uint64_t seed) {
    seed_ = seed;
    counter_ = 0;
  }
  uint64_t seed() const { return seed_; }
  uint64_t counter() const { return counter_; }
  void set_state(uint64_t seed, uint64_t counter) {
    seed_ = seed;
    counter_ = counter;
  }

  // Draw `index` of this stream without advancing it.
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t draw(uint64_t index) const { return mix(seed_ + (index + 1) * kGolden); }

  uint64_t next_u64() { return draw(counter_++); }
  // Reserves n consecutive draws for a kernel that evaluates draw(base + i) itself, in any order and
  // on any thread; returns base. Used by dropout masks that backward regenerates instead of storing.
  uint64_t reserve(uint64_t n) {
    const uint64_t base = counter_;
    counter_ += n;
    return base;
  }
  // Draw `index` as a uniform double in [0, 1).
  double uniform_at(uint64_t index) const { return to_unit(draw(index)); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return to_unit(next_u64()); }
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  // Standard normal (uses two draws).
  double normal() {
    const double u1 = to_unit(next_u64()), u2 = to_unit(next_u64());
    return box_muller(u1, u2);
  }
  // Integer in [0, n).
  int64_t randint(int64_t n) {
    CCT_CHECK(n > 0, "Generator::randint: n must be positive, got ", n);
    return static_cast<int64_t>(next_u64() % static_cast<uint64_t>(n));
  }
  bool bernoulli(double p) { return uniform() < p; }

  // Fills out[0..n) with uniform values in [low, high); advances the counter by n.
  template <typename T>
  void fill_uniform(T* out, int64_t n, double low, double high) {
    const uint64_t base = counter_;
    parallel_for(0, n, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        out[i] = static_cast<T>(low + (high - low) * to_unit(draw(base + i)));
    });
    counter_ += static_cast<uint64_t>(n);
  }

  // Fills out[0..n) with normal values; advances the counter by 2n (two draws per value).
  template <typename T>
  void fill_normal(T* out, int64_t n, double mean, double std) {
    const uint64_t base = counter_;
    parallel_for(0, n, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const double u1 = to_unit(draw(base + 2 * i)), u2 = to_unit(draw(base + 2 * i + 1));
        out[i] = static_cast<T>(mean + std * box_muller(u1, u2));
      }
    });
    counter_ += 2 * static_cast<uint64_t>(n);
  }

 private:
  static double to_unit(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }
  static double box_muller(double u1, double u2) {
    // 1 - u1 is in (0, 1], so the log never sees zero.
    return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(6.283185307179586 * u2);
  }

  uint64_t seed_;
  uint64_t counter_ = 0;
};

// The process-wide generator used when an API is not handed one explicitly.
inline Generator& default_generator() {
  static Generator generator;
  return generator;
}
inline void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace cct
