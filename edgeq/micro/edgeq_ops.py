# edgeq MicroPython runtime, ops module: input preprocessing, the layer kernels and the executor
# (class Ops, a mixin of edgeq_micro.Model), integers only, bit-identical to the C runtime.
#
# Memory: the blob buffer is kept and read in place (memoryview / struct.unpack_from); weights are
# streamed one row at a time, never copied as whole tensors.  Sequential blobs: two activation
# buffers (ping-pong) of the largest activation, allocated once; DAG blobs (blob 1.1): one arena
# with every value at the offset the C loader plans (I32 values are lists, dropped after their
# last reader).
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
from array import array as _farray

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
from edgeq_load import (_B1, _U8, _I8, _I16, _I32, _F32, _TERN, _SPARSE, _KBIT, _SIGN, _MULTI,
                        _AFFINE, _REQUANT, _FA, _cw, _popper, _Layer, InputError)

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_I32_MIN = const(-2147483648)  # const: MicroPython does not export _-prefixed consts from a module
_I32_MAX = const(2147483647)

_unpack_from = struct.unpack_from
_from_bytes = int.from_bytes


class Ops:
    """Executor and kernels; reads the layer records that Loader built (self.layers)."""

    def _execute(self, pixels, wire, n_run=None):
        """Run the first n_run layers (all: None) on one input; the last activation (B1/U8:
        the buffer in the C layout, I32: a list).  Times each layer into self.layer_ms.
        Sequential blobs ping-pong between two buffers; a DAG keeps every value that a later layer
        reads (B1/U8: a memoryview at its planned arena offset) and drops it after its last use."""
        t0 = _ticks_ms() if _ticks_ms else 0
        act = self._preprocess(pixels, wire)
        layers = self.layers if n_run is None else self.layers[:n_run]
        times = []
        probe = self.probe
        dag = self.dag
        if dag:
            vals = [None] * (len(self.layers) + 1)
            vals[0] = act
            arena, off, size = self._arena, self.val_off, self.val_size
        else:
            bufs = (self._buf_b, self._buf_a)
        for L in layers:
            t1 = _ticks_ms() if _ticks_ms else 0
            i = L.index
            if dag:
                o = off[i + 1]
                act = self._run_layer(L, vals[L.src0], arena[o:o + size[i + 1]],
                                      vals[L.src1] if len(L.srcs) > 1 else None)
                vals[i + 1] = act
                for v in L.frees:
                    vals[v] = None
            else:
                act = self._run_layer(L, act, bufs[i & 1])
            if probe is not None:
                probe()
            if _ticks_ms:
                times.append(_ticks_diff(_ticks_ms(), t1))
        if _ticks_ms:
            self.total_ms = _ticks_diff(_ticks_ms(), t0)
        self.layer_ms = times
        return act

    def _run_layer(self, L, act, dst, act1=None):
        op = L.op
        if op == S.OP_CONV:
            if L.wino:  # blob 1.2: an F32 CONV by Winograd F(2x2, 3x3)
                return self._conv_wino_f32(L, act, dst)
            if L.groups > 1:  # small groups (depthwise): one value kernel over all groups
                if L.K <= _GROUP_VALUES_K or not (L.w_enc == _B1 or L.w_enc == _TERN or L.w_enc == _SPARSE):
                    return self._conv_values(L, act, dst)
                return self._conv_grouped(L, act, dst)
            return self._conv(L, act, dst)
        if op == S.OP_MAXPOOL:
            return self._maxpool(L, act, dst)
        if op == S.OP_FLATTEN:
            return self._flatten_layer(L, act, dst)
        if op == S.OP_AVGPOOL:
            return self._avgpool(L, act, dst)
        if op == S.OP_ADD:
            return self._add(L, act, act1, dst)
        return self._concat(L, act, act1, dst)

    def _conv(self, L, act, dst):
        if L.w_enc == _B1 or L.w_enc == _TERN or L.w_enc == _SPARSE:
            if L.in_enc == _B1:
                return self._conv_bits_b1(L, act, dst)
            return self._conv_planes_u8(L, act, dst)
        return self._conv_values(L, act, dst)

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

    # ---------------------------------------------------------------------------- weights
    def _sparse_rows_planes(self, L, pbits):
        """Decode TERN_SPARSE rows into (sign, nonzero) plane integers in the padded tap layout
        (tap t, channel c at bit t*pbits + c).  Transient: lives for one layer call."""
        mv = self.mv
        off = L.w_off
        ic = L.in_c // L.groups  # channels of one tap
        base = off + 4 * (L.w_rows + 1)  # the stream follows the offsets of all rows
        nb = L.kh * L.kw * pbits // 8
        rows = []
        for r in range(L.r0, L.r0 + L.out_c):  # this group's rows (all: r0 = 0)
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
        if L.stage == _AFFINE or L.stage == _REQUANT:
            return (_unpack_from("<%d%s" % (n, t), mv, L.thr_off),
                    _unpack_from("<%d%s" % (n, t), mv, L.aux_off))
        return (_unpack_from("<%d%s" % (n * L.nthr, t), mv, L.thr_off), mv[L.aux_off:L.aux_off + n])

    # ---------------------------------------------------------------------------- kernels
    def _patch_geometry(self, L, oy, ox):
        """Valid kernel rows of output pixel (oy, ox): list of (input pixel index of the first
        valid tap, first valid kx, number of valid kx, ky), and whether all taps are inside."""
        iy0 = oy * L.sh - L.ph
        ix0 = ox * L.sw - L.pw
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
        sign = stage == _SIGN  # inline; the other stages through _stage_pixel
        thr, aux = self._stage_params(L)
        opb = _cw(n) * 4
        out = [] if stage == _AFFINE else None
        accs = [0] * n
        mvw = self.mv
        woff = L.w_off
        tern = we != _B1
        # dense fast path: one patch, rows streamed straight from the blob
        contiguous_rows = kw == iw and L.pw == 0
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
                    if sign:
                        t = thr[r]
                        if (acc <= t) if aux[r] else (acc >= t):
                            bits |= 1 << r
                    else:
                        accs[r] = acc
                if sign:
                    dst[op * opb:(op + 1) * opb] = bits.to_bytes(opb, "little")
                else:
                    self._stage_pixel(L, accs, op, thr, aux, dst, out)
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
        elif stage == _REQUANT:  # code = clamp((acc * mul + add) >> shift, 0, 2**out_bits - 1)
            sh = L.shift
            hi = (1 << L.out_bits) - 1
            o = op * n
            for r in range(n):
                y = (accs[r] * thr[r] + aux[r]) >> sh
                dst[o + r] = 0 if y < 0 else (hi if y > hi else y)
        else:
            sh = L.shift
            for r in range(n):
                y = (accs[r] * thr[r] + aux[r]) >> sh
                out.append(_I32_MIN if y < _I32_MIN else (_I32_MAX if y > _I32_MAX else y))

    def _conv_values(self, L, src, dst):
        """conv_values_{b1,u8}_{i8,i16,f32,kbit}: dot products, one tap at a time.
        B1 input reads +-1 (bit 0/1 as the LUT column for KBIT), U8 input its codes.
        Taps outside the input read 0 (products) or a zero LUT entry (KBIT).  Grouped layers
        (also with B1/TERN/TERN_SPARSE weights, decoded to -1/0/+1): output channel r dots the
        K = kh*kw*C/g patch values of its group's channels."""
        probe = self.probe
        ih, iw, ic = L.in_h, L.in_w, L.in_c
        kw = L.kw
        n = L.out_c
        K = L.kh * kw * ic  # the patch over all input channels
        g = L.groups
        cg, ng = ic // g, n // g
        taps = L.kh * kw
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
        kg = L.K  # products of one output channel
        cache = None
        if L.w_enc == _B1 or L.w_enc == _TERN or L.w_enc == _SPARSE:
            cache = self._row_signs(L)
        elif npix > 1:
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
                pg = pv
                for r in range(n):
                    if g > 1 and r % ng == 0:  # this group's channels of the patch, (ky, kx, c) order
                        o = (r // ng) * cg
                        if cg == 1:
                            pg = [pv[t * ic + o] for t in range(taps)]
                        else:
                            pg = []
                            for t in range(taps):
                                pg.extend(pv[t * ic + o:t * ic + o + cg])
                    wv = cache[r] if cache is not None else self._row_codes(L, r, kbit, tab)
                    acc = 0
                    if f32:  # one float32 rounding per product and per sum, in tap order
                        fa[1] = 0.0
                        for j in range(kg):
                            fa[0] = wv[j] * pg[j]
                            fa[1] = fa[1] + fa[0]
                        acc = fa[1]
                    elif kbit:
                        for j in range(kg):
                            acc += lut[wv[j] + pg[j]]
                    else:
                        for j in range(kg):
                            acc += wv[j] * pg[j]
                    accs[r] = acc
                self._stage_pixel(L, accs, op, thr, aux, dst, out)
                op += 1
                if probe is not None:
                    probe()
        return out if L.stage == _AFFINE else dst

    def _conv_wino_f32(self, L, src, dst):
        """conv_wino_f32: an F32 CONV flagged LFLAG_WINO_F23 (3x3, stride 1, pad 1), by Winograd
        F(2x2, 3x3) with the blob's float32 semantics (docs/blob-format.md, "F32 Winograd"; C:
        eq_conv_wino_f32.c). Every float operation is rounded to float32 by storing it in an
        array('f') (exact: double rounding of +, -, * from double to float32 is innocuous).
        V = B^T d B stays in exact integers."""
        probe = self.probe
        ih, iw, ic, n = L.in_h, L.in_w, L.in_c, L.out_c
        oh, ow = L.out_h, L.out_w
        th, tw = (oh + 1) >> 1, (ow + 1) >> 1
        fa = _FA
        if L.in_enc == _B1:  # +-1 values, HWC
            cw4 = _cw(ic) * 4
            vals = [0] * (ih * iw * ic)
            k = 0
            for p in range(ih * iw):
                o = p * cw4
                for c in range(ic):
                    vals[k] = 2 * ((src[o + (c >> 3)] >> (c & 7)) & 1) - 1
                    k += 1
        else:
            vals = src
        # U = G g G^T per (n, c): 16 float32 values at U[(r * ic + c) * 16]
        K = 9 * ic
        U = _farray("f", [0.0] * (16 * n * ic))
        t = _farray("f", [0.0] * 12)
        for r in range(n):
            g = _unpack_from("<%df" % K, self.mv, L.w_off + 4 * r * K)
            for c in range(ic):
                for kx in range(3):  # rows: over ky for each kx
                    g0, g1, g2 = g[kx * ic + c], g[(3 + kx) * ic + c], g[(6 + kx) * ic + c]
                    t[kx] = g0
                    fa[0] = g0 + g1
                    fa[0] = fa[0] + g2
                    t[3 + kx] = 0.5 * fa[0]
                    fa[0] = g0 - g1
                    fa[0] = fa[0] + g2
                    t[6 + kx] = 0.5 * fa[0]
                    t[9 + kx] = g2
                o = (r * ic + c) * 16
                for q in range(4):  # columns: over kx on each row
                    a0, a1, a2 = t[3 * q], t[3 * q + 1], t[3 * q + 2]
                    U[o + 4 * q] = a0
                    fa[0] = a0 + a1
                    fa[0] = fa[0] + a2
                    U[o + 4 * q + 1] = 0.5 * fa[0]
                    fa[0] = a0 - a1
                    fa[0] = fa[0] + a2
                    U[o + 4 * q + 2] = 0.5 * fa[0]
                    U[o + 4 * q + 3] = a2
        thr, aux = self._stage_params(L)
        out = [] if L.stage == _AFFINE else None
        m = _farray("f", [0.0] * 16)
        y = _farray("f", [0.0] * (2 * ow * n))  # two output rows (2, ow, n)
        tr = _farray("f", [0.0] * 8)
        d = [0] * 16
        op = 0
        for ty in range(th):
            y0 = 2 * ty - 1
            V = []  # V[tx * ic + c]: 16 exact integers
            for tx in range(tw):
                x0 = 2 * tx - 1
                for c in range(ic):
                    for rr in range(4):
                        yy = y0 + rr
                        for ss in range(4):
                            xx = x0 + ss
                            d[4 * rr + ss] = vals[(yy * iw + xx) * ic + c] \
                                if 0 <= yy < ih and 0 <= xx < iw else 0
                    e = []
                    for ss in range(4):  # B^T d: rows
                        e.append((d[ss] - d[8 + ss], d[4 + ss] + d[8 + ss], d[8 + ss] - d[4 + ss],
                                  d[4 + ss] - d[12 + ss]))
                    v = [0] * 16
                    for rr in range(4):  # (B^T d) B: columns
                        c0, c1, c2, c3 = e[0][rr], e[1][rr], e[2][rr], e[3][rr]
                        v[4 * rr] = c0 - c2
                        v[4 * rr + 1] = c1 + c2
                        v[4 * rr + 2] = c2 - c1
                        v[4 * rr + 3] = c1 - c3
                    V.append(v)
            for r in range(n):
                ub = r * ic * 16
                for tx in range(tw):
                    for q in range(16):
                        m[q] = 0.0
                    vb = tx * ic
                    for c in range(ic):
                        v = V[vb + c]
                        uo = ub + c * 16
                        for q in range(16):
                            fa[0] = U[uo + q] * v[q]
                            m[q] = m[q] + fa[0]
                    for q in range(4):  # A^T m: rows
                        fa[0] = m[q] + m[4 + q]
                        tr[q] = fa[0] + m[8 + q]
                        fa[0] = m[4 + q] - m[8 + q]
                        tr[4 + q] = fa[0] - m[12 + q]
                    x = 2 * tx
                    for rr in range(2):  # (A^T m) A: columns
                        b = 4 * rr
                        o = (rr * ow + x) * n + r
                        fa[0] = tr[b] + tr[b + 1]
                        y[o] = fa[0] + tr[b + 2]
                        if x + 1 < ow:
                            fa[0] = tr[b + 1] - tr[b + 2]
                            y[o + n] = fa[0] - tr[b + 3]
            for rr in range(2):
                if 2 * ty + rr >= oh:
                    break
                for ox in range(ow):
                    o = (rr * ow + ox) * n
                    self._stage_pixel(L, y[o:o + n], op, thr, aux, dst, out)
                    op += 1
                    if probe is not None:
                        probe()
        return out if L.stage == _AFFINE else dst

    def _row_signs(self, L):
        """Every B1 / TERN / TERN_SPARSE weight row as a list of K values -1/0/+1 in (ky, kx, c)
        order (for the value kernel of small groups)."""
        cg = L.in_c // L.groups
        pb = _cw(cg) * 4
        pbits = pb * 8
        taps = L.kh * L.kw
        we = L.w_enc
        sparse_rows = self._sparse_rows_planes(L, pbits) if we == _SPARSE else None
        rows = []
        for r in range(L.out_c):
            sg, nz = self._row_planes(L, r, taps * pb, sparse_rows)
            vals = []
            for t in range(taps):
                for j in range(cg):
                    b = t * pbits + j
                    if nz is not None and not (nz >> b) & 1:
                        vals.append(0)
                    else:
                        vals.append(1 if (sg >> b) & 1 else -1)
            rows.append(vals)
        return rows

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
        kh, kw, sh, sw = L.kh, L.kw, L.sh, L.sw
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
                        st = ((oy * sh + ky) * iw + ox * sw) * pb
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
                        base = ((oy * sh + ky) * iw + ox * sw) * c + ch
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

    # ---------------------------------------------------------------------------- blob 1.1 ops
    def _conv_grouped(self, L, src, dst):
        """Grouped / depthwise CONV: each group's input channels are cut out as an activation of
        C/g channels and run through the ordinary kernel with a view of the layer holding that
        group's weight rows and stage entries; its N/g output channels land at channel gi*N/g."""
        g = L.groups
        ic, n = L.in_c, L.out_c
        cg, ng = ic // g, n // g
        npi = L.in_h * L.in_w
        npo = L.out_h * L.out_w
        enc, oenc = L.in_enc, L.out_enc
        out = [0] * (npo * n) if oenc == _I32 else None
        gbuf = None if oenc == _I32 else bytearray(S.act_bytes(oenc, L.out_h, L.out_w, ng))
        obits = [0] * npo if oenc == _B1 else None
        mvs = memoryview(src)
        pbi, pbg = _cw(ic) * 4, _cw(cg) * 4
        for gi in range(g):
            if enc == _B1:
                sub = bytearray(npi * pbg)
                sh, mask = gi * cg, (1 << cg) - 1
                for p in range(npi):
                    v = (_from_bytes(mvs[p * pbi:(p + 1) * pbi], "little") >> sh) & mask
                    sub[p * pbg:(p + 1) * pbg] = v.to_bytes(pbg, "little")
            else:
                sub = bytearray(npi * cg)
                for p in range(npi):
                    o = p * ic + gi * cg
                    sub[p * cg:(p + 1) * cg] = mvs[o:o + cg]
            res = self._conv(self._group_view(L, gi, cg, ng), sub, gbuf)
            o = gi * ng
            if oenc == _I32:
                for p in range(npo):
                    out[p * n + o:p * n + o + ng] = res[p * ng:(p + 1) * ng]
            elif oenc == _U8:
                for p in range(npo):
                    dst[p * n + o:p * n + o + ng] = gbuf[p * ng:(p + 1) * ng]
            else:
                pg = _cw(ng) * 4
                mg = memoryview(gbuf)
                for p in range(npo):
                    obits[p] |= _from_bytes(mg[p * pg:(p + 1) * pg], "little") << o
        if oenc == _B1:
            po = _cw(n) * 4
            for p in range(npo):
                dst[p * po:(p + 1) * po] = obits[p].to_bytes(po, "little")
        return out if oenc == _I32 else dst

    def _group_view(self, L, gi, cg, ng):
        """Layer record of group gi alone: C/g input and N/g output channels, weight rows
        [gi*N/g, (gi+1)*N/g) (TERN_SPARSE: the row range r0.. of the shared offset table) and
        the matching thresholds / mul / flip / add entries."""
        V = _Layer()
        for a in _VIEW:
            if hasattr(L, a):
                setattr(V, a, getattr(L, a))
        V.in_c, V.out_c, V.groups = cg, ng, 1
        r0 = gi * ng
        we = L.w_enc
        V.r0 = 0
        if we == _SPARSE:
            V.w_off, V.r0 = L.w_off, r0
        else:
            if we == _B1 or we == _TERN:
                rb = L.kh * L.kw * _cw(cg) * 4 * (1 if we == _B1 else 2)
            elif we == _KBIT:
                rb = L.wrb
            else:
                rb = L.K * (1 if we == _I8 else (2 if we == _I16 else 4))
            V.w_off = L.w_off + r0 * rb
        V.thr_off = L.thr_off + r0 * L.nthr * 4
        V.aux_off = L.aux_off + r0 * (1 if L.stage == _SIGN or L.stage == _MULTI else 4)
        return V

    def _act_values(self, act, enc, count, c):
        """The count values of an activation of c channels in HWC order: B1 as +-1 (a list,
        padding bits dropped), U8 codes and I32 values as they are."""
        if enc != _B1:
            return act
        pb = _cw(c) * 4
        vals = []
        app = vals.append
        mv = memoryview(act)
        for p in range(count // c if c else 0):
            v = _from_bytes(mv[p * pb:(p + 1) * pb], "little")
            for ch in range(c):
                app(1 if (v >> ch) & 1 else -1)
        return vals

    def _avgpool(self, L, src, dst):
        """avgpool_{b1,u8,i32}: acc[c] = sat32(window sum) (B1 as +-1), then the output stage."""
        iw, c = L.in_w, L.in_c
        kh, kw, sh, sw = L.kh, L.kw, L.sh, L.sw
        vals = self._act_values(src, L.in_enc, L.in_h * iw * c, c)
        thr, aux = self._stage_params(L)
        out = [] if L.stage == _AFFINE else None
        accs = [0] * c
        probe = self.probe
        op = 0
        for oy in range(L.out_h):
            for ox in range(L.out_w):
                for ch in range(c):
                    t = 0
                    for ky in range(kh):
                        base = ((oy * sh + ky) * iw + ox * sw) * c + ch
                        for kx in range(kw):
                            t += vals[base + kx * c]
                    accs[ch] = _I32_MIN if t < _I32_MIN else (_I32_MAX if t > _I32_MAX else t)
                self._stage_pixel(L, accs, op, thr, aux, dst, out)
                op += 1
                if probe is not None:
                    probe()
        return out if L.stage == _AFFINE else dst

    def _add(self, L, a, b, dst):
        """add: acc[c] = sat32(m0[c] * a0[c] + m1[c] * a1[c]) (exact: Python ints), then the stage.
        Inputs of any encoding (B1 as +-1, U8 codes, I32 values)."""
        n = L.out_c
        npix = L.out_h * L.out_w
        va = self._act_values(a, L.in_enc, npix * n, n)
        vb = self._act_values(b, L.in1_enc, npix * n, n)
        m = _unpack_from("<%di" % (2 * n), self.mv, L.w_off)
        thr, aux = self._stage_params(L)
        out = [] if L.stage == _AFFINE else None
        accs = [0] * n
        probe = self.probe
        for p in range(npix):
            o = p * n
            for ch in range(n):
                t = m[ch] * va[o + ch] + m[n + ch] * vb[o + ch]
                accs[ch] = _I32_MIN if t < _I32_MIN else (_I32_MAX if t > _I32_MAX else t)
            self._stage_pixel(L, accs, p, thr, aux, dst, out)
            if probe is not None:
                probe()
        return out if L.stage == _AFFINE else dst

    def _concat(self, L, a, b, dst):
        """concat_{b1,u8,i32}: channels of a, then channels of b (B1: b's bits shifted up by
        a's channel count within the output pixel's words)."""
        c0, c1, n = L.in_c, L.in1_c, L.out_c
        npix = L.out_h * L.out_w
        enc = L.in_enc
        if enc == _I32:
            out = []
            for p in range(npix):
                out.extend(a[p * c0:(p + 1) * c0])
                out.extend(b[p * c1:(p + 1) * c1])
            return out
        if enc == _U8:
            for p in range(npix):
                dst[p * n:p * n + c0] = a[p * c0:(p + 1) * c0]
                dst[p * n + c0:(p + 1) * n] = b[p * c1:(p + 1) * c1]
            return dst
        pa, pb, po = _cw(c0) * 4, _cw(c1) * 4, _cw(n) * 4
        ma, mb = memoryview(a), memoryview(b)
        for p in range(npix):
            v = _from_bytes(ma[p * pa:(p + 1) * pa], "little") | \
                (_from_bytes(mb[p * pb:(p + 1) * pb], "little") << c0)
            dst[p * po:(p + 1) * po] = v.to_bytes(po, "little")
        return dst


# grouped B1/TERN/TERN_SPARSE layers with at most this many products an output channel run on the
# value kernel (one pass over every group); larger groups on the bit kernels, one group at a time
_GROUP_VALUES_K = 64

# attributes a group view copies from its layer (the rest it sets itself)
_VIEW = ("index", "op", "in_enc", "in_h", "in_w", "kh", "kw", "sh", "sw", "ph", "pw", "out_h", "out_w",
         "out_enc", "K", "w_enc", "w_rows", "stage", "nthr", "out_bits", "shift", "wsb", "wrb", "lut_off",
         "lut_cols", "wbits")
