/* eq_conv_b1_pair: B1 x B1 3x3 CONV layers on C <= 16 input channels (pad <= 1, any stride)
 * computed whole and fused with their SIGN or AFFINE output stage (eq_conv_fast.h). Bit-exact
 * with eq_conv2d_row plus the stage.
 *
 * Two output pixels a word, as in the row loop's pair path (eq_row_b1_b1_pair): per input row,
 * Q[x] = P[x - pad] | P[x - pad + stride] << 16 with P the row's C-bit fields (zero outside the
 * input), so the nine words of output pair (ox, ox + 1) are Q_ky[ox * stride + kx]; rows outside
 * the input are zero rows. Weights are masked to C bits and duplicated into both halves. A word
 * x = q ^ w counts in each half the taps of one pixel, and a pixel's popcount over its nine words
 * (pr <= 144) is reached without a popcount per word:
 *  - per kernel row r, the full adder of its three words x0, x1, x2 has carry
 *    c_r = ((x0 ^ x2) & (x1 ^ x2)) ^ x2 and sum s_r = x0 ^ x1 ^ x2. XOR is linear, so the
 *    XOR combinations q0 ^ q2, q1 ^ q2 of the activation words are formed once per pair (its
 *    13-word block) and those of the weights once per layer pass (13 words a channel): a carry
 *    is 3 XORs + AND + XOR, a sum is never formed;
 *  - the sums' own full adder (S = s0 ^ s1 ^ s2, carry c3) is the same on the row sums, and the
 *    carries' full adder gives T2 (weight 2) and f (weight 4):
 *        pr = |S| + 2 |c3| + 2 |T2| + 4 |f|      (|.| = popcount of a half)
 *  - 4-bit SWAR counts of the four words, nibble sums (<= 12), byte sums (<= 72), half sums.
 * SIGN: each output channel's threshold is folded, per border class of the pixel, into T' with
 * output bit = (pr >= T') XOR (not flip): the out-of-bounds taps read 0 and count popcount(w)
 * there (corr, per class), the valid taps count n_in * C, and acc = n_in * C - 2 (pr - corr).
 * The word (0x8000 - T'_A) | (0x8000 - T'_B) << 16 added to pr leaves the two compares in bits
 * 15 and 31, which are shifted into one word for 16 channels: 69.5 instructions a channel and
 * pixel pair in the Thumb-2 loop (LDM loads, no popcount or DSP instruction: Cortex-M3 too).
 * AFFINE: y = floor((K - pr * 2 mul) / 2^sh) with K = (n_in C + 2 corr) mul + add per border
 * class, in 32 bits without a 64-bit multiply: K = Kq 2^sh + Kr and 2 mul = Q 2^sh + R
 * (0 <= Kr, R < 2^sh) give y = Kq - pr Q + floor((Kr - pr R) / 2^sh), exact modulo 2^32 since
 * y fits (the layer is taken only where no channel saturates for |acc| <= 9C and sh <= 23);
 * with Kr' = Kr 2^(23 - sh), R' = R 2^(23 - sh) the last term is (Kr' - pr R') >> 23
 * (|Kr' - pr R'| < 145 * 2^23 < 2^31), a constant shift: 15 more instructions a channel and
 * pair. Elsewhere
 * EQ_ERR_UNSUPPORTED: the runtime's row loop and stage run.
 * The Thumb-2 loops run a whole output row (the pair's block, the channels, the read-out); the
 * C driver builds the pair rows (a ring of three), the weight blocks and the folded stage per
 * border class.
 *
 * Stack: one pass of 16 output channels (weight blocks, per-tap counts, folded thresholds or
 * AFFINE constants): about 2.0 KB with the Thumb-2 loop's frame (Cortex-M3 build: 1,884 + 36 +
 * 92 bytes; the row loop's eq_row_b1_b1_pair takes 2,076 + 36). Scratch: the ring (3 pair rows), a
 * byte per pixel pair and 64 bytes, taken only where it fits the layer's own accumulator row
 * (out_w * out_c int32), so the arena does not grow.
 */
#include <stddef.h>

#include "eq_conv_fast.h"

#define EQ_PB_G 16u   /* output channels a pass (one word of compares) */
#define EQ_PB_BW 13u  /* words of a pair's activation block and of a channel's weight block */
#define EQ_PB_NCC 3u  /* column border classes (pad <= 1: first column, inside, last) */
#define EQ_PB_NPC 4u  /* pixel-pair border classes (3 with pad <= 1) */

typedef struct {
    uint32_t nq;                        /* words of a pair row */
    uint32_t npair;                     /* output pixel pairs a row */
    uint32_t ncc, npc;                  /* column classes, pair classes */
    uint8_t clo[EQ_PB_NCC], chi[EQ_PB_NCC]; /* in-bounds kernel columns of a column class */
    uint8_t pa[EQ_PB_NPC], pb[EQ_PB_NPC];   /* column classes of a pair class's two pixels */
    uint32_t total;                     /* scratch bytes: ring (3 nq words), pair classes, dummy */
} eq_pb_plan_t;

/* in-bounds kernel range [lo, hi) of output position o (eq_conv2d_row's eq_range) */
static void eq_pb_range(uint32_t o, uint32_t stride, uint32_t pad, uint32_t n, uint32_t *lo,
                        uint32_t *hi)
{
    const int32_t i0 = (int32_t)(o * stride) - (int32_t)pad;
    int32_t a = i0 < 0 ? -i0 : 0, b = (int32_t)n - i0;
    if (b > 3) b = 3;
    if (b < a) b = a;
    *lo = (uint32_t)a;
    *hi = (uint32_t)b;
}

/* 0: not this path. pcls (may be NULL): per pixel pair, SIGN: its pair class; AFFINE: its two
 * column classes ca | cb << 4. The classes are runs (the ranges are monotone in the column). */
