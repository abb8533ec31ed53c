/*
 * train-scheduler.c: the background worker of `aapi serve`.
 *
 * One thread waits for the next due time (shortly after start, then every
 * interval) or for a trigger from POST /api/v1/train, and runs a cycle.
 * Serving goes on meanwhile: the cycle only reads slides and the store and
 * swaps a promoted model into the engine at the end.
 */
#include "train-private.h"

#include "common/aapi-error.h"

struct TrainScheduler {
  TrainContext context;
  TrainProgress progress;
  GThread *thread;
  GMutex lock;
  GCond wake;
  bool quit;
  bool triggered;
  bool busy;
  TrainOptions pending;
  char *pending_class;
  gint cancel;
};

static gint64 seconds_from_now(guint seconds)
{
  return g_get_monotonic_time() + (gint64) seconds * G_USEC_PER_SEC;
}

static void run_once(TrainScheduler *scheduler, TrainOptions options)
{
  g_autoptr(GError) error = NULL;
  bool ran = false;

  if (!train_cycle(&scheduler->context, &options, &ran, &error)) {
    if (g_error_matches(error, AAPI_ERROR, AAPI_ERROR_CONFLICT))
      g_message("train: %s", error->message);
    else
      g_warning("train: cycle failed: %s", error->message);
  } else if (ran) {
    g_message("train: cycle finished");
  }
}

/* Waits until due or triggered; false when asked to quit.  Called and
 * returns with the lock held. */
static bool wait_for_work(TrainScheduler *scheduler, gint64 *due,
                          TrainOptions *options, char **only_class)
{
  const AapiConfig *config = scheduler->context.config;

  while (!scheduler->quit && !scheduler->triggered) {
    if (*due == 0) {
      g_cond_wait(&scheduler->wake, &scheduler->lock);
      continue;
    }
    if (!g_cond_wait_until(&scheduler->wake, &scheduler->lock, *due))
      break;
  }
  if (scheduler->quit)
    return false;

  *options = (TrainOptions) { 0 };
  if (scheduler->triggered) {
    *options = scheduler->pending;
    *only_class = g_steal_pointer(&scheduler->pending_class);
    options->only_class = *only_class;
    scheduler->triggered = false;
  }
  *due = config->train_interval_s ? seconds_from_now(
                                        config->train_interval_s)
                                  : 0;
  scheduler->busy = true;
  return true;
}

static gpointer scheduler_main(gpointer data)
{
  TrainScheduler *scheduler = data;
  const AapiConfig *config = scheduler->context.config;
  /* An interval of 0 turns scheduled cycles off; triggers still run. */
  gint64 due = config->train_interval_s
                   ? seconds_from_now(config->train_first_delay_s)
                   : 0;

  g_mutex_lock(&scheduler->lock);
  for (;;) {
    TrainOptions options;
    g_autofree char *only_class = NULL;
    if (!wait_for_work(scheduler, &due, &options, &only_class))
      break;
    g_mutex_unlock(&scheduler->lock);
    run_once(scheduler, options);
    g_mutex_lock(&scheduler->lock);
    scheduler->busy = false;
  }
  g_mutex_unlock(&scheduler->lock);
  return NULL;
}

TrainScheduler *train_scheduler_start(const AapiConfig *config,
                                      AapiStore *store, SlideCache *slides,
                                      InferEngine *engine, GError **error)
{
  TrainScheduler *scheduler = g_new0(TrainScheduler, 1);

  g_mutex_init(&scheduler->lock);
  g_cond_init(&scheduler->wake);
  g_mutex_init(&scheduler->progress.lock);
  scheduler->context = (TrainContext) {
    .config = config,
    .store = store,
    .slides = slides,
    .engine = engine,
    .progress = &scheduler->progress,
    .cancel = &scheduler->cancel,
  };
  scheduler->thread = g_thread_try_new("aapi-train", scheduler_main,
                                       scheduler, error);
  if (scheduler->thread == NULL) {
    g_mutex_clear(&scheduler->lock);
    g_cond_clear(&scheduler->wake);
    g_mutex_clear(&scheduler->progress.lock);
    g_free(scheduler);
    return NULL;
  }
  return scheduler;
}

void train_scheduler_stop(TrainScheduler *scheduler)
{
  if (scheduler == NULL)
    return;

  g_mutex_lock(&scheduler->lock);
  scheduler->quit = true;
  g_atomic_int_set(&scheduler->cancel, 1);
  g_cond_signal(&scheduler->wake);
  g_mutex_unlock(&scheduler->lock);
  g_thread_join(scheduler->thread);

  g_free(scheduler->pending_class);
  g_free(scheduler->progress.class_name);
  g_free(scheduler->progress.phase);
  g_mutex_clear(&scheduler->progress.lock);
  g_mutex_clear(&scheduler->lock);
  g_cond_clear(&scheduler->wake);
  g_free(scheduler);
}

bool train_scheduler_trigger(TrainScheduler *scheduler,
                             const TrainOptions *options, GError **error)
{
  bool ok = true;

  g_mutex_lock(&scheduler->lock);
  if (scheduler->busy || scheduler->triggered) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_CONFLICT,
                "a training cycle is already running");
    ok = false;
  } else {
    scheduler->pending = *options;
    scheduler->pending_class = g_strdup(options->only_class);
    scheduler->pending.only_class = NULL;
    scheduler->triggered = true;
    g_cond_signal(&scheduler->wake);
  }
  g_mutex_unlock(&scheduler->lock);
  return ok;
}

char *train_scheduler_progress_json(TrainScheduler *scheduler)
{
  return train_progress_to_json(&scheduler->progress);
}
