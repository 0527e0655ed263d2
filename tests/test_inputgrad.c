/* nn_input_gradient (the loss's gradient with respect to the input, the
 * model in inference mode) against central differences of the loss along
 * random directions, for an MLP with batch norm and dropout, a CNN (the
 * fused conv + pool first layer, a Winograd conv), an LSTM and a conv
 * autoencoder with MSE; on scalar and the best backend.  Also the shape and
 * buffer accessors and the explicit conv padding the interop issue asked for. */
#include "nn.h"
#include "tt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void test_inputgrad(void);

static nn_model *ig_model(int kind, int *in, int *yd, int *ints) {
    nn_model *m;
    *ints = 0;
    if (kind == 0) {
        m = nn_model_new(nn_shape1(12));
        nn_model_seed(m, 21);
        nn_dense(m, 16, NN_TANH);
        nn_batchnorm(m);
        nn_dropout(m, 0.3f);
        nn_dense(m, 5, NN_SOFTMAX);
        nn_compile(m, nn_adam(1e-2f), NN_LOSS_SPARSE_CATEGORICAL_CE);
        *in = 12, *yd = 1, *ints = 5;
    } else if (kind == 1) {
        m = nn_model_new(nn_shape3(12, 12, 1));
        nn_model_seed(m, 22);
        nn_conv2d(m, 8, 3, NN_RELU); /* + pool: the fused pair */
        nn_maxpool2d(m, 2);
        nn_conv2d(m, 8, 3, NN_TANH); /* 5x5x8 -> 3x3x8: Winograd */
        nn_flatten(m);
        nn_dense(m, 3, NN_SOFTMAX);
        nn_compile(m, nn_adam(1e-2f), NN_LOSS_SPARSE_CATEGORICAL_CE);
        *in = 144, *yd = 1, *ints = 3;
    } else if (kind == 2) {
        m = nn_model_new(nn_shape2(6, 4));
        nn_model_seed(m, 23);
        nn_lstm(m, 8, 0);
        nn_dense(m, 3, NN_SOFTMAX);
        nn_compile(m, nn_adam(1e-2f), NN_LOSS_SPARSE_CATEGORICAL_CE);
        *in = 24, *yd = 1, *ints = 3;
    } else {
        m = nn_model_new(nn_shape3(8, 8, 1));
        nn_model_seed(m, 24);
        nn_conv2d_ex(m, 4, 3, 3, 1, 1, NN_TANH);
        nn_maxpool2d(m, 2);
        nn_upsample2d(m, 2);
        nn_conv2d_ex(m, 1, 3, 3, 1, 1, NN_SIGMOID);
        nn_compile(m, nn_adam(1e-2f), NN_LOSS_MSE);
        *in = 64, *yd = 64;
    }
    return m;
}

static double ig_loss(nn_model *m, const float *x, const float *y, int n) {
    float L = NAN;
    if (nn_forward(m, x, n, 0) != NN_OK || nn_backward(m, y, &L, NULL) != NN_OK) return NAN;
    return L;
}

static void ig_case(int kind) {
    static const char *names[4] = {"MLP + batch norm + dropout", "CNN (fused conv + pool, Winograd)",
                                   "LSTM", "conv autoencoder (MSE)"};
    enum { N = 4 };
    int in, yd, ints, i, s, d;
    nn_model *m = ig_model(kind, &in, &yd, &ints);
    nn_rng g;
    float *x, *y, *dx, *v, *xp, *before, *after;
    size_t np;
    tt_ctx("inputgrad[%s]: %s", nn_backend_name(nn_get_backend()), names[kind]);
    if (!TT_CHECK(nn_model_status(m) == NN_OK, "builds: %s", nn_model_error(m))) {
        nn_model_free(m);
        return;
    }
    x = (float *)malloc(sizeof(float) * N * (size_t)in);
    y = (float *)malloc(sizeof(float) * N * (size_t)yd);
    dx = (float *)malloc(sizeof(float) * N * (size_t)in);
    v = (float *)malloc(sizeof(float) * N * (size_t)in);
    xp = (float *)malloc(sizeof(float) * N * (size_t)in);
    nn_rng_seed(&g, 50 + (uint64_t)kind);
    for (s = 0; s < 3; s++) { /* a few steps: batch norm's running statistics move */
        for (i = 0; i < N * in; i++) x[i] = nn_rng_uniform(&g) * 2.0f - 1.0f;
        for (i = 0; i < N * yd; i++) y[i] = ints ? (float)nn_rng_below(&g, (uint32_t)ints) : nn_rng_uniform(&g);
        nn_train_on_batch(m, x, y, N, NULL, NULL);
    }
    after = nn_model_params(m, &np);
    before = (float *)malloc(np * sizeof(float) + 4);
    memcpy(before, after, np * sizeof(float));
    TT_CHECK(nn_input_gradient(m, x, y, N, dx) == NN_OK, "nn_input_gradient: %s", nn_model_error(m));
    after = nn_model_params(m, &np);
    TT_CHECK(memcmp(before, after, np * sizeof(float)) == 0, "parameters unchanged");
    for (d = 0; d < 3; d++) {
        double fd, an = 0.0, h = 1e-2, lp, lm, scale = 0.0;
        for (i = 0; i < N * in; i++) {
            v[i] = nn_rng_normal(&g);
            an += (double)dx[i] * v[i];
            scale += fabs((double)dx[i] * v[i]);
        }
        for (i = 0; i < N * in; i++) xp[i] = x[i] + (float)h * v[i];
        lp = ig_loss(m, xp, y, N);
        for (i = 0; i < N * in; i++) xp[i] = x[i] - (float)h * v[i];
        lm = ig_loss(m, xp, y, N);
        fd = (lp - lm) / (2.0 * h);
        TT_CHECK(fabs(fd - an) <= 2e-2 * scale + 1e-4,
                 "direction %d: dx . v = %.6g, central difference %.6g (scale %.3g)", d, an, fd, scale);
    }
    nn_model_free(m);
    free(x), free(y), free(dx), free(v), free(xp), free(before);
}

