/* routes-api.c: /api/v1 slides, versions, revert and posts (docs/API.md). */
#include "http/http-private.h"

#include "annot/version.h"
#include "common/aapi-error.h"
#include "http/http-version.h"
#include "slide/dzi.h"
#include "slide/slide.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

static json_t *json_time(gint64 unix_seconds)
{
  g_autoptr(GDateTime) time = g_date_time_new_from_unix_utc(unix_seconds);

  if (time == NULL)
    return json_null();
  g_autofree char *text = g_date_time_format(time, "%Y-%m-%dT%H:%M:%SZ");
  return json_string(text);
}

/* File names and paths need not be UTF-8; JSON strings must be. */
static json_t *json_text(const char *text)
{
  g_autofree char *valid = g_utf8_make_valid(text ? text : "", -1);

  return json_string(valid);
}

static json_t *json_number_or_null(double value)
{
  return isfinite(value) ? json_real(value) : json_null();
}

/* seq of every version by its file path, to name each one's previous. */
static GHashTable *seq_by_path_new(GPtrArray *versions)
{
  GHashTable *table = g_hash_table_new(g_str_hash, g_str_equal);

  for (guint i = 0; versions && i < versions->len; i++) {
    StoreVersion *v = g_ptr_array_index(versions, i);
    g_hash_table_insert(table, v->path_after, v);
  }
  return table;
}

static json_t *version_json(const StoreVersion *v, GHashTable *by_path)
{
  StoreVersion *before = v->path_before
                         ? g_hash_table_lookup(by_path, v->path_before)
                         : NULL;
  json_t *region = json_null();

  if (v->has_region)
    region = json_pack("{s:I,s:I,s:I,s:I}", "x", (json_int_t) v->region_x,
                       "y", (json_int_t) v->region_y,
                       "width", (json_int_t) v->region_width,
                       "height", (json_int_t) v->region_height);
  return json_pack("{s:I,s:o,s:o,s:o,s:o,s:o}",
                   "seq", (json_int_t) v->seq,
                   "time", json_time(v->updated_time),
                   "path", json_text(v->path_after),
                   "previous", before ? json_integer(before->seq)
                                      : json_null(),
                   "region", region,
                   "count", v->annotation_count >= 0
                            ? json_integer(v->annotation_count)
                            : json_null());
}

/* One version as JSON, its previous found among the slide's versions. */
static json_t *version_json_alone(HttpRequest *request,
                                  const StoreVersion *version,
                                  GError **error)
{
  g_autoptr(GPtrArray) versions = store_version_list(
      request->context->store, version->slide_id, error);

  if (versions == NULL)
    return NULL;
  g_autoptr(GHashTable) by_path = seq_by_path_new(versions);
  return version_json(version, by_path);
}

static json_t *levels_json(const SlideInfo *info)
{
  json_t *levels = json_array();

  for (gint32 i = 0; i < info->level_count; i++)
    json_array_append_new(levels, json_pack("{s:I,s:I,s:f}",
        "width", (json_int_t) info->level_width[i],
        "height", (json_int_t) info->level_height[i],
        "downsample", info->level_downsample[i]));
  return levels;
}

/* Adds what OpenSlide says about the slide; a file that no longer opens
 * still lists with its row, the image fields null. */
static void slide_add_info(HttpRequest *request, json_t *json,
                           const char *slide_id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Slide) slide = NULL;

  if (request->context->slides)
    slide = slide_cache_get(request->context->slides, slide_id, &error);
  if (slide == NULL) {
    if (error)
      g_warning("slide %s: %s", slide_id, error->message);
    return;
  }

  const SlideInfo *info = slide_get_info(slide);
  json_t *associated = json_array();
  for (guint i = 0; info->associated_names && info->associated_names[i];
       i++)
    json_array_append_new(associated,
                          json_text(info->associated_names[i]));
  json_object_update_new(json, json_pack(
      "{s:o,s:I,s:I,s:o,s:o,s:o,s:{s:I,s:I,s:I,s:I},s:o}",
      "vendor", json_text(info->vendor ? info->vendor : "unknown"),
      "width", (json_int_t) info->width, "height", (json_int_t) info->height,
      "levels", levels_json(info),
      "mpp_x", json_number_or_null(info->mpp_x),
      "mpp_y", json_number_or_null(info->mpp_y),
      "bounds", "x", (json_int_t) info->bounds_x,
      "y", (json_int_t) info->bounds_y,
      "width", (json_int_t) info->bounds_width,
      "height", (json_int_t) info->bounds_height,
      "associated", associated));
}

