/* Serial protocol, board side. Frame (before COBS): version u8, cmd u8, seq u16, length u16,
 * payload[length], crc32 u32 over header + payload (zlib CRC, eq_crc32). Every reply payload
 * starts with a status byte. Payload layouts are records in edgeq/spec.py (HELLO_REPLY,
 * INFO_REPLY, MODEL_SUMMARY, ...): every field is written at its generated offset from eq_spec.h
 * (EQ_<RECORD>_<FIELD>), and edgeq/deploy/protocol.py unpacks the same records. docs/protocol.md. */
#include <string.h>

#include "eq_app.h"
#include "eq_board.h"
#include "eq_cobs.h"
#include "eq_hal.h"
#include "eq_runtime.h"

#if EQ_MAX_PAYLOAD > EQ_FRAME_MAX_PAYLOAD
#error "EQ_MAX_PAYLOAD exceeds the protocol maximum EQ_FRAME_MAX_PAYLOAD"
#endif

#if EQ_INFO_REPLY_MODEL + EQ_MODEL_SUMMARY_SIZE_BYTES != EQ_INFO_REPLY_SIZE_BYTES \
    || EQ_MODEL_REPLY_MODEL + EQ_MODEL_SUMMARY_SIZE_BYTES != EQ_MODEL_REPLY_SIZE_BYTES \
    || EQ_ERROR_REPLY_SIZE_BYTES != 5u || EQ_INFO_REPLY_SIZE_BYTES > EQ_MAX_PAYLOAD \
    || EQ_INFO_REPLY_STATUS != EQ_HELLO_REPLY_STATUS || EQ_INFO_REPLY_PROTO != EQ_HELLO_REPLY_PROTO \
    || EQ_INFO_REPLY_WINDOW != EQ_HELLO_REPLY_WINDOW || EQ_INFO_REPLY_CAPS != EQ_HELLO_REPLY_CAPS \
    || EQ_INFO_REPLY_MAX_PAYLOAD != EQ_HELLO_REPLY_MAX_PAYLOAD \
    || EQ_INFO_REPLY_FW_VERSION != EQ_HELLO_REPLY_FW_VERSION /* INFO starts as HELLO (put_hello) */
#error "eq_spec.h reply records do not fit what eq_app.c writes: regenerate with python -m edgeq.spec"
#endif

/* INFER inputs larger than one frame are staged with INPUT_CHUNK in input_buf (board.toml
 * [firmware] input_buf; 0 or <= max_payload: no staging, CAP_INPUT_CHUNK clear) */
#ifndef EQ_INPUT_BUF_SIZE
#define EQ_INPUT_BUF_SIZE 0u
#endif
#if EQ_INPUT_BUF_SIZE > EQ_MAX_PAYLOAD
#define STAGING 1
#define INPUT_MAX EQ_INPUT_BUF_SIZE /* the largest INFER input this board takes */
#else
#define STAGING 0
#define INPUT_MAX EQ_MAX_PAYLOAD
#endif

#define HDR EQ_FRAME_HEADER_SIZE
#define FRAME_MAX (HDR + EQ_MAX_PAYLOAD + EQ_FRAME_CRC_SIZE)
#define ENC_MAX EQ_COBS_MAX(FRAME_MAX)
#define MAX_SCORES ((EQ_MAX_PAYLOAD - EQ_INFER_REPLY_SIZE_BYTES) / 4u)
#ifndef EQ_MAX_PROFILE_LAYERS
#define EQ_MAX_PROFILE_LAYERS 256u
#endif

/* window: frames the host may send before waiting for replies (they must fit the RX ring) */
#define WINDOW ((EQ_RX_RING_SIZE / (ENC_MAX + 1u)) > 255u ? 255u \
                : (EQ_RX_RING_SIZE / (ENC_MAX + 1u)) < 1u ? 1u : (EQ_RX_RING_SIZE / (ENC_MAX + 1u)))

