/*
 * infer-verdict.c: a served model's probe verdicts on disk.
 *
 * The file is a GKeyFile with two groups: [model], what the verdicts
 * depend on, compared key by key with what holds now; and [verdict], the
 * decisions with the IoU each was taken at and the int8 calibration.
 * Writes replace the whole file atomically, so a reader sees an old or a
 * new file, never half of one.
 */
#include "infer/infer-engine-private.h"

#include "common/aapi-error.h"
#include "common/file-read.h"
#include "common/log.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <string.h>

/* Changes whenever the meaning of a key or of a probe changes. */
#define INFER_VERDICT_FORMAT 1

#define GROUP_MODEL "model"
#define GROUP_VERDICT "verdict"

struct InferVerdictFile {
  char *path;          /* <data_dir>/model-checks/<Class>/<version>.ini */
  char *label;         /* "class C, model V", for messages */
  GKeyFile *depends;   /* the [model] group as it must read */
};

/* Names in the file, indexed by INFER_TILING_* and INFER_ARITH_*. */
static const char *const tiling_names[] = { NULL, "fast", "exact" };
static const char *const arith_names[] = { NULL, "f32", "int8" };

void infer_verdict_clear(InferVerdict *verdict)
{
  g_clear_pointer(&verdict->ranges, g_array_unref);
  memset(verdict, 0, sizeof *verdict);
}

void infer_verdict_file_free(InferVerdictFile *file)
{
  if (file == NULL)
    return;
  g_free(file->path);
  g_free(file->label);
  g_key_file_unref(file->depends);
  g_free(file);
}

/*
 * Records the model file's size and MD5: the verdicts belong to these
 * bytes, wherever the file was copied.  MD5 is fast (a depth-5 model
 * hashes in a few milliseconds) and guards only against accidents:
 * whoever can replace a model can replace its verdicts too.
 */
static bool depends_model(GKeyFile *depends, const char *path,
                          GError **error)
{
  gsize size = 0;
  /* Read, not mapped: the file may be copied over meanwhile (SIGBUS). */
  g_autofree char *data = aapi_read_file_capped(
      path, G_GUINT64_CONSTANT(4) << 30, &size, error);

  if (data == NULL)
    return false;
  g_autofree char *md5 = g_compute_checksum_for_data(
      G_CHECKSUM_MD5, (const guchar *) data, size);

  g_key_file_set_uint64(depends, GROUP_MODEL, "model-size", size);
  g_key_file_set_string(depends, GROUP_MODEL, "model-md5", md5);
  return true;
}

/* Records the class's tiling settings and the probe's constants: each
 * changes what a probe measures. */
static void depends_tiling(GKeyFile *depends, const AapiClassInfo *info)
{
  g_key_file_set_double(depends, GROUP_MODEL, "resize", info->resize);
  g_key_file_set_integer(depends, GROUP_MODEL, "patch-size",
                         info->patch_size);
  g_key_file_set_integer(depends, GROUP_MODEL, "stride-size",
                         info->stride_size);
  g_key_file_set_integer(depends, GROUP_MODEL, "mirror-pad-size",
                         info->mirror_pad_size);
  g_key_file_set_double(depends, GROUP_MODEL, "threshold", info->threshold);
  g_key_file_set_integer(depends, GROUP_MODEL, "margin", INFER_MARGIN);
  g_key_file_set_integer(depends, GROUP_MODEL, "max-tile", INFER_MAX_TILE);
  g_key_file_set_integer(depends, GROUP_MODEL, "probe-size",
                         INFER_PROBE_SIZE);
  g_key_file_set_double(depends, GROUP_MODEL, "probe-iou", INFER_PROBE_IOU);
}

