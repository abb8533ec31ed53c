/*
 * store-mysql.c: the MariaDB/MySQL backend, the old service's database.
 *
 * Connections speak utf8mb4 in UTC at READ COMMITTED, so that a version
 * read after taking a slide's row lock is the newest committed one.  A
 * connection that the server dropped is opened again and the statement
 * retried, unless it was inside a transaction.
 */
#include "store-private.h"

#include "common/aapi-error.h"

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <string.h>

#define MYSQL_POOL_SIZE 8
#define MYSQL_COLUMN_BUFFER 512

static const StoreTable mysql_tables[] = {
  /* The old service's tables, column for column. */
  { "Slides",
    "CREATE TABLE IF NOT EXISTS Slides ("
    " slide_ID VARCHAR(100) NOT NULL,"
    " slide_name VARCHAR(100),"
    " slide_path VARCHAR(300),"
    " PRIMARY KEY (slide_ID))" },
  { "Annotations",
    "CREATE TABLE IF NOT EXISTS Annotations ("
    " slide_ID VARCHAR(100) NOT NULL,"
    " annotation_path_before VARCHAR(300) NULL,"
    " annotation_path_after VARCHAR(300) NOT NULL,"
    " updated_time DATETIME DEFAULT CURRENT_TIMESTAMP,"
    " region_x INT, region_y INT, region_height INT, region_width INT,"
    " PRIMARY KEY (slide_ID, annotation_path_after),"
    " FOREIGN KEY (slide_ID) REFERENCES Slides (slide_ID))" },
  /* aapi's tables; store.c appends the old tables' character set and
   * collation, so that joins between them compare like with like.  The
   * named lock needs no table here: it is the server's GET_LOCK. */
  { "aapi_schema_version",
    "CREATE TABLE IF NOT EXISTS aapi_schema_version ("
    " version INT NOT NULL PRIMARY KEY,"
    " applied_time DATETIME NOT NULL) ENGINE=InnoDB" },
  { "aapi_version_order",
    "CREATE TABLE IF NOT EXISTS aapi_version_order ("
    " seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " slide_ID VARCHAR(100) NOT NULL,"
    " annotation_path_after VARCHAR(300) NOT NULL,"
    " annotation_count BIGINT NULL,"
    " file_missing TINYINT NOT NULL DEFAULT 0,"
    " UNIQUE KEY version_path (slide_ID, annotation_path_after))"
    " ENGINE=InnoDB" },
  { "aapi_models",
    "CREATE TABLE IF NOT EXISTS aapi_models ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " class_name VARCHAR(100) NOT NULL,"
    " path VARCHAR(1000) NOT NULL,"
    " created_time BIGINT NOT NULL,"
    " f1 DOUBLE NULL,"
    " promoted TINYINT NOT NULL DEFAULT 0) ENGINE=InnoDB" },
  { "aapi_train_runs",
    "CREATE TABLE IF NOT EXISTS aapi_train_runs ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " class_name VARCHAR(100) NULL,"
    " started_time BIGINT NOT NULL, finished_time BIGINT NOT NULL,"
    " n_train BIGINT NOT NULL, n_val BIGINT NOT NULL,"
    " epochs BIGINT NOT NULL,"
    " loss DOUBLE NULL, f1_before DOUBLE NULL, f1_after DOUBLE NULL,"
    " decision VARCHAR(32) NULL, detail TEXT NULL,"
    " model_path VARCHAR(1000) NULL) ENGINE=InnoDB" },
  { "aapi_meta",
    "CREATE TABLE IF NOT EXISTS aapi_meta ("
    " meta_key VARCHAR(191) NOT NULL PRIMARY KEY,"
    " meta_value TEXT NULL) ENGINE=InnoDB" },
  { NULL, NULL }
};

