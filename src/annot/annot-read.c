/* annot-read.c: picking a reader, and reading a file. */
#include "annot/annot.h"
#include "common/aapi-error.h"

#include <errno.h>
#include <string.h>

AnnotFormat annot_format_sniff(const char *data, gsize length)
{
  gsize i = 0;

  /* UTF-16 is XML (libxml2 decodes it); JSON is UTF-8 only. */
  if (length >= 2 && (memcmp(data, "\xff\xfe", 2) == 0 ||
                      memcmp(data, "\xfe\xff", 2) == 0))
    return ANNOT_FORMAT_ASAP;

  /* A UTF-8 byte order mark and white space come before either. */
  if (length >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
    i = 3;
  while (i < length && g_ascii_isspace(data[i]))
    i++;
  if (i == length)
    return ANNOT_FORMAT_UNKNOWN;
  if (data[i] == '<')
    return ANNOT_FORMAT_ASAP;
  if (data[i] == '{' || data[i] == '[')
    return ANNOT_FORMAT_GEOJSON;
  return ANNOT_FORMAT_UNKNOWN;
}

AnnotSet *annot_read_any(const char *data, gsize length, GError **error)
{
  switch (annot_format_sniff(data, length)) {
  case ANNOT_FORMAT_ASAP:
    return annot_read_asap(data, length, error);
  case ANNOT_FORMAT_GEOJSON:
    /* jansson does not skip a byte order mark itself. */
    if (length >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
      return annot_read_geojson(data + 3, length - 3, error);
    return annot_read_geojson(data, length, error);
  default:
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE,
                length == 0 ? "empty annotation body"
                            : "annotations must be ASAP XML or GeoJSON");
    return NULL;
  }
}

typedef AnnotSet *(*AnnotReader)(const char *data, gsize length,
                                 GError **error);

/* Maps the file at path and parses it with reader; the error names the
 * file. */
static AnnotSet *read_mapped(const char *path, AnnotReader reader,
                             GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GMappedFile) file = g_mapped_file_new(path, FALSE, &local);

  if (file == NULL) {
    bool missing = g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_set_error(error, AAPI_ERROR,
                missing ? AAPI_ERROR_NOT_FOUND : AAPI_ERROR_IO,
                "%s", local->message);
    return NULL;
  }

  AnnotSet *set = reader(g_mapped_file_get_contents(file),
                         g_mapped_file_get_length(file), error);
  if (set == NULL)
    g_prefix_error(error, "%s: ", path);
  return set;
}

AnnotSet *annot_read_asap_file(const char *path, GError **error)
{
  return read_mapped(path, annot_read_asap, error);
}

AnnotSet *annot_read_any_file(const char *path, GError **error)
{
  return read_mapped(path, annot_read_any, error);
}
