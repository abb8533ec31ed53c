/* infer-cli.c: placeholder until the command is built. */
#include "cli/cli.h"

#include <stdio.h>

int cli_predict(int argc, char **argv)
{
  fprintf(stderr, "aapi: cli_predict is not built yet\n");
  return 1;
}
