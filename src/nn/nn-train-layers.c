/*
 * nn-train-layers.c: one layer of the training graph on oneDNN primitives:
 * forward in training mode, backward, and the reorders between the
 * model's plain weights and the layouts the primitives choose.
 */
#include "nn-train-private.h"

#include "common/aapi-error.h"

#include <string.h>

#define BN_EPSILON 1e-5f
#define BN_MOMENTUM 0.1

bool nn_train_check(dnnl_status_t status, const char *what, GError **error)
{
  if (status == dnnl_success)
    return true;
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_NN,
              "oneDNN: %s failed (status %d)", what, (int) status);
  return false;
}

bool nn_train_alloc(dnnl_memory_t *mem, const dnnl_memory_desc_t *md,
                    dnnl_engine_t engine, GError **error)
{
  return nn_train_check(dnnl_memory_create(mem, md, engine,
                                           DNNL_MEMORY_ALLOCATE),
                        "allocating memory", error);
}

/* A memory over a buffer we own (the model's tensors, gradients). */
static bool wrap(dnnl_memory_t *mem, const dnnl_memory_desc_t *md,
                 dnnl_engine_t engine, void *data, GError **error)
{
  return nn_train_check(dnnl_memory_create(mem, md, engine, data),
                        "wrapping memory", error);
}

static void *handle_of(dnnl_memory_t mem)
{
  void *data = NULL;

  dnnl_memory_get_data_handle(mem, &data);
  return data;
}

bool nn_train_reorder_new(dnnl_primitive_t *prim,
                          const dnnl_memory_desc_t *src,
                          const dnnl_memory_desc_t *dst, NnReorderMode mode,
                          dnnl_engine_t engine, GError **error)
{
  bool accumulate = mode == NN_REORDER_ADD;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t ops = NULL;
  dnnl_primitive_desc_t pd = NULL;
  bool ok;

  *prim = NULL;
  if (mode == NN_REORDER_SHARED && dnnl_memory_desc_equal(src, dst))
    return true;

  /* Accumulation is a reorder with a sum post-op: dst += src. */
  dnnl_primitive_attr_create(&attr);
  if (accumulate) {
    dnnl_post_ops_create(&ops);
    dnnl_post_ops_append_sum(ops, 1.0f);
    dnnl_primitive_attr_set_post_ops(attr, ops);
    dnnl_post_ops_destroy(ops);
  }
  ok = nn_train_check(dnnl_reorder_primitive_desc_create(&pd, src, engine,
                                                         dst, engine, attr),
                      "creating a reorder", error) &&
       nn_train_check(dnnl_primitive_create(prim, pd), "creating a reorder",
                      error);
  dnnl_primitive_desc_destroy(pd);
  dnnl_primitive_attr_destroy(attr);
  return ok;
}

bool nn_train_reorder_run(dnnl_primitive_t prim, dnnl_memory_t src,
                          dnnl_memory_t dst, dnnl_stream_t stream,
                          GError **error)
{
  dnnl_exec_arg_t args[] = {
    { DNNL_ARG_FROM, src },
    { DNNL_ARG_TO, dst },
  };

  if (prim == NULL)
    return true;
  return nn_train_check(dnnl_primitive_execute(prim, stream, 2, args),
                        "running a reorder", error);
}

/* Creates the primitive of an operation descriptor; the primitive
 * descriptor is handed back for queries (caller destroys it). */
static bool make_prim(dnnl_primitive_t *prim, dnnl_primitive_desc_t *pd,
                      const void *op_desc, const_dnnl_primitive_attr_t attr,
                      dnnl_engine_t engine, const_dnnl_primitive_desc_t hint,
                      const char *what, GError **error)
{
  if (!nn_train_check(dnnl_primitive_desc_create(pd, op_desc, attr, engine,
                                                 hint),
                      what, error))
    return false;
  return nn_train_check(dnnl_primitive_create(prim, *pd), what, error);
}

