/* Tests for src/data/synthetic.c: shapes, determinism, bad specs. */
#include <criterion/criterion.h>
#include <string.h>

#include "dptrain/dataset.h"

Test(synthetic, default_shape_and_test_split)
{
    dpt_dataset_t *tr, *te;
    cr_assert_eq(dpt_dataset_open("synthetic:600", NULL, &tr, &te), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_dataset_count(tr), 600u);
    cr_assert_eq(dpt_dataset_count(te), 100u);
    cr_assert_eq(dpt_dataset_features(tr), 784u);
    cr_assert_eq(dpt_dataset_classes(tr), 10u);
    for (size_t i = 0; i < 600; i++)
        cr_assert_lt(dpt_dataset_label(tr, i), 10);
    dpt_dataset_free(tr), dpt_dataset_free(te);
}

Test(synthetic, custom_shape_is_deterministic)
{
    dpt_dataset_t *a, *b, *ta, *tb;
    cr_assert_eq(dpt_dataset_open("synthetic:50,3,8,4,5", NULL, &a, &ta), DPT_OK);
    cr_assert_eq(dpt_dataset_open("synthetic:50,3,8,4,5", NULL, &b, &tb), DPT_OK);
    size_t c, h, w;
    dpt_dataset_shape(a, &c, &h, &w);
    cr_assert(c == 3 && h == 8 && w == 4);
    cr_assert_eq(dpt_dataset_classes(a), 5u);
    float xa[96 * 2], xb[96 * 2];
    uint32_t idx[2] = {7, 49};
    dpt_dataset_gather(a, idx, 2, xa, NULL);
    dpt_dataset_gather(b, idx, 2, xb, NULL);
    cr_assert_eq(memcmp(xa, xb, sizeof xa), 0);
    dpt_dataset_free(a), dpt_dataset_free(b), dpt_dataset_free(ta), dpt_dataset_free(tb);
}

Test(synthetic, bad_specs_are_rejected)
{
    dpt_dataset_t *tr = NULL, *te = NULL;
    cr_assert_eq(dpt_dataset_open("synthetic:abc", NULL, &tr, &te), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(), "expected N[,C,H,W,CLASSES]"), "%s", dpt_last_error());
    cr_assert_eq(dpt_dataset_open("synthetic:10,1,1,1,1", NULL, &tr, &te), DPT_ERR_INVALID_ARG);
    cr_assert_eq(dpt_dataset_open("synthetic:10,1,1,1,2,9", NULL, &tr, &te), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(), "too many fields"), "%s", dpt_last_error());
    cr_assert_eq(dpt_dataset_open("synthetic:0", NULL, &tr, &te), DPT_ERR_INVALID_ARG);
    cr_assert_null(tr);
}

Test(synthetic, memory_cap_applies)
{
    dpt_data_options_t opt = dpt_data_options_default();
    opt.max_bytes = 1000;
    dpt_dataset_t *tr = NULL, *te = NULL;
    cr_assert_eq(dpt_dataset_open("synthetic:100", &opt, &tr, &te), DPT_ERR_LIMIT);
    cr_assert(strstr(dpt_last_error(), "memory cap"), "%s", dpt_last_error());
    cr_assert_null(tr);
}
