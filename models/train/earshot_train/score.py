"""Word error rate of an .earshot model through the engine's CLI (the path users run), per source and overall.

Runs `earshot transcribe --json --beam B` on every clip of the chosen evaluation sets, normalises references and
hypotheses with `wer.normalize`, and reports corpus WER (word-weighted) per source and overall for each beam size,
with the real-time factor. `models/train/evaluate` is its command line; tests/parity/test_wer_regression.py
uses the same functions on a small fixed subset.

Sets:
- `dev`: ../shared/data/dev (real recordings, FLAC; converted once to 16-bit WAV in the cache, since the CLI reads
  WAV). Sources come from the first folder under audio/ (librispeech, vctk, fsdd_digits, cmu_arctic,
  pocketsphinx). ARCTIC prompts are also read in the training data, so overall figures are given with and without
  it, and without the 500 one-word FSDD clips as well.
- `heldout_synth`, `real_holdout`: $EARSHOT_DATA/eval/<set>/manifest.tsv (written by models/train/data), one source
  per voice. `seen_synth` (same place, not in the default sets): the training voices reading heldout_synth's
  sentences, to tell fit on known voices from generalisation to new ones.
- any other folder holding a manifest.tsv (path, transcript, voice or speaker_id), e.g. the regression clips.
"""
import argparse
import concurrent.futures
import datetime
import hashlib
import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from . import wer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DATA_DIR = os.environ.get("EARSHOT_DATA", os.path.expanduser("~/.cache/earshot/train"))
DEV_DIR = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "dev"))
CACHE_DIR = os.environ.get("EARSHOT_EVAL_CACHE", os.path.expanduser("~/.cache/earshot/eval"))
DEFAULT_CLI = os.path.join(REPO, "build", "native", "earshot")

# Folder prefixes under dev's audio/ -> source label.
DEV_SOURCES = [("cmu_arctic", "cmu_arctic"), ("librispeech", "librispeech"), ("vctk", "vctk"),
               ("fsdd", "fsdd_digits"), ("pocketsphinx", "pocketsphinx")]
# Overall rows per set: (label, sources left out). Every figure is word-weighted.
SUMMARIES: Dict[str, List[Tuple[str, Tuple[str, ...]]]] = {
    "dev": [("all", ()), ("all without ARCTIC", ("cmu_arctic",)),
            ("all without ARCTIC and FSDD", ("cmu_arctic", "fsdd_digits"))],
}
# Targets of the first default model (WER %, any beam size reported): set -> (row, at most).
TARGETS = {"heldout_synth": ("all", 5.0), "dev": ("all without ARCTIC", 35.0)}


class EvalError(Exception):
    """A problem with the inputs (missing manifest, CLI or model): reported as one clear line."""


@dataclass(frozen=True)
class Clip:
    clip_id: str      # the manifest's path, unique within its set
    source: str
    reference: str
    audio: str        # absolute path of a WAV file the CLI reads
    seconds: float


@dataclass
class EvalSet:
    name: str
    manifest: str
    clips: List[Clip]


@dataclass
class Hypothesis:
    text: str
    compute_ms: float = 0.0   # the engine's own time: features + encoder + decoder (model load excluded)
    wall_ms: float = 0.0      # the whole CLI process, start-up and model load included
    error: Optional[str] = None


# ---------------------------------------------------------------- sets

