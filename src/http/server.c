/* server.c: the libmicrohttpd server core: bounded body reading, routing,
 * bearer tokens, error bodies and one log line per request. */
#include "http/http-private.h"

#include "common/aapi-error.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <string.h>

/* Query values and request ids are bounded: nothing longer is useful. */
#define QUERY_VALUE_MAX 4096
#define REQUEST_ID_MAX 64
/* Bytes of a chunked body read and dropped past the limit before the
 * connection is closed without an answer. */
#define DISCARD_ALLOWANCE (16 * 1024 * 1024)

/* Bodies of this size or more are handled one at a time.  Parsing and
 * merging a body takes about twenty times its size in memory (a 63 MB
 * GeoJSON import of 678,000 triangles peaked near 1.4 GB), so a handful
 * of such uploads at once could exhaust a small server; a second one
 * meanwhile gets 503 with Retry-After. */
#define LARGE_BODY (8 * 1024 * 1024)
static atomic_int large_body_busy;

/* Process-wide request counters for /api/v1/metrics. */
static struct {
  atomic_llong requests[6];   /* by status class: index status / 100 */
  atomic_llong bytes_out;
  atomic_llong total_us;
} metrics;

static void metrics_count(guint status, gsize bytes, gint64 us)
{
  guint class = MIN(status / 100, G_N_ELEMENTS(metrics.requests) - 1);

  atomic_fetch_add(&metrics.requests[class], 1);
  atomic_fetch_add(&metrics.bytes_out, (long long) bytes);
  atomic_fetch_add(&metrics.total_us, us);
}

void http_metrics_append(GString *text)
{
  static const char *const classes[] = { "0xx", "1xx", "2xx", "3xx",
                                         "4xx", "5xx" };

  g_string_append(text, "# TYPE aapi_http_requests_total counter\n");
  for (guint i = 1; i < G_N_ELEMENTS(classes); i++)
    g_string_append_printf(text,
        "aapi_http_requests_total{status=\"%s\"} %" G_GINT64_FORMAT "\n",
        classes[i], (gint64) atomic_load(&metrics.requests[i]));
  g_string_append_printf(text,
      "# TYPE aapi_http_response_bytes_total counter\n"
      "aapi_http_response_bytes_total %" G_GINT64_FORMAT "\n"
      "# TYPE aapi_http_request_seconds_total counter\n"
      "aapi_http_request_seconds_total %.6f\n",
      (gint64) atomic_load(&metrics.bytes_out),
      (double) atomic_load(&metrics.total_us) / 1e6);
}

struct HttpServer {
  struct MHD_Daemon *daemon;
  const HttpContext *context;
  guint port;
};

/* What one request accumulates between the calls of the access handler. */
typedef struct {
  gint64 start_us;
  GByteArray *body;
  bool too_large;      /* over max_body_bytes: the rest is not kept */
  guint64 discarded;   /* bytes dropped after the limit */
  bool answered;       /* a response is queued already */
  char *request_id;
} RequestState;

static void request_state_free(RequestState *state)
{
  if (state->body)
    g_byte_array_unref(state->body);
  g_free(state->request_id);
  g_free(state);
}

/* A client's X-Request-Id is echoed when it is short and plain text;
 * otherwise the server makes one. */
static char *request_id_new(struct MHD_Connection *connection)
{
  const char *given = MHD_lookup_connection_value(connection,
                                                  MHD_HEADER_KIND,
                                                  "X-Request-Id");
  bool ok = given != NULL && given[0] != '\0' &&
            strlen(given) <= REQUEST_ID_MAX;

  for (const char *p = given; ok && *p; p++)
    ok = g_ascii_isalnum(*p) || strchr("-_.:", *p) != NULL;
  if (ok)
    return g_strdup(given);
  return g_strdup_printf("%08x%08x", g_random_int(), g_random_int());
}

static void free_bytes(void *bytes)
{
  g_bytes_unref(bytes);
}

