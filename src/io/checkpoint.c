/* Owns the checkpoint file format: atomic writing, verified reading, section lookup, summary. */
#include "dptrain/checkpoint.h"
#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/checked.h"

static const uint8_t ckpt_magic[8] = {'D', 'P', 'T', 'C', 'K', 'P', 'T', '\0'};

enum {
    HEADER_BYTES = 16, /* magic, u32 version, u32 section count */
    HASH_BYTES = 32,   /* SHA-256 */
    ALIGN = 64,        /* payload alignment: lets a reader use the data in place */
    /* smallest table entry: u16 name length, a 1-byte name, u64 offset, u64 size */
    MIN_ENTRY_BYTES = 2 + 1 + 8 + 8,
};

typedef struct {
    char name[DPT_CKPT_MAX_NAME + 1];
    size_t entry_at; /* byte offset of the table entry, for messages */
    size_t off, bytes;
} section_t;

struct dpt_checkpoint {
    uint8_t *buf; /* the whole file, 64-byte aligned */
    size_t size;
    uint32_t version;
    size_t n;
    section_t *sec;
    char hex[2 * HASH_BYTES + 1];
};

/* ---- little-endian fields ---------------------------------------------------------------- */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int k = 3; k >= 0; k--)
        v = v << 8 | p[k];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = v << 8 | p[k];
    return v;
}

/* Rounds up to the payload alignment; callers keep x far below SIZE_MAX (file cap). */
static size_t align_up(size_t x)
{
    return (x + (ALIGN - 1)) & ~(size_t)(ALIGN - 1);
}

static void to_hex(const uint8_t *h, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (int k = 0; k < HASH_BYTES; k++) {
        out[2 * k] = digits[h[k] >> 4];
        out[2 * k + 1] = digits[h[k] & 15];
    }
    out[2 * HASH_BYTES] = '\0';
}

/* ---- writing ----------------------------------------------------------------------------- */

/* A file being written and hashed; the first failure sticks in err (an errno value). */
typedef struct {
    int fd;
    EVP_MD_CTX *md;
    int err;
} sink_t;

