/* ST Nucleo-F411RE: USART2 (PA2 TX, PA3 RX, AF7) = ST-LINK virtual COM port, 16 MHz HSI. */
#include "cortexm.h"
#include "eq_board.h"
#include "eq_hal.h"

#define RCC_AHB1ENR EQ_REG(0x40023830u)
#define RCC_APB1ENR EQ_REG(0x40023840u)
#define GPIOA_MODER EQ_REG(0x40020000u)
#define GPIOA_AFRL EQ_REG(0x40020020u)
#define USART_SR EQ_REG(EQ_UART_BASE + 0x00u)
#define USART_DR EQ_REG(EQ_UART_BASE + 0x04u)
#define USART_BRR EQ_REG(EQ_UART_BASE + 0x08u)
#define USART_CR1 EQ_REG(EQ_UART_BASE + 0x0Cu)
#define SR_ORE (1u << 3)
#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)

void UART_IRQHandler(void)
{
    uint32_t sr;
    while ((sr = USART_SR) & (SR_RXNE | SR_ORE)) /* reading SR then DR clears RXNE and ORE */
        eq_rx_push((uint8_t)USART_DR);
}

void eq_hal_init(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    RCC_AHB1ENR |= 1u;        /* GPIOA */
    RCC_APB1ENR |= 1u << 17;  /* USART2 */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 4)) | (0xAu << 4);      /* PA2, PA3 alternate */
    GPIOA_AFRL = (GPIOA_AFRL & ~(0xFFu << 8)) | (0x77u << 8);      /* AF7 = USART2 */
    USART_BRR = (EQ_CPU_HZ + EQ_UART_BAUD / 2u) / EQ_UART_BAUD;    /* APB1 = HSI, oversampling 16 */
    USART_CR1 = (1u << 13) | (1u << 5) | (1u << 3) | (1u << 2);    /* UE, RXNEIE, TE, RE */
    eq_nvic_enable(EQ_UART_IRQ);
    eq_ticks_init();
}

void eq_hal_tx(const uint8_t *p, uint32_t n)
{
    while (n--) {
        while (!(USART_SR & SR_TXE)) {
        }
        USART_DR = *p++;
    }
}
