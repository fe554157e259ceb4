"""Motion-fidelity measures between a driving clip's FACE_MOTION and a result's: pure numpy.

Every function takes arrays already paired frame by frame (``pair_frames`` makes the pairs) and returns
per-frame values; the report (``report.py``) turns them into summaries. Units: degrees for pose, the
0..1 coefficient scale for expression, the outer eye-corner distance ("inter-ocular distance", IOD) for
landmark distances.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hellomeme_core.face.types import FaceMotion

MEDIAPIPE_POINTS, OFFICIAL_POINTS = 478, 222
# Outer eye corners (image left, image right of a frontal face) per landmark layout.
_EYE_CORNERS = {MEDIAPIPE_POINTS: (33, 263), OFFICIAL_POINTS: (74, 96)}
# mediapipe: inner lips (upper, lower) and a rigid nose segment (bridge, base) that foreshortens with pitch as
# the lip gap does, so their ratio is a mouth opening free of face size and (mostly) head pose.
_LIP_UPPER, _LIP_LOWER, _NOSE_BRIDGE, _NOSE_BASE = 13, 14, 6, 2
# mediapipe points that expressions barely move (eye corners, cheekbones, face contour, nose ridge): the
# face's shape for the identity measure. Same indices as ``landmark_pose.RIGID``.
_RIGID_MEDIAPIPE = np.array([33, 133, 234, 127, 98, 93, 263, 362, 454, 356, 327, 323, 10, 151, 9, 8,
                             168, 6, 197, 195, 5, 4, 2])
# Per-channel size of motion that counts as "moving" for delay estimation (yaw, pitch, roll degrees; mouth).
_DELAY_NOISE = np.array([1.0, 1.0, 1.0, 0.03])


# ---- pairing frames --------------------------------------------------------------------------------------
@dataclass
class Pairing:
    """Which row of the driving motion is compared with which row of the result."""

    driving_rows: np.ndarray  # (P,) int
    result_rows: np.ndarray  # (P,) int
    fps: float  # rate of the common time grid (0 = unknown: frame index only)
    method: str  # "frame index" or "time"
    note: str  # one sentence for the report: how the frames were paired and what was left out


def _times(motion: FaceMotion) -> np.ndarray:
    return motion.frame_indices.astype(np.float64) / motion.fps


def pair_frames(driving: FaceMotion, result: FaceMotion, fps_tolerance: float = 0.01) -> Pairing:
    """Pair frames by index over the shorter length, or by time when both rates are known and differ
    (the slower clip sets the grid; each of its frames meets the other clip's nearest frame in time)."""
    fd, fr = float(driving.fps or 0.0), float(result.fps or 0.0)
    nd, nr = len(driving), len(result)
    if fd > 0 and fr > 0 and abs(fd - fr) > fps_tolerance * max(fd, fr):
        slow, fast, slow_is_driving = (driving, result, True) if fd < fr else (result, driving, False)
        t_slow, t_fast = _times(slow), _times(fast)
        half = 0.5 / fast.fps
        keep = (t_slow >= t_fast[0] - half) & (t_slow <= t_fast[-1] + half)
        slow_rows = np.flatnonzero(keep)
        fast_rows = np.clip(np.searchsorted(t_fast, t_slow[slow_rows]), 0, len(t_fast) - 1)
        before = np.clip(fast_rows - 1, 0, len(t_fast) - 1)
        closer = np.abs(t_fast[before] - t_slow[slow_rows]) <= np.abs(t_fast[fast_rows] - t_slow[slow_rows])
        fast_rows = np.where(closer, before, fast_rows)
        d_rows, r_rows = (slow_rows, fast_rows) if slow_is_driving else (fast_rows, slow_rows)
        note = (f"frame rates differ (driving {fd:g} fps, result {fr:g} fps): compared at {slow.fps:g} fps, each "
                f"{'driving' if slow_is_driving else 'result'} frame with the {'result' if slow_is_driving else 'driving'}"
                f" frame nearest in time; {len(slow_rows)} pair(s), {len(slow) - len(slow_rows)} frame(s) of the "
                f"slower clip outside the other's time span left out")
        return Pairing(d_rows.astype(np.int64), r_rows.astype(np.int64), slow.fps, "time", note)
    n = min(nd, nr)
    rows = np.arange(n, dtype=np.int64)
    fps = fd or fr
    if nd == nr:
        note = f"both clips have {n} frame(s): frame i of the result is compared with frame i of the driving clip"
    else:
        longer = "driving clip" if nd > nr else "result"
        note = (f"frame counts differ (driving {nd}, result {nr}): compared by frame index over the first {n} "
                f"frame(s); the last {abs(nd - nr)} frame(s) of the {longer} are left out")
    return Pairing(rows, rows.copy(), fps, "frame index", note)


# ---- pose and expression -----------------------------------------------------------------------------------
def pose_error_degrees(driving_ypr: np.ndarray, result_ypr: np.ndarray) -> np.ndarray:
    """(P, 3) absolute yaw/pitch/roll differences in degrees (wrapped, so 179 vs -179 is 2)."""
    diff = np.asarray(result_ypr, np.float64) - np.asarray(driving_ypr, np.float64)
    return np.abs((diff + 180.0) % 360.0 - 180.0)


def expression_error(driving_expr: np.ndarray, result_expr: np.ndarray) -> np.ndarray:
    """(P,) mean absolute difference over the 51 ARKit coefficients (AED) per frame."""
    return np.abs(np.asarray(result_expr, np.float64) - np.asarray(driving_expr, np.float64)).mean(axis=1)


def mouth_opening(motion: FaceMotion, use_landmarks: bool = True) -> tuple[np.ndarray, str]:
    """(F,) mouth opening and what it is: the inner-lip gap over the nose bridge-to-base length (mediapipe
    landmarks; not clipped at a closed mouth, little changed by head pose), else the ``jawOpen`` coefficient."""
    points = motion.landmarks
    if use_landmarks and points.ndim == 3 and points.shape[1] == MEDIAPIPE_POINTS:
        gap = np.linalg.norm(points[:, _LIP_UPPER, :2] - points[:, _LIP_LOWER, :2], axis=-1)
        nose = np.linalg.norm(points[:, _NOSE_BRIDGE, :2] - points[:, _NOSE_BASE, :2], axis=-1)
        return (gap / np.maximum(nose, 1e-6)).astype(np.float64), "inner-lip gap / nose length (mediapipe landmarks 13-14 over 6-2)"
    return motion.coefficient("jawOpen").astype(np.float64), "jawOpen coefficient"


def correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation, None when either series is (nearly) constant or too short."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 3:
        return None
    a, b = a - a.mean(), b - b.mean()
    norm = np.sqrt((a * a).sum() * (b * b).sum())
    if norm < 1e-12:
        return None
    return float((a * b).sum() / norm)


# ---- landmarks ---------------------------------------------------------------------------------------------
def eye_distance(points: np.ndarray) -> np.ndarray | None:
    """(F,) outer eye-corner distance of (F, N, 2) landmarks; None for a layout whose eyes are unknown."""
    corners = _EYE_CORNERS.get(points.shape[1]) if points.ndim == 3 else None
    if corners is None:
        return None
    return np.linalg.norm(points[:, corners[1], :2] - points[:, corners[0], :2], axis=-1).astype(np.float64)


def similarity_align(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(F, N, 2) ``source`` points moved by the per-frame similarity (scale, rotation, shift; no mirror)
    that best fits them onto ``target`` (least squares, Procrustes/Umeyama); ``target`` may be (N, 2)."""
    src = np.asarray(source, np.float64)[..., :2]
    tgt = np.broadcast_to(np.asarray(target, np.float64)[..., :2], src.shape)
    mu_s, mu_t = src.mean(axis=1, keepdims=True), tgt.mean(axis=1, keepdims=True)
    s, t = src - mu_s, tgt - mu_t
    cov = np.einsum("fni,fnj->fij", t, s)  # (F, 2, 2) target x source
    u, sigma, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    d = np.where(d == 0, 1.0, d)
    fix = np.ones_like(sigma)
    fix[:, -1] = d
    rotation = u @ (fix[:, :, None] * vt)
    var = (s * s).sum(axis=(1, 2))
    scale = (sigma * fix).sum(axis=1) / np.maximum(var, 1e-12)
    return scale[:, None, None] * np.einsum("fij,fnj->fni", rotation, s) + mu_t


def landmark_distance(driving_points: np.ndarray, result_points: np.ndarray) -> np.ndarray | None:
    """(P,) mean point distance after aligning the result's landmarks onto the driving's (similarity), in
    driving inter-ocular distances; None when the layouts differ or have no known eye corners."""
    if driving_points.shape[1:] != result_points.shape[1:] or driving_points.shape[1] == 0:
        return None
    iod = eye_distance(driving_points)
    if iod is None:
        return None
    aligned = similarity_align(result_points, driving_points)
    dist = np.linalg.norm(aligned - driving_points[..., :2].astype(np.float64), axis=-1).mean(axis=1)
    return dist / np.maximum(iod, 1e-6)


def second_difference(values: np.ndarray) -> np.ndarray:
    """(F,) size of the second difference of (F, ...) values (norm over the rest), NaN at both ends."""
    values = np.asarray(values, np.float64).reshape(len(values), -1)
    out = np.full(len(values), np.nan)
    if len(values) >= 3:
        out[1:-1] = np.linalg.norm(values[2:] - 2 * values[1:-1] + values[:-2], axis=1)
    return out


def pose_jitter(ypr_degrees: np.ndarray) -> np.ndarray:
    """(F,) |second difference| of yaw/pitch/roll in degrees per frame^2 (NaN at the ends)."""
    return second_difference(ypr_degrees)


def landmark_jitter(points: np.ndarray) -> np.ndarray | None:
    """(F,) mean |second difference| of the landmarks after aligning every frame on the clip's mean shape
    (so steady head moves count little), in inter-ocular distances; None for an unknown layout."""
    points = np.asarray(points, np.float64)[..., :2]
    if points.ndim != 3 or points.shape[1] == 0 or eye_distance(points) is None:
        return None
    mean_shape = points.mean(axis=0)
    aligned = similarity_align(points, mean_shape)
    iod = float(eye_distance(mean_shape[None])[0])
    out = np.full(len(points), np.nan)
    if len(points) >= 3:
        accel = aligned[2:] - 2 * aligned[1:-1] + aligned[:-2]
        out[1:-1] = np.linalg.norm(accel, axis=-1).mean(axis=1) / max(iod, 1e-6)
    return out


# ---- identity ----------------------------------------------------------------------------------------------
def neutral_row(motion: FaceMotion) -> int:
    """The row of a motion closest to a neutral, frontal face (least |yaw| + |pitch| and expression)."""
    ypr = motion.yaw_pitch_roll_degrees
    score = (np.abs(ypr[:, 0]) + np.abs(ypr[:, 1])) / 10.0 + motion.expression.mean(axis=1) * 10.0
    score = np.where(motion.face_found, score, np.inf)
    return int(np.argmin(score))


def identity_drift(reference: FaceMotion, result_points: np.ndarray) -> tuple[np.ndarray | None, str]:
    """(P,) landmark-shape distance between the reference's neutral face and each result frame (rigid points
    of the mediapipe mesh, similarity-aligned, in inter-ocular distances) and how it was measured.

    Limits: a 2D shape measure, not a face-recognition similarity. Head turns out of the image plane and
    strong expressions change it too; it tells a face that slowly turns into another shape, not who it is."""
    ref = reference.landmarks[neutral_row(reference)]
    if ref.shape != result_points.shape[1:] or ref.shape[0] == 0:
        return None, "landmark layouts of the reference and the result differ"
    iod = eye_distance(ref[None])
    if iod is None:
        return None, "landmark layout without known eye corners"
    pick = _RIGID_MEDIAPIPE if ref.shape[0] == MEDIAPIPE_POINTS else np.arange(ref.shape[0])
    aligned = similarity_align(result_points[:, pick], ref[pick])
    dist = np.linalg.norm(aligned - ref[pick][None, :, :2], axis=-1).mean(axis=1) / max(float(iod[0]), 1e-6)
    what = ("rigid mediapipe points (eyes' corners, cheekbones, face contour, nose ridge)" if ref.shape[0] == MEDIAPIPE_POINTS
            else "all landmarks")
    return dist, f"landmark-shape distance to the reference's most neutral frame ({what}), inter-ocular units"


# ---- pixels ------------------------------------------------------------------------------------------------
def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(F,) PSNR in dB of uint8-range RGB frames (F, H, W, 3); inf for identical frames."""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    mse = (diff * diff).reshape(len(diff), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return np.where(mse > 0, 10.0 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-300)), np.inf)


