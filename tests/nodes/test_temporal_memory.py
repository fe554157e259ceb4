"""Peak memory of the temporal stage does not grow with the number of frames beyond the latents.

The temporal stage runs window by window (ComfyUI's context windows), so 48 frames must peak no higher
than 12 frames, up to the extra latents themselves. Measured as the rise of the process RSS (sampled in
a thread) above its level right before sampling; the control features of every frame are computed by
Apply HelloMeme before that point (they are the per-frame inputs, like the latents).
"""
from __future__ import annotations

import threading
import time

import psutil
import pytest
import torch

from tests.nodes import _fixtures as fx
from tests.nodes.test_hm_nodes import LAT, SIZE, hm_models, comfy, hm_dir, model, reference, texts  # noqa: F401  (fixtures)

WINDOW, OVERLAP = 4, 1  # small windows keep the CPU run short; the property is the same


class PeakRSS:
    """Highest RSS seen while the block runs, sampled every few milliseconds."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def _run(self):
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self):
        self.start = psutil.Process().memory_info().rss
        self.peak = self.start
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def rise(self) -> int:
        return self.peak - self.start


def _temporal_peak(comfy, model, hm_models, reference, texts, frames: int) -> int:
    from nodes.apply import ApplyHelloMeme
    from nodes.temporal import ApplyHelloMemeTemporal

    image_stage = ApplyHelloMeme.execute(model, hm_models, reference, fx.condition_images(frames, SIZE), fx.face_motion(frames)).result[0]
    temporal = ApplyHelloMemeTemporal.execute(image_stage, hm_models, WINDOW, OVERLAP).result[0]
    latent = {"samples": torch.zeros(frames, 4, LAT, LAT)}
    sampler = comfy.KSampler()
    sampler.sample(temporal, 0, 1, 1.0, "euler", "normal", texts[0], texts[1], {"samples": torch.zeros(WINDOW, 4, LAT, LAT)})
    with PeakRSS() as peak:
        out = sampler.sample(temporal, 0, 1, 1.0, "euler", "normal", texts[0], texts[1], latent, denoise=1.0)[0]["samples"]
    assert out.shape == (frames, 4, LAT, LAT) and torch.isfinite(out).all()
    return peak.rise


@pytest.mark.slow
def test_temporal_peak_memory_independent_of_frames(comfy, model, hm_models, reference, texts):  # noqa: F811
    small = _temporal_peak(comfy, model, hm_models, reference, texts, 12)
    large = _temporal_peak(comfy, model, hm_models, reference, texts, 48)
    latent_bytes = (48 - 12) * 4 * LAT * LAT * 4
    allowed = 16 * latent_bytes + 48 * 2**20  # a few copies of the extra latents + allocator noise
    print(f"temporal stage peak rise: 12 frames {small / 2**20:.1f} MiB, 48 frames {large / 2**20:.1f} MiB")
    assert large - small <= allowed, f"peak grew by {(large - small) / 2**20:.1f} MiB from 12 to 48 frames"
