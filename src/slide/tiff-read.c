/*
 * tiff-read.c: region reads of JPEG-tiled TIFF slides (Aperio .svs and
 * generic tiled TIFF) straight from libtiff, with a cache of decoded tiles.
 *
 * Own code, because OpenSlide 3.4's read path composites every decoded
 * JPEG tile through cairo into premultiplied ARGB, and a Deep Zoom tile
 * straddles up to four file tiles: that compositing and the decoding of
 * the same file tile for each neighbour cost most of a tile's time.  The
 * libraries underneath are the same (libtiff and libjpeg); this file only
 * decodes each file tile once to RGB and copies rows out of it.  Levels
 * in any other layout stay with OpenSlide.
 */
#include "slide/slide-private.h"

#include "common/aapi-error.h"
#include "common/log.h"

#include <math.h>
#include <string.h>
#include <tiffio.h>

/* Decoded tiles kept per slide (bytes of RGB): about 170 tiles of
 * 256 px, a few rows of the widest level of a 12k slide, so a viewer's
 * next tiles find their neighbours decoded.  The server keeps up to 32
 * slides open, which bounds these caches to 1 GiB. */
#define TILE_CACHE_BYTES (32 * 1024 * 1024)

/* TIFF handles per slide: each one decodes one tile at a time, so this
 * bounds the decoding threads per slide (and the open files). */
#define MAX_HANDLES 4

/* Largest file tile decoded (pixels); real slides use 240-1024 px. */
#define MAX_TILE_PIXELS (4096 * 4096)

typedef struct {
  toff_t offset;            /* of the TIFF directory; 0 = OpenSlide */
  guint32 width, height;    /* the level's pixels */
  guint32 tile_w, tile_h;
  guint32 tiles_across;
  bool ycbcr;               /* libtiff converts YCbCr JPEG to RGB */
} TiffLevel;

typedef struct {
  TIFF *tif;
  toff_t offset;            /* directory it is on */
} TiffHandle;

typedef struct {
  guint64 key;
  GBytes *rgb;              /* tile_w * tile_h * 3 */
  GList *link;              /* in lru, newest at the head */
} CachedTile;

struct SlideTiff {
  char *path;
  gint32 n_levels;
  TiffLevel *levels;
  GMutex lock;              /* guards everything below */
  GCond handle_free;
  GPtrArray *idle;          /* TiffHandle* not in use */
  guint n_handles;          /* open, idle or in use */
  GHashTable *tiles;        /* guint64* key -> CachedTile* */
  GQueue lru;               /* CachedTile* */
  gsize tile_bytes;
};

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TIFF, TIFFClose)

static void handle_free(gpointer data)
{
  TiffHandle *handle = data;

  TIFFClose(handle->tif);
  g_free(handle);
}

static void cached_tile_free(gpointer data)
{
  CachedTile *tile = data;

  g_bytes_unref(tile->rgb);
  g_free(tile);
}

/* Whether a tiled directory holds 8-bit RGB or YCbCr JPEG tiles, the only
 * layout read here. */
static bool directory_is_rgb_jpeg(TIFF *tif, bool *ycbcr)
{
  guint16 compression = 0, photometric = 0, spp = 0, bps = 0, planar = 0;

  if (!TIFFIsTiled(tif) ||
      !TIFFGetField(tif, TIFFTAG_COMPRESSION, &compression) ||
      !TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric) ||
      !TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp) ||
      !TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps) ||
      !TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar))
    return false;
  *ycbcr = photometric == PHOTOMETRIC_YCBCR;
  return compression == COMPRESSION_JPEG && spp == 3 && bps == 8 &&
         planar == PLANARCONFIG_CONTIG &&
         (photometric == PHOTOMETRIC_RGB || *ycbcr);
}

/* Fills level from the current directory when it is a usable one. */
static bool level_from_directory(TIFF *tif, TiffLevel *level)
{
  guint32 tw = 0, th = 0;

  if (!directory_is_rgb_jpeg(tif, &level->ycbcr) ||
      !TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw) ||
      !TIFFGetField(tif, TIFFTAG_TILELENGTH, &th) || tw == 0 || th == 0 ||
      (guint64) tw * th > MAX_TILE_PIXELS)
    return false;
  level->tile_w = tw;
  level->tile_h = th;
  level->tiles_across = (level->width + tw - 1) / tw;
  level->offset = TIFFCurrentDirOffset(tif);
  return true;
}

/* OpenSlide's level i is the first tiled directory of its size (Aperio's
 * thumbnail, label and macro are stripped, so never match); a directory
 * of that size in another layout leaves the level to OpenSlide. */
