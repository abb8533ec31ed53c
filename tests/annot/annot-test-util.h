/*
 * annot-test-util.h: comparing annotation sets in the annot tests.
 */
#pragma once

#include "annot/annot.h"

/* NULL when a and b hold the same content (names, types, groups, colours,
 * every coordinate exactly, holes, parts, extra attributes, groups with
 * their hierarchy), else a description of the first difference. */
char *annot_test_diff(const AnnotSet *a, const AnnotSet *b);

/* Reads a file of the test cases folder (G_TEST_SRCDIR/cases/...). */
char *annot_test_case_file(const char *case_name, const char *file,
                           gsize *length);

/* The names of the case folders starting with prefix, sorted. */
GPtrArray *annot_test_case_names(const char *prefix);
