#!/usr/bin/env bash
# PyTorch weights in the CLI, end to end: PyTorch builds a reference model (tests/fixtures/reference_models.py)
# and saves a plain .pth; scripts/convert_checkpoint.py converts it to a weights-only safetensors file;
# `cct_trainer predict --model NAME --json` on real CIFAR-10 test images (PNG, so both sides see the same
# pixels) returns PyTorch's logits to 1e-4, with the reference's evaluation preprocessing chosen by
# default, and `eval` preprocesses the same file the same way. Needs torch and Pillow in /usr/bin/python3
# and the CIFAR-10 archive in ../shared/data; otherwise exits 77 (skipped) saying which is missing.
#   pytorch_weights.sh PATH/TO/cct_trainer WORK_DIR
set -euo pipefail
trainer=$1
work=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
PYTHON=${CCT_TORCH_PYTHON:-/usr/bin/python3}
tarball=${CCT_CIFAR10_TAR:-$root/../shared/data/cifar10/cifar10-jpg.tar.gz}
# find_spec looks for the modules without importing them (importing torch takes seconds; the steps below do).
if ! "$PYTHON" -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is None or u.find_spec('PIL') is None)" > /dev/null 2>&1; then
  echo "SKIPPED: $PYTHON cannot import torch and PIL (scripts/install_deps.sh --with-torch installs them)"; exit 77
fi
if [ ! -f "$tarball" ]; then echo "SKIPPED: no CIFAR-10 archive at $tarball (../shared/data is absent)"; exit 77; fi
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work"
model=cct_2_3x2_32

"$PYTHON" "$root/tests/fixtures/pytorch_predict_reference.py" --model "$model" --cifar-tar "$tarball" --count 10 --out-dir "$work"
"$PYTHON" "$root/scripts/convert_checkpoint.py" to-safetensors "$work/weights.pth" "$work/weights.safetensors"

# Without --model a weights-only file is refused with the option that fixes it.
if "$trainer" predict --checkpoint "$work/weights.safetensors" "$work"/image_0_*.png > "$work/no_model.log" 2>&1; then
  fail "predict on a weights-only file without --model succeeded"
fi
grep -q "holds weights only .*pass --model NAME" "$work/no_model.log" || { cat "$work/no_model.log"; fail "unclear error without --model"; }

mapfile -t images < <("$PYTHON" -c "import json,sys; print('\n'.join(json.load(open(sys.argv[1]))['images']))" "$work/expected.json")
"$trainer" predict --checkpoint "$work/weights.safetensors" --model "$model" --classes cifar10 --json "${images[@]}" \
  > "$work/predict.json" 2> "$work/predict.err" || { cat "$work/predict.err"; fail "predict --model failed"; }
"$PYTHON" - "$work/expected.json" "$work/predict.json" <<'PY'
import json, sys
expected = json.load(open(sys.argv[1]))
got = json.load(open(sys.argv[2]))
assert got["class_names"][3] == "cat", got["class_names"]
worst = 0.0
for path, logits, prediction in zip(expected["images"], expected["logits"], got["predictions"]):
    assert prediction["image"] == path, (prediction["image"], path)
    worst = max(worst, max(abs(a - b) for a, b in zip(logits, prediction["logits"])))
print(f"max |cct - PyTorch| over {len(expected['images'])} real images x 10 logits: {worst:.3g}")
sys.exit(0 if worst <= 1e-4 else 1)
PY
echo "ok: predict --model reproduces PyTorch's logits on real images"

# eval preprocesses the same file in the same way: on a CIFAR-10 binary made of those images, its loss
# equals the cross-entropy of PyTorch's logits.
"$PYTHON" - "$work" <<'PY'
import json, math, os, sys
from PIL import Image
work = sys.argv[1]
expected = json.load(open(os.path.join(work, "expected.json")))
names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
os.makedirs(os.path.join(work, "cifar"), exist_ok=True)
records, losses = b"", []
for path, logits in zip(expected["images"], expected["logits"]):
    label = names.index(os.path.basename(path).split("_", 2)[2][:-4])
    image = Image.open(path).convert("RGB")
    planes = b"".join(bytes(image.getchannel(c).getdata()) for c in range(3))
    records += bytes([label]) + planes
    top = max(logits)
    losses.append(math.log(sum(math.exp(v - top) for v in logits)) + top - logits[label])
for b in range(1, 6):
    open(os.path.join(work, "cifar", f"data_batch_{b}.bin"), "wb").write(records)
open(os.path.join(work, "cifar", "test_batch.bin"), "wb").write(records)
json.dump({"loss": sum(losses) / len(losses)}, open(os.path.join(work, "expected_loss.json"), "w"))
PY
"$trainer" eval --checkpoint "$work/weights.safetensors" --model "$model" --data "$work/cifar" --out "$work/eval" \
  > "$work/eval.log" 2>&1 || { cat "$work/eval.log"; fail "eval --model failed"; }
grep -q "preprocessing: the reference's CIFAR evaluation" "$work/eval.log" || { cat "$work/eval.log"; fail "eval did not use the reference preprocessing"; }
"$PYTHON" - "$work/expected_loss.json" "$work/eval/eval.json" <<'PY'
import json, sys
want = json.load(open(sys.argv[1]))["loss"]
got = json.load(open(sys.argv[2]))["loss"]
print(f"eval loss {got:.6f}, PyTorch's {want:.6f}")
sys.exit(0 if abs(got - want) <= 1e-4 else 1)
PY
echo "ok: eval --model preprocesses as predict does (its loss equals PyTorch's)"
echo "PyTorch weights CLI test passed"
