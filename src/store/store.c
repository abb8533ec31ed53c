/*
 * store.c: the parts of the store both backends share: opening by URL, the
 * connection pool, the schema, and every query whose SQL reads the same on
 * SQLite and MariaDB.
 */
#include "store-private.h"

#include "common/aapi-error.h"
#include "common/log.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* aapi's own schema version; the old service's tables count as 0. */
#define STORE_SCHEMA_VERSION 1

/* The columns of a version, in the order row_to_version reads them. */
#define VERSION_COLUMNS                                                    \
  "SELECT o.seq, a.slide_ID, a.annotation_path_before, "                  \
  "a.annotation_path_after, a.updated_time, a.region_x, a.region_y, "     \
  "a.region_width, a.region_height, o.annotation_count "                  \
  "FROM Annotations a LEFT JOIN aapi_version_order o "                    \
  "ON o.slide_ID = a.slide_ID "                                           \
  "AND o.annotation_path_after = a.annotation_path_after "

/* Rows marked missing no longer count as versions. */
#define VERSION_PRESENT "(o.file_missing IS NULL OR o.file_missing = 0)"

/* Rows without an order number (written by the old service) sort after
 * the numbered ones, by time and then path. */
#define VERSION_ORDER                                                      \
  "ORDER BY (o.seq IS NULL), o.seq, a.updated_time, "                     \
  "a.annotation_path_after"
#define VERSION_ORDER_DESC                                                 \
  "ORDER BY (o.seq IS NULL) DESC, o.seq DESC, a.updated_time DESC, "      \
  "a.annotation_path_after DESC"

void store_set_error(GError **error, const char *what, const char *detail)
{
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_DB, "database: %s: %s", what,
              detail ? detail : "unknown error");
}

char *store_format_time(gint64 unix_seconds)
{
  g_autoptr(GDateTime) time = g_date_time_new_from_unix_utc(unix_seconds);

  if (time == NULL)
    return g_strdup("1970-01-01 00:00:00");
  return g_date_time_format(time, "%Y-%m-%d %H:%M:%S");
}

/* Reads "YYYY-MM-DD HH:MM:SS" (fractions ignored) as UTC. */
static gint64 parse_time(const char *text)
{
  int y, mo, d, h, mi, s;

  if (text == NULL ||
      sscanf(text, "%4d-%2d-%2d %2d:%2d:%2d", &y, &mo, &d, &h, &mi, &s) != 6)
    return 0;
  g_autoptr(GDateTime) time = g_date_time_new_utc(y, mo, d, h, mi, s);
  return time ? g_date_time_to_unix(time) : 0;
}

/* --- the connection pool --- */

StoreConn *store_conn_get(AapiStore *store, GError **error)
{
  g_mutex_lock(&store->pool_lock);

  /* Wait for an idle connection when the pool is at its limit. */
  while (store->idle->len == 0 && store->n_conns >= store->max_conns)
    g_cond_wait(&store->pool_cond, &store->pool_lock);

  if (store->idle->len > 0) {
    StoreConn *conn = g_ptr_array_steal_index(store->idle,
                                              store->idle->len - 1);
    g_mutex_unlock(&store->pool_lock);
    return conn;
  }

  /* Connect outside the lock: it may take a network round trip. */
  store->n_conns++;
  g_mutex_unlock(&store->pool_lock);
  StoreConn *conn = store->backend->connect(store, error);
  if (conn == NULL) {
    g_mutex_lock(&store->pool_lock);
    store->n_conns--;
    g_cond_signal(&store->pool_cond);
    g_mutex_unlock(&store->pool_lock);
  }
  return conn;
}

void store_conn_put(AapiStore *store, StoreConn *conn)
{
  g_mutex_lock(&store->pool_lock);
  g_ptr_array_add(store->idle, conn);
  g_cond_signal(&store->pool_cond);
  g_mutex_unlock(&store->pool_lock);
}

/* Every statement passes here, so AAPI_DEBUG=sql shows them all. */
static bool conn_query(AapiStore *store, StoreConn *conn, const char *sql,
                       const StoreParam *params, guint n_params,
                       GPtrArray **rows, gint64 *insert_id, GError **error)
{
  aapi_debug(AAPI_DEBUG_SQL, "sql: %s", sql);
  return store->backend->query(conn, sql, params, n_params, rows, insert_id,
                               error);
}

/* Closes a connection left in an unknown state instead of pooling it. */
static void conn_discard(AapiStore *store, StoreConn *conn)
{
  store->backend->disconnect(conn);
  g_mutex_lock(&store->pool_lock);
  store->n_conns--;
  g_cond_signal(&store->pool_cond);
  g_mutex_unlock(&store->pool_lock);
}

