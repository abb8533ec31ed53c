/*
 * infer-resize.c: resizing and mirror padding as the old pipeline did it.
 *
 * The models were run on images scaled by OpenCV's INTER_CUBIC, which
 * point-samples a cubic with a = -0.75 in 11-bit fixed point.  libvips has
 * no such kernel: its reducers widen the kernel to antialias, and its
 * bicubic interpolator is Catmull-Rom (a = -0.5).  Either would change
 * the pixels the model sees, so the resize is written here, following
 * OpenCV's arithmetic to the bit.
 */
#include "infer/infer-private.h"

#include <math.h>

/* OpenCV's fixed point: coefficients scaled by 2^11 in each direction. */
#define COEF_BITS 11
#define COEF_SCALE (1 << COEF_BITS)

int infer_scaled_size(gint64 n, double factor)
{
  double scaled = rint((double) n * factor);

  return scaled < 1 ? 1 : (int) scaled;
}

/* The cubic weights of the four taps around a fraction t in [0, 1). */
static void cubic_coefficients(float t, float c[4])
{
  const float a = -0.75f;

  c[0] = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a;
  c[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
  c[2] = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1;
  c[3] = 1.f - c[0] - c[1] - c[2];
}

/* Taps (clamped to the source) and integer weights of each output
 * position along one axis. */
static void axis_taps(int src_n, int dst_n, int *taps, gint16 *weights)
{
  /* The inverse of OpenCV's scale, as it computes it. */
  double scale = 1.0 / ((double) dst_n / src_n);

  for (int d = 0; d < dst_n; d++) {
    float f = (float) ((d + 0.5) * scale - 0.5);
    int s = (int) floorf(f);
    float c[4];

    cubic_coefficients(f - s, c);
    for (int k = 0; k < 4; k++) {
      taps[d * 4 + k] = CLAMP(s + k - 1, 0, src_n - 1);
      weights[d * 4 + k] = (gint16) lrintf(c[k] * COEF_SCALE);
    }
  }
}

/* One source row resized horizontally into fixed-point sums. */
static void resize_row(const guint8 *row, int dw, const int *xt,
                       const gint16 *xw, int *out)
{
  for (int d = 0; d < dw; d++) {
    for (int ch = 0; ch < 3; ch++) {
      int sum = 0;

      for (int k = 0; k < 4; k++)
        sum += row[xt[d * 4 + k] * 3 + ch] * xw[d * 4 + k];
      out[d * 3 + ch] = sum;
    }
  }
}

/*
 * The vertical pass of one output row from the four horizontal sums.
 * OpenCV (Debian's 4.6 build, 128-bit SIMD) runs it in float32 over the
 * row's leading multiple of 8 bytes (sum * coef / 2^22 accumulated from
 * the last tap, rounded half to even) and in integers over the rest; the
 * two round differently in about one byte of 300, so both are repeated.
 */
#define SIMD_BYTES 8

static void combine_rows(const int *rows, int width, const gint16 *beta,
                         guint8 *out)
{
  const float scale = 1.0f / ((float) COEF_SCALE * COEF_SCALE);
  int vec = width / SIMD_BYTES * SIMD_BYTES;
  float b[4];

  for (int k = 0; k < 4; k++)
    b[k] = beta[k] * scale;
  for (int i = 0; i < vec; i++) {
    float v = (float) rows[3 * (gsize) width + i] * b[3];
    for (int k = 2; k >= 0; k--)
      v = (float) rows[k * (gsize) width + i] * b[k] + v;
    out[i] = (guint8) CLAMP(nearbyintf(v), 0.0f, 255.0f);
  }
  for (int i = vec; i < width; i++) {
    gint64 sum = 1 << (2 * COEF_BITS - 1);
    for (int k = 0; k < 4; k++)
      sum += (gint64) rows[k * (gsize) width + i] * beta[k];
    out[i] = (guint8) CLAMP(sum >> (2 * COEF_BITS), 0, 255);
  }
}

void infer_resize_cubic_rgb(const guint8 *src, int sw, int sh, guint8 *dst,
                            int dw, int dh)
{
  g_autofree int *xt = g_new(int, (gsize) dw * 4);
  g_autofree int *yt = g_new(int, (gsize) dh * 4);
  g_autofree gint16 *xw = g_new(gint16, (gsize) dw * 4);
  g_autofree gint16 *yw = g_new(gint16, (gsize) dh * 4);
  g_autofree int *rows = g_new(int, (gsize) dw * 3 * 4);
  int cached[4] = { -1, -1, -1, -1 };

  axis_taps(sw, dw, xt, xw);
  axis_taps(sh, dh, yt, yw);

  for (int y = 0; y < dh; y++) {
    /* Resize the four source rows horizontally (cached by slot). */
    for (int k = 0; k < 4; k++) {
      if (cached[k] != yt[y * 4 + k]) {
        cached[k] = yt[y * 4 + k];
        resize_row(src + (gsize) cached[k] * sw * 3, dw, xt, xw,
                   rows + (gsize) k * dw * 3);
      }
    }

    combine_rows(rows, dw * 3, yw + y * 4, dst + (gsize) y * dw * 3);
  }
}

void infer_resize_nearest_u8(const guint8 *src, int sw, int sh,
                             guint8 *dst, int dw, int dh)
{
  g_autofree int *xs = g_new(int, dw);
  double sx = 1.0 / ((double) dw / sw), sy = 1.0 / ((double) dh / sh);

  /* OpenCV picks floor(d * scale), not the pixel centre. */
  for (int x = 0; x < dw; x++)
    xs[x] = MIN((int) floor(x * sx), sw - 1);
  for (int y = 0; y < dh; y++) {
    const guint8 *row = src + (gsize) MIN((int) floor(y * sy), sh - 1) * sw;
    guint8 *out = dst + (gsize) y * dw;

    for (int x = 0; x < dw; x++)
      out[x] = row[xs[x]];
  }
}

gint64 infer_reflect_index(gint64 i, gint64 n)
{
  gint64 period = 2 * (n - 1);

  if (n <= 1)
    return 0;
  i %= period;
  if (i < 0)
    i += period;
  return i < n ? i : period - i;
}

void infer_window_planar(const guint8 *rgb, int iw, int ih, gint64 x,
                         gint64 y, int w, int h, float *out)
{
  g_autofree gint64 *cols = g_new(gint64, w);
  gsize plane = (gsize) w * h;

  for (int c = 0; c < w; c++)
    cols[c] = infer_reflect_index(x + c, iw) * 3;
  for (int r = 0; r < h; r++) {
    const guint8 *row = rgb + infer_reflect_index(y + r, ih) * iw * 3;
    float *o = out + (gsize) r * w;

    for (int c = 0; c < w; c++) {
      o[c] = row[cols[c]] / 255.0f;
      o[plane + c] = row[cols[c] + 1] / 255.0f;
      o[2 * plane + c] = row[cols[c] + 2] / 255.0f;
    }
  }
}
