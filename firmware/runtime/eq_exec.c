/* edgeq blob runtime, executor: runs a model that eq_model_load (eq_load.c) validated.
 * Semantics: docs/blob-format.md. Every value (the preprocessed input, each layer's output)
 * lives in the arena at the place eq_model_load planned (eq_rt_value); the accumulator row
 * sits after the values, at arena_need - acc_row.
 */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#endif
#include "eq_rt_private.h"
#include "eq_conv_fast.h"

static int32_t sat32(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/* a bound on |acc| of a layer's accumulators: K * max|a| for CONVs with weights in {-1, 0, 1}
 * (B1, TERN, TERN_SPARSE: B1 inputs +-1, U8 codes <= 255; taps outside the input add 0);
 * 0xFFFFFFFF (none known) for the others */
static uint32_t acc_bound(const layer_t *L)
{
    uint64_t k;
    if (L->op != EQ_OP_CONV || (L->w_enc != EQ_ENC_B1 && L->w_enc != EQ_ENC_TERN && L->w_enc != EQ_ENC_TERN_SPARSE)
        || L->groups == 0u) {
        return 0xFFFFFFFFu;
    }
    k = (uint64_t)L->kh * L->kw * (L->in_c / L->groups) * (L->in_enc == EQ_ENC_B1 ? 1u : 255u);
    return k < 0xFFFFFFFFull ? (uint32_t)k : 0xFFFFFFFFu;
}

/* the output stage of one row of n_pix accumulators (CONV, AVGPOOL, ADD) -> row oy of out */
static void stage_row(const layer_t *L, const int32_t *acc, uint32_t n_pix, uint32_t oy,
                      const tensor_t *thr, const tensor_t *aux, void *out)
{
    const uint16_t c = (uint16_t)L->out_c;
    const size_t row = (size_t)oy * n_pix;
    if (L->out_stage == EQ_OUT_SIGN) {
        eq_threshold_sign_b1(acc, n_pix, c, (const int32_t *)(const void *)thr->data, aux->data,
                             (uint32_t *)out + row * EQ_WORDS(c));
    } else if (L->out_stage == EQ_OUT_MULTI) {
        eq_threshold_multi_u8(acc, n_pix, c, (const int32_t *)(const void *)thr->data,
                              (uint16_t)((1u << L->out_bits) - 1u), aux->data, (uint8_t *)out + row * c);
    } else if (L->out_stage == EQ_OUT_REQUANT) {
        eq_requant_u8(acc, n_pix, c, (const int32_t *)(const void *)thr->data,
                      (const int32_t *)(const void *)aux->data, (uint8_t)L->shift, (uint8_t)L->out_bits,
                      (uint8_t *)out + row * c);
    } else {
        eq_affine_i32_bounded(acc, n_pix, c, (const int32_t *)(const void *)thr->data,
                              (const int32_t *)(const void *)aux->data, (uint8_t)L->shift, acc_bound(L),
                              (int32_t *)out + row * c);
    }
}

/* F32 weights: float accumulators in the int32 acc buffer (same size, 4-byte aligned) */
static eq_status_t run_conv_f32(const layer_t *L, const eq_conv_shape_t *s, const void *in,
                                const eq_weights_t *wd, const float *thr, const uint8_t *aux, void *out,
                                float *acc)
{
    uint32_t oy, n_pix = L->out_w;
    for (oy = 0; oy < L->out_h; oy++) {
        eq_status_t st = eq_conv2d_row_grouped(s, L->groups, (uint8_t)L->in_enc, in, wd, (uint16_t)oy, acc);
        if (st != EQ_OK) {
            return st;
        }
        if (L->out_stage == EQ_OUT_SIGN) {
            eq_threshold_sign_f32_b1(acc, n_pix, s->out_c, thr, aux,
                                     (uint32_t *)out + (size_t)oy * n_pix * EQ_WORDS(L->out_c));
        } else if (L->out_stage == EQ_OUT_MULTI) {
            eq_threshold_multi_f32_u8(acc, n_pix, s->out_c, thr,
                                      (uint16_t)((1u << L->out_bits) - 1u), aux,
                                      (uint8_t *)out + (size_t)oy * n_pix * L->out_c);
        } else {
            eq_affine_f32_i32(acc, n_pix, s->out_c, thr, (const float *)(const void *)aux,
                              (int32_t *)out + (size_t)oy * n_pix * L->out_c);
        }
    }
    return EQ_OK;
}

/* the AFFINE stage of one channel at the accumulators k - 2 j, j = 0..k (popcount j of a
 * k-bit B1 x B1 dot product): lut[j] = sat32(((int64)(k - 2 j) * mul + add) >> shift), the
 * 64-bit value stepped by -2 mul (|v| <= 2**5 * 2**31 + 2**31: no overflow), the shift
 * arithmetic (flooring) written with unsigned shifts, as docs/blob-format.md defines AFFINE */
static void affine_ramp(uint32_t k, int32_t mul, int32_t add, uint32_t shift, int32_t *lut)
{
    const uint32_t sh = shift & 31u; /* the loader keeps shift < 32 */
    int64_t v = (int64_t)k * mul + add;
    uint32_t j;
    for (j = 0; j <= k; j++, v -= 2 * (int64_t)mul) {
        const int64_t q = v >= 0 ? (int64_t)((uint64_t)v >> sh) : ~(int64_t)((uint64_t)~v >> sh);
        lut[j] = sat32(q);
    }
}

/* 1x1 B1 x B1 conv (in_c <= 32, no padding, one group) with an AFFINE stage: the accumulator
 * takes only the in_c + 1 values in_c - 2 pc, so the stage is evaluated once per channel and
 * accumulator into a table (in the accumulator row, a chunk of channels at a time) and every
 * output is a popcount and a table load. Taken where the table is smaller than the output map;
 * returns 0 (nothing done) otherwise. */
static int conv1x1_affine(const eq_model_t *m, const layer_t *L, const eq_conv_shape_t *s, const void *in,
                          const eq_weights_t *wd, const tensor_t *thr, const tensor_t *aux, void *out,
                          int32_t *acc)
{
    const uint32_t k1 = (uint32_t)s->in_c + 1u, per = m->acc_row / 4u / k1;
    uint32_t n0, j;
    if (L->out_stage != EQ_OUT_AFFINE || wd->enc != EQ_ENC_B1 || L->in_enc != EQ_ENC_B1 || L->groups != 1u
        || s->kh != 1u || s->kw != 1u || s->in_c > 32u || s->pad != 0u || eq_shape_pad_w(s) != 0u
        || per == 0u || k1 >= (uint32_t)s->out_h * s->out_w) {
        return 0;
    }
    for (n0 = 0; n0 < s->out_c; n0 += per) {
        const uint32_t nch = s->out_c - n0 < per ? s->out_c - n0 : per;
        for (j = 0; j < nch; j++) {
            affine_ramp(s->in_c, ((const int32_t *)(const void *)thr->data)[n0 + j],
                        ((const int32_t *)(const void *)aux->data)[n0 + j], L->shift, acc + j * k1);
        }
        eq_conv1x1_b1b1(s, (const uint32_t *)in, (const uint32_t *)wd->data, n0, nch, acc, 0u, s->out_h,
                        (int32_t *)out + n0, s->out_c);
    }
    return 1;
}

static eq_status_t run_conv(const eq_model_t *m, const layer_t *L, const void *in, void *out,
                            int32_t *acc)
{
    tensor_t wt, thr, aux;
    eq_conv_shape_t s;
    eq_weights_t wd;
    uint32_t oy;
    eq_status_t st;
    (void)eq_rt_tensor(m, L->t_weight, &wt); /* validated at load */
    (void)eq_rt_tensor(m, L->t_thr, &thr);
    (void)eq_rt_tensor(m, L->t_aux, &aux);
    eq_rt_conv_shape(L, &s);
    wd.enc = (uint8_t)L->w_enc;
    wd.data = wt.data;
    wd.lut = NULL;
    wd.lut_rows = 0;
    wd.lut_cols = 0;
    if (L->w_enc == EQ_ENC_KBIT) {
        tensor_t lut;
        (void)eq_rt_tensor(m, L->t_lut, &lut);
        wd.lut = (const int32_t *)(const void *)lut.data;
        wd.lut_rows = (uint16_t)lut.d[0];
        wd.lut_cols = (uint16_t)lut.d[1];
    }
    if (L->w_enc == EQ_ENC_F32 && (L->flags & EQ_LFLAG_WINO_F23)) { /* blob 1.2: F32 Winograd */
        eq_conv_job_t wj;
        memset(&wj, 0, sizeof wj);
        wj.s = &s;
        wj.in_enc = (uint8_t)L->in_enc;
        wj.in = in;
        wj.w = &wd;
        wj.out_stage = (uint8_t)L->out_stage;
        wj.out_bits = (uint8_t)L->out_bits;
        wj.thr = thr.data;
        wj.aux = aux.data;
        wj.out = out;
        wj.scratch = acc;
        wj.scratch_bytes = m->acc_row;
        return eq_conv_wino_f32(&wj);
    }
    if (L->w_enc == EQ_ENC_F32) {
        return run_conv_f32(L, &s, in, &wd, (const float *)(const void *)thr.data, aux.data, out,
                            (float *)(void *)acc);
    }
    /* the whole-layer fast paths see ordinary square layers only (their job has no groups);
     * grouped layers try the depthwise path (eq_conv_dw, any stride and pad) */
    if ((L->groups == 1u && L->stride_w == L->stride && L->pad_w == L->pad) || L->groups > 1u) {
        eq_conv_job_t job;
        job.s = &s;
        job.in_enc = (uint8_t)L->in_enc;
        job.in = in;
        job.w = &wd;
        job.out_stage = (uint8_t)L->out_stage;
        job.out_bits = (uint8_t)L->out_bits;
        job.shift = (uint8_t)L->shift;
        job.lflags = 0u;
        job.thr = thr.data;
        job.aux = aux.data;
        job.extra = NULL;
        job.out = out;
        job.scratch = acc;
        job.scratch_bytes = m->acc_row;
        st = L->groups == 1u ? eq_conv_fast(&job) : eq_conv_dw(&job, L->groups);
        if (st != EQ_ERR_UNSUPPORTED) {
            return st;
        }
    }
    if (conv1x1_affine(m, L, &s, in, &wd, &thr, &aux, out, acc)) {
        return EQ_OK;
    }
    for (oy = 0; oy < L->out_h; oy++) {
        st = L->groups == 1u ? eq_conv2d_row(&s, (uint8_t)L->in_enc, in, &wd, (uint16_t)oy, acc)
                             : eq_conv2d_row_grouped(&s, L->groups, (uint8_t)L->in_enc, in, &wd,
                                                     (uint16_t)oy, acc);
        if (st != EQ_OK) {
            return st;
        }
        stage_row(L, acc, L->out_w, oy, &thr, &aux, out);
    }
    return EQ_OK;
}

/* channels [ch0, ch0 + cnt) of pixel p of an activation (c channels) as int32 values: +-1 (B1),
 * the code (U8), the value (I32) */
#define EQ_CH_CHUNK 64u
static void px_values(uint32_t enc, const void *a, uint32_t c, uint32_t p, uint32_t ch0, uint32_t cnt,
                      int32_t *dst)
{
    uint32_t j;
    if (enc == EQ_ENC_B1) {
        const uint32_t *px = (const uint32_t *)a + (size_t)p * EQ_WORDS(c);
        for (j = 0; j < cnt; j++) {
            const uint32_t ch = ch0 + j;
            dst[j] = ((px[ch >> 5] >> (ch & 31u)) & 1u) ? 1 : -1;
        }
    } else if (enc == EQ_ENC_U8) {
        const uint8_t *px = (const uint8_t *)a + (size_t)p * c + ch0;
        for (j = 0; j < cnt; j++) {
            dst[j] = px[j];
        }
    } else {
        memcpy(dst, (const int32_t *)a + (size_t)p * c + ch0, (size_t)cnt * 4u);
    }
}

/* AVGPOOL: acc = sat32(window sum) per channel (64-bit sums), then the output stage */
static void run_avgpool(const eq_model_t *m, const layer_t *L, const void *in, void *out, int32_t *acc)
{
    tensor_t thr, aux;
    const uint32_t c = L->in_c;
    int32_t v[EQ_CH_CHUNK];
    int64_t sum[EQ_CH_CHUNK];
    uint32_t oy, ox, ky, kx, ch0, j;
    (void)eq_rt_tensor(m, L->t_thr, &thr);
    (void)eq_rt_tensor(m, L->t_aux, &aux);
    for (oy = 0; oy < L->out_h; oy++) {
        for (ox = 0; ox < L->out_w; ox++) {
            for (ch0 = 0; ch0 < c; ch0 += EQ_CH_CHUNK) {
                const uint32_t cnt = c - ch0 < EQ_CH_CHUNK ? c - ch0 : EQ_CH_CHUNK;
                for (j = 0; j < cnt; j++) {
                    sum[j] = 0;
                }
                for (ky = 0; ky < L->kh; ky++) {
                    const uint32_t row = (oy * L->stride + ky) * L->in_w + ox * L->stride_w;
                    for (kx = 0; kx < L->kw; kx++) {
                        px_values(L->in_enc, in, c, row + kx, ch0, cnt, v);
                        for (j = 0; j < cnt; j++) {
                            sum[j] += v[j];
                        }
                    }
                }
                for (j = 0; j < cnt; j++) {
                    acc[ox * c + ch0 + j] = sat32(sum[j]);
                }
            }
        }
        stage_row(L, acc, L->out_w, oy, &thr, &aux, out);
    }
}

/* ADD: acc = sat32(m0[c] * a0 + m1[c] * a1) (64-bit), then the output stage */
/* sat32(pr + v) for a 64-bit product pr and an int32 v: a saturating 32-bit add (QADD on DSP
 * cores) where pr fits int32, the 64-bit sum otherwise */
static inline int32_t add_i32_sat(int64_t pr, int32_t v)
{
    const int32_t lo = (int32_t)pr;
    if ((int64_t)lo != pr) {
        return sat32(pr + v);
    }
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    return __qadd(lo, v);
#else
    return sat32((int64_t)lo + v);
#endif
}

/* ADD of one pixel with an I32 first operand x (multipliers mx) and a B1 or I32 second one
 * (pixel p of b, multipliers mb): o = sat32(mx x + mb v) exactly in 64 bits, no per-channel
 * buffers (a B1 value +-1 makes mb v = +-mb) */
static void add_px_i32(uint32_t c, const int32_t *x, const int32_t *mx, uint32_t enc_b, const void *b,
                       const int32_t *mb, uint32_t p, int32_t *o)
{
    uint32_t j;
    if (enc_b == EQ_ENC_B1) {
        const uint32_t *bw = (const uint32_t *)b + (size_t)p * EQ_WORDS(c);
        uint32_t bits = 0;
        for (j = 0; j < c; j++, bits >>= 1) {
            int32_t v1;
            if ((j & 31u) == 0u) {
                bits = bw[j >> 5];
            }
            v1 = (bits & 1u) ? mb[j] : -mb[j]; /* |mb| <= 2**30 */
            o[j] = add_i32_sat((int64_t)mx[j] * x[j], v1);
        }
    } else {
        const int32_t *y = (const int32_t *)b + (size_t)p * c;
        for (j = 0; j < c; j++) {
            o[j] = sat32((int64_t)mx[j] * x[j] + (int64_t)mb[j] * y[j]);
        }
    }
}

/* ADD -> SIGN in one pass per pixel (no accumulator row): per channel the compare
 * sat32(m0 a0 + m1 a1) >= thr (<= thr with flip) becomes the sign of one exact 64-bit sum
 * base + k0 v0 + k1 v1 (two SMLALs on Cortex-M), prepared once per chunk of 32 channels:
 * - flip 0: bit = (v >= thr) <=> thr - 1 - v < 0 (k = -m, base = thr - 1); flip 1:
 *   bit = (v <= thr) <=> v - thr - 1 < 0 (k = m, base = -thr - 1). Saturating v to int32 changes
 *   neither compare except at thr = INT32_MIN (flip 0) / INT32_MAX (flip 1), where the bit is
 *   always 1: k0 = k1 = 0, base = -1.
 * - an I32 / U8 operand is its value v with k = m'; a B1 operand (+-1 = 2b - 1) becomes
 *   m' (2b - 1) = |m'| - 2|m'| b' with b' = b ^ (m' > 0): k = -2|m'| (>= -2**31, fits int32), base
 *   += |m'|, and the per-word mask of (m' > 0) flips the bits.
 * |base| < 2**33 and |k v| <= 2**62 / 2 each (|m| <= 2**30): the sum never overflows int64. */
typedef struct {
    int32_t k0, k1;
    int64_t base;
} eq_addsign_t;

#define EQ_AS_CHUNK 32u

static void addsign_prep(const int32_t *mul, uint32_t c, const int32_t *thr, const uint8_t *flip,
                         uint32_t enc0, uint32_t enc1, uint32_t n0, uint32_t nch, eq_addsign_t *t,
                         uint32_t *mask0, uint32_t *mask1)
{
    uint32_t j;
    *mask0 = 0u;
    *mask1 = 0u;
    for (j = 0; j < nch; j++) {
        const uint32_t n = n0 + j;
        const int f = flip[n] != 0u;
        const int32_t th = thr[n];
        int64_t k0, k1, base;
        if (f ? th == INT32_MAX : th == INT32_MIN) {
            t[j].k0 = 0;
            t[j].k1 = 0;
            t[j].base = -1;
            continue;
        }
        k0 = f ? (int64_t)mul[n] : -(int64_t)mul[n];
        k1 = f ? (int64_t)mul[c + n] : -(int64_t)mul[c + n];
        base = f ? -(int64_t)th - 1 : (int64_t)th - 1;
        if (enc0 == EQ_ENC_B1) {
            *mask0 |= (uint32_t)(k0 > 0) << j;
            k0 = k0 < 0 ? k0 : -k0; /* -|k0| */
            base -= k0;
            k0 *= 2;
        }
        if (enc1 == EQ_ENC_B1) {
            *mask1 |= (uint32_t)(k1 > 0) << j;
            k1 = k1 < 0 ? k1 : -k1;
            base -= k1;
            k1 *= 2;
        }
        t[j].k0 = (int32_t)k0;
        t[j].k1 = (int32_t)k1;
        t[j].base = base;
    }
}

#if defined(__GNUC__)
#define EQ_AS_INLINE static inline __attribute__((always_inline))
#else
#define EQ_AS_INLINE static inline
#endif

/* operand j of a pixel: the value (I32, U8 at px) or bit j of w (B1, already masked) */
EQ_AS_INLINE int32_t as_val(uint32_t enc, const void *px, uint32_t w, uint32_t j)
{
    if (enc == EQ_ENC_B1) {
        return (int32_t)((w >> j) & 1u);
    }
    if (enc == EQ_ENC_U8) {
        return (int32_t)((const uint8_t *)px)[j];
    }
    return ((const int32_t *)px)[j];
}

/* 1 where base + k0 v0 + k1 v1 < 0 */
EQ_AS_INLINE uint32_t as_bit(const eq_addsign_t *t, int32_t v0, int32_t v1)
{
    int64_t s = t->base;
    s += (int64_t)t->k0 * v0;
    s += (int64_t)t->k1 * v1;
    return (uint32_t)((uint64_t)s >> 63);
}

/* bytes of one pixel, and of one channel (0: B1, whose channels share the pixel's word) */
EQ_AS_INLINE uint32_t as_px_bytes(uint32_t enc, uint32_t c)
{
    return enc == EQ_ENC_B1 ? EQ_WORDS(c) * 4u : enc == EQ_ENC_U8 ? c : c * 4u;
}

EQ_AS_INLINE uint32_t as_ch_bytes(uint32_t enc)
{
    return enc == EQ_ENC_B1 ? 0u : enc == EQ_ENC_U8 ? 1u : 4u;
}

#define EQ_AS_BIT(i) (as_bit(*t + (i), as_val(enc0, *q0, *w0, (i)), as_val(enc1, *q1, *w1, (i))) << (24u + (i)))

#if defined(__thumb2__) && defined(__GNUC__)
/* Thumb-2 (Cortex-M3 and up): one channel in seven instructions: the table entry (k0, k1,
 * base) by one LDM into r8..r11, the operands by LDR with write-back (I32) or UBFX (bit j of
 * the group's B1 word), two SMLALs into the base, the sum's sign shifted in at bit 31 */
#define EQ_AS_TAB "ldmia %[t]!, {%[k0], %[k1], %[lo], %[hi]}\n\t"
#define EQ_AS_LDR(v, q, j) "ldr %[" #v "], [%[" #q "]], #4\n\t"
#define EQ_AS_BIT1(v, w, j) "ubfx %[" #v "], %[" #w "], #" #j ", #1\n\t"
#define EQ_AS_SUM "smlal %[lo], %[hi], %[k0], %[v0]\n\tsmlal %[lo], %[hi], %[k1], %[v1]\n\t" \
                  "and %[hi], %[hi], #0x80000000\n\torr %[bits], %[hi], %[bits], lsr #1\n\t"
#define EQ_AS_II(j) EQ_AS_TAB EQ_AS_LDR(v0, q0, j) EQ_AS_LDR(v1, q1, j) EQ_AS_SUM
#define EQ_AS_IB(j) EQ_AS_TAB EQ_AS_LDR(v0, q0, j) EQ_AS_BIT1(v1, w1, j) EQ_AS_SUM
#define EQ_AS_BI(j) EQ_AS_TAB EQ_AS_BIT1(v0, w0, j) EQ_AS_LDR(v1, q1, j) EQ_AS_SUM
#define EQ_AS_GROUP(ch, ...)                                                                      \
    __asm__(ch(0) ch(1) ch(2) ch(3) ch(4) ch(5) ch(6) ch(7)                                      \
            : [bits] "+r"(bits), [t] "+r"(tp), [k0] "=&r"(k0), [k1] "=&r"(k1), [lo] "=&r"(lo),    \
              [hi] "=&r"(hi), [v0] "=&r"(v0), [v1] "=&r"(v1), __VA_ARGS__                        \
            :                                                                                     \
            : "memory")
#endif

/* eight channels: bits = (bits >> 8) | their bits << 24 (channel order ascending), the table
 * and the I32 / U8 operand pointers advanced past them, B1 words shifted down by 8 */
EQ_AS_INLINE uint32_t as_group8(uint32_t enc0, uint32_t enc1, const eq_addsign_t **t, const void **q0,
                                const void **q1, uint32_t *w0, uint32_t *w1, uint32_t bits)
{
#if defined(__thumb2__) && defined(__GNUC__)
    /* LDM wants the four table registers ascending: r8..r11 (free of the Thumb frame pointer) */
    register uint32_t k0 __asm__("r8"), k1 __asm__("r9"), lo __asm__("r10"), hi __asm__("r11");
    uint32_t v0, v1;
    const eq_addsign_t *tp = *t;
    if (enc0 == EQ_ENC_I32 && enc1 == EQ_ENC_I32) {
        const int32_t *p0 = (const int32_t *)*q0, *p1 = (const int32_t *)*q1;
        EQ_AS_GROUP(EQ_AS_II, [q0] "+r"(p0), [q1] "+r"(p1));
        *t = tp;
        *q0 = p0;
        *q1 = p1;
        return bits;
    }
    if (enc0 == EQ_ENC_I32 && enc1 == EQ_ENC_B1) {
        const int32_t *p0 = (const int32_t *)*q0;
        EQ_AS_GROUP(EQ_AS_IB, [q0] "+r"(p0), [w1] "+r"(*w1));
        *t = tp;
        *q0 = p0;
        *w1 >>= 8;
        return bits;
    }
    if (enc0 == EQ_ENC_B1 && enc1 == EQ_ENC_I32) {
        const int32_t *p1 = (const int32_t *)*q1;
        EQ_AS_GROUP(EQ_AS_BI, [w0] "+r"(*w0), [q1] "+r"(p1));
        *t = tp;
        *q1 = p1;
        *w0 >>= 8;
        return bits;
    }
#endif
    bits = (bits >> 8) | EQ_AS_BIT(0) | EQ_AS_BIT(1) | EQ_AS_BIT(2) | EQ_AS_BIT(3) | EQ_AS_BIT(4)
           | EQ_AS_BIT(5) | EQ_AS_BIT(6) | EQ_AS_BIT(7);
    *t += 8;
    *q0 = (const uint8_t *)*q0 + 8u * as_ch_bytes(enc0);
    *q1 = (const uint8_t *)*q1 + 8u * as_ch_bytes(enc1);
    *w0 >>= 8;
    *w1 >>= 8;
    return bits;
}

/* the output words of channels [n0, n0 + nch) (nch <= 32, n0 % 32 == 0) for every pixel;
 * inlined with constant encodings so each combination gets its own straight loop */
EQ_AS_INLINE void addsign_pixels(uint32_t enc0, uint32_t enc1, const void *a0, const void *a1,
                                 uint32_t n_pix, uint32_t c, uint32_t n0, uint32_t nch,
                                 const eq_addsign_t *tab, uint32_t mask0, uint32_t mask1, uint32_t *out)
{
    const uint32_t cw = EQ_WORDS(c), s0 = as_px_bytes(enc0, c), s1 = as_px_bytes(enc1, c);
    const uint8_t *r0 = (const uint8_t *)a0 + (enc0 == EQ_ENC_B1 ? (n0 >> 5) * 4u : n0 * as_ch_bytes(enc0));
    const uint8_t *r1 = (const uint8_t *)a1 + (enc1 == EQ_ENC_B1 ? (n0 >> 5) * 4u : n0 * as_ch_bytes(enc1));
    uint32_t *o = out + (n0 >> 5);
    uint32_t p;
    for (p = 0; p < n_pix; p++, r0 += s0, r1 += s1, o += cw) {
        const void *q0 = r0, *q1 = r1;
        const eq_addsign_t *t = tab;
        uint32_t w0 = enc0 == EQ_ENC_B1 ? *(const uint32_t *)(const void *)r0 ^ mask0 : 0u;
        uint32_t w1 = enc1 == EQ_ENC_B1 ? *(const uint32_t *)(const void *)r1 ^ mask1 : 0u;
        uint32_t bits = 0, g;
        for (g = nch >> 3; g != 0u; g--) {
            bits = as_group8(enc0, enc1, &t, &q0, &q1, &w0, &w1, bits);
        }
        for (g = nch & 7u; g != 0u; g--, t++) { /* channel order ascending: shift in at bit 31 */
            bits = (bits >> 1) | as_bit(t, as_val(enc0, q0, w0, 0), as_val(enc1, q1, w1, 0)) << 31;
            q0 = (const uint8_t *)q0 + as_ch_bytes(enc0);
            q1 = (const uint8_t *)q1 + as_ch_bytes(enc1);
            w0 >>= 1;
            w1 >>= 1;
        }
        *o = bits >> (32u - nch); /* channel j at bit j, pad bits 0 */
    }
}

#define EQ_AS_CASE(e0, e1) \
    if (enc0 == (e0) && enc1 == (e1)) { \
        addsign_pixels((e0), (e1), a0, a1, n_pix, c, n0, nch, t, mask0, mask1, out); \
        continue; \
    }

/* ADD with a SIGN stage: out (n_pix, EQ_WORDS(c)) words, inputs of any encodings */
static void run_add_sign(const int32_t *mul, uint32_t c, const int32_t *thr, const uint8_t *flip,
                         uint32_t enc0, uint32_t enc1, const void *a0, const void *a1, uint32_t n_pix,
                         uint32_t *out)
{
    eq_addsign_t t[EQ_AS_CHUNK];
    uint32_t n0;
    for (n0 = 0; n0 < c; n0 += EQ_AS_CHUNK) {
        const uint32_t nch = c - n0 < EQ_AS_CHUNK ? c - n0 : EQ_AS_CHUNK;
        uint32_t mask0, mask1;
        addsign_prep(mul, c, thr, flip, enc0, enc1, n0, nch, t, &mask0, &mask1);
        EQ_AS_CASE(EQ_ENC_I32, EQ_ENC_I32)
        EQ_AS_CASE(EQ_ENC_I32, EQ_ENC_B1)
        EQ_AS_CASE(EQ_ENC_B1, EQ_ENC_I32)
        EQ_AS_CASE(EQ_ENC_B1, EQ_ENC_B1)
        EQ_AS_CASE(EQ_ENC_I32, EQ_ENC_U8)
        EQ_AS_CASE(EQ_ENC_U8, EQ_ENC_I32)
        EQ_AS_CASE(EQ_ENC_U8, EQ_ENC_U8)
        EQ_AS_CASE(EQ_ENC_U8, EQ_ENC_B1)
        EQ_AS_CASE(EQ_ENC_B1, EQ_ENC_U8)
    }
}

static void run_add(const eq_model_t *m, const layer_t *L, uint32_t enc1, const void *a0,
                    const void *a1, void *out, int32_t *acc)
{
    tensor_t wt, thr, aux;
    const uint32_t c = L->out_c;
    const int32_t *mul;
    int32_t v0[EQ_CH_CHUNK], v1[EQ_CH_CHUNK];
    uint32_t oy, ox, ch0, j;
    int fits = 0;
    (void)eq_rt_tensor(m, L->t_weight, &wt);
    (void)eq_rt_tensor(m, L->t_thr, &thr);
    (void)eq_rt_tensor(m, L->t_aux, &aux);
    mul = (const int32_t *)(const void *)wt.data;
    if (L->out_stage == EQ_OUT_SIGN) {
        run_add_sign(mul, c, (const int32_t *)(const void *)thr.data, aux.data, L->in_enc, enc1, a0, a1,
                     L->out_h * L->out_w, (uint32_t *)out);
        return;
    }
    /* codes of B1 / U8 inputs are at most 255: when every |m0| a0max + |m1| a1max < 2**31 the
     * sums fit int32 exactly and need no saturation (residual multipliers are small) */
    if (L->in_enc != EQ_ENC_I32 && enc1 != EQ_ENC_I32) {
        const uint64_t amax0 = L->in_enc == EQ_ENC_B1 ? 1u : 255u, amax1 = enc1 == EQ_ENC_B1 ? 1u : 255u;
        fits = 1;
        for (j = 0; j < c && fits; j++) {
            const uint64_t b0 = (uint64_t)(mul[j] < 0 ? -(int64_t)mul[j] : mul[j]);
            const uint64_t b1 = (uint64_t)(mul[c + j] < 0 ? -(int64_t)mul[c + j] : mul[c + j]);
            fits = b0 * amax0 + b1 * amax1 < 0x80000000ull;
        }
    }
    for (oy = 0; oy < L->out_h; oy++) {
        for (ox = 0; ox < L->out_w; ox++) {
            const uint32_t p = oy * L->out_w + ox;
            if (fits && L->in_enc == EQ_ENC_B1 && enc1 == EQ_ENC_B1) { /* +-m0 +-m1 from the bits */
                const uint32_t *x0 = (const uint32_t *)a0 + (size_t)p * EQ_WORDS(c);
                const uint32_t *x1 = (const uint32_t *)a1 + (size_t)p * EQ_WORDS(c);
                int32_t *o = acc + ox * c;
                for (j = 0; j < c; j++) {
                    const uint32_t sh = j & 31u;
                    const int32_t s0 = -(int32_t)((x0[j >> 5] >> sh) & 1u) ^ -1; /* 0: bit 1, -1: bit 0 */
                    const int32_t s1 = -(int32_t)((x1[j >> 5] >> sh) & 1u) ^ -1;
                    o[j] = ((mul[j] ^ s0) - s0) + ((mul[c + j] ^ s1) - s1);
                }
                continue;
            }
            if (L->in_enc == EQ_ENC_I32 && (enc1 == EQ_ENC_I32 || enc1 == EQ_ENC_B1)) {
                add_px_i32(c, (const int32_t *)a0 + (size_t)p * c, mul, enc1, a1, mul + c, p, acc + ox * c);
                continue;
            }
            if (enc1 == EQ_ENC_I32 && L->in_enc == EQ_ENC_B1) { /* the sum commutes */
                add_px_i32(c, (const int32_t *)a1 + (size_t)p * c, mul + c, EQ_ENC_B1,
                           a0, mul, p, acc + ox * c);
                continue;
            }
            for (ch0 = 0; ch0 < c; ch0 += EQ_CH_CHUNK) {
                const uint32_t cnt = c - ch0 < EQ_CH_CHUNK ? c - ch0 : EQ_CH_CHUNK;
                const int32_t *m0 = mul + ch0, *m1 = mul + c + ch0;
                int32_t *o = acc + ox * c + ch0;
                px_values(L->in_enc, a0, c, p, ch0, cnt, v0);
                px_values(enc1, a1, c, p, ch0, cnt, v1);
                if (fits) {
                    for (j = 0; j < cnt; j++) {
                        o[j] = m0[j] * v0[j] + m1[j] * v1[j];
                    }
                } else {
                    for (j = 0; j < cnt; j++) {
                        o[j] = sat32((int64_t)m0[j] * v0[j] + (int64_t)m1[j] * v1[j]);
                    }
                }
            }
        }
        stage_row(L, acc, L->out_w, oy, &thr, &aux, out);
    }
}

/* CONCAT: per pixel, src0's channels then src1's (B1: src1's bits shifted in after c0) */
static void run_concat(const layer_t *L, uint32_t c1, const void *a0, const void *a1, void *out)
{
    const uint32_t n_pix = L->out_h * L->out_w, c0 = L->in_c, c = L->out_c;
    uint32_t p;
    if (L->in_enc == EQ_ENC_B1) {
        const uint32_t w0 = EQ_WORDS(c0), w1 = EQ_WORDS(c1), wo = EQ_WORDS(c), sh = c0 & 31u;
        for (p = 0; p < n_pix; p++) {
            const uint32_t *s0 = (const uint32_t *)a0 + (size_t)p * w0;
            const uint32_t *s1 = (const uint32_t *)a1 + (size_t)p * w1;
            uint32_t *d = (uint32_t *)out + (size_t)p * wo, i;
            for (i = 0; i < wo; i++) {
                d[i] = i < w0 ? s0[i] : 0u; /* pad bits above c0 are 0 */
            }
            for (i = 0; i < w1; i++) { /* src1's pad bits are 0 too: nothing lands past c */
                d[(c0 >> 5) + i] |= s1[i] << sh;
                if (sh != 0u && (c0 >> 5) + i + 1u < wo) {
                    d[(c0 >> 5) + i + 1u] |= s1[i] >> (32u - sh);
                }
            }
        }
    } else {
        const uint32_t eb = L->in_enc == EQ_ENC_U8 ? 1u : 4u;
        for (p = 0; p < n_pix; p++) {
            uint8_t *d = (uint8_t *)out + (size_t)p * c * eb;
            memcpy(d, (const uint8_t *)a0 + (size_t)p * c0 * eb, (size_t)c0 * eb);
            memcpy(d + (size_t)c0 * eb, (const uint8_t *)a1 + (size_t)p * c1 * eb, (size_t)c1 * eb);
        }
    }
}

/* (H, W, C) -> (1, 1, H*W*C): B1 bits lose their per-pixel word padding; U8/I32 are already flat */
static void run_flatten(const layer_t *L, const void *in, void *out)
{
    uint32_t n_pix = L->in_h * L->in_w, c = L->in_c;
    if (L->in_enc == EQ_ENC_B1 && (c & 31u) != 0u) { /* whole words (c % 32 == 0): a copy */
        const uint32_t *src = (const uint32_t *)in;
        uint32_t *dst = (uint32_t *)out;
        uint32_t cw = EQ_WORDS(c), p, ch, bit = 0;
        memset(dst, 0, (size_t)EQ_WORDS(L->out_c) * 4u);
        for (p = 0; p < n_pix; p++) {
            for (ch = 0; ch < c; ch++, bit++) {
                dst[bit >> 5] |= ((src[p * cw + (ch >> 5)] >> (ch & 31u)) & 1u) << (bit & 31u);
            }
        }
    } else {
        memcpy(out, in, (size_t)eq_rule_act_bytes(L->in_enc, L->in_h, L->in_w, c));
    }
}

/* MAXPOOL: square windows and strides through the kernels; kh != kw or per-axis strides here
 * (B1: OR of the bits = max of +-1; U8 / I32: max) */
static void run_pool(const layer_t *L, const void *in, void *out)
{
    uint16_t h = (uint16_t)L->in_h, w = (uint16_t)L->in_w, c = (uint16_t)L->in_c;
    uint8_t k = (uint8_t)L->kh, s = (uint8_t)L->stride;
    uint32_t oy, ox, ky, kx, ch;
    if (L->kh != L->kw || L->stride != L->stride_w) {
        for (oy = 0; oy < L->out_h; oy++) {
            for (ox = 0; ox < L->out_w; ox++) {
                const uint32_t po = oy * L->out_w + ox;
                if (L->in_enc == EQ_ENC_B1) {
                    const uint32_t cw = EQ_WORDS(c);
                    uint32_t *d = (uint32_t *)out + (size_t)po * cw, i;
                    for (i = 0; i < cw; i++) {
                        d[i] = 0u;
                    }
                    for (ky = 0; ky < L->kh; ky++) {
                        for (kx = 0; kx < L->kw; kx++) {
                            const uint32_t *a = (const uint32_t *)in
                                                + ((size_t)(oy * L->stride + ky) * w + ox * L->stride_w + kx) * cw;
                            for (i = 0; i < cw; i++) {
                                d[i] |= a[i];
                            }
                        }
                    }
                    continue;
                }
                for (ch = 0; ch < c; ch++) {
                    int32_t best = INT32_MIN;
                    for (ky = 0; ky < L->kh; ky++) {
                        for (kx = 0; kx < L->kw; kx++) {
                            int32_t v;
                            px_values(L->in_enc, in, c, (oy * L->stride + ky) * w + ox * L->stride_w + kx, ch, 1u,
                                      &v);
                            best = v > best ? v : best;
                        }
                    }
                    if (L->in_enc == EQ_ENC_U8) {
                        ((uint8_t *)out)[(size_t)po * c + ch] = (uint8_t)best;
                    } else {
                        ((int32_t *)out)[(size_t)po * c + ch] = best;
                    }
                }
            }
        }
        return;
    }
    if (L->in_enc == EQ_ENC_B1) {
        eq_maxpool_b1((const uint32_t *)in, h, w, c, k, s, (uint32_t *)out);
    } else if (L->in_enc == EQ_ENC_U8) {
        eq_maxpool_u8((const uint8_t *)in, h, w, c, k, s, (uint8_t *)out);
    } else {
        eq_maxpool_i32((const int32_t *)in, h, w, c, k, s, (int32_t *)out);
    }
}

/* encoding and channels of value v (0: the input) */
static void value_enc_c(const eq_model_t *m, uint32_t v, uint32_t *enc, uint32_t *c)
{
    layer_t P;
    if (v == 0u) {
        *enc = m->pre_mode == EQ_PRE_THRESH ? EQ_ENC_B1 : EQ_ENC_U8;
        *c = m->in_c;
        return;
    }
    eq_rt_layer(m, v - 1u, &P);
    *enc = P.out_enc;
    *c = P.out_c;
}

eq_status_t eq_model_run(const eq_model_t *m, uint8_t *arena, uint32_t arena_size, eq_run_t *run)
{
    uint8_t *v0;
    int32_t *acc;
    uint32_t i, t0 = 0, t_start = 0;
    layer_t L;
    eq_status_t st;
    uint32_t n_run;
    eq_profile_t *prof;
    const uint8_t *input;

    CHECK(run != NULL, EQ_ERR_ARG);
    n_run = run->n_run;
    prof = run->prof;
    input = run->input;
    CHECK(m != NULL && m->blob != NULL && input != NULL && arena != NULL, EQ_ERR_ARG);
    CHECK(((uintptr_t)arena & 7u) == 0u, EQ_ERR_ARG);
    CHECK(arena_size >= m->arena_need, EQ_ERR_ARENA);
    CHECK(n_run <= m->n_layers, EQ_ERR_ARG);
    if (n_run == 0u) {
        n_run = m->n_layers;
        CHECK(run->scores != NULL && run->n_scores >= m->n_classes, EQ_ERR_ARG);
    }
    if (run->act_out != NULL) {
        CHECK(run->act_size >= eq_model_act_bytes(m, n_run - 1u), EQ_ERR_ARG);
    } else {
        CHECK(n_run == m->n_layers, EQ_ERR_ARG);
    }
    if (prof != NULL && prof->now != NULL) {
        CHECK(prof->ticks != NULL && prof->n_ticks >= m->n_layers, EQ_ERR_ARG);
        t_start = prof->now(prof->ctx);
    }
    v0 = eq_rt_value(m, arena, 0u);
    acc = (int32_t *)(void *)(arena + (m->arena_need - m->acc_row)); /* 8-aligned: values are */

    if (run->input_kind == EQ_INPUT_PIXELS) {
        CHECK(run->input_size == m->input_pixels, EQ_ERR_INPUT);
        if (m->pre_mode == EQ_PRE_THRESH) {
            eq_pack_threshold_chw_b1(input, m->in_c, m->in_h, m->in_w, m->pre_param, (uint32_t *)(void *)v0);
        } else {
            eq_quant_chw_u8(input, m->in_c, m->in_h, m->in_w,
                            m->pre_mode == EQ_PRE_RAW ? 8u : m->pre_param, v0);
        }
    } else if (run->input_kind == EQ_INPUT_WIRE) {
        CHECK(run->input_size == m->input_wire, EQ_ERR_INPUT);
        if (m->pre_mode == EQ_PRE_THRESH) {
            eq_unpack_wire_chw_b1(input, m->in_c, m->in_h, m->in_w, (uint32_t *)(void *)v0);
        } else {
            eq_quant_chw_u8(input, m->in_c, m->in_h, m->in_w,
                            m->pre_mode == EQ_PRE_RAW ? 8u : m->pre_param, v0);
        }
    } else {
        return EQ_ERR_ARG;
    }

    for (i = 0; i < n_run; i++) {
        const uint8_t *in;
        uint8_t *out;
        if (prof != NULL && prof->now != NULL) {
            t0 = prof->now(prof->ctx);
        }
        eq_rt_layer(m, i, &L);
        in = eq_rt_value(m, arena, L.src0);
        out = eq_rt_value(m, arena, i + 1u);
        if (L.op == EQ_OP_CONV) {
            st = run_conv(m, &L, in, out, acc);
            if (st != EQ_OK) {
                return st;
            }
        } else if (L.op == EQ_OP_FLATTEN) {
            run_flatten(&L, in, out);
        } else if (L.op == EQ_OP_MAXPOOL) {
            run_pool(&L, in, out);
        } else if (L.op == EQ_OP_AVGPOOL) {
            run_avgpool(m, &L, in, out, acc);
        } else {
            uint32_t enc1, c1;
            value_enc_c(m, L.src1, &enc1, &c1);
            if (L.op == EQ_OP_ADD) {
                run_add(m, &L, enc1, in, eq_rt_value(m, arena, L.src1), out, acc);
            } else {
                run_concat(&L, c1, in, eq_rt_value(m, arena, L.src1), out);
            }
        }
        if (prof != NULL && prof->now != NULL) {
            prof->ticks[i] = prof->now(prof->ctx) - t0;
        }
    }

    if (run->act_out != NULL) {
        memcpy(run->act_out, eq_rt_value(m, arena, n_run), eq_model_act_bytes(m, n_run - 1u));
    }
    if (n_run == m->n_layers && run->scores != NULL && run->n_scores >= m->n_classes) {
        const uint8_t *cur = eq_rt_value(m, arena, n_run);
        uint32_t n = m->n_classes;
        if (L.out_enc == EQ_ENC_I32) {
            memcpy(run->scores, cur, (size_t)n * 4u);
        } else if (L.out_enc == EQ_ENC_U8) {
            for (i = 0; i < n; i++) {
                run->scores[i] = cur[i];
            }
        } else {
            /* B1 scores: the last layer's channels per pixel, padded to words */
            const uint32_t *wd = (const uint32_t *)(const void *)cur;
            uint32_t cw = EQ_WORDS(L.out_c), p, ch;
            for (i = 0; i < n; i++) {
                p = i / L.out_c;
                ch = i % L.out_c;
                run->scores[i] = ((wd[p * cw + ch / 32u] >> (ch % 32u)) & 1u) ? 1 : -1;
            }
        }
        run->cls = eq_argmax_i32(run->scores, n);
    }
    if (prof != NULL && prof->now != NULL) {
        prof->total = prof->now(prof->ctx) - t_start;
    }
    return EQ_OK;
}
