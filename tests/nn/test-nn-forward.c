/* test-nn-forward.c: eval-mode parity of the oneDNN U-Net with PyTorch. */
#include "nn-testcase.h"
#include "common/aapi-error.h"
#include "testutil.h"

#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <string.h>
#include <sys/wait.h>

#define TOLERANCE 1e-4

/* Every case folder under the shared fixtures. */
static void test_shared_fixtures(void)
{
  g_autofree char *root = test_shared_path("fixtures/unet");
  if (root == NULL)
    return;
  g_autoptr(GDir) dir = g_dir_open(root, 0, NULL);
  const char *name;
  int cases = 0;

  g_assert_nonnull(dir);
  while ((name = g_dir_read_name(dir))) {
    g_autofree char *path = g_build_filename(root, name, NULL);
    g_autofree char *ckpt = g_build_filename(path, "model.ckpt", NULL);
    if (!g_file_test(ckpt, G_FILE_TEST_EXISTS))
      continue;
    nn_testcase_check(path, TOLERANCE);
    cases++;
  }
  g_assert_cmpint(cases, >, 0);
}

/* Cases made now by PyTorch (tests/nn/make_unet_case.py): other depths,
 * padding off, upsample, odd sizes. */
static void test_generated_cases(void)
{
  g_autofree char *tmp = test_make_tmpdir("nn-cases");
  g_autofree char *script = g_test_build_filename(G_TEST_DIST, "nn",
                                                  "make_unet_case.py",
                                                  NULL);
  const char *argv[] = { "/usr/bin/python3", script, tmp, NULL };
  g_autoptr(GError) error = NULL;
  g_autofree char *err_text = NULL;
  int status = 0;

  if (!g_file_test(argv[0], G_FILE_TEST_IS_EXECUTABLE)) {
    g_test_skip("/usr/bin/python3 is absent: no PyTorch cases");
    return;
  }
  g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, 0, NULL, NULL,
                             NULL, &err_text, &status, &error));
  g_assert_no_error(error);
  if (g_spawn_check_wait_status(status, NULL) == FALSE &&
      WIFEXITED(status) && WEXITSTATUS(status) == 77) {
    g_test_skip("PyTorch is not installed (python3-torch)");
    return;
  }
  g_test_message("make_unet_case.py: %s", err_text);
  g_assert_true(g_spawn_check_wait_status(status, NULL));

  g_autoptr(GDir) dir = g_dir_open(tmp, 0, NULL);
  const char *name;
  int cases = 0;
  while ((name = g_dir_read_name(dir))) {
    g_autofree char *path = g_build_filename(tmp, name, NULL);
    nn_testcase_check(path, TOLERANCE);
    cases++;
  }
  g_assert_cmpint(cases, >=, 7);
}

typedef struct {
  NnModel *model;
  const float *input;
  int dims[4];
  float *logits;
  gsize n_out;
} Job;

/* Its own runner, several forwards, several shapes. */
static gpointer run_job(gpointer data)
{
  Job *job = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(NnRunner) runner = nn_runner_new(job->model, &error);
  g_autofree float *small = g_new(float, job->n_out);

  g_assert_no_error(error);
  for (int i = 0; i < 3; i++) {
    g_assert_true(nn_runner_forward(runner, job->input, job->dims[0],
                                    job->dims[2], job->dims[3], job->logits,
                                    &error));
    g_assert_true(nn_runner_forward(runner, job->input, 1, 32, 32, small,
                                    &error));
  }
  return NULL;
}

