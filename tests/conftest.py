"""Shared pytest fixtures.

``comfy_server`` (session scope): a real ComfyUI server (``tests/support/comfy_server.ComfyServer``)
with this extension installed, started once for the whole test session and stopped at its end.
Its attributes: ``base_url``; ``root`` (the copied ComfyUI tree); ``input_dir``, ``output_dir``,
``temp_dir``, ``user_dir``; ``models_dir`` (the copy's ``models``), ``hellomeme_models_dir``
(``models/hellomeme``); ``extra_models_dir`` (a models base given through ``extra_model_paths.yaml``
with ``hellomeme``, ``checkpoints``, ``clip_vision``, ``vae``, ``loras`` subfolders);
``log_path`` / ``log_text()`` / ``import_failures()``; and the API helpers ``get_json``,
``post_json``, ``object_info``, ``queue_prompt``, ``wait_for_prompt``, ``run_prompt``, ``node_output``.

Files placed in its model folders are seen by nodes at their next run (ComfyUI rescans folders),
so tests may write weights there after the server started. Use ``@pytest.mark.slow`` on tests that
use it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.comfy_host import ComfyUIHostMissing
from tests.support.comfy_server import ComfyServer, ComfyServerError
from tests.support.weight_store import STORE_ENV


@pytest.fixture(scope="session", autouse=True)
def weight_store(tmp_path_factory: pytest.TempPathFactory):
    """Generated weight files written once per session and linked where tests ask (tests/support/weight_store.py)."""
    store = tmp_path_factory.mktemp("weight_store")
    previous = os.environ.get(STORE_ENV)
    os.environ[STORE_ENV] = str(store)
    yield store
    if previous is None:
        os.environ.pop(STORE_ENV, None)
    else:
        os.environ[STORE_ENV] = previous


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory: pytest.TempPathFactory):
    """The session's ComfyUI server with the extension installed (see the module docstring)."""
    workdir = tmp_path_factory.mktemp("comfyui_server")
    timeout = float(os.environ.get("HELLOMEME_COMFY_STARTUP_TIMEOUT", "300"))
    server = ComfyServer(workdir, startup_timeout=timeout)
    try:
        server.start()
    except ComfyUIHostMissing as exc:
        pytest.fail(f"No ComfyUI tree for the server tests: {exc}", pytrace=False)
    except ComfyServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
