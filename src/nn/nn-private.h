/*
 * nn-private.h: helpers shared by the files of src/nn (not a contract).
 */
#pragma once

#include "nn.h"

/* Bounds on hyper-parameters: generous for the family, small enough that
 * a hostile file cannot ask for absurd allocations. */
#define NN_MAX_DEPTH 8
#define NN_MAX_WF 10
#define NN_MAX_CHANNELS 256
#define NN_MAX_CLASSES 256

/* Checks hyper-parameters against the bounds above. */
bool nn_hparams_check(const NnHparams *hparams, GError **error);

const char *nn_up_mode_name(NnUpMode mode);
bool nn_up_mode_parse(const char *text, NnUpMode *mode);

/* Size in bytes of one element of a dtype. */
gsize nn_dtype_size(NnDtype dtype);

/* Filters at level i: 2^(wf+i). */
int nn_level_channels(const NnHparams *hparams, int level);

/* Looks up a float tensor by printf-style name; NULL when missing. */
const float *nn_model_floats(const NnModel *model, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

/* Index of the first batch-norm layer inside a conv block, or -1 when the
 * model has no batch norm; block layer indices are conv 0, ReLU 1, then
 * with batch norm: BN 2, conv 3, ReLU 4, BN 5; without: conv 2, ReLU 3. */
int nn_block_index(const NnHparams *hparams, int conv, bool bn);

/*
 * A minimal pickle reader (nn-pickle.c) for PyTorch checkpoints.  Objects
 * live in the reader's arena and die with it.
 */
typedef enum {
  PK_NONE,
  PK_BOOL,
  PK_INT,
  PK_FLOAT,
  PK_STR,
  PK_BYTES,
  PK_TUPLE,
  PK_LIST,
  PK_DICT,      /* items: key, value, key, value ... in insertion order */
  PK_GLOBAL,    /* str: "module name"; never resolved */
  PK_STORAGE,   /* str: archive key; dtype; i: number of elements */
  PK_TENSOR,    /* storage, offset, shape, stride */
  PK_OPAQUE,    /* anything built by code we do not run */
} PkKind;

#define PK_MAX_NDIM 8

typedef struct PkObj PkObj;
struct PkObj {
  PkKind kind;
  gint64 i;
  double f;
  char *str;
  gsize len;
  GPtrArray *items;      /* PkObj*, borrowed from the arena */
  /* storages and tensors */
  bool dtype_known;
  NnDtype dtype;
  char *storage_class;
  PkObj *storage;
  gint64 offset;
  int ndim;
  gint64 shape[PK_MAX_NDIM];
  gint64 stride[PK_MAX_NDIM];
};

typedef struct PkReader PkReader;

/* Runs the pickle program in data; *root is the object it returns. */
PkReader *pk_reader_load(const guint8 *data, gsize len, PkObj **root,
                         GError **error);
void pk_reader_free(PkReader *reader);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PkReader, pk_reader_free)

/* A dict, or an object of a dict subclass that received items. */
bool pk_is_mapping(const PkObj *obj);

/* The value of a string key in a mapping, or NULL. */
PkObj *pk_dict_get(const PkObj *dict, const char *key);
