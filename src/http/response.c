/* response.c: response and query helpers, and the error-to-status map. */
#include "http/http-private.h"

#include "common/aapi-error.h"
#include "common/config.h"

#include <jansson.h>
#include <string.h>

guint http_status_for_error(const GError *error)
{
  /* Work stopped because its client hung up (a prediction): no standard
   * status says so, and the answer reaches nobody; the access log and
   * the metrics show nginx's 499, "client closed request". */
  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return 499;
  if (error == NULL || error->domain != AAPI_ERROR)
    return 500;

  switch ((AapiErrorCode) error->code) {
  case AAPI_ERROR_INVALID:
    return 400;
  case AAPI_ERROR_UNAUTHORIZED:
    return 401;
  case AAPI_ERROR_NOT_FOUND:
    return 404;
  case AAPI_ERROR_CONFLICT:
    return 409;
  case AAPI_ERROR_TOO_LARGE:
    return 413;
  case AAPI_ERROR_UNPROCESSABLE:
    return 422;
  case AAPI_ERROR_BUSY:
  case AAPI_ERROR_UNAVAILABLE:
    return 503;
  default:
    return 500;
  }
}

static void response_set_type(HttpResponse *response,
                              const char *content_type)
{
  g_free(response->content_type);
  response->content_type = g_strdup(content_type ? content_type
                                                 : "application/json");
}

void http_response_take_bytes(HttpResponse *response, guint status,
                              const char *content_type, GBytes *body)
{
  response->status = status;
  response_set_type(response, content_type);
  g_clear_pointer(&response->body, g_bytes_unref);
  response->body = body;
}

void http_response_set_text(HttpResponse *response, guint status,
                            const char *content_type, const char *text,
                            gssize length)
{
  gsize size = length < 0 ? strlen(text) : (gsize) length;

  http_response_take_bytes(response, status, content_type,
                           g_bytes_new(text, size));
}

void http_response_set_json(HttpResponse *response, guint status,
                            json_t *json)
{
  /* Compact output keeps big version lists small on the wire. */
  char *text = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);

  json_decref(json);
  if (text == NULL)
    text = strdup("null");
  http_response_take_bytes(response, status, "application/json",
                           g_bytes_new_with_free_func(text, strlen(text),
                                                      free, text));
}

void http_response_add_header(HttpResponse *response, const char *name,
                              const char *value)
{
  if (response->headers == NULL)
    response->headers = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(response->headers, g_strdup(name));
  g_ptr_array_add(response->headers, g_strdup(value));
}

void http_response_set_error(HttpResponse *response, const GError *error)
{
  guint status = http_status_for_error(error);
  /* Messages may quote client bytes; JSON needs valid UTF-8. */
  g_autofree char *message = g_utf8_make_valid(
      error ? error->message : "internal error", -1);
  json_t *body = json_pack("{s:s}", "error", message);

  http_response_set_json(response, status, body);
  /* Busy workers free up soon; a missing model does not. */
  if (g_error_matches(error, AAPI_ERROR, AAPI_ERROR_BUSY))
    http_response_add_header(response, "Retry-After", "1");
}

void http_response_clear(HttpResponse *response)
{
  g_clear_pointer(&response->content_type, g_free);
  g_clear_pointer(&response->body, g_bytes_unref);
  g_clear_pointer(&response->headers, g_ptr_array_unref);
}

bool http_query_int64_opt(HttpRequest *request, const char *name,
                          gint64 min, gint64 max, gint64 fallback,
                          gint64 *out, GError **error)
{
  const char *text = g_hash_table_lookup(request->query, name);
  g_autoptr(GError) local = NULL;

  if (text == NULL) {
    *out = fallback;
    return true;
  }
  if (!aapi_parse_int64(text, min, max, out, &local)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "query parameter %s: %s", name, local->message);
    return false;
  }
  return true;
}

bool http_query_int64(HttpRequest *request, const char *name, gint64 min,
                      gint64 max, gint64 *out, GError **error)
{
  if (!g_hash_table_contains(request->query, name)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "query parameter %s is missing", name);
    return false;
  }
  return http_query_int64_opt(request, name, min, max, 0, out, error);
}

const char *http_request_header(HttpRequest *request, const char *name)
{
  g_autofree char *lower = g_ascii_strdown(name, -1);

  return g_hash_table_lookup(request->headers, lower);
}

const char *http_request_param(HttpRequest *request, guint index)
{
  if (request->params == NULL || index >= request->params->len)
    return NULL;
  return g_ptr_array_index(request->params, index);
}

bool http_slide_id_check(const char *slide_id, GError **error)
{
  gsize length = slide_id ? strlen(slide_id) : 0;

  /* Ids are lowercase hex MD5s; anything else never reaches the store. */
  bool ok = length == 32;
  for (gsize i = 0; ok && i < length; i++)
    ok = g_ascii_isdigit(slide_id[i]) ||
         (slide_id[i] >= 'a' && slide_id[i] <= 'f');
  if (!ok)
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
                "unknown slide: a slide id is 32 lowercase hex digits");
  return ok;
}

bool http_query_region(HttpRequest *request, bool *has_region,
                       gint64 region[4], GError **error)
{
  static const char *const names[4] = { "x", "y", "width", "height" };
  guint present = 0;

  for (guint i = 0; i < 4; i++)
    present += g_hash_table_contains(request->query, names[i]);
  *has_region = present > 0;
  if (present == 0)
    return true;

  /* The region is stored in INT columns: keep every edge inside them. */
  for (guint i = 0; i < 4; i++) {
    gint64 min = i < 2 ? 0 : 1;
    if (!http_query_int64(request, names[i], min, G_MAXINT32, &region[i],
                          error))
      return false;
  }
  if (region[0] + region[2] > G_MAXINT32 ||
      region[1] + region[3] > G_MAXINT32) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "region reaches beyond %d pixels", G_MAXINT32);
    return false;
  }
  return true;
}
