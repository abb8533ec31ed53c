/*
 * store-sqlite.c: the SQLite backend, a file in the data folder.
 *
 * Connections run in WAL mode so that readers never wait for the writer; a
 * write transaction is BEGIN IMMEDIATE, which takes the file's write lock
 * at once (other processes wait up to the busy timeout).
 */
#include "store-private.h"

#include "common/aapi-error.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#define SQLITE_BUSY_TIMEOUT_MS 60000

static const StoreTable sqlite_tables[] = {
  { "Slides",
    "CREATE TABLE IF NOT EXISTS Slides ("
    " slide_ID VARCHAR(100) NOT NULL PRIMARY KEY,"
    " slide_name VARCHAR(100),"
    " slide_path VARCHAR(300))" },
  { "Annotations",
    "CREATE TABLE IF NOT EXISTS Annotations ("
    " slide_ID VARCHAR(100) NOT NULL,"
    " annotation_path_before VARCHAR(300) NULL,"
    " annotation_path_after VARCHAR(300) NOT NULL,"
    " updated_time DATETIME DEFAULT CURRENT_TIMESTAMP,"
    " region_x INT, region_y INT, region_height INT, region_width INT,"
    " PRIMARY KEY (slide_ID, annotation_path_after),"
    " FOREIGN KEY (slide_ID) REFERENCES Slides (slide_ID))" },
  { "aapi_schema_version",
    "CREATE TABLE IF NOT EXISTS aapi_schema_version ("
    " version INTEGER NOT NULL PRIMARY KEY,"
    " applied_time DATETIME NOT NULL)" },
  { "aapi_version_order",
    "CREATE TABLE IF NOT EXISTS aapi_version_order ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " slide_ID VARCHAR(100) NOT NULL,"
    " annotation_path_after VARCHAR(300) NOT NULL,"
    " annotation_count BIGINT NULL,"
    " file_missing INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE (slide_ID, annotation_path_after))" },
  { "aapi_models",
    "CREATE TABLE IF NOT EXISTS aapi_models ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " class_name VARCHAR(100) NOT NULL,"
    " path VARCHAR(1000) NOT NULL,"
    " created_time BIGINT NOT NULL,"
    " f1 DOUBLE NULL,"
    " promoted INTEGER NOT NULL DEFAULT 0)" },
  { "aapi_train_runs",
    "CREATE TABLE IF NOT EXISTS aapi_train_runs ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " class_name VARCHAR(100) NULL,"
    " started_time BIGINT NOT NULL, finished_time BIGINT NOT NULL,"
    " n_train BIGINT NOT NULL, n_val BIGINT NOT NULL,"
    " epochs BIGINT NOT NULL,"
    " loss DOUBLE NULL, f1_before DOUBLE NULL, f1_after DOUBLE NULL,"
    " decision VARCHAR(32) NULL, detail TEXT NULL,"
    " model_path VARCHAR(1000) NULL)" },
  { "aapi_meta",
    "CREATE TABLE IF NOT EXISTS aapi_meta ("
    " meta_key VARCHAR(191) NOT NULL PRIMARY KEY,"
    " meta_value TEXT NULL)" },
  { "aapi_locks",
    "CREATE TABLE IF NOT EXISTS aapi_locks ("
    " lock_name VARCHAR(191) NOT NULL PRIMARY KEY,"
    " owner_host VARCHAR(255) NOT NULL,"
    " owner_pid BIGINT NOT NULL,"
    " owner_token VARCHAR(64) NOT NULL,"
    " acquired_time BIGINT NOT NULL)" },
  { NULL, NULL }
};

static const StoreDialect sqlite_dialect = {
  .tables = sqlite_tables,
  .insert_ignore = "INSERT OR IGNORE",
  .table_exists =
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?",
  .slide_upsert =
      "INSERT INTO Slides (slide_ID, slide_name, slide_path) "
      "VALUES (?, ?, ?) ON CONFLICT (slide_ID) DO UPDATE SET "
      "slide_name = excluded.slide_name, slide_path = excluded.slide_path",
  .meta_upsert =
      "INSERT INTO aapi_meta (meta_key, meta_value) VALUES (?, ?) "
      "ON CONFLICT (meta_key) DO UPDATE SET meta_value = excluded.meta_value",
  .meta_increment =
      "INSERT INTO aapi_meta (meta_key, meta_value) VALUES (?, '1') "
      "ON CONFLICT (meta_key) DO UPDATE SET meta_value = "
      "CAST(CAST(meta_value AS INTEGER) + 1 AS TEXT)",
  .schema_mark =
      "INSERT OR IGNORE INTO aapi_schema_version (version, applied_time) "
      "VALUES (?, ?)",
  .begin_write = "BEGIN IMMEDIATE",
  .lock_slide = "SELECT slide_ID FROM Slides WHERE slide_ID = ?",
};