static void sink_raw(sink_t *s, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (!s->err && n) {
        ssize_t w = write(s->fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            s->err = w < 0 ? errno : EIO;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void sink_hashed(sink_t *s, const void *data, size_t n)
{
    if (s->err || !n) return;
    if (EVP_DigestUpdate(s->md, data, n) != 1) s->err = EIO;
    sink_raw(s, data, n);
}

static void sink_zeros(sink_t *s, size_t n)
{
    static const uint8_t zeros[ALIGN];
    sink_hashed(s, zeros, n);
}

/* Checks the caller's sections and computes the table size and the whole file size. */
static dpt_status_t plan_layout(const char *path, const dpt_ckpt_section_t *sec, size_t n,
                                size_t *table_end, size_t *file_size)
{
    if (n > DPT_CKPT_MAX_SECTIONS)
        return dpt_error(DPT_ERR_LIMIT, "%s: %zu sections, at most %u", path, n,
                         DPT_CKPT_MAX_SECTIONS);
    if (n && !sec) return dpt_error(DPT_ERR_INVALID_ARG, "%s: sections is NULL", path);
    size_t pos = HEADER_BYTES;
    for (size_t i = 0; i < n; i++) {
        size_t len = sec[i].name ? strlen(sec[i].name) : 0;
        if (len == 0 || len > DPT_CKPT_MAX_NAME)
            return dpt_error(DPT_ERR_INVALID_ARG, "%s: section %zu: name must be 1..%u bytes", path,
                             i, DPT_CKPT_MAX_NAME);
        if (sec[i].bytes && !sec[i].data)
            return dpt_error(DPT_ERR_INVALID_ARG, "%s: section '%s' has no data", path,
                             sec[i].name);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(sec[i].name, sec[j].name))
                return dpt_error(DPT_ERR_INVALID_ARG, "%s: duplicate section name '%s'", path,
                                 sec[i].name);
        pos += 2 + len + 16;
    }
    *table_end = pos;
    for (size_t i = 0; i < n; i++)
        if (!dpt_add_size(align_up(pos), sec[i].bytes, &pos) || pos > DPT_CKPT_MAX_FILE)
            return dpt_error(DPT_ERR_LIMIT,
                             "%s: sections total more than the %" PRIu64 "-byte checkpoint cap",
                             path, DPT_CKPT_MAX_FILE);
    *file_size = pos + HASH_BYTES;
    return DPT_OK;
}

/* Serialises the header and the section table (payload offsets included) into buf. */
static void build_table(uint8_t *buf, const dpt_ckpt_section_t *sec, size_t n, size_t table_end)
{
    memcpy(buf, ckpt_magic, sizeof ckpt_magic);
    put_u32(buf + 8, DPT_CKPT_VERSION);
    put_u32(buf + 12, (uint32_t)n);
    size_t pos = HEADER_BYTES, data = table_end;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(sec[i].name);
        data = align_up(data);
        put_u16(buf + pos, (uint16_t)len);
        memcpy(buf + pos + 2, sec[i].name, len);
        put_u64(buf + pos + 2 + len, data);
        put_u64(buf + pos + 2 + len + 8, sec[i].bytes);
        pos += 2 + len + 16;
        data += sec[i].bytes;
    }
}

/* Writes the complete file to fd; returns 0 or an errno value. */
static int write_contents(int fd, const uint8_t *table, size_t table_end,
                          const dpt_ckpt_section_t *sec, size_t n)
{
    sink_t s = {.fd = fd, .md = EVP_MD_CTX_new()};
    if (!s.md || EVP_DigestInit_ex(s.md, EVP_sha256(), NULL) != 1) s.err = ENOMEM;
    sink_hashed(&s, table, table_end);
    size_t pos = table_end;
    for (size_t i = 0; i < n; i++) {
        sink_zeros(&s, align_up(pos) - pos);
        sink_hashed(&s, sec[i].data, sec[i].bytes);
        pos = align_up(pos) + sec[i].bytes;
    }
    uint8_t hash[EVP_MAX_MD_SIZE];
    unsigned hlen = 0;
    if (!s.err && (EVP_DigestFinal_ex(s.md, hash, &hlen) != 1 || hlen != HASH_BYTES)) s.err = EIO;
    sink_raw(&s, hash, HASH_BYTES);
    EVP_MD_CTX_free(s.md);
    if (!s.err && fsync(fd) != 0) s.err = errno;
    return s.err;
}

dpt_status_t dpt_checkpoint_write(const char *path, const dpt_ckpt_section_t *sections, size_t n)
{
    if (!path) return dpt_error(DPT_ERR_INVALID_ARG, "checkpoint: no path");
    size_t table_end = 0, file_size = 0;
    dpt_status_t s = plan_layout(path, sections, n, &table_end, &file_size);
    if (s) return s;
    uint8_t *table = malloc(table_end);
    if (!table) return dpt_error(DPT_ERR_NOMEM, "%s: out of memory", path);
    build_table(table, sections, n, table_end);
    char *tmp = NULL;
    int fd = dpt_create_temp_beside(path, &tmp);
    if (fd < 0) {
        free(table);
        return dpt_error(DPT_ERR_IO, "%s: cannot create a temporary file beside it: %s", path,
                         strerror(errno));
    }
    int err = write_contents(fd, table, table_end, sections, n);
    free(table);
    if (close(fd) != 0 && !err) err = errno;
    if (err)
        s = dpt_error(DPT_ERR_IO, "%s: writing %s failed: %s", path, tmp, strerror(err));
    else if (rename(tmp, path) != 0)
        s = dpt_error(DPT_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    if (s) unlink(tmp);
    free(tmp);
    return s ? s : dpt_sync_parent_dir(path);
}

/* ---- reading ----------------------------------------------------------------------------- */

void dpt_checkpoint_free(dpt_checkpoint_t *c)
{
    if (!c) return;
    free(c->buf);
    free(c->sec);
    free(c);
}

/* Reads exactly n bytes at offset off; a short read means the file changed under us. */
static dpt_status_t read_at(int fd, const char *path, void *buf, size_t n, size_t off)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return dpt_error(DPT_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        if (r == 0)
            return dpt_error(DPT_ERR_IO, "%s: byte %zu: file shrank while being read", path, off);
        p += r;
        n -= (size_t)r;
        off += (size_t)r;
    }
    return DPT_OK;
}

/* Checks the 16-byte header and that n table entries can fit at all. */
static dpt_status_t check_header(const char *path, const uint8_t *h, size_t size, uint32_t *n)
{
    if (memcmp(h, ckpt_magic, sizeof ckpt_magic))
        return dpt_error(DPT_ERR_FORMAT, "%s: byte 0: bad magic, not a dptrain checkpoint", path);
    uint32_t version = get_u32(h + 8);
    if (version != DPT_CKPT_VERSION)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: byte 8: unsupported checkpoint version %" PRIu32
                         " (this build reads version %u)",
                         path, version, DPT_CKPT_VERSION);
    *n = get_u32(h + 12);
    if (*n > DPT_CKPT_MAX_SECTIONS)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: byte 12: section count %" PRIu32 " exceeds the cap of %u", path, *n,
                         DPT_CKPT_MAX_SECTIONS);
    size_t least = HEADER_BYTES + (size_t)*n * MIN_ENTRY_BYTES + HASH_BYTES;
    if (size < least)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: truncated: %" PRIu32 " sections need at least %zu bytes, the file "
                         "has %zu",
                         path, *n, least, size);
    return DPT_OK;
}

