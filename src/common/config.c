/* config.c: settings from the environment and the label config (INI). */
#include "config.h"

#include "aapi-error.h"
#include "log.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* The four classes of the old service, with its extractor parameters. */
static const struct {
  const char *name;
  int label;
  const char *color;
  double min_size;
  double resize;
} default_classes[] = {
  { "Glomerulus", 1, "#4dd156", 20000, 0.125 },
  { "Artery", 2, "#d9cb11", 15000, 0.25 },
  { "Tubules", 3, "#e89f17", 4000, 0.25 },
  { "Arteriole", 4, "#1eaac9", 4000, 0.25 },
};

static void class_info_free(gpointer data)
{
  AapiClassInfo *info = data;

  g_free(info->name);
  g_free(info->color);
  g_free(info->model_root);
  g_free(info);
}

void aapi_config_free(AapiConfig *config)
{
  if (config == NULL)
    return;
  g_free(config->data_dir);
  g_free(config->database_url);
  g_free(config->model_dir);
  g_free(config->label_config_path);
  g_free(config->extractor_config_path);
  g_free(config->web_dir);
  g_free(config->bind_address);
  g_strfreev(config->api_tokens);
  if (config->classes)
    g_ptr_array_unref(config->classes);
  g_free(config);
}

bool aapi_parse_int64(const char *text, gint64 min, gint64 max,
                      gint64 *out, GError **error)
{
  if (text == NULL || *text == '\0') {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID, "empty number");
    return false;
  }
  if (strlen(text) > 32) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "number too long: '%.32s...'", text);
    return false;
  }

  char *end = NULL;
  errno = 0;
  gint64 value = g_ascii_strtoll(text, &end, 10);
  /* Digits past 64 bits are a number, just not one that fits. */
  bool overflow = errno == ERANGE && end != text && *end == '\0' &&
                  !g_ascii_isspace(text[0]);
  if (!overflow && (errno != 0 || end == text || *end != '\0' ||
                    g_ascii_isspace(text[0]))) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "'%s' is not an integer", text);
    return false;
  }
  if (overflow || value < min || value > max) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "%s is out of range [%" G_GINT64_FORMAT ", %"
                G_GINT64_FORMAT "]", text, min, max);
    return false;
  }
  *out = value;
  return true;
}

bool aapi_parse_double(const char *text, double min, double max,
                       double *out, GError **error)
{
  if (text == NULL || *text == '\0' || strlen(text) > 64 ||
      g_ascii_isspace(text[0])) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "'%s' is not a number", text ? text : "");
    return false;
  }

  char *end = NULL;
  errno = 0;
  double value = g_ascii_strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !isfinite(value)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "'%s' is not a finite number", text);
    return false;
  }
  if (value < min || value > max) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "%s is out of range [%g, %g]", text, min, max);
    return false;
  }
  *out = value;
  return true;
}

static bool env_int(const char *name, gint64 min, gint64 max, gint64 *out,
                    GError **error)
{
  const char *text = g_getenv(name);

  if (text == NULL || *text == '\0')
    return true;
  if (!aapi_parse_int64(text, min, max, out, error)) {
    g_prefix_error(error, "%s: ", name);
    return false;
  }
  return true;
}

static char *env_or(const char *name, const char *fallback)
{
  const char *text = g_getenv(name);

  return g_strdup(text && *text ? text : fallback);
}

bool aapi_parse_bool(const char *text, bool *out, GError **error)
{
  static const char *const yes[] = { "1", "true", "yes", "on" };
  static const char *const no[] = { "0", "false", "no", "off" };

  for (guint i = 0; text && i < G_N_ELEMENTS(yes); i++) {
    if (g_ascii_strcasecmp(text, yes[i]) == 0) {
      *out = true;
      return true;
    }
    if (g_ascii_strcasecmp(text, no[i]) == 0) {
      *out = false;
      return true;
    }
  }
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
              "'%.32s' is not one of 1/0, true/false, yes/no, on/off",
              text ? text : "");
  return false;
}

