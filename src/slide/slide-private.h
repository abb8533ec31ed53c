/*
 * slide-private.h: what the files of src/slide share and nobody else needs.
 */
#pragma once

#include "slide/slide.h"

#include <glib.h>
#include <openslide.h>
#include <stdbool.h>
#include <vips/vips.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(openslide_t, openslide_close)
/* libvips 8.14 declares no cleanup function for its image type. */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VipsImage, g_object_unref)

/* Turns OpenSlide's sticky error of a handle into an AAPI_ERROR_SLIDE.
 * Returns true when the handle has no error. */
bool slide_check_openslide(openslide_t *osr, const char *what,
                           GError **error);

/* slide_open() for the cache: id (may be NULL) names the slide in the
 * errors of a missing or unreadable file instead of its path. */
Slide *slide_open_as(const char *path, const char *id, GError **error);

/* Whether the slide's file is still there and readable: an open handle
 * outlives the deletion of its file, but the slide is gone.  Otherwise
 * NOT_FOUND for a missing file, IO for an unreadable one. */
bool slide_file_present(Slide *slide, GError **error);

/* Replaces a failed read's *error by the NOT_FOUND or IO error of the
 * slide's file when that file is now missing or unreadable, which is
 * then the reason the read failed. */
void slide_blame_missing_file(Slide *slide, GError **error);

/* The OpenSlide handle behind a Slide (shared; never closed by callers). */
openslide_t *slide_get_openslide(Slide *slide);

/* False once OpenSlide has put the handle in its error state, after which
 * every read fails: the cache drops such a handle and opens a new one. */
bool slide_is_usable(Slide *slide);

/* Turns n premultiplied ARGB pixels into RGB composited on white. */
void slide_argb_to_rgb(const guint32 *argb, gsize n, guint8 *rgb);

/* libvips' global error text as an AAPI_ERROR_SLIDE, clearing it. */
void slide_set_vips_error(GError **error, const char *what);

/* Encodes an RGB buffer (width*height*3) as JPEG or PNG, scaled to
 * out_width x out_height when that differs. */
GBytes *slide_encode_rgb(const guint8 *rgb, gint64 width, gint64 height,
                         gint64 out_width, gint64 out_height, bool png,
                         int quality, GError **error);

/* Levels of a JPEG-tiled TIFF slide read with libtiff (tiff-read.c);
 * thread safe.  NULL from open when no level can be read that way. */
typedef struct SlideTiff SlideTiff;
SlideTiff *slide_tiff_open(const char *path, const SlideInfo *info);
void slide_tiff_free(SlideTiff *tiff);

/* Whether tiff (may be NULL) reads this OpenSlide level itself. */
bool slide_tiff_has_level(SlideTiff *tiff, gint32 level);

/* The region OpenSlide would read at level-0 (x, y) on a level of that
 * downsample, as RGB with background white; the level must be one that
 * slide_tiff_has_level() accepts. */
bool slide_tiff_read_region(SlideTiff *tiff, gint64 x, gint64 y,
                            gint32 level, double downsample, gint64 width,
                            gint64 height, guint8 *rgb, GError **error);
