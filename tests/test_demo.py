"""``python -m hellomeme_core demo`` (what ``make demo`` runs) on real media: motion JSON and two videos with audio."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.e2e.media import probe, read_frames
from tests.face.media_cache import media_path

REPO = Path(__file__).resolve().parents[1]


def test_demo_writes_motion_and_previews_with_audio(tmp_path: Path):
    out = tmp_path / "demo"
    driving, reference = media_path("driving/qie.mp4"), media_path("reference/chillout.jpg")
    done = subprocess.run(
        [sys.executable, "-m", "hellomeme_core", "demo", "--driving", str(driving), "--reference", str(reference),
         "--out", str(out), "--max-frames", "12", "--models-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    motion = json.loads((out / "motion.json").read_text())
    assert motion["format"] == "hellomeme.face_motion/1" and len(motion["frames"]) == 12
    assert all(f["face_found"] and len(f["expression"]) == 51 for f in motion["frames"])
    for name, size in (("landmarks_preview.mp4", 512), ("pose_condition.mp4", 512)):
        info = probe(out / name)
        assert (info.width, info.height) == (size, size) and info.audio_codec is not None, (name, info)
        frames = read_frames(out / name)
        assert frames.shape[0] == 12
    condition = read_frames(out / "pose_condition.mp4").astype(int)
    dark = (condition.max(axis=-1) < 40).mean()
    assert 0.5 < dark < 0.99  # black background with the coloured square drawn on it
    assert "no complete HelloMeme version" in done.stdout  # the empty models folder is reported, not an error