static uint8_t rx[ENC_MAX];                  /* one encoded frame, decoded in place */
static uint32_t rx_len;
static uint8_t rx_overflow;
static uint8_t tx[FRAME_MAX];                /* the last reply frame before COBS (kept: see cache) */
static uint8_t etx[HDR + EQ_ERROR_REPLY_SIZE_BYTES + EQ_FRAME_CRC_SIZE]; /* CMD_ERROR reports */
static uint8_t model_buf[EQ_MODEL_BUF_SIZE] __attribute__((aligned(8)));
static uint8_t arena[EQ_ARENA_SIZE] __attribute__((aligned(8)));
static int32_t scores[MAX_SCORES];
static uint32_t prof_ticks[EQ_MAX_PROFILE_LAYERS];
#if STAGING
static uint8_t input_buf[EQ_INPUT_BUF_SIZE] __attribute__((aligned(8)));
#endif

static struct {
    eq_model_t m;
    uint8_t src;             /* EQ_SRC_* */
    uint32_t file_crc;       /* zlib CRC of the whole blob */
    int have_prof;
    uint32_t prof_total, prof_n;
    /* upload */
    int loading;
    uint32_t load_total, load_crc, load_next;
    /* the INFER input being staged (INPUT_CHUNK): named by its size and CRC; in_run is the CRC of
     * input_buf[0, in_next) */
    int in_named;
    uint32_t in_total, in_crc, in_next, in_run;
    /* counters */
    uint32_t frames_ok, frames_bad;
    /* the last reply, still in tx: a request repeated with the same seq, cmd and CRC (the host
     * re-sends after a lost or damaged reply) is answered from it without running again */
    int cached;
    uint32_t cache_seq, cache_cmd, cache_crc, cache_plen;
} st;

/* ---- little-endian helpers ------------------------------------------------------------- */
static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* ---- replies --------------------------------------------------------------------------- */
static void emit(const uint8_t *p, uint32_t n) { eq_hal_tx(p, n); }

static void send_frame(const uint8_t *f, uint32_t plen)
{
    static const uint8_t delim = EQ_FRAME_DELIM;
    eq_hal_tx(&delim, 1u); /* flushes any partial frame the host may hold */
    eq_cobs_encode(f, HDR + plen + EQ_FRAME_CRC_SIZE, emit);
    eq_hal_tx(&delim, 1u);
}

/* f[HDR..HDR+plen) holds the payload (status first) */
static void seal_frame(uint8_t *f, uint8_t cmd, uint32_t seq, uint32_t plen)
{
    f[EQ_FRAME_VERSION] = EQ_PROTOCOL_VERSION;
    f[EQ_FRAME_CMD] = cmd;
    put16(f + EQ_FRAME_SEQ, seq);
    put16(f + EQ_FRAME_LENGTH, plen);
    put32(f + HDR + plen, eq_crc32(0u, f, HDR + plen));
}

/* a frame that could not be decoded: CMD_ERROR, ERR_FRAME (built in etx: tx keeps the last reply) */
static void report_bad_frame(uint32_t seq, uint32_t detail)
{
    uint8_t *p = etx + HDR;
    p[EQ_ERROR_REPLY_STATUS] = EQ_ERR_FRAME;
    put32(p + EQ_ERROR_REPLY_DETAIL, detail);
    seal_frame(etx, EQ_CMD_ERROR, seq, EQ_ERROR_REPLY_SIZE_BYTES);
    send_frame(etx, EQ_ERROR_REPLY_SIZE_BYTES);
}

/* MODEL_SUMMARY record (INFO, LOAD_END, RESET) */
static void put_summary(uint8_t *p)
{
    const eq_model_t *m = &st.m;
    memset(p, 0, EQ_MODEL_SUMMARY_SIZE_BYTES);
    p[EQ_MODEL_SUMMARY_SOURCE] = st.src;
    if (st.src == EQ_SRC_NONE)
        return;
    p[EQ_MODEL_SUMMARY_PRE_MODE] = m->pre_mode;
    put16(p + EQ_MODEL_SUMMARY_N_LAYERS, m->n_layers);
    put32(p + EQ_MODEL_SUMMARY_SIZE, m->size);
    put32(p + EQ_MODEL_SUMMARY_CRC32, st.file_crc);
    memcpy(p + EQ_MODEL_SUMMARY_MODEL_HASH, m->blob + EQ_HEADER_MODEL_HASH, 8);
    put16(p + EQ_MODEL_SUMMARY_N_CLASSES, m->n_classes);
    put16(p + EQ_MODEL_SUMMARY_IN_C, m->in_c);
    put16(p + EQ_MODEL_SUMMARY_IN_H, m->in_h);
    put16(p + EQ_MODEL_SUMMARY_IN_W, m->in_w);
    put32(p + EQ_MODEL_SUMMARY_INPUT_WIRE, m->input_wire);
    put32(p + EQ_MODEL_SUMMARY_ARENA_NEED, m->arena_need);
}

