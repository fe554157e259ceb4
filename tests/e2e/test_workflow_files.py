"""The shared workflows of ``workflows/`` against a real server's ``/object_info``: every node type exists,
every link fits, every widget value is allowed, and each UI file describes the same graph as its API twin."""
from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import pytest

from tests.e2e.workflow_graph import (
    LEGACY_WORKFLOWS_DIR, VIRTUAL_NODES, strip_meta, ui_to_api, validate_api, with_defaults, workflow_pairs)

pytestmark = pytest.mark.slow

PAIRS = workflow_pairs()
LEGACY_PAIRS = workflow_pairs(LEGACY_WORKFLOWS_DIR)
EXPECTED = {"hellomeme_motion_preview", "hellomeme_video", "hellomeme_upper_body", "hellomeme_talking"}
# Our node types each workflow must use (a workflow that silently lost one would still validate).
USES = {
    "hellomeme_motion_preview": {"HelloMemeLoadDrivingVideo", "HelloMemeLoadFaceAnalyzer", "HelloMemeExtractFaceMotion",
                                 "HelloMemeRenderPoseCondition", "CreateVideo", "SaveVideo"},
    "hellomeme_video": {"CheckpointLoaderSimple", "HelloMemeLoadDrivingVideo", "HelloMemeLoadModels", "HelloMemeReference",
                        "HelloMemeApply", "HelloMemeApplyTemporal", "PrimitiveInt", "HelloMemeVideoSampler", "VAEDecode",
                        "HelloMemePasteBack", "CreateVideo", "SaveVideo"},
    "hellomeme_upper_body": {"HelloMemeExtractBodyMotion", "HelloMemeRenderSkeletonCondition", "ControlNetLoader",
                             "ControlNetApplyAdvanced", "HelloMemeApply", "HelloMemeVideoSampler"},
    "hellomeme_talking": {"LoadAudio", "HelloMemeAudioToFaceMotion", "HelloMemeCombineFaceMotion", "HelloMemeLoadModels",
                          "HelloMemeRenderPoseCondition", "HelloMemeApply", "HelloMemeVideoSampler", "HelloMemePasteBack",
                          "CreateVideo", "SaveVideo"},
}
SD15_CHECKPOINT = "v1-5-pruned-emaonly.safetensors"
OPENPOSE_CONTROLNET = "control_v11p_sd15_openpose.pth"  # the stock ControlNet the upper-body workflow names


@contextlib.contextmanager
def placeholder(path: Path):
    """An empty file for the moment a file-list combo is read (the checkpoint list), removed afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def object_info(comfy_server, staged_inputs) -> dict:
    """``/object_info`` while the inputs the workflows name exist (driving.mp4, reference.jpg, the SD1.5 file,
    the OpenPose ControlNet)."""
    with placeholder(comfy_server.extra_models_dir / "checkpoints" / SD15_CHECKPOINT), \
            placeholder(comfy_server.models_dir / "controlnet" / OPENPOSE_CONTROLNET):  # the server copy's own folder
        return comfy_server.object_info()


def test_every_shared_workflow_has_both_formats():
    assert {p.name for p in PAIRS} == EXPECTED


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p.name)
def test_workflow_is_valid_for_the_server(pair, object_info):
    api = pair.api()
    assert validate_api(api, object_info) == []
    assert USES[pair.name] <= {node["class_type"] for node in api.values()}


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p.name)
def test_ui_file_is_the_same_graph_as_the_api_file(pair, object_info):
    ui = pair.ui()
    assert ui_to_api(ui, object_info) == strip_meta(pair.api())
    # The UI file is well formed: unique ids, links that name real nodes and slots on both ends.
    nodes = {n["id"]: n for n in ui["nodes"]}
    assert len(nodes) == len(ui["nodes"]) and ui["last_node_id"] >= max(nodes)
    for link_id, src, src_slot, dst, dst_slot, kind in ui["links"]:
        assert link_id in nodes[src]["outputs"][src_slot]["links"]
        assert nodes[dst]["inputs"][dst_slot]["link"] == link_id
        assert nodes[dst]["inputs"][dst_slot]["type"] == kind
    # Every node's sockets are those the server declares now (a node that gained or lost an output shows here).
    for node in ui["nodes"]:
        if node["type"] in VIRTUAL_NODES:
            continue
        entry = object_info[node["type"]]
        assert [(o["name"], o["type"]) for o in node["outputs"]] == list(zip(entry["output_name"], entry["output"])), node["type"]
        declared = {**entry["input"].get("required", {}), **entry["input"].get("optional", {})}
        assert {i["name"] for i in node["inputs"]} <= set(declared), node["type"]
    # Users are told what to do: a note in the graph, and groups that frame the steps.
    assert any(n["type"] in VIRTUAL_NODES and n["widgets_values"][0].strip() for n in ui["nodes"])
    assert len(ui["groups"]) >= 3


@pytest.mark.parametrize("pair", LEGACY_PAIRS, ids=lambda p: p.name)
def test_workflows_shipped_with_the_old_node_ids_still_validate(pair, object_info):
    """Saved graphs and API scripts made before the id prefix keep working (deprecated aliases)."""
    api = pair.api()
    assert validate_api(api, object_info) == []
    # The editor gives the graph's nodes the widgets added since (with their defaults); the old API file
    # lacks them and the server fills in the same defaults.
    assert ui_to_api(pair.ui(), object_info) == with_defaults(strip_meta(api), object_info)
    old_ids = {node["class_type"] for node in api.values()} & {"LoadHelloMemeModels", "ApplyHelloMeme", "ApplyHelloMemeTemporal"}
    assert pair.name != "hellomeme_video" or len(old_ids) == 3
    for node_id in old_ids:
        assert object_info[node_id]["deprecated"] is True  # the editor hides it from search; graphs still load


def test_validation_rejects_a_missing_node_and_bad_values(object_info):
    """The check above can fail: a renamed node type, an unknown combo value, a value out of range, a broken link."""
    api = PAIRS[0].api()
    broken = copy.deepcopy(api)
    broken["3"]["class_type"] = "HelloMemeNoSuchNode"
    assert any("missing node type 'HelloMemeNoSuchNode'" in p for p in validate_api(broken, object_info))
    broken = copy.deepcopy(api)
    broken["3"]["inputs"]["backend"] = "dlib"
    assert any("'dlib' is not one of" in p for p in validate_api(broken, object_info))
    broken = copy.deepcopy(api)
    broken["4"]["inputs"]["smoothing"] = 1.5
    assert any("outside [0.0, 1.0]" in p for p in validate_api(broken, object_info))
    broken = copy.deepcopy(api)
    broken["5"]["inputs"]["face_motion"] = ["1", 0]  # IMAGE into FACE_MOTION
    assert any("gets IMAGE" in p for p in validate_api(broken, object_info))
    broken = copy.deepcopy(api)
    broken["1"]["inputs"]["video"] = "not_uploaded.mp4"
    assert any("'not_uploaded.mp4' is not one of" in p for p in validate_api(broken, object_info))
