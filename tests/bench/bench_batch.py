"""The batch command's own cost, on a real ComfyUI test server with the quick marked workflow
(``tests/batch/quick_workflow_api.json``, a few seconds a job): client time per job (queue and history checks,
uploads, submit, download, probe of the saved video: ``client_ms`` in report.json) and the time the server sits
idle between two jobs (from its own execution timestamps), with ``--max-queued 1`` (the next job is sent when
the last one is done) against 2 (the next job waits in the server's queue).

``python -m tests.bench batch [--jobs N]`` (named only: it starts a server).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOB_PAIRS = [("show1.jpg", "qie.mp4"), ("zzj.jpg", "tbh.mp4"), ("civitai1.jpg", "qie.mp4"), ("show1.jpg", "tbh.mp4"),
             ("zzj.jpg", "qie.mp4"), ("civitai1.jpg", "tbh.mp4"), ("show1.jpg", "ysll.mp4"), ("zzj.jpg", "amns.mp4")]


def main() -> None:
    from tests.batch.support import MEDIA, QUICK_WORKFLOW, REPO, jsonl
    from tests.support.comfy_server import ComfyServer

    parser = argparse.ArgumentParser(prog="python -m tests.bench batch")
    parser.add_argument("--jobs", type=int, default=6, help="jobs per run (default 6, at most 8)")
    args, _ = parser.parse_known_args(sys.argv[1:])
    pairs = JOB_PAIRS[: max(2, min(args.jobs, len(JOB_PAIRS)))]
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        tmp_path = Path(tmp)
        jobs = jsonl(tmp_path / "jobs.jsonl", [
            {"reference": str(MEDIA / "reference" / r), "driving": str(MEDIA / "driving" / d)} for r, d in pairs])
        server = ComfyServer(tmp_path / "server").start()
        try:
            rows = []
            for run, max_queued in enumerate((2, 1, 2)):  # the first run warms the server up (models, caches)
                # Each run its own workflow variant (an unnoticeable change): new prompt ids, so nothing is taken
                # from an earlier run's history.
                graph = json.loads(QUICK_WORKFLOW.read_text())
                graph["6"]["inputs"]["translation_ratio"] = 0.5 + run * 1e-6
                workflow = tmp_path / f"workflow_{run}.json"
                workflow.write_text(json.dumps(graph))
                out = tmp_path / f"out_{run}"
                start = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", "hellomeme_core", "batch", str(jobs), "--out", str(out),
                                       "--server", server.base_url, "--workflow", str(workflow), "--json",
                                       "--max-queued", str(max_queued)], cwd=REPO, capture_output=True, text=True)
                wall = time.perf_counter() - start
                if done.returncode != 0:
                    raise RuntimeError(f"the batch failed (code {done.returncode}):\n{done.stderr[-2000:]}")
                report = json.loads((out / "report.json").read_text())
                idle = report["server_idle_between_jobs_ms"]
                server_s = sum(j["seconds"] for j in report["jobs"])
                if run:
                    rows.append((max_queued, wall, server_s, report["client_ms_per_job"], statistics.median(idle["gaps"]),
                                 idle["mean"], idle["total"]))
        finally:
            server.stop()
    print(f"batch, {len(pairs)} jobs of the quick workflow on a local CPU server (client time per job: checks, "
          "uploads, submit, download, probe; server idle: between one job's end and the next one's start)")
    print("(the server's own work between prompts, its garbage collection every 10 s above all, is idle time too: "
          "the median gap shows the client's share best)")
    print(f"{'max-queued':>10}  {'wall s':>7}  {'server s':>8}  {'client ms/job':>13}  {'idle ms/gap: median':>19}  "
          f"{'mean':>5}  {'total':>6}")
    for max_queued, wall, server_s, client_ms, idle_median, idle_mean, idle_total in rows:
        print(f"{max_queued:>10}  {wall:7.1f}  {server_s:8.1f}  {client_ms:13.0f}  {idle_median:19.0f}  {idle_mean:5.0f}  "
              f"{idle_total:6.0f}")


if __name__ == "__main__":
    main()
