/* Main loop, the same on every board: drain the RX ring into the protocol, sleep when idle. */
#include "eq_app.h"
#include "eq_hal.h"

int main(int argc, char **argv)
{
    eq_hal_init(argc, argv);
    eq_app_init();
    for (;;) {
        uint8_t buf[64];
        uint32_t n = eq_rx_pop(buf, sizeof buf);
        if (n == 0u) {
            eq_hal_idle();
            continue;
        }
        for (uint32_t i = 0; i < n; i++)
            eq_app_feed(buf[i]);
    }
}
