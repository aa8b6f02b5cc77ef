"""Read-only access to .earshot model files (FlatBuffers) from Python, without the flatbuffers package.

The field layout is taken from src/model/earshot.fbs at run time (field ids follow declaration order unless an
`id:` attribute says otherwise), so the reader follows the schema as it evolves. It supports what that schema uses:
tables, scalars, enums, strings, vectors of scalars / strings / tables. Tensor data comes back as zero-copy numpy
views (F32, F16) or raw bytes (I8, I4).
"""
import re
import struct
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

_SCALARS = {
    "bool": ("<?", 1), "byte": ("<b", 1), "int8": ("<b", 1), "ubyte": ("<B", 1), "uint8": ("<B", 1),
    "short": ("<h", 2), "int16": ("<h", 2), "ushort": ("<H", 2), "uint16": ("<H", 2),
    "int": ("<i", 4), "int32": ("<i", 4), "uint": ("<I", 4), "uint32": ("<I", 4),
    "long": ("<q", 8), "int64": ("<q", 8), "ulong": ("<Q", 8), "uint64": ("<Q", 8),
    "float": ("<f", 4), "float32": ("<f", 4), "double": ("<d", 8), "float64": ("<d", 8),
}


class SchemaError(ValueError):
    pass


@dataclass
class Field:
    name: str
    type: str            # scalar name, enum name, table name, "string", or "[elem]"
    slot: int
    default: Optional[str]


@dataclass
class Schema:
    tables: Dict[str, Dict[str, Field]]
    enums: Dict[str, Tuple[str, Dict[int, str], Dict[str, int]]]   # name -> (underlying, value->name, name->value)
    root: str


def parse_schema(text: str) -> Schema:
    text = re.sub(r"//[^\n]*", "", text)
    enums = {}
    for name, base, body in re.findall(r"\benum\s+(\w+)\s*:\s*(\w+)\s*\{([^}]*)\}", text):
        by_value, by_name, next_value = {}, {}, 0
        for item in [s.strip() for s in body.split(",") if s.strip()]:
            m = re.fullmatch(r"(\w+)\s*(?:=\s*(-?\w+))?", item)
            if not m:
                raise SchemaError(f"cannot parse enum item {item!r}")
            value = int(m.group(2), 0) if m.group(2) else next_value
            by_value[value], by_name[m.group(1)] = m.group(1), value
            next_value = value + 1
        enums[name] = (base, by_value, by_name)
    if re.search(r"\b(union|struct)\s+\w+", text):
        raise SchemaError("schema uses unions or structs, which this reader does not support")
    tables = {}
    field_re = re.compile(r"(\w+)\s*:\s*(\[\s*[\w.]+\s*\]|[\w.]+)\s*(?:=\s*([^;(]+?))?\s*(?:\(([^)]*)\))?\s*;")
    for name, body in re.findall(r"\btable\s+(\w+)\s*\{([^}]*)\}", text):
        fields, slot = {}, 0
        for fname, ftype, default, attrs in field_re.findall(body):
            explicit = re.search(r"\bid\s*:\s*(\d+)", attrs or "")
            this_slot = int(explicit.group(1)) if explicit else slot
            fields[fname] = Field(fname, re.sub(r"\s+", "", ftype), this_slot, default.strip() if default else None)
            slot = this_slot + 1
        tables[name] = fields
    root = re.search(r"\broot_type\s+(\w+)\s*;", text)
    return Schema(tables, enums, root.group(1) if root else "Model")


class Table:
    """Lazy view of one FlatBuffers table; fields by attribute or item access."""

    def __init__(self, reader: "EarshotFile", table_type: str, pos: int):
        self._r, self._type, self._pos = reader, table_type, pos
        vtable = pos - struct.unpack_from("<i", reader.buf, pos)[0]
        self._vt = vtable
        self._vt_size = struct.unpack_from("<H", reader.buf, vtable)[0]

    def _field_offset(self, slot: int) -> int:
        entry = 4 + 2 * slot
        if entry + 2 > self._vt_size:
            return 0
        return struct.unpack_from("<H", self._r.buf, self._vt + entry)[0]

    def has(self, name: str) -> bool:
        return self._field_offset(self._r.schema.tables[self._type][name].slot) != 0

    def __getitem__(self, name: str):
        f = self._r.schema.tables[self._type].get(name)
        if f is None:
            raise KeyError(f"{self._type} has no field {name}")
        off = self._field_offset(f.slot)
        return self._r.read_value(f.type, self._pos + off if off else None, f.default)

    __getattr__ = __getitem__

    def to_dict(self, skip=()):
        return {n: self[n] for n in self._r.schema.tables[self._type] if n not in skip}


