"""Reading a parity fixture folder (``cases.json`` + ``weights.json`` + safetensors files).

The folder format is the one described in ``shared/parity/README.md``; nothing here depends on the
particular cases, shapes, seeds or frame counts of the shipped set.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from tests.support.weight_rule import rule_state_dict

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_parity_dir() -> Path:
    """``HELLOMEME_PARITY_DIR`` or the ``shared/parity`` folder beside the checkout."""
    env = os.environ.get("HELLOMEME_PARITY_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "parity"


def default_pipeline_dir() -> Path:
    """``HELLOMEME_PARITY_PIPELINE_DIR`` or the ``shared/parity_pipeline`` folder (whole official video runs)."""
    env = os.environ.get("HELLOMEME_PARITY_PIPELINE_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "parity_pipeline"


# The copy of the official layout shipped with the core (tests/test_model_files.py keeps it equal to
# the shared reference); used when the shared reference beside the checkout is absent.
PACKAGED_LAYOUT = REPO_ROOT / "hellomeme_core" / "model_files" / "official_layout.json"


def layout_candidates() -> list[Path]:
    """Where the official layout is looked for, in order: ``HELLOMEME_OFFICIAL_LAYOUT``, the shared
    reference beside the checkout, the packaged copy."""
    env = os.environ.get("HELLOMEME_OFFICIAL_LAYOUT")
    shared = REPO_ROOT.parent / "shared" / "reference" / "official_layout.json"
    return ([Path(env)] if env else []) + [shared, PACKAGED_LAYOUT]


def default_layout_path() -> Path:
    """The first of :func:`layout_candidates` that exists (the packaged copy always does)."""
    return next((p for p in layout_candidates() if p.is_file()), PACKAGED_LAYOUT)


class FixtureSet:
    """One fixture folder: its cases, tensors and weight layouts."""

    def __init__(self, folder: Path | str, layout_path: Path | str | None = None):
        self.folder = Path(folder)
        if not (self.folder / "cases.json").is_file():
            raise FileNotFoundError(f"{self.folder} holds no cases.json: not a parity fixture folder")
        self.meta = json.loads((self.folder / "cases.json").read_text())
        weights = self.folder / "weights.json"
        if not weights.is_file():
            # A folder of whole-pipeline runs uses the weight rule and layouts of the module fixtures.
            weights = default_parity_dir() / "weights.json"
        self.weights_meta = json.loads(weights.read_text()) if weights.is_file() else {"repos": {}}
        layout = Path(layout_path) if layout_path else default_layout_path()
        # A folder may carry its own copy of the official layout; else the shared reference one, else
        # the copy shipped with the core (a missing file must not fail every case with a KeyError).
        if (self.folder / "official_layout.json").is_file():
            layout = self.folder / "official_layout.json"
        if not layout.is_file():
            layout = default_layout_path()
        self.layout_path = layout
        self._handles: dict[str, Any] = {}

    @property
    def cases(self) -> list[dict]:
        return self.meta["cases"]

    @cached_property
    def official_layout(self) -> dict:
        return json.loads(self.layout_path.read_text()) if self.layout_path.is_file() else {}

    def repo_layout(self, repo: str) -> dict[str, list[int]]:
        """Key -> shape of a weight repo: ``weights.json`` first, then the official layout."""
        entry = self.weights_meta.get("repos", {}).get(repo, {})
        if "tensors" in entry:
            return entry["tensors"]
        if repo in self.official_layout:
            return self.official_layout[repo]["tensors"]
        raise KeyError(f"weight repo {repo!r} is in neither weights.json nor {self.layout_path}")

    def repo_buffers(self, repo: str) -> list[str]:
        return list(self.weights_meta.get("repos", {}).get(repo, {}).get("buffers", []))

    def rule_weights(self, repo: str, prefix: str = "", extra_buffers=()) -> dict[str, torch.Tensor]:
        """Rule tensors for a module: every parameter key of ``repo`` under ``prefix``, made local."""
        skip = set(self.repo_buffers(repo)) | {prefix + b for b in extra_buffers}
        return rule_state_dict(self.repo_layout(repo), prefix=prefix, skip=skip)

    def module_weights(self, spec: dict) -> dict[str, torch.Tensor]:
        """Rule weights for a case module spec (``weight_repo`` + ``weight_prefix`` + ``buffers``)."""
        return self.rule_weights(spec["weight_repo"], spec.get("weight_prefix", ""), spec.get("buffers", ()))

    def tensor(self, file: str, name: str) -> torch.Tensor:
        handle = self._handles.get(file)
        if handle is None:
            handle = self._handles[file] = safe_open(str(self.folder / file), framework="pt")
        return handle.get_tensor(name)


def _as_input(t: torch.Tensor) -> torch.Tensor:
    # Inputs stored as fp16 hold exact fp16 values; the official call got them as float32.
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def resolve_args(fixtures: FixtureSet, file: str, args: dict) -> dict[str, Any]:
    """Turn a call's ``args`` mapping into Python values (tensors, dicts of tensors, literals)."""
    out: dict[str, Any] = {}
    for name, ref in args.items():
        if "tensor" in ref:
            value: Any = _as_input(fixtures.tensor(file, ref["tensor"]))
            if "index" in ref:
                value = value[ref["index"]]
        elif "dict" in ref:
            value = {k: _as_input(fixtures.tensor(file, v)) for k, v in ref["dict"].items()}
        elif "shape" in ref:
            value = torch.randn(ref["shape"], generator=torch.Generator().manual_seed(0))
        else:
            value = ref.get("value")
        out[name] = value
    return out


