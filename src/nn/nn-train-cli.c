/*
 * nn-train-cli.c: the nn-train-step command, Adam steps on raw arrays
 * with every state-dict entry dumped afterwards, for checking training
 * against other implementations.
 */
#include "cli/cli.h"
#include "common/aapi-error.h"
#include "nn/nn.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>

/* Raw arrays over this size are refused rather than read. */
#define TRAIN_MAX_BYTES (G_GUINT64_CONSTANT(2) << 30)

static char *opt_model, *opt_input, *opt_target, *opt_shape, *opt_lr;
static char *opt_dump;
static int opt_steps = 1;

static const GOptionEntry entries[] = {
  { "model", 0, 0, G_OPTION_ARG_FILENAME, &opt_model,
    "Native model file or PyTorch Lightning checkpoint", "FILE" },
  { "input", 0, 0, G_OPTION_ARG_FILENAME, &opt_input,
    "Raw little-endian float32 input, NCHW", "IN.bin" },
  { "target", 0, 0, G_OPTION_ARG_FILENAME, &opt_target,
    "Raw little-endian int64 class indices, N x H' x W' (output size)",
    "T.bin" },
  { "shape", 0, 0, G_OPTION_ARG_STRING, &opt_shape, "Input shape",
    "N,C,H,W" },
  { "lr", 0, 0, G_OPTION_ARG_STRING, &opt_lr, "Adam learning rate (0.001)",
    "LR" },
  { "dump", 0, 0, G_OPTION_ARG_FILENAME, &opt_dump,
    "Folder for loss.bin and after.<state-dict entry>.bin", "DIR" },
  { "steps", 0, 0, G_OPTION_ARG_INT, &opt_steps,
    "Adam steps on the same batch (1)", "K" },
  { NULL }
};

/* "N,C,H,W": four positive integers. */
static bool shape_parse(const char *text, int dims[4], GError **error)
{
  g_auto(GStrv) parts = g_strsplit(text, ",", -1);
  static const gint64 max[4] = { 4096, 4096, 65536, 65536 };

  if (g_strv_length(parts) != 4) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "--shape needs N,C,H,W, got '%s'", text);
    return false;
  }
  for (int i = 0; i < 4; i++) {
    gint64 value;

    if (!aapi_parse_int64(parts[i], 1, max[i], &value, error)) {
      aapi_error_prefix(error, "--shape %s: ", text);
      return false;
    }
    dims[i] = (int) value;
  }
  return true;
}

/* Reads a raw array that must be exactly `want` bytes long. */
static void *read_exact(const char *what, const char *path, guint64 want,
                        GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autofree char *data = NULL;
  gsize len = 0;

  if (want > TRAIN_MAX_BYTES) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_TOO_LARGE,
                "%s of %" G_GUINT64_FORMAT " bytes is over the limit", what,
                want);
    return NULL;
  }
  if (!g_file_get_contents(path, &data, &len, &local)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND, "%s: %s", what,
                local->message);
    return NULL;
  }
  if (len != want) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "%s %s has %" G_GSIZE_FORMAT " bytes, the shape needs %"
                G_GUINT64_FORMAT, what, path, len, want);
    return NULL;
  }
  return g_steal_pointer(&data);
}

static bool write_file(const char *dir, const char *name, const void *data,
                       gsize bytes, GError **error)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  g_autoptr(GError) local = NULL;

  if (!g_file_set_contents_full(path, data, bytes,
                                G_FILE_SET_CONTENTS_CONSISTENT, 0644,
                                &local)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "%s", local->message);
    return false;
  }
  return true;
}

/* DIR/loss.bin and DIR/after.<name>.bin for every state-dict entry. */
static bool dump_state(const NnModel *model, float loss, GError **error)
{
  const GPtrArray *tensors = nn_model_get_tensors(model);

  if (g_mkdir_with_parents(opt_dump, 0755) != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "cannot create %s: %s",
                opt_dump, g_strerror(errno));
    return false;
  }
  if (!write_file(opt_dump, "loss.bin", &loss, sizeof loss, error))
    return false;
  for (guint i = 0; i < tensors->len; i++) {
    const NnTensor *t = g_ptr_array_index(tensors, i);
    g_autofree char *name = g_strdup_printf("after.%s.bin", t->name);
    gsize size = t->dtype == NN_DTYPE_I64 ? 8 : 4;

    if (!write_file(opt_dump, name, t->data, size * t->n_elements, error))
      return false;
  }
  return true;
}

static bool check_model(const NnModel *model, const int dims[4], int *oh,
                        int *ow, GError **error)
{
  const NnHparams *h = nn_model_get_hparams(model);

  if (dims[1] != h->in_channels) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "the model takes %d input channels, --shape gives %d",
                h->in_channels, dims[1]);
    return false;
  }
  return nn_output_size(h, dims[2], dims[3], oh, ow, error);
}

static bool train_step(const int dims[4], double lr, GError **error)
{
  NnAdamParams adam = NN_ADAM_DEFAULTS;
  float loss = 0;
  int oh, ow;
  g_autoptr(NnModel) model = nn_model_load_any(opt_model, error);

  if (model == NULL || !check_model(model, dims, &oh, &ow, error))
    return false;
  g_autofree float *input = read_exact(
      "input", opt_input, (guint64) dims[0] * dims[1] * dims[2] * dims[3] * 4,
      error);
  g_autofree int64_t *target = input ? read_exact(
      "target", opt_target, (guint64) dims[0] * oh * ow * 8, error) : NULL;
  if (target == NULL)
    return false;

  adam.lr = lr;
  g_autoptr(NnTrainer) trainer = nn_trainer_new(model, &adam, error);
  if (trainer == NULL)
    return false;
  for (int k = 0; k < opt_steps; k++) {
    if (!nn_trainer_step(trainer, input, target, dims[0], dims[2], dims[3],
                         &loss, error))
      return false;
    printf("step %d loss %.8g\n", k + 1, loss);
  }
  return dump_state(model, loss, error);
}

int cli_nn_train_step(int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  int status, dims[4];
  double lr = 1e-3;
  g_autoptr(AapiConfig) config = cli_parse(
      "nn-train-step", NULL,
      "Runs Adam steps (mean cross entropy, train mode) of a model on raw\n"
      "arrays and writes DIR/loss.bin (float32, the last step's loss) and\n"
      "DIR/after.<name>.bin for every state-dict entry (float32; int64 for\n"
      "num_batches_tracked).",
      entries, &argc, &argv, &status);

  if (config == NULL)
    return status;
  if (argc > 1 || !opt_model || !opt_input || !opt_target || !opt_shape ||
      !opt_dump) {
    fprintf(stderr, "aapi nn-train-step: need --model, --input, --target, "
                    "--shape and --dump\n");
    return 2;
  }
  if (opt_steps < 1 || opt_steps > 100000) {
    fprintf(stderr, "aapi nn-train-step: --steps must be 1..100000\n");
    return 2;
  }
  if (!shape_parse(opt_shape, dims, &error))
    return cli_fail("nn-train-step", error);
  if (opt_lr && !aapi_parse_double(opt_lr, 1e-12, 10.0, &lr, &error)) {
    aapi_error_prefix(&error, "--lr: ");
    return cli_fail("nn-train-step", error);
  }
  if (!train_step(dims, lr, &error))
    return cli_fail("nn-train-step", error);
  return 0;
}
