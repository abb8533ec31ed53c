/*
 * geojson-write.c: a QuPath-style GeoJSON FeatureCollection.
 *
 * Properties are built and escaped by jansson; coordinates are written
 * directly with annot_append_number, which gives the shortest text that
 * reads back exactly (jansson writes 17 digits).
 */
#include "annot/annot-private.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_t, json_decref)

static void append_position(GString *out, const AnnotPoint *point)
{
  g_string_append_c(out, '[');
  annot_append_number(out, point->x);
  g_string_append_c(out, ',');
  annot_append_number(out, point->y);
  g_string_append_c(out, ']');
}

/* Positions of an open ring or a line; rings get their closing vertex. */
static void append_positions(GString *out, const GArray *points, bool ring)
{
  g_string_append_c(out, '[');
  for (guint i = 0; points && i < points->len; i++) {
    if (i > 0)
      g_string_append_c(out, ',');
    append_position(out, &g_array_index(points, AnnotPoint, i));
  }
  if (ring && points && points->len > 0) {
    g_string_append_c(out, ',');
    append_position(out, &g_array_index(points, AnnotPoint, 0));
  }
  g_string_append_c(out, ']');
}

static void append_polygon(GString *out, const Annotation *shape)
{
  g_string_append_c(out, '[');
  append_positions(out, shape->coords, true);
  for (guint i = 0; shape->holes && i < shape->holes->len; i++) {
    g_string_append_c(out, ',');
    append_positions(out, shape->holes->pdata[i], true);
  }
  g_string_append_c(out, ']');
}

static void append_multipolygon(GString *out, const Annotation *annotation)
{
  g_string_append_c(out, '[');
  append_polygon(out, annotation);
  for (guint i = 0; i < annotation->parts->len; i++) {
    g_string_append_c(out, ',');
    append_polygon(out, annotation->parts->pdata[i]);
  }
  g_string_append_c(out, ']');
}

static void append_geometry(GString *out, const Annotation *annotation)
{
  const GArray *coords = annotation->coords;

  g_string_append(out, "{\"type\":");
  switch (annotation->type) {
  case ANNOT_DOT:
  case ANNOT_POINTSET:
    if (annotation->type == ANNOT_DOT && coords && coords->len == 1) {
      g_string_append(out, "\"Point\",\"coordinates\":");
      append_position(out, &g_array_index(coords, AnnotPoint, 0));
    } else {
      g_string_append(out, "\"MultiPoint\",\"coordinates\":");
      append_positions(out, coords, false);
    }
    break;
  case ANNOT_MEASUREMENT:
    g_string_append(out, "\"LineString\",\"coordinates\":");
    append_positions(out, coords, false);
    break;
  default:
    if (annotation->parts) {
      g_string_append(out, "\"MultiPolygon\",\"coordinates\":");
      append_multipolygon(out, annotation);
    } else {
      g_string_append(out, "\"Polygon\",\"coordinates\":");
      append_polygon(out, annotation);
    }
    break;
  }
  g_string_append_c(out, '}');
}

/* [r, g, b] from "#rrggbb", or NULL when the text is not such a colour. */
static json_t *color_array(const char *color)
{
  if (color == NULL || color[0] != '#' || strlen(color) != 7)
    return NULL;
  for (int i = 1; i < 7; i++)
    if (!g_ascii_isxdigit(color[i]))
      return NULL;

  json_t *array = json_array();
  for (int i = 0; i < 3; i++)
    json_array_append_new(array, json_integer(
        g_ascii_xdigit_value(color[1 + 2 * i]) * 16 +
        g_ascii_xdigit_value(color[2 + 2 * i])));
  return array;
}

static const char *group_color(const AnnotSet *set, const char *name)
{
  for (guint i = 0; i < set->groups->len; i++) {
    const AnnotGroup *group = set->groups->pdata[i];
    if (g_strcmp0(group->name, name) == 0)
      return group->color;
  }
  return NULL;
}

static json_t *properties(const AnnotSet *set, const Annotation *annotation)
{
  json_t *object = json_object();

  json_object_set_new(object, "objectType", json_string("annotation"));
  if (annotation->name)
    json_object_set_new(object, "name", json_string(annotation->name));

  /* The object's own colour; the class takes its group's colour. */
  json_t *color = color_array(annotation->color);
  if (color)
    json_object_set_new(object, "color", color);

  /* "None" is how ASAP says "no group". */
  if (annotation->group && strcmp(annotation->group, "None") != 0) {
    json_t *classification = json_object();
    const char *class_color = group_color(set, annotation->group);
    json_object_set_new(classification, "name",
                        json_string(annotation->group));
    color = color_array(class_color ? class_color : annotation->color);
    if (color)
      json_object_set_new(classification, "color", color);
    json_object_set_new(object, "classification", classification);
  }
  return object;
}

static void append_feature(GString *out, const AnnotSet *set,
                           const Annotation *annotation)
{
  g_autoptr(json_t) object = properties(set, annotation);
  char *text = json_dumps(object, JSON_COMPACT | JSON_PRESERVE_ORDER);

  g_string_append(out, "{\"type\":\"Feature\",\"geometry\":");
  append_geometry(out, annotation);
  g_string_append(out, ",\"properties\":");
  g_string_append(out, text ? text : "{}");
  g_string_append_c(out, '}');
  free(text);
}

GString *annot_write_geojson(const AnnotSet *set)
{
  GString *out = g_string_sized_new(4096);

  g_string_append(out, "{\"type\":\"FeatureCollection\",\"features\":[");
  for (guint i = 0; i < set->annotations->len; i++) {
    g_string_append(out, i > 0 ? ",\n" : "\n");
    append_feature(out, set, set->annotations->pdata[i]);
  }
  g_string_append(out, "\n]}\n");
  return out;
}
