/*
 * geojson-read.c: the GeoJSON reader, on jansson.
 *
 * Takes what QuPath exports: a top-level array of features (0.2), a
 * FeatureCollection (0.5), one Feature, or a bare geometry.  Polygons keep
 * their holes, MultiPolygons their parts; points become Dot / PointSet and
 * a LineString a Measurement (ASAP's only open line).  The classification
 * gives the group and the colour.
 */
#include "annot/annot-private.h"
#include "common/aapi-error.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_t, json_decref)

/* Coordinates are level-0 pixels; anything beyond this is not a slide. */
#define COORDINATE_LIMIT 1e12

typedef struct {
  AnnotSet *set;
  gsize n_vertices;
  guint feature;         /* index of the feature being read, for errors */
} GeojsonReader;

static bool fail(GeojsonReader *reader, GError **error, const char *fmt,
                 ...) G_GNUC_PRINTF(3, 4);

static bool fail(GeojsonReader *reader, GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *message = g_strdup_vprintf(fmt, ap);
  va_end(ap);

  g_set_error(error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE,
              "GeoJSON feature %u: %s", reader->feature, message);
  return false;
}

/* jansson nests as deep as the text does; this bounds it before parsing,
 * skipping brackets inside strings. */
static bool check_depth(const char *data, gsize length, GError **error)
{
  int depth = 0;
  bool in_string = false;

  for (gsize i = 0; i < length; i++) {
    char c = data[i];
    if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > ANNOT_MAX_DEPTH) {
        g_set_error(error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE,
                    "GeoJSON nested deeper than %d", ANNOT_MAX_DEPTH);
        return false;
      }
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return true;
}

/* One position: [x, y] or [x, y, z]. */
static bool read_position(GeojsonReader *reader, json_t *position,
                          AnnotPoint *point, GError **error)
{
  if (!json_is_array(position) || json_array_size(position) < 2 ||
      !json_is_number(json_array_get(position, 0)) ||
      !json_is_number(json_array_get(position, 1)))
    return fail(reader, error, "a position is not [x, y]");

  point->x = json_number_value(json_array_get(position, 0));
  point->y = json_number_value(json_array_get(position, 1));
  if (!isfinite(point->x) || !isfinite(point->y) ||
      fabs(point->x) > COORDINATE_LIMIT || fabs(point->y) > COORDINATE_LIMIT)
    return fail(reader, error, "a coordinate is out of range");
  if (++reader->n_vertices > ANNOT_MAX_VERTICES)
    return fail(reader, error, "more than %d vertices", ANNOT_MAX_VERTICES);
  return true;
}

/* An array of positions; a ring drops its closing vertex, because rings
 * are kept open. */
static GArray *read_positions(GeojsonReader *reader, json_t *array,
                              bool ring, GError **error)
{
  if (!json_is_array(array) || json_array_size(array) == 0) {
    fail(reader, error, "empty or missing coordinates");
    return NULL;
  }

  g_autoptr(GArray) points = g_array_sized_new(
      FALSE, FALSE, sizeof(AnnotPoint), json_array_size(array));
  for (gsize i = 0; i < json_array_size(array); i++) {
    AnnotPoint point;
    if (!read_position(reader, json_array_get(array, i), &point, error))
      return NULL;
    g_array_append_val(points, point);
  }

  AnnotPoint *first = &g_array_index(points, AnnotPoint, 0);
  AnnotPoint *last = &g_array_index(points, AnnotPoint, points->len - 1);
  if (ring && points->len > 1 && first->x == last->x && first->y == last->y)
    g_array_set_size(points, points->len - 1);
  return g_steal_pointer(&points);
}

