#!/usr/bin/python3
"""PyTorch twin of bench_model: the same model, batch, input shape, thread count and training step, timed
the same way, so that the two can be compared figure by figure.

    /usr/bin/python3 benchmarks/torch_twin.py [--model cct_2_3x2_32] [--batch 128] [--threads 2]
                                              [--iters 10] [--warmup 2] [--budget-s 0] [--mode both|train|infer]
                                              [--tuned] [--autocast]

The model is the independent PyTorch implementation of the reference (tests/fixtures/reference_models.py),
built from the metadata of cct's registered model (scripts/convert_checkpoint.py). Inference: eval mode under
torch.no_grad(). Training step: train mode, forward, cross-entropy with label smoothing 0.1, zero_grad,
backward, AdamW (lr 5e-4, weight decay 0.05 on parameters of rank >= 2 except biases, none on the rest,
as cct's param_groups_no_decay_for_1d). Random N(0, 1) images and random labels.

Configurations:
  as installed  Debian's python3-torch with the libblas.so.3 the dynamic loader finds (run_side_by_side.sh
                points it at the OpenBLAS pthreads build that python3-torch's recommendations install),
                glibc malloc, NCHW tensors.
  --tuned       the OpenMP build of OpenBLAS (Debian package libopenblas0-openmp) in front of the system BLAS
                through LD_LIBRARY_PATH, jemalloc (libjemalloc2) preloaded with
                MALLOC_CONF=oversize_threshold:0,dirty_decay_ms:-1,muzzy_decay_ms:-1, and the model and
                input in channels_last memory format. The script sets the environment up itself (it
                re-executes itself with it) and then checks in /proc/self/maps that the OpenBLAS and jemalloc
                libraries really are the ones loaded; it fails if they are not.
  --autocast    PyTorch's CPU mixed precision, its one documented line: the forward pass and the loss under
                torch.autocast("cpu", dtype=torch.bfloat16) (linear layers, convolutions and matmuls take
                bf16 operands; weights, gradients and AdamW state stay fp32). With --tuned this is the
                strongest PyTorch on a CPU with AVX512_BF16, the column cct has to beat.

GFLOP/s use the same count as bench_model: forward = 2 x (conv + linear MACs + the attention products'
2*N^2*D MACs per layer) per image, counted here independently with forward hooks; training = 3 x forward.
Peak memory is this process's ru_maxrss. The last line is `RESULT {json}` with the keys bench_model prints,
plus the BLAS and allocator libraries found in the process.

Exit status 3 when PyTorch is not importable (with a message saying so).
"""
import argparse
import contextlib
import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OPENBLAS_OPENMP_DIR = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
MALLOC_CONF = "oversize_threshold:0,dirty_decay_ms:-1,muzzy_decay_ms:-1"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="cct_2_3x2_32")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--budget-s", type=float, default=0.0,
                        help="stop timing a phase once its timed iterations add up to this many seconds "
                             "(at least one is timed); 0 = no limit")
    parser.add_argument("--mode", choices=("both", "train", "infer"), default="both")
    parser.add_argument("--tuned", action="store_true",
                        help="OpenMP OpenBLAS + jemalloc (set up in the environment) + channels_last")
    parser.add_argument("--autocast", action="store_true",
                        help='forward and loss under torch.autocast("cpu", dtype=torch.bfloat16)')
    args = parser.parse_args()
    if args.batch < 1 or args.threads < 1 or args.iters < 1 or args.warmup < 0:
        parser.error("batch, threads and iters must be >= 1, warmup >= 0")
    return args


def tuned_environment_in_place():
    env = os.environ
    return (OPENBLAS_OPENMP_DIR in env.get("LD_LIBRARY_PATH", "").split(":")
            and JEMALLOC in env.get("LD_PRELOAD", "").split(":")
            and env.get("MALLOC_CONF") == MALLOC_CONF)


