/* store-cli.c: placeholder until the command is built. */
#include "cli/cli.h"

#include <stdio.h>

int cli_init_db(int argc, char **argv)
{
  fprintf(stderr, "aapi: cli_init_db is not built yet\n");
  return 1;
}