/* LOAD_END, RESET: status + MODEL_SUMMARY */
static uint32_t model_reply(void)
{
    tx[HDR + EQ_MODEL_REPLY_STATUS] = EQ_OK;
    put_summary(tx + HDR + EQ_MODEL_REPLY_MODEL);
    return EQ_MODEL_REPLY_SIZE_BYTES;
}

/* ---- model ------------------------------------------------------------------------------ */
/* validate a blob for this board; fills st.m on success */
static uint32_t adopt(const uint8_t *blob, uint32_t size, uint8_t src, uint32_t *detail)
{
    /* static, not on the stack: eq_model_t holds the DAG plan (about 1 KB on a 32-bit MCU) and the
     * Cortex-M3 boards have a 4 KB stack; the firmware is single-threaded */
    static eq_model_t m;
    eq_status_t s = eq_model_load(&m, blob, size);
    *detail = 0;
    if (s != EQ_OK)
        return (uint32_t)s;
    if (m.arena_need > EQ_ARENA_SIZE) {
        *detail = m.arena_need;
        return EQ_ERR_ARENA;
    }
    if (m.n_classes > MAX_SCORES) {
        *detail = m.n_classes;
        return EQ_ERR_TOO_LARGE;
    }
    if (m.input_wire > INPUT_MAX) { /* detail: the largest input this board takes */
        *detail = INPUT_MAX;
        return EQ_ERR_TOO_LARGE;
    }
    st.m = m;
    st.in_named = 0; /* a staged input belongs to the model before */
    st.src = src;
    st.file_crc = eq_crc32(0u, blob, m.size);
    st.have_prof = 0;
    return EQ_OK;
}

static void drop_model(void)
{
    st.src = EQ_SRC_NONE;
    st.have_prof = 0;
    st.in_named = 0;
}

static void boot_model(void)
{
    uint32_t size = 0, detail;
    const uint8_t *flash = eq_hal_flash_model(&size);
    drop_model();
    if (flash && size >= EQ_HEADER_SIZE_BYTES)
        (void)adopt(flash, size, EQ_SRC_FLASH, &detail);
}

void eq_app_init(void)
{
    memset(&st, 0, sizeof st);
    boot_model();
}

static uint8_t caps(void)
{
    uint32_t fsize = 0;
    uint8_t c = EQ_CAP_PROFILE;
    if (eq_hal_flash_model(&fsize))
        c |= EQ_CAP_FLASH_MODEL;
    if (st.src != EQ_SRC_NONE)
        c |= EQ_CAP_MODEL;
    if (STAGING)
        c |= EQ_CAP_INPUT_CHUNK;
    return c;
}

/* ---- commands: each fills tx[HDR..] and returns the payload length ----------------------- */
/* HELLO_REPLY; INFO_REPLY starts with the same fields (spec.py asserts it) */
static void put_hello(uint8_t *p)
{
    p[EQ_HELLO_REPLY_STATUS] = EQ_OK;
    p[EQ_HELLO_REPLY_PROTO] = EQ_PROTOCOL_VERSION;
    p[EQ_HELLO_REPLY_WINDOW] = (uint8_t)WINDOW;
    p[EQ_HELLO_REPLY_CAPS] = caps();
    put16(p + EQ_HELLO_REPLY_MAX_PAYLOAD, EQ_MAX_PAYLOAD);
    put16(p + EQ_HELLO_REPLY_FW_VERSION, (EQ_FW_VERSION_MAJOR << 8) | EQ_FW_VERSION_MINOR);
}

