/* edgeq blob runtime: loads a validated blob and runs it layer by layer.
 *
 * Portable C99, shared by the host (through cffi) and every firmware build. No malloc, printf or
 * exit: the caller owns the model struct, the arena and the output buffers. Every public function
 * validates its arguments and returns an eq_status_t (EQ_OK = 0, codes in eq_spec.h).
 * Semantics: docs/blob-format.md. Blob contents are never trusted: eq_model_load checks every
 * offset, size, shape and code before eq_model_run may touch them.
 */
#ifndef EQ_RUNTIME_H
#define EQ_RUNTIME_H

#include <stdint.h>
#include "eq_spec.h"
#include "eq_kernels.h" /* eq_status_t */

typedef struct {
    const uint8_t *blob;     /* the validated blob (8-byte aligned, kept by the caller) */
    uint32_t size;           /* total_size */
    uint32_t n_layers, n_tensors;
    uint32_t layer_off, tensor_off;
    uint16_t in_c, in_h, in_w;
    uint8_t pre_mode, pre_param;
    uint16_t n_classes;
    uint32_t input_pixels;   /* in_c * in_h * in_w */
    uint32_t input_wire;     /* bytes of the wire input (packed bits for THRESH, else pixels) */
    uint32_t max_act;        /* largest activation in bytes, rounded up to 8 */
    uint32_t acc_row;        /* bytes of the accumulator row */
    uint32_t arena_need;     /* sequential: 2 * max_act + acc_row; DAG: planned peak + acc_row */
    uint32_t max_macs;       /* largest per-layer MAC count (informational) */
    uint16_t version_minor;  /* the blob's minor version (<= EQ_BLOB_VERSION_MINOR) */
    uint8_t dag;             /* 1: some layer names its inputs (src0/src1): values at val_off */
    uint8_t v11;             /* 1: some layer uses a blob 1.1 feature (DAG inputs, groups,
                                per-axis stride/pad, AVGPOOL/ADD/CONCAT, REQUANT) */
    /* DAG blobs: byte offset in the arena of value v (0: the input, j + 1: layer j's output);
     * sequential blobs ping-pong between offsets 0 and max_act (val_off unused) */
    uint32_t val_off[EQ_MAX_DAG_LAYERS + 1u];
} eq_model_t;

/* input_kind for eq_model_run: EQ_INPUT_PIXELS or EQ_INPUT_WIRE (eq_spec.h) */

/* Monotonic tick source for per-layer profiling (wraps modulo 2^32). */
typedef uint32_t (*eq_clock_fn)(void *ctx);

typedef struct {
    eq_clock_fn now;         /* NULL: no profiling */
    void *ctx;
    uint32_t *ticks;         /* n_ticks entries; ticks[i] = ticks spent in layer i */
    uint32_t n_ticks;        /* must be >= n_layers when now != NULL */
    uint32_t total;          /* out: ticks of the whole inference (preprocessing included) */
} eq_profile_t;

/* Validate a blob and fill *m. blob must be 8-byte aligned and stay alive while m is used.
 * On any error *m is left all zero, which eq_model_run refuses (EQ_ERR_ARG). Every size in *m
 * (input_pixels, input_wire, arena_need, ...) is below 2**31: products of blob fields are
 * overflow-checked, and a model whose input or arena would not fit is EQ_ERR_TOO_LARGE. */
eq_status_t eq_model_load(eq_model_t *m, const uint8_t *blob, uint32_t size);

/* One inference: what eq_model_run reads and writes besides the model and the arena. Zero it
 * (eq_run_t r = {0};) and set the fields the call needs; zero fields mean "not used". */
typedef struct {
    const uint8_t *input;    /* pixels (CHW uint8) or wire bytes, input_size of them */
    uint32_t input_size;     /* m->input_pixels (EQ_INPUT_PIXELS) or m->input_wire (EQ_INPUT_WIRE) */
    uint32_t input_kind;     /* EQ_INPUT_PIXELS or EQ_INPUT_WIRE (eq_spec.h) */
    int32_t *scores;         /* n_scores >= n_classes int32, filled when every layer ran
                                (required when n_run = 0) */
    uint32_t n_scores;
    uint32_t cls;            /* out: argmax of the scores (first maximum), when they were filled */
    eq_profile_t *prof;      /* per-layer ticks; NULL: no profiling */
    uint32_t n_run;          /* 0: the whole model; k: only its first k layers (in a DAG act_out
                                is value k, the output of layer k - 1) */
    uint8_t *act_out;        /* optional unless n_run stops early: receives the activation after
                                layer n_run - 1 in the runtime layout */
    uint32_t act_size;       /* >= eq_model_act_bytes(m, n_run - 1) when act_out is set */
} eq_run_t;

/* Run one inference of a loaded model as *run describes, in the caller's arena (8-byte aligned,
 * arena_size >= m->arena_need, else EQ_ERR_ARENA). Writes run->scores, run->cls, run->act_out
 * and run->prof as asked. */
eq_status_t eq_model_run(const eq_model_t *m, uint8_t *arena, uint32_t arena_size, eq_run_t *run);

/* Bytes of the activation produced by layer i (for act_out). 0 if i is out of range. */
uint32_t eq_model_act_bytes(const eq_model_t *m, uint32_t layer);

/* Read-only view of one validated layer (for host executors that run the same graph with other
 * kernels). Tensor pointers are NULL where the layer has no such tensor; lut only for KBIT. */
typedef struct {
    uint32_t op, in_enc, out_enc, out_stage;
    uint32_t in_h, in_w, in_c, out_h, out_w, out_c;
    uint32_t kh, kw, stride, pad, w_enc, w_bits, out_bits, shift;
    uint32_t src0, src1;     /* input value ids (0 = the model input, j + 1 = layer j's output);
                                src1 only for ADD / CONCAT (else 0) */
    uint32_t groups;         /* CONV groups (>= 1) */
    uint32_t stride_w, pad_w; /* horizontal stride and padding (stride, pad: vertical) */
    uint32_t flags;          /* EQ_LFLAG_* bits (blob 1.2; WINO_F23: eq_conv_wino_f32) */
    const void *weight;      /* weight tensor data (CONV) */
    uint32_t weight_bytes;
    const int32_t *lut;      /* KBIT: (lut_rows, lut_cols) int32 */
    uint32_t lut_rows, lut_cols;
    const void *thr;         /* thresholds (SIGN/MULTI) or mul (AFFINE/REQUANT) */
    const void *aux;         /* flip bytes (SIGN/MULTI) or add (AFFINE/REQUANT) */
} eq_layer_view_t;

/* Fill *v with layer i of a model that eq_model_load accepted. EQ_ERR_ARG if i is out of range. */
eq_status_t eq_model_layer(const eq_model_t *m, uint32_t i, eq_layer_view_t *v);

/* Human-readable text of a status code (never NULL). */
const char *eq_status_str(eq_status_t s);

/* zlib-compatible CRC-32, incremental: crc = eq_crc32(0, p, n); crc = eq_crc32(crc, q, k). */
uint32_t eq_crc32(uint32_t crc, const uint8_t *p, uint32_t n);

#endif /* EQ_RUNTIME_H */
