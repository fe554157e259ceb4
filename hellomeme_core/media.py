"""Video and image files in and out: decoding through imageio-ffmpeg (any container/codec ffmpeg reads),
still images through OpenCV, mp4 writing with the source audio copied on request.

A truncated file whose index sits at the front (``-movflags +faststart``) decodes only its first part
and ffmpeg still exits 0, so ``read_video`` compares the decoded frame count with the container's
duration x fps: when far fewer frames decode, it asks ffmpeg whether the packets are damaged and
raises ``MediaError`` if so (``allow_partial=True`` keeps the frames and records a warning instead).
Without damage the shortfall is only a warning (a container whose duration counts a longer audio
track promises more video than it has).

Frame rate. ``Clip.fps`` is the rate ffmpeg delivers the frames at, read from its report of the output
stream (``video_header``): ffmpeg hands frames on at a constant rate (it repeats or drops frames of a
variable-rate file to the stream's tbr), which is not always the average rate the container states and
imageio-ffmpeg reports (amns.mp4: 30 fps delivered, 29.44 stated).
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from hellomeme_core.errors import HelloMemeError, MediaError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
# Decoding fewer than this share of duration x fps (and at least _MIN_SHORTFALL frames fewer) reads as
# a file that ends early. Rounding and variable frame rates stay well inside it.
_MIN_DECODED_SHARE, _MIN_SHORTFALL = 0.9, 3
_log = logging.getLogger("hellomeme")


@dataclass
class Clip:
    """Decoded frames (F, H, W, 3) uint8 RGB with what a writer needs to reproduce the source."""

    frames: np.ndarray
    fps: float  # the rate ffmpeg delivers the frames at (0 for a still image); see the module notes
    path: str
    audio_path: str | None = None  # the file holding the audio track (the source itself), if any
    promised_frames: int | None = None  # duration x fps from the container header (videos), if known
    warnings: list[str] = field(default_factory=list)  # problems that did not stop the decoding
    decoded_frames: int = 0  # frames ffmpeg decoded (more than len(frames) when ``read_video(keep=...)`` dropped some)
    frame_indices: np.ndarray | None = None  # source index of each kept frame (set by ``read_video(keep=...)``)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])


@dataclass(frozen=True)
class VideoHeader:
    """What ffmpeg says about a video file before decoding it."""

    fps: float  # the rate of the frames ffmpeg hands to read_video (constant: it repeats/drops to the stream's tbr)
    stated_fps: float  # the stream's average rate as printed (differs from ``fps`` for variable-rate files)
    duration: float  # the container's duration in seconds (0 if unknown; may count a longer audio track)
    has_audio: bool
    width: int = 0  # of the frames read_video gets (after the stream's rotation); 0 if not stated
    height: int = 0


def fitted_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) of a ``width`` x ``height`` picture scaled down so its long side is at most ``max_side``
    (0: unchanged; never enlarged)."""
    if max_side < 0:
        raise HelloMemeError(f"max_side {max_side} is negative; 0 keeps the picture's own size")
    if max_side == 0 or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def exact_rate(fps: float) -> float:
    """A rate as ffmpeg prints it (two decimals) made exact: 29.97 -> 30000/1001 (also 23.98, 59.94, 119.88, ...);
    other rates are returned as they are."""
    if fps <= 0:
        return fps
    # NTSC-style rates are n x 1000/1001; ffmpeg rounds them to two decimals when it prints them.
    n = round(fps * 1001 / 1000)
    ntsc = Fraction(n * 1000, 1001)
    if abs(fps - n) > 0.005 and abs(fps - float(ntsc)) <= 0.005:
        return float(ntsc)
    return fps


def _fps_in(line: str) -> float:
    """The "<rate> fps" of an ffmpeg stream line (0 if absent); "1k fps" style values are expanded."""
    match = re.search(r" ([0-9]+(?:\.[0-9]+)?)(k?) fps", line)
    return float(match.group(1)) * (1000.0 if match.group(2) else 1.0) if match else 0.0