static uint32_t cmd_hello(void)
{
    put_hello(tx + HDR);
    return EQ_HELLO_REPLY_SIZE_BYTES;
}

static uint32_t cmd_info(void)
{
    uint8_t *p = tx + HDR;
    uint32_t fsize = 0, n = (uint32_t)sizeof(EQ_BOARD_NAME) - 1u;
    (void)eq_hal_flash_model(&fsize);
    put_hello(p);
    put16(p + EQ_INFO_REPLY_BLOB_MAJOR, EQ_BLOB_VERSION_MAJOR);
    put16(p + EQ_INFO_REPLY_BLOB_MINOR, EQ_BLOB_VERSION_MINOR);
    put32(p + EQ_INFO_REPLY_CPU_HZ, EQ_CPU_HZ);
    put32(p + EQ_INFO_REPLY_TICK_HZ, EQ_TICK_HZ);
    put32(p + EQ_INFO_REPLY_MODEL_BUF, EQ_MODEL_BUF_SIZE);
    put32(p + EQ_INFO_REPLY_ARENA, EQ_ARENA_SIZE);
    put32(p + EQ_INFO_REPLY_FLASH_MODEL, fsize);
    put32(p + EQ_INFO_REPLY_FRAMES_OK, st.frames_ok);
    put32(p + EQ_INFO_REPLY_FRAMES_BAD, st.frames_bad);
    put32(p + EQ_INFO_REPLY_RX_OVERRUNS, eq_rx_overruns());
    put_summary(p + EQ_INFO_REPLY_MODEL);
    if (n > EQ_MAX_PAYLOAD - EQ_INFO_REPLY_SIZE_BYTES)
        n = EQ_MAX_PAYLOAD - EQ_INFO_REPLY_SIZE_BYTES;
    memcpy(p + EQ_INFO_REPLY_SIZE_BYTES, EQ_BOARD_NAME, n); /* the board name: rest of the payload */
    return EQ_INFO_REPLY_SIZE_BYTES + n;
}

static uint32_t ok_next(uint32_t next)
{
    tx[HDR + EQ_NEXT_REPLY_STATUS] = EQ_OK;
    put32(tx + HDR + EQ_NEXT_REPLY_NEXT, next);
    return EQ_NEXT_REPLY_SIZE_BYTES;
}

static int cmd_load_begin(const uint8_t *a, uint32_t n, uint32_t *detail, uint32_t *plen)
{
    if (n != EQ_LOAD_BEGIN_REQ_SIZE_BYTES)
        return EQ_ERR_ARG;
    uint32_t total = get32(a + EQ_LOAD_BEGIN_REQ_TOTAL), crc = get32(a + EQ_LOAD_BEGIN_REQ_CRC32);
    if (total > EQ_MODEL_BUF_SIZE) {
        *detail = EQ_MODEL_BUF_SIZE;
        return EQ_ERR_TOO_LARGE;
    }
    if (total < EQ_HEADER_SIZE_BYTES) {
        *detail = total;
        return EQ_ERR_TRUNCATED;
    }
    if (st.src == EQ_SRC_RAM)
        drop_model(); /* its buffer is about to be overwritten */
    st.loading = 1;
    st.load_total = total;
    st.load_crc = crc;
    st.load_next = 0;
    *plen = ok_next(0);
    return EQ_OK;
}

static int cmd_load_chunk(const uint8_t *a, uint32_t n, uint32_t *detail, uint32_t *plen)
{
    if (!st.loading)
        return EQ_ERR_SEQUENCE;
    if (n < EQ_LOAD_CHUNK_REQ_SIZE_BYTES)
        return EQ_ERR_ARG;
    uint32_t off = get32(a + EQ_LOAD_CHUNK_REQ_OFFSET), len = n - EQ_LOAD_CHUNK_REQ_SIZE_BYTES;
    if (off > st.load_total || len > st.load_total - off) {
        *detail = st.load_total;
        return EQ_ERR_BOUNDS;
    }
    if (off > st.load_next) { /* a chunk was lost: tell the host where to resume */
        *detail = st.load_next;
        return EQ_ERR_SEQUENCE;
    }
    if (off + len > st.load_next) {
        memcpy(model_buf + off, a + EQ_LOAD_CHUNK_REQ_SIZE_BYTES, len);
        st.load_next = off + len;
    } /* else: a repeated chunk we already hold */
    *plen = ok_next(st.load_next);
    return EQ_OK;
}

