"""Reading released checkpoints as plain arrays: data, never code.

What the zoo models' converters (`from_official`, `from_hf`) share:
`read_arrays` turns a checkpoint file or a dict into {name: NumPy array}
(NumPy's `.npz` without pickles, safetensors read here with NumPy alone, a
PyTorch state dict only through `torch.load(weights_only=True)`), and
`check_arrays` refuses, before anything is assigned, a checkpoint with a
missing, unexpected or wrong-shaped weight, naming each.
"""

import json
import os
import struct

import numpy as np

__all__ = ["read_arrays", "read_safetensors", "check_arrays"]

# safetensors dtype → NumPy dtype ("BF16" is widened by hand).
_SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
                       "I8": "i1", "U8": "u1", "BOOL": "?"}
_MAX_HEADER = 100 * 2**20


def read_safetensors(path, owner="read_safetensors"):
    """{name: array} of a `.safetensors` file, read with NumPy alone.

    The format: an unsigned 64-bit little-endian header size n, n bytes of
    JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}} (and an
    optional "__metadata__"), then the tensors' bytes. bfloat16 is widened to
    float32. A header or offsets that do not fit the file raise a ValueError.
    """
    size = os.path.getsize(path)

    def corrupt(why):
        return ValueError(f"{owner}: {path} is not a valid safetensors file: {why}.")

    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise corrupt(f"{size} bytes, shorter than the 8-byte header size")
        (n,) = struct.unpack("<Q", head)
        if n > min(_MAX_HEADER, size - 8):
            raise corrupt(f"its header claims {n} bytes, in a file of {size}")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise corrupt(f"its header is not JSON ({error})") from None
        if not isinstance(header, dict):
            raise corrupt("its header is not a JSON object")
        data = f.read()
    arrays = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], [int(s) for s in info["shape"]], info["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise corrupt(f"the entry of {name!r} is not {{dtype, shape, data_offsets}}: {info!r}") from None
        if dtype != "BF16" and dtype not in _SAFETENSORS_DTYPES:
            raise corrupt(f"{name!r} has dtype {dtype!r}; readable: BF16, {', '.join(_SAFETENSORS_DTYPES)}")
        itemsize = 2 if dtype == "BF16" else np.dtype(_SAFETENSORS_DTYPES[dtype]).itemsize
        count = int(np.prod(shape, dtype=np.int64))
        if not (0 <= begin <= end <= len(data)) or end - begin != count * itemsize or min(shape, default=0) < 0:
            raise corrupt(f"{name!r} of dtype {dtype} and shape {tuple(shape)} has data_offsets {[begin, end]} "
                          f"in a data section of {len(data)} bytes")
        raw = data[begin:end]
        if dtype == "BF16":
            value = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            value = np.frombuffer(raw, _SAFETENSORS_DTYPES[dtype]).copy()
        arrays[name] = value.reshape(shape)
    return arrays


def _read_torch(path, owner):
    try:
        import torch
    except ImportError:
        raise ValueError(f"{owner}: {path} is a PyTorch file, which needs torch installed to read (weights only); "
                         f"or convert it to .safetensors.") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # anything but tensors (code, objects) is refused by weights_only
        raise ValueError(f"{owner}: {path} could not be read as a weights-only PyTorch state dict: {error}") from None
    if not isinstance(state, dict):
        raise ValueError(f"{owner}: {path} holds a {type(state).__name__}, not a state dict of tensors.")
    arrays = {}
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{owner}: {path} holds {name!r} of type {type(value).__name__}, not a tensor.")
        if value.dtype == torch.bfloat16:
            value = value.float()
        arrays[name] = value.detach().cpu().numpy()
    return arrays


def read_arrays(checkpoint, owner):
    """{name: NumPy array} of `checkpoint`: a path to an `.npz` (read with
    `allow_pickle=False`), `.safetensors`, or PyTorch `.bin`/`.pt`/`.pth`
    (weights only), or a dict of names to arrays. `owner` (the calling
    function) goes into error messages."""
    if isinstance(checkpoint, (str, os.PathLike)):
        path = os.fspath(checkpoint)
        if not os.path.isfile(path):
            raise ValueError(f"{owner}: checkpoint {path!r} is not a file.")
        suffix = os.path.splitext(path)[1].lower()
        if suffix == ".npz":
            try:
                with np.load(path, allow_pickle=False) as data:
                    return {name: data[name] for name in data.files}
            except ValueError as error:
                raise ValueError(f"{owner}: {path} could not be read as an .npz of arrays: {error}") from None
        if suffix == ".safetensors":
            return read_safetensors(path, owner)
        if suffix in (".bin", ".pt", ".pth"):
            return _read_torch(path, owner)
        raise ValueError(f"{owner}: checkpoint {path!r} has suffix {suffix!r}; readable: .npz, .safetensors, "
                         f".bin, .pt, .pth.")
    if isinstance(checkpoint, dict):
        arrays = {}
        for name, value in checkpoint.items():
            if not isinstance(name, str):
                raise ValueError(f"{owner}: checkpoint names must be strings; got {name!r}.")
            arrays[name] = np.asarray(value)
        return arrays
    raise ValueError(f"{owner}: `checkpoint` must be the path of a checkpoint file or a dict of arrays; "
                     f"got {type(checkpoint).__name__}.")


def check_arrays(arrays, expected, owner, what):
    """A ValueError unless `arrays` holds exactly the names of `expected`
    ({name: shape}) with those shapes and numeric dtypes; the message lists
    the missing names (with the shape expected), the unexpected ones and the
    wrong shapes. `what` says which checkpoint and model, for the message."""
    problems = []
    missing = [name for name in expected if name not in arrays]
    if missing:
        problems.append(f"missing {len(missing)} weight(s): " + ", ".join(
            f"{name} {tuple(expected[name])}" for name in missing[:8]) + (" ..." if len(missing) > 8 else ""))
    unexpected = [name for name in arrays if name not in expected]
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected name(s): " + ", ".join(
            f"{name} {arrays[name].shape}" for name in unexpected[:8]) + (" ..." if len(unexpected) > 8 else ""))
    for name, shape in expected.items():
        if name not in arrays:
            continue
        value = arrays[name]
        if value.shape != tuple(shape):
            problems.append(f"{name} must have shape {tuple(shape)}; got shape {value.shape}")
        elif not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
            problems.append(f"{name} must hold numbers; got dtype {value.dtype}")
    if problems:
        raise ValueError(f"{owner}: {what}: " + "; ".join(problems) + ".")
