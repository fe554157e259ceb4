"""Reading safetensors files: the header alone (names, dtypes, shapes) and whole state dicts.

A safetensors file is an 8-byte little-endian header length, a JSON header, then one byte buffer.
Reading only the header lets the checker verify a 1.7 GB file in microseconds, and catches a
truncated download (a tensor whose data would end past the end of the file) before torch sees it.
Loading is safetensors only: pickle files (``.bin``/``.ckpt``/``.pt``) are refused, never unpickled.
"""
from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ..errors import WeightFileError

if TYPE_CHECKING:  # torch is imported only to load tensors, so header checks stay light
    import torch

# The file name diffusers' ``save_pretrained`` writes in the folder form of a weight repo.
DIFFUSERS_WEIGHT_NAME = "diffusion_pytorch_model.safetensors"
DIFFUSERS_CONFIG_NAME = "config.json"
# An fp16 variant some repos ship beside the main file; accepted when the main file is absent.
_VARIANT_NAMES = ("diffusion_pytorch_model.fp16.safetensors",)
_PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")

# Bytes per element of every dtype the safetensors format defines.
DTYPE_SIZES: dict[str, float] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
    "F4": 0.5, "F6_E2M3": 0.75, "F6_E3M2": 0.75,
}
# A header longer than this is not a real weight file (the format's own reader caps it at 100 MB).
_MAX_HEADER_BYTES = 100_000_000
# Said once, after the problem; callers that know the version replace it (``WeightFileError.fix``).
_REFETCH = ("Fetch it again with python -m hellomeme_core download (--version V for a version's files, --id NAME "
            "for one; it replaces a truncated or corrupt file), or put a good copy there by hand.")


class TensorInfo(NamedTuple):
    """What the header says about one tensor (a plain ``(dtype, shape)`` pair)."""

    dtype: str
    shape: tuple[int, ...]


def read_header(path: str | os.PathLike) -> dict[str, TensorInfo]:
    """Tensor name -> ``(dtype, shape)`` from the JSON header only; never reads tensor data.

    Raises :class:`WeightFileError` naming the file when it is missing, not safetensors, corrupt,
    or truncated (some tensor's data would lie beyond the end of the file).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightFileError(f"Weight file {path} does not exist (or is not a file).")
    file_size = path.stat().st_size
    if file_size < 8:
        raise WeightFileError(f"{path} is not a safetensors file: only {file_size} bytes (truncated?).", fix=_REFETCH)
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        if header_len > _MAX_HEADER_BYTES:
            raise WeightFileError(
                f"{path} is not a safetensors file (header length field reads {header_len} bytes). "
                f"Pickle checkpoints (.bin/.ckpt) are not loaded; use the .safetensors file.",
                fix=_REFETCH,
            )
        if 8 + header_len > file_size:
            raise WeightFileError(
                f"{path} is truncated: its header alone needs {8 + header_len} bytes but the file has "
                f"{file_size}.",
                fix=_REFETCH,
            )
        raw = f.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightFileError(f"{path} is corrupt: its safetensors header is not valid JSON ({exc}).", fix=_REFETCH) from None
    if not isinstance(header, dict):
        raise WeightFileError(f"{path} is corrupt: its safetensors header is not a JSON object.", fix=_REFETCH)

    data_size = file_size - 8 - header_len
    out: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        out[name] = _tensor_info(path, name, entry, data_size)
    return out


def _tensor_info(path: Path, name: str, entry: object, data_size: int) -> TensorInfo:
    """Validate one header entry against the format and the bytes actually present."""
    try:
        dtype = str(entry["dtype"])  # type: ignore[index]
        shape = tuple(int(s) for s in entry["shape"])  # type: ignore[index]
        begin, end = (int(o) for o in entry["data_offsets"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        raise WeightFileError(f"{path} is corrupt: header entry for tensor {name!r} is malformed ({entry!r}).", fix=_REFETCH) from None
    if dtype not in DTYPE_SIZES:
        raise WeightFileError(f"{path} is corrupt: tensor {name!r} has unknown dtype {dtype!r}.", fix=_REFETCH)
    if any(s < 0 for s in shape) or begin < 0 or end < begin:
        raise WeightFileError(f"{path} is corrupt: tensor {name!r} has shape {shape} and offsets [{begin}, {end}].", fix=_REFETCH)
    expected = math.ceil(math.prod(shape) * DTYPE_SIZES[dtype])
    if end - begin != expected:
        raise WeightFileError(
            f"{path} is corrupt: tensor {name!r} ({dtype}, shape {list(shape)}) needs {expected} bytes "
            f"but the header gives it {end - begin}.",
            fix=_REFETCH,
        )
    if end > data_size:
        raise WeightFileError(
            f"{path} is truncated: tensor {name!r} ends at byte {end} of the data section but only "
            f"{data_size} bytes are present (an interrupted download?).",
            fix=_REFETCH,
        )
    return TensorInfo(dtype, shape)


def resolve_weight_file(path: str | os.PathLike) -> Path:
    """The ``.safetensors`` file behind ``path``: the file itself, or the weights of a diffusers folder."""
    path = Path(path)
    if path.is_dir():
        for name in (DIFFUSERS_WEIGHT_NAME, *_VARIANT_NAMES):
            candidate = path / name
            if candidate.is_file():
                return candidate
        pickles = sorted(p.name for p in path.iterdir() if p.suffix in _PICKLE_SUFFIXES)
        if pickles:
            raise WeightFileError(
                f"{path} holds only pickle weights ({', '.join(pickles)}); HelloMeme loads safetensors only.",
                fix=f"Put {DIFFUSERS_WEIGHT_NAME} there (the official repos ship it).",
            )
        raise WeightFileError(f"{path} is a folder without {DIFFUSERS_WEIGHT_NAME}.", fix="Put the official weight file there.")
    if path.suffix in _PICKLE_SUFFIXES:
        raise WeightFileError(f"{path} is a pickle checkpoint; HelloMeme loads safetensors only (never unpickles).",
                              fix="Use the .safetensors file.")
    if not path.exists():
        raise WeightFileError(f"Weight file {path} does not exist.")
    return path


def load_state_dict(path: str | os.PathLike, device: "str | torch.device" = "cpu") -> "dict[str, torch.Tensor]":
    """All tensors of a ``.safetensors`` file or of a diffusers folder (``config.json`` + weights).

    The header is validated first, so a truncated or corrupt file gives a :class:`WeightFileError`
    naming it instead of a low-level safetensors/torch message.
    """
    from safetensors.torch import load_file

    weight_file = resolve_weight_file(path)
    read_header(weight_file)
    try:
        return load_file(str(weight_file), device=str(device))
    except Exception as exc:  # safetensors raises its own SafetensorError / OSError types
        raise WeightFileError(f"{weight_file} could not be loaded: {exc}.", fix=_REFETCH) from exc