static int cmd_load_end(uint32_t *detail, uint32_t *plen)
{
    if (!st.loading) {
        if (st.src == EQ_SRC_RAM) { /* a repeated LOAD_END: answer again */
            *plen = model_reply();
            return EQ_OK;
        }
        return EQ_ERR_SEQUENCE;
    }
    if (st.load_next != st.load_total) {
        *detail = st.load_next;
        return EQ_ERR_SEQUENCE;
    }
    st.loading = 0;
    if (eq_crc32(0u, model_buf, st.load_total) != st.load_crc)
        return EQ_ERR_CRC;
    int s = (int)adopt(model_buf, st.load_total, EQ_SRC_RAM, detail);
    if (s != EQ_OK)
        return s;
    *plen = model_reply();
    return EQ_OK;
}

/* INPUT_CHUNK: offset, total, crc32 + data -> NEXT (bytes of the input held from 0). A chunk
 * naming another input (total, crc32) starts it over; once every byte is there its CRC must match
 * the name. INFER with an empty payload then runs it (cmd_infer). */
static int cmd_input_chunk(const uint8_t *a, uint32_t n, uint32_t *detail, uint32_t *plen)
{
#if STAGING
    if (n < EQ_INPUT_CHUNK_REQ_SIZE_BYTES)
        return EQ_ERR_ARG;
    if (st.src == EQ_SRC_NONE)
        return EQ_ERR_NO_MODEL;
    uint32_t off = get32(a + EQ_INPUT_CHUNK_REQ_OFFSET), total = get32(a + EQ_INPUT_CHUNK_REQ_TOTAL);
    uint32_t crc = get32(a + EQ_INPUT_CHUNK_REQ_CRC32), len = n - EQ_INPUT_CHUNK_REQ_SIZE_BYTES;
    if (total != st.m.input_wire) {
        *detail = st.m.input_wire;
        return EQ_ERR_INPUT;
    }
    if (total > EQ_INPUT_BUF_SIZE) { /* adopt() refuses such a model: a guard, not a path */
        *detail = EQ_INPUT_BUF_SIZE;
        return EQ_ERR_TOO_LARGE;
    }
    if (off > total || len > total - off) {
        *detail = total;
        return EQ_ERR_BOUNDS;
    }
    if (!st.in_named || st.in_total != total || st.in_crc != crc) { /* another input: start over */
        st.in_named = 1;
        st.in_total = total;
        st.in_crc = crc;
        st.in_next = 0;
        st.in_run = 0;
    }
    if (off > st.in_next) { /* a chunk was lost: tell the host where to resume */
        *detail = st.in_next;
        return EQ_ERR_SEQUENCE;
    }
    if (off + len > st.in_next) {
        memcpy(input_buf + off, a + EQ_INPUT_CHUNK_REQ_SIZE_BYTES, len);
        st.in_run = eq_crc32(st.in_run, input_buf + st.in_next, off + len - st.in_next);
        st.in_next = off + len;
        if (st.in_next == total && st.in_run != crc) { /* not the input it was named as */
            st.in_named = 0;
            return EQ_ERR_CRC;
        }
    } /* else: a repeated chunk we already hold */
    *plen = ok_next(st.in_next);
    return EQ_OK;
#else
    (void)a;
    (void)n;
    (void)plen;
    *detail = INPUT_MAX; /* no staging buffer: every input travels in one INFER frame */
    return EQ_ERR_TOO_LARGE;
#endif
}

static uint32_t clock_now(void *ctx)
{
    (void)ctx;
    return eq_hal_ticks();
}

