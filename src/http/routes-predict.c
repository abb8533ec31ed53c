/* routes-predict.c: GET /api/v1/slides/{id}/predict?x=&y=&width=&height=,
 * the predicted annotations of a region as GeoJSON with each class's
 * model version (docs/API.md). */
#include "http/http-private.h"

#include "common/aapi-error.h"
#include "infer/infer.h"

InferResult *http_predict_region(HttpRequest *request, const char *slide_id,
                                 const gint64 region[4], GError **error)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  g_autoptr(GError) local = NULL;
  gint64 start = g_get_monotonic_time();
  HttpClientWatch *watch = http_client_watch_start(request, cancellable);
  InferResult *result = infer_predict_region_cancellable(
      request->context->engine, slide_id, region[0], region[1], region[2],
      region[3], cancellable, &local);

  http_client_watch_stop(watch);
  /* Nobody reads the answer: the log says what happened instead. */
  if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_message("prediction of %s cancelled after %.1f s: the client "
              "closed the connection id=%s", slide_id,
              (double) (g_get_monotonic_time() - start) / 1e6,
              request->request_id);
  if (local)
    g_propagate_error(error, g_steal_pointer(&local));
  return result;
}

/* The API route takes the region and nothing else: a tiling or format
 * asked for in the query would otherwise be ignored without a word. */
static bool only_region_parameters(HttpRequest *request, GError **error)
{
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init(&iter, request->query);
  while (g_hash_table_iter_next(&iter, &key, NULL)) {
    if (g_strv_contains((const char *const[]) { "x", "y", "width",
                                                "height", NULL }, key))
      continue;
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "unknown query parameter %.64s: predict takes x, y, width "
                "and height (tiling and precision are server settings)",
                (const char *) key);
    return false;
  }
  return true;
}

static bool predict_get(HttpRequest *request, HttpResponse *response,
                        GError **error)
{
  const char *slide_id = http_request_param(request, 0);
  InferEngine *engine = request->context->engine;
  bool has_region = false;
  gint64 r[4] = { 0 };

  /* Unknown slides and bad parameters are told apart before any work. */
  if (!http_slide_known(request, slide_id, error) ||
      !http_query_region(request, &has_region, r, error) ||
      !only_region_parameters(request, error))
    return false;
  if (!has_region) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "predict needs x, y, width and height");
    return false;
  }
  if (engine == NULL) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_BUSY,
                "prediction is off: no models are loaded");
    return false;
  }

  g_autoptr(InferResult) result = http_predict_region(request, slide_id, r,
                                                      error);
  if (result == NULL)
    return false;
  GString *json = infer_result_to_geojson(result);
  gsize length = json->len;
  http_response_take_bytes(response, 200, "application/geo+json",
      g_bytes_new_take(g_string_free(json, FALSE), length));
  return true;
}

const HttpRoute http_routes_predict[] = {
  { "GET", "/api/v1/slides/{id}/predict", predict_get, false },
  { NULL }
};
