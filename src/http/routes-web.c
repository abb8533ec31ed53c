/* routes-web.c: the built viewer (web/dist) at /viewer/. */
#include "http/http-private.h"

#include "common/aapi-error.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Files over this are not the viewer's: refuse rather than load them. */
#define WEB_FILE_MAX (64 * 1024 * 1024)

static const struct {
  const char *suffix;
  const char *type;
} content_types[] = {
  { ".html", "text/html; charset=utf-8" },
  { ".js", "text/javascript; charset=utf-8" },
  { ".mjs", "text/javascript; charset=utf-8" },
  { ".css", "text/css; charset=utf-8" },
  { ".json", "application/json" },
  { ".map", "application/json" },
  { ".svg", "image/svg+xml" },
  { ".png", "image/png" },
  { ".jpg", "image/jpeg" },
  { ".jpeg", "image/jpeg" },
  { ".gif", "image/gif" },
  { ".ico", "image/x-icon" },
  { ".woff", "font/woff" },
  { ".woff2", "font/woff2" },
  { ".txt", "text/plain; charset=utf-8" },
  { ".wasm", "application/wasm" },
};

static const char *content_type_for(const char *path)
{
  for (gsize i = 0; i < G_N_ELEMENTS(content_types); i++)
    if (g_str_has_suffix(path, content_types[i].suffix))
      return content_types[i].type;
  return "application/octet-stream";
}

/* The viewer's folder: the configured one, else web/dist of the source
 * tree the binary was built in (build dirs sit at its top). */
static char *web_dir_resolve(const AapiConfig *config)
{
  if (config->web_dir)
    return realpath(config->web_dir, NULL);

  g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
  if (exe == NULL)
    return NULL;
  g_autofree char *build = g_path_get_dirname(exe);
  g_autofree char *dist = g_build_filename(build, "..", "web", "dist",
                                           NULL);
  return realpath(dist, NULL);
}

/* Refuses any ".." segment or NUL before touching the file system. */
static bool relative_path_safe(const char *relative)
{
  g_auto(GStrv) parts = g_strsplit(relative, "/", -1);

  for (guint i = 0; parts[i]; i++)
    if (strcmp(parts[i], "..") == 0 || strchr(parts[i], '\\'))
      return false;
  return true;
}

/* The real path of the file asked for, checked to lie inside root. */
static char *web_file_resolve(const char *root, const char *relative,
                              GError **error)
{
  g_autofree char *joined = g_build_filename(root, relative, NULL);
  g_autofree char *real = NULL;

  if (g_file_test(joined, G_FILE_TEST_IS_DIR)) {
    char *index = g_build_filename(joined, "index.html", NULL);
    g_free(joined);
    joined = index;
  }
  real = realpath(joined, NULL);
  gsize n = strlen(root);
  if (real == NULL || strncmp(real, root, n) != 0 ||
      (real[n] != '/' && real[n] != '\0') ||
      !g_file_test(real, G_FILE_TEST_IS_REGULAR)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
                "no viewer file %s", relative);
    return NULL;
  }
  return g_steal_pointer(&real);
}

static bool viewer_file(HttpRequest *request, HttpResponse *response,
                        GError **error)
{
  const char *relative = http_request_param(request, 0);
  g_autofree char *root = web_dir_resolve(request->context->config);

  if (relative == NULL)
    relative = "";
  if (root == NULL) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
                "the viewer is not built (web/dist is missing; set "
                "AAPI_WEB_DIR)");
    return false;
  }
  if (!relative_path_safe(relative)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
                "no viewer file %s", relative);
    return false;
  }

  g_autofree char *path = web_file_resolve(root, relative, error);
  g_autoptr(GMappedFile) file = NULL;
  if (path == NULL)
    return false;
  file = g_mapped_file_new(path, FALSE, NULL);
  if (file == NULL || g_mapped_file_get_length(file) > WEB_FILE_MAX) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
                "viewer file %s cannot be read", relative);
    return false;
  }
  http_response_take_bytes(response, 200, content_type_for(path),
                           g_mapped_file_get_bytes(file));
  return true;
}

static bool viewer_redirect(HttpRequest *request, HttpResponse *response,
                            GError **error)
{
  http_response_set_text(response, 301, "text/plain; charset=utf-8",
                         "/viewer/", -1);
  http_response_add_header(response, "Location", "/viewer/");
  return true;
}

const HttpRoute http_routes_web[] = {
  { "GET", "/viewer", viewer_redirect, false },
  { "GET", "/viewer/", viewer_file, false },
  { "GET", "/viewer/{path*}", viewer_file, false },
  { NULL }
};