/* The MHD response for ours; it keeps a reference to the body bytes
 * instead of copying them. */
static struct MHD_Response *mhd_response_new(const HttpResponse *response,
                                             const char *request_id,
                                             gsize *size)
{
  GBytes *body = response->body ? g_bytes_ref(response->body)
                                : g_bytes_new_static("", 0);
  const void *data = g_bytes_get_data(body, size);
  struct MHD_Response *mhd =
      MHD_create_response_from_buffer_with_free_callback_cls(
          *size, (void *) data, free_bytes, body);

  if (mhd == NULL) {
    g_bytes_unref(body);
    return NULL;
  }
  MHD_add_response_header(mhd, MHD_HTTP_HEADER_CONTENT_TYPE,
                          response->content_type ? response->content_type
                                                 : "application/json");
  MHD_add_response_header(mhd, "X-Request-Id", request_id);
  for (guint i = 0; response->headers && i + 1 < response->headers->len;
       i += 2)
    MHD_add_response_header(mhd, g_ptr_array_index(response->headers, i),
                            g_ptr_array_index(response->headers, i + 1));
  return mhd;
}

/* Hands the response to MHD and writes the request's log line. */
static enum MHD_Result send_response(struct MHD_Connection *connection,
                                     RequestState *state,
                                     const char *method, const char *url,
                                     HttpResponse *response)
{
  guint status = response->status ? response->status : 200;
  gsize size = 0;
  struct MHD_Response *mhd = mhd_response_new(response, state->request_id,
                                              &size);

  if (mhd == NULL)
    return MHD_NO;
  enum MHD_Result result = MHD_queue_response(connection, status, mhd);
  MHD_destroy_response(mhd);
  state->answered = true;

  /* The decoded path is client text: escaped, it cannot forge lines. */
  gint64 us = g_get_monotonic_time() - state->start_us;
  g_autofree char *shown = g_strescape(url, NULL);
  g_message("%s %s %u %" G_GSIZE_FORMAT " bytes %.1f ms id=%s", method,
            shown, status, size, (double) us / 1000.0, state->request_id);
  metrics_count(status, size, us);
  return result;
}

static enum MHD_Result send_error(struct MHD_Connection *connection,
                                  RequestState *state, const char *method,
                                  const char *url, const GError *error)
{
  HttpResponse response = { 0 };

  http_response_set_error(&response, error);
  enum MHD_Result result = send_response(connection, state, method, url,
                                         &response);
  http_response_clear(&response);
  return result;
}

typedef struct {
  GHashTable *headers;
  bool authorization_twice;   /* two credentials: neither is trusted */
} HeaderCollect;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind,
                                      const char *key, const char *value)
{
  HeaderCollect *collect = cls;
  char *name = g_ascii_strdown(key, -1);

  (void) kind;
  if (strcmp(name, "authorization") == 0 &&
      g_hash_table_contains(collect->headers, name))
    collect->authorization_twice = true;
  g_hash_table_insert(collect->headers, name, g_strdup(value ? value : ""));
  return MHD_YES;
}

typedef struct {
  GHashTable *query;
  const char *too_long;   /* the first parameter over the bound */
  const char *twice;      /* the first parameter given again */
} QueryCollect;

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind,
                                     const char *key, const char *value)
{
  QueryCollect *collect = cls;

  value = value ? value : "";
  if (strlen(value) > QUERY_VALUE_MAX) {
    collect->too_long = key;
    return MHD_NO;
  }
  /* x=0&x=5 is ambiguous: refused rather than one of them picked. */
  if (g_hash_table_contains(collect->query, key)) {
    collect->twice = key;
    return MHD_NO;
  }
  g_hash_table_insert(collect->query, g_strdup(key), g_strdup(value));
  return MHD_YES;
}

/* Compares without an early exit, so the time says nothing about how
 * much of a token was right. */
