/* annot-test-util.c: comparing annotation sets in the annot tests. */
#include "annot-test-util.h"

#include <string.h>

static char *diff_points(const char *what, const GArray *a, const GArray *b)
{
  if (a->len != b->len)
    return g_strdup_printf("%s: %u vertices against %u", what, a->len,
                           b->len);
  for (guint i = 0; i < a->len; i++) {
    AnnotPoint p = g_array_index(a, AnnotPoint, i);
    AnnotPoint q = g_array_index(b, AnnotPoint, i);
    if (p.x != q.x || p.y != q.y)
      return g_strdup_printf("%s: vertex %u (%.17g, %.17g) against "
                             "(%.17g, %.17g)", what, i, p.x, p.y, q.x, q.y);
  }
  return NULL;
}

static char *diff_rings(const char *what, const GPtrArray *a,
                        const GPtrArray *b)
{
  guint na = a ? a->len : 0, nb = b ? b->len : 0;

  if (na != nb)
    return g_strdup_printf("%s: %u rings against %u", what, na, nb);
  for (guint i = 0; i < na; i++) {
    char *d = diff_points(what, a->pdata[i], b->pdata[i]);
    if (d)
      return d;
  }
  return NULL;
}

static char *diff_extra(const char *what, GHashTable *a, GHashTable *b)
{
  guint na = a ? g_hash_table_size(a) : 0, nb = b ? g_hash_table_size(b) : 0;

  if (na != nb)
    return g_strdup_printf("%s: %u extra attributes against %u", what, na,
                           nb);
  if (na == 0)
    return NULL;

  GHashTableIter iter;
  gpointer key, value;
  g_hash_table_iter_init(&iter, a);
  while (g_hash_table_iter_next(&iter, &key, &value))
    if (g_strcmp0(value, g_hash_table_lookup(b, key)) != 0)
      return g_strdup_printf("%s: extra %s differs", what,
                             (const char *) key);
  return NULL;
}

static char *diff_strings(const char *what, const char *field,
                          const char *a, const char *b)
{
  if (g_strcmp0(a, b) == 0)
    return NULL;
  return g_strdup_printf("%s: %s \"%s\" against \"%s\"", what, field,
                         a ? a : "(null)", b ? b : "(null)");
}

static char *diff_annotation(const Annotation *a, const Annotation *b)
{
  g_autofree char *what = g_strdup_printf("annotation \"%s\"",
                                          a->name ? a->name : "");
  char *d;

  if ((d = diff_strings(what, "name", a->name, b->name)) ||
      (d = diff_strings(what, "type", a->type_name, b->type_name)) ||
      (d = diff_strings(what, "group", a->group, b->group)) ||
      (d = diff_strings(what, "colour", a->color, b->color)) ||
      (d = diff_points(what, a->coords, b->coords)) ||
      (d = diff_rings(what, a->holes, b->holes)) ||
      (d = diff_extra(what, a->extra, b->extra)))
    return d;
  if (a->type != b->type)
    return g_strdup_printf("%s: type %d against %d", what, a->type, b->type);
  if ((a->parts == NULL) != (b->parts == NULL) ||
      (a->parts && a->parts->len != b->parts->len))
    return g_strdup_printf("%s: parts differ", what);
  for (guint i = 0; a->parts && i < a->parts->len; i++) {
    const Annotation *pa = a->parts->pdata[i], *pb = b->parts->pdata[i];
    if ((d = diff_points(what, pa->coords, pb->coords)) ||
        (d = diff_rings(what, pa->holes, pb->holes)))
      return d;
  }
  return NULL;
}

static char *diff_group(const AnnotGroup *a, const AnnotGroup *b)
{
  g_autofree char *what = g_strdup_printf("group \"%s\"",
                                          a->name ? a->name : "");
  char *d;

  if ((d = diff_strings(what, "name", a->name, b->name)) ||
      (d = diff_strings(what, "parent", a->group, b->group)) ||
      (d = diff_strings(what, "colour", a->color, b->color)) ||
      (d = diff_strings(what, "attributes", a->attributes_xml,
                        b->attributes_xml)) ||
      (d = diff_extra(what, a->extra, b->extra)))
    return d;
  return NULL;
}

char *annot_test_diff(const AnnotSet *a, const AnnotSet *b)
{
  if (a->annotations->len != b->annotations->len)
    return g_strdup_printf("%u annotations against %u",
                           a->annotations->len, b->annotations->len);
  if (a->groups->len != b->groups->len)
    return g_strdup_printf("%u groups against %u", a->groups->len,
                           b->groups->len);
  for (guint i = 0; i < a->annotations->len; i++) {
    char *d = diff_annotation(a->annotations->pdata[i],
                              b->annotations->pdata[i]);
    if (d)
      return d;
  }
  for (guint i = 0; i < a->groups->len; i++) {
    char *d = diff_group(a->groups->pdata[i], b->groups->pdata[i]);
    if (d)
      return d;
  }
  return NULL;
}

char *annot_test_case_file(const char *case_name, const char *file,
                           gsize *length)
{
  g_autofree char *path = g_test_build_filename(G_TEST_DIST, "cases",
                                                case_name, file, NULL);
  char *text = NULL;

  if (!g_file_get_contents(path, &text, length, NULL))
    return NULL;
  return text;
}

static gint compare_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(char *const *) a, *(char *const *) b);
}

GPtrArray *annot_test_case_names(const char *prefix)
{
  g_autofree char *dir_path = g_test_build_filename(G_TEST_DIST, "cases",
                                                    NULL);
  g_autoptr(GDir) dir = g_dir_open(dir_path, 0, NULL);
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  const char *name;

  while (dir && (name = g_dir_read_name(dir)))
    if (g_str_has_prefix(name, prefix))
      g_ptr_array_add(names, g_strdup(name));
  g_ptr_array_sort(names, compare_names);
  return names;
}
