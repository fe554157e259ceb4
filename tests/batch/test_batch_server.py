"""The batch command against the session's real ComfyUI server, with the quick marked workflow
(``quick_workflow_api.json``: reference + driving clip -> pose condition video and landmark video, with the
clip's audio; a few seconds a job): a 12-job batch, bad jobs, Ctrl-C, a killed client, a dropped websocket and
503 answers. Every fault test checks against the server itself that no job ran twice and none was lost:
``POST /prompt`` calls counted in its log, main videos saved per prompt id in its output folder.

Each test gives its jobs its own generation size, so no two tests share a prompt id (a job the server already
ran would be taken from its history, not run).
"""
from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.batch.support import (MEDIA, QUICK_WORKFLOW, BatchProcess, audio_codec, decoded_frames, events_of,
                                 frames_at_8fps, jsonl, link_media, report_of, run_batch, saved_main_files,
                                 state_of, submissions_in_log)

pytestmark = pytest.mark.slow

REFERENCES = MEDIA / "reference"
DRIVINGS = MEDIA / "driving"


def _common(server, out: Path, size: int) -> list[str]:
    return ["--out", str(out), "--server", server.base_url, "--workflow", str(QUICK_WORKFLOW), "--size", str(size)]


def _check_outputs(out: Path, report: dict, size: int) -> None:
    """Every done job's two videos decode, with one frame per 8 fps driving frame and the clip's audio."""
    for job in report["jobs"]:
        assert job["status"] == "done", job
        name = job["name"]
        assert job["outputs"] == [f"{name}.mp4", f"{name}_landmarks.mp4"]
        expected = frames_at_8fps(Path(job["driving"]))
        video = decoded_frames(out / f"{name}.mp4")
        assert video.shape == (expected, size, size, 3), name
        assert video.reshape(len(video), -1).std(axis=1).min() > 1.0  # the pose drawing, not blank frames
        assert len(decoded_frames(out / f"{name}_landmarks.mp4")) == expected
        assert audio_codec(out / f"{name}.mp4") == "aac" and audio_codec(out / f"{name}_landmarks.mp4") == "aac"
        assert job["frames"] == expected and job["has_audio"] is True
        assert job["seconds"] > 0


def _assert_each_ran_once(server, report: dict, submissions_before: int, extra_submissions: int = 0) -> None:
    pids = [job["prompt_id"] for job in report["jobs"]]
    saved = saved_main_files(server)
    assert {pid: saved[pid] for pid in pids} == {pid: 1 for pid in pids}  # one saved video per job: none twice
    assert submissions_in_log(server) - submissions_before == len(pids) + extra_submissions
    assert sum(job["submissions"] for job in report["jobs"]) == len(pids) + extra_submissions
    queue = server.get_json("/queue")
    assert not {item[1] for item in queue["queue_running"] + queue["queue_pending"]} & set(pids)


def test_twelve_jobs_from_two_folders(comfy_server, tmp_path: Path):
    refs = link_media(tmp_path / "refs", [REFERENCES / n for n in ("show1.jpg", "zzj.jpg", "civitai1.jpg")])
    drivings = link_media(tmp_path / "drivings", [DRIVINGS / n for n in ("amns.mp4", "qie.mp4", "tbh.mp4", "ysll.mp4")])
    out = tmp_path / "out"
    before = submissions_in_log(comfy_server)
    done = run_batch("--references", refs, "--drivings", drivings, *_common(comfy_server, out, 128), "--json",
                     timeout=300)
    assert done.returncode == 0, done.stderr
    events = events_of(done.stdout)
    report = report_of(out)
    assert report["counts"]["done"] == 12 and len(report["jobs"]) == 12
    assert [e["job"] for e in events if e["event"] == "job_done"] == [j["name"] for j in report["jobs"]]  # in order
    assert {e["event"] for e in events} >= {"batch_start", "ws_connected", "job_submitted", "job_started", "progress",
                                            "job_done", "batch_done"}
    _check_outputs(out, report, 128)
    _assert_each_ran_once(comfy_server, report, before)
    print(f"\n12 jobs: {events[-1]['seconds']:.1f} s, client {report['client_ms_per_job']:.0f} ms/job, server idle "
          f"{report['server_idle_between_jobs_ms']['mean']:.0f} ms between jobs")

    # Run again: nothing is submitted, everything is reported done.
    before = submissions_in_log(comfy_server)
    again = run_batch("--references", refs, "--drivings", drivings, *_common(comfy_server, out, 128), timeout=120)
    assert again.returncode == 0, again.stderr
    assert submissions_in_log(comfy_server) == before
    assert "12 done" in again.stdout and again.stderr.count("done in an earlier run, skipped") == 12


