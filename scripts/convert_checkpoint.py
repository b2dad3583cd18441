#!/usr/bin/python3
"""Converts model weights between PyTorch (.pth) and cct (.safetensors). Needs torch only.

    convert_checkpoint.py to-safetensors IN.pth OUT.safetensors [--model NAME] [--num-classes N]
    convert_checkpoint.py to-pytorch IN.safetensors OUT.pth

to-safetensors reads a state dict saved with torch.save: a plain {name: tensor} dict, or one nested under
"model" or "state_dict" (training scripts' checkpoints); a "module." prefix (DataParallel) is stripped.
Floating-point tensors are written as float32 under their (reference) names, e.g.
classifier.blocks.0.self_attn.qkv.weight. With --model NAME (a registered cct model, e.g. cct_7_3x1_32)
the tensors' names and shapes are checked against that model and cct's model metadata is written, so
`cct::models::load_model(path)` rebuilds the model by itself; --num-classes overrides the
registered class count (a fine-tuned head). Without --model, build the model in C++ and load the file
with `cct::models::load_weights(path, model)`.

to-pytorch writes a plain state dict (`model.load_state_dict(torch.load(OUT))` in the reference code),
leaving out the "optimizer." and "training." entries of a cct training checkpoint.

The safetensors format is implemented here with struct + json (the `safetensors` package is not needed):
an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__":
{str: str}}, then the raw little-endian row-major tensor data.
"""
import argparse
import json
import math
import os
import pickle
import re
import struct
import sys
from collections import OrderedDict

# torch is imported when a conversion starts (import_torch), not here: importing it takes seconds, and
# --help, argument errors and a missing input file should answer at once.
torch = None

# ---- cct's model registry (a copy of include/cct/models/{registry,cct,cvt,vit_lite}.hpp) -----------
# Only what the metadata needs. Keep in sync with the C++ registry: tests/test_pytorch_parity.cpp checks
# that metadata written from this table rebuilds exactly cct's registered config
# (see tests/fixtures/make_parity_fixtures.py --registered).

# layers -> (heads, embedding_dim, mlp_ratio): the paper's encoder sizes.
ENCODER_SIZES = {2: (2, 128, 1.0), 4: (2, 128, 1.0), 6: (4, 256, 2.0), 7: (4, 256, 2.0), 14: (6, 384, 3.0)}
REGISTERED = [
    "cct_2_3x2_32", "cct_4_3x2_32", "cct_6_3x1_32", "cct_6_3x2_32", "cct_7_3x1_32", "cct_7_3x2_32",
    "cct_7_3x1_32_c100", "cct_7_7x2_224", "cct_14_7x2_224", "cct_14_7x2_384",
    "cvt_2_4_32", "cvt_4_4_32", "cvt_6_4_32", "cvt_7_4_32", "vit_2_4_32", "vit_4_4_32", "vit_6_4_32", "vit_7_4_32",
]
CHECKPOINT_FORMAT = "cct-checkpoint-1"
NON_MODEL_PREFIXES = ("optimizer.", "training.")


def number(value):
    """A double as cct writes it (std::ostringstream with precision 17, i.e. printf %.17g)."""
    return "%.17g" % value


def registered_metadata(requested, num_classes=None):
    """cct's ModelConfig::to_metadata() for a registered name (with an optional num_classes override)."""
    name = "vit_" + requested[len("vit_lite_"):] if requested.startswith("vit_lite_") else requested
    sine = name.endswith("_sine")
    if sine:
        name = name[:-len("_sine")]
    if name not in REGISTERED:
        raise SystemExit(f"unknown model '{requested}'; known models: "
                         + ", ".join(n + suffix for n in REGISTERED for suffix in ("", "_sine")))
    # The defaults of cct's ModelConfig, then what each family's config function sets.
    config = dict(kernel_size=3, num_conv_layers=2, patch_size=4, image_size=32, in_channels=3, num_classes=10,
                  dropout=0.0, attention_dropout=0.1, stochastic_depth=0.1)
    match = re.fullmatch(r"cct_(\d+)_(\d+)x(\d+)_(\d+)(_c100)?", name)
    if match:
        layers, kernel, convs, size = (int(g) for g in match.groups()[:4])
        config.update(family="cct", kernel_size=kernel, num_conv_layers=convs, image_size=size)
        if match.group(5):
            config["num_classes"] = 100
        if size == 224 and layers == 7:
            config["num_classes"] = 102  # Flowers-102
        if layers == 14:
            config["num_classes"] = 1000  # ImageNet
    else:
        family, layers, patch, size = re.fullmatch(r"(cvt|vit)_(\d+)_(\d+)_(\d+)", name).groups()
        layers, patch, size = int(layers), int(patch), int(size)
        config.update(family="cvt" if family == "cvt" else "vit_lite", patch_size=patch, num_conv_layers=1,
                      image_size=size)
    heads, dim, mlp_ratio = ENCODER_SIZES[layers]
    if num_classes is not None:
        config["num_classes"] = num_classes
    c = config
    return {
        "model": requested, "family": c["family"], "num_layers": str(layers), "num_heads": str(heads),
        "embedding_dim": str(dim), "mlp_ratio": number(mlp_ratio), "kernel_size": str(c["kernel_size"]),
        "num_conv_layers": str(c["num_conv_layers"]), "patch_size": str(c["patch_size"]),
        "image_size": str(c["image_size"]), "in_channels": str(c["in_channels"]),
        "num_classes": str(c["num_classes"]), "positional_embedding": "sine" if sine else "learnable",
        "dropout": number(c["dropout"]), "attention_dropout": number(c["attention_dropout"]),
        "stochastic_depth": number(c["stochastic_depth"]),
    }