static void accessors(void) {
    nn_model *m = nn_model_new(nn_shape3(12, 12, 1));
    nn_shape s;
    size_t c;
    float *b, x[2 * 144], out1[2 * 3], out2[2 * 3];
    int i;
    tt_ctx("inputgrad: shape and buffer accessors");
    nn_conv2d(m, 4, 3, NN_RELU);
    nn_batchnorm(m);
    nn_maxpool2d(m, 2);
    nn_flatten(m);
    nn_dense(m, 3, NN_SOFTMAX);
    nn_compile(m, nn_sgd(0.1f), NN_LOSS_SPARSE_CATEGORICAL_CE);
    s = nn_model_input_shape(m);
    TT_CHECK(s.ndim == 3 && s.d[0] == 12 && s.d[1] == 12 && s.d[2] == 1, "input shape");
    s = nn_layer_output_shape(m, 0);
    TT_CHECK(s.ndim == 3 && s.d[0] == 10 && s.d[1] == 10 && s.d[2] == 4, "conv output (10,10,4)");
    s = nn_layer_output_shape(m, 3);
    TT_CHECK(s.ndim == 1 && s.d[0] == 100, "flatten output (100)");
    TT_CHECK(nn_layer_output_shape(m, 5).ndim == 0 && nn_layer_output_shape(m, -1).ndim == 0 &&
                 nn_layer_output_shape(NULL, 0).ndim == 0,
             "bad index: ndim 0");
    b = nn_layer_buffers(m, 1, &c);
    TT_CHECK(b && c == 8, "batch norm: running mean and variance, 2 x 4 floats (got %lu)", (unsigned long)c);
    TT_CHECK(!nn_layer_buffers(m, 0, &c) && c == 0, "conv: no buffers");
    if (b && c == 8) {
        TT_CHECK(b[0] == 0.0f && b[4] == 1.0f, "initial running mean 0, variance 1");
        for (i = 0; i < 2 * 144; i++) x[i] = (float)(i % 13) / 13.0f;
        nn_predict(m, x, 2, out1);
        for (i = 0; i < 4; i++) b[i] = 0.5f; /* writable: inference follows */
        nn_predict(m, x, 2, out2);
        TT_CHECK(memcmp(out1, out2, sizeof out1) != 0, "a written running mean changes the prediction");
    }
    nn_model_free(m);
    m = nn_model_new(nn_shape1(5));
    nn_embedding(m, 10, 4);
    nn_flatten(m);
    nn_dense(m, 2, NN_SOFTMAX);
    nn_compile(m, nn_sgd(0.1f), NN_LOSS_SPARSE_CATEGORICAL_CE);
    {
        float t[5] = {1, 2, 3, 4, 5}, yy[1] = {1}, d[5];
        TT_CHECK(nn_input_gradient(m, t, yy, 1, d) == NN_ERR_UNSUPPORTED,
                 "an embedding first: NN_ERR_UNSUPPORTED");
    }
    nn_model_free(m);
}

/* Explicit padding (NN_PADDING(p), PyTorch's padding=p): the forward against
 * a direct sum in double, im2col and Winograd, and a save/load round trip. */
