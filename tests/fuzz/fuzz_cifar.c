/* libFuzzer target: the CIFAR-10 loader through dpt_dataset_open("cifar10:DIR").
 *
 * Input: byte 0 picks which of the six batch files (data_batch_1..5.bin, test_batch.bin)
 * receives the rest of the input; the other five hold one valid record each, so a valid
 * fuzzed file loads and is gathered. */
#include <sys/stat.h>

#include "dptrain/dataset.h"
#include "fuzz_common.h"

#define RECORD 3073

static const char *names[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                               "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};

static void write_valid(const char *dir, int i)
{
    uint8_t rec[RECORD];
    for (size_t j = 0; j < RECORD; j++)
        rec[j] = (uint8_t)(j * 7 + (size_t)i);
    rec[0] = (uint8_t)i; /* label < 10 */
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, names[i]);
    fz_write(p, rec, RECORD);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int which = data[0] % 6;
    char dir[512], p[600], spec[600];
    fz_path(dir, sizeof dir, "cifar");
    static int made;
    if (!made && mkdir(dir, 0700) != 0) abort();
    made = 1;
    for (int i = 0; i < 6; i++)
        write_valid(dir, i);
    snprintf(p, sizeof p, "%s/%s", dir, names[which]);
    fz_write(p, data + 1, size - 1);
    snprintf(spec, sizeof spec, "cifar10:%s", dir);

    dpt_data_options_t opt = dpt_data_options_default();
    opt.max_bytes = (size_t)64 << 20;
    dpt_dataset_t *tr = NULL, *te = NULL;
    dpt_status_t s = dpt_dataset_open(spec, &opt, &tr, &te);
    fz_check_status(s);
    if (s == DPT_OK) {
        if (!te || dpt_dataset_features(tr) != 3072 || dpt_dataset_classes(tr) != 10) abort();
        size_t n = dpt_dataset_count(tr);
        fz_check_status(dpt_dataset_fit_normalization(tr));
        fz_check_status(dpt_dataset_copy_normalization(te, tr));
        float x[3072];
        int32_t y;
        uint32_t last = (uint32_t)(n - 1);
        dpt_dataset_gather(tr, &last, 1, x, &y);
        if (y < 0 || y >= 10) abort();
        dpt_dataset_free(tr);
        dpt_dataset_free(te);
    }
    return 0;
}