def _luma(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame, np.float64)
    return frame[..., 0] * 0.299 + frame[..., 1] * 0.587 + frame[..., 2] * 0.114


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(F,) SSIM of uint8-range RGB frames on luma: Wang et al. 2004, 11x11 Gaussian window sigma 1.5,
    K1 0.01, K2 0.03, L 255, mean over the valid (unpadded) window positions."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REPLICATE)[5:-5, 5:-5]  # noqa: E731
    out = np.empty(len(a))
    for i, (fa, fb) in enumerate(zip(a, b)):
        x, y = _luma(fa), _luma(fb)
        mx, my = blur(x), blur(y)
        sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        value = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        out[i] = float(value.mean()) if value.size else float("nan")
    return out


# ---- delay -------------------------------------------------------------------------------------------------
@dataclass
class Delay:
    frames: int | None  # result frame t shows driving frame t - frames (positive: the result lags)
    correlation: float | None  # weighted mean correlation of the curves at that lag
    at_zero: float | None  # ... and at lag 0
    max_lag: int
    curves: np.ndarray  # (2 * max_lag + 1,) correlation per lag, NaN where not measured
    method: str
    mirrored: bool = False  # the result's yaw and roll follow the driving's with the opposite sign


def _lag_curve(d: np.ndarray, r: np.ndarray, weights: np.ndarray, max_lag: int) -> np.ndarray:
    n = len(d)
    curves = np.full(2 * max_lag + 1, np.nan)
    for k in range(-max_lag, max_lag + 1):
        dk, rk = (d[: n - k], r[k:]) if k >= 0 else (d[-k:], r[: n + k])
        total = wsum = 0.0
        for c in range(d.shape[1]):
            value = correlation(dk[:, c], rk[:, c]) if weights[c] > 0 else None
            if value is not None:
                total += weights[c] * value
                wsum += weights[c]
        if wsum > 0:
            curves[k + max_lag] = total / wsum
    return curves


