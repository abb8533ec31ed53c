/* nn-cli.c: placeholder until the command is built. */
#include "cli/cli.h"

#include <stdio.h>

int cli_import_model(int argc, char **argv)
{
  fprintf(stderr, "aapi: cli_import_model is not built yet\n");
  return 1;
}

int cli_nn_eval(int argc, char **argv)
{
  fprintf(stderr, "aapi: cli_nn_eval is not built yet\n");
  return 1;
}

int cli_nn_train_step(int argc, char **argv)
{
  fprintf(stderr, "aapi: cli_nn_train_step is not built yet\n");
  return 1;
}
