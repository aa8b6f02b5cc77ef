"""Minimal safetensors reader and writer (the format is small enough that the tests carry their own copy).

Layout: 8-byte little-endian header length N, then N bytes of JSON {name: {"dtype", "shape", "data_offsets":
[begin, end]}, "__metadata__": {str: str}}, then the raw little-endian tensor bytes; offsets are relative to the
end of the header. The writer pads the header with spaces so the data starts 8-byte aligned, as the reference
implementation does.
"""
import json
import struct

import numpy as np

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {v: k for k, v in _DTYPES.items()}


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    return (raw.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even float32 -> bfloat16 bit patterns (uint16)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def write_safetensors(path, tensors, metadata=None, dtypes=None):
    """tensors: {name: np.ndarray} written in the given order. dtypes optionally maps a name to "BF16" (the array
    is then rounded from float32) or any key of _DTYPES (the array is cast)."""
    dtypes = dtypes or {}
    header = {}
    blobs = []
    offset = 0
    for name, array in tensors.items():
        want = dtypes.get(name)
        if want == "BF16":
            data, dtype_name = f32_to_bf16_bits(array).astype("<u2"), "BF16"
        else:
            dtype = _DTYPES[want] if want else np.asarray(array).dtype.newbyteorder("<")
            data = np.ascontiguousarray(array, dtype=dtype)
            dtype_name = want or _NAMES[np.dtype(dtype)]
        raw = data.tobytes()
        header[name] = {"dtype": dtype_name, "shape": list(np.shape(array)), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {str(k): str(v) for k, v in (metadata or {"format": "pt"}).items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def read_safetensors(path, as_float32=True):
    """Returns ({name: np.ndarray}, metadata). Floating tensors come back as float32 when as_float32."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    data = memoryview(blob)[8 + n:]
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        if not 0 <= begin <= end <= len(data):
            raise ValueError(f"{path}: tensor {name} has offsets {begin}..{end} outside the data")
        raw = data[begin:end]
        if info["dtype"] == "BF16":
            array = _bf16_to_f32(np.frombuffer(raw, dtype="<u2"))
        else:
            array = np.frombuffer(raw, dtype=_DTYPES[info["dtype"]])
            if as_float32 and array.dtype.kind == "f":
                array = array.astype(np.float32)
        out[name] = array.reshape(info["shape"])
    return out, metadata