static int eq_pb_plan(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc, uint8_t stage,
                      uint8_t lflags, eq_pb_plan_t *p, uint8_t *pcls)
{
    uint32_t ox, ow2, ca = 0;
    uint64_t total;
    if (!s || in_enc != EQ_ENC_B1 || w_enc != EQ_ENC_B1 || lflags != 0u) return 0;
    if (stage != EQ_OUT_SIGN && stage != EQ_OUT_AFFINE) return 0;
    if (s->kh != 3u || s->kw != 3u || s->in_c < 1u || s->in_c > 16u || s->pad > 1u || !s->stride)
        return 0;
    if (eq_shape_stride_w(s) != s->stride || eq_shape_pad_w(s) != s->pad) return 0;
    if (!s->out_c || !s->out_w || !s->out_h || !s->in_w || !s->in_h) return 0;
    ow2 = ((uint32_t)s->out_w + 1u) & ~1u;
    p->nq = (ow2 - 2u) * s->stride + 3u;
    p->npair = ow2 / 2u;
    p->ncc = p->npc = 0;
    for (ox = 0; ox < ow2; ++ox) { /* column classes, then (at odd ox) the pair's class */
        uint32_t a, b, c = ca;
        if (ox < s->out_w) {
            eq_pb_range(ox, s->stride, s->pad, s->in_w, &a, &b);
            if (!p->ncc || p->clo[p->ncc - 1u] != a || p->chi[p->ncc - 1u] != b) {
                if (p->ncc == EQ_PB_NCC) return 0;
                p->clo[p->ncc] = (uint8_t)a;
                p->chi[p->ncc] = (uint8_t)b;
                ++p->ncc;
            }
            c = p->ncc - 1u;
        }
        if (!(ox & 1u)) {
            ca = c;
            continue;
        }
        if (!p->npc || p->pa[p->npc - 1u] != ca || p->pb[p->npc - 1u] != c) {
            if (p->npc == EQ_PB_NPC) return 0;
            p->pa[p->npc] = (uint8_t)ca;
            p->pb[p->npc] = (uint8_t)c;
            ++p->npc;
        }
        if (pcls) pcls[ox / 2u] = (uint8_t)(stage == EQ_OUT_SIGN ? p->npc - 1u : ca | c << 4);
    }
    total = 12u * (uint64_t)p->nq + ((p->npair + 7u) & ~7u) + 4u * EQ_PB_G; /* ring, classes, dummy */
    if (total > 4u * (uint64_t)s->out_w * s->out_c) return 0; /* inside the accumulator row */
    p->total = (uint32_t)total;
    return 1;
}

uint32_t eq_conv_b1_pair_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                                 uint8_t out_stage, uint8_t lflags)
{
    eq_pb_plan_t p;
    return eq_pb_plan(s, in_enc, w_enc, out_stage, lflags, &p, NULL) ? p.total : 0u;
}

/* ---- one output row ------------------------------------------------------------------------ */
/* What the row loops read (byte offsets fixed: the Thumb-2 loops address the fields). Per pixel
 * pair: the activation block from the three pair rows (q, advanced by step bytes), then each of
 * the pass's channels; SIGN: one word of compares for the 16 channels, read out to the two
 * pixels' outputs oa, ob (words, or the high halfwords); AFFINE: the nch outputs of each pixel.
 * oa and ob advance by ostep bytes a pair. */
typedef struct {
    const uint32_t *q[3];  /* 0: the pair's three row words */
    uint32_t step;         /* 12: bytes from pair to pair in a pair row (8 * stride) */
    const uint32_t *wb;    /* 16: the channels' weight blocks */
    const void *tab;       /* 20: SIGN: folded thresholds, EQ_PB_G words a pair class;
                                  AFFINE: [Kq, Kr] a channel, EQ_PB_G of them a column class */
    uintptr_t lim;         /* 24: SIGN: 1 << (nch - 1); AFFINE: the end of the weight blocks */
    const uint8_t *pcls;   /* 28: SIGN: the pair's class; AFFINE: its column classes ca | cb << 4 */
    uint8_t *oa, *ob;      /* 32, 36: the two pixels' outputs */
    uint32_t ostep;        /* 40 */
    uint32_t npair;        /* 44: pairs to do (>= 1) */
    uint32_t sha, shb, mask, xm, half; /* 48: SIGN read-out: first pixel ((acc >> sha) & mask) ^ xm,
                                          second (acc >> shb) ^ xm; half: store the high halfword */
    uint32_t *qr;          /* 68: AFFINE: [Q, R, pr] a channel */
    uint32_t nch;          /* 72 */
} eq_pb_row_t;

#define EQ_PB_MAXSH 23u /* AFFINE: |Kr' - pr R'| < 145 * 2^23 stays below 2^31 (the loop's ASR #23) */

/* where word i of a channel's weight block (rows 0..2 of three words, then the four sum words)
 * is stored at an odd channel position: sums, row 2, row 1, row 0 (the Thumb-2 loop reads every
 * second block backward); in order at even positions */
static const uint8_t eq_pb_odd[EQ_PB_BW] = {10, 11, 12, 7, 8, 9, 4, 5, 6, 0, 1, 2, 3};

#if defined(__thumb2__) && defined(__GNUC__)
/* Thumb-2 (Cortex-M3 and up; no DSP instruction). Channels go in twos: the first reads the
 * block forward (LDM, its rows then its sums), the second backward (its sums, then LDMDB of its
 * rows), so the block pointer returns without an instruction; the weight blocks at odd
 * positions are stored in that order (sums, row 2, row 1, row 0). A channel: 8 LDMs + 15 (three
 * row carries: three EORs, AND, EOR each) + 5 (the carries' full adder) + 6 (the sums' carry and
 * sum) + 20 (4-bit counts) + 11 (nibble, byte and half sums) + SIGN 4.5 (threshold, compare
 * bits, shift-in, a branch every second channel) or AFFINE 2 (store; compare and branch every
 * second) = 69.5 / 67 instructions for two output pixels (288 MACs). */
