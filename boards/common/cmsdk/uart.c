/* HAL for boards whose console is an Arm CMSDK APB UART (MPS2 AN386, MPS3 AN547 under QEMU):
 * RX interrupt into the ring, polled TX; ticks come from boards/common/cortexm/ticks.c.
 * Register base, IRQ number(s), clock and baud come from the board's generated eq_board.h. */
#include "cortexm.h"
#include "eq_board.h"
#include "eq_hal.h"

#define UART_DATA EQ_REG(EQ_UART_BASE + 0x00u)
#define UART_STATE EQ_REG(EQ_UART_BASE + 0x04u)
#define UART_CTRL EQ_REG(EQ_UART_BASE + 0x08u)
#define UART_INTCLEAR EQ_REG(EQ_UART_BASE + 0x0Cu)
#define UART_BAUDDIV EQ_REG(EQ_UART_BASE + 0x10u)
#define STATE_TXFULL 1u
#define STATE_RXFULL 2u

void UART_IRQHandler(void)
{
    UART_INTCLEAR = 0xFu; /* RX, TX and overrun interrupts */
    while (UART_STATE & STATE_RXFULL)
        eq_rx_push((uint8_t)UART_DATA);
}

void eq_hal_init(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    UART_BAUDDIV = EQ_CPU_HZ / EQ_UART_BAUD; /* >= 16 */
    UART_CTRL = 0x1u | 0x2u | 0x8u;          /* TX enable, RX enable, RX interrupt */
    eq_nvic_enable(EQ_UART_IRQ);
#ifdef EQ_UART_IRQ2
    eq_nvic_enable(EQ_UART_IRQ2); /* boards with separate RX/TX interrupt lines */
#endif
    eq_ticks_init();
}

void eq_hal_tx(const uint8_t *p, uint32_t n)
{
    while (n--) {
        while (UART_STATE & STATE_TXFULL) {
        }
        UART_DATA = *p++;
    }
}