def test_bad_jobs_fail_alone_with_their_own_message(comfy_server, tmp_path: Path):
    faceless = tmp_path / "faceless.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (256, 1))[..., None].repeat(3, -1)).save(faceless)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    show1, qie = REFERENCES / "show1.jpg", DRIVINGS / "qie.mp4"
    jobs = jsonl(tmp_path / "jobs.jsonl", [
        {"reference": str(faceless), "driving": str(qie), "name": "no_face"},
        {"reference": str(show1), "driving": str(corrupt), "name": "corrupt_video"},
        {"reference": str(tmp_path / "gone.jpg"), "driving": str(qie), "name": "missing_file"},
        {"reference": str(show1), "driving": str(qie), "name": "bad_size", "size": 100},
        {"reference": str(show1), "driving": str(qie), "name": "fps_over_the_node_max", "fps": 1000},
        {"reference": str(show1), "driving": str(qie), "name": "no_seed_input", "seed": 3},
        {"reference": str(show1), "driving": str(qie), "name": "good"},
        {"reference": str(show1), "driving": str(qie), "name": "good_copy"},  # the same job: one run serves both
    ])
    out = tmp_path / "out"
    done = run_batch(jobs, *_common(comfy_server, out, 192), timeout=180)
    assert done.returncode == 1, done.stderr
    rows = {job["name"]: job for job in report_of(out)["jobs"]}
    assert rows["good"]["status"] == "done" and rows["good_copy"]["status"] == "done"
    assert rows["good"]["prompt_id"] == rows["good_copy"]["prompt_id"]
    assert (rows["good"]["submissions"], rows["good_copy"]["submissions"]) == (1, 0)
    assert saved_main_files(comfy_server)[rows["good"]["prompt_id"]] == 1
    assert np.array_equal(decoded_frames(out / "good.mp4"), decoded_frames(out / "good_copy.mp4"))
    errors = {name: (row["error_kind"], row["error"]) for name, row in rows.items() if not name.startswith("good")}
    assert all(rows[name]["status"] == "failed" for name in errors)
    kind, error = errors["no_face"]
    assert kind == "execution" and error.startswith("node 5 (Extract Face Motion (reference)): ") and "face" in error
    kind, error = errors["corrupt_video"]
    assert kind == "execution" and error.startswith("node 2 (Load Driving Video (8 fps)): ")
    assert f"cannot decode {corrupt} " in error  # the job's own file, not the server's copy
    assert errors["missing_file"] == ("job", f"reference file not found: {tmp_path / 'gone.jpg'}")
    assert errors["bad_size"] == ("job", "size: 100 is not a multiple of 64 (the generation size must be; e.g. 512)")
    kind, error = errors["fps_over_the_node_max"]
    assert kind == "validation" and error.startswith("node 2 (Load Driving Video (8 fps)): ") and "target_fps" in error
    assert errors["no_seed_input"][0] == "job" and "the workflow has no input for seed" in errors["no_seed_input"][1]
    # The table names each job and its error.
    for name in errors:
        assert name in done.stdout
    assert not (out / "no_face.mp4").exists() and not (out / "corrupt_video.mp4").exists()

    # Run again with two outputs deleted: the failures are reported again, nothing is sent (--retry-failed would
    # send them); the deleted files are fetched again from the server's history, for both jobs of the one run.
    (out / "good.mp4").unlink()
    (out / "good_copy_landmarks.mp4").unlink()
    before = submissions_in_log(comfy_server)
    again = run_batch(jobs, *_common(comfy_server, out, 192), "--json", timeout=120)
    assert again.returncode == 1 and submissions_in_log(comfy_server) == before
    events = events_of(again.stdout)
    skipped = {e["job"]: e["status"] for e in events if e["event"] == "job_skipped"}
    assert skipped == {"no_face": "failed", "corrupt_video": "failed", "fps_over_the_node_max": "failed"}
    assert {e["job"]: e["where"] for e in events if e["event"] == "job_adopted"} == {"good": "finished",
                                                                                    "good_copy": "finished"}
    assert sorted(e["job"] for e in events if e["event"] == "job_done") == ["good", "good_copy"]
    assert (out / "good.mp4").is_file() and (out / "good_copy_landmarks.mp4").is_file()
    assert {e["job"] for e in events if e["event"] == "job_failed"} == {"missing_file", "bad_size", "no_seed_input"}