static const dnnl_memory_desc_t *query(const_dnnl_primitive_desc_t pd,
                                       dnnl_query_t what)
{
  return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* A memory for a primitive's own layout, or the plain one when the
 * layouts agree (then no reorder is needed). */
static bool layout_memory(dnnl_memory_t *mem, dnnl_memory_t plain,
                          const dnnl_memory_desc_t *md, dnnl_engine_t engine,
                          GError **error)
{
  const dnnl_memory_desc_t *plain_md = NULL;

  dnnl_memory_get_memory_desc(plain, &plain_md);
  if (dnnl_memory_desc_equal(plain_md, md)) {
    *mem = plain;
    return true;
  }
  return nn_train_alloc(mem, md, engine, error);
}

static bool workspace_for(NnLayer *layer, const_dnnl_primitive_desc_t pd,
                          dnnl_engine_t engine, GError **error)
{
  const dnnl_memory_desc_t *md = query(pd, dnnl_query_workspace_md);

  if (md == NULL || dnnl_memory_desc_get_size(md) == 0)
    return true;
  return nn_train_alloc(&layer->workspace, md, engine, error);
}

/* Convolution geometry: kernel, stride and symmetric padding from the
 * shapes of source and destination. */
typedef struct {
  dnnl_dims_t strides, pad;
  dnnl_memory_desc_t w_any, w_plain, bias;
} ConvGeom;

static void conv_geom(const NnLayer *layer, ConvGeom *g)
{
  bool deconv = layer->kind == NN_LAYER_DECONV;
  int64_t k = layer->weight->tensor->shape[2];
  int64_t stride = deconv ? 2 : 1;
  int64_t pad = deconv ? 0 : (layer->dst->h - layer->src->h + k - 1) / 2;
  dnnl_dims_t wdims = { layer->dst->c, layer->src->c, k, k };
  dnnl_dims_t bdims = { layer->dst->c };

  g->strides[0] = g->strides[1] = stride;
  g->pad[0] = g->pad[1] = pad;
  dnnl_memory_desc_init_by_tag(&g->w_any, 4, wdims, dnnl_f32,
                               dnnl_format_tag_any);
  /* PyTorch stores a transposed convolution's weights in, out, kh, kw. */
  dnnl_memory_desc_init_by_tag(&g->w_plain, 4, wdims, dnnl_f32,
                               deconv ? dnnl_iohw : dnnl_oihw);
  dnnl_memory_desc_init_by_tag(&g->bias, 1, bdims, dnnl_f32, dnnl_a);
}

static dnnl_primitive_attr_t relu_attr(bool relu)
{
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t ops = NULL;

  dnnl_primitive_attr_create(&attr);
  if (relu) {
    dnnl_post_ops_create(&ops);
    dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
    dnnl_primitive_attr_set_post_ops(attr, ops);
    dnnl_post_ops_destroy(ops);
  }
  return attr;
}

static bool conv_forward_build(NnLayer *l, const ConvGeom *g,
                               dnnl_engine_t engine,
                               dnnl_primitive_desc_t *fwd_pd, GError **error)
{
  dnnl_convolution_desc_t desc;
  dnnl_primitive_attr_t attr = relu_attr(l->relu);
  bool ok;

  if (l->kind == NN_LAYER_DECONV)
    dnnl_deconvolution_forward_desc_init(
        &desc, dnnl_forward_training, dnnl_deconvolution_direct, &l->src->md,
        &g->w_any, &g->bias, &l->dst->md, g->strides, g->pad, g->pad);
  else
    dnnl_convolution_forward_desc_init(
        &desc, dnnl_forward_training, dnnl_convolution_direct, &l->src->md,
        &g->w_any, &g->bias, &l->dst->md, g->strides, g->pad, g->pad);
  ok = make_prim(&l->fwd, fwd_pd, &desc, attr, engine, NULL,
                 "creating a convolution", error);
  dnnl_primitive_attr_destroy(attr);
  if (!ok)
    return false;

  /* The model's weights stay plain; the primitive gets its layout. */
  return wrap(&l->w_plain, &g->w_plain, engine, l->weight->tensor->data,
              error) &&
         wrap(&l->b_mem, &g->bias, engine, l->bias->tensor->data, error) &&
         layout_memory(&l->w_fwd, l->w_plain,
                       query(*fwd_pd, dnnl_query_weights_md), engine,
                       error) &&
         nn_train_reorder_new(&l->w_to_fwd, &g->w_plain,
                              query(*fwd_pd, dnnl_query_weights_md),
                              NN_REORDER_SHARED,
                              engine, error);
}

static bool conv_bwd_data_build(NnLayer *l, const ConvGeom *g,
                                dnnl_engine_t engine,
                                const_dnnl_primitive_desc_t fwd_pd,
                                GError **error)
{
  dnnl_convolution_desc_t desc;
  dnnl_primitive_desc_t pd = NULL;
  bool ok;

  if (l->kind == NN_LAYER_DECONV)
    dnnl_deconvolution_backward_data_desc_init(
        &desc, dnnl_deconvolution_direct, &l->src->md, &g->w_any,
        &l->dst->md, g->strides, g->pad, g->pad);
  else
    dnnl_convolution_backward_data_desc_init(
        &desc, dnnl_convolution_direct, &l->src->md, &g->w_any,
        &l->dst->md, g->strides, g->pad, g->pad);
  ok = make_prim(&l->bwd_data, &pd, &desc, NULL, engine, fwd_pd,
                 "creating a convolution backward", error) &&
       layout_memory(&l->w_bwd, l->w_plain,
                     query(pd, dnnl_query_weights_md), engine, error) &&
       nn_train_reorder_new(&l->w_to_bwd, &g->w_plain,
                            query(pd, dnnl_query_weights_md),
                            NN_REORDER_SHARED, engine, error);
  dnnl_primitive_desc_destroy(pd);
  return ok;
}

static bool conv_bwd_weights_build(NnLayer *l, const ConvGeom *g,
                                   dnnl_engine_t engine,
                                   const_dnnl_primitive_desc_t fwd_pd,
                                   GError **error)
{
  dnnl_convolution_desc_t desc;
  dnnl_primitive_desc_t pd = NULL;
  const dnnl_memory_desc_t *dw_md;
  bool ok;

  if (l->kind == NN_LAYER_DECONV)
    dnnl_deconvolution_backward_weights_desc_init(
        &desc, dnnl_deconvolution_direct, &l->src->md, &g->w_any, &g->bias,
        &l->dst->md, g->strides, g->pad, g->pad);
  else
    dnnl_convolution_backward_weights_desc_init(
        &desc, dnnl_convolution_direct, &l->src->md, &g->w_any, &g->bias,
        &l->dst->md, g->strides, g->pad, g->pad);
  ok = make_prim(&l->bwd_weights, &pd, &desc, NULL, engine, fwd_pd,
                 "creating a convolution weights gradient", error);
  if (ok) {
    dw_md = query(pd, dnnl_query_diff_weights_md);
    ok = wrap(&l->dw_plain, &g->w_plain, engine, l->weight->grad, error) &&
         wrap(&l->db, &g->bias, engine, l->bias->grad, error) &&
         layout_memory(&l->dw, l->dw_plain, dw_md, engine, error) &&
         nn_train_reorder_new(&l->dw_to_plain, dw_md, &g->w_plain,
                              NN_REORDER_SHARED, engine, error);
  }
  dnnl_primitive_desc_destroy(pd);
  return ok;
}

/* ReLU backward from its output, in place on the output's gradient. */
static bool relu_bwd_build(NnLayer *l, dnnl_engine_t engine, GError **error)
{
  dnnl_eltwise_desc_t fwd_desc, bwd_desc;
  dnnl_primitive_desc_t hint = NULL, pd = NULL;
  bool ok;

  dnnl_eltwise_forward_desc_init(&fwd_desc, dnnl_forward_training,
                                 dnnl_eltwise_relu_use_dst_for_bwd,
                                 &l->dst->md, 0.0f, 0.0f);
  dnnl_eltwise_backward_desc_init(&bwd_desc,
                                  dnnl_eltwise_relu_use_dst_for_bwd,
                                  &l->dst->md, &l->dst->md, 0.0f, 0.0f);
  ok = nn_train_check(dnnl_primitive_desc_create(&hint, &fwd_desc, NULL,
                                                 engine, NULL),
                      "creating a ReLU", error) &&
       make_prim(&l->relu_bwd, &pd, &bwd_desc, NULL, engine, hint,
                 "creating a ReLU backward", error);
  dnnl_primitive_desc_destroy(pd);
  dnnl_primitive_desc_destroy(hint);
  return ok;
}

static bool conv_build(NnLayer *l, dnnl_engine_t engine, GError **error)
{
  ConvGeom g;
  dnnl_primitive_desc_t fwd_pd = NULL;
  bool ok;

  conv_geom(l, &g);
  ok = conv_forward_build(l, &g, engine, &fwd_pd, error) &&
       (!l->need_diff_src ||
        conv_bwd_data_build(l, &g, engine, fwd_pd, error)) &&
       conv_bwd_weights_build(l, &g, engine, fwd_pd, error) &&
       (!l->relu || relu_bwd_build(l, engine, error));
  dnnl_primitive_desc_destroy(fwd_pd);
  return ok;
}

/*
 * Batch norm.  oneDNN 2.6 computes batch statistics in one float pass,
 * about 1e-5 off in the variance; through the normalisation that moves
 * activations enough to flip ReLU decisions next to zero, and the
 * gradients then differ from PyTorch's (two-pass) by percents.  So the
 * statistics are computed here in double (bn_batch_stats) and the forward
 * primitive normalises with them (global-stats flag); backward is the
 * full training backward on the same statistics.  Scale and shift sit
 * packed in a 2 x C buffer, copied from and to the model each step.
 */
static bool bn_build(NnLayer *l, dnnl_engine_t engine, GError **error)
{
  dnnl_batch_normalization_desc_t fwd_desc, hint_desc, bwd_desc;
  dnnl_primitive_desc_t fwd_pd = NULL, hint_pd = NULL, bwd_pd = NULL;
  dnnl_memory_desc_t vec, pair;
  dnnl_dims_t dims = { l->src->c };
  dnnl_dims_t pair_dims = { 2, l->src->c };
  unsigned flags = dnnl_use_scaleshift;
  bool ok;

  dnnl_memory_desc_init_by_tag(&vec, 1, dims, dnnl_f32, dnnl_a);
  dnnl_memory_desc_init_by_tag(&pair, 2, pair_dims, dnnl_f32, dnnl_ab);
  dnnl_batch_normalization_forward_desc_init(
      &fwd_desc, dnnl_forward_training, &l->src->md, BN_EPSILON,
      flags | dnnl_use_global_stats);
  dnnl_batch_normalization_forward_desc_init(&hint_desc,
                                             dnnl_forward_training,
                                             &l->src->md, BN_EPSILON, flags);
  dnnl_batch_normalization_backward_desc_init(&bwd_desc, dnnl_backward,
                                              &l->dst->md, &l->src->md,
                                              BN_EPSILON, flags);
  ok = make_prim(&l->fwd, &fwd_pd, &fwd_desc, NULL, engine, NULL,
                 "creating a batch norm", error) &&
       nn_train_check(dnnl_primitive_desc_create(&hint_pd, &hint_desc, NULL,
                                                 engine, NULL),
                      "creating a batch norm", error) &&
       make_prim(&l->bwd_data, &bwd_pd, &bwd_desc, NULL, engine, hint_pd,
                 "creating a batch norm backward", error) &&
       workspace_for(l, fwd_pd, engine, error) &&
       nn_train_alloc(&l->mean, &vec, engine, error) &&
       nn_train_alloc(&l->var, &vec, engine, error) &&
       nn_train_alloc(&l->w_fwd, &pair, engine, error) &&
       nn_train_alloc(&l->dw, &pair, engine, error);
  dnnl_primitive_desc_destroy(bwd_pd);
  dnnl_primitive_desc_destroy(hint_pd);
  dnnl_primitive_desc_destroy(fwd_pd);
  return ok;
}

/* Adds x (or (x - shift[c])^2 when shift is given) per channel into sums,
 * walking the memory in order: nchw is one run per channel and image,
 * nChw8c interleaves 8 channels per pixel. */
static void channel_sums(const NnAct *a, const float *x, const double *shift,
                         double *sums)
{
  int64_t hw = (int64_t) a->h * a->w;
  int block = a->tag == dnnl_nchw ? 1 : 8;

  for (int b = 0; b < a->n; b++)
    for (int c0 = 0; c0 < a->c; c0 += block) {
      const float *run = x + ((int64_t) b * a->c + c0) * hw;

      for (int64_t p = 0; p < hw; p++)
        for (int k = 0; k < block; k++) {
          double v = run[p * block + k];

          if (shift != NULL)
            v = (v - shift[c0 + k]) * (v - shift[c0 + k]);
          sums[c0 + k] += v;
        }
    }
}

/* Mean and biased variance per channel, two passes in double. */
static void bn_batch_stats(NnLayer *l)
{
  const NnAct *a = l->src;
  const float *x = handle_of(a->mem);
  float *mean = handle_of(l->mean), *var = handle_of(l->var);
  double count = (double) a->n * a->h * a->w;
  g_autofree double *m = g_new0(double, a->c);
  g_autofree double *sq = g_new0(double, a->c);

  channel_sums(a, x, NULL, m);
  for (int c = 0; c < a->c; c++)
    m[c] /= count;
  channel_sums(a, x, m, sq);
  for (int c = 0; c < a->c; c++) {
    mean[c] = (float) m[c];
    var[c] = (float) (sq[c] / count);
  }
}

/* When the source also feeds another layer whose gradient is already in
 * place, diff_src goes to a scratch buffer and is added afterwards. */
static bool accumulate_build(NnLayer *l, dnnl_engine_t engine,
                             GError **error)
{
  if (!l->accumulate)
    return true;
  return nn_train_alloc(&l->scratch, &l->src->md, engine, error) &&
         nn_train_reorder_new(&l->add_scratch, &l->src->md, &l->src->md,
                              NN_REORDER_ADD, engine, error);
}

static bool pool_build(NnLayer *l, dnnl_engine_t engine, GError **error)
{
  dnnl_pooling_desc_t fwd_desc, bwd_desc;
  dnnl_primitive_desc_t fwd_pd = NULL, bwd_pd = NULL;
  dnnl_dims_t two = { 2, 2 }, zero = { 0, 0 };
  bool ok;

  dnnl_pooling_forward_desc_init(&fwd_desc, dnnl_forward_training,
                                 dnnl_pooling_avg_exclude_padding,
                                 &l->src->md, &l->dst->md, two, two, zero,
                                 zero);
  dnnl_pooling_backward_desc_init(&bwd_desc,
                                  dnnl_pooling_avg_exclude_padding,
                                  &l->src->md, &l->dst->md, two, two, zero,
                                  zero);
  ok = make_prim(&l->fwd, &fwd_pd, &fwd_desc, NULL, engine, NULL,
                 "creating a pooling", error) &&
       make_prim(&l->bwd_data, &bwd_pd, &bwd_desc, NULL, engine, fwd_pd,
                 "creating a pooling backward", error) &&
       workspace_for(l, fwd_pd, engine, error) &&
       accumulate_build(l, engine, error);
  dnnl_primitive_desc_destroy(bwd_pd);
  dnnl_primitive_desc_destroy(fwd_pd);
  return ok;
}

/* Bilinear x2 on oneDNN's linear resampling, whose half-pixel mapping is
 * PyTorch's align_corners=False. */
static bool resample_build(NnLayer *l, dnnl_engine_t engine, GError **error)
{
  dnnl_resampling_desc_t fwd_desc, bwd_desc;
  dnnl_primitive_desc_t fwd_pd = NULL, bwd_pd = NULL;
  bool ok;

  dnnl_resampling_forward_desc_init(&fwd_desc, dnnl_forward_training,
                                    dnnl_resampling_linear, NULL,
                                    &l->src->md, &l->dst->md);
  dnnl_resampling_backward_desc_init(&bwd_desc, dnnl_resampling_linear,
                                     NULL, &l->src->md, &l->dst->md);
  ok = make_prim(&l->fwd, &fwd_pd, &fwd_desc, NULL, engine, NULL,
                 "creating a resampling", error) &&
       make_prim(&l->bwd_data, &bwd_pd, &bwd_desc, NULL, engine, fwd_pd,
                 "creating a resampling backward", error);
  dnnl_primitive_desc_destroy(bwd_pd);
  dnnl_primitive_desc_destroy(fwd_pd);
  return ok;
}

static bool view_of(dnnl_memory_t *mem, const dnnl_memory_desc_t *md,
                    dnnl_memory_t parent, dnnl_engine_t engine,
                    GError **error)
{
  return wrap(mem, md, engine, handle_of(parent), error);
}

/* The centre crop of src2 to src's size, as PyTorch's UNet crops: the
 * offsets round down. */
static bool crop_build(NnLayer *l, dnnl_memory_desc_t *crop_md,
                       dnnl_engine_t engine, GError **error)
{
  NnAct *b = l->src2;
  dnnl_dims_t dims = { b->n, b->c, l->src->h, l->src->w };
  dnnl_dims_t offsets = { 0, 0, (b->h - l->src->h) / 2,
                          (b->w - l->src->w) / 2 };
  dnnl_memory_desc_t view_md;

  if (b->h == l->src->h && b->w == l->src->w) {
    *crop_md = b->md;
    return true;
  }
  dnnl_memory_desc_init_by_tag(crop_md, 4, dims, dnnl_f32, b->tag);
  return nn_train_check(dnnl_memory_desc_init_submemory(&view_md, &b->md,
                                                        dims, offsets),
                        "describing a crop", error) &&
         view_of(&l->crop_view, &view_md, b->mem, engine, error) &&
         view_of(&l->crop_diff_view, &view_md, b->diff, engine, error) &&
         nn_train_alloc(&l->crop_mem, crop_md, engine, error) &&
         nn_train_reorder_new(&l->crop_fwd, &view_md, crop_md,
                              NN_REORDER_COPY, engine, error);
}

/* Concat backward: the two channel slices of the gradient, the second
 * one padded back around the crop. */
static bool concat_bwd_build(NnLayer *l, dnnl_engine_t engine,
                             GError **error)
{
  NnAct *parts[2] = { l->src, l->src2 };
  int64_t offset = 0;

  for (int i = 0; i < 2; i++) {
    dnnl_dims_t dims = { l->dst->n, parts[i]->c, l->dst->h, l->dst->w };
    dnnl_dims_t offsets = { 0, offset, 0, 0 };
    dnnl_memory_desc_t md;
    const dnnl_memory_desc_t *to = &parts[i]->md;

    if (i == 1 && l->crop_diff_view != NULL)
      dnnl_memory_get_memory_desc(l->crop_diff_view, &to);
    if (!nn_train_check(dnnl_memory_desc_init_submemory(&md, &l->dst->md,
                                                        dims, offsets),
                        "describing a concat slice", error) ||
        !view_of(&l->cat_diff_view[i], &md, l->dst->diff, engine, error) ||
        !nn_train_reorder_new(&l->cat_bwd[i], &md, to, NN_REORDER_COPY,
                              engine, error))
      return false;
    offset += parts[i]->c;
  }
  return true;
}

static bool concat_build(NnLayer *l, dnnl_engine_t engine, GError **error)
{
  dnnl_memory_desc_t srcs[2];
  dnnl_primitive_desc_t pd = NULL;
  bool ok;

  srcs[0] = l->src->md;
  ok = crop_build(l, &srcs[1], engine, error) &&
       nn_train_check(dnnl_concat_primitive_desc_create(&pd, &l->dst->md, 2,
                                                        1, srcs, NULL,
                                                        engine),
                      "creating a concat", error) &&
       nn_train_check(dnnl_primitive_create(&l->fwd, pd),
                      "creating a concat", error) &&
       concat_bwd_build(l, engine, error);
  dnnl_primitive_desc_destroy(pd);
  return ok;
}

bool nn_layer_build(NnLayer *layer, dnnl_engine_t engine, GError **error)
{
  switch (layer->kind) {
  case NN_LAYER_CONV:
  case NN_LAYER_DECONV:
    return conv_build(layer, engine, error);
  case NN_LAYER_BN:
    return bn_build(layer, engine, error);
  case NN_LAYER_POOL:
    return pool_build(layer, engine, error);
  case NN_LAYER_RESAMPLE:
    return resample_build(layer, engine, error);
  case NN_LAYER_CONCAT:
    return concat_build(layer, engine, error);
  }
  return false;
}

typedef struct {
  int key;
  dnnl_memory_t mem;
} NnArg;

/* Runs a primitive on a { key, memory } list ending in key 0; NULL
 * memories (no workspace) are left out. */
static bool run_args(dnnl_primitive_t prim, dnnl_stream_t stream,
                     const char *what, GError **error, const NnArg *pairs)
{
  dnnl_exec_arg_t args[12];
  int used = 0;

  for (int i = 0; pairs[i].key != 0 && used < 12; i++) {
    if (pairs[i].mem == NULL)
      continue;
    args[used].arg = pairs[i].key;
    args[used].memory = pairs[i].mem;
    used++;
  }
  return nn_train_check(dnnl_primitive_execute(prim, stream, used, args),
                        what, error);
}

#define RUN(prim, stream, what, error, ...)                                 \
  run_args(prim, stream, what, error,                                      \
           (const NnArg[]) { __VA_ARGS__, { 0, NULL } })

static bool concat_forward(NnLayer *l, dnnl_stream_t stream, GError **error)
{
  dnnl_memory_t part2 = l->crop_mem ? l->crop_mem : l->src2->mem;

  if (l->crop_fwd != NULL &&
      !nn_train_reorder_run(l->crop_fwd, l->crop_view, l->crop_mem, stream,
                            error))
    return false;
  return RUN(l->fwd, stream, "concat", error,
             { DNNL_ARG_MULTIPLE_SRC, l->src->mem },
             { DNNL_ARG_MULTIPLE_SRC + 1, part2 },
             { DNNL_ARG_DST, l->dst->mem });
}

bool nn_layer_forward(NnLayer *l, dnnl_stream_t stream, GError **error)
{
  switch (l->kind) {
  case NN_LAYER_CONV:
  case NN_LAYER_DECONV:
    return RUN(l->fwd, stream, "convolution", error,
               { DNNL_ARG_SRC, l->src->mem },
               { DNNL_ARG_WEIGHTS, l->w_fwd }, { DNNL_ARG_BIAS, l->b_mem },
               { DNNL_ARG_DST, l->dst->mem });
  case NN_LAYER_BN:
    dnnl_stream_wait(stream);
    bn_batch_stats(l);
    return RUN(l->fwd, stream, "batch norm", error,
               { DNNL_ARG_SRC, l->src->mem }, { DNNL_ARG_DST, l->dst->mem },
               { DNNL_ARG_SCALE_SHIFT, l->w_fwd },
               { DNNL_ARG_MEAN, l->mean }, { DNNL_ARG_VARIANCE, l->var },
               { DNNL_ARG_WORKSPACE, l->workspace });
  case NN_LAYER_POOL:
  case NN_LAYER_RESAMPLE:
    return RUN(l->fwd, stream, "pooling or resampling", error,
               { DNNL_ARG_SRC, l->src->mem }, { DNNL_ARG_DST, l->dst->mem },
               { DNNL_ARG_WORKSPACE, l->workspace });
  case NN_LAYER_CONCAT:
    return concat_forward(l, stream, error);
  }
  return false;
}

static bool conv_backward(NnLayer *l, dnnl_stream_t stream, GError **error)
{
  if (l->relu &&
      !RUN(l->relu_bwd, stream, "ReLU backward", error,
           { DNNL_ARG_DST, l->dst->mem }, { DNNL_ARG_DIFF_DST, l->dst->diff },
           { DNNL_ARG_DIFF_SRC, l->dst->diff }))
    return false;
  if (!RUN(l->bwd_weights, stream, "convolution weights gradient", error,
           { DNNL_ARG_SRC, l->src->mem }, { DNNL_ARG_DIFF_DST, l->dst->diff },
           { DNNL_ARG_DIFF_WEIGHTS, l->dw }, { DNNL_ARG_DIFF_BIAS, l->db }))
    return false;
  if (!l->need_diff_src)
    return true;
  return RUN(l->bwd_data, stream, "convolution backward", error,
             { DNNL_ARG_DIFF_DST, l->dst->diff },
             { DNNL_ARG_WEIGHTS, l->w_bwd },
             { DNNL_ARG_DIFF_SRC, l->src->diff });
}

static bool pool_backward(NnLayer *l, dnnl_stream_t stream, GError **error)
{
  dnnl_memory_t target = l->accumulate ? l->scratch : l->src->diff;

  if (!RUN(l->bwd_data, stream, "pooling backward", error,
           { DNNL_ARG_DIFF_DST, l->dst->diff }, { DNNL_ARG_DIFF_SRC, target },
           { DNNL_ARG_WORKSPACE, l->workspace }))
    return false;
  if (!l->accumulate)
    return true;
  return nn_train_reorder_run(l->add_scratch, l->scratch, l->src->diff,
                              stream, error);
}

/* The crop's gradient is the slice padded with zeros. */
static bool concat_backward(NnLayer *l, dnnl_stream_t stream,
                            GError **error)
{
  dnnl_memory_t to2 = l->src2->diff;

  if (!nn_train_reorder_run(l->cat_bwd[0], l->cat_diff_view[0],
                            l->src->diff, stream, error))
    return false;
  if (l->crop_diff_view != NULL) {
    dnnl_stream_wait(stream);
    memset(handle_of(to2), 0, dnnl_memory_desc_get_size(&l->src2->md));
    to2 = l->crop_diff_view;
  }
  return nn_train_reorder_run(l->cat_bwd[1], l->cat_diff_view[1], to2,
                              stream, error);
}

bool nn_layer_backward(NnLayer *l, dnnl_stream_t stream, GError **error)
{
  switch (l->kind) {
  case NN_LAYER_CONV:
  case NN_LAYER_DECONV:
    return conv_backward(l, stream, error);
  case NN_LAYER_BN:
    return RUN(l->bwd_data, stream, "batch norm backward", error,
               { DNNL_ARG_SRC, l->src->mem }, { DNNL_ARG_MEAN, l->mean },
               { DNNL_ARG_VARIANCE, l->var },
               { DNNL_ARG_DIFF_DST, l->dst->diff },
               { DNNL_ARG_SCALE_SHIFT, l->w_fwd },
               { DNNL_ARG_DIFF_SRC, l->src->diff },
               { DNNL_ARG_DIFF_SCALE_SHIFT, l->dw });
  case NN_LAYER_POOL:
    return pool_backward(l, stream, error);
  case NN_LAYER_RESAMPLE:
    return RUN(l->bwd_data, stream, "resampling backward", error,
               { DNNL_ARG_DIFF_DST, l->dst->diff },
               { DNNL_ARG_DIFF_SRC, l->src->diff });
  case NN_LAYER_CONCAT:
    return concat_backward(l, stream, error);
  }
  return false;
}

/* Packs or unpacks scale and shift: pair[0] = scale, pair[1] = shift. */
static void bn_pair_copy(NnLayer *l, dnnl_memory_t pair, float *scale,
                         float *shift, bool pack)
{
  float *p = handle_of(pair);
  gsize bytes = sizeof(float) * l->src->c;

  if (pack) {
    memcpy(p, scale, bytes);
    memcpy(p + l->src->c, shift, bytes);
  } else {
    memcpy(scale, p, bytes);
    memcpy(shift, p + l->src->c, bytes);
  }
}

bool nn_layer_load_weights(NnLayer *l, dnnl_stream_t stream, GError **error)
{
  if (l->kind == NN_LAYER_BN) {
    bn_pair_copy(l, l->w_fwd, l->weight->tensor->data,
                 l->bias->tensor->data, true);
    return true;
  }
  if (l->kind != NN_LAYER_CONV && l->kind != NN_LAYER_DECONV)
    return true;
  return nn_train_reorder_run(l->w_to_fwd, l->w_plain, l->w_fwd, stream,
                              error) &&
         nn_train_reorder_run(l->w_to_bwd, l->w_plain, l->w_bwd, stream,
                              error);
}

/* Running statistics as PyTorch keeps them: momentum 0.1, the variance
 * unbiased (n / (n - 1)) although normalisation used the biased one. */
static void bn_update_running(NnLayer *l)
{
  const float *mean = handle_of(l->mean);
  const float *var = handle_of(l->var);
  float *running_mean = l->running_mean->data;
  float *running_var = l->running_var->data;
  double n = (double) l->src->n * l->src->h * l->src->w;
  double unbias = n > 1 ? n / (n - 1) : 1.0;

  for (int c = 0; c < l->src->c; c++) {
    running_mean[c] = (float) ((1 - BN_MOMENTUM) * running_mean[c] +
                               BN_MOMENTUM * mean[c]);
    running_var[c] = (float) ((1 - BN_MOMENTUM) * running_var[c] +
                              BN_MOMENTUM * var[c] * unbias);
  }
  if (l->batches_tracked != NULL)
    ((int64_t *) l->batches_tracked->data)[0] += 1;
}

bool nn_layer_finish(NnLayer *l, dnnl_stream_t stream, GError **error)
{
  if (l->kind == NN_LAYER_BN) {
    dnnl_stream_wait(stream);
    bn_pair_copy(l, l->dw, l->weight->grad, l->bias->grad, false);
    bn_update_running(l);
    return true;
  }
  if (l->kind != NN_LAYER_CONV && l->kind != NN_LAYER_DECONV)
    return true;
  return nn_train_reorder_run(l->dw_to_plain, l->dw, l->dw_plain, stream,
                              error);
}

static void destroy_memory(dnnl_memory_t *mem, dnnl_memory_t keep)
{
  if (*mem != NULL && *mem != keep)
    dnnl_memory_destroy(*mem);
  *mem = NULL;
}

static void destroy_primitive(dnnl_primitive_t *prim)
{
  if (*prim != NULL)
    dnnl_primitive_destroy(*prim);
  *prim = NULL;
}

void nn_layer_clear(NnLayer *l)
{
  dnnl_primitive_t *prims[] = {
    &l->fwd, &l->bwd_data, &l->bwd_weights, &l->relu_bwd, &l->w_to_fwd,
    &l->w_to_bwd, &l->dw_to_plain, &l->add_scratch, &l->crop_fwd,
    &l->cat_bwd[0], &l->cat_bwd[1],
  };
  dnnl_memory_t *mems[] = {
    &l->b_mem, &l->db, &l->mean, &l->var, &l->workspace, &l->scratch,
    &l->crop_view, &l->crop_mem, &l->crop_diff_view, &l->cat_diff_view[0],
    &l->cat_diff_view[1],
  };

  for (size_t i = 0; i < G_N_ELEMENTS(prims); i++)
    destroy_primitive(prims[i]);
  for (size_t i = 0; i < G_N_ELEMENTS(mems); i++)
    destroy_memory(mems[i], NULL);
  /* Layout memories may be the plain ones themselves. */
  destroy_memory(&l->w_fwd, l->w_plain);
  destroy_memory(&l->w_bwd, l->w_plain);
  destroy_memory(&l->dw, l->dw_plain);
  destroy_memory(&l->w_plain, NULL);
  destroy_memory(&l->dw_plain, NULL);
}
