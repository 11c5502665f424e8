/* One blob through the C loader and, when it accepts, the executor: shared by the libFuzzer
 * target (fuzz_blob.c) and the plain sanitizer driver (load_run.c). Every buffer is malloc'ed at
 * its exact size so ASan sees any read past the blob, the input or the arena.
 *
 * eq_harness_one(data, size) returns the load status (EQ_OK when the model loaded and ran). It
 * runs the whole model from raw pixels and from the wire format, then the first layer alone with
 * act_out; inputs are derived from the blob bytes. Models needing more than eq_harness_cap bytes
 * of arena or input are loaded but not run (the fuzzer's memory limit). */
#ifndef EQ_BLOB_HARNESS_H
#define EQ_BLOB_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eq_runtime.h"

static size_t eq_harness_cap = (size_t)16u << 20;
static int eq_harness_fill_byte = -1; /* >= 0: every input byte takes this value */

/* set the header CRC to match the first total_size bytes (when they lie inside b[0..n)), so
 * that mutated blobs reach the structural checks instead of stopping at the CRC */
static inline void eq_harness_reseal(uint8_t *b, size_t n)
{
    static const uint8_t z[4] = {0, 0, 0, 0};
    uint32_t total, crc;
    if (n < EQ_HEADER_SIZE_BYTES) {
        return;
    }
    total = (uint32_t)b[EQ_HEADER_TOTAL_SIZE] | ((uint32_t)b[EQ_HEADER_TOTAL_SIZE + 1] << 8) |
            ((uint32_t)b[EQ_HEADER_TOTAL_SIZE + 2] << 16) | ((uint32_t)b[EQ_HEADER_TOTAL_SIZE + 3] << 24);
    if (total > n || total < EQ_HEADER_CRC32 + 4u) {
        return;
    }
    crc = eq_crc32(0, b, EQ_HEADER_CRC32);
    crc = eq_crc32(crc, z, 4);
    crc = eq_crc32(crc, b + EQ_HEADER_CRC32 + 4, total - EQ_HEADER_CRC32 - 4);
    memcpy(b + EQ_HEADER_CRC32, &crc, 4);
}

/* a model the loader accepted failed to run: a loader hole, reported like a crash */
static inline void eq_harness_hole(const char *what, eq_status_t r)
{
    fprintf(stderr, "eq_harness: loaded model failed (%s): status %d, %s\n", what, (int)r, eq_status_str(r));
    abort();
}

static inline void *eq_harness_alloc(size_t n) { return malloc(n ? n : 1u); }

static inline void eq_harness_fill(uint8_t *p, uint32_t n, const uint8_t *data, size_t size)
{
    uint32_t i, s = 2166136261u;
    if (eq_harness_fill_byte >= 0) {
        memset(p, eq_harness_fill_byte, n);
        return;
    }
    for (i = 0; i < n; i++) {
        s = (s ^ (size ? data[i % size] : 0u)) * 16777619u;
        p[i] = (uint8_t)(s >> 24);
    }
}

static inline eq_status_t eq_harness_one(const uint8_t *data, size_t size)
{
    eq_model_t m;
    eq_status_t st;
    uint64_t *al;
    uint8_t *blob;
    if (size > 0xffffffffu) {
        return EQ_ERR_ARG;
    }
    /* 8-byte aligned (malloc), exact size: one byte past `size` is outside the allocation */
    al = (uint64_t *)eq_harness_alloc(size);
    if (al == NULL) {
        abort();
    }
    blob = (uint8_t *)al;
    memcpy(blob, data, size);
    st = eq_model_load(&m, blob, (uint32_t)size);
    if (st == EQ_OK && m.arena_need <= eq_harness_cap && m.input_pixels <= eq_harness_cap) {
        uint8_t *arena = (uint8_t *)eq_harness_alloc(m.arena_need);
        uint8_t *px = (uint8_t *)eq_harness_alloc(m.input_pixels);
        uint8_t *wire = (uint8_t *)eq_harness_alloc(m.input_wire);
        int32_t *scores = (int32_t *)eq_harness_alloc((size_t)m.n_classes * 4u);
        uint32_t act = eq_model_act_bytes(&m, 0);
        eq_run_t run;
        uint8_t *act_out = (uint8_t *)eq_harness_alloc(act);
        eq_status_t r;
        if (!arena || !px || !wire || !scores || !act_out) {
            abort();
        }
        eq_harness_fill(px, m.input_pixels, data, size);
        eq_harness_fill(wire, m.input_wire, data + size / 2, size - size / 2);
        if (m.pre_mode == EQ_PRE_THRESH && m.input_pixels % 8u) {
            wire[m.input_wire - 1u] &= (uint8_t)((1u << (m.input_pixels % 8u)) - 1u);
        }
        /* a loaded model runs to completion: any error status here is a loader hole */
        memset(&run, 0, sizeof run);
        run.input = px;
        run.input_size = m.input_pixels;
        run.input_kind = EQ_INPUT_PIXELS;
        run.scores = scores;
        run.n_scores = m.n_classes;
        run.cls = m.n_classes; /* must be overwritten */
        r = eq_model_run(&m, arena, m.arena_need, &run);
        if (r != EQ_OK || run.cls >= m.n_classes) {
            eq_harness_hole("run from pixels", r);
        }
        run.input = wire;
        run.input_size = m.input_wire;
        run.input_kind = EQ_INPUT_WIRE;
        r = eq_model_run(&m, arena, m.arena_need, &run);
        if (r != EQ_OK) {
            eq_harness_hole("run from wire", r);
        }
        memset(&run, 0, sizeof run);
        run.input = px;
        run.input_size = m.input_pixels;
        run.input_kind = EQ_INPUT_PIXELS;
        run.n_run = 1;
        run.act_out = act_out;
        run.act_size = act;
        r = eq_model_run(&m, arena, m.arena_need, &run);
        if (r != EQ_OK) {
            eq_harness_hole("first layer", r);
        }
        free(arena);
        free(px);
        free(wire);
        free(scores);
        free(act_out);
    }
    free(al);
    return st;
}

#endif /* EQ_BLOB_HARNESS_H */
