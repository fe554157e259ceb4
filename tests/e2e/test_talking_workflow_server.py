"""Tier 3: the shipped talking-from-audio workflow (``workflows/hellomeme_talking_api.json``) end to end through a
real ComfyUI server: random SD1.5 checkpoint + random v5 HelloMeme weights on disk (the same files as the meme
test), 1.66 s of real espeak-ng speech through Load Audio -> Audio to Face Motion -> Combine Face Motion (idle
head) -> the HelloMeme video stage in arkit mode -> Create Video with the audio; the saved video is decoded and
its sound is checked to be the input speech, in sync with the frames."""
from __future__ import annotations

import re
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hellomeme_core.audio.motion import frame_count
from hellomeme_core.denoiser.video_schedule import plan_levels
from hellomeme_core.driving_video import decode_audio_track
from tests.e2e.conftest import SPEECH_SOURCE, cached_nodes, stage_meme_files
from tests.e2e.media import StreamInfo, probe, read_frames
from tests.e2e.test_meme_workflow_server import SIZE, quick_run
from tests.e2e.test_workflows_server import saved_video
from tests.e2e.workflow_graph import WORKFLOWS_DIR, WorkflowPair

pytestmark = pytest.mark.slow

TALKING = WorkflowPair("hellomeme_talking", WORKFLOWS_DIR / "hellomeme_talking.json",
                       WORKFLOWS_DIR / "hellomeme_talking_api.json")
# Node ids of workflows/hellomeme_talking_api.json.
LOAD_AUDIO = "40"
AUDIO_MOTION, COMBINE, HM_MODELS, APPLY, SAMPLER, SAVE_VIDEO, SAVE_FULL = "41", "42", "12", "14", "18", "21", "27"
FPS = 8.0
# "Hello, I saw a ca-" of en_words.wav (speech from 0.514 s, a pause at 1.11-1.36 s): 1.66 s -> 13 frames at 8 fps,
# the fewest that still run the official schedule's two levels (13 frames + a 3-frame level), and a length
# that is not a whole number of frames, so Audio to Face Motion must cut the audio (1.66 -> 1.625 s).
SPEECH_NAME = "speech_1s66.wav"
SPEECH_START, SPEECH_SECONDS = 0.40, 1.66
ENVELOPE_STEP = 0.005  # s: the envelope's resolution for the sync check


@dataclass
class TalkingRun:
    seconds: float
    history: dict
    speech: np.ndarray  # the input speech as float32 mono at its rate
    rate: int
    video: np.ndarray
    video_info: StreamInfo
    video_audio: np.ndarray  # the saved video's sound track, decoded to mono at ``rate``
    full: np.ndarray
    full_info: StreamInfo
    full_audio: np.ndarray


