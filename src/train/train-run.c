/*
 * train-run.c: one class's training run, from data to the decision.
 *
 * The candidate is always a copy of the served model, so a rejected run
 * never changes what predictions use; a promoted one is written under a
 * hidden name, recorded in the store, then renamed into the model folder
 * (named by its ISO timestamp, so it becomes the newest) and installed
 * into the running engine.
 */
#include "train-private.h"

#include "common/aapi-error.h"

#include <errno.h>
#include <math.h>
#include <glib/gstdio.h>

/* With an engine the rescan comes first, so that a model another process
 * put into the folder since the last timed scan is the one trained on. */
NnModel *train_served_model(const AapiClassInfo *info, InferEngine *engine,
                            char **version)
{
  g_autofree char *dir = NULL;

  if (engine) {
    infer_engine_reload(engine, NULL);
    return infer_engine_get_model(engine, info->name, version);
  }
  dir = g_build_filename(info->model_root, info->name, NULL);
  return infer_load_newest_model(dir, info, version);
}

static StoreTrainRun *run_new(const AapiClassInfo *info)
{
  StoreTrainRun *run = g_new0(StoreTrainRun, 1);

  run->class_name = g_strdup(info->name);
  run->started_time = g_get_real_time() / G_USEC_PER_SEC;
  run->loss = run->f1_before = run->f1_after = NAN;
  return run;
}

static void run_finish(StoreTrainRun *run, const char *decision,
                       const char *detail)
{
  run->finished_time = g_get_real_time() / G_USEC_PER_SEC;
  g_free(run->decision);
  run->decision = g_strdup(decision);
  g_free(run->detail);
  run->detail = g_strdup(detail);
}

static NnModel *bootstrap_model(const AapiConfig *config, GError **error)
{
  NnHparams hp = {
    .in_channels = 3,
    .n_classes = 2,
    .depth = (int) config->bootstrap_depth,
    .wf = (int) config->bootstrap_wf,
    .padding = true,
    .batch_norm = true,
    .up_mode = NN_UP_UPCONV,
  };
  NnModel *model = nn_model_new(&hp, error);

  if (model)
    nn_model_init_random(model, (guint64) g_get_real_time());
  return model;
}

/* Target class indices for the network's output size (centre crop). */
static void make_target(const guint8 *masks, int n, int patch, int oh,
                        int ow, gint64 *target)
{
  int dy = (patch - oh) / 2, dx = (patch - ow) / 2;

  for (int b = 0; b < n; b++) {
    const guint8 *mask = masks + (gsize) b * patch * patch;
    for (int y = 0; y < oh; y++)
      for (int x = 0; x < ow; x++)
        *target++ = mask[(gsize) (y + dy) * patch + x + dx];
  }
}

/* Fine-tunes model in place for the configured epochs; returns the mean
 * loss of the last epoch in *loss. */