def estimate_delay(driving_curves: np.ndarray, result_curves: np.ndarray, max_lag: int = 12,
                   noise: np.ndarray = _DELAY_NOISE, mirror_channels: tuple[int, ...] = (0, 2)) -> Delay:
    """The lag (frames) that best lines the result's curves (P, C) up with the driving's, by cross-correlation.

    For each lag k in -max_lag..max_lag, each channel's Pearson correlation of result[t] with driving[t - k]
    over the overlap; the channels are averaged, weighted by how much the driving channel moves (its
    standard deviation over ``noise``, capped at 1), so a still channel's noise does not vote; the same for
    the frame-to-frame changes, and the two averaged. The lag is
    bounded by half the frames (the overlap keeps at least half). A mirrored result (yaw and roll, the
    ``mirror_channels``, of opposite sign) is tried too, so that its timing is still found; ``mirrored``
    says that hypothesis lined up better."""
    d, r = np.asarray(driving_curves, np.float64), np.asarray(result_curves, np.float64)
    n = min(len(d), len(r))
    d, r = d[:n], r[:n]
    max_lag = int(max(0, min(max_lag, n // 2)))
    weights = np.minimum(d.std(axis=0) / noise[: d.shape[1]], 1.0) if n else np.zeros(d.shape[1])
    method = (f"cross-correlation of yaw, pitch, roll and mouth curves over lags -{max_lag}..{max_lag} frames, "
              "levels and frame-to-frame changes averaged, channels weighted by how much the driving channel moves, "
              "the result also tried mirrored "
              "(yaw and roll negated)")
    empty = np.full(2 * max_lag + 1, np.nan)
    if n < 3 or weights.sum() < 1e-6:
        return Delay(None, None, None, max_lag, empty, method + " (not measured: too few frames or no motion)")
    flip = np.ones(d.shape[1])
    flip[[c for c in mirror_channels if c < d.shape[1]]] = -1.0
    # Levels alone correlate almost as well one frame off on slow moves (the peak is flat); the frame-to-frame
    # changes have a sharp peak but are noisy: the mean of both is used. A diff lag k lines d[t]-d[t-1] with
    # r[t+k]-r[t+k-1], the same pairing as the levels'.
    dd, wd = np.diff(d, axis=0), np.minimum(np.diff(d, axis=0).std(axis=0) / (noise[: d.shape[1]] / 4), 1.0)

    def both(sign: np.ndarray) -> np.ndarray:
        level = _lag_curve(d, r * sign, weights, max_lag)
        change = _lag_curve(dd, np.diff(r * sign, axis=0), wd, max_lag)
        return np.where(np.isnan(change), level, (level + change) * 0.5)

    plain, mirror = both(np.ones(d.shape[1])), both(flip)
    if np.all(np.isnan(plain)):
        return Delay(None, None, None, max_lag, empty, method + " (not measured: the curves are flat)")
    mirrored = bool(np.nanmax(mirror) > np.nanmax(plain) + 1e-9)
    curves = mirror if mirrored else plain
    best = np.nanmax(curves)
    # Ties (a periodic motion) go to the smallest lag.
    lags = np.arange(-max_lag, max_lag + 1)
    candidates = lags[np.nan_to_num(curves, nan=-np.inf) >= best - 1e-9]
    lag = int(candidates[np.argmin(np.abs(candidates))])
    zero = curves[max_lag]
    return Delay(lag, float(best), None if np.isnan(zero) else float(zero), max_lag, curves, method, mirrored)
