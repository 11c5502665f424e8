# MicroPython driver for tests/mp_harness/run.mjs: runs the jobs in /work/job.json with
# edgeq_micro and prints one JSON line per job.  run.mjs calls step() until DONE, one inference
# per step, so the port's garbage collector (top level only) runs between inferences.
#
# job: {"blob": FILE, "inputs": FILE or null, "n": N, "wire": bool, "native_crc": bool}
# out: {"ok": true, "load_ms", "ms" (all inferences), "layer_ms" (summed), "classes", "scores",
#       "model_heap" (bytes live after loading), "peak_heap" (max bytes in use during one
#       inference: live + everything allocated, nothing is freed mid-call on this port),
#       "alloc" (max bytes allocated by one inference)}
#   or {"ok": false, "error": NAME, "status": code, "msg": str}
import gc
import json
import time

import edgeq_micro

try:
    ticks_ms, ticks_diff = time.ticks_ms, time.ticks_diff
except AttributeError:  # CPython
    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

ROOT = "/work/"


def read(name):
    with open(ROOT + name, "rb") as f:
        return f.read()


JOBS = json.loads(read("job.json"))
DONE = not JOBS
_job = -1
_i = 0
_st = None


def _start(job):
    gc.collect()
    base = gc.mem_alloc()
    t0 = ticks_ms()
    try:
        m = edgeq_micro.Model(read(job["blob"]), native_crc=job.get("native_crc", True))
    except ValueError as e:
        print(json.dumps({"ok": False, "error": type(e).__name__,
                          "status": getattr(e, "status", -1), "msg": str(e)}))
        return None
    res = {"ok": True, "load_ms": ticks_diff(ticks_ms(), t0)}
    gc.collect()
    res["model_heap"] = gc.mem_alloc() - base
    if not job.get("inputs"):
        print(json.dumps(res))
        return None
    data = read(job["inputs"])
    res.update(classes=[], scores=[], ms=0, layer_ms=[0] * len(m.layers), peak_heap=0, alloc=0)
    return [m, memoryview(data), len(data) // job["n"], res, base]


def step():
    global DONE, _job, _i, _st
    if _st is None:
        _job += 1
        if _job >= len(JOBS):
            DONE = True
            return
        _i = 0
        _st = _start(JOBS[_job])
        return
    m, mv, size, res, base = _st
    job = JOBS[_job]
    gc.collect()
    a0 = gc.mem_alloc()
    t0 = ticks_ms()
    s = m.scores(mv[_i * size:(_i + 1) * size], wire=job.get("wire", False))
    res["ms"] += ticks_diff(ticks_ms(), t0)
    a1 = gc.mem_alloc()
    res["peak_heap"] = max(res["peak_heap"], a1 - base)
    res["alloc"] = max(res["alloc"], a1 - a0)
    res["scores"].append(s)
    res["classes"].append(edgeq_micro.argmax(s))
    lm = res["layer_ms"]
    for j, v in enumerate(m.layer_ms):
        lm[j] += v
    _i += 1
    if _i >= job["n"]:
        print(json.dumps(res))
        _st = None
