/*
 * annot-cache.c: parsed annotation files kept in memory.
 *
 * Version files never change once written, and a POST always merges onto
 * the newest one, which is usually the one the previous POST wrote.
 * Keeping the parsed set saves reading megabytes of XML per POST.  Callers
 * get copies, so nothing they do reaches the cache.
 */
#include "annot/annot.h"
#include "common/aapi-error.h"
#include "common/file-read.h"
#include "common/log.h"

typedef struct {
  char *path;
  AnnotSet *set;
  gsize n_vertices;
  AapiFileStamp stamp;
} CacheEntry;

typedef struct {
  GMutex lock;
  GQueue entries;        /* CacheEntry*, most recently used first */
  gsize n_vertices;
} Cache;

static Cache cache;

static void entry_free(CacheEntry *entry)
{
  g_free(entry->path);
  annot_set_free(entry->set);
  g_free(entry);
}

static gsize set_vertices(const AnnotSet *set)
{
  gsize n = 0;

  for (guint i = 0; i < set->annotations->len; i++)
    n += annotation_n_vertices(set->annotations->pdata[i]);
  return n;
}

static GList *find_locked(const char *path)
{
  for (GList *l = cache.entries.head; l; l = l->next)
    if (g_strcmp0(((CacheEntry *) l->data)->path, path) == 0)
      return l;
  return NULL;
}

static void remove_locked(GList *link)
{
  CacheEntry *entry = link->data;

  cache.n_vertices -= entry->n_vertices;
  g_queue_delete_link(&cache.entries, link);
  entry_free(entry);
}

/* Adds an entry, dropping the least recently used beyond the bound. */
static void insert_locked(CacheEntry *entry)
{
  GList *old = find_locked(entry->path);

  if (old)
    remove_locked(old);
  g_queue_push_head(&cache.entries, entry);
  cache.n_vertices += entry->n_vertices;
  while (cache.n_vertices > ANNOT_CACHE_MAX_VERTICES &&
         cache.entries.length > 1)
    remove_locked(cache.entries.tail);
}

static AnnotSet *lookup(const char *path, const AapiFileStamp *stamp)
{
  AnnotSet *copy = NULL;

  g_mutex_lock(&cache.lock);
  GList *link = find_locked(path);
  if (link) {
    CacheEntry *entry = link->data;
    if (aapi_file_stamp_equal(&entry->stamp, stamp)) {
      copy = annot_set_copy(entry->set);
      g_queue_unlink(&cache.entries, link);
      g_queue_push_head_link(&cache.entries, link);
    } else {
      remove_locked(link);
    }
  }
  g_mutex_unlock(&cache.lock);
  return copy;
}

static void store(const char *path, const AapiFileStamp *stamp,
                  const AnnotSet *set)
{
  gsize n = set_vertices(set);

  if (n > ANNOT_CACHE_MAX_VERTICES)
    return;

  CacheEntry *entry = g_new0(CacheEntry, 1);
  entry->stamp = *stamp;
  entry->path = g_strdup(path);
  entry->set = annot_set_copy(set);
  entry->n_vertices = n;
  g_mutex_lock(&cache.lock);
  insert_locked(entry);
  g_mutex_unlock(&cache.lock);
}

AnnotSet *annot_cache_read_file(const char *path, GError **error)
{
  AapiFileStamp stamp = { 0 };
  bool stamped = aapi_file_stamp(path, &stamp);

  if (stamped) {
    AnnotSet *hit = lookup(path, &stamp);
    if (hit) {
      aapi_debug(AAPI_DEBUG_PERF, "annotation cache hit: %s", path);
      return hit;
    }
  }

  AnnotSet *set = annot_read_any_file(path, error);
  if (set && stamped)
    store(path, &stamp, set);
  return set;
}

void annot_cache_put(const char *path, const AnnotSet *set)
{
  AapiFileStamp stamp = { 0 };

  if (aapi_file_stamp(path, &stamp))
    store(path, &stamp, set);
}

void annot_cache_clear(void)
{
  g_mutex_lock(&cache.lock);
  while (cache.entries.head)
    remove_locked(cache.entries.head);
  g_mutex_unlock(&cache.lock);
}
