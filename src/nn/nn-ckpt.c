/*
 * nn-ckpt.c: imports PyTorch Lightning checkpoints.
 *
 * A checkpoint is a zip archive (libzip) holding <top>/data.pkl, a pickle
 * of a dict with "state_dict" and "hyper_parameters", and one file
 * <top>/data/<key> per tensor storage.  The pickle is read by our inert
 * reader (nn-pickle.c); nothing from the file is ever executed.
 */
#include "nn-private.h"

#include "common/aapi-error.h"
#include "common/log.h"

#include <string.h>
#include <zip.h>

#define CKPT_MAX_PICKLE (256u << 20)
#define CKPT_MAX_STORAGE (G_GUINT64_CONSTANT(1) << 30)

static void zip_discard_handle(zip_t *archive)
{
  if (archive)
    zip_discard(archive);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(zip_t, zip_discard_handle)

typedef struct {
  const char *path;
  zip_t *archive;
  char *prefix;      /* "<top>/" of data.pkl */
} Ckpt;

static bool invalid(GError **error, const char *path, const char *what)
{
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
              "%s is not a usable checkpoint: %s", path, what);
  return false;
}

static zip_t *open_archive(const char *path, GError **error)
{
  int code = 0;
  zip_t *archive = zip_open(path, ZIP_RDONLY, &code);

  if (archive != NULL)
    return archive;
  if (code == ZIP_ER_OPEN || code == ZIP_ER_NOENT || code == ZIP_ER_READ) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
                "cannot open %s", path);
    return NULL;
  }
  zip_error_t zerr;
  zip_error_init_with_code(&zerr, code);
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
              "%s is not a checkpoint (not a zip archive as torch.save "
              "writes: %s)", path, zip_error_strerror(&zerr));
  zip_error_fini(&zerr);
  return NULL;
}

/* The one <top>/data.pkl entry; the top folder name varies. */
static bool find_pickle(Ckpt *ckpt, zip_uint64_t *index, GError **error)
{
  zip_int64_t n = zip_get_num_entries(ckpt->archive, 0);

  for (zip_int64_t i = 0; i < n; i++) {
    const char *name = zip_get_name(ckpt->archive, i, ZIP_FL_ENC_RAW);
    const char *slash = name ? strchr(name, '/') : NULL;
    if (slash && strcmp(slash, "/data.pkl") == 0) {
      ckpt->prefix = g_strndup(name, slash - name + 1);
      *index = i;
      return true;
    }
  }
  return invalid(error, ckpt->path, "no data.pkl in the archive");
}

/* Reads one archive entry of at most limit bytes. */
static guint8 *read_entry(Ckpt *ckpt, zip_uint64_t index, guint64 limit,
                          gsize *len, GError **error)
{
  zip_stat_t st;

  if (zip_stat_index(ckpt->archive, index, 0, &st) != 0 ||
      !(st.valid & ZIP_STAT_SIZE)) {
    invalid(error, ckpt->path, "unreadable archive entry");
    return NULL;
  }
  if (st.size > limit) {
    invalid(error, ckpt->path, "archive entry too large");
    return NULL;
  }

  zip_file_t *file = zip_fopen_index(ckpt->archive, index, 0);
  g_autofree guint8 *data = g_malloc(MAX(st.size, 1));
  zip_int64_t got = file ? zip_fread(file, data, st.size) : -1;
  if (file)
    zip_fclose(file);
  if (got < 0 || (zip_uint64_t) got != st.size) {
    invalid(error, ckpt->path, "archive entry cannot be read (corrupt?)");
    return NULL;
  }
  *len = st.size;
  return g_steal_pointer(&data);
}

static bool hp_int(const PkObj *hp, const char *key, int fallback,
                   int *out, GError **error)
{
  PkObj *value = pk_dict_get(hp, key);

  if (value == NULL) {
    *out = fallback;
    return true;
  }
  if ((value->kind != PK_INT && value->kind != PK_BOOL) ||
      value->i < G_MININT || value->i > G_MAXINT) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "hyper-parameter %s is not an integer", key);
    return false;
  }
  *out = (int) value->i;
  return true;
}

