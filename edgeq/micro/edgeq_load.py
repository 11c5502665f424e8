# edgeq MicroPython runtime, load module: CRC-32 and popcount helpers, the errors, and the
# blob validator/loader (class Loader, a mixin of edgeq_micro.Model).  It mirrors eq_model_load
# (firmware/runtime/eq_runtime.c) check for check: a blob the C loader accepts loads here and one
# it rejects raises BlobError with the same status (tests/test_micro_rules.py runs both over the
# same bad blobs).  Pure MicroPython (>= 1.20) / CPython; imports only struct, array, time,
# binascii (optional) and edgeq_spec.

import struct

try:
    from array import array as _array
except ImportError:  # pragma: no cover
    _array = None

import edgeq_spec as S

_F_SRC0 = 24  # positions of src0 / src1 in a LAYER_FMT record
_F_SRC1 = 25
_ADD_M_MAX = 1 << 30  # |m0|, |m1| of an ADD layer (docs/blob-format.md)
_G_WINDOW = 2048  # bytes of one group's kh x kw window the C grouped kernel gathers (EQ_G_BUF words)

_unpack_from = struct.unpack_from
_from_bytes = int.from_bytes

# Encodings and stages bound once (module globals read from the generated spec).
_B1 = S.ENC_B1
_U8 = S.ENC_U8
_I8 = S.ENC_I8
_I16 = S.ENC_I16
_F32 = S.ENC_F32


def _f32_exact():
    """True when floats hold float32 values exactly and array('f') rounds to float32, as F32
    layers need; False on ports that keep floats in 30 bits (MICROPY_OBJ_REPR_C)."""
    if _array is None:
        return False
    x = 1.0 + 1.0 / 8388608  # 1 + 2**-23: exact in float32, lost in a 30-bit float
    f = _array("f", [x])
    return (x - 1.0) * 8388608 == 1.0 and f[0] == x


_F32_OK = _f32_exact()
_FA = _array("f", [0.0, 0.0]) if _F32_OK else None  # float32 rounding slots of the F32 kernels
_I32 = S.ENC_I32
_TERN = S.ENC_TERN
_SPARSE = S.ENC_TERN_SPARSE
_KBIT = S.ENC_KBIT
_SIGN = S.OUT_SIGN
_MULTI = S.OUT_MULTI
_AFFINE = S.OUT_AFFINE
_REQUANT = S.OUT_REQUANT


class BlobError(ValueError):
    """The blob is truncated, corrupt, of an unknown version or inconsistent.

    `status` is the spec's status code (ERR_MAGIC, ERR_CRC, ...)."""

    def __init__(self, status, detail):
        super().__init__(S.STATUS_STRINGS.get(status, "error") + ": " + detail)
        self.status = status


class InputError(ValueError):
    """The input does not match the model (wrong number of bytes)."""

    def __init__(self, detail):
        super().__init__(S.STATUS_STRINGS[S.ERR_INPUT] + ": " + detail)
        self.status = S.ERR_INPUT


# ------------------------------------------------------------------------------------------------
# CRC-32 (IEEE, zlib-compatible).  binascii/zlib when the port has them, else a 256-entry table.
_CRC_TABLE = None


def crc32_py(data, crc=0):
    """Pure-Python table CRC-32, incremental like zlib.crc32(data, crc)."""
    global _CRC_TABLE
    t = _CRC_TABLE
    if t is None:
        t = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
            t.append(c)
        _CRC_TABLE = t
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


try:
    from binascii import crc32 as _crc32_native
except ImportError:
    try:
        from zlib import crc32 as _crc32_native
    except ImportError:
        _crc32_native = None


def crc32(data, crc=0, native=True):
    if native and _crc32_native is not None:
        return _crc32_native(data, crc) & 0xFFFFFFFF
    return crc32_py(data, crc)


def blob_crc(mv, total, native=True):
    """CRC of the first `total` bytes with the CRC field taken as zero."""
    o = S.CRC_OFFSET
    c = crc32(mv[0:o], 0, native)
    c = crc32(b"\0\0\0\0", c, native)
    # in chunks so the pure-Python path never slices huge copies on small boards
    p = o + 4
    while p < total:
        q = p + 4096
        if q > total:
            q = total
        c = crc32(mv[p:q], c, native)
        p = q
    return c


# ------------------------------------------------------------------------------------------------
# Popcount of a non-negative integer below 2**(8*nbytes), without bin() or int.bit_count().
_POP_CACHE = {}


