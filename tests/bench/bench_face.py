"""Frames per second of face-motion extraction (mediapipe backend, CPU) at 512 x 512."""
from __future__ import annotations

import time

import numpy as np


def main() -> None:
    from hellomeme_core.face.analyzer import MediapipeFaceAnalyzer, extract_face_motion
    from hellomeme_core.face.retarget import condition_images
    from tests.face.media_cache import MEDIA

    from hellomeme_core.media import read_video

    frames = np.concatenate([read_video(MEDIA / "driving" / f"{n}.mp4").frames for n in ("qie", "tbh", "ysll")])
    assert frames.shape[1:3] == (512, 512)
    analyzer = MediapipeFaceAnalyzer()
    extract_face_motion(analyzer, frames[:5], 15.0)  # warm-up: model load
    start = time.perf_counter()
    motion = extract_face_motion(analyzer, frames, 15.0, smoothing=0.3)
    elapsed = time.perf_counter() - start
    print(f"face motion extraction (mediapipe, 512x512, {len(frames)} frames): {len(frames) / elapsed:.1f} frames/s "
          f"({motion.frames_without_face} without a face)")
    start = time.perf_counter()
    condition_images(motion, None, 0.5)
    elapsed = time.perf_counter() - start
    print(f"pose condition rendering (512x512): {len(frames) / elapsed:.1f} frames/s")


if __name__ == "__main__":
    main()
