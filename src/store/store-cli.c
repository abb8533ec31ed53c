/* store-cli.c: `aapi init-db`, creating the schema (idempotent). */
#include "cli/cli.h"
#include "store/store.h"

#include <stdio.h>

/* The URL without its password, for printing. */
static char *url_for_humans(const char *url)
{
  g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_HAS_PASSWORD, NULL);

  if (uri == NULL || g_uri_get_password(uri) == NULL)
    return g_strdup(url);
  g_autoptr(GUri) shown = g_uri_build_with_user(
      G_URI_FLAGS_HAS_PASSWORD, g_uri_get_scheme(uri), g_uri_get_user(uri),
      "***", NULL, g_uri_get_host(uri), g_uri_get_port(uri),
      g_uri_get_path(uri), g_uri_get_query(uri), NULL);
  return g_uri_to_string(shown);
}

static void report(AapiStore *store, const char *url)
{
  const char *const *created = store_created_tables(store);
  g_autofree char *shown = url_for_humans(url);
  g_autoptr(GError) error = NULL;
  gint64 version = store_schema_version(store, &error);

  printf("database: %s (%s), schema version %" G_GINT64_FORMAT "\n", shown,
         store_backend_name(store), version);
  if (created[0] == NULL)
    printf("tables: all present, nothing created\n");
  for (guint i = 0; created[i]; i++)
    printf("created table %s\n", created[i]);
  if (store_backfilled_rows(store) > 0)
    printf("numbered %" G_GINT64_FORMAT " existing annotation rows\n",
           store_backfilled_rows(store));
}

int cli_init_db(int argc, char **argv)
{
  int status;
  g_autoptr(AapiConfig) config = cli_parse(
      "init-db", NULL,
      "Creates the database tables when missing; running it again changes "
      "nothing.", NULL, &argc, &argv, &status);
  g_autoptr(GError) error = NULL;

  if (config == NULL)
    return status;
  if (argc > 1) {
    fprintf(stderr, "aapi init-db: unexpected argument %s\n", argv[1]);
    return 2;
  }
  g_autoptr(AapiStore) store = store_open(config->database_url, &error);
  if (store == NULL)
    return cli_fail("init-db", error);
  report(store, config->database_url);
  return 0;
}
