#!/usr/bin/env bash
# Compile times of the README's library example against a bare Eigen program, measured in one run:
#   1. a bare Eigen program with one float GEMM (the yardstick of issue 15),
#   2. examples/quick_start.cpp header-only (cct::cct: include/ and Eigen on the include path),
#   3. examples/quick_start.cpp in compiled mode (-DCCT_COMPILED, as cct::compiled compiles its users;
#      the instantiations it skips are compiled once, into libcct_compiled.a, and timed in step 4),
#   4. the compiled library's two units (float, double), each alone.
# Each compile runs --repeats times (default 3) one after another, nothing else in parallel; the table
# shows the median wall time and the ratio to the Eigen program. Run it on a quiet machine.
#   benchmarks/compile_time.sh [--opt -O2] [--repeats 3]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
opt=-O2
repeats=3
while [ $# -gt 0 ]; do
  case $1 in
    --opt) opt=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "compile_time.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
cxx=${CXX:-g++}
eigen_dir=/usr/include/eigen3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/eigen_gemm.cpp" <<'CPP'
#include <Eigen/Dense>
#include <cstdio>
int main() {
  Eigen::MatrixXf a = Eigen::MatrixXf::Random(64, 64), b = Eigen::MatrixXf::Random(64, 64);
  Eigen::MatrixXf c = a * b;
  std::printf("%f\n", c(0, 0));
}
CPP
printf '#define CCT_INSTANTIATE_FLOAT\n#include <cct/library.hpp>\n' > "$work/compiled_float.cpp"
printf '#define CCT_INSTANTIATE_DOUBLE\n#include <cct/library.hpp>\n' > "$work/compiled_double.cpp"

# median wall seconds of `repeats` runs of a command
median_time() {
  local times=()
  for _ in $(seq "$repeats"); do
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

common=(-std=c++17 "$opt" -fopenmp -I"$repo/include" -I"$eigen_dir" -c)
echo "== compile times, $cxx $opt, median of $repeats ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
eigen=$(median_time "$cxx" -std=c++17 "$opt" -I"$eigen_dir" -c "$work/eigen_gemm.cpp" -o "$work/e.o")
header_only=$(median_time "$cxx" "${common[@]}" "$repo/examples/quick_start.cpp" -o "$work/q.o")
compiled=$(median_time "$cxx" "${common[@]}" -DCCT_COMPILED "$repo/examples/quick_start.cpp" -o "$work/qc.o")
lib_float=$(median_time "$cxx" "${common[@]}" "$work/compiled_float.cpp" -o "$work/f.o")
lib_double=$(median_time "$cxx" "${common[@]}" "$work/compiled_double.cpp" -o "$work/d.o")
ratio() { echo "scale=2; $1 / $eigen" | bc; }
printf '| what | seconds | × the Eigen program |\n|---|---|---|\n'
printf '| bare Eigen, one float GEMM | %.1f | 1.00 |\n' "$eigen"
printf '| quick_start.cpp, header-only (cct::cct) | %.1f | %s |\n' "$header_only" "$(ratio "$header_only")"
printf '| quick_start.cpp, compiled mode (cct::compiled) | %.1f | %s |\n' "$compiled" "$(ratio "$compiled")"
printf '| libcct_compiled: float unit (once per build of cct) | %.1f | %s |\n' "$lib_float" "$(ratio "$lib_float")"
printf '| libcct_compiled: double unit (once per build of cct) | %.1f | %s |\n' "$lib_double" "$(ratio "$lib_double")"
