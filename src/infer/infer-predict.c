/*
 * infer-predict.c: the prediction of a level-0 region, every class.
 *
 * The region is read once at level 0 and resized per class exactly as the
 * old pipeline did (reading a coarser pyramid level would save little,
 * since three of four classes share one scale, and its pixels are not the
 * bicubic samples the models saw).  Masks are combined and traced on the
 * whole region, so objects crossing internal tile seams come out whole.
 */
#include "infer/infer-engine-private.h"
#include "infer/infer-private.h"

#include "common/aapi-error.h"
#include "common/log.h"

#include <jansson.h>
#include <string.h>

/* The old service's opening: 7 x 7 square, 3 iterations. */
#define INFER_OPEN_SIZE 7
#define INFER_OPEN_ITERATIONS 3

void infer_result_free(InferResult *result)
{
  if (result == NULL)
    return;
  annot_set_free(result->annotations);
  g_ptr_array_unref(result->class_names);
  g_ptr_array_unref(result->model_versions);
  g_free(result);
}

/* The region as one prediction needs it. */
typedef struct {
  gint64 x, y;
  int w, h;
  guint8 *rgb;           /* level 0, w x h */
  GPtrArray *resized;    /* Resized*, one per distinct scale */
  GCancellable *cancellable;   /* may be NULL */
} Region;

typedef struct {
  double factor;
  int w, h;
  guint8 *rgb;
} Resized;

static void resized_free(gpointer data)
{
  Resized *r = data;

  g_free(r->rgb);
  g_free(r);
}

/* The region at a class's scale, made once per distinct factor. */
static const Resized *region_resized(Region *region, double factor)
{
  Resized *r;

  for (guint i = 0; i < region->resized->len; i++) {
    r = region->resized->pdata[i];
    if (r->factor == factor)
      return r;
  }
  r = g_new0(Resized, 1);
  r->factor = factor;
  r->w = infer_scaled_size(region->w, factor);
  r->h = infer_scaled_size(region->h, factor);
  r->rgb = g_malloc((gsize) r->w * r->h * 3);
  infer_resize_cubic_rgb(region->rgb, region->w, region->h, r->rgb, r->w,
                         r->h);
  g_ptr_array_add(region->resized, r);
  return r;
}

/* Checks the request before any work: size first, then the slide. */
static bool check_region(InferEngine *engine, const SlideInfo *info,
                         gint64 x, gint64 y, gint64 w, gint64 h,
                         GError **error)
{
  if (x < 0 || y < 0 || x > info->width - w || y > info->height - h) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "region %" G_GINT64_FORMAT ",%" G_GINT64_FORMAT
                " %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                " is not inside the slide (%" G_GINT64_FORMAT "x%"
                G_GINT64_FORMAT ")", x, y, w, h, info->width,
                info->height);
    return false;
  }
  return true;
}

static bool check_size(InferEngine *engine, gint64 w, gint64 h,
                       GError **error)
{
  guint64 limit = engine->config->max_predict_pixels;

  if (w <= 0 || h <= 0 || w > G_MAXINT / 4 || h > G_MAXINT / 4) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "region width and height must be 1 to %d", G_MAXINT / 4);
    return false;
  }
  if (limit > 0 && (guint64) w * (guint64) h > limit) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_TOO_LARGE,
                "region of %" G_GUINT64_FORMAT " pixels is over the limit "
                "of %" G_GUINT64_FORMAT " (AAPI_MAX_PREDICT_PIXELS)",
                (guint64) w * (guint64) h, limit);
    return false;
  }
  return true;
}

/* The darkest (most tissue) of five probe windows of edge s. */
static void probe_origin(const Resized *small, int s, int *px, int *py)
{
  double best = G_MAXDOUBLE;

  for (int k = 0; k < 5; k++) {
    int x = k == 0 ? (small->w - s) / 2 : (k % 2) * (small->w - s);
    int y = k == 0 ? (small->h - s) / 2 : (k / 3) * (small->h - s);
    double sum = 0;

    for (int r = 0; r < s; r += 4)
      for (int c = 0; c < s * 3; c += 5)
        sum += small->rgb[((gsize) (y + r) * small->w + x) * 3 + c];
    if (sum < best) {
      best = sum;
      *px = x;
      *py = y;
    }
  }
}

