"""Finding a workflow's job inputs (markers, or the shipped workflow's node classes), making a job's prompt, and
the ids that make a job recognisable in every run."""
from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path

import pytest

from hellomeme_core.batch import identity
from hellomeme_core.batch.errors import WorkflowError
from hellomeme_core.batch.workflow import Binding, OutputSpec, Workflow, shipped_workflow_path
from tests.batch.support import QUICK_WORKFLOW


def _by_class(graph: dict, class_type: str) -> list[str]:
    return [nid for nid, node in graph.items() if node["class_type"] == class_type]


def _unmarked(graph: dict) -> dict:
    graph = copy.deepcopy(graph)
    for node in graph.values():
        (node.get("_meta") or {}).pop("hellomeme_input", None)
        (node.get("_meta") or {}).pop("hellomeme_output", None)
    return graph


def test_the_shipped_workflow_has_every_role_by_class_or_marker():
    graph = json.loads(shipped_workflow_path().read_text())
    for variant in (graph, _unmarked(graph)):  # markers (when the builder writes them) or the class fallback
        workflow = Workflow(variant, "shipped")
        (load_image,) = _by_class(variant, "LoadImage")
        (driving,) = _by_class(variant, "HelloMemeLoadDrivingVideo")
        (sampler,) = _by_class(variant, "HelloMemeVideoSampler")
        (models,) = _by_class(variant, "HelloMemeLoadModels")
        (size,) = [n for n in _by_class(variant, "PrimitiveInt") if "Generation size" in variant[n]["_meta"]["title"]]
        (positive,) = [n for n in _by_class(variant, "CLIPTextEncode") if "Positive" in variant[n]["_meta"]["title"]]
        assert workflow.bindings == {
            "reference": [Binding(load_image, "image")], "driving": [Binding(driving, "video")],
            "fps": [Binding(driving, "target_fps")], "seed": [Binding(sampler, "seed")],
            "steps": [Binding(sampler, "steps")], "cfg": [Binding(sampler, "cfg")],
            "version": [Binding(models, "version")], "size": [Binding(size, "value")],
            "prompt": [Binding(positive, "text")]}
        savers = _by_class(variant, "SaveVideo")
        assert len(savers) == 2
        suffixes = {spec.suffix: variant[spec.node_id]["inputs"]["filename_prefix"] for spec in workflow.outputs}
        assert sorted(suffixes) == ["", "_full"]
        assert suffixes[""].endswith("meme") and suffixes["_full"].endswith("meme_full")


def test_a_job_prompt_sets_inputs_settings_and_output_prefixes():
    graph = json.loads(shipped_workflow_path().read_text())
    workflow = Workflow(graph, "shipped")
    settings = {"version": "v5", "seed": 7, "steps": 2, "cfg": 2.5, "size": 128, "fps": 6.0, "prompt": "a clown"}
    prompt = workflow.prompt_for("hellomeme_batch/hm_a.jpg", "hellomeme_batch/hm_b.mp4", settings, "hellomeme_batch/P")
    b = workflow.bindings
    value = lambda role: prompt[b[role][0].node_id]["inputs"][b[role][0].input_name]  # noqa: E731
    assert value("reference") == "hellomeme_batch/hm_a.jpg" and value("driving") == "hellomeme_batch/hm_b.mp4"
    assert [value(k) for k in ("version", "seed", "steps", "cfg", "size", "fps")] == ["v5", 7, 2, 2.5, 128, 6.0]
    official = graph[b["prompt"][0].node_id]["inputs"]["text"]
    assert value("prompt") == f"a clown, {official}"  # yours first, then the official prompt
    prefixes = sorted(prompt[o.node_id]["inputs"]["filename_prefix"] for o in workflow.outputs)
    assert prefixes == ["hellomeme_batch/P", "hellomeme_batch/P_full"]
    assert graph == json.loads(shipped_workflow_path().read_text())  # the workflow itself is left alone
    # Everything else is the workflow's own.
    changed = {nid for nid in prompt if prompt[nid] != graph[nid]}
    assert changed == workflow.bound_nodes()


