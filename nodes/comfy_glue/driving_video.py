"""Load Driving Video for the node: the videos of ComfyUI's input folder, decoding with a progress bar, and the
result as ComfyUI's IMAGE and AUDIO values."""
from __future__ import annotations

import os
from collections.abc import Callable

import torch

import folder_paths

from hellomeme_core.driving_video import FrameSelection, load_driving_video, planned_frame_count, probe
from hellomeme_core.errors import HelloMemeError, MediaError
from hellomeme_core.media import fitted_size

from .memory_check import check_fits
from .progress import node_progress

# The node's frame_selection choices (the first is the default: the official pipeline's frames).
FRAME_SELECTIONS = {
    "official (ffmpeg -r)": FrameSelection.OFFICIAL,
    "nearest in time": FrameSelection.NEAREST,
}
OFFICIAL_SELECTION = next(iter(FRAME_SELECTIONS))

# Progress updates per decode: ComfyUI sends each one to the browser, so not one per frame of a long clip.
_PROGRESS_STEPS = 100


def video_files() -> list[str]:
    """The video files of ComfyUI's input folder, as ComfyUI's own Load Video lists them."""
    input_dir = folder_paths.get_input_directory()
    if not os.path.isdir(input_dir):
        return []
    files = [f for f in os.listdir(input_dir) if os.path.isfile(os.path.join(input_dir, f))]
    return sorted(folder_paths.filter_files_content_types(files, ["video"]))


def missing_video(video: str | None) -> str | None:
    """Why ``video`` cannot be loaded (no choice, or no such file in the input folder), else None."""
    if not video:
        return (f"video: no file chosen. Upload a driving video with the node's upload button, or copy one into "
                f"ComfyUI's input folder ({folder_paths.get_input_directory()}).")
    if folder_paths.exists_annotated_filepath(video):
        return None
    return (f"video '{video}' was not found in ComfyUI's input folder ({folder_paths.get_input_directory()}). "
            "Upload it with the node's upload button, or copy the file there and refresh (R).")


def fingerprint(video: str | None) -> str:
    """Changes when the file does (replaced, re-uploaded under the same name): the node then runs again."""
    if not video or not folder_paths.exists_annotated_filepath(video):
        return f"missing:{video}"
    path = folder_paths.get_annotated_filepath(video)
    stat = os.stat(path)
    return f"{path}:{stat.st_mtime_ns}:{stat.st_size}"


def _throttled_progress() -> Callable[[int, int], None]:
    """read_video's ``progress(decoded, total)`` as a node progress bar made once the total is known."""
    state: dict = {"bar": None, "shown": 0}

    def update(done: int, total: int) -> None:
        if state["bar"] is None:
            state["bar"] = node_progress(total or 1)
        step = max(1, (total or 1) // _PROGRESS_STEPS)
        if done - state["shown"] >= step or done == total:
            state["shown"] = done
            state["bar"](done, max(total, done))

    return update


def frame_selection(choice: str) -> FrameSelection:
    """The core's rule for one of the node's ``frame_selection`` choices."""
    if choice not in FRAME_SELECTIONS:
        options = ", ".join(f"'{option}'" for option in FRAME_SELECTIONS)
        raise HelloMemeError(f"frame_selection '{choice}' is not one of {options}; pick one in the node's list")
    return FRAME_SELECTIONS[choice]


def _check_memory(path: str, target_fps: float, start_seconds: float, max_seconds: float, max_side: int) -> None:
    """A clear error before decoding when the frames cannot fit in the free RAM (else the server would be killed
    part-way through)."""
    header = probe(path)
    if not (header.width and header.height):
        return
    count = planned_frame_count(header, target_fps, start_seconds, max_seconds)
    width, height = fitted_size(header.width, header.height, max_side)
    need = count * width * height * 3 * 5  # decoded as uint8, held as a float32 IMAGE
    check_fits(need, max(width, height), f"about {count} frames at {width}x{height}",
               "load a shorter part (max_seconds, start_seconds)", min_side=256)


def load(video: str, target_fps: float, start_seconds: float, max_seconds: float,
         selection: str = OFFICIAL_SELECTION, max_side: int = 0):
    """``(images, audio or None, fps, frame_count)`` of a video in ComfyUI's input folder."""
    problem = missing_video(video)
    if problem:
        raise MediaError(problem)
    rule = frame_selection(selection)
    path = folder_paths.get_annotated_filepath(video)
    _check_memory(path, target_fps, start_seconds, max_seconds, max_side)
    clip = load_driving_video(path, target_fps, start_seconds, max_seconds, frame_selection=rule,
                              progress=_throttled_progress(), max_side=max_side)
    images = torch.from_numpy(clip.frames).to(torch.float32).div_(255.0)
    audio = None
    if clip.audio is not None:
        audio = {"waveform": torch.from_numpy(clip.audio).unsqueeze(0), "sample_rate": int(clip.sample_rate)}
    return images, audio, float(clip.fps), int(images.shape[0])
