"""MicroPython runtime benchmark: inferences/s of the reference MNIST binary MLP (784-256-256-10,
THRESH -> 28x28 CONV B1 SIGN -> 1x1 CONV B1 SIGN -> 1x1 CONV B1 AFFINE, random weights) on the
official WebAssembly MicroPython port vs the C host runtime, and MicroPython heap use.

    python benchmarks/micro.py [--n 200]

Heap numbers: `model_heap` = bytes live after loading (blob buffer + Model + activation buffers);
`peak_heap` = gc.mem_alloc() high-water during one inference on this port.  The wasm port only
collects garbage at the top level (between the harness's calls), so inside one inference nothing
is freed and peak_heap = live data + every byte the inference allocates: an upper bound for a
board, where the collector runs whenever the heap fills.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "mp_harness")]

import mpwasm

from edgeq.format import pack
from edgeq.native import runtime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200, help="inferences on MicroPython")
    args = ap.parse_args(argv)
    g = mpwasm.reference_mlp(0)
    blob = pack.write_blob(g)
    x = np.random.default_rng(1).integers(0, 256, (args.n, 1, 28, 28)).astype(np.uint8)
    host = runtime.Model(blob)
    t = time.perf_counter()
    reps = max(1, 5000 // args.n)
    for _ in range(reps):
        _, sc = host.predict(x)
    host_ips = reps * args.n / (time.perf_counter() - t)
    res = mpwasm.run_jobs([{"blob": "m.eqb", "inputs": "x.bin", "n": args.n}],
                          {"m.eqb": blob, "x.bin": x.tobytes()})[0]
    same = res["scores"] == sc.tolist()
    mp_ips = args.n / (res["ms"] / 1000.0)
    report = {
        "model": "mnist binary MLP 784-256-256-10 (B1)", "blob_bytes": len(blob),
        "micropython_wasm_inf_per_s": round(mp_ips, 1),
        "micropython_ms_per_inf": round(res["ms"] / args.n, 2),
        "micropython_layer_ms": [round(v / args.n, 2) for v in res["layer_ms"]],
        "c_host_inf_per_s": round(host_ips, 1),
        "ratio_c_over_micropython": round(host_ips / mp_ips, 1),
        "model_heap_bytes": res["model_heap"], "peak_heap_bytes": res["peak_heap"],
        "alloc_per_inference_bytes": res["alloc"],
        "bit_identical": same, "inputs": args.n,
    }
    print(json.dumps(report, indent=2))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
