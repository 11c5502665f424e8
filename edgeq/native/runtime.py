"""Host runtime: runs a blob through the C runtime via cffi.

    m = Model(open("model.eqb", "rb").read())
    classes, scores = m.predict(pixels)      # pixels uint8 (N, C, H, W) or (N, H, W)

The blob is validated by the same C loader the firmware uses (firmware/runtime), which never
trusts its contents (see docs/blob-format.md). `predict` / `scores` run the whole batch inside C
through the host executor (host/eq_host_exec.c: im2col into the dispatched XNOR / ternary /
u8 x s8 SIMD GEMMs, threads splitting the batch), which is bit-exact with the firmware's
layer-by-layer executor `eq_model_run`; `predict_wire` runs one wire input through the host
executor; `predict_one` / `predict_wire_one` / `layer_output` / `profile` run `eq_model_run`
itself, image by image. A model that uses any blob 1.1 feature (DAG inputs, grouped/depthwise
conv, per-axis stride/pad, AVGPOOL / ADD / CONCAT, REQUANT) is not batched: the host executor
runs each image of the batch through `eq_model_run` (threads still split the batch), so its
answers are the firmware's by construction, at the firmware's speed.
"""

from __future__ import annotations

import os

import numpy as np

from ..format import pack
from .. import spec
from ..errors import BlobFormatError, KernelError, ShapeError
from ..format.bits import wire_input


def native():
    """The compiled cffi module, with a clear error if it was never built."""
    try:
        from .. import _native
    except ImportError as e:  # pragma: no cover - depends on the install
        raise KernelError(
            f"the edgeq C extension is not built ({e}); run `pip install -e .` or "
            "`python host/build_cffi.py` in the source tree") from None
    return _native


INPUT_PIXELS, INPUT_WIRE = spec.value(spec.INPUT, "PIXELS"), spec.value(spec.INPUT, "WIRE")


def spec_status(name: str) -> int:
    return spec.value(spec.STATUS, name)


def check(status: int, what: str, error=KernelError):
    """The one status -> error path of the C code (runtime and kernels): raise `error` naming the
    status (its C text and spec name) when it is not EQ_OK; the error's .status holds the code."""
    if status != 0:
        msg = native().ffi.string(native().lib.eq_status_str(status)).decode()
        try:
            name = spec.name_of(spec.STATUS, int(status))
        except Exception:  # a code spec.py does not know
            name = "?"
        err = error(f"{what}: {msg} ({name}, status {status})")
        err.status = int(status)
        raise err


