/*
 * file-read.h: reading a whole file into memory, up to a size limit, and
 * telling whether a file changed since it was read.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

/*
 * Reads the regular file at path into a new buffer (NUL-terminated, not
 * counted in *length).  Files over max bytes are refused without being
 * read (AAPI_ERROR_TOO_LARGE); a missing file is AAPI_ERROR_NOT_FOUND,
 * anything else that stops the read AAPI_ERROR_IO.
 *
 * Files another process may rewrite while they are read (model files
 * copied into place) are read with this rather than mapped: a mapping
 * whose file shrinks under it kills the process with SIGBUS.  A file that
 * shrinks during the read comes back shorter, one that grows is read up
 * to the size it had when opened; either way the parser sees a plain
 * truncated or stale copy.
 */
char *aapi_read_file_capped(const char *path, guint64 max, gsize *length,
                            GError **error);

/* The identity of a file's content as far as stat tells: a copy still
 * being written changes its size or times, a replacement by rename its
 * inode, a chmod its change time. */
typedef struct {
  gint64 size;
  gint64 mtime_ns;
  gint64 ctime_ns;
  guint64 inode;
} AapiFileStamp;

/* False when the file cannot be stat'ed. */
bool aapi_file_stamp(const char *path, AapiFileStamp *stamp);
bool aapi_file_stamp_equal(const AapiFileStamp *a, const AapiFileStamp *b);
