"""``<out>/report.json`` and the summary table: per job its status, seconds, frames, outputs or error."""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from hellomeme_core.batch.jobs import Job
from hellomeme_core.batch.state import DONE, STATUSES, StateStore, write_json_atomic

REPORT_FILE = "report.json"


def server_idle_gaps_ms(records: list[Any]) -> list[float]:
    """Milliseconds the server spent between the end of one of these jobs and the start of the next (from
    its own timestamps; jobs run one after another, so this is the time it sat idle waiting for us)."""
    spans = sorted((r.server_start_ms, r.server_end_ms) for r in records
                   if r.server_start_ms is not None and r.server_end_ms is not None)
    return [max(0.0, float(start - previous_end)) for (_, previous_end), (start, _) in zip(spans, spans[1:])]


def build_report(jobs: list[Job], store: StateStore, extra: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for job in jobs:
        rec = store.record(job.name)
        rows.append({
            "name": job.name, "status": rec.status, "seconds": rec.seconds, "frames": rec.frames,
            "has_audio": rec.has_audio, "outputs": rec.outputs, "error": rec.error, "error_kind": rec.error_kind,
            "prompt_id": rec.prompt_id, "reference": str(job.reference), "driving": str(job.driving),
            "settings": job.settings, "line": job.line, "submissions": rec.submissions, "lost_runs": rec.lost_runs,
            "client_ms": round(rec.client_ms, 1),
        })
        if rec.fidelity is not None:
            rows[-1]["fidelity"] = rec.fidelity
    counts = {status: sum(1 for r in rows if r["status"] == status) for status in STATUSES}
    records = [store.record(job.name) for job in jobs]
    gaps = server_idle_gaps_ms(records)
    done_client = [r.client_ms for r in records if r.status == DONE and r.client_ms]
    return {
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **extra,
        "counts": counts,
        "client_ms_per_job": round(statistics.mean(done_client), 1) if done_client else None,
        "server_idle_between_jobs_ms": {"mean": round(statistics.mean(gaps), 1) if gaps else None,
                                        "total": round(sum(gaps), 1), "gaps": [round(g, 1) for g in gaps]},
        "jobs": rows,
    }


def write_report(out_dir: Path, report: dict[str, Any]) -> Path:
    path = Path(out_dir) / REPORT_FILE
    write_json_atomic(path, report)
    return path


def fidelity_text(columns: dict[str, Any]) -> str:
    """One job's fidelity columns, short: APD (deg), AED, mouth correlation, delay (frames), identity (CSIM)."""
    if "error" in columns:
        return f"[fidelity: {columns['error']}]"
    show = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    return (f"[APD {show(columns.get('apd_deg'), '.1f')} deg, AED {show(columns.get('aed'), '.3f')}, "
            f"mouth r {show(columns.get('mouth_corr'), '.2f')}, delay {show(columns.get('delay_frames'), 'd')}"
            + (f", identity {show(columns['identity_mean'], '.2f')} (min {show(columns.get('identity_min'), '.2f')})"
               if "identity_mean" in columns else "") + "]")


def summary_table(report: dict[str, Any], width: int = 120) -> str:
    """A plain-text table of the report's jobs and a totals line."""
    rows = [("job", "status", "seconds", "frames", "outputs / error")]
    for job in report["jobs"]:
        seconds = f"{job['seconds']:.1f}" if job["seconds"] is not None else "-"
        frames = str(job["frames"]) if job["frames"] is not None else "-"
        last = ", ".join(job["outputs"]) if job["status"] == DONE else (job["error"] or "")
        if job["status"] == DONE and job.get("fidelity"):
            last += "  " + fidelity_text(job["fidelity"])
        rows.append((job["name"], job["status"], seconds, frames, last.replace("\n", " ")))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for row in rows:
        head = "  ".join(cell.ljust(widths[i]) if i != 2 else cell.rjust(widths[i]) for i, cell in enumerate(row[:4]))
        room = max(width - len(head) - 2, 30)
        tail = row[4] if len(row[4]) <= room else row[4][: room - 3] + "..."
        lines.append(f"{head}  {tail}".rstrip())
    counts = report["counts"]
    lines.append(", ".join(f"{n} {status}" for status, n in counts.items() if n) or "no jobs")
    return "\n".join(lines)
