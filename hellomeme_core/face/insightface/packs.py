"""Finding an insightface model pack and telling its detector from its recognizer.

A pack is a folder of ONNX files (``antelopev2``: scrfd_10g_bnkps.onnx, glintr100.onnx, ...; ``buffalo_l``:
det_10g.onnx, w600k_r50.onnx, ...). Artists keep them in ``ComfyUI/models/insightface/models/<pack>/`` (where
IPAdapter FaceID, InstantID and face-swap nodes look) or ``ComfyUI/models/insightface/<pack>/``; both are searched,
and the doubled ``<pack>/<pack>/`` a zip sometimes leaves. Which file is the detector and which the recognizer
is decided by the model's signature (as insightface's own router does): the detector has 9 outputs (3 strides x
scores, boxes, 5 keypoints), the recognizer one square input of 112 (or a multiple of 16 above) and one output.
The files are never downloaded: their licence is non-commercial research only, so the user places them.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from hellomeme_core.errors import HelloMemeError, MissingModelFileError
from hellomeme_core.face.onnx_session import onnx_session

# The two files of each known pack this extension reads (the pack's landmark / gender-age models are not used).
KNOWN_PACKS = {
    "antelopev2": {"detector": "scrfd_10g_bnkps.onnx", "recognizer": "glintr100.onnx"},
    "buffalo_l": {"detector": "det_10g.onnx", "recognizer": "w600k_r50.onnx"},
}
DEFAULT_PACK = "antelopev2"
FOLDER_NAME = "insightface"
LICENCE_NOTE = ("insightface model packs: non-commercial research use only (insightface's model licence); "
                "not downloaded by this extension")


def _pack_folders(base: Path, name: str) -> list[Path]:
    """Where a pack called ``name`` may sit under one insightface models folder, in search order."""
    out = []
    for folder in (base / name, base / "models" / name):
        out += [folder, folder / name]  # a zip extracted into a folder of its own name
    return out


def _has_onnx(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix == ".onnx" for p in folder.iterdir())


def list_packs(bases: Iterable[str | os.PathLike]) -> list[str]:
    """Names of the folders holding ONNX files under the insightface folders (``<base>/<pack>`` or
    ``<base>/models/<pack>``), sorted, without duplicates."""
    names = set()
    for base in map(Path, bases):
        for parent in (base, base / "models"):
            if parent.is_dir():
                names |= {p.name for p in parent.iterdir() if p.is_dir() and p.name != "models"
                          and any(_has_onnx(f) for f in (p, p / p.name))}
    return sorted(names)


def expected_files_text() -> str:
    """The files each known pack needs, for messages."""
    return "; ".join(f"{name}: {files['detector']} (detector) and {files['recognizer']} (recognition)"
                     for name, files in KNOWN_PACKS.items())


def missing_pack_message(name: str, bases: list[Path]) -> str:
    """Where the pack ``name`` goes and which files it needs; says it is never downloaded."""
    folders = ", ".join(str(b) for b in bases) or "no folder is registered as 'insightface'"
    where = f"{bases[0] / 'models' / name}" if bases else f"ComfyUI/models/insightface/models/{name}"
    return (f"insightface pack {name!r} was not found in the insightface model folders ({folders}). Put the pack's "
            f"ONNX files in {where}/ (or {bases[0] / name if bases else 'ComfyUI/models/insightface/' + name}/), as "
            f"IPAdapter FaceID and InstantID use them. Expected files - {expected_files_text()}. The packs are "
            "licensed for non-commercial research only, so this extension never downloads them.")


def find_pack(bases: Iterable[str | os.PathLike], name: str) -> Path:
    """The folder of pack ``name`` (the first one holding ONNX files), or MissingModelFileError naming the
    folders searched and the files expected."""
    bases = [Path(b) for b in bases]
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise HelloMemeError(f"insightface pack name {name!r} is not a folder name; use e.g. {DEFAULT_PACK!r}")
    for base in bases:
        for folder in _pack_folders(base, name):
            if _has_onnx(folder):
                return folder
    raise MissingModelFileError(missing_pack_message(name, bases))


def session(path: Path, device: str = "cpu"):
    """An onnxruntime session on ``device`` ("cpu", "cuda", or "auto": CUDA when onnxruntime has it)."""
    return onnx_session(path, device, "insightface pack", "copy the pack again from where you got it")


def role(sess) -> str | None:
    """'detector', 'recognizer' or None (landmark, gender/age, swapper models) from a session's signature."""
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    shape = inputs[0].shape
    if len(outputs) == 9:  # SCRFD with keypoints: 3 strides x (scores, boxes, keypoints)
        return "detector"
    if (len(inputs) == 1 and len(outputs) == 1 and len(shape) == 4 and isinstance(shape[2], int)
            and shape[2] == shape[3] and shape[2] >= 112 and shape[2] % 16 == 0 and shape[2] != 192):
        return "recognizer"  # 192 x 192 is the landmark models' input
    return None


