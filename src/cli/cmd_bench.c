/* dptrain bench: strong and weak thread scaling and a batch-size sweep; a table on the
 * terminal, bench.csv and PNG plots in the output directory. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "dptrain/bench.h"
#include "dptrain/model.h"
#include "dptrain/plot.h"
#include "kernels/gemm.h"

static const char *const usage =
    "usage: dptrain bench [FLAGS]\n"
    "Measures training throughput of a model: strong scaling (fixed global batch, threads\n"
    "1..N), weak scaling (fixed batch per thread) and a batch-size sweep. Each row is the\n"
    "median of --reps timed runs of --steps steps, each on a fresh trainer after --warmup\n"
    "steps and interleaved with the other rows of its mode (run 1 of every row, then run 2,\n"
    "...), with speed-up (median of same-run ratios; the CSV has their range) and parallel\n"
    "efficiency against 1 thread, the share of compute / batch assembly / fused\n"
    "reduce+optimizer in a step, GFLOP/s per thread against a single-thread BLIS sgemm of the\n"
    "shape of the model's largest GEMM at the row's batch (for the MLP its first layer, e.g.\n"
    "512x784x256) measured in the same run (the\n"
    "roofline), and peak memory.\n\n"
    "  --data SPEC          dataset (default fashion-mnist; synthetic:N[,C,H,W,K] needs no files)\n"
    "  --synthetic N        shorthand for --data synthetic:N\n"
    "  --model SPEC         model (default " DPT_DEFAULT_MODEL ")\n"
    "  --optimizer SPEC     optimizer (default sgd:momentum=0.9)\n"
    "  --augment SPEC       augment the training batches as train --augment does (its cost\n"
    "                       shows in the assembly share; default none)\n"
    "  --threads LIST       thread counts for scaling, e.g. 1,2,4,8,16 (default 1..all cores)\n"
    "  --batch N            global batch of strong scaling (default 512)\n"
    "  --weak-batch N       per-thread batch of weak scaling (default 128)\n"
    "  --batches LIST       batch sizes of the sweep (default 64,128,256,512,1024,2048)\n"
    "  --sweep-threads N    threads of the sweep (default all cores)\n"
    "  --modes LIST         any of strong,weak,batch,layers (default all four; layers:\n"
    "                       each node's forward and backward time, share of the step and\n"
    "                       GFLOP/s against a same-run sgemm of its GEMM shape, one\n"
    "                       thread at --batch; DIR/layers.csv)\n"
    "  --micro-batch N      rows per micro-shard (default 0 = auto, as train)\n"
    "  --reps N             timed repetitions per row (default 5)\n"
    "  --steps N            steps per repetition (default 100)\n"
    "  --warmup N           untimed steps before timing (default 20)\n"
    "  --out DIR            write DIR/bench.csv and, with --plot, DIR/scaling.png and\n"
    "                       DIR/batch.png (default bench-out)\n"
    "  --plot               draw the plots with gnuplot\n"
    "  --help               this text\n";

static bool parse_list(const char *flag, const char *text, size_t *out, size_t *n)
{
    *n = 0;
    char buf[512];
    if (strlen(text) >= sizeof buf)
        return dpt_cli_usage_error("bench", "%s: list too long", flag), false;
    snprintf(buf, sizeof buf, "%s", text);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == DPT_BENCH_MAX_LIST) {
            dpt_cli_usage_error("bench", "%s: at most %d entries", flag, DPT_BENCH_MAX_LIST);
            return false;
        }
        if (!dpt_cli_parse_size("bench", flag, tok, 1, 1u << 20, &out[(*n)++])) return false;
    }
    if (*n == 0) return dpt_cli_usage_error("bench", "%s needs at least one value", flag), false;
    return true;
}

static bool parse_modes(const char *text, dpt_bench_config_t *c)
{
    c->strong = c->weak = c->sweep = c->layers = 0;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", text);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "strong"))
            c->strong = 1;
        else if (!strcmp(tok, "weak"))
            c->weak = 1;
        else if (!strcmp(tok, "batch"))
            c->sweep = 1;
        else if (!strcmp(tok, "layers"))
            c->layers = 1;
        else {
            dpt_cli_usage_error("bench",
                                "unknown mode '%s'; valid modes: strong, weak, batch, layers", tok);
            return false;
        }
    }
    return c->strong || c->weak || c->sweep || c->layers;
}

typedef struct {
    FILE *csv;
} sink_t;

static void print_layer(void *user, const dpt_bench_layer_t *l)
{
    FILE *csv = user;
    char shape[32], gemm[48] = "-", ratio[16] = "-", sg[16] = "-";
    snprintf(shape, sizeof shape, "%zux%zux%zu", l->node.out.c, l->node.out.h, l->node.out.w);
    if (l->node.has_gemm && isfinite(l->sgemm_ratio)) {
        snprintf(gemm, sizeof gemm, "%zux%zux%zu", l->node.gemm[0], l->node.gemm[1],
                 l->node.gemm[2]);
        snprintf(sg, sizeof sg, "%.1f", l->sgemm_gflops);
        snprintf(ratio, sizeof ratio, "%.1f%%", 100 * l->sgemm_ratio);
    }
    printf("%-9s %-8s %-11s %9.3f %9.3f %6.1f%% %8.1f %-16s %8s %7s\n", l->node.name, l->node.kind,
           shape, l->fwd_ms, l->bwd_ms, 100 * l->share, l->gflops, gemm, sg, ratio);
    fprintf(csv, "%s,%s,%zu,%zu,%zu,%.4f,%.4f,%.4f,%.2f,%zu,%zu,%zu,%.2f,%.4f\n", l->node.name,
            l->node.kind, l->node.out.c, l->node.out.h, l->node.out.w, l->fwd_ms, l->bwd_ms,
            l->share, l->gflops, l->node.gemm[0], l->node.gemm[1], l->node.gemm[2], l->sgemm_gflops,
            l->sgemm_ratio);
}

/* The per-layer split: a table on stdout and DIR/layers.csv. */
static dpt_status_t print_layers(const dpt_bench_config_t *c, const dpt_dataset_t *train,
                                 const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/layers.csv", dir);
    FILE *csv = fopen(path, "w");
    if (!csv) return dpt_error(DPT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    fprintf(csv, "node,kind,c,h,w,fwd_ms,bwd_ms,share,gflops,gemm_m,gemm_n,gemm_k,sgemm_gflops,"
                 "sgemm_ratio\n");
    printf("# per-layer split: 1 thread, batch %zu, %zu steps after %zu warm-up; GFLOP/s of "
           "forward + backward against a same-run sgemm of the node's GEMM shape\n",
           c->strong_batch, c->steps, c->warmup);
    printf("%-9s %-8s %-11s %9s %9s %7s %8s %-16s %8s %7s\n", "node", "kind", "output", "fwd ms",
           "bwd ms", "share", "GFLOP/s", "gemm MxNxK", "sgemm", "of sgemm");
    dpt_status_t s = dpt_bench_layers(c, train, print_layer, csv);
    if (fclose(csv) != 0 && s == DPT_OK)
        s = dpt_error(DPT_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (s == DPT_OK) printf("# wrote %s\n", path);
    return s;
}

static void print_row(void *user, const dpt_bench_row_t *r)
{
    sink_t *s = user;
    char eff[16] = "      -";
    if (isfinite(r->efficiency)) snprintf(eff, sizeof eff, "%6.1f%%", 100 * r->efficiency);
    printf("%-6s %7zu %6zu %11.0f %11.0f %11.0f %7.2f %s %6.1f%% %6.1f%% %6.1f%% %8.1f %8.1f "
           "%6.1f%% %8.1f\n",
           r->mode, r->threads, r->batch, r->samples_per_second, r->min, r->max, r->speedup, eff,
           100 * r->share_compute, 100 * r->share_assembly, 100 * r->share_update,
           r->gflops_per_thread, r->sgemm_gflops, 100 * r->roofline_ratio, r->peak_rss_mib);
    fflush(stdout);
    fprintf(s->csv, "%s,%zu,%zu,%zu,%.1f,%.1f,%.1f,%.4f,", r->mode, r->threads, r->batch, r->team,
            r->samples_per_second, r->min, r->max, r->speedup);
    if (isfinite(r->efficiency)) fprintf(s->csv, "%.4f", r->efficiency);
    fprintf(s->csv, ",%.4f,%.4f,%.4f,%.2f,%.2f,%.4f,%.1f,", r->share_compute, r->share_assembly,
            r->share_update, r->gflops_per_thread, r->sgemm_gflops, r->roofline_ratio,
            r->peak_rss_mib);
    if (isfinite(r->speedup_min))
        fprintf(s->csv, "%.4f,%.4f", r->speedup_min, r->speedup_max);
    else
        fputc(',', s->csv);
    fputc('\n', s->csv);
    fflush(s->csv);
}

typedef struct {
    const char *csv;
    int batch_plot;
} plot_t;

/* gnuplot body: speed-up vs threads with the ideal line, or throughput vs batch. */
static void put_plot(FILE *f, void *user)
{
    plot_t *p = user;
    fprintf(
        f,
        "set datafile separator ','\nset key top left\nset grid\nset key autotitle columnheader\n");
    if (p->batch_plot) {
        fprintf(f, "set title 'throughput vs batch size'\nset xlabel 'global batch'\n"
                   "set ylabel 'samples/s'\nset logscale x 2\nplot ");
        dpt_gnuplot_put_quoted(f, p->csv);
        fprintf(
            f, " using (strcol(1) eq 'batch' ? $3 : NaN):5 with linespoints title 'batch sweep'\n");
        return;
    }
    fprintf(f, "set title 'speed-up vs threads'\nset xlabel 'threads'\nset ylabel 'speed-up'\nset "
               "xtics 1\n"
               "plot x with lines dashtype 2 title 'ideal', ");
    dpt_gnuplot_put_quoted(f, p->csv);
    fprintf(f, " using (strcol(1) eq 'strong' ? $2 : NaN):8 with linespoints title 'strong (fixed "
               "global batch)', ");
    dpt_gnuplot_put_quoted(f, p->csv);
    fprintf(f, " using (strcol(1) eq 'weak' ? $2 : NaN):8 with linespoints title 'weak (fixed "
               "per-thread batch)'\n");
}

/* More threads than cores measure the scheduler, not dptrain: say so above the table (the
 * rows still run, e.g. to check a 16-thread configuration on a small machine). */
static void warn_oversubscription(const dpt_bench_config_t *c)
{
    size_t cores = (size_t)omp_get_num_procs(), most = c->sweep ? c->sweep_threads : 0;
    for (size_t i = 0; (c->strong || c->weak) && i < c->n_threads; i++)
        if (c->threads[i] > most) most = c->threads[i];
    if (most > cores)
        printf("# note: up to %zu threads on %zu cores: rows above %zu threads are "
               "oversubscribed, their speed-up and efficiency do not measure scaling\n",
               most, cores, cores);
}

static int draw_plots(const char *dir, const char *csv, const dpt_bench_config_t *c)
{
    char png[4096];
    plot_t p = {csv, 0};
    dpt_status_t s = DPT_OK;
    if (c->strong || c->weak) {
        snprintf(png, sizeof png, "%s/scaling.png", dir);
        s = dpt_gnuplot_draw(png, 600, put_plot, &p);
    }
    if (s == DPT_OK && c->sweep) {
        p.batch_plot = 1;
        snprintf(png, sizeof png, "%s/batch.png", dir);
        s = dpt_gnuplot_draw(png, 600, put_plot, &p);
    }
    return s == DPT_OK ? 0 : dpt_cli_fail(s);
}

int dpt_cmd_bench(int argc, char **argv)
{
    dpt_bench_config_t c = dpt_bench_config_default();
    const char *spec = "fashion-mnist", *out = "bench-out", *augment_spec = NULL;
    char synth[64];
    int plot = 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(f, "--plot")) {
            plot = 1;
            continue;
        }
        if (strncmp(f, "--", 2) != 0)
            return dpt_cli_usage_error("bench", "unexpected argument '%s'", f);
        if (!(v = dpt_cli_value("bench", argc, argv, &i))) return DPT_EXIT_USAGE;
        bool ok = true;
        if (!strcmp(f, "--data"))
            spec = v;
        else if (!strcmp(f, "--synthetic")) {
            snprintf(synth, sizeof synth, "synthetic:%.40s", v);
            spec = synth;
        } else if (!strcmp(f, "--model") && !strcmp(v, "help"))
            return dpt_cli_model_help();
        else if (!strcmp(f, "--model"))
            c.model_spec = v;
        else if (!strcmp(f, "--augment"))
            augment_spec = v;
        else if (!strcmp(f, "--optimizer"))
            c.optimizer_spec = v;
        else if (!strcmp(f, "--out"))
            out = v;
        else if (!strcmp(f, "--threads"))
            ok = parse_list(f, v, c.threads, &c.n_threads);
        else if (!strcmp(f, "--batches"))
            ok = parse_list(f, v, c.batches, &c.n_batches);
        else if (!strcmp(f, "--modes"))
            ok = parse_modes(v, &c);
        else if (!strcmp(f, "--batch"))
            ok = dpt_cli_parse_size("bench", f, v, 1, 1u << 20, &c.strong_batch);
        else if (!strcmp(f, "--weak-batch"))
            ok = dpt_cli_parse_size("bench", f, v, 1, 1u << 16, &c.weak_batch);
        else if (!strcmp(f, "--sweep-threads"))
            ok = dpt_cli_parse_size("bench", f, v, 1, 1024, &c.sweep_threads);
        else if (!strcmp(f, "--micro-batch"))
            ok = dpt_cli_parse_size("bench", f, v, 0, 65536, &c.micro_batch);
        else if (!strcmp(f, "--reps"))
            ok = dpt_cli_parse_size("bench", f, v, 1, 1000, &c.reps);
        else if (!strcmp(f, "--steps"))
            ok = dpt_cli_parse_size("bench", f, v, 1, 1000000, &c.steps);
        else if (!strcmp(f, "--warmup"))
            ok = dpt_cli_parse_size("bench", f, v, 0, 1000000, &c.warmup);
        else
            return dpt_cli_usage_error("bench", "unknown flag '%s'", f);
        if (!ok) return DPT_EXIT_USAGE;
    }
    if (mkdir(out, 0777) != 0 && errno != EEXIST)
        return dpt_cli_fail(
            dpt_error(DPT_ERR_IO, "%s: cannot create directory: %s", out, strerror(errno)));
    dpt_dataset_t *train, *test = NULL;
    dpt_status_t s = dpt_model_check_early(c.model_spec, spec);
    dpt_augment_t *aug = NULL;
    size_t ac = 0, ah = 0, aw = 0, ak;
    if (augment_spec && !dpt_dataset_spec_shape(spec, &ac, &ah, &aw, &ak)) ac = ah = aw = 0;
    if (s == DPT_OK && augment_spec) s = dpt_augment_create(augment_spec, ac, ah, aw, &aug);
    if (s != DPT_OK) return dpt_cli_fail(s);
    s = dpt_dataset_open(spec, NULL, &train, &test);
    if (s == DPT_OK) s = dpt_dataset_fit_normalization(train);
    if (s == DPT_OK && aug) {
        /* Built again for the data's own shape. */
        dpt_augment_free(aug);
        aug = NULL;
        dpt_dataset_shape(train, &ac, &ah, &aw);
        s = dpt_augment_create(augment_spec, ac, ah, aw, &aug);
        if (s == DPT_OK) s = dpt_augment_check_data(aug, train);
    }
    c.augment = aug;
    if (s != DPT_OK) {
        dpt_augment_free(aug);
        dpt_dataset_free(test);
        return dpt_cli_fail(s);
    }
    char csv_path[4096];
    snprintf(csv_path, sizeof csv_path, "%s/bench.csv", out);
    sink_t sink = {fopen(csv_path, "w")};
    if (!sink.csv) {
        dpt_dataset_free(train), dpt_dataset_free(test);
        return dpt_cli_fail(
            dpt_error(DPT_ERR_IO, "%s: cannot write: %s", csv_path, strerror(errno)));
    }
    /* The kernel set a training run of this model would use. */
    dpt_model_t *probe = NULL;
    if (dpt_model_create_for_data(c.model_spec, train, dpt_dataset_classes(train), &probe) ==
        DPT_OK)
        dpt_gemm_init_narrow(dpt_model_narrow_gemm_share(probe));
    dpt_model_free(probe);
    dpt_gemm_init();
    fprintf(sink.csv, "mode,threads,batch,team,samples_per_second,min,max,speedup,efficiency,"
                      "share_compute,share_assembly,share_update,gflops_per_thread,"
                      "sgemm_gflops,roofline_ratio,peak_rss_mib,speedup_min,speedup_max\n");
    char micro[32] = "auto";
    if (c.micro_batch) snprintf(micro, sizeof micro, "%zu", c.micro_batch);
    printf("# %s | %s | BLIS %s, %s kernels | micro-batch %s | augment %s | median of %zu x %zu "
           "steps\n",
           dpt_dataset_describe(train), c.model_spec, dpt_gemm_blis_version(),
           dpt_gemm_kernel_name(), micro, aug ? dpt_augment_describe(aug) : "none", c.reps,
           c.steps);
    warn_oversubscription(&c);
    printf("%-6s %7s %6s %11s %11s %11s %7s %7s %7s %7s %7s %8s %8s %7s %8s\n", "mode", "threads",
           "batch", "samples/s", "min", "max", "speedup", "effic.", "compute", "assembl", "update",
           "GFLOP/s", "sgemm", "roofln", "peak MiB");
    if (c.strong || c.weak || c.sweep) s = dpt_bench_run(&c, train, print_row, &sink);
    if (s == DPT_OK && c.layers) s = print_layers(&c, train, out);
    fclose(sink.csv);
    dpt_augment_free(aug);
    dpt_dataset_free(train), dpt_dataset_free(test);
    if (s != DPT_OK) return dpt_cli_fail(s);
    printf("# wrote %s\n", csv_path);
    return plot ? draw_plots(out, csv_path, &c) : 0;
}
