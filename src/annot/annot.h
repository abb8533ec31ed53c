/*
 * annot.h: the annotation model, ASAP XML and GeoJSON readers and writers,
 * and the region merge on GEOS.
 *
 * An AnnotSet holds what an ASAP file holds (annotations with their name,
 * type, group, colour and coordinates; groups with their hierarchy and
 * colour) plus what QuPath GeoJSON adds (holes, multi-part shapes), so that
 * a read and a write give back the same content.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef struct {
  double x, y;
} AnnotPoint;

typedef enum {
  ANNOT_POLYGON,
  ANNOT_RECTANGLE,
  ANNOT_SPLINE,
  ANNOT_POINTSET,
  ANNOT_DOT,
  ANNOT_MEASUREMENT,
  ANNOT_OTHER,        /* an unknown Type attribute, kept as written */
} AnnotType;

typedef struct {
  char *name;
  char *type_name;     /* the Type attribute as written */
  AnnotType type;
  char *group;         /* PartOfGroup; "None" in ASAP when ungrouped */
  char *color;         /* "#rrggbb" as written */
  GArray *coords;      /* AnnotPoint: the outer ring / the points */
  /* Interior rings (holes) and further parts of a multi-part shape, from
   * GeoJSON: GArray* of AnnotPoint each; NULL when none. */
  GPtrArray *holes;
  GPtrArray *parts;    /* Annotation* sub-parts of a MultiPolygon, or NULL */
  /* Attributes not listed above, kept for a faithful write: GHashTable of
   * char* -> char*, or NULL. */
  GHashTable *extra;
} Annotation;

typedef struct {
  char *name;
  char *group;         /* PartOfGroup of the group: the hierarchy */
  char *color;
  GHashTable *extra;   /* other attributes, or NULL */
} AnnotGroup;

typedef struct {
  GPtrArray *annotations;  /* Annotation* */
  GPtrArray *groups;       /* AnnotGroup* */
} AnnotSet;

typedef struct {
  double x, y, width, height;   /* level-0 pixels */
} AnnotBox;

AnnotSet *annot_set_new(void);
void annot_set_free(AnnotSet *set);
AnnotSet *annot_set_copy(const AnnotSet *set);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AnnotSet, annot_set_free)

Annotation *annotation_new(const char *name, AnnotType type,
                           const char *group, const char *color);
void annotation_free(Annotation *annotation);
Annotation *annotation_copy(const Annotation *annotation);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Annotation, annotation_free)

const char *annot_type_name(AnnotType type);

typedef enum {
  ANNOT_FORMAT_UNKNOWN,
  ANNOT_FORMAT_ASAP,
  ANNOT_FORMAT_GEOJSON,
} AnnotFormat;

/* Guesses from the first bytes (XML or JSON). */
AnnotFormat annot_format_sniff(const char *data, gsize length);

/*
 * Readers.  They never touch the network, refuse documents that declare
 * entities (DTDs), bound the nesting depth and the number of vertices, and
 * refuse an annotation with no coordinates.  Errors: AAPI_ERROR_UNPROCESSABLE
 * for content that parses but is not usable (other XML, an ImageScope
 * file), AAPI_ERROR_INVALID for text that does not parse at all.
 */
AnnotSet *annot_read_asap(const char *data, gsize length, GError **error);
AnnotSet *annot_read_asap_file(const char *path, GError **error);
AnnotSet *annot_read_geojson(const char *data, gsize length,
                             GError **error);
/* Picks the reader by annot_format_sniff. */
AnnotSet *annot_read_any(const char *data, gsize length, GError **error);

/* Writers. */
GString *annot_write_asap(const AnnotSet *set);
/* A QuPath-style FeatureCollection: each feature has properties
 * {"objectType":"annotation","name":...,"classification":{"name":group,
 * "color":[r,g,b]}} and keeps holes and parts. */
GString *annot_write_geojson(const AnnotSet *set);

/* The region merge of the old service: the annotations of old that do NOT
 * intersect box, then the annotations of posted that DO intersect it
 * (touching counts).  Groups: old's, then posted's not already present.
 * Self-intersecting polygons are kept as drawn.  Never fails on odd
 * geometry; an error means GEOS itself failed. */
AnnotSet *annot_merge_region(const AnnotSet *old, const AnnotSet *posted,
                             const AnnotBox *box, GError **error);

/* The box used when a POST names no region. */
#define ANNOT_BOX_WHOLE ((AnnotBox) { 0, 0, 1e8, 1e8 })