/* The probe window of the region at this class's scale, s x s RGB. */
static guint8 *probe_window(const Resized *small, int s)
{
  guint8 *rgb = g_malloc((gsize) s * s * 3);
  int x = 0, y = 0;

  probe_origin(small, s, &x, &y);
  for (int r = 0; r < s; r++)
    memcpy(rgb + (gsize) r * s * 3,
           small->rgb + ((gsize) (y + r) * small->w + x) * 3, (gsize) s * 3);
  return rgb;
}

/* IoU of the two heatmaps' masks at 0.5; -1 when both are empty. */
static double heat_iou(const float *a, const float *b, gsize n)
{
  gsize both = 0, either = 0;

  for (gsize i = 0; i < n; i++) {
    both += a[i] > 0.5f && b[i] > 0.5f;
    either += a[i] > 0.5f || b[i] > 0.5f;
  }
  return either < n / 200 ? -1 : (double) both / either;
}

/*
 * Whether big tiles reproduce the old tiling for this model: both ways
 * on a probe window of the region, compared.  A network that leans on
 * tile edges (the old per-pixel max over 16 tiles then differs from one
 * big tile) gets the exact tiling; the choice is kept with the model and
 * in its verdict file.  With too little foreground to tell, this request
 * runs exact and the next one probes again.
 */
static int choose_tiling(NnRunner *runner, const InferTiling *tiling,
                         const Resized *small, InferModelEntry *entry,
                         const char *class_name, GError **error)
{
  int s = MIN(MIN(small->w, small->h), INFER_PROBE_SIZE);
  gsize n = (gsize) s * s;
  g_autofree guint8 *rgb = probe_window(small, s);
  g_autofree float *fast = g_new(float, n);
  g_autofree float *exact = g_new(float, n);
  InferTiling t = *tiling;

  t.exact = false;
  if (!infer_class_heatmap(runner, &t, rgb, s, s, fast, error))
    return -1;
  t.exact = true;
  if (!infer_class_heatmap(runner, &t, rgb, s, s, exact, error))
    return -1;
  double iou = heat_iou(fast, exact, n);
  if (iou < 0)
    return INFER_TILING_EXACT;
  int mode = iou >= INFER_PROBE_IOU ? INFER_TILING_FAST
                                    : INFER_TILING_EXACT;

  g_atomic_int_set(&entry->tiling, mode);
  g_message("class %s, model %s: big tiles agree with the old tiling at "
            "IoU %.4f: %s tiling", class_name, entry->version, iou,
            mode == INFER_TILING_FAST ? "fast" : "exact");
  infer_entry_note_tiling(entry, mode, iou);
  return mode;
}

/* Puts the runner in int8 with the entry's calibration. */
static bool runner_int8(NnRunner *runner, InferModelEntry *entry,
                        GError **error)
{
  GArray *ranges = g_atomic_pointer_get(&entry->ranges);

  if (nn_runner_get_precision(runner) == NN_PRECISION_INT8)
    return true;
  return nn_runner_set_ranges(runner, ranges, error) &&
         nn_runner_set_precision(runner, NN_PRECISION_INT8, error);
}

/* Keeps the calibration and auto's verdict with the model and in its
 * verdict file; the first calibration wins when workers race. */
