/* Stellaris LM3S6965 (QEMU lm3s6965evb): UART0 (a PL011 variant) with RX interrupt; SysTick
 * ticks (ticks.c). */
#include "cortexm.h"
#include "eq_board.h"
#include "eq_hal.h"

#define SYSCTL_RCGC1 EQ_REG(0x400FE104u)
#define SYSCTL_RCGC2 EQ_REG(0x400FE108u)
#define GPIOA_AFSEL EQ_REG(0x40004420u)
#define GPIOA_DEN EQ_REG(0x4000451Cu)
#define UART_DR EQ_REG(EQ_UART_BASE + 0x00u)
#define UART_FR EQ_REG(EQ_UART_BASE + 0x18u)
#define UART_IBRD EQ_REG(EQ_UART_BASE + 0x24u)
#define UART_FBRD EQ_REG(EQ_UART_BASE + 0x28u)
#define UART_LCRH EQ_REG(EQ_UART_BASE + 0x2Cu)
#define UART_CTL EQ_REG(EQ_UART_BASE + 0x30u)
#define UART_IM EQ_REG(EQ_UART_BASE + 0x38u)
#define UART_ICR EQ_REG(EQ_UART_BASE + 0x44u)
#define FR_RXFE 0x10u
#define FR_TXFF 0x20u
#define INT_RX 0x10u
#define INT_RT 0x40u

void UART_IRQHandler(void)
{
    UART_ICR = INT_RX | INT_RT;
    while (!(UART_FR & FR_RXFE))
        eq_rx_push((uint8_t)UART_DR);
}

void eq_hal_init(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    SYSCTL_RCGC1 |= 1u; /* UART0 clock */
    SYSCTL_RCGC2 |= 1u; /* GPIOA clock */
    GPIOA_AFSEL |= 3u;  /* PA0/PA1 = U0RX/U0TX */
    GPIOA_DEN |= 3u;
    UART_CTL = 0u;
    /* divisor = clk / (16 * baud) in 16.6 fixed point */
    uint32_t div64 = (EQ_CPU_HZ * 4u + EQ_UART_BAUD / 2u) / EQ_UART_BAUD;
    UART_IBRD = div64 >> 6;
    UART_FBRD = div64 & 63u;
    UART_LCRH = 0x60u; /* 8N1, FIFOs off: one interrupt per byte */
    UART_IM = INT_RX | INT_RT;
    UART_CTL = 0x301u; /* UARTEN, TXE, RXE */
    eq_nvic_enable(EQ_UART_IRQ);
    eq_ticks_init();
}

void eq_hal_tx(const uint8_t *p, uint32_t n)
{
    while (n--) {
        while (UART_FR & FR_TXFF) {
        }
        UART_DR = *p++;
    }
}