static const StoreDialect mysql_dialect = {
  .tables = mysql_tables,
  .insert_ignore = "INSERT IGNORE",
  .table_exists =
      "SELECT table_name FROM information_schema.tables "
      "WHERE table_schema = DATABASE() AND table_name = ?",
  .slide_upsert =
      "INSERT INTO Slides (slide_ID, slide_name, slide_path) "
      "VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE "
      "slide_name = VALUES(slide_name), slide_path = VALUES(slide_path)",
  .meta_upsert =
      "INSERT INTO aapi_meta (meta_key, meta_value) VALUES (?, ?) "
      "ON DUPLICATE KEY UPDATE meta_value = VALUES(meta_value)",
  .meta_increment =
      "INSERT INTO aapi_meta (meta_key, meta_value) VALUES (?, '1') "
      "ON DUPLICATE KEY UPDATE meta_value = "
      "CAST(CAST(meta_value AS SIGNED) + 1 AS CHAR)",
  .schema_mark =
      "INSERT IGNORE INTO aapi_schema_version (version, applied_time) "
      "VALUES (?, ?)",
  .begin_write = "START TRANSACTION",
  .lock_slide = "SELECT slide_ID FROM Slides WHERE slide_ID = ? FOR UPDATE",
  /* Auto-increment values are handed out before commit: without this,
   * a post on one slide could take seq 10, a post on another seq 11 and
   * commit first, and a reader of "the largest seq" would miss 10. */
  .lock_order = "SELECT meta_value FROM aapi_meta "
                "WHERE meta_key = 'version_order' FOR UPDATE",
};

typedef struct {
  char *host, *user, *password, *database, *socket;
  guint port;
} MysqlData;

struct StoreConn {
  AapiStore *store;
  MYSQL *mysql;
  GHashTable *statements;   /* SQL text -> MYSQL_STMT*, prepared once */
  bool in_transaction;
  unsigned int prepare_errno;  /* of the last failed prepare */
};

static void stmt_close(gpointer stmt)
{
  mysql_stmt_close(stmt);
}

static bool mysql_fail(GError **error, const char *what, MYSQL *mysql)
{
  store_set_error(error, what, mysql ? mysql_error(mysql) : "out of memory");
  return false;
}

/* --- connecting --- */

static bool unreachable(unsigned int code)
{
  return code == CR_CONNECTION_ERROR || code == CR_CONN_HOST_ERROR ||
         code == CR_SERVER_GONE_ERROR || code == CR_SERVER_LOST ||
         code == ER_CONNECTION_KILLED || code == ER_SERVER_SHUTDOWN;
}

/* Opens a session; database NULL connects to none (to create it). */
static MYSQL *session_open(MysqlData *data, const char *database,
                           GError **error)
{
  MYSQL *mysql = mysql_init(NULL);
  unsigned int timeout = 10;

  if (mysql == NULL) {
    mysql_fail(error, "connecting", NULL);
    return NULL;
  }
  mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  if (!mysql_real_connect(mysql, data->host, data->user, data->password,
                          database, data->port, data->socket, 0)) {
    g_autofree char *what = g_strdup_printf(
        "connecting to %s:%u", data->host ? data->host : "localhost",
        data->port);
    unsigned int code = mysql_errno(mysql);
    /* The caller tells a missing database from other failures; a server
     * that cannot be reached is a 503 to clients, not a fault of ours. */
    g_set_error(error, AAPI_ERROR,
                code == ER_BAD_DB_ERROR ? AAPI_ERROR_NOT_FOUND
                : unreachable(code) ? AAPI_ERROR_UNAVAILABLE
                : AAPI_ERROR_DB,
                "database: %s: %s", what, mysql_error(mysql));
    mysql_close(mysql);
    return NULL;
  }
  return mysql;
}

/* The session settings every connection needs. */
static bool session_setup(MYSQL *mysql, GError **error)
{
  static const char *const settings[] = {
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "SET SESSION time_zone = '+00:00'",
    "SET SESSION innodb_lock_wait_timeout = 300",
    /* Refuse rather than truncate, whatever the server's default. */
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
  };

  for (guint i = 0; i < G_N_ELEMENTS(settings); i++)
    if (mysql_query(mysql, settings[i]) != 0)
      return mysql_fail(error, settings[i], mysql);
  return true;
}

static bool conn_reopen(StoreConn *conn, GError **error)
{
  MysqlData *data = conn->store->backend_data;

  g_hash_table_remove_all(conn->statements);
  if (conn->mysql)
    mysql_close(conn->mysql);
  conn->mysql = session_open(data, data->database, error);
  conn->in_transaction = false;
  return conn->mysql && session_setup(conn->mysql, error);
}

/* A connection whose reopening failed has no session: the next use
 * tries again, so that the server recovers once the database is back. */
static bool conn_ready(StoreConn *conn, GError **error)
{
  return conn->mysql != NULL || conn_reopen(conn, error);
}

/* A session lost mid-statement is the database going away: 503. */
static bool lost_fail(GError **error, const char *what, MYSQL *mysql)
{
  mysql_fail(error, what, mysql);
  if (error && *error)
    (*error)->code = AAPI_ERROR_UNAVAILABLE;
  return false;
}

