/* routes-predict-empty.c: no predict routes in this build; routes-predict.c replaces
 * this file in meson.build when it lands. */
#include "http/http-private.h"

const HttpRoute http_routes_predict[] = { { NULL } };
