"""The report of two video files: decode, analyse both faces, build the report, write JSON and PNGs."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hellomeme_core.errors import MediaError
from hellomeme_core.face.insightface.packs import DEFAULT_PACK, ENV_VAR, find_pack
from hellomeme_core.face.types import FaceMotion
from hellomeme_core.report.report import DEFAULT_MAX_LAG, FidelityReport, build_report

REPORT_JSON = "report.json"


@dataclass
class VideoReport:
    report: FidelityReport
    files: list[Path]  # written files (JSON first), empty without an output folder


def _motion(analyzer, path: str | Path, role: str, max_frames: int | None) -> tuple[FaceMotion, np.ndarray]:
    from hellomeme_core.face.analyzer import extract_face_motion
    from hellomeme_core.face.native_logs import quiet_native_logs
    from hellomeme_core.media import read_media

    try:
        clip = read_media(path, max_frames)
    except MediaError as exc:
        raise MediaError(f"{role}: {exc}") from None
    with quiet_native_logs():  # the source named in a no-face error says which video it was
        motion = extract_face_motion(analyzer, clip.frames, clip.fps, None, "hold", source=f"{role} video {path}")
    return motion, clip.frames


def identity_pack(insightface_dir: str | Path | None, pack: str = DEFAULT_PACK) -> Path | None:
    """The insightface pack folder for the identity similarity: ``pack`` under ``insightface_dir`` (else under
    $HELLOMEME_INSIGHTFACE_DIR); None when neither is given. A folder given but without the pack is an error
    naming the files expected."""
    folder = insightface_dir or os.environ.get(ENV_VAR)
    if not folder:
        return None
    return find_pack([folder], pack)


def report_videos(driving: str | Path, result: str | Path, reference: str | Path | None = None,
                  out_dir: str | Path | None = None, pixels: bool = False, analyzer=None,
                  max_lag: int = DEFAULT_MAX_LAG, max_frames: int | None = None,
                  identity_pack_dir: str | Path | None = None) -> VideoReport:
    """Analyse ``driving`` and ``result`` (and ``reference``, image or video) with ``analyzer`` (default:
    mediapipe) and build their report; with ``out_dir``, write report.json, curves.png and errors.png.
    ``pixels``: also PSNR/SSIM (for a result that re-enacts its own driving clip). ``identity_pack_dir``
    (an insightface pack folder) with a ``reference``: also the ArcFace identity similarity of every result
    frame to the reference (CSIM)."""
    from hellomeme_core.face.analyzer import load_face_analyzer

    for role, path in (("driving", driving), ("result", result), ("reference", reference)):
        if path is not None and not Path(path).is_file():
            raise MediaError(f"{role}: {path} does not exist")
    analyzer = analyzer or load_face_analyzer("mediapipe")
    d_motion, d_frames = _motion(analyzer, driving, "driving", max_frames)
    r_motion, r_frames = _motion(analyzer, result, "result", max_frames)
    ref_motion, ref_frames = _motion(analyzer, reference, "reference", 1) if reference is not None else (None, None)
    identity = None
    if identity_pack_dir is not None and ref_frames is not None:
        from hellomeme_core.face.insightface.identity import identity_similarity

        identity = identity_similarity(ref_frames[0], r_frames, identity_pack_dir)
    report = build_report(d_motion, r_motion, ref_motion, d_frames if pixels else None, r_frames if pixels else None,
                          identity=identity, max_lag=max_lag)
    report.summary["files"] = {"driving": str(driving), "result": str(result),
                               "reference": None if reference is None else str(reference)}
    return VideoReport(report, write_report_files(report, out_dir) if out_dir is not None else [])


def write_report_files(report: FidelityReport, out_dir: str | Path) -> list[Path]:
    """report.json, curves.png, errors.png in ``out_dir``."""
    from hellomeme_core.report.plots import figure_png, report_images

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [report.save_json(out / REPORT_JSON)]
    for stem, figure in report_images(report).items():
        path = out / f"{stem}.png"
        path.write_bytes(figure_png(figure))
        files.append(path)
    return files


def job_fidelity(driving: str | Path, result: str | Path, out_dir: str | Path, reference: str | Path | None = None,
                 identity_pack_dir: str | Path | None = None) -> dict:
    """The batch's fidelity columns of one finished job (its report files written to ``out_dir``), or
    ``{"error": ...}`` when the report cannot be made (no face in the output, ...): never raises a
    HelloMemeError, so a report problem does not fail a job whose video is fine. With an insightface pack
    folder and the job's reference: the identity similarity columns too."""
    from hellomeme_core.errors import HelloMemeError

    try:
        done = report_videos(driving, result, reference if identity_pack_dir else None, out_dir,
                             identity_pack_dir=identity_pack_dir)
    except HelloMemeError as exc:
        return {"error": str(exc)}
    return {**done.report.columns(), "report": str(done.files[0])}
