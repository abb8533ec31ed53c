/*
 * infer-verdict.h: a served model's probe verdicts kept on disk, so that
 * a restart or a command-line run does not probe the model again.
 *
 * A model's verdicts live in <data_dir>/model-checks/<Class>/<version>.ini
 * with what they depend on: the model file's size and MD5, the class's
 * tiling settings and the probe's constants.  A file that no longer
 * matches is ignored and rewritten after the next probe.
 */
#pragma once

#include "common/config.h"

#include <glib.h>
#include <stdbool.h>

/* What the probes of one model decided: INFER_TILING_* and INFER_ARITH_*
 * (infer-engine-private.h), UNKNOWN where nothing was decided. */
typedef struct {
  int tiling;
  double tiling_iou;     /* big tiles against the old tiling */
  int arith;
  double arith_iou;      /* int8 against float32 */
  GArray *ranges;        /* float (low, high) pairs, set with arith */
} InferVerdict;

void infer_verdict_clear(InferVerdict *verdict);

/* Where one model's verdicts are kept and what they depend on. */
typedef struct InferVerdictFile InferVerdictFile;

/* NULL (with a debug line) when the model has no file to key it by, as
 * for a model installed straight from memory. */
InferVerdictFile *infer_verdict_file_new(const AapiConfig *config,
                                         const AapiClassInfo *info,
                                         const char *version);
void infer_verdict_file_free(InferVerdictFile *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(InferVerdictFile, infer_verdict_file_free)

/* Fills a zeroed *verdict from the file when it matches the model; false when
 * there is nothing to use: silently for a missing file, with a warning
 * for an unreadable, malformed or stale one. */
bool infer_verdict_load(const InferVerdictFile *file,
                        InferVerdict *verdict);

/* Writes the verdicts atomically; false, with a warning, when it cannot:
 * that costs no more than a probe on the next start. */
bool infer_verdict_save(const InferVerdictFile *file,
                        const InferVerdict *verdict);
