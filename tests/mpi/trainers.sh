#!/usr/bin/env bash
# Both trainers as one data-parallel job under a real `mpirun -np 2` on localhost (tiny data written
# here, one thread per rank):
#   1. a 2-rank run: rank 0 alone prints and writes (one "training" line, one metrics line per epoch),
#      config.json records "world_size": 2, the global batch is printed, the test runs sharded;
#   2. 1 rank under mpirun gives a checkpoint byte-identical to a run without mpirun;
#   3. SIGTERM to one rank stops every rank at the same step with a consistent last checkpoint,
#   4. from which --resume under mpirun reaches the uninterrupted 2-rank run's weights bit for bit;
#   5. a rank that fails (its data folder is missing) ends the whole job within seconds with an error
#      naming the rank, instead of leaving rank 0 waiting, and so does a rank killed with SIGKILL;
#   6. the text trainer trains as a 2-rank job the same way.
#   trainers.sh PATH/TO/cct_trainer PATH/TO/cct_text WORK_DIR
set -euo pipefail
image_trainer=$1
text_trainer=$2
work=$3
here=$(dirname "${BASH_SOURCE[0]}")
mpirun_sh=$here/mpirun.sh
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$here/../cli/tiny_data.sh"
write_tiny_cifar "$work/cifar"
write_tiny_trec "$work/text"
export OMP_NUM_THREADS=1
args=(--data "$work/cifar" --batch-size 4 --val-split 0.2 --augment none --threads 1 --warmup-epochs 0
      --attention-dropout 0 --stochastic-depth 0 --precision fp32)

# signal_rank_1 SIGNAL NAME EPOCHS: starts a long 2-rank image run into $work/NAME in the background ($job),
# waits for its first epoch, and sends SIGNAL to rank 1 alone (as a scheduler or `kill` would).
signal_rank_1() {
  local signal=$1 name=$2 epochs=$3 pid rank1=""
  bash "$mpirun_sh" -np 2 "$image_trainer" train "${args[@]}" --epochs "$epochs" --out "$work/$name" > "$work/$name.log" 2>&1 &
  job=$!
  for _ in $(seq 1 300); do
    [ -s "$work/$name/metrics.jsonl" ] && break
    sleep 0.05
  done
  for pid in $(pgrep -f "^$image_trainer train .*$work/$name" || true); do
    tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && rank1=$pid
  done
  [ -n "$rank1" ] || { kill -9 "$job" 2>/dev/null; cat "$work/$name.log"; fail "$name: rank 1's process not found"; }
  kill "-$signal" "$rank1"
}

# 1. two ranks
bash "$mpirun_sh" -np 2 "$image_trainer" train "${args[@]}" --epochs 2 --out "$work/two" > "$work/two.log" 2>&1 ||
  { cat "$work/two.log"; fail "the 2-rank run failed"; }
[ "$(grep -c '^training ' "$work/two.log")" -eq 1 ] || { cat "$work/two.log"; fail "not exactly one 'training' line: ranks other than 0 print"; }
grep -q 'data-parallel: 2 ranks x 4 per step = 8 per step' "$work/two.log" || { cat "$work/two.log"; fail "no global batch line"; }
grep -q '"world_size": 2' "$work/two/config.json" || fail "config.json has no world_size 2"
[ "$(wc -l < "$work/two/metrics.jsonl")" -eq 2 ] || { cat "$work/two/metrics.jsonl"; fail "metrics.jsonl is not one line per epoch"; }
grep -q '"test_size": 10' "$work/two/final.json" || { cat "$work/two/final.json"; fail "the sharded test did not count the 10 test images once each"; }
echo "ok: a 2-rank run prints and writes once, with world_size 2 and the whole test set"

# 2. one rank under mpirun = no mpirun, bit for bit
bash "$mpirun_sh" -np 1 "$image_trainer" train "${args[@]}" --epochs 2 --out "$work/one_mpi" > "$work/one_mpi.log" 2>&1 ||
  { cat "$work/one_mpi.log"; fail "the 1-rank mpirun run failed"; }
