"""Node "Motion Fidelity Report" called in-process with ComfyUI's own modules (CPU)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hellomeme_core.errors import HelloMemeError
from hellomeme_core.report.plots import SIZE
from tests.nodes._comfy import comfy_root
from tests.report.support import delayed, synthetic_motion


@pytest.fixture(scope="module")
def report_node():
    comfy_root()
    import nodes.report as report

    return report.HelloMemeMotionFidelityReport


def test_schema_has_tooltips_everywhere(report_node):
    schema = report_node.GET_SCHEMA()
    assert schema.node_id == "HelloMemeMotionFidelityReport" and schema.display_name == "Motion Fidelity Report"
    spec = report_node.INPUT_TYPES()
    assert set(spec["required"]) == {"driving_motion", "result_motion"}
    for group in (spec["required"], spec["optional"]):  # ("hidden": what an output node gets from the server)
        for name, (_, options) in group.items():
            assert options.get("tooltip"), name
    assert len(report_node.OUTPUT_TOOLTIPS) == len(report_node.RETURN_TYPES) == 2 and all(report_node.OUTPUT_TOOLTIPS)
    assert report_node.validate_inputs(max_lag=12) is True
    assert "max_lag 99" in report_node.validate_inputs(max_lag=99)


def test_report_plots_json_and_preview(report_node):
    driving = synthetic_motion(30)
    frames = torch.rand(30, 32, 32, 3)
    output = report_node.execute(driving, delayed(driving, 2), driving, frames, frames, 8)
    plots, text = output.result
    assert plots.shape == (2, SIZE[1], SIZE[0], 3) and plots.dtype == torch.float32 and 0 <= plots.min() < plots.max() <= 1
    data = json.loads(text)
    assert data["summary"]["delay"]["frames"] == 2 and data["summary"]["delay"]["max_lag"] == 8
    assert data["summary"]["psnr_db"] == "inf" and data["summary"]["identity_drift"]["mean"] < 0.05
    images = output.ui.as_dict()["images"]
    assert len(images) == 2 and all(image["type"] == "temp" for image in images)


def test_errors_name_the_node_and_the_input(report_node):
    driving = synthetic_motion(10)
    with pytest.raises(HelloMemeError, match="^Motion Fidelity Report: PSNR/SSIM need both"):
        report_node.execute(driving, driving, None, torch.rand(10, 8, 8, 3), None)
    with pytest.raises(HelloMemeError, match="^Motion Fidelity Report: result_motion is not a FACE_MOTION"):
        report_node.execute(driving, np.zeros(3))
