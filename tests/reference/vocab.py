"""Synthetic, deterministic vocabularies for the reference checkpoints.

Byte-level BPE (GPT-2 / Whisper): ids 0..255 are the 256 byte symbols in GPT-2's order (printable bytes first, the
others mapped to U+0100 onwards), then one token per generated merge (merge k makes id 256 + k), then
<|endoftext|>. The merges build pseudo-English word pieces, with and without the leading-space marker "Ġ", so the
token strings look like a real vocabulary; nobody needs them to tokenise text well.

SentencePiece (our own checkpoints): <unk>, <s>, </s>, 256 byte-fallback pieces <0xNN>, then "▁"-prefixed and plain
word pieces.
"""
import random
from functools import lru_cache
from typing import Dict, List, Tuple


@lru_cache(maxsize=None)
def byte_symbols() -> Tuple[List[int], Dict[int, str]]:
    """(byte values in GPT-2 id order, byte value -> its printable symbol)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    order = list(printable)
    symbol = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in symbol:
            symbol[b] = chr(256 + extra)
            order.append(b)
            extra += 1
    return order, symbol


@lru_cache(maxsize=None)
def symbol_to_byte() -> Dict[str, int]:
    _, symbol = byte_symbols()
    return {s: b for b, s in symbol.items()}


def byte_level_decode(token: str) -> bytes:
    table = symbol_to_byte()
    return bytes(table[c] for c in token)


_LETTERS = "etaoinshrdlcumwfgypbvkjxqz"
_LETTER_WEIGHTS = [12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8, 2.4, 2.4, 2.2, 2.0, 2.0,
                   1.9, 1.5, 1.0, 0.8, 0.2, 0.2, 0.1, 0.1]


def generate_merges(n_merges: int, seed: int) -> List[Tuple[str, str]]:
    """n_merges distinct (left, right) pairs whose concatenations are new tokens, pseudo-English, deterministic."""
    rng = random.Random(seed)
    space = byte_symbols()[1][ord(" ")]
    existing = set(byte_symbols()[1].values())
    starts = [space] + [space + c.upper() for c in "TAISW"]   # pieces that begin a word
    parts = list(_LETTERS)                                    # pieces inside a word
    merges: List[Tuple[str, str]] = []
    # Leading-space and capitalised letters first, as real vocabularies have them early.
    for left, right in [(space, c) for c in _LETTERS] + [(space, c.upper()) for c in "TAISW"]:
        if len(merges) < n_merges and left + right not in existing:
            merges.append((left, right))
            existing.add(left + right)
            starts.append(left + right)
    while len(merges) < n_merges:
        if rng.random() < 0.5:
            left = starts[int(len(starts) * rng.random() ** 1.5)]
        else:
            left = parts[int(len(parts) * rng.random() ** 1.5)]
        right = rng.choices(_LETTERS, _LETTER_WEIGHTS)[0] if rng.random() < 0.6 else \
            parts[int(len(parts) * rng.random() ** 3)]
        token = left + right
        if len(token) > 12 or token in existing:
            continue
        existing.add(token)
        merges.append((left, right))
        (starts if left.startswith(space) else parts).append(token)
    return merges


def byte_level_vocab(n_merges: int, seed: int) -> Tuple[List[str], List[Tuple[str, str]]]:
    """Token strings for ids 0 .. 255 + n_merges (not including <|endoftext|>) and the merges."""
    order, symbol = byte_symbols()
    merges = generate_merges(n_merges, seed)
    tokens = [symbol[b] for b in order] + [a + b for a, b in merges]
    return tokens, merges


# --- Whisper's special tokens ------------------------------------------------------------------------------------
LANGUAGES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur hr bg lt la mi "
    "ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si km sn yo so af oc ka be tg sd "
    "gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln ha ba jw su").split()
N_TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|>


def whisper_special_layout(eot: int) -> Dict[str, object]:
    """Ids of Whisper's special tokens for an English-only vocabulary whose <|endoftext|> is `eot` (50256 in the
    real one), in the real order: endoftext, startoftranscript, 99 languages, translate, transcribe, startoflm,
    startofprev, nocaptions, notimestamps, then the timestamps."""
    sot = eot + 1
    lang0 = sot + 1
    after = lang0 + len(LANGUAGES)
    ids = {
        "eot": eot, "sot": sot, "translate": after, "transcribe": after + 1, "sot_lm": after + 2,
        "sot_prev": after + 3, "no_speech": after + 4, "no_timestamps": after + 5, "timestamp_begin": after + 6,
    }
    texts = {eot: "<|endoftext|>", sot: "<|startoftranscript|>", after: "<|translate|>", after + 1: "<|transcribe|>",
             after + 2: "<|startoflm|>", after + 3: "<|startofprev|>", after + 4: "<|nocaptions|>",
             after + 5: "<|notimestamps|>"}
    for i, code in enumerate(LANGUAGES):
        texts[lang0 + i] = f"<|{code}|>"
    for k in range(N_TIMESTAMPS):
        texts[after + 6 + k] = f"<|{k * 0.02:.2f}|>"
    return {"ids": ids, "texts": texts, "languages": {c: lang0 + i for i, c in enumerate(LANGUAGES)},
            "n_vocab": after + 6 + N_TIMESTAMPS}


# --- SentencePiece-style pieces ------------------------------------------------------------------------------------
def sentencepiece_pieces(n_vocab: int, seed: int) -> List[str]:
    """<unk>, <s>, </s>, <0x00>..<0xFF>, then word pieces up to n_vocab."""
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    if n_vocab < len(pieces) + 1:
        raise ValueError("vocabulary too small for byte fallback")
    space = byte_symbols()[1][ord(" ")]
    seen = set(pieces)
    pieces.append("\u2581")
    for left, right in generate_merges(4 * n_vocab, seed):
        if len(pieces) == n_vocab:
            break
        piece = (left + right).replace(space, "\u2581")
        if any(ord(c) > 0x7F and c != "\u2581" for c in piece) or piece in seen:
            continue
        seen.add(piece)
        pieces.append(piece)
    if len(pieces) < n_vocab:
        raise ValueError("could not generate enough pieces")
    return pieces


def sentencepiece_bytes(piece: str) -> bytes:
    """Bytes a piece stands for in the .earshot vocabulary: byte fallback -> that byte, U+2581 -> space."""
    if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
        return bytes([int(piece[3:5], 16)])
    return piece.replace("\u2581", " ").encode("utf-8")
