/*
 * annot-merge.c: the region merge of the old service, on GEOS.
 *
 * Each annotation is tested against the box: first by its bounding box,
 * which settles most of them at no cost, then with GEOS (a prepared box,
 * so that the test is fast for polygons of tens of thousands of vertices).
 * Areal types are polygons (holes and parts included); points and lines
 * are what they are.  Rings with fewer than three vertices are lines or
 * points.  A self-intersecting polygon is tested as drawn, in its valid
 * form (GEOSMakeValid) if GEOS fails on it, and as its outline when even
 * that fails; the output always keeps the coordinates as drawn.
 *
 * Every call has its own GEOS context, so merges run in parallel threads.
 */
#include "annot/annot.h"
#include "common/aapi-error.h"

#include <geos_c.h>
#include <math.h>
#include <string.h>

typedef struct {
  GEOSContextHandle_t geos;
  const GEOSPreparedGeometry *box;
  AnnotBox bounds;
  char *geos_error;      /* the last error GEOS reported */
} MergeContext;

typedef enum {
  TEST_NO,
  TEST_YES,
  TEST_FAILED,
} TestResult;

static void on_geos_error(const char *message, void *data)
{
  MergeContext *ctx = data;

  g_free(ctx->geos_error);
  ctx->geos_error = g_strdup(message);
}

/* Envelopes. */

typedef struct {
  double min_x, min_y, max_x, max_y;
} Envelope;

static void envelope_add(Envelope *env, const GArray *points)
{
  for (guint i = 0; points && i < points->len; i++) {
    const AnnotPoint *p = &g_array_index(points, AnnotPoint, i);
    env->min_x = MIN(env->min_x, p->x);
    env->min_y = MIN(env->min_y, p->y);
    env->max_x = MAX(env->max_x, p->x);
    env->max_y = MAX(env->max_y, p->y);
  }
}

/* Holes lie inside the outer ring, so the rings and parts suffice. */
static Envelope annotation_envelope(const Annotation *annotation)
{
  Envelope env = { INFINITY, INFINITY, -INFINITY, -INFINITY };

  envelope_add(&env, annotation->coords);
  for (guint i = 0; annotation->parts && i < annotation->parts->len; i++)
    envelope_add(&env, ((Annotation *) annotation->parts->pdata[i])->coords);
  return env;
}

/* Decides from envelopes alone when it can: disjoint envelopes never
 * intersect, and a shape whose envelope lies in the box (boundary
 * included) has all its vertices in it. */
static TestResult envelope_test(const AnnotBox *box, const Envelope *env)
{
  double x1 = box->x + box->width, y1 = box->y + box->height;

  if (env->min_x > env->max_x)
    return TEST_NO;
  if (env->max_x < box->x || env->min_x > x1 || env->max_y < box->y ||
      env->min_y > y1)
    return TEST_NO;
  if (env->min_x >= box->x && env->max_x <= x1 && env->min_y >= box->y &&
      env->max_y <= y1)
    return TEST_YES;
  return TEST_FAILED;
}

/* Geometries. */

/* A sequence of points, closed when ring is set. */
static GEOSCoordSequence *sequence(MergeContext *ctx, const GArray *points,
                                   bool ring)
{
  guint n = points->len;

  if (!ring)
    return GEOSCoordSeq_copyFromBuffer_r(ctx->geos,
                                         (const double *) points->data, n,
                                         false, false);

  g_autofree double *buffer = g_new(double, 2 * (n + 1));
  memcpy(buffer, points->data, n * sizeof(AnnotPoint));
  buffer[2 * n] = buffer[0];
  buffer[2 * n + 1] = buffer[1];
  return GEOSCoordSeq_copyFromBuffer_r(ctx->geos, buffer, n + 1, false,
                                       false);
}

static guint distinct_points(const GArray *points)
{
  guint n = points->len > 0 ? 1 : 0;

  for (guint i = 1; i < points->len && n < 3; i++) {
    const AnnotPoint *p = &g_array_index(points, AnnotPoint, i);
    const AnnotPoint *q = &g_array_index(points, AnnotPoint, i - 1);
    if (p->x != q->x || p->y != q->y)
      n++;
  }
  return n;
}

/* A line through the points, or the point itself when there is one. */
static GEOSGeometry *make_line(MergeContext *ctx, const GArray *points)
{
  if (distinct_points(points) < 2)
    return GEOSGeom_createPointFromXY_r(
        ctx->geos, g_array_index(points, AnnotPoint, 0).x,
        g_array_index(points, AnnotPoint, 0).y);
  return GEOSGeom_createLineString_r(ctx->geos,
                                     sequence(ctx, points, false));
}