class EarshotFile:
    def __init__(self, path: str, schema_path: str):
        with open(schema_path, encoding="utf-8") as f:
            self.schema = parse_schema(f.read())
        with open(path, "rb") as f:
            self.buf = f.read()
        if len(self.buf) < 8:
            raise ValueError(f"{path}: too short for a FlatBuffers file")
        if self.buf[4:8] != b"ESHT":
            raise ValueError(f"{path}: file identifier is {self.buf[4:8]!r}, not b'ESHT'")
        self.root = Table(self, self.schema.root, struct.unpack_from("<I", self.buf, 0)[0])

    def _deref(self, pos: int) -> int:
        return pos + struct.unpack_from("<I", self.buf, pos)[0]

    def read_value(self, type_name: str, pos: Optional[int], default: Optional[str]):
        if type_name in self.schema.enums:
            base, by_value, by_name = self.schema.enums[type_name]
            if pos is None:
                if default is None:
                    return by_value.get(0, 0)
                return default if default in by_name else by_value.get(int(default, 0), default)
            value = struct.unpack_from(_SCALARS[base][0], self.buf, pos)[0]
            return by_value.get(value, value)
        if type_name in _SCALARS:
            if pos is None:
                if default is None:
                    return False if type_name == "bool" else 0
                if type_name == "bool":
                    return default == "true"
                return float(default) if "float" in type_name or type_name == "double" else int(default, 0)
            return struct.unpack_from(_SCALARS[type_name][0], self.buf, pos)[0]
        if pos is None:
            return None
        target = self._deref(pos)
        if type_name == "string":
            n = struct.unpack_from("<I", self.buf, target)[0]
            return self.buf[target + 4:target + 4 + n].decode("utf-8", errors="replace")
        if type_name.startswith("["):
            return self._vector(type_name[1:-1], target)
        if type_name in self.schema.tables:
            return Table(self, type_name, target)
        raise SchemaError(f"unsupported field type {type_name}")

    def _vector(self, elem: str, target: int):
        n = struct.unpack_from("<I", self.buf, target)[0]
        start = target + 4
        if elem in self.schema.enums:
            elem_base = self.schema.enums[elem][0]
            fmt, size = _SCALARS[elem_base]
            return [self.schema.enums[elem][1].get(v, v) for v in
                    np.frombuffer(self.buf, dtype=np.dtype(fmt), count=n, offset=start).tolist()]
        if elem in ("ubyte", "uint8"):
            return memoryview(self.buf)[start:start + n]
        if elem in _SCALARS:
            fmt, size = _SCALARS[elem]
            return np.frombuffer(self.buf, dtype=np.dtype(fmt), count=n, offset=start)
        out = []
        for i in range(n):
            p = start + 4 * i
            out.append(self.read_value(elem, p, None))
        return out

    # --- conveniences for the parity tests ---------------------------------------------------------------------
    def tensors(self) -> Dict[str, Table]:
        return {t["name"]: t for t in (self.root["tensors"] or [])}

    @staticmethod
    def tensor_array(t: Table) -> Optional[np.ndarray]:
        """Float32 copy of a Plain F32/F16 tensor, else None (quantized or packed layouts)."""
        if t["layout"] not in ("Plain", 0):
            return None
        shape = [int(s) for s in t["shape"]]
        data = t["data"]
        if t["dtype"] == "F32":
            return np.frombuffer(data, dtype="<f4").reshape(shape).astype(np.float32)
        if t["dtype"] == "F16":
            return np.frombuffer(data, dtype="<f2").reshape(shape).astype(np.float32)
        return None

    def vocabulary(self) -> List[bytes]:
        vocab = self.root["vocab"]
        blob = bytes(vocab["token_bytes"])
        offsets = [int(o) for o in vocab["token_offsets"]]
        return [blob[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
