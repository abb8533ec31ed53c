/*
 * train-extract.c: the extractor of one class over one square: read,
 * resize, rasterise the class's polygons, mirror-pad, cut patches.
 *
 * Reading and resizing are the prediction pipeline's own steps (src/infer
 * private image functions), so training patches and prediction input are
 * made the same way.
 */
#include "train-private.h"

#include "common/aapi-error.h"
#include "infer/infer-private.h"

#include <math.h>
#include <string.h>

/* Mean red above this is glass, not tissue (the old service's rule). */
#define TISSUE_MAX_MEAN_RED 220.0
/* Share of tissue patches without the class that are kept. */
#define NEGATIVE_KEEP_PROBABILITY 0.2

TrainPatches *train_patches_new(int patch)
{
  TrainPatches *patches = g_new0(TrainPatches, 1);

  patches->patch = patch;
  patches->img = g_byte_array_new();
  patches->mask = g_byte_array_new();
  return patches;
}

void train_patches_free(TrainPatches *patches)
{
  if (patches == NULL)
    return;
  g_byte_array_unref(patches->img);
  g_byte_array_unref(patches->mask);
  g_free(patches);
}

void train_patches_add(TrainPatches *patches, const guint8 *img,
                       const guint8 *mask)
{
  guint area = (guint) patches->patch * patches->patch;

  g_byte_array_append(patches->img, img, area * 3);
  g_byte_array_append(patches->mask, mask, area);
  patches->n++;
}

void train_patches_append(TrainPatches *dst, const TrainPatches *src)
{
  g_return_if_fail(dst->patch == src->patch);
  g_byte_array_append(dst->img, src->img->data, src->img->len);
  g_byte_array_append(dst->mask, src->mask->data, src->mask->len);
  dst->n += src->n;
}

/* Mirror-pads a w x h image of bands bytes a pixel by pad on every side,
 * reflecting without repeating the edge, as the prediction pipeline pads
 * its input (infer_reflect_index). */
static guint8 *mirror_pad(const guint8 *src, int w, int h, int bands,
                          int pad)
{
  int pw = w + 2 * pad, ph = h + 2 * pad;
  guint8 *dst = g_malloc((gsize) pw * ph * bands);
  g_autofree gint64 *cols = g_new(gint64, pw);

  for (int x = 0; x < pw; x++)
    cols[x] = infer_reflect_index(x - pad, w) * bands;
  for (int y = 0; y < ph; y++) {
    const guint8 *row = src + infer_reflect_index(y - pad, h) * w * bands;
    guint8 *out = dst + (gsize) y * pw * bands;
    for (int x = 0; x < pw; x++)
      memcpy(out + (gsize) x * bands, row + cols[x], bands);
  }
  return dst;
}

static double mean_red(const guint8 *img, int stride_w, int x0, int y0,
                       int patch)
{
  guint64 sum = 0;

  for (int y = 0; y < patch; y++) {
    const guint8 *row = img + ((gsize) (y0 + y) * stride_w + x0) * 3;
    for (int x = 0; x < patch; x++)
      sum += row[3 * x];
  }
  return (double) sum / ((double) patch * patch);
}

static bool any_positive(const guint8 *mask, int stride_w, int x0, int y0,
                         int patch)
{
  for (int y = 0; y < patch; y++) {
    const guint8 *row = mask + (gsize) (y0 + y) * stride_w + x0;
    if (memchr(row, 1, patch))
      return true;
  }
  return false;
}

static void copy_patch(const guint8 *src, int stride_w, int bands, int x0,
                       int y0, int patch, guint8 *dst)
{
  for (int y = 0; y < patch; y++)
    memcpy(dst + (gsize) y * patch * bands,
           src + ((gsize) (y0 + y) * stride_w + x0) * bands,
           (gsize) patch * bands);
}

static void cut_patches(const guint8 *img, const guint8 *mask, int w,
                        int h, const AapiClassInfo *info, GRand *rng,
                        TrainPatches *out)
{
  int patch = info->patch_size, stride = info->stride_size;
  g_autofree guint8 *pimg = g_malloc((gsize) patch * patch * 3);
  g_autofree guint8 *pmask = g_malloc((gsize) patch * patch);

  for (int y = 0; y + patch <= h; y += stride) {
    for (int x = 0; x + patch <= w; x += stride) {
      if (mean_red(img, w, x, y, patch) > TISSUE_MAX_MEAN_RED)
        continue;
      /* Draw for every tissue patch so that the sequence of draws does
       * not depend on the masks. */
      bool drawn = g_rand_double(rng) < NEGATIVE_KEEP_PROBABILITY;
      if (!any_positive(mask, w, x, y, patch) && !drawn)
        continue;
      copy_patch(img, w, 3, x, y, patch, pimg);
      copy_patch(mask, w, 1, x, y, patch, pmask);
      train_patches_add(out, pimg, pmask);
    }
  }
}

bool train_extract_square(Slide *slide, const AapiClassInfo *info,
                          GPtrArray *annotations, const TrainSquare *square,
                          GRand *rng, TrainPatches *out, GError **error)
{
  gint64 size = square->size;

  if (!slide_init_libs(error))
    return false;
  g_autofree guint8 *rgb = g_try_malloc((gsize) size * size * 3);

  if (rgb == NULL) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INTERNAL,
                "out of memory for a %" G_GINT64_FORMAT " px square", size);
    return false;
  }
  /* Level 0 and OpenCV's cubic, as prediction reads and resizes its
   * region, so that the network trains on the pixels it will see. */
  if (!slide_read_region_rgb(slide, square->x, square->y, 0, size, size,
                             rgb, error))
    return false;
  int side = infer_scaled_size(size, info->resize);
  g_autofree guint8 *small = g_malloc((gsize) side * side * 3);
  infer_resize_cubic_rgb(rgb, (int) size, (int) size, small, side, side);
  g_clear_pointer(&rgb, g_free);

  /* The mask is drawn at the resized scale, sampling pixel centres, the
   * points the cubic resize samples too. */
  g_autofree guint8 *mask = g_malloc0((gsize) side * side);
  for (guint i = 0; i < annotations->len; i++)
    train_raster_annotation(annotations->pdata[i], square->x, square->y,
                            (double) side / (double) size, mask, side,
                            side);

  int pad = info->mirror_pad_size;
  g_autofree guint8 *img = mirror_pad(small, side, side, 3, pad);
  g_autofree guint8 *padded_mask = mirror_pad(mask, side, side, 1, pad);
  cut_patches(img, padded_mask, side + 2 * pad, side + 2 * pad, info, rng,
              out);
  return true;
}
