/*
 * client-watch.c: notices a client that hangs up while its request runs.
 *
 * libmicrohttpd runs a handler on the connection's own thread and looks at
 * the socket again only after the handler returns: a client that gives up
 * in the middle of a prediction is noticed (and reported to the
 * completion callback) only once the prediction is over, seconds later,
 * while it holds a worker that every other prediction is refused for.  So
 * a small thread polls the socket for the hang-up during the work and
 * cancels it.  libmicrohttpd never reads the socket while the handler
 * runs, so the two never compete for its bytes; and poll() asks for no
 * input events, so a client's next pipelined request wakes nothing.
 */
#include "http/http-private.h"

#include <errno.h>
#include <microhttpd.h>
#include <poll.h>

/* The wait between looks at the stop flag where GLib has no file
 * descriptor for it (never on Linux). */
#define STOP_POLL_MS 150

struct HttpClientWatch {
  int fd;
  GCancellable *cancellable;   /* cancelled when the client hangs up */
  GCancellable *stop;          /* cancelled when the work is done */
  GThread *thread;
};

int http_request_socket(const HttpRequest *request)
{
  const union MHD_ConnectionInfo *info;

  if (request->connection == NULL)
    return -1;
  info = MHD_get_connection_info(request->connection,
                                 MHD_CONNECTION_INFO_CONNECTION_FD);
  return info ? info->connect_fd : -1;
}

/* Waits for the client's hang-up or the stop, whichever comes first.
 * POLLRDHUP is the peer's FIN: a client that only half-closes after
 * sending its request counts as gone too, since no client this server
 * has (browsers, curl, the viewer) does so and waits for an answer. */
static gpointer watch_run(gpointer data)
{
  HttpClientWatch *watch = data;
  struct pollfd fds[2] = {
    { .fd = watch->fd, .events = POLLRDHUP },
    { .events = POLLIN },
  };

  fds[1].fd = g_cancellable_get_fd(watch->stop);
  while (!g_cancellable_is_cancelled(watch->stop)) {
    int n = poll(fds, G_N_ELEMENTS(fds), fds[1].fd < 0 ? STOP_POLL_MS : -1);

    if (n < 0 && errno == EINTR)
      continue;
    /* A broken poll or socket leaves the work to run to its end. */
    if (n < 0 || (fds[0].revents & POLLNVAL))
      break;
    if (fds[0].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
      g_cancellable_cancel(watch->cancellable);
      break;
    }
  }
  g_cancellable_release_fd(watch->stop);
  return NULL;
}

HttpClientWatch *http_client_watch_start(const HttpRequest *request,
                                         GCancellable *cancellable)
{
  int fd = http_request_socket(request);
  HttpClientWatch *watch;

  if (fd < 0)
    return NULL;
  watch = g_new0(HttpClientWatch, 1);
  watch->fd = fd;
  watch->cancellable = g_object_ref(cancellable);
  watch->stop = g_cancellable_new();
  watch->thread = g_thread_new("client-watch", watch_run, watch);
  return watch;
}

void http_client_watch_stop(HttpClientWatch *watch)
{
  if (watch == NULL)
    return;
  g_cancellable_cancel(watch->stop);
  g_thread_join(watch->thread);
  g_object_unref(watch->stop);
  g_object_unref(watch->cancellable);
  g_free(watch);
}
