/*
 * nn-cli.c: the network's commands: import-model (a checkpoint into a
 * class's model folder) and nn-eval (logits of raw float32 input, for
 * comparing with other implementations).
 */
#include "cli/cli.h"
#include "common/aapi-error.h"
#include "infer/infer.h"
#include "nn/nn-cli-private.h"
#include "nn/nn.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *opt_class;

static const GOptionEntry import_entries[] = {
  { "class", 0, 0, G_OPTION_ARG_STRING, &opt_class,
    "Class of the label config the model predicts", "NAME" },
  { NULL }
};

/* <Y-m-dTH:M:S.usecZ>.aapimodel: the server orders a folder's files by
 * such timestamps (infer_model_name_compare), so this one becomes the
 * newest. */
static char *model_file_name(void)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc();
  g_autofree char *stamp = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S");

  return g_strdup_printf("%s.%06dZ%s", stamp,
                         g_date_time_get_microsecond(now), NN_MODEL_EXT);
}

static void print_hparams(const NnModel *model)
{
  const NnHparams *h = nn_model_get_hparams(model);

  printf("in_channels %d, n_classes %d, depth %d, wf %d, padding %s, "
         "batch_norm %s, up_mode %s\n", h->in_channels, h->n_classes,
         h->depth, h->wf, h->padding ? "on" : "off",
         h->batch_norm ? "on" : "off",
         h->up_mode == NN_UP_UPSAMPLE ? "upsample" : "upconv");
}

static bool import_into(const AapiClassInfo *info, const char *ckpt,
                        char **out_path, GError **error)
{
  g_autofree char *dir = g_build_filename(info->model_root, info->name,
                                          NULL);
  g_autofree char *name = model_file_name();
  g_autofree char *path = g_build_filename(dir, name, NULL);

  g_autoptr(NnModel) model = nn_ckpt_import(ckpt, error);
  if (model == NULL)
    return false;
  /* The server would skip a file it cannot serve; refuse it here, where
   * whoever imports it sees why. */
  if (!infer_model_fits_class(nn_model_get_hparams(model), info, error)) {
    aapi_error_prefix(error, "%s cannot serve class %s: ", ckpt,
                      info->name);
    return false;
  }
  if (g_mkdir_with_parents(dir, 0755) != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "cannot create %s: %s",
                dir, g_strerror(errno));
    return false;
  }
  if (!nn_model_save(model, path, error))
    return false;
  print_hparams(model);
  *out_path = g_steal_pointer(&path);
  return true;
}

int cli_import_model(int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  int status;
  g_autoptr(AapiConfig) config = cli_parse(
      "import-model", "FILE.ckpt",
      "Reads a PyTorch Lightning checkpoint (its state_dict and\n"
      "hyper_parameters; other pickled objects are skipped, never run) and\n"
      "writes it as <model_root>/<Class>/<UTC timestamp>.aapimodel, which\n"
      "makes it the class's newest model.",
      import_entries, &argc, &argv, &status);

  if (config == NULL)
    return status;
  if (argc != 2 || opt_class == NULL) {
    fprintf(stderr, "aapi import-model: need FILE.ckpt and --class NAME\n");
    return 2;
  }
  const AapiClassInfo *info = aapi_config_find_class(config, opt_class);
  if (info == NULL) {
    g_set_error(&error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
                "unknown class '%s' (not in the label config)", opt_class);
    return cli_fail("import-model", error);
  }
  if (!import_into(info, argv[1], &path, &error))
    return cli_fail("import-model", error);
  printf("%s\n", path);
  return 0;
}

static char *opt_model, *opt_input, *opt_shape, *opt_output;
static int opt_repeat = 1;
static gboolean opt_int8, opt_bf16;

static const GOptionEntry eval_entries[] = {
  { "model", 0, 0, G_OPTION_ARG_FILENAME, &opt_model,
    "Native model file or PyTorch Lightning checkpoint", "FILE" },
  { "input", 0, 0, G_OPTION_ARG_FILENAME, &opt_input,
    "Raw little-endian float32 input, NCHW", "IN.bin" },
  { "shape", 0, 0, G_OPTION_ARG_STRING, &opt_shape,
    "Input shape", "N,C,H,W" },
  { "output", 0, 0, G_OPTION_ARG_FILENAME, &opt_output,
    "Where to write the logits (float32, NCHW)", "OUT.bin" },
  { "repeat", 0, 0, G_OPTION_ARG_INT, &opt_repeat,
    "Run the forward N times and print the times (for benchmarks)", "N" },
  { "int8", 0, 0, G_OPTION_ARG_NONE, &opt_int8,
    "Calibrate on the input, then run the 3x3 convolutions in int8", NULL },
  { "bf16", 0, 0, G_OPTION_ARG_NONE, &opt_bf16,
    "Run the 3x3 convolutions on bfloat16 inputs and weights (AMX or "
    "AVX512-BF16 CPUs)", NULL },
  { NULL }
};

