/*
 * train-dataset.c: training and validation patches of one class from the
 * newest annotations of every slide, cached per slide.
 *
 * A slide's patches depend only on its newest version, the class and the
 * extractor settings; they are cached in <data>/train-cache/<Class>/ under
 * the slide id with that key inside, so an unchanged slide is not cut
 * again.  Every fifth square (by a hash of slide and position, so the
 * choice is stable across cycles) is held out for validation when the
 * class has no HDF5 validation set.
 *
 * A slide that cannot be read (its file missing, unreadable or not a
 * slide) is left out with a warning: it says nothing about the others.
 */
#include "train-private.h"

#include "annot/version.h"
#include "common/aapi-error.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#define SQUARE_SIZE 3000
#define CACHE_MAGIC "AAPIPATCH3\n"
#define HOLD_OUT_EVERY 5

void train_dataset_free(TrainDataset *dataset)
{
  if (dataset == NULL)
    return;
  train_patches_free(dataset->train);
  train_patches_free(dataset->val);
  g_free(dataset->fingerprint);
  g_free(dataset);
}

static bool held_out(const char *slide_id, const TrainSquare *square)
{
  g_autofree char *key = g_strdup_printf("%s:%" G_GINT64_FORMAT ":%"
                                         G_GINT64_FORMAT, slide_id,
                                         square->x, square->y);
  return g_str_hash(key) % HOLD_OUT_EVERY == 0;
}

static char *cache_key(const StoreVersion *version,
                       const AapiClassInfo *info)
{
  return g_strdup_printf("%s|%s|%s|%g|%d|%d|%d|%d", version->slide_id,
                         version->path_after, info->name, info->resize,
                         info->patch_size, info->stride_size,
                         info->mirror_pad_size, SQUARE_SIZE);
}

static char *cache_path(const AapiConfig *config, const AapiClassInfo *info,
                        const char *slide_id)
{
  g_autofree char *name = g_strdup_printf("%s.patches", slide_id);

  return g_build_filename(config->data_dir, "train-cache", info->name, name,
                          NULL);
}

/* The cache file: magic, key line, then "patch n_train n_val\n", then the
 * train images, train masks, val images, val masks. */
static bool cache_write(const char *path, const char *key,
                        const TrainPatches *train, const TrainPatches *val,
                        GError **error)
{
  g_autoptr(GString) head = g_string_new(CACHE_MAGIC);
  g_string_append_printf(head, "%s\n%d %u %u\n", key, train->patch,
                         train->n, val->n);
  g_autoptr(GByteArray) all = g_byte_array_new();
  g_byte_array_append(all, (guint8 *) head->str, head->len);
  g_byte_array_append(all, train->img->data, train->img->len);
  g_byte_array_append(all, train->mask->data, train->mask->len);
  g_byte_array_append(all, val->img->data, val->img->len);
  g_byte_array_append(all, val->mask->data, val->mask->len);

  g_autofree char *dir = g_path_get_dirname(path);
  if (g_mkdir_with_parents(dir, 0755) != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "%s: %s", dir,
                g_strerror(errno));
    return false;
  }
  return g_file_set_contents(path, (char *) all->data, all->len, error);
}

static bool take_patches(const guint8 **p, const guint8 *end,
                         TrainPatches *patches, guint n)
{
  gsize area = (gsize) patches->patch * patches->patch;
  gsize need = n * area * 4;

  if ((gsize) (end - *p) < need)
    return false;
  for (guint i = 0; i < n; i++)
    train_patches_add(patches, *p + i * area * 3,
                      *p + n * area * 3 + i * area);
  *p += need;
  return true;
}

