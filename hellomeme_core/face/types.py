"""FACE_MOTION: what the driving clip (or a reference portrait) contributes, per frame."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hellomeme_core.errors import HelloMemeError, ShapeMismatchError
from hellomeme_core.face.arkit import ARKIT_NAMES, ARKIT_ORDER_NOTE
from hellomeme_core.face.expression import COEFFICIENT_DOC
from hellomeme_core.face.head_pose import degrees_yaw_pitch_roll, euler_to_matrix

__all__ = ["ARKIT_NAMES", "ARKIT_ORDER_NOTE", "FaceMotion"]  # the names stay importable from here


@dataclass
class FaceMotion:
    """Per-frame head pose and expression of one face track.

    angles: (F, 3) float32 radians (pitch, yaw, roll), official 3DMM conventions (see ``head_pose``).
    translation: (F, 3) float32 3DMM translation measured in the 512 crop (``crop_box``).
    expression: (F, 51) float32 ARKit coefficients in [0, 1], columns named by ``ARKIT_NAMES``.
    face_found: (F,) bool: False where the frame had no face and its values were filled by ``no_face_policy``.
    landmarks: (F, N, 2) float32 in source pixels (478 mediapipe points or 222 official ones).
    face_boxes: (F, 4) float32 per-frame landmark boxes x0, y0, x1, y1 in source pixels.
    crop_box: (4,) int square x0, y0, x1, y1: the official clip crop resized to 512 for pose.
    frame_indices: (F,) source frame index of each row (differs from arange only under the drop policy).
    no_face_indices: source frame indices in which no face was found, whatever the policy did with them
        (under "drop" those frames have no row, so ``face_found`` alone cannot count them); None when
        unknown (then ``face_found`` is counted). ``source_frames``: how many frames were analysed (0 = unknown).
    face_parts: (F, 3, D) CLIP embeddings of the two eyes and the mouth (official backend + CLIP vision).
    pd_fpg: (F, D) PD-FGC motion embedding (official backend with the PD-FGC encoder).
    """

    angles: np.ndarray
    translation: np.ndarray
    expression: np.ndarray
    face_found: np.ndarray
    landmarks: np.ndarray
    face_boxes: np.ndarray
    crop_box: np.ndarray
    frame_indices: np.ndarray
    fps: float = 0.0
    source_size: tuple[int, int] = (0, 0)  # (width, height)
    audio_path: str | None = None
    backend: str = "mediapipe"
    no_face_policy: str = "hold"
    smoothing: float = 0.0
    no_face_indices: np.ndarray | None = None
    source_frames: int = 0
    face_parts: torch.Tensor | None = None
    pd_fpg: torch.Tensor | None = None
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        frames = len(self.angles)
        for name, shape in (("angles", (frames, 3)), ("translation", (frames, 3)), ("expression", (frames, 51))):
            value = np.asarray(getattr(self, name), dtype=np.float32)
            if value.shape != shape:
                raise ShapeMismatchError(f"FaceMotion: {name} must have shape {shape}, got {value.shape}")
            setattr(self, name, value)
        self.face_found = np.asarray(self.face_found, dtype=bool).reshape(frames)
        self.frame_indices = np.asarray(self.frame_indices, dtype=np.int64).reshape(frames)
        self.landmarks = np.asarray(self.landmarks, dtype=np.float32)
        self.face_boxes = np.asarray(self.face_boxes, dtype=np.float32).reshape(frames, 4)
        self.crop_box = np.asarray(self.crop_box, dtype=np.int64).reshape(4)
        if self.no_face_indices is not None:
            self.no_face_indices = np.asarray(self.no_face_indices, dtype=np.int64).reshape(-1)
        self.source_frames = int(self.source_frames or 0)

    def __len__(self) -> int:
        return len(self.angles)

    @property
    def rotation(self) -> np.ndarray:
        """(F, 3, 3) rotation matrices R = Rz Ry Rx (column vectors, x right, y up, z toward the viewer)."""
        return euler_to_matrix(self.angles.astype(np.float64))

    @property
    def yaw_pitch_roll_degrees(self) -> np.ndarray:
        return degrees_yaw_pitch_roll(self.angles)

    @property
    def frames_without_face(self) -> int:
        """How many source frames had no face, under every no-face policy (dropped frames included)."""
        if self.no_face_indices is not None:
            return int(len(self.no_face_indices))
        return int((~self.face_found).sum())

    @property
    def source_frame_count(self) -> int:
        """Frames analysed (rows + dropped frames)."""
        return self.source_frames or len(self) + (self.frames_without_face - int((~self.face_found).sum()))

    def coefficient(self, name: str) -> np.ndarray:
        """(F,) one named ARKit coefficient."""
        return self.expression[:, ARKIT_NAMES.index(name)]

    def drive_coeff(self) -> torch.Tensor:
        """(1, F, 51) float32, the ``drive_coeff`` the official HM(3) expression adapters take."""
        return torch.from_numpy(self.expression.copy())[None]

    def expression_inputs(self) -> dict[str, torch.Tensor]:
        """The official expression inputs with a batch axis, those this motion has: ``drive_coeff``
        (1, F, 51), ``face_parts`` (1, F, 3, D), ``pd_fpg`` (1, F, 548), ``neg_pd_fpg`` (1, 1, 548)."""
        out = {"drive_coeff": self.drive_coeff()}
        if self.face_parts is not None:
            out["face_parts"] = self.face_parts[None]
        if self.pd_fpg is not None:
            out["pd_fpg"] = self.pd_fpg[None]
        if "neg_pd_fpg" in self.extras:
            out["neg_pd_fpg"] = self.extras["neg_pd_fpg"].reshape(1, 1, -1)
        return out

    def subset(self, rows: np.ndarray | slice) -> FaceMotion:
        """The same motion restricted to some rows (frames); the frames without a face it keeps are those
        of the source range its rows span (dropped frames between two kept rows count)."""
        pick = lambda a: None if a is None else a[rows]  # noqa: E731
        indices = self.frame_indices[rows]
        missing, source_frames = self.no_face_indices, self.source_frames
        if not np.array_equal(indices, self.frame_indices):
            low, high = (int(indices.min()), int(indices.max())) if len(indices) else (0, -1)
            source_frames = high - low + 1
            if missing is not None:
                missing = missing[(missing >= low) & (missing <= high)]
        return FaceMotion(
            angles=self.angles[rows], translation=self.translation[rows], expression=self.expression[rows],
            face_found=self.face_found[rows], landmarks=self.landmarks[rows], face_boxes=self.face_boxes[rows],
            crop_box=self.crop_box, frame_indices=self.frame_indices[rows], fps=self.fps,
            source_size=self.source_size, audio_path=self.audio_path, backend=self.backend,
            no_face_policy=self.no_face_policy, smoothing=self.smoothing, no_face_indices=missing,
            source_frames=source_frames, face_parts=pick(self.face_parts), pd_fpg=pick(self.pd_fpg),
            extras=dict(self.extras),
        )

    # ---- JSON -------------------------------------------------------------------------------------
    def to_json(self, include_landmarks: bool = True) -> dict:
        """A JSON-serialisable dict: header plus one record per frame."""
        rotation = self.rotation
        degrees = self.yaw_pitch_roll_degrees
        frames = []
        for i in range(len(self)):
            record = {
                "index": int(self.frame_indices[i]),
                "face_found": bool(self.face_found[i]),
                "rotation_matrix": np.round(rotation[i], 6).tolist(),
                "yaw_pitch_roll_degrees": np.round(degrees[i], 4).tolist(),
                "angles_radians_pitch_yaw_roll": self.angles[i].tolist(),
                "translation": self.translation[i].tolist(),
                "expression": {n: round(float(v), 5) for n, v in zip(ARKIT_NAMES, self.expression[i])},
                "face_box": np.round(self.face_boxes[i], 2).tolist(),
            }
            if include_landmarks:
                record["landmarks"] = np.round(self.landmarks[i], 2).tolist()
            frames.append(record)
        return {
            "format": "hellomeme.face_motion/1",
            "backend": self.backend,
            "fps": self.fps,
            "source_size": list(self.source_size),
            "audio_path": self.audio_path,
            "crop_box": self.crop_box.tolist(),
            "no_face_policy": self.no_face_policy,
            "smoothing": self.smoothing,
            "frames_without_face": self.frames_without_face,
            "no_face_frames": self._no_face_frames().tolist(),
            "source_frames": self.source_frame_count,
            "conventions": self.conventions(),
            "frames": frames,
        }

    def _no_face_frames(self) -> np.ndarray:
        if self.no_face_indices is not None:
            return self.no_face_indices
        return self.frame_indices[~self.face_found]

    def conventions(self) -> dict:
        """What the numbers in the JSON mean (pose axes and signs, units, the expression coefficients)."""
        out = {
            "pose": "angles radians (pitch, yaw, roll) about camera (x, y, z), R = Rz(roll) Ry(yaw) Rx(pitch) on column "
                    "vectors (official 3DMM); camera x right, y up, z toward the viewer; +yaw turns the face toward the "
                    "image right, +pitch tips it down (chin down), +roll turns it counter-clockwise on screen",
            "translation": "official 3DMM units measured in the 512 crop (crop_box); z < 0, more negative = farther",
            "expression": "51 coefficients in [0, 1] named by ARKit (Left/Right = the subject's sides)",
            "arkit_order": ARKIT_ORDER_NOTE,
        }
        if self.backend == "mediapipe":
            out["expression_source"] = ("geometric estimates from mediapipe face-mesh landmarks (not the official ARKit "
                                        "network); each coefficient's measure and raw range below")
            out["coefficients"] = dict(COEFFICIENT_DOC)
        elif self.backend == "official":
            out["expression_source"] = "outputs of the official hello_arkit_blendshape.onnx, unchanged"
        return out

    def save_json(self, path: str | Path, include_landmarks: bool = True) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(include_landmarks)))
        return path

    @classmethod
    def from_json(cls, data: dict | str | Path) -> FaceMotion:
        """Inverse of ``to_json`` (a dict, a JSON string or a file path)."""
        if isinstance(data, Path) or (isinstance(data, str) and not data.lstrip().startswith("{")):
            data = json.loads(Path(data).read_text())
        elif isinstance(data, str):
            data = json.loads(data)
        if data.get("format") != "hellomeme.face_motion/1":
            raise HelloMemeError("FaceMotion.from_json: not a hellomeme face motion file (format field missing or different)")
        frames = data["frames"]
        if not frames:
            raise HelloMemeError("FaceMotion.from_json: the file holds no frames")
        has_landmarks = "landmarks" in frames[0]
        return cls(
            angles=np.array([f["angles_radians_pitch_yaw_roll"] for f in frames], dtype=np.float32),
            translation=np.array([f["translation"] for f in frames], dtype=np.float32),
            expression=np.array([[f["expression"][n] for n in ARKIT_NAMES] for f in frames], dtype=np.float32),
            face_found=np.array([f["face_found"] for f in frames]),
            landmarks=np.array([f["landmarks"] for f in frames], dtype=np.float32) if has_landmarks
            else np.zeros((len(frames), 0, 2), np.float32),
            face_boxes=np.array([f["face_box"] for f in frames], dtype=np.float32),
            crop_box=np.array(data["crop_box"]),
            frame_indices=np.array([f["index"] for f in frames]),
            fps=float(data.get("fps") or 0.0),
            source_size=tuple(data.get("source_size") or (0, 0)),
            audio_path=data.get("audio_path"),
            backend=data.get("backend", "mediapipe"),
            no_face_policy=data.get("no_face_policy", "hold"),
            smoothing=float(data.get("smoothing", 0.0)),
            no_face_indices=np.array(data["no_face_frames"], dtype=np.int64) if "no_face_frames" in data else None,
            source_frames=int(data.get("source_frames") or 0),
        )
