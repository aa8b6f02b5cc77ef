"""Text-to-speech with Debian's English voices: espeak-ng (accents x variants), flite and festival.

Voice split (DESIGN.md section 10): flite awb and festival ked_diphone are whole speakers kept out of training for
evaluation. flite kal/kal16 and festival kal_diphone are one speaker; festival slt_hts and flite slt are another.
"""
import io
import os
import random
import re
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf

ESPEAK_ACCENTS = ["en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
                  "en-us-nyc"]
FLITE_TRAIN_VOICES = ["kal", "kal16", "slt", "rms"]
FESTIVAL_TRAIN_VOICES = ["kal_diphone", "cmu_us_slt_arctic_hts"]
HELDOUT_VOICES = [("flite", "awb"), ("festival", "ked_diphone")]
# The recorded-speaker training voices, for an evaluation set that mirrors the held-out one (espeak is left out: its
# training utterances draw random variants, speeds and pitches, so no single setting stands for "seen").
SEEN_EVAL_VOICES = [("flite", "kal16"), ("flite", "slt"), ("flite", "rms"), ("festival", "kal_diphone"),
                    ("festival", "cmu_us_slt_arctic_hts")]

# Per-utterance engine/voice mix for training. espeak-ng brings variety (many accents and variants) but sounds
# robotic; the recorded-speaker voices are closer to real speech, so they get a large share despite being few.
TRAIN_MIX: List[Tuple[str, str, float]] = [
    ("espeak", "*", 0.42),
    ("flite", "kal16", 0.10), ("flite", "kal", 0.04), ("flite", "slt", 0.11), ("flite", "rms", 0.11),
    ("festival", "kal_diphone", 0.08), ("festival", "cmu_us_slt_arctic_hts", 0.14),
]


@dataclass(frozen=True)
class VoiceChoice:
    engine: str            # "espeak", "flite", "festival"
    voice: str             # engine voice name; espeak: "accent+variant"
    speed_wpm: int = 0     # espeak only
    pitch: int = 0         # espeak only

    def label(self) -> str:
        if self.engine == "espeak":
            return f"{self.voice}/s{self.speed_wpm}/p{self.pitch}"
        return self.voice


@lru_cache(maxsize=None)
def espeak_variants() -> Tuple[str, ...]:
    """Variant names from `espeak-ng --voices=variant` (e.g. "Alicia", "m3", "klatt4")."""
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    names = []
    for line in out.splitlines()[1:]:
        match = re.search(r"!v/(\S+)", line)
        if match:
            names.append(match.group(1))
    return tuple(sorted(set(names)))


def pick_training_voice(rng: random.Random) -> VoiceChoice:
    engines = [(e, v) for e, v, _ in TRAIN_MIX]
    weights = [w for _, _, w in TRAIN_MIX]
    engine, voice = rng.choices(engines, weights)[0]
    if engine == "espeak":
        accent = rng.choice(ESPEAK_ACCENTS)
        variants = espeak_variants()
        variant = rng.choice(variants) if rng.random() < 0.9 else ""
        return VoiceChoice("espeak", accent + ("+" + variant if variant else ""), rng.randint(130, 210),
                           rng.randint(20, 80))
    return VoiceChoice(engine, voice)


def _read_wav_bytes(data: bytes) -> Tuple[np.ndarray, int]:
    audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    return audio, rate


def synth_espeak(text: str, choice: VoiceChoice, workdir: str) -> Tuple[np.ndarray, int]:
    path = os.path.join(workdir, "espeak.wav")
    subprocess.run(["espeak-ng", "-v", choice.voice, "-s", str(choice.speed_wpm), "-p", str(choice.pitch),
                    "-w", path, "--stdin"], input=text.encode("utf-8"), check=True, capture_output=True, timeout=120)
    with open(path, "rb") as f:
        return _read_wav_bytes(f.read())


def synth_flite(text: str, voice: str, workdir: str) -> Tuple[np.ndarray, int]:
    text_path, wav_path = os.path.join(workdir, "flite.txt"), os.path.join(workdir, "flite.wav")
    with open(text_path, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    subprocess.run(["flite", "-voice", voice, "-f", text_path, "-o", wav_path], check=True, capture_output=True,
                   timeout=300)
    with open(wav_path, "rb") as f:
        return _read_wav_bytes(f.read())


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def synth_festival_batch(texts: Sequence[str], voice: str, workdir: str) -> List[Optional[Tuple[np.ndarray, int]]]:
    """Synthesise many texts in one festival process (its start-up is slow); None where an utterance failed."""
    if not texts:
        return []
    script = [f"(voice_{voice})"]
    paths = []
    for i, text in enumerate(texts):
        path = os.path.join(workdir, f"fest_{i:05d}.wav")
        paths.append(path)
        script.append(f"(set! u (utt.synth (Utterance Text {_scheme_string(text)})))")
        script.append(f'(utt.save.wave u "{path}" \'riff)')
    script_path = os.path.join(workdir, "batch.scm")
    with open(script_path, "w", encoding="utf-8") as f:
        f.write("\n".join(script) + "\n")
    subprocess.run(["festival", "--batch", script_path], capture_output=True, timeout=60 + 30 * len(texts))
    results: List[Optional[Tuple[np.ndarray, int]]] = []
    for path in paths:
        if os.path.exists(path) and os.path.getsize(path) > 44:
            with open(path, "rb") as f:
                results.append(_read_wav_bytes(f.read()))
            os.remove(path)
        else:
            results.append(None)
    return results


def synthesize_many(texts: Sequence[str], choices: Sequence[VoiceChoice]) -> List[Optional[Tuple[np.ndarray, int]]]:
    """Clean synthetic audio (float32, native rate) for each (text, voice); festival items run in batches."""
    results: List[Optional[Tuple[np.ndarray, int]]] = [None] * len(texts)
    with tempfile.TemporaryDirectory(prefix="earshot_tts_") as workdir:
        festival_items: Dict[str, List[int]] = {}
        for i, (text, choice) in enumerate(zip(texts, choices)):
            try:
                if choice.engine == "espeak":
                    results[i] = synth_espeak(text, choice, workdir)
                elif choice.engine == "flite":
                    results[i] = synth_flite(text, choice.voice, workdir)
                elif choice.engine == "festival":
                    festival_items.setdefault(choice.voice, []).append(i)
                else:
                    raise ValueError(f"unknown engine {choice.engine}")
            except (subprocess.SubprocessError, RuntimeError, OSError):
                results[i] = None
        for voice, indices in sorted(festival_items.items()):
            batch = synth_festival_batch([texts[i] for i in indices], voice, workdir)
            for i, result in zip(indices, batch):
                results[i] = result
    return results
