/*
 * slide-cache.c: open slides shared between requests, bounded, least
 * recently used out.
 *
 * Opening a slide costs file reads and header parsing (and for some
 * formats a lot of it), so handles are kept.  The lock guards only the
 * table: the store look-up and the open happen outside it, and when two
 * threads open the same slide at once the first one in wins.
 */
#include "slide/slide-private.h"

#include "common/aapi-error.h"
#include "common/log.h"

typedef struct {
  char *slide_id;
  Slide *slide;
  GList *link;      /* in lru, newest at the head */
} CacheEntry;

struct SlideCache {
  AapiStore *store;
  guint capacity;
  GMutex lock;
  GHashTable *entries;  /* slide_id -> CacheEntry* */
  GQueue lru;           /* CacheEntry* */
};

static void cache_entry_free(gpointer data)
{
  CacheEntry *entry = data;

  slide_unref(entry->slide);
  g_free(entry->slide_id);
  g_free(entry);
}

SlideCache *slide_cache_new(AapiStore *store, guint capacity)
{
  SlideCache *cache = g_new0(SlideCache, 1);

  cache->store = store;
  cache->capacity = MAX(capacity, 1);
  g_mutex_init(&cache->lock);
  cache->entries = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                         cache_entry_free);
  g_queue_init(&cache->lru);
  return cache;
}

void slide_cache_free(SlideCache *cache)
{
  if (cache == NULL)
    return;
  g_queue_clear(&cache->lru);
  g_hash_table_destroy(cache->entries);
  g_mutex_clear(&cache->lock);
  g_free(cache);
}

static void cache_remove(SlideCache *cache, CacheEntry *entry)
{
  g_queue_delete_link(&cache->lru, entry->link);
  g_hash_table_remove(cache->entries, entry->slide_id);
}

/* A usable cached slide as a new reference, or NULL.  Called locked. */
static Slide *cache_lookup(SlideCache *cache, const char *slide_id)
{
  CacheEntry *entry = g_hash_table_lookup(cache->entries, slide_id);

  if (entry == NULL)
    return NULL;
  if (!slide_is_usable(entry->slide)) {
    /* OpenSlide's errors stick to a handle: start over with a new one. */
    cache_remove(cache, entry);
    return NULL;
  }
  g_queue_unlink(&cache->lru, entry->link);
  g_queue_push_head_link(&cache->lru, entry->link);
  return slide_ref(entry->slide);
}

/* Adds slide unless another thread did first; returns the one to use.
 * Called locked. */
static Slide *cache_insert(SlideCache *cache, const char *slide_id,
                           Slide *slide)
{
  Slide *existing = cache_lookup(cache, slide_id);

  if (existing) {
    slide_unref(slide);
    return existing;
  }

  CacheEntry *entry = g_new0(CacheEntry, 1);
  entry->slide_id = g_strdup(slide_id);
  entry->slide = slide_ref(slide);
  g_queue_push_head(&cache->lru, entry);
  entry->link = cache->lru.head;
  g_hash_table_insert(cache->entries, entry->slide_id, entry);

  /* Evicted slides close when their last user lets go. */
  while (cache->lru.length > cache->capacity)
    cache_remove(cache, g_queue_peek_tail(&cache->lru));
  return slide;
}

/* Drops slide's entry unless another thread has replaced it already.
 * Called locked. */
static void cache_drop(SlideCache *cache, const char *slide_id,
                       Slide *slide)
{
  CacheEntry *entry = g_hash_table_lookup(cache->entries, slide_id);

  if (entry && entry->slide == slide)
    cache_remove(cache, entry);
}

/* A cached slide whose file is still there, or NULL.  An open handle
 * keeps reading a deleted file, but the slide is gone for the API: the
 * entry is dropped, and its handles close with their last user, which
 * frees the disk space. */
static Slide *cache_get_present(SlideCache *cache, const char *slide_id)
{
  g_mutex_lock(&cache->lock);
  Slide *slide = cache_lookup(cache, slide_id);
  g_mutex_unlock(&cache->lock);

  /* The check is one stat, made outside the lock. */
  if (slide == NULL || slide_file_present(slide, NULL))
    return slide;
  g_mutex_lock(&cache->lock);
  cache_drop(cache, slide_id, slide);
  g_mutex_unlock(&cache->lock);
  slide_unref(slide);
  return NULL;
}

Slide *slide_cache_get(SlideCache *cache, const char *slide_id,
                       GError **error)
{
  Slide *slide = cache_get_present(cache, slide_id);

  if (slide)
    return slide;
  /* Opened anew: the store may know a new path for the slide by now, and
   * a missing file gets its error there. */
  g_autoptr(StoreSlide) row = store_slide_get(cache->store, slide_id,
                                              error);
  if (row == NULL)
    return NULL;
  slide = slide_open_as(row->slide_path, slide_id, error);
  if (slide == NULL)
    return NULL;

  g_mutex_lock(&cache->lock);
  slide = cache_insert(cache, slide_id, slide);
  g_mutex_unlock(&cache->lock);
  return slide;
}
