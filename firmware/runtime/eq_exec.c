/* edgeq blob runtime, executor: runs a model that eq_model_load (eq_load.c) validated.
 * Semantics: docs/blob-format.md.
 */
#include "eq_rt_private.h"
#include "eq_conv_fast.h"

/* F32 weights: float accumulators in the int32 acc buffer (same size, 4-byte aligned) */
static eq_status_t run_conv_f32(const layer_t *L, const eq_conv_shape_t *s, const void *in,
                                const float *w, const float *thr, const uint8_t *aux, void *out,
                                float *acc)
{
    uint32_t oy, n_pix = L->out_w;
    for (oy = 0; oy < L->out_h; oy++) {
        eq_status_t st = eq_conv2d_row_f32(s, (uint8_t)L->in_enc, in, w, (uint16_t)oy, acc);
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

static eq_status_t run_conv(const eq_model_t *m, const layer_t *L, const void *in, void *out,
                            int32_t *acc)
{
    tensor_t wt, thr, aux;
    eq_conv_shape_t s;
    eq_weights_t wd;
    uint32_t oy, n_pix = L->out_w;
    eq_status_t st;
    (void)eq_rt_tensor(m, L->t_weight, &wt); /* validated at load */
    (void)eq_rt_tensor(m, L->t_thr, &thr);
    (void)eq_rt_tensor(m, L->t_aux, &aux);
    s.in_h = (uint16_t)L->in_h;
    s.in_w = (uint16_t)L->in_w;
    s.in_c = (uint16_t)L->in_c;
    s.out_h = (uint16_t)L->out_h;
    s.out_w = (uint16_t)L->out_w;
    s.out_c = (uint16_t)L->out_c;
    s.kh = (uint8_t)L->kh;
    s.kw = (uint8_t)L->kw;
    s.stride = (uint8_t)L->stride;
    s.pad = (uint8_t)L->pad;
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
    if (L->w_enc == EQ_ENC_F32) {
        return run_conv_f32(L, &s, in, (const float *)(const void *)wt.data,
                            (const float *)(const void *)thr.data, aux.data, out, (float *)(void *)acc);
    }
    {
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
        st = eq_conv_fast(&job);
        if (st != EQ_ERR_UNSUPPORTED) {
            return st;
        }
    }
    for (oy = 0; oy < L->out_h; oy++) {
        st = eq_conv2d_row(&s, (uint8_t)L->in_enc, in, &wd, (uint16_t)oy, acc);
        if (st != EQ_OK) {
            return st;
        }
        if (L->out_stage == EQ_OUT_SIGN) {
            uint32_t *o = (uint32_t *)out + (size_t)oy * n_pix * EQ_WORDS(L->out_c);
            eq_threshold_sign_b1(acc, n_pix, s.out_c, (const int32_t *)(const void *)thr.data,
                                 aux.data, o);
        } else if (L->out_stage == EQ_OUT_MULTI) {
            uint8_t *o = (uint8_t *)out + (size_t)oy * n_pix * L->out_c;
            eq_threshold_multi_u8(acc, n_pix, s.out_c, (const int32_t *)(const void *)thr.data,
                                  (uint16_t)((1u << L->out_bits) - 1u), aux.data, o);
        } else {
            int32_t *o = (int32_t *)out + (size_t)oy * n_pix * L->out_c;
            eq_affine_i32(acc, n_pix, s.out_c, (const int32_t *)(const void *)thr.data,
                          (const int32_t *)(const void *)aux.data, (uint8_t)L->shift, o);
        }
    }
    return EQ_OK;
}

/* (H, W, C) -> (1, 1, H*W*C): B1 bits lose their per-pixel word padding; U8/I32 are already flat */
static void run_flatten(const layer_t *L, const void *in, void *out)
{
    uint32_t n_pix = L->in_h * L->in_w, c = L->in_c;
    if (L->in_enc == EQ_ENC_B1) {
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

static void run_pool(const layer_t *L, const void *in, void *out)
{
    uint16_t h = (uint16_t)L->in_h, w = (uint16_t)L->in_w, c = (uint16_t)L->in_c;
    uint8_t k = (uint8_t)L->kh, s = (uint8_t)L->stride;
    if (L->in_enc == EQ_ENC_B1) {
        eq_maxpool_b1((const uint32_t *)in, h, w, c, k, s, (uint32_t *)out);
    } else if (L->in_enc == EQ_ENC_U8) {
        eq_maxpool_u8((const uint8_t *)in, h, w, c, k, s, (uint8_t *)out);
    } else {
        eq_maxpool_i32((const int32_t *)in, h, w, c, k, s, (int32_t *)out);
    }
}

eq_status_t eq_model_run(const eq_model_t *m, const uint8_t *input, uint32_t input_size,
                         uint32_t input_kind, uint8_t *arena, uint32_t arena_size,
                         int32_t *scores, uint32_t n_scores, uint32_t *cls,
                         eq_profile_t *prof, uint32_t n_run, uint8_t *act_out, uint32_t act_size)
{
    uint8_t *cur, *nxt, *tmp;
    int32_t *acc;
    uint32_t i, t0 = 0, t_start = 0, last_enc;
    layer_t L;
    eq_status_t st;

    CHECK(m != NULL && m->blob != NULL && input != NULL && arena != NULL, EQ_ERR_ARG);
    CHECK(((uintptr_t)arena & 7u) == 0u, EQ_ERR_ARG);
    CHECK(arena_size >= m->arena_need, EQ_ERR_ARENA);
    CHECK(n_run <= m->n_layers, EQ_ERR_ARG);
    if (n_run == 0u) {
        n_run = m->n_layers;
        CHECK(scores != NULL && n_scores >= m->n_classes, EQ_ERR_ARG);
    }
    if (act_out != NULL) {
        CHECK(act_size >= eq_model_act_bytes(m, n_run - 1u), EQ_ERR_ARG);
    } else {
        CHECK(n_run == m->n_layers, EQ_ERR_ARG);
    }
    if (prof != NULL && prof->now != NULL) {
        CHECK(prof->ticks != NULL && prof->n_ticks >= m->n_layers, EQ_ERR_ARG);
        t_start = prof->now(prof->ctx);
    }
    cur = arena;
    nxt = arena + m->max_act;
    acc = (int32_t *)(void *)(arena + 2u * m->max_act);

    if (input_kind == EQ_INPUT_PIXELS) {
        CHECK(input_size == m->input_pixels, EQ_ERR_INPUT);
        if (m->pre_mode == EQ_PRE_THRESH) {
            eq_pack_threshold_chw_b1(input, m->in_c, m->in_h, m->in_w, m->pre_param, (uint32_t *)(void *)cur);
        } else {
            eq_quant_chw_u8(input, m->in_c, m->in_h, m->in_w,
                            m->pre_mode == EQ_PRE_RAW ? 8u : m->pre_param, cur);
        }
    } else if (input_kind == EQ_INPUT_WIRE) {
        CHECK(input_size == m->input_wire, EQ_ERR_INPUT);
        if (m->pre_mode == EQ_PRE_THRESH) {
            eq_unpack_wire_chw_b1(input, m->in_c, m->in_h, m->in_w, (uint32_t *)(void *)cur);
        } else {
            eq_quant_chw_u8(input, m->in_c, m->in_h, m->in_w,
                            m->pre_mode == EQ_PRE_RAW ? 8u : m->pre_param, cur);
        }
    } else {
        return EQ_ERR_ARG;
    }

    last_enc = EQ_ENC_B1;
    for (i = 0; i < n_run; i++) {
        if (prof != NULL && prof->now != NULL) {
            t0 = prof->now(prof->ctx);
        }
        eq_rt_layer(m, i, &L);
        if (L.op == EQ_OP_CONV) {
            st = run_conv(m, &L, cur, nxt, acc);
            if (st != EQ_OK) {
                return st;
            }
        } else if (L.op == EQ_OP_FLATTEN) {
            run_flatten(&L, cur, nxt);
        } else {
            run_pool(&L, cur, nxt);
        }
        if (prof != NULL && prof->now != NULL) {
            prof->ticks[i] = prof->now(prof->ctx) - t0;
        }
        last_enc = L.out_enc;
        tmp = cur;
        cur = nxt;
        nxt = tmp;
    }

    if (act_out != NULL) {
        memcpy(act_out, cur, eq_model_act_bytes(m, n_run - 1u));
    }
    if (n_run == m->n_layers && scores != NULL && n_scores >= m->n_classes) {
        uint32_t n = m->n_classes;
        if (last_enc == EQ_ENC_I32) {
            memcpy(scores, cur, (size_t)n * 4u);
        } else if (last_enc == EQ_ENC_U8) {
            for (i = 0; i < n; i++) {
                scores[i] = cur[i];
            }
        } else {
            /* B1 scores: the last layer's channels per pixel, padded to words */
            const uint32_t *wd = (const uint32_t *)(const void *)cur;
            uint32_t cw = EQ_WORDS(L.out_c), p, ch;
            for (i = 0; i < n; i++) {
                p = i / L.out_c;
                ch = i % L.out_c;
                scores[i] = ((wd[p * cw + ch / 32u] >> (ch % 32u)) & 1u) ? 1 : -1;
            }
        }
        if (cls != NULL) {
            *cls = eq_argmax_i32(scores, n);
        }
    }
    if (prof != NULL && prof->now != NULL) {
        prof->total = prof->now(prof->ctx) - t_start;
    }
    return EQ_OK;
}
