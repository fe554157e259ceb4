"""Speech -> mouth coefficients on espeak-ng speech with known phoneme times (tests/audio/data)."""
from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from hellomeme_core.audio import phones as phone_rec
from hellomeme_core.audio.motion import PHONEMES, PROSODY, audio_to_face_motion, phone_timeline
from hellomeme_core.audio.visemes import MOUTH_COLUMNS, MOUTH_NAMES
from hellomeme_core.errors import HelloMemeError
from tests.audio.speech import peak_timing, speech, truth

FPS = 25.0  # fine enough to time the peaks; the 8 fps checks are separate
METHODS = (PHONEMES, PROSODY)
TRANSCRIPT = "phonemes, transcript"  # phonemes with the fixture's text as the transcript


@cache
def _motion(name: str, method: str, fps: float = FPS):
    """(motion, info), computed once per case: word recognition takes about a second per fixture."""
    samples, rate = speech(name)
    if method == TRANSCRIPT:
        return audio_to_face_motion(samples, rate, fps, PHONEMES, transcript=truth()[name]["text"])
    return audio_to_face_motion(samples, rate, fps, method)


def _closures(name: str, method: str, fps: float = FPS) -> list[float]:
    """Highest mouthClose in each /m b p/ of the ground truth (its closure from 60 ms before the reported
    start; at low fps widened by half a frame each side, so a frame falls in it)."""
    motion, _ = _motion(name, method, fps)
    close, t = motion.coefficient("mouthClose"), np.arange(len(motion)) / fps
    half = 0.5 / fps if fps < 20 else 0.0
    return [float(close[(t >= a - 0.06 - half) & (t <= max(b, a + 0.02) + half)].max())
            for a, b in truth()[name]["bilabial_closures"]]


@pytest.mark.parametrize("method", METHODS + (TRANSCRIPT,))
@pytest.mark.parametrize("name", ["en_words", "en_bilabials", "de_sentence"])
def test_mouth_open_peaks_align_with_vowels(name, method):
    if method == TRANSCRIPT and not name.startswith("en"):
        pytest.skip("the transcript is English only (German words are not in the en-US dictionary)")
    motion, info = _motion(name, method)
    assert info.method == (PHONEMES if method == TRANSCRIPT else method) and len(motion) == round(truth()[name]["duration"] * FPS)
    errors, recall = peak_timing(motion.coefficient("jawOpen"), FPS, truth()[name]["vowel_centres"])
    print(f"{name} {info.label}: {len(errors)} peaks, timing error mean {np.abs(errors).mean():.0f} ms, max "
          f"{np.abs(errors).max():.0f} ms, signed mean {errors.mean():+.0f} ms; vowels with a peak {recall:.0%}")
    assert len(errors) >= 4
    assert np.abs(errors).mean() <= 80.0
    assert np.abs(errors).max() <= 200.0
    assert recall >= 0.5


@pytest.mark.parametrize("method", METHODS)
def test_silence_keeps_the_mouth_closed(method):
    record = truth()["en_words"]
    motion, _ = _motion("en_words", method)
    t = np.arange(len(motion)) / FPS
    silent = (t < record["speech_start"] - 0.05) | (t > record["speech_end"] + 0.15)
    assert silent.sum() >= 8
    mouth = motion.expression[:, MOUTH_COLUMNS]
    # Neutral: jaw shut, lips together, no shape. The press of the final /m/ of "Tom" (aligned words find it)
    # fades over about 200 ms (a /m b p/ dominates its neighbours, silence included): all at rest from 250 ms on.
    lips = [MOUTH_NAMES.index(n) for n in MOUTH_NAMES if n.startswith(("mouthClose", "mouthPress", "mouthRoll"))]
    shape = np.delete(mouth, lips, axis=1)
    assert shape[silent].max() <= 0.03 and mouth[silent, :][:, lips].max() <= 0.12
    assert mouth[t > record["speech_end"] + 0.25].max() <= 0.03
    assert motion.coefficient("jawOpen")[~silent].max() >= 0.3  # and it does open for the speech
    rate = 16000
    quiet, _ = audio_to_face_motion(np.zeros(rate * 2), rate, 8.0, method)
    assert len(quiet) == 16 and not quiet.expression.any()


@pytest.mark.parametrize("method", METHODS + (TRANSCRIPT,))
def test_m_b_p_close_the_lips(method):
    record = truth()["en_bilabials"]
    motion, info = _motion("en_bilabials", method)
    jaw, close = motion.coefficient("jawOpen"), motion.coefficient("mouthClose")
    t = np.arange(len(motion)) / FPS
    vowel_open = np.median([jaw[np.abs(t - c) <= 0.06].max() for c in record["vowel_centres"]])
    # The lips meet during the closure of /p b/ (espeak puts it just before the burst it reports) and the murmur of /m/.
    at = [jaw[(t >= a - 0.06) & (t <= max(b, a + 0.02))].min() for a, b in record["bilabial_closures"]]
    closing = [close[(t >= a - 0.06) & (t <= max(b, a + 0.02))].max() for a, b in record["bilabial_closures"]]
    print(f"{info.label}: jawOpen at /m b p/ {[round(float(x), 2) for x in at]} vs {vowel_open:.2f} at vowels; "
          f"mouthClose {[round(float(x), 2) for x in closing]}")
    assert len(at) == 10
    assert np.mean(at) <= 0.35 * vowel_open
    assert max(at) <= 0.7 * vowel_open
    # The phones of aligned words are the dictionary's, so every /m b p/ of a word closes the lips. Measured:
    # 9 of 10 with the transcript ("mama papa baby bob pop"), 7 of 10 with the recognised words ("mama ah ah
    # you be bob bob"); 2 of 10 before, with allphone decoding alone.
    if method == TRANSCRIPT:
        assert info.phone_source == phone_rec.TRANSCRIPT_ALIGNED and sum(c >= 0.4 for c in closing) >= 8
    elif method == PHONEMES:
        assert info.phone_source == phone_rec.WORDS_ALIGNED and sum(c >= 0.4 for c in closing) >= 5


