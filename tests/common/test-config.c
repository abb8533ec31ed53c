/* test-config.c: checked number and switch parsing, the token settings
 * and the label config. */
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
  /* Too many digits for 64 bits: out of range, not "not an integer". */
  g_assert_false(aapi_parse_int64("99999999999999999999999", 0, 10, &value,
                                  &error));
  g_assert_nonnull(strstr(error->message, "out of range"));
  g_clear_error(&error);
  g_assert_false(aapi_parse_int64("-99999999999999999999", 0, 10, &value,
                                  &error));
  g_assert_nonnull(strstr(error->message, "out of range"));
  g_clear_error(&error);

  double d;
  g_assert_true(aapi_parse_double("0.25", 0, 1, &d, &error));
  g_assert_cmpfloat(d, ==, 0.25);
  g_assert_false(aapi_parse_double("nan", 0, 1, &d, &error));
  g_clear_error(&error);
  g_assert_false(aapi_parse_double("inf", -1e9, 1e9, &d, &error));
}

static void test_parse_bool(void)
{
  static const struct {
    const char *text;
    bool ok;
    bool value;
  } cases[] = {
    { "1", true, true }, { "0", true, false },
    { "true", true, true }, { "FALSE", true, false },
    { "Yes", true, true }, { "no", true, false },
    { "ON", true, true }, { "off", true, false },
    { "", false, false }, { "2", false, false }, { "y", false, false },
    { " yes", false, false }, { "enabled", false, false },
  };

  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    bool value = !cases[i].value;
    bool ok = aapi_parse_bool(cases[i].text, &value, &error);
    g_assert_cmpint(ok, ==, cases[i].ok);
    if (ok)
      g_assert_cmpint(value, ==, cases[i].value);
    else
      g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  }
  g_assert_false(aapi_parse_bool(NULL, &(bool) { false }, NULL));
}

static void set_or_unset(const char *name, const char *value)
{
  if (value)
    g_setenv(name, value, TRUE);
  else
    g_unsetenv(name);
}

/* AAPI_API_TOKENS and AAPI_TOKENS_FOR_READS (NULL = unset): the tokens
 * kept, joined by '|', or the part of the message a refusal gives. */
static void test_token_settings(void)
{
  static const struct {
    const char *tokens, *reads;
    const char *kept;      /* NULL: refused */
    bool reads_closed;
    const char *message;
  } cases[] = {
    { NULL, NULL, "", false, NULL },
    { NULL, "no", "", false, NULL },
    { "sec1", NULL, "sec1", false, NULL },
    { " sec1 ,, sec2 ,", "YES", "sec1|sec2", true, NULL },
    { "sec1,sec2", "off", "sec1|sec2", false, NULL },
    { "", NULL, NULL, false, "holds no token" },
    { ",", NULL, NULL, false, "holds no token" },
    { " , ,", "1", NULL, false, "holds no token" },
    { "sec1,sec 2", NULL, NULL, false, "token 2 holds a space" },
    { "s\xc3\xa9" "c1", NULL, NULL, false, "token 1" },
    { NULL, "yes", NULL, false, "AAPI_API_TOKENS is unset" },
    { "sec1", "maybe", NULL, false, "AAPI_TOKENS_FOR_READS" },
    { "sec1", "", NULL, false, "AAPI_TOKENS_FOR_READS" },
  };

  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    set_or_unset("AAPI_API_TOKENS", cases[i].tokens);
    set_or_unset("AAPI_TOKENS_FOR_READS", cases[i].reads);
    g_autoptr(AapiConfig) config = aapi_config_new_from_env(&error);
    g_test_message("case %u", i);
    if (cases[i].kept == NULL) {
      g_assert_null(config);
      g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
      g_assert_nonnull(strstr(error->message, cases[i].message));
      /* A refusal never shows a token. */
      g_assert_null(strstr(error->message, "sec"));
      continue;
    }
    g_assert_no_error(error);
    g_autofree char *kept = config->api_tokens
        ? g_strjoinv("|", config->api_tokens) : g_strdup("");
    g_assert_cmpstr(kept, ==, cases[i].kept);
    g_assert_cmpint(config->tokens_for_reads, ==, cases[i].reads_closed);
  }
  g_unsetenv("AAPI_API_TOKENS");
  g_unsetenv("AAPI_TOKENS_FOR_READS");
}

static void test_connection_settings(void)
{
  g_autoptr(GError) error = NULL;

  g_unsetenv("AAPI_CONNECTION_TIMEOUT");
  g_unsetenv("AAPI_CONNECTIONS_PER_IP");
  g_autoptr(AapiConfig) config = aapi_config_new_from_env(&error);
  g_assert_no_error(error);
  g_assert_cmpuint(config->connection_timeout_s, ==, 30);
  g_assert_cmpuint(config->connections_per_ip, ==, 0);

  g_setenv("AAPI_CONNECTIONS_PER_IP", "0", TRUE);
  g_assert_null(aapi_config_new_from_env(&error));
  g_assert_nonnull(strstr(error->message, "AAPI_CONNECTIONS_PER_IP"));
  g_clear_error(&error);
  g_unsetenv("AAPI_CONNECTIONS_PER_IP");

  g_setenv("AAPI_CONNECTION_TIMEOUT", "soon", TRUE);
  g_assert_null(aapi_config_new_from_env(&error));
  g_assert_nonnull(strstr(error->message, "AAPI_CONNECTION_TIMEOUT"));
  g_unsetenv("AAPI_CONNECTION_TIMEOUT");
}

