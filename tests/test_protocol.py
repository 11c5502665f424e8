"""Host side of the serial protocol without hardware: COBS, CRC, framing, and the Board client
against a fake board (retries on damaged frames, deadlines, stale replies, go-back-N upload)."""

from __future__ import annotations

import random
import struct
import time
import zlib

import numpy as np
import pytest

from edgeq.deploy import protocol as P
from edgeq.format.bits import wire_input
from edgeq import spec
from edgeq.deploy.client import Board
from edgeq.errors import BoardError, BoardTimeout, ProtocolError, TransportError

CASES = [b"", b"\x00", b"\x00\x00", b"\x11\x22\x00\x33", b"\x11\x00\x00\x00", bytes(range(1, 255)),
         bytes(range(1, 256)), bytes(range(256)), b"\x01" * 254 + b"\x00", b"\x01" * 508,
         b"\x00" * 600, bytes(range(256)) * 3]


@pytest.mark.parametrize("data", CASES, ids=lambda d: f"{len(d)}B")
def test_cobs_roundtrip_and_no_zeros(data):
    enc = P.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert P.cobs_decode(enc) == data


def test_cobs_known_vectors():
    # vectors from the COBS paper / Wikipedia
    assert P.cobs_encode(b"\x00") == b"\x01\x01"
    assert P.cobs_encode(b"\x00\x00") == b"\x01\x01\x01"
    assert P.cobs_encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    assert P.cobs_encode(b"\x11\x22\x33\x44") == b"\x05\x11\x22\x33\x44"
    assert P.cobs_encode(b"\x11\x00\x00\x00") == b"\x02\x11\x01\x01\x01"
    assert P.cobs_encode(bytes(range(1, 255))) == b"\xff" + bytes(range(1, 255))
    assert P.cobs_encode(bytes(range(1, 256))) == b"\xff" + bytes(range(1, 255)) + b"\x02\xff"
    assert P.cobs_encode(bytes(range(255))) == b"\x01\xff" + bytes(range(1, 255))


def test_cobs_random_roundtrip():
    rng = random.Random(1)
    for _ in range(300):
        n = rng.randrange(0, 1200)
        data = bytes(rng.choice([0, 0, 1, 7, 255, rng.randrange(256)]) for _ in range(n))
        assert P.cobs_decode(P.cobs_encode(data)) == data


@pytest.mark.parametrize("bad", [b"\x00", b"\x05\x11", b"\x03\x11\x00"])
def test_cobs_rejects_malformed(bad):
    with pytest.raises(P.FrameError):
        P.cobs_decode(bad)


def test_crc_is_zlib():
    for data in (b"", b"123456789", bytes(range(256)) * 5):
        assert P.crc32(data) == zlib.crc32(data)
    assert P.crc32(b"123456789") == 0xCBF43926  # the CRC-32/IEEE check value


def test_frame_layout_follows_spec():
    wire = P.encode_frame(P.CMD["ECHO"], 0x1234, b"\x00hi")
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    raw = P.cobs_decode(wire[1:-1])
    off = spec.offsets(spec.FRAME)
    assert raw[off["version"]] == spec.PROTOCOL_VERSION
    assert raw[off["cmd"]] == spec.value(spec.CMD, "ECHO")
    assert struct.unpack_from("<H", raw, off["seq"])[0] == 0x1234
    assert struct.unpack_from("<H", raw, off["length"])[0] == 3
    assert raw[spec.FRAME_HEADER_SIZE:-4] == b"\x00hi"
    assert struct.unpack_from("<I", raw, len(raw) - 4)[0] == zlib.crc32(raw[:-4])
    f = P.decode_frame(wire[1:-1])
    assert (f.cmd, f.seq, f.payload, f.version) == (P.CMD["ECHO"], 0x1234, b"\x00hi", 1)


