/*
 * cli.h: the subcommands of the aapi binary.  Each returns the process exit
 * status (0 on success, 1 on failure with a message on stderr, 2 on a usage
 * error).
 */
#pragma once

#include "common/config.h"

#include <glib.h>

typedef int (*CliCommandFunc)(int argc, char **argv);

int cli_serve(int argc, char **argv);
int cli_init_db(int argc, char **argv);
int cli_init_data(int argc, char **argv);
int cli_make_demo(int argc, char **argv);
int cli_import_model(int argc, char **argv);
int cli_nn_eval(int argc, char **argv);
int cli_nn_train_step(int argc, char **argv);
int cli_predict(int argc, char **argv);
int cli_train(int argc, char **argv);
int cli_evaluate(int argc, char **argv);

/*
 * Parses the options every command shares (--data-dir, --database-url,
 * --model-dir, --label-config) plus the command's own entries, on top of
 * the environment.  On a usage error prints it and returns NULL with
 * *exit_status set.
 */
AapiConfig *cli_parse(const char *command, const char *parameter_text,
                      const char *summary, const GOptionEntry *entries,
                      int *argc, char ***argv, int *exit_status);

/* Prints "aapi <command>: <message>" to stderr and returns 1. */
int cli_fail(const char *command, const GError *error);
