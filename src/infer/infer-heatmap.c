/*
 * infer-heatmap.c: one class's probability map over a resized region.
 *
 * The old pipeline ran the network on patch_size tiles at stride_size over
 * the mirror-padded image (16 runs a pixel at 256/64) and kept the
 * per-pixel maximum.  With padding on, the network is translation
 * equivariant on its pooling grid except near a tile's edges, where the
 * zero padding of the convolutions is felt.  So the fast way runs big
 * tiles aligned to the grid the old tiles used (their corners were
 * multiples of the stride, a multiple of the pooling grid) and keeps only
 * their inner part, margin pixels away from their edges: every pixel is
 * computed once.  The exact way repeats the old tiling, for checks and for
 * models that lean on the tile edges.
 */
#include "infer/infer-private.h"
#include "infer/infer.h"

#include "common/aapi-error.h"

#include <math.h>
#include <string.h>

/* Tiles of the exact way run in batches of this many: a 3000 px region
 * of four depth-5 wf-4 classes takes 8.2 s at 8 against 8.6 s at 4, for
 * 55 MB more activations (two Sapphire Rapids cores). */
#define EXACT_BATCH 8

typedef struct {
  const guint8 *rgb;   /* the resized region, rw x rh */
  int rw, rh;
  int pad;
} Source;

/* P(class) from the two logits, zero below the threshold. */
static float class_probability(float background, float object,
                               double threshold)
{
  float p = 1.0f / (1.0f + expf(background - object));

  return p < threshold ? 0.0f : p;
}

/* The buffers below hold 3 input and 2 output planes of the window's
 * size.  The model scan serves only models that fit (infer-model.c);
 * this last check turns a model installed some other way into an error,
 * not an overrun. */
static bool check_window(NnRunner *runner, int w, int h, GError **error)
{
  const NnHparams *hp = nn_model_get_hparams(nn_runner_get_model(runner));
  int oh = 0, ow = 0;

  if (!infer_model_check_class(hp, error) ||
      !nn_output_size(hp, h, w, &oh, &ow, error)) {
    aapi_error_prefix(error, "cannot predict with this model: ");
    if (error && *error)
      (*error)->code = AAPI_ERROR_NN;
    return false;
  }
  if (oh != h || ow != w) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NN,
                "cannot predict with this model: its output for %dx%d "
                "tiles is %dx%d (padding %s, depth %d)", w, h, ow, oh,
                hp->padding ? "on" : "off", hp->depth);
    return false;
  }
  return true;
}

/* Runs the network on n windows at padded coordinates (xs[i], ys[i]),
 * each w x h; returns the logits (n x 2 x h x w). */
static float *run_windows(NnRunner *runner, const Source *src,
                          const gint64 *xs, const gint64 *ys, int n, int w,
                          int h, GError **error)
{
  gsize plane = (gsize) w * h;

  if (!check_window(runner, w, h, error))
    return NULL;
  g_autofree float *input = g_new(float, plane * 3 * n);
  g_autofree float *logits = g_new(float, plane * 2 * n);

  /* The padded image is the region mirrored about its edges. */
  for (int i = 0; i < n; i++)
    infer_window_planar(src->rgb, src->rw, src->rh, xs[i] - src->pad,
                        ys[i] - src->pad, w, h, input + plane * 3 * i);
  if (!nn_runner_forward(runner, input, n, h, w, logits, error))
    return NULL;
  return g_steal_pointer(&logits);
}

/* Folds one window's probabilities into the region heatmap by max, for
 * the pixels of [keep_x0, keep_x1) x [keep_y0, keep_y1) (padded). */
typedef struct {
  gint64 x, y;                   /* window origin, padded coordinates */
  int w, h;
  gint64 keep_x0, keep_y0, keep_x1, keep_y1;
} Placement;

static void fold_window(const Source *src, const Placement *pl,
                        const float *logits, double threshold, float *heat)
{
  gsize plane = (gsize) pl->w * pl->h;
  gint64 x0 = MAX(pl->keep_x0, src->pad), x1 = MIN(pl->keep_x1,
                                                   src->pad + src->rw);
  gint64 y0 = MAX(pl->keep_y0, src->pad), y1 = MIN(pl->keep_y1,
                                                   src->pad + src->rh);

  for (gint64 y = y0; y < y1; y++) {
    for (gint64 x = x0; x < x1; x++) {
      gsize i = (gsize) (y - pl->y) * pl->w + (gsize) (x - pl->x);
      float p = class_probability(logits[i], logits[plane + i], threshold);
      float *h = heat + (gsize) (y - src->pad) * src->rw + (x - src->pad);

      if (p > *h)
        *h = p;
    }
  }
}

