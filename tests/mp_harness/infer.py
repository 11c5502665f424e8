# MicroPython driver for tests/mp_harness/run.mjs: runs the jobs listed in /work/job.json with
# edgeq_micro and prints one JSON line per job.  Also runs under CPython (sys.path permitting).
#
# job: {"blob": FILE, "inputs": FILE, "n": N, "wire": bool, "native_crc": bool, "peak": bool,
#       "repeat": R}
# out: {"ok": true, "classes": [...], "scores": [[...]...], "ms": total_ms, "layer_ms": [...],
#       "peak": bytes, "load_ms": ms}  or  {"ok": false, "error": NAME, "status": code, "msg": str}
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


def run(job):
    gc.collect()
    base = gc.mem_alloc()
    peak = [0]

    def probe():
        a = gc.mem_alloc()
        if a > peak[0]:
            peak[0] = a

    t0 = ticks_ms()
    try:
        m = edgeq_micro.Model(read(job["blob"]), native_crc=job.get("native_crc", True))
    except ValueError as e:
        return {"ok": False, "error": type(e).__name__, "status": getattr(e, "status", -1), "msg": str(e)}
    load_ms = ticks_diff(ticks_ms(), t0)
    res = {"ok": True, "load_ms": load_ms}
    if not job.get("inputs"):
        return res
    data = read(job["inputs"])
    n = job["n"]
    size = len(data) // n
    wire = job.get("wire", False)
    if job.get("peak"):
        gc.threshold(2048)  # frequent collections: mem_alloc() stays close to the live set
        m.probe = probe
    classes, scores = [], []
    layer_ms = None
    mv = memoryview(data)
    t0 = ticks_ms()
    for _ in range(job.get("repeat", 1)):
        classes, scores = [], []
        for i in range(n):
            s = m.scores(mv[i * size:(i + 1) * size], wire=wire)
            scores.append(s)
            classes.append(edgeq_micro.argmax(s))
            if layer_ms is None:
                layer_ms = [0] * len(m.layer_ms)
            for j, v in enumerate(m.layer_ms):
                layer_ms[j] += v
    res["ms"] = ticks_diff(ticks_ms(), t0)
    res["classes"] = classes
    res["scores"] = scores
    res["layer_ms"] = layer_ms
    if job.get("peak"):
        gc.threshold(-1)
        res["peak"] = peak[0] - base
    return res


for job in json.loads(read("job.json")):
    print(json.dumps(run(job)))
