"""An API-format workflow with its job inputs found, and the prompt of one job made from it.

Marking (a key in a node's ``_meta``, which ComfyUI ignores when it runs a prompt):

- ``"hellomeme_input"``: the job input(s) the node takes. A role name (``"reference"``), a list of role names
  (``["seed", "steps", "cfg"]``), or an object ``{role: input name}`` for an input named otherwise. A role name
  alone sets the node's input named in ``ROLE_INPUTS`` (the first of them the node has).
- ``"hellomeme_output"``: the node saves one of the job's files; ``"main"`` is ``<job name>.<ext>``, any other
  value ``v`` is ``<job name>_<v>.<ext>``.

A role no node is marked with falls back to the node classes of the shipped meme workflow (``FALLBACKS``),
so a workflow exported from the editor (which keeps only ``_meta.title``) still works. Output nodes fall back to
every ``SaveVideo``: the one whose ``filename_prefix`` has the shortest last part is the main output, each other
is ``<job name>_<rest>`` where ``<rest>`` is what its prefix adds to the main one's (``meme`` and ``meme_full``
give ``<name>.mp4`` and ``<name>_full.mp4``), or its whole last part when it does not start with it.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hellomeme_core.batch.errors import WorkflowError

INPUT_MARKER = "hellomeme_input"
OUTPUT_MARKER = "hellomeme_output"
MAIN_OUTPUT = "main"
# The input a role sets when a node is marked with the role's name alone (the first one the node has).
ROLE_INPUTS: dict[str, tuple[str, ...]] = {
    "reference": ("image",),
    "driving": ("video",),
    "fps": ("target_fps", "fps"),
    "seed": ("seed", "noise_seed"),
    "steps": ("steps",),
    "cfg": ("cfg",),
    "size": ("value", "size"),
    "prompt": ("text",),
    "version": ("version",),
}
REQUIRED_ROLES = ("reference", "driving")
SAMPLERS = {"HelloMemeVideoSampler", "KSampler", "KSamplerAdvanced"}


def _title(node: dict) -> str:
    return str((node.get("_meta") or {}).get("title") or "")


def _class_is(*names: str) -> Callable[[dict], bool]:
    return lambda node: node.get("class_type") in names


def _titled(class_type: str, prefix: str) -> Callable[[dict], bool]:
    return lambda node: node.get("class_type") == class_type and _title(node).lower().startswith(prefix)


# Unmarked workflows: the nodes of the shipped meme workflow that take each role.
FALLBACKS: dict[str, Callable[[dict], bool]] = {
    "reference": _class_is("LoadImage"),
    "driving": _class_is("HelloMemeLoadDrivingVideo"),
    "fps": _class_is("HelloMemeLoadDrivingVideo"),
    "seed": _class_is(*SAMPLERS),
    "steps": _class_is(*SAMPLERS),
    "cfg": _class_is(*SAMPLERS),
    "version": _class_is("HelloMemeLoadModels"),
    "size": _titled("PrimitiveInt", "generation size"),
    "prompt": _titled("CLIPTextEncode", "positive prompt"),
}
OUTPUT_CLASSES = {"SaveVideo"}


@dataclass(frozen=True)
class Binding:
    """One node input a role sets."""

    node_id: str
    input_name: str


@dataclass(frozen=True)
class OutputSpec:
    """A node that saves a file of the job, and the suffix its copy gets (``""`` for the main output)."""

    node_id: str
    suffix: str


def _node_key(node_id: str) -> tuple:
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def _marker_roles(node_id: str, node: dict) -> dict[str, str]:
    """{role: input name} of a node's ``hellomeme_input`` marker ({} when unmarked)."""
    marker = (node.get("_meta") or {}).get(INPUT_MARKER)
    if marker is None:
        return {}
    inputs = node.get("inputs") or {}
    if isinstance(marker, str):
        marker = [marker]
    if isinstance(marker, list):
        out = {}
        for role in marker:
            if role not in ROLE_INPUTS:
                raise WorkflowError(f"node {node_id}: unknown {INPUT_MARKER} role {role!r} "
                                    f"(known: {', '.join(ROLE_INPUTS)})")
            name = next((n for n in ROLE_INPUTS[role] if n in inputs), None)
            if name is None:
                raise WorkflowError(f"node {node_id} ({node.get('class_type')}) is marked {role!r} but has none of the "
                                    f"inputs {', '.join(ROLE_INPUTS[role])}; mark it as "
                                    f"{{\"{INPUT_MARKER}\": {{\"{role}\": \"<input name>\"}}}}")
            out[role] = name
        return out
    if isinstance(marker, dict):
        for role, name in marker.items():
            if role not in ROLE_INPUTS:
                raise WorkflowError(f"node {node_id}: unknown {INPUT_MARKER} role {role!r} "
                                    f"(known: {', '.join(ROLE_INPUTS)})")
            if name not in inputs:
                raise WorkflowError(f"node {node_id} ({node.get('class_type')}) has no input {name!r} for role {role!r}")
        return dict(marker)
    raise WorkflowError(f"node {node_id}: {INPUT_MARKER} must be a role name, a list of them or "
                        f"{{role: input name}}, not {marker!r}")


