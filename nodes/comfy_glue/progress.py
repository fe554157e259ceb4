"""Progress bars a person sees on the node, with Cancel honoured at every update."""
from __future__ import annotations

from collections.abc import Callable

import comfy.model_management
import comfy.utils


def node_progress(total: int) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback: ComfyUI's bar of the running node, and Cancel between updates."""
    bar = comfy.utils.ProgressBar(max(1, total))

    def update(done: int, of: int | None = None) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        bar.update_absolute(done, of if of is not None else total)

    return update
