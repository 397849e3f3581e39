/* file.h: whole-file reads and atomic replacement. */
#ifndef P2P_FILE_H
#define P2P_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* Read all of PATH (at most MAX bytes) into a NUL-terminated buffer the
 * caller frees. Returns NULL with errno set (EFBIG when over MAX). */
char *file_read(const char *path, size_t max, size_t *len);

/* Replace PATH with DATA atomically: write a temporary file beside it, fsync
 * it, rename it over PATH, fsync the directory. A crash leaves either the
 * old or the new content, never a mix. 0 or -1 with errno. */
int file_replace(const char *path, const void *data, size_t len, mode_t mode);

/* Create DIR (not its parents) if missing. 0 or -1 with errno. */
int file_mkdir(const char *dir, mode_t mode);

#endif
