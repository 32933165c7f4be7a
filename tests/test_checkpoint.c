/* Tests for src/io/checkpoint.c: round trip, each kind of damage refused with its own message,
 * and atomic replacement. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "dptrain/checkpoint.h"
#include "support.h"

/* The reference file written by write_reference():
 *   0   magic, version 1, 4 sections
 *   16  entry "config" (off @24, size @32)     40  entry "params" (off @48, size @56)
 *   64  entry "empty"                          87  entry "rng"          108 end of table
 *   128 config (16 bytes)  192 params (400 bytes)  640 empty (0)  640 rng (8)
 *   648 SHA-256            680 end of file */
#define REF_SIZE 680
static const char ref_config[] = "lr=0.1\nepochs=3\n";
static float ref_params[100];
static const uint64_t ref_rng = 0x0123456789abcdefull;

static char *tmpdir;

static void setup(void)
{
    tmpdir = t_make_tmpdir("ckpt");
    for (int k = 0; k < 100; k++)
        ref_params[k] = (float)k * 0.5f - 7.0f;
}

static void write_reference(const char *path)
{
    dpt_ckpt_section_t sec[] = {
        {"config", ref_config, strlen(ref_config)},
        {"params", ref_params, sizeof ref_params},
        {"empty", NULL, 0},
        {"rng", &ref_rng, sizeof ref_rng},
    };
    cr_assert_eq(dpt_checkpoint_write(path, sec, 4), DPT_OK, "%s", dpt_last_error());
}

