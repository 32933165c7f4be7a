/* Checkpoint files: a verified container of named binary sections (the trainer decides what
 * goes in them: config text, parameters, optimizer state, RNG and schedule state, ...).
 *
 * Format (byte by byte in docs/formats.md): "DPTCKPT\0", u32 version, u32 section count, a
 * section table of {u16 name length, name, u64 offset, u64 size}, payloads at 64-byte aligned
 * offsets, and a SHA-256 of everything before it. All integers little-endian. */
#ifndef DPTRAIN_CHECKPOINT_H
#define DPTRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dptrain/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DPT_CKPT_VERSION 1u
#define DPT_CKPT_MAX_NAME 64u                  /* bytes in a section name */
#define DPT_CKPT_MAX_SECTIONS 1024u            /* sections in one file */
#define DPT_CKPT_MAX_FILE ((uint64_t)16 << 30) /* whole file, bytes (16 GiB) */

/* One section to write: name (1..DPT_CKPT_MAX_NAME bytes, no NUL, unique in the file) and
 * bytes of data (data may be NULL when bytes is 0). */
typedef struct {
    const char *name;
    const void *data;
    size_t bytes;
} dpt_ckpt_section_t;

/* Writes atomically: a temp file in the same directory, write, fsync, rename over path, fsync
 * the directory. A failure (DPT_ERR_IO naming the path, DPT_ERR_INVALID_ARG / DPT_ERR_LIMIT for
 * bad sections) leaves any existing file at path intact and removes the temp file. Thread-safe
 * for distinct paths. */
dpt_status_t dpt_checkpoint_write(const char *path, const dpt_ckpt_section_t *sections, size_t n);

typedef struct dpt_checkpoint dpt_checkpoint_t;

/* Reads and verifies a whole checkpoint into memory: magic, version, section table bounds
 * (checked arithmetic, against the real file size before allocating), names, layout, and the
 * SHA-256. A file that cannot be opened or read is DPT_ERR_IO; a truncated, corrupted,
 * wrong-version or over-long file is DPT_ERR_FORMAT naming the file, the byte offset where
 * sensible and what is wrong; one over DPT_CKPT_MAX_FILE is DPT_ERR_LIMIT. The caller owns
 * *out (dpt_checkpoint_free). */
dpt_status_t dpt_checkpoint_read(const char *path, dpt_checkpoint_t **out);

/* Section data by name, NULL when absent (*bytes untouched then; bytes may be NULL). The data
 * is 64-byte aligned in memory and valid until dpt_checkpoint_free. */
const void *dpt_checkpoint_section(const dpt_checkpoint_t *c, const char *name, size_t *bytes);
/* Section `name` of exactly `want` bytes, for the modules that read their own section: anything
 * else is DPT_ERR_FORMAT "<path>: section 'NAME' missing or of N bytes where this run needs M
 * (checkpoint from a different model or optimizer?)". */
dpt_status_t dpt_checkpoint_section_exact(const dpt_checkpoint_t *c, const char *path,
                                          const char *name, size_t want, const void **data);
/* The same for an optional section: absent is fine (*data NULL: older checkpoints, features
 * turned on at resume); present with another size is the error above. */
dpt_status_t dpt_checkpoint_section_optional(const dpt_checkpoint_t *c, const char *path,
                                             const char *name, size_t want, const void **data);
size_t dpt_checkpoint_section_count(const dpt_checkpoint_t *c);
/* Name and size of section i (i < count), in file order. */
const char *dpt_checkpoint_section_name(const dpt_checkpoint_t *c, size_t i);
size_t dpt_checkpoint_section_bytes(const dpt_checkpoint_t *c, size_t i);
/* The SHA-256 stored in the file (verified), as 64 lowercase hex characters. */
const char *dpt_checkpoint_sha256_hex(const dpt_checkpoint_t *c);
/* NULL is a no-op. */
void dpt_checkpoint_free(dpt_checkpoint_t *c);

/* Prints a human summary: path, version, size, sha256, each section's name and size, and the
 * text of a section named "config" when it is printable text (for `dptrain info --checkpoint`). */
void dpt_checkpoint_print_summary(FILE *f, const char *path, const dpt_checkpoint_t *c);

#ifdef __cplusplus
}
#endif
#endif
