// Grad mode: whether ops record the graph. On by default; NoGradGuard turns it off for a scope.
#pragma once

namespace cct {

namespace detail {
inline bool& grad_mode_flag() {
  thread_local bool enabled = true;  // per thread, so an evaluation thread never disturbs training
  return enabled;
}
}  // namespace detail

inline bool is_grad_enabled() { return detail::grad_mode_flag(); }

// RAII: within its scope no op records a node (inference, optimiser updates, the backward pass).
class NoGradGuard {
 public:
  NoGradGuard() : previous_(detail::grad_mode_flag()) { detail::grad_mode_flag() = false; }
  ~NoGradGuard() { detail::grad_mode_flag() = previous_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// RAII: turns recording on inside a NoGradGuard (rarely needed).
class EnableGradGuard {
 public:
  EnableGradGuard() : previous_(detail::grad_mode_flag()) { detail::grad_mode_flag() = true; }
  ~EnableGradGuard() { detail::grad_mode_flag() = previous_; }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace cct
