#!/usr/bin/env bash
# What cct_trainer says to bad input: each case must exit non-zero with one clear message (checked by a
# pattern), quickly and without a crash. Cases: bad arguments, missing / empty / truncated / unknown
# data, a checkpoint of another kind or another model, class and image-size mismatches between a
# checkpoint and data, odd image files, and a NaN loss (stops naming the last good checkpoint, or
# skips steps with --skip-nonfinite). docs/robustness.md lists each case with its message.
#   trainer_bad_inputs.sh PATH/TO/cct_trainer WORK_DIR SEEDS_DIR
# SEEDS_DIR is fuzz/corpus (small valid images and safetensors files made by fuzz/make_seeds.cpp).
set -euo pipefail
trainer=$1
work=$2
seeds=$3
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
cases=0

# expect_error NAME PATTERN COMMAND...: the command fails (status 1 or CLI11's usage error), prints
# PATTERN (an extended regex), and does not crash (no signal, no sanitizer report).
expect_error() {
  local name=$1 pattern=$2
  shift 2
  local log="$work/case_$cases.log" status=0
  "$@" > "$log" 2>&1 || status=$?
  [ $status -ne 0 ] || { cat "$log"; fail "$name: succeeded"; }
  [ $status -lt 128 ] || { cat "$log"; fail "$name: killed by a signal (status $status)"; }
  grep -q -E -e "$pattern" "$log" || { cat "$log"; fail "$name: expected a message matching '$pattern'"; }
  echo "ok: $name -> $(grep -m 1 -E -e "$pattern" "$log")"
  cases=$((cases + 1))
}

# Data: CIFAR-10 (5 x 8 train, 10 test), CIFAR-100 (16 train, 8 test), MNIST-style IDX (12 of 28x28).
cifar_records() {  # file records label_bytes
  local i b
  : > "$1"
  for ((i = 0; i < $2; i++)); do
    for ((b = 0; b < $3; b++)); do printf "\\x$(printf %02x $((i % 10)))" >> "$1"; done
    head -c 3072 /dev/zero | tr '\000' "\\$(printf %03o $((i * 25 % 256)))" >> "$1"
  done
}
mkdir -p "$work/cifar10" "$work/cifar100" "$work/idx" "$work/empty_cifar" "$work/truncated_cifar" "$work/unknown"
for b in 1 2 3 4 5; do cifar_records "$work/cifar10/data_batch_$b.bin" 8 1; done
cifar_records "$work/cifar10/test_batch.bin" 10 1
cifar_records "$work/cifar100/train.bin" 16 2
cifar_records "$work/cifar100/test.bin" 8 2
idx_file() {  # file dims... (unsigned bytes, data all 7)
  local file=$1 count=1 d
  shift
  printf '\x00\x00\x08'"\\x$(printf %02x $#)" > "$file"
  for d in "$@"; do printf "\\x$(printf %02x $((d >> 24 & 255)))\\x$(printf %02x $((d >> 16 & 255)))\\x$(printf %02x $((d >> 8 & 255)))\\x$(printf %02x $((d & 255)))" >> "$file"; count=$((count * d)); done
  head -c "$count" /dev/zero | tr '\000' '\007' >> "$file"
}
idx_file "$work/idx/train-images-idx3-ubyte" 12 28 28
idx_file "$work/idx/train-labels-idx1-ubyte" 12
idx_file "$work/idx/t10k-images-idx3-ubyte" 4 28 28
idx_file "$work/idx/t10k-labels-idx1-ubyte" 4
for b in 1 2 3 4 5; do cp "$work/cifar10/data_batch_$b.bin" "$work/empty_cifar/"; cp "$work/cifar10/data_batch_$b.bin" "$work/truncated_cifar/"; done
: > "$work/empty_cifar/test_batch.bin"
head -c 5000 "$work/cifar10/test_batch.bin" > "$work/truncated_cifar/test_batch.bin"
echo "hello" > "$work/unknown/readme.txt"

