"""The files a finished job saved on the server: which ones (from its history entry), the local name each gets,
and what they hold (frame count, audio) once fetched."""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hellomeme_core.batch.workflow import OutputSpec

# Keys under which ComfyUI's save nodes list their files in a node's UI output.
_FILE_KEYS = ("images", "videos", "gifs", "audio", "files")


@dataclass(frozen=True)
class ServerFile:
    """One file in the server's output (``GET /view?filename=&subfolder=&type=``) and where it goes locally."""

    node_id: str
    filename: str
    subfolder: str
    kind: str
    local_name: str


def server_files(history_entry: dict, outputs: list[OutputSpec], job_name: str) -> tuple[list[ServerFile], list[str]]:
    """The job's files from its history entry, and a message per output node that saved none."""
    files, missing = [], []
    node_outputs = history_entry.get("outputs") or {}
    for spec in outputs:
        ui = node_outputs.get(spec.node_id) or {}
        entries = [e for key in _FILE_KEYS for e in (ui.get(key) or []) if isinstance(e, dict) and e.get("filename")]
        if not entries:
            missing.append(f"output node {spec.node_id} saved no file")
            continue
        for index, entry in enumerate(entries):
            suffix = Path(entry["filename"]).suffix.lower() or ".mp4"
            extra = f"_{index + 1}" if index else ""  # a node that saved several files (rare): number the rest
            files.append(ServerFile(spec.node_id, entry["filename"], entry.get("subfolder", ""),
                                    entry.get("type", "output"), f"{job_name}{spec.suffix}{extra}{suffix}"))
    return files, missing


@dataclass(frozen=True)
class MediaFacts:
    frames: int | None
    has_audio: bool


_FRAMES = re.compile(r"frame=\s*(\d+)")
_AUDIO = re.compile(r"Stream #\d+:\d+.*?: Audio: ")


def probe(path: str | Path) -> MediaFacts:
    """Frame count and audio stream of a video, read by ffmpeg without decoding (stream copy)."""
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0",
           "-c", "copy", "-f", "null", "-"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return MediaFacts(None, False)
    text = done.stderr
    frames = _FRAMES.findall(text)
    return MediaFacts(int(frames[-1]) if frames and done.returncode == 0 else None, bool(_AUDIO.search(text)))
