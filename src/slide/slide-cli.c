/* slide-cli.c: placeholder until the command is built. */
#include "cli/cli.h"

#include <stdio.h>

int cli_init_data(int argc, char **argv)
{
  fprintf(stderr, "aapi: cli_init_data is not built yet\n");
  return 1;
}

int cli_make_demo(int argc, char **argv)
{
  fprintf(stderr, "aapi: cli_make_demo is not built yet\n");
  return 1;
}
