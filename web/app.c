/* app.c - the C side of the browser page (web/index.html): nn.h built with
 * emcc, a handful of functions exported to JavaScript.
 *
 *   emcc -O3 -msimd128 -DNN_NO_THREADS ... web/app.c   (see `make web`)
 *
 * One wasm instance per Web Worker (training, benchmark) and one on the page
 * itself (prediction, saliency, decoding): the page's copy of a model gets
 * its weights from the worker's with app_params (a plain float copy).
 * No threads (NN_NO_THREADS): a worker is already off the page's thread,
 * and wasm threads would need cross-origin isolation headers that a plain
 * `python3 -m http.server` does not send.
 * Models (the examples' architectures):
 *   APP_CNN  examples/fashion_cnn.c: Conv(32,3) Pool2 Conv(64,3) Pool2 Flatten Dense(64) Dense(10)
 *   APP_MLP  examples/fashion_mlp.c: Dense(64) Dense(64) Dense(10)
 *   APP_AE   examples/autoencoder.c --code 2: Dense(128) Dense(2) | Dense(128) Dense(784, sigmoid)
 * Data arrive as uint8 pixels (28x28) and uint8 labels; batches are scaled
 * to [0,1] floats here. */
#define NN_IMPLEMENTATION
#include "../nn.h"

#ifdef __EMSCRIPTEN__
#include <emscripten.h>
#define APP_EXPORT EMSCRIPTEN_KEEPALIVE
/* performance.now(): nn_time_seconds falls back to clock() under -std=c99
 * here, whose millisecond steps are too coarse for a 1 ms predict */
#define app_now() (emscripten_get_now() * 1e-3)
#else
#define APP_EXPORT
#define app_now() nn_time_seconds()
#endif

enum { APP_CNN = 0, APP_MLP = 1, APP_AE = 2 };
enum { APP_PIX = 28 * 28, APP_CLASSES = 10, APP_AE_SPLIT = 2, APP_MAX_BATCH = 256 };

/* 1 when this build has SIMD128 code (the backend may still be scalar
 * while nn.h has no wasm backend: app_backend() tells). */
APP_EXPORT int app_simd_build(void) {
#ifdef __wasm_simd128__
    return 1;
#else
    return 0;
#endif
}

APP_EXPORT const char *app_backend(void) { return nn_backend_name(nn_get_backend()); }

/* A compiled model of kind APP_CNN / APP_MLP / APP_AE, or NULL. */
APP_EXPORT nn_model *app_model_new(int kind, int seed) {
    nn_model *m = nn_model_new(kind == APP_CNN ? nn_shape3(28, 28, 1) : nn_shape1(APP_PIX));
    nn_loss loss = NN_LOSS_SPARSE_CATEGORICAL_CE;
    if (!m) return NULL;
    nn_model_seed(m, (uint64_t)seed);
    if (kind == APP_CNN) {
        nn_conv2d(m, 32, 3, NN_RELU);
        nn_maxpool2d(m, 2);
        nn_conv2d(m, 64, 3, NN_RELU);
        nn_maxpool2d(m, 2);
        nn_flatten(m);
        nn_dense(m, 64, NN_RELU);
        nn_dense(m, APP_CLASSES, NN_SOFTMAX);
    } else if (kind == APP_MLP) {
        nn_dense(m, 64, NN_RELU);
        nn_dense(m, 64, NN_RELU);
        nn_dense(m, APP_CLASSES, NN_SOFTMAX);
    } else if (kind == APP_AE) {
        nn_dense(m, 128, NN_RELU);
        nn_dense(m, 2, NN_LINEAR); /* the code: layer APP_AE_SPLIT - 1 */
        nn_dense(m, 128, NN_RELU);
        nn_dense(m, APP_PIX, NN_SIGMOID);
        loss = NN_LOSS_MSE;
    } else {
        nn_model_free(m);
        return NULL;
    }
    if (nn_compile(m, nn_adam(1e-3f), loss) != NN_OK) {
        nn_model_free(m);
        return NULL;
    }
    return m;
}

APP_EXPORT void app_model_free(nn_model *m) { nn_model_free(m); }
APP_EXPORT const char *app_model_error(nn_model *m) { return m ? nn_model_error(m) : "no model"; }

/* All parameters as one float buffer: the worker reads it, the page writes it. */
APP_EXPORT float *app_params(nn_model *m) {
    size_t n;
    return nn_model_params(m, &n);
}
APP_EXPORT int app_num_params(nn_model *m) {
    size_t n;
    return nn_model_params(m, &n) ? (int)n : 0;
}

/* ---- training on a uint8 set held in wasm memory ----------------------------
 * A trainer walks a seeded permutation of the n samples, 32 at a time, and
 * reshuffles at every epoch (as nn_fit with shuffle does). */
typedef struct app_trainer {
    nn_model *m;
    const unsigned char *x, *y; /* n * APP_PIX pixels, n labels (y unused by APP_AE) */
    int n, batch, pos, epoch, ae;
    int *perm;
    nn_rng rng;
    float xb[APP_MAX_BATCH * APP_PIX], yb[APP_MAX_BATCH * APP_PIX];
} app_trainer;

