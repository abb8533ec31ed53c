/*
 * nn-pickle.c: a minimal, inert pickle reader for PyTorch checkpoints.
 *
 * There is no C library for Python's pickle format, so aapi carries this
 * small virtual machine of its own.  It understands the opcodes that
 * torch.save writes (protocols 2 to 5) and builds plain values, dicts,
 * lists and tuples.  A GLOBAL is only a name: nothing is imported or
 * called.  REDUCE knows two callables by name (the tensor rebuild and
 * OrderedDict); every other REDUCE, BUILD or NEWOBJ yields an opaque
 * placeholder.  Every size is bounded so that a hostile file fails
 * cleanly.
 */
#include "nn-private.h"

#include "common/aapi-error.h"

#include <string.h>

#define PK_MAX_STACK (1 << 20)
#define PK_MAX_MEMO (1 << 22)
#define PK_MAX_OBJECTS (1 << 23)
#define PK_MAX_STRING (16 << 20)
#define PK_MAX_GLOBAL 512

struct PkReader {
  const guint8 *data;
  gsize len;
  gsize pos;
  GPtrArray *arena;      /* owns every PkObj */
  GPtrArray *stack;
  GArray *marks;         /* gsize stack lengths at each MARK */
  GPtrArray *memo;
  gsize memo_count;
  PkObj *result;
};

static void obj_free(gpointer data)
{
  PkObj *obj = data;

  g_free(obj->str);
  g_free(obj->storage_class);
  if (obj->items)
    g_ptr_array_unref(obj->items);
  g_free(obj);
}

void pk_reader_free(PkReader *reader)
{
  if (reader == NULL)
    return;
  g_ptr_array_unref(reader->stack);
  g_array_unref(reader->marks);
  g_ptr_array_unref(reader->memo);
  g_ptr_array_unref(reader->arena);
  g_free(reader);
}

static bool fail(GError **error, PkReader *r, const char *what)
{
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
              "pickle: %s at byte %" G_GSIZE_FORMAT, what, r->pos);
  return false;
}

static PkObj *obj_new(PkReader *r, PkKind kind, GError **error)
{
  if (r->arena->len >= PK_MAX_OBJECTS) {
    fail(error, r, "too many objects");
    return NULL;
  }
  PkObj *obj = g_new0(PkObj, 1);
  obj->kind = kind;
  if (kind == PK_TUPLE || kind == PK_LIST || kind == PK_DICT)
    obj->items = g_ptr_array_new();
  g_ptr_array_add(r->arena, obj);
  return obj;
}

static bool push(PkReader *r, PkObj *obj, GError **error)
{
  if (obj == NULL)
    return false;
  if (r->stack->len >= PK_MAX_STACK)
    return fail(error, r, "stack too deep");
  g_ptr_array_add(r->stack, obj);
  return true;
}

static PkObj *pop(PkReader *r, GError **error)
{
  gsize floor = r->marks->len
                ? g_array_index(r->marks, gsize, r->marks->len - 1) : 0;

  if (r->stack->len <= floor) {
    fail(error, r, "stack underflow");
    return NULL;
  }
  return g_ptr_array_steal_index(r->stack, r->stack->len - 1);
}

static PkObj *top(PkReader *r, GError **error)
{
  if (r->stack->len == 0) {
    fail(error, r, "stack underflow");
    return NULL;
  }
  return g_ptr_array_index(r->stack, r->stack->len - 1);
}

/* Pops everything above the last MARK into a new array. */
static GPtrArray *pop_mark(PkReader *r, GError **error)
{
  if (r->marks->len == 0) {
    fail(error, r, "no MARK on the stack");
    return NULL;
  }
  gsize start = g_array_index(r->marks, gsize, r->marks->len - 1);
  g_array_set_size(r->marks, r->marks->len - 1);

  GPtrArray *items = g_ptr_array_sized_new(r->stack->len - start);
  for (gsize i = start; i < r->stack->len; i++)
    g_ptr_array_add(items, g_ptr_array_index(r->stack, i));
  g_ptr_array_set_size(r->stack, start);
  return items;
}