/* Loads cached patches when the file holds this key; false otherwise. */
static bool cache_read(const char *path, const char *key, int patch,
                       TrainPatches *train, TrainPatches *val)
{
  g_autofree char *data = NULL;
  gsize length = 0;

  if (!g_file_get_contents(path, &data, &length, NULL))
    return false;

  gsize magic = strlen(CACHE_MAGIC), key_len = strlen(key);
  if (length < magic + key_len + 1 ||
      memcmp(data, CACHE_MAGIC, magic) != 0 ||
      memcmp(data + magic, key, key_len) != 0 ||
      data[magic + key_len] != '\n')
    return false;

  const char *counts = data + magic + key_len + 1;
  const char *newline = memchr(counts, '\n', length - (counts - data));
  int file_patch = 0;
  guint n_train = 0, n_val = 0;
  if (newline == NULL ||
      sscanf(counts, "%d %u %u", &file_patch, &n_train, &n_val) != 3 ||
      file_patch != patch)
    return false;

  const guint8 *p = (const guint8 *) newline + 1;
  const guint8 *end = (const guint8 *) data + length;
  return take_patches(&p, end, train, n_train) &&
         take_patches(&p, end, val, n_val) && p == end;
}

static GPtrArray *class_annotations(const AnnotSet *set,
                                    const AapiClassInfo *info)
{
  GPtrArray *matching = g_ptr_array_new();

  for (guint i = 0; i < set->annotations->len; i++) {
    Annotation *a = set->annotations->pdata[i];
    if (a->coords->len >= 3 &&
        train_group_matches_class(a->group, info->name))
      g_ptr_array_add(matching, a);
  }
  return matching;
}

/* Cuts one slide's squares into train and val patches, from its class
 * polygons clipped to the slide. */
static bool cut_slide(Slide *slide, const char *slide_id,
                      const AapiClassInfo *info, GPtrArray *annotations,
                      TrainPatches *train, TrainPatches *val,
                      guint *n_squares, const gint *cancel, GError **error)
{
  const SlideInfo *slide_info = slide_get_info(slide);
  g_autoptr(GPtrArray) clipped = train_clip_annotations(
      annotations, (double) slide_info->width, (double) slide_info->height,
      cancel, error);
  if (clipped == NULL)
    return false;
  g_autoptr(GArray) squares = train_cover_squares(
      clipped, SQUARE_SIZE, slide_info->width, slide_info->height);
  /* Seeded by the slide so that a re-cut gives the same patches. */
  g_autoptr(GRand) rng = g_rand_new_with_seed(g_str_hash(slide_id));

  for (guint i = 0; i < squares->len; i++) {
    TrainSquare *square = &g_array_index(squares, TrainSquare, i);
    TrainPatches *dst = held_out(slide_id, square) ? val : train;
    /* A stopping server should not wait for a whole slide to be cut. */
    if (!train_check_cancel(cancel, error) ||
        !train_extract_square(slide, info, clipped, square, rng, dst,
                              error))
      return false;
  }
  *n_squares += squares->len;
  return true;
}

/* Errors of a slide's own file, as opposed to the store, the data
 * folder, memory or a cancel. */
static bool slide_unusable(const GError *error)
{
  return g_error_matches(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND) ||
         g_error_matches(error, AAPI_ERROR, AAPI_ERROR_IO) ||
         g_error_matches(error, AAPI_ERROR, AAPI_ERROR_SLIDE);
}

/* Opens and cuts one slide; *skipped (with a warning) when its file
 * cannot be read. */
static bool open_and_cut(SlideCache *slides, const char *slide_id,
                         const AapiClassInfo *info, GPtrArray *annotations,
                         TrainPatches *train, TrainPatches *val,
                         guint *n_squares, bool *skipped,
                         const gint *cancel, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(Slide) slide = slide_cache_get(slides, slide_id, &local);

  if (slide && cut_slide(slide, slide_id, info, annotations, train, val,
                         n_squares, cancel, &local))
    return true;
  if (!slide_unusable(local)) {
    g_propagate_error(error, g_steal_pointer(&local));
    return false;
  }
  /* The slide cache's own messages name the slide already. */
  if (strstr(local->message, slide_id))
    g_warning("train: %s: skipping a slide: %s", info->name,
              local->message);
  else
    g_warning("train: %s: skipping slide %s: %s", info->name, slide_id,
              local->message);
  *skipped = true;
  return true;
}

