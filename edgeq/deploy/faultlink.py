"""A faulty serial link for testing the client: wraps a real port (pyserial or any object with
read/write/timeout/in_waiting) and damages whole frames in both directions, seeded.

    from edgeq.faultlink import FaultyLink
    link = FaultyLink(open_serial(url), rate=0.01, seed=1)    # 1 % of frames each way
    with Board(link) as b: ...
    print(link.report())     # frames seen and faults injected, per direction and kind

Frames are cut at the 0x00 delimiter (docs/protocol.md). With probability `rate` a frame gets one
fault, drawn uniformly from `kinds`:

  lost        the frame and its delimiter vanish
  truncated   the frame is cut short at a random byte (its delimiter stays)
  duplicated  the frame is delivered twice
  bitflip     one random bit of the frame flips (a flip to 0x00 splits it in two)
  garbage     1..64 random bytes (zeros included) arrive just before the frame
  delimiter   the delimiters after the frame are lost: it runs into the next frame

`EDGEQ_FAULTS=rate=0.01,seed=1[,kinds=lost+bitflip][,report=PATH]` in the environment makes
`edgeq.deploy.client.open_serial` wrap every port it opens (so the CLI can be run over a faulty link);
with report=PATH the counts are written there as JSON when the port is closed.
"""

from __future__ import annotations

import json
import random

KINDS = ("lost", "truncated", "duplicated", "bitflip", "garbage", "delimiter")
DELIM = 0


class _Direction:
    def __init__(self, name: str):
        self.name = name
        self.buf = bytearray()      # bytes of a frame not yet complete
        self.eat_delims = False     # a 'delimiter' fault: drop the zeros up to the next frame
        self.frames = 0
        self.faults = {k: 0 for k in KINDS}


class FaultyLink:
    def __init__(self, ser, rate: float = 0.01, seed: int = 0, kinds=KINDS, directions=("tx", "rx"),
                 report_path: str | None = None):
        bad = [k for k in kinds if k not in KINDS]
        if bad or not kinds:
            raise ValueError(f"unknown fault kinds {bad}; choose from {', '.join(KINDS)}")
        self.ser = ser
        self.rate = float(rate)
        self.kinds = tuple(kinds)
        self.directions = tuple(directions)
        self.rng = random.Random(seed)
        self.seed = seed
        self.port = getattr(ser, "port", None) or "faulty"
        self.tx, self.rx = _Direction("tx"), _Direction("rx")
        self._ready = bytearray()   # received bytes released to the reader
        self.report_path = report_path
        self.board_stats = None     # filled by whoever wants the client's counters in the report

    # ---- the fault model -----------------------------------------------------------------------
    def _pass(self, d: _Direction, data: bytes) -> bytes:
        """Complete frames of `data` (plus what d holds), faulted; keeps an incomplete tail."""
        d.buf += data
        out = bytearray()
        while True:
            i = d.buf.find(DELIM)
            if i < 0:
                break
            body = bytes(d.buf[:i])
            del d.buf[:i + 1]
            if not body:  # an empty frame: a bare delimiter
                if not d.eat_delims:
                    out.append(DELIM)
                continue
            d.eat_delims = False
            d.frames += 1
            kind = None
            if d.name in self.directions and self.rng.random() < self.rate:
                kind = self.rng.choice(self.kinds)
                d.faults[kind] += 1
            out += self._fault(d, kind, body)
        return bytes(out)

    def _fault(self, d: _Direction, kind, body: bytes) -> bytes:
        rng = self.rng
        if kind is None:
            return body + b"\0"
        if kind == "lost":
            return b""
        if kind == "truncated":
            return body[:rng.randrange(len(body))] + b"\0"
        if kind == "duplicated":
            return (body + b"\0") * 2
        if kind == "bitflip":
            b = bytearray(body)
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
            return bytes(b) + b"\0"
        if kind == "garbage":
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 65)))
            return junk + body + b"\0"
        d.eat_delims = True  # "delimiter"
        return body

    # ---- serial-like interface -----------------------------------------------------------------
    @property
    def timeout(self):
        return self.ser.timeout

    @timeout.setter
    def timeout(self, v):
        self.ser.timeout = v

    @property
    def in_waiting(self) -> int:
        return len(self._ready) or getattr(self.ser, "in_waiting", 0)

    def write(self, data) -> int:
        out = self._pass(self.tx, bytes(data))
        if out:
            self.ser.write(out)
        return len(data)

    def flush(self) -> None:
        flush = getattr(self.ser, "flush", None)
        if flush:
            flush()

    def read(self, n: int = 1) -> bytes:
        if not self._ready:
            data = self.ser.read(max(n, getattr(self.ser, "in_waiting", 0) or 1))
            if data:
                self._ready += self._pass(self.rx, data)
        out = bytes(self._ready[:n])
        del self._ready[:n]
        return out

    def close(self) -> None:
        try:
            self.ser.close()
        finally:
            if self.report_path:
                with open(self.report_path, "w") as f:
                    json.dump(self.report(), f, indent=1)

    def report(self) -> dict:
        out = {"rate": self.rate, "seed": self.seed,
               **{d.name: {"frames": d.frames, "faults": dict(d.faults),
                           "faulted": sum(d.faults.values())} for d in (self.tx, self.rx)}}
        if self.board_stats is not None:
            out["client"] = dict(self.board_stats)
        return out


def from_env(ser, spec: str) -> FaultyLink:
    """FaultyLink from an EDGEQ_FAULTS value: rate=0.01,seed=1,kinds=lost+bitflip,report=PATH."""
    kw: dict = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, _, val = part.partition("=")
        if key == "rate":
            kw["rate"] = float(val)
        elif key == "seed":
            kw["seed"] = int(val)
        elif key == "kinds":
            kw["kinds"] = tuple(val.split("+"))
        elif key == "report":
            kw["report_path"] = val
        else:
            raise ValueError(f"EDGEQ_FAULTS: unknown key {key!r} (rate, seed, kinds, report)")
    return FaultyLink(ser, **kw)