def test_c_firmware_uses_the_payload_offsets_of_spec(tmp_path):
    """Reply/request payloads are records of edgeq/spec.py: compile a C program that prints the
    offsets and sizes eq_app.c writes with (EQ_<RECORD>_<FIELD> from eq_spec.h, seen through the
    firmware's own includes) and compare with spec.py and with the structs protocol.py parses."""
    import shutil
    import subprocess
    from pathlib import Path

    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    root = Path(__file__).resolve().parent.parent
    lines = ["#include <stdio.h>", '#include "eq_spec.h"', '#include "eq_app.h"', "int main(void){"]
    expect = []
    for rname in spec.PROTOCOL_RECORDS:
        rec = spec.RECORDS[rname]
        lines.append(f'printf("%u\\n", (unsigned)EQ_{rname}_SIZE_BYTES);')
        expect.append(spec.size(rec))
        for f, off in spec.offsets(rec).items():
            lines.append(f'printf("%u\\n", (unsigned)EQ_{rname}_{f.upper()});')
            expect.append(off)
    lines.append("return 0;}")
    src = tmp_path / "offsets.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "offsets"
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", f"-I{root / 'firmware' / 'include'}",
                    f"-I{root / 'firmware' / 'app'}", str(src), "-o", str(exe)], check=True)
    got = [int(x) for x in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    assert got == expect
    # the host parses the very same records
    assert P.HELLO.format == spec.fmt(spec.HELLO_REPLY) and P.INFO_FIXED.format == spec.fmt(spec.INFO_REPLY)
    assert P.SUMMARY.size == spec.MODEL_SUMMARY_SIZE == 36 and P.MODEL_REPLY_OFFSET == 1
    for name, st in (("INFER_REPLY", P.INFER_HEAD), ("PROFILE_REPLY", P.PROFILE_HEAD), ("NEXT_REPLY", P.NEXT),
                     ("ERROR_REPLY", P.ERROR), ("LOAD_BEGIN_REQ", P.LOAD_BEGIN), ("LOAD_CHUNK_REQ", P.CHUNK_HEAD)):
        assert st.format == spec.fmt(spec.RECORDS[name]), name
    # and the firmware writes every (non-reserved) field through its generated offset, no literals
    app = (root / "firmware" / "app" / "eq_app.c").read_text()
    for rname in spec.PROTOCOL_RECORDS:
        for f, _, _ in spec.RECORDS[rname]:
            if not f.startswith("reserved"):
                assert f"EQ_{rname}_{f.upper()}" in app, f"eq_app.c does not use EQ_{rname}_{f.upper()}"


def test_payload_records_roundtrip():
    summ = P.SUMMARY.pack(2, 1, 3, 1000, 0xDEADBEEF, b"abcdefgh", 10, 1, 28, 28, 98, 4096)
    info = P.INFO_FIXED.pack(0, 1, 3, 7, 4096, 0x0102, 1, 0, 25_000_000, 25_000_000, 1 << 20, 1 << 19, 1 << 21,
                             5, 1, 0, summ) + b"qemu-mps2-an386"
    i = P.Info.parse(info)
    assert (i.window, i.caps, i.max_payload, i.fw_version, i.tick_hz, i.board) == \
        (3, 7, 4096, (1, 2), 25_000_000, "qemu-mps2-an386")
    assert i.model.source == "ram" and i.model.crc32 == 0xDEADBEEF and i.model.input_shape == (1, 28, 28)
    m = P.ModelSummary.parse(P.MODEL_REPLY.pack(0, summ), P.MODEL_REPLY_OFFSET)
    assert m == i.model
    prof = P.Profile.parse(P.PROFILE_HEAD.pack(0, 0, 2, 30, 1000) + struct.pack("<2I", 10, 15))
    assert (prof.ticks, prof.total, prof.tick_hz) == ([10, 15], 30, 1000)
    cls, raw, ticks = P.parse_infer(P.INFER_HEAD.pack(0, 0, 1, 2, 0, 77) + struct.pack("<2i", -5, 9))
    assert (cls, np.frombuffer(raw, "<i4").tolist(), ticks) == (1, [-5, 9], 77)


def test_decode_frame_detects_every_single_bit_flip():
    wire = P.encode_frame(P.CMD["INFER"], 7, bytes(range(98)))
    enc = wire[1:-1]
    for i in range(len(enc)):
        for bit in range(8):
            bad = bytearray(enc)
            bad[i] ^= 1 << bit
            if 0 in bad:
                continue  # a flip to zero splits the frame: the reader sees two short frames
            with pytest.raises(P.FrameError):
                P.decode_frame(bytes(bad))


def test_frame_reader_resyncs_after_garbage():
    r = P.FrameReader()
    good = P.encode_frame(P.CMD["HELLO"], 1, b"")
    out = r.feed(b"\x13\x37garbage" + good[:5])
    out += r.feed(good[5:] + P.encode_frame(P.CMD["INFO"], 2))
    frames = [f for f in out if isinstance(f, P.Frame)]
    errors = [f for f in out if isinstance(f, P.FrameError)]
    assert [f.seq for f in frames] == [1, 2] and len(errors) == 1


def test_frame_reader_drops_oversized_junk():
    r = P.FrameReader(max_frame=100)
    out = r.feed(b"\x05" * 1000)
    assert out and isinstance(out[0], P.FrameError)
    assert [f.seq for f in r.feed(P.encode_frame(1, 9)) if isinstance(f, P.Frame)] == [9]


def test_wire_input_thresh_packs_lsb_first():
    px = np.zeros((1, 28, 28), np.uint8)
    px[0, 0, 0] = 200   # element 0 -> bit 0 of byte 0
    px[0, 0, 9] = 128   # element 9 -> bit 1 of byte 1 (>= threshold)
    px[0, 0, 10] = 127  # below the threshold
    w = wire_input(px, spec.value(spec.PRE, "THRESH"), 128)
    assert len(w) == 98 and w[0] == 1 and w[1] == 2 and sum(w) == 3
    assert wire_input(px, spec.value(spec.PRE, "RAW"), 0) == px.tobytes()


# ---- a fake board behind a fake serial port ------------------------------------------------
class FakeBoard:
    """Python stand-in for the firmware: enough of the protocol to exercise the client.
    Fault injection: corrupt_replies (flip a bit in the next N replies), drop_replies,
    report_bad (answer the next N requests with CMD_ERROR), stale (send an old reply first)."""

    def __init__(self, window=2, max_payload=256):
        self.window, self.max_payload = window, max_payload
        self.reader = P.FrameReader()
        self.out = bytearray()
        self.corrupt_replies = self.drop_replies = self.report_bad = 0
        self.stale = False
        self.requests = []
        self.buf, self.next, self.total, self.crc = bytearray(), 0, 0, 0
        self.lose_chunk_at = None  # drop this chunk once (simulates a line error)
        self.timeout = 0
        self.port = "fake://"

    # serial-like interface
    @property
    def in_waiting(self):
        return len(self.out)

    def write(self, data):
        for f in self.reader.feed(bytes(data)):
            if isinstance(f, P.Frame):
                self.requests.append(f)
                self.handle(f)
            else:
                self.reply(P.CMD_ERROR, 0, bytes([P.STATUS["ERR_FRAME"]]) + b"\0\0\0\0")
        return len(data)

    def read(self, n=1):
        if not self.out:
            time.sleep(min(self.timeout or 0, 0.01))
            return b""
        data = bytes(self.out[:n])
        del self.out[:n]
        return data

    def close(self):
        pass

    def reply(self, cmd, seq, payload):
        if self.drop_replies:
            self.drop_replies -= 1
            return
        wire = bytearray(P.encode_frame(cmd, seq, payload))
        if self.corrupt_replies:
            self.corrupt_replies -= 1
            wire[len(wire) // 2] ^= 0x10
            if wire[len(wire) // 2] == 0:
                wire[len(wire) // 2] = 0x55
        self.out += wire

    def handle(self, f):
        if self.report_bad:
            self.report_bad -= 1
            self.reply(P.CMD_ERROR, f.seq, bytes([P.STATUS["ERR_FRAME"]]) + b"\0\0\0\0")
            return
        if self.stale:
            self.stale = False
            self.reply(f.cmd | P.REPLY_BIT, (f.seq - 1) & 0xFFFF, b"\x00stale")
        r = f.cmd | P.REPLY_BIT
        if f.cmd == P.CMD["HELLO"]:
            self.reply(r, f.seq, P.HELLO.pack(0, 1, self.window, 1, self.max_payload, 0x0100))
        elif f.cmd == P.CMD["ECHO"]:
            self.reply(r, f.seq, b"\x00" + f.payload)
        elif f.cmd == P.CMD["INFER"]:
            scores = np.arange(10, dtype="<i4") * (f.payload[0] + 1)
            self.reply(r, f.seq, P.INFER_HEAD.pack(0, 0, 9, 10, 0, 123) + scores.tobytes())
        elif f.cmd == P.CMD["LOAD_BEGIN"]:
            self.total, self.crc = P.LOAD_BEGIN.unpack(f.payload)
            self.buf, self.next = bytearray(self.total), 0
            self.reply(r, f.seq, P.NEXT.pack(0, 0))
        elif f.cmd == P.CMD["LOAD_CHUNK"]:
            (off,) = P.CHUNK_HEAD.unpack_from(f.payload)
            data = f.payload[4:]
            if self.lose_chunk_at == off:
                self.lose_chunk_at = None
                self.reply(P.CMD_ERROR, 0, bytes([P.STATUS["ERR_FRAME"]]) + b"\0\0\0\0")
                return
            if off > self.next:
                self.reply(r, f.seq, P.NEXT.pack(P.STATUS["ERR_SEQUENCE"], self.next))
                return
            self.buf[off:off + len(data)] = data
            self.next = max(self.next, off + len(data))
            self.reply(r, f.seq, P.NEXT.pack(0, self.next))
        elif f.cmd == P.CMD["LOAD_END"]:
            if P.crc32(bytes(self.buf)) != self.crc:
                self.reply(r, f.seq, P.ERROR.pack(P.STATUS["ERR_CRC"], 0))
                return
            summ = P.SUMMARY.pack(2, 1, 3, self.total, self.crc, b"h" * 8, 10, 1, 28, 28, 98, 100)
            self.reply(r, f.seq, b"\x00" + summ)
        else:
            self.reply(r, f.seq, P.ERROR.pack(P.STATUS["ERR_UNKNOWN_CMD"], 0))


def test_board_hello_echo_infer():
    fake = FakeBoard()
    with Board(fake, timeout=0.5) as b:
        assert b.window == 2 and b.max_payload == 256
        assert b.echo(b"\x00\x01\x00abc") == b"\x00\x01\x00abc"
        cls, scores = b.infer(bytes([2]) + bytes(97))
        assert cls == 9 and scores.dtype == np.int32 and list(scores) == [3 * i for i in range(10)]


def test_board_retries_damaged_replies_and_reports():
    fake = FakeBoard()
    b = Board(fake, timeout=0.5, retries=3)
    fake.corrupt_replies = 2
    assert b.echo(b"x") == b"x"
    fake.report_bad = 3
    assert b.echo(b"y") == b"y"
    fake.corrupt_replies = 10
    with pytest.raises(ProtocolError, match="retries"):
        b.echo(b"z")
    fake.corrupt_replies = 0
    assert b.echo(b"ok") == b"ok"  # stale replies from the failed exchange are skipped


def test_board_skips_stale_replies():
    fake = FakeBoard()
    b = Board(fake, timeout=0.5)
    fake.stale = True
    assert b.echo(b"fresh") == b"fresh"


def test_board_timeout_is_typed_and_never_partial():
    fake = FakeBoard()
    b = Board(fake, timeout=0.2)
    fake.drop_replies = 1000
    t = time.monotonic()
    with pytest.raises(BoardTimeout, match="no reply within"):
        b.echo(b"lost")
    assert time.monotonic() - t < 1.0
    assert isinstance(BoardTimeout("x"), TransportError)


def test_board_resends_after_a_lost_reply_with_the_same_seq():
    fake = FakeBoard()
    b = Board(fake, timeout=1.0)
    fake.drop_replies = 2
    assert b.echo(b"again") == b"again"
    echoes = [f for f in fake.requests if f.cmd == P.CMD["ECHO"]]
    assert len(echoes) == 3 and len({f.seq for f in echoes}) == 1
    assert b.stats["resent_timeout"] == 2


def test_error_report_with_another_seq_is_not_ours():
    fake = FakeBoard()
    b = Board(fake, timeout=0.5)
    other = (b.seq + 7) % 0xFFFF + 1
    fake.out += P.encode_frame(P.CMD_ERROR, other, P.ERROR.pack(P.STATUS["ERR_FRAME"], 0))
    fake.out += P.encode_frame(P.CMD["ECHO"] | P.REPLY_BIT, other, b"\x00not ours")
    assert b.echo(b"mine") == b"mine"
    assert len([f for f in fake.requests if f.cmd == P.CMD["ECHO"]]) == 1  # nothing re-sent
    assert b.stats["stale_replies"] == 1


def test_pipelined_replies_are_matched_by_seq():
    fake = FakeBoard()
    b = Board(fake, timeout=1.0)
    fake.drop_replies = 1  # the first reply is lost, the second arrives first
    s1 = b.send(P.CMD["ECHO"], b"one")
    s2 = b.send(P.CMD["ECHO"], b"two")
    assert b.receive(P.CMD["ECHO"], s1).payload == b"\x00one"
    assert b.receive(P.CMD["ECHO"], s2).payload == b"\x00two"
    assert not b.inflight


def test_board_error_status_is_typed():
    fake = FakeBoard()
    b = Board(fake, timeout=0.5)
    with pytest.raises(BoardError, match="unknown command") as e:
        b.request(0x42)
    assert e.value.status == P.STATUS["ERR_UNKNOWN_CMD"]


@pytest.mark.parametrize("window", [1, 3])
def test_board_upload_go_back_n(window):
    blob = bytes(random.Random(2).randrange(256) for _ in range(3000))
    fake = FakeBoard(window=window, max_payload=200)
    b = Board(fake, timeout=0.3)
    fake.lose_chunk_at = 196 * 4  # the fifth chunk is lost once: later ones get ERR_SEQUENCE
    seen = []
    summary = b.load(blob, progress=lambda done, total: seen.append(done))
    assert bytes(fake.buf) == blob and summary.crc32 == zlib.crc32(blob) and summary.source == "ram"
    assert seen[-1] == len(blob) and seen == sorted(seen)
    chunks = [f for f in fake.requests if f.cmd == P.CMD["LOAD_CHUNK"]]
    assert max(len(f.payload) for f in chunks) <= 200


def test_open_bad_port_is_transport_error():
    with pytest.raises(TransportError, match="cannot open"):
        Board("/dev/does-not-exist-edgeq", timeout=0.1)


def test_loop_url_times_out_cleanly():
    # loop:// echoes our own request back: it is not a reply, so the read must time out
    with pytest.raises(BoardTimeout, match="is the edgeq firmware running at loop://"):
        Board("loop://", timeout=0.2)