static int compare_doubles(gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

/* Runs the forward opt_repeat times; the times go to stderr. */
static bool timed_forward(NnRunner *runner, const float *input,
                          const int dims[4], float *logits, GError **error)
{
  int runs = opt_repeat;
  g_autofree double *ms = g_new(double, runs);

  for (int i = 0; i < runs; i++) {
    gint64 start = g_get_monotonic_time();
    if (!nn_runner_forward(runner, input, dims[0], dims[2], dims[3],
                           logits, error))
      return false;
    ms[i] = (g_get_monotonic_time() - start) / 1e3;
  }
  if (runs == 1)
    return true;
  /* The first run builds the plan; the rest show the steady state. */
  qsort(ms + 1, runs - 1, sizeof *ms, compare_doubles);
  fprintf(stderr, "forward ms: first %.2f, min %.2f, median %.2f\n",
          ms[0], ms[1], ms[1 + (runs - 1) / 2]);
  return true;
}

static bool eval(int dims[4], GError **error)
{
  int oh, ow;
  g_autoptr(NnModel) model = nn_model_load_any(opt_model, error);
  if (model == NULL)
    return false;
  const NnHparams *h = nn_model_get_hparams(model);

  if (!nn_cli_check_input(model, dims, &oh, &ow, error))
    return false;
  g_autofree float *input = nn_cli_read_exact(
      "input", opt_input,
      (guint64) dims[0] * dims[1] * dims[2] * dims[3] * 4, error);
  gsize n_out = (gsize) dims[0] * h->n_classes * oh * ow;
  g_autofree float *logits = input ? g_try_new(float, n_out) : NULL;
  if (input == NULL)
    return false;
  g_autoptr(NnRunner) runner = nn_runner_new(model, error);
  if (logits == NULL || runner == NULL)
    return false;
  /* The calibrating forward is float32; its ranges scale the int8 one. */
  if (opt_int8 &&
      (!nn_runner_set_precision(runner, NN_PRECISION_CALIBRATE, error) ||
       !nn_runner_forward(runner, input, dims[0], dims[2], dims[3], logits,
                          error) ||
       !nn_runner_set_precision(runner, NN_PRECISION_INT8, error)))
    return false;
  if (opt_bf16 && !nn_runner_set_precision(runner, NN_PRECISION_BF16, error))
    return false;
  if (!timed_forward(runner, input, dims, logits, error) ||
      !nn_cli_write_raw(opt_output, logits, n_out * 4, error))
    return false;
  printf("%d,%d,%d,%d\n", dims[0], h->n_classes, oh, ow);
  return true;
}

int cli_nn_eval(int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  int status, dims[4];
  g_autoptr(AapiConfig) config = cli_parse(
      "nn-eval", NULL,
      "Runs a model in eval mode on raw little-endian float32 NCHW input\n"
      "and writes the logits the same way; prints the output shape.",
      eval_entries, &argc, &argv, &status);

  if (config == NULL)
    return status;
  if (argc > 1 || !opt_model || !opt_input || !opt_shape || !opt_output) {
    fprintf(stderr, "aapi nn-eval: need --model, --input, --shape and "
                    "--output\n");
    return 2;
  }
  if (opt_int8 && opt_bf16) {
    fprintf(stderr, "aapi nn-eval: --int8 and --bf16 exclude each other\n");
    return 2;
  }
  if (opt_repeat < 1 || opt_repeat > 1000) {
    fprintf(stderr, "aapi nn-eval: --repeat is 1 to 1000, not %d\n",
            opt_repeat);
    return 2;
  }
  if (!nn_cli_parse_shape(opt_shape, dims, &error))
    return cli_fail("nn-eval", error);
  if (!eval(dims, &error))
    return cli_fail("nn-eval", error);
  return 0;
}