static void app_shuffle(app_trainer *t) {
    int i;
    for (i = t->n - 1; i > 0; i--) {
        int j = (int)nn_rng_below(&t->rng, (uint32_t)(i + 1)), k = t->perm[i];
        t->perm[i] = t->perm[j];
        t->perm[j] = k;
    }
}

APP_EXPORT app_trainer *app_trainer_new(nn_model *m, int ae, const unsigned char *x, const unsigned char *y,
                                        int n, int batch, int seed) {
    app_trainer *t;
    int i;
    if (!m || !x || n < 1 || batch < 1 || batch > APP_MAX_BATCH || batch > n) return NULL;
    t = (app_trainer *)calloc(1, sizeof *t);
    if (!t) return NULL;
    t->perm = (int *)malloc(sizeof(int) * (size_t)n);
    if (!t->perm) {
        free(t);
        return NULL;
    }
    for (i = 0; i < n; i++) t->perm[i] = i;
    t->m = m;
    t->x = x;
    t->y = y;
    t->n = n;
    t->batch = batch;
    t->ae = ae;
    nn_rng_seed(&t->rng, (uint64_t)seed);
    app_shuffle(t);
    return t;
}

APP_EXPORT void app_trainer_free(app_trainer *t) {
    if (!t) return;
    free(t->perm);
    free(t);
}

APP_EXPORT int app_trainer_epoch(app_trainer *t) { return t->epoch; }

/* Runs `steps` training steps; out[0] = mean loss, out[1] = mean accuracy
 * (NAN for the autoencoder).  Returns 0, or -1 (app_model_error says why). */
APP_EXPORT int app_trainer_run(app_trainer *t, int steps, float *out) {
    double lsum = 0, asum = 0;
    int s, i, p;
    for (s = 0; s < steps; s++) {
        float loss = 0, acc = 0;
        if (t->pos + t->batch > t->n) { /* a new epoch: drop the tail, reshuffle */
            t->pos = 0;
            t->epoch++;
            app_shuffle(t);
        }
        for (i = 0; i < t->batch; i++) {
            int k = t->perm[t->pos + i];
            const unsigned char *src = t->x + (size_t)k * APP_PIX;
            float *dst = t->xb + (size_t)i * APP_PIX;
            for (p = 0; p < APP_PIX; p++) dst[p] = (float)src[p] * (1.0f / 255.0f);
            if (!t->ae) t->yb[i] = (float)t->y[k];
        }
        t->pos += t->batch;
        if (nn_train_on_batch(t->m, t->xb, t->ae ? t->xb : t->yb, t->batch, &loss, t->ae ? NULL : &acc) != NN_OK)
            return -1;
        lsum += loss;
        asum += acc;
    }
    out[0] = steps ? (float)(lsum / steps) : 0.0f;
    out[1] = t->ae ? NAN : (steps ? (float)(asum / steps) : 0.0f);
    return 0;
}

/* ---- inference --------------------------------------------------------------- */
/* uint8 pixels to [0,1] floats (n images) */
APP_EXPORT void app_u8_to_float(const unsigned char *x, int n, float *out) {
    size_t i, len = (size_t)n * APP_PIX;
    for (i = 0; i < len; i++) out[i] = (float)x[i] * (1.0f / 255.0f);
}

/* Classifier accuracy over n uint8 images with labels, at batch 32 (the
 * arena's size since training); out[0] = accuracy, out[1] = mean loss. */
APP_EXPORT int app_evaluate(nn_model *m, const unsigned char *x, const unsigned char *y, int n, float *out) {
    float xb[32 * APP_PIX], pb[32 * APP_CLASSES];
    double loss = 0;
    int i, j, c, right = 0;
    for (i = 0; i < n; i += 32) {
        int b = n - i < 32 ? n - i : 32;
        app_u8_to_float(x + (size_t)i * APP_PIX, b, xb);
        if (nn_predict(m, xb, b, pb) != NN_OK) return -1;
        for (j = 0; j < b; j++) {
            const float *p = pb + j * APP_CLASSES;
            int best = 0;
            for (c = 1; c < APP_CLASSES; c++)
                if (p[c] > p[best]) best = c;
            right += best == y[i + j];
            loss -= log(p[y[i + j]] > 1e-7f ? p[y[i + j]] : 1e-7f);
        }
    }
    out[0] = n ? (float)right / (float)n : 0.0f;
    out[1] = n ? (float)(loss / n) : 0.0f;
    return 0;
}

/* nn_predict: n float images -> n * outputs floats.  0 or -1. */
APP_EXPORT int app_predict(nn_model *m, const float *x, int n, float *out) {
    return nn_predict(m, x, n, out) == NN_OK ? 0 : -1;
}

/* Saliency of one image for class cls: |d loss / d x| (nn_input_gradient)
 * averaged over n copies of x with Gaussian noise of std 0.1 added (SmoothGrad,
 * Smilkov et al. 2017: a single gradient is speckled by the ReLUs' on/off
 * pattern; the average shows the regions).  n = 1: the plain gradient.  out
 * needs room for n * 784 floats (scratch); its first 784 hold the result. */
