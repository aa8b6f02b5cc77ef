"""Held-out loss of trained weights, from any of the forms they take: a training checkpoint (its weight average when
it has one, as `export` writes), a model folder (the recipe's export or `earshot export`), or an .earshot file
(turned into a folder by `earshot export`, so an int8/int4 file is scored with its dequantized weights in PyTorch).

  /usr/bin/python3 -m earshot_train.heldout_loss MODEL [MODEL ...] [--data DIR] [--earshot CLI]

Prints, per model and held-out group, the mean per-token cross-entropy over every utterance that fits the model's
window: the trainer's evaluation over all utterances rather than its sample. Smoother than WER, it measures what a
change to the weights alone costs, such as a quantization scheme: weights that differ only in rounding are
compared on the same utterances and tokens.
"""
import argparse
import os
import subprocess
import sys
import tempfile
from typing import Dict, List, Tuple

import torch

from . import export
from .dataset import EVAL_GROUPS, ShardIndex
from .evaluate import heldout_loss
from .model import Whisper
from .score import DEFAULT_CLI
from .tokens import Tokenizer
from .train import TrainConfig


def load_weights(path: str, template_tokenizer: str, cli: str = DEFAULT_CLI) -> Tuple[Whisper, Tokenizer]:
    """The model (eval mode) and tokenizer that `path` holds."""
    if path.endswith(".earshot"):
        with tempfile.TemporaryDirectory(prefix="earshot_heldout_loss_") as folder:
            run = subprocess.run([cli, "export", path, "-o", folder], capture_output=True, text=True)
            if run.returncode != 0:
                raise ValueError(f"{cli} export {path} failed: {run.stderr.strip()}")
            return load_weights(folder, template_tokenizer, cli)
    if os.path.isdir(path):
        with open(template_tokenizer, "rb") as f:
            state = export.read_export(path, f.read())
        weights = state["model"]
    else:
        state = torch.load(path, map_location="cpu")
        weights = state["ema"] if "ema" in state else state["model"]
    tok = Tokenizer(model_proto=state["tokenizer_model"])
    model = Whisper(TrainConfig.from_dict(state["config"]).dims(tok.n_vocab))
    model.load_state_dict(weights)
    return model.eval(), tok


def model_heldout_losses(model: Whisper, tok: Tokenizer, data_dir: str,
                         batch_frames: int = 16000) -> Dict[str, Tuple[float, int]]:
    """Group -> (mean per-token cross-entropy, target tokens) over every held-out utterance the model can take."""
    dims = model.dims
    index = ShardIndex(data_dir, tok.encode, max_frames=dims.frames_per_position * dims.n_audio_ctx,
                       max_text_tokens=dims.n_text_ctx - 1, groups=EVAL_GROUPS)
    index.scan()
    out = {}
    with torch.no_grad():
        for group in EVAL_GROUPS:
            if index.by_group[group]:
                out[group] = heldout_loss(model, index, index.by_group[group], tok.sot, tok.eot, batch_frames)
    return out


def main(argv: List[str] = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m earshot_train.heldout_loss", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("models", nargs="+", help="checkpoint (.pt), model folder or .earshot file")
    p.add_argument("--data", default=os.environ.get("EARSHOT_DATA", os.path.expanduser("~/.cache/earshot/train")))
    p.add_argument("--tokenizer", help="SentencePiece settings for model folders (default: DATA/tokenizer/sp.model)")
    p.add_argument("--earshot", default=DEFAULT_CLI, help="the CLI that exports .earshot files")
    args = p.parse_args(argv)
    template = args.tokenizer or os.path.join(args.data, "tokenizer", "sp.model")
    for path in args.models:
        try:
            model, tok = load_weights(path, template, args.earshot)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            print(f"heldout_loss: {path}: {e}", file=sys.stderr)
            return 1
        losses = model_heldout_losses(model, tok, args.data)
        if not losses:
            print(f"heldout_loss: no held-out shards under {args.data}", file=sys.stderr)
            return 1
        print(path, "  ".join(f"{g} {loss:.4f} ({n} tokens)" for g, (loss, n) in losses.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
