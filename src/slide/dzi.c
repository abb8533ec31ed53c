/*
 * dzi.c: Deep Zoom tiles, thumbnails and associated images: read with
 * OpenSlide, scaled and encoded with libvips.
 */
#include "slide/dzi.h"
#include "slide/slide-private.h"

#include "common/aapi-error.h"
#include "common/log.h"

#include <math.h>
#include <string.h>

/* A level whose downsample is within this factor of the wanted one still
 * counts as "at or below" it: pyramid levels are often 4.0003x and the like,
 * and reading the next finer level instead costs 16 times the pixels. */
#define LEVEL_TOLERANCE 1.01

/* Largest region read for one tile or thumbnail (pixels): a slide without
 * coarse pyramid levels would otherwise need its whole level 0 for the
 * smallest Deep Zoom levels. */
#define MAX_READ_PIXELS (32 * 1024 * 1024)

/* Largest associated image decoded (pixels). */
#define MAX_ASSOCIATED_PIXELS (64 * 1024 * 1024)

void dzi_layout_init(DziLayout *layout, const SlideInfo *info,
                     guint tile_size, guint overlap)
{
  gint64 w = info->bounds_width;
  gint64 h = info->bounds_height;

  layout->origin_x = info->bounds_x;
  layout->origin_y = info->bounds_y;
  layout->width = w;
  layout->height = h;
  layout->tile_size = MAX(tile_size, 1);
  layout->overlap = overlap;

  /* One level per halving, rounding up, down to 1x1. */
  layout->n_levels = 1;
  while (w > 1 || h > 1) {
    w = (w + 1) / 2;
    h = (h + 1) / 2;
    layout->n_levels++;
  }
}

bool dzi_level_size(const DziLayout *layout, gint64 level, gint64 *width,
                    gint64 *height)
{
  if (level < 0 || level >= layout->n_levels)
    return false;

  gint64 w = layout->width;
  gint64 h = layout->height;
  for (gint64 i = level; i < layout->n_levels - 1; i++) {
    w = (w + 1) / 2;
    h = (h + 1) / 2;
  }
  *width = w;
  *height = h;
  return true;
}

bool dzi_level_tiles(const DziLayout *layout, gint64 level, gint64 *cols,
                     gint64 *rows)
{
  gint64 w, h;

  if (!dzi_level_size(layout, level, &w, &h))
    return false;
  *cols = (w + layout->tile_size - 1) / layout->tile_size;
  *rows = (h + layout->tile_size - 1) / layout->tile_size;
  return true;
}

bool dzi_parse_format(const char *text, DziFormat *format, GError **error)
{
  if (g_strcmp0(text, "jpeg") == 0 || g_strcmp0(text, "jpg") == 0) {
    *format = DZI_FORMAT_JPEG;
    return true;
  }
  if (g_strcmp0(text, "png") == 0) {
    *format = DZI_FORMAT_PNG;
    return true;
  }
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
              "tile format '%s' is not jpeg or png", text ? text : "");
  return false;
}

const char *dzi_format_name(DziFormat format)
{
  return format == DZI_FORMAT_PNG ? "png" : "jpeg";
}

const char *dzi_format_mime(DziFormat format)
{
  return format == DZI_FORMAT_PNG ? "image/png" : "image/jpeg";
}

char *dzi_descriptor(const DziLayout *layout, DziFormat format)
{
  return g_strdup_printf(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\" "
      "Format=\"%s\" Overlap=\"%u\" TileSize=\"%u\">"
      "<Size Width=\"%" G_GINT64_FORMAT "\" Height=\"%" G_GINT64_FORMAT
      "\"/></Image>\n",
      dzi_format_name(format), layout->overlap, layout->tile_size,
      layout->width, layout->height);
}

