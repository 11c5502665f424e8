/* Feeds the C blob loader (and, when it accepts, the executor) with mutated blobs.
 * Built with -fsanitize=address,undefined by tests/test_runtime.py: any out-of-bounds read,
 * overflow or UB aborts the run.
 *   fuzz_loader BLOB N SEED  -> prints "tried T accepted A rejected R" and exits 0
 * Mutations: truncation, single bit flips, random byte runs, and the same with the CRC fixed up
 * afterwards (so structural validation, not only the CRC, is exercised).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eq_runtime.h"

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

static void fix_crc(uint8_t *b, uint32_t n)
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

int main(int argc, char **argv)
{
    FILE *f;
    long n;
    uint8_t *orig;
    uint64_t *buf;
    uint32_t tries, t, accepted = 0, rejected = 0;
    eq_model_t m;
    if (argc != 4) {
        fprintf(stderr, "usage: %s BLOB N SEED\n", argv[0]);
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (!f) {
        return 2;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    orig = malloc((size_t)n);
    buf = malloc((size_t)n + 8);
    if (!orig || !buf || fread(orig, 1, (size_t)n, f) != (size_t)n) {
        return 2;
    }
    fclose(f);
    tries = (uint32_t)strtoul(argv[2], NULL, 10);
    rng_state = strtoull(argv[3], NULL, 10);
    for (t = 0; t < tries; t++) {
        uint32_t len = (uint32_t)n, kind = t % 4u, i, k;
        uint8_t *b = (uint8_t *)buf;
        memcpy(b, orig, (size_t)n);
        if (kind == 0u) {
            len = rnd() % (uint32_t)n; /* truncated */
        } else if (kind == 1u) {
            i = rnd() % (uint32_t)n;
            b[i] ^= (uint8_t)(1u << (rnd() % 8u)); /* one flipped bit, CRC left alone */
        } else {
            k = 1u + rnd() % 4u;
            while (k--) { /* random bytes, then a valid CRC: exercises structural checks */
                i = rnd() % (uint32_t)n;
                b[i] = (kind == 2u) ? (uint8_t)rnd() : (uint8_t)(b[i] ^ (1u << (rnd() % 8u)));
            }
            fix_crc(b, len);
        }
        /* the loader reads only `len` bytes: hand it an exact-size heap copy so ASan sees overruns */
        {
            uint8_t *exact;
            uint64_t *al = malloc(((size_t)len + 7u) & ~(size_t)7u ? (((size_t)len + 7u) & ~(size_t)7u) : 8u);
            if (!al) {
                return 2;
            }
            exact = (uint8_t *)al;
            memcpy(exact, b, len);
            if (eq_model_load(&m, exact, len) == EQ_OK) {
                static uint64_t arena[1u << 17];
                int32_t scores[65536];
                uint32_t cls, px;
                uint8_t *in = malloc(m.input_pixels ? m.input_pixels : 1u);
                accepted++;
                if (!in) {
                    return 2;
                }
                for (px = 0; px < m.input_pixels; px++) {
                    in[px] = (uint8_t)rnd();
                }
                if (m.arena_need <= sizeof(arena)) {
                    (void)eq_model_run(&m, in, m.input_pixels, EQ_INPUT_PIXELS, (uint8_t *)arena,
                                       (uint32_t)sizeof(arena), scores, 65536u, &cls, NULL, 0, NULL, 0);
                }
                free(in);
            } else {
                rejected++;
            }
            free(al);
        }
    }
    printf("tried %u accepted %u rejected %u\n", tries, accepted, rejected);
    free(orig);
    free(buf);
    return 0;
}
