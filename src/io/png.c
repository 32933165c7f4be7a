/* Owns PNG encoding: libpng does the format, this file the error handling (libpng reports
 * errors by longjmp) and the file. */
#include "io/png.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

/* Separate from the function whose locals setjmp would otherwise have to keep volatile. */
static int write_rows(png_structp png, png_infop info, FILE *f, const uint8_t *pixels, size_t width,
                      size_t height, size_t channels)
{
    if (setjmp(png_jmpbuf(png))) return -1;
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (size_t y = 0; y < height; y++)
        png_write_row(png, (png_const_bytep)(pixels + y * width * channels));
    png_write_end(png, NULL);
    return 0;
}

dpt_status_t dpt_png_write(const char *path, const uint8_t *pixels, size_t width, size_t height,
                           size_t channels)
{
    if (channels != 1 && channels != 3)
        return dpt_error(DPT_ERR_INVALID_ARG, "%s: PNG of %zu channels (1 or 3 expected)", path,
                         channels);
    if (width == 0 || height == 0 || width > 0x7fffffff || height > 0x7fffffff)
        return dpt_error(DPT_ERR_INVALID_ARG, "%s: PNG of %zu x %zu pixels", path, width, height);
    FILE *f = fopen(path, "wb");
    if (!f) return dpt_error(DPT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int bad = !png || !info || write_rows(png, info, f, pixels, width, height, channels) != 0;
    png_destroy_write_struct(&png, &info);
    bad |= fclose(f) != 0;
    if (bad) {
        remove(path);
        return dpt_error(DPT_ERR_IO, "%s: PNG write failed", path);
    }
    return DPT_OK;
}
