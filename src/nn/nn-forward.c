/*
 * nn-forward.c: eval-mode inference of the U-Net on oneDNN primitives.
 *
 * A runner builds a plan per input shape: the list of primitives with
 * their arguments, weights reordered once into the layouts the chosen
 * kernels prefer, and activation buffers reused as soon as a tensor is
 * dead.  Convolutions carry ReLU and the following batch norm (as a
 * per-channel multiply and add) as fused post-ops, so a conv block runs
 * as two primitives; the concatenation of an up block is never copied
 * (its convolution is split by input channels instead).
 *
 * In int8 precision the 3x3 convolutions read 8-bit copies of their
 * inputs (a quantizing reorder before each) and 8-bit weights, and write
 * float32 as before, so pooling, up-sampling, the joined convolutions'
 * sum and the batch norm post-ops are the same in both precisions.
 */
#include "nn-private.h"

#include "common/aapi-error.h"
#include "common/config.h"
#include "common/log.h"

#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>
#include <string.h>

#define NN_MAX_PLANS 8
#define NN_MAX_SIDE 65536
#define NN_MAX_BATCH 4096
#define NN_MAX_ARGS 8
#define NN_BN_EPS 1e-5f

/* One activation: its oneDNN descriptor and memory over a pool buffer. */
typedef struct {
  dnnl_memory_desc_t md;
  dnnl_memory_t mem;
  int buf;             /* pool slot, -1 when not from the pool */
} Act;

typedef struct {
  dnnl_primitive_t prim;
  int nargs;
  dnnl_exec_arg_t args[NN_MAX_ARGS];
} Step;

typedef struct {
  gsize offset;        /* in the arena a forward borrows */
  gsize size;
  bool busy;
} Slot;

/*
 * Activation memory is not owned by plans: a forward borrows an arena
 * from a process-wide free list and returns it, so memory follows the
 * number of forwards running at once, not the number of runners and
 * shapes (a worker holds one runner per class).  Arenas keep their
 * largest size, which saves page faults on the next forward.
 */
typedef struct {
  void *ptr;
  gsize size;
} Arena;

static GMutex arena_lock;
static GPtrArray *arena_free_list;

#define NN_ARENA_ALIGN 4096

/* Where a calibrating forward reads a 3x3 convolution's input: before
 * step runs, mem holds it. */
typedef struct {
  guint step;
  int q;                /* the convolution's number in network order */
  dnnl_memory_t mem;
  gsize size;
} Probe;

/* Slot buffers are allocated once the plan knows each slot's largest
 * use; memories over them get their handles then. */
typedef struct {
  dnnl_memory_t mem;
  int slot;
} Binding;

typedef struct {
  int n, h, w;
  GArray *steps;          /* Step */
  GPtrArray *memories;    /* dnnl_memory_t, destroyed with the plan */
  GPtrArray *owned;       /* aligned buffers: weights, BN factors */
  GArray *slots;          /* Slot: the activation pool */
  GArray *bindings;       /* Binding: memories placed in pool slots */
  GPtrArray *scratch_mems; /* scratchpad memories, all over one buffer */
  gsize scratch_size;
  gsize scratch_offset;
  gsize arena_size;
  dnnl_memory_t input;    /* user memories, handle set per call */
  dnnl_memory_t output;
  GArray *probes;         /* Probe, for calibrating */
} Plan;

struct NnRunner {
  NnModel *model;
  dnnl_primitive_attr_t attr;  /* user-managed scratchpad */
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  GHashTable *plans;      /* "n,h,w" -> Plan* */
  NnPrecision precision;
  GArray *ranges;         /* float (low, high) per 3x3 convolution */
  bool winograd;          /* AAPI_NN_WINOGRAD, on unless switched off */
};

static bool dnnl_ok(dnnl_status_t status, const char *what, GError **error)
{
  if (status == dnnl_success)
    return true;
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_NN,
              "oneDNN failed (%s): status %d", what, (int) status);
  return false;
}

static void plan_free(gpointer data)
{
  Plan *plan = data;

  for (guint i = 0; i < plan->steps->len; i++)
    dnnl_primitive_destroy(g_array_index(plan->steps, Step, i).prim);
  g_array_unref(plan->steps);
  g_ptr_array_unref(plan->memories);
  g_ptr_array_unref(plan->owned);
  g_array_unref(plan->slots);
  g_array_unref(plan->bindings);
  g_ptr_array_unref(plan->scratch_mems);
  g_array_unref(plan->probes);
  g_free(plan);
}

static void memory_destroy(gpointer data)
{
  dnnl_memory_destroy(data);
}

static Plan *plan_new(int n, int h, int w)
{
  Plan *plan = g_new0(Plan, 1);

  plan->n = n;
  plan->h = h;
  plan->w = w;
  plan->steps = g_array_new(FALSE, TRUE, sizeof(Step));
  plan->memories = g_ptr_array_new_with_free_func(memory_destroy);
  plan->owned = g_ptr_array_new_with_free_func(g_aligned_free);
  plan->slots = g_array_new(FALSE, TRUE, sizeof(Slot));
  plan->bindings = g_array_new(FALSE, TRUE, sizeof(Binding));
  plan->scratch_mems = g_ptr_array_new();
  plan->probes = g_array_new(FALSE, FALSE, sizeof(Probe));
  return plan;
}

typedef struct {
  NnRunner *runner;
  Plan *plan;
  const NnModel *model;
  int q;                /* 3x3 convolutions planned so far */
} Ctx;

/* A memory over ptr (may be NULL for a handle set later). */
static dnnl_memory_t memory_new(Ctx *c, const dnnl_memory_desc_t *md,
                                void *ptr, GError **error)
{
  dnnl_memory_t mem = NULL;

  if (!dnnl_ok(dnnl_memory_create(&mem, md, c->runner->engine, ptr),
               "memory", error))
    return NULL;
  g_ptr_array_add(c->plan->memories, mem);
  return mem;
}

/* A free pool slot: the smallest that fits, else the largest free one
 * (it grows), else a new one.  Sizes only grow while planning. */
static int slot_take(Plan *plan, gsize size)
{
  int fit = -1, big = -1;

  for (guint i = 0; i < plan->slots->len; i++) {
    Slot *s = &g_array_index(plan->slots, Slot, i);
    if (s->busy)
      continue;
    if (s->size >= size &&
        (fit < 0 || s->size < g_array_index(plan->slots, Slot, fit).size))
      fit = i;
    if (big < 0 || s->size > g_array_index(plan->slots, Slot, big).size)
      big = i;
  }
  if (fit < 0 && big < 0) {
    Slot s = { 0, 0, false };
    g_array_append_val(plan->slots, s);
    big = plan->slots->len - 1;
  }
  int take = fit >= 0 ? fit : big;
  Slot *s = &g_array_index(plan->slots, Slot, take);
  s->size = MAX(s->size, size);
  s->busy = true;
  return take;
}

/* Lays the slots and the scratchpad out in one arena. */
static void slots_layout(Plan *plan)
{
  gsize at = 0;

  for (guint i = 0; i < plan->slots->len; i++) {
    Slot *s = &g_array_index(plan->slots, Slot, i);
    s->offset = at;
    at += (s->size + NN_ARENA_ALIGN - 1) / NN_ARENA_ALIGN * NN_ARENA_ALIGN;
  }
  /* Steps run one after another, so they share one scratchpad. */
  plan->scratch_offset = at;
  plan->arena_size = at + MAX(plan->scratch_size, 64);
}

/* The largest free arena, grown to size when smaller; NULL when the
 * memory cannot be had (a huge input must not abort the process). */
