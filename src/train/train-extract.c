/*
 * train-extract.c: the extractor of one class over one square: read,
 * resize, rasterise the class's polygons, mirror-pad, cut patches.
 */
#include "train-private.h"

#include "common/aapi-error.h"

#include <math.h>
#include <vips/vips.h>

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

static void vips_error_to_gerror(GError **error, const char *what)
{
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_SLIDE, "%s: %s", what,
              vips_error_buffer());
  vips_error_clear();
}

/* Resizes an RGB buffer by scale with a bicubic kernel, then mirror-pads
 * it by pad on every side; returns the new buffer and its size. */
static guint8 *resize_and_pad(const guint8 *rgb, int w, int h, int bands,
                              double scale, int pad, int *out_w, int *out_h,
                              GError **error)
{
  VipsImage *in = vips_image_new_from_memory(rgb, (size_t) w * h * bands,
                                             w, h, bands, VIPS_FORMAT_UCHAR);
  VipsImage *resized = NULL, *padded = NULL;
  guint8 *result = NULL;

  if (in == NULL) {
    vips_error_to_gerror(error, "wrapping a region");
    return NULL;
  }
  VipsKernel kernel = bands == 1 ? VIPS_KERNEL_NEAREST : VIPS_KERNEL_CUBIC;
  if (vips_resize(in, &resized, scale, "kernel", kernel, NULL) != 0 ||
      vips_embed(resized, &padded, pad, pad, resized->Xsize + 2 * pad,
                 resized->Ysize + 2 * pad, "extend", VIPS_EXTEND_MIRROR,
                 NULL) != 0) {
    vips_error_to_gerror(error, "resizing a region");
  } else {
    size_t size = 0;
    result = vips_image_write_to_memory(padded, &size);
    *out_w = padded->Xsize;
    *out_h = padded->Ysize;
    if (result == NULL)
      vips_error_to_gerror(error, "resizing a region");
  }
  g_clear_object(&padded);
  g_clear_object(&resized);
  g_object_unref(in);
  return result;
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
  if (!slide_read_region_rgb(slide, square->x, square->y, 0, size, size,
                             rgb, error))
    return false;

  /* The mask is drawn at full resolution, like the image, and resized
   * with it so that both line up pixel for pixel. */
  g_autofree guint8 *mask = g_malloc0((gsize) size * size);
  for (guint i = 0; i < annotations->len; i++)
    train_raster_annotation(annotations->pdata[i], square->x, square->y,
                            1.0, mask, (int) size, (int) size);

  int w = 0, h = 0, mw = 0, mh = 0;
  g_autofree guint8 *img = resize_and_pad(rgb, (int) size, (int) size, 3,
                                          info->resize,
                                          info->mirror_pad_size, &w, &h,
                                          error);
  if (img == NULL)
    return false;
  g_autofree guint8 *small = resize_and_pad(mask, (int) size, (int) size,
                                            1, info->resize,
                                            info->mirror_pad_size, &mw,
                                            &mh, error);
  if (small == NULL)
    return false;
  if (mw != w || mh != h) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INTERNAL,
                "image and mask sizes differ after resizing");
    return false;
  }

  cut_patches(img, small, w, h, info, rng, out);
  return true;
}
