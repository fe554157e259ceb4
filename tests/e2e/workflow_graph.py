"""The shared workflow files of ``workflows/`` and two checks on them against a server's ``/object_info``:
UI (graph) format -> API format by the widget order ComfyUI's editor uses, and validation of an API
workflow (node types exist, links fit, every widget value is allowed by its input spec)."""
from __future__ import annotations

import copy

import json
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = REPO_ROOT / "workflows"
# The workflows as shipped before the node ids took the HelloMeme prefix: they must keep loading and validating.
LEGACY_WORKFLOWS_DIR = Path(__file__).resolve().parent / "legacy_workflows"
# Editor-only nodes: they are part of the UI file but never reach the server.
VIRTUAL_NODES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
# Inputs for which the editor adds a "control after generate" widget right after the value.
SEED_NAMES = {"seed", "noise_seed"}


@dataclass(frozen=True)
class WorkflowPair:
    """A shared workflow: the UI file users drag into the editor and its API twin for scripts."""

    name: str
    ui_path: Path
    api_path: Path

    def ui(self) -> dict:
        return json.loads(self.ui_path.read_text())

    def api(self) -> dict:
        return json.loads(self.api_path.read_text())


def workflow_pairs(folder: Path = WORKFLOWS_DIR) -> list[WorkflowPair]:
    """Every ``<folder>/<name>.json`` with its ``<name>_api.json`` (a UI file without its twin is an error)."""
    pairs = []
    for ui_path in sorted(folder.glob("*.json")):
        if ui_path.stem.endswith("_api"):
            continue
        api_path = ui_path.with_name(f"{ui_path.stem}_api.json")
        if not api_path.is_file():
            raise AssertionError(f"{ui_path.name} has no API twin {api_path.name}")
        pairs.append(WorkflowPair(ui_path.stem, ui_path, api_path))
    return pairs


def _input_specs(entry: dict) -> list[tuple[str, str, dict]]:
    """(name, type, options) of a node's inputs in the order the editor creates them (required, optional)."""
    specs = []
    for section in ("required", "optional"):
        for name, spec in entry["input"].get(section, {}).items():
            kind = "COMBO" if isinstance(spec[0], list) else spec[0]
            specs.append((name, kind, spec[1] if len(spec) > 1 else {}))
    return specs


def _extra_widgets(kind: str, name: str, options: dict) -> int:
    """Widgets the editor adds right after an input's own: the seed control."""
    return 1 if kind == "INT" and (name in SEED_NAMES or options.get("control_after_generate")) else 0


def _has_upload_button(entry: dict) -> bool:
    """Whether the editor gives the node an upload button (a widget it adds after all the others)."""
    specs = [spec[1] for section in ("required", "optional") for spec in entry["input"].get(section, {}).values()
             if len(spec) > 1 and isinstance(spec[1], dict)]
    return any(o.get("image_upload") or o.get("video_upload") or o.get("audio_upload") for o in specs)


def ui_to_api(ui: dict, object_info: dict) -> dict:
    """API prompt (``{id: {class_type, inputs}}``) of a UI workflow, as the editor's graphToPrompt builds it."""
    links = {link[0]: link for link in ui["links"]}
    prompt = {}
    for node in ui["nodes"]:
        kind = node["type"]
        if kind in VIRTUAL_NODES or node.get("mode", 0) in (2, 4):  # muted / bypassed nodes are not sent
            continue
        if kind not in object_info:
            raise AssertionError(f"node {node['id']} has type {kind!r}, which the server does not know")
        values = list(node.get("widgets_values") or [])
        if _has_upload_button(object_info[kind]) and values:
            values.pop()  # the upload button's value
        linked = {i["name"]: links[i["link"]] for i in node.get("inputs", []) if i.get("link") is not None}
        inputs: dict = {}
        for name, kind_, options in _input_specs(object_info[kind]):
            if kind_ in WIDGET_TYPES:
                if values:
                    value = values.pop(0)
                    del values[:_extra_widgets(kind_, name, options)]
                elif "default" in options:
                    # A widget added after the graph was saved: the editor creates it with its default.
                    value = options["default"]
                else:
                    raise AssertionError(f"node {node['id']} ({kind}) has no widget value for {name!r}")
                if name not in linked:
                    inputs[name] = value
            if name in linked:
                link = linked[name]
                inputs[name] = [str(link[1]), link[2]]
        if values:
            raise AssertionError(f"node {node['id']} ({kind}) has {len(values)} widget values left over: {values}")
        prompt[str(node["id"])] = {"class_type": kind, "inputs": inputs}
    return prompt


