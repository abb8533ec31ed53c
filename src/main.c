/* main.c: the aapi binary: one subcommand per job. */
#include "cli/cli.h"
#include "common/log.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct {
  const char *name;
  CliCommandFunc func;
  const char *summary;
} commands[] = {
  { "serve", cli_serve, "serve the HTTP API and the viewer" },
  { "init-db", cli_init_db, "create or upgrade the database schema" },
  { "init-data", cli_init_data, "register every slide of a folder" },
  { "make-demo", cli_make_demo, "make a small demo slide and register it" },
  { "import-model", cli_import_model,
    "import a PyTorch Lightning checkpoint for a class" },
  { "nn-eval", cli_nn_eval, "run a model on raw float32 input" },
  { "nn-train-step", cli_nn_train_step, "run one Adam step and dump state" },
  { "predict", cli_predict, "predict the structures in a slide region" },
  { "train", cli_train, "run one training cycle now" },
  { "evaluate", cli_evaluate,
    "measure each class's model on the registered slides" },
};

static void usage(FILE *out)
{
  fprintf(out, "usage: aapi COMMAND [OPTIONS]\n\ncommands:\n");
  for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
    fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\nRun aapi COMMAND --help for a command's options.\n");
}

/*
 * oneDNN runs on OpenMP threads, which by default spin while they wait for
 * work; on a small server that steals the cores the HTTP threads and the
 * other forward need (a 256 px forward took 2.5 times as long with two
 * spinning pools).  libgomp reads its settings when it loads, before main,
 * so the process runs itself again once with a passive wait policy unless
 * the caller chose one.
 */
static void prefer_passive_openmp(char **argv)
{
  if (g_getenv("OMP_WAIT_POLICY") != NULL)
    return;
  g_setenv("OMP_WAIT_POLICY", "passive", TRUE);
  execv("/proc/self/exe", argv);
  /* Still running: the default policy only costs CPU time. */
}

int main(int argc, char **argv)
{
  prefer_passive_openmp(argv);

  setlocale(LC_ALL, "");
  /* Numbers in files and JSON always use a dot. */
  setlocale(LC_NUMERIC, "C");
  aapi_log_init();

  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return 0;
  }

  for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
    if (strcmp(argv[1], commands[i].name) == 0)
      return commands[i].func(argc - 1, argv + 1);

  fprintf(stderr, "aapi: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
