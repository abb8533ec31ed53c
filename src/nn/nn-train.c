/*
 * nn-train.c: NnTrainer, one training step of a U-Net on oneDNN.
 *
 * The trainer lays the network out as a list of layers over activations
 * (built once per input shape and reused across steps), runs them forward
 * in training mode, computes the mean softmax cross entropy, runs them
 * backward in reverse order and applies Adam to the model's tensors.
 *
 * Activations use one layout end to end: blocked nChw8c (AVX2's native
 * blocking) when every channel count of the net is a multiple of 8, else
 * plain nchw.  Reorders happen only at the edges: the input (read as
 * nchw by the first convolution), the logits, and the weights, which stay
 * plain in the model and are reordered to the primitives' layouts once per
 * step.
 */
#include "nn-train-private.h"

#include "common/aapi-error.h"
#include "common/log.h"

#include <math.h>
#include <string.h>

struct NnTrainer {
  NnModel *model;
  NnAdamParams adam;
  int64_t step;
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  dnnl_format_tag_t tag;
  GPtrArray *params;          /* NnParam*, trainable tensors */
  GHashTable *param_by_name;  /* borrowed name -> NnParam* */

  /* The graph for one input shape. */
  int n, h, w;
  GPtrArray *acts;            /* NnAct* */
  GPtrArray *layers;          /* NnLayer* in forward order */
  GPtrArray *diff_buffers;    /* DiffBuffer*, shared by the gradients */
  NnAct *input, *logits;
  dnnl_memory_t logits_plain, dlogits_plain;
  dnnl_primitive_t logits_to_plain, dlogits_to_act;
};

static void param_free(gpointer data)
{
  NnParam *param = data;

  g_aligned_free(param->grad);
  g_aligned_free(param->m);
  g_aligned_free(param->v);
  g_free(param);
}

static void act_free(gpointer data)
{
  NnAct *act = data;

  if (act->mem != NULL)
    dnnl_memory_destroy(act->mem);
  if (act->diff != NULL)
    dnnl_memory_destroy(act->diff);
  g_free(act);
}

static void layer_free(gpointer data)
{
  nn_layer_clear(data);
  g_free(data);
}

static bool is_running_stat(const char *name)
{
  return g_str_has_suffix(name, ".running_mean") ||
         g_str_has_suffix(name, ".running_var");
}

/* Every float tensor but the running statistics is trained. */
static void collect_params(NnTrainer *t)
{
  const GPtrArray *tensors = nn_model_get_tensors(t->model);

  for (guint i = 0; i < tensors->len; i++) {
    NnTensor *tensor = g_ptr_array_index(tensors, i);
    NnParam *param;
    gsize n = (gsize) MAX(tensor->n_elements, 1);

    if (tensor->dtype != NN_DTYPE_F32 || is_running_stat(tensor->name))
      continue;
    param = g_new0(NnParam, 1);
    param->tensor = tensor;
    param->grad = g_aligned_alloc0(n, sizeof(float), 64);
    param->m = g_aligned_alloc0(n, sizeof(float), 64);
    param->v = g_aligned_alloc0(n, sizeof(float), 64);
    g_ptr_array_add(t->params, param);
    g_hash_table_insert(t->param_by_name, tensor->name, param);
  }
}

static bool adam_valid(const NnAdamParams *adam, GError **error)
{
  if (isfinite(adam->lr) && adam->lr > 0 && adam->beta1 >= 0 &&
      adam->beta1 < 1 && adam->beta2 >= 0 && adam->beta2 < 1 &&
      adam->eps >= 0 && adam->weight_decay >= 0 &&
      isfinite(adam->eps) && isfinite(adam->weight_decay))
    return true;
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
              "invalid Adam parameters (lr %g, betas %g %g, eps %g)",
              adam->lr, adam->beta1, adam->beta2, adam->eps);
  return false;
}

