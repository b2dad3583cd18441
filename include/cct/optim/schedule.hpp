// CosineSchedule: linear warmup, cosine decay, then a cooldown at the minimum: the learning-rate
// schedule of the CCT training recipes (timm's CosineLRScheduler with one cycle), or a constant lr.
//
// A "step" is whatever the caller advances it by: the reference recipe counts epochs (timm's
// t_in_epochs = True: the lr changes once per epoch, lr_at(epoch) for the whole epoch); a trainer may
// count iterations instead, with per_iteration() scaling the lengths by the iterations per epoch.
//
// With w = warmup_steps, T = total_steps, b = base_lr, m = min_lr, w0 = warmup_lr, at step t:
//   t < w:        lr = w0 + t · (b − w0) / w                       (linear warmup; lr(0) = w0)
//   w <= t < T:   lr = m + ½ (b − m) (1 + cos(π · t / T))          (warmup_prefix = false)
//                 lr = m + ½ (b − m) (1 + cos(π · (t − w) / (T − w)))  (warmup_prefix = true)
//   t >= T:       lr = m                                           (cooldown, and any step after it)
// These are timm's formulas with t_initial = T, warmup_t = w, warmup_lr_init = w0, lr_min = m,
// cycle_limit = 1. timm's default (warmup_prefix = false, which the CCT training script uses) runs one
// cosine over [0, T) and lets the warmup overwrite its first w steps, so at t = w the lr is already
// slightly below b (e.g. 0.9973·b for w = 10, T = 300); warmup_prefix = true starts the cosine at b
// after the warmup instead. The reference's "current recipe" (300 epochs) is
//   CosineSchedule{5.5e-4, 1e-5, 1e-5, 10, 300, 10}: 10 warmup epochs from 1e-5, cosine to 1e-5 at
// epoch 300, then 10 cooldown epochs at 1e-5 (310 epochs trained: num_steps()).
#pragma once

#include <cmath>
#include <cstdint>

#include "../config.hpp"

namespace cct::optim {

struct CosineSchedule {
  double base_lr = 5.5e-4;
  double warmup_lr = 1e-5;  // lr at step 0, the start of the warmup
  double min_lr = 1e-5;     // lr at the end of the cosine and throughout the cooldown
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;  // warmup + cosine
  int64_t cooldown_steps = 0;
  bool warmup_prefix = false;  // see the header comment; false is timm's default and the reference's
  bool is_constant = false;    // base_lr at every step (no schedule)

  // No schedule: lr_at(t) = lr for every t.
  static CosineSchedule constant(double lr, int64_t steps = 1) {
    CosineSchedule schedule;
    schedule.base_lr = schedule.warmup_lr = schedule.min_lr = lr;
    schedule.total_steps = steps;
    schedule.is_constant = true;
    return schedule;
  }

  // The same schedule counted in iterations: every length times iterations_per_epoch, so the warmup
  // and the cosine move smoothly within an epoch instead of once per epoch.
  CosineSchedule per_iteration(int64_t iterations_per_epoch) const {
    CCT_CHECK(iterations_per_epoch >= 1, "CosineSchedule::per_iteration: iterations_per_epoch must be >= 1, got ",
              iterations_per_epoch);
    CosineSchedule scaled = *this;
    scaled.warmup_steps *= iterations_per_epoch;
    scaled.total_steps *= iterations_per_epoch;
    scaled.cooldown_steps *= iterations_per_epoch;
    return scaled;
  }

  // Steps to train for: the warmup, the cosine and the cooldown.
  int64_t num_steps() const { return total_steps + cooldown_steps; }

  void validate() const {
    CCT_CHECK(std::isfinite(base_lr) && base_lr >= 0.0, "CosineSchedule: base_lr must be finite and >= 0, got ",
              base_lr);
    CCT_CHECK(std::isfinite(warmup_lr) && warmup_lr >= 0.0,
              "CosineSchedule: warmup_lr must be finite and >= 0, got ", warmup_lr);
    CCT_CHECK(std::isfinite(min_lr) && min_lr >= 0.0, "CosineSchedule: min_lr must be finite and >= 0, got ",
              min_lr);
    CCT_CHECK(total_steps >= 1, "CosineSchedule: total_steps must be >= 1, got ", total_steps);
    CCT_CHECK(warmup_steps >= 0 && warmup_steps <= total_steps, "CosineSchedule: warmup_steps (", warmup_steps,
              ") must be in [0, total_steps = ", total_steps, "]");
    CCT_CHECK(cooldown_steps >= 0, "CosineSchedule: cooldown_steps must be >= 0, got ", cooldown_steps);
  }

  double lr_at(int64_t step) const {
    validate();
    CCT_CHECK(step >= 0, "CosineSchedule::lr_at: step must be >= 0, got ", step);
    if (is_constant) return base_lr;
    const double t = static_cast<double>(step);
    if (step < warmup_steps) return warmup_lr + t * (base_lr - warmup_lr) / static_cast<double>(warmup_steps);
    if (step >= total_steps) return min_lr;
    const double kPi = 3.14159265358979323846;
    const double progress = warmup_prefix ? (t - static_cast<double>(warmup_steps)) /
                                                static_cast<double>(total_steps - warmup_steps)
                                          : t / static_cast<double>(total_steps);
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + std::cos(kPi * progress));
  }
};

// Warm-up, then a straight line down to min_lr at total_steps: the schedule of short-budget recipes
// (airbench and others), where every step is worth using at a high learning rate and the last ones
// anneal. With w = warmup_steps, T = total_steps, b = base_lr, m = min_lr, w0 = warmup_lr:
//   t < w:        lr = w0 + t · (b − w0) / w
//   w <= t < T:   lr = b − (b − m) · (t − w) / (T − w)
//   t >= T:       lr = m
struct LinearDecaySchedule {
  double base_lr = 1e-3;
  double warmup_lr = 1e-6;
  double min_lr = 0.0;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  double lr_at(int64_t step) const {
    CCT_CHECK(total_steps >= 1 && warmup_steps >= 0 && warmup_steps <= total_steps,
              "LinearDecaySchedule: need 0 <= warmup_steps (", warmup_steps, ") <= total_steps (", total_steps, ")");
    CCT_CHECK(step >= 0, "LinearDecaySchedule::lr_at: step must be >= 0, got ", step);
    const double t = static_cast<double>(step);
    if (step < warmup_steps) return warmup_lr + t * (base_lr - warmup_lr) / static_cast<double>(warmup_steps);
    if (step >= total_steps) return min_lr;
    return base_lr - (base_lr - min_lr) * (t - static_cast<double>(warmup_steps)) /
                         static_cast<double>(total_steps - warmup_steps);
  }
};

}  // namespace cct::optim
