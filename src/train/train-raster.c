/*
 * train-raster.c: polygons to masks.
 *
 * None of the project's libraries fills a polygon into a byte mask (libvips
 * draws lines, circles and floods; GEOS works on vectors), so this is a
 * plain even-odd scanline fill sampled at pixel centres.
 */
#include "train-private.h"

#include <math.h>

typedef struct {
  double x0, y0, x1, y1;
} Edge;

static void add_ring(GArray *edges, GArray *ring, double ox, double oy,
                     double scale)
{
  guint n = ring->len;

  if (n < 3)
    return;
  for (guint i = 0; i < n; i++) {
    AnnotPoint *a = &g_array_index(ring, AnnotPoint, i);
    AnnotPoint *b = &g_array_index(ring, AnnotPoint, (i + 1) % n);
    Edge e = { (a->x - ox) * scale, (a->y - oy) * scale,
               (b->x - ox) * scale, (b->y - oy) * scale };
    if (e.y0 != e.y1)
      g_array_append_val(edges, e);
  }
}

static void collect_edges(const Annotation *annotation, GArray *edges,
                          double ox, double oy, double scale)
{
  add_ring(edges, annotation->coords, ox, oy, scale);
  for (guint i = 0; annotation->holes && i < annotation->holes->len; i++)
    add_ring(edges, annotation->holes->pdata[i], ox, oy, scale);
  for (guint i = 0; annotation->parts && i < annotation->parts->len; i++)
    collect_edges(annotation->parts->pdata[i], edges, ox, oy, scale);
}

static int compare_double(const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

/* Fills the spans between pairs of crossings of one scanline. */
static void fill_row(GArray *edges, double cy, guint8 *row, int w,
                     GArray *xs)
{
  g_array_set_size(xs, 0);
  for (guint i = 0; i < edges->len; i++) {
    Edge *e = &g_array_index(edges, Edge, i);
    double lo = MIN(e->y0, e->y1), hi = MAX(e->y0, e->y1);
    if (cy < lo || cy >= hi)
      continue;
    double x = e->x0 + (cy - e->y0) * (e->x1 - e->x0) / (e->y1 - e->y0);
    g_array_append_val(xs, x);
  }
  g_array_sort(xs, compare_double);

  for (guint i = 0; i + 1 < xs->len; i += 2) {
    double a = g_array_index(xs, double, i);
    double b = g_array_index(xs, double, i + 1);
    int from = (int) MAX(0.0, ceil(a - 0.5));
    int to = (int) MIN((double) w, ceil(b - 0.5));
    for (int x = from; x < to; x++)
      row[x] = 1;
  }
}

void train_raster_annotation(const Annotation *annotation, double x0,
                             double y0, double scale, guint8 *mask, int w,
                             int h)
{
  g_autoptr(GArray) edges = g_array_new(FALSE, FALSE, sizeof(Edge));
  g_autoptr(GArray) xs = g_array_new(FALSE, FALSE, sizeof(double));

  collect_edges(annotation, edges, x0, y0, scale);
  if (edges->len == 0)
    return;

  /* Only the rows the polygon spans. */
  double top = G_MAXDOUBLE, bottom = -G_MAXDOUBLE;
  for (guint i = 0; i < edges->len; i++) {
    Edge *e = &g_array_index(edges, Edge, i);
    top = MIN(top, MIN(e->y0, e->y1));
    bottom = MAX(bottom, MAX(e->y0, e->y1));
  }
  int first = (int) MAX(0.0, floor(top));
  int last = (int) MIN((double) h - 1, ceil(bottom));

  for (int y = first; y <= last; y++)
    fill_row(edges, y + 0.5, mask + (gsize) y * w, w, xs);
}
