"""The official v3-v5 video schedule as a plan: levels, chunks, margin frames and where each pad comes from.

The official video pipelines generate a clip recursively. A level of ``n`` frames is cut into chunks of
12 frames at stride 11 (neighbours share one frame). The chunks' first and last frames (the *margins*)
are generated first, as a shorter video one level deeper; each generated margin latent becomes the
motion pad of the chunks that start or end on it, through the reference pass. Then every chunk of the
level is denoised with its two pads and the noise predictions of shared frames are averaged.

This module only plans (pure Python, no tensors), so a sampler can follow the plan and tests can hold
it against the recorded official runs:

* noise is taken by *position* within a level: position ``j`` of a level uses base-noise frame ``j``;
* a last chunk of a single frame is dropped (v5 does so; the v3/v4 code crashes on such lengths,
  23, 34, 45 ... frames, and evidently means the same: that frame is already the previous chunk's end);
* pads: v5 overwrites, so a level's pads come from the final latents of the level below it, and the
  innermost level runs without pads; v3/v4 keep the first pad made for a frame (the deepest pass),
  and their innermost level first makes its two end frames with the image UNet (the *margin pass*,
  both ends from base-noise frame 0) to have pads from the start.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import HelloMemeError
from ..versions import version_info

CHUNK_FRAMES = 12  # frames the motion modules were trained on
CHUNK_STRIDE = 11  # neighbouring chunks share one frame


class PadPolicy(enum.Enum):
    """How the official pipeline of a version fills and reuses its motion pads."""

    OVERWRITE = "overwrite"  # v5, v5b, v5c: each level's result replaces the pads; innermost level: no pads
    KEEP_DEEPEST = "keep_deepest"  # v3, v4: the first pad of a frame stays; innermost margin pass


def pad_policy(version: str) -> PadPolicy:
    """The pad policy of ``version``'s official recursive video schedule; a clear error where it has none."""
    kind = version_info(version).official_video
    if kind == "recursive_overwrite":
        return PadPolicy.OVERWRITE
    if kind == "recursive_keep_deepest":
        return PadPolicy.KEEP_DEEPEST
    why = ("its official video pipeline runs a per-frame image stage, then AnimateDiff windows"
           if kind == "two_stage" else "it has no official video pipeline")
    raise HelloMemeError(f"HelloMeme {version} has no recursive chunk schedule: {why}.")


@dataclass(frozen=True)
class Level:
    """One level of the recursion: the video frames it generates and its chunks (positions in the level)."""

    depth: int
    frames: tuple[int, ...]
    chunks: tuple[tuple[int, ...], ...]

    @property
    def innermost(self) -> bool:
        return len(self.chunks) == 1

    @property
    def margins(self) -> tuple[int, ...]:
        """Video frames the next level generates first (the chunks' ends); none for the innermost level."""
        if self.innermost:
            return ()
        return tuple(sorted({self.frames[c[0]] for c in self.chunks} | {self.frames[c[-1]] for c in self.chunks}))

    def chunk_frames(self, i: int) -> tuple[int, ...]:
        """Video frame indexes of chunk ``i``."""
        return tuple(self.frames[p] for p in self.chunks[i])


def split_chunks(n: int) -> tuple[tuple[int, ...], ...]:
    """Positions ``0 .. n-1`` cut into chunks of 12 at stride 11; a last chunk of one frame is dropped."""
    if n < 1:
        raise ValueError(f"a video level needs at least one frame, got {n}")
    if n <= CHUNK_FRAMES:
        return (tuple(range(n)),)
    chunks = [tuple(range(start, min(start + CHUNK_FRAMES, n))) for start in range(0, n, CHUNK_STRIDE)]
    if len(chunks[-1]) == 1:
        chunks.pop()
    return tuple(chunks)


def plan_levels(num_frames: int) -> list[Level]:
    """Every level of a clip of ``num_frames`` frames, outermost (depth 0, the whole clip) first."""
    levels = []
    frames = tuple(range(num_frames))
    depth = 0
    while True:
        level = Level(depth, frames, split_chunks(len(frames)))
        levels.append(level)
        if level.innermost:
            return levels
        frames = level.margins
        depth += 1


@dataclass(frozen=True)
class PadSource:
    """Which pass made the pad of a frame: the final latent of ``pass_kind`` at ``depth``."""

    frame: int
    depth: int
    pass_kind: str  # "main" or "margin"


