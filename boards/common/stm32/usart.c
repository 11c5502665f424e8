/* HAL for STM32F2/F4 boards: clock enables, one USART (RX interrupt into the ring, polled TX) and
 * its pins. Shared by qemu-netduinoplus2 (STM32F405 under QEMU) and nucleo-f411re (real board).
 * Ticks come from boards/common/cortexm/ticks.c ([ticks] in board.toml: stm32-tim or dwt).
 *
 * Board parameters come from board.toml through the generated eq_board.h:
 *   [uart] base, irq, baud           EQ_UART_BASE, EQ_UART_IRQ, EQ_UART_BAUD
 *   [hal]  usart_enr, usart_en_bit   RCC enable register offset (APB1ENR 0x40 / APB2ENR 0x44) + bit
 *          gpio, gpio_en_bit         GPIO port base and its RCC_AHB1ENR bit
 *          tx_pin, rx_pin, af        pin numbers on that port and their alternate function
 *          pclk_hz                   clock of the USART's bus, for BRR
 *
 * Clock: the core runs from the 16 MHz HSI, as after reset (no PLL). Nothing here waits on an RCC
 * ready bit: QEMU 7.2 does not model the STM32F4 RCC (an unimplemented device that reads 0), so
 * a loop on HSIRDY/PLLRDY would never end there; on silicon HSI is already on and ready at reset.
 * QEMU also ignores BRR and the GPIO setup (unimplemented too), and clocks the core at a fixed
 * 168 MHz on netduinoplus2 whatever RCC says; its USART and TIM2-5 are modelled. */
#include "cortexm.h"
#include "eq_board.h"
#include "eq_hal.h"

#define RCC_BASE 0x40023800u
#define RCC_AHB1ENR EQ_REG(RCC_BASE + 0x30u)
#define RCC_USART_ENR EQ_REG(RCC_BASE + EQ_HAL_USART_ENR)

#define GPIO_MODER EQ_REG(EQ_HAL_GPIO + 0x00u)
#define GPIO_AFR(n) EQ_REG(EQ_HAL_GPIO + 0x20u + 4u * (n))

#define USART_SR EQ_REG(EQ_UART_BASE + 0x00u)
#define USART_DR EQ_REG(EQ_UART_BASE + 0x04u)
#define USART_BRR EQ_REG(EQ_UART_BASE + 0x08u)
#define USART_CR1 EQ_REG(EQ_UART_BASE + 0x0Cu)
#define SR_ORE (1u << 3)
#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_RXNEIE (1u << 5)
#define CR1_UE (1u << 13)

/* a peripheral clock takes effect two bus cycles after the RCC write: read it back first */
static void rcc_enable(volatile uint32_t *reg, uint32_t bit)
{
    *reg |= 1u << bit;
    (void)*reg;
}

static void pin_af(uint32_t pin)
{
    GPIO_MODER = (GPIO_MODER & ~(3u << (2u * pin))) | (2u << (2u * pin)); /* alternate function */
    GPIO_AFR(pin / 8u) = (GPIO_AFR(pin / 8u) & ~(0xFu << (4u * (pin % 8u)))) | ((uint32_t)EQ_HAL_AF << (4u * (pin % 8u)));
}

void UART_IRQHandler(void)
{
    while (USART_SR & (SR_RXNE | SR_ORE)) /* reading SR then DR clears RXNE and ORE */
        eq_rx_push((uint8_t)USART_DR);
}

void eq_hal_init(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    rcc_enable(&RCC_AHB1ENR, EQ_HAL_GPIO_EN_BIT);
    rcc_enable(&RCC_USART_ENR, EQ_HAL_USART_EN_BIT);
    pin_af(EQ_HAL_TX_PIN);
    pin_af(EQ_HAL_RX_PIN);
    USART_CR1 = 0u;
    USART_BRR = (EQ_HAL_PCLK_HZ + EQ_UART_BAUD / 2u) / EQ_UART_BAUD; /* oversampling by 16 */
    USART_CR1 = CR1_UE | CR1_RXNEIE | CR1_TE | CR1_RE;
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
