/* ASan/UBSan check of the host executor: for every variant this CPU runs, eq_host_run_batch on
 * random images (several thread counts) must equal eq_model_run image by image.
 * usage: host_exec_check BLOB N_IMAGES SEED  -> prints "variants N" and exits 0, 1 on mismatch */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eq_host_exec.h"

int main(int argc, char **argv)
{
    FILE *f;
    long size;
    uint64_t *blob;
    eq_model_t m;
    eq_host_plan_t *plan = NULL;
    uint32_t n, i, v, seed, ran = 0, nt;
    uint8_t *px, *arena;
    int32_t *ref, *got;
    uint32_t *cls;
    if (argc != 4) return 2;
    f = fopen(argv[1], "rb");
    if (!f) return 2;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    blob = (uint64_t *)malloc((size_t)size + 8u);
    if (!blob || fread(blob, 1, (size_t)size, f) != (size_t)size) return 2;
    fclose(f);
    if (eq_model_load(&m, (const uint8_t *)blob, (uint32_t)size) != EQ_OK) return 3;
    n = (uint32_t)atoi(argv[2]);
    seed = (uint32_t)atoi(argv[3]);
    px = (uint8_t *)malloc((size_t)n * m.input_pixels);
    arena = (uint8_t *)malloc(m.arena_need + 8u);
    ref = (int32_t *)malloc(4u * (size_t)n * m.n_classes);
    got = (int32_t *)malloc(4u * (size_t)n * m.n_classes);
    cls = (uint32_t *)malloc(4u * (size_t)n);
    for (i = 0; i < n * m.input_pixels; ++i) {
        seed = seed * 1664525u + 1013904223u;
        px[i] = (uint8_t)(seed >> 24);
    }
    for (i = 0; i < n; ++i)
    {
        eq_run_t run = {0};
        run.input_size = m.input_pixels;
        run.input_kind = EQ_INPUT_PIXELS;
        run.n_scores = m.n_classes;
        for (i = 0; i < n; ++i) {
            run.input = px + (size_t)i * m.input_pixels;
            run.scores = ref + (size_t)i * m.n_classes;
            if (eq_model_run(&m, arena, m.arena_need, &run) != EQ_OK)
                return 4;
        }
    }
    if (eq_host_plan_new(&m, &plan) != EQ_OK) return 5;
    for (v = 0; v < eq_host_variant_count(); ++v) {
        if (eq_host_set_variant((int32_t)v) != EQ_OK) continue;
        ++ran;
        for (nt = 1; nt <= 3; nt += 2) {
            memset(got, 0, 4u * (size_t)n * m.n_classes);
            if (eq_host_run_batch(plan, px, n, nt, got, cls) != EQ_OK) return 6;
            if (memcmp(got, ref, 4u * (size_t)n * m.n_classes) != 0) {
                fprintf(stderr, "variant %s, %u threads: scores differ\n", eq_host_variant_name(v), nt);
                return 1;
            }
        }
    }
    eq_host_set_variant(EQ_HOST_AUTO);
    eq_host_plan_free(plan);
    printf("variants %u\n", ran);
    free(blob);
    free(px);
    free(arena);
    free(ref);
    free(got);
    free(cls);
    return 0;
}
