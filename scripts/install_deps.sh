#!/usr/bin/env bash
# Installs the Debian packages cct needs, and only those that are missing.
# Usage: scripts/install_deps.sh [--with-torch] [--with-mpi] [--with-extras]
#   (no flag)      build + test dependencies: compiler, CMake, Eigen, Catch2, stb, CLI11, ccache
#   --with-torch   also Debian's PyTorch (python3-torch, python3-torchvision) for cross-checks, benchmarks
#                  and the fixture scripts
#   --with-mpi     also Open MPI (libopenmpi-dev, openmpi-bin) for data-parallel training under mpirun
# Safe to run again: it does nothing when everything is present.
set -euo pipefail

packages=(g++ cmake make libeigen3-dev catch2 libstb-dev libcli11-dev ccache zlib1g-dev)
for arg in "$@"; do
  case "$arg" in
    --with-torch) packages+=(python3-torch python3-numpy python3-pil python3-torchvision) ;;
    --with-mpi) packages+=(libopenmpi-dev openmpi-bin) ;;
    --with-extras) packages+=(dataset-fashion-mnist) ;;
    *) echo "install_deps.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  # Captured, not piped into grep -q: with pipefail an early-closing grep could fake a missing package.
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "[cct] all Debian packages present: ${packages[*]}"
  exit 0
fi

echo "[cct] installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "[cct] need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "[cct] installed: ${missing[*]}"
