#!/usr/bin/python3
"""WER regression test of the shipped default model, through the engine's CLI (beam 5).

Scores two small fixed sets with the standard English normaliser (models/train/earshot_train/wer.py):
- 20 synthetic clips of held-out voices (flite awb, festival ked_diphone), generated here by
  models/train/data/make_regression_clips.py (deterministic, a few seconds);
- 20 real recordings from ../shared/data/dev (a fixed list: LibriSpeech, VCTK, pocketsphinx, FSDD; no ARCTIC,
  whose prompts are read in training). Skipped with a message when ../shared is absent.

Thresholds come from models/<model>.regression.json next to the model ({"synthetic_wer": x,
"dev_subset_wer": y}, WER in percent), so they move with the model; the test fails when a measured WER is above
its threshold. With no models/earshot-en-*.earshot it prints "SKIP: no default model in models/" and passes.

  /usr/bin/python3 tests/parity/test_wer_regression.py --earshot build/native/earshot --work-dir /tmp/wer_reg
  ... --model other.earshot             a model outside models/ (thresholds: other.regression.json)
  ... --write-thresholds                measure, then write the thresholds file (measured + at most 1 point)
"""
import argparse
import glob
import json
import math
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "models", "train"))

from earshot_train import score  # noqa: E402

MAKE_CLIPS = os.path.join(REPO, "models", "train", "data", "make_regression_clips.py")
DEV_DIR = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "dev"))
BEAM = 5
MARGIN = 1.0  # WER points above the measured value (DESIGN.md section 10: at most 1)
DEV_SUBSET = [
    "audio/librispeech_test_other/1688-142285-0002.flac",
    "audio/librispeech_test_other/1998-15444-0007.flac",
    "audio/librispeech_test_other/1998-15444-0008.flac",
    "audio/librispeech_test_other/2033-164914-0004.flac",
    "audio/librispeech_test_other/2414-128291-0006.flac",
    "audio/librispeech_test_other/2609-156975-0001.flac",
    "audio/vctk_subsets/p225_003.flac",
    "audio/vctk_subsets/p226_010.flac",
    "audio/vctk_subsets/p227_004.flac",
    "audio/vctk_subsets/p228_002.flac",
    "audio/vctk_subsets/p232_020.flac",
    "audio/vctk_subsets/p233_023.flac",
    "audio/pocketsphinx/cards_002.flac",
    "audio/pocketsphinx/cards_005.flac",
    "audio/pocketsphinx/goforward.flac",
    "audio/pocketsphinx/librivox_sense_and_sensibility_01_austen_64kb-0880.flac",
    "audio/pocketsphinx/librivox_sense_and_sensibility_01_austen_64kb-0930.flac",
    "audio/fsdd/3_george_7.flac",
    "audio/fsdd/5_george_20.flac",
    "audio/fsdd/8_george_33.flac",
]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--earshot", required=True, help="the earshot CLI")
    p.add_argument("--work-dir", required=True, help="scratch folder (clips, WAV copies)")
    p.add_argument("--model", help="score this model instead of models/earshot-en-*.earshot")
    p.add_argument("--dev-dir", default=DEV_DIR, help="real dev recordings (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--write-thresholds", action="store_true",
                   help=f"write <model>.regression.json from this run (measured + {MARGIN:g}, rounded down)")
    return p.parse_args()


def thresholds_path(model: str) -> str:
    return os.path.splitext(model)[0] + ".regression.json"


def score_subset(name: str, eval_set: score.EvalSet, args) -> score.SetScore:
    t0 = time.monotonic()
    hyps = score.transcribe_all(args.earshot, args.model_path, eval_set.clips, [BEAM], args.jobs, timeout=120.0)
    result = score.score_set(eval_set, hyps, [BEAM])
    print(score.format_table(result))
    print(f"({name}: {len(eval_set.clips)} clips in {time.monotonic() - t0:.1f} s)\n")
    for cs in result.clips:
        if cs.hypotheses[BEAM].error:
            print(f"  CLI failed on {cs.clip.clip_id}: {cs.hypotheses[BEAM].error}")
    return result


