#!/usr/bin/python3
"""Writes a small random-weight checkpoint (our own format) and a speech-like WAV, for tests and tools that need a
model without training one: `make_test_model.py OUT_DIR` -> OUT_DIR/checkpoint/, OUT_DIR/sample.wav."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from earshot_checkpoint import SMALL, write_earshot_checkpoint  # noqa: E402
from signals import speech_like, write_wav_pcm16  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir")
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    write_earshot_checkpoint(os.path.join(args.out_dir, "checkpoint"), SMALL)
    write_wav_pcm16(os.path.join(args.out_dir, "sample.wav"), speech_like(args.seconds, seed=5))
    print(os.path.join(args.out_dir, "checkpoint"))


if __name__ == "__main__":
    main()
