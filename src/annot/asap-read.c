/*
 * asap-read.c: the ASAP XML reader, on libxml2's SAX2 parser.
 *
 * The document streams through SAX2 callbacks that fill the set directly:
 * no tree is built, and attribute values are read where libxml2 leaves
 * them, which makes this several times faster than xmlTextReader on
 * multi-megabyte files.  Nothing is fetched from the network, no DTD is
 * loaded and no entity is substituted; a document with a DOCTYPE (the only
 * place entities can be declared) is refused as soon as it is seen.
 */
#include "annot/annot-private.h"
#include "common/aapi-error.h"
#include "common/config.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <string.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlParserCtxt, xmlFreeParserCtxt)

/* What an open element is to the reader. */
typedef enum {
  KIND_SKIP,            /* unknown: read through, ignored */
  KIND_ROOT,
  KIND_ANNOTATIONS,
  KIND_ANNOTATION,
  KIND_POINTS,          /* <Coordinates>, <Outer>, <Hole>: vertices */
  KIND_VERTEX,
  KIND_HOLES,
  KIND_PARTS,
  KIND_PART,
  KIND_GROUPS,
  KIND_GROUP,
  KIND_GROUP_ATTRIBUTES,
  KIND_ATTRIBUTE_CONTENT, /* inside a group's <Attributes>: serialised */
} Kind;

/* One vertex as read, with its Order when given. */
typedef struct {
  AnnotPoint point;
  gint64 order;
  guint index;
} OrderedPoint;

typedef struct {
  xmlParserCtxtPtr ctxt;
  AnnotSet *set;
  GError *error;          /* the first error; parsing stops there */
  gsize n_vertices;
  int depth;              /* number of open elements */
  Kind stack[ANNOT_MAX_DEPTH + 1];

  Annotation *annotation; /* the open <Annotation> */
  Annotation *shape;      /* where rings go: the annotation or a <Part> */
  GArray *points;         /* OrderedPoint of the open point container */
  GArray *points_dest;    /* where they go when it closes */
  bool all_ordered;
  AnnotGroup *group;      /* the open <Group> */
  GString *attributes;    /* serialised content of <Attributes> */
} AsapReader;

static void init_libxml(void)
{
  static gsize initialised;

  /* libxml2 must set up its globals once before threads use it. */
  if (g_once_init_enter(&initialised)) {
    xmlInitParser();
    g_once_init_leave(&initialised, 1);
  }
}

static int current_line(AsapReader *asap)
{
  return asap->ctxt->input ? asap->ctxt->input->line : 0;
}

