/*
 * test-image.c: the pure steps of region prediction against OpenCV's
 * output (tests/cases/infer-*, made by make-cases.py) and the masks of
 * ../shared/data/masks.
 */
#include "infer/infer-private.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <vips/vips.h>

/* Loads a PNG as packed bytes with the wanted number of bands. */
static guint8 *load_png(const char *path, int bands, int *w, int *h)
{
  VipsImage *image = vips_image_new_from_file(path, NULL);
  VipsImage *cut = NULL;
  size_t size = 0;
  guint8 *data;

  g_assert_nonnull(image);
  if (vips_extract_band(image, &cut, 0, "n", bands, NULL) != 0)
    g_error("%s: %s", path, vips_error_buffer());
  *w = vips_image_get_width(cut);
  *h = vips_image_get_height(cut);
  data = vips_image_write_to_memory(cut, &size);
  g_object_unref(cut);
  g_object_unref(image);
  return data;
}

static char *case_path(const char *name, const char *file)
{
  return g_build_filename(g_getenv("G_TEST_SRCDIR"), "cases", name, file,
                          NULL);
}

static guint8 *load_mask(const char *path, int *w, int *h)
{
  guint8 *mask = load_png(path, 1, w, h);

  for (gsize i = 0; i < (gsize) *w * *h; i++)
    mask[i] = mask[i] > 127;
  return mask;
}

/* Every output size of a resize case equals OpenCV's to the byte. */
static void check_resize_case(const char *name, const int (*sizes)[2],
                              guint n_sizes)
{
  g_autofree char *in_path = case_path(name, "input.png");
  int w, h;
  g_autofree guint8 *src = load_png(in_path, 3, &w, &h);

  for (guint s = 0; s < n_sizes; s++) {
    int dw = sizes[s][0], dh = sizes[s][1], ew, eh, worst = 0;
    g_autofree char *file = g_strdup_printf("expected-%dx%d.png", dw, dh);
    g_autofree char *path = case_path(name, file);
    g_autofree guint8 *want = load_png(path, 3, &ew, &eh);
    g_autofree guint8 *got = g_new(guint8, (gsize) dw * dh * 3);

    infer_resize_cubic_rgb(src, w, h, got, dw, dh);
    for (gsize i = 0; i < (gsize) dw * dh * 3; i++)
      worst = MAX(worst, abs((int) got[i] - (int) want[i]));
    g_assert_cmpint(worst, ==, 0);
  }
}

static void test_resize_cubic(void)
{
  static const int sizes[][2] = { { 51, 39 }, { 25, 20 }, { 331, 211 },
                                  { 203, 157 } };
  static const int large[][2] = { { 160, 120 }, { 80, 60 } };

  check_resize_case("infer-resize-cubic", sizes, G_N_ELEMENTS(sizes));
  check_resize_case("infer-resize-cubic-large", large, G_N_ELEMENTS(large));
}

static void test_scaled_size(void)
{
  g_assert_cmpint(infer_scaled_size(3000, 0.25), ==, 750);
  g_assert_cmpint(infer_scaled_size(3001, 0.125), ==, 375);
  g_assert_cmpint(infer_scaled_size(3, 0.125), ==, 1);
}

static void test_reflect(void)
{
  /* numpy: np.pad([0, 1, 2], 5, 'reflect') */
  static const int want[] = { 1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1 };

  for (int i = -5; i < 8; i++)
    g_assert_cmpint(infer_reflect_index(i, 3), ==, want[i + 5]);
  g_assert_cmpint(infer_reflect_index(-7, 1), ==, 0);
}

static void test_nearest(void)
{
  const guint8 src[4] = { 1, 2, 3, 4 };
  guint8 dst[3 * 5];

  infer_resize_nearest_u8(src, 2, 2, dst, 5, 3);
  /* floor(x * 2 / 5): 0 0 0 1 1; rows floor(y * 2 / 3): 0 0 1 */
  g_assert_cmpint(dst[2], ==, 1);
  g_assert_cmpint(dst[3], ==, 2);
  g_assert_cmpint(dst[5 + 4], ==, 2);
  g_assert_cmpint(dst[10 + 0], ==, 3);
}

