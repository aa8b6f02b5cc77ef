"""The SentencePiece tokenizer as training and export use it: SOT/EOT ids, control pieces, encode/decode."""
import re
import struct
from typing import List, Optional, Sequence

import sentencepiece as spm


class Tokenizer:
    """From a model file, or from the serialized model a training checkpoint carries."""

    def __init__(self, model_path: Optional[str] = None, model_proto: Optional[bytes] = None):
        if (model_path is None) == (model_proto is None):
            raise ValueError("give exactly one of model_path and model_proto")
        if model_path is not None:
            self.sp = spm.SentencePieceProcessor(model_file=model_path)
        else:
            self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.n_vocab = self.sp.get_piece_size()
        self.sot, self.eot = self.sp.bos_id(), self.sp.eos_id()
        if self.sot < 0 or self.eot < 0:
            raise ValueError("the tokenizer needs bos (SOT) and eos (EOT) pieces")
        # Control and unknown pieces are never printed; none but EOT may ever be generated.
        self.special_ids = [i for i in range(self.n_vocab) if self.sp.is_control(i) or self.sp.is_unknown(i)]
        self.suppress_ids = [i for i in self.special_ids if i != self.eot]

    def encode(self, text: str) -> List[int]:
        return self.sp.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        special = set(self.special_ids)
        return self.sp.decode([int(i) for i in ids if int(i) not in special])

    def pieces(self) -> List[str]:
        return [self.sp.id_to_piece(i) for i in range(self.n_vocab)]


# --- a SentencePiece model with another model's pieces ----------------------------------------------------------
# The .earshot file keeps a model's vocabulary but not its SentencePiece model; `earshot export` writes the pieces
# by id. A BPE model is its pieces in merge order (score -rank, byte pieces 0) plus its trainer and normaliser
# settings, so a model of the same recipe (the data pipeline's tokenizer) supplies the settings and the pieces are
# swapped in. Protobuf wire format by hand: the python3-protobuf package is not otherwise needed.

_PIECE_TYPES = {"normal": 1, "unknown": 2, "control": 3, "byte": 6}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(buf: bytes, pos: int):
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated SentencePiece model")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _proto_fields(buf: bytes):
    """(field number, raw bytes of the whole field) of a serialized message, in order."""
    pos, out = 0, []
    while pos < len(buf):
        start = pos
        key, pos = _read_varint(buf, pos)
        wire = key & 7
        if wire == 0:
            _, pos = _read_varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            n, pos = _read_varint(buf, pos)
            pos += n
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} in the SentencePiece model")
        if pos > len(buf):
            raise ValueError("truncated SentencePiece model")
        out.append((key >> 3, buf[start:pos]))
    return out


def _piece_message(piece: str, score: float, kind: int) -> bytes:
    text = piece.encode("utf-8")
    body = b"\x0a" + _varint(len(text)) + text + b"\x15" + struct.pack("<f", score)
    if kind != _PIECE_TYPES["normal"]:
        body += b"\x18" + _varint(kind)
    return b"\x0a" + _varint(len(body)) + body  # ModelProto.pieces = 1


def model_with_pieces(template: bytes, pieces: Sequence[str], special_ids: Sequence[int]) -> bytes:
    """The serialized SentencePiece model `template` with `pieces` (by id) in place of its own. Special ids are
    control pieces ("<unk>" the unknown piece), "<0xNN>" pieces byte pieces, the rest ordinary pieces ranked in
    id order. The template must be a BPE model with the same special pieces."""
    special = set(int(i) for i in special_ids)
    settings = [raw for number, raw in _proto_fields(template) if number != 1]
    ref = Tokenizer(model_proto=template)
    if sorted(special) != ref.special_ids or any(pieces[i] != ref.sp.id_to_piece(i) for i in special):
        raise ValueError("the pieces' control tokens differ from the SentencePiece model's: "
                         f"{[pieces[i] for i in sorted(special)]} against {[ref.pieces()[i] for i in ref.special_ids]}")
    body, rank = bytearray(), 0
    for i, piece in enumerate(pieces):
        if i in special:
            kind, score = _PIECE_TYPES["unknown" if ref.sp.is_unknown(i) else "control"], 0.0
        elif re.fullmatch(r"<0x[0-9A-F]{2}>", piece):
            kind, score = _PIECE_TYPES["byte"], 0.0
        else:
            kind, score = _PIECE_TYPES["normal"], -float(rank)
            rank += 1
        body += _piece_message(piece, score, kind)
    for raw in settings:
        body += raw
    rebuilt = Tokenizer(model_proto=bytes(body))
    if rebuilt.pieces() != list(pieces):
        raise ValueError("the rebuilt SentencePiece model does not list the pieces it was given")
    return bytes(body)
