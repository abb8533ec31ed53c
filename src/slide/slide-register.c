/*
 * slide-register.c: registration of a folder of slides: id (MD5 of the
 * bytes), Slides row, initial annotation copied and recorded as the first
 * version.  Running it again changes nothing.
 */
#include "slide/slide-private.h"

#include "annot/version.h"
#include "common/aapi-error.h"
#include "common/log.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

/* The columns of the old Slides table (VARCHAR characters). */
#define MAX_NAME_CHARS 100
#define MAX_PATH_CHARS 300

/* Initial annotations larger than this are not copied (they would not be
 * accepted as a version either). */
#define MAX_INITIAL_XML (512 * 1024 * 1024)

/* Extensions of the formats OpenSlide reads; a file with one of them that
 * does not open is reported, any other file that does not open is not a
 * slide and is passed over quietly. */
static const char *const slide_extensions[] = {
  "svs", "tif", "tiff", "ndpi", "vms", "vmu", "scn", "mrxs", "svslide",
  "bif", "dcm", NULL,
};

typedef struct {
  const AapiConfig *config;
  AapiStore *store;
  const SlideRegisterCallbacks *callbacks;
  SlideRegisterSummary *summary;
  GHashTable *seen_ids;   /* ids registered in this run -> path */
} RegisterRun;

bool slide_name_is_slide_like(const char *name)
{
  const char *dot = strrchr(name, '.');

  if (dot == NULL)
    return false;
  for (guint i = 0; slide_extensions[i]; i++)
    if (g_ascii_strcasecmp(dot + 1, slide_extensions[i]) == 0)
      return true;
  return false;
}

static void report(RegisterRun *run, const char *path,
                   SlideRegisterOutcome outcome, const char *slide_id,
                   const char *detail)
{
  if (run->callbacks && run->callbacks->file_done)
    run->callbacks->file_done(path, outcome, slide_id, detail,
                              run->callbacks->user_data);
  else if (outcome == SLIDE_REGISTER_SKIPPED)
    g_warning("skipping %s: %s", path, detail);
}

/* Opens the slide and decodes a small region of its smallest level, since
 * some files open but fail on their pixels. */
static bool check_readable(const char *path, GError **error)
{
  g_autoptr(Slide) slide = slide_open(path, error);

  if (slide == NULL)
    return false;

  const SlideInfo *info = slide_get_info(slide);
  gint32 level = info->level_count - 1;
  gint64 w = MIN(64, info->level_width[level]);
  gint64 h = MIN(64, info->level_height[level]);
  g_autofree guint8 *rgb = g_malloc((gsize) (w * h * 3));

  return slide_read_region_rgb(slide, info->bounds_x, info->bounds_y,
                               level, w, h, rgb, error);
}

/* The Slides table's columns bound the name and the path. */
static bool check_names(const char *path, const char *name, GError **error)
{
  if (!g_utf8_validate(path, -1, NULL)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "the file name is not UTF-8");
    return false;
  }
  if (g_utf8_strlen(name, -1) > MAX_NAME_CHARS ||
      g_utf8_strlen(path, -1) > MAX_PATH_CHARS) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "name over %d or path over %d characters", MAX_NAME_CHARS,
                MAX_PATH_CHARS);
    return false;
  }
  return true;
}

/* Inserts or updates the row; says which it was. */
static bool put_row(RegisterRun *run, const char *slide_id,
                    const char *name, const char *path,
                    SlideRegisterOutcome *outcome, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(StoreSlide) old = store_slide_get(run->store, slide_id, &local);

  if (old == NULL && !g_error_matches(local, AAPI_ERROR,
                                      AAPI_ERROR_NOT_FOUND)) {
    g_propagate_error(error, g_steal_pointer(&local));
    return false;
  }
  if (old && g_strcmp0(old->slide_name, name) == 0 &&
      g_strcmp0(old->slide_path, path) == 0) {
    *outcome = SLIDE_REGISTER_UNCHANGED;
    return true;
  }

  StoreSlide row = { (char *) slide_id, (char *) name, (char *) path };
  *outcome = old ? SLIDE_REGISTER_UPDATED : SLIDE_REGISTER_NEW;
  return store_slide_put(run->store, &row, error);
}

