"""The motion-fidelity report of a result against its driving clip: per-frame arrays, a summary, JSON."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hellomeme_core.errors import HelloMemeError
from hellomeme_core.face.arkit import ARKIT_NAMES
from hellomeme_core.face.types import FaceMotion
from hellomeme_core.report import metrics

FORMAT = "hellomeme.fidelity_report/1"
DEFAULT_MAX_LAG = 12
AXES = ("yaw", "pitch", "roll")
# Below this mean correlation at the best lag the curves hardly follow each other: the lag is a guess.
RELIABLE_DELAY = 0.5


@dataclass
class FidelityReport:
    """Per-frame measures (``per_frame``: name -> (P,) array over the compared frame pairs), the summary,
    and notes that say how frames were paired, how the delay was found and what each measure's limits are."""

    per_frame: dict[str, np.ndarray]
    summary: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    delay_curve: np.ndarray | None = None  # correlation per lag, -max_lag..max_lag

    @property
    def frames(self) -> int:
        return len(self.per_frame["time"])

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; NaN is null, an infinite PSNR (identical frames) is the string "inf"."""
        return _clean({
            "format": FORMAT, "summary": self.summary, "notes": self.notes,
            "delay_curve": None if self.delay_curve is None else self.delay_curve.tolist(),
            "per_frame": {name: values.tolist() for name, values in self.per_frame.items()},
        })

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1))
        return path

    def columns(self) -> dict[str, Any]:
        """The few numbers a table of many jobs shows (the batch report's fidelity columns)."""
        s = self.summary
        return {"apd_deg": s["apd_deg"]["mean"], "apd_yaw_deg": s["apd_deg"]["yaw"], "apd_pitch_deg": s["apd_deg"]["pitch"],
                "apd_roll_deg": s["apd_deg"]["roll"], "aed": s["aed"], "mouth_corr": s["mouth"]["correlation"],
                "delay_frames": s["delay"]["frames"],
                **({"identity_mean": s["identity_similarity"]["mean"], "identity_min": s["identity_similarity"]["min"]}
                   if s.get("identity_similarity") else {})}

    def text(self) -> str:
        """A few lines a person reads in a terminal."""
        s = self.summary
        apd, delay, mouth = s["apd_deg"], s["delay"], s["mouth"]
        fmt = lambda v, spec=".3f": "n/a" if v is None else (v if isinstance(v, str) else format(v, spec))  # noqa: E731
        lines = [
            f"frames compared: {s['frames_compared']} ({s['frames_with_face']} with a face in both)",
            f"head pose error (APD, deg): yaw {fmt(apd['yaw'], '.2f')}, pitch {fmt(apd['pitch'], '.2f')}, "
            f"roll {fmt(apd['roll'], '.2f')}, mean {fmt(apd['mean'], '.2f')}",
            f"expression error (AED, 51 coefficients): {fmt(s['aed'])}",
            f"mouth-open correlation: {fmt(mouth['correlation'])} ({mouth['measure']})",
            f"landmark distance after alignment (inter-ocular units): {fmt(s['landmark_distance'])}",
            f"jitter, pose deg/frame^2: driving {fmt(s['jitter']['driving_pose_deg'])}, "
            f"result {fmt(s['jitter']['result_pose_deg'])}",
            f"delay: {fmt(delay['frames'], 'd')} frame(s) (correlation {fmt(delay['correlation'])}, "
            f"at 0: {fmt(delay['correlation_at_zero'])})"
            + ("" if delay.get("reliable") else ", unreliable: the curves hardly correlate") + (", result looks MIRRORED (yaw/roll signs flipped)"
                                                              if delay.get("mirrored") else ""),
        ]
        if s.get("identity_drift"):
            lines.append(f"identity drift (landmark shape vs reference): mean {fmt(s['identity_drift']['mean'])}, "
                         f"last quarter - first quarter {fmt(s['identity_drift']['trend'])}")
        if s.get("identity_similarity"):
            lines.append(f"identity similarity: mean {fmt(s['identity_similarity']['mean'])}, "
                         f"min {fmt(s['identity_similarity']['min'])}")
        if s.get("psnr_db") is not None:
            lines.append(f"PSNR {fmt(s['psnr_db'], '.2f')} dB, SSIM {fmt(s['ssim'], '.4f')}")
        return "\n".join(lines)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        if math.isnan(value):
            return None
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _mean(values: np.ndarray | None, mask: np.ndarray) -> float | None:
    """Mean over the masked frames, NaN values skipped; None when nothing is left."""
    if values is None:
        return None
    picked = np.asarray(values, np.float64)[mask]
    picked = picked[~np.isnan(picked)]
    if not len(picked):
        return None
    if np.isinf(picked).all():
        return float(picked[0])
    finite = picked[np.isfinite(picked)]
    return float(finite.mean())


def _frames_at(frames: np.ndarray | None, motion: FaceMotion, rows: np.ndarray, name: str) -> np.ndarray | None:
    """The image frames of the paired motion rows (the motion's source frame indices pick them)."""
    if frames is None:
        return None
    indices = motion.frame_indices[rows]
    if len(frames) <= int(indices.max(initial=0)):
        raise HelloMemeError(f"fidelity report: the {name} frames ({len(frames)}) are fewer than its motion covers "
                             f"(frame {int(indices.max())}); give the frames the motion was extracted from")
    return np.asarray(frames)[indices]


def _to_uint8(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:  # float images in 0..1 (ComfyUI IMAGE)
        frames = np.clip(np.round(frames.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    return frames


def build_report(driving: FaceMotion, result: FaceMotion, reference: FaceMotion | None = None,
                 driving_frames: np.ndarray | None = None, result_frames: np.ndarray | None = None,
                 identity: np.ndarray | None = None, max_lag: int = DEFAULT_MAX_LAG) -> FidelityReport:
    """The fidelity report of ``result`` against ``driving``.

    ``reference``: the portrait's motion, for the identity drift. ``driving_frames`` / ``result_frames``
    (F, H, W, 3; uint8 or float 0..1): for PSNR/SSIM, meaningful only where the result re-enacts its own
    driving clip (the result is resized to the driving's size when they differ). ``identity``: an optional
    per-result-frame identity similarity (e.g. ArcFace cosine to the reference), shown as its own curve.
    """
    if len(driving) == 0 or len(result) == 0:
        raise HelloMemeError("fidelity report: the driving or the result motion has no frames")
    pairing = metrics.pair_frames(driving, result)
    if len(pairing.driving_rows) == 0:
        raise HelloMemeError("fidelity report: the driving clip and the result share no time span to compare")
    dr, rr = pairing.driving_rows, pairing.result_rows
    notes = [pairing.note]
    d_ypr, r_ypr = driving.yaw_pitch_roll_degrees[dr], result.yaw_pitch_roll_degrees[rr]
    found = driving.face_found[dr] & result.face_found[rr]
    pose_err = metrics.pose_error_degrees(d_ypr, r_ypr)
    expr_d, expr_r = driving.expression[dr].astype(np.float64), result.expression[rr].astype(np.float64)
    aed = metrics.expression_error(expr_d, expr_r)
    both_mediapipe = driving.landmarks.shape[1:] == result.landmarks.shape[1:] == (metrics.MEDIAPIPE_POINTS, 2)
    mouth_d, measure = metrics.mouth_opening(driving, both_mediapipe)
    mouth_r, _ = metrics.mouth_opening(result, both_mediapipe)
    mouth_d, mouth_r = mouth_d[dr], mouth_r[rr]
    landmark = metrics.landmark_distance(driving.landmarks[dr], result.landmarks[rr])
    if landmark is None:
        notes.append("landmark distance not measured: the two motions' landmark layouts differ or are unknown")
    time = (np.arange(len(dr)) / pairing.fps) if pairing.fps > 0 else np.arange(len(dr), dtype=np.float64)
    per_frame: dict[str, np.ndarray] = {
        "time": time, "driving_frame": driving.frame_indices[dr], "result_frame": result.frame_indices[rr],
        "face_found": found,
    }
    for i, axis in enumerate(AXES):
        per_frame[f"driving_{axis}"], per_frame[f"result_{axis}"] = d_ypr[:, i], r_ypr[:, i]
        per_frame[f"apd_{axis}"] = pose_err[:, i]
    per_frame.update({"aed": aed, "driving_mouth": mouth_d, "result_mouth": mouth_r})
    if landmark is not None:
        per_frame["landmark_distance"] = landmark
    jitter = {"driving_pose": metrics.pose_jitter(d_ypr), "result_pose": metrics.pose_jitter(r_ypr),
              "driving_landmarks": metrics.landmark_jitter(driving.landmarks[dr]),
              "result_landmarks": metrics.landmark_jitter(result.landmarks[rr])}
    for name, values in jitter.items():
        if values is not None:
            per_frame[f"jitter_{name}"] = values

    summary: dict[str, Any] = {
        "frames_compared": int(len(dr)), "frames_with_face": int(found.sum()),
        "alignment": {"method": pairing.method, "fps": pairing.fps, "note": pairing.note,
                      "driving_frames": len(driving), "result_frames": len(result),
                      "driving_fps": driving.fps, "result_fps": result.fps},
        "apd_deg": {axis: _mean(pose_err[:, i], found) for i, axis in enumerate(AXES)},
        "aed": _mean(aed, found),
    }
    summary["apd_deg"]["mean"] = _mean(pose_err.mean(axis=1), found)
    coeff_err = np.abs(expr_r - expr_d)[found].mean(axis=0) if found.any() else np.zeros(51)
    worst = np.argsort(-coeff_err)[:5]
    summary["aed_worst"] = {ARKIT_NAMES[i]: float(coeff_err[i]) for i in worst if coeff_err[i] > 0}
    summary["mouth"] = {"correlation": metrics.correlation(mouth_d[found], mouth_r[found]), "measure": measure}
    summary["landmark_distance"] = _mean(landmark, found)
    summary["jitter"] = {f"{name}{'_deg' if name.endswith('pose') else ''}": _mean(values, found)
                         for name, values in jitter.items()}
    notes.append("jitter: mean |second difference| per frame of the compared frames (pose in degrees; landmarks "
                 "aligned on the clip's mean shape, in inter-ocular distances); it grows with a lower frame rate")

    curves_d = np.column_stack([d_ypr, mouth_d])
    curves_r = np.column_stack([r_ypr, mouth_r])
    delay = metrics.estimate_delay(curves_d, curves_r, max_lag)
    summary["delay"] = {"frames": delay.frames, "correlation": delay.correlation,
                        "correlation_at_zero": delay.at_zero, "max_lag": delay.max_lag, "mirrored": delay.mirrored,
                        "reliable": delay.correlation is not None and delay.correlation >= RELIABLE_DELAY,
                        "seconds": None if delay.frames is None or pairing.fps <= 0 else delay.frames / pairing.fps,
                        "method": delay.method}
    notes.append(f"delay: {delay.method}; positive = the result lags the driving clip")
    if delay.mirrored:
        notes.append("the result's yaw and roll follow the driving's with the opposite sign: it looks mirrored "
                     "left-right")

    summary["identity_drift"] = None
    if reference is not None:
        drift, how = metrics.identity_drift(reference, result.landmarks[rr])
        if drift is not None:
            per_frame["identity_drift"] = drift
            quarter = max(1, len(drift) // 4)
            first, last = _mean(drift[:quarter], found[:quarter]), _mean(drift[-quarter:], found[-quarter:])
            summary["identity_drift"] = {"mean": _mean(drift, found), "first_quarter": first, "last_quarter": last,
                                         "trend": None if first is None or last is None else last - first,
                                         "measure": how}
            notes.append(f"identity drift: {how}. Limits: a shape measure, not face recognition; head turns out of "
                         "the image plane and strong expressions raise it too")
        else:
            notes.append(f"identity drift not measured: {how}")
    summary["identity_similarity"] = None
    if identity is not None:
        similarity = np.asarray(identity, np.float64).reshape(-1)
        if len(similarity) != len(result):
            raise HelloMemeError(f"fidelity report: identity has {len(similarity)} value(s) but the result has "
                                 f"{len(result)} frame(s); give one similarity per result frame")
        similarity = similarity[rr]
        per_frame["identity_similarity"] = similarity
        summary["identity_similarity"] = {"mean": _mean(similarity, found),
                                          "min": float(np.nanmin(similarity)) if len(similarity) else None}

    summary["psnr_db"] = summary["ssim"] = None
    d_frames = _frames_at(driving_frames, driving, dr, "driving")
    r_frames = _frames_at(result_frames, result, rr, "result")
    if d_frames is not None and r_frames is not None:
        d_frames, r_frames = _to_uint8(d_frames), _to_uint8(r_frames)
        if d_frames.shape[1:3] != r_frames.shape[1:3]:
            h, w = d_frames.shape[1:3]
            r_frames = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in r_frames])
            notes.append(f"PSNR/SSIM: the result frames were resized to the driving's {w}x{h}")
        per_frame["psnr_db"] = metrics.psnr(d_frames, r_frames)
        per_frame["ssim"] = metrics.ssim(d_frames, r_frames)
        summary["psnr_db"], summary["ssim"] = _mean(per_frame["psnr_db"], found), _mean(per_frame["ssim"], found)
        notes.append("PSNR (RGB, dB; inf = identical) and SSIM (luma, Gaussian window 11/1.5): meaningful only when "
                     "the result re-enacts its own driving clip")
    if not found.all():
        notes.append(f"{int((~found).sum())} compared frame(s) lack a face in one of the clips: shown per frame, "
                     "left out of the summary means")
    return FidelityReport(per_frame, summary, notes, delay.curves)
