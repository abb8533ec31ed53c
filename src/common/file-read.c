/* file-read.c: whole-file reads with a size limit, without mappings, and
 * the stat identity of a file's content. */
#include "file-read.h"

#include "aapi-error.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

static void set_errno_error(GError **error, const char *path, int code)
{
  g_set_error(error, AAPI_ERROR,
              code == ENOENT ? AAPI_ERROR_NOT_FOUND : AAPI_ERROR_IO,
              "cannot read %s: %s", path, g_strerror(code));
}

/* Reads up to size bytes; *got is what the file still held. */
static bool read_up_to(int fd, const char *path, char *data, gsize size,
                       gsize *got, GError **error)
{
  *got = 0;
  while (*got < size) {
    ssize_t n = read(fd, data + *got, MIN(size - *got, (gsize) 1 << 26));

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      set_errno_error(error, path, errno);
      return false;
    }
    if (n == 0)
      break;
    *got += (gsize) n;
  }
  return true;
}

char *aapi_read_file_capped(const char *path, guint64 max, gsize *length,
                            GError **error)
{
  /* O_NONBLOCK: a FIFO in a model folder must not hang the open. */
  int fd = g_open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
  struct stat st;

  if (fd < 0) {
    set_errno_error(error, path, errno);
    return NULL;
  }
  if (fstat(fd, &st) != 0) {
    set_errno_error(error, path, errno);
    close(fd);
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO,
                "cannot read %s: not a regular file", path);
    return NULL;
  }
  if ((guint64) st.st_size > max) {
    close(fd);
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_TOO_LARGE,
                "%s is %" G_GUINT64_FORMAT " bytes, over the %"
                G_GUINT64_FORMAT " bytes allowed", path,
                (guint64) st.st_size, max);
    return NULL;
  }

  gsize size = (gsize) st.st_size;
  g_autofree char *data = g_try_malloc(size + 1);
  gsize got = 0;
  bool ok = data != NULL;

  if (!ok)
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_TOO_LARGE,
                "%s: %" G_GSIZE_FORMAT " bytes do not fit in memory", path,
                size);
  ok = ok && read_up_to(fd, path, data, size, &got, error);
  close(fd);
  if (!ok)
    return NULL;
  data[got] = '\0';
  *length = got;
  return g_steal_pointer(&data);
}

bool aapi_file_stamp(const char *path, AapiFileStamp *stamp)
{
  GStatBuf st;

  if (g_stat(path, &st) != 0)
    return false;
  stamp->size = st.st_size;
  stamp->mtime_ns = (gint64) st.st_mtim.tv_sec * 1000000000 +
                    st.st_mtim.tv_nsec;
  stamp->ctime_ns = (gint64) st.st_ctim.tv_sec * 1000000000 +
                    st.st_ctim.tv_nsec;
  stamp->inode = st.st_ino;
  return true;
}

bool aapi_file_stamp_equal(const AapiFileStamp *a, const AapiFileStamp *b)
{
  return a->size == b->size && a->mtime_ns == b->mtime_ns &&
         a->ctime_ns == b->ctime_ns && a->inode == b->inode;
}
