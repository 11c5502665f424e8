"""Helpers shared by the board/firmware tests and benchmarks/board.py: small hand-built models,
MNIST loading, running boards in a private state directory."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from edgeq.format.graph import Conv, Graph, MaxPool

MNIST = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"


def small_graph(seed: int = 0, c1: int = 16, n_cls: int = 10, pool: int = 2, dense_shift: int = 0) -> Graph:
    """conv 3x3 B1 SIGN (c1 filters, pad 1) -> maxpool -> dense AFFINE, on 28x28 THRESH input."""
    rng = np.random.default_rng(seed)
    w1 = rng.choice(np.array([-1, 1], np.int8), size=(c1, 3, 3, 1))
    conv = Conv(w1, "B1", "SIGN", stride=1, pad=1, thr=rng.integers(-2, 3, c1).astype(np.int32),
                flip=rng.random(c1) < 0.2, name="conv1")
    h = 28 // pool
    w2 = rng.choice(np.array([-1, 1], np.int8), size=(n_cls, h, h, c1))
    dense = Conv(w2, "B1", "AFFINE", mul=rng.integers(1, 5, n_cls).astype(np.int32),
                 add=rng.integers(-50, 50, n_cls).astype(np.int32), shift=dense_shift, name="fc")
    return Graph((1, 28, 28), "THRESH", 128, [conv, MaxPool(pool, pool, name="pool1"), dense],
                 classes=[str(i) for i in range(n_cls)])


def small_blob(**kw) -> bytes:
    from edgeq.format.pack import write_blob

    return write_blob(small_graph(**kw))


def mnist_test(n: int | None = None):
    img, lab = MNIST / "test8k-images-idx3-ubyte.gz", MNIST / "test8k-labels-idx1-ubyte.gz"
    if not img.exists():
        return None
    with gzip.open(img) as fi, gzip.open(lab) as fl:
        x = np.frombuffer(fi.read(), np.uint8, offset=16).reshape(-1, 28, 28)
        y = np.frombuffer(fl.read(), np.uint8, offset=8)
    return (x[:n], y[:n]) if n else (x, y)


def compare_on_board(board, model, images) -> tuple:
    """INFER every image on a connected Board and on the host runtime (edgeq.native.runtime.Model).
    Returns (n, class mismatches, score mismatches, first mismatching index or None)."""
    bad_cls = bad_scores = 0
    first = None
    for i, img in enumerate(images):
        wire = model.wire_input(img)
        cls, scores = board.infer(wire)
        hcls, hscores = model.predict_wire(wire)
        if cls != hcls:
            bad_cls += 1
        if not np.array_equal(scores, hscores):
            bad_scores += 1
        if first is None and (cls != hcls or not np.array_equal(scores, hscores)):
            first = (i, cls, hcls, scores.tolist(), hscores.tolist())
    return len(images), bad_cls, bad_scores, first


def build_tick_probe(name, out_dir) -> Path:
    """Link boards/common/probe/tick_probe.c with a Cortex-M board's HAL (no app, no runtime)."""
    import subprocess

    from edgeq.deploy import boards

    b = boards.get(name)
    out = Path(out_dir)
    boards.generate(b, out)
    common = boards.BOARDS_DIR / "common"
    srcs = [b.path / s for s in b.sources] + sorted((common / "cortexm").glob("*.c"))
    srcs += [boards.ROOT / "firmware" / "app" / "eq_ring.c", common / "probe" / "tick_probe.c"]
    elf = out / "tick_probe.elf"
    cmd = [boards.CROSS + "gcc", *b.cflags, "-O2", "-Wall", "-Werror", "-ffunction-sections",
           f"-I{out}", f"-I{boards.ROOT / 'firmware' / 'app'}", f"-I{common / 'cortexm'}",
           "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections", f"-L{out}",
           "-T", str(common / "cortexm" / "sections.ld"), *map(str, srcs), "-o", str(elf)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return elf


def run_tick_probe(name, elf, timeout: float = 120.0) -> list:
    """Run the probe under the board's QEMU (-icount as in board.toml) -> [(loops, ticks), ...]."""
    import subprocess
    import time

    from edgeq.deploy import boards

    b = boards.get(name)
    cmd = [boards.QEMU, "-M", b.qemu["machine"], "-nographic", "-monitor", "none", "-kernel", str(elf),
           "-serial", "stdio", *b.qemu.get("args", [])]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    rows, t0 = [], time.monotonic()
    try:
        for line in p.stdout:
            if line.strip() == "END" or time.monotonic() - t0 > timeout:
                break
            parts = line.split()
            if len(parts) == 2 and all(x.isdigit() for x in parts):
                rows.append((int(parts[0]), int(parts[1])))
    finally:
        p.kill()
        p.wait()
    return rows


def need_board(name) -> None:
    """Skip the calling test when `name` cannot be built or run here (toolchain, QEMU)."""
    import shutil

    import pytest

    from edgeq.deploy import boards

    why = boards.toolchain_missing(name)
    if why or (boards.get(name).kind == "qemu" and not shutil.which(boards.QEMU)):
        pytest.skip(f"{name}: {why or 'qemu-system-arm not found'}")
