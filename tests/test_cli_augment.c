/* End-to-end tests of augmentation through the CLI: bad specs refused before any data is
 * read, the spec in config.txt and the checkpoint with resume refusing another one unless
 * overridden, the preview PNG (grey and RGB), and eval --tta. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

TestSuite(cli_augment, .fini = t_remove_scratch, .timeout = 300);

#define SMALL                                                                                      \
    "--data synthetic:256,1,12,12,10 --model conv:4:3,relu,maxpool:2,dense:10 "                    \
    "--batch-size 32 --threads 2 --quiet"

Test(cli_augment, a_bad_spec_is_refused_before_any_data_is_read)
{
    char *out, args[1024];
    /* The data directory does not exist: the augment error must come first. */
    snprintf(args, sizeof args, "train --data mnist:/nonexistent/dir --augment blur --out %s",
             t_scratch_dir("bad"));
    cr_assert_eq(t_run_dptrain(args, &out), 2, "%s", out);
    cr_assert_not_null(strstr(out, "unknown --augment 'blur'; valid names: crop, hflip"), "%s",
                       out);
    cr_assert_null(strstr(out, "nonexistent"), "%s", out);
    free(out);
    snprintf(args, sizeof args,
             "train --data mnist:/nonexistent/dir --augment crop:pad=30 --out %s",
             t_scratch_dir("bad2"));
    cr_assert_eq(t_run_dptrain(args, &out), 2, "%s", out);
    cr_assert_not_null(strstr(out, "pad 30 is larger than the 28x28 image"), "%s", out);
    free(out);
    cr_assert_eq(t_run_dptrain("augment --data mnist:/nonexistent/dir --augment "
                               "saturation:factor=0.2 --out /nonexistent/x.png",
                               &out),
                 2, "%s", out);
    cr_assert_not_null(strstr(out, "needs a colour (3-channel) image"), "%s", out);
    free(out);
}

Test(cli_augment, resume_with_another_spec_needs_the_override)
{
    char *dir = t_scratch_dir("run"), *out, args[1024];
    snprintf(args, sizeof args, "train " SMALL " --epochs 1 --augment crop:pad=2+hflip --out %s",
             dir);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    char *cfg_path = t_path(dir, "config.txt");
    char *cfg = t_read_file(cfg_path, NULL);
    cr_assert_not_null(strstr(cfg, "augment = crop:pad=2,mode=zero,p=1+hflip:p=0.5\n"), "%s", cfg);
    free(cfg);
    /* The same spec (replayed from the checkpoint) resumes. */
    snprintf(args, sizeof args, "train --resume %s --epochs 2", dir);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "train --resume %s --epochs 3 --augment vflip", dir);
    cr_assert_eq(t_run_dptrain(args, &out), 2, "%s", out);
    cr_assert_not_null(strstr(out, "the run was trained with --augment "
                                   "'crop:pad=2,mode=zero,p=1+hflip:p=0.5'; resuming with "
                                   "'vflip:p=0.5'"),
                       "%s", out);
    cr_assert_not_null(strstr(out, "--augment-override"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "train --resume %s --epochs 3 --augment vflip --augment-override",
             dir);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    cfg = t_read_file(cfg_path, NULL);
    cr_assert_not_null(strstr(cfg, "augment = vflip:p=0.5\n"), "%s", cfg);
    free(cfg), free(cfg_path);
}

/* metrics.csv of dir without its timing columns: the first 8 fields of each line. */
static char *trained_rows(const char *dir)
{
    char *path = t_path(dir, "metrics.csv"), *text = t_read_file(path, NULL);
    size_t len = 0;
    char *out = calloc(strlen(text) + 1, 1);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        int commas = 0;
        for (char *c = line; *c && commas < 8; c++) {
            commas += *c == ',';
            if (commas < 8) out[len++] = *c;
        }
        out[len++] = '\n';
    }
    free(path), free(text);
    return out;
}

