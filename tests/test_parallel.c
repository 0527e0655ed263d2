/* Training gives the same bits for any thread count (nn_set_threads 1, 2,
 * 3, 8: more threads than this machine's cores too): parameters, optimizer
 * state and predictions of a CNN (the fused conv + pool pair, a Winograd
 * conv, dense), an MLP with batch norm, an LSTM, a GRU and a convolutional
 * autoencoder, each sized so that the parallel paths run at their real
 * thresholds.  Also: nn_set_threads / NN_THREADS arguments, a fork() child
 * that trains with the pool, nn_sgemm with threads against one thread, and
 * idle workers that sleep. */
#define _POSIX_C_SOURCE 200809L
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nn.h"
#include "tt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PT_STEPS 3
#define PT_B 32

typedef struct pt_run {
    float *params, *pred;
    unsigned char *file; /* nn_save(with_optimizer = 1) */
    size_t np, npred, nfile;
    float loss;
    nn_status st;
} pt_run;

static nn_model *pt_model(int kind, size_t *in, size_t *yd, int *ints) {
    nn_model *m;
    *ints = 0;
    switch (kind) {
    case 0: /* CNN */
        m = nn_model_new(nn_shape3(20, 20, 1));
        nn_model_seed(m, 5);
        nn_conv2d(m, 16, 3, NN_RELU); /* + pool: the fused pair, image by image */
        nn_maxpool2d(m, 2);
        nn_conv2d(m, 16, 3, NN_RELU); /* 9x9x16 -> 7x7x16: Winograd */
        nn_maxpool2d(m, 2);
        nn_flatten(m);
        nn_dense(m, 64, NN_RELU);
        nn_dense(m, 10, NN_SOFTMAX);
        nn_compile(m, nn_adam(1e-2f), NN_LOSS_SPARSE_CATEGORICAL_CE);
        *in = 400, *yd = 1, *ints = 10;
        break;
    case 1: /* MLP with batch norm */
        m = nn_model_new(nn_shape1(300));
        nn_model_seed(m, 6);
        nn_dense(m, 128, NN_LINEAR);
        nn_batchnorm(m);
        nn_activation_layer(m, NN_RELU);
        nn_dense(m, 96, NN_TANH);
        nn_dropout(m, 0.25f);
        nn_dense(m, 10, NN_SOFTMAX);
        nn_compile(m, nn_sgd_momentum(5e-2f, 0.9f, 1), NN_LOSS_SPARSE_CATEGORICAL_CE);
        *in = 300, *yd = 1, *ints = 10;
        break;
    case 2: /* LSTM over one-hot characters */
        m = nn_model_new(nn_shape2(12, 24));
        nn_model_seed(m, 7);
        nn_lstm(m, 64, 1);
        nn_dense(m, 24, NN_SOFTMAX);
        nn_compile(m, nn_adam(1e-2f), NN_LOSS_SPARSE_CATEGORICAL_CE);
        *in = 12 * 24, *yd = 12, *ints = 24;
        break;
    case 3: /* GRU regression */
        m = nn_model_new(nn_shape2(10, 8));
        nn_model_seed(m, 8);
        nn_gru(m, 64, 0);
        nn_dense(m, 3, NN_LINEAR);
        nn_compile(m, nn_rmsprop(1e-2f), NN_LOSS_MSE);
        *in = 80, *yd = 3;
        break;
    default: /* convolutional autoencoder */
        m = nn_model_new(nn_shape3(16, 16, 1));
        nn_model_seed(m, 9);
        nn_conv2d_ex(m, 16, 3, 3, 1, 1, NN_RELU);
        nn_maxpool2d(m, 2);
        nn_conv2d_ex(m, 8, 3, 3, 1, 1, NN_RELU);
        nn_upsample2d(m, 2);
        nn_conv2d_ex(m, 1, 3, 3, 1, 1, NN_SIGMOID);
        nn_compile(m, nn_adamw(1e-2f, 1e-2f), NN_LOSS_MSE);
        *in = 256, *yd = 256;
        break;
    }
    return m;
}

