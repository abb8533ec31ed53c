/* routes-compat.c: the routes of the old service, kept as they were. */
#include "http/http-private.h"

#include "annot/version.h"
#include "common/aapi-error.h"
#include "infer/infer.h"

#include <string.h>

static bool home(HttpRequest *request, HttpResponse *response,
                 GError **error)
{
  http_response_set_text(response, 200, "text/html; charset=utf-8", "home",
                         -1);
  return true;
}

static bool slide_paths(HttpRequest *request, HttpResponse *response,
                        GError **error)
{
  g_autoptr(GPtrArray) slides = store_slide_list(request->context->store,
                                                 error);
  g_autoptr(GString) text = g_string_new(NULL);

  if (slides == NULL)
    return false;
  /* The old service joined the paths with nothing between them. */
  for (guint i = 0; i < slides->len; i++) {
    StoreSlide *slide = g_ptr_array_index(slides, i);
    g_string_append(text, slide->slide_path);
  }
  http_response_set_text(response, 200, "text/html; charset=utf-8",
                         text->str, (gssize) text->len);
  return true;
}

bool http_slide_known(HttpRequest *request, const char *slide_id,
                      GError **error)
{
  g_autoptr(StoreSlide) slide = NULL;

  if (!http_slide_id_check(slide_id, error))
    return false;
  slide = store_slide_get(request->context->store, slide_id, error);
  if (slide == NULL && error && *error &&
      g_error_matches(*error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND)) {
    g_clear_error(error);
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
                "unknown slide %s", slide_id);
  }
  return slide != NULL;
}

static bool predict_region(HttpRequest *request, HttpResponse *response,
                           const char *slide_id, const gint64 region[4],
                           GError **error)
{
  InferEngine *engine = request->context->engine;

  if (engine == NULL) {
    http_response_set_text(response, 503, "application/json",
        "{\"error\":\"prediction is off: no models are loaded\"}", -1);
    return true;
  }

  g_autoptr(InferResult) result = http_predict_region(request, slide_id,
                                                      region, error);
  if (result == NULL)
    return false;
  GString *xml = infer_result_to_asap(result);
  gsize length = xml->len;
  http_response_take_bytes(response, 200, "application/xml",
      g_bytes_new_take(g_string_free(xml, FALSE), length));
  return true;
}

static bool annotation_get(HttpRequest *request, HttpResponse *response,
                           GError **error)
{
  const char *slide_id = http_request_param(request, 0);
  bool has_region = false;
  gint64 region[4] = { 0 };

  if (!http_slide_known(request, slide_id, error) ||
      !http_query_region(request, &has_region, region, error))
    return false;
  if (has_region)
    return predict_region(request, response, slide_id, region, error);

  GBytes *file = version_read_latest_file(request->context->config,
                                          request->context->store,
                                          slide_id, error);
  if (file == NULL)
    return false;
  http_response_take_bytes(response, 200, "application/xml", file);
  return true;
}

bool http_post_annotations(HttpRequest *request, const char *slide_id,
                           VersionPostResult *result, GError **error)
{
  bool has_region = false;
  gint64 region[4] = { 0 };
  AnnotBox box;

  if (!http_slide_known(request, slide_id, error) ||
      !http_query_region(request, &has_region, region, error))
    return false;
  if (request->body_length == 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "the body is empty: post ASAP XML or GeoJSON");
    return false;
  }
  box = (AnnotBox) { (double) region[0], (double) region[1],
                     (double) region[2], (double) region[3] };
  if (version_post(request->context->config, request->context->store,
                   slide_id, request->body, request->body_length,
                   has_region ? &box : NULL, result, error))
    return true;

  /* The request itself was checked above: a body that does not parse is
   * unusable content (422), as the API promises. */
  if (error && *error &&
      g_error_matches(*error, AAPI_ERROR, AAPI_ERROR_INVALID))
    (*error)->code = AAPI_ERROR_UNPROCESSABLE;
  return false;
}

static bool annotation_post(HttpRequest *request, HttpResponse *response,
                            GError **error)
{
  const char *slide_id = http_request_param(request, 0);
  const char *type = http_request_header(request, "content-type");
  VersionPostResult result = { 0 };

  if (!http_post_annotations(request, slide_id, &result, error))
    return false;
  version_post_result_clear(&result);

  /* The old service answered with the posted body itself. */
  http_response_set_text(response, 200, type ? type : "application/xml",
                         request->body, (gssize) request->body_length);
  return true;
}

const HttpRoute http_routes_compat[] = {
  { "GET", "/", home, false },
  { "GET", "/slide_paths", slide_paths, false },
  { "GET", "/annotation/{id}", annotation_get, false },
  { "POST", "/annotation/{id}", annotation_post, true },
  { NULL }
};
