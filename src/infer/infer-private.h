/*
 * infer-private.h: the pure image steps of region prediction (resizing,
 * padding, stitching, morphology, contours), shared by the pipeline and
 * its unit tests.
 *
 * Images are row-major, tightly packed; RGB images have 3 bytes a pixel.
 * A mask has one byte a pixel, 0 or 1.
 */
#pragma once

#include "annot/annot.h"
#include "nn/nn.h"

#include <gio/gio.h>
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* infer-resize.c */

/* Output size of scaling n pixels by factor: rounded, at least 1. */
int infer_scaled_size(gint64 n, double factor);

/* Bicubic resize of an RGB image as OpenCV's INTER_CUBIC computes it. */
void infer_resize_cubic_rgb(const guint8 *src, int sw, int sh, guint8 *dst,
                            int dw, int dh);

/* Nearest-neighbour resize of a byte map as OpenCV's INTER_NEAREST. */
void infer_resize_nearest_u8(const guint8 *src, int sw, int sh,
                             guint8 *dst, int dw, int dh);

/* Index into 0..n-1 reflected about the edges without repeating them
 * (numpy's 'reflect', OpenCV's BORDER_REFLECT_101), for any i. */
gint64 infer_reflect_index(gint64 i, gint64 n);

/* Copies the window (x, y, w, h) of an RGB image, where the window may
 * reach outside the image: outside pixels are the mirror images.  The
 * result is float32 planar (3 x h x w) in [0, 1], the network's input. */
void infer_window_planar(const guint8 *rgb, int iw, int ih, gint64 x,
                         gint64 y, int w, int h, float *out);

/* infer-morph.c */

/* Morphological opening with a k x k square, iterations times (erode
 * that often, then dilate that often), pixels outside the image never
 * eroding or dilating anything. */
void infer_mask_open(guint8 *mask, int w, int h, int k, int iterations);

/* infer-contour.c */

/* Outer contours of the 8-connected objects of a mask that lie in no
 * other object's hole (OpenCV's RETR_EXTERNAL), each a GArray of
 * AnnotPoint through pixel centres with the points inside straight runs
 * dropped (CHAIN_APPROX_SIMPLE).  Objects are in raster order of their
 * first pixel. */
GPtrArray *infer_mask_contours(const guint8 *mask, int w, int h);

/* Absolute shoelace area of a closed ring. */
double infer_ring_area(const GArray *ring);

/* infer-heatmap.c */

typedef struct {
  int patch_size;       /* the old tiling's tile edge */
  int stride_size;      /* and stride */
  int pad;              /* mirror padding around the region */
  double threshold;     /* P(class) below it counts as 0 */
  bool exact;           /* emulate the old tiling tile by tile */
  int margin;           /* context kept around each big tile */
  int max_tile;         /* edge bound of a big tile's input */
  /* The prediction's cancellable, checked before each network run (a
   * batch of tiles or one big tile); NULL never stops. */
  GCancellable *cancellable;
} InferTiling;

/*
 * The heatmap of one class over a resized region (rw x rh RGB): P(class)
 * where it reaches the threshold, else 0, as the old pipeline's stitched
 * map.  exact: every patch_size tile at stride_size over the padded
 * image, stitched by per-pixel max.  Otherwise big tiles aligned to the
 * network's pooling grid with margin pixels of context on each side.
 * A cancelled tiling->cancellable stops it with G_IO_ERROR_CANCELLED.
 */
bool infer_class_heatmap(NnRunner *runner, const InferTiling *tiling,
                         const guint8 *rgb, int rw, int rh, float *heat,
                         GError **error);
