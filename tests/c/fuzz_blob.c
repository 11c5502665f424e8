/* libFuzzer target over the blob loader AND the executor (tests/test_blob_fuzz.py builds it with
 * clang -fsanitize=fuzzer,address,undefined and runs it briefly; docs/fuzzing.md: release run).
 * Seeds: the structured generator's blobs (tests/blobgen.py) and packed models. Mutations keep
 * the CRC valid: the fuzzer's mutators would otherwise stop at the CRC check every time; a
 * quarter of the mutations also set one tensor/layer field to a 2**k boundary value. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "blob_harness.h"

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static uint32_t rd32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Structure-aware step: one field of a tensor or layer record (located through the header's
 * table offsets) set to a boundary value, as the structured generator does (tests/blobgen.py).
 * Fields: (offset in record, width in bytes). */
static void set_boundary_field(uint8_t *b, size_t n, unsigned int seed)
{
    static const uint8_t tf[][2] = {{EQ_TENSOR_OFFSET, 4}, {EQ_TENSOR_NBYTES, 4}, {EQ_TENSOR_BITS, 1},
                                    {EQ_TENSOR_D0, 4},     {EQ_TENSOR_D1, 4},     {EQ_TENSOR_D2, 4},
                                    {EQ_TENSOR_D3, 4},     {EQ_TENSOR_AUX, 4}};
    static const uint8_t lf[][2] = {{EQ_LAYER_IN_H, 2},  {EQ_LAYER_IN_W, 2},     {EQ_LAYER_IN_C, 2},
                                    {EQ_LAYER_OUT_H, 2}, {EQ_LAYER_OUT_W, 2},    {EQ_LAYER_OUT_C, 2},
                                    {EQ_LAYER_KH, 1},    {EQ_LAYER_KW, 1},       {EQ_LAYER_STRIDE, 1},
                                    {EQ_LAYER_PAD, 1},   {EQ_LAYER_OUT_BITS, 1}, {EQ_LAYER_SHIFT, 1},
                                    {EQ_LAYER_T_LUT, 2}, {EQ_LAYER_T_THR, 2},    {EQ_LAYER_T_AUX, 2}};
    static const uint32_t vals[] = {0u, 1u, 2u, 7u, 8u, 31u, 32u, 33u, 255u, 256u, 0x7fffu, 0x8000u,
                                    0xffffu, 0x10000u, 0x3fffffffu, 0x40000000u, 0x7fffffffu,
                                    0x80000000u, 0xfffffff8u, 0xffffffffu};
    const int tensors = (seed >> 4) & 1u;
    uint32_t count, table, idx, off, v, i, rs = tensors ? EQ_TENSOR_SIZE_BYTES : EQ_LAYER_SIZE_BYTES;
    const uint8_t *f;
    if (n < EQ_HEADER_SIZE_BYTES) {
        return;
    }
    count = rd32le(b + (tensors ? EQ_HEADER_N_TENSORS : EQ_HEADER_N_LAYERS));
    table = rd32le(b + (tensors ? EQ_HEADER_TENSOR_TABLE_OFF : EQ_HEADER_LAYER_TABLE_OFF));
    if (count == 0u || count > 4096u) {
        return;
    }
    idx = (seed >> 5) % count;
    if (tensors) {
        f = tf[(seed >> 17) % (sizeof tf / sizeof tf[0])];
    } else {
        f = lf[(seed >> 17) % (sizeof lf / sizeof lf[0])];
    }
    if ((uint64_t)table + (uint64_t)idx * rs + rs > n) {
        return;
    }
    off = table + idx * rs + f[0];
    v = vals[(seed >> 24) % (sizeof vals / sizeof vals[0])] + ((seed >> 22) & 1u ? (uint32_t)-1 : 0u);
    for (i = 0; i < f[1]; i++) {
        b[off + i] = (uint8_t)(v >> (8u * i));
    }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    size = LLVMFuzzerMutate(data, size, max_size);
    if ((seed & 3u) == 1u) { /* a quarter of the time: a record field at a boundary value */
        set_boundary_field(data, size, seed);
    }
    /* every 8th input keeps a total_size that matches its length, the rest as mutated */
    if ((seed & 7u) == 0u && size >= EQ_HEADER_SIZE_BYTES && size <= 0xffffffffu) {
        uint32_t n = (uint32_t)size;
        memcpy(data + EQ_HEADER_TOTAL_SIZE, &n, 4);
    }
    eq_harness_reseal(data, size);
    return size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)eq_harness_one(data, size);
    return 0;
}
