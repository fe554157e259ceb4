"""``python -m hellomeme_core``: commands found by file name, run without ComfyUI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hellomeme_core.cli.main import commands, main

REPO = Path(__file__).resolve().parents[1]


def test_commands_are_the_cmd_modules_of_the_cli_package():
    assert commands() == {name: f"hellomeme_core.cli.cmd_{name}" for name in ("batch", "check", "demo", "download", "motion", "report")}


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: python -m hellomeme_core" in capsys.readouterr().out


def test_module_entry_point_lists_every_command_without_loading_comfyui():
    code = ("import runpy, sys; sys.argv = ['hellomeme_core', '--help']\n"
            "try:\n    runpy.run_module('hellomeme_core', run_name='__main__')\n"
            "except SystemExit as exit:\n    assert exit.code == 0\n"
            "loaded = {'comfy', 'folder_paths', 'nodes', 'server'} & set(sys.modules)\n"
            "assert not loaded, loaded\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for name in ("batch", "check", "demo", "download", "motion", "report"):
        assert f"    {name} " in done.stdout
