/*
 * bench-train.c: training throughput of NnTrainer: K Adam steps of a U-Net
 * (depth 5, wf 4, batch norm, upconv, padding, 2 classes) on a random
 * batch, in one process.  Prints seconds per step, patches per second and
 * the peak resident memory.
 * Usage: bench-train [STEPS [BATCH [SIZE]]]   (default 5 8 256)
 */
#include "common/config.h"
#include "common/log.h"
#include "nn/nn.h"

#include <stdio.h>
#include <sys/resource.h>

static gint64 arg(char **argv, int argc, int i, gint64 fallback,
                  gint64 max)
{
  gint64 value = fallback;
  g_autoptr(GError) error = NULL;

  if (i < argc && !aapi_parse_int64(argv[i], 1, max, &value, &error)) {
    fprintf(stderr, "bench-train: %s\n", error->message);
    exit(2);
  }
  return value;
}

int main(int argc, char **argv)
{
  int steps = (int) arg(argv, argc, 1, 5, 1000);
  int n = (int) arg(argv, argc, 2, 8, 256);
  int size = (int) arg(argv, argc, 3, 256, 4096);
  NnHparams hp = { 3, 2, 5, 4, true, true, NN_UP_UPCONV };
  g_autoptr(GError) error = NULL;
  g_autoptr(NnModel) model = nn_model_new(&hp, &error);
  g_autoptr(NnTrainer) trainer = NULL;
  gsize pixels = (gsize) n * size * size;
  g_autofree float *input = g_new(float, pixels * 3);
  g_autofree int64_t *target = g_new(int64_t, pixels);
  g_autoptr(GRand) rand = g_rand_new_with_seed(7);
  struct rusage usage;
  float loss = 0;
  gint64 start;
  double first = 0, total = 0;

  if (model == NULL) {
    fprintf(stderr, "bench-train: %s\n", error->message);
    return 1;
  }
  aapi_log_init();
  nn_model_init_random(model, 7);
  for (gsize i = 0; i < pixels * 3; i++)
    input[i] = (float) g_rand_double_range(rand, -1, 1);
  for (gsize i = 0; i < pixels; i++)
    target[i] = g_rand_int_range(rand, 0, 2);
  trainer = nn_trainer_new(model, &NN_ADAM_DEFAULTS, &error);

  /* The first step builds the primitives; it is reported apart. */
  for (int k = 0; trainer != NULL && k <= steps; k++) {
    start = g_get_monotonic_time();
    if (!nn_trainer_step(trainer, input, target, n, size, size, &loss,
                         &error)) {
      fprintf(stderr, "bench-train: %s\n", error->message);
      return 1;
    }
    if (k == 0)
      first = (g_get_monotonic_time() - start) / 1e6;
    else
      total += (g_get_monotonic_time() - start) / 1e6;
  }
  if (trainer == NULL) {
    fprintf(stderr, "bench-train: %s\n", error->message);
    return 1;
  }
  getrusage(RUSAGE_SELF, &usage);
  printf("aapi first_step_s %.3f step_s %.3f patches_per_s %.3f "
         "loss %.5f peak_rss_mb %.0f\n", first, total / steps,
         n * steps / total, loss, usage.ru_maxrss / 1024.0);
  return 0;
}
