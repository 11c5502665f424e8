/* Ticks, timed sections and idle for every Cortex-M board; [ticks] in board.toml picks the source.
 *
 * eq_hal_ticks() is a free-running unsigned 32-bit count at EQ_TICK_HZ (differences wrap-safe):
 *   cmsdk-timer  CMSDK APB timer at EQ_TICKS_BASE, VALUE counting down from 0xFFFFFFFF (APB clock)
 *   sse-counter  SSE-300 system counter (control frame at EQ_TICKS_BASE), low half of CNTCV (MAINCLK)
 *   stm32-tim    STM32F2/F4 TIM2 or TIM5 at EQ_TICKS_BASE (32-bit), CNT counting up at its clock /
 *                (EQ_TICKS_PRESCALER + 1), no interrupt
 *   dwt          DWT CYCCNT, CPU cycles (real Cortex-M3/M4/M7/M33 parts; QEMU has no DWT)
 *   systick      SysTick (CPU clock) with a 16-bit reload, its wraps counted by its interrupt.
 *                For boards without another readable counter (QEMU's Stellaris GPTM reads as 0).
 *
 * Exact ticks under QEMU -icount: eq_hal_timed_begin() (called by the app before an inference)
 * restarts the counter's phase, so every later reading lies a fixed number of instructions after
 * that write and maps to the same count on every run (a counter left running would be read at an
 * arbitrary phase, off by one tick either way). Inside a timed section nothing asynchronous runs:
 * the keep-awake timer only runs while the CPU sleeps in eq_hal_idle, and with hold_uart the UART
 * interrupt is held back (QEMU's emulated UART keeps received bytes until it is read; a real
 * UART would overrun, so real boards leave it on). The only interrupt left is the systick wrap,
 * which lands at the same instruction on every run because its phase was restarted too.
 */
#include <stdint.h>

#include "cortexm.h"
#include "eq_board.h"
#include "eq_hal.h"

#define SYST_CSR EQ_REG(0xE000E010u)
#define SYST_RVR EQ_REG(0xE000E014u)
#define SYST_CVR EQ_REG(0xE000E018u)
#define SCB_ICSR EQ_REG(0xE000ED04u)
#define ICSR_PENDSTCLR (1u << 25)
#define NVIC_ICER(n) EQ_REG(0xE000E180u + 4u * (n))
#define SYST_RELOAD 0xFFFFu /* 16 bits: the wrap interrupt doubles as the keep-awake (~2.6-5 ms) */

static inline uint32_t irq_save(void)
{
    uint32_t m;
    __asm volatile("mrs %0, primask\n cpsid i" : "=r"(m)::"memory");
    return m;
}
static inline void irq_restore(uint32_t m) { __asm volatile("msr primask, %0" ::"r"(m) : "memory"); }

#if defined(EQ_TICKS_CMSDK_TIMER)
#define TIMER_CTRL EQ_REG(EQ_TICKS_BASE + 0x0u)
#define TIMER_VALUE EQ_REG(EQ_TICKS_BASE + 0x4u)
#define TIMER_RELOAD EQ_REG(EQ_TICKS_BASE + 0x8u)
static void counter_init(void)
{
    TIMER_CTRL = 0u;
    TIMER_RELOAD = 0xFFFFFFFFu;
    TIMER_VALUE = 0xFFFFFFFFu;
    TIMER_CTRL = 1u; /* enable, internal clock, no interrupt */
}
static void counter_restart(void) { TIMER_VALUE = 0xFFFFFFFFu; }
uint32_t eq_hal_ticks(void) { return 0xFFFFFFFFu - TIMER_VALUE; }

#elif defined(EQ_TICKS_SSE_COUNTER)
#define CNTCR EQ_REG(EQ_TICKS_BASE + 0x0u)
#define CNTCV_LO EQ_REG(EQ_TICKS_BASE + 0x8u)
static void counter_init(void) { CNTCR = 1u; /* EN, no scaling: one count per MAINCLK cycle */ }
static void counter_restart(void) { CNTCV_LO = 0u; }
uint32_t eq_hal_ticks(void) { return CNTCV_LO; }

#elif defined(EQ_TICKS_STM32_TIM)
#define TIM_CR1 EQ_REG(EQ_TICKS_BASE + 0x00u)
#define TIM_EGR EQ_REG(EQ_TICKS_BASE + 0x14u)
#define TIM_CNT EQ_REG(EQ_TICKS_BASE + 0x24u)
#define TIM_PSC EQ_REG(EQ_TICKS_BASE + 0x28u)
#define TIM_ARR EQ_REG(EQ_TICKS_BASE + 0x2Cu)
#define RCC_APB1ENR EQ_REG(0x40023840u)
#ifndef EQ_TICKS_PRESCALER
#define EQ_TICKS_PRESCALER 0u
#endif
static void counter_init(void)
{
    RCC_APB1ENR |= 1u << ((EQ_TICKS_BASE - 0x40000000u) / 0x400u); /* TIM2..TIM5 = bits 0..3 */
    (void)RCC_APB1ENR;
    TIM_CR1 = 0u;
    TIM_PSC = EQ_TICKS_PRESCALER; /* 16 bits */
    TIM_ARR = 0xFFFFFFFFu;
    TIM_EGR = 1u; /* UG: load PSC */
    TIM_CNT = 0u;
    TIM_CR1 = 1u; /* CEN, up-counting, no interrupt */
}
static void counter_restart(void) { TIM_CNT = 0u; }
uint32_t eq_hal_ticks(void) { return TIM_CNT; }

