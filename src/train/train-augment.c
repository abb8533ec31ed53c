/*
 * train-augment.c: augmentation of training patches (flips, 90-degree
 * rotations, colour jitter) and their conversion to network input.
 */
#include "train-private.h"

#include <math.h>

/* Maps output (x, y) to the source pixel under one of the 8 symmetries of
 * the square: bit 0 flips x, bit 1 flips y, bit 2 transposes. */
static void source_of(int x, int y, int n, int symmetry, int *sx, int *sy)
{
  if (symmetry & 4) {
    int t = x;
    x = y;
    y = t;
  }
  if (symmetry & 1)
    x = n - 1 - x;
  if (symmetry & 2)
    y = n - 1 - y;
  *sx = x;
  *sy = y;
}

static void apply_symmetry(guint8 *img, guint8 *mask, int n, int symmetry)
{
  gsize area = (gsize) n * n;
  g_autofree guint8 *img_copy = g_memdup2(img, area * 3);
  g_autofree guint8 *mask_copy = g_memdup2(mask, area);

  for (int y = 0; y < n; y++) {
    for (int x = 0; x < n; x++) {
      int sx, sy;
      source_of(x, y, n, symmetry, &sx, &sy);
      gsize d = (gsize) y * n + x, s = (gsize) sy * n + sx;
      memcpy(img + d * 3, img_copy + s * 3, 3);
      mask[d] = mask_copy[s];
    }
  }
}

/* Brightness, contrast and per-channel gain, mildly, as stain and scanner
 * differences vary them. */
static void jitter_colour(guint8 *img, int n, GRand *rng)
{
  double contrast = g_rand_double_range(rng, 0.9, 1.1);
  double brightness = g_rand_double_range(rng, -12.0, 12.0);
  double gain[3];

  for (int c = 0; c < 3; c++)
    gain[c] = g_rand_double_range(rng, 0.94, 1.06);

  gsize area = (gsize) n * n;
  for (gsize i = 0; i < area; i++) {
    for (int c = 0; c < 3; c++) {
      double v = (img[3 * i + c] - 128.0) * contrast + 128.0;
      v = v * gain[c] + brightness;
      img[3 * i + c] = (guint8) CLAMP(lround(v), 0, 255);
    }
  }
}

void train_augment(guint8 *img, guint8 *mask, int patch, GRand *rng)
{
  int symmetry = g_rand_int_range(rng, 0, 8);

  if (symmetry != 0)
    apply_symmetry(img, mask, patch, symmetry);
  jitter_colour(img, patch, rng);
}

void train_patches_to_input(const guint8 *img, int n, int patch,
                            float *input)
{
  gsize area = (gsize) patch * patch;

  for (int b = 0; b < n; b++) {
    const guint8 *src = img + (gsize) b * area * 3;
    float *dst = input + (gsize) b * area * 3;
    for (gsize i = 0; i < area; i++)
      for (int c = 0; c < 3; c++)
        dst[c * area + i] = src[3 * i + c] / 255.0f;
  }
}
