/*
 * slide.c: an open slide (OpenSlide handle plus what the API reports about
 * it), region reads as RGB on white, and MD5 ids.
 */
#include "slide/slide-private.h"

#include "common/aapi-error.h"
#include "common/config.h"
#include "common/log.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>
#include <vips/vips.h>

/* Region reads go through a bounded scratch buffer of this edge. */
#define READ_CHUNK 2048

/* Files are hashed in blocks of this size. */
#define MD5_BLOCK (4 * 1024 * 1024)

struct Slide {
  gatomicrefcount ref;
  openslide_t *osr;
  char *path;
  char *id;                 /* the registered id, or NULL: for messages */
  SlideInfo info;
  gint64 *level_width;
  gint64 *level_height;
  double *level_downsample;
  SlideTiff *tiff;          /* libtiff reads of JPEG-tiled levels, or NULL */
  gint fast_read;           /* atomic: whether tiff is used */
};

bool slide_check_openslide(openslide_t *osr, const char *what,
                           GError **error)
{
  const char *message = openslide_get_error(osr);

  if (message == NULL)
    return true;
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_SLIDE, "%s: %s", what, message);
  return false;
}

void slide_set_vips_error(GError **error, const char *what)
{
  g_autofree char *text = vips_error_buffer_copy();

  g_strstrip(text);
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_SLIDE, "%s: %s", what,
              *text ? text : "libvips failed");
}

/* libvips turns libtiff's warnings into its own, and OpenSlide's reads
 * go through the same libtiff: unknown tags and odd raster widths in real
 * slides would flood the log, so they become debug lines, like libvips'
 * own progress notes.  Its errors reach callers as GErrors. */
static void vips_warning_to_debug(const char *domain, GLogLevelFlags level,
                                  const char *message, gpointer data)
{
  aapi_debug(AAPI_DEBUG_SLIDE, "%s: %s", domain, message);
}

/* libtiff prints its own warnings (unknown tags, odd raster widths in
 * real slides) to stderr on every open, and OpenSlide and tiff-read.c
 * report the failures that matter as errors. */
static void quiet_libtiff(void)
{
  TIFFSetWarningHandler(NULL);
}

static gpointer init_libs_once(gpointer data)
{
  g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE |
                    G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG,
                    vips_warning_to_debug, NULL);

  /* VIPS_INIT wants a program name only to find its data files. */
  if (VIPS_INIT("aapi") != 0)
    return g_strdup(vips_error_buffer());

  /* Each request is a distinct memory image, so the operation cache only
   * holds memory; the server's own threads give the parallelism. */
  vips_cache_set_max(0);
  vips_concurrency_set(1);
  quiet_libtiff();
  return NULL;
}

bool slide_init_libs(GError **error)
{
  static GOnce once = G_ONCE_INIT;
  const char *failure = g_once(&once, init_libs_once, NULL);

  if (failure == NULL)
    return true;
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_SLIDE,
              "libvips did not start: %s", failure);
  return false;
}

/* A numeric OpenSlide property, or fallback when absent or unparsable. */
static double property_double(openslide_t *osr, const char *name,
                              double fallback)
{
  const char *text = openslide_get_property_value(osr, name);
  char *end = NULL;

  if (text == NULL)
    return fallback;
  double value = g_ascii_strtod(text, &end);
  if (end == text || *end != '\0' || !isfinite(value))
    return fallback;
  return value;
}

static void fill_levels(Slide *slide)
{
  SlideInfo *info = &slide->info;
  gint32 n = openslide_get_level_count(slide->osr);

  info->level_count = n;
  slide->level_width = g_new0(gint64, n);
  slide->level_height = g_new0(gint64, n);
  slide->level_downsample = g_new0(double, n);
  for (gint32 i = 0; i < n; i++) {
    openslide_get_level_dimensions(slide->osr, i, &slide->level_width[i],
                                   &slide->level_height[i]);
    slide->level_downsample[i] =
        openslide_get_level_downsample(slide->osr, i);
  }
  info->level_width = slide->level_width;
  info->level_height = slide->level_height;
  info->level_downsample = slide->level_downsample;
  info->width = slide->level_width[0];
  info->height = slide->level_height[0];
}

