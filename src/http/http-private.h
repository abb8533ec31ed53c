/*
 * http-private.h: what route handlers see.
 *
 * The server core reads the whole request (bounded by max_body_bytes; over
 * it the client gets 413 before the body is read), parses the query, checks
 * the bearer token for writes, then calls the first route whose method and
 * pattern match.  A handler fills an HttpResponse and returns true, or
 * returns false with a GError, which the core turns into a JSON error body
 * {"error": message} with http_status_for_error's status.
 */
#pragma once

#include "annot/version.h"
#include "http/http.h"
#include "infer/infer.h"

#include <gio/gio.h>
#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

struct MHD_Connection;

typedef struct {
  const HttpContext *context;
  const char *method;
  const char *path;            /* URL-decoded path, no query */
  GHashTable *query;           /* char* -> char*, last value wins */
  GHashTable *headers;         /* lowercase name -> value */
  const char *body;            /* NUL-terminated copy; may contain NULs */
  gsize body_length;
  const char *request_id;
  /* Pattern captures in order: "{id}" in "/api/v1/slides/{id}". */
  GPtrArray *params;           /* char* */
  /* The client's connection, for watching its socket; NULL when the
   * request does not come from libmicrohttpd. */
  struct MHD_Connection *connection;
} HttpRequest;

typedef struct {
  guint status;                /* 200 unless set */
  char *content_type;          /* default application/json */
  GBytes *body;
  GPtrArray *headers;          /* char* name, char* value, alternating */
} HttpResponse;

typedef bool (*HttpHandler)(HttpRequest *request, HttpResponse *response,
                            GError **error);

typedef struct {
  const char *method;          /* "GET", "POST", ... */
  /* Literal text with {name} captures; a capture matches up to the next
   * literal character of the pattern (or the end) and never matches '/'
   * unless written {name*}. */
  const char *pattern;
  HttpHandler handler;
  bool write;                  /* needs a token when tokens are configured */
} HttpRoute;

/* Route tables of each area, NULL-handler terminated; the core tries them
 * in this order. */
extern const HttpRoute http_routes_compat[];   /* routes-compat.c */
extern const HttpRoute http_routes_api[];      /* routes-api.c */
extern const HttpRoute http_routes_tiles[];    /* routes-tiles.c */
extern const HttpRoute http_routes_predict[];  /* routes-predict.c */
extern const HttpRoute http_routes_train[];    /* routes-train.c */
extern const HttpRoute http_routes_web[];      /* routes-web.c */

/* Response helpers. */
void http_response_set_text(HttpResponse *response, guint status,
                            const char *content_type, const char *text,
                            gssize length);
void http_response_take_bytes(HttpResponse *response, guint status,
                              const char *content_type, GBytes *body);
void http_response_set_json(HttpResponse *response, guint status,
                            struct json_t *json);   /* steals the ref */
void http_response_add_header(HttpResponse *response, const char *name,
                              const char *value);

/* Query helpers: checked parsing; a missing parameter with no default is
 * an AAPI_ERROR_INVALID naming it. */
bool http_query_int64(HttpRequest *request, const char *name, gint64 min,
                      gint64 max, gint64 *out, GError **error);
bool http_query_int64_opt(HttpRequest *request, const char *name,
                          gint64 min, gint64 max, gint64 fallback,
                          gint64 *out, GError **error);
const char *http_request_header(HttpRequest *request, const char *name);
const char *http_request_param(HttpRequest *request, guint index);

/* Turns an error into its JSON body and status (Retry-After on 503). */
void http_response_set_error(HttpResponse *response, const GError *error);
void http_response_clear(HttpResponse *response);

/* A slide id is 32 lowercase hex digits; anything else is NOT_FOUND, so
 * that URL text never reaches SQL or a path. */
bool http_slide_id_check(const char *slide_id, GError **error);

/* The optional region x, y, width, height of a query: all four or none;
 * x, y >= 0, width, height >= 1, every edge within INT32.  region is
 * filled only when *has_region. */
bool http_query_region(HttpRequest *request, bool *has_region,
                       gint64 region[4], GError **error);

/* Checks the id and that the store knows the slide (NOT_FOUND with a
 * reason otherwise). */
bool http_slide_known(HttpRequest *request, const char *slide_id,
                      GError **error);
/* Both POST routes: region from the query, the body merged as a new
 * version (routes-compat.c). */
bool http_post_annotations(HttpRequest *request, const char *slide_id,
                           VersionPostResult *result, GError **error);

/* The region prediction of both predict routes (routes-predict.c): it
 * stops soon after the client hangs up, with G_IO_ERROR_CANCELLED and a
 * log line saying so. */
InferResult *http_predict_region(HttpRequest *request, const char *slide_id,
                                 const gint64 region[4], GError **error);

/* The client's socket, -1 when unknown (client-watch.c). */
int http_request_socket(const HttpRequest *request);

/* Watches the request's socket on a thread of its own while a handler
 * works, and cancels cancellable when the client hangs up; NULL (nothing
 * watched) when the socket is unknown.  Stop it before the handler
 * returns: the socket is libmicrohttpd's again after that. */
typedef struct HttpClientWatch HttpClientWatch;
HttpClientWatch *http_client_watch_start(const HttpRequest *request,
                                         GCancellable *cancellable);
void http_client_watch_stop(HttpClientWatch *watch);

/* Appends the request counters in Prometheus text format (server.c). */
void http_metrics_append(GString *text);

/* Routing (router.c).  How a path matched the tables. */
typedef enum {
  HTTP_MATCH_NONE,         /* no pattern matches: 404 */
  HTTP_MATCH_METHOD,       /* a pattern matches, not the method: 405 */
  HTTP_MATCH_FOUND,
} HttpMatch;

/* Matches one pattern; captures go to params (may be NULL). */
bool http_pattern_match(const char *pattern, const char *path,
                        GPtrArray *params);
/* Finds the route for method and path over every table: the matching
 * pattern with the most literal characters wins, the earlier table on a
 * tie (so "/slides/{id}.dzi" beats "/slides/{id}").  On
 * HTTP_MATCH_FOUND *route is set and params hold the captures; on
 * HTTP_MATCH_METHOD allowed lists the methods that would match. */
HttpMatch http_route_find(const char *method, const char *path,
                          const HttpRoute **route, GPtrArray *params,
                          GString *allowed);
