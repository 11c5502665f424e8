"""Host side of the MicroPython-on-WebAssembly harness (used by tests/test_micro.py and
benchmarks/micro.py).

    port = ensure_port()                       # installs the npm package once, or raises PortMissing
    results = run_jobs(jobs, files)            # runs tests/mp_harness/infer.py on wasm MicroPython

The port is the official `@micropython/micropython-webassembly-pyscript` package, installed with
npm into build/mpwasm/ (git-ignored).  Nothing here is needed at runtime.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgeq.deploy.micro import RUNTIME_FILES

ROOT = Path(__file__).resolve().parent.parent.parent
HARNESS = Path(__file__).resolve().parent
MICRO = ROOT / "edgeq" / "micro"
PORT_PACKAGE = "@micropython/micropython-webassembly-pyscript"
PORT_VERSION = "1.27.0"
PORT_PREFIX = ROOT / "build" / "mpwasm"
PORT_DIR = PORT_PREFIX / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"


class PortMissing(RuntimeError):
    """node/npm are missing or the npm install failed (tests skip with this message)."""


def ensure_port() -> Path:
    """The installed port directory; installs it with npm if missing."""
    if (PORT_DIR / "micropython.mjs").exists():
        return PORT_DIR
    if not shutil.which("node") or not shutil.which("npm"):
        raise PortMissing("node and npm are needed to run the MicroPython WebAssembly port")
    PORT_PREFIX.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(PORT_PREFIX),
                        f"{PORT_PACKAGE}@{PORT_VERSION}"], capture_output=True, text=True, timeout=300)
    if p.returncode != 0 or not (PORT_DIR / "micropython.mjs").exists():
        raise PortMissing(f"npm install {PORT_PACKAGE}@{PORT_VERSION} failed: {p.stderr[-500:]}")
    return PORT_DIR


def run_script(script: str | Path, files: dict, heap: int = 16 << 20, timeout: float = 600,
               runtime: bool = True) -> str:
    """Run a MicroPython script on the wasm port with `files` ({name: bytes}) plus (runtime=True)
    the runtime modules (edgeq.deploy.micro.RUNTIME_FILES) in its /work directory. Returns stdout; raises
    RuntimeError."""
    ensure_port()
    with tempfile.TemporaryDirectory(prefix="edgeq-mp-") as d:
        for name in RUNTIME_FILES if runtime else ():
            shutil.copy(MICRO / name, d)
        for name, data in files.items():
            Path(d, name).write_bytes(data)
        env = dict(os.environ, EDGEQ_MPWASM=str(PORT_DIR))
        p = subprocess.run(["node", str(HARNESS / "run.mjs"), "--heap", str(heap), "--mount", d,
                            str(script)], capture_output=True, text=True, timeout=timeout, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"MicroPython failed (rc {p.returncode}):\n{p.stderr[-3000:]}")
    return p.stdout


def run_jobs(jobs: list, files: dict, **kw) -> list:
    """Run tests/mp_harness/infer.py jobs (see that file); one result dict per job."""
    files = dict(files)
    files["job.json"] = json.dumps(jobs).encode()
    out = run_script(HARNESS / "infer.py", files, **kw)
    res = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if len(res) != len(jobs):
        raise RuntimeError(f"expected {len(jobs)} results, got {len(res)}:\n{out[-2000:]}")
    return res


def reference_mlp(seed: int = 0, hidden: int = 256, thresh: int = 128):
    """The benchmark network: MNIST binary MLP 784-256-256-10 (THRESH input -> 28x28 CONV B1 SIGN
    -> 1x1 CONV B1 SIGN -> 1x1 CONV B1 AFFINE), random +-1 weights, thresholds at the median of
    the accumulators so activations stay balanced."""
    from edgeq.format.graph import Conv, Graph
    from edgeq.reference.refnet import apply_stage, conv_acc, preprocess

    rng = np.random.default_rng(seed)
    g = Graph((1, 28, 28), "THRESH", thresh, [], classes=[str(i) for i in range(10)])
    calib = [preprocess(g, rng.integers(0, 256, (1, 28, 28)).astype(np.uint8)) for _ in range(16)]
    acts = calib
    specs = [(28, 28, hidden, "SIGN"), (1, 1, hidden, "SIGN"), (1, 1, 10, "AFFINE")]
    for i, (kh, kw, n, out) in enumerate(specs):
        cin = acts[0].shape[2]
        w = np.where(rng.random((n, kh, kw, cin)) < 0.5, -1, 1).astype(np.int8)
        layer = Conv(w, "B1", out, name=f"fc{i}")
        accs = np.stack([conv_acc(layer, a, "B1") for a in acts])
        if out == "SIGN":
            layer.thr = np.median(accs.reshape(-1, n), axis=0).astype(np.int32)
            layer.flip = np.zeros(n, bool)
        else:
            layer.mul = np.ones(n, np.int32)
            layer.add = np.zeros(n, np.int32)
            layer.shift = 0
        g.layers.append(layer)
        acts = [apply_stage(layer, a) for a in accs]
    return g