static void pt_train(int kind, int threads, pt_run *r) {
    size_t in, yd, i, n;
    int ints, s;
    nn_model *m;
    nn_rng g;
    float *x, *y;
    memset(r, 0, sizeof *r);
    r->st = nn_set_threads(threads);
    if (r->st != NN_OK) return;
    m = pt_model(kind, &in, &yd, &ints);
    x = (float *)malloc(PT_B * in * sizeof(float));
    y = (float *)malloc(PT_B * yd * sizeof(float));
    r->st = nn_model_status(m);
    nn_rng_seed(&g, 100 + (uint64_t)kind);
    for (s = 0; s < PT_STEPS && r->st == NN_OK && x && y; s++) {
        for (i = 0; i < PT_B * in; i++) x[i] = nn_rng_uniform(&g);
        if (kind == 2) /* one-hot rows */
            for (i = 0; i < PT_B * 12; i++) {
                memset(x + i * 24, 0, 24 * sizeof(float));
                x[i * 24 + nn_rng_below(&g, 24)] = 1.0f;
            }
        for (i = 0; i < PT_B * yd; i++)
            y[i] = ints ? (float)nn_rng_below(&g, (uint32_t)ints) : kind == 4 ? x[i] : nn_rng_normal(&g);
        r->st = nn_train_on_batch(m, x, y, PT_B, &r->loss, NULL);
    }
    if (r->st == NN_OK) {
        nn_shape o = nn_model_output_shape(m);
        r->npred = PT_B * (size_t)o.d[0] * (o.ndim > 1 ? (size_t)o.d[1] : 1) *
                   (o.ndim > 2 ? (size_t)o.d[2] : 1);
        r->pred = (float *)malloc(r->npred * sizeof(float));
        if (r->pred) r->st = nn_predict(m, x, PT_B, r->pred);
        {
            /* parameters, then the whole file with the optimizer state */
            const float *p = nn_model_params(m, &n);
            char path[64];
            FILE *f;
            long len = 0;
            snprintf(path, sizeof path, "/tmp/nn_par_%ld_%d.nn", (long)getpid(), threads);
            r->np = n;
            r->params = (float *)malloc(n * sizeof(float) + 4);
            if (r->params) memcpy(r->params, p, n * sizeof(float));
            if (r->st == NN_OK) r->st = nn_save(m, path, 1);
            if (r->st == NN_OK && (f = fopen(path, "rb"))) {
                fseek(f, 0, SEEK_END);
                len = ftell(f);
                fseek(f, 0, SEEK_SET);
                r->file = (unsigned char *)malloc((size_t)len + 1);
                if (r->file && fread(r->file, 1, (size_t)len, f) == (size_t)len) r->nfile = (size_t)len;
                fclose(f);
            }
            remove(path);
        }
    }
    nn_model_free(m);
    free(x);
    free(y);
}

static void pt_free(pt_run *r) {
    free(r->params);
    free(r->pred);
    free(r->file);
}

