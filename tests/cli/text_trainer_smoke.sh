#!/usr/bin/env bash
# CLI smoke test of cct_text on a small TREC-format data set written here: train 2 epochs, eval, predict
# (arguments, stdin, JSON), clean errors for missing files, then interrupt a run and resume it, which must
# reproduce the uninterrupted run bit for bit (weights, optimiser and RNG state, vocabulary, metrics).
#   text_trainer_smoke.sh PATH/TO/cct_text WORK_DIR
set -euo pipefail
cct_text=$1
work=$2
rm -rf "$work" && mkdir -p "$work/data/trec"
fail() { echo "FAIL: $*" >&2; exit 1; }

# Questions from per-class templates and fillers, in the official "COARSE:fine question" layout, so
# that the class can be learned from the words.
write_questions() {  # file count seed
  awk -v n="$2" -v seed="$3" 'BEGIN {
    srand(seed)
    split("ABBR:exp DESC:def ENTY:animal HUM:ind LOC:city NUM:count", label, " ")
    t[1,1] = "what does %s stand for ?";       t[1,2] = "what is the abbreviation of %s ?"
    t[2,1] = "what is the meaning of %s ?";    t[2,2] = "why do people like %s ?"
    t[3,1] = "what kind of animal is a %s ?";  t[3,2] = "what color is the %s ?"
    t[4,1] = "who wrote the book about %s ?";  t[4,2] = "who invented the %s ?"
    t[5,1] = "where is the %s located ?";      t[5,2] = "in which country is %s ?"
    t[6,1] = "how many %s are there ?";        t[6,2] = "how much does a %s cost ?"
    nf = split("nasa radio jazz tiger paris river engine coffee tokyo laser moon piano bridge gold", filler, " ")
    for (i = 0; i < n; i++) {
      c = i % 6 + 1
      printf "%s " t[c, int(rand() * 2) + 1] "\n", label[c], filler[int(rand() * nf) + 1] " " filler[int(rand() * nf) + 1]
    }
  }' > "$1"
}
write_questions "$work/data/trec/train_5500.label" 1500 1
write_questions "$work/data/trec/TREC_10.label" 60 2

# A tiny GloVe file (word + 8 values) covering part of the vocabulary.
awk 'BEGIN { n = split("what is the who where how many nasa tiger paris ?", w, " ")
             for (i = 1; i <= n; i++) { printf "%s", w[i]; for (j = 1; j <= 8; j++) printf " %.3f", sin(i * j); print "" } }' \
  > "$work/glove_8d.txt"

small=(--dataset trec --data-dir "$work/data" --seq-len 16 --embedding-dim 32 --batch-size 16 --warmup-epochs 1 --threads 2 --val-split 0.1)

# 1. train two epochs
"$cct_text" train "${small[@]}" --epochs 2 --out "$work/run" > "$work/train.log" 2>&1 ||
  { cat "$work/train.log"; fail "train exited non-zero"; }
for f in config.json metrics.jsonl last.safetensors best.safetensors curves.svg confusion_matrix.svg final.json; do
  [ -s "$work/run/$f" ] || fail "train did not write $f"
done
[ "$(wc -l < "$work/run/metrics.jsonl")" -eq 2 ] || fail "metrics.jsonl should have 2 lines"
grep -q '"val_acc"' "$work/run/metrics.jsonl" || fail "metrics.jsonl has no validation accuracy"
grep -q "vocabulary:" "$work/train.log" || fail "train did not describe the vocabulary"
grep -q "test (best epoch" "$work/train.log" || fail "train printed no final test line"
grep -q '"test_acc"' "$work/run/final.json" || fail "final.json has no test accuracy"
ls "$work/run" | grep -q '\.tmp' && fail "a temporary file was left behind"

# GloVe vectors set the word vector size; frozen ones are reported as such
"$cct_text" train "${small[@]}" --epochs 1 --glove "$work/glove_8d.txt" --freeze-embeddings --out "$work/glove" \
  > "$work/glove.log" 2>&1 || { cat "$work/glove.log"; fail "train with --glove exited non-zero"; }
grep -q "GloVe: .* of 8 dimensions.*covered" "$work/glove.log" || { cat "$work/glove.log"; fail "no GloVe coverage line"; }
grep -q "word vectors 8-d (frozen)" "$work/glove.log" || { cat "$work/glove.log"; fail "the model does not use frozen 8-d vectors"; }

# 2. eval (the data set and split settings come from the checkpoint)
"$cct_text" eval --checkpoint "$work/run/best.safetensors" --data-dir "$work/data" --out "$work/eval" > "$work/eval.log" 2>&1 ||
  { cat "$work/eval.log"; fail "eval exited non-zero"; }
