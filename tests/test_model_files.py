"""Safetensors header reading/loading, the official layout, the checker, the manifest, the CLI check,
and the random official-layout weight writer."""
from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from hellomeme_core.cli.main import main as cli
from hellomeme_core.errors import HelloMemeError, WeightFileError
from hellomeme_core.model_files import layout
from hellomeme_core.model_files.check import check_file, detect_versions
from hellomeme_core.model_files.locations import comfyui_root_of_extension, default_models_dir
from hellomeme_core.model_files.manifest import load_manifest
from hellomeme_core.model_files.safetensors_io import load_state_dict, read_header
from hellomeme_core.nn.embeddings import interleaved_sinusoid_table
from tests.support import official_weights as W
from tests.support.weight_rule import rule_tensor

PARITY_WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "parity" / "weights.json"


# -- safetensors_io ---------------------------------------------------------------------------------
@pytest.fixture
def small_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.safetensors"
    save_file({"a.weight": torch.randn(4, 3), "b.bias": torch.zeros(5, dtype=torch.float16)}, str(path))
    return path


def test_read_header_names_dtypes_shapes(small_file):
    header = read_header(small_file)
    assert header == {"a.weight": ("F32", (4, 3)), "b.bias": ("F16", (5,))}
    assert header["a.weight"].shape == (4, 3) and header["b.bias"].dtype == "F16"


def test_truncated_file_named_in_error(small_file):
    small_file.write_bytes(small_file.read_bytes()[:-3])
    with pytest.raises(WeightFileError, match="truncated") as info:
        read_header(small_file)
    assert str(small_file) in str(info.value)
    with pytest.raises(WeightFileError, match="truncated"):
        load_state_dict(small_file)


def test_file_cut_inside_header(small_file):
    small_file.write_bytes(small_file.read_bytes()[:20])
    with pytest.raises(WeightFileError, match="truncated"):
        read_header(small_file)


