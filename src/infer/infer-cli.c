/* infer-cli.c: `aapi predict`: one region's predicted annotations on
 * stdout, as ASAP XML or GeoJSON. */
#include "cli/cli.h"
#include "common/aapi-error.h"
#include "infer/infer.h"

#include <stdio.h>
#include <string.h>

static char *opt_slide;
static char *opt_slide_file;
static char *opt_region;
static char *opt_format;
static char *opt_tiling, *opt_precision;

static const GOptionEntry predict_entries[] = {
  { "slide", 0, 0, G_OPTION_ARG_STRING, &opt_slide,
    "Id of a registered slide", "ID" },
  { "slide-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_slide_file,
    "A slide file, registered or not (instead of --slide)", "FILE" },
  { "region", 0, 0, G_OPTION_ARG_STRING, &opt_region,
    "Level-0 region x,y,width,height", "X,Y,W,H" },
  { "format", 0, 0, G_OPTION_ARG_STRING, &opt_format,
    "asap (default) or geojson", "FORMAT" },
  { "tiling", 0, 0, G_OPTION_ARG_STRING, &opt_tiling,
    "exact (default: the old 256/64 tiling), auto (big tiles where a "
    "probe window agrees with it) or fast (big tiles)", "MODE" },
  { "precision", 0, 0, G_OPTION_ARG_STRING, &opt_precision,
    "f32 (default), auto (int8 where it matches f32 on a probe window), "
    "int8 or bf16", "MODE" },
  { NULL }
};

/* x,y,width,height: four checked integers. */
static bool parse_region(const char *text, gint64 region[4], GError **error)
{
  g_auto(GStrv) parts = g_strsplit(text ? text : "", ",", -1);

  if (g_strv_length(parts) != 4) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "--region needs x,y,width,height");
    return false;
  }
  for (int i = 0; i < 4; i++) {
    if (!aapi_parse_int64(g_strstrip(parts[i]), i < 2 ? 0 : 1,
                          G_MAXINT32, &region[i], error)) {
      aapi_error_prefix(error, "--region: ");
      return false;
    }
  }
  return true;
}

static InferResult *predict(const AapiConfig *config, const gint64 r[4],
                            GError **error)
{
  g_autoptr(AapiStore) store = NULL;
  g_autoptr(SlideCache) slides = NULL;
  g_autoptr(InferEngine) engine = NULL;

  if (!slide_init_libs(error))
    return NULL;
  if (opt_slide) {
    store = store_open(config->database_url, error);
    if (store == NULL)
      return NULL;
    slides = slide_cache_new(store, 1);
  }
  engine = infer_engine_new(config, slides, error);
  if (engine == NULL)
    return NULL;
  if (g_strcmp0(opt_tiling, "fast") == 0)
    infer_engine_set_tiling(engine, INFER_MODE_FAST);
  else if (g_strcmp0(opt_tiling, "exact") == 0)
    infer_engine_set_tiling(engine, INFER_MODE_EXACT);
  else if (g_strcmp0(opt_tiling, "auto") == 0)
    infer_engine_set_tiling(engine, INFER_MODE_AUTO);
  if (g_strcmp0(opt_precision, "int8") == 0)
    infer_engine_set_precision(engine, INFER_PRECISION_INT8);
  else if (g_strcmp0(opt_precision, "auto") == 0)
    infer_engine_set_precision(engine, INFER_PRECISION_AUTO);
  else if (g_strcmp0(opt_precision, "f32") == 0)
    infer_engine_set_precision(engine, INFER_PRECISION_F32);
  else if (g_strcmp0(opt_precision, "bf16") == 0)
    infer_engine_set_precision(engine, INFER_PRECISION_BF16);
  if (opt_slide)
    return infer_predict_region(engine, opt_slide, r[0], r[1], r[2], r[3],
                                error);

  g_autoptr(Slide) slide = slide_open(opt_slide_file, error);
  if (slide == NULL)
    return NULL;
  return infer_predict_slide(engine, slide, r[0], r[1], r[2], r[3], error);
}

static int usage_error(const char *message)
{
  fprintf(stderr, "aapi predict: %s\n(see aapi predict --help)\n",
          message);
  return 2;
}

int cli_predict(int argc, char **argv)
{
  int status;
  g_autoptr(AapiConfig) config = cli_parse("predict", NULL,
      "Predicts the structures of every class in a level-0 region and\n"
      "writes them to stdout in level-0 coordinates.", predict_entries,
      &argc, &argv, &status);
  g_autoptr(GError) error = NULL;
  gint64 region[4];
  bool geojson;

  if (config == NULL)
    return status;
  if ((opt_slide == NULL) == (opt_slide_file == NULL))
    return usage_error("give one of --slide or --slide-file");
  if (opt_format && strcmp(opt_format, "asap") != 0 &&
      strcmp(opt_format, "geojson") != 0)
    return usage_error("--format is asap or geojson");
  if (opt_tiling && strcmp(opt_tiling, "auto") != 0 &&
      strcmp(opt_tiling, "fast") != 0 && strcmp(opt_tiling, "exact") != 0)
    return usage_error("--tiling is auto, fast or exact");
  if (opt_precision && strcmp(opt_precision, "auto") != 0 &&
      strcmp(opt_precision, "int8") != 0 &&
      strcmp(opt_precision, "f32") != 0 && strcmp(opt_precision, "bf16") != 0)
    return usage_error("--precision is auto, int8, f32 or bf16");
  if (!parse_region(opt_region, region, &error))
    return usage_error(error->message);
  geojson = opt_format && strcmp(opt_format, "geojson") == 0;

  g_autoptr(InferResult) result = predict(config, region, &error);
  if (result == NULL)
    return cli_fail("predict", error);
  g_autoptr(GString) text = geojson ? infer_result_to_geojson(result)
                                    : infer_result_to_asap(result);
  fwrite(text->str, 1, text->len, stdout);
  if (geojson)
    fputc('\n', stdout);
  return 0;
}
