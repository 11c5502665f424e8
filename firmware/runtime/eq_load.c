/* edgeq blob runtime, loader: field readers, validation (every offset, size, shape and code of
 * a blob is checked before the executor may touch it), and the arena plan.
 * Semantics and layout: docs/blob-format.md. Field offsets: eq_spec.h (generated from edgeq/spec.py).
 */
#include "eq_rt_private.h"
#include "eq_conv_fast.h"

static const char *const k_status_strings[EQ_STATUS_COUNT] = EQ_STATUS_STRINGS;

const char *eq_status_str(eq_status_t s)
{
    if (s < 0 || s >= (eq_status_t)EQ_STATUS_COUNT) {
        return "unknown status";
    }
    return k_status_strings[s];
}

uint32_t eq_crc32(uint32_t crc, const uint8_t *p, uint32_t n)
{
    /* nibble-table CRC-32 (poly 0xEDB88320): 64 bytes of table, fast enough for flash-sized blobs */
    static const uint32_t t[16] = {
        0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u,
        0x4db26158u, 0x5005713cu, 0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
        0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu};
    uint32_t i;
    crc = ~crc;
    for (i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ t[crc & 15u];
        crc = (crc >> 4) ^ t[crc & 15u];
    }
    return ~crc;
}

/* ---- checked size arithmetic ----------------------------------------------------------------
 * Every count, size, offset and product derived from blob fields goes through these (or is
 * computed in 64 bits from at most three 32-bit factors, which cannot wrap): a result that does
 * not fit 32 bits fails the check instead of wrapping. The executor only uses sizes proven here. */
static int eq_mul_u32_ok(uint32_t a, uint32_t b, uint32_t *r)
{
    const uint64_t p = (uint64_t)a * b;
    *r = (uint32_t)p;
    return p <= 0xffffffffull;
}

static int eq_add_u32_ok(uint32_t a, uint32_t b, uint32_t *r)
{
    *r = a + b; /* unsigned: wraps, never UB */
    return *r >= a;
}

/* r = a * b * c, failing when any partial product exceeds 32 bits */
static int eq_mul3_u32_ok(uint32_t a, uint32_t b, uint32_t c, uint32_t *r)
{
    return eq_mul_u32_ok(a, b, r) && eq_mul_u32_ok(*r, c, r);
}

/* ---- sizes (eq_rule_act_bytes and the other derived rules: generated in eq_spec.h) ---- */
static uint64_t round8(uint64_t n) { return (n + 7u) & ~(uint64_t)7u; }

eq_status_t eq_rt_tensor(const eq_model_t *m, int32_t idx, tensor_t *t)
{
    const uint8_t *e;
    uint32_t off, end;
    CHECK(idx >= 0 && (uint32_t)idx < m->n_tensors, EQ_ERR_BOUNDS);
    e = m->blob + m->tensor_off + (uint32_t)idx * EQ_TENSOR_SIZE_BYTES; /* table bound: load */
    off = rd32(e + EQ_TENSOR_OFFSET);
    t->nbytes = rd32(e + EQ_TENSOR_NBYTES);
    CHECK(eq_add_u32_ok(off, t->nbytes, &end) && end <= m->size, EQ_ERR_BOUNDS);
    CHECK((off & 3u) == 0u, EQ_ERR_BOUNDS);
    t->data = m->blob + off;
    t->enc = rd8(e + EQ_TENSOR_ENC);
    t->bits = rd8(e + EQ_TENSOR_BITS);
    t->rank = rd8(e + EQ_TENSOR_RANK);
    t->d[0] = rd32(e + EQ_TENSOR_D0);
    t->d[1] = rd32(e + EQ_TENSOR_D1);
    t->d[2] = rd32(e + EQ_TENSOR_D2);
    t->d[3] = rd32(e + EQ_TENSOR_D3);
    t->aux = rd32(e + EQ_TENSOR_AUX);
    return EQ_OK;
}


void eq_rt_layer(const eq_model_t *m, uint32_t i, layer_t *L)
{
    const uint8_t *e = m->blob + m->layer_off + i * EQ_LAYER_SIZE_BYTES;
    L->op = rd8(e + EQ_LAYER_OP);
    L->in_enc = rd8(e + EQ_LAYER_IN_ENC);
    L->out_enc = rd8(e + EQ_LAYER_OUT_ENC);
    L->out_stage = rd8(e + EQ_LAYER_OUT_STAGE);
    L->in_h = rd16(e + EQ_LAYER_IN_H);
    L->in_w = rd16(e + EQ_LAYER_IN_W);
    L->in_c = rd16(e + EQ_LAYER_IN_C);
    L->out_h = rd16(e + EQ_LAYER_OUT_H);
    L->out_w = rd16(e + EQ_LAYER_OUT_W);
    L->out_c = rd16(e + EQ_LAYER_OUT_C);
    L->kh = rd8(e + EQ_LAYER_KH);
    L->kw = rd8(e + EQ_LAYER_KW);
    L->stride = rd8(e + EQ_LAYER_STRIDE);
    L->pad = rd8(e + EQ_LAYER_PAD);
    L->w_enc = rd8(e + EQ_LAYER_W_ENC);
    L->out_bits = rd8(e + EQ_LAYER_OUT_BITS);
    L->shift = rd8(e + EQ_LAYER_SHIFT);
    L->flags = rd8(e + EQ_LAYER_FLAGS);
    L->t_weight = rds16(e + EQ_LAYER_T_WEIGHT);
    L->t_lut = rds16(e + EQ_LAYER_T_LUT);
    L->t_thr = rds16(e + EQ_LAYER_T_THR);
    L->t_aux = rds16(e + EQ_LAYER_T_AUX);
    L->macs = rd32(e + EQ_LAYER_MACS);
    L->src0_raw = rd16(e + EQ_LAYER_SRC0);
    L->src1_raw = rd16(e + EQ_LAYER_SRC1);
    L->groups_raw = rd16(e + EQ_LAYER_GROUPS);
    L->stride_w_raw = rd8(e + EQ_LAYER_STRIDE_W);
    L->pad_w_raw = rd8(e + EQ_LAYER_PAD_W);
    L->src0 = L->src0_raw ? L->src0_raw - 1u : i;
    L->src1 = L->src1_raw ? L->src1_raw - 1u : 0u;
    L->groups = L->groups_raw ? L->groups_raw : 1u;
    L->stride_w = L->stride_w_raw ? L->stride_w_raw : L->stride;
    L->pad_w = L->pad_w_raw ? L->pad_w_raw - 1u : L->pad;
}

