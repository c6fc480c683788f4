/*
 * fsutil — small file-system helpers.  All return 0 on success and -1 with
 * errno set on failure; none of them logs.
 */
#ifndef HC_FSUTIL_H
#define HC_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p with the given mode for created directories. */
int mkdir_p(const char *path, mode_t mode);
/* Read a whole file (at most max bytes) into a NUL-terminated malloc'd buffer. */
int file_read(const char *path, size_t max, char **out, size_t *len);
/* Read the last max bytes of a file. */
int file_read_tail(const char *path, size_t max, char **out, size_t *len);
/* Write via a temporary file, fsync and rename: readers see old or new, never half. */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* fsync a directory, so that a rename or unlink in it reaches the disk. */
int dir_sync(const char *path);
/* Remove a file; a file that is already gone is success. */
int file_remove(const char *path);
/* Remove a directory tree (no symlinks followed); gone already is success. */
int dir_remove_tree(const char *path);
/* snprintf into a malloc'd string; NULL on allocation failure. */
char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
