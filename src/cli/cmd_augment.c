/* dptrain augment: a PNG grid of augmented views, so that a person can see what --augment
 * does before training with it. Row i is training sample i: the original, then the views of
 * epochs E, E+1, ... (the same draws a training run with this seed makes in those epochs). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "dptrain/augment.h"
#include "io/png.h"

static const char *const usage =
    "usage: dptrain augment --augment SPEC --out FILE.png [FLAGS]\n"
    "Draws a grid of augmented training images: each row one sample (the first --samples of\n"
    "the training set), the original first, then --views augmented views, one per epoch from\n"
    "--epoch on, in the image's own colours (grey or RGB), each pixel a --scale x --scale\n"
    "block. The views are the ones `dptrain train --augment SPEC --seed S` trains on in\n"
    "those epochs (without --val-split / --train-fraction, which renumber the samples).\n\n"
    "  --data SPEC           image dataset as for train (default fashion-mnist)\n"
    "  --augment SPEC        the augmentation (see 'dptrain train --help'; required)\n"
    "  --samples N           rows (default 8)\n"
    "  --views N             augmented views per row (default 7)\n"
    "  --seed S              the training seed (default 1)\n"
    "  --epoch E             first epoch shown, 1-based as in metrics.csv (default 1)\n"
    "  --scale K             pixels per image pixel (default: images at least 96 pixels)\n"
    "  --out FILE            PNG to write (required)\n"
    "  --help                this text\n";

typedef struct {
    const char *data_spec, *spec, *out;
    dpt_data_options_t data;
    size_t samples, views, scale;
    uint64_t seed, epoch;
} args_t;

static int parse(args_t *a, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        int data = dpt_cli_data_flag("augment", argc, argv, &i, &a->data_spec, &a->data);
        if (data < 0) return DPT_EXIT_USAGE;
        if (data) continue;
        if (strncmp(f, "--", 2) != 0)
            return dpt_cli_usage_error("augment", "unexpected argument '%s'", f);
        if (!(v = dpt_cli_value("augment", argc, argv, &i))) return DPT_EXIT_USAGE;
        bool ok = true;
        if (!strcmp(f, "--augment"))
            a->spec = v;
        else if (!strcmp(f, "--out"))
            a->out = v;
        else if (!strcmp(f, "--samples"))
            ok = dpt_cli_parse_size("augment", f, v, 1, 256, &a->samples);
        else if (!strcmp(f, "--views"))
            ok = dpt_cli_parse_size("augment", f, v, 1, 64, &a->views);
        else if (!strcmp(f, "--scale"))
            ok = dpt_cli_parse_size("augment", f, v, 1, 32, &a->scale);
        else if (!strcmp(f, "--seed"))
            ok = dpt_cli_parse_u64("augment", f, v, &a->seed);
        else if (!strcmp(f, "--epoch")) {
            size_t e;
            ok = dpt_cli_parse_size("augment", f, v, 1, 1000000, &e);
            a->epoch = e;
        } else
            return dpt_cli_usage_error("augment", "unknown flag '%s'", f);
        if (!ok) return DPT_EXIT_USAGE;
    }
    if (!a->spec) return dpt_cli_usage_error("augment", "--augment SPEC is required");
    if (!a->out) return dpt_cli_usage_error("augment", "--out FILE.png is required");
    return -1;
}

#define GAP 2       /* pixels between cells */
#define GAP_FIRST 6 /* after the original */

/* Draws the grid (grid_w pixels wide, c bytes a pixel, background already set): column 0
 * through `none` (an op that never fires: the original pixels), column j > 0 through aug in
 * epoch E + j - 1 (0-based inside: the trainer keys epoch 1 as 0). */
