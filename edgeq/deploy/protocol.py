"""Wire protocol between the host and a board (docs/protocol.md), host side: COBS, CRC, frames,
payload codecs. No I/O here: `edgeq.deploy.client.Board` does the talking.

A frame before COBS is ``header (FRAME record in edgeq/spec.py) + payload + crc32``, the CRC
(zlib's) covering header and payload; on the wire it is COBS-encoded and ends with one 0x00.
Every reply payload starts with a status byte (STATUS in edgeq/spec.py); an error reply carries
``status u8 + detail u32``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from .. import spec
from ..errors import ProtocolError

PROTOCOL_VERSION = spec.PROTOCOL_VERSION
MAX_PAYLOAD = spec.FRAME_MAX_PAYLOAD
HEADER = struct.Struct(spec.fmt(spec.FRAME))
CRC = struct.Struct("<I")
DELIM = bytes([spec.FRAME_DELIM])
REPLY_BIT = spec.REPLY_BIT
CMD_ERROR = spec.CMD_ERROR
CMD = {k: v for k, (v, _) in spec.CMD.items()}
STATUS = {k: v for k, (v, _) in spec.STATUS.items()}
OK = STATUS["OK"]

# capability bits (HELLO/INFO caps) and model sources: spec.CAP / spec.SRC, as the firmware has them
CAP_PROFILE, CAP_FLASH_MODEL, CAP_MODEL, CAP_INPUT_CHUNK = (
    spec.value(spec.CAP, k) for k in ("PROFILE", "FLASH_MODEL", "MODEL", "INPUT_CHUNK"))
SOURCES = {v: k.lower() for k, (v, _) in spec.SRC.items()}  # {0: "none", 1: "flash", 2: "ram"}


def crc32(data: bytes, crc: int = 0) -> int:
    """The frame and blob CRC: CRC-32/IEEE exactly as zlib.crc32 (and eq_crc32 in C)."""
    return zlib.crc32(data, crc) & 0xFFFFFFFF


class FrameError(ProtocolError):
    """A frame could not be decoded (COBS, length or CRC): worth retrying."""


def status_text(status: int) -> str:
    for name, (v, desc) in spec.STATUS.items():
        if v == status:
            return f"{desc} ({name})"
    return f"unknown status {status}"


# ---- COBS -----------------------------------------------------------------------------------
def cobs_encode(data: bytes) -> bytes:
    """COBS-encode (no delimiter appended). The output contains no zero byte."""
    out = bytearray()
    data = bytes(data)
    start, n = 0, len(data)
    while True:
        end = data.find(b"\x00", start, min(start + 254, n))
        if end < 0:
            end = min(start + 254, n)
        run = end - start
        out.append(run + 1)
        out += data[start:end]
        start = end
        if run == 254:
            if start == n:
                return bytes(out)
            continue
        if start >= n:
            return bytes(out)
        start += 1  # the zero this block stands for
        if start == n:
            out.append(1)
            return bytes(out)


def cobs_decode(enc: bytes) -> bytes:
    """Inverse of cobs_encode; raises FrameError on malformed input."""
    out = bytearray()
    i, n = 0, len(enc)
    while i < n:
        code = enc[i]
        i += 1
        if code == 0 or i + code - 1 > n:
            raise FrameError("bad COBS block")
        block = enc[i:i + code - 1]
        if 0 in block:
            raise FrameError("zero byte inside a COBS frame")
        out += block
        i += code - 1
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


# ---- frames ---------------------------------------------------------------------------------
@dataclass
class Frame:
    cmd: int
    seq: int
    payload: bytes = b""
    version: int = PROTOCOL_VERSION

    @property
    def status(self) -> int:
        """First payload byte of a reply (its STATUS)."""
        if not self.payload:
            raise ProtocolError(f"reply to {cmd_name(self.cmd)} has an empty payload")
        return self.payload[0]


def cmd_name(cmd: int) -> str:
    base = cmd & ~REPLY_BIT if cmd != CMD_ERROR else cmd
    for k, v in CMD.items():
        if v == base:
            return k
    return "ERROR" if cmd == CMD_ERROR else f"0x{cmd:02x}"


def frame_bytes(cmd: int, seq: int, payload: bytes = b"", version: int = PROTOCOL_VERSION) -> bytes:
    """The raw frame (header + payload + CRC), before COBS."""
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes does not fit the 16-bit length field")
    raw = HEADER.pack(version, cmd, seq & 0xFFFF, len(payload)) + bytes(payload)
    return raw + CRC.pack(crc32(raw))


def encode_frame(cmd: int, seq: int, payload: bytes = b"", version: int = PROTOCOL_VERSION) -> bytes:
    """What goes on the wire: a leading 0x00 (flushes any half frame the receiver holds), the
    COBS-encoded frame, the 0x00 delimiter."""
    return DELIM + cobs_encode(frame_bytes(cmd, seq, payload, version)) + DELIM


def decode_frame(enc: bytes) -> Frame:
    """One COBS-encoded frame without its delimiter -> Frame; FrameError if anything is off."""
    raw = cobs_decode(enc)
    if len(raw) < HEADER.size + CRC.size:
        raise FrameError(f"frame of {len(raw)} bytes is shorter than header + CRC")
    version, cmd, seq, length = HEADER.unpack_from(raw)
    if length != len(raw) - HEADER.size - CRC.size:
        raise FrameError(f"frame length field {length} but {len(raw) - HEADER.size - CRC.size} "
                         "payload bytes")
    (crc,) = CRC.unpack_from(raw, len(raw) - CRC.size)
    if crc != crc32(raw[:-CRC.size]):
        raise FrameError("frame CRC mismatch")
    return Frame(cmd, seq, raw[HEADER.size:-CRC.size], version)


class FrameReader:
    """Splits a byte stream into frames at 0x00; empty frames (back-to-back delimiters) are
    skipped. Oversized junk is dropped (reported as a FrameError by `frames`)."""

    def __init__(self, max_frame: int = HEADER.size + MAX_PAYLOAD + CRC.size):
        self.max_enc = max_frame + max_frame // 254 + 2
        self.buf = bytearray()

    def feed(self, data: bytes) -> list:
        """Returns a list of Frame or FrameError (in order)."""
        out = []
        self.buf += data
        while True:
            i = self.buf.find(0)
            if i < 0:
                if len(self.buf) > self.max_enc:
                    out.append(FrameError(f"{len(self.buf)} bytes without a frame delimiter"))
                    self.buf.clear()
                break
            chunk = bytes(self.buf[:i])
            del self.buf[:i + 1]
            if not chunk:
                continue
            try:
                out.append(decode_frame(chunk))
            except FrameError as e:
                out.append(e)
        return out


# ---- payloads -------------------------------------------------------------------------------
# Layouts are the records of edgeq/spec.py (the firmware writes the same fields at the offsets
# generated from them into eq_spec.h); docs/protocol.md describes them.
def _record(name: str) -> struct.Struct:
    return struct.Struct(spec.fmt(spec.RECORDS[name]))


HELLO = _record("HELLO_REPLY")             # status, proto, window, caps, max_payload, fw_version
INFO_FIXED = _record("INFO_REPLY")         # HELLO fields, versions, clocks, memory, counters, summary
SUMMARY = _record("MODEL_SUMMARY")         # 36 bytes, see ModelSummary
MODEL_REPLY = _record("MODEL_REPLY")       # status + summary (LOAD_END, RESET)
INFER_HEAD = _record("INFER_REPLY")        # status, 0, cls, n, 0, ticks; scores i32[n] follow
PROFILE_HEAD = _record("PROFILE_REPLY")    # status, 0, n, total, tick_hz; ticks u32[n] follow
NEXT = _record("NEXT_REPLY")               # status, next offset (LOAD_BEGIN/CHUNK replies)
ERROR = _record("ERROR_REPLY")             # status, detail
LOAD_BEGIN = _record("LOAD_BEGIN_REQ")     # total size, crc32 of the whole blob
CHUNK_HEAD = _record("LOAD_CHUNK_REQ")     # offset; the data follow
INPUT_HEAD = _record("INPUT_CHUNK_REQ")    # offset, total, crc32 of the whole input; the data follow
SUMMARY_OFFSET = spec.offsets(spec.INFO_REPLY)["model"]      # the summary inside INFO
MODEL_REPLY_OFFSET = spec.offsets(spec.MODEL_REPLY)["model"]  # ... inside LOAD_END/RESET replies


def fields(name: str, p: bytes, off: int = 0) -> dict:
    """Unpack record `name` of edgeq/spec.py at p[off:] into {field: value}."""
    rec = spec.RECORDS[name]
    return dict(zip((f for f, _, _ in rec), struct.unpack_from(spec.fmt(rec), p, off)))


@dataclass
class Hello:
    protocol: int
    window: int
    caps: int
    max_payload: int
    fw_version: tuple

    @classmethod
    def parse(cls, p: bytes) -> Hello:
        _need(p, HELLO.size, "HELLO")
        f = fields("HELLO_REPLY", p)
        fw = f["fw_version"]
        return cls(f["proto"], max(1, f["window"]), f["caps"], f["max_payload"], (fw >> 8, fw & 0xFF))


@dataclass
class ModelSummary:
    source: str           # "none", "flash" (found in the flash model region at boot), "ram" (LOAD)
    pre_mode: int = 0
    n_layers: int = 0
    size: int = 0         # blob bytes
    crc32: int = 0        # zlib CRC of the whole blob, computed by the board
    model_hash: bytes = b""
    n_classes: int = 0
    input_shape: tuple = (0, 0, 0)  # (C, H, W)
    input_wire: int = 0   # bytes of one INFER payload
    arena_need: int = 0

    @classmethod
    def parse(cls, p: bytes, off: int = 0) -> ModelSummary:
        """MODEL_SUMMARY at p[off:] (INFO: SUMMARY_OFFSET; LOAD_END/RESET: MODEL_REPLY_OFFSET)."""
        _need(p, off + SUMMARY.size, "model summary")
        f = fields("MODEL_SUMMARY", p, off)
        if f["source"] == 0:
            return cls("none")
        return cls(SOURCES.get(f["source"], f"?{f['source']}"), f["pre_mode"], f["n_layers"], f["size"],
                   f["crc32"], f["model_hash"], f["n_classes"], (f["in_c"], f["in_h"], f["in_w"]),
                   f["input_wire"], f["arena_need"])

    @property
    def loaded(self) -> bool:
        return self.source != "none"


@dataclass
class Info(Hello):  # INFO starts with the HELLO reply (spec.py)
    blob_version: tuple
    cpu_hz: int
    tick_hz: int
    model_buf: int        # bytes of the RAM upload buffer
    arena: int            # bytes of runtime scratch
    flash_model: int      # bytes of the flash model region (0: none)
    frames_ok: int
    frames_bad: int
    rx_overruns: int
    model: ModelSummary
    board: str

    @classmethod
    def parse(cls, p: bytes) -> Info:
        _need(p, INFO_FIXED.size, "INFO")
        f = fields("INFO_REPLY", p)
        model = ModelSummary.parse(p, SUMMARY_OFFSET)
        board = p[INFO_FIXED.size:].decode("utf-8", "replace")
        return cls(*vars(Hello.parse(p)).values(),
                   (f["blob_major"], f["blob_minor"]), f["cpu_hz"], f["tick_hz"], f["model_buf"],
                   f["arena"], f["flash_model"], f["frames_ok"], f["frames_bad"], f["rx_overruns"],
                   model, board)


@dataclass
class Profile:
    ticks: list           # per layer, board ticks
    total: int            # whole inference (preprocessing included)
    tick_hz: int
    layers: list = field(default_factory=list)  # filled by callers that know the layer names

    def seconds(self) -> list:
        return [t / self.tick_hz for t in self.ticks] if self.tick_hz else []

    @classmethod
    def parse(cls, p: bytes) -> Profile:
        _need(p, PROFILE_HEAD.size, "PROFILE")
        f = fields("PROFILE_REPLY", p)
        n, total, hz = f["n"], f["total"], f["tick_hz"]
        _need(p, PROFILE_HEAD.size + 4 * n, "PROFILE")
        ticks = list(struct.unpack_from(f"<{n}I", p, PROFILE_HEAD.size))
        return cls(ticks, total, hz)


def parse_infer(p: bytes):
    """INFER reply -> (cls, scores int32 list, ticks)."""
    _need(p, INFER_HEAD.size, "INFER")
    f = fields("INFER_REPLY", p)
    cls, n, ticks = f["cls"], f["n"], f["ticks"]
    _need(p, INFER_HEAD.size + 4 * n, "INFER")
    if n and cls >= n:
        raise ProtocolError(f"INFER reply: class {cls} outside {n} scores")
    return cls, p[INFER_HEAD.size:INFER_HEAD.size + 4 * n], ticks


def _need(p: bytes, n: int, what: str) -> None:
    if len(p) < n:
        raise ProtocolError(f"{what} reply of {len(p)} bytes, expected at least {n}")