@pytest.mark.parametrize("method", (PHONEMES, TRANSCRIPT))
def test_lips_close_only_at_m_b_p(method):
    """No closure where the speech has no /m b p/: en_words has one (the /m/ of "Tom"), and the lips press there only."""
    record = truth()["en_words"]
    motion, info = _motion("en_words", method)
    close, t = motion.coefficient("mouthClose"), np.arange(len(motion)) / FPS
    (a, b), = record["bilabial_closures"]
    near = (t >= a - 0.12) & (t <= b + 0.06)
    print(f"{info.label}: mouthClose max {close[near].max():.2f} at the /m/, {close[~near].max():.2f} elsewhere")
    assert close[near].max() >= 0.4 and close[~near].max() < 0.4


def test_closures_show_at_8_fps():
    """A /p/ lasts 40-100 ms, less than a frame at 8 fps: it is widened to a frame, so the lips meet on screen."""
    motion, _ = _motion("en_bilabials", TRANSCRIPT, fps=8.0)
    assert motion.fps == 8.0 and len(motion) == round(truth()["en_bilabials"]["duration"] * 8)
    closing = _closures("en_bilabials", TRANSCRIPT, fps=8.0)
    print("8 fps mouthClose at /m b p/:", [round(c, 2) for c in closing])
    assert sum(c >= 0.4 for c in closing) >= 8  # measured 10 of 10


def test_strength_and_auto():
    samples, rate = speech("en_words")
    base, info = audio_to_face_motion(samples, rate, 8.0, "auto")
    assert info.method == PHONEMES and "auto" in info.reason and info.phone_source == phone_rec.WORDS_ALIGNED
    half, _ = audio_to_face_motion(samples, rate, 8.0, PHONEMES, strength=0.5)
    np.testing.assert_allclose(half.expression, base.expression * 0.5, atol=1e-6)
    assert base.extras["mouth_from_audio"] and base.extras["audio_method"] == "phonemes (words aligned)"
    assert "phonemes (words aligned)" in info.summary()
    # Noise is no speech: auto turns to loudness+formants.
    noise = np.random.default_rng(0).normal(0, 0.3, rate * 2)
    _, info = audio_to_face_motion(noise, rate, 8.0, "auto")
    print("noise:", info.reason)
    with pytest.raises(HelloMemeError, match="method"):
        audio_to_face_motion(samples, rate, 8.0, "whisper")
    with pytest.raises(HelloMemeError, match="0.1 s"):
        audio_to_face_motion(samples[:100], rate, 8.0)


def test_transcript_words_and_missing_ones():
    decoder = phone_rec.word_decoder()
    words = phone_rec.transcript_words(decoder, "Mama, papa \u2014 baby! Bob\u2019s pop-up; X-ray.")
    assert words == ["mama", "papa", "baby", "bob's", "pop", "up", "x-ray"]
    with pytest.raises(HelloMemeError, match=r"2 word\(s\) .*'zorblaxx', '42'.*numbers as words"):
        phone_rec.transcript_words(decoder, "Hello zorblaxx, 42 times")
    samples, rate = speech("en_words")
    with pytest.raises(HelloMemeError, match="'café'"):
        audio_to_face_motion(samples, rate, 8.0, PHONEMES, transcript="hello café")
    # loudness+formants does not read it (and says so), so a bad word there is no error.
    _, info = audio_to_face_motion(samples, rate, 8.0, PROSODY, transcript="hello café")
    assert "transcript unused" in info.summary()


def test_fallbacks_are_named():
    """A transcript that is not what is said: the recognised words are aligned instead; noise: allphone."""
    samples, rate = speech("en_bilabials")
    timeline = phone_timeline(samples, rate, "hello i saw a cat go far away tom")
    print(timeline.source, "|", timeline.note)
    assert timeline.source == phone_rec.WORDS_ALIGNED and "the transcript 'hello i saw" in timeline.note
    assert timeline.coverage >= 0.5 and timeline.phones[0].start == 0.0
    ends = [p.end for p in timeline.phones]
    assert ends == sorted(ends) and abs(ends[-1] - len(samples) / rate) <= 0.02  # in time order, covering it
    noise = np.random.default_rng(0).normal(0, 0.3, rate * 2)
    _, info = audio_to_face_motion(noise, rate, 8.0, PHONEMES)
    assert info.phone_source == phone_rec.ALLPHONE and info.summary().startswith("16 frames (2.00 s) from audio by 'phonemes (allphone)'")