/* bits above `c` in the last word of every padded row of `words_per_row` words must be zero */
static eq_status_t check_pad_bits(const uint32_t *w, uint32_t rows, uint32_t words_per_row, uint32_t c)
{
    uint32_t r, used = c % 32u;
    uint32_t mask;
    if (used == 0u) {
        return EQ_OK;
    }
    mask = ~((1u << used) - 1u);
    for (r = 0; r < rows; r++) {
        CHECK((w[r * words_per_row + words_per_row - 1u] & mask) == 0u, EQ_ERR_BOUNDS);
    }
    return EQ_OK;
}

/* packed KBIT rows (n rows of k codes, row_bytes each): every code < 2**bits, padding bits 0 */
static eq_status_t check_kbit_codes(const uint8_t *data, uint32_t n, uint64_t k, uint32_t bits,
                                    uint32_t row_bytes)
{
    const uint32_t sb = eq_rule_kbit_slot_bits(bits), per = 8u / sb, cm = (1u << sb) - 1u;
    const uint32_t lim = 1u << bits;
    uint32_t r, b, q;
    for (r = 0; r < n; r++) {
        const uint8_t *row = data + (size_t)r * row_bytes;
        for (b = 0; b < row_bytes; b++) {
            for (q = 0; q < per; q++) {
                uint32_t code = ((uint32_t)row[b] >> (q * sb)) & cm;
                uint64_t j = (uint64_t)b * per + q;
                CHECK(code < (j < k ? lim : 1u), EQ_ERR_BOUNDS);
            }
        }
    }
    return EQ_OK;
}

/* decode every skip-zero row once: offsets monotone, nibbles valid, positions inside K */
static eq_status_t check_sparse(const tensor_t *t, uint32_t n, uint64_t k)
{
    const uint8_t *stream;
    uint32_t r, total = t->aux;
    /* 64 bits: a nibble count of 0xFFFFFFFF must not wrap to a 0-byte stream */
    CHECK((uint64_t)4u * ((uint64_t)n + 1u) + ((uint64_t)total + 1u) / 2u == t->nbytes, EQ_ERR_BOUNDS);
    stream = t->data + 4u * (n + 1u);
    CHECK(rd32(t->data) == 0u, EQ_ERR_BOUNDS);
    CHECK(rd32(t->data + 4u * n) == total, EQ_ERR_BOUNDS);
    for (r = 0; r < n; r++) {
        uint32_t a = rd32(t->data + 4u * r), b = rd32(t->data + 4u * (r + 1u)), q;
        uint64_t p = 0;
        CHECK(a <= b && b <= total, EQ_ERR_BOUNDS);
        for (q = a; q < b; q++) {
            uint32_t v = (stream[q >> 1] >> ((q & 1u) * 4u)) & 15u;
            if (v == 7u) {
                p += 7u;
                CHECK(p <= k, EQ_ERR_BOUNDS); /* a skip may end at K, never past it (the kernel) */
                continue;
            }
            CHECK(v != 15u, EQ_ERR_BOUNDS);
            p += v & 7u;
            CHECK(p < k, EQ_ERR_BOUNDS);
            p += 1u;
        }
    }
    return EQ_OK;
}

/* count float32 values in t: none is NaN, and with bounded != 0 each is finite with a biased
 * exponent <= 127 + max_exp (|x| < 2**(max_exp + 1)); thresholds may be +-inf */
static eq_status_t check_f32(const tensor_t *t, uint64_t count, int bounded, uint32_t max_exp)
{
    uint32_t i;
    /* count is a 64-bit product of blob fields (n * K can reach 2**48): never truncated */
    CHECK(t->enc == EQ_ENC_F32 && count * 4u == t->nbytes, EQ_ERR_SHAPE);
    for (i = 0; i < count; i++) {
        const uint32_t v = rd32(t->data + 4u * i), e = (v >> 23) & 0xffu;
        CHECK(e != 0xffu || (!bounded && (v & 0x7fffffu) == 0u), EQ_ERR_BOUNDS);
        CHECK(!bounded || e <= 127u + max_exp, EQ_ERR_BOUNDS);
    }
    return EQ_OK;
}