static GEOSGeometry *make_points(MergeContext *ctx, const GArray *points)
{
  g_autofree GEOSGeometry **geoms = g_new(GEOSGeometry *, points->len);

  for (guint i = 0; i < points->len; i++) {
    const AnnotPoint *p = &g_array_index(points, AnnotPoint, i);
    geoms[i] = GEOSGeom_createPointFromXY_r(ctx->geos, p->x, p->y);
  }
  return GEOSGeom_createCollection_r(ctx->geos, GEOS_MULTIPOINT, geoms,
                                     points->len);
}

/* One polygon with its holes; a degenerate outer ring is a line. */
static GEOSGeometry *make_polygon(MergeContext *ctx, const Annotation *shape)
{
  if (distinct_points(shape->coords) < 3)
    return make_line(ctx, shape->coords);

  GEOSGeometry *shell = GEOSGeom_createLinearRing_r(
      ctx->geos, sequence(ctx, shape->coords, true));
  if (shell == NULL)
    return NULL;
  g_autoptr(GPtrArray) holes = g_ptr_array_new();
  for (guint i = 0; shape->holes && i < shape->holes->len; i++) {
    const GArray *hole = shape->holes->pdata[i];
    if (distinct_points(hole) >= 3)
      g_ptr_array_add(holes, GEOSGeom_createLinearRing_r(
          ctx->geos, sequence(ctx, hole, true)));
  }
  return GEOSGeom_createPolygon_r(ctx->geos, shell,
                                  (GEOSGeometry **) holes->pdata, holes->len);
}

/* A shape as its type says: parts take the type of their annotation. */
static GEOSGeometry *make_geometry(MergeContext *ctx, AnnotType type,
                                   const Annotation *shape)
{
  switch (type) {
  case ANNOT_DOT:
  case ANNOT_POINTSET:
    return make_points(ctx, shape->coords);
  case ANNOT_MEASUREMENT:
    return make_line(ctx, shape->coords);
  default:
    return make_polygon(ctx, shape);
  }
}

/* The tests. */

static TestResult prepared_test(MergeContext *ctx, const GEOSGeometry *geom)
{
  char ret = GEOSPreparedIntersects_r(ctx->geos, ctx->box, geom);

  return ret == 1 ? TEST_YES : ret == 0 ? TEST_NO : TEST_FAILED;
}

/* The outline of every ring, for geometry GEOS cannot repair. */
/* The outline of a shape, closed when it is a ring, for geometry GEOS
 * cannot repair. */
static TestResult outline_test(MergeContext *ctx, const Annotation *shape)
{
  TestResult result = TEST_NO;
  GEOSGeometry *line =
      distinct_points(shape->coords) >= 3
          ? GEOSGeom_createLineString_r(ctx->geos,
                                        sequence(ctx, shape->coords, true))
          : make_line(ctx, shape->coords);

  if (line) {
    result = prepared_test(ctx, line);
    GEOSGeom_destroy_r(ctx->geos, line);
  }
  return result;
}

/* The prepared test needs no valid geometry: it looks for crossing edges
 * and locates points in the rings by counting crossings, which reads a
 * self-intersecting ring as drawn (even-odd).  Checking validity first
 * would cost a full noding of rings of tens of thousands of vertices.
 * Only when GEOS gives up is the valid form (GEOSMakeValid) tested. */
static TestResult geometry_test(MergeContext *ctx, GEOSGeometry *geom)
{
  TestResult result = prepared_test(ctx, geom);
  if (result != TEST_FAILED)
    return result;

  GEOSGeometry *valid = GEOSMakeValid_r(ctx->geos, geom);
  if (valid == NULL)
    return TEST_FAILED;
  result = prepared_test(ctx, valid);
  GEOSGeom_destroy_r(ctx->geos, valid);
  return result;
}

/* One shape (the annotation itself or one of its parts) against the box:
 * envelope first, then GEOS, then the outline when GEOS gives up. */