/* Blocked layout only when no activation would need channel padding. */
static dnnl_format_tag_t choose_layout(const NnHparams *hp)
{
  if (hp->wf >= 3 && g_strcmp0(g_getenv("AAPI_NN_LAYOUT"), "nchw") != 0)
    return dnnl_nChw8c;
  return dnnl_nchw;
}

NnTrainer *nn_trainer_new(NnModel *model, const NnAdamParams *adam,
                          GError **error)
{
  NnTrainer *t;

  if (!adam_valid(adam, error))
    return NULL;
  t = g_new0(NnTrainer, 1);
  t->model = nn_model_ref(model);
  t->adam = *adam;
  t->tag = choose_layout(nn_model_get_hparams(model));
  t->params = g_ptr_array_new_with_free_func(param_free);
  t->param_by_name = g_hash_table_new(g_str_hash, g_str_equal);
  collect_params(t);
  if (!nn_train_check(dnnl_engine_create(&t->engine, dnnl_cpu, 0),
                      "creating the CPU engine", error) ||
      !nn_train_check(dnnl_stream_create(&t->stream, t->engine,
                                         dnnl_stream_default_flags),
                      "creating a stream", error)) {
    nn_trainer_free(t);
    return NULL;
  }
  return t;
}

static void graph_clear(NnTrainer *t)
{
  g_clear_pointer(&t->layers, g_ptr_array_unref);
  g_clear_pointer(&t->acts, g_ptr_array_unref);
  g_clear_pointer(&t->diff_buffers, g_ptr_array_unref);
  if (t->logits_to_plain != NULL)
    dnnl_primitive_destroy(t->logits_to_plain);
  if (t->dlogits_to_act != NULL)
    dnnl_primitive_destroy(t->dlogits_to_act);
  if (t->logits_plain != NULL)
    dnnl_memory_destroy(t->logits_plain);
  if (t->dlogits_plain != NULL)
    dnnl_memory_destroy(t->dlogits_plain);
  t->logits_to_plain = t->dlogits_to_act = NULL;
  t->logits_plain = t->dlogits_plain = NULL;
  t->input = t->logits = NULL;
  t->n = t->h = t->w = 0;
}

void nn_trainer_free(NnTrainer *t)
{
  if (t == NULL)
    return;
  graph_clear(t);
  if (t->stream != NULL)
    dnnl_stream_destroy(t->stream);
  if (t->engine != NULL)
    dnnl_engine_destroy(t->engine);
  g_hash_table_unref(t->param_by_name);
  g_ptr_array_unref(t->params);
  nn_model_unref(t->model);
  g_free(t);
}

/* --- Graph construction ------------------------------------------------ */

static NnAct *act_new(NnTrainer *t, int c, int h, int w,
                      dnnl_format_tag_t tag, bool with_diff, GError **error)
{
  NnAct *act = g_new0(NnAct, 1);
  dnnl_dims_t dims = { t->n, c, h, w };

  act->tag = tag;
  act->has_diff = with_diff;
  act->diff_from = G_MAXINT;
  act->diff_to = -2;
  act->n = t->n;
  act->c = c;
  act->h = h;
  act->w = w;
  g_ptr_array_add(t->acts, act);
  dnnl_memory_desc_init_by_tag(&act->md, 4, dims, dnnl_f32, tag);
  if (!nn_train_alloc(&act->mem, &act->md, t->engine, error))
    return NULL;
  return act;
}

static NnLayer *layer_add(NnTrainer *t, NnLayerKind kind, NnAct *src)
{
  NnLayer *layer = g_new0(NnLayer, 1);

  layer->kind = kind;
  layer->src = src;
  layer->need_diff_src = src->has_diff;
  g_ptr_array_add(t->layers, layer);
  return layer;
}

static NnParam *param_get(NnTrainer *t, const char *prefix,
                          const char *what, int64_t n_elements,
                          GError **error)
{
  g_autofree char *name = g_strdup_printf("%s.%s", prefix, what);
  NnParam *param = g_hash_table_lookup(t->param_by_name, name);

  if (param == NULL) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "model has no float tensor %s", name);
    return NULL;
  }
  if (param->tensor->n_elements != n_elements) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "tensor %s has %" G_GINT64_FORMAT " elements, the net "
                "needs %" G_GINT64_FORMAT, name, param->tensor->n_elements,
                n_elements);
    return NULL;
  }
  return param;
}