static gint32 map_levels(TIFF *tif, SlideTiff *tiff, const SlideInfo *info)
{
  g_autofree bool *seen = g_new0(bool, info->level_count);
  gint32 n_fast = 0;

  do {
    guint32 w = 0, h = 0;
    if (!TIFFIsTiled(tif) || !TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) ||
        !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h))
      continue;
    for (gint32 i = 0; i < info->level_count; i++) {
      if (seen[i] || info->level_width[i] != w ||
          info->level_height[i] != h)
        continue;
      seen[i] = true;
      tiff->levels[i].width = w;
      tiff->levels[i].height = h;
      if (level_from_directory(tif, &tiff->levels[i]))
        n_fast++;
      break;
    }
  } while (TIFFReadDirectory(tif));
  return n_fast;
}

SlideTiff *slide_tiff_open(const char *path, const SlideInfo *info)
{
  /* Other TIFF-based vendors (Ventana, Philips, Hamamatsu...) lay tiles
   * out in ways OpenSlide corrects for; only these two are plain. */
  if (g_strcmp0(info->vendor, "aperio") != 0 &&
      g_strcmp0(info->vendor, "generic-tiff") != 0)
    return NULL;

  /* "O": tile offsets load on demand, so big levels open quickly. */
  g_autoptr(TIFF) tif = TIFFOpen(path, "rO");
  if (tif == NULL)
    return NULL;

  SlideTiff *tiff = g_new0(SlideTiff, 1);
  tiff->n_levels = info->level_count;
  tiff->levels = g_new0(TiffLevel, info->level_count);
  if (map_levels(tif, tiff, info) == 0) {
    g_free(tiff->levels);
    g_free(tiff);
    return NULL;
  }

  tiff->path = g_strdup(path);
  g_mutex_init(&tiff->lock);
  g_cond_init(&tiff->handle_free);
  tiff->idle = g_ptr_array_new_with_free_func(handle_free);
  tiff->tiles = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
                                       cached_tile_free);
  g_queue_init(&tiff->lru);
  aapi_debug(AAPI_DEBUG_SLIDE, "%s: levels read with libtiff", path);
  return tiff;
}

void slide_tiff_free(SlideTiff *tiff)
{
  if (tiff == NULL)
    return;
  g_queue_clear(&tiff->lru);
  g_hash_table_destroy(tiff->tiles);
  g_ptr_array_unref(tiff->idle);
  g_cond_clear(&tiff->handle_free);
  g_mutex_clear(&tiff->lock);
  g_free(tiff->levels);
  g_free(tiff->path);
  g_free(tiff);
}

bool slide_tiff_has_level(SlideTiff *tiff, gint32 level)
{
  return tiff && level >= 0 && level < tiff->n_levels &&
         tiff->levels[level].offset != 0;
}

/* An idle handle, preferring one already on the wanted directory, or NULL
 * when a new one may be opened.  Waits while all are busy.  Locked. */
static TiffHandle *take_idle_handle(SlideTiff *tiff, toff_t offset)
{
  for (;;) {
    for (guint i = 0; i < tiff->idle->len; i++) {
      TiffHandle *handle = g_ptr_array_index(tiff->idle, i);
      if (handle->offset == offset)
        return g_ptr_array_steal_index_fast(tiff->idle, i);
    }
    if (tiff->n_handles < MAX_HANDLES) {
      tiff->n_handles++;
      return NULL;
    }
    if (tiff->idle->len > 0)
      return g_ptr_array_steal_index_fast(tiff->idle, 0);
    g_cond_wait(&tiff->handle_free, &tiff->lock);
  }
}

static void release_handle(SlideTiff *tiff, TiffHandle *handle)
{
  g_mutex_lock(&tiff->lock);
  if (handle)
    g_ptr_array_add(tiff->idle, handle);
  else
    tiff->n_handles--;
  g_cond_signal(&tiff->handle_free);
  g_mutex_unlock(&tiff->lock);
}

/* Moves a handle to a level's directory.  The JPEG colour mode is a
 * pseudo-tag that each directory read resets, so it is set again: libtiff
 * then has libjpeg turn YCbCr into RGB, with the file's shared tables. */
static bool handle_set_level(TiffHandle *handle, const TiffLevel *level)
{
  if (handle->offset == level->offset)
    return true;
  handle->offset = 0;
  if (!TIFFSetSubDirectory(handle->tif, level->offset))
    return false;
  if (level->ycbcr &&
      !TIFFSetField(handle->tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB))
    return false;
  handle->offset = level->offset;
  return true;
}

