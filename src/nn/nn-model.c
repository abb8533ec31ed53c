/*
 * nn-model.c: the U-Net's state dict: names and shapes implied by the
 * hyper-parameters, reference counting, copies and PyTorch's default
 * initialisation.
 */
#include "nn-private.h"

#include "common/aapi-error.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

struct NnModel {
  gatomicrefcount ref;
  NnHparams hparams;
  GPtrArray *tensors;      /* NnTensor*, state-dict order */
  GHashTable *by_name;     /* name -> NnTensor* (borrowed) */
};

bool nn_hparams_check(const NnHparams *h, GError **error)
{
  if (h->in_channels < 1 || h->in_channels > NN_MAX_CHANNELS ||
      h->n_classes < 1 || h->n_classes > NN_MAX_CLASSES ||
      h->depth < 1 || h->depth > NN_MAX_DEPTH ||
      h->wf < 0 || h->wf > NN_MAX_WF ||
      (h->up_mode != NN_UP_UPCONV && h->up_mode != NN_UP_UPSAMPLE)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "unsupported U-Net hyper-parameters: in_channels %d, "
                "n_classes %d, depth %d, wf %d (bounds: channels 1-%d, "
                "classes 1-%d, depth 1-%d, wf 0-%d)",
                h->in_channels, h->n_classes, h->depth, h->wf,
                NN_MAX_CHANNELS, NN_MAX_CLASSES, NN_MAX_DEPTH, NN_MAX_WF);
    return false;
  }
  return true;
}

const char *nn_up_mode_name(NnUpMode mode)
{
  return mode == NN_UP_UPSAMPLE ? "upsample" : "upconv";
}

bool nn_up_mode_parse(const char *text, NnUpMode *mode)
{
  if (g_strcmp0(text, "upconv") == 0)
    *mode = NN_UP_UPCONV;
  else if (g_strcmp0(text, "upsample") == 0)
    *mode = NN_UP_UPSAMPLE;
  else
    return false;
  return true;
}

gsize nn_dtype_size(NnDtype dtype)
{
  return dtype == NN_DTYPE_I64 ? sizeof(int64_t) : sizeof(float);
}

int nn_level_channels(const NnHparams *hparams, int level)
{
  return 1 << (hparams->wf + level);
}

int nn_block_index(const NnHparams *hparams, int conv, bool bn)
{
  int step = hparams->batch_norm ? 3 : 2;

  if (bn)
    return hparams->batch_norm ? conv * step + 2 : -1;
  return conv * step;
}

static void tensor_free(gpointer data)
{
  NnTensor *tensor = data;

  g_free(tensor->name);
  g_aligned_free(tensor->data);
  g_free(tensor);
}

/* A zero-filled tensor; shape given as ndim values. */
static NnTensor *tensor_new(char *name, NnDtype dtype, int ndim,
                            const int64_t *shape)
{
  NnTensor *tensor = g_new0(NnTensor, 1);

  tensor->name = name;
  tensor->dtype = dtype;
  tensor->ndim = ndim;
  tensor->n_elements = 1;
  for (int i = 0; i < ndim; i++) {
    tensor->shape[i] = shape[i];
    tensor->n_elements *= shape[i];
  }
  /* At least one element so that a scalar still has storage. */
  tensor->data = g_aligned_alloc0(MAX(tensor->n_elements, 1),
                                  nn_dtype_size(dtype), 64);
  return tensor;
}

static void model_add(NnModel *model, NnDtype dtype, int ndim,
                      const int64_t *shape, const char *fmt, ...)
    G_GNUC_PRINTF(5, 6);

static void model_add(NnModel *model, NnDtype dtype, int ndim,
                      const int64_t *shape, const char *fmt, ...)
{
  va_list args;

  va_start(args, fmt);
  char *name = g_strdup_vprintf(fmt, args);
  va_end(args);

  NnTensor *tensor = tensor_new(name, dtype, ndim, shape);
  g_ptr_array_add(model->tensors, tensor);
  g_hash_table_insert(model->by_name, tensor->name, tensor);
}