/* Writes the reference file, lets edit() damage its bytes, and returns the damaged file's path. */
static char *damaged(unsigned char *(*edit)(unsigned char *buf, size_t *n))
{
    char *good = t_path(tmpdir, "good.ckpt");
    write_reference(good);
    size_t n;
    unsigned char *buf = (unsigned char *)t_read_file(good, &n);
    cr_assert_eq(n, REF_SIZE);
    buf = edit(buf, &n);
    char *bad = t_path(tmpdir, "bad.ckpt");
    t_write_file(bad, buf, n, 0);
    free(buf);
    free(good);
    return bad;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

/* Reads path, expecting status s and a message containing want. */
/* Reads path (malloc'd, freed here) and checks the refusal. */
static void expect_refused(char *path, dpt_status_t s, const char *want)
{
    dpt_checkpoint_t *c = (void *)1;
    cr_assert_eq(dpt_checkpoint_read(path, &c), s, "status for '%s': %s", want, dpt_last_error());
    cr_assert_null(c);
    cr_assert(strstr(dpt_last_error(), want), "message '%s' lacks '%s'", dpt_last_error(), want);
    cr_assert(strstr(dpt_last_error(), path), "message '%s' lacks the path", dpt_last_error());
    free(path);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

TestSuite(checkpoint, .init = setup);

Test(checkpoint, round_trip_keeps_names_sizes_data_and_alignment)
{
    char *p = t_path(tmpdir, "a.ckpt");
    write_reference(p);
    size_t n;
    unsigned char *raw = (unsigned char *)t_read_file(p, &n);
    cr_assert_eq(n, REF_SIZE);
    cr_assert_eq(memcmp(raw, "DPTCKPT\0\1\0\0\0\4\0\0\0", 16), 0);

    dpt_checkpoint_t *c;
    cr_assert_eq(dpt_checkpoint_read(p, &c), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_checkpoint_section_count(c), 4);
    const char *names[] = {"config", "params", "empty", "rng"};
    size_t sizes[] = {16, 400, 0, 8};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_str_eq(dpt_checkpoint_section_name(c, i), names[i]);
        cr_assert_eq(dpt_checkpoint_section_bytes(c, i), sizes[i]);
        const void *d = dpt_checkpoint_section(c, names[i], NULL);
        cr_assert_not_null(d);
        cr_assert_eq((uintptr_t)d % 64, 0, "section %s not 64-byte aligned", names[i]);
    }
    size_t b = 0;
    const float *params = dpt_checkpoint_section(c, "params", &b);
    cr_assert_eq(b, sizeof ref_params);
    cr_assert_eq(memcmp(params, ref_params, b), 0);
    const char *cfg = dpt_checkpoint_section(c, "config", &b);
    cr_assert_eq(b, 16);
    cr_assert_eq(memcmp(cfg, ref_config, 16), 0);
    uint64_t rng;
    memcpy(&rng, dpt_checkpoint_section(c, "rng", NULL), 8);
    cr_assert_eq(rng, ref_rng);
    b = 77;
    cr_assert_null(dpt_checkpoint_section(c, "absent", &b));
    cr_assert_eq(b, 77);

    /* The stored hash is SHA-256 of every byte before it. */
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned hl;
    cr_assert_eq(EVP_Digest(raw, REF_SIZE - 32, h, &hl, EVP_sha256(), NULL), 1);
    cr_assert_eq(memcmp(raw + REF_SIZE - 32, h, 32), 0);
    char hex[65];
    for (int k = 0; k < 32; k++)
        snprintf(hex + 2 * k, 3, "%02x", h[k]);
    cr_assert_str_eq(dpt_checkpoint_sha256_hex(c), hex);
    dpt_checkpoint_free(c);
    free(raw);
    free(p);
}

Test(checkpoint, zero_sections_is_header_plus_hash)
{
    char *p = t_path(tmpdir, "z.ckpt");
    cr_assert_eq(dpt_checkpoint_write(p, NULL, 0), DPT_OK, "%s", dpt_last_error());
    size_t n;
    free(t_read_file(p, &n));
    cr_assert_eq(n, 48);
    dpt_checkpoint_t *c;
    cr_assert_eq(dpt_checkpoint_read(p, &c), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_checkpoint_section_count(c), 0);
    dpt_checkpoint_free(c);
    free(p);
}

Test(checkpoint, overwrite_replaces_the_file_and_leaves_no_temp)
{
    char *p = t_path(tmpdir, "a.ckpt");
    write_reference(p);
    dpt_ckpt_section_t one = {"step", "12345", 5};
    cr_assert_eq(dpt_checkpoint_write(p, &one, 1), DPT_OK);
    dpt_checkpoint_t *c;
    cr_assert_eq(dpt_checkpoint_read(p, &c), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_checkpoint_section_count(c), 1);
    cr_assert_eq(memcmp(dpt_checkpoint_section(c, "step", NULL), "12345", 5), 0);
    dpt_checkpoint_free(c);
    cr_assert_eq(count_entries(tmpdir), 1);
    free(p);
}

Test(checkpoint, summary_lists_sections_and_config_text)
{
    char *p = t_path(tmpdir, "a.ckpt");
    write_reference(p);
    dpt_checkpoint_t *c;
    cr_assert_eq(dpt_checkpoint_read(p, &c), DPT_OK);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    dpt_checkpoint_print_summary(f, p, c);
    fclose(f);
    cr_assert(strstr(text, p));
    cr_assert(strstr(text, "version: 1"));
    cr_assert(strstr(text, "size: 680 bytes"));
    cr_assert(strstr(text, dpt_checkpoint_sha256_hex(c)));
    cr_assert(strstr(text, "params"), "%s", text);
    cr_assert(strstr(text, "400 bytes"), "%s", text);
    cr_assert(strstr(text, "    lr=0.1\n    epochs=3\n"), "%s", text);
    free(text);
    dpt_checkpoint_free(c);
    free(p);
}

/* ---- damage: each its own status and message -------------------------------------------- */

static unsigned char *flip_magic(unsigned char *b, size_t *n)
{
    b[3] ^= 0x20;
    return b;
}
Test(checkpoint, wrong_magic)
{
    expect_refused(damaged(flip_magic), DPT_ERR_FORMAT, "byte 0: bad magic");
}

static unsigned char *version_2(unsigned char *b, size_t *n)
{
    put_u32(b + 8, 2);
    return b;
}
Test(checkpoint, unsupported_version)
{
    expect_refused(damaged(version_2), DPT_ERR_FORMAT,
                   "byte 8: unsupported checkpoint version 2 (this build reads version 1)");
}

static unsigned char *cut_10(unsigned char *b, size_t *n)
{
    *n = 10;
    return b;
}
Test(checkpoint, truncated_in_header)
{
    expect_refused(damaged(cut_10), DPT_ERR_FORMAT, "truncated: 10 bytes");
}

static unsigned char *cut_60(unsigned char *b, size_t *n)
{
    *n = 60;
    return b;
}
Test(checkpoint, truncated_in_table)
{
    expect_refused(damaged(cut_60), DPT_ERR_FORMAT,
                   "truncated: 4 sections need at least 124 bytes, the file has 60");
}

Test(checkpoint, truncated_in_a_long_table_entry)
{
    char name[65];
    memset(name, 'n', 64);
    name[64] = '\0';
    dpt_ckpt_section_t s = {name, "x", 1};
    char *p = t_path(tmpdir, "long.ckpt");
    cr_assert_eq(dpt_checkpoint_write(p, &s, 1), DPT_OK);
    size_t n;
    char *buf = t_read_file(p, &n);
    t_write_file(p, buf, 80, 0); /* the entry spans bytes 16..98 */
    free(buf);
    expect_refused(p, DPT_ERR_FORMAT, "byte 16: truncated in section table entry 0");
}

static unsigned char *cut_300(unsigned char *b, size_t *n)
{
    *n = 300;
    return b;
}
Test(checkpoint, truncated_in_payload)
{
    expect_refused(damaged(cut_300), DPT_ERR_FORMAT,
                   "byte 40: section 'params' at bytes 192+400 runs past the end of the file "
                   "(300 bytes): truncated or corrupt");
}

static unsigned char *cut_660(unsigned char *b, size_t *n)
{
    *n = 660;
    return b;
}
Test(checkpoint, truncated_in_hash)
{
    expect_refused(damaged(cut_660), DPT_ERR_FORMAT,
                   "byte 648: truncated: the SHA-256 needs 32 bytes, the file ends at 660");
}

static unsigned char *flip_payload(unsigned char *b, size_t *n)
{
    b[300] ^= 0x01;
    return b;
}
Test(checkpoint, flipped_payload_byte_is_a_hash_mismatch)
{
    expect_refused(damaged(flip_payload), DPT_ERR_FORMAT,
                   "byte 648: SHA-256 mismatch, the file is corrupted");
}

static unsigned char *flip_hash(unsigned char *b, size_t *n)
{
    b[670] ^= 0x80;
    return b;
}
Test(checkpoint, flipped_hash_byte_is_a_hash_mismatch)
{
    expect_refused(damaged(flip_hash), DPT_ERR_FORMAT, "SHA-256 mismatch");
}

static unsigned char *append_5(unsigned char *b, size_t *n)
{
    b = realloc(b, *n + 5);
    memset(b + *n, 0, 5);
    *n += 5;
    return b;
}
Test(checkpoint, trailing_bytes)
{
    expect_refused(damaged(append_5), DPT_ERR_FORMAT,
                   "byte 680: 5 trailing bytes after the SHA-256");
}

static unsigned char *offset_far(unsigned char *b, size_t *n)
{
    put_u64(b + 48, (uint64_t)1 << 40);
    return b;
}
Test(checkpoint, section_offset_past_the_end)
{
    expect_refused(damaged(offset_far), DPT_ERR_FORMAT,
                   "byte 40: section 'params' at bytes 1099511627776+400 runs past the end");
}

static unsigned char *size_huge(unsigned char *b, size_t *n)
{
    put_u64(b + 56, UINT64_MAX - 100); /* offset + size would wrap around */
    return b;
}
Test(checkpoint, section_size_past_the_end_without_overflow)
{
    expect_refused(damaged(size_huge), DPT_ERR_FORMAT, "runs past the end of the file (680 bytes)");
}

static unsigned char *offset_overlap(unsigned char *b, size_t *n)
{
    put_u64(b + 48, 128); /* on top of "config" */
    return b;
}
Test(checkpoint, overlapping_section_is_refused)
{
    expect_refused(damaged(offset_overlap), DPT_ERR_FORMAT,
                   "byte 40: section 'params' at offset 128, expected 192");
}

static unsigned char *count_absurd(unsigned char *b, size_t *n)
{
    put_u32(b + 12, 0xffffffffu);
    return b;
}
Test(checkpoint, absurd_section_count)
{
    expect_refused(damaged(count_absurd), DPT_ERR_FORMAT,
                   "byte 12: section count 4294967295 exceeds the cap of 1024");
}

static unsigned char *name_len_0(unsigned char *b, size_t *n)
{
    b[40] = 0;
    return b;
}
Test(checkpoint, zero_name_length)
{
    expect_refused(damaged(name_len_0), DPT_ERR_FORMAT,
                   "byte 40: section 1 name length 0 not in 1..64");
}

static unsigned char *name_len_65(unsigned char *b, size_t *n)
{
    b[40] = 65;
    return b;
}
Test(checkpoint, over_long_name_length)
{
    expect_refused(damaged(name_len_65), DPT_ERR_FORMAT, "section 1 name length 65 not in 1..64");
}

static unsigned char *name_dup(unsigned char *b, size_t *n)
{
    memcpy(b + 42, "config", 6);
    return b;
}
Test(checkpoint, duplicate_section_name)
{
    expect_refused(damaged(name_dup), DPT_ERR_FORMAT, "byte 42: duplicate section name 'config'");
}

Test(checkpoint, empty_file)
{
    char *p = t_path(tmpdir, "empty.ckpt");
    t_write_file(p, "", 0, 0);
    expect_refused(p, DPT_ERR_FORMAT, "empty file");
}

Test(checkpoint, missing_file_is_an_io_error)
{
    char *p = t_path(tmpdir, "missing.ckpt");
    expect_refused(p, DPT_ERR_IO, "cannot open: No such file or directory");
}

/* ---- writing: refusals and atomicity ------------------------------------------------------ */

Test(checkpoint, write_refuses_bad_sections)
{
    char *p = t_path(tmpdir, "w.ckpt");
    char name[66];
    memset(name, 'a', 65);
    name[65] = '\0';
    dpt_ckpt_section_t too_long = {name, "x", 1};
    cr_assert_eq(dpt_checkpoint_write(p, &too_long, 1), DPT_ERR_INVALID_ARG);
    dpt_ckpt_section_t dup[] = {{"a", "x", 1}, {"a", "y", 1}};
    cr_assert_eq(dpt_checkpoint_write(p, dup, 2), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(), "duplicate section name 'a'"));
    dpt_ckpt_section_t *many = calloc(1025, sizeof *many);
    cr_assert_eq(dpt_checkpoint_write(p, many, 1025), DPT_ERR_LIMIT);
    free(many);
    cr_assert_eq(count_entries(tmpdir), 0);
    free(p);
}