static bool token_equal(const char *expected, const char *given)
{
  gsize n_expected = strlen(expected), n_given = strlen(given);
  guint diff = n_expected != n_given;

  for (gsize i = 0; i < n_given; i++)
    diff |= (guint) (guchar) given[i] ^
            (guint) (guchar) expected[n_expected ? i % n_expected : 0];
  return diff == 0 && n_expected > 0;
}

static bool check_token(HttpRequest *request, const HttpRoute *route,
                        GError **error)
{
  const AapiConfig *config = request->context->config;

  if (config->api_tokens == NULL ||
      (!route->write && !config->tokens_for_reads))
    return true;

  /* Even when reads are closed, health checks and the viewer's own files
   * stay open: the page must load before anyone can give it a token. */
  if (!route->write &&
      (strcmp(request->path, "/api/v1/health") == 0 ||
       strcmp(request->path, "/viewer") == 0 ||
       g_str_has_prefix(request->path, "/viewer/")))
    return true;

  const char *header = http_request_header(request, "authorization");
  if (header == NULL || g_ascii_strncasecmp(header, "Bearer ", 7) != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_UNAUTHORIZED,
                "this route needs Authorization: Bearer <token>");
    return false;
  }

  /* Every token is compared, so a match costs the same as a miss. */
  bool found = false;
  for (char **token = config->api_tokens; *token; token++)
    found |= token_equal(*token, header + 7);
  if (!found)
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_UNAUTHORIZED,
                "the bearer token is not one of the configured tokens");
  return found;
}

/* Runs the route a request matched; false with error on any failure. */
static bool dispatch(HttpRequest *request, HttpResponse *response,
                     GError **error)
{
  const HttpRoute *route = NULL;
  g_autoptr(GString) allowed = g_string_new(NULL);

  switch (http_route_find(request->method, request->path, &route,
                          request->params, allowed)) {
  case HTTP_MATCH_NONE:
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
                "no route for %s", request->path);
    return false;
  case HTTP_MATCH_METHOD:
    http_response_set_text(response, 405, "application/json",
                           "{\"error\":\"method not allowed\"}", -1);
    http_response_add_header(response, "Allow", allowed->str);
    return true;
  case HTTP_MATCH_FOUND:
    break;
  }

  if (!check_token(request, route, error))
    return false;
  bool large = request->body_length >= LARGE_BODY;
  int idle = 0;
  if (large && !atomic_compare_exchange_strong(&large_body_busy, &idle, 1)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_BUSY,
                "another request with a body over %d MiB is being "
                "processed; retry shortly", LARGE_BODY / (1024 * 1024));
    return false;
  }
  bool ok = route->handler(request, response, error);
  if (large) {
    /* Hands the parse's peak back to the system (glibc keeps freed
     * memory in its arenas otherwise). */
    malloc_trim(0);
    atomic_store(&large_body_busy, 0);
  }
  if (!ok) {
    if (error && *error == NULL)
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_INTERNAL,
                  "the handler of %s failed without a reason",
                  route->pattern);
    return false;
  }
  return true;
}

