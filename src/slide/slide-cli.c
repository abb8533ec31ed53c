/* slide-cli.c: the init-data and make-demo commands. */
#include "cli/cli.h"
#include "slide/slide.h"

#include "common/aapi-error.h"

#include <stdio.h>

/* Files from this size on get progress lines while they are hashed. */
#define PROGRESS_MIN_BYTES (32 * 1024 * 1024)

static char *opt_slide_dir;

static const GOptionEntry slide_dir_entries[] = {
  { "slide-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_slide_dir,
    "Folder of slides (default <data>/slides)", "DIR" },
  { "slide_dir", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME,
    &opt_slide_dir, "Same as --slide-dir", "DIR" },
  { NULL }
};

static const char *outcome_word(SlideRegisterOutcome outcome)
{
  switch (outcome) {
  case SLIDE_REGISTER_NEW: return "new";
  case SLIDE_REGISTER_UPDATED: return "updated";
  case SLIDE_REGISTER_UNCHANGED: return "unchanged";
  case SLIDE_REGISTER_DUPLICATE: return "duplicate";
  case SLIDE_REGISTER_SKIPPED: return "skipped";
  }
  return "?";
}

static void print_file(const char *path, SlideRegisterOutcome outcome,
                       const char *slide_id, const char *detail,
                       gpointer user_data)
{
  g_autofree char *name = g_path_get_basename(path);

  if (outcome == SLIDE_REGISTER_SKIPPED) {
    /* The detail names the file already. */
    fprintf(stderr, "  skipped    %s\n", detail);
    return;
  }
  printf("  %-10s %s  %s%s%s\n", outcome_word(outcome), slide_id, name,
         detail ? ": " : "", detail ? detail : "");
  fflush(stdout);
}

/* One line per fifth of a big file, so a long hash shows it is moving. */
static void print_progress(const char *path, guint64 done, guint64 total,
                           gpointer user_data)
{
  guint *last_fifth = user_data;
  guint fifth = total ? (guint) (done * 5 / total) : 0;

  if (total < PROGRESS_MIN_BYTES || fifth == *last_fifth)
    return;
  *last_fifth = fifth % 5;
  g_autofree char *name = g_path_get_basename(path);
  printf("             hashing %s: %u%% of %" G_GUINT64_FORMAT " MiB\n",
         name, fifth * 20, total >> 20);
  fflush(stdout);
}

static void print_summary(const char *dir, const SlideRegisterSummary *s)
{
  printf("%s: %u new, %u updated, %u unchanged, %u duplicate, %u skipped;"
         " %u initial annotation%s copied\n", dir, s->n_new, s->n_updated,
         s->n_unchanged, s->n_duplicate, s->n_skipped, s->n_annotations,
         s->n_annotations == 1 ? "" : "s");
}

static int init_data(const AapiConfig *config, const char *dir)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AapiStore) store = store_open(config->database_url, &error);
  guint last_fifth = 0;
  SlideRegisterCallbacks callbacks = { print_file, print_progress,
                                       &last_fifth };
  SlideRegisterSummary summary;

  /* libvips routes libtiff's chatter about odd tags to debug lines. */
  if (store == NULL || !slide_init_libs(&error))
    return cli_fail("init-data", error);
  printf("registering the slides in %s\n", dir);
  if (!slide_register_dir_full(config, store, dir, &callbacks, &summary,
                               &error))
    return cli_fail("init-data", error);
  print_summary(dir, &summary);

  guint n_ok = summary.n_new + summary.n_updated + summary.n_unchanged;
  if (n_ok == 0 && summary.n_skipped > 0) {
    fprintf(stderr, "aapi init-data: no readable slide in %s\n", dir);
    return 1;
  }
  return 0;
}

int cli_init_data(int argc, char **argv)
{
  int status;
  g_autoptr(AapiConfig) config = cli_parse(
      "init-data", NULL,
      "Registers every slide OpenSlide can read in the folder: its id (MD5\n"
      "of the bytes), a Slides row, and <stem>.xml beside it as the initial\n"
      "annotation.  Files that cannot be read are reported and skipped;\n"
      "running it again changes nothing.\n\n"
      "Exit status: 0 when the folder was processed (also when some files\n"
      "were skipped, and for a folder with no slides); 1 when the folder\n"
      "or the database cannot be used, or when every slide-like file in it\n"
      "was unreadable; 2 on a usage error.",
      slide_dir_entries, &argc, &argv, &status);

  if (config == NULL)
    return status;
  if (argc > 1) {
    fprintf(stderr, "aapi init-data: unexpected argument '%s'\n", argv[1]);
    return 2;
  }
  g_autofree char *dir = opt_slide_dir ? g_strdup(opt_slide_dir)
                                       : aapi_config_slides_dir(config);
  return init_data(config, dir);
}

static int make_demo(const AapiConfig *config, const char *dir)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  SlideRegisterSummary summary;

  printf("making the demo slide in %s\n", dir);
  if (!slide_make_demo(dir, &path, &error))
    return cli_fail("make-demo", error);

  g_autoptr(AapiStore) store = store_open(config->database_url, &error);
  SlideRegisterCallbacks callbacks = { print_file, NULL, NULL };
  if (store == NULL ||
      !slide_register_file(config, store, path, &callbacks, &summary,
                           &error))
    return cli_fail("make-demo", error);
  return 0;
}

int cli_make_demo(int argc, char **argv)
{
  int status;
  g_autoptr(AapiConfig) config = cli_parse(
      "make-demo", NULL,
      "Makes a small synthetic slide (aapi-demo.tiff, a pyramidal JPEG\n"
      "TIFF) with an ASAP annotation of its structures (aapi-demo.xml) in\n"
      "the folder, and registers it.  An existing demo slide is kept.",
      slide_dir_entries, &argc, &argv, &status);

  if (config == NULL)
    return status;
  if (argc > 1) {
    fprintf(stderr, "aapi make-demo: unexpected argument '%s'\n", argv[1]);
    return 2;
  }
  g_autofree char *dir = opt_slide_dir ? g_strdup(opt_slide_dir)
                                       : aapi_config_slides_dir(config);
  return make_demo(config, dir);
}