def read_manifest(path: str) -> List[Dict[str, str]]:
    """Rows of a tab-separated manifest with a header line."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if "path" not in header or "transcript" not in header:
            raise EvalError(f"{path}: the header must name 'path' and 'transcript' columns")
        return [dict(zip(header, line.rstrip("\n").split("\t"))) for line in f if line.strip()]


def source_of(row: Dict[str, str], default: str) -> str:
    parts = row["path"].split("/")
    if len(parts) >= 3 and parts[0] == "audio":
        for prefix, label in DEV_SOURCES:
            if parts[1].startswith(prefix):
                return label
        return parts[1]
    return row.get("voice") or row.get("speaker_id") or default


def as_wav(audio: str, cache_dir: str, set_name: str, rel_path: str) -> str:
    """The clip itself when it is a WAV file, else a 16-bit WAV copy in the cache (made once)."""
    if audio.lower().endswith(".wav"):
        return audio
    import soundfile as sf
    out = os.path.join(cache_dir, "wav", set_name, os.path.splitext(rel_path)[0] + ".wav")
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(audio):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    data, rate = sf.read(audio, dtype="int16", always_2d=True)
    tmp = out + f".tmp{os.getpid()}.wav"
    sf.write(tmp, data, rate, subtype="PCM_16")
    os.replace(tmp, out)
    return out


def spread(items: Sequence, limit: Optional[int]) -> List:
    """`limit` items spread evenly over the sequence (so every source of a sorted manifest stays in)."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit <= 0:
        return []
    return [items[(k * len(items)) // limit] for k in range(limit)]


def resolve_manifest(spec: str, dev_dir: str, data_dir: str) -> Tuple[str, str]:
    """A set name or path -> (set name, manifest path)."""
    name, _, path = spec.partition("=")
    if not path:
        if spec == "dev":
            path = os.path.join(dev_dir, "manifest.tsv")
        elif spec in ("heldout_synth", "seen_synth", "real_holdout"):
            path = os.path.join(data_dir, "eval", spec, "manifest.tsv")
        else:
            path = spec
            name = os.path.basename(os.path.normpath(spec if os.path.isdir(spec) else os.path.dirname(spec)))
    if os.path.isdir(path):
        path = os.path.join(path, "manifest.tsv")
    if not os.path.exists(path):
        raise EvalError(f"set '{name}': no manifest at {path}")
    return name, path


def load_set(spec: str, dev_dir: str = DEV_DIR, data_dir: str = DATA_DIR, cache_dir: str = CACHE_DIR,
             limit: Optional[int] = None, only: Optional[Iterable[str]] = None) -> EvalSet:
    """Reads a set's manifest; `only` keeps the listed clip paths (in that order), `limit` a spread subset."""
    import soundfile as sf
    name, manifest = resolve_manifest(spec, dev_dir, data_dir)
    rows = read_manifest(manifest)
    if only is not None:
        by_path = {row["path"]: row for row in rows}
        missing = [p for p in only if p not in by_path]
        if missing:
            raise EvalError(f"{manifest}: clips not listed: {', '.join(missing)}")
        rows = [by_path[p] for p in only]
    rows = spread(rows, limit)
    base = os.path.dirname(manifest)
    clips = []
    for row in rows:
        audio = os.path.join(base, row["path"])
        if not os.path.exists(audio):
            raise EvalError(f"{manifest}: missing audio {audio}")
        wav = as_wav(audio, cache_dir, name, row["path"])
        clips.append(Clip(row["path"], source_of(row, name), row["transcript"], wav, sf.info(wav).duration))
    return EvalSet(name, manifest, clips)


# ---------------------------------------------------------------- transcription

def check_cli(cli: str, model: str):
    if not (os.path.isfile(cli) and os.access(cli, os.X_OK)):
        raise EvalError(f"no earshot CLI at {cli} (build it: cmake --build BUILD_DIR --target earshot, "
                        f"then pass --earshot BUILD_DIR/earshot)")
    if not os.path.isfile(model):
        raise EvalError(f"no model at {model}")


def transcribe(cli: str, model: str, clip: Clip, beam: int, timeout: float) -> Hypothesis:
    cmd = [cli, "transcribe", "--model", model, "--json", "--beam", str(beam), clip.audio]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Hypothesis("", error=f"timed out after {timeout:g} s")
    wall_ms = (time.monotonic() - t0) * 1000.0
    if proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return Hypothesis("", wall_ms=wall_ms, error=message)
    try:
        out = json.loads(proc.stdout)
        timings = out.get("timings", {})
        compute = sum(float(timings.get(k, 0.0)) for k in ("mel_ms", "encode_ms", "decode_ms"))
        return Hypothesis(str(out["text"]), compute_ms=compute, wall_ms=wall_ms)
    except (ValueError, KeyError, TypeError) as e:
        return Hypothesis("", wall_ms=wall_ms, error=f"unreadable JSON from the CLI: {e}")


def transcribe_all(cli: str, model: str, clips: Sequence[Clip], beams: Sequence[int], jobs: int = 2,
                   timeout: float = 300.0, progress: Optional[Callable[[str], None]] = None,
                   label: str = "") -> Dict[Tuple[str, int], Hypothesis]:
    """Every clip at every beam size, `jobs` CLI processes at a time: {(clip_id, beam): Hypothesis}."""
    tasks = [(clip, beam) for beam in beams for clip in clips]
    results: Dict[Tuple[str, int], Hypothesis] = {}
    lock = threading.Lock()
    t0 = last = time.monotonic()

    def run(task):
        nonlocal last
        clip, beam = task
        hyp = transcribe(cli, model, clip, beam, timeout)
        with lock:
            results[(clip.clip_id, beam)] = hyp
            now = time.monotonic()
            if progress and (now - last >= 15.0 or len(results) == len(tasks)):
                last = now
                progress(f"{label}: {len(results)}/{len(tasks)} transcriptions, {now - t0:.0f} s")

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(run, tasks))
    return results


# ---------------------------------------------------------------- scoring

@dataclass
class RowScore:
    label: str
    clips: int = 0
    words: int = 0
    seconds: float = 0.0
    counts: Dict[int, wer.EditCounts] = field(default_factory=dict)
    compute_ms: Dict[int, float] = field(default_factory=dict)
    wall_ms: Dict[int, float] = field(default_factory=dict)
    failures: Dict[int, int] = field(default_factory=dict)

    def wer_percent(self, beam: int) -> float:
        return 100.0 * self.counts[beam].wer

    def rtf(self, beam: int) -> float:
        return self.compute_ms[beam] / 1000.0 / self.seconds if self.seconds else float("nan")

    def as_dict(self, beams: Sequence[int]) -> dict:
        return {"label": self.label, "clips": self.clips, "reference_words": self.words,
                "audio_seconds": round(self.seconds, 3),
                "beams": {str(b): {"wer_percent": _finite(self.wer_percent(b)), **self.counts[b].as_dict(),
                                   "rtf": _finite(self.rtf(b)),
                                   "rtf_with_process_start": _finite(self.wall_ms[b] / 1000.0 / self.seconds
                                                                     if self.seconds else float("nan")),
                                   "failures": self.failures[b]} for b in beams}}


def _finite(x: float) -> Optional[float]:
    return None if math.isnan(x) or math.isinf(x) else round(x, 4)


@dataclass
class ClipScore:
    clip: Clip
    reference_normalized: str
    hypotheses: Dict[int, Hypothesis]
    normalized: Dict[int, str]
    counts: Dict[int, wer.EditCounts]


@dataclass
class SetScore:
    name: str
    manifest: str
    beams: List[int]
    clips: List[ClipScore]
    rows: List[RowScore]      # one per source (sorted), then the overall rows
    n_sources: int

    @property
    def overall(self) -> RowScore:
        return self.rows[self.n_sources]

    @property
    def fingerprint(self) -> str:
        """Names the clips and references scored: two reports compare on a set only when these agree (the held-out
        sets are rebuilt with the data, and a changed text build changes them)."""
        h = hashlib.sha256()
        for cs in self.clips:
            h.update(f"{cs.clip.clip_id}\t{cs.clip.reference}\n".encode("utf-8"))
        return h.hexdigest()[:12]

    def row(self, label: str) -> RowScore:
        return next(r for r in self.rows if r.label == label)


def score_set(eval_set: EvalSet, hyps: Dict[Tuple[str, int], Hypothesis], beams: Sequence[int]) -> SetScore:
    clip_scores = []
    for clip in eval_set.clips:
        ref = wer.normalize(clip.reference)
        by_beam = {b: hyps[(clip.clip_id, b)] for b in beams}
        norm = {b: wer.normalize(h.text) for b, h in by_beam.items()}
        counts = {b: wer.edit_counts(ref.split(), norm[b].split()) for b in beams}
        clip_scores.append(ClipScore(clip, ref, by_beam, norm, counts))

    def accumulate(label: str, members: List[ClipScore]) -> RowScore:
        row = RowScore(label, clips=len(members))
        for b in beams:
            row.counts[b], row.compute_ms[b], row.wall_ms[b], row.failures[b] = wer.EditCounts(), 0.0, 0.0, 0
        for cs in members:
            row.words += cs.counts[beams[0]].reference_words if beams else 0
            row.seconds += cs.clip.seconds
            for b in beams:
                row.counts[b] = row.counts[b] + cs.counts[b]
                row.compute_ms[b] += cs.hypotheses[b].compute_ms
                row.wall_ms[b] += cs.hypotheses[b].wall_ms
                row.failures[b] += cs.hypotheses[b].error is not None
        return row

    sources = sorted({cs.clip.source for cs in clip_scores})
    rows = [accumulate(s, [cs for cs in clip_scores if cs.clip.source == s]) for s in sources]
    for label, left_out in SUMMARIES.get(eval_set.name, [("all", ())]):
        if left_out and not any(s in left_out for s in sources):
            continue  # the same as "all" (e.g. a --limit that missed them)
        rows.append(accumulate(label, [cs for cs in clip_scores if cs.clip.source not in left_out]))
    return SetScore(eval_set.name, eval_set.manifest, list(beams), clip_scores, rows, len(sources))


# ---------------------------------------------------------------- reports

def beam_name(beam: int) -> str:
    return "greedy" if beam == 1 else f"beam {beam}"


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1f}%"