static Arena *arena_take(gsize size, GError **error)
{
  Arena *arena = NULL;

  g_mutex_lock(&arena_lock);
  if (arena_free_list && arena_free_list->len > 0) {
    guint best = 0;
    for (guint i = 1; i < arena_free_list->len; i++)
      if (((Arena *) g_ptr_array_index(arena_free_list, i))->size >
          ((Arena *) g_ptr_array_index(arena_free_list, best))->size)
        best = i;
    arena = g_ptr_array_steal_index_fast(arena_free_list, best);
  }
  g_mutex_unlock(&arena_lock);

  if (arena == NULL)
    arena = g_new0(Arena, 1);
  if (arena->size < size) {
    free(arena->ptr);
    arena->ptr = NULL;
    arena->size = 0;
    if (posix_memalign(&arena->ptr, NN_ARENA_ALIGN, size) != 0) {
      arena->ptr = NULL;
      g_free(arena);
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_TOO_LARGE,
                  "not enough memory for the network's activations "
                  "(%" G_GSIZE_FORMAT " MiB)", size >> 20);
      return NULL;
    }
    arena->size = size;
  }
  return arena;
}

static void arena_give(Arena *arena)
{
  g_mutex_lock(&arena_lock);
  if (arena_free_list == NULL)
    arena_free_list = g_ptr_array_new();
  g_ptr_array_add(arena_free_list, arena);
  g_mutex_unlock(&arena_lock);
}

/* Points every pool memory of the plan into the arena. */
static bool arena_bind(Plan *plan, Arena *arena, GError **error)
{
  char *base = arena->ptr;

  for (guint i = 0; i < plan->bindings->len; i++) {
    Binding *b = &g_array_index(plan->bindings, Binding, i);
    gsize offset = g_array_index(plan->slots, Slot, b->slot).offset;
    if (!dnnl_ok(dnnl_memory_set_data_handle(b->mem, base + offset),
                 "bind", error))
      return false;
  }
  for (guint i = 0; i < plan->scratch_mems->len; i++)
    if (!dnnl_ok(dnnl_memory_set_data_handle(
                     g_ptr_array_index(plan->scratch_mems, i),
                     base + plan->scratch_offset), "bind", error))
      return false;
  return true;
}

static void slot_bind(Plan *plan, dnnl_memory_t mem, int slot)
{
  Binding b = { mem, slot };

  g_array_append_val(plan->bindings, b);
}

/* Marks an activation dead: later steps may reuse its buffer. */
static void act_release(Ctx *c, Act *act)
{
  if (act->buf >= 0)
    g_array_index(c->plan->slots, Slot, act->buf).busy = false;
  act->buf = -1;
}

static bool act_new(Ctx *c, const dnnl_memory_desc_t *md, Act *act,
                    GError **error)
{
  act->md = *md;
  act->buf = slot_take(c->plan, dnnl_memory_desc_get_size(md));
  act->mem = memory_new(c, md, NULL, error);
  if (act->mem == NULL)
    return false;
  slot_bind(c->plan, act->mem, act->buf);
  return true;
}

/* Weights and factors that live as long as the plan. */
static void *owned_alloc(Ctx *c, gsize size)
{
  void *ptr = g_aligned_alloc0(MAX(size, 64), 1, 64);

  g_ptr_array_add(c->plan->owned, ptr);
  return ptr;
}

static void add_step(Ctx *c, dnnl_primitive_t prim, int nargs,
                     const dnnl_exec_arg_t *args, dnnl_memory_t scratch)
{
  Step step = { prim, nargs, { { 0 } } };

  memcpy(step.args, args, nargs * sizeof *args);
  if (scratch)
    step.args[step.nargs++] = (dnnl_exec_arg_t) { DNNL_ARG_SCRATCHPAD,
                                                  scratch };
  g_array_append_val(c->plan->steps, step);
}

/* The step's scratchpad memory, bound to the shared buffer later. */
static bool scratch_for(Ctx *c, dnnl_primitive_desc_t pd,
                        dnnl_memory_t *mem, GError **error)
{
  const dnnl_memory_desc_t *md =
      dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  gsize size = md ? dnnl_memory_desc_get_size(md) : 0;

  *mem = NULL;
  if (size == 0)
    return true;
  c->plan->scratch_size = MAX(c->plan->scratch_size, size);
  *mem = memory_new(c, md, NULL, error);
  if (*mem)
    g_ptr_array_add(c->plan->scratch_mems, *mem);
  return *mem != NULL;
}

/* Creates the primitive of pd (destroying pd) and appends it. */
static bool add_pd_step(Ctx *c, dnnl_primitive_desc_t pd, int nargs,
                        const dnnl_exec_arg_t *args, GError **error)
{
  dnnl_primitive_t prim = NULL;
  dnnl_memory_t scratch = NULL;
  dnnl_status_t st = dnnl_primitive_create(&prim, pd);

  if (st == dnnl_success && !scratch_for(c, pd, &scratch, error)) {
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    return false;
  }
  if (aapi_debug_enabled(AAPI_DEBUG_NN)) {
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    g_message("nn: step %u uses %s", c->plan->steps->len,
              impl ? impl : "?");
  }
  dnnl_primitive_desc_destroy(pd);
  if (!dnnl_ok(st, "primitive", error))
    return false;
  add_step(c, prim, nargs, args, scratch);
  return true;
}

static bool reorder_pd(Ctx *c, const dnnl_memory_desc_t *from,
                       const dnnl_memory_desc_t *to,
                       const_dnnl_primitive_attr_t attr,
                       dnnl_primitive_desc_t *pd, GError **error)
{
  dnnl_engine_t engine = c->runner->engine;

  return dnnl_ok(dnnl_reorder_primitive_desc_create(pd, from, engine, to,
                                                    engine, attr),
                 "reorder", error);
}

/* Brings x into layout (and type) want with a reorder step, scaling by
 * attr's output scale when given; nothing when x already is so. */
static bool act_as_attr(Ctx *c, Act *x, const dnnl_memory_desc_t *want,
                        const_dnnl_primitive_attr_t attr, GError **error)
{
  dnnl_primitive_desc_t pd = NULL;
  Act y;

  if (attr == NULL && dnnl_memory_desc_equal(&x->md, want))
    return true;
  if (!reorder_pd(c, &x->md, want, attr ? attr : c->runner->attr, &pd,
                  error) ||
      !act_new(c, want, &y, error)) {
    dnnl_primitive_desc_destroy(pd);
    return false;
  }
  const dnnl_exec_arg_t args[] = { { DNNL_ARG_FROM, x->mem },
                                   { DNNL_ARG_TO, y.mem } };
  if (!add_pd_step(c, pd, 2, args, error))
    return false;
  act_release(c, x);
  *x = y;
  return true;
}

static bool act_as(Ctx *c, Act *x, const dnnl_memory_desc_t *want,
                   GError **error)
{
  return act_as_attr(c, x, want, NULL, error);
}

/* Runs a reorder now: for weights, once per plan; attr may scale. */
static bool reorder_now_attr(Ctx *c, const dnnl_memory_desc_t *from_md,
                             const void *from,
                             const dnnl_memory_desc_t *to_md, void *to,
                             const_dnnl_primitive_attr_t attr,
                             GError **error)
{
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_t prim = NULL;
  dnnl_memory_t src = memory_new(c, from_md, (void *) from, error);
  dnnl_memory_t dst = src ? memory_new(c, to_md, to, error) : NULL;

  if (dst == NULL || !reorder_pd(c, from_md, to_md, attr, &pd, error))
    return false;
  dnnl_status_t st = dnnl_primitive_create(&prim, pd);
  dnnl_primitive_desc_destroy(pd);
  if (!dnnl_ok(st, "reorder primitive", error))
    return false;
  const dnnl_exec_arg_t args[] = { { DNNL_ARG_FROM, src },
                                   { DNNL_ARG_TO, dst } };
  st = dnnl_primitive_execute(prim, c->runner->stream, 2, args);
  if (st == dnnl_success)
    st = dnnl_stream_wait(c->runner->stream);
  dnnl_primitive_destroy(prim);
  return dnnl_ok(st, "weight reorder", error);
}

