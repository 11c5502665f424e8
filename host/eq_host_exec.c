/* Host executor: runs a validated model (eq_model_load) over a batch of images on the dispatched
 * SIMD kernels, bit-exact with eq_model_run (the firmware kernels are the spec).
 *
 * A plan (eq_host_plan_new) re-lays out every CONV layer once:
 *  - "bits": B1 activations x B1 / TERN / TERN_SPARSE weights. Rows of the im2col matrix are the
 *    taps' C bits concatenated (bit t*C + c, no per-tap word padding), weights the same way (TERN
 *    and decoded TERN_SPARSE as sign + nonzero planes); one eq_host_gemm_xnor_b1b1 /
 *    eq_host_gemm_tern_b1 call per block of output pixels (pixels of several images together).
 *  - "u8": U8 activations x B1 / TERN / TERN_SPARSE / I8 / I16 (values in int8) / KBIT weights,
 *    and B1 activations x I8 / I16 (values in int8) / KBIT weights, whenever every product is
 *    c0[w] + d[w] * L[a] with d in int8 (or 2 * int8: the GEMM sums are then doubled) and
 *    0 <= L[a] <= 255: always for integer weights on U8 codes (L = a) and on B1 (a * w =
 *    2 * (bit * w) - w); for KBIT when the LUT is rank one over the codes that can occur, as with
 *    DoReFa / HWGQ codes. The im2col rows hold L[a] bytes, the GEMM is u8 x s8 (vpdpbusd on
 *    AVX-512 VNNI, vpmaddwd on AVX2, plain C otherwise), the c0 terms a per-channel constant.
 *  Taps outside the input are 0 bits / 0 bytes in the im2col rows; their contribution to the full
 *  GEMM (a per (channel, tap) constant) is subtracted for the border pixels, so every result is
 *  the exact integer sum over the in-bounds taps, as in eq_conv2d_row. Integer sums are exact in
 *  any order (32-bit wrapping arithmetic; the loader bounds every true sum below 2**31).
 *    A "u8" layer with U8 activations x I8 weights, 3x3, stride 1, pad 1 whose GEMM sums are the
 *    accumulators (no code map, shift or border terms) may instead run integer Winograd
 *    F(2x2, 3x3) (host/eq_wino_i8.h: exact, weights transformed once at plan time), as
 *    eq_host_set_wino_i8 says: by default where eq_host_wino_i8_worth measured it faster on the
 *    selected variant (AVX2 and portable C; never on AVX-512 VNNI, where vpdpbusd already does
 *    64 u8 x s8 MACs an instruction).
 *  - anything else (F32 weights, whose float sums must keep the firmware's order, and the
 *    integer pairs that do not fit the above) runs eq_conv2d_row per image, as eq_model_run does.
 * Output stages are the firmware's stage functions applied to each GEMM block as it is produced.
 * Threads (pthreads) split the batch into contiguous ranges of images; each thread has its own
 * buffers, so results do not depend on the thread count.
 */
#include "eq_host_exec.h"
#include "eq_wino_i8.h"
#include "eq_host_wino_f32.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define EQ_KIND_FALLBACK 0
#define EQ_KIND_BITS 1
#define EQ_KIND_U8 2

#define EQ_BLOCK_BYTES 65536u /* im2col bytes per GEMM block */
#define EQ_CHUNK_BYTES 262144u /* activation bytes of the images processed together */
#define EQ_MAX_MB 1024u        /* output pixels per GEMM block, at most */

typedef struct {
    eq_layer_view_t v;
    uint32_t kind, taps, k, in_levels;
    uint32_t kw;          /* bits: words of a row */
    uint32_t kp;          /* u8: bytes of a row (multiple of 4) */
    uint32_t np8, np16;   /* u8: N rounded up to 8 / 16 */
    uint32_t *wbits;      /* bits: (N, planes * kw) */
    int tern;
    int8_t *w8;           /* u8: (N, kp) */
    int16_t *w2;          /* u8: (kp / 2, np8, 2) */
    int8_t *w4;           /* u8: (kp / 4, np16, 4) */
    uint8_t lmap[256];    /* u8: activation code -> L byte */
    int use_map;
    uint32_t shl;         /* u8: GEMM sums are shifted left by shl (d stored halved) */
    uint32_t *tapc;       /* (taps, N): contribution of an all-zero tap (subtracted at borders) */
    uint32_t *bias;       /* (N): constant added to every output (u8) */
    uint32_t mb;          /* output pixels per GEMM block */
    uint32_t *ypat, *xpat; /* window class of each output row / column */
    uint32_t nx;          /* x classes */
    uint32_t *add;        /* (classes, N): bias - the out-of-bounds taps' terms, per class */
    uint8_t *addz;        /* (classes): 1 where that row of add is all zero */
    int32_t *t2;          /* SIGN / MULTI: thresholds u = flip ? t : t - 1 as (n_thr, N) */
    uint32_t *fw;         /* SIGN / MULTI: flips as bit words */
    uint32_t n_thr;
    int16_t *wu;          /* Winograd (U8 x I8 3x3 s1 p1): transformed weights, else NULL */
    eq_hwino_t wg;        /* Winograd: geometry (its buffers are set per call) */
    uint32_t wtr;         /* Winograd: tile rows a band */
} eq_hl_t;

struct eq_host_plan {
    const eq_model_t *m;
    uint32_t n_layers;
    eq_hl_t *layers;
    uint32_t chunk;       /* images per chunk */
    int per_image;        /* 1: a blob 1.1 model (DAG inputs, groups, per-axis stride/pad,
                             AVGPOOL/ADD/CONCAT, REQUANT): each image runs through eq_model_run */
    uint32_t rowbuf;      /* bytes of the im2col block buffer */
    uint32_t accbuf;      /* bytes of the GEMM output block */
    pthread_mutex_t lock; /* guards cache: the first thread's buffers, kept between calls */
    uint8_t *cache;
    size_t cache_size;
};

/* ---- weight decoding: value (integer encodings) or code (KBIT) of element (n, j) ------------ */
static void eq_decode_row(const eq_layer_view_t *v, uint32_t n, uint32_t k, int32_t *out)
{
    const uint32_t c = v->in_c, cw = EQ_WORDS(c), taps = v->kh * v->kw;
    uint32_t j;
    switch (v->w_enc) {
    case EQ_ENC_B1: {
        const uint32_t *w = (const uint32_t *)v->weight + (size_t)n * taps * cw;
        for (j = 0; j < k; ++j) {
            const uint32_t t = j / c, ch = j % c;
            out[j] = ((w[t * cw + (ch >> 5)] >> (ch & 31u)) & 1u) ? 1 : -1;
        }
        break;
    }
    case EQ_ENC_TERN: {
        const uint32_t *sg = (const uint32_t *)v->weight + (size_t)n * 2u * taps * cw;
        const uint32_t *nz = sg + taps * cw;
        for (j = 0; j < k; ++j) {
            const uint32_t t = j / c, ch = j % c, wi = t * cw + (ch >> 5), sh = ch & 31u;
            out[j] = !((nz[wi] >> sh) & 1u) ? 0 : ((sg[wi] >> sh) & 1u) ? 1 : -1;
        }
        break;
    }
    case EQ_ENC_TERN_SPARSE: { /* validated by the loader: offsets monotone, positions < K */
        const uint8_t *d = (const uint8_t *)v->weight;
        const uint32_t *off = (const uint32_t *)(const void *)d;
        const uint8_t *stream = d + 4u * (v->out_c + 1u);
        uint32_t q, p = 0;
        for (j = 0; j < k; ++j) out[j] = 0;
        for (q = off[n]; q < off[n + 1u]; ++q) {
            const uint32_t x = (stream[q >> 1] >> ((q & 1u) * 4u)) & 15u;
            if (x == 7u) {
                p += 7u;
                continue;
            }
            p += x & 7u;
            if (p < k) out[p] = (x & 8u) ? -1 : 1;
            ++p;
        }
        break;
    }
    case EQ_ENC_I8:
        for (j = 0; j < k; ++j) out[j] = ((const int8_t *)v->weight)[(size_t)n * k + j];
        break;
    case EQ_ENC_I16:
        for (j = 0; j < k; ++j) out[j] = ((const int16_t *)v->weight)[(size_t)n * k + j];
        break;
    case EQ_ENC_KBIT: {
        const uint32_t sb = eq_rule_kbit_slot_bits(v->w_bits);
        const uint32_t rb = (uint32_t)eq_rule_kbit_row_bytes(k, v->w_bits);
        const uint8_t *row = (const uint8_t *)v->weight + (size_t)n * rb;
        for (j = 0; j < k; ++j)
            out[j] = (int32_t)((row[(j * sb) >> 3] >> ((j * sb) & 7u)) & ((1u << sb) - 1u));
        break;
    }
    default:
        for (j = 0; j < k; ++j) out[j] = 0;
    }
}

