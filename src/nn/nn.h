/*
 * nn.h: the U-Net family on oneDNN: the model and its weights, checkpoint
 * import, inference and training.
 *
 * An NnModel is the state dict of one network (tensors in state-dict order,
 * named as PyTorch names them) plus its hyper-parameters.  It is reference
 * counted and, once built, never changed in place by inference; training
 * works on its own copy (nn_model_copy) so that a rejected model never
 * touches the served one.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
  NN_UP_UPCONV,    /* 2x2 stride-2 transposed convolution */
  NN_UP_UPSAMPLE,  /* bilinear x2 then 1x1 convolution */
} NnUpMode;

typedef struct {
  int in_channels;   /* 3 */
  int n_classes;     /* 2 */
  int depth;         /* levels, >= 1 */
  int wf;            /* filters at level i: 2^(wf+i) */
  bool padding;
  bool batch_norm;
  NnUpMode up_mode;
} NnHparams;

typedef enum {
  NN_DTYPE_F32,
  NN_DTYPE_I64,
} NnDtype;

typedef struct {
  char *name;          /* state-dict key, e.g. "down_path.0.block.0.weight" */
  NnDtype dtype;
  int ndim;            /* 0..4 */
  int64_t shape[4];
  int64_t n_elements;
  void *data;          /* float* or int64_t*, 64-byte aligned */
} NnTensor;

typedef struct NnModel NnModel;

NnModel *nn_model_new(const NnHparams *hparams, GError **error);
NnModel *nn_model_ref(NnModel *model);
void nn_model_unref(NnModel *model);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NnModel, nn_model_unref)
/* A deep copy: same hyper-parameters, tensors copied. */
NnModel *nn_model_copy(const NnModel *model);

const NnHparams *nn_model_get_hparams(const NnModel *model);
/* NnTensor* in state-dict order. */
const GPtrArray *nn_model_get_tensors(const NnModel *model);
NnTensor *nn_model_get_tensor(const NnModel *model, const char *name);
/* Fills the tensors with PyTorch's default initialisation (seeded). */
void nn_model_init_random(NnModel *model, guint64 seed);

/* aapi's native weight file (documented in nn/README.md). */
NnModel *nn_model_load(const char *path, GError **error);
bool nn_model_save(const NnModel *model, const char *path, GError **error);
/* Either kind of model file: a native weight file (NN_MODEL_EXT) or a
 * PyTorch Lightning checkpoint (.ckpt) by its name, any other name by
 * its first bytes; errors describe the kind the file was meant to be. */
NnModel *nn_model_load_any(const char *path, GError **error);
/* The file name extension of native weight files. */
#define NN_MODEL_EXT ".aapimodel"

/* Reads a PyTorch Lightning checkpoint (zip + pickle): the state_dict and
 * the hyper_parameters.  Pickled objects it does not know are skipped,
 * never executed.  A file that is not a checkpoint: AAPI_ERROR_INVALID. */
NnModel *nn_ckpt_import(const char *path, GError **error);

/* Output spatial size for an input of h x w, as PyTorch computes it:
 * equal with padding when h and w are multiples of 2^(depth-1), smaller
 * otherwise (pooling drops odd rows; without padding every conv loses 2
 * pixels); false (AAPI_ERROR_INVALID) when a level would be empty. */
bool nn_output_size(const NnHparams *hparams, int h, int w, int *out_h,
                    int *out_w, GError **error);

/*
 * Inference.  An NnRunner compiles oneDNN primitives for one model and
 * caches them per input shape; one runner per worker thread (a runner is
 * not thread safe, the model it refers to is shared).
 */
typedef struct NnRunner NnRunner;

NnRunner *nn_runner_new(NnModel *model, GError **error);
void nn_runner_free(NnRunner *runner);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NnRunner, nn_runner_free)
NnModel *nn_runner_get_model(NnRunner *runner);