/* One statement on a borrowed connection. */
static bool run(AapiStore *store, const char *sql, const StoreParam *params,
                guint n_params, GPtrArray **rows, gint64 *insert_id,
                GError **error)
{
  StoreConn *conn = store_conn_get(store, error);

  if (conn == NULL)
    return false;
  bool ok = conn_query(store, conn, sql, params, n_params, rows,
                       insert_id, error);
  store_conn_put(store, conn);
  return ok;
}

/* --- columns --- */

static const char *col(GPtrArray *row, guint i)
{
  return i < row->len ? row->pdata[i] : NULL;
}

static gint64 col_int(GPtrArray *row, guint i, gint64 fallback)
{
  const char *text = col(row, i);

  return text ? g_ascii_strtoll(text, NULL, 10) : fallback;
}

static double col_double(GPtrArray *row, guint i)
{
  const char *text = col(row, i);

  return text ? g_ascii_strtod(text, NULL) : NAN;
}

static GPtrArray *first_row(GPtrArray *rows)
{
  return rows && rows->len > 0 ? rows->pdata[0] : NULL;
}

/* --- opening --- */

static bool table_exists(AapiStore *store, const char *name, bool *exists,
                         GError **error)
{
  g_autoptr(GPtrArray) rows = NULL;
  StoreParam param = P_TEXT(name);

  if (!run(store, store->backend->sql->table_exists, &param, 1, &rows, NULL,
           error))
    return false;
  *exists = rows->len > 0;
  return true;
}

static bool exec_ddl(AapiStore *store, const char *sql, GError **error)
{
  StoreConn *conn = store_conn_get(store, error);

  if (conn == NULL)
    return false;
  bool ok = store->backend->exec(conn, sql, error);
  store_conn_put(store, conn);
  return ok;
}

/* The options aapi's tables are created with ("" when none). */
static char *table_options(AapiStore *store, GError **error)
{
  if (store->backend->table_options == NULL)
    return g_strdup("");
  StoreConn *conn = store_conn_get(store, error);
  if (conn == NULL)
    return NULL;
  char *options = store->backend->table_options(conn, error);
  store_conn_put(store, conn);
  return options;
}

static bool create_table(AapiStore *store, const StoreTable *t,
                         const char *options, GError **error)
{
  g_autofree char *ddl = g_strconcat(t->ddl, options, NULL);

  if (!exec_ddl(store, ddl, error)) {
    aapi_error_prefix(error, "creating table %s: ", t->name);
    return false;
  }
  g_ptr_array_insert(store->created, store->created->len - 1,
                     g_strdup(t->name));
  return true;
}

/* Creates each missing table, the old ones first; CREATE ... IF NOT
 * EXISTS keeps a race with another process opening the same database
 * harmless. */
static bool create_tables(AapiStore *store, GError **error)
{
  g_autofree char *options = NULL;

  for (const StoreTable *t = store->backend->sql->tables; t->name; t++) {
    bool exists;
    bool old = g_str_equal(t->name, "Slides") ||
               g_str_equal(t->name, "Annotations");
    if (!table_exists(store, t->name, &exists, error))
      return false;
    if (exists)
      continue;
    /* aapi's tables follow the old ones, now present. */
    if (!old && options == NULL &&
        (options = table_options(store, error)) == NULL)
      return false;
    if (!create_table(store, t, old ? "" : options, error))
      return false;
  }
  return true;
}

/* Gives Annotations rows without an order number one, oldest first (by
 * time, then path).  slide_id NULL does every slide. */
static bool backfill_order(AapiStore *store, StoreConn *conn,
                           const char *slide_id, GError **error)
{
  g_autofree char *sql = g_strdup_printf(
      "%s INTO aapi_version_order (slide_ID, annotation_path_after) "
      "SELECT a.slide_ID, a.annotation_path_after FROM Annotations a "
      "LEFT JOIN aapi_version_order o ON o.slide_ID = a.slide_ID "
      "AND o.annotation_path_after = a.annotation_path_after "
      "WHERE o.seq IS NULL %s "
      "ORDER BY a.updated_time, a.annotation_path_after",
      store->backend->sql->insert_ignore,
      slide_id ? "AND a.slide_ID = ?" : "");
  StoreParam param = P_TEXT(slide_id);

  return conn_query(store, conn, sql, &param, slide_id ? 1 : 0, NULL,
                    NULL, error);
}