static void keep_calibration(NnRunner *runner, InferModelEntry *entry,
                             double iou)
{
  GArray *ranges = nn_runner_get_ranges(runner);
  int arith = iou >= INFER_PROBE_IOU ? INFER_ARITH_INT8 : INFER_ARITH_F32;

  if (!g_atomic_pointer_compare_and_exchange(&entry->ranges, NULL, ranges))
    g_array_unref(ranges);
  /* Too little foreground decides nothing: no verdict to keep. */
  if (iou < 0)
    return;
  g_atomic_int_set(&entry->arith, arith);
  infer_entry_note_arith(entry, arith, iou,
                         g_atomic_pointer_get(&entry->ranges));
}

/*
 * Calibrates the model on the probe window (a float32 run records the
 * ranges the int8 convolutions are scaled by) and compares the int8 run's
 * mask with the float32 one there.  The ranges and auto's verdict are
 * kept with the model, also when int8 is forced; with too little
 * foreground to tell, auto stays float32 for this request and the next
 * one probes again.
 */
static bool calibrate(InferEngine *engine, NnRunner *runner,
                      const InferTiling *tiling, const Resized *small,
                      InferModelEntry *entry, const char *class_name,
                      GError **error)
{
  int s = MIN(MIN(small->w, small->h), INFER_PROBE_SIZE);
  gsize n = (gsize) s * s;
  g_autofree guint8 *rgb = probe_window(small, s);
  g_autofree float *ref = g_new(float, n);
  g_autofree float *quant = g_new(float, n);
  bool forced = engine->precision_mode == INFER_PRECISION_INT8;

  if (!nn_runner_set_precision(runner, NN_PRECISION_CALIBRATE, error) ||
      !infer_class_heatmap(runner, tiling, rgb, s, s, ref, error) ||
      !nn_runner_set_precision(runner, NN_PRECISION_INT8, error) ||
      !infer_class_heatmap(runner, tiling, rgb, s, s, quant, error))
    return false;
  double iou = heat_iou(ref, quant, n);
  if (iou < 0 && !forced)
    return nn_runner_set_precision(runner, NN_PRECISION_F32, error);

  keep_calibration(runner, entry, iou);
  bool int8 = forced || iou >= INFER_PROBE_IOU;
  g_message("class %s, model %s: int8 agrees with float32 at IoU %.4f: "
            "%s%s", class_name, entry->version, iou,
            int8 ? "int8" : "float32", forced ? " (forced)" : "");
  return true;
}

/* Sets the runner's arithmetic for this model, calibrating it first
 * when nobody has yet: forced int8 needs only the ranges, auto needs
 * the verdict too. */
static bool choose_arith(InferEngine *engine, NnRunner *runner,
                         const InferTiling *tiling, const Resized *small,
                         InferModelEntry *entry, const char *class_name,
                         GError **error)
{
  InferPrecisionMode mode = engine->precision_mode;
  bool known = mode == INFER_PRECISION_INT8
                   ? g_atomic_pointer_get(&entry->ranges) != NULL
                   : g_atomic_int_get(&entry->arith) != INFER_ARITH_UNKNOWN;

  if (mode == INFER_PRECISION_F32)
    return nn_runner_set_precision(runner, NN_PRECISION_F32, error);
  if (mode == INFER_PRECISION_BF16)
    return nn_runner_set_precision(runner, NN_PRECISION_BF16, error);
  if (!known &&
      !calibrate(engine, runner, tiling, small, entry, class_name, error))
    return false;
  if (mode == INFER_PRECISION_INT8)
    return runner_int8(runner, entry, error);
  switch (g_atomic_int_get(&entry->arith)) {
  case INFER_ARITH_INT8:
    return runner_int8(runner, entry, error);
  case INFER_ARITH_F32:
    return nn_runner_set_precision(runner, NN_PRECISION_F32, error);
  default:
    return true;    /* undecided: calibrate() left float32 */
  }
}

