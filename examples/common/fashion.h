/* fashion.h - load Fashion-MNIST for the examples (not part of the library). */
#ifndef EXAMPLES_FASHION_H
#define EXAMPLES_FASHION_H
#include <stdio.h>

/* Loads train and test from DIR (gunzipped IDX files, as `make data`
 * leaves them); keeps only the first `limit` training images if > 0. */
static int ex_load_fashion(const char *dir, int limit, nn_dataset *train, nn_dataset *test) {
    char ip[1024], lp[1024];
    nn_status s;
    snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte", dir);
    snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte", dir);
    s = nn_dataset_load_idx(train, ip, lp);
    if (s != NN_OK) {
        fprintf(stderr, "cannot load %s: %s\n(run `make data`, which unpacks Debian's dataset-fashion-mnist into "
                        "data/fashion-mnist/, or pass --data DIR with the four gunzipped IDX files)\n",
                ip, nn_strerror(s));
        return 1;
    }
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte", dir);
    snprintf(lp, sizeof lp, "%s/t10k-labels-idx1-ubyte", dir);
    s = nn_dataset_load_idx(test, ip, lp);
    if (s != NN_OK) {
        fprintf(stderr, "cannot load %s: %s\n", ip, nn_strerror(s));
        nn_dataset_free(train);
        return 1;
    }
    if (limit > 0 && limit < train->n) train->n = limit;
    return 0;
}
#endif