/* Builds the HttpRequest from what MHD parsed and answers it. */
static enum MHD_Result answer(HttpServer *server,
                              struct MHD_Connection *connection,
                              RequestState *state, const char *url,
                              const char *method)
{
  g_autoptr(GHashTable) query = g_hash_table_new_full(g_str_hash,
      g_str_equal, g_free, g_free);
  g_autoptr(GHashTable) headers = g_hash_table_new_full(g_str_hash,
      g_str_equal, g_free, g_free);
  g_autoptr(GPtrArray) params = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GError) error = NULL;
  QueryCollect collect = { query, NULL, NULL };
  HeaderCollect header_collect = { headers, false };
  HttpResponse response = { 0 };

  MHD_get_connection_values(connection, MHD_HEADER_KIND, collect_header,
                            &header_collect);
  if (header_collect.authorization_twice) {
    g_set_error(&error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "the Authorization header is given more than once");
    return send_error(connection, state, method, url, error);
  }
  MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND,
                            collect_query, &collect);
  if (collect.too_long) {
    g_set_error(&error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "query parameter %s is longer than %d bytes",
                collect.too_long, QUERY_VALUE_MAX);
    return send_error(connection, state, method, url, error);
  }
  if (collect.twice) {
    g_set_error(&error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "query parameter %.64s is given more than once",
                collect.twice);
    return send_error(connection, state, method, url, error);
  }

  g_byte_array_append(state->body, (const guint8 *) "", 1);
  HttpRequest request = {
    .context = server->context, .method = method, .path = url,
    .query = query, .headers = headers,
    .body = (const char *) state->body->data,
    .body_length = state->body->len - 1,
    .request_id = state->request_id, .params = params,
    .connection = connection,
  };

  if (!dispatch(&request, &response, &error))
    http_response_set_error(&response, error);
  enum MHD_Result result = send_response(connection, state, method, url,
                                         &response);
  http_response_clear(&response);
  return result;
}

/* The configured limit, kept below what a GByteArray can hold. */
static guint64 body_limit(HttpServer *server)
{
  return MIN(server->context->config->max_body_bytes,
             (guint64) G_MAXUINT32 - 1);
}

static enum MHD_Result refuse_too_large(struct MHD_Connection *connection,
                                        RequestState *state,
                                        const char *method, const char *url,
                                        guint64 limit)
{
  g_autoptr(GError) error = g_error_new(AAPI_ERROR, AAPI_ERROR_TOO_LARGE,
      "the request body is over the limit of %" G_GUINT64_FORMAT " bytes",
      limit);

  state->too_large = true;
  return send_error(connection, state, method, url, error);
}

/* A piece of the body.  MHD cannot answer in the middle of a chunked
 * body, so past the limit the rest is read and thrown away, never kept,
 * and the 413 goes out at its end; a stream that goes on past a further
 * allowance loses its connection instead. */
static enum MHD_Result request_upload(struct MHD_Connection *connection,
                                      RequestState *state,
                                      const char *method, const char *url,
                                      const char *data, size_t *size,
                                      guint64 limit)
{
  guint64 allowance = MAX(limit, DISCARD_ALLOWANCE);
  gsize n = *size;

  *size = 0;
  if (state->answered)
    return MHD_YES;
  if (state->too_large) {
    state->discarded += n;
    if (state->discarded <= allowance)
      return MHD_YES;
    g_autofree char *shown = g_strescape(url, NULL);
    g_message("%s %s: body goes on past %" G_GUINT64_FORMAT " bytes; "
              "closing the connection id=%s", method, shown,
              limit + allowance, state->request_id);
    return MHD_NO;
  }
  if (state->body->len + (guint64) n > limit) {
    state->too_large = true;
    state->discarded = n;
    g_byte_array_set_size(state->body, 0);
    return MHD_YES;
  }
  g_byte_array_append(state->body, (const guint8 *) data, (guint) n);
  return MHD_YES;
}

/* The first call for a request: state, and Content-Length checked before
 * a byte of the body is read. */