def test_markers_string_list_and_object_forms():
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}, "_meta": {"hellomeme_input": "reference"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "b.png"}},  # a second image: not the reference
        "3": {"class_type": "MyVideoLoader", "inputs": {"file": "x.mp4", "rate": 8},
              "_meta": {"hellomeme_input": {"driving": "file", "fps": "rate"}}},
        "4": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "cfg": 7},
              "_meta": {"hellomeme_input": ["seed", "steps"]}},
        "5": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "cfg": 7}},
        "6": {"class_type": "SaveVideo", "inputs": {"filename_prefix": "x"}, "_meta": {"hellomeme_output": "main"}},
        "7": {"class_type": "SaveVideo", "inputs": {"filename_prefix": "y"}},
        "8": {"class_type": "SaveAnimatedWEBP", "inputs": {"filename_prefix": "z"}, "_meta": {"hellomeme_output": "web"}},
    }
    workflow = Workflow(graph)
    assert workflow.bindings["reference"] == [Binding("1", "image")]
    assert workflow.bindings["driving"] == [Binding("3", "file")] and workflow.bindings["fps"] == [Binding("3", "rate")]
    assert workflow.bindings["seed"] == [Binding("4", "seed")]  # marked: only the marked sampler
    assert workflow.bindings["cfg"] == [Binding("4", "cfg"), Binding("5", "cfg")]  # unmarked role: by class
    assert workflow.outputs == [OutputSpec("6", ""), OutputSpec("8", "_web")]  # marked outputs only


@pytest.mark.parametrize("change, message", [
    (lambda g: g.update({"9": {"class_type": "LoadImage", "inputs": {"image": "c.png"}}}),
     "2 nodes (1, 9) for the job's reference input"),
    (lambda g: g.pop("1"), "no node for the job's reference input"),
    (lambda g: g["1"].update({"_meta": {"hellomeme_input": "portrait"}}), "unknown hellomeme_input role 'portrait'"),
    (lambda g: g["2"].update({"_meta": {"hellomeme_input": "seed"}}), "none of the inputs seed, noise_seed"),
    (lambda g: g["2"]["inputs"].update({"video": ["1", 0]}) or g["2"].update({"_meta": {"hellomeme_input": "driving"}}),
     "is linked to another node"),
    (lambda g: g.pop("3"), "has no SaveVideo node"),
])
def test_workflow_problems_are_named(change, message):
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
             "2": {"class_type": "HelloMemeLoadDrivingVideo", "inputs": {"video": "d.mp4", "target_fps": 8.0}},
             "3": {"class_type": "SaveVideo", "inputs": {"filename_prefix": "m"}}}
    Workflow(copy.deepcopy(graph))
    change(graph)
    with pytest.raises(WorkflowError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Workflow(graph)


def test_editor_format_and_missing_roles_are_explained(tmp_path: Path):
    (tmp_path / "ui.json").write_text(json.dumps({"nodes": [], "links": []}))
    with pytest.raises(WorkflowError, match="Export \\(API\\)"):
        Workflow.load(tmp_path / "ui.json")
    quick = Workflow.load(QUICK_WORKFLOW)
    assert quick.missing_roles({"size": 64, "seed": 1, "steps": 2}) == ["seed", "steps"]
    with pytest.raises(WorkflowError, match="no input for seed"):
        quick.prompt_for("a", "b", {"seed": 1}, "p")


def test_the_workflow_hash_ignores_titles_but_not_values():
    graph = json.loads(QUICK_WORKFLOW.read_text())
    base = Workflow(graph).sha256
    renamed = copy.deepcopy(graph)
    renamed["8"]["_meta"]["title"] = "another title"
    assert Workflow(renamed).sha256 == base
    changed = copy.deepcopy(graph)
    changed["6"]["inputs"]["translation_ratio"] = 0.6
    assert Workflow(changed).sha256 != base


def test_prompt_ids_are_fixed_by_content_settings_and_workflow(tmp_path: Path):
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    sha_a, sha_b = identity.file_sha256(a), identity.file_sha256(b)
    assert sha_a == sha_b  # content, not the path
    pid = identity.prompt_id(sha_a, "d", {"seed": 1, "steps": 2}, "w")
    assert pid == identity.prompt_id(sha_b, "d", {"steps": 2, "seed": 1}, "w")  # order of settings is irrelevant
    assert len({pid, identity.prompt_id(sha_a, "d", {"seed": 2, "steps": 2}, "w"),
                identity.prompt_id(sha_a, "d", {"seed": 1, "steps": 2}, "w2"),
                identity.prompt_id("x", "d", {"seed": 1, "steps": 2}, "w")}) == 4
    assert uuid.UUID(pid).version == 5
    b.write_bytes(b"changed")
    assert identity.file_sha256(b) != sha_a  # the cache notices a changed file
    assert identity.upload_name("x/Clip.MP4", "ab" * 32) == "hm_" + "ab" * 12 + ".mp4"
