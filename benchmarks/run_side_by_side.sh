#!/usr/bin/env bash
# run_side_by_side.sh: cct (fp32 and bf16) against PyTorch (as installed, tuned, tuned + bf16 autocast) on
# the same models, batch and threads.
#
#   benchmarks/run_side_by_side.sh [--rounds N] [--models "cct_2_3x2_32 cct_7_3x1_32"] [--threads "1 2"]
#                                  [--batch 128] [--quick] [--no-wait] [--no-install] [--output FILE]
#
# 1. Builds bench_model, bench_ops and bench_matmul in Release with -march=native (incrementally) in
#    $CCT_BENCH_BUILD_DIR (default: build-bench/ in the repository).
# 2. Installs Debian's libopenblas0-pthread (what `apt-get install python3-torch` brings in as a
#    recommendation: "PyTorch as installed"), libopenblas0-openmp and libjemalloc2 (the tuned
#    configuration) with apt-get when they are missing, saying so. apt would switch the system's default
#    libblas.so.3/liblapack.so.3 alternatives; they are set back to what they were. Each PyTorch
#    configuration picks its BLAS with LD_LIBRARY_PATH, so the system default does not matter.
# 3. Waits (up to 10 minutes, checking every 30 s) until no other process keeps the CPU busy.
# 4. Measures the machine's fp32 FMA and bf16 `vdpbf16ps` peaks at each thread count (bench_ops).
# 5. For each model and thread count, runs `rounds` rounds of: cct fp32 and cct bf16 (bench_model
#    --precision), PyTorch as installed (torch_twin.py), PyTorch tuned (torch_twin.py --tuned with OpenMP
#    OpenBLAS via LD_LIBRARY_PATH, jemalloc via LD_PRELOAD + MALLOC_CONF, channels_last) and PyTorch tuned
#    + bf16 autocast (--tuned --autocast, where the CPU has AVX512_BF16); the order reverses every round.
#    Every configuration runs in its own process, so each peak RSS is its own.
# 6. Prints the tables (per configuration the round with the best median; the ratios of cct at its
#    default precision against the best PyTorch configuration) and writes them to benchmarks/results.md
#    (or --output FILE).
#
# PyTorch is Debian's python3-torch run by /usr/bin/python3 ($TORCH_PYTHON overrides it); when it is not
# installed the PyTorch columns are skipped with a message. Other load on the machine is measured during
# every run (busy CPU time not spent by the benchmark itself) and flagged in the tables.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${CCT_BENCH_BUILD_DIR:-$ROOT/build-bench}
TORCH_PYTHON=${TORCH_PYTHON:-/usr/bin/python3}
PYTHON=/usr/bin/python3  # the table formatting needs only the standard library
[[ -x $PYTHON ]] || PYTHON=python3
OPENBLAS_OPENMP_DIR=/usr/lib/x86_64-linux-gnu/openblas-openmp
OPENBLAS_PTHREAD_DIR=/usr/lib/x86_64-linux-gnu/openblas-pthread
JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
MALLOC_CONF_TUNED="oversize_threshold:0,dirty_decay_ms:-1,muzzy_decay_ms:-1"

ROUNDS=2
MODELS="cct_2_3x2_32 cct_7_3x1_32"
THREADS="1 2"
BATCH=128
QUICK=0
WAIT_QUIET=1
INSTALL=1
OUTPUT=$ROOT/benchmarks/results.md

usage() {
  sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --output) OUTPUT=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --no-wait) WAIT_QUIET=0; shift ;;
    --no-install) INSTALL=0; shift ;;
    -h|--help) usage ;;
    *) echo "run_side_by_side: unknown argument '$1'" >&2; usage ;;
  esac
done

