#!/usr/bin/env bash
# The main job. Until the CIFAR-10 transformer trainer exists, this is a placeholder that installs the
# dependencies, builds the examples in build/ (Release) and runs the MLP example `train_mlp`, passing
# its own arguments through. Environment: CCT_BUILD_DIR (default build), CCT_JOBS (default: all cores),
# CCT_DATA_DIR (default ../shared/data when it exists).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
build_dir=${CCT_BUILD_DIR:-build}
jobs=${CCT_JOBS:-$(nproc)}
target=train_mlp

bash scripts/install_deps.sh

configure_args=(-S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCCT_BUILD_EXAMPLES=ON)
if command -v ccache >/dev/null; then
  configure_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake "${configure_args[@]}"

# Make and Ninja both list their targets under `help` ("... name" and "name: phony").
if ! cmake --build "$build_dir" --target help | grep -qE "(^|[ /])${target}(:|\$)"; then
  echo "[cct] train_cifar10.sh: the build in $build_dir has no target '${target}': examples/CMakeLists.txt" >&2
  echo "      does not define it (yet). Nothing to train; see README.md." >&2
  exit 1
fi
cmake --build "$build_dir" --target "$target" -j "$jobs"

executable=$(find "$build_dir" -type f -name "$target" -perm -u+x | head -n 1)
if [ -z "$executable" ]; then
  echo "[cct] train_cifar10.sh: built '${target}' but found no executable of that name under $build_dir" >&2
  exit 1
fi
if [ -z "${CCT_DATA_DIR:-}" ] && [ -d "$repo_root/../shared/data" ]; then
  export CCT_DATA_DIR="$repo_root/../shared/data"
fi
echo "[cct] running $executable $*"
exec "$executable" "$@"