/* Validate one CONV layer's tensors; *max_prod = largest |product| for the overflow bound. */
static eq_status_t check_conv_weights(const eq_model_t *m, const layer_t *L, uint32_t in_levels,
                                      uint64_t *max_prod)
{
    tensor_t t;
    eq_status_t st;
    const uint32_t cg = L->in_c / L->groups; /* groups divide in_c: checked by the caller */
    uint32_t n = L->out_c, cw = EQ_WORDS(cg);
    uint64_t k = (uint64_t)L->kh * L->kw * cg;
    const uint64_t amax = eq_rule_act_code_max(L->in_enc, in_levels);
    st = eq_rt_tensor(m, L->t_weight, &t);
    if (st != EQ_OK) {
        return st;
    }
    CHECK(t.enc == L->w_enc, EQ_ERR_SHAPE);
    CHECK(t.d[0] == n && t.d[1] == L->kh && t.d[2] == L->kw && t.d[3] == cg, EQ_ERR_SHAPE);
    switch (L->w_enc) {
    case EQ_ENC_B1:
    case EQ_ENC_TERN: {
        /* rows of cw words: n*kh*kw of them (B1), twice that (TERN: sign and nonzero planes) */
        uint32_t rows, bytes;
        CHECK(eq_mul3_u32_ok(n, L->kh, L->kw, &rows), EQ_ERR_SHAPE);
        CHECK(eq_mul_u32_ok(rows, L->w_enc == EQ_ENC_TERN ? 2u : 1u, &rows), EQ_ERR_SHAPE);
        CHECK(eq_mul3_u32_ok(rows, cw, 4u, &bytes) && bytes == t.nbytes, EQ_ERR_SHAPE);
        *max_prod = eq_rule_weight_product_max(L->w_enc, amax);
        return check_pad_bits((const uint32_t *)(const void *)t.data, rows, cw, cg);
    }
    case EQ_ENC_TERN_SPARSE:
        *max_prod = eq_rule_weight_product_max(L->w_enc, amax);
        return check_sparse(&t, n, k);
    case EQ_ENC_I8:
        CHECK((uint64_t)n * k == t.nbytes, EQ_ERR_SHAPE);
        *max_prod = eq_rule_weight_product_max(L->w_enc, amax);
        return EQ_OK;
    case EQ_ENC_I16:
        CHECK((uint64_t)2u * n * k == t.nbytes, EQ_ERR_SHAPE);
        *max_prod = eq_rule_weight_product_max(L->w_enc, amax);
        return EQ_OK;
    case EQ_ENC_F32: /* float accumulators: |w| < 2**64 keeps every sum finite (K < 2**32) */
        *max_prod = eq_rule_weight_product_max(L->w_enc, amax); /* 0: no integer bound */
        return check_f32(&t, (uint64_t)n * k, 1, EQ_F32_MAX_EXP_WEIGHT);
    case EQ_ENC_KBIT: {
        tensor_t lut;
        uint32_t i, rows, cols;
        uint64_t big = 0, row_bytes;
        CHECK(t.bits >= 1u && t.bits <= 8u, EQ_ERR_SHAPE);
        /* rows of k codes at eq_rule_kbit_slot_bits(bits) bits each, padded to whole 32-bit words */
        row_bytes = eq_rule_kbit_row_bytes(k, t.bits);
        CHECK((uint64_t)n * row_bytes == t.nbytes, EQ_ERR_SHAPE);
        st = check_kbit_codes(t.data, n, k, t.bits, (uint32_t)row_bytes);
        if (st != EQ_OK) {
            return st;
        }
        st = eq_rt_tensor(m, L->t_lut, &lut);
        if (st != EQ_OK) {
            return st;
        }
        rows = lut.d[0];
        cols = lut.d[1];
        CHECK(lut.enc == EQ_ENC_I32 && lut.rank == 2u, EQ_ERR_SHAPE);
        CHECK(rows == (1u << t.bits) && cols >= in_levels && cols <= 65535u, EQ_ERR_SHAPE);
        CHECK((uint64_t)rows * cols * 4u == lut.nbytes, EQ_ERR_SHAPE);
        for (i = 0; i < rows * cols; i++) {
            int64_t v = (int32_t)rd32(lut.data + 4u * i);
            uint64_t a = (uint64_t)(v < 0 ? -v : v);
            if (a > big) {
                big = a;
            }
        }
        *max_prod = big;
        return EQ_OK;
    }
    default:
        return EQ_ERR_UNSUPPORTED;
    }
}

