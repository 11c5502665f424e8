/* eq_bitdot_dsp: the B1 and TERN popcount inner loops in Thumb-2 + DSP assembly (Cortex-M4/M7/M33/M55
 * with __ARM_FEATURE_DSP). Elsewhere (the host, Cortex-M3) this file is empty and the portable
 * C path of eq_bitdot.h runs; both compute plain popcounts, so results are identical.
 *
 * eq_b1_rows_dsp(patch, w, groups, job): for j < job->nch (job->by3: 1 when groups % 3 == 0 and
 * no words past the groups, 2 when exactly two groups and no words past them, else 0),
 *   pc_j = popcount of patch[i] ^ w_j[i] over i < 3 * groups + extra / 4 (extra = 4 * the
 *          0-2 words past the whole groups), w_j = w + j * (3 * groups + extra / 4) words;
 *   job->out[j] = job->base[j] - 2 * pc_j   (uint32 arithmetic)
 * groups >= 1, nch >= 1. Per group of three words: two LDMs, three EORs, a carry-save adder
 * (s + 2c = x0 + x1 + x2, 5 ops), SWAR to 4-bit counts of s and c (5 ops each, the masks as
 * Thumb-2 immediates: x - ((x & 0xAA..) >> 1), (x & 0x33..) + ((x & 0xCC..) >> 2)), n = s + 2c
 * (<= 12 a nibble), and two USADA8 byte sums: A += bytes of n (16 * high + low nibbles),
 * B += bytes of n & 0x0F0F0F0F (low nibbles); the popcount is B + (A - B) / 16, so
 * out = base - 2 * B - (A - B) / 8. 24 instructions per 96 bits, the first group of a channel
 * starting the sums; everything in registers (r0-r12, lr = 0), 9 more a channel.
 */
#include "eq_bitdot.h"

#if defined(EQ_HAVE_DSP) && defined(__thumb2__)
/* the count of one group, x0..x2 in r3..r5: carry-save adder, 4-bit counts of s and c, the two
 * byte sums into r9 (A) and r10 (B) added to A0 and B0 ("lr" = 0 starts a channel) */
#define EQ_COUNT(A0, B0) \
    "    eor r6, r3, r4\n"            /* u = x0 ^ x1 */ \
    "    and r3, r3, r4\n" \
    "    and r4, r6, r5\n" \
    "    eor r6, r6, r5\n"            /* s = u ^ x2 */ \
    "    orr r3, r3, r4\n"            /* c = x0 & x1 | u & x2 */ \
    "    and r7, r6, #0xAAAAAAAA\n" \
    "    sub r6, r6, r7, lsr #1\n" \
    "    and r7, r6, #0xCCCCCCCC\n" \
    "    and r6, r6, #0x33333333\n" \
    "    add r6, r6, r7, lsr #2\n"    /* s: 4-bit counts */ \
    "    and r7, r3, #0xAAAAAAAA\n" \
    "    sub r3, r3, r7, lsr #1\n" \
    "    and r7, r3, #0xCCCCCCCC\n" \
    "    and r3, r3, #0x33333333\n" \
    "    add r3, r3, r7, lsr #2\n"    /* c: 4-bit counts */ \
    "    add r6, r6, r3, lsl #1\n"    /* n = s + 2c, <= 12 a nibble */ \
    "    and r7, r6, #0x0F0F0F0F\n" \
    "    usada8 r9, r6, lr, " A0 "\n" \
    "    usada8 r10, r7, lr, " B0 "\n"

/* three patch words (r0) OP three weight words (r1) -> x0..x2 */
#define EQ_LOAD(OP) \
    "    ldm r0!, {r3, r4, r5}\n" \
    "    ldm r1!, {r6, r7, r8}\n" \
    "    " OP " r3, r3, r6\n" \
    "    " OP " r4, r4, r7\n" \
    "    " OP " r5, r5, r8\n"

#define EQ_GROUP_FIRST EQ_LOAD("eor") EQ_COUNT("lr", "lr")
#define EQ_GROUP EQ_LOAD("eor") EQ_COUNT("r9", "r10")
/* a last group of the 1-2 words left (x1, x2 = 0 as needed), the loads done */
#define EQ_GROUP_TAIL EQ_COUNT("r9", "r10")

/* channel done: out[j] = base[j] - 2 * pc; Z set when it was the last channel */
#define EQ_CHANNEL_DONE \
    "    sub r3, r9, r10\n" \
    "    ldr r4, [r12], #4\n" \
    "    sub r4, r4, r10, lsl #1\n" \
    "    sub r4, r4, r3, lsr #3\n" \
    "    str r4, [r11], #4\n" \
    "    ldr r4, [sp, #4]\n" \
    "    cmp r11, r4\n"

