"""Checkpoint reading: safetensors with NumPy alone, weights-only PyTorch files, the name and shape check."""

import json
import struct

import numpy as np
import pytest

from glu_zoo.models.checkpoints import check_arrays, read_arrays, read_safetensors


def write_safetensors(path, arrays, dtypes=None):
    """The safetensors layout, written out by hand: 8-byte header size, JSON header, data."""
    names = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<f2"): "F16", np.dtype("<i8"): "I64"}
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, value in arrays.items():
        dtype = (dtypes or {}).get(name)
        if dtype == "BF16":  # the top 16 bits of float32 (rounded toward zero)
            raw = (np.asarray(value, "<f4").view("<u4") >> 16).astype("<u2").tobytes()
        else:
            value = np.ascontiguousarray(value)
            dtype, raw = names[value.dtype], value.tobytes()
        header[name] = {"dtype": dtype, "shape": list(np.shape(value)), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def test_safetensors_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"a.weight": rng.normal(size=(3, 5)).astype("float32"), "b": rng.normal(size=(4,)),
              "c": np.arange(6, dtype="int64").reshape(2, 3), "h": rng.normal(size=(2, 2)).astype("float16")}
    path = tmp_path / "model.safetensors"
    write_safetensors(path, arrays)
    read = read_arrays(path, "test")
    assert sorted(read) == sorted(arrays)
    for name, value in arrays.items():
        assert read[name].dtype == value.dtype and np.array_equal(read[name], value)


def test_safetensors_bfloat16_is_widened(tmp_path):
    value = np.array([1.0, -2.5, 3.140625, 1e-3], "float32")
    path = tmp_path / "bf16.safetensors"
    write_safetensors(path, {"w": value}, dtypes={"w": "BF16"})
    read = read_safetensors(path)["w"]
    assert read.dtype == np.float32
    np.testing.assert_allclose(read, value, rtol=2**-7)
    assert read[0] == 1.0 and read[1] == -2.5 and read[2] == 3.140625  # exact in bfloat16


def test_corrupt_safetensors_are_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    write_safetensors(path, {"w": np.ones((4, 4), "float32")})
    good = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good[:-8])  # the data section is short
    with pytest.raises(ValueError, match=r"cut.safetensors is not a valid safetensors file: 'w' of dtype F32 and "
                                         r"shape \(4, 4\) has data_offsets \[0, 64\] in a data section of 56 bytes"):
        read_arrays(cut, "test")
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 10**12) + good[8:])
    with pytest.raises(ValueError, match=r"its header claims 1000000000000 bytes"):
        read_arrays(huge, "test")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(struct.pack("<Q", 4) + b"\xff\xfe{]" + b"\0" * 16)
    with pytest.raises(ValueError, match=r"its header is not JSON"):
        read_arrays(garbage, "test")


def test_torch_files_load_weights_only(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "pytorch_model.bin"
    state = {"x.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "y": torch.ones(2, dtype=torch.bfloat16)}
    torch.save(state, path)
    read = read_arrays(path, "test")
    assert np.array_equal(read["x.weight"], np.arange(6, dtype="float32").reshape(2, 3))
    assert read["y"].dtype == np.float32 and np.array_equal(read["y"], np.ones(2, "float32"))
    evil = tmp_path / "evil.bin"
    torch.save({"x": torch.ones(1), "f": _Gadget()}, evil)  # an object, which a full pickle load would run
    with pytest.raises(ValueError, match=r"evil.bin could not be read as a weights-only PyTorch state dict"):
        read_arrays(evil, "test")


class _Gadget:
    pass


def test_other_inputs_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"test: checkpoint '.*nothing.npz' is not a file"):
        read_arrays(tmp_path / "nothing.npz", "test")
    odd = tmp_path / "weights.pkl"
    odd.write_bytes(b"\x80\x04")
    with pytest.raises(ValueError, match=r"has suffix '.pkl'; readable: .npz, .safetensors, .bin, .pt, .pth"):
        read_arrays(odd, "test")
    with pytest.raises(ValueError, match=r"`checkpoint` must be the path of a checkpoint file or a dict of arrays; "
                                         r"got list"):
        read_arrays([np.ones(2)], "test")


def test_check_arrays_names_every_problem():
    expected = {"a": (2, 3), "b": (4,), "c": (1,)}
    check_arrays({"a": np.ones((2, 3)), "b": np.ones(4), "c": np.ones(1, "int32")}, expected, "f", "ckpt")
    arrays = {"a": np.ones((3, 2)), "b": np.array(["x"] * 4), "d": np.ones(5)}
    with pytest.raises(ValueError) as info:
        check_arrays(arrays, expected, "f", "ckpt")
    message = str(info.value)
    assert message.startswith("f: ckpt: missing 1 weight(s): c (1,); 1 unexpected name(s): d (5,); ")
    assert "a must have shape (2, 3); got shape (3, 2)" in message
    assert "b must hold numbers; got dtype <U1" in message
