/*
 * asap-write.c: the ASAP XML writer.
 *
 * The layout is the one ASAP itself writes.  Holes and further parts of a
 * shape (from GeoJSON) go into <Holes><Hole><Point/>...</Hole></Holes> and
 * <Parts><Part><Outer><Point/>...</Outer><Holes/></Part></Parts> inside
 * the annotation.  Their vertices are <Point>s, so ASAP and scripts that
 * collect every <Coordinate> of an annotation see the outer ring only, and
 * our reader takes them back.
 *
 * Written into a GString by hand rather than with xmlTextWriter: the
 * format is flat, and the writer spends its time on numbers, which
 * annot_append_number writes exactly and quickly.
 */
#include "annot/annot-private.h"

#include <string.h>

static void append_attribute(GString *out, const char *name,
                             const char *value)
{
  g_string_append_c(out, ' ');
  g_string_append(out, name);
  g_string_append(out, "=\"");
  annot_append_escaped(out, value);
  g_string_append_c(out, '"');
}

static gint compare_keys(gconstpointer a, gconstpointer b, gpointer data)
{
  return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Unknown attributes are written sorted by name, so output is stable. */
static void append_extra(GString *out, GHashTable *extra)
{
  if (extra == NULL)
    return;

  g_autofree gpointer *keys = g_hash_table_get_keys_as_array(extra, NULL);
  guint n = g_hash_table_size(extra);
  g_qsort_with_data(keys, n, sizeof(gpointer), compare_keys, NULL);
  for (guint i = 0; i < n; i++)
    append_attribute(out, keys[i], g_hash_table_lookup(extra, keys[i]));
}

/* Appends text to a line buffer; the caller sized it. */
static char *put(char *line, const char *text, gsize length)
{
  memcpy(line, text, length);
  return line + length;
}

#define PUT(line, literal) put(line, literal, sizeof(literal) - 1)

/* One line per vertex, built on the stack and appended once: big files
 * have a hundred thousand of them. */
static void append_points(GString *out, const GArray *points,
                          const char *element, bool ordered,
                          const char *indent)
{
  gsize indent_length = strlen(indent), element_length = strlen(element);
  char line[64 + 3 * ANNOT_NUMBER_MAX + 64];

  g_return_if_fail(indent_length + element_length < 64);
  for (guint i = 0; points && i < points->len; i++) {
    const AnnotPoint *p = &g_array_index(points, AnnotPoint, i);
    char *end = put(line, indent, indent_length);
    end = PUT(end, "<");
    end = put(end, element, element_length);
    if (ordered) {
      end = PUT(end, " Order=\"");
      end += annot_format_number(end, i);
      end = PUT(end, "\"");
    }
    end = PUT(end, " X=\"");
    end += annot_format_number(end, p->x);
    end = PUT(end, "\" Y=\"");
    end += annot_format_number(end, p->y);
    end = PUT(end, "\"/>\n");
    g_string_append_len(out, line, end - line);
  }
}

static void append_holes(GString *out, const GPtrArray *holes,
                         const char *indent)
{
  g_autofree char *inner = g_strconcat(indent, "    ", NULL);

  g_string_append_printf(out, "%s<Holes>\n", indent);
  for (guint i = 0; i < holes->len; i++) {
    g_string_append_printf(out, "%s  <Hole>\n", indent);
    append_points(out, holes->pdata[i], "Point", false, inner);
    g_string_append_printf(out, "%s  </Hole>\n", indent);
  }
  g_string_append_printf(out, "%s</Holes>\n", indent);
}

static void append_parts(GString *out, const GPtrArray *parts)
{
  g_string_append(out, "      <Parts>\n");
  for (guint i = 0; i < parts->len; i++) {
    const Annotation *part = parts->pdata[i];
    g_string_append(out, "        <Part>\n          <Outer>\n");
    append_points(out, part->coords, "Point", false, "            ");
    g_string_append(out, "          </Outer>\n");
    if (part->holes)
      append_holes(out, part->holes, "          ");
    g_string_append(out, "        </Part>\n");
  }
  g_string_append(out, "      </Parts>\n");
}

static void append_annotation(GString *out, const Annotation *annotation)
{
  g_string_append(out, "    <Annotation");
  if (annotation->name)
    append_attribute(out, "Name", annotation->name);
  append_attribute(out, "Type", annotation->type_name
                                    ? annotation->type_name
                                    : annot_type_name(annotation->type));
  append_attribute(out, "PartOfGroup",
                   annotation->group ? annotation->group : "None");
  if (annotation->color)
    append_attribute(out, "Color", annotation->color);
  append_extra(out, annotation->extra);
  g_string_append(out, ">\n      <Coordinates>\n");

  append_points(out, annotation->coords, "Coordinate", true, "        ");
  g_string_append(out, "      </Coordinates>\n");
  if (annotation->holes)
    append_holes(out, annotation->holes, "      ");
  if (annotation->parts)
    append_parts(out, annotation->parts);
  g_string_append(out, "    </Annotation>\n");
}

static void append_group(GString *out, const AnnotGroup *group)
{
  g_string_append(out, "    <Group");
  if (group->name)
    append_attribute(out, "Name", group->name);
  append_attribute(out, "PartOfGroup", group->group ? group->group : "None");
  if (group->color)
    append_attribute(out, "Color", group->color);
  append_extra(out, group->extra);

  /* The attributes were serialised by the reader: well-formed XML. */
  if (group->attributes_xml)
    g_string_append_printf(out, ">\n      <Attributes>%s</Attributes>\n"
                           "    </Group>\n", group->attributes_xml);
  else
    g_string_append(out, ">\n      <Attributes/>\n    </Group>\n");
}

/* About 45 bytes per vertex, to size the buffer once. */
static gsize estimate_size(const AnnotSet *set)
{
  gsize n = 0;

  for (guint i = 0; i < set->annotations->len; i++)
    n += annotation_n_vertices(set->annotations->pdata[i]);
  return 4096 + 48 * n + 256 * (set->annotations->len + set->groups->len);
}

GString *annot_write_asap(const AnnotSet *set)
{
  GString *out = g_string_sized_new(estimate_size(set));

  g_string_append(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                       "<ASAP_Annotations>\n  <Annotations>\n");
  for (guint i = 0; i < set->annotations->len; i++)
    append_annotation(out, set->annotations->pdata[i]);
  g_string_append(out, "  </Annotations>\n  <AnnotationGroups>\n");
  for (guint i = 0; i < set->groups->len; i++)
    append_group(out, set->groups->pdata[i]);
  g_string_append(out, "  </AnnotationGroups>\n</ASAP_Annotations>\n");
  return out;
}
