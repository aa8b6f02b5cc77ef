"""Audio augmentation: sox for resampling-quality effects (speed, pitch, reverb, filters), numpy for mixing.

The aim is to make clean synthetic speech look like what a browser microphone records: other levels, rooms,
band limits, background noise (coloured noise, mains hum, babble), a noise floor instead of digital silence,
and now and then clipping. Every choice comes from the caller's seeded RNGs, so a shard is reproducible.
"""
import random
import subprocess
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

SR = 16000


def sox_effects(audio: np.ndarray, rate: int, effects: Sequence[str]) -> np.ndarray:
    """Run audio through `sox` effects and return float32 mono at 16 kHz."""
    cmd = ["sox", "-V1", "-t", "f32", "-r", str(rate), "-c", "1", "-", "-t", "f32", "-r", str(SR), "-c", "1", "-"]
    cmd += list(effects)
    proc = subprocess.run(cmd, input=np.ascontiguousarray(audio, dtype=np.float32).tobytes(), capture_output=True,
                          timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"sox {' '.join(effects)}: {proc.stderr.decode(errors='replace').strip()}")
    return np.frombuffer(proc.stdout, dtype=np.float32).copy()


def to_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    if rate == SR:
        return audio.astype(np.float32)
    return sox_effects(audio, rate, [])


# ---------------------------------------------------------------- noise you make

def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n).astype(np.float32)


