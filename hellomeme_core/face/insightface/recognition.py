"""ArcFace identity embeddings (the recognizer of insightface packs: w600k_r50.onnx, glintr100.onnx).

Pack conventions: the face is aligned by the similarity transform (rotation, uniform scale, shift; least
squares, Umeyama) taking its 5 detector keypoints onto the ArcFace template of a 112 x 112 crop, warped
bilinearly with black borders; the crop goes in as RGB ``(x - 127.5) / 127.5`` (both packs' recognizers are
PyTorch exports without normalisation inside); the 512 outputs are compared by cosine similarity.
"""
from __future__ import annotations

import cv2
import numpy as np

from hellomeme_core.errors import HelloMemeError
from hellomeme_core.face.face_parts import similarity_transform as face_similarity

# Where the eyes, nose tip and mouth corners of a 112 x 112 ArcFace crop are (the template all packs use).
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)
ALIGN_SIZE = 112
MEAN, STD = 127.5, 127.5


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (no reflection) taking the keypoints ``src`` (N, 2) onto ``dst`` (Umeyama);
    coinciding keypoints (a degenerate detection) are an error instead of a division by zero."""
    src = np.asarray(src, np.float64)
    if ((src - src.mean(0)) ** 2).sum() < 1e-12:
        raise HelloMemeError("insightface alignment: the 5 face keypoints coincide; the face cannot be aligned")
    return face_similarity(src, np.asarray(dst, np.float64))


def alignment_matrix(keypoints: np.ndarray, size: int = ALIGN_SIZE) -> np.ndarray:
    """2x3 matrix from image pixels to the ``size`` crop (the template scaled by size / 112)."""
    return similarity_transform(keypoints, ARCFACE_TEMPLATE * (size / ALIGN_SIZE))


def align_face(rgb: np.ndarray, keypoints: np.ndarray, size: int = ALIGN_SIZE) -> np.ndarray:
    """(size, size, 3) uint8 crop of the face whose 5 keypoints (5, 2) are given."""
    return cv2.warpAffine(np.ascontiguousarray(rgb[..., :3]), alignment_matrix(keypoints, size), (size, size),
                          flags=cv2.INTER_LINEAR, borderValue=0.0)


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class ArcFaceRecognizer:
    """ArcFace over an onnxruntime session: ``embed(crops)`` and ``embed_faces(rgb, keypoints)``."""

    def __init__(self, session):
        self.session = session
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        self.size = int(inp.shape[2])
        self.batch = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else None  # None: any

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, D) unit embeddings of aligned uint8 RGB crops (N, size, size, 3)."""
        crops = np.asarray(crops)
        if len(crops) == 0:
            return np.zeros((0, 512), np.float32)
        tensor = ((crops.astype(np.float32) - MEAN) / STD).transpose(0, 3, 1, 2)
        step = self.batch or 32  # bounded batches keep memory flat on long clips
        out = [self.session.run(None, {self.input_name: np.ascontiguousarray(tensor[i:i + step])})[0]
               for i in range(0, len(tensor), step)]
        return normalise(np.concatenate(out).reshape(len(crops), -1))

    def embed_faces(self, rgb: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        """(N, D) unit embeddings of the faces of one image given their keypoints (N, 5, 2)."""
        keypoints = np.asarray(keypoints).reshape(-1, 5, 2)
        return self.embed(np.stack([align_face(rgb, k, self.size) for k in keypoints]) if len(keypoints)
                          else np.zeros((0, self.size, self.size, 3), np.uint8))
