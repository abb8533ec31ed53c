/*
 * store-test-util.h: opening test stores on both backends, and raw SQL
 * for setting up databases as other programs left them.
 */
#pragma once

#include "store/store.h"

#include <glib.h>
#include <stdbool.h>

typedef enum {
  TEST_SQLITE,
  TEST_MYSQL,
} TestBackend;

/* A URL for a fresh database of that backend (a new SQLite file in a
 * temporary folder, a new MariaDB database name), or NULL after
 * g_test_skip() when there is no MariaDB test server. */
char *test_store_url(TestBackend backend, const char *tag);

/* Opens url, failing the test on error. */
AapiStore *test_store_open(const char *url);

/* Runs SQL statements on url's database directly, creating the database
 * first on MariaDB; for laying out what the old service left. */
void test_store_raw_sql(const char *url, const char *const *statements);

/* Adds the test cases of one function for both backends as
 * /store/<backend>/<name>. */
void test_store_add(const char *name, void (*func)(gconstpointer));

/* An ASAP document with one square annotation per entry of xs (each
 * size x size at (xs[i], y)), named <prefix>_<i>. */
char *test_asap_squares(const char *prefix, const double *xs, guint n,
                        double y, double size);
