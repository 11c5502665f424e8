"""docs/python-api.md's examples run as written (in a temporary folder), and what they claim holds."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "python-api.md"


def _board_missing(name: str) -> str:
    """Why the board example cannot run here ('' when it can)."""
    import shutil

    from edgeq.deploy import boards

    why = boards.toolchain_missing(name)
    return why or ("" if shutil.which(boards.QEMU) else "qemu-system-arm not found")


def test_python_api_examples_run(tmp_path, monkeypatch, capsys, private_board_state):
    pytest.importorskip("torch")
    try:
        from edgeq import _native  # noqa: F401
    except ImportError as e:  # pragma: no cover
        pytest.skip(f"C host runtime not built: {e}")
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 3 and "edgeq.flash" in blocks[1]
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "python_api_example"}
    skipped = ""
    for code in blocks:  # each block continues the one before (data, imports, the blob)
        if "edgeq.flash" in code:
            board = re.search(r'BOARD = "([^"]+)"', code).group(1)
            skipped = _board_missing(board)
            if skipped:
                continue
        exec(compile(code, str(DOC), "exec"), ns)
    out = capsys.readouterr().out
    print(out)
    if not skipped:  # the board block: bit-exact on 40 images, a profile in instructions per layer
        assert "board: 40 images equal the host" in out and ns["report"]["unit"] == "instructions"
        assert len(ns["report"]["layers"]) == ns["host"].n_layers
        assert all(lay["cycles"] > 0 for lay in ns["report"]["layers"])
        assert "instructions per inference" in out
    assert ns["result"].report["class_agreement"] == 1.0
    acc = re.search(r"accuracy ([\d.]+)%", out)
    assert acc and float(acc.group(1)) > 85
    m = re.search(r"float ([\d.]+)%, int8 weights / 4-bit activations ([\d.]+)%", out)
    assert m and float(m.group(2)) >= float(m.group(1)) - 3
    info = subprocess.run([sys.executable, "-m", "edgeq", "info", str(tmp_path / "binarynet.eqb")],
                          capture_output=True, text=True, cwd=DOC.parent.parent)
    assert info.returncode == 0, info.stderr
    assert "conv1" in info.stdout and "fc2" in info.stdout
    if skipped:
        pytest.skip(f"the flash/profile example did not run: {skipped}")
