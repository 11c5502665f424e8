"""Bit conventions, written once (docs/blob-format.md): +1 is bit 1, sign(0) = +1, LSB-first
little-endian uint32 words, every row padded to whole words with zero bits.

Pure numpy; used by the packer, the numpy references and the tests.
"""

from __future__ import annotations

import numpy as np

from .. import spec

WORD = 32


def words(n_bits: int) -> int:
    """Number of uint32 words holding n_bits."""
    return (int(n_bits) + WORD - 1) // WORD


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack 0/1 values along the last axis into uint32 words (LSB first, zero padded)."""
    bits = np.asarray(bits).astype(bool)
    n = bits.shape[-1]
    nw = words(n)
    pad = nw * WORD - n
    if pad:
        bits = np.concatenate([bits, np.zeros(bits.shape[:-1] + (pad,), bool)], axis=-1)
    by = np.packbits(bits.reshape(bits.shape[:-1] + (nw * 4, 8)), axis=-1, bitorder="little")
    return np.ascontiguousarray(by.reshape(bits.shape[:-1] + (nw * 4,))).view("<u4")


def unpack_bits(w: np.ndarray, n: int) -> np.ndarray:
    """Inverse of pack_bits: uint32 words (..., nw) -> uint8 0/1 (..., n)."""
    w = np.ascontiguousarray(np.asarray(w, dtype="<u4"))
    by = w.view(np.uint8).reshape(w.shape[:-1] + (w.shape[-1] * 4,))
    return np.unpackbits(by, axis=-1, bitorder="little")[..., :n]


def pack_signs(x: np.ndarray) -> np.ndarray:
    """Pack sign(x) along the last axis: bit 1 for x >= 0 (+1), bit 0 for x < 0 (-1)."""
    return pack_bits(np.asarray(x) >= 0)


def unpack_signs(w: np.ndarray, n: int) -> np.ndarray:
    """Packed words -> int8 +-1 values (..., n)."""
    return (unpack_bits(w, n).astype(np.int8) * 2 - 1).astype(np.int8)


def tern_planes(w: np.ndarray) -> np.ndarray:
    """Ternary weights (N, ..., C) in {-1,0,1} -> (N, 2 * prod(...) * words(C)) uint32:
    per row the sign plane (bit 1 = +1) then the nonzero plane, each tap padded to whole words."""
    w = np.asarray(w)
    n = w.shape[0]
    sign = pack_bits(w > 0).reshape(n, -1)
    nz = pack_bits(w != 0).reshape(n, -1)
    return np.ascontiguousarray(np.concatenate([sign, nz], axis=1))


def kbit_slot_bits(bits: int) -> int:
    """Storage width of a KBIT code: the smallest of 1, 2, 4, 8 that is >= bits (1..8)."""
    bits = int(bits)
    if not 1 <= bits <= 8:
        raise ValueError(f"KBIT codes need 1..8 bits, got {bits}")
    return spec.kbit_slot_bits(bits)


def kbit_row_bytes(k: int, bits: int) -> int:
    """Bytes of one packed KBIT weight row of k codes: padded to whole 32-bit words."""
    kbit_slot_bits(bits)  # checks 1 <= bits <= 8
    return spec.kbit_row_bytes(int(k), int(bits))


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """KBIT weight rows (N, K) uint8 codes < 2**bits -> bytes: each row packed LSB-first at
    kbit_slot_bits(bits) bits a code (code i at bits (i*sb) % 8 of byte i*sb // 8; codes never
    straddle bytes), zero padded to a whole number of 32-bit words."""
    codes = np.asarray(codes)
    sb = kbit_slot_bits(bits)
    if codes.ndim != 2:
        raise ValueError(f"pack_codes takes a 2-D (N, K) array, got shape {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= 1 << bits):
        raise ValueError(f"KBIT codes must be in [0, {1 << bits})")
    n, k = codes.shape
    per = 8 // sb  # codes a byte
    rb = kbit_row_bytes(k, bits)
    slots = np.zeros((n, rb * per), np.uint8)
    slots[:, :k] = codes
    slots = slots.reshape(n, rb, per) << (np.arange(per, dtype=np.uint8) * sb)
    return np.bitwise_or.reduce(slots, axis=2).astype(np.uint8).tobytes()


def unpack_codes(data: bytes, n: int, k: int, bits: int) -> np.ndarray:
    """Inverse of pack_codes -> uint8 (n, k). Raises ValueError on a wrong size, a code >= 2**bits
    or a nonzero padding bit."""
    sb = kbit_slot_bits(bits)
    per = 8 // sb
    rb = kbit_row_bytes(k, bits)
    if len(data) != n * rb:
        raise ValueError(f"{n} packed rows of {k} {bits}-bit codes take {n * rb} bytes, got {len(data)}")
    by = np.frombuffer(data, np.uint8).reshape(n, rb, 1)
    slots = ((by >> (np.arange(per, dtype=np.uint8) * sb)) & ((1 << sb) - 1)).reshape(n, rb * per)
    if slots[:, k:].any():
        raise ValueError("nonzero padding bits after the last code of a row")
    codes = np.ascontiguousarray(slots[:, :k], np.uint8)
    if codes.size and codes.max() >= 1 << bits:
        raise ValueError(f"code {int(codes.max())} >= 2**{bits}")
    return codes


def sparse_encode(w2d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Skip-zero encoding of ternary rows (N, K) -> (row_off uint32 (N+1,), nibbles uint8 (total,)).

    Nibble v: 7 = skip 7 zeros (no weight); 15 is invalid; otherwise skip v & 7 zeros, then a
    weight -1 if v & 8 else +1.
    """
    w2d = np.asarray(w2d)
    if w2d.ndim != 2 or not np.isin(w2d, (-1, 0, 1)).all():
        raise ValueError("sparse_encode takes a 2-D array of -1/0/+1")
    nib: list[int] = []
    row_off = [0]
    for row in w2d:
        p = 0
        for k in np.flatnonzero(row):
            gap = int(k) - p
            while gap >= 7:
                nib.append(7)
                gap -= 7
            nib.append(gap | (8 if row[k] < 0 else 0))
            p = int(k) + 1
        row_off.append(len(nib))
    return np.asarray(row_off, dtype="<u4"), np.asarray(nib, dtype=np.uint8)