static void md_plain(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t d,
                     dnnl_format_tag_t tag)
{
  dnnl_memory_desc_init_by_tag(md, ndims, d, dnnl_f32, tag);
}

/* The weights of pd, reordered from PyTorch's layout (user_tag); d are
 * the stored dims, of which input channels [ic_off, ic_off + ic) are
 * used when want_ic is less than the stored count. */
static dnnl_memory_t weights_for(Ctx *c, dnnl_primitive_desc_t pd,
                                 const float *data, const dnnl_dims_t d,
                                 dnnl_format_tag_t user_tag, int ic_off,
                                 const_dnnl_primitive_attr_t attr,
                                 GError **error)
{
  const dnnl_memory_desc_t *want =
      dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  dnnl_memory_desc_t user, part;
  const dnnl_dims_t offsets = { 0, ic_off, 0, 0 };

  md_plain(&user, 4, d, user_tag);
  if (!dnnl_ok(dnnl_memory_desc_init_submemory(&part, &user, want->dims,
                                               offsets), "weights", error))
    return NULL;
  /* oneDNN's reorder into Winograd weights reads dense layouts only: a
   * part of the input channels is made dense first. */
  if (want->format_kind == dnnl_format_kind_wino &&
      !dnnl_memory_desc_equal(&part, &user)) {
    dnnl_memory_desc_t dense;
    md_plain(&dense, 4, want->dims, user_tag);
    void *copy = owned_alloc(c, dnnl_memory_desc_get_size(&dense));
    if (!reorder_now_attr(c, &part, data, &dense, copy, NULL, error))
      return NULL;
    part = dense;
    data = copy;
  }
  void *ptr = owned_alloc(c, dnnl_memory_desc_get_size(want));
  if (!reorder_now_attr(c, &part, data, want, ptr, attr, error))
    return NULL;
  return memory_new(c, want, ptr, error);
}

/* Eval-mode batch norm as y = x * scale + shift per channel. */
static void bn_factors(Ctx *c, const char *prefix, int ch, float **scale,
                       float **shift)
{
  const float *g = nn_model_floats(c->model, "%s.weight", prefix);
  const float *b = nn_model_floats(c->model, "%s.bias", prefix);
  const float *mean = nn_model_floats(c->model, "%s.running_mean", prefix);
  const float *var = nn_model_floats(c->model, "%s.running_var", prefix);

  *scale = owned_alloc(c, ch * sizeof(float));
  *shift = owned_alloc(c, ch * sizeof(float));
  for (int i = 0; i < ch; i++) {
    (*scale)[i] = g[i] / sqrtf(var[i] + NN_BN_EPS);
    (*shift)[i] = b[i] - mean[i] * (*scale)[i];
  }
}

typedef struct {
  const char *name;     /* e.g. "down_path.0.block.0" */
  const char *bn;       /* batch norm after the ReLU, or NULL */
  int ic, oc, k, pad;
  bool relu;
  /* A convolution over part of a concatenation: input channels
   * [ic_off, ic_off + ic) of a weight with ic_total of them. */
  int ic_off, ic_total;
  bool no_bias;
  Act *accumulate;      /* add the result into this activation */
} ConvSpec;

/* ReLU, then the batch norm's multiply and add. */
static dnnl_primitive_attr_t conv_attr(Ctx *c, const ConvSpec *s,
                                       bool fuse_bn,
                                       dnnl_memory_desc_t *bn_md)
{
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t ops = NULL;
  const dnnl_dims_t d = { 1, s->oc, 1, 1 };

  dnnl_primitive_attr_clone(&attr, c->runner->attr);
  dnnl_post_ops_create(&ops);
  if (s->accumulate)
    dnnl_post_ops_append_sum(ops, 1.0f);
  if (s->relu)
    dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0, 0);
  if (s->bn && fuse_bn) {
    md_plain(bn_md, 4, d, dnnl_abcd);
    dnnl_post_ops_append_binary(ops, dnnl_binary_mul, bn_md);
    dnnl_post_ops_append_binary(ops, dnnl_binary_add, bn_md);
  }
  dnnl_primitive_attr_set_post_ops(attr, ops);
  dnnl_post_ops_destroy(ops);
  return attr;
}

/* The convolution of s over x; src_type bf16 makes it a bf16 one (bf16
 * weights, float32 sums and output), u8 or s8 an int8 one (s8 weights)
 * whose accumulators out_scales turn into float32 per output channel.
 * A Winograd one leaves the batch norm to a step of its own (plan_bn). */
static bool conv_pd(Ctx *c, const ConvSpec *s, const Act *x,
                    dnnl_data_type_t src_type, const float *out_scales,
                    dnnl_alg_kind_t alg, dnnl_primitive_desc_t *pd,
                    GError **error)
{
  const dnnl_dims_t *xd = &x->md.dims;
  const dnnl_dims_t sd = { (*xd)[0], s->ic, (*xd)[2], (*xd)[3] };
  const dnnl_dims_t wd = { s->oc, s->ic, s->k, s->k };
  const dnnl_dims_t bd = { s->oc };
  const dnnl_dims_t dd = { (*xd)[0], s->oc, (*xd)[2] + 2 * s->pad - s->k + 1,
                           (*xd)[3] + 2 * s->pad - s->k + 1 };
  const dnnl_dims_t strides = { 1, 1 }, pad = { s->pad, s->pad };
  dnnl_memory_desc_t src, wei, bias, dst, bn_md;
  dnnl_convolution_desc_t desc;

  md_plain(&src, 4, sd, dnnl_format_tag_any);
  md_plain(&wei, 4, wd, dnnl_format_tag_any);
  md_plain(&bias, 1, bd, dnnl_x);
  md_plain(&dst, 4, dd, dnnl_format_tag_any);
  if (src_type != dnnl_f32) {
    dnnl_memory_desc_init_by_tag(&src, 4, sd, src_type, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&wei, 4, wd,
                                 src_type == dnnl_bf16 ? dnnl_bf16 : dnnl_s8,
                                 dnnl_format_tag_any);
  }
  if (s->accumulate)
    dst = s->accumulate->md;
  if (!dnnl_ok(dnnl_convolution_forward_desc_init(
                   &desc, dnnl_forward_inference, alg,
                   &src, &wei, s->no_bias ? NULL : &bias, &dst, strides,
                   pad, pad),
               "convolution", error))
    return false;
  dnnl_primitive_attr_t attr = conv_attr(
      c, s, alg != dnnl_convolution_winograd, &bn_md);
  if (out_scales != NULL)
    dnnl_primitive_attr_set_output_scales(attr, s->oc, 1 << 1, out_scales);
  dnnl_status_t st = dnnl_primitive_desc_create(pd, &desc, attr,
                                                c->runner->engine, NULL);
  dnnl_primitive_attr_destroy(attr);
  return dnnl_ok(st, "convolution", error);
}