/* <dir>/<stem>.xml for <dir>/<stem>.<ext>, or NULL when there is none. */
static char *find_initial_xml(const char *path)
{
  g_autofree char *stem = g_strdup(path);
  char *dot = strrchr(stem, '.');
  char *slash = strrchr(stem, G_DIR_SEPARATOR);

  if (dot && (slash == NULL || dot > slash))
    *dot = '\0';
  char *xml = g_strconcat(stem, ".xml", NULL);
  if (g_file_test(xml, G_FILE_TEST_IS_REGULAR))
    return xml;
  g_free(xml);
  return NULL;
}

/* Copies the XML to its place unless a copy is there already: a stored
 * initial annotation is never overwritten. */
static bool copy_initial(const char *xml, const char *dest, bool *copied,
                         GError **error)
{
  g_autofree char *contents = NULL;
  gsize length;
  GStatBuf st;

  *copied = false;
  if (g_file_test(dest, G_FILE_TEST_EXISTS))
    return true;
  if (g_stat(xml, &st) == 0 && st.st_size > MAX_INITIAL_XML) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_TOO_LARGE,
                "%s is over %d MiB", xml, MAX_INITIAL_XML >> 20);
    return false;
  }
  if (!g_file_get_contents(xml, &contents, &length, error))
    return false;

  g_autofree char *folder = g_path_get_dirname(dest);
  if (g_mkdir_with_parents(folder, 0755) != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "cannot create %s: %s",
                folder, g_strerror(errno));
    return false;
  }
  /* Written to a temporary file and renamed, so a crash leaves no half
   * copy that a later run would take as done. */
  if (!g_file_set_contents(dest, contents, (gssize) length, error))
    return false;
  *copied = true;
  return true;
}

/* Copies <stem>.xml and records it as the slide's first version. */
static bool add_initial_annotation(RegisterRun *run, const char *path,
                                   const char *slide_id, GError **error)
{
  g_autofree char *xml = find_initial_xml(path);

  if (xml == NULL)
    return true;

  g_autofree char *root = aapi_config_annotations_dir(run->config);
  g_autofree char *dest = g_build_filename(root, slide_id,
                                           "initial_annotation.xml", NULL);
  bool copied;

  if (!copy_initial(xml, dest, &copied, error))
    return false;
  if (copied)
    run->summary->n_annotations++;
  return version_add_initial(run->config, run->store, slide_id, dest,
                             error);
}

static void count(SlideRegisterSummary *summary,
                  SlideRegisterOutcome outcome)
{
  switch (outcome) {
  case SLIDE_REGISTER_NEW: summary->n_new++; break;
  case SLIDE_REGISTER_UPDATED: summary->n_updated++; break;
  case SLIDE_REGISTER_UNCHANGED: summary->n_unchanged++; break;
  case SLIDE_REGISTER_DUPLICATE: summary->n_duplicate++; break;
  case SLIDE_REGISTER_SKIPPED: summary->n_skipped++; break;
  }
}

/* A readable slide whose id is known: row, annotation, report.  Only a
 * store failure is an error; a bad annotation is reported with the slide. */
static bool register_known(RegisterRun *run, const char *path,
                           const char *slide_id, GError **error)
{
  g_autofree char *name = g_path_get_basename(path);
  SlideRegisterOutcome outcome;
  g_autoptr(GError) annot_error = NULL;

  if (!put_row(run, slide_id, name, path, &outcome, error))
    return false;
  g_hash_table_insert(run->seen_ids, g_strdup(slide_id), g_strdup(path));
  if (!add_initial_annotation(run, path, slide_id, &annot_error))
    g_warning("%s: initial annotation not recorded: %s", path,
              annot_error->message);
  count(run->summary, outcome);
  report(run, path, outcome, slide_id,
         annot_error ? annot_error->message : NULL);
  return true;
}

static bool register_one(RegisterRun *run, const char *path,
                         GError **error)
{
  g_autofree char *name = g_path_get_basename(path);
  g_autoptr(GError) bad = NULL;
  g_autofree char *slide_id = NULL;

  if (check_names(path, name, &bad) && check_readable(path, &bad))
    slide_id = run->callbacks
                   ? slide_file_md5(path, run->callbacks->md5_progress,
                                    run->callbacks->user_data, &bad)
                   : slide_file_md5(path, NULL, NULL, &bad);
  if (slide_id == NULL) {
    count(run->summary, SLIDE_REGISTER_SKIPPED);
    report(run, path, SLIDE_REGISTER_SKIPPED, NULL, bad->message);
    return true;
  }

  const char *first = g_hash_table_lookup(run->seen_ids, slide_id);
  if (first) {
    g_autofree char *detail = g_strdup_printf("same bytes as %s", first);
    count(run->summary, SLIDE_REGISTER_DUPLICATE);
    report(run, path, SLIDE_REGISTER_DUPLICATE, slide_id, detail);
    return true;
  }
  return register_known(run, path, slide_id, error);
}

