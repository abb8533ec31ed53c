/*
 * routes-tiles.c: Deep Zoom descriptors and tiles, thumbnails and
 * associated images of a slide.
 *
 * A slide id is the MD5 of the file, so everything here is immutable for
 * a given id: responses carry a strong ETag and long-lived Cache-Control,
 * and a matching If-None-Match answers 304 without rendering.
 */
#include "http/http-private.h"

#include "common/aapi-error.h"
#include "common/config.h"
#include "slide/dzi.h"
#include "slide/slide.h"

#include <string.h>

#define CACHE_CONTROL "public, max-age=604800, immutable"
#define THUMBNAIL_DEFAULT 512
#define THUMBNAIL_MAX 2048

/* The slide of the id in the route, from the shared cache. */
static Slide *route_slide(HttpRequest *request, const char *slide_id,
                          GError **error)
{
  if (!http_slide_id_check(slide_id, error))
    return NULL;
  if (request->context->slides == NULL) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INTERNAL,
                "the slide cache is not running");
    return NULL;
  }
  return slide_cache_get(request->context->slides, slide_id, error);
}

/* A path number: digits only, within 0..max. */
static bool path_number(const char *text, const char *what, gint64 max,
                        gint64 *out, GError **error)
{
  g_autoptr(GError) local = NULL;

  if (text == NULL || !aapi_parse_int64(text, 0, max, out, &local)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "tile %s '%s' is not a number in 0..%" G_GINT64_FORMAT,
                what, text ? text : "", max);
    return false;
  }
  return true;
}

/* Whether If-None-Match names etag (a list, or "*"). */
static bool etag_matches(HttpRequest *request, const char *etag)
{
  const char *header = http_request_header(request, "If-None-Match");

  if (header == NULL)
    return false;
  g_auto(GStrv) tags = g_strsplit(header, ",", -1);
  for (guint i = 0; tags[i]; i++) {
    const char *tag = g_strstrip(tags[i]);
    if (g_str_has_prefix(tag, "W/"))
      tag += 2;
    if (strcmp(tag, "*") == 0 || strcmp(tag, etag) == 0)
      return true;
  }
  return false;
}

/* Answers 304 when the client has it, else the bytes; both cacheable. */
static void respond_cached(HttpRequest *request, HttpResponse *response,
                           const char *etag, const char *content_type,
                           GBytes *bytes)
{
  if (etag_matches(request, etag)) {
    http_response_take_bytes(response, 304, content_type,
                             g_bytes_new(NULL, 0));
    g_bytes_unref(bytes);
  } else {
    http_response_take_bytes(response, 200, content_type, bytes);
  }
  http_response_add_header(response, "ETag", etag);
  http_response_add_header(response, "Cache-Control", CACHE_CONTROL);
}

static bool get_dzi(HttpRequest *request, HttpResponse *response,
                    GError **error)
{
  const char *slide_id = http_request_param(request, 0);
  const char *format_text = g_hash_table_lookup(request->query, "format");
  DziFormat format = DZI_FORMAT_JPEG;
  DziLayout layout;

  if (format_text && !dzi_parse_format(format_text, &format, error))
    return false;
  g_autoptr(Slide) slide = route_slide(request, slide_id, error);
  if (slide == NULL)
    return false;

  dzi_layout_init(&layout, slide_get_info(slide), DZI_TILE_SIZE,
                  DZI_OVERLAP);
  char *xml = dzi_descriptor(&layout, format);
  http_response_take_bytes(response, 200, "application/xml",
                           g_bytes_new_take(xml, strlen(xml)));
  http_response_add_header(response, "Cache-Control", CACHE_CONTROL);
  return true;
}

typedef struct {
  gint64 level, col, row;
  DziFormat format;
} TileAddress;

static bool parse_tile(HttpRequest *request, TileAddress *tile,
                       GError **error)
{
  return path_number(http_request_param(request, 1), "level", 64,
                     &tile->level, error) &&
         path_number(http_request_param(request, 2), "column", G_MAXINT32,
                     &tile->col, error) &&
         path_number(http_request_param(request, 3), "row", G_MAXINT32,
                     &tile->row, error) &&
         dzi_parse_format(http_request_param(request, 4), &tile->format,
                          error);
}