/* The binary, opened mask of one class at region size. */
static guint8 *class_mask(InferEngine *engine, NnRunner *runner,
                          InferModelEntry *entry, const AapiClassInfo *info,
                          Region *region, GError **error)
{
  const Resized *small = region_resized(region, info->resize);
  InferTiling tiling = {
    info->patch_size, info->stride_size, info->mirror_pad_size,
    info->threshold, true, INFER_MARGIN, INFER_MAX_TILE,
    region->cancellable,
  };
  int mode = g_atomic_int_get(&entry->tiling);
  gsize n_small = (gsize) small->w * small->h;
  g_autofree float *heat = g_new(float, n_small);
  g_autofree guint8 *binary = g_malloc(n_small);
  guint8 *mask;

  if (engine->tiling_mode == INFER_MODE_EXACT)
    mode = INFER_TILING_EXACT;
  else if (engine->tiling_mode == INFER_MODE_FAST)
    mode = INFER_TILING_FAST;
  else if (mode == INFER_TILING_UNKNOWN)
    mode = choose_tiling(runner, &tiling, small, entry, info->name, error);
  if (mode < 0)
    return NULL;
  tiling.exact = mode != INFER_TILING_FAST;
  if (!choose_arith(engine, runner, &tiling, small, entry, info->name,
                    error))
    return NULL;
  if (!infer_class_heatmap(runner, &tiling, small->rgb, small->w, small->h,
                           heat, error))
    return NULL;

  /* Back to region size, binarised at 0.5, opened.  Nearest resizing
   * copies values, so binarising first gives the same mask from a map
   * 16 to 64 times smaller. */
  for (gsize i = 0; i < n_small; i++)
    binary[i] = heat[i] > 0.5f;
  mask = g_malloc((gsize) region->w * region->h);
  infer_resize_nearest_u8(binary, small->w, small->h, mask, region->w,
                          region->h);
  infer_mask_open(mask, region->w, region->h, INFER_OPEN_SIZE,
                  INFER_OPEN_ITERATIONS);
  return mask;
}

/* Per pixel the first class (label order) whose mask is set, 1-based;
 * 0 is background. */
static guint16 *combine_masks(guint8 **masks, guint n_classes, gsize n)
{
  guint16 *label = g_new0(guint16, n);

  for (guint c = n_classes; c-- > 0;) {
    if (masks[c] == NULL)
      continue;
    for (gsize i = 0; i < n; i++)
      if (masks[c][i])
        label[i] = (guint16) (c + 1);
  }
  return label;
}

/* One class's tracing: its polygons of at least min_size, in level-0
 * pixels, into annotations. */
typedef struct {
  const AapiClassInfo *info;
  const guint16 *label;
  guint16 value;
  const Region *region;
  GPtrArray *annotations;     /* Annotation*, made by the job */
} TraceJob;

static void trace_class(gpointer data, gpointer user_data)
{
  TraceJob *job = data;
  const AapiClassInfo *info = job->info;
  const Region *region = job->region;
  const guint16 *label = job->label;
  guint16 value = job->value;

  gsize n = (gsize) region->w * region->h;
  g_autofree guint8 *mask = g_malloc(n);
  guint number = 0;

  for (gsize i = 0; i < n; i++)
    mask[i] = label[i] == value;
  g_autoptr(GPtrArray) rings = infer_mask_contours(mask, region->w,
                                                   region->h);
  for (guint r = 0; r < rings->len; r++) {
    GArray *ring = rings->pdata[r];

    if (infer_ring_area(ring) < info->min_size)
      continue;
    g_autofree char *name = g_strdup_printf("%s_%03u", info->name,
                                            number++);
    Annotation *a = annotation_new(name, ANNOT_POLYGON, info->name,
                                   info->color);

    for (guint p = 0; p < ring->len; p++) {
      AnnotPoint pt = g_array_index(ring, AnnotPoint, p);

      pt.x += region->x;
      pt.y += region->y;
      g_array_append_val(a->coords, pt);
    }
    g_ptr_array_add(job->annotations, a);
  }
}

static InferResult *result_new(void)
{
  InferResult *result = g_new0(InferResult, 1);

  result->annotations = annot_set_new();
  result->class_names = g_ptr_array_new_with_free_func(g_free);
  result->model_versions = g_ptr_array_new_with_free_func(g_free);
  return result;
}

