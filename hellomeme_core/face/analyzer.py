"""Picks a face backend, and turns its per-frame output into FACE_MOTION (no-face policy, smoothing)."""
from __future__ import annotations

import os

import numpy as np
import torch

from hellomeme_core.errors import HelloMemeError, MissingModelFileError
from hellomeme_core.face.face_choice import LARGEST
from hellomeme_core.face.frames import FaceAnalyzer, FrameAnalysis, Progress, check_frames
from hellomeme_core.face.mediapipe_backend import MediapipeFaceAnalyzer
from hellomeme_core.face.no_face import apply_fill, fill_plan
from hellomeme_core.face.official_backend import OfficialFaceAnalyzer
from hellomeme_core.face.smoothing import smooth_strength
from hellomeme_core.face.types import FaceMotion

# The backend contract is importable from here too, where callers of the extraction look for it.
__all__ = ["BACKENDS", "DETECTORS", "FaceAnalyzer", "FrameAnalysis", "Progress", "check_frames", "extract_face_motion",
           "load_face_analyzer"]


def _face_boxes(landmarks: np.ndarray) -> np.ndarray:
    return np.concatenate([landmarks.min(axis=1), landmarks.max(axis=1)], axis=1)


# Channel scales for smoothing: typical fast speeds per second that should pass with little lag.
_SPEED_RAD, _SPEED_TRANS, _SPEED_COEFF, _SPEED_PX = 1.5, 0.05, 3.0, 200.0


def extract_face_motion(
    analyzer: FaceAnalyzer,
    frames: np.ndarray,
    fps: float = 0.0,
    audio_path: str | None = None,
    no_face_policy: str = "hold",
    smoothing: float = 0.0,
    progress: Progress | None = None,
    source: str = "input",
    face_index: int = LARGEST,
    identity: np.ndarray | None = None,
) -> FaceMotion:
    """Analyze frames (F, H, W, 3) and return their FACE_MOTION.

    Frames without a face follow ``no_face_policy`` (hold / interpolate / drop / error) and are counted in
    ``frames_without_face`` under every policy (``no_face_indices`` lists them); ``smoothing``
    (0..1) is the One Euro strength applied over time to pose, expression and landmarks. ``face_index``
    picks the face when a frame has several: -1 the largest (official), 0, 1, ... counted from the left
    (a frame with fewer faces counts as a frame without a face). ``identity`` (an RGB image of one person)
    follows that person instead, chosen in every frame by the analyzer's insightface pack; with the
    insightface detector, its boxes (largest / n-th from the left) say where the landmarks are read.
    """
    frames = check_frames(frames)
    if identity is not None or getattr(analyzer, "detector", "built-in") == "insightface":
        from hellomeme_core.face.insightface.follow import track_faces

        track = track_faces(insightface_pack(analyzer, "identity_image" if identity is not None else "detector"),
                            frames, face_index, identity)
        analysis = analyzer.analyze(frames, progress, face_index=face_index, target_boxes=track.boxes)
    else:
        analysis = analyzer.analyze(frames, progress, face_index=face_index)
    rows, pairs, weight = fill_plan(analysis.found, no_face_policy, source=source)
    fill = lambda values: apply_fill(values, pairs, weight)  # noqa: E731
    angles, translation = fill(analysis.angles), fill(analysis.translation)
    expression, landmarks = fill(analysis.expression), fill(analysis.landmarks)
    extras = {k: fill(v) for k, v in analysis.per_frame_extras.items()}
    if smoothing > 0 and len(rows) > 1:
        rate = fps if fps > 0 else 25.0
        angles = smooth_strength(angles, rate, smoothing, _SPEED_RAD)
        translation = smooth_strength(translation, rate, smoothing, _SPEED_TRANS)
        expression = np.clip(smooth_strength(expression, rate, smoothing, _SPEED_COEFF), 0.0, 1.0)
        landmarks = smooth_strength(landmarks, rate, smoothing, _SPEED_PX)
    height, width = frames.shape[1:3]
    motion = FaceMotion(
        angles=angles, translation=translation, expression=expression, face_found=analysis.found[rows],
        landmarks=landmarks, face_boxes=_face_boxes(landmarks), crop_box=analysis.crop_box, frame_indices=rows,
        fps=float(fps), source_size=(int(width), int(height)), audio_path=audio_path, backend=analyzer.name,
        no_face_policy=no_face_policy, smoothing=float(smoothing), no_face_indices=np.flatnonzero(~analysis.found),
        source_frames=len(frames),
    )
    if "face_parts" in extras:
        motion.face_parts = torch.from_numpy(np.ascontiguousarray(extras.pop("face_parts")))
    if "pd_fpg" in extras:
        motion.pd_fpg = torch.from_numpy(np.ascontiguousarray(extras.pop("pd_fpg")))
    motion.extras.update(extras)
    motion.extras.update({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in analysis.constants.items()})
    return motion


BACKENDS = ("mediapipe", "official")
DETECTORS = ("built-in", "insightface")


def insightface_pack(analyzer: FaceAnalyzer, needed_for: str):
    """The analyzer's insightface pack, or an error saying what needs it and where the pack goes."""
    pack = getattr(analyzer, "insightface", None)
    if pack is None:
        why = getattr(analyzer, "insightface_missing", "") or "no insightface pack was given to the face analyzer"
        raise MissingModelFileError(f"{needed_for} needs an insightface model pack (antelopev2 or buffalo_l): {why}")
    return pack


def load_face_analyzer(backend: str = "mediapipe", device: str = "auto", model_dir: str | None = None,
                       pd_fgc_path: str | os.PathLike | None = None, detector: str = "built-in",
                       insightface=None) -> FaceAnalyzer:
    """The analyzer for ``backend``: "mediapipe" (bundled, CPU) or "official" (HelloMeme ONNX toolkit); with
    ``pd_fgc_path`` (songkey/pd_fgc_motion, folder or file) it also returns the PD-FGC embedding ``pd_fpg``,
    its encoder run on ``device`` ("auto": CUDA when torch has it). ``detector`` "insightface" finds the faces
    with the pack ``insightface`` (an ``InsightFacePack``), which also serves following a face by identity."""
    if detector not in DETECTORS:
        raise HelloMemeError(f"face analyzer: unknown detector {detector!r}; choose one of {DETECTORS}")
    if detector == "insightface" and insightface is None:
        raise MissingModelFileError("face analyzer: the insightface detector needs an insightface model pack "
                                    "(antelopev2 or buffalo_l in ComfyUI/models/insightface)")
    if backend == "mediapipe":
        analyzer = MediapipeFaceAnalyzer()
    elif backend == "official":
        analyzer = OfficialFaceAnalyzer(model_dir=model_dir, device=device)
    else:
        raise HelloMemeError(f"face analyzer: unknown backend {backend!r}; choose one of {BACKENDS}")
    analyzer.detector, analyzer.insightface = detector, insightface
    if pd_fgc_path is not None:
        analyzer.load_pd_fgc(pd_fgc_path, device)
    return analyzer
