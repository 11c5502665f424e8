# edgeq MicroPython runtime: loads an edgeq blob (docs/blob-format.md) and runs it with integers
# only, bit-identical to the C runtime.  Runs unchanged on MicroPython (>= 1.20) and CPython.
#
#   import edgeq_micro
#   m = edgeq_micro.Model(open("model.eqb", "rb").read())
#   cls = m.predict(pixels)          # pixels: bytes-like uint8, CHW, the blob's input shape
#   scores = m.scores(pixels)        # list of ints (n_classes)
#   cls = m.predict(wire, wire=True) # wire format (packed bits for THRESH inputs)
#   m.layer_ms                       # per-layer time of the last inference (ms; time.ticks_ms)
#
# Memory: the blob buffer is kept and read in place (memoryview / struct.unpack_from); weights are
# streamed one row at a time, never copied as whole tensors.  Sequential blobs: two activation
# buffers (ping-pong) of the largest activation, allocated once; DAG blobs (blob 1.1): one arena
# with every value at the offset the C loader plans (I32 values are lists, dropped after their
# last reader).
#
# Three modules (all must be on the board, next to edgeq_spec.py): this one (the public API),
# edgeq_load (CRC/popcount helpers, errors, the validating loader) and edgeq_ops (kernels and
# executor); edgeq.deploy.micro.RUNTIME_FILES lists them for deploy and the tests.

import edgeq_spec as S
from edgeq_load import (BlobError, InputError, Loader, blob_crc, crc32, crc32_py,  # noqa: F401
                        popcount, _I32)
from edgeq_ops import Ops


class Model(Loader, Ops):
    """A validated edgeq blob, ready to run.

    buf: bytes-like blob (kept, read in place).  check_crc=False skips the CRC (never do that
    with an untrusted blob); native_crc=False forces the pure-Python CRC."""

    def __init__(self, buf, check_crc=True, native_crc=True):
        self.buf = buf
        self.mv = memoryview(buf)
        self.layer_ms = []
        self.total_ms = 0
        self.probe = None  # optional callable, run after every output pixel and layer (memory probes)
        self._load(check_crc, native_crc)

    # ---------------------------------------------------------------------------- public API
    def metadata(self):
        """The blob's metadata as a str (JSON); parse with json.loads."""
        return bytes(self.mv[self.meta_off:self.meta_off + self.meta_size]).decode()

    def predict(self, pixels, wire=False):
        """Class index (first maximum of the scores)."""
        return argmax(self.scores(pixels, wire))

    def predict_scores(self, pixels, wire=False):
        """(class, scores) in one call."""
        s = self.scores(pixels, wire)
        return argmax(s), s

    def scores(self, pixels, wire=False):
        """Integer scores (list of n_classes ints) for one input.

        pixels: raw uint8 pixels, CHW, the blob's input shape (in_c*in_h*in_w bytes); or with
        wire=True the wire format (THRESH: packed bits LSB-first, else raw pixels)."""
        return self._flatten(self._execute(pixels, wire))

    def layer_activation(self, pixels, n_run, wire=False):
        """Run only the first n_run layers and return the raw activation (bytes for B1/U8 in the
        C layout, list of ints for I32) -- for debugging against the C runtime's act_out."""
        act = self._execute(pixels, wire, n_run)
        if n_run == 0:
            return bytes(act[0:S.act_bytes(self.in_enc, self.in_h, self.in_w, self.in_c)])
        L = self.layers[n_run - 1]
        if L.out_enc == _I32:
            return list(act)
        return bytes(act[0:S.act_bytes(L.out_enc, L.out_h, L.out_w, L.out_c)])


def argmax(scores):
    """First index of the maximum."""
    best = 0
    bv = scores[0]
    for i in range(1, len(scores)):
        if scores[i] > bv:
            bv = scores[i]
            best = i
    return best
