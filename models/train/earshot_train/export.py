"""Export a training checkpoint to earshot's float checkpoint folder (see models/train/README.md):

    python3 -m earshot_train.export --checkpoint $DATA/runs/en-8m/best.pt --out DIR
    earshot import checkpoint DIR -o model.earshot

DIR/model.safetensors  F32 tensors under the canonical names (safetensors layout: 8-byte little-endian header
                       length, JSON header, raw little-endian data), written here without the safetensors package
DIR/config.json        dims, mel settings, special tokens, suppression, default prompt, model card
DIR/tokenizer.json     the SentencePiece pieces by id and the control ids
"""
import argparse
import json
import os
import struct
import sys
from typing import Dict, List, Optional

import numpy as np
import torch

from .tokens import Tokenizer, model_with_pieces

MEL = {"sample_rate": 16000, "n_fft": 400, "hop_length": 160, "n_mels": 80, "chunk_seconds": 30}


def write_safetensors(path: str, tensors: Dict[str, np.ndarray], metadata: Optional[Dict[str, str]] = None):
    """float32 tensors, in name order; the header is padded with spaces to a multiple of 8 bytes so the data
    starts aligned."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4")
        blob = data.tobytes()
        header[name] = {"dtype": "F32", "shape": list(data.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def read_safetensors(path: str) -> Dict[str, np.ndarray]:
    """Reader for what write_safetensors writes (F32 only); used by the tests and for checking exports."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8: 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise ValueError(f"{name}: dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + begin: 8 + n + end], dtype="<f4").reshape(info["shape"])
    return out


def model_tensors(state_dict: Dict[str, torch.Tensor]) -> Dict[str, np.ndarray]:
    """Canonical tensors of a Whisper state_dict. Only parameters are persistent in model.py: the encoder's
    sinusoids are left out on purpose (the engine computes them), and the output projection is the tied
    embedding."""
    return {name: t.detach().to(torch.float32).cpu().numpy() for name, t in state_dict.items()}


# Silence the engine puts before and after each window: every training utterance has 0.05-0.6 s of it on each side
# (augment.AugmentConfig.lead_silence), and speech cut tight at its first sample (spoken digits, a tight VAD
# segment) otherwise often comes out empty.
EDGE_SILENCE_MS = 250


def checkpoint_config(dims: dict, tok: Tokenizer, card: dict) -> dict:
    return {
        "format": "earshot-checkpoint",
        "format_version": 1,
        "dims": dims,
        "variable_length_audio": True,
        "edge_silence_ms": EDGE_SILENCE_MS,
        "mel": dict(MEL, n_mels=dims["n_mels"]),
        "special_tokens": {"sot": tok.sot, "eot": tok.eot},
        "suppress_tokens": tok.suppress_ids,
        # EOT must stay possible at the first step: its probability there is the no-speech probability.
        "begin_suppress_tokens": [],
        "default_prompt": [tok.sot],
        "card": card,
    }


def tokenizer_json(tok: Tokenizer) -> dict:
    return {"kind": "sentencepiece", "pieces": tok.pieces(), "special_ids": tok.special_ids}


def model_card(state: dict, n_params: int, license_name: str, version: str) -> dict:
    stats, evals = state.get("stats", {}), state.get("eval", {})
    last = evals.get("last") or {}
    # The card's WER table is for the engine's numbers on the evaluation sets; the trainer's own quick checks
    # (a few dozen utterances, PyTorch greedy) stay in `extra`.
    checks = {group: {"heldout_loss": round(g["loss"], 4), "greedy_wer": round(g["wer"], 2), "words": g["words"]}
              for group, g in sorted((last.get("groups") or {}).items())}
    return {
        "name": f"earshot-en-{round(n_params / 1e6)}m",
        "version": version,
        "description": "English speech recognition model trained by earshot's recipe; see MODEL_CARD.md",
        "languages": ["en"],
        "license": license_name,
        "training_data": "synthetic speech (espeak-ng, flite, festival) and real recordings; see MODEL_CARD.md",
        "wer": [],
        "extra": {
            "parameters": n_params,
            "step": state.get("step"),
            "audio_hours_seen": round(stats.get("audio_seconds", 0.0) / 3600, 2),
            "heldout_loss": last.get("loss"),
            "best_heldout_loss": evals.get("best_loss"),
            "best_step": evals.get("best_step"),
            "training_checks": checks,
        },
    }


def card_wer(report: dict) -> List[dict]:
    """The model card's WER table from a `models/train/evaluate --out` report: every row of every set (each source
    and the summaries), each decoding it was scored with."""
    entries = []
    for set_name, s in report["sets"].items():
        for row in s["rows"]:
            for beam, r in row["beams"].items():
                if r["wer_percent"] is None:
                    continue
                entries.append({"test_set": f"{set_name}/{row['label']}",
                                "decoding": "greedy" if beam == "1" else f"beam{beam}",
                                "wer": r["wer_percent"], "words": row["reference_words"]})
    return entries


