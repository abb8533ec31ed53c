/*
 * log.h: levelled, timestamped logging on g_log, with opt-in debug
 * categories chosen by AAPI_DEBUG (comma separated: sql, http, perf, slide,
 * nn, infer, train, or "all").
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef enum {
  AAPI_DEBUG_SQL = 1 << 0,
  AAPI_DEBUG_HTTP = 1 << 1,
  AAPI_DEBUG_PERF = 1 << 2,
  AAPI_DEBUG_SLIDE = 1 << 3,
  AAPI_DEBUG_NN = 1 << 4,
  AAPI_DEBUG_INFER = 1 << 5,
  AAPI_DEBUG_TRAIN = 1 << 6,
} AapiDebugFlags;

/* Reads AAPI_DEBUG and installs the log writer; call once at start. */
void aapi_log_init(void);

/* Whether every word of an AAPI_DEBUG value names a category (or is
 * "all"); else an AAPI_ERROR_INVALID error naming the first that does
 * not, so that a typo stops the start instead of logging nothing. */
bool aapi_debug_check(const char *text, GError **error);

bool aapi_debug_enabled(AapiDebugFlags category);

#define aapi_debug(category, ...)                                          \
  do {                                                                     \
    if (aapi_debug_enabled(category))                                      \
      g_message(__VA_ARGS__);                                              \
  } while (0)