static bool read_bytes(PkReader *r, gsize n, const guint8 **out,
                       GError **error)
{
  if (n > r->len - r->pos)
    return fail(error, r, "truncated data");
  *out = r->data + r->pos;
  r->pos += n;
  return true;
}

/* An unsigned little-endian integer of n bytes (n <= 8). */
static bool read_uint(PkReader *r, int n, guint64 *out, GError **error)
{
  const guint8 *p;

  if (!read_bytes(r, n, &p, error))
    return false;
  *out = 0;
  for (int i = n - 1; i >= 0; i--)
    *out = (*out << 8) | p[i];
  return true;
}

static bool push_int(PkReader *r, gint64 value, GError **error)
{
  PkObj *obj = obj_new(r, PK_INT, error);

  if (obj)
    obj->i = value;
  return push(r, obj, error);
}

/* BININT: 4-byte signed; LONG1: n-byte two's complement, n <= 8. */
static bool op_binint(PkReader *r, GError **error)
{
  guint64 value;

  if (!read_uint(r, 4, &value, error))
    return false;
  return push_int(r, (gint32) (guint32) value, error);
}

static bool op_long1(PkReader *r, GError **error)
{
  guint64 n, value = 0;

  if (!read_uint(r, 1, &n, error))
    return false;
  if (n > 8)
    return fail(error, r, "integer wider than 64 bits");
  if (n > 0 && !read_uint(r, (int) n, &value, error))
    return false;
  /* Sign-extend from the top byte read. */
  if (n > 0 && n < 8 && (value >> (8 * n - 1)) & 1)
    value |= ~G_GUINT64_CONSTANT(0) << (8 * n);
  return push_int(r, (gint64) value, error);
}

static bool op_binfloat(PkReader *r, GError **error)
{
  const guint8 *p;
  guint64 bits = 0;

  if (!read_bytes(r, 8, &p, error))
    return false;
  /* Big-endian IEEE 754 double. */
  for (int i = 0; i < 8; i++)
    bits = (bits << 8) | p[i];

  PkObj *obj = obj_new(r, PK_FLOAT, error);
  if (obj)
    memcpy(&obj->f, &bits, sizeof obj->f);
  return push(r, obj, error);
}

/* A string or bytes object whose length prefix has width bytes. */
static bool op_string(PkReader *r, int width, PkKind kind, GError **error)
{
  guint64 n;
  const guint8 *p;

  if (!read_uint(r, width, &n, error))
    return false;
  if (n > PK_MAX_STRING)
    return fail(error, r, "string too long");
  if (!read_bytes(r, n, &p, error))
    return false;

  PkObj *obj = obj_new(r, kind, error);
  if (obj) {
    obj->str = g_strndup((const char *) p, n);
    obj->len = n;
  }
  return push(r, obj, error);
}

static bool push_global(PkReader *r, const char *module, const char *name,
                        GError **error)
{
  PkObj *obj = obj_new(r, PK_GLOBAL, error);

  /* Names may reach error messages: keep them valid UTF-8. */
  if (obj) {
    g_autofree char *text = g_strdup_printf("%s %s", module, name);
    obj->str = g_utf8_make_valid(text, -1);
    obj->len = strlen(obj->str);
  }
  return push(r, obj, error);
}

/* One newline-terminated line of GLOBAL's text argument. */
static char *read_line(PkReader *r, GError **error)
{
  gsize limit = MIN(r->len - r->pos, PK_MAX_GLOBAL);
  const guint8 *start = r->data + r->pos;
  const guint8 *nl = memchr(start, '\n', limit);

  if (nl == NULL) {
    fail(error, r, "unterminated GLOBAL name");
    return NULL;
  }
  r->pos += nl - start + 1;
  return g_strndup((const char *) start, nl - start);
}

static bool op_global(PkReader *r, GError **error)
{
  g_autofree char *module = read_line(r, error);
  if (module == NULL)
    return false;
  g_autofree char *name = read_line(r, error);
  if (name == NULL)
    return false;
  return push_global(r, module, name, error);
}

