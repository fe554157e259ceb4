"""``python -m hellomeme_core demo`` (what ``make demo`` runs) on real media: motion JSON and two videos with audio;
without model files the exact list of what is missing and the command that fetches it; with them (random SD1.5
and v5 weights in the official layout, outside the ComfyUI tree it starts) the meme itself, made by one batch job
on a ComfyUI the demo starts and stops."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.media import probe, read_frames
from tests.face.media_cache import media_path

REPO = Path(__file__).resolve().parents[1]
OFFICIAL_CHECKPOINT = "v1-5-pruned-emaonly.safetensors"  # the name the shipped workflow loads
SIZE, STEPS, SECONDS = 128, 2, 1.0  # a quick meme: 8 frames at the official 8 fps


def demo_command(*args: str | os.PathLike) -> list[str]:
    return [sys.executable, "-m", "hellomeme_core", "demo", *map(str, args)]


def test_demo_writes_motion_and_previews_with_audio(tmp_path: Path):
    out = tmp_path / "demo"
    models = tmp_path / "models" / "hellomeme"  # not there: nothing to make the meme with
    driving, reference = media_path("driving/qie.mp4"), media_path("reference/chillout.jpg")
    done = subprocess.run(
        demo_command("--driving", driving, "--reference", reference, "--out", out, "--max-frames", "12",
                     "--models-dir", models),
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
    # The empty models folder is reported, not an error: every missing file of v5 (the video default) and the
    # checkpoint, where each goes, and the one command that fetches them all.
    assert f"no complete HelloMeme version in {models}" in done.stdout
    expected = [models / name / "diffusion_pytorch_model.safetensors"
                for name in ("hm5_reference", "hm5_control_base", "hm5_control_proj", "hm5_motion", "pd_fgc_motion")]
    expected.append(models.parent / "checkpoints" / OFFICIAL_CHECKPOINT)
    listed = done.stdout.split("missing file(s):\n", 1)[1].split("\nfetch them:", 1)[0].splitlines()
    assert [Path(line.strip()) for line in listed] == expected
    fetch = f"python -m hellomeme_core download --version v5 --checkpoint --models-dir {models}"
    assert f"fetch them: {fetch}\n" in done.stdout
    assert not (out / "meme.mp4").exists() and not (out / "meme_batch").exists()


def _link(source: Path, target: Path) -> None:
    """``target`` as another name of ``source`` (a hard link: no 2 GB copy; a symlink across file systems)."""
    try:
        os.link(source, target)
    except OSError:
        target.symlink_to(source)


def _stop_server_left_by(batch_dir: Path) -> None:
    """Kill the demo's ComfyUI if the demo could not stop it (it ran past the test's timeout)."""
    try:
        pid = int(json.loads((batch_dir / "comfyui.pid").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return
    try:
        os.killpg(pid, signal.SIGKILL)  # it leads its own process group
    except (ProcessLookupError, PermissionError):
        pass


@pytest.mark.slow
def test_demo_makes_the_meme_when_the_files_are_there(comfy_server, tmp_path: Path):
    import torch
    from PIL import Image

    from hellomeme_core.batch.local_server import answers
    from hellomeme_core.driving_video import load_driving_video
    from tests.e2e.conftest import e2e_checkpoint
    from tests.support.official_weights import write_version

    shared = e2e_checkpoint(comfy_server)  # the other meme tests of the session reuse it
    # The official layout (models/hellomeme, models/checkpoints) outside the ComfyUI tree the demo starts (the
    # session server's copy, so no second copy is made): the demo must hand that ComfyUI these folders.
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    _link(shared, models / "checkpoints" / OFFICIAL_CHECKPOINT)
    write_version(models / "hellomeme", "v5", stage="video", dtype=torch.float16)
    driving, reference = media_path("driving/qie.mp4"), media_path("reference/chillout.jpg")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "HELLOMEME_MODELS_DIR"}
    env["COMFYUI_PATH"] = str(comfy_server.root)
    process = subprocess.Popen(
        demo_command("--driving", driving, "--reference", reference, "--out", out, "--models-dir", models / "hellomeme",
                     "--size", SIZE, "--steps", STEPS, "--max-seconds", SECONDS),
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"the demo did not finish within 600 s:\n{stdout}\n{stderr}")
    finally:
        _stop_server_left_by(out / "meme_batch")
    assert process.returncode == 0, stdout + stderr
    print(f"\n{stdout}")

    # Its own ComfyUI (not the session server), stopped once the meme was fetched.
    started = re.search(r"ComfyUI answers at (http://127\.0\.0\.1:(\d+))", stdout)
    assert started and int(started[2]) != comfy_server.port, stdout
    assert not answers(started[1], timeout=1.0) and not (out / "meme_batch" / "comfyui.pid").exists()
    # ... told where the model files are through an extra_model_paths.yaml, which it read.
    log = (out / "meme_batch" / "comfyui.log").read_text()
    for folder in ("hellomeme", "checkpoints"):
        assert f"Adding extra search path {folder} {(models / folder).resolve()}" in log
    report = json.loads((out / "meme_batch" / "report.json").read_text())
    (job,) = report["jobs"]
    assert job["status"] == "done" and job["settings"] == {"version": "v5", "size": SIZE, "steps": STEPS}

    frames = len(load_driving_video(driving, max_seconds=SECONDS).frames)
    assert frames == 8  # 1 s at the official 8 fps
    meme, full = read_frames(out / "meme.mp4"), read_frames(out / "meme_full.mp4")
    width, height = Image.open(reference).size
    assert meme.shape == (frames, SIZE, SIZE, 3)
    assert full.shape == (frames, height, width, 3)  # pasted back into the whole portrait
    assert meme.reshape(frames, -1).std(axis=1).min() > 1.0  # pictures, not flat frames
    for name in ("meme.mp4", "meme_full.mp4"):
        info = probe(out / name)
        assert info.fps == 8 and info.audio_codec == "aac", (name, info)
    assert f"meme: {out / 'meme.mp4'} ({frames} frames, with the driving audio), {out / 'meme_full.mp4'}" in stdout
    assert not (out / "meme_batch" / "meme.mp4").exists()  # moved beside the previews, not copied