/* A token travels in an Authorization header: a space or a byte outside
 * printable ASCII would never arrive intact, so it could never match. */
static bool token_usable(const char *token)
{
  for (const guchar *p = (const guchar *) token; *p; p++)
    if (*p < 0x21 || *p > 0x7e)
      return false;
  return true;
}

/* Unset means open writes.  Set, it must give at least one token: an
 * empty value usually comes from a variable that expanded to nothing,
 * and reading it as "open" would drop the protection silently.  Blank
 * items between commas are skipped; the message never shows a token. */
static bool parse_tokens(const char *text, char ***out, GError **error)
{
  *out = NULL;
  if (text == NULL)
    return true;

  g_auto(GStrv) parts = g_strsplit(text, ",", -1);
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
  guint n = 0;
  for (char **p = parts; *p; p++) {
    g_strstrip(*p);
    if (**p == '\0')
      continue;
    n++;
    if (!token_usable(*p)) {
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                  "AAPI_API_TOKENS: token %u holds a space or a character "
                  "outside printable ASCII", n);
      return false;
    }
    g_strv_builder_add(builder, *p);
  }
  if (n == 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "AAPI_API_TOKENS is set but holds no token; give tok1,tok2 "
                "or unset it to leave writes open");
    return false;
  }
  *out = g_strv_builder_end(builder);
  return true;
}

/* Who needs a token: the list, and whether reads need one too.  Reads
 * closed with no token to open them would be a server nobody can read,
 * so that is refused rather than guessed. */
static bool parse_access(AapiConfig *config, GError **error)
{
  const char *reads = g_getenv("AAPI_TOKENS_FOR_READS");

  if (!parse_tokens(g_getenv("AAPI_API_TOKENS"), &config->api_tokens,
                    error))
    return false;
  config->tokens_for_reads = false;
  if (reads && !aapi_parse_bool(reads, &config->tokens_for_reads, error)) {
    g_prefix_error(error, "AAPI_TOKENS_FOR_READS: ");
    return false;
  }
  if (config->tokens_for_reads && config->api_tokens == NULL) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "AAPI_TOKENS_FOR_READS is on but AAPI_API_TOKENS is unset: "
                "no token could open a read; set both or neither");
    return false;
  }
  return true;
}