static gint64 count_unordered(AapiStore *store, GError **error)
{
  g_autoptr(GPtrArray) rows = NULL;

  if (!run(store,
           "SELECT COUNT(*) FROM Annotations a "
           "LEFT JOIN aapi_version_order o ON o.slide_ID = a.slide_ID "
           "AND o.annotation_path_after = a.annotation_path_after "
           "WHERE o.seq IS NULL",
           NULL, 0, &rows, NULL, error))
    return -1;
  return col_int(first_row(rows), 0, 0);
}

/* Records the schema version and the rows aapi's own bookkeeping needs;
 * a second process doing the same at once changes nothing. */
static bool mark_schema(AapiStore *store, GError **error)
{
  g_autofree char *now = store_format_time(g_get_real_time() /
                                           G_USEC_PER_SEC);
  StoreParam mark[] = { P_INT(STORE_SCHEMA_VERSION), P_TEXT(now) };

  if (!run(store, store->backend->sql->schema_mark, mark, 2, NULL, NULL,
           error))
    return false;

  /* The row the MariaDB backend locks to number versions in order. */
  g_autofree char *order_row = g_strdup_printf(
      "%s INTO aapi_meta (meta_key, meta_value) "
      "VALUES ('version_order', '')", store->backend->sql->insert_ignore);
  if (!run(store, order_row, NULL, 0, NULL, NULL, error))
    return false;

  /* A newer aapi may have added what this one does not know about. */
  gint64 version = store_schema_version(store, error);
  if (version < 0)
    return false;
  if (version > STORE_SCHEMA_VERSION)
    g_warning("database schema %" G_GINT64_FORMAT " is newer than this "
              "aapi's (%d); going on with the tables it knows", version,
              STORE_SCHEMA_VERSION);
  return true;
}

static bool init_schema(AapiStore *store, GError **error)
{
  if (!create_tables(store, error) || !mark_schema(store, error))
    return false;

  /* Number the old service's rows so that every version has a place. */
  store->n_backfilled = count_unordered(store, error);
  if (store->n_backfilled < 0)
    return false;
  if (store->n_backfilled == 0)
    return true;
  StoreConn *conn = store_conn_get(store, error);
  if (conn == NULL)
    return false;
  bool ok = backfill_order(store, conn, NULL, error);
  store_conn_put(store, conn);
  return ok;
}

static void free_mutex(gpointer data)
{
  g_mutex_clear(data);
  g_free(data);
}

static const StoreBackend *backend_for(const char *url, const char **rest,
                                       GError **error)
{
  if (g_str_has_prefix(url, "sqlite://")) {
    *rest = url + strlen("sqlite://");
    return &store_sqlite_backend;
  }
  if (g_str_has_prefix(url, "mysql://") ||
      g_str_has_prefix(url, "mariadb://")) {
    *rest = strstr(url, "://") + 3;
    return &store_mysql_backend;
  }
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
              "database URL must start with sqlite:// or mysql://");
  return NULL;
}

AapiStore *store_open(const char *url, GError **error)
{
  const char *rest;
  const StoreBackend *backend = backend_for(url ? url : "", &rest, error);

  if (backend == NULL)
    return NULL;

  g_autoptr(AapiStore) store = g_new0(AapiStore, 1);
  store->backend = backend;
  g_mutex_init(&store->pool_lock);
  g_cond_init(&store->pool_cond);
  g_mutex_init(&store->write_lock);
  store->idle = g_ptr_array_new();
  store->created = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(store->created, NULL);
  store->slide_locks = g_hash_table_new_full(g_str_hash, g_str_equal,
                                             g_free, free_mutex);
  store->max_conns = 8;

  if (!backend->open(store, rest, error) || !init_schema(store, error))
    return NULL;
  return g_steal_pointer(&store);
}

void store_close(AapiStore *store)
{
  if (store == NULL)
    return;
  for (guint i = 0; store->idle && i < store->idle->len; i++)
    store->backend->disconnect(store->idle->pdata[i]);
  if (store->backend_data)
    store->backend->close(store);
  g_clear_pointer(&store->idle, g_ptr_array_unref);
  g_clear_pointer(&store->created, g_ptr_array_unref);
  g_clear_pointer(&store->slide_locks, g_hash_table_unref);
  g_mutex_clear(&store->pool_lock);
  g_cond_clear(&store->pool_cond);
  g_mutex_clear(&store->write_lock);
  g_free(store);
}

const char *const *store_created_tables(AapiStore *store)
{
  return (const char *const *) store->created->pdata;
}

