/* test-merge.c: the region merge, data-driven and on real files. */
#include "annot-test-util.h"
#include "annot/annot.h"
#include "common/aapi-error.h"
#include "common/config.h"
#include "testutil.h"

#include <string.h>

static AnnotSet *read_case(const char *name, const char *file)
{
  gsize length;
  g_autofree char *text = annot_test_case_file(name, file, &length);
  g_autoptr(GError) error = NULL;

  g_assert_nonnull(text);
  AnnotSet *set = annot_read_any(text, length, &error);
  g_assert_no_error(error);
  return set;
}

static AnnotBox read_box(const char *name)
{
  g_autofree char *text = annot_test_case_file(name, "box.txt", NULL);
  g_assert_nonnull(text);
  g_auto(GStrv) fields = g_strsplit(g_strstrip(text), " ", 4);
  AnnotBox box;
  double *values[] = { &box.x, &box.y, &box.width, &box.height };

  g_assert_cmpuint(g_strv_length(fields), ==, 4);
  for (int i = 0; i < 4; i++)
    g_assert_true(aapi_parse_double(fields[i], -1e9, 1e9, values[i], NULL));
  return box;
}

/* A list file (one name a line) against the names of the items. */
static void check_names(const char *name, const char *file,
                        GPtrArray *items, gsize name_offset)
{
  g_autofree char *text = annot_test_case_file(name, file, NULL);
  if (text == NULL)
    return;

  g_auto(GStrv) lines = g_strsplit(g_strstrip(text), "\n", -1);
  guint n = *text ? g_strv_length(lines) : 0;
  GString *got = g_string_new(NULL);
  for (guint i = 0; i < items->len; i++) {
    char *item_name = *(char **) ((char *) items->pdata[i] + name_offset);
    g_string_append_printf(got, "%s%s", i ? " " : "", item_name);
  }
  g_autofree char *got_text = g_string_free(got, FALSE);
  g_autofree char *expected = g_strjoinv(" ", lines);
  if (n != items->len || strcmp(got_text, expected) != 0)
    g_error("%s/%s: got [%s], expected [%s]", name, file, got_text,
            expected);
}

/* Each tests/cases/merge-<condition>/ holds old.xml, posted.xml (or
 * posted.geojson), box.txt ("x y width height") and expected-names.txt,
 * optionally expected-groups.txt. */
static void run_case(gconstpointer data)
{
  const char *name = data;
  g_autofree char *geojson = annot_test_case_file(name, "posted.geojson",
                                                  NULL);
  g_autoptr(AnnotSet) old = read_case(name, "old.xml");
  g_autoptr(AnnotSet) posted = read_case(
      name, geojson ? "posted.geojson" : "posted.xml");
  AnnotBox box = read_box(name);

  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) merged = annot_merge_region(old, posted, &box, &error);
  g_assert_no_error(error);
  check_names(name, "expected-names.txt", merged->annotations,
              G_STRUCT_OFFSET(Annotation, name));
  check_names(name, "expected-groups.txt", merged->groups,
              G_STRUCT_OFFSET(AnnotGroup, name));

  /* The merged set writes and reads back unchanged. */
  g_autoptr(GString) text = annot_write_asap(merged);
  g_autoptr(AnnotSet) again = annot_read_asap(text->str, text->len, &error);
  g_assert_no_error(error);
  g_autofree char *diff = annot_test_diff(merged, again);
  g_assert_null(diff);
}

static AnnotSet *read_shared(const char *relative)
{
  g_autofree char *path = test_shared_path(relative);
  g_autoptr(GError) error = NULL;

  if (path == NULL)
    return NULL;
  AnnotSet *set = annot_read_asap_file(path, &error);
  g_assert_no_error(error);
  return set;
}

/* Merging a set with itself keeps every annotation exactly once: each one
 * either intersects the box (taken from posted) or not (kept from old). */
static void check_self_merge(const AnnotSet *set, const AnnotBox *box)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) merged = annot_merge_region(set, set, box, &error);

  g_assert_no_error(error);
  g_assert_cmpuint(merged->annotations->len, ==, set->annotations->len);
  g_assert_cmpuint(merged->groups->len, ==, set->groups->len);
}

/* tumor_039 has self-intersecting polygons; several boxes cut through. */
static void test_tumor_039_self(void)
{
  g_autoptr(AnnotSet) set = read_shared(
      "data/annotations/pathml-tutorial__annotations__tumor_039.xml");
  if (set == NULL)
    return;

  for (int i = 0; i < 20; i++) {
    AnnotBox box = { 40000 + 2000 * i, 100000 + 1500 * i, 5000 + 900 * i,
                     7000 };
    check_self_merge(set, &box);
  }
  AnnotBox whole = ANNOT_BOX_WHOLE;
  check_self_merge(set, &whole);
}

/* Real files against each other: the whole box takes posted as it is. */
static void test_ffpe_whole_box(void)
{
  g_autoptr(AnnotSet) old = read_shared("data/asap/ffpe_003.asap.xml");
  g_autoptr(AnnotSet) posted = read_shared("data/asap/ffpe_004.asap.xml");
  if (old == NULL || posted == NULL)
    return;

  AnnotBox whole = ANNOT_BOX_WHOLE;
  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) merged = annot_merge_region(old, posted, &whole,
                                                  &error);
  g_assert_no_error(error);
  g_assert_cmpuint(merged->annotations->len, ==, posted->annotations->len);
  check_self_merge(old, &(AnnotBox) { 20000, 40000, 20000, 20000 });
}

