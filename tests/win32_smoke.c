/* tests/win32_smoke.c - the Win32 thread pool, run: `make test-win32` builds it with
 * mingw-w64 and runs it under wine64 (both from Debian).  A CNN (fused conv + pool, Winograd
 * conv, dense) trained with 1, 2 and 3 threads gives the same bits. */
#define NN_IMPLEMENTATION
#include "nn.h"
#include <stdio.h>
#include <string.h>
static int train(int threads, float *out, size_t *n) {
    nn_model *m = nn_model_new(nn_shape3(16, 16, 1));
    float x[32 * 256], y[32];
    nn_rng r;
    int i, s;
    const float *p;
    nn_set_threads(threads);
    nn_model_seed(m, 3);
    nn_conv2d(m, 16, 3, NN_RELU);
    nn_maxpool2d(m, 2);
    nn_conv2d(m, 16, 3, NN_RELU);
    nn_flatten(m);
    nn_dense(m, 32, NN_RELU);
    nn_dense(m, 10, NN_SOFTMAX);
    if (nn_compile(m, nn_adam(1e-2f), NN_LOSS_SPARSE_CATEGORICAL_CE) != NN_OK) return 1;
    nn_rng_seed(&r, 5);
    for (s = 0; s < 5; s++) {
        for (i = 0; i < 32 * 256; i++) x[i] = nn_rng_uniform(&r);
        for (i = 0; i < 32; i++) y[i] = (float)nn_rng_below(&r, 10);
        if (nn_train_on_batch(m, x, y, 32, NULL, NULL) != NN_OK) return 1;
    }
    p = nn_model_params(m, n);
    memcpy(out, p, *n * sizeof(float));
    printf("threads %d (in use %d): %lu parameters\n", threads, nn_get_threads(), (unsigned long)*n);
    nn_model_free(m);
    return 0;
}
static float a[200000], b[200000];
int main(void) {
    static const int counts[2] = {2, 3};
    size_t na = 0, nb = 0;
    int i, pass = 0, fail = 0;
    printf("%s\n", nn_cpu_description());
    if (train(1, a, &na)) {
        printf("FAIL training with 1 thread\n0 passed, 1 failed\n");
        return 1;
    }
    for (i = 0; i < 2; i++) {
        if (train(counts[i], b, &nb) == 0 && na == nb && memcmp(a, b, na * sizeof(float)) == 0) {
            printf("ok   %d threads: the same bits as 1\n", counts[i]);
            pass++;
        } else {
            printf("FAIL %d threads: not the bits of 1\n", counts[i]);
            fail++;
        }
    }
    printf("%d passed, %d failed\n", pass, fail);
    return fail != 0;
}