/* the output stage's tensors (CONV, AVGPOOL, ADD); f32: float accumulators (F32 weights) */
static eq_status_t check_stage(const eq_model_t *m, const layer_t *L, int f32)
{
    tensor_t a, b;
    eq_status_t st;
    uint32_t n = L->out_c;
    st = eq_rt_tensor(m, L->t_thr, &a);
    if (st == EQ_OK) {
        st = eq_rt_tensor(m, L->t_aux, &b);
    }
    if (st != EQ_OK) {
        return st;
    }
    /* F32 layers: float32 thresholds (not NaN), bounded float32 mul and add, no shift */
    if (L->out_stage == EQ_OUT_SIGN || L->out_stage == EQ_OUT_MULTI) {
        uint32_t nthr;
        if (L->out_stage == EQ_OUT_SIGN) {
            CHECK(L->out_enc == EQ_ENC_B1, EQ_ERR_SHAPE);
            nthr = 1u;
        } else {
            CHECK(L->out_enc == EQ_ENC_U8 && L->out_bits >= 1u && L->out_bits <= 8u, EQ_ERR_SHAPE);
            nthr = (1u << L->out_bits) - 1u;
        }
        CHECK(b.enc == EQ_ENC_U8 && b.nbytes == n, EQ_ERR_SHAPE);
        if (f32) {
            return check_f32(&a, (uint64_t)n * nthr, 0, 0u);
        }
        CHECK(a.enc == EQ_ENC_I32 && (uint64_t)n * nthr * 4u == a.nbytes, EQ_ERR_SHAPE);
        return EQ_OK;
    }
    if (L->out_stage == EQ_OUT_AFFINE) {
        CHECK(L->out_enc == EQ_ENC_I32 && L->shift < 32u, EQ_ERR_SHAPE);
        if (f32) {
            CHECK(L->shift == 0u, EQ_ERR_SHAPE);
            st = check_f32(&a, n, 1, EQ_F32_MAX_EXP_MUL);
            return st != EQ_OK ? st : check_f32(&b, n, 1, EQ_F32_MAX_EXP_ADD);
        }
        CHECK(a.enc == EQ_ENC_I32 && a.nbytes == (uint64_t)n * 4u, EQ_ERR_SHAPE);
        CHECK(b.enc == EQ_ENC_I32 && b.nbytes == (uint64_t)n * 4u, EQ_ERR_SHAPE);
        return EQ_OK;
    }
    if (L->out_stage == EQ_OUT_REQUANT) { /* integer layers only; 64-bit product, shift < 64 */
        CHECK(!f32, EQ_ERR_UNSUPPORTED);
        CHECK(L->out_enc == EQ_ENC_U8 && L->out_bits >= 1u && L->out_bits <= 8u, EQ_ERR_SHAPE);
        CHECK(L->shift < 64u, EQ_ERR_SHAPE);
        CHECK(a.enc == EQ_ENC_I32 && a.nbytes == (uint64_t)n * 4u, EQ_ERR_SHAPE);
        CHECK(b.enc == EQ_ENC_I32 && b.nbytes == (uint64_t)n * 4u, EQ_ERR_SHAPE);
        return EQ_OK;
    }
    return EQ_ERR_UNSUPPORTED;
}

/* levels (0 or a power of two up to 256) -> log2(levels) + 1, 0 for 0 */
static uint8_t lev_code(uint32_t levels)
{
    uint8_t b = 0;
    while (levels != 0u) {
        levels >>= 1;
        b++;
    }
    return b;
}

/* levels of the codes a stage writes (0: I32 values) */
static uint32_t stage_levels(const layer_t *L)
{
    return L->out_stage == EQ_OUT_SIGN ? 2u
           : (L->out_stage == EQ_OUT_MULTI || L->out_stage == EQ_OUT_REQUANT) ? (1u << L->out_bits)
           : 0u;
}

/* AVGPOOL / ADD: the integer output stage of an (out_w, out_c) accumulator row; *lv = its levels */
static eq_status_t check_acc_stage(const eq_model_t *m, const layer_t *L, uint64_t *acc_row, uint32_t *lv)
{
    const eq_status_t st = check_stage(m, L, 0);
    if ((uint64_t)L->out_w * L->out_c * 4u > *acc_row) {
        *acc_row = (uint64_t)L->out_w * L->out_c * 4u;
    }
    *lv = stage_levels(L);
    return st;
}

/* shape of value v (0: the input, j + 1: layer j's output, j < the current layer) */
typedef struct {
    uint32_t enc, h, w, c;
} vshape_t;

static void value_shape(const eq_model_t *m, uint32_t v, uint32_t in_enc, vshape_t *s)
{
    layer_t P;
    if (v == 0u) {
        s->enc = in_enc;
        s->h = m->in_h;
        s->w = m->in_w;
        s->c = m->in_c;
        return;
    }
    eq_rt_layer(m, v - 1u, &P);
    s->enc = P.out_enc;
    s->h = P.out_h;
    s->w = P.out_w;
    s->c = P.out_c;
}

/* ADD: t_weight = I32 (2, C) multipliers, each |m| <= 2**30 */
static eq_status_t check_add_weights(const eq_model_t *m, const layer_t *L)
{
    tensor_t t;
    uint32_t i;
    const eq_status_t st = eq_rt_tensor(m, L->t_weight, &t);
    if (st != EQ_OK) {
        return st;
    }
    CHECK(t.enc == EQ_ENC_I32 && t.rank == 2u && t.d[0] == 2u && t.d[1] == L->out_c, EQ_ERR_SHAPE);
    CHECK(t.nbytes == (uint64_t)8u * L->out_c, EQ_ERR_SHAPE);
    for (i = 0; i < 2u * L->out_c; i++) {
        const int32_t v = (int32_t)rd32(t.data + 4u * i);
        CHECK(v >= -(1 << 30) && v <= (1 << 30), EQ_ERR_BOUNDS);
    }
    return EQ_OK;
}

/* the window / stride / padding rule of CONV (pad < max(kh, kw), out = (in + 2 pad - k) / s + 1)
 * and of the pools (pad 0, window inside the input) */
static eq_status_t check_window(const layer_t *L, uint32_t h, uint32_t w, int pool)
{
    const uint32_t kmax = L->kh > L->kw ? L->kh : L->kw;
    CHECK(L->kh >= 1u && L->kw >= 1u && L->stride >= 1u && L->stride_w >= 1u, EQ_ERR_SHAPE);
    if (pool) {
        CHECK(L->pad == 0u && L->pad_w == 0u && L->kh <= h && L->kw <= w, EQ_ERR_SHAPE);
    }
    CHECK(L->pad < kmax && L->pad_w < kmax, EQ_ERR_SHAPE);
    CHECK(h + 2u * L->pad >= L->kh && w + 2u * L->pad_w >= L->kw, EQ_ERR_SHAPE);
    CHECK(L->out_h == (h + 2u * L->pad - L->kh) / L->stride + 1u, EQ_ERR_SHAPE);
    CHECK(L->out_w == (w + 2u * L->pad_w - L->kw) / L->stride_w + 1u, EQ_ERR_SHAPE);
    return EQ_OK;
}