/* A handle on the level's directory, opening one when the pool allows. */
static TiffHandle *acquire_handle(SlideTiff *tiff, const TiffLevel *level,
                                  GError **error)
{
  g_mutex_lock(&tiff->lock);
  TiffHandle *handle = take_idle_handle(tiff, level->offset);
  g_mutex_unlock(&tiff->lock);

  if (handle == NULL) {
    TIFF *tif = TIFFOpen(tiff->path, "rO");
    if (tif) {
      handle = g_new0(TiffHandle, 1);
      handle->tif = tif;
    }
  }
  if (handle && handle_set_level(handle, level))
    return handle;

  /* A handle in an unknown state is closed rather than reused. */
  if (handle)
    handle_free(handle);
  release_handle(tiff, NULL);
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_SLIDE,
              "%s: libtiff cannot open the level", tiff->path);
  return NULL;
}

/* Decodes one file tile to RGB.  A tile with no bytes is one the scanner
 * skipped: it is background, as OpenSlide draws it. */
static GBytes *decode_tile(SlideTiff *tiff, const TiffLevel *level,
                           guint32 index, GError **error)
{
  gsize size = (gsize) level->tile_w * level->tile_h * 3;
  TiffHandle *handle = acquire_handle(tiff, level, error);

  if (handle == NULL)
    return NULL;
  guint8 *rgb = g_malloc(size);
  bool ok = true;
  if (TIFFGetStrileByteCount(handle->tif, index) == 0)
    memset(rgb, 255, size);
  else
    ok = TIFFReadEncodedTile(handle->tif, index, rgb, (tmsize_t) size) ==
         (tmsize_t) size;
  release_handle(tiff, handle);

  if (!ok) {
    g_free(rgb);
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_SLIDE,
                "%s: libtiff cannot decode tile %u", tiff->path, index);
    return NULL;
  }
  return g_bytes_new_take(rgb, size);
}

/* A cached tile as a new reference, or NULL.  Locked. */
static GBytes *cache_lookup(SlideTiff *tiff, guint64 key)
{
  CachedTile *tile = g_hash_table_lookup(tiff->tiles, &key);

  if (tile == NULL)
    return NULL;
  g_queue_unlink(&tiff->lru, tile->link);
  g_queue_push_head_link(&tiff->lru, tile->link);
  return g_bytes_ref(tile->rgb);
}

/* Adds a tile unless another thread did first, then drops the least
 * recently used ones over the budget.  Locked. */
static void cache_insert(SlideTiff *tiff, guint64 key, GBytes *rgb)
{
  if (g_hash_table_contains(tiff->tiles, &key))
    return;

  CachedTile *tile = g_new0(CachedTile, 1);
  tile->key = key;
  tile->rgb = g_bytes_ref(rgb);
  g_queue_push_head(&tiff->lru, tile);
  tile->link = tiff->lru.head;
  g_hash_table_insert(tiff->tiles, &tile->key, tile);
  tiff->tile_bytes += g_bytes_get_size(rgb);

  while (tiff->tile_bytes > TILE_CACHE_BYTES && tiff->lru.length > 1) {
    CachedTile *old = g_queue_pop_tail(&tiff->lru);
    tiff->tile_bytes -= g_bytes_get_size(old->rgb);
    g_hash_table_remove(tiff->tiles, &old->key);
  }
}

/* The decoded RGB of file tile (col, row) of a level, from the cache or
 * decoded now.  Decoding runs outside the lock. */
static GBytes *get_tile(SlideTiff *tiff, gint32 level, guint32 col,
                        guint32 row, GError **error)
{
  const TiffLevel *l = &tiff->levels[level];
  guint32 index = row * l->tiles_across + col;
  guint64 key = ((guint64) level << 32) | index;

  g_mutex_lock(&tiff->lock);
  GBytes *rgb = cache_lookup(tiff, key);
  g_mutex_unlock(&tiff->lock);
  if (rgb)
    return rgb;

  rgb = decode_tile(tiff, l, index, error);
  if (rgb == NULL)
    return NULL;
  g_mutex_lock(&tiff->lock);
  cache_insert(tiff, key, rgb);
  g_mutex_unlock(&tiff->lock);
  return rgb;
}

/* The region being filled, in level pixels. */
typedef struct {
  gint64 x, y, width, height;  /* region at the level */
  guint8 *rgb;                 /* width * height * 3 */
} LevelRegion;

/* Copies the overlap of file tile (col, row) into the region.  Only the
 * tile's pixels inside the level are used: edge tiles are padded with
 * whatever the scanner wrote, which OpenSlide clips away too. */
