/* routes-predict.c: GET /api/v1/slides/{id}/predict?x=&y=&width=&height=,
 * the predicted annotations of a region as GeoJSON with each class's
 * model version (docs/API.md). */
#include "http/http-private.h"

#include "common/aapi-error.h"
#include "infer/infer.h"

static bool predict_get(HttpRequest *request, HttpResponse *response,
                        GError **error)
{
  const char *slide_id = http_request_param(request, 0);
  InferEngine *engine = request->context->engine;
  bool has_region = false;
  gint64 r[4] = { 0 };

  /* Unknown slides and bad parameters are told apart before any work. */
  if (!http_slide_known(request, slide_id, error) ||
      !http_query_region(request, &has_region, r, error))
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

  g_autoptr(InferResult) result = infer_predict_region(engine, slide_id,
      r[0], r[1], r[2], r[3], error);
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
