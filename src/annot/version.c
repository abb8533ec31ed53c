/*
 * version.c: a slide's annotation versions, one file and one row each.
 *
 * Every change runs inside the store's slide write: the newest version is
 * read, merged with the post, written to a new file (temporary file, fsync,
 * rename that refuses to replace, fsync of the folder) and recorded, all
 * while the slide's lock is held, so concurrent posts form one chain.
 */
#include "annot/version.h"

#include "common/aapi-error.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define VERSION_PREFIX "updated_at_"
#define TEMP_PREFIX ".tmp-updated_at-"
#define MAX_NAME_TRIES 16

void version_post_result_clear(VersionPostResult *result)
{
  if (result == NULL)
    return;
  g_clear_pointer(&result->version, store_version_free);
  result->n_annotations = 0;
}

/* --- slide ids in paths --- */

static bool is_md5_hex(const char *id)
{
  gsize n = 0;

  for (; id[n]; n++)
    if (!g_ascii_isdigit(id[n]) && !(id[n] >= 'a' && id[n] <= 'f'))
      return false;
  return n == 32;
}

/* A plain file name: no separator, no leading dot, nothing unprintable. */
static bool is_plain_name(const char *id)
{
  if (*id == '\0' || *id == '.' || strlen(id) > 100)
    return false;
  for (const char *c = id; *c; c++)
    if (!g_ascii_isalnum(*c) && *c != '_' && *c != '-' && *c != '.')
      return false;
  return true;
}

/* Only MD5 ids, or plain names the store knows, ever become a folder. */
static bool slide_id_usable(AapiStore *store, const char *slide_id,
                            GError **error)
{
  if (slide_id && is_md5_hex(slide_id))
    return true;
  if (slide_id == NULL || !is_plain_name(slide_id)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "slide id is not a plain name");
    return false;
  }
  g_autoptr(StoreSlide) slide = store_slide_get(store, slide_id, error);
  return slide != NULL;
}

static char *slide_folder(const AapiConfig *config, const char *slide_id)
{
  g_autofree char *root = aapi_config_annotations_dir(config);

  return g_build_filename(root, slide_id, NULL);
}

/* A row's file: the path as recorded, else the file of that name in the
 * slide's folder (rows written with another working folder or data
 * folder, as the old service's may be). */
static char *resolve_path(const AapiConfig *config, const StoreVersion *v)
{
  if (g_file_test(v->path_after, G_FILE_TEST_IS_REGULAR))
    return g_strdup(v->path_after);
  if (!is_md5_hex(v->slide_id) && !is_plain_name(v->slide_id))
    return NULL;
  g_autofree char *base = g_path_get_basename(v->path_after);
  g_autofree char *folder = slide_folder(config, v->slide_id);
  char *path = g_build_filename(folder, base, NULL);
  if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
    return path;
  g_free(path);
  return NULL;
}

/* --- writing a file atomically --- */

static char *unique_name(void)
{
  gint64 now = g_get_real_time();
  g_autoptr(GDateTime) time = g_date_time_new_from_unix_utc(
      now / G_USEC_PER_SEC);
  g_autofree char *stamp = g_date_time_format(time, "%Y-%m-%d_%H-%M-%S");

  /* Microseconds and a random part keep names from one second apart. */
  return g_strdup_printf(VERSION_PREFIX "%s.%06d_%08x", stamp,
                         (int) (now % G_USEC_PER_SEC), g_random_int());
}

static bool write_all(int fd, const char *data, gsize length,
                      GError **error)
{
  while (length > 0) {
    ssize_t n = write(fd, data, length);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "writing: %s",
                  g_strerror(errno));
      return false;
    }
    data += n;
    length -= (gsize) n;
  }
  return true;
}

static bool fsync_folder(const char *folder, GError **error)
{
  int fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0 || fsync(fd) != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "syncing %s: %s", folder,
                g_strerror(errno));
    if (fd >= 0)
      close(fd);
    return false;
  }
  close(fd);
  return true;
}

/* Creates the slide's folder, syncing its parent so that the new entry
 * survives a crash like the files in it. */
static bool make_folder(const char *folder, GError **error)
{
  if (g_file_test(folder, G_FILE_TEST_IS_DIR))
    return true;
  if (g_mkdir_with_parents(folder, 0755) != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "creating %s: %s", folder,
                g_strerror(errno));
    return false;
  }
  g_autofree char *parent = g_path_get_dirname(folder);
  return fsync_folder(parent, error);
}

