#!/usr/bin/env bash
# Crash safety of cct_trainer: training runs on a tiny CIFAR-10-format data set are killed with SIGKILL
# (no chance to save or clean up) at several moments, including while a checkpoint is being written.
# After every kill: last.safetensors, if the run got that far, is a complete checkpoint (eval loads
# it), and `train --resume` finishes the run with exactly the weights, metrics and test result of an
# uninterrupted run. Also: an --out that cannot be written fails at start-up, before any training.
#   crash_safety.sh PATH/TO/cct_trainer WORK_DIR
# Bounded: one reference run plus 7 killed-and-resumed runs of 12 tiny epochs (< 2 minutes in Release).
set -euo pipefail
trainer=$1
work=$2
rm -rf "$work" && mkdir -p "$work/data"
fail() { echo "FAIL: $*" >&2; exit 1; }

# Tiny CIFAR-10 batches (tests/cli/tiny_data.sh): deterministic, so every run sees the same data.
source "$(dirname "${BASH_SOURCE[0]}")/tiny_data.sh"
write_tiny_cifar "$work/data"

# 12 epochs of 5 steps, no validation, no augmentation: many small epochs, so checkpoints are frequent.
epochs=12
args=(--data "$work/data" --epochs "$epochs" --batch-size 8 --warmup-epochs 1 --val-split 0 --augment none
      --threads 1 --seed 3)
strip_times() { sed -E 's/,"epoch_seconds".*//' "$1"; }
strip_final() { grep -v '"minutes"' "$1"; }

# ---- unwritable --out: a clear error before any training ------------------------------------------
expect_start_failure() {  # description out_path
  local log="$work/unwritable.log"
  if "$trainer" train "${args[@]}" --out "$2" > "$log" 2>&1; then fail "$1: train succeeded"; fi
  grep -q "^error: .*$2" "$log" || { cat "$log"; fail "$1: the error does not name the output path"; }
  grep -q -E "^data:|^training " "$log" && { cat "$log"; fail "$1: the run got past start-up"; }
  echo "ok: $1 -> $(grep '^error:' "$log")"
}
echo "not a folder" > "$work/a_file"
expect_start_failure "--out under a regular file" "$work/a_file/run"
expect_start_failure "--out naming a regular file" "$work/a_file"
if [ "$(id -u)" -ne 0 ]; then
  mkdir -p "$work/read_only" && chmod 555 "$work/read_only"
  expect_start_failure "--out in a read-only folder" "$work/read_only/run"
  chmod 755 "$work/read_only"
fi

# ---- the uninterrupted reference run ------------------------------------------------------------------
started=$(date +%s%N)
"$trainer" train "${args[@]}" --out "$work/reference" > "$work/reference.log" 2>&1 ||
  { cat "$work/reference.log"; fail "the reference run failed"; }
reference_ms=$(( ($(date +%s%N) - started) / 1000000 ))
echo "reference run: ${reference_ms} ms"

# ---- killed runs ----------------------------------------------------------------------------------------
# check_after_kill NAME: the run in $work/NAME was just killed; check its checkpoint and resume it.
check_after_kill() {
  local run="$work/$1"
  if [ ! -e "$run/last.safetensors" ]; then
    # Killed before the first checkpoint: resuming must say so clearly, and a fresh start works.
    if "$trainer" train --resume --out "$run" > "$run.resume.log" 2>&1; then fail "$1: resume without a checkpoint succeeded"; fi
    grep -q "no checkpoint" "$run.resume.log" || { cat "$run.resume.log"; fail "$1: unclear error for a missing checkpoint"; }
    "$trainer" train "${args[@]}" --out "$run" > "$run.resume.log" 2>&1 || { cat "$run.resume.log"; fail "$1: restart failed"; }
  else
    "$trainer" eval --checkpoint "$run/last.safetensors" --data "$work/data" > "$run.eval.log" 2>&1 ||
      { cat "$run.eval.log"; fail "$1: last.safetensors does not load after the kill"; }
    "$trainer" train --resume --out "$run" > "$run.resume.log" 2>&1 || { cat "$run.resume.log"; fail "$1: resume failed"; }
  fi
  cmp -s "$work/reference/last.safetensors" "$run/last.safetensors" || fail "$1: the resumed run's weights differ"
  cmp -s "$work/reference/best.safetensors" "$run/best.safetensors" || fail "$1: the resumed run's best checkpoint differs"
  diff <(strip_times "$work/reference/metrics.jsonl") <(strip_times "$run/metrics.jsonl") > /dev/null ||
    fail "$1: the resumed run's metrics.jsonl differs"
  diff <(strip_final "$work/reference/final.json") <(strip_final "$run/final.json") > /dev/null ||
    fail "$1: the resumed run's final.json differs"
}

# Kills at fractions of the reference run's duration (spread over start-up, training and the end).
trial=0
for percent in 4 17 33 52 71 88; do
  trial=$((trial + 1))
  name="killed_at_${percent}pc"
  "$trainer" train "${args[@]}" --out "$work/$name" > "$work/$name.log" 2>&1 &
  pid=$!
  sleep "$(awk -v ms="$reference_ms" -v p="$percent" 'BEGIN { printf "%.3f", ms * p / 100000 }')"
  kill -9 "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  saved=no
  [ -e "$work/$name/last.safetensors" ] && saved=yes
  check_after_kill "$name"
  echo "ok: killed at ${percent}% (checkpoint before the kill: $saved), resumed to the reference result"
done

# Killed while a checkpoint is being written: wait for the temporary file of the 4th save of
# last.safetensors to appear (it exists from open to rename), then kill at once; the previous
# last.safetensors must be intact. The loop uses shell builtins only, so it reacts within microseconds.
name="killed_while_saving"
"$trainer" train "${args[@]}" --out "$work/$name" > "$work/$name.log" 2>&1 &
pid=$!
temp="$work/$name/last.safetensors.tmp.$pid"
saves=0
caught=0
SECONDS=0
while kill -0 "$pid" 2> /dev/null && [ $SECONDS -lt 60 ]; do
  if [ -e "$temp" ]; then
    saves=$((saves + 1))
    if [ $saves -ge 4 ]; then
      kill -9 "$pid" 2> /dev/null && caught=1
      break
    fi
    while [ -e "$temp" ]; do :; done
  fi
done
wait "$pid" 2> /dev/null || true
if [ $caught -eq 1 ] && [ -e "$temp" ]; then
  echo "ok: killed with a checkpoint half-written ($(stat -c %s "$temp") of $(stat -c %s "$work/reference/last.safetensors") bytes in the temporary file)"
else
  echo "note: the kill did not land inside a checkpoint write this time"
fi
check_after_kill "$name"
echo "ok: killed while saving, resumed to the reference result"
echo "crash safety test passed"
