/* Old model files still load (group "compat").
 *
 * tests/fixtures/v1/ holds model files in file format version 1, written by
 * nn.h 0.1.0 (commit 439b6ba) with tests/fixtures/make_v1.c, and what that
 * code computed from them on the scalar backend: for each NAME,
 *
 *   NAME.nnm        the model file
 *   NAME.x.bin      an input batch of N samples
 *   NAME.y.bin      targets for it
 *   NAME.out.bin    nn_predict of the loaded model on x
 *   NAME.step.bin   every layer's weights then bias (layer order, no
 *                   padding) after nn_model_seed(m, STEP_SEED) and one
 *                   nn_train_on_batch(m, x, y, N) of the loaded model
 *
 * (raw little-endian float32).  On every backend: nn_load succeeds, the
 * layer and parameter counts and the output size are the ones built,
 * nn_predict matches, and the one training step lands on the stored
 * parameters: with the optimizer state in the file (the *_opt files) that
 * proves the state and step count came back, without it that the optimizer
 * kind and hyper-parameters did.  Tolerance: 1e-4 of the largest magnitude
 * of the expected array (backends and compilers round differently).  The
 * two pairs saved with and without the optimizer state check that their
 * stored steps differ by far more than that, so a loader that dropped the
 * state would fail.
 *
 * Do not regenerate the fixtures with a newer nn.h: they are the old files.
 * The tests read them relative to the repository root (make test runs
 * there; ../ is tried too, for a run from build/). */
#include "nn.h"
#include "tt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void test_compat(void);

#define COMPAT_N 6          /* samples per batch, as in make_v1.c */
#define COMPAT_STEP_SEED 7u /* nn_model_seed before the training step */
#define COMPAT_TOL 1e-4     /* of the largest expected magnitude */

typedef struct {
    const char *name;
    int in_dim, y_dim, out_dim; /* floats per sample */
    int layers;
    size_t params;
    int frozen_layer; /* a layer saved frozen (-1: none) */
    const char *what;
} compat_fixture;

static const compat_fixture fixtures[] = {
    {"mlp_bn_dropout", 12, 1, 4, 6, 412, -1,
     "dense, relu layer, batchnorm, dropout, dense tanh, dense softmax; sparse CE; Adam + clip; weights only"},
    {"mlp_bn_dropout_opt", 12, 1, 4, 6, 412, -1, "the same model with its Adam state"},
    {"cnn_nesterov", 300, 5, 5, 7, 1189, -1,
     "conv (im2col), batchnorm, relu layer, conv 8->8 3x3 (Winograd) relu, maxpool, flatten, dense softmax; "
     "categorical CE; SGD Nesterov + weight decay; weights only"},
    {"cnn_nesterov_opt", 300, 5, 5, 7, 1189, -1, "the same model with its momentum buffers"},
    {"lstm_lm_opt", 7, 7, 77, 3, 1121, -1,
     "embedding, LSTM (sequences), time-distributed dense softmax; sparse CE per step; AdamW state"},
    {"gru_rnn_opt", 24, 2, 2, 3, 650, -1, "GRU (sequences), RNN (last state), dense; MSE; RMSprop + wd state"},
    {"conv_ae_opt", 128, 128, 128, 10, 1200, -1,
     "conv same leaky relu 0.1, maxpool, conv 8->8 (Winograd), avgpool, conv 2x2 stride 2, tanh layer, "
     "upsample x4, conv, upsample x2, conv sigmoid; binary CE; SGD momentum state"},
    {"dense_bce_logits_sgd", 5, 2, 2, 2, 50, 0,
     "dense leaky relu 0.2 (frozen), dense; binary CE on logits; plain SGD; weights only"},
    {"dense_cce_logits_sgd", 5, 3, 3, 2, 66, -1,
     "dense sigmoid, dense; categorical CE on logits; SGD + weight decay; weights only"},
    {"dense_scce_logits_adam_opt", 5, 1, 3, 3, 75, -1,
     "dense tanh, dropout 0.5, dense; sparse CE on logits; Adam + L2 state"},
};
/* fixtures saved with and without the optimizer state: {weights only, with state} */
static const int compat_pairs[][2] = {{0, 1}, {2, 3}};

static const char *compat_dir(void) {
    static const char *const dirs[] = {"tests/fixtures/v1", "../tests/fixtures/v1"};
    static const char *found;
    size_t i;
    if (found) return found;
    for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[256];
        FILE *f;
        snprintf(path, sizeof path, "%s/%s.nnm", dirs[i], fixtures[0].name);
        f = fopen(path, "rb");
        if (f) {
            fclose(f);
            return found = dirs[i];
        }
    }
    return NULL;
}

