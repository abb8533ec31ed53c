/* test-asap.c: the ASAP XML reader and writer. */
#include "annot-test-util.h"
#include "annot/annot.h"
#include "common/aapi-error.h"
#include "testutil.h"

#include <string.h>

/* read -> write -> read gives the same content, and writing again gives
 * the same text. */
static void check_round_trip(const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) first = annot_read_asap_file(path, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(first->annotations->len, >, 0);

  g_autoptr(GString) text = annot_write_asap(first);
  g_autoptr(AnnotSet) second = annot_read_asap(text->str, text->len,
                                               &error);
  g_assert_no_error(error);
  g_autofree char *diff = annot_test_diff(first, second);
  if (diff)
    g_error("%s: %s", path, diff);

  g_autoptr(GString) again = annot_write_asap(second);
  g_assert_cmpstr(text->str, ==, again->str);
}

static void round_trip_folder(const char *relative)
{
  g_autofree char *dir_path = test_shared_path(relative);
  if (dir_path == NULL)
    return;

  g_autoptr(GDir) dir = g_dir_open(dir_path, 0, NULL);
  const char *name;
  guint n = 0;
  while ((name = g_dir_read_name(dir))) {
    /* The ImageScope file is another vendor's XML, tested below. */
    if (!g_str_has_suffix(name, ".xml") || strstr(name, "imagescope"))
      continue;
    g_autofree char *path = g_build_filename(dir_path, name, NULL);
    g_test_message("round trip of %s", path);
    check_round_trip(path);
    n++;
  }
  g_assert_cmpuint(n, >, 0);
}

static void test_round_trip_asap(void)
{
  round_trip_folder("data/asap");
}

static void test_round_trip_slides(void)
{
  round_trip_folder("data/slides");
}

static void test_round_trip_annotations(void)
{
  round_trip_folder("data/annotations");
}

/* Every type of the dplabtools file is read with its type and vertices. */
static void test_all_types(void)
{
  g_autofree char *path = test_shared_path(
      "data/annotations/dplabtools__asap1.all-types-incl-Measurement.xml");
  if (path == NULL)
    return;

  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) set = annot_read_asap_file(path, &error);
  g_assert_no_error(error);
  static const AnnotType types[] = { ANNOT_DOT, ANNOT_RECTANGLE,
                                     ANNOT_POLYGON, ANNOT_SPLINE,
                                     ANNOT_MEASUREMENT };
  static const guint sizes[] = { 1, 4, 5, 4, 2 };
  g_assert_cmpuint(set->annotations->len, ==, G_N_ELEMENTS(types));
  for (guint i = 0; i < G_N_ELEMENTS(types); i++) {
    const Annotation *a = set->annotations->pdata[i];
    g_assert_cmpint(a->type, ==, types[i]);
    g_assert_cmpuint(a->coords->len, ==, sizes[i]);
  }
  const Annotation *dot = set->annotations->pdata[0];
  g_assert_cmpfloat(g_array_index(dot->coords, AnnotPoint, 0).x, ==,
                    4803.69434);
  g_assert_cmpstr(dot->color, ==, "#F4FA58");
}

static void test_tumor_039(void)
{
  g_autofree char *path = test_shared_path(
      "data/annotations/pathml-tutorial__annotations__tumor_039.xml");
  if (path == NULL)
    return;

  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) set = annot_read_asap_file(path, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(set->annotations->len, ==, 148);
  g_assert_cmpuint(set->groups->len, >=, 2);
}

static void test_imagescope_refused(void)
{
  g_autofree char *path = test_shared_path(
      "data/annotations/HistoQC__TCGA-EJ-5518-01Z-00-DX1."
      "aperio-imagescope.xml");
  if (path == NULL)
    return;

  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) set = annot_read_asap_file(path, &error);
  g_assert_null(set);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE);
  g_assert_nonnull(strstr(error->message, "not ASAP XML: root element is "
                                          "<Annotations> (Aperio "
                                          "ImageScope?)"));
}

static gint code_from_name(const char *name)
{
  if (strcmp(name, "INVALID") == 0)
    return AAPI_ERROR_INVALID;
  if (strcmp(name, "TOO_LARGE") == 0)
    return AAPI_ERROR_TOO_LARGE;
  return AAPI_ERROR_UNPROCESSABLE;
}

/* Each tests/cases/asap-<condition>/ holds input.xml and error.txt (the
 * code, then a part of the message). */
static void test_refused_cases(void)
{
  g_autoptr(GPtrArray) cases = annot_test_case_names("asap-");
  g_assert_cmpuint(cases->len, >, 0);

  for (guint i = 0; i < cases->len; i++) {
    const char *name = cases->pdata[i];
    gsize length;
    g_autofree char *input = annot_test_case_file(name, "input.xml",
                                                  &length);
    g_autofree char *expected = annot_test_case_file(name, "error.txt",
                                                     NULL);
    g_assert_nonnull(input);
    g_assert_nonnull(expected);
    g_auto(GStrv) lines = g_strsplit(expected, "\n", 3);

    g_autoptr(GError) error = NULL;
    g_autoptr(AnnotSet) set = annot_read_asap(input, length, &error);
    g_test_message("%s: %s", name, error ? error->message : "accepted");
    if (set != NULL)
      g_error("%s: accepted", name);
    g_assert_error(error, AAPI_ERROR, code_from_name(lines[0]));
    if (strstr(error->message, lines[1]) == NULL)
      g_error("%s: message \"%s\" lacks \"%s\"", name, error->message,
              lines[1]);
  }
}

