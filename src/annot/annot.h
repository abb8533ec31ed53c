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
  /* AnnotPoint: the outer ring / the points.  Rings are kept open, as in
   * ASAP: the first vertex is not repeated at the end. */
  GArray *coords;
  /* Interior rings (holes) and further parts of a multi-part shape, from
   * GeoJSON: GArray* of AnnotPoint each; NULL when none. */
  GPtrArray *holes;
  /* Annotation* sub-parts of a MultiPolygon after the first one (only
   * coords and holes are used), or NULL.  Non-NULL but empty marks a
   * MultiPolygon of one polygon. */
  GPtrArray *parts;
  /* Attributes not listed above, kept for a faithful write: GHashTable of
   * char* -> char*, or NULL. */
  GHashTable *extra;
} Annotation;

typedef struct {
  char *name;
  char *group;         /* PartOfGroup of the group: the hierarchy */
  char *color;
  GHashTable *extra;   /* other attributes, or NULL */
  /* The content of the group's <Attributes> element as well-formed XML
   * (serialised by the reader), or NULL when it is empty. */
  char *attributes_xml;
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

AnnotGroup *annot_group_new(const char *name, const char *group,
                            const char *color);
void annot_group_free(AnnotGroup *group);
AnnotGroup *annot_group_copy(const AnnotGroup *group);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AnnotGroup, annot_group_free)

/* The ASAP name of a type ("Polygon" ...) and the type of a name (case
 * does not matter; ANNOT_OTHER when unknown). */
const char *annot_type_name(AnnotType type);
AnnotType annot_type_from_name(const char *name);

/* Number of vertices of an annotation: outer ring, holes and parts. */
gsize annotation_n_vertices(const Annotation *annotation);

/* Refuses (AAPI_ERROR_UNPROCESSABLE) a polygon, rectangle or spline, or
 * one of its holes or parts, with fewer than 3 distinct points: what a
 * client posts must enclose something.  Stored files are read as they
 * are. */
bool annot_set_check_shapes(const AnnotSet *set, GError **error);

/* Limits of the readers: nesting depth, vertices per document, bytes per
 * attribute value or JSON string. */
#define ANNOT_MAX_DEPTH 64
#define ANNOT_MAX_VERTICES 10000000
#define ANNOT_MAX_ATTRIBUTE 65536

typedef enum {
  ANNOT_FORMAT_UNKNOWN,
  ANNOT_FORMAT_ASAP,
  ANNOT_FORMAT_GEOJSON,
} AnnotFormat;

/* Guesses from the first bytes (XML or JSON). */
AnnotFormat annot_format_sniff(const char *data, gsize length);

/*
 * Readers.  They never touch the network, refuse documents with a DOCTYPE
 * (where entities are declared), bound the nesting depth (ANNOT_MAX_DEPTH),
 * the number of vertices (ANNOT_MAX_VERTICES) and attribute lengths, and
 * refuse an annotation with no coordinates and coordinates that are not
 * finite numbers.  Every body that cannot be used, whether it does not
 * parse (the message gives the line) or is other XML (an ImageScope file),
 * is AAPI_ERROR_UNPROCESSABLE; a body over 2 GiB is AAPI_ERROR_TOO_LARGE.
 * Vertices are sorted by their Order attribute when every one has one.
 * Thread safe.
 */
AnnotSet *annot_read_asap(const char *data, gsize length, GError **error);
AnnotSet *annot_read_asap_file(const char *path, GError **error);
AnnotSet *annot_read_geojson(const char *data, gsize length,
                             GError **error);
/* Picks the reader by annot_format_sniff. */
AnnotSet *annot_read_any(const char *data, gsize length, GError **error);
/* Reads the file at path with annot_read_any; a missing file is
 * AAPI_ERROR_NOT_FOUND, another read failure AAPI_ERROR_IO. */
AnnotSet *annot_read_any_file(const char *path, GError **error);

/*
 * A process-wide cache of parsed annotation files, so that a POST merges
 * onto the newest version without parsing it again.  Entries are keyed by
 * path and checked against the file's size, modification time and inode,
 * so a changed file is read afresh; the cache holds at most
 * ANNOT_CACHE_MAX_VERTICES vertices and drops the least recently used.
 * Thread safe.
 */
#define ANNOT_CACHE_MAX_VERTICES 8000000

/* A copy of the file's annotations (ASAP XML or GeoJSON), from the cache
 * when the file is unchanged, else read (and cached). */
AnnotSet *annot_cache_read_file(const char *path, GError **error);
/* Records set as the content of the file just written at path. */
void annot_cache_put(const char *path, const AnnotSet *set);
/* Empties the cache. */
void annot_cache_clear(void);

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
