"""Kernel benchmark: ``python -m benchmarks.kernels [--quick] [--variant NAME]``.

Single-threaded (OMP/OPENBLAS/MKL threads = 1 are set before numpy is imported, and
torch.set_num_threads(1)). For each GEMM shape (M, K, N) every compiled kernel variant is timed
on pre-packed operands (packing is a one-time cost for weights) next to numpy float32 matmul of the
same shape measured in the same run; the 3x3 conv is compared with torch float32 conv2d when torch
is importable. GOPS counts 2*M*N*K (one multiply + one add per MAC) for every kernel, binary
ones included, so the numbers compare work, not instructions.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from edgeq import bits as B  # noqa: E402
from edgeq import kernels as K  # noqa: E402

SHAPES = [(1, 4096, 4096), (64, 784, 256), (256, 2304, 256)]
CONV = (64, 32, 32, 64)  # C, H, W, K


def bench(fn, min_time=0.25, repeat=5):
    """Best per-call time (s) over `repeat` rounds of enough calls to last min_time/repeat."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    number = max(1, int(min_time / repeat / one))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def _p(ffi, t, a):
    return ffi.cast(t, ffi.from_buffer(a))


def gemm_rows(m, k, n, variants, quick):
    from edgeq._native import ffi, lib

    rng = np.random.default_rng(0)
    rows = []
    ops = 2.0 * m * n * k
    af = rng.standard_normal((m, k)).astype(np.float32)
    bf = rng.standard_normal((k, n)).astype(np.float32)
    t_np = bench(lambda: af @ bf)
    rows.append(("numpy f32 matmul", "openblas", t_np, ops, t_np, None, None))

    a_pm = rng.choice(np.array([-1, 1], np.int8), (m, k))
    b_pm = rng.choice(np.array([-1, 1], np.int8), (n, k))
    ap, bp = B.pack_signs(a_pm), B.pack_signs(b_pm)
    w_t = np.where(rng.random((n, k)) < 0.5, 0, rng.choice(np.array([-1, 1], np.int8), (n, k)))
    wp = K.pack_ternary(w_t.astype(np.int8))
    a_i8 = rng.integers(-128, 128, (m, k)).astype(np.int8)
    w_i8 = rng.integers(-128, 128, (n, k)).astype(np.int8)
    w_sp = np.where(rng.random((n, k)) < 0.9, 0,
                    rng.choice(np.array([-1, 1], np.int8), (n, k))).astype(np.int8)
    enc = K.sparse_encode(w_sp)
    sp = np.zeros((enc.size + 3) // 4, np.uint32)
    sp.view(np.uint8)[: enc.size] = enc
    ss = lib.eq_gemm_tern_sparse_i8_scratch_size(m, k)
    scratch = np.empty((ss + 3) // 4 + 1, np.uint32)
    lut = rng.integers(-8, 8, (4, 4)).astype(np.int32)
    a_c = rng.integers(0, 4, (m, k)).astype(np.uint8)
    w_c = rng.integers(0, 4, (n, k)).astype(np.uint8)
    out = np.empty((m, n), np.int32)
    po = _p(ffi, "int32_t *", out)

    for v in variants:
        K.use_variant(v)
        pa, pb, pw = (_p(ffi, "uint32_t *", x) for x in (ap, bp, wp))
        t = bench(lambda: lib.eq_host_gemm_xnor_b1b1(pa, pb, m, n, k, po))
        assert (out == a_pm.astype(np.int32) @ b_pm.astype(np.int32).T).all()
        rows.append(("xnor b1 x b1", v, t, ops, t_np, None, None))
        t = bench(lambda: lib.eq_host_gemm_tern_b1(pa, pw, m, n, k, po))
        rows.append(("ternary bitplanes (b1 act)", v, t, ops, t_np, None, None))
        pai, pwi = _p(ffi, "int8_t *", a_i8), _p(ffi, "int8_t *", w_i8)
        t_i8 = bench(lambda: lib.eq_host_gemm_i8(pai, pwi, m, n, k, po))
        rows.append(("dense int8", v, t_i8, ops, t_np, None, None))
        psp, psc = _p(ffi, "uint8_t *", sp), _p(ffi, "void *", scratch)
        t = bench(lambda: lib.eq_host_gemm_tern_sparse_i8(pai, psp, enc.size, m, n, k,
                                                          psc, ss, po))
        assert (out == a_i8.astype(np.int32) @ w_sp.astype(np.int32).T).all()
        rows.append(("ternary skip-zero i8, 90% zeros", v, t, ops, t_np, t_i8, "dense int8"))
        if not quick or v != "portable":
            pac, pwc, pl = (_p(ffi, "uint8_t *", a_c), _p(ffi, "uint8_t *", w_c),
                            _p(ffi, "int32_t *", lut))
            t = bench(lambda: lib.eq_host_gemm_lut_u8(pac, pwc, pl, 4, 4, m, n, k, po))
            rows.append(("LUT 2b x 2b", v, t, ops, t_np, None, None))
    K.use_variant(None)
    return rows


def conv_rows(variants):
    from edgeq._native import ffi, lib

    c, h, w, k = CONV
    rng = np.random.default_rng(1)
    x = rng.standard_normal((c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, c, 3, 3)).astype(np.float32)
    ops = 2.0 * k * c * 9 * h * w
    rows = []
    t_ref = None
    try:
        import torch

        torch.set_num_threads(1)
        tx, tw = torch.from_numpy(x[None]), torch.from_numpy(wt)
        with torch.no_grad():
            t_ref = bench(lambda: torch.nn.functional.conv2d(tx, tw, padding=1))
        rows.append(("torch f32 conv2d", "torch", t_ref, ops, t_ref, None, None))
    except ImportError:
        pass
    out = np.empty((k, h, w), np.float32)
    s1 = lib.eq_conv3x3_wino_f23_f32_scratch_size(c, h, w, k)
    s2 = lib.eq_conv3x3_im2col_f32_scratch_size(c, h, w)
    b1, b2 = np.empty(s1 // 4, np.float32), np.empty(s2 // 4, np.float32)
    px, pw, po = (_p(ffi, "float *", a) for a in (x, wt, out))
    pb1, pb2 = _p(ffi, "void *", b1), _p(ffi, "void *", b2)
    for v in variants:
        K.use_variant(v)
        t_im = bench(lambda: lib.eq_host_conv3x3_im2col_f32(px, pw, c, h, w, k, pb2, s2, po))
        rows.append(("conv3x3 im2col + gemm", v, t_im, ops, t_ref, None, None))
        t_wi = bench(lambda: lib.eq_host_conv3x3_wino_f23_f32(px, pw, c, h, w, k, pb1, s1, po))
        rows.append(("conv3x3 winograd F(2,3) + gemm", v, t_wi, ops, t_ref, t_im, "im2col"))
    K.use_variant(None)
    return rows


def render(title, rows, ref_name):
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text fallback
        print(title)
        for r in rows:
            print(r)
        return
    t = Table(title=title)
    for col in ("kernel", "variant", "time (ms)", "GOPS", f"vs {ref_name}", "vs baseline"):
        t.add_column(col, justify="left" if col in ("kernel", "variant") else "right")
    for name, var, sec, ops, t_ref, t_base, base_name in rows:
        t.add_row(name, var, f"{sec * 1e3:.3f}", f"{ops / sec / 1e9:.1f}",
                  f"{t_ref / sec:.2f}x" if t_ref else "-",
                  f"{t_base / sec:.2f}x {base_name}" if t_base else "")
    Console(width=120).print(t)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller time budget per measurement")
    ap.add_argument("--variant", action="append", help="only these variants (repeatable)")
    args = ap.parse_args(argv)
    names = [v["name"] for v in K.variants() if v["supported"]]
    if args.variant:
        names = [n for n in names if n in args.variant]
    print(f"variants: {', '.join(names)} (auto: {K.current_variant()}); single thread; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '<unset>')}")
    for m, k, n in SHAPES:
        render(f"GEMM M={m} K={k} N={n}", gemm_rows(m, k, n, names, args.quick), "numpy f32")
    c, h, w, k = CONV
    render(f"3x3 conv C={c} K={k} {h}x{w}, stride 1, pad 1", conv_rows(names), "torch f32")


if __name__ == "__main__":
    main()
