// Precision of float matrix products: fp32, or bf16 operands with fp32 accumulation (mixed precision,
// the CPU analogue of PyTorch's autocast).
//
// Under kBF16 the big float products (linear and matmul, the convolutions' im2col GEMMs, attention's
// q·kᵀ and P·v, and the backward products of all of these) round their two operands to bfloat16 and
// accumulate in fp32. Everything else stays fp32: weights, gradients, optimiser state (master weights),
// softmax, layer-norm, the loss and every reduction. No loss scaling is needed: bf16 keeps fp32's 8-bit
// exponent, so gradients neither underflow nor overflow where fp32 ones would not. Double-precision
// code (gradient checks) never changes. An op records the precision it ran under in its backward
// closure, so a backward pass started outside the guard still uses the forward's precision.
//
// bf16 is fast only where the CPU has AVX512_BF16 (kernels::bf16_fast_path_available()); elsewhere it
// runs a portable path that is slower than fp32, and says so once on stderr.
#pragma once

#include <atomic>
#include <string>

#include "../config.hpp"

namespace cct {

enum class Precision { kFP32, kBF16 };

inline const char* precision_name(Precision precision) { return precision == Precision::kBF16 ? "bf16" : "fp32"; }

// "bf16" or "fp32" (as command lines spell them); anything else throws cct::Error.
inline Precision parse_precision(const std::string& name) {
  if (name == "bf16") return Precision::kBF16;
  if (name == "fp32") return Precision::kFP32;
  throw Error(detail::concat("unknown precision '", name, "': expected bf16 or fp32"));
}

namespace detail {
// The process-wide default is one global (a trainer sets it once, and every thread it starts, data
// loaders and evaluators included, agrees); a guard overrides it for its own thread only, like
// NoGradGuard, so a scope on one thread never changes the products another thread computes.
inline std::atomic<Precision>& default_precision_flag() {
  static std::atomic<Precision> precision{Precision::kFP32};
  return precision;
}
constexpr int kNoPrecisionOverride = -1;
inline int& precision_override() {
  thread_local int precision = kNoPrecisionOverride;
  return precision;
}
}  // namespace detail

namespace detail {
// Under bf16, ops save bf16 copies of the operands that only bf16 products read again (linear's x,
// attention's qkv): half the memory and the same results bit for bit. Off, they keep the float
// tensors, as fp32 does; tests switch it off to check that claim.
inline std::atomic<bool>& save_bf16_operands_flag() {
  static std::atomic<bool> enabled{true};
  return enabled;
}
}  // namespace detail

inline void set_default_precision(Precision precision) { detail::default_precision_flag().store(precision); }
inline Precision default_precision() { return detail::default_precision_flag().load(); }

// The precision float products use on this thread now.
inline Precision current_precision() {
  const int override_value = detail::precision_override();
  return override_value == detail::kNoPrecisionOverride ? default_precision() : static_cast<Precision>(override_value);
}

// RAII: float products on this thread use `precision` within the guard's scope.
class PrecisionGuard {
 public:
  explicit PrecisionGuard(Precision precision) : previous_(detail::precision_override()) {
    detail::precision_override() = static_cast<int>(precision);
  }
  ~PrecisionGuard() { detail::precision_override() = previous_; }
  PrecisionGuard(const PrecisionGuard&) = delete;
  PrecisionGuard& operator=(const PrecisionGuard&) = delete;

 private:
  int previous_;
};

}  // namespace cct
