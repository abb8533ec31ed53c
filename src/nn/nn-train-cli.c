/*
 * nn-train-cli.c: the nn-train-step command, Adam steps on raw arrays
 * with every state-dict entry dumped afterwards, for checking training
 * against other implementations.
 */
#include "cli/cli.h"
#include "common/aapi-error.h"
#include "nn/nn-cli-private.h"
#include "nn/nn.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>

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

static bool write_file(const char *dir, const char *name, const void *data,
                       gsize bytes, GError **error)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);

  return nn_cli_write_raw(path, data, bytes, error);
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

static bool train_step(const int dims[4], double lr, GError **error)
{
  NnAdamParams adam = NN_ADAM_DEFAULTS;
  float loss = 0;
  int oh, ow;
  g_autoptr(NnModel) model = nn_model_load_any(opt_model, error);

  if (model == NULL || !nn_cli_check_input(model, dims, &oh, &ow, error))
    return false;
  g_autofree float *input = nn_cli_read_exact(
      "input", opt_input, (guint64) dims[0] * dims[1] * dims[2] * dims[3] * 4,
      error);
  g_autofree int64_t *target = input ? nn_cli_read_exact(
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
  if (!nn_cli_parse_shape(opt_shape, dims, &error))
    return cli_fail("nn-train-step", error);
  if (opt_lr && !aapi_parse_double(opt_lr, 1e-12, 10.0, &lr, &error)) {
    aapi_error_prefix(&error, "--lr: ");
    return cli_fail("nn-train-step", error);
  }
  if (!train_step(dims, lr, &error))
    return cli_fail("nn-train-step", error);
  return 0;
}
