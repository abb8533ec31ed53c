/*
 * dzi.h: Deep Zoom tiles of a slide, thumbnails, associated images, and a
 * bounded cache of encoded tiles.
 *
 * The Deep Zoom image covers the slide's bounds (the whole slide when the
 * format has none): Deep Zoom pixel (0, 0) is level-0 pixel (bounds_x,
 * bounds_y).  Level n_levels-1 is level 0 at full size; each level below
 * halves it (rounding up) down to 1x1.  A tile is read from the OpenSlide
 * level closest below the needed downsample and scaled with libvips.
 *
 * Every function here is thread safe; a TileCache may be shared by every
 * request thread.
 */
#pragma once

#include "slide/slide.h"

#include <glib.h>
#include <stdbool.h>

#define DZI_TILE_SIZE 254
#define DZI_OVERLAP 1
#define DZI_JPEG_QUALITY 75

typedef enum {
  DZI_FORMAT_JPEG,
  DZI_FORMAT_PNG,
} DziFormat;

typedef struct {
  gint64 origin_x, origin_y;  /* level-0 pixel of Deep Zoom (0, 0) */
  gint64 width, height;       /* Deep Zoom full size */
  guint n_levels;
  guint tile_size, overlap;
} DziLayout;

void dzi_layout_init(DziLayout *layout, const SlideInfo *info,
                     guint tile_size, guint overlap);
/* Size of a Deep Zoom level and its tile grid; false when out of range. */
bool dzi_level_size(const DziLayout *layout, gint64 level, gint64 *width,
                    gint64 *height);
bool dzi_level_tiles(const DziLayout *layout, gint64 level, gint64 *cols,
                     gint64 *rows);

/* "jpeg"/"jpg" or "png"; anything else is AAPI_ERROR_INVALID. */
bool dzi_parse_format(const char *text, DziFormat *format, GError **error);
const char *dzi_format_name(DziFormat format);
const char *dzi_format_mime(DziFormat format);

/* The .dzi XML descriptor. */
char *dzi_descriptor(const DziLayout *layout, DziFormat format);

/* One tile, encoded.  A level, column or row outside the image is
 * AAPI_ERROR_NOT_FOUND. */
GBytes *dzi_render_tile(Slide *slide, const DziLayout *layout, gint64 level,
                        gint64 col, gint64 row, DziFormat format,
                        GError **error);

/* A JPEG of the bounds region fitting in max_size x max_size. */
GBytes *dzi_render_thumbnail(Slide *slide, guint max_size, GError **error);

/* An associated image (label, macro...) as JPEG; unknown name is
 * AAPI_ERROR_NOT_FOUND. */
GBytes *dzi_render_associated(Slide *slide, const char *name,
                              GError **error);

/*
 * TileCache: encoded images by key, bounded by their total bytes, least
 * recently used out.
 */
typedef struct TileCache TileCache;

/* Default capacity of the tile cache of a server. */
#define TILE_CACHE_DEFAULT_MB 256

TileCache *tile_cache_new(guint64 capacity_bytes);
/* A server's tile cache sized by AAPI_TILE_CACHE_MB (default
 * TILE_CACHE_DEFAULT_MB); NULL without error when it is 0 (no caching),
 * NULL with AAPI_ERROR_INVALID when it is not a number. */
TileCache *tile_cache_new_from_env(GError **error);
void tile_cache_free(TileCache *cache);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TileCache, tile_cache_free)

/* A new reference, or NULL when absent. */
GBytes *tile_cache_lookup(TileCache *cache, const char *key);
/* Keeps a reference; an entry larger than the capacity is not kept. */
void tile_cache_insert(TileCache *cache, const char *key, GBytes *bytes);
guint64 tile_cache_get_bytes(TileCache *cache);
/* Hits and misses since creation, for metrics. */
void tile_cache_get_stats(TileCache *cache, guint64 *hits,
                          guint64 *misses);

/* Cache key and strong ETag of a tile (quoted), stable across processes:
 * the slide id is the MD5 of the file, so a tile never changes. */
char *dzi_tile_key(const char *slide_id, gint64 level, gint64 col,
                   gint64 row, DziFormat format);
char *dzi_tile_etag(const char *slide_id, gint64 level, gint64 col,
                    gint64 row, DziFormat format);

/* A tile through the cache (cache may be NULL). */
GBytes *dzi_get_tile(TileCache *cache, Slide *slide, const char *slide_id,
                     gint64 level, gint64 col, gint64 row,
                     DziFormat format, GError **error);
