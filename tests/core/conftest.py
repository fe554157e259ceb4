"""Fixtures of the core tests: the official weight layouts, from the copy shipped with the core
(``hellomeme_core/model_files``; ``tests/test_model_files.py`` checks it against the shared reference)."""
from __future__ import annotations

import pytest

from hellomeme_core.model_files import layout as official


@pytest.fixture(scope="session")
def layout() -> dict:
    """Official repo id -> {"tensors": {key: shape}, "num_params": ..., ...} for the 24 HelloMeme repos."""
    return {repo: official.all_layouts()[repo] for repo in official.official_repos()}


@pytest.fixture(scope="session")
def fan_layout() -> dict[str, list[int]]:
    """Key -> shape of the PD-FGC FanEncoder file (``songkey/pd_fgc_motion``)."""
    return official.all_layouts()["songkey/pd_fgc_motion"]["tensors"]