/* one row's carry: its words LOAD (ldm r0! / ldmdb r0!) against the next three weight words */
#define EQ_PB_ROW(LOAD, DST)                                                                     \
    "    " LOAD " r0!, {r4, r5, r6}\n"                                                        \
    "    ldm r1!, {r7, r8, r9}\n"                                                             \
    "    eor r4, r4, r7\n"                                                                    \
    "    eor r5, r5, r8\n"                                                                    \
    "    and r4, r4, r5\n"                                                                    \
    "    eor r6, r6, r9\n"                                                                    \
    "    eor " DST ", r4, r6\n"
/* the row sums' carry -> C3 and sum -> S (block words 9..12 at r0, not advanced; the weights'
 * four words into W0..W3, ascending registers) */
#define EQ_PB_SUMS(W0, W1, W2, W3, C3, S)                                                        \
    "    ldm r0, {r4, r5, r6, r7}\n"                                                          \
    "    ldm r1!, {" W0 ", " W1 ", " W2 ", " W3 "}\n"                                         \
    "    eor r4, r4, " W0 "\n"                                                                \
    "    eor r5, r5, " W1 "\n"                                                                \
    "    and r4, r4, r5\n"                                                                    \
    "    eor r6, r6, " W2 "\n"                                                                \
    "    eor " C3 ", r4, r6\n"                                                                \
    "    eor " S ", r7, " W3 "\n"
/* full adder of the carries A, B, C (T: a free register): A = weight 4, C = weight 2 */
#define EQ_PB_FA(A, B, C, T)                                                                     \
    "    eor " T ", " A ", " B "\n"                                                           \
    "    and " A ", " A ", " B "\n"                                                           \
    "    and " B ", " T ", " C "\n"                                                           \
    "    eor " C ", " T ", " C "\n"                                                           \
    "    orr " A ", " A ", " B "\n"
#define EQ_PB_NIB(R)                                                                             \
    "    and r5, " R ", #0xAAAAAAAA\n"                                                        \
    "    sub " R ", " R ", r5, lsr #1\n"                                                      \
    "    and r5, " R ", #0xCCCCCCCC\n"                                                        \
    "    and " R ", " R ", #0x33333333\n"                                                     \
    "    add " R ", " R ", r5, lsr #2\n"
/* the pair's popcounts |S| + 2|C3| + 2|T2| + 4|F| -> C3 (low half: first pixel); S destroyed */
#define EQ_PB_TAIL(S, C3, T2, F)                                                                 \
    EQ_PB_NIB(S) EQ_PB_NIB(C3) EQ_PB_NIB(T2) EQ_PB_NIB(F)                                      \
    "    add " S ", " S ", " C3 ", lsl #1\n"  /* nibbles <= 12 */                              \
    "    add " T2 ", " T2 ", " F ", lsl #1\n"                                                 \
    "    and " C3 ", " S ", #0x0F0F0F0F\n"    /* bytes <= 72 */                                \
    "    and " S ", " S ", #0xF0F0F0F0\n"                                                     \
    "    add " C3 ", " C3 ", " S ", lsr #4\n"                                                 \
    "    and " S ", " T2 ", #0x0F0F0F0F\n"                                                    \
    "    add " C3 ", " C3 ", " S ", lsl #1\n"                                                 \
    "    and " S ", " T2 ", #0xF0F0F0F0\n"                                                    \
    "    add " C3 ", " C3 ", " S ", lsr #3\n"                                                 \
    "    add " C3 ", " C3 ", " C3 ", lsr #8\n" /* halves <= 144 */                             \
    "    and " C3 ", " C3 ", #0x00FF00FF\n"
/* r0 = the block, r1 = the weight blocks (advanced): an even-position channel -> r4 (r0 ends
 * at block word 9), then an odd-position one -> r10 (r0 back at the block) */
#define EQ_PB_EVEN                                                                               \
    EQ_PB_ROW("ldm", "r10") EQ_PB_ROW("ldm", "r11") EQ_PB_ROW("ldm", "r12")                    \
    EQ_PB_FA("r10", "r11", "r12", "r4")                                                        \
    EQ_PB_SUMS("r8", "r9", "r11", "lr", "r4", "r7")                                            \
    EQ_PB_TAIL("r7", "r4", "r12", "r10")
#define EQ_PB_ODD                                                                                \
    EQ_PB_SUMS("r8", "r9", "r10", "r11", "r10", "r11")                                         \
    EQ_PB_ROW("ldmdb", "r12") EQ_PB_ROW("ldmdb", "lr") EQ_PB_ROW("ldmdb", "r4")                \
    EQ_PB_FA("r4", "lr", "r12", "r5")                                                          \
    EQ_PB_TAIL("r11", "r10", "r12", "r4")
/* r12 = the row context: the pair's activation block -> [sp, 52 bytes], q advanced
 * (per row: a ^ c, b ^ c, c and the sum a ^ b ^ c; then the sums' s0 ^ s2, s1 ^ s2, s2, all) */
