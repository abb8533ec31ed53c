/*
 * store-post-helper.c: posts versions to one slide from a process of its
 * own, for the test that two processes sharing a database lose nothing.
 *
 * Usage: store-post-helper URL DATA_DIR SLIDE_ID FIRST COUNT
 * Post i (FIRST <= i < FIRST + COUNT) puts one square in region i.
 */
#include "annot/version.h"
#include "common/aapi-error.h"
#include "store-test-util.h"

#include <stdio.h>

static bool post_one(const AapiConfig *config, AapiStore *store,
                     const char *slide_id, gint64 i, GError **error)
{
  double x = (double) i * 1000;
  g_autofree char *prefix = g_strdup_printf("p%" G_GINT64_FORMAT, i);
  g_autofree char *xml = test_asap_squares(prefix, &x, 1, 0, 100);
  AnnotBox box = { x, 0, 500, 500 };
  VersionPostResult result = { 0 };

  bool ok = version_post(config, store, slide_id, xml, strlen(xml), &box,
                         &result, error);
  version_post_result_clear(&result);
  return ok;
}

int main(int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  gint64 first, count;

  if (argc != 6 ||
      !aapi_parse_int64(argv[4], 0, 1000000, &first, &error) ||
      !aapi_parse_int64(argv[5], 0, 1000000, &count, &error)) {
    fprintf(stderr, "usage: %s URL DATA_DIR SLIDE_ID FIRST COUNT\n",
            argv[0]);
    return 2;
  }
  g_setenv("AAPI_DATA_DIR", argv[2], TRUE);
  g_autoptr(AapiConfig) config = aapi_config_new_from_env(&error);
  g_autoptr(AapiStore) store = config ? store_open(argv[1], &error) : NULL;

  for (gint64 i = first; store && i < first + count; i++)
    if (!post_one(config, store, argv[3], i, &error))
      break;
  if (error) {
    fprintf(stderr, "store-post-helper: %s\n", error->message);
    return 1;
  }
  return 0;
}
