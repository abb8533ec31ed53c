/*
 * train-clip.c: a class's polygons clipped to the slide, on GEOS.
 *
 * Squares are chosen and masks drawn from the clipped polygons only, so a
 * polygon drawn far past the slide's edge (a client may post any
 * coordinates) costs no more than one that covers the slide.  A shape
 * whose vertices all lie on the slide is kept as drawn without calling
 * GEOS, which is every shape a viewer draws; the rest go through GEOS's
 * rectangle clip, which works edge by edge and so needs no valid input:
 * a self-intersecting ring comes out as rings that the even-odd fill of
 * train-raster.c reads as it read the original.  Each part of a
 * multi-part shape is clipped on its own for the same reason.
 *
 * Every call has its own GEOS context, so cycles could run in parallel.
 */
#include "train-private.h"

#include "common/aapi-error.h"

#include <geos_c.h>
#include <string.h>

typedef struct {
  GEOSContextHandle_t geos;
  double width, height;
  char *geos_error;      /* the last error GEOS reported */
} ClipContext;

static void on_geos_error(const char *message, void *data)
{
  ClipContext *ctx = data;

  g_free(ctx->geos_error);
  ctx->geos_error = g_strdup(message);
}

/* Where a ring lies against the slide. */
typedef enum {
  RING_INSIDE,
  RING_OUTSIDE,
  RING_CROSSING,
} RingPlace;

static RingPlace ring_place(const ClipContext *ctx, const GArray *ring)
{
  double x0 = G_MAXDOUBLE, y0 = G_MAXDOUBLE;
  double x1 = -G_MAXDOUBLE, y1 = -G_MAXDOUBLE;

  for (guint i = 0; i < ring->len; i++) {
    const AnnotPoint *p = &g_array_index(ring, AnnotPoint, i);
    x0 = MIN(x0, p->x);
    y0 = MIN(y0, p->y);
    x1 = MAX(x1, p->x);
    y1 = MAX(y1, p->y);
  }
  if (x1 <= 0 || y1 <= 0 || x0 >= ctx->width || y0 >= ctx->height)
    return RING_OUTSIDE;
  if (x0 >= 0 && y0 >= 0 && x1 <= ctx->width && y1 <= ctx->height)
    return RING_INSIDE;
  return RING_CROSSING;
}

/* Whether every ring of a shape (parts included) lies on the slide. */
static bool shape_inside(const ClipContext *ctx, const Annotation *shape)
{
  if (ring_place(ctx, shape->coords) != RING_INSIDE)
    return false;
  for (guint i = 0; shape->holes && i < shape->holes->len; i++)
    if (ring_place(ctx, shape->holes->pdata[i]) != RING_INSIDE)
      return false;
  for (guint i = 0; shape->parts && i < shape->parts->len; i++)
    if (!shape_inside(ctx, shape->parts->pdata[i]))
      return false;
  return true;
}

/* A closed GEOS ring of the points (kept open in an Annotation). */
static GEOSGeometry *make_ring(ClipContext *ctx, const GArray *points)
{
  guint n = points->len;
  g_autofree double *buffer = g_new(double, 2 * (n + 1));

  memcpy(buffer, points->data, n * sizeof(AnnotPoint));
  buffer[2 * n] = buffer[0];
  buffer[2 * n + 1] = buffer[1];
  GEOSCoordSequence *seq = GEOSCoordSeq_copyFromBuffer_r(
      ctx->geos, buffer, n + 1, false, false);
  return seq ? GEOSGeom_createLinearRing_r(ctx->geos, seq) : NULL;
}

static GEOSGeometry *make_polygon(ClipContext *ctx, const Annotation *shape)
{
  GEOSGeometry *shell = make_ring(ctx, shape->coords);
  if (shell == NULL)
    return NULL;

  g_autoptr(GPtrArray) holes = g_ptr_array_new();
  for (guint i = 0; shape->holes && i < shape->holes->len; i++) {
    const GArray *hole = shape->holes->pdata[i];
    GEOSGeometry *ring = hole->len >= 3 ? make_ring(ctx, hole) : NULL;
    if (ring)
      g_ptr_array_add(holes, ring);
  }
  return GEOSGeom_createPolygon_r(ctx->geos, shell,
                                  (GEOSGeometry **) holes->pdata,
                                  holes->len);
}

/* The vertices of a GEOS ring, without the repeated closing one. */
static GArray *ring_points(ClipContext *ctx, const GEOSGeometry *ring)
{
  const GEOSCoordSequence *seq = GEOSGeom_getCoordSeq_r(ctx->geos, ring);
  unsigned int n = 0;
  GArray *points = g_array_new(FALSE, FALSE, sizeof(AnnotPoint));

  if (seq == NULL || !GEOSCoordSeq_getSize_r(ctx->geos, seq, &n) || n < 4)
    return points;
  g_array_set_size(points, n);
  if (!GEOSCoordSeq_copyToBuffer_r(ctx->geos, seq, (double *) points->data,
                                   false, false))
    g_array_set_size(points, 0);
  else
    g_array_set_size(points, n - 1);
  return points;
}