gint64 store_backfilled_rows(AapiStore *store)
{
  return store->n_backfilled;
}

const char *store_backend_name(AapiStore *store)
{
  return store->backend->name;
}

gint64 store_schema_version(AapiStore *store, GError **error)
{
  g_autoptr(GPtrArray) rows = NULL;

  if (!run(store, "SELECT MAX(version) FROM aapi_schema_version", NULL, 0,
           &rows, NULL, error))
    return -1;
  return col_int(first_row(rows), 0, 0);
}

/* --- slides --- */

void store_slide_free(StoreSlide *slide)
{
  if (slide == NULL)
    return;
  g_free(slide->slide_id);
  g_free(slide->slide_name);
  g_free(slide->slide_path);
  g_free(slide);
}

static StoreSlide *row_to_slide(GPtrArray *row)
{
  StoreSlide *slide = g_new0(StoreSlide, 1);

  slide->slide_id = g_strdup(col(row, 0));
  slide->slide_name = g_strdup(col(row, 1));
  slide->slide_path = g_strdup(col(row, 2));
  return slide;
}

/* The old tables' VARCHAR limits, checked here so that no server
 * truncates a value silently and SQLite holds what MariaDB would. */
static bool text_fits(const char *text, glong max, const char *what,
                      GError **error)
{
  if (text == NULL)
    return true;
  if (!g_utf8_validate(text, -1, NULL)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "%s is not valid UTF-8", what);
    return false;
  }
  if (g_utf8_strlen(text, -1) > max) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "%s is longer than the %ld characters the table holds", what,
                max);
    return false;
  }
  return true;
}

bool store_slide_put(AapiStore *store, const StoreSlide *slide,
                     GError **error)
{
  StoreParam params[] = { P_TEXT(slide->slide_id), P_TEXT(slide->slide_name),
                          P_TEXT(slide->slide_path) };

  if (slide->slide_id == NULL || *slide->slide_id == '\0') {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID, "empty slide id");
    return false;
  }
  if (!text_fits(slide->slide_id, 100, "slide id", error) ||
      !text_fits(slide->slide_name, 100, "slide name", error) ||
      !text_fits(slide->slide_path, 300, "slide path", error))
    return false;
  return run(store, store->backend->sql->slide_upsert, params, 3, NULL,
             NULL, error);
}

StoreSlide *store_slide_get(AapiStore *store, const char *slide_id,
                            GError **error)
{
  g_autoptr(GPtrArray) rows = NULL;
  StoreParam param = P_TEXT(slide_id);

  if (!run(store,
           "SELECT slide_ID, slide_name, slide_path FROM Slides "
           "WHERE slide_ID = ?",
           &param, 1, &rows, NULL, error))
    return NULL;
  if (rows->len == 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND, "unknown slide %s",
                slide_id);
    return NULL;
  }
  return row_to_slide(first_row(rows));
}

GPtrArray *store_slide_list(AapiStore *store, GError **error)
{
  g_autoptr(GPtrArray) rows = NULL;

  if (!run(store,
           "SELECT slide_ID, slide_name, slide_path FROM Slides "
           "ORDER BY slide_name, slide_ID",
           NULL, 0, &rows, NULL, error))
    return NULL;
  GPtrArray *slides = g_ptr_array_new_with_free_func(
      (GDestroyNotify) store_slide_free);
  for (guint i = 0; i < rows->len; i++)
    g_ptr_array_add(slides, row_to_slide(rows->pdata[i]));
  return slides;
}

/* --- versions --- */

void store_version_free(StoreVersion *version)
{
  if (version == NULL)
    return;
  g_free(version->slide_id);
  g_free(version->path_before);
  g_free(version->path_after);
  g_free(version);
}

static StoreVersion *row_to_version(GPtrArray *row)
{
  StoreVersion *v = g_new0(StoreVersion, 1);

  v->seq = col_int(row, 0, 0);
  v->slide_id = g_strdup(col(row, 1));
  v->path_before = g_strdup(col(row, 2));
  v->path_after = g_strdup(col(row, 3));
  v->updated_time = parse_time(col(row, 4));
  v->has_region = col(row, 5) != NULL;
  v->region_x = col_int(row, 5, 0);
  v->region_y = col_int(row, 6, 0);
  v->region_width = col_int(row, 7, 0);
  v->region_height = col_int(row, 8, 0);
  v->annotation_count = col_int(row, 9, -1);
  return v;
}