static bool op_stack_global(PkReader *r, GError **error)
{
  PkObj *name = pop(r, error);
  PkObj *module = name ? pop(r, error) : NULL;

  if (module == NULL)
    return false;
  if (name->kind != PK_STR || module->kind != PK_STR ||
      name->len > PK_MAX_GLOBAL || module->len > PK_MAX_GLOBAL)
    return fail(error, r, "STACK_GLOBAL needs two short strings");
  return push_global(r, module->str, name->str, error);
}

static bool op_put(PkReader *r, guint64 index, GError **error)
{
  PkObj *obj = top(r, error);

  if (obj == NULL)
    return false;
  if (index >= PK_MAX_MEMO)
    return fail(error, r, "memo index too large");
  if (index >= r->memo->len)
    g_ptr_array_set_size(r->memo, index + 1);
  if (g_ptr_array_index(r->memo, index) == NULL)
    r->memo_count++;
  g_ptr_array_index(r->memo, index) = obj;
  return true;
}

static bool op_get(PkReader *r, guint64 index, GError **error)
{
  if (index >= r->memo->len || g_ptr_array_index(r->memo, index) == NULL)
    return fail(error, r, "memo entry missing");
  return push(r, g_ptr_array_index(r->memo, index), error);
}

static bool op_put_width(PkReader *r, int width, GError **error)
{
  guint64 index;

  return read_uint(r, width, &index, error) && op_put(r, index, error);
}

static bool op_get_width(PkReader *r, int width, GError **error)
{
  guint64 index;

  return read_uint(r, width, &index, error) && op_get(r, index, error);
}

/* TUPLE (from MARK), TUPLE1..3 (n from the stack) and EMPTY_TUPLE. */
static bool op_tuple(PkReader *r, int n, GError **error)
{
  PkObj *tuple = obj_new(r, PK_TUPLE, error);

  if (tuple == NULL)
    return false;
  if (n < 0) {
    g_autoptr(GPtrArray) items = pop_mark(r, error);
    if (items == NULL)
      return false;
    g_ptr_array_extend(tuple->items, items, NULL, NULL);
    return push(r, tuple, error);
  }
  if (r->stack->len < (guint) n)
    return fail(error, r, "stack underflow");
  for (guint i = r->stack->len - n; i < r->stack->len; i++)
    g_ptr_array_add(tuple->items, g_ptr_array_index(r->stack, i));
  g_ptr_array_set_size(r->stack, r->stack->len - n);
  return push(r, tuple, error);
}

/* Adds items to a list or a dict; other targets ignore them. */
static bool add_items(PkReader *r, PkObj *target, GPtrArray *items,
                      bool pairs, GError **error)
{
  if (pairs && items->len % 2 != 0)
    return fail(error, r, "odd number of dict items");
  if (target->kind == PK_DICT && pairs) {
    g_ptr_array_extend(target->items, items, NULL, NULL);
  } else if (target->kind == PK_OPAQUE && pairs) {
    /* An instance of a dict subclass (an AttributeDict of hyper-
     * parameters, say) gets its items this way: keep them as data. */
    if (target->items == NULL)
      target->items = g_ptr_array_new();
    g_ptr_array_extend(target->items, items, NULL, NULL);
  }
  else if (target->kind == PK_LIST && !pairs)
    g_ptr_array_extend(target->items, items, NULL, NULL);
  return true;
}

/* APPENDS and SETITEMS: items since the last MARK. */
static bool op_add_marked(PkReader *r, bool pairs, GError **error)
{
  g_autoptr(GPtrArray) items = pop_mark(r, error);
  if (items == NULL)
    return false;
  PkObj *target = top(r, error);
  return target && add_items(r, target, items, pairs, error);
}

/* APPEND (one value) and SETITEM (one key and value). */
static bool op_add_one(PkReader *r, bool pairs, GError **error)
{
  g_autoptr(GPtrArray) items = g_ptr_array_new();
  int n = pairs ? 2 : 1;

  for (int i = 0; i < n; i++) {
    PkObj *obj = pop(r, error);
    if (obj == NULL)
      return false;
    g_ptr_array_insert(items, 0, obj);
  }
  PkObj *target = top(r, error);
  return target && add_items(r, target, items, pairs, error);
}