static bool add_slide(const AapiConfig *config, AapiStore *store,
                      SlideCache *slides, const AapiClassInfo *info,
                      const StoreSlide *row, TrainDataset *dataset,
                      GString *fingerprint, const gint *cancel,
                      GError **error)
{
  g_autoptr(StoreVersion) version = NULL;
  g_autoptr(GError) local = NULL;
  g_autoptr(AnnotSet) set = version_load_latest(config, store,
                                                row->slide_id, &version,
                                                &local);
  if (set == NULL) {
    if (g_error_matches(local, AAPI_ERROR, AAPI_ERROR_NOT_FOUND))
      return true;
    g_propagate_error(error, g_steal_pointer(&local));
    return false;
  }
  g_autoptr(GPtrArray) annotations = class_annotations(set, info);
  if (annotations->len == 0)
    return true;

  g_autofree char *key = cache_key(version, info);
  g_autofree char *path = cache_path(config, info, row->slide_id);
  g_autoptr(TrainPatches) train = train_patches_new(info->patch_size);
  g_autoptr(TrainPatches) val = train_patches_new(info->patch_size);
  guint n_squares = 0;

  if (!cache_read(path, key, info->patch_size, train, val)) {
    bool skipped = false;
    g_clear_pointer(&train, train_patches_free);
    g_clear_pointer(&val, train_patches_free);
    train = train_patches_new(info->patch_size);
    val = train_patches_new(info->patch_size);
    if (!open_and_cut(slides, row->slide_id, info, annotations, train, val,
                      &n_squares, &skipped, cancel, error))
      return false;
    if (skipped) {
      dataset->n_skipped++;
      return true;
    }
    if (!cache_write(path, key, train, val, error))
      return false;
    g_message("train: %s: cut %u squares of slide %s: %u train, %u val "
              "patches", info->name, n_squares, row->slide_id, train->n,
              val->n);
  }

  train_patches_append(dataset->train, train);
  train_patches_append(dataset->val, val);
  dataset->n_slides++;
  dataset->n_squares += n_squares;
  g_string_append_printf(fingerprint, "%s;", key);
  return true;
}

/* With too few squares nothing may be held out: then every fifth
 * training patch is, so that validation never sees training data. */
static void split_when_no_val(TrainDataset *dataset)
{
  if (dataset->val->n > 0 || dataset->train->n < 2)
    return;

  TrainPatches *all = dataset->train;
  dataset->train = train_patches_new(all->patch);
  gsize area = (gsize) all->patch * all->patch;
  for (guint i = 0; i < all->n; i++) {
    TrainPatches *dst = i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1
                            ? dataset->val : dataset->train;
    train_patches_add(dst, all->img->data + i * area * 3,
                      all->mask->data + i * area);
  }
  train_patches_free(all);
}

TrainDataset *train_dataset_build(const AapiConfig *config, AapiStore *store,
                                  SlideCache *slides,
                                  const AapiClassInfo *info,
                                  const gint *cancel, GError **error)
{
  g_autoptr(TrainDataset) dataset = g_new0(TrainDataset, 1);
  g_autoptr(GString) fingerprint = g_string_new(NULL);
  g_autoptr(GPtrArray) rows = store_slide_list(store, error);

  if (rows == NULL)
    return NULL;
  dataset->train = train_patches_new(info->patch_size);
  dataset->val = train_patches_new(info->patch_size);
  for (guint i = 0; i < rows->len; i++)
    if (!train_check_cancel(cancel, error) ||
        !add_slide(config, store, slides, info, rows->pdata[i], dataset,
                   fingerprint, cancel, error))
      return NULL;

  TrainPatches *h5 = train_val_load_h5(config, info, error);
  if (h5 == NULL && error && *error)
    return NULL;
  if (h5) {
    /* The held-out squares go back to training; the old set validates. */
    train_patches_append(dataset->train, dataset->val);
    train_patches_free(dataset->val);
    dataset->val = h5;
  } else {
    split_when_no_val(dataset);
  }

  dataset->fingerprint = g_string_free(g_steal_pointer(&fingerprint), FALSE);
  return g_steal_pointer(&dataset);
}