def enter_tuned_environment():
    """Re-executes this script with the tuned environment unless it is already in place (the loader reads
    LD_LIBRARY_PATH and LD_PRELOAD only at process start, so it cannot be changed from inside)."""
    if tuned_environment_in_place():
        return
    missing = [path for path in (os.path.join(OPENBLAS_OPENMP_DIR, "libblas.so.3"), JEMALLOC)
               if not os.path.exists(path)]
    if missing:
        sys.exit("torch_twin: --tuned needs " + ", ".join(missing) + " (Debian packages libopenblas0-openmp and "
                 "libjemalloc2: apt-get install libopenblas0-openmp libjemalloc2, which "
                 "benchmarks/run_side_by_side.sh does for you)")
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ":".join(filter(None, [OPENBLAS_OPENMP_DIR, env.get("LD_LIBRARY_PATH", "")]))
    env["LD_PRELOAD"] = ":".join(filter(None, [JEMALLOC, env.get("LD_PRELOAD", "")]))
    env["MALLOC_CONF"] = MALLOC_CONF
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def loaded_libraries():
    """Paths of the BLAS and allocator libraries mapped into this process (what the loader really chose)."""
    blas, allocator = set(), set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            name = os.path.basename(path)
            if "blas" in name or "lapack" in name:
                blas.add(path)
            if "jemalloc" in name or "tcmalloc" in name:
                allocator.add(path)
    return sorted(blas), sorted(allocator)


def openblas_info(paths):
    """OpenBLAS's own description (build, core type it picked, threads) when an OpenBLAS is loaded."""
    import ctypes
    for path in paths:
        if "openblas" not in path:
            continue
        try:
            library = ctypes.CDLL(path)
            library.openblas_get_config.restype = ctypes.c_char_p
            library.openblas_get_corename.restype = ctypes.c_char_p
            return {"config": library.openblas_get_config().decode(),
                    "corename": library.openblas_get_corename().decode(),
                    "threads": library.openblas_get_num_threads()}
        except (OSError, AttributeError):
            continue
    return None


def count_macs(torch, model, image_shape):
    """MACs per image as cct's models::model_stats counts them: conv + linear, and separately the two
    attention products (2*N^2*D per layer). Counted with forward hooks on a batch of one."""
    from torch import nn
    import reference_models
    counts = {"macs": 0, "attention": 0}
    hooks = []

    def on_conv(module, inputs, output):
        counts["macs"] += output.numel() * (module.in_channels // module.groups) * module.kernel_size[0] * \
            module.kernel_size[1]

    def on_linear(module, inputs, output):
        counts["macs"] += output.numel() * module.in_features

    def on_attention(module, inputs, output):
        _, tokens, dim = inputs[0].shape
        counts["attention"] += 2 * tokens * tokens * dim

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(on_conv))
        elif isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(on_linear))
        elif isinstance(module, reference_models.Attention):
            hooks.append(module.register_forward_hook(on_attention))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros((1,) + tuple(image_shape)))
    model.train(was_training)
    for hook in hooks:
        hook.remove()
    return counts["macs"], counts["attention"]


