/* bench/wasm_bench.c - SIMD128 against scalar in WebAssembly (make bench-wasm).
 *
 * Built twice with emcc and run under node by bench/wasm_bench.sh: with
 * -msimd128 (backends wasm and scalar) and without (the scalar build, the
 * baseline a browser without SIMD128 gets).  Prints one line per row,
 *   ROW <what> <backend> <value> <unit>
 * the median of REPS timed repetitions, each one at least MIN_S seconds
 * after a warm-up call.  One thread (no -pthread).  Rows:
 *   sgemm_N     nn_sgemm, C = A B, N x N x N (GFLOP/s)
 *   cnn_step    one nn_train_on_batch of the seed CNN, batch 32, Adam (ms)
 *   cnn_predict nn_predict of 32 images with the same CNN (ms)
 * The CNN is examples/fashion_cnn.c's (and bench/bench.cc's cnn_step). */
#define NN_IMPLEMENTATION
#include "../nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPS 5
#define MIN_S 0.2
#define BATCH 32

typedef void (*wb_fn)(void *);

static int wb_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
/* median seconds per call */
static double wb_time(wb_fn f, void *arg) {
    double t[REPS];
    int r;
    f(arg); /* warm-up: arena, packing buffers, the engine's tiers */
    for (r = 0; r < REPS; r++) {
        long n = 0;
        double t0 = nn_time_seconds(), t1;
        do {
            f(arg);
            n++;
            t1 = nn_time_seconds();
        } while (t1 - t0 < MIN_S);
        t[r] = (t1 - t0) / (double)n;
    }
    qsort(t, REPS, sizeof t[0], wb_cmp);
    return t[REPS / 2];
}

typedef struct {
    int n;
    float *a, *b, *c;
} wb_gemm;
static void wb_gemm_run(void *p) {
    wb_gemm *g = (wb_gemm *)p;
    if (nn_sgemm(0, 0, g->n, g->n, g->n, 1.0f, g->a, g->n, g->b, g->n, 0.0f, g->c, g->n) != NN_OK) {
        fprintf(stderr, "wasm_bench: nn_sgemm failed\n");
        exit(1);
    }
}

typedef struct {
    nn_model *m;
    float *x, *y, *out;
} wb_cnn;
static void wb_step_run(void *p) {
    wb_cnn *c = (wb_cnn *)p;
    float loss;
    if (nn_train_on_batch(c->m, c->x, c->y, BATCH, &loss, NULL) != NN_OK) {
        fprintf(stderr, "wasm_bench: train_on_batch: %s\n", nn_model_error(c->m));
        exit(1);
    }
}
static void wb_predict_run(void *p) {
    wb_cnn *c = (wb_cnn *)p;
    if (nn_predict(c->m, c->x, BATCH, c->out) != NN_OK) {
        fprintf(stderr, "wasm_bench: predict: %s\n", nn_model_error(c->m));
        exit(1);
    }
}

static void wb_fill(nn_rng *r, float *p, size_t n, float scale) {
    size_t i;
    for (i = 0; i < n; i++) p[i] = scale * ((float)(nn_rng_u32(r) >> 8) / 16777216.0f);
}

static void wb_backend(nn_backend b) {
    static const int sizes[] = {256, 512};
    const char *bn = nn_backend_name(b);
    size_t i;
    nn_rng r;
    wb_cnn c;
    if (nn_set_backend(b) != NN_OK) return;
    nn_rng_seed(&r, 1);
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        wb_gemm g;
        size_t nn = (size_t)sizes[i] * (size_t)sizes[i];
        double s;
        g.n = sizes[i];
        g.a = (float *)malloc(nn * sizeof(float));
        g.b = (float *)malloc(nn * sizeof(float));
        g.c = (float *)malloc(nn * sizeof(float));
        if (!g.a || !g.b || !g.c) exit(1);
        wb_fill(&r, g.a, nn, 1.0f);
        wb_fill(&r, g.b, nn, 1.0f);
        s = wb_time(wb_gemm_run, &g);
        printf("ROW sgemm_%d %s %.2f GFLOP/s\n", g.n, bn, 2.0 * (double)nn * g.n / s * 1e-9);
        free(g.a);
        free(g.b);
        free(g.c);
    }
    c.m = nn_model_new(nn_shape3(28, 28, 1));
    nn_model_seed(c.m, 1);
    nn_conv2d(c.m, 32, 3, NN_RELU);
    nn_maxpool2d(c.m, 2);
    nn_conv2d(c.m, 64, 3, NN_RELU);
    nn_maxpool2d(c.m, 2);
    nn_flatten(c.m);
    nn_dense(c.m, 64, NN_RELU);
    nn_dense(c.m, 10, NN_SOFTMAX);
    if (nn_compile(c.m, nn_adam(1e-3f), NN_LOSS_SPARSE_CATEGORICAL_CE) != NN_OK) {
        fprintf(stderr, "wasm_bench: compile: %s\n", nn_model_error(c.m));
        exit(1);
    }
    c.x = (float *)malloc(BATCH * 784 * sizeof(float));
    c.y = (float *)malloc(BATCH * sizeof(float));
    c.out = (float *)malloc(BATCH * 10 * sizeof(float));
    if (!c.x || !c.y || !c.out) exit(1);
    wb_fill(&r, c.x, BATCH * 784, 1.0f);
    for (i = 0; i < BATCH; i++) c.y[i] = (float)(nn_rng_u32(&r) % 10);
    printf("ROW cnn_step %s %.2f ms\n", bn, 1e3 * wb_time(wb_step_run, &c));
    printf("ROW cnn_predict %s %.3f ms\n", bn, 1e3 * wb_time(wb_predict_run, &c));
    nn_model_free(c.m);
    free(c.x);
    free(c.y);
    free(c.out);
    fflush(stdout);
}

int main(void) {
    nn_set_threads(1);
    printf("INFO %s\n", nn_cpu_description());
    wb_backend(NN_BACKEND_SCALAR);
    if (nn_backend_available(NN_BACKEND_WASM)) wb_backend(NN_BACKEND_WASM);
    return 0;
}
