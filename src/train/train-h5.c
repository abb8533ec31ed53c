/*
 * train-h5.c: the old service's validation sets, <data>/roi/<Class>_val.h5
 * with datasets img (uint8 N,256,256,3) and mask (uint8 N,256,256),
 * blosc-compressed.  libhdf5 loads the blosc filter from its plugin folder
 * (Debian's hdf5-filter-plugin-blosc-serial).
 */
#include "train-private.h"

#include "common/aapi-error.h"

#include <hdf5.h>

#define H5_PLUGIN_DIR "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins"
/* A validation set larger than this is not the old service's. */
#define MAX_VAL_PATCHES 100000

/* Distinct names for the kinds of HDF5 handle, so that g_auto closes
 * each with its own function. */
typedef hid_t H5File;
typedef hid_t H5Dataset;
typedef hid_t H5Space;

static void h5_close_file(H5File id)
{
  H5Fclose(id);
}

static void h5_close_dataset(H5Dataset id)
{
  H5Dclose(id);
}

static void h5_close_space(H5Space id)
{
  H5Sclose(id);
}

G_DEFINE_AUTO_CLEANUP_FREE_FUNC(H5File, h5_close_file, H5I_INVALID_HID)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(H5Dataset, h5_close_dataset, H5I_INVALID_HID)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(H5Space, h5_close_space, H5I_INVALID_HID)

static void init_hdf5(void)
{
  static gsize once;

  if (g_once_init_enter(&once)) {
    /* Errors are reported through GError, not printed by the library. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (g_getenv("HDF5_PLUGIN_PATH") == NULL)
      H5PLappend(H5_PLUGIN_DIR);
    g_once_init_leave(&once, 1);
  }
}

/* Reads a uint8 dataset whose shape must be rank dims with the trailing
 * dimensions given (0 = any); returns its bytes and the leading size. */
static guint8 *read_u8(hid_t file, const char *name, int rank,
                       const hsize_t *trailing, hsize_t *n_out,
                       GError **error)
{
  g_auto(H5Dataset) set = H5Dopen2(file, name, H5P_DEFAULT);
  if (set < 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "no dataset '%s'", name);
    return NULL;
  }
  g_auto(H5Space) space = H5Dget_space(set);
  hsize_t dims[8] = { 0 };
  if (H5Sget_simple_extent_ndims(space) != rank ||
      H5Sget_simple_extent_dims(space, dims, NULL) != rank) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "dataset '%s' is not of rank %d", name, rank);
    return NULL;
  }
  for (int i = 1; i < rank; i++) {
    if (trailing[i - 1] != dims[i]) {
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                  "dataset '%s' has an unexpected shape", name);
      return NULL;
    }
  }
  if (dims[0] > MAX_VAL_PATCHES) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "dataset '%s' has %llu entries, too many", name,
                (unsigned long long) dims[0]);
    return NULL;
  }

  gsize bytes = dims[0];
  for (int i = 1; i < rank; i++)
    bytes *= dims[i];
  g_autofree guint8 *data = g_malloc(MAX(bytes, 1));
  if (H5Dread(set, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT,
              data) < 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "cannot read dataset '%s' (is the blosc filter plugin "
                "installed?)", name);
    return NULL;
  }
  *n_out = dims[0];
  return g_steal_pointer(&data);
}

TrainPatches *train_val_load_h5(const AapiConfig *config,
                                const AapiClassInfo *info, GError **error)
{
  g_autofree char *name = g_strdup_printf("%s_val.h5", info->name);
  g_autofree char *path = g_build_filename(config->data_dir, "roi", name,
                                           NULL);

  if (!g_file_test(path, G_FILE_TEST_EXISTS))
    return NULL;
  init_hdf5();

  g_auto(H5File) file =
      H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "%s: not an HDF5 file", path);
    return NULL;
  }

  hsize_t p = (hsize_t) info->patch_size;
  const hsize_t img_dims[] = { p, p, 3 }, mask_dims[] = { p, p };
  hsize_t n_img = 0, n_mask = 0;
  g_autofree guint8 *img = read_u8(file, "img", 4, img_dims, &n_img, error);
  g_autofree guint8 *mask = img ? read_u8(file, "mask", 3, mask_dims,
                                          &n_mask, error) : NULL;
  if (mask == NULL || n_img != n_mask) {
    if (mask)
      g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                  "img and mask counts differ");
    aapi_error_prefix(error, "%s: ", path);
    return NULL;
  }

  TrainPatches *patches = train_patches_new(info->patch_size);
  gsize area = (gsize) p * p;
  for (gsize i = 0; i < area * n_mask; i++)
    mask[i] = mask[i] != 0;
  for (hsize_t i = 0; i < n_img; i++)
    train_patches_add(patches, img + i * area * 3, mask + i * area);
  g_message("train: %s: %u validation patches from %s", info->name,
            patches->n, path);
  return patches;
}