/* one routine per combining op (OP "eor" or "and") and its group macros */
#define EQ_ROWS_ASM(NAME, GFIRST, G, OP) \
    "    .syntax unified\n" \
    "    .thumb\n" \
    "    .text\n" \
    "    .align 2\n" \
    "    .global " NAME "\n" \
    "    .thumb_func\n" \
    "    .type " NAME ", %function\n" \
    "" NAME ":\n" \
    "    push {r4-r11, lr}\n" \
    "    sub sp, sp, #16\n" \
    "    str r0, [sp, #0]\n"             /* [sp] patch base */ \
    "    ldm r3, {r4, r5, r6, r7, r8}\n" /* nch, extra, base, out, by3 */ \
    "    mov r12, r6\n" \
    "    mov r11, r7\n" \
    "    add r4, r7, r4, lsl #2\n" \
    "    str r4, [sp, #4]\n"             /* [sp+4] end of out */ \
    "    str r5, [sp, #8]\n"             /* [sp+8] extra */ \
    "    mov lr, #0\n" \
    "    add r2, r2, r2, lsl #1\n" \
    "    add r2, r0, r2, lsl #2\n"       /* end of the patch groups */ \
    "    cmp r8, #0\n" \
    "    beq 5f\n" \
    "    cmp r8, #2\n" \
    "    beq 9f\n" \
    "1:\n"                               /* by3: three groups an iteration */ \
    "    ldr r0, [sp, #0]\n" \
    GFIRST G G \
    "    cmp r0, r2\n" \
    "    beq 3f\n" \
    "2:\n" \
    G G G \
    "    cmp r0, r2\n" \
    "    bne 2b\n" \
    "3:\n" \
    EQ_CHANNEL_DONE \
    "    bne 1b\n" \
    "    b 8f\n" \
    "9:\n"                               /* by3 == 2: exactly two groups */ \
    "    ldr r0, [sp, #0]\n" \
    GFIRST G \
    EQ_CHANNEL_DONE \
    "    bne 9b\n" \
    "    b 8f\n" \
    "5:\n"                               /* one group an iteration, then the 0-2 words left */ \
    "    ldr r0, [sp, #0]\n" \
    GFIRST \
    "    cmp r0, r2\n" \
    "    beq 7f\n" \
    "6:\n" \
    G \
    "    cmp r0, r2\n" \
    "    bne 6b\n" \
    "7:\n" \
    "    ldr r5, [sp, #8]\n"             /* 4 * words left */ \
    "    cmp r5, #0\n" \
    "    beq 72f\n" \
    "    ldr r3, [r0]\n" \
    "    ldr r6, [r1], #4\n" \
    "    " OP " r3, r3, r6\n" \
    "    mov r4, #0\n" \
    "    cmp r5, #4\n" \
    "    beq 71f\n" \
    "    ldr r4, [r0, #4]\n" \
    "    ldr r7, [r1], #4\n" \
    "    " OP " r4, r4, r7\n" \
    "71:\n" \
    "    mov r5, #0\n" \
    EQ_GROUP_TAIL \
    "72:\n" \
    EQ_CHANNEL_DONE \
    "    bne 5b\n" \
    "8:\n" \
    "    add sp, sp, #16\n" \
    "    pop {r4-r11, pc}\n" \
    "    .size " NAME ", . - " NAME "\n"

__asm__(EQ_ROWS_ASM("eq_b1_rows_dsp", EQ_GROUP_FIRST, EQ_GROUP, "eor"));


/* ---- AND counting (bit planes of multi-bit activations on B1 weights) ----------------------
 * eq_b1and_rows_dsp: as eq_b1_rows_dsp with AND for XOR: out[j] = base[j] - 2 * popcount of
 * patch & w_j over the k words. */
#define EQ_AGROUP_FIRST EQ_LOAD("and") EQ_COUNT("lr", "lr")
#define EQ_AGROUP EQ_LOAD("and") EQ_COUNT("r9", "r10")

__asm__(EQ_ROWS_ASM("eq_b1and_rows_dsp", EQ_AGROUP_FIRST, EQ_AGROUP, "and"));

/* ---- TERN weights on B1 activations ---------------------------------------------------------
 * eq_tern_rows_dsp(patch, w, groups, job): for j < job->nch, rows of 2k words (k = 3 * groups +
 * job->extra / 4): the sign plane s_j = w + j * 2k, then the nonzero plane z_j = s_j + k;
 *   job->out[j] = job->base[j] - 2 * popcount of z_j[i] & (patch[i] ^ s_j[i]) over i < k.
 * job->kbytes = 4 * k. The same counting as above, with a third LDM and three ANDs a group
 * (27 instructions per 96 weights); the sign and nonzero rows advance in r1 and r11. */