struct StoreConn {
  sqlite3 *db;
  GHashTable *statements;   /* SQL text -> sqlite3_stmt*, prepared once */
};

typedef struct {
  char *path;
} SqliteData;

static void stmt_finalize(gpointer stmt)
{
  sqlite3_finalize(stmt);
}

static bool sqlite_fail(GError **error, sqlite3 *db, const char *what)
{
  store_set_error(error, what, db ? sqlite3_errmsg(db) : "out of memory");

  /* Still locked after the busy timeout: worth a retry later. */
  if (db && error && *error && (sqlite3_errcode(db) == SQLITE_BUSY ||
                                sqlite3_errcode(db) == SQLITE_LOCKED))
    (*error)->code = AAPI_ERROR_BUSY;
  return false;
}

static void sqlite_disconnect(StoreConn *conn)
{
  g_hash_table_unref(conn->statements);
  sqlite3_close_v2(conn->db);
  g_free(conn);
}

static bool sqlite_exec(StoreConn *conn, const char *sql, GError **error)
{
  char *message = NULL;

  if (sqlite3_exec(conn->db, sql, NULL, NULL, &message) == SQLITE_OK)
    return true;
  store_set_error(error, sql, message ? message : sqlite3_errmsg(conn->db));
  sqlite3_free(message);
  return false;
}

static StoreConn *sqlite_connect(AapiStore *store, GError **error)
{
  SqliteData *data = store->backend_data;
  StoreConn *conn = g_new0(StoreConn, 1);
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
              SQLITE_OPEN_NOMUTEX;

  conn->statements = g_hash_table_new_full(
      g_str_hash, g_str_equal, g_free, stmt_finalize);
  if (sqlite3_open_v2(data->path, &conn->db, flags, NULL) != SQLITE_OK) {
    g_autofree char *what = g_strdup_printf("opening %s", data->path);
    sqlite_fail(error, conn->db, what);
    sqlite_disconnect(conn);
    return NULL;
  }

  /* WAL lets readers go on during a write; FULL sync keeps a committed
   * version row across a power cut, like its fsynced file. */
  sqlite3_busy_timeout(conn->db, SQLITE_BUSY_TIMEOUT_MS);
  if (!sqlite_exec(conn, "PRAGMA journal_mode = WAL", error) ||
      !sqlite_exec(conn, "PRAGMA synchronous = FULL", error) ||
      !sqlite_exec(conn, "PRAGMA foreign_keys = ON", error)) {
    sqlite_disconnect(conn);
    return NULL;
  }
  return conn;
}

static sqlite3_stmt *statement_for(StoreConn *conn, const char *sql,
                                   GError **error)
{
  sqlite3_stmt *stmt = g_hash_table_lookup(conn->statements, sql);

  if (stmt)
    return stmt;
  if (sqlite3_prepare_v3(conn->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                         &stmt, NULL) != SQLITE_OK) {
    sqlite_fail(error, conn->db, "preparing a statement");
    return NULL;
  }
  g_hash_table_insert(conn->statements, g_strdup(sql), stmt);
  return stmt;
}

static int bind_one(sqlite3_stmt *stmt, int index, const StoreParam *p)
{
  switch (p->type) {
  case STORE_INT:
    return sqlite3_bind_int64(stmt, index, p->i);
  case STORE_DOUBLE:
    return sqlite3_bind_double(stmt, index, p->d);
  case STORE_TEXT:
    return sqlite3_bind_text(stmt, index, p->s, -1, SQLITE_TRANSIENT);
  case STORE_NULL:
  default:
    return sqlite3_bind_null(stmt, index);
  }
}

static GPtrArray *read_row(sqlite3_stmt *stmt)
{
  int n = sqlite3_column_count(stmt);
  GPtrArray *row = g_ptr_array_new_full(n, g_free);

  for (int i = 0; i < n; i++) {
    const unsigned char *text = sqlite3_column_text(stmt, i);
    g_ptr_array_add(row, text ? g_strdup((const char *) text) : NULL);
  }
  return row;
}

static bool sqlite_query(StoreConn *conn, const char *sql,
                         const StoreParam *params, guint n_params,
                         GPtrArray **rows, gint64 *insert_id,
                         GError **error)
{
  sqlite3_stmt *stmt = statement_for(conn, sql, error);
  g_autoptr(GPtrArray) result = g_ptr_array_new_with_free_func(
      (GDestroyNotify) g_ptr_array_unref);
  int rc;

  if (stmt == NULL)
    return false;
  for (guint i = 0; i < n_params; i++) {
    if (bind_one(stmt, i + 1, &params[i]) != SQLITE_OK) {
      sqlite3_reset(stmt);
      return sqlite_fail(error, conn->db, "binding a parameter");
    }
  }

  /* Step to the end, keeping each row as text. */
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
    g_ptr_array_add(result, read_row(stmt));
  if (rc != SQLITE_DONE)
    sqlite_fail(error, conn->db, "running a statement");
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  if (rc != SQLITE_DONE)
    return false;

  if (insert_id)
    *insert_id = sqlite3_last_insert_rowid(conn->db);
  if (rows)
    *rows = g_steal_pointer(&result);
  return true;
}

