/* test-config.c: checked number parsing and the label config. */
#include "common/aapi-error.h"
#include "common/config.h"
#include "testutil.h"

#include <glib/gstdio.h>
#include <string.h>

static void test_parse_int(void)
{
  static const struct {
    const char *text;
    bool ok;
    gint64 value;
  } cases[] = {
    { "0", true, 0 },
    { "42", true, 42 },
    { "-5", true, -5 },
    { "", false, 0 },
    { "12abc", false, 0 },
    { " 3", false, 0 },
    { "99999999999999999999999", false, 0 },
    { "1e3", false, 0 },
    { "0x10", false, 0 },
  };

  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    gint64 value = -1;
    bool ok = aapi_parse_int64(cases[i].text, G_MININT64, G_MAXINT64,
                               &value, &error);
    g_assert_cmpint(ok, ==, cases[i].ok);
    if (ok)
      g_assert_cmpint(value, ==, cases[i].value);
    else
      g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  }
}

static void test_parse_range(void)
{
  g_autoptr(GError) error = NULL;
  gint64 value;

  g_assert_false(aapi_parse_int64("-1", 0, 10, &value, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_clear_error(&error);

  double d;
  g_assert_true(aapi_parse_double("0.25", 0, 1, &d, &error));
  g_assert_cmpfloat(d, ==, 0.25);
  g_assert_false(aapi_parse_double("nan", 0, 1, &d, &error));
  g_clear_error(&error);
  g_assert_false(aapi_parse_double("inf", -1e9, 1e9, &d, &error));
}

static void test_default_classes(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AapiConfig) config = aapi_config_new_from_env(&error);

  g_assert_no_error(error);
  g_assert_cmpuint(config->classes->len, ==, 4);
  const AapiClassInfo *glom = aapi_config_find_class(config, "Glomerulus");
  g_assert_nonnull(glom);
  g_assert_cmpint(glom->label, ==, 1);
  g_assert_cmpstr(glom->color, ==, "#4dd156");
  g_assert_cmpfloat(glom->resize, ==, 0.125);
  g_assert_cmpfloat(glom->min_size, ==, 20000);
  const AapiClassInfo *art = aapi_config_find_class(config, "Arteriole");
  g_assert_cmpint(art->label, ==, 4);
  g_assert_cmpfloat(art->resize, ==, 0.25);
}

static void test_train_settings(void)
{
  g_autoptr(GError) error = NULL;

  g_setenv("AAPI_TRAIN_LR", "0.0001", TRUE);
  g_setenv("AAPI_TRAIN_EPOCHS", "7", TRUE);
  g_autoptr(AapiConfig) config = aapi_config_new_from_env(&error);
  g_assert_no_error(error);
  g_assert_cmpfloat(config->train_lr, ==, 0.0001);
  g_assert_cmpuint(config->train_epochs, ==, 7);

  g_setenv("AAPI_TRAIN_LR", "fast", TRUE);
  g_assert_null(aapi_config_new_from_env(&error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_assert_nonnull(strstr(error->message, "AAPI_TRAIN_LR"));
  g_unsetenv("AAPI_TRAIN_LR");
  g_unsetenv("AAPI_TRAIN_EPOCHS");
}

static void test_label_file(void)
{
  g_autofree char *dir = test_make_tmpdir("config");
  g_autofree char *path = g_build_filename(dir, "label_info.ini", NULL);
  g_autoptr(GError) error = NULL;

  g_assert_true(g_file_set_contents(path,
      "[Cortex]\nlabel = 2\ncolor = #112233\nmin_size = 10\n"
      "[Medulla]\nlabel = 1\ncolor = #445566\nthreshold = 0.7\n",
      -1, NULL));
  g_autoptr(AapiConfig) config = g_new0(AapiConfig, 1);
  config->model_dir = g_strdup("/m");
  g_assert_true(aapi_config_load_classes(config, path, NULL, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(config->classes->len, ==, 2);
  const AapiClassInfo *first = config->classes->pdata[0];
  g_assert_cmpstr(first->name, ==, "Medulla");
  g_assert_cmpfloat(first->threshold, ==, 0.7);

  g_assert_true(g_file_set_contents(path, "[Bad]\nlabel = 1\ncolor = red\n",
                                    -1, NULL));
  g_assert_false(aapi_config_load_classes(config, path, NULL, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/config/parse-int", test_parse_int);
  g_test_add_func("/config/parse-range", test_parse_range);
  g_test_add_func("/config/default-classes", test_default_classes);
  g_test_add_func("/config/label-file", test_label_file);
  g_test_add_func("/config/train-settings", test_train_settings);
  return g_test_run();
}
