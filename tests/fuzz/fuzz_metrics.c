/* libFuzzer target: the metrics CSV reader (dpt_metrics_read, used by plot and resume) and
 * the writer's resume path, which reads the same files.
 *
 * Input: byte 0 = resume epoch (0..127; 255 skips the resume), then the file's bytes. A file
 * that reads is walked cell by cell; then a copy is opened for resume with its own header. */
#include "dptrain/metrics.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int resume = data[0] == 255 ? -1 : data[0] % 128;
    char path[512], copy[512];
    fz_path(path, sizeof path, "metrics.csv");
    fz_path(copy, sizeof copy, "resume.csv");
    fz_write(path, data + 1, size - 1);

    dpt_metrics_table_t *t = NULL;
    dpt_status_t s = dpt_metrics_read(path, &t);
    fz_check_status(s);
    if (s != DPT_OK) {
        if (t) abort();
        return 0;
    }
    size_t cols = dpt_metrics_table_cols(t), rows = dpt_metrics_table_rows(t);
    if (cols == 0) abort();
    size_t sum = 0; /* every field is a readable string, within the file's size */
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            sum += strlen(dpt_metrics_table_field(t, r, c));
    if (sum > size) abort();
    const char **names = malloc(cols * sizeof *names);
    if (!names) abort();
    int usable = 1;
    for (size_t c = 0; c < cols; c++) {
        names[c] = dpt_metrics_table_column(t, c);
        if (dpt_metrics_table_find(t, names[c]) > c) abort();
        if (!names[c][0]) usable = 0;
    }
    if (resume >= 0 && usable) {
        fz_write(copy, data + 1, size - 1);
        dpt_metrics_writer_t *w = NULL;
        s = dpt_metrics_open(copy, names, cols, resume, &w);
        fz_check_status(s);
        if (s == DPT_OK) {
            dpt_metric_value_t *v = calloc(cols, sizeof *v);
            if (!v) abort();
            v[0].kind = DPT_MV_INT, v[0].i = resume + 1;
            fz_check_status(dpt_metrics_write_row(w, v));
            free(v);
            dpt_metrics_close(w);
            /* What the writer left must read back. */
            dpt_metrics_table_t *t2 = NULL;
            s = dpt_metrics_read(copy, &t2);
            if (s != DPT_OK) {
                fprintf(stderr, "resumed file does not read back: %s\n", dpt_last_error());
                abort();
            }
            if (dpt_metrics_table_cols(t2) != cols) abort();
            dpt_metrics_table_free(t2);
        }
    }
    free(names);
    dpt_metrics_table_free(t);
    return 0;
}
