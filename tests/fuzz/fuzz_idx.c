/* libFuzzer target: the IDX loader (raw and gzip) through dpt_dataset_open("idx:IMG,LBL").
 *
 * Input: byte 0 = mode, bytes 1..2 = split point (little-endian, modulo the rest's length),
 * then the payload. Mode bit 0: images and labels are the same file (the whole payload);
 * otherwise images = payload[0, split) and labels = the rest. Bits 1 and 2 gzip the image and
 * label file in the harness, so the fuzzer can explore the IDX structure behind a valid gzip
 * stream as well as raw (a gzip payload the fuzzer writes itself is also detected by content).
 * A successful load is exercised: split, normalisation fit and a gather of every row. */
#include <zlib.h>

#include "dptrain/dataset.h"
#include "fuzz_common.h"

/* Writes data gzip-compressed (level 1: fast; the content is what matters). */
static void write_gz(const char *path, const uint8_t *data, size_t n)
{
    gzFile g = gzopen(path, "wb1");
    if (!g) abort();
    if (n && gzwrite(g, data, (unsigned)n) != (int)n) abort();
    if (gzclose(g) != Z_OK) abort();
}

static void exercise(dpt_dataset_t *ds)
{
    size_t n = dpt_dataset_count(ds), f = dpt_dataset_features(ds);
    size_t k = n < 64 ? n : 64;
    if (dpt_dataset_classes(ds) == 0) abort();
    dpt_dataset_t *tr = NULL, *va = NULL;
    if (n >= 2 && dpt_dataset_split(ds, 0.5, 1, &tr, &va) == DPT_OK) {
        fz_check_status(dpt_dataset_fit_normalization(tr));
        dpt_dataset_free(tr);
        dpt_dataset_free(va);
    }
    fz_check_status(dpt_dataset_fit_normalization(ds));
    float *x = malloc((k ? k : 1) * f * sizeof *x);
    uint32_t idx[64];
    int32_t y[64];
    if (!x) abort();
    for (size_t i = 0; i < k; i++)
        idx[i] = (uint32_t)(n - 1 - i);
    dpt_dataset_gather(ds, idx, k, x, y);
    for (size_t i = 0; i < k; i++)
        if (y[i] < 0 || (size_t)y[i] >= dpt_dataset_classes(ds)) abort();
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    uint8_t mode = data[0];
    size_t split = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3, size -= 3;
    split = size ? split % (size + 1) : 0;
    char img[512], lbl[512], spec[1100];
    fz_path(img, sizeof img, "images");
    fz_path(lbl, sizeof lbl, "labels");
    const uint8_t *ip = data, *lp = data + split;
    size_t in = split, ln = size - split;
    if (mode & 1) ip = lp = data, in = ln = size;
    if (mode & 2)
        write_gz(img, ip, in);
    else
        fz_write(img, ip, in);
    if (mode & 4)
        write_gz(lbl, lp, ln);
    else
        fz_write(lbl, lp, ln);
    if (mode & 1 && !(mode & 6))
        snprintf(spec, sizeof spec, "idx:%s,%s", img, img);
    else
        snprintf(spec, sizeof spec, "idx:%s,%s", img, lbl);

    dpt_data_options_t opt = dpt_data_options_default();
    opt.max_bytes = (size_t)64 << 20; /* the API's own cap, kept small for the fuzzer */
    dpt_dataset_t *tr = NULL, *te = NULL;
    dpt_status_t s = dpt_dataset_open(spec, &opt, &tr, &te);
    fz_check_status(s);
    if (s == DPT_OK) {
        if (te) abort(); /* idx: has no test part */
        exercise(tr);
        dpt_dataset_free(tr);
    }
    return 0;
}
