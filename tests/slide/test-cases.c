/* test-cases.c: registration of one file per case folder,
 * tests/cases/slide-<condition>/case.ini:
 *
 *   slide=       the file under the shared test data
 *   name=        the name it is registered under (default: its own)
 *   annotation=  an ASAP file put beside it as <stem>.xml (optional)
 *   outcome=     new or skipped
 *   detail=      text the reason for a skip contains
 *   id, vendor, width, height, levels: what a registered slide shows
 */
#include "annot/version.h"
#include "common/aapi-error.h"
#include "slide/slide.h"
#include "testutil.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  SlideRegisterOutcome outcome;
  char *detail;
} Seen;

static void record(const char *path, SlideRegisterOutcome outcome,
                   const char *slide_id, const char *detail,
                   gpointer user_data)
{
  Seen *seen = user_data;

  seen->outcome = outcome;
  g_free(seen->detail);
  seen->detail = g_strdup(detail);
}

/* A slides folder holding the case's file (and annotation) by symlink. */
static char *make_folder(GKeyFile *ini, const char *data_dir,
                         char **slide_path)
{
  g_autofree char *slide = g_key_file_get_string(ini, "case", "slide",
                                                 NULL);
  g_autofree char *source = test_shared_path(slide);
  g_autofree char *name = g_key_file_get_string(ini, "case", "name", NULL);
  g_autofree char *annotation = g_key_file_get_string(ini, "case",
                                                      "annotation", NULL);
  char *folder = g_build_filename(data_dir, "slides", NULL);

  if (source == NULL)
    return NULL;
  g_assert_cmpint(g_mkdir(folder, 0755), ==, 0);
  if (name == NULL)
    name = g_path_get_basename(source);
  *slide_path = g_build_filename(folder, name, NULL);
  g_assert_cmpint(symlink(source, *slide_path), ==, 0);
  if (annotation) {
    g_autofree char *xml_source = test_shared_path(annotation);
    g_autofree char *stem = g_strndup(name, strrchr(name, '.') - name);
    g_autofree char *xml = g_strconcat(folder, "/", stem, ".xml", NULL);
    g_assert_nonnull(xml_source);
    g_assert_cmpint(symlink(xml_source, xml), ==, 0);
  }
  return folder;
}

static void check_slide(GKeyFile *ini, const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Slide) slide = slide_open(path, &error);
  g_autofree char *vendor = g_key_file_get_string(ini, "case", "vendor",
                                                  NULL);

  g_assert_no_error(error);
  const SlideInfo *info = slide_get_info(slide);
  if (vendor)
    g_assert_cmpstr(info->vendor, ==, vendor);
  g_assert_cmpint(info->width, ==,
                  g_key_file_get_int64(ini, "case", "width", NULL));
  g_assert_cmpint(info->height, ==,
                  g_key_file_get_int64(ini, "case", "height", NULL));
  g_assert_cmpint(info->level_count, ==,
                  g_key_file_get_integer(ini, "case", "levels", NULL));
}

static void check_registered(GKeyFile *ini, AapiStore *store,
                             const char *path, bool annotated)
{
  g_autofree char *id = g_key_file_get_string(ini, "case", "id", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(StoreSlide) row = store_slide_get(store, id, &error);
  g_autofree char *name = g_path_get_basename(path);

  g_assert_no_error(error);
  g_assert_cmpstr(row->slide_name, ==, name);
  g_assert_cmpstr(row->slide_path, ==, path);
  check_slide(ini, path);

  g_autoptr(GPtrArray) versions = store_version_list(store, id, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(versions->len, ==, annotated ? 1 : 0);
}

static void run_case(gconstpointer data)
{
  const char *case_dir = data;
  g_autofree char *ini_path = g_build_filename(case_dir, "case.ini", NULL);
  g_autoptr(GKeyFile) ini = g_key_file_new();
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = test_make_tmpdir("slide-case");
  g_autofree char *path = NULL;

  g_assert_true(g_key_file_load_from_file(ini, ini_path, 0, &error));
  g_autofree char *folder = make_folder(ini, dir, &path);
  if (folder == NULL)
    return;

  g_setenv("AAPI_DATA_DIR", dir, TRUE);
  g_autoptr(AapiConfig) config = aapi_config_new_from_env(&error);
  g_autofree char *url = g_strdup_printf("sqlite://%s/aapi.db", dir);
  g_autoptr(AapiStore) store = store_open(url, &error);
  g_assert_no_error(error);

  Seen seen = { 0 };
  SlideRegisterCallbacks callbacks = { record, NULL, &seen };
  SlideRegisterSummary summary;
  g_assert_true(slide_register_dir_full(config, store, folder, &callbacks,
                                        &summary, &error));
  g_assert_no_error(error);

  g_autofree char *outcome = g_key_file_get_string(ini, "case", "outcome",
                                                   NULL);
  if (g_strcmp0(outcome, "skipped") == 0) {
    g_autofree char *detail = g_key_file_get_string(ini, "case", "detail",
                                                    NULL);
    g_assert_cmpint(seen.outcome, ==, SLIDE_REGISTER_SKIPPED);
    g_assert_nonnull(strstr(seen.detail, detail));
    g_assert_cmpuint(summary.n_skipped, ==, 1);
  } else {
    bool annotated = g_key_file_has_key(ini, "case", "annotation", NULL);
    g_assert_cmpstr(outcome, ==, "new");
    g_assert_cmpint(seen.outcome, ==, SLIDE_REGISTER_NEW);
    g_assert_cmpuint(summary.n_annotations, ==, annotated ? 1 : 0);
    check_registered(ini, store, path, annotated);
  }
  g_free(seen.detail);
}

static gint compare_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(char *const *) a, *(char *const *) b);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  /* libtiff warns about odd tags in real slides; that is not a failure. */
  g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  g_assert_true(slide_init_libs(NULL));

  g_autofree char *cases = g_test_build_filename(G_TEST_DIST, "cases",
                                                 NULL);
  g_autoptr(GDir) dir = g_dir_open(cases, 0, NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  const char *name;
  while (dir && (name = g_dir_read_name(dir)) != NULL)
    if (g_str_has_prefix(name, "slide-"))
      g_ptr_array_add(names, g_strdup(name));
  g_ptr_array_sort(names, compare_names);
  g_assert_cmpuint(names->len, >, 0);

  for (guint i = 0; i < names->len; i++) {
    g_autofree char *test = g_strdup_printf("/cases/%s",
                                            (char *) names->pdata[i]);
    g_test_add_data_func_full(test, g_build_filename(cases,
                                                     names->pdata[i],
                                                     NULL),
                              run_case, g_free);
  }
  return g_test_run();
}