# Iterations per model: "warm-up timed-iterations budget-seconds" (the budget caps a phase's timed runs,
# at least one always runs). CCT-7 steps take seconds (tens of seconds for PyTorch on one thread).
iterations_for() {
  if [[ $QUICK == 1 ]]; then echo "1 2 5"; return; fi
  case $1 in
    cct_7*|cct_6*|cct_14*|cvt_6*|cvt_7*|vit_6*|vit_7*) echo "1 3 30" ;;
    *) echo "2 5 8" ;;
  esac
}

log() { echo "[side-by-side] $*" >&2; }

# ---- 1. build ---------------------------------------------------------------------------------------
# The version measured is what is built now (the tables say so even if the tree changes meanwhile).
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain -- include 2>/dev/null) ]]; then
  commit="$commit + uncommitted changes under include/"
fi
log "building the benchmarks (Release, -march=native) in $BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCCT_NATIVE=ON -DCCT_BUILD_BENCHMARKS=ON \
  -DCCT_BUILD_TESTS=OFF -DCCT_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$BUILD_DIR" --target bench_model bench_ops bench_matmul -j "$(nproc)" >/dev/null
BENCH_MODEL=$BUILD_DIR/benchmarks/bench_model
BENCH_OPS=$BUILD_DIR/benchmarks/bench_ops
# PyTorch's autocast and cct's bf16 are only fast where the CPU has AVX512_BF16 (flag avx512_bf16).
HAVE_BF16=0
grep -qw avx512_bf16 /proc/cpuinfo && HAVE_BF16=1

# ---- 2. PyTorch and the tuning packages --------------------------------------------------------------
HAVE_TORCH=1
if ! "$TORCH_PYTHON" -c "import torch" 2>/dev/null; then
  HAVE_TORCH=0
  log "PyTorch is not installed for $TORCH_PYTHON (Debian: apt-get install python3-torch): skipping the PyTorch" \
      "columns; only cct is measured."
fi

package_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
alternative_value() { update-alternatives --query "$1" 2>/dev/null | awk '/^Value:/ {print $2}'; }