def coloured_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with power ~ 1/f^exponent (1 = pink, 2 = brown), shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(max(n, 2)))
    freqs = np.fft.rfftfreq(max(n, 2))
    freqs[0] = freqs[1]
    spectrum /= freqs ** (exponent / 2)
    noise = np.fft.irfft(spectrum, max(n, 2))[:n]
    return (noise / (np.std(noise) + 1e-9)).astype(np.float32)


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum (50 or 60 Hz) with a few decaying harmonics and a little jitter."""
    base = rng.choice([50.0, 60.0]) * rng.uniform(0.995, 1.005)
    t = np.arange(n) / SR
    out = np.zeros(n, np.float64)
    for k in range(1, rng.integers(2, 8)):
        out += rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 2 * np.pi))
    out += 0.05 * rng.standard_normal(n)
    return (out / (np.std(out) + 1e-9)).astype(np.float32)


def babble(n: int, pool: Sequence[np.ndarray], rng: np.random.Generator, talkers: int) -> Optional[np.ndarray]:
    """Several other utterances summed with random offsets: a crowd. None when the pool is empty."""
    if not pool:
        return None
    out = np.zeros(n, np.float32)
    for _ in range(talkers):
        src = pool[int(rng.integers(len(pool)))]
        if src.size == 0:
            continue
        reps = int(np.ceil(n / src.size)) + 1
        tiled = np.tile(src, reps)
        start = int(rng.integers(src.size))
        out += tiled[start:start + n] / (np.std(src) + 1e-9)
    return out / (np.std(out) + 1e-9)


def make_noise(kind: str, n: int, rng: np.random.Generator, pool: Sequence[np.ndarray] = ()) -> np.ndarray:
    if kind == "white":
        return white_noise(n, rng)
    if kind == "pink":
        return coloured_noise(n, rng, 1.0)
    if kind == "brown":
        return coloured_noise(n, rng, 2.0)
    if kind == "hum":
        return hum(n, rng)
    if kind == "babble":
        mixed = babble(n, pool, rng, int(rng.integers(4, 9)))
        return mixed if mixed is not None else coloured_noise(n, rng, 1.0)
    raise ValueError(f"unknown noise kind {kind}")


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def speech_rms(x: np.ndarray) -> float:
    """RMS over the louder frames only, so leading/trailing silence does not lower the SNR reference."""
    frames = x[: x.size // 400 * 400].reshape(-1, 400) if x.size >= 400 else x.reshape(1, -1)
    energies = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    loud = energies[energies >= 0.5 * np.percentile(energies, 90)]
    return float(np.sqrt(np.mean(loud ** 2)) + 1e-12) if loud.size else rms(x)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    scale = speech_rms(speech) / (rms(noise) * 10 ** (snr_db / 20))
    return (speech + scale * noise).astype(np.float32)


# ---------------------------------------------------------------- augmentation chains

@dataclass
class AugmentConfig:
    speed_range: Tuple[float, float] = (0.85, 1.15)
    p_speed: float = 0.6
    pitch_cents: float = 300.0
    p_pitch: float = 0.4
    p_reverb: float = 0.35
    p_telephone: float = 0.08
    p_eq: float = 0.45
    p_noise: float = 0.7
    snr_range: Tuple[float, float] = (0.0, 30.0)
    p_clip: float = 0.04
    lead_silence: Tuple[float, float] = (0.05, 0.6)
    noise_floor_db: Tuple[float, float] = (-75.0, -50.0)
    noise_kinds: Tuple[str, ...] = ("white", "pink", "pink", "brown", "hum", "babble", "babble")


TRAIN_CONFIG = AugmentConfig()
LIGHT_CONFIG = AugmentConfig(speed_range=(0.95, 1.05), p_speed=0.3, pitch_cents=100, p_pitch=0.2, p_reverb=0.15,
                             p_telephone=0.0, p_eq=0.2, p_noise=0.5, snr_range=(15.0, 30.0), p_clip=0.0)


@dataclass
class Augmentation:
    """What was done to one clip; `describe` is the short "aug" field of the shard record."""
    steps: List[str] = field(default_factory=list)

    def describe(self) -> str:
        return ",".join(self.steps) if self.steps else "clean"


def sox_chain(rng: random.Random, cfg: AugmentConfig, aug: Augmentation, speed: Optional[float] = None,
              speed_limit: float = 1.0) -> List[str]:
    """Pick the sox part of the chain. `speed_limit` narrows the speed range (espeak already varies its rate)."""
    effects: List[str] = []
    lo, hi = cfg.speed_range
    lo, hi = 1 - (1 - lo) * speed_limit, 1 + (hi - 1) * speed_limit
    if speed is None and rng.random() < cfg.p_speed:
        speed = rng.uniform(lo, hi)
    if speed is not None and abs(speed - 1.0) > 1e-3:
        if rng.random() < 0.5:
            effects += ["speed", f"{speed:.3f}"]  # resampling: changes rate and pitch together (like VTLP)
            aug.steps.append(f"speed{speed:.2f}")
        else:
            effects += ["tempo", "-s", f"{speed:.3f}"]
            aug.steps.append(f"tempo{speed:.2f}")
    if rng.random() < cfg.p_pitch:
        cents = rng.uniform(-cfg.pitch_cents, cfg.pitch_cents)
        effects += ["pitch", f"{cents:.0f}"]
        aug.steps.append(f"pitch{cents:+.0f}")
    if effects:
        effects += ["rate", str(SR)]  # speed and pitch change the internal rate; the filters below assume 16 kHz
    if rng.random() < cfg.p_eq:
        # A microphone's colouring: a high-pass for small capsules, a low-pass for cheap ones or codecs,
        # a random peak or dip in the mid range.
        hp = rng.choice([0, 60, 100, 150, 250])
        lp = rng.choice([0, 0, 4000, 5500, 7000])
        if hp:
            effects += ["highpass", str(hp)]
        if lp:
            effects += ["lowpass", str(lp)]
        freq, gain = rng.uniform(300, 4000), rng.uniform(-8, 8)
        effects += ["equalizer", f"{freq:.0f}", "1.0q", f"{gain:.1f}"]
        aug.steps.append(f"eq{hp}-{lp or 8000}")
    if rng.random() < cfg.p_reverb:
        reverberance, room = rng.randint(10, 90), rng.randint(10, 100)
        effects += ["reverb", str(reverberance), "50", str(room), "100", str(rng.randint(0, 40)), "0"]
        aug.steps.append(f"reverb{reverberance}/{room}")
    if rng.random() < cfg.p_telephone:
        effects += ["sinc", "300-3400", "rate", "8000"]
        aug.steps.append("telephone")
    return effects


def augment(audio: np.ndarray, rate: int, rng: random.Random, nrng: np.random.Generator, cfg: AugmentConfig,
            babble_pool: Sequence[np.ndarray] = (), speed: Optional[float] = None,
            speed_limit: float = 1.0, trim: bool = True) -> Tuple[np.ndarray, str]:
    """One augmented 16-kHz copy of `audio` and its description. `trim` cuts the TTS engine's own leading and
    trailing digital silence (synthetic audio only) before random padding is added."""
    aug = Augmentation()
    effects = sox_chain(rng, cfg, aug, speed, speed_limit)
    if rate != SR:
        effects = ["rate", str(SR)] + effects  # filters in the chain assume 16 kHz (flite kal is 8 kHz)
    if trim:
        effects = ["silence", "1", "0.02", "0.05%", "reverse", "silence", "1", "0.02", "0.05%", "reverse"] + effects
    out = sox_effects(audio, rate, effects)
    if out.size < SR // 10:
        out = to_16k(audio, rate)
    lead = int(rng.uniform(*cfg.lead_silence) * SR)
    tail = int(rng.uniform(*cfg.lead_silence) * SR)
    out = np.concatenate([np.zeros(lead, np.float32), out, np.zeros(tail, np.float32)])
    peak = float(np.max(np.abs(out))) + 1e-9
    out = out / peak * (10 ** (rng.uniform(-30, -1) / 20))  # level: quiet to near full scale
    if rng.random() < cfg.p_noise:
        kind = rng.choice(cfg.noise_kinds)
        lo, hi = cfg.snr_range
        if kind == "babble":
            lo = max(lo, 8.0)  # a crowd louder than this would be speech the target does not contain
        snr = rng.uniform(lo, hi)
        out = mix_at_snr(out, make_noise(kind, out.size, nrng, babble_pool), snr)
        aug.steps.append(f"{kind}@{snr:.0f}dB")
    floor_db = rng.uniform(*cfg.noise_floor_db)
    out = out + (10 ** (floor_db / 20)) * coloured_noise(out.size, nrng, rng.choice([0.0, 1.0]))
    if rng.random() < cfg.p_clip:
        level = rng.uniform(0.1, 0.5) * float(np.max(np.abs(out)))
        out = np.clip(out, -level, level) / level * float(np.max(np.abs(out))) * 0.5
        aug.steps.append("clip")
    out = np.clip(out, -1.0, 1.0).astype(np.float32)
    return out, aug.describe()


def is_mild(aug: str, min_snr_db: float) -> bool:
    """Whether an utterance's augmentation record (the comma-separated steps of a shard line's "aug") is mild:
    additive noise at min_snr_db or more (babble, which is speech itself, 10 dB more), no telephone band, no
    clipping. The curriculum stage of training (TrainConfig.min_snr_db) keeps only these."""
    for step in filter(None, aug.split(",")):
        if step in ("telephone", "clip"):
            return False
        if "@" in step and step.endswith("dB"):
            kind, level = step[:-2].split("@", 1)
            try:
                snr = float(level)
            except ValueError:
                return False
            if snr < min_snr_db + (10.0 if kind == "babble" else 0.0):
                return False
    return True