static int cmd_infer(const uint8_t *a, uint32_t n, uint32_t *detail, uint32_t *plen)
{
    const eq_model_t *m = &st.m;
    uint32_t cls = 0;
    eq_profile_t prof = {0};
    if (st.src == EQ_SRC_NONE)
        return EQ_ERR_NO_MODEL;
#if STAGING
    if (n == 0u) { /* the input staged with INPUT_CHUNK, once complete */
        if (!st.in_named || st.in_next != st.in_total || st.in_total != m->input_wire) {
            *detail = st.in_named ? st.in_next : 0u;
            return EQ_ERR_SEQUENCE;
        }
        a = input_buf;
        n = st.in_total;
    }
#endif
    if (n != m->input_wire) {
        *detail = m->input_wire;
        return EQ_ERR_INPUT;
    }
    if (m->n_layers <= EQ_MAX_PROFILE_LAYERS) {
        prof.now = clock_now;
        prof.ticks = prof_ticks;
        prof.n_ticks = EQ_MAX_PROFILE_LAYERS;
    }
    st.have_prof = 0;
    eq_hal_timed_begin();
    eq_run_t run = {0};
    run.input = a;
    run.input_size = n;
    run.input_kind = EQ_INPUT_WIRE;
    run.scores = scores;
    run.n_scores = MAX_SCORES;
    run.prof = prof.now ? &prof : 0;
    eq_status_t s = eq_model_run(m, arena, EQ_ARENA_SIZE, &run);
    cls = run.cls;
    eq_hal_timed_end();
    if (s != EQ_OK)
        return (int)s;
    if (prof.now) {
        st.have_prof = 1;
        st.prof_total = prof.total;
        st.prof_n = m->n_layers;
    }
    uint8_t *p = tx + HDR;
    memset(p, 0, EQ_INFER_REPLY_SIZE_BYTES);
    p[EQ_INFER_REPLY_STATUS] = EQ_OK;
    put16(p + EQ_INFER_REPLY_CLS, cls);
    put16(p + EQ_INFER_REPLY_N, m->n_classes);
    put32(p + EQ_INFER_REPLY_TICKS, prof.total);
    for (uint32_t i = 0; i < m->n_classes; i++) /* scores i32[n] */
        put32(p + EQ_INFER_REPLY_SIZE_BYTES + 4u * i, (uint32_t)scores[i]);
    *plen = EQ_INFER_REPLY_SIZE_BYTES + 4u * m->n_classes;
    return EQ_OK;
}

static int cmd_profile(uint32_t *plen)
{
    if (!st.have_prof)
        return EQ_ERR_SEQUENCE;
    uint32_t n = st.prof_n;
    if (EQ_PROFILE_REPLY_SIZE_BYTES + 4u * n > EQ_MAX_PAYLOAD)
        n = (EQ_MAX_PAYLOAD - EQ_PROFILE_REPLY_SIZE_BYTES) / 4u;
    uint8_t *p = tx + HDR;
    memset(p, 0, EQ_PROFILE_REPLY_SIZE_BYTES);
    p[EQ_PROFILE_REPLY_STATUS] = EQ_OK;
    put16(p + EQ_PROFILE_REPLY_N, n);
    put32(p + EQ_PROFILE_REPLY_TOTAL, st.prof_total);
    put32(p + EQ_PROFILE_REPLY_TICK_HZ, EQ_TICK_HZ);
    for (uint32_t i = 0; i < n; i++) /* ticks u32[n] */
        put32(p + EQ_PROFILE_REPLY_SIZE_BYTES + 4u * i, prof_ticks[i]);
    *plen = EQ_PROFILE_REPLY_SIZE_BYTES + 4u * n;
    return EQ_OK;
}

static uint32_t cmd_reset(void)
{
    st.loading = 0;
    boot_model();
    return model_reply();
}

