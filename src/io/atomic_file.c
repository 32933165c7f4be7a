/* Owns the temp-file-beside and directory-fsync helpers of atomic file replacement. */
#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *strndup(const char *s, size_t n);
char *strdup(const char *s);

int dpt_create_temp_beside(const char *path, char **tmp_out)
{
    static atomic_uint counter;
    size_t n = strlen(path) + 48;
    char *tmp = malloc(n);
    if (!tmp) return -1;
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(tmp, n, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd >= 0) {
            *tmp_out = tmp;
            return fd;
        }
        if (errno != EEXIST) break;
    }
    int e = errno;
    free(tmp);
    errno = e;
    return -1;
}

dpt_status_t dpt_sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return dpt_error(DPT_ERR_NOMEM, "%s: out of memory", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    dpt_status_t s = DPT_OK;
    if (fd < 0 || fsync(fd) != 0)
        s = dpt_error(DPT_ERR_IO, "%s: cannot sync directory %s: %s", path, dir, strerror(errno));
    if (fd >= 0) close(fd);
    free(dir);
    return s;
}