static TestResult shape_test(MergeContext *ctx, const Annotation *annotation,
                             const Annotation *shape)
{
  Envelope env = { INFINITY, INFINITY, -INFINITY, -INFINITY };
  envelope_add(&env, shape->coords);
  TestResult result = envelope_test(&ctx->bounds, &env);
  if (result != TEST_FAILED)
    return result;

  GEOSGeometry *geom = make_geometry(ctx, annotation->type, shape);
  if (geom) {
    result = geometry_test(ctx, geom);
    GEOSGeom_destroy_r(ctx->geos, geom);
  }
  if (result == TEST_FAILED) {
    g_warning("annotation \"%s\": GEOS failed (%s); testing its outline",
              annotation->name ? annotation->name : "",
              ctx->geos_error ? ctx->geos_error : "unknown error");
    result = outline_test(ctx, shape);
  }
  return result;
}

/* The parts of a multi-part shape are tested one by one (they may be
 * degenerate, and GEOS predicates do not take mixed collections). */
static bool intersects_box(MergeContext *ctx, const Annotation *annotation)
{
  Envelope env = annotation_envelope(annotation);

  if (envelope_test(&ctx->bounds, &env) == TEST_NO)
    return false;
  if (shape_test(ctx, annotation, annotation) == TEST_YES)
    return true;
  for (guint i = 0; annotation->parts && i < annotation->parts->len; i++) {
    const Annotation *part = annotation->parts->pdata[i];
    if (part->coords && part->coords->len > 0 &&
        shape_test(ctx, annotation, part) == TEST_YES)
      return true;
  }
  return false;
}

static gint group_index(const AnnotSet *set, const char *name)
{
  for (guint i = 0; i < set->groups->len; i++)
    if (g_strcmp0(((AnnotGroup *) set->groups->pdata[i])->name, name) == 0)
      return (gint) i;
  return -1;
}

/* The old groups in their order, then the posted ones that are new; a
 * posted group of an old name replaces it in place, so that a colour or
 * parent set in the post is what the new version says. */
static void merge_groups(AnnotSet *merged, const AnnotSet *old,
                         const AnnotSet *posted)
{
  for (guint i = 0; i < old->groups->len; i++)
    g_ptr_array_add(merged->groups, annot_group_copy(old->groups->pdata[i]));
  for (guint i = 0; i < posted->groups->len; i++) {
    const AnnotGroup *group = posted->groups->pdata[i];
    gint at = group_index(merged, group->name);

    if (at < 0) {
      g_ptr_array_add(merged->groups, annot_group_copy(group));
    } else {
      annot_group_free(merged->groups->pdata[at]);
      merged->groups->pdata[at] = annot_group_copy(group);
    }
  }
}

/* Copies the annotations of from whose test against the box is keep. */
static void take_annotations(MergeContext *ctx, AnnotSet *merged,
                             const AnnotSet *from, bool keep)
{
  for (guint i = 0; i < from->annotations->len; i++) {
    const Annotation *annotation = from->annotations->pdata[i];
    if (intersects_box(ctx, annotation) == keep)
      g_ptr_array_add(merged->annotations, annotation_copy(annotation));
  }
}

static GEOSGeometry *make_box(MergeContext *ctx, const AnnotBox *box)
{
  return GEOSGeom_createRectangle_r(ctx->geos, box->x, box->y,
                                    box->x + box->width,
                                    box->y + box->height);
}

AnnotSet *annot_merge_region(const AnnotSet *old, const AnnotSet *posted,
                             const AnnotBox *box, GError **error)
{
  if (!isfinite(box->x) || !isfinite(box->y) || !isfinite(box->width) ||
      !isfinite(box->height) || box->width < 0 || box->height < 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "merge region is not a box");
    return NULL;
  }

  MergeContext ctx = { .geos = GEOS_init_r(), .bounds = *box };
  GEOSContext_setErrorMessageHandler_r(ctx.geos, on_geos_error, &ctx);
  GEOSGeometry *box_geom = make_box(&ctx, box);
  if (box_geom)
    ctx.box = GEOSPrepare_r(ctx.geos, box_geom);

  AnnotSet *merged = NULL;
  if (ctx.box) {
    merged = annot_set_new();
    take_annotations(&ctx, merged, old, false);
    take_annotations(&ctx, merged, posted, true);
    merge_groups(merged, old, posted);
  } else {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INTERNAL,
                "GEOS cannot make the merge box: %s",
                ctx.geos_error ? ctx.geos_error : "unknown error");
  }

  if (ctx.box)
    GEOSPreparedGeom_destroy_r(ctx.geos, ctx.box);
  if (box_geom)
    GEOSGeom_destroy_r(ctx.geos, box_geom);
  g_free(ctx.geos_error);
  GEOS_finish_r(ctx.geos);
  return merged;
}