AapiConfig *aapi_config_new_from_env(GError **error)
{
  g_autoptr(AapiConfig) config = g_new0(AapiConfig, 1);
  gint64 value;

  config->data_dir = env_or("AAPI_DATA_DIR", "./data");
  const char *url = g_getenv("AAPI_DATABASE_URL");
  if (url && *url)
    config->database_url = g_strdup(url);
  else
    config->database_url = g_strdup_printf("sqlite://%s/aapi.db",
                                           config->data_dir);
  config->model_dir = env_or("AAPI_MODEL_DIR", "./model");
  config->label_config_path = env_or("AAPI_LABEL_CONFIG", NULL);
  config->extractor_config_path = env_or("AAPI_EXTRACTOR_CONFIG", NULL);
  config->web_dir = env_or("AAPI_WEB_DIR", NULL);
  config->bind_address = env_or("AAPI_BIND", "127.0.0.1");
  if (!parse_access(config, error))
    return NULL;

  value = 5000;
  if (!env_int("AAPI_PORT", 0, 65535, &value, error))
    return NULL;
  config->port = (guint) value;

  value = MAX(4, 2 * g_get_num_processors());
  if (!env_int("AAPI_THREADS", 1, 256, &value, error))
    return NULL;
  config->threads = (guint) value;

  value = 30;
  if (!env_int("AAPI_CONNECTION_TIMEOUT", 1, 3600, &value, error))
    return NULL;
  config->connection_timeout_s = (guint) value;

  value = 0;
  if (!env_int("AAPI_CONNECTIONS_PER_IP", 1, 65535, &value, error))
    return NULL;
  config->connections_per_ip = (guint) value;

  value = 64 * 1024 * 1024;
  if (!env_int("AAPI_MAX_BODY_BYTES", 1024, G_GINT64_CONSTANT(1) << 34,
               &value, error))
    return NULL;
  config->max_body_bytes = (guint64) value;

  value = 10000LL * 10000LL;
  if (!env_int("AAPI_MAX_PREDICT_PIXELS", 1, G_GINT64_CONSTANT(1) << 40,
               &value, error))
    return NULL;
  config->max_predict_pixels = (guint64) value;

  value = 1;
  if (!env_int("AAPI_PREDICT_WORKERS", 1, 64, &value, error))
    return NULL;
  config->predict_workers = (guint) value;

  value = 1200;
  if (!env_int("AAPI_TRAIN_INTERVAL", 0, 7 * 24 * 3600, &value, error))
    return NULL;
  config->train_interval_s = (guint) value;

  value = 60;
  if (!env_int("AAPI_TRAIN_FIRST_DELAY", 0, 7 * 24 * 3600, &value, error))
    return NULL;
  config->train_first_delay_s = (guint) value;

  static const struct {
    const char *name;
    gint64 fallback, min, max;
    gsize offset;
  } train_ints[] = {
    { "AAPI_TRAIN_EPOCHS", 3, 1, 1000,
      G_STRUCT_OFFSET(AapiConfig, train_epochs) },
    { "AAPI_TRAIN_BATCH", 8, 1, 256,
      G_STRUCT_OFFSET(AapiConfig, train_batch) },
    { "AAPI_TRAIN_MAX_PATCHES", 1024, 1, 10000000,
      G_STRUCT_OFFSET(AapiConfig, train_max_patches) },
    { "AAPI_BOOTSTRAP_DEPTH", 5, 1, 8,
      G_STRUCT_OFFSET(AapiConfig, bootstrap_depth) },
    { "AAPI_BOOTSTRAP_WF", 4, 1, 8,
      G_STRUCT_OFFSET(AapiConfig, bootstrap_wf) },
  };
  for (guint i = 0; i < G_N_ELEMENTS(train_ints); i++) {
    value = train_ints[i].fallback;
    if (!env_int(train_ints[i].name, train_ints[i].min, train_ints[i].max,
                 &value, error))
      return NULL;
    G_STRUCT_MEMBER(guint, config, train_ints[i].offset) = (guint) value;
  }

  config->train_lr = 1e-3;
  const char *lr = g_getenv("AAPI_TRAIN_LR");
  if (lr && *lr &&
      !aapi_parse_double(lr, 1e-9, 1.0, &config->train_lr, error)) {
    g_prefix_error(error, "AAPI_TRAIN_LR: ");
    return NULL;
  }

  config->promote_min_change = -0.05;
  const char *change = g_getenv("AAPI_PROMOTE_MIN_CHANGE");
  if (change && *change &&
      !aapi_parse_double(change, -1.0, 1e6, &config->promote_min_change,
                         error)) {
    g_prefix_error(error, "AAPI_PROMOTE_MIN_CHANGE: ");
    return NULL;
  }

  if (!aapi_debug_check(g_getenv("AAPI_DEBUG"), error))
    return NULL;
  /* Read by the slide cache itself; checked here so that a typo stops the
   * start rather than leaving the fast reads on. */
  const char *fast_read = g_getenv("AAPI_TIFF_FAST_READ");
  bool on;
  if (fast_read && *fast_read && !aapi_parse_bool(fast_read, &on, error)) {
    g_prefix_error(error, "AAPI_TIFF_FAST_READ: ");
    return NULL;
  }

  if (!aapi_config_load_classes(config, config->label_config_path,
                                config->extractor_config_path, error))
    return NULL;

  return g_steal_pointer(&config);
}

static AapiClassInfo *class_info_default(guint i, const char *model_dir)
{
  AapiClassInfo *info = g_new0(AapiClassInfo, 1);

  info->name = g_strdup(default_classes[i].name);
  info->label = default_classes[i].label;
  info->color = g_strdup(default_classes[i].color);
  info->min_size = default_classes[i].min_size;
  info->threshold = 0.5;
  info->model_root = g_strdup(model_dir);
  info->resize = default_classes[i].resize;
  info->patch_size = 256;
  info->stride_size = 64;
  info->mirror_pad_size = 128;
  return info;
}