class Workflow:
    """An API-format workflow (``{node id: {"class_type", "inputs", "_meta"}}``) ready to take jobs."""

    def __init__(self, graph: dict[str, Any], source: str = "<workflow>") -> None:
        self.source = source
        self.graph = self._checked(graph, source)
        self.bindings = self._find_bindings()
        self.outputs = self._find_outputs()
        # What decides a job's result besides its inputs: every node's class and inputs (titles and markers
        # do not change what runs) and which inputs the job settings go into.
        bare = {nid: {"class_type": n["class_type"], "inputs": n.get("inputs", {})} for nid, n in self.graph.items()}
        placement = {role: [[b.node_id, b.input_name] for b in bs] for role, bs in sorted(self.bindings.items())}
        self.sha256 = hashlib.sha256(canonical_json({"graph": bare, "bindings": placement,
                                                      "outputs": [[o.node_id, o.suffix] for o in self.outputs]})
                                     .encode("utf-8")).hexdigest()

    @classmethod
    def load(cls, path: str | Path) -> "Workflow":
        path = Path(path)
        try:
            graph = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WorkflowError(f"workflow file not found: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WorkflowError(f"{path} is not a JSON workflow: {exc}") from None
        return cls(graph, str(path))

    # -- reading ------------------------------------------------------------------------------------------------
    @staticmethod
    def _checked(graph: Any, source: str) -> dict[str, Any]:
        if isinstance(graph, dict) and "nodes" in graph and "links" in graph:
            raise WorkflowError(f"{source} is in the editor's format; save it with Workflow > Export (API) and "
                                "give that file")
        if not isinstance(graph, dict) or not graph:
            raise WorkflowError(f"{source} is not an API-format workflow ({{node id: {{class_type, inputs}}}})")
        for node_id, node in graph.items():
            if not isinstance(node, dict) or "class_type" not in node or not isinstance(node.get("inputs", {}), dict):
                raise WorkflowError(f"{source}: node {node_id!r} has no class_type/inputs; is this an API-format "
                                    "workflow (Workflow > Export (API))?")
        return copy.deepcopy(graph)

    def title(self, node_id: str) -> str:
        node = self.graph.get(str(node_id), {})
        return _title(node) or str(node.get("class_type", node_id))

    def _find_bindings(self) -> dict[str, list[Binding]]:
        marked: dict[str, list[Binding]] = {}
        for node_id in sorted(self.graph, key=_node_key):
            for role, name in _marker_roles(node_id, self.graph[node_id]).items():
                if _is_link(self.graph[node_id]["inputs"].get(name)):
                    raise WorkflowError(f"node {node_id} ({self.title(node_id)}): input {name!r} marked {role!r} is "
                                        "linked to another node; mark the node it comes from instead")
                marked.setdefault(role, []).append(Binding(node_id, name))
        bindings = {}
        for role, names in ROLE_INPUTS.items():
            if role in marked:
                bindings[role] = marked[role]
                continue
            found = []
            for node_id in sorted(self.graph, key=_node_key):
                node = self.graph[node_id]
                if FALLBACKS[role](node):
                    name = next((n for n in names if n in node.get("inputs", {})), None)
                    if name is not None and not _is_link(node["inputs"][name]):
                        found.append(Binding(node_id, name))
            if found:
                bindings[role] = found
        for role in REQUIRED_ROLES:
            found = bindings.get(role, [])
            if len(found) != 1:
                what = "no node" if not found else f"{len(found)} nodes ({', '.join(b.node_id for b in found)})"
                raise WorkflowError(
                    f"{self.source}: {what} for the job's {role} input; mark the one node with "
                    f"\"_meta\": {{\"{INPUT_MARKER}\": \"{role}\"}} (the {ROLE_INPUTS[role][0]!r} input is set)")
        return bindings

    def _find_outputs(self) -> list[OutputSpec]:
        marked = {nid: str(n["_meta"][OUTPUT_MARKER]) for nid, n in self.graph.items()
                  if isinstance(n.get("_meta"), dict) and n["_meta"].get(OUTPUT_MARKER) is not None}
        if marked:
            specs = [OutputSpec(nid, "" if value in ("", MAIN_OUTPUT) else "_" + _suffix_text(value))
                     for nid, value in sorted(marked.items(), key=lambda kv: _node_key(kv[0]))]
        else:
            savers = sorted((nid for nid, n in self.graph.items() if n["class_type"] in OUTPUT_CLASSES), key=_node_key)
            if not savers:
                raise WorkflowError(f"{self.source} has no SaveVideo node (and no node marked "
                                    f"\"{OUTPUT_MARKER}\"): the job would save nothing")
            bases = {nid: _prefix_base(self.graph[nid]["inputs"].get("filename_prefix")) for nid in savers}
            main = min(savers, key=lambda nid: (len(bases[nid]), _node_key(nid)))
            specs = []
            for nid in savers:
                if nid == main:
                    specs.append(OutputSpec(nid, ""))
                    continue
                base = bases[nid]
                rest = base[len(bases[main]):].lstrip("_-. ") if base.startswith(bases[main]) else base
                specs.append(OutputSpec(nid, "_" + _suffix_text(rest or nid)))
        specs.sort(key=lambda spec: spec.suffix != "")  # the main output first (its frames go in the report)
        if sum(1 for s in specs if s.suffix == "") > 1:
            raise WorkflowError(f"{self.source}: several outputs marked {MAIN_OUTPUT!r}; mark the others with a name "
                                f"(\"{OUTPUT_MARKER}\": \"full\" saves <job name>_full.mp4)")
        seen: set[str] = set()
        unique = []
        for spec in specs:  # two outputs must never write the same file
            suffix = spec.suffix if spec.suffix not in seen else f"{spec.suffix}_{spec.node_id}"
            seen.add(suffix)
            unique.append(OutputSpec(spec.node_id, suffix))
        return unique

    # -- making a job's prompt ----------------------------------------------------------------------------------
    def bound_nodes(self) -> set[str]:
        """Nodes a job changes (its inputs, its settings, its outputs' file names)."""
        return {b.node_id for bs in self.bindings.values() for b in bs} | {o.node_id for o in self.outputs}

    def missing_roles(self, settings: dict[str, Any]) -> list[str]:
        return [key for key in settings if key not in self.bindings]

    def prompt_for(self, reference: str, driving: str, settings: dict[str, Any], prefix: str) -> dict[str, Any]:
        """The job's prompt: a copy of the workflow with the uploaded inputs, the settings, and each output's
        ``filename_prefix`` set to ``prefix`` (plus the output's suffix)."""
        missing = self.missing_roles(settings)
        if missing:
            raise WorkflowError(f"the workflow has no input for {', '.join(missing)} (no node marked "
                                f"{', '.join(repr(m) for m in missing)} and none of the shipped workflow's nodes for it)")
        prompt = copy.deepcopy(self.graph)
        values: dict[str, Any] = {"reference": reference, "driving": driving, **settings}
        for role, value in values.items():
            for binding in self.bindings[role]:
                inputs = prompt[binding.node_id]["inputs"]
                if role == "prompt":
                    official = str(inputs.get(binding.input_name) or "").strip()
                    # Yours first, then the official text, as the official pipeline joins them.
                    inputs[binding.input_name] = f"{value}, {official}" if value and official else (value or official)
                else:
                    inputs[binding.input_name] = value
        for spec in self.outputs:
            inputs = prompt[spec.node_id]["inputs"]
            if "filename_prefix" in inputs and not _is_link(inputs["filename_prefix"]):
                inputs["filename_prefix"] = prefix + spec.suffix
        return prompt


def _prefix_base(prefix: Any) -> str:
    return re.split(r"[\\/]", str(prefix or ""))[-1]


def _suffix_text(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "out"


def shipped_workflow_path() -> Path:
    """``workflows/hellomeme_video_api.json`` of this extension."""
    return Path(__file__).resolve().parents[2] / "workflows" / "hellomeme_video_api.json"
