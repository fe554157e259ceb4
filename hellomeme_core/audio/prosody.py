"""The language-independent path: loudness and formants -> mouth coefficients (praat-parselmouth).

No speech model, so any language (or singing) works, with less detail than phones: the jaw follows the
loudness (louder = more open; silence and stop closures shut it) scaled by the first formant F1 (open
vowels have a high F1, nasals /m n/ and close vowels a low one); the second formant F2 tells rounded
vowels (low F2: /u o/ -> pucker, funnel) from spread ones (high F2: /i e/ -> smile, stretch). Formants
are only read where the voice is voiced (Praat's pitch track), since they mean nothing in noise.
"""
from __future__ import annotations

import numpy as np

from hellomeme_core.audio.signal import check_audio, to_mono
from hellomeme_core.errors import HelloMemeError
from hellomeme_core.face.arkit import ARKIT_NAMES

STEP = 0.01  # analysis step (s): 100 values per second, like the phone path
INSTALL_HINT = "pip install praat-parselmouth"
# Loudness range mapped to 0..1: from this many dB below the loud speech's level (its 95th percentile).
_DYNAMIC_RANGE_DB = 30.0
# F1 (Hz) from closed (nasals, /i u/) to open (/a/); F2 (Hz) below which a vowel rounds, above which it spreads.
_F1_CLOSED, _F1_OPEN = 300.0, 800.0
_F2_ROUND, _F2_SPREAD, _F2_SPAN = 1300.0, 1700.0, 500.0

_COL = {n: i for i, n in enumerate(ARKIT_NAMES)}


def _parselmouth():
    try:
        import parselmouth
    except ImportError:
        raise HelloMemeError(f"audio: the 'loudness+formants' method needs praat-parselmouth, which is not "
                             f"installed: {INSTALL_HINT}") from None
    return parselmouth


def zero_phase_smooth(x: np.ndarray, tau: float, step: float = STEP) -> np.ndarray:
    """A one-pole low-pass run forward then backward along axis 0: smooth, with no delay (peaks stay put)."""
    if tau <= 0:
        return x
    a = np.exp(-step / tau)
    y = np.array(x, dtype=np.float64)
    for i in range(1, len(y)):  # forward
        y[i] = a * y[i - 1] + (1 - a) * y[i]
    for i in range(len(y) - 2, -1, -1):  # backward: cancels the forward pass's delay
        y[i] = a * y[i + 1] + (1 - a) * y[i]
    return y


def acoustic_tracks(waveform: np.ndarray, rate: int) -> dict[str, np.ndarray]:
    """At ``times`` (every ``STEP`` s): ``level`` 0..1 (loudness), ``voiced`` bool, ``f1``/``f2`` Hz (nan unvoiced)."""
    parselmouth = _parselmouth()
    samples = to_mono(waveform)
    check_audio(samples, rate)
    duration = len(samples) / rate
    times = np.arange(int(np.ceil(duration / STEP))) * STEP
    peak = float(np.max(np.abs(samples)))
    if peak == 0.0:
        zeros = np.zeros(len(times))
        return {"times": times, "level": zeros, "voiced": zeros.astype(bool), "f1": zeros * np.nan, "f2": zeros * np.nan}
    sound = parselmouth.Sound(samples / peak * 0.9, sampling_frequency=float(rate))
    intensity = sound.to_intensity(minimum_pitch=75.0, time_step=STEP)
    db = np.interp(times, intensity.xs(), intensity.values[0], left=-100.0, right=-100.0)
    loud = np.percentile(db, 95)
    level = np.clip((db - (loud - _DYNAMIC_RANGE_DB)) / _DYNAMIC_RANGE_DB, 0.0, 1.0)
    pitch = sound.to_pitch(time_step=STEP)
    f0 = pitch.selected_array["frequency"]
    voiced = np.interp(times, pitch.xs(), (f0 > 0).astype(float), left=0.0, right=0.0) > 0.5
    formants = sound.to_formant_burg(time_step=STEP, max_number_of_formants=5, maximum_formant=5500.0)
    f1 = np.array([formants.get_value_at_time(1, t) for t in times])
    f2 = np.array([formants.get_value_at_time(2, t) for t in times])
    f1[~voiced] = np.nan
    f2[~voiced] = np.nan
    return {"times": times, "level": level, "voiced": voiced, "f1": f1, "f2": f2}


def mouth_from_acoustics(tracks: dict[str, np.ndarray], tau: float) -> np.ndarray:
    """(T, 51) coefficients at ``tracks['times']`` (zeros outside the mouth)."""
    level, voiced = tracks["level"], tracks["voiced"]
    f1 = np.nan_to_num(tracks["f1"], nan=_F1_CLOSED)
    f2 = tracks["f2"]
    open_f1 = np.clip((f1 - _F1_CLOSED) / (_F1_OPEN - _F1_CLOSED), 0.0, 1.0)
    # Squared loudness: consonants and nasals (10-20 dB under the vowels) open the jaw little, vowels fully.
    jaw = 0.85 * level ** 2 * np.where(voiced, 0.2 + 0.8 * open_f1, 0.4)
    has_f2 = voiced & np.isfinite(f2)
    f2v = np.where(has_f2, f2, (_F2_ROUND + _F2_SPREAD) / 2)
    rounded = np.clip((_F2_ROUND - f2v) / _F2_SPAN, 0.0, 1.0) * np.sqrt(level)
    spread = np.clip((f2v - _F2_SPREAD) / _F2_SPAN, 0.0, 1.0) * np.sqrt(level)
    out = np.zeros((len(level), len(ARKIT_NAMES)))
    out[:, _COL["jawOpen"]] = jaw
    out[:, _COL["mouthPucker"]] = 0.6 * rounded
    out[:, _COL["mouthFunnel"]] = 0.45 * rounded
    for side in ("Left", "Right"):
        out[:, _COL["mouthSmile" + side]] = 0.3 * spread
        out[:, _COL["mouthStretch" + side]] = 0.3 * spread
        out[:, _COL["mouthLowerDown" + side]] = 0.4 * jaw
        out[:, _COL["mouthUpperUp" + side]] = 0.1 * jaw
    # Two passes smooth twice: half the time constant gives about the phone path's blending.
    return zero_phase_smooth(out, tau / 2)
