/*
 * train-squares.c: cover a class's polygons with level-0 squares.
 *
 * The old service clustered polygon centroids and cut one square per
 * cluster.  Here the clusters are grown greedily: the first uncovered
 * polygon (in reading order) opens a cluster, every polygon whose bounding
 * box fits in a square together with the cluster's joins it, and the
 * square is centred on the cluster's boxes.  A polygon larger than a
 * square gets a grid of squares over its box.
 *
 * Boxes are cut to the slide first, and the cover never takes more
 * squares than tiling the slide would: many large or overlapping
 * polygons would otherwise ask for a grid each.  Past that bound the
 * cover is the slide's tiling, less the tiles no polygon touches.
 */
#include "train-private.h"

#include <math.h>

typedef struct {
  double x0, y0, x1, y1;
  bool covered;
} Box;

static bool annotation_box(const Annotation *annotation, Box *box)
{
  if (annotation->coords == NULL || annotation->coords->len == 0)
    return false;

  box->x0 = box->y0 = G_MAXDOUBLE;
  box->x1 = box->y1 = -G_MAXDOUBLE;
  for (guint i = 0; i < annotation->coords->len; i++) {
    AnnotPoint *p = &g_array_index(annotation->coords, AnnotPoint, i);
    box->x0 = MIN(box->x0, p->x);
    box->y0 = MIN(box->y0, p->y);
    box->x1 = MAX(box->x1, p->x);
    box->y1 = MAX(box->y1, p->y);
  }
  for (guint i = 0; annotation->parts && i < annotation->parts->len; i++) {
    Box part;
    if (annotation_box(annotation->parts->pdata[i], &part)) {
      box->x0 = MIN(box->x0, part.x0);
      box->y0 = MIN(box->y0, part.y0);
      box->x1 = MAX(box->x1, part.x1);
      box->y1 = MAX(box->y1, part.y1);
    }
  }
  box->covered = false;
  return true;
}

static void add_square(GArray *squares, double cx, double cy, gint64 size)
{
  TrainSquare square = {
    .x = MAX(0, (gint64) floor(cx - size / 2.0)),
    .y = MAX(0, (gint64) floor(cy - size / 2.0)),
    .size = size,
  };

  g_array_append_val(squares, square);
}

static void grid_over(GArray *squares, const Box *box, gint64 size)
{
  for (double y = box->y0; y < box->y1; y += size)
    for (double x = box->x0; x < box->x1; x += size)
      add_square(squares, x + size / 2.0, y + size / 2.0, size);
}

static int compare_box(const void *a, const void *b)
{
  const Box *x = a, *y = b;

  if (x->y0 != y->y0)
    return x->y0 < y->y0 ? -1 : 1;
  return (x->x0 > y->x0) - (x->x0 < y->x0);
}

static int compare_square(const void *a, const void *b)
{
  const TrainSquare *x = a, *y = b;

  if (x->y != y->y)
    return x->y < y->y ? -1 : 1;
  return (x->x > y->x) - (x->x < y->x);
}

/* Grows one cluster from boxes[first]; returns its joint box. */
static Box grow_cluster(Box *boxes, guint n, guint first, gint64 size)
{
  Box joint = boxes[first];

  boxes[first].covered = true;
  for (guint i = first + 1; i < n; i++) {
    Box *b = &boxes[i];
    if (b->covered)
      continue;
    double x0 = MIN(joint.x0, b->x0), y0 = MIN(joint.y0, b->y0);
    double x1 = MAX(joint.x1, b->x1), y1 = MAX(joint.y1, b->y1);
    if (x1 - x0 > size || y1 - y0 > size)
      continue;
    joint = (Box) { x0, y0, x1, y1, false };
    b->covered = true;
  }
  return joint;
}

/* Cuts a box to the slide; false when nothing of it is on the slide. */
static bool box_on_slide(Box *box, gint64 width, gint64 height)
{
  if (box->x1 < 0 || box->y1 < 0 || box->x0 > width || box->y0 > height)
    return false;
  box->x0 = MAX(box->x0, 0);
  box->y0 = MAX(box->y0, 0);
  box->x1 = MIN(box->x1, (double) width);
  box->y1 = MIN(box->y1, (double) height);
  return true;
}

