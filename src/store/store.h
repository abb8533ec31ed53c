/*
 * store.h: the metadata store, one interface over SQLite (embedded default)
 * and MariaDB/MySQL (the old service's database).
 *
 * The two tables of the old service, Slides and Annotations, are kept
 * exactly as it created them, so an old MySQL database works as it is; the
 * tables aapi adds (schema version, version order, models, training runs,
 * jobs) sit beside them.  Every query is a prepared statement.
 *
 * An AapiStore is thread safe: it holds a small pool of connections and
 * each call borrows one.  Writes to one slide's annotations are serialised
 * across threads and processes by a slide write (store_slide_write_begin),
 * which holds the database's lock for that slide until commit or abort.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef struct AapiStore AapiStore;

typedef struct {
  char *slide_id;    /* lowercase hex MD5 of the file's bytes */
  char *slide_name;
  char *slide_path;
} StoreSlide;

typedef struct {
  gint64 seq;                 /* aapi's order of versions, > 0; 0 if unknown */
  char *slide_id;
  char *path_before;          /* NULL for the first version */
  char *path_after;
  gint64 updated_time;        /* unix seconds, UTC */
  gint64 region_x, region_y, region_width, region_height;
  bool has_region;
  gint64 annotation_count;    /* -1 when not recorded */
} StoreVersion;

/* Opens sqlite://PATH or mysql://user:pass@host:port/db, creating the
 * schema when missing (idempotent, migrates older aapi schemas). */
AapiStore *store_open(const char *url, GError **error);
void store_close(AapiStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AapiStore, store_close)

/* The tables the last store_open created (NULL-terminated, owned by the
 * store), and how many old Annotations rows it gave an order number. */
const char *const *store_created_tables(AapiStore *store);
gint64 store_backfilled_rows(AapiStore *store);

/* "sqlite" or "mysql". */
const char *store_backend_name(AapiStore *store);
gint64 store_schema_version(AapiStore *store, GError **error);

void store_slide_free(StoreSlide *slide);
void store_version_free(StoreVersion *version);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreSlide, store_slide_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreVersion, store_version_free)

/* Inserts or updates a slide row (same id: name and path updated).  Text
 * longer than the old columns hold (id and name 100 characters, path 300)
 * is refused with AAPI_ERROR_INVALID. */
bool store_slide_put(AapiStore *store, const StoreSlide *slide,
                     GError **error);
/* NULL with AAPI_ERROR_NOT_FOUND when unknown. */
StoreSlide *store_slide_get(AapiStore *store, const char *slide_id,
                            GError **error);
/* StoreSlide*, ordered by name. */
GPtrArray *store_slide_list(AapiStore *store, GError **error);

/* A slide's newest version (NOT_FOUND when it has none). */
StoreVersion *store_version_latest(AapiStore *store, const char *slide_id,
                                   GError **error);
/* StoreVersion*, oldest first. */
GPtrArray *store_version_list(AapiStore *store, const char *slide_id,
                              GError **error);
StoreVersion *store_version_get(AapiStore *store, const char *slide_id,
                                gint64 seq, GError **error);
/* Every Annotations row of every slide, for reconciliation at start. */
GPtrArray *store_version_list_all(AapiStore *store, GError **error);
bool store_version_delete(AapiStore *store, const char *slide_id,
                          const char *path_after, GError **error);

/*
 * A slide write: begin takes the slide's write lock (a transaction holding
 * a row lock on MariaDB, an immediate transaction on SQLite), so that the
 * newest version read inside it is the true newest one until commit.
 */
typedef struct StoreSlideWrite StoreSlideWrite;

StoreSlideWrite *store_slide_write_begin(AapiStore *store,
                                         const char *slide_id,
                                         GError **error);
StoreVersion *store_slide_write_latest(StoreSlideWrite *write,
                                       GError **error);
/* Inserts the Annotations row and its order row; fills version->seq.
 * Versions become visible in seq order across all slides and processes:
 * once a reader has seen seq N, no version with a smaller seq appears
 * later (so "the largest seq" is a sound change marker). */
bool store_slide_write_insert(StoreSlideWrite *write, StoreVersion *version,
                              GError **error);
bool store_slide_write_commit(StoreSlideWrite *write, GError **error);
/* Every row of the slide, also those marked missing, oldest first. */
GPtrArray *store_slide_write_list(StoreSlideWrite *write, GError **error);
/* Drops a row whose file is gone from the order: the row stays, but no
 * longer counts as a version (so the newest version always has a file). */
bool store_slide_write_mark_missing(StoreSlideWrite *write,
                                    const char *path_after, GError **error);
/* Rolls back unless committed, releases the lock, frees. */
void store_slide_write_end(StoreSlideWrite *write);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreSlideWrite, store_slide_write_end)

/* Models, training runs and jobs (used by src/train and src/infer). */
typedef struct {
  gint64 id;
  char *class_name;
  char *path;           /* checkpoint in aapi's native format */
  gint64 created_time;  /* unix seconds */
  double f1;            /* NAN when not measured */
  bool promoted;
} StoreModel;

typedef struct {
  gint64 id;
  char *class_name;
  gint64 started_time, finished_time;
  gint64 n_train, n_val, epochs;
  double loss, f1_before, f1_after;   /* NAN when not measured */
  char *decision;   /* "promoted", "rejected", "skipped", "failed" */
  char *detail;     /* reason, error text */
  char *model_path; /* the new checkpoint, NULL when none */
} StoreTrainRun;

void store_model_free(StoreModel *model);
void store_train_run_free(StoreTrainRun *run);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreModel, store_model_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreTrainRun, store_train_run_free)

bool store_model_add(AapiStore *store, StoreModel *model, GError **error);
/* StoreModel*, oldest first; class_name NULL for every class. */
GPtrArray *store_model_list(AapiStore *store, const char *class_name,
                            GError **error);
bool store_train_run_add(AapiStore *store, StoreTrainRun *run,
                         GError **error);
/* StoreTrainRun*, newest first, at most limit (<= 0: all). */
GPtrArray *store_train_run_list(AapiStore *store, gint64 limit,
                                GError **error);

/* A named lock held by one process at a time across every process that
 * shares the database (a training cycle).  Returns NULL without error
 * when another holder has it.  Release it before closing the store. */
typedef struct StoreLock StoreLock;
StoreLock *store_lock_try(AapiStore *store, const char *name,
                          GError **error);
void store_lock_release(StoreLock *lock);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreLock, store_lock_release)

/* A small key-value table for aapi's own bookkeeping (e.g. the annotation
 * change counter the training scheduler compares). */
bool store_meta_set(AapiStore *store, const char *key, const char *value,
                    GError **error);
/* NULL without an error when the key is absent. */
char *store_meta_get(AapiStore *store, const char *key, GError **error);
/* Increments a counter in the meta table atomically; returns the new value
 * or -1 on error. */
gint64 store_meta_increment(AapiStore *store, const char *key,
                            GError **error);
