"""Video and image files in and out: decoding through imageio-ffmpeg (any container/codec ffmpeg reads),
still images through OpenCV, mp4 writing with the source audio copied on request."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hellomeme_core.errors import MediaError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class Clip:
    """Decoded frames (F, H, W, 3) uint8 RGB with what a writer needs to reproduce the source."""

    frames: np.ndarray
    fps: float
    path: str
    audio_path: str | None = None  # the file holding the audio track (the source itself), if any

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])


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


def read_video(path: str | Path, max_frames: int | None = None) -> Clip:
    """All frames of a video file (or the first ``max_frames``) through ffmpeg."""
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"media: video file {path} does not exist")
    if path.stat().st_size == 0:
        raise MediaError(f"media: video file {path} is empty (0 bytes); re-export or re-download it")
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        width, height = meta["size"]
        frames = []
        for raw in reader:
            frames.append(np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3))
            if max_frames is not None and len(frames) >= max_frames:
                reader.close()
                break
    except (RuntimeError, OSError, StopIteration, KeyError, ValueError) as exc:
        raise MediaError(f"media: ffmpeg cannot decode {path} ({_last_line(exc)}); "
                         "the file is corrupt or not a video") from None
    if not frames:
        raise MediaError(f"media: {path} holds no decodable video frames")
    fps = float(meta.get("fps") or 0.0)
    audio = str(path) if meta.get("audio_codec") else None
    return Clip(frames=np.stack(frames), fps=fps, path=str(path), audio_path=audio)


def read_media(path: str | Path, max_frames: int | None = None) -> Clip:
    """A still image or a video, chosen by file suffix."""
    return read_image(path) if is_image_file(path) else read_video(path, max_frames)


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
