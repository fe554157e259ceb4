"""The parity runner itself: any folder in the fixture format, one line per output, a closing count,
and an exit status that fails when an output differs.

Besides a renamed copy of one shared case, a new folder is built here in the same format with other
shapes, frame counts, head counts and weight prefixes. Its expected outputs for the three blocks come
from an independent float64 computation written below from the documented semantics (explicit loops
over rows, columns, pixels and heads; weights read by their official key names; no module of
``hellomeme_core``). The expected outputs of the HM5 control base come from our own module, saved and
reloaded; that the runner compares them at all is shown by the perturbed copy, which must fail.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from hellomeme_core.model_files import layout
from tests.parity.fixture import default_parity_dir
from tests.support.weight_rule import rule_state_dict

REPO = Path(__file__).resolve().parents[1]
CASE = "block_SKMotionModule"


@pytest.fixture()
def one_case_folder(tmp_path: Path) -> Path:
    """A folder in the fixture format holding one case of the shared set, its tensors renamed."""
    src = default_parity_dir()
    meta = json.loads((src / "cases.json").read_text())
    case = next(c for c in meta["cases"] if c["name"] == CASE)
    tensors = load_file(str(src / case["file"]))
    renamed = {f"renamed.{k}": v for k, v in tensors.items()}
    for call in case["calls"]:
        for arg in call["args"].values():
            if "tensor" in arg:
                arg["tensor"] = f"renamed.{arg['tensor']}"
        call["outputs"] = {path: f"renamed.{name}" for path, name in call["outputs"].items()}
        call["tolerance"] = {f"renamed.{name}": tol for name, tol in call["tolerance"].items()}
    case["file"] = "one_case.safetensors"
    save_file(renamed, str(tmp_path / case["file"]))
    meta["cases"] = [case]
    (tmp_path / "cases.json").write_text(json.dumps(meta))
    shutil.copy(src / "weights.json", tmp_path / "weights.json")
    return tmp_path


def _run(folder: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.parity", str(folder)], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env=env)


def test_runner_passes_a_folder_in_the_same_format(one_case_folder: Path):
    result = _run(one_case_folder)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "1 passed, 0 failed"
    assert any(line.startswith(f"{CASE}/forward") and line.rstrip().endswith("pass") for line in lines)


def test_runner_fails_when_an_expected_output_differs(one_case_folder: Path):
    path = one_case_folder / "one_case.safetensors"
    tensors = load_file(str(path))
    name = next(k for k in tensors if ".out." in k)
    tensors[name] = tensors[name] + 0.01  # far beyond the recorded atol
    save_file(tensors, str(path))
    result = _run(one_case_folder)
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1] == "0 passed, 1 failed"
    assert "FAIL" in result.stdout


def test_runner_refuses_a_folder_without_cases(tmp_path: Path):
    result = _run(tmp_path)
    assert result.returncode == 2
    assert "cases.json" in result.stderr and "Traceback" not in result.stderr


# ------------------------------------------------------------------ independent float64 reference math
def _f64(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.double() for k, v in sd.items()}


def ref_layer_norm(x: torch.Tensor, sd: dict, name: str, eps: float = 1e-5) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * sd[f"{name}.weight"] + sd[f"{name}.bias"]


def ref_self_attention(seq: torch.Tensor, sd: dict, name: str, heads: int) -> torch.Tensor:
    """diffusers Attention over one ``(length, C)`` sequence, head by head."""
    q, k, v = (seq @ sd[f"{name}.{p}.weight"].T for p in ("to_q", "to_k", "to_v"))
    d = q.shape[1] // heads
    parts = []
    for h in range(heads):
        s = slice(h * d, (h + 1) * d)
        weights = torch.softmax(q[:, s] @ k[:, s].T / math.sqrt(d), dim=-1)
        parts.append(weights @ v[:, s])
    return torch.cat(parts, dim=1) @ sd[f"{name}.to_out.0.weight"].T + sd[f"{name}.to_out.0.bias"]


def ref_geglu_ff(x: torch.Tensor, sd: dict, name: str) -> torch.Tensor:
    h = x @ sd[f"{name}.net.0.proj.weight"].T + sd[f"{name}.net.0.proj.bias"]
    value, gate = h[..., : h.shape[-1] // 2], h[..., h.shape[-1] // 2:]
    gelu = 0.5 * gate * (1 + torch.erf(gate / math.sqrt(2)))
    return (value * gelu) @ sd[f"{name}.net.2.weight"].T + sd[f"{name}.net.2.bias"]


def ref_conv3(x: torch.Tensor, sd: dict, name: str) -> torch.Tensor:
    return F.conv2d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)


def ref_interleaved_table(length: int, dim: int) -> torch.Tensor:
    """diffusers SinusoidalPositionalEmbedding, made in float32 as the official buffers are: (length, dim)."""
    table = torch.empty(length, dim, dtype=torch.float32)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    for p in range(length):
        table[p, 0::2] = torch.sin(p * freq)
        table[p, 1::2] = torch.cos(p * freq)
    return table.double()


def ref_linear_table(length: int, dim: int) -> torch.Tensor:
    """hm_blocks get_posembed_linear: [sin | cos] halves, omega = 1/10000**(i/(D/2)), float32."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float32) / (dim / 2.0))
    angles = torch.arange(length, dtype=torch.float32)[:, None] * omega[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).double()


