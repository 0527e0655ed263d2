/* wasm_stages.c - where the Fashion CNN's forward spends its time: the model cut after each stage
 * (conv1, its pool, conv2, its pool, the dense head), each predicting a batch of 32, microseconds
 * per image, one thread.  The differences between rows are the stages' costs.  Native or wasm:
 *
 *   cc -O2 -I. -o build/wasm_stages bench/wasm_stages.c -lm && build/wasm_stages
 *   NODE_PATH=/usr/share/nodejs emcc -O2 -msimd128 -I. -sALLOW_MEMORY_GROWTH=1 -sNODERAWFS=1 \
 *       -sEXIT_RUNTIME=1 -sWASM_ASYNC_COMPILATION=0 -o build/wasm_stages.js bench/wasm_stages.c
 *   taskset -c 0 node --no-experimental-fetch build/wasm_stages.js
 *
 * (Row 1 writes conv1's whole output, 86 KB an image, back to the caller: it can take longer than
 * row 2.) */
#define NN_IMPLEMENTATION
#include "nn.h"
#include <stdio.h>

static nn_model *build(int stages) {
    nn_model *m = nn_model_new(nn_shape3(28, 28, 1));
    nn_conv2d(m, 32, 3, NN_RELU);
    if (stages >= 2) nn_maxpool2d(m, 2);
    if (stages >= 3) nn_conv2d(m, 64, 3, NN_RELU);
    if (stages >= 4) nn_maxpool2d(m, 2);
    if (stages >= 5) {
        nn_flatten(m);
        nn_dense(m, 64, NN_RELU);
        nn_dense(m, 10, NN_SOFTMAX);
    }
    nn_compile(m, nn_adam(1e-3f), stages >= 5 ? NN_LOSS_SPARSE_CATEGORICAL_CE : NN_LOSS_MSE);
    return m;
}
int main(void) {
    static float x[32 * 784], y[32 * 26 * 26 * 32];
    static const char *names[5] = {"conv1", "+ pool", "+ conv2", "+ pool", "+ dense head"};
    int s, i, r;
    for (i = 0; i < 32 * 784; i++) x[i] = (float)(i % 255) / 255.0f;
    nn_set_threads(1);
    printf("backend %s; us per image, batch 32, best of 7 x 20\n", nn_backend_name(nn_get_backend()));
    for (s = 1; s <= 5; s++) {
        nn_model *m = build(s);
        double best = 1e9;
        if (!m || nn_model_status(m) != NN_OK) return 1;
        nn_predict(m, x, 32, y);
        for (r = 0; r < 7; r++) {
            double t0 = nn_time_seconds();
            for (i = 0; i < 20; i++) nn_predict(m, x, 32, y);
            t0 = (nn_time_seconds() - t0) / 20 / 32;
            if (t0 < best) best = t0;
        }
        printf("%d stages (%s): %.2f us\n", s, names[s - 1], best * 1e6);
        nn_model_free(m);
    }
    return 0;
}
