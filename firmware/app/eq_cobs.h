/* Consistent Overhead Byte Stuffing: frames contain no 0x00, a 0x00 ends each frame. */
#ifndef EQ_COBS_H
#define EQ_COBS_H

#include <stdint.h>

/* Worst-case encoded size of n bytes (without the 0x00 delimiter). */
#define EQ_COBS_MAX(n) ((n) + (n) / 254u + 1u)

/* Decode n encoded bytes (no delimiter) into out (out may equal in). Returns the decoded length,
 * or -1 if the input is malformed (a zero byte, or a code running past the end). */
int32_t eq_cobs_decode(const uint8_t *in, uint32_t n, uint8_t *out);

/* Encode n bytes, handing the output to emit() piece by piece (no delimiter appended). */
typedef void (*eq_emit_fn)(const uint8_t *p, uint32_t n);
void eq_cobs_encode(const uint8_t *in, uint32_t n, eq_emit_fn emit);

#endif /* EQ_COBS_H */