/* Parses table entry i at *pos into c->sec[i]. */
static dpt_status_t parse_entry(const char *path, dpt_checkpoint_t *c, size_t i, size_t *pos)
{
    const uint8_t *b = c->buf;
    size_t at = *pos;
    if (c->size - at < 2)
        return dpt_error(DPT_ERR_FORMAT, "%s: byte %zu: truncated in section table entry %zu", path,
                         at, i);
    size_t len = get_u16(b + at);
    if (len == 0 || len > DPT_CKPT_MAX_NAME)
        return dpt_error(DPT_ERR_FORMAT, "%s: byte %zu: section %zu name length %zu not in 1..%u",
                         path, at, i, len, DPT_CKPT_MAX_NAME);
    if (c->size - at - 2 < len + 16)
        return dpt_error(DPT_ERR_FORMAT, "%s: byte %zu: truncated in section table entry %zu", path,
                         at, i);
    section_t *s = &c->sec[i];
    if (memchr(b + at + 2, '\0', len))
        return dpt_error(DPT_ERR_FORMAT, "%s: byte %zu: section %zu name contains a NUL byte", path,
                         at + 2, i);
    memcpy(s->name, b + at + 2, len);
    s->name[len] = '\0';
    for (size_t j = 0; j < i; j++)
        if (!strcmp(c->sec[j].name, s->name))
            return dpt_error(DPT_ERR_FORMAT, "%s: byte %zu: duplicate section name '%s'", path,
                             at + 2, s->name);
    uint64_t off = get_u64(b + at + 2 + len), bytes = get_u64(b + at + 2 + len + 8);
    /* Bounds against the real size before anything uses them; size <= cap fits size_t. */
    if (off > c->size || bytes > c->size - off)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: byte %zu: section '%s' at bytes %" PRIu64 "+%" PRIu64
                         " runs past the end of the file (%zu bytes): truncated or corrupt",
                         path, at, s->name, off, bytes, c->size);
    s->entry_at = at;
    s->off = (size_t)off;
    s->bytes = (size_t)bytes;
    *pos = at + 2 + len + 16;
    return DPT_OK;
}

/* Payloads must follow the table in order at the next 64-byte boundary, so no two overlap and
 * no byte is unaccounted for; the SHA-256 must end the file exactly. */
