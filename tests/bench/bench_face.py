"""Face-motion extraction (mediapipe backend, CPU): frames per second at 512 x 512, and the head-pose
jitter on each driving clip raw and with smoothing 0.3 and 0.5.

Jitter = mean absolute second difference of yaw, pitch and roll (degrees per frame^2, the three angles
averaged): frame-to-frame shake, near 0 for a head that moves smoothly.
"""
from __future__ import annotations

import time

import numpy as np

SMOOTHING = (0.0, 0.3, 0.5)


def jitter_degrees(angles_deg: np.ndarray) -> float:
    """Mean absolute second difference of (F, 3) angles in degrees (degrees per frame^2)."""
    return float(np.abs(np.diff(angles_deg, n=2, axis=0)).mean())


def main() -> None:
    from hellomeme_core.face.analyzer import extract_face_motion
    from hellomeme_core.face.mediapipe_backend import MediapipeFaceAnalyzer
    from hellomeme_core.face.retarget import condition_images
    from hellomeme_core.media import read_video
    from tests.face.media_cache import DRIVING_VIDEOS, MEDIA

    clips = {n: read_video(MEDIA / "driving" / f"{n}.mp4") for n in DRIVING_VIDEOS}
    analyzer = MediapipeFaceAnalyzer()
    frames = np.concatenate([clips[n].frames for n in ("qie", "tbh", "ysll")])  # the 512 x 512 clips
    assert frames.shape[1:3] == (512, 512)
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

    print("head-pose jitter, mean |second difference| of yaw/pitch/roll (deg/frame^2): "
          + ", ".join("raw" if s == 0 else f"smoothing {s:g}" for s in SMOOTHING))
    totals = np.zeros(len(SMOOTHING))
    for name, clip in clips.items():
        values = [jitter_degrees(extract_face_motion(analyzer, clip.frames, clip.fps, smoothing=s).yaw_pitch_roll_degrees)
                  for s in SMOOTHING]
        totals += values
        size = f"{clip.size[0]}x{clip.size[1]}"
        print(f"  {name:5s} ({len(clip.frames)} frames, {size}, {clip.fps:g} fps): " + "  ".join(f"{v:.3f}" for v in values))
    print("  mean of the clips: " + "  ".join(f"{v / len(clips):.3f}" for v in totals))


if __name__ == "__main__":
    main()
