/*
 * annot-private.h: helpers shared by the readers and writers of src/annot.
 */
#pragma once

#include "annot/annot.h"

#include <stdbool.h>

/* The extra-attribute table of an annotation or group, made on first use. */
GHashTable *annot_extra_table(GHashTable **extra);

/* Parses one coordinate value: a finite decimal number, with a comma
 * accepted as the decimal mark when there is no dot (some locales write
 * ASAP files that way).  Errors are AAPI_ERROR_UNPROCESSABLE. */
bool annot_parse_coordinate(const char *text, double *out, GError **error);

/* Writes the shortest decimal text that reads back as exactly value into
 * out (ANNOT_NUMBER_MAX bytes), NUL-terminated; returns its length.
 * Integral values get no decimal part. */
#define ANNOT_NUMBER_MAX G_ASCII_DTOSTR_BUF_SIZE
gsize annot_format_number(char *out, double value);
void annot_append_number(GString *out, double value);

/* Appends text with the five XML special characters and control
 * characters escaped, for use inside a double-quoted attribute. */
void annot_append_escaped(GString *out, const char *text);