#define EQ_PB_BLOCK                                                                              \
    "    ldm r12, {r4, r5, r6, r7}\n"                                                         \
    "    mov r0, sp\n"                                                                        \
    "    ldm r4, {r1, r2, r3}\n"                                                              \
    "    add r4, r4, r7\n"                                                                    \
    "    eor r1, r1, r3\n"                                                                    \
    "    eor r8, r1, r2\n"                                                                    \
    "    eor r2, r2, r3\n"                                                                    \
    "    stm r0!, {r1, r2, r3}\n"                                                             \
    "    ldm r5, {r1, r2, r3}\n"                                                              \
    "    add r5, r5, r7\n"                                                                    \
    "    eor r1, r1, r3\n"                                                                    \
    "    eor r9, r1, r2\n"                                                                    \
    "    eor r2, r2, r3\n"                                                                    \
    "    stm r0!, {r1, r2, r3}\n"                                                             \
    "    ldm r6, {r1, r2, r3}\n"                                                              \
    "    add r6, r6, r7\n"                                                                    \
    "    eor r1, r1, r3\n"                                                                    \
    "    eor r10, r1, r2\n"                                                                   \
    "    eor r2, r2, r3\n"                                                                    \
    "    stm r0!, {r1, r2, r3}\n"                                                             \
    "    stm r12, {r4, r5, r6}\n"                                                             \
    "    eor r1, r8, r10\n"                                                                   \
    "    eor r2, r9, r10\n"                                                                   \
    "    eor r11, r1, r9\n"                                                                   \
    "    stm r0, {r1, r2, r10, r11}\n"
/* the pixel pair's advance: r12 = the context */
#define EQ_PB_NEXT                                                                               \
    "    ldr r12, [sp, #52]\n"                                                                \
    "    add r12, r12, #32\n"                                                                 \
    "    ldm r12, {r4, r5, r6, r7}\n"                                                         \
    "    add r4, r4, r6\n"                                                                    \
    "    add r5, r5, r6\n"                                                                    \
    "    subs r7, r7, #1\n"                                                                   \
    "    stm r12, {r4, r5, r6, r7}\n"                                                         \
    "    bne 2b\n"                                                                            \
    "    add sp, sp, #56\n"                                                                   \
    "    pop {r4-r11, pc}\n"

__asm__(
    "    .syntax unified\n"
    "    .thumb\n"
    "    .text\n"
    "    .align 2\n"
    "    .global eq_pb_sign_row\n"
    "    .thumb_func\n"
    "    .type eq_pb_sign_row, %function\n"
    "eq_pb_sign_row:\n"
    "    push {r4-r11, lr}\n"
    "    sub sp, sp, #56\n"             /* the block (52 bytes), the context at [sp, #52] */
    "    str r0, [sp, #52]\n"
    "2:\n"
    "    ldr r12, [sp, #52]\n"
    EQ_PB_BLOCK
    "    add r12, r12, #16\n"
    "    ldm r12, {r1, r2, r3, r4}\n"   /* weight blocks, thresholds, sentinel, pair classes */
    "    ldrb r5, [r4], #1\n"
    "    str r4, [r12, #12]\n"
    "    add r2, r2, r5, lsl #6\n"      /* this pair class's thresholds */
    "    mov r0, sp\n"
    "1:\n"
    EQ_PB_EVEN
    "    ldr r5, [r2], #4\n"            /* (0x8000 - T'_a) | (0x8000 - T'_b) << 16 */
    "    add r4, r4, r5\n"
    "    and r4, r4, #0x80008000\n"     /* (pr >= T') of the two pixels */
    "    orr r3, r4, r3, lsr #1\n"
    EQ_PB_ODD
    "    ldr r5, [r2], #4\n"
    "    add r10, r10, r5\n"
    "    and r10, r10, #0x80008000\n"
    "    orrs r3, r10, r3, lsr #1\n"    /* C: the sentinel bit leaves after the last channel */
    "    bcc 1b\n"
    "    ldr r12, [sp, #52]\n"
    "    add r12, r12, #48\n"
    "    ldm r12, {r8, r9, r10, r11, lr}\n" /* sha, shb, mask, xm, half */
    "    ldr r4, [r12, #-16]\n"         /* oa */
    "    ldr r5, [r12, #-12]\n"         /* ob */
    "    lsr r1, r3, r8\n"
    "    and r1, r1, r10\n"
    "    eor r1, r1, r11\n"
    "    lsr r2, r3, r9\n"
    "    eor r2, r2, r11\n"
    "    cmp lr, #0\n"
    "    bne 3f\n"
    "    str r1, [r4]\n"
    "    str r2, [r5]\n"
    "    b 4f\n"
    "3:\n"
    "    strh r1, [r4]\n"
    "    strh r2, [r5]\n"
    "4:\n"
    EQ_PB_NEXT
    "    .size eq_pb_sign_row, .-eq_pb_sign_row\n"
    "    .align 2\n"
    "    .global eq_pb_affine_row\n"
    "    .thumb_func\n"
    "    .type eq_pb_affine_row, %function\n"
    "eq_pb_affine_row:\n"
    "    push {r4-r11, lr}\n"
    "    sub sp, sp, #56\n"
    "    str r0, [sp, #52]\n"
    "2:\n"
    "    ldr r12, [sp, #52]\n"
    EQ_PB_BLOCK
    "    ldr r1, [r12, #16]\n"          /* weight blocks */
    "    ldr r2, [r12, #24]\n"          /* their end */
    "    ldr r3, [r12, #68]\n"
    "    add r3, r3, #8\n"              /* the pr slots of [Q, R, pr] */
    "    mov r0, sp\n"
    "1:\n"
    EQ_PB_EVEN
    "    str r4, [r3], #12\n"
    EQ_PB_ODD
    "    str r10, [r3], #12\n"
    "    cmp r1, r2\n"
    "    bne 1b\n"
    "    ldr r12, [sp, #52]\n"
    "    ldr r0, [r12, #68]\n"          /* [Q, R, pr] */
    "    ldr r4, [r12, #28]\n"
    "    ldrb r5, [r4], #1\n"           /* column classes ca | cb << 4 */
    "    str r4, [r12, #28]\n"
    "    ldr r1, [r12, #20]\n"
    "    and r6, r5, #15\n"
    "    lsr r5, r5, #4\n"
    "    add r2, r1, r5, lsl #7\n"      /* [Kq, Kr] of the second pixel's class */
    "    add r1, r1, r6, lsl #7\n"      /* of the first's */
    "    ldr r3, [r12, #32]\n"          /* oa */
    "    ldr r10, [r12, #36]\n"         /* ob */
    "    ldr r12, [r12, #72]\n"         /* nch */
    "5:\n"                              /* y = Kq - p Q + ((Kr' - p R') >> 23) */
    "    ldm r0!, {r4, r5, r6}\n"
    "    ldm r1!, {r7, r8}\n"
    "    uxth r9, r6\n"
    "    mls r8, r9, r5, r8\n"
    "    mls r7, r9, r4, r7\n"
    "    add r7, r7, r8, asr #23\n"
    "    str r7, [r3], #4\n"
    "    ldm r2!, {r7, r8}\n"
    "    lsr r6, r6, #16\n"
    "    mls r8, r6, r5, r8\n"
    "    mls r7, r6, r4, r7\n"
    "    add r7, r7, r8, asr #23\n"
    "    str r7, [r10], #4\n"
    "    subs r12, r12, #1\n"
    "    bne 5b\n"
    EQ_PB_NEXT
    "    .size eq_pb_affine_row, .-eq_pb_affine_row\n");
