"""Driving clips at a target frame rate with the matching audio (hellomeme_core.driving_video)."""
from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from hellomeme_core.driving_video import (FrameSelection, load_driving_video, nearest_source_indices,
                                          official_frame_count, official_source_indices, probe, read_audio)
from hellomeme_core.errors import HelloMemeError, MediaError
from hellomeme_core.media import read_video
from tests.face.media_cache import DRIVING_VIDEOS, clip, media_path

# The synthetic sync clip: 25 fps, a white picture from FLASH_SECONDS on (frame 50) and a 1 kHz tone burst
# starting at the same moment, mono at 22050 Hz (so "keeps the source's channels and rate" is not just stereo 44.1k).
SYNC_FPS, SYNC_SECONDS, FLASH_SECONDS, FLASH_LENGTH = 25, 4.0, 2.0, 0.4
SYNC_RATE = 22050


OFFICIAL, NEAREST = FrameSelection.OFFICIAL, FrameSelection.NEAREST


def run_ffmpeg(*args: str) -> subprocess.CompletedProcess:
    """Run imageio-ffmpeg's ffmpeg (stdout and stderr captured, failure raised)."""
    import imageio_ffmpeg

    return subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", *args],
                          capture_output=True, check=True)


def ffmpeg(*args: str) -> str:
    """Run imageio-ffmpeg's ffmpeg; its log (stderr) is returned."""
    return run_ffmpeg(*args).stderr.decode("utf-8", "replace")


def official_command(source: Path, output: Path, fps: str = "8") -> None:
    """The official hellomeme/utils.py ff_change_fps: ``ffmpeg -i in -c:v libx264 -r 8 -c:a copy -crf 18 out``."""
    ffmpeg("-v", "error", "-i", str(source), "-c:v", "libx264", "-r", fps, "-c:a", "copy", "-crf", "18", str(output))


@pytest.fixture(scope="session")
def x264(tmp_path_factory) -> None:
    """Skip where imageio-ffmpeg's ffmpeg cannot encode H.264 (the official command and our clips need it)."""
    try:
        ffmpeg("-v", "error", "-f", "lavfi", "-i", "nullsrc=s=16x16:d=0.1", "-c:v", "libx264",
               str(tmp_path_factory.mktemp("x264") / "probe.mp4"))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"imageio-ffmpeg's ffmpeg cannot encode libx264 ({type(exc).__name__})")


# Numbered clips: 64x32 grey pictures whose left half has luma 16 + 4 (n mod 50) and right half 16 + 4 floor(n / 50),
# so the frame number n (< 2500) reads back from the pixels even after a lossy x264 pass (+-1.9 luma levels).
NUMBERED = "nullsrc=s=64x32:r={rate},geq=lum='if(lt(X,32),16+4*mod(N,50),16+4*floor(N/50))':cb=128:cr=128"
_Y_SIZE, _FRAME_BYTES = 64 * 32, 64 * 32 * 3 // 2


def make_numbered_clip(path: Path, rate: str, frames: int) -> Path:
    """A lossless H.264 mp4 of ``frames`` numbered frames at ``rate`` (an ffmpeg rate: "25", "30000/1001")."""
    ffmpeg("-v", "error", "-f", "lavfi", "-i", NUMBERED.format(rate=rate), "-frames:v", str(frames),
           "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", str(path))
    return path


def numbers_in_luma(luma: np.ndarray) -> list[int]:
    """The frame numbers of (F, 32, 64) luma pictures (the inner part of each half, away from the edges)."""
    luma = luma.astype(np.float64)
    low = np.rint((luma[:, :, 4:28].mean(axis=(1, 2)) - 16) / 4)
    high = np.rint((luma[:, :, 36:60].mean(axis=(1, 2)) - 16) / 4)
    return (high * 50 + low).astype(int).tolist()


def numbers_in_rgb(frames: np.ndarray) -> list[int]:
    """The frame numbers of (F, 32, 64, 3) RGB pictures (grey, limited range: Y = 16 + R x 219 / 255)."""
    return numbers_in_luma(16 + frames[..., 0].astype(np.float64) * 219 / 255)


