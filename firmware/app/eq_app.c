/* Serial protocol, board side. Frame (before COBS): version u8, cmd u8, seq u16, length u16,
 * payload[length], crc32 u32 over header + payload (zlib CRC, eq_crc32). Every reply payload
 * starts with a status byte. Layouts of each payload: docs/protocol.md. */
#include <string.h>

#include "eq_app.h"
#include "eq_board.h"
#include "eq_cobs.h"
#include "eq_hal.h"
#include "eq_runtime.h"

#if EQ_MAX_PAYLOAD > EQ_FRAME_MAX_PAYLOAD
#error "EQ_MAX_PAYLOAD exceeds the protocol maximum EQ_FRAME_MAX_PAYLOAD"
#endif

#define HDR EQ_FRAME_HEADER_SIZE
#define FRAME_MAX (HDR + EQ_MAX_PAYLOAD + EQ_FRAME_CRC_SIZE)
#define ENC_MAX EQ_COBS_MAX(FRAME_MAX)
#define MAX_SCORES ((EQ_MAX_PAYLOAD - 12u) / 4u)
#ifndef EQ_MAX_PROFILE_LAYERS
#define EQ_MAX_PROFILE_LAYERS 256u
#endif

/* window: frames the host may send before waiting for replies (they must fit the RX ring) */
#define WINDOW ((EQ_RX_RING_SIZE / (ENC_MAX + 1u)) > 255u ? 255u \
                : (EQ_RX_RING_SIZE / (ENC_MAX + 1u)) < 1u ? 1u : (EQ_RX_RING_SIZE / (ENC_MAX + 1u)))

static uint8_t rx[ENC_MAX];                  /* one encoded frame, decoded in place */
static uint32_t rx_len;
static uint8_t rx_overflow;
static uint8_t tx[FRAME_MAX];                /* one reply frame before COBS */
static uint8_t model_buf[EQ_MODEL_BUF_SIZE] __attribute__((aligned(8)));
static uint8_t arena[EQ_ARENA_SIZE] __attribute__((aligned(8)));
static int32_t scores[MAX_SCORES];
static uint32_t prof_ticks[EQ_MAX_PROFILE_LAYERS];

