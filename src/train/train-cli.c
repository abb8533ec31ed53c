/* train-cli.c: `aapi train`, one training cycle now. */
#include "cli/cli.h"
#include "train/train-private.h"

#include <stdio.h>

static char *opt_class;
static gboolean opt_bootstrap;
static gboolean opt_if_changed;

static const GOptionEntry entries[] = {
  { "class", 0, 0, G_OPTION_ARG_STRING, &opt_class,
    "Train only this class", "NAME" },
  { "bootstrap", 0, 0, G_OPTION_ARG_NONE, &opt_bootstrap,
    "Start a class with no model from scratch", NULL },
  { "if-changed", 0, 0, G_OPTION_ARG_NONE, &opt_if_changed,
    "Run only when annotations changed since the last cycle", NULL },
  { NULL }
};

int cli_train(int argc, char **argv)
{
  int status = 0;
  g_autoptr(AapiConfig) config = cli_parse(
      "train", NULL,
      "Runs one training cycle now: per class, fine-tunes the newest model "
      "on the newest annotations of every slide, measures F1 before and "
      "after on held-out data, and promotes the new model when it is not "
      "worse.",
      entries, &argc, &argv, &status);
  g_autoptr(GError) error = NULL;

  if (config == NULL)
    return status;
  if (!slide_init_libs(&error))
    return cli_fail("train", error);

  g_autoptr(AapiStore) store = store_open(config->database_url, &error);
  if (store == NULL)
    return cli_fail("train", error);
  g_autoptr(SlideCache) slides = slide_cache_new(store, 8);

  gint64 started = g_get_real_time() / G_USEC_PER_SEC;
  TrainOptions options = {
    .only_class = opt_class,
    .bootstrap = opt_bootstrap,
    .force = !opt_if_changed,
  };
  if (!train_run_cycle(config, store, slides, NULL, &options, &error))
    return cli_fail("train", error);

  g_autoptr(GPtrArray) runs = store_train_run_list(store, 20, &error);
  for (guint i = 0; runs && i < runs->len; i++) {
    StoreTrainRun *run = runs->pdata[i];
    if (run->started_time < started)
      continue;
    printf("%-12s %-9s train %" G_GINT64_FORMAT " val %" G_GINT64_FORMAT
           "  %s\n", run->class_name, run->decision, run->n_train,
           run->n_val, run->detail ? run->detail : "");
  }
  return 0;
}

static char *opt_eval_class;

static const GOptionEntry eval_entries[] = {
  { "class", 0, 0, G_OPTION_ARG_STRING, &opt_eval_class,
    "Evaluate only this class", "NAME" },
  { NULL }
};

/* Every patch of every registered slide, held out or not: the slides are
 * a test set here, not training data. */
static bool evaluate_class(const AapiConfig *config, AapiStore *store,
                           SlideCache *slides, const AapiClassInfo *info,
                           GError **error)
{
  g_autofree char *version = NULL;
  g_autoptr(NnModel) model = train_served_model(info, NULL, &version);
  if (model == NULL) {
    printf("%-12s no model\n", info->name);
    return true;
  }
  g_autoptr(TrainDataset) data = train_dataset_build(config, store, slides,
                                                     info, NULL, error);
  if (data == NULL)
    return false;
  train_patches_append(data->train, data->val);
  if (data->train->n == 0) {
    printf("%-12s no annotated patches\n", info->name);
    return true;
  }

  double f1 = 0;
  if (!train_eval_f1(model, data->train, &f1, error))
    return false;
  printf("%-12s F1 %.4f over %u patches  (model %s)\n", info->name, f1,
         data->train->n, version);
  return true;
}

int cli_evaluate(int argc, char **argv)
{
  int status = 0;
  g_autoptr(AapiConfig) config = cli_parse(
      "evaluate", NULL,
      "Measures the pixel F1 of each class's served model on the annotated "
      "structures of every registered slide (cut as for training).",
      eval_entries, &argc, &argv, &status);
  g_autoptr(GError) error = NULL;

  if (config == NULL)
    return status;
  if (!slide_init_libs(&error))
    return cli_fail("evaluate", error);
  g_autoptr(AapiStore) store = store_open(config->database_url, &error);
  if (store == NULL)
    return cli_fail("evaluate", error);
  g_autoptr(SlideCache) slides = slide_cache_new(store, 8);

  bool matched = false;
  for (guint i = 0; i < config->classes->len; i++) {
    const AapiClassInfo *info = config->classes->pdata[i];
    if (opt_eval_class &&
        g_ascii_strcasecmp(opt_eval_class, info->name) != 0)
      continue;
    matched = true;
    if (!evaluate_class(config, store, slides, info, &error))
      return cli_fail("evaluate", error);
  }
  if (!matched) {
    fprintf(stderr, "aapi evaluate: no class named '%s'\n", opt_eval_class);
    return 1;
  }
  return 0;
}