/* Moves tmp to path unless path exists (rename would replace it). */
static int publish(const char *tmp, const char *path)
{
  if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
    return 0;
  if (errno != EINVAL && errno != ENOSYS)
    return -1;
  /* File systems without RENAME_NOREPLACE: link refuses too. */
  if (link(tmp, path) != 0)
    return -1;
  g_unlink(tmp);
  return 0;
}

static char *publish_unique(const char *folder, const char *tmp,
                            GError **error)
{
  for (int i = 0; i < MAX_NAME_TRIES; i++) {
    g_autofree char *name = unique_name();
    char *path = g_build_filename(folder, name, NULL);
    if (publish(tmp, path) == 0)
      return path;
    int saved = errno;
    g_free(path);
    if (saved != EEXIST) {
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "renaming %s: %s", tmp,
                  g_strerror(saved));
      return NULL;
    }
  }
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "no free version name");
  return NULL;
}

/* Writes data to a new version file in folder; returns its path. */
static char *write_version_file(const char *folder, const char *data,
                                gsize length, GError **error)
{
  g_autofree char *tmp = g_build_filename(folder, TEMP_PREFIX "XXXXXX",
                                          NULL);

  if (!make_folder(folder, error))
    return NULL;
  int fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "creating %s: %s", tmp,
                g_strerror(errno));
    return NULL;
  }

  /* The bytes reach the disk before the name does. */
  bool ok = write_all(fd, data, length, error);
  if (ok && fsync(fd) != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "syncing %s: %s", tmp,
                g_strerror(errno));
    ok = false;
  }
  close(fd);
  char *path = ok ? publish_unique(folder, tmp, error) : NULL;
  if (path == NULL) {
    g_unlink(tmp);
    return NULL;
  }
  if (!fsync_folder(folder, error)) {
    g_unlink(path);
    g_free(path);
    return NULL;
  }
  return path;
}

/* --- reading --- */

/* Through the parsed-file cache: a post usually merges onto the file the
 * previous post just wrote, and a version file never changes in place. */
static AnnotSet *load_path(const char *path, GError **error)
{
  AnnotSet *set = annot_cache_read_file(path, error);

  if (set == NULL)
    aapi_error_prefix(error, "annotation file: ");
  return set;
}

AnnotSet *version_load(const AapiConfig *config, const StoreVersion *version,
                       GError **error)
{
  g_autofree char *path = resolve_path(config, version);

  if (path == NULL) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO,
                "annotation file %s is missing", version->path_after);
    return NULL;
  }
  return load_path(path, error);
}

/* The newest version of a usable slide id, or NULL with the error. */
static StoreVersion *latest_version(AapiStore *store, const char *slide_id,
                                    GError **error)
{
  if (!slide_id_usable(store, slide_id, error))
    return NULL;
  return store_version_latest(store, slide_id, error);
}

AnnotSet *version_load_latest(const AapiConfig *config, AapiStore *store,
                              const char *slide_id, StoreVersion **version_out,
                              GError **error)
{
  g_autoptr(StoreVersion) latest = latest_version(store, slide_id, error);
  if (latest == NULL)
    return NULL;
  AnnotSet *set = version_load(config, latest, error);
  if (set && version_out)
    *version_out = g_steal_pointer(&latest);
  return set;
}

GBytes *version_read_latest_file(const AapiConfig *config, AapiStore *store,
                                 const char *slide_id, GError **error)
{
  char *data;
  gsize length;

  g_autoptr(StoreVersion) latest = latest_version(store, slide_id, error);
  if (latest == NULL)
    return NULL;
  g_autofree char *path = resolve_path(config, latest);
  if (path == NULL || !g_file_get_contents(path, &data, &length, NULL)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO,
                "annotation file %s is missing", latest->path_after);
    return NULL;
  }
  return g_bytes_new_take(data, length);
}

/* --- making a version --- */

/* What a new version is made of: the set to merge (or to take whole
 * when box is NULL) and, for the row, the region. */
typedef struct {
  const AnnotSet *set;
  const AnnotBox *box;
} VersionChange;

static AnnotSet *apply_change(const AapiConfig *config,
                              StoreSlideWrite *write,
                              const StoreVersion *latest,
                              const VersionChange *change, GError **error)
{
  if (change->box == NULL)
    return annot_set_copy(change->set);

  /* Merge onto the newest version, or onto nothing for the first.  A
   * stored file that does not load is the server's trouble, not the
   * client's. */
  g_autoptr(AnnotSet) old = latest ? version_load(config, latest, error)
                                   : annot_set_new();
  if (old == NULL) {
    if (error && *error)
      (*error)->code = AAPI_ERROR_IO;
    aapi_error_prefix(error, "newest version: ");
    return NULL;
  }
  return annot_merge_region(old, change->set, change->box, error);
}

