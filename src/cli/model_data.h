/* Flags shared by the commands that use a trained model (eval, predict): the checkpoint,
 * the data and which split of it, threads. */
#ifndef DPT_CLI_MODEL_DATA_H
#define DPT_CLI_MODEL_DATA_H

#include "dptrain/dataset.h"
#include "dptrain/inference.h"

typedef struct dpt_model_data_args {
    const char *checkpoint, *data_spec, *split, *out;
    const char *tta; /* --tta SPEC (NULL: none) */
    dpt_data_options_t data;
    size_t threads;
} dpt_model_data_args_t;

#define DPT_MODEL_DATA_HELP                                                                        \
    "  --checkpoint FILE     a checkpoint of a training run (checkpoint.dpt or best.dpt)\n"        \
    "  --data SPEC           dataset spec as for train (default fashion-mnist)\n"                  \
    "  --split test|train    which part (default: test when the dataset has one, else train)\n"    \
    "  --csv-header, --csv-label-column N, --csv-delimiter C   CSV options as for train\n"         \
    "  --threads N           worker threads (default 0 = all cores)\n"                             \
    "  --tta SPEC            test-time augmentation: average the softmax over views, hflip,\n"     \
    "                        vflip, crop:pad=P (centre + 4 corners), joined by '+' (all\n"         \
    "                        combinations: \"hflip+crop:pad=2\" is 10 views; default none)\n"

/* Parses argv[1..) into a; flags it does not know go to extra(flag, value) when given
 * (returning false there is an error already reported). Returns -1 to go on, else the exit
 * code (0 after --help). */
int dpt_model_data_parse(const char *cmd, const char *usage, int argc, char **argv,
                         dpt_model_data_args_t *a);

/* Loads the checkpoint and the chosen split, normalised as in training. */
int dpt_model_data_open(const char *cmd, const dpt_model_data_args_t *a, dpt_inference_t **inf,
                        dpt_dataset_t **ds, dpt_dataset_t **other);

#endif