static NnTensor *stat_get(NnTrainer *t, const char *prefix, const char *what,
                          NnDtype dtype, int64_t n_elements, GError **error)
{
  g_autofree char *name = g_strdup_printf("%s.%s", prefix, what);
  NnTensor *tensor = nn_model_get_tensor(t->model, name);

  if (tensor == NULL || tensor->dtype != dtype ||
      tensor->n_elements != n_elements) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "model has no usable tensor %s", name);
    return NULL;
  }
  return tensor;
}

/* A convolution (k x k, stride 1, or the 2x2 stride-2 transposed one)
 * from src to a new activation of oc channels. */
static NnAct *graph_conv(NnTrainer *t, NnLayerKind kind, const char *prefix,
                         NnAct *src, int oc, int k, bool relu,
                         GError **error)
{
  const NnHparams *hp = nn_model_get_hparams(t->model);
  int pad = k == 3 && hp->padding ? 1 : 0;
  int h = kind == NN_LAYER_DECONV ? src->h * 2 : src->h - k + 1 + 2 * pad;
  int w = kind == NN_LAYER_DECONV ? src->w * 2 : src->w - k + 1 + 2 * pad;
  NnLayer *l = layer_add(t, kind, src);

  l->relu = relu;
  if (h < 1 || w < 1) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "input too small: %s would be %d x %d", prefix, h, w);
    return NULL;
  }
  l->weight = param_get(t, prefix, "weight",
                        (int64_t) oc * src->c * k * k, error);
  l->bias = l->weight ? param_get(t, prefix, "bias", oc, error) : NULL;
  if (l->bias == NULL)
    return NULL;
  l->dst = act_new(t, oc, h, w, t->tag, true, error);
  return l->dst;
}

static NnAct *graph_bn(NnTrainer *t, const char *prefix, NnAct *src,
                       GError **error)
{
  NnLayer *l = layer_add(t, NN_LAYER_BN, src);
  int c = src->c;

  l->weight = param_get(t, prefix, "weight", c, error);
  l->bias = l->weight ? param_get(t, prefix, "bias", c, error) : NULL;
  l->running_mean = l->bias ? stat_get(t, prefix, "running_mean",
                                       NN_DTYPE_F32, c, error) : NULL;
  l->running_var = l->running_mean ? stat_get(t, prefix, "running_var",
                                              NN_DTYPE_F32, c, error) : NULL;
  if (l->running_var == NULL)
    return NULL;
  /* Older checkpoints lack the counter; it is not needed to train. */
  l->batches_tracked = stat_get(t, prefix, "num_batches_tracked",
                                NN_DTYPE_I64, 1, NULL);
  l->dst = act_new(t, c, src->h, src->w, t->tag, true, error);
  return l->dst;
}

/* conv, ReLU, [BN], conv, ReLU, [BN]: PyTorch numbers the modules of the
 * block 0..5 with batch norm, 0..3 without. */
static NnAct *graph_block(NnTrainer *t, const char *prefix, NnAct *x,
                          int oc, GError **error)
{
  bool bn = nn_model_get_hparams(t->model)->batch_norm;
  int index = 0;

  for (int i = 0; i < 2 && x != NULL; i++) {
    g_autofree char *conv = g_strdup_printf("%s.%d", prefix, index);
    g_autofree char *norm = g_strdup_printf("%s.%d", prefix, index + 2);

    x = graph_conv(t, NN_LAYER_CONV, conv, x, oc, 3, true, error);
    if (x != NULL && bn)
      x = graph_bn(t, norm, x, error);
    index += bn ? 3 : 2;
  }
  return x;
}

