/* Separate models trained and used from separate user threads at the same
 * time give what they give alone, bit for bit: nn.h keeps no per-call
 * state outside the model but the backend choice (made once, atomically).
 * `make test-tsan` runs this under ThreadSanitizer, which sees any race. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "nn.h"
#include "tt.h"

#include <stdlib.h>
#include <string.h>

#define TH_STEPS 4
#define TH_B 6

typedef struct th_job {
    int kind;       /* 0: a CNN (conv, 2x2 max-pool: the fused pair; Winograd conv), 1: embedding + LSTM, 2: GRU */
    uint64_t seed;  /* model and data */
    float *params;  /* out: the parameters after training (malloc'd) */
    float pred[TH_B * 64];
    size_t n;
    nn_status st;
} th_job;

static nn_model *th_model(int kind, uint64_t seed) {
    nn_model *m;
    if (kind == 0) {
        m = nn_model_new(nn_shape3(12, 12, 2));
        nn_model_seed(m, seed);
        nn_conv2d(m, 8, 3, NN_RELU);
        nn_maxpool2d(m, 2);
        nn_conv2d(m, 8, 3, NN_RELU); /* 3x3 stride 1, 8 -> 8: Winograd */
        nn_flatten(m);
        nn_dense(m, 4, NN_SOFTMAX);
        nn_compile(m, nn_adam(1e-2f), NN_LOSS_SPARSE_CATEGORICAL_CE);
    } else if (kind == 1) {
        m = nn_model_new(nn_shape1(7));
        nn_model_seed(m, seed);
        nn_embedding(m, 9, 6);
        nn_lstm(m, 10, 1);
        nn_dense(m, 9, NN_SOFTMAX);
        nn_compile(m, nn_adam(1e-2f), NN_LOSS_SPARSE_CATEGORICAL_CE);
    } else {
        m = nn_model_new(nn_shape2(5, 3));
        nn_model_seed(m, seed);
        nn_gru(m, 6, 0);
        nn_batchnorm(m);
        nn_dense(m, 2, NN_LINEAR);
        nn_compile(m, nn_rmsprop(1e-2f), NN_LOSS_MSE);
    }
    return m;
}

static void *th_run(void *arg) {
    th_job *j = (th_job *)arg;
    nn_model *m = th_model(j->kind, j->seed);
    nn_rng r;
    size_t in, yd, i;
    float x[TH_B * 12 * 12 * 2], y[TH_B * 7];
    int s;
    j->st = nn_model_status(m);
    if (j->st != NN_OK) {
        nn_model_free(m);
        return NULL;
    }
    in = j->kind == 0 ? 12 * 12 * 2 : j->kind == 1 ? 7 : 15;
    yd = j->kind == 0 ? 1 : j->kind == 1 ? 7 : 2;
    nn_rng_seed(&r, j->seed + 1000);
    for (s = 0; s < TH_STEPS && j->st == NN_OK; s++) {
        for (i = 0; i < TH_B * in; i++)
            x[i] = j->kind == 1 ? (float)nn_rng_below(&r, 9) : nn_rng_uniform(&r) - 0.5f;
        for (i = 0; i < TH_B * yd; i++)
            y[i] = j->kind == 0 ? (float)nn_rng_below(&r, 4)
                   : j->kind == 1 ? (float)nn_rng_below(&r, 9)
                                  : nn_rng_uniform(&r);
        j->st = nn_train_on_batch(m, x, y, TH_B, NULL, NULL);
    }
    if (j->st == NN_OK) j->st = nn_predict(m, x, TH_B, j->pred);
    if (j->st == NN_OK) {
        const float *p = nn_model_params(m, &j->n);
        j->params = (float *)malloc((j->n + 1) * sizeof(float));
        if (j->params) memcpy(j->params, p, j->n * sizeof(float));
    }
    nn_model_free(m);
    return NULL;
}

static void *th_describe(void *out) {
    *(const char **)out = nn_cpu_description();
    return NULL;
}

void test_threads(void) {
    enum { NJ = 5 };
    th_job alone[NJ], together[NJ];
    pthread_t th[NJ];
    int i, made[NJ];
    tt_ctx("threads: separate models from %d threads at once", NJ);
#ifdef TT_NO_USER_THREADS
    tt_skip("threads: separate models from user threads (no threads in this build)");
    return;
#endif
    for (i = 0; i < NJ; i++) { /* two CNNs, two LSTMs, a GRU; 5 threads on however many cores */
        memset(&alone[i], 0, sizeof alone[i]);
        alone[i].kind = i % 3;
        alone[i].seed = 11 + (uint64_t)i;
        together[i] = alone[i];
        th_run(&alone[i]);
    }
    {
        /* nn_cpu_description from several threads at once: one text */
        const char *d[3] = {NULL, NULL, NULL};
        pthread_t td[3];
        int k, ok = 1;
        for (k = 0; k < 3; k++) ok &= pthread_create(&td[k], NULL, th_describe, (void *)&d[k]) == 0;
        for (k = 0; k < 3 && ok; k++) pthread_join(td[k], NULL);
        TT_CHECK(ok && d[0] && d[0] == d[1] && d[1] == d[2] && strcmp(d[0], nn_cpu_description()) == 0,
                 "nn_cpu_description from three threads");
    }
    for (i = 0; i < NJ; i++) made[i] = pthread_create(&th[i], NULL, th_run, &together[i]) == 0;
    for (i = 0; i < NJ; i++)
        if (made[i]) pthread_join(th[i], NULL);
    for (i = 0; i < NJ; i++) {
        size_t od = together[i].kind == 0 ? 4 : together[i].kind == 1 ? 63 : 2;
        tt_ctx("threads: model %d (kind %d) trained in a thread", i, together[i].kind);
        if (!TT_CHECK(made[i], "pthread_create")) continue;
        TT_CHECK(alone[i].st == NN_OK && together[i].st == NN_OK, "status alone %s, in a thread %s",
                 nn_strerror(alone[i].st), nn_strerror(together[i].st));
        if (alone[i].params && together[i].params && TT_EQ_INT(alone[i].n, together[i].n)) {
            TT_SAME_ARR("parameters after training", together[i].params, alone[i].params, alone[i].n);
            TT_SAME_ARR("predictions", together[i].pred, alone[i].pred, TH_B * od);
        }
        free(alone[i].params);
        free(together[i].params);
    }
}
