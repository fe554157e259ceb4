"""Driving motion applied to a reference face: relative pose/expression and the condition images."""
from __future__ import annotations

import numpy as np
import torch

from hellomeme_core.face.head_pose import euler_to_matrix, matrix_to_euler
from hellomeme_core.face.types import FaceMotion
from hellomeme_core.pose_condition import render_pose_condition


def relative_motion(drive: FaceMotion, reference: FaceMotion, pose: bool = True, expression: bool = True) -> FaceMotion:
    """The driving clip's change from its first frame, applied on top of the reference's own pose and
    expression: R_t' = R_ref R_0^T R_t; coefficients ref + (c_t - c_0), clipped to [0, 1]."""
    out = drive.subset(slice(None))
    if pose:
        ref = euler_to_matrix(reference.angles[:1].astype(np.float64))
        first = euler_to_matrix(drive.angles[:1].astype(np.float64))
        rot = ref @ np.swapaxes(first, 1, 2) @ euler_to_matrix(drive.angles.astype(np.float64))
        out.angles = matrix_to_euler(rot).astype(np.float32)
    if expression:
        out.expression = np.clip(reference.expression[:1] + drive.expression - drive.expression[:1], 0.0, 1.0).astype(np.float32)
    out.extras["relative_to_reference"] = True
    return out


def condition_images(
    drive: FaceMotion, reference: FaceMotion | None = None, translation_ratio: float = 0.0, size: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """(drive condition (3, F, S, S), reference condition (3, 1, S, S)), float32 in [-1, 1].

    As the official pipelines do: the driving squares sit at the reference head's translation, moved by
    the driving clip's own translation change times ``translation_ratio``; the reference square uses
    the reference pose. Without a reference, the driving clip's first frame stands in for it.
    """
    reference = reference if reference is not None else drive.subset(slice(0, 1))
    drive_condition = render_pose_condition(drive.angles, drive.translation, reference.translation[0], size, translation_ratio)
    ref_condition = render_pose_condition(reference.angles[:1], reference.translation[:1], reference.translation[0], size, 0.0)
    return drive_condition, ref_condition
