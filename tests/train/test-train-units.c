/* test-train-units.c: rasterisation, clipping to the slide, square
 * covering, class names, augmentation of the training data, and training
 * patches made as the prediction pipeline makes its input. */
#include "testutil.h"
#include "common/aapi-error.h"
#include "infer/infer-private.h"
#include "train/train-private.h"

#include <math.h>

static Annotation *polygon(const double *xy, guint n)
{
  Annotation *a = annotation_new("p", ANNOT_POLYGON, "Glomerulus",
                                 "#4dd156");
  for (guint i = 0; i < n; i++) {
    AnnotPoint p = { xy[2 * i], xy[2 * i + 1] };
    g_array_append_val(a->coords, p);
  }
  return a;
}

static guint count_ones(const guint8 *mask, gsize n)
{
  guint ones = 0;

  for (gsize i = 0; i < n; i++)
    ones += mask[i];
  return ones;
}

static void test_raster_square(void)
{
  static const double xy[] = { 10, 10, 30, 10, 30, 20, 10, 20 };
  g_autoptr(Annotation) a = polygon(xy, 4);
  guint8 mask[40 * 40] = { 0 };

  train_raster_annotation(a, 0, 0, 1.0, mask, 40, 40);
  /* Pixel centres inside [10, 30) x [10, 20). */
  g_assert_cmpuint(count_ones(mask, sizeof mask), ==, 20 * 10);
  g_assert_cmpuint(mask[10 * 40 + 10], ==, 1);
  g_assert_cmpuint(mask[9 * 40 + 10], ==, 0);
  g_assert_cmpuint(mask[19 * 40 + 29], ==, 1);
  g_assert_cmpuint(mask[20 * 40 + 29], ==, 0);
}

static void test_raster_hole_offset_scale(void)
{
  static const double outer[] = { 100, 100, 140, 100, 140, 140, 100, 140 };
  g_autoptr(Annotation) a = polygon(outer, 4);
  GArray *hole = g_array_new(FALSE, FALSE, sizeof(AnnotPoint));
  AnnotPoint h[] = { { 110, 110 }, { 130, 110 }, { 130, 130 },
                     { 110, 130 } };
  g_array_append_vals(hole, h, 4);
  a->holes = g_ptr_array_new_with_free_func((GDestroyNotify) g_array_unref);
  g_ptr_array_add(a->holes, hole);
  guint8 mask[20 * 20] = { 0 };

  /* Origin (100, 100), half scale: a 20 px square with a 10 px hole. */
  train_raster_annotation(a, 100, 100, 0.5, mask, 20, 20);
  g_assert_cmpuint(count_ones(mask, sizeof mask), ==, 20 * 20 - 10 * 10);
  g_assert_cmpuint(mask[10 * 20 + 10], ==, 0);
  g_assert_cmpuint(mask[2 * 20 + 2], ==, 1);
}

static void test_raster_clipped(void)
{
  static const double xy[] = { -50, -50, 500, -50, 500, 500, -50, 500 };
  g_autoptr(Annotation) a = polygon(xy, 4);
  guint8 mask[16 * 16] = { 0 };

  train_raster_annotation(a, 0, 0, 1.0, mask, 16, 16);
  g_assert_cmpuint(count_ones(mask, sizeof mask), ==, 16 * 16);
}

static void test_cover_squares(void)
{
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(
      (GDestroyNotify) annotation_free);
  /* Two near polygons (one square), one far, one larger than a square. */
  static const double a[] = { 100, 100, 200, 100, 200, 200 };
  static const double b[] = { 900, 900, 1000, 900, 1000, 1000 };
  static const double c[] = { 9000, 9000, 9100, 9000, 9100, 9100 };
  static const double d[] = { 20000, 0, 24500, 0, 24500, 100 };
  g_ptr_array_add(list, polygon(a, 3));
  g_ptr_array_add(list, polygon(b, 3));
  g_ptr_array_add(list, polygon(c, 3));
  g_ptr_array_add(list, polygon(d, 3));

  g_autoptr(GArray) squares = train_cover_squares(list, 3000, 30000,
                                                  30000);
  /* 1 + 1 + a 2 x 1 grid over the long one. */
  g_assert_cmpuint(squares->len, ==, 4);
  for (guint i = 0; i < squares->len; i++) {
    TrainSquare *s = &g_array_index(squares, TrainSquare, i);
    g_assert_cmpint(s->size, ==, 3000);
    g_assert_cmpint(s->x, >=, 0);
    g_assert_cmpint(s->y, >=, 0);
  }
  /* The first square holds both near polygons. */
  TrainSquare *first = &g_array_index(squares, TrainSquare, 0);
  g_assert_cmpint(first->x, <=, 100);
  g_assert_cmpint(first->x + 3000, >=, 1000);
}