GBytes *slide_encode_rgb(const guint8 *rgb, gint64 width, gint64 height,
                         gint64 out_width, gint64 out_height, bool png,
                         int quality, GError **error)
{
  g_autoptr(VipsImage) image = NULL;
  g_autoptr(VipsImage) scaled = NULL;
  void *buffer = NULL;
  size_t length = 0;

  if (!slide_init_libs(error))
    return NULL;
  image = vips_image_new_from_memory(rgb, (size_t) (width * height * 3),
                                     (int) width, (int) height, 3,
                                     VIPS_FORMAT_UCHAR);
  if (image == NULL) {
    slide_set_vips_error(error, "image");
    return NULL;
  }

  /* Exact scales give the exact size the descriptor promises. */
  VipsImage *out = image;
  if (out_width != width || out_height != height) {
    if (vips_resize(image, &scaled, (double) out_width / (double) width,
                    "vscale", (double) out_height / (double) height,
                    NULL) != 0) {
      slide_set_vips_error(error, "scale");
      return NULL;
    }
    out = scaled;
  }

  int status = png ? vips_pngsave_buffer(out, &buffer, &length,
                                         "compression", 6, NULL)
                   : vips_jpegsave_buffer(out, &buffer, &length, "Q",
                                          quality, "strip", TRUE, NULL);
  if (status != 0) {
    slide_set_vips_error(error, "encode");
    return NULL;
  }
  return g_bytes_new_take(buffer, length);
}

/* The coarsest OpenSlide level whose downsample is not above the wanted
 * one (within LEVEL_TOLERANCE). */
static gint32 best_level(const SlideInfo *info, double downsample)
{
  gint32 best = 0;

  for (gint32 i = 1; i < info->level_count; i++)
    if (info->level_downsample[i] <= downsample * LEVEL_TOLERANCE)
      best = i;
  return best;
}

/* Level-0 rectangle (x, y, w, h in level-0 px, relative to the origin) of
 * Deep Zoom pixels [x0, x1) x [y0, y1) at a level of downsample d. */
typedef struct {
  gint64 x0, y0, x1, y1;   /* Deep Zoom pixels of the tile */
  double downsample;       /* Deep Zoom level to level 0 */
} TileRect;

static bool tile_rect(const DziLayout *layout, gint64 level, gint64 col,
                      gint64 row, TileRect *rect, GError **error)
{
  gint64 width, height, cols, rows;

  if (!dzi_level_size(layout, level, &width, &height) ||
      !dzi_level_tiles(layout, level, &cols, &rows) || col < 0 ||
      row < 0 || col >= cols || row >= rows) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
                "no tile %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT "_%"
                G_GINT64_FORMAT " in this image", level, col, row);
    return false;
  }

  gint64 ts = layout->tile_size;
  gint64 ov = layout->overlap;
  rect->x0 = col * ts - (col > 0 ? ov : 0);
  rect->y0 = row * ts - (row > 0 ? ov : 0);
  rect->x1 = MIN(width, (col + 1) * ts + ov);
  rect->y1 = MIN(height, (row + 1) * ts + ov);
  rect->downsample = ldexp(1.0, (int) (layout->n_levels - 1 - level));
  return true;
}

static bool check_read_size(gint64 width, gint64 height, GError **error)
{
  if (width <= MAX_READ_PIXELS / height)
    return true;
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_TOO_LARGE,
              "the slide has no pyramid level coarse enough for this view "
              "(%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " pixels to read)",
              width, height);
  return false;
}

GBytes *dzi_render_tile(Slide *slide, const DziLayout *layout, gint64 level,
                        gint64 col, gint64 row, DziFormat format,
                        GError **error)
{
  const SlideInfo *info = slide_get_info(slide);
  TileRect r;

  if (!tile_rect(layout, level, col, row, &r, error))
    return NULL;

  /* Level-0 extent of the tile, clipped to the image. */
  double d = r.downsample;
  double l0_x = (double) r.x0 * d;
  double l0_y = (double) r.y0 * d;
  double l0_w = MIN((double) r.x1 * d, (double) layout->width) - l0_x;
  double l0_h = MIN((double) r.y1 * d, (double) layout->height) - l0_y;

  gint32 level_os = best_level(info, d);
  double ds = info->level_downsample[level_os];
  gint64 read_w = MAX(1, (gint64) ceil(l0_w / ds - 1e-6));
  gint64 read_h = MAX(1, (gint64) ceil(l0_h / ds - 1e-6));
  if (!check_read_size(read_w, read_h, error))
    return NULL;
  g_autofree guint8 *rgb = g_malloc((gsize) (read_w * read_h * 3));

  if (!slide_read_region_rgb(slide, layout->origin_x + (gint64) l0_x,
                             layout->origin_y + (gint64) l0_y, level_os,
                             read_w, read_h, rgb, error))
    return NULL;
  return slide_encode_rgb(rgb, read_w, read_h, r.x1 - r.x0, r.y1 - r.y0,
                          format == DZI_FORMAT_PNG, DZI_JPEG_QUALITY, error);
}