def ffmpeg_numbers(path: Path, *output_args: str) -> list[int]:
    """The frame numbers ffmpeg outputs for ``path`` with ``output_args``, read from its raw yuv420p on a pipe."""
    data = run_ffmpeg("-v", "error", "-i", str(path), *output_args, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-").stdout
    planes = np.frombuffer(data, dtype=np.uint8).reshape(-1, _FRAME_BYTES)[:, :_Y_SIZE]
    return numbers_in_luma(planes.reshape(-1, 32, 64))


def make_sync_clip(path: Path, audio: bool = True, video_delay: float = 0.0, audio_delay: float = 0.0) -> Path:
    """The sync clip; with a delay, that stream starts late in the file (its content shifted so that the flash and
    the burst still fall at FLASH_SECONDS on the file's timeline), as phone and edited clips often have."""
    first = round((FLASH_SECONDS - video_delay) * SYNC_FPS)
    last = first + round(FLASH_LENGTH * SYNC_FPS) - 1
    video = (f"nullsrc=s=64x64:r={SYNC_FPS}:d={SYNC_SECONDS - video_delay},"
             f"geq=lum='if(between(N,{first},{last}),235,16)':cb=128:cr=128")
    onset = FLASH_SECONDS - audio_delay
    tone = (f"aevalsrc='if(between(t,{onset},{onset + 0.1}),0.8*sin(2*PI*1000*t),0)'"
            f":s={SYNC_RATE}:d={SYNC_SECONDS - audio_delay}")
    video_codec = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "10"]
    audio_codec = ["-c:a", "aac", "-b:a", "96k"]
    if not audio:
        ffmpeg("-loglevel", "error", "-f", "lavfi", "-i", video, *video_codec, str(path))
    elif not (video_delay or audio_delay):
        ffmpeg("-loglevel", "error", "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", tone, *video_codec, *audio_codec, str(path))
    else:
        video_part, audio_part = path.with_suffix(".video.mp4"), path.with_suffix(".audio.m4a")
        ffmpeg("-loglevel", "error", "-f", "lavfi", "-i", video, *video_codec, str(video_part))
        ffmpeg("-loglevel", "error", "-f", "lavfi", "-i", tone, *audio_codec, str(audio_part))
        ffmpeg("-loglevel", "error", "-itsoffset", f"{video_delay}", "-i", str(video_part), "-itsoffset", f"{audio_delay}",
               "-i", str(audio_part), "-map", "0:v", "-map", "1:a", "-c", "copy", str(path))
    return path


def sync_offset_seconds(images: np.ndarray, fps: float, audio: np.ndarray, rate: int) -> float:
    """Picture onset minus sound onset (seconds, both from the start of what was loaded): the first frame that
    is mostly white, the first sample of the burst. Positive = the picture comes late."""
    brightness = np.asarray(images, dtype=np.float64).reshape(len(images), -1).mean(axis=1)
    bright = np.flatnonzero(brightness > (127.5 if images.dtype == np.uint8 else 0.5))
    loud = np.flatnonzero(np.abs(audio).max(axis=0) > 0.3)
    assert bright.size and loud.size, "the flash or the burst is not in the loaded range"
    return bright[0] / fps - loud[0] / rate


def nearest_frames(count: int, start: Fraction, target_fps: Fraction, source_fps: Fraction, frames: int) -> list[int]:
    """The source frame nearest each output time, by exact arithmetic (ties: the earlier frame)."""
    chosen = []
    for k in range(count):
        t = start + Fraction(k) / target_fps
        chosen.append(min(range(frames), key=lambda i: (abs(Fraction(i) / source_fps - t), i)))
    return chosen


