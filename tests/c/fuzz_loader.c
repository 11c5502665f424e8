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

#include "blob_harness.h" /* eq_harness_reseal, eq_harness_one */

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

int main(int argc, char **argv)
{
    FILE *f;
    long n;
    uint8_t *orig;
    uint64_t *buf;
    uint32_t tries, t, accepted = 0, rejected = 0;
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
            eq_harness_reseal(b, len);
        }
        /* exact-size copy, load, then run from pixels, wire and one layer (blob_harness.h) */
        if (eq_harness_one(b, len) == EQ_OK) {
            accepted++;
        } else {
            rejected++;
        }
    }
    printf("tried %u accepted %u rejected %u\n", tries, accepted, rejected);
    free(orig);
    free(buf);
    return 0;
}
