/* annot-model.c: annotation sets, annotations and groups. */
#include "annot/annot-private.h"
#include "common/aapi-error.h"

#include <string.h>

static const char *const type_names[] = {
  [ANNOT_POLYGON] = "Polygon",
  [ANNOT_RECTANGLE] = "Rectangle",
  [ANNOT_SPLINE] = "Spline",
  [ANNOT_POINTSET] = "PointSet",
  [ANNOT_DOT] = "Dot",
  [ANNOT_MEASUREMENT] = "Measurement",
  [ANNOT_OTHER] = "Polygon",
};

const char *annot_type_name(AnnotType type)
{
  if ((guint) type >= G_N_ELEMENTS(type_names))
    return "Polygon";
  return type_names[type];
}

AnnotType annot_type_from_name(const char *name)
{
  if (name == NULL)
    return ANNOT_POLYGON;
  for (guint i = 0; i < ANNOT_OTHER; i++)
    if (g_ascii_strcasecmp(name, type_names[i]) == 0)
      return (AnnotType) i;
  return ANNOT_OTHER;
}

static GHashTable *extra_new(void)
{
  return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

static GHashTable *extra_copy(GHashTable *extra)
{
  if (extra == NULL)
    return NULL;

  GHashTable *copy = extra_new();
  GHashTableIter iter;
  gpointer key, value;
  g_hash_table_iter_init(&iter, extra);
  while (g_hash_table_iter_next(&iter, &key, &value))
    g_hash_table_insert(copy, g_strdup(key), g_strdup(value));
  return copy;
}

static GArray *points_new(void)
{
  return g_array_new(FALSE, FALSE, sizeof(AnnotPoint));
}

static GArray *points_copy(const GArray *points)
{
  GArray *copy = g_array_sized_new(FALSE, FALSE, sizeof(AnnotPoint),
                                   points->len);
  g_array_append_vals(copy, points->data, points->len);
  return copy;
}

static GPtrArray *rings_copy(const GPtrArray *rings)
{
  if (rings == NULL)
    return NULL;

  GPtrArray *copy = g_ptr_array_new_full(rings->len,
                                         (GDestroyNotify) g_array_unref);
  for (guint i = 0; i < rings->len; i++)
    g_ptr_array_add(copy, points_copy(rings->pdata[i]));
  return copy;
}

Annotation *annotation_new(const char *name, AnnotType type,
                           const char *group, const char *color)
{
  Annotation *annotation = g_new0(Annotation, 1);

  annotation->name = g_strdup(name);
  annotation->type = type;
  annotation->type_name = g_strdup(annot_type_name(type));
  annotation->group = g_strdup(group);
  annotation->color = g_strdup(color);
  annotation->coords = points_new();
  return annotation;
}

void annotation_free(Annotation *annotation)
{
  if (annotation == NULL)
    return;
  g_free(annotation->name);
  g_free(annotation->type_name);
  g_free(annotation->group);
  g_free(annotation->color);
  if (annotation->coords)
    g_array_unref(annotation->coords);
  if (annotation->holes)
    g_ptr_array_unref(annotation->holes);
  if (annotation->parts)
    g_ptr_array_unref(annotation->parts);
  if (annotation->extra)
    g_hash_table_unref(annotation->extra);
  g_free(annotation);
}

Annotation *annotation_copy(const Annotation *annotation)
{
  Annotation *copy = g_new0(Annotation, 1);

  copy->name = g_strdup(annotation->name);
  copy->type_name = g_strdup(annotation->type_name);
  copy->type = annotation->type;
  copy->group = g_strdup(annotation->group);
  copy->color = g_strdup(annotation->color);
  copy->coords = annotation->coords ? points_copy(annotation->coords)
                                    : points_new();
  copy->holes = rings_copy(annotation->holes);
  copy->extra = extra_copy(annotation->extra);

  /* Parts are annotations themselves. */
  if (annotation->parts) {
    copy->parts = g_ptr_array_new_full(annotation->parts->len,
                                       (GDestroyNotify) annotation_free);
    for (guint i = 0; i < annotation->parts->len; i++)
      g_ptr_array_add(copy->parts,
                      annotation_copy(annotation->parts->pdata[i]));
  }
  return copy;
}

gsize annotation_n_vertices(const Annotation *annotation)
{
  gsize n = annotation->coords ? annotation->coords->len : 0;

  for (guint i = 0; annotation->holes && i < annotation->holes->len; i++)
    n += ((GArray *) annotation->holes->pdata[i])->len;
  for (guint i = 0; annotation->parts && i < annotation->parts->len; i++)
    n += annotation_n_vertices(annotation->parts->pdata[i]);
  return n;
}

AnnotGroup *annot_group_new(const char *name, const char *group,
                            const char *color)
{
  AnnotGroup *result = g_new0(AnnotGroup, 1);

  result->name = g_strdup(name);
  result->group = g_strdup(group);
  result->color = g_strdup(color);
  return result;
}

void annot_group_free(AnnotGroup *group)
{
  if (group == NULL)
    return;
  g_free(group->name);
  g_free(group->group);
  g_free(group->color);
  if (group->extra)
    g_hash_table_unref(group->extra);
  g_free(group->attributes_xml);
  g_free(group);
}

AnnotGroup *annot_group_copy(const AnnotGroup *group)
{
  AnnotGroup *copy = annot_group_new(group->name, group->group,
                                     group->color);

  copy->extra = extra_copy(group->extra);
  copy->attributes_xml = g_strdup(group->attributes_xml);
  return copy;
}

AnnotSet *annot_set_new(void)
{
  AnnotSet *set = g_new0(AnnotSet, 1);

  set->annotations = g_ptr_array_new_with_free_func(
      (GDestroyNotify) annotation_free);
  set->groups = g_ptr_array_new_with_free_func(
      (GDestroyNotify) annot_group_free);
  return set;
}

void annot_set_free(AnnotSet *set)
{
  if (set == NULL)
    return;
  g_ptr_array_unref(set->annotations);
  g_ptr_array_unref(set->groups);
  g_free(set);
}

AnnotSet *annot_set_copy(const AnnotSet *set)
{
  AnnotSet *copy = annot_set_new();

  for (guint i = 0; i < set->annotations->len; i++)
    g_ptr_array_add(copy->annotations,
                    annotation_copy(set->annotations->pdata[i]));
  for (guint i = 0; i < set->groups->len; i++)
    g_ptr_array_add(copy->groups, annot_group_copy(set->groups->pdata[i]));
  return copy;
}

/* Used by the readers: the extra-attribute table, made on first use. */
GHashTable *annot_extra_table(GHashTable **extra)
{
  if (*extra == NULL)
    *extra = extra_new();
  return *extra;
}

/* An area shape needs three corners to enclose anything. */
static bool ring_encloses(GArray *ring)
{
  guint distinct = 0;

  for (guint i = 0; ring && i < ring->len && distinct < 3; i++) {
    AnnotPoint *p = &g_array_index(ring, AnnotPoint, i);
    bool seen = false;
    for (guint j = 0; j < i && !seen; j++) {
      AnnotPoint *q = &g_array_index(ring, AnnotPoint, j);
      seen = p->x == q->x && p->y == q->y;
    }
    distinct += !seen;
  }
  return distinct >= 3;
}

static bool annotation_shape_usable(const Annotation *annotation)
{
  bool area = annotation->type == ANNOT_POLYGON ||
              annotation->type == ANNOT_RECTANGLE ||
              annotation->type == ANNOT_SPLINE;

  if (area && !ring_encloses(annotation->coords))
    return false;
  for (guint i = 0; area && annotation->holes &&
                    i < annotation->holes->len; i++)
    if (!ring_encloses(annotation->holes->pdata[i]))
      return false;
  for (guint i = 0; annotation->parts && i < annotation->parts->len; i++)
    if (!annotation_shape_usable(annotation->parts->pdata[i]))
      return false;
  return true;
}

bool annot_set_check_shapes(const AnnotSet *set, GError **error)
{
  for (guint i = 0; i < set->annotations->len; i++) {
    const Annotation *annotation = set->annotations->pdata[i];
    if (!annotation_shape_usable(annotation)) {
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE,
                  "annotation '%s' (%s) has fewer than 3 distinct points "
                  "in a ring, so it encloses nothing",
                  annotation->name ? annotation->name : "",
                  annot_type_name(annotation->type));
      return false;
    }
  }
  return true;
}