#undef EQ_PB_ROW
#undef EQ_PB_SUMS
#undef EQ_PB_FA
#undef EQ_PB_NIB
#undef EQ_PB_TAIL
#undef EQ_PB_EVEN
#undef EQ_PB_ODD
#undef EQ_PB_BLOCK
#undef EQ_PB_NEXT
void eq_pb_sign_row(eq_pb_row_t *x);
void eq_pb_affine_row(eq_pb_row_t *x);
/* the loops address the context by these offsets */
typedef char eq_pb_row_layout[(offsetof(eq_pb_row_t, step) == 12 && offsetof(eq_pb_row_t, wb) == 16 &&
                               offsetof(eq_pb_row_t, lim) == 24 && offsetof(eq_pb_row_t, oa) == 32 &&
                               offsetof(eq_pb_row_t, npair) == 44 && offsetof(eq_pb_row_t, half) == 64 &&
                               offsetof(eq_pb_row_t, qr) == 68 && offsetof(eq_pb_row_t, nch) == 72) ? 1 : -1];
#define EQ_PB_SIGN_ROW eq_pb_sign_row
#define EQ_PB_AFFINE_ROW eq_pb_affine_row
#else
/* portable loops (the host's): the same arithmetic, popcounts by halves at the end */
/* activation block of the pair whose row words start at q0, q1, q2 */
static void eq_pb_block(const uint32_t *const *q, uint32_t *blk)
{
    uint32_t r, sr[3];
    for (r = 0; r < 3u; ++r) {
        const uint32_t a = q[r][0], b = q[r][1], c = q[r][2];
        blk[3u * r] = a ^ c;
        blk[3u * r + 1u] = b ^ c;
        blk[3u * r + 2u] = c;
        sr[r] = a ^ b ^ c;
    }
    blk[9] = sr[0] ^ sr[2];
    blk[10] = sr[1] ^ sr[2];
    blk[11] = sr[2];
    blk[12] = sr[0] ^ sr[1] ^ sr[2];
}

/* the pair's popcounts (first pixel in the low half): the same full adders, then the four
 * words' popcounts by halves */
static uint32_t eq_pb_pr(const uint32_t *q, const uint32_t *wp, uint32_t pos)
{
    uint32_t w[EQ_PB_BW], c[3], r, i, t2, f, c3, s, lo, hi;
    for (i = 0; i < EQ_PB_BW; ++i) w[i] = wp[pos & 1u ? eq_pb_odd[i] : i];
    for (r = 0; r < 3u; ++r)
        c[r] = ((q[3u * r] ^ w[3u * r]) & (q[3u * r + 1u] ^ w[3u * r + 1u])) ^ (q[3u * r + 2u] ^ w[3u * r + 2u]);
    t2 = c[0] ^ c[1] ^ c[2];
    f = (c[0] & c[1]) | ((c[0] ^ c[1]) & c[2]);
    c3 = ((q[9] ^ w[9]) & (q[10] ^ w[10])) ^ (q[11] ^ w[11]);
    s = q[12] ^ w[12];
    lo = eq_popcount32(s & 0xFFFFu) + 2u * eq_popcount32(c3 & 0xFFFFu) + 2u * eq_popcount32(t2 & 0xFFFFu)
         + 4u * eq_popcount32(f & 0xFFFFu);
    hi = eq_popcount32(s >> 16) + 2u * eq_popcount32(c3 >> 16) + 2u * eq_popcount32(t2 >> 16)
         + 4u * eq_popcount32(f >> 16);
    return lo | hi << 16;
}

static void eq_pb_next_block(eq_pb_row_t *x, uint32_t *blk)
{
    uint32_t r;
    eq_pb_block(x->q, blk);
    for (r = 0; r < 3u; ++r) x->q[r] += x->step / 4u;
}

/* arithmetic (flooring) right shift of an int32 by sh <= 31 */
static int32_t eq_pb_asr(int32_t v, uint32_t sh)
{
#if defined(__GNUC__)
    return v >> sh;
#else
    return v >= 0 ? (int32_t)((uint32_t)v >> sh) : (int32_t)~(~(uint32_t)v >> sh);
#endif
}