static void padding_case(int H, int W, int C, int F, int k, int stride, int pad) {
    nn_model *m = nn_model_new(nn_shape3(H, W, C)), *l = NULL;
    nn_shape o;
    nn_rng g;
    size_t nw, nb, i;
    float *w, *b, *x, *y, *y2;
    int oh, ow, bi, oy, ox, ky, kx, c, f, bad = 0;
    char path[64];
    tt_ctx("inputgrad: conv %dx%d stride %d padding %d on (%d,%d,%d) -> %d filters", k, k, stride, pad, H, W,
           C, F);
    nn_conv2d_ex(m, F, k, k, stride, NN_PADDING(pad), NN_LINEAR);
    if (!TT_CHECK(nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE) == NN_OK, "compile: %s", nn_model_error(m))) {
        nn_model_free(m);
        return;
    }
    oh = (H + 2 * pad - k) / stride + 1, ow = (W + 2 * pad - k) / stride + 1;
    o = nn_layer_output_shape(m, 0);
    TT_CHECK(o.d[0] == oh && o.d[1] == ow && o.d[2] == F, "output (%d,%d,%d), PyTorch's (%d,%d,%d)", o.d[0],
             o.d[1], o.d[2], oh, ow, F);
    nn_rng_seed(&g, 9);
    w = nn_layer_weights(m, 0, &nw);
    b = nn_layer_bias(m, 0, &nb);
    for (i = 0; i < nw; i++) w[i] = nn_rng_uniform(&g) - 0.5f;
    for (i = 0; i < nb; i++) b[i] = nn_rng_uniform(&g) - 0.5f;
    x = (float *)malloc(sizeof(float) * 2 * H * W * C);
    y = (float *)malloc(sizeof(float) * 2 * oh * ow * F);
    y2 = (float *)malloc(sizeof(float) * 2 * oh * ow * F);
    for (i = 0; i < (size_t)2 * H * W * C; i++) x[i] = nn_rng_uniform(&g) - 0.5f;
    TT_CHECK(nn_predict(m, x, 2, y) == NN_OK, "predict");
    for (bi = 0; bi < 2; bi++)
        for (oy = 0; oy < oh; oy++)
            for (ox = 0; ox < ow; ox++)
                for (f = 0; f < F; f++) {
                    double acc = b[f];
                    for (ky = 0; ky < k; ky++)
                        for (kx = 0; kx < k; kx++) {
                            int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            for (c = 0; c < C; c++)
                                acc += (double)x[((bi * H + iy) * W + ix) * C + c] * w[((ky * k + kx) * C + c) * F + f];
                        }
                    bad += fabs(acc - y[((bi * oh + oy) * ow + ox) * F + f]) > 1e-5;
                }
    TT_CHECK(bad == 0, "%d outputs differ from the direct sum with %d zeros on every side", bad, pad);
    snprintf(path, sizeof path, "/tmp/nn_pad_%d_%d.nnm", k, pad);
    TT_CHECK(nn_save(m, path, 0) == NN_OK && nn_load(&l, path) == NN_OK && l, "save and load");
    if (l) {
        TT_CHECK(nn_predict(l, x, 2, y2) == NN_OK && memcmp(y, y2, sizeof(float) * 2 * oh * ow * F) == 0,
                 "the loaded model predicts the same bits");
        nn_model_free(l);
    }
    remove(path);
    nn_model_free(m);
    free(x), free(y), free(y2);
}

void test_inputgrad(void) {
    nn_backend bk[2];
    int b, k;
    bk[0] = NN_BACKEND_SCALAR;
    bk[1] = tt_best_backend();
    for (b = 0; b < 2; b++) {
        if (b == 1 && bk[1] == NN_BACKEND_SCALAR) break;
        tt_set_backend(bk[b]);
        for (k = 0; k < 4; k++) ig_case(k);
    }
    tt_set_backend(tt_best_backend());
    accessors();
    padding_case(6, 6, 2, 3, 3, 2, 1);  /* Conv2d(3, stride=2, padding=1) on an even input */
    padding_case(7, 5, 3, 2, 2, 1, 3);  /* more padding than the kernel needs */
    padding_case(9, 9, 8, 8, 3, 1, 2);  /* Winograd with padding 2 */
    padding_case(9, 9, 8, 8, 3, 1, 1);  /* Winograd, padding 1 ('same') */
    {
        nn_model *m = nn_model_new(nn_shape3(4, 4, 1));
        tt_ctx("inputgrad: padding errors");
        TT_CHECK(nn_conv2d_ex(m, 2, 3, 3, 1, NN_PADDING(2000000), NN_LINEAR) != NN_OK ||
                     nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE) != NN_OK,
                 "padding over 1e6 refused");
        nn_model_free(m);
    }
}
