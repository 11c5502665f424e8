/* Nordic nRF52840-DK: legacy UART0 on P0.06 (TX) / P0.08 (RX) = J-Link virtual COM port, HFXO. */
#include "cortexm.h"
#include "eq_board.h"
#include "eq_hal.h"

#define CLOCK_TASKS_HFCLKSTART EQ_REG(0x40000000u)
#define CLOCK_EVENTS_HFCLKSTARTED EQ_REG(0x40000100u)
#define UART_TASKS_STARTRX EQ_REG(EQ_UART_BASE + 0x000u)
#define UART_TASKS_STARTTX EQ_REG(EQ_UART_BASE + 0x008u)
#define UART_EVENTS_RXDRDY EQ_REG(EQ_UART_BASE + 0x108u)
#define UART_EVENTS_TXDRDY EQ_REG(EQ_UART_BASE + 0x11Cu)
#define UART_EVENTS_ERROR EQ_REG(EQ_UART_BASE + 0x124u)
#define UART_INTENSET EQ_REG(EQ_UART_BASE + 0x304u)
#define UART_ERRORSRC EQ_REG(EQ_UART_BASE + 0x480u)
#define UART_ENABLE EQ_REG(EQ_UART_BASE + 0x500u)
#define UART_PSEL_RTS EQ_REG(EQ_UART_BASE + 0x508u)
#define UART_PSEL_TXD EQ_REG(EQ_UART_BASE + 0x50Cu)
#define UART_PSEL_CTS EQ_REG(EQ_UART_BASE + 0x510u)
#define UART_PSEL_RXD EQ_REG(EQ_UART_BASE + 0x514u)
#define UART_RXD EQ_REG(EQ_UART_BASE + 0x518u)
#define UART_TXD EQ_REG(EQ_UART_BASE + 0x51Cu)
#define UART_BAUDRATE EQ_REG(EQ_UART_BASE + 0x524u)
#define UART_CONFIG EQ_REG(EQ_UART_BASE + 0x56Cu)
#define BAUD_115200 0x01D7E000u

void UART_IRQHandler(void)
{
    if (UART_EVENTS_ERROR) {
        UART_EVENTS_ERROR = 0u;
        UART_ERRORSRC = UART_ERRORSRC; /* write 1s to clear */
    }
    while (UART_EVENTS_RXDRDY) {
        UART_EVENTS_RXDRDY = 0u;
        eq_rx_push((uint8_t)UART_RXD);
    }
}

void eq_hal_init(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    CLOCK_TASKS_HFCLKSTART = 1u;
    while (!CLOCK_EVENTS_HFCLKSTARTED) {
    }
    UART_PSEL_TXD = 6u;
    UART_PSEL_RXD = 8u;
    UART_PSEL_RTS = 0xFFFFFFFFu; /* no flow control */
    UART_PSEL_CTS = 0xFFFFFFFFu;
    UART_CONFIG = 0u;
    UART_BAUDRATE = BAUD_115200;
    UART_ENABLE = 4u;
    UART_INTENSET = (1u << 2) | (1u << 9); /* RXDRDY, ERROR */
    UART_TASKS_STARTRX = 1u;
    UART_TASKS_STARTTX = 1u;
    eq_nvic_enable(EQ_UART_IRQ);
    eq_ticks_init();
}

void eq_hal_tx(const uint8_t *p, uint32_t n)
{
    while (n--) {
        UART_EVENTS_TXDRDY = 0u;
        UART_TXD = *p++;
        while (!UART_EVENTS_TXDRDY) {
        }
    }
}