/* Every class's mask (NULL for classes without a model). */
static bool predict_masks(InferEngine *engine, InferWorker *worker,
                          InferModelEntry **entries, Region *region,
                          guint8 **masks, GError **error)
{
  for (guint c = 0; c < engine->n_classes; c++) {
    const AapiClassInfo *info = engine->config->classes->pdata[c];
    gint64 start = g_get_monotonic_time();

    if (entries[c] == NULL)
      continue;
    if (g_cancellable_set_error_if_cancelled(region->cancellable, error))
      return false;
    NnRunner *runner = infer_worker_runner(worker, c, entries[c], error);
    if (runner == NULL)
      return false;
    masks[c] = class_mask(engine, runner, entries[c], info, region, error);
    if (masks[c] == NULL) {
      aapi_error_prefix(error, "class %s: ", info->name);
      return false;
    }
    aapi_debug(AAPI_DEBUG_PERF, "predict %s: %.3f s", info->name,
               (g_get_monotonic_time() - start) / 1e6);
  }
  /* The tracing of a large region takes a while too: skip it when
   * nobody waits for it. */
  return !g_cancellable_set_error_if_cancelled(region->cancellable, error);
}

/* The classes are traced in parallel (the network is done, its cores
 * idle), their polygons added in label order. */
static InferResult *build_result(InferEngine *engine,
                                 InferModelEntry **entries, guint8 **masks,
                                 const Region *region)
{
  InferResult *result = result_new();
  gsize n = (gsize) region->w * region->h;
  g_autofree guint16 *label = combine_masks(masks, engine->n_classes, n);
  g_autofree TraceJob *jobs = g_new0(TraceJob, engine->n_classes);
  GThreadPool *pool = g_thread_pool_new(
      trace_class, NULL, (gint) MIN(g_get_num_processors(), 8), FALSE,
      NULL);

  for (guint c = 0; c < engine->n_classes; c++) {
    jobs[c] = (TraceJob) { engine->config->classes->pdata[c], label,
                           (guint16) (c + 1), region,
                           g_ptr_array_new() };
    /* A pool that could not start threads traces here. */
    if (entries[c] != NULL &&
        (pool == NULL || !g_thread_pool_push(pool, &jobs[c], NULL)))
      trace_class(&jobs[c], NULL);
  }
  if (pool != NULL)
    g_thread_pool_free(pool, FALSE, TRUE);
  for (guint c = 0; c < engine->n_classes; c++) {
    const AapiClassInfo *info = jobs[c].info;

    g_ptr_array_add(result->class_names, g_strdup(info->name));
    g_ptr_array_add(result->model_versions,
                    entries[c] ? g_strdup(entries[c]->version) : NULL);
    if (entries[c] != NULL)
      g_ptr_array_add(result->annotations->groups,
                      annot_group_new(info->name, "None", info->color));
    g_ptr_array_extend_and_steal(result->annotations->annotations,
                                 jobs[c].annotations);
  }
  return result;
}

/* Reads, predicts and traces with a worker held. */
static InferResult *predict_with(InferEngine *engine, InferWorker *worker,
                                 Slide *slide, Region *region,
                                 GError **error)
{
  InferModelEntry **entries = infer_engine_snapshot(engine);
  g_autofree guint8 **masks = g_new0(guint8 *, engine->n_classes);
  InferResult *result = NULL;
  bool any_model = false;

  for (guint c = 0; c < engine->n_classes; c++)
    any_model = any_model || entries[c] != NULL;
  if (!any_model) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_UNAVAILABLE,
                "no class has a model yet: import one with aapi "
                "import-model or start one with aapi train --bootstrap");
    g_free(entries);
    return NULL;
  }

  region->rgb = g_malloc((gsize) region->w * region->h * 3);
  if (slide_read_region_rgb(slide, region->x, region->y, 0, region->w,
                            region->h, region->rgb, error) &&
      predict_masks(engine, worker, entries, region, masks, error))
    result = build_result(engine, entries, masks, region);

  for (guint c = 0; c < engine->n_classes; c++) {
    g_free(masks[c]);
    infer_model_entry_unref(entries[c]);
  }
  g_free(entries);
  return result;
}