/* Augmented training paused after epoch 1 and resumed (on another thread count) ends with the
 * bits of an uninterrupted run: the draws are keyed by epoch and sample, not by a stream. */
Test(cli_augment, a_resumed_augmented_run_equals_an_uninterrupted_one)
{
    char *a = t_scratch_dir("whole"), *b = t_scratch_dir("paused"), *out, args[1024];
    const char *aug = "--augment crop:pad=2+hflip+rotate:degrees=15+erase:p=0.5 --epochs 3";
    snprintf(args, sizeof args, "train " SMALL " %s --out %s", aug, a);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "train " SMALL " %s --pause-after-epoch 1 --out %s", aug, b);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "train --resume %s --threads 1", b);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    char *x = trained_rows(a), *y = trained_rows(b);
    cr_assert_str_eq(x, y);
    cr_assert_not_null(strstr(x, "\n3,"), "%s", x);
    free(x), free(y);
}

/* Width, height and colour type from a PNG's IHDR. */
static void png_header(const char *path, unsigned *w, unsigned *h, int *color)
{
    size_t n;
    unsigned char *b = (unsigned char *)t_read_file(path, &n);
    cr_assert(n > 33 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(b + 12, "IHDR", 4) == 0);
    *w = (unsigned)b[16] << 24 | (unsigned)b[17] << 16 | (unsigned)b[18] << 8 | b[19];
    *h = (unsigned)b[20] << 24 | (unsigned)b[21] << 16 | (unsigned)b[22] << 8 | b[23];
    *color = b[25];
    free(b);
}

Test(cli_augment, the_preview_grid_is_a_png_in_the_images_colours)
{
    char *dir = t_scratch_dir("png"), *out, args[1024];
    char *grey = t_path(dir, "grey.png"), *rgb = t_path(dir, "rgb.png");
    snprintf(args, sizeof args,
             "augment --data synthetic:20,1,12,12,10 --augment crop:pad=2+hflip+rotate:10 "
             "--samples 3 --views 4 --scale 2 --out %s",
             grey);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    unsigned w, h;
    int color;
    png_header(grey, &w, &h, &color);
    /* 5 cells of 24 pixels, gaps 6 + 3 x 2; 3 rows of 24, gaps 2 x 2. */
    cr_assert_eq(w, 5 * 24 + 6 + 3 * 2);
    cr_assert_eq(h, 3 * 24 + 2 * 2);
    cr_assert_eq(color, 0, "grey images make a greyscale PNG");
    snprintf(args, sizeof args,
             "augment --data synthetic:20,3,8,8,10 --augment saturation:0.5+mixup --samples 2 "
             "--out %s",
             rgb);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    png_header(rgb, &w, &h, &color);
    cr_assert_eq(color, 2, "colour images make an RGB PNG");
    cr_assert_eq(h, 2 * 8 * 12 + 2, "scaled up to 96 pixels: %u", h);
    free(grey), free(rgb);
}

Test(cli_augment, eval_and_predict_take_tta)
{
    char *dir = t_scratch_dir("tta"), *out, args[1024];
    snprintf(args, sizeof args, "train " SMALL " --epochs 1 --out %s", dir);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    char *ck = t_path(dir, "checkpoint.dpt"), *cm = t_path(dir, "cm.csv");
    snprintf(args, sizeof args,
             "eval --checkpoint %s --data synthetic:256,1,12,12,10 --tta hflip+crop:pad=1 "
             "--out %s",
             ck, cm);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    cr_assert_not_null(strstr(out, "accuracy = "), "%s", out);
    free(out);
    snprintf(args, sizeof args,
             "predict --checkpoint %s --data synthetic:256,1,12,12,10 --tta rotate --out %s", ck,
             cm);
    cr_assert_eq(t_run_dptrain(args, &out), 2, "%s", out);
    cr_assert_not_null(strstr(out, "unknown --tta 'rotate'; valid names: hflip, vflip, crop"), "%s",
                       out);
    free(out), free(ck), free(cm);
}
