/* dptrain eval: loss, accuracy and per-class accuracy of a checkpoint on a dataset, and its
 * confusion matrix as CSV. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/model_data.h"

static const char *const usage =
    "usage: dptrain eval --checkpoint FILE [FLAGS]\n"
    "Evaluates a trained model: prints loss, accuracy and per-class accuracy, and writes the\n"
    "confusion matrix (rows: true class, columns: predicted class) as CSV.\n" DPT_MODEL_DATA_HELP
    "  --out FILE            confusion-matrix CSV (default confusion.csv)\n"
    "  --help                this text\n";

static dpt_status_t write_confusion(const char *path, const uint64_t *cm, size_t k)
{
    FILE *f = fopen(path, "w");
    if (!f) return dpt_error(DPT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    fprintf(f, "true_class");
    for (size_t j = 0; j < k; j++)
        fprintf(f, ",predicted_%zu", j);
    fputc('\n', f);
    for (size_t i = 0; i < k; i++) {
        fprintf(f, "%zu", i);
        for (size_t j = 0; j < k; j++)
            fprintf(f, ",%llu", (unsigned long long)cm[i * k + j]);
        fputc('\n', f);
    }
    if (ferror(f) | (fclose(f) != 0))
        return dpt_error(DPT_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return DPT_OK;
}

int dpt_cmd_eval(int argc, char **argv)
{
    dpt_model_data_args_t a = {0};
    int rc = dpt_model_data_parse("eval", usage, argc, argv, &a);
    if (rc >= 0) return rc;
    dpt_inference_t *inf = NULL;
    dpt_dataset_t *ds = NULL, *other = NULL;
    rc = dpt_model_data_open("eval", &a, &inf, &ds, &other);
    size_t k = inf ? dpt_model_classes(dpt_inference_model(inf)) : 0;
    uint64_t *cm = rc < 0 ? calloc(k * k, sizeof *cm) : NULL;
    double loss, acc;
    dpt_status_t s = DPT_OK;
    if (rc < 0 && !cm) s = dpt_error(DPT_ERR_NOMEM, "out of memory");
    if (rc < 0 && s == DPT_OK) s = dpt_inference_run(inf, ds, &loss, &acc, cm, NULL);
    if (rc < 0 && s == DPT_OK) {
        printf("data = %s\nsamples = %zu\nloss = %.6f\naccuracy = %.6f\n", dpt_dataset_describe(ds),
               dpt_dataset_count(ds), loss, acc);
        for (size_t i = 0; i < k; i++) {
            uint64_t row = 0;
            for (size_t j = 0; j < k; j++)
                row += cm[i * k + j];
            if (row)
                printf("class %zu accuracy = %.6f (%llu samples)\n", i,
                       (double)cm[i * k + i] / (double)row, (unsigned long long)row);
            else
                printf("class %zu accuracy = - (0 samples)\n", i);
        }
        const char *out = a.out ? a.out : "confusion.csv";
        s = write_confusion(out, cm, k);
        if (s == DPT_OK) printf("confusion matrix = %s\n", out);
    }
    if (rc < 0) rc = s == DPT_OK ? 0 : dpt_cli_fail(s);
    free(cm);
    dpt_dataset_free(ds), dpt_dataset_free(other);
    dpt_inference_free(inf);
    return rc;
}