void eq_rt_conv_shape(const layer_t *L, eq_conv_shape_t *s)
{
    memset(s, 0, sizeof(*s));
    s->in_h = (uint16_t)L->in_h;
    s->in_w = (uint16_t)L->in_w;
    s->in_c = (uint16_t)L->in_c;
    s->out_h = (uint16_t)L->out_h;
    s->out_w = (uint16_t)L->out_w;
    s->out_c = (uint16_t)L->out_c;
    s->kh = (uint8_t)L->kh;
    s->kw = (uint8_t)L->kw;
    s->stride = (uint8_t)L->stride;
    s->pad = (uint8_t)L->pad;
    s->stride_w = (uint8_t)L->stride_w_raw;
    s->pad_w = (uint8_t)L->pad_w_raw;
}


static eq_status_t model_load(eq_model_t *m, const uint8_t *blob, uint32_t size);
static eq_status_t load_layers(eq_model_t *m, uint32_t in_enc, uint32_t in_levels);


eq_status_t eq_model_load(eq_model_t *m, const uint8_t *blob, uint32_t size)
{
    /* a blob that fails any check leaves no half-filled model behind: eq_model_run refuses an
     * all-zero model (blob NULL), so a caller that ignores the status cannot run unproven sizes */
    const eq_status_t st = model_load(m, blob, size);
    if (st != EQ_OK && m != NULL) {
        memset(m, 0, sizeof(*m));
    }
    return st;
}

static eq_status_t model_load(eq_model_t *m, const uint8_t *blob, uint32_t size)
{
    static const uint8_t magic[4] = EQ_BLOB_MAGIC_BYTES;
    static const uint8_t zero4[4] = {0, 0, 0, 0};
    uint32_t total, crc, enc, levels, h, w, c, pre;
    uint64_t end;
    const uint16_t endian_probe = 1u;

    CHECK(m != NULL && blob != NULL, EQ_ERR_ARG);
    memset(m, 0, sizeof(*m));
    CHECK(*(const uint8_t *)&endian_probe == 1u, EQ_ERR_UNSUPPORTED); /* little-endian only */
    CHECK(((uintptr_t)blob & 7u) == 0u, EQ_ERR_ARG);
    CHECK(size >= EQ_HEADER_SIZE_BYTES, EQ_ERR_TRUNCATED);
    CHECK(memcmp(blob, magic, 4) == 0, EQ_ERR_MAGIC);
    CHECK(rd16(blob + EQ_HEADER_VERSION_MAJOR) == EQ_BLOB_VERSION_MAJOR, EQ_ERR_VERSION);
    /* minor versions add compatible features: this runtime reads every minor up to its own */
    CHECK(rd16(blob + EQ_HEADER_VERSION_MINOR) <= EQ_BLOB_VERSION_MINOR, EQ_ERR_VERSION);
    total = rd32(blob + EQ_HEADER_TOTAL_SIZE);
    CHECK(total <= size, EQ_ERR_TRUNCATED);
    CHECK(total >= EQ_HEADER_SIZE_BYTES, EQ_ERR_BOUNDS);
    CHECK(rd32(blob + EQ_HEADER_HEADER_SIZE) == EQ_HEADER_SIZE_BYTES, EQ_ERR_BOUNDS);
    crc = eq_crc32(0, blob, EQ_HEADER_CRC32);
    crc = eq_crc32(crc, zero4, 4);
    crc = eq_crc32(crc, blob + EQ_HEADER_CRC32 + 4u, total - (EQ_HEADER_CRC32 + 4u));
    CHECK(crc == rd32(blob + EQ_HEADER_CRC32), EQ_ERR_CRC);

    m->blob = blob;
    m->size = total;
    m->n_tensors = rd32(blob + EQ_HEADER_N_TENSORS);
    m->tensor_off = rd32(blob + EQ_HEADER_TENSOR_TABLE_OFF);
    m->n_layers = rd32(blob + EQ_HEADER_N_LAYERS);
    m->layer_off = rd32(blob + EQ_HEADER_LAYER_TABLE_OFF);
    end = (uint64_t)m->tensor_off + (uint64_t)m->n_tensors * EQ_TENSOR_SIZE_BYTES;
    CHECK(end <= total && m->n_tensors <= 32767u, EQ_ERR_BOUNDS);
    end = (uint64_t)m->layer_off + (uint64_t)m->n_layers * EQ_LAYER_SIZE_BYTES;
    CHECK(end <= total && m->n_layers >= 1u, EQ_ERR_BOUNDS);
    end = (uint64_t)rd32(blob + EQ_HEADER_META_OFF) + rd32(blob + EQ_HEADER_META_SIZE);
    CHECK(end <= total, EQ_ERR_BOUNDS);

    m->in_c = (uint16_t)rd16(blob + EQ_HEADER_IN_C);
    m->in_h = (uint16_t)rd16(blob + EQ_HEADER_IN_H);
    m->in_w = (uint16_t)rd16(blob + EQ_HEADER_IN_W);
    m->pre_mode = (uint8_t)rd8(blob + EQ_HEADER_PRE_MODE);
    m->pre_param = (uint8_t)rd8(blob + EQ_HEADER_PRE_PARAM);
    m->n_classes = (uint16_t)rd16(blob + EQ_HEADER_N_CLASSES);
    CHECK(m->in_c > 0u && m->in_h > 0u && m->in_w > 0u && m->n_classes > 0u, EQ_ERR_SHAPE);
    h = m->in_h;
    w = m->in_w;
    c = m->in_c;
    /* pixels and wire bytes must fit (below 2**31, like the arena): a caller sizes its input
     * buffer from them and the input packers read in_c * in_h * in_w bytes */
    CHECK(eq_mul3_u32_ok(h, w, c, &m->input_pixels) && m->input_pixels < 0x80000000u, EQ_ERR_TOO_LARGE);
    pre = m->pre_mode;
    if (pre == EQ_PRE_THRESH) {
        enc = EQ_ENC_B1;
        levels = 2u;
    } else if (pre == EQ_PRE_RAW) {
        enc = EQ_ENC_U8;
        levels = 256u;
    } else if (pre == EQ_PRE_QUANT) {
        CHECK(m->pre_param >= 1u && m->pre_param <= 8u, EQ_ERR_SHAPE);
        enc = EQ_ENC_U8;
        levels = 1u << m->pre_param;
    } else {
        return EQ_ERR_UNSUPPORTED;
    }
    m->input_wire = (uint32_t)eq_rule_wire_bytes(pre, m->input_pixels); /* <= input_pixels */
    m->version_minor = (uint16_t)rd16(blob + EQ_HEADER_VERSION_MINOR);
    return load_layers(m, enc, levels);
}

