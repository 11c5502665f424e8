/* Single-producer (UART ISR) / single-consumer (main loop) byte ring. */
#include "eq_hal.h"
#include "eq_board.h"

#if (EQ_RX_RING_SIZE & (EQ_RX_RING_SIZE - 1)) != 0
#error "EQ_RX_RING_SIZE must be a power of two"
#endif

static uint8_t ring[EQ_RX_RING_SIZE];
static volatile uint32_t head; /* written by the producer only */
static volatile uint32_t tail; /* written by the consumer only */
static volatile uint32_t overruns;

void eq_rx_push(uint8_t b)
{
    uint32_t h = head;
    if (h - tail >= EQ_RX_RING_SIZE) {
        overruns++;
        return;
    }
    ring[h & (EQ_RX_RING_SIZE - 1u)] = b;
    head = h + 1u;
}

uint32_t eq_rx_pop(uint8_t *buf, uint32_t cap)
{
    uint32_t t = tail, h = head, n = 0;
    while (t != h && n < cap) {
        buf[n++] = ring[t & (EQ_RX_RING_SIZE - 1u)];
        t++;
    }
    tail = t;
    return n;
}

int eq_rx_pending(void) { return head != tail; }

uint32_t eq_rx_overruns(void) { return overruns; }
