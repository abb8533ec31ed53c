/*
 * nn-weights.c: aapi's native weight file (format in src/nn/README.md).
 *
 * Little-endian: magic, version, hyper-parameters, the named tensors in
 * state-dict order, then a SHA-256 of everything before it.  Files are
 * written to a temporary name, synced and renamed, so a reader sees either
 * the old file or the complete new one.
 */
#include "nn-private.h"

#include "common/aapi-error.h"
#include "common/file-read.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#define WEIGHTS_MAGIC "AAPIUNET"
#define WEIGHTS_VERSION 1
#define WEIGHTS_DIGEST 32
#define WEIGHTS_MAX_BYTES (G_GUINT64_CONSTANT(4) << 30)
#define WEIGHTS_MAX_NAME 256

static void put_u32(GByteArray *out, guint32 value)
{
  guint32 le = GUINT32_TO_LE(value);

  g_byte_array_append(out, (const guint8 *) &le, 4);
}

static void put_i64(GByteArray *out, gint64 value)
{
  guint64 le = GUINT64_TO_LE((guint64) value);

  g_byte_array_append(out, (const guint8 *) &le, 8);
}

/* Element data in little-endian order whatever the host. */
static void put_data(GByteArray *out, const NnTensor *t)
{
  gsize elem = nn_dtype_size(t->dtype);
  gsize start = out->len;

  g_byte_array_append(out, t->data, t->n_elements * elem);
  if (G_BYTE_ORDER == G_LITTLE_ENDIAN)
    return;
  for (gsize i = start; i < out->len; i += elem)
    for (gsize a = 0, b = elem - 1; a < b; a++, b--) {
      guint8 tmp = out->data[i + a];
      out->data[i + a] = out->data[i + b];
      out->data[i + b] = tmp;
    }
}

static void put_tensor(GByteArray *out, const NnTensor *t)
{
  guint32 name_len = strlen(t->name);

  put_u32(out, name_len);
  g_byte_array_append(out, (const guint8 *) t->name, name_len);
  put_u32(out, t->dtype == NN_DTYPE_I64 ? 1 : 0);
  put_u32(out, t->ndim);
  for (int i = 0; i < t->ndim; i++)
    put_i64(out, t->shape[i]);
  put_data(out, t);
}

static void put_digest(GByteArray *out)
{
  g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
  guint8 digest[WEIGHTS_DIGEST];
  gsize len = sizeof digest;

  g_checksum_update(sum, out->data, out->len);
  g_checksum_get_digest(sum, digest, &len);
  g_byte_array_append(out, digest, len);
}

static GByteArray *serialise(const NnModel *model)
{
  const NnHparams *h = nn_model_get_hparams(model);
  const GPtrArray *tensors = nn_model_get_tensors(model);
  GByteArray *out = g_byte_array_new();
  const guint8 flags[4] = { h->padding, h->batch_norm,
                            h->up_mode == NN_UP_UPSAMPLE, 0 };

  g_byte_array_append(out, (const guint8 *) WEIGHTS_MAGIC, 8);
  put_u32(out, WEIGHTS_VERSION);
  put_u32(out, h->in_channels);
  put_u32(out, h->n_classes);
  put_u32(out, h->depth);
  put_u32(out, h->wf);
  g_byte_array_append(out, flags, 4);
  put_u32(out, tensors->len);
  for (guint i = 0; i < tensors->len; i++)
    put_tensor(out, g_ptr_array_index(tensors, i));
  put_digest(out);
  return out;
}

bool nn_model_save(const NnModel *model, const char *path, GError **error)
{
  g_autoptr(GByteArray) bytes = serialise(model);
  g_autoptr(GError) local = NULL;

  /* CONSISTENT + DURABLE: temporary file, fsync, rename. */
  if (!g_file_set_contents_full(path, (const char *) bytes->data,
                                bytes->len,
                                G_FILE_SET_CONTENTS_CONSISTENT |
                                G_FILE_SET_CONTENTS_DURABLE,
                                0644, &local)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_IO,
                "cannot write model %s: %s", path, local->message);
    return false;
  }
  return true;
}