void test_parallel(void) {
    static const char *names[5] = {"CNN", "MLP + batch norm", "LSTM", "GRU", "conv autoencoder"};
    static const int counts[3] = {2, 3, 8};
    int before = nn_get_threads(), kind, c, bi;
    tt_ctx("parallel: nn_set_threads arguments");
    TT_CHECK(nn_set_threads(-1) == NN_ERR_INVALID_ARGUMENT, "nn_set_threads(-1)");
    TT_CHECK(nn_set_threads(NN_MAX_THREADS + 1) == NN_ERR_INVALID_ARGUMENT, "nn_set_threads(too many)");
    TT_CHECK(nn_set_threads(0) == NN_OK && nn_get_threads() == nn_cpu_cores(),
             "nn_set_threads(0) uses the %d cores of the affinity mask (got %d)", nn_cpu_cores(),
             nn_get_threads());
    TT_CHECK(nn_set_threads(3) == NN_OK && nn_get_threads() == 3, "nn_set_threads(3)");
    for (bi = 0; bi < TT_NBACKENDS; bi++) {
    if (!tt_use_backend("parallel", tt_backends[bi])) continue;
    for (kind = 0; kind < 5; kind++) {
        pt_run one, many;
        tt_ctx("parallel[%s]: %s, 1 thread", nn_backend_name(tt_backends[bi]), names[kind]);
        pt_train(kind, 1, &one);
        if (!TT_CHECK(one.st == NN_OK && one.params && one.pred, "trains: %s", nn_strerror(one.st))) {
            pt_free(&one);
            continue;
        }
        for (c = 0; c < 3; c++) {
            tt_ctx("parallel[%s]: %s, %d threads against 1", nn_backend_name(tt_backends[bi]),
                   names[kind], counts[c]);
            pt_train(kind, counts[c], &many);
            if (TT_CHECK(many.st == NN_OK && many.params && many.pred && many.np == one.np,
                         "trains: %s", nn_strerror(many.st))) {
                TT_CHECK(memcmp(&many.loss, &one.loss, sizeof(float)) == 0, "loss %.9g vs %.9g",
                         (double)many.loss, (double)one.loss);
                TT_SAME_ARR("parameters", many.params, one.params, one.np);
                TT_CHECK(many.nfile > 0 && many.nfile == one.nfile &&
                             memcmp(many.file, one.file, one.nfile) == 0,
                         "saved files with the optimizer state (%lu bytes) are identical",
                         (unsigned long)one.nfile);
                TT_SAME_ARR("predictions", many.pred, one.pred, one.npred);
            }
            pt_free(&many);
        }
        pt_free(&one);
    }
    }
    tt_set_backend(tt_best_backend());
    {
        /* the public SGEMM with threads, odd sizes: every C element by one
         * worker in the one-thread order */
        enum { M = 203, N = 141, K = 517 };
        float *a = (float *)malloc(sizeof(float) * M * K), *b = (float *)malloc(sizeof(float) * K * N),
              *c1 = (float *)malloc(sizeof(float) * M * N), *c2 = (float *)malloc(sizeof(float) * M * N);
        nn_rng g;
        int i, t;
        tt_ctx("parallel: nn_sgemm %dx%dx%d, 1 vs 2 and 5 threads", M, N, K);
        nn_rng_seed(&g, 3);
        if (a && b && c1 && c2) {
            for (i = 0; i < M * K; i++) a[i] = nn_rng_normal(&g);
            for (i = 0; i < K * N; i++) b[i] = nn_rng_normal(&g);
            for (t = 0; t < 4; t++) {
                int ta = t & 1, tb = t >> 1;
                for (i = 0; i < M * N; i++) c1[i] = c2[i] = (float)i;
                nn_set_threads(1);
                TT_CHECK(nn_sgemm(ta, tb, M, N, K, 0.5f, a, ta ? M : K, b, tb ? K : N, 0.25f, c1, N) == NN_OK, "1 thread");
                nn_set_threads(t < 2 ? 2 : 5);
                TT_CHECK(nn_sgemm(ta, tb, M, N, K, 0.5f, a, ta ? M : K, b, tb ? K : N, 0.25f, c2, N) == NN_OK, "threads");
                TT_SAME_ARR("C", c2, c1, (size_t)M * N);
            }
        }
        free(a);
        free(b);
        free(c1);
        free(c2);
    }
#if defined(__has_feature)
#if __has_feature(thread_sanitizer) /* TSan refuses threads in a child of a threaded fork */
#define PT_NO_FORK 1
#endif
#endif
#if defined(TT_NO_USER_THREADS) /* no fork() in wasm */
#define PT_NO_FORK 1
#endif
#if defined(NN_TEST_SMALL) /* qemu-user (make test-arm) aborts in the child of a threaded fork */
#define PT_NO_FORK 1
#endif
#if defined(PT_NO_FORK) || defined(__SANITIZE_THREAD__)
    tt_skip("parallel: fork() test (not under TSan, qemu-user or wasm)");
#else
    {
        /* fork() after the pool started: the child's pool is its own */
        pt_run one, child;
        pid_t pid;
        int status = 0;
        tt_ctx("parallel: a fork() child trains with 2 threads");
        pt_train(0, 2, &one); /* the parent's pool is running */
        pid = fork();
        if (pid == 0) {
            int same;
            pt_train(0, 2, &child);
            same = child.st == NN_OK && one.st == NN_OK && child.np == one.np &&
                   memcmp(child.params, one.params, one.np * sizeof(float)) == 0;
            _exit(same ? 0 : 1);
        }
        TT_CHECK(pid > 0, "fork");
        if (pid > 0) {
            waitpid(pid, &status, 0);
            TT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                     "the child's training equals the parent's (status %d)", status);
        }
        pt_free(&one);
    }
