/*
 * version.h: annotation versions of a slide, kept forever.
 *
 * A post merges the posted annotations onto the true newest version (the
 * slide write lock of the store serialises posts across threads and
 * processes), writes the new version file atomically (temporary file,
 * fsync, rename, fsync of the folder) under a unique name, then records its
 * row.  A crash between the two leaves a file without a row, which
 * version_reconcile removes at start; a row whose file is missing is
 * reported and dropped from the order so that "newest" always has a file.
 */
#pragma once

#include "annot/annot.h"
#include "common/config.h"
#include "store/store.h"

#include <glib.h>
#include <stdbool.h>

typedef struct {
  StoreVersion *version;  /* the new row */
  gint64 n_annotations;   /* in the new version */
} VersionPostResult;

void version_post_result_clear(VersionPostResult *result);

/* Posts a body (ASAP XML or GeoJSON, sniffed) for a slide; box NULL means
 * the whole-slide box.  Unknown slide: AAPI_ERROR_NOT_FOUND; unusable body:
 * AAPI_ERROR_UNPROCESSABLE / INVALID, and nothing is stored. */
bool version_post(const AapiConfig *config, AapiStore *store,
                  const char *slide_id, const char *body, gsize length,
                  const AnnotBox *box, VersionPostResult *result,
                  GError **error);

/* Makes a new version equal to version seq of the slide. */
bool version_revert(const AapiConfig *config, AapiStore *store,
                    const char *slide_id, gint64 seq,
                    VersionPostResult *result, GError **error);

/* The newest version's annotations (NOT_FOUND when the slide has none). */
AnnotSet *version_load_latest(const AapiConfig *config, AapiStore *store,
                              const char *slide_id, StoreVersion **version_out,
                              GError **error);
AnnotSet *version_load(const AapiConfig *config, const StoreVersion *version,
                       GError **error);
/* The newest version file's bytes as stored (for the compatible GET). */
GBytes *version_read_latest_file(const AapiConfig *config, AapiStore *store,
                                 const char *slide_id, GError **error);

/* Records a slide's initial annotation as its first version when it has
 * none (used by registration). */
bool version_add_initial(const AapiConfig *config, AapiStore *store,
                         const char *slide_id, const char *path,
                         GError **error);

/* Removes version files that have no row (left by a crash) and reports
 * rows whose file is missing.  Run at server start. */
bool version_reconcile(const AapiConfig *config, AapiStore *store,
                       guint *n_removed_files, guint *n_bad_rows,
                       GError **error);
