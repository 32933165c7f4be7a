/* PNG output through libpng (Debian libpng-dev): the augmentation preview grid. */
#ifndef DPT_IO_PNG_H
#define DPT_IO_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/status.h"

/* Writes a width x height image of `channels` (1: grey, 3: RGB) 8-bit samples, interleaved
 * row by row (pixels[(y * width + x) * channels + k]), to path atomically enough for a
 * preview (a failed write leaves no file). */
dpt_status_t dpt_png_write(const char *path, const uint8_t *pixels, size_t width, size_t height,
                           size_t channels);

#endif
