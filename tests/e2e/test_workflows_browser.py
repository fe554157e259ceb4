"""Tier 4: ComfyUI's graph editor in headless Chromium. Each shared UI workflow loads with no missing nodes,
the editor turns it into exactly the API twin, and the motion preview runs when queued from the page."""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hellomeme_core.driving_video import load_driving_video
from tests.e2e.browser import HeadlessChromium, find_chromium
from tests.e2e.conftest import cached_nodes, drop_execution_cache
from tests.e2e.media import read_frames
from tests.e2e.workflow_graph import LEGACY_WORKFLOWS_DIR, declared_only, strip_meta, with_defaults, workflow_pairs

pytestmark = pytest.mark.slow

PAIRS = workflow_pairs()
# The graphs shipped before the node ids took the HelloMeme prefix load just the same.
ALL_PAIRS = PAIRS + [dataclasses.replace(p, name=f"legacy_{p.name}") for p in workflow_pairs(LEGACY_WORKFLOWS_DIR)]
MOTION = next(p for p in PAIRS if p.name == "hellomeme_motion_preview")
READY = "window.app && window.app.graph && window.app.vueAppReady && document.querySelector('canvas') && true"
DIALOGS = "Array.from(document.querySelectorAll('.p-dialog')).map(d => d.innerText)"


def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where page screenshots go: ``HELLOMEME_SCREENSHOT_DIR`` if set (to keep them), else a temp folder."""
    chosen = os.environ.get("HELLOMEME_SCREENSHOT_DIR")
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        return Path(chosen)
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def page(comfy_server):
    """The editor page of the session server, ready, with the first-run template browser switched off."""
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium binary (chromium / chromium-browser on PATH or HELLOMEME_CHROMIUM); "
                    "run tests/e2e/install_browser.sh to install Debian's chromium")
    comfy_server.post_json("/settings/Comfy.TutorialCompleted", True)
    with HeadlessChromium(binary) as browser:
        open_editor(browser, comfy_server)
        yield browser


def open_editor(browser: HeadlessChromium, server) -> None:
    browser.navigate(server.base_url + "/")
    browser.wait_for(READY, timeout=120)
    assert browser.evaluate(DIALOGS) == []


def close_dialogs(browser: HeadlessChromium) -> None:
    """Press the close button of every open dialog."""
    browser.evaluate("document.querySelectorAll('.p-dialog .p-dialog-close-button, .p-dialog [aria-label=Close]')"
                     ".forEach(b => b.click()); true")
    browser.wait_for(f"{DIALOGS}.length === 0", timeout=10)


def load_graph(browser: HeadlessChromium, graph: dict) -> None:
    browser.evaluate(f"(async () => {{ await app.loadGraphData({json.dumps(graph)}); return true; }})()")
    time.sleep(1.0)  # the missing-nodes dialog opens asynchronously after the load


def graph_nodes(browser: HeadlessChromium) -> list[dict]:
    return browser.evaluate("app.graph.nodes.map(n => ({id: n.id, type: n.type, errors: !!n.has_errors}))")


def prompt_from_editor(browser: HeadlessChromium) -> dict:
    return browser.evaluate("(async () => (await app.graphToPrompt()).output)()")


@pytest.mark.parametrize("pair", ALL_PAIRS, ids=lambda p: p.name)
def test_workflow_loads_with_no_missing_nodes(page, pair, comfy_server, tmp_path_factory):
    ui = pair.ui()
    errors_before = len(page.errors)
    load_graph(page, ui)
    page.screenshot(screenshot_dir(tmp_path_factory) / f"{pair.name}.png")
    dialogs = page.evaluate(DIALOGS)
    assert not any("missing" in d.lower() for d in dialogs), dialogs
    nodes = graph_nodes(page)
    assert sorted(n["id"] for n in nodes) == sorted(n["id"] for n in ui["nodes"])
    assert [n for n in nodes if n["errors"]] == []
    assert page.evaluate("app.graph.links instanceof Map ? app.graph.links.size : Object.keys(app.graph.links).length") == len(ui["links"])
    assert page.errors[errors_before:] == []
    # The editor's own UI -> API conversion gives exactly the shipped API file (for a graph saved before some
    # inputs existed, with those inputs at their defaults).
    info = comfy_server.object_info()
    assert declared_only(prompt_from_editor(page), info) == with_defaults(strip_meta(pair.api()), info)


def test_missing_node_is_detected(page, comfy_server):
    """The check above can fail: a node type the server lacks opens the editor's missing-nodes dialog."""
    broken = copy.deepcopy(MOTION.ui())
    broken["nodes"][2]["type"] = "HelloMemeNoSuchNode"
    load_graph(page, broken)
    try:
        dialogs = page.evaluate(DIALOGS)
        assert any("missing nodes" in d.lower() and "HelloMemeNoSuchNode" in d for d in dialogs), dialogs
        assert [n["type"] for n in graph_nodes(page) if n["errors"]] == ["HelloMemeNoSuchNode"]
    finally:
        close_dialogs(page)
        load_graph(page, MOTION.ui())  # back to a good graph (the editor would restore the broken one on reload)
    assert page.evaluate(DIALOGS) == []


def _wait_for_new_prompt(server, known: set[str], timeout: float = 240.0) -> tuple[str, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = server.get_json("/history")
        for prompt_id in set(history) - known:
            if history[prompt_id].get("status", {}).get("completed") is not None:
                return prompt_id, history[prompt_id]
        time.sleep(0.5)
    raise AssertionError(f"no prompt queued from the page finished within {timeout:.0f} s\n{server.log_tail()}")


def test_motion_preview_runs_when_queued_from_the_editor(page, comfy_server, staged_inputs, tmp_path_factory):
    # Drop the server's execution cache so the run below really executes every node.
    drop_execution_cache(comfy_server)
    known = set(comfy_server.get_json("/history"))
    load_graph(page, MOTION.ui())
    shots = screenshot_dir(tmp_path_factory)
    before = page.screenshot(shots / "motion_preview_loaded.png")
    assert page.evaluate("(async () => { await app.queuePrompt(0, 1); return true; })()") is True
    prompt_id, entry = _wait_for_new_prompt(comfy_server, known)
    status = entry["status"]
    assert status["status_str"] == "success", json.dumps(status)[:3000]
    assert cached_nodes(entry) == [], "nodes came from the cache instead of running"
    # The prompt the page sent is the shipped graph.
    assert declared_only(entry["prompt"][2], comfy_server.object_info()) == strip_meta(MOTION.api())
    for node_id in ("7", "9"):
        files = entry["outputs"][node_id]["images"]
        video = comfy_server.output_dir / files[0]["subfolder"] / files[0]["filename"]
        assert len(read_frames(video)) == len(load_driving_video(staged_inputs["driving"]).frames)  # at 8 fps
    time.sleep(1.5)  # let the SaveVideo nodes show their result
    after = page.screenshot(shots / "motion_preview_done.png")
    print(f"editor screenshots: {before} {after}")
    pixels = np.asarray(Image.open(after).convert("RGB"))
    assert pixels.shape[0] >= 800 and pixels.std() > 10  # a rendered page, not a blank one