quick=(--epochs 1 --batch-size 8 --val-split 0 --augment none --threads 1)

# ---- arguments -------------------------------------------------------------------------------------
expect_error "--epochs 0" "--epochs: must be a positive number, got 0" "$trainer" train --data "$work/cifar10" --epochs 0 --out "$work/run"
expect_error "--batch-size -4" "--batch-size: must be a positive number, got -4" "$trainer" train --data "$work/cifar10" --batch-size -4 --out "$work/run"
expect_error "--val-split 1.5" "--val-split: Value 1.5 not in range 0.0* to 0.90*" "$trainer" train --data "$work/cifar10" --val-split 1.5 --out "$work/run"
expect_error "--lr not a number" "--lr: must be a positive number, got fast" "$trainer" train --data "$work/cifar10" --lr fast --out "$work/run"
expect_error "unknown --model" "unknown model 'cct_99'; known models: " "$trainer" train --data "$work/cifar10" --model cct_99 "${quick[@]}" --out "$work/run"
expect_error "unknown --format" "unknown --format 'tiff'" "$trainer" train --data "$work/cifar10" --format tiff "${quick[@]}" --out "$work/run"
expect_error "--cooldown-epochs >= --epochs" "cooldown-epochs.*must be below --epochs" "$trainer" train --data "$work/cifar10" --cooldown-epochs 1 "${quick[@]}" --out "$work/run"
expect_error "no subcommand" "subcommand" "$trainer"
# Values that parse but make no sense: one message naming the option and its range, no output folder.
expect_error "--lr inf" "--lr must be a positive finite number, got inf" "$trainer" train --data "$work/cifar10" --lr inf --out "$work/bad_run"
expect_error "--min-lr above --lr" "--min-lr must be between 0 and 0.002 \(--lr\), got 0.5" "$trainer" train --data "$work/cifar10" --min-lr 0.5 --out "$work/bad_run"
expect_error "--threads -3" "--threads must be a whole number from 0 to 4096, got -3" "$trainer" train --data "$work/cifar10" --threads -3 --out "$work/bad_run"
expect_error "--mixup -1" "--mixup must be a finite number of at least 0, got -1" "$trainer" train --data "$work/cifar10" --mixup -1 --out "$work/bad_run"
expect_error "--clip-grad nan" "--clip-grad must be a finite number of at least 0, got nan" "$trainer" train --data "$work/cifar10" --clip-grad nan --out "$work/bad_run"
expect_error "--image-size 100000" "--image-size must be a whole number from 1 to 1024, got 100000" "$trainer" train --data "$work/cifar10" --image-size 100000 --out "$work/bad_run"
expect_error "--limit-train -5" "--limit-train must be a whole number from 0 to" "$trainer" train --data "$work/cifar10" --limit-train -5 --out "$work/bad_run"
expect_error "--time-budget -1" "--time-budget must be between 0 and" "$trainer" train --data "$work/cifar10" --time-budget -1 --out "$work/bad_run"
[ ! -e "$work/bad_run" ] || fail "a refused option left an output folder behind"
status=0; "$trainer" train --data "$work/cifar10" --epochs 0 --out "$work/bad_run" > /dev/null 2>&1 || status=$?
[ $status -eq 2 ] || fail "a usage error should exit with status 2, got $status"
echo "ok: usage errors exit with status 2; refused values leave no output folder"