#elif defined(EQ_TICKS_DWT)
#define DEMCR EQ_REG(0xE000EDFCu)
#define DWT_CTRL EQ_REG(0xE0001000u)
#define DWT_CYCCNT EQ_REG(0xE0001004u)
static void counter_init(void)
{
    DEMCR |= 1u << 24; /* TRCENA */
    DWT_CYCCNT = 0u;
    DWT_CTRL |= 1u; /* CYCCNTENA */
}
static void counter_restart(void) {}
uint32_t eq_hal_ticks(void) { return DWT_CYCCNT; }

#elif defined(EQ_TICKS_SYSTICK)
#define ICSR_PENDSTSET (1u << 26)
static volatile uint32_t st_wraps;

void SysTick_Handler(void) { st_wraps++; }

static void counter_init(void)
{
    SYST_CSR = 0u;
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0u;
    SYST_CSR = 7u; /* CPU clock, wrap interrupt, enable */
}

static void counter_restart(void)
{
    uint32_t m = irq_save();
    SYST_CSR = 0u;
    SYST_CVR = 0u; /* clears the count and COUNTFLAG */
    SYST_CSR = 7u;
    while (SYST_CVR == 0u) { /* until it has loaded RELOAD (no wrap interrupt for that) */
    }
    SCB_ICSR = ICSR_PENDSTCLR;
    st_wraps = 0u;
    irq_restore(m);
}

/* The wrap interrupt is raised when the count reaches 0 (the last count of a period), so a
 * reading of 0 is ambiguous: wait the one tick until the reload. A wrap that is pending but not
 * yet handled (interrupts masked here) is counted if it happened before CVR was read. */
uint32_t eq_hal_ticks(void)
{
    uint32_t m = irq_save(), p1, p2, v, w;
    do {
        p1 = SCB_ICSR & ICSR_PENDSTSET;
        v = SYST_CVR;
        p2 = SCB_ICSR & ICSR_PENDSTSET;
    } while (p1 != p2 || v == 0u);
    w = st_wraps + (p1 ? 1u : 0u);
    irq_restore(m);
    return w * (SYST_RELOAD + 1u) + (SYST_RELOAD - v);
}
#else
#error "board.toml needs [ticks] source = cmsdk-timer | sse-counter | stm32-tim | dwt | systick"
#endif

#if defined(EQ_KEEP_AWAKE) && !defined(EQ_TICKS_SYSTICK)
/* keep-awake only: never runs its handler (pending is cleared while interrupts are masked) */
void SysTick_Handler(void) {}
#endif

void eq_ticks_init(void) { counter_init(); }

void eq_hal_timed_begin(void)
{
#ifdef EQ_TICKS_HOLD_UART
    NVIC_ICER(EQ_UART_IRQ / 32u) = 1u << (EQ_UART_IRQ % 32u);
#ifdef EQ_UART_IRQ2
    NVIC_ICER(EQ_UART_IRQ2 / 32u) = 1u << (EQ_UART_IRQ2 % 32u);
#endif
    __asm volatile("dsb\n isb" ::: "memory");
#endif
    counter_restart();
}

void eq_hal_timed_end(void)
{
#ifdef EQ_TICKS_HOLD_UART
    eq_nvic_enable(EQ_UART_IRQ); /* a byte that arrived meanwhile is taken now */
#ifdef EQ_UART_IRQ2
    eq_nvic_enable(EQ_UART_IRQ2);
#endif
#endif
}

void eq_hal_idle(void)
{
    __asm volatile("cpsid i" ::: "memory");
    if (!eq_rx_pending()) {
#if defined(EQ_KEEP_AWAKE) && !defined(EQ_TICKS_SYSTICK)
        /* QEMU 7.2 only polls its UART backends while some timer is due: a periodic SysTick
         * while asleep (otherwise the first received byte can wait ~1 s) */
        SYST_RVR = SYST_RELOAD;
        SYST_CVR = 0u;
        SYST_CSR = 7u;
#endif
        __asm volatile("dsb\n wfi" ::: "memory"); /* a pending interrupt wakes it even masked */
#if defined(EQ_KEEP_AWAKE) && !defined(EQ_TICKS_SYSTICK)
        SYST_CSR = 0u;
        SCB_ICSR = ICSR_PENDSTCLR;
#endif
    }
    __asm volatile("cpsie i" ::: "memory");
}