static bool valid_color(const char *color)
{
  if (color == NULL || strlen(color) != 7 || color[0] != '#')
    return false;
  for (int i = 1; i < 7; i++)
    if (!g_ascii_isxdigit(color[i]))
      return false;
  return true;
}

static bool key_double(GKeyFile *file, const char *group, const char *key,
                       double min, double max, double *out, GError **error)
{
  g_autofree char *text = g_key_file_get_value(file, group, key, NULL);

  if (text == NULL)
    return true;
  g_strstrip(text);
  if (!aapi_parse_double(text, min, max, out, error)) {
    g_prefix_error(error, "[%s] %s: ", group, key);
    return false;
  }
  return true;
}

static bool key_int(GKeyFile *file, const char *group, const char *key,
                    gint64 min, gint64 max, int *out, GError **error)
{
  g_autofree char *text = g_key_file_get_value(file, group, key, NULL);
  gint64 value;

  if (text == NULL)
    return true;
  g_strstrip(text);
  if (!aapi_parse_int64(text, min, max, &value, error)) {
    g_prefix_error(error, "[%s] %s: ", group, key);
    return false;
  }
  *out = (int) value;
  return true;
}

static bool read_label_section(GKeyFile *file, const char *group,
                               AapiClassInfo *info, GError **error)
{
  if (!key_int(file, group, "label", 1, 255, &info->label, error) ||
      !key_double(file, group, "min_size", 0, 1e12, &info->min_size,
                  error) ||
      !key_double(file, group, "threshold", 0, 1, &info->threshold, error))
    return false;

  g_autofree char *color = g_key_file_get_value(file, group, "color", NULL);
  if (color) {
    g_strstrip(color);
    if (!valid_color(color)) {
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                  "[%s] color: '%s' is not #rrggbb", group, color);
      return false;
    }
    g_free(info->color);
    info->color = g_steal_pointer(&color);
  }

  g_autofree char *root = g_key_file_get_value(file, group, "model_root",
                                               NULL);
  if (root) {
    g_free(info->model_root);
    info->model_root = g_strdup(g_strstrip(root));
  }
  return true;
}

static bool read_extractor_section(GKeyFile *file, const char *group,
                                   AapiClassInfo *info, GError **error)
{
  if (!key_double(file, group, "resize", 0.001, 1.0, &info->resize,
                  error) ||
      !key_int(file, group, "patch_size", 16, 4096, &info->patch_size,
               error) ||
      !key_int(file, group, "stride_size", 1, 4096, &info->stride_size,
               error) ||
      !key_int(file, group, "mirror_pad_size", 0, 4096,
               &info->mirror_pad_size, error))
    return false;
  /* Tiles further apart than their size would leave pixels unseen. */
  if (info->stride_size > info->patch_size) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "[%s] stride_size %d is over patch_size %d (pixels "
                "between tiles would never be predicted)", group,
                info->stride_size, info->patch_size);
    return false;
  }
  return true;
}

/* A class name is a folder name under the model root and the data dir:
 * no separators, no "." or "..", nothing hidden. */
static bool check_class_name(const char *name, GError **error)
{
  if (*name == '\0' || *name == '.' || strchr(name, '/') ||
      strchr(name, '\\')) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "[%s]: a class name becomes a folder name, so it cannot "
                "be empty, start with '.' or hold '/' or '\\'", name);
    return false;
  }
  return true;
}

/* Sections of the extractor file that name no class are likely typos
 * (names are case sensitive); they are said, not silently dropped. */
static void warn_unused_sections(GKeyFile *file, const char *path,
                                 const GPtrArray *classes)
{
  g_auto(GStrv) groups = g_key_file_get_groups(file, NULL);

  for (guint i = 0; groups[i]; i++) {
    bool used = false;

    for (guint c = 0; !used && c < classes->len; c++)
      used = strcmp(((AapiClassInfo *) classes->pdata[c])->name,
                    groups[i]) == 0;
    if (!used)
      g_warning("%s: [%s] names no class of the label config; ignored",
                path, groups[i]);
  }
}

