/* Owns the progress display. */
#include "io/progress.h"

#include <omp.h>
#include <unistd.h>

void dpt_progress_init(dpt_progress_t *p, FILE *out, bool quiet, size_t epochs)
{
    p->out = out;
    p->quiet = quiet;
    p->tty = isatty(fileno(out));
    p->epochs = epochs;
    p->epoch = 0;
}

void dpt_progress_epoch_begin(dpt_progress_t *p, size_t epoch)
{
    p->epoch = epoch;
    p->start = omp_get_wtime();
    p->last_draw = 0;
}

void dpt_progress_update(void *user, size_t batches_done, size_t batches_total, size_t samples_done,
                         double running_loss)
{
    dpt_progress_t *p = user;
    if (p->quiet || !p->tty) return;
    double now = omp_get_wtime();
    if (batches_done != batches_total && now - p->last_draw < 0.1) return;
    p->last_draw = now;
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)samples_done / elapsed : 0;
    double eta = batches_done ? elapsed * (double)(batches_total - batches_done) / batches_done : 0;
    enum { WIDTH = 24 };
    char bar[WIDTH + 1];
    size_t fill = batches_total ? batches_done * WIDTH / batches_total : 0;
    for (size_t i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(p->out,
            "\r\033[Kepoch %zu/%zu [%s] %zu/%zu batches  %.0f samples/s  loss %.4f  ETA %.1fs",
            p->epoch, p->epochs, bar, batches_done, batches_total, rate, running_loss, eta);
    fflush(p->out);
}

void dpt_progress_epoch_end(dpt_progress_t *p, const char *summary)
{
    if (p->quiet) return;
    if (p->tty) fputs("\r\033[K", p->out);
    fprintf(p->out, "%s\n", summary);
    fflush(p->out);
}