"$image_trainer" train "${args[@]}" --epochs 2 --out "$work/one" > "$work/one.log" 2>&1 || { cat "$work/one.log"; fail "the plain run failed"; }
cmp "$work/one/last.safetensors" "$work/one_mpi/last.safetensors" || fail "1 rank under mpirun differs from a run without mpirun"
echo "ok: 1 rank under mpirun writes the same checkpoint as a run without mpirun"

# 3 + 4. SIGTERM (or Ctrl-C) on one rank stops every rank at the same step, rank 0 saves, and --resume
# under mpirun finishes with the uninterrupted 2-rank run's weights, bit for bit.
# Long enough that the signal, sent once the first epoch is logged, lands mid-run (each epoch takes
# about 0.15 s here, the signal follows within about 0.1 s, so 9 epochs are left when it lands).
long_epochs=10
long=(--epochs "$long_epochs")
bash "$mpirun_sh" -np 2 "$image_trainer" train "${args[@]}" "${long[@]}" --out "$work/whole" > "$work/whole.log" 2>&1 ||
  { cat "$work/whole.log"; fail "the uninterrupted $long_epochs-epoch run failed"; }
signal_rank_1 TERM stopped "$long_epochs"
set +e
wait "$job"
set -e
grep -q "^interrupted: saved" "$work/stopped.log" || { cat "$work/stopped.log"; fail "SIGTERM to rank 1 saved no checkpoint"; }
bash "$mpirun_sh" -np 2 "$image_trainer" train --resume --out "$work/stopped" > "$work/stopped2.log" 2>&1 ||
  { cat "$work/stopped2.log"; fail "resuming after the signal failed"; }
cmp "$work/whole/last.safetensors" "$work/stopped/last.safetensors" ||
  fail "the run stopped by a signal and resumed under mpirun differs from the uninterrupted one"
echo "ok: SIGTERM to one rank leaves a checkpoint from which --resume reaches the uninterrupted run's weights"

# 5. a failing rank ends the job: rank 1 gets a data folder that does not exist
bash "$here/expect_failure.sh" 30 "rank 1 of 2" bash "$mpirun_sh" \
  -np 1 "$image_trainer" train "${args[@]}" --epochs 50 --out "$work/failing" : \
  -np 1 "$image_trainer" train "${args[@]/$work\/cifar/$work/missing}" --epochs 50 --out "$work/failing" ||
  fail "a failing rank did not end the job with an error naming it"
echo "ok: a failing rank ends the job with an error naming it"

# 5b. a rank killed outright (SIGKILL: no handler runs) ends the job within seconds, not a hang of rank 0
signal_rank_1 KILL killed 100000
start=$(date +%s)
set +e
wait "$job"
status=$?
set -e
seconds=$(( $(date +%s) - start ))
[ "$status" -ne 0 ] || fail "the job whose rank 1 was killed exited 0"
[ "$seconds" -le 30 ] || fail "the job took $seconds s to end after rank 1 was killed"
grep -q -i "rank 1\|signal 9\|killed" "$work/killed.log" || { cat "$work/killed.log"; fail "mpirun did not say which rank died"; }
echo "ok: a rank killed with SIGKILL ends the job in ${seconds} s (exit $status)"

# 6. the text trainer
bash "$mpirun_sh" -np 2 "$text_trainer" train --dataset trec --data-dir "$work/text" --seq-len 8 --embedding-dim 16 \
  --batch-size 8 --threads 1 --warmup-epochs 0 --epochs 2 --out "$work/text_run" > "$work/text.log" 2>&1 ||
  { cat "$work/text.log"; fail "the 2-rank text run failed"; }
[ "$(grep -c '^training ' "$work/text.log")" -eq 1 ] || { cat "$work/text.log"; fail "text: not exactly one 'training' line"; }
grep -q '"world_size": 2' "$work/text_run/config.json" || fail "text: config.json has no world_size 2"
[ "$(wc -l < "$work/text_run/metrics.jsonl")" -eq 2 ] || fail "text: metrics.jsonl is not one line per epoch"
grep -q '"test_size": 20' "$work/text_run/final.json" || { cat "$work/text_run/final.json"; fail "text: the sharded test did not count 20 sentences"; }
echo "ok: the text trainer runs as a 2-rank job"
echo "all MPI trainer checks passed"
