"""``python -m hellomeme_core report``: files, summary, JSON, and clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hellomeme_core.cli.main import main
from hellomeme_core.media import write_video
from tests.face.media_cache import media_path


def test_report_of_a_clip_against_itself(tmp_path: Path, capsys):
    clip = media_path("driving/qie.mp4")
    out = tmp_path / "out"
    code = main(["report", "--driving", str(clip), "--result", str(clip), "--reference",
                 str(media_path("reference/civitai1.jpg")), "--out", str(out), "--pixels", "--max-frames", "12"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "head pose error (APD, deg): yaw 0.00, pitch 0.00, roll 0.00" in text and "PSNR inf dB" in text
    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "errors.png", "report.json"]
    data = json.loads((out / "report.json").read_text())
    assert data["format"] == "hellomeme.fidelity_report/1" and data["summary"]["frames_compared"] == 12
    assert data["summary"]["aed"] == 0.0 and data["summary"]["delay"]["frames"] == 0
    assert data["summary"]["identity_drift"]["mean"] > 0  # another person than civitai1
    assert data["summary"]["files"]["result"] == str(clip)
    assert main(["report", "--driving", str(clip), "--result", str(clip), "--out", str(out), "--json",
                 "--max-frames", "6"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["summary"]["frames_compared"] == 6 and printed["summary"]["psnr_db"] is None


def test_clear_errors_for_a_missing_file_a_broken_video_and_no_face(tmp_path: Path, capsys):
    clip = media_path("driving/qie.mp4")
    assert main(["report", "--driving", str(tmp_path / "nope.mp4"), "--result", str(clip)]) == 1
    assert "error: driving: " in capsys.readouterr().err
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    assert main(["report", "--driving", str(clip), "--result", str(broken), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "error: result: " in err and str(broken) in err
    blank = write_video(tmp_path / "blank.mp4", np.full((4, 64, 64, 3), 90, np.uint8), 8.0)
    assert main(["report", "--driving", str(clip), "--result", str(blank), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "result video" in err and "no face found" in err
    assert not (tmp_path / "r").exists()