static void test_open(void)
{
  g_autofree char *in_path = case_path("infer-open-blobs", "input.png");
  g_autofree char *ex_path = case_path("infer-open-blobs", "expected.png");
  int w, h, ew, eh;
  g_autofree guint8 *mask = load_mask(in_path, &w, &h);
  g_autofree guint8 *want = load_mask(ex_path, &ew, &eh);
  gsize ones = 0;

  infer_mask_open(mask, w, h, 7, 3);
  for (gsize i = 0; i < (gsize) w * h; i++)
    ones += mask[i];
  g_assert_cmpuint(ones, >, 0);
  g_assert_cmpmem(mask, (gsize) w * h, want, (gsize) ew * eh);
}

static int compare_double(gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

/* Sorted areas and vertex counts of a mask's outer contours. */
static GArray *contour_areas(const guint8 *mask, int w, int h,
                             guint *n_points)
{
  g_autoptr(GPtrArray) rings = infer_mask_contours(mask, w, h);
  GArray *areas = g_array_new(FALSE, FALSE, sizeof(double));

  *n_points = 0;
  for (guint i = 0; i < rings->len; i++) {
    double area = infer_ring_area(rings->pdata[i]);

    g_array_append_val(areas, area);
    *n_points += ((GArray *) rings->pdata[i])->len;
  }
  g_array_sort(areas, compare_double);
  return areas;
}

static void test_contour_case(gconstpointer data)
{
  const char *name = data;
  g_autofree char *in_path = case_path(name, "input.png");
  g_autofree char *txt_path = case_path(name, "contours.txt");
  g_autofree char *text = NULL;
  int w, h;
  guint n_points, want_points = 0;
  g_autofree guint8 *mask = load_mask(in_path, &w, &h);
  g_autoptr(GArray) areas = contour_areas(mask, w, h, &n_points);

  g_assert_true(g_file_get_contents(txt_path, &text, NULL, NULL));
  g_auto(GStrv) lines = g_strsplit(g_strstrip(text), "\n", -1);
  g_assert_cmpuint(areas->len, ==, g_strv_length(lines));
  for (guint i = 0; i < areas->len; i++) {
    double area;
    guint points;

    g_assert_cmpint(sscanf(lines[i], "%lf %u", &area, &points), ==, 2);
    g_assert_cmpfloat_with_epsilon(g_array_index(areas, double, i), area,
                                   1e-9);
    want_points += points;
  }
  g_assert_cmpuint(n_points, ==, want_points);
}

/* The shared masks: one outer contour each (OpenCV: areas). */
static void test_shared_mask(gconstpointer data)
{
  const char *const *spec = data;
  g_autofree char *rel = g_strdup_printf("data/masks/qupath__binary-%s.png",
                                         spec[0]);
  g_autofree char *path = test_shared_path(rel);
  int w, h;
  guint n_points;

  if (path == NULL)
    return;
  g_autofree guint8 *mask = load_mask(path, &w, &h);
  g_autoptr(GArray) areas = contour_areas(mask, w, h, &n_points);
  g_assert_cmpuint(areas->len, ==, 1);
  g_assert_cmpfloat_with_epsilon(g_array_index(areas, double, 0),
                                 g_ascii_strtod(spec[1], NULL), 1e-9);
  g_assert_cmpuint(n_points, ==, g_ascii_strtoull(spec[2], NULL, 10));
}

int main(int argc, char **argv)
{
  static const char *const masks[][3] = {
    { "ring", "103", "8" },
    { "nested-squares", "169", "4" },
    { "checkerboard", "196", "58" },
    { "ellipse", "95", "24" },
    { "square", "49", "4" },
  };

  g_test_init(&argc, &argv, NULL);
  if (VIPS_INIT(argv[0]) != 0)
    g_error("libvips: %s", vips_error_buffer());
  g_test_add_func("/infer/resize/cubic", test_resize_cubic);
  g_test_add_func("/infer/resize/size", test_scaled_size);
  g_test_add_func("/infer/resize/nearest", test_nearest);
  g_test_add_func("/infer/pad/reflect", test_reflect);
  g_test_add_func("/infer/morph/open", test_open);
  g_test_add_data_func("/infer/contours/blobs", "infer-contours-blobs",
                       test_contour_case);
  g_test_add_data_func("/infer/contours/island", "infer-contours-island",
                       test_contour_case);
  g_test_add_data_func("/infer/contours/edges", "infer-contours-edges",
                       test_contour_case);
  for (guint i = 0; i < G_N_ELEMENTS(masks); i++) {
    g_autofree char *name = g_strdup_printf("/infer/contours/mask-%s",
                                            masks[i][0]);
    g_test_add_data_func(name, masks[i], test_shared_mask);
  }
  return g_test_run();
}