InferVerdictFile *infer_verdict_file_new(const AapiConfig *config,
                                         const AapiClassInfo *info,
                                         const char *version)
{
  g_autofree char *dir = infer_class_model_dir(config, info);
  g_autofree char *model = g_build_filename(dir, version, NULL);
  g_autofree char *name = g_strconcat(version, ".ini", NULL);
  g_autoptr(GKeyFile) depends = g_key_file_new();
  g_autoptr(GError) error = NULL;

  /* The format first: a reader of another format stops at it. */
  g_key_file_set_integer(depends, GROUP_MODEL, "format",
                         INFER_VERDICT_FORMAT);
  if (!depends_model(depends, model, &error)) {
    aapi_debug(AAPI_DEBUG_INFER, "class %s, model %s: verdicts kept in "
               "memory only: %s", info->name, version, error->message);
    return NULL;
  }
  depends_tiling(depends, info);

  InferVerdictFile *file = g_new0(InferVerdictFile, 1);

  file->path = g_build_filename(config->data_dir, "model-checks",
                                info->name, name, NULL);
  file->label = g_strdup_printf("class %s, model %s", info->name, version);
  file->depends = g_steal_pointer(&depends);
  return file;
}

/* Whether the file's [model] group says what holds now, key by key. */
static bool depends_match(const InferVerdictFile *file, GKeyFile *kf,
                          GError **error)
{
  g_auto(GStrv) keys = g_key_file_get_keys(file->depends, GROUP_MODEL,
                                           NULL, NULL);

  for (char **key = keys; key && *key; key++) {
    g_autofree char *want = g_key_file_get_value(file->depends,
                                                 GROUP_MODEL, *key, NULL);
    g_autofree char *have = g_key_file_get_value(kf, GROUP_MODEL, *key,
                                                 NULL);

    if (have == NULL) {
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                  "no %s: not a verdict file of format %d", *key,
                  INFER_VERDICT_FORMAT);
      return false;
    }
    if (strcmp(want, have) != 0) {
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                  "stale: %s is %s in the file, %s now", *key, have,
                  want);
      return false;
    }
  }
  return true;
}

/* One decision (key=name, key-iou=number), left UNKNOWN when absent. */
static bool read_choice(GKeyFile *kf, const char *key,
                        const char *const *names, guint n_names,
                        int *choice, double *iou, GError **error)
{
  g_autofree char *iou_key = g_strconcat(key, "-iou", NULL);
  g_autofree char *name = g_key_file_get_string(kf, GROUP_VERDICT, key,
                                                NULL);
  GError *local = NULL;

  if (name == NULL)
    return true;
  for (guint i = 1; i < n_names; i++)
    if (strcmp(name, names[i]) == 0)
      *choice = (int) i;
  *iou = g_key_file_get_double(kf, GROUP_VERDICT, iou_key, &local);
  if (local != NULL) {
    g_propagate_error(error, local);
    return false;
  }
  if (*choice == 0 || !(*iou >= 0 && *iou <= 1)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "%s=%s at %s=%g is not a verdict", key, name, iou_key,
                *iou);
    return false;
  }
  return true;
}

/* The calibration, checked as nn_runner_set_ranges checks it, so that a
 * bad list fails here and never in a prediction. */
static GArray *read_ranges(GKeyFile *kf, GError **error)
{
  gsize n = 0;
  GError *local = NULL;
  g_autofree double *values = g_key_file_get_double_list(
      kf, GROUP_VERDICT, "ranges", &n, &local);
  g_autoptr(GArray) ranges = g_array_sized_new(FALSE, FALSE,
                                               sizeof(float), n);

  if (local != NULL) {
    g_propagate_error(error, local);
    return NULL;
  }
  for (gsize i = 0; i < n; i++) {
    float value = (float) values[i];

    if (!isfinite(values[i]) || fabs(values[i]) > FLT_MAX ||
        (i % 2 == 1 && values[i - 1] > values[i]))
      break;
    g_array_append_val(ranges, value);
  }
  if (n == 0 || n % 2 != 0 || ranges->len != n) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "ranges are not (low, high) pairs of finite numbers");
    return NULL;
  }
  return g_steal_pointer(&ranges);
}

