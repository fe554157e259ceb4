"""Motion pads: what the HelloMeme motion modules (v3-v5) attend to before and after each window.

The official video pipelines make them with the reference pass (the base UNet at timestep 0 on
``[zeros, latent]``, see :mod:`.conventions`) run on frames they have already generated: the v3/v4
pipelines generate a window's first and last frame with the image stage, the v5 pipeline generates
every window's boundary frames first; each window then gets the features of its own first and last
frame as its two pads. Here the frames come from an image-stage sampling of the whole clip, and a
:class:`MotionPadBank` keeps the features of every frame that starts or ends a window.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch

from ..errors import ShapeMismatchError


def window_boundary_frames(windows: Iterable[Sequence[int]]) -> list[int]:
    """The frames that start or end a window (sorted): the only ones whose pads are ever used."""
    frames: set[int] = set()
    for window in windows:
        if len(window):
            frames.update((int(window[0]), int(window[-1])))
    return sorted(frames)


@dataclass
class MotionPadBank:
    """Reference-pass features of boundary frames, for :meth:`pads` of any window.

    ``uncond``: the zero-latent row ``(1, C, h, w)`` per ``res_cache`` key (the same for every frame);
    ``frames``: frame index -> its own row ``(1, C, h, w)`` per key.
    """

    uncond: dict[str, torch.Tensor]
    frames: dict[int, dict[str, torch.Tensor]]

    @classmethod
    def from_record(cls, record: Mapping[str, torch.Tensor], frames: Sequence[int],
                    previous: "MotionPadBank | None" = None) -> "MotionPadBank":
        """From a reference pass over ``[zeros, latent of frames[0], latent of frames[1], ...]``."""
        rows = len(frames) + 1
        for key, value in record.items():
            if value.shape[0] != rows:
                raise ShapeMismatchError(
                    f"motion pads: the reference pass recorded {value.shape[0]} rows for {key!r}, expected {rows} "
                    f"(one zero latent + {len(frames)} frames)."
                )
        uncond = previous.uncond if previous is not None else {k: v[:1] for k, v in record.items()}
        bank = dict(previous.frames) if previous is not None else {}
        for i, frame in enumerate(frames):
            bank[int(frame)] = {k: v[i + 1:i + 2] for k, v in record.items()}
        return cls(uncond, bank)

    def pads(self, first: int, last: int) -> dict[str, torch.Tensor]:
        """``(2, C, 2, h, w)`` per key: rows ``[uncond, cond]``, pad axis ``[first frame, last frame]``."""
        missing = [f for f in (first, last) if f not in self.frames]
        if missing:
            have = sorted(self.frames)
            raise ShapeMismatchError(
                f"No motion pads for frame(s) {missing}; they were made for frames {have}. The video must be "
                "sampled over as many frames as the image-stage latents the pads came from (and with the same window "
                "length and overlap)."
            )
        out = {}
        for key, u in self.uncond.items():
            start, end = self.frames[first][key], self.frames[last][key]
            out[key] = torch.stack([torch.cat([u, start.to(u.device)]), torch.cat([u, end.to(u.device)])], dim=2)
        return out

    def nbytes(self) -> int:
        tensors = list(self.uncond.values()) + [t for f in self.frames.values() for t in f.values()]
        return sum(t.numel() * t.element_size() for t in tensors)