static NnAct *graph_simple(NnTrainer *t, NnLayerKind kind, NnAct *src,
                           int h, int w, bool accumulate, GError **error)
{
  NnLayer *l = layer_add(t, kind, src);

  l->accumulate = accumulate;
  l->dst = act_new(t, src->c, h, w, t->tag, true, error);
  return l->dst;
}

static NnAct *graph_pool(NnTrainer *t, NnAct *src, GError **error)
{
  if (src->h % 2 != 0 || src->w % 2 != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "input size does not fit the net: a %d x %d map cannot be "
                "pooled 2x2 evenly", src->h, src->w);
    return NULL;
  }
  /* The source also feeds the skip connection, whose gradient is
   * computed first: pooling's gradient is added to it. */
  return graph_simple(t, NN_LAYER_POOL, src, src->h / 2, src->w / 2, true,
                      error);
}

static NnAct *graph_up(NnTrainer *t, int index, NnAct *x, int oc,
                       GError **error)
{
  const NnHparams *hp = nn_model_get_hparams(t->model);
  g_autofree char *prefix = g_strdup_printf("up_path.%d.up", index);
  g_autofree char *conv = g_strdup_printf("up_path.%d.up.1", index);

  if (hp->up_mode == NN_UP_UPCONV)
    return graph_conv(t, NN_LAYER_DECONV, prefix, x, oc, 2, false, error);
  x = graph_simple(t, NN_LAYER_RESAMPLE, x, x->h * 2, x->w * 2, false,
                   error);
  return x ? graph_conv(t, NN_LAYER_CONV, conv, x, oc, 1, false, error)
           : NULL;
}

static NnAct *graph_concat(NnTrainer *t, NnAct *up, NnAct *bridge,
                           GError **error)
{
  NnLayer *l;

  if (bridge->h < up->h || bridge->w < up->w) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "input size does not fit the net: skip connection %d x %d "
                "smaller than %d x %d", bridge->h, bridge->w, up->h, up->w);
    return NULL;
  }
  l = layer_add(t, NN_LAYER_CONCAT, up);
  l->src2 = bridge;
  l->dst = act_new(t, up->c + bridge->c, up->h, up->w, t->tag, true,
                   error);
  return l->dst;
}

/* The U-Net: down path with pooling, up path with skip connections, last
 * 1x1 convolution; see DESIGN.md. */
static NnAct *graph_unet(NnTrainer *t, NnAct *x, GError **error)
{
  const NnHparams *hp = nn_model_get_hparams(t->model);
  NnAct *bridges[32];

  for (int i = 0; i < hp->depth && x != NULL; i++) {
    g_autofree char *prefix = g_strdup_printf("down_path.%d.block", i);

    x = graph_block(t, prefix, x, 1 << (hp->wf + i), error);
    if (x != NULL && i < hp->depth - 1) {
      bridges[i] = x;
      x = graph_pool(t, x, error);
    }
  }
  for (int j = 0; j < hp->depth - 1 && x != NULL; j++) {
    int level = hp->depth - 2 - j;
    g_autofree char *prefix = g_strdup_printf("up_path.%d.conv_block.block",
                                              j);

    x = graph_up(t, j, x, 1 << (hp->wf + level), error);
    x = x ? graph_concat(t, x, bridges[level], error) : NULL;
    x = x ? graph_block(t, prefix, x, 1 << (hp->wf + level), error) : NULL;
  }
  return x ? graph_conv(t, NN_LAYER_CONV, "last", x, hp->n_classes, 1,
                        false, error)
           : NULL;
}

/* --- Gradient buffers ---------------------------------------------------- */

typedef struct {
  void *data;
  gsize size;
  int busy_to;    /* last backward step of its current gradient */
} DiffBuffer;

static void diff_buffer_free(gpointer data)
{
  DiffBuffer *buffer = data;

  g_aligned_free(buffer->data);
  g_free(buffer);
}

static void span_add(NnAct *act, int step)
{
  if (act == NULL || !act->has_diff)
    return;
  act->diff_from = MIN(act->diff_from, step);
  act->diff_to = MAX(act->diff_to, step);
}