def classify_pack(folder: Path, device: str = "cpu") -> dict:
    """``{"detector": session, "recognizer": session}`` of a pack folder: the known file names are tried first,
    every other ONNX file after them, each judged by its signature; an error names what is missing."""
    folder = Path(folder)
    known = [f for files in KNOWN_PACKS.values() for f in files.values()]
    files = sorted(folder.glob("*.onnx"), key=lambda p: (p.name not in known, p.name))
    found: dict = {}
    for path in files:
        if len(found) == 2:
            break
        sess = session(path, device)
        kind = role(sess)
        if kind is not None and kind not in found:
            found[kind] = sess
    if len(found) < 2:
        lacking = " and ".join(k for k in ("detector", "recognizer") if k not in found)
        raise MissingModelFileError(
            f"insightface pack {folder} has no {lacking} model (its ONNX files: "
            f"{', '.join(p.name for p in files) or 'none'}). Expected files - {expected_files_text()}; a detector "
            "with 5 keypoints (SCRFD, 9 outputs) and an ArcFace recognizer (112 x 112 input) are needed.")
    return found


class InsightFacePack:
    """One pack folder; its detector and recognizer are loaded on first use (``detector``, ``recognizer``)."""

    def __init__(self, folder: str | os.PathLike, device: str = "cpu"):
        self.folder = Path(folder)
        self.name = self.folder.name
        self.device = device
        self._models: dict | None = None

    def _load(self) -> dict:
        if self._models is None:
            from hellomeme_core.face.insightface.detector import ScrfdDetector
            from hellomeme_core.face.insightface.recognition import ArcFaceRecognizer

            sessions = classify_pack(self.folder, self.device)
            self._models = {"detector": ScrfdDetector(sessions["detector"]),
                            "recognizer": ArcFaceRecognizer(sessions["recognizer"])}
        return self._models

    @property
    def detector(self):
        """The pack's SCRFD detector (``ScrfdDetector``)."""
        return self._load()["detector"]

    @property
    def recognizer(self):
        """The pack's ArcFace recognizer (``ArcFaceRecognizer``)."""
        return self._load()["recognizer"]

    def __repr__(self) -> str:
        return f"InsightFacePack({str(self.folder)!r})"


ENV_VAR = "HELLOMEME_INSIGHTFACE_DIR"  # an insightface models folder for the command line and the real-pack tests


def pack_report(bases: Iterable[str | os.PathLike]) -> list[dict]:
    """For each known pack: ``{"id", "status" (ok / incomplete / missing), "path", "missing"}``, from file names
    only (nothing is loaded); a folder of another name with ONNX files is reported as found, unchecked."""
    bases = [Path(b) for b in bases]
    out = []
    for name, files in KNOWN_PACKS.items():
        try:
            folder = find_pack(bases, name)
        except MissingModelFileError:
            out.append({"id": name, "status": "missing", "path": None, "missing": list(files.values())})
            continue
        lacking = [f for f in files.values() if not (folder / f).is_file()]
        out.append({"id": name, "status": "incomplete" if lacking else "ok", "path": str(folder), "missing": lacking})
    for name in list_packs(bases):
        if name not in KNOWN_PACKS:
            out.append({"id": name, "status": "found", "path": str(find_pack(bases, name)), "missing": []})
    return out
