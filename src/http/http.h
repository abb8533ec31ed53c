/*
 * http.h: the HTTP server (libmicrohttpd, thread pool).
 *
 * The server listens on config->bind_address:port with config->threads
 * threads, each polling its own connections (epoll) and running the
 * handlers of its requests.  Bodies are bounded by max_body_bytes, bearer
 * tokens guard writes when configured, and every request logs one line
 * (method, path, status, bytes, ms, request id).  The context and what it
 * points to must outlive the server; handlers only read it.
 */
#pragma once

#include "common/config.h"
#include "store/store.h"

#include <glib.h>
#include <stdbool.h>

typedef struct HttpServer HttpServer;

/* What the handlers share; owned by the caller of http_server_start. */
typedef struct {
  const AapiConfig *config;
  AapiStore *store;
  struct SlideCache *slides;
  struct InferEngine *engine;        /* NULL when prediction is off */
  struct TrainScheduler *scheduler;  /* NULL when training is off */
  struct TileCache *tiles;           /* encoded Deep Zoom tiles */
} HttpContext;

HttpServer *http_server_start(const HttpContext *context, GError **error);
/* The port actually bound (useful with port 0). */
guint http_server_get_port(HttpServer *server);
void http_server_stop(HttpServer *server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HttpServer, http_server_stop)

/* The one place where errors become status codes. */
guint http_status_for_error(const GError *error);
