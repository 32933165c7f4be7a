/* dptrain train: flags -> dpt_run_config_t -> dpt_run_train. `--resume DIR` replays the
 * command line stored in DIR's checkpoint, then applies the flags given now on top. */
#include <omp.h>
#include <stdio.h>
#include <unistd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "dptrain/run.h"
#include "parallel/world.h"

static const char *const usage =
    "usage: dptrain train [FLAGS]\n"
    "Trains a classifier with data-parallel workers and writes a run directory:\n"
    "config.txt (every resolved setting), metrics.csv (one row per epoch), checkpoint.dpt\n"
    "(latest epoch), best.dpt (best epoch by the monitored metric: --early-stop's, the\n"
    "plateau's, else val_loss) and, with --plot, metrics.png.\n"
    "Exit 7: training diverged and the divergence guard could not recover.\n\n"
    "data:\n"
    "  --data SPEC           fashion-mnist (default) | mnist:DIR | idx:IMAGES,LABELS |\n"
    "                        cifar10:DIR | csv:FILE | synthetic:N[,C,H,W,K] (random, no files)\n"
    "  --val-split F         hold out fraction F (0 < F < 1) of the training data for\n"
    "                        validation (default 0: validate on the dataset's test split)\n"
    "  --train-fraction F    train on a seeded fraction F (0 < F <= 1) of the training part\n"
    "                        (small-data studies; default 1)\n"
    "  --csv-label-column N  CSV label column, 0-based, -1 = last (default -1)\n"
    "  --csv-header          the CSV's first row is a header\n"
    "  --csv-delimiter C     CSV field delimiter (default ',')\n"
    "model and optimisation:\n"
    "  --model SPEC          layers or a preset, e.g. \"dense:256,relu,dense:10\",\n"
    "                        \"conv:32:3,bn,relu,maxpool:2,dense:10\", resnet20; 'help' lists\n"
    "                        the grammar and presets (docs/models.md)\n"
    "                        (default " DPT_DEFAULT_MODEL ")\n"
    "  --optimizer SPEC      NAME:key=value,... with NAME one of sgd, adam, adamw, rmsprop,\n"
    "                        adagrad, lars, lamb (PyTorch keys and defaults, e.g.\n"
    "                        adam:beta1=0.9,beta2=0.999,eps=1e-8,weight_decay=0;\n"
    "                        docs/optimizers.md; default sgd:momentum=0.9)\n"
    "  --no-decay LIST       no weight decay for these tensors: bias, bn (batch norm's gamma\n"
    "                        and beta), joined by '+' (bias+bn), or none (default)\n"
    "  --lr F|auto           base learning rate (default 0.03); auto runs the LR range test\n"
    "                        first (as 'dptrain lr-find') and uses its valley suggestion\n"
    "  --lr-scaling SPEC     linear[:ref_batch=B] | sqrt[:ref_batch=B] (B default 256): base LR\n"
    "                        times batch/B or sqrt(batch/B) (Goyal et al. 2017); default none\n"
    "  --clip-grad-norm MAX  scale the gradients when their global 2-norm exceeds MAX\n"
    "                        (torch clip_grad_norm_; default 0 = off)\n"
    "  --lr-schedule SPEC    NAME:key=value,... (see 'dptrain schedule --help'; default constant)\n"
    "  --warmup SPEC         linear:steps=N,start_factor=F | constant:steps=N,factor=F\n"
    "  --epochs N            epochs to train (default 3; with --resume: the new total)\n"
    "  --batch-size N        global minibatch (default 128)\n"
    "  --micro-batch N       rows per micro-shard (default 0 = auto: max(64, batch/16));\n"
    "                        results are bitwise identical for any --threads at a fixed\n"
    "                        batch size and micro-batch\n"
    "  --seed N              seed for initialisation, shuffling, dropout, augmentation\n"
    "                        (default 1)\n"
    "augmentation (training batches only; docs/augmentation.md):\n"
    "  --augment SPEC        ops joined by '+', each NAME or NAME:key=value,...:\n"
    "                        crop:pad=P[,mode=zero|reflect]  hflip[:p=0.5]  vflip[:p=0.5]\n"
    "                        rotate:degrees=D  translate:pixels=P  scale:min=A,max=B\n"
    "                        affine:degrees=,translate=,scale_min=,scale_max=,shear=\n"
    "                        (geometric ops take fill=0..1)  brightness:delta=D\n"
    "                        contrast:factor=F  saturation:factor=F (RGB)  noise:std=S\n"
    "                        erase:p=0.5,area=0.02/0.33,ratio=0.3/3.3,value=0\n"
    "                        mixup:alpha=0.2 | cutmix:alpha=1 (last; mixes labels)\n"
    "                        every op takes p (probability); e.g. \"crop:pad=2+hflip\"\n"
    "  --augment-override    resume with an --augment other than the run's\n"
    "run safety:\n"
    "  --early-stop SPEC     stop when the monitored metric stops improving (Keras\n"
    "                        EarlyStopping): monitor=val_loss|val_accuracy,mode=min|max,\n"
    "                        patience=N,min_delta=F,restore_best=0|1 (defaults val_loss, mode\n"
    "                        from the monitor, 0, 0, 0); 'on' = defaults; default off.\n"
    "                        restore_best puts the best epoch's parameters in checkpoint.dpt\n"
    "                        at the end. Needs validation data\n"
    "  --divergence-guard SPEC  factor=F,retries=N,spike=S (default factor=0.5,retries=3,\n"
    "                        spike=10) or off: a NaN/inf step loss, or one above S x its running\n"
    "                        average (and above chance level), rolls the epoch back to its start,\n"
    "                        multiplies the LR by F and retries; after N rollbacks in a row the\n"
    "                        next failure ends the run with exit 7 (spike=0: NaN/inf only)\n"
    "  --keep-checkpoints K  also keep the last K epochs as checkpoint-epochNNNN.dpt (default 0)\n"
    "  --log-every N         write steps.csv (step,epoch,lr,loss) every N steps (default 0 = off)\n"
    "  --checkpoint-every-steps N  also write checkpoint.dpt every N optimizer steps inside an\n"
    "                        epoch; --resume continues that epoch exactly (default 0 = epoch\n"
    "                        ends only)\n"
    "execution and output:\n"
    "  --threads N           worker threads (default 0 = all cores); under mpirun or srun:\n"
    "                        threads per rank (docs/distributed.md). Any ranks x threads give\n"
    "                        the same bits as one process at the same batch and micro-batch\n"
    "  --out DIR             run directory (default runs/YYYYmmdd-HHMMSS); a directory that\n"
    "                        already holds a run is refused unless --resume or --overwrite\n"
    "  --overwrite           replace the run already in --out (its files; says so)\n"
    "  --resume DIR          continue the run in DIR from its checkpoint, exactly\n"
    "  --pause-after-epoch E end this process after epoch E with its checkpoint; --resume\n"
    "                        continues with the same --epochs and schedule\n"
    "  --plot                draw DIR/metrics.png with gnuplot at the end\n"
    "  --quiet               no progress display or per-epoch lines\n"
    "  --help                this text\n";

