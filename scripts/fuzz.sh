#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan) and runs each for a while.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 60 s, every target)
# Targets: cifar idx idx_gzip image safetensors checkpoint text_checkpoint json vocabulary trec ag_news label_sentence
# glove
# (fuzz/fuzz_targets.hpp says what each feeds). Each run starts from the seeds in fuzz/corpus/<target>/
# plus what earlier runs found (kept in $CCT_FUZZ_DIR/corpus/<target>/). A crash, a leak, an uncaught
# exception other than cct::Error, a >10 s input or >2 GiB of memory stops that target and leaves the
# input in $CCT_FUZZ_DIR/artifacts/<target>/; after fixing the reader, copy it to
# fuzz/regressions/<target>/ so that ctest (test_fuzz_regressions) replays it forever.
# Needs clang++ and its libFuzzer runtime (Debian: clang, libclang-rt-14-dev; installed if missing).
# Environment: CCT_FUZZ_DIR (default build-fuzz), CCT_FUZZ_NICE (default 10), CCT_FUZZ_PARALLEL (targets
# fuzzed at once, default 1; one core each), CCT_FUZZ_FLAGS (extra libFuzzer flags, e.g. -max_len=8192).
# Exit code: 1 when any target found a problem.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
seconds=${1:-60}
shift || true
fuzz_dir=${CCT_FUZZ_DIR:-build-fuzz}
nice_level=${CCT_FUZZ_NICE:-10}
all_targets=(cifar idx idx_gzip image safetensors checkpoint text_checkpoint json vocabulary trec ag_news label_sentence glove)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

cxx=${CXX_FUZZ:-$(command -v clang++ || command -v clang++-14 || true)}
fuzzer_runtime_present() { ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; }
if [ -z "$cxx" ] || ! fuzzer_runtime_present; then
  echo "[fuzz] installing clang and its libFuzzer runtime (clang, libclang-rt-14-dev)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev
  cxx=$(command -v clang++ || command -v clang++-14)
fi

mkdir -p "$fuzz_dir"
binary="$fuzz_dir/cct_fuzz"
# Rebuild when any header or the driver is newer than the binary.
if [ ! -x "$binary" ] || [ -n "$(find include fuzz scripts/fuzz.sh -newer "$binary" \( -name '*.hpp' -o -name '*.cpp' -o -name fuzz.sh \) -print -quit)" ]; then
  echo "[fuzz] building $binary with $cxx"
  nice -n "$nice_level" "$cxx" -std=c++17 -O1 -g -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fsanitize-recover=shift-exponent \
    -Iinclude -isystem /usr/include/eigen3 fuzz/fuzz_main.cpp -lz -o "$binary"
fi

# The targets write each input to a scratch file; memory-backed /dev/shm keeps that cheap.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi

summary="$fuzz_dir/summary.txt"
: > "$summary"
results="$fuzz_dir/results"
rm -rf "$results"
mkdir -p "$results"
for target in "${targets[@]}"; do
  [ -d "fuzz/corpus/$target" ] || { echo "[fuzz] unknown target '$target' (no fuzz/corpus/$target)" >&2; exit 2; }
done

# run_target TARGET: fuzzes one target for $seconds and writes its one-line verdict to $results/TARGET.
run_target() {
  local target=$1
  local corpus="$fuzz_dir/corpus/$target" artifacts="$fuzz_dir/artifacts/$target" log="$fuzz_dir/$target.log"
  mkdir -p "$corpus" "$artifacts"
  echo "[fuzz] $target for $seconds s (log: $log)"
  local status=0 started
  started=$(date +%s)
  # shellcheck disable=SC2086
  CCT_FUZZ_TARGET=$target ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$repo_root/fuzz/ubsan_suppressions.txt \
    CCT_STORAGE_CACHE_MB=0 \
    nice -n "$nice_level" "$binary" -rss_limit_mb=2048 -timeout=10 -max_total_time="$seconds" \
    -print_final_stats=1 -artifact_prefix="$artifacts/" ${CCT_FUZZ_FLAGS:-} "$corpus" "fuzz/corpus/$target" \
    > "$log" 2>&1 || status=$?
  local wall=$(( $(date +%s) - started ))
  local runs cov corpus_size line
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)  || true
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || true)
  corpus_size=$(find "$corpus" -type f | wc -l)
  if [ $status -eq 0 ]; then
    line="$target: ok, ${runs:-?} executions in ${wall} s, coverage ${cov:-?} edges, corpus $corpus_size inputs"
  else
    local reason
    reason=$(grep -m 1 -E '^==[0-9]+==ERROR|runtime error|ALARM|out-of-memory|uncaught|deadly signal' "$log" || echo "exit $status")
    line="$target: FINDING after ${runs:-?} executions: $reason (input in $artifacts/)"
  fi
  echo "[fuzz] $line"
  echo "$line" > "$results/$target"
}

# Targets run in $CCT_FUZZ_PARALLEL lanes at once (default 1); each target is one libFuzzer process.
lanes=${CCT_FUZZ_PARALLEL:-1}
running=0
for target in "${targets[@]}"; do
  if [ "$running" -ge "$lanes" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  run_target "$target" &
  running=$((running + 1))
done
wait || true
failed=0
for target in "${targets[@]}"; do
  if [ -f "$results/$target" ]; then cat "$results/$target" >> "$summary"; else echo "$target: no result" >> "$summary"; fi
done
grep -qv ': ok,' "$summary" && failed=1
echo
echo "[fuzz] summary ($seconds s per target):"
cat "$summary"
exit $failed
