/* http-pending.c: which functions of other parts are not linked yet. */
#include "http/http-pending.h"

#define CHECK(function)                                                    \
  do {                                                                     \
    if (!HTTP_BUILT(function))                                             \
      return #function;                                                    \
  } while (0)

const char *http_pending_missing(void)
{
  /* Checked one by one: the addresses are only known at run time. */
  CHECK(version_post);
  CHECK(version_revert);
  CHECK(version_load);
  CHECK(version_read_latest_file);
  CHECK(version_reconcile);
  CHECK(annot_write_asap);
  CHECK(annot_write_geojson);
  return NULL;
}