def ref_sk_reference_attention(x, ref, frames, sd, heads):
    """SKReferenceAttention: row attention over [x | ref], column attention over [rows ; ref], proj, residual."""
    n, c, h, w = x.shape
    ref = ref.repeat_interleave(frames, dim=0) if ref.shape[0] != n else ref
    rows = torch.empty(n, c, h, w, dtype=torch.float64)
    table = ref_interleaved_table(2 * max(h, w), c)
    for i in range(n):
        for r in range(h):
            seq = torch.cat([x[i, :, r, :].T, ref[i, :, r, :].T]) + table[: 2 * w]
            rows[i, :, r, :] = ref_self_attention(ref_layer_norm(seq, sd, "norm"), sd, "attn1", heads)[:w].T
    cols = torch.empty_like(rows)
    for i in range(n):
        for col in range(w):
            seq = torch.cat([rows[i, :, :, col].T, ref[i, :, :, col].T]) + table[: 2 * h]
            cols[i, :, :, col] = ref_self_attention(ref_layer_norm(seq, sd, "norm"), sd, "attn2", heads)[:h].T
    return x + ref_conv3(cols, sd, "proj")


def ref_stk_attention(x, ref, sd, name, heads, residual):
    """STKAttentionV5 on (frames, C, h, w) maps (one batch item, no emb_proj, no frame axis)."""
    f, c, h, w = x.shape
    xi = ref_conv3(x, sd, f"{name}.conv_in")
    ri = None if ref is None else ref_conv3(ref, sd, f"{name}.conv_in")
    mid = xi.shape[1]
    rows = torch.empty_like(xi)
    for t in range(f):
        for r in range(h):
            seq = xi[t, :, r, :].T if ri is None else torch.cat([xi[t, :, r, :].T, ri[t, :, r, :].T])
            seq = ref_layer_norm(seq + ref_linear_table(seq.shape[0], mid), sd, f"{name}.norm")
            rows[t, :, r, :] = ref_self_attention(seq, sd, f"{name}.attnx", heads)[:w].T
    cols = torch.empty_like(xi)
    for t in range(f):
        for col in range(w):
            seq = rows[t, :, :, col].T if ri is None else torch.cat([rows[t, :, :, col].T, ri[t, :, :, col].T])
            seq = ref_layer_norm(seq + ref_linear_table(seq.shape[0], mid), sd, f"{name}.norm")
            cols[t, :, :, col] = ref_self_attention(seq, sd, f"{name}.attny", heads)[:h].T
    out = ref_conv3(cols, sd, f"{name}.proj")
    return x + out if residual else out


def ref_stk_reference_module(x, ref, frames, sd, heads):
    """STKReferenceModule: attn_ref over the reference (no residual), then attn of x over that result."""
    batch = x.shape[0] // frames
    out = []
    for b in range(batch):
        clip = x[b * frames:(b + 1) * frames]
        r = ref[b:b + 1].expand(frames, -1, -1, -1) if ref.shape[0] == batch else ref[b * frames:(b + 1) * frames]
        r = ref_stk_attention(r, None, sd, "attn_ref", heads, residual=False)
        out.append(ref_stk_attention(clip, r, sd, "attn", heads, residual=True))
    return torch.cat(out)