#define MAX_ARGS 256

typedef struct {
    dpt_run_config_t cfg;
    const char *resume_dir;
} train_args_t;

/* Parses argv[start..argc) into a; returns -1 on success, else the exit code. */
static int parse_flags(train_args_t *a, int argc, char **argv, int start)
{
    dpt_run_config_t *c = &a->cfg;
    for (int i = start; i < argc; i++) {
        const char *f = argv[i], *v = NULL;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(f, "--quiet")) {
            c->quiet = 1;
            continue;
        }
        if (!strcmp(f, "--overwrite")) {
            c->overwrite = 1;
            continue;
        }
        if (!strcmp(f, "--plot")) {
            c->plot = 1;
            continue;
        }
        if (!strcmp(f, "--augment-override")) {
            c->augment_override = 1;
            continue;
        }
        int data = dpt_cli_data_flag("train", argc, argv, &i, &c->data_spec, &c->data);
        if (data < 0) return DPT_EXIT_USAGE;
        if (data) continue;
        if (strncmp(f, "--", 2) != 0)
            return dpt_cli_usage_error("train", "unexpected argument '%s'", f);
        if (!(v = dpt_cli_value("train", argc, argv, &i))) return DPT_EXIT_USAGE;
        size_t z;
        bool ok = true;
        if (!strcmp(f, "--model") && !strcmp(v, "help")) return dpt_cli_model_help();
        if (!strcmp(f, "--model"))
            c->model_spec = v;
        else if (!strcmp(f, "--optimizer"))
            c->optimizer_spec = v;
        else if (!strcmp(f, "--no-decay"))
            c->no_decay = v;
        else if (!strcmp(f, "--lr-schedule"))
            c->schedule_spec = v;
        else if (!strcmp(f, "--warmup"))
            c->warmup_spec = v;
        else if (!strcmp(f, "--augment"))
            c->augment_spec = v;
        else if (!strcmp(f, "--out"))
            c->out_dir = v;
        else if (!strcmp(f, "--resume"))
            a->resume_dir = v;
        else if (!strcmp(f, "--lr-scaling"))
            c->lr_scaling = v;
        else if (!strcmp(f, "--early-stop"))
            c->early_stop_spec = v;
        else if (!strcmp(f, "--divergence-guard"))
            c->divergence_guard_spec = v;
        else if (!strcmp(f, "--keep-checkpoints"))
            ok = dpt_cli_parse_size("train", f, v, 0, 1000000, &c->keep_checkpoints);
        else if (!strcmp(f, "--checkpoint-every-steps"))
            ok = dpt_cli_parse_size("train", f, v, 0, 1000000000, &c->checkpoint_every_steps);
        else if (!strcmp(f, "--pause-after-epoch"))
            ok = dpt_cli_parse_size("train", f, v, 0, 1000000, &c->pause_after_epoch);
        else if (!strcmp(f, "--log-every"))
            ok = dpt_cli_parse_size("train", f, v, 0, 1000000000, &c->log_every);
        else if (!strcmp(f, "--lr") && !strcmp(v, "auto"))
            c->lr_auto = 1;
        else if (!strcmp(f, "--lr")) {
            ok = dpt_cli_parse_double("train", f, v, 1e-12, 1e6, &c->lr);
            c->lr_auto = 0; /* a later --lr (e.g. at resume) overrides auto */
        } else if (!strcmp(f, "--clip-grad-norm"))
            ok = dpt_cli_parse_double("train", f, v, 0, 1e12, &c->trainer.clip_grad_norm);
        else if (!strcmp(f, "--train-fraction"))
            ok = dpt_cli_parse_double("train", f, v, 1e-6, 1.0, &c->train_fraction);
        else if (!strcmp(f, "--val-split"))
            ok = dpt_cli_parse_double("train", f, v, 0.0, 0.99, &c->val_split);
        else if (!strcmp(f, "--epochs"))
            ok = dpt_cli_parse_size("train", f, v, 1, 1000000, &c->epochs);
        else if (!strcmp(f, "--batch-size"))
            ok = dpt_cli_parse_size("train", f, v, 1, 1u << 20, &c->trainer.batch_size);
        else if (!strcmp(f, "--micro-batch"))
            ok = dpt_cli_parse_size("train", f, v, 0, 65536, &c->trainer.micro_batch);
        else if (!strcmp(f, "--threads"))
            ok = dpt_cli_parse_size("train", f, v, 0, 1024, &c->trainer.threads);
        else if (!strcmp(f, "--seed"))
            ok = dpt_cli_parse_u64("train", f, v, &c->trainer.seed);
        else
            return dpt_cli_usage_error("train", "unknown flag '%s'", f);
        if (!ok) return DPT_EXIT_USAGE;
        (void)z;
    }
    return -1;
}