def margin_pass_frames(level: Level) -> tuple[int, ...]:
    """v3/v4 innermost level: the two end frames its margin pass makes with the image UNet."""
    return (level.frames[0], level.frames[-1])


def chunk_pad_sources(levels: list[Level], policy: PadPolicy) -> dict[int, list[tuple[PadSource, PadSource] | None]]:
    """Per depth, per chunk: the sources of its ``(first, last)`` pads, or ``None`` when it runs without pads.

    Follows the order the official code runs in: the innermost level first, each level writing its
    pads after all its chunks are done (and only below depth 0).
    """
    pads: dict[int, PadSource] = {}
    out: dict[int, list[tuple[PadSource, PadSource] | None]] = {}
    for level in reversed(levels):
        if level.innermost and policy is PadPolicy.KEEP_DEEPEST:
            for frame in margin_pass_frames(level):
                pads.setdefault(frame, PadSource(frame, level.depth, "margin"))
        used = []
        for i in range(len(level.chunks)):
            first, last = level.chunk_frames(i)[0], level.chunk_frames(i)[-1]
            used.append((pads[first], pads[last]) if first in pads and last in pads else None)
        out[level.depth] = used
        if level.depth > 0:
            for frame in level.frames:
                source = PadSource(frame, level.depth, "main")
                if policy is PadPolicy.OVERWRITE:
                    pads[frame] = source
                else:
                    pads.setdefault(frame, source)
    return out


def denoiser_calls_per_step(levels: list[Level], policy: PadPolicy) -> int:
    """UNet calls (one per chunk, both CFG halves in one batch) per sampling step, all levels and passes."""
    calls = sum(len(level.chunks) for level in levels)
    if policy is PadPolicy.KEEP_DEEPEST:
        calls += 1  # the innermost margin pass: its two frames in one call
    return calls


# The v1/v2 two-stage pipeline (official ``pipline_hm_video``): a per-frame image stage of at most this many
# steps, then AnimateDiff windows of 12 frames overlapping by ``patch_overlap`` (4 in the official app).
TWO_STAGE_IMAGE_STEPS = 10
TWO_STAGE_OVERLAP = 4


@dataclass(frozen=True)
class TwoStagePlan:
    """The v1/v2 video stage over a clip padded at its end, as the official pipeline pads it.

    ``frames``: the video frame whose control features each position uses (the padding repeats the last
    frame); ``start_frames``: the image-stage latent each position starts from (the official padding copies
    the second-to-last frame's latent); ``chunks``: window positions (the last window runs to the end)."""

    frames: tuple[int, ...]
    start_frames: tuple[int, ...]
    chunks: tuple[tuple[int, ...], ...]

    @staticmethod
    def image_steps(steps: int) -> int:
        """Steps of the per-frame image stage: the official ``min(10, steps)``."""
        return min(TWO_STAGE_IMAGE_STEPS, steps)


def plan_two_stage(num_frames: int, overlap: int = TWO_STAGE_OVERLAP) -> TwoStagePlan:
    """The official v1/v2 video-stage windows for ``num_frames`` frames.

    Windows of 12 at stride ``12 - overlap`` (overlap clamped to 0..5); the clip is padded with
    ``stride - (n - overlap) % stride`` positions (always at least one, as officially). Where the official
    code finds no window (clips of 1-3 frames, which crash there) one window covers every position, as it
    evidently intends; a one-frame clip pads with its only frame (the official code's ``[-2:-1]`` is empty).
    """
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    overlap = min(max(0, overlap), CHUNK_FRAMES // 2 - 1)
    stride = CHUNK_FRAMES - overlap
    pad = stride - (num_frames - overlap) % stride
    padded = num_frames + pad
    chunks = [tuple(range(i, min(i + CHUNK_FRAMES, padded))) for i in range(0, padded - stride + 1, stride)]
    if not chunks:
        chunks = [tuple(range(padded))]
    chunks[-1] = tuple(range(chunks[-1][0], padded))
    last, before_last = num_frames - 1, max(num_frames - 2, 0)
    return TwoStagePlan(tuple(range(num_frames)) + (last,) * pad,
                        tuple(range(num_frames)) + (before_last,) * pad, tuple(chunks))