def ref_sk_motion_module(x, pads, temb, frames, sd, heads):
    """SKMotionModule: [pad0, frames, pad1] per pixel + time_emb_proj(temb of frame 0), table, norm,
    attention, GEGLU FF (no inner residuals), 3x3 proj of the frames, residual."""
    n, c, h, w = x.shape
    batch = n // frames
    t = temb @ sd["time_emb_proj.weight"].T + sd["time_emb_proj.bias"]
    table = ref_interleaved_table(frames + 2, c)
    y = torch.empty_like(x)
    for b in range(batch):
        for i in range(h):
            for j in range(w):
                seq = torch.cat([pads[b, :, 0, i, j][None], x[b * frames:(b + 1) * frames, :, i, j], pads[b, :, -1, i, j][None]])
                seq = ref_layer_norm(seq + t[b * frames] + table, sd, "norm")
                out = ref_geglu_ff(ref_self_attention(seq, sd, "temp_attn", heads), sd, "ff")
                y[b * frames:(b + 1) * frames, :, i, j] = out[1:-1]
    return x + ref_conv3(y, sd, "proj")


# ------------------------------------------------------------------------------ a new fixture folder
class FolderBuilder:
    """Writes ``cases.json`` + ``weights.json`` + one safetensors file per case, in the shared format."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.cases: list[dict] = []
        self.repos: set[str] = set()

    def add(self, name: str, spec: dict, calls: list[dict], tensors: dict[str, torch.Tensor]) -> None:
        file = f"{name}.safetensors"
        for call in calls:
            call["tolerance"] = {}
            for stored in call["outputs"].values():
                m = float(tensors[stored].abs().max())
                call["tolerance"][stored] = {"max_abs_value": m, "atol": max(1e-4 * m, 1e-6)}
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(self.folder / file))
        self.cases.append({"name": name, "file": file, "kind": "block", "modules": {"m": spec}, "calls": calls})
        self.repos.add(spec["weight_repo"])

    def write(self) -> None:
        repos = {r: {"buffers": layout.buffer_keys(r)} for r in sorted(self.repos)}
        (self.folder / "weights.json").write_text(json.dumps({"repos": repos}))
        (self.folder / "cases.json").write_text(json.dumps({"format_version": 1, "cases": self.cases}, indent=1))


def _weights(repo: str, prefix: str) -> dict[str, torch.Tensor]:
    """Rule weights of the official file's tensors under ``prefix`` (local keys, no buffers)."""
    return rule_state_dict(layout.expected_tensors(repo), prefix=prefix, skip=layout.buffer_keys(repo))


def _spec(cls: str, repo: str, prefix: str, **constructor_args) -> dict:
    return {"official_class": f"hellomeme.models.hm_blocks.{cls}", "constructor_args": constructor_args,
            "weight_repo": repo, "weight_prefix": prefix,
            "buffers": [k[len(prefix):] for k in layout.buffer_keys(repo) if k.startswith(prefix)]}


def _call(name: str, args: dict, outputs: dict) -> dict:
    return {"name": name, "module": "m", "args": args, "returns": "tensor", "outputs": outputs}