static void draw(const args_t *a, const dpt_augment_t *aug, const dpt_augment_t *none,
                 const dpt_dataset_t *ds, size_t c, size_t h, size_t w, uint8_t *grid,
                 size_t grid_w, float *img, float *scratch)
{
    const size_t k = a->scale, cw = w * k, chh = h * k;
    for (size_t r = 0; r < a->samples; r++)
        for (size_t col = 0; col <= a->views; col++) {
            uint64_t epoch = a->epoch - 1 + (col ? col - 1 : 0);
            dpt_augment_view(col ? aug : none, ds, r, a->seed, epoch, img, scratch, NULL, NULL);
            size_t x0 = col == 0 ? 0 : cw + GAP_FIRST + (col - 1) * (cw + GAP);
            size_t y0 = r * (chh + GAP);
            for (size_t y = 0; y < chh; y++)
                for (size_t x = 0; x < cw; x++)
                    for (size_t ch = 0; ch < c; ch++) {
                        float v = img[(ch * h + y / k) * w + x / k];
                        v = v < 0 ? 0 : v > 255 ? 255 : v;
                        grid[((y0 + y) * grid_w + x0 + x) * c + ch] = (uint8_t)lrintf(v);
                    }
        }
}

int dpt_cmd_augment(int argc, char **argv)
{
    args_t a = {.data_spec = "fashion-mnist",
                .data = dpt_data_options_default(),
                .samples = 8,
                .views = 7,
                .seed = 1,
                .epoch = 1};
    int rc = parse(&a, argc, argv);
    if (rc >= 0) return rc;
    /* The spec is checked before any data is read. */
    size_t c = 0, h = 0, w = 0, classes;
    if (!dpt_dataset_spec_shape(a.data_spec, &c, &h, &w, &classes)) c = h = w = 0;
    dpt_augment_t *aug = NULL, *none = NULL;
    dpt_status_t s = dpt_augment_create(a.spec, c, h, w, &aug);
    dpt_augment_free(aug);
    aug = NULL;
    if (s != DPT_OK) return dpt_cli_fail(s);
    dpt_dataset_t *train = NULL, *test = NULL;
    s = dpt_dataset_open(a.data_spec, &a.data, &train, &test);
    dpt_dataset_free(test);
    if (s == DPT_OK) {
        dpt_dataset_shape(train, &c, &h, &w);
        s = dpt_augment_create(a.spec, c, h, w, &aug);
    }
    if (s == DPT_OK) s = dpt_augment_check_data(aug, train);
    if (s == DPT_OK && (c != 1 && c != 3))
        s = dpt_error(DPT_ERR_INVALID_ARG,
                      "the grid shows grey or RGB images; these have %zu "
                      "channels",
                      c);
    if (s == DPT_OK && a.samples > dpt_dataset_count(train)) a.samples = dpt_dataset_count(train);
    /* The original column: the same pixels through an op that never fires. */
    if (s == DPT_OK) s = dpt_augment_create("hflip:p=0", c, h, w, &none);
    if (s != DPT_OK) {
        dpt_augment_free(aug);
        dpt_dataset_free(train);
        return dpt_cli_fail(s);
    }
    if (!a.scale) a.scale = h >= 96 ? 1 : (96 + h - 1) / h;
    const size_t cw = w * a.scale, chh = h * a.scale;
    const size_t grid_w = cw + GAP_FIRST + a.views * cw + (a.views - 1) * GAP;
    const size_t grid_h = a.samples * chh + (a.samples - 1) * GAP;
    uint8_t *grid = malloc(grid_w * grid_h * c);
    float *img = malloc(c * h * w * sizeof *img);
    size_t sf = dpt_augment_scratch_floats(aug);
    float *scratch = malloc(sf * sizeof *scratch);
    if (!grid || !img || !scratch)
        s = dpt_error(DPT_ERR_NOMEM, "out of memory for a %zu x %zu grid", grid_w, grid_h);
    if (s == DPT_OK) {
        memset(grid, 255, grid_w * grid_h * c); /* white gaps */
        draw(&a, aug, none, train, c, h, w, grid, grid_w, img, scratch);
        s = dpt_png_write(a.out, grid, grid_w, grid_h, c);
    }
    if (s == DPT_OK)
        printf("wrote %s: %zu samples x (original + %zu views), %zux%zu pixels, %zux scale; "
               "augment = %s, seed %llu, epochs %llu..%llu\n",
               a.out, a.samples, a.views, grid_w, grid_h, a.scale, dpt_augment_describe(aug),
               (unsigned long long)a.seed, (unsigned long long)a.epoch,
               (unsigned long long)(a.epoch + a.views - 1));
    free(grid), free(img), free(scratch);
    dpt_augment_free(aug), dpt_augment_free(none);
    dpt_dataset_free(train);
    return s == DPT_OK ? 0 : dpt_cli_fail(s);
}