/* Runners in parallel threads share activation arenas safely. */
static void test_concurrent_runners(void)
{
  g_autofree char *dir = test_shared_path(
      "fixtures/unet/unet_d3_wf3_bn_upconv");
  if (dir == NULL)
    return;
  g_autofree char *ckpt = g_build_filename(dir, "model.ckpt", NULL);
  g_autofree char *in_path = g_build_filename(dir, "input.bin", NULL);
  g_autofree char *out_path = g_build_filename(dir, "eval_logits.bin",
                                               NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(NnModel) model = nn_ckpt_import(ckpt, &error);
  Job jobs[3];
  GThread *threads[3];
  int dims[4];

  g_assert_no_error(error);
  nn_testcase_shape(dir, "input", dims);
  gsize n_in = (gsize) dims[0] * dims[1] * dims[2] * dims[3];
  gsize n_out = (gsize) dims[0] * 2 * dims[2] * dims[3];
  g_autofree float *input = nn_testcase_read_floats(in_path, n_in);
  g_autofree float *expect = nn_testcase_read_floats(out_path, n_out);
  for (int t = 0; t < 3; t++) {
    jobs[t] = (Job) { model, input, { dims[0], dims[1], dims[2], dims[3] },
                      g_new0(float, n_out), n_out };
    threads[t] = g_thread_new("nn-test", run_job, &jobs[t]);
  }
  for (int t = 0; t < 3; t++) {
    g_thread_join(threads[t]);
    for (gsize i = 0; i < n_out; i++)
      g_assert_cmpfloat(fabsf(jobs[t].logits[i] - expect[i]), <=,
                        TOLERANCE);
    g_free(jobs[t].logits);
  }
}

/* A model of the depth and widths the bench uses, with weights drawn at
 * random and input of smooth colour patches in [0, 1]. */
static NnModel *int8_model(int depth, int wf, bool batch_norm)
{
  NnHparams h = { 3, 2, depth, wf, true, batch_norm, NN_UP_UPCONV };
  NnModel *model = nn_model_new(&h, NULL);

  g_assert_nonnull(model);
  nn_model_init_random(model, 7);
  return model;
}

static float *smooth_input(int n, int side)
{
  gsize plane = (gsize) side * side;
  float *input = g_new(float, plane * 3 * n);

  for (gsize i = 0; i < plane * 3 * n; i++) {
    gsize p = i % plane, ch = i / plane;
    input[i] = 0.5f + 0.4f * sinf(0.05f * (p % side) + ch) *
                          cosf(0.07f * (p / side) + 0.3f * ch);
  }
  return input;
}

/* Calibrated int8 stays near float32: logits within a tenth of their
 * spread, class decisions nearly all equal; the ranges cover every 3x3
 * convolution; int8 without a calibration and bad ranges are refused. */
static void check_int8(bool batch_norm)
{
  const int n = 2, side = 64, depth = 3;
  g_autoptr(NnModel) model = int8_model(depth, 3, batch_norm);
  g_autoptr(NnRunner) runner = nn_runner_new(model, NULL);
  g_autofree float *input = smooth_input(n, side);
  gsize n_out = (gsize) n * 2 * side * side;
  g_autofree float *f32 = g_new(float, n_out);
  g_autofree float *int8 = g_new(float, n_out);
  g_autoptr(GError) error = NULL;

  g_assert_false(nn_runner_set_precision(runner, NN_PRECISION_INT8,
                                         &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_true(nn_runner_set_precision(runner, NN_PRECISION_CALIBRATE,
                                        &error));
  g_assert_true(nn_runner_forward(runner, input, n, side, side, f32,
                                  &error));
  g_autoptr(GArray) ranges = nn_runner_get_ranges(runner);
  /* Two per level going down, three per level going up (the joined
   * convolution runs as two). */
  g_assert_cmpuint(ranges->len, ==, 2 * (2 * depth + 3 * (depth - 1)));
  g_assert_true(nn_runner_set_precision(runner, NN_PRECISION_INT8,
                                        &error));
  g_assert_true(nn_runner_forward(runner, input, n, side, side, int8,
                                  &error));
  g_assert_no_error(error);

  float spread = 0, worst = 0;
  gsize same = 0, plane = (gsize) side * side;
  for (gsize i = 0; i < n_out; i++) {
    spread = MAX(spread, fabsf(f32[i]));
    worst = MAX(worst, fabsf(f32[i] - int8[i]));
  }
  for (gsize b = 0; b < (gsize) n; b++)
    for (gsize p = 0; p < plane; p++) {
      const float *a = f32 + b * 2 * plane, *q = int8 + b * 2 * plane;
      same += (a[plane + p] > a[p]) == (q[plane + p] > q[p]);
    }
  g_test_message("int8: worst %g of spread %g, decisions %.4f equal",
                 worst, spread, (double) same / (n * plane));
  g_assert_cmpfloat(worst, <, 0.1f * spread);
  g_assert_cmpfloat((double) same / (n * plane), >=, 0.97);

  /* Shared with another runner, the ranges give the same logits. */
  g_autoptr(NnRunner) other = nn_runner_new(model, NULL);
  g_autofree float *again = g_new(float, n_out);
  g_assert_true(nn_runner_set_ranges(other, ranges, &error));
  g_assert_true(nn_runner_set_precision(other, NN_PRECISION_INT8, &error));
  g_assert_true(nn_runner_forward(other, input, n, side, side, again,
                                  &error));
  g_assert_cmpmem(again, n_out * sizeof(float), int8, n_out * sizeof(float));

  /* Ranges of another count, or not finite intervals, are refused. */
  g_assert_cmpuint(ranges->len, ==, 2 * nn_model_range_count(model));
  g_autoptr(GArray) odd = g_array_copy(ranges);
  g_array_set_size(odd, ranges->len - 1);
  g_assert_false(nn_runner_set_ranges(other, odd, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_clear_error(&error);
  g_array_set_size(odd, ranges->len - 2);
  g_assert_false(nn_runner_set_ranges(other, odd, &error));
  g_clear_error(&error);
  g_array_set_size(odd, ranges->len);
  memcpy(odd->data, ranges->data, ranges->len * sizeof(float));
  g_array_index(odd, float, 1) = NAN;
  g_assert_false(nn_runner_set_ranges(other, odd, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_clear_error(&error);
  g_array_index(odd, float, 0) = 3;
  g_array_index(odd, float, 1) = 2;
  g_assert_false(nn_runner_set_ranges(other, odd, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
}

static void test_int8(void)
{
  check_int8(false);
}

static void test_int8_batch_norm(void)
{
  check_int8(true);
}

/* Logits of a fresh runner of model on input, n x side x side. */
static float *forward_new(NnModel *model, NnPrecision precision,
                          const float *input, int n, int side)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(NnRunner) runner = nn_runner_new(model, &error);
  float *logits = g_new(float, (gsize) n * 2 * side * side);

  g_assert_no_error(error);
  g_assert_true(nn_runner_set_precision(runner, precision, &error));
  g_assert_true(nn_runner_forward(runner, input, n, side, side, logits,
                                  &error));
  g_assert_no_error(error);
  return logits;
}

/* Largest |logit| and largest difference of two logit arrays, and the
 * share of pixels whose class decision is the same. */
static void logit_gap(const float *a, const float *b, int n, int side,
                      float *spread, float *worst, double *same)
{
  gsize plane = (gsize) side * side, equal = 0;

  *spread = *worst = 0;
  for (gsize i = 0; i < plane * 2 * n; i++) {
    *spread = MAX(*spread, fabsf(a[i]));
    *worst = MAX(*worst, fabsf(a[i] - b[i]));
  }
  for (gsize k = 0; k < (gsize) n; k++)
    for (gsize p = 0; p < plane; p++) {
      const float *x = a + k * 2 * plane, *y = b + k * 2 * plane;
      equal += (x[plane + p] > x[p]) == (y[plane + p] > y[p]);
    }
  *same = (double) equal / ((gsize) n * plane);
}

/*
 * Channels of 32 and more take oneDNN's Winograd kernels where it has
 * them (AVX-512): the logits stay within float32 rounding of the direct
 * kernels' (AAPI_NN_WINOGRAD=0), and on an AVX-512 machine they are not
 * the same bits, which shows the other kernels ran.  (The PyTorch cases
 * above check a depth-5 wf-4 net with Winograd against PyTorch too.)
 */
static void test_winograd(void)
{
  const int n = 2, side = 64;
  g_autoptr(NnModel) model = int8_model(3, 5, true);
  g_autofree float *input = smooth_input(n, side);
  gsize bytes = (gsize) n * 2 * side * side * sizeof(float);

  g_setenv("AAPI_NN_WINOGRAD", "0", TRUE);
  g_autofree float *direct = forward_new(model, NN_PRECISION_F32, input, n,
                                         side);
  g_setenv("AAPI_NN_WINOGRAD", "1", TRUE);
  g_autofree float *wino = forward_new(model, NN_PRECISION_F32, input, n,
                                       side);
  g_unsetenv("AAPI_NN_WINOGRAD");
  g_autofree float *fallback = forward_new(model, NN_PRECISION_F32, input,
                                           n, side);

  float spread, worst;
  double same;
  logit_gap(direct, wino, n, side, &spread, &worst, &same);
  g_test_message("winograd: worst %g of spread %g", worst, spread);
  g_assert_cmpfloat(worst, <=, 1e-5f * MAX(spread, 1.0f));
  g_assert_cmpmem(fallback, bytes, wino, bytes);
  if ((dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core) ==
      dnnl_cpu_isa_avx512_core)
    g_assert_true(memcmp(direct, wino, bytes) != 0);
}

/* bf16 (AMX or AVX512-BF16) stays near float32 on random weights:
 * logits within a tenth of their spread, decisions nearly all equal.
 * A CPU without bf16 refuses the precision with a reason. */
static void test_bf16(void)
{
  const int n = 2, side = 64;
  g_autoptr(NnModel) model = int8_model(3, 3, true);
  g_autofree float *input = smooth_input(n, side);
  g_autoptr(GError) error = NULL;

  if (!nn_bf16_available()) {
    g_autoptr(NnRunner) runner = nn_runner_new(model, NULL);
    g_assert_false(nn_runner_set_precision(runner, NN_PRECISION_BF16,
                                           &error));
    g_assert_error(error, AAPI_ERROR, AAPI_ERROR_UNAVAILABLE);
    g_test_message("no bf16 on this CPU: %s", error->message);
    return;
  }
  g_autofree float *f32 = forward_new(model, NN_PRECISION_F32, input, n,
                                      side);
  g_autofree float *bf16 = forward_new(model, NN_PRECISION_BF16, input, n,
                                       side);
  float spread, worst;
  double same;
  logit_gap(f32, bf16, n, side, &spread, &worst, &same);
  g_test_message("bf16: worst %g of spread %g, decisions %.4f equal", worst,
                 spread, same);
  g_assert_cmpfloat(worst, >, 0);
  g_assert_cmpfloat(worst, <, 0.1f * spread);
  g_assert_cmpfloat(same, >=, 0.97);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/nn/forward/shared-fixtures", test_shared_fixtures);
  g_test_add_func("/nn/forward/generated-cases", test_generated_cases);
  g_test_add_func("/nn/forward/concurrent-runners",
                  test_concurrent_runners);
  g_test_add_func("/nn/forward/int8", test_int8);
  g_test_add_func("/nn/forward/int8-batch-norm", test_int8_batch_norm);
  g_test_add_func("/nn/forward/winograd", test_winograd);
  g_test_add_func("/nn/forward/bf16", test_bf16);
  return g_test_run();
}
