/* Sequences: finite-difference gradient checks of the recurrent layers
 * (RNN, LSTM, GRU, stacked), the embedding and the time-distributed dense,
 * with per-step and last-step losses, under the scalar backend and every
 * SIMD backend the CPU has; stateful inference against one long sequence;
 * bad token ids and shapes.  Every parameter of these small models is
 * checked: central differences, h = 5e-3, tolerance 2e-2 relative plus a
 * floor of 1e-3 of the largest gradient. */
#include "nn.h"
#include "tt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void test_seq(void);

enum { Q_END = 0, Q_EMBED, Q_RNN, Q_LSTM, Q_GRU, Q_DENSE };
typedef struct {
    int kind, a, b; /* embed: vocab, dim; recurrent: units, return_sequences; dense: units, activation */
} qspec;
typedef struct {
    const char *name;
    int T, F; /* F == 0: input is T token ids (vocab = first layer's a) */
    int B;
    nn_loss loss;
    qspec L[6];
} qcase;

static const qcase qcases[] = {
    {"rnn (sequences) + time-distributed dense, MSE", 5, 3, 3, NN_LOSS_MSE,
     {{Q_RNN, 4, 1}, {Q_DENSE, 2, NN_LINEAR}, {Q_END, 0, 0}}},
    {"rnn (last state) + dense, MSE", 4, 2, 3, NN_LOSS_MSE, {{Q_RNN, 3, 0}, {Q_DENSE, 2, NN_TANH}, {Q_END, 0, 0}}},
    {"lstm (last state) + dense, MSE", 5, 3, 3, NN_LOSS_MSE, {{Q_LSTM, 4, 0}, {Q_DENSE, 3, NN_LINEAR}, {Q_END, 0, 0}}},
    {"lstm (sequences) + softmax, per-step sparse CE", 4, 3, 2, NN_LOSS_SPARSE_CATEGORICAL_CE,
     {{Q_LSTM, 5, 1}, {Q_DENSE, 3, NN_SOFTMAX}, {Q_END, 0, 0}}},
    {"gru (sequences) + softmax, per-step sparse CE", 4, 3, 2, NN_LOSS_SPARSE_CATEGORICAL_CE,
     {{Q_GRU, 4, 1}, {Q_DENSE, 3, NN_SOFTMAX}, {Q_END, 0, 0}}},
    {"gru (last state) + dense, MSE", 5, 2, 3, NN_LOSS_MSE, {{Q_GRU, 3, 0}, {Q_DENSE, 2, NN_LINEAR}, {Q_END, 0, 0}}},
    {"stacked lstm -> lstm", 4, 2, 2, NN_LOSS_MSE,
     {{Q_LSTM, 3, 1}, {Q_LSTM, 3, 0}, {Q_DENSE, 2, NN_LINEAR}, {Q_END, 0, 0}}},
    {"embedding -> gru -> softmax (char model)", 5, 0, 3, NN_LOSS_SPARSE_CATEGORICAL_CE,
     {{Q_EMBED, 6, 3}, {Q_GRU, 4, 1}, {Q_DENSE, 6, NN_SOFTMAX}, {Q_END, 0, 0}}},
    {"embedding -> lstm -> softmax", 4, 0, 2, NN_LOSS_SPARSE_CATEGORICAL_CE,
     {{Q_EMBED, 5, 3}, {Q_LSTM, 4, 1}, {Q_DENSE, 5, NN_SOFTMAX}, {Q_END, 0, 0}}},
    {"time-distributed dense only (tanh, linear)", 3, 4, 3, NN_LOSS_MSE,
     {{Q_DENSE, 5, NN_TANH}, {Q_DENSE, 2, NN_LINEAR}, {Q_END, 0, 0}}},
};

static nn_model *qbuild(const qcase *c, int T) {
    nn_model *m = nn_model_new(c->F ? nn_shape2(T, c->F) : nn_shape1(T));
    const qspec *s;
    for (s = c->L; s->kind != Q_END; s++) switch (s->kind) {
        case Q_EMBED: nn_embedding(m, s->a, s->b); break;
        case Q_RNN: nn_rnn(m, s->a, s->b); break;
        case Q_LSTM: nn_lstm(m, s->a, s->b); break;
        case Q_GRU: nn_gru(m, s->a, s->b); break;
        case Q_DENSE: nn_dense(m, s->a, (nn_activation)s->b); break;
        }
    nn_model_seed(m, 7);
    nn_compile(m, nn_sgd(0.1f), c->loss);
    return m;
}

static float qloss(nn_model *m, const float *x, int B, const float *y, nn_status *st) {
    float L = NAN;
    *st = nn_forward(m, x, B, 1);
    if (*st == NN_OK) *st = nn_backward(m, y, &L, NULL);
    return L;
}