static bool sqlite_open(AapiStore *store, const char *rest, GError **error)
{
  g_autofree char *parent = NULL;

  if (*rest == '\0') {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "sqlite:// URL names no file");
    return false;
  }
  /* Each pooled connection would get a database of its own. */
  if (g_str_has_prefix(rest, ":memory:") || g_str_has_prefix(rest, "file:")) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "sqlite:// needs a file path (not %s)", rest);
    return false;
  }

  /* Create the folder the file goes in. */
  parent = g_path_get_dirname(rest);
  if (g_mkdir_with_parents(parent, 0755) != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "creating %s: %s",
                parent, g_strerror(errno));
    return false;
  }

  SqliteData *data = g_new0(SqliteData, 1);
  data->path = g_strdup(rest);
  store->backend_data = data;
  store->max_conns = 8;
  store->serialise_writes = true;
  return true;
}

static void sqlite_close(AapiStore *store)
{
  SqliteData *data = store->backend_data;

  if (data == NULL)
    return;
  g_free(data->path);
  g_free(data);
  store->backend_data = NULL;
}

/* --- the named lock: a row naming its owner process --- */

/* A lock whose owner process on this host is gone is free again.  An
 * owner on another host is taken as alive: SQLite files are not shared
 * across hosts (its locking needs one kernel). */
static bool owner_is_gone(GPtrArray *row)
{
  const char *host = row->pdata[0];
  gint64 pid = row->pdata[1] ? g_ascii_strtoll(row->pdata[1], NULL, 10) : 0;

  if (g_strcmp0(host, g_get_host_name()) != 0)
    return false;
  return pid <= 0 || (kill((pid_t) pid, 0) != 0 && errno == ESRCH);
}

static bool lock_take(StoreConn *conn, const char *name, const char *token,
                      bool *taken, GError **error)
{
  g_autoptr(GPtrArray) rows = NULL;
  StoreParam key = P_TEXT(name);

  if (!sqlite_query(conn,
                    "SELECT owner_host, owner_pid FROM aapi_locks "
                    "WHERE lock_name = ?",
                    &key, 1, &rows, NULL, error))
    return false;
  *taken = rows->len == 0 || owner_is_gone(rows->pdata[0]);
  if (!*taken)
    return true;

  StoreParam params[] = {
    P_TEXT(name), P_TEXT(g_get_host_name()), P_INT(getpid()),
    P_TEXT(token), P_INT(g_get_real_time() / G_USEC_PER_SEC),
  };
  return sqlite_query(conn,
                      "INSERT OR REPLACE INTO aapi_locks (lock_name, "
                      "owner_host, owner_pid, owner_token, acquired_time) "
                      "VALUES (?, ?, ?, ?, ?)",
                      params, G_N_ELEMENTS(params), NULL, NULL, error);
}

static StoreLock *sqlite_lock_try(AapiStore *store, const char *name,
                                  GError **error)
{
  g_autofree char *token = g_uuid_string_random();
  bool taken = false;
  StoreConn *conn = store_conn_get(store, error);

  if (conn == NULL)
    return NULL;
  bool ok = sqlite_exec(conn, "BEGIN IMMEDIATE", error) &&
            lock_take(conn, name, token, &taken, error) &&
            sqlite_exec(conn, "COMMIT", error);
  if (!ok)
    sqlite_exec(conn, "ROLLBACK", NULL);
  store_conn_put(store, conn);
  if (!ok || !taken)
    return NULL;

  StoreLock *lock = g_new0(StoreLock, 1);
  lock->store = store;
  lock->name = g_strdup(name);
  lock->data = g_steal_pointer(&token);
  return lock;
}

static void sqlite_lock_release(StoreLock *lock)
{
  g_autoptr(GError) error = NULL;
  StoreParam params[] = { P_TEXT(lock->name), P_TEXT(lock->data) };
  StoreConn *conn = store_conn_get(lock->store, &error);

  if (conn) {
    sqlite_query(conn,
                 "DELETE FROM aapi_locks WHERE lock_name = ? "
                 "AND owner_token = ?",
                 params, 2, NULL, NULL, &error);
    store_conn_put(lock->store, conn);
  }
  if (error)
    g_warning("releasing lock %s: %s", lock->name, error->message);
  g_free(lock->data);
}

const StoreBackend store_sqlite_backend = {
  .name = "sqlite",
  .sql = &sqlite_dialect,
  .open = sqlite_open,
  .close = sqlite_close,
  .connect = sqlite_connect,
  .disconnect = sqlite_disconnect,
  .exec = sqlite_exec,
  .query = sqlite_query,
  .lock_try = sqlite_lock_try,
  .lock_release = sqlite_lock_release,
};
