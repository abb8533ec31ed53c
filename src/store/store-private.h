/*
 * store-private.h: what store.c shares with the two backends.
 *
 * store.c holds every query that reads the same on both databases; a
 * backend supplies connections, one call that runs a prepared statement
 * and returns its rows as text, the SQL that differs (DDL, upserts, the
 * slide lock) and the named lock.
 */
#pragma once

#include "store.h"

#include <glib.h>
#include <stdbool.h>

typedef struct StoreConn StoreConn;

/* A statement parameter. */
typedef enum {
  STORE_NULL,
  STORE_INT,
  STORE_DOUBLE,
  STORE_TEXT,
} StoreType;

typedef struct {
  StoreType type;
  gint64 i;
  double d;
  const char *s;
} StoreParam;

#define P_INT(v) ((StoreParam) { .type = STORE_INT, .i = (v) })
#define P_DOUBLE(v) ((StoreParam) { .type = STORE_DOUBLE, .d = (v) })
#define P_TEXT(v) ((StoreParam) { .type = (v) ? STORE_TEXT : STORE_NULL, \
                                  .s = (v) })
#define P_NULL ((StoreParam) { .type = STORE_NULL })

/* A table and the statement that creates it. */
typedef struct {
  const char *name;
  const char *ddl;
} StoreTable;

/* The SQL text that differs between the databases. */
typedef struct {
  const StoreTable *tables;        /* old tables first; ends with NULLs */
  const char *insert_ignore;       /* "INSERT" that skips duplicates */
  const char *table_exists;        /* ? = table name; a row if it exists */
  const char *slide_upsert;        /* ?, ?, ? = id, name, path */
  const char *meta_upsert;         /* ?, ? = key, value */
  const char *meta_increment;      /* ? = key; adds 1 or inserts 1 */
  const char *schema_mark;         /* ?, ? = version, time; no-op if there */
  const char *begin_write;         /* the transaction a write runs in */
  const char *lock_slide;          /* ? = slide id; a row if it exists */
  /* Held from numbering a version to commit, so that versions commit in
   * seq order; NULL when writes are serialised anyway. */
  const char *lock_order;
} StoreDialect;

typedef struct {
  const char *name;
  const StoreDialect *sql;
  /* Parses the URL's remainder (after "scheme://") into backend data. */
  bool (*open)(AapiStore *store, const char *rest, GError **error);
  void (*close)(AapiStore *store);
  StoreConn *(*connect)(AapiStore *store, GError **error);
  void (*disconnect)(StoreConn *conn);
  /* Runs text without parameters (DDL, COMMIT). */
  bool (*exec)(StoreConn *conn, const char *sql, GError **error);
  /* Runs a prepared statement; rows (may be NULL) receives GPtrArray*
   * rows of char* columns (NULL for SQL NULL); insert_id (may be NULL)
   * the id an AUTO_INCREMENT column got. */
  bool (*query)(StoreConn *conn, const char *sql, const StoreParam *params,
                guint n_params, GPtrArray **rows, gint64 *insert_id,
                GError **error);
  /* Text appended to the DDL of aapi's tables (NULL: none), so that they
   * match the old tables they are joined with. */
  char *(*table_options)(StoreConn *conn, GError **error);
  StoreLock *(*lock_try)(AapiStore *store, const char *name,
                         GError **error);
  void (*lock_release)(StoreLock *lock);
} StoreBackend;

struct AapiStore {
  const StoreBackend *backend;
  gpointer backend_data;
  /* The connection pool: idle connections, how many exist, the limit. */
  GMutex pool_lock;
  GCond pool_cond;
  GPtrArray *idle;
  guint n_conns;
  guint max_conns;
  /* Serialises slide writes inside this process before the database's
   * own lock, so waiting threads hold no connection (SQLite locks the
   * whole file for a write anyway). */
  GMutex write_lock;
  GHashTable *slide_locks;  /* slide id -> GMutex* */
  bool serialise_writes;    /* one lock for every slide */
  /* Tables this open created, for init-db's report. */
  GPtrArray *created;
  gint64 n_backfilled;
};

/* A named lock; data belongs to the backend. */
struct StoreLock {
  AapiStore *store;
  char *name;
  gpointer data;
};

extern const StoreBackend store_sqlite_backend;
extern const StoreBackend store_mysql_backend;

/* Borrowing and returning pooled connections. */
StoreConn *store_conn_get(AapiStore *store, GError **error);
void store_conn_put(AapiStore *store, StoreConn *conn);

/* The time as the Annotations table holds it, "YYYY-MM-DD HH:MM:SS" UTC. */
char *store_format_time(gint64 unix_seconds);

/* A message for a database failure, in the one error domain. */
void store_set_error(GError **error, const char *what, const char *detail);