static GPtrArray *rows_to_versions(GPtrArray *rows)
{
  GPtrArray *versions = g_ptr_array_new_with_free_func(
      (GDestroyNotify) store_version_free);

  for (guint i = 0; i < rows->len; i++)
    g_ptr_array_add(versions, row_to_version(rows->pdata[i]));
  return versions;
}

static StoreVersion *one_version(GPtrArray *rows, const char *slide_id,
                                 GError **error)
{
  if (rows->len == 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
                "slide %s has no such annotation version", slide_id);
    return NULL;
  }
  return row_to_version(first_row(rows));
}

static const char latest_sql[] =
    VERSION_COLUMNS "WHERE a.slide_ID = ? AND " VERSION_PRESENT " "
    VERSION_ORDER_DESC " LIMIT 1";

StoreVersion *store_version_latest(AapiStore *store, const char *slide_id,
                                   GError **error)
{
  g_autoptr(GPtrArray) rows = NULL;
  StoreParam param = P_TEXT(slide_id);

  if (!run(store, latest_sql, &param, 1, &rows, NULL, error))
    return NULL;
  return one_version(rows, slide_id, error);
}

GPtrArray *store_version_list(AapiStore *store, const char *slide_id,
                              GError **error)
{
  g_autoptr(GPtrArray) rows = NULL;
  StoreParam param = P_TEXT(slide_id);

  if (!run(store,
           VERSION_COLUMNS "WHERE a.slide_ID = ? AND " VERSION_PRESENT " "
           VERSION_ORDER,
           &param, 1, &rows, NULL, error))
    return NULL;
  return rows_to_versions(rows);
}

StoreVersion *store_version_get(AapiStore *store, const char *slide_id,
                                gint64 seq, GError **error)
{
  g_autoptr(GPtrArray) rows = NULL;
  StoreParam params[] = { P_TEXT(slide_id), P_INT(seq) };

  if (!run(store,
           VERSION_COLUMNS "WHERE a.slide_ID = ? AND o.seq = ? AND "
           VERSION_PRESENT,
           params, 2, &rows, NULL, error))
    return NULL;
  return one_version(rows, slide_id, error);
}

GPtrArray *store_version_list_all(AapiStore *store, GError **error)
{
  g_autoptr(GPtrArray) rows = NULL;

  if (!run(store, VERSION_COLUMNS "ORDER BY a.slide_ID, (o.seq IS NULL), "
           "o.seq, a.updated_time, a.annotation_path_after",
           NULL, 0, &rows, NULL, error))
    return NULL;
  return rows_to_versions(rows);
}

/* Runs statements in one transaction on one connection. */
static bool run_in_transaction(AapiStore *store, const char *const *sqls,
                               const StoreParam *params, guint n_params,
                               GError **error)
{
  StoreConn *conn = store_conn_get(store, error);

  if (conn == NULL)
    return false;
  bool ok = store->backend->exec(conn, store->backend->sql->begin_write,
                                 error);
  for (guint i = 0; ok && sqls[i]; i++)
    ok = conn_query(store, conn, sqls[i], params, n_params, NULL, NULL,
                    error);
  if (ok)
    ok = store->backend->exec(conn, "COMMIT", error);
  if (!ok && !store->backend->exec(conn, "ROLLBACK", NULL)) {
    conn_discard(store, conn);
    return false;
  }
  store_conn_put(store, conn);
  return ok;
}

bool store_version_delete(AapiStore *store, const char *slide_id,
                          const char *path_after, GError **error)
{
  static const char *const sqls[] = {
    "DELETE FROM aapi_version_order WHERE slide_ID = ? "
    "AND annotation_path_after = ?",
    "DELETE FROM Annotations WHERE slide_ID = ? "
    "AND annotation_path_after = ?",
    NULL
  };
  StoreParam params[] = { P_TEXT(slide_id), P_TEXT(path_after) };

  return run_in_transaction(store, sqls, params, 2, error);
}

/* --- the slide write --- */

struct StoreSlideWrite {
  AapiStore *store;
  StoreConn *conn;
  char *slide_id;
  GMutex *mutex;     /* the in-process lock held, or NULL */
  bool in_transaction;
  bool committed;
};

/* The in-process mutex for a slide (one for every slide on SQLite, which
 * locks the whole file).  Mutexes live as long as the store. */
static GMutex *slide_mutex(AapiStore *store, const char *slide_id)
{
  const char *key = store->serialise_writes ? "" : slide_id;

  g_mutex_lock(&store->write_lock);
  GMutex *mutex = g_hash_table_lookup(store->slide_locks, key);
  if (mutex == NULL) {
    mutex = g_new0(GMutex, 1);
    g_mutex_init(mutex);
    g_hash_table_insert(store->slide_locks, g_strdup(key), mutex);
  }
  g_mutex_unlock(&store->write_lock);
  return mutex;
}

