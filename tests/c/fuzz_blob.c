/* libFuzzer target over the blob loader AND the executor (tests/test_blob_fuzz.py builds it with
 * clang -fsanitize=fuzzer,address,undefined and runs it briefly; docs/fuzzing.md: release run).
 * Seeds: the structured generator's blobs (tests/blobgen.py) and packed models. Mutations keep
 * the CRC valid: the fuzzer's mutators would otherwise stop at the CRC check every time. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "blob_harness.h"

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    size = LLVMFuzzerMutate(data, size, max_size);
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