/* A polygon's rings: the first into coords, the rest into holes. */
static bool read_polygon(GeojsonReader *reader, json_t *rings,
                         Annotation *annotation, GError **error)
{
  if (!json_is_array(rings) || json_array_size(rings) == 0)
    return fail(reader, error, "a polygon has no rings");

  for (gsize i = 0; i < json_array_size(rings); i++) {
    GArray *ring = read_positions(reader, json_array_get(rings, i), true,
                                  error);
    if (ring == NULL)
      return false;
    if (i == 0) {
      g_array_unref(annotation->coords);
      annotation->coords = ring;
      continue;
    }
    if (annotation->holes == NULL)
      annotation->holes = g_ptr_array_new_with_free_func(
          (GDestroyNotify) g_array_unref);
    g_ptr_array_add(annotation->holes, ring);
  }
  return true;
}

/* The first polygon is the annotation itself, the others its parts. */
static bool read_multipolygon(GeojsonReader *reader, json_t *polygons,
                              Annotation *annotation, GError **error)
{
  if (!json_is_array(polygons) || json_array_size(polygons) == 0)
    return fail(reader, error, "a MultiPolygon has no polygons");

  annotation->parts = g_ptr_array_new_with_free_func(
      (GDestroyNotify) annotation_free);
  for (gsize i = 0; i < json_array_size(polygons); i++) {
    json_t *rings = json_array_get(polygons, i);
    if (i == 0) {
      if (!read_polygon(reader, rings, annotation, error))
        return false;
      continue;
    }
    g_autoptr(Annotation) part = annotation_new(NULL, ANNOT_POLYGON, NULL,
                                                NULL);
    if (!read_polygon(reader, rings, part, error))
      return false;
    g_ptr_array_add(annotation->parts, g_steal_pointer(&part));
  }
  return true;
}

static bool read_points(GeojsonReader *reader, json_t *coordinates,
                        bool single, Annotation *annotation, GError **error)
{
  if (single) {
    AnnotPoint point;
    if (!read_position(reader, coordinates, &point, error))
      return false;
    g_array_append_val(annotation->coords, point);
    return true;
  }

  GArray *points = read_positions(reader, coordinates, false, error);
  if (points == NULL)
    return false;
  g_array_unref(annotation->coords);
  annotation->coords = points;
  return true;
}

static void set_type(Annotation *annotation, AnnotType type)
{
  annotation->type = type;
  g_free(annotation->type_name);
  annotation->type_name = g_strdup(annot_type_name(type));
}

/* Fills annotation's shape from a geometry object. */
static bool read_geometry(GeojsonReader *reader, json_t *geometry,
                          Annotation *annotation, GError **error)
{
  const char *type = json_string_value(json_object_get(geometry, "type"));
  json_t *coordinates = json_object_get(geometry, "coordinates");

  if (!json_is_object(geometry) || type == NULL)
    return fail(reader, error, "no geometry");

  if (strcmp(type, "Polygon") == 0)
    return read_polygon(reader, coordinates, annotation, error);
  if (strcmp(type, "MultiPolygon") == 0)
    return read_multipolygon(reader, coordinates, annotation, error);
  if (strcmp(type, "Point") == 0) {
    set_type(annotation, ANNOT_DOT);
    return read_points(reader, coordinates, true, annotation, error);
  }
  if (strcmp(type, "MultiPoint") == 0) {
    set_type(annotation, ANNOT_POINTSET);
    return read_points(reader, coordinates, false, annotation, error);
  }
  if (strcmp(type, "LineString") == 0) {
    set_type(annotation, ANNOT_MEASUREMENT);
    return read_points(reader, coordinates, false, annotation, error);
  }
  return fail(reader, error, "geometry type %s is not supported", type);
}

