/* The serial protocol, board side (docs/protocol.md). Portable C99, no malloc: every buffer is a
 * static array sized from eq_board.h. Feed it received bytes; it answers through eq_hal_tx. */
#ifndef EQ_APP_H
#define EQ_APP_H

#include <stdint.h>

#define EQ_FW_VERSION_MAJOR 1u
#define EQ_FW_VERSION_MINOR 1u

/* Capability bits (HELLO/INFO flags). */
#define EQ_CAP_PROFILE 0x01u     /* PROFILE reports per-layer ticks */
#define EQ_CAP_FLASH_MODEL 0x02u /* the board has a flash model region checked at boot */
#define EQ_CAP_MODEL 0x04u       /* a model is loaded now */

/* Model source (INFO). */
#define EQ_SRC_NONE 0u
#define EQ_SRC_FLASH 1u
#define EQ_SRC_RAM 2u

/* Check the flash model region and start with its model if it is valid. */
void eq_app_init(void);

/* One received byte (frames end at 0x00). */
void eq_app_feed(uint8_t b);

#endif /* EQ_APP_H */
