/*
 * slide.h: whole-slide images through OpenSlide, cached open handles,
 * MD5 ids, registration of a slide folder, region reads, Deep Zoom tiles,
 * and the demo slide made at first run.
 *
 * A SlideCache is thread safe.  Open slides are kept (bounded, least
 * recently used out) and shared by reference; OpenSlide handles themselves
 * are safe for concurrent reads.
 */
#pragma once

#include "common/config.h"
#include "store/store.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct SlideCache SlideCache;
typedef struct Slide Slide;

/* What the API reports about a slide. */
typedef struct {
  const char *vendor;         /* OpenSlide's vendor, or "generic-tiff" */
  gint64 width, height;       /* level 0 */
  gint32 level_count;
  const gint64 *level_width;  /* level_count entries */
  const gint64 *level_height;
  const double *level_downsample;
  double mpp_x, mpp_y;        /* microns per pixel, NAN when unknown */
  /* OpenSlide bounds: where the content lies in level-0 pixels; the whole
   * slide when the format has none. */
  gint64 bounds_x, bounds_y, bounds_width, bounds_height;
  const char *const *associated_names; /* NULL-terminated: label, macro... */
} SlideInfo;

SlideCache *slide_cache_new(AapiStore *store, guint capacity);
void slide_cache_free(SlideCache *cache);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SlideCache, slide_cache_free)

/* Looks the slide id up in the store and opens (or reuses) it.  Unknown
 * id, or a slide whose file is missing (even with a cached handle that
 * could still read it): AAPI_ERROR_NOT_FOUND, the message naming the id
 * and the file's base name only.  The result is a new reference. */
Slide *slide_cache_get(SlideCache *cache, const char *slide_id,
                       GError **error);

/* A missing file is AAPI_ERROR_NOT_FOUND ("<path>: no such file"), an
 * unreadable one AAPI_ERROR_IO, one OpenSlide cannot read
 * AAPI_ERROR_SLIDE. */
Slide *slide_open(const char *path, GError **error);
Slide *slide_ref(Slide *slide);
void slide_unref(Slide *slide);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Slide, slide_unref)

const SlideInfo *slide_get_info(Slide *slide);
const char *slide_get_path(Slide *slide);

/* Reads a level-0 region (any rectangle; outside the slide is background)
 * as premultiplied ARGB from OpenSlide turned into RGB, 3 bytes a pixel,
 * with transparent pixels composited on white.  A read that fails because
 * the file has been deleted since the open is AAPI_ERROR_NOT_FOUND. */
bool slide_read_region_rgb(Slide *slide, gint64 x, gint64 y, gint32 level,
                           gint64 width, gint64 height, guint8 *rgb,
                           GError **error);

/* Levels of JPEG-tiled TIFF slides (Aperio, generic tiled TIFF) are read
 * with libtiff rather than OpenSlide unless AAPI_TIFF_FAST_READ=0; the
 * pixels agree up to JPEG decoder rounding.  These switch that off for one
 * slide (to compare) and say whether a level is read that way. */
void slide_set_fast_read(Slide *slide, bool enabled);
bool slide_fast_read_level(Slide *slide, gint32 level);

/* Lowercase hex MD5 of a file's bytes, streamed.  progress may be NULL. */
typedef void (*SlideProgressFunc)(const char *path, guint64 done,
                                  guint64 total, gpointer user_data);
char *slide_file_md5(const char *path, SlideProgressFunc progress,
                     gpointer user_data, GError **error);

/* Registers every slide OpenSlide can open in dir: id, Slides row, the
 * initial annotation copied to <data>/annotations/<id>/.  Unreadable files
 * are reported (g_warning) and skipped.  Idempotent.  Counts may be NULL. */
bool slide_register_dir(const AapiConfig *config, AapiStore *store,
                        const char *dir, guint *n_registered,
                        guint *n_skipped, GError **error);

/* What registration did with one file. */
typedef enum {
  SLIDE_REGISTER_NEW,        /* a new Slides row */
  SLIDE_REGISTER_UPDATED,    /* known id, name or path changed */
  SLIDE_REGISTER_UNCHANGED,  /* already registered as it is */
  SLIDE_REGISTER_DUPLICATE,  /* same bytes as a file seen before */
  SLIDE_REGISTER_SKIPPED,    /* not readable by OpenSlide: detail says why */
} SlideRegisterOutcome;

typedef struct {
  guint n_new, n_updated, n_unchanged, n_duplicate, n_skipped;
  guint n_annotations;       /* initial annotations copied this run */
} SlideRegisterSummary;

/* Called once per candidate file; slide_id is NULL when skipped. */
typedef void (*SlideRegisterFunc)(const char *path,
                                  SlideRegisterOutcome outcome,
                                  const char *slide_id, const char *detail,
                                  gpointer user_data);

typedef struct {
  SlideRegisterFunc file_done;     /* may be NULL: skips go to g_warning */
  SlideProgressFunc md5_progress;  /* may be NULL */
  gpointer user_data;
} SlideRegisterCallbacks;

/* The same with a report per file.  Fails only when dir cannot be read or
 * the store fails; unreadable slides are counted in summary->n_skipped. */
bool slide_register_dir_full(const AapiConfig *config, AapiStore *store,
                             const char *dir,
                             const SlideRegisterCallbacks *callbacks,
                             SlideRegisterSummary *summary, GError **error);

/* Registers one file; false with an error for an unreadable slide
 * (AAPI_ERROR_SLIDE) or a store failure. */
bool slide_register_file(const AapiConfig *config, AapiStore *store,
                         const char *path,
                         const SlideRegisterCallbacks *callbacks,
                         SlideRegisterSummary *summary, GError **error);

/* Whether a file name looks like a slide (by extension), for reports. */
bool slide_name_is_slide_like(const char *name);

/* Makes a small synthetic slide (libvips, pyramidal TIFF) and an ASAP XML
 * annotation next to it in dir, for a first run with no slides. */
bool slide_make_demo(const char *dir, char **slide_path_out, GError **error);

/* Initialises libvips once per process (idempotent, thread safe) and sets
 * it up for a server: no operation cache, one worker per operation, since
 * the callers bring their own threads.  Every slide function that uses
 * libvips calls it; serve may call it first to fail early. */
bool slide_init_libs(GError **error);
