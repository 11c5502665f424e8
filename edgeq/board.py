"""Talk to a board running the edgeq firmware over a serial link (docs/protocol.md).

    from edgeq.board import Board
    with Board("socket://127.0.0.1:4321") as b:       # or "/dev/ttyACM0", "loop://", a pty path
        b.hello()                                     # version handshake (done on open)
        print(b.info())                               # board, versions, memory, loaded model
        b.load(open("model.eqb", "rb").read())        # upload into the RAM model buffer
        cls, scores = b.infer(wire_bytes)             # one inference (wire input, blob-format.md)
        prof = b.profile()                            # per-layer ticks of that inference

Every read has a deadline: a board that does not answer in time raises BoardTimeout, never
partial data. Frames that arrive damaged (CRC, COBS) and requests the board reports as damaged
are retried (`retries` times). Error replies raise BoardError with the board's status.
"""

from __future__ import annotations

import socket
import time

import numpy as np
import serial

from . import protocol as P
from .errors import BoardError, BoardTimeout, ProtocolError, TransportError


def open_serial(url: str, baudrate: int = 115200):
    """pyserial port for a device path or URL (socket://, loop://, rfc2217://...)."""
    import serial

    try:
        ser = serial.serial_for_url(url, baudrate=baudrate, timeout=0, write_timeout=5)
    except (serial.SerialException, ValueError, OSError) as e:
        raise TransportError(f"cannot open {url}: {e}") from None
    sock = getattr(ser, "_socket", None)
    if sock is not None:  # socket:// : without TCP_NODELAY each small reply waits ~40 ms
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    return ser


