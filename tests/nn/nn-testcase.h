/*
 * nn-testcase.h: one U-Net parity case (a folder with model.ckpt,
 * input.bin, eval_logits.bin and manifest.json), shared by the nn tests.
 */
#pragma once

#include "nn/nn.h"

#include <glib.h>

/* Imports the case's checkpoint, runs eval on its input and compares the
 * logits within tolerance; fails the test on any mismatch. */
void nn_testcase_check(const char *dir, double tolerance);

/* Reads a raw float32 file of exactly n_floats values. */
float *nn_testcase_read_floats(const char *path, gsize n_floats);

/* The shape of a tensor of the case's manifest.json, as 4 dims. */
void nn_testcase_shape(const char *dir, const char *tensor, int dims[4]);