static bool hp_bool(const PkObj *hp, const char *key, bool *out,
                    GError **error)
{
  int value;

  if (!hp_int(hp, key, *out, &value, error))
    return false;
  *out = value != 0;
  return true;
}

/* Missing keys take the defaults of the family's constructor. */
static bool map_hparams(const PkObj *hp, NnHparams *h, GError **error)
{
  *h = (NnHparams) { .padding = false, .batch_norm = false,
                     .up_mode = NN_UP_UPCONV };
  if (!hp_int(hp, "in_channels", 1, &h->in_channels, error) ||
      !hp_int(hp, "n_classes", 2, &h->n_classes, error) ||
      !hp_int(hp, "depth", 5, &h->depth, error) ||
      !hp_int(hp, "wf", 6, &h->wf, error) ||
      !hp_bool(hp, "padding", &h->padding, error) ||
      !hp_bool(hp, "batch_norm", &h->batch_norm, error))
    return false;

  PkObj *mode = pk_dict_get(hp, "up_mode");
  if (mode != NULL &&
      (mode->kind != PK_STR || !nn_up_mode_parse(mode->str, &h->up_mode))) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "hyper-parameter up_mode must be 'upconv' or 'upsample'");
    return false;
  }
  return nn_hparams_check(h, error);
}

/* The state-dict key prefix ("" or e.g. "model." when the Lightning
 * module wraps the net), found from the last layer's weight. */
static const char *key_prefix(const PkObj *sd, GString *prefix)
{
  for (guint i = 0; i + 1 < sd->items->len; i += 2) {
    const PkObj *key = g_ptr_array_index(sd->items, i);
    if (key->kind == PK_STR && g_str_has_suffix(key->str, "last.weight")) {
      g_string_assign(prefix, key->str);
      g_string_truncate(prefix, key->len - strlen("last.weight"));
      return prefix->str;
    }
  }
  return "";
}

static bool shape_matches(const NnTensor *want, const PkObj *got)
{
  if (got->ndim != want->ndim)
    return false;
  for (int i = 0; i < want->ndim; i++)
    if (got->shape[i] != want->shape[i])
      return false;
  return true;
}

/* Row-major strides for the tensor's shape; others are refused. */
static bool is_contiguous(const PkObj *t)
{
  gint64 expect = 1;

  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->stride[i] != expect)
      return false;
    expect *= t->shape[i];
  }
  return true;
}

static char *describe_shape(const gint64 *shape, int ndim)
{
  GString *text = g_string_new("[");

  for (int i = 0; i < ndim; i++)
    g_string_append_printf(text, "%s%" G_GINT64_FORMAT, i ? ", " : "",
                           shape[i]);
  g_string_append_c(text, ']');
  return g_string_free(text, FALSE);
}

static bool check_record(const NnTensor *want, const PkObj *got,
                         GError **error)
{
  if (got == NULL || got->kind != PK_TENSOR) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "state_dict has no tensor %s", want->name);
    return false;
  }
  if (!got->storage->dtype_known || got->storage->dtype != want->dtype) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "tensor %s has storage type %s, expected %s", want->name,
                got->storage->storage_class,
                want->dtype == NN_DTYPE_F32 ? "float32" : "int64");
    return false;
  }
  if (!shape_matches(want, got)) {
    g_autofree char *a = describe_shape(got->shape, got->ndim);
    g_autofree char *b = describe_shape(want->shape, want->ndim);
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "tensor %s has shape %s but the hyper-parameters imply %s",
                want->name, a, b);
    return false;
  }
  if (!is_contiguous(got) || got->offset < 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "tensor %s is not contiguous (unsupported)", want->name);
    return false;
  }
  return true;
}

