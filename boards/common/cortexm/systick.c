/* Ticks from SysTick on the CPU clock: a 16-bit reload, the wraps counted in the interrupt.
 * The periodic interrupt also keeps QEMU's main loop polling the UART while the CPU sleeps in WFI
 * (QEMU 7.2's CMSDK UART otherwise stalls ~1 s on the first received byte). */
#include <stdint.h>

#include "cortexm.h"
#include "eq_hal.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define ICSR_PENDSTSET (1u << 26)
#define RELOAD 0xFFFFu

static volatile uint32_t wraps;

void SysTick_Handler(void) { wraps++; }

void eq_systick_start(void)
{
    SYST_RVR = RELOAD;
    SYST_CVR = 0u;
    SYST_CSR = 7u; /* CPU clock, interrupt, enable */
}

uint32_t eq_hal_ticks(void)
{
    uint32_t w, v, pend;
    do {
        w = wraps;
        v = SYST_CVR;
        pend = SCB_ICSR & ICSR_PENDSTSET;
    } while (w != wraps);
    if (pend && v > RELOAD / 2u) /* wrapped after we read `wraps`, before the interrupt ran */
        w++;
    return (w << 16) + (RELOAD - v);
}

void eq_hal_idle(void)
{
    __asm volatile("cpsid i" ::: "memory");
    if (!eq_rx_pending())
        __asm volatile("dsb\n wfi" ::: "memory"); /* a pending interrupt wakes it even masked */
    __asm volatile("cpsie i" ::: "memory");
}