/* LIST and DICT: a new container from the items since the last MARK. */
static bool op_container_marked(PkReader *r, PkKind kind, GError **error)
{
  g_autoptr(GPtrArray) items = pop_mark(r, error);
  if (items == NULL)
    return false;
  PkObj *obj = obj_new(r, kind, error);
  if (obj == NULL || !add_items(r, obj, items, kind == PK_DICT, error))
    return false;
  return push(r, obj, error);
}

static bool is_global(const PkObj *obj, const char *name)
{
  return obj->kind == PK_GLOBAL && strcmp(obj->str, name) == 0;
}

static bool int_tuple(const PkObj *obj, int *n, gint64 *values)
{
  if (obj->kind != PK_TUPLE || obj->items->len > PK_MAX_NDIM)
    return false;
  *n = obj->items->len;
  for (int i = 0; i < *n; i++) {
    const PkObj *item = g_ptr_array_index(obj->items, i);
    if (item->kind != PK_INT)
      return false;
    values[i] = item->i;
  }
  return true;
}

/* torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...):
 * recorded, not run; shape and stride are checked by the importer. */
static PkObj *rebuild_tensor(PkReader *r, PkObj *args, GError **error)
{
  int ndim_stride = 0;

  if (args->kind != PK_TUPLE || args->items->len < 4)
    goto bad;
  PkObj *storage = g_ptr_array_index(args->items, 0);
  PkObj *offset = g_ptr_array_index(args->items, 1);
  if (storage->kind != PK_STORAGE || offset->kind != PK_INT)
    goto bad;

  PkObj *tensor = obj_new(r, PK_TENSOR, error);
  if (tensor == NULL)
    return NULL;
  tensor->storage = storage;
  tensor->offset = offset->i;
  if (!int_tuple(g_ptr_array_index(args->items, 2), &tensor->ndim,
                 tensor->shape) ||
      !int_tuple(g_ptr_array_index(args->items, 3), &ndim_stride,
                 tensor->stride) ||
      ndim_stride != tensor->ndim)
    goto bad;
  return tensor;

bad:
  fail(error, r, "malformed tensor record");
  return NULL;
}

/* REDUCE: only names we know get meaning; the rest stay opaque. */
static bool op_reduce(PkReader *r, GError **error)
{
  PkObj *args = pop(r, error);
  PkObj *callable = args ? pop(r, error) : NULL;
  PkObj *result;

  if (callable == NULL)
    return false;
  if (is_global(callable, "torch._utils _rebuild_tensor_v2"))
    result = rebuild_tensor(r, args, error);
  else if (is_global(callable, "torch._utils _rebuild_parameter") &&
           args->kind == PK_TUPLE && args->items->len >= 1)
    result = g_ptr_array_index(args->items, 0);
  else if (is_global(callable, "collections OrderedDict"))
    result = obj_new(r, PK_DICT, error);
  else
    result = obj_new(r, PK_OPAQUE, error);
  return push(r, result, error);
}

/* BUILD sets an object's state; we keep the object as it is. */
static bool op_build(PkReader *r, GError **error)
{
  return pop(r, error) != NULL && top(r, error) != NULL;
}

/* NEWOBJ: cls.__new__(cls, *args), never run. */
static bool op_newobj(PkReader *r, GError **error)
{
  if (pop(r, error) == NULL || pop(r, error) == NULL)
    return false;
  return push(r, obj_new(r, PK_OPAQUE, error), error);
}

static bool op_newobj_ex(PkReader *r, GError **error)
{
  for (int i = 0; i < 3; i++)
    if (pop(r, error) == NULL)
      return false;
  return push(r, obj_new(r, PK_OPAQUE, error), error);
}

/* The element type named by a storage class such as torch.FloatStorage. */
static void storage_dtype(PkObj *storage, const PkObj *cls)
{
  storage->storage_class = g_strdup(cls->kind == PK_GLOBAL ? cls->str
                                                          : "?");
  if (is_global(cls, "torch FloatStorage")) {
    storage->dtype = NN_DTYPE_F32;
    storage->dtype_known = true;
  } else if (is_global(cls, "torch LongStorage")) {
    storage->dtype = NN_DTYPE_I64;
    storage->dtype_known = true;
  }
}

