"""Speech -> FACE_MOTION whose mouth coefficients follow it at a video frame rate.

An audio-made motion is a valid ``FaceMotion`` of ``round(duration x fps)`` frames, but only its mouth and
jaw coefficients (``visemes.MOUTH_NAMES``) and ``fps`` mean anything: the pose is frontal and still (zeros),
other coefficients are 0, ``landmarks`` are empty (F, 0, 2), ``face_boxes``/``crop_box`` are zeros and
every frame counts as a face found. Combine it with a pose motion (``combine.combine_motions``), which
brings pose, eyes, landmarks and crop. ``extras`` says what it is: ``mouth_from_audio`` True,
``audio_method`` (the method used; for phonemes with the phone source: ``phonemes (words aligned)``,
``phonemes (transcript aligned)`` or ``phonemes (allphone)``), ``audio_seconds``. Frame k shows the mouth at
time k / fps.

The phone timeline (``phone_timeline``) is the first that works of: the user's transcript force-aligned to
the audio; the words pocketsphinx recognises, force-aligned (dictionary phones, so every /m b p/ of a word);
allphone decoding. Each next one is the fallback when the one before cannot be aligned or its speech phones
cover under ``_MIN_COVERAGE`` of the loud frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hellomeme_core.audio import phones as phone_rec
from hellomeme_core.audio.coarticulation import VisemeSegment, blend, smoothing_tau
from hellomeme_core.audio.signal import check_audio, to_mono
from hellomeme_core.audio.visemes import MOUTH_COLUMNS, phone_visemes
from hellomeme_core.errors import HelloMemeError
from hellomeme_core.face.arkit import ARKIT_NAMES
from hellomeme_core.face.types import FaceMotion

PHONEMES, PROSODY, AUTO = "phonemes", "loudness+formants", "auto"
METHODS = (AUTO, PHONEMES, PROSODY)
# auto keeps the phones when they cover at least this share of the loud (speech) frames.
_MIN_COVERAGE = 0.5
_STEP = 0.01  # analysis step (s)
# The coefficients that open the mouth, held shut by the loudness gate in silence and stop closures.
_OPENING = [ARKIT_NAMES.index(n) for n in ("jawOpen", "mouthLowerDownLeft", "mouthLowerDownRight",
                                          "mouthUpperUpLeft", "mouthUpperUpRight")]


@dataclass(frozen=True)
class AudioMotionInfo:
    method: str  # the method used (phonemes or loudness+formants)
    reason: str  # why (auto's choice, or "chosen")
    seconds: float
    frames: int
    phone_source: str = ""  # with phonemes: words aligned, transcript aligned or allphone
    phone_note: str = ""  # the aligned words, and why an earlier phone source was not used

    @property
    def label(self) -> str:
        """The method with its phone source: ``phonemes (words aligned)``, ``loudness+formants``."""
        return f"{self.method} ({self.phone_source})" if self.method == PHONEMES and self.phone_source else self.method

    def summary(self) -> str:
        note = f"; {self.phone_note}" if self.phone_note else ""
        return f"{self.frames} frames ({self.seconds:.2f} s) from audio by '{self.label}': {self.reason}{note}"


@dataclass(frozen=True)
class PhoneTimeline:
    phones: list[phone_rec.Phone]
    source: str  # phone_rec.TRANSCRIPT_ALIGNED, WORDS_ALIGNED or ALLPHONE
    coverage: float  # share of the loud frames inside speech phones
    note: str  # the aligned words, and why an earlier source was not used


def frame_count(seconds: float, fps: float) -> int:
    """Frames of a motion ``seconds`` long at ``fps`` (at least one)."""
    return max(1, int(round(seconds * fps)))


def loudness_level(samples: np.ndarray, rate: int, step: float = 0.01) -> np.ndarray:
    """0..1 per ``step``: RMS in dB over 25 ms windows, 30 dB below the loud speech (95th pct) -> 0."""
    hop, win = max(1, int(rate * step)), max(1, int(rate * 0.025))
    count = int(np.ceil(len(samples) / hop))
    padded = np.pad(samples, (win // 2, win))
    rms = np.array([np.sqrt(np.mean(padded[i * hop:i * hop + win] ** 2)) for i in range(count)])
    db = 20 * np.log10(rms + 1e-10)
    loud = np.percentile(db, 95)
    return np.clip((db - (loud - 30.0)) / 30.0, 0.0, 1.0)


def _loudness_gate(samples: np.ndarray, rate: int, times: np.ndarray, tau: float) -> np.ndarray:
    """0..1 at ``times``: 1 in voiced speech, falling to 0 in silence and stop closures. The recogniser
    often misses short stops (/p b t k/) inside words; the silence of their closure still shuts the jaw."""
    from hellomeme_core.audio.prosody import zero_phase_smooth

    level = loudness_level(samples, rate, _STEP)
    gate = zero_phase_smooth(np.clip(level / 0.6, 0.0, 1.0), tau / 2, _STEP)
    return np.interp(times, np.arange(len(gate)) * _STEP, gate)


def viseme_segments(phones: list[phone_rec.Phone]) -> list[VisemeSegment]:
    """Phones -> viseme segments (a diphthong splits into its two visemes)."""
    out = []
    for phone in phones:
        start = phone.start
        for viseme, share in phone_visemes(phone.name):
            end = start + share * (phone.end - phone.start)
            out.append(VisemeSegment(viseme, start, end))
            start = end
    return out


def _speech_coverage(phones: list[phone_rec.Phone], level: np.ndarray, step: float = 0.01) -> float:
    """Share of the loud frames (level > 0.5) that fall in a recognised speech phone (not SIL or a filler)."""
    loud = np.flatnonzero(level > 0.5)
    if len(loud) == 0:
        return 1.0
    covered = np.zeros(len(level), dtype=bool)
    for p in phones:
        if p.name != phone_rec.SILENCE and not p.name.startswith("+"):
            covered[int(p.start / step):int(np.ceil(p.end / step))] = True
    return float(covered[loud].mean())


def _quoted(words: list[str], most: int = 12) -> str:
    return "'" + " ".join(words[:most]) + (" ..." if len(words) > most else "") + "'"


def phone_timeline(samples: np.ndarray, rate: int, transcript: str = "",
                   level: np.ndarray | None = None) -> PhoneTimeline:
    """The phones of mono ``samples``: the transcript's words aligned, else the recognised words aligned, else
    allphone (see the module notes). Transcript words missing from the dictionary are an error naming them."""
    level = loudness_level(samples, rate) if level is None else level
    pcm = phone_rec.speech_pcm(samples, rate)
    if pcm is None:
        silence = [phone_rec.Phone(phone_rec.SILENCE, 0.0, len(samples) / rate)]
        return PhoneTimeline(silence, phone_rec.ALLPHONE, _speech_coverage(silence, level), "silence")
    decoder = phone_rec.word_decoder()
    tries: list[tuple[str, str, list[str] | None]] = []
    if transcript.strip():
        tries.append((phone_rec.TRANSCRIPT_ALIGNED, "the transcript", phone_rec.transcript_words(decoder, transcript)))
    tries.append((phone_rec.WORDS_ALIGNED, "the recognised words", None))  # None: recognise them when it comes to it
    notes = []
    for source, what, words in tries:
        if words is None:
            if source != tries[0][0]:
                # An alignment replaces the decoder's language-model search: recognise with a fresh decoder.
                decoder = phone_rec.word_decoder()
            words = phone_rec.recognise_words(decoder, pcm)
            if not words:
                notes.append("no words recognised")
                continue
        phones = phone_rec.align_words(decoder, pcm, words)
        if phones is None:
            notes.append(f"{what} {_quoted(words)} did not align with the audio"
                         + (" (does it match the speech?)" if source == phone_rec.TRANSCRIPT_ALIGNED else ""))
            continue
        coverage = _speech_coverage(phones, level)
        if coverage < _MIN_COVERAGE:
            verb = "covers" if source == phone_rec.TRANSCRIPT_ALIGNED else "cover"
            notes.append(f"{what} {_quoted(words)} {verb} only {coverage:.0%} of the speech")
            continue
        return PhoneTimeline(phones, source, coverage, "; ".join([f"words {_quoted(words)}"] + notes))
    phones = phone_rec.recognise_phones(samples, rate)
    return PhoneTimeline(phones, phone_rec.ALLPHONE, _speech_coverage(phones, level), "; ".join(notes))


def audio_to_face_motion(waveform: np.ndarray, rate: int, fps: float = 8.0, method: str = AUTO,
                         strength: float = 1.0, smoothing: float = 0.5,
                         transcript: str = "") -> tuple[FaceMotion, AudioMotionInfo]:
    """An audio-made FaceMotion (see the module notes) and what was done.

    ``strength`` scales the mouth coefficients (1 = as designed); ``smoothing`` 0..1 sets coarticulation
    (15 to 120 ms of blending between neighbouring mouth shapes); ``transcript`` (optional: the English words
    spoken) is aligned to the audio directly, the most exact timeline (read by phonemes and auto)."""
    if method not in METHODS:
        raise HelloMemeError(f"audio: method {method!r} is not one of {', '.join(METHODS)}")
    if not fps > 0:
        raise HelloMemeError(f"audio: fps must be above 0, got {fps}; use the video's frame rate (8 is the official one)")
    samples = to_mono(waveform)
    check_audio(samples, rate)
    seconds = len(samples) / rate
    frames = frame_count(seconds, fps)
    times = np.arange(frames) / fps
    tau = smoothing_tau(smoothing)
    timeline, reason = None, "chosen"
    if method in (AUTO, PHONEMES):
        if method == AUTO and not phone_rec.available():
            method, reason = PROSODY, "auto: pocketsphinx is not installed"
        else:
            timeline = phone_timeline(samples, rate, transcript)
            if method == AUTO:
                coverage = timeline.coverage
                if coverage >= _MIN_COVERAGE:
                    method, reason = PHONEMES, (f"auto: en-US phones cover {coverage:.0%} of the speech "
                                                "(use 'loudness+formants' for other languages)")
                else:
                    method, reason = PROSODY, (f"auto: en-US phones cover only {coverage:.0%} of the sound "
                                               "(not English speech?), so loudness and formants")
    if method == PHONEMES:
        coefficients = blend(viseme_segments(timeline.phones), times, tau, frame_period=1.0 / fps)
        coefficients[:, _OPENING] *= _loudness_gate(samples, rate, times, tau)[:, None]
    else:
        from hellomeme_core.audio import prosody

        tracks = prosody.acoustic_tracks(samples, rate)
        dense = prosody.mouth_from_acoustics(tracks, tau)
        coefficients = np.stack([np.interp(times, tracks["times"], dense[:, c]) for c in range(dense.shape[1])], 1)
    expression = np.zeros((frames, 51), dtype=np.float32)
    expression[:, MOUTH_COLUMNS] = np.clip(coefficients[:, MOUTH_COLUMNS] * strength, 0.0, 1.0)
    if method == PHONEMES:
        info = AudioMotionInfo(method, reason, seconds, frames, timeline.source, timeline.note)
    else:
        unused = "transcript unused (only the phonemes method reads it)" if transcript.strip() else ""
        info = AudioMotionInfo(method, reason, seconds, frames, phone_note=unused)
    motion = FaceMotion(
        angles=np.zeros((frames, 3)), translation=np.zeros((frames, 3)), expression=expression,
        face_found=np.ones(frames, dtype=bool), landmarks=np.zeros((frames, 0, 2)), face_boxes=np.zeros((frames, 4)),
        crop_box=np.zeros(4), frame_indices=np.arange(frames), fps=float(fps), backend="audio", smoothing=float(smoothing),
        source_frames=frames,
        extras={"mouth_from_audio": True, "audio_method": info.label, "audio_seconds": seconds},
    )
    return motion, info
