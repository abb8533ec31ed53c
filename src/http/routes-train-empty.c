/* routes-train-empty.c: no train routes in this build; routes-train.c replaces
 * this file in meson.build when it lands. */
#include "http/http-private.h"

const HttpRoute http_routes_train[] = { { NULL } };
