/*
 * testutil.h: helpers for the C tests (GLib's GTest).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

/* Absolute path of a file under the shared test data folder
 * (AAPI_SHARED_DIR, else ../shared beside the repository), or NULL after
 * g_test_skip() with a message naming what is missing. */
char *test_shared_path(const char *relative);

/* A fresh temporary folder, removed at exit unless AAPI_KEEP_TMP=1. */
char *test_make_tmpdir(const char *prefix);

/* mysql://... URL for a database of that name on the test MariaDB server,
 * or NULL after g_test_skip() when no server was started. */
char *test_mysql_url(const char *database);

/* Removes a folder tree. */
void test_remove_tree(const char *path);

/* Copies the file source to dir/name (for tests that change or delete
 * it: shared data is read-only) and returns the copy's path. */
char *test_copy_file(const char *source, const char *dir, const char *name);
