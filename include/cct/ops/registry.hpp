// The registry of differentiable ops: every op header registers the names its backward nodes carry
// (autograd::record's first argument), so that one table of finite-difference gradient checks can be
// held against it: tests/test_gradcheck_table.cpp fails for a registered op without an entry, and for an
// op whose node name was never registered (the idea of ggml's op-count assertion).
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

namespace cct::ops {

inline std::vector<std::string>& registered_op_names() {
  static std::vector<std::string> names;  // function-local: safe whatever the order of static initialisation
  return names;
}

inline bool register_ops(std::initializer_list<const char*> names) {
  for (const char* name : names) registered_op_names().emplace_back(name);
  return true;
}

}  // namespace cct::ops

// At the end of an op header, inside namespace cct: CCT_REGISTER_OPS(activation, "relu", "gelu", ...).
// An inline variable, so the names are registered once per program however many units include it.
#define CCT_REGISTER_OPS(family, ...) \
  inline const bool registered_ops_##family = ::cct::ops::register_ops({__VA_ARGS__})
