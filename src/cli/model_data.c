/* Owns the flag parsing and loading shared by eval and predict. */
#include "cli/model_data.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int dpt_model_data_parse(const char *cmd, const char *usage, int argc, char **argv,
                         dpt_model_data_args_t *a)
{
    a->data_spec = "fashion-mnist";
    a->data = dpt_data_options_default();
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        int data = dpt_cli_data_flag(cmd, argc, argv, &i, &a->data_spec, &a->data);
        if (data < 0) return DPT_EXIT_USAGE;
        if (data) continue;
        if (strncmp(f, "--", 2) != 0)
            return dpt_cli_usage_error(cmd, "unexpected argument '%s'", f);
        if (!(v = dpt_cli_value(cmd, argc, argv, &i))) return DPT_EXIT_USAGE;
        bool ok = true;
        if (!strcmp(f, "--checkpoint"))
            a->checkpoint = v;
        else if (!strcmp(f, "--out"))
            a->out = v;
        else if (!strcmp(f, "--tta"))
            a->tta = v;
        else if (!strcmp(f, "--split")) {
            if (strcmp(v, "test") && strcmp(v, "train"))
                return dpt_cli_usage_error(cmd, "--split must be test or train, got '%s'", v);
            a->split = v;
        } else if (!strcmp(f, "--threads"))
            ok = dpt_cli_parse_size(cmd, f, v, 0, 1024, &a->threads);
        else
            return dpt_cli_usage_error(cmd, "unknown flag '%s'", f);
        if (!ok) return DPT_EXIT_USAGE;
    }
    if (!a->checkpoint) return dpt_cli_usage_error(cmd, "--checkpoint FILE is required");
    return -1;
}

int dpt_model_data_open(const char *cmd, const dpt_model_data_args_t *a, dpt_inference_t **inf,
                        dpt_dataset_t **ds, dpt_dataset_t **other)
{
    dpt_dataset_t *train = NULL, *test = NULL;
    dpt_status_t s = dpt_inference_load(a->checkpoint, a->threads, inf);
    if (s == DPT_OK) s = dpt_inference_set_tta(*inf, a->tta);
    if (s == DPT_OK) s = dpt_dataset_open(a->data_spec, &a->data, &train, &test);
    if (s != DPT_OK) return dpt_cli_fail(s);
    bool want_train = a->split ? !strcmp(a->split, "train") : test == NULL;
    if (!want_train && !test) {
        dpt_dataset_free(train);
        return dpt_cli_fail(dpt_error(DPT_ERR_INVALID_ARG,
                                      "%s has no test split; use --split train", a->data_spec));
    }
    *ds = want_train ? train : test;
    *other = want_train ? test : train;
    s = dpt_inference_prepare(*inf, *ds);
    return s == DPT_OK ? -1 : dpt_cli_fail(s);
}
