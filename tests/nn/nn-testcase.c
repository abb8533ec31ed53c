/* nn-testcase.c: checks one U-Net parity case folder. */
#include "nn-testcase.h"

#include <jansson.h>
#include <math.h>

float *nn_testcase_read_floats(const char *path, gsize n_floats)
{
  g_autoptr(GError) error = NULL;
  char *data = NULL;
  gsize len = 0;

  g_assert_true(g_file_get_contents(path, &data, &len, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(len, ==, n_floats * sizeof(float));
  return (float *) data;
}

void nn_testcase_shape(const char *dir, const char *tensor, int dims[4])
{
  g_autofree char *path = g_build_filename(dir, "manifest.json", NULL);
  json_error_t jerr;
  json_t *root = json_load_file(path, 0, &jerr);

  g_assert_nonnull(root);
  json_t *shape = json_object_get(
      json_object_get(json_object_get(root, "tensors"), tensor), "shape");
  g_assert_cmpuint(json_array_size(shape), ==, 4);
  for (int i = 0; i < 4; i++)
    dims[i] = (int) json_integer_value(json_array_get(shape, i));
  json_decref(root);
}

static double max_abs_diff(const float *a, const float *b, gsize n)
{
  double worst = 0;

  for (gsize i = 0; i < n; i++)
    worst = MAX(worst, fabs((double) a[i] - b[i]));
  return worst;
}

void nn_testcase_check(const char *dir, double tolerance)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *ckpt = g_build_filename(dir, "model.ckpt", NULL);
  g_autofree char *in_path = g_build_filename(dir, "input.bin", NULL);
  g_autofree char *out_path = g_build_filename(dir, "eval_logits.bin",
                                               NULL);
  int in[4], out[4], oh = 0, ow = 0;

  nn_testcase_shape(dir, "input", in);
  nn_testcase_shape(dir, "eval_logits", out);
  g_autoptr(NnModel) model = nn_ckpt_import(ckpt, &error);
  g_assert_no_error(error);
  g_assert_true(nn_output_size(nn_model_get_hparams(model), in[2], in[3],
                               &oh, &ow, &error));
  g_assert_cmpint(oh, ==, out[2]);
  g_assert_cmpint(ow, ==, out[3]);

  gsize n_in = (gsize) in[0] * in[1] * in[2] * in[3];
  gsize n_out = (gsize) out[0] * out[1] * out[2] * out[3];
  g_autofree float *input = nn_testcase_read_floats(in_path, n_in);
  g_autofree float *expect = nn_testcase_read_floats(out_path, n_out);
  g_autofree float *logits = g_new0(float, n_out);
  g_autoptr(NnRunner) runner = nn_runner_new(model, &error);
  g_assert_no_error(error);

  /* Twice: the second run reuses the cached plan. */
  for (int run = 0; run < 2; run++) {
    g_assert_true(nn_runner_forward(runner, input, in[0], in[2], in[3],
                                    logits, &error));
    g_assert_no_error(error);
    double diff = max_abs_diff(logits, expect, n_out);
    g_test_message("%s run %d: max |diff| %.3g", dir, run, diff);
    g_assert_cmpfloat(diff, <=, tolerance);
  }
}