#endif
    {
        /* nn_fit times steps on the workers against one thread (and may go
         * on with one): whatever it picks, the same bits as one thread */
        enum { NS = 2600, IN = 96 };
        float *x = (float *)malloc(sizeof(float) * NS * IN), *y = (float *)malloc(sizeof(float) * NS);
        float *p1 = NULL;
        size_t n1 = 0, n;
        nn_rng g;
        int t, i;
        tt_ctx("parallel: nn_fit (with its thread probe), 1 vs 2 threads");
        nn_rng_seed(&g, 12);
        for (i = 0; x && y && i < NS * IN; i++) x[i] = nn_rng_uniform(&g);
        for (i = 0; x && y && i < NS; i++) y[i] = (float)nn_rng_below(&g, 5);
        for (t = 1; x && y && t <= 2; t++) {
            nn_dataset ds;
            nn_fit_opts o = nn_fit_defaults();
            nn_model *m = nn_model_new(nn_shape1(IN));
            const float *p;
            nn_set_threads(t);
            nn_model_seed(m, 4);
            nn_dense(m, 256, NN_RELU);
            nn_dense(m, 5, NN_SOFTMAX);
            nn_compile(m, nn_adam(1e-3f), NN_LOSS_SPARSE_CATEGORICAL_CE);
            o.epochs = 2;
            o.verbose = 0;
            TT_CHECK(nn_dataset_from_arrays(&ds, NS, nn_shape1(IN), x, 1, y) == NN_OK, "dataset");
            TT_CHECK(nn_fit(m, &ds, &o) == NN_OK, "fit: %s", nn_model_error(m));
            p = nn_model_params(m, &n);
            if (t == 1) {
                p1 = (float *)malloc(n * sizeof(float));
                if (p1) memcpy(p1, p, n * sizeof(float));
                n1 = n;
            } else if (p1 && TT_EQ_INT(n, n1))
                TT_SAME_ARR("parameters after 2 epochs (164 steps, probed at steps 16-63)", p, p1, n);
            nn_dataset_free(&ds);
            nn_model_free(m);
        }
        free(p1);
        free(x);
        free(y);
    }
    {
        /* idle workers sleep: after training, 300 ms of the process asleep
         * cost (next to) no CPU time, though the pool has workers */
        pt_run r;
        struct rusage u0, u1;
        struct timespec ts;
        double cpu;
        tt_ctx("parallel: idle workers use no CPU");
        pt_train(0, 2, &r);
        pt_free(&r);
        ts.tv_sec = 0;
        ts.tv_nsec = 50000000L; /* let the spin end */
        nanosleep(&ts, NULL);
        getrusage(RUSAGE_SELF, &u0);
        ts.tv_nsec = 300000000L;
        nanosleep(&ts, NULL);
        getrusage(RUSAGE_SELF, &u1);
        cpu = (double)(u1.ru_utime.tv_sec - u0.ru_utime.tv_sec) +
              (double)(u1.ru_utime.tv_usec - u0.ru_utime.tv_usec) * 1e-6 +
              (double)(u1.ru_stime.tv_sec - u0.ru_stime.tv_sec) +
              (double)(u1.ru_stime.tv_usec - u0.ru_stime.tv_usec) * 1e-6;
        TT_CHECK(cpu < 0.03, "%.3f s of CPU while asleep for 0.3 s", cpu);
    }
    nn_set_threads(before);
}