def _raw_file(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize("payload, pattern", [
    (struct.pack("<Q", 10) + b"{not json}", "not valid JSON"),
    (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    (b"\x80\x02}q\x00(X\x01\x00\x00\x00aq", "not a safetensors file"),  # a pickle's first bytes
    (b"abc", "only 3 bytes"),
    (_raw_file({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 8), "needs 8 bytes"),
    (_raw_file({"x": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8), "unknown dtype"),
    (_raw_file({"x": {"dtype": "F32", "shape": [2]}}, b"\0" * 8), "malformed"),
], ids=["bad-json", "json-list", "pickle", "tiny", "size-mismatch", "bad-dtype", "no-offsets"])
def test_corrupt_headers(tmp_path, payload, pattern):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(payload)
    with pytest.raises(WeightFileError, match=pattern) as info:
        read_header(path)
    assert str(path) in str(info.value)


def test_load_state_dict_single_file_and_folder_forms(tmp_path):
    tensors = {"x.weight": torch.randn(3, 2), "y": torch.arange(4, dtype=torch.float32)}
    single = tmp_path / "m.safetensors"
    save_file(tensors, str(single))
    folder = tmp_path / "repo"
    folder.mkdir()
    save_file(tensors, str(folder / "diffusion_pytorch_model.safetensors"))
    (folder / "config.json").write_text("{}")
    for source in (single, folder):
        loaded = load_state_dict(source)
        assert loaded.keys() == tensors.keys()
        assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)


def test_pickle_weights_are_refused(tmp_path):
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x02")
    with pytest.raises(WeightFileError, match="safetensors only"):
        load_state_dict(folder)
    with pytest.raises(WeightFileError, match="pickle"):
        load_state_dict(folder / "diffusion_pytorch_model.bin")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightFileError, match="without diffusion_pytorch_model.safetensors"):
        load_state_dict(empty)
    with pytest.raises(WeightFileError, match="does not exist"):
        load_state_dict(tmp_path / "absent.safetensors")


# -- layout -----------------------------------------------------------------------------------------
def test_layout_data_is_the_shared_reference():
    shared = Path(__file__).resolve().parents[2] / "shared" / "reference" / "official_layout.json"
    if not shared.is_file():
        pytest.skip("shared reference layout not present on this machine")
    ours = Path(layout.__file__).with_name("official_layout.json")
    assert json.loads(ours.read_text()) == json.loads(shared.read_text())


def test_every_official_repo_belongs_to_a_version():
    assert len(layout.official_repos()) == 24
    used = {r for v in layout.VERSIONS for r in layout.version_repos(v, "video")}
    assert used == set(layout.official_repos()) | {layout.PD_FGC_REPO}
    for v in layout.VERSIONS:
        image = layout.version_repos(v, "image")
        assert set(image) < set(layout.version_repos(v, "video"))
        assert not any(("motion" in r and r != layout.PD_FGC_REPO) or "animatediff" in r for r in image)
        assert image[-1] == layout.PD_FGC_REPO  # every version needs the official default expression encoder
    assert layout.version_repos("v5c", "image") == ["songkey/hm5c_reference", "songkey/hm5_control_base",
                                                    "songkey/hm5c_control_proj", layout.PD_FGC_REPO]
    with pytest.raises(KeyError, match="v9"):
        layout.version_repos("v9")


# -- checker ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["folder", "file"])
def test_every_layout_checks_ok_in_both_forms(tmp_path, form):
    for repo in layout.known_repos():
        path = W.write_repo(tmp_path, repo, form=form, dtype=torch.float16, zero_data=True)
        report = check_file(path.parent if form == "folder" else path, repo)
        assert report.ok, report.message
        assert report.dtypes in (["F16"], ["F16", "I64"])


def test_wrong_file_reports_keys_shapes_and_lookalike(tmp_path):
    path = W.write_repo(tmp_path, "hm5_reference", form="file", zero_data=True)
    report = check_file(path, "hm4_reference")
    assert report.status == "wrong"
    # hm4 has pos_embed.pe tables hm5 lacks, but missing buffers are recomputed on load: only the
    # unexpected time_emb_proj parameters make this file wrong for the slot.
    assert not report.missing_keys
    assert any(k.endswith("time_emb_proj.weight") for k in report.unexpected_keys)
    assert report.looks_like[0] == "songkey/hm5_reference"
    assert "looks like hm5_reference" in report.message and str(path) in report.message
    other = W.write_repo(tmp_path / "v1", "hm_control", form="file", zero_data=True)
    wrong = check_file(other, "hm2_control")
    assert wrong.status == "wrong" and (wrong.missing_keys or wrong.shape_mismatch)


def test_file_without_buffers_is_ok(tmp_path):
    """The sinusoid tables are buffers the loaders recompute: a file saved without them is complete."""
    from safetensors.torch import save_file

    expected = layout.expected_tensors("hm3_motion")
    buffers = set(layout.buffer_keys("hm3_motion"))
    assert buffers
    path = tmp_path / "hm3_motion.safetensors"
    save_file({k: torch.zeros(s, dtype=torch.float16) for k, s in expected.items() if k not in buffers}, str(path))
    assert check_file(path, "hm3_motion").status == "ok"


def test_first_shape_mismatch_is_reported(tmp_path):
    expected = layout.expected_tensors("hm4_control_proj")
    tensors = {k: torch.zeros(s, dtype=torch.float16) for k, s in expected.items()}
    first = next(iter(expected))
    tensors[first] = torch.zeros(3, 3)
    path = tmp_path / "hm4_control_proj.safetensors"
    save_file(tensors, str(path))
    report = check_file(path, "hm4_control_proj")
    assert report.status == "wrong" and not report.missing_keys and not report.unexpected_keys
    assert report.shape_mismatch == (first, expected[first], (3, 3))
    assert f"shape of {first} is [3, 3], expected {list(expected[first])}" in report.message


def test_hm2_reference_without_down_mid_modules_is_accepted(tmp_path):
    expected = layout.expected_tensors("hm2_reference")
    kept = {k: torch.zeros(s, dtype=torch.float16) for k, s in expected.items() if k.startswith("reference_modules_up.")}
    path = tmp_path / "hm2_reference.safetensors"
    save_file(kept, str(path))
    assert check_file(path, "hm2_reference").ok
    assert not check_file(path, "hm_reference").ok


def test_detect_versions_present_missing_wrong(tmp_path):
    W.write_version(tmp_path, "v5", form="folder", dtype=torch.float16, zero_data=True)
    W.write_version(tmp_path, "v4", form="file", dtype=torch.float16, zero_data=True)
    W.write_version(tmp_path, "v1", stage="image", form="folder", dtype=torch.float16, zero_data=True)
    st = detect_versions(tmp_path)
    assert st["v5"].state == "present" and st["v5"].video_ready
    assert st["v4"].state == "present"
    assert st["v1"].state == "missing" and st["v1"].image_ready and not st["v1"].video_ready
    assert st["v1"].missing == ["songkey/hm_animatediff_frame12"]
    assert st["v3"].state == "missing" and not st["v3"].image_ready
    # v5b shares control base/proj/motion with v5: only its reference adapter is missing.
    assert st["v5b"].missing == ["songkey/hm5b_reference"]
    # A truncated download makes the version wrong, with the reason.
    weights = tmp_path / "hm5_motion" / "diffusion_pytorch_model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size - 100)
    st = detect_versions(tmp_path, ["v5"])
    assert st["v5"].state == "wrong" and st["v5"].image_ready and not st["v5"].video_ready
    assert "truncated" in st["v5"].bad[0].message


def test_bad_file_message_gives_the_problem_once_then_one_fix_naming_the_version(tmp_path):
    """A new user saw the truncated-file fix twice, the first time without --version."""
    W.write_version(tmp_path, "v5", stage="image", form="folder", dtype=torch.float16, zero_data=True)
    weights = tmp_path / "hm5_control_base" / "diffusion_pytorch_model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size - 100)
    # hm5_control_base is shared by v5 and v5b: read once, but each version's fix fetches that version.
    statuses = detect_versions(tmp_path, ["v5", "v5b"])
    for version in ("v5", "v5b"):
        message = next(f for f in statuses[version].bad if f.repo == "songkey/hm5_control_base").message
        assert message.count("truncated") == 1 and message.count("python -m hellomeme_core download") == 1
        assert message.endswith(f"Fetch it again: python -m hellomeme_core download --version {version} "
                                "(or put a good copy there by hand)."), message
    # Without a version (checking one file) the fix fetches that file alone, by its manifest id.
    alone = check_file(weights, "hm5_control_base").message
    assert alone.count("python -m hellomeme_core download") == 1 and "download --id hm5_control_base " in alone
    assert load_manifest().by_id("hm5_control_base").layout == "songkey/hm5_control_base"
    # A loader that knows the version passes it, and the report's message is the whole error text.
    assert "download --version v5c " in check_file(weights, "hm5_control_base", "v5c").message


def test_wrong_layout_message_says_to_move_the_file_away_once(tmp_path):
    path = W.write_repo(tmp_path, "hm5_reference", form="file", zero_data=True)
    message = check_file(path, "hm4_reference", "v4").message
    assert message.count("python -m hellomeme_core download") == 1
    assert message.endswith("Move it away and fetch the official hm4_reference: python -m hellomeme_core download "
                            "--version v4 (or put the official file there by hand)."), message


def test_unreadable_file_error_keeps_problem_and_generic_fix_apart(small_file):
    small_file.write_bytes(small_file.read_bytes()[:-3])
    with pytest.raises(WeightFileError) as info:
        read_header(small_file)
    assert "truncated" in info.value.problem and "hellomeme_core download" not in info.value.problem
    assert str(info.value) == f"{info.value.problem} {info.value.fix}" and "--version V" in info.value.fix


# -- CLI check --------------------------------------------------------------------------------------
def test_cli_check_exit_codes_and_report(tmp_path, capsys):
    W.write_version(tmp_path, "v5", stage="image", dtype=torch.float16, zero_data=True)
    assert cli(["check", "--models-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"v5: MISSING \(image only\)", out) and "missing  hm5_motion" in out
    assert cli(["check", "--models-dir", str(tmp_path), "--version", "v5", "--stage", "image"]) == 0
    assert cli(["check", "--models-dir", str(tmp_path), "--version", "v5"]) == 1
    assert "python -m hellomeme_core download --version v5" in capsys.readouterr().out
    assert cli(["check", "--models-dir", str(tmp_path), "--version", "v3", "--stage", "image"]) == 1
    capsys.readouterr()
    assert cli(["check", "--models-dir", str(tmp_path), "--version", "v5", "--stage", "image", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["versions"]["v5"]["image_ready"] and not data["versions"]["v5"]["video_ready"]
    # A corrupt file anywhere makes the check fail, naming the file.
    bad = tmp_path / "hm5_reference" / "diffusion_pytorch_model.safetensors"
    bad.write_bytes(b"\x00" * 4)
    assert cli(["check", "--models-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "CORRUPT" in out and str(bad) in out


def test_cli_check_missing_models_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HELLOMEME_MODELS_DIR", raising=False)
    assert cli(["check", "--models-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and str(tmp_path / "nope") in err and "Traceback" not in err
    monkeypatch.setenv("HELLOMEME_MODELS_DIR", str(tmp_path))
    assert cli(["check"]) == 0


def test_models_dir_inside_a_comfyui_tree(tmp_path, monkeypatch):
    comfy = tmp_path / "ComfyUI"
    ext = comfy / "custom_nodes" / "comfyui-hellomeme"
    ext.mkdir(parents=True)
    (comfy / "main.py").write_text("")
    (comfy / "folder_paths.py").write_text("")
    assert comfyui_root_of_extension(ext) == comfy
    assert comfyui_root_of_extension(tmp_path) is None
    monkeypatch.delenv("HELLOMEME_MODELS_DIR", raising=False)
    with pytest.raises(HelloMemeError, match="--models-dir"):
        default_models_dir()  # this checkout is not inside a ComfyUI tree


# -- manifest ---------------------------------------------------------------------------------------
def test_manifest_covers_every_file():
    m = load_manifest()
    ids = [e.id for e in m.entries]
    assert len(ids) == len(set(ids))
    for repo in layout.official_repos():
        name = layout.short_name(repo)
        weights = m.by_id(name)
        assert weights.folder == "hellomeme" and weights.path == f"{name}/diffusion_pytorch_model.safetensors"
        assert weights.layout == repo and weights.urls[0] == f"https://huggingface.co/{repo}/resolve/main/diffusion_pytorch_model.safetensors"
        assert set(weights.versions) == set(layout.repo_versions(repo))
        assert m.by_id(f"{name}/config").path == f"{name}/config.json"
    for v in layout.VERSIONS:
        for stage in ("image", "video"):
            got = {e.layout for e in m.for_version(v, stage) if e.kind == "hellomeme_weights"}
            assert got == set(layout.version_repos(v, stage)), (v, stage)
    toolkit = {e.path for e in m.of_kind("face_toolkit")}
    assert {"hello_group_facemodel/hello_face_det.onnx", "hello_group_facemodel/hello_face_landmark.onnx",
            "hello_group_facemodel/hello_3dmm.onnx", "hello_group_facemodel/hello_arkit_blendshape.onnx"} <= toolkit
    # The PD-FGC encoder (the official default expression input) is required with every version.
    pd_fgc = m.by_id("pd_fgc_motion")
    assert not pd_fgc.optional and set(pd_fgc.versions) == set(layout.VERSIONS) and "Load HelloMeme Models" in pd_fgc.nodes
    assert m.of_kind("clip_vision")[0].folder == "clip_vision"
    assert m.of_kind("checkpoint")[0].folder == "checkpoints"
    # The insightface packs are listed (optional, licence note) but never downloaded: no URL, no version.
    packs = m.of_kind("insightface")
    assert {e.path for e in packs} >= {"models/antelopev2/scrfd_10g_bnkps.onnx", "models/buffalo_l/w600k_r50.onnx"}
    assert all(e.optional and not e.urls and "non-commercial" in e.licence and e.folder == "insightface" for e in packs)
    for e in m.entries:
        if e.kind == "insightface":
            continue
        assert e.urls and e.licence and e.folder and e.path and e.nodes and e.versions
        assert e.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", e.sha256)
        assert e.size is None or e.size > 0
        assert e.urls_for("https://mirror.example")[0].startswith("https://mirror.example/")


# -- random official-layout weights -----------------------------------------------------------------
def test_written_weights_follow_rule_and_real_buffers(tmp_path):
    path = W.write_repo(tmp_path, "hm_control", form="folder")
    sd = load_state_dict(path.parent)
    expected = layout.expected_tensors("hm_control")
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected
    for key in layout.buffer_keys("hm_control"):
        _, length, dim = expected[key]
        assert torch.equal(sd[key], interleaved_sinusoid_table(length, dim))
    for key in expected:
        if key not in layout.buffer_keys("hm_control"):
            assert torch.equal(sd[key], rule_tensor(key, expected[key])), key
    assert json.loads((path.parent / "config.json").read_text())["_class_name"] == "HMControlNet"


def test_written_weights_match_parity_rule_checks(tmp_path):
    if not PARITY_WEIGHTS.is_file():
        pytest.skip("shared parity weights.json not present on this machine")
    checks = json.loads(PARITY_WEIGHTS.read_text())["repos"]
    for repo in ("songkey/hm4_control_proj", "songkey/pd_fgc_motion"):
        path = W.write_repo(tmp_path, repo, form="file")
        sd = load_state_dict(path)
        for check in checks[repo]["rule_checks"]:
            t = sd[check["key"]].double()
            assert list(t.shape) == check["shape"]
            assert torch.allclose(t.flatten()[: len(check["first_values"])], torch.tensor(check["first_values"], dtype=torch.float64), atol=1e-7)
            assert abs(t.sum().item() - check["sum_float64"]) < 1e-6 * max(1.0, abs(check["sum_float64"]))
        assert sd["model.bn1.running_var"].eq(1).all() if repo.endswith("pd_fgc_motion") else True
        os.remove(path)


def test_bf16_and_fp16_files_load(tmp_path):
    for dtype in (torch.float16, torch.bfloat16):
        path = W.write_repo(tmp_path / str(dtype), "hm4_control_proj", form="file", dtype=dtype)
        sd = load_state_dict(path)
        key = next(iter(sd))
        assert sd[key].dtype == dtype
        assert torch.equal(sd[key], rule_tensor(key, sd[key].shape).to(dtype))
        os.remove(path)


def test_folder_without_weights_is_missing_not_corrupt(tmp_path):
    folder = tmp_path / "hm5_motion"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "diffusion_pytorch_model.safetensors.part").write_bytes(b"\0" * 10)
    report = next(f for f in detect_versions(tmp_path, ["v5"])["v5"].files if f.repo == "songkey/hm5_motion")
    assert report.status == "missing" and "unfinished download" in report.message
    (folder / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x02")
    report = next(f for f in detect_versions(tmp_path, ["v5"])["v5"].files if f.repo == "songkey/hm5_motion")
    assert report.status == "corrupt" and "safetensors only" in report.message
