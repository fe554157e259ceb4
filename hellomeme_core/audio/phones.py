"""Phones with timestamps (en-US) by pocketsphinx 5, with the models its wheel ships (``model/en-us``): the
acoustic model ``en-us``, the word language model ``en-us.lm.bin``, the dictionary ``cmudict-en-us.dict``
and the phone language model ``en-us-phone.lm.bin``. No download, offline.

Three ways to a phone timeline (CMU/ARPAbet names: AA, AE, ... ZH, plus SIL and fillers such as +SPN+, +NSN+),
at pocketsphinx's 100 frames per second, as lip-sync tools do with pocketsphinx:

- ``align_words(recognise_words(...))``: words recognised with the word language model, then force-aligned
  (``Decoder.set_align_text``, a second pass with ``set_alignment``): the phones are the dictionary's
  pronunciations of those words, timed by the acoustics. A recognised word may be wrong, but its phones are
  whole words' phones (every /m b p/ of it), where phone-by-phone decoding drops short stops.
- ``align_words(transcript_words(text))``: the same alignment on words the user gives: the best timeline.
- ``recognise_phones``: ``allphone`` decoding, phone by phone with the phone language model: the fallback.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from hellomeme_core.audio.signal import check_audio, resample, to_mono
from hellomeme_core.errors import HelloMemeError

RATE = 16000  # the en-us acoustic model's sample rate
FRAMES_PER_SECOND = 100  # pocketsphinx's default frame rate (-frate)
SILENCE = "SIL"
INSTALL_HINT = ("pip install 'pocketsphinx>=5' (its wheel holds the en-US model), or choose the method "
                "'loudness+formants', which needs no speech model")
# Where a phone timeline came from (``AudioMotionInfo.phone_source``, ``extras["audio_method"]``).
WORDS_ALIGNED, TRANSCRIPT_ALIGNED, ALLPHONE = "words aligned", "transcript aligned", "allphone"
# Dither (int16 steps, seeded): digital silence (exact zeros, as synthetic speech and edited files have) gives
# the recogniser's features -inf log energies and makes alignment fail; noise this weak (-90 dB) changes nothing else.
_DITHER = 1.0
# Words of a transcript: letters and digits (any script, so 'café' is named whole when the dictionary lacks
# it), inner apostrophes and hyphens (don't, x-ray); anything else separates.
_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")


@dataclass(frozen=True)
class Phone:
    """One phone: ARPAbet name (or SIL / a +FILLER+), start and end in seconds."""

    name: str
    start: float
    end: float


def available() -> bool:
    """Whether pocketsphinx (with its model) can be imported."""
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        return False
    return True


def _model_dir() -> str:
    try:
        from pocketsphinx import get_model_path
    except ImportError:
        raise HelloMemeError(f"audio: the 'phonemes' method needs pocketsphinx, which is not installed: {INSTALL_HINT}") from None
    return os.path.join(get_model_path(), "en-us")


def _model_file(name: str) -> str:
    path = os.path.join(_model_dir(), name)
    if not os.path.exists(path):
        raise HelloMemeError(f"audio: pocketsphinx has no en-US model file {path}: {INSTALL_HINT}")
    return path


def _decoder():
    """An allphone decoder (phone language model)."""
    from pocketsphinx import Decoder

    # Wide beams: phone decoding of a few seconds is cheap, and narrow beams drop short phones (stops).
    # lw 2.0 weighs the phone language model lightly, so the acoustics decide (CMU's advice for allphone).
    return Decoder(hmm=_model_file("en-us"), allphone=_model_file("en-us-phone.lm.bin"), lm=None, dict=None,
                   beam=1e-20, pbeam=1e-20, lw=2.0, samprate=RATE, loglevel="FATAL")


def word_decoder():
    """A decoder with the en-US word language model and dictionary (recognition, then alignment)."""
    from pocketsphinx import Decoder

    # Batch CMN: the whole utterance is at hand, so its own mean normalises it (no warm-up on the first words).
    return Decoder(hmm=_model_file("en-us"), lm=_model_file("en-us.lm.bin"), dict=_model_file("cmudict-en-us.dict"),
                   cmn="batch", samprate=RATE, loglevel="FATAL")


def speech_pcm(waveform: np.ndarray, rate: int, dither: bool = True) -> np.ndarray | None:
    """``waveform`` as the recogniser takes it: int16 mono at 16 kHz, peak at 90%, ``dither``-ed (see
    ``_DITHER``); None when silent."""
    samples = to_mono(waveform)
    check_audio(samples, rate)
    samples = resample(samples, rate, RATE)
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak == 0.0:
        return None
    # Whatever the scale (float in [-1, 1] as ComfyUI's AUDIO, or int16 values), peak at 90% of int16:
    # quiet recordings decode as well as loud ones and nothing clips.
    scaled = samples * (0.9 * 32767.0 / peak)
    if dither:
        scaled = scaled + np.random.default_rng(0).normal(0.0, _DITHER, len(samples))
    return np.clip(np.round(scaled), -32768, 32767).astype(np.int16)


def _decode(decoder, pcm: np.ndarray) -> None:
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), full_utt=True)
    decoder.end_utt()


def _is_filler(word: str) -> bool:
    """<s>, </s>, <sil> and the noise words ([NOISE], [SPEECH]...): no speech of the text."""
    return word.startswith(("<", "[", "+"))


def _base_word(word: str) -> str:
    """A dictionary word without its alternate-pronunciation mark (``or(2)`` -> ``or``)."""
    return word.split("(", 1)[0]


def recognise_phones(waveform: np.ndarray, rate: int) -> list[Phone]:
    """The phones of ``waveform`` (any shape ``to_mono`` takes, any rate) by allphone decoding, in time order,
    covering it."""
    # Not dithered: allphone decodes zeros well and its phones swing with the dither's seed (measured on the
    # espeak fixtures); this keeps the fallback as it was.
    pcm = speech_pcm(waveform, rate, dither=False)
    if pcm is None:
        return [Phone(SILENCE, 0.0, len(to_mono(waveform)) / rate)]
    decoder = _decoder()
    _decode(decoder, pcm)
    step = 1.0 / FRAMES_PER_SECOND
    phones = [Phone(seg.word, seg.start_frame * step, (seg.end_frame + 1) * step) for seg in decoder.seg()]
    return phones or [Phone(SILENCE, 0.0, len(pcm) / RATE)]


def recognise_words(decoder, pcm: np.ndarray) -> list[str]:
    """The words pocketsphinx hears in ``pcm`` (``speech_pcm``) with its word language model (no fillers)."""
    _decode(decoder, pcm)
    segments = decoder.seg()
    return [_base_word(s.word) for s in segments or () if not _is_filler(s.word)]


def transcript_words(decoder, text: str) -> list[str]:
    """The dictionary words of a transcript (lower case; punctuation dropped, hyphenated words split unless the
    dictionary has them whole). Words the dictionary lacks are an error that names them."""
    words: list[str] = []
    for token in _WORD.findall(text.lower().replace("\u2019", "'").replace("\u2018", "'")):
        # "twenty-one" -> twenty one; a hyphenated word the dictionary has whole ("x-ray") stays whole.
        words.extend([token] if "-" not in token or decoder.lookup_word(token) else token.split("-"))
    missing = sorted({w for w in words if decoder.lookup_word(w) is None}, key=words.index)
    if missing:
        shown = ", ".join(repr(w) for w in missing[:12]) + (f" and {len(missing) - 12} more" if len(missing) > 12 else "")
        raise HelloMemeError(
            f"transcript: {len(missing)} word(s) are not in pocketsphinx's en-US dictionary: {shown}. Write them as "
            "they sound with common English words (numbers as words: 'twenty one'; a name 'Zorblax' as 'zor blacks'), "
            "or leave the transcript empty to recognise the words from the audio")
    return words


def align_words(decoder, pcm: np.ndarray, words: list[str]) -> list[Phone] | None:
    """The phones of ``words`` (dictionary words, spoken in ``pcm`` in this order) force-aligned to the audio,
    silences and noises between them included; None when they cannot be aligned (the speech does not fit)."""
    if not words:
        return None
    try:
        # Without the lattice pass: it can put a one-frame <s> before the first silence, which the phone pass
        # then cannot fit (three HMM states in one frame) and the whole alignment fails. The recognition before
        # keeps it (the setting is read when a search is made).
        decoder.config["bestpath"] = False
        decoder.set_align_text(" ".join(words))
        _decode(decoder, pcm)
        # The alignment search gives its best partial path when no path reaches the last word: check them all.
        aligned = [_base_word(s.word) for s in decoder.seg() or () if not _is_filler(s.word)]
        if aligned != words:
            return None
        decoder.set_alignment()  # second pass: phone and state durations inside each word
        _decode(decoder, pcm)
        alignment = decoder.get_alignment()
    except RuntimeError:  # pocketsphinx's way of saying the alignment failed
        return None
    if alignment is None:
        return None
    step = 1.0 / FRAMES_PER_SECOND
    phones = [Phone(p.name, p.start * step, (p.start + p.duration) * step) for p in alignment.phones()]
    return phones or None