def worst_clips(result: score.SetScore, n: int = 5):
    ranked = sorted(result.clips, key=lambda cs: -cs.counts[BEAM].errors)[:n]
    for cs in ranked:
        if cs.counts[BEAM].errors:
            print(f"  {cs.clip.clip_id}: {cs.counts[BEAM].errors} errors\n    ref: {cs.reference_normalized}\n"
                  f"    hyp: {cs.normalized[BEAM]}")


def check_model(model: str, args) -> bool:
    """Scores one model; True when every measured WER is within its threshold."""
    args.model_path = model
    print(f"model {model}")
    limits_file = thresholds_path(model)
    limits = None
    if os.path.exists(limits_file):
        with open(limits_file, encoding="utf-8") as f:
            limits = json.load(f)

    synth_dir = os.path.join(args.work_dir, "synthetic")
    proc = subprocess.run([sys.executable, MAKE_CLIPS, synth_dir], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        print(f"FAIL: {MAKE_CLIPS} failed:\n{proc.stdout}{proc.stderr}")
        return False
    measured = {}
    results = {}
    cache = os.path.join(args.work_dir, "cache")
    results["synthetic_wer"] = score_subset(
        "synthetic", score.load_set(f"regression_synthetic={synth_dir}", cache_dir=cache), args)
    if os.path.exists(os.path.join(args.dev_dir, "manifest.tsv")):
        dev = score.load_set(f"dev_subset={args.dev_dir}", dev_dir=args.dev_dir, cache_dir=cache, only=DEV_SUBSET)
        results["dev_subset_wer"] = score_subset("dev subset", dev, args)
    else:
        print(f"SKIP: {args.dev_dir} not found (the shared data folder beside the repository): "
              f"dev subset not scored, synthetic clips only")
    for key, result in results.items():
        measured[key] = result.overall.wer_percent(BEAM)

    if args.write_thresholds:
        new = {key: math.floor((value + MARGIN) * 10) / 10 for key, value in measured.items()}
        new.update({"beam": BEAM, "measured": {k: round(v, 2) for k, v in measured.items()},
                    "note": f"thresholds = measured WER (percent) + {MARGIN:g} point, rounded down; "
                            "tests/parity/test_wer_regression.py"})
        if limits:
            for key in ("synthetic_wer", "dev_subset_wer"):
                if key not in new and key in limits:
                    new[key] = limits[key]  # keep a threshold this run could not measure
        with open(limits_file, "w", encoding="utf-8") as f:
            json.dump(new, f, indent=2)
            f.write("\n")
        print(f"wrote {limits_file}: " + ", ".join(f"{k} {new[k]}" for k in measured))
        return True

    if limits is None:
        print(f"FAIL: no thresholds file {limits_file}: measured " +
              ", ".join(f"{k} {v:.2f}%" for k, v in measured.items()) +
              "; write it with --write-thresholds and ship it with the model")
        return False
    ok = True
    for key, value in measured.items():
        limit = limits.get(key)
        if not isinstance(limit, (int, float)):
            print(f"FAIL: {limits_file} has no number for '{key}'")
            ok = False
            continue
        verdict = "ok" if value <= limit else "FAIL"
        print(f"{verdict}: {key} {value:.2f}% (threshold {limit:g}%)")
        if value > limit:
            worst_clips(results[key])
            ok = False
    return ok


def main() -> int:
    args = parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    models = [args.model] if args.model else sorted(glob.glob(os.path.join(REPO, "models", "earshot-en-*.earshot")))
    if not models:
        print("SKIP: no default model in models/")
        return 0
    try:
        score.check_cli(args.earshot, models[0])
        ok = all([check_model(m, args) for m in models])
    except score.EvalError as e:
        print(f"FAIL: {e}")
        return 1
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