def export(checkpoint: str, out_dir: str, license_name: str = "Apache-2.0", version: str = "0.1.0",
           wer_report: Optional[dict] = None, raw_weights: bool = False) -> dict:
    """Writes the checkpoint's weight average when it has one (what its evaluations scored), else or with
    raw_weights its trained weights."""
    state = torch.load(checkpoint, map_location="cpu")
    tok = Tokenizer(model_proto=state["tokenizer_model"])
    dims = state["dims"]
    if tok.n_vocab != dims["n_vocab"]:
        raise ValueError(f"tokenizer has {tok.n_vocab} pieces, model n_vocab is {dims['n_vocab']}")
    averaged = "ema" in state and not raw_weights
    tensors = model_tensors(state["ema"] if averaged else state["model"])
    n_params = int(sum(t.size for t in tensors.values()))
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, {"format": "pt"})
    card = model_card(state, n_params, license_name, version)
    card["extra"]["weights"] = f"moving average, decay {state['config']['ema_decay']:g}" if averaged else "trained"
    if wer_report is not None:
        card["wer"] = card_wer(wer_report)
    config = checkpoint_config(dims, tok, card)
    for name, obj in (("config.json", config), ("tokenizer.json", tokenizer_json(tok))):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1, ensure_ascii=False)
            f.write("\n")
    return config


def read_export(out_dir: str, template_tokenizer: bytes) -> dict:
    """The inverse of export(), for starting training from a model folder (one `earshot export` wrote from a
    .earshot file, or one export() wrote): the shape of a training checkpoint that `train --init-from` takes
    (weights, dims, a SentencePiece model with the folder's pieces, step from the card), without optimiser state
    or CTC head. `template_tokenizer` supplies the SentencePiece settings (tokens.model_with_pieces)."""
    with open(os.path.join(out_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    if config.get("format") != "earshot-checkpoint":
        raise ValueError(f"{out_dir}/config.json is not an earshot checkpoint folder")
    with open(os.path.join(out_dir, "tokenizer.json"), encoding="utf-8") as f:
        tokenizer = json.load(f)
    if tokenizer.get("kind") != "sentencepiece":
        raise ValueError(f"{out_dir}: training takes SentencePiece vocabularies, not {tokenizer.get('kind')!r}")
    d = config["dims"]
    if d["n_audio_state"] != d["n_text_state"] or d["n_audio_head"] != d["n_text_head"] or d["n_mels"] != MEL["n_mels"]:
        raise ValueError(f"{out_dir}: the recipe's models have one width and head count and {MEL['n_mels']} mel bins: {d}")
    if len(tokenizer["pieces"]) != d["n_vocab"]:
        raise ValueError(f"{out_dir}: {len(tokenizer['pieces'])} pieces, n_vocab {d['n_vocab']}")
    tokenizer_model = model_with_pieces(template_tokenizer, tokenizer["pieces"], tokenizer["special_ids"])
    model = {name: torch.from_numpy(np.array(t)) for name, t in read_safetensors(
        os.path.join(out_dir, "model.safetensors")).items()}
    shape = {"d_model": d["n_audio_state"], "n_head": d["n_audio_head"], "n_audio_layer": d["n_audio_layer"],
             "n_text_layer": d["n_text_layer"], "n_audio_ctx": d["n_audio_ctx"], "n_text_ctx": d["n_text_ctx"],
             "conv1_stride": d.get("conv1_stride", 1)}
    extra = config.get("card", {}).get("extra", {})
    return {"config": shape, "dims": dict(d, conv1_stride=shape["conv1_stride"]), "model": model,
            "tokenizer_model": tokenizer_model, "step": int(extra.get("step", 0))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m earshot_train.export", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="a training checkpoint (last.pt or best.pt)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--license", default="Apache-2.0")
    p.add_argument("--version", default="0.1.0")
    p.add_argument("--wer", metavar="REPORT.json",
                   help="the WER table for the model card: a report written by `models/train/evaluate --out`")
    p.add_argument("--raw-weights", action="store_true",
                   help="the trained weights, not their moving average (checkpoints of runs with --ema-decay)")
    args = p.parse_args(argv)
    wer_report = None
    if args.wer:
        with open(args.wer, encoding="utf-8") as f:
            wer_report = json.load(f)
    config = export(args.checkpoint, args.out, args.license, args.version, wer_report, args.raw_weights)
    extra = config["card"]["extra"]
    print(f"wrote {args.out}: {config['card']['name']}, step {extra['step']}, {extra['parameters']} parameters, "
          f"{extra['weights']} weights")
    return 0


if __name__ == "__main__":
    sys.exit(main())