static bool fine_tune(TrainContext *context, const AapiClassInfo *info,
                      NnModel *model, const TrainPatches *data,
                      double *loss, GError **error)
{
  const AapiConfig *config = context->config;
  const NnHparams *hp = nn_model_get_hparams(model);
  int patch = data->patch, oh, ow;
  if (!nn_output_size(hp, patch, patch, &oh, &ow, error))
    return false;

  NnAdamParams adam = NN_ADAM_DEFAULTS;
  adam.lr = config->train_lr;
  g_autoptr(NnTrainer) trainer = nn_trainer_new(model, &adam, error);
  if (trainer == NULL)
    return false;

  int batch = (int) config->train_batch;
  guint per_epoch = MIN(data->n, config->train_max_patches);
  guint batches = (per_epoch + batch - 1) / batch;
  gsize area = (gsize) patch * patch;
  g_autofree guint8 *img = g_malloc(batch * area * 3);
  g_autofree guint8 *mask = g_malloc(batch * area);
  g_autofree float *input = g_new(float, batch * area * 3);
  g_autofree gint64 *target = g_new(gint64, (gsize) batch * oh * ow);
  g_autofree guint *order = g_new(guint, data->n);
  g_autoptr(GRand) rng = g_rand_new();

  for (guint i = 0; i < data->n; i++)
    order[i] = i;
  for (guint epoch = 0; epoch < config->train_epochs; epoch++) {
    /* A fresh shuffle each epoch; the first per_epoch patches are used. */
    for (guint i = data->n; i > 1; i--) {
      guint j = (guint) g_rand_int_range(rng, 0, (gint32) i);
      guint t = order[i - 1];
      order[i - 1] = order[j];
      order[j] = t;
    }
    double sum = 0;
    for (guint b = 0; b < batches; b++) {
      if (!train_check_cancel(context->cancel, error))
        return false;
      int n = (int) MIN((guint) batch, per_epoch - b * batch);
      for (int k = 0; k < n; k++) {
        guint src = order[b * batch + k];
        memcpy(img + k * area * 3, data->img->data + src * area * 3,
               area * 3);
        memcpy(mask + k * area, data->mask->data + src * area, area);
        train_augment(img + k * area * 3, mask + k * area, patch, rng);
      }
      train_patches_to_input(img, n, patch, input);
      make_target(mask, n, patch, oh, ow, target);
      float step_loss = 0;
      if (!nn_trainer_step(trainer, input, (const int64_t *) target, n,
                           patch, patch, &step_loss, error))
        return false;
      sum += step_loss;
      if (context->progress)
        train_progress_step(context->progress, epoch + 1,
                            config->train_epochs, b + 1, batches,
                            step_loss);
    }
    *loss = sum / MAX(batches, 1);
    g_message("train: %s: epoch %u/%u, mean loss %.4f", info->name,
              epoch + 1, config->train_epochs, *loss);
  }
  return true;
}

/* The promotion rule: the relative change of F1 must be above the
 * configured floor (-5 % by default).  Without a served model anything
 * trained is promoted. */
static bool should_promote(const AapiConfig *config, double before,
                           double after, GString *detail)
{
  if (isnan(before)) {
    g_string_append_printf(detail, "no served model; F1 %.4f", after);
    return true;
  }
  double change = before > 0 ? (after - before) / before
                             : (after > 0 ? 1.0 : 0.0);
  g_string_append_printf(detail, "F1 %.4f -> %.4f (%+.1f %%, floor %+.1f %%)",
                         before, after, 100 * change,
                         100 * config->promote_min_change);
  return change > config->promote_min_change;
}

static char *model_file_name(void)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc();
  g_autofree char *stamp = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S");

  return g_strdup_printf("%s.%06dZ%s", stamp,
                         g_date_time_get_microsecond(now), NN_MODEL_EXT);
}

/* Promoted models go to the class folder, first under a hidden name that
 * no reader picks up (*staged; the caller renames it into place once the
 * store has it); rejected ones go straight to the rejected/ subfolder,
 * which the engine never reads.  Returns the final path. */
static char *save_candidate(const AapiClassInfo *info, NnModel *model,
                            bool promoted, char **staged, GError **error)
{
  g_autofree char *dir = promoted
      ? g_build_filename(info->model_root, info->name, NULL)
      : g_build_filename(info->model_root, info->name, "rejected", NULL);
  g_autofree char *name = model_file_name();
  g_autofree char *path = g_build_filename(dir, name, NULL);
  g_autofree char *hidden = g_strdup_printf(".%s.tmp", name);
  g_autofree char *write_to = promoted
      ? g_build_filename(dir, hidden, NULL) : g_strdup(path);

  if (g_mkdir_with_parents(dir, 0755) != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "%s: %s", dir,
                g_strerror(errno));
    return NULL;
  }
  if (!nn_model_save(model, write_to, error))
    return NULL;
  if (promoted)
    *staged = g_steal_pointer(&write_to);
  return g_steal_pointer(&path);
}

/* Puts a recorded, staged model in place: from now on it is served. */
static bool unstage(const char *staged, const char *path, GError **error)
{
  if (g_rename(staged, path) != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "renaming %s: %s",
                staged, g_strerror(errno));
    return false;
  }
  return true;
}

