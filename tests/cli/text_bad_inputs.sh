#!/usr/bin/env bash
# What the text trainer says to bad arguments, data, word vectors and checkpoints: each case fails with
# one clear message (exit 1, or 2 for a usage error), never a crash, a hang or a stray output folder.
# docs/robustness.md lists these rows. The image trainer's table is trainer_bad_inputs.sh.
#   text_bad_inputs.sh PATH/TO/cct_text PATH/TO/cct_trainer WORK_DIR
set -euo pipefail
cct_text=$1
image_trainer=$2
work=$3
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/tiny_data.sh"
write_tiny_trec "$work/text"
write_tiny_cifar "$work/cifar"
cases=0

# expect_error NAME STATUS PATTERN COMMAND...: the command exits with STATUS, prints PATTERN (an extended
# regex), and leaves no run folder behind.
expect_error() {
  local name=$1 expected=$2 pattern=$3
  shift 3
  local log="$work/case_$cases.log" status=0
  timeout 60 "$@" > "$log" 2>&1 || status=$?
  [ "$status" -eq "$expected" ] || { cat "$log"; fail "$name: exit status $status, expected $expected"; }
  grep -q -E -e "$pattern" "$log" || { cat "$log"; fail "$name: expected a message matching '$pattern'"; }
  [ ! -e "$work/bad_run" ] || { ls -la "$work/bad_run"; fail "$name: left an output folder behind"; }
  echo "ok: $name -> $(grep -m 1 -E -e "$pattern" "$log")"
  cases=$((cases + 1))
}
base=(--dataset trec --data-dir "$work/text" --batch-size 16 --threads 1 --epochs 1)
quick=("${base[@]}" --seq-len 8 --embedding-dim 16)

# Options: ranges, finiteness, sizes bounded before any allocation.
expect_error "--seq-len 0" 2 "--seq-len: must be a positive number, got 0" "$cct_text" train "${base[@]}" --seq-len 0 --out "$work/bad_run"
expect_error "--seq-len 10^9" 1 "--seq-len must be a whole number from 1 to 4096, got 1000000000" "$cct_text" train "${base[@]}" --seq-len 1000000000 --out "$work/bad_run"
expect_error "--embedding-dim 10^6" 1 "--embedding-dim must be a whole number from 1 to 4096" "$cct_text" train "${base[@]}" --embedding-dim 1000000 --out "$work/bad_run"
expect_error "--dropout 1" 1 "--dropout must be at least 0 and below 1, got 1" "$cct_text" train "${quick[@]}" --dropout 1 --out "$work/bad_run"
expect_error "--attention-dropout nan" 1 "--attention-dropout must be at least 0 and below 1, got nan" "$cct_text" train "${quick[@]}" --attention-dropout nan --out "$work/bad_run"
expect_error "--lr inf" 1 "--lr must be a positive finite number, got inf" "$cct_text" train "${quick[@]}" --lr inf --out "$work/bad_run"
expect_error "--ema 1" 1 "--ema must be at least 0 and below 1, got 1" "$cct_text" train "${quick[@]}" --ema 1 --out "$work/bad_run"
expect_error "unknown --dataset" 2 "--dataset: .*imdb" "$cct_text" train "${quick[@]}" --dataset imdb --out "$work/bad_run"
expect_error "unknown --model" 1 "text_cct_9_k9" "$cct_text" train "${quick[@]}" --model text_cct_9_k9 --out "$work/bad_run"

# Data and word vectors (found wrong after the run folder was made: they use another --out).
expect_error "missing data folder" 1 "$work/nowhere" "$cct_text" train --dataset trec --data-dir "$work/nowhere" --threads 1 --epochs 1 --out "$work/data_run"
: > "$work/empty.txt"
expect_error "empty GloVe file" 1 "GloVe.*empty.txt.*(no vectors|empty)" "$cct_text" train "${quick[@]}" --glove "$work/empty.txt" --out "$work/data_run"
mkfifo "$work/pipe.txt"
expect_error "a FIFO as GloVe file" 1 "pipe.txt.*FIFO \(named pipe\), not a regular file" "$cct_text" train "${quick[@]}" --glove "$work/pipe.txt" --out "$work/data_run"
printf 'the 0.1 0.2\nwho 0.3\n' > "$work/ragged.txt"
expect_error "GloVe rows of different lengths" 1 "ragged.txt.*line 2" "$cct_text" train "${quick[@]}" --glove "$work/ragged.txt" --out "$work/data_run"

# Checkpoints: missing, not one, a FIFO, an image model.
"$cct_text" train "${quick[@]}" --out "$work/text_run" > "$work/text_run.log" 2>&1 ||
  { cat "$work/text_run.log"; fail "the tiny text run failed"; }
expect_error "missing checkpoint" 1 "cannot open safetensors file '$work/none.safetensors'" "$cct_text" predict --checkpoint "$work/none.safetensors" "who is it ?"
printf 'hello' > "$work/text.safetensors"
expect_error "a text file as checkpoint" 1 "text.safetensors" "$cct_text" predict --checkpoint "$work/text.safetensors" "who is it ?"
expect_error "a FIFO as checkpoint" 1 "pipe.txt.*FIFO" "$cct_text" predict --checkpoint "$work/pipe.txt" "who is it ?"
"$image_trainer" train --data "$work/cifar" --epochs 1 --batch-size 8 --threads 1 --augment none --out "$work/image_run" > "$work/image_run.log" 2>&1 ||
  { cat "$work/image_run.log"; fail "the image run for the wrong-model case failed"; }
expect_error "an image checkpoint" 1 "image_run/last.safetensors.*(image|not a text)" "$cct_text" predict --checkpoint "$work/image_run/last.safetensors" "who is it ?"
expect_error "--top-k 0" 2 "--top-k: must be a positive number, got 0" "$cct_text" predict --checkpoint "$work/image_run/last.safetensors" --top-k 0 "who ?"

# A 2 MB line on stdin is refused (predict reads stdin a chunk at a time, with a bound on a line).
expect_error "a 2 MB line on stdin" 1 "line 1 of stdin is 2000000 bytes long" \
  bash -c 'head -c 2000000 /dev/zero | tr "\\0" a | "$0" predict --checkpoint "$1"' "$cct_text" "$work/text_run/last.safetensors"

echo "all $cases bad text inputs gave one clear error"