def expected_shapes(metadata):
    """The reference model's state dict (name -> shape) for cct metadata, as in docs/architecture.md."""
    family, dim = metadata["family"], int(metadata["embedding_dim"])
    hidden = int(dim * float(metadata["mlp_ratio"]))
    channels, size, classes = int(metadata["in_channels"]), int(metadata["image_size"]), int(metadata["num_classes"])
    shapes = OrderedDict()
    if family == "cct":
        kernel, convs = int(metadata["kernel_size"]), int(metadata["num_conv_layers"])
        stride, padding = max(1, kernel // 2 - 1), max(1, kernel // 2)
        for i in range(convs):
            out = dim if i + 1 == convs else 64
            shapes[f"tokenizer.conv_layers.{i}.0.weight"] = (out, channels if i == 0 else 64, kernel, kernel)
            size = (size + 2 * padding - kernel) // stride + 1
            size = (size + 2 - 3) // 2 + 1  # MaxPool2d(3, 2, 1)
    else:
        patch = int(metadata["patch_size"])
        shapes["tokenizer.conv_layers.0.0.weight"] = (dim, channels, patch, patch)
        shapes["tokenizer.conv_layers.0.0.bias"] = (dim,)
        size //= patch
    tokens = size * size
    if family == "vit_lite":
        shapes["classifier.class_emb"] = (1, 1, dim)
        tokens += 1
    if metadata["positional_embedding"] != "none":
        shapes["classifier.positional_emb"] = (1, tokens, dim)
    if family != "vit_lite":
        shapes["classifier.attention_pool.weight"] = (1, dim)
        shapes["classifier.attention_pool.bias"] = (1,)
    for layer in range(int(metadata["num_layers"])):
        b = f"classifier.blocks.{layer}."
        shapes.update([(b + "pre_norm.weight", (dim,)), (b + "pre_norm.bias", (dim,)),
                       (b + "self_attn.qkv.weight", (3 * dim, dim)), (b + "self_attn.proj.weight", (dim, dim)),
                       (b + "self_attn.proj.bias", (dim,)), (b + "linear1.weight", (hidden, dim)),
                       (b + "linear1.bias", (hidden,)), (b + "norm1.weight", (dim,)), (b + "norm1.bias", (dim,)),
                       (b + "linear2.weight", (dim, hidden)), (b + "linear2.bias", (dim,))])
    shapes.update([("classifier.norm.weight", (dim,)), ("classifier.norm.bias", (dim,)),
                   ("classifier.fc.weight", (classes, dim)), ("classifier.fc.bias", (classes,))])
    return shapes


# ---- safetensors ---------------------------------------------------------------------------------
DTYPES = {}  # safetensors dtype name -> torch dtype, filled by import_torch
DTYPE_NAMES = {}


def import_torch():
    """Imports torch once (the conversions and the safetensors functions need it), or exits saying why not."""
    global torch
    if torch is not None:
        return
    try:
        import torch as imported
    except ImportError:
        raise SystemExit(f"convert_checkpoint.py: error: this Python ({sys.executable}) cannot import torch; run it "
                         "with /usr/bin/python3 after `bash scripts/install_deps.sh --with-torch`")
    torch = imported
    DTYPES.update({
        "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
        "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool})
    DTYPE_NAMES.update({dtype: name for name, dtype in DTYPES.items()})


def save_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} in dict order; the header is space-padded to a multiple of 8 bytes."""
    assert sys.byteorder == "little", "safetensors data is little-endian"
    import_torch()
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {key: str(metadata[key]) for key in sorted(metadata)}
    for name, tensor in tensors.items():
        data = tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        header[name] = {"dtype": DTYPE_NAMES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    # Written to a temporary file and renamed, so a failure never leaves half a file under `path`.
    temporary = f"{path}.tmp.{os.getpid()}"
    try:
        with open(temporary, "wb") as out:
            out.write(struct.pack("<Q", len(text)))
            out.write(text)
            for chunk in chunks:
                out.write(chunk)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def load_safetensors(path):
    """Returns ({name: tensor} in header order, metadata); checks that the tensors tile the data."""
    import_torch()
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise SystemExit(f"{path}: too short for a safetensors file")
    (length,) = struct.unpack("<Q", blob[:8])
    if length > len(blob) - 8:
        raise SystemExit(f"{path}: header length {length} exceeds the file (truncated?)")
    header = json.loads(blob[8:8 + length].decode("utf-8"))
    data = blob[8 + length:]
    metadata = header.pop("__metadata__", {})
    tensors, position = {}, 0
    for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"]):
        begin, end = info["data_offsets"]
        dtype, shape = DTYPES[info["dtype"]], info["shape"]
        if begin != position or end - begin != math.prod(shape) * torch.empty(0, dtype=dtype).element_size():
            raise SystemExit(f"{path}: tensor '{name}': data_offsets [{begin}, {end}) do not fit the layout")
        tensors[name] = (torch.frombuffer(bytearray(data[begin:end]), dtype=dtype).reshape(shape).clone()
                         if end > begin else torch.empty(shape, dtype=dtype))
        position = end
    if position != len(data):
        raise SystemExit(f"{path}: {len(data) - position} unexpected bytes after the last tensor")
    return OrderedDict((name, tensors[name]) for name in header), metadata


# ---- conversions ---------------------------------------------------------------------------------
def extract_state_dict(obj, source):
    """A plain state dict from what torch.load returned (nested under "model"/"state_dict", "module." stripped)."""
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise SystemExit(f"{source}: expected a state dict (name -> tensor), optionally under 'model' or "
                         f"'state_dict'; got {type(obj).__name__}")
    state = OrderedDict()
    for name, value in obj.items():
        if not torch.is_tensor(value):
            raise SystemExit(f"{source}: entry '{name}' is of type {type(value).__name__}, not a tensor")
        if name.startswith("module."):
            name = name[len("module."):]
        if name in state:
            raise SystemExit(f"{source}: '{name}' appears twice (with and without the 'module.' prefix)")
        if not value.is_floating_point():
            raise SystemExit(f"{source}: tensor '{name}' is {value.dtype}; the models hold floating-point tensors only")
        state[name] = value.detach().to(device="cpu", dtype=torch.float32).contiguous()
    return state


def check_against_model(state, metadata, source):
    expected = expected_shapes(metadata)
    problems = [f"missing '{name}'" for name in expected if name not in state]
    problems += [f"unexpected '{name}'" for name in state if name not in expected]
    problems += [f"'{name}' has shape {tuple(state[name].shape)}, {metadata['model']} needs {shape}"
                 for name, shape in expected.items() if name in state and tuple(state[name].shape) != shape]
    if problems:
        raise SystemExit(f"{source} does not hold the weights of {metadata['model']}: " + "; ".join(problems))


def to_safetensors(args):
    # weights_only: a .pth is a pickle, and a pickle can run code when loaded; only tensors and plain
    # containers are accepted, so a hostile file is refused instead of executed.
    try:
        loaded = torch.load(args.input, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, EOFError, ValueError, TypeError) as error:
        text = str(error).strip()
        first = text.split("WeightsUnpickler error:")[-1].strip() if text else type(error).__name__
        raise SystemExit(f"{args.input}: not a PyTorch state dict that can be loaded safely ({first}); only "
                         "tensors and plain containers are accepted, nothing that runs code")
    state = extract_state_dict(loaded, args.input)
    metadata = {"format": "pt"}
    if args.model:
        metadata = registered_metadata(args.model, args.num_classes)
        metadata["format"] = CHECKPOINT_FORMAT
        check_against_model(state, metadata, args.input)
        state = OrderedDict((name, state[name]) for name in expected_shapes(metadata))  # reference order
    elif args.num_classes is not None:
        raise SystemExit("--num-classes needs --model")
    save_safetensors(args.output, state, metadata)
    print(f"wrote {len(state)} tensors to {args.output}" + (f" as {args.model}" if args.model else ""))


def to_pytorch(args):
    tensors, _ = load_safetensors(args.input)
    state = OrderedDict((name, tensor) for name, tensor in tensors.items() if not name.startswith(NON_MODEL_PREFIXES))
    temporary = f"{args.output}.tmp.{os.getpid()}"
    try:
        torch.save(state, temporary)
        os.replace(temporary, args.output)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    print(f"wrote {len(state)} tensors to {args.output} (left out {len(tensors) - len(state)} optimizer/training entries)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    forward = commands.add_parser("to-safetensors", help="PyTorch state dict -> cct safetensors")
    forward.add_argument("input")
    forward.add_argument("output")
    forward.add_argument("--model", help="registered cct model name, e.g. cct_7_3x1_32 (writes its metadata)")
    forward.add_argument("--num-classes", type=int, help="class count of the head, if not the registered one")
    backward = commands.add_parser("to-pytorch", help="cct safetensors -> PyTorch state dict")
    backward.add_argument("input")
    backward.add_argument("output")
    args = parser.parse_args(argv)
    try:
        open(args.input, "rb").close()  # a missing or unreadable input is reported before torch loads
        import_torch()
        (to_safetensors if args.command == "to-safetensors" else to_pytorch)(args)
    except OSError as error:  # a missing, unreadable or unwritable file: one line, no traceback
        raise SystemExit(f"convert_checkpoint.py: error: {error.filename or args.input}: {error.strerror or error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