typedef struct {
  const char *path;
  const guint8 *data;
  gsize len;
  gsize pos;
} Reader;

static bool corrupt(Reader *r, GError **error, const char *what)
{
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
              "%s is not a valid aapi model file: %s", r->path, what);
  return false;
}

static bool get_bytes(Reader *r, gsize n, const guint8 **out,
                      GError **error)
{
  if (n > r->len - r->pos)
    return corrupt(r, error, "truncated");
  *out = r->data + r->pos;
  r->pos += n;
  return true;
}

static bool get_u32(Reader *r, guint32 *out, GError **error)
{
  const guint8 *p;

  if (!get_bytes(r, 4, &p, error))
    return false;
  memcpy(out, p, 4);
  *out = GUINT32_FROM_LE(*out);
  return true;
}

static bool get_i64(Reader *r, gint64 *out, GError **error)
{
  const guint8 *p;
  guint64 value;

  if (!get_bytes(r, 8, &p, error))
    return false;
  memcpy(&value, p, 8);
  *out = (gint64) GUINT64_FROM_LE(value);
  return true;
}

static bool check_digest(Reader *r, GError **error)
{
  g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
  guint8 digest[WEIGHTS_DIGEST];
  gsize len = sizeof digest;

  /* A short file with the right start is a cut copy, not another kind
   * of file: say which, as that tells what to look for. */
  if (r->len == 0)
    return corrupt(r, error, "empty file");
  if (memcmp(r->data, WEIGHTS_MAGIC, MIN(r->len, 8)) != 0)
    return corrupt(r, error, "wrong magic (does not start with "
                   WEIGHTS_MAGIC ")");
  if (r->len < 8 + WEIGHTS_DIGEST)
    return corrupt(r, error, "truncated");
  g_checksum_update(sum, r->data, r->len - WEIGHTS_DIGEST);
  g_checksum_get_digest(sum, digest, &len);
  if (memcmp(digest, r->data + r->len - WEIGHTS_DIGEST, len) != 0)
    return corrupt(r, error, "checksum mismatch (damaged file)");
  r->len -= WEIGHTS_DIGEST;
  r->pos = 8;
  return true;
}

static bool get_hparams(Reader *r, NnHparams *h, GError **error)
{
  guint32 version, v[4];
  const guint8 *flags;

  if (!get_u32(r, &version, error))
    return false;
  if (version != WEIGHTS_VERSION)
    return corrupt(r, error, "unsupported format version");
  for (int i = 0; i < 4; i++)
    if (!get_u32(r, &v[i], error))
      return false;
  if (!get_bytes(r, 4, &flags, error))
    return false;
  *h = (NnHparams) { (int) MIN(v[0], G_MAXINT), (int) MIN(v[1], G_MAXINT),
                     (int) MIN(v[2], G_MAXINT), (int) MIN(v[3], G_MAXINT),
                     flags[0] != 0, flags[1] != 0,
                     flags[2] ? NN_UP_UPSAMPLE : NN_UP_UPCONV };
  return nn_hparams_check(h, error);
}

/* Reads one record and checks it is the tensor the model expects. */
static bool get_tensor(Reader *r, NnTensor *want, GError **error)
{
  guint32 name_len, dtype, ndim;
  const guint8 *name, *data;

  if (!get_u32(r, &name_len, error))
    return false;
  if (name_len > WEIGHTS_MAX_NAME || !get_bytes(r, name_len, &name, error))
    return corrupt(r, error, "bad tensor name");
  if (name_len != strlen(want->name) ||
      memcmp(name, want->name, name_len) != 0)
    return corrupt(r, error, "tensor names do not match the model");
  if (!get_u32(r, &dtype, error) || !get_u32(r, &ndim, error))
    return false;
  if (dtype != (want->dtype == NN_DTYPE_I64 ? 1u : 0u) ||
      ndim != (guint32) want->ndim)
    return corrupt(r, error, "tensor type does not match the model");
  for (guint32 i = 0; i < ndim; i++) {
    gint64 dim;
    if (!get_i64(r, &dim, error))
      return false;
    if (dim != want->shape[i])
      return corrupt(r, error, "tensor shape does not match the model");
  }
  gsize bytes = want->n_elements * nn_dtype_size(want->dtype);
  if (!get_bytes(r, bytes, &data, error))
    return false;
  memcpy(want->data, data, bytes);
  return true;
}