static void run_init(RegisterRun *run, const AapiConfig *config,
                     AapiStore *store,
                     const SlideRegisterCallbacks *callbacks,
                     SlideRegisterSummary *summary)
{
  memset(summary, 0, sizeof *summary);
  run->config = config;
  run->store = store;
  run->callbacks = callbacks;
  run->summary = summary;
  run->seen_ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        g_free);
}

bool slide_register_file(const AapiConfig *config, AapiStore *store,
                         const char *path,
                         const SlideRegisterCallbacks *callbacks,
                         SlideRegisterSummary *summary, GError **error)
{
  RegisterRun run;
  SlideRegisterSummary local;
  g_autofree char *absolute = g_canonicalize_filename(path, NULL);

  run_init(&run, config, store, callbacks, summary ? summary : &local);
  bool ok = register_one(&run, absolute, error);
  g_hash_table_destroy(run.seen_ids);
  if (ok && run.summary->n_skipped > 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_SLIDE,
                "%s is not a readable slide", absolute);
    return false;
  }
  return ok;
}

/* Whether a folder entry is a candidate: a regular file (symlinks
 * followed), not hidden, not an annotation, and either slide-like by name
 * or recognised by OpenSlide. */
static bool is_candidate(const char *path, const char *name)
{
  if (name[0] == '.' || !g_file_test(path, G_FILE_TEST_IS_REGULAR))
    return false;
  if (g_str_has_suffix(name, ".xml") || g_str_has_suffix(name, ".XML"))
    return false;
  return slide_name_is_slide_like(name) ||
         openslide_detect_vendor(path) != NULL;
}

static gint compare_paths(gconstpointer a, gconstpointer b)
{
  return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The folder's candidate files, absolute, sorted so that every run visits
 * them in the same order (which decides which of two equal files wins). */
static GPtrArray *list_candidates(const char *dir, GError **error)
{
  g_autoptr(GDir) folder = g_dir_open(dir, 0, error);

  if (folder == NULL)
    return NULL;

  GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);
  const char *name;
  while ((name = g_dir_read_name(folder)) != NULL) {
    char *path = g_build_filename(dir, name, NULL);
    if (is_candidate(path, name))
      g_ptr_array_add(paths, path);
    else
      g_free(path);
  }
  g_ptr_array_sort(paths, compare_paths);
  return paths;
}

bool slide_register_dir_full(const AapiConfig *config, AapiStore *store,
                             const char *dir,
                             const SlideRegisterCallbacks *callbacks,
                             SlideRegisterSummary *summary, GError **error)
{
  g_autofree char *absolute = g_canonicalize_filename(dir, NULL);
  SlideRegisterSummary local;
  RegisterRun run;
  bool ok = true;

  if (summary)
    memset(summary, 0, sizeof *summary);
  if (!g_file_test(absolute, G_FILE_TEST_IS_DIR)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
                "%s is not a folder", absolute);
    return false;
  }

  g_autoptr(GPtrArray) paths = list_candidates(absolute, error);
  if (paths == NULL)
    return false;
  run_init(&run, config, store, callbacks, summary ? summary : &local);
  for (guint i = 0; ok && i < paths->len; i++)
    ok = register_one(&run, paths->pdata[i], error);
  g_hash_table_destroy(run.seen_ids);
  return ok;
}

bool slide_register_dir(const AapiConfig *config, AapiStore *store,
                        const char *dir, guint *n_registered,
                        guint *n_skipped, GError **error)
{
  SlideRegisterSummary summary;
  bool ok = slide_register_dir_full(config, store, dir, NULL, &summary,
                                    error);

  if (n_registered)
    *n_registered = summary.n_new + summary.n_updated + summary.n_unchanged;
  if (n_skipped)
    *n_skipped = summary.n_skipped;
  return ok;
}
