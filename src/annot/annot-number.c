/* annot-number.c: coordinate text in and out, exact both ways. */
#include "annot/annot-private.h"
#include "common/aapi-error.h"
#include "common/config.h"

#include <math.h>
#include <string.h>

/* Coordinates are level-0 pixels; anything beyond this is not a slide. */
#define COORDINATE_LIMIT 1e12

/* Powers of ten that are exact doubles. */
static const double exact_powers[] = {
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
  1e13, 1e14, 1e15,
};

/* Plain decimals of at most 15 digits ("12849.0", "-60368.8008"): the
 * digits form an exact integer and the power of ten is exact, so one
 * division gives the correctly rounded value, the same as strtod.  Reading
 * big files spends most of its time in strtod otherwise.  Returns false
 * for anything else, which then takes the general path. */
static bool parse_plain_decimal(const char *text, double *out)
{
  const char *p = text;
  guint64 mantissa = 0;
  int digits = 0, fraction = -1;

  if (*p == '-')
    p++;
  for (; *p; p++) {
    if (*p == '.' && fraction < 0) {
      fraction = 0;
      continue;
    }
    if (*p < '0' || *p > '9' || ++digits > 15)
      return false;
    mantissa = mantissa * 10 + (guint64) (*p - '0');
    if (fraction >= 0)
      fraction++;
  }
  if (digits == 0 || fraction == 0)
    return false;

  double value = (double) mantissa / exact_powers[MAX(fraction, 0)];
  *out = text[0] == '-' ? -value : value;
  return fabs(*out) <= COORDINATE_LIMIT;
}

bool annot_parse_coordinate(const char *text, double *out, GError **error)
{
  if (parse_plain_decimal(text, out))
    return true;

  const char *comma = strchr(text, ',');
  char buffer[72];

  /* A lone comma and no dot is a decimal comma from a foreign locale. */
  if (comma && strchr(text, '.') == NULL && strchr(comma + 1, ',') == NULL &&
      strlen(text) < sizeof(buffer)) {
    g_strlcpy(buffer, text, sizeof(buffer));
    buffer[comma - text] = '.';
    text = buffer;
  }

  g_autoptr(GError) local = NULL;
  if (!aapi_parse_double(text, -COORDINATE_LIMIT, COORDINATE_LIMIT, out,
                         &local)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE,
                "bad coordinate: %s", local->message);
    return false;
  }
  return true;
}

/* Writes an integer of at most 15 digits; printf is the slow part of
 * writing big files, and integral pixel coordinates are the common case.
 * Pixel coordinates fit 32 bits, whose division is the cheaper one. */
static gsize format_integer(char *out, gint64 value)
{
  char digits[24];
  gsize n = 0, length = 0;
  guint64 magnitude = value < 0 ? (guint64) -value : (guint64) value;

  for (; magnitude > G_MAXUINT32; magnitude /= 10)
    digits[n++] = (char) ('0' + magnitude % 10);
  guint32 small = (guint32) magnitude;
  do {
    digits[n++] = (char) ('0' + small % 10);
    small /= 10;
  } while (small > 0);

  if (value < 0)
    out[length++] = '-';
  while (n > 0)
    out[length++] = digits[--n];
  out[length] = '\0';
  return length;
}

gsize annot_format_number(char *out, double value)
{
  /* Integral values below 2^53 are exact as integers. */
  if (fabs(value) < 1e15) {
    gint64 integral = (gint64) value;
    if ((double) integral == value)
      return format_integer(out, integral);
  }

  /* The shortest of 15, 16 and 17 significant digits that reads back. */
  static const char *const formats[] = { "%.15g", "%.16g", "%.17g" };
  for (guint i = 0; i < G_N_ELEMENTS(formats); i++) {
    g_ascii_formatd(out, ANNOT_NUMBER_MAX, formats[i], value);
    if (g_ascii_strtod(out, NULL) == value)
      break;
  }
  return strlen(out);
}

void annot_append_number(GString *out, double value)
{
  char buffer[ANNOT_NUMBER_MAX];
  gsize length = annot_format_number(buffer, value);

  g_string_append_len(out, buffer, (gssize) length);
}

/* Whether XML 1.0 allows the character in text (its Char production;
 * surrogates never come out of validated UTF-8). */
static bool xml_char(gunichar c)
{
  return (c >= 0x20 && c != 0xfffe && c != 0xffff) || c == '\t' ||
         c == '\n' || c == '\r';
}

/* g_markup_escape_text writes control characters as references that XML
 * 1.0 forbids, so the writers escape with this instead.  Characters XML
 * cannot hold at all (other controls, U+FFFE, U+FFFF) are dropped, and a
 * byte that is not UTF-8 becomes U+FFFD: a name from a JSON body must not
 * make the stored file unreadable. */
void annot_append_escaped(GString *out, const char *text)
{
  const char *p = text;

  while (*p) {
    gunichar c = g_utf8_get_char_validated(p, -1);

    if (c == (gunichar) -1 || c == (gunichar) -2) {
      g_string_append_unichar(out, 0xfffd);
      p++;
      continue;
    }
    const char *next = g_utf8_next_char(p);

    switch (c) {
    case '&': g_string_append(out, "&amp;"); break;
    case '<': g_string_append(out, "&lt;"); break;
    case '>': g_string_append(out, "&gt;"); break;
    case '"': g_string_append(out, "&quot;"); break;
    case '\'': g_string_append(out, "&apos;"); break;
    case '\t': g_string_append(out, "&#9;"); break;
    case '\n': g_string_append(out, "&#10;"); break;
    case '\r': g_string_append(out, "&#13;"); break;
    default:
      if (xml_char(c))
        g_string_append_len(out, p, next - p);
      break;
    }
    p = next;
  }
}
