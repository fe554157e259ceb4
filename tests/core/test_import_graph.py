"""The import graph of ``hellomeme_core``, read from the source: acyclic, and free of ComfyUI.

Every ``import`` statement counts, at module level or inside a function (a function-level import
hides a cycle from the interpreter, not from the design). Relative imports are resolved against the
importing module's package; ``from package import name`` is an import of the submodule
``package.name`` when one exists, else of ``package`` itself. The parent packages every submodule
import runs implicitly are not edges: counting them would make any package that re-exports its
submodules a cycle by construction.
"""
from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "hellomeme_core"
# ComfyUI's own modules and this extension's ComfyUI-side package: the core must run without them.
COMFY_SIDE = {"comfy", "comfy_api", "comfy_execution", "comfy_extras", "folder_paths", "nodes", "server",
              "execution", "node_helpers", "latent_preview"}
# Third-party imports that requirements.txt does not name, and why they are allowed.
UNLISTED_THIRD_PARTY = {
    "torch": "provided by the ComfyUI host; requirements.txt never names it",
    "tqdm": "optional progress bar, imported only inside a try/except ImportError",
    "parselmouth": "praat-parselmouth in requirements.txt: a compiled module only, which packages_distributions() "
                   "cannot map back to its distribution",
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its ``__init__``)."""
    out = {}
    for path in sorted((REPO / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(absolute imported name, line) of every import in one module, relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.append((sub if sub in modules else module, node.lineno))
    return found


def _edges() -> tuple[dict[str, list[Edge]], list[tuple[str, str, int]]]:
    """Internal edges per module, and every (module, imported top-level name, line) leaving the package."""
    modules = _modules()
    internal: dict[str, list[Edge]] = {m: [] for m in modules}
    external = []
    for name, path in modules.items():
        for target, line in _imports(name, path, modules):
            top = target.split(".")[0]
            if top != PACKAGE:
                external.append((name, top, line))
                continue
            while target not in modules:  # ``import a.b.Class``-style names: the module that holds them
                target = target.rsplit(".", 1)[0]
            if target != name:
                internal[name].append(Edge(name, target, line))
    return internal, external


def find_cycle(graph: dict[str, list[Edge]]) -> list[Edge] | None:
    """One cycle of ``graph`` as its edges, or None (iterative depth-first search).

    ``stack[i]`` is a module on the current path and ``path[i]`` the edge from it to ``stack[i + 1]``.
    """
    done: set[str] = set()
    for root in sorted(graph):
        if root in done:
            continue
        stack = [(root, iter(graph[root]))]
        path: list[Edge] = []
        while stack:
            node, pending = stack[-1]
            edge = next(pending, None)
            if edge is None:
                done.add(node)
                stack.pop()
                del path[max(len(stack) - 1, 0):]
                continue
            on_path = [n for n, _ in stack]
            if edge.target in on_path:
                return path[on_path.index(edge.target):] + [edge]
            if edge.target not in done:
                path.append(edge)
                stack.append((edge.target, iter(graph[edge.target])))
    return None


def _requirement_import_names() -> set[str]:
    """Top-level import names of the distributions requirements.txt names (installed or not)."""
    listed = set()
    for line in (REPO / "requirements.txt").read_text().splitlines():
        match = re.match(r"\s*([A-Za-z0-9_.-]+)", line.split("#")[0])
        if match:
            listed.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    names = {dist.replace("-", "_") for dist in listed}  # an uninstalled one: its import name is usually its own
    for top, dists in packages_distributions().items():
        if any(re.sub(r"[-_.]+", "-", d).lower() in listed for d in dists):
            names.add(top)
    return names


def test_find_cycle_reports_the_cycle_edges():
    graph = {"a": [Edge("a", "b", 1)], "b": [Edge("b", "c", 2)], "c": [Edge("c", "a", 3), Edge("c", "d", 4)], "d": []}
    assert find_cycle(graph) == [Edge("a", "b", 1), Edge("b", "c", 2), Edge("c", "a", 3)]
    assert find_cycle({"a": [Edge("a", "b", 1)], "b": [Edge("b", "c", 2)], "c": [Edge("c", "b", 3)]}) == [
        Edge("b", "c", 2), Edge("c", "b", 3)]
    assert find_cycle({"a": [Edge("a", "b", 1)], "b": [], "c": [Edge("c", "b", 2)]}) is None


def test_resolution_counts_function_level_and_relative_imports():
    graph, _ = _edges()
    # Imports inside functions are real edges: pd_fgc_expression loads the encoder in a function.
    assert "hellomeme_core.pd_fgc" in {e.target for e in graph["hellomeme_core.face.pd_fgc_expression"]}
    assert "hellomeme_core.model_files.safetensors_io" in {e.target for e in graph["hellomeme_core.cli.cmd_check"]}
    # ``from .layout import ...`` in a package ``__init__`` resolves inside that package.
    assert "hellomeme_core.model_files.layout" in {e.target for e in graph["hellomeme_core.model_files"]}


def test_hellomeme_core_has_no_import_cycle():
    cycle = find_cycle(_edges()[0])
    assert cycle is None, "import cycle in hellomeme_core:\n" + "\n".join(
        f"  {e.source} (line {e.line}) imports {e.target}" for e in cycle)


def test_hellomeme_core_never_imports_comfyui_or_the_nodes_package():
    bad = [f"{m} (line {line}) imports {top}" for m, top, line in _edges()[1] if top in COMFY_SIDE]
    assert not bad, "hellomeme_core must run without ComfyUI:\n  " + "\n  ".join(bad)


def test_hellomeme_core_imports_only_stdlib_and_its_requirements():
    allowed = set(sys.stdlib_module_names) | _requirement_import_names() | set(UNLISTED_THIRD_PARTY)
    bad = sorted({f"{m} (line {line}) imports {top}" for m, top, line in _edges()[1] if top not in allowed})
    assert not bad, "imports outside the standard library and requirements.txt:\n  " + "\n  ".join(bad)