static void qrun(const qcase *c) {
    nn_model *m = qbuild(c, c->T);
    nn_shape os;
    size_t np, j, in_n, y_n;
    float *x, *y, *g, *w;
    double gmax = 0;
    int i, K, steps, bad = 0, first_bad = -1;
    float L0, an_bad = 0, fd_bad = 0;
    nn_status st;
    nn_rng r;
    tt_ctx("seq[%s] %s", nn_backend_name(nn_get_backend()), c->name);
    if (!TT_CHECK(nn_model_status(m) == NN_OK, "build: %s", nn_model_error(m))) {
        nn_model_free(m);
        return;
    }
    os = nn_model_output_shape(m);
    K = os.d[os.ndim - 1];
    steps = os.ndim == 2 ? os.d[0] : 1;
    in_n = (size_t)c->B * c->T * (c->F ? c->F : 1);
    y_n = (size_t)c->B * steps * (c->loss == NN_LOSS_SPARSE_CATEGORICAL_CE ? 1 : K);
    x = (float *)malloc(sizeof(float) * in_n);
    y = (float *)malloc(sizeof(float) * y_n);
    nn_rng_seed(&r, 99);
    for (j = 0; j < in_n; j++) x[j] = c->F ? 2.0f * nn_rng_uniform(&r) - 1.0f : (float)nn_rng_below(&r, (uint32_t)c->L[0].a);
    for (j = 0; j < y_n; j++)
        y[j] = c->loss == NN_LOSS_SPARSE_CATEGORICAL_CE ? (float)nn_rng_below(&r, (uint32_t)K) : nn_rng_normal(&r);
    /* non-zero biases so that every gradient is generic */
    w = nn_model_params(m, &np);
    for (i = 0; i < nn_model_num_layers(m); i++) {
        size_t nb, k;
        float *b = nn_layer_bias(m, i, &nb);
        for (k = 0; k < nb; k++) b[k] = 0.3f * nn_rng_normal(&r);
    }
    L0 = qloss(m, x, c->B, y, &st);
    if (!TT_CHECK(st == NN_OK && L0 == L0, "forward/backward: %s (%s)", nn_strerror(st), nn_model_error(m))) goto out;
    g = (float *)malloc(sizeof(float) * np);
    memcpy(g, nn_model_grads(m, NULL), sizeof(float) * np);
    for (j = 0; j < np; j++)
        if (fabs(g[j]) > gmax) gmax = fabs(g[j]);
    TT_CHECK(gmax > 1e-4, "largest gradient %g: the check would be meaningless", gmax);
    for (j = 0; j < np; j++) {
        const float h = 5e-3f;
        float keep = w[j], lp, lm, fd;
        w[j] = keep + h;
        lp = qloss(m, x, c->B, y, &st);
        w[j] = keep - h;
        lm = qloss(m, x, c->B, y, &st);
        w[j] = keep;
        fd = (lp - lm) / (2 * h);
        if (fabs(fd - g[j]) > 2e-2 * fmax(fabs(fd), fabs(g[j])) + 1e-3 * gmax) {
            if (!bad) {
                first_bad = (int)j;
                an_bad = g[j];
                fd_bad = fd;
            }
            bad++;
        }
    }
    TT_CHECK(bad == 0, "%d of %lu parameter gradients disagree with finite differences (first: #%d analytic %g, fd %g)",
             bad, (unsigned long)np, first_bad, (double)an_bad, (double)fd_bad);
    free(g);
out:
    free(x);
    free(y);
    nn_model_free(m);
}

/* Two chunks through nn_predict_stateful == one sequence twice as long */
static void qstateful(void) {
    static const qcase c = {"stateful", 6, 3, 2, NN_LOSS_MSE, {{Q_LSTM, 5, 1}, {Q_DENSE, 2, NN_LINEAR}, {Q_END, 0, 0}}};
    static const qcase cg = {"stateful", 6, 3, 2, NN_LOSS_MSE, {{Q_GRU, 4, 1}, {Q_RNN, 3, 1}, {Q_DENSE, 2, NN_LINEAR}, {Q_END, 0, 0}}};
    const qcase *cs[2];
    int v;
    cs[0] = &c;
    cs[1] = &cg;
    for (v = 0; v < 2; v++) {
        nn_model *a = qbuild(cs[v], 6), *b = qbuild(cs[v], 12);
        float x[2 * 12 * 3], xa[2 * 6 * 3], oa[2 * 6 * 2], ob[2 * 12 * 2];
        size_t na, nb, j;
        int s, t, k, bad = 0;
        nn_rng r;
        float *pa = nn_model_params(a, &na), *pb = nn_model_params(b, &nb);
        tt_ctx("seq[%s] stateful chunks (%s)", nn_backend_name(nn_get_backend()), v ? "gru+rnn" : "lstm");
        if (!TT_CHECK(na == nb && pa && pb, "same parameter count for both lengths")) {
            nn_model_free(a);
            nn_model_free(b);
            continue;
        }
        memcpy(pb, pa, na * sizeof(float));
        nn_rng_seed(&r, 5);
        for (j = 0; j < sizeof x / sizeof x[0]; j++) x[j] = 2.0f * nn_rng_uniform(&r) - 1.0f;
        TT_CHECK(nn_predict(b, x, 2, ob) == NN_OK, "long sequence");
        nn_reset_state(a);
        for (s = 0; s < 2; s++) {
            for (k = 0; k < 2; k++) memcpy(xa + k * 18, x + k * 36 + s * 18, 18 * sizeof(float));
            TT_CHECK(nn_predict_stateful(a, xa, 2, oa) == NN_OK, "chunk %d: %s", s, nn_model_error(a));
            for (k = 0; k < 2; k++)
                for (t = 0; t < 6 * 2; t++)
                    if (fabsf(oa[k * 12 + t] - ob[k * 24 + s * 12 + t]) > 1e-5f) bad++;
        }
        TT_CHECK(bad == 0, "%d outputs of the chunked, stateful run differ from the whole sequence", bad);
        /* reset: the first chunk again gives the first chunk's outputs */
        nn_reset_state(a);
        for (k = 0; k < 2; k++) memcpy(xa + k * 18, x + k * 36, 18 * sizeof(float));
        nn_predict_stateful(a, xa, 2, oa);
        bad = 0;
        for (k = 0; k < 2; k++)
            for (t = 0; t < 12; t++) bad += fabsf(oa[k * 12 + t] - ob[k * 24 + t]) > 1e-5f;
        TT_CHECK(bad == 0, "after nn_reset_state the first chunk repeats");
        nn_model_free(a);
        nn_model_free(b);
    }
}