grep -q "60 test sentences of trec: accuracy" "$work/eval.log" || { cat "$work/eval.log"; fail "eval printed no accuracy"; }
[ -s "$work/eval/eval.json" ] && [ -s "$work/eval/confusion_matrix.svg" ] || fail "eval wrote no eval.json / confusion_matrix.svg"

# 3. predict: from arguments, from stdin, as JSON
"$cct_text" predict --checkpoint "$work/run/best.safetensors" "who invented the laser radio ?" "where is the paris bridge located ?" \
  --top-k 2 > "$work/predict.log" 2>&1 || { cat "$work/predict.log"; fail "predict exited non-zero"; }
[ "$(grep -c '%' "$work/predict.log")" -eq 4 ] || { cat "$work/predict.log"; fail "predict should list 2 classes for 2 sentences"; }
grep -q "who invented the laser radio ?" "$work/predict.log" || fail "predict did not echo the sentence"
printf 'how many tigers are there ?\n\nwhat does nasa stand for ?\n' |
  "$cct_text" predict --checkpoint "$work/run/best.safetensors" --json > "$work/predict.json" 2>&1 ||
  { cat "$work/predict.json"; fail "predict from stdin exited non-zero"; }
[ "$(grep -c '"text"' "$work/predict.json")" -eq 2 ] || { cat "$work/predict.json"; fail "predict should read 2 stdin lines (blank skipped)"; }
grep -q '"logits"' "$work/predict.json" && grep -q '"probabilities"' "$work/predict.json" ||
  fail "predict --json lacks logits or probabilities"
grep -q '"class_names"' "$work/predict.json" || fail "predict --json lacks the class names"

# 4. errors are one clear line naming the file
if "$cct_text" eval --checkpoint "$work/missing.safetensors" > "$work/err.log" 2>&1; then
  fail "eval of a missing checkpoint succeeded"
fi
grep -q "missing.safetensors" "$work/err.log" || { cat "$work/err.log"; fail "the error does not name the checkpoint"; }
mkdir -p "$work/partial/trec" && cp "$work/data/trec/train_5500.label" "$work/partial/trec/"
if "$cct_text" train --dataset trec --data-dir "$work/partial" --out "$work/partial_run" > "$work/err2.log" 2>&1; then
  fail "training without a test file succeeded"
fi
grep -q "error: .*TREC_10.label" "$work/err2.log" || { cat "$work/err2.log"; fail "the error does not name the missing file"; }
[ "$(wc -l < "$work/err2.log")" -le 3 ] || { cat "$work/err2.log"; fail "the error is not short"; }

# 5. interrupt + resume reproduces the uninterrupted run exactly (word dropout on: its draws must repeat too)
common=("${small[@]}" --epochs 3 --seed 7 --dropout 0.1 --word-dropout 0.2 --glove "$work/glove_8d.txt")
"$cct_text" train "${common[@]}" --out "$work/full" > "$work/full.log" 2>&1 || { cat "$work/full.log"; fail "full run failed"; }
grep -q "word dropout 0.2" "$work/full.log" || { cat "$work/full.log"; fail "the run does not say it uses word dropout"; }
grep -q '"word_dropout": *0.2' "$work/full/config.json" || fail "config.json does not record --word-dropout"
set +e
timeout --preserve-status -s INT 2 "$cct_text" train "${common[@]}" --out "$work/split" > "$work/split1.log" 2>&1
status=$?
set -e
if [ $status -eq 130 ]; then
  grep -q "interrupted: saved" "$work/split1.log" || fail "an interrupted run did not say where it saved"
  "$cct_text" train --resume --out "$work/split" > "$work/split2.log" 2>&1 || { cat "$work/split2.log"; fail "resume failed"; }
  grep -q "resumed at epoch" "$work/split2.log" || fail "the resumed run did not say where it resumed"
elif [ $status -ne 0 ]; then
  cat "$work/split1.log"; fail "the run to interrupt failed ($status)"
else
  echo "note: the run finished before the interrupt; resume not exercised"
fi
cmp "$work/full/last.safetensors" "$work/split/last.safetensors" || fail "resumed run's last.safetensors differs"
cmp "$work/full/best.safetensors" "$work/split/best.safetensors" || fail "resumed run's best.safetensors differs"
strip_times() { sed -E 's/,"epoch_seconds".*//' "$1"; }
diff <(strip_times "$work/full/metrics.jsonl") <(strip_times "$work/split/metrics.jsonl") ||
  fail "resumed run's metrics differ"
echo "text trainer CLI smoke test passed"