static bool copy_tile(SlideTiff *tiff, gint32 level, guint32 col,
                      guint32 row, const LevelRegion *r, GError **error)
{
  const TiffLevel *l = &tiff->levels[level];
  gint64 tx = (gint64) col * l->tile_w;
  gint64 ty = (gint64) row * l->tile_h;
  gint64 x0 = MAX(tx, r->x), x1 = MIN(MIN(tx + l->tile_w, l->width),
                                         r->x + r->width);
  gint64 y0 = MAX(ty, r->y), y1 = MIN(MIN(ty + l->tile_h, l->height),
                                         r->y + r->height);
  g_autoptr(GBytes) tile = get_tile(tiff, level, col, row, error);

  if (tile == NULL)
    return false;
  const guint8 *src = g_bytes_get_data(tile, NULL);
  for (gint64 y = y0; y < y1; y++)
    memcpy(r->rgb + ((y - r->y) * r->width + (x0 - r->x)) * 3,
           src + ((y - ty) * l->tile_w + (x0 - tx)) * 3,
           (gsize) (x1 - x0) * 3);
  return true;
}

/* Whole level pixels from (lx, ly) into rgb; outside the level is
 * background, white as on the OpenSlide path. */
static bool read_level_pixels(SlideTiff *tiff, gint32 level, gint64 lx,
                              gint64 ly, gint64 width, gint64 height,
                              guint8 *rgb, GError **error)
{
  const TiffLevel *l = &tiff->levels[level];
  LevelRegion r = { lx, ly, width, height, rgb };

  memset(rgb, 255, (gsize) (width * height * 3));
  gint64 x0 = MAX(lx, 0), y0 = MAX(ly, 0);
  gint64 x1 = MIN(lx + width, (gint64) l->width);
  gint64 y1 = MIN(ly + height, (gint64) l->height);
  if (x0 >= x1 || y0 >= y1)
    return true;

  for (gint64 row = y0 / l->tile_h; row <= (y1 - 1) / l->tile_h; row++)
    for (gint64 col = x0 / l->tile_w; col <= (x1 - 1) / l->tile_w; col++)
      if (!copy_tile(tiff, level, (guint32) col, (guint32) row, &r, error))
        return false;
  return true;
}

/* Bilinear weight in 1/128ths of a fraction of a pixel, as pixman takes
 * it from cairo's 16.16 fixed-point translation. */
static guint32 bilinear_weight(double fraction)
{
  gint64 fixed = (gint64) llround(fraction * 65536.0);

  return (guint32) ((CLAMP(fixed, 0, 65535) >> 9) & 0x7f);
}

/* src holds (width + 1) x (height + 1) pixels; each output pixel blends
 * four of them, the way cairo samples a surface at a fractional offset.
 * Blending colours on white equals OpenSlide's blending of premultiplied
 * pixels composited on white afterwards, up to rounding. */
static void blend_bilinear(const guint8 *src, gint64 width, gint64 height,
                           guint32 wx, guint32 wy, guint8 *rgb)
{
  gsize stride = (gsize) (width + 1) * 3;
  guint32 w00 = (128 - wx) * (128 - wy), w01 = wx * (128 - wy);
  guint32 w10 = (128 - wx) * wy, w11 = wx * wy;

  for (gint64 y = 0; y < height; y++) {
    const guint8 *top = src + (gsize) y * stride;
    const guint8 *bottom = top + stride;
    guint8 *out = rgb + (gsize) (y * width) * 3;
    for (gint64 i = 0; i < width * 3; i++)
      out[i] = (guint8) ((top[i] * w00 + top[i + 3] * w01 +
                          bottom[i] * w10 + bottom[i + 3] * w11 +
                          (1u << 13)) >> 14);
  }
}

bool slide_tiff_read_region(SlideTiff *tiff, gint64 x, gint64 y,
                            gint32 level, double downsample, gint64 width,
                            gint64 height, guint8 *rgb, GError **error)
{
  /* OpenSlide places level-0 (x, y) at a fractional level pixel when the
   * downsample is not a power of two (4.0023 and the like); the small
   * slack keeps exact divisions from landing just below a whole pixel. */
  double lx = (double) x / downsample, ly = (double) y / downsample;
  double bx = floor(lx + 1e-6), by = floor(ly + 1e-6);
  guint32 wx = bilinear_weight(lx - bx), wy = bilinear_weight(ly - by);

  if (wx == 0 && wy == 0)
    return read_level_pixels(tiff, level, (gint64) bx, (gint64) by, width,
                             height, rgb, error);

  g_autofree guint8 *src = g_malloc((gsize) ((width + 1) * (height + 1) *
                                             3));
  if (!read_level_pixels(tiff, level, (gint64) bx, (gint64) by, width + 1,
                         height + 1, src, error))
    return false;
  blend_bilinear(src, width, height, wx, wy, rgb);
  return true;
}
