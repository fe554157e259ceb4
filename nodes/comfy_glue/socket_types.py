"""The extension's own socket types (typed custom sockets of ComfyUI's V3 node API)."""
from __future__ import annotations

from comfy_api.latest import io

HMModels = io.Custom("HM_MODELS")
HMReference = io.Custom("HM_REFERENCE")
FaceAnalyzer = io.Custom("FACE_ANALYZER")
FaceMotion = io.Custom("FACE_MOTION")
BodyMotion = io.Custom("BODY_MOTION")
