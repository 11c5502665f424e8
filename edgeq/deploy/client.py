"""Talk to a board running the edgeq firmware over a serial link (docs/protocol.md).

    from edgeq.deploy.client import Board
    with Board("socket://127.0.0.1:4321") as b:       # or "/dev/ttyACM0", "loop://", a pty path
        b.hello()                                     # version handshake (done on open)
        print(b.info())                               # board, versions, memory, loaded model
        b.load(open("model.eqb", "rb").read())        # upload into the RAM model buffer
        cls, scores = b.infer(wire_bytes)             # one inference (wire input, blob-format.md;
                                                      # larger than a frame: staged in chunks)
        prof = b.profile()                            # per-layer ticks of that inference

Every read has a deadline: a board that does not answer in time raises BoardTimeout, never
partial data. A request whose reply is lost, arrives damaged (CRC, COBS) or that the board
reports as damaged is re-sent with the same sequence number (`retries` times). Error replies
raise BoardError with the board's status; a link that fails (port gone, board killed) raises
TransportError, one line.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import time

import numpy as np
import serial

try:
    import termios
except ImportError:  # pragma: no cover (Windows)
    termios = None

from . import protocol as P
from ..errors import BoardError, BoardTimeout, ProtocolError, TransportError


def open_serial(url: str, baudrate: int = 115200):
    """pyserial port for a device path or URL (socket://, loop://, rfc2217://...)."""
    import serial

    try:
        ser = serial.serial_for_url(url, baudrate=baudrate, timeout=0, write_timeout=5)
    except SERIAL_ERRORS + (ValueError,) as e:
        raise TransportError(f"cannot open {url}: {_open_reason(e, url)}; check --port (a serial device "
                             "such as /dev/ttyACM0, or socket://HOST:PORT)") from None
    sock = getattr(ser, "_socket", None)
    if sock is not None:  # socket:// : without TCP_NODELAY each small reply waits ~40 ms
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    faults = os.environ.get("EDGEQ_FAULTS")
    if faults:  # testing: a link that loses and damages frames (edgeq/deploy/faultlink.py)
        from .faultlink import from_env

        try:
            return from_env(ser, faults)
        except ValueError as e:
            ser.close()
            raise TransportError(str(e)) from None
    return ser


# what pyserial and the OS raise when a port fails (a pty whose board died: termios.error from
# tcdrain in flush(), OSError EIO; a socket: SerialException 'read failed: ...', OSError)
SERIAL_ERRORS = (serial.SerialException, OSError) + ((termios.error,) if termios else ())


class _Request:
    """One request in flight: its encoded frame (re-sent as is), timing and the reply once here."""

    __slots__ = ("cmd", "wire", "first", "last", "deadline", "timeout", "attempts", "damaged",
                 "reply")

    def __init__(self, cmd: int, wire: bytes, now: float, timeout: float):
        self.cmd, self.wire, self.timeout = cmd, wire, timeout
        self.first = self.last = now
        self.deadline = now + timeout
        self.attempts, self.damaged, self.reply = 1, 0, None


class Board:
    """A board speaking the edgeq serial protocol.

    port: a device path or pyserial URL, or an already open serial-like object (read, write,
    timeout, in_waiting). timeout: seconds to wait for a reply, re-sends included, counted from
    sending the request or from starting to wait for it, whichever is later (then BoardTimeout).
    retries: how many times a request is re-sent (same seq) after a lost or damaged frame.
    hello: do the version handshake on open.

    Requests may be pipelined (`send` several, then `receive` each): replies are matched to their
    request by sequence number and kept until asked for; replies to nothing in flight (late
    duplicates) and error reports with another sequence number are dropped. A request whose reply
    does not come within its re-send interval (learnt from the round trips seen, doubled on each
    re-send) is sent again with the same seq; the board answers a repeat of its last request from
    the reply it kept, and every command is idempotent (docs/protocol.md), so a repeat never hurts.
    """

    def __init__(self, port, *, timeout: float = 3.0, retries: int = 5, baudrate: int = 115200,
                 hello: bool = True):
        self.url = port if isinstance(port, str) else getattr(port, "port", None) or repr(port)
        self.ser = open_serial(port, baudrate) if isinstance(port, str) else port
        self.timeout = timeout
        self.retries = retries
        self.reader = P.FrameReader()
        self.seq = int.from_bytes(os.urandom(2), "little")  # a fresh client does not repeat
        self.pending: list = []       # frames read, not yet looked at
        self.inflight: dict = {}      # seq -> _Request, oldest first
        self.rtt: dict = {}           # cmd -> round-trip estimate (s), a slowly decaying maximum
        self.window = 1
        self.max_payload = 1024
        self.frame_errors = 0  # damaged frames seen (ours or the board's report)
        self.stats = {"requests": 0, "resent_timeout": 0, "resent_damaged": 0, "damaged_replies": 0,
                      "bad_frame_reports": 0, "stale_replies": 0}
        self.hello_info = None
        if hasattr(self.ser, "board_stats"):  # a FaultyLink reports our counters with its own
            self.ser.board_stats = self.stats
        if hello:
            try:
                self.hello()
            except BoardTimeout as e:
                self.close()
                raise BoardTimeout(f"{e}; is the edgeq firmware running at {self.url}? "
                                   "(`edgeq boards`; `edgeq flash MODEL --board NAME`)") from None
            except BaseException:
                self.close()
                raise

    # ---- plumbing ---------------------------------------------------------------------------
    def close(self) -> None:
        ser, self.ser = self.ser, None
        if ser is not None:
            try:
                ser.close()
            except SERIAL_ERRORS:
                pass  # closing a port that vanished must not hide the error that brought us here

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _lost(self, what: str, e: BaseException) -> TransportError:
        return TransportError(f"{self.url}: lost the connection to the board ({what}: {_why(e)}); "
                              "is it still running? (`edgeq boards`; restart it with `edgeq flash`)")

    def _write(self, data: bytes) -> None:
        if self.ser is None:
            raise TransportError(f"{self.url}: the board connection is closed")
        try:
            self.ser.write(data)
            flush = getattr(self.ser, "flush", None)
            if flush:
                flush()
        except SERIAL_ERRORS as e:  # incl. write timeouts
            raise self._lost("write failed", e) from None

    def _read_frame(self, deadline: float):
        """Next frame (or FrameError) before `deadline` (time.monotonic); BoardTimeout otherwise."""
        while not self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BoardTimeout(f"{self.url}: no reply within {self.timeout:g} s")
            if self.ser is None:
                raise TransportError(f"{self.url}: the board connection is closed")
            try:
                n = getattr(self.ser, "in_waiting", 0)
                if not n:  # only a blocking read needs the timeout (pyserial's setter reconfigures
                    self.ser.timeout = min(left, 0.5)  # a posix port: tcgetattr + tcsetattr)
                    n = 1
                data = self.ser.read(n)
            except SERIAL_ERRORS as e:
                raise self._lost("read failed", e) from None
            if data:
                self.pending.extend(self.reader.feed(data))
        return self.pending.pop(0)

    def _next_seq(self) -> int:
        self.seq = self.seq % 0xFFFF + 1  # 1..65535: seq 0 in a bad-frame report means unreadable
        while self.seq in self.inflight:
            self.seq = self.seq % 0xFFFF + 1
        return self.seq

    def send(self, cmd: int, payload: bytes = b"", seq: int | None = None,
             version: int = P.PROTOCOL_VERSION, timeout: float | None = None) -> int:
        """Send one request frame and keep it in flight (re-sent by `receive` while its reply is
        missing); returns its sequence number."""
        payload = bytes(payload)
        if self.hello_info is not None and len(payload) > self.max_payload:
            raise ProtocolError(f"{self.url}: a {P.cmd_name(cmd)} payload of {len(payload)} bytes is "
                                f"more than the board accepts ({self.max_payload} bytes)")
        seq = self._next_seq() if seq is None else seq & 0xFFFF
        now = time.monotonic()
        for old in [s for s, r in self.inflight.items() if now > r.deadline + r.timeout]:
            del self.inflight[old]  # abandoned by its caller
        wire = P.encode_frame(cmd, seq, payload, version)
        self._write(wire)
        self.inflight[seq] = _Request(cmd, wire, now, self.timeout if timeout is None else timeout)
        self.stats["requests"] += 1
        return seq

    def _rto(self, r: _Request) -> float:
        """How long to wait for r's reply before sending it again."""
        est = self.rtt.get(r.cmd)
        base = r.timeout / 4 if est is None else 3 * est + 0.05
        return min(max(base, 0.05) * 2 ** (r.attempts - 1), max(r.timeout / 2, 0.05))

    def _resend(self, r: _Request, why: str) -> None:
        if r.attempts > self.retries or r.reply is not None:
            return
        r.attempts += 1
        r.last = time.monotonic()
        self.stats[why] += 1
        self._write(r.wire)

    def _unanswered(self) -> list:
        return [r for r in self.inflight.values() if r.reply is None]

    def _handle(self, f) -> None:
        """Sort one incoming frame: a reply in flight is kept; damage triggers re-sends."""
        if isinstance(f, P.FrameError):  # a reply (or several, delimiter lost) damaged on the way
            self.frame_errors += 1
            self.stats["damaged_replies"] += 1
            for r in self._unanswered():
                r.damaged += 1
                self._resend(r, "resent_damaged")
            return
        if f.cmd == P.CMD_ERROR:  # the board could not decode a frame: ours, if the seq says so
            self.frame_errors += 1
            self.stats["bad_frame_reports"] += 1
            r = self.inflight.get(f.seq)
            if f.seq == 0:  # unreadable seq: the oldest request still waiting is the likely one
                r = next(iter(self._unanswered()), None)
            if r is not None and r.reply is None:
                r.damaged += 1
                self._resend(r, "resent_damaged")
            return
        r = self.inflight.get(f.seq)
        if r is None or r.reply is not None or f.cmd != (r.cmd | P.REPLY_BIT):
            self.stats["stale_replies"] += 1  # a late duplicate or an answer to an abandoned request
            return
        r.reply = f
        took = time.monotonic() - r.first
        est = self.rtt.get(r.cmd)
        if r.attempts == 1 or est is None or took > est:  # re-sent: an upper bound only
            self.rtt[r.cmd] = took if est is None else max(took, 0.9 * est)

    def receive(self, cmd: int, seq: int, timeout: float | None = None) -> P.Frame:
        """The reply to request (cmd, seq) sent with `send`, re-sending it (and other requests in
        flight) while replies are missing. BoardTimeout if none comes within the request's
        timeout; ProtocolError if only damaged frames came."""
        r = self.inflight.get(seq)
        if r is None or r.cmd != cmd:
            raise ProtocolError(f"{self.url}: no {P.cmd_name(cmd)} request {seq} in flight")
        if timeout is not None:
            r.timeout = timeout
        # `timeout` counts from sending, or from starting to wait if that is later (a pipelined
        # request may have queued behind others on the board)
        r.deadline = max(r.first + r.timeout, time.monotonic() + r.timeout)
        name = P.cmd_name(cmd)
        while r.reply is None:
            now = time.monotonic()
            if now >= r.deadline or (r.attempts > self.retries and r.damaged >= r.attempts):
                del self.inflight[seq]
                if r.damaged:
                    raise ProtocolError(f"{self.url}: {name}: no intact reply ({r.damaged} damaged "
                                        f"frames or reports, after {r.attempts - 1} retries)")
                raise BoardTimeout(f"{self.url}: {name}: no reply within {r.timeout:g} s "
                                   f"(after {r.attempts - 1} retries)")
            wake = r.deadline
            for q in self._unanswered():
                if q.attempts <= self.retries:
                    due = q.last + self._rto(q)
                    if due <= now:
                        self._resend(q, "resent_timeout")
                        due = q.last + self._rto(q)
                    wake = min(wake, due)
            try:
                self._handle(self._read_frame(wake))
            except BoardTimeout:
                continue
        del self.inflight[seq]
        return r.reply

    def request(self, cmd: int, payload: bytes = b"", timeout: float | None = None,
                check: bool = True) -> P.Frame:
        """Send a request and wait for its reply (re-sending it as `receive` does).
        check: raise BoardError if the reply's status is not OK."""
        reply = self.receive(cmd, self.send(cmd, payload, timeout=timeout))
        if check:
            self.check(reply, P.cmd_name(cmd))
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
        if len(blob) >= P.spec.HEADER_SIZE and blob.startswith(P.spec.BLOB_MAGIC):
            # an input this firmware cannot take: say so before uploading
            h = P.fields("HEADER", blob)
            self._check_input_size(P.spec.wire_bytes(h["pre_mode"], h["in_c"] * h["in_h"] * h["in_w"]))
        self.request(P.CMD["LOAD_BEGIN"], P.LOAD_BEGIN.pack(total, crc))
        size = min(chunk or self.max_payload, self.max_payload) - P.CHUNK_HEAD.size
        self._send_chunks(P.CMD["LOAD_CHUNK"], P.CHUNK_HEAD.pack, blob, size, progress)
        reply = self.request(P.CMD["LOAD_END"], timeout=max(self.timeout, 10.0))
        summary = P.ModelSummary.parse(reply.payload, P.MODEL_REPLY_OFFSET)
        if summary.crc32 != crc or summary.size != total:
            raise ProtocolError(f"{self.url}: board holds a blob of {summary.size} B, CRC "
                                f"{summary.crc32:08x}; sent {total} B, CRC {crc:08x}")
        return summary

    def _send_chunks(self, cmd: int, head, data: bytes, size: int, progress=None,
                     resync: bool = False) -> tuple:
        """Send `data` as head(offset) + up to `size` bytes per request (LOAD_CHUNK, INPUT_CHUNK),
        `window` at a time; the board answers how many bytes it holds from offset 0 (NEXT), or
        ERR_SEQUENCE with where to resume after a lost chunk (go-back-N). A board that reports
        holding fewer bytes than acknowledged dropped what it held: an error, or with `resync`
        (INPUT_CHUNK: the first chunk names the input, so chunks that overtake a lost first one are
        told 0) the next round resumes from what it holds. Returns the bytes of the request and
        reply frames (re-sends not counted)."""
        total, acked, stuck, n_out, n_in = len(data), 0, 0, 0, 0
        # a window of full frames queues behind itself on a slow link (QEMU's UARTs take ~10 KB/s):
        # at least 10 s, so re-sends (at most every timeout / 2) do not pile onto the queue
        chunk_timeout = max(self.timeout, 10.0)
        name = P.cmd_name(cmd)
        while acked < total:
            off, sent = acked, []
            for _ in range(self.window):
                if off >= total:
                    break
                part = data[off:off + size]
                sent.append(self.send(cmd, head(off) + part, timeout=chunk_timeout))
                n_out += len(self.inflight[sent[-1]].wire)
                off += len(part)
            progressed, behind = False, []
            for seq in sent:  # receive re-sends a lost or damaged chunk itself
                r = self.receive(cmd, seq)
                n_in += len(P.encode_frame(r.cmd, r.seq, r.payload))
                st = r.status
                if st not in (P.OK, P.STATUS["ERR_SEQUENCE"]) or len(r.payload) < P.NEXT.size:
                    self.check(r, name)
                nxt = P.fields("NEXT_REPLY", r.payload)["next"]
                if st == P.STATUS["ERR_SEQUENCE"] and nxt < acked:
                    if not resync and nxt == 0:
                        self.check(r, name)  # the board dropped what it held (reset? another client?)
                    behind.append(nxt)
                if nxt > acked:
                    acked, progressed = nxt, True
            if not progressed and behind:
                acked = max(behind)
            if progress:
                progress(acked, total)
            stuck = 0 if progressed else stuck + 1
            if stuck > self.retries:
                raise ProtocolError(f"{self.url}: {name} stuck at byte {acked} of {total}")
        return n_out, n_in

    def _check_input_size(self, n: int) -> None:
        """An input of n bytes needs INPUT_CHUNK when it is larger than one frame: firmware
        without it (CAP_INPUT_CHUNK clear) gets one line instead of a refusal later."""
        h = self.hello_info
        if h is not None and n > self.max_payload and not h.caps & P.CAP_INPUT_CHUNK:
            raise BoardError(
                f"{self.url}: the model's input is {n} bytes, more than one frame ({self.max_payload} "
                f"bytes), and this firmware (v{h.fw_version[0]}.{h.fw_version[1]}) cannot take larger "
                "inputs in chunks (no INPUT_CHUNK): rebuild and flash the firmware of this edgeq "
                "(`edgeq flash MODEL --board NAME`)")

    def stage_input(self, wire: bytes) -> tuple:
        """Put a wire input larger than one frame into the board's input buffer with INPUT_CHUNK
        (each chunk names the input by its size and CRC; the board checks the CRC once it holds
        every byte); `infer` then runs it with an empty INFER. Returns (bytes sent, bytes received)
        in frames."""
        wire = bytes(wire)
        self._check_input_size(len(wire))
        total, crc = len(wire), P.crc32(wire)
        return self._send_chunks(P.CMD["INPUT_CHUNK"], lambda off: P.INPUT_HEAD.pack(off, total, crc),
                                 wire, self.max_payload - P.INPUT_HEAD.size, resync=True)

    def _drain(self, quiet: float) -> None:
        """Discard replies until the line has been quiet for `quiet` seconds; forget what is in
        flight."""
        self.pending.clear()
        self.inflight.clear()
        end = time.monotonic() + quiet
        while time.monotonic() < end:
            try:
                self._read_frame(end)
                end = time.monotonic() + quiet
            except BoardTimeout:
                break
            self.pending.clear()

    def infer(self, wire: bytes, timeout: float | None = None) -> tuple:
        """One inference on a wire-format input -> (class, scores int32 array). An input larger
        than one frame is staged first (`stage_input`) and run by an INFER without payload."""
        wire = bytes(wire)
        if len(wire) > self.max_payload:
            self.stage_input(wire)
            wire = b""
        cls, raw, ticks = P.parse_infer(self.request(P.CMD["INFER"], wire, timeout).payload)
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
            "ERR_FRAME": f"; the board accepts payloads of at most {detail} bytes",
            "ERR_PROTOCOL": f": the board speaks protocol v{detail}, this host "
                            f"v{P.PROTOCOL_VERSION}; flash the firmware that matches this edgeq "
                            "(`edgeq flash`)",
        }
        name = next((k for k, (v, _) in P.spec.STATUS.items() if v == status), "")
        msg += hints.get(name, f" (detail {detail})")
    return msg


def _open_reason(e: BaseException, url: str) -> str:
    """Why a port did not open, once (pyserial nests the OS error inside its own message)."""
    code = getattr(e, "errno", None) or next((a for a in getattr(e, "args", ()) if isinstance(a, int)), None)
    text = str(e)
    if code == errno.ENOENT or "No such file or directory" in text:
        return "no such device"
    if code == errno.ENOTTY or "Inappropriate ioctl" in text:
        return "not a serial device"
    if code == errno.EACCES or "Permission denied" in text:
        return "permission denied (is your user in the dialout group?)"
    text = re.sub(r"^(\[Errno -?\d+\] )?[Cc]ould not open port " + re.escape(url) + ": ", "", text)
    return re.sub(r"^\[Errno -?\d+\] ", "", text)


def _why(e: BaseException) -> str:
    """The reason inside a serial exception, without pyserial's own 'read failed: ' prefix."""
    msg = str(e.args[-1] if termios and isinstance(e, termios.error) and e.args else e).strip()
    msg = re.sub(r"^((read|write) failed: |\[Errno -?\d+\] )+", "", msg)
    return msg or type(e).__name__