def seconds_of(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_runs(fn, warmup, iters, budget_s):
    """(median, min, max) seconds and the number of timed runs, as bench_model's time_runs: `warmup` untimed
    runs, then up to `iters` timed ones, stopping once they add up to the budget (if > 0; at least one is
    timed). A warm-up run longer than half the budget ends the warm-up and counts as a timed run: against a
    step that long the first call's one-off costs are negligible."""
    seconds = []
    for _ in range(warmup):
        run = seconds_of(fn)
        if budget_s > 0 and run > budget_s / 2:
            seconds.append(run)
            break
    while len(seconds) < iters and not (budget_s > 0 and sum(seconds) >= budget_s):
        seconds.append(seconds_of(fn))
    seconds.sort()
    n = len(seconds)
    median = seconds[n // 2] if n % 2 else 0.5 * (seconds[n // 2 - 1] + seconds[n // 2])
    return median, seconds[0], seconds[-1], n


def phase_result(batch, flops_per_image, timing):
    median, low, high, runs = timing
    return {"img_per_s": batch / median, "gflops": flops_per_image * batch / median * 1e-9,
            "median_ms": 1e3 * median, "min_ms": 1e3 * low, "max_ms": 1e3 * high, "runs": runs}


def main():
    args = parse_args()
    if args.tuned:
        enter_tuned_environment()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as error:
        print(f"torch_twin: PyTorch is not installed for {sys.executable} ({error}); "
              "install Debian's python3-torch (apt-get install python3-torch) to run the PyTorch side.",
              file=sys.stderr)
        sys.exit(3)
    sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from reference_models import build_model
    from convert_checkpoint import registered_metadata

    baseline_rss = peak_rss_mb()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    metadata = registered_metadata(args.model)
    model = build_model(metadata)
    image_shape = (int(metadata["in_channels"]), int(metadata["image_size"]), int(metadata["image_size"]))
    macs, attention_macs = count_macs(torch, model, image_shape)
    forward_flops = 2.0 * (macs + attention_macs)
    train_flops = 3.0 * forward_flops

    images = torch.randn((args.batch,) + image_shape)
    labels = torch.randint(0, int(metadata["num_classes"]), (args.batch,))
    memory_format = torch.channels_last if args.tuned else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    images = images.contiguous(memory_format=memory_format)

    blas, allocator = loaded_libraries()
    if args.tuned and not (any(OPENBLAS_OPENMP_DIR in path or "openblas" in path for path in blas)
                           and any("jemalloc" in path for path in allocator)):
        sys.exit(f"torch_twin: the tuned environment did not take effect: BLAS {blas}, allocator {allocator}")
    config = ("tuned" if args.tuned else "installed") + (" + bf16 autocast" if args.autocast else "")

    def precision_scope():
        if args.autocast:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()
    print(f"torch {torch.__version__} ({config}): model {args.model} ({(macs + attention_macs) * 1e-9:.3f} GMACs/image "
          f"incl. attention), batch {args.batch}, threads {torch.get_num_threads()}, up to {args.iters} iterations "
          f"after {args.warmup} warm-up" + (f", {args.budget_s:g} s budget per phase" if args.budget_s > 0 else ""))
    print(f"  BLAS: {', '.join(blas) or '(none mapped)'}; allocator: {', '.join(allocator) or 'glibc malloc'}; "
          f"memory format: {'channels_last' if args.tuned else 'contiguous (NCHW)'}; "
          f"precision: {'bf16 autocast' if args.autocast else 'fp32'}")

    result = {"impl": "torch", "config": config, "torch_version": torch.__version__, "model": args.model,
              "precision": "bf16" if args.autocast else "fp32",
              "batch": args.batch, "threads": torch.get_num_threads(), "iters": args.iters, "warmup": args.warmup,
              "macs_per_image": macs, "attention_macs_per_image": attention_macs, "infer": None, "train": None}
    infer_rss = 0.0
    if args.mode != "train":
        model.eval()

        def infer_step():
            with torch.no_grad(), precision_scope():
                model(images)

        result["infer"] = phase_result(args.batch, forward_flops, time_runs(infer_step, args.warmup, args.iters,
                                                                            args.budget_s))
        infer_rss = peak_rss_mb()
        r = result["infer"]
        print(f"inference  {r['img_per_s']:8.1f} img/s  {r['gflops']:7.1f} GFLOP/s  (median {r['median_ms']:.1f} ms, "
              f"min {r['min_ms']:.1f}, max {r['max_ms']:.1f}, {r['runs']} runs)", flush=True)
    if args.mode != "infer":
        model.train()
        decay, no_decay = [], []
        for name, parameter in model.named_parameters():
            if not parameter.requires_grad:
                continue
            (no_decay if name.endswith(".bias") or parameter.ndim <= 1 else decay).append(parameter)
        optimizer = torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0},
                                       {"params": decay, "weight_decay": 0.05}], lr=5e-4)

        def train_step():
            with precision_scope():
                loss = F.cross_entropy(model(images), labels, label_smoothing=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        result["train"] = phase_result(args.batch, train_flops, time_runs(train_step, args.warmup, args.iters,
                                                                           args.budget_s))
        r = result["train"]
        print(f"training   {r['img_per_s']:8.1f} img/s  {r['gflops']:7.1f} GFLOP/s  (median {r['median_ms']:.1f} ms, "
              f"min {r['min_ms']:.1f}, max {r['max_ms']:.1f}, {r['runs']} runs)", flush=True)

    blas, allocator = loaded_libraries()
    result.update(peak_rss_mb=peak_rss_mb(), peak_rss_infer_mb=infer_rss, baseline_rss_mb=baseline_rss,
                  blas=blas, allocator=allocator or ["glibc"], openblas=openblas_info(blas),
                  memory_format="channels_last" if args.tuned else "contiguous", cpu_s=cpu_seconds())
    if result["openblas"]:
        print(f"  OpenBLAS: {result['openblas']['config']}, core {result['openblas']['corename']}, "
              f"{result['openblas']['threads']} threads")
    print(f"peak RSS {result['peak_rss_mb']:.0f} MB (inference phase {infer_rss:.0f} MB, after imports "
          f"{baseline_rss:.0f} MB)")
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
