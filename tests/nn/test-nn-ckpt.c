/* test-nn-ckpt.c: checkpoint import (good and hostile files), the state
 * dict layout, and the native weight file. */
#include "nn/nn.h"
#include "common/aapi-error.h"
#include "testutil.h"

#include <glib/gstdio.h>
#include <jansson.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

static char *tmpdir;

/* Writes a zip archive with the given entries (name, bytes, length). */
typedef struct {
  const char *name;
  const void *data;
  gsize len;
} Entry;

static char *make_zip(const char *file, const Entry *entries, int n)
{
  char *path = g_build_filename(tmpdir, file, NULL);
  int code = 0;
  zip_t *archive = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &code);

  g_assert_nonnull(archive);
  for (int i = 0; i < n; i++) {
    zip_source_t *src = zip_source_buffer(archive, entries[i].data,
                                          entries[i].len, 0);
    g_assert_nonnull(src);
    g_assert_cmpint(zip_file_add(archive, entries[i].name, src, 0), >=, 0);
  }
  g_assert_cmpint(zip_close(archive), ==, 0);
  return path;
}

static char *fixture(const char *name)
{
  g_autofree char *rel = g_build_filename("fixtures/unet", name, NULL);

  return test_shared_path(rel);
}

/* Imports path and expects AAPI_ERROR_INVALID mentioning text. */
static void expect_invalid(const char *path, const char *text)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(NnModel) model = nn_ckpt_import(path, &error);

  g_assert_null(model);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_test_message("%s: %s", path, error->message);
  g_assert_nonnull(strstr(error->message, text));
}

static void test_not_a_zip(void)
{
  g_autofree char *path = g_build_filename(tmpdir, "plain.ckpt", NULL);

  g_assert_true(g_file_set_contents(path, "not a zip at all", -1, NULL));
  expect_invalid(path, "not a zip");
}

static void test_missing_file(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(NnModel) model = nn_ckpt_import("/nonexistent/x.ckpt", &error);

  g_assert_null(model);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
}

static void test_zip_without_pickle(void)
{
  const Entry entries[] = { { "archive/data/0", "abcd", 4 } };
  g_autofree char *path = make_zip("nopickle.ckpt", entries, 1);

  expect_invalid(path, "no data.pkl");
}

/* The first half of a real pickle: no STOP. */
static void test_truncated_pickle(void)
{
  static const guint8 pickle[] = { 0x80, 0x02, '}', 'q', 0, '(', 'X', 5,
                                   0, 0, 0, 'e', 'p', 'o', 'c', 'h' };
  const Entry entries[] = { { "m/data.pkl", pickle, sizeof pickle } };
  g_autofree char *path = make_zip("truncated.ckpt", entries, 1);

  expect_invalid(path, "truncated");
}

/* {"state_dict": os.system("touch <marker>")}: the REDUCE must stay an
 * opaque object and the command must never run. */
static void test_malicious_global(void)
{
  g_autofree char *marker = g_build_filename(tmpdir, "pwned", NULL);
  g_autofree char *cmd = g_strdup_printf("touch %s", marker);
  g_autoptr(GByteArray) p = g_byte_array_new();
  guint32 len = GUINT32_TO_LE(strlen(cmd));

  static const char head[] = "\x80\x02}(X\x0a\0\0\0state_dict"
                             "cos\nsystem\nX";

  g_byte_array_append(p, (const guint8 *) head, sizeof head - 1);
  g_byte_array_append(p, (const guint8 *) &len, 4);
  g_byte_array_append(p, (const guint8 *) cmd, strlen(cmd));
  g_byte_array_append(p, (const guint8 *) "\x85Ru.", 4);
  const Entry entries[] = { { "evil/data.pkl", p->data, p->len } };
  g_autofree char *path = make_zip("evil.ckpt", entries, 1);

  expect_invalid(path, "no state_dict");
  g_assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
}

static void test_unknown_opcode(void)
{
  static const guint8 pickle[] = { 0x80, 0x02, 'i', 'o', 's', '\n' };
  const Entry entries[] = { { "m/data.pkl", pickle, sizeof pickle } };
  g_autofree char *path = make_zip("opcode.ckpt", entries, 1);

  expect_invalid(path, "unsupported opcode");
}

