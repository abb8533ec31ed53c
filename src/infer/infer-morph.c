/*
 * infer-morph.c: binary opening of a class mask.
 *
 * Eroding n times with a k x k square equals one erosion with a square of
 * (k - 1) * n + 1 when pixels outside the image are neutral (OpenCV's
 * default border), and likewise for dilation.  On a 0/1 mask a square
 * erosion is "no zero in the window" and a dilation "some one in the
 * window", both answered in constant time from a summed-area table, so
 * the cost does not grow with the kernel.  libvips' morph operators are
 * per-iteration and would need the mask round-tripped through a VipsImage
 * for a few milliseconds of work; the table is simpler.
 */
#include "infer/infer-private.h"

/* Summed-area table of (mask == value), (w + 1) x (h + 1). */
static guint32 *count_table(const guint8 *mask, int w, int h, guint8 value)
{
  guint32 *table = g_new0(guint32, (gsize) (w + 1) * (h + 1));

  for (int y = 0; y < h; y++) {
    guint32 run = 0;

    for (int x = 0; x < w; x++) {
      run += mask[(gsize) y * w + x] == value;
      table[(gsize) (y + 1) * (w + 1) + x + 1] =
          table[(gsize) y * (w + 1) + x + 1] + run;
    }
  }
  return table;
}

/* Count in the window of half-size r around (x, y), clipped. */
static guint32 window_count(const guint32 *table, int w, int h, int x,
                            int y, int r)
{
  int x0 = MAX(x - r, 0), x1 = MIN(x + r + 1, w);
  int y0 = MAX(y - r, 0), y1 = MIN(y + r + 1, h);
  gsize stride = (gsize) w + 1;

  return table[y1 * stride + x1] - table[y0 * stride + x1] -
         table[y1 * stride + x0] + table[y0 * stride + x0];
}

/* Sets each pixel to set_to where the window holds any pixel == seek. */
static void square_pass(guint8 *mask, int w, int h, int r, guint8 seek,
                        guint8 set_to)
{
  g_autofree guint32 *table = count_table(mask, w, h, seek);

  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      if (window_count(table, w, h, x, y, r) > 0)
        mask[(gsize) y * w + x] = set_to;
}

void infer_mask_open(guint8 *mask, int w, int h, int k, int iterations)
{
  int r = (k - 1) * iterations / 2;

  if (r <= 0 || w <= 0 || h <= 0)
    return;
  /* Erode: a zero anywhere in the window clears the pixel. */
  square_pass(mask, w, h, r, 0, 0);
  /* Dilate: a one anywhere in the window sets it. */
  square_pass(mask, w, h, r, 1, 1);
}