static void mysql_disconnect(StoreConn *conn)
{
  g_hash_table_unref(conn->statements);
  if (conn->mysql)
    mysql_close(conn->mysql);
  g_free(conn);
}

static StoreConn *mysql_connect(AapiStore *store, GError **error)
{
  StoreConn *conn = g_new0(StoreConn, 1);

  conn->store = store;
  conn->statements = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                           stmt_close);
  if (!conn_reopen(conn, error)) {
    mysql_disconnect(conn);
    return NULL;
  }
  return conn;
}

static bool is_lost(unsigned int code)
{
  return code == CR_SERVER_GONE_ERROR || code == CR_SERVER_LOST ||
         code == ER_CONNECTION_KILLED;
}

/* --- statements --- */

static bool mysql_exec(StoreConn *conn, const char *sql, GError **error)
{
  bool retried = false;

  if (!conn_ready(conn, error))
    return false;
  while (mysql_real_query(conn->mysql, sql, strlen(sql)) != 0) {
    bool lost = is_lost(mysql_errno(conn->mysql));

    /* A dropped session is reopened once, outside transactions. */
    if (lost && (retried || conn->in_transaction))
      return lost_fail(error, sql, conn->mysql);
    if (!lost)
      return mysql_fail(error, sql, conn->mysql);
    if (!conn_reopen(conn, error))
      return false;
    retried = true;
  }
  MYSQL_RES *result = mysql_store_result(conn->mysql);
  if (result)
    mysql_free_result(result);

  if (g_str_has_prefix(sql, "START TRANSACTION"))
    conn->in_transaction = true;
  else if (strcmp(sql, "COMMIT") == 0 || strcmp(sql, "ROLLBACK") == 0)
    conn->in_transaction = false;
  return true;
}

static MYSQL_STMT *statement_for(StoreConn *conn, const char *sql,
                                 GError **error)
{
  MYSQL_STMT *stmt = g_hash_table_lookup(conn->statements, sql);

  if (stmt)
    return stmt;
  conn->prepare_errno = 0;
  if (!conn_ready(conn, error))
    return NULL;
  stmt = mysql_stmt_init(conn->mysql);
  if (stmt == NULL) {
    mysql_fail(error, "preparing a statement", conn->mysql);
    return NULL;
  }
  if (mysql_stmt_prepare(stmt, sql, strlen(sql)) != 0) {
    store_set_error(error, "preparing a statement", mysql_stmt_error(stmt));
    conn->prepare_errno = mysql_stmt_errno(stmt);
    mysql_stmt_close(stmt);
    return NULL;
  }
  g_hash_table_insert(conn->statements, g_strdup(sql), stmt);
  return stmt;
}

/* Parameters, copied so that the binds can point at them. */
typedef struct {
  MYSQL_BIND bind[32];
  unsigned long length[32];
  long long ints[32];
  double doubles[32];
} ParamBinds;

static void bind_one(ParamBinds *b, guint i, const StoreParam *param)
{
  MYSQL_BIND *bind = &b->bind[i];

  switch (param->type) {
  case STORE_INT:
    b->ints[i] = param->i;
    bind->buffer_type = MYSQL_TYPE_LONGLONG;
    bind->buffer = &b->ints[i];
    break;
  case STORE_DOUBLE:
    b->doubles[i] = param->d;
    bind->buffer_type = MYSQL_TYPE_DOUBLE;
    bind->buffer = &b->doubles[i];
    break;
  case STORE_TEXT:
    b->length[i] = strlen(param->s);
    bind->buffer_type = MYSQL_TYPE_STRING;
    bind->buffer = (char *) param->s;
    bind->buffer_length = b->length[i];
    bind->length = &b->length[i];
    break;
  case STORE_NULL:
  default:
    bind->buffer_type = MYSQL_TYPE_NULL;
    break;
  }
}

static bool bind_params(MYSQL_STMT *stmt, ParamBinds *b,
                        const StoreParam *params, guint n, GError **error)
{
  if (n > G_N_ELEMENTS(b->bind) || mysql_stmt_param_count(stmt) != n) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INTERNAL,
                "statement takes %lu parameters, got %u",
                mysql_stmt_param_count(stmt), n);
    return false;
  }
  memset(b, 0, sizeof *b);
  for (guint i = 0; i < n; i++)
    bind_one(b, i, &params[i]);
  if (n > 0 && mysql_stmt_bind_param(stmt, b->bind) != 0) {
    store_set_error(error, "binding parameters", mysql_stmt_error(stmt));
    return false;
  }
  return true;
}

