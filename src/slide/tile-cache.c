/*
 * tile-cache.c: encoded tiles by key, bounded by bytes, least recently used
 * out.  One lock guards the table; lookups only move a list link, so it is
 * held briefly.
 */
#include "slide/dzi.h"

#include "common/aapi-error.h"
#include "common/config.h"

typedef struct {
  char *key;
  GBytes *bytes;
  GList *link;      /* in lru, newest at the head */
} TileEntry;

struct TileCache {
  guint64 capacity;
  guint64 bytes;
  guint64 hits, misses;
  GMutex lock;
  GHashTable *entries;  /* key -> TileEntry* */
  GQueue lru;
};

static void tile_entry_free(gpointer data)
{
  TileEntry *entry = data;

  g_bytes_unref(entry->bytes);
  g_free(entry->key);
  g_free(entry);
}

TileCache *tile_cache_new(guint64 capacity_bytes)
{
  TileCache *cache = g_new0(TileCache, 1);

  cache->capacity = capacity_bytes;
  g_mutex_init(&cache->lock);
  cache->entries = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                         tile_entry_free);
  g_queue_init(&cache->lru);
  return cache;
}

TileCache *tile_cache_new_from_env(GError **error)
{
  const char *text = g_getenv("AAPI_TILE_CACHE_MB");
  gint64 mb = TILE_CACHE_DEFAULT_MB;

  if (text && !aapi_parse_int64(text, 0, 1 << 20, &mb, error)) {
    aapi_error_prefix(error, "AAPI_TILE_CACHE_MB: ");
    return NULL;
  }
  return mb > 0 ? tile_cache_new((guint64) mb << 20) : NULL;
}

void tile_cache_free(TileCache *cache)
{
  if (cache == NULL)
    return;
  g_queue_clear(&cache->lru);
  g_hash_table_destroy(cache->entries);
  g_mutex_clear(&cache->lock);
  g_free(cache);
}

/* Called locked. */
static void remove_entry(TileCache *cache, TileEntry *entry)
{
  cache->bytes -= g_bytes_get_size(entry->bytes);
  g_queue_delete_link(&cache->lru, entry->link);
  g_hash_table_remove(cache->entries, entry->key);
}

GBytes *tile_cache_lookup(TileCache *cache, const char *key)
{
  GBytes *bytes = NULL;

  g_mutex_lock(&cache->lock);
  TileEntry *entry = g_hash_table_lookup(cache->entries, key);
  if (entry) {
    g_queue_unlink(&cache->lru, entry->link);
    g_queue_push_head_link(&cache->lru, entry->link);
    bytes = g_bytes_ref(entry->bytes);
    cache->hits++;
  } else {
    cache->misses++;
  }
  g_mutex_unlock(&cache->lock);
  return bytes;
}

void tile_cache_insert(TileCache *cache, const char *key, GBytes *bytes)
{
  gsize size = g_bytes_get_size(bytes);

  if (size > cache->capacity)
    return;

  g_mutex_lock(&cache->lock);
  /* Two threads may render the same tile at once; keep the first. */
  if (!g_hash_table_contains(cache->entries, key)) {
    TileEntry *entry = g_new0(TileEntry, 1);
    entry->key = g_strdup(key);
    entry->bytes = g_bytes_ref(bytes);
    g_queue_push_head(&cache->lru, entry);
    entry->link = cache->lru.head;
    g_hash_table_insert(cache->entries, entry->key, entry);
    cache->bytes += size;
  }
  while (cache->bytes > cache->capacity)
    remove_entry(cache, g_queue_peek_tail(&cache->lru));
  g_mutex_unlock(&cache->lock);
}

guint64 tile_cache_get_bytes(TileCache *cache)
{
  g_mutex_lock(&cache->lock);
  guint64 bytes = cache->bytes;
  g_mutex_unlock(&cache->lock);
  return bytes;
}

void tile_cache_get_stats(TileCache *cache, guint64 *hits, guint64 *misses)
{
  g_mutex_lock(&cache->lock);
  *hits = cache->hits;
  *misses = cache->misses;
  g_mutex_unlock(&cache->lock);
}
