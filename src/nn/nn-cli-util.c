/*
 * nn-cli-util.c: helpers of the nn-eval and nn-train-step commands (see
 * nn-cli-private.h).
 */
#include "nn/nn-cli-private.h"

#include "common/aapi-error.h"
#include "common/config.h"

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

void *nn_cli_read_exact(const char *what, const char *path, guint64 want,
                        GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autofree char *data = NULL;
  gsize len = 0;

  /* The size is checked first so that a huge shape reads nothing. */
  if (want > NN_CLI_MAX_BYTES) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_TOO_LARGE,
                "%s of %" G_GUINT64_FORMAT " bytes is over the limit", what,
                want);
    return NULL;
  }
  if (!g_file_get_contents(path, &data, &len, &local)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND, "%s: %s", what,
                local->message);
    return NULL;
  }
  if (len != want) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "%s %s has %" G_GSIZE_FORMAT " bytes, the shape needs %"
                G_GUINT64_FORMAT, what, path, len, want);
    return NULL;
  }
  return g_steal_pointer(&data);
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