/* BINPERSID: ('storage', class, key, location, numel) names a file of the
 * archive; any other persistent id is opaque. */
static bool op_binpersid(PkReader *r, GError **error)
{
  PkObj *pid = pop(r, error);

  if (pid == NULL)
    return false;
  if (pid->kind != PK_TUPLE || pid->items->len < 5)
    return push(r, obj_new(r, PK_OPAQUE, error), error);

  PkObj *tag = g_ptr_array_index(pid->items, 0);
  PkObj *key = g_ptr_array_index(pid->items, 2);
  PkObj *numel = g_ptr_array_index(pid->items, 4);
  if (tag->kind != PK_STR || strcmp(tag->str, "storage") != 0 ||
      key->kind != PK_STR || numel->kind != PK_INT || numel->i < 0)
    return push(r, obj_new(r, PK_OPAQUE, error), error);

  PkObj *storage = obj_new(r, PK_STORAGE, error);
  if (storage == NULL)
    return false;
  storage->str = g_strdup(key->str);
  storage->len = key->len;
  storage->i = numel->i;
  storage_dtype(storage, g_ptr_array_index(pid->items, 1));
  return push(r, storage, error);
}

static bool op_mark(PkReader *r, GError **error)
{
  gsize len = r->stack->len;

  if (r->marks->len >= PK_MAX_STACK)
    return fail(error, r, "too many MARKs");
  g_array_append_val(r->marks, len);
  return true;
}

static bool op_pop_mark(PkReader *r, GError **error)
{
  g_autoptr(GPtrArray) items = pop_mark(r, error);

  return items != NULL;
}

static bool op_proto(PkReader *r, GError **error)
{
  guint64 version;

  if (!read_uint(r, 1, &version, error))
    return false;
  if (version > 5)
    return fail(error, r, "unsupported pickle protocol");
  return true;
}

/* FRAME only announces a length; the data follows inline. */
static bool op_frame(PkReader *r, GError **error)
{
  guint64 ignored;

  return read_uint(r, 8, &ignored, error);
}

static bool op_stop(PkReader *r, GError **error)
{
  r->result = pop(r, error);
  return r->result != NULL;
}

static bool op_simple(PkReader *r, PkKind kind, gint64 value,
                      GError **error)
{
  PkObj *obj = obj_new(r, kind, error);

  if (obj)
    obj->i = value;
  return push(r, obj, error);
}

static bool op_small_int(PkReader *r, int width, GError **error)
{
  guint64 value;

  return read_uint(r, width, &value, error) &&
         push_int(r, (gint64) value, error);
}

static bool op_dup(PkReader *r, GError **error)
{
  PkObj *obj = top(r, error);

  return obj && push(r, obj, error);
}

static bool op_memoize(PkReader *r, GError **error)
{
  return op_put(r, r->memo_count, error);
}

/* Sets are kept as opaque objects; their items are dropped. */
static bool op_additems(PkReader *r, GError **error)
{
  g_autoptr(GPtrArray) items = pop_mark(r, error);

  return items != NULL && top(r, error) != NULL;
}

static bool op_frozenset(PkReader *r, GError **error)
{
  g_autoptr(GPtrArray) items = pop_mark(r, error);

  return items != NULL && push(r, obj_new(r, PK_OPAQUE, error), error);
}