static dpt_status_t check_layout(const char *path, const dpt_checkpoint_t *c, size_t table_end)
{
    size_t end = table_end;
    for (size_t i = 0; i < c->n; i++) {
        const section_t *s = &c->sec[i];
        if (s->off != align_up(end))
            return dpt_error(DPT_ERR_FORMAT,
                             "%s: byte %zu: section '%s' at offset %zu, expected %zu (payloads "
                             "follow the table in order, 64-byte aligned)",
                             path, s->entry_at, s->name, s->off, align_up(end));
        end = s->off + s->bytes;
    }
    if (c->size - end < HASH_BYTES)
        return dpt_error(
            DPT_ERR_FORMAT,
            "%s: byte %zu: truncated: the SHA-256 needs %d bytes, the file ends at %zu", path, end,
            HASH_BYTES, c->size);
    if (c->size - end > HASH_BYTES)
        return dpt_error(DPT_ERR_FORMAT, "%s: byte %zu: %zu trailing bytes after the SHA-256", path,
                         end + HASH_BYTES, c->size - end - HASH_BYTES);
    return DPT_OK;
}

static dpt_status_t check_hash(const char *path, dpt_checkpoint_t *c)
{
    size_t at = c->size - HASH_BYTES;
    uint8_t h[EVP_MAX_MD_SIZE];
    unsigned hlen = 0;
    if (EVP_Digest(c->buf, at, h, &hlen, EVP_sha256(), NULL) != 1 || hlen != HASH_BYTES)
        return dpt_error(DPT_ERR_INTERNAL, "%s: SHA-256 computation failed", path);
    to_hex(c->buf + at, c->hex);
    if (memcmp(h, c->buf + at, HASH_BYTES)) {
        char got[2 * HASH_BYTES + 1];
        to_hex(h, got);
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: byte %zu: SHA-256 mismatch, the file is corrupted (stored %s, "
                         "content hashes to %s)",
                         path, at, c->hex, got);
    }
    return DPT_OK;
}

/* Opens path and checks its size: a regular file, not empty, not over the cap. */
static dpt_status_t open_sized(const char *path, int *fd_out, size_t *size_out)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return dpt_error(DPT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    dpt_status_t s = DPT_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        s = dpt_error(DPT_ERR_IO, "%s: not a regular file", path);
    else if ((uintmax_t)st.st_size > DPT_CKPT_MAX_FILE || (uintmax_t)st.st_size > SIZE_MAX / 2)
        s = dpt_error(DPT_ERR_LIMIT, "%s: %jd bytes is over the %" PRIu64 "-byte checkpoint cap",
                      path, (intmax_t)st.st_size, DPT_CKPT_MAX_FILE);
    else if (st.st_size == 0)
        s = dpt_error(DPT_ERR_FORMAT, "%s: empty file (0 bytes), not a checkpoint", path);
    else if (st.st_size < HEADER_BYTES + HASH_BYTES)
        s = dpt_error(DPT_ERR_FORMAT,
                      "%s: truncated: %jd bytes, a checkpoint has at least %d (header + SHA-256)",
                      path, (intmax_t)st.st_size, HEADER_BYTES + HASH_BYTES);
    if (s) {
        close(fd);
        return s;
    }
    *fd_out = fd;
    *size_out = (size_t)st.st_size;
    return DPT_OK;
}

/* Loads the file (header checked before the big allocation) and verifies everything. */
static dpt_status_t load(const char *path, int fd, dpt_checkpoint_t *c)
{
    uint8_t h[HEADER_BYTES];
    uint32_t n = 0;
    dpt_status_t s = read_at(fd, path, h, sizeof h, 0);
    if (!s) s = check_header(path, h, c->size, &n);
    if (s) return s;
    c->version = get_u32(h + 8);
    c->n = n;
    c->buf = aligned_alloc(ALIGN, align_up(c->size));
    c->sec = calloc(n ? n : 1, sizeof *c->sec);
    if (!c->buf || !c->sec) return dpt_error(DPT_ERR_NOMEM, "%s: out of memory", path);
    if ((s = read_at(fd, path, c->buf, c->size, 0))) return s;
    size_t pos = HEADER_BYTES;
    for (size_t i = 0; i < n; i++)
        if ((s = parse_entry(path, c, i, &pos))) return s;
    if ((s = check_layout(path, c, pos))) return s;
    return check_hash(path, c);
}

