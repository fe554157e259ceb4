"""Video files for the end-to-end tests, through imageio-ffmpeg's ffmpeg: cut a short clip (audio kept),
decode every frame, and read the stream layout that ffmpeg reports."""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np


@dataclass(frozen=True)
class StreamInfo:
    """What ``ffmpeg -i`` says about a file: its video stream (codec, size, fps) and audio codec, if any."""

    video_codec: str
    width: int
    height: int
    fps: float
    audio_codec: str | None
    duration_s: float


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def cut_clip(source: Path, target: Path, frames: int, video_filter: str | None = None) -> Path:
    """The first ``frames`` frames of ``source`` (H.264, its audio re-encoded as AAC over the same span),
    optionally through an ffmpeg ``-vf`` filter (scale, pad, crop)."""
    video_filter = ["-vf", video_filter] if video_filter else []
    cmd = [ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(source), "-frames:v", str(frames), *video_filter,
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "12", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-b:a", "128k", "-shortest", str(target)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg could not cut {source} -> {target}: {done.stderr[-2000:]}")
    return target


def read_frames(path: Path) -> np.ndarray:
    """Every frame of a video as (F, H, W, 3) uint8 RGB."""
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 3) for buf in reader]
    return np.stack(frames)


_VIDEO = re.compile(r"Stream #\d+:\d+.*?: Video: (\w+).*?, (\d{2,5})x(\d{2,5})[ ,].*?([\d.]+) fps")
_AUDIO = re.compile(r"Stream #\d+:\d+.*?: Audio: (\w+)")
_DURATION = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")


def probe(path: Path) -> StreamInfo:
    """Stream layout of a media file, parsed from ``ffmpeg -i`` (imageio-ffmpeg ships no ffprobe)."""
    done = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    text = done.stderr
    video = _VIDEO.search(text)
    if video is None:
        raise AssertionError(f"{path} has no video stream ffmpeg can read:\n{text}")
    audio = _AUDIO.search(text)
    duration = _DURATION.search(text)
    seconds = int(duration[1]) * 3600 + int(duration[2]) * 60 + float(duration[3]) if duration else float("nan")
    return StreamInfo(video[1], int(video[2]), int(video[3]), float(video[4]), audio[1] if audio else None, seconds)
