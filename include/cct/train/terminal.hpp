// Terminal queries for the example tools: is a FILE* a terminal, and how many columns it has.
#pragma once

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>

namespace cct::train {

// True when `out` writes to a terminal (so '\r' redraws in place); false for files and pipes.
inline bool is_terminal(std::FILE* out) {
  if (out == nullptr) return false;
  const int fd = ::fileno(out);
  return fd >= 0 && ::isatty(fd) == 1;
}

// The terminal's width in columns, or `fallback` when `out` is not a terminal or the size is unknown
// (some consoles report 0 columns).
inline int terminal_columns(std::FILE* out, int fallback = 100) {
  if (!is_terminal(out)) return fallback;
  struct winsize size {};
  if (::ioctl(::fileno(out), TIOCGWINSZ, &size) != 0 || size.ws_col == 0) return fallback;
  return static_cast<int>(size.ws_col);
}

}  // namespace cct::train