def write_speech_excerpt(source: Path, target: Path, start: float, seconds: float) -> tuple[np.ndarray, int]:
    """``seconds`` of a 16-bit mono wav from ``start``, written as a wav; returns (float32 samples, rate)."""
    with wave.open(str(source)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    cut = pcm[int(round(start * rate)):int(round((start + seconds) * rate))]
    with wave.open(str(target), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(cut.tobytes())
    return cut.astype(np.float32) / 32768.0, rate


def decode_audio(path: Path, rate: int) -> np.ndarray:
    """The sound track of a media file as float32 mono at ``rate`` (the project's ffmpeg reader)."""
    samples, got = decode_audio_track(path, ["-ac", "1", "-ar", str(rate)])
    assert got == rate
    return samples[0]


def envelope(samples: np.ndarray, rate: int, step: float = ENVELOPE_STEP) -> np.ndarray:
    """RMS per ``step`` over 20 ms windows, in dB (floored 60 dB below the peak)."""
    hop, win = int(rate * step), int(rate * 0.02)
    padded = np.pad(samples.astype(np.float64), (win // 2, win))
    rms = np.array([np.sqrt(np.mean(padded[i:i + win] ** 2)) for i in range(0, len(samples), hop)])
    db = 20 * np.log10(rms + 1e-9)
    return np.maximum(db, db.max() - 60.0)


def envelope_lag(reference: np.ndarray, other: np.ndarray, max_lag: int) -> tuple[int, float]:
    """(lag in envelope steps at which ``other`` best matches ``reference``, its normalised correlation);
    a positive lag means ``other`` is late."""
    n = min(len(reference), len(other))
    a, b = reference[:n] - reference[:n].mean(), other[:n] - other[:n].mean()
    best = (0, -np.inf)
    for lag in range(-max_lag, max_lag + 1):
        x, y = (a[:n - lag], b[lag:]) if lag >= 0 else (a[-lag:], b[:n + lag])
        corr = float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-12))
        if corr > best[1]:
            best = (lag, corr)
    return best


def talking_prompt() -> dict:
    """The shipped API prompt with the meme test's quick-run changes and the short speech file."""
    prompt = quick_run(TALKING.api())
    prompt[LOAD_AUDIO]["inputs"]["audio"] = SPEECH_NAME
    return prompt


@pytest.fixture(scope="module")
def talking_run(comfy_server, staged_inputs) -> TalkingRun:
    stage_meme_files(comfy_server)
    speech, rate = write_speech_excerpt(SPEECH_SOURCE, comfy_server.input_dir / SPEECH_NAME, SPEECH_START, SPEECH_SECONDS)

    start = time.perf_counter()
    history = comfy_server.run_prompt(talking_prompt(), timeout=900)
    seconds = time.perf_counter() - start
    print(f"\ntalking workflow: {seconds:.1f} s")
    video_path = saved_video(comfy_server, history, SAVE_VIDEO)
    full_path = saved_video(comfy_server, history, SAVE_FULL)
    return TalkingRun(seconds, history, speech, rate, read_frames(video_path), probe(video_path),
                      decode_audio(video_path, rate), read_frames(full_path), probe(full_path),
                      decode_audio(full_path, rate))


def test_every_node_ran_in_arkit_mode(talking_run: TalkingRun, comfy_server):
    assert SAVE_VIDEO in talking_run.history["outputs"] and SAVE_FULL in talking_run.history["outputs"]
    assert not set(cached_nodes(talking_run.history)) & {AUDIO_MOTION, COMBINE, HM_MODELS, APPLY, SAMPLER}
    prompt = talking_run.history["prompt"][2]
    assert prompt[HM_MODELS]["inputs"]["expression_mode"] == "arkit"
    assert prompt[APPLY]["inputs"]["face_motion"] == [COMBINE, 0]  # the audio-made motion drives the frames
    assert "pose_motion" not in prompt[COMBINE]["inputs"]  # the built-in idle head motion
    frames = frame_count(SPEECH_SECONDS, FPS)
    log = comfy_server.log_text()
    match = re.search(rf"HelloMeme Audio to Face Motion: {frames} frames \({SPEECH_SECONDS:.2f} s\) from audio by "
                      r"'(phonemes(?: \([a-z ]+\))?|loudness\+formants)'", log)  # e.g. 'phonemes (words aligned)'
    assert match, log[-3000:]
    print(f"audio method: {match[1]}")
    # 13 frames: the official v5 schedule's two levels (13 frames, then their 3 chunk ends), as in the meme test.
    assert [len(level.frames) for level in plan_levels(frames)] == [frames, 3]
    assert f"{frames} frames in 2 level(s) of {frames}/3 frames" in log


def test_one_frame_per_eighth_of_a_second_of_speech(talking_run: TalkingRun):
    frames = frame_count(len(talking_run.speech) / talking_run.rate, FPS)
    assert frames == round(SPEECH_SECONDS * FPS) == 13
    assert len(talking_run.video) == frames and len(talking_run.full) == frames
    assert talking_run.video.shape[1:] == (SIZE, SIZE, 3)
    for info in (talking_run.video_info, talking_run.full_info):
        assert info.fps == pytest.approx(FPS, rel=0.01) and info.video_codec == "h264"


def test_sound_track_lasts_as_long_as_the_frames(talking_run: TalkingRun):
    video_seconds = len(talking_run.video) / FPS  # 1.625 s: the speech cut to the frames
    for info, audio in ((talking_run.video_info, talking_run.video_audio), (talking_run.full_info, talking_run.full_audio)):
        assert info.audio_codec == "aac", info
        audio_seconds = len(audio) / talking_run.rate
        assert audio_seconds == pytest.approx(video_seconds, abs=1 / FPS), (audio_seconds, video_seconds)
        assert info.duration_s == pytest.approx(video_seconds, abs=1 / FPS)


def test_sound_track_is_the_input_speech_in_sync(talking_run: TalkingRun):
    """The saved audio's loudness envelope matches the input speech's best at lag 0 (within 40 ms)."""
    rate = talking_run.rate
    speech = envelope(talking_run.speech[:int(round(len(talking_run.video) / FPS * rate))], rate)
    max_lag = int(0.5 / ENVELOPE_STEP)
    for audio in (talking_run.video_audio, talking_run.full_audio):
        lag, corr = envelope_lag(speech, envelope(audio, rate), max_lag)
        print(f"envelope lag {lag * ENVELOPE_STEP * 1000:.0f} ms, correlation {corr:.3f}")
        assert abs(lag) * ENVELOPE_STEP <= 0.040, f"audio off by {lag * ENVELOPE_STEP * 1000:.0f} ms"
        assert corr > 0.9, f"the sound track does not look like the input speech (envelope correlation {corr:.2f})"


def test_sync_check_can_fail(talking_run: TalkingRun):
    """The check above sees a 100 ms shift and another sound."""
    rate = talking_run.rate
    speech = envelope(talking_run.speech, rate)
    shifted = np.concatenate([np.zeros(int(0.1 * rate), np.float32), talking_run.speech])
    lag, _ = envelope_lag(speech, envelope(shifted, rate), int(0.5 / ENVELOPE_STEP))
    assert lag * ENVELOPE_STEP == pytest.approx(0.1, abs=0.01)
    noise = np.random.default_rng(0).normal(0, 0.1, len(talking_run.speech)).astype(np.float32)
    assert envelope_lag(speech, envelope(noise, rate), int(0.5 / ENVELOPE_STEP))[1] < 0.5


def test_frames_are_not_constant(talking_run: TalkingRun):
    video = talking_run.video.astype(np.float32)
    per_frame_std = video.reshape(len(video), -1).std(axis=1)
    assert per_frame_std.min() > 1.0, f"flat frames: per-frame std {per_frame_std.round(2).tolist()}"
    assert np.abs(video[1:] - video[:1]).max() > 10  # not one image repeated


def test_run_time(talking_run: TalkingRun):
    assert talking_run.seconds < 300, f"the quick talking run took {talking_run.seconds:.0f} s"
