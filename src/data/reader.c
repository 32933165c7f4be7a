/* Owns gzip-or-raw sequential reads for the dataset loaders (see reader.h). */
#include "data/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Large reads go straight from inflate into the caller's buffer; this only sizes zlib's
 * input buffer, so fewer, larger read() calls. */
#define DPT_GZ_BUFFER (256u * 1024u)
/* gzread takes an unsigned int length; stay well below it. */
#define DPT_GZ_CHUNK ((size_t)1 << 30)
/* How far past the declared end a compressed tail is inflated to size the message. */
#define TRAIL_COUNT_CAP ((size_t)1 << 20)

/* Compressed formats zlib cannot read, by their magic numbers; NULL for anything else. */
static const char *other_compression(const unsigned char *m, size_t n, const char **tool)
{
    static const struct {
        const char *name, *tool;
        unsigned char magic[6];
        size_t len;
    } kinds[] = {
        {"xz", "xz -d", {0xfd, '7', 'z', 'X', 'Z', 0x00}, 6},
        {"zstd", "zstd -d", {0x28, 0xb5, 0x2f, 0xfd}, 4},
        {"bzip2", "bzip2 -d", {'B', 'Z', 'h'}, 3},
        {"zip", "unzip", {'P', 'K', 0x03, 0x04}, 4},
        {"7z", "7z x", {'7', 'z', 0xbc, 0xaf, 0x27, 0x1c}, 6},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (n >= kinds[i].len && !memcmp(m, kinds[i].magic, kinds[i].len)) {
            *tool = kinds[i].tool;
            return kinds[i].name;
        }
    return NULL;
}

dpt_status_t dpt_reader_open(dpt_reader_t *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return dpt_error(DPT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return dpt_error(DPT_ERR_IO, "%s: not a regular file", path);
    }
    r->file_size = (size_t)sb.st_size;
    unsigned char magic[6] = {0};
    /* pread leaves the file offset at 0 for zlib, which does its own detection; ours is so
     * that messages can say whether the stream was compressed, and so that formats zlib
     * cannot read are refused instead of parsed as raw bytes. */
    ssize_t nm = pread(fd, magic, sizeof magic, 0);
    r->is_gzip = nm >= 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    const char *tool, *kind = other_compression(magic, nm > 0 ? (size_t)nm : 0, &tool);
    if (kind) {
        close(fd);
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: byte 0: %s-compressed file; dptrain reads plain or gzip-compressed "
                         "files (decompress it first: %s)",
                         path, kind, tool);
    }
    r->gz = gzdopen(fd, "rb");
    if (!r->gz) {
        close(fd);
        return dpt_error(DPT_ERR_IO, "%s: cannot open: out of memory in zlib", path);
    }
    gzbuffer(r->gz, DPT_GZ_BUFFER);
    return DPT_OK;
}

/* zlib prefixes its messages with the path it was given, "<fd:N>" for gzdopen; drop it. */
static const char *zlib_msg(const char *m)
{
    const char *colon = strncmp(m, "<fd:", 4) == 0 ? strstr(m, ": ") : NULL;
    return colon ? colon + 2 : m;
}

/* Turns a failed or short read into one message; want/got describe the read. zlib inflates
 * ahead of the caller, so a corrupt stream may be reported at an earlier offset than the
 * damage: the offset says where reading stood. */
static dpt_status_t reader_fail(dpt_reader_t *r, size_t at, const char *what, size_t want,
                                size_t got)
{
    int zerr = Z_OK;
    const char *zmsg = gzerror(r->gz, &zerr);
    if (zerr == Z_ERRNO)
        return dpt_error(DPT_ERR_IO, "%s: byte %zu: read error in %s: %s", r->path, at, what,
                         strerror(errno));
    if (zerr == Z_BUF_ERROR)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: byte %zu: truncated gzip stream in %s (expected %zu bytes vs got "
                         "%zu)",
                         r->path, at, what, want, got);
    if (zerr != Z_OK)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: byte %zu: corrupt gzip stream (zlib: %s) while reading %s", r->path,
                         at + got, zlib_msg(zmsg), what);
    return dpt_error(DPT_ERR_FORMAT,
                     "%s: byte %zu: file ends inside %s (expected %zu bytes vs got %zu)", r->path,
                     at, what, want, got);
}

dpt_status_t dpt_reader_read(dpt_reader_t *r, void *buf, size_t n, const char *what)
{
    size_t at = r->off, got = 0;
    unsigned char *p = buf;
    while (got < n) {
        size_t want = n - got < DPT_GZ_CHUNK ? n - got : DPT_GZ_CHUNK;
        int k = gzread(r->gz, p + got, (unsigned)want);
        if (k <= 0) break;
        got += (size_t)k;
    }
    r->off += got;
    if (got < n) return reader_fail(r, at, what, n, got);
    return DPT_OK;
}

dpt_status_t dpt_reader_read_some(dpt_reader_t *r, void *buf, size_t cap, size_t *got)
{
    size_t want = cap < DPT_GZ_CHUNK ? cap : DPT_GZ_CHUNK;
    int k = gzread(r->gz, buf, (unsigned)want);
    if (k < 0) return reader_fail(r, r->off, "the file", want, 0);
    if (k == 0) {
        /* End of file, or a gzip stream that ended early or broke: gzerror tells. */
        int zerr = Z_OK;
        gzerror(r->gz, &zerr);
        if (zerr != Z_OK) return reader_fail(r, r->off, "the file", want, 0);
    }
    r->off += (size_t)k;
    *got = (size_t)k;
    return DPT_OK;
}

dpt_status_t dpt_reader_expect_end(dpt_reader_t *r, const char *after)
{
    unsigned char extra[64];
    int k = gzread(r->gz, extra, sizeof extra);
    if (k > 0) {
        /* Raw files know exactly how much is left; a compressed stream is counted up to a
         * bound so that a huge tail is not inflated just for the message. */
        size_t more = (size_t)k;
        if (!r->is_gzip && r->file_size > r->off) more = r->file_size - r->off;
        while (r->is_gzip && more < TRAIL_COUNT_CAP && (k = gzread(r->gz, extra, sizeof extra)) > 0)
            more += (size_t)k;
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: byte %zu: trailing data after %s (expected end of file vs %s%zu "
                         "more bytes)",
                         r->path, r->off, after, more >= TRAIL_COUNT_CAP ? "at least " : "", more);
    }
    int zerr = Z_OK;
    const char *zmsg = gzerror(r->gz, &zerr);
    if (zerr == Z_ERRNO)
        return dpt_error(DPT_ERR_IO, "%s: byte %zu: read error: %s", r->path, r->off,
                         strerror(errno));
    if (zerr == Z_BUF_ERROR)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: byte %zu: truncated gzip stream after %s (missing trailer)", r->path,
                         r->off, after);
    if (zerr != Z_OK)
        return dpt_error(DPT_ERR_FORMAT, "%s: byte %zu: corrupt gzip stream (zlib: %s) after %s",
                         r->path, r->off, zlib_msg(zmsg), after);
    return DPT_OK;
}

void dpt_reader_close(dpt_reader_t *r)
{
    if (r->gz) gzclose_r(r->gz);
    r->gz = NULL;
}
