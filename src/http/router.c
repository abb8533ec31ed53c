/* router.c: matching request paths against the route tables. */
#include "http/http-private.h"

#include <string.h>

/* Every table, in the order the core tries them. */
static const HttpRoute *const route_tables[] = {
  http_routes_compat,
  http_routes_api,
  http_routes_tiles,
  http_routes_predict,
  http_routes_train,
  http_routes_web,
};

/* Parses "{name}" or "{name*}" at pattern; returns the text after it and
 * whether the capture may span slashes, or NULL when unterminated. */
static const char *capture_end(const char *pattern, bool *spans)
{
  const char *close = strchr(pattern, '}');

  if (close == NULL)
    return NULL;
  *spans = close > pattern + 1 && close[-1] == '*';
  return close + 1;
}

/* The length of the capture at path: up to the first occurrence of stop
 * (the pattern's next literal, '\0' at the end), never past a '/' unless
 * spans.  -1 when it cannot match. */
static gssize capture_length(const char *path, char stop, bool spans)
{
  gsize i = 0;

  while (path[i] != '\0' && path[i] != stop) {
    if (path[i] == '/' && !spans)
      return -1;
    i++;
  }
  if (path[i] != stop || i == 0)
    return -1;
  return (gssize) i;
}

bool http_pattern_match(const char *pattern, const char *path,
                        GPtrArray *params)
{
  guint first_param = params ? params->len : 0;

  while (*pattern != '\0') {
    if (*pattern != '{') {
      if (*pattern++ != *path++)
        goto fail;
      continue;
    }

    /* A capture runs up to the next literal of the pattern. */
    bool spans = false;
    const char *rest = capture_end(pattern, &spans);
    if (rest == NULL || *rest == '{')
      goto fail;
    gssize length = capture_length(path, *rest, spans);
    if (length < 0)
      goto fail;
    if (params)
      g_ptr_array_add(params, g_strndup(path, (gsize) length));
    path += length;
    pattern = rest;
  }
  if (*path == '\0')
    return true;

fail:
  if (params)
    g_ptr_array_set_size(params, first_param);
  return false;
}

/* HEAD is answered by the GET route (the server sends no body). */
static bool method_matches(const char *route_method, const char *method)
{
  return strcmp(route_method, method) == 0 ||
         (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

static void note_allowed(GString *allowed, const char *method)
{
  if (allowed == NULL || strstr(allowed->str, method) != NULL)
    return;
  if (allowed->len > 0)
    g_string_append(allowed, ", ");
  g_string_append(allowed, method);
}

/* The literal characters of a pattern: more means more specific. */
static gsize pattern_literals(const char *pattern)
{
  gsize n = 0;
  bool in_capture = false;

  for (; *pattern; pattern++) {
    if (*pattern == '{' || *pattern == '}')
      in_capture = *pattern == '{';
    else if (!in_capture)
      n++;
  }
  return n;
}

HttpMatch http_route_find(const char *method, const char *path,
                          const HttpRoute **route, GPtrArray *params,
                          GString *allowed)
{
  HttpMatch match = HTTP_MATCH_NONE;
  const HttpRoute *best = NULL;

  /* "/slides/{id}" also matches "/slides/x.dzi": the most specific
   * pattern wins, the first table on a tie. */
  for (gsize t = 0; t < G_N_ELEMENTS(route_tables); t++) {
    for (const HttpRoute *r = route_tables[t]; r->handler; r++) {
      if (!http_pattern_match(r->pattern, path, NULL))
        continue;
      if (!method_matches(r->method, method)) {
        if (match == HTTP_MATCH_NONE)
          match = HTTP_MATCH_METHOD;
        note_allowed(allowed, r->method);
        continue;
      }
      if (best == NULL ||
          pattern_literals(r->pattern) > pattern_literals(best->pattern))
        best = r;
    }
  }
  if (best == NULL)
    return match;
  http_pattern_match(best->pattern, path, params);
  *route = best;
  return HTTP_MATCH_FOUND;
}