/* A cancel ends the work between classes and between network runs, and
 * the worker goes back as after any error. */
InferResult *infer_predict_slide_cancellable(InferEngine *engine,
                                             Slide *slide, gint64 x,
                                             gint64 y, gint64 width,
                                             gint64 height,
                                             GCancellable *cancellable,
                                             GError **error)
{
  Region region = { x, y, (int) width, (int) height, NULL, NULL,
                    cancellable };
  InferWorker *worker;
  InferResult *result;
  gint64 start = g_get_monotonic_time();

  if (!check_size(engine, width, height, error) ||
      !check_region(engine, slide_get_info(slide), x, y, width, height,
                    error))
    return NULL;
  worker = infer_worker_acquire(engine, error);
  if (worker == NULL)
    return NULL;

  region.resized = g_ptr_array_new_with_free_func(resized_free);
  result = predict_with(engine, worker, slide, &region, error);
  infer_worker_release(engine, worker);
  g_free(region.rgb);
  g_ptr_array_unref(region.resized);
  aapi_debug(AAPI_DEBUG_PERF, "predict %" G_GINT64_FORMAT "x%"
             G_GINT64_FORMAT ": %.3f s%s", width, height,
             (g_get_monotonic_time() - start) / 1e6,
             result == NULL && g_cancellable_is_cancelled(cancellable)
                 ? " (cancelled)" : "");
  return result;
}

InferResult *infer_predict_slide(InferEngine *engine, Slide *slide,
                                 gint64 x, gint64 y, gint64 width,
                                 gint64 height, GError **error)
{
  return infer_predict_slide_cancellable(engine, slide, x, y, width,
                                         height, NULL, error);
}

InferResult *infer_predict_region_cancellable(InferEngine *engine,
                                              const char *slide_id,
                                              gint64 x, gint64 y,
                                              gint64 width, gint64 height,
                                              GCancellable *cancellable,
                                              GError **error)
{
  /* Size first: an oversized request costs no slide lookup. */
  if (!check_size(engine, width, height, error))
    return NULL;
  g_autoptr(Slide) slide = slide_cache_get(engine->slides, slide_id, error);
  if (slide == NULL)
    return NULL;
  return infer_predict_slide_cancellable(engine, slide, x, y, width,
                                         height, cancellable, error);
}

InferResult *infer_predict_region(InferEngine *engine, const char *slide_id,
                                  gint64 x, gint64 y, gint64 width,
                                  gint64 height, GError **error)
{
  return infer_predict_region_cancellable(engine, slide_id, x, y, width,
                                          height, NULL, error);
}

GString *infer_result_to_asap(const InferResult *result)
{
  return annot_write_asap(result->annotations);
}

GString *infer_result_to_geojson(const InferResult *result)
{
  g_autoptr(GString) text = annot_write_geojson(result->annotations);
  json_t *root = json_loadb(text->str, text->len, 0, NULL);
  json_t *models = json_object();
  char *dumped;
  GString *out;

  for (guint c = 0; c < result->class_names->len; c++) {
    const char *version = result->model_versions->pdata[c];

    json_object_set_new(models, result->class_names->pdata[c],
                        version ? json_string(version) : json_null());
  }
  /* The writer's output is ours, so it always parses. */
  if (root == NULL)
    root = json_pack("{s:s, s:[]}", "type", "FeatureCollection",
                     "features");
  json_object_set_new(root, "models", models);
  dumped = json_dumps(root, JSON_COMPACT);
  out = g_string_new(dumped);
  free(dumped);
  json_decref(root);
  return out;
}