static void fail(AsapReader *asap, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Records the first error and stops the parser.  Every reader error is
 * UNPROCESSABLE: the body is not usable ASAP XML. */
static void fail(AsapReader *asap, const char *fmt, ...)
{
  if (asap->error)
    return;

  va_list ap;
  va_start(ap, fmt);
  g_autofree char *message = g_strdup_vprintf(fmt, ap);
  va_end(ap);

  g_set_error(&asap->error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE,
              "ASAP XML, line %d: %s", current_line(asap), message);
  xmlStopParser(asap->ctxt);
}

static void on_xml_error(void *data, xmlErrorPtr xml_error)
{
  AsapReader *asap = data;

  if (xml_error->level == XML_ERR_WARNING || asap->error)
    return;
  g_autofree char *message = g_strstrip(
      g_strdup(xml_error->message ? xml_error->message : "error"));
  g_set_error(&asap->error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE,
              "XML does not parse, line %d: %s", xml_error->line, message);
  xmlStopParser(asap->ctxt);
}

/* Attribute values. */

/* SAX2 attributes come as five pointers each: local name, prefix, URI,
 * value start and value end. */
typedef struct {
  const char *name;
  const char *prefix;
  const char *value;
  gsize length;
} Attribute;

static Attribute attribute_at(const xmlChar **attributes, int i)
{
  Attribute a = {
    .name = (const char *) attributes[5 * i],
    .prefix = (const char *) attributes[5 * i + 1],
    .value = (const char *) attributes[5 * i + 3],
  };
  a.length = (gsize) (attributes[5 * i + 4] - attributes[5 * i + 3]);
  return a;
}

/* The value as a string.  Without entity substitution libxml2 leaves an
 * ampersand as "&#38;" in attribute values; this turns it back. */
static char *attribute_value(const Attribute *a)
{
  if (memchr(a->value, '&', a->length) == NULL)
    return g_strndup(a->value, a->length);

  GString *text = g_string_sized_new(a->length);
  for (gsize i = 0; i < a->length; i++) {
    if (a->length - i >= 5 && memcmp(a->value + i, "&#38;", 5) == 0) {
      g_string_append_c(text, '&');
      i += 4;
    } else {
      g_string_append_c(text, a->value[i]);
    }
  }
  return g_string_free(text, FALSE);
}

static char *attribute_name(const Attribute *a)
{
  if (a->prefix)
    return g_strconcat(a->prefix, ":", a->name, NULL);
  return g_strdup(a->name);
}

static bool check_lengths(AsapReader *asap, int n,
                          const xmlChar **attributes)
{
  for (int i = 0; i < n; i++) {
    Attribute a = attribute_at(attributes, i);
    if (a.length > ANNOT_MAX_ATTRIBUTE) {
      fail(asap, "attribute %s is longer than %d bytes", a.name,
           ANNOT_MAX_ATTRIBUTE);
      return false;
    }
  }
  return true;
}

/* Stores the known attributes in fields (names[i] -> fields[i]) and the
 * others in extra. */
static void take_attributes(int n, const xmlChar **attributes,
                            const char *const *names, char **const *fields,
                            GHashTable **extra)
{
  for (int i = 0; i < n; i++) {
    Attribute a = attribute_at(attributes, i);
    char **field = NULL;
    for (guint j = 0; names[j] && field == NULL; j++)
      if (a.prefix == NULL && strcmp(a.name, names[j]) == 0)
        field = fields[j];
    if (field) {
      g_free(*field);
      *field = attribute_value(&a);
    } else {
      g_hash_table_replace(annot_extra_table(extra), attribute_name(&a),
                           attribute_value(&a));
    }
  }
}

/* Vertices. */

/* Order values are short non-negative integers; the loop saves the
 * general parser's cost on every vertex of big files. */
static bool parse_order(const char *text, gint64 *out, GError **error)
{
  gint64 value = 0;
  int n = 0;

  for (; text[n] >= '0' && text[n] <= '9' && n < 9; n++)
    value = value * 10 + (text[n] - '0');
  if (n > 0 && text[n] == '\0') {
    *out = value;
    return true;
  }
  return aapi_parse_int64(text, G_MININT32, G_MAXINT32, out, error);
}

/* Parses one number attribute: an Order or a coordinate. */
static bool vertex_number(AsapReader *asap, const Attribute *a, bool order,
                          double *value, gint64 *order_value)
{
  char buffer[72];
  g_autoptr(GError) local = NULL;
  const char *start = a->value, *end = a->value + a->length;

  /* White space around a number is harmless. */
  while (start < end && g_ascii_isspace(*start))
    start++;
  while (end > start && g_ascii_isspace(end[-1]))
    end--;
  if ((gsize) (end - start) >= sizeof(buffer)) {
    fail(asap, "attribute %s is not a number", a->name);
    return false;
  }
  memcpy(buffer, start, (gsize) (end - start));
  buffer[end - start] = '\0';

  bool ok = order ? parse_order(buffer, order_value, &local)
                  : annot_parse_coordinate(buffer, value, &local);
  if (!ok)
    fail(asap, "attribute %s: %s", a->name, local->message);
  return ok;
}

static void start_vertex(AsapReader *asap, int n,
                         const xmlChar **attributes)
{
  OrderedPoint vertex = { .index = asap->points->len };
  bool has_x = false, has_y = false, has_order = false;

  /* A failure stops the parser, which frees the text the values point
   * into: nothing may be read after it. */
  for (int i = 0; i < n && asap->error == NULL; i++) {
    Attribute a = attribute_at(attributes, i);
    if (a.prefix)
      continue;
    if (strcmp(a.name, "X") == 0)
      has_x = vertex_number(asap, &a, false, &vertex.point.x, NULL);
    else if (strcmp(a.name, "Y") == 0)
      has_y = vertex_number(asap, &a, false, &vertex.point.y, NULL);
    else if (strcmp(a.name, "Order") == 0)
      has_order = vertex_number(asap, &a, true, NULL, &vertex.order);
  }
  if (asap->error)
    return;
  if (!has_x || !has_y) {
    fail(asap, "a vertex without X and Y");
    return;
  }
  if (++asap->n_vertices > ANNOT_MAX_VERTICES) {
    fail(asap, "more than %d vertices", ANNOT_MAX_VERTICES);
    return;
  }

  asap->all_ordered = asap->all_ordered && has_order;
  g_array_append_val(asap->points, vertex);
}

static void start_points(AsapReader *asap, GArray *dest)
{
  g_array_set_size(asap->points, 0);
  asap->points_dest = dest;
  asap->all_ordered = true;
}

static gint compare_order(gconstpointer a, gconstpointer b)
{
  const OrderedPoint *pa = a, *pb = b;

  if (pa->order != pb->order)
    return pa->order < pb->order ? -1 : 1;
  return pa->index < pb->index ? -1 : pa->index > pb->index;
}

static bool is_sorted(const GArray *points)
{
  for (guint i = 1; i < points->len; i++)
    if (g_array_index(points, OrderedPoint, i).order <
        g_array_index(points, OrderedPoint, i - 1).order)
      return false;
  return true;
}

/* Moves the vertices to their destination, in the order their Order
 * attributes give when every one has one. */
static void end_points(AsapReader *asap)
{
  GArray *points = asap->points;

  if (asap->all_ordered && !is_sorted(points))
    g_array_sort(points, compare_order);

  GArray *dest = asap->points_dest;
  guint first = dest->len;
  g_array_set_size(dest, first + points->len);
  for (guint i = 0; i < points->len; i++)
    g_array_index(dest, AnnotPoint, first + i) =
        g_array_index(points, OrderedPoint, i).point;
}

/* A new hole ring of the current shape, to be filled by <Point>s. */
static GArray *new_hole(Annotation *shape)
{
  GArray *ring = g_array_new(FALSE, FALSE, sizeof(AnnotPoint));

  if (shape->holes == NULL)
    shape->holes = g_ptr_array_new_with_free_func(
        (GDestroyNotify) g_array_unref);
  g_ptr_array_add(shape->holes, ring);
  return ring;
}

/* Annotations. */

static void start_annotation(AsapReader *asap, int n,
                             const xmlChar **attributes)
{
  static const char *const names[] = { "Name", "Type", "PartOfGroup",
                                       "Color", NULL };
  Annotation *annotation = annotation_new(NULL, ANNOT_POLYGON, NULL, NULL);
  char **const fields[] = { &annotation->name, &annotation->type_name,
                            &annotation->group, &annotation->color };

  g_clear_pointer(&annotation->type_name, g_free);
  take_attributes(n, attributes, names, fields, &annotation->extra);
  annotation->type = annot_type_from_name(annotation->type_name);
  asap->annotation = asap->shape = annotation;
}

static void end_annotation(AsapReader *asap)
{
  g_autoptr(Annotation) annotation = g_steal_pointer(&asap->annotation);

  /* An annotation without a vertex is no shape at all. */
  asap->shape = NULL;
  if (annotation->coords->len == 0) {
    fail(asap, "annotation \"%s\" has no coordinates",
         annotation->name ? annotation->name : "");
    return;
  }
  g_ptr_array_add(asap->set->annotations, g_steal_pointer(&annotation));
}

static void start_part(AsapReader *asap)
{
  asap->shape = annotation_new(NULL, asap->annotation->type, NULL, NULL);
}

static void end_part(AsapReader *asap)
{
  g_autoptr(Annotation) part = asap->shape;

  asap->shape = asap->annotation;
  if (part->coords->len == 0) {
    fail(asap, "a <Part> of annotation \"%s\" has no coordinates",
         asap->annotation->name ? asap->annotation->name : "");
    return;
  }
  g_ptr_array_add(asap->annotation->parts, g_steal_pointer(&part));
}

/* Groups. */

static void start_group(AsapReader *asap, int n, const xmlChar **attributes)
{
  static const char *const names[] = { "Name", "PartOfGroup", "Color",
                                       NULL };
  AnnotGroup *group = annot_group_new(NULL, NULL, NULL);
  char **const fields[] = { &group->name, &group->group, &group->color };

  take_attributes(n, attributes, names, fields, &group->extra);
  asap->group = group;
}

static void end_group(AsapReader *asap)
{
  g_ptr_array_add(asap->set->groups, g_steal_pointer(&asap->group));
}

/* The content of a group's <Attributes> is kept as XML, written out again
 * from the events with everything escaped. */
static void serialise_start(AsapReader *asap, const char *name, int n,
                            const xmlChar **attributes)
{
  GString *out = asap->attributes;

  g_string_append_printf(out, "<%s", name);
  for (int i = 0; i < n; i++) {
    Attribute a = attribute_at(attributes, i);
    g_autofree char *attr_name = attribute_name(&a);
    g_autofree char *value = attribute_value(&a);
    g_string_append_printf(out, " %s=\"", attr_name);
    annot_append_escaped(out, value);
    g_string_append_c(out, '"');
  }
  g_string_append_c(out, '>');
}

static void end_group_attributes(AsapReader *asap)
{
  g_autofree char *text = g_strstrip(g_string_free(
      g_steal_pointer(&asap->attributes), FALSE));

  if (*text) {
    g_free(asap->group->attributes_xml);
    asap->group->attributes_xml = g_steal_pointer(&text);
  }
}

/* The element tree. */

static Kind root_kind(AsapReader *asap, const char *name)
{
  if (strcmp(name, "ASAP_Annotations") == 0)
    return KIND_ROOT;

  g_set_error(&asap->error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE,
              strcmp(name, "Annotations") == 0
                  ? "not ASAP XML: root element is <%s> "
                    "(Aperio ImageScope?)"
                  : "not ASAP XML: root element is <%s>, expected "
                    "<ASAP_Annotations>", name);
  xmlStopParser(asap->ctxt);
  return KIND_SKIP;
}

/* What a child called name of an element of kind parent is. */
static Kind child_kind(Kind parent, const char *name)
{
  static const struct {
    Kind parent;
    const char *name;
    Kind kind;
  } tree[] = {
    { KIND_ROOT, "Annotations", KIND_ANNOTATIONS },
    { KIND_ROOT, "AnnotationGroups", KIND_GROUPS },
    { KIND_ANNOTATIONS, "Annotation", KIND_ANNOTATION },
    { KIND_ANNOTATION, "Coordinates", KIND_POINTS },
    { KIND_ANNOTATION, "Holes", KIND_HOLES },
    { KIND_ANNOTATION, "Parts", KIND_PARTS },
    { KIND_PARTS, "Part", KIND_PART },
    { KIND_PART, "Outer", KIND_POINTS },
    { KIND_PART, "Holes", KIND_HOLES },
    { KIND_HOLES, "Hole", KIND_POINTS },
    { KIND_POINTS, "Coordinate", KIND_VERTEX },
    { KIND_POINTS, "Point", KIND_VERTEX },
    { KIND_GROUPS, "Group", KIND_GROUP },
    { KIND_GROUP, "Attributes", KIND_GROUP_ATTRIBUTES },
  };

  if (parent == KIND_GROUP_ATTRIBUTES || parent == KIND_ATTRIBUTE_CONTENT)
    return KIND_ATTRIBUTE_CONTENT;
  for (guint i = 0; i < G_N_ELEMENTS(tree); i++)
    if (tree[i].parent == parent && strcmp(tree[i].name, name) == 0)
      return tree[i].kind;
  return KIND_SKIP;
}

static void start_kind(AsapReader *asap, Kind kind, Kind parent,
                       const char *name, int n, const xmlChar **attributes)
{
  switch (kind) {
  case KIND_ANNOTATION:
    start_annotation(asap, n, attributes);
    return;
  case KIND_POINTS:
    start_points(asap, parent == KIND_HOLES
                                  ? new_hole(asap->shape)
                                  : asap->shape->coords);
    return;
  case KIND_VERTEX:
    start_vertex(asap, n, attributes);
    return;
  case KIND_PARTS:
    if (asap->annotation->parts == NULL)
      asap->annotation->parts = g_ptr_array_new_with_free_func(
          (GDestroyNotify) annotation_free);
    return;
  case KIND_PART:
    start_part(asap);
    return;
  case KIND_GROUP:
    start_group(asap, n, attributes);
    return;
  case KIND_GROUP_ATTRIBUTES:
    asap->attributes = g_string_new(NULL);
    return;
  case KIND_ATTRIBUTE_CONTENT:
    serialise_start(asap, name, n, attributes);
    return;
  default:
    return;
  }
}

static void on_start(void *data, const xmlChar *local_name,
                     const xmlChar *prefix, const xmlChar *uri,
                     int n_namespaces, const xmlChar **namespaces,
                     int n_attributes, int n_defaulted,
                     const xmlChar **attributes)
{
  AsapReader *asap = data;
  const char *name = (const char *) local_name;

  if (asap->error)
    return;
  if (asap->depth >= ANNOT_MAX_DEPTH) {
    fail(asap, "elements nested deeper than %d", ANNOT_MAX_DEPTH);
    return;
  }
  if (!check_lengths(asap, n_attributes, attributes))
    return;

  Kind parent = asap->depth > 0 ? asap->stack[asap->depth - 1] : KIND_SKIP;
  Kind kind = asap->depth == 0 ? root_kind(asap, name)
                               : child_kind(parent, name);
  asap->stack[asap->depth++] = kind;
  start_kind(asap, kind, parent, name, n_attributes, attributes);
}

static void on_end(void *data, const xmlChar *local_name,
                   const xmlChar *prefix, const xmlChar *uri)
{
  AsapReader *asap = data;

  if (asap->error || asap->depth == 0)
    return;

  switch (asap->stack[--asap->depth]) {
  case KIND_ANNOTATION:
    end_annotation(asap);
    return;
  case KIND_POINTS:
    end_points(asap);
    return;
  case KIND_PART:
    end_part(asap);
    return;
  case KIND_GROUP:
    end_group(asap);
    return;
  case KIND_GROUP_ATTRIBUTES:
    end_group_attributes(asap);
    return;
  case KIND_ATTRIBUTE_CONTENT:
    g_string_append_printf(asap->attributes, "</%s>",
                           (const char *) local_name);
    return;
  default:
    return;
  }
}

static void on_characters(void *data, const xmlChar *text, int length)
{
  AsapReader *asap = data;

  if (asap->error || asap->depth == 0)
    return;

  Kind kind = asap->stack[asap->depth - 1];
  if (kind != KIND_GROUP_ATTRIBUTES && kind != KIND_ATTRIBUTE_CONTENT)
    return;
  g_autofree char *copy = g_strndup((const char *) text, (gsize) length);
  annot_append_escaped(asap->attributes, copy);
}

/* A DOCTYPE is where entities would be declared: refused at once. */
static void on_doctype(void *data, const xmlChar *name,
                       const xmlChar *external_id, const xmlChar *system_id)
{
  fail(data, "documents with a DOCTYPE or entities are refused");
}

static void on_entity_decl(void *data, const xmlChar *name, int type,
                           const xmlChar *public_id, const xmlChar *system_id,
                           xmlChar *content)
{
  fail(data, "documents with a DOCTYPE or entities are refused");
}

static xmlEntityPtr on_get_entity(void *data, const xmlChar *name)
{
  return NULL;
}

static void set_handlers(xmlSAXHandler *sax)
{
  memset(sax, 0, sizeof(*sax));
  sax->initialized = XML_SAX2_MAGIC;
  sax->startElementNs = on_start;
  sax->endElementNs = on_end;
  sax->characters = on_characters;
  sax->internalSubset = on_doctype;
  sax->externalSubset = on_doctype;
  sax->entityDecl = on_entity_decl;
  sax->getEntity = on_get_entity;
  sax->getParameterEntity = on_get_entity;
  sax->serror = on_xml_error;
}

static void reader_clear(AsapReader *asap)
{
  if (asap->shape && asap->shape != asap->annotation)
    annotation_free(asap->shape);
  g_clear_pointer(&asap->annotation, annotation_free);
  g_clear_pointer(&asap->group, annot_group_free);
  if (asap->attributes)
    g_string_free(asap->attributes, TRUE);
  g_array_unref(asap->points);
}

static bool parse(AsapReader *asap, GError **error)
{
  int ret = xmlParseDocument(asap->ctxt);

  if (asap->error) {
    g_propagate_error(error, g_steal_pointer(&asap->error));
    return false;
  }
  if (ret != 0 || !asap->ctxt->wellFormed) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE,
                "XML does not parse, line %d", current_line(asap));
    return false;
  }
  return true;
}

AnnotSet *annot_read_asap(const char *data, gsize length, GError **error)
{
  init_libxml();
  if (length > G_MAXINT) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_TOO_LARGE,
                "ASAP XML of %" G_GSIZE_FORMAT " bytes is too large", length);
    return NULL;
  }
  if (length == 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE,
                "XML does not parse: empty document");
    return NULL;
  }

  g_autoptr(xmlParserCtxt) ctxt = xmlCreateMemoryParserCtxt(data,
                                                            (int) length);
  if (ctxt == NULL) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INTERNAL,
                "libxml2 cannot make a parser");
    return NULL;
  }

  /* No network, no DTD, no entity substitution; our callbacks only. */
  xmlCtxtUseOptions(ctxt, XML_PARSE_NONET);
  set_handlers(ctxt->sax);
  g_autoptr(AnnotSet) set = annot_set_new();
  AsapReader asap = { .ctxt = ctxt, .set = set };
  asap.points = g_array_new(FALSE, FALSE, sizeof(OrderedPoint));
  ctxt->userData = &asap;

  bool ok = parse(&asap, error);
  reader_clear(&asap);
  return ok ? g_steal_pointer(&set) : NULL;
}