/* The layer table (its bounds checked by model_load): every layer's inputs, shapes, tensors and
 * accumulator bound, then the arena plan. enc/levels: the preprocessed input (value 0). */
static eq_status_t load_layers(eq_model_t *m, uint32_t in_enc, uint32_t in_levels)
{
    /* levels of each value's codes, a power of two (2 .. 256) or 0 for I32, kept as
     * log2(levels) + 1 (0: I32) in a byte. Sequential blobs read only value i at layer i, so two
     * slots (v & 1) serve any number of layers; DAG blobs keep one per value. (The M3 boards
     * have 4 KB of stack: the loader's arrays take 1.8 KB.) */
    uint8_t lev[EQ_MAX_DAG_LAYERS + 1u];
    uint8_t last[EQ_MAX_DAG_LAYERS + 1u], live[EQ_MAX_DAG_LAYERS + 1u]; /* layer ids <= 255 */
    uint32_t sz[EQ_MAX_DAG_LAYERS + 1u];
    uint32_t i, dag = 0;
    uint64_t max_act, acc_row = 0, peak = 0;
    vshape_t v0, v1;
    eq_status_t st;
    layer_t L;

    for (i = 0; i < m->n_layers; i++) { /* a DAG blob names an input somewhere */
        eq_rt_layer(m, i, &L);
        if (L.src0_raw != 0u || L.src1_raw != 0u) {
            dag = 1u;
        }
    }
    CHECK(!dag || m->n_layers <= EQ_MAX_DAG_LAYERS, EQ_ERR_TOO_LARGE);
    m->dag = (uint8_t)dag;
#define LEV_SLOT(v) lev[dag ? (v) : ((v) & 1u)]
#define LEV(v) (LEV_SLOT(v) ? 1u << (LEV_SLOT(v) - 1u) : 0u)
    LEV_SLOT(0u) = lev_code(in_levels);
    max_act = eq_rule_act_bytes(in_enc, m->in_h, m->in_w, m->in_c);

    for (i = 0; i < m->n_layers; i++) {
        uint32_t lv = 0;
        eq_rt_layer(m, i, &L);
        if (eq_rule_uses_1_1(L.op, L.out_stage, L.src0_raw, L.src1_raw, L.groups_raw,
                             L.stride_w_raw, L.pad_w_raw)) {
            /* a blob marked 1.0 holds no 1.1 feature: refuse rather than guess what it meant */
            CHECK(m->version_minor >= 1u, EQ_ERR_VERSION);
            m->v11 = 1u;
        }
        if (eq_rule_uses_1_2(L.flags)) { /* layer flags: blob 1.2, and only the ones we know */
            CHECK(m->version_minor >= 2u, EQ_ERR_VERSION);
            CHECK((L.flags & ~(uint32_t)EQ_LFLAG_WINO_F23) == 0u, EQ_ERR_UNSUPPORTED);
            CHECK(eq_rule_wino_f23_ok(L.op, L.w_enc, L.kh, L.kw, L.stride, L.stride_w_raw, L.pad,
                                      L.pad_w_raw, L.groups_raw), EQ_ERR_UNSUPPORTED);
        }
        /* inputs: earlier values only (topological order); src1 for ADD / CONCAT only */
        CHECK(L.src0 <= i, EQ_ERR_SHAPE);
        if (L.op == EQ_OP_ADD || L.op == EQ_OP_CONCAT) {
            CHECK(L.src1_raw != 0u && L.src1 <= i, EQ_ERR_SHAPE);
        } else {
            CHECK(L.src1_raw == 0u, EQ_ERR_SHAPE);
        }
        if (L.op != EQ_OP_CONV) {
            CHECK(L.groups_raw == 0u || L.groups_raw == 1u, EQ_ERR_SHAPE);
        }
        if (L.op != EQ_OP_CONV && L.op != EQ_OP_MAXPOOL && L.op != EQ_OP_AVGPOOL) {
            CHECK(L.stride_w_raw == 0u && L.pad_w_raw == 0u, EQ_ERR_SHAPE);
        }
        value_shape(m, L.src0, in_enc, &v0);
        CHECK(L.in_enc == v0.enc && L.in_h == v0.h && L.in_w == v0.w && L.in_c == v0.c, EQ_ERR_SHAPE);
        if (L.op == EQ_OP_CONV) {
            const int f32 = L.w_enc == EQ_ENC_F32;
            uint64_t max_prod = 0, k;
            eq_conv_shape_t fs;
            CHECK(v0.enc == EQ_ENC_B1 || v0.enc == EQ_ENC_U8, EQ_ERR_UNSUPPORTED); /* no conv on I32 */
            st = check_window(&L, v0.h, v0.w, 0);
            if (st != EQ_OK) {
                return st;
            }
            CHECK(L.out_c >= 1u, EQ_ERR_SHAPE);
            CHECK(v0.c % L.groups == 0u && L.out_c % L.groups == 0u, EQ_ERR_SHAPE);
            eq_rt_conv_shape(&L, &fs);
            k = (uint64_t)L.kh * L.kw * (v0.c / L.groups);
            st = check_conv_weights(m, &L, LEV(L.src0), &max_prod);
            if (st != EQ_OK) {
                return st;
            }
            CHECK(eq_rule_acc_fits(k, max_prod), EQ_ERR_TOO_LARGE); /* int32 accumulators never overflow */
            st = check_stage(m, &L, f32);
            if (st != EQ_OK) {
                return st;
            }
            if ((uint64_t)L.out_w * L.out_c * 4u > acc_row) {
                acc_row = (uint64_t)L.out_w * L.out_c * 4u;
            }
            if (L.flags & EQ_LFLAG_WINO_F23) { /* F32 Winograd (eq_conv_wino_f32.c) */
                const uint64_t need = round8(eq_rule_wino_f23_scratch(L.in_c, L.out_w, L.out_c));
                if (need > acc_row) {
                    acc_row = need;
                }
            }
            /* whole-layer fast path scratch (eq_conv_fast.h), under the rule run_conv tries them by:
             * one group, equal horizontal and vertical stride and padding */
            if (!f32 && L.groups == 1u && L.stride_w == L.stride && L.pad_w == L.pad) {
                const uint64_t need = round8(eq_conv_fast_scratch(&fs, (uint8_t)L.in_enc, (uint8_t)L.w_enc,
                                                                  (uint8_t)L.out_stage, 0u));
                if (need > acc_row) {
                    acc_row = need;
                }
            }
            lv = stage_levels(&L);
        } else if (L.op == EQ_OP_MAXPOOL || L.op == EQ_OP_AVGPOOL) {
            st = check_window(&L, v0.h, v0.w, 1);
            if (st != EQ_OK) {
                return st;
            }
            CHECK(L.out_c == v0.c, EQ_ERR_SHAPE);
            if (L.op == EQ_OP_MAXPOOL) {
                CHECK(L.out_enc == v0.enc, EQ_ERR_SHAPE);
                lv = LEV(L.src0);
            } else { /* window sums of B1 (+-1) / U8 / I32 values, then the output stage */
                st = check_acc_stage(m, &L, &acc_row, &lv);
                if (st != EQ_OK) {
                    return st;
                }
            }
        } else if (L.op == EQ_OP_FLATTEN) {
            CHECK(L.out_enc == v0.enc && L.out_h == 1u && L.out_w == 1u, EQ_ERR_SHAPE);
            CHECK((uint64_t)v0.h * v0.w * v0.c == L.out_c, EQ_ERR_SHAPE);
            lv = LEV(L.src0);
        } else if (L.op == EQ_OP_ADD || L.op == EQ_OP_CONCAT) {
            value_shape(m, L.src1, in_enc, &v1);
            CHECK(v1.h == v0.h && v1.w == v0.w && L.out_h == v0.h && L.out_w == v0.w, EQ_ERR_SHAPE);
            if (L.op == EQ_OP_ADD) { /* encodings may differ */
                CHECK(v1.c == v0.c && L.out_c == v0.c, EQ_ERR_SHAPE);
                st = check_add_weights(m, &L);
                if (st == EQ_OK) {
                    st = check_acc_stage(m, &L, &acc_row, &lv);
                }
                if (st != EQ_OK) {
                    return st;
                }
            } else {
                CHECK(v1.enc == v0.enc && L.out_enc == v0.enc, EQ_ERR_SHAPE);
                CHECK(L.out_c == v0.c + v1.c, EQ_ERR_SHAPE);
                lv = LEV(L.src0) > LEV(L.src1) ? LEV(L.src0) : LEV(L.src1);
            }
        } else {
            return EQ_ERR_UNSUPPORTED;
        }
        LEV_SLOT(i + 1u) = lev_code(lv);
        if (eq_rule_act_bytes(L.out_enc, L.out_h, L.out_w, L.out_c) > max_act) {
            max_act = eq_rule_act_bytes(L.out_enc, L.out_h, L.out_w, L.out_c);
        }
        if (L.macs > m->max_macs) {
            m->max_macs = L.macs;
        }
    }
#undef LEV
#undef LEV_SLOT
    /* L: the last layer; its output (value n_layers) is the score vector */
    CHECK((uint64_t)L.out_h * L.out_w * L.out_c == m->n_classes, EQ_ERR_SHAPE);
    max_act = round8(max_act);
    CHECK(2u * max_act + acc_row < 0x80000000ull, EQ_ERR_TOO_LARGE);
    m->max_act = (uint32_t)max_act;
    m->acc_row = (uint32_t)acc_row;
    if (!dag) { /* sequential: ping-pong between two max_act buffers, as in blob 1.0 */
        m->arena_need = (uint32_t)(2u * max_act + acc_row);
        return EQ_OK;
    }
    /* DAG plan (docs/blob-format.md, "Arena"): last[v] = the last layer reading value v (a value
     * nobody reads dies right after its producer; the final value lives to the end); value i + 1
     * goes at the lowest offset among 0 and the ends of the live values where it overlaps none.
     * Every value is below max_act <= 2**30, so n_layers + 1 of them sum below 2**39. */
    for (i = 0; i <= m->n_layers; i++) {
        last[i] = (uint8_t)(i == 0u ? 0u : i - 1u);
    }
    last[m->n_layers] = (uint8_t)m->n_layers;
    for (i = 0; i < m->n_layers; i++) {
        eq_rt_layer(m, i, &L);
        if (L.src0 < m->n_layers && last[L.src0] < i) {
            last[L.src0] = (uint8_t)i;
        }
        if (L.src1_raw && L.src1 < m->n_layers && last[L.src1] < i) {
            last[L.src1] = (uint8_t)i;
        }
    }
    for (i = 0; i <= m->n_layers; i++) {
        vshape_t vs;
        value_shape(m, i, in_enc, &vs);
        sz[i] = (uint32_t)round8(eq_rule_act_bytes(vs.enc, vs.h, vs.w, vs.c)); /* <= max_act */
    }
    m->val_off[0] = 0u;
    peak = sz[0];
    for (i = 0; i < m->n_layers; i++) {
        const uint64_t size = sz[i + 1u];
        uint64_t best = UINT64_MAX;
        uint32_t a, b, n_live = 0;
        for (a = 0; a <= i; a++) {
            if (last[a] >= i) {
                live[n_live++] = (uint8_t)a;
            }
        }
        for (a = 0; a <= n_live; a++) { /* candidates: the end of each live value, then 0 */
            const uint64_t o = a < n_live ? (uint64_t)m->val_off[live[a]] + sz[live[a]] : 0u;
            int ok = o < best;
            for (b = 0; b < n_live && ok; b++) {
                const uint64_t ob = m->val_off[live[b]];
                if (o < ob + sz[live[b]] && ob < o + size) {
                    ok = 0;
                }
            }
            if (ok) {
                best = o;
            }
        }
        CHECK(best + size + acc_row < 0x80000000ull, EQ_ERR_TOO_LARGE);
        m->val_off[i + 1u] = (uint32_t)best;
        if (best + size > peak) {
            peak = best + size;
        }
    }
    m->arena_need = (uint32_t)(peak + acc_row);
    return EQ_OK;
}