static bool record(TrainContext *context, const AapiClassInfo *info,
                   StoreTrainRun *run, bool promoted, GError **error)
{
  if (run->model_path) {
    StoreModel model = {
      .class_name = info->name,
      .path = run->model_path,
      .created_time = run->finished_time,
      .f1 = run->f1_after,
      .promoted = promoted,
    };
    if (!store_model_add(context->store, &model, error))
      return false;
  }
  return store_train_run_add(context->store, run, error);
}

/* Loads the served model, or makes a fresh one when bootstrapping. */
static NnModel *starting_model(TrainContext *context,
                               const AapiClassInfo *info, bool bootstrap,
                               bool *fresh, GError **error)
{
  g_autofree char *version = NULL;
  NnModel *served = train_served_model(info, context->engine, &version);

  *fresh = false;
  if (served || !bootstrap)
    return served;
  *fresh = true;
  return bootstrap_model(context->config, error);
}

static void set_phase(TrainContext *context, const AapiClassInfo *info,
                      const char *phase)
{
  if (context->progress)
    train_progress_set(context->progress, info->name, phase);
}

StoreTrainRun *train_run_class(TrainContext *context,
                               const AapiClassInfo *info, bool bootstrap,
                               GError **error)
{
  g_autoptr(StoreTrainRun) run = run_new(info);
  bool fresh = false;

  set_phase(context, info, "data");
  g_autoptr(NnModel) served = starting_model(context, info, bootstrap,
                                             &fresh, error);
  if (served == NULL && error && *error)
    return NULL;
  if (served == NULL) {
    run_finish(run, "skipped", "no model for this class (train with "
               "--bootstrap to start one from scratch)");
    return record(context, info, run, false, error) ? g_steal_pointer(&run)
                                                    : NULL;
  }

  g_autoptr(TrainDataset) data = train_dataset_build(
      context->config, context->store, context->slides, info,
      context->cancel, error);
  if (data == NULL)
    return NULL;
  run->n_train = data->train->n;
  run->n_val = data->val->n;
  if (data->train->n == 0 || data->val->n == 0) {
    g_autofree char *detail = g_strdup_printf(
        "no annotated patches of this class%s", data->n_skipped
            ? " (slides whose file cannot be read were left out; see "
              "the log)" : "");
    run_finish(run, "skipped", detail);
    return record(context, info, run, false, error) ? g_steal_pointer(&run)
                                                    : NULL;
  }

  set_phase(context, info, "validate");
  if (!fresh && !train_eval_f1(served, data->val, &run->f1_before, error))
    return NULL;

  set_phase(context, info, "train");
  g_autoptr(NnModel) candidate = fresh ? nn_model_ref(served)
                                       : nn_model_copy(served);
  if (!fine_tune(context, info, candidate, data->train, &run->loss, error))
    return NULL;
  run->epochs = context->config->train_epochs;

  set_phase(context, info, "validate");
  if (!train_eval_f1(candidate, data->val, &run->f1_after, error))
    return NULL;

  set_phase(context, info, "save");
  g_autoptr(GString) detail = g_string_new(NULL);
  bool promoted = should_promote(context->config, run->f1_before,
                                 run->f1_after, detail);
  g_autofree char *staged = NULL;
  run->model_path = save_candidate(info, candidate, promoted, &staged,
                                   error);
  if (run->model_path == NULL)
    return NULL;
  run_finish(run, promoted ? "promoted" : "rejected", detail->str);
  if (!record(context, info, run, promoted, error)) {
    if (staged)
      g_unlink(staged);
    return NULL;
  }
  if (staged && !unstage(staged, run->model_path, error))
    return NULL;

  if (promoted && context->engine) {
    g_autofree char *version = g_path_get_basename(run->model_path);
    infer_engine_set_model(context->engine, info->name, candidate, version);
  }
  g_message("train: %s: %s: %s", info->name, run->decision, run->detail);
  return g_steal_pointer(&run);
}
