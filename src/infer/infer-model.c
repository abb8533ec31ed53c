/*
 * infer-model.c: which model files can serve a class, and which of a
 * class folder's files is the newest.
 */
#include "infer/infer.h"

#include "common/aapi-error.h"

#include <string.h>

bool infer_model_check_class(const NnHparams *hparams, GError **error)
{
  if (hparams->n_classes != 2) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "a class model must have 2 outputs (background, class), "
                "this one has %d", hparams->n_classes);
    return false;
  }
  if (hparams->in_channels != 3) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "a class model must have 3 input channels (RGB), this one "
                "has %d", hparams->in_channels);
    return false;
  }
  return true;
}

bool infer_model_fits_class(const NnHparams *hparams,
                            const AapiClassInfo *info, GError **error)
{
  int grid = 1 << (hparams->depth - 1);
  int oh = 0, ow = 0;

  if (!infer_model_check_class(hparams, error))
    return false;
  if (!hparams->padding) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "the model has padding off; class %s predicts with whole "
                "%d px tiles, which needs padding on", info->name,
                info->patch_size);
    return false;
  }
  if (info->patch_size % grid != 0 ||
      !nn_output_size(hparams, info->patch_size, info->patch_size, &oh,
                      &ow, NULL) ||
      oh != info->patch_size || ow != info->patch_size) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "patch_size %d of class %s (extractor config) does not "
                "suit this depth-%d model, which needs a multiple of %d "
                "(2^(depth-1))", info->patch_size, info->name,
                hparams->depth, grid);
    return false;
  }
  return true;
}

/* Reads n digits at *p into *value and moves past them. */
static bool take_digits(const char **p, int n, int *value)
{
  *value = 0;
  for (int i = 0; i < n; i++) {
    if (!g_ascii_isdigit((*p)[i]))
      return false;
    *value = *value * 10 + ((*p)[i] - '0');
  }
  *p += n;
  return true;
}

static bool take_char(const char **p, const char *allowed)
{
  if (**p == '\0' || strchr(allowed, **p) == NULL)
    return false;
  (*p)++;
  return true;
}

/* The zone after the time: Z, +HH:MM, -HH:MM, +HHMM or none (read as
 * UTC, as aapi writes its names), in seconds east of UTC. */
static int take_zone(const char **p)
{
  int sign = **p == '+' ? 1 : **p == '-' ? -1 : 0;
  const char *q = *p + 1;
  int hours, minutes;

  if (**p == 'Z') {
    (*p)++;
    return 0;
  }
  if (sign == 0 || !take_digits(&q, 2, &hours))
    return 0;
  if (*q == ':')
    q++;
  if (!take_digits(&q, 2, &minutes) || hours > 23 || minutes > 59)
    return 0;
  *p = q;
  return sign * (hours * 3600 + minutes * 60);
}

/* The UTC time, in microseconds since 1970, of the ISO 8601 timestamp
 * that name starts with; false when it starts with none. */
static bool name_time(const char *name, gint64 *usec)
{
  const char *p = name;
  int y, mo, d, h, mi, s, fraction = 0, digits = 0;

  if (!take_digits(&p, 4, &y) || !take_char(&p, "-") ||
      !take_digits(&p, 2, &mo) || !take_char(&p, "-") ||
      !take_digits(&p, 2, &d) || !take_char(&p, "T ") ||
      !take_digits(&p, 2, &h) || !take_char(&p, ":") ||
      !take_digits(&p, 2, &mi) || !take_char(&p, ":") ||
      !take_digits(&p, 2, &s))
    return false;
  if (*p == '.' && g_ascii_isdigit(p[1])) {
    for (p++; g_ascii_isdigit(*p); p++, digits++)
      if (digits < 6)
        fraction = fraction * 10 + (*p - '0');
    for (; digits < 6; digits++)
      fraction *= 10;
  }
  int zone = take_zone(&p);
  g_autoptr(GDateTime) time = g_date_time_new_utc(y, mo, d, h, mi, s);
  if (time == NULL)
    return false;
  *usec = (g_date_time_to_unix(time) - zone) * G_USEC_PER_SEC + fraction;
  return true;
}

int infer_model_name_compare(const char *a, const char *b)
{
  gint64 ta = 0, tb = 0;
  bool has_a = name_time(a, &ta), has_b = name_time(b, &tb);

  if (has_a != has_b)
    return has_a ? -1 : 1;
  if (has_a && ta != tb)
    return ta > tb ? -1 : 1;
  return -strcmp(a, b);
}
