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
# streamed one row at a time, never copied as whole tensors.  Two activation buffers (ping-pong)
# of the largest activation are allocated once, like the C runtime's arena.
#
# Bit tricks (no `bin`, no int.bit_count, no numpy, no native/viper code):
# - a B1 pixel's channel words are read as ONE integer (int.from_bytes of its bytes), a conv patch
#   is the concatenation of its kernel rows (each row contiguous in HWC layout), and a weight row is
#   one integer read straight from the blob; so XNOR-popcount of a whole patch is a handful of
#   big-integer operations done in C by the interpreter;
# - popcount is SWAR on the big integer (2/4/8-bit lanes, then 16-bit lanes folded in halves),
#   so its cost is a few passes over the bytes, all inside the interpreter's C code;
# - U8 activations against B1/TERN weights use bit planes: sum_b 2**b * popcount(plane_b & w).
# Names of the integer kernels follow the C ones: conv_<variant>_<in>_<w>.

import struct

try:
    from array import array as _array
except ImportError:  # pragma: no cover
    _array = None

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

try:
    import time as _time
    _ticks_ms = _time.ticks_ms
    _ticks_diff = _time.ticks_diff
except (ImportError, AttributeError):  # CPython
    try:
        import time as _time

        def _ticks_ms():
            return int(_time.monotonic() * 1000)

        def _ticks_diff(a, b):
            return a - b
    except ImportError:  # pragma: no cover
        _ticks_ms = None
        _ticks_diff = None

import edgeq_spec as S

_unpack_from = struct.unpack_from
_from_bytes = int.from_bytes

_I32_MIN = const(-2147483648)
_I32_MAX = const(2147483647)

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


