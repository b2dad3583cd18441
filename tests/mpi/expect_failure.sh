#!/usr/bin/env bash
# Runs COMMAND, which must fail within SECONDS and print TEXT (on stdout or stderr): a job whose rank
# fails ends at once with an error that names the rank, instead of hanging.
#   tests/mpi/expect_failure.sh SECONDS TEXT COMMAND [ARGS...]
set -uo pipefail
limit=$1 text=$2
shift 2
start=$(date +%s%N)
output=$(timeout --kill-after=5 "$((limit * 4))" "$@" 2>&1)
rc=$?
seconds=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
echo "$output" | tail -n 20
echo "exit code $rc after ${seconds} s"
[ "$rc" -ne 0 ] || { echo "FAILED: the command succeeded"; exit 1; }
[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || { echo "FAILED: the command hung (killed by the timeout)"; exit 1; }
echo "$output" | grep -qF -- "$text" || { echo "FAILED: no '$text' in the output"; exit 1; }
awk -v s="$seconds" -v l="$limit" 'BEGIN { exit !(s <= l) }' || { echo "FAILED: took ${seconds} s (limit ${limit} s)"; exit 1; }
echo "ok: failed as expected in ${seconds} s, naming '$text'"