/* The BN factors as binary post-op arguments, after index first. */
static bool bn_args(Ctx *c, const ConvSpec *s, int first,
                    dnnl_exec_arg_t *args, int *nargs, GError **error)
{
  const dnnl_dims_t d1 = { 1, s->oc, 1, 1 };
  dnnl_memory_desc_t bn_md;
  float *scale, *shift;

  bn_factors(c, s->bn, s->oc, &scale, &shift);
  md_plain(&bn_md, 4, d1, dnnl_abcd);
  dnnl_memory_t ms = memory_new(c, &bn_md, scale, error);
  dnnl_memory_t mt = ms ? memory_new(c, &bn_md, shift, error) : NULL;
  if (mt == NULL)
    return false;
  args[(*nargs)++] = (dnnl_exec_arg_t) {
    DNNL_ARG_ATTR_MULTIPLE_POST_OP(first) | DNNL_ARG_SRC_1, ms };
  args[(*nargs)++] = (dnnl_exec_arg_t) {
    DNNL_ARG_ATTR_MULTIPLE_POST_OP(first + 1) | DNNL_ARG_SRC_1, mt };
  return true;
}

/* The activation a convolution writes: a new one, or the one it adds
 * into. */
static bool conv_dst(Ctx *c, const ConvSpec *s, dnnl_primitive_desc_t pd,
                     Act *y, GError **error)
{
  if (s->accumulate) {
    *y = *s->accumulate;
    return true;
  }
  return act_new(c, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0),
                 y, error);
}

/* Notes where a calibrating forward finds the input of 3x3 convolution
 * q: in x, before the step about to be added runs. */
static void probe_add(Ctx *c, int q, const Act *x)
{
  Probe p = { c->plan->steps->len, q, x->mem,
              dnnl_memory_desc_get_size(&x->md) };

  g_array_append_val(c->plan->probes, p);
}

/*
 * Symmetric scales of an int8 convolution: the input's per tensor from
 * its calibrated range (u8 when it never goes below zero, as after a
 * ReLU, else s8), the weights' per output channel from their largest
 * magnitude over the input channels s uses.  out[k] = in * w[k] turns
 * the integer sums back into the float32 the next layers expect.
 */
typedef struct {
  dnnl_data_type_t src_type;
  float in;
  float *w, *w_inv, *out;   /* oc each */
} QuantScales;

static bool quant_scales(Ctx *c, const ConvSpec *s, int q, const float *w,
                         QuantScales *qs, GError **error)
{
  GArray *ranges = c->runner->ranges;
  int ic_total = s->ic_total ? s->ic_total : s->ic, kk = s->k * s->k;

  if (ranges == NULL || (guint) (2 * q + 1) >= ranges->len) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "int8 needs a calibration: no range for convolution %d", q);
    return false;
  }
  float low = g_array_index(ranges, float, 2 * q);
  float high = g_array_index(ranges, float, 2 * q + 1);
  float top = MAX(high, -low);
  qs->src_type = low < 0 ? dnnl_s8 : dnnl_u8;
  qs->in = (top > 0 ? top : 1.0f) / (low < 0 ? 127.0f : 255.0f);
  qs->w = owned_alloc(c, 3 * s->oc * sizeof(float));
  qs->w_inv = qs->w + s->oc;
  qs->out = qs->w + 2 * s->oc;
  for (int k = 0; k < s->oc; k++) {
    const float *row = w + ((gsize) k * ic_total + s->ic_off) * kk;
    float big = 0;
    for (int i = 0; i < s->ic * kk; i++)
      big = MAX(big, fabsf(row[i]));
    qs->w[k] = big > 0 ? big / 63.0f : 1.0f;
    qs->w_inv[k] = 1.0f / qs->w[k];
    qs->out[k] = qs->in * qs->w[k];
  }
  return true;
}

/* An attribute scaling a reorder's output by scale (count of them along
 * mask); for a plan step (the plan provides scratchpads) or, with step
 * false, for a reorder run at once with its own scratchpad. */
static dnnl_primitive_attr_t scale_attr(Ctx *c, bool step, int count,
                                        int mask, const float *scale)
{
  dnnl_primitive_attr_t attr = NULL;

  if (step)
    dnnl_primitive_attr_clone(&attr, c->runner->attr);
  else
    dnnl_primitive_attr_create(&attr);
  dnnl_primitive_attr_set_output_scales(attr, count, mask, scale);
  return attr;
}

/* The weights and bias of s for pd: float32 as stored, or quantized by
 * qs (the bias in the integer sums' units, which oneDNN adds before the
 * output scale). */
static bool conv_params(Ctx *c, const ConvSpec *s, dnnl_primitive_desc_t pd,
                        const QuantScales *qs, dnnl_memory_t *wmem,
                        dnnl_memory_t *bmem, GError **error)
{
  const dnnl_dims_t wd = { s->oc, s->ic_total ? s->ic_total : s->ic, s->k,
                           s->k };
  const float *w = nn_model_floats(c->model, "%s.weight", s->name);
  const float *b = nn_model_floats(c->model, "%s.bias", s->name);
  dnnl_primitive_attr_t attr = qs ? scale_attr(c, false, s->oc, 1, qs->w_inv)
                                  : NULL;
  dnnl_memory_desc_t bias_md;

  *wmem = weights_for(c, pd, w, wd, dnnl_oihw, s->ic_off, attr, error);
  if (attr)
    dnnl_primitive_attr_destroy(attr);
  *bmem = NULL;
  if (*wmem == NULL || s->no_bias)
    return *wmem != NULL;
  if (qs) {
    float *scaled = owned_alloc(c, s->oc * sizeof(float));
    for (int k = 0; k < s->oc; k++)
      scaled[k] = b[k] / qs->out[k];
    b = scaled;
  }
  md_plain(&bias_md, 1, &wd[0], dnnl_x);
  *bmem = memory_new(c, &bias_md, (void *) b, error);
  return *bmem != NULL;
}

/* Brings x into the convolution's source layout: quantized by qs for an
 * int8 one. */
static bool conv_src(Ctx *c, dnnl_primitive_desc_t pd, const QuantScales *qs,
                     Act *x, GError **error)
{
  const dnnl_memory_desc_t *want =
      dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);

  if (qs == NULL)
    return act_as(c, x, want, error);
  float inv = 1.0f / qs->in;
  dnnl_primitive_attr_t attr = scale_attr(c, true, 1, 0, &inv);
  bool ok = act_as_attr(c, x, want, attr, error);
  dnnl_primitive_attr_destroy(attr);
  return ok;
}

/* The {1, oc, 1, 1} layout of a per-channel operand for an activation
 * of layout md: blocked by channels as md is, so that oneDNN's binary
 * primitive takes its JIT kernel (with a plain operand it falls back to
 * its reference loop). */
static void channel_md(const dnnl_memory_desc_t *md, int oc,
                       dnnl_memory_desc_t *out)
{
  const dnnl_dims_t d = { 1, oc, 1, 1 };
  const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
  dnnl_format_tag_t tag = dnnl_abcd;

  if (md->format_kind == dnnl_blocked && b->inner_nblks == 1 &&
      b->inner_idxs[0] == 1 && b->inner_blks[0] == 8)
    tag = dnnl_aBcd8b;
  else if (md->format_kind == dnnl_blocked && b->inner_nblks == 1 &&
           b->inner_idxs[0] == 1 && b->inner_blks[0] == 16)
    tag = dnnl_aBcd16b;
  md_plain(out, 4, d, tag);
}

/* oc per-channel values as a binary operand for activation y: laid out
 * by channel_md, owned by the plan. */