/* ---- frames ----------------------------------------------------------------------------- */
static void handle_frame(void)
{
    uint32_t seq = 0, detail = 0, plen = 0, crc;
    int32_t len;
    if (rx_overflow) {
        st.frames_bad++;
        report_bad_frame(0, FRAME_MAX);
        return;
    }
    len = eq_cobs_decode(rx, rx_len, rx);
    if (len >= (int32_t)(EQ_FRAME_SEQ + 2))
        seq = get16(rx + EQ_FRAME_SEQ);
    if (len < (int32_t)(HDR + EQ_FRAME_CRC_SIZE)
        || get16(rx + EQ_FRAME_LENGTH) != (uint32_t)len - HDR - EQ_FRAME_CRC_SIZE
        || eq_crc32(0u, rx, (uint32_t)len - EQ_FRAME_CRC_SIZE) != get32(rx + len - EQ_FRAME_CRC_SIZE)) {
        st.frames_bad++;
        report_bad_frame(seq, 0);
        return;
    }
    st.frames_ok++;
    uint8_t cmd = rx[EQ_FRAME_CMD];
    uint8_t rcmd = (uint8_t)(cmd | EQ_REPLY_BIT);
    const uint8_t *a = rx + HDR;
    uint32_t n = (uint32_t)len - HDR - EQ_FRAME_CRC_SIZE;
    int s = EQ_OK;
    crc = get32(rx + len - EQ_FRAME_CRC_SIZE);
    if (st.cached && seq == st.cache_seq && cmd == st.cache_cmd && crc == st.cache_crc) {
        send_frame(tx, st.cache_plen); /* a repeat of the last request: the same answer */
        return;
    }
    st.cached = 0; /* tx is about to change */
    if (n > EQ_MAX_PAYLOAD) { /* fits the COBS slack of rx, but not what HELLO advertised */
        s = EQ_ERR_FRAME;
        detail = EQ_MAX_PAYLOAD;
    } else if (rx[EQ_FRAME_VERSION] != EQ_PROTOCOL_VERSION && cmd != EQ_CMD_HELLO) {
        s = EQ_ERR_PROTOCOL;
        detail = EQ_PROTOCOL_VERSION;
    } else switch (cmd) {
    case EQ_CMD_HELLO: plen = cmd_hello(); break;
    case EQ_CMD_INFO: plen = cmd_info(); break;
    case EQ_CMD_LOAD_BEGIN: s = cmd_load_begin(a, n, &detail, &plen); break;
    case EQ_CMD_LOAD_CHUNK: s = cmd_load_chunk(a, n, &detail, &plen); break;
    case EQ_CMD_LOAD_END: s = cmd_load_end(&detail, &plen); break;
    case EQ_CMD_INFER: s = cmd_infer(a, n, &detail, &plen); break;
    case EQ_CMD_INPUT_CHUNK: s = cmd_input_chunk(a, n, &detail, &plen); break;
    case EQ_CMD_PROFILE: s = cmd_profile(&plen); break;
    case EQ_CMD_RESET: plen = cmd_reset(); break;
    case EQ_CMD_ECHO:
        if (n + 1u > EQ_MAX_PAYLOAD) {
            s = EQ_ERR_TOO_LARGE;
            detail = EQ_MAX_PAYLOAD - 1u;
            break;
        }
        tx[HDR] = EQ_OK; /* status, then the bytes */
        memmove(tx + HDR + 1, a, n);
        plen = n + 1u;
        break;
    default: s = EQ_ERR_UNKNOWN_CMD; break;
    }
    if (s != EQ_OK) {
        uint8_t *p = tx + HDR;
        p[EQ_ERROR_REPLY_STATUS] = (uint8_t)s;
        put32(p + EQ_ERROR_REPLY_DETAIL, detail);
        plen = EQ_ERROR_REPLY_SIZE_BYTES;
    }
    seal_frame(tx, rcmd, seq, plen);
    st.cached = 1;
    st.cache_seq = seq;
    st.cache_cmd = cmd;
    st.cache_crc = crc;
    st.cache_plen = plen;
    send_frame(tx, plen);
}

void eq_app_feed(uint8_t b)
{
    if (b == EQ_FRAME_DELIM) {
        if (rx_len || rx_overflow) /* empty frames (back-to-back delimiters) are ignored */
            handle_frame();
        rx_len = 0;
        rx_overflow = 0;
        return;
    }
    if (rx_len < ENC_MAX)
        rx[rx_len++] = b;
    else
        rx_overflow = 1;
}