/* weight [out, in, k, k] and bias [out] of a convolution. */
static void add_conv(NnModel *model, const char *prefix, int64_t out,
                     int64_t in, int64_t k)
{
  const int64_t wshape[4] = { out, in, k, k };

  model_add(model, NN_DTYPE_F32, 4, wshape, "%s.weight", prefix);
  model_add(model, NN_DTYPE_F32, 1, &out, "%s.bias", prefix);
}

static void add_batch_norm(NnModel *model, const char *prefix, int64_t c)
{
  model_add(model, NN_DTYPE_F32, 1, &c, "%s.weight", prefix);
  model_add(model, NN_DTYPE_F32, 1, &c, "%s.bias", prefix);
  model_add(model, NN_DTYPE_F32, 1, &c, "%s.running_mean", prefix);
  model_add(model, NN_DTYPE_F32, 1, &c, "%s.running_var", prefix);
  model_add(model, NN_DTYPE_I64, 0, NULL, "%s.num_batches_tracked",
            prefix);
}

/* Two 3x3 convolutions, each followed by ReLU and, optionally, BN. */
static void add_conv_block(NnModel *model, const char *prefix, int64_t in,
                           int64_t out)
{
  const NnHparams *h = &model->hparams;

  for (int conv = 0; conv < 2; conv++) {
    g_autofree char *cname = g_strdup_printf(
        "%s.block.%d", prefix, nn_block_index(h, conv, false));
    add_conv(model, cname, out, conv == 0 ? in : out, 3);
    if (h->batch_norm) {
      g_autofree char *bname = g_strdup_printf(
          "%s.block.%d", prefix, nn_block_index(h, conv, true));
      add_batch_norm(model, bname, out);
    }
  }
}

/* The up-sampling layer: PyTorch's ConvTranspose2d stores [in, out, k, k]. */
static void add_up(NnModel *model, const char *prefix, int64_t in,
                   int64_t out)
{
  if (model->hparams.up_mode == NN_UP_UPCONV) {
    const int64_t wshape[4] = { in, out, 2, 2 };
    model_add(model, NN_DTYPE_F32, 4, wshape, "%s.up.weight", prefix);
    model_add(model, NN_DTYPE_F32, 1, &out, "%s.up.bias", prefix);
  } else {
    g_autofree char *cname = g_strdup_printf("%s.up.1", prefix);
    add_conv(model, cname, out, in, 1);
  }
}

/* The state dict in the order PyTorch's module registration gives it. */
static void build_tensors(NnModel *model)
{
  const NnHparams *h = &model->hparams;
  int prev = h->in_channels;

  for (int i = 0; i < h->depth; i++) {
    g_autofree char *prefix = g_strdup_printf("down_path.%d", i);
    add_conv_block(model, prefix, prev, nn_level_channels(h, i));
    prev = nn_level_channels(h, i);
  }
  for (int i = h->depth - 2, j = 0; i >= 0; i--, j++) {
    g_autofree char *prefix = g_strdup_printf("up_path.%d", j);
    int out = nn_level_channels(h, i);
    add_up(model, prefix, prev, out);
    g_autofree char *block = g_strdup_printf("%s.conv_block", prefix);
    add_conv_block(model, block, prev, out);
    prev = out;
  }
  add_conv(model, "last", h->n_classes, prev, 1);
}

NnModel *nn_model_new(const NnHparams *hparams, GError **error)
{
  if (!nn_hparams_check(hparams, error))
    return NULL;

  NnModel *model = g_new0(NnModel, 1);
  g_atomic_ref_count_init(&model->ref);
  model->hparams = *hparams;
  model->tensors = g_ptr_array_new_with_free_func(tensor_free);
  model->by_name = g_hash_table_new(g_str_hash, g_str_equal);
  build_tensors(model);
  return model;
}

NnModel *nn_model_ref(NnModel *model)
{
  g_atomic_ref_count_inc(&model->ref);
  return model;
}

void nn_model_unref(NnModel *model)
{
  if (model == NULL || !g_atomic_ref_count_dec(&model->ref))
    return;
  g_hash_table_unref(model->by_name);
  g_ptr_array_unref(model->tensors);
  g_free(model);
}

