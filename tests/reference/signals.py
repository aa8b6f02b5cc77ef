"""Deterministic speech-like test audio and a 16-bit PCM WAV writer/reader.

The signal has what a front end meets in speech: a voiced source with a gliding pitch and its harmonics shaped by
moving formants, syllable-rate amplitude envelopes with pauses, noisy fricative bursts, and a low noise floor.
"""
import wave

import numpy as np

SAMPLE_RATE = 16000


def speech_like(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(round(seconds * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    # Pitch: slow wander plus per-syllable glides (chirps).
    syllable_rate = 3.5 + rng.random()
    f0 = 140 + 35 * np.sin(2 * np.pi * 0.4 * t + rng.random() * 6) + 25 * np.sin(2 * np.pi * syllable_rate * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    # Formants drift from syllable to syllable.
    n_syll = int(np.ceil(seconds * syllable_rate)) + 2
    knots = np.arange(n_syll) / syllable_rate
    f1 = np.interp(t, knots, rng.uniform(300, 850, n_syll))
    f2 = np.interp(t, knots, rng.uniform(900, 2300, n_syll))
    f3 = np.interp(t, knots, rng.uniform(2400, 3200, n_syll))
    voiced = np.zeros(n)
    for k in range(1, 40):
        fk = k * f0
        gain = sum(np.exp(-0.5 * ((fk - fc) / bw) ** 2) for fc, bw in ((f1, 90), (f2, 120), (f3, 180)))
        gain = gain * (fk < 7600) / k ** 0.5
        voiced += gain * np.sin(k * phase)
    # Syllable envelope with pauses; fricatives fill some gaps.
    env = np.clip(np.sin(np.pi * syllable_rate * t + rng.random()), 0, None) ** 1.5
    pauses = np.interp(t, knots, (rng.random(n_syll) > 0.2).astype(float))
    env *= pauses
    noise = rng.standard_normal(n)
    hiss = np.diff(np.concatenate([[0.0], noise]))          # first difference: a high-pass tilt
    fric = np.clip(np.sin(np.pi * syllable_rate * t + 1.7), 0, None) ** 4 * (1 - pauses * 0.7)
    x = env * voiced / 3 + 0.25 * fric * hiss + 0.003 * noise
    lead = int(0.15 * SAMPLE_RATE)                            # a little silence first, as recordings have
    x[:lead] = 0.003 * noise[:lead]
    return (0.6 * x / np.max(np.abs(x))).astype(np.float32)


def write_wav_pcm16(path: str, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Writes mono 16-bit PCM; returns the samples exactly as a reader sees them (int16 / 32768)."""
    pcm = np.clip(np.round(np.asarray(audio, dtype=np.float64) * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return pcm.astype(np.float32) / 32768.0


def read_wav_pcm16(path: str) -> np.ndarray:
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected mono 16-bit PCM")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