def ffmpeg_r8_rgb(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The frames of ``ffmpeg -i clip -r 8`` as raw RGB on a pipe (converted as read_video converts them)."""
    data = run_ffmpeg("-v", "error", "-i", str(path), "-map", "0:v:0", "-r", "8",
                      "-f", "rawvideo", "-pix_fmt", "rgb24", "-").stdout
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, *shape)


@pytest.fixture(scope="module")
def sync_clip(tmp_path_factory) -> Path:
    return make_sync_clip(tmp_path_factory.mktemp("sync") / "sync.mp4")


@pytest.mark.parametrize("name", DRIVING_VIDEOS)
def test_official_selection_gives_the_official_commands_frames_on_the_driving_clips(name, x264, tmp_path):
    path = media_path(f"driving/{name}.mp4")
    native = clip(f"driving/{name}.mp4")
    fps = probe(path).fps
    loaded = load_driving_video(path, 8.0)  # the default: the official choice
    frames = native.decoded_frames
    assert loaded.frame_selection is OFFICIAL and loaded.fps == 8.0 and loaded.source_fps == fps
    assert loaded.source_indices.tolist() == official_source_indices(frames, fps, 8.0).tolist()
    np.testing.assert_array_equal(loaded.frames, native.frames[loaded.source_indices])
    # Up to two frames more than the clip's length at 8 fps.
    assert 0 <= len(loaded.frames) - frames / fps * 8 <= 2
    # ffmpeg -r 8 to a raw pipe gives these very pictures, pixel for pixel (same decoder, same RGB conversion).
    np.testing.assert_array_equal(ffmpeg_r8_rgb(path, native.frames.shape[1:]), loaded.frames)
    # The official command itself (x264 crf 18, so lossy): each of its pictures is closest to the one we chose
    # (amns.mp4 is variable-rate: its delivered 30 fps frames hold repeats, which are equally close).
    official_command(path, tmp_path / "official.mp4")
    theirs = read_video(tmp_path / "official.mp4").frames.astype(np.float32)
    assert len(theirs) == len(loaded.frames)
    source = native.frames[:, ::4, ::4].astype(np.float32)  # every 4th pixel: enough to tell frames apart, fast
    for k, picture in enumerate(theirs[:, ::4, ::4]):
        errors = ((source - picture) ** 2).mean(axis=(1, 2, 3))
        assert errors[loaded.source_indices[k]] <= errors.min() + 1.0, (k, int(errors.argmin()), loaded.source_indices[k])
    # The audio lasts exactly as long as the frames (one sample of rounding), in the source's layout.
    assert loaded.audio.dtype == np.float32 and loaded.audio.shape[0] == 2 and loaded.sample_rate == 44100
    assert abs(loaded.audio.shape[1] / loaded.sample_rate - len(loaded.frames) / 8) <= 1 / loaded.sample_rate
    assert np.abs(loaded.audio).max() > 0.01  # real sound, not padding


@pytest.mark.parametrize("name", DRIVING_VIDEOS)
def test_nearest_selection_on_the_driving_clips(name):
    path = media_path(f"driving/{name}.mp4")
    native = clip(f"driving/{name}.mp4")
    fps = probe(path).fps
    loaded = load_driving_video(path, 8.0, frame_selection="nearest")
    frames = native.decoded_frames
    expected = round(frames / fps * 8)
    assert len(loaded.frames) == expected and abs(len(loaded.frames) - frames / fps * 8) <= 1
    assert loaded.frame_selection is NEAREST and loaded.fps == 8.0 and loaded.source_fps == fps
    want = nearest_frames(len(loaded.frames), Fraction(0), Fraction(8), Fraction(fps).limit_denominator(1001), frames)
    assert loaded.source_indices.tolist() == want == nearest_source_indices(len(want), 0.0, 8.0, fps).tolist()
    np.testing.assert_array_equal(loaded.frames, native.frames[want])
    assert abs(loaded.audio.shape[1] / loaded.sample_rate - len(loaded.frames) / 8) <= 1 / loaded.sample_rate


# Source rates (as ffmpeg takes them) and clip lengths (frames) checked against ffmpeg itself.
RATES = ("15", "24", "25", "30000/1001", "30", "60")
LENGTHS = (1, 2, 3, 4, 17, 64)
TARGETS = ("8", "5", "12")


@pytest.mark.parametrize("rate", RATES)
def test_official_rule_is_the_frames_ffmpeg_r_keeps(rate, x264, tmp_path):
    """Numbered clips through the real ffmpeg: ``-r`` to a raw pipe for several targets, the exact official
    command (x264 crf 18 into mp4) for 8 fps; both must keep the frames ``official_source_indices`` names."""
    source_fps = float(Fraction(rate))
    for frames in LENGTHS:
        path = make_numbered_clip(tmp_path / f"n{frames}.mp4", rate, frames)
        assert ffmpeg_numbers(path) == list(range(frames))  # the numbering reads back
        for target in TARGETS:
            if float(target) > source_fps:
                continue
            ours = official_source_indices(frames, source_fps, float(target)).tolist()
            piped = ffmpeg_numbers(path, "-r", target)
            assert piped == ours, (rate, frames, target)
            assert official_frame_count(frames, source_fps, float(target)) == len(piped)
        if frames in (3, 64):
            # The official command gives the same choice as the pipe (checked here, so the pipe can stand in).
            official_command(path, tmp_path / f"official{frames}.mp4")
            want = official_source_indices(frames, source_fps, 8.0).tolist()
            assert ffmpeg_numbers(tmp_path / f"official{frames}.mp4") == want
    # Through the loader: the rate ffmpeg prints (29.97) is taken as the exact rate (30000/1001).
    loaded = load_driving_video(path, 8.0)
    assert numbers_in_rgb(loaded.frames) == loaded.source_indices.tolist() == ffmpeg_numbers(path, "-r", "8")
    assert loaded.source_fps == pytest.approx(source_fps, abs=1e-9)


def test_official_rule_with_a_start_is_ffmpeg_on_the_clip_cut_there(x264, tmp_path):
    """With a start, the official rule runs on the clip cut at the source frame nearest the start."""
    path = make_numbered_clip(tmp_path / "numbered.mp4", "25", 100)
    for start, length in ((1.17, 0.0), (0.5, 1.5), (0.02, 0.0)):
        first = round(start * 25)
        cut = ffmpeg_numbers(path, "-vf", f"trim=start_frame={first},setpts=PTS-STARTPTS", "-r", "8")
        loaded = load_driving_video(path, 8.0, start_seconds=start, max_seconds=length)
        want = cut[: round(length * 8)] if length else cut
        assert loaded.source_indices.tolist() == numbers_in_rgb(loaded.frames) == want, (start, length)


def test_variable_rate_clip_uses_the_rate_of_the_decoded_frames():
    """amns.mp4 states 29.44 fps on average but ffmpeg hands its frames on at its tbr, 30 fps (106 frames)."""
    header = probe(media_path("driving/amns.mp4"))
    assert header.fps == 30.0 and header.stated_fps == pytest.approx(29.44) and header.has_audio
    assert clip("driving/amns.mp4").decoded_frames == 106
    assert 106 / header.fps == pytest.approx(header.duration, abs=0.1)


def test_start_and_length_select_the_frames_and_audio_of_that_range():
    path = media_path("driving/ysll.mp4")
    native = clip("driving/ysll.mp4")
    calls: list[tuple[int, int]] = []
    part = load_driving_video(path, 8.0, start_seconds=1.0, max_seconds=2.0, frame_selection=NEAREST,
                              progress=lambda d, t: calls.append((d, t)))
    assert len(part.frames) == 16 and part.duration == 2.0 and part.start_seconds == 1.0
    want = nearest_frames(16, Fraction(1), Fraction(8), Fraction(15), native.decoded_frames)
    assert part.source_indices.tolist() == want and want[0] == 15 and want[-1] == 43
    np.testing.assert_array_equal(part.frames, native.frames[want])
    # Decoding stopped after the last frame needed (44 of 61 frames), with the progress counting up to it.
    assert calls[-1] == (44, 44) and [d for d, _ in calls] == list(range(1, 45))
    # The audio is the slice of the whole track from 1 s for 2 s, sample for sample.
    whole, rate = read_audio(path, 0.0, 4.0)
    assert part.sample_rate == rate == 44100 and part.audio.shape == (2, 2 * rate)
    np.testing.assert_allclose(part.audio, whole[:, rate:3 * rate], atol=1e-6)

    # The official rule on the clip cut at frame 15 (1 s): its first 16 frames, decoding up to the last of them.
    calls.clear()
    official = load_driving_video(path, 8.0, start_seconds=1.0, max_seconds=2.0, progress=lambda d, t: calls.append((d, t)))
    want = (15 + official_source_indices(native.decoded_frames - 15, 15.0, 8.0)[:16]).tolist()
    assert official.source_indices.tolist() == want and want[:5] == [15, 16, 17, 18, 20] and want[-1] == 41
    np.testing.assert_array_equal(official.frames, native.frames[want])
    assert calls[-1] == (42, 42) and official.duration == 2.0
    np.testing.assert_allclose(official.audio, part.audio, atol=1e-6)  # the same range of sound

    for rule in FrameSelection:  # at the clip's own rate both rules keep every frame
        own = load_driving_video(media_path("driving/tbh.mp4"), 0, start_seconds=0.4, max_seconds=1.0, frame_selection=rule)
        assert own.fps == 15.0 and own.source_indices.tolist() == list(range(6, 21))
        np.testing.assert_array_equal(own.frames, clip("driving/tbh.mp4").frames[6:21])


def test_the_two_rules_on_a_numbered_25_fps_clip(x264, tmp_path):
    """Which source frame each 8 fps frame shows: ffmpeg's (the official rule) and the nearest in time."""
    numbered = make_numbered_clip(tmp_path / "numbered.mp4", "25", 100)
    official = load_driving_video(numbered, 8.0)
    nearest = load_driving_video(numbered, 8.0, frame_selection=NEAREST)
    shown_official, shown_nearest = numbers_in_rgb(official.frames), numbers_in_rgb(nearest.frames)
    assert shown_nearest == nearest.source_indices.tolist() == [round(k * 25 / 8 - 1e-9) for k in range(32)]
    assert shown_nearest[:6] == [0, 3, 6, 9, 12, 16]
    assert shown_official == official.source_indices.tolist() and len(shown_official) == 34
    assert shown_official[:6] == [0, 1, 2, 5, 9, 12]
    official_command(numbered, tmp_path / "official.mp4")
    assert ffmpeg_numbers(tmp_path / "official.mp4") == shown_official
    # After the first frames the official picture is 3-5 source frames (0.14-0.18 s) older than its slot's time.
    lag = np.arange(3, 34) / 8 - np.array(shown_official[3:]) / 25
    assert 0.13 < lag.min() and lag.max() < 0.18 and lag.mean() == pytest.approx(0.157, abs=0.005)
    assert np.abs(np.arange(32) / 8 - np.array(shown_nearest) / 25).max() <= 0.5 / 25 + 1e-9


def test_read_video_keep_holds_only_the_chosen_frames():
    path = media_path("driving/qie.mp4")
    calls: list[tuple[int, int]] = []
    kept = read_video(path, keep=lambda i: i % 5 == 0, progress=lambda d, t: calls.append((d, t)))
    assert kept.decoded_frames == 38 and kept.frame_indices.tolist() == list(range(0, 38, 5))
    np.testing.assert_array_equal(kept.frames, clip("driving/qie.mp4").frames[::5])
    assert calls[0] == (1, 38) and calls[-1] == (38, 38) and len(calls) == 38
    none = read_video(path, max_frames=4, keep=lambda i: False)
    assert none.frames.shape == (0, 512, 512, 3) and none.decoded_frames == 4


def test_max_side_scales_frames_as_they_are_decoded_and_the_header_knows_the_size():
    import cv2

    from hellomeme_core.driving_video import planned_frame_count, probe
    from hellomeme_core.media import video_header

    path = media_path("driving/amns.mp4")  # 720 x 720
    header, _ = video_header(path)
    assert (header.width, header.height) == (720, 720)
    small = read_video(path, max_frames=6, keep=lambda i: i % 2 == 0, max_side=360)
    full = clip("driving/amns.mp4").frames[:6:2]
    assert small.frames.shape == (3, 360, 360, 3) and small.frames.dtype == np.uint8
    for scaled, frame in zip(small.frames, full):  # each kept frame, area-filtered
        np.testing.assert_array_equal(scaled, cv2.resize(frame, (360, 360), interpolation=cv2.INTER_AREA))
    assert read_video(path, max_frames=2, max_side=1000).frames.shape == (2, 720, 720, 3)  # never enlarged
    loaded = load_driving_video(path, max_side=200)
    assert loaded.frames.shape[1:] == (200, 200, 3) and len(loaded.frames) == len(load_driving_video(path).frames)
    # The estimate made before decoding errs high by at most a few frames, on every shared clip and a range.
    for name in DRIVING_VIDEOS:
        source = media_path(f"driving/{name}.mp4")
        for fps, start, seconds in ((8.0, 0.0, 0.0), (0.0, 0.0, 0.0), (8.0, 1.0, 1.0)):
            actual = len(load_driving_video(source, fps, start, seconds).frames)
            planned = planned_frame_count(probe(source), fps, start, seconds)
            assert actual <= planned <= actual + 3, (name, fps, start, seconds, actual, planned)


@pytest.mark.parametrize("rule", list(FrameSelection))
@pytest.mark.parametrize("start", [0.0, 0.5, 0.3, 1.17])
def test_audio_and_pictures_stay_in_sync(sync_clip, start, rule):
    loaded = load_driving_video(sync_clip, 8.0, start_seconds=start, frame_selection=rule)
    assert loaded.sample_rate == SYNC_RATE and loaded.audio.shape[0] == 1  # mono 22.05 kHz kept as it is
    first = first_source_frame(start)
    count = round((SYNC_SECONDS - start) * 8) if rule is NEAREST else official_frame_count(SYNC_FRAMES - first, SYNC_FPS, 8)
    assert len(loaded.frames) == count and loaded.audio.shape[1] == round(count / 8 * SYNC_RATE)
    offset = sync_offset_seconds(loaded.frames, loaded.fps, loaded.audio, loaded.sample_rate)
    print(f"{rule.value}, start {start} s: picture - sound onset = {offset * 1000:+.1f} ms")
    assert abs(offset - expected_offset(start, rule)) < 0.01
    if rule is NEAREST:
        assert abs(offset) < 1 / 8  # the picture never lags the sound by a whole frame
    else:
        # ffmpeg -r 8 on the clip cut at the same frame shows the flash in the same output frame: the picture
        # comes 1-2 output frames after the sound.
        assert abs(offset - ffmpeg_cut_offset(sync_clip, start)) < 0.01 and 0.1 < offset < 0.25


SYNC_FRAMES = round(SYNC_SECONDS * SYNC_FPS)
FLASH_FRAME = round(FLASH_SECONDS * SYNC_FPS)


def first_source_frame(start: float) -> int:
    """The source frame nearest the start (exact ties: the earlier), where both rules begin."""
    return int(np.floor(start * SYNC_FPS + 0.5 - 1e-6))


def expected_offset(start: float, rule: FrameSelection = NEAREST) -> float:
    """Where the flash must show: in the first output frame the rule fills with a white source frame."""
    if rule is NEAREST:
        first_bright = int(np.ceil((FLASH_SECONDS - start) * 8 - 0.5 * 8 / SYNC_FPS))
    else:
        first = first_source_frame(start)
        first_bright = int(np.argmax(first + official_source_indices(SYNC_FRAMES - first, SYNC_FPS, 8) >= FLASH_FRAME))
    return first_bright / 8 - (FLASH_SECONDS - start)


def ffmpeg_cut_offset(path: Path, start: float) -> float:
    """Flash time minus its sound time in ``ffmpeg -r 8`` of the sync clip cut at the source frame nearest ``start``."""
    cut = f"trim=start_frame={first_source_frame(start)},setpts=PTS-STARTPTS"
    data = run_ffmpeg("-v", "error", "-i", str(path), "-vf", cut, "-r", "8", "-f", "rawvideo", "-pix_fmt", "gray", "-").stdout
    levels = np.frombuffer(data, dtype=np.uint8).reshape(-1, 64 * 64).mean(axis=1)
    return int(np.argmax(levels > 127.5)) / 8 - (FLASH_SECONDS - start)


@pytest.mark.parametrize("rule", list(FrameSelection))
@pytest.mark.parametrize(("video_delay", "audio_delay", "start"), [(0.4, 0.0, 0.0), (0.0, 0.3, 0.0), (0.0, 0.3, 0.2)])
def test_sync_holds_when_a_stream_starts_late(tmp_path, video_delay, audio_delay, start, rule):
    """A stream that starts after the file's start: the audio is padded with silence to the frames' timeline
    (seeking in the input put the sound 0.25-0.33 s early here)."""
    path = make_sync_clip(tmp_path / "late.mp4", video_delay=video_delay, audio_delay=audio_delay)
    loaded = load_driving_video(path, 8.0, start_seconds=start, frame_selection=rule)
    offset = sync_offset_seconds(loaded.frames, loaded.fps, loaded.audio, loaded.sample_rate)
    assert abs(offset - expected_offset(start, rule)) < 0.01, f"offset {offset * 1000:+.1f} ms"
    assert loaded.audio.shape[1] == round(len(loaded.frames) / 8 * SYNC_RATE)


def test_clip_without_audio_gives_no_audio(tmp_path):
    path = make_sync_clip(tmp_path / "silent.mp4", audio=False)
    for rule, count in ((NEAREST, 24), (OFFICIAL, 26)):  # 3 s at 8 fps; ffmpeg -r 8 adds two frames
        silent = load_driving_video(path, 8.0, start_seconds=1.0, frame_selection=rule)
        assert silent.audio is None and silent.sample_rate is None and len(silent.frames) == count


@pytest.fixture(scope="module")
def cut_videos(tmp_path_factory) -> tuple[Path, Path]:
    """qie.mp4 cut to half its bytes: as it is (index at the end: lost) and with its index moved to the front."""
    folder = tmp_path_factory.mktemp("cut")
    faststart = folder / "faststart.mp4"
    ffmpeg("-loglevel", "error", "-i", str(media_path("driving/qie.mp4")), "-c", "copy", "-movflags", "+faststart", str(faststart))
    cuts = []
    for source in (media_path("driving/qie.mp4"), faststart):
        data = source.read_bytes()
        cut = folder / f"cut_{source.name}"
        cut.write_bytes(data[: len(data) // 2])
        cuts.append(cut)
    return cuts[0], cuts[1]


def test_errors_say_what_is_wrong_and_how_to_fix_it(tmp_path, cut_videos):
    qie = media_path("driving/qie.mp4")
    with pytest.raises(MediaError, match=r"nope\.mp4 does not exist"):
        load_driving_video(tmp_path / "nope.mp4")
    index_lost, index_first = cut_videos
    with pytest.raises(MediaError, match=r"cut_qie\.mp4 .*the file is corrupt or not a video"):
        load_driving_video(index_lost)
    with pytest.raises(MediaError, match=r"cut_faststart\.mp4 decoded only \d+ of the 38 frames .*truncated or damaged"):
        load_driving_video(index_first)
    with pytest.raises(HelloMemeError, match=r"target_fps 24 is above the clip's own frame rate \(15 fps\).*0 to keep"):
        load_driving_video(qie, 24.0)
    with pytest.raises(HelloMemeError, match=r"start_seconds 10 is at or beyond the end of the clip \(its length is 2\.53 s\)"):
        load_driving_video(qie, 8.0, start_seconds=10.0)
    # Inside the container's 2.53 s but after the last half frame of video (38 frames = 2.533 s).
    with pytest.raises(HelloMemeError, match=r"no frames selected: from start_seconds 2\.52 .*2\.53333 s"):
        load_driving_video(qie, 8.0, start_seconds=2.52)
    with pytest.raises(HelloMemeError, match=r"max_seconds 0\.05 selects no frame"):
        load_driving_video(qie, 8.0, max_seconds=0.05)
    for kwargs, name in (({"target_fps": -1.0}, "target_fps"), ({"start_seconds": -1.0}, "start_seconds"),
                         ({"max_seconds": float("nan")}, "max_seconds")):
        with pytest.raises(HelloMemeError, match=name):
            load_driving_video(qie, **kwargs)
    with pytest.raises(HelloMemeError, match=r"frame_selection 'closest' is not one of 'official', 'nearest'"):
        load_driving_video(qie, 8.0, frame_selection="closest")
    # A slightly higher target than a rate ffmpeg prints rounded (29.97 for 30000/1001) is the clip's own rate.
    near = load_driving_video(qie, 15.01)
    assert near.fps == 15.0 and len(near.frames) == 38
    # Frames before the damage load fine when the range stops there.
    early = load_driving_video(index_first, 8.0, max_seconds=0.5)
    assert len(early.frames) == 4 and early.audio.shape == (2, 22050)