/* Bounds describe where the content lies; formats without them (and
 * values that do not fit in the slide) mean the whole slide. */
static void fill_bounds(Slide *slide)
{
  SlideInfo *info = &slide->info;
  double x = property_double(slide->osr, OPENSLIDE_PROPERTY_NAME_BOUNDS_X,
                             0);
  double y = property_double(slide->osr, OPENSLIDE_PROPERTY_NAME_BOUNDS_Y,
                             0);
  double w = property_double(slide->osr,
                             OPENSLIDE_PROPERTY_NAME_BOUNDS_WIDTH, -1);
  double h = property_double(slide->osr,
                             OPENSLIDE_PROPERTY_NAME_BOUNDS_HEIGHT, -1);

  if (w < 1 || h < 1 || x < 0 || y < 0 || x + w > info->width ||
      y + h > info->height) {
    x = y = 0;
    w = (double) info->width;
    h = (double) info->height;
  }
  info->bounds_x = (gint64) x;
  info->bounds_y = (gint64) y;
  info->bounds_width = (gint64) w;
  info->bounds_height = (gint64) h;
}

static void fill_info(Slide *slide)
{
  SlideInfo *info = &slide->info;
  const char *vendor = openslide_get_property_value(
      slide->osr, OPENSLIDE_PROPERTY_NAME_VENDOR);

  info->vendor = vendor ? vendor : "generic-tiff";
  fill_levels(slide);
  info->mpp_x = property_double(slide->osr, OPENSLIDE_PROPERTY_NAME_MPP_X,
                                NAN);
  info->mpp_y = property_double(slide->osr, OPENSLIDE_PROPERTY_NAME_MPP_Y,
                                NAN);
  fill_bounds(slide);
  info->associated_names =
      openslide_get_associated_image_names(slide->osr);
}

/* AAPI_TIFF_FAST_READ off (0, false, no, off) keeps every read on
 * OpenSlide, for comparing the two paths; the configuration refuses
 * values that are not switches. */
static void open_fast_read(Slide *slide)
{
  const char *text = g_getenv("AAPI_TIFF_FAST_READ");
  bool on = true;

  if (text && *text && aapi_parse_bool(text, &on, NULL) && !on)
    return;
  slide->tiff = slide_tiff_open(slide->path, &slide->info);
  g_atomic_int_set(&slide->fast_read, slide->tiff != NULL);
}

/* Says that the slide's file is missing (NOT_FOUND) or cannot be read
 * (IO).  A registered slide is named by its id and the file's base name,
 * so that the server's folders stay out of HTTP answers. */
static void set_file_error(GError **error, const char *path, const char *id,
                           int why)
{
  AapiErrorCode code = why == ENOENT || why == ENOTDIR
                           ? AAPI_ERROR_NOT_FOUND : AAPI_ERROR_IO;
  g_autofree char *base = g_path_get_basename(path);

  if (id && code == AAPI_ERROR_NOT_FOUND)
    g_set_error(error, AAPI_ERROR, code, "slide %s: its file %s is missing",
                id, base);
  else if (id)
    g_set_error(error, AAPI_ERROR, code,
                "slide %s: its file %s cannot be read: %s", id, base,
                g_strerror(why));
  else if (code == AAPI_ERROR_NOT_FOUND)
    g_set_error(error, AAPI_ERROR, code, "%s: no such file", path);
  else
    g_set_error(error, AAPI_ERROR, code, "%s: cannot be read: %s", path,
                g_strerror(why));
}

/* OpenSlide says "not a slide format" for a file it cannot open for any
 * reason, so whether the file is there and readable is asked first. */
static bool check_file(const char *path, const char *id, GError **error)
{
  GStatBuf st;

  if (g_stat(path, &st) == 0 && g_access(path, R_OK) == 0)
    return true;
  set_file_error(error, path, id, errno);
  return false;
}