/* The [verdict] group; the calibration is there whenever arith is. */
static bool verdict_read(GKeyFile *kf, InferVerdict *v, GError **error)
{
  if (!read_choice(kf, "tiling", tiling_names,
                   G_N_ELEMENTS(tiling_names), &v->tiling,
                   &v->tiling_iou, error) ||
      !read_choice(kf, "arith", arith_names, G_N_ELEMENTS(arith_names),
                   &v->arith, &v->arith_iou, error))
    return false;
  if (v->arith == INFER_ARITH_UNKNOWN)
    return true;
  v->ranges = read_ranges(kf, error);
  return v->ranges != NULL;
}

/* Says in one line what was read, so the log shows why no probe ran;
 * the verdicts are auto's, which --tiling and --precision override. */
static void log_read(const InferVerdictFile *file, const InferVerdict *v)
{
  g_autoptr(GString) what = g_string_new(NULL);

  if (v->tiling != INFER_TILING_UNKNOWN)
    g_string_append_printf(what, ", %s tiling (IoU %.4f)",
                           tiling_names[v->tiling], v->tiling_iou);
  if (v->arith != INFER_ARITH_UNKNOWN)
    g_string_append_printf(what, ", %s (IoU %.4f)",
                           v->arith == INFER_ARITH_INT8 ? "int8"
                                                        : "float32",
                           v->arith_iou);
  g_message("%s: verdict read from %s%s (used where tiling or precision "
            "is auto)", file->label, file->path, what->str);
}

bool infer_verdict_load(const InferVerdictFile *file, InferVerdict *verdict)
{
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_autoptr(GError) error = NULL;

  /* No file (or no folder) is the first run of a model: nothing to say. */
  if (!g_key_file_load_from_file(kf, file->path, G_KEY_FILE_NONE, &error)) {
    if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT) &&
        !g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR))
      g_warning("%s: ignoring %s: %s; probing again", file->label,
                file->path, error->message);
    return false;
  }
  /* A stale or damaged file is overwritten after the next probe. */
  if (!depends_match(file, kf, &error) ||
      !verdict_read(kf, verdict, &error)) {
    g_warning("%s: ignoring %s: %s; probing again", file->label,
              file->path, error->message);
    infer_verdict_clear(verdict);
    return false;
  }
  log_read(file, verdict);
  return true;
}

/* The [verdict] group of what is decided so far. */
static void verdict_write(GKeyFile *kf, const InferVerdict *v)
{
  if (v->tiling != INFER_TILING_UNKNOWN) {
    g_key_file_set_string(kf, GROUP_VERDICT, "tiling",
                          tiling_names[v->tiling]);
    g_key_file_set_double(kf, GROUP_VERDICT, "tiling-iou", v->tiling_iou);
  }
  if (v->arith == INFER_ARITH_UNKNOWN || v->ranges == NULL)
    return;
  g_autofree double *values = g_new(double, v->ranges->len);

  for (guint i = 0; i < v->ranges->len; i++)
    values[i] = g_array_index(v->ranges, float, i);
  g_key_file_set_string(kf, GROUP_VERDICT, "arith", arith_names[v->arith]);
  g_key_file_set_double(kf, GROUP_VERDICT, "arith-iou", v->arith_iou);
  g_key_file_set_double_list(kf, GROUP_VERDICT, "ranges", values,
                             v->ranges->len);
}