static bool write_lock_slide(StoreSlideWrite *write, GError **error)
{
  AapiStore *store = write->store;
  g_autoptr(GPtrArray) rows = NULL;
  StoreParam param = P_TEXT(write->slide_id);

  if (!store->backend->exec(write->conn, store->backend->sql->begin_write,
                            error))
    return false;
  write->in_transaction = true;
  if (!conn_query(store, write->conn, store->backend->sql->lock_slide,
                  &param, 1, &rows, NULL, error))
    return false;
  if (rows->len == 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND, "unknown slide %s",
                write->slide_id);
    return false;
  }
  /* Rows another program added since get their order number now. */
  return backfill_order(store, write->conn, write->slide_id, error);
}

StoreSlideWrite *store_slide_write_begin(AapiStore *store,
                                         const char *slide_id,
                                         GError **error)
{
  g_autoptr(StoreSlideWrite) write = g_new0(StoreSlideWrite, 1);

  write->store = store;
  write->slide_id = g_strdup(slide_id);

  /* Queue on the process's own lock first, holding no connection. */
  write->mutex = slide_mutex(store, slide_id);
  g_mutex_lock(write->mutex);

  write->conn = store_conn_get(store, error);
  if (write->conn == NULL || !write_lock_slide(write, error))
    return NULL;
  return g_steal_pointer(&write);
}

StoreVersion *store_slide_write_latest(StoreSlideWrite *write,
                                       GError **error)
{
  g_autoptr(GPtrArray) rows = NULL;
  StoreParam param = P_TEXT(write->slide_id);

  if (!conn_query(write->store, write->conn, latest_sql, &param, 1, &rows,
                  NULL, error))
    return NULL;
  return one_version(rows, write->slide_id, error);
}

GPtrArray *store_slide_write_list(StoreSlideWrite *write, GError **error)
{
  g_autoptr(GPtrArray) rows = NULL;
  StoreParam param = P_TEXT(write->slide_id);

  if (!conn_query(write->store, write->conn,
                  VERSION_COLUMNS "WHERE a.slide_ID = ? " VERSION_ORDER,
                  &param, 1, &rows, NULL, error))
    return NULL;
  return rows_to_versions(rows);
}

static bool insert_annotation_row(StoreSlideWrite *write,
                                  const StoreVersion *v, GError **error)
{
  gint64 time = v->updated_time > 0 ? v->updated_time
                                    : g_get_real_time() / G_USEC_PER_SEC;
  g_autofree char *when = store_format_time(time);
  StoreParam params[] = {
    P_TEXT(write->slide_id), P_TEXT(v->path_before), P_TEXT(v->path_after),
    P_TEXT(when),
    v->has_region ? P_INT(v->region_x) : P_NULL,
    v->has_region ? P_INT(v->region_y) : P_NULL,
    v->has_region ? P_INT(v->region_height) : P_NULL,
    v->has_region ? P_INT(v->region_width) : P_NULL,
  };

  return conn_query(
      write->store, write->conn,
      "INSERT INTO Annotations (slide_ID, annotation_path_before, "
      "annotation_path_after, updated_time, region_x, region_y, "
      "region_height, region_width) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      params, G_N_ELEMENTS(params), NULL, NULL, error);
}

static bool region_fits(const StoreVersion *v, GError **error)
{
  gint64 values[] = { v->region_x, v->region_y, v->region_width,
                      v->region_height };

  for (guint i = 0; v->has_region && i < G_N_ELEMENTS(values); i++) {
    /* The old table's region columns are 32-bit INT. */
    if (values[i] < G_MININT32 || values[i] > G_MAXINT32) {
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                  "region value %" G_GINT64_FORMAT " out of range",
                  values[i]);
      return false;
    }
  }
  return true;
}

