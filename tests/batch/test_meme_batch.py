"""Two jobs of the shipped meme workflow (``workflows/hellomeme_video_api.json``) through the batch command and a
real ComfyUI server: random SD1.5 checkpoint and random v5 weights in the official layout (as the end-to-end
meme test prepares them), generation size 128, 2 steps, 1 s driving clips. Each job's two videos (the face crop
and the face pasted back into the whole portrait) are decoded; the prompts the server ran carry the job's
settings."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from hellomeme_core.batch.workflow import shipped_workflow_path
from tests.batch.support import (MEDIA, audio_codec, cut_clip, decoded_frames, frames_at_8fps, jsonl, report_of,
                                 run_batch, saved_main_files)
from tests.e2e.conftest import E2E_CHECKPOINT, stage_meme_files

pytestmark = pytest.mark.slow

SIZE, STEPS = 128, 2


def test_two_jobs_of_the_shipped_meme_workflow(comfy_server, tmp_path: Path):
    stage_meme_files(comfy_server)
    # The shipped workflow as a user adapts it: their checkpoint's file name in the two checkpoint loaders.
    graph = json.loads(shipped_workflow_path().read_text())
    for node in graph.values():
        if node["class_type"] == "CheckpointLoaderSimple":
            node["inputs"]["ckpt_name"] = E2E_CHECKPOINT
    workflow = tmp_path / "meme_api.json"
    workflow.write_text(json.dumps(graph))

    show1, zzj = MEDIA / "reference" / "show1.jpg", MEDIA / "reference" / "zzj.jpg"
    qie = cut_clip(MEDIA / "driving" / "qie.mp4", tmp_path / "qie_1s.mp4", 1.0)
    tbh = cut_clip(MEDIA / "driving" / "tbh.mp4", tmp_path / "tbh_1s.mp4", 1.0)
    jobs = jsonl(tmp_path / "jobs.jsonl", [
        {"reference": str(show1), "driving": str(qie), "name": "show1_qie"},
        {"reference": str(zzj), "driving": str(tbh), "name": "zzj_tbh", "seed": 7, "prompt": "smiling"},
    ])
    out = tmp_path / "out"
    done = run_batch(jobs, "--out", out, "--server", comfy_server.base_url, "--workflow", workflow,
                     "--version", "v5", "--size", SIZE, "--steps", STEPS, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    report = report_of(out)
    server_seconds = ", ".join(f"{j['seconds']:.0f} s" for j in report["jobs"])
    print(f"\nmeme batch: {report['run_seconds']:.0f} s for 2 jobs ({server_seconds} on the server)")
    saved = saved_main_files(comfy_server)
    for job, reference, clip in zip(report["jobs"], (show1, zzj), (qie, tbh)):
        name = job["name"]
        assert job["status"] == "done" and job["outputs"] == [f"{name}.mp4", f"{name}_full.mp4"]
        assert saved[job["prompt_id"]] == 1
        frames = frames_at_8fps(clip)
        face = decoded_frames(out / f"{name}.mp4")
        full = decoded_frames(out / f"{name}_full.mp4")
        width, height = Image.open(reference).size
        assert face.shape == (frames, SIZE, SIZE, 3) and full.shape == (frames, height, width, 3)
        assert face.reshape(frames, -1).std(axis=1).min() > 1.0
        assert audio_codec(out / f"{name}.mp4") == "aac" and audio_codec(out / f"{name}_full.mp4") == "aac"
        # The prompt the server ran carries the job's settings in the shipped workflow's nodes.
        prompt = comfy_server.get_json(f"/history/{job['prompt_id']}")[job["prompt_id"]]["prompt"][2]
        by_class = {node["class_type"]: node["inputs"] for node in prompt.values()}
        assert by_class["HelloMemeLoadModels"]["version"] == "v5"
        assert by_class["HelloMemeVideoSampler"]["steps"] == STEPS
        size_node = next(n for n in prompt.values() if n["class_type"] == "PrimitiveInt")
        assert size_node["inputs"]["value"] == SIZE
        positive = next(n for n in prompt.values() if n["_meta"]["title"].startswith("Positive prompt"))
        if name == "zzj_tbh":
            assert by_class["HelloMemeVideoSampler"]["seed"] == 7
            assert positive["inputs"]["text"].startswith("smiling, (best quality)")
        else:
            assert by_class["HelloMemeVideoSampler"]["seed"] == graph_seed(graph)
            assert positive["inputs"]["text"].startswith("(best quality)")


def graph_seed(graph: dict) -> int:
    return next(n["inputs"]["seed"] for n in graph.values() if n["class_type"] == "HelloMemeVideoSampler")