/* When each gradient lives: from its consumers' backward (they write it)
 * to its producer's (it reads it); the logits' is written before. */
static void diff_spans(NnTrainer *t)
{
  guint n = t->layers->len;

  for (guint i = 0; i < n; i++) {
    NnLayer *l = g_ptr_array_index(t->layers, i);
    int step = (int) (n - 1 - i);

    span_add(l->src, step);
    span_add(l->src2, step);
    span_add(l->dst, step);
  }
  span_add(t->logits, -1);
}

static int by_span_start(gconstpointer a, gconstpointer b)
{
  const NnAct *x = *(NnAct *const *) a, *y = *(NnAct *const *) b;

  return (x->diff_from > y->diff_from) - (x->diff_from < y->diff_from);
}

/* The smallest free buffer that fits, or a new one. */
static DiffBuffer *diff_buffer_for(NnTrainer *t, const NnAct *act,
                                   gsize size)
{
  DiffBuffer *best = NULL;

  for (guint i = 0; i < t->diff_buffers->len; i++) {
    DiffBuffer *b = g_ptr_array_index(t->diff_buffers, i);

    if (b->busy_to < act->diff_from && b->size >= size &&
        (best == NULL || b->size < best->size))
      best = b;
  }
  if (best == NULL) {
    best = g_new0(DiffBuffer, 1);
    best->size = size;
    best->data = g_aligned_alloc(size, 1, 64);
    g_ptr_array_add(t->diff_buffers, best);
  }
  best->busy_to = act->diff_to;
  return best;
}

/* Gradients whose lifetimes do not overlap share memory: backward needs
 * about half the buffers it would with one per activation. */
static bool diff_assign(NnTrainer *t, GError **error)
{
  g_autoptr(GPtrArray) order = g_ptr_array_new();

  diff_spans(t);
  t->diff_buffers = g_ptr_array_new_with_free_func(diff_buffer_free);
  for (guint i = 0; i < t->acts->len; i++) {
    NnAct *act = g_ptr_array_index(t->acts, i);

    if (act->has_diff && act->diff_to >= -1)
      g_ptr_array_add(order, act);
  }
  g_ptr_array_sort(order, by_span_start);
  for (guint i = 0; i < order->len; i++) {
    NnAct *act = g_ptr_array_index(order, i);
    DiffBuffer *b = diff_buffer_for(t, act,
                                    dnnl_memory_desc_get_size(&act->md));

    if (!nn_train_check(dnnl_memory_create(&act->diff, &act->md, t->engine,
                                           b->data),
                        "creating a gradient", error))
      return false;
  }
  return true;
}

static bool build_layers(NnTrainer *t, GError **error)
{
  gsize values = 0, grads = 0;

  if (!diff_assign(t, error))
    return false;
  for (guint i = 0; i < t->acts->len; i++)
    values += dnnl_memory_desc_get_size(
        &((NnAct *) g_ptr_array_index(t->acts, i))->md);
  for (guint i = 0; i < t->diff_buffers->len; i++)
    grads += ((DiffBuffer *) g_ptr_array_index(t->diff_buffers, i))->size;
  aapi_debug(AAPI_DEBUG_NN, "nn-train: activations %.0f MiB, gradients "
             "%.0f MiB in %u buffers", values / 1048576.0,
             grads / 1048576.0, t->diff_buffers->len);
  for (guint i = 0; i < t->layers->len; i++)
    if (!nn_layer_build(g_ptr_array_index(t->layers, i), t->engine, error))
      return false;
  return true;
}

/* Plain nchw copies of the logits and their gradient for the loss. */
static bool graph_logits(NnTrainer *t, GError **error)
{
  NnAct *lg = t->logits;
  dnnl_dims_t dims = { lg->n, lg->c, lg->h, lg->w };
  dnnl_memory_desc_t md;

  dnnl_memory_desc_init_by_tag(&md, 4, dims, dnnl_f32, dnnl_nchw);
  return nn_train_alloc(&t->logits_plain, &md, t->engine, error) &&
         nn_train_alloc(&t->dlogits_plain, &md, t->engine, error) &&
         nn_train_reorder_new(&t->logits_to_plain, &lg->md, &md,
                              NN_REORDER_COPY, t->engine, error) &&
         nn_train_reorder_new(&t->dlogits_to_act, &md, &lg->md,
                              NN_REORDER_COPY, t->engine, error);
}

