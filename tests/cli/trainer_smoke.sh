#!/usr/bin/env bash
# CLI smoke test of cct_trainer on a small CIFAR-10-format data set written here: train 2 epochs, eval,
# predict (text, JSON, attention picture), then interrupt a run and resume it, which must reproduce
# the uninterrupted run bit for bit (weights, optimiser and RNG state, metrics).
#   trainer_smoke.sh PATH/TO/cct_trainer WORK_DIR
set -euo pipefail
trainer=$1
work=$2
rm -rf "$work" && mkdir -p "$work/data"
fail() { echo "FAIL: $*" >&2; exit 1; }

# CIFAR-10 binary batches: records of <label byte><3072 pixel bytes>; labels cycle through 0-9 and the
# pixels carry a class-dependent brightness so that there is something to learn. One perl process writes
# them all (a shell loop spent seconds of CPU starting processes).
perl -e '
  my ($dir) = @ARGV;
  srand(11);
  my @batches = ((map { ["data_batch_$_.bin", 40, $_] } 1 .. 5), ["test_batch.bin", 50, 0]);
  for my $batch (@batches) {
    my ($name, $records, $first_label) = @$batch;
    open(my $out, ">:raw", "$dir/$name") or die "$dir/$name: $!\n";
    for my $i (0 .. $records - 1) {
      my $label = ($first_label + $i) % 10;
      my $low = $label * 20;
      print $out chr($label), pack("C*", map { $low + int(rand(256 - $low)) } 1 .. 3072);
    }
    close($out) or die "$dir/$name: $!\n";
  }' "$work/data"

# 1. train two epochs
"$trainer" train --data "$work/data" --epochs 2 --batch-size 16 --warmup-epochs 1 --val-split 0.2 \
  --threads 2 --out "$work/run" > "$work/train.log" 2>&1 || { cat "$work/train.log"; fail "train exited non-zero"; }
for f in config.json metrics.jsonl last.safetensors best.safetensors curves.svg confusion_matrix.svg final.json augmented_samples.png; do
  [ -s "$work/run/$f" ] || fail "train did not write $f"
done
[ "$(wc -l < "$work/run/metrics.jsonl")" -eq 2 ] || fail "metrics.jsonl should have 2 lines"
grep -q '"val_acc"' "$work/run/metrics.jsonl" || fail "metrics.jsonl has no validation accuracy"
grep -q "test (best epoch" "$work/train.log" || fail "train printed no final test line"
ls "$work/run" | grep -q '\.tmp\.' && fail "a temporary file was left behind"

# 2. eval
"$trainer" eval --checkpoint "$work/run/best.safetensors" --data "$work/data" --out "$work/eval" > "$work/eval.log" 2>&1 ||
  { cat "$work/eval.log"; fail "eval exited non-zero"; }
grep -q "top-1" "$work/eval.log" || fail "eval printed no accuracy"
[ -s "$work/eval/eval.json" ] || fail "eval wrote no eval.json"

# 3. predict on a 40x24 BMP image (resized to the model's 32x32 input): a 54-byte header, then rows
{ printf 'BM\x76\x0b\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00\x28\x00\x00\x00\x18\x00\x00\x00'
  printf '\x01\x00\x18\x00\x00\x00\x00\x00\x40\x0b\x00\x00\x13\x0b\x00\x00\x13\x0b\x00\x00'
  printf '\x00\x00\x00\x00\x00\x00\x00\x00'
  head -c $((40 * 24 * 3)) /dev/urandom; } > "$work/image.bmp"
"$trainer" predict --checkpoint "$work/run/best.safetensors" "$work/image.bmp" --top-k 3 > "$work/predict.log" 2>&1 ||
  { cat "$work/predict.log"; fail "predict exited non-zero"; }
[ "$(grep -c '%' "$work/predict.log")" -eq 3 ] || fail "predict should list 3 classes"
"$trainer" predict --checkpoint "$work/run/best.safetensors" "$work/image.bmp" --json --attention "$work/attention.png" \
  > "$work/predict.json" 2>&1 || { cat "$work/predict.json"; fail "predict --json exited non-zero"; }
