#!/usr/bin/env bash
# The test suite under AddressSanitizer (+ LeakSanitizer) and UndefinedBehaviorSanitizer.
#   scripts/run_sanitizers.sh            every test, the examples' CLI tests included (cct_trainer and
#                                        cct_text train, checkpoint, resume and exit leak-free); ~1 h on 2 cores
#   scripts/run_sanitizers.sh --fast     the file readers and core tests only (what .ci/run runs)
# Configures $CCT_SANITIZE_BUILD_DIR (default build-asan) with -DCCT_SANITIZE="address;undefined" at -O1 -g
# (assertions on), builds, and runs ctest there. Any sanitizer report fails its test: ASan and LSan
# exit non-zero, and UBSan is built without recovery. The block cache of cct::Storage is switched off
# (CCT_STORAGE_CACHE_MB=0) so that every freed tensor buffer really is freed and a use after free is seen.
# Tests that do not run sanitized code are left out (headers_compile_alone_* and the consumer projects
# build with their own flags). Environment: CCT_JOBS (default: number of cores), CCT_NICE (default 0).
# Extra arguments go to ctest (e.g. -R test_data).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
fast=0
if [ "${1:-}" = "--fast" ]; then
  fast=1
  shift
fi
build_dir=${CCT_SANITIZE_BUILD_DIR:-build-asan}
jobs=${CCT_JOBS:-$(nproc)}
nice_level=${CCT_NICE:-0}
started=$(date +%s)

# The fast subset: every file reader (safetensors/JSON, checkpoints, CIFAR/IDX/images, text corpora
# and GloVe), the fuzzers' regression inputs, and tensors + autograd.
fast_targets=(test_io_safetensors test_checkpoint test_data test_text test_fuzz_regressions test_core_autograd)

configure_args=(-S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g"
                "-DCCT_SANITIZE=address;undefined" -DCCT_BUILD_TESTS=ON -DCCT_TEST_UNITY=OFF -DCCT_BUILD_BENCHMARKS=OFF -DCCT_INSTALL=OFF)
if [ $fast -eq 1 ]; then
  configure_args+=(-DCCT_BUILD_EXAMPLES=OFF)
else
  configure_args+=(-DCCT_BUILD_EXAMPLES=ON)
fi
if command -v ccache >/dev/null; then
  configure_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
echo "== [sanitizers] configure $build_dir (ASan + UBSan, -O1 -g)"
mkdir -p "$build_dir"
cmake "${configure_args[@]}" > "$build_dir/configure.log" 2>&1 || { cat "$build_dir/configure.log"; exit 1; }

echo "== [sanitizers] build with $jobs jobs$([ $fast -eq 1 ] && echo " (fast subset: ${fast_targets[*]})")"
t=$(date +%s)
build_args=(--build "$build_dir" -j "$jobs")
[ $fast -eq 1 ] && build_args+=(--target "${fast_targets[@]}")
nice -n "$nice_level" cmake "${build_args[@]}"
build_s=$(( $(date +%s) - t ))

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export CCT_STORAGE_CACHE_MB=0

ctest_args=(--output-on-failure -j "$jobs" -LE "headers|consumer")
if [ $fast -eq 1 ]; then
  regex=$(IFS='|'; echo "${fast_targets[*]}")
  ctest_args+=(-R "^($regex):")
fi
echo "== [sanitizers] ctest ${ctest_args[*]} $*"
t=$(date +%s)
set +e
(cd "$build_dir" && nice -n "$nice_level" ctest "${ctest_args[@]}" "$@") 2>&1 | tee "$build_dir/ctest.log"
status=${PIPESTATUS[0]}
set -e
echo "== [sanitizers] build ${build_s} s, tests $(( $(date +%s) - t )) s, total $(( $(date +%s) - started )) s"
exit "$status"
