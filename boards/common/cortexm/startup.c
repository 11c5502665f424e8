/* Cortex-M startup shared by every board: vector table, reset handler (.data copy, .bss zero),
 * default handlers. Board specifics come from eq_board.h (generated from board.toml):
 * EQ_NUM_IRQS external interrupts, the UART RX interrupt EQ_UART_IRQ (and EQ_UART_IRQ2). */
#include <stdint.h>

#include "eq_board.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(int argc, char **argv);

void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UART_IRQHandler(void) __attribute__((weak, alias("Default_Handler")));

void Default_Handler(void)
{
    for (;;) {
    }
}

void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata)
        *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;)
        *dst++ = 0u;
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* give the FPU/MVE full access (CPACR CP10, CP11) in case the compiler emits FP code */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm volatile("dsb\n isb");
#endif
    (void)main(0, (char **)0);
    for (;;) {
    }
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
__attribute__((section(".isr_vector"), used))
void (*const eq_vectors[16 + EQ_NUM_IRQS])(void) = {
    [0] = (void (*)(void))(&_estack),
    [1] = Reset_Handler,
    [2 ... 15 + EQ_NUM_IRQS] = Default_Handler,
    [3] = HardFault_Handler,
    [7 ... 10] = 0,
    [15] = SysTick_Handler,
    [16 + EQ_UART_IRQ] = UART_IRQHandler,
#ifdef EQ_UART_IRQ2
    [16 + EQ_UART_IRQ2] = UART_IRQHandler,
#endif
};
#pragma GCC diagnostic pop