APP_EXPORT int app_saliency(nn_model *m, const float *x, int cls, int n, float *out) {
    float xs[8 * APP_PIX], y[8];
    nn_rng r;
    int i, p;
    if (n < 1 || n > 8) return -1;
    nn_rng_seed(&r, 11); /* the same noise every call: the map moves only with the drawing */
    for (i = 0; i < n; i++) {
        y[i] = (float)cls;
        for (p = 0; p < APP_PIX; p++) xs[i * APP_PIX + p] = x[p] + (n > 1 ? 0.1f * nn_rng_normal(&r) : 0.0f);
    }
    if (nn_input_gradient(m, xs, y, n, out) != NN_OK) return -1;
    for (p = 0; p < APP_PIX; p++) {
        float s = 0;
        for (i = 0; i < n; i++) s += fabsf(out[i * APP_PIX + p]);
        out[p] = s / (float)n;
    }
    return 0;
}

/* The autoencoder's halves: n images -> n 2-D codes, and n codes -> n images. */
APP_EXPORT int app_encode(nn_model *m, const float *x, int n, float *code) {
    return nn_predict_layers(m, 0, APP_AE_SPLIT, x, n, code) == NN_OK ? 0 : -1;
}
APP_EXPORT int app_decode(nn_model *m, const float *code, int n, float *x) {
    return nn_predict_layers(m, APP_AE_SPLIT, nn_model_num_layers(m), code, n, x) == NN_OK ? 0 : -1;
}

/* ---- benchmark ------------------------------------------------------------------
 * Each returns seconds per operation: the best of the runs that fit in
 * `budget` seconds (at least 3, after two warm-up runs; the best, because
 * on a busy machine the slow runs measure the other programs), or a
 * negative number on error.  A run repeats a short operation until it
 * takes about 5 ms: performance.now() (app_now) steps by 0.1 ms in a page
 * without cross-origin isolation. */
typedef struct app_bench_ctx {
    nn_model *m;
    int what, n;
    float *a, *b, *c, *x, *y, *p;
} app_bench_ctx;

static int app_bench_op(app_bench_ctx *t) {
    float loss, acc;
    switch (t->what) {
    case 0: return nn_train_on_batch(t->m, t->x, t->y, 32, &loss, &acc) == NN_OK;
    case 1: return nn_predict(t->m, t->x, 1, t->p) == NN_OK;
    default: return nn_sgemm(0, 0, t->n, t->n, t->n, 1.0f, t->a, t->n, t->b, t->n, 0.0f, t->c, t->n) == NN_OK;
    }
}

static double app_bench(app_bench_ctx *t, double budget) {
    double start = app_now(), best = 1e30;
    int run, k, inner = 1;
    for (run = 0; run < 5 || (app_now() - start < budget && run < 100000); run++) {
        double t0 = app_now(), dt;
        for (k = 0; k < inner; k++)
            if (!app_bench_op(t)) return -1;
        dt = (app_now() - t0) / inner;
        if (run == 1) /* the second warm-up run sets the repeat count */
            inner = dt >= 5e-3 ? 1 : dt < 5e-6 ? 1000 : (int)(5e-3 / dt) + 1;
        else if (run > 1 && dt < best) best = dt;
    }
    return best;
}

APP_EXPORT double app_bench_sgemm(int n, double budget) {
    size_t i, nn2 = (size_t)n * (size_t)n;
    app_bench_ctx t;
    double s;
    nn_rng r;
    memset(&t, 0, sizeof t);
    t.what = 2;
    t.n = n;
    t.a = n > 0 ? (float *)malloc(sizeof(float) * nn2 * 3) : NULL;
    if (!t.a) return -1;
    t.b = t.a + nn2;
    t.c = t.b + nn2;
    nn_rng_seed(&r, 7);
    for (i = 0; i < 2 * nn2; i++) t.a[i] = nn_rng_uniform(&r) * 2.0f - 1.0f;
    s = app_bench(&t, budget);
    free(t.a);
    return s;
}

/* kind APP_CNN / APP_MLP; what 0: one training step at batch 32, 1: predict one image */
APP_EXPORT double app_bench_model(int kind, int what, double budget) {
    app_bench_ctx t;
    double s;
    nn_rng r;
    int i;
    memset(&t, 0, sizeof t);
    t.what = what ? 1 : 0;
    t.m = app_model_new(kind, 1);
    t.x = (float *)malloc(sizeof(float) * 32 * (APP_PIX + 1 + APP_CLASSES));
    if (!t.m || !t.x) {
        nn_model_free(t.m);
        free(t.x);
        return -1;
    }
    t.y = t.x + 32 * APP_PIX;
    t.p = t.y + 32;
    nn_rng_seed(&r, 3);
    for (i = 0; i < 32 * APP_PIX; i++) t.x[i] = nn_rng_uniform(&r);
    for (i = 0; i < 32; i++) t.y[i] = (float)(i % APP_CLASSES);
    s = app_bench(&t, budget);
    nn_model_free(t.m);
    free(t.x);
    return s;
}
