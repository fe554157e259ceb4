"""Audio samples as the analysers take them: mono float64 at one rate (numpy only)."""
from __future__ import annotations

import numpy as np

from hellomeme_core.errors import HelloMemeError


def to_mono(waveform: np.ndarray) -> np.ndarray:
    """(samples,) float64 from (samples,), (channels, samples) or (batch, channels, samples): the channels'
    mean (the first item of a batch)."""
    x = np.asarray(waveform, dtype=np.float64)
    if x.ndim == 3:
        x = x[0]
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1:
        raise HelloMemeError(f"audio: expected samples shaped (samples,), (channels, samples) or "
                             f"(batch, channels, samples), got {tuple(np.shape(waveform))}")
    return x


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``samples`` at ``target`` Hz: band-limited (FFT) resampling, so nothing above the new Nyquist folds back."""
    if rate == target or len(samples) == 0:
        return np.asarray(samples, dtype=np.float64)
    n = max(1, int(round(len(samples) * target / rate)))
    spectrum = np.fft.rfft(samples)
    keep = n // 2 + 1
    spectrum = spectrum[:keep] if keep <= len(spectrum) else np.pad(spectrum, (0, keep - len(spectrum)))
    return np.fft.irfft(spectrum, n) * (n / len(samples))


def check_audio(samples: np.ndarray, rate: int) -> None:
    """Errors a person can act on for audio that cannot be analysed."""
    if rate <= 0:
        raise HelloMemeError(f"audio: the sample rate is {rate}; the audio is damaged or not audio")
    if len(samples) < rate * 0.1:
        raise HelloMemeError(f"audio: only {len(samples) / rate * 1000:.0f} ms of sound; give at least 0.1 s of speech")
    if not np.all(np.isfinite(samples)):
        raise HelloMemeError("audio: the samples hold NaN or infinite values; re-export the audio file")


def read_audio_file(path: str, timeout: float = 600.0) -> tuple[np.ndarray, int]:
    """The whole first audio track of a file (wav, mp3, flac, a video...): ((channels, samples) float32, rate)."""
    from pathlib import Path

    from hellomeme_core.driving_video import decode_audio_track
    from hellomeme_core.errors import MediaError

    if not Path(path).is_file():
        raise MediaError(f"audio: no file at {path}")
    return decode_audio_track(path, timeout=timeout)