dpt_status_t dpt_checkpoint_read(const char *path, dpt_checkpoint_t **out)
{
    *out = NULL;
    int fd = -1;
    size_t size = 0;
    dpt_status_t s = open_sized(path, &fd, &size);
    if (s) return s;
    dpt_checkpoint_t *c = calloc(1, sizeof *c);
    if (!c) s = dpt_error(DPT_ERR_NOMEM, "%s: out of memory", path);
    if (c) {
        c->size = size;
        s = load(path, fd, c);
    }
    close(fd);
    if (s) {
        dpt_checkpoint_free(c);
        return s;
    }
    *out = c;
    return DPT_OK;
}

/* ---- access ------------------------------------------------------------------------------ */

const void *dpt_checkpoint_section(const dpt_checkpoint_t *c, const char *name, size_t *bytes)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->sec[i].name, name)) {
            if (bytes) *bytes = c->sec[i].bytes;
            return c->buf + c->sec[i].off;
        }
    return NULL;
}

size_t dpt_checkpoint_section_count(const dpt_checkpoint_t *c)
{
    return c->n;
}

const char *dpt_checkpoint_section_name(const dpt_checkpoint_t *c, size_t i)
{
    return c->sec[i].name;
}

size_t dpt_checkpoint_section_bytes(const dpt_checkpoint_t *c, size_t i)
{
    return c->sec[i].bytes;
}

const char *dpt_checkpoint_sha256_hex(const dpt_checkpoint_t *c)
{
    return c->hex;
}

/* Text means: tabs, newlines and printable bytes (UTF-8 included), optionally NUL-ended. */
static bool is_text(const uint8_t *p, size_t n)
{
    if (n && p[n - 1] == '\0') n--;
    for (size_t k = 0; k < n; k++)
        if ((p[k] < 0x20 && p[k] != '\n' && p[k] != '\t' && p[k] != '\r') || p[k] == 0x7f)
            return false;
    return true;
}

void dpt_checkpoint_print_summary(FILE *f, const char *path, const dpt_checkpoint_t *c)
{
    fprintf(f, "checkpoint: %s\n  version: %" PRIu32 "\n  size: %zu bytes\n  sha256: %s\n", path,
            c->version, c->size, c->hex);
    fprintf(f, "  sections: %zu\n", c->n);
    for (size_t i = 0; i < c->n; i++)
        fprintf(f, "    %-24s %12zu bytes\n", c->sec[i].name, c->sec[i].bytes);
    size_t n;
    const uint8_t *cfg = dpt_checkpoint_section(c, "config", &n);
    if (!cfg || !is_text(cfg, n)) return;
    if (n && cfg[n - 1] == '\0') n--;
    fprintf(f, "  config:\n    ");
    for (size_t k = 0; k < n; k++) {
        fputc(cfg[k], f);
        if (cfg[k] == '\n' && k + 1 < n) fputs("    ", f);
    }
    if (n && cfg[n - 1] != '\n') fputc('\n', f);
}

dpt_status_t dpt_checkpoint_section_exact(const dpt_checkpoint_t *c, const char *path,
                                          const char *name, size_t want, const void **data)
{
    size_t bytes;
    *data = dpt_checkpoint_section(c, name, &bytes);
    if (!*data || bytes != want)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: section '%s' missing or of %zu bytes where this run needs %zu "
                         "(checkpoint from a different model or optimizer?)",
                         path, name, *data ? bytes : 0, want);
    return DPT_OK;
}

dpt_status_t dpt_checkpoint_section_optional(const dpt_checkpoint_t *c, const char *path,
                                             const char *name, size_t want, const void **data)
{
    *data = dpt_checkpoint_section(c, name, NULL);
    return *data ? dpt_checkpoint_section_exact(c, path, name, want, data) : DPT_OK;
}
