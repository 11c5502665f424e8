/* Tick-rate probe (tests/test_boards.py::test_tick_rate_and_determinism): times busy loops of a
 * known instruction count with the board's tick source, the way the app times an inference
 * (eq_hal_timed_begin ... eq_hal_timed_end), and prints "loops ticks" lines, then "END".
 * Under QEMU -icount shift=5 every instruction is 32 ns of virtual time, so the slope must be
 * 2 instructions x 32 ns x tick_hz per loop, and repeated spans must give identical counts. */
#include <stdint.h>

#include "eq_hal.h"

static void spin(uint32_t n)
{
    __asm volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n)::"cc"); /* 2 instructions per loop */
}

static void put(const char *s)
{
    while (*s)
        eq_hal_tx((const uint8_t *)s++, 1u);
}

static void putu(uint32_t v)
{
    char b[11];
    int i = 10;
    b[i] = 0;
    do {
        b[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    put(b + i);
}

int main(int argc, char **argv)
{
    static const uint32_t loops[] = {1000u, 1000u, 2000000u, 2000000u, 12000000u, 12000000u};
    eq_hal_init(argc, argv);
    for (uint32_t i = 0; i < sizeof loops / sizeof loops[0]; i++) {
        spin(1u + 37u * i); /* a different phase before each span */
        eq_hal_timed_begin();
        uint32_t t0 = eq_hal_ticks();
        spin(loops[i]);
        uint32_t t1 = eq_hal_ticks();
        eq_hal_timed_end();
        putu(loops[i]);
        put(" ");
        putu(t1 - t0);
        put("\r\n");
    }
    put("END\r\n");
    for (;;)
        eq_hal_idle();
}