/* Eval-mode forward: input n x in_channels x h x w float32 NCHW, logits
 * out n x n_classes x out_h x out_w.  The first call per (n, h, w) builds
 * and caches the primitives; activations use a process-wide arena pool,
 * so idle runners hold only primitives and weights.  oneDNN's OpenMP
 * threads follow OMP_NUM_THREADS (and OMP_WAIT_POLICY). */
bool nn_runner_forward(NnRunner *runner, const float *input, int n, int h,
                       int w, float *logits, GError **error);

/*
 * Reduced precision.  The 3x3 convolutions carry nearly all of the work;
 * with NN_PRECISION_INT8 they run on 8-bit integers (oneDNN's int8
 * kernels: twice to four times the float32 speed on AVX2, more with VNNI
 * or AMX), their inputs quantized per tensor by the ranges recorded while
 * calibrating and their weights per output channel; everything else stays
 * float32.  NN_PRECISION_CALIBRATE runs float32 and widens the recorded
 * range of each 3x3 convolution's input to what it sees; switching to it
 * forgets earlier ranges.  INT8 without ranges fails (AAPI_ERROR_INVALID).
 * NN_PRECISION_BF16 rounds the 3x3 convolutions' inputs and weights to
 * bfloat16 (8 significant bits) and sums in float32, on oneDNN's AMX or
 * AVX512-BF16 kernels where the CPU has them (nn_bf16_available); it
 * needs no calibration.  Changing the precision drops the cached
 * primitives.
 */
typedef enum {
  NN_PRECISION_F32,
  NN_PRECISION_CALIBRATE,
  NN_PRECISION_INT8,
  NN_PRECISION_BF16,
} NnPrecision;

bool nn_runner_set_precision(NnRunner *runner, NnPrecision precision,
                             GError **error);
/* Whether this CPU runs bf16 convolutions natively (AVX512-BF16 or AMX). */
bool nn_bf16_available(void);
NnPrecision nn_runner_get_precision(NnRunner *runner);
/* The recorded ranges as (low, high) float pairs, one pair per 3x3
 * convolution in network order; a new array (empty before calibrating).
 * Set them on another runner of the same model to share a calibration. */
GArray *nn_runner_get_ranges(NnRunner *runner);
/* How many (low, high) pairs a calibration of this model holds: one per
 * 3x3 convolution, two per level going down and three per level going
 * up (the first one's input is split at the concatenation). */
guint nn_model_range_count(const NnModel *model);
/* Refuses ranges of another count, not finite, or with low > high. */
bool nn_runner_set_ranges(NnRunner *runner, const GArray *ranges,
                          GError **error);

/*
 * Training: forward in train mode (batch norm on batch statistics, running
 * statistics updated), mean softmax cross entropy, backward, one Adam step.
 * The trainer updates the model it was given in place: give it a copy.
 * It builds its oneDNN primitives on the first step of each batch shape
 * and reuses them; memory is held for one shape at a time, about 1 GiB
 * for 8 x 3 x 256 x 256 at depth 5, wf 4 (the forward activations kept
 * for backward are most of it).  One trainer per thread.
 */
typedef struct {
  double lr;            /* 1e-3 */
  double beta1, beta2;  /* 0.9, 0.999 */
  double eps;           /* 1e-8 */
  double weight_decay;  /* 0 */
} NnAdamParams;

#define NN_ADAM_DEFAULTS ((NnAdamParams) { 1e-3, 0.9, 0.999, 1e-8, 0.0 })

typedef struct NnTrainer NnTrainer;

NnTrainer *nn_trainer_new(NnModel *model, const NnAdamParams *adam,
                          GError **error);
void nn_trainer_free(NnTrainer *trainer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NnTrainer, nn_trainer_free)

/* target: n x out_h x out_w class indices. */
bool nn_trainer_step(NnTrainer *trainer, const float *input,
                     const int64_t *target, int n, int h, int w,
                     float *loss_out, GError **error);