static enum MHD_Result request_begin(HttpServer *server,
                                     struct MHD_Connection *connection,
                                     const char *url, const char *method,
                                     void **con_cls)
{
  RequestState *state = g_new0(RequestState, 1);
  guint64 limit = body_limit(server);
  const char *length = MHD_lookup_connection_value(connection,
      MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  gint64 declared = 0;

  state->start_us = g_get_monotonic_time();
  state->body = g_byte_array_new();
  state->request_id = request_id_new(connection);
  *con_cls = state;

  if (length == NULL)
    return MHD_YES;
  if (!aapi_parse_int64(length, 0, G_MAXINT64, &declared, NULL)) {
    g_autoptr(GError) error = g_error_new(AAPI_ERROR, AAPI_ERROR_INVALID,
        "Content-Length is not a number");
    return send_error(connection, state, method, url, error);
  }
  if ((guint64) declared > limit)
    return refuse_too_large(connection, state, method, url, limit);
  return MHD_YES;
}

static enum MHD_Result access_handler(void *cls,
                                      struct MHD_Connection *connection,
                                      const char *url, const char *method,
                                      const char *version,
                                      const char *upload_data,
                                      size_t *upload_data_size,
                                      void **con_cls)
{
  HttpServer *server = cls;
  RequestState *state = *con_cls;
  guint64 limit = body_limit(server);

  if (state == NULL)
    return request_begin(server, connection, url, method, con_cls);

  if (*upload_data_size > 0)
    return request_upload(connection, state, method, url, upload_data,
                          upload_data_size, limit);

  if (state->too_large && !state->answered)
    return refuse_too_large(connection, state, method, url, limit);
  if (state->answered)
    return MHD_YES;
  return answer(server, connection, state, url, method);
}

static void request_completed(void *cls, struct MHD_Connection *connection,
                              void **con_cls,
                              enum MHD_RequestTerminationCode code)
{
  if (*con_cls)
    request_state_free(*con_cls);
  *con_cls = NULL;
}

/*
 * Decodes %XX in the path and the query in place, as libmicrohttpd's own
 * decoder does, except %00.  Decoded, a NUL would silently cut a path or
 * a value short ("<id>%00.dzi" would reach the slide's route, "x=5%00"
 * would read 5); left as it is, it fails the route's or the number's
 * checks with a clear answer.  libmicrohttpd has no option for this, so
 * the few lines are ours.
 */
static size_t unescape_keep_nul(void *cls, struct MHD_Connection *connection,
                                char *s)
{
  char *out = s;
  const char *in = s;
  int hi, lo;

  (void) cls;
  (void) connection;
  while (*in != '\0') {
    if (in[0] == '%' && (hi = g_ascii_xdigit_value(in[1])) >= 0 &&
        (lo = g_ascii_xdigit_value(in[2])) >= 0 && (hi | lo) != 0) {
      *out++ = (char) (hi * 16 + lo);
      in += 3;
    } else {
      *out++ = *in++;
    }
  }
  *out = '\0';
  return (size_t) (out - s);
}

static void mhd_log(void *cls, const char *format, va_list args)
{
  g_autofree char *text = g_strdup_vprintf(format, args);

  g_strchomp(text);
  /* MHD reports mostly what clients did wrong: not a server fault. */
  g_message("http: %s", text);
}

/* Fills addr from the configured bind address (IPv4 or IPv6). */
static bool bind_address_parse(const AapiConfig *config,
                               struct sockaddr_storage *addr,
                               bool *ipv6, GError **error)
{
  const char *text = config->bind_address ? config->bind_address
                                          : "127.0.0.1";
  struct sockaddr_in *in4 = (struct sockaddr_in *) addr;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) addr;

  memset(addr, 0, sizeof *addr);
  *ipv6 = false;
  if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t) config->port);
    return true;
  }
  if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t) config->port);
    *ipv6 = true;
    return true;
  }
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
              "bind address %s is not an IPv4 or IPv6 address", text);
  return false;
}

/* One line on who may write and read; the tokens themselves never reach
 * the log. */
static void log_access(const AapiConfig *config)
{
  guint n = config->api_tokens ? g_strv_length(config->api_tokens) : 0;

  if (n == 0)
    g_message("access: writes and reads are open to anyone who can reach "
              "the port (AAPI_API_TOKENS is unset)");
  else if (config->tokens_for_reads)
    g_message("access: writes and reads need a bearer token (%u "
              "configured); health and the viewer's files stay open", n);
  else
    g_message("access: writes need a bearer token (%u configured), reads "
              "are open", n);
}

/* The MHD limits: how many connections, from one address, for how long
 * idle.  A connection is a thread, so the total bounds the threads. */
typedef struct {
  unsigned int total;
  unsigned int per_ip;
  unsigned int timeout_s;
} ConnectionLimits;

