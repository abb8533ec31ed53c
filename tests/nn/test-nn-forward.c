/* test-nn-forward.c: eval-mode parity of the oneDNN U-Net with PyTorch. */
#include "nn-testcase.h"
#include "common/aapi-error.h"
#include "testutil.h"

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

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/nn/forward/shared-fixtures", test_shared_fixtures);
  g_test_add_func("/nn/forward/generated-cases", test_generated_cases);
  return g_test_run();
}