static json_t *slide_json(HttpRequest *request, const StoreSlide *slide,
                          GError **error)
{
  g_autoptr(GPtrArray) versions = store_version_list(
      request->context->store, slide->slide_id, error);

  if (versions == NULL)
    return NULL;
  json_t *json = json_pack("{s:o,s:o,s:o,s:n,s:n,s:n,s:[],s:n,s:n,s:n,"
                           "s:[],s:I}",
                           "id", json_text(slide->slide_id),
                           "name", json_text(slide->slide_name),
                           "path", json_text(slide->slide_path), "vendor",
                           "width",
                           "height", "levels", "mpp_x", "mpp_y", "bounds",
                           "associated", "versions",
                           (json_int_t) versions->len);
  slide_add_info(request, json, slide->slide_id);
  return json;
}

static bool health(HttpRequest *request, HttpResponse *response,
                   GError **error)
{
  AapiStore *store = request->context->store;
  g_autoptr(GPtrArray) slides = store_slide_list(store, error);

  if (slides == NULL)
    return false;
  http_response_set_json(response, 200, json_pack(
      "{s:s,s:s,s:I,s:s}", "status", "ok",
      "database", store_backend_name(store),
      "slides", (json_int_t) slides->len, "version", AAPI_VERSION_TEXT));
  return true;
}

/* Request counters and the tile cache, in Prometheus text format. */
static bool metrics(HttpRequest *request, HttpResponse *response,
                    GError **error)
{
  GString *text = g_string_new(NULL);
  TileCache *tiles = request->context->tiles;

  http_metrics_append(text);
  if (tiles) {
    guint64 hits = 0, misses = 0;
    tile_cache_get_stats(tiles, &hits, &misses);
    g_string_append_printf(text,
        "# TYPE aapi_tile_cache_bytes gauge\n"
        "aapi_tile_cache_bytes %" G_GUINT64_FORMAT "\n"
        "# TYPE aapi_tile_cache_hits_total counter\n"
        "aapi_tile_cache_hits_total %" G_GUINT64_FORMAT "\n"
        "# TYPE aapi_tile_cache_misses_total counter\n"
        "aapi_tile_cache_misses_total %" G_GUINT64_FORMAT "\n",
        tile_cache_get_bytes(tiles), hits, misses);
  }
  gsize length = text->len;
  http_response_take_bytes(response, 200, "text/plain; version=0.0.4",
      g_bytes_new_take(g_string_free(text, FALSE), length));
  return true;
}

static bool slides_list(HttpRequest *request, HttpResponse *response,
                        GError **error)
{
  g_autoptr(GPtrArray) slides = store_slide_list(request->context->store,
                                                 error);
  json_t *list = json_array();

  if (slides == NULL) {
    json_decref(list);
    return false;
  }
  for (guint i = 0; i < slides->len; i++) {
    json_t *one = slide_json(request, g_ptr_array_index(slides, i), error);
    if (one == NULL) {
      json_decref(list);
      return false;
    }
    json_array_append_new(list, one);
  }
  http_response_set_json(response, 200, json_pack("{s:o}", "slides",
                                                  list));
  return true;
}

static bool slide_get(HttpRequest *request, HttpResponse *response,
                      GError **error)
{
  const char *slide_id = http_request_param(request, 0);
  g_autoptr(StoreSlide) slide = NULL;

  if (!http_slide_known(request, slide_id, error))
    return false;
  slide = store_slide_get(request->context->store, slide_id, error);
  if (slide == NULL)
    return false;
  json_t *json = slide_json(request, slide, error);
  if (json == NULL)
    return false;
  http_response_set_json(response, 200, json);
  return true;
}

