// Grad mode: whether ops record the graph. On by default; NoGradGuard turns it off for a scope.
#pragma once

#include "../core/scoped_flag.hpp"

namespace cct {

namespace detail {
inline bool& grad_mode_flag() {
  thread_local bool enabled = true;  // per thread, so an evaluation thread never disturbs training
  return enabled;
}
}  // namespace detail

inline bool is_grad_enabled() { return detail::grad_mode_flag(); }

// RAII: within its scope no op records a node (inference, optimiser updates, the backward pass).
class NoGradGuard : ScopedFlag {
 public:
  NoGradGuard() : ScopedFlag(detail::grad_mode_flag(), false) {}
};

// RAII: turns recording on inside a NoGradGuard (rarely needed).
class EnableGradGuard : ScopedFlag {
 public:
  EnableGradGuard() : ScopedFlag(detail::grad_mode_flag(), true) {}
};

}  // namespace cct