static dnnl_memory_t channel_operand(Ctx *c, const float *values, int oc,
                                     const Act *y, dnnl_memory_desc_t *md,
                                     GError **error)
{
  const dnnl_dims_t d = { 1, oc, 1, 1 };
  dnnl_memory_desc_t user;

  md_plain(&user, 4, d, dnnl_abcd);
  channel_md(&y->md, oc, md);
  void *ptr = owned_alloc(c, dnnl_memory_desc_get_size(md));
  if (!reorder_now_attr(c, &user, values, md, ptr, NULL, error))
    return NULL;
  return memory_new(c, md, ptr, error);
}

/* Adds the per-channel bias b to y in place, as its own step. */
static bool plan_add_bias(Ctx *c, const float *b, int oc, Act *y,
                          GError **error)
{
  dnnl_memory_desc_t bmd;
  dnnl_binary_desc_t desc;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_memory_t bmem = channel_operand(c, b, oc, y, &bmd, error);

  if (bmem == NULL ||
      !dnnl_ok(dnnl_binary_desc_init(&desc, dnnl_binary_add, &y->md, &bmd,
                                     &y->md), "bias", error) ||
      !dnnl_ok(dnnl_primitive_desc_create(&pd, &desc, c->runner->attr,
                                          c->runner->engine, NULL),
               "bias", error))
    return false;
  const dnnl_exec_arg_t args[] = {
    { DNNL_ARG_SRC_0, y->mem }, { DNNL_ARG_SRC_1, bmem },
    { DNNL_ARG_DST, y->mem } };
  return add_pd_step(c, pd, 3, args, error);
}

/* Batch norm bn on y in place, as its own step: a per-channel multiply
 * with the add as its post-op. */
static bool plan_bn(Ctx *c, const char *bn, int oc, Act *y, GError **error)
{
  dnnl_memory_desc_t bmd;
  dnnl_binary_desc_t desc;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t ops = NULL;
  float *scale, *shift;

  bn_factors(c, bn, oc, &scale, &shift);
  dnnl_memory_t ms = channel_operand(c, scale, oc, y, &bmd, error);
  dnnl_memory_t mt = ms ? channel_operand(c, shift, oc, y, &bmd, error)
                        : NULL;
  if (mt == NULL ||
      !dnnl_ok(dnnl_binary_desc_init(&desc, dnnl_binary_mul, &y->md, &bmd,
                                     &y->md), "batch norm", error))
    return false;
  dnnl_primitive_attr_clone(&attr, c->runner->attr);
  dnnl_post_ops_create(&ops);
  dnnl_post_ops_append_binary(ops, dnnl_binary_add, &bmd);
  dnnl_primitive_attr_set_post_ops(attr, ops);
  dnnl_post_ops_destroy(ops);
  dnnl_status_t st = dnnl_primitive_desc_create(&pd, &desc, attr,
                                                c->runner->engine, NULL);
  dnnl_primitive_attr_destroy(attr);
  if (!dnnl_ok(st, "batch norm", error))
    return false;
  const dnnl_exec_arg_t args[] = {
    { DNNL_ARG_SRC_0, y->mem }, { DNNL_ARG_SRC_1, ms },
    { DNNL_ARG_DST, y->mem },
    { DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, mt } };
  return add_pd_step(c, pd, 4, args, error);
}

/*
 * oneDNN's Winograd kernels (F(4x4, 3x3), on AVX-512 machines only) do a
 * 3x3 convolution of 32 or more input and output channels in a half to a
 * third of the direct kernel's time; with fewer channels they are slower.
 * Their sums round differently from the direct ones (the logits move by
 * about 1e-6), which AAPI_NN_WINOGRAD=0 avoids.  They take the sum and
 * ReLU post-ops but not the batch norm's binary ones, so a batch norm
 * follows as a step of its own (plan_bn).
 */
static bool winograd_wanted(Ctx *c, const ConvSpec *s, bool reduced)
{
  return c->runner->winograd && !reduced && s->k == 3 && s->ic >= 32 &&
         s->oc >= 32;
}

/* Convolution of x (+ReLU, +BN) into a new activation (or added into
 * s->accumulate); x dies.  3x3 convolutions are numbered in network
 * order: calibration records their inputs, int8 quantizes them. */
static bool plan_conv(Ctx *c, const ConvSpec *s, Act *x, GError **error)
{
  int q = s->k == 3 ? c->q++ : -1;
  bool int8 = q >= 0 && c->runner->precision == NN_PRECISION_INT8;
  bool bf16 = q >= 0 && c->runner->precision == NN_PRECISION_BF16;
  dnnl_data_type_t src_type = bf16 ? dnnl_bf16 : dnnl_f32;
  const float *out_scales = NULL;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_memory_t wmem = NULL, bmem = NULL;
  QuantScales qs;
  Act y;

  if (int8) {
    if (!quant_scales(c, s, q,
                      nn_model_floats(c->model, "%s.weight", s->name), &qs,
                      error))
      return false;
    src_type = qs.src_type;
    out_scales = qs.out;
  }
  /* Where oneDNN has no Winograd kernel (AVX2), the direct one runs. */
  bool wino = winograd_wanted(c, s, int8 || bf16) &&
              conv_pd(c, s, x, src_type, out_scales,
                      dnnl_convolution_winograd, &pd, NULL);
  if (!wino && !conv_pd(c, s, x, src_type, out_scales,
                        dnnl_convolution_direct, &pd, error))
    return false;
  if (!conv_params(c, s, pd, int8 ? &qs : NULL, &wmem, &bmem, error) ||
      !conv_src(c, pd, int8 ? &qs : NULL, x, error) ||
      !conv_dst(c, s, pd, &y, error))
    goto fail;

  dnnl_exec_arg_t args[NN_MAX_ARGS] = {
    { DNNL_ARG_SRC, x->mem }, { DNNL_ARG_WEIGHTS, wmem },
    { DNNL_ARG_DST, y.mem } };
  int nargs = 3;
  if (bmem)
    args[nargs++] = (dnnl_exec_arg_t) { DNNL_ARG_BIAS, bmem };
  int first = (s->accumulate ? 1 : 0) + (s->relu ? 1 : 0);
  if (s->bn && !wino && !bn_args(c, s, first, args, &nargs, error))
    goto fail;
  if (q >= 0 && !int8 && !bf16)
    probe_add(c, q, x);
  act_release(c, x);
  *x = y;
  if (!add_pd_step(c, pd, nargs, args, error))
    return false;
  return !(s->bn && wino) || plan_bn(c, s->bn, s->oc, x, error);

fail:
  dnnl_primitive_desc_destroy(pd);
  return false;
}

/* One 3x3 convolution of a block (+ReLU, +batch norm). */
static bool plan_block_conv(Ctx *c, const char *prefix, int conv, int ic,
                            int oc, Act *x, GError **error)
{
  const NnHparams *h = nn_model_get_hparams(c->model);
  g_autofree char *name = g_strdup_printf(
      "%s.block.%d", prefix, nn_block_index(h, conv, false));
  g_autofree char *bn = h->batch_norm ? g_strdup_printf(
      "%s.block.%d", prefix, nn_block_index(h, conv, true)) : NULL;
  ConvSpec s = { name, bn, ic, oc, 3, h->padding ? 1 : 0, true, 0, 0,
                 false, NULL };

  return plan_conv(c, &s, x, error);
}

/* Two 3x3 convolutions with ReLU (and batch norm) of one level. */
static bool plan_block(Ctx *c, const char *prefix, int ic, int oc, Act *x,
                       GError **error)
{
  return plan_block_conv(c, prefix, 0, ic, oc, x, error) &&
         plan_block_conv(c, prefix, 1, oc, oc, x, error);
}

