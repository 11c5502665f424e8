"""ruff stays clean (rules in pyproject.toml); the firmware and runtime C builds are strict elsewhere."""

import shutil
import subprocess
import sys

import pytest


def test_ruff_clean():
    exe = shutil.which("ruff")
    cmd = [exe] if exe else [sys.executable, "-m", "ruff"]
    try:
        r = subprocess.run([*cmd, "check", "edgeq", "tests", "benchmarks"], capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("ruff not installed (pip install -e '.[test]')")
    assert r.returncode == 0, r.stdout[-4000:]
