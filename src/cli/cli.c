/* cli.c: option parsing shared by every subcommand. */
#include "cli.h"

#include <stdio.h>

static char *opt_data_dir;
static char *opt_database_url;
static char *opt_model_dir;
static char *opt_label_config;

static const GOptionEntry common_entries[] = {
  { "data-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_data_dir,
    "Data folder (AAPI_DATA_DIR, ./data)", "DIR" },
  { "database-url", 0, 0, G_OPTION_ARG_STRING, &opt_database_url,
    "sqlite://PATH or mysql://user:pass@host:port/db (AAPI_DATABASE_URL)",
    "URL" },
  { "model-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_model_dir,
    "Model folder (AAPI_MODEL_DIR, ./model)", "DIR" },
  { "label-config", 0, 0, G_OPTION_ARG_FILENAME, &opt_label_config,
    "label_info.ini (AAPI_LABEL_CONFIG)", "FILE" },
  { NULL }
};

int cli_fail(const char *command, const GError *error)
{
  fprintf(stderr, "aapi %s: %s\n", command,
          error ? error->message : "failed");
  return 1;
}

/* Flags override the environment: set them there before the config is
 * read, so that derived defaults (the SQLite path under the data dir)
 * follow them. */
static void export_flags(void)
{
  if (opt_data_dir)
    g_setenv("AAPI_DATA_DIR", opt_data_dir, TRUE);
  if (opt_database_url)
    g_setenv("AAPI_DATABASE_URL", opt_database_url, TRUE);
  if (opt_model_dir)
    g_setenv("AAPI_MODEL_DIR", opt_model_dir, TRUE);
  if (opt_label_config)
    g_setenv("AAPI_LABEL_CONFIG", opt_label_config, TRUE);
}

AapiConfig *cli_parse(const char *command, const char *parameter_text,
                      const char *summary, const GOptionEntry *entries,
                      int *argc, char ***argv, int *exit_status)
{
  g_autofree char *program = g_strdup_printf("aapi %s", command);
  g_autoptr(GOptionContext) context = g_option_context_new(parameter_text);
  g_autoptr(GError) error = NULL;

  g_set_prgname(program);
  g_option_context_set_summary(context, summary);
  g_option_context_add_main_entries(context, common_entries, NULL);
  if (entries)
    g_option_context_add_main_entries(context, entries, NULL);

  if (!g_option_context_parse(context, argc, argv, &error)) {
    fprintf(stderr, "aapi %s: %s\n(see aapi %s --help)\n", command,
            error->message, command);
    *exit_status = 2;
    return NULL;
  }

  export_flags();
  AapiConfig *config = aapi_config_new_from_env(&error);
  if (config == NULL) {
    *exit_status = cli_fail(command, error);
    return NULL;
  }
  *exit_status = 0;
  return config;
}
