/*
 * config.h: settings from flags and the environment, and the label config.
 *
 * Precedence: a command-line flag beats an environment variable, which beats
 * the default.  A config is filled once at start and read-only afterwards,
 * so it is safe to share between threads.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

/* One class of the label config (label_info.ini plus extractor_param.ini). */
typedef struct {
  char *name;            /* section name, e.g. "Glomerulus" */
  int label;             /* > 0 */
  char *color;           /* "#rrggbb" */
  double min_size;       /* level-0 px^2 */
  double threshold;      /* probability cut, default 0.5 */
  char *model_root;      /* folder holding <Class>/ checkpoints */
  double resize;         /* extractor: scale applied to level-0 pixels */
  int patch_size;        /* extractor: tile edge, 256 */
  int stride_size;       /* extractor: tile stride, 64 */
  int mirror_pad_size;   /* extractor: mirror padding, 128 */
} AapiClassInfo;

typedef struct {
  char *data_dir;          /* AAPI_DATA_DIR, ./data */
  char *database_url;      /* AAPI_DATABASE_URL, sqlite://<data>/aapi.db */
  char *model_dir;         /* AAPI_MODEL_DIR, ./model */
  char *label_config_path; /* AAPI_LABEL_CONFIG, NULL = built-in classes */
  char *extractor_config_path; /* AAPI_EXTRACTOR_CONFIG, NULL = built-in */
  char *web_dir;           /* AAPI_WEB_DIR, the built viewer */
  char *bind_address;      /* AAPI_BIND, 127.0.0.1 */
  guint port;              /* AAPI_PORT / --port, 5000 */
  guint threads;           /* AAPI_THREADS, HTTP worker threads */
  guint connection_timeout_s; /* AAPI_CONNECTION_TIMEOUT, idle s, 30 */
  guint connections_per_ip; /* AAPI_CONNECTIONS_PER_IP; 0 = half of all */
  guint64 max_body_bytes;  /* AAPI_MAX_BODY_BYTES, 64 MiB */
  guint64 max_predict_pixels; /* AAPI_MAX_PREDICT_PIXELS, level-0 px */
  guint predict_workers;   /* AAPI_PREDICT_WORKERS */
  guint train_interval_s;  /* AAPI_TRAIN_INTERVAL, 1200 */
  guint train_first_delay_s; /* AAPI_TRAIN_FIRST_DELAY, 60 */
  double promote_min_change; /* AAPI_PROMOTE_MIN_CHANGE, -0.05 */
  guint train_epochs;      /* AAPI_TRAIN_EPOCHS, 3 */
  double train_lr;         /* AAPI_TRAIN_LR, Adam's step, 1e-3 */
  guint train_batch;       /* AAPI_TRAIN_BATCH, 8 */
  guint train_max_patches; /* AAPI_TRAIN_MAX_PATCHES per epoch, 1024 */
  guint bootstrap_depth;   /* AAPI_BOOTSTRAP_DEPTH, 5 */
  guint bootstrap_wf;      /* AAPI_BOOTSTRAP_WF, 4 */
  char **api_tokens;       /* AAPI_API_TOKENS, comma separated, blanks
                            * skipped; unset = NULL = open writes; set
                            * without a token is refused */
  bool tokens_for_reads;   /* AAPI_TOKENS_FOR_READS (yes/no ...): reads
                            * need one too; refused without tokens */
  GPtrArray *classes;      /* AapiClassInfo*, in label order */
} AapiConfig;

/* Fills a config from the environment and defaults; never NULL. */
AapiConfig *aapi_config_new_from_env(GError **error);
void aapi_config_free(AapiConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AapiConfig, aapi_config_free)

/* Loads label_info.ini / extractor_param.ini style files (either may be
 * NULL for the built-in defaults) into config->classes. */
bool aapi_config_load_classes(AapiConfig *config, const char *label_path,
                              const char *extractor_path, GError **error);

const AapiClassInfo *aapi_config_find_class(const AapiConfig *config,
                                            const char *name);

/* Checked number parsing for flags, env and query parameters: the whole
 * string must be a number in range, no sign tricks, no trailing text. */
bool aapi_parse_int64(const char *text, gint64 min, gint64 max,
                      gint64 *out, GError **error);
bool aapi_parse_double(const char *text, double min, double max,
                       double *out, GError **error);
/* A switch: 1/0, true/false, yes/no, on/off in any case; else an error. */
bool aapi_parse_bool(const char *text, bool *out, GError **error);

/* Paths inside the data dir. */
char *aapi_config_slides_dir(const AapiConfig *config);
char *aapi_config_annotations_dir(const AapiConfig *config);