static struct {
    eq_model_t m;
    uint8_t src;             /* EQ_SRC_* */
    uint32_t file_crc;       /* zlib CRC of the whole blob */
    int have_prof;
    uint32_t prof_total, prof_n;
    /* upload */
    int loading;
    uint32_t load_total, load_crc, load_next;
    /* counters */
    uint32_t frames_ok, frames_bad;
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

/* tx[HDR..HDR+plen) holds the payload (status first) */
static void send_reply(uint8_t cmd, uint32_t seq, uint32_t plen)
{
    static const uint8_t delim = EQ_FRAME_DELIM;
    tx[EQ_FRAME_VERSION] = EQ_PROTOCOL_VERSION;
    tx[EQ_FRAME_CMD] = cmd;
    put16(tx + EQ_FRAME_SEQ, seq);
    put16(tx + EQ_FRAME_LENGTH, plen);
    put32(tx + HDR + plen, eq_crc32(0u, tx, HDR + plen));
    eq_hal_tx(&delim, 1u); /* flushes any partial frame the host may hold */
    eq_cobs_encode(tx, HDR + plen + EQ_FRAME_CRC_SIZE, emit);
    eq_hal_tx(&delim, 1u);
}

static void send_status(uint8_t cmd, uint32_t seq, uint32_t status, uint32_t detail)
{
    tx[HDR] = (uint8_t)status;
    put32(tx + HDR + 1, detail);
    send_reply(cmd, seq, 5u);
}

/* model summary, 36 bytes (INFO, LOAD_END, RESET) */
#define SUMMARY_SIZE 36u
static void put_summary(uint8_t *p)
{
    const eq_model_t *m = &st.m;
    memset(p, 0, SUMMARY_SIZE);
    p[0] = st.src;
    if (st.src == EQ_SRC_NONE)
        return;
    p[1] = m->pre_mode;
    put16(p + 2, m->n_layers);
    put32(p + 4, m->size);
    put32(p + 8, st.file_crc);
    memcpy(p + 12, m->blob + EQ_HEADER_MODEL_HASH, 8);
    put16(p + 20, m->n_classes);
    put16(p + 22, m->in_c);
    put16(p + 24, m->in_h);
    put16(p + 26, m->in_w);
    put32(p + 28, m->input_wire);
    put32(p + 32, m->arena_need);
}

/* ---- model ------------------------------------------------------------------------------ */
/* validate a blob for this board; fills st.m on success */
static uint32_t adopt(const uint8_t *blob, uint32_t size, uint8_t src, uint32_t *detail)
{
    eq_model_t m;
    eq_status_t s = eq_model_load(&m, blob, size);
    *detail = 0;
    if (s != EQ_OK)
        return (uint32_t)s;
    if (m.arena_need > EQ_ARENA_SIZE) {
        *detail = m.arena_need;
        return EQ_ERR_ARENA;
    }
    if (m.n_classes > MAX_SCORES || m.input_wire > EQ_MAX_PAYLOAD) {
        *detail = m.n_classes > MAX_SCORES ? m.n_classes : m.input_wire;
        return EQ_ERR_TOO_LARGE;
    }
    st.m = m;
    st.src = src;
    st.file_crc = eq_crc32(0u, blob, m.size);
    st.have_prof = 0;
    return EQ_OK;
}

static void drop_model(void)
{
    st.src = EQ_SRC_NONE;
    st.have_prof = 0;
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
    return c;
}

/* ---- commands: each fills tx[HDR..] and returns the payload length ----------------------- */
static uint32_t cmd_hello(void)
{
    uint8_t *p = tx + HDR;
    p[0] = EQ_OK;
    p[1] = EQ_PROTOCOL_VERSION;
    p[2] = (uint8_t)WINDOW;
    p[3] = caps();
    put16(p + 4, EQ_MAX_PAYLOAD);
    put16(p + 6, (EQ_FW_VERSION_MAJOR << 8) | EQ_FW_VERSION_MINOR);
    return 8u;
}

static uint32_t cmd_info(void)
{
    uint8_t *p = tx + HDR;
    uint32_t fsize = 0, n = (uint32_t)sizeof(EQ_BOARD_NAME) - 1u;
    (void)eq_hal_flash_model(&fsize);
    cmd_hello(); /* first 8 bytes as HELLO */
    put16(p + 8, EQ_BLOB_VERSION_MAJOR);
    put16(p + 10, EQ_BLOB_VERSION_MINOR);
    put32(p + 12, EQ_CPU_HZ);
    put32(p + 16, EQ_TICK_HZ);
    put32(p + 20, EQ_MODEL_BUF_SIZE);
    put32(p + 24, EQ_ARENA_SIZE);
    put32(p + 28, fsize);
    put32(p + 32, st.frames_ok);
    put32(p + 36, st.frames_bad);
    put32(p + 40, eq_rx_overruns());
    put_summary(p + 44);
    if (n > EQ_MAX_PAYLOAD - 44u - SUMMARY_SIZE)
        n = EQ_MAX_PAYLOAD - 44u - SUMMARY_SIZE;
    memcpy(p + 44 + SUMMARY_SIZE, EQ_BOARD_NAME, n);
    return 44u + SUMMARY_SIZE + n;
}

static uint32_t ok_next(uint32_t next)
{
    tx[HDR] = EQ_OK;
    put32(tx + HDR + 1, next);
    return 5u;
}

static int cmd_load_begin(const uint8_t *a, uint32_t n, uint32_t *detail, uint32_t *plen)
{
    if (n != 8u)
        return EQ_ERR_ARG;
    uint32_t total = get32(a), crc = get32(a + 4);
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
    if (n < 4u)
        return EQ_ERR_ARG;
    uint32_t off = get32(a), len = n - 4u;
    if (off > st.load_total || len > st.load_total - off) {
        *detail = st.load_total;
        return EQ_ERR_BOUNDS;
    }
    if (off > st.load_next) { /* a chunk was lost: tell the host where to resume */
        *detail = st.load_next;
        return EQ_ERR_SEQUENCE;
    }
    if (off + len > st.load_next) {
        memcpy(model_buf + off, a + 4, len);
        st.load_next = off + len;
    } /* else: a repeated chunk we already hold */
    *plen = ok_next(st.load_next);
    return EQ_OK;
}

static int cmd_load_end(uint32_t *detail, uint32_t *plen)
{
    if (!st.loading) {
        if (st.src == EQ_SRC_RAM) { /* a repeated LOAD_END: answer again */
            tx[HDR] = EQ_OK;
            put_summary(tx + HDR + 1);
            *plen = 1u + SUMMARY_SIZE;
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
    tx[HDR] = EQ_OK;
    put_summary(tx + HDR + 1);
    *plen = 1u + SUMMARY_SIZE;
    return EQ_OK;
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
    eq_status_t s = eq_model_run(m, a, n, EQ_INPUT_WIRE, arena, EQ_ARENA_SIZE, scores, MAX_SCORES,
                                 &cls, prof.now ? &prof : 0, 0u, 0, 0u);
    eq_hal_timed_end();
    if (s != EQ_OK)
        return (int)s;
    if (prof.now) {
        st.have_prof = 1;
        st.prof_total = prof.total;
        st.prof_n = m->n_layers;
    }
    uint8_t *p = tx + HDR;
    p[0] = EQ_OK;
    p[1] = 0;
    put16(p + 2, cls);
    put16(p + 4, m->n_classes);
    put16(p + 6, 0);
    put32(p + 8, prof.total);
    for (uint32_t i = 0; i < m->n_classes; i++)
        put32(p + 12 + 4u * i, (uint32_t)scores[i]);
    *plen = 12u + 4u * m->n_classes;
    return EQ_OK;
}

static int cmd_profile(uint32_t *plen)
{
    if (!st.have_prof)
        return EQ_ERR_SEQUENCE;
    uint32_t n = st.prof_n;
    if (12u + 4u * n > EQ_MAX_PAYLOAD)
        n = (EQ_MAX_PAYLOAD - 12u) / 4u;
    uint8_t *p = tx + HDR;
    p[0] = EQ_OK;
    p[1] = 0;
    put16(p + 2, n);
    put32(p + 4, st.prof_total);
    put32(p + 8, EQ_TICK_HZ);
    for (uint32_t i = 0; i < n; i++)
        put32(p + 12 + 4u * i, prof_ticks[i]);
    *plen = 12u + 4u * n;
    return EQ_OK;
}

static uint32_t cmd_reset(void)
{
    st.loading = 0;
    boot_model();
    tx[HDR] = EQ_OK;
    put_summary(tx + HDR + 1);
    return 1u + SUMMARY_SIZE;
}

/* ---- frames ----------------------------------------------------------------------------- */
static void handle_frame(void)
{
    uint32_t seq = 0, detail = 0, plen = 0;
    int32_t len;
    if (rx_overflow) {
        st.frames_bad++;
        send_status(EQ_CMD_ERROR, 0, EQ_ERR_FRAME, FRAME_MAX);
        return;
    }
    len = eq_cobs_decode(rx, rx_len, rx);
    if (len >= (int32_t)(EQ_FRAME_SEQ + 2))
        seq = get16(rx + EQ_FRAME_SEQ);
    if (len < (int32_t)(HDR + EQ_FRAME_CRC_SIZE)
        || get16(rx + EQ_FRAME_LENGTH) != (uint32_t)len - HDR - EQ_FRAME_CRC_SIZE
        || eq_crc32(0u, rx, (uint32_t)len - EQ_FRAME_CRC_SIZE) != get32(rx + len - EQ_FRAME_CRC_SIZE)) {
        st.frames_bad++;
        send_status(EQ_CMD_ERROR, seq, EQ_ERR_FRAME, 0);
        return;
    }
    st.frames_ok++;
    uint8_t cmd = rx[EQ_FRAME_CMD];
    uint8_t rcmd = (uint8_t)(cmd | EQ_REPLY_BIT);
    const uint8_t *a = rx + HDR;
    uint32_t n = (uint32_t)len - HDR - EQ_FRAME_CRC_SIZE;
    int s = EQ_OK;
    if (rx[EQ_FRAME_VERSION] != EQ_PROTOCOL_VERSION && cmd != EQ_CMD_HELLO) {
        send_status(rcmd, seq, EQ_ERR_VERSION, EQ_PROTOCOL_VERSION);
        return;
    }
    switch (cmd) {
    case EQ_CMD_HELLO: plen = cmd_hello(); break;
    case EQ_CMD_INFO: plen = cmd_info(); break;
    case EQ_CMD_LOAD_BEGIN: s = cmd_load_begin(a, n, &detail, &plen); break;
    case EQ_CMD_LOAD_CHUNK: s = cmd_load_chunk(a, n, &detail, &plen); break;
    case EQ_CMD_LOAD_END: s = cmd_load_end(&detail, &plen); break;
    case EQ_CMD_INFER: s = cmd_infer(a, n, &detail, &plen); break;
    case EQ_CMD_PROFILE: s = cmd_profile(&plen); break;
    case EQ_CMD_RESET: plen = cmd_reset(); break;
    case EQ_CMD_ECHO:
        if (n + 1u > EQ_MAX_PAYLOAD) {
            s = EQ_ERR_TOO_LARGE;
            detail = EQ_MAX_PAYLOAD - 1u;
            break;
        }
        tx[HDR] = EQ_OK;
        memmove(tx + HDR + 1, a, n);
        plen = n + 1u;
        break;
    default: s = EQ_ERR_UNKNOWN_CMD; break;
    }
    if (s != EQ_OK)
        send_status(rcmd, seq, (uint32_t)s, detail);
    else
        send_reply(rcmd, seq, plen);
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