/* Tile corners of the old tiling along an axis of n padded pixels. */
static GArray *tile_starts(gint64 n, int patch, int stride)
{
  GArray *starts = g_array_new(FALSE, FALSE, sizeof(gint64));

  for (gint64 s = 0; s + patch <= n; s += stride)
    g_array_append_val(starts, s);
  return starts;
}

static bool heatmap_exact(NnRunner *runner, const InferTiling *t,
                          const Source *src, float *heat, GError **error)
{
  g_autoptr(GArray) xs = tile_starts(src->rw + 2 * t->pad, t->patch_size,
                                     t->stride_size);
  g_autoptr(GArray) ys = tile_starts(src->rh + 2 * t->pad, t->patch_size,
                                     t->stride_size);
  guint total = xs->len * ys->len;
  int p = t->patch_size;

  /* Batches of tiles in raster order. */
  for (guint first = 0; first < total; first += EXACT_BATCH) {
    int n = (int) MIN(EXACT_BATCH, total - first);
    gint64 bx[EXACT_BATCH], by[EXACT_BATCH];

    if (g_cancellable_set_error_if_cancelled(t->cancellable, error))
      return false;
    for (int i = 0; i < n; i++) {
      bx[i] = g_array_index(xs, gint64, (first + i) % xs->len);
      by[i] = g_array_index(ys, gint64, (first + i) / xs->len);
    }
    g_autofree float *logits = run_windows(runner, src, bx, by, n, p, p,
                                           error);
    if (logits == NULL)
      return false;
    for (int i = 0; i < n; i++) {
      Placement pl = { bx[i], by[i], p, p, bx[i], by[i], bx[i] + p,
                       by[i] + p };

      fold_window(src, &pl, logits + (gsize) p * p * 2 * i,
                  t->threshold, heat);
    }
  }
  return true;
}

/* Splits n output pixels into blocks whose windows (block + 2 margins,
 * rounded up to the grid) stay within max_tile where they can. */
static int block_size(int n, int margin, int grid, int max_tile)
{
  int usable = MAX(max_tile - 2 * margin - grid, grid);
  int blocks = (n + usable - 1) / usable;
  int size = (n + blocks - 1) / blocks;

  return (size + grid - 1) / grid * grid;
}

/* The window of a block: starts on the grid, margin before it, and is
 * the same size for every block so that primitives are reused. */
static gint64 window_start(gint64 keep0, int margin, int grid)
{
  gint64 s = keep0 - margin;

  return s >= 0 ? s / grid * grid : -((-s + grid - 1) / grid) * grid;
}

static bool heatmap_fast(NnRunner *runner, const InferTiling *t,
                         const Source *src, float *heat, GError **error)
{
  int grid = 1 << (nn_model_get_hparams(nn_runner_get_model(runner))
                       ->depth - 1);
  int bw = block_size(src->rw, t->margin, grid, t->max_tile);
  int bh = block_size(src->rh, t->margin, grid, t->max_tile);
  int ww = bw + 2 * t->margin + grid, wh = bh + 2 * t->margin + grid;

  ww = (ww + grid - 1) / grid * grid;
  wh = (wh + grid - 1) / grid * grid;
  for (int by = 0; by < src->rh; by += bh) {
    for (int bx = 0; bx < src->rw; bx += bw) {
      Placement pl = { 0, 0, ww, wh, bx + t->pad, by + t->pad,
                       bx + bw + t->pad, by + bh + t->pad };

      if (g_cancellable_set_error_if_cancelled(t->cancellable, error))
        return false;
      pl.x = window_start(pl.keep_x0, t->margin, grid);
      pl.y = window_start(pl.keep_y0, t->margin, grid);
      g_autofree float *logits = run_windows(runner, src, &pl.x, &pl.y, 1,
                                             ww, wh, error);
      if (logits == NULL)
        return false;
      fold_window(src, &pl, logits, t->threshold, heat);
    }
  }
  return true;
}

bool infer_class_heatmap(NnRunner *runner, const InferTiling *tiling,
                         const guint8 *rgb, int rw, int rh, float *heat,
                         GError **error)
{
  Source src = { rgb, rw, rh, tiling->pad };

  if (!check_window(runner, tiling->patch_size, tiling->patch_size,
                    error))
    return false;
  memset(heat, 0, sizeof(float) * (gsize) rw * rh);
  if (tiling->exact)
    return heatmap_exact(runner, tiling, &src, heat, error);
  return heatmap_fast(runner, tiling, &src, heat, error);
}