# ---- data --------------------------------------------------------------------------------------------
expect_error "missing data folder" "data folder '$work/nowhere' does not exist" "$trainer" train --data "$work/nowhere" "${quick[@]}" --out "$work/run"
expect_error "no --data and no CCT_DATA_DIR" "no data: pass --data" env -u CCT_DATA_DIR "$trainer" train "${quick[@]}" --out "$work/run"
expect_error "a folder of no known format" "cannot tell the format of data folder" "$trainer" train --data "$work/unknown" "${quick[@]}" --out "$work/run"
expect_error "empty CIFAR test batch" "test_batch.bin' is empty" "$trainer" train --data "$work/empty_cifar" "${quick[@]}" --out "$work/run"
expect_error "truncated CIFAR test batch" "test_batch.bin' is truncated" "$trainer" train --data "$work/truncated_cifar" "${quick[@]}" --out "$work/run"
expect_error "training set smaller than one batch" "smaller than one batch of 64" "$trainer" train --data "$work/cifar10" --epochs 1 --batch-size 64 --val-split 0 --threads 1 --out "$work/run"

# ---- checkpoints -------------------------------------------------------------------------------------
"$trainer" train --data "$work/cifar10" "${quick[@]}" --out "$work/c10" > "$work/c10.log" 2>&1 || { cat "$work/c10.log"; fail "training the CIFAR-10 model failed"; }
ckpt="$work/c10/last.safetensors"
expect_error "missing checkpoint" "missing.safetensors" "$trainer" eval --checkpoint "$work/missing.safetensors" --data "$work/cifar10"
head -c 3000 "$ckpt" > "$work/truncated.safetensors"
expect_error "truncated checkpoint" "truncated.safetensors.*(truncated|exceeds|run past)" "$trainer" eval --checkpoint "$work/truncated.safetensors" --data "$work/cifar10"
echo "not a checkpoint at all" > "$work/text.safetensors"
expect_error "a text file as checkpoint" "text.safetensors.*(absurd|exceeds|header)" "$trainer" predict --checkpoint "$work/text.safetensors" "$seeds/image/rgb_3x2.png"
expect_error "a safetensors file that is no model" "holds weights only .*pass --model NAME" "$trainer" eval --checkpoint "$seeds/safetensors/mixed_dtypes.safetensors" --data "$work/cifar10"
expect_error "CIFAR-10 checkpoint on CIFAR-100 data (class count)" "has 10 classes but the data in .* has 100" "$trainer" eval --checkpoint "$ckpt" --data "$work/cifar100"
expect_error "RGB 32x32 checkpoint on 28x28 grayscale IDX data" "takes 3x32x32 images but the data has 1x28x28" "$trainer" eval --checkpoint "$ckpt" --data "$work/idx"
mkdir -p "$work/resume_other"
cp "$work/c10/config.json" "$work/resume_other/"
cp "$seeds/checkpoint/cct_tiny.safetensors" "$work/resume_other/last.safetensors"
expect_error "--resume from a checkpoint of another model" "is a checkpoint of 'fuzz_tiny' \(cct, 1 layers.* but the model is 'cct_2_3x2_32'" \
  "$trainer" train --resume --out "$work/resume_other"
rm "$work/resume_other/last.safetensors"
expect_error "--resume without a checkpoint" "no checkpoint .*last.safetensors' to resume from" "$trainer" train --resume --out "$work/resume_other"

# ---- images --------------------------------------------------------------------------------------------
printf 'GIF89a\x01\x00\x01\x00' > "$work/image.gif"
expect_error "unsupported image format" "cannot decode image '$work/image.gif'" "$trainer" predict --checkpoint "$ckpt" "$work/image.gif"
: > "$work/empty.png"
expect_error "empty image file" "cannot decode image '$work/empty.png': the file is empty" "$trainer" predict --checkpoint "$ckpt" "$work/empty.png"
expect_error "missing image file" "(File does not exist|does not exist).*nothing.png|nothing.png.*(does not exist|No such)" "$trainer" predict --checkpoint "$ckpt" "$work/nothing.png"
expect_error "--top-k -2" "--top-k: must be a positive number, got -2" "$trainer" predict --checkpoint "$ckpt" --top-k -2 "$seeds/image/rgb_3x2.png"
# Odd sizes and channel counts are converted and resized, not refused.
"$trainer" predict --checkpoint "$ckpt" "$seeds/image/gray_5x4.png" "$seeds/image/rgba_2x2.png" "$seeds/image/gray_3x5.jpg" \
  --top-k 2 > "$work/odd_images.log" 2>&1 || { cat "$work/odd_images.log"; fail "predict on odd-sized images failed"; }