static bool graph_check_hparams(const NnHparams *hp, GError **error)
{
  if (hp->depth >= 1 && hp->depth <= 16 && hp->wf >= 0 &&
      hp->wf + hp->depth <= 20 && hp->in_channels >= 1 &&
      hp->n_classes >= 1)
    return true;
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
              "unsupported U-Net: depth %d, wf %d", hp->depth, hp->wf);
  return false;
}

static bool graph_build(NnTrainer *t, int n, int h, int w, GError **error)
{
  const NnHparams *hp = nn_model_get_hparams(t->model);

  graph_clear(t);
  if (!graph_check_hparams(hp, error))
    return false;
  t->n = n;
  t->h = h;
  t->w = w;
  t->acts = g_ptr_array_new_with_free_func(act_free);
  t->layers = g_ptr_array_new_with_free_func(layer_free);
  /* The input is the caller's nchw buffer; nothing needs its gradient. */
  t->input = act_new(t, hp->in_channels, h, w, dnnl_nchw, false, error);
  if (t->input != NULL)
    t->logits = graph_unet(t, t->input, error);
  if (t->logits == NULL || !build_layers(t, error) ||
      !graph_logits(t, error)) {
    graph_clear(t);
    return false;
  }
  aapi_debug(AAPI_DEBUG_NN, "nn-train: graph for %d x %d x %d x %d: "
             "%u layers, output %d x %d", n, hp->in_channels, h, w,
             t->layers->len, t->logits->h, t->logits->w);
  return true;
}

/* --- The step ------------------------------------------------------------ */

static bool check_targets(const int64_t *target, int64_t count,
                          int n_classes, GError **error)
{
  for (int64_t i = 0; i < count; i++) {
    if (target[i] < 0 || target[i] >= n_classes) {
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                  "target %" G_GINT64_FORMAT " at %" G_GINT64_FORMAT
                  " is not a class index (0..%d)", target[i], i,
                  n_classes - 1);
      return false;
    }
  }
  return true;
}

/* Mean softmax cross entropy over every pixel of the batch, and its
 * gradient (softmax - one-hot) / pixels.  Written by hand: it is a few
 * lines over a tensor of n_classes channels. */
static float cross_entropy(const float *logits, const int64_t *target,
                           float *grad, int n, int c, int64_t hw)
{
  double total = 0;
  float scale = 1.0f / (float) (n * hw);

  for (int b = 0; b < n; b++) {
    const float *x = logits + (int64_t) b * c * hw;
    float *g = grad + (int64_t) b * c * hw;

    for (int64_t p = 0; p < hw; p++) {
      int64_t label = target[b * hw + p];
      float top = x[p];
      double sum = 0;

      for (int k = 1; k < c; k++)
        top = MAX(top, x[k * hw + p]);
      for (int k = 0; k < c; k++)
        sum += exp((double) x[k * hw + p] - top);
      total += top + log(sum) - x[label * hw + p];
      for (int k = 0; k < c; k++) {
        float prob = (float) (exp((double) x[k * hw + p] - top) / sum);
        g[k * hw + p] = (prob - (k == label ? 1.0f : 0.0f)) * scale;
      }
    }
  }
  return (float) (total / ((double) n * hw));
}

static bool run_layers(NnTrainer *t, bool backward, GError **error)
{
  guint n = t->layers->len;

  for (guint i = 0; i < n; i++) {
    NnLayer *l = g_ptr_array_index(t->layers, backward ? n - 1 - i : i);

    if (!(backward ? nn_layer_backward(l, t->stream, error)
                   : nn_layer_forward(l, t->stream, error)))
      return false;
  }
  return true;
}

