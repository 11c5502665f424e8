"""Kernel benchmark: ``python -m benchmarks.kernels [--quick] [--variant NAME] [--network]``.

First a whole-network section (``--network`` runs only it, about a minute): images/s of
``runtime.Model.predict`` on bnn-cnn, twn-cnn, dorefa-w2a2 and hwgq-cnn (MNIST architectures,
random weights) at batch 1 and 256, one thread and all threads, against torch float32 with the
same layer shapes (and torch's int8 eager quantization where it runs), interleaved in one run.
Then the kernels, single-threaded (OMP/OPENBLAS/MKL threads = 1 are set before numpy is imported, and
torch.set_num_threads(1)). The machine is shared, so every ratio is measured *interleaved*: each
kernel and its baseline alternate, one timed batch each, for several rounds, and the table shows
median per-call times and the median of the per-round ratios (baseline and kernel see the same
load). Operands are pre-packed (packing is a one-time cost for weights). GOPS counts 2*M*N*K
for every kernel, binary ones included, so the numbers compare work, not instructions.
OPENBLAS_CORETYPE is removed from the environment for the run (printed in the header).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"
_CORETYPE = os.environ.pop("OPENBLAS_CORETYPE", None)  # let OpenBLAS pick its own kernels

import argparse  # noqa: E402
import copy  # noqa: E402
import time  # noqa: E402
from functools import partial  # noqa: E402 (after the thread settings above)

import numpy as np  # noqa: E402

from edgeq.format import bits as B  # noqa: E402
from edgeq.native import kernels as K  # noqa: E402

SHAPES = [(1, 4096, 4096), (64, 784, 256), (256, 2304, 256)]
CONV = (64, 32, 32, 64)  # C, H, W, K


ROUNDS = 9


def _batch(fn, budget):
    """Calls per timed batch so that one batch lasts about `budget` seconds."""
    fn()
    t0 = time.perf_counter()
    fn()
    return max(1, int(budget / max(time.perf_counter() - t0, 1e-7)))


def _timed(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def pair(fn, base, rounds=ROUNDS, budget=0.02):
    """Interleaved timing: per round, one batch of `base` then one of `fn` (order alternating).
    Returns (median time of fn, median time of base, median of per-round base/fn ratios)."""
    nf, nb = _batch(fn, budget), _batch(base, budget)
    tf, tb = [], []
    for r in range(rounds):
        if r % 2:
            tf.append(_timed(fn, nf))
            tb.append(_timed(base, nb))
        else:
            tb.append(_timed(base, nb))
            tf.append(_timed(fn, nf))
    ratios = sorted(b / f for b, f in zip(tb, tf))
    return float(np.median(tf)), float(np.median(tb)), ratios[len(ratios) // 2]


def bench(fn, rounds=ROUNDS, budget=0.02):
    """Median per-call time over `rounds` batches."""
    n = _batch(fn, budget)
    return float(np.median([_timed(fn, n) for _ in range(rounds)]))


def _p(ffi, t, a):
    return ffi.cast(t, ffi.from_buffer(a))


def gemm_rows(m, k, n, variants, quick):
    """Rows: (kernel, variant, t, ops, t_ref, ratio_ref, t_base, ratio_base, base_name)."""
    from edgeq._native import ffi, lib

    rng = np.random.default_rng(0)
    rows = []
    ops = 2.0 * m * n * k
    af = rng.standard_normal((m, k)).astype(np.float32)
    bf = rng.standard_normal((k, n)).astype(np.float32)
    f_np = partial(np.matmul, af, bf)
    t_np = bench(f_np)
    rows.append(("numpy f32 matmul", "openblas", t_np, ops, t_np, 1.0, None, None, None))

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
    sp = K.sparse_words(enc)
    ss = lib.eq_gemm_tern_sparse_i8_scratch_size(m, k)
    scratch = np.empty((ss + 3) // 4 + 1, np.uint32)
    lut = rng.integers(-8, 8, (4, 4)).astype(np.int32)
    a_c = rng.integers(0, 4, (m, k)).astype(np.uint8)
    w_c = rng.integers(0, 4, (n, k)).astype(np.uint8)
    out = np.empty((m, n), np.int32)
    out2 = np.empty((m, n), np.int32)
    po, po2 = _p(ffi, "int32_t *", out), _p(ffi, "int32_t *", out2)
    rounds = 5 if quick else ROUNDS

    for v in variants:
        K.use_variant(v)
        pa, pb, pw = (_p(ffi, "uint32_t *", x) for x in (ap, bp, wp))
        f = partial(lib.eq_host_gemm_xnor_b1b1, pa, pb, m, n, k, po)
        t, tn, rr = pair(f, f_np, rounds)
        assert (out == a_pm.astype(np.int32) @ b_pm.astype(np.int32).T).all()
        rows.append(("xnor b1 x b1", v, t, ops, tn, rr, None, None, None))
        # the numpy wrapper on int8 +-1 operands (validates and packs both in C, then the GEMM)
        t_w, t_k, rw = pair(partial(K.xnor_gemm, a_pm, b_pm), f, rounds)
        rows.append((f"xnor_gemm() wrapper, int8 in: {1 / rw:.2f}x packed", v, t_w, ops, t_np,
                     t_np / t_w, t_k, rw, "packed"))
        f = partial(lib.eq_host_gemm_tern_b1, pa, pw, m, n, k, po)
        t, tn, rr = pair(f, f_np, rounds)
        assert (out == a_pm.astype(np.int32) @ w_t.astype(np.int32).T).all()
        rows.append(("ternary bitplanes (b1 act)", v, t, ops, tn, rr, None, None, None))
        pai, pwi = _p(ffi, "int8_t *", a_i8), _p(ffi, "int8_t *", w_i8)
        f_i8 = partial(lib.eq_host_gemm_i8, pai, pwi, m, n, k, po2)
        t_i8, tn, rr = pair(f_i8, f_np, rounds)
        rows.append(("dense int8", v, t_i8, ops, tn, rr, None, None, None))
        psp, psc = _p(ffi, "uint8_t *", sp), _p(ffi, "void *", scratch)
        f = partial(lib.eq_host_gemm_tern_sparse_i8, pai, psp, enc.size, m, n, k, psc, ss, po)
        t, tb, rb = pair(f, f_i8, rounds)
        assert (out == a_i8.astype(np.int32) @ w_sp.astype(np.int32).T).all()
        rows.append(("ternary skip-zero i8, 90% zeros", v, t, ops, t_np, t_np / t, tb, rb,
                     "dense int8"))
        if not quick or v != "portable":
            pac, pwc, pl = (_p(ffi, "uint8_t *", a_c), _p(ffi, "uint8_t *", w_c),
                            _p(ffi, "int32_t *", lut))
            t = bench(partial(lib.eq_host_gemm_lut_u8, pac, pwc, pl, 4, 4, m, n, k, po), rounds)
            rows.append(("LUT 2b x 2b", v, t, ops, t_np, t_np / t, None, None, None))
    K.use_variant(None)
    return rows


def conv_rows(variants, quick):
    from edgeq._native import ffi, lib

    c, h, w, k = CONV
    rng = np.random.default_rng(1)
    x = rng.standard_normal((c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, c, 3, 3)).astype(np.float32)
    ops = 2.0 * k * c * 9 * h * w
    rows = []
    t_ref = None
    rounds = 5 if quick else ROUNDS
    try:
        import torch

        torch.set_num_threads(1)
        tx, tw = torch.from_numpy(x[None]), torch.from_numpy(wt)
        with torch.no_grad():
            t_ref = bench(lambda: torch.nn.functional.conv2d(tx, tw, padding=1), rounds)
        rows.append(("torch f32 conv2d", "torch", t_ref, ops, t_ref, 1.0, None, None, None))
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
        f_im = partial(lib.eq_host_conv3x3_im2col_f32, px, pw, c, h, w, k, pb2, s2, po)
        f_wi = partial(lib.eq_host_conv3x3_wino_f23_f32, px, pw, c, h, w, k, pb1, s1, po)
        t_wi, t_im, rr = pair(f_wi, f_im, rounds)
        r_im = t_ref / t_im if t_ref else None
        r_wi = t_ref / t_wi if t_ref else None
        rows.append(("conv3x3 im2col + gemm", v, t_im, ops, t_ref, r_im, None, None, None))
        rows.append(("conv3x3 winograd F(2,3) + gemm", v, t_wi, ops, t_ref, r_wi, t_im, rr,
                     "im2col"))
    K.use_variant(None)
    return rows


def m1_rows(variants, quick):
    """M = 1 skip-zero (the serial-decode case) against dense int8, both interleaved."""
    from edgeq._native import ffi, lib

    m, k, n = 1, 4096, 1024
    rng = np.random.default_rng(2)
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    wd = rng.integers(-128, 128, (n, k)).astype(np.int8)
    ws = np.where(rng.random((n, k)) < 0.9, 0,
                  rng.choice(np.array([-1, 1], np.int8), (n, k))).astype(np.int8)
    enc = K.sparse_encode(ws)
    sp = K.sparse_words(enc)
    nib = int(np.frombuffer(enc[: 4 * (n + 1)].tobytes(), np.uint32)[-1])
    out = np.empty((m, n), np.int32)
    pa, pwd, psp, po = (_p(ffi, t, x) for t, x in (("int8_t *", a), ("int8_t *", wd),
                                                   ("uint8_t *", sp), ("int32_t *", out)))
    rows = []
    for v in variants:
        K.use_variant(v)
        f_d = partial(lib.eq_host_gemm_i8, pa, pwd, m, n, k, po)
        f_s = partial(lib.eq_host_gemm_tern_sparse_i8, pa, psp, enc.size, m, n, k, ffi.NULL, 0, po)
        t_s, t_d, rr = pair(f_s, f_d, 5 if quick else ROUNDS)
        rows.append((f"skip-zero i8 M=1 ({t_s / nib * 1e9:.2f} ns/nibble)", v, t_s,
                     2.0 * m * n * k, None, None, t_d, rr, "dense int8"))
    K.use_variant(None)
    return rows


NETWORKS = ("bnn-cnn", "twn-cnn", "dorefa-w2a2", "hwgq-cnn")


def _twin_from_blob(blob):
    """(torch float32 net with the blob's stored layer shapes, torch)"""
    import torch
    from torch import nn

    from edgeq.format import pack
    from edgeq.format.graph import Conv, Flatten, MaxPool

    g = pack.read_blob(blob)
    mods = []
    for i, layer in enumerate(g.layers):
        if isinstance(layer, Conv):
            cin = layer.weight.shape[3]
            mods.append(nn.Conv2d(cin, layer.n_out, (layer.kh, layer.kw), layer.stride, layer.pad))
            if i < len(g.layers) - 1:
                mods.append(nn.ReLU())
        elif isinstance(layer, MaxPool):
            mods.append(nn.MaxPool2d(layer.k, layer.stride))
        elif isinstance(layer, Flatten):
            mods += [nn.Flatten(), nn.Unflatten(1, (-1, 1, 1))]
    return nn.Sequential(*mods).eval(), torch


def _torch_int8(net, torch, x):
    """torch's own int8 path (eager static quantization, x86/fbgemm engine), or None."""
    import warnings

    try:
        from torch.ao import quantization as tq

        engines = torch.backends.quantized.supported_engines
        engine = "x86" if "x86" in engines else "fbgemm" if "fbgemm" in engines else None
        if engine is None:
            return None
        torch.backends.quantized.engine = engine
        qnet = torch.nn.Sequential(tq.QuantStub(), *[m for m in net], tq.DeQuantStub()).eval()
        with warnings.catch_warnings():  # deprecation notices of the eager quantization API
            warnings.simplefilter("ignore")
            qnet.qconfig = tq.get_default_qconfig(engine)
            tq.prepare(qnet, inplace=True)
            with torch.no_grad():
                qnet(x)
            tq.convert(qnet, inplace=True)
            with torch.no_grad():
                qnet(x)
        return qnet
    except Exception as e:  # noqa: BLE001 - any failure means "no int8 path here"
        print(f"torch int8 path unavailable: {type(e).__name__}: {e}")
        return None


def network_rows(quick, threads_all):
    """Whole networks: images/s of runtime.Model.predict against torch float32 (and int8) with
    the same layer shapes, batch 1 and 256, one thread and all threads."""
    import torch

    from edgeq.train import export, models
    from edgeq.native.runtime import Model

    rng = np.random.default_rng(0)
    x256 = rng.integers(0, 256, (256, 1, 28, 28)).astype(np.uint8)
    rows = []
    rounds = 3 if quick else 5
    for arch in NETWORKS:
        torch.manual_seed(0)
        net = models.build_model(arch, (1, 28, 28), [str(i) for i in range(10)])
        blob = export.export_blob(net)
        m = Model(blob)
        twin, _ = _twin_from_blob(blob)
        xt256 = torch.from_numpy(x256.astype(np.float32) / 255)
        q = _torch_int8(twin, torch, xt256[:16])
        twin_cl = copy.deepcopy(twin).to(memory_format=torch.channels_last)
        for batch in (1, 256):
            xb, xt = x256[:batch], xt256[:batch]
            xt_cl = xt.contiguous(memory_format=torch.channels_last)
            for nt in sorted({1, threads_all}):
                torch.set_num_threads(nt)
                with torch.no_grad():
                    # torch's faster layout for this shape is the baseline (NCHW or NHWC)
                    f_nchw, f_nhwc = partial(twin, xt), partial(twin_cl, xt_cl)
                    cl = bench(f_nhwc, 3, 0.02) < bench(f_nchw, 3, 0.02)
                    f_t = f_nhwc if cl else f_nchw
                    f_e = partial(m.predict, xb, nt)
                    t_e, t_t, rr = pair(f_e, f_t, rounds, budget=0.05)
                    t_q = bench(partial(q, xt), rounds, budget=0.05) if q is not None else None
                rows.append((arch, batch, nt, batch / t_e, batch / t_t, rr,
                             batch / t_q if t_q else None, m.layer_paths(),
                             "NHWC" if cl else "NCHW"))
        torch.set_num_threads(1)
    return rows


def render_networks(rows):
    print("whole networks, 28x28x1 input, random weights (MNIST architectures of edgeq.train.models), "
          "images/s of runtime.Model.predict (batch inside C); ratio = median of interleaved "
          "rounds against torch float32 with the same layer shapes (conv + ReLU, max-pool; "
          "no_grad, eval; in its faster memory layout, NCHW or NHWC); torch int8 = eager static "
          "quantization (x86/fbgemm engine)")
    head = (f"{'network':<12} {'batch':>5} {'thr':>3} {'edgeq img/s':>12} {'torch f32':>14} "
            f"{'vs f32':>7} {'torch int8':>10}  edgeq layer paths")
    print(head)
    for arch, batch, nt, e, t, rr, q, paths, layout in rows:
        qs = f"{q:10.0f}" if q else f"{'-':>10}"
        print(f"{arch:<12} {batch:>5} {nt:>3} {e:12.0f} {t:9.0f} {layout} {rr:6.1f}x {qs}  "
              f"{' '.join(p for p in paths if p != '-')}")


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
    for name, var, sec, ops, _t_ref, r_ref, _t_base, r_base, base_name in rows:
        t.add_row(name, var, f"{sec * 1e3:.3f}", f"{ops / sec / 1e9:.1f}",
                  f"{r_ref:.2f}x" if r_ref else "-",
                  f"{r_base:.2f}x {base_name}" if r_base else "")
    Console(width=120).print(t)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds per measurement")
    ap.add_argument("--variant", action="append", help="only these variants (repeatable)")
    ap.add_argument("--network", action="store_true",
                    help="only the whole-network section (runtime images/s against torch)")
    args = ap.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    names = [v["name"] for v in K.variants() if v["supported"]]
    if args.variant:
        names = [n for n in names if n in args.variant]
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"variants: {', '.join(names)} (auto: {K.current_variant()}); single thread except "
          f"where a row says otherwise ({os.cpu_count()} CPUs); "
          f"OPENBLAS_CORETYPE unset for this run (was {_CORETYPE or '<unset>'}); "
          f"load average {load}; ratios = median of {5 if args.quick else ROUNDS} interleaved "
          "rounds")
    from edgeq.native.runtime import default_threads

    nt = default_threads()
    render_networks(network_rows(args.quick, nt))
    if args.network:
        print(f"load average at the end: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
        return
    for m, k, n in SHAPES:
        render(f"GEMM M={m} K={k} N={n}", gemm_rows(m, k, n, names, args.quick), "numpy f32")
    render("skip-zero ternary, M=1 K=4096 N=1024", m1_rows(names, args.quick), "numpy f32")
    c, h, w, k = CONV
    render(f"3x3 conv C={c} K={k} {h}x{w}, stride 1, pad 1", conv_rows(names, args.quick),
           "torch f32")
    print(f"load average at the end: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