Slide *slide_open_as(const char *path, const char *id, GError **error)
{
  if (!check_file(path, id, error))
    return NULL;

  /* OpenSlide 3.4 answers NULL for a file it does not know at all, and a
   * handle in error state for one it knows but cannot read. */
  g_autoptr(openslide_t) osr = openslide_open(path);

  if (osr == NULL) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_SLIDE,
                "%s: not a slide format OpenSlide can open", path);
    return NULL;
  }
  if (!slide_check_openslide(osr, path, error))
    return NULL;
  if (openslide_get_level_count(osr) < 1) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_SLIDE, "%s: no levels",
                path);
    return NULL;
  }

  Slide *slide = g_new0(Slide, 1);
  g_atomic_ref_count_init(&slide->ref);
  slide->osr = g_steal_pointer(&osr);
  slide->path = g_strdup(path);
  slide->id = g_strdup(id);
  fill_info(slide);
  open_fast_read(slide);
  aapi_debug(AAPI_DEBUG_SLIDE, "opened %s (%s, %" G_GINT64_FORMAT "x%"
             G_GINT64_FORMAT ", %d levels)", path, slide->info.vendor,
             slide->info.width, slide->info.height, slide->info.level_count);
  return slide;
}

Slide *slide_open(const char *path, GError **error)
{
  return slide_open_as(path, NULL, error);
}

bool slide_file_present(Slide *slide, GError **error)
{
  return check_file(slide->path, slide->id, error);
}

void slide_blame_missing_file(Slide *slide, GError **error)
{
  g_autoptr(GError) missing = NULL;

  if (error == NULL || *error == NULL ||
      slide_file_present(slide, &missing))
    return;
  aapi_debug(AAPI_DEBUG_SLIDE, "%s", (*error)->message);
  g_clear_error(error);
  g_propagate_error(error, g_steal_pointer(&missing));
}

Slide *slide_ref(Slide *slide)
{
  g_atomic_ref_count_inc(&slide->ref);
  return slide;
}

void slide_unref(Slide *slide)
{
  if (slide == NULL || !g_atomic_ref_count_dec(&slide->ref))
    return;
  openslide_close(slide->osr);
  slide_tiff_free(slide->tiff);
  g_free(slide->path);
  g_free(slide->id);
  g_free(slide->level_width);
  g_free(slide->level_height);
  g_free(slide->level_downsample);
  g_free(slide);
}

const SlideInfo *slide_get_info(Slide *slide)
{
  return &slide->info;
}

const char *slide_get_path(Slide *slide)
{
  return slide->path;
}

openslide_t *slide_get_openslide(Slide *slide)
{
  return slide->osr;
}

void slide_set_fast_read(Slide *slide, bool enabled)
{
  g_atomic_int_set(&slide->fast_read, enabled && slide->tiff != NULL);
}

bool slide_fast_read_level(Slide *slide, gint32 level)
{
  return g_atomic_int_get(&slide->fast_read) &&
         slide_tiff_has_level(slide->tiff, level);
}

bool slide_is_usable(Slide *slide)
{
  return openslide_get_error(slide->osr) == NULL;
}

/* Premultiplied colour over white is c + (255 - a): the un-premultiplied
 * colour c*255/a blended with weight a/255 onto 255 gives exactly that,
 * so fully transparent pixels (and areas outside the slide, which OpenSlide
 * leaves transparent) come out white. */
void slide_argb_to_rgb(const guint32 *argb, gsize n, guint8 *rgb)
{
  for (gsize i = 0; i < n; i++) {
    guint32 p = argb[i];
    guint32 back = 255 - (p >> 24);

    rgb[3 * i] = (guint8) MIN(255u, ((p >> 16) & 0xff) + back);
    rgb[3 * i + 1] = (guint8) MIN(255u, ((p >> 8) & 0xff) + back);
    rgb[3 * i + 2] = (guint8) MIN(255u, (p & 0xff) + back);
  }
}

static bool check_region(Slide *slide, gint32 level, gint64 width,
                         gint64 height, GError **error)
{
  if (level < 0 || level >= slide->info.level_count) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "level %d is not in 0..%d", level,
                slide->info.level_count - 1);
    return false;
  }
  /* The caller's buffer holds width*height*3 bytes; refuse sizes whose
   * product cannot even be a buffer size. */
  if (width <= 0 || height <= 0 ||
      width > (gint64) (G_MAXSIZE / 4) / height) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "region size %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                " is not valid", width, height);
    return false;
  }
  return true;
}