def _masks(nbytes):
    m = _POP_CACHE.get(nbytes)
    if m is not None:
        return m
    nb = (nbytes + 3) & ~3  # whole 32-bit lanes
    m55 = _from_bytes(b"\x55" * nb, "little")
    m33 = _from_bytes(b"\x33" * nb, "little")
    m0f = _from_bytes(b"\x0f" * nb, "little")
    wide = nb * 8 >= 65536  # 16-bit lanes could overflow: use 32-bit lanes
    if wide:
        m8 = _from_bytes(b"\xff\x00\xff\x00" * (nb // 4), "little")
        mlane = _from_bytes(b"\xff\xff\x00\x00" * (nb // 4), "little")
        lane = 32
    else:
        m8 = _from_bytes(b"\xff\x00" * (nb // 2), "little")
        mlane = None
        lane = 16
    folds = []
    w = nb * 8
    while w > lane:
        lanes = w // lane
        sh = ((lanes + 1) // 2) * lane
        folds.append((sh, (1 << sh) - 1))
        w = sh
    m = (m55, m33, m0f, m8, mlane, tuple(folds), (1 << lane) - 1)
    _POP_CACHE[nbytes] = m
    return m


def popcount(x, nbytes):
    """Number of 1 bits of x (0 <= x < 2**(8*nbytes))."""
    m55, m33, m0f, m8, mlane, folds, last = _masks(nbytes)
    x = x - ((x >> 1) & m55)
    x = (x & m33) + ((x >> 2) & m33)
    x = (x + (x >> 4)) & m0f
    x = (x + (x >> 8)) & m8
    if mlane is not None:
        x = (x + (x >> 16)) & mlane
    for sh, mk in folds:
        x = (x & mk) + (x >> sh)
    return x & last


def _popper(nbytes):
    """A popcount closure with its masks bound (saves a dict lookup per call)."""
    m55, m33, m0f, m8, mlane, folds, last = _masks(nbytes)
    if mlane is None:
        def pc(x):
            x = x - ((x >> 1) & m55)
            x = (x & m33) + ((x >> 2) & m33)
            x = (x + (x >> 4)) & m0f
            x = (x + (x >> 8)) & m8
            for sh, mk in folds:
                x = (x & mk) + (x >> sh)
            return x & last
    else:
        def pc(x):
            x = x - ((x >> 1) & m55)
            x = (x & m33) + ((x >> 2) & m33)
            x = (x + (x >> 4)) & m0f
            x = (x + (x >> 8)) & m8
            x = (x + (x >> 16)) & mlane
            for sh, mk in folds:
                x = (x & mk) + (x >> sh)
            return x & last
    return pc


def _cw(c):
    return (c + 31) >> 5


class _Layer:
    # plain attribute bag; one per blob layer
    pass


class Loader:
    """Validation and layer records of a blob (self.mv: memoryview of it); mixed into Model."""

    # Mirrors eq_model_load (firmware/runtime/eq_runtime.c) check for check, so a blob the C
    # runtime accepts loads here and one it rejects raises BlobError with the same status.
    def _load(self, check_crc, native_crc):
        mv = self.mv
        n = len(mv)
        if n < S.HEADER_SIZE:
            raise BlobError(S.ERR_TRUNCATED, "%d bytes, fewer than the %d-byte header"
                            % (n, S.HEADER_SIZE))
        if bytes(mv[0:4]) != S.BLOB_MAGIC:
            raise BlobError(S.ERR_MAGIC, "magic is %r, expected %r" % (bytes(mv[0:4]), S.BLOB_MAGIC))
        h = _unpack_from(S.HEADER_FMT, mv, 0)
        (_, vmaj, vmin, total, crc, hsize, flags, n_t, t_off, n_l, l_off, m_off, m_size,
         in_c, in_h, in_w, pre_mode, pre_param, n_classes, _, arena, _, _) = h
        if vmaj != S.BLOB_VERSION_MAJOR or vmin > S.BLOB_VERSION_MINOR:
            raise BlobError(S.ERR_VERSION, "blob version %d.%d, this runtime reads %d.0 to %d.%d: "
                            "upgrade edgeq_micro" % (vmaj, vmin, S.BLOB_VERSION_MAJOR,
                                                     S.BLOB_VERSION_MAJOR, S.BLOB_VERSION_MINOR))
        if total > n:
            raise BlobError(S.ERR_TRUNCATED, "header declares %d bytes, buffer has %d" % (total, n))
        if total < S.HEADER_SIZE or hsize != S.HEADER_SIZE:
            raise BlobError(S.ERR_BOUNDS, "total_size %d / header_size %d" % (total, hsize))
        if check_crc:
            got = blob_crc(mv, total, native_crc)
            if got != crc:
                raise BlobError(S.ERR_CRC, "stored 0x%08x, computed 0x%08x" % (crc, got))
        self.total_size = total
        self.version_minor = vmin
        self.flags = flags
        self.model_hash = bytes(mv[S.HEADER_MODEL_HASH:S.HEADER_MODEL_HASH + 8])
        if t_off + n_t * S.TENSOR_SIZE > total or n_t > 32767:
            raise BlobError(S.ERR_BOUNDS, "tensor table (%d entries at %d) outside the %d-byte blob"
                            % (n_t, t_off, total))
        if l_off + n_l * S.LAYER_SIZE > total or n_l < 1:
            raise BlobError(S.ERR_BOUNDS, "layer table (%d entries at %d) outside the %d-byte blob"
                            % (n_l, l_off, total))
        if m_off + m_size > total:
            raise BlobError(S.ERR_BOUNDS, "metadata [%d, %d) outside the blob" % (m_off, m_off + m_size))
        self.n_tensors, self.t_off = n_t, t_off
        self.meta_off, self.meta_size = m_off, m_size

        if in_c < 1 or in_h < 1 or in_w < 1 or n_classes < 1:
            raise BlobError(S.ERR_SHAPE, "input shape %dx%dx%d, n_classes %d"
                            % (in_c, in_h, in_w, n_classes))
        if pre_mode == S.PRE_THRESH:
            enc, levels = _B1, 2
        elif pre_mode == S.PRE_RAW:
            enc, levels = _U8, 256
        elif pre_mode == S.PRE_QUANT:
            if pre_param < 1 or pre_param > 8:
                raise BlobError(S.ERR_SHAPE, "QUANT preprocessing with %d bits" % pre_param)
            enc, levels = _U8, 1 << pre_param
        else:
            raise BlobError(S.ERR_UNSUPPORTED, "unknown preprocessing mode %d" % pre_mode)
        self.in_c, self.in_h, self.in_w = in_c, in_h, in_w
        self.pre_mode, self.pre_param = pre_mode, pre_param
        self.in_enc = enc
        self.input_pixels = in_c * in_h * in_w
        if self.input_pixels >= 0x80000000:  # like the C loader: input buffers stay below 2 GiB
            raise BlobError(S.ERR_TOO_LARGE, "input %dx%dx%d = %d pixels, the limit is 2**31 - 1"
                            % (in_c, in_h, in_w, self.input_pixels))
        self.input_wire = S.wire_bytes(pre_mode, self.input_pixels)
        self.n_classes = n_classes

        n_act = S.act_bytes(enc, in_h, in_w, in_c)
        vals = [(enc, in_h, in_w, in_c, levels)]  # value id -> (enc, h, w, c, levels)
        max_act = n_act
        acc_row = 0
        layers = []
        dag = False
        for i in range(n_l):
            f = _unpack_from(S.LAYER_FMT, mv, l_off + i * S.LAYER_SIZE)
            if f[_F_SRC0] or f[_F_SRC1]:
                dag = True
        if dag and n_l > S.MAX_DAG_LAYERS:
            raise BlobError(S.ERR_TOO_LARGE, "%d layers; a blob with skips or branches holds at most %d"
                            % (n_l, S.MAX_DAG_LAYERS))
        for i in range(n_l):
            L = self._check_layer(i, _unpack_from(S.LAYER_FMT, mv, l_off + i * S.LAYER_SIZE), vals)
            layers.append(L)
            if L.op != S.OP_MAXPOOL and L.op != S.OP_FLATTEN and L.op != S.OP_CONCAT \
                    and L.out_w * L.out_c * 4 > acc_row:
                acc_row = L.out_w * L.out_c * 4
            if L.wino:  # F32 Winograd scratch (the C loader's eq_rule_wino_f23_scratch, rounded to 8)
                ws = (S.wino_f23_scratch(L.in_c, L.out_w, L.out_c) + 7) // 8 * 8
                if ws > acc_row:
                    acc_row = ws
            vals.append((L.out_enc, L.out_h, L.out_w, L.out_c, L.out_levels))
            ab = S.act_bytes(L.out_enc, L.out_h, L.out_w, L.out_c)
            if ab > max_act:
                max_act = ab
        enc, hh, ww, cc, _ = vals[-1]
        if hh * ww * cc != n_classes:
            raise BlobError(S.ERR_SHAPE, "last layer gives %d scores, header says n_classes=%d"
                            % (hh * ww * cc, n_classes))
        self.dag = dag
        max_act = (max_act + 7) & ~7
        need = 2 * max_act + acc_row  # the C loader's bound for every blob, then a DAG's plan
        if need < 0x80000000 and dag:
            need = self._plan(layers, vals) + acc_row
        if need >= 0x80000000:
            raise BlobError(S.ERR_TOO_LARGE, "activations need %d bytes" % need)
        self.layers = layers
        self.out_enc = enc
        self.max_act = max_act
        self.arena_need = need  # what the C runtime needs (informational here)
        if dag:  # one arena, each value a memoryview at its planned offset (I32 values are lists)
            self._arena = memoryview(bytearray(self.arena_peak))
            self._buf_a = self._arena[0:n_act]
        else:  # ping-pong activation buffers (B1/U8 activations; I32 ones are lists)
            self._buf_a = bytearray(max_act)
            self._buf_b = bytearray(max_act)

    def _plan(self, layers, vals):
        """The C loader's DAG arena plan (docs/blob-format.md "Arena"): value sizes round8(act
        bytes); layer i's output at the lowest offset among 0 and the ends of the values still live
        (read by layer i or later) where it overlaps none of them.  Sets self.val_off, val_size,
        arena_peak and each layer's `frees` (values whose last reader it is); returns the peak."""
        n = len(layers)
        size = [(S.act_bytes(v[0], v[1], v[2], v[3]) + 7) & ~7 for v in vals]
        last = [v - 1 for v in range(n + 1)]  # unread: dies right after its producer
        for L in layers:
            for v in L.srcs:
                if last[v] < L.index:
                    last[v] = L.index
        last[n] = n
        off = [0] * (n + 1)
        peak = size[0]
        for i in range(n):
            live = [v for v in range(i + 1) if last[v] >= i]
            sz = size[i + 1]
            cands = sorted(set([0] + [off[v] + size[v] for v in live]))
            for o in cands:
                ok = True
                for v in live:
                    if o < off[v] + size[v] and off[v] < o + sz:
                        ok = False
                        break
                if ok:
                    off[i + 1] = o
                    break
            if off[i + 1] + sz > peak:
                peak = off[i + 1] + sz
        for L in layers:
            L.frees = tuple(v for v in set(L.srcs) if last[v] == L.index)
        self.val_off, self.val_size, self.arena_peak = off, size, peak
        return peak

    def _tensor(self, li, what, idx):
        """Tensor entry idx (offset, nbytes, enc, bits, rank, _, d0, d1, d2, d3, aux), range-checked
        like the C loader's get_tensor."""
        if idx < 0 or idx >= self.n_tensors:
            raise BlobError(S.ERR_BOUNDS, "layer %d: %s tensor index %d not in 0..%d"
                            % (li, what, idx, self.n_tensors - 1))
        t = _unpack_from(S.TENSOR_FMT, self.mv, self.t_off + idx * S.TENSOR_SIZE)
        if t[0] + t[1] > self.total_size or t[0] & 3:
            raise BlobError(S.ERR_BOUNDS, "layer %d: %s tensor %d data [%d, %d) outside the blob or "
                            "misaligned" % (li, what, idx, t[0], t[0] + t[1]))
        return t

    def _check_pad_bits(self, i, off, rows, cw, c):
        """Bits above c in the last word of every padded row must be zero (checked in chunks
        of rows with one big-integer AND)."""
        used = c & 31
        if used == 0:
            return
        rb = cw * 4
        pattern = bytes(rb - 4) + ((0xFFFFFFFF ^ ((1 << used) - 1)).to_bytes(4, "little"))
        if self._rows_hit(off, rows, rb, pattern, 256):
            raise BlobError(S.ERR_BOUNDS, "layer %d: nonzero padding bits in packed weights" % i)

    def _rows_hit(self, off, rows, rb, pattern, chunk):
        """True if any of `rows` rows of rb bytes at off has a bit set under `pattern` (rb bytes),
        tested `chunk` rows at a time with one big-integer AND."""
        mask = _from_bytes(pattern * chunk, "little")
        mv = self.mv
        r = 0
        while r < rows:
            k = rows - r
            if k < chunk:
                mask = _from_bytes(pattern * k, "little")
            else:
                k = chunk
            if _from_bytes(mv[off + r * rb:off + (r + k) * rb], "little") & mask:
                return True
            r += k
        return False

    def _check_f32(self, i, t, count, max_exp, what):
        """count float32 values of tensor t: F32, count * 4 bytes; every biased exponent <=
        127 + max_exp (finite, |x| < 2**(max_exp + 1)), or with max_exp < 0 only no NaN."""
        if t[2] != _F32 or t[1] != count * 4:
            raise BlobError(S.ERR_SHAPE, "layer %d: F32 %s: enc %d, %d bytes (expected F32, %d)"
                            % (i, what, t[2], t[1], count * 4))
        mv = self.mv
        off = t[0]
        for q in range(count):
            v = _unpack_from("<I", mv, off + 4 * q)[0]
            e = (v >> 23) & 0xFF
            if (e == 0xFF and v & 0x7FFFFF) if max_exp < 0 else e > 127 + max_exp:
                raise BlobError(S.ERR_BOUNDS, "layer %d: F32 %s value %d out of range" % (i, what, q))

    def _check_kbit(self, i, off, n, K, wb, sb, rb):
        """Packed KBIT rows: every code < 2**wb and every padding bit zero, i.e. no bit of a row
        under its forbidden-bit pattern (checked in chunks of rows with one big-integer AND)."""
        per = 8 // sb
        cm = (1 << sb) - 1
        high = cm ^ ((1 << wb) - 1)  # slot bits a code < 2**wb never sets
        full = 0
        for q in range(per):
            full |= high << (q * sb)
        pattern = bytes([full]) * (K // per)
        rem = K % per
        if rem:
            v = 0
            for q in range(per):
                v |= (high if q < rem else cm) << (q * sb)
            pattern += bytes([v])
        pattern += b"\xff" * (rb - len(pattern))
        if not _from_bytes(pattern, "little"):
            return
        if self._rows_hit(off, n, rb, pattern, 1 + 2048 // rb):
            raise BlobError(S.ERR_BOUNDS, "layer %d: KBIT weight code >= 2**%d or nonzero "
                            "padding bits" % (i, wb))

    def _check_sparse(self, i, t, n, K):
        off, nbytes, aux = t[0], t[1], t[10]
        if 4 * (n + 1) + (aux + 1) // 2 != nbytes:
            raise BlobError(S.ERR_BOUNDS, "layer %d: sparse tensor has %d bytes for %d rows and %d "
                            "nibbles" % (i, nbytes, n, aux))
        mv = self.mv
        if _unpack_from("<I", mv, off)[0] != 0 or _unpack_from("<I", mv, off + 4 * n)[0] != aux:
            raise BlobError(S.ERR_BOUNDS, "layer %d: sparse row_off must start at 0 and end at %d"
                            % (i, aux))
        base = off + 4 * (n + 1)
        for r in range(n):
            a, b = _unpack_from("<II", mv, off + 4 * r)
            if a > b or b > aux:
                raise BlobError(S.ERR_BOUNDS, "layer %d: sparse row_off[%d..%d] = %d, %d not monotone "
                                "inside %d nibbles" % (i, r, r + 1, a, b, aux))
            p = 0
            for j in range(a, b):
                v = mv[base + (j >> 1)]
                v = (v >> 4) if j & 1 else (v & 15)
                if v == 7:
                    p += 7
                    if p > K:
                        raise BlobError(S.ERR_BOUNDS, "layer %d: sparse row %d skips past K=%d" % (i, r, K))
                    continue
                if v == 15:
                    raise BlobError(S.ERR_BOUNDS, "layer %d: invalid nibble 15 in sparse row %d" % (i, r))
                p += v & 7
                if p >= K:
                    raise BlobError(S.ERR_BOUNDS, "layer %d: sparse row %d runs past K=%d" % (i, r, K))
                p += 1

    def _check_layer(self, i, f, vals):
        (op, in_enc, out_enc, stage, l_ih, l_iw, l_ic, oh, ow, oc, kh, kw, stride, pad, w_enc,
         out_bits, shift, lflags, t_w, t_lut, t_thr, t_aux, name_off, macs, src0, src1, groups, stride_w,
         pad_w) = f
        if self.version_minor < 1 and S.uses_1_1(op, stage, src0, src1, groups, stride_w, pad_w):
            raise BlobError(S.ERR_VERSION, "layer %d uses a blob 1.1 feature but the blob is marked 1.0: "
                            "re-pack it with edgeq" % i)
        if S.uses_1_2(lflags):  # layer flags (blob 1.2): only the known ones, on layers that allow them
            if self.version_minor < 2:
                raise BlobError(S.ERR_VERSION, "layer %d uses a blob 1.2 feature (layer flags) but the blob "
                                "is marked 1.%d: re-pack it with edgeq" % (i, self.version_minor))
            if lflags & ~S.LFLAG_KNOWN:
                raise BlobError(S.ERR_UNSUPPORTED, "layer %d: unknown layer flags 0x%02x" % (i, lflags))
            if not S.wino_f23_ok(op, w_enc, kh, kw, stride, stride_w, pad, pad_w, groups):
                raise BlobError(S.ERR_UNSUPPORTED, "layer %d: the F32 Winograd flag needs an F32 CONV, 3x3, "
                                "stride 1, pad 1, groups 1" % i)
        L = _Layer()
        L.wino = lflags & S.LFLAG_WINO_F23
        L.index = i
        L.op = op
        L.macs = macs
        # sources: stored v + 1, 0 = the previous layer's output; only earlier values
        s0 = src0 - 1 if src0 else i
        two = op == S.OP_ADD or op == S.OP_CONCAT
        if s0 > i or (src1 - 1 > i if two else src1 != 0) or (two and src1 == 0):
            raise BlobError(S.ERR_SHAPE, "layer %d: sources src0=%d src1=%d; a layer reads earlier values "
                            "(stored v + 1 <= %d), src1 only and always for ADD/CONCAT"
                            % (i, src0, src1, i + 1))
        if op != S.OP_CONV and groups > 1:
            raise BlobError(S.ERR_SHAPE, "layer %d: groups %d on a layer other than CONV" % (i, groups))
        if op != S.OP_CONV and op != S.OP_MAXPOOL and op != S.OP_AVGPOOL and (stride_w or pad_w):
            raise BlobError(S.ERR_SHAPE, "layer %d: stride_w %d / pad_w %d on a layer without a window"
                            % (i, stride_w, pad_w))
        enc, ih, iw, ic, levels = vals[s0]
        if in_enc != enc or (l_ih, l_iw, l_ic) != (ih, iw, ic):
            raise BlobError(S.ERR_SHAPE, "layer %d: input %dx%dx%d enc %d, its source value %d is "
                            "%dx%dx%d enc %d" % (i, l_ih, l_iw, l_ic, in_enc, s0, ih, iw, ic, enc))
        L.src0 = s0
        L.srcs = (s0,)
        L.in_enc, L.in_h, L.in_w, L.in_c = enc, ih, iw, ic
        # per-axis stride and padding: stride_w 0 = stride, pad_w 0 = pad, else pad_w - 1
        sh = stride
        sw = stride_w if stride_w else stride
        ph = pad
        pw = pad_w - 1 if pad_w else pad
        L.kh, L.kw, L.sh, L.sw, L.ph, L.pw = kh, kw, sh, sw, ph, pw
        L.out_h, L.out_w, L.out_c, L.out_enc = oh, ow, oc, out_enc
        L.w_enc = 0
        L.groups = 1
        if op == S.OP_MAXPOOL or op == S.OP_AVGPOOL:
            what = "max-pool" if op == S.OP_MAXPOOL else "average-pool"
            if kh < 1 or kw < 1 or sh < 1 or sw < 1 or ph != 0 or pw != 0 or kh > ih or kw > iw:
                raise BlobError(S.ERR_SHAPE, "layer %d: %s %dx%d stride %dx%d pad %dx%d on %dx%d input"
                                % (i, what, kh, kw, sh, sw, ph, pw, ih, iw))
            eh, ew = (ih - kh) // sh + 1, (iw - kw) // sw + 1
            if (oh, ow, oc) != (eh, ew, ic) or (op == S.OP_MAXPOOL and out_enc != enc):
                raise BlobError(S.ERR_SHAPE, "layer %d: %s output %dx%dx%d enc %d, expected "
                                "%dx%dx%d" % (i, what, oh, ow, oc, out_enc, eh, ew, ic))
            if op == S.OP_MAXPOOL:
                L.out_levels = levels
                return L
            self._check_stage(i, L, stage, out_enc, out_bits, shift, t_thr, t_aux, oc, False)
            return L
        if op == S.OP_FLATTEN:
            if out_enc != enc or oh != 1 or ow != 1 or oc != ih * iw * ic:
                raise BlobError(S.ERR_SHAPE, "layer %d: flatten output %dx%dx%d enc %d, expected 1x1x%d "
                                "enc %d" % (i, oh, ow, oc, out_enc, ih * iw * ic, enc))
            L.out_levels = levels
            return L
        if two:
            s1 = src1 - 1
            enc1, ih1, iw1, ic1, levels1 = vals[s1]
            L.src1 = s1
            L.srcs = (s0, s1)
            L.in1_enc, L.in1_c = enc1, ic1
            if op == S.OP_CONCAT:
                if (ih1, iw1, enc1) != (ih, iw, enc) or (oh, ow, oc) != (ih, iw, ic + ic1) \
                        or out_enc != enc:
                    raise BlobError(S.ERR_SHAPE, "layer %d: concat of %dx%dx%d enc %d and %dx%dx%d enc %d "
                                    "into %dx%dx%d enc %d" % (i, ih, iw, ic, enc, ih1, iw1, ic1, enc1,
                                                              oh, ow, oc, out_enc))
                L.out_levels = levels if levels > levels1 else levels1
                return L
            if (ih1, iw1, ic1) != (ih, iw, ic) or (oh, ow, oc) != (ih, iw, ic):
                raise BlobError(S.ERR_SHAPE, "layer %d: add of %dx%dx%d and %dx%dx%d into %dx%dx%d"
                                % (i, ih, iw, ic, ih1, iw1, ic1, oh, ow, oc))
            tm = self._tensor(i, "weight (m0, m1)", t_w)
            if tm[2] != _I32 or tm[4] != 2 or tm[1] != 8 * ic or tm[6] != 2 or tm[7] != ic:
                raise BlobError(S.ERR_SHAPE, "layer %d: ADD weights enc %d, %d bytes, dims %dx%d; need I32 "
                                "(2, %d)" % (i, tm[2], tm[1], tm[6], tm[7], ic))
            for v in _unpack_from("<%di" % (2 * ic), self.mv, tm[0]):
                if v > _ADD_M_MAX or v < -_ADD_M_MAX:
                    raise BlobError(S.ERR_BOUNDS, "layer %d: ADD weight %d outside +-2**30" % (i, v))
            L.w_off = tm[0]
            self._check_stage(i, L, stage, out_enc, out_bits, shift, t_thr, t_aux, oc, False)
            return L
        if op != S.OP_CONV:
            raise BlobError(S.ERR_UNSUPPORTED, "layer %d: unknown op %d" % (i, op))
        if enc != _B1 and enc != _U8:
            raise BlobError(S.ERR_UNSUPPORTED, "layer %d: CONV on an I32 activation" % i)
        kmax = kh if kh > kw else kw
        if kh < 1 or kw < 1 or sh < 1 or sw < 1 or ph >= kmax or pw >= kmax:
            raise BlobError(S.ERR_SHAPE, "layer %d: kernel %dx%d stride %dx%d pad %dx%d"
                            % (i, kh, kw, sh, sw, ph, pw))
        if ih + 2 * ph < kh or iw + 2 * pw < kw:
            raise BlobError(S.ERR_SHAPE, "layer %d: kernel %dx%d larger than the padded input"
                            % (i, kh, kw))
        eh = (ih + 2 * ph - kh) // sh + 1
        ew = (iw + 2 * pw - kw) // sw + 1
        if (oh, ow) != (eh, ew) or oc < 1:
            raise BlobError(S.ERR_SHAPE, "layer %d: output %dx%dx%d, expected %dx%dx(>=1)"
                            % (i, oh, ow, oc, eh, ew))
        g = groups if groups else 1
        if ic % g or oc % g:
            raise BlobError(S.ERR_SHAPE, "layer %d: %d groups do not divide %d input / %d output channels"
                            % (i, g, ic, oc))
        if g > 1 and kh * kw * (_cw(ic // g) * 4 if enc == _B1 else ic // g) > _G_WINDOW:
            raise BlobError(S.ERR_UNSUPPORTED, "layer %d: one group's %dx%d window of %d channels exceeds "
                            "the C runtime's %d-byte grouped-conv buffer" % (i, kh, kw, ic // g, _G_WINDOW))
        n = oc
        cg = ic // g  # input channels a group (and an output channel) reads
        K = kh * kw * cg
        cw = _cw(cg)
        L.groups = g
        L.K = K
        L.w_enc = w_enc
        amax = S.act_code_max(enc, levels)
        tw = self._tensor(i, "weight", t_w)
        if tw[2] != w_enc or tuple(tw[6:10]) != (n, kh, kw, cg):
            raise BlobError(S.ERR_SHAPE, "layer %d: weight tensor enc %d dims %r, layer needs enc %d "
                            "dims %r" % (i, tw[2], tuple(tw[6:10]), w_enc, (n, kh, kw, cg)))
        if w_enc == _B1 or w_enc == _TERN:
            planes = 1 if w_enc == _B1 else 2
            if planes * n * kh * kw * cw * 4 != tw[1]:
                raise BlobError(S.ERR_SHAPE, "layer %d: weight tensor has %d bytes, expected %d"
                                % (i, tw[1], planes * n * kh * kw * cw * 4))
            self._check_pad_bits(i, tw[0], planes * n * kh * kw, cw, cg)
            max_prod = S.weight_product_max(w_enc, amax)
        elif w_enc == _SPARSE:
            self._check_sparse(i, tw, n, K)
            max_prod = S.weight_product_max(w_enc, amax)
        elif w_enc == _I8:
            if n * K != tw[1]:
                raise BlobError(S.ERR_SHAPE, "layer %d: weight tensor has %d bytes, expected %d"
                                % (i, tw[1], n * K))
            max_prod = S.weight_product_max(w_enc, amax)
        elif w_enc == _I16:
            if 2 * n * K != tw[1]:
                raise BlobError(S.ERR_SHAPE, "layer %d: weight tensor has %d bytes, expected %d"
                                % (i, tw[1], 2 * n * K))
            max_prod = S.weight_product_max(w_enc, amax)
        elif w_enc == _F32:
            if not _F32_OK:
                raise BlobError(S.ERR_UNSUPPORTED, "layer %d: F32 layers need exact float32 arithmetic; "
                                "this MicroPython build keeps floats in 30 bits" % i)
            self._check_f32(i, tw, n * K, S.F32_MAX_EXP_WEIGHT, "weights")
            max_prod = S.weight_product_max(w_enc, amax)  # 0: float accumulators
        elif w_enc == _KBIT:
            # rows of K codes packed LSB-first at sb = 1, 2, 4 or 8 bits, padded to 32-bit words
            wb = tw[3]
            sb = S.kbit_slot_bits(wb)
            rb = S.kbit_row_bytes(K, wb)
            if n * rb != tw[1] or wb < 1 or wb > 8:
                raise BlobError(S.ERR_SHAPE, "layer %d: KBIT weights: %d bytes (expected %d), %d bits"
                                % (i, tw[1], n * rb, wb))
            lim = 1 << wb
            self._check_kbit(i, tw[0], n, K, wb, sb, rb)
            L.wsb, L.wrb = sb, rb
            tl = self._tensor(i, "lut", t_lut)
            rows, cols = tl[6], tl[7]
            if tl[2] != _I32 or tl[4] != 2 or rows != lim or cols < levels or cols > 65535 \
                    or rows * cols * 4 != tl[1]:
                raise BlobError(S.ERR_SHAPE, "layer %d: LUT enc %d rank %d is %dx%d (%d bytes); needs "
                                "I32 %dx(>=%d)" % (i, tl[2], tl[4], rows, cols, tl[1], lim, levels))
            max_prod = 0
            for v in _unpack_from("<%di" % (rows * cols), self.mv, tl[0]):
                if v < 0:
                    v = -v
                if v > max_prod:
                    max_prod = v
            L.lut_off, L.lut_cols, L.wbits = tl[0], cols, wb
        else:
            raise BlobError(S.ERR_UNSUPPORTED, "layer %d: weight encoding %d" % (i, w_enc))
        if not S.acc_fits(K, max_prod):
            raise BlobError(S.ERR_TOO_LARGE, "layer %d: int32 accumulators could overflow" % i)
        L.w_off, L.w_nbytes, L.w_aux = tw[0], tw[1], tw[10]
        L.w_rows, L.r0 = n, 0  # weight rows of the tensor; first row this record reads
        self._check_stage(i, L, stage, out_enc, out_bits, shift, t_thr, t_aux, n, w_enc == _F32)
        return L

    def _check_stage(self, i, L, stage, out_enc, out_bits, shift, t_thr, t_aux, n, fl):
        """The output stage of a CONV / AVGPOOL / ADD layer over n channels (fl: an F32 CONV,
        whose thresholds / mul / add are float32 values), in the C loader's order."""
        ta = self._tensor(i, "thr/mul", t_thr)
        tb = self._tensor(i, "flip/add", t_aux)
        L.stage = stage
        L.nthr = 1
        if stage == _SIGN or stage == _MULTI:
            if stage == _SIGN:
                if out_enc != _B1:
                    raise BlobError(S.ERR_SHAPE, "layer %d: SIGN stage must output B1" % i)
                nthr = 1
                L.out_levels = 2
            else:
                if out_enc != _U8 or out_bits < 1 or out_bits > 8:
                    raise BlobError(S.ERR_SHAPE, "layer %d: MULTI stage needs U8 output and 1..8 "
                                    "out_bits (got enc %d, %d bits)" % (i, out_enc, out_bits))
                nthr = (1 << out_bits) - 1
                L.out_levels = 1 << out_bits
            if tb[2] != _U8 or tb[1] != n:
                raise BlobError(S.ERR_SHAPE, "layer %d: flip tensor enc %d, %d bytes (expected U8, %d)"
                                % (i, tb[2], tb[1], n))
            if fl:
                self._check_f32(i, ta, n * nthr, -1, "thresholds")
            elif ta[2] != _I32 or ta[1] != n * nthr * 4:
                raise BlobError(S.ERR_SHAPE, "layer %d: thresholds enc %d, %d bytes (expected I32, %d)"
                                % (i, ta[2], ta[1], n * nthr * 4))
            L.nthr = nthr
        elif stage == _AFFINE:
            if out_enc != _I32 or shift >= 32:
                raise BlobError(S.ERR_SHAPE, "layer %d: AFFINE needs I32 output and shift < 32" % i)
            L.out_levels = 0
            if fl:
                if shift:
                    raise BlobError(S.ERR_SHAPE, "layer %d: an F32 AFFINE stage has no shift" % i)
                self._check_f32(i, ta, n, S.F32_MAX_EXP_MUL, "mul")
                self._check_f32(i, tb, n, S.F32_MAX_EXP_ADD, "add")
            else:
                self._check_i32_pair(i, ta, tb, n)
        elif stage == _REQUANT:
            if fl:
                raise BlobError(S.ERR_UNSUPPORTED, "layer %d: REQUANT on an F32 layer" % i)
            if out_enc != _U8 or out_bits < 1 or out_bits > 8 or shift >= 64:
                raise BlobError(S.ERR_SHAPE, "layer %d: REQUANT needs U8 output, 1..8 out_bits and "
                                "shift < 64 (got enc %d, %d bits, shift %d)" % (i, out_enc, out_bits, shift))
            L.out_levels = 1 << out_bits
            self._check_i32_pair(i, ta, tb, n)
        else:
            raise BlobError(S.ERR_UNSUPPORTED, "layer %d: unknown output stage %d" % (i, stage))
        L.thr_off, L.aux_off = ta[0], tb[0]
        L.out_bits, L.shift = out_bits, shift

    def _check_i32_pair(self, i, ta, tb, n):
        if ta[2] != _I32 or ta[1] != n * 4 or tb[2] != _I32 or tb[1] != n * 4:
            raise BlobError(S.ERR_SHAPE, "layer %d: mul/add tensors must be I32 (%d,)" % (i, n))
