"""Host integer Winograd benchmark: ``python -m benchmarks.host_wino [--quick] [--variant NAME]``.

For U8 x I8 3x3 stride-1 pad-1 layers (the issue's 16x16x64 -> 64 and 8x8x32 -> 32,
32x32x16 -> 16, 56x56x64 -> 64), each as a one-layer model (the conv with a 2-bit MULTI stage,
then a 2x2 max-pool) run by the host executor (``Model.predict``, one thread), batch 1 and 64:
ms per image of the direct path (im2col + the variant's u8 x s8 GEMM: vpdpbusd on AVX-512
VNNI, vpmaddwd on AVX2, C otherwise) and of integer Winograd F(2x2,3x3) (host/eq_wino_i8.c),
per variant, with the ratio direct / Winograd measured *interleaved* in the same run (median of
per-round ratios: both see the same load), and which path AUTO (eq_host_wino_i8_worth) takes.
Times are the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID: everything runs on that one
thread), so time spent descheduled on a shared machine does not count; caches are still shared.
Baselines in the same run: numpy float32 (im2col + BLAS matmul) and torch float32 conv2d
(``torch.set_num_threads(1)``), and at batch 1 the firmware's per-image executor eq_model_run
(``Model.predict_one``: its portable integer Winograd, firmware/kernels/eq_conv_wino_i8.c).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from edgeq.format import pack  # noqa: E402
from edgeq.format.graph import Conv, Graph, MaxPool  # noqa: E402
from edgeq.native import kernels as K  # noqa: E402
from edgeq.native.runtime import Model  # noqa: E402

SHAPES = [(64, 64, 16, 16), (32, 32, 8, 8), (16, 16, 32, 32), (64, 64, 56, 56)]  # C, N, H, W
BATCHES = (1, 64)


def layer_model(c: int, n: int, h: int, w: int, seed: int = 1) -> tuple[Graph, np.ndarray]:
    """input (c, h, w) raw pixels -> I8 3x3 pad-1 conv, 2-bit MULTI stage -> 2x2 max-pool"""
    r = np.random.default_rng(seed)
    wt = r.integers(-128, 128, (n, 3, 3, c)).astype(np.int8)
    thr = np.sort(r.integers(-20000, 20000, (n, 3)), axis=1).astype(np.int32)
    g = Graph((c, h, w), "RAW", 0, [Conv(wt, "I8", "MULTI", pad=1, thr=thr, flip=r.random(n) < 0.3,
                                         out_bits=2), MaxPool(2, 2)])
    return g, wt


def _cpu(fn, number):
    t0 = time.thread_time()
    for _ in range(number):
        fn()
    return (time.thread_time() - t0) / number


def _number(fn, budget=0.02):
    fn()
    return max(1, int(budget / max(_cpu(fn, 1), 1e-7)))


def bench(fn, rounds):
    """median CPU time per call over `rounds` batches"""
    n = _number(fn)
    return float(np.median([_cpu(fn, n) for _ in range(rounds)]))


def pair(fn, base, rounds):
    """interleaved (order alternating): median CPU times of fn and base and the median of the
    per-round base / fn ratios"""
    nf, nb = _number(fn), _number(base)
    tf, tb = [], []
    for r in range(rounds):
        if r % 2:
            tf.append(_cpu(fn, nf))
            tb.append(_cpu(base, nb))
        else:
            tb.append(_cpu(base, nb))
            tf.append(_cpu(fn, nf))
    return float(np.median(tf)), float(np.median(tb)), float(np.median([b / f for b, f in zip(tb, tf)]))


def _numpy_conv(x, wk):
    """float32 3x3 pad-1 conv by im2col + BLAS: x (C, H, W), wk (N, 9 C) -> (N, H, W)"""
    c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    cols = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))  # C, H, W, 3, 3
    cols = cols.transpose(1, 2, 0, 3, 4).reshape(h * w, 9 * c)  # rows (c, ky, kx) as wk
    return (wk @ cols.T).reshape(-1, h, w)


def _baselines(m, wt, x, rounds, torch) -> dict:
    """ms per image of numpy / torch float32 on the same layer (and eq_model_run at batch 1)"""
    n, b = wt.shape[0], len(x)
    xf = x[0].astype(np.float32)
    wk = np.ascontiguousarray(wt.astype(np.float32).transpose(0, 3, 1, 2).reshape(n, -1))
    base = {"numpy f32 im2col+BLAS": bench(lambda: _numpy_conv(xf, wk), rounds)}
    if torch is not None:
        tx = torch.from_numpy(x.astype(np.float32))
        tw = torch.from_numpy(wt.astype(np.float32).transpose(0, 3, 1, 2).copy())
        with torch.no_grad():
            base["torch f32 conv2d"] = bench(lambda: torch.nn.functional.conv2d(tx, tw, padding=1),
                                             rounds) / b
    if b == 1:
        base["eq_model_run (firmware wino)"] = bench(lambda: m.predict_one(x), rounds)
    return base


def _variant_row(m, x, v, rounds):
    """(direct s/img, Winograd s/img, direct / Winograd, AUTO's path) on variant v"""
    def direct():
        with K.use_winograd_i8("never"):
            m.predict(x)

    def wino():
        with K.use_winograd_i8("always"):
            m.predict(x)

    with K.use_variant(v):
        with K.use_winograd_i8("never"):
            ref = m.predict(x)[1]
        with K.use_winograd_i8("always"):
            if not np.array_equal(m.predict(x)[1], ref):
                raise SystemExit(f"Winograd differs from the direct path on {v}")
        t_w, t_d, ratio = pair(wino, direct, rounds)
        with K.use_winograd_i8("auto"):
            auto = "wino" if m._lib.eq_host_plan_layer_wino(m._plan, 0) else "direct"
    return t_d / len(x), t_w / len(x), ratio, auto


def rows_for(c, n, h, w, variants, quick, torch):
    g, wt = layer_model(c, n, h, w)
    m = Model(pack.write_blob(g), threads=1)
    rounds = 5 if quick else 9
    rng = np.random.default_rng(2)
    out = []
    for b in BATCHES:
        x = rng.integers(0, 256, (b, c, h, w)).astype(np.uint8)
        base = _baselines(m, wt, x, rounds, torch)
        for v in variants:
            out.append((f"{h}x{w}x{c}->{n}", b, v, *_variant_row(m, x, v, rounds), base))
    return out


def render(rows):
    print(f"{'layer':<16}{'batch':>6} {'variant':<9}{'direct ms/img':>14}{'wino ms/img':>12}"
          f"{'direct/wino':>12}  {'auto':<7}baselines (ms/img)")
    for layer, b, v, td, tw, r, auto, base in rows:
        bl = ", ".join(f"{k} {t * 1e3:.3f}" for k, t in base.items())
        print(f"{layer:<16}{b:>6} {v:<9}{td * 1e3:>14.4f}{tw * 1e3:>12.4f}{r:>11.2f}x  {auto:<7}{bl}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds per measurement")
    ap.add_argument("--variant", action="append", help="only these variants (repeatable)")
    args = ap.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    names = [v["name"] for v in K.variants() if v["supported"] and v["name"] != "popcnt"]
    if args.variant:
        names = [n for n in names if n in args.variant]
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
               "unknown CPU") if os.path.exists("/proc/cpuinfo") else "unknown CPU"
    print(f"{cpu}; variants {', '.join(names)} (popcnt runs the portable u8 paths); one thread; "
          f"load average {'/'.join(f'{x:.2f}' for x in os.getloadavg())}; direct/wino = median of "
          f"{5 if args.quick else 9} interleaved rounds; ms = CPU time of the calling thread")
    for c, n, h, w in SHAPES:
        render(rows_for(c, n, h, w, names, args.quick, torch))
    print(f"load average at the end: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
