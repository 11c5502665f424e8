/* Plain driver for the sanitizer builds (gcc or clang, no libFuzzer needed):
 *   load_run [--fill BYTE] BLOB...  -> one line per blob: "<status> <name>"; exit 0
 * --fill: every input byte (pixels and wire) takes BYTE instead of values derived from the blob
 * Each blob goes through tests/c/blob_harness.h (load, then run from pixels, wire and one layer).
 * Built with -fsanitize=address,undefined -fno-sanitize-recover=all by tests/test_c_strict.py:
 * an out-of-bounds access or UB aborts instead of printing. */
#include <stdio.h>

#include "blob_harness.h"

int main(int argc, char **argv)
{
    int i;
    eq_harness_cap = (size_t)64u << 20;
    for (i = 1; i < argc; i++) {
        FILE *f;
        long n;
        uint8_t *buf;
        if (strcmp(argv[i], "--fill") == 0 && i + 1 < argc) {
            eq_harness_fill_byte = atoi(argv[++i]) & 255;
            continue;
        }
        f = fopen(argv[i], "rb");
        if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
            fprintf(stderr, "cannot read %s\n", argv[i]);
            return 2;
        }
        buf = (uint8_t *)eq_harness_alloc((size_t)n);
        if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
            fprintf(stderr, "cannot read %s\n", argv[i]);
            return 2;
        }
        fclose(f);
        printf("%d %s\n", (int)eq_harness_one(buf, (size_t)n), argv[i]);
        fflush(stdout);
        free(buf);
    }
    return 0;
}
