"""Random weights in the exact official layout, for end-to-end tests without the real downloads.

Every tensor of a repo in ``official_layout.json`` (plus ``songkey/pd_fgc_motion``) is written with
its official name and shape: parameters from the parity weight rule (``rule_tensor(full_key, shape)``,
so results are deterministic and match the parity fixtures), sinusoid ``*.pe`` buffers as the real
tables, BatchNorm statistics as a fresh module has them. Two on-disk forms, as the checker accepts:
the diffusers folder form ``<dir>/<name>/{config.json, diffusion_pytorch_model.safetensors}`` and a
single file ``<dir>/<name>.safetensors``.

Files are streamed tensor by tensor (header first, then each tensor's bytes), so writing the
1.8 GB AnimateDiff adapter never holds more than one tensor in memory.
"""
from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch

from hellomeme_core.model_files import layout
from hellomeme_core.model_files.safetensors_io import DIFFUSERS_CONFIG_NAME, DIFFUSERS_WEIGHT_NAME
from hellomeme_core.nn.embeddings import interleaved_sinusoid_table
from tests.support import weight_store
from tests.support.weight_rule import rule_tensor

Form = Literal["folder", "file"]

_DTYPE_CODES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def buffer_value(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The value a buffer has in a freshly built official module."""
    if key.endswith(".pe"):
        _, length, dim = shape
        return interleaved_sinusoid_table(length, dim)
    if key.endswith("running_mean"):
        return torch.zeros(shape)
    if key.endswith("running_var"):
        return torch.ones(shape)
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    raise ValueError(f"no rule for buffer {key} {shape}")


def official_tensor(repo: str, key: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One tensor of ``repo``'s file: a rule parameter or a buffer's real value (integer buffers keep int64)."""
    t = buffer_value(key, shape) if key in set(layout.buffer_keys(repo)) else rule_tensor(key, shape)
    return t if t.dtype == torch.int64 else t.to(dtype)


def official_state_dict(repo: str, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """The whole state dict in memory (for small repos and tests; files are written streaming)."""
    return {k: official_tensor(repo, k, s, dtype) for k, s in layout.expected_tensors(repo).items()}


def _tensor_dtype(repo: str, key: str, dtype: torch.dtype, buffers: set[str]) -> torch.dtype:
    return torch.int64 if key in buffers and key.endswith("num_batches_tracked") else dtype


def write_safetensors_streaming(path: Path, repo: str, dtype: torch.dtype = torch.float32, *, zero_data: bool = False) -> Path:
    """Write ``repo``'s layout to ``path`` in the safetensors format, one tensor at a time.

    ``zero_data`` writes only the header and extends the file sparsely: a valid file of all-zero
    tensors that costs no time and no disk, for tests that only read headers.
    """
    tensors = layout.expected_tensors(repo)
    buffers = set(layout.buffer_keys(repo))
    header: dict[str, object] = {"__metadata__": {"format": "pt", "hellomeme_test": "random weights in the official layout"}}
    offset = 0
    order = sorted(tensors)
    for key in order:
        dt = _tensor_dtype(repo, key, dtype, buffers)
        nbytes = math.prod(tensors[key]) * torch.tensor([], dtype=dt).element_size()
        header[key] = {"dtype": _DTYPE_CODES[dt], "shape": list(tensors[key]), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8-byte alignment with spaces
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        if zero_data:
            f.truncate(8 + len(raw) + offset)
        else:
            for key in order:
                t = official_tensor(repo, key, tensors[key], dtype).contiguous()
                # Through a byte view, so bf16 (which numpy lacks) is written the same way.
                f.write(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    os.replace(tmp, path)
    return path


def config_for(repo: str) -> dict:
    """A diffusers-style ``config.json`` naming the official class (our loaders infer the rest from shapes)."""
    return {"_class_name": layout.official_class(repo), "_diffusers_version": "0.31.0",
            "_hellomeme_test": "random weights in the official layout"}


def repo_target(models_dir: str | os.PathLike, repo: str, form: Form = "folder") -> Path:
    """Where :func:`write_repo` puts ``repo`` (the weight file itself)."""
    name = layout.short_name(layout.repo_from_name(repo))
    if form == "folder":
        return Path(models_dir) / name / DIFFUSERS_WEIGHT_NAME
    if form == "file":
        return Path(models_dir) / f"{name}.safetensors"
    raise ValueError(f"form must be 'folder' or 'file', not {form!r}")


def write_repo(
    models_dir: str | os.PathLike, repo: str, *, form: Form = "folder",
    dtype: torch.dtype = torch.float32, zero_data: bool = False,
) -> Path:
    """Write one repo (folder form: weights + ``config.json``); returns the weight file's path."""
    repo = layout.repo_from_name(repo)
    target = repo_target(models_dir, repo, form)
    if zero_data:  # sparse: costs no disk, and tests truncate these in place
        write_safetensors_streaming(target, repo, dtype, zero_data=True)
    else:
        key = f"official/{layout.short_name(repo)}.{str(dtype).removeprefix('torch.')}.safetensors"
        weight_store.materialize(target, key, lambda path: write_safetensors_streaming(path, repo, dtype))
    if form == "folder":
        (target.parent / DIFFUSERS_CONFIG_NAME).write_text(json.dumps(config_for(repo), indent=2))
    return target


def write_version(
    models_dir: str | os.PathLike, version: str, *, stage: str = "video", form: Form = "folder",
    dtype: torch.dtype = torch.float32, zero_data: bool = False,
) -> list[Path]:
    """Every repo ``version`` needs for ``stage``, written repo by repo."""
    return [write_repo(models_dir, r, form=form, dtype=dtype, zero_data=zero_data)
            for r in layout.version_repos(version, stage)]


def write_all(
    models_dir: str | os.PathLike, *, repos: Iterable[str] | None = None, form: Form = "folder",
    dtype: torch.dtype = torch.float32, zero_data: bool = False, include_face: bool = False,
) -> list[Path]:
    """All 24 official repos (``include_face`` adds ``pd_fgc_motion``), written one after another."""
    chosen = list(repos) if repos is not None else layout.official_repos() + ([layout.PD_FGC_REPO] if include_face else [])
    return [write_repo(models_dir, r, form=form, dtype=dtype, zero_data=zero_data) for r in chosen]


def main(argv: list[str]) -> int:
    """``python -m tests.support.official_weights DIR [--version v5 | --all] [--file] [--fp16]``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m tests.support.official_weights", description=__doc__.split("\n")[0])
    p.add_argument("models_dir")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--version", choices=layout.VERSIONS)
    g.add_argument("--all", action="store_true")
    g.add_argument("--repo", action="append")
    p.add_argument("--file", action="store_true", help="single-file form instead of the diffusers folder form")
    p.add_argument("--fp16", action="store_true")
    a = p.parse_args(argv)
    kw = {"form": "file" if a.file else "folder", "dtype": torch.float16 if a.fp16 else torch.float32}
    if a.version:
        paths = write_version(a.models_dir, a.version, **kw)
    else:
        paths = write_all(a.models_dir, repos=a.repo, include_face=True, **kw)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
