"""The speech fixtures (tests/audio/data, made by make_speech.py) and the measures the tests share."""
from __future__ import annotations

import json
import wave
from functools import cache
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"


@cache
def truth() -> dict:
    return json.loads((DATA / "ground_truth.json").read_text())


@cache
def speech(name: str) -> tuple[np.ndarray, int]:
    """(samples float64 in [-1, 1], rate) of one fixture."""
    with wave.open(str(DATA / truth()[name]["wav"])) as f:
        samples = np.frombuffer(f.readframes(f.getnframes()), np.int16) / 32768.0
        return samples, f.getframerate()


def jaw_peaks(jaw: np.ndarray, fps: float, floor: float = 0.1) -> np.ndarray:
    """Times (s) of the local maxima of jawOpen above ``floor`` (the mouth-open peaks)."""
    i = np.flatnonzero((jaw[1:-1] >= jaw[:-2]) & (jaw[1:-1] > jaw[2:]) & (jaw[1:-1] > floor)) + 1
    return i / fps


def peak_timing(jaw: np.ndarray, fps: float, vowel_centres: list[float]) -> tuple[np.ndarray, float]:
    """Signed error (ms) of each mouth-open peak to the nearest vowel centre, and the share of vowels with a
    peak within 100 ms (vowels run together merge into one opening, as a real mouth does)."""
    peaks = jaw_peaks(jaw, fps)
    centres = np.asarray(vowel_centres)
    errors = np.array([(p - centres[np.argmin(np.abs(centres - p))]) * 1000 for p in peaks])
    recall = float(np.mean([np.min(np.abs(peaks - c)) <= 0.1 for c in centres])) if len(peaks) else 0.0
    return errors, recall
