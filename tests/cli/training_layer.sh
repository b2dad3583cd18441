#!/usr/bin/env bash
# The behaviours both trainers get from the one training layer (cct::train::fit, RunFolder), checked
# for each of them on tiny data sets written here:
#   1. an --out that is a file, or empty, is refused at start-up, naming the path, before any data is read;
#   2. a NaN loss before the first checkpoint stops with "No checkpoint was saved yet" (not a claim
#      about a last good checkpoint that does not exist);
#   3. with --skip-nonfinite a diverged run finishes and writes null (not a crash) for the non-finite
#      test loss in final.json, and eval writes null in eval.json;
#   4. best.safetensors is written before last.safetensors in an improving epoch (so after a crash
#      between the two, last never names an epoch whose best file is missing);
#   5. a second run on a folder in use is refused, naming the process that holds it;
#   6. --resume refuses a flag that differs from the saved run, and --epochs extends a finished run;
#   7. (images) --resume refuses data whose class names changed;
#   8. the precision is said in the first lines: auto picks bf16 only where the CPU has AVX512_BF16
#      (forced off with CCT_FORCE_PORTABLE_BF16=1 it picks fp32), and bf16 asked for on such a CPU says
#      that a slower portable path runs; the checkpoint records the precision.
#   9. `plot --run` redraws curves.svg (with the accuracy-against-minutes panel) and refuses a missing folder;
#   training_layer.sh PATH/TO/cct_trainer PATH/TO/cct_text WORK_DIR
set -euo pipefail
image_trainer=$1
text_trainer=$2
work=$3
rm -rf "$work" && mkdir -p "$work/cifar" "$work/text/trec"
fail() { echo "FAIL: $*" >&2; exit 1; }

source "$(dirname "${BASH_SOURCE[0]}")/tiny_data.sh"
write_tiny_cifar "$work/cifar"
write_tiny_trec "$work/text"

image_args=(--data "$work/cifar" --batch-size 8 --val-split 0.2 --augment none --threads 1 --warmup-epochs 0)
text_args=(--dataset trec --data-dir "$work/text" --seq-len 8 --embedding-dim 16 --batch-size 16 --threads 1 --warmup-epochs 0)