/* A well-formed pickle that is not a checkpoint dict. */
static void test_no_state_dict(void)
{
  static const guint8 pickle[] = { 0x80, 0x02, '}', 'q', 0, '.' };
  const Entry entries[] = { { "m/data.pkl", pickle, sizeof pickle } };
  g_autofree char *path = make_zip("empty.ckpt", entries, 1);

  expect_invalid(path, "no state_dict");
}

/* The model's names and shapes follow PyTorch's state dict exactly. */
static void test_state_dict_layout(void)
{
  g_autofree char *dir = fixture("unet_d3_wf3_bn_upconv");
  if (dir == NULL)
    return;
  g_autofree char *ckpt = g_build_filename(dir, "model.ckpt", NULL);
  g_autofree char *manifest = g_build_filename(dir, "manifest.json", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(NnModel) model = nn_ckpt_import(ckpt, &error);
  g_assert_no_error(error);
  json_t *root = json_load_file(manifest, 0, NULL);
  json_t *tensors = json_object_get(root, "tensors");
  const GPtrArray *have = nn_model_get_tensors(model);
  guint i = 0;
  const char *key;
  json_t *value;

  /* The manifest lists after.<entry> for every entry, in order. */
  json_object_foreach(tensors, key, value) {
    if (!g_str_has_prefix(key, "after."))
      continue;
    g_assert_cmpuint(i, <, have->len);
    NnTensor *t = g_ptr_array_index(have, i++);
    g_assert_cmpstr(t->name, ==, key + strlen("after."));
    json_t *shape = json_object_get(value, "shape");
    gsize nd = json_array_size(shape);
    /* PyTorch stores scalars as shape [] (the manifest may say [1]). */
    if (t->ndim > 0) {
      g_assert_cmpuint(nd, ==, (gsize) t->ndim);
      for (gsize d = 0; d < nd; d++)
        g_assert_cmpint(json_integer_value(json_array_get(shape, d)), ==,
                        t->shape[d]);
    }
  }
  g_assert_cmpuint(i, ==, have->len);
  json_decref(root);
}

static void assert_same_model(const NnModel *a, const NnModel *b)
{
  const GPtrArray *ta = nn_model_get_tensors(a);
  const GPtrArray *tb = nn_model_get_tensors(b);

  const NnHparams *ha = nn_model_get_hparams(a);
  const NnHparams *hb = nn_model_get_hparams(b);

  g_assert_cmpint(ha->in_channels, ==, hb->in_channels);
  g_assert_cmpint(ha->n_classes, ==, hb->n_classes);
  g_assert_cmpint(ha->depth, ==, hb->depth);
  g_assert_cmpint(ha->wf, ==, hb->wf);
  g_assert_true(ha->padding == hb->padding);
  g_assert_true(ha->batch_norm == hb->batch_norm);
  g_assert_true(ha->up_mode == hb->up_mode);
  g_assert_cmpuint(ta->len, ==, tb->len);
  for (guint i = 0; i < ta->len; i++) {
    const NnTensor *x = g_ptr_array_index(ta, i);
    const NnTensor *y = g_ptr_array_index(tb, i);
    g_assert_cmpstr(x->name, ==, y->name);
    g_assert_cmpint(x->n_elements, ==, y->n_elements);
    g_assert_cmpmem(x->data, x->n_elements * (x->dtype ? 8 : 4), y->data,
                    y->n_elements * (y->dtype ? 8 : 4));
    g_assert_cmpuint(GPOINTER_TO_SIZE(y->data) % 64, ==, 0);
  }
}

/* Import, save natively, load: identical; a flipped byte is refused. */
static void test_native_round_trip(void)
{
  g_autofree char *dir = fixture("unet_d2_wf2_upsample");
  if (dir == NULL)
    return;
  g_autofree char *ckpt = g_build_filename(dir, "model.ckpt", NULL);
  g_autofree char *path = g_build_filename(tmpdir, "m" NN_MODEL_EXT, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(NnModel) model = nn_ckpt_import(ckpt, &error);
  g_assert_no_error(error);

  g_assert_true(nn_model_save(model, path, &error));
  g_autoptr(NnModel) loaded = nn_model_load(path, &error);
  g_assert_no_error(error);
  assert_same_model(model, loaded);
  g_autoptr(NnModel) any = nn_model_load_any(path, &error);
  g_assert_no_error(error);
  assert_same_model(model, any);

  g_autofree char *bytes = NULL;
  gsize len;
  g_assert_true(g_file_get_contents(path, &bytes, &len, NULL));
  bytes[len / 2] ^= 0x40;
  g_assert_true(g_file_set_contents(path, bytes, len, NULL));
  g_autoptr(NnModel) bad = nn_model_load(path, &error);
  g_assert_null(bad);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_assert_nonnull(strstr(error->message, "checksum"));
}

/* A cut or emptied native file is reported as a damaged native file by
 * nn_model_load_any, never as a checkpoint that is not a zip archive. */
static void test_native_damaged(void)
{
  g_autofree char *path = g_build_filename(tmpdir, "cut" NN_MODEL_EXT,
                                           NULL);
  NnHparams hp = { 3, 2, 2, 1, true, true, NN_UP_UPCONV };
  g_autoptr(GError) error = NULL;
  g_autoptr(NnModel) model = nn_model_new(&hp, &error);
  g_autofree char *bytes = NULL;
  gsize len;
  struct { gsize keep; const char *reason; } cuts[] = {
    { 0, "empty file" }, { 5, "truncated" }, { 20, "truncated" },
    { 3000, "checksum" },
  };

  g_assert_no_error(error);
  g_assert_true(nn_model_save(model, path, &error));
  g_assert_true(g_file_get_contents(path, &bytes, &len, NULL));
  for (guint i = 0; i < G_N_ELEMENTS(cuts); i++) {
    g_assert_true(g_file_set_contents(path, bytes, cuts[i].keep, NULL));
    g_autoptr(NnModel) bad = nn_model_load_any(path, &error);
    g_assert_null(bad);
    g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
    g_assert_nonnull(strstr(error->message, "not a valid aapi model"));
    g_assert_nonnull(strstr(error->message, cuts[i].reason));
    g_clear_error(&error);
  }
  g_assert_true(g_file_set_contents(path, "PK\x03\x04garbage", 11, NULL));
  g_autoptr(NnModel) zip = nn_model_load_any(path, &error);
  g_assert_null(zip);
  g_assert_nonnull(strstr(error->message, "wrong magic"));
}

/* Rewrites a file in place (truncate, then write) until told to stop,
 * as `cp` over a served model does. */
typedef struct {
  const char *path;
  const char *bytes;
  gsize len;
  gint stop;
} Rewriter;

static gpointer rewrite_loop(gpointer data)
{
  Rewriter *w = data;

  while (!g_atomic_int_get(&w->stop)) {
    FILE *f = fopen(w->path, "wb");

    g_assert_nonnull(f);
    for (gsize done = 0; done < w->len; done += 4096)
      fwrite(w->bytes + done, 1, MIN(4096, w->len - done), f);
    fclose(f);
  }
  return NULL;
}

/* A model file copied over while it is loaded gives either the model or
 * a "not valid" error, never SIGBUS (a mapping of a file that shrinks
 * under it kills the process); a FIFO is refused without blocking. */
static void test_native_rewritten_while_read(void)
{
  g_autofree char *path = g_build_filename(tmpdir, "busy" NN_MODEL_EXT,
                                           NULL);
  g_autofree char *fifo = g_build_filename(tmpdir, "fifo" NN_MODEL_EXT,
                                           NULL);
  NnHparams hp = { 3, 2, 4, 3, true, true, NN_UP_UPCONV };
  g_autoptr(GError) error = NULL;
  g_autoptr(NnModel) model = nn_model_new(&hp, &error);
  g_autofree char *bytes = NULL;
  gsize len;
  guint loaded = 0, refused = 0;

  g_assert_no_error(error);
  g_assert_true(nn_model_save(model, path, &error));
  g_assert_true(g_file_get_contents(path, &bytes, &len, NULL));
  Rewriter w = { path, bytes, len, 0 };
  GThread *thread = g_thread_new("rewrite", rewrite_loop, &w);
  for (int i = 0; i < 2000; i++) {
    g_autoptr(GError) local = NULL;
    g_autoptr(NnModel) m = nn_model_load(path, &local);
    if (m) {
      assert_same_model(model, m);
      loaded++;
    } else {
      g_assert_error(local, AAPI_ERROR, AAPI_ERROR_INVALID);
      refused++;
    }
  }
  g_atomic_int_set(&w.stop, 1);
  g_thread_join(thread);
  g_test_message("%u loaded, %u refused while rewritten", loaded, refused);

  g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
  g_autoptr(NnModel) none = nn_model_load_any(fifo, &error);
  g_assert_null(none);
  g_assert_nonnull(strstr(error->message, "not a regular file"));
}

/* Random init: seeded, PyTorch-like bounds, copies independent. */
static void test_random_init_and_copy(void)
{
  const NnHparams h = { 3, 2, 3, 2, false, true, NN_UP_UPSAMPLE };
  g_autoptr(GError) error = NULL;
  g_autoptr(NnModel) a = nn_model_new(&h, &error);
  g_autoptr(NnModel) b = nn_model_new(&h, &error);
  g_assert_no_error(error);

  nn_model_init_random(a, 42);
  nn_model_init_random(b, 42);
  assert_same_model(a, b);
  NnTensor *w = nn_model_get_tensor(a, "down_path.0.block.0.weight");
  const float *wf = w->data;
  for (gint64 i = 0; i < w->n_elements; i++)
    g_assert_cmpfloat(fabsf(wf[i]), <=, 1.0 / sqrt(27.0));
  const float *var = nn_model_get_tensor(
      a, "down_path.0.block.2.running_var")->data;
  g_assert_cmpfloat(var[0], ==, 1.0f);
  g_assert_nonnull(nn_model_get_tensor(a, "up_path.1.up.1.weight"));
  g_assert_nonnull(nn_model_get_tensor(a, "down_path.2.block.5.weight"));

  g_autoptr(NnModel) c = nn_model_copy(a);
  assert_same_model(a, c);
  ((float *) nn_model_get_tensor(c, "last.bias")->data)[0] += 1.0f;
  g_assert_cmpfloat(((float *) nn_model_get_tensor(a, "last.bias")->data)[0],
                    !=,
                    ((float *) nn_model_get_tensor(c, "last.bias")->data)[0]);
}

static void test_bad_hparams(void)
{
  const NnHparams h = { 3, 2, 40, 3, true, true, NN_UP_UPCONV };
  g_autoptr(GError) error = NULL;
  g_autoptr(NnModel) model = nn_model_new(&h, &error);

  g_assert_null(model);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
}

static void test_output_size(void)
{
  const NnHparams pad = { 3, 2, 5, 4, true, true, NN_UP_UPCONV };
  const NnHparams nopad = { 3, 2, 3, 2, false, true, NN_UP_UPCONV };
  int h, w;

  g_assert_true(nn_output_size(&pad, 256, 1024, &h, &w, NULL));
  g_assert_cmpint(h, ==, 256);
  g_assert_cmpint(w, ==, 1024);
  /* Odd sizes lose the rows the pooling drops. */
  g_assert_true(nn_output_size(&pad, 33, 48, &h, &w, NULL));
  g_assert_cmpint(h, ==, 32);
  g_assert_false(nn_output_size(&pad, 8, 64, &h, &w, NULL));
  /* Without padding: 572 -> 484 at depth 3 (two 3x3 per level). */
  g_assert_true(nn_output_size(&nopad, 64, 64, &h, &w, NULL));
  g_assert_cmpint(h, ==, 24);
  g_assert_false(nn_output_size(&nopad, 20, 64, &h, &w, NULL));
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  tmpdir = test_make_tmpdir("nn-ckpt");
  g_test_add_func("/nn/ckpt/not-a-zip", test_not_a_zip);
  g_test_add_func("/nn/ckpt/missing-file", test_missing_file);
  g_test_add_func("/nn/ckpt/zip-without-pickle", test_zip_without_pickle);
  g_test_add_func("/nn/ckpt/truncated-pickle", test_truncated_pickle);
  g_test_add_func("/nn/ckpt/malicious-global", test_malicious_global);
  g_test_add_func("/nn/ckpt/unknown-opcode", test_unknown_opcode);
  g_test_add_func("/nn/ckpt/no-state-dict", test_no_state_dict);
  g_test_add_func("/nn/ckpt/state-dict-layout", test_state_dict_layout);
  g_test_add_func("/nn/weights/round-trip", test_native_round_trip);
  g_test_add_func("/nn/weights/damaged", test_native_damaged);
  g_test_add_func("/nn/weights/rewritten-while-read",
                  test_native_rewritten_while_read);
  g_test_add_func("/nn/model/random-init-copy", test_random_init_and_copy);
  g_test_add_func("/nn/model/bad-hparams", test_bad_hparams);
  g_test_add_func("/nn/forward/output-size", test_output_size);
  return g_test_run();
}
