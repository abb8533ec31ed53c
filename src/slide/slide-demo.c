/*
 * slide-demo.c: a synthetic tissue-like slide and its ASAP annotation, so
 * that a first run with no slides has something to show.
 *
 * The picture is drawn with libvips: pink tissue cores on a pale
 * background, with round structures of the four kidney classes
 * (glomeruli, arteries, tubules, arterioles), a fine noise texture, saved
 * as a pyramidal tiled JPEG TIFF that OpenSlide's generic TIFF reader
 * opens.  Every structure is written to the XML as a polygon of its class.
 */
#include "slide/slide-private.h"

#include "common/aapi-error.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>

#define DEMO_NAME "aapi-demo"
#define DEMO_SIZE 4096
#define DEMO_SEED 20240601
#define POLYGON_VERTICES 36

typedef enum { GLOMERULUS, ARTERY, TUBULE, ARTERIOLE, N_KINDS } Kind;

/* Class name and colour as in the default label config. */
static const struct {
  const char *name;
  const char *color;
  int count;
  double radius_min, radius_max;
} kinds[N_KINDS] = {
  [GLOMERULUS] = { "Glomerulus", "#4dd156", 6, 95, 130 },
  [ARTERY] = { "Artery", "#d9cb11", 3, 90, 120 },
  [TUBULE] = { "Tubules", "#e89f17", 24, 38, 60 },
  [ARTERIOLE] = { "Arteriole", "#1eaac9", 5, 34, 46 },
};

typedef struct {
  Kind kind;
  double x, y, radius;
} Structure;

/* Tissue cores: centre and radius. */
static const double cores[][3] = {
  { 900, 1000, 720 }, { 1800, 1500, 680 }, { 2700, 1900, 700 },
  { 3250, 2800, 620 }, { 1300, 2500, 600 }, { 2300, 3200, 560 },
};

/* Picks a spot inside a tissue core that overlaps no earlier structure. */
static bool place(GRand *rand, GArray *placed, Kind kind, Structure *out)
{
  for (int attempt = 0; attempt < 400; attempt++) {
    const double *core = cores[g_rand_int_range(rand, 0,
                                                G_N_ELEMENTS(cores))];
    double r = g_rand_double_range(rand, kinds[kind].radius_min,
                                   kinds[kind].radius_max);
    double angle = g_rand_double_range(rand, 0, 2 * G_PI);
    double dist = g_rand_double_range(rand, 0, core[2] - r - 30);
    Structure s = { kind, core[0] + dist * cos(angle),
                    core[1] + dist * sin(angle), r };
    bool clear = true;

    for (guint i = 0; clear && i < placed->len; i++) {
      Structure *o = &g_array_index(placed, Structure, i);
      clear = hypot(o->x - s.x, o->y - s.y) > o->radius + s.radius + 25;
    }
    if (clear) {
      *out = s;
      return true;
    }
  }
  return false;
}

static GArray *place_all(void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed(DEMO_SEED);
  GArray *placed = g_array_new(FALSE, FALSE, sizeof(Structure));

  for (int k = 0; k < N_KINDS; k++)
    for (int i = 0; i < kinds[k].count; i++) {
      Structure s;
      if (place(rand, placed, (Kind) k, &s))
        g_array_append_val(placed, s);
    }
  return placed;
}

static bool disc(VipsImage *canvas, double r, double g, double b,
                 double x, double y, double radius)
{
  double ink[3] = { r, g, b };

  return vips_draw_circle(canvas, ink, 3, (int) x, (int) y, (int) radius,
                          "fill", TRUE, NULL) == 0;
}

/* Concentric discs that look roughly like each structure in H&E. */
static bool draw_structure(VipsImage *c, const Structure *s)
{
  double r = s->radius;

  switch (s->kind) {
  case GLOMERULUS:
    return disc(c, 246, 228, 238, s->x, s->y, r) &&
           disc(c, 168, 92, 170, s->x, s->y, r - 14) &&
           disc(c, 196, 128, 190, s->x + r / 5, s->y - r / 6, r / 3);
  case ARTERY:
    return disc(c, 196, 70, 118, s->x, s->y, r) &&
           disc(c, 226, 130, 170, s->x, s->y, r * 0.55) &&
           disc(c, 250, 246, 248, s->x, s->y, r * 0.25);
  case TUBULE:
    return disc(c, 214, 118, 162, s->x, s->y, r) &&
           disc(c, 248, 236, 242, s->x, s->y, r * 0.35);
  case ARTERIOLE:
    return disc(c, 204, 84, 130, s->x, s->y, r) &&
           disc(c, 248, 240, 244, s->x, s->y, r * 0.3);
  default:
    return false;
  }
}

/* The pale background, the tissue cores and the structures. */
static VipsImage *draw_canvas(GArray *placed, GError **error)
{
  g_autoptr(VipsImage) black = NULL;
  g_autoptr(VipsImage) pale = NULL;
  double background[3] = { 243, 240, 242 };
  double one[3] = { 1, 1, 1 };

  if (vips_black(&black, DEMO_SIZE, DEMO_SIZE, "bands", 3, NULL) != 0 ||
      vips_linear(black, &pale, one, background, 3, "uchar", TRUE,
                  NULL) != 0) {
    slide_set_vips_error(error, "demo background");
    return NULL;
  }
  /* Drawing works in place, on an image in memory. */
  VipsImage *canvas = vips_image_copy_memory(pale);
  bool ok = canvas != NULL;

  for (guint i = 0; ok && i < G_N_ELEMENTS(cores); i++)
    ok = disc(canvas, 232, 166, 198, cores[i][0], cores[i][1], cores[i][2]);
  for (guint i = 0; ok && i < placed->len; i++)
    ok = draw_structure(canvas, &g_array_index(placed, Structure, i));
  if (!ok) {
    slide_set_vips_error(error, "demo drawing");
    g_clear_object(&canvas);
  }
  return canvas;
}

