/*
 * http-pending.h: functions of other parts that the server calls but that
 * may not be linked into this build yet.
 *
 * They are weak references: a missing one is NULL at run time and the
 * server reports it instead of crashing.  NEEDSWORK: this goes once every
 * part is built; the server needs all of them.
 */
#pragma once

#include "annot/version.h"
#include "infer/infer.h"
#include "slide/slide.h"
#include "store/store.h"
#include "train/train.h"

#include <stdbool.h>

#pragma weak infer_engine_new
#pragma weak infer_engine_free
#pragma weak infer_predict_region
#pragma weak infer_result_free
#pragma weak train_scheduler_start
#pragma weak train_scheduler_stop

#define HTTP_BUILT(function) ((void *) (function) != NULL)

/* Names the first function the server core needs that is not built, or
 * NULL when every one is. */
const char *http_pending_missing(void);
