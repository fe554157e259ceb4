"""onnxruntime sessions for the face models (official toolkit, insightface packs) on the chosen device."""
from __future__ import annotations

from pathlib import Path

from hellomeme_core.errors import HelloMemeError


def onnx_session(path: Path, device: str, owner: str, fix: str):
    """A session for ``path`` on ``device`` ("cpu", "cuda", or "auto": CUDA when onnxruntime has it).

    ``owner`` names the models in errors (e.g. "official face toolkit"); ``fix`` says how to replace a bad file.
    """
    import onnxruntime

    available = onnxruntime.get_available_providers()
    want_cuda = device in ("auto", "cuda") and "CUDAExecutionProvider" in available
    if device == "cuda" and not want_cuda:
        raise HelloMemeError(f"{owner}: device 'cuda' asked but onnxruntime offers only {available}; "
                             "install onnxruntime-gpu or choose 'auto'/'cpu'")
    providers = (["CUDAExecutionProvider"] if want_cuda else []) + ["CPUExecutionProvider"]
    try:
        return onnxruntime.InferenceSession(str(path), providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise HelloMemeError(f"{owner}: {path} is not a loadable ONNX model ({exc}); {fix}") from None
