"""The one table of HelloMeme versions: every other module reads its facts from it."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hellomeme_core import versions
from hellomeme_core.errors import HelloMemeError, UnknownVersionError
from hellomeme_core.model_files import layout
from hellomeme_core.versions import VERSIONS, Family, family_for_version, version_info, versions_using

CORE = Path(__file__).resolve().parents[2] / "hellomeme_core"


def test_versions_in_release_order_with_their_families():
    assert VERSIONS == ("v1", "v2", "v3", "v4", "v5", "v5b", "v5c")
    assert [family_for_version(v) for v in VERSIONS] == [Family.HM] * 2 + [Family.HM3] * 5


def test_the_old_homes_of_the_list_and_families_read_the_table():
    from hellomeme_core import model_files
    from hellomeme_core.denoiser import program

    assert layout.VERSIONS is VERSIONS and model_files.VERSIONS is VERSIONS
    assert program.Family is Family and program.family_for_version is family_for_version


def test_unknown_version_is_a_key_error_and_a_hellomeme_error_with_a_plain_message():
    with pytest.raises(UnknownVersionError) as info:
        version_info("v6")
    assert isinstance(info.value, KeyError) and isinstance(info.value, HelloMemeError)
    assert str(info.value) == "Unknown HelloMeme version 'v6'; choose one of v1, v2, v3, v4, v5, v5b, v5c."
    with pytest.raises(KeyError, match="v9"):
        layout.version_repos("v9")


def test_stages_and_the_facts_only_some_versions_have():
    v5c = version_info("v5c")
    assert v5c.repos("image") == ("songkey/hm5c_reference", "songkey/hm5_control_base", "songkey/hm5c_control_proj")
    assert v5c.repos("video") == v5c.repos("image") + ("songkey/hm5_motion",)
    assert [v.name for v in versions.TABLE if v.reference_with_control] == ["v5c"]
    assert versions_using("songkey/hm5_motion") == ["v5", "v5b", "v5c"]
    with pytest.raises(ValueError, match="stage"):
        v5c.repos("audio")


def test_every_version_file_has_a_known_layout_and_every_official_repo_a_version():
    used = {repo for v in versions.TABLE for repo in v.repos("video")}
    assert used == set(layout.official_repos())


def test_class_descriptions_come_from_the_table():
    assert layout.describe_official_class("HM5SD15ControlProj") == (
        "HM5SD15ControlProj (songkey/hm5_control_proj / songkey/hm5c_control_proj, v5/v5b/v5c)")
    assert layout.official_class_versions("HMReferenceAdapter") == ["v1", "v2"]


def test_no_other_core_module_spells_a_version_name_as_a_value():
    """Version names as string values live in the table alone (prose in docstrings and messages is fine)."""
    found = []
    for path in sorted(CORE.rglob("*.py")):
        relative = path.relative_to(CORE).as_posix()
        if relative == "versions.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in VERSIONS:
                found.append(f"{relative}:{node.lineno} {node.value!r}")
    assert not found, "read these from hellomeme_core.versions:\n  " + "\n  ".join(found)
