/*
 * train-squares.c: cover a class's polygons with level-0 squares.
 *
 * The old service clustered polygon centroids and cut one square per
 * cluster.  Here the clusters are grown greedily: the first uncovered
 * polygon (in reading order) opens a cluster, every polygon whose bounding
 * box fits in a square together with the cluster's joins it, and the
 * square is centred on the cluster's boxes.  A polygon larger than a
 * square gets a grid of squares over its box.
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

GArray *train_cover_squares(GPtrArray *annotations, gint64 size)
{
  GArray *squares = g_array_new(FALSE, FALSE, sizeof(TrainSquare));
  g_autoptr(GArray) boxes = g_array_new(FALSE, FALSE, sizeof(Box));

  for (guint i = 0; i < annotations->len; i++) {
    Box box;
    if (annotation_box(annotations->pdata[i], &box))
      g_array_append_val(boxes, box);
  }
  qsort(boxes->data, boxes->len, sizeof(Box), compare_box);

  Box *b = (Box *) boxes->data;
  for (guint i = 0; i < boxes->len; i++) {
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
