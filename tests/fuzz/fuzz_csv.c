/* libFuzzer target: the CSV table loader through dpt_dataset_open("csv:FILE").
 *
 * Input: byte 0 = options (bit 0: header row; bits 1-2: delimiter , ; TAB space; bits 3-4:
 * label column -1, 0, 1, 2), then the file's bytes. A table that loads is split, normalised
 * and gathered whole. */
#include "dptrain/dataset.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const char delims[4] = {',', ';', '\t', ' '};
    static const int labels[4] = {-1, 0, 1, 2};
    dpt_data_options_t opt = dpt_data_options_default();
    opt.csv_header = data[0] & 1;
    opt.csv_delimiter = delims[(data[0] >> 1) & 3];
    opt.csv_label_column = labels[(data[0] >> 3) & 3];
    opt.max_bytes = (size_t)64 << 20;
    char path[512], spec[600];
    fz_path(path, sizeof path, "table.csv");
    fz_write(path, data + 1, size - 1);
    snprintf(spec, sizeof spec, "csv:%s", path);

    dpt_dataset_t *ds = NULL, *te = NULL;
    dpt_status_t s = dpt_dataset_open(spec, &opt, &ds, &te);
    fz_check_status(s);
    if (s != DPT_OK) return 0;
    if (te) abort();
    size_t n = dpt_dataset_count(ds), f = dpt_dataset_features(ds);
    if (n == 0 || f == 0 || dpt_dataset_classes(ds) == 0) abort();
    dpt_dataset_t *tr = NULL, *va = NULL;
    if (n >= 2 && dpt_dataset_split(ds, 0.25, 3, &tr, &va) == DPT_OK) {
        fz_check_status(dpt_dataset_fit_normalization(tr));
        fz_check_status(dpt_dataset_copy_normalization(va, tr));
        dpt_dataset_free(tr);
        dpt_dataset_free(va);
    }
    fz_check_status(dpt_dataset_fit_normalization(ds));
    float *x = malloc(n * f * sizeof *x);
    uint32_t *idx = malloc(n * sizeof *idx);
    int32_t *y = malloc(n * sizeof *y);
    if (!x || !idx || !y) abort();
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    dpt_dataset_gather(ds, idx, n, x, y);
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || (size_t)y[i] >= dpt_dataset_classes(ds)) abort();
    free(x), free(idx), free(y);
    dpt_dataset_free(ds);
    return 0;
}