def test_a_workflow_the_server_cannot_run_stops_the_batch_before_any_job(comfy_server, tmp_path: Path):
    """The shipped workflow (the default) on a server without its SD1.5 checkpoint: every job would fail the
    same way, so the batch stops at the first answer and says why; the job stays to do."""
    jobs = jsonl(tmp_path / "jobs.jsonl", [{"reference": str(REFERENCES / "show1.jpg"), "driving": str(DRIVINGS / "qie.mp4")},
                                           {"reference": str(REFERENCES / "zzj.jpg"), "driving": str(DRIVINGS / "qie.mp4")}])
    out = tmp_path / "out"
    before = submissions_in_log(comfy_server)
    done = run_batch(jobs, "--out", out, "--server", comfy_server.base_url, "--json", timeout=120)
    assert done.returncode == 2, done.stderr
    (error,) = [e["error"] for e in events_of(done.stdout) if e["event"] == "error"]
    assert error.startswith("the workflow fails on this server whatever the job: node ") and "ckpt_name" in error
    assert submissions_in_log(comfy_server) - before == 1
    assert [j["status"] for j in report_of(out)["jobs"]] == ["pending", "pending"]


def test_ctrl_c_takes_the_batch_out_of_the_queue_and_a_rerun_goes_on(comfy_server, tmp_path: Path):
    refs = link_media(tmp_path / "refs", [REFERENCES / n for n in ("show1.jpg", "zzj.jpg")])
    drivings = link_media(tmp_path / "drivings", [DRIVINGS / n for n in ("amns.mp4", "qie.mp4")])
    out = tmp_path / "out"
    args = ["--references", refs, "--drivings", drivings, *_common(comfy_server, out, 256), "--max-queued", "2"]
    before = submissions_in_log(comfy_server)
    batch = BatchProcess(*args)
    batch.wait_event("job_done", 1)
    batch.wait_event("job_started", 2)  # the second job runs, the third waits in the server's queue
    batch.signal(signal.SIGINT)
    assert batch.finish(60) == 130, batch.stderr
    stopping = next(e for e in batch.events if e["event"] == "stopping")
    assert len(stopping["in_flight"]) == 2
    cancelled = {e["job"]: e["how"] for e in batch.events if e["event"] == "job_cancelled"}
    state = state_of(out)["jobs"]
    pids = {name: rec["prompt_id"] for name, rec in state.items()}
    queue = comfy_server.get_json("/queue")
    assert not {item[1] for item in queue["queue_running"] + queue["queue_pending"]} & set(pids.values())
    done_first = [name for name, rec in state.items() if rec["status"] == "done"]
    # The running job was interrupted, the waiting one taken out (unless it finished first), nothing else sent.
    assert len(done_first) + len(cancelled) == 3
    assert set(cancelled.values()) <= {"interrupted", "removed from the queue"}
    assert list(cancelled.values()).count("interrupted") <= 1  # only the batch's own running job
    assert [rec["status"] for rec in state.values()].count("pending") == 1
    for name in done_first:
        assert len(decoded_frames(out / f"{name}.mp4")) == frames_at_8fps(DRIVINGS / f"{name.split('__')[1]}.mp4")
    for name, how in cancelled.items():
        if how == "interrupted":
            entry = comfy_server.get_json(f"/history/{pids[name]}")[pids[name]]
            assert any(m[0] == "execution_interrupted" for m in entry["status"]["messages"])
    assert submissions_in_log(comfy_server) - before == 3

    again = run_batch(*args, "--json", timeout=180)
    assert again.returncode == 0, again.stderr
    events = events_of(again.stdout)
    assert sorted(e["job"] for e in events if e["event"] == "job_skipped") == sorted(done_first)
    report = report_of(out)
    _check_outputs(out, report, 256)
    # Only the cancelled jobs were sent twice; no done job was sent again.
    assert {j["name"]: j["submissions"] for j in report["jobs"]} == {
        name: 2 if name in cancelled else 1 for name in state}
    assert submissions_in_log(comfy_server) - before == 4 + len(cancelled)


