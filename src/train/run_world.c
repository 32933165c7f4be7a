/* Owns a run's part in a job of several processes: that every rank trains the same resolved
 * config on the same data from the same parameters (checked once, at the start), and the
 * rank/thread bookkeeping of metrics rows. Which rank writes is run.c's `writer`; the
 * exchange itself is the trainer's (src/train/trainer.c) through src/parallel/world.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parallel/world.h"
#include "train/run_internal.h"

size_t run_world_ranks(void)
{
    return dpt_world_size();
}

uint64_t run_row_pack_threads(size_t threads, size_t ranks)
{
    return (uint64_t)(threads & 0xffffffffu) | ((uint64_t)(ranks > 1 ? ranks : 0) << 32);
}
size_t run_row_threads(const run_row_t *row)
{
    return (size_t)(row->threads & 0xffffffffu);
}
size_t run_row_ranks(const run_row_t *row)
{
    size_t r = (size_t)(row->threads >> 32);
    return r ? r : 1;
}

/* FNV-1a, 64 bits: a fingerprint to compare ranks, not a defence against anyone. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}
#define FNV_START 0xcbf29ce484222325ULL

/* Every sample of a view as the trainer sees it (normalised floats and labels), in order. */
static dpt_status_t hash_dataset(const dpt_dataset_t *ds, uint64_t *h)
{
    if (!ds) return DPT_OK;
    enum { BLOCK = 256 };
    const size_t n = dpt_dataset_count(ds), f = dpt_dataset_features(ds);
    float *x = malloc(BLOCK * f * sizeof *x);
    if (!x) return dpt_error(DPT_ERR_NOMEM, "out of memory hashing the dataset");
    uint32_t idx[BLOCK];
    int32_t y[BLOCK];
    for (size_t lo = 0; lo < n; lo += BLOCK) {
        size_t cnt = n - lo < BLOCK ? n - lo : BLOCK;
        for (size_t i = 0; i < cnt; i++)
            idx[i] = (uint32_t)(lo + i);
        dpt_dataset_gather(ds, idx, cnt, x, y);
        *h = fnv(*h, x, cnt * f * sizeof *x);
        *h = fnv(*h, y, cnt * sizeof *y);
    }
    free(x);
    return DPT_OK;
}

/* Lines of config.txt that may differ between ranks: the threads of each (--threads 0 takes a
 * node's cores; results do not depend on them) and where the data lives (the same bytes may
 * sit under other paths on other nodes: the dataset line compares the bytes). */
static int rank_local(const char *line, size_t len)
{
    static const char *const keys[] = {"threads", "omp_max_threads", "data",
                                       "train",   "validation",      "replica_memory"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        size_t kl = strlen(keys[k]);
        if (len > kl + 2 && !strncmp(line, keys[k], kl) && !strncmp(line + kl, " = ", 3)) return 1;
    }
    return 0;
}

enum { FIELDS_CAP = 12288 };

/* The compared fields, "key = value" lines: config.txt without the rank-local lines, then the
 * data's and the starting parameters' fingerprints. */
static dpt_status_t build_fields(run_t *r, char *out)
{
    size_t len = 0;
    for (const char *p = r->config_text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        if (!rank_local(p, l) && len + l + 1 < FIELDS_CAP) {
            memcpy(out + len, p, l);
            len += l;
            out[len++] = '\n';
        }
        p += l + (nl ? 1 : 0);
    }
    uint64_t h_train = FNV_START, h_val = FNV_START;
    dpt_status_t s = hash_dataset(r->data.train, &h_train);
    if (s == DPT_OK) s = hash_dataset(r->data.val, &h_val);
    if (s != DPT_OK) return s;
    uint64_t h_params =
        fnv(FNV_START, dpt_trainer_params(r->trainer), dpt_model_param_count(r->model) * 4);
    snprintf(out + len, FIELDS_CAP - len,
             "dataset = training part %016llx, validation part %016llx\n"
             "starting parameters = %016llx (step %llu)\n",
             (unsigned long long)h_train, (unsigned long long)h_val, (unsigned long long)h_params,
             (unsigned long long)dpt_trainer_step_count(r->trainer));
    return DPT_OK;
}

/* "key ('value' there, 'value' on rank 0)" of one line that differs. */
static size_t describe_difference(char *out, size_t n, const char *mine, size_t lm,
                                  const char *root, size_t lr)
{
    const char *eq = strstr(mine, " = ");
    size_t key = eq && eq < mine + lm ? (size_t)(eq - mine) : lm;
    size_t vm = lm > key + 3 ? key + 3 : lm;
    const char *req = strstr(root, " = ");
    size_t vr = req && req < root + lr ? (size_t)(req - root) + 3 : 0;
    int k = snprintf(out, n, "%.*s ('%.*s' there, '%.*s' on rank 0)", (int)key, mine,
                     (int)(lm - vm), mine + vm, (int)(lr - vr), root + vr);
    return k < 0 ? 0 : (size_t)k < n ? (size_t)k : n - 1;
}

/* Every line where mine differs from rank 0's, in config.txt order, as one message; 0 when
 * they agree. (An earlier line may differ only because of a later one, e.g. lr_schedule's
 * steps per epoch because of batch_size: all are named.) */
static int differences(const char *mine, const char *root, size_t rank, char *msg, size_t n)
{
    int found = 0;
    size_t len = (size_t)snprintf(msg, n, "rank %zu differs from rank 0 in ", rank);
    while ((*mine || *root) && len + 1 < n) {
        size_t lm = strcspn(mine, "\n"), lr = strcspn(root, "\n");
        if (lm != lr || strncmp(mine, root, lm)) {
            if (found++) len += (size_t)snprintf(msg + len, n - len, ", ");
            if (len + 1 < n) len += describe_difference(msg + len, n - len, mine, lm, root, lr);
        }
        mine += lm + (mine[lm] ? 1 : 0);
        root += lr + (root[lr] ? 1 : 0);
    }
    if (found && len + 1 < n)
        snprintf(msg + len, n - len, "; every rank must run the same command on the same data");
    return found;
}

dpt_status_t run_world_check(run_t *r)
{
    run_describe_config(r);
    const size_t ranks = dpt_world_size(), rank = dpt_world_rank();
    if (ranks == 1) return DPT_OK;
    char *mine = calloc(1, FIELDS_CAP), *root = calloc(1, FIELDS_CAP);
    char msg[1024] = "";
    dpt_status_t s = mine && root ? build_fields(r, mine)
                                  : dpt_error(DPT_ERR_NOMEM, "out of memory for the config check");
    if (s != DPT_OK) {
        free(mine), free(root);
        return s; /* a rank-local failure: the CLI ends the job */
    }
    memcpy(root, mine, FIELDS_CAP);
    s = dpt_world_broadcast(root, FIELDS_CAP, 0);
    int differs = s == DPT_OK && differences(mine, root, rank, msg, sizeof msg);
    /* The lowest differing rank tells everyone what differs. */
    int first = s == DPT_OK ? dpt_world_max_int(differs ? (int)(ranks - rank) : 0) : 0;
    if (s == DPT_OK && first) {
        s = dpt_world_broadcast(msg, sizeof msg, ranks - (size_t)first);
        if (s == DPT_OK) {
            dpt_world_set_shared_error(true);
            s = dpt_error(DPT_ERR_INVALID_ARG, "%s", msg);
        }
    }
    free(mine), free(root);
    return s;
}
