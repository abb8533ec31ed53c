/*
 * nn-train-private.h: the training graph of NnTrainer, shared by
 * nn-train.c (graph and step), nn-train-layers.c (one layer's primitives)
 * and nn-adam.c (the optimiser), plus hooks for the tests.
 */
#pragma once

#include "nn.h"

#include <oneapi/dnnl/dnnl.h>

/* One activation: its values and the gradient of the loss w.r.t. them,
 * both in the trainer's activation layout. */
typedef struct {
  dnnl_memory_desc_t md;
  dnnl_format_tag_t tag;
  int n, c, h, w;
  dnnl_memory_t mem;
  dnnl_memory_t diff;    /* NULL for the network input */
  bool has_diff;
  /* Backward steps (0 = the last layer's) from the first write of the
   * gradient to its last read: buffers of disjoint spans are shared. */
  int diff_from, diff_to;
} NnAct;

typedef enum {
  NN_LAYER_CONV,      /* convolution, optionally with a fused ReLU */
  NN_LAYER_DECONV,    /* 2x2 stride-2 transposed convolution */
  NN_LAYER_BN,        /* batch normalization, batch statistics */
  NN_LAYER_POOL,      /* 2x2 average pooling */
  NN_LAYER_RESAMPLE,  /* bilinear x2 */
  NN_LAYER_CONCAT,    /* [src, centre crop of src2] along channels */
} NnLayerKind;

/* A trainable parameter: the model's tensor (plain layout, updated in
 * place), its gradient in the same layout and Adam's moments. */
typedef struct {
  NnTensor *tensor;
  float *grad;
  float *m, *v;
} NnParam;

typedef struct {
  NnLayerKind kind;
  NnAct *src, *src2, *dst;
  bool relu;            /* conv: ReLU fused as a post-op */
  bool need_diff_src;   /* false for the first convolution */
  bool accumulate;      /* diff_src adds to a gradient already there */
  NnParam *weight, *bias;
  NnTensor *running_mean, *running_var, *batches_tracked;

  dnnl_primitive_t fwd, bwd_data, bwd_weights, relu_bwd;
  /* Weights: plain (the model's), in the forward and backward-data
   * layouts, and their gradient in the primitive's and plain layouts. */
  dnnl_memory_t w_plain, w_fwd, w_bwd, b_mem;
  dnnl_memory_t dw, dw_plain, db;
  dnnl_primitive_t w_to_fwd, w_to_bwd, dw_to_plain;
  /* Batch norm statistics and workspace (any primitive). */
  dnnl_memory_t mean, var, workspace;
  /* diff_src goes here first when it must be added (accumulate). */
  dnnl_memory_t scratch;
  dnnl_primitive_t add_scratch;
  /* Concat: the crop of src2, views into the diff of dst. */
  dnnl_memory_t crop_view, crop_mem, crop_diff_view;
  dnnl_primitive_t crop_fwd;
  dnnl_memory_t cat_diff_view[2];
  dnnl_primitive_t cat_bwd[2];
} NnLayer;

/* Checks a oneDNN status; on failure sets AAPI_ERROR_NN naming what. */
bool nn_train_check(dnnl_status_t status, const char *what, GError **error);

/* Layer construction (fills the primitives for its shapes) and running. */
bool nn_layer_build(NnLayer *layer, dnnl_engine_t engine, GError **error);
bool nn_layer_forward(NnLayer *layer, dnnl_stream_t stream, GError **error);
bool nn_layer_backward(NnLayer *layer, dnnl_stream_t stream,
                       GError **error);
/* Before a step: the weights in the primitives' layouts. */
bool nn_layer_load_weights(NnLayer *layer, dnnl_stream_t stream,
                           GError **error);
/* After backward: gradients to plain layout, running statistics. */
bool nn_layer_finish(NnLayer *layer, dnnl_stream_t stream, GError **error);
void nn_layer_clear(NnLayer *layer);

/* A memory of that descriptor, owned by oneDNN. */
bool nn_train_alloc(dnnl_memory_t *mem, const dnnl_memory_desc_t *md,
                    dnnl_engine_t engine, GError **error);
typedef enum {
  NN_REORDER_COPY,    /* dst = src */
  NN_REORDER_SHARED,  /* dst = src; none when the layouts agree, for a
                         destination that is then the source itself */
  NN_REORDER_ADD,     /* dst += src */
} NnReorderMode;

/* A reorder primitive (NULL for NN_REORDER_SHARED on equal layouts). */
bool nn_train_reorder_new(dnnl_primitive_t *prim,
                          const dnnl_memory_desc_t *src,
                          const dnnl_memory_desc_t *dst, NnReorderMode mode,
                          dnnl_engine_t engine, GError **error);
bool nn_train_reorder_run(dnnl_primitive_t prim, dnnl_memory_t src,
                          dnnl_memory_t dst, dnnl_stream_t stream,
                          GError **error);

/* Adam as torch.optim.Adam: step is the 1-based step count. */
void nn_adam_update(NnParam *param, const NnAdamParams *adam, int64_t step);

/* For the tests: the gradient of a trainable state-dict entry after the
 * last step (plain layout, the tensor's n_elements), or NULL. */
const float *nn_trainer_get_grad(NnTrainer *trainer, const char *name);
/* Logits of the last step's forward pass (n x classes x h' x w'). */
const float *nn_trainer_get_logits(NnTrainer *trainer);