static AnnotSet *read_text(const char *text, GError **error)
{
  return annot_read_asap(text, strlen(text), error);
}

static void test_deep_nesting(void)
{
  g_autoptr(GString) text = g_string_new("<ASAP_Annotations>");
  for (int i = 0; i < 100000; i++)
    g_string_append(text, "<a>");

  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) set = read_text(text->str, &error);
  g_assert_null(set);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE);
  g_assert_nonnull(strstr(error->message, "deeper"));
}

static void test_huge_attribute(void)
{
  g_autoptr(GString) text = g_string_new(
      "<ASAP_Annotations><Annotations><Annotation Name=\"");
  for (int i = 0; i < (1 << 20); i++)
    g_string_append_c(text, 'x');
  g_string_append(text, "\"><Coordinates><Coordinate X=\"1\" Y=\"2\"/>"
                        "</Coordinates></Annotation></Annotations>"
                        "</ASAP_Annotations>");

  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) set = read_text(text->str, &error);
  g_assert_null(set);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE);
  g_assert_nonnull(strstr(error->message, "longer than"));
}

static void test_empty_body(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) set = annot_read_asap("", 0, &error);
  g_assert_null(set);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE);
}

static const char ordered_doc[] =
    "<?xml version=\"1.0\"?>\n"
    "<ASAP_Annotations><Annotations>"
    "<Annotation Name=\"a &amp; &lt;b&gt; &quot;c&quot; &#233;\" "
    "Type=\"Polygon\" PartOfGroup=\"Child\" Color=\"#112233\" "
    "Locked=\"true\">"
    "<Coordinates>"
    "<Coordinate Order=\"2\" X=\"3\" Y=\"30\"/>"
    "<Coordinate Order=\"0\" X=\"1,5\" Y=\"10\"/>"
    "<Coordinate Order=\"1\" X=\" 2.25\" Y=\"-20.125 \"/>"
    "</Coordinates></Annotation></Annotations>"
    "<AnnotationGroups>"
    "<Group Name=\"Parent\" PartOfGroup=\"None\" Color=\"#ffffff\">"
    "<Attributes/></Group>"
    "<Group Name=\"Child\" PartOfGroup=\"Parent\" Color=\"#000000\">"
    "<Attributes><Attribute Name=\"note\" Value=\"x &amp; y\"/>"
    "</Attributes></Group>"
    "</AnnotationGroups></ASAP_Annotations>\n";

/* Order sorts, a decimal comma reads, text and unknown attributes and
 * the group hierarchy survive a round trip. */
static void test_order_and_attributes(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) set = read_text(ordered_doc, &error);
  g_assert_no_error(error);

  const Annotation *a = set->annotations->pdata[0];
  g_assert_cmpstr(a->name, ==, "a & <b> \"c\" \xc3\xa9");
  g_assert_cmpfloat(g_array_index(a->coords, AnnotPoint, 0).x, ==, 1.5);
  g_assert_cmpfloat(g_array_index(a->coords, AnnotPoint, 1).y, ==,
                    -20.125);
  g_assert_cmpfloat(g_array_index(a->coords, AnnotPoint, 2).x, ==, 3);
  g_assert_cmpstr(g_hash_table_lookup(a->extra, "Locked"), ==, "true");

  const AnnotGroup *child = set->groups->pdata[1];
  g_assert_cmpstr(child->group, ==, "Parent");
  g_assert_nonnull(strstr(child->attributes_xml, "x &amp; y"));

  g_autoptr(GString) text = annot_write_asap(set);
  g_autoptr(AnnotSet) again = read_text(text->str, &error);
  g_assert_no_error(error);
  g_autofree char *diff = annot_test_diff(set, again);
  g_assert_null(diff);
}

/* Random doubles, holes and parts come back exactly. */
static void test_exact_numbers_holes_parts(void)
{
  g_autoptr(AnnotSet) set = annot_set_new();
  Annotation *a = annotation_new("shape", ANNOT_POLYGON, "None", "#ff0000");

  for (int i = 0; i < 2000; i++) {
    AnnotPoint p = { g_test_rand_double_range(-1e6, 1e7),
                     g_test_rand_double_range(0, 1e5) };
    if (i % 3 == 0)
      p.x = (double) g_test_rand_int_range(0, 100000);
    g_array_append_val(a->coords, p);
  }
  a->holes = g_ptr_array_new_with_free_func((GDestroyNotify) g_array_unref);
  g_ptr_array_add(a->holes, g_array_ref(a->coords));
  a->parts = g_ptr_array_new_with_free_func((GDestroyNotify) annotation_free);
  g_ptr_array_add(a->parts, annotation_copy(a));
  g_ptr_array_add(set->annotations, a);

  g_autoptr(GString) text = annot_write_asap(set);
  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) again = read_text(text->str, &error);

  /* Scripts that collect every <Coordinate> see the outer ring only. */
  guint n_coordinate = 0;
  for (const char *p = text->str; (p = strstr(p, "<Coordinate ")); p++)
    n_coordinate++;
  g_assert_cmpuint(n_coordinate, ==, 2000);
  g_assert_no_error(error);
  g_autofree char *diff = annot_test_diff(set, again);
  g_assert_null(diff);
}

