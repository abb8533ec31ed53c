/* test-server.c: the HTTP core over loopback: routing, 404/405, body
 * limits (Content-Length and chunked), bearer tokens, error bodies,
 * connection limits per address and for idle connections, and the
 * pattern rules of http-private.h.  No store is needed: only routes that
 * never reach it are called. */
#include "common/aapi-error.h"
#include "common/config.h"
#include "http/http-private.h"
#include "testutil.h"

#include <gio/gio.h>
#include <signal.h>
#include <string.h>

#define BODY_LIMIT (1024 * 1024)

typedef struct {
  AapiConfig *config;
  HttpContext context;
  HttpServer *server;
  guint port;
} Fixture;

/* Connection settings of a fixture; 0 keeps the configured one. */
typedef struct {
  guint per_ip;
  guint timeout_s;
} Limits;

static void fixture_start(Fixture *f, const char *tokens,
                          const Limits *limits)
{
  g_autoptr(GError) error = NULL;
  bool reads = tokens && g_str_has_prefix(tokens, "reads:");

  f->config = aapi_config_new_from_env(&error);
  g_assert_no_error(error);
  f->config->port = 0;
  f->config->threads = 2;
  f->config->max_body_bytes = BODY_LIMIT;
  if (tokens)
    f->config->api_tokens = g_strsplit(tokens + (reads ? 6 : 0), ",", -1);
  f->config->tokens_for_reads = reads;
  if (limits && limits->per_ip)
    f->config->connections_per_ip = limits->per_ip;
  if (limits && limits->timeout_s)
    f->config->connection_timeout_s = limits->timeout_s;
  f->context.config = f->config;
  f->server = http_server_start(&f->context, &error);
  g_assert_no_error(error);
  f->port = http_server_get_port(f->server);
  g_assert_cmpuint(f->port, >, 0);
}

static void fixture_set_up(Fixture *f, gconstpointer data)
{
  fixture_start(f, data, NULL);
}

static void fixture_set_up_limits(Fixture *f, gconstpointer data)
{
  fixture_start(f, NULL, data);
}

static void fixture_tear_down(Fixture *f, gconstpointer data)
{
  http_server_stop(f->server);
  aapi_config_free(f->config);
}

static GSocketConnection *connect_to(Fixture *f)
{
  g_autoptr(GSocketClient) client = g_socket_client_new();
  g_autoptr(GError) error = NULL;
  GSocketConnection *connection = g_socket_client_connect_to_host(
      client, "127.0.0.1", (guint16) f->port, NULL, &error);

  g_assert_no_error(error);
  return connection;
}

/* Reads until the server closes; returns the whole answer. */
static char *read_all(GSocketConnection *connection)
{
  GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(connection));
  GString *text = g_string_new(NULL);
  char buffer[4096];
  gssize n;

  while ((n = g_input_stream_read(in, buffer, sizeof buffer, NULL,
                                  NULL)) > 0)
    g_string_append_len(text, buffer, n);
  return g_string_free(text, FALSE);
}

static bool write_text(GSocketConnection *connection, const char *text,
                       gsize length)
{
  GOutputStream *out = g_io_stream_get_output_stream(
      G_IO_STREAM(connection));

  return g_output_stream_write_all(out, text, length, NULL, NULL, NULL);
}

/* One request with Connection: close; returns the raw answer. */
static char *exchange(Fixture *f, const char *request)
{
  g_autoptr(GSocketConnection) connection = connect_to(f);

  g_assert_true(write_text(connection, request, strlen(request)));
  return read_all(connection);
}

static guint status_of(const char *answer)
{
  guint status = 0;

  g_assert_true(g_str_has_prefix(answer, "HTTP/1.1 "));
  status = (guint) g_ascii_strtoull(answer + 9, NULL, 10);
  return status;
}

static const char *body_of(const char *answer)
{
  const char *body = strstr(answer, "\r\n\r\n");

  g_assert_nonnull(body);
  return body + 4;
}

