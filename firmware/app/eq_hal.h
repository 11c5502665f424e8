/* What a board gives the portable app (implemented in boards/NAME/hal*.c).
 *
 * The app never touches hardware: it drains received bytes from the RX ring (filled by the
 * board's UART interrupt through eq_rx_push), answers through eq_hal_tx, sleeps through
 * eq_hal_idle and times layers through eq_hal_ticks. Board parameters (memory sizes, clock,
 * flash model region) come from eq_board.h, generated from boards/NAME/board.toml.
 */
#ifndef EQ_HAL_H
#define EQ_HAL_H

#include <stdint.h>

/* Clocks, UART with RX interrupt, tick timer. argc/argv are 0/NULL on bare metal. */
void eq_hal_init(int argc, char **argv);

/* Send n bytes, blocking until they are queued in the UART. */
void eq_hal_tx(const uint8_t *p, uint32_t n);

/* Sleep until something may have happened (WFI); returns at once if bytes are pending. */
void eq_hal_idle(void);

/* Free-running tick counter (EQ_TICK_HZ), wraps modulo 2^32: take unsigned differences. */
uint32_t eq_hal_ticks(void);

/* Around one inference (the profiled span): the board restarts its counter's phase and holds back
 * interrupts that are not needed, so that under QEMU -icount every reading in between is exact and
 * repeatable (boards/common/cortexm/ticks.c). No-ops where that does not apply (sim). */
void eq_hal_timed_begin(void);
void eq_hal_timed_end(void);

/* The flash model region (a blob may be there) and its size in bytes; NULL if none. */
const uint8_t *eq_hal_flash_model(uint32_t *size);

/* ---- RX ring, shared by every board (eq_ring.c) ---------------------------------------- */
/* Called by the UART RX interrupt (single producer). Drops the byte when the ring is full. */
void eq_rx_push(uint8_t b);
/* Called by the main loop (single consumer): up to cap bytes, returns how many. */
uint32_t eq_rx_pop(uint8_t *buf, uint32_t cap);
int eq_rx_pending(void);
/* Bytes dropped because the ring was full (the host overran the advertised window). */
uint32_t eq_rx_overruns(void);

#endif /* EQ_HAL_H */