/* Switches and debug categories read elsewhere are still checked at
 * start: a typo stops it with the variable's name. */
static void test_checked_elsewhere(void)
{
  static const struct {
    const char *name, *value;
    bool ok;
  } cases[] = {
    { "AAPI_DEBUG", "perf", true },
    { "AAPI_DEBUG", "sql, HTTP:train", true },
    { "AAPI_DEBUG", "all", true },
    { "AAPI_DEBUG", "", true },
    { "AAPI_DEBUG", "bogus", false },
    { "AAPI_DEBUG", "perf,sqll", false },
    { "AAPI_TIFF_FAST_READ", "0", true },
    { "AAPI_TIFF_FAST_READ", "off", true },
    { "AAPI_TIFF_FAST_READ", "maybe", false },
  };

  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    g_setenv(cases[i].name, cases[i].value, TRUE);
    g_autoptr(AapiConfig) config = aapi_config_new_from_env(&error);
    g_test_message("%s=%s", cases[i].name, cases[i].value);
    if (cases[i].ok) {
      g_assert_no_error(error);
    } else {
      g_assert_null(config);
      g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
      g_assert_nonnull(strstr(error->message, cases[i].name));
    }
    g_unsetenv(cases[i].name);
  }
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

  /* Class names become folder names. */
  static const char *const names[] = { "..", ".hidden", "Glom/erulus",
                                       "a\\b" };
  for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
    g_autofree char *text = g_strdup_printf("[%s]\nlabel = 1\n", names[i]);
    g_clear_error(&error);
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    g_assert_false(aapi_config_load_classes(config, path, NULL, &error));
    g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
    g_assert_nonnull(strstr(error->message, "folder name"));
  }
}

/* Warnings saying an extractor section names no class. */
static gint unused_warnings;

static GLogWriterOutput count_unused(GLogLevelFlags level,
                                     const GLogField *fields, gsize n,
                                     gpointer data)
{
  for (gsize i = 0; i < n; i++) {
    if (g_strcmp0(fields[i].key, "MESSAGE") == 0 &&
        (level & G_LOG_LEVEL_WARNING) &&
        g_pattern_match_simple("*[glomerulus] names no class*",
                               fields[i].value)) {
      g_atomic_int_inc(&unused_warnings);
      return G_LOG_WRITER_HANDLED;
    }
  }
  return g_log_writer_default(level, fields, n, data);
}

/* Extractor sections: tiles may not leave gaps; a section naming no class
 * is ignored with a warning. */
static void test_extractor_file(void)
{
  g_autofree char *dir = test_make_tmpdir("config");
  g_autofree char *path = g_build_filename(dir, "extractor_param.ini",
                                           NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(AapiConfig) config = g_new0(AapiConfig, 1);

  config->model_dir = g_strdup("/m");
  g_assert_true(g_file_set_contents(path,
      "[Glomerulus]\nresize = 0.5\npatch_size = 128\nstride_size = 32\n",
      -1, NULL));
  g_assert_true(aapi_config_load_classes(config, NULL, path, &error));
  g_assert_no_error(error);
  const AapiClassInfo *glom = config->classes->pdata[0];
  g_assert_cmpstr(glom->name, ==, "Glomerulus");
  g_assert_cmpint(glom->patch_size, ==, 128);
  g_assert_cmpint(glom->stride_size, ==, 32);

  g_assert_true(g_file_set_contents(path,
      "[Glomerulus]\npatch_size = 64\nstride_size = 65\n", -1, NULL));
  g_assert_false(aapi_config_load_classes(config, NULL, path, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_assert_nonnull(strstr(error->message, "stride_size 65"));
  g_clear_error(&error);

  g_assert_true(g_file_set_contents(path,
      "[glomerulus]\nresize = 0.5\n", -1, NULL));
  g_assert_true(aapi_config_load_classes(config, NULL, path, &error));
  g_assert_no_error(error);
  g_assert_cmpint(g_atomic_int_get(&unused_warnings), ==, 1);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  /* The unused-section warning is expected and counted. */
  g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  g_log_set_writer_func(count_unused, NULL, NULL);
  g_test_add_func("/config/parse-int", test_parse_int);
  g_test_add_func("/config/parse-range", test_parse_range);
  g_test_add_func("/config/parse-bool", test_parse_bool);
  g_test_add_func("/config/token-settings", test_token_settings);
  g_test_add_func("/config/connection-settings",
                  test_connection_settings);
  g_test_add_func("/config/checked-elsewhere", test_checked_elsewhere);
  g_test_add_func("/config/default-classes", test_default_classes);
  g_test_add_func("/config/label-file", test_label_file);
  g_test_add_func("/config/extractor-file", test_extractor_file);
  g_test_add_func("/config/train-settings", test_train_settings);
  return g_test_run();
}
