#!/usr/bin/env bash
# What examples/custom_variant saves loads back. The config-only variant (a ModelConfig with other sizes)
# works in model_summary and in cct_trainer predict and eval like a registered model; the custom-block
# variant reloads in the library (the example checks both reloads itself and exits non-zero otherwise).
#   custom_variant.sh PATH/TO/custom_variant PATH/TO/model_summary PATH/TO/cct_trainer WORK_DIR
set -euo pipefail
variant=$1
summary=$2
trainer=$3
work=$4
rm -rf "$work" && mkdir -p "$work/data"
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. the example: trains both variants a few steps, saves them, reloads them and compares the logits
"$variant" 3 "$work" > "$work/variant.log" 2>&1 || { cat "$work/variant.log"; fail "custom_variant exited non-zero"; }
for f in config_variant.safetensors layer_scale_variant.safetensors; do
  [ -s "$work/$f" ] || fail "custom_variant did not write $f"
done
grep -q "classifier.blocks.2.ls1 .*LayerScale .*(1, 64, 96)" "$work/variant.log" ||
  { cat "$work/variant.log"; fail "the summary of the LayerScale model has no shaped row for its LayerScale"; }
grep -q "? unknown" "$work/variant.log" && fail "the summary of the LayerScale model has unknown rows"

# 2. model_summary reads the config variant's checkpoint
"$summary" "$work/config_variant.safetensors" > "$work/summary.log" 2>&1 ||
  { cat "$work/summary.log"; fail "model_summary of the checkpoint exited non-zero"; }
grep -q "^cct_3_5x2_32_d96: input (1, 3, 32, 32)" "$work/summary.log" || fail "model_summary printed another model"
grep -q "classifier.blocks.2.self_attn.qkv .*(1, 64, 288)" "$work/summary.log" || fail "model_summary lost the custom sizes"
if "$summary" "$work/no_such_file.safetensors" > "$work/err.log" 2>&1; then fail "model_summary accepted a missing file"; fi
grep -q "no checkpoint file" "$work/err.log" || fail "model_summary's error for a missing file is unclear"

# 3. cct_trainer predict on a 40x24 BMP image (a 54-byte header, then rows)
{ printf 'BM\x76\x0b\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00\x28\x00\x00\x00\x18\x00\x00\x00'
  printf '\x01\x00\x18\x00\x00\x00\x00\x00\x40\x0b\x00\x00\x13\x0b\x00\x00\x13\x0b\x00\x00'
  printf '\x00\x00\x00\x00\x00\x00\x00\x00'
  head -c $((40 * 24 * 3)) /dev/urandom; } > "$work/image.bmp"
"$trainer" predict --checkpoint "$work/config_variant.safetensors" "$work/image.bmp" --json --threads 2 \
  > "$work/predict.json" 2>&1 || { cat "$work/predict.json"; fail "predict exited non-zero"; }
grep -q '"logits"' "$work/predict.json" || fail "predict --json has no logits"

# 4. cct_trainer eval on a small CIFAR-10-format data set (records: <label byte><3072 pixel bytes>)
write_batch() {  # file records
  local file=$1 records=$2 i
  : > "$file"
  for ((i = 0; i < records; i++)); do
    printf "\\x$(printf %02x $((i % 10)))" >> "$file"
    head -c 3072 /dev/urandom >> "$file"
  done
}
for b in 1 2 3 4 5; do write_batch "$work/data/data_batch_$b.bin" 10; done
write_batch "$work/data/test_batch.bin" 20
"$trainer" eval --checkpoint "$work/config_variant.safetensors" --data "$work/data" --threads 2 > "$work/eval.log" 2>&1 ||
  { cat "$work/eval.log"; fail "eval exited non-zero"; }
grep -q "cct_3_5x2_32_d96 on 20 test images: top-1" "$work/eval.log" || { cat "$work/eval.log"; fail "eval printed no accuracy"; }
echo "custom_variant: both variants reload; the config variant runs in model_summary, predict and eval"