/* Dispatches one opcode; false with *error set on bad input. */
static bool step(PkReader *r, guint8 op, GError **error)
{
  switch (op) {
  case 0x80: return op_proto(r, error);
  case 0x95: return op_frame(r, error);
  case '.': return op_stop(r, error);
  case '(': return op_mark(r, error);
  case '0': return pop(r, error) != NULL;
  case '1': return op_pop_mark(r, error);
  case '2': return op_dup(r, error);
  case 'N': return op_simple(r, PK_NONE, 0, error);
  case 0x88: return op_simple(r, PK_BOOL, 1, error);
  case 0x89: return op_simple(r, PK_BOOL, 0, error);
  case 'J': return op_binint(r, error);
  case 'K': return op_small_int(r, 1, error);
  case 'M': return op_small_int(r, 2, error);
  case 0x8a: return op_long1(r, error);
  case 'G': return op_binfloat(r, error);
  case 'X': return op_string(r, 4, PK_STR, error);
  case 0x8c: return op_string(r, 1, PK_STR, error);
  case 0x8d: return op_string(r, 8, PK_STR, error);
  case 'T': return op_string(r, 4, PK_STR, error);
  case 'U': return op_string(r, 1, PK_STR, error);
  case 'B': return op_string(r, 4, PK_BYTES, error);
  case 'C': return op_string(r, 1, PK_BYTES, error);
  case 0x8e: return op_string(r, 8, PK_BYTES, error);
  case ')': return op_tuple(r, 0, error);
  case 't': return op_tuple(r, -1, error);
  case 0x85: return op_tuple(r, 1, error);
  case 0x86: return op_tuple(r, 2, error);
  case 0x87: return op_tuple(r, 3, error);
  case ']': return op_simple(r, PK_LIST, 0, error);
  case 'l': return op_container_marked(r, PK_LIST, error);
  case 'a': return op_add_one(r, false, error);
  case 'e': return op_add_marked(r, false, error);
  case '}': return op_simple(r, PK_DICT, 0, error);
  case 'd': return op_container_marked(r, PK_DICT, error);
  case 's': return op_add_one(r, true, error);
  case 'u': return op_add_marked(r, true, error);
  case 0x8f: return op_simple(r, PK_OPAQUE, 0, error);
  case 0x90: return op_additems(r, error);
  case 0x91: return op_frozenset(r, error);
  case 'q': return op_put_width(r, 1, error);
  case 'r': return op_put_width(r, 4, error);
  case 0x94: return op_memoize(r, error);
  case 'h': return op_get_width(r, 1, error);
  case 'j': return op_get_width(r, 4, error);
  case 'c': return op_global(r, error);
  case 0x93: return op_stack_global(r, error);
  case 'R': return op_reduce(r, error);
  case 'b': return op_build(r, error);
  case 0x81: return op_newobj(r, error);
  case 0x92: return op_newobj_ex(r, error);
  case 'Q': return op_binpersid(r, error);
  default:
    r->pos--;
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "pickle: unsupported opcode 0x%02x at byte %" G_GSIZE_FORMAT,
                op, r->pos);
    return false;
  }
}

PkReader *pk_reader_load(const guint8 *data, gsize len, PkObj **root,
                         GError **error)
{
  g_autoptr(PkReader) r = g_new0(PkReader, 1);

  r->data = data;
  r->len = len;
  r->arena = g_ptr_array_new_with_free_func(obj_free);
  r->stack = g_ptr_array_new();
  r->marks = g_array_new(FALSE, FALSE, sizeof(gsize));
  r->memo = g_ptr_array_new();

  /* Run until STOP; running off the end is a truncated file. */
  while (r->result == NULL) {
    if (r->pos >= r->len) {
      fail(error, r, "truncated data (no STOP)");
      return NULL;
    }
    guint8 op = r->data[r->pos++];
    if (!step(r, op, error))
      return NULL;
  }
  *root = r->result;
  return g_steal_pointer(&r);
}

bool pk_is_mapping(const PkObj *obj)
{
  return obj != NULL && (obj->kind == PK_DICT ||
                         (obj->kind == PK_OPAQUE && obj->items != NULL));
}

PkObj *pk_dict_get(const PkObj *dict, const char *key)
{
  if (!pk_is_mapping(dict))
    return NULL;
  /* The last assignment of a key wins, as in Python. */
  for (guint i = dict->items->len; i >= 2; i -= 2) {
    PkObj *k = g_ptr_array_index(dict->items, i - 2);
    if (k->kind == PK_STR && strcmp(k->str, key) == 0)
      return g_ptr_array_index(dict->items, i - 1);
  }
  return NULL;
}
