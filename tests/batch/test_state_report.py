"""The state file (atomic, one process per folder), the report, and the command's answers before any server."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from hellomeme_core.batch.errors import BatchLocked
from hellomeme_core.batch.jobs import Job
from hellomeme_core.batch.report import build_report, server_idle_gaps_ms, summary_table
from hellomeme_core.batch.state import DONE, FAILED, StateStore
from hellomeme_core.cli.main import main
from tests.batch.support import REPO, jsonl
from tests.support.comfy_server import free_port


def test_state_round_trip_and_atomic_writes(tmp_path: Path):
    store = StateStore(tmp_path).load()
    record = store.record("a")
    record.prompt_id, record.status, record.submissions, record.outputs = "p", DONE, 2, ["a.mp4"]
    store.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch_state.json"]  # no temporary file left
    again = StateStore(tmp_path).load()
    assert again.client_id == store.client_id  # the websocket id survives a restart of the client
    assert again.record("a") == record
    again.record("a").reset("q")
    assert again.record("a").status == "pending" and again.record("a").submissions == 0
    (tmp_path / "batch_state.json").write_text("{broken")
    with pytest.raises(BatchLocked, match="cannot be read"):
        StateStore(tmp_path).load()


def test_one_batch_process_per_output_folder(tmp_path: Path):
    (tmp_path / ".a.mp4.123.part").write_bytes(b"half")  # left by a killed batch
    (tmp_path / "a.mp4").write_bytes(b"whole")
    first = StateStore(tmp_path)
    first.lock()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".batch.lock", "a.mp4"]
    code = ("import sys; from hellomeme_core.batch.state import StateStore\n"
            "try:\n    StateStore(sys.argv[1]).lock()\nexcept Exception as e:\n    print(e); sys.exit(3)\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 3 and f"another batch (pid {os.getpid()}) is running in {tmp_path}" in done.stdout
    first.unlock()
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_idle_gaps_and_report(tmp_path: Path):
    spans = [SimpleNamespace(server_start_ms=s, server_end_ms=e)
             for s, e in ((3000, 5000), (1000, 2500), (5040, 6000), (7000, None), (5900, 6500))]
    # In start order; a job without an end (not finished) is left out; an overlap is no idle time.
    assert server_idle_gaps_ms(spans) == [500.0, 40.0, 0.0]

    store = StateStore(tmp_path)
    a, b = Job("a", Path("r.jpg"), Path("d.mp4")), Job("b", Path("r.jpg"), Path("e.mp4"), {"seed": 1}, 3)
    rec = store.record("a")
    rec.status, rec.seconds, rec.frames, rec.outputs, rec.client_ms = DONE, 2.5, 16, ["a.mp4", "a_full.mp4"], 30.0
    rec.server_start_ms, rec.server_end_ms = 1000, 3500
    rec_b = store.record("b")
    rec_b.status, rec_b.error = FAILED, "node 10 (Extract Face Motion (reference)): no face"
    report = build_report([a, b], store, {"server": "s"})
    assert report["counts"]["done"] == 1 and report["counts"]["failed"] == 1
    assert report["client_ms_per_job"] == 30.0
    assert report["jobs"][1]["settings"] == {"seed": 1} and report["jobs"][1]["line"] == 3
    table = summary_table(report, 200).splitlines()
    assert table[1].split() == ["a", "done", "2.5", "16", "a.mp4,", "a_full.mp4"]
    assert table[2].startswith("b ") and table[2].endswith("node 10 (Extract Face Motion (reference)): no face")
    assert table[-1] == "1 done, 1 failed"


def test_the_command_names_a_malformed_line_before_touching_any_server(tmp_path: Path, capsys):
    path = jsonl(tmp_path / "jobs.jsonl", [{"reference": "a.jpg", "driving": "b.mp4"}])
    with open(path, "a") as f:
        f.write('{"reference": "a.jpg", "driving": "b.mp4"\n')
    port = free_port()  # nothing listens there: the jobs file is read first
    assert main(["batch", str(path), "--out", str(tmp_path / "out"), "--server", f"http://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path} line 2: not valid JSON")
    assert main(["batch", str(path), "--out", str(tmp_path / "out"), "--steps", "0", "--json"]) == 2
    out = capsys.readouterr().out
    assert json.loads(out) == {"event": "error", "error": "command line: steps: 0 is out of range (1 to 10000)"}


def test_an_explicit_server_that_does_not_answer_exits_3(tmp_path: Path, capsys):
    path = jsonl(tmp_path / "jobs.jsonl", [{"reference": "a.jpg", "driving": "b.mp4"}])
    port = free_port()
    assert main(["batch", str(path), "--out", str(tmp_path / "out"), "--server", f"http://127.0.0.1:{port}"]) == 3
    assert f"nothing answers at http://127.0.0.1:{port}" in capsys.readouterr().err


def test_auto_without_a_comfyui_says_how_to_name_one(tmp_path: Path, capsys, monkeypatch):
    from hellomeme_core.batch import local_server

    monkeypatch.setattr(local_server, "DEFAULT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("COMFYUI_PATH", raising=False)
    path = jsonl(tmp_path / "jobs.jsonl", [{"reference": "a.jpg", "driving": "b.mp4"}])
    assert main(["batch", str(path), "--out", str(tmp_path / "out")]) == 3
    assert "give --comfyui PATH (or set COMFYUI_PATH)" in capsys.readouterr().err
    monkeypatch.setenv("COMFYUI_PATH", str(tmp_path))
    assert main(["batch", str(path), "--out", str(tmp_path / "out")]) == 3
    assert f"$COMFYUI_PATH {tmp_path} is not a ComfyUI folder" in capsys.readouterr().err


def test_a_local_server_left_by_a_killed_batch_is_adopted_and_stopped(tmp_path: Path):
    """``--server auto`` writes ``comfyui.pid``; the next run finds the server still answering, uses it and stops
    it at the end. (A stand-in server: Python's http.server answering ``/system_stats``.)"""
    from hellomeme_core.batch.local_server import PID_FILE, LocalComfyUI, answers

    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "system_stats").write_text("{}")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                "--directory", str(tmp_path / "www")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    # Reaped as soon as it ends, as the real one is (not this process's child: an ended child stays a zombie).
    threading.Thread(target=process.wait, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            if answers(url, timeout=0.5):
                break
            time.sleep(0.1)
        out = tmp_path / "out"
        out.mkdir()
        assert LocalComfyUI.adopt(out) is None  # no pid file: nothing to adopt
        (out / PID_FILE).write_text(json.dumps({"pid": process.pid, "url": url, "root": str(tmp_path)}))
        server = LocalComfyUI.adopt(out)
        assert server is not None and server.url == url and server.pid == process.pid and server.alive()
        started = time.monotonic()
        server.stop()
        assert process.wait(timeout=10) is not None and not server.alive()
        assert time.monotonic() - started < 5  # it went at SIGTERM
        assert not (out / PID_FILE).exists()
        (out / PID_FILE).write_text(json.dumps({"pid": process.pid, "url": url, "root": str(tmp_path)}))
        assert LocalComfyUI.adopt(out) is None and not (out / PID_FILE).exists()  # gone: the stale file is removed
    finally:
        if process.poll() is None:
            process.kill()
