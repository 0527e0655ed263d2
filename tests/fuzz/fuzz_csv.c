/* libFuzzer: nn_dataset_load_csv.  Input: one option byte (bit 0:
 * has_header), one signed byte label_col (-1 = last; values below -1 are
 * passed through too), then the CSV text.  An accepted dataset is read
 * back, shuffled, split, and evaluated by a small dense model (sparse
 * cross-entropy when its labels are class ids, else MSE) as the tabular
 * example would. */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_init("csv");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nn_dataset ds, a, b;
    const char *path;
    int has_header, label_col;
    if (size < 2) return 0;
    has_header = data[0] & 1;
    label_col = (int)(int8_t)data[1];
    path = fz_write(0, data + 2, size - 2);
    if (!path) return 0;
    if (nn_dataset_load_csv(&ds, path, has_header, label_col) == NN_OK) {
        float *x;
        if (ds.n <= 0 || !ds.x || !ds.y || ds.x_dim == 0) abort();
        x = (float *)malloc(ds.x_dim * sizeof(float));
        if (x) {
            nn_dataset_get_x(&ds, 0, x);
            nn_dataset_get_x(&ds, ds.n - 1, x);
        }
        free(x);
        if (ds.x_dim <= 256 && ds.n <= 4096) {
            nn_model *m = nn_model_new(nn_shape1((int)ds.x_dim));
            int k = ds.num_classes;
            nn_dense(m, 4, NN_RELU);
            if (k > 0 && k <= 64) {
                nn_dense(m, k, NN_LINEAR);
                nn_compile(m, nn_sgd(0.01f), NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS);
            } else {
                nn_dense(m, 1, NN_LINEAR);
                nn_compile(m, nn_sgd(0.01f), NN_LOSS_MSE);
            }
            if (nn_model_status(m) == NN_OK) {
                float loss, acc;
                (void)nn_normalization_adapt(m, 0, &ds); /* NN_ERR_*: layer 0 is dense */
                (void)nn_evaluate(m, &ds, 32, &loss, &acc);
            }
            nn_model_free(m);
        }
        (void)nn_dataset_shuffle(&ds, 7);
        if (nn_dataset_split(&ds, 0.25f, &a, &b) == NN_OK) (void)nn_dataset_shuffle(&b, 3);
        nn_dataset_free(&ds);
    }
    return 0;
}