NnModel *nn_model_copy(const NnModel *model)
{
  NnModel *copy = nn_model_new(&model->hparams, NULL);

  g_return_val_if_fail(copy != NULL, NULL);
  for (guint i = 0; i < model->tensors->len; i++) {
    const NnTensor *src = g_ptr_array_index(model->tensors, i);
    NnTensor *dst = g_ptr_array_index(copy->tensors, i);
    memcpy(dst->data, src->data,
           src->n_elements * nn_dtype_size(src->dtype));
  }
  return copy;
}

const NnHparams *nn_model_get_hparams(const NnModel *model)
{
  return &model->hparams;
}

const GPtrArray *nn_model_get_tensors(const NnModel *model)
{
  return model->tensors;
}

NnTensor *nn_model_get_tensor(const NnModel *model, const char *name)
{
  return g_hash_table_lookup(model->by_name, name);
}

const float *nn_model_floats(const NnModel *model, const char *fmt, ...)
{
  va_list args;

  va_start(args, fmt);
  g_autofree char *name = g_strdup_vprintf(fmt, args);
  va_end(args);

  NnTensor *tensor = nn_model_get_tensor(model, name);
  if (tensor == NULL || tensor->dtype != NN_DTYPE_F32)
    return NULL;
  return tensor->data;
}

/* Uniform in [-bound, bound). */
static void fill_uniform(NnTensor *tensor, GRand *rand, double bound)
{
  float *data = tensor->data;

  for (int64_t i = 0; i < tensor->n_elements; i++)
    data[i] = (float) g_rand_double_range(rand, -bound, bound);
}

static void fill_value(NnTensor *tensor, float value)
{
  float *data = tensor->data;

  for (int64_t i = 0; i < tensor->n_elements; i++)
    data[i] = value;
}

/* Fan-in as PyTorch computes it from a weight: shape[1] * kernel area
 * (for a transposed convolution shape[1] is its output channels). */
static double weight_fan_in(const NnTensor *weight)
{
  return (double) weight->shape[1] * weight->shape[2] * weight->shape[3];
}

/* PyTorch's default: kaiming_uniform(a = sqrt 5) for weights, which is a
 * bound of 1/sqrt(fan_in), and the same bound for biases; batch norm
 * starts as the identity with fresh running statistics. */
static void init_tensor(NnModel *model, NnTensor *tensor, GRand *rand)
{
  if (tensor->dtype == NN_DTYPE_I64) {
    memset(tensor->data, 0, sizeof(int64_t) * tensor->n_elements);
  } else if (g_str_has_suffix(tensor->name, ".running_var")) {
    fill_value(tensor, 1.0f);
  } else if (g_str_has_suffix(tensor->name, ".running_mean")) {
    fill_value(tensor, 0.0f);
  } else if (tensor->ndim == 4) {
    fill_uniform(tensor, rand, 1.0 / sqrt(weight_fan_in(tensor)));
  } else {
    /* A 1-d weight or bias: conv bias if a 4-d weight precedes it. */
    g_autofree char *stem = g_strndup(tensor->name,
                                      strrchr(tensor->name, '.') -
                                      tensor->name);
    g_autofree char *wname = g_strdup_printf("%s.weight", stem);
    NnTensor *weight = nn_model_get_tensor(model, wname);
    bool is_bias = g_str_has_suffix(tensor->name, ".bias");
    if (weight != NULL && weight->ndim == 4)
      fill_uniform(tensor, rand, 1.0 / sqrt(weight_fan_in(weight)));
    else
      fill_value(tensor, is_bias ? 0.0f : 1.0f);
  }
}

void nn_model_init_random(NnModel *model, guint64 seed)
{
  const guint32 words[2] = { (guint32) seed, (guint32) (seed >> 32) };
  g_autoptr(GRand) rand = g_rand_new_with_seed_array(words, 2);

  for (guint i = 0; i < model->tensors->len; i++)
    init_tensor(model, g_ptr_array_index(model->tensors, i), rand);
}
