/*
 * test-nn-train.c: one Adam step (and three) of NnTrainer against PyTorch:
 * the fixtures in ../shared/fixtures/unet and cases generated at test time
 * by make_train_case.py with Debian's python3-torch.
 */
#include "nn/nn-train-private.h"
#include "common/aapi-error.h"
#include "testutil.h"

#include <jansson.h>
#include <sys/wait.h>
#include <math.h>
#include <string.h>

static char *cases_dir;   /* generated cases, NULL when torch is absent */

static void *read_bin(const char *dir, const char *name, gsize bytes)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  g_autoptr(GError) error = NULL;
  char *data = NULL;
  gsize length = 0;

  g_assert_true(g_file_get_contents(path, &data, &length, &error));
  g_assert_no_error(error);
  if (length != bytes)
    g_error("%s: %" G_GSIZE_FORMAT " bytes, expected %" G_GSIZE_FORMAT,
            path, length, bytes);
  return data;
}

/* Within 1e-4, relative for values above 1.  All mismatching tensors are
 * reported before the test fails. */
static bool all_close = true;

static void assert_close(const char *what, const float *got,
                         const float *want, int64_t n)
{
  double worst = 0;
  int64_t at = -1;

  for (int64_t i = 0; i < n; i++) {
    double err = fabs((double) got[i] - want[i]) / MAX(1.0, fabs(want[i]));

    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  if (worst > 1e-4 || isnan(worst)) {
    g_printerr("%s[%" G_GINT64_FORMAT "]: got %.8g, PyTorch %.8g\n", what,
               at, got[at], want[at]);
    all_close = false;
  }
}

static void compare_state(NnModel *model, const char *dir,
                          const char *prefix)
{
  const GPtrArray *tensors = nn_model_get_tensors(model);

  for (guint i = 0; i < tensors->len; i++) {
    NnTensor *t = g_ptr_array_index(tensors, i);
    g_autofree char *name = g_strdup_printf("%safter.%s.bin", prefix,
                                            t->name);
    gsize size = t->dtype == NN_DTYPE_I64 ? 8 : 4;
    g_autofree void *want = read_bin(dir, name, size * t->n_elements);

    if (t->dtype == NN_DTYPE_I64)
      g_assert_cmpint(*(int64_t *) t->data, ==, *(int64_t *) want);
    else
      assert_close(name, t->data, want, t->n_elements);
  }
}

static void compare_grads(NnTrainer *trainer, NnModel *model,
                          const char *dir)
{
  const GPtrArray *tensors = nn_model_get_tensors(model);

  for (guint i = 0; i < tensors->len; i++) {
    NnTensor *t = g_ptr_array_index(tensors, i);
    const float *grad = nn_trainer_get_grad(trainer, t->name);
    g_autofree char *name = g_strdup_printf("grad.%s.bin", t->name);
    g_autofree char *path = g_build_filename(dir, name, NULL);

    if (!g_file_test(path, G_FILE_TEST_EXISTS))
      continue;
    g_assert_nonnull(grad);
    g_autofree void *want = read_bin(dir, name, 4 * t->n_elements);
    assert_close(name, grad, want, t->n_elements);
  }
}

static json_t *load_manifest(const char *dir)
{
  g_autofree char *path = g_build_filename(dir, "manifest.json", NULL);
  json_error_t jerr;
  json_t *manifest = json_load_file(path, 0, &jerr);

  if (manifest == NULL)
    g_error("%s: %s", path, jerr.text);
  return manifest;
}

static void input_shape(json_t *manifest, int shape[4])
{
  json_t *dims = json_object_get(
      json_object_get(json_object_get(manifest, "tensors"), "input"),
      "shape");

  for (int i = 0; i < 4; i++)
    shape[i] = (int) json_integer_value(json_array_get(dims, i));
}

/* Steps the model on the case's batch and compares with PyTorch after the
 * first step and, when the case has them, after the last. */
static void run_case(NnModel *model, const char *dir, json_t *manifest)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(NnTrainer) trainer = NULL;
  int s[4];
  g_autofree float *want_logits = NULL;
  int n_classes, steps;
  float loss = 0;

  input_shape(manifest, s);
  trainer = nn_trainer_new(model, &NN_ADAM_DEFAULTS, &error);
  g_assert_no_error(error);
  g_autofree float *input = read_bin(dir, "input.bin",
                                     4 * (gsize) s[0] * s[1] * s[2] * s[3]);
  g_autofree char *tpath = g_build_filename(dir, "target.bin", NULL);
  g_autofree int64_t *target = NULL;
  gsize tbytes = 0;
  g_assert_true(g_file_get_contents(tpath, (char **) &target, &tbytes,
                                    NULL));

  nn_trainer_step(trainer, input, target, s[0], s[2], s[3], &loss, &error);
  g_assert_no_error(error);
  g_autofree float *want_loss = read_bin(dir, "loss.bin", 4);
  assert_close("loss", &loss, want_loss, 1);
  n_classes = nn_model_get_hparams(model)->n_classes;
  want_logits = read_bin(dir, "train_logits.bin", tbytes / 2 * n_classes);
  assert_close("train_logits", nn_trainer_get_logits(trainer), want_logits,
               (int64_t) tbytes / 8 * n_classes);
  compare_grads(trainer, model, dir);
  compare_state(model, dir, "");
  g_assert_true(all_close);

  steps = (int) json_integer_value(json_object_get(manifest, "steps"));
  for (int k = 2; k <= steps; k++) {
    nn_trainer_step(trainer, input, target, s[0], s[2], s[3], &loss,
                    &error);
    g_assert_no_error(error);
  }
  if (steps > 1) {
    g_autofree char *prefix = g_strdup_printf("step%d.", steps);
    g_autofree char *lname = g_strdup_printf("%sloss.bin", prefix);
    g_autofree float *last_loss = read_bin(dir, lname, 4);

    assert_close(lname, &loss, last_loss, 1);
    compare_state(model, dir, prefix);
    g_assert_true(all_close);
  }
}

