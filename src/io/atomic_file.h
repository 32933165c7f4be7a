/* The pieces of crash-safe file replacement shared by checkpoints and metrics.csv: a unique
 * temporary file beside the target (same directory, so rename is atomic) and an fsync of the
 * directory so that the rename itself survives a crash. */
#ifndef DPT_IO_ATOMIC_FILE_H
#define DPT_IO_ATOMIC_FILE_H

#include "dptrain/status.h"

/* Creates a new, exclusive file named "<path>.tmp.<pid>.<n>"; returns its fd and the malloc'd
 * name in *tmp_out, or -1 with errno set. */
int dpt_create_temp_beside(const char *path, char **tmp_out);

/* fsyncs the directory holding path (DPT_ERR_IO naming both on failure). */
dpt_status_t dpt_sync_parent_dir(const char *path);

#endif
