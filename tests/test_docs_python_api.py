"""docs/python-api.md's examples run as written (in a temporary folder), and what they claim holds."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "python-api.md"


def test_python_api_examples_run(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    try:
        from edgeq import _native  # noqa: F401
    except ImportError as e:  # pragma: no cover
        pytest.skip(f"C host runtime not built: {e}")
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "python_api_example"}
    for code in blocks:  # the second block continues the first (data, imports)
        exec(compile(code, str(DOC), "exec"), ns)
    out = capsys.readouterr().out
    print(out)
    assert ns["result"].report["class_agreement"] == 1.0
    acc = re.search(r"accuracy ([\d.]+)%", out)
    assert acc and float(acc.group(1)) > 85
    m = re.search(r"float ([\d.]+)%, int8 weights / 4-bit activations ([\d.]+)%", out)
    assert m and float(m.group(2)) >= float(m.group(1)) - 3
    info = subprocess.run([sys.executable, "-m", "edgeq", "info", str(tmp_path / "binarynet.eqb")],
                          capture_output=True, text=True, cwd=DOC.parent.parent)
    assert info.returncode == 0, info.stderr
    assert "conv1" in info.stdout and "fc2" in info.stdout