def build_custom_folder(folder: Path) -> list[str]:
    """The new folder; returns the output lines the runner must print (``case/call[/output]``)."""
    g = torch.Generator().manual_seed(20241)
    fb = FolderBuilder(folder)

    # STKReferenceModule on a 5 x 7 map, 3 frames, 16 heads (the weights do not record the head count).
    repo, prefix = "songkey/hm5b_reference", "reference_modules_up.2."
    x, ref = torch.randn(3, 1280, 5, 7, generator=g), torch.randn(1, 1280, 5, 7, generator=g)
    expected = ref_stk_reference_module(x.double(), ref.double(), 3, _f64(_weights(repo, prefix)), heads=16)
    fb.add("custom_STKReferenceModule",
           _spec("STKReferenceModule", repo, prefix, in_channels=1280, num_attention_heads=16),
           [_call("frames3", {"hidden_states": {"tensor": "in.x"}, "ref_stats": {"tensor": "in.ref"},
                              "num_frames": {"value": 3}}, {"": "out.frames3"})],
           {"in.x": x, "in.ref": ref, "out.frames3": expected.float()})

    # SKMotionModule on motion_up.2, 2 clips of 5 frames, inputs stored as fp16 (exact fp16 values).
    repo, prefix = "songkey/hm3_motion", "motion_up.2."
    x = torch.randn(10, 1280, 3, 2, generator=g).half()
    pads = torch.randn(2, 1280, 2, 3, 2, generator=g).half()
    temb = torch.randn(10, 1280, generator=g)
    expected = ref_sk_motion_module(x.double(), pads.double(), temb.double(), 5, _f64(_weights(repo, prefix)), heads=8)
    fb.add("custom_SKMotionModule",
           _spec("SKMotionModule", repo, prefix, in_channels=1280, num_attention_heads=8, blocks_time_embed_dim=1280),
           [_call("frames5", {"hidden_states": {"tensor": "in.x"}, "pad_states": {"tensor": "in.pads"},
                              "temb": {"tensor": "in.temb"}, "num_frames": {"value": 5}}, {"": "out.frames5"})],
           {"in.x": x, "in.pads": pads, "in.temb": temb, "out.frames5": expected.float()})

    # SKReferenceAttention on a 4 x 70 map: 140 positions per row, past the 128-entry table; 4 heads.
    repo, prefix = "songkey/hm_reference", "reference_modules_down.1."
    x, ref = torch.randn(2, 640, 4, 70, generator=g), torch.randn(1, 640, 4, 70, generator=g)
    expected = ref_sk_reference_attention(x.double(), ref.double(), 2, _f64(_weights(repo, prefix)), heads=4)
    fb.add("custom_SKReferenceAttention",
           _spec("SKReferenceAttention", repo, prefix, in_channels=640, num_attention_heads=4),
           [_call("wide", {"hidden_states": {"tensor": "in.x"}, "ref_stats": {"tensor": "in.ref"},
                           "num_frames": {"value": 2}}, {"": "out.wide"})],
           {"in.x": x, "in.ref": ref, "out.wide": expected.float()})

    # HM5 control base at 192 x 128, 3 frames: expected = our module's output, saved and reloaded.
    from hellomeme_core.control import load_control_network

    repo = "songkey/hm5_control_base"
    net = load_control_network(_weights(repo, ""), "rule weights", official_class="HM5ControlNetBase")
    inputs = {"in.condition": torch.rand(1, 3, 3, 192, 128, generator=g) * 2 - 1,
              "in.drive_coeff": torch.rand(1, 3, 51, generator=g),
              "in.face_parts": torch.randn(1, 3, 3, 1024, generator=g)}
    with torch.no_grad():
        out = net(condition=inputs["in.condition"], drive_coeff=inputs["in.drive_coeff"], face_parts=inputs["in.face_parts"])
    assert tuple(out["feat_3"].shape) == (1, 320, 3, 24, 16)
    spec = {"official_class": "hellomeme.models.hm_control.HM5ControlNetBase", "constructor_args": {},
            "weight_repo": repo, "weight_prefix": "", "buffers": []}
    call = _call("drive", {k.removeprefix("in."): {"tensor": k} for k in inputs}, {k: f"out.{k}" for k in out})
    call["returns"] = "dict"
    fb.add("custom_HM5ControlNetBase", spec, [call], {**inputs, **{f"out.{k}": v for k, v in out.items()}})
    fb.write()
    return ["custom_STKReferenceModule/frames3", "custom_SKMotionModule/frames5", "custom_SKReferenceAttention/wide",
            *[f"custom_HM5ControlNetBase/drive/{k}" for k in out]]


@pytest.fixture(scope="module")
def custom_folder(tmp_path_factory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("custom_parity")
    return folder, build_custom_folder(folder)


def _result_lines(stdout: str) -> dict[str, str]:
    """``label -> pass|FAIL`` from the runner's per-output lines."""
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1].startswith("max_abs_err="):
            out[parts[0]] = parts[3]
    return out


_REFERENCE_MATH = {
    "block_SKReferenceAttention": lambda t, a, sd: ref_sk_reference_attention(
        t(a["hidden_states"]), t(a["ref_stats"]), a["num_frames"]["value"], sd, heads=8),
    "block_STKReferenceModule": lambda t, a, sd: ref_stk_reference_module(
        t(a["hidden_states"]), t(a["ref_stats"]), a["num_frames"]["value"], sd, heads=8),
    "block_SKMotionModule": lambda t, a, sd: ref_sk_motion_module(
        t(a["hidden_states"]), t(a["pad_states"]), t(a["temb"]), a["num_frames"]["value"], sd, heads=8),
}


