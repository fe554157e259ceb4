"""Makes the speech fixtures of tests/audio/data with espeak-ng, and their ground truth.

    .venv/bin/python -m tests.audio.make_speech          # needs libespeak-ng (Debian: apt install espeak-ng)

Each fixture is what this command line would speak, with phoneme events on:

    espeak-ng -v <voice> -s <speed> -w out.wav "<text>"

but synthesised through libespeak-ng's C API (ctypes, AUDIO_OUTPUT_SYNCHRONOUS, phoneme events), because the
command line has no way to print phoneme times (``--pho`` needs an mbrola voice). The synthesiser itself
reports, for every phoneme, the audio time (ms) at which it starts: that is the ground truth, independent of
the recogniser under test. Each vowel's centre is the middle of [its start, the next phoneme's start].
The 22050 Hz output is resampled to 16 kHz mono int16 and padded with ``LEAD`` s of silence before and
``TAIL`` s after (the times in the JSON include the lead). Phoneme names are espeak's mnemonics (``-x``).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import wave
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"
RATE = 16000
LEAD, TAIL = 0.5, 0.3

# name -> (voice, speed in words per minute, text)
FIXTURES = {
    "en_words": ("en-us", 130, "Hello, I saw a cat. Go far away, Tom."),
    "en_bilabials": ("en-us", 120, "Mama, papa, baby. Bob, pop."),
    "de_sentence": ("de", 130, "Guten Morgen, wie geht es dir?"),
}

# espeak-ng phoneme mnemonics (English and German voices) that are vowels or diphthongs.
_VOWEL_START = set("aeiouyAEIOUV03@&") | {"a#", "I#", "i@", "e@", "U@", "aI", "aU", "oU", "OI", "eI"}
BILABIALS = ("m", "b", "p")


def is_vowel(phoneme: str) -> bool:
    """espeak mnemonics: a vowel starts with one of these letters (``'`` and ``,`` mark stress)."""
    name = phoneme.lstrip("',")
    return bool(name) and name[0] in _VOWEL_START and name not in ("_", "_:")


class _Event(ctypes.Structure):
    class _Id(ctypes.Union):
        _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _Id)]


_EVENT_PHONEME, _EVENT_LIST_TERMINATED = 7, 0
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


def espeak_library() -> ctypes.CDLL | None:
    """libespeak-ng, or None where it is not installed."""
    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def synthesise(text: str, voice: str, speed: int) -> tuple[np.ndarray, int, list[tuple[str, float]]]:
    """(int16 samples, sample rate, [(phoneme, start seconds)]) from libespeak-ng."""
    lib = espeak_library()
    if lib is None:
        raise RuntimeError("libespeak-ng is not installed (Debian: apt install espeak-ng)")
    # espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS=2, buffer ms, data path, espeakINITIALIZE_PHONEME_EVENTS=1)
    rate = lib.espeak_Initialize(2, 500, None, 1)
    chunks: list[np.ndarray] = []
    phonemes: list[tuple[str, float]] = []

    def on_audio(wav, count, events) -> int:
        if count > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_PHONEME:
                phonemes.append((events[i].id.string.decode(), events[i].audio_position / 1000.0))
            i += 1
        return 0

    callback = _CALLBACK(on_audio)
    lib.espeak_SetSynthCallback(callback)
    lib.espeak_SetVoiceByName(voice.encode())
    lib.espeak_SetParameter(1, speed, 0)  # espeakRATE, absolute
    data = text.encode()
    # espeak_Synth(text, size, position, POS_CHARACTER=1, end, espeakCHARS_UTF8=1, id, user_data)
    lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1, None, None)
    lib.espeak_Synchronize()
    return np.concatenate(chunks), int(rate), phonemes


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Linear-phase resampling by FFT (numpy only; the fixtures need no better)."""
    n = int(round(len(samples) * target / rate))
    spectrum = np.fft.rfft(samples.astype(np.float64))
    keep = n // 2 + 1
    out = np.fft.irfft(spectrum[:keep] if keep <= len(spectrum) else np.pad(spectrum, (0, keep - len(spectrum))), n)
    return out * (n / len(samples))


def make(name: str, voice: str, speed: int, text: str) -> dict:
    """Writes data/<name>.wav and returns its ground truth."""
    samples, rate, phonemes = synthesise(text, voice, speed)
    audio = resample(samples, rate, RATE)
    audio = np.concatenate([np.zeros(int(LEAD * RATE)), audio, np.zeros(int(TAIL * RATE))])
    audio = np.clip(np.round(audio), -32768, 32767).astype(np.int16)
    DATA.mkdir(parents=True, exist_ok=True)
    with wave.open(str(DATA / f"{name}.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(audio.tobytes())
    speech_end = LEAD + len(samples) / rate
    # Keep real phonemes: espeak also reports pauses and boundaries ("_", "_:", "_|", "||") as events.
    listed = [(p, t + LEAD) for p, t in phonemes if p and not p.startswith(("_", "|"))]
    events = [(p, t + LEAD) for p, t in phonemes] + [("END", speech_end)]
    records = []
    for i, (phoneme, start) in enumerate(events[:-1]):
        end = next((t for _, t in events[i + 1:] if t > start), speech_end)
        if (phoneme, start) in listed:
            records.append({"phoneme": phoneme, "start": round(start, 4), "end": round(end, 4)})
    vowels = [r for r in records if is_vowel(r["phoneme"])]
    bilabials = [r for r in records if r["phoneme"].lstrip("',") in BILABIALS]
    return {
        "wav": f"{name}.wav", "voice": voice, "speed": speed, "text": text,
        "command": f'espeak-ng -v {voice} -s {speed} -w {name}.wav "{text}"',
        "sample_rate": RATE, "lead_silence": LEAD, "tail_silence": TAIL,
        "speech_start": LEAD, "speech_end": round(speech_end, 4), "duration": round(len(audio) / RATE, 4),
        "phonemes": records,
        "vowel_centres": [round((r["start"] + r["end"]) / 2, 4) for r in vowels],
        "bilabial_closures": [[r["start"], r["end"]] for r in bilabials],
    }


def main() -> None:
    truth = {name: make(name, *spec) for name, spec in FIXTURES.items()}
    (DATA / "ground_truth.json").write_text(json.dumps(truth, indent=1))
    for name, record in truth.items():
        size = (DATA / record["wav"]).stat().st_size
        print(f"{name}: {record['duration']:.2f} s, {size // 1024} KiB, {len(record['vowel_centres'])} vowels, "
              f"{len(record['bilabial_closures'])} bilabials")


if __name__ == "__main__":
    main()