/* Copies one tensor's elements out of its storage file. */
static bool load_storage(Ckpt *ckpt, NnTensor *want, const PkObj *got,
                         GError **error)
{
  g_autofree char *name = g_strdup_printf("%sdata/%s", ckpt->prefix,
                                          got->storage->str);
  zip_int64_t index = zip_name_locate(ckpt->archive, name, ZIP_FL_ENC_RAW);
  gsize elem = nn_dtype_size(want->dtype), len = 0;

  if (index < 0)
    return invalid(error, ckpt->path, "a tensor storage file is missing");
  if ((guint64) got->storage->i > CKPT_MAX_STORAGE / elem)
    return invalid(error, ckpt->path, "tensor storage too large");
  g_autofree guint8 *data = read_entry(ckpt, index, CKPT_MAX_STORAGE, &len,
                                       error);
  if (data == NULL)
    return false;
  /* The storage must hold numel elements and the tensor's range. */
  if ((guint64) got->storage->i * elem != len ||
      (guint64) got->offset + want->n_elements > (guint64) got->storage->i)
    return invalid(error, ckpt->path, "tensor storage has the wrong size");
  memcpy(want->data, data + got->offset * elem, want->n_elements * elem);
  return true;
}

/* Fills every tensor the hyper-parameters imply from the state dict. */
static bool fill_model(Ckpt *ckpt, NnModel *model, const PkObj *sd,
                       GError **error)
{
  g_autoptr(GString) prefix_buf = g_string_new(NULL);
  const char *prefix = key_prefix(sd, prefix_buf);
  const GPtrArray *tensors = nn_model_get_tensors(model);

  for (guint i = 0; i < tensors->len; i++) {
    NnTensor *want = g_ptr_array_index(tensors, i);
    g_autofree char *key = g_strconcat(prefix, want->name, NULL);
    const PkObj *got = pk_dict_get(sd, key);
    if (!check_record(want, got, error) ||
        !load_storage(ckpt, want, got, error))
      return false;
  }
  if (sd->items->len / 2 != tensors->len)
    g_warning("%s: state_dict has %u entries, the model uses %u",
              ckpt->path, sd->items->len / 2, tensors->len);
  return true;
}

static NnModel *model_from_root(Ckpt *ckpt, const PkObj *root,
                                GError **error)
{
  const PkObj *sd = pk_dict_get(root, "state_dict");
  const PkObj *hp = pk_dict_get(root, "hyper_parameters");
  NnHparams hparams;

  if (!pk_is_mapping(root) || !pk_is_mapping(sd)) {
    invalid(error, ckpt->path, "no state_dict");
    return NULL;
  }
  if (hp == NULL)
    hp = pk_dict_get(root, "hparams");
  if (!pk_is_mapping(hp)) {
    invalid(error, ckpt->path, "no hyper_parameters");
    return NULL;
  }
  if (!map_hparams(hp, &hparams, error))
    return NULL;

  g_autoptr(NnModel) model = nn_model_new(&hparams, error);
  if (model == NULL || !fill_model(ckpt, model, sd, error))
    return NULL;
  return g_steal_pointer(&model);
}

NnModel *nn_ckpt_import(const char *path, GError **error)
{
  Ckpt ckpt = { .path = path };
  g_autoptr(zip_t) archive = open_archive(path, error);
  zip_uint64_t index;
  gsize len = 0;
  PkObj *root = NULL;

  if (archive == NULL)
    return NULL;
  ckpt.archive = archive;

  /* Read and run the pickle, then pull the tensors it names. */
  g_autofree char *prefix = NULL;
  bool found = find_pickle(&ckpt, &index, error);
  prefix = ckpt.prefix;
  if (!found)
    return NULL;
  g_autofree guint8 *pickle = read_entry(&ckpt, index, CKPT_MAX_PICKLE,
                                         &len, error);
  if (pickle == NULL)
    return NULL;
  g_autoptr(PkReader) reader = pk_reader_load(pickle, len, &root, error);
  if (reader == NULL) {
    aapi_error_prefix(error, "%s: ", path);
    return NULL;
  }
  NnModel *model = model_from_root(&ckpt, root, error);
  if (model != NULL)
    aapi_debug(AAPI_DEBUG_NN, "imported %s", path);
  return model;
}
