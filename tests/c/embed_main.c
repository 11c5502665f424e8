/* Test main for docs/embedding.md's example (classify.c): classifies EMBED_N images from
 * embed_inputs.h and prints "class score0 score1 ..." per image over Arm semihosting, then exits.
 * Linked with boards/common/cortexm/startup.c (vector table) and run on QEMU mps2-an386
 * (tests/test_embedding.py). */
#include <stdint.h>

#include "eq_runtime.h"
#include "embed_inputs.h" /* EMBED_N, EMBED_PIXELS, embed_inputs[EMBED_N][EMBED_PIXELS] */

eq_status_t classifier_init(void);
int classify(const uint8_t *pixels, const int32_t **out);

static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static char line[16 * 64];
static uint32_t pos;

static void put_int(int32_t v)
{
    char tmp[12];
    uint32_t u = v < 0 ? 0u - (uint32_t)v : (uint32_t)v, n = 0;
    if (v < 0)
        line[pos++] = '-';
    do {
        tmp[n++] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u);
    while (n)
        line[pos++] = tmp[--n];
}

static void flush(void)
{
    line[pos++] = '\n';
    line[pos] = 0;
    semihost(0x04, line); /* SYS_WRITE0 */
    pos = 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    eq_status_t st = classifier_init();
    if (st != EQ_OK) {
        put_int(-(int32_t)st);
        flush();
    } else {
        for (uint32_t i = 0; i < EMBED_N; i++) {
            const int32_t *scores = 0;
            int cls = classify(embed_inputs[i], &scores);
            put_int(cls);
            for (uint32_t k = 0; cls >= 0 && k < EMBED_N_CLASSES && pos < sizeof line - 16; k++) {
                line[pos++] = ' ';
                put_int(scores[k]);
            }
            flush();
        }
    }
    semihost(0x18, (const void *)0x20026); /* SYS_EXIT, ADP_Stopped_ApplicationExit */
    for (;;) {
    }
}