static StoreVersion *new_row(const StoreVersion *latest, char *path,
                             const AnnotBox *box, gint64 count)
{
  StoreVersion *v = g_new0(StoreVersion, 1);

  v->path_before = latest ? g_strdup(latest->path_after) : NULL;
  v->path_after = path;
  v->updated_time = g_get_real_time() / G_USEC_PER_SEC;
  v->annotation_count = count;
  v->has_region = box != NULL;
  if (box) {
    v->region_x = (gint64) llround(box->x);
    v->region_y = (gint64) llround(box->y);
    v->region_width = (gint64) llround(box->width);
    v->region_height = (gint64) llround(box->height);
  }
  return v;
}

/* Writes the file and its row inside the slide's write. */
static bool record_version(const AapiConfig *config, StoreSlideWrite *write,
                           const char *slide_id, const StoreVersion *latest,
                           const AnnotSet *set, const AnnotBox *box,
                           VersionPostResult *result, GError **error)
{
  g_autoptr(GString) xml = annot_write_asap(set);
  g_autofree char *folder = slide_folder(config, slide_id);
  char *path = write_version_file(folder, xml->str, xml->len, error);

  if (path == NULL)
    return false;
  g_autoptr(StoreVersion) row = new_row(latest, path, box,
                                        (gint64) set->annotations->len);
  if (!store_slide_write_insert(write, row, error) ||
      !store_slide_write_commit(write, error)) {
    /* No row, no file: the post leaves nothing behind. */
    g_unlink(path);
    return false;
  }
  annot_cache_put(path, set);
  if (result) {
    result->version = g_steal_pointer(&row);
    result->n_annotations = (gint64) set->annotations->len;
  }
  return true;
}

static bool make_version(const AapiConfig *config, AapiStore *store,
                         const char *slide_id, const VersionChange *change,
                         VersionPostResult *result, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(StoreSlideWrite) write = store_slide_write_begin(store, slide_id,
                                                             error);

  if (write == NULL)
    return false;

  /* The newest version, read while the slide is locked. */
  g_autoptr(StoreVersion) latest = store_slide_write_latest(write, &local);
  if (latest == NULL &&
      !g_error_matches(local, AAPI_ERROR, AAPI_ERROR_NOT_FOUND)) {
    g_propagate_error(error, g_steal_pointer(&local));
    return false;
  }
  g_autoptr(AnnotSet) set = apply_change(config, write, latest, change,
                                         error);
  if (set == NULL)
    return false;
  return record_version(config, write, slide_id, latest, set, change->box,
                        result, error);
}

/* The old table keeps regions in 32-bit INT columns. */
static bool box_usable(const AnnotBox *box, GError **error)
{
  double values[] = { box->x, box->y, box->width, box->height };

  for (guint i = 0; i < G_N_ELEMENTS(values); i++) {
    if (!isfinite(values[i]) || fabs(values[i]) > G_MAXINT32) {
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                  "region value out of range");
      return false;
    }
  }
  if (box->width < 0 || box->height < 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "region width and height must not be negative");
    return false;
  }
  return true;
}

bool version_post(const AapiConfig *config, AapiStore *store,
                  const char *slide_id, const char *body, gsize length,
                  const AnnotBox *box, VersionPostResult *result,
                  GError **error)
{
  AnnotBox whole = ANNOT_BOX_WHOLE;
  VersionChange change = { NULL, box ? box : &whole };

  if (!slide_id_usable(store, slide_id, error) ||
      !box_usable(change.box, error))
    return false;

  /* Parse before locking: a bad body stores nothing and holds no one up. */
  g_autoptr(AnnotSet) posted = annot_read_any(body, length, error);
  if (posted == NULL || !annot_set_check_shapes(posted, error))
    return false;
  change.set = posted;
  return make_version(config, store, slide_id, &change, result, error);
}

bool version_revert(const AapiConfig *config, AapiStore *store,
                    const char *slide_id, gint64 seq,
                    VersionPostResult *result, GError **error)
{
  if (!slide_id_usable(store, slide_id, error))
    return false;
  g_autoptr(StoreVersion) old = store_version_get(store, slide_id, seq,
                                                  error);
  if (old == NULL)
    return false;
  g_autoptr(AnnotSet) set = version_load(config, old, error);
  if (set == NULL)
    return false;

  VersionChange change = { set, NULL };
  return make_version(config, store, slide_id, &change, result, error);
}