/* The tiles, within [0, n), that [v0, v1] reaches into: a box that
 * ends on a tile's edge does not take the next tile. */
static void tile_range(double v0, double v1, gint64 size, gint64 n,
                       gint64 *first, gint64 *end)
{
  *first = CLAMP((gint64) floor(v0 / size), 0, n - 1);
  *end = CLAMP((gint64) ceil(v1 / size), *first + 1, n);
}

/* The slide's tiling by squares, the tiles that some box touches.  Each
 * box marks its range of tiles in a summed-area difference table, so the
 * cost is one step per box and one per tile, however large the boxes. */
static GArray *tiles_touched(const Box *boxes, guint n, gint64 size,
                             gint64 cols, gint64 rows)
{
  GArray *squares = g_array_new(FALSE, FALSE, sizeof(TrainSquare));
  gint64 stride = cols + 1;
  g_autofree gint64 *table = g_new0(gint64, stride * (rows + 1));

  for (guint i = 0; i < n; i++) {
    gint64 c0, c1, r0, r1;
    tile_range(boxes[i].x0, boxes[i].x1, size, cols, &c0, &c1);
    tile_range(boxes[i].y0, boxes[i].y1, size, rows, &r0, &r1);
    table[r0 * stride + c0]++;
    table[r0 * stride + c1]--;
    table[r1 * stride + c0]--;
    table[r1 * stride + c1]++;
  }
  for (gint64 r = 0; r < rows; r++)
    for (gint64 c = 0; c < cols; c++) {
      gint64 *cell = &table[r * stride + c];
      if (r > 0)
        *cell += table[(r - 1) * stride + c];
      if (c > 0)
        *cell += table[r * stride + c - 1];
      if (r > 0 && c > 0)
        *cell -= table[(r - 1) * stride + c - 1];
      if (*cell > 0) {
        TrainSquare square = { c * size, r * size, size };
        g_array_append_val(squares, square);
      }
    }
  return squares;
}

GArray *train_cover_squares(GPtrArray *annotations, gint64 size,
                            gint64 width, gint64 height)
{
  GArray *squares = g_array_new(FALSE, FALSE, sizeof(TrainSquare));
  g_autoptr(GArray) boxes = g_array_new(FALSE, FALSE, sizeof(Box));
  gint64 cols = MAX(1, (width + size - 1) / size);
  gint64 rows = MAX(1, (height + size - 1) / size);

  for (guint i = 0; i < annotations->len; i++) {
    Box box;
    if (annotation_box(annotations->pdata[i], &box) &&
        box_on_slide(&box, width, height))
      g_array_append_val(boxes, box);
  }
  qsort(boxes->data, boxes->len, sizeof(Box), compare_box);

  Box *b = (Box *) boxes->data;
  for (guint i = 0; i < boxes->len && squares->len <= cols * rows; i++) {
    if (b[i].covered)
      continue;
    if (b[i].x1 - b[i].x0 > size || b[i].y1 - b[i].y0 > size) {
      b[i].covered = true;
      grid_over(squares, &b[i], size);
      continue;
    }
    Box joint = grow_cluster(b, boxes->len, i, size);
    add_square(squares, (joint.x0 + joint.x1) / 2,
               (joint.y0 + joint.y1) / 2, size);
  }
  if (squares->len > cols * rows) {
    g_array_unref(squares);
    squares = tiles_touched(b, boxes->len, size, cols, rows);
  }

  qsort(squares->data, squares->len, sizeof(TrainSquare), compare_square);
  return squares;
}

bool train_group_matches_class(const char *group, const char *class_name)
{
  if (group == NULL || class_name == NULL)
    return false;

  g_autofree char *a = g_ascii_strdown(group, -1);
  g_autofree char *b = g_ascii_strdown(class_name, -1);
  gsize la = strlen(a), lb = strlen(b);

  if (la > 0 && a[la - 1] == 's')
    a[--la] = '\0';
  if (lb > 0 && b[lb - 1] == 's')
    b[--lb] = '\0';
  return strcmp(a, b) == 0;
}