static void eq_pb_sign_row_c(eq_pb_row_t *x)
{
    uint32_t blk[EQ_PB_BW];
    do {
        const uint32_t *tp = (const uint32_t *)x->tab + EQ_PB_G * *x->pcls++, *wb = x->wb;
        uint32_t acc = (uint32_t)x->lim, last, a, b, pos = 0;
        eq_pb_next_block(x, blk);
        do { /* the sentinel bit leaves after the last channel */
            last = acc & 1u;
            acc = ((eq_pb_pr(blk, wb, pos++) + *tp++) & 0x80008000u) | acc >> 1;
            wb += EQ_PB_BW;
        } while (!last);
        a = ((acc >> x->sha) & x->mask) ^ x->xm;
        b = (acc >> x->shb) ^ x->xm;
        if (x->half) { /* the high half of the word at oa - 2 */
            uint32_t *wa = (uint32_t *)(void *)(x->oa - 2), *wbb = (uint32_t *)(void *)(x->ob - 2);
            *wa = (*wa & 0xFFFFu) | a << 16;
            *wbb = (*wbb & 0xFFFFu) | b << 16;
        } else {
            *(uint32_t *)(void *)x->oa = a;
            *(uint32_t *)(void *)x->ob = b;
        }
        x->oa += x->ostep;
        x->ob += x->ostep;
    } while (--x->npair);
}

static void eq_pb_affine_row_c(eq_pb_row_t *x)
{
    uint32_t blk[EQ_PB_BW];
    do {
        const uint32_t *ka = (const uint32_t *)x->tab + 2u * EQ_PB_G * (*x->pcls & 15u);
        const uint32_t *kb = (const uint32_t *)x->tab + 2u * EQ_PB_G * (*x->pcls++ >> 4);
        const uint32_t *wb = x->wb;
        uint32_t *qr = x->qr, j;
        int32_t *oa = (int32_t *)(void *)x->oa, *ob = (int32_t *)(void *)x->ob;
        eq_pb_next_block(x, blk);
        for (j = 0; wb != (const uint32_t *)x->lim; wb += EQ_PB_BW, qr += 3) qr[2] = eq_pb_pr(blk, wb, j++);
        for (j = 0, qr = x->qr; j < x->nch; ++j, qr += 3, ka += 2, kb += 2) {
            const uint32_t pa = qr[2] & 0xFFFFu, pb = qr[2] >> 16; /* y = Kq - p Q + (Kr' - p R') >> 23 */
            oa[j] = (int32_t)(ka[0] - pa * qr[0] + (uint32_t)eq_pb_asr((int32_t)(ka[1] - pa * qr[1]), EQ_PB_MAXSH));
            ob[j] = (int32_t)(kb[0] - pb * qr[0] + (uint32_t)eq_pb_asr((int32_t)(kb[1] - pb * qr[1]), EQ_PB_MAXSH));
        }
        x->oa += x->ostep;
        x->ob += x->ostep;
    } while (--x->npair);
}
#define EQ_PB_SIGN_ROW eq_pb_sign_row_c
#define EQ_PB_AFFINE_ROW eq_pb_affine_row_c
#endif

/* ---- the layer ----------------------------------------------------------------------------- */
/* pair row of input row iy (zero outside the input) */
/* pair-row word x of input row `in` (columns outside the input read 0) */
static uint32_t eq_pb_qword(const uint32_t *in, uint32_t x, uint32_t pw, uint32_t sw, uint32_t w,
                            uint32_t cm)
{
    const uint32_t a = x - pw, b = a + sw; /* input columns (wrap = outside) */
    return (a < w ? in[a] & cm : 0u) | (b < w ? in[b] & cm : 0u) << 16;
}

/* pair row of input row iy (zero outside the input) */
static void eq_pb_qrow(const eq_conv_shape_t *s, const uint32_t *in, int32_t iy, uint32_t nq,
                       uint32_t *q)
{
    const uint32_t cm = (1u << s->in_c) - 1u, sw = s->stride, pw = s->pad, w = s->in_w;
    uint32_t x, x1;
    if (iy < 0 || iy >= (int32_t)s->in_h) {
        for (x = 0; x < nq; ++x) q[x] = 0;
        return;
    }
    in += (uint32_t)iy * w;
    x1 = w + pw > sw ? w + pw - sw : 0u; /* [pw, x1): both columns inside the input */
    if (x1 > nq) x1 = nq;
    if (x1 < pw) x1 = pw;
    for (x = 0; x < pw; ++x) q[x] = eq_pb_qword(in, x, pw, sw, w, cm); /* pw <= 1 < nq */
    if (sw == 1u && pw < x1) { /* each input word is the high half here, the low half next */
        uint32_t lo = in[0] & cm;
        for (x = pw; x < x1; ++x) {
            const uint32_t hi = in[x - pw + 1u] & cm;
            q[x] = lo | hi << 16;
            lo = hi;
        }
    } else {
        for (x = pw; x < x1; ++x) q[x] = (in[x - pw] & cm) | (in[x - pw + sw] & cm) << 16;
    }
    for (x = x1; x < nq; ++x) q[x] = eq_pb_qword(in, x, pw, sw, w, cm);
}

/* floor(v / 2^sh), sh <= 31 */
static int64_t eq_pb_fshr(int64_t v, uint32_t sh)
{
#if defined(__GNUC__)
    return v >> sh;
#else
    return v >= 0 ? (int64_t)((uint64_t)v >> sh) : ~(int64_t)((uint64_t)~v >> sh);
#endif
}

/* the folded threshold half 0x8000 - T' of a channel whose accumulator is base - 2 pr:
 * (pr >= T') = !(acc >= thr) (flip 0) or (acc <= thr) (flip 1) for every pr <= 300 */
