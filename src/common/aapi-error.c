/* aapi-error.c: the aapi error domain. */
#include "aapi-error.h"

G_DEFINE_QUARK(aapi-error-quark, aapi_error)

void aapi_error_prefix(GError **error, const char *fmt, ...)
{
  if (error == NULL || *error == NULL)
    return;

  va_list ap;
  va_start(ap, fmt);
  g_autofree char *prefix = g_strdup_vprintf(fmt, ap);
  va_end(ap);

  g_prefix_error(error, "%s", prefix);
}
