"""Installed like a tool: ``pip install .`` makes the ``opus2iops`` command (``[project.scripts]``)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _entry_point():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["opus2iops"].partition(":")
    return getattr(importlib.import_module(module), function)


@pytest.mark.parametrize("argv", [["--help"], ["migrate", "--help"], ["reconcile", "--help"]])
def test_the_declared_command_runs_and_calls_itself_opus2iops(argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["opus2iops", *argv])
    with pytest.raises(SystemExit) as done:
        _entry_point()()
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "Usage: opus2iops" in out and "main.py" not in out


def test_main_py_keeps_working_from_the_project_folder():
    done = subprocess.run([sys.executable, "main.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage: main.py" in done.stdout
