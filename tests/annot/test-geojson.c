/* test-geojson.c: the GeoJSON reader and writer, and format sniffing. */
#include "annot-test-util.h"
#include "annot/annot.h"
#include "common/aapi-error.h"
#include "testutil.h"

#include <string.h>

static AnnotSet *read_shared(const char *relative)
{
  g_autofree char *path = test_shared_path(relative);
  if (path == NULL)
    return NULL;

  g_autofree char *text = NULL;
  gsize length;
  g_autoptr(GError) error = NULL;
  g_assert_true(g_file_get_contents(path, &text, &length, NULL));
  AnnotSet *set = annot_read_any(text, length, &error);
  g_assert_no_error(error);
  return set;
}

/* GeoJSON -> GeoJSON and GeoJSON -> ASAP -> back keep everything. */
static void check_round_trips(const AnnotSet *set)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) json = annot_write_geojson(set);
  g_autoptr(AnnotSet) from_json = annot_read_geojson(json->str, json->len,
                                                     &error);
  g_assert_no_error(error);
  g_autofree char *diff = annot_test_diff(set, from_json);
  if (diff)
    g_error("GeoJSON round trip: %s", diff);

  /* ASAP writes "None" for no group. */
  g_autoptr(AnnotSet) expected = annot_set_copy(set);
  for (guint i = 0; i < expected->annotations->len; i++) {
    Annotation *a = expected->annotations->pdata[i];
    if (a->group == NULL)
      a->group = g_strdup("None");
  }
  g_autoptr(GString) xml = annot_write_asap(set);
  g_autoptr(AnnotSet) from_xml = annot_read_asap(xml->str, xml->len, &error);
  g_assert_no_error(error);
  g_autofree char *diff_xml = annot_test_diff(expected, from_xml);
  if (diff_xml)
    g_error("ASAP round trip: %s", diff_xml);
}

static guint count_holes(const AnnotSet *set)
{
  guint n = 0;

  for (guint i = 0; i < set->annotations->len; i++) {
    const Annotation *a = set->annotations->pdata[i];
    n += a->holes ? a->holes->len : 0;
    for (guint j = 0; a->parts && j < a->parts->len; j++) {
      const Annotation *part = a->parts->pdata[j];
      n += part->holes ? part->holes->len : 0;
    }
  }
  return n;
}

/* QuPath 0.2: a top-level array of features. */
static void test_qupath_02(void)
{
  g_autoptr(AnnotSet) set = read_shared(
      "data/annotations/HistoQC__geojson_example_qupath02.json");
  if (set == NULL)
    return;

  g_assert_cmpuint(set->annotations->len, >, 0);
  const Annotation *first = set->annotations->pdata[0];
  g_assert_nonnull(first->parts);
  g_assert_cmpstr(first->group, ==, "Tumor");
  g_assert_cmpstr(first->color, ==, "#c80000");
  check_round_trips(set);
}

/* QuPath 0.5: a FeatureCollection, named and coloured objects. */
static void test_qupath_05(void)
{
  g_autoptr(AnnotSet) set = read_shared(
      "data/annotations/dlup__qupath05.geojson");
  if (set == NULL)
    return;

  g_assert_cmpuint(set->annotations->len, ==, 3);
  const Annotation *first = set->annotations->pdata[0];
  g_assert_cmpstr(first->name, ==, "UT");
  g_assert_cmpstr(first->color, ==, "#ff0000");
  g_assert_null(first->group);
  check_round_trips(set);
}

static void test_polygon_with_hole(void)
{
  g_autoptr(AnnotSet) set = read_shared(
      "data/annotations/HistoQC__holed.geojson");
  if (set == NULL)
    return;

  g_assert_cmpuint(set->annotations->len, ==, 1);
  g_assert_cmpuint(count_holes(set), >=, 1);
  const Annotation *a = set->annotations->pdata[0];
  /* Rings are kept open: the closing vertex is dropped. */
  g_assert_cmpuint(a->coords->len, ==, 4);
  check_round_trips(set);
}

static void test_bare_multipolygon(void)
{
  g_autoptr(AnnotSet) set = read_shared(
      "data/annotations/qupath__polygon.bare-multipolygon.geojson");
  if (set == NULL)
    return;

  g_assert_cmpuint(set->annotations->len, ==, 1);
  g_assert_cmpuint(count_holes(set), ==, 26);
  check_round_trips(set);
}