uint32_t eq_model_act_bytes(const eq_model_t *m, uint32_t layer)
{
    layer_t L;
    if (m == NULL || m->blob == NULL || layer >= m->n_layers) {
        return 0;
    }
    eq_rt_layer(m, layer, &L);
    return (uint32_t)eq_rule_act_bytes(L.out_enc, L.out_h, L.out_w, L.out_c);
}

eq_status_t eq_model_layer(const eq_model_t *m, uint32_t i, eq_layer_view_t *v)
{
    layer_t L;
    tensor_t t;
    CHECK(m != NULL && m->blob != NULL && v != NULL && i < m->n_layers, EQ_ERR_ARG);
    memset(v, 0, sizeof(*v));
    eq_rt_layer(m, i, &L);
    v->op = L.op;
    v->in_enc = L.in_enc;
    v->out_enc = L.out_enc;
    v->out_stage = L.out_stage;
    v->in_h = L.in_h;
    v->in_w = L.in_w;
    v->in_c = L.in_c;
    v->out_h = L.out_h;
    v->out_w = L.out_w;
    v->out_c = L.out_c;
    v->kh = L.kh;
    v->kw = L.kw;
    v->stride = L.stride;
    v->pad = L.pad;
    v->w_enc = L.w_enc;
    v->out_bits = L.out_bits;
    v->shift = L.shift;
    v->flags = L.flags;
    v->src0 = L.src0;
    v->src1 = L.src1;
    v->groups = L.groups;
    v->stride_w = L.stride_w;
    v->pad_w = L.pad_w;
    if (L.op != EQ_OP_CONV && L.op != EQ_OP_AVGPOOL && L.op != EQ_OP_ADD) {
        return EQ_OK;
    }
    if (L.op != EQ_OP_AVGPOOL && eq_rt_tensor(m, L.t_weight, &t) == EQ_OK) { /* ADD: m (2, C) */
        v->weight = t.data;
        v->weight_bytes = t.nbytes;
        v->w_bits = t.bits;
    }
    if (L.w_enc == EQ_ENC_KBIT && eq_rt_tensor(m, L.t_lut, &t) == EQ_OK) {
        v->lut = (const int32_t *)(const void *)t.data;
        v->lut_rows = t.d[0];
        v->lut_cols = t.d[1];
    }
    if (eq_rt_tensor(m, L.t_thr, &t) == EQ_OK) {
        v->thr = t.data;
    }
    if (eq_rt_tensor(m, L.t_aux, &t) == EQ_OK) {
        v->aux = t.data;
    }
    return EQ_OK;
}