Test(checkpoint, write_into_a_missing_directory_is_an_io_error)
{
    char *p = t_path(tmpdir, "no/such/dir/a.ckpt");
    cr_assert_eq(dpt_checkpoint_write(p, NULL, 0), DPT_ERR_IO);
    cr_assert(strstr(dpt_last_error(), p), "%s", dpt_last_error());
    cr_assert(strstr(dpt_last_error(), "No such file or directory"), "%s", dpt_last_error());
    cr_assert_eq(count_entries(tmpdir), 0);
    free(p);
}

Test(checkpoint, write_below_a_regular_file_is_an_io_error)
{
    char *file = t_path(tmpdir, "plain");
    t_write_text(file, "x");
    char *p = t_path(file, "a.ckpt");
    cr_assert_eq(dpt_checkpoint_write(p, NULL, 0), DPT_ERR_IO);
    cr_assert(strstr(dpt_last_error(), "Not a directory"), "%s", dpt_last_error());
    cr_assert_eq(count_entries(tmpdir), 1);
    free(p), free(file);
}

Test(checkpoint, failed_rename_removes_the_temp_file)
{
    char *p = t_path(tmpdir, "is-a-dir");
    char *cmd = malloc(strlen(p) + 16);
    sprintf(cmd, "mkdir '%s'", p);
    cr_assert_eq(t_system(cmd), 0);
    free(cmd);
    cr_assert_eq(dpt_checkpoint_write(p, NULL, 0), DPT_ERR_IO);
    cr_assert(strstr(dpt_last_error(), "cannot rename"), "%s", dpt_last_error());
    cr_assert_eq(count_entries(tmpdir), 1);
    free(p);
}

Test(checkpoint, write_failing_midway_keeps_the_old_file_and_no_temp)
{
    char *p = t_path(tmpdir, "a.ckpt");
    write_reference(p);
    dpt_checkpoint_t *before;
    cr_assert_eq(dpt_checkpoint_read(p, &before), DPT_OK);

    /* A file size limit makes write() fail with EFBIG part-way through, like a full disk. */
    static char big[4096];
    dpt_ckpt_section_t s = {"big", big, sizeof big};
    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 1000;
    signal(SIGXFSZ, SIG_IGN);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    dpt_status_t st = dpt_checkpoint_write(p, &s, 1);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    cr_assert_eq(st, DPT_ERR_IO, "%s", dpt_last_error());
    cr_assert(strstr(dpt_last_error(), "File too large"), "%s", dpt_last_error());

    dpt_checkpoint_t *after;
    cr_assert_eq(dpt_checkpoint_read(p, &after), DPT_OK, "%s", dpt_last_error());
    cr_assert_str_eq(dpt_checkpoint_sha256_hex(after), dpt_checkpoint_sha256_hex(before));
    cr_assert_eq(count_entries(tmpdir), 1);
    dpt_checkpoint_free(before);
    dpt_checkpoint_free(after);
    free(p);
}
