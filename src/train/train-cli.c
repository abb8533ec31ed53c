/* train-cli.c: placeholder until the command is built. */
#include "cli/cli.h"

#include <stdio.h>

int cli_train(int argc, char **argv)
{
  fprintf(stderr, "aapi: cli_train is not built yet\n");
  return 1;
}