static gpointer merge_thread(gpointer data)
{
  const AnnotSet *set = data;

  for (int i = 0; i < 5; i++)
    check_self_merge(set, &(AnnotBox) { 50000 + 3000 * i, 110000, 9000,
                                        9000 });
  return NULL;
}

/* Merges in parallel threads each use their own GEOS context. */
static void test_parallel(void)
{
  g_autoptr(AnnotSet) set = read_shared(
      "data/annotations/pathml-tutorial__annotations__tumor_039.xml");
  if (set == NULL)
    return;

  GThread *threads[4];
  for (int i = 0; i < 4; i++)
    threads[i] = g_thread_new("merge", merge_thread, set);
  for (int i = 0; i < 4; i++)
    g_thread_join(threads[i]);
}

/* A posted group of a name the old version has replaces it in place: the
 * colour in the post is what the new version says. */
static void test_posted_group_wins(void)
{
  static const char old_text[] =
      "<ASAP_Annotations><Annotations/><AnnotationGroups>"
      "<Group Name=\"Tumor\" PartOfGroup=\"None\" Color=\"#ff0000\">"
      "<Attributes/></Group>"
      "<Group Name=\"Artery\" PartOfGroup=\"None\" Color=\"#0000ff\">"
      "<Attributes/></Group></AnnotationGroups></ASAP_Annotations>";
  static const char posted_text[] =
      "<ASAP_Annotations><Annotations/><AnnotationGroups>"
      "<Group Name=\"Tumor\" PartOfGroup=\"None\" Color=\"#00ffff\">"
      "<Attributes/></Group>"
      "<Group Name=\"Vein\" PartOfGroup=\"None\" Color=\"#123456\">"
      "<Attributes/></Group></AnnotationGroups></ASAP_Annotations>";
  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) old = annot_read_asap(old_text, strlen(old_text),
                                            &error);
  g_assert_no_error(error);
  g_autoptr(AnnotSet) posted = annot_read_asap(posted_text,
                                               strlen(posted_text), &error);
  g_assert_no_error(error);
  AnnotBox box = { 0, 0, 1e8, 1e8 };
  g_autoptr(AnnotSet) merged = annot_merge_region(old, posted, &box, &error);
  g_assert_no_error(error);

  static const char *const want[][2] = {
    { "Tumor", "#00ffff" }, { "Artery", "#0000ff" }, { "Vein", "#123456" },
  };
  g_assert_cmpuint(merged->groups->len, ==, G_N_ELEMENTS(want));
  for (guint i = 0; i < G_N_ELEMENTS(want); i++) {
    const AnnotGroup *group = merged->groups->pdata[i];
    g_assert_cmpstr(group->name, ==, want[i][0]);
    g_assert_cmpstr(group->color, ==, want[i][1]);
  }
}

static void test_bad_box(void)
{
  g_autoptr(AnnotSet) set = annot_set_new();
  g_autoptr(GError) error = NULL;
  AnnotBox box = { 0, 0, -5, 10 };

  g_assert_null(annot_merge_region(set, set, &box, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);

  /* A box of zero width is a line, still usable. */
  g_clear_error(&error);
  box.width = 0;
  g_autoptr(AnnotSet) merged = annot_merge_region(set, set, &box, &error);
  g_assert_no_error(error);
}

/* An annotation built by hand without coordinates is never in the box
 * and writes without trouble. */
static void test_no_coordinates(void)
{
  g_autoptr(AnnotSet) set = annot_set_new();
  Annotation *bare = g_new0(Annotation, 1);
  bare->name = g_strdup("hand-made");
  g_ptr_array_add(set->annotations, bare);

  AnnotBox whole = ANNOT_BOX_WHOLE;
  g_autoptr(GError) error = NULL;
  g_autoptr(AnnotSet) merged = annot_merge_region(set, set, &whole, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(merged->annotations->len, ==, 1);
  g_autoptr(GString) xml = annot_write_asap(merged);
  g_autoptr(GString) json = annot_write_geojson(merged);
  g_assert_nonnull(strstr(xml->str, "hand-made"));
  g_assert_nonnull(strstr(json->str, "hand-made"));
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);

  g_autoptr(GPtrArray) cases = annot_test_case_names("merge-");
  for (guint i = 0; i < cases->len; i++) {
    g_autofree char *path = g_strdup_printf("/merge/case/%s",
                                            (char *) cases->pdata[i]);
    g_test_add_data_func(path, cases->pdata[i], run_case);
  }
  g_test_add_func("/merge/tumor-039-self", test_tumor_039_self);
  g_test_add_func("/merge/ffpe-whole-box", test_ffpe_whole_box);
  g_test_add_func("/merge/parallel", test_parallel);
  g_test_add_func("/merge/posted-group-wins", test_posted_group_wins);
  g_test_add_func("/merge/bad-box", test_bad_box);
  g_test_add_func("/merge/no-coordinates", test_no_coordinates);
  return g_test_run();
}
