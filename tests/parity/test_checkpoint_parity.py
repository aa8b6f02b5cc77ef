#!/usr/bin/python3
"""Engine vs PyTorch parity on earshot's own checkpoint format (`earshot import checkpoint`): a variable-length
model with random weights and uneven shapes (5 heads, 3 encoder / 2 decoder layers, 750 audio positions), and two
with the compact front ends (conv1 stride 2 or 4, 4 or 8 mel frames per encoder position).

Two clips are used as they are, without padding: 4.2 s (420 frames, 210 encoder positions) and 1.3125 s (an odd 131
frames, 66 positions). Compared: log-mel, encoder output, teacher-forced logits through the KV cache, beam search
(5 and 1), for --dtype f32 and f16 imports. See tests/parity/README.md.
"""
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity_lib import (ModelUnderTest, Report, make_audio, parse_args, probe_commands,  # noqa: E402
                        run_model)
from earshot_checkpoint import VARIANTS, write_earshot_checkpoint  # noqa: E402

MAX_NEW_TOKENS = 20


def main() -> int:
    args = parse_args(__doc__, VARIANTS)
    report = Report("checkpoint parity")
    present = probe_commands(report, args.earshot)
    if not present["import"]:
        if not report.failures:
            report.skip("earshot import not implemented yet")
        return report.finish()
    if not present["dump"]:
        report.skip("earshot dump not implemented yet: only the imported files are checked")
    audio = [make_audio(args.work_dir, "speech_4.2s", 4.2, seed=2),
             make_audio(args.work_dir, "speech_1.3125s", 21000 / 16000, seed=3)]
    for key in args.only or list(VARIANTS):
        variant = VARIANTS[key]
        source = os.path.join(args.work_dir, variant.name)
        t0 = time.time()
        model, tensors, expected = write_earshot_checkpoint(source, variant)
        report.add_time("writing checkpoints", time.time() - t0)
        mut = ModelUnderTest(variant.name, "checkpoint", source, model, tensors, expected, pad_to_samples=0,
                             max_new_tokens=MAX_NEW_TOKENS)
        finished = run_model(report, args, mut, audio, seed=200, dump_available=present["dump"])
        if not args.keep:
            shutil.rmtree(source, ignore_errors=True)
        if not finished:
            break
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