bool store_slide_write_insert(StoreSlideWrite *write, StoreVersion *version,
                              GError **error)
{
  StoreParam params[] = {
    P_TEXT(write->slide_id), P_TEXT(version->path_after),
    version->annotation_count >= 0 ? P_INT(version->annotation_count)
                                   : P_NULL,
  };
  gint64 seq = 0;

  if (version->path_after == NULL) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INTERNAL, "no path");
    return false;
  }
  if (!region_fits(version, error) ||
      !text_fits(version->path_after, 300, "annotation path", error) ||
      !text_fits(version->path_before, 300, "annotation path", error))
    return false;
  if (!insert_annotation_row(write, version, error))
    return false;
  const char *lock_order = write->store->backend->sql->lock_order;
  if (lock_order && !conn_query(write->store, write->conn, lock_order, NULL,
                                0, NULL, NULL, error))
    return false;
  if (!conn_query(
          write->store, write->conn,
          "INSERT INTO aapi_version_order (slide_ID, annotation_path_after, "
          "annotation_count) VALUES (?, ?, ?)",
          params, G_N_ELEMENTS(params), NULL, &seq, error))
    return false;
  version->seq = seq;
  if (version->slide_id == NULL)
    version->slide_id = g_strdup(write->slide_id);
  return true;
}

bool store_slide_write_mark_missing(StoreSlideWrite *write,
                                    const char *path_after, GError **error)
{
  StoreParam params[] = { P_TEXT(write->slide_id), P_TEXT(path_after) };

  return conn_query(
      write->store, write->conn,
      "UPDATE aapi_version_order SET file_missing = 1 "
      "WHERE slide_ID = ? AND annotation_path_after = ?",
      params, 2, NULL, NULL, error);
}

bool store_slide_write_commit(StoreSlideWrite *write, GError **error)
{
  if (!write->store->backend->exec(write->conn, "COMMIT", error))
    return false;
  write->committed = true;
  write->in_transaction = false;
  return true;
}

void store_slide_write_end(StoreSlideWrite *write)
{
  if (write == NULL)
    return;
  if (write->conn) {
    /* A connection whose rollback fails is in an unknown state. */
    if (write->in_transaction &&
        !write->store->backend->exec(write->conn, "ROLLBACK", NULL))
      conn_discard(write->store, write->conn);
    else
      store_conn_put(write->store, write->conn);
  }
  if (write->mutex)
    g_mutex_unlock(write->mutex);
  g_free(write->slide_id);
  g_free(write);
}

/* --- models and training runs --- */

void store_model_free(StoreModel *model)
{
  if (model == NULL)
    return;
  g_free(model->class_name);
  g_free(model->path);
  g_free(model);
}

void store_train_run_free(StoreTrainRun *run)
{
  if (run == NULL)
    return;
  g_free(run->class_name);
  g_free(run->decision);
  g_free(run->detail);
  g_free(run->model_path);
  g_free(run);
}

static StoreParam p_measure(double value)
{
  return isfinite(value) ? P_DOUBLE(value) : P_NULL;
}

bool store_model_add(AapiStore *store, StoreModel *model, GError **error)
{
  StoreParam params[] = {
    P_TEXT(model->class_name), P_TEXT(model->path),
    P_INT(model->created_time), p_measure(model->f1),
    P_INT(model->promoted ? 1 : 0),
  };

  return run(store,
             "INSERT INTO aapi_models (class_name, path, created_time, f1, "
             "promoted) VALUES (?, ?, ?, ?, ?)",
             params, G_N_ELEMENTS(params), NULL, &model->id, error);
}

GPtrArray *store_model_list(AapiStore *store, const char *class_name,
                            GError **error)
{
  g_autoptr(GPtrArray) rows = NULL;
  StoreParam param = P_TEXT(class_name);

  if (!run(store,
           "SELECT id, class_name, path, created_time, f1, promoted "
           "FROM aapi_models WHERE (? IS NULL OR class_name = ?) "
           "ORDER BY id",
           (StoreParam[]) { param, param }, 2, &rows, NULL, error))
    return NULL;
  GPtrArray *models = g_ptr_array_new_with_free_func(
      (GDestroyNotify) store_model_free);
  for (guint i = 0; i < rows->len; i++) {
    GPtrArray *row = rows->pdata[i];
    StoreModel *m = g_new0(StoreModel, 1);
    m->id = col_int(row, 0, 0);
    m->class_name = g_strdup(col(row, 1));
    m->path = g_strdup(col(row, 2));
    m->created_time = col_int(row, 3, 0);
    m->f1 = col_double(row, 4);
    m->promoted = col_int(row, 5, 0) != 0;
    g_ptr_array_add(models, m);
  }
  return models;
}