/* Random damage to a document gives a set or an error, never a crash. */
static void test_mutations(void)
{
  gsize length = strlen(ordered_doc);
  static const char alphabet[] = "<>&;\"'=/ !?[]#x0-.,\n";

  for (int i = 0; i < 3000; i++) {
    g_autofree char *text = g_strdup(ordered_doc);
    int n = g_test_rand_int_range(1, 6);
    for (int j = 0; j < n; j++)
      text[g_test_rand_int_range(0, (gint32) length)] =
          alphabet[g_test_rand_int_range(0, sizeof(alphabet) - 1)];
    gsize cut = (gsize) g_test_rand_int_range(1, (gint32) length + 1);

    g_autoptr(GError) error = NULL;
    g_autoptr(AnnotSet) set = annot_read_asap(text, cut, &error);
    g_assert_true((set == NULL) != (error == NULL));
    if (error)
      g_assert_error(error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE);
  }
}

/* A UTF-16 document (as some Windows tools save) reads like UTF-8. */
static void test_utf16(void)
{
  g_autoptr(GError) error = NULL;
  glong length = 0;
  g_autofree gunichar2 *utf16 = g_utf8_to_utf16(ordered_doc, -1, NULL,
                                                &length, &error);
  g_assert_no_error(error);

  /* A little-endian byte order mark, then the text. */
  g_autofree char *data = g_malloc(2 + 2 * length);
  data[0] = (char) 0xff;
  data[1] = (char) 0xfe;
  for (glong i = 0; i < length; i++) {
    data[2 + 2 * i] = (char) (utf16[i] & 0xff);
    data[3 + 2 * i] = (char) (utf16[i] >> 8);
  }
  g_autoptr(AnnotSet) set = annot_read_any(data, 2 + 2 * length, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(set->annotations->len, ==, 1);
}

static void write_file(const char *path, const char *text)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(g_file_set_contents(path, text, -1, &error));
}

/* The cache gives copies, sees a changed file, and keeps what is put. */
static void test_cache(void)
{
  g_autofree char *dir = test_make_tmpdir("annot-cache-");
  g_autofree char *path = g_build_filename(dir, "v.xml", NULL);
  g_autoptr(GError) error = NULL;

  annot_cache_clear();
  write_file(path, ordered_doc);
  g_autoptr(AnnotSet) first = annot_cache_read_file(path, &error);
  g_assert_no_error(error);
  Annotation *a = first->annotations->pdata[0];
  g_free(a->name);
  a->name = g_strdup("changed by the caller");

  g_autoptr(AnnotSet) second = annot_cache_read_file(path, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(((Annotation *) second->annotations->pdata[0])->name, ==,
                  "a & <b> \"c\" \xc3\xa9");

  /* A file written anew (another size) is read again. */
  write_file(path, "<ASAP_Annotations><Annotations/></ASAP_Annotations>");
  g_autoptr(AnnotSet) third = annot_cache_read_file(path, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(third->annotations->len, ==, 0);

  /* What is put is what is read while the file stays. */
  annot_cache_put(path, second);
  g_autoptr(AnnotSet) fourth = annot_cache_read_file(path, &error);
  g_assert_no_error(error);
  g_autofree char *diff = annot_test_diff(second, fourth);
  g_assert_null(diff);

  g_autofree char *missing = g_build_filename(dir, "none.xml", NULL);
  g_autoptr(AnnotSet) none = annot_cache_read_file(missing, &error);
  g_assert_null(none);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
  annot_cache_clear();
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/asap/round-trip/asap", test_round_trip_asap);
  g_test_add_func("/asap/round-trip/slides", test_round_trip_slides);
  g_test_add_func("/asap/round-trip/annotations",
                  test_round_trip_annotations);
  g_test_add_func("/asap/all-types", test_all_types);
  g_test_add_func("/asap/tumor-039", test_tumor_039);
  g_test_add_func("/asap/imagescope-refused", test_imagescope_refused);
  g_test_add_func("/asap/refused-cases", test_refused_cases);
  g_test_add_func("/asap/deep-nesting", test_deep_nesting);
  g_test_add_func("/asap/huge-attribute", test_huge_attribute);
  g_test_add_func("/asap/empty-body", test_empty_body);
  g_test_add_func("/asap/utf16", test_utf16);
  g_test_add_func("/asap/order-and-attributes", test_order_and_attributes);
  g_test_add_func("/asap/exact-numbers-holes-parts",
                  test_exact_numbers_holes_parts);
  g_test_add_func("/asap/cache", test_cache);
  g_test_add_func("/asap/mutations", test_mutations);
  return g_test_run();
}