def parse_video_header(text: str) -> VideoHeader | None:
    """The ``VideoHeader`` in ffmpeg's report of a conversion to raw frames (None without a video stream in
    and out): the output stream line states the rate it delivers."""
    head, _, tail = text.partition("\nOutput #0")
    inputs = [line for line in head.splitlines() if line.lstrip().startswith("Stream #")]
    video_in = next((line for line in inputs if " Video: " in line), None)
    outputs = [line for line in tail.splitlines() if line.lstrip().startswith("Stream #")]
    video_out = next((line for line in outputs if " Video: " in line), None)
    if video_in is None or video_out is None:
        return None
    duration = 0.0
    match = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", head)
    if match:
        duration = int(match.group(1)) * 3600 + int(match.group(2)) * 60 + float(match.group(3))
    stated = _fps_in(video_in)
    delivered = _fps_in(video_out) or stated
    size = re.search(r"[ ,](\d+)x(\d+)[ ,\[]", video_out)
    return VideoHeader(fps=exact_rate(delivered), stated_fps=stated, duration=duration,
                       has_audio=any(" Audio: " in line for line in inputs),
                       width=int(size.group(1)) if size else 0, height=int(size.group(2)) if size else 0)


@lru_cache(maxsize=64)
def _video_header(path: str, mtime_ns: int, size: int, timeout: float) -> tuple[VideoHeader | None, str]:
    import imageio_ffmpeg

    # One frame converted exactly as read_video converts them (raw RGB to an image pipe), so the report's
    # output stream line is the rate read_video's frames come at.
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path, "-frames:v", "1",
               "-pix_fmt", "rgb24", "-vcodec", "rawvideo", "-f", "image2pipe", "-"]
    # A failed run (no ffmpeg, timeout) raises, so it is not remembered.
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout, check=False)
    text = result.stderr.decode("utf-8", "replace")
    return parse_video_header(text), text


def video_header(path: str | Path, timeout: float = 60.0) -> tuple[VideoHeader | None, str]:
    """``(header, ffmpeg's report)`` of a video file; the header is None when ffmpeg finds no video stream.

    One short ffmpeg run (it converts one frame), remembered per file while the file is unchanged.
    """
    stat = os.stat(path)
    try:
        return _video_header(str(path), stat.st_mtime_ns, stat.st_size, timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"ffmpeg could not read the file ({type(exc).__name__})"


def _last_line(exc: BaseException) -> str:
    """ffmpeg errors carry its whole banner; the last non-empty line is the reason."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(exc).__name__


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path) -> Clip:
    """One still image as a one-frame clip (alpha dropped, greyscale expanded to RGB)."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"media: image file {path} does not exist")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise MediaError(f"media: {path} is empty or not a readable image (jpg, png, bmp, webp, tiff)")
    return Clip(frames=cv2.cvtColor(image, cv2.COLOR_BGR2RGB)[None], fps=0.0, path=str(path))


def _promised_frames(meta: dict, fps: float) -> int | None:
    """Frames the container header promises: its duration x the delivered fps (None when either is unknown)."""
    duration = float(meta.get("duration") or 0.0)
    return int(round(duration * fps)) if duration > 0 and fps > 0 else None


def packet_damage(path: str | Path, timeout: float = 120.0) -> str:
    """ffmpeg's complaints while reading the first video stream's packets (stream copy, no decoding,
    so it is quick): "" for an intact file, else the first few messages (e.g. "... partial file")."""
    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "warning", "-i", str(path),
               "-map", "0:v:0", "-c", "copy", "-f", "null", "-"]
    try:
        result = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"ffmpeg could not re-read the file ({type(exc).__name__})"
    lines = [re.sub(r"^\[[^\]]*\]\s*", "", line.strip()) for line in result.stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    if result.returncode != 0 and not lines:
        lines = [f"ffmpeg exit code {result.returncode}"]
    return "; ".join(line[:200] for line in lines[:3])


def read_video(path: str | Path, max_frames: int | None = None, allow_partial: bool = False,
               keep: Callable[[int], bool] | None = None, progress: Callable[[int, int], None] | None = None,
               max_side: int = 0) -> Clip:
    """All frames of a video file (or the first ``max_frames``) through ffmpeg.

    Raises ``MediaError`` for a missing, empty, undecodable or truncated file (fewer frames decode than
    the header's duration x fps promises and ffmpeg finds the packets damaged); with ``allow_partial``
    a truncated file gives the frames that decode and a message in ``Clip.warnings``.
    ``keep(index)`` chooses which decoded frames are held (the others are dropped at once, so a long clip
    resampled to a low rate never holds all its frames; ``Clip.frame_indices`` says which were kept);
    ``progress(decoded, total)`` is called after each frame (total: ``max_frames`` or the header's count, 0 if unknown).
    ``max_side`` (0: the video's size) scales each kept frame down as it is decoded (area filter) so its long side is
    at most that: a long high-resolution clip is never held at its own size.
    """
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"media: video file {path} does not exist")
    if path.stat().st_size == 0:
        raise MediaError(f"media: video file {path} is empty (0 bytes); re-export or re-download it")
    # imageio-ffmpeg's meta holds only the stated (average) rate, so the delivered one comes from ffmpeg's
    # report of a one-frame conversion; a file ffmpeg cannot read keeps the meta's rate and fails below.
    header, _ = video_header(path)
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        fps = header.fps if header is not None and header.fps > 0 else float(meta.get("fps") or 0.0)
        width, height = meta["size"]
        out_width, out_height = fitted_size(width, height, max_side)
        frames, indices, decoded = [], [], 0
        promised = _promised_frames(meta, fps) or 0
        total = max_frames if max_frames is not None else promised
        for raw in reader:
            if keep is None or keep(decoded):
                frame = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
                if (out_width, out_height) != (width, height):
                    frame = cv2.resize(frame, (out_width, out_height), interpolation=cv2.INTER_AREA)
                frames.append(frame)
                indices.append(decoded)
            decoded += 1
            if progress is not None:
                progress(decoded, max(total, decoded) if total else 0)
            if max_frames is not None and decoded >= max_frames:
                reader.close()
                break
    except (RuntimeError, OSError, StopIteration, KeyError, ValueError) as exc:
        raise MediaError(f"media: ffmpeg cannot decode {path} ({_last_line(exc)}); "
                         "the file is corrupt or not a video") from None
    if not decoded:
        raise MediaError(f"media: {path} holds no decodable video frames")
    audio = str(path) if meta.get("audio_codec") else None
    stacked = np.stack(frames) if frames else np.empty((0, out_height, out_width, 3), dtype=np.uint8)
    clip = Clip(frames=stacked, fps=fps, path=str(path), audio_path=audio, promised_frames=_promised_frames(meta, fps),
                decoded_frames=decoded, frame_indices=np.asarray(indices, dtype=np.int64) if keep is not None else None)
    _check_frame_count(clip, meta, max_frames, allow_partial)
    return clip