static void assert_on_slide(const GArray *ring, double w, double h)
{
  for (guint i = 0; i < ring->len; i++) {
    const AnnotPoint *p = &g_array_index(ring, AnnotPoint, i);
    g_assert_cmpfloat(p->x, >=, 0);
    g_assert_cmpfloat(p->y, >=, 0);
    g_assert_cmpfloat(p->x, <=, w);
    g_assert_cmpfloat(p->y, <=, h);
  }
}

/* What a hostile client posted: a triangle a billion pixels wide over a
 * 2220 x 2967 slide is the slide's rectangle, cut by one square. */
static void test_clip_huge_polygon(void)
{
  static const double huge[] = { 0, 0, 1e9, 0, 0, 1e9 };
  static const double outside[] = { 5000, 5000, 6000, 5000, 6000, 6000 };
  static const double inside[] = { 100, 100, 300, 100, 300, 250,
                                   100, 250 };
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(
      (GDestroyNotify) annotation_free);
  g_ptr_array_add(list, polygon(huge, 3));
  g_ptr_array_add(list, polygon(outside, 3));
  g_ptr_array_add(list, polygon(inside, 4));
  g_autoptr(GError) error = NULL;

  g_autoptr(GPtrArray) clipped = train_clip_annotations(list, 2220, 2967,
                                                        NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(clipped->len, ==, 2);
  Annotation *slide = clipped->pdata[0];
  assert_on_slide(slide->coords, 2220, 2967);
  g_assert_cmpfloat_with_epsilon(infer_ring_area(slide->coords), 2220.0 * 2967,
                                 1e-6);
  g_assert_cmpstr(slide->group, ==, "Glomerulus");
  /* A shape on the slide is kept exactly as drawn. */
  Annotation *kept = clipped->pdata[1];
  g_assert_cmpuint(kept->coords->len, ==, 4);
  g_assert_cmpmem(kept->coords->data, sizeof inside, inside,
                  sizeof inside);

  g_autoptr(GArray) squares = train_cover_squares(clipped, 3000, 2220,
                                                  2967);
  g_assert_cmpuint(squares->len, ==, 1);
  TrainSquare *square = &g_array_index(squares, TrainSquare, 0);
  g_assert_cmpint(square->x, ==, 0);
  g_assert_cmpint(square->y, ==, 0);
}

/* A part off the slide is dropped; a hole across the edge becomes a
 * notch in the outer ring. */
static void test_clip_parts_and_holes(void)
{
  static const double outer[] = { -100, 0, 100, 0, 100, 200, -100, 200 };
  static const double far[] = { 900, 900, 990, 900, 990, 990 };
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(
      (GDestroyNotify) annotation_free);
  Annotation *a = polygon(outer, 4);
  GArray *hole = g_array_new(FALSE, FALSE, sizeof(AnnotPoint));
  AnnotPoint h[] = { { -50, 50 }, { 50, 50 }, { 50, 100 }, { -50, 100 } };
  g_array_append_vals(hole, h, 4);
  a->holes = g_ptr_array_new_with_free_func((GDestroyNotify) g_array_unref);
  g_ptr_array_add(a->holes, hole);
  a->parts = g_ptr_array_new_with_free_func(
      (GDestroyNotify) annotation_free);
  g_ptr_array_add(a->parts, polygon(far, 3));
  g_ptr_array_add(list, a);
  g_autoptr(GError) error = NULL;

  g_autoptr(GPtrArray) clipped = train_clip_annotations(list, 500, 500,
                                                        NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(clipped->len, ==, 1);
  Annotation *c = clipped->pdata[0];
  g_assert_null(c->parts);
  assert_on_slide(c->coords, 500, 500);
  /* [0, 50] x [50, 100] is cut out: 50 x 50 px; the fill agrees. */
  g_assert_true(c->holes == NULL || c->holes->len == 0);
  g_assert_cmpfloat_with_epsilon(infer_ring_area(c->coords), 100.0 * 200 - 50 * 50,
                                 1e-6);
  g_autofree guint8 *mask = g_malloc0(500 * 500);
  train_raster_annotation(c, 0, 0, 1.0, mask, 500, 500);
  g_assert_cmpuint(count_ones(mask, 500 * 500), ==, 100 * 200 - 50 * 50);
}

/* A self-intersecting ring across the edge fills, once clipped, the
 * pixels on the slide that it filled as drawn. */
static void test_clip_self_intersecting(void)
{
  static const double bowtie[] = { -100, 20, 150, 180, 150, 20, -100, 180 };
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(
      (GDestroyNotify) annotation_free);
  g_ptr_array_add(list, polygon(bowtie, 4));
  g_autoptr(GError) error = NULL;

  g_autoptr(GPtrArray) clipped = train_clip_annotations(list, 200, 200,
                                                        NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(clipped->len, ==, 1);
  guint8 drawn[200 * 200] = { 0 }, cut[200 * 200] = { 0 };
  train_raster_annotation(list->pdata[0], 0, 0, 1.0, drawn, 200, 200);
  train_raster_annotation(clipped->pdata[0], 0, 0, 1.0, cut, 200, 200);
  g_assert_cmpuint(count_ones(drawn, sizeof drawn), >, 0);
  g_assert_cmpmem(cut, sizeof cut, drawn, sizeof drawn);
}

static void test_clip_cancelled(void)
{
  static const double xy[] = { 0, 0, 10, 0, 10, 10 };
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(
      (GDestroyNotify) annotation_free);
  g_ptr_array_add(list, polygon(xy, 3));
  g_autoptr(GError) error = NULL;
  gint cancel = 1;

  g_assert_null(train_clip_annotations(list, 100, 100, &cancel, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_CONFLICT);
}

/* However many large polygons overlap, the squares are at most the
 * slide's tiling (3 x 3 here), and every polygon is still covered. */
static void test_cover_squares_bounded(void)
{
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(
      (GDestroyNotify) annotation_free);

  for (int i = 0; i < 200; i++) {
    double o = 10.0 * i;
    double xy[] = { o, o, o + 4000, o, o + 4000, o + 4000, o, o + 4000 };
    g_ptr_array_add(list, polygon(xy, 4));
  }
  g_autoptr(GArray) squares = train_cover_squares(list, 3000, 9000, 9000);
  /* The boxes reach [0, 5990]: the 2 x 2 tiles at the origin. */
  g_assert_cmpuint(squares->len, ==, 4);
  for (guint i = 0; i < squares->len; i++) {
    TrainSquare *s = &g_array_index(squares, TrainSquare, i);
    g_assert_cmpint(s->x % 3000, ==, 0);
    g_assert_cmpint(s->y % 3000, ==, 0);
    g_assert_cmpint(s->x, <, 6000);
    g_assert_cmpint(s->y, <, 6000);
  }
}

static void test_group_names(void)
{
  g_assert_true(train_group_matches_class("Tubule", "Tubules"));
  g_assert_true(train_group_matches_class("tubules", "Tubules"));
  g_assert_true(train_group_matches_class("Glomerulus", "Glomerulus"));
  g_assert_false(train_group_matches_class("Glomerulus_GS", "Glomerulus"));
  g_assert_false(train_group_matches_class("Artery", "Arteriole"));
  g_assert_false(train_group_matches_class(NULL, "Artery"));
}

/* Whatever symmetry is drawn, the mask moves with the image. */
static void test_augment_keeps_alignment(void)
{
  enum { N = 16 };
  guint8 img[N * N * 3], mask[N * N];
  g_autoptr(GRand) rng = g_rand_new_with_seed(7);

  for (int trial = 0; trial < 40; trial++) {
    for (int i = 0; i < N * N; i++) {
      mask[i] = (i % 5) == 0;
      img[3 * i] = mask[i] ? 255 : 0;
      img[3 * i + 1] = img[3 * i + 2] = 128;
    }
    train_augment(img, mask, N, rng);
    for (int i = 0; i < N * N; i++) {
      if (mask[i])
        g_assert_cmpuint(img[3 * i], >, 200);
      else
        g_assert_cmpuint(img[3 * i], <, 60);
    }
    g_assert_cmpuint(count_ones(mask, N * N), ==, (N * N + 4) / 5);
  }
}

static void test_input_layout(void)
{
  guint8 img[2 * 2 * 3] = { 255, 0, 0, 0, 255, 0, 0, 0, 255, 51, 102, 153 };
  float input[12];

  train_patches_to_input(img, 1, 2, input);
  g_assert_cmpfloat(input[0], ==, 1.0f);     /* R of pixel 0 */
  g_assert_cmpfloat(input[4 + 1], ==, 1.0f); /* G of pixel 1 */
  g_assert_cmpfloat(input[8 + 2], ==, 1.0f); /* B of pixel 2 */
  g_assert_cmpfloat_with_epsilon(input[3], 0.2f, 1e-6);
}

/* The prediction pipeline's input for one window of a region: level 0,
 * cv2 cubic resize, reflect padding, planar float. */
static void predicted_input(const guint8 *small, int side, int pad, int x,
                            int y, int patch, float *out)
{
  infer_window_planar(small, side, side, x - pad, y - pad, patch, patch,
                      out);
}

static double window_mean_red(const float *planar, int patch)
{
  double sum = 0;

  for (int i = 0; i < patch * patch; i++)
    sum += planar[i] * 255.0;
  return sum / (patch * patch);
}

static void test_extract_matches_prediction(void)
{
  g_autofree char *path = test_shared_path("data/slides/kidney_train.svs");
  if (path == NULL)
    return;
  g_autoptr(GError) error = NULL;
  g_assert_true(slide_init_libs(&error));
  g_autoptr(Slide) slide = slide_open(path, &error);
  g_assert_no_error(error);

  /* A polygon over the whole square: every tissue patch is positive. */
  static const double xy[] = { 6000, 6000, 8000, 6000, 8000, 8000,
                               6000, 8000 };
  g_autoptr(Annotation) a = polygon(xy, 4);
  g_autoptr(GPtrArray) annotations = g_ptr_array_new();
  g_ptr_array_add(annotations, a);
  AapiClassInfo info = { .name = "Glomerulus", .resize = 0.25,
                         .patch_size = 32, .stride_size = 24,
                         .mirror_pad_size = 16 };
  TrainSquare square = { 7000, 7000, 400 };
  g_autoptr(GRand) rng = g_rand_new_with_seed(1);
  g_autoptr(TrainPatches) out = train_patches_new(info.patch_size);
  g_assert_true(train_extract_square(slide, &info, annotations, &square,
                                     rng, out, &error));
  g_assert_no_error(error);

  g_autofree guint8 *rgb = g_malloc(400 * 400 * 3);
  g_assert_true(slide_read_region_rgb(slide, 7000, 7000, 0, 400, 400, rgb,
                                      &error));
  int side = infer_scaled_size(400, info.resize), p = info.patch_size;
  g_autofree guint8 *small = g_malloc((gsize) side * side * 3);
  infer_resize_cubic_rgb(rgb, 400, 400, small, side, side);

  /* Walk the windows as the extractor does; each tissue window must be
   * the next patch, with the same network input and an all-ones mask. */
  int padded = side + 2 * info.mirror_pad_size;
  g_autofree float *want = g_new(float, 3 * p * p);
  g_autofree float *got = g_new(float, 3 * p * p);
  guint k = 0;
  for (int y = 0; y + p <= padded; y += info.stride_size)
    for (int x = 0; x + p <= padded; x += info.stride_size) {
      predicted_input(small, side, info.mirror_pad_size, x, y, p, want);
      if (window_mean_red(want, p) > 220.0)
        continue;
      g_assert_cmpuint(k, <, out->n);
      train_patches_to_input(out->img->data + (gsize) k * p * p * 3, 1, p,
                             got);
      g_assert_cmpmem(got, 3 * p * p * sizeof(float), want,
                      3 * p * p * sizeof(float));
      g_assert_cmpuint(count_ones(out->mask->data + (gsize) k * p * p,
                                  (gsize) p * p), ==, p * p);
      k++;
    }
  g_assert_cmpuint(k, ==, out->n);
  g_assert_cmpuint(k, >, 0);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/train/raster/square", test_raster_square);
  g_test_add_func("/train/raster/hole-offset-scale",
                  test_raster_hole_offset_scale);
  g_test_add_func("/train/raster/clipped", test_raster_clipped);
  g_test_add_func("/train/cover-squares", test_cover_squares);
  g_test_add_func("/train/cover-squares/bounded",
                  test_cover_squares_bounded);
  g_test_add_func("/train/clip/huge-polygon", test_clip_huge_polygon);
  g_test_add_func("/train/clip/parts-and-holes", test_clip_parts_and_holes);
  g_test_add_func("/train/clip/self-intersecting",
                  test_clip_self_intersecting);
  g_test_add_func("/train/clip/cancelled", test_clip_cancelled);
  g_test_add_func("/train/group-names", test_group_names);
  g_test_add_func("/train/augment-alignment", test_augment_keeps_alignment);
  g_test_add_func("/train/input-layout", test_input_layout);
  g_test_add_func("/train/extract/matches-prediction",
                  test_extract_matches_prediction);
  return g_test_run();
}