def _rtf(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.3f}"


def format_table(s: SetScore) -> str:
    total = s.overall
    head = f"{s.name}: {total.clips} clips, {total.seconds / 60:.1f} min  ({s.manifest})"
    cols = ["source", "clips", "words", "min"] + [f"WER {beam_name(b)}" for b in s.beams] + \
           [f"RTF {beam_name(b)}" for b in s.beams] + (["failed"] if any(
               r.failures[b] for r in s.rows for b in s.beams) else [])
    lines = []
    for r in s.rows:
        cells = [r.label, str(r.clips), str(r.words), f"{r.seconds / 60:.1f}"] + \
                [_pct(r.wer_percent(b)) for b in s.beams] + [_rtf(r.rtf(b)) for b in s.beams]
        if len(cols) > len(cells):
            cells.append("/".join(str(r.failures[b]) for b in s.beams))
        lines.append(cells)
    widths = [max(len(c), *(len(l[i]) for l in lines)) for i, c in enumerate(cols)]

    def fmt(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [head, fmt(cols)]
    for i, cells in enumerate(lines):
        if i == s.n_sources:
            out.append("  ".join("-" * w for w in widths))
        out.append(fmt(cells))
    return "\n".join(out)


def format_markdown(s: SetScore) -> str:
    cols = ["source", "clips", "words"] + [f"WER {beam_name(b)}" for b in s.beams] + \
           [f"RTF {beam_name(b)}" for b in s.beams]
    out = [f"**{s.name}** ({s.overall.clips} clips, {s.overall.seconds / 60:.1f} min; clips {s.fingerprint})", "",
           "| " + " | ".join(cols) + " |", "|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|"]
    for i, r in enumerate(s.rows):
        label = f"**{r.label}**" if i >= s.n_sources else r.label
        out.append("| " + " | ".join([label, str(r.clips), str(r.words)] + [_pct(r.wer_percent(b)) for b in s.beams]
                                     + [_rtf(r.rtf(b)) for b in s.beams]) + " |")
    return "\n".join(out)


def target_lines(scores: Sequence[SetScore]) -> List[str]:
    lines = []
    for s in scores:
        if s.name not in TARGETS:
            continue
        label, limit = TARGETS[s.name]
        row = next((r for r in s.rows if r.label == label), None)
        if row is None:
            continue
        for b in s.beams:
            w = row.wer_percent(b)
            verdict = "meets" if w <= limit else "misses"
            lines.append(f"target {s.name} / {label} <= {limit:g}%: {beam_name(b)} {_pct(w)} ({verdict})")
    return lines


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def report_json(scores: Sequence[SetScore], model: str, cli: str, jobs: int, wall_s: float) -> dict:
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": {"path": os.path.abspath(model), "sha256": sha256_of(model) if os.path.exists(model) else None,
                  "bytes": os.path.getsize(model) if os.path.exists(model) else None},
        "earshot_cli": os.path.abspath(cli), "jobs": jobs, "wall_seconds": round(wall_s, 1),
        "normalizer": "earshot_train.wer.normalize",
        "rtf": "engine time (features + encoder + decoder) / audio time; rtf_with_process_start adds CLI start-up "
               "and model load; measured with `jobs` CLI processes at once",
        "targets": target_lines(scores),
        "sets": {s.name: {
            "manifest": s.manifest, "fingerprint": s.fingerprint, "beams": s.beams,
            "rows": [r.as_dict(s.beams) for r in s.rows],
            "clips": [{"id": cs.clip.clip_id, "source": cs.clip.source, "audio_seconds": round(cs.clip.seconds, 3),
                       "reference": cs.clip.reference, "reference_normalized": cs.reference_normalized,
                       "hypotheses": {str(b): {"text": cs.hypotheses[b].text, "normalized": cs.normalized[b],
                                               **cs.counts[b].as_dict(),
                                               "compute_ms": round(cs.hypotheses[b].compute_ms, 2),
                                               "wall_ms": round(cs.hypotheses[b].wall_ms, 2),
                                               "error": cs.hypotheses[b].error} for b in s.beams}}
                      for cs in s.clips]}
            for s in scores},
    }