/* The whole file's text: comment, [model], [verdict]. */
static char *verdict_text(const InferVerdictFile *file,
                          const InferVerdict *v, gsize *length)
{
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_auto(GStrv) keys = g_key_file_get_keys(file->depends, GROUP_MODEL,
                                           NULL, NULL);

  for (char **key = keys; key && *key; key++) {
    g_autofree char *value = g_key_file_get_value(file->depends,
                                                  GROUP_MODEL, *key, NULL);

    g_key_file_set_value(kf, GROUP_MODEL, *key, value);
  }
  g_key_file_set_comment(kf, NULL, NULL, " Probe verdicts of one served "
                         "model (aapi); delete to probe again.", NULL);
  verdict_write(kf, v);
  return g_key_file_to_data(kf, length, NULL);
}

bool infer_verdict_save(const InferVerdictFile *file,
                        const InferVerdict *verdict)
{
  g_autofree char *dir = g_path_get_dirname(file->path);
  g_autoptr(GError) error = NULL;
  gsize length = 0;
  g_autofree char *text = verdict_text(file, verdict, &length);

  if (g_mkdir_with_parents(dir, 0755) != 0) {
    int saved = errno;

    g_warning("%s: cannot keep the verdict: %s: %s", file->label, dir,
              g_strerror(saved));
    return false;
  }
  /* Temporary file, fsync, rename: a crash leaves the old or the new. */
  if (!g_file_set_contents_full(file->path, text, (gssize) length,
                                G_FILE_SET_CONTENTS_CONSISTENT |
                                G_FILE_SET_CONTENTS_DURABLE, 0644,
                                &error)) {
    g_warning("%s: cannot keep the verdict: %s", file->label,
              error->message);
    return false;
  }
  return true;
}

void infer_entry_read_verdicts(InferModelEntry *entry,
                               const AapiConfig *config,
                               const AapiClassInfo *info)
{
  entry->verdict_file = infer_verdict_file_new(config, info,
                                               entry->version);
  if (entry->verdict_file == NULL ||
      !infer_verdict_load(entry->verdict_file, &entry->verdict))
    return;
  /* A calibration of another shape of network cannot run this one: the
   * int8 verdict goes, the tiling one stays. */
  guint want = 2 * nn_model_range_count(entry->model);
  if (entry->verdict.ranges && entry->verdict.ranges->len != want) {
    g_warning("%s: ignoring its int8 calibration (%u values, this model "
              "needs %u); probing again", entry->verdict_file->path,
              entry->verdict.ranges->len, want);
    g_clear_pointer(&entry->verdict.ranges, g_array_unref);
    entry->verdict.arith = INFER_ARITH_UNKNOWN;
  }

  /* The entry is not shared yet: plain stores are enough. */
  entry->tiling = entry->verdict.tiling;
  entry->arith = entry->verdict.arith;
  if (entry->verdict.ranges)
    entry->ranges = g_array_ref(entry->verdict.ranges);
}

/* Writes the entry's verdicts; the caller holds verdict_lock, so two
 * workers' writes land in the order their verdicts were taken.  After a
 * failed write the entry keeps its verdicts in memory only: one warning
 * per model is enough. */
static void entry_save_locked(InferModelEntry *entry)
{
  if (entry->verdict_file &&
      !infer_verdict_save(entry->verdict_file, &entry->verdict))
    g_clear_pointer(&entry->verdict_file, infer_verdict_file_free);
}

void infer_entry_note_tiling(InferModelEntry *entry, int tiling,
                             double iou)
{
  g_mutex_lock(&entry->verdict_lock);
  entry->verdict.tiling = tiling;
  entry->verdict.tiling_iou = iou;
  entry_save_locked(entry);
  g_mutex_unlock(&entry->verdict_lock);
}

void infer_entry_note_arith(InferModelEntry *entry, int arith, double iou,
                            GArray *ranges)
{
  g_mutex_lock(&entry->verdict_lock);
  g_clear_pointer(&entry->verdict.ranges, g_array_unref);
  entry->verdict.ranges = g_array_ref(ranges);
  entry->verdict.arith = arith;
  entry->verdict.arith_iou = iou;
  entry_save_locked(entry);
  g_mutex_unlock(&entry->verdict_lock);
}
