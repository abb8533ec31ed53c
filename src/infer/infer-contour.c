/*
 * infer-contour.c: outer contours of a binary mask.
 *
 * The old service traced contours with OpenCV (outer borders only, runs
 * compressed).  No C library we link traces raster contours: libvips has
 * none, GEOS works on vector geometry, and OpenCV is C++ and not a
 * dependency.  So the border following of Suzuki and Abe (1985) is written
 * here: objects are 8-connected, background 4-connected, and an object
 * counts when it touches the background outside every object, which is
 * what outer-only retrieval keeps.
 */
#include "infer/infer-private.h"

#include <math.h>

/* Pixel states in the bordered work image. */
enum { BG = 0, FG = 1, OUTSIDE = 2, SEEN = 3 };

/* Neighbours clockwise on screen (y grows down), starting east. */
static const int dir_x[8] = { 1, 1, 0, -1, -1, -1, 0, 1 };
static const int dir_y[8] = { 0, 1, 1, 1, 0, -1, -1, -1 };

typedef struct {
  guint8 *pix;    /* (w + 2) x (h + 2), a one-pixel background frame */
  int stride;
  int height;
  GArray *stack;  /* gsize indices for the flood fills */
} Work;

static void work_init(Work *work, const guint8 *mask, int w, int h)
{
  work->stride = w + 2;
  work->height = h + 2;
  work->pix = g_new0(guint8, (gsize) work->stride * work->height);
  work->stack = g_array_new(FALSE, FALSE, sizeof(gsize));
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      work->pix[(gsize) (y + 1) * work->stride + x + 1] =
          mask[(gsize) y * w + x] ? FG : BG;
}

static void work_clear(Work *work)
{
  g_free(work->pix);
  g_array_unref(work->stack);
}

/* Marks the background reachable from the frame (4-connected). */
static void flood_outside(Work *work)
{
  static const int dx[4] = { 1, -1, 0, 0 }, dy[4] = { 0, 0, 1, -1 };
  gsize start = 0;

  work->pix[0] = OUTSIDE;
  g_array_append_val(work->stack, start);
  while (work->stack->len > 0) {
    gsize i = g_array_index(work->stack, gsize, work->stack->len - 1);
    int x = (int) (i % work->stride), y = (int) (i / work->stride);

    g_array_set_size(work->stack, work->stack->len - 1);
    for (int k = 0; k < 4; k++) {
      int nx = x + dx[k], ny = y + dy[k];
      gsize n = (gsize) ny * work->stride + nx;

      if (nx < 0 || ny < 0 || nx >= work->stride || ny >= work->height ||
          work->pix[n] != BG)
        continue;
      work->pix[n] = OUTSIDE;
      g_array_append_val(work->stack, n);
    }
  }
}

/* Whether a pixel has a 4-neighbour outside every object. */
static bool touches_outside(const Work *work, gsize i)
{
  return work->pix[i - 1] == OUTSIDE || work->pix[i + 1] == OUTSIDE ||
         work->pix[i - work->stride] == OUTSIDE ||
         work->pix[i + work->stride] == OUTSIDE;
}

/* Marks the 8-connected object at start as seen; true when it lies
 * outside every other object. */
static bool flood_object(Work *work, gsize start)
{
  bool outer = false;

  work->pix[start] = SEEN;
  g_array_append_val(work->stack, start);
  while (work->stack->len > 0) {
    gsize i = g_array_index(work->stack, gsize, work->stack->len - 1);

    g_array_set_size(work->stack, work->stack->len - 1);
    outer = outer || touches_outside(work, i);
    for (int k = 0; k < 8; k++) {
      gsize n = i + dir_y[k] * work->stride + dir_x[k];

      if (work->pix[n] != FG)
        continue;
      work->pix[n] = SEEN;
      g_array_append_val(work->stack, n);
    }
  }
  return outer;
}

static bool is_object(const Work *work, int x, int y, int d)
{
  guint8 p = work->pix[(gsize) (y + dir_y[d]) * work->stride + x + dir_x[d]];

  return p == FG || p == SEEN;
}

/* Appends a point (frame removed) unless it continues a straight run. */
static void add_point(GArray *ring, GArray *dirs, int x, int y, int d)
{
  AnnotPoint point = { x - 1, y - 1 };

  g_array_append_val(ring, point);
  g_array_append_val(dirs, d);
}

/* Drops the points whose arrival and departure directions agree. */
static GArray *compress_runs(GArray *ring, GArray *dirs)
{
  GArray *out = g_array_new(FALSE, FALSE, sizeof(AnnotPoint));
  guint n = ring->len;

  for (guint i = 0; i < n; i++) {
    int arrive = g_array_index(dirs, int, (i + n - 1) % n);

    if (n == 1 || g_array_index(dirs, int, i) != arrive)
      g_array_append_val(out, g_array_index(ring, AnnotPoint, i));
  }
  if (out->len == 0)
    g_array_append_val(out, g_array_index(ring, AnnotPoint, 0));
  return out;
}

/* Follows the outer border from its first pixel in raster order, whose
 * west neighbour is background. */
static GArray *follow_border(const Work *work, int x0, int y0)
{
  g_autoptr(GArray) ring = g_array_new(FALSE, FALSE, sizeof(AnnotPoint));
  g_autoptr(GArray) dirs = g_array_new(FALSE, FALSE, sizeof(int));
  int first = -1;

  /* The last border pixel: the first object pixel clockwise from west. */
  for (int k = 0; k < 8 && first < 0; k++)
    if (is_object(work, x0, y0, (4 + k) & 7))
      first = (4 + k) & 7;
  if (first < 0) {
    add_point(ring, dirs, x0, y0, 0);
    return compress_runs(ring, dirs);
  }

  int x1 = x0 + dir_x[first], y1 = y0 + dir_y[first];
  int x = x0, y = y0, back = first;

  /* Turn counter-clockwise from where we came to the next pixel. */
  for (;;) {
    int d = back;

    for (int k = 1; k <= 8; k++) {
      d = (back - k) & 7;
      if (is_object(work, x, y, d))
        break;
    }
    add_point(ring, dirs, x, y, d);
    if (x + dir_x[d] == x0 && y + dir_y[d] == y0 && x == x1 && y == y1)
      break;
    x += dir_x[d];
    y += dir_y[d];
    back = (d + 4) & 7;
  }
  return compress_runs(ring, dirs);
}

GPtrArray *infer_mask_contours(const guint8 *mask, int w, int h)
{
  GPtrArray *rings = g_ptr_array_new_with_free_func(
      (GDestroyNotify) g_array_unref);
  Work work;

  work_init(&work, mask, w, h);
  flood_outside(&work);
  for (int y = 1; y <= h; y++) {
    for (int x = 1; x <= w; x++) {
      gsize i = (gsize) y * work.stride + x;

      if (work.pix[i] == FG && flood_object(&work, i))
        g_ptr_array_add(rings, follow_border(&work, x, y));
    }
  }
  work_clear(&work);
  return rings;
}

double infer_ring_area(const GArray *ring)
{
  double twice = 0;

  for (guint i = 0; i < ring->len; i++) {
    const AnnotPoint *a = &g_array_index(ring, AnnotPoint, i);
    const AnnotPoint *b = &g_array_index(ring, AnnotPoint,
                                         (i + 1) % ring->len);

    twice += a->x * b->y - b->x * a->y;
  }
  return fabs(twice) / 2;
}
