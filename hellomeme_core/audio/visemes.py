"""Phones -> visemes -> ARKit mouth coefficient targets.

The viseme set is the 15 of the MPEG-4 / Oculus lip-sync convention (sil, PP, FF, TH, DD, kk, CH, SS, nn,
RR, aa, E, I, O, U). Each viseme's target sets only mouth and jaw coefficients (``MOUTH_NAMES``); every
other coefficient stays with the pose motion (see ``combine``). Values are hand-set to read clearly on
HelloMeme's ARKit branch: vowels open the jaw (aa most), rounded vowels funnel and pucker, spread vowels
smile and stretch, /m b p/ close and press the lips with the jaw nearly shut.
"""
from __future__ import annotations

import numpy as np

from hellomeme_core.face.arkit import ARKIT_NAMES

# The coefficients an audio-made motion drives: the jaw and the lips (not the eyes, brows, cheeks, nose).
MOUTH_NAMES: tuple[str, ...] = tuple(
    n for n in ARKIT_NAMES if n.startswith(("jaw", "mouth")))
MOUTH_COLUMNS = np.array([ARKIT_NAMES.index(n) for n in MOUTH_NAMES])

_BOTH = ("Left", "Right")


def _target(**values: float) -> dict[str, float]:
    """A viseme target; a name without Left/Right sets both sides (``mouthSmile=0.3``)."""
    out: dict[str, float] = {}
    for name, value in values.items():
        if name in ARKIT_NAMES:
            out[name] = value
        else:
            for side in _BOTH:
                if name + side not in ARKIT_NAMES:
                    raise KeyError(name)
                out[name + side] = value
    return out


VISEME_TARGETS: dict[str, dict[str, float]] = {
    "sil": {},  # neutral: lips together, jaw closed (all zeros)
    "PP": _target(jawOpen=0.04, mouthClose=0.75, mouthPress=0.5, mouthRollLower=0.2, mouthRollUpper=0.15),
    "FF": _target(jawOpen=0.1, mouthRollLower=0.55, mouthUpperUp=0.25, mouthClose=0.1),
    "TH": _target(jawOpen=0.18, mouthLowerDown=0.15, mouthUpperUp=0.1),
    "DD": _target(jawOpen=0.18, mouthLowerDown=0.1, mouthStretch=0.1),
    "kk": _target(jawOpen=0.25, mouthLowerDown=0.1),
    "CH": _target(jawOpen=0.15, mouthFunnel=0.45, mouthPucker=0.25, mouthUpperUp=0.2),
    "SS": _target(jawOpen=0.08, mouthStretch=0.3, mouthSmile=0.15, mouthUpperUp=0.1),
    "nn": _target(jawOpen=0.15, mouthLowerDown=0.05),
    "RR": _target(jawOpen=0.15, mouthPucker=0.35, mouthFunnel=0.25),
    "aa": _target(jawOpen=0.7, mouthLowerDown=0.3, mouthUpperUp=0.1),
    "E": _target(jawOpen=0.45, mouthStretch=0.3, mouthSmile=0.15, mouthLowerDown=0.2),
    "I": _target(jawOpen=0.25, mouthSmile=0.35, mouthStretch=0.3, mouthUpperUp=0.1),
    "O": _target(jawOpen=0.5, mouthFunnel=0.55, mouthPucker=0.25),
    "U": _target(jawOpen=0.2, mouthPucker=0.7, mouthFunnel=0.4),
}
VOWEL_VISEMES = ("aa", "E", "I", "O", "U")

# ARPAbet (pocketsphinx's en-us phone set) -> visemes; a diphthong is two visemes, each for a share of it.
PHONE_VISEMES: dict[str, tuple[tuple[str, float], ...]] = {
    **{p: (("PP", 1.0),) for p in ("M", "B", "P")},
    **{p: (("FF", 1.0),) for p in ("F", "V")},
    **{p: (("TH", 1.0),) for p in ("TH", "DH")},
    **{p: (("DD", 1.0),) for p in ("T", "D")},
    **{p: (("kk", 1.0),) for p in ("K", "G", "NG", "HH")},
    **{p: (("CH", 1.0),) for p in ("CH", "JH", "SH", "ZH")},
    **{p: (("SS", 1.0),) for p in ("S", "Z")},
    **{p: (("nn", 1.0),) for p in ("N", "L")},
    **{p: (("RR", 1.0),) for p in ("R", "ER")},
    **{p: (("aa", 1.0),) for p in ("AA", "AE", "AH")},
    "EH": (("E", 1.0),), "Y": (("I", 1.0),), "IH": (("I", 1.0),), "IY": (("I", 1.0),),
    "AO": (("O", 1.0),), "UH": (("U", 1.0),), "UW": (("U", 1.0),), "W": (("U", 1.0),),
    "AY": (("aa", 0.6), ("I", 0.4)), "AW": (("aa", 0.6), ("U", 0.4)), "OY": (("O", 0.6), ("I", 0.4)),
    "EY": (("E", 0.6), ("I", 0.4)), "OW": (("O", 0.6), ("U", 0.4)),
    # Fillers: spoken noise is speech the phone set did not fit (a mid opening); other noise is silence.
    "+SPN+": (("E", 1.0),), "SIL": (("sil", 1.0),),
}

# How strongly a viseme holds its shape against its neighbours (coarticulation dominance): lips must
# close for /m b p/ and touch the teeth for /f v/ whatever surrounds them; tongue consonants hardly
# constrain the lips and jaw, so the vowels around them shape the mouth.
DOMINANCE: dict[str, float] = {"sil": 1.0, "PP": 4.0, "FF": 2.5, "CH": 1.5, "U": 1.2, "O": 1.2,
                               "aa": 1.0, "E": 1.0, "I": 1.0, "RR": 1.0, "SS": 0.8, "TH": 0.6,
                               "DD": 0.5, "kk": 0.4, "nn": 0.4}


def target_vector(viseme: str) -> np.ndarray:
    """(51,) coefficients of one viseme (zeros outside the mouth)."""
    out = np.zeros(len(ARKIT_NAMES), dtype=np.float64)
    for name, value in VISEME_TARGETS[viseme].items():
        out[ARKIT_NAMES.index(name)] = value
    return out


def phone_visemes(phone: str) -> tuple[tuple[str, float], ...]:
    """The visemes of an ARPAbet phone (stress digits ignored); unknown fillers (+NSN+, +BREATH+...) -> sil."""
    return PHONE_VISEMES.get(phone.rstrip("012").upper(), (("sil", 1.0),))
