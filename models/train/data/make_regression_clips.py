#!/usr/bin/python3
"""Writes the 20-clip regression set for the default model's WER test: held-out synthetic voices (flite awb,
festival ked_diphone) reading fixed sentences that are in no dev transcript, plus manifest.tsv (path, transcript,
voice). Deterministic (fixed texts, fixed seed) and quick (a few seconds), so the test suite can call it.

  /usr/bin/python3 models/train/data/make_regression_clips.py OUT_DIR
"""
import argparse
import os
import sys

import numpy as np
import soundfile as sf

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from earshot_train import augment, synth  # noqa: E402
from earshot_train.text import DevFilter, read_manifest  # noqa: E402

SEED = 20240611
TEXTS = [
    "Remind me to call the dentist tomorrow morning.",
    "The train to the airport leaves at seven thirty.",
    "Please add three cartons of milk to my shopping list.",
    "What is the weather going to be like this weekend?",
    "My new address is four twelve Maple Avenue.",
    "She finished the report two days before the deadline.",
    "Turn off the lights in the kitchen.",
    "The museum opens at ten and closes at five.",
    "We planted tomatoes and beans in the garden last spring.",
    "How long does it take to drive to the coast?",
    "Set a timer for fifteen minutes.",
    "The committee will meet again on the second of March.",
    "He bought a small wooden boat from an old fisherman.",
    "Send a message to Anna saying I will be late.",
    "The library has more than twenty thousand books.",
    "Can you read the last paragraph again?",
    "Our flight was delayed because of heavy fog.",
    "The children painted a bright yellow sun on the wall.",
    "Schedule a meeting with the design team for Friday afternoon.",
    "The price of the ticket went up by ten percent.",
]
VOICES = [("flite", "awb"), ("festival", "ked_diphone")]


def check_not_dev(texts):
    dev_manifest = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(HERE)))),
                                "shared", "data", "dev", "manifest.tsv")
    if not os.path.exists(dev_manifest):
        return
    dev = DevFilter(row["transcript"] for row in read_manifest(dev_manifest))
    clashes = [t for t in texts if dev.is_dev_like(t)]
    if clashes:
        raise SystemExit(f"regression texts overlap dev transcripts: {clashes}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    args = parser.parse_args(argv)
    check_not_dev(TEXTS)
    os.makedirs(args.out_dir, exist_ok=True)
    choices = [synth.VoiceChoice(*VOICES[i % 2]) for i in range(len(TEXTS))]
    clean = synth.synthesize_many(TEXTS, choices)
    rng = np.random.default_rng(SEED)
    rows = []
    for i, (text, choice, result) in enumerate(zip(TEXTS, choices, clean)):
        if result is None:
            raise SystemExit(f"{choice.engine} {choice.voice} failed on: {text}")
        audio = augment.to_16k(*result)
        # A quiet noise floor and a little lead-in silence, as a microphone recording has; no other changes,
        # so the clips measure the model, not the augmentation.
        audio = np.concatenate([np.zeros(2400, np.float32), audio, np.zeros(3200, np.float32)])
        audio = audio / (np.max(np.abs(audio)) + 1e-9) * 0.5
        audio = audio + 10 ** (-65 / 20) * augment.coloured_noise(audio.size, rng, 1.0)
        name = f"reg_{i:02d}_{choice.voice}.wav"
        sf.write(os.path.join(args.out_dir, name), np.clip(audio, -1, 1), augment.SR, subtype="PCM_16")
        rows.append((name, text, f"{choice.engine}_{choice.voice}"))
    with open(os.path.join(args.out_dir, "manifest.tsv"), "w", encoding="utf-8") as f:
        f.write("path\ttranscript\tvoice\n")
        for row in rows:
            f.write("\t".join(row) + "\n")
    print(f"wrote {len(rows)} clips to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
