/* dptrain predict: one CSV row per input with the predicted class and class probabilities. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/model_data.h"

static const char *const usage =
    "usage: dptrain predict --checkpoint FILE [FLAGS]\n"
    "Runs a trained model on every sample and writes index,predicted,prob_0,...,prob_K-1\n"
    "(softmax probabilities, in dataset order) as CSV.\n" DPT_MODEL_DATA_HELP
    "  --out FILE            predictions CSV (default predictions.csv)\n"
    "  --help                this text\n";

static dpt_status_t write_predictions(const char *path, const float *probs, size_t n, size_t k)
{
    FILE *f = fopen(path, "w");
    if (!f) return dpt_error(DPT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    fprintf(f, "index,predicted");
    for (size_t j = 0; j < k; j++)
        fprintf(f, ",prob_%zu", j);
    fputc('\n', f);
    for (size_t i = 0; i < n; i++) {
        const float *p = probs + i * k;
        size_t arg = 0;
        for (size_t j = 1; j < k; j++)
            if (p[j] > p[arg]) arg = j;
        fprintf(f, "%zu,%zu", i, arg);
        for (size_t j = 0; j < k; j++)
            fprintf(f, ",%.9g", p[j]);
        fputc('\n', f);
    }
    if (ferror(f) | (fclose(f) != 0))
        return dpt_error(DPT_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return DPT_OK;
}

int dpt_cmd_predict(int argc, char **argv)
{
    dpt_model_data_args_t a = {0};
    int rc = dpt_model_data_parse("predict", usage, argc, argv, &a);
    if (rc >= 0) return rc;
    dpt_inference_t *inf = NULL;
    dpt_dataset_t *ds = NULL, *other = NULL;
    rc = dpt_model_data_open("predict", &a, &inf, &ds, &other);
    dpt_status_t s = DPT_OK;
    float *probs = NULL;
    if (rc < 0) {
        size_t n = dpt_dataset_count(ds), k = dpt_model_classes(dpt_inference_model(inf));
        probs = malloc(n * k * sizeof *probs);
        s = probs ? dpt_inference_run(inf, ds, NULL, NULL, NULL, probs)
                  : dpt_error(DPT_ERR_NOMEM, "out of memory for %zu x %zu probabilities", n, k);
        const char *out = a.out ? a.out : "predictions.csv";
        if (s == DPT_OK) s = write_predictions(out, probs, n, k);
        if (s == DPT_OK) printf("wrote %zu predictions to %s\n", n, out);
        rc = s == DPT_OK ? 0 : dpt_cli_fail(s);
    }
    free(probs);
    dpt_dataset_free(ds), dpt_dataset_free(other);
    dpt_inference_free(inf);
    return rc;
}