def sparse_to_bytes(row_off: np.ndarray, nib: np.ndarray) -> bytes:
    """row_off words followed by the nibble stream, two per byte, low nibble first."""
    nib = np.asarray(nib, dtype=np.uint8)
    if len(nib) % 2:
        nib = np.append(nib, np.uint8(0))
    stream = (nib[0::2] | (nib[1::2] << 4)).astype(np.uint8)
    return np.asarray(row_off, dtype="<u4").tobytes() + stream.tobytes()


def sparse_decode(data: bytes, n: int, k: int) -> np.ndarray:
    """Inverse of sparse_to_bytes for n rows of length k -> int8 (n, k). Raises ValueError."""
    row_off = np.frombuffer(data, dtype="<u4", count=n + 1)
    stream = np.frombuffer(data, dtype=np.uint8, offset=4 * (n + 1))
    nib = np.empty(len(stream) * 2, np.uint8)
    nib[0::2] = stream & 15
    nib[1::2] = stream >> 4
    if row_off[0] != 0 or np.any(np.diff(row_off.astype(np.int64)) < 0) or row_off[-1] > len(nib):
        raise ValueError("sparse row offsets are not monotone or run past the stream")
    out = np.zeros((n, k), np.int8)
    for r in range(n):
        p = 0
        for v in nib[row_off[r]:row_off[r + 1]]:
            if v == 7:
                p += 7
                if p > k:  # a skip may end at K, never past it (as the C loader and kernel check)
                    raise ValueError(f"sparse row {r} skips past K={k}")
                continue
            if v == 15:
                raise ValueError(f"invalid nibble 15 in row {r}")
            p += int(v) & 7
            if p >= k:
                raise ValueError(f"sparse row {r} runs past K={k}")
            out[r, p] = -1 if v & 8 else 1
            p += 1
    return out


def pack_wire(pixels_chw: np.ndarray, thr: int) -> bytes:
    """Wire format of a THRESH input: bits pixel >= thr in CHW order, LSB-first bytes."""
    flat = np.asarray(pixels_chw, dtype=np.uint8).reshape(-1) >= thr
    return np.packbits(flat, bitorder="little").tobytes()


def wire_input(pixels, pre_mode: int, pre_param: int) -> bytes:
    """Raw uint8 CHW pixels -> INFER payload (docs/blob-format.md, wire input): THRESH packs
    `pixel >= pre_param` LSB-first into bytes; RAW and QUANT send the pixels."""
    import numpy as np

    px = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(-1)
    if pre_mode == spec.value(spec.PRE, "THRESH"):
        return np.packbits(px >= pre_param, bitorder="little").tobytes()
    return px.tobytes()