grep -q '"logits"' "$work/predict.json" || fail "predict --json has no logits"
[ -s "$work/attention.png" ] || fail "predict --attention wrote no picture"

# 4. errors are one clear line
if "$trainer" eval --checkpoint "$work/missing.safetensors" --data "$work/data" > "$work/err.log" 2>&1; then
  fail "eval of a missing checkpoint succeeded"
fi
grep -q "missing.safetensors" "$work/err.log" || { cat "$work/err.log"; fail "the error does not name the file"; }

# 5. interrupt + resume reproduces the uninterrupted run exactly
common=(--data "$work/data" --epochs 3 --batch-size 8 --warmup-epochs 1 --val-split 0.2 --threads 2 --seed 7)
"$trainer" train "${common[@]}" --out "$work/full" > "$work/full.log" 2>&1 || { cat "$work/full.log"; fail "full run failed"; }
set +e
timeout --preserve-status -s INT 2 "$trainer" train "${common[@]}" --out "$work/split" > "$work/split1.log" 2>&1
status=$?
set -e
if [ $status -eq 130 ]; then
  grep -q "interrupted: saved" "$work/split1.log" || fail "an interrupted run did not say where it saved"
  "$trainer" train --resume --out "$work/split" > "$work/split2.log" 2>&1 || { cat "$work/split2.log"; fail "resume failed"; }
elif [ $status -ne 0 ]; then
  cat "$work/split1.log"; fail "the run to interrupt failed ($status)"
else
  echo "note: the run finished before the interrupt; resume not exercised"
fi
cmp "$work/full/last.safetensors" "$work/split/last.safetensors" || fail "resumed run's last.safetensors differs"
strip_times() { sed -E 's/,"epoch_seconds".*//' "$1"; }
diff <(strip_times "$work/full/metrics.jsonl") <(strip_times "$work/split/metrics.jsonl") ||
  fail "resumed run's metrics differ"
# 6. a long --time-budget chooses the long recipe for the flags not given, says so, and saves it
# (the run would fill 45 minutes, so it is interrupted as soon as its settings are written)
budget_run() {  # out, extra flags...
  local out=$1 pid status
  shift
  "$trainer" train --data "$work/data" --batch-size 8 --threads 2 --time-budget 45 \
    "$@" --out "$work/$out" > "$work/$out.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do  # config.json is written (whole, by rename) before the first step
    [ -s "$work/$out/config.json" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -INT "$pid" 2>/dev/null || true
  set +e
  wait "$pid"
  status=$?
  set -e
  [ $status -eq 0 ] || [ $status -eq 130 ] || { cat "$work/$out.log"; fail "the --time-budget 45 run failed ($status)"; }
  [ -s "$work/$out/config.json" ] || { cat "$work/$out.log"; fail "the --time-budget 45 run wrote no config.json"; }
}
budget_run long
grep -q "recipe: a 45-minute budget" "$work/long.log" || { cat "$work/long.log"; fail "the long recipe was not announced"; }
grep -q '"augment": "autoaugment"' "$work/long/config.json" || fail "a 45-minute budget did not choose AutoAugment"
grep -q '"attention_dropout": 0.1' "$work/long/config.json" || fail "a 45-minute budget did not choose attention dropout 0.1"
grep -q '"stochastic_depth": 0.1' "$work/long/config.json" || fail "a 45-minute budget did not choose stochastic depth 0.1"
budget_run long_basic --augment basic --stochastic-depth 0
grep -q '"augment": "basic"' "$work/long_basic/config.json" || fail "--augment basic was overridden by the long recipe"
grep -q '"stochastic_depth": 0.0' "$work/long_basic/config.json" || fail "--stochastic-depth 0 was overridden"
grep -q '"attention_dropout": 0.1' "$work/long_basic/config.json" || fail "the flag not given did not get the long recipe"
echo "trainer CLI smoke test passed"