/* patch ^ sign, & nonzero (r11) */
#define EQ_TLOAD \
    EQ_LOAD("eor") \
    "    ldm r11!, {r6, r7, r8}\n" \
    "    and r3, r3, r6\n" \
    "    and r4, r4, r7\n" \
    "    and r5, r5, r8\n"
#define EQ_TGROUP_FIRST EQ_TLOAD EQ_COUNT("lr", "lr")
#define EQ_TGROUP EQ_TLOAD EQ_COUNT("r9", "r10")

/* channel done: out[j] = base[j] - 2 * pc, next row (its sign plane follows this nonzero
 * plane); Z set when it was the last channel */
#define EQ_TCHANNEL_DONE \
    "    sub r3, r9, r10\n" \
    "    ldr r4, [r12], #4\n" \
    "    sub r4, r4, r10, lsl #1\n" \
    "    sub r4, r4, r3, lsr #3\n" \
    "    ldrd r5, r6, [sp, #4]\n" \
    "    str r4, [r6], #4\n" \
    "    str r6, [sp, #8]\n" \
    "    mov r1, r11\n" \
    "    ldr r4, [sp, #12]\n" \
    "    add r11, r1, r4\n" \
    "    cmp r6, r5\n"

__asm__(
    "    .syntax unified\n"
    "    .thumb\n"
    "    .text\n"
    "    .align 2\n"
    "    .global eq_tern_rows_dsp\n"
    "    .thumb_func\n"
    "    .type eq_tern_rows_dsp, %function\n"
    "eq_tern_rows_dsp:\n"
    "    push {r4-r11, lr}\n"
    "    sub sp, sp, #24\n"
    "    str r0, [sp, #0]\n"                  /* [sp] patch base */
    "    ldm r3, {r4, r5, r6, r7, r8, r9}\n"  /* nch, extra, base, out, by3, kbytes */
    "    mov r12, r6\n"
    "    str r7, [sp, #8]\n"                  /* [sp+8] out */
    "    add r4, r7, r4, lsl #2\n"
    "    str r4, [sp, #4]\n"                  /* [sp+4] end of out */
    "    str r9, [sp, #12]\n"                 /* [sp+12] 4 * k */
    "    str r5, [sp, #16]\n"                 /* [sp+16] extra */
    "    add r11, r1, r9\n"                   /* nonzero plane of the first row */
    "    mov lr, #0\n"
    "    add r2, r2, r2, lsl #1\n"
    "    add r2, r0, r2, lsl #2\n"
    "    cmp r8, #0\n"
    "    beq 5f\n"
    "1:\n"
    "    ldr r0, [sp, #0]\n"
    EQ_TGROUP_FIRST EQ_TGROUP EQ_TGROUP
    "    cmp r0, r2\n"
    "    beq 3f\n"
    "2:\n"
    EQ_TGROUP EQ_TGROUP EQ_TGROUP
    "    cmp r0, r2\n"
    "    bne 2b\n"
    "3:\n"
    EQ_TCHANNEL_DONE
    "    bne 1b\n"
    "    b 8f\n"
    "5:\n"
    "    ldr r0, [sp, #0]\n"
    EQ_TGROUP_FIRST
    "    cmp r0, r2\n"
    "    beq 7f\n"
    "6:\n"
    EQ_TGROUP
    "    cmp r0, r2\n"
    "    bne 6b\n"
    "7:\n"
    "    ldr r5, [sp, #16]\n"
    "    cmp r5, #0\n"
    "    beq 72f\n"
    "    ldr r3, [r0]\n"
    "    ldr r6, [r1], #4\n"
    "    eor r3, r3, r6\n"
    "    ldr r6, [r11], #4\n"
    "    and r3, r3, r6\n"
    "    mov r4, #0\n"
    "    cmp r5, #4\n"
    "    beq 71f\n"
    "    ldr r4, [r0, #4]\n"
    "    ldr r7, [r1], #4\n"
    "    eor r4, r4, r7\n"
    "    ldr r7, [r11], #4\n"
    "    and r4, r4, r7\n"
    "71:\n"
    "    mov r5, #0\n"
    EQ_GROUP_TAIL
    "72:\n"
    EQ_TCHANNEL_DONE
    "    bne 5b\n"
    "8:\n"
    "    add sp, sp, #24\n"
    "    pop {r4-r11, pc}\n"
    "    .size eq_tern_rows_dsp, . - eq_tern_rows_dsp\n");
#else
typedef int eq_bitdot_dsp_unused; /* ISO C: a translation unit is not empty */
#endif
