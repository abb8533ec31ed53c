/*
 * nn-cli-private.h: what the nn-eval and nn-train-step commands share:
 * the --shape option, raw little-endian arrays in and out, and the check
 * of an input shape against a model.
 */
#pragma once

#include "nn.h"

/* Parses "N,C,H,W" (four positive integers) into dims. */
bool nn_cli_parse_shape(const char *text, int dims[4], GError **error);

/* Reads the raw array `what` from path; it must be exactly `want` bytes
 * long.  At most want + 1 bytes are read, so a pipe or a device such as
 * /dev/zero fails as soon as it proves too long.  Returns g_free-able
 * data or NULL. */
void *nn_cli_read_exact(const char *what, const char *path, guint64 want,
                        GError **error);

/* Writes `bytes` bytes of data to path, replacing it atomically. */
bool nn_cli_write_raw(const char *path, const void *data, gsize bytes,
                      GError **error);

/* Checks that the model takes dims' channels and gives the output size
 * (oh, ow) for dims' height and width. */
bool nn_cli_check_input(const NnModel *model, const int dims[4], int *oh,
                        int *ow, GError **error);
