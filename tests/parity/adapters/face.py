"""Parity builders for the face tools: the head-pose condition image."""
from __future__ import annotations

from tests.parity.registry import CaseContext, adapter

from hellomeme_core.pose_condition import render_pose_condition


@adapter("gen_control_heatmaps")
def build_control_heatmaps(ctx: CaseContext, module_key: str):
    def call(drive_rot, drive_trans, ref_trans, save_size=512, trans_ratio=0.0):
        return render_pose_condition(drive_rot, drive_trans, ref_trans, int(save_size), float(trans_ratio))

    return call
