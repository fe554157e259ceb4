"""One HelloMeme version's loaded networks (``HM_MODELS``) and the per-frame control features they make.

Control features do not depend on the timestep: they are computed once per frame, for the driving
frames (conditional) and once for the official unconditional input (condition -1, coefficients 0,
face parts 0; emotion negative 0 from v3 on), then reused by every sampling step.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import nn

from ..errors import HelloMemeError, ShapeMismatchError
from .modules import HMUNetModules
from .program import Family, family_for_version

# Official expression / emotion widths.
DRIVE_COEFFS = 51
FACE_PART_TOKENS, FACE_PART_DIM = 3, 1024
PD_FPG_DIM = 548
# Control networks run over this many frames at a time (bounded memory for long clips).
CONTROL_CHUNK = 8


@dataclass
class HMModelBundle:
    """The networks of one HelloMeme version, loaded and cast to one dtype."""

    version: str
    dtype: torch.dtype
    reference_adapter: nn.Module
    control_networks: list[nn.Module]  # run in order; a projection consumes the previous base's output
    motion_adapter: nn.Module | None = None
    animatediff: nn.Module | None = None
    sources: dict[str, str] = field(default_factory=dict)  # repo -> file, for messages

    @property
    def family(self) -> Family:
        return family_for_version(self.version)

    def image_modules(self) -> HMUNetModules:
        return HMUNetModules().insert(self.reference_adapter).eval()

    def temporal_modules(self) -> HMUNetModules:
        """Reference modules plus the temporal ones the official video denoiser of this version uses."""
        modules = self.image_modules()
        if self.motion_adapter is None and self.animatediff is None:
            raise HelloMemeError(
                f"HelloMeme {self.version}: the temporal stage needs the motion files of {self.version}, which were not "
                f"found when the models were loaded. Download them: python -m hellomeme_core download --version {self.version}"
            )
        if self.motion_adapter is not None:
            modules.insert(self.motion_adapter)
        if self.animatediff is not None:
            modules.insert(self.animatediff)
        return modules.eval()


def _net_name(net: nn.Module) -> str:
    return getattr(net, "official_class", type(net).__name__)


def _run_networks(networks: list[nn.Module], condition: torch.Tensor, drive_coeff, face_parts, pd_fpg) -> dict:
    """Official call of each control network on ``(B, 3, F, H, W)`` inputs; merged control dict."""
    out: dict[str, torch.Tensor] = {}
    base_out: dict | None = None
    for net in networks:
        name = _net_name(net)
        if name in ("HMControlNet", "HMV2ControlNet"):
            if drive_coeff is None:
                continue
            out.update(net(condition, drive_coeff, face_parts))
        elif name in ("HMControlNet2", "HMV2ControlNet2"):
            if pd_fpg is None:
                continue
            out.update(net(condition, pd_fpg))
        elif name in ("HMV3ControlNet", "HMControlNetBase", "HM5ControlNetBase"):
            if drive_coeff is not None:
                result = net(condition, drive_coeff=drive_coeff, face_parts=face_parts)
            elif pd_fpg is not None:
                result = net(condition, emo_embedding=pd_fpg)
            else:
                raise HelloMemeError(f"{name} needs expression coefficients or a PD-FGC embedding; the driving motion has neither.")
            if name == "HMV3ControlNet":
                out.update(result)
            else:
                base_out = result
        elif name in ("HM4SD15ControlProj", "HM5SD15ControlProj"):
            if base_out is None:
                raise HelloMemeError(f"{name} needs the output of a control base network loaded before it.")
            out.update(net(base_out))
        else:
            raise HelloMemeError(f"HelloMeme: unknown control network {name}.")
    return out


def compute_control_features(
    bundle: HMModelBundle,
    condition: torch.Tensor,
    drive_coeff: torch.Tensor | None,
    face_parts: torch.Tensor | None = None,
    pd_fpg: torch.Tensor | None = None,
    neg_pd_fpg: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
    store_dtype: torch.dtype | None = None,
    compute_device: torch.device | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Per-frame ``(F, C, h, w)`` conditional features and ``(1, C, h, w)`` unconditional ones.

    ``condition`` ``(F, 3, H, W)`` in [-1, 1]; ``drive_coeff`` ``(F, 51)``; ``face_parts`` ``(F, 3, 1024)``
    (zeros when absent); ``pd_fpg`` ``(F, 548)``. Frames run independently (one frame per call, as the
    official video pipelines do), in chunks. The networks run on ``compute_device`` (default: where their
    weights are; a host that offloads weights and casts them per layer passes its compute device).
    Results are stored on ``device`` in ``store_dtype``. ``progress(done, total)`` follows the frames.
    """
    if condition.dim() != 4 or condition.shape[1] != 3:
        raise ShapeMismatchError(f"The condition images must be (frames, 3, H, W), got {tuple(condition.shape)}.")
    frames, _, height, width = condition.shape
    if height % 64 or width % 64:
        raise ShapeMismatchError(
            f"The condition images are {width}x{height}; the control networks need sides that are multiples "
            "of 64 (e.g. 512x512). Resize the driving/condition images (and the latent) accordingly."
        )
    for name, t, width_ in (("drive_coeff", drive_coeff, DRIVE_COEFFS), ("pd_fpg", pd_fpg, PD_FPG_DIM)):
        if t is not None and (t.dim() != 2 or t.shape[1] != width_ or t.shape[0] < frames):
            raise ShapeMismatchError(f"{name} must be (frames >= {frames}, {width_}), got {tuple(t.shape)}.")
    p = next(bundle.control_networks[0].parameters())
    dev, dt = torch.device(compute_device) if compute_device is not None else p.device, p.dtype
    store_dtype = store_dtype or dt
    if drive_coeff is not None and face_parts is None:
        face_parts = torch.zeros(frames, FACE_PART_TOKENS, FACE_PART_DIM)

    def prep(t, n):
        return None if t is None else t[:n].to(device=dev, dtype=dt)

    cond_out: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for start in range(0, frames, CONTROL_CHUNK):
            stop = min(frames, start + CONTROL_CHUNK)
            # frames as batch, one frame each: (n, 3, 1, H, W), coefficients (n, 1, D)
            c = rearrange(condition[start:stop].to(device=dev, dtype=dt), "n c h w -> n c 1 h w")
            dc = None if drive_coeff is None else prep(drive_coeff[start:stop], stop - start).unsqueeze(1)
            fp = None if face_parts is None else prep(face_parts[start:stop], stop - start).unsqueeze(1)
            pd = None if pd_fpg is None else prep(pd_fpg[start:stop], stop - start).unsqueeze(1)
            feats = _run_networks(bundle.control_networks, c, dc, fp, pd)
            for k, v in feats.items():
                cond_out.setdefault(k, []).append(rearrange(v, "n c 1 h w -> n c h w").to(device=device, dtype=store_dtype))
            if progress is not None:
                progress(stop, frames)
        # Official unconditional control: condition -1, zero coefficients / face parts, emotion negative.
        c = -torch.ones(1, 3, 1, height, width, device=dev, dtype=dt)
        dc = None if drive_coeff is None else torch.zeros(1, 1, DRIVE_COEFFS, device=dev, dtype=dt)
        fp = None if face_parts is None else torch.zeros(1, 1, FACE_PART_TOKENS, FACE_PART_DIM, device=dev, dtype=dt)
        # The emotion negative is FanEncoder(all -1 image) in the v1/v2 pipelines, zeros from v3 on.
        if pd_fpg is None:
            pd = None
        elif neg_pd_fpg is not None and bundle.family is Family.HM:
            pd = neg_pd_fpg.reshape(1, 1, PD_FPG_DIM).to(device=dev, dtype=dt)
        else:
            pd = torch.zeros(1, 1, PD_FPG_DIM, device=dev, dtype=dt)
        uncond = {k: rearrange(v, "n c 1 h w -> n c h w").to(device=device, dtype=store_dtype)
                  for k, v in _run_networks(bundle.control_networks, c, dc, fp, pd).items()}
    cond = {k: torch.cat(v, 0) for k, v in cond_out.items()}
    return cond, uncond


def reference_pads(reference: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Motion pads ``(rows, C, 2, h, w)`` made of the reference features themselves (first = last = reference).

    The official video pipeline makes pads with the reference pass on the margin frames of the first-level
    result; where those are not available this stands in for them (v3/v4 motion modules require pads).
    """
    return {k: torch.stack([v, v], dim=2) for k, v in reference.items()}