/* Multiplies by a fine noise and softens edges, like stained tissue. */
static VipsImage *add_texture(VipsImage *canvas, GError **error)
{
  g_autoptr(VipsImage) noise = NULL;
  g_autoptr(VipsImage) factor = NULL;
  g_autoptr(VipsImage) textured = NULL;
  VipsImage *out = NULL;

  if (vips_perlin(&noise, DEMO_SIZE, DEMO_SIZE, "cell_size", 12, "seed",
                  DEMO_SEED, NULL) != 0 ||
      vips_linear1(noise, &factor, 0.12, 0.97, NULL) != 0 ||
      vips_multiply(canvas, factor, &textured, NULL) != 0 ||
      vips_gaussblur(textured, &out, 1.2, "precision",
                     VIPS_PRECISION_INTEGER, NULL) != 0) {
    slide_set_vips_error(error, "demo texture");
    return NULL;
  }
  g_autoptr(VipsImage) owned = out;
  VipsImage *cast = NULL;
  if (vips_cast_uchar(owned, &cast, NULL) != 0) {
    slide_set_vips_error(error, "demo texture");
    return NULL;
  }
  return cast;
}

/* Pyramidal tiled JPEG TIFF, written beside and renamed into place. */
static bool save_tiff(VipsImage *image, const char *path, GError **error)
{
  g_autofree char *tmp = g_strconcat(path, ".part", NULL);

  if (vips_tiffsave(image, tmp, "tile", TRUE, "tile_width", 256,
                    "tile_height", 256, "pyramid", TRUE, "compression",
                    VIPS_FOREIGN_TIFF_COMPRESSION_JPEG, "Q", 85, NULL) != 0) {
    slide_set_vips_error(error, "demo slide");
    g_unlink(tmp);
    return false;
  }
  if (g_rename(tmp, path) != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "cannot write %s: %s",
                path, g_strerror(errno));
    return false;
  }
  return true;
}

static void xml_polygon(GString *xml, const Structure *s, int number)
{
  g_string_append_printf(xml,
      "    <Annotation Name=\"%s_%03d\" Type=\"Polygon\" "
      "PartOfGroup=\"%s\" Color=\"%s\">\n      <Coordinates>\n",
      kinds[s->kind].name, number, kinds[s->kind].name,
      kinds[s->kind].color);
  for (int i = 0; i < POLYGON_VERTICES; i++) {
    double a = 2 * G_PI * i / POLYGON_VERTICES;
    g_string_append_printf(xml,
        "        <Coordinate Order=\"%d\" X=\"%.1f\" Y=\"%.1f\" />\n", i,
        s->x + s->radius * cos(a), s->y + s->radius * sin(a));
  }
  g_string_append(xml, "      </Coordinates>\n    </Annotation>\n");
}

/* ASAP XML with every structure as a polygon and one group per class. */
static char *demo_xml(GArray *placed)
{
  GString *xml = g_string_new("<?xml version=\"1.0\"?>\n<ASAP_Annotations>\n"
                              "  <Annotations>\n");
  int numbers[N_KINDS] = { 0 };

  for (guint i = 0; i < placed->len; i++) {
    const Structure *s = &g_array_index(placed, Structure, i);
    xml_polygon(xml, s, ++numbers[s->kind]);
  }
  g_string_append(xml, "  </Annotations>\n  <AnnotationGroups>\n");
  for (int k = 0; k < N_KINDS; k++)
    g_string_append_printf(xml, "    <Group Name=\"%s\" PartOfGroup=\"None\""
                           " Color=\"%s\">\n      <Attributes />\n"
                           "    </Group>\n", kinds[k].name, kinds[k].color);
  g_string_append(xml, "  </AnnotationGroups>\n</ASAP_Annotations>\n");
  return g_string_free(xml, FALSE);
}

static bool make_files(const char *slide_path, const char *xml_path,
                       GError **error)
{
  g_autoptr(GArray) placed = place_all();
  g_autoptr(VipsImage) canvas = draw_canvas(placed, error);

  if (canvas == NULL)
    return false;
  g_autoptr(VipsImage) textured = add_texture(canvas, error);
  if (textured == NULL || !save_tiff(textured, slide_path, error))
    return false;

  g_autofree char *xml = demo_xml(placed);
  return g_file_set_contents(xml_path, xml, -1, error);
}

bool slide_make_demo(const char *dir, char **slide_path_out, GError **error)
{
  g_autofree char *slide_path = g_build_filename(dir, DEMO_NAME ".tiff",
                                                 NULL);
  g_autofree char *xml_path = g_build_filename(dir, DEMO_NAME ".xml", NULL);

  if (!slide_init_libs(error))
    return false;
  if (g_mkdir_with_parents(dir, 0755) != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO, "cannot create %s: %s",
                dir, g_strerror(errno));
    return false;
  }
  /* An existing demo is kept as it is: its id must not change. */
  if (!g_file_test(slide_path, G_FILE_TEST_EXISTS) ||
      !g_file_test(xml_path, G_FILE_TEST_EXISTS))
    if (!make_files(slide_path, xml_path, error))
      return false;
  if (slide_path_out)
    *slide_path_out = g_steal_pointer(&slide_path);
  return true;
}