static uint32_t eq_pb_tneg(uint32_t base, int32_t thr, uint8_t flip)
{
    const int64_t d = (int64_t)base - thr;
    uint32_t t, u;
    if (d < -1) {
        t = 0; /* acc >= thr never (T' = U + 1 <= 0), acc <= thr always (T' = L <= 0) */
    } else if (d > 600) {
        t = 0x1FFu; /* acc >= thr always, acc <= thr never: T' above every pr */
    } else {
        u = (uint32_t)(d + 2); /* floor(d / 2) = u / 2 - 1, ceil(d / 2) = (u + 1) / 2 - 1 */
        t = flip ? (u + 1u) / 2u - 1u : u / 2u;
    }
    return 0x8000u - t;
}

/* AFFINE in 32 bits: shift <= EQ_PB_MAXSH and no channel saturates (|acc| <= 9C) */
static int eq_pb_affine_ok(const eq_conv_job_t *job)
{
    const eq_conv_shape_t *s = job->s;
    const int32_t *mul = (const int32_t *)job->thr, *add = (const int32_t *)job->aux;
    const int64_t amax = 9 * (int64_t)s->in_c;
    uint32_t n;
    if (job->shift > EQ_PB_MAXSH) return 0;
    for (n = 0; n < s->out_c; ++n) {
        const int64_t y0 = eq_pb_fshr(amax * mul[n] + add[n], job->shift);
        const int64_t y1 = eq_pb_fshr(-amax * mul[n] + add[n], job->shift);
        if (y0 < INT32_MIN || y0 > INT32_MAX || y1 < INT32_MIN || y1 > INT32_MAX) return 0;
    }
    return 1;
}

/* one pass: output channels [n0, n0 + nch), nch <= 16 */
static void eq_pb_pass(const eq_conv_job_t *job, const eq_pb_plan_t *p, uint32_t *ring,
                       const uint8_t *pcls, uint32_t *dummy, uint32_t n0, uint32_t nch)
{
    const eq_conv_shape_t *s = job->s;
    const uint32_t c = s->in_c, cm = (1u << c) - 1u, nq = p->nq, oc = s->out_c, ow = s->out_w;
    const uint32_t *wt = (const uint32_t *)job->w->data, *in = (const uint32_t *)job->in;
    const int32_t *thr = (const int32_t *)job->thr; /* SIGN: thresholds; AFFINE: mul */
    const uint8_t *flip = (const uint8_t *)job->aux;
    const int32_t *add = (const int32_t *)job->aux;
    const int sign = job->out_stage == EQ_OUT_SIGN;
    const uint32_t cw = EQ_WORDS(oc), g = n0 / EQ_PB_G;
    /* the loops take channels in twos: an odd nch gets a padding channel of zero weights, first
     * for SIGN (its compare bit lands below the others: the read-out drops it), last for AFFINE
     * (its count is not read) */
    const uint32_t nsteps = nch + (nch & 1u), pad1 = sign ? nch & 1u : 0u;
    uint32_t wb[EQ_PB_G * EQ_PB_BW];
    uint8_t pct[EQ_PB_G][9];
    uint16_t base[EQ_PB_NCC][EQ_PB_G]; /* acc = base - 2 pr, per column class */
    union {
        uint32_t tp[EQ_PB_NPC][EQ_PB_G];    /* SIGN: folded thresholds of a pair class */
        uint32_t kt[EQ_PB_NCC][EQ_PB_G][2]; /* AFFINE: [Kq, Kr] of a column class */
    } u;
    uint32_t qr[EQ_PB_G][3];
    int32_t rkey[3] = {INT32_MIN, INT32_MIN, INT32_MIN};
    uint32_t j, t, r, oy, xm = 0, rcls = 0xFFFFFFFFu;
    eq_pb_row_t x;
    if (nch & 1u) /* the padding channel: zeros */
        for (j = 0; j < EQ_PB_BW; ++j) wb[(sign ? 0u : nch) * EQ_PB_BW + j] = 0;
    for (j = 0; j < nch; ++j) { /* weight blocks and per-tap weight counts */
        const uint32_t *w = wt + (n0 + j) * 9u, pos = j + pad1;
        uint32_t d[9], sr[3], b[EQ_PB_BW];
        for (t = 0; t < 9u; ++t) {
            d[t] = (w[t] & cm) * 0x10001u;
            pct[j][t] = (uint8_t)eq_popcount32(w[t] & cm);
        }
        for (r = 0; r < 3u; ++r) {
            b[3u * r] = d[3u * r] ^ d[3u * r + 2u];
            b[3u * r + 1u] = d[3u * r + 1u] ^ d[3u * r + 2u];
            b[3u * r + 2u] = d[3u * r + 2u];
            sr[r] = d[3u * r] ^ d[3u * r + 1u] ^ d[3u * r + 2u];
        }
        b[9] = sr[0] ^ sr[2];
        b[10] = sr[1] ^ sr[2];
        b[11] = sr[2];
        b[12] = sr[0] ^ sr[1] ^ sr[2];
        for (t = 0; t < EQ_PB_BW; ++t) wb[pos * EQ_PB_BW + (pos & 1u ? eq_pb_odd[t] : t)] = b[t];
        if (sign) {
            if (!flip[n0 + j]) xm |= 1u << j; /* output bit = (pr >= T') ^ !flip */
        } else { /* 2 mul = Q 2^sh + R, 0 <= R < 2^sh (Q mod 2^32) */
            const int64_t m2 = 2 * (int64_t)thr[n0 + j], q = eq_pb_fshr(m2, job->shift);
            qr[j][0] = (uint32_t)(uint64_t)q;
            qr[j][1] = (uint32_t)(m2 - q * ((int64_t)1 << job->shift)) << (EQ_PB_MAXSH - job->shift); /* R' */
        }
    }
    x.step = 8u * s->stride;
    x.wb = wb;
    x.tab = sign ? (const void *)u.tp : (const void *)u.kt;
    x.lim = sign ? (uintptr_t)1u << (nsteps - 1u) : (uintptr_t)(wb + nsteps * EQ_PB_BW);
    x.sha = 16u - nch;
    x.shb = 32u - nch;
    x.mask = (1u << nch) - 1u;
    x.xm = xm;
    x.half = sign && (g & 1u);
    x.qr = &qr[0][0];
    x.nch = nch;
    x.ostep = sign ? 8u * cw : 8u * oc;
    for (oy = 0; oy < s->out_h; ++oy) {
        const int32_t iy0 = (int32_t)(oy * s->stride) - (int32_t)s->pad; /* >= -1 */
        uint32_t ky0, ky1;
        for (r = 0; r < 3u; ++r) { /* the ring: input row iy in slot (iy + 3) % 3 */
            const int32_t iy = iy0 + (int32_t)r;
            const uint32_t sl = (uint32_t)(iy + 3) % 3u;
            if (rkey[sl] != iy) {
                eq_pb_qrow(s, in, iy, nq, ring + sl * nq);
                rkey[sl] = iy;
            }
            x.q[r] = ring + sl * nq;
        }
        eq_pb_range(oy, s->stride, s->pad, s->in_h, &ky0, &ky1);
        if ((ky0 << 8 | ky1) != rcls) { /* a new row border class: fold the stage per class */
            uint32_t cc, k;
            rcls = ky0 << 8 | ky1;
            for (cc = 0; cc < p->ncc; ++cc) {
                const uint32_t nin = (ky1 - ky0) * (p->chi[cc] - p->clo[cc]) * c;
                uint32_t noob = 0, ky, kx;
                uint8_t oob[9]; /* the taps outside the input */
                for (ky = 0; ky < 3u; ++ky)
                    for (kx = 0; kx < 3u; ++kx)
                        if (ky < ky0 || ky >= ky1 || kx < p->clo[cc] || kx >= p->chi[cc])
                            oob[noob++] = (uint8_t)(ky * 3u + kx);
                for (j = 0; j < nch; ++j) {
                    uint32_t corr = 0;
                    for (t = 0; t < noob; ++t) corr += pct[j][oob[t]];
                    base[cc][j] = (uint16_t)(nin + 2u * corr); /* <= 288 */
                    if (!sign) { /* K = base mul + add = Kq 2^sh + Kr */
                        const int64_t kk = (int64_t)base[cc][j] * thr[n0 + j] + add[n0 + j];
                        const int64_t kq = eq_pb_fshr(kk, job->shift);
                        u.kt[cc][j][0] = (uint32_t)(uint64_t)kq;
                        u.kt[cc][j][1] = (uint32_t)(kk - kq * ((int64_t)1 << job->shift)) << (EQ_PB_MAXSH - job->shift);
                    }
                }
            }
            for (k = 0; sign && k < p->npc; ++k) {
                u.tp[k][0] = 0x80008000u; /* the padding channel's (if any; else overwritten) */
                for (j = 0; j < nch; ++j)
                    u.tp[k][j + pad1] = eq_pb_tneg(base[p->pa[k]][j], thr[n0 + j], flip[n0 + j])
                                        | eq_pb_tneg(base[p->pb[k]][j], thr[n0 + j], flip[n0 + j]) << 16;
            }
        }
        x.pcls = pcls;
        if (sign) {
            x.oa = (uint8_t *)((uint32_t *)job->out + oy * ow * cw + (g >> 1)) + 2u * x.half;
            x.ob = x.oa + 4u * cw;
        } else {
            x.oa = (uint8_t *)((int32_t *)job->out + oy * ow * oc + n0);
            x.ob = x.oa + 4u * oc;
        }
        if (ow >= 2u) {
            x.npair = ow / 2u;
            (sign ? EQ_PB_SIGN_ROW : EQ_PB_AFFINE_ROW)(&x);
        }
        if (ow & 1u) { /* the last pixel alone: its partner's output goes to dummy */
            x.ob = (uint8_t *)dummy + 2u * x.half;
            x.npair = 1;
            (sign ? EQ_PB_SIGN_ROW : EQ_PB_AFFINE_ROW)(&x);
        }
    }
}

