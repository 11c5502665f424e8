/* The flash model region (boards/NAME/board.toml [memory].model), placed by the linker script. */
#include <stdint.h>

#include "eq_board.h"
#include "eq_hal.h"

const uint8_t *eq_hal_flash_model(uint32_t *size)
{
    *size = EQ_MODEL_REGION_SIZE;
    return (const uint8_t *)(uintptr_t)EQ_MODEL_REGION_ADDR;
}