int dpt_cli_train_flags(int argc, char **argv, int start, dpt_run_config_t *cfg)
{
    train_args_t a = {.cfg = *cfg};
    int rc = parse_flags(&a, argc, argv, start);
    if (rc < 0 && a.resume_dir) rc = dpt_cli_usage_error("train", "--resume is not a trial flag");
    *cfg = a.cfg;
    return rc;
}

/* Joins argv (minus --resume, --pause-after-epoch and their values: they steer this process,
 * not the run) as a NUL-separated blob appended to *blob. */
static int append_blob(char **blob, size_t *len, int argc, char **argv, int start)
{
    for (int i = start; i < argc; i++) {
        if (!strcmp(argv[i], "--resume") || !strcmp(argv[i], "--pause-after-epoch")) {
            i++;
            continue;
        }
        size_t n = strlen(argv[i]) + 1;
        char *grown = realloc(*blob, *len + n);
        if (!grown) return -1;
        memcpy(grown + *len, argv[i], n);
        *blob = grown;
        *len += n;
    }
    return 0;
}

/* Splits a NUL-separated blob into up to MAX_ARGS pointers (argv[0] left for the name). */
static int split_blob(char *blob, size_t len, char **out)
{
    int n = 1;
    out[0] = "train";
    for (size_t i = 0; i < len && n < MAX_ARGS; i += strlen(blob + i) + 1)
        out[n++] = blob + i;
    return n;
}