GBytes *dzi_render_thumbnail(Slide *slide, guint max_size, GError **error)
{
  const SlideInfo *info = slide_get_info(slide);
  double longest = (double) MAX(info->bounds_width, info->bounds_height);
  double scale = MIN(1.0, (double) max_size / longest);

  /* Read at the level nearest the thumbnail's scale, then fit exactly. */
  gint32 level = best_level(info, 1.0 / scale);
  double ds = info->level_downsample[level];
  gint64 read_w = MAX(1, (gint64) ceil((double) info->bounds_width / ds));
  gint64 read_h = MAX(1, (gint64) ceil((double) info->bounds_height / ds));
  gint64 out_w = MAX(1, (gint64) round((double) info->bounds_width * scale));
  gint64 out_h = MAX(1, (gint64) round((double) info->bounds_height *
                                       scale));
  if (!check_read_size(read_w, read_h, error))
    return NULL;
  g_autofree guint8 *rgb = g_malloc((gsize) (read_w * read_h * 3));

  if (!slide_read_region_rgb(slide, info->bounds_x, info->bounds_y, level,
                             read_w, read_h, rgb, error))
    return NULL;
  return slide_encode_rgb(rgb, read_w, read_h, out_w, out_h, false, 85,
                          error);
}

static bool has_associated(const SlideInfo *info, const char *name)
{
  for (guint i = 0; info->associated_names && info->associated_names[i];
       i++)
    if (strcmp(info->associated_names[i], name) == 0)
      return true;
  return false;
}

GBytes *dzi_render_associated(Slide *slide, const char *name,
                              GError **error)
{
  openslide_t *osr = slide_get_openslide(slide);
  gint64 w = -1, h = -1;

  if (!has_associated(slide_get_info(slide), name)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
                "the slide has no associated image '%s'", name);
    return NULL;
  }
  openslide_get_associated_image_dimensions(osr, name, &w, &h);
  if (w <= 0 || h <= 0 || w > MAX_ASSOCIATED_PIXELS / h) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_SLIDE,
                "associated image '%s' has an unusable size", name);
    return NULL;
  }

  g_autofree guint32 *argb = g_new(guint32, w * h);
  openslide_read_associated_image(osr, name, argb);
  if (!slide_check_openslide(osr, name, error)) {
    slide_blame_missing_file(slide, error);
    return NULL;
  }

  g_autofree guint8 *rgb = g_malloc((gsize) (w * h * 3));
  slide_argb_to_rgb(argb, (gsize) (w * h), rgb);
  return slide_encode_rgb(rgb, w, h, w, h, false, 90, error);
}

char *dzi_tile_key(const char *slide_id, gint64 level, gint64 col,
                   gint64 row, DziFormat format)
{
  return g_strdup_printf("%s/%" G_GINT64_FORMAT "/%" G_GINT64_FORMAT "_%"
                         G_GINT64_FORMAT ".%s", slide_id, level, col, row,
                         dzi_format_name(format));
}

char *dzi_tile_etag(const char *slide_id, gint64 level, gint64 col,
                    gint64 row, DziFormat format)
{
  /* The tile geometry and quality are part of it, so a change of either
   * never serves an old tile from a browser cache. */
  return g_strdup_printf("\"%s-%" G_GINT64_FORMAT "-%" G_GINT64_FORMAT "-%"
                         G_GINT64_FORMAT "-%d-%d-q%d.%s\"", slide_id, level,
                         col, row, DZI_TILE_SIZE, DZI_OVERLAP,
                         DZI_JPEG_QUALITY, dzi_format_name(format));
}

GBytes *dzi_get_tile(TileCache *cache, Slide *slide, const char *slide_id,
                     gint64 level, gint64 col, gint64 row,
                     DziFormat format, GError **error)
{
  g_autofree char *key = dzi_tile_key(slide_id, level, col, row, format);
  GBytes *bytes = cache ? tile_cache_lookup(cache, key) : NULL;
  DziLayout layout;

  if (bytes)
    return bytes;
  dzi_layout_init(&layout, slide_get_info(slide), DZI_TILE_SIZE,
                  DZI_OVERLAP);
  bytes = dzi_render_tile(slide, &layout, level, col, row, format, error);
  if (bytes && cache)
    tile_cache_insert(cache, key, bytes);
  return bytes;
}