@pytest.mark.parametrize("case_name", sorted(_REFERENCE_MATH))
def test_independent_reference_reproduces_the_official_outputs(case_name: str):
    """The float64 reference math reproduces the official outputs of the shared set, so the expected
    values it gives the new folder are the official semantics, not a copy of our modules."""
    src = default_parity_dir()
    case = next(c for c in json.loads((src / "cases.json").read_text())["cases"] if c["name"] == case_name)
    stored_tensors = load_file(str(src / case["file"]))
    spec = case["modules"]["block"]
    sd = _f64(_weights(spec["weight_repo"], spec["weight_prefix"]))
    call = case["calls"][0]
    expected = _REFERENCE_MATH[case_name](lambda ref: stored_tensors[ref["tensor"]].double(), call["args"], sd)
    stored = call["outputs"][""]
    err = float((expected - stored_tensors[stored].double()).abs().max())
    assert err <= call["tolerance"][stored]["atol"] / 10, f"{case_name}: {err:.2e}"


def test_runner_on_a_new_folder_with_other_shapes_frames_heads_and_prefixes(custom_folder, tmp_path: Path):
    folder, labels = custom_folder
    result = _run(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == f"{len(labels)} passed, 0 failed"
    assert _result_lines(result.stdout) == {label: "pass" for label in labels}

    # The same folder with one expected tensor changed per case (just past its atol), and the head count
    # of one case changed: exactly those outputs fail.
    bad = tmp_path / "perturbed"
    shutil.copytree(folder, bad)
    meta = json.loads((bad / "cases.json").read_text())
    failing = set()
    for case in meta["cases"]:
        call = case["calls"][0]
        if case["name"] == "custom_STKReferenceModule":
            case["modules"]["m"]["constructor_args"]["num_attention_heads"] = 8
            failing.add(f"{case['name']}/{call['name']}")
            continue
        path, stored = next(iter(call["outputs"].items()))
        tensors = load_file(str(bad / case["file"]))
        changed = tensors[stored].clone()
        changed.view(-1)[changed.numel() // 2] += 3 * call["tolerance"][stored]["atol"]
        tensors[stored] = changed
        save_file(tensors, str(bad / case["file"]))
        failing.add(f"{case['name']}/{call['name']}" + (f"/{path}" if path else ""))
    (bad / "cases.json").write_text(json.dumps(meta))
    result = _run(bad)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"{len(labels) - len(failing)} passed, {len(failing)} failed"
    assert _result_lines(result.stdout) == {label: "FAIL" if label in failing else "pass" for label in labels}


def test_unsupported_constructor_argument_fails_the_case(custom_folder):
    from tests.parity.fixture import FixtureSet
    from tests.parity.registry import CaseContext
    from tests.parity.runner import run_call

    folder, _ = custom_folder
    fixtures = FixtureSet(folder)
    case = json.loads(json.dumps(next(c for c in fixtures.cases if c["name"] == "custom_SKMotionModule")))
    case["modules"]["m"]["constructor_args"]["dropout"] = 0.1
    (result,) = run_call(CaseContext(fixtures, case), case["calls"][0])
    assert not result.passed and "constructor_args dropout=0.1 not supported" in result.detail
    case["modules"]["m"]["constructor_args"].pop("dropout")
    case["modules"]["m"]["constructor_args"]["in_channels"] = 640
    (result,) = run_call(CaseContext(fixtures, case), case["calls"][0])
    assert not result.passed and "in_channels=640" in result.detail and "1280" in result.detail


def test_missing_shared_layout_falls_back_to_the_packaged_copy(custom_folder, monkeypatch, capsys):
    """Without ``../shared/reference/official_layout.json`` the cases still find their tensor layouts."""
    import tests.parity.fixture as fixture
    from tests.parity.runner import main

    folder, labels = custom_folder
    monkeypatch.delenv("HELLOMEME_OFFICIAL_LAYOUT", raising=False)
    monkeypatch.setattr(fixture, "REPO_ROOT", folder / "no_checkout_here")
    assert fixture.default_layout_path() == fixture.PACKAGED_LAYOUT
    assert fixture.FixtureSet(folder, layout_path=folder / "missing.json").layout_path == fixture.PACKAGED_LAYOUT
    assert main(str(folder), pattern="custom_SKReferenceAttention") == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "1 passed, 0 failed"


def test_expected_error_calls_do_not_claim_an_exact_tolerance():
    from tests.parity.fixture import Comparison

    line = Comparison("block_X", "non_square_raises", "", float("nan"), None, True, "official raises", True).line()
    assert "tol=exact" not in line and "tol=n/a" in line
    assert "tol=exact" in Comparison("heat", "drive", "", 0.0, 0.0, True).line()
