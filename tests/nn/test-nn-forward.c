/* test-nn-forward.c: eval-mode parity of the oneDNN U-Net with PyTorch. */
#include "nn-testcase.h"
#include "common/aapi-error.h"
#include "testutil.h"

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

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/nn/forward/shared-fixtures", test_shared_fixtures);
  return g_test_run();
}