/* Result columns, read as text into buffers that grow when a value is
 * longer than they are. */
typedef struct {
  guint n;
  MYSQL_BIND *bind;
  char (*buffer)[MYSQL_COLUMN_BUFFER];
  unsigned long *length;
  my_bool *is_null;
} ResultBinds;

static void result_binds_clear(ResultBinds *r)
{
  g_free(r->bind);
  g_free(r->buffer);
  g_free(r->length);
  g_free(r->is_null);
}

static void result_binds_init(ResultBinds *r, guint n)
{
  r->n = n;
  r->bind = g_new0(MYSQL_BIND, n);
  r->buffer = g_malloc0(sizeof *r->buffer * n);
  r->length = g_new0(unsigned long, n);
  r->is_null = g_new0(my_bool, n);
  for (guint i = 0; i < n; i++) {
    r->bind[i].buffer_type = MYSQL_TYPE_STRING;
    r->bind[i].buffer = r->buffer[i];
    r->bind[i].buffer_length = MYSQL_COLUMN_BUFFER;
    r->bind[i].length = &r->length[i];
    r->bind[i].is_null = &r->is_null[i];
  }
}

static char *column_text(MYSQL_STMT *stmt, ResultBinds *r, guint i)
{
  if (r->is_null[i])
    return NULL;
  if (r->length[i] < MYSQL_COLUMN_BUFFER)
    return g_strndup(r->buffer[i], r->length[i]);

  /* Longer than the buffer: fetch the whole value. */
  char *text = g_malloc0(r->length[i] + 1);
  MYSQL_BIND bind = { 0 };
  bind.buffer_type = MYSQL_TYPE_STRING;
  bind.buffer = text;
  bind.buffer_length = r->length[i] + 1;
  mysql_stmt_fetch_column(stmt, &bind, i, 0);
  return text;
}

static bool fetch_rows(MYSQL_STMT *stmt, guint n_columns, GPtrArray *rows,
                       GError **error)
{
  ResultBinds r;
  int rc;

  result_binds_init(&r, n_columns);
  if (mysql_stmt_bind_result(stmt, r.bind) != 0) {
    store_set_error(error, "binding results", mysql_stmt_error(stmt));
    result_binds_clear(&r);
    return false;
  }
  while ((rc = mysql_stmt_fetch(stmt)) == 0 || rc == MYSQL_DATA_TRUNCATED) {
    GPtrArray *row = g_ptr_array_new_full(n_columns, g_free);
    for (guint i = 0; i < n_columns; i++)
      g_ptr_array_add(row, column_text(stmt, &r, i));
    g_ptr_array_add(rows, row);
  }
  result_binds_clear(&r);
  if (rc != MYSQL_NO_DATA) {
    store_set_error(error, "fetching rows", mysql_stmt_error(stmt));
    return false;
  }
  return true;
}

/* Runs a statement once; *lost tells whether the session dropped. */
static bool query_once(StoreConn *conn, const char *sql,
                       const StoreParam *params, guint n_params,
                       GPtrArray *rows, gint64 *insert_id, bool *lost,
                       GError **error)
{
  ParamBinds binds;
  MYSQL_STMT *stmt = statement_for(conn, sql, error);

  *lost = false;
  if (stmt == NULL) {
    *lost = is_lost(conn->prepare_errno);
    return false;
  }
  if (!bind_params(stmt, &binds, params, n_params, error))
    return false;
  if (mysql_stmt_execute(stmt) != 0) {
    *lost = is_lost(mysql_stmt_errno(stmt));
    store_set_error(error, "running a statement", mysql_stmt_error(stmt));
    /* A lock wait that timed out, or a deadlock: worth a retry later. */
    unsigned int code = mysql_stmt_errno(stmt);
    if (error && *error &&
        (code == ER_LOCK_WAIT_TIMEOUT || code == ER_LOCK_DEADLOCK))
      (*error)->code = AAPI_ERROR_BUSY;
    return false;
  }

  MYSQL_RES *meta = mysql_stmt_result_metadata(stmt);
  bool ok = true;
  if (meta) {
    ok = fetch_rows(stmt, mysql_num_fields(meta), rows, error);
    mysql_free_result(meta);
  }
  mysql_stmt_free_result(stmt);
  if (insert_id)
    *insert_id = (gint64) mysql_stmt_insert_id(stmt);
  return ok;
}

