"""One table of rules (issue 10): the MicroPython loader (edgeq/micro/edgeq_load.py, run by
CPython) keeps its own checks, so it is tested against the C loader (eq_model_load via cffi) on
the same blobs: every blob that one accepts the other accepts, and every blob that one refuses the
other refuses with the same status code.

Blobs: the C loader regression blobs and the blob 1.1 rule blobs (tests/blobgen.py), the
hand-made bad blobs of tests/test_micro.py, and seeded mutations (tests/test_blob_fuzz.py's
mutator: fields at 2**k boundaries, random bytes, truncation, re-sealed so that most get past the
CRC) of every packed layer-type case and of DAG blobs. Blobs that use 1.1 features are compared
only when this build's C loader reads blob 1.1 (c_reads_1_1).
"""

from __future__ import annotations

import random
import struct
import sys

import pytest

import blobgen
from edgeq import spec
from edgeq.format import pack
from edgeq.native.runtime import native

sys.path.insert(0, "edgeq/micro")  # as on the board: edgeq_micro imports edgeq_spec directly
import edgeq_micro  # noqa: E402

N_MUTANTS = 600  # per seed


def c_status(blob: bytes) -> int:
    """eq_model_load's status for `blob` (8-byte aligned copy, as the runtimes load it)."""
    ffi, lib = native().ffi, native().lib
    buf = ffi.new("uint64_t[]", (len(blob) + 7) // 8 or 1)
    ffi.memmove(buf, blob, len(blob))
    return lib.eq_model_load(ffi.new("eq_model_t *"), ffi.cast("uint8_t *", buf), len(blob))


def micro_status(blob: bytes) -> int:
    """0 when edgeq_micro loads `blob`, else its BlobError status (any other exception fails)."""
    try:
        edgeq_micro.Model(blob)
    except edgeq_micro.BlobError as e:
        assert str(e) and "\n" not in str(e)
        return e.status
    return 0


_NEW_OPS = {spec.value(spec.OP, o) for o in ("AVGPOOL", "ADD", "CONCAT")}
_LAY = spec.offsets(spec.LAYER)


def uses_1_1(blob: bytes) -> bool:
    """True when a 1.0 and a 1.1 loader may answer differently: version_minor > 1 (a 1.0 loader
    ignores the minor), a new op, the REQUANT stage or a non-zero src0/src1/groups/stride_w/pad_w
    in a layer record inside the blob."""
    if len(blob) < spec.HEADER_SIZE or blobgen._hdr(blob, "version_minor") > 1:
        return len(blob) >= spec.HEADER_SIZE
    n, off = blobgen._hdr(blob, "n_layers"), blobgen._hdr(blob, "layer_table_off")
    for i in range(min(n, 4096)):
        o = off + i * spec.LAYER_SIZE
        if o + spec.LAYER_SIZE > len(blob):
            break
        op, stage = blob[o + _LAY["op"]], blob[o + _LAY["out_stage"]]
        if op in _NEW_OPS or stage == spec.value(spec.OUT, "REQUANT") \
                or any(blob[o + _LAY["src0"]:o + spec.LAYER_SIZE]):
            return True
    return False


def c_reads_1_1() -> bool:
    """Whether this build's C loader implements blob 1.1 (a two-layer graph with an ADD of the
    input to itself loads); until it does, only blobs without 1.1 features are compared."""
    return c_status(_add_blob()) == 0


def _add_blob() -> bytes:
    m = struct.pack("<2i", 1, 1)
    ts = [blobgen.tensor(m, "I32", (2, 1)), blobgen.tensor(struct.pack("<i", 1), "I32", (1,)),
          blobgen.tensor(struct.pack("<i", 0), "I32", (1,))]
    add = blobgen.layer("ADD", "U8", "I32", (2, 2, 1), (2, 2, 1), "AFFINE", t_weight=0, t_thr=1, t_aux=2)
    add.update(src0=1, src1=1)
    blob = bytearray(blobgen.build([add], ts, (1, 2, 2), "RAW", 4))
    struct.pack_into("<H", blob, spec.offsets(spec.HEADER)["version_minor"], 1)
    return pack.reseal(blob)


def _agree(name: str, blob: bytes) -> int:
    if not C_1_1 and uses_1_1(blob):
        return -1  # the C loader of this build predates blob 1.1
    c, m = c_status(blob), micro_status(blob)
    assert c == m, f"{name}: C loader {c}, MicroPython loader {m}"
    return c


C_1_1 = c_reads_1_1()


def test_micro_reads_the_add_probe():
    """The probe blob is valid 1.1: the MicroPython loader takes it and adds the input to itself."""
    m = edgeq_micro.Model(_add_blob())
    assert m.dag and m.scores(bytes([1, 2, 3, 250])) == [2, 4, 6, 500]


def test_regression_and_hand_made_bad_blobs_agree():
    from test_micro import _bad_blobs

    cases = [(n, b) for n, b, _ in blobgen.regression_blobs() + blobgen.dag_regression_blobs()]
    cases += [(n, b) for n, b, _ in _bad_blobs()]
    statuses = [_agree(name, blob) for name, blob in cases]
    assert all(statuses)  # all of them are bad (-1: 1.1 blobs skipped, C predates 1.1)


@pytest.mark.parametrize("seed", [1, 2])
def test_mutated_blobs_agree(seed):
    from test_blob_fuzz import _bases, _mutate

    from edgeq.reference.testing import random_dag

    rng = random.Random(100 + seed)
    bases = _bases() + [blobgen.dag_base_blob()] + [pack.write_blob(random_dag(s, "dag")) for s in (2, 3, 4)]
    seen = {}
    for i in range(N_MUTANTS):
        blob = _mutate(rng, rng.choice(bases))
        st = _agree(f"seed {seed} mutant {i}", blob)
        seen[st] = seen.get(st, 0) + 1
        if st == 0:  # what loads also runs (one all-zero input), without any exception
            m = edgeq_micro.Model(blob)
            if m.input_pixels <= 1 << 16 and m.arena_need <= 1 << 22:
                assert len(m.scores(bytes(m.input_pixels))) == m.n_classes, f"seed {seed} mutant {i}"
    seen.pop(-1, None)
    # the mutations reach both outcomes and several different checks
    assert seen.get(0, 0) > 0 and len(seen) >= 5, seen


def test_blob_1_0_with_1_1_fields_refused_by_all_three_loaders():
    """A blob marked 1.0 (version_minor 0) whose layers use a 1.1 feature (src0/src1, groups,
    stride_w/pad_w, AVGPOOL/ADD/CONCAT, REQUANT) is refused as ERR_VERSION by the C loader and the
    MicroPython loader, and by the Python reader with a message naming the version; the same
    blobs marked 1.1 are not refused for their version, and the 1.0 base itself loads in all three."""
    from edgeq.errors import BlobFormatError

    base = blobgen.v10_base_blob()
    assert blobgen._hdr(base, "version_minor") == 0 and not uses_1_1(base)
    assert c_status(base) == micro_status(base) == 0 and pack.read_blob(base)
    version = spec.value(spec.STATUS, "ERR_VERSION")
    cases = blobgen.v10_with_1_1_blobs()
    assert len(cases) == 10
    for name, blob, status in cases:
        assert status == version and _agree(name, blob) == version, name
        with pytest.raises(BlobFormatError, match="1.1 feature.*marked 1.0"):
            pack.read_blob(blob)
        as_1_1 = blobgen.set_field(blob, "header", 0, "version_minor", 1)
        assert _agree(name + " as 1.1", as_1_1) != version


def test_blob_1_0_with_1_1_fields_on_micropython():
    """The same blobs through edgeq_micro on the real MicroPython (WebAssembly port): ERR_VERSION."""
    from test_blob_fuzz import refused_on_micropython

    refused_on_micropython(blobgen.v10_with_1_1_blobs())