static void test_home(Fixture *f, gconstpointer data)
{
  g_autofree char *answer = exchange(f,
      "GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123\r\n"
      "Connection: close\r\n\r\n");

  g_assert_cmpuint(status_of(answer), ==, 200);
  g_assert_cmpstr(body_of(answer), ==, "home");
  g_assert_nonnull(strstr(answer, "X-Request-Id: abc-123\r\n"));
}

static void test_not_found(Fixture *f, gconstpointer data)
{
  g_autofree char *answer = exchange(f,
      "GET /no/such/route HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

  g_assert_cmpuint(status_of(answer), ==, 404);
  g_assert_nonnull(strstr(body_of(answer), "{\"error\":"));
}

static void test_wrong_method(Fixture *f, gconstpointer data)
{
  g_autofree char *answer = exchange(f,
      "DELETE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

  g_assert_cmpuint(status_of(answer), ==, 405);
  g_assert_nonnull(strstr(answer, "Allow: GET"));
}

/* A bad slide id never reaches the store: 404 with a reason. */
static void test_bad_slide_id(Fixture *f, gconstpointer data)
{
  g_autofree char *answer = exchange(f,
      "GET /annotation/x'%20OR%20'1'='1 HTTP/1.1\r\nHost: x\r\n"
      "Connection: close\r\n\r\n");
  g_autofree char *path = exchange(f,
      "GET /annotation/..%2F..%2Fetc%2Fpasswd HTTP/1.1\r\nHost: x\r\n"
      "Connection: close\r\n\r\n");

  g_assert_cmpuint(status_of(answer), ==, 404);
  g_assert_nonnull(strstr(body_of(answer), "slide id"));
  g_assert_cmpuint(status_of(path), ==, 404);
}

static void test_content_length_over_limit(Fixture *f, gconstpointer data)
{
  g_autofree char *answer = exchange(f,
      "POST /annotation/0123 HTTP/1.1\r\nHost: x\r\n"
      "Content-Length: 1073741824\r\nConnection: close\r\n\r\n");

  g_assert_cmpuint(status_of(answer), ==, 413);
}

static void test_content_length_garbage(Fixture *f, gconstpointer data)
{
  g_autofree char *answer = exchange(f,
      "POST /annotation/0123 HTTP/1.1\r\nHost: x\r\n"
      "Content-Length: -5\r\nConnection: close\r\n\r\n");

  /* MHD itself may close such a connection without an answer. */
  if (answer[0] != '\0') {
    g_assert_cmpuint(status_of(answer), >=, 400);
    g_assert_cmpuint(status_of(answer), <, 500);
  }
}

/* Writes a chunked POST of total bytes (then the last chunk when
 * finish); returns the bytes the server took before it closed. */
static gsize send_chunked(GSocketConnection *connection, gsize total,
                          bool finish)
{
  static const char head[] =
      "POST /annotation/0123 HTTP/1.1\r\nHost: x\r\n"
      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  g_autofree char *chunk = NULL;
  gsize chunk_size = 64 * 1024;

  chunk = g_malloc(chunk_size + 32);
  gint n = g_snprintf(chunk, 32, "%zx\r\n", chunk_size);
  memset(chunk + n, 'x', chunk_size);
  memcpy(chunk + n + chunk_size, "\r\n", 2);

  gsize sent = 0;

  g_assert_true(write_text(connection, head, strlen(head)));
  for (; sent < total; sent += chunk_size)
    if (!write_text(connection, chunk, (gsize) n + chunk_size + 2))
      return sent;
  if (finish)
    write_text(connection, "0\r\n\r\n", 5);
  return sent;
}

/* A chunked body over the limit is not kept: 413 at its end. */
static void test_chunked_over_limit(Fixture *f, gconstpointer data)
{
  g_autoptr(GSocketConnection) connection = connect_to(f);

  send_chunked(connection, 3 * BODY_LIMIT, true);
  g_autofree char *answer = read_all(connection);
  g_assert_cmpuint(status_of(answer), ==, 413);
}

/* A chunked body that goes on and on loses its connection. */
static void test_chunked_endless(Fixture *f, gconstpointer data)
{
  g_autoptr(GSocketConnection) connection = connect_to(f);
  gsize sent = send_chunked(connection, 1024 * 1024 * 1024, false);

  g_assert_cmpuint(sent, <, 1024 * 1024 * 1024);
}

static void test_body_under_limit(Fixture *f, gconstpointer data)
{
  /* Reaches the handler: the id is refused there, after the read. */
  g_autofree char *answer = exchange(f,
      "POST /annotation/nothex HTTP/1.1\r\nHost: x\r\n"
      "Content-Length: 5\r\nConnection: close\r\n\r\nhello");

  g_assert_cmpuint(status_of(answer), ==, 404);
}

static void test_token_missing(Fixture *f, gconstpointer data)
{
  g_autofree char *answer = exchange(f,
      "POST /annotation/nothex HTTP/1.1\r\nHost: x\r\n"
      "Content-Length: 5\r\nConnection: close\r\n\r\nhello");

  g_assert_cmpuint(status_of(answer), ==, 401);
  g_assert_nonnull(strstr(body_of(answer), "Bearer"));
}

static void test_token_wrong(Fixture *f, gconstpointer data)
{
  g_autofree char *answer = exchange(f,
      "POST /annotation/nothex HTTP/1.1\r\nHost: x\r\n"
      "Authorization: Bearer secret\r\n"
      "Content-Length: 5\r\nConnection: close\r\n\r\nhello");

  g_assert_cmpuint(status_of(answer), ==, 401);
}

static void test_token_right(Fixture *f, gconstpointer data)
{
  g_autofree char *answer = exchange(f,
      "POST /annotation/nothex HTTP/1.1\r\nHost: x\r\n"
      "Authorization: Bearer s3cret\r\n"
      "Content-Length: 5\r\nConnection: close\r\n\r\nhello");
  g_autofree char *read = exchange(f,
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

  /* Past the token check: the handler refuses the id. */
  g_assert_cmpuint(status_of(answer), ==, 404);
  g_assert_cmpuint(status_of(read), ==, 200);
}

/* With reads closed too, a read needs a token; the viewer stays open. */
static void test_tokens_for_reads(Fixture *f, gconstpointer data)
{
  g_autofree char *closed = exchange(f,
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  g_autofree char *open = exchange(f,
      "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n"
      "Connection: close\r\n\r\n");
  g_autofree char *viewer = exchange(f,
      "GET /viewer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

  g_assert_cmpuint(status_of(closed), ==, 401);
  g_assert_cmpuint(status_of(open), ==, 200);
  g_assert_cmpuint(status_of(viewer), ==, 301);
}

static void test_viewer_redirect(Fixture *f, gconstpointer data)
{
  g_autofree char *answer = exchange(f,
      "GET /viewer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

  g_assert_cmpuint(status_of(answer), ==, 301);
  g_assert_nonnull(strstr(answer, "Location: /viewer/\r\n"));
}

static void test_viewer_traversal(Fixture *f, gconstpointer data)
{
  g_autofree char *answer = exchange(f,
      "GET /viewer/..%2F..%2F..%2Fetc%2Fpasswd HTTP/1.1\r\nHost: x\r\n"
      "Connection: close\r\n\r\n");

  g_assert_cmpuint(status_of(answer), ==, 404);
  g_assert_null(strstr(answer, "root:"));
}

/* A connection from the given loopback address, NULL when this machine
 * cannot bind it; reads give up after timeout_s instead of hanging. */
static GSocketConnection *connect_from(Fixture *f, const char *local,
                                       guint timeout_s)
{
  g_autoptr(GSocketClient) client = g_socket_client_new();
  g_autoptr(GSocketAddress) address =
      g_inet_socket_address_new_from_string(local, 0);
  g_autoptr(GError) error = NULL;

  g_socket_client_set_local_address(client, address);
  g_socket_client_set_timeout(client, timeout_s);
  GSocketConnection *connection = g_socket_client_connect_to_host(
      client, "127.0.0.1", (guint16) f->port, NULL, &error);
  if (connection == NULL)
    g_test_message("cannot connect from %s: %s", local, error->message);
  return connection;
}

/* Reads until the server closes; false when the read timed out, that
 * is when the server held the connection open instead. */
static bool read_until_closed(GSocketConnection *connection, GString *text)
{
  GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(connection));
  char buffer[4096];
  gssize n;

  for (;;) {
    g_autoptr(GError) error = NULL;
    n = g_input_stream_read(in, buffer, sizeof buffer, NULL, &error);
    if (n > 0) {
      g_string_append_len(text, buffer, n);
      continue;
    }
    return !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  }
}

#define PER_IP 8
#define SLOW_REQUEST "GET / HT"
#define HOME_REQUEST "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

/* Sockets from 127.0.0.1 that start a request line and never finish it. */
static GPtrArray *open_slow(Fixture *f, guint n)
{
  GPtrArray *slow = g_ptr_array_new_with_free_func(g_object_unref);

  for (guint i = 0; i < n; i++) {
    GSocketConnection *connection = connect_from(f, "127.0.0.1", 20);
    g_assert_nonnull(connection);
    g_assert_true(write_text(connection, SLOW_REQUEST,
                             strlen(SLOW_REQUEST)));
    g_ptr_array_add(slow, connection);
  }
  return slow;
}

/* A full request from local: the server's answer, "" when it closed
 * the connection without one, NULL when local cannot connect at all. */
static char *home_from(Fixture *f, const char *local, bool *closed)
{
  g_autoptr(GSocketConnection) connection = connect_from(f, local, 20);

  *closed = false;
  if (connection == NULL)
    return NULL;

  GString *text = g_string_new(NULL);
  /* Writing may fail already when the server closed at once. */
  write_text(connection, HOME_REQUEST, strlen(HOME_REQUEST));
  *closed = read_until_closed(connection, text);
  return g_string_free(text, FALSE);
}

/* The server answers 127.0.0.1 again once its connections are gone;
 * closing them is noticed by the server's threads, not at once. */
static guint home_status_eventually(Fixture *f)
{
  for (guint attempt = 0; attempt < 200; attempt++) {
    bool closed;
    g_autofree char *answer = home_from(f, "127.0.0.1", &closed);
    g_assert_nonnull(answer);
    if (answer[0] != '\0')
      return status_of(answer);
    g_usleep(50 * 1000);
  }
  return 0;
}

/* One address at its limit: more connections from it are closed at once
 * rather than left waiting, another address is still served, and the
 * first is served again when its connections end. */
static void test_per_ip_limit(Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) slow = open_slow(f, PER_IP);

  for (guint i = 0; i < 4; i++) {
    bool closed;
    g_autofree char *answer = home_from(f, "127.0.0.1", &closed);
    g_assert_nonnull(answer);
    g_assert_true(closed);
    g_assert_cmpstr(answer, ==, "");
  }

  bool closed;
  g_autofree char *other = home_from(f, "127.0.0.2", &closed);
  if (other == NULL)
    g_test_message("127.0.0.2 is not usable here: second address skipped");
  else
    g_assert_cmpuint(status_of(other), ==, 200);

  g_ptr_array_set_size(slow, 0);
  g_assert_cmpuint(home_status_eventually(f), ==, 200);
}

/* A request line that is never finished loses its connection after the
 * idle timeout instead of holding the slot. */
static void test_idle_timeout(Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) slow = open_slow(f, 1);
  g_autoptr(GString) text = g_string_new(NULL);

  g_assert_true(read_until_closed(slow->pdata[0], text));
  g_assert_cmpstr(text->str, ==, "");
  g_assert_cmpuint(home_status_eventually(f), ==, 200);
}

static void test_pattern(void)
{
  g_autoptr(GPtrArray) params = g_ptr_array_new_with_free_func(g_free);

  g_assert_true(http_pattern_match("/a/{id}/b", "/a/xyz/b", params));
  g_assert_cmpstr(g_ptr_array_index(params, 0), ==, "xyz");
  g_assert_false(http_pattern_match("/a/{id}", "/a/x/y", NULL));
  g_assert_false(http_pattern_match("/a/{id}", "/a/", NULL));
  g_assert_true(http_pattern_match("/v/{p*}", "/v/x/y.js", NULL));

  g_ptr_array_set_size(params, 0);
  g_assert_true(http_pattern_match("/s/{id}_files/{l}/{c}_{r}.{f}",
                                   "/s/ab_files/12/3_4.jpeg", params));
  g_assert_cmpuint(params->len, ==, 5);
  g_assert_cmpstr(g_ptr_array_index(params, 3), ==, "4");
  g_assert_cmpstr(g_ptr_array_index(params, 4), ==, "jpeg");
}

static void test_status_map(void)
{
  static const struct {
    AapiErrorCode code;
    guint status;
  } cases[] = {
    { AAPI_ERROR_INVALID, 400 }, { AAPI_ERROR_UNAUTHORIZED, 401 },
    { AAPI_ERROR_NOT_FOUND, 404 }, { AAPI_ERROR_CONFLICT, 409 },
    { AAPI_ERROR_TOO_LARGE, 413 }, { AAPI_ERROR_UNPROCESSABLE, 422 },
    { AAPI_ERROR_BUSY, 503 }, { AAPI_ERROR_IO, 500 },
    { AAPI_ERROR_DB, 500 }, { AAPI_ERROR_INTERNAL, 500 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = g_error_new_literal(AAPI_ERROR,
                                                  cases[i].code, "x");
    g_assert_cmpuint(http_status_for_error(error), ==, cases[i].status);
  }
}

#define ADD(name, tokens, func)                                            \
  g_test_add(name, Fixture, tokens, fixture_set_up, func,                  \
             fixture_tear_down)

int main(int argc, char **argv)
{
  static const Limits per_ip_limits = { PER_IP, 0 };
  static const Limits idle_limits = { 0, 1 };

  g_test_init(&argc, &argv, NULL);
  /* Writing on after the server has answered and closed is expected. */
  signal(SIGPIPE, SIG_IGN);
  /* The fixtures set tokens and limits themselves. */
  g_unsetenv("AAPI_API_TOKENS");
  g_unsetenv("AAPI_TOKENS_FOR_READS");
  g_unsetenv("AAPI_CONNECTIONS_PER_IP");
  g_unsetenv("AAPI_CONNECTION_TIMEOUT");

  g_test_add_func("/http/pattern", test_pattern);
  g_test_add_func("/http/status-map", test_status_map);
  ADD("/http/home", NULL, test_home);
  ADD("/http/not-found", NULL, test_not_found);
  ADD("/http/wrong-method", NULL, test_wrong_method);
  ADD("/http/bad-slide-id", NULL, test_bad_slide_id);
  ADD("/http/content-length-over-limit", NULL,
      test_content_length_over_limit);
  ADD("/http/content-length-garbage", NULL, test_content_length_garbage);
  ADD("/http/chunked-over-limit", NULL, test_chunked_over_limit);
  ADD("/http/chunked-endless", NULL, test_chunked_endless);
  ADD("/http/body-under-limit", NULL, test_body_under_limit);
  ADD("/http/token-missing", "s3cret,other", test_token_missing);
  ADD("/http/token-wrong", "s3cret,other", test_token_wrong);
  ADD("/http/token-right", "s3cret,other", test_token_right);
  ADD("/http/tokens-for-reads", "reads:s3cret", test_tokens_for_reads);
  ADD("/http/viewer-redirect", NULL, test_viewer_redirect);
  ADD("/http/viewer-traversal", NULL, test_viewer_traversal);
  g_test_add("/http/per-ip-limit", Fixture, &per_ip_limits,
             fixture_set_up_limits, test_per_ip_limit, fixture_tear_down);
  g_test_add("/http/idle-timeout", Fixture, &idle_limits,
             fixture_set_up_limits, test_idle_timeout, fixture_tear_down);
  return g_test_run();
}