static bool mysql_query_rows(StoreConn *conn, const char *sql,
                             const StoreParam *params, guint n_params,
                             GPtrArray **rows, gint64 *insert_id,
                             GError **error)
{
  g_autoptr(GPtrArray) result = g_ptr_array_new_with_free_func(
      (GDestroyNotify) g_ptr_array_unref);
  g_autoptr(GError) local = NULL;
  bool lost;

  if (!query_once(conn, sql, params, n_params, result, insert_id, &lost,
                  &local)) {
    /* A dropped session is reopened and the statement run again, unless
     * a transaction was open (its work is gone with the session). */
    if (!lost || conn->in_transaction) {
      if (lost)
        local->code = AAPI_ERROR_UNAVAILABLE;
      g_propagate_error(error, g_steal_pointer(&local));
      return false;
    }
    g_clear_error(&local);
    g_ptr_array_set_size(result, 0);
    if (!conn_reopen(conn, error) ||
        !query_once(conn, sql, params, n_params, result, insert_id, &lost,
                    error))
      return false;
  }
  if (rows)
    *rows = g_steal_pointer(&result);
  return true;
}

/* --- opening --- */

static bool parse_url(MysqlData *data, const char *rest, GError **error)
{
  g_autofree char *url = g_strconcat("mysql://", rest, NULL);
  g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_HAS_PASSWORD, NULL);
  const char *path = uri ? g_uri_get_path(uri) : NULL;

  if (uri == NULL || path == NULL || path[0] != '/' || path[1] == '\0' ||
      strchr(path + 1, '/')) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "database URL must read mysql://user:pass@host:port/db");
    return false;
  }
  data->host = g_strdup(g_uri_get_host(uri));
  data->user = g_strdup(g_uri_get_user(uri));
  data->password = g_strdup(g_uri_get_password(uri));
  data->database = g_strdup(path + 1);
  data->port = g_uri_get_port(uri) > 0 ? (guint) g_uri_get_port(uri) : 3306;

  /* ?socket=PATH reaches a server on a Unix socket. */
  const char *query = g_uri_get_query(uri);
  g_autoptr(GHashTable) params = query ? g_uri_parse_params(
      query, -1, "&", G_URI_PARAMS_NONE, NULL) : NULL;
  if (params && g_hash_table_lookup(params, "socket"))
    data->socket = g_strdup(g_hash_table_lookup(params, "socket"));
  return true;
}

/* The database name goes into SQL text (CREATE DATABASE takes no
 * parameters), so only plain names are accepted. */
static bool database_name_ok(const char *name, GError **error)
{
  for (const char *c = name; *c; c++) {
    if (!g_ascii_isalnum(*c) && *c != '_' && *c != '$' && *c != '-') {
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                  "database name %s: only letters, digits, _ $ -", name);
      return false;
    }
  }
  if (strlen(name) > 64) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "database name longer than 64 characters");
    return false;
  }
  return true;
}

static bool create_database(MysqlData *data, GError **error)
{
  MYSQL *mysql = session_open(data, NULL, error);

  if (mysql == NULL)
    return false;
  g_autofree char *sql = g_strdup_printf(
      "CREATE DATABASE IF NOT EXISTS `%s` "
      "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci", data->database);
  bool ok = mysql_query(mysql, sql) == 0 ||
            mysql_fail(error, "creating the database", mysql);
  mysql_close(mysql);
  if (ok)
    g_message("created MariaDB database %s", data->database);
  return ok;
}

static void mysql_data_free(MysqlData *data)
{
  g_free(data->host);
  g_free(data->user);
  g_free(data->password);
  g_free(data->database);
  g_free(data->socket);
  g_free(data);
}

static gpointer library_init(gpointer unused)
{
  mysql_library_init(0, NULL, NULL);
  return NULL;
}

static bool mysql_open(AapiStore *store, const char *rest, GError **error)
{
  static GOnce once = G_ONCE_INIT;
  g_autoptr(GError) local = NULL;
  MysqlData *data = g_new0(MysqlData, 1);

  g_once(&once, library_init, NULL);
  store->backend_data = data;
  store->max_conns = MYSQL_POOL_SIZE;
  if (!parse_url(data, rest, error) ||
      !database_name_ok(data->database, error))
    return false;

  /* Try the named database; create it when the server lacks it. */
  MYSQL *mysql = session_open(data, data->database, &local);
  if (mysql) {
    mysql_close(mysql);
    return true;
  }
  if (!g_error_matches(local, AAPI_ERROR, AAPI_ERROR_NOT_FOUND)) {
    g_propagate_error(error, g_steal_pointer(&local));
    return false;
  }
  return create_database(data, error);
}

