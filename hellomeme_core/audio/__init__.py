"""Talking from audio: speech -> mouth ARKit coefficients (a FACE_MOTION), idle head motion, and the
combination of a pose motion with an audio-made mouth motion.

Two ways from speech to visemes (``motion.METHODS``):

- ``phonemes`` (en-US): pocketsphinx 5 phones with timestamps (``phones``: recognised words or the user's
  transcript force-aligned to the audio, allphone decoding as the fallback), mapped to visemes and their
  mouth targets (``visemes``), blended by dominance functions (``coarticulation``).
- ``loudness+formants`` (any language): praat-parselmouth's intensity and first two formants mapped to jaw
  opening, rounding and spreading (``prosody``).

``motion.audio_to_face_motion`` runs either (``auto`` picks, see ``motion.choose_method``), ``idle`` makes a
seeded idle head motion with blinks, and ``combine`` puts pose and eyes of one motion with the mouth of
another. Nothing here imports ComfyUI.
"""
from __future__ import annotations
