/* routes-tiles-empty.c: no tiles routes in this build; routes-tiles.c replaces
 * this file in meson.build when it lands. */
#include "http/http-private.h"

const HttpRoute http_routes_tiles[] = { { NULL } };