static bool each_layer(NnTrainer *t,
                       bool (*fn)(NnLayer *, dnnl_stream_t, GError **),
                       GError **error)
{
  for (guint i = 0; i < t->layers->len; i++)
    if (!fn(g_ptr_array_index(t->layers, i), t->stream, error))
      return false;
  return true;
}

static void *handle_of(dnnl_memory_t mem)
{
  void *data = NULL;

  dnnl_memory_get_data_handle(mem, &data);
  return data;
}

/* Forward, loss, backward; leaves the gradients in the parameters. */
static bool forward_backward(NnTrainer *t, const float *input,
                             const int64_t *target, float *loss,
                             GError **error)
{
  NnAct *lg = t->logits;
  gint64 start = g_get_monotonic_time(), forward, backward;

  if (!nn_train_check(dnnl_memory_set_data_handle(t->input->mem,
                                                  (void *) input),
                      "setting the input", error) ||
      !each_layer(t, nn_layer_load_weights, error) ||
      !run_layers(t, false, error) ||
      !nn_train_reorder_run(t->logits_to_plain, lg->mem, t->logits_plain,
                            t->stream, error))
    return false;
  dnnl_stream_wait(t->stream);
  forward = g_get_monotonic_time();
  *loss = cross_entropy(handle_of(t->logits_plain), target,
                        handle_of(t->dlogits_plain), lg->n, lg->c,
                        (int64_t) lg->h * lg->w);
  backward = g_get_monotonic_time();
  /* Checked before backward, which updates the running statistics. */
  if (!isfinite(*loss)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NN,
                "loss is not finite; the model is left unchanged");
    return false;
  }
  if (!nn_train_reorder_run(t->dlogits_to_act, t->dlogits_plain, lg->diff,
                            t->stream, error) ||
      !run_layers(t, true, error) ||
      !each_layer(t, nn_layer_finish, error))
    return false;
  dnnl_stream_wait(t->stream);
  aapi_debug(AAPI_DEBUG_PERF, "nn-train: forward %.1f ms, loss %.1f ms, "
             "backward %.1f ms", (forward - start) / 1e3,
             (backward - forward) / 1e3,
             (g_get_monotonic_time() - backward) / 1e3);
  return true;
}

static bool check_shape(NnTrainer *t, int n, int h, int w, GError **error)
{
  if (n < 1 || h < 1 || w < 1 || n > 4096 || h > 16384 || w > 16384 ||
      (double) n * h * w > 1e9) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "invalid batch shape %d x %d x %d", n, h, w);
    return false;
  }
  if (n == t->n && h == t->h && w == t->w)
    return true;
  return graph_build(t, n, h, w, error);
}

bool nn_trainer_step(NnTrainer *t, const float *input,
                     const int64_t *target, int n, int h, int w,
                     float *loss_out, GError **error)
{
  NnAct *lg;
  float loss = 0;

  if (!check_shape(t, n, h, w, error))
    return false;
  lg = t->logits;
  if (!check_targets(target, (int64_t) n * lg->h * lg->w, lg->c, error) ||
      !forward_backward(t, input, target, &loss, error))
    return false;

  t->step++;
  gint64 start = g_get_monotonic_time();
  for (guint i = 0; i < t->params->len; i++)
    nn_adam_update(g_ptr_array_index(t->params, i), &t->adam, t->step);
  aapi_debug(AAPI_DEBUG_PERF, "nn-train: Adam %.1f ms",
             (g_get_monotonic_time() - start) / 1e3);
  if (loss_out != NULL)
    *loss_out = loss;
  return true;
}

const float *nn_trainer_get_grad(NnTrainer *t, const char *name)
{
  NnParam *param = g_hash_table_lookup(t->param_by_name, name);

  return param ? param->grad : NULL;
}

const float *nn_trainer_get_logits(NnTrainer *t)
{
  return t->logits_plain ? handle_of(t->logits_plain) : NULL;
}
