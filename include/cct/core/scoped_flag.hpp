// cct::ScopedFlag: sets a bool for one scope and restores the value it held, the mechanism of every guard.
#pragma once

namespace cct {

// RAII over one flag. The guards (NoGradGuard, EnableGradGuard, nn::init::SkipInitGuard) are this with
// their thread-local flag and value; restoring the previous value, not a default, is what lets them nest.
class ScopedFlag {
 public:
  ScopedFlag(bool& flag, bool value) : flag_(flag), previous_(flag) { flag_ = value; }
  ~ScopedFlag() { flag_ = previous_; }
  ScopedFlag(const ScopedFlag&) = delete;
  ScopedFlag& operator=(const ScopedFlag&) = delete;

 private:
  bool& flag_;
  bool previous_;
};

}  // namespace cct
