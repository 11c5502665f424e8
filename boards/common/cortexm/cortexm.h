/* Bits every Cortex-M board shares (boards/common/cortexm). */
#ifndef EQ_CORTEXM_H
#define EQ_CORTEXM_H

#include <stdint.h>

#define EQ_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
#define NVIC_ISER(n) EQ_REG(0xE000E100u + 4u * (n))

static inline void eq_nvic_enable(uint32_t irq) { NVIC_ISER(irq / 32u) = 1u << (irq % 32u); }

/* start the tick source picked by [ticks] in board.toml (ticks.c) */
void eq_ticks_init(void);

#endif
