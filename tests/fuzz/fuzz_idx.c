/* libFuzzer: nn_dataset_load_idx.  Input: u32 (little-endian) length L of
 * the images file, then L bytes of images (IDX u8, 3 dims), then the
 * labels file (IDX u8, 1 dim): the rest.  An accepted dataset is then
 * read back, shuffled and split as a program would. */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_init("idx");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nn_dataset ds, a, b;
    size_t il;
    const char *ip, *lp;
    if (size < 4) return 0;
    il = fz_le32(data);
    if (il > size - 4) il = size - 4;
    ip = fz_write(0, data + 4, il);
    lp = fz_write(1, data + 4 + il, size - 4 - il);
    if (!ip || !lp) return 0;
    if (nn_dataset_load_idx(&ds, ip, lp) == NN_OK) {
        if (ds.n <= 0 || !ds.x_u8 || !ds.y || ds.x_dim == 0) abort();
        if (ds.x_dim <= FZ_MAX_IO_FLOATS) {
            float *x = (float *)malloc(ds.x_dim * sizeof(float));
            if (x) {
                nn_dataset_get_x(&ds, 0, x);
                nn_dataset_get_x(&ds, ds.n - 1, x);
            }
            free(x);
        }
        (void)nn_dataset_shuffle(&ds, 7);
        if (nn_dataset_split(&ds, 0.5f, &a, &b) == NN_OK) (void)nn_dataset_shuffle(&b, 3);
        nn_dataset_free(&ds);
    }
    return 0;
}