def test_a_killed_client_resumes_without_running_anything_twice(comfy_server, tmp_path: Path):
    refs = link_media(tmp_path / "refs", [REFERENCES / n for n in ("show1.jpg", "civitai1.jpg")])
    drivings = link_media(tmp_path / "drivings", [DRIVINGS / n for n in ("amns.mp4", "tbh.mp4")])
    out = tmp_path / "out"
    args = ["--references", refs, "--drivings", drivings, *_common(comfy_server, out, 320)]
    before = submissions_in_log(comfy_server)
    batch = BatchProcess(*args)
    batch.wait_event("job_submitted", 3)
    batch.wait_event("job_started", 2)  # killed with the second job running and the third waiting
    batch.signal(signal.SIGKILL)
    batch.finish(30)
    on_server = [e["job"] for e in batch.events if e["event"] == "job_submitted"]
    assert len(on_server) == 3

    again = BatchProcess(*args)
    assert again.finish(180) == 0, again.stderr
    adopted = {e["job"]: e["where"] for e in again.events if e["event"] == "job_adopted"}
    assert set(adopted) | {e["job"] for e in again.events if e["event"] == "job_skipped"} >= set(on_server)
    assert not set(adopted) & {e["job"] for e in again.events if e["event"] == "job_submitted"}
    report = report_of(out)
    _check_outputs(out, report, 320)
    _assert_each_ran_once(comfy_server, report, before)


def test_dropped_websocket_and_connections_and_503_answers(comfy_server, tmp_path: Path):
    from tests.batch.support import FaultyProxy

    proxy = FaultyProxy(comfy_server.port).start()
    try:
        refs = link_media(tmp_path / "refs", [REFERENCES / n for n in ("zzj.jpg", "civitai1.jpg")])
        drivings = link_media(tmp_path / "drivings", [DRIVINGS / n for n in ("amns.mp4", "qie.mp4")])
        out = tmp_path / "out"
        before = submissions_in_log(comfy_server)
        batch = BatchProcess("--references", refs, "--drivings", drivings, "--out", out, "--server", proxy.url,
                             "--workflow", QUICK_WORKFLOW, "--size", "384")
        batch.wait_event("job_started", 2)
        proxy.fail_next(4)  # the next four connections get "503 Service Unavailable"
        proxy.drop_all()  # and every open one (the websocket, kept-alive HTTP) is cut now
        batch.wait_event("job_done", 3)
        proxy.drop_all()
        assert batch.finish(180) == 0, batch.stderr
    finally:
        proxy.stop()
    names = batch.names()
    # Both cuts reached the websocket; it came back at least after the first (the batch may end before the second).
    assert names.count("ws_lost") >= 2 and names.count("ws_connected") >= 2 and proxy.websockets >= 2
    assert proxy.answered_503 == 4
    assert any("503" in e["error"] for e in batch.events if e["event"] == "server_unreachable")
    report = report_of(out)
    _check_outputs(out, report, 384)
    _assert_each_ran_once(comfy_server, report, before)