static bool versions_list(HttpRequest *request, HttpResponse *response,
                          GError **error)
{
  const char *slide_id = http_request_param(request, 0);

  if (!http_slide_known(request, slide_id, error))
    return false;
  g_autoptr(GPtrArray) versions = store_version_list(
      request->context->store, slide_id, error);
  if (versions == NULL)
    return false;

  g_autoptr(GHashTable) by_path = seq_by_path_new(versions);
  json_t *list = json_array();
  for (guint i = 0; i < versions->len; i++)
    json_array_append_new(list, version_json(
        g_ptr_array_index(versions, i), by_path));
  http_response_set_json(response, 200, json_pack("{s:o}", "versions",
                                                  list));
  return true;
}

/* The version named by the path: a number or "latest". */
static StoreVersion *version_lookup(HttpRequest *request,
                                    const char *slide_id, GError **error)
{
  const char *name = http_request_param(request, 1);
  gint64 seq = 0;

  if (!http_slide_known(request, slide_id, error))
    return NULL;
  if (g_strcmp0(name, "latest") == 0)
    return store_version_latest(request->context->store, slide_id, error);
  if (!aapi_parse_int64(name, 1, G_MAXINT64, &seq, NULL)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "version '%s' is not a version number (1, 2, ...) nor "
                "\"latest\"", name);
    return NULL;
  }
  return store_version_get(request->context->store, slide_id, seq, error);
}

static bool version_get(HttpRequest *request, HttpResponse *response,
                        GError **error)
{
  const char *slide_id = http_request_param(request, 0);
  const char *format = g_hash_table_lookup(request->query, "format");
  bool geojson = g_strcmp0(format, "geojson") == 0;

  if (format && !geojson && strcmp(format, "asap") != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "format must be asap or geojson");
    return false;
  }
  g_autoptr(StoreVersion) version = version_lookup(request, slide_id,
                                                   error);
  if (version == NULL)
    return false;
  g_autoptr(AnnotSet) set = version_load(request->context->config,
                                         version, error);
  if (set == NULL)
    return false;

  GString *text = geojson ? annot_write_geojson(set)
                          : annot_write_asap(set);
  gsize length = text->len;
  http_response_take_bytes(response, 200,
      geojson ? "application/geo+json" : "application/xml",
      g_bytes_new_take(g_string_free(text, FALSE), length));
  return true;
}

static bool answer_version(HttpRequest *request, HttpResponse *response,
                           VersionPostResult *result, GError **error)
{
  json_t *json = version_json_alone(request, result->version, error);

  version_post_result_clear(result);
  if (json == NULL)
    return false;
  http_response_set_json(response, 201, json);
  return true;
}

static bool version_revert_post(HttpRequest *request,
                                HttpResponse *response, GError **error)
{
  const char *slide_id = http_request_param(request, 0);
  g_autoptr(StoreVersion) version = version_lookup(request, slide_id,
                                                   error);
  VersionPostResult result = { 0 };

  if (version == NULL)
    return false;
  if (!version_revert(request->context->config, request->context->store,
                      slide_id, version->seq, &result, error))
    return false;
  return answer_version(request, response, &result, error);
}

static bool annotations_post(HttpRequest *request, HttpResponse *response,
                             GError **error)
{
  VersionPostResult result = { 0 };

  if (!http_post_annotations(request, http_request_param(request, 0),
                             &result, error))
    return false;
  return answer_version(request, response, &result, error);
}

const HttpRoute http_routes_api[] = {
  { "GET", "/api/v1/health", health, false },
  { "GET", "/api/v1/metrics", metrics, false },
  { "GET", "/api/v1/slides", slides_list, false },
  { "GET", "/api/v1/slides/{id}", slide_get, false },
  { "GET", "/api/v1/slides/{id}/versions", versions_list, false },
  { "GET", "/api/v1/slides/{id}/versions/{seq}", version_get, false },
  { "POST", "/api/v1/slides/{id}/versions/{seq}/revert",
    version_revert_post, true },
  { "POST", "/api/v1/slides/{id}/annotations", annotations_post, true },
  { NULL }
};
