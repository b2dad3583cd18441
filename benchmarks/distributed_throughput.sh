#!/usr/bin/env bash
# Data-parallel throughput on this machine: the same training epoch as 1 process x 2 threads and as an
# mpirun job of 2 ranks x 1 thread, on real CIFAR-10 images, with the allreduce's share of the step
# (metrics.jsonl: allreduce_seconds / compute_seconds) and the gradient size per model.
#
#   benchmarks/distributed_throughput.sh [--data DIR] [--models "cct_2_3x2_32 cct_7_3x1_32"]
#
# Needs build/examples/cct_trainer built with MPI (CCT_USE_MPI found it) and the data (default:
# build/data/cifar10-jpg, which scripts/train_cifar10.sh unpacks). Nothing else should run meanwhile.
# Per model: images per epoch (--limit-train) chosen so that an epoch takes about 15-40 s.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
trainer=${CCT_TRAINER:-$ROOT/build/examples/cct_trainer}
data=$ROOT/build/data/cifar10-jpg
models="cct_2_3x2_32 cct_7_3x1_32"
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    *) echo "distributed_throughput.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The same global batch of 128 in both: 1 x 128, and 2 ranks x 64.
common=(--data "$data" --epochs 1 --val-split 0 --limit-test 256 --warmup-epochs 0)

field() {  # metrics.jsonl field of the (only) epoch
  /usr/bin/python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline()).get(sys.argv[2], 0))' "$1" "$2"
}
printf "| model | gradient | configuration | img/s | allreduce share of the step |\n|---|---|---|---|---|\n"
for model in $models; do
  case "$model" in cct_7*|cct_6*|cct_14*) images=1024 ;; *) images=12800 ;; esac
  params=$("$trainer" train --model "$model" "${common[@]}" --batch-size 128 --limit-train 128 --out "$work/probe" 2>/dev/null |
           sed -n 's/^model: [^,]*, \([0-9,]*\) parameters.*/\1/p' | tr -d ,)
  megabytes=$(awk -v p="$params" 'BEGIN { printf "%.2f MB", p * 4 / 1e6 }')
  OMP_NUM_THREADS=2 "$trainer" train --model "$model" "${common[@]}" --limit-train "$images" --threads 2 \
    --batch-size 128 --out "$work/one" > "$work/one.log" 2>&1 || { cat "$work/one.log"; exit 1; }
  printf "| %s | %s | 1 process x 2 threads, batch 128 | %.1f | - |\n" "$model" "$megabytes" "$(field "$work/one/metrics.jsonl" img_per_s)"
  OMP_NUM_THREADS=1 bash "$ROOT/tests/mpi/mpirun.sh" -np 2 "$trainer" train --model "$model" "${common[@]}" \
    --limit-train "$images" --threads 1 --batch-size 64 --out "$work/two" > "$work/two.log" 2>&1 || { cat "$work/two.log"; exit 1; }
  share=$(awk -v a="$(field "$work/two/metrics.jsonl" allreduce_seconds)" -v c="$(field "$work/two/metrics.jsonl" compute_seconds)" \
          'BEGIN { printf "%.1f%%", 100 * a / c }')
  printf "| %s | %s | mpirun 2 ranks x 1 thread, batch 2 x 64 | %.1f | %s |\n" "$model" "$megabytes" "$(field "$work/two/metrics.jsonl" img_per_s)" "$share"
  rm -rf "$work/one" "$work/two" "$work/probe"
done