bool store_train_run_add(AapiStore *store, StoreTrainRun *run_info,
                         GError **error)
{
  StoreTrainRun *r = run_info;
  StoreParam params[] = {
    P_TEXT(r->class_name), P_INT(r->started_time), P_INT(r->finished_time),
    P_INT(r->n_train), P_INT(r->n_val), P_INT(r->epochs),
    p_measure(r->loss), p_measure(r->f1_before), p_measure(r->f1_after),
    P_TEXT(r->decision), P_TEXT(r->detail), P_TEXT(r->model_path),
  };

  return run(store,
             "INSERT INTO aapi_train_runs (class_name, started_time, "
             "finished_time, n_train, n_val, epochs, loss, f1_before, "
             "f1_after, decision, detail, model_path) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             params, G_N_ELEMENTS(params), NULL, &r->id, error);
}

static StoreTrainRun *row_to_train_run(GPtrArray *row)
{
  StoreTrainRun *r = g_new0(StoreTrainRun, 1);

  r->id = col_int(row, 0, 0);
  r->class_name = g_strdup(col(row, 1));
  r->started_time = col_int(row, 2, 0);
  r->finished_time = col_int(row, 3, 0);
  r->n_train = col_int(row, 4, 0);
  r->n_val = col_int(row, 5, 0);
  r->epochs = col_int(row, 6, 0);
  r->loss = col_double(row, 7);
  r->f1_before = col_double(row, 8);
  r->f1_after = col_double(row, 9);
  r->decision = g_strdup(col(row, 10));
  r->detail = g_strdup(col(row, 11));
  r->model_path = g_strdup(col(row, 12));
  return r;
}

/* The newest runs first, at most limit of them (limit <= 0: all). */
GPtrArray *store_train_run_list(AapiStore *store, gint64 limit,
                                GError **error)
{
  g_autoptr(GPtrArray) rows = NULL;
  StoreParam param = P_INT(limit > 0 ? limit : G_MAXINT64);

  if (!run(store,
           "SELECT id, class_name, started_time, finished_time, n_train, "
           "n_val, epochs, loss, f1_before, f1_after, decision, detail, "
           "model_path FROM aapi_train_runs ORDER BY id DESC LIMIT ?",
           &param, 1, &rows, NULL, error))
    return NULL;
  GPtrArray *runs = g_ptr_array_new_with_free_func(
      (GDestroyNotify) store_train_run_free);
  for (guint i = 0; i < rows->len; i++)
    g_ptr_array_add(runs, row_to_train_run(rows->pdata[i]));
  return runs;
}

/* --- the named lock --- */

StoreLock *store_lock_try(AapiStore *store, const char *name,
                          GError **error)
{
  if (name == NULL || *name == '\0') {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID, "empty lock name");
    return NULL;
  }
  return store->backend->lock_try(store, name, error);
}

void store_lock_release(StoreLock *lock)
{
  if (lock == NULL)
    return;
  lock->store->backend->lock_release(lock);
  g_free(lock->name);
  g_free(lock);
}

/* --- meta --- */

bool store_meta_set(AapiStore *store, const char *key, const char *value,
                    GError **error)
{
  StoreParam params[] = { P_TEXT(key), P_TEXT(value) };

  return run(store, store->backend->sql->meta_upsert, params, 2, NULL,
             NULL, error);
}

/* NULL without error when the key is absent. */
char *store_meta_get(AapiStore *store, const char *key, GError **error)
{
  g_autoptr(GPtrArray) rows = NULL;
  StoreParam param = P_TEXT(key);

  if (!run(store, "SELECT meta_value FROM aapi_meta WHERE meta_key = ?",
           &param, 1, &rows, NULL, error))
    return NULL;
  return rows->len ? g_strdup(col(first_row(rows), 0)) : NULL;
}

/* Adds one and reads the result in one transaction, so that concurrent
 * increments each see their own value. */
gint64 store_meta_increment(AapiStore *store, const char *key,
                            GError **error)
{
  const StoreBackend *b = store->backend;
  g_autoptr(GPtrArray) rows = NULL;
  StoreParam param = P_TEXT(key);
  StoreConn *conn = store_conn_get(store, error);

  if (conn == NULL)
    return -1;
  bool ok = b->exec(conn, b->sql->begin_write, error) &&
            conn_query(store, conn, b->sql->meta_increment, &param, 1,
                       NULL, NULL, error) &&
            conn_query(store, conn,
                       "SELECT meta_value FROM aapi_meta WHERE meta_key = ?",
                       &param, 1, &rows, NULL, error) &&
            b->exec(conn, "COMMIT", error);
  if (!ok && !b->exec(conn, "ROLLBACK", NULL)) {
    conn_discard(store, conn);
    return -1;
  }
  store_conn_put(store, conn);
  return ok ? col_int(first_row(rows), 0, -1) : -1;
}
