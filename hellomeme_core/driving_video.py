"""Driving clips as the official video pipeline reads them: resampled to a target frame rate (8 fps, the
official generator's ``ffmpeg -r 8``), an optional time range, and the piece of the audio that plays under
the kept frames.

Frames are decoded by ``media.read_video`` (so a damaged file gets its clear ``MediaError``); only the frames
that are kept are held, and decoding stops after the last one needed. The audio is decoded separately by
imageio-ffmpeg's ffmpeg as 32-bit float PCM in a WAV stream on a pipe (the WAV header tells the channels and
sample rate, which are kept as they are in the source), on the same timeline as the frames (see ``read_audio``).

Frame choice, two rules (``FrameSelection``):

- ``official`` (the default): the frames the official ``ff_change_fps`` gets from ``ffmpeg -i clip -r 8
  -c:v libx264 -crf 18 out.mp4``. An output with ``-r`` gets ffmpeg's constant-frame-rate sync, written
  here in our own code (``official_source_indices``): source frames are taken in order; a frame that ends
  more than 1.1 output frames before the next output slot is dropped, one that ends more than 1.1 slots
  after it fills several slots, any other fills the next slot. So the first frames pass straight through
  (25 fps -> 8 fps keeps 0, 1, 2, 5, 9, 12, 15, ...), then each picture shows the moment 0.14-0.20 s
  (1.1-1.6 output frames) before its slot's time (mean 0.157 s from 25 fps, 0.171 s from 15 fps, 0.154 s
  from 30 fps), and the clip is up to two frames longer than duration x rate (34 frames for 4 s at 25 fps).
  The official pipeline copies the audio unchanged, so its pictures lag the sound by that much. Checked
  frame for frame against imageio-ffmpeg's ffmpeg on numbered clips (tests/test_driving_video.py). It is
  exact for constant-rate clips whose video starts at time 0. The rule runs on the frames read_video
  delivers, so a variable-rate clip is taken at its delivered rate (the same pictures as ffmpeg's on
  amns.mp4), and a clip whose video starts late (after its audio) is taken with the first frame repeated
  from time 0, as read_video delivers it, where ffmpeg starts the rule at the first real frame: measured on
  a clip whose video starts at 0.4 s, one of the first five output frames differs (the first frame where
  ffmpeg shows the second), all later ones agree. The official pipeline then re-encodes the chosen frames
  with x264 at crf 18 and decodes them again; here they stay as decoded (no second loss).
- ``nearest``: output frame ``k`` stands for the time ``start + k / target_fps`` and takes the source frame
  nearest to it (``round((start + k / target_fps) * source_fps)``; on an exact tie the earlier one): every
  picture is within half a source frame of its slot's time, so it does not lag the sound, and the count is
  duration x rate, rounded (32 frames for 4 s). Beyond the official pipeline.
"""
from __future__ import annotations

import itertools
import math
import struct
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from pathlib import Path

import numpy as np

from hellomeme_core.errors import HelloMemeError, MediaError
from hellomeme_core.media import VideoHeader, read_video, video_header

OFFICIAL_FPS = 8.0
VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".gif", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
# Rounding guard in frame units: a time that lands on a frame boundary only through float noise rounds as the
# exact value would (exact ties go to the earlier frame, so the last slot never points past the last frame).
_EPS = 1e-6
# Rates ffmpeg prints with two decimals (29.97 for 30000/1001): a target this close above the clip's own rate is
# the clip's own rate.
_RATE_SLACK = 1e-3


class FrameSelection(str, Enum):
    """Which source frame each output frame shows (see the module notes)."""

    OFFICIAL = "official"  # ffmpeg -r's constant-rate sync, as the official ff_change_fps
    NEAREST = "nearest"  # the source frame nearest each output frame's time


@dataclass
class DrivingClip:
    """The kept frames at ``fps``, and the audio that plays under them (``None`` without an audio track)."""

    frames: np.ndarray  # (F, H, W, 3) uint8 RGB
    fps: float  # the output frame rate: the rate a video made from these frames must use
    source_fps: float  # the rate of the decoded source frames
    source_indices: np.ndarray  # (F,) the source frame each output frame is
    start_seconds: float
    frame_selection: FrameSelection
    audio: np.ndarray | None  # (channels, samples) float32, from start_seconds for F / fps seconds
    sample_rate: int | None
    path: str
    warnings: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps


def _round(x: float | np.ndarray) -> int | np.ndarray:
    """Nearest integer, exact ties down (see ``_EPS``)."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5 - _EPS).astype(np.int64)


def output_frame_count(seconds: float, target_fps: float) -> int:
    """Output frames for ``seconds`` of video: a slot counts when at least half of it lies inside."""
    return max(0, int(_round(seconds * target_fps)))


def nearest_source_indices(count: int, start_seconds: float, target_fps: float, source_fps: float) -> np.ndarray:
    """The source frame nearest to each output time ``start + k / target_fps`` (k < count)."""
    times = start_seconds + np.arange(count, dtype=np.float64) / target_fps
    return _round(times * source_fps)


def _nearest_stream(start_seconds: float, target_fps: float, source_fps: float, count: int | None) -> Iterator[int]:
    """``nearest_source_indices`` one by one (without end when ``count`` is None)."""
    slots = range(count) if count is not None else itertools.count()
    return (int(_round((start_seconds + k / target_fps) * source_fps)) for k in slots)


def _rational(rate: float) -> Fraction:
    """A frame rate as the exact fraction it stands for (8.0 -> 8, 30000/1001 as a float -> 30000/1001)."""
    return Fraction(rate).limit_denominator(1_000_000)


def _output_time(exact: Fraction, target: Fraction) -> float:
    """A frame's start in output frames, as ffmpeg's sync sees it: rounded to its sub-frame grid (2^-16 of an
    output frame for rates up to 8191 fps; fewer bits for rate numerators above that) and, when it is not a
    whole frame, moved 2^-17 later, which ffmpeg does to keep clear of exact midpoints."""
    bits = min(16, max(0, 29 - (target.numerator.bit_length() - 1)))
    grid = 1 << bits
    value = math.floor(exact * grid + Fraction(1, 2)) / grid  # times are >= 0: half up is half away from zero
    return value if value == int(value) else value + 2.0 ** -17


def _rint32(x: float) -> int:
    """Nearest integer after a cast to single precision, ties to even (C's llrintf, which ffmpeg uses)."""
    return int(np.rint(np.float32(x)))


# ffmpeg's thresholds, in output frames: a frame whose end is further than this before the slot to fill is
# dropped; one whose end is further than this after it fills several slots.
_DROP_BEFORE, _REPEAT_AFTER = 1.1, 1.1
# More copies than this of one frame is taken for a timestamp error: ffmpeg drops the frame instead
# (its dts_error_threshold of 3600 x 30).
_MAX_COPIES = 3600 * 30


def _official_stream(source_fps: float, target_fps: float, source_frame_count: int | None = None) -> Iterator[int]:
    """The source frame of each output frame of ffmpeg's constant-rate sync (``-r target_fps``) on frames at
    ``source_fps`` that start at time 0, one by one (without end when ``source_frame_count`` is None).

    The rule looks only at the frames up to the current one, so the first outputs of a long clip are the
    outputs of any clip that starts with the same frames; only the end of the input can add copies.
    """
    target = _rational(target_fps)
    step = target / _rational(source_fps)  # one source frame, in output frames
    length = float(step)
    next_slot = 0  # the output frame to fill next
    previous_counts = [0, 0, 0]  # the last three "copies of the previous frame" (for the end of the input)
    index = 0
    while source_frame_count is None or index < source_frame_count:
        lead = _output_time(index * step, target) - next_slot  # > 0: the frame starts after the slot
        end = lead + length  # the frame's end, relative to the slot
        if lead < 0 < end:
            lead = 0.0  # it started before the slot but still covers it: counted from the slot
        copies, previous = 1, 0
        if end < -_DROP_BEFORE:
            copies = 0
        elif end > _REPEAT_AFTER:
            copies = _rint32(end)
            if lead > _REPEAT_AFTER:
                previous = _rint32(lead - 0.6)  # the slots before it show the previous frame (a gap in the input)
        previous_counts = [previous, *previous_counts[:2]]
        if copies > _MAX_COPIES:
            copies = 0
        for copy in range(copies):
            yield index - 1 if copy < previous and index > 0 else index
        next_slot += copies
        index += 1
    if source_frame_count:
        # At the end of the input the last frame is repeated by the median of the last three gap fills
        # (0 for a clip that is only thinned out).
        yield from [source_frame_count - 1] * sorted(previous_counts)[1]


def official_source_indices(source_frame_count: int, source_fps: float, target_fps: float) -> np.ndarray:
    """The source frame of each output frame of ``ffmpeg -i clip -r target_fps ...`` (its constant-rate sync)
    for a clip of ``source_frame_count`` frames at ``source_fps`` starting at time 0; the official pipeline's
    ``-r 8``. Its length is the number of frames ffmpeg writes (``official_frame_count``)."""
    return np.fromiter(_official_stream(source_fps, target_fps, max(0, int(source_frame_count))), dtype=np.int64)


def official_frame_count(source_frame_count: int, source_fps: float, target_fps: float) -> int:
    """How many frames ``ffmpeg -r target_fps`` makes of the clip (up to two more than duration x rate at 8 fps)."""
    return int(len(official_source_indices(source_frame_count, source_fps, target_fps)))


def _selector(wanted: Iterable[int]) -> Callable[[int], bool]:
    """``keep(i)`` for read_video: is source frame ``i`` in ``wanted`` (non-decreasing; asked in increasing ``i``)."""
    wanted = iter(wanted)
    state = {"next": next(wanted, None)}

    def keep(i: int) -> bool:
        while state["next"] is not None and state["next"] < i:
            state["next"] = next(wanted, None)
        return state["next"] == i

    return keep


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def probe(path: str | Path, timeout: float = 60.0) -> VideoHeader:
    """The frame rate read_video's frames come at, the container's duration, and whether there is audio.

    ffmpeg converts one frame exactly as read_video does and its report is read (``media.video_header``):
    the output stream line states the constant rate it delivers, which for a variable-rate file is the
    stream's tbr, not the average rate the container states (amns.mp4: 30 vs 29.44 fps).
    """
    path = Path(path)
    header, text = video_header(path, timeout) if path.is_file() else (None, "")
    if header is None:
        # Let the reader name the problem (missing, empty, corrupt) in its own words.
        read_video(path, max_frames=1)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        reason = lines[-1][:300] if lines else "no output"
        raise MediaError(f"media: ffmpeg cannot read the video stream of {path} ({reason})")
    return header


def _parse_wav(data: bytes, path: Path) -> tuple[np.ndarray, int]:
    """(channels, samples) float32 and the sample rate of ffmpeg's piped f32 WAV (its data size is unknown)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise MediaError(f"media: ffmpeg gave no audio for {path} (not a WAV stream)")
    position, channels, rate = 12, 0, 0
    while position + 8 <= len(data):
        chunk, size = data[position:position + 4], struct.unpack_from("<I", data, position + 4)[0]
        body = position + 8
        if chunk == b"fmt ":
            _, channels, rate = struct.unpack_from("<HHI", data, body)
        elif chunk == b"data":
            # A pipe cannot be rewound, so the size field is a placeholder: the samples run to the end.
            if not channels:
                break
            payload = data[body:]
            usable = len(payload) - len(payload) % (4 * channels)
            samples = np.frombuffer(payload[:usable], dtype="<f4").reshape(-1, channels)
            return np.array(samples.T, dtype=np.float32, order="C"), int(rate)  # a copy: frombuffer's is read-only
        position = body + size + (size & 1)
    raise MediaError(f"media: ffmpeg's audio for {path} has no readable format or data")


def decode_audio_track(path: str | Path, options: list[str] | None = None, timeout: float = 600.0) -> tuple[np.ndarray, int]:
    """The first audio track of ``path`` through ffmpeg (``options``: its filters / range, output side):
    ((channels, samples) float32, sample rate). MediaError names a file ffmpeg cannot decode."""
    path = Path(path)
    command = [_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0",
               "-vn", "-sn", "-dn", *(options or []), "-c:a", "pcm_f32le", "-f", "wav", "-"]
    try:
        result = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MediaError(f"media: ffmpeg could not decode the audio of {path} ({type(exc).__name__})") from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        raise MediaError(f"media: ffmpeg cannot decode the audio track of {path} "
                         f"({lines[-1][:300] if lines else f'exit code {result.returncode}'}); is there a sound track?")
    return _parse_wav(result.stdout, path)


def read_audio(path: str | Path, start_seconds: float, seconds: float, timeout: float = 600.0) -> tuple[np.ndarray, int]:
    """The first audio track from ``start_seconds`` for ``seconds``: ((channels, samples) float32, sample rate).

    Exactly ``round(seconds x rate)`` samples: silence is added where the track ends sooner.
    """
    path = Path(path)
    # The samples are put on the file's timeline, the one read_video's frames follow (ffmpeg pads a video that
    # starts late with its first frame): aresample pads a track that starts late with silence (first_pts=0)
    # and fills gaps inside it (async=1, no stretching); the range is then cut by output -ss/-t. Seeking
    # in the input instead (-ss before -i) is faster on long files but lands on the video's keyframe and
    # drops or shifts the audio before it (measured: 0.33 s off on a clip whose video starts at 0.4 s).
    audio, rate = decode_audio_track(path, ["-af", "aresample=async=1:first_pts=0", "-ss", f"{start_seconds:.6f}",
                                            "-t", f"{seconds:.6f}"], timeout)
    wanted = int(round(seconds * rate))
    if audio.shape[1] < wanted:
        audio = np.pad(audio, ((0, 0), (0, wanted - audio.shape[1])))
    return audio[:, :wanted], rate


def planned_frame_count(header: VideoHeader, target_fps: float, start_seconds: float = 0.0,
                        max_seconds: float = 0.0) -> int:
    """About how many frames :func:`load_driving_video` will give, from the header alone (before decoding; the
    container's duration may count a longer audio track, so this errs high)."""
    rate = header.fps if target_fps <= 0 else min(target_fps, header.fps)
    seconds = max(0.0, header.duration - start_seconds)
    if max_seconds > 0:
        seconds = min(seconds, max_seconds) if header.duration > 0 else max_seconds
    return output_frame_count(seconds, rate) + 2  # ffmpeg's -r may add up to 2 frames at the end


def load_driving_video(path: str | Path, target_fps: float = OFFICIAL_FPS, start_seconds: float = 0.0,
                       max_seconds: float = 0.0, frame_selection: FrameSelection | str = FrameSelection.OFFICIAL,
                       progress: Callable[[int, int], None] | None = None, max_side: int = 0) -> DrivingClip:
    """The frames of ``path`` at ``target_fps`` (0: the clip's own rate) from ``start_seconds`` for up to
    ``max_seconds`` (0: to the end), chosen by ``frame_selection`` (see the module notes), with the audio
    under them: from ``start_seconds`` for frames / fps seconds (silence where the track is shorter).
    ``progress(decoded, total)`` follows decoding. ``max_side`` (0: the clip's size, as officially) scales the
    frames down as they are decoded so their long side is at most that.

    Raises ``MediaError`` for a missing or unreadable file and ``HelloMemeError`` for settings the clip cannot
    meet (a target rate above the clip's own, a start at or past its end, a range holding no frame).
    """
    path = Path(path)
    try:
        selection = FrameSelection(frame_selection)
    except ValueError:
        choices = ", ".join(repr(choice.value) for choice in FrameSelection)
        raise HelloMemeError(f"frame_selection {frame_selection!r} is not one of {choices}") from None
    if not math.isfinite(target_fps) or target_fps < 0:
        raise HelloMemeError(f"target_fps {target_fps:g} must be 0 (the clip's own rate) or a positive rate, "
                             "e.g. 8 (the official rate)")
    if not math.isfinite(start_seconds) or start_seconds < 0:
        raise HelloMemeError(f"start_seconds {start_seconds:g} must be 0 or more")
    if not math.isfinite(max_seconds) or max_seconds < 0:
        raise HelloMemeError(f"max_seconds {max_seconds:g} must be 0 (to the end of the clip) or more")
    header = probe(path)  # a missing or unreadable file: the reader's own error
    fps = header.fps
    if fps <= 0:
        raise MediaError(f"media: ffmpeg states no frame rate for {path}; re-export the clip with a constant frame rate")
    if target_fps == 0:
        target_fps = fps
    elif target_fps > fps:
        if target_fps > fps * (1 + _RATE_SLACK):
            raise HelloMemeError(f"target_fps {target_fps:g} is above the clip's own frame rate ({fps:g} fps): frames "
                                 f"cannot be made up. Use {fps:g} or less (8 is the official rate), or 0 to keep "
                                 "the clip's own rate")
        target_fps = fps
    if header.duration > 0 and start_seconds >= header.duration:
        raise HelloMemeError(f"start_seconds {start_seconds:g} is at or beyond the end of the clip (its length is "
                             f"{header.duration:g} s); choose a start below {header.duration:g}")
    limit = None
    if max_seconds > 0:
        limit = output_frame_count(max_seconds, target_fps)
        if limit == 0:
            raise HelloMemeError(f"max_seconds {max_seconds:g} selects no frame: it is less than half a frame at "
                                 f"{target_fps:g} fps; use at least {0.5 / target_fps + 1e-3:.3f} s, or 0 for the "
                                 "whole clip")
    # The official code has no start: with one, the official rule is applied to the clip cut at the source
    # frame nearest the start (the frame the nearest-in-time rule shows first), as if the clip began there.
    first = int(_round(start_seconds * fps))

    def wanted() -> Iterator[int]:
        """The source frames to keep, in order (without end when the range runs to the clip's end)."""
        if selection is FrameSelection.NEAREST:
            return _nearest_stream(start_seconds, target_fps, fps, limit)
        return (first + i for i in itertools.islice(_official_stream(fps, target_fps), limit))

    # With a length, decoding stops after the last frame it needs: neither rule's first choices depend on
    # where the clip ends (ffmpeg's sync only looks at the frames it has seen).
    picks = list(wanted()) if limit is not None else None  # a bounded list: computed once, used twice
    max_frames = max(picks) + 1 if picks is not None else None
    clip = read_video(path, max_frames=max_frames, keep=_selector(picks if picks is not None else wanted()),
                      progress=progress, max_side=max_side)
    decoded = clip.decoded_frames
    length = decoded / fps
    if start_seconds >= length:
        raise HelloMemeError(f"start_seconds {start_seconds:g} is at or beyond the end of the clip's video (its length is "
                             f"{length:g} s, {decoded} frames at {fps:g} fps); choose a start below {length:g}")
    if selection is FrameSelection.NEAREST:
        if max_frames is not None and decoded >= max_frames:
            count = limit  # decoding stopped after the last frame needed, not at the clip's end
        else:
            count = output_frame_count(length - start_seconds, target_fps)
            if limit is not None:
                count = min(count, limit)
        chosen = nearest_source_indices(count, start_seconds, target_fps, fps)
    else:
        chosen = first + official_source_indices(max(0, decoded - first), fps, target_fps)[:limit]
    if len(chosen) == 0:
        short = (f"less than half a frame at {target_fps:g} fps" if selection is FrameSelection.NEAREST
                 else f"less than half of the clip's last frame ({fps:g} fps)")
        raise HelloMemeError(f"no frames selected: from start_seconds {start_seconds:g} to the clip's end ({length:g} s) "
                             f"is {short}; choose an earlier start")
    count = len(chosen)
    chosen = np.minimum(chosen, decoded - 1)
    kept = clip.frame_indices
    # Every chosen index was kept by the same rule; searchsorted only guards the clamp at the clip's end.
    rows = np.minimum(np.searchsorted(kept, chosen), len(kept) - 1)
    frames = clip.frames[rows]
    audio, rate = None, None
    if header.has_audio:
        audio, rate = read_audio(path, start_seconds, count / target_fps)
    return DrivingClip(frames=frames, fps=float(target_fps), source_fps=fps, source_indices=kept[rows],
                       start_seconds=float(start_seconds), frame_selection=selection, audio=audio, sample_rate=rate,
                       path=str(path), warnings=list(clip.warnings))