bool version_add_initial(const AapiConfig *config, AapiStore *store,
                         const char *slide_id, const char *path,
                         GError **error)
{
  g_autoptr(GError) local = NULL;

  if (!slide_id_usable(store, slide_id, error))
    return false;
  g_autoptr(AnnotSet) set = load_path(path, error);
  if (set == NULL)
    return false;

  g_autoptr(StoreSlideWrite) write = store_slide_write_begin(store, slide_id,
                                                             error);
  if (write == NULL)
    return false;

  /* A slide that has versions keeps them. */
  g_autoptr(StoreVersion) latest = store_slide_write_latest(write, &local);
  if (latest)
    return true;
  if (!g_error_matches(local, AAPI_ERROR, AAPI_ERROR_NOT_FOUND)) {
    g_propagate_error(error, g_steal_pointer(&local));
    return false;
  }
  g_autoptr(StoreVersion) row = new_row(NULL, g_strdup(path), NULL,
                                        (gint64) set->annotations->len);
  return store_slide_write_insert(write, row, error) &&
         store_slide_write_commit(write, error);
}

/* --- reconciliation --- */

typedef struct {
  guint n_removed;
  guint n_bad_rows;
} ReconcileCount;

/* Rows whose file is gone stop counting as versions. */
static bool check_rows(const AapiConfig *config, StoreSlideWrite *write,
                       GPtrArray *rows, GHashTable *names,
                       ReconcileCount *count, GError **error)
{
  for (guint i = 0; i < rows->len; i++) {
    StoreVersion *v = rows->pdata[i];
    g_autofree char *path = resolve_path(config, v);
    g_hash_table_add(names, g_path_get_basename(v->path_after));
    if (path)
      continue;
    g_warning("slide %s: version file %s is missing; dropped from the "
              "order", v->slide_id, v->path_after);
    count->n_bad_rows++;
    if (!store_slide_write_mark_missing(write, v->path_after, error))
      return false;
  }
  return true;
}

/* Version files with no row, and temporary files, are left by a crash. */
static void remove_orphans(const char *folder, GHashTable *names,
                           ReconcileCount *count)
{
  g_autoptr(GDir) dir = g_dir_open(folder, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name(dir))) {
    bool orphan = g_str_has_prefix(name, TEMP_PREFIX) ||
                  (g_str_has_prefix(name, VERSION_PREFIX) &&
                   !g_hash_table_contains(names, name));
    if (!orphan)
      continue;
    g_autofree char *path = g_build_filename(folder, name, NULL);
    if (g_unlink(path) == 0) {
      g_message("removed %s: no version row (left by a crash)", path);
      count->n_removed++;
    }
  }
}

static bool reconcile_slide(const AapiConfig *config, AapiStore *store,
                            const char *slide_id, ReconcileCount *count,
                            GError **error)
{
  g_autoptr(GHashTable) names = g_hash_table_new_full(g_str_hash,
                                                      g_str_equal, g_free,
                                                      NULL);
  g_autofree char *folder = slide_folder(config, slide_id);

  /* The slide's lock keeps a post in flight from looking like a crash. */
  g_autoptr(StoreSlideWrite) write = store_slide_write_begin(store, slide_id,
                                                             error);
  if (write == NULL)
    return false;
  g_autoptr(GPtrArray) rows = store_slide_write_list(write, error);
  if (rows == NULL || !check_rows(config, write, rows, names, count, error))
    return false;
  remove_orphans(folder, names, count);
  return store_slide_write_commit(write, error);
}

bool version_reconcile(const AapiConfig *config, AapiStore *store,
                       guint *n_removed_files, guint *n_bad_rows,
                       GError **error)
{
  ReconcileCount count = { 0, 0 };
  g_autoptr(GPtrArray) slides = store_slide_list(store, error);

  if (slides == NULL)
    return false;
  for (guint i = 0; i < slides->len; i++) {
    StoreSlide *slide = slides->pdata[i];
    /* Ids that cannot be folder names have no files to reconcile. */
    if (!is_md5_hex(slide->slide_id) && !is_plain_name(slide->slide_id))
      continue;
    if (!reconcile_slide(config, store, slide->slide_id, &count, error))
      return false;
  }
  if (n_removed_files)
    *n_removed_files = count.n_removed;
  if (n_bad_rows)
    *n_bad_rows = count.n_bad_rows;
  return true;
}
