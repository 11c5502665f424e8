/* eq_bitdot_dsp: the B1 popcount inner loop in Thumb-2 + DSP assembly (Cortex-M4/M7/M33/M55
 * with __ARM_FEATURE_DSP). Elsewhere (the host, Cortex-M3) this file is empty and the portable
 * C path of eq_bitdot.h runs; both compute plain popcounts, so results are identical.
 *
 * eq_b1_rows_dsp(patch, w, groups, job): for j < job->nch (job->by3: groups % 3 == 0),
 *   pc_j = popcount of patch[i] ^ w_j[i] over i < 3 * groups, w_j = w + j * (3 * groups) words
 *          + j * job->extra bytes (extra = 4 * the row's words past the groups, skipped);
 *   job->out[j] = job->nbits - 2 * (pc_j - job->corr[j])   (uint32 arithmetic)
 * groups >= 1, nch >= 1. Per group of three words: two LDMs, three EORs, a carry-save adder
 * (s + 2c = x0 + x1 + x2, 5 ops), SWAR to 4-bit counts of s and c (5 ops each), n = s + 2c
 * (<= 12 a nibble), and two USADA8 byte sums: A += bytes of n (16 * high + low nibbles),
 * B += bytes of n & 0x0F0F0F0F (low nibbles); the popcount is B + (A - B) / 16.
 * 24 instructions per 96 bits plus the loop branch (unrolled three times when groups % 3 == 0),
 * everything in registers (r0-r12, lr); the per-channel bookkeeping lives on the stack.
 */
#include "eq_bitdot.h"

#if defined(EQ_HAVE_DSP) && defined(__thumb2__)
#define EQ_GROUP \
    "    ldm r0!, {r3, r4, r5}\n" \
    "    ldm r1!, {r6, r7, r8}\n" \
    "    eor r3, r3, r6\n" \
    "    eor r4, r4, r7\n" \
    "    eor r5, r5, r8\n" \
    "    eor r6, r3, r4\n"            /* u = x0 ^ x1 */ \
    "    and r3, r3, r4\n" \
    "    and r4, r6, r5\n" \
    "    eor r6, r6, r5\n"            /* s = u ^ x2 */ \
    "    orr r3, r3, r4\n"            /* c = x0 & x1 | u & x2 */ \
    "    and r7, r11, r6, lsr #1\n" \
    "    sub r6, r6, r7\n" \
    "    and r7, r12, r6, lsr #2\n" \
    "    and r6, r6, r12\n" \
    "    add r6, r6, r7\n"            /* s: 4-bit counts */ \
    "    and r7, r11, r3, lsr #1\n" \
    "    sub r3, r3, r7\n" \
    "    and r7, r12, r3, lsr #2\n" \
    "    and r3, r3, r12\n" \
    "    add r3, r3, r7\n"            /* c: 4-bit counts */ \
    "    add r6, r6, r3, lsl #1\n"    /* n = s + 2c, <= 12 a nibble */ \
    "    and r7, r6, #0x0F0F0F0F\n" \
    "    usada8 r9, r6, lr, r9\n" \
    "    usada8 r10, r7, lr, r10\n" \

/* channel done: out[j] = nbits - 2 * (pc - corr[j]), next weight row; Z set when none left */
#define EQ_CHANNEL_DONE \
    "    sub r3, r9, r10\n" \
    "    add r3, r10, r3, lsr #4\n" \
    "    ldrd r4, r5, [sp, #16]\n" \
    "    ldr r6, [r4], #4\n" \
    "    sub r3, r3, r6\n" \
    "    ldr r6, [sp, #12]\n" \
    "    sub r3, r6, r3, lsl #1\n" \
    "    str r3, [r5], #4\n" \
    "    strd r4, r5, [sp, #16]\n" \
    "    ldrd r4, r6, [sp, #4]\n" \
    "    add r1, r1, r6\n" \
    "    subs r4, r4, #1\n" \
    "    str r4, [sp, #4]\n"

__asm__(
    "    .syntax unified\n"
    "    .thumb\n"
    "    .text\n"
    "    .align 2\n"
    "    .global eq_b1_rows_dsp\n"
    "    .thumb_func\n"
    "    .type eq_b1_rows_dsp, %function\n"
    "eq_b1_rows_dsp:\n"
    "    push {r4-r11, lr}\n"
    "    sub sp, sp, #24\n"
    "    str r0, [sp, #0]\n"          /* patch base */
    "    ldm r3, {r4, r5, r6, r7, r8, r9}\n" /* nch, extra, nbits, corr, out, by3 */
    "    add r10, sp, #4\n"
    "    stm r10, {r4, r5, r6, r7, r8}\n" /* [sp+4] nch [+8] extra [+12] nbits [+16] corr [+20] out */
    "    mov r11, #0x55555555\n"
    "    mov r12, #0x33333333\n"
    "    mov lr, #0\n"
    "    add r2, r2, r2, lsl #1\n"
    "    add r2, r0, r2, lsl #2\n"    /* end of the patch groups */
    "    cmp r9, #0\n"
    "    beq 5f\n"
    "1:\n"                            /* groups % 3 == 0: three groups an iteration */
    "    ldr r0, [sp, #0]\n"
    "    mov r9, #0\n"
    "    mov r10, #0\n"
    "2:\n"
    EQ_GROUP EQ_GROUP EQ_GROUP
    "    cmp r0, r2\n"
    "    bne 2b\n"
    EQ_CHANNEL_DONE
    "    bne 1b\n"
    "    b 8f\n"
    "5:\n"                            /* one group an iteration */
    "    ldr r0, [sp, #0]\n"
    "    mov r9, #0\n"
    "    mov r10, #0\n"
    "6:\n"
    EQ_GROUP
    "    cmp r0, r2\n"
    "    bne 6b\n"
    EQ_CHANNEL_DONE
    "    bne 5b\n"
    "8:\n"
    "    add sp, sp, #24\n"
    "    pop {r4-r11, pc}\n"
    "    .size eq_b1_rows_dsp, . - eq_b1_rows_dsp\n");
#else
typedef int eq_bitdot_dsp_unused; /* ISO C: a translation unit is not empty */
#endif