[ "$(grep -c '%' "$work/odd_images.log")" -eq 6 ] || { cat "$work/odd_images.log"; fail "predict on odd-sized images: expected 3 x 2 classes"; }
echo "ok: odd-sized grayscale/RGBA/JPEG images are converted and resized for predict"

# A FIFO given as an image is refused at once (opening it for reading would wait for a writer forever).
mkfifo "$work/pipe.png"
expect_error "a FIFO as image" "pipe.png.*FIFO \(named pipe\), not a regular file" timeout 30 "$trainer" predict --checkpoint "$ckpt" "$work/pipe.png"

# --json stays valid UTF-8 for a file name that is not (Latin-1 bytes become U+FFFD).
latin1_name="$work/$(printf 'caf\351.png')"
cp "$seeds/image/rgb_3x2.png" "$latin1_name"
"$trainer" predict --checkpoint "$ckpt" --json "$latin1_name" > "$work/latin1.json" 2> "$work/latin1.err" ||
  { cat "$work/latin1.err"; fail "predict --json on a Latin-1 file name failed"; }
/usr/bin/env python3 -c 'import json,sys; d=json.loads(open(sys.argv[1], encoding="utf-8").read()); assert "caf\ufffd.png" in d["predictions"][0]["image"], d' \
  "$work/latin1.json" || fail "predict --json wrote invalid UTF-8 (or lost the name) for a Latin-1 file name"
echo "ok: predict --json writes valid UTF-8 for a Latin-1 file name"

# Many images: predict works through them a chunk at a time (150 > the chunk of 64) and answers each.
mkdir -p "$work/many"
for i in $(seq 1 150); do ln -s "$(cd "$seeds/image" && pwd)/rgb_3x2.png" "$work/many/img_$i.png"; done
"$trainer" predict --checkpoint "$ckpt" --json "$work"/many/img_*.png > "$work/many.json" 2> "$work/many.err" ||
  { cat "$work/many.err"; fail "predict on 150 images failed"; }
/usr/bin/env python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read()); assert len(d["predictions"]) == 150, len(d["predictions"])' \
  "$work/many.json" || fail "predict on 150 images did not answer each one"
echo "ok: predict answers 150 images, a chunk at a time"

# ---- a NaN loss ------------------------------------------------------------------------------------------
# An absurd learning rate blows the weights up within a few steps.
nan_args=(--data "$work/cifar10" --epochs 3 --batch-size 8 --val-split 0 --augment none --threads 1 --warmup-epochs 0
          --lr 1e30 --weight-decay 0)
expect_error "NaN loss stops training" "(loss is -?(nan|inf)|gradient of .* is not finite).*training stopped. (The last good checkpoint is .*last.safetensors|No checkpoint was saved yet)" \
  "$trainer" train "${nan_args[@]}" --out "$work/nan"
"$trainer" train "${nan_args[@]}" --skip-nonfinite --out "$work/nan_skip" > "$work/nan_skip.log" 2>&1 ||
  { cat "$work/nan_skip.log"; fail "--skip-nonfinite did not finish"; }
grep -q "skipping this step" "$work/nan_skip.log" || { cat "$work/nan_skip.log"; fail "--skip-nonfinite skipped nothing"; }
grep -q '"test_loss": null' "$work/nan_skip/final.json" || { cat "$work/nan_skip/final.json"; fail "a NaN test loss should be null in final.json"; }
echo "ok: --skip-nonfinite skips non-finite steps and finishes (a NaN test loss is null in final.json)"

echo "trainer bad-input test passed ($cases error cases)"
