/*
 * file-read.h: reading a whole file into memory, up to a size limit.
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