eq_status_t eq_conv_b1_pair(const eq_conv_job_t *job)
{
    eq_pb_plan_t p;
    uint32_t *ring, *dummy, n0;
    eq_status_t st;
    if (!job || !eq_pb_plan(job->s, job->in_enc, job->w ? job->w->enc : 0u, job->out_stage,
                            job->lflags, &p, NULL))
        return EQ_ERR_UNSUPPORTED;
    st = eq_conv_fast_check(job, 1u);
    if (st != EQ_OK) return st;
    if (job->scratch_bytes < p.total) return EQ_ERR_UNSUPPORTED; /* the row loop runs */
    if (job->out_stage == EQ_OUT_AFFINE && !eq_pb_affine_ok(job)) return EQ_ERR_UNSUPPORTED;
    ring = (uint32_t *)job->scratch;
    (void)eq_pb_plan(job->s, job->in_enc, job->w->enc, job->out_stage, job->lflags, &p,
                     (uint8_t *)(ring + 3u * p.nq)); /* the pixel pairs' classes */
    dummy = (uint32_t *)(void *)((uint8_t *)(ring + 3u * p.nq) + ((p.npair + 7u) & ~7u));
    for (n0 = 0; n0 < job->s->out_c; n0 += EQ_PB_G)
        eq_pb_pass(job, &p, ring, (const uint8_t *)(ring + 3u * p.nq), dummy, n0,
                   job->s->out_c - n0 < EQ_PB_G ? job->s->out_c - n0 : EQ_PB_G);
    return EQ_OK;
}
