// libFuzzer driver for every target in fuzz_targets.hpp: one binary, the target chosen by the
// environment variable CCT_FUZZ_TARGET or, failing that, by the program's name ("fuzz_<target>", the
// symlinks scripts/fuzz.sh makes). Built by scripts/fuzz.sh with
//   clang++ -fsanitize=fuzzer,address,undefined
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_targets.hpp"
// Built by scripts/fuzz.sh without CMake: stb's code, compiled once, here.
#include <cct/data/stb_implementation.hpp>

namespace {
cct::fuzz::Target g_target = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  std::string name;
  if (const char* env = std::getenv("CCT_FUZZ_TARGET")) name = env;
  if (name.empty() && *argc > 0) {
    const std::string program = (*argv)[0];
    const std::string base = program.substr(program.find_last_of('/') + 1);
    if (base.rfind("fuzz_", 0) == 0) name = base.substr(5);
  }
  g_target = cct::fuzz::find_target(name);
  if (!g_target) {
    std::fprintf(stderr, "cct fuzz: unknown target '%s'; set CCT_FUZZ_TARGET to one of:", name.c_str());
    for (const auto& target : cct::fuzz::targets()) std::fprintf(stderr, " %s", target.name);
    std::fprintf(stderr, "\n");
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cct::fuzz::run_target(g_target, data, size);
  return 0;
}