static void test_points_and_lines(void)
{
  static const char text[] =
      "{\"type\":\"FeatureCollection\",\"features\":["
      "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\","
      "\"coordinates\":[1.5,2]},\"properties\":{\"name\":\"dot\","
      "\"classification\":{\"name\":\"Tumor\",\"colorRGB\":-65536}}},"
      "{\"type\":\"Feature\",\"geometry\":{\"type\":\"MultiPoint\","
      "\"coordinates\":[[1,2],[3,4]]},\"properties\":{}},"
      "{\"type\":\"Feature\",\"geometry\":{\"type\":\"LineString\","
      "\"coordinates\":[[1,2],[3,4],[5,7]]}}]}";
  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) set = annot_read_geojson(text, strlen(text), &error);
  g_assert_no_error(error);

  g_assert_cmpuint(set->annotations->len, ==, 3);
  const Annotation *dot = set->annotations->pdata[0];
  g_assert_cmpint(dot->type, ==, ANNOT_DOT);
  g_assert_cmpstr(dot->name, ==, "dot");
  g_assert_cmpstr(dot->group, ==, "Tumor");
  g_assert_cmpstr(dot->color, ==, "#ff0000");
  g_assert_cmpint(((Annotation *) set->annotations->pdata[1])->type, ==,
                  ANNOT_POINTSET);
  g_assert_cmpint(((Annotation *) set->annotations->pdata[2])->type, ==,
                  ANNOT_MEASUREMENT);
  check_round_trips(set);
}

/* Names may hold characters XML cannot (U+FFFE, U+FFFF, controls): the
 * ASAP writer drops them, so the stored file stays readable. */
static void test_name_not_for_xml(void)
{
  static const char text[] =
      "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Polygon\","
      "\"coordinates\":[[[0,0],[10,0],[10,10],[0,0]]]},"
      "\"properties\":{\"name\":\"a\\ufffeb\\uffffc\\u0001d\\t\u00e9\","
      "\"classification\":{\"name\":\"G\\ufffe\"}}}";
  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) set = annot_read_geojson(text, strlen(text), &error);
  g_assert_no_error(error);

  g_autoptr(GString) xml = annot_write_asap(set);
  g_autoptr(AnnotSet) back = annot_read_asap(xml->str, xml->len, &error);
  g_assert_no_error(error);
  const Annotation *a = back->annotations->pdata[0];
  g_assert_cmpstr(a->name, ==, "abcd\t\u00e9");
  g_assert_cmpstr(a->group, ==, "G");
}

static void check_refused(const char *text)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) set = annot_read_geojson(text, strlen(text), &error);

  g_test_message("%s -> %s", text, error ? error->message : "accepted");
  g_assert_null(set);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE);
}

static void test_refused(void)
{
  check_refused("{\"type\":\"Feature\"");
  check_refused("[1,2,");
  check_refused("{\"type\":\"Feature\",\"geometry\":null}");
  check_refused("{\"type\":\"Polygon\",\"coordinates\":[]}");
  check_refused("{\"type\":\"Polygon\",\"coordinates\":[[[1,2],[\"a\",3]]]}");
  check_refused("{\"type\":\"Point\",\"coordinates\":[1e400,2]}");
  check_refused("{\"type\":\"Point\",\"coordinates\":[1e300,2]}");
  check_refused("{\"type\":\"Circle\",\"coordinates\":[1,2]}");
  check_refused("{\"type\":\"FeatureCollection\",\"features\":{}}");

  g_autoptr(GString) deep = g_string_new(NULL);
  for (int i = 0; i < 100000; i++)
    g_string_append_c(deep, '[');
  check_refused(deep->str);
}

static void test_sniff(void)
{
  g_assert_cmpint(annot_format_sniff("  <?xml", 7), ==, ANNOT_FORMAT_ASAP);
  g_assert_cmpint(annot_format_sniff("\xef\xbb\xbf<A", 5), ==,
                  ANNOT_FORMAT_ASAP);
  g_assert_cmpint(annot_format_sniff("\n{\"type\"", 8), ==,
                  ANNOT_FORMAT_GEOJSON);
  g_assert_cmpint(annot_format_sniff("[", 1), ==, ANNOT_FORMAT_GEOJSON);
  g_assert_cmpint(annot_format_sniff("hello", 5), ==, ANNOT_FORMAT_UNKNOWN);
  g_assert_cmpint(annot_format_sniff("", 0), ==, ANNOT_FORMAT_UNKNOWN);

  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) set = annot_read_any("hello", 5, &error);
  g_assert_null(set);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_UNPROCESSABLE);

  static const char bom_json[] =
      "\xef\xbb\xbf{\"type\":\"Point\",\"coordinates\":[1,2]}";
  g_clear_error(&error);
  g_autoptr(AnnotSet) point = annot_read_any(bom_json, strlen(bom_json),
                                             &error);
  g_assert_no_error(error);
  g_assert_cmpuint(point->annotations->len, ==, 1);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/geojson/qupath-0.2", test_qupath_02);
  g_test_add_func("/geojson/qupath-0.5", test_qupath_05);
  g_test_add_func("/geojson/polygon-with-hole", test_polygon_with_hole);
  g_test_add_func("/geojson/bare-multipolygon", test_bare_multipolygon);
  g_test_add_func("/geojson/points-and-lines", test_points_and_lines);
  g_test_add_func("/geojson/name-not-for-xml", test_name_not_for_xml);
  g_test_add_func("/geojson/refused", test_refused);
  g_test_add_func("/geojson/sniff", test_sniff);
  return g_test_run();
}
