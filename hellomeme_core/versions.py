"""The HelloMeme versions and what differs between them, in one table every other module reads.

A version is a set of official weight repos (``songkey/<name>`` on Hugging Face) plus the denoiser
family that wires them into the UNet. The image stage makes single frames from the reference adapter
and the control networks; the video stage adds the temporal modules. The official video pipeline has
no v5c branch of its own: v5c video runs on the HM5 motion modules, the temporal stage of the whole v5
family.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import UnknownVersionError


class Family(enum.Enum):
    """How a version's modules sit between the SD1.5 blocks (two official denoiser layouts)."""

    HM = "hm"  # v1, v2 (HMDenoising3D / HMDenoisingMotion)
    HM3 = "hm3"  # v3 .. v5c (HM3Denoising3D / HM3DenoisingMotion)


@dataclass(frozen=True)
class Version:
    """One HelloMeme version: its files per stage and the facts that change the pipeline."""

    name: str
    family: Family
    image_repos: tuple[str, ...]  # reference adapter, then the control networks in the order they run
    video_repos: tuple[str, ...]  # what the temporal stage adds to the image stage
    # The reference pass also takes the reference face's own control features (pose image + motion),
    # which ties a reference made this way to this version.
    reference_with_control: bool = False
    # The official video pipeline's schedule: "two_stage" (per-frame image stage, then AnimateDiff windows),
    # "recursive_keep_deepest" / "recursive_overwrite" (12-frame chunks with margin frames generated one
    # level deeper; the pads of a frame are kept from the deepest pass / replaced level by level), or
    # None where no official video pipeline exists.
    official_video: str | None = None

    # The official sampler of this version (scheduler class of its official pipelines): "euler"
    # (EulerDiscreteScheduler, v1-v4) or "dpm_solver_pp_sde" (DPMSolverMultistepScheduler with
    # algorithm_type="sde-dpmsolver++", the v5 family).
    official_sampler: str = "euler"

    def repos(self, stage: str = "video") -> tuple[str, ...]:
        """Weight repos ``stage`` needs: "image" (one frame) or "video" (+ the temporal modules)."""
        if stage == "image":
            return self.image_repos
        if stage == "video":
            return self.image_repos + tuple(r for r in self.video_repos if r not in self.image_repos)
        raise ValueError(f"stage must be 'image' or 'video', not {stage!r}")

    def required_repos(self, stage: str = "video") -> tuple[str, ...]:
        """Every file ``stage`` needs: the networks (``repos``) and the PD-FGC encoder of the official
        default expression input (loaded by the face analyzer, not with the networks)."""
        return self.repos(stage) + EXPRESSION_REPOS


# The PD-FGC motion encoder: the official default expression input (``cntrl2``) of every version.
EXPRESSION_REPOS = ("songkey/pd_fgc_motion",)
_HM5_VIDEO = ("songkey/hm5_motion",)
_DPM_SDE = "dpm_solver_pp_sde"
TABLE: tuple[Version, ...] = (
    Version("v1", Family.HM, ("songkey/hm_reference", "songkey/hm_control", "songkey/hm_control2"),
            ("songkey/hm_animatediff_frame12",), official_video="two_stage"),
    Version("v2", Family.HM, ("songkey/hm2_reference", "songkey/hm2_control", "songkey/hm2_control2"),
            ("songkey/hm2_animatediff_frame12",), official_video="two_stage"),
    Version("v3", Family.HM3, ("songkey/hm3_reference", "songkey/hm3_control_mix"),
            ("songkey/hm3_motion", "songkey/hm3_animatediff"), official_video="recursive_keep_deepest"),
    Version("v4", Family.HM3, ("songkey/hm4_reference", "songkey/hm_control_base", "songkey/hm4_control_proj"),
            ("songkey/hm4_motion", "songkey/hm4_animatediff"), official_video="recursive_keep_deepest"),
    Version("v5", Family.HM3, ("songkey/hm5_reference", "songkey/hm5_control_base", "songkey/hm5_control_proj"),
            _HM5_VIDEO, official_video="recursive_overwrite", official_sampler=_DPM_SDE),
    Version("v5b", Family.HM3, ("songkey/hm5b_reference", "songkey/hm5_control_base", "songkey/hm5_control_proj"),
            _HM5_VIDEO, official_video="recursive_overwrite", official_sampler=_DPM_SDE),
    Version("v5c", Family.HM3, ("songkey/hm5c_reference", "songkey/hm5_control_base", "songkey/hm5c_control_proj"),
            _HM5_VIDEO, reference_with_control=True, official_sampler=_DPM_SDE),
)
VERSIONS: tuple[str, ...] = tuple(v.name for v in TABLE)  # oldest first
# What "auto" prefers, first choice first. Video: the versions of the official video pipelines, the newest
# the official app offers (v5) first; v5b (reachable only from the official scripts) and v5c (no official
# video pipeline) last. One image: the official app's default v5c first, then newest to oldest.
AUTO_ORDER = {
    "video": ("v5", "v4", "v3", "v2", "v1", "v5b", "v5c"),
    "image": ("v5c", "v5b", "v5", "v4", "v3", "v2", "v1"),
}

# The official prompt (hellomeme/model_config.json "prompt") the official video pipeline appends to the
# user's prompt (joined by ", "; alone when the user gives none). The negative prompt is empty. (The official
# v5b/v5c single-image pipeline uses another one, "prompt_new".)
OFFICIAL_PROMPT = ("(best quality), highly detailed, ultra-detailed, headshot, person, well-placed five sense organs, "
                   "looking at the viewer, centered composition, sharp focus, realistic skin texture")
# The official expression inputs: PD-FGC embedding (cntrl2, the default) or ARKit coefficients + CLIP
# face-part embeddings (cntrl1).
EXPRESSION_MODES = ("pd_fgc", "arkit")
_BY_NAME = {v.name: v for v in TABLE}


def version_info(name: str) -> Version:
    """The table row of ``name``; :class:`UnknownVersionError` (a KeyError too) naming the known ones."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise UnknownVersionError(f"Unknown HelloMeme version {name!r}; choose one of {', '.join(VERSIONS)}.") from None


def family_for_version(name: str) -> Family:
    """The denoiser family of a version name (``v1`` .. ``v5c``)."""
    return version_info(name).family


def versions_using(repo: str) -> list[str]:
    """Versions whose image or video stage uses ``repo`` (``songkey/<name>``), oldest first."""
    return [v.name for v in TABLE if repo in v.required_repos("video")]