/* SIGINT, SIGTERM and SIGUSR1 (batch systems' warning before a kill) ask the run to stop
 * after the current step with a checkpoint; a second SIGINT exits at once (every file is
 * written atomically, so the directory stays resumable from its last checkpoint). */
static void on_stop_signal(int signo)
{
    static volatile sig_atomic_t seen_int;
    if (signo == SIGINT && seen_int) _exit(130);
    if (signo == SIGINT) seen_int = 1;
    dpt_run_request_stop(signo);
}

static void install_stop_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART; /* writes and fsyncs in progress complete */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int dpt_cmd_train(int argc, char **argv)
{
    train_args_t a = {.cfg = dpt_run_config_default()};
    int rc = parse_flags(&a, argc, argv, 1);
    if (rc >= 0) return rc;
    char *blob = NULL, *stored = NULL;
    size_t len = 0, stored_len = 0;
    char default_out[64];
    if (a.resume_dir) {
        /* Replay the stored command line, then today's flags on top. */
        dpt_status_t s = dpt_run_read_argv(a.resume_dir, &stored, &stored_len);
        if (s != DPT_OK) return dpt_cli_fail(s);
        char *stored_argv[MAX_ARGS];
        int n = split_blob(stored, stored_len, stored_argv);
        const char *dir = a.resume_dir;
        a = (train_args_t){.cfg = dpt_run_config_default()};
        rc = parse_flags(&a, n, stored_argv, 1);
        a.cfg.overwrite = 0; /* the stored run may have replaced another; this one continues */
        if (rc >= 0 || (rc = parse_flags(&a, argc, argv, 1)) >= 0) {
            free(stored);
            return rc;
        }
        a.cfg.out_dir = dir;
        a.cfg.resume = 1;
        blob = malloc(stored_len ? stored_len : 1);
        if (blob) memcpy(blob, stored, stored_len), len = stored_len;
    } else if (!a.cfg.out_dir) {
        time_t now = time(NULL);
        strftime(default_out, sizeof default_out, "runs/%Y%m%d-%H%M%S", localtime(&now));
        a.cfg.out_dir = default_out;
    }
    if (append_blob(&blob, &len, argc, argv, 1) != 0) {
        free(stored), free(blob);
        return dpt_cli_fail(dpt_error(DPT_ERR_NOMEM, "out of memory"));
    }
    a.cfg.argv_blob = blob;
    a.cfg.argv_blob_len = len;
    install_stop_handlers();
    /* Across processes rank 0 speaks for the run (progress, epoch lines, the summary). */
    if (dpt_world_rank() != 0) a.cfg.quiet = 1;
    dpt_run_result_t res;
    dpt_status_t s = dpt_run_train(&a.cfg, &res);
    free(stored), free(blob);
    if (s != DPT_OK) return dpt_cli_fail(s);
    if (!a.cfg.quiet)
        printf("done: %zu epochs%s, val loss %.4f, val accuracy %.4f, %.0f samples/s on %zu "
               "threads; metrics in %s/metrics.csv\n",
               res.epochs_done,
               res.early_stopped ? " (stopped early)"
               : res.paused      ? " (paused)"
                                 : "",
               res.val_loss, res.val_accuracy, res.samples_per_second, res.threads, a.cfg.out_dir);
    return 0;
}