static ConnectionLimits connection_limits(const AapiConfig *config)
{
  ConnectionLimits limits;

  limits.total = MAX(config->threads, 16) * 16;
  /* Clients that open connections and never finish their requests
   * would otherwise hold every slot; with a cap per address one client
   * can take half of them at most.  Loopback tests and a viewer on the
   * same machine share one address, so the default stays generous. */
  limits.per_ip = config->connections_per_ip ? config->connections_per_ip
                                             : limits.total / 2;
  /* Idle seconds before MHD drops a connection: a request that is not
   * finished by then holds its slot no longer.  A handler that runs
   * longer (a prediction) is not idle and keeps its connection. */
  limits.timeout_s = config->connection_timeout_s;
  return limits;
}

/* Each connection's buffer for the request line, headers and their
 * records.  With libmicrohttpd's 32 KiB a few kilobytes of query
 * parameters (each one a record in the same buffer) already failed, and
 * it closed the connection without an answer; with 256 KiB such a
 * request reaches the handlers, which refuse it with a reason, and
 * libmicrohttpd itself answers 414 or 431 to longer ones. */
#define HTTP_CONNECTION_MEMORY (256 * 1024)

static struct MHD_Daemon *daemon_start(HttpServer *server,
                                       const struct sockaddr_storage *addr,
                                       bool ipv6, ConnectionLimits limits)
{
  /* A thread per connection: a prediction or a large POST takes seconds,
   * and in a shared pool it would hold up every connection polled by the
   * same thread.  The connection limit bounds the threads. */
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD |
                       MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
                       MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0);

  return MHD_start_daemon(flags, (uint16_t) server->context->config->port,
      NULL, NULL, access_handler, server,
      MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
      MHD_OPTION_SOCK_ADDR, (const struct sockaddr *) addr,
      MHD_OPTION_CONNECTION_TIMEOUT, limits.timeout_s,
      MHD_OPTION_CONNECTION_LIMIT, limits.total,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, limits.per_ip,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) HTTP_CONNECTION_MEMORY,
      MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
      MHD_OPTION_UNESCAPE_CALLBACK, unescape_keep_nul, NULL,
      MHD_OPTION_END);
}

HttpServer *http_server_start(const HttpContext *context, GError **error)
{
  const AapiConfig *config = context->config;
  const char *bind = config->bind_address ? config->bind_address
                                          : "127.0.0.1";
  ConnectionLimits limits = connection_limits(config);
  struct sockaddr_storage addr;
  bool ipv6 = false;

  /* The config refuses this already; a config built another way must not
   * leave reads open that were meant to be closed. */
  if (config->tokens_for_reads && config->api_tokens == NULL) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "reads are set to need a token, but no token is configured");
    return NULL;
  }
  if (!bind_address_parse(config, &addr, &ipv6, error))
    return NULL;

  HttpServer *server = g_new0(HttpServer, 1);
  server->context = context;
  server->daemon = daemon_start(server, &addr, ipv6, limits);
  if (server->daemon == NULL) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO,
                "cannot listen on %s port %u (in use, or not allowed)",
                bind, config->port);
    g_free(server);
    return NULL;
  }

  const union MHD_DaemonInfo *info = MHD_get_daemon_info(server->daemon,
      MHD_DAEMON_INFO_BIND_PORT);
  server->port = info ? info->port : config->port;
  g_message("listening on http://%s%s%s:%u/ (a thread per connection, "
            "at most %u, %u from one address, idle ones closed after "
            "%u s)", ipv6 ? "[" : "", bind, ipv6 ? "]" : "", server->port,
            limits.total, limits.per_ip, limits.timeout_s);
  log_access(config);
  return server;
}

guint http_server_get_port(HttpServer *server)
{
  return server->port;
}

void http_server_stop(HttpServer *server)
{
  if (server == NULL)
    return;
  MHD_stop_daemon(server->daemon);
  g_free(server);
}