def default_threads() -> int:
    """All the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class Model:
    """A loaded blob. `predict`/`scores` may be called from several threads at once; the
    single-image methods share one arena (use one Model per thread for those)."""

    def __init__(self, blob: bytes, threads: int | None = None):
        nat = native()
        self._ffi, self._lib = nat.ffi, nat.lib
        blob = bytes(blob)
        # Python reads only what it shows (header, CRC, metadata, layer table); the C loader
        # (eq_model_load) is the one that validates every weight, shape and code
        self.summary = pack.read_summary(blob)
        self.header = self.summary.header
        # an 8-byte aligned private copy (the C loader requires alignment)
        self._buf = self._ffi.new("uint64_t[]", (len(blob) + 7) // 8)
        self._ffi.memmove(self._buf, blob, len(blob))
        self._m = self._ffi.new("eq_model_t *")
        st = self._lib.eq_model_load(self._m, self._ffi.cast("uint8_t *", self._buf), len(blob))
        check(st, "C loader rejected the blob", BlobFormatError)
        m = self._m
        self.input_shape = (m.in_c, m.in_h, m.in_w)
        self.n_classes = m.n_classes
        self.n_layers = m.n_layers
        self.arena_size = m.arena_need
        self.input_wire_bytes = m.input_wire
        self.pre_mode = m.pre_mode  # spec.PRE code, as the C loader read it
        self._arena = self._ffi.new("uint64_t[]", (m.arena_need + 7) // 8 or 1)
        self._scores = self._ffi.new("int32_t[]", m.n_classes)
        self._cls = self._ffi.new("uint32_t *")
        self.blob = blob
        self._graph = None
        self.threads = default_threads() if threads is None else self._check_threads(threads)
        plan = self._ffi.new("eq_host_plan_t **")
        check(self._lib.eq_host_plan_new(self._m, plan), "host executor plan")
        self._plan = self._ffi.gc(plan[0], self._lib.eq_host_plan_free)

    @property
    def graph(self):
        """The blob decoded into a Graph by the Python reader (pack.read_blob: every weight
        decoded and validated again in Python). Not used by the runtime; for tools that need
        the weights. Display and preprocessing need only `summary`."""
        if self._graph is None:
            self._graph = pack.read_blob(self.blob)
        return self._graph

    @staticmethod
    def _check_threads(threads) -> int:
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
            raise ShapeError(f"threads must be a positive integer, got {threads!r} "
                             "(leave it out to use every core)")
        return int(threads)

    def layer_paths(self) -> list[str]:
        """How the host executor runs each stored layer: 'bits' (bit GEMM), 'u8' (u8 x s8 GEMM),
        'rows' (eq_conv2d_row, the firmware's loops) or '-' (pool / flatten)."""
        names = {0: "rows", 1: "bits", 2: "u8"}
        out = []
        for i, layer in enumerate(self.summary.layers):
            if layer["op"] != "CONV":
                out.append("-")
            else:
                out.append(names[self._lib.eq_host_plan_layer_kind(self._plan, i)])
        return out

    @classmethod
    def from_file(cls, path) -> "Model":
        with open(path, "rb") as f:
            return cls(f.read())

    def _batch(self, pixels) -> np.ndarray:
        px = np.asarray(pixels)
        c, h, w = self.input_shape
        if px.dtype != np.uint8:
            raise ShapeError(f"inputs must be raw uint8 pixels, got dtype {px.dtype}")
        if px.shape == (c, h, w) or (c == 1 and px.shape == (h, w)):
            px = px.reshape(1, c, h, w)
        elif px.ndim == 3 and c == 1 and px.shape[1:] == (h, w):
            px = px[:, None]
        if px.ndim != 4 or px.shape[1:] != (c, h, w):
            raise ShapeError(
                f"input shape {np.asarray(pixels).shape} does not match the model's input "
                f"(C, H, W) = {(c, h, w)}; resize/crop the images or give (N, C, H, W)")
        return np.ascontiguousarray(px)

    def _run_one(self, data: bytes, kind: int, prof=None, n_run: int = 0, act=None, act_size=0):
        """One eq_model_run: scores into self._scores, the class into self._cls[0]."""
        run = self._ffi.new("eq_run_t *")
        inp = self._ffi.from_buffer(data)
        run.input, run.input_size, run.input_kind = self._ffi.cast("uint8_t *", inp), len(data), kind
        run.scores, run.n_scores = self._scores, self.n_classes
        run.prof = prof if prof is not None else self._ffi.NULL
        run.n_run = n_run
        run.act_out, run.act_size = (act if act is not None else self._ffi.NULL), act_size
        st = self._lib.eq_model_run(self._m, self._ffi.cast("uint8_t *", self._arena), self.arena_size, run)
        check(st, "inference failed")
        self._cls[0] = run.cls

    def predict(self, pixels, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """uint8 pixels (N, C, H, W), (N, H, W) or one image -> (classes (N,), scores int32 (N, n)).
        The whole batch runs inside C on `threads` threads (default: the Model's)."""
        px = self._batch(pixels)
        nt = self.threads if threads is None else self._check_threads(threads)
        n = len(px)
        scores = np.empty((n, self.n_classes), np.int32)
        cls = np.empty(n, np.uint32)
        ffi = self._ffi
        st = self._lib.eq_host_run_batch(
            self._plan, ffi.cast("uint8_t *", ffi.from_buffer(px)), n, nt,
            ffi.cast("int32_t *", ffi.from_buffer(scores)),
            ffi.cast("uint32_t *", ffi.from_buffer(cls)))
        check(st, "inference failed")
        return cls.astype(np.int64), scores

    def scores(self, pixels, threads: int | None = None) -> np.ndarray:
        """int32 scores (N, n_classes) of a batch (see predict)."""
        return self.predict(pixels, threads)[1]

    def predict_one(self, pixels) -> tuple[np.ndarray, np.ndarray]:
        """As predict, through the firmware's executor eq_model_run, one image at a time (the
        reference the host executor is tested against)."""
        px = self._batch(pixels)
        scores = np.empty((len(px), self.n_classes), np.int32)
        classes = np.empty(len(px), np.int64)
        for i, img in enumerate(px):
            self._run_one(img.tobytes(), INPUT_PIXELS)
            scores[i] = np.frombuffer(self._ffi.buffer(self._scores), np.int32)
            classes[i] = self._cls[0]
        return classes, scores

    def wire_input(self, image) -> bytes:
        """What the host sends a board for one image (docs/blob-format.md, wire input)."""
        px = self._batch(image)[0]
        return wire_input(px, self.pre_mode, self.summary.pre_param)

    def predict_wire(self, wire: bytes) -> tuple[int, np.ndarray]:
        """Run one wire-format input (as a board receives it) through the host executor."""
        wire = bytes(wire)
        if len(wire) != self.input_wire_bytes:
            check(spec_status("ERR_INPUT"), f"wire input of {len(wire)} bytes (the model takes "
                  f"{self.input_wire_bytes})")
        scores = np.empty(self.n_classes, np.int32)
        cls = self._ffi.new("uint32_t *")
        st = self._lib.eq_host_run_batch_ex(
            self._plan, wire, INPUT_WIRE, 1, 1, self._ffi.cast("int32_t *", self._ffi.from_buffer(scores)),
            cls)
        check(st, "inference failed")
        return int(cls[0]), scores

    def predict_wire_one(self, wire: bytes) -> tuple[int, np.ndarray]:
        """predict_wire through the firmware's executor eq_model_run."""
        self._run_one(bytes(wire), INPUT_WIRE)
        return int(self._cls[0]), np.frombuffer(self._ffi.buffer(self._scores), np.int32).copy()

    def layer_output(self, image, layer: int) -> np.ndarray:
        """Raw bytes of the activation after `layer` (runtime layout), for debugging and tests."""
        px = self._batch(image)[0]
        n = self._lib.eq_model_act_bytes(self._m, layer)
        if n == 0:
            raise ShapeError(f"layer {layer} out of range (0..{self.n_layers - 1})")
        buf = self._ffi.new("uint8_t[]", n)
        self._run_one(px.tobytes(), INPUT_PIXELS, n_run=layer + 1, act=buf, act_size=n)
        return np.frombuffer(self._ffi.buffer(buf), np.uint8).copy()

    def profile(self, image) -> tuple[list[int], int]:
        """Per-layer times on the host in nanoseconds (time.perf_counter_ns as the clock)."""
        return self._profile(self._batch(image)[0].tobytes(), INPUT_PIXELS)

    def profile_wire(self, wire: bytes) -> tuple[list[int], int]:
        """As profile, of a wire input (what a board receives)."""
        return self._profile(bytes(wire), INPUT_WIRE)

    def _profile(self, inp: bytes, input_kind: int) -> tuple[list[int], int]:
        import time

        ticks = self._ffi.new("uint32_t[]", self.n_layers)
        base = time.perf_counter_ns()

        @self._ffi.callback("uint32_t(void *)")
        def now(_ctx):
            return (time.perf_counter_ns() - base) & 0xFFFFFFFF

        prof = self._ffi.new("eq_profile_t *")
        prof.now, prof.ctx, prof.ticks, prof.n_ticks = now, self._ffi.NULL, ticks, self.n_layers
        self._run_one(inp, input_kind, prof=prof)
        return list(ticks), int(prof.total)
