/*
 * bench-merge.c: times the in-process merge of a POST, step by step:
 * read the stored ASAP file, read the posted one, merge them in a box,
 * write the result.  Prints one JSON line of milliseconds per step
 * (median and 99th percentile over the runs), plus the CPU time of the
 * whole, and the whole again with the stored file taken from the
 * parsed-file cache as the server does, for run.sh.
 *
 *   bench-merge OLD.xml POSTED.xml X Y WIDTH HEIGHT [RUNS]
 */
#include "annot/annot.h"
#include "common/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
  GArray *read_old, *read_posted, *merge, *write, *total, *cpu;
  GArray *read_cached, *total_cached, *cpu_cached;
  double cpu_read_cached;  /* CPU time of the last cached read */
} Timings;

/* CPU time of this thread, which a busy machine inflates less than the
 * wall clock. */
static double cpu_ms(void)
{
  struct timespec now;

  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return (double) now.tv_sec * 1e3 + (double) now.tv_nsec / 1e6;
}

static double elapsed_ms(gint64 start)
{
  return (double) (g_get_monotonic_time() - start) / 1000.0;
}

static gint compare_doubles(gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static double percentile(GArray *values, double p)
{
  g_array_sort(values, compare_doubles);
  guint i = (guint) (p * (values->len - 1) + 0.5);
  return g_array_index(values, double, i);
}

/* The stored file from the parsed-file cache, as the server reads the
 * newest version (the first call parses and fills the cache). */
static bool read_cached(const char *old_path, Timings *t)
{
  g_autoptr(GError) error = NULL;
  gint64 start = g_get_monotonic_time();
  double cpu_start = cpu_ms();
  g_autoptr(AnnotSet) set = annot_cache_read_file(old_path, &error);
  double ms = elapsed_ms(start);

  t->cpu_read_cached = cpu_ms() - cpu_start;
  g_array_append_val(t->read_cached, ms);
  if (set == NULL)
    fprintf(stderr, "bench-merge: %s\n", error->message);
  return set != NULL;
}

/* One POST's worth of work; returns false on a read or merge error. */
static bool run_once(GBytes *old_bytes, GBytes *posted_bytes,
                     const AnnotBox *box, Timings *t, gsize *n_out)
{
  g_autoptr(GError) error = NULL;
  gsize old_len, posted_len;
  const char *old_data = g_bytes_get_data(old_bytes, &old_len);
  const char *posted_data = g_bytes_get_data(posted_bytes, &posted_len);
  gint64 start = g_get_monotonic_time(), step = start;
  double cpu_start = cpu_ms();

  g_autoptr(AnnotSet) old = annot_read_asap(old_data, old_len, &error);
  double ms = elapsed_ms(step);
  double cpu_read_old = cpu_ms() - cpu_start;
  g_array_append_val(t->read_old, ms);
  step = g_get_monotonic_time();
  g_autoptr(AnnotSet) posted = old ? annot_read_any(posted_data,
                                                    posted_len, &error)
                                   : NULL;
  ms = elapsed_ms(step);
  g_array_append_val(t->read_posted, ms);
  if (posted == NULL) {
    fprintf(stderr, "bench-merge: %s\n", error->message);
    return false;
  }

  step = g_get_monotonic_time();
  g_autoptr(AnnotSet) merged = annot_merge_region(old, posted, box, &error);
  ms = elapsed_ms(step);
  g_array_append_val(t->merge, ms);
  if (merged == NULL) {
    fprintf(stderr, "bench-merge: %s\n", error->message);
    return false;
  }

  step = g_get_monotonic_time();
  g_autoptr(GString) text = annot_write_asap(merged);
  ms = elapsed_ms(step);
  g_array_append_val(t->write, ms);
  ms = elapsed_ms(start);
  g_array_append_val(t->total, ms);
  ms = cpu_ms() - cpu_start;
  g_array_append_val(t->cpu, ms);
  ms += t->cpu_read_cached - cpu_read_old;
  g_array_append_val(t->cpu_cached, ms);

  /* The same POST with the stored file already parsed. */
  guint last = t->total->len - 1;
  ms = g_array_index(t->read_cached, double, last) +
       g_array_index(t->read_posted, double, last) +
       g_array_index(t->merge, double, last) +
       g_array_index(t->write, double, last);
  g_array_append_val(t->total_cached, ms);
  *n_out = merged->annotations->len;
  return true;
}

static void print_step(const char *name, GArray *values, bool last)
{
  double p50 = percentile(values, 0.5), p99 = percentile(values, 0.99);
  printf("\"%s\": {\"p50_ms\": %.3f, \"p99_ms\": %.3f}%s", name, p50, p99,
         last ? "" : ", ");
}

static bool parse_args(char **argv, int argc, AnnotBox *box, gint64 *runs)
{
  double *fields[] = { &box->x, &box->y, &box->width, &box->height };
  g_autoptr(GError) error = NULL;

  for (int i = 0; i < 4; i++)
    if (!aapi_parse_double(argv[3 + i], -1e9, 1e9, fields[i], &error)) {
      fprintf(stderr, "bench-merge: %s\n", error->message);
      return false;
    }
  if (argc > 7 && !aapi_parse_int64(argv[7], 1, 100000, runs, &error)) {
    fprintf(stderr, "bench-merge: runs: %s\n", error->message);
    return false;
  }
  return true;
}

/* The timing arrays of t, for making and freeing them together. */
#define TIMING_FIELDS(t)                                                   \
  { &(t)->read_old, &(t)->read_posted, &(t)->merge, &(t)->write,           \
    &(t)->total, &(t)->cpu, &(t)->read_cached, &(t)->total_cached,         \
    &(t)->cpu_cached }

static void timings_init(Timings *t)
{
  GArray **all[] = TIMING_FIELDS(t);

  for (guint i = 0; i < G_N_ELEMENTS(all); i++)
    *all[i] = g_array_new(FALSE, FALSE, sizeof(double));
}

static void timings_clear(Timings *t)
{
  GArray **all[] = TIMING_FIELDS(t);

  for (guint i = 0; i < G_N_ELEMENTS(all); i++)
    g_array_unref(*all[i]);
}

static void timings_print(Timings *t, gint64 runs, gsize n_out)
{
  printf("{\"runs\": %" G_GINT64_FORMAT ", \"annotations_out\": %"
         G_GSIZE_FORMAT ", ", runs, n_out);
  print_step("read_old", t->read_old, false);
  print_step("read_posted", t->read_posted, false);
  print_step("merge", t->merge, false);
  print_step("write", t->write, false);
  print_step("total", t->total, false);
  print_step("cpu", t->cpu, false);
  print_step("read_old_cached", t->read_cached, false);
  print_step("total_cached", t->total_cached, false);
  print_step("cpu_cached", t->cpu_cached, true);
  printf("}\n");
}

static GBytes *read_bytes(const char *path)
{
  g_autoptr(GError) error = NULL;
  char *text = NULL;
  gsize length;

  if (!g_file_get_contents(path, &text, &length, &error)) {
    fprintf(stderr, "bench-merge: %s\n", error->message);
    return NULL;
  }
  return g_bytes_new_take(text, length);
}

int main(int argc, char **argv)
{
  AnnotBox box;
  gint64 runs = 30;

  if (argc < 7) {
    fprintf(stderr, "usage: bench-merge OLD POSTED X Y WIDTH HEIGHT "
                    "[RUNS]\n");
    return 2;
  }
  if (!parse_args(argv, argc, &box, &runs))
    return 2;
  g_autoptr(GBytes) old_bytes = read_bytes(argv[1]);
  g_autoptr(GBytes) posted_bytes = read_bytes(argv[2]);
  if (old_bytes == NULL || posted_bytes == NULL)
    return 1;

  /* The first cached read parses and fills the cache: not counted. */
  Timings t = { 0 };
  timings_init(&t);
  gsize n_out = 0;
  bool ok = read_cached(argv[1], &t);
  g_array_set_size(t.read_cached, 0);
  for (gint64 i = 0; ok && i < runs; i++)
    ok = read_cached(argv[1], &t) &&
         run_once(old_bytes, posted_bytes, &box, &t, &n_out);

  if (ok)
    timings_print(&t, runs, n_out);
  timings_clear(&t);
  return ok ? 0 : 1;
}