static bool plan_block_second(Ctx *c, const char *prefix, int oc, Act *x,
                              GError **error)
{
  return plan_block_conv(c, prefix, 1, oc, oc, x, error);
}

/* 2x2 average pooling, stride 2, floor: a new activation; x stays. */
static bool plan_pool(Ctx *c, const Act *x, Act *y, GError **error)
{
  const dnnl_dims_t *xd = &x->md.dims;
  const dnnl_dims_t dd = { (*xd)[0], (*xd)[1], (*xd)[2] / 2, (*xd)[3] / 2 };
  const dnnl_dims_t k = { 2, 2 }, zero = { 0, 0 };
  dnnl_memory_desc_t dst;
  dnnl_pooling_desc_t desc;
  dnnl_primitive_desc_t pd = NULL;

  md_plain(&dst, 4, dd, dnnl_format_tag_any);
  if (!dnnl_ok(dnnl_pooling_forward_desc_init(
                   &desc, dnnl_forward_inference,
                   dnnl_pooling_avg_exclude_padding, &x->md, &dst, k, k,
                   zero, zero), "pooling", error) ||
      !dnnl_ok(dnnl_primitive_desc_create(&pd, &desc, c->runner->attr,
                                          c->runner->engine, NULL),
               "pooling", error))
    return false;
  if (!act_new(c, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0),
               y, error)) {
    dnnl_primitive_desc_destroy(pd);
    return false;
  }
  const dnnl_exec_arg_t args[] = { { DNNL_ARG_SRC, x->mem },
                                   { DNNL_ARG_DST, y->mem } };
  return add_pd_step(c, pd, 2, args, error);
}

/*
 * 2x2 stride-2 transposed convolution (PyTorch stores its weights as
 * [in, out, kh, kw]), its bias added by a step of its own: oneDNN 2.6 adds a deconvolution's bias in a reference loop over
 * the whole output, which took six times the deconvolution itself at
 * 256 px (17 ms against 3 ms for 4 x 32 -> 16 channels); the sum and
 * its rounding are the same either way.
 */
static bool plan_upconv(Ctx *c, const char *prefix, int ic, int oc, Act *x,
                        GError **error)
{
  const dnnl_dims_t *xd = &x->md.dims;
  const dnnl_dims_t sd = { (*xd)[0], ic, (*xd)[2], (*xd)[3] };
  const dnnl_dims_t wd = { oc, ic, 2, 2 };
  const dnnl_dims_t dd = { (*xd)[0], oc, 2 * (*xd)[2], 2 * (*xd)[3] };
  const dnnl_dims_t two = { 2, 2 }, zero = { 0, 0 };
  dnnl_memory_desc_t src, wei, dst;
  dnnl_deconvolution_desc_t desc;
  dnnl_primitive_desc_t pd = NULL;
  Act y;

  md_plain(&src, 4, sd, dnnl_format_tag_any);
  md_plain(&wei, 4, wd, dnnl_format_tag_any);
  md_plain(&dst, 4, dd, dnnl_format_tag_any);
  if (!dnnl_ok(dnnl_deconvolution_forward_desc_init(
                   &desc, dnnl_forward_inference,
                   dnnl_deconvolution_direct, &src, &wei, NULL, &dst, two,
                   zero, zero), "deconvolution", error) ||
      !dnnl_ok(dnnl_primitive_desc_create(&pd, &desc, c->runner->attr,
                                          c->runner->engine, NULL),
               "deconvolution", error))
    return false;

  const float *w = nn_model_floats(c->model, "%s.up.weight", prefix);
  const float *b = nn_model_floats(c->model, "%s.up.bias", prefix);
  dnnl_memory_t wmem = weights_for(c, pd, w, wd, dnnl_iohw, 0, NULL,
                                   error);
  if (wmem == NULL ||
      !act_as(c, x, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
              error) ||
      !act_new(c, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0),
               &y, error)) {
    dnnl_primitive_desc_destroy(pd);
    return false;
  }
  const dnnl_exec_arg_t args[] = {
    { DNNL_ARG_SRC, x->mem }, { DNNL_ARG_WEIGHTS, wmem },
    { DNNL_ARG_DST, y.mem } };
  act_release(c, x);
  *x = y;
  return add_pd_step(c, pd, 3, args, error) &&
         plan_add_bias(c, b, oc, x, error);
}

/* Bilinear x2 with half-pixel centres (PyTorch's align_corners=False;
 * oneDNN's linear resampling clamps at the borders the same way). */
static bool plan_resample(Ctx *c, Act *x, GError **error)
{
  const dnnl_dims_t *xd = &x->md.dims;
  const dnnl_dims_t dd = { (*xd)[0], (*xd)[1], 2 * (*xd)[2], 2 * (*xd)[3] };
  const float factors[2] = { 2.0f, 2.0f };
  dnnl_memory_desc_t dst;
  dnnl_resampling_desc_t desc;
  dnnl_primitive_desc_t pd = NULL;
  Act y;

  md_plain(&dst, 4, dd, dnnl_format_tag_any);
  if (!dnnl_ok(dnnl_resampling_forward_desc_init(
                   &desc, dnnl_forward_inference, dnnl_resampling_linear,
                   factors, &x->md, &dst), "resampling", error) ||
      !dnnl_ok(dnnl_primitive_desc_create(&pd, &desc, c->runner->attr,
                                          c->runner->engine, NULL),
               "resampling", error))
    return false;
  if (!act_new(c, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0),
               &y, error)) {
    dnnl_primitive_desc_destroy(pd);
    return false;
  }
  const dnnl_exec_arg_t args[] = { { DNNL_ARG_SRC, x->mem },
                                   { DNNL_ARG_DST, y.mem } };
  act_release(c, x);
  *x = y;
  return add_pd_step(c, pd, 2, args, error);
}

/* The layout tag of md among those oneDNN picks for activations. */
static dnnl_format_tag_t md_tag(const dnnl_memory_desc_t *md)
{
  static const dnnl_format_tag_t tags[] = { dnnl_aBcd8b, dnnl_aBcd16b,
                                            dnnl_acdb, dnnl_abcd };
  dnnl_memory_desc_t probe;

  for (guint i = 0; i < G_N_ELEMENTS(tags); i++) {
    md_plain(&probe, 4, md->dims, tags[i]);
    if (dnnl_memory_desc_equal(&probe, md))
      return tags[i];
  }
  return dnnl_abcd;
}

/* Centre crop of the skip to th x tw, as a copy in the skip's layout. */
static bool plan_crop(Ctx *c, const Act *skip, int th, int tw, Act *y,
                      GError **error)
{
  const dnnl_dims_t *sd = &skip->md.dims;
  const dnnl_dims_t dims = { (*sd)[0], (*sd)[1], th, tw };
  const dnnl_dims_t offsets = { 0, 0, ((*sd)[2] - th) / 2,
                                ((*sd)[3] - tw) / 2 };
  dnnl_memory_desc_t sub, dst;
  dnnl_primitive_desc_t pd = NULL;

  if (!dnnl_ok(dnnl_memory_desc_init_submemory(&sub, &skip->md, dims,
                                               offsets), "crop", error))
    return false;
  md_plain(&dst, 4, dims, md_tag(&skip->md));
  dnnl_memory_t src = memory_new(c, &sub, NULL, error);
  if (src != NULL)
    slot_bind(c->plan, src, skip->buf);
  if (src == NULL ||
      !reorder_pd(c, &sub, &dst, c->runner->attr, &pd, error) ||
      !act_new(c, &dst, y, error)) {
    dnnl_primitive_desc_destroy(pd);
    return false;
  }
  const dnnl_exec_arg_t args[] = { { DNNL_ARG_FROM, src },
                                   { DNNL_ARG_TO, y->mem } };
  return add_pd_step(c, pd, 2, args, error);
}