def _check_frame_count(clip: Clip, meta: dict, max_frames: int | None, allow_partial: bool) -> None:
    promised = clip.promised_frames
    if promised is None:
        return
    wanted = promised if max_frames is None else min(promised, max_frames)
    decoded = clip.decoded_frames
    if decoded >= wanted * _MIN_DECODED_SHARE or wanted - decoded < _MIN_SHORTFALL:
        return
    message = (f"media: {clip.path} decoded only {decoded} of the {promised} frames its header promises "
               f"({float(meta['duration']):g} s at {clip.fps:g} fps)")
    damage = packet_damage(clip.path)
    if damage:
        message += (f"; ffmpeg: {damage}. The file is truncated or damaged (an interrupted download or copy?); "
                    "re-download or re-export it")
        if not allow_partial:
            raise MediaError(message)
        message += f"; using the {decoded} frames that decode"
    else:
        message += "; ffmpeg finds its packets intact, so the header's duration probably counts a longer audio track"
    _log.warning("HelloMeme %s", message)
    clip.warnings.append(message)


def read_media(path: str | Path, max_frames: int | None = None, allow_partial: bool = False) -> Clip:
    """A still image or a video, chosen by file suffix (``allow_partial``: see ``read_video``)."""
    return read_image(path) if is_image_file(path) else read_video(path, max_frames, allow_partial)


def write_video(path: str | Path, frames: np.ndarray, fps: float, audio_path: str | None = None) -> Path:
    """Write (F, H, W, 3) uint8 RGB frames as H.264 mp4; ``audio_path``'s audio track is copied in."""
    import imageio_ffmpeg

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise MediaError(f"media: write_video needs frames of shape (F>0, H, W, 3), got {tuple(frames.shape)}")
    if frames.dtype != np.uint8:
        frames = np.clip(frames, 0, 255).astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[1:3]
    # H.264 in yuv420p needs even sizes; pad by edge replication rather than resample.
    pad_h, pad_w = height % 2, width % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    kwargs = dict(fps=float(fps) if fps and fps > 0 else 25.0, codec="libx264", macro_block_size=1,
                  output_params=["-shortest"] if audio_path else None)
    if audio_path:
        kwargs.update(audio_path=str(audio_path), audio_codec="aac")
    try:
        writer = imageio_ffmpeg.write_frames(str(path), (width + pad_w, height + pad_h), **kwargs)
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
    except (RuntimeError, OSError, BrokenPipeError) as exc:
        raise MediaError(f"media: ffmpeg could not write {path} ({_last_line(exc)})") from None
    return path
