/*
 * nn-cli-util.c: helpers of the nn-eval and nn-train-step commands (see
 * nn-cli-private.h).
 */
#include "nn/nn-cli-private.h"

#include "common/aapi-error.h"
#include "common/config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <sys/stat.h>

/* Raw arrays over this size are refused rather than read. */
#define NN_CLI_MAX_BYTES (G_GUINT64_CONSTANT(2) << 30)

bool nn_cli_parse_shape(const char *text, int dims[4], GError **error)
{
  g_auto(GStrv) parts = g_strsplit(text, ",", -1);
  static const gint64 max[4] = { 4096, 4096, 65536, 65536 };

  if (g_strv_length(parts) != 4) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "--shape needs N,C,H,W, got '%s'", text);
    return false;
  }
  for (int i = 0; i < 4; i++) {
    gint64 value;

    if (!aapi_parse_int64(parts[i], 1, max[i], &value, error)) {
      aapi_error_prefix(error, "--shape %s: ", text);
      return false;
    }
    dims[i] = (int) value;
  }
  return true;
}

/* Opens path for reading; a missing file is NOT_FOUND. */
static FILE *open_input(const char *what, const char *path, GError **error)
{
  FILE *file = g_fopen(path, "rb");

  if (file == NULL) {
    int saved = errno;
    g_set_error(error, AAPI_ERROR,
                saved == ENOENT ? AAPI_ERROR_NOT_FOUND : AAPI_ERROR_IO,
                "%s %s: %s", what, path, g_strerror(saved));
  }
  return file;
}

static void set_size_error(GError **error, const char *what,
                           const char *path, const char *relation,
                           guint64 have, guint64 want)
{
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
              "%s %s has %s%" G_GUINT64_FORMAT " bytes, the shape needs %"
              G_GUINT64_FORMAT, what, path, relation, have, want);
}

/* A regular file's size says at once whether it fits; pipes and devices
 * (/dev/zero never ends) have no size and are read. */
static bool check_regular_size(FILE *file, const char *what,
                               const char *path, guint64 want,
                               GError **error)
{
  struct stat st;

  if (fstat(fileno(file), &st) != 0 || !S_ISREG(st.st_mode) ||
      (guint64) st.st_size == want)
    return true;
  set_size_error(error, what, path, "", (guint64) st.st_size, want);
  return false;
}

/* Reads want bytes and then tries one more, so that no input, however
 * long, is read further than that. */
static bool read_bounded(FILE *file, const char *what, const char *path,
                         char *data, guint64 want, GError **error)
{
  gsize got = fread(data, 1, want, file);
  char extra;

  if (got == want && fread(&extra, 1, 1, file) == 1) {
    set_size_error(error, what, path, "more than ", want, want);
    return false;
  }
  if (ferror(file)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "%s %s: %s", what, path,
                g_strerror(errno));
    return false;
  }
  if (got != want) {
    set_size_error(error, what, path, "", got, want);
    return false;
  }
  return true;
}

void *nn_cli_read_exact(const char *what, const char *path, guint64 want,
                        GError **error)
{
  /* The size is checked first so that a huge shape reads nothing. */
  if (want > NN_CLI_MAX_BYTES) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_TOO_LARGE,
                "%s of %" G_GUINT64_FORMAT " bytes is over the limit", what,
                want);
    return NULL;
  }
  FILE *file = open_input(what, path, error);
  if (file == NULL)
    return NULL;

  g_autofree char *data = NULL;
  bool ok = check_regular_size(file, what, path, want, error);
  if (ok) {
    data = g_try_malloc(MAX(want, 1));
    if (data == NULL)
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_TOO_LARGE,
                  "%s of %" G_GUINT64_FORMAT " bytes does not fit in "
                  "memory", what, want);
    ok = data && read_bounded(file, what, path, data, want, error);
  }
  fclose(file);
  return ok ? g_steal_pointer(&data) : NULL;
}

bool nn_cli_write_raw(const char *path, const void *data, gsize bytes,
                      GError **error)
{
  g_autoptr(GError) local = NULL;

  if (!g_file_set_contents_full(path, data, bytes,
                                G_FILE_SET_CONTENTS_CONSISTENT, 0644,
                                &local)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "%s", local->message);
    return false;
  }
  return true;
}

bool nn_cli_check_input(const NnModel *model, const int dims[4], int *oh,
                        int *ow, GError **error)
{
  const NnHparams *h = nn_model_get_hparams(model);

  if (dims[1] != h->in_channels) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "the model takes %d input channels, --shape gives %d",
                h->in_channels, dims[1]);
    return false;
  }
  return nn_output_size(h, dims[2], dims[3], oh, ow, error);
}