for kind in image text; do
  if [ "$kind" = image ]; then trainer=$image_trainer; args=("${image_args[@]}"); else trainer=$text_trainer; args=("${text_args[@]}"); fi
  default_lr=0.002  # both trainers' default --lr

  # 1. --out that is a file / empty
  echo "not a folder" > "$work/$kind.file"
  if "$trainer" train "${args[@]}" --epochs 1 --out "$work/$kind.file" > "$work/$kind.out.log" 2>&1; then fail "$kind: --out naming a file succeeded"; fi
  grep -q "^error: .*$work/$kind.file.*is not a folder" "$work/$kind.out.log" || { cat "$work/$kind.out.log"; fail "$kind: unclear error for --out naming a file"; }
  grep -q -E "^data:|^training " "$work/$kind.out.log" && { cat "$work/$kind.out.log"; fail "$kind: the run got past start-up"; }
  if "$trainer" train "${args[@]}" --epochs 1 --out "" > "$work/$kind.empty.log" 2>&1; then fail "$kind: --out \"\" succeeded"; fi
  grep -q "^error: the output folder is empty" "$work/$kind.empty.log" || { cat "$work/$kind.empty.log"; fail "$kind: unclear error for an empty --out"; }
  echo "ok: $kind trainer refuses an --out that is a file or empty"

  # 2. NaN before the first checkpoint
  nan_args=("${args[@]}" --epochs 3 --lr 1e30 --weight-decay 0)
  if "$trainer" train "${nan_args[@]}" --out "$work/$kind.nan" > "$work/$kind.nan.log" 2>&1; then fail "$kind: a NaN run succeeded"; fi
  grep -q -E "(loss is -?(nan|inf)|gradient of .* is not finite) at epoch 1, .*training stopped. No checkpoint was saved yet" "$work/$kind.nan.log" ||
    { cat "$work/$kind.nan.log"; fail "$kind: the NaN stop should say that no checkpoint was saved"; }
  [ ! -e "$work/$kind.nan/last.safetensors" ] || fail "$kind: a checkpoint exists although the message says none was saved"
  echo "ok: $kind trainer: NaN before the first checkpoint says no checkpoint was saved"

  # 3. --skip-nonfinite: null metrics in final.json and eval.json
  "$trainer" train "${nan_args[@]}" --skip-nonfinite --out "$work/$kind.skip" > "$work/$kind.skip.log" 2>&1 ||
    { cat "$work/$kind.skip.log"; fail "$kind: --skip-nonfinite did not finish"; }
  grep -q "skipping this step" "$work/$kind.skip.log" || { cat "$work/$kind.skip.log"; fail "$kind: nothing was skipped"; }
  grep -q '"test_loss": null' "$work/$kind.skip/final.json" || { cat "$work/$kind.skip/final.json"; fail "$kind: final.json should hold a null test loss"; }
  if [ "$kind" = image ]; then
    eval_args=(--data "$work/cifar")
  else
    eval_args=(--data-dir "$work/text")
  fi
  "$trainer" eval --checkpoint "$work/$kind.skip/last.safetensors" "${eval_args[@]}" --out "$work/$kind.eval" > "$work/$kind.eval.log" 2>&1 ||
    { cat "$work/$kind.eval.log"; fail "$kind: eval of a diverged checkpoint failed"; }
  grep -q '"loss": null' "$work/$kind.eval/eval.json" || { cat "$work/$kind.eval/eval.json"; fail "$kind: eval.json should hold a null loss"; }
  echo "ok: $kind trainer: a non-finite test loss is null in final.json and eval.json"

  # 4. best before last
  "$trainer" train "${args[@]}" --epochs 1 --out "$work/$kind.order" > "$work/$kind.order.log" 2>&1 ||
    { cat "$work/$kind.order.log"; fail "$kind: training failed"; }
  [ -e "$work/$kind.order/best.safetensors" ] || fail "$kind: no best.safetensors"
  [ "$work/$kind.order/best.safetensors" -nt "$work/$kind.order/last.safetensors" ] &&
    fail "$kind: best.safetensors was written after last.safetensors"
  echo "ok: $kind trainer writes best.safetensors before last.safetensors"

  # 5. one run per folder
  "$trainer" train "${args[@]}" --epochs 1000 --out "$work/$kind.busy" > "$work/$kind.busy.log" 2>&1 &
  busy=$!
  for _ in $(seq 100); do [ -s "$work/$kind.busy/.lock" ] && break; sleep 0.1; done
  if "$trainer" train "${args[@]}" --epochs 1 --out "$work/$kind.busy" > "$work/$kind.busy2.log" 2>&1; then
    kill $busy; fail "$kind: a second run on a folder in use succeeded"
  fi
  kill $busy; wait $busy || true
  grep -q "^error: output folder '$work/$kind.busy' is in use by another training run (process $busy)" "$work/$kind.busy2.log" ||
    { cat "$work/$kind.busy2.log"; fail "$kind: unclear error for a folder in use"; }
  echo "ok: $kind trainer refuses a folder in use by another run"

  # 6. resume: conflicting flags refused, --epochs extends a finished run
  if "$trainer" train --resume --out "$work/$kind.order" --lr 0.5 > "$work/$kind.conflict.log" 2>&1; then fail "$kind: --resume --lr 0.5 succeeded"; fi
  grep -q "^error: --lr 0.5 differs from the run being resumed (--lr $default_lr in $work/$kind.order/config.json)" "$work/$kind.conflict.log" ||
    { cat "$work/$kind.conflict.log"; fail "$kind: unclear error for a conflicting flag on --resume"; }
  "$trainer" train --resume --out "$work/$kind.order" --epochs 2 > "$work/$kind.extend.log" 2>&1 ||
    { cat "$work/$kind.extend.log"; fail "$kind: --resume --epochs 2 failed"; }
  [ "$(wc -l < "$work/$kind.order/metrics.jsonl")" -eq 2 ] || fail "$kind: --epochs 2 did not add an epoch"
  grep -q '"epochs": 2' "$work/$kind.order/config.json" || fail "$kind: config.json does not record the new --epochs"
  echo "ok: $kind trainer: --resume refuses conflicting flags and --epochs extends a finished run"

  # 9. plot: curves.svg drawn again from metrics.jsonl, with the accuracy against minutes
  rm -f "$work/$kind.order/curves.svg"
  "$trainer" plot --run "$work/$kind.order" > "$work/$kind.plot.log" 2>&1 || { cat "$work/$kind.plot.log"; fail "$kind: plot failed"; }
  grep -q "minutes since the start" "$work/$kind.order/curves.svg" || fail "$kind: the curves have no accuracy-against-minutes panel"
  if "$trainer" plot --run "$work/$kind.nowhere" > "$work/$kind.plot2.log" 2>&1; then fail "$kind: plot of a missing folder succeeded"; fi
  grep -q "is not a run folder" "$work/$kind.plot2.log" || { cat "$work/$kind.plot2.log"; fail "$kind: unclear error for plot of a missing folder"; }
  [ ! -e "$work/$kind.nowhere" ] || fail "$kind: plot created the folder it was asked to read"
  echo "ok: $kind trainer: plot redraws curves.svg with accuracy against minutes"