/* The first convolution of an up block reads torch.cat([up, skip], 1):
 * it runs as two convolutions over the two parts, the second adding into
 * the first's output before ReLU and batch norm, so no concatenated copy
 * is made. */
static bool plan_joined_conv(Ctx *c, const char *block, int oc, Act *up,
                             Act *skip, GError **error)
{
  const NnHparams *h = nn_model_get_hparams(c->model);
  g_autofree char *name = g_strdup_printf(
      "%s.block.%d", block, nn_block_index(h, 0, false));
  g_autofree char *bn = h->batch_norm ? g_strdup_printf(
      "%s.block.%d", block, nn_block_index(h, 0, true)) : NULL;
  int pad = h->padding ? 1 : 0;
  ConvSpec first = { name, NULL, oc, oc, 3, pad, false, 0, 2 * oc, false,
                     NULL };

  if (!plan_conv(c, &first, up, error))
    return false;
  ConvSpec second = { name, bn, oc, oc, 3, pad, true, oc, 2 * oc, true,
                      up };
  return plan_conv(c, &second, skip, error);
}

/* One level going up: up-sample x, crop the skip, concatenate, convs. */
static bool plan_up_level(Ctx *c, int j, Act *x, Act *skip, GError **error)
{
  const NnHparams *h = nn_model_get_hparams(c->model);
  int level = h->depth - 2 - j;
  int ic = nn_level_channels(h, level + 1), oc = nn_level_channels(h, level);
  g_autofree char *prefix = g_strdup_printf("up_path.%d", j);
  g_autofree char *up1 = g_strdup_printf("%s.up.1", prefix);
  g_autofree char *block = g_strdup_printf("%s.conv_block", prefix);

  if (h->up_mode == NN_UP_UPCONV) {
    if (!plan_upconv(c, prefix, ic, oc, x, error))
      return false;
  } else {
    ConvSpec s = { up1, NULL, ic, oc, 1, 0, false, 0, 0, false, NULL };
    if (!plan_resample(c, x, error) || !plan_conv(c, &s, x, error))
      return false;
  }
  if (skip->md.dims[2] != x->md.dims[2] ||
      skip->md.dims[3] != x->md.dims[3]) {
    Act cropped;
    if (!plan_crop(c, skip, x->md.dims[2], x->md.dims[3], &cropped, error))
      return false;
    act_release(c, skip);
    *skip = cropped;
  }
  if (!plan_joined_conv(c, block, oc, x, skip, error))
    return false;
  return plan_block_second(c, block, oc, x, error);
}

/* The whole net, from the user's NCHW input to the NCHW logits. */
static bool plan_net(Ctx *c, int out_h, int out_w, GError **error)
{
  const NnHparams *h = nn_model_get_hparams(c->model);
  Plan *p = c->plan;
  const dnnl_dims_t in = { p->n, h->in_channels, p->h, p->w };
  const dnnl_dims_t out = { p->n, h->n_classes, out_h, out_w };
  Act x = { .buf = -1 }, skips[NN_MAX_DEPTH];
  dnnl_memory_desc_t out_md;

  md_plain(&x.md, 4, in, dnnl_abcd);
  if ((x.mem = p->input = memory_new(c, &x.md, NULL, error)) == NULL)
    return false;
  for (int i = 0; i < h->depth; i++) {
    g_autofree char *prefix = g_strdup_printf("down_path.%d", i);
    int ic = i ? nn_level_channels(h, i - 1) : h->in_channels;
    if (!plan_block(c, prefix, ic, nn_level_channels(h, i), &x, error))
      return false;
    if (i == h->depth - 1)
      break;
    /* The block's output is kept as the skip; pooling reads it. */
    skips[i] = x;
    if (!plan_pool(c, &skips[i], &x, error))
      return false;
  }
  for (int j = 0; j < h->depth - 1; j++)
    if (!plan_up_level(c, j, &x, &skips[h->depth - 2 - j], error))
      return false;

  ConvSpec last = { "last", NULL, nn_level_channels(h, 0), h->n_classes,
                    1, 0, false, 0, 0, false, NULL };
  if (!plan_conv(c, &last, &x, error))
    return false;
  md_plain(&out_md, 4, out, dnnl_abcd);
  if (!act_as(c, &x, &out_md, error))
    return false;
  /* The last step writes the caller's buffer instead of the pool's. */
  p->output = x.mem;
  act_release(c, &x);
  slots_layout(p);
  return true;
}

/* Sizes through the net as PyTorch computes them; false when a level
 * would be empty or a skip smaller than the map it joins. */
bool nn_output_size(const NnHparams *hparams, int h, int w, int *out_h,
                    int *out_w, GError **error)
{
  int shrink = hparams->padding ? 0 : 4;
  int sh[NN_MAX_DEPTH], sw[NN_MAX_DEPTH];
  int ih = h, iw = w;

  if (h < 1 || w < 1 || h > NN_MAX_SIDE || w > NN_MAX_SIDE ||
      hparams->depth < 1 || hparams->depth > NN_MAX_DEPTH)
    goto small;
  for (int i = 0; i < hparams->depth; i++) {
    h -= shrink;
    w -= shrink;
    if (h < 1 || w < 1)
      goto small;
    sh[i] = h;
    sw[i] = w;
    h /= 2;
    w /= 2;
  }
  /* Going up, each skip must be at least as large as the map it joins
   * (it is centre-cropped to it). */
  h = sh[hparams->depth - 1];
  w = sw[hparams->depth - 1];
  for (int i = hparams->depth - 2; i >= 0; i--) {
    if (2 * h > sh[i] || 2 * w > sw[i])
      goto small;
    h = 2 * h - shrink;
    w = 2 * w - shrink;
    if (h < 1 || w < 1)
      goto small;
  }
  *out_h = h;
  *out_w = w;
  return true;

small:
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
              "input %dx%d does not fit a depth-%d U-Net%s", ih, iw,
              hparams->depth, hparams->padding ? "" : " without padding");
  return false;
}

/* AAPI_NN_WINOGRAD: on unless set to a switch's off value; read by each
 * new runner, a bad value warned about once per process. */
static bool winograd_from_env(void)
{
  static gint warned;
  const char *text = g_getenv("AAPI_NN_WINOGRAD");
  g_autoptr(GError) error = NULL;
  bool on = true;

  if (text && *text && !aapi_parse_bool(text, &on, &error)) {
    if (g_atomic_int_compare_and_exchange(&warned, 0, 1))
      g_warning("AAPI_NN_WINOGRAD: %s; using Winograd kernels",
                error->message);
    on = true;
  }
  return on;
}

NnRunner *nn_runner_new(NnModel *model, GError **error)
{
  g_autoptr(NnRunner) runner = g_new0(NnRunner, 1);

  runner->model = nn_model_ref(model);
  runner->plans = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        plan_free);
  runner->ranges = g_array_new(FALSE, FALSE, sizeof(float));
  runner->winograd = winograd_from_env();
  if (!dnnl_ok(dnnl_primitive_attr_create(&runner->attr), "attr", error) ||
      !dnnl_ok(dnnl_primitive_attr_set_scratchpad_mode(
                   runner->attr, dnnl_scratchpad_mode_user), "attr",
               error) ||
      !dnnl_ok(dnnl_engine_create(&runner->engine, dnnl_cpu, 0),
               "engine", error) ||
      !dnnl_ok(dnnl_stream_create(&runner->stream, runner->engine,
                                  dnnl_stream_default_flags),
               "stream", error))
    return NULL;
  return g_steal_pointer(&runner);
}