static void mysql_close_store(AapiStore *store)
{
  if (store->backend_data)
    mysql_data_free(store->backend_data);
  store->backend_data = NULL;
}

/* --- aapi's tables beside the old ones --- */

static bool is_charset_name(const char *name)
{
  if (name == NULL || *name == '\0')
    return false;
  for (const char *c = name; *c; c++)
    if (!g_ascii_isalnum(*c) && *c != '_')
      return false;
  return true;
}

/* The character set and collation of the old Annotations.slide_ID, which
 * aapi's tables take too: joins between columns of two collations of one
 * character set fail ("illegal mix of collations"). */
static char *mysql_table_options(StoreConn *conn, GError **error)
{
  g_autoptr(GPtrArray) rows = NULL;

  if (!mysql_query_rows(conn,
                        "SELECT CHARACTER_SET_NAME, COLLATION_NAME "
                        "FROM information_schema.COLUMNS "
                        "WHERE TABLE_SCHEMA = DATABASE() "
                        "AND TABLE_NAME = 'Annotations' "
                        "AND COLUMN_NAME = 'slide_ID'",
                        NULL, 0, &rows, NULL, error))
    return NULL;
  GPtrArray *row = rows->len ? rows->pdata[0] : NULL;
  if (row == NULL || !is_charset_name(row->pdata[0]) ||
      !is_charset_name(row->pdata[1]))
    return g_strdup("");
  /* The names come from the server and are checked above. */
  return g_strdup_printf(" DEFAULT CHARSET=%s COLLATE=%s",
                         (char *) row->pdata[0], (char *) row->pdata[1]);
}

/* --- the named lock: GET_LOCK on a connection of its own --- */

/* Lock names are server-wide and at most 64 characters: the database and
 * the name, hashed. */
static char *server_lock_name(AapiStore *store, const char *name)
{
  MysqlData *data = store->backend_data;
  g_autofree char *full = g_strdup_printf("%s\n%s", data->database, name);
  g_autofree char *hash = g_compute_checksum_for_string(G_CHECKSUM_SHA1,
                                                        full, -1);

  return g_strdup_printf("aapi-%s", hash);
}

static StoreLock *mysql_lock_try(AapiStore *store, const char *name,
                                 GError **error)
{
  g_autofree char *server_name = server_lock_name(store, name);
  g_autoptr(GPtrArray) rows = NULL;
  StoreParam param = P_TEXT(server_name);
  StoreConn *conn = mysql_connect(store, error);

  if (conn == NULL)
    return NULL;
  if (!mysql_query_rows(conn, "SELECT GET_LOCK(?, 0)", &param, 1, &rows,
                        NULL, error)) {
    mysql_disconnect(conn);
    return NULL;
  }

  /* 1: ours; 0: another session holds it. */
  GPtrArray *row = rows->len ? rows->pdata[0] : NULL;
  if (row == NULL || g_strcmp0(row->pdata[0], "1") != 0) {
    mysql_disconnect(conn);
    return NULL;
  }
  StoreLock *lock = g_new0(StoreLock, 1);
  lock->store = store;
  lock->name = g_strdup(name);
  lock->data = conn;
  return lock;
}

/* Closing the session releases the lock too; the explicit release just
 * says so sooner to a server that keeps the session around. */
static void mysql_lock_release(StoreLock *lock)
{
  StoreConn *conn = lock->data;
  g_autofree char *server_name = server_lock_name(lock->store, lock->name);
  StoreParam param = P_TEXT(server_name);

  mysql_query_rows(conn, "SELECT RELEASE_LOCK(?)", &param, 1, NULL, NULL,
                   NULL);
  mysql_disconnect(conn);
}

const StoreBackend store_mysql_backend = {
  .name = "mysql",
  .sql = &mysql_dialect,
  .open = mysql_open,
  .close = mysql_close_store,
  .connect = mysql_connect,
  .disconnect = mysql_disconnect,
  .exec = mysql_exec,
  .query = mysql_query_rows,
  .table_options = mysql_table_options,
  .lock_try = mysql_lock_try,
  .lock_release = mysql_lock_release,
};