def flatten_outputs(value: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a return value into the fixture's output paths (``''``, ``[0]``, ``[1].k``, ``k``)."""
    if isinstance(value, (tuple, list)):
        flat: dict[str, Any] = {}
        for i, item in enumerate(value):
            flat.update(flatten_outputs(item, f"{prefix}[{i}]"))
        return flat
    if isinstance(value, dict):
        flat = {}
        for k, item in value.items():
            flat.update(flatten_outputs(item, f"{prefix}.{k}" if prefix else str(k)))
        return flat
    return {prefix: value}


@dataclass
class Comparison:
    """One output of one call. ``tolerance``: the atol compared against (0.0 for outputs recorded as
    exact), or None where nothing was compared (an expected error, or a call that did not run)."""

    case: str
    call: str
    output: str
    max_abs_error: float
    tolerance: float | None
    passed: bool
    detail: str = ""
    expects_error: bool = False

    def line(self) -> str:
        status = "pass" if self.passed else "FAIL"
        label = f"{self.case}/{self.call}" + (f"/{self.output}" if self.output else "")
        err = "-" if self.max_abs_error != self.max_abs_error else f"{self.max_abs_error:.3e}"
        if self.expects_error:
            tol = "n/a"  # the official code raises here: no tensor is compared (the detail says why)
        elif self.tolerance is None:
            tol = "-"
        else:
            tol = "exact" if self.tolerance == 0 else f"{self.tolerance:.3e}"
        extra = f"  ({self.detail})" if self.detail else ""
        return f"{label:<72} max_abs_err={err:<10} tol={tol:<10} {status}{extra}"


def compare(ours: Any, expected: torch.Tensor, tolerance: dict) -> tuple[float, float, bool, str]:
    """Max |ours - expected| against the recorded atol (exact outputs must be bit-equal in value)."""
    if not isinstance(ours, torch.Tensor):
        ours = torch.as_tensor(ours)
    exact = bool(tolerance.get("exact"))
    atol = 0.0 if exact else float(tolerance["atol"])
    if tuple(ours.shape) != tuple(expected.shape):
        return float("nan"), atol, False, f"shape {tuple(ours.shape)} != expected {tuple(expected.shape)}"
    diff = (ours.detach().to(torch.float64).cpu() - expected.to(torch.float64)).abs()
    err = float(diff.max()) if diff.numel() else 0.0
    if not torch.isfinite(ours.detach().float()).all():
        return err, atol, False, "non-finite values"
    return err, atol, err <= atol, ""


@dataclass
class CallResult:
    comparisons: list[Comparison] = field(default_factory=list)
