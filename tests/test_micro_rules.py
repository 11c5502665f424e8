"""One table of rules (issue 10): the MicroPython loader (edgeq/micro/edgeq_load.py, run by
CPython) keeps its own checks, so it is tested against the C loader (eq_model_load via cffi) on
the same blobs: every blob that one accepts the other accepts, and every blob that one refuses the
other refuses with the same status code.

Blobs: the C loader regression blobs (tests/blobgen.py), the hand-made bad blobs of
tests/test_micro.py, and seeded mutations (tests/test_blob_fuzz.py's mutator: fields at 2**k
boundaries, random bytes, truncation, re-sealed so that most get past the CRC) of every packed
layer-type case.
"""

from __future__ import annotations

import random
import sys

import pytest

import blobgen
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


def _agree(name: str, blob: bytes) -> int:
    c, m = c_status(blob), micro_status(blob)
    assert c == m, f"{name}: C loader {c}, MicroPython loader {m}"
    return c


def test_regression_and_hand_made_bad_blobs_agree():
    from test_micro import _bad_blobs

    cases = [(n, b) for n, b, _ in blobgen.regression_blobs()] + [(n, b) for n, b, _ in _bad_blobs()]
    statuses = [_agree(name, blob) for name, blob in cases]
    assert all(statuses)  # all of them are bad


@pytest.mark.parametrize("seed", [1, 2])
def test_mutated_blobs_agree(seed):
    from test_blob_fuzz import _bases, _mutate

    rng = random.Random(100 + seed)
    bases = _bases()
    seen = {}
    for i in range(N_MUTANTS):
        st = _agree(f"seed {seed} mutant {i}", _mutate(rng, rng.choice(bases)))
        seen[st] = seen.get(st, 0) + 1
    # the mutations reach both outcomes and several different checks
    assert seen.get(0, 0) > 0 and len(seen) >= 5, seen
