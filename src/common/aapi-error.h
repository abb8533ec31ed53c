/*
 * aapi-error.h: the one error domain of aapi.
 *
 * Every function that can fail returns bool (or a pointer) and takes
 * GError **error last.  The codes say what kind of failure it is; the HTTP
 * layer maps them to status codes in one place (http_status_for_error).
 */
#pragma once

#include <glib.h>

#define AAPI_ERROR (aapi_error_quark())

typedef enum {
  AAPI_ERROR_INVALID,        /* malformed input from a client (400) */
  AAPI_ERROR_UNAUTHORIZED,   /* missing or wrong bearer token (401) */
  AAPI_ERROR_NOT_FOUND,      /* unknown slide, version, model (404) */
  AAPI_ERROR_CONFLICT,       /* state does not allow it now (409) */
  AAPI_ERROR_TOO_LARGE,      /* body or region over a limit (413) */
  AAPI_ERROR_UNPROCESSABLE,  /* well-formed request, unusable content (422) */
  AAPI_ERROR_BUSY,           /* every worker busy; retry later (503) */
  AAPI_ERROR_UNAVAILABLE,    /* not set up here, e.g. no model (503) */
  AAPI_ERROR_IO,             /* file system failure (500) */
  AAPI_ERROR_DB,             /* database failure (500) */
  AAPI_ERROR_SLIDE,          /* OpenSlide or libvips failure (500, or 422 on input) */
  AAPI_ERROR_NN,             /* network or oneDNN failure (500) */
  AAPI_ERROR_INTERNAL,       /* a bug (500) */
} AapiErrorCode;

GQuark aapi_error_quark(void);

/* Prefixes the message of *error with printf-style context, if set. */
void aapi_error_prefix(GError **error, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);
