"""Random-weight checkpoints in earshot's own float checkpoint format (what the training recipe exports):
DIR/model.safetensors (F32, canonical names, no encoder position table: the engine computes the sinusoids),
DIR/config.json ("format": "earshot-checkpoint"), DIR/tokenizer.json (SentencePiece pieces).

SMALL is a variable-length model with deliberately uneven shapes (5 heads of 16, 3 encoder and 2 decoder layers,
a 750-position audio context) so that shape handling is exercised, not just the happy path of square configs.
STRIDED and STRIDED4 have the compact front ends (conv1 stride 2 or 4: 4 or 8 mel frames per encoder position);
STRIDED4 also asks for silence around each window (`edge_silence_ms`), as the recipe's exports do.
"""
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List

from reference_model import Dims, WeightSpec, canonical_tensors, make_model
from safetensors_io import write_safetensors
from vocab import sentencepiece_bytes, sentencepiece_pieces


@dataclass
class CheckpointVariant:
    name: str
    dims: Dims
    weights: WeightSpec
    sot: int = 1
    eot: int = 2
    suppress_tokens: List[int] = field(default_factory=lambda: [0, 1])
    begin_suppress_tokens: List[int] = field(default_factory=list)
    alignment_heads: List[List[int]] = field(default_factory=list)
    edge_silence_ms: int = 0


SMALL = CheckpointVariant(
    name="earshot-parity-small",
    dims=Dims(n_mels=80, n_audio_ctx=750, n_audio_state=80, n_audio_head=5, n_audio_layer=3,
              n_text_ctx=48, n_text_state=80, n_text_head=5, n_text_layer=2, n_vocab=512),
    weights=WeightSpec(seed=37, eot=2, eot_slope=0.35, eot_offset=8.0),
    begin_suppress_tokens=[259],   # the bare "▁" piece, as Whisper keeps a bare space from starting the text
    alignment_heads=[[1, 0], [1, 3]],
)

# earshot's compact front end: conv1 with stride 2 (4 mel frames per encoder position, 375 positions for 30 s).
STRIDED = CheckpointVariant(
    name="earshot-parity-strided",
    dims=Dims(n_mels=80, n_audio_ctx=375, n_audio_state=64, n_audio_head=4, n_audio_layer=2,
              n_text_ctx=48, n_text_state=64, n_text_head=4, n_text_layer=2, n_vocab=512, conv1_stride=2),
    weights=WeightSpec(seed=41, eot=2, eot_slope=0.35, eot_offset=8.0),
)

# conv1 stride 4: 8 mel frames (80 ms) per encoder position, 375 positions for 30 s.
STRIDED4 = CheckpointVariant(
    name="earshot-parity-strided4",
    dims=Dims(n_mels=80, n_audio_ctx=375, n_audio_state=64, n_audio_head=4, n_audio_layer=2,
              n_text_ctx=48, n_text_state=64, n_text_head=4, n_text_layer=2, n_vocab=512, conv1_stride=4),
    weights=WeightSpec(seed=43, eot=2, eot_slope=0.35, eot_offset=8.0),
    edge_silence_ms=250,
)

VARIANTS = {"small": SMALL, "strided": STRIDED, "strided4": STRIDED4}


def expected_metadata(variant: CheckpointVariant) -> Dict[str, object]:
    pieces = sentencepiece_pieces(variant.dims.n_vocab, variant.weights.seed)
    return {
        "dims": variant.dims.to_dict(),
        "variable_length_audio": True,
        "edge_silence_ms": variant.edge_silence_ms,
        "special": {"sot": variant.sot, "eot": variant.eot, "translate": -1, "transcribe": -1, "sot_lm": -1,
                    "sot_prev": -1, "no_speech": -1, "no_timestamps": -1, "timestamp_begin": -1},
        "suppress_tokens": list(variant.suppress_tokens),
        "begin_suppress_tokens": list(variant.begin_suppress_tokens),
        "prompt_without_timestamps": [variant.sot],
        "token_bytes": [sentencepiece_bytes(p) for p in pieces],
        "n_regular_tokens": None,
        "special_ids": [0, 1, 2],
        "alignment_heads": variant.alignment_heads,
    }


def write_earshot_checkpoint(out_dir: str, variant: CheckpointVariant):
    """Writes the folder and returns (torch reference model, canonical tensors written, expected metadata)."""
    os.makedirs(out_dir, exist_ok=True)
    model = make_model(variant.dims, variant.weights)
    tensors = canonical_tensors(model, include_encoder_positions=False)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), dict(sorted(tensors.items())),
                      {"format": "pt", "producer": "tests/reference/earshot_checkpoint.py"})
    config = {
        "format": "earshot-checkpoint",
        "format_version": 1,
        "dims": variant.dims.to_dict(),
        "variable_length_audio": True,
        "edge_silence_ms": variant.edge_silence_ms,
        "mel": {"sample_rate": 16000, "n_fft": 400, "hop_length": 160, "n_mels": variant.dims.n_mels,
                "chunk_seconds": 30},
        "special_tokens": {"sot": variant.sot, "eot": variant.eot},
        "languages": [],
        "suppress_tokens": variant.suppress_tokens,
        "begin_suppress_tokens": variant.begin_suppress_tokens,
        "default_prompt": [variant.sot],
        "alignment_heads": variant.alignment_heads,
        "card": {
            "name": variant.name, "version": "0.0.1",
            "description": "Random weights for engine parity tests; not a speech recogniser.",
            "languages": ["en"], "license": "Apache-2.0", "training_data": "none (random weights)",
            "wer": [], "extra": {"seed": variant.weights.seed},
        },
    }
    with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    pieces = sentencepiece_pieces(variant.dims.n_vocab, variant.weights.seed)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump({"kind": "sentencepiece", "pieces": pieces, "special_ids": [0, 1, 2]}, f, ensure_ascii=False)
    return model, tensors, expected_metadata(variant)