static NnModel *parse(Reader *r, GError **error)
{
  NnHparams hparams;
  guint32 count;

  if (!check_digest(r, error) || !get_hparams(r, &hparams, error))
    return NULL;
  g_autoptr(NnModel) model = nn_model_new(&hparams, error);
  const GPtrArray *tensors = nn_model_get_tensors(model);
  if (!get_u32(r, &count, error))
    return NULL;
  if (count != tensors->len) {
    corrupt(r, error, "tensor count does not match the model");
    return NULL;
  }
  for (guint i = 0; i < tensors->len; i++)
    if (!get_tensor(r, g_ptr_array_index(tensors, i), error))
      return NULL;
  if (r->pos != r->len) {
    corrupt(r, error, "trailing data");
    return NULL;
  }
  return g_steal_pointer(&model);
}

/* Big-endian hosts swap each element after the copy. */
static void swap_model(NnModel *model)
{
  const GPtrArray *tensors = nn_model_get_tensors(model);

  for (guint i = 0; i < tensors->len; i++) {
    NnTensor *t = g_ptr_array_index(tensors, i);
    if (t->dtype == NN_DTYPE_I64) {
      gint64 *v = t->data;
      for (gint64 k = 0; k < t->n_elements; k++)
        v[k] = GINT64_FROM_LE(v[k]);
    } else {
      guint32 *v = t->data;
      for (gint64 k = 0; k < t->n_elements; k++)
        v[k] = GUINT32_FROM_LE(v[k]);
    }
  }
}

NnModel *nn_model_load(const char *path, GError **error)
{
  g_autoptr(GError) local = NULL;
  gsize length = 0;
  /* Read, not mapped: a model copied over while the server scans the
   * folder would otherwise end the process with SIGBUS. */
  g_autofree char *data = aapi_read_file_capped(path, WEIGHTS_MAX_BYTES,
                                                &length, &local);

  if (data == NULL) {
    if (g_error_matches(local, AAPI_ERROR, AAPI_ERROR_TOO_LARGE)) {
      Reader big = { path, NULL, 0, 0 };
      corrupt(&big, error, "file too large");
    } else {
      g_set_error(error, AAPI_ERROR, local->code, "cannot read model: %s",
                  local->message);
    }
    return NULL;
  }

  Reader r = { path, (const guint8 *) data, length, 0 };
  NnModel *model = parse(&r, error);
  if (model != NULL && G_BYTE_ORDER != G_LITTLE_ENDIAN)
    swap_model(model);
  return model;
}

/* The two extensions aapi writes and reads decide the kind, so that a
 * damaged file is described as what it was meant to be (an empty
 * .aapimodel is a cut native file, not a bad zip archive); other names
 * go by the first bytes. */
NnModel *nn_model_load_any(const char *path, GError **error)
{
  char head[8] = { 0 };
  FILE *file;

  if (g_str_has_suffix(path, NN_MODEL_EXT))
    return nn_model_load(path, error);
  if (g_str_has_suffix(path, ".ckpt"))
    return nn_ckpt_import(path, error);
  file = g_fopen(path, "rb");
  if (file == NULL) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
                "cannot open model %s: %s", path, g_strerror(errno));
    return NULL;
  }
  size_t got = fread(head, 1, sizeof head, file);
  fclose(file);
  if (got == sizeof head && memcmp(head, WEIGHTS_MAGIC, 8) == 0)
    return nn_model_load(path, error);
  return nn_ckpt_import(path, error);
}