/* Reads one chunk at (cx, cy) of the level into rgb with row stride. */
static bool read_chunk(Slide *slide, gint64 x, gint64 y, gint32 level,
                       gint64 cx, gint64 cy, gint64 cw, gint64 ch,
                       guint32 *scratch, guint8 *rgb, gsize stride,
                       GError **error)
{
  double downsample = slide->level_downsample[level];
  gint64 x0 = x + (gint64) floor((double) cx * downsample);
  gint64 y0 = y + (gint64) floor((double) cy * downsample);

  openslide_read_region(slide->osr, scratch, x0, y0, level, cw, ch);
  if (!slide_check_openslide(slide->osr, slide->path, error))
    return false;
  for (gint64 row = 0; row < ch; row++)
    slide_argb_to_rgb(scratch + row * cw, (gsize) cw,
                      rgb + (gsize) (cy + row) * stride + (gsize) cx * 3);
  return true;
}

static bool read_region(Slide *slide, gint64 x, gint64 y, gint32 level,
                        gint64 width, gint64 height, guint8 *rgb,
                        GError **error)
{
  /* JPEG-tiled TIFF levels come straight from libtiff; should that fail,
   * OpenSlide reads the region and reports its own error if any. */
  if (slide_fast_read_level(slide, level)) {
    g_autoptr(GError) fast_error = NULL;
    if (slide_tiff_read_region(slide->tiff, x, y, level,
                               slide->level_downsample[level], width, height,
                               rgb, &fast_error))
      return true;
    aapi_debug(AAPI_DEBUG_SLIDE, "%s", fast_error->message);
  }

  /* Big regions are read in chunks so that the ARGB scratch stays small
   * (OpenSlide needs 4 bytes a pixel for the whole request). */
  gint64 chunk_w = MIN(width, READ_CHUNK);
  gint64 chunk_h = MIN(height, READ_CHUNK);
  g_autofree guint32 *scratch = g_new(guint32, chunk_w * chunk_h);
  gsize stride = (gsize) width * 3;

  for (gint64 cy = 0; cy < height; cy += chunk_h)
    for (gint64 cx = 0; cx < width; cx += chunk_w)
      if (!read_chunk(slide, x, y, level, cx, cy, MIN(chunk_w, width - cx),
                      MIN(chunk_h, height - cy), scratch, rgb, stride,
                      error))
        return false;
  return true;
}

bool slide_read_region_rgb(Slide *slide, gint64 x, gint64 y, gint32 level,
                           gint64 width, gint64 height, guint8 *rgb,
                           GError **error)
{
  if (!check_region(slide, level, width, height, error))
    return false;
  if (read_region(slide, x, y, level, width, height, rgb, error))
    return true;
  slide_blame_missing_file(slide, error);
  return false;
}

static bool hash_stream(FILE *file, const char *path, guint64 total,
                        GChecksum *checksum, SlideProgressFunc progress,
                        gpointer user_data, GError **error)
{
  g_autofree guint8 *block = g_malloc(MD5_BLOCK);
  guint64 done = 0;
  size_t n;

  while ((n = fread(block, 1, MD5_BLOCK, file)) > 0) {
    g_checksum_update(checksum, block, n);
    done += n;
    if (progress)
      progress(path, done, total, user_data);
  }
  if (ferror(file)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "cannot read %s: %s",
                path, g_strerror(errno));
    return false;
  }
  return true;
}

char *slide_file_md5(const char *path, SlideProgressFunc progress,
                     gpointer user_data, GError **error)
{
  FILE *file = fopen(path, "rb");

  if (file == NULL) {
    int saved = errno;
    g_set_error(error, AAPI_ERROR,
                saved == ENOENT ? AAPI_ERROR_NOT_FOUND : AAPI_ERROR_IO,
                "cannot open %s: %s", path, g_strerror(saved));
    return NULL;
  }

  GStatBuf st;
  guint64 total = g_stat(path, &st) == 0 ? (guint64) st.st_size : 0;
  g_autoptr(GChecksum) checksum = g_checksum_new(G_CHECKSUM_MD5);
  bool ok = hash_stream(file, path, total, checksum, progress, user_data,
                        error);
  fclose(file);
  return ok ? g_strdup(g_checksum_get_string(checksum)) : NULL;
}