/* "#rrggbb" from [r, g, b] or from QuPath's packed colorRGB integer. */
static char *read_color(json_t *owner)
{
  json_t *color = json_object_get(owner, "color");
  json_t *packed = json_object_get(owner, "colorRGB");

  if (json_is_array(color) && json_array_size(color) == 3) {
    int rgb[3];
    for (int i = 0; i < 3; i++) {
      json_t *value = json_array_get(color, i);
      if (!json_is_integer(value) || json_integer_value(value) < 0 ||
          json_integer_value(value) > 255)
        return NULL;
      rgb[i] = (int) json_integer_value(value);
    }
    return g_strdup_printf("#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
  }
  if (json_is_integer(packed))
    return g_strdup_printf("#%06x",
                           (unsigned) (json_integer_value(packed) &
                                       0xffffff));
  return NULL;
}

/* Adds the group of a classification the first time it is seen. */
static void add_group(AnnotSet *set, const char *name, const char *color)
{
  for (guint i = 0; i < set->groups->len; i++)
    if (g_strcmp0(((AnnotGroup *) set->groups->pdata[i])->name, name) == 0)
      return;
  g_ptr_array_add(set->groups, annot_group_new(name, "None", color));
}

/* A string property, or NULL when absent or longer than the bound. */
static const char *short_string(json_t *owner, const char *key)
{
  json_t *value = json_object_get(owner, key);

  if (!json_is_string(value) ||
      json_string_length(value) > ANNOT_MAX_ATTRIBUTE)
    return NULL;
  return json_string_value(value);
}

static void read_properties(GeojsonReader *reader, json_t *feature,
                            Annotation *annotation)
{
  json_t *properties = json_object_get(feature, "properties");
  json_t *classification = json_object_get(properties, "classification");
  const char *name = short_string(properties, "name");
  const char *group = short_string(classification, "name");

  /* Not the id: QuPath 0.2 puts the object type there. */
  annotation->name = g_strdup(name);
  if (group) {
    g_autofree char *group_color = read_color(classification);
    annotation->group = g_strdup(group);
    add_group(reader->set, group, group_color);
  }

  /* The object's own colour wins over its class's. */
  annotation->color = read_color(properties);
  if (annotation->color == NULL && classification)
    annotation->color = read_color(classification);
}

static bool read_feature(GeojsonReader *reader, json_t *feature,
                         GError **error)
{
  const char *type = json_string_value(json_object_get(feature, "type"));
  json_t *geometry = feature;

  if (!json_is_object(feature) || type == NULL)
    return fail(reader, error, "not a GeoJSON object");

  g_autoptr(Annotation) annotation = annotation_new(NULL, ANNOT_POLYGON,
                                                    NULL, NULL);
  if (strcmp(type, "Feature") == 0) {
    geometry = json_object_get(feature, "geometry");
    read_properties(reader, feature, annotation);
  }
  if (!read_geometry(reader, geometry, annotation, error))
    return false;
  g_ptr_array_add(reader->set->annotations, g_steal_pointer(&annotation));
  return true;
}

static bool read_features(GeojsonReader *reader, json_t *features,
                          GError **error)
{
  if (!json_is_array(features))
    return fail(reader, error, "features is not an array");

  for (gsize i = 0; i < json_array_size(features); i++) {
    reader->feature = (guint) i;
    if (!read_feature(reader, json_array_get(features, i), error))
      return false;
  }
  return true;
}

static bool read_root(GeojsonReader *reader, json_t *root, GError **error)
{
  const char *type = json_string_value(json_object_get(root, "type"));

  if (json_is_array(root))
    return read_features(reader, root, error);
  if (g_strcmp0(type, "FeatureCollection") == 0)
    return read_features(reader, json_object_get(root, "features"), error);
  if (g_strcmp0(type, "GeometryCollection") == 0)
    return read_features(reader, json_object_get(root, "geometries"), error);
  return read_feature(reader, root, error);
}

AnnotSet *annot_read_geojson(const char *data, gsize length, GError **error)
{
  json_error_t json_error;

  if (!check_depth(data, length, error))
    return NULL;

  g_autoptr(json_t) root = json_loadb(data, length, 0, &json_error);
  if (root == NULL) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE,
                "JSON does not parse, line %d: %s", json_error.line,
                json_error.text);
    return NULL;
  }

  g_autoptr(AnnotSet) set = annot_set_new();
  GeojsonReader reader = { .set = set };
  if (!read_root(&reader, root, error))
    return NULL;
  return g_steal_pointer(&set);
}