static int32_t eq_gcd(int32_t a, int32_t b)
{
    a = a < 0 ? -a : a;
    b = b < 0 ? -b : b;
    while (b) {
        const int32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Products of weight class r (value or KBIT code) and activation code a as f_r(a) =
 * c0[r] + d[r] * L[a], d in int8, L in 0..255. Fills c0/d for rows lo..hi of the class range and
 * lmap; 0 if the products do not factor that way. prod(r, a) gives f_r(a). */
typedef struct {
    const eq_layer_view_t *v;
    uint32_t in_enc;
} eq_prod_ctx_t;

static int64_t eq_prod(const eq_prod_ctx_t *cx, int32_t r, uint32_t a)
{
    if (cx->v->w_enc == EQ_ENC_KBIT) return cx->v->lut[(uint32_t)r * cx->v->lut_cols + a];
    if (cx->in_enc == EQ_ENC_B1) return a ? r : -(int64_t)r;
    return (int64_t)r * a;
}

static int eq_factor(const eq_prod_ctx_t *cx, int32_t lo, int32_t hi, uint32_t levels,
                     int32_t *c0, int32_t *d, uint8_t *lmap, int *use_map, uint32_t *shl)
{
    int32_t all_even = 1, r2;
    int64_t L[256], lmin = 0, lmax = 0, g = 0;
    int32_t r, ref = lo;
    uint32_t a, a1 = 0;
    for (r = lo; r <= hi && !g; ++r) /* the first class whose products vary with a */
        for (a = 1; a < levels; ++a) {
            const int64_t dd = eq_prod(cx, r, a) - eq_prod(cx, r, 0);
            if (dd < -(1 << 30) || dd > (1 << 30)) return 0;
            g = eq_gcd((int32_t)g, (int32_t)dd);
            ref = r;
        }
    if (!g) g = 1;
    for (a = 0; a < levels; ++a) {
        L[a] = (eq_prod(cx, ref, a) - eq_prod(cx, ref, 0)) / g;
        if (!a1 && L[a]) a1 = a;
    }
    if (a1 && L[a1] < 0)
        for (a = 0; a < levels; ++a) L[a] = -L[a];
    for (a = 0; a < levels; ++a) {
        lmin = L[a] < lmin ? L[a] : lmin;
        lmax = L[a] > lmax ? L[a] : lmax;
    }
    if (lmax - lmin > 255) return 0;
    for (r = lo; r <= hi; ++r) {
        const int64_t f0 = eq_prod(cx, r, 0);
        int64_t dr = 0;
        if (a1) {
            const int64_t dd = eq_prod(cx, r, a1) - f0;
            if (dd % L[a1]) return 0;
            dr = dd / L[a1];
        }
        for (a = 0; a < levels; ++a)
            if (eq_prod(cx, r, a) != f0 + dr * L[a]) return 0;
        if (dr < -256 || dr > 254) return 0;
        d[r - lo] = (int32_t)dr;
        all_even &= (int32_t)!(dr & 1);
        c0[r - lo] = (int32_t)(f0 + dr * lmin); /* f = c0 + d * (L - lmin) */
    }
    /* d in int8, or 2 * int8 (B1 activations: (2a - 1) * w = 2 * (a * w) - w): the GEMM then
     * runs on d / 2 and its sums are doubled */
    *shl = 0;
    for (r2 = 0; r2 <= hi - lo; ++r2)
        if (d[r2] < -128 || d[r2] > 127) *shl = 1;
    if (*shl && !all_even) return 0;
    if (*shl)
        for (r2 = 0; r2 <= hi - lo; ++r2) d[r2] /= 2;
    *use_map = 0;
    for (a = 0; a < 256u; ++a) {
        const int64_t x = a < levels ? L[a] - lmin : 0;
        lmap[a] = (uint8_t)x;
        if (a < levels && x != (int64_t)a) *use_map = 1;
    }
    return 1;
}

/* ---- plan ------------------------------------------------------------------------------------ */
static eq_status_t eq_plan_bits(eq_hl_t *h, const int32_t *wv)
{
    const uint32_t n = h->v.out_c, k = h->k, c = h->v.in_c, kw = EQ_WORDS(k);
    const uint32_t planes = h->tern ? 2u : 1u;
    uint32_t i, j, t;
    h->kw = kw;
    h->wbits = (uint32_t *)calloc((size_t)n * planes * kw, 4u);
    h->tapc = (uint32_t *)calloc((size_t)n * h->taps, 4u);
    h->bias = (uint32_t *)calloc(n ? n : 1u, 4u);
    if (!h->wbits || !h->tapc || !h->bias) return EQ_ERR_ARENA;
    for (i = 0; i < n; ++i) {
        const int32_t *w = wv + (size_t)i * k;
        uint32_t *row = h->wbits + (size_t)i * planes * kw;
        for (j = 0; j < k; ++j) {
            if (w[j] > 0) row[j >> 5] |= 1u << (j & 31u);
            if (h->tern && w[j] != 0) row[kw + (j >> 5)] |= 1u << (j & 31u);
        }
        for (t = 0; t < h->taps; ++t) { /* an all-zero tap (-1s) adds -sum(w) */
            int32_t s = 0;
            for (j = 0; j < c; ++j) s += w[t * c + j];
            h->tapc[(size_t)t * n + i] = (uint32_t)(-s);
        }
    }
    return EQ_OK;
}

static eq_status_t eq_plan_u8(eq_hl_t *h, const int32_t *wv, int *ok)
{
    const uint32_t n = h->v.out_c, k = h->k, c = h->v.in_c;
    const uint32_t kp = (k + 3u) & ~3u, np8 = (n + 7u) & ~7u, np16 = (n + 15u) & ~15u;
    eq_prod_ctx_t cx;
    int32_t lo, hi, *c0, *d;
    uint32_t i, j, t;
    cx.v = &h->v;
    cx.in_enc = h->v.in_enc;
    *ok = 0;
    if (h->v.w_enc == EQ_ENC_KBIT) {
        lo = 0;
        hi = (int32_t)h->v.lut_rows - 1;
        if (h->v.lut_cols < h->in_levels) return EQ_OK;
    } else {
        lo = hi = 0; /* the range of the values actually used */
        for (j = 0; j < n * k; ++j) {
            lo = wv[j] < lo ? wv[j] : lo;
            hi = wv[j] > hi ? wv[j] : hi;
        }
        if (lo < -128 || hi > 127) return EQ_OK; /* d = value (U8) or 2 * value (B1): no int8 */
    }
    c0 = (int32_t *)malloc(4u * (size_t)(hi - lo + 1));
    d = (int32_t *)malloc(4u * (size_t)(hi - lo + 1));
    if (!c0 || !d) {
        free(c0);
        free(d);
        return EQ_ERR_ARENA;
    }
    if (!eq_factor(&cx, lo, hi, h->in_levels, c0, d, h->lmap, &h->use_map, &h->shl)) {
        free(c0);
        free(d);
        return EQ_OK;
    }
    h->kp = kp;
    h->np8 = np8;
    h->np16 = np16;
    h->w8 = (int8_t *)calloc((size_t)n * kp, 1u);
    h->w2 = (int16_t *)calloc((size_t)kp / 2u * np8 * 2u, 2u);
    h->w4 = (int8_t *)calloc((size_t)kp / 4u * np16 * 4u, 1u);
    h->tapc = (uint32_t *)calloc((size_t)n * h->taps, 4u);
    h->bias = (uint32_t *)calloc(n ? n : 1u, 4u);
    if (!h->w8 || !h->w2 || !h->w4 || !h->tapc || !h->bias) {
        free(c0);
        free(d);
        return EQ_ERR_ARENA;
    }
    for (i = 0; i < n; ++i) {
        const int32_t *w = wv + (size_t)i * k;
        for (j = 0; j < k; ++j) {
            const int8_t x = (int8_t)d[w[j] - lo];
            h->w8[(size_t)i * kp + j] = x;
            h->w2[((size_t)(j / 2u) * np8 + i) * 2u + (j & 1u)] = x;
            h->w4[((size_t)(j / 4u) * np16 + i) * 4u + (j & 3u)] = x;
        }
        for (t = 0; t < h->taps; ++t) {
            uint32_t s = 0;
            for (j = 0; j < c; ++j) s += (uint32_t)c0[w[t * c + j] - lo];
            h->tapc[(size_t)t * n + i] = s;
            h->bias[i] += s;
        }
    }
    free(c0);
    free(d);
    *ok = 1;
    return EQ_OK;
}

static void eq_range(int32_t i0, uint32_t k, uint32_t n, uint32_t *lo, uint32_t *hi);

/* pat[i] = class of output position i (of n) by its in-bounds kernel range [lo, hi) along one
 * axis; returns the number of classes */
static uint32_t eq_axis_classes(uint32_t n, uint32_t stride, uint32_t pad, uint32_t k, uint32_t in,
                                uint32_t *pat, uint32_t *lo, uint32_t *hi)
{
    uint32_t i, q, nc = 0;
    for (i = 0; i < n; ++i) {
        uint32_t a, b;
        eq_range((int32_t)(i * stride) - (int32_t)pad, k, in, &a, &b);
        for (q = 0; q < nc && (lo[q] != a || hi[q] != b); ++q) {}
        if (q == nc) {
            lo[nc] = a;
            hi[nc++] = b;
        }
        pat[i] = q;
    }
    return nc;
}

/* classes of output rows (columns) by their in-bounds kernel rows (columns); per pair of classes
 * the constant added to the GEMM result: bias - sum of tapc over the out-of-bounds taps */
static eq_status_t eq_plan_windows(eq_hl_t *h)
{
    const eq_layer_view_t *v = &h->v;
    const uint32_t n = v->out_c;
    uint32_t *ylo, *yhi, *xlo, *xhi, ny, nx, j, ky, kx, cls;
    eq_status_t st = EQ_OK;
    h->ypat = (uint32_t *)malloc(4u * v->out_h);
    h->xpat = (uint32_t *)malloc(4u * v->out_w);
    ylo = (uint32_t *)malloc(4u * v->out_h);
    yhi = (uint32_t *)malloc(4u * v->out_h);
    xlo = (uint32_t *)malloc(4u * v->out_w);
    xhi = (uint32_t *)malloc(4u * v->out_w);
    if (!h->ypat || !h->xpat || !ylo || !yhi || !xlo || !xhi) {
        st = EQ_ERR_ARENA;
        goto done;
    }
    ny = eq_axis_classes(v->out_h, v->stride, v->pad, v->kh, v->in_h, h->ypat, ylo, yhi);
    nx = eq_axis_classes(v->out_w, v->stride, v->pad, v->kw, v->in_w, h->xpat, xlo, xhi);
    h->nx = nx;
    if ((uint64_t)ny * nx * n > (1u << 26)) {
        st = EQ_ERR_TOO_LARGE;
        goto done;
    }
    h->add = (uint32_t *)malloc(4u * (size_t)ny * nx * n + 4u);
    h->addz = (uint8_t *)malloc((size_t)ny * nx + 1u);
    if (!h->add || !h->addz) {
        st = EQ_ERR_ARENA;
        goto done;
    }
    for (cls = 0; cls < ny * nx; ++cls) {
        const uint32_t yc = cls / nx, xc = cls % nx;
        uint32_t *a = h->add + (size_t)cls * n, z = 0;
        for (j = 0; j < n; ++j) a[j] = h->bias[j];
        for (ky = 0; ky < v->kh; ++ky)
            for (kx = 0; kx < v->kw; ++kx) {
                const uint32_t *tc = h->tapc + (size_t)(ky * v->kw + kx) * n;
                if (ky >= ylo[yc] && ky < yhi[yc] && kx >= xlo[xc] && kx < xhi[xc]) continue;
                for (j = 0; j < n; ++j) a[j] -= tc[j];
            }
        for (j = 0; j < n; ++j) z |= a[j];
        h->addz[cls] = z == 0u;
    }
done:
    free(ylo);
    free(yhi);
    free(xlo);
    free(xhi);
    return st;
}

/* integer SIGN / MULTI thresholds re-laid out for the vector stages */
static eq_status_t eq_plan_stage(eq_hl_t *h)
{
    const uint32_t n = h->v.out_c;
    const uint32_t nt = h->v.out_stage == EQ_OUT_SIGN ? 1u : (1u << h->v.out_bits) - 1u;
    const int32_t *thr = (const int32_t *)h->v.thr;
    const uint8_t *flip = (const uint8_t *)h->v.aux;
    uint32_t j, i;
    h->n_thr = nt;
    h->t2 = (int32_t *)malloc(4u * (size_t)nt * n + 4u);
    h->fw = (uint32_t *)calloc(EQ_WORDS(n) + 1u, 4u);
    if (!h->t2 || !h->fw) return EQ_ERR_ARENA;
    for (j = 0; j < n; ++j) { /* u = flip ? t : t - 1 (see eq_hx_sign_avx512) */
        for (i = 0; i < nt; ++i) {
            const int32_t t = thr[(size_t)j * nt + i];
            h->t2[(size_t)i * n + j] = flip[j] || t == INT32_MIN ? t : t - 1;
        }
        if (flip[j]) h->fw[j >> 5] |= 1u << (j & 31u);
    }
    return EQ_OK;
}

/* Integer Winograd (eq_wino_i8.h) for U8 x I8 3x3 stride-1 pad-1 layers whose GEMM sums are
 * the accumulators themselves (codes unmapped, no shift, no bias or border terms); the weights
 * are transformed once here, the band buffers come from the executor's row / acc buffers */
static eq_status_t eq_plan_wino(eq_host_plan_t *p, eq_hl_t *h)
{
    const eq_layer_view_t *v = &h->v;
    uint32_t oy, ox;
    size_t bb, ab;
    if (v->in_enc != EQ_ENC_U8 || v->w_enc != EQ_ENC_I8 || v->kh != 3u || v->kw != 3u
        || v->stride != 1u || v->pad != 1u || v->out_h != v->in_h || v->out_w != v->in_w
        || h->use_map || h->shl)
        return EQ_OK;
    for (oy = 0; oy < v->out_h; ++oy)
        for (ox = 0; ox < v->out_w; ++ox)
            if (!h->addz[h->ypat[oy] * h->nx + h->xpat[ox]]) return EQ_OK;
    if (!eq_hwino_geometry(&h->wg, v->in_h, v->in_w, v->in_c, v->out_c)) return EQ_OK;
    h->wtr = eq_hwino_band_rows(&h->wg);
    bb = eq_hwino_band_bytes(&h->wg, h->wtr);
    ab = (size_t)h->wtr * 2u * v->out_w * v->out_c * 4u;
    if (!bb || bb > (1u << 30) || ab > (1u << 30)) return EQ_OK;
    h->wu = (int16_t *)malloc(eq_hwino_u_bytes(&h->wg));
    if (!h->wu) return EQ_ERR_ARENA;
    eq_hwino_weights(&h->wg, (const int8_t *)v->weight, h->wu);
    if (bb > p->rowbuf) p->rowbuf = (uint32_t)bb;
    if (ab > p->accbuf) p->accbuf = (uint32_t)ab;
    return EQ_OK;
}

void eq_host_plan_free(eq_host_plan_t *p)
{
    uint32_t i;
    if (!p) return;
    for (i = 0; p->layers && i < p->n_layers; ++i) {
        eq_hl_t *h = &p->layers[i];
        free(h->wbits);
        free(h->w8);
        free(h->w2);
        free(h->w4);
        free(h->tapc);
        free(h->bias);
        free(h->t2);
        free(h->fw);
        free(h->ypat);
        free(h->xpat);
        free(h->add);
        free(h->addz);
        free(h->wu);
    }
    free(p->layers);
    free(p->cache);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

eq_status_t eq_host_plan_new(const eq_model_t *m, eq_host_plan_t **out)
{
    eq_host_plan_t *p;
    uint32_t i, r, levels;
    eq_status_t st = EQ_OK;
    if (!m || !m->blob || !out) return EQ_ERR_ARG;
    *out = NULL;
    p = (eq_host_plan_t *)calloc(1, sizeof *p);
    if (!p) return EQ_ERR_ARENA;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return EQ_ERR_ARENA;
    }
    p->m = m;
    p->n_layers = m->n_layers;
    p->layers = (eq_hl_t *)calloc(m->n_layers, sizeof(eq_hl_t));
    if (!p->layers) {
        eq_host_plan_free(p);
        return EQ_ERR_ARENA;
    }
    levels = m->pre_mode == EQ_PRE_THRESH ? 2u : m->pre_mode == EQ_PRE_RAW ? 256u : 1u << m->pre_param;
    p->rowbuf = 64u;
    p->accbuf = 64u;
    for (i = 0; i < m->n_layers && st == EQ_OK; ++i) {
        eq_hl_t *h = &p->layers[i];
        int32_t *wv;
        int ok = 0;
        st = eq_model_layer(m, i, &h->v);
        if (st != EQ_OK) break;
        h->in_levels = levels;
        /* The batched kernels below know blob 1.0 graphs only (a chain, square windows, one
         * group, three stages). A model using any 1.1 feature runs image by image through the
         * firmware's executor eq_model_run instead: the same answers, without the batching. */
        if (m->v11) {
            h->kind = EQ_KIND_FALLBACK;
            continue;
        }
        if (h->v.op == EQ_OP_CONV) {
            const uint32_t n = h->v.out_c;
            h->taps = h->v.kh * h->v.kw;
            h->k = h->taps * h->v.in_c;
            h->kind = EQ_KIND_FALLBACK;
            if (h->v.w_enc != EQ_ENC_F32 && (uint64_t)h->k * n < (1u << 25)) {
                wv = (int32_t *)malloc(4u * (size_t)h->k * (n ? n : 1u));
                if (!wv) {
                    st = EQ_ERR_ARENA;
                    break;
                }
                for (r = 0; r < n; ++r) eq_decode_row(&h->v, r, h->k, wv + (size_t)r * h->k);
                if (h->v.in_enc == EQ_ENC_B1
                    && (h->v.w_enc == EQ_ENC_B1 || h->v.w_enc == EQ_ENC_TERN
                        || h->v.w_enc == EQ_ENC_TERN_SPARSE)) {
                    h->tern = h->v.w_enc != EQ_ENC_B1;
                    st = eq_plan_bits(h, wv);
                    ok = st == EQ_OK;
                    if (ok) h->kind = EQ_KIND_BITS;
                } else {
                    st = eq_plan_u8(h, wv, &ok);
                    if (st == EQ_OK && ok) h->kind = EQ_KIND_U8;
                }
                free(wv);
                if (st != EQ_OK) break;
            }
            if (h->kind != EQ_KIND_FALLBACK) {
                st = eq_plan_windows(h);
                if (st != EQ_OK) break;
            }
            if (h->kind != EQ_KIND_FALLBACK && h->v.out_stage != EQ_OUT_AFFINE) {
                st = eq_plan_stage(h);
                if (st != EQ_OK) break;
            }
            if (h->kind == EQ_KIND_U8) {
                st = eq_plan_wino(p, h);
                if (st != EQ_OK) break;
            }
            if (h->kind != EQ_KIND_FALLBACK) {
                const uint32_t rb = h->kind == EQ_KIND_BITS ? 4u * h->kw : h->kp;
                uint32_t mb = EQ_BLOCK_BYTES / (rb ? rb : 1u);
                mb = mb < 16u ? 16u : mb > EQ_MAX_MB ? EQ_MAX_MB : mb;
                h->mb = mb;
                if (mb * rb > p->rowbuf) p->rowbuf = mb * rb;
                if (mb * n * 4u > p->accbuf) p->accbuf = mb * n * 4u;
            }
            levels = h->v.out_stage == EQ_OUT_SIGN ? 2u
                     : h->v.out_stage == EQ_OUT_MULTI ? 1u << h->v.out_bits : 0u;
        }
    }
    if (st != EQ_OK) {
        eq_host_plan_free(p);
        return st;
    }
    p->per_image = m->v11 != 0u;
    p->chunk = EQ_CHUNK_BYTES / m->max_act;
    p->chunk = p->chunk < 1u ? 1u : p->chunk > 64u ? 64u : p->chunk;
    *out = p;
    return EQ_OK;
}

uint32_t eq_host_plan_layer_kind(const eq_host_plan_t *p, uint32_t i)
{
    return p && i < p->n_layers ? p->layers[i].kind : 0u;
}

/* Winograd for this layer with executor GEMM kind u8_kind and the current mode */
static int eq_wino_on(const eq_hl_t *h, int32_t u8_kind)
{
    const int32_t mode = eq_host_get_wino_i8();
    if (!h->wu || mode == 0) return 0;
    return mode == 1 || eq_host_wino_i8_worth(u8_kind, h->v.in_c, h->v.out_c, h->v.out_h, h->v.out_w);
}

uint32_t eq_host_plan_layer_wino(const eq_host_plan_t *p, uint32_t i)
{
    return p && i < p->n_layers && eq_wino_on(&p->layers[i], eq_host_u8_kind()) ? 1u : 0u;
}

/* ---- run --------------------------------------------------------------------------------- */
typedef struct {
    uint8_t *act[2];
    uint8_t *mapped;      /* U8 input codes through lmap (chunk * max_act bytes) */
    uint8_t *rows;
    int32_t *acc;
    uint32_t *cls;        /* window class of each pixel of a GEMM block */
} eq_ws_t;

/* copy c bits of src (LSB-first words, bits above c are 0) to dst at bit offset off; dst has
 * dw words (bits beyond them are 0 and dropped) */
static void eq_put_bitstr(uint32_t *dst, uint32_t dw, uint32_t off, const uint32_t *src, uint32_t c)
{
    const uint32_t sh = off & 31u, cw = EQ_WORDS(c);
    uint32_t i, q = off >> 5;
    if (!sh) {
        for (i = 0; i < cw && q + i < dw; ++i) dst[q + i] |= src[i];
        return;
    }
    for (i = 0; i < cw; ++i) {
        const uint32_t x = src[i];
        if (q + i < dw) dst[q + i] |= x << sh;
        if (q + i + 1u < dw) dst[q + i + 1u] |= x >> (32u - sh);
    }
}

/* output pixel p (of the chunk) -> image, oy, ox; in-bounds tap ranges */
typedef struct {
    int32_t iy0, ix0;
    uint32_t ky0, ky1, kx0, kx1;
} eq_win_t;

static void eq_range(int32_t i0, uint32_t k, uint32_t n, uint32_t *lo, uint32_t *hi)
{
    int32_t a = i0 < 0 ? -i0 : 0, b = (int32_t)n - i0;
    if (b > (int32_t)k) b = (int32_t)k;
    if (b < a) b = a;
    *lo = (uint32_t)a;
    *hi = (uint32_t)b;
}

static void eq_window(const eq_layer_view_t *v, uint32_t oy, uint32_t ox, eq_win_t *t)
{
    t->iy0 = (int32_t)(oy * v->stride) - (int32_t)v->pad;
    t->ix0 = (int32_t)(ox * v->stride) - (int32_t)v->pad;
    eq_range(t->iy0, v->kh, v->in_h, &t->ky0, &t->ky1);
    eq_range(t->ix0, v->kw, v->in_w, &t->kx0, &t->kx1);
}

static void eq_im2col_row(const eq_hl_t *h, const uint8_t *img, const eq_win_t *t, int map,
                          uint8_t *row)
{
    const eq_layer_view_t *v = &h->v;
    const uint32_t c = v->in_c;
    uint32_t ky, kx, i;
    if (h->kind == EQ_KIND_BITS) {
        const uint32_t cw = EQ_WORDS(c);
        uint32_t *r = (uint32_t *)(void *)row;
        if (!(c & 31u)) { /* whole words: each kernel row's in-bounds taps are one copy */
            if (t->ky1 - t->ky0 != v->kh || t->kx1 - t->kx0 != v->kw) memset(r, 0, 4u * h->kw);
            for (ky = t->ky0; ky < t->ky1; ++ky) {
                const uint32_t *a = (const uint32_t *)(const void *)img
                                    + ((size_t)(uint32_t)(t->iy0 + (int32_t)ky) * v->in_w
                                       + (uint32_t)(t->ix0 + (int32_t)t->kx0)) * cw;
                uint32_t *d = r + (ky * v->kw + t->kx0) * cw;
                const uint32_t nw = (t->kx1 - t->kx0) * cw;
                for (i = 0; i < nw; ++i) d[i] = a[i];
            }
            return;
        }
        memset(r, 0, 4u * h->kw);
        for (ky = t->ky0; ky < t->ky1; ++ky)
            for (kx = t->kx0; kx < t->kx1; ++kx) {
                const uint32_t *a = (const uint32_t *)(const void *)img
                                    + ((size_t)(uint32_t)(t->iy0 + (int32_t)ky) * v->in_w
                                       + (uint32_t)(t->ix0 + (int32_t)kx)) * cw;
                eq_put_bitstr(r, h->kw, (ky * v->kw + kx) * c, a, c);
            }
        return;
    }
    memset(row, 0, h->kp);
    for (ky = t->ky0; ky < t->ky1; ++ky) {
        const size_t pix0 = (size_t)(uint32_t)(t->iy0 + (int32_t)ky) * v->in_w
                            + (uint32_t)(t->ix0 + (int32_t)t->kx0);
        uint8_t *dst = row + (ky * v->kw + t->kx0) * c;
        const uint32_t len = (t->kx1 - t->kx0) * c;
        if (v->in_enc == EQ_ENC_B1) {
            const uint32_t cw = EQ_WORDS(c);
            for (kx = 0; kx < t->kx1 - t->kx0; ++kx) {
                const uint32_t *a = (const uint32_t *)(const void *)img + (pix0 + kx) * cw;
                for (i = 0; i < c; ++i) dst[kx * c + i] = h->lmap[(a[i >> 5] >> (i & 31u)) & 1u];
            }
        } else if (map) {
            const uint8_t *a = img + pix0 * c;
            for (i = 0; i < len; ++i) dst[i] = h->lmap[a[i]];
        } else if (len < 32u) {
            const uint8_t *a = img + pix0 * c;
            for (i = 0; i < len; ++i) dst[i] = a[i];
        } else {
            memcpy(dst, img + pix0 * c, len);
        }
    }
}

static void eq_gemm_u8(const eq_hl_t *h, int32_t kind, const uint8_t *rows, uint32_t m,
                       int32_t *acc)
{
    const uint32_t n = h->v.out_c, kp = h->kp;
#ifdef EQ_HOST_HAVE_AVX2
    if (kind == 2) {
        eq_hx_gemm_u8s8_avx512(rows, kp, h->w4, h->np16, m, n, kp, acc);
        return;
    }
    if (kind == 1) {
        eq_hx_gemm_u8s16_avx2(rows, kp, h->w2, h->np8, m, n, kp, acc);
        return;
    }
#endif
    (void)kind;
    {
        uint32_t i, j, q;
        for (i = 0; i < m; ++i)
            for (j = 0; j < n; ++j) {
                const uint8_t *a = rows + (size_t)i * kp;
                const int8_t *w = h->w8 + (size_t)j * kp;
                uint32_t s = 0;
                for (q = 0; q < kp; ++q) s += (uint32_t)((int32_t)a[q] * w[q]);
                acc[(size_t)i * n + j] = (int32_t)s;
            }
    }
}

static void eq_stage(const eq_layer_view_t *v, const int32_t *acc, uint32_t n_pix, uint8_t *out);

/* SIGN / MULTI on the prepared thresholds u (see eq_plan_stage) in plain C whose channel loops
 * the compiler vectorises; one copy for any x86-64 / other CPU, one compiled for AVX2 */
#define EQ_STAGE_BODY                                                                             \
    {                                                                                             \
        const uint32_t c = h->v.out_c, nt = h->n_thr, cw = EQ_WORDS(c);                          \
        const int32_t *restrict u = h->t2;                                                        \
        uint8_t code[256];                                                                        \
        uint32_t p, n0, i, j;                                                                     \
        for (p = 0; p < n_pix; ++p) {                                                             \
            const int32_t *restrict a = acc + (size_t)p * c;                                      \
            for (n0 = 0; n0 < c; n0 += 256u) {                                                    \
                const uint32_t nb = c - n0 < 256u ? c - n0 : 256u;                                \
                for (j = 0; j < nb; ++j) code[j] = 0;                                             \
                for (i = 0; i < nt; ++i) {                                                        \
                    const int32_t *restrict ui = u + (size_t)i * c + n0;                          \
                    for (j = 0; j < nb; ++j) code[j] = (uint8_t)(code[j] + (a[n0 + j] > ui[j]));  \
                }                                                                                 \
                for (j = 0; j < nb; ++j) {                                                        \
                    const uint32_t f = (h->fw[(n0 + j) >> 5] >> ((n0 + j) & 31u)) & 1u;           \
                    code[j] = (uint8_t)(f ? nt - code[j] : code[j]);                              \
                }                                                                                 \
                if (h->v.out_stage == EQ_OUT_MULTI) {                                             \
                    for (j = 0; j < nb; ++j) out[(size_t)p * c + n0 + j] = code[j];               \
                } else {                                                                          \
                    uint32_t *o = (uint32_t *)(void *)out + (size_t)p * cw + (n0 >> 5);           \
                    for (j = 0; j < nb; j += 32u) {                                               \
                        uint32_t wd = 0, q;                                                       \
                        for (q = 0; q < 32u && j + q < nb; ++q) wd |= (uint32_t)code[j + q] << q; \
                        o[j >> 5] = wd;                                                           \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }

static void eq_stage_c(const eq_hl_t *h, const int32_t *restrict acc, uint32_t n_pix,
                       uint8_t *restrict out)
EQ_STAGE_BODY

#ifdef EQ_HOST_HAVE_AVX2
__attribute__((target("avx2"))) static void eq_stage_avx2(const eq_hl_t *h,
                                                          const int32_t *restrict acc,
                                                          uint32_t n_pix, uint8_t *restrict out)
EQ_STAGE_BODY
#endif

static void eq_stage_fast(const eq_hl_t *h, int32_t kind, const int32_t *acc, uint32_t n_pix,
                          uint8_t *out)
{
#ifdef EQ_HOST_HAVE_AVX2
    if (kind == 2 && h->t2) {
        if (h->v.out_stage == EQ_OUT_SIGN)
            eq_hx_sign_avx512(acc, n_pix, h->v.out_c, h->t2, h->fw, (uint32_t *)(void *)out);
        else
            eq_hx_multi_avx512(acc, n_pix, h->v.out_c, h->t2, h->n_thr, h->fw, out);
        return;
    }
    if (kind == 1 && h->t2) {
        eq_stage_avx2(h, acc, n_pix, out);
        return;
    }
#endif
    if (h->t2) {
        eq_stage_c(h, acc, n_pix, out);
        return;
    }
    (void)kind;
    eq_stage(&h->v, acc, n_pix, out);
}

static void eq_stage(const eq_layer_view_t *v, const int32_t *acc, uint32_t n_pix, uint8_t *out)
{
    const uint16_t c = (uint16_t)v->out_c;
    if (v->out_stage == EQ_OUT_SIGN)
        eq_threshold_sign_b1(acc, n_pix, c, (const int32_t *)v->thr, (const uint8_t *)v->aux,
                             (uint32_t *)(void *)out);
    else if (v->out_stage == EQ_OUT_MULTI)
        eq_threshold_multi_u8(acc, n_pix, c, (const int32_t *)v->thr,
                              (uint16_t)((1u << v->out_bits) - 1u), (const uint8_t *)v->aux, out);
    else
        eq_affine_i32(acc, n_pix, c, (const int32_t *)v->thr, (const int32_t *)v->aux,
                      (uint8_t)v->shift, (int32_t *)(void *)out);
}

static uint32_t eq_pix_bytes(uint32_t enc, uint32_t c)
{
    return enc == EQ_ENC_B1 ? 4u * EQ_WORDS(c) : enc == EQ_ENC_U8 ? c : 4u * c;
}

/* a Winograd layer (eq_plan_wino) over nimg stacked images, band by band of tile rows */
static void eq_conv_wino(const eq_hl_t *h, int32_t u8_kind, const uint8_t *in, uint8_t *out,
                         uint32_t nimg, eq_ws_t *ws)
{
    const uint32_t opb = eq_pix_bytes(h->v.out_enc, h->v.out_c);
    const eq_hwino_band_fn band = eq_hwino_band_for(u8_kind);
    eq_hwino_t j = h->wg;
    const uint32_t total = nimg * j.tph;
    uint32_t tr, ntr = h->wtr < total ? h->wtr : total;
    j.x = in;
    j.u = h->wu;
    eq_hwino_buffers(&j, ntr, ws->rows);
    for (tr = 0; tr < total; tr += ntr) {
        const uint32_t k = total - tr < ntr ? total - tr : ntr;
        uint32_t rows;
        const size_t pix = eq_hwino_row_pixel(&j, tr, &rows);
        const size_t end = tr + k < total ? eq_hwino_row_pixel(&j, tr + k, &rows)
                                          : (size_t)nimg * j.h * j.w;
        band(&j, tr, k, ws->acc);
        eq_stage_fast(h, u8_kind, ws->acc, (uint32_t)(end - pix), out + pix * opb);
    }
}

/* a fast CONV layer over nimg images (inputs at in + b * in_stride, outputs likewise) */
static void eq_conv_fast(const eq_hl_t *h, int32_t u8_kind, const uint8_t *in, uint32_t in_stride,
                         uint8_t *out, uint32_t out_stride, uint32_t nimg, eq_ws_t *ws)
{
    const eq_layer_view_t *v = &h->v;
    const uint32_t n = v->out_c, total = v->out_h * v->out_w * nimg;
    const uint32_t rb = h->kind == EQ_KIND_BITS ? 4u * h->kw : h->kp;
    const uint32_t opb = eq_pix_bytes(v->out_enc, n);
    uint32_t p0, p, j;
    (void)out_stride; /* images are contiguous: out_stride == ppi * opb */
    uint32_t b = 0, oy = 0, ox = 0; /* position of pixel p0, advanced pixel by pixel */
    int map = h->kind == EQ_KIND_U8 && h->use_map && v->in_enc == EQ_ENC_U8;
    if (eq_wino_on(h, u8_kind)) { /* images are contiguous: in_stride == h * w * c */
        eq_conv_wino(h, u8_kind, in, out, nimg, ws);
        return;
    }
    if (map && ws->mapped) { /* map every input code once, not once per tap */
        const size_t nb = (size_t)nimg * in_stride;
        size_t i;
        for (i = 0; i < nb; ++i) ws->mapped[i] = h->lmap[in[i]];
        in = ws->mapped;
        map = 0;
    }
    for (p0 = 0; p0 < total; p0 += h->mb) {
        const uint32_t mb = total - p0 < h->mb ? total - p0 : h->mb;
        uint32_t *cls = ws->cls;
        for (p = 0; p < mb; ++p) {
            eq_win_t t;
            eq_window(v, oy, ox, &t);
            eq_im2col_row(h, in + (size_t)b * in_stride, &t, map, ws->rows + (size_t)p * rb);
            cls[p] = h->ypat[oy] * h->nx + h->xpat[ox];
            if (++ox == v->out_w) {
                ox = 0;
                if (++oy == v->out_h) {
                    oy = 0;
                    ++b;
                }
            }
        }
        if (h->kind == EQ_KIND_BITS) {
            if (h->tern)
                eq_host_gemm_tern_b1((const uint32_t *)(const void *)ws->rows, h->wbits, mb, n,
                                     h->k, ws->acc);
            else
                eq_host_gemm_xnor_b1b1((const uint32_t *)(const void *)ws->rows, h->wbits, mb, n,
                                       h->k, ws->acc);
        } else {
            eq_gemm_u8(h, u8_kind, ws->rows, mb, ws->acc);
        }
        for (p = 0; p < mb; ++p) { /* bias and the border pixels' out-of-bounds taps */
            uint32_t *o = (uint32_t *)(void *)(ws->acc + (size_t)p * n);
            const uint32_t *a = h->add + (size_t)cls[p] * n;
            if (h->shl)
                for (j = 0; j < n; ++j) o[j] <<= 1;
            if (h->addz[cls[p]]) continue;
            for (j = 0; j < n; ++j) o[j] += a[j];
        }
        eq_stage_fast(h, u8_kind, ws->acc, mb, out + (size_t)p0 * opb);
    }
}

/* eq_model_run's CONV path for one image (F32 weights and the pairs without a fast path) */
static eq_status_t eq_conv_rows(const eq_layer_view_t *v, const void *in, uint8_t *out, int32_t *acc,
                                uint32_t acc_bytes)
{
    eq_conv_shape_t s;
    eq_weights_t wd;
    uint32_t oy, n_pix = v->out_w;
    memset(&s, 0, sizeof s); /* a 1.0 layer: square stride / pad */
    s.in_h = (uint16_t)v->in_h;
    s.in_w = (uint16_t)v->in_w;
    s.in_c = (uint16_t)v->in_c;
    s.out_h = (uint16_t)v->out_h;
    s.out_w = (uint16_t)v->out_w;
    s.out_c = (uint16_t)v->out_c;
    s.kh = (uint8_t)v->kh;
    s.kw = (uint8_t)v->kw;
    s.stride = (uint8_t)v->stride;
    s.pad = (uint8_t)v->pad;
    wd.enc = (uint8_t)v->w_enc;
    wd.data = v->weight;
    wd.lut = v->lut;
    wd.lut_rows = (uint16_t)v->lut_rows;
    wd.lut_cols = (uint16_t)v->lut_cols;
    if (v->w_enc == EQ_ENC_F32 && (v->flags & EQ_LFLAG_WINO_F23)) /* blob 1.2: the firmware's kernel */
        return eq_host_conv_wino_f32(v, &s, in, out, acc, acc_bytes);
    for (oy = 0; oy < v->out_h; ++oy) {
        const size_t o = (size_t)oy * n_pix;
        eq_status_t st;
        if (v->w_enc == EQ_ENC_F32) {
            float *fa = (float *)(void *)acc;
            st = eq_conv2d_row_f32(&s, (uint8_t)v->in_enc, in, (const float *)v->weight,
                                   (uint16_t)oy, fa);
            if (st != EQ_OK) return st;
            if (v->out_stage == EQ_OUT_SIGN)
                eq_threshold_sign_f32_b1(fa, n_pix, s.out_c, (const float *)v->thr,
                                         (const uint8_t *)v->aux,
                                         (uint32_t *)(void *)out + o * EQ_WORDS(v->out_c));
            else if (v->out_stage == EQ_OUT_MULTI)
                eq_threshold_multi_f32_u8(fa, n_pix, s.out_c, (const float *)v->thr,
                                          (uint16_t)((1u << v->out_bits) - 1u),
                                          (const uint8_t *)v->aux, out + o * v->out_c);
            else
                eq_affine_f32_i32(fa, n_pix, s.out_c, (const float *)v->thr,
                                  (const float *)v->aux, (int32_t *)(void *)out + o * v->out_c);
            continue;
        }
        st = eq_conv2d_row(&s, (uint8_t)v->in_enc, in, &wd, (uint16_t)oy, acc);
        if (st != EQ_OK) return st;
        eq_stage(v, acc, n_pix, out + o * eq_pix_bytes(v->out_enc, v->out_c));
    }
    return EQ_OK;
}

static void eq_flatten(const eq_layer_view_t *v, const uint8_t *in, uint8_t *out)
{
    const uint32_t n_pix = v->in_h * v->in_w, c = v->in_c;
    if (v->in_enc == EQ_ENC_B1) {
        const uint32_t *src = (const uint32_t *)(const void *)in;
        uint32_t *dst = (uint32_t *)(void *)out;
        uint32_t cw = EQ_WORDS(c), p, ch, bit = 0;
        memset(dst, 0, (size_t)EQ_WORDS(v->out_c) * 4u);
        for (p = 0; p < n_pix; p++)
            for (ch = 0; ch < c; ch++, bit++)
                dst[bit >> 5] |= ((src[p * cw + (ch >> 5)] >> (ch & 31u)) & 1u) << (bit & 31u);
    } else {
        memcpy(out, in, (size_t)eq_rule_act_bytes(v->in_enc, v->in_h, v->in_w, c));
    }
}

/* U8 max-pool as eq_maxpool_u8, with the channel loop free of aliasing (vectorised) */
static void eq_pool_u8(const uint8_t *restrict in, uint32_t w, uint32_t c, uint32_t k,
                       uint32_t stride, uint32_t oh, uint32_t ow, uint8_t *restrict out)
{
    uint32_t oy, ox, dy, dx, i;
    for (oy = 0; oy < oh; ++oy)
        for (ox = 0; ox < ow; ++ox) {
            uint8_t *restrict o = out + ((size_t)oy * ow + ox) * c;
            memcpy(o, in + ((size_t)oy * stride * w + (size_t)ox * stride) * c, c);
            for (dy = 0; dy < k; ++dy)
                for (dx = 0; dx < k; ++dx) {
                    const uint8_t *restrict a = in + (((size_t)oy * stride + dy) * w
                                                      + (size_t)ox * stride + dx) * c;
                    for (i = 0; i < c; ++i) o[i] = a[i] > o[i] ? a[i] : o[i];
                }
        }
}

static void eq_pool(const eq_layer_view_t *v, const uint8_t *in, uint8_t *out)
{
    const uint16_t h = (uint16_t)v->in_h, w = (uint16_t)v->in_w, c = (uint16_t)v->in_c;
    const uint8_t k = (uint8_t)v->kh, s = (uint8_t)v->stride;
    if (v->in_enc == EQ_ENC_B1)
        eq_maxpool_b1((const uint32_t *)(const void *)in, h, w, c, k, s, (uint32_t *)(void *)out);
    else if (v->in_enc == EQ_ENC_U8)
        eq_pool_u8(in, w, c, k, s, v->out_h, v->out_w, out);
    else
        eq_maxpool_i32((const int32_t *)(const void *)in, h, w, c, k, s, (int32_t *)(void *)out);
}

static void eq_scores(const eq_model_t *m, const eq_layer_view_t *last, const uint8_t *cur,
                      int32_t *scores, uint32_t *cls)
{
    const uint32_t n = m->n_classes;
    uint32_t i;
    if (last->out_enc == EQ_ENC_I32) {
        memcpy(scores, cur, (size_t)n * 4u);
    } else if (last->out_enc == EQ_ENC_U8) {
        for (i = 0; i < n; i++) scores[i] = cur[i];
    } else {
        const uint32_t *wd = (const uint32_t *)(const void *)cur;
        const uint32_t cw = EQ_WORDS(last->out_c);
        for (i = 0; i < n; i++) {
            const uint32_t p = i / last->out_c, ch = i % last->out_c;
            scores[i] = ((wd[p * cw + ch / 32u] >> (ch % 32u)) & 1u) ? 1 : -1;
        }
    }
    if (cls) *cls = eq_argmax_i32(scores, n);
}

/* images [i0, i1) of the batch, chunk by chunk */
static eq_status_t eq_run_range(const eq_host_plan_t *p, const uint8_t *px, uint32_t wire,
                                uint32_t i0, uint32_t i1, int32_t *scores, uint32_t *cls,
                                int32_t u8_kind, eq_ws_t *ws)
{
    const eq_model_t *m = p->m;
    uint32_t b0, b, i;
    if (p->per_image) { /* ws->act[0]: an arena of m->arena_need bytes (eq_job) */
        const uint32_t in_bytes = wire ? m->input_wire : m->input_pixels;
        (void)u8_kind;
        eq_run_t run = {0};
        run.input_size = in_bytes;
        run.input_kind = wire ? EQ_INPUT_WIRE : EQ_INPUT_PIXELS;
        run.n_scores = m->n_classes;
        for (b = i0; b < i1; ++b) {
            eq_status_t st;
            run.input = px + (size_t)b * in_bytes;
            run.scores = scores + (size_t)b * m->n_classes;
            st = eq_model_run(m, ws->act[0], m->arena_need, &run);
            if (st != EQ_OK) return st;
            if (cls) cls[b] = run.cls;
        }
        return EQ_OK;
    }
    for (b0 = i0; b0 < i1; b0 += p->chunk) {
        const uint32_t nimg = i1 - b0 < p->chunk ? i1 - b0 : p->chunk;
        uint32_t cur = 0, stride;
        stride = (uint32_t)eq_rule_act_bytes(m->pre_mode == EQ_PRE_THRESH ? EQ_ENC_B1 : EQ_ENC_U8,
                                             m->in_h, m->in_w, m->in_c);
        for (b = 0; b < nimg; ++b) {
            const uint8_t *x = px + (size_t)(b0 + b) * (wire ? m->input_wire : m->input_pixels);
            uint8_t *a = ws->act[0] + (size_t)b * stride;
            if (m->pre_mode == EQ_PRE_THRESH && wire)
                eq_unpack_wire_chw_b1(x, m->in_c, m->in_h, m->in_w, (uint32_t *)(void *)a);
            else if (m->pre_mode == EQ_PRE_THRESH)
                eq_pack_threshold_chw_b1(x, m->in_c, m->in_h, m->in_w, m->pre_param,
                                         (uint32_t *)(void *)a);
            else
                eq_quant_chw_u8(x, m->in_c, m->in_h, m->in_w,
                                m->pre_mode == EQ_PRE_RAW ? 8u : m->pre_param, a);
        }
        for (i = 0; i < p->n_layers; ++i) {
            const eq_hl_t *h = &p->layers[i];
            const uint32_t os = (uint32_t)eq_rule_act_bytes(h->v.out_enc, h->v.out_h, h->v.out_w,
                                                            h->v.out_c);
            const uint8_t *in = ws->act[cur];
            uint8_t *out = ws->act[cur ^ 1u];
            if (h->v.op == EQ_OP_CONV && h->kind != EQ_KIND_FALLBACK) {
                eq_conv_fast(h, u8_kind, in, stride, out, os, nimg, ws);
            } else {
                for (b = 0; b < nimg; ++b) {
                    const uint8_t *ib = in + (size_t)b * stride;
                    uint8_t *ob = out + (size_t)b * os;
                    if (h->v.op == EQ_OP_CONV) {
                        const eq_status_t st = eq_conv_rows(&h->v, ib, ob, ws->acc, p->m->acc_row);
                        if (st != EQ_OK) return st;
                    } else if (h->v.op == EQ_OP_FLATTEN) {
                        eq_flatten(&h->v, ib, ob);
                    } else {
                        eq_pool(&h->v, ib, ob);
                    }
                }
            }
            stride = os;
            cur ^= 1u;
        }
        for (b = 0; b < nimg; ++b)
            eq_scores(m, &p->layers[p->n_layers - 1u].v, ws->act[cur] + (size_t)b * stride,
                      scores + (size_t)(b0 + b) * m->n_classes, cls ? cls + b0 + b : NULL);
    }
    return EQ_OK;
}

typedef struct {
    const eq_host_plan_t *p;
    const uint8_t *px;
    uint32_t i0, i1;
    int32_t *scores;
    uint32_t *cls;
    int32_t u8_kind;
    uint32_t wire;
    int first;
    eq_status_t st;
} eq_job_t;

static void *eq_job(void *arg)
{
    eq_job_t *j = (eq_job_t *)arg;
    eq_host_plan_t *p = (eq_host_plan_t *)(uintptr_t)j->p; /* only its cache is written */
    const size_t act = (size_t)p->chunk * p->m->max_act;
    const size_t accb = ((p->accbuf > p->m->acc_row ? p->accbuf : p->m->acc_row) + 7u) & ~(size_t)7u;
    const size_t rowb = (p->rowbuf + 63u) & ~(size_t)63u;
    const size_t need = p->per_image ? (size_t)p->m->arena_need + 8u
                                     : 3u * act + rowb + accb + 4u * EQ_MAX_MB;
    uint8_t *mem = NULL;
    int cached = 0;
    eq_ws_t ws;
    /* the first thread reuses the plan's buffers when no other call holds them (no malloc and
     * no page faults per call for small batches); others get their own */
    if (j->first && pthread_mutex_trylock(&p->lock) == 0) {
        cached = 1;
        if (p->cache_size < need) {
            free(p->cache);
            p->cache = (uint8_t *)malloc(need);
            p->cache_size = p->cache ? need : 0u;
        }
        mem = p->cache;
    }
    if (!mem) mem = (uint8_t *)malloc(need);
    if (!mem) {
        j->st = EQ_ERR_ARENA;
    } else if (p->per_image) { /* malloc: aligned for any type, 8 at least */
        memset(&ws, 0, sizeof ws);
        ws.act[0] = mem;
        j->st = eq_run_range(p, j->px, j->wire, j->i0, j->i1, j->scores, j->cls, j->u8_kind, &ws);
    } else {
        /* act is a multiple of 8 (max_act is), rowb of 64, accb of 8: all 8-byte aligned */
        ws.act[0] = mem;
        ws.act[1] = mem + act;
        ws.rows = mem + 2u * act;
        ws.acc = (int32_t *)(void *)(mem + 2u * act + rowb);
        ws.cls = (uint32_t *)(void *)(mem + 2u * act + rowb + accb);
        ws.mapped = mem + 2u * act + rowb + accb + 4u * EQ_MAX_MB;
        j->st = eq_run_range(p, j->px, j->wire, j->i0, j->i1, j->scores, j->cls, j->u8_kind, &ws);
    }
    if (cached)
        pthread_mutex_unlock(&p->lock);
    else
        free(mem);
    return NULL;
}

eq_status_t eq_host_run_batch(const eq_host_plan_t *p, const uint8_t *pixels, uint32_t n_images,
                              uint32_t n_threads, int32_t *scores, uint32_t *cls)
{
    return eq_host_run_batch_ex(p, pixels, EQ_INPUT_PIXELS, n_images, n_threads, scores, cls);
}

eq_status_t eq_host_run_batch_ex(const eq_host_plan_t *p, const uint8_t *input,
                                 uint32_t input_kind, uint32_t n_images, uint32_t n_threads,
                                 int32_t *scores, uint32_t *cls)
{
    eq_job_t jobs[EQ_HOST_MAX_THREADS];
    pthread_t tid[EQ_HOST_MAX_THREADS];
    int started[EQ_HOST_MAX_THREADS];
    uint32_t t, per, nt;
    int32_t kind;
    eq_status_t st = EQ_OK;
    if (!p || (n_images && (!input || !scores))) return EQ_ERR_ARG;
    if (input_kind != EQ_INPUT_PIXELS && input_kind != EQ_INPUT_WIRE) return EQ_ERR_ARG;
    if (!n_images) return EQ_OK;
    (void)eq_host_get_variant(); /* resolve the variant before any thread reads it */
    kind = eq_host_u8_kind();
    nt = n_threads < 1u ? 1u : n_threads > EQ_HOST_MAX_THREADS ? EQ_HOST_MAX_THREADS : n_threads;
    if (nt > n_images) nt = n_images;
    per = (n_images + nt - 1u) / nt;
    for (t = 0; t < nt; ++t) {
        jobs[t].p = p;
        jobs[t].px = input;
        jobs[t].wire = input_kind == EQ_INPUT_WIRE;
        jobs[t].i0 = t * per < n_images ? t * per : n_images;
        jobs[t].i1 = (t + 1u) * per < n_images ? (t + 1u) * per : n_images;
        jobs[t].scores = scores;
        jobs[t].cls = cls;
        jobs[t].u8_kind = kind;
        jobs[t].st = EQ_OK;
        jobs[t].first = t == 0;
        started[t] = 0;
    }
    for (t = 1; t < nt; ++t) started[t] = pthread_create(&tid[t], NULL, eq_job, &jobs[t]) == 0;
    eq_job(&jobs[0]);
    for (t = 1; t < nt; ++t) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            eq_job(&jobs[t]); /* no thread: run its share here */
    }
    for (t = 0; t < nt; ++t)
        if (jobs[t].st != EQ_OK && st == EQ_OK) st = jobs[t].st;
    return st;
}