class Board:
    """A board speaking the edgeq serial protocol.

    port: a device path or pyserial URL, or an already open serial-like object (read, write,
    timeout, in_waiting). timeout: seconds allowed for each reply. retries: how many times a
    request is re-sent after a damaged frame. hello: do the version handshake on open.
    """

    def __init__(self, port, *, timeout: float = 3.0, retries: int = 3, baudrate: int = 115200,
                 hello: bool = True):
        self.url = port if isinstance(port, str) else getattr(port, "port", None) or repr(port)
        self.ser = open_serial(port, baudrate) if isinstance(port, str) else port
        self.timeout = timeout
        self.retries = retries
        self.reader = P.FrameReader()
        self.seq = 0
        self.pending: list = []
        self.window = 1
        self.max_payload = 1024
        self.frame_errors = 0  # damaged frames seen (ours or the board's report)
        self.hello_info = None
        if hello:
            try:
                self.hello()
            except BaseException:
                self.close()
                raise

    # ---- plumbing ---------------------------------------------------------------------------
    def close(self) -> None:
        if self.ser is not None:
            try:
                self.ser.close()
            finally:
                self.ser = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self, data: bytes) -> None:
        if self.ser is None:
            raise TransportError(f"{self.url}: the board connection is closed")
        try:
            self.ser.write(data)
            flush = getattr(self.ser, "flush", None)
            if flush:
                flush()
        except (serial.SerialException, OSError) as e:  # includes write timeouts
            raise TransportError(f"{self.url}: write failed: {e}") from None

    def _read_frame(self, deadline: float):
        """Next frame (or FrameError) before `deadline` (time.monotonic); BoardTimeout otherwise."""
        while not self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BoardTimeout(f"{self.url}: no reply within {self.timeout:g} s")
            try:
                self.ser.timeout = min(left, 0.5)
                n = getattr(self.ser, "in_waiting", 0) or 1
                data = self.ser.read(n)
            except (serial.SerialException, OSError) as e:
                raise TransportError(f"{self.url}: read failed: {e}") from None
            if data:
                self.pending.extend(self.reader.feed(data))
        return self.pending.pop(0)

    def send(self, cmd: int, payload: bytes = b"", seq: int | None = None,
             version: int = P.PROTOCOL_VERSION) -> int:
        """Send one request frame; returns its sequence number."""
        if seq is None:
            self.seq = (self.seq + 1) & 0xFFFF
            seq = self.seq
        self._write(P.encode_frame(cmd, seq, payload, version))
        return seq

    def receive(self, cmd: int, seq: int, timeout: float | None = None) -> P.Frame:
        """The reply to request (cmd, seq). Stale replies (other seq) are dropped. Raises
        FrameError for a damaged frame or the board's 'bad frame' report (caller may retry)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            f = self._read_frame(deadline)
            if isinstance(f, P.FrameError):
                self.frame_errors += 1
                raise f
            if f.cmd == P.CMD_ERROR:
                self.frame_errors += 1
                raise P.FrameError(f"the board could not decode our {P.cmd_name(cmd)} frame")
            if f.seq != seq or f.cmd != (cmd | P.REPLY_BIT):
                continue  # a late reply to an earlier (retried) request
            return f

    def request(self, cmd: int, payload: bytes = b"", timeout: float | None = None,
                check: bool = True) -> P.Frame:
        """Send a request and wait for its reply, re-sending after damaged frames.
        check: raise BoardError if the reply's status is not OK."""
        name = P.cmd_name(cmd)
        self.seq = (self.seq + 1) & 0xFFFF
        seq = self.seq
        for attempt in range(self.retries + 1):
            self.send(cmd, payload, seq=seq)
            try:
                reply = self.receive(cmd, seq, timeout)
                break
            except P.FrameError as e:
                if attempt == self.retries:
                    raise ProtocolError(f"{self.url}: {name}: {e} (after {self.retries} retries)") \
                        from None
        if check:
            self.check(reply, name)
        return reply

    @staticmethod
    def check(reply: P.Frame, what: str) -> None:
        st = reply.status
        if st != P.OK:
            detail = ""
            if len(reply.payload) >= P.ERROR.size:
                detail = P.fields("ERROR_REPLY", reply.payload)["detail"]
            raise BoardError(_error_message(what, st, detail), status=st)

    # ---- commands ---------------------------------------------------------------------------
    def hello(self) -> P.Hello:
        """Version handshake; learns the board's max payload and flow-control window."""
        h = P.Hello.parse(self.request(P.CMD["HELLO"]).payload)
        if h.protocol != P.PROTOCOL_VERSION:
            raise ProtocolError(f"{self.url}: board speaks protocol v{h.protocol}, this host "
                                f"v{P.PROTOCOL_VERSION}: update the firmware (edgeq flash)")
        self.window, self.max_payload, self.hello_info = h.window, h.max_payload, h
        return h

    def info(self) -> P.Info:
        return P.Info.parse(self.request(P.CMD["INFO"]).payload)

    def echo(self, data: bytes) -> bytes:
        return self.request(P.CMD["ECHO"], bytes(data)).payload[1:]

    def reset(self) -> P.ModelSummary:
        """Drop an uploaded model and go back to the boot state (the flash model if valid)."""
        return P.ModelSummary.parse(self.request(P.CMD["RESET"]).payload, P.MODEL_REPLY_OFFSET)

    def load(self, blob: bytes, progress=None, chunk: int | None = None) -> P.ModelSummary:
        """Upload a blob into the board's RAM model buffer and make it the active model.

        Chunks go out `window` at a time (the credit the board advertised in HELLO); a lost or
        damaged chunk makes the board report where to resume (go-back-N). The board verifies
        the whole blob's CRC and validates it (eq_model_load) before using it.
        progress: optional callable(bytes_acknowledged, total)."""
        blob = bytes(blob)
        total, crc = len(blob), P.crc32(blob)
        self.request(P.CMD["LOAD_BEGIN"], P.LOAD_BEGIN.pack(total, crc))
        size = min(chunk or self.max_payload, self.max_payload) - P.CHUNK_HEAD.size
        acked, failures = 0, 0
        cmd = P.CMD["LOAD_CHUNK"]
        while acked < total:
            off, sent = acked, []
            for _ in range(self.window):
                if off >= total:
                    break
                data = blob[off:off + size]
                sent.append(self.send(cmd, P.CHUNK_HEAD.pack(off) + data))
                off += len(data)
            progressed = False
            for seq in sent:
                try:
                    r = self.receive(cmd, seq)
                except P.FrameError:
                    continue
                except BoardTimeout:
                    break
                st = r.status
                if st not in (P.OK, P.STATUS["ERR_SEQUENCE"]) or len(r.payload) < P.NEXT.size:
                    self.check(r, "LOAD_CHUNK")
                nxt = P.fields("NEXT_REPLY", r.payload)["next"]
                if st == P.STATUS["ERR_SEQUENCE"] and nxt == 0 and acked > 0:
                    self.check(r, "LOAD_CHUNK")  # the board dropped the upload (reset?)
                if nxt > acked:
                    acked, progressed = nxt, True
            if progress:
                progress(acked, total)
            if not progressed:
                failures += 1
                if failures > self.retries:
                    raise ProtocolError(f"{self.url}: upload stuck at byte {acked} of {total}")
                self._drain(0.2)
        reply = self.request(P.CMD["LOAD_END"], timeout=max(self.timeout, 10.0))
        summary = P.ModelSummary.parse(reply.payload, P.MODEL_REPLY_OFFSET)
        if summary.crc32 != crc or summary.size != total:
            raise ProtocolError(f"{self.url}: board holds a blob of {summary.size} B, CRC "
                                f"{summary.crc32:08x}; sent {total} B, CRC {crc:08x}")
        return summary

    def _drain(self, quiet: float) -> None:
        """Discard replies until the line has been quiet for `quiet` seconds."""
        self.pending.clear()
        end = time.monotonic() + quiet
        while time.monotonic() < end:
            try:
                self._read_frame(end)
                end = time.monotonic() + quiet
            except BoardTimeout:
                break
            self.pending.clear()

    def infer(self, wire: bytes, timeout: float | None = None) -> tuple:
        """One inference on a wire-format input -> (class, scores int32 array)."""
        cls, raw, ticks = P.parse_infer(self.request(P.CMD["INFER"], bytes(wire), timeout).payload)
        self.last_ticks = ticks
        return cls, np.frombuffer(raw, "<i4").astype(np.int32)

    def profile(self) -> P.Profile:
        """Per-layer ticks (board timer, Profile.tick_hz) of the last inference."""
        return P.Profile.parse(self.request(P.CMD["PROFILE"]).payload)


def _error_message(what: str, status: int, detail) -> str:
    msg = f"board refused {what}: {P.status_text(status)}"
    if detail != "" and detail:
        hints = {
            "ERR_TOO_LARGE": f"; the board's limit is {detail} bytes",
            "ERR_ARENA": f"; the model needs {detail} bytes of arena",
            "ERR_INPUT": f"; the model takes {detail} bytes",
            "ERR_SEQUENCE": f"; the board expects offset {detail}",
        }
        name = next((k for k, (v, _) in P.spec.STATUS.items() if v == status), "")
        msg += hints.get(name, f" (detail {detail})")
    return msg
