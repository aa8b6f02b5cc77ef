"""Whisper-compatible log-mel features, computed exactly as the engine's C++ front end does.

Facts (Whisper's published front end): centred STFT with reflect padding of n_fft/2, periodic Hann window, hop 160,
power spectrum, last frame dropped, Slaney-scale mel filters with Slaney area normalisation (librosa's defaults),
log10 floored at 1e-10, clamped to (max - 8), then (x + 4) / 4.
"""
from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
CHUNK_SAMPLES = 30 * SAMPLE_RATE


def hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_band_points(n_mels: int = 80, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The n_mels + 2 frequencies (Hz) that bound the Slaney filters: filter i rises from point i, peaks at i + 1 (its
    centre) and falls to i + 2."""
    return mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2))


@lru_cache(maxsize=None)
def mel_filters(n_mels: int = 80, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """Slaney mel filter bank [n_mels, n_fft//2 + 1], float32 (built in float64)."""
    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    mel_points = mel_band_points(n_mels, sample_rate)
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]
    return weights.astype(np.float32)


@lru_cache(maxsize=None)
def _hann(n_fft: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def log_mel_spectrogram(audio: np.ndarray, n_mels: int = 80, pad_to_samples: int = 0) -> np.ndarray:
    """Log-mel features [n_mels, n_frames] of 16-kHz mono float audio; n_frames = len(padded audio) // 160.

    pad_to_samples zero-pads the audio at the end first (Whisper checkpoints: 480000, one 30-s window).
    Audio shorter than n_fft/2 + 1 samples is zero-padded to that length so reflect padding is defined.
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0:
        raise ValueError("no audio samples")
    if pad_to_samples > audio.size:
        audio = np.concatenate([audio, np.zeros(pad_to_samples - audio.size, np.float32)])
    half = N_FFT // 2
    if audio.size < half + 1:
        audio = np.concatenate([audio, np.zeros(half + 1 - audio.size, np.float32)])
    n_frames = audio.size // HOP_LENGTH
    padded = np.pad(audio, (half, half), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_frames]
    spectrum = np.fft.rfft(frames * _hann(N_FFT), axis=-1)
    power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
    mel = mel_filters(n_mels) @ power.T
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)