void nn_runner_free(NnRunner *runner)
{
  if (runner == NULL)
    return;
  g_hash_table_unref(runner->plans);
  g_array_unref(runner->ranges);
  if (runner->stream)
    dnnl_stream_destroy(runner->stream);
  if (runner->engine)
    dnnl_engine_destroy(runner->engine);
  if (runner->attr)
    dnnl_primitive_attr_destroy(runner->attr);
  nn_model_unref(runner->model);
  g_free(runner);
}

NnModel *nn_runner_get_model(NnRunner *runner)
{
  return runner->model;
}

bool nn_runner_set_precision(NnRunner *runner, NnPrecision precision,
                             GError **error)
{
  if (precision == NN_PRECISION_INT8 && runner->ranges->len == 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "int8 needs a calibration first");
    return false;
  }
  /* oneDNN would emulate bf16 on other CPUs, slower than float32. */
  if (precision == NN_PRECISION_BF16 && !nn_bf16_available()) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_UNAVAILABLE,
                "this CPU has no bf16 arithmetic (AVX512-BF16 or AMX)");
    return false;
  }
  if (precision == NN_PRECISION_CALIBRATE)
    g_array_set_size(runner->ranges, 0);
  if (precision != runner->precision)
    g_hash_table_remove_all(runner->plans);
  runner->precision = precision;
  return true;
}

bool nn_bf16_available(void)
{
  dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();

  return (isa & dnnl_cpu_isa_avx512_core_bf16) ==
         dnnl_cpu_isa_avx512_core_bf16;
}

NnPrecision nn_runner_get_precision(NnRunner *runner)
{
  return runner->precision;
}

GArray *nn_runner_get_ranges(NnRunner *runner)
{
  GArray *copy = g_array_sized_new(FALSE, FALSE, sizeof(float),
                                   runner->ranges->len);

  g_array_append_vals(copy, runner->ranges->data, runner->ranges->len);
  return copy;
}

guint nn_model_range_count(const NnModel *model)
{
  const NnHparams *h = nn_model_get_hparams(model);

  return 2 * (guint) h->depth + 3 * (guint) (h->depth - 1);
}

bool nn_runner_set_ranges(NnRunner *runner, const GArray *ranges,
                          GError **error)
{
  guint want = 2 * nn_model_range_count(runner->model);

  if (ranges->len != want) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "a calibration of this model has %u (low, high) pairs, "
                "not %u values", want / 2, ranges->len);
    return false;
  }
  for (guint i = 0; i < ranges->len; i += 2) {
    float low = g_array_index(ranges, float, i);
    float high = g_array_index(ranges, float, i + 1);
    if (!isfinite(low) || !isfinite(high) || low > high) {
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                  "range %u is not a finite interval", i / 2);
      return false;
    }
  }
  g_array_set_size(runner->ranges, 0);
  g_array_append_vals(runner->ranges, ranges->data, ranges->len);
  g_hash_table_remove_all(runner->plans);
  return true;
}

/* The cached plan for this shape, built on first use. */
static Plan *runner_plan(NnRunner *runner, int n, int h, int w, int out_h,
                         int out_w, GError **error)
{
  g_autofree char *key = g_strdup_printf("%d,%d,%d", n, h, w);
  Plan *plan = g_hash_table_lookup(runner->plans, key);

  if (plan != NULL)
    return plan;
  /* A bounded cache: shapes beyond the limit start it afresh. */
  if (g_hash_table_size(runner->plans) >= NN_MAX_PLANS)
    g_hash_table_remove_all(runner->plans);

  gint64 start = g_get_monotonic_time();
  plan = plan_new(n, h, w);
  Ctx c = { runner, plan, runner->model };
  if (!plan_net(&c, out_h, out_w, error)) {
    aapi_error_prefix(error, "building the network for %dx%dx%d: ", n, h,
                      w);
    plan_free(plan);
    return NULL;
  }
  aapi_debug(AAPI_DEBUG_PERF, "nn: plan %s: %u steps, %.1f ms", key,
             plan->steps->len, (g_get_monotonic_time() - start) / 1e3);
  g_hash_table_insert(runner->plans, g_steal_pointer(&key), plan);
  return plan;
}

/* Widens the recorded range of probe p's convolution to the floats its
 * input holds now (padding of blocked layouts is zero, inside any range
 * a ReLU leaves). */
static bool probe_read(NnRunner *runner, const Probe *p, GError **error)
{
  float *data = NULL;
  gsize n = p->size / sizeof(float);

  if (!dnnl_ok(dnnl_stream_wait(runner->stream), "stream", error) ||
      !dnnl_ok(dnnl_memory_get_data_handle(p->mem, (void **) &data),
               "probe", error))
    return false;
  if (runner->ranges->len < (guint) (2 * p->q + 2)) {
    guint from = runner->ranges->len;
    g_array_set_size(runner->ranges, 2 * p->q + 2);
    for (guint i = from; i < runner->ranges->len; i += 2) {
      g_array_index(runner->ranges, float, i) = INFINITY;
      g_array_index(runner->ranges, float, i + 1) = -INFINITY;
    }
  }
  float *low = &g_array_index(runner->ranges, float, 2 * p->q);
  float *high = low + 1;
  for (gsize i = 0; i < n; i++) {
    *low = MIN(*low, data[i]);
    *high = MAX(*high, data[i]);
  }
  return true;
}

static bool plan_steps(NnRunner *runner, Plan *plan, GError **error)
{
  guint probe = 0;
  bool calibrating = runner->precision == NN_PRECISION_CALIBRATE;

  for (guint i = 0; i < plan->steps->len; i++) {
    Step *s = &g_array_index(plan->steps, Step, i);
    for (; calibrating && probe < plan->probes->len &&
           g_array_index(plan->probes, Probe, probe).step == i; probe++)
      if (!probe_read(runner, &g_array_index(plan->probes, Probe, probe),
                      error))
        return false;
    if (!dnnl_ok(dnnl_primitive_execute(s->prim, runner->stream, s->nargs,
                                        s->args), "execute", error))
      return false;
  }
  return dnnl_ok(dnnl_stream_wait(runner->stream), "stream", error);
}

static bool plan_run(NnRunner *runner, Plan *plan, const float *input,
                     float *logits, GError **error)
{
  Arena *arena = arena_take(plan->arena_size, error);

  if (arena == NULL)
    return false;
  /* The output memory is bound to a slot too: set it after the arena. */
  bool ok = arena_bind(plan, arena, error) &&
            dnnl_ok(dnnl_memory_set_data_handle(plan->input,
                                                (void *) input),
                    "input", error) &&
            dnnl_ok(dnnl_memory_set_data_handle(plan->output, logits),
                    "output", error) &&
            plan_steps(runner, plan, error);
  arena_give(arena);
  return ok;
}

bool nn_runner_forward(NnRunner *runner, const float *input, int n, int h,
                       int w, float *logits, GError **error)
{
  const NnHparams *hp = nn_model_get_hparams(runner->model);
  int out_h, out_w;

  if (n < 1 || n > NN_MAX_BATCH) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "batch size %d out of range 1-%d", n, NN_MAX_BATCH);
    return false;
  }
  if (!nn_output_size(hp, h, w, &out_h, &out_w, error))
    return false;
  Plan *plan = runner_plan(runner, n, h, w, out_h, out_w, error);
  return plan != NULL && plan_run(runner, plan, input, logits, error);
}
