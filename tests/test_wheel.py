"""`pip install edgeq` as a user gets it: a wheel built from this checkout, installed into a fresh
venv, run from an unrelated folder. The wheel carries firmware/ and boards/ as package data
(edgeq/_data), so `edgeq boards`, `edgeq build`, `edgeq flash` and `edgeq eval --board` work with
no checkout around. Commands that need an optional extra name it in one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boardutil as U
import numpy as np
import pytest

from edgeq.deploy import boards

ROOT = Path(__file__).resolve().parent.parent
# what a wheel build reads (setup.py, MANIFEST.in): the package, the C sources and the boards
SOURCE_PARTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "edgeq", "firmware", "boards", "host")
SKIP = shutil.ignore_patterns("*.so", "*.o", "*.d", "__pycache__", "*.pyc", "*.egg-info")


def _run(cmd, env, cwd, timeout=600):
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert p.returncode == 0, f"{cmd} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """(env, cwd, edgeq executable, python) of a fresh venv holding only the wheel's edgeq."""
    for mod in ("setuptools", "wheel", "cffi", "venv"):
        try:
            __import__(mod)
        except ImportError:
            pytest.skip(f"building a wheel offline needs {mod}")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for part in SOURCE_PARTS:  # a copy: setuptools' build/ and egg-info stay out of the checkout
        s = ROOT / part
        if s.is_dir():
            shutil.copytree(s, src / part, ignore=SKIP)
        else:
            shutil.copy2(s, src / part)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "EDGEQ_", "VIRTUAL_ENV"))}
    env["HOME"] = str(tmp / "home")  # builds and running boards go to HOME/.cache/edgeq
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
          str(tmp / "dist"), str(src)], env, tmp)
    wheels = list((tmp / "dist").glob("edgeq-*.whl"))
    assert len(wheels) == 1, wheels
    shutil.rmtree(src)  # nothing of the sources is left to fall back on
    vdir = tmp / "venv"
    # system site packages give numpy/cffi/pyserial/rich offline; edgeq itself comes from the wheel
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(vdir)], env, tmp)
    py = vdir / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheels[0])], env, tmp)
    cwd = tmp / "cwd"
    cwd.mkdir()
    where = _run([str(py), "-c", "import edgeq, edgeq.deploy.boards as b; print(edgeq.__file__); print(b.ROOT)"],
                 env, cwd).split()
    assert where[0].startswith(str(vdir)) and where[1].endswith("edgeq/_data"), where
    yield env, cwd, str(vdir / "bin" / "edgeq"), str(py)
    subprocess.run([str(vdir / "bin" / "edgeq"), "boards", "--stop", "sim"], env=env, cwd=cwd,
                   capture_output=True, check=False)


def _model_and_data(cwd, seed, c1):
    blob = U.small_blob(seed=seed, c1=c1)
    (cwd / f"m{seed}.eqb").write_bytes(blob)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (24, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 24)
    np.savez(cwd / f"d{seed}.npz", x=x, y=y)
    return blob, x, y


@pytest.mark.slow  # 18 s on an idle machine, ~50 s under load (wheel build + ASan firmware build)
def test_wheel_boards_flash_eval_on_sim(venv):
    from edgeq.native.runtime import Model

    env, cwd, edgeq, _ = venv
    out = _run([edgeq, "boards"], env, cwd)
    listed = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    assert listed == set(boards.names()) and "sim" in listed, out
    if shutil.which("make") is None or shutil.which("gcc") is None:
        pytest.skip("the sim board needs make and gcc")
    blob, x, y = _model_and_data(cwd, 0, 16)
    out = _run([edgeq, "flash", "m0.eqb", "--board", "sim"], env, cwd)
    assert "verified on the board" in out and str(cwd) not in out and ".cache/edgeq" in out, out
    res = json.loads(_run([edgeq, "eval", "m0.eqb", "--board", "sim", "--data", "npz:d0.npz", "--split", "all",
                           "--json"], env, cwd))
    host = Model(blob).predict(x)[0]
    assert res["n"] == 24 and res["mismatches"] == 0, res
    assert res["accuracy"] == res["host_accuracy"] == float(np.mean(host == y)), res
    assert "running pid" in _run([edgeq, "boards"], env, cwd)
    _run([edgeq, "boards", "--stop", "sim"], env, cwd)


@pytest.mark.slow
@pytest.mark.qemu
def test_wheel_builds_and_flashes_a_qemu_board(venv):
    env, cwd, edgeq, _ = venv
    name = "qemu-lm3s6965"
    why = boards.toolchain_missing(name)
    if why or not shutil.which(boards.QEMU):
        pytest.skip(f"{name}: {why or 'qemu-system-arm not found'}")
    blob, x, y = _model_and_data(cwd, 2, 4)
    if not boards.toolchain_missing("qemu-netduinoplus2"):  # the shared STM32 HAL ships too
        out = _run([edgeq, "build", "--board", "qemu-netduinoplus2"], env, cwd)
        assert "of   524,288" in out and ".cache/edgeq/fw-" in out, out
    try:
        out = _run([edgeq, "flash", "m2.eqb", "--board", name], env, cwd)
        assert "of    65,536" in out and "verified on the board" in out, out
        res = json.loads(_run([edgeq, "eval", "m2.eqb", "--board", name, "--data", "npz:d2.npz",
                               "--split", "all", "--json"], env, cwd))
        assert res["n"] == 24 and res["mismatches"] == 0, res
    finally:
        subprocess.run([edgeq, "boards", "--stop", name], env=env, cwd=cwd, capture_output=True, check=False)


def test_train_without_torch_names_the_extra(tmp_path):
    """Without torch, `edgeq train` says in one line which extra installs it (no traceback)."""
    code = ("import sys; sys.modules['torch'] = None\n"  # an import of torch now fails as if absent
            "from edgeq.cli import main; sys.exit(main(['train', '--out', 'x.eqb']))\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       check=False)
    assert p.returncode == 2 and p.stdout == "" and not (tmp_path / "x.eqb").exists(), (p.stdout, p.stderr)
    assert p.stderr == "edgeq: `edgeq train` needs torch, which is not installed: pip install 'edgeq[train]'\n"