static void qerrors(void) {
    nn_model *m = nn_model_new(nn_shape1(4));
    float x[8] = {0, 1, 2, 3, 0, 1, 9, 2}, out[8 * 4];
    tt_ctx("seq errors");
    nn_embedding(m, 4, 2);
    nn_lstm(m, 3, 1);
    nn_dense(m, 4, NN_SOFTMAX);
    TT_CHECK(nn_compile(m, nn_adam(1e-3f), NN_LOSS_SPARSE_CATEGORICAL_CE) == NN_OK, "compile: %s", nn_model_error(m));
    TT_CHECK(nn_predict(m, x, 2, out) == NN_ERR_INVALID_ARGUMENT, "token id 9 of a vocabulary of 4 is refused");
    TT_CHECK(strstr(nn_model_error(m), "9") != NULL, "the message names the id: %s", nn_model_error(m));
    x[6] = 1.5f;
    TT_CHECK(nn_predict(m, x, 2, out) == NN_ERR_INVALID_ARGUMENT, "a fractional id is refused");
    x[6] = 3;
    TT_CHECK(nn_predict(m, x, 2, out) == NN_OK, "valid ids work after errors: %s", nn_model_error(m));
    nn_model_free(m);
    m = nn_model_new(nn_shape1(8));
    TT_CHECK(nn_lstm(m, 4, 0) == NN_ERR_SHAPE, "an LSTM on a vector (not a sequence) is refused");
    nn_model_free(m);
    m = nn_model_new(nn_shape2(5, 3));
    nn_dense(m, 4, NN_RELU);
    TT_CHECK(nn_embedding(m, 10, 4) == NN_ERR_SHAPE, "an embedding after another layer is refused");
    nn_model_free(m);
}

/* The SGEMM workspace planned for one batch must serve every smaller one:
 * a smaller m may take deeper K slices (review finding: dense 1024->256
 * predicted at 32, then at 1, overflowed the packed-B block). */
static void qsmaller(void) {
    nn_model *m = nn_model_new(nn_shape1(1024));
    nn_model *g = nn_model_new(nn_shape2(3, 40));
    float *x = (float *)calloc(64 * 1024, sizeof(float)), out[64 * 256];
    int n;
    tt_ctx("seq: smaller batches after a larger plan");
    nn_dense(m, 256, NN_TANH);
    nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE);
    nn_gru(g, 800, 0);
    nn_dense(g, 2, NN_LINEAR);
    nn_compile(g, nn_sgd(0.1f), NN_LOSS_MSE);
    for (n = 64; n >= 1; n = n > 8 ? n / 2 : n - 1) {
        TT_CHECK(nn_predict(m, x, n, out) == NN_OK, "dense 1024->256 predict %d", n);
        TT_CHECK(nn_predict(g, x, n > 28 ? 28 : n, out) == NN_OK, "gru(800) predict %d", n > 28 ? 28 : n);
    }
    free(x);
    nn_model_free(m);
    nn_model_free(g);
}

void test_seq(void) {
    size_t i, c;
    nn_backend list[TT_NBACKENDS];
    int nb = 0;
    list[nb++] = NN_BACKEND_SCALAR;
    for (i = 0; i < (size_t)TT_NSIMD; i++)
        if (nn_backend_available(tt_simd_backends[i])) list[nb++] = tt_simd_backends[i];
    for (i = 0; i < (size_t)nb; i++) {
        nn_set_backend(list[i]);
        for (c = 0; c < sizeof qcases / sizeof qcases[0]; c++) qrun(&qcases[c]);
        qstateful();
    }
    nn_set_backend(NN_BACKEND_AUTO);
    qerrors();
    for (i = 0; i < (size_t)nb; i++) {
        nn_set_backend(list[i]);
        qsmaller();
    }
    nn_set_backend(NN_BACKEND_AUTO);
}