done

# 7. an image folder whose classes change under a run: --resume refuses it
/usr/bin/env python3 - "$work/folder" <<'PY'
import os, struct, sys
root = sys.argv[1]
def bmp(path, shade):
    w = h = 8
    row = bytes([shade, 255 - shade, shade // 2] * w)
    pixels = row * h
    header = b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    open(path, "wb").write(header + info + pixels)
for split, count in (("train", 16), ("test", 4)):
    for c, name in enumerate(("cats", "dogs")):
        os.makedirs(f"{root}/{split}/{name}", exist_ok=True)
        for i in range(count):
            bmp(f"{root}/{split}/{name}/{i}.bmp", 40 + 120 * c + i)
PY
"$image_trainer" train --data "$work/folder" --image-size 8 --model cct_2_3x2_32 --batch-size 8 --val-split 0 --augment none --threads 1 \
  --epochs 1 --out "$work/folder_run" > "$work/folder_run.log" 2>&1 || { cat "$work/folder_run.log"; fail "training on the image folder failed"; }
mv "$work/folder/train/dogs" "$work/folder/train/wolves" && mv "$work/folder/test/dogs" "$work/folder/test/wolves"
if "$image_trainer" train --resume --out "$work/folder_run" --epochs 2 > "$work/folder_resume.log" 2>&1; then fail "resume with other classes succeeded"; fi
grep -q "^error: cannot resume .*last.safetensors: it was trained on the classes \[\"cats\",\"dogs\"\] but the data now has \[\"cats\",\"wolves\"\]" "$work/folder_resume.log" ||
  { cat "$work/folder_resume.log"; fail "unclear error for changed classes on --resume"; }
echo "ok: --resume refuses data whose class names changed"

# 8. precision
CCT_FORCE_PORTABLE_BF16=1 "$image_trainer" train "${image_args[@]}" --epochs 1 --out "$work/fp32_auto" > "$work/fp32_auto.log" 2>&1 ||
  { cat "$work/fp32_auto.log"; fail "training without AVX512_BF16 failed"; }
head -3 "$work/fp32_auto.log" | grep -q "^precision: fp32 (this CPU has no AVX512_BF16" || { cat "$work/fp32_auto.log"; fail "auto should pick fp32 without AVX512_BF16"; }
grep -a -q '"training.precision":"fp32"' "$work/fp32_auto/last.safetensors" || fail "the checkpoint does not record fp32"
CCT_FORCE_PORTABLE_BF16=1 "$image_trainer" train "${image_args[@]}" --epochs 1 --precision bf16 --out "$work/bf16_portable" > "$work/bf16_portable.log" 2>&1 ||
  { cat "$work/bf16_portable.log"; fail "bf16 on the portable path failed"; }
grep -q "^precision: bf16 (this CPU has no AVX512_BF16: a portable bf16 path runs, slower than fp32)" "$work/bf16_portable.log" ||
  { cat "$work/bf16_portable.log"; fail "explicit bf16 without AVX512_BF16 should say it is slower"; }
if grep -q avx512_bf16 /proc/cpuinfo; then
  head -3 "$work/image.order.log" | grep -q "^precision: bf16 (this CPU has AVX512_BF16" || { cat "$work/image.order.log"; fail "auto should pick bf16 here"; }
  grep -a -q '"training.precision":"bf16"' "$work/image.order/last.safetensors" || fail "the checkpoint does not record bf16"
fi
echo "ok: the precision is chosen from the CPU, said first, and recorded in the checkpoint"
echo "training layer CLI test passed (both trainers)"
