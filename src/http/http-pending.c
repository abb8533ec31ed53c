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
  return NULL;
}
