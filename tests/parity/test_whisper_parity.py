#!/usr/bin/python3
"""Engine vs PyTorch parity on Hugging Face Whisper checkpoints with random weights (`earshot import whisper`).

Two reference models: "tiny" (odd sizes, a scaled-down vocabulary with Whisper's special-token structure, a learned
encoder position table) and "tiny.en" (exactly whisper-tiny.en's shapes and special ids). A 4.2-s speech-like clip
is padded to the 30-s window as Whisper does. Compared: log-mel, encoder output, teacher-forced logits through the
KV cache, beam search (5 and 1), for --dtype f32 and f16 imports. See tests/parity/README.md.
"""
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity_lib import (ModelUnderTest, Report, make_audio, parse_args, probe_commands,  # noqa: E402
                        run_model)
from hf_whisper import VARIANTS, write_hf_whisper  # noqa: E402

MAX_NEW_TOKENS = 24
WHISPER_WINDOW_SAMPLES = 480000


def main() -> int:
    args = parse_args(__doc__, VARIANTS)
    report = Report("whisper parity")
    present = probe_commands(report, args.earshot)
    if not present["import"]:
        if not report.failures:
            report.skip("earshot import not implemented yet")
        return report.finish()
    if not present["dump"]:
        report.skip("earshot dump not implemented yet: only the imported files are checked")
    audio = [make_audio(args.work_dir, "speech_4.2s", 4.2, seed=1)]
    for key in args.only or list(VARIANTS):
        variant = VARIANTS[key]
        source = os.path.join(args.work_dir, variant.name)
        t0 = time.time()
        model, tensors, expected = write_hf_whisper(source, variant)
        report.add_time("writing checkpoints", time.time() - t0)
        mut = ModelUnderTest(variant.name, "whisper", source, model, tensors, expected,
                             pad_to_samples=WHISPER_WINDOW_SAMPLES, max_new_tokens=MAX_NEW_TOKENS,
                             learned_encoder_positions=variant.weights.encoder_position_noise > 0)
        finished = run_model(report, args, mut, audio, seed=100, dump_available=present["dump"])
        if not args.keep:
            shutil.rmtree(source, ignore_errors=True)
        if not finished:
            break
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
