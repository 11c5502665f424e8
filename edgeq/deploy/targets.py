"""Where inference runs: one `Target` interface over the host C runtime, a board running the edgeq
firmware (serial protocol) and a board running stock MicroPython (edgeq_micro over mpremote).

Every target has the same methods, used alike by `edgeq stream`, `edgeq eval` and `edgeq profile`:

    t.info()              -> TargetInfo(name, n_classes, input_wire, tick_hz, clock)
    t.load(blob)          put a blob on the target and make it the running model
    t.infer(wires)        -> (classes int64 (N,), scores int32 (N, n_classes)) for a batch of
                             wire inputs (docs/blob-format.md), pipelined `depth` deep
    t.submit(wire) / t.collect() -> (class, scores)   the pipeline infer() and streams use
    t.profile(wire)       -> Profile(ticks per layer, total, tick_hz, clock) of one inference
    t.bytes_out, t.bytes_in   bytes sent / received over the link (0 on the host)
    t.last_ticks          target ticks of the last collected inference (0: not reported)
    t.tick_hz(), t.link_rate(), t.close()
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..errors import EdgeqError, TransportError
from ..native.runtime import Model


@dataclass(frozen=True)
class TargetInfo:
    name: str
    n_classes: int    # scores per inference (0: no model loaded)
    input_wire: int   # bytes of one wire input (0: no model loaded)
    tick_hz: int      # rate of the ticks profile() reports
    clock: str        # what a profile tick is


@dataclass(frozen=True)
class Profile:
    ticks: list       # per layer
    total: int        # the whole inference (input unpacking and argmax included)
    tick_hz: int
    clock: str


class Target:
    """The interface; subclasses implement info, load, submit, collect and profile."""

    depth = 1  # inferences in flight at most (submit before collect)

    def __init__(self, name: str):
        self.name = name
        self.bytes_out = self.bytes_in = 0
        self.last_ticks = 0

    def info(self) -> TargetInfo:
        raise NotImplementedError

    def load(self, blob: bytes) -> None:
        raise NotImplementedError

    def submit(self, wire: bytes) -> None:
        raise NotImplementedError

    def collect(self) -> tuple:
        raise NotImplementedError

    def profile(self, wire: bytes) -> Profile:
        raise NotImplementedError

    def infer(self, wires) -> tuple[np.ndarray, np.ndarray]:
        """Classes and scores of a batch of wire inputs, `depth` of them in flight."""
        classes, scores, pending = [], [], 0
        for wire in wires:
            if pending == self.depth:
                c, s = self.collect()
                classes.append(c)
                scores.append(s)
                pending -= 1
            self.submit(wire)
            pending += 1
        for _ in range(pending):
            c, s = self.collect()
            classes.append(c)
            scores.append(s)
        n = len(scores[0]) if scores else 0
        return (np.asarray(classes, np.int64).reshape(-1),
                np.asarray(scores, np.int32).reshape(len(classes), n))

    def tick_hz(self) -> int:
        """Rate of `last_ticks` (0: the target reports no per-inference ticks). Ask before
        streaming, not with requests in flight."""
        return 0

    def link_rate(self) -> float:
        """Bytes/s the link carries (0.0: not measured)."""
        return 0.0

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class HostTarget(Target):
    """The C host runtime; runs synchronously (submit computes at once)."""

    def __init__(self, model: Model, name: str = "host"):
        super().__init__(name)
        self.model = model
        self._done: deque = deque()

    def info(self) -> TargetInfo:
        m = self.model
        return TargetInfo(self.name, m.n_classes, m.input_wire_bytes, 1_000_000_000,
                          "host clock (ns, time.perf_counter_ns)")

    def load(self, blob: bytes) -> None:
        self.model = Model(blob)

    def submit(self, wire: bytes) -> None:
        self._done.append(bytes(wire))

    def collect(self):
        return self.model.predict_wire(self._done.popleft())

    def profile(self, wire: bytes) -> Profile:
        ticks, total = self.model.profile_wire(wire)
        info = self.info()
        return Profile(ticks, total, info.tick_hz, info.clock)

    def link_rate(self) -> float:
        return float("inf")


class BoardTarget(Target):
    """A board running the edgeq firmware, driven with up to `depth` INFER requests in flight:
    the next frame travels over the link while the board computes the current one."""

    def __init__(self, board, name: str = "board"):
        from . import protocol as P

        super().__init__(name)
        self.P = P
        self.board = board
        self._inflight: deque = deque()
        self.depth = max(1, min(2, int(board.window or 1)))

    def _clock(self, tick_hz: int) -> str:
        if self.name.startswith("qemu"):
            return (f"QEMU timer ticks at {tick_hz} Hz nominal; under -icount they count executed "
                    "instructions, not real cycles")
        return "board timer"

    def info(self) -> TargetInfo:
        i = self.board.info()
        m = i.model
        return TargetInfo(self.name, m.n_classes if m.loaded else 0, m.input_wire if m.loaded else 0,
                          int(i.tick_hz or 0), self._clock(int(i.tick_hz or 0)))

    def load(self, blob: bytes) -> None:
        self.board.load(bytes(blob))

    def submit(self, wire: bytes) -> None:
        wire, cmd = bytes(wire), self.P.CMD["INFER"]
        staged = len(wire) > self.board.max_payload
        if staged:  # larger than a frame: staged with INPUT_CHUNK, then an empty INFER runs it
            n_out, n_in = self.board.stage_input(wire)
            self.bytes_out += n_out
            self.bytes_in += n_in
        seq = self.board.send(cmd, b"" if staged else wire)
        self.bytes_out += len(self.board.inflight[seq].wire)  # the frame as the client encoded it
        # the board holds one staged input: its INFER is answered before the next input is staged
        # (a re-sent empty INFER must never run another input)
        self._inflight.append(self.board.receive(cmd, seq) if staged else seq)

    def collect(self):
        # the board client matches the reply by seq and re-sends a lost or damaged request
        item = self._inflight.popleft()
        reply = item if isinstance(item, self.P.Frame) else self.board.receive(self.P.CMD["INFER"], item)
        self.board.check(reply, "INFER")
        cls, raw, self.last_ticks = self.P.parse_infer(reply.payload)
        self.bytes_in += len(self.P.encode_frame(reply.cmd, reply.seq, reply.payload))
        return cls, np.frombuffer(raw, "<i4").astype(np.int32)

    def tick_hz(self) -> int:
        return int(self.board.info().tick_hz or 0)

    def profile(self, wire: bytes) -> Profile:
        self.infer([wire])
        prof = self.board.profile()
        return Profile(list(prof.ticks), int(prof.total), int(prof.tick_hz), self._clock(int(prof.tick_hz)))

    def link_rate(self, payload: bytes = bytes(range(128)), seconds: float = 0.4) -> float:
        """Measured bytes/s the link carries, both directions, framing included: ECHO frames of
        `payload`, `depth` in flight, the way a stream drives the board."""
        P, dev = self.P, self.board
        frame_bytes = 2 * len(P.encode_frame(P.CMD["ECHO"], 1, payload))
        n, inflight, t0 = 0, deque(), time.perf_counter()
        while time.perf_counter() - t0 < seconds or inflight:
            while len(inflight) < self.depth and time.perf_counter() - t0 < seconds:
                inflight.append(dev.send(P.CMD["ECHO"], payload))
            dev.check(dev.receive(P.CMD["ECHO"], inflight.popleft()), "ECHO")
            n += 1
        return n * frame_bytes / (time.perf_counter() - t0)

    def close(self) -> None:
        self.board.close()


class MicroTarget(Target):
    """A stock MicroPython board running edgeq_micro (put there by `edgeq flash --runtime
    micropython`), driven through the public `exec` of mpremote's raw-REPL transport: one frame
    per exec, the answer printed as one repr line (docs/micropython.md)."""

    CLOCK = "MicroPython time.ticks_ms (1 ms resolution)"

    def __init__(self, transport, name: str = "micropython"):
        from . import micro as MD

        super().__init__(name)
        self.MD = MD
        self.t = transport
        self._queue: deque = deque()
        self.layer_ms: list = []  # per-layer milliseconds of the last inference
        self._load_model()

    def _load_model(self) -> None:
        self.n_classes, self.input_wire, _free = self.MD.parse_reply(
            self.MD.run_command(self.t, self.MD.load_command()))

    @classmethod
    def open(cls, port: str, baudrate: int = 115200) -> "MicroTarget":
        try:
            from mpremote.transport_serial import SerialTransport

            t = SerialTransport(port, baudrate=baudrate)
            t.enter_raw_repl()
        except ImportError:
            raise EdgeqError("the MicroPython runtime needs mpremote: pip install 'edgeq[micro]'") from None
        except Exception as e:  # mpremote raises its own TransportError types
            raise TransportError(f"{port}: cannot reach a MicroPython REPL ({e}); check the port and "
                                 "that the board runs MicroPython") from None
        return cls(t, name=f"micropython@{port}")

    def info(self) -> TargetInfo:
        return TargetInfo(self.name, self.n_classes, self.input_wire, 1000, self.CLOCK)

    def load(self, blob: bytes) -> None:
        """Copy the blob to the board (the runtime must be there: `edgeq flash --runtime
        micropython`) and load it."""
        self.MD.put_blob(self.t, bytes(blob))
        self._load_model()

    def submit(self, wire: bytes) -> None:
        self._queue.append(bytes(wire))

    def collect(self):
        wire = self._queue.popleft()
        cmd = self.MD.infer_command(wire)
        cls, scores, self.layer_ms = self.MD.infer_wire(self.t, wire)
        self.bytes_out += len(cmd)
        self.bytes_in += 8 + 12 * len(scores)  # approximate size of the printed reply
        return cls, np.asarray(scores, np.int32)

    def profile(self, wire: bytes) -> Profile:
        self.infer([wire])
        ms = list(self.layer_ms)
        return Profile(ms, sum(ms), 1000, self.CLOCK)

    def close(self) -> None:
        try:
            self.t.exit_raw_repl()
            self.t.close()
        except Exception:  # closing a vanished port must not hide the real error
            pass
def open_target(board: str | None, port: str | None, model_path: str | None, runtime: str = "c"):
    """Resolve --board/--port/--model/--runtime into a target. `--board host` needs --model."""
    if runtime == "micropython":
        if not port:
            raise EdgeqError("--runtime micropython needs --port (the board's serial port)")
        return MicroTarget.open(port)
    if board == "host" or (board is None and port is None):
        if not model_path:
            raise EdgeqError("--board host needs --model model.eqb")
        return HostTarget(Model.from_file(model_path))
    from . import boards, protocol
    from ..format import pack

    dev = boards.connect(board, port)
    try:
        if model_path:  # the board must run this very blob, or every answer would be wrong
            blob = open(model_path, "rb").read()
            hdr = pack.read_header(blob)
            m = dev.info().model
            if not m.loaded:
                raise EdgeqError(f"{board or port} has no model loaded; run `edgeq flash {model_path} "
                                 f"--board {board or 'NAME'}` first")
            if m.crc32 != protocol.crc32(blob):
                raise EdgeqError(
                    f"{board or port} runs another model (input {m.input_shape}, {m.size} bytes) than "
                    f"{model_path} (input {(hdr['in_c'], hdr['in_h'], hdr['in_w'])}, {len(blob)} bytes); "
                    f"flash it first: `edgeq flash {model_path} --board {board or 'NAME'}`")
    except BaseException:
        dev.close()
        raise
    return BoardTarget(dev, name=board or port)
