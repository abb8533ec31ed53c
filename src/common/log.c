/* log.c: a log writer with timestamps and debug categories. */
#include "log.h"

#include "aapi-error.h"

#include <stdio.h>

static guint debug_flags;

static const GDebugKey debug_keys[] = {
  { "sql", AAPI_DEBUG_SQL },
  { "http", AAPI_DEBUG_HTTP },
  { "perf", AAPI_DEBUG_PERF },
  { "slide", AAPI_DEBUG_SLIDE },
  { "nn", AAPI_DEBUG_NN },
  { "infer", AAPI_DEBUG_INFER },
  { "train", AAPI_DEBUG_TRAIN },
};

bool aapi_debug_enabled(AapiDebugFlags category)
{
  return (g_atomic_int_get((gint *) &debug_flags) & category) != 0;
}

static const char *level_name(GLogLevelFlags level)
{
  if (level & G_LOG_LEVEL_ERROR)
    return "error";
  if (level & G_LOG_LEVEL_CRITICAL)
    return "critical";
  if (level & G_LOG_LEVEL_WARNING)
    return "warning";
  if (level & G_LOG_LEVEL_DEBUG)
    return "debug";
  return "info";
}

static GLogWriterOutput write_line(GLogLevelFlags level,
                                   const GLogField *fields, gsize n_fields,
                                   gpointer user_data)
{
  const char *message = NULL;
  const char *domain = NULL;

  (void) user_data;
  for (gsize i = 0; i < n_fields; i++) {
    if (g_strcmp0(fields[i].key, "MESSAGE") == 0)
      message = fields[i].value;
    else if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0)
      domain = fields[i].value;
  }
  if ((level & G_LOG_LEVEL_DEBUG) && !aapi_debug_enabled(~0u))
    return G_LOG_WRITER_HANDLED;

  g_autoptr(GDateTime) now = g_date_time_new_now_utc();
  g_autofree char *stamp = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S.%fZ");
  fprintf(stderr, "%s %s%s%s %s\n", stamp, level_name(level),
          domain ? " " : "", domain ? domain : "", message ? message : "");
  fflush(stderr);
  return G_LOG_WRITER_HANDLED;
}

bool aapi_debug_check(const char *text, GError **error)
{
  g_auto(GStrv) words = g_strsplit_set(text ? text : "", ":;, \t", -1);

  for (guint i = 0; words[i]; i++) {
    bool known = *words[i] == '\0' ||
                 g_ascii_strcasecmp(words[i], "all") == 0;

    for (guint k = 0; !known && k < G_N_ELEMENTS(debug_keys); k++)
      known = g_ascii_strcasecmp(words[i], debug_keys[k].key) == 0;
    if (!known) {
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                  "AAPI_DEBUG: '%.32s' is not sql, http, perf, slide, nn, "
                  "infer, train or all", words[i]);
      return false;
    }
  }
  return true;
}

void aapi_log_init(void)
{
  const char *env = g_getenv("AAPI_DEBUG");

  if (env)
    debug_flags = g_parse_debug_string(env, debug_keys,
                                       G_N_ELEMENTS(debug_keys));
  g_log_set_writer_func(write_line, NULL, NULL);
}
