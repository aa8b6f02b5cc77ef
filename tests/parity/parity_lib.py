"""Shared harness of the engine-vs-PyTorch parity tests (test_whisper_parity.py, test_checkpoint_parity.py).

For each reference model: write the checkpoint folder, `earshot import` it (--dtype f32 and f16), check the imported
file against what was written (tensors, hyper-parameters, special ids, vocabulary), run `earshot dump` on test WAVs
with teacher-forced tokens and beam sizes 5 and 1, and compare every output with the PyTorch reference run on the
same features. Commands the CLI does not have yet ("not implemented yet") turn into SKIP lines, so the suite stays
green until they land. Exit code 0 = pass (or skipped), 1 = a check failed.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "reference"))

import reference_model as ref  # noqa: E402
from beam_search import SearchConfig, beam_search, sequence_logprobs  # noqa: E402
from earshot_file import EarshotFile  # noqa: E402
from signals import speech_like, write_wav_pcm16  # noqa: E402

SCHEMA = os.path.join(REPO_ROOT, "src", "model", "earshot.fbs")
REL_TOL = 1e-4            # DESIGN.md 10: max |diff| <= 1e-4 * max |ref| for features, encoder output, logits
TIE_MARGIN = 1e-4         # beam sequences may differ only where two scores are closer than this
N_RANDOM_TOKENS = 20


class NotImplementedCommand(Exception):
    pass


class CommandFailed(Exception):
    pass


# --- results --------------------------------------------------------------------------------------------------
@dataclass
class Row:
    case: str
    quantity: str
    max_diff: float
    max_ref: float
    tol: float
    ok: bool

    @property
    def rel(self) -> float:
        return self.max_diff / self.max_ref if self.max_ref > 0 else self.max_diff


@dataclass
class Report:
    title: str
    rows: List[Row] = field(default_factory=list)
    failures: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    skips: List[str] = field(default_factory=list)
    timings: Dict[str, float] = field(default_factory=dict)
    beam_summaries: List[str] = field(default_factory=list)
    file_summaries: List[str] = field(default_factory=list)

    def add_time(self, what: str, seconds: float):
        self.timings[what] = self.timings.get(what, 0.0) + seconds

    def fail(self, msg: str):
        print(f"FAIL: {msg}", flush=True)
        self.failures.append(msg)

    def note(self, msg: str):
        print(f"NOTE: {msg}", flush=True)
        self.notes.append(msg)

    def skip(self, msg: str):
        print(f"SKIP: {msg}", flush=True)
        self.skips.append(msg)

    def compare(self, case: str, quantity: str, got: np.ndarray, want: np.ndarray, rel_tol: float = REL_TOL) -> bool:
        if got.shape != want.shape:
            self.fail(f"{case}: {quantity} has shape {list(got.shape)}, the reference {list(want.shape)}")
            return False
        diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if want.size else 0.0
        max_ref = float(np.max(np.abs(want))) if want.size else 0.0
        if not np.all(np.isfinite(got)):
            diff = float("inf")
        tol = rel_tol * max_ref
        row = Row(case, quantity, diff, max_ref, tol, diff <= tol)
        self.rows.append(row)
        if not row.ok:
            where = np.unravel_index(int(np.argmax(np.abs(got.astype(np.float64) - want))), want.shape) \
                if np.all(np.isfinite(got)) else "non-finite values"
            self.fail(f"{case}: {quantity} max |diff| {diff:.3g} > {tol:.3g} (1e-4 x max|ref| {max_ref:.3g}) at {where}")
        return row.ok

    def add_row(self, case, quantity, max_diff, max_ref, tol):
        row = Row(case, quantity, max_diff, max_ref, tol, max_diff <= tol)
        self.rows.append(row)
        return row.ok

    def print_table(self):
        if not self.rows:
            return
        print(f"\n{self.title}: measured errors (engine vs PyTorch reference)")
        header = f"{'case':<34} {'quantity':<24} {'max|diff|':>10} {'max|ref|':>10} {'rel':>9} {'tol':>9}  result"
        print(header)
        print("-" * len(header))
        for r in self.rows:
            print(f"{r.case:<34} {r.quantity:<24} {r.max_diff:>10.3g} {r.max_ref:>10.3g} {r.rel:>9.2e} "
                  f"{r.tol:>9.2e}  {'ok' if r.ok else 'FAIL'}")

    def finish(self) -> int:
        self.print_table()
        for line in self.file_summaries:
            print(f"imported file: {line}")
        for line in self.beam_summaries:
            print(f"reference beam: {line}")
        if self.timings:
            print("\ntimings: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items()))
        for n in self.notes:
            print(f"note: {n}")
        if self.failures:
            print(f"\n{self.title}: FAILED ({len(self.failures)} failure(s))")
            for f in self.failures:
                print(f"  - {f}")
            return 1
        if self.skips and not self.rows:
            print(f"\n{self.title}: skipped ({'; '.join(self.skips)})")
        else:
            print(f"\n{self.title}: passed ({len(self.rows)} comparisons, {len(self.skips)} skipped part(s))")
        return 0


# --- running the CLI --------------------------------------------------------------------------------------------
def run_cli(earshot: str, args: Sequence[str], timeout: float) -> subprocess.CompletedProcess:
    cmd = [earshot] + [str(a) for a in args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CommandFailed(f"`{' '.join(cmd)}` did not finish within {timeout:.0f} s")
    if proc.returncode != 0:
        if "not implemented yet" in (proc.stderr + proc.stdout):
            raise NotImplementedCommand(f"earshot {args[0]}: not implemented yet")
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
        raise CommandFailed(f"`{' '.join(cmd)}` exited with {proc.returncode}: " + " | ".join(tail))
    return proc


def probe_commands(report: Report, earshot: str) -> Dict[str, bool]:
    """Which of import/dump exist: the placeholder of a missing command prints "not implemented yet"."""
    if not os.path.isfile(earshot):
        report.fail(f"no earshot binary at {earshot}")
        return {"import": False, "dump": False}
    present = {}
    for command in ("import", "dump"):
        try:
            proc = subprocess.run([earshot, command, "--help"], capture_output=True, text=True, timeout=60)
            present[command] = "not implemented yet" not in (proc.stdout + proc.stderr)
        except (OSError, subprocess.TimeoutExpired) as e:
            report.fail(f"`{earshot} {command} --help` failed: {e}")
            present[command] = False
    return present


def parse_args(description: str, variants: Sequence[str]):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--earshot", required=True, help="path to the earshot CLI binary")
    p.add_argument("--work-dir", required=True, help="scratch folder (checkpoints, WAVs, dumps)")
    p.add_argument("--only", nargs="*", choices=list(variants), help="run only these reference models")
    p.add_argument("--dtypes", nargs="*", default=["f32", "f16"], choices=["f32", "f16"])
    p.add_argument("--timeout", type=float, default=300, help="seconds allowed per CLI command")
    p.add_argument("--max-clips", type=int, default=0, help="use only the first N test clips (0: all)")
    p.add_argument("--beams", nargs="*", type=int, default=[5, 1], help="beam sizes to dump (f16 runs the first)")
    p.add_argument("--keep", action="store_true", help="keep generated checkpoints and model files")
    args = p.parse_args()
    args.earshot = os.path.abspath(args.earshot)
    os.makedirs(args.work_dir, exist_ok=True)
    return args


# --- the models and audio under test ------------------------------------------------------------------------------
@dataclass
class ModelUnderTest:
    name: str
    import_kind: str               # "whisper" | "checkpoint"
    source_dir: str
    model: object                  # reference_model.Whisper
    tensors: Dict[str, np.ndarray] # canonical name -> what the checkpoint holds
    expected: Dict[str, object]    # expected_metadata() of the writer
    pad_to_samples: int            # 480000 for Whisper checkpoints (30-s window), 0 for variable-length models
    max_new_tokens: int
    # Whether the engine must use a position table from the file (True when it is not plain sinusoids).
    learned_encoder_positions: bool = False

    @property
    def edge_silence_samples(self) -> int:
        """Silence the engine puts before and after the audio (16-kHz samples)."""
        return int(self.expected.get("edge_silence_ms", 0)) * 16

    @property
    def dims(self):
        return self.model.dims


@dataclass
class AudioCase:
    name: str
    wav: str
    samples: np.ndarray


def make_audio(work_dir: str, name: str, seconds: float, seed: int) -> AudioCase:
    path = os.path.join(work_dir, f"{name}.wav")
    samples = write_wav_pcm16(path, speech_like(seconds, seed))
    return AudioCase(name, path, samples)


def search_config(mut: ModelUnderTest, beam: int) -> SearchConfig:
    s = mut.expected["special"]
    return SearchConfig(beam_size=beam, max_new_tokens=mut.max_new_tokens, eot=s["eot"],
                        suppress_tokens=mut.expected["suppress_tokens"],
                        begin_suppress_tokens=mut.expected["begin_suppress_tokens"],
                        timestamp_begin=s["timestamp_begin"], no_timestamps=s["no_timestamps"])


def teacher_tokens(mut: ModelUnderTest, seed: int) -> List[int]:
    rng = np.random.default_rng(seed)
    n_regular = mut.expected["n_regular_tokens"] or mut.dims.n_vocab
    low = 3 if mut.import_kind == "checkpoint" else 0   # skip <unk>, <s>, </s> of a SentencePiece vocabulary
    return list(mut.expected["prompt_without_timestamps"]) + \
        [int(t) for t in rng.integers(low, n_regular, N_RANDOM_TOKENS)]


# --- checks of the imported file --------------------------------------------------------------------------------
def check_imported_file(report: Report, case: str, path: str, mut: ModelUnderTest, dtype: str) -> Optional[List[str]]:
    """Compares the .earshot file with what was written. Returns the canonical names stored as F16 (the reference
    rounds exactly those), or None when the file cannot be read here (then the importer's documented rule is
    assumed)."""
    try:
        f = EarshotFile(path, SCHEMA)
        root = f.root
        hp = root["hparams"].to_dict()
        special = root["special"].to_dict()
        tensors = f.tensors()
    except Exception as e:  # a file this reader cannot parse: the engine's own loader is the judge
        report.skip(f"{case}: file checks ({type(e).__name__}: {e})")
        return None
    dims = mut.expected["dims"]
    for key, want in dims.items():
        if hp.get(key) != want:
            report.fail(f"{case}: hparams.{key} = {hp.get(key)}, the checkpoint says {want}")
    if int(hp.get("edge_silence_ms") or 0) != int(mut.expected.get("edge_silence_ms", 0)):
        report.fail(f"{case}: edge_silence_ms = {hp.get('edge_silence_ms')}, "
                    f"expected {mut.expected.get('edge_silence_ms', 0)}")
    if bool(hp.get("variable_length_audio")) != mut.expected["variable_length_audio"]:
        report.fail(f"{case}: variable_length_audio = {hp.get('variable_length_audio')}, "
                    f"expected {mut.expected['variable_length_audio']}")
    for key, want in mut.expected["special"].items():
        if special.get(key, -1) != want:
            report.fail(f"{case}: special.{key} = {special.get(key)}, expected {want}")
    for key in ("suppress_tokens", "begin_suppress_tokens"):
        got = sorted(int(t) for t in (special.get(key) if special.get(key) is not None else []))
        if got != sorted(mut.expected[key]):
            report.fail(f"{case}: special.{key} differs from the checkpoint's "
                        f"(extra {sorted(set(got) - set(mut.expected[key]))[:8]}, "
                        f"missing {sorted(set(mut.expected[key]) - set(got))[:8]})")
    heads = root["alignment_heads"] or []
    got_heads = sorted([int(h["layer"]), int(h["head"])] for h in heads)
    if got_heads != sorted(mut.expected["alignment_heads"]):
        report.note(f"{case}: alignment heads {got_heads} differ from the checkpoint's {mut.expected['alignment_heads']}")
    langs = special.get("languages") or []
    if langs and mut.import_kind == "whisper":
        report.note(f"{case}: {len(langs)} languages listed for an English-only model")

    # Vocabulary: regular tokens must be byte-exact; special tokens are only reported.
    try:
        vocab = f.vocabulary()
    except Exception as e:
        report.fail(f"{case}: vocabulary unreadable ({e})")
        vocab = []
    want_bytes = mut.expected["token_bytes"]
    if len(vocab) != dims["n_vocab"]:
        report.fail(f"{case}: vocabulary has {len(vocab)} tokens, n_vocab is {dims['n_vocab']}")
    special_ids = set(mut.expected.get("special_ids", []))
    n_regular = mut.expected["n_regular_tokens"] or len(want_bytes)
    bad = [i for i in range(min(len(vocab), len(want_bytes)))
           if i < n_regular and i not in special_ids and vocab[i] != want_bytes[i]]
    if bad:
        report.fail(f"{case}: {len(bad)} token byte strings differ, e.g. id {bad[0]}: "
                    f"{vocab[bad[0]]!r} vs {want_bytes[bad[0]]!r}")
    bad_special = [i for i in range(min(len(vocab), len(want_bytes)))
                   if (i >= n_regular or i in special_ids) and vocab[i] != want_bytes[i]]
    if bad_special:
        report.note(f"{case}: {len(bad_special)} special-token texts differ from the tokenizer files, e.g. id "
                    f"{bad_special[0]}: {vocab[bad_special[0]]!r} vs {want_bytes[bad_special[0]]!r}")

    # Tensors: names, dtypes, values.
    f16_names, mismatched, unchecked = [], [], []
    for name, t in tensors.items():
        if name not in mut.tensors:
            report.fail(f"{case}: unexpected tensor {name} in the file")
            continue
        dt = t["dtype"]
        if dtype == "f32" and dt != "F32":
            report.fail(f"{case}: {name} stored as {dt} in an --dtype f32 import")
        if dt == "F16":
            f16_names.append(name)
        got = EarshotFile.tensor_array(t)
        if got is None:
            unchecked.append(name)
            continue
        want = mut.tensors[name]
        if dt == "F16":
            want = want.astype(np.float16).astype(np.float32)
        if got.shape != want.shape or not np.array_equal(got, want):
            mismatched.append(name)
    if mismatched:
        report.fail(f"{case}: {len(mismatched)} tensor(s) differ from the checkpoint's values: {mismatched[:6]}")
    if unchecked:
        report.note(f"{case}: {len(unchecked)} tensor(s) in a packed or quantized layout not compared")
    missing = [n for n in mut.tensors if n not in tensors and n != "encoder.positional_embedding"]
    if missing:
        report.fail(f"{case}: tensors missing from the file: {missing[:6]}")
    if mut.learned_encoder_positions and "encoder.positional_embedding" not in tensors:
        report.fail(f"{case}: the encoder position table is not sinusoidal but was dropped by the importer")
    compared = len(tensors) - len(unchecked)
    positions = "stored" if "encoder.positional_embedding" in tensors else "not stored (the engine computes them)"
    report.file_summaries.append(
        f"{case}: {compared} tensors compared ({len(f16_names)} F16), {len(mismatched)} differ; "
        f"{min(len(vocab), len(want_bytes))} token strings compared, {len(bad)} differ; encoder positions {positions}")
    return f16_names


def assumed_f16_names(mut: ModelUnderTest) -> List[str]:
    """The importers' documented --dtype f16 rule: matrices and embeddings (2-D and up) F16, 1-D tensors F32; a
    sinusoidal encoder position table is dropped (the engine computes it)."""
    names = [n for n, a in mut.tensors.items() if a.ndim >= 2]
    if not mut.learned_encoder_positions and "encoder.positional_embedding" in names:
        names.remove("encoder.positional_embedding")
    return names


# --- checks of one dump ------------------------------------------------------------------------------------------
def load_dump(out_dir: str) -> Dict[str, object]:
    try:
        return _load_dump(out_dir)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CommandFailed(f"unreadable dump in {out_dir}: {type(e).__name__}: {e}")


def _load_dump(out_dir: str) -> Dict[str, object]:
    with open(os.path.join(out_dir, "dump.json")) as f:
        meta = json.load(f)
    out = {}
    for key in ("mel", "encoder", "logits"):
        if key in meta:
            info = meta[key]
            path = os.path.join(out_dir, info["file"])
            data = np.fromfile(path, dtype="<f4")
            shape = [int(s) for s in info["shape"]]
            if data.size != int(np.prod(shape)):
                raise CommandFailed(f"{path}: {data.size} floats, dump.json says shape {shape}")
            out[key] = data.reshape(shape)
    if "beam" in meta:
        with open(os.path.join(out_dir, meta["beam"])) as f:
            out["beam"] = json.load(f)
    return out


def expected_text(mut: ModelUnderTest, tokens: Sequence[int]) -> str:
    token_bytes = mut.expected["token_bytes"]
    n_regular = mut.expected["n_regular_tokens"] or len(token_bytes)
    special_ids = set(mut.expected.get("special_ids", []))
    raw = b"".join(token_bytes[t] for t in tokens if t < n_regular and t not in special_ids)
    if mut.import_kind == "checkpoint" and raw.startswith(b" "):
        raw = raw[1:]
    return raw.decode("utf-8", errors="replace")


def _first_difference(got: List[int], want: List[int]) -> str:
    if got == want:
        return "equal"
    k = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    return (f"differs from token {k}: engine ...{got[k:k + 6]} ({len(got)} tokens) vs reference "
            f"...{want[k:k + 6]} ({len(want)} tokens)")


def check_beam(report: Report, case: str, mut: ModelUnderTest, model, audio, got: dict, beam: int,
               teacher: List[int]):
    cfg = search_config(mut, beam)
    prompt = [int(t) for t in got.get("prompt", [])]
    want_prompt = list(mut.expected["prompt_without_timestamps"])
    if prompt != want_prompt and prompt != teacher:
        why = "; an English-only Whisper takes no language or task token" if mut.import_kind == "whisper" else ""
        report.fail(f"{case}: beam prompt {prompt}, expected {want_prompt} (the default prompt with timestamps "
                    f"off{why}) or the --tokens sequence; the reference searches from the engine's prompt")
    if got.get("beam_size") != beam:
        report.fail(f"{case}: beam.json beam_size {got.get('beam_size')}, asked for {beam}")
    if not prompt:
        report.fail(f"{case}: beam.json has no prompt")
        return
    t0 = time.time()
    res = beam_search(model, audio, prompt, cfg)
    report.add_time("reference beam search", time.time() - t0)
    tol_lp = 2 * REL_TOL * max(res.max_abs_logit, 1.0)   # what the logits tolerance allows per log-prob

    got_tokens = [int(t) for t in got.get("tokens", [])]
    got_finished = [([int(t) for t in h["tokens"]], float(h["sum_logprob"]), float(h.get("score", np.nan)))
                    for h in got.get("finished", [])]
    # A hypothesis shorter than the token limit can only have ended with EOT; the engine may also say so itself.
    ended_with_eot = {tuple(int(t) for t in h["tokens"]): bool(h["ended_with_eot"])
                      for h in got.get("finished", []) if "ended_with_eot" in h}
    candidates = [res] + ([res.alternative] if res.alternative else [])
    matched = None
    for c in candidates:
        if got_tokens == list(c.best.tokens) and [h[0] for h in got_finished] == [list(h.tokens) for h in c.finished]:
            matched = c
            break
    if matched is not None and matched is res.alternative:
        report.note(f"{case}: beam {beam} matches the reading where live hypotheses join `finished` when the "
                    f"token limit and the B-th finished hypothesis coincide")
    if matched is None:
        detail = (f"result {_first_difference(got_tokens, list(res.best.tokens))}; finished hypotheses (lengths): "
                  f"engine {[len(h[0]) for h in got_finished]} vs reference {[len(h.tokens) for h in res.finished]}")
        if res.min_margin < TIE_MARGIN:
            report.note(f"{case}: beam {beam} differs from the reference at a near tie "
                        f"(gap {res.min_margin:.2e} at {res.min_margin_where}); not a failure. {detail}")
        else:
            report.fail(f"{case}: beam {beam} token sequences differ (smallest decision gap "
                        f"{res.min_margin:.2e} at {res.min_margin_where}): {detail}")

    # Score every hypothesis the engine reported with the reference, whatever the search decided.
    worst_sum, worst_tok, scale = 0.0, 0.0, 0.0
    for toks, sum_lp, score in got_finished:
        with_eot = ended_with_eot.get(tuple(toks), len(toks) < cfg.max_new_tokens)
        lps = sequence_logprobs(model, audio, prompt, toks, with_eot, cfg)
        want_sum = float(np.sum(lps))
        if not np.isfinite(want_sum):
            report.fail(f"{case}: beam {beam} finished hypothesis {toks} contains a suppressed token")
            continue
        worst_sum = max(worst_sum, abs(sum_lp - want_sum))
        scale = max(scale, abs(want_sum))
        if not np.isnan(score) and abs(score - sum_lp / max(1, len(toks))) > 1e-5 * max(1.0, abs(score)):
            report.fail(f"{case}: beam {beam} hypothesis {toks}: score {score} != sum_logprob / max(1, n)")
    n_max = cfg.max_new_tokens + 1
    if not report.add_row(case, f"beam{beam} sum_logprob", worst_sum, scale, n_max * tol_lp):
        report.fail(f"{case}: beam {beam} sum_logprob of a finished hypothesis off by {worst_sum:.3g}")

    if got_finished:
        best_idx = max(range(len(got_finished)), key=lambda i: (got_finished[i][1] / max(1, len(got_finished[i][0])),
                                                                  -i))
        if got_finished[best_idx][0] != got_tokens:
            report.fail(f"{case}: beam {beam} result {got_tokens} is not the best-scoring finished hypothesis "
                        f"{got_finished[best_idx][0]}")
    got_lps = [float(x) for x in got.get("token_logprobs", [])]
    if got_tokens:
        lps = sequence_logprobs(model, audio, prompt, got_tokens, len(got_tokens) < cfg.max_new_tokens, cfg)
        if len(got_lps) not in (len(got_tokens), len(got_tokens) + 1):
            report.fail(f"{case}: beam {beam} has {len(got_lps)} token_logprobs for {len(got_tokens)} tokens")
        else:
            n = min(len(got_lps), len(lps))
            worst_tok = float(np.max(np.abs(np.array(got_lps[:n]) - lps[:n]))) if n else 0.0
            max_ref = float(np.max(np.abs(lps[:n]))) if n else 0.0
            if not report.add_row(case, f"beam{beam} token_logprobs", worst_tok, max_ref, tol_lp):
                report.fail(f"{case}: beam {beam} token_logprobs off by {worst_tok:.3g}")
        sum_want = float(np.sum(lps))
        if abs(float(got.get("sum_logprob", np.nan)) - sum_want) > n_max * tol_lp:
            report.fail(f"{case}: beam {beam} sum_logprob {got.get('sum_logprob')} vs reference {sum_want:.6g}")
    text = expected_text(mut, got_tokens)
    if got.get("text") is not None and got.get("text") != text and got.get("text", "").strip() != text.strip():
        report.note(f"{case}: beam {beam} text {got.get('text')!r}, the vocabulary gives {text!r}")
    report.beam_summaries.append(f"{case} beam {beam}: {len(res.best.tokens)} tokens, {len(res.finished)} finished "
                                 f"hypotheses, {res.steps} steps, smallest decision gap {res.min_margin:.2e}")


def run_dump_and_compare(report: Report, args, case: str, model_file: str, mut: ModelUnderTest, model,
                         audio_case: AudioCase, beams: Sequence[int], seed: int):
    """Dumps of one model on one clip, one per beam size (the first also with --tokens); all outputs compared."""
    teacher = teacher_tokens(mut, seed)
    edge = np.zeros(mut.edge_silence_samples, dtype=audio_case.samples.dtype)
    ref_mel = ref.log_mel(np.concatenate([edge, audio_case.samples, edge]), mut.dims.n_mels, mut.pad_to_samples)
    ref_audio = prev_encoder = None
    for i, beam in enumerate(beams):
        out_dir = os.path.join(args.work_dir, "dumps", f"{case.replace(' ', '_').replace('/', '_')}_b{beam}")
        shutil.rmtree(out_dir, ignore_errors=True)
        os.makedirs(out_dir)
        cli = ["dump", "--model", model_file, "--audio", audio_case.wav, "--out", out_dir, "--beam", beam,
               "--max-tokens", mut.max_new_tokens]
        tokens_here = i == 0
        if tokens_here:
            cli += ["--tokens", ",".join(str(t) for t in teacher)]
        t0 = time.time()
        run_cli(args.earshot, cli, args.timeout)
        report.add_time("earshot dump", time.time() - t0)
        got = load_dump(out_dir)
        for key in ("mel", "encoder", "beam") + (("logits",) if tokens_here else ()):
            if key not in got:
                report.fail(f"{case}: dump wrote no {key}")
        if "mel" not in got or "encoder" not in got:
            return
        if i == 0:
            report.compare(case, "log-mel", got["mel"], ref_mel)
            t0 = time.time()
            ref_audio = ref.encode(model, got["mel"])   # the reference encoder sees the engine's features
            report.add_time("reference forward", time.time() - t0)
            report.compare(case, "encoder output", got["encoder"], ref_audio[0].numpy())
            if tokens_here and "logits" in got:
                t0 = time.time()
                want = ref.teacher_forced_logits(model, teacher, ref_audio)
                report.add_time("reference forward", time.time() - t0)
                report.compare(case, f"logits ({len(teacher)} steps)", got["logits"], want)
        elif not np.array_equal(got["encoder"], prev_encoder):
            report.note(f"{case}: encoder output differs between two dumps of the same input")
        prev_encoder = got["encoder"]
        if "beam" in got:
            try:
                check_beam(report, case, mut, model, ref_audio, got["beam"], beam, teacher)
            except (KeyError, TypeError, ValueError) as e:
                report.fail(f"{case}: beam.json (beam {beam}) is malformed: {type(e).__name__}: {e}")
        if not args.keep:
            shutil.rmtree(out_dir, ignore_errors=True)


def run_model(report: Report, args, mut: ModelUnderTest, audio_cases: Sequence[AudioCase], seed: int,
              dump_available: bool = True) -> bool:
    """Import + checks + dumps for one reference model. Returns False when the CLI lacks a command (skip)."""
    for dtype in args.dtypes:
        case_base = f"{mut.name} {dtype}"
        model_file = os.path.join(args.work_dir, f"{mut.name}.{dtype}.earshot")
        t0 = time.time()
        try:
            run_cli(args.earshot, ["import", mut.import_kind, mut.source_dir, "-o", model_file, "--dtype", dtype],
                    args.timeout)
        except NotImplementedCommand as e:
            report.skip(f"{e} (nothing to compare for {mut.name})")
            return False
        except CommandFailed as e:
            report.fail(f"{case_base}: import failed: {e}")
            continue
        report.add_time("earshot import", time.time() - t0)
        f16_names = check_imported_file(report, case_base, model_file, mut, dtype)
        if not dump_available:
            if not args.keep:
                os.remove(model_file)
            continue
        if dtype == "f32":
            model = mut.model
        else:
            if f16_names is None:
                f16_names = assumed_f16_names(mut)
                report.note(f"{case_base}: reference rounds {len(f16_names)} tensors to f16 by the importer's rule")
            model = ref.with_rounded_tensors(mut.model, f16_names)
        clips = list(audio_cases[:args.max_clips] if args.max_clips > 0 else audio_cases)
        clips = clips if dtype == "f32" else clips[:1]
        beams = args.beams if dtype == "f32" else args.beams[:1]
        for k, clip in enumerate(clips):
            case = f"{case_base} {clip.name}"
            try:
                run_dump_and_compare(report, args, case, model_file, mut, model, clip, beams, seed + k)
            except NotImplementedCommand as e:
                report.skip(f"{e} (importer checks ran)")
                return False
            except CommandFailed as e:
                report.fail(f"{case}: {e}")
        if not args.keep:
            os.remove(model_file)
    return True
