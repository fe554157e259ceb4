"""The extension inside a real ComfyUI server: it imports cleanly, its nodes are listed with their
inputs, outputs and tooltips, and models given through extra_model_paths.yaml are found."""
from __future__ import annotations

import shutil
import socket
import time

import pytest
import torch

from tests.support import official_weights as W
from tests.support.comfy_host import ComfyUIHostMissing, find_comfyui_root
from tests.support.comfy_server import EXTENSION_DIR_NAME, ComfyServer, ComfyServerError

pytestmark = pytest.mark.slow
OUR_MODULE = f"custom_nodes.{EXTENSION_DIR_NAME}"


def test_extension_imports_without_failure(comfy_server):
    log = comfy_server.log_text()
    assert EXTENSION_DIR_NAME in log  # listed among the imported custom nodes
    assert comfy_server.import_failures() == [], "\n".join(comfy_server.import_failures())
    assert "Traceback" not in "\n".join(line for line in log.splitlines() if "hellomeme" in line.lower())


def test_object_info_lists_our_nodes_with_tooltips(comfy_server):
    info = comfy_server.object_info()
    ours = {name: entry for name, entry in info.items() if entry.get("python_module") == OUR_MODULE}
    assert "HelloMemeModelFiles" in ours
    node = ours["HelloMemeModelFiles"]
    assert node["display_name"] == "HelloMeme Model Files" and node["category"] == "HelloMeme"
    assert node["output"] == ["STRING", "STRING"] and node["output_name"] == ["report", "versions_found"]
    assert node["output_node"] is True
    version = node["input"]["required"]["version"]  # V3 nodes list a combo as ("COMBO", {"options": [...]})
    assert version[0] == "COMBO" and version[1]["options"] == ["all", "v1", "v2", "v3", "v4", "v5", "v5b", "v5c"]
    # One id prefix for every current node; the ids shipped before it are deprecated aliases of the same node.
    current = {name for name, entry in ours.items() if not entry.get("deprecated")}
    assert current == {"HelloMemeModelFiles", "HelloMemeLoadFaceAnalyzer", "HelloMemeExtractFaceMotion",
                       "HelloMemeRenderPoseCondition", "HelloMemeLoadModels", "HelloMemeReference", "HelloMemeApply",
                       "HelloMemeApplyTemporal", "HelloMemeVideoSampler", "HelloMemeLoadDrivingVideo",
                       "HelloMemePasteBack", "HelloMemeAudioToFaceMotion", "HelloMemeCombineFaceMotion",
                       "HelloMemeExtractBodyMotion", "HelloMemeRenderSkeletonCondition", "HelloMemeIdentitySimilarity",
                       "HelloMemeMotionFidelityReport"}
    for old, new in {"LoadHelloMemeModels": "HelloMemeLoadModels", "ApplyHelloMeme": "HelloMemeApply",
                     "ApplyHelloMemeTemporal": "HelloMemeApplyTemporal"}.items():
        assert ours[old]["deprecated"] is True and ours[old]["input"] == ours[new]["input"]
        assert ours[old]["output"] == ours[new]["output"] and ours[old]["display_name"] == ours[new]["display_name"]
    # Every input and output of every HelloMeme node carries a tooltip (the project's UI standard).
    for name, entry in ours.items():
        for section in ("required", "optional"):
            for input_name, spec in entry["input"].get(section, {}).items():
                options = spec[1] if len(spec) > 1 else {}
                assert options.get("tooltip"), f"{name}.{input_name} has no tooltip"
        assert len(entry.get("output_tooltips") or []) == len(entry["output"]), f"{name} lacks output tooltips"


def test_models_folder_from_extra_model_paths_is_found(comfy_server):
    # v1 is written by no other test of this shared server (the meme workflow writes v5 into models/hellomeme).
    extra = comfy_server.extra_models_dir / "hellomeme"
    written = W.write_version(extra, "v1", stage="image", dtype=torch.float16, zero_data=True)
    try:
        listed = comfy_server.get_json("/models/hellomeme")
        assert "hm_reference/diffusion_pytorch_model.safetensors" in listed
        assert "hm_reference/config.json" in listed
        prompt = {"1": {"class_type": "HelloMemeModelFiles", "inputs": {"version": "v1", "include_toolkit": True}}}
        history = comfy_server.run_prompt(prompt, timeout=120)
        text = comfy_server.node_output(history, "1")["text"][0]
        assert str(extra) in text and str(comfy_server.hellomeme_models_dir) in text
        assert "v1: MISSING (image only)" in text
        assert f"ok       hm_reference  [{extra / 'hm_reference' / 'diffusion_pytorch_model.safetensors'}]" in text
        assert "missing  hm_animatediff_frame12" in text
        assert "hello_group_facemodel/hello_3dmm" in text
        assert f"run in {comfy_server.custom_nodes_dir / EXTENSION_DIR_NAME} with the Python that runs ComfyUI" in text
    finally:
        for path in written:
            shutil.rmtree(path.parent)  # folder form: the repo folder


def test_node_reports_corrupt_file(comfy_server):
    folder = comfy_server.hellomeme_models_dir
    bad = folder / "hm3_reference.safetensors"
    W.write_repo(folder, "hm3_reference", form="file", dtype=torch.float16, zero_data=True)
    with open(bad, "r+b") as f:
        f.truncate(bad.stat().st_size // 2)
    try:
        history = comfy_server.run_prompt(
            {"1": {"class_type": "HelloMemeModelFiles", "inputs": {"version": "v3", "include_toolkit": False}}}, timeout=120)
        text = comfy_server.node_output(history, "1")["text"][0]
        assert "v3: WRONG" in text and "truncated" in text and str(bad) in text
    finally:
        bad.unlink()


# -- bad input: one clear message each, never a hang -------------------------------------------------
def test_port_in_use_is_one_clear_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(ComfyServerError, match=f"Port {port} .* already in use"):
            ComfyServer(tmp_path, port=port).start()
        assert time.monotonic() - start < 30


def test_missing_tree_is_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ComfyServerError, match="not a ComfyUI tree"):
        ComfyServer(tmp_path, comfy_root=tmp_path / "nowhere").start()
    monkeypatch.setenv("COMFYUI_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(ComfyUIHostMissing, match="COMFYUI_PATH"):
        find_comfyui_root()


def test_server_that_never_answers_times_out_with_log(tmp_path):
    server = ComfyServer(tmp_path, startup_timeout=0.5)
    start = time.monotonic()
    with pytest.raises(ComfyServerError, match=r"did not answer .* within 0.5 s|exited with code") as info:
        server.start()
    assert time.monotonic() - start < 60
    assert "Last lines of" in str(info.value)
    assert server.process is None  # stopped, not left running


def test_cli_defaults_to_the_comfyui_models_folder(comfy_server):
    """Run from ComfyUI/custom_nodes/<ext> (a symlink here, as a shell would), check uses models/hellomeme."""
    import os
    import subprocess
    import sys

    ext = comfy_server.custom_nodes_dir / EXTENSION_DIR_NAME
    env = {k: v for k, v in os.environ.items() if k != "HELLOMEME_MODELS_DIR"}
    env["PWD"] = str(ext)
    proc = subprocess.run([sys.executable, "-m", "hellomeme_core", "check", "--version", "v2"], cwd=ext, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert f"HelloMeme model folder(s): {comfy_server.hellomeme_models_dir}" in proc.stdout
    assert "v2: MISSING" in proc.stdout