static GKeyFile *load_ini(const char *path, GError **error)
{
  g_autoptr(GKeyFile) file = g_key_file_new();

  if (!g_key_file_load_from_file(file, path, G_KEY_FILE_NONE, error)) {
    g_prefix_error(error, "%s: ", path);
    return NULL;
  }
  return g_steal_pointer(&file);
}

static gint compare_label(gconstpointer a, gconstpointer b)
{
  const AapiClassInfo *x = *(AapiClassInfo * const *) a;
  const AapiClassInfo *y = *(AapiClassInfo * const *) b;

  return x->label - y->label;
}

bool aapi_config_load_classes(AapiConfig *config, const char *label_path,
                              const char *extractor_path, GError **error)
{
  g_autoptr(GPtrArray) classes = g_ptr_array_new_with_free_func(
      class_info_free);
  const char *model_dir = config->model_dir ? config->model_dir : "./model";

  if (label_path == NULL) {
    for (guint i = 0; i < G_N_ELEMENTS(default_classes); i++)
      g_ptr_array_add(classes, class_info_default(i, model_dir));
  } else {
    g_autoptr(GKeyFile) file = load_ini(label_path, error);
    if (file == NULL)
      return false;

    gsize n = 0;
    g_auto(GStrv) groups = g_key_file_get_groups(file, &n);
    for (gsize i = 0; i < n; i++) {
      if (!check_class_name(groups[i], error)) {
        g_prefix_error(error, "%s: ", label_path);
        return false;
      }
      AapiClassInfo *info = g_new0(AapiClassInfo, 1);
      info->name = g_strdup(groups[i]);
      info->color = g_strdup("#808080");
      info->threshold = 0.5;
      info->model_root = g_strdup(model_dir);
      info->resize = 0.25;
      info->patch_size = 256;
      info->stride_size = 64;
      info->mirror_pad_size = 128;
      g_ptr_array_add(classes, info);
      if (!read_label_section(file, groups[i], info, error)) {
        g_prefix_error(error, "%s: ", label_path);
        return false;
      }
      if (info->label == 0) {
        g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                    "%s: [%s] has no label", label_path, groups[i]);
        return false;
      }
    }
    if (classes->len == 0) {
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                  "%s: no class sections", label_path);
      return false;
    }
  }

  if (extractor_path) {
    g_autoptr(GKeyFile) file = load_ini(extractor_path, error);
    if (file == NULL)
      return false;
    for (guint i = 0; i < classes->len; i++) {
      AapiClassInfo *info = classes->pdata[i];
      if (g_key_file_has_group(file, info->name) &&
          !read_extractor_section(file, info->name, info, error)) {
        g_prefix_error(error, "%s: ", extractor_path);
        return false;
      }
    }
    warn_unused_sections(file, extractor_path, classes);
  }

  g_ptr_array_sort(classes, compare_label);
  for (guint i = 1; i < classes->len; i++) {
    const AapiClassInfo *a = classes->pdata[i - 1];
    const AapiClassInfo *b = classes->pdata[i];
    if (a->label == b->label) {
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                  "classes %s and %s share label %d", a->name, b->name,
                  a->label);
      return false;
    }
  }

  if (config->classes)
    g_ptr_array_unref(config->classes);
  config->classes = g_steal_pointer(&classes);
  return true;
}

const AapiClassInfo *aapi_config_find_class(const AapiConfig *config,
                                            const char *name)
{
  for (guint i = 0; i < config->classes->len; i++) {
    const AapiClassInfo *info = config->classes->pdata[i];
    if (g_strcmp0(info->name, name) == 0)
      return info;
  }
  return NULL;
}

char *aapi_config_slides_dir(const AapiConfig *config)
{
  return g_build_filename(config->data_dir, "slides", NULL);
}

char *aapi_config_annotations_dir(const AapiConfig *config)
{
  return g_build_filename(config->data_dir, "annotations", NULL);
}
