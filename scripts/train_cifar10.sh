#!/usr/bin/env bash
# The main job: installs what is missing, builds the trainer (Release, native code) and trains
# cct_2_3x2_32 on CIFAR-10 with the default recipe for 15 minutes (--time-budget 15: the trainer times
# its first steps and fits the schedule to the budget; about 83% test top-1 on 2 cores). Extra arguments
# go to `cct_trainer train`, e.g. `--time-budget 60` (about 85%), `--epochs 5` (a fixed length instead
# of a budget), `--model cct_7_3x1_32`, `--resume`.
#
# Where the data comes from, first match wins:
#   1. --data DIR among the arguments (a CIFAR-10 binary folder, or train/ and test/ image folders);
#   2. $CCT_DATA_DIR;
#   3. ../shared/data/cifar10/cifar10-jpg.tar.gz beside the repository, unpacked once into build/data/;
#   4. the official CIFAR-10 binary archive, downloaded once into build/data/ and checked against its MD5.
# Environment: CCT_BUILD_DIR (default build), CCT_JOBS (default: all cores), CCT_OUT (default runs/cifar10),
# CCT_TIME_BUDGET (minutes, default 15).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
build_dir=${CCT_BUILD_DIR:-build}
jobs=${CCT_JOBS:-$(nproc)}
out_dir=${CCT_OUT:-runs/cifar10}

bash scripts/install_deps.sh

configure_args=(-S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCCT_BUILD_EXAMPLES=ON)
if command -v ccache >/dev/null; then
  configure_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake "${configure_args[@]}" >/dev/null
cmake --build "$build_dir" --target cct_trainer -j "$jobs"
trainer="$build_dir/examples/cct_trainer"

data_args=()
if [[ " $* " != *" --data "* ]]; then
  data_root="$build_dir/data"
  if [ -n "${CCT_DATA_DIR:-}" ]; then
    data_dir="$CCT_DATA_DIR"
    [ -d "$data_dir/cifar10-jpg" ] && data_dir="$data_dir/cifar10-jpg"
  elif [ -f "$repo_root/../shared/data/cifar10/cifar10-jpg.tar.gz" ]; then
    data_dir="$data_root/cifar10-jpg"
    if [ ! -f "$data_dir/.complete" ]; then
      echo "[cct] unpacking ../shared/data/cifar10/cifar10-jpg.tar.gz into $data_dir (once)"
      rm -rf "$data_dir" && mkdir -p "$data_dir"
      tar xzf "$repo_root/../shared/data/cifar10/cifar10-jpg.tar.gz" -C "$data_dir"
      touch "$data_dir/.complete"
    fi
  else
    data_dir="$data_root/cifar-10-batches-bin"
    if [ ! -f "$data_dir/test_batch.bin" ]; then
      url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
      md5="c32a1d4ab5d03f1284b67883e8d87530"
      archive="$data_root/cifar-10-binary.tar.gz"
      mkdir -p "$data_root"
      echo "[cct] no CIFAR-10 found; downloading $url"
      if ! { command -v curl >/dev/null && curl -fL --retry 2 -o "$archive.part" "$url"; } &&
         ! { command -v wget >/dev/null && wget -q -O "$archive.part" "$url"; }; then
        rm -f "$archive.part"
        cat >&2 <<EOF
[cct] could not download CIFAR-10 (no network, or neither curl nor wget). Provide the data yourself:
      - the official binary archive $url (MD5 $md5), unpacked so that
        DIR/data_batch_1.bin ... DIR/test_batch.bin exist, then run this script with --data DIR; or
      - set CCT_DATA_DIR to such a folder, or to one holding train/ and test/ folders of images per class.
EOF
        exit 1
      fi
      echo "$md5  $archive.part" | md5sum -c --quiet - || { echo "[cct] checksum mismatch for $url" >&2; exit 1; }
      mv "$archive.part" "$archive"
      tar xzf "$archive" -C "$data_root"
    fi
  fi
  data_args=(--data "$data_dir")
fi

default_args=()
[[ " $* " == *" --out "* ]] || default_args=(--out "$out_dir")
# A 15-minute budget unless the run's length is given (or comes from the run being resumed).
if [[ " $* " != *" --epochs "* && " $* " != *" --time-budget "* && " $* " != *" --resume "* ]]; then
  default_args+=(--time-budget "${CCT_TIME_BUDGET:-15}")
fi
echo "[cct] $trainer train ${data_args[*]} ${default_args[*]} $*"
exec "$trainer" train "${data_args[@]}" "${default_args[@]}" "$@"
