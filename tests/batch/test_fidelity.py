"""``batch --fidelity``: each finished job's output measured against its driving clip, columns in the report.

No server: the runner's fidelity step is called directly on a real clip and an "output" made from it at
another frame rate (what the batch's 8 fps outputs are), and the report merging is checked on the state."""
from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import numpy as np

from hellomeme_core.batch.jobs import Job
from hellomeme_core.batch.progress import Reporter
from hellomeme_core.batch.report import build_report, summary_table
from hellomeme_core.batch.runner import BatchRunner, RunnerOptions
from hellomeme_core.batch.state import DONE, StateStore
from hellomeme_core.cli import cmd_batch
from hellomeme_core.media import write_video
from tests.face.media_cache import clip, media_path


class Recorder(Reporter):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def event(self, event: str, **data) -> None:
        self.events.append((event, data))


def test_the_option_is_off_by_default_and_reaches_the_runner():
    parser = argparse.ArgumentParser()
    cmd_batch.add_arguments(parser)
    assert parser.parse_args(["--out", "x"]).fidelity is False
    assert parser.parse_args(["--out", "x", "--fidelity"]).fidelity is True
    assert RunnerOptions().fidelity is False


def test_fidelity_of_an_output_against_its_driving_clip(tmp_path: Path):
    driving = media_path("driving/qie.mp4")  # 15 fps
    source = clip("driving/qie.mp4")
    output = write_video(tmp_path / "qie_job.mp4", source.frames[:24:2], source.fps / 2)  # 7.5 fps, as a batch output
    store = StateStore(tmp_path)
    recorder = Recorder()
    runner = BatchRunner([], None, None, store, recorder, tmp_path, RunnerOptions(fidelity=True))
    job = Job("qie_job", media_path("reference/civitai1.jpg"), driving)
    columns = asyncio.run(runner._fidelity(job, output))
    print("fidelity columns:", columns)
    assert set(columns) == {"apd_deg", "apd_yaw_deg", "apd_pitch_deg", "apd_roll_deg", "aed", "mouth_corr",
                            "delay_frames", "report"}
    # The same frames, re-encoded: paired by time, the errors are the codec's only.
    assert columns["apd_deg"] < 1.0 and columns["aed"] < 0.03 and columns["delay_frames"] == 0
    assert Path(columns["report"]) == tmp_path / "qie_job_fidelity" / "report.json"
    assert sorted(p.name for p in (tmp_path / "qie_job_fidelity").iterdir()) == ["curves.png", "errors.png", "report.json"]
    assert recorder.events[-1][0] == "job_fidelity" and store.record("qie_job").client_ms > 0

    blank = write_video(tmp_path / "blank.mp4", np.full((3, 64, 64, 3), 80, np.uint8), 8.0)
    failed = asyncio.run(runner._fidelity(Job("blank", driving, driving), blank))
    assert set(failed) == {"error"} and "no face found" in failed["error"]


def test_fidelity_columns_in_the_report_and_the_table(tmp_path: Path):
    store = StateStore(tmp_path)
    jobs = [Job("a", Path("r.jpg"), Path("d.mp4")), Job("b", Path("r.jpg"), Path("e.mp4")),
            Job("c", Path("r.jpg"), Path("f.mp4"))]
    for name in "abc":
        rec = store.record(name)
        rec.status, rec.outputs, rec.frames = DONE, [f"{name}.mp4"], 8
    store.record("a").fidelity = {"apd_deg": 3.21, "aed": 0.0456, "mouth_corr": 0.812, "delay_frames": 1}
    store.record("b").fidelity = {"error": "result video b.mp4: no face found"}
    store.save()
    again = StateStore(tmp_path).load()  # the columns survive a resumed batch
    report = build_report(jobs, again, {})
    assert report["jobs"][0]["fidelity"]["apd_deg"] == 3.21 and "fidelity" not in report["jobs"][2]
    table = summary_table(report, 200).splitlines()
    assert table[1].endswith("a.mp4  [APD 3.2 deg, AED 0.046, mouth r 0.81, delay 1]")
    assert table[2].endswith("b.mp4  [fidelity: result video b.mp4: no face found]")
    assert table[3].endswith("c.mp4")


def test_identity_columns_with_an_insightface_pack(tmp_path: Path, monkeypatch):
    """With a pack (generated: its detector reports one fixed face box, its recognizer projects the aligned
    crop), the job's reference is compared with every output frame: the same frames re-encoded are ~1."""
    import cv2
    import pytest

    from hellomeme_core.errors import MissingModelFileError
    from hellomeme_core.report.videos import identity_pack
    from tests.face import insightface_models as M

    source = clip("driving/qie.mp4")
    h, w = source.frames.shape[1:3]
    scale = 640 / max(w, h)  # the frame is fitted into the detector's 640 square from its top-left corner
    x0, y0, x1, y1 = motion_box = (w * 0.3, h * 0.2, w * 0.7, h * 0.6)
    M.write_pack(tmp_path / "insightface" / "models" / "antelopev2", [M.face_at(tuple(v * scale for v in motion_box))],
                 names=("scrfd_10g_bnkps.onnx", "glintr100.onnx"))
    reference = tmp_path / "reference.png"
    cv2.imwrite(str(reference), cv2.cvtColor(source.frames[0], cv2.COLOR_RGB2BGR))
    output = write_video(tmp_path / "qie_job.mp4", source.frames[:12:2], source.fps / 2)
    pack = identity_pack(tmp_path / "insightface", "antelopev2")
    runner = BatchRunner([], None, None, StateStore(tmp_path), Recorder(), tmp_path,
                         RunnerOptions(fidelity=True, identity_pack=pack))
    columns = asyncio.run(runner._fidelity(Job("qie_job", reference, media_path("driving/qie.mp4")), output))
    print("identity columns:", columns.get("identity_mean"), columns.get("identity_min"))
    from hellomeme_core.face.insightface.identity import identity_similarity
    from hellomeme_core.media import read_media

    direct = identity_similarity(source.frames[0], read_media(output).frames, pack)  # what the column must hold
    assert columns["identity_mean"] == pytest.approx(float(np.nanmean(direct)), abs=1e-6)
    assert columns["identity_min"] == pytest.approx(float(np.nanmin(direct)), abs=1e-6)
    assert 0.8 < columns["identity_min"] <= columns["identity_mean"] <= 1.0 + 1e-6  # frame 0 is the reference
    assert f"identity {columns['identity_mean']:.2f}" in summary_table({"jobs": [{"name": "qie_job", "status": DONE, "seconds": 1.0, "frames": 6,
                                                      "outputs": ["qie_job.mp4"], "error": None,
                                                      "fidelity": columns}], "counts": {DONE: 1}}, width=300)
    with pytest.raises(MissingModelFileError, match="antelopev2"):
        identity_pack(tmp_path / "elsewhere", "antelopev2")
    monkeypatch.delenv("HELLOMEME_INSIGHTFACE_DIR", raising=False)
    assert identity_pack(None) is None  # no folder given, none in the environment: no identity columns
    monkeypatch.setenv("HELLOMEME_INSIGHTFACE_DIR", str(tmp_path / "insightface"))
    assert identity_pack(None) == pack
