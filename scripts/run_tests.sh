#!/usr/bin/env bash
# The test command: installs missing Debian packages, configures build/ (Release, with tests, examples
# and benchmarks), builds with every core, and runs the whole ctest suite. Exit code = ctest's.
# Environment: CCT_BUILD_DIR (default build), CCT_JOBS (default: number of cores).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
build_dir=${CCT_BUILD_DIR:-build}
jobs=${CCT_JOBS:-$(nproc)}
started=$(date +%s)
elapsed() { echo $(( $(date +%s) - $1 )); }

echo "== [cct] dependencies"
bash scripts/install_deps.sh --with-mpi  # MPI too, so the suite covers data-parallel training

echo "== [cct] configure $build_dir (Release)"
t=$(date +%s)
configure_args=(-S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release
                -DCCT_BUILD_TESTS=ON -DCCT_BUILD_EXAMPLES=ON -DCCT_BUILD_BENCHMARKS=ON)
if command -v ccache >/dev/null; then
  configure_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake "${configure_args[@]}"
configure_s=$(elapsed "$t")

echo "== [cct] build with $jobs jobs"
t=$(date +%s)
if ! cmake --build "$build_dir" -j "$jobs"; then
  echo "== [cct] BUILD FAILED after $(elapsed "$started") s (see the compiler errors above)" >&2
  exit 1
fi
build_s=$(elapsed "$t")

echo "== [cct] ctest with $jobs jobs"
t=$(date +%s)
set +e
(cd "$build_dir" && ctest --output-on-failure -j "$jobs") 2>&1 | tee "$build_dir/ctest.log"
ctest_rc=${PIPESTATUS[0]}
set -e
test_s=$(elapsed "$t")

echo
echo "== [cct] summary"
grep -E "tests passed|tests failed" "$build_dir/ctest.log" | tail -n 1 || true
echo "   configure ${configure_s} s, build ${build_s} s, tests ${test_s} s, total $(elapsed "$started") s ($jobs jobs)"
if [ "$ctest_rc" -eq 0 ]; then
  echo "   RESULT: all tests passed"
else
  echo "   RESULT: FAILURES (ctest exit code $ctest_rc; full log in $build_dir/ctest.log)"
fi
exit "$ctest_rc"
