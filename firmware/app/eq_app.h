/* The serial protocol, board side (docs/protocol.md). Portable C99, no malloc: every buffer is a
 * static array sized from eq_board.h. Feed it received bytes; it answers through eq_hal_tx. */
#ifndef EQ_APP_H
#define EQ_APP_H

#include <stdint.h>

#include "eq_spec.h" /* EQ_FW_VERSION_*, EQ_CAP_* and EQ_SRC_* (generated from edgeq/spec.py) */

/* Check the flash model region and start with its model if it is valid. */
void eq_app_init(void);

/* One received byte (frames end at 0x00). */
void eq_app_feed(uint8_t b);

#endif /* EQ_APP_H */
