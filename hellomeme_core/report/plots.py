"""The report's pictures (matplotlib, Agg canvas on ``Figure`` objects: no pyplot global state).

``curves_figure``: driving vs result yaw, pitch, roll and mouth opening over time (plus identity curves
when measured). ``errors_figure``: histograms of the pose and expression errors, the per-frame landmark
errors over time, the delay's correlation per lag and the summary numbers. Both are ``SIZE`` pixels, so
they stack into one image batch.
"""
from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hellomeme_core.report.report import AXES, FidelityReport

SIZE = (1200, 900)  # width, height in pixels
_DPI = 100
_DRIVING, _RESULT, _OTHER = "#1f77b4", "#d62728", "#2ca02c"


def _figure() -> Figure:
    figure = Figure(figsize=(SIZE[0] / _DPI, SIZE[1] / _DPI), dpi=_DPI)
    FigureCanvasAgg(figure)
    return figure


def _x(report: FidelityReport) -> tuple[np.ndarray, str]:
    fps = report.summary["alignment"]["fps"]
    return report.per_frame["time"], "time (s)" if fps and fps > 0 else "frame"


def curves_figure(report: FidelityReport) -> Figure:
    """Driving vs result pose and mouth over time, one panel each (identity panel when measured)."""
    pf = report.per_frame
    x, label = _x(report)
    extra = [name for name in ("identity_drift", "identity_similarity") if name in pf]
    figure = _figure()
    axes = figure.subplots(4 + bool(extra), 1, sharex=True)
    apd = report.summary["apd_deg"]
    for ax, axis in zip(axes, AXES):
        ax.plot(x, pf[f"driving_{axis}"], color=_DRIVING, label="driving")
        ax.plot(x, pf[f"result_{axis}"], color=_RESULT, label="result")
        err = apd[axis]
        ax.set_ylabel(f"{axis} (deg)")
        ax.set_title(f"{axis}: mean error {err:.2f} deg" if err is not None else axis, fontsize=10, loc="left")
    mouth = report.summary["mouth"]
    axes[3].plot(x, pf["driving_mouth"], color=_DRIVING, label="driving")
    axes[3].plot(x, pf["result_mouth"], color=_RESULT, label="result")
    corr = mouth["correlation"]
    axes[3].set_ylabel("mouth open")
    axes[3].set_title(f"mouth ({mouth['measure']}): correlation {corr:.3f}" if corr is not None
                      else f"mouth ({mouth['measure']})", fontsize=10, loc="left")
    if extra:
        ax = axes[4]
        if "identity_drift" in pf:
            ax.plot(x, pf["identity_drift"], color=_OTHER, label="shape distance to reference")
            ax.set_ylabel("identity drift")
        if "identity_similarity" in pf:
            twin = ax.twinx() if "identity_drift" in pf else ax
            twin.plot(x, pf["identity_similarity"], color="#9467bd", label="identity similarity")
            twin.set_ylabel("similarity")
            twin.legend(loc="upper right", fontsize=8)
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title("identity", fontsize=10, loc="left")
    missing = ~pf["face_found"].astype(bool)
    for ax in axes:
        ax.grid(alpha=0.3)
        for t in x[missing]:  # frames without a face in one of the clips
            ax.axvline(t, color="0.85", linewidth=2, zorder=0)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel(label)
    delay = report.summary["delay"]
    shown = ""
    if delay["frames"] and delay.get("reliable"):
        shown = f" (result {abs(delay['frames'])} frame(s) {'late' if delay['frames'] > 0 else 'early'})"
    figure.suptitle("Motion fidelity: driving vs result" + shown)
    figure.tight_layout()
    return figure


def _hist(ax, values: list[np.ndarray], labels: list[str], colors: list[str], xlabel: str) -> None:
    clean = [v[np.isfinite(v)] for v in values]
    top = max((float(v.max()) for v in clean if len(v)), default=1.0)
    bins = np.linspace(0.0, max(top, 1e-6), 30)
    for v, name, color in zip(clean, labels, colors):
        if len(v):
            ax.hist(v, bins=bins, alpha=0.5, label=name, color=color)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("frames")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def errors_figure(report: FidelityReport) -> Figure:
    """Error histograms, per-frame landmark errors, delay correlation per lag, and the summary as text."""
    pf, s = report.per_frame, report.summary
    found = pf["face_found"].astype(bool)
    x, label = _x(report)
    figure = _figure()
    (pose_ax, expr_ax), (time_ax, text_ax) = figure.subplots(2, 2)
    _hist(pose_ax, [pf[f"apd_{a}"][found] for a in AXES], list(AXES), [_DRIVING, _RESULT, _OTHER],
          "head-pose error (deg)")
    pose_ax.set_title("head-pose error per frame", fontsize=10, loc="left")
    _hist(expr_ax, [pf["aed"][found]], ["AED"], ["#9467bd"], "mean |coefficient difference| (51 ARKit)")
    expr_ax.set_title("expression error per frame", fontsize=10, loc="left")
    for name, color, text in (("landmark_distance", _RESULT, "landmark distance after alignment"),
                              ("jitter_driving_landmarks", _DRIVING, "landmark jitter, driving"),
                              ("jitter_result_landmarks", "#ff7f0e", "landmark jitter, result"),
                              ("identity_drift", _OTHER, "identity drift")):
        if name in pf:
            time_ax.plot(x, pf[name], color=color, label=text)
    time_ax.set_xlabel(label)
    time_ax.set_ylabel("inter-ocular distances")
    time_ax.set_title("landmark errors over time", fontsize=10, loc="left")
    time_ax.grid(alpha=0.3)
    if time_ax.lines:
        time_ax.legend(fontsize=8)
    text_ax.axis("off")
    text_ax.text(0.0, 1.0, report.text(), va="top", ha="left", fontsize=8, family="monospace", wrap=True,
                 transform=text_ax.transAxes)
    if report.delay_curve is not None and np.isfinite(report.delay_curve).any():
        inset = text_ax.inset_axes([0.05, 0.0, 0.9, 0.32])
        lag = s["delay"]["max_lag"]
        inset.plot(np.arange(-lag, lag + 1), report.delay_curve, color="0.3", marker=".")
        if s["delay"]["frames"] is not None:
            inset.axvline(s["delay"]["frames"], color=_RESULT)
        inset.set_xlabel("lag (frames; + = result later)", fontsize=8)
        inset.set_ylabel("correlation", fontsize=8)
        inset.tick_params(labelsize=7)
        inset.grid(alpha=0.3)
    figure.suptitle("Motion fidelity: errors")
    figure.tight_layout()
    return figure


def figure_rgb(figure: Figure) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a figure."""
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def figure_png(figure: Figure) -> bytes:
    """PNG bytes of a figure."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def report_images(report: FidelityReport) -> dict[str, Figure]:
    """The report's figures by file stem."""
    return {"curves": curves_figure(report), "errors": errors_figure(report)}