static void test_fixture(gconstpointer data)
{
  g_autofree char *rel = g_build_filename("fixtures", "unet", data, NULL);
  g_autofree char *dir = test_shared_path(rel);
  g_autoptr(GError) error = NULL;

  if (dir == NULL)
    return;
  g_autofree char *ckpt = g_build_filename(dir, "model.ckpt", NULL);
  g_autoptr(NnModel) model = nn_ckpt_import(ckpt, &error);
  g_assert_no_error(error);
  json_t *manifest = load_manifest(dir);
  run_case(model, dir, manifest);
  json_decref(manifest);
}

/* Runs the aapi binary; returns its exit status, stderr in *err. */
static int run_aapi(const char *const *args, char **err)
{
  const char *binary = g_getenv("AAPI_BINARY");
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  int status = -1;

  g_ptr_array_add(argv, (char *) binary);
  for (int i = 0; args[i] != NULL; i++)
    g_ptr_array_add(argv, (char *) args[i]);
  g_ptr_array_add(argv, NULL);
  g_assert_true(g_spawn_sync(NULL, (char **) argv->pdata, NULL,
                             G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                             err, &status, NULL));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* aapi nn-train-step on the batch-norm fixture: every dumped file within
 * tolerance of PyTorch's, and clear failures for bad arguments. */
static void test_cli(void)
{
  g_autofree char *dir = test_shared_path("fixtures/unet/"
                                          "unet_d3_wf3_bn_upconv");
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  if (dir == NULL)
    return;
  if (g_getenv("AAPI_BINARY") == NULL) {
    g_test_skip("AAPI_BINARY is not set");
    return;
  }
  out = test_make_tmpdir("nn-train-cli");
  g_autofree char *ckpt = g_build_filename(dir, "model.ckpt", NULL);
  g_autofree char *in = g_build_filename(dir, "input.bin", NULL);
  g_autofree char *target = g_build_filename(dir, "target.bin", NULL);
  const char *ok_args[] = { "nn-train-step", "--model", ckpt, "--input", in,
                            "--target", target, "--shape", "2,3,64,64",
                            "--lr", "0.001", "--dump", out, NULL };

  g_assert_cmpint(run_aapi(ok_args, &err), ==, 0);
  g_autoptr(NnModel) model = nn_ckpt_import(ckpt, NULL);
  const GPtrArray *tensors = nn_model_get_tensors(model);
  g_autofree float *loss = read_bin(out, "loss.bin", 4);
  g_autofree float *want_loss = read_bin(dir, "loss.bin", 4);
  assert_close("cli loss", loss, want_loss, 1);
  for (guint i = 0; i < tensors->len; i++) {
    NnTensor *t = g_ptr_array_index(tensors, i);
    g_autofree char *name = g_strdup_printf("after.%s.bin", t->name);
    gsize size = t->dtype == NN_DTYPE_I64 ? 8 : 4;
    g_autofree void *got = read_bin(out, name, size * t->n_elements);
    g_autofree void *want = read_bin(dir, name, size * t->n_elements);

    if (t->dtype == NN_DTYPE_I64)
      g_assert_cmpint(*(int64_t *) got, ==, *(int64_t *) want);
    else
      assert_close(name, got, want, t->n_elements);
  }
  g_assert_true(all_close);

  /* Wrong shape, bad lr, missing file, target of the wrong size. */
  const char *bad[][14] = {
    { "nn-train-step", "--model", ckpt, "--input", in, "--target", target,
      "--shape", "2,3,64,60", "--dump", out, NULL },
    { "nn-train-step", "--model", ckpt, "--input", in, "--target", target,
      "--shape", "2,3,64,64", "--lr", "-1", "--dump", out, NULL },
    { "nn-train-step", "--model", "/nonexistent.ckpt", "--input", in,
      "--target", target, "--shape", "2,3,64,64", "--dump", out, NULL },
    { "nn-train-step", "--model", ckpt, "--input", in, "--target", in,
      "--shape", "2,3,64,64", "--dump", out, NULL },
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree char *message = NULL;

    g_assert_cmpint(run_aapi(bad[i], &message), ==, 1);
    g_assert_true(g_str_has_prefix(message, "aapi nn-train-step: "));
  }
}

/* Shapes change between steps (the graph is rebuilt); bad input is an
 * error that leaves the model as it was. */
static void test_shapes_and_errors(void)
{
  NnHparams hp = { 3, 2, 3, 3, true, true, NN_UP_UPCONV };
  g_autoptr(GError) error = NULL;
  g_autoptr(NnModel) model = nn_model_new(&hp, &error);
  g_autoptr(NnTrainer) trainer = NULL;
  g_autofree float *input = g_new0(float, 2 * 3 * 48 * 40);
  g_autofree int64_t *target = g_new0(int64_t, 2 * 48 * 40);
  NnTensor *w = nn_model_get_tensor(model, "last.weight");
  g_autofree float *before = NULL;
  float loss = 0;

  nn_model_init_random(model, 3);
  trainer = nn_trainer_new(model, &NN_ADAM_DEFAULTS, &error);
  g_assert_no_error(error);
  for (int i = 0; i < 2 * 3 * 48 * 40; i++)
    input[i] = (float) ((i * 7919) % 13) / 13.0f - 0.5f;
  g_assert_true(nn_trainer_step(trainer, input, target, 1, 32, 32, &loss,
                                &error));
  g_assert_true(nn_trainer_step(trainer, input, target, 2, 48, 40, &loss,
                                &error));
  g_assert_no_error(error);
  g_assert_true(isfinite(loss));

  before = g_memdup2(w->data, 4 * w->n_elements);
  target[7] = 2;
  g_assert_false(nn_trainer_step(trainer, input, target, 2, 48, 40, &loss,
                                 &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_clear_error(&error);
  target[7] = 1;
  /* 34 pools to 17, which cannot be pooled again. */
  g_assert_false(nn_trainer_step(trainer, input, target, 1, 34, 34, &loss,
                                 &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_false(nn_trainer_step(trainer, input, target, 0, 32, 32, &loss,
                                 &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_cmpmem(before, 4 * w->n_elements, w->data, 4 * w->n_elements);

  /* And it still trains after the errors. */
  g_assert_true(nn_trainer_step(trainer, input, target, 2, 48, 40, &loss,
                                &error));
  g_assert_no_error(error);
}

static void hparams_from(json_t *manifest, NnHparams *hp)
{
  json_t *h = json_object_get(manifest, "hyper_parameters");
  const char *up = json_string_value(json_object_get(h, "up_mode"));

  hp->in_channels = json_integer_value(json_object_get(h, "in_channels"));
  hp->n_classes = json_integer_value(json_object_get(h, "n_classes"));
  hp->depth = json_integer_value(json_object_get(h, "depth"));
  hp->wf = json_integer_value(json_object_get(h, "wf"));
  hp->padding = json_is_true(json_object_get(h, "padding"));
  hp->batch_norm = json_is_true(json_object_get(h, "batch_norm"));
  hp->up_mode = g_strcmp0(up, "upconv") == 0 ? NN_UP_UPCONV
                                             : NN_UP_UPSAMPLE;
}

/* A model of the case's family holding PyTorch's initial weights. */
static NnModel *model_from_case(const char *dir, json_t *manifest)
{
  g_autoptr(GError) error = NULL;
  NnHparams hp;
  NnModel *model;
  const GPtrArray *tensors;

  hparams_from(manifest, &hp);
  model = nn_model_new(&hp, &error);
  g_assert_no_error(error);
  tensors = nn_model_get_tensors(model);
  for (guint i = 0; i < tensors->len; i++) {
    NnTensor *t = g_ptr_array_index(tensors, i);
    g_autofree char *name = g_strdup_printf("before.%s.bin", t->name);
    gsize size = t->dtype == NN_DTYPE_I64 ? 8 : 4;
    g_autofree void *data = read_bin(dir, name, size * t->n_elements);

    memcpy(t->data, data, size * t->n_elements);
  }
  return model;
}

static void test_generated(gconstpointer data)
{
  if (cases_dir == NULL) {
    g_test_skip("python3-torch is absent: no generated cases");
    return;
  }
  g_autofree char *dir = g_build_filename(cases_dir, data, NULL);
  json_t *manifest = load_manifest(dir);
  g_autoptr(NnModel) model = model_from_case(dir, manifest);

  run_case(model, dir, manifest);
  json_decref(manifest);
}

/* Runs the generator once; NULL when torch (or python3) is absent. */
static char *generate_cases(void)
{
  g_autofree char *script = g_test_build_filename(
      G_TEST_DIST, "nn-train", "make_train_case.py", NULL);
  char *dir = test_make_tmpdir("nn-train");
  const char *argv[] = { "/usr/bin/python3", script, dir, NULL };
  g_autofree char *err = NULL;
  int status = 0;

  if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
                    NULL, NULL, NULL, &err, &status, NULL) ||
      !g_spawn_check_wait_status(status, NULL)) {
    g_test_message("no generated cases: %s", err ? err : "no python3");
    g_free(dir);
    return NULL;
  }
  return dir;
}

int main(int argc, char **argv)
{
  static const char *fixtures[] = {
    "unet_d2_wf2_upsample", "unet_d3_wf3_bn_upconv",
  };
  static const char *generated[] = {
    "d3_wf2_nopad_upconv", "d3_wf3_bn_upsample", "d4_wf3_bn_upconv",
    "d2_wf3_nopad_bn_upsample",
  };

  g_test_init(&argc, &argv, NULL);
  /* AAPI_NN_TRAIN_CASES: a folder of cases made earlier, each run. */
  if (g_getenv("AAPI_NN_TRAIN_CASES") != NULL) {
    g_autoptr(GDir) folder = NULL;
    const char *name;

    cases_dir = g_strdup(g_getenv("AAPI_NN_TRAIN_CASES"));
    folder = g_dir_open(cases_dir, 0, NULL);
    while (folder != NULL && (name = g_dir_read_name(folder)) != NULL) {
      g_autofree char *path = g_strdup_printf("/nn-train/given/%s", name);
      g_test_add_data_func_full(path, g_strdup(name), test_generated,
                                g_free);
    }
    return g_test_run();
  }
  cases_dir = generate_cases();
  for (size_t i = 0; i < G_N_ELEMENTS(fixtures); i++) {
    g_autofree char *path = g_strdup_printf("/nn-train/fixture/%s",
                                            fixtures[i]);
    g_test_add_data_func(path, fixtures[i], test_fixture);
  }
  g_test_add_func("/nn-train/cli", test_cli);
  g_test_add_func("/nn-train/shapes-and-errors", test_shapes_and_errors);
  for (size_t i = 0; i < G_N_ELEMENTS(generated); i++) {
    g_autofree char *path = g_strdup_printf("/nn-train/torch/%s",
                                            generated[i]);
    g_test_add_data_func(path, generated[i], test_generated);
  }
  return g_test_run();
}
