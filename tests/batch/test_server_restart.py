"""The server dies mid-batch: killed (SIGKILL) and started again by hand on its port, or a local server the batch
started itself (``--server auto``) that the batch starts again. The batch completes; the job that was running at
the kill is run once more, every other job exactly once (checked in the server's log and output folder)."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from hellomeme_core.batch.local_server import DEFAULT_URL, answers
from tests.batch.support import (MEDIA, QUICK_WORKFLOW, BatchProcess, RestartableServer, decoded_frames,
                                 executions_in_log, frames_at_8fps, link_media, report_of, saved_main_files,
                                 submissions_in_log)

pytestmark = pytest.mark.slow

REFERENCES = MEDIA / "reference"
DRIVINGS = MEDIA / "driving"


def _folders(tmp_path: Path) -> list[str]:
    refs = link_media(tmp_path / "refs", [REFERENCES / n for n in ("show1.jpg", "zzj.jpg")])
    drivings = link_media(tmp_path / "drivings", [DRIVINGS / n for n in ("amns.mp4", "qie.mp4")])
    return ["--references", str(refs), "--drivings", str(drivings), "--workflow", str(QUICK_WORKFLOW)]


def _check_lost_and_redone(batch: BatchProcess, out: Path, running_at_kill: str, waiting_at_kill: list[str]) -> dict:
    report = report_of(out)
    jobs = {job["name"]: job for job in report["jobs"]}
    assert all(job["status"] == "done" for job in jobs.values()), jobs
    for name, job in jobs.items():
        assert len(decoded_frames(out / job["outputs"][0])) == frames_at_8fps(Path(job["driving"])), name
    # The running job was lost once and redone once; the waiting ones were sent again without counting a run.
    assert {n: (j["lost_runs"], j["submissions"]) for n, j in jobs.items()} == {
        n: (1, 2) if n == running_at_kill else (0, 2) if n in waiting_at_kill else (0, 1) for n in jobs}
    lost = {e["job"]: e["resubmit"] for e in batch.events if e["event"] == "job_lost"}
    assert lost == {name: True for name in [running_at_kill, *waiting_at_kill]}
    return jobs


def test_server_killed_mid_batch_and_started_again(tmp_path: Path):
    server = RestartableServer(tmp_path / "server").start()
    try:
        out = tmp_path / "out"
        batch = BatchProcess(*_folders(tmp_path), "--out", str(out), "--server", server.base_url, "--size", "128")
        batch.wait_event("job_submitted", 4)
        started = batch.wait_event("job_started", 3)  # two done, the third running, the fourth waiting
        server.kill()
        waiting = [e["job"] for e in batch.events if e["event"] == "job_submitted"][3:]
        server.restart()
        assert batch.finish(240) == 0, batch.stderr
        names = batch.names()
        assert "server_unreachable" in names and "server_back" in names
        jobs = _check_lost_and_redone(batch, out, started["job"], waiting)
        # What the server did, from its own records: POST /prompt calls (its log spans both runs), prompts run
        # to their end, and main videos saved per prompt id (the killed run never reached its Save Video).
        assert submissions_in_log(server) == sum(j["submissions"] for j in jobs.values()) == 4 + 1 + len(waiting)
        assert executions_in_log(server) == 4
        saved = saved_main_files(server)
        assert {j["prompt_id"]: saved[j["prompt_id"]] for j in jobs.values()} == {j["prompt_id"]: 1 for j in jobs.values()}
        history = server.get_json("/history")  # the new server's history: the jobs it ran, each once, all fine
        assert len(history) == 2 and all(entry["status"]["status_str"] == "success" for entry in history.values())
    finally:
        server.stop()


def test_auto_starts_a_local_comfyui_restarts_it_when_it_dies_and_stops_it(tmp_path: Path):
    """The local server is killed twice while the same job runs: that job fails (it may be what kills the
    server), every other job is done, and the server is stopped at the end."""
    if answers(DEFAULT_URL, timeout=1.0):
        pytest.skip(f"a ComfyUI answers at {DEFAULT_URL}: --server auto would use it")
    tree = RestartableServer(tmp_path / "server")
    tree.prepare_tree()  # a ComfyUI tree with this extension in its custom_nodes
    # The folders the test server uses, given to the local server through --comfyui-args.
    comfy_args = " ".join(tree.command()[tree.command().index("--disable-api-nodes"):])
    out = tmp_path / "out"
    batch = BatchProcess(*_folders(tmp_path), "--out", str(out), "--comfyui", str(tree.root),
                         f"--comfyui-args=--cpu {comfy_args}", "--size", "192")
    started_server = batch.wait_event("server_started", timeout=240)
    url = started_server["url"]
    assert answers(url)
    # Where a later run finds this server if this batch process were killed (it would use it and stop it).
    assert json.loads((out / "comfyui.pid").read_text())["pid"] == started_server["pid"]
    batch.wait_event("job_submitted", 3)
    culprit = batch.wait_event("job_started", 2)["job"]
    waiting = [e["job"] for e in batch.events if e["event"] == "job_submitted"][2]
    os.killpg(started_server["pid"], signal.SIGKILL)  # the local server dies: out of memory, say
    restarted = batch.wait_event("server_restarted", timeout=240)
    batch.wait_for(lambda e: e["event"] == "job_started" and e["job"] == culprit)  # submitted once more
    os.killpg(restarted["pid"], signal.SIGKILL)  # and the server dies with it again
    assert batch.finish(300) == 1, batch.stderr
    names = batch.names()
    assert names.count("server_restarted") == 2 and names[-2:] == ["batch_done", "server_stopped"]
    assert not answers(url, timeout=1.0) and not (out / "comfyui.pid").exists()  # stopped at the end

    jobs = {job["name"]: job for job in report_of(out)["jobs"]}
    assert jobs[culprit]["status"] == "failed" and jobs[culprit]["error_kind"] == "lost"
    assert "the server stopped 2 times while running this job" in jobs[culprit]["error"]
    assert {n: (j["lost_runs"], j["submissions"]) for n, j in jobs.items()} == {
        n: (2, 2) if n == culprit else (0, 3) if n == waiting else (0, 1) for n in jobs}
    for name, job in jobs.items():
        if name != culprit:
            assert job["status"] == "done"
            assert len(decoded_frames(out / job["outputs"][0])) == frames_at_8fps(Path(job["driving"])), name
    log = (out / "comfyui.log").read_text()  # the local server's log, over its three runs
    # Four jobs sent once, the culprit once more, the job waiting behind it twice more (it was lost twice).
    assert log.count("got prompt") == sum(j["submissions"] for j in jobs.values()) == 4 + 1 + 2
    assert log.count("Prompt executed in") == 3