class Model:
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

    # ---------------------------------------------------------------------------- validation
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
        if vmaj != S.BLOB_VERSION_MAJOR:
            raise BlobError(S.ERR_VERSION, "blob version %d.%d, this runtime reads %d.x"
                            % (vmaj, vmin, S.BLOB_VERSION_MAJOR))
        if total > n:
            raise BlobError(S.ERR_TRUNCATED, "header declares %d bytes, buffer has %d" % (total, n))
        if total < S.HEADER_SIZE or hsize != S.HEADER_SIZE:
            raise BlobError(S.ERR_BOUNDS, "total_size %d / header_size %d" % (total, hsize))
        if check_crc:
            got = blob_crc(mv, total, native_crc)
            if got != crc:
                raise BlobError(S.ERR_CRC, "stored 0x%08x, computed 0x%08x" % (crc, got))
        self.total_size = total
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

        hh, ww, cc = in_h, in_w, in_c
        max_act = S.act_bytes(enc, hh, ww, cc)
        acc_row = 0
        layers = []
        for i in range(n_l):
            L = self._check_layer(i, _unpack_from(S.LAYER_FMT, mv, l_off + i * S.LAYER_SIZE),
                                  enc, levels, hh, ww, cc)
            layers.append(L)
            if L.op == S.OP_CONV and L.out_w * L.out_c * 4 > acc_row:
                acc_row = L.out_w * L.out_c * 4
            hh, ww, cc, enc, levels = L.out_h, L.out_w, L.out_c, L.out_enc, L.out_levels
            ab = S.act_bytes(enc, hh, ww, cc)
            if ab > max_act:
                max_act = ab
        if hh * ww * cc != n_classes:
            raise BlobError(S.ERR_SHAPE, "last layer gives %d scores, header says n_classes=%d"
                            % (hh * ww * cc, n_classes))
        max_act = (max_act + 7) & ~7
        if 2 * max_act + acc_row >= 0x80000000:
            raise BlobError(S.ERR_TOO_LARGE, "activations need %d bytes" % (2 * max_act + acc_row))
        self.layers = layers
        self.out_enc = enc
        self.max_act = max_act
        self.arena_need = 2 * max_act + acc_row  # what the C runtime needs (informational here)
        # ping-pong activation buffers (B1/U8 activations; I32 ones are lists)
        self._buf_a = bytearray(max_act)
        self._buf_b = bytearray(max_act)

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

    def _check_layer(self, i, f, enc, levels, ih, iw, ic):
        (op, in_enc, out_enc, stage, l_ih, l_iw, l_ic, oh, ow, oc, kh, kw, stride, pad, w_enc,
         out_bits, shift, _, t_w, t_lut, t_thr, t_aux, name_off, macs, _) = f
        L = _Layer()
        L.index = i
        L.op = op
        L.macs = macs
        if in_enc != enc or (l_ih, l_iw, l_ic) != (ih, iw, ic):
            raise BlobError(S.ERR_SHAPE, "layer %d: input %dx%dx%d enc %d, previous output is "
                            "%dx%dx%d enc %d" % (i, l_ih, l_iw, l_ic, in_enc, ih, iw, ic, enc))
        L.in_enc, L.in_h, L.in_w, L.in_c = enc, ih, iw, ic
        L.kh, L.kw, L.stride, L.pad = kh, kw, stride, pad
        L.out_h, L.out_w, L.out_c, L.out_enc = oh, ow, oc, out_enc
        if op == S.OP_MAXPOOL:
            if kh != kw or kh < 1 or stride < 1 or pad != 0 or kh > ih or kh > iw:
                raise BlobError(S.ERR_SHAPE, "layer %d: max-pool %dx%d stride %d pad %d on %dx%d input"
                                % (i, kh, kw, stride, pad, ih, iw))
            eh, ew = (ih - kh) // stride + 1, (iw - kw) // stride + 1
            if (oh, ow, oc) != (eh, ew, ic) or out_enc != enc:
                raise BlobError(S.ERR_SHAPE, "layer %d: max-pool output %dx%dx%d enc %d, expected "
                                "%dx%dx%d enc %d" % (i, oh, ow, oc, out_enc, eh, ew, ic, enc))
            L.out_levels = levels
            return L
        if op == S.OP_FLATTEN:
            if out_enc != enc or oh != 1 or ow != 1 or oc != ih * iw * ic:
                raise BlobError(S.ERR_SHAPE, "layer %d: flatten output %dx%dx%d enc %d, expected 1x1x%d "
                                "enc %d" % (i, oh, ow, oc, out_enc, ih * iw * ic, enc))
            L.out_levels = levels
            return L
        if op != S.OP_CONV:
            raise BlobError(S.ERR_UNSUPPORTED, "layer %d: unknown op %d" % (i, op))
        if enc != _B1 and enc != _U8:
            raise BlobError(S.ERR_UNSUPPORTED, "layer %d: CONV on an I32 activation" % i)
        if kh < 1 or kw < 1 or stride < 1 or pad >= (kh if kh > kw else kw):
            raise BlobError(S.ERR_SHAPE, "layer %d: kernel %dx%d stride %d pad %d"
                            % (i, kh, kw, stride, pad))
        if ih + 2 * pad < kh or iw + 2 * pad < kw:
            raise BlobError(S.ERR_SHAPE, "layer %d: kernel %dx%d larger than the padded input"
                            % (i, kh, kw))
        eh = (ih + 2 * pad - kh) // stride + 1
        ew = (iw + 2 * pad - kw) // stride + 1
        if (oh, ow) != (eh, ew) or oc < 1:
            raise BlobError(S.ERR_SHAPE, "layer %d: output %dx%dx%d, expected %dx%dx(>=1)"
                            % (i, oh, ow, oc, eh, ew))
        n = oc
        K = kh * kw * ic
        cw = _cw(ic)
        L.K = K
        L.w_enc = w_enc
        amax = S.act_code_max(enc, levels)
        tw = self._tensor(i, "weight", t_w)
        if tw[2] != w_enc or tuple(tw[6:10]) != (n, kh, kw, ic):
            raise BlobError(S.ERR_SHAPE, "layer %d: weight tensor enc %d dims %r, layer needs enc %d "
                            "dims %r" % (i, tw[2], tuple(tw[6:10]), w_enc, (n, kh, kw, ic)))
        if w_enc == _B1 or w_enc == _TERN:
            planes = 1 if w_enc == _B1 else 2
            if planes * n * kh * kw * cw * 4 != tw[1]:
                raise BlobError(S.ERR_SHAPE, "layer %d: weight tensor has %d bytes, expected %d"
                                % (i, tw[1], planes * n * kh * kw * cw * 4))
            self._check_pad_bits(i, tw[0], planes * n * kh * kw, cw, ic)
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
        ta = self._tensor(i, "thr/mul", t_thr)
        tb = self._tensor(i, "flip/add", t_aux)
        fl = w_enc == _F32  # F32 layers: float32 thresholds / mul / add (checked values)
        want = _F32 if fl else _I32
        if ta[2] != want:
            raise BlobError(S.ERR_SHAPE, "layer %d: threshold/mul tensor is not %s"
                            % (i, "F32" if fl else "I32"))
        L.stage = stage
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
            if n * nthr * 4 != ta[1] or tb[2] != _U8 or tb[1] != n:
                raise BlobError(S.ERR_SHAPE, "layer %d: thresholds %d bytes (expected %d) / flip enc %d "
                                "%d bytes (expected U8, %d)" % (i, ta[1], n * nthr * 4, tb[2], tb[1], n))
            if fl:
                self._check_f32(i, ta, n * nthr, -1, "thresholds")
            L.nthr = nthr
        elif stage == _AFFINE:
            if out_enc != _I32 or shift >= 32 or (fl and shift):
                raise BlobError(S.ERR_SHAPE, "layer %d: AFFINE needs I32 output and shift < 32 "
                                "(0 for F32 layers)" % i)
            if ta[1] != n * 4 or tb[2] != want or tb[1] != n * 4:
                raise BlobError(S.ERR_SHAPE, "layer %d: AFFINE mul/add tensors must be %s (%d,)"
                                % (i, "F32" if fl else "I32", n))
            if fl:
                self._check_f32(i, ta, n, S.F32_MAX_EXP_MUL, "mul")
                self._check_f32(i, tb, n, S.F32_MAX_EXP_ADD, "add")
            L.nthr = 1
            L.out_levels = 0
        else:
            raise BlobError(S.ERR_UNSUPPORTED, "layer %d: unknown output stage %d" % (i, stage))
        L.thr_off, L.aux_off = ta[0], tb[0]
        L.out_bits, L.shift = out_bits, shift
        return L

    # ---------------------------------------------------------------------------- public API
    def metadata(self):
        """The blob's metadata as a str (JSON); parse with json.loads."""
        return bytes(self.mv[self.meta_off:self.meta_off + self.meta_size]).decode()

    def scores(self, pixels, wire=False):
        """Integer scores (list of n_classes ints) for one input.

        pixels: raw uint8 pixels, CHW, the blob's input shape (in_c*in_h*in_w bytes); or with
        wire=True the wire format (THRESH: packed bits LSB-first, else raw pixels)."""
        t0 = _ticks_ms() if _ticks_ms else 0
        act = self._preprocess(pixels, wire)
        bufs = (self._buf_b, self._buf_a)
        times = []
        for L in self.layers:
            t1 = _ticks_ms() if _ticks_ms else 0
            act = self._run_layer(L, act, bufs[L.index & 1])
            if self.probe is not None:
                self.probe()
            if _ticks_ms:
                times.append(_ticks_diff(_ticks_ms(), t1))
        out = self._flatten(act)
        if _ticks_ms:
            self.total_ms = _ticks_diff(_ticks_ms(), t0)
        self.layer_ms = times
        return out

    def predict(self, pixels, wire=False):
        """Class index (first maximum of the scores)."""
        return argmax(self.scores(pixels, wire))

    def predict_scores(self, pixels, wire=False):
        """(class, scores) in one call."""
        s = self.scores(pixels, wire)
        return argmax(s), s

    def _run_layer(self, L, act, dst):
        if L.op == S.OP_CONV:
            if L.w_enc == _B1 or L.w_enc == _TERN or L.w_enc == _SPARSE:
                if L.in_enc == _B1:
                    return self._conv_bits_b1(L, act, dst)
                return self._conv_planes_u8(L, act, dst)
            return self._conv_values(L, act, dst)
        if L.op == S.OP_MAXPOOL:
            return self._maxpool(L, act, dst)
        return self._flatten_layer(L, act, dst)

    # ---------------------------------------------------------------------------- input
    def _preprocess(self, px, wire):
        c, h, w = self.in_c, self.in_h, self.in_w
        hw = h * w
        mode = self.pre_mode
        if wire and mode == S.PRE_THRESH:
            if len(px) != self.input_wire:
                raise InputError("wire input has %d bytes, the model takes %d" % (len(px), self.input_wire))
        elif len(px) != self.input_pixels:
            raise InputError("input has %d bytes, the model takes %d (%dx%dx%d CHW)"
                             % (len(px), self.input_pixels, c, h, w))
        if mode == S.PRE_THRESH:
            cw4 = _cw(c) * 4
            out = self._buf_a
            n = hw * cw4
            out[0:n] = bytes(n)
            if c == 1 and not wire:
                thr = self.pre_param
                j = 0
                for v in px:
                    if v >= thr:
                        out[j] = 1
                    j += 4
                return out
            thr = self.pre_param
            for ch in range(c):
                bo = ch >> 3
                bit = 1 << (ch & 7)
                base = ch * hw
                for p in range(hw):
                    if wire:
                        q = base + p
                        on = (px[q >> 3] >> (q & 7)) & 1
                    else:
                        on = px[base + p] >= thr
                    if on:
                        out[p * cw4 + bo] |= bit
            return out
        out = self._buf_a
        if mode == S.PRE_QUANT:
            m = (1 << self.pre_param) - 1
            tab = bytes([(v * m + 127) // 255 for v in range(256)])
        else:
            tab = None
        if c == 1:
            if tab is None:
                out[0:hw] = px
            else:
                j = 0
                for v in px:
                    out[j] = tab[v]
                    j += 1
            return out
        for ch in range(c):
            base = ch * hw
            for p in range(hw):
                v = px[base + p]
                out[p * c + ch] = tab[v] if tab is not None else v
        return out

    # ---------------------------------------------------------------------------- output
    def _flatten(self, act):
        L = self.layers[-1]
        n = L.out_h * L.out_w * L.out_c
        if L.out_enc == _I32:
            return list(act[0:n])
        if L.out_enc == _U8:
            return list(act[0:n])
        c = L.out_c
        cw4 = _cw(c) * 4
        out = []
        for p in range(L.out_h * L.out_w):
            o = p * cw4
            for ch in range(c):
                out.append(1 if (act[o + (ch >> 3)] >> (ch & 7)) & 1 else -1)
        return out

    def layer_activation(self, pixels, n_run, wire=False):
        """Run only the first n_run layers and return the raw activation (bytes for B1/U8 in the
        C layout, list of ints for I32) -- for debugging against the C runtime's act_out."""
        act = self._preprocess(pixels, wire)
        if n_run == 0:
            return bytes(act[0:S.act_bytes(self.in_enc, self.in_h, self.in_w, self.in_c)])
        bufs = (self._buf_b, self._buf_a)
        for L in self.layers[:n_run]:
            act = self._run_layer(L, act, bufs[L.index & 1])
        if L.out_enc == _I32:
            return list(act)
        return bytes(act[0:S.act_bytes(L.out_enc, L.out_h, L.out_w, L.out_c)])

    # ---------------------------------------------------------------------------- weights
    def _sparse_rows_planes(self, L, pbits):
        """Decode TERN_SPARSE rows into (sign, nonzero) plane integers in the padded tap layout
        (tap t, channel c at bit t*pbits + c).  Transient: lives for one layer call."""
        mv = self.mv
        off = L.w_off
        n = L.out_c
        ic = L.in_c
        base = off + 4 * (n + 1)
        nb = L.kh * L.kw * pbits // 8
        rows = []
        for r in range(n):
            a, b = _unpack_from("<II", mv, off + 4 * r)
            sgn = bytearray(nb)
            nz = bytearray(nb)
            p = 0
            for j in range(a, b):
                v = mv[base + (j >> 1)]
                v = (v >> 4) if j & 1 else (v & 15)
                if v == 7:
                    p += 7
                    continue
                p += v & 7
                t = p // ic
                bit = t * pbits + (p - t * ic)
                nz[bit >> 3] |= 1 << (bit & 7)
                if not v & 8:
                    sgn[bit >> 3] |= 1 << (bit & 7)
                p += 1
            rows.append((_from_bytes(sgn, "little"), _from_bytes(nz, "little")))
        return rows

    def _row_planes(self, L, r, pb_row, sparse_rows):
        """(sign plane, nonzero plane or None) of weight row r as integers."""
        if sparse_rows is not None:
            return sparse_rows[r]
        mv = self.mv
        o = L.w_off
        if L.w_enc == _B1:
            s = o + r * pb_row
            return _from_bytes(mv[s:s + pb_row], "little"), None
        s = o + 2 * r * pb_row
        return (_from_bytes(mv[s:s + pb_row], "little"),
                _from_bytes(mv[s + pb_row:s + 2 * pb_row], "little"))

    def _row_values(self, L, r, sparse_rows):
        """I8 / I16 weight row r as a tuple of K ints in (ky, kx, c) order."""
        K = L.K
        if L.w_enc == _I16:
            return _unpack_from("<%dh" % K, self.mv, L.w_off + 2 * r * K)
        if L.w_enc == _F32:
            return _unpack_from("<%df" % K, self.mv, L.w_off + 4 * r * K)
        return _unpack_from("<%db" % K, self.mv, L.w_off + r * K)

    # ---------------------------------------------------------------------------- output stages
    def _stage_params(self, L):
        n = L.out_c
        mv = self.mv
        t = "f" if L.w_enc == _F32 else "i"
        if L.stage == _AFFINE:
            return (_unpack_from("<%d%s" % (n, t), mv, L.thr_off),
                    _unpack_from("<%d%s" % (n, t), mv, L.aux_off))
        return (_unpack_from("<%d%s" % (n * L.nthr, t), mv, L.thr_off), mv[L.aux_off:L.aux_off + n])

    # ---------------------------------------------------------------------------- kernels
    def _patch_geometry(self, L, oy, ox):
        """Valid kernel rows of output pixel (oy, ox): list of (input pixel index of the first
        valid tap, first valid kx, number of valid kx, ky), and whether all taps are inside."""
        s, pad = L.stride, L.pad
        iy0 = oy * s - pad
        ix0 = ox * s - pad
        kw = L.kw
        kx0 = -ix0 if ix0 < 0 else 0
        kx1 = L.in_w - ix0
        if kx1 > kw:
            kx1 = kw
        full = kx0 == 0 and kx1 == kw
        rows = []
        if kx1 <= kx0:
            return rows, False
        for ky in range(L.kh):
            iy = iy0 + ky
            if iy < 0 or iy >= L.in_h:
                full = False
                continue
            rows.append((iy * L.in_w + ix0 + kx0, kx0, kx1 - kx0, ky))
        return rows, full

    def _conv_bits_b1(self, L, src, dst):
        """conv_xnor_b1_{b1,tern,sparse}: B1 input, B1 / ternary weights, XNOR-popcount on
        big integers.  acc = (#agree - #disagree) over valid taps."""
        probe = self.probe
        ic, iw = L.in_c, L.in_w
        pb = _cw(ic) * 4  # bytes per input pixel
        pbits = pb * 8
        kw, kh = L.kw, L.kh
        rowbytes = kw * pb
        patch_bytes = kh * rowbytes
        pc = _popper(patch_bytes)
        n = L.out_c
        we = L.w_enc
        sparse_rows = self._sparse_rows_planes(L, pbits) if we == _SPARSE else None
        mv_src = memoryview(src)
        stage = L.stage
        thr, aux = self._stage_params(L)
        nthr = L.nthr
        opb = _cw(n) * 4
        out = [] if stage == _AFFINE else None
        shift = L.shift
        mvw = self.mv
        woff = L.w_off
        tern = we != _B1
        # dense fast path: one patch, rows streamed straight from the blob
        contiguous_rows = kw == iw and L.pad == 0
        op = 0
        for oy in range(L.out_h):
            for ox in range(L.out_w):
                rows, full = self._patch_geometry(L, oy, ox)
                if full and contiguous_rows:
                    st = rows[0][0] * pb
                    P = _from_bytes(mv_src[st:st + patch_bytes], "little")
                    vm = None
                    nval = kh * kw * ic
                else:
                    P = 0
                    vm = 0
                    nval = 0
                    for start, kx0, nkx, ky in rows:
                        sh = (ky * kw + kx0) * pbits
                        st = start * pb
                        P |= _from_bytes(mv_src[st:st + nkx * pb], "little") << sh
                        if not full:
                            vm |= ((1 << (nkx * pbits)) - 1) << sh
                        nval += nkx * ic
                    if full:
                        vm = None
                bits = 0
                for r in range(n):
                    if sparse_rows is not None:
                        sg, nz = sparse_rows[r]
                    elif tern:
                        s0 = woff + 2 * r * patch_bytes
                        sg = _from_bytes(mvw[s0:s0 + patch_bytes], "little")
                        nz = _from_bytes(mvw[s0 + patch_bytes:s0 + 2 * patch_bytes], "little")
                    else:
                        s0 = woff + r * patch_bytes
                        sg = _from_bytes(mvw[s0:s0 + patch_bytes], "little")
                    if tern:
                        if vm is not None:
                            nz = nz & vm
                        acc = pc(nz) - 2 * pc((P ^ sg) & nz)
                    elif vm is None:
                        acc = nval - 2 * pc(P ^ sg)
                    else:
                        acc = nval - 2 * pc((P ^ sg) & vm)
                    if stage == _SIGN:
                        t = thr[r]
                        if (acc <= t) if aux[r] else (acc >= t):
                            bits |= 1 << r
                    elif stage == _MULTI:
                        code = 0
                        b0 = r * nthr
                        if aux[r]:
                            for q in range(b0, b0 + nthr):
                                if acc <= thr[q]:
                                    code += 1
                        else:
                            for q in range(b0, b0 + nthr):
                                if acc >= thr[q]:
                                    code += 1
                        dst[op * n + r] = code
                    else:
                        y = (acc * thr[r] + aux[r]) >> shift
                        out.append(_I32_MIN if y < _I32_MIN else (_I32_MAX if y > _I32_MAX else y))
                if stage == _SIGN:
                    dst[op * opb:(op + 1) * opb] = bits.to_bytes(opb, "little")
                op += 1
                if probe is not None:
                    probe()
        return out if stage == _AFFINE else dst

    def _conv_planes_u8(self, L, src, dst):
        """conv_planes_u8_{b1,tern,sparse}: U8 input codes a = sum_b 2**b a_b, +-1/ternary
        weights: acc = sum_b 2**b (popcount(a_b & w_pos) - popcount(a_b & w_neg)).  The input is
        split once into bit-plane images laid out like B1 activations (pixel padded to words)."""
        probe = self.probe
        ih, iw, ic = L.in_h, L.in_w, L.in_c
        pb = _cw(ic) * 4
        pbits = pb * 8
        kw, kh = L.kw, L.kh
        patch_bytes = kh * kw * pb
        pc = _popper(patch_bytes)
        # number of planes: highest code present decides (codes < 2**levels_bits)
        hi = max(src[0:ih * iw * ic]) if ih * iw * ic else 0
        nplanes = 0
        while (1 << nplanes) <= hi:
            nplanes += 1
        planes = []
        for b in range(nplanes):
            pl = bytearray(ih * iw * pb)
            m = 1 << b
            for p in range(ih * iw):
                o = p * ic
                q = p * pb
                for c in range(ic):
                    if src[o + c] & m:
                        pl[q + (c >> 3)] |= 1 << (c & 7)
            planes.append(memoryview(pl))
        n = L.out_c
        we = L.w_enc
        sparse_rows = self._sparse_rows_planes(L, pbits) if we == _SPARSE else None
        thr, aux = self._stage_params(L)
        stage = L.stage
        out = [] if stage == _AFFINE else None
        accs = [0] * n
        op = 0
        for oy in range(L.out_h):
            for ox in range(L.out_w):
                rows, full = self._patch_geometry(L, oy, ox)
                A = []
                for pl in planes:
                    P = 0
                    for start, kx0, nkx, ky in rows:
                        st = start * pb
                        P |= _from_bytes(pl[st:st + nkx * pb], "little") << ((ky * kw + kx0) * pbits)
                    A.append(P)
                for r in range(n):
                    sg, nz = self._row_planes(L, r, patch_bytes, sparse_rows)
                    acc = 0
                    if nz is None:  # B1 weights: a*w = 2*a*[w=+1] - a
                        for b in range(nplanes):
                            Ab = A[b]
                            acc += (2 * pc(Ab & sg) - pc(Ab)) << b
                    else:
                        pos = sg & nz
                        for b in range(nplanes):
                            Ab = A[b] & nz
                            acc += (2 * pc(Ab & pos) - pc(Ab)) << b
                    accs[r] = acc
                self._stage_pixel(L, accs, op, thr, aux, dst, out)
                op += 1
                if probe is not None:
                    probe()
        return out if stage == _AFFINE else dst

    def _stage_pixel(self, L, accs, op, thr, aux, dst, out):
        """Output stage of one output pixel (accs: the N accumulators)."""
        stage = L.stage
        n = L.out_c
        if stage == _SIGN:
            bits = 0
            for r in range(n):
                acc = accs[r]
                t = thr[r]
                if (acc <= t) if aux[r] else (acc >= t):
                    bits |= 1 << r
            opb = _cw(n) * 4
            dst[op * opb:(op + 1) * opb] = bits.to_bytes(opb, "little")
        elif stage == _MULTI:
            nthr = L.nthr
            o = op * n
            for r in range(n):
                acc = accs[r]
                b0 = r * nthr
                code = 0
                if aux[r]:
                    for q in range(b0, b0 + nthr):
                        if acc <= thr[q]:
                            code += 1
                else:
                    for q in range(b0, b0 + nthr):
                        if acc >= thr[q]:
                            code += 1
                dst[o + r] = code
        elif L.w_enc == _F32:  # y = floor(acc * mul + add), each operation rounded to float32
            f = _FA
            for r in range(n):
                f[0] = accs[r] * thr[r]
                f[0] = f[0] + aux[r]
                t = f[0]
                if t >= 2147483648.0:
                    y = _I32_MAX
                elif t < -2147483648.0:
                    y = _I32_MIN
                else:
                    y = int(t)  # toward zero
                    if y > t:
                        y -= 1
                out.append(y)
        else:
            sh = L.shift
            for r in range(n):
                y = (accs[r] * thr[r] + aux[r]) >> sh
                out.append(_I32_MIN if y < _I32_MIN else (_I32_MAX if y > _I32_MAX else y))

    def _conv_values(self, L, src, dst):
        """conv_values_{b1,u8}_{i8,kbit}: integer dot products, one tap at a time.
        B1 input reads +-1 (bit 0/1 as the LUT column for KBIT), U8 input its codes.
        Taps outside the input read 0 (products) or a zero LUT entry (KBIT)."""
        probe = self.probe
        ih, iw, ic = L.in_h, L.in_w, L.in_c
        kw = L.kw
        n = L.out_c
        K = L.K
        kbit = L.w_enc == _KBIT
        f32 = L.w_enc == _F32
        fa = _FA
        if L.in_enc == _B1:
            cw4 = _cw(ic) * 4
            vals = bytearray(ih * iw * ic) if kbit else [0] * (ih * iw * ic)
            k = 0
            for p in range(ih * iw):
                o = p * cw4
                for c in range(ic):
                    bit = (src[o + (c >> 3)] >> (c & 7)) & 1
                    vals[k] = bit if kbit else (2 * bit - 1)
                    k += 1
        else:
            vals = src
        pad_val = 0
        tab = None
        if kbit:
            cols = L.lut_cols
            nl = (1 << L.wbits) * cols
            lut = list(_unpack_from("<%di" % nl, self.mv, L.lut_off)) + [0] * nl
            pad_val = nl  # lut[q*cols + nl] == 0 for every code q
            sb = L.wsb
            if sb < 8:  # byte -> its 8 // sb codes, pre-multiplied by cols (transient, 256 entries)
                cm = (1 << sb) - 1
                tab = [tuple(((v >> q) & cm) * cols for q in range(0, 8, sb)) for v in range(256)]
        thr, aux = self._stage_params(L)
        out = [] if L.stage == _AFFINE else None
        npix = L.out_h * L.out_w
        cache = None
        if npix > 1:
            cache = [self._row_codes(L, r, kbit, tab) for r in range(n)]
        accs = [0] * n
        op = 0
        for oy in range(L.out_h):
            for ox in range(L.out_w):
                rows, full = self._patch_geometry(L, oy, ox)
                if full and len(rows) == 1:
                    st = rows[0][0] * ic
                    pv = vals[st:st + K]
                elif full:
                    pv = []
                    for start, _kx0, nkx, _ky in rows:
                        st = start * ic
                        pv.extend(vals[st:st + nkx * ic])
                else:
                    pv = [pad_val] * K
                    for start, kx0, nkx, ky in rows:
                        st = start * ic
                        k0 = (ky * kw + kx0) * ic
                        pv[k0:k0 + nkx * ic] = list(vals[st:st + nkx * ic])
                for r in range(n):
                    wv = cache[r] if cache is not None else self._row_codes(L, r, kbit, tab)
                    acc = 0
                    if f32:  # one float32 rounding per product and per sum, in tap order
                        fa[1] = 0.0
                        for j in range(K):
                            fa[0] = wv[j] * pv[j]
                            fa[1] = fa[1] + fa[0]
                        acc = fa[1]
                    elif kbit:
                        for j in range(K):
                            acc += lut[wv[j] + pv[j]]
                    else:
                        for j in range(K):
                            acc += wv[j] * pv[j]
                    accs[r] = acc
                self._stage_pixel(L, accs, op, thr, aux, dst, out)
                op += 1
                if probe is not None:
                    probe()
        return out if L.stage == _AFFINE else dst

    def _row_codes(self, L, r, kbit, tab=None):
        """Weight row r for the value kernels: int8 values, or KBIT codes pre-multiplied by the
        LUT row length (so the product is lut[code*cols + a]); tab maps a packed byte to its
        codes (slots narrower than 8 bits)."""
        if not kbit:
            return self._row_values(L, r, None)
        K = L.K
        o = L.w_off + r * L.wrb
        if tab is None:
            cols = L.lut_cols
            return [q * cols for q in self.mv[o:o + K]]
        out = []
        ext = out.extend
        for v in self.mv[o:o + (K * L.wsb + 7) // 8]:
            ext(tab[v])
        return out[:K] if len(out) > K else out

    def _flatten_layer(self, L, src, dst):
        """flatten_{b1,u8,i32}: (H, W, C) -> (1, 1, H*W*C).  U8/I32 keep their bytes; B1 drops
        the per-pixel word padding: element (y, x, c) becomes bit (y*W + x)*C + c."""
        if L.in_enc == _I32:
            return src
        npix = L.in_h * L.in_w
        c = L.in_c
        if L.in_enc == _U8:
            dst[0:npix * c] = src[0:npix * c]
            return dst
        pb = _cw(c) * 4
        nout = _cw(L.out_c) * 4
        if c & 31 == 0:  # no padding bits: same bytes
            dst[0:nout] = src[0:nout]
            return dst
        mv = memoryview(src)
        o = 0
        grp = 0
        bp = 0
        for p in range(npix):
            grp |= _from_bytes(mv[p * pb:(p + 1) * pb], "little") << bp
            bp += c
            if bp >= 512 and not bp & 7:  # flush whole bytes, keeps the integers short
                nb = bp >> 3
                dst[o:o + nb] = grp.to_bytes(nb, "little")
                o += nb
                grp = 0
                bp = 0
        nb = nout - o
        dst[o:nout] = grp.to_bytes(nb, "little")
        return dst

    def _maxpool(self, L, src, dst):
        """maxpool_{b1 (OR), u8, i32}."""
        iw, c = L.in_w, L.in_c
        kh, kw, s = L.kh, L.kw, L.stride
        oh, ow = L.out_h, L.out_w
        enc = L.in_enc
        if enc == _B1:
            pb = _cw(c) * 4
            mv = memoryview(src)
            op = 0
            for oy in range(oh):
                for ox in range(ow):
                    v = 0
                    for ky in range(kh):
                        st = ((oy * s + ky) * iw + ox * s) * pb
                        for kx in range(kw):
                            v |= _from_bytes(mv[st + kx * pb:st + (kx + 1) * pb], "little")
                    dst[op * pb:(op + 1) * pb] = v.to_bytes(pb, "little")
                    op += 1
            return dst
        out = [] if enc == _I32 else dst
        op = 0
        for oy in range(oh):
            for ox in range(ow):
                for ch in range(c):
                    m = None
                    for ky in range(kh):
                        base = ((oy * s + ky) * iw + ox * s) * c + ch
                        for kx in range(kw):
                            v = src[base + kx * c]
                            if m is None or v > m:
                                m = v
                    if enc == _I32:
                        out.append(m)
                    else:
                        out[op] = m
                    op += 1
        return out


def argmax(scores):
    """First index of the maximum."""
    best = 0
    bv = scores[0]
    for i in range(1, len(scores)):
        if scores[i] > bv:
            bv = scores[i]
            best = i
    return best