HAVE_TUNED=0
if [[ $HAVE_TORCH == 1 ]]; then
  missing=()
  for package in libopenblas0-pthread libopenblas0-openmp libjemalloc2; do package_installed "$package" || missing+=("$package"); done
  if [[ ${#missing[@]} -gt 0 && $INSTALL == 1 ]]; then
    log "installing ${missing[*]} with apt-get (needed for the tuned PyTorch configuration)"
    blas_before=$(alternative_value libblas.so.3-x86_64-linux-gnu)
    lapack_before=$(alternative_value liblapack.so.3-x86_64-linux-gnu)
    sudo_prefix=()
    [[ $(id -u) != 0 ]] && sudo_prefix=(sudo)
    if "${sudo_prefix[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
         "${missing[@]}" >/dev/null 2>&1 ||
       { "${sudo_prefix[@]}" apt-get update >/dev/null 2>&1 &&
         "${sudo_prefix[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
           "${missing[@]}" >/dev/null 2>&1; }; then
      for pair in "libblas.so.3-x86_64-linux-gnu:$blas_before" "liblapack.so.3-x86_64-linux-gnu:$lapack_before"; do
        name=${pair%%:*} before=${pair#*:}
        if [[ -n $before && $(alternative_value "$name") != "$before" ]]; then
          log "restoring the system default $name to $before (apt switched it to $(alternative_value "$name"))"
          "${sudo_prefix[@]}" update-alternatives --set "$name" "$before" >/dev/null
        fi
      done
    else
      log "apt-get could not install ${missing[*]}: skipping the tuned PyTorch configuration"
    fi
  elif [[ ${#missing[@]} -gt 0 ]]; then
    log "${missing[*]} not installed and --no-install given: skipping the tuned PyTorch configuration"
  fi
  if [[ -e $OPENBLAS_OPENMP_DIR/libblas.so.3 && -e $JEMALLOC ]]; then HAVE_TUNED=1; fi
fi
# "As installed": the OpenBLAS pthreads build that python3-torch's recommendations install; where it is
# missing (installed with --no-install-recommends and apt failed), whatever libblas.so.3 the system has.
INSTALLED_LIBRARY_PATH=""
if [[ -e $OPENBLAS_PTHREAD_DIR/libblas.so.3 ]]; then
  INSTALLED_LIBRARY_PATH=$OPENBLAS_PTHREAD_DIR
elif [[ $HAVE_TORCH == 1 ]]; then
  log "libopenblas0-pthread is missing: PyTorch as installed uses the system's default libblas.so.3"
fi

TORCH_LIB=""
if [[ $HAVE_TORCH == 1 ]]; then
  TORCH_LIB=$("$TORCH_PYTHON" -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib', 'libtorch_cpu.so'))")
  log "PyTorch as installed resolves $(LD_LIBRARY_PATH=$INSTALLED_LIBRARY_PATH ldd "$TORCH_LIB" | awk '/libblas/ {print $1, $2, $3}')"
  if [[ $HAVE_TUNED == 1 ]]; then
    log "PyTorch tuned resolves $(LD_LIBRARY_PATH=$OPENBLAS_OPENMP_DIR ldd "$TORCH_LIB" | awk '/libblas/ {print $1, $2, $3}')"
  fi
fi

# ---- 3. a quiet machine --------------------------------------------------------------------------------
# Busy jiffies (user, nice, system, irq, softirq) and total jiffies of all CPUs, from /proc/stat.
cpu_jiffies() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }
busy_cores_over() {  # average number of busy cores over $1 seconds
  local before after
  before=$(cpu_jiffies); sleep "$1"; after=$(cpu_jiffies)
  awk -v b="$before" -v a="$after" -v s="$1" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {split(b, x, " "); split(a, y, " "); printf "%.2f", (y[1] - x[1]) / hz / s}'
}
if [[ $WAIT_QUIET == 1 ]]; then
  for attempt in $(seq 1 21); do
    busy=$(busy_cores_over 3)
    if awk -v b="$busy" 'BEGIN {exit !(b < 0.2)}'; then break; fi
    if [[ $attempt == 21 ]]; then log "still ${busy} cores busy after 10 minutes: measuring anyway (flagged)"; break; fi
    log "machine busy (${busy} cores in use by other processes): waiting 30 s"
    ps -eo pcpu,pid,args --sort=-pcpu | sed -n '2,4p' | cut -c1-120 >&2
    sleep 27
  done
fi

# ---- 4. and 5. the peaks and the runs ---------------------------------------------------------------------------------------
RESULTS=$(mktemp -d)
trap 'rm -rf "$RESULTS"' EXIT
HZ=$(getconf CLK_TCK)

# The ceilings every GFLOP/s figure is compared with, per thread count: bench_ops' probes (independent
# 512-bit FMAs, and independent vdpbf16ps where the CPU has them), median GFLOP/s.
PEAKS=$RESULTS/peaks.txt
: >"$PEAKS"
for threads in $THREADS; do
  log "measuring the fp32 and bf16 peaks with $threads thread(s)"
  OMP_NUM_THREADS=$threads "$BENCH_OPS" --threads "$threads" --filter "peak:" 2>/dev/null |
    awk -v t="$threads" '/^peak: vector FMA/ {for (i = 1; i <= NF; ++i) if ($i == "GFLOP/s") {print t, "fp32", $(i - 1); break}}
                         /^peak: vdpbf16ps/ {for (i = 1; i <= NF; ++i) if ($i == "GFLOP/s") {print t, "bf16", $(i - 1); break}}' \
    >>"$PEAKS" || true
done

# run_config NAME THREADS OUTFILE COMMAND...: runs COMMAND, keeps its RESULT line plus the CPU time the
# rest of the machine spent meanwhile (busy jiffies minus the benchmark's own CPU seconds).
run_config() {
  local name=$1 threads=$2 outfile=$3
  shift 3
  local before after start end logfile=$RESULTS/log.$$.txt
  before=$(cpu_jiffies); start=$(date +%s.%N)
  if ! env OMP_NUM_THREADS="$threads" "$@" >"$logfile" 2>&1; then
    log "$name failed:"; tail -5 "$logfile" >&2
    return 0
  fi
  end=$(date +%s.%N); after=$(cpu_jiffies)
  LAST_WALL=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%d", b - a}')
  grep -v '^RESULT ' "$logfile" | sed 's/^/    /' >&2
  if ! grep -q '^RESULT ' "$logfile"; then
    log "$name printed no RESULT line"
    return 0
  fi
  local result
  result=$(grep '^RESULT ' "$logfile" | tail -1 | cut -c8-)
  "$PYTHON" - "$result" "$before" "$after" "$start" "$end" "$HZ" "$name" >>"$outfile" <<'PY'
import json, sys
result, before, after, start, end, hz, name = sys.argv[1:]
r = json.loads(result)
busy = (float(after.split()[0]) - float(before.split()[0])) / float(hz)
wall = float(end) - float(start)
r["config_name"] = name
r["wall_s"] = wall
r["foreign_cores"] = max(0.0, (busy - r.get("cpu_s", 0.0)) / wall) if wall > 0 else 0.0
print(json.dumps(r))
PY
}

ALL=$RESULTS/all.jsonl
: >"$ALL"
# A configuration whose run took longer than this (PyTorch on a slow BLAS, CCT-7: minutes per step)
# runs in the first round only: its figure is dominated by compute, and repeating it would double the
# time of the whole comparison.
ONCE_S=${CCT_BENCH_ONCE_S:-120}
declare -A RUN_ONCE=()
LAST_WALL=0
started=$(date +%s)
for model in $MODELS; do
  read -r warmup iters budget <<<"$(iterations_for "$model")"
  for threads in $THREADS; do
    for round in $(seq 1 "$ROUNDS"); do
      configs=(ours ours_bf16)
      [[ $HAVE_TORCH == 1 ]] && configs+=(torch)
      [[ $HAVE_TUNED == 1 ]] && configs+=(tuned)
      [[ $HAVE_TUNED == 1 && $HAVE_BF16 == 1 ]] && configs+=(tuned_bf16)
      if (( round % 2 == 0 )); then  # reverse the order every other round
        reversed=(); for ((i = ${#configs[@]} - 1; i >= 0; i--)); do reversed+=("${configs[i]}"); done
        configs=("${reversed[@]}")
      fi
      for config in "${configs[@]}"; do
        if [[ -n ${RUN_ONCE[$config/$model/$threads]:-} ]]; then
          log "$model, $threads thread(s), round $round: $config skipped (its first run took ${RUN_ONCE[$config/$model/$threads]} s)"
          continue
        fi
        log "$model, batch $BATCH, $threads thread(s), round $round/$ROUNDS: $config"
        LAST_WALL=0
        common=(--model "$model" --batch "$BATCH" --threads "$threads" --warmup "$warmup" --iters "$iters"
                --budget-s "$budget")
        case $config in
          ours) run_config ours "$threads" "$ALL" "$BENCH_MODEL" "${common[@]}" --precision fp32 ;;
          ours_bf16) run_config ours_bf16 "$threads" "$ALL" "$BENCH_MODEL" "${common[@]}" --precision bf16 ;;
          torch) run_config torch "$threads" "$ALL" env LD_LIBRARY_PATH="$INSTALLED_LIBRARY_PATH" \
                   "$TORCH_PYTHON" "$ROOT/benchmarks/torch_twin.py" "${common[@]}" ;;
          tuned) run_config tuned "$threads" "$ALL" env LD_LIBRARY_PATH="$OPENBLAS_OPENMP_DIR" LD_PRELOAD="$JEMALLOC" \
                   MALLOC_CONF="$MALLOC_CONF_TUNED" "$TORCH_PYTHON" "$ROOT/benchmarks/torch_twin.py" --tuned "${common[@]}" ;;
          tuned_bf16) run_config tuned_bf16 "$threads" "$ALL" env LD_LIBRARY_PATH="$OPENBLAS_OPENMP_DIR" \
                   LD_PRELOAD="$JEMALLOC" MALLOC_CONF="$MALLOC_CONF_TUNED" "$TORCH_PYTHON" \
                   "$ROOT/benchmarks/torch_twin.py" --tuned --autocast "${common[@]}" ;;
        esac
        if (( LAST_WALL > ONCE_S )); then RUN_ONCE[$config/$model/$threads]=$LAST_WALL; fi
      done
    done
  done
done
elapsed=$(( $(date +%s) - started ))

# ---- 6. the tables -------------------------------------------------------------------------------------
cpu_model=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
header="Measured $(date -u '+%Y-%m-%d %H:%M UTC') on ${cpu_model} ($(nproc) CPUs), cct ${commit}, batch ${BATCH}, ${ROUNDS} round(s), ${elapsed} s in all."
"$PYTHON" - "$ALL" "$PEAKS" "$header" <<'PY' | tee "$OUTPUT"
import json, sys

path, peaks_path, header = sys.argv[1:]
runs = [json.loads(line) for line in open(path) if line.strip()]
peaks = {}  # (threads, "fp32" | "bf16") -> GFLOP/s
for line in open(peaks_path):
    threads, kind, rate = line.split()
    peaks[(int(threads), kind)] = float(rate)

best = {}  # (config, model, threads) -> the run with the best median per phase, and the max peak RSS
for r in runs:
    key = (r["config_name"], r["model"], r["threads"])
    entry = best.setdefault(key, {"train": None, "infer": None, "peak": 0.0, "foreign": 0.0, "runs": 0, "r": r})
    for phase in ("train", "infer"):
        if r.get(phase) and (entry[phase] is None or r[phase]["img_per_s"] > entry[phase]["img_per_s"]):
            entry[phase] = r[phase]
    entry["peak"] = max(entry["peak"], r["peak_rss_mb"])
    entry["foreign"] = max(entry["foreign"], r.get("foreign_cores", 0.0))
    entry["runs"] += 1

models = sorted({k[1] for k in best}, key=lambda m: [r["model"] for r in runs].index(m))
threads_list = sorted({k[2] for k in best})
ORDER = ("ours", "ours_bf16", "torch", "tuned", "tuned_bf16")
TORCH = ("torch", "tuned", "tuned_bf16")
configs = [c for c in ORDER if any(k[0] == c for k in best)]
torch_configs = [c for c in configs if c in TORCH]
names = {"ours": "cct fp32", "ours_bf16": "cct bf16", "torch": "PyTorch installed", "tuned": "PyTorch tuned",
         "tuned_bf16": "PyTorch tuned + bf16 autocast"}
precision_of = {"ours": "fp32", "ours_bf16": "bf16", "torch": "fp32", "tuned": "fp32", "tuned_bf16": "bf16"}


def get(config, model, threads):
    return best.get((config, model, threads))


def default_config(model, threads):
    """cct's default precision (--precision auto): bf16 where its fast AVX512_BF16 path ran, else fp32."""
    bf16 = get("ours_bf16", model, threads)
    return "ours_bf16" if bf16 and bf16["r"].get("bf16_fast_path") else "ours"


def best_torch(model, threads, phase):
    """The fastest PyTorch configuration for this model, thread count and phase: (config, entry)."""
    found = [(c, get(c, model, threads)) for c in torch_configs]
    found = [(c, e) for c, e in found if e and e[phase]]
    return max(found, key=lambda ce: ce[1][phase]["img_per_s"]) if found else (None, None)


def rate(entry, phase):
    if not entry or not entry[phase]:
        return "skipped"
    flag = " *" if entry["foreign"] > 0.2 else ""
    return f"{entry[phase]['img_per_s']:.1f} ({entry[phase]['gflops']:.0f}){flag}"


def ratio_value(a, b, phase):
    if not a or not b or not a[phase] or not b[phase]:
        return None
    return a[phase]["img_per_s"] / b[phase]["img_per_s"]


def ratio(a, b, phase):
    value = ratio_value(a, b, phase)
    return "n/a" if value is None else f"{value:.2f}x"


def table(cols, rows):
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    print()


print("# cct vs PyTorch, side by side\n")
print(header + "\n")
print("img/s (achieved GFLOP/s in parentheses; training counts 3x the forward FLOPs). Each figure is the best "
      "round's median. `*`: other processes kept more than 0.2 cores busy during that run. cct's default "
      "precision (`--precision auto`) is bf16 where the CPU has AVX512_BF16, else fp32; the ratio column compares "
      "it with the fastest PyTorch configuration of the same row.\n")
for phase, title in (("train", "Training step (forward, label-smoothed cross-entropy, backward, AdamW)"),
                     ("infer", "Inference (eval mode, no grad)")):
    print(f"## {title}\n")
    cols = ["model", "threads"] + [names[c] for c in configs] + ["cct default / best PyTorch"]
    if "tuned" in configs:
        cols.append("cct fp32 / PyTorch tuned fp32")
    rows = []
    for model in models:
        for threads in threads_list:
            ours = get(default_config(model, threads), model, threads)
            best_config, best_entry = best_torch(model, threads, phase)
            cells = [model, str(threads)] + [rate(get(c, model, threads), phase) for c in configs]
            value = ratio_value(ours, best_entry, phase)
            cells.append("n/a" if value is None else
                         f"{value:.2f}x ({names[default_config(model, threads)]} / {names[best_config]})")
            if "tuned" in configs:
                cells.append(ratio(get("ours", model, threads), get("tuned", model, threads), phase))
            rows.append(cells)
    table(cols, rows)

if peaks:
    print("## Achieved GFLOP/s against the machine's peaks\n")
    print("Peaks measured by `bench_ops` in this run (independent 512-bit FMAs for fp32, independent `vdpbf16ps` "
          "for bf16): " + "; ".join(f"{t} thread{'s' if t > 1 else ''}: {peaks[(t, 'fp32')]:.0f} GFLOP/s fp32"
                                    + (f", {peaks[(t, 'bf16')]:.0f} bf16" if (t, 'bf16') in peaks else "")
                                    for t in threads_list if (t, 'fp32') in peaks) + ". Each figure is "
          "a share of the peak of the precision its products use.\n")
    cols = ["model", "threads", "phase"] + [names[c] for c in configs]
    rows = []
    for model in models:
        for threads in threads_list:
            for phase in ("train", "infer"):
                cells = [model, str(threads), phase]
                for c in configs:
                    e = get(c, model, threads)
                    ceiling = peaks.get((threads, precision_of[c]))
                    cells.append(f"{100 * e[phase]['gflops'] / ceiling:.0f}% of {precision_of[c]}"
                                 if e and e[phase] and ceiling else "n/a")
                rows.append(cells)
    table(cols, rows)

print("## Peak resident memory (MB, whole process: inference then training)\n")
cols = ["model", "threads"] + [names[c] for c in configs]
pairs = [(a, b) for a, b in (("ours", "tuned"), ("ours_bf16", "tuned_bf16")) if a in configs and b in configs]
cols += [f"{names[a]} / {names[b]}" for a, b in pairs]
rows = []
for model in models:
    for threads in threads_list:
        entries = {c: get(c, model, threads) for c in configs}
        cells = [model, str(threads)] + [f"{entries[c]['peak']:.0f}" if entries[c] else "n/a" for c in configs]
        cells += [f"{entries[a]['peak'] / entries[b]['peak']:.2f}" if entries[a] and entries[b] else "n/a"
                  for a, b in pairs]
        rows.append(cells)
table(cols, rows)

print("## CPU use (average busy cores of each process: CPU time / wall time, start-up included)\n")
rows = []
for model in models:
    for threads in threads_list:
        cells = [model, str(threads)]
        for c in configs:
            own = [r for r in runs if r["config_name"] == c and r["model"] == model and r["threads"] == threads]
            cells.append(f"{max(r.get('cpu_s', 0) / r['wall_s'] for r in own):.2f}" if own else "n/a")
        rows.append(cells)
table(["model", "threads"] + [names[c] for c in configs], rows)

if len(threads_list) >= 2:
    low, high = threads_list[0], threads_list[-1]
    print(f"## Thread scaling ({high} threads / {low} thread{'s' if low > 1 else ''}, img/s)\n")
    rows = []
    for model in models:
        cells = [model]
        for c in configs:
            for phase in ("train", "infer"):
                value = ratio_value(get(c, model, high), get(c, model, low), phase)
                cells.append("n/a" if value is None else f"{value:.2f}x")
        rows.append(cells)
    table(["model"] + [f"{names[c]} {p}" for c in configs for p in ("train", "infer")], rows)

# The targets of the mixed-precision issue (batch 128), where their figures are here.
print("## Targets\n")


def check(label, value, need):
    return f"{label} {value:.2f}x (>= {need:.1f}x: {'met' if value >= need else 'NOT met'})"


for model in models:
    checks = []
    for threads, need in ((2, 1.3), (1, 1.0)):
        if threads not in threads_list:
            continue
        ours_config = default_config(model, threads)
        for phase in ("train", "infer"):
            best_config, best_entry = best_torch(model, threads, phase)
            value = ratio_value(get(ours_config, model, threads), best_entry, phase)
            if value is not None:
                checks.append(check(f"{threads} thread{'s' if threads > 1 else ''} {phase} {names[ours_config]} / "
                                    f"{names[best_config]}", value, need))
    if 2 in threads_list:
        for phase in ("train", "infer"):
            value = ratio_value(get("ours", model, 2), get("tuned", model, 2), phase)
            if value is not None:
                checks.append(check(f"2 threads {phase} cct fp32 / PyTorch tuned fp32", value, 1.3))
        ours_config = default_config(model, 2)
        twin = "tuned_bf16" if ours_config == "ours_bf16" else "tuned"
        ours, other = get(ours_config, model, 2), get(twin, model, 2)
        if ours and other:
            checks.append(f"peak memory {names[ours_config]} / {names[twin]} {ours['peak']:.0f} / {other['peak']:.0f} MB "
                          f"({'met' if ours['peak'] <= other['peak'] else 'NOT met'})")
    print(f"- {model}: " + "; ".join(checks))
print()

# What each PyTorch configuration really loaded.
for c in torch_configs:
    r = next(r for r in runs if r["config_name"] == c)
    blas = ", ".join(r.get("blas", [])) or "none mapped"
    extra = ""
    if r.get("openblas"):
        extra = f" (OpenBLAS {r['openblas']['config']}, core {r['openblas']['corename']})"
    print(f"- {names[c]}: torch {r.get('torch_version')}, BLAS {blas}{extra}, allocator "
          f"{', '.join(r.get('allocator', []))}, memory format {r.get('memory_format')}, precision {r.get('precision', 'fp32')}")
macs = {(r["model"], r["impl"]): r["macs_per_image"] + r["attention_macs_per_image"] for r in runs}
for model in models:
    if (model, "cct") in macs and (model, "torch") in macs and macs[(model, "cct")] != macs[(model, "torch")]:
        print(f"- WARNING: MAC counts differ for {model}: cct {macs[(model, 'cct')]}, PyTorch hooks {macs[(model, 'torch')]}")
print()
PY
log "tables written to $OUTPUT"