def with_defaults(api: dict, object_info: dict) -> dict:
    """``api`` with every declared widget input it lacks set to its default: what the editor sends for a graph
    saved before those inputs existed (the server fills in the same defaults for the old API file)."""
    out = copy.deepcopy(api)
    for node in out.values():
        entry = object_info[node["class_type"]]["input"]
        for name, spec in {**entry.get("required", {}), **entry.get("optional", {})}.items():
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if name not in node["inputs"] and "default" in options:
                node["inputs"][name] = options["default"]
    return out


def strip_meta(api: dict) -> dict:
    """An API prompt without ``_meta`` (titles): what the server executes."""
    return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in api.items()}


def declared_only(api: dict, object_info: dict) -> dict:
    """An API prompt as the server reads it: no ``_meta``, and only inputs the node classes declare (the editor
    also sends its display-only widgets, e.g. Load Video's ``video-preview``, which the server ignores)."""
    out = {}
    for node_id, node in strip_meta(api).items():
        entry = object_info.get(node["class_type"], {}).get("input", {})
        declared = set(entry.get("required", {})) | set(entry.get("optional", {}))
        out[node_id] = {"class_type": node["class_type"], "inputs": {k: v for k, v in node["inputs"].items() if k in declared}}
    return out


def _check_value(where: str, kind: str, options: dict, choices: list | None, value) -> list[str]:
    if kind == "COMBO":
        allowed = choices if choices is not None else options.get("options", [])
        return [] if value in allowed else [f"{where}: {value!r} is not one of {allowed[:12]}"]
    if kind == "BOOLEAN":
        return [] if isinstance(value, bool) else [f"{where}: {value!r} is not a boolean"]
    if kind == "STRING":
        return [] if isinstance(value, str) else [f"{where}: {value!r} is not a string"]
    if kind in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == "INT" and not float(value).is_integer()):
            return [f"{where}: {value!r} is not an {kind}"]
        low, high = options.get("min"), options.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            return [f"{where}: {value!r} is outside [{low}, {high}]"]
    return []


def validate_api(api: dict, object_info: dict) -> list[str]:
    """Problems of an API workflow against ``/object_info`` (an empty list when the server would accept it)."""
    problems = []
    for node_id, node in api.items():
        kind = node.get("class_type")
        if kind not in object_info:
            problems.append(f"node {node_id}: missing node type {kind!r} (not in /object_info)")
            continue
        entry = object_info[kind]
        specs = {name: (k, opts) for name, k, opts in _input_specs(entry)}
        required = set(entry["input"].get("required", {}))
        given = node.get("inputs", {})
        for name in sorted(required - set(given)):
            problems.append(f"node {node_id} ({kind}): required input {name!r} is not set")
        for name, value in given.items():
            where = f"node {node_id} ({kind}).{name}"
            if name not in specs:
                problems.append(f"{where}: no such input")
                continue
            kind_, options = specs[name]
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                source = api.get(value[0])
                if source is None:
                    problems.append(f"{where}: linked to node {value[0]}, which is not in the workflow")
                    continue
                outputs = object_info.get(source["class_type"], {}).get("output", [])
                if not 0 <= value[1] < len(outputs):
                    problems.append(f"{where}: node {value[0]} has no output {value[1]}")
                elif outputs[value[1]] != kind_ and "*" not in (outputs[value[1]], kind_):
                    problems.append(f"{where}: gets {outputs[value[1]]} from node {value[0]} but takes {kind_}")
                continue
            spec = entry["input"].get("required", {}).get(name) or entry["input"].get("optional", {}).get(name)
            choices = spec[0] if isinstance(spec[0], list) else None
            problems += _check_value(where, kind_, options, choices, value)
    return problems


def upstream(api: dict, targets: list[str]) -> dict:
    """The part of an API workflow that ``targets`` depend on (the targets included), for running one branch."""
    keep: set[str] = set()
    todo = list(targets)
    while todo:
        node_id = todo.pop()
        if node_id in keep:
            continue
        keep.add(node_id)
        todo += [v[0] for v in api[node_id]["inputs"].values() if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)]
    return {k: json.loads(json.dumps(v)) for k, v in api.items() if k in keep}