/* Adds one clipped polygon to *out: as the annotation itself when it is
 * the first, else as a further part. */
static void add_polygon(ClipContext *ctx, const GEOSGeometry *polygon,
                        const Annotation *original, Annotation **out)
{
  g_autoptr(GArray) shell = ring_points(
      ctx, GEOSGetExteriorRing_r(ctx->geos, polygon));
  if (shell->len < 3)
    return;

  Annotation *shape = annotation_new(original->name, original->type,
                                     original->group, original->color);
  g_array_unref(shape->coords);
  shape->coords = g_steal_pointer(&shell);
  int n_holes = GEOSGetNumInteriorRings_r(ctx->geos, polygon);
  for (int i = 0; i < n_holes; i++) {
    GArray *hole = ring_points(
        ctx, GEOSGetInteriorRingN_r(ctx->geos, polygon, i));
    if (shape->holes == NULL)
      shape->holes = g_ptr_array_new_with_free_func(
          (GDestroyNotify) g_array_unref);
    g_ptr_array_add(shape->holes, hole);
  }

  if (*out == NULL) {
    *out = shape;
    return;
  }
  if ((*out)->parts == NULL)
    (*out)->parts = g_ptr_array_new_with_free_func(
        (GDestroyNotify) annotation_free);
  g_ptr_array_add((*out)->parts, shape);
}

/* Walks a clip result: polygons are kept; lines and points, where a
 * shape only touches the slide's edge, enclose nothing. */
static void take_polygons(ClipContext *ctx, const GEOSGeometry *geom,
                          const Annotation *original, Annotation **out)
{
  switch (GEOSGeomTypeId_r(ctx->geos, geom)) {
  case GEOS_POLYGON:
    if (!GEOSisEmpty_r(ctx->geos, geom))
      add_polygon(ctx, geom, original, out);
    break;
  case GEOS_MULTIPOLYGON:
  case GEOS_GEOMETRYCOLLECTION:
    for (int i = 0; i < GEOSGetNumGeometries_r(ctx->geos, geom); i++)
      take_polygons(ctx, GEOSGetGeometryN_r(ctx->geos, geom, i), original,
                    out);
    break;
  default:
    break;
  }
}

/* Clips one shape (the annotation or one of its parts) into *out; false
 * when GEOS fails on it. */
static bool clip_shape(ClipContext *ctx, const Annotation *shape,
                       const Annotation *original, Annotation **out)
{
  if (shape->coords->len < 3 ||
      ring_place(ctx, shape->coords) == RING_OUTSIDE)
    return true;

  GEOSGeometry *polygon = make_polygon(ctx, shape);
  if (polygon == NULL)
    return false;
  GEOSGeometry *clipped = GEOSClipByRect_r(ctx->geos, polygon, 0, 0,
                                           ctx->width, ctx->height);
  GEOSGeom_destroy_r(ctx->geos, polygon);
  if (clipped == NULL)
    return false;
  take_polygons(ctx, clipped, original, out);
  GEOSGeom_destroy_r(ctx->geos, clipped);
  return true;
}

/* The clipped annotation, or NULL when nothing of it is on the slide. */
static Annotation *clip_annotation(ClipContext *ctx,
                                   const Annotation *annotation)
{
  if (shape_inside(ctx, annotation))
    return annotation_copy(annotation);

  Annotation *out = NULL;
  bool ok = clip_shape(ctx, annotation, annotation, &out);
  for (guint i = 0; ok && annotation->parts && i < annotation->parts->len;
       i++)
    ok = clip_shape(ctx, annotation->parts->pdata[i], annotation, &out);
  if (ok)
    return out;

  /* One odd polygon should not stop a class's training. */
  g_warning("train: annotation \"%s\" left out: GEOS cannot clip it to "
            "the slide (%s)", annotation->name ? annotation->name : "",
            ctx->geos_error ? ctx->geos_error : "unknown error");
  annotation_free(out);
  return NULL;
}

GPtrArray *train_clip_annotations(GPtrArray *annotations, double width,
                                  double height, const gint *cancel,
                                  GError **error)
{
  g_autoptr(GPtrArray) clipped = g_ptr_array_new_with_free_func(
      (GDestroyNotify) annotation_free);
  ClipContext ctx = { .geos = GEOS_init_r(), .width = width,
                      .height = height };
  bool ok = true;

  GEOSContext_setErrorMessageHandler_r(ctx.geos, on_geos_error, &ctx);
  for (guint i = 0; i < annotations->len; i++) {
    ok = train_check_cancel(cancel, error);
    if (!ok)
      break;
    Annotation *annotation = clip_annotation(&ctx, annotations->pdata[i]);
    if (annotation)
      g_ptr_array_add(clipped, annotation);
  }
  g_free(ctx.geos_error);
  GEOS_finish_r(ctx.geos);
  return ok ? g_steal_pointer(&clipped) : NULL;
}