def rescore_json(path: str) -> Tuple[List[SetScore], dict]:
    """Scores again the hypotheses stored in a report (after a normaliser change), without running the CLI."""
    with open(path, encoding="utf-8") as f:
        old = json.load(f)
    scores = []
    for name, data in old["sets"].items():
        beams = [int(b) for b in data["beams"]]
        clips, hyps = [], {}
        for c in data["clips"]:
            clips.append(Clip(c["id"], c["source"], c["reference"], "", c["audio_seconds"]))
            for b in beams:
                h = c["hypotheses"][str(b)]
                hyps[(c["id"], b)] = Hypothesis(h["text"], h["compute_ms"], h["wall_ms"], h["error"])
        scores.append(score_set(EvalSet(name, data["manifest"], clips), hyps, beams))
    return scores, old


# ---------------------------------------------------------------- command line

def _int_list(text: str) -> List[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'")
    if not values or any(v < 1 or v > 64 for v in values):
        raise argparse.ArgumentTypeError("beam sizes must be in 1..64")
    return values


def parse_args(argv=None, description: str = __doc__) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="evaluate", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="the .earshot model to score")
    p.add_argument("--sets", default="dev,heldout_synth,real_holdout",
                   help="comma-separated: dev, heldout_synth, seen_synth, real_holdout, NAME=DIR_OR_MANIFEST or a "
                        "folder with a manifest.tsv (default: %(default)s)")
    p.add_argument("--beams", type=_int_list, default=[1, 5], help="beam sizes, 1 = greedy (default: 1,5)")
    p.add_argument("--earshot", default=DEFAULT_CLI, help="the earshot CLI (default: %(default)s)")
    p.add_argument("--limit", type=int, help="at most N clips per set, spread evenly over its manifest")
    p.add_argument("--jobs", type=int, default=2, help="CLI processes at once (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per CLI call (default: %(default)s)")
    p.add_argument("--out", help="write the full report (every clip's texts and counts) as JSON")
    p.add_argument("--markdown", nargs="?", const="-", metavar="PATH",
                   help="also write Markdown tables for the model card (to PATH, or to stdout)")
    p.add_argument("--rescore", metavar="REPORT.json",
                   help="score the hypotheses stored in an earlier --out report again, without the CLI")
    p.add_argument("--dev-dir", default=DEV_DIR, help="real dev recordings (default: %(default)s)")
    p.add_argument("--data-dir", default=DATA_DIR, help="training data root with eval/ (default: %(default)s)")
    p.add_argument("--cache-dir", default=CACHE_DIR, help="WAV copies of FLAC clips (default: %(default)s)")
    args = p.parse_args(argv)
    if not args.rescore and not args.model:
        p.error("--model is required (or --rescore REPORT.json)")
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)

    def progress(message: str):
        print(message, file=sys.stderr, flush=True)

    t0 = time.monotonic()
    try:
        if args.rescore:
            scores, old = rescore_json(args.rescore)
            model, cli, jobs = old["model"]["path"], old["earshot_cli"], old["jobs"]
        else:
            model, cli, jobs = args.model, args.earshot, args.jobs
            check_cli(cli, model)
            scores = []
            for spec in [s.strip() for s in args.sets.split(",") if s.strip()]:
                eval_set = load_set(spec, args.dev_dir, args.data_dir, args.cache_dir, args.limit)
                hyps = transcribe_all(cli, model, eval_set.clips, args.beams, jobs, args.timeout, progress,
                                      eval_set.name)
                scores.append(score_set(eval_set, hyps, args.beams))
    except EvalError as e:
        print(f"evaluate: {e}", file=sys.stderr)
        return 2
    wall = time.monotonic() - t0

    print(f"model {model}\n")
    for s in scores:
        print(format_table(s) + "\n")
    for line in target_lines(scores):
        print(line)
    report = report_json(scores, model, cli, jobs, wall)
    if args.rescore:
        report["wall_seconds"] = old.get("wall_seconds")
    failures = sum(cs.hypotheses[b].error is not None for s in scores for cs in s.clips for b in s.beams)
    print(f"\n{sum(len(s.clips) for s in scores)} clips x {len(scores[0].beams) if scores else 0} beam sizes "
          f"in {wall:.0f} s with {jobs} jobs" + (f"; {failures} CLI failures (scored as empty)" if failures else ""))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, ensure_ascii=False)
        print(f"wrote {args.out}")
    if args.markdown:
        md = "\n\n".join(format_markdown(s) for s in scores) + "\n\n" + \
             "WER after the standard English normaliser (`earshot_train/wer.py`), word-weighted; RTF = engine " \
             "compute time / audio time on this machine.\n"
        if args.markdown == "-":
            print("\n" + md)
        else:
            with open(args.markdown, "w", encoding="utf-8") as f:
                f.write(md)
            print(f"wrote {args.markdown}")
    return 1 if failures else 0