/* NOT_FOUND unless the tile lies in the slide's Deep Zoom image. */
static bool check_tile(Slide *slide, const TileAddress *tile,
                       GError **error)
{
  DziLayout layout;
  gint64 cols, rows;

  dzi_layout_init(&layout, slide_get_info(slide), DZI_TILE_SIZE,
                  DZI_OVERLAP);
  if (dzi_level_tiles(&layout, tile->level, &cols, &rows) &&
      tile->col < cols && tile->row < rows)
    return true;
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
              "no tile %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT "_%"
              G_GINT64_FORMAT " in this slide (%u levels)", tile->level,
              tile->col, tile->row, layout.n_levels);
  return false;
}

static bool get_tile(HttpRequest *request, HttpResponse *response,
                     GError **error)
{
  const char *slide_id = http_request_param(request, 0);
  TileAddress t;

  if (!parse_tile(request, &t, error))
    return false;
  g_autoptr(Slide) slide = route_slide(request, slide_id, error);
  if (slide == NULL || !check_tile(slide, &t, error))
    return false;

  g_autofree char *etag = dzi_tile_etag(slide_id, t.level, t.col, t.row,
                                        t.format);
  const char *type = dzi_format_mime(t.format);
  if (etag_matches(request, etag)) {
    respond_cached(request, response, etag, type, NULL);
    return true;
  }
  GBytes *bytes = dzi_get_tile(request->context->tiles, slide, slide_id,
                               t.level, t.col, t.row, t.format, error);
  if (bytes == NULL)
    return false;
  respond_cached(request, response, etag, type, bytes);
  return true;
}

/* Thumbnails share the tile cache under their own keys. */
static GBytes *cached_thumbnail(HttpRequest *request, Slide *slide,
                                const char *key, gint64 max_size,
                                GError **error)
{
  TileCache *cache = request->context->tiles;
  GBytes *bytes = cache ? tile_cache_lookup(cache, key) : NULL;

  if (bytes)
    return bytes;
  bytes = dzi_render_thumbnail(slide, (guint) max_size, error);
  if (bytes && cache)
    tile_cache_insert(cache, key, bytes);
  return bytes;
}

static bool get_thumbnail(HttpRequest *request, HttpResponse *response,
                          GError **error)
{
  const char *slide_id = http_request_param(request, 0);
  gint64 max_size;

  if (!http_query_int64_opt(request, "max", 16, THUMBNAIL_MAX,
                            THUMBNAIL_DEFAULT, &max_size, error))
    return false;
  g_autoptr(Slide) slide = route_slide(request, slide_id, error);
  if (slide == NULL)
    return false;

  g_autofree char *key = g_strdup_printf("%s/thumbnail/%" G_GINT64_FORMAT,
                                         slide_id, max_size);
  g_autofree char *etag = g_strdup_printf("\"%s-thumbnail-%" G_GINT64_FORMAT
                                          "\"", slide_id, max_size);
  if (etag_matches(request, etag)) {
    respond_cached(request, response, etag, "image/jpeg", NULL);
    return true;
  }
  GBytes *bytes = cached_thumbnail(request, slide, key, max_size, error);
  if (bytes == NULL)
    return false;
  respond_cached(request, response, etag, "image/jpeg", bytes);
  return true;
}

static bool get_associated(HttpRequest *request, HttpResponse *response,
                           GError **error)
{
  const char *slide_id = http_request_param(request, 0);
  const char *name = http_request_param(request, 1);
  g_autoptr(Slide) slide = route_slide(request, slide_id, error);

  if (slide == NULL)
    return false;
  /* Names come from the slide's own list, never from the URL alone. */
  g_autofree char *etag = g_strdup_printf("\"%s-associated-%s\"", slide_id,
                                          name ? name : "");
  GBytes *bytes = dzi_render_associated(slide, name ? name : "", error);
  if (bytes == NULL)
    return false;
  respond_cached(request, response, etag, "image/jpeg", bytes);
  return true;
}

const HttpRoute http_routes_tiles[] = {
  { "GET", "/api/v1/slides/{id}.dzi", get_dzi, false },
  { "GET", "/api/v1/slides/{id}_files/{level}/{col}_{row}.{format}",
    get_tile, false },
  { "GET", "/api/v1/slides/{id}/thumbnail", get_thumbnail, false },
  { "GET", "/api/v1/slides/{id}/associated/{name}", get_associated,
    false },
  { NULL },
};