/* n little-endian float32 from DIR/NAME SUFFIX (exactly n), or NULL with one failed check */
static float *compat_read(const char *dir, const char *name, const char *suffix, size_t n) {
    char path[256];
    FILE *f;
    unsigned char *b;
    float *x;
    long sz;
    size_t i;
    snprintf(path, sizeof path, "%s/%s%s", dir, name, suffix);
    f = fopen(path, "rb");
    if (!f) {
        TT_CHECK(0, "cannot open %s", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (sz != (long)(4 * n)) {
        fclose(f);
        TT_CHECK(0, "%s: %ld bytes, expected %lu floats", path, sz, (unsigned long)n);
        return NULL;
    }
    b = (unsigned char *)malloc(4 * n + 1);
    x = (float *)malloc(n * sizeof(float) + 1);
    if (!b || !x || fread(b, 1, 4 * n, f) != 4 * n) {
        fclose(f);
        free(b);
        free(x);
        TT_CHECK(0, "%s: read failed", path);
        return NULL;
    }
    fclose(f);
    for (i = 0; i < n; i++) {
        uint32_t u = (uint32_t)b[4 * i] | ((uint32_t)b[4 * i + 1] << 8) | ((uint32_t)b[4 * i + 2] << 16) |
                     ((uint32_t)b[4 * i + 3] << 24);
        memcpy(&x[i], &u, 4);
    }
    free(b);
    return x;
}

static double compat_max_abs(const float *x, size_t n) {
    double a = 0;
    size_t i;
    for (i = 0; i < n; i++)
        if (fabs((double)x[i]) > a) a = fabs((double)x[i]);
    return a;
}

/* every layer's weights then bias into p (room for `cap` floats); the count.
 * 0.1.0's order: a dense layer's weights (in, units), where nn.h now holds
 * (units, in) */
static size_t compat_params(nn_model *m, float *p, size_t cap) {
    size_t k = 0, c;
    int i;
    for (i = 0; i < nn_model_num_layers(m); i++) {
        const float *w = nn_layer_weights(m, i, &c);
        if (w && k + c <= cap && strcmp(nn_layer_kind(m, i), "dense") == 0) {
            nn_shape o = nn_layer_output_shape(m, i);
            size_t U = (size_t)o.d[o.ndim - 1], in = c / U, a, u;
            for (a = 0; a < in; a++)
                for (u = 0; u < U; u++) p[k + a * U + u] = w[u * in + a];
        } else if (w && k + c <= cap)
            memcpy(p + k, w, c * sizeof(float));
        if (w) k += c;
        w = nn_layer_bias(m, i, &c);
        if (w && k + c <= cap) memcpy(p + k, w, c * sizeof(float));
        if (w) k += c;
    }
    return k;
}

/* the weights and bias of one layer, concatenated (for the frozen check) */
static size_t compat_layer(nn_model *m, int layer, float *p, size_t cap) {
    size_t c, k = 0;
    const float *w = nn_layer_weights(m, layer, &c);
    if (w && c <= cap) memcpy(p, w, c * sizeof(float)), k = c;
    w = nn_layer_bias(m, layer, &c);
    if (w && k + c <= cap) memcpy(p + k, w, c * sizeof(float)), k += c;
    return k;
}

static void compat_one(const char *dir, const compat_fixture *fx) {
    const size_t n = COMPAT_N;
    float *x = compat_read(dir, fx->name, ".x.bin", n * (size_t)fx->in_dim);
    float *y = compat_read(dir, fx->name, ".y.bin", n * (size_t)fx->y_dim);
    float *want = compat_read(dir, fx->name, ".out.bin", n * (size_t)fx->out_dim);
    float *wstep = compat_read(dir, fx->name, ".step.bin", fx->params);
    float *got = (float *)malloc(n * (size_t)fx->out_dim * sizeof(float));
    float *p = (float *)malloc((fx->params + 1) * sizeof(float));
    float *fz0 = (float *)malloc((fx->params + 1) * sizeof(float));
    float *fz1 = (float *)malloc((fx->params + 1) * sizeof(float));
    const nn_backend *all = tt_backends; /* NN_BACKEND_LIST, scalar first */
    char path[256];
    size_t bi;
    snprintf(path, sizeof path, "%s/%s.nnm", dir, fx->name);
    if (x && y && want && wstep && got && p && fz0 && fz1) {
        double otol = COMPAT_TOL * compat_max_abs(want, n * (size_t)fx->out_dim);
        double ptol = COMPAT_TOL * compat_max_abs(wstep, fx->params);
        for (bi = 0; bi < (size_t)TT_NBACKENDS; bi++) {
            nn_model *m = NULL;
            nn_status st;
            nn_shape os;
            size_t odim, k, nf = 0;
            char label[128];
            snprintf(label, sizeof label, "compat %s", fx->name);
            if (!tt_use_backend(label, all[bi])) continue;
            tt_ctx("compat[%s] %s (%s)", nn_backend_name(all[bi]), fx->name, fx->what);
            st = nn_load(&m, path);
            if (!TT_CHECK(st == NN_OK && m, "nn_load(%s): %s", path, nn_strerror(st))) {
                nn_model_free(m);
                continue;
            }
            TT_EQ_INT(nn_model_num_layers(m), fx->layers);
            TT_EQ_INT(nn_model_num_params(m), fx->params);
            os = nn_model_output_shape(m);
            odim = os.ndim < 1 || os.ndim > 3 ? 0 : (size_t)os.d[0] * (os.ndim > 1 ? (size_t)os.d[1] : 1) *
                                                       (os.ndim > 2 ? (size_t)os.d[2] : 1);
            if (!TT_CHECK(odim == (size_t)fx->out_dim, "output shape: %lu floats per sample, expected %d",
                          (unsigned long)odim, fx->out_dim) ||
                nn_model_num_params(m) != fx->params) {
                nn_model_free(m);
                continue;
            }
            st = nn_predict(m, x, (int)n, got);
            if (TT_CHECK(st == NN_OK, "nn_predict: %s (%s)", nn_strerror(st), nn_model_error(m)))
                TT_CMP_ARR("nn_predict of the v1 file matches 0.1.0's", got, want, NULL, n * (size_t)fx->out_dim,
                           COMPAT_TOL, otol);
            if (fx->frozen_layer >= 0) nf = compat_layer(m, fx->frozen_layer, fz0, fx->params);
            nn_model_seed(m, COMPAT_STEP_SEED);
            st = nn_train_on_batch(m, x, y, (int)n, NULL, NULL);
            if (TT_CHECK(st == NN_OK, "nn_train_on_batch: %s (%s)", nn_strerror(st), nn_model_error(m))) {
                k = compat_params(m, p, fx->params);
                if (TT_CHECK(k == fx->params, "layer weights + biases: %lu floats, expected %lu", (unsigned long)k,
                             (unsigned long)fx->params))
                    TT_CMP_ARR("parameters after one training step match 0.1.0's", p, wstep, NULL, fx->params,
                               COMPAT_TOL, ptol);
                if (fx->frozen_layer >= 0) {
                    TT_CHECK(nf > 0 && compat_layer(m, fx->frozen_layer, fz1, fx->params) == nf,
                             "frozen layer %d has no parameters", fx->frozen_layer);
                    TT_SAME_ARR("the layer saved frozen did not move", fz1, fz0, nf);
                }
            }
            nn_model_free(m);
        }
    }
    (void)nn_set_backend(NN_BACKEND_AUTO);
    free(x);
    free(y);
    free(want);
    free(wstep);
    free(got);
    free(p);
    free(fz0);
    free(fz1);
}

/* The stored steps with and without the optimizer state are far apart
 * (more than 20x the tolerance somewhere), so the step check sees the state. */
static void compat_pair(const char *dir, const compat_fixture *w, const compat_fixture *o) {
    float *a = compat_read(dir, w->name, ".step.bin", w->params);
    float *b = compat_read(dir, o->name, ".step.bin", o->params);
    tt_ctx("compat %s vs %s", w->name, o->name);
    if (a && b && w->params == o->params) {
        double tol = COMPAT_TOL * compat_max_abs(b, o->params), d = 0;
        size_t i;
        for (i = 0; i < o->params; i++)
            if (fabs((double)a[i] - (double)b[i]) > d) d = fabs((double)a[i] - (double)b[i]);
        TT_CHECK(d > 20 * tol, "the step from the optimizer state differs from a fresh start by only %.3g (tol %.3g)",
                 d, tol);
    }
    free(a);
    free(b);
}

void test_compat(void) {
    const char *dir = compat_dir();
    size_t i;
    tt_ctx("compat");
    if (!TT_CHECK(dir != NULL, "tests/fixtures/v1/%s.nnm not found: run the tests from the repository root",
                  fixtures[0].name))
        return;
    for (i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) compat_one(dir, &fixtures[i]);
    for (i = 0; i < sizeof compat_pairs / sizeof compat_pairs[0]; i++)
        compat_pair(dir, &fixtures[compat_pairs[i][0]], &fixtures[compat_pairs[i][1]]);
}
