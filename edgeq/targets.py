"""Where inference runs: the host C runtime, a board over serial, (later) a MicroPython board.

Every target answers `infer(wire) -> (class, scores)` and, for pipelining, `submit(wire)` /
`collect() -> (class, scores)` with at most `depth` requests in flight.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from .errors import EdgeqError, TransportError
from .runtime import Model


class HostTarget:
    """The C host runtime; runs synchronously (submit computes at once)."""

    name = "host"
    depth = 1

    def __init__(self, model: Model):
        self.model = model
        self._done: deque = deque()
        self.bytes_out = self.bytes_in = 0

    def submit(self, wire: bytes) -> None:
        self._done.append(bytes(wire))

    def collect(self):
        return self.model.predict_wire(self._done.popleft())

    def infer(self, wire: bytes):
        self.submit(wire)
        return self.collect()

    def profile(self, image):
        ticks, total = self.model.profile(image)
        return ticks, total, 1_000_000_000, "host clock (ns, time.perf_counter_ns)"

    def close(self) -> None:
        pass

    def link_rate(self) -> float:
        return float("inf")


class BoardTarget:
    """A board running the edgeq firmware, driven with up to `depth` INFER requests in flight:
    the next frame travels over the link while the board computes the current one."""

    depth = 2

    def __init__(self, board, name: str = "board"):
        from . import protocol as P

        self.P = P
        self.board = board
        self.name = name
        self._inflight: deque = deque()
        self.bytes_out = self.bytes_in = 0
        self.depth = max(1, min(2, int(board.window or 1)))
        self.last_ticks = 0  # board ticks of the last collected inference (INFER reply)

    def submit(self, wire: bytes) -> None:
        seq = self.board.send(self.P.CMD["INFER"], bytes(wire))
        self._inflight.append(seq)
        self.bytes_out += len(self.P.encode_frame(self.P.CMD["INFER"], seq, wire))

    def collect(self):
        # the board client matches the reply by seq and re-sends a lost or damaged request
        reply = self.board.receive(self.P.CMD["INFER"], self._inflight.popleft())
        self.board.check(reply, "INFER")
        cls, raw, self.last_ticks = self.P.parse_infer(reply.payload)
        self.bytes_in += len(self.P.encode_frame(reply.cmd, reply.seq, reply.payload))
        return cls, np.frombuffer(raw, "<i4").astype(np.int32)

    def infer(self, wire: bytes):
        return self.board.infer(wire)

    def tick_hz(self) -> int:
        """The board's tick counter rate (INFO); ask before streaming, not with requests in flight."""
        return int(self.board.info().tick_hz or 0)

    def profile(self, image_wire: bytes):
        self.board.infer(image_wire)
        prof = self.board.profile()
        return list(prof.ticks), int(prof.total), int(prof.tick_hz), "board timer"

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


class MicroTarget:
    """A stock MicroPython board running edgeq_micro (put there by `edgeq flash --runtime
    micropython`), driven through mpremote's raw-REPL transport: one frame per exec, the answer
    printed as one repr line (docs/micropython.md)."""

    depth = 1

    def __init__(self, transport, name: str = "micropython"):
        from . import micro_deploy as MD

        self.MD = MD
        self.t = transport
        self.name = name
        self._queue: deque = deque()
        self.bytes_out = self.bytes_in = 0
        self.n_classes, self.input_wire, _free = MD.parse_reply(MD._exec(transport, MD.load_command()))

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

    def submit(self, wire: bytes) -> None:
        self._queue.append(bytes(wire))

    def collect(self):
        wire = self._queue.popleft()
        cmd = self.MD.infer_command(wire)
        cls, scores = self.MD.infer_remote(self.t, None, wire=wire)
        self.bytes_out += len(cmd)
        self.bytes_in += 8 + 12 * len(scores)  # approximate size of the printed reply
        return cls, np.asarray(scores, np.int32)

    def infer(self, wire: bytes):
        self.submit(wire)
        return self.collect()

    def profile(self, wire: bytes):
        self.infer(wire)
        ms = list(getattr(self.t, "_edgeq_layer_ms", []))
        return ms, sum(ms), 1000, "MicroPython time.ticks_ms (1 ms resolution)"

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
    from . import boards, pack, protocol

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
