/* The model API: optimizer steps against hand-computed values, clipping and
 * freezing, XOR and a short Fashion-MNIST CNN run, errors on bad input, and
 * allocation (none per training step; every failing NN_MALLOC reported as
 * NN_ERR_NO_MEMORY without a crash or a leak).
 *
 * Groups: optim, train, errors, alloc.  The counting allocator is defined
 * in tests/test_main.c (NN_MALLOC / NN_FREE before NN_IMPLEMENTATION). */
#include "nn.h"
#include "tt.h"

extern size_t tt_alloc_cap; /* tests/test_main.c */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void test_optim(void);
void test_train(void);
void test_errors(void);
void test_alloc(void);

extern long tt_alloc_calls, tt_alloc_fail_at, tt_alloc_live;

/* the best SIMD backend: what AUTO picks, the last available of NN_BACKEND_LIST */
static nn_backend best_simd(void) { return tt_best_backend(); }

static int has(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

/* ======================================================================== */
/* optim                                                                    */
/* ======================================================================== */

/* PyTorch's update rules in double, one element. */
typedef struct {
    nn_opt_kind kind;
    double lr, mu, b1, b2, eps, rho, wd;
    int nesterov;
} ref_opt;

static void ref_step(const ref_opt *o, double *w, double g, double *m, double *v, long t) {
    if (o->kind == NN_OPT_SGD) {
        double gi = g + o->wd * *w;
        if (o->mu != 0.0) {
            *m = o->mu * *m + gi; /* torch: buf = d_p at step 1, the same from buf = 0 */
            gi = o->nesterov ? gi + o->mu * *m : *m;
        }
        *w -= o->lr * gi;
    } else if (o->kind == NN_OPT_ADAM || o->kind == NN_OPT_ADAMW) {
        double gi, bc1, bc2;
        if (o->kind == NN_OPT_ADAMW) *w *= 1.0 - o->lr * o->wd;
        gi = g + (o->kind == NN_OPT_ADAM ? o->wd * *w : 0.0);
        *m = o->b1 * *m + (1.0 - o->b1) * gi;
        *v = o->b2 * *v + (1.0 - o->b2) * gi * gi;
        bc1 = 1.0 - pow(o->b1, (double)t);
        bc2 = 1.0 - pow(o->b2, (double)t);
        *w -= (o->lr / bc1) * *m / (sqrt(*v) / sqrt(bc2) + o->eps);
    } else {
        double gi = g + o->wd * *w;
        *v = o->rho * *v + (1.0 - o->rho) * gi * gi;
        *w -= o->lr * gi / (sqrt(*v) + o->eps);
    }
}

static ref_opt ref_from(const nn_optimizer *o) {
    ref_opt r;
    r.kind = o->kind;
    r.lr = o->lr;
    r.mu = o->momentum;
    r.b1 = o->beta1;
    r.b2 = o->beta2;
    r.eps = o->eps;
    r.rho = o->rho;
    r.wd = o->weight_decay;
    r.nesterov = o->nesterov;
    return r;
}

/* nn_sgd_update / nn_adam_update / nn_rmsprop_update for 3 steps. */
static void update_kernels(void) {
    enum { N = 37, STEPS = 3 };
    static const struct {
        const char *name;
        nn_opt_kind kind;
        float lr, mu, wd;
        int nesterov, adamw;
    } cs[] = {
        {"sgd", NN_OPT_SGD, 0.1f, 0, 0, 0, 0},
        {"sgd weight decay", NN_OPT_SGD, 0.1f, 0, 0.05f, 0, 0},
        {"sgd momentum", NN_OPT_SGD, 0.1f, 0.9f, 0, 0, 0},
        {"sgd nesterov + weight decay", NN_OPT_SGD, 0.05f, 0.8f, 0.01f, 1, 0},
        {"adam", NN_OPT_ADAM, 0.01f, 0, 0, 0, 0},
        {"adam L2 weight decay", NN_OPT_ADAM, 0.01f, 0, 0.1f, 0, 0},
        {"adamw", NN_OPT_ADAMW, 0.01f, 0, 0.1f, 0, 1},
        {"rmsprop", NN_OPT_RMSPROP, 0.01f, 0, 0, 0, 0},
        {"rmsprop weight decay", NN_OPT_RMSPROP, 0.01f, 0, 0.05f, 0, 0},
    };
    size_t c;
    for (c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        float w[N], g[N], m[N], v[N], wf[N], mf[N], vf[N];
        double wr[N], mr[N], vr[N];
        nn_optimizer o = cs[c].kind == NN_OPT_SGD       ? nn_sgd_momentum(cs[c].lr, cs[c].mu, cs[c].nesterov)
                         : cs[c].kind == NN_OPT_RMSPROP ? nn_rmsprop(cs[c].lr)
                         : cs[c].adamw                  ? nn_adamw(cs[c].lr, cs[c].wd)
                                                        : nn_adam(cs[c].lr);
        ref_opt ro;
        nn_rng r;
        int i, t;
        o.weight_decay = cs[c].wd;
        ro = ref_from(&o);
        tt_ctx("optim[%s] %s by hand", nn_backend_name(nn_get_backend()), cs[c].name);
        nn_rng_seed(&r, 11 + c);
        tt_fill_uniform(&r, w, N, -1.5f, 1.5f);
        for (i = 0; i < N; i++) {
            wr[i] = w[i];
            m[i] = v[i] = 0.0f;
            mr[i] = vr[i] = 0.0;
        }
        for (t = 1; t <= STEPS; t++) {
            tt_fill_uniform(&r, g, N, -2.0f, 2.0f);
            g[5] = 1e-3f; /* a small gradient too */
            switch (o.kind) {
            case NN_OPT_SGD:
                nn_sgd_update(N, w, g, o.momentum != 0.0f ? m : NULL, o.lr, o.momentum, o.weight_decay, o.nesterov);
                break;
            case NN_OPT_ADAM:
            case NN_OPT_ADAMW:
                nn_adam_update(N, w, g, m, v, o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.kind == NN_OPT_ADAMW, t);
                break;
            case NN_OPT_RMSPROP: nn_rmsprop_update(N, w, g, v, o.lr, o.rho, o.eps, o.weight_decay); break;
            }
            for (i = 0; i < N; i++) ref_step(&ro, &wr[i], g[i], &mr[i], &vr[i], t);
        }
        for (i = 0; i < N; i++) {
            wf[i] = (float)wr[i];
            mf[i] = (float)mr[i];
            vf[i] = (float)vr[i];
        }
        TT_CMP_ARR("w after 3 steps vs PyTorch's formula in double", w, wf, NULL, N, 1e-6, 1e-5 * o.lr);
        if (o.kind != NN_OPT_SGD) TT_CMP_ARR("second moment v", v, vf, NULL, N, 1e-5, 1e-12);
        if (o.kind == NN_OPT_ADAM || o.kind == NN_OPT_ADAMW || o.momentum != 0.0f)
            TT_CMP_ARR("first moment / momentum buffer", m, mf, NULL, N, 1e-5, 1e-9);
    }
}

/* Tiny model whose gradients the test writes by hand before nn_step. */
static nn_model *tiny_model(nn_optimizer o, uint64_t seed) {
    nn_model *m = nn_model_new(nn_shape1(3));
    nn_model_seed(m, seed);
    nn_dense(m, 4, NN_TANH);
    nn_dense(m, 2, NN_LINEAR);
    if (nn_compile(m, o, NN_LOSS_MSE) != NN_OK) {
        TT_CHECK(0, "tiny model: %s", nn_model_error(m));
        nn_model_free(m);
        return NULL;
    }
    return m;
}

/* the (param, grad) pointers of every weight and bias, layer by layer */
static size_t collect(nn_model *m, float **p, float **g, int *layer_of, size_t cap) {
    int i, bias;
    size_t n = 0;
    for (i = 0; i < nn_model_num_layers(m); i++)
        for (bias = 0; bias <= 1; bias++) {
            size_t cnt, k;
            float *pp = bias ? nn_layer_bias(m, i, &cnt) : nn_layer_weights(m, i, &cnt);
            float *gg = bias ? nn_layer_bias_grads(m, i, NULL) : nn_layer_weight_grads(m, i, NULL);
            if (!pp) continue;
            for (k = 0; k < cnt && n < cap; k++, n++) {
                p[n] = pp + k;
                g[n] = gg + k;
                if (layer_of) layer_of[n] = i;
            }
        }
    return n;
}

/* nn_step with every optimizer: 3 steps with gradients written by hand. */
static void model_steps(void) {
    enum { CAP = 64 };
    nn_optimizer opts[6];
    const char *names[6] = {"sgd",   "sgd momentum + weight decay", "sgd nesterov", "adam + L2 weight decay",
                            "adamw", "rmsprop + weight decay"};
    int k;
    opts[0] = nn_sgd(0.1f);
    opts[1] = nn_sgd_momentum(0.1f, 0.9f, 0);
    opts[1].weight_decay = 0.01f;
    opts[2] = nn_sgd_momentum(0.05f, 0.8f, 1);
    opts[3] = nn_adam(0.01f);
    opts[3].weight_decay = 0.1f;
    opts[4] = nn_adamw(0.01f, 0.1f);
    opts[5] = nn_rmsprop(0.01f);
    opts[5].weight_decay = 0.05f;
    for (k = 0; k < 6; k++) {
        float *p[CAP], *g[CAP], got[CAP], want[CAP];
        double wr[CAP], mr[CAP], vr[CAP];
        ref_opt ro = ref_from(&opts[k]);
        nn_model *m;
        nn_rng r;
        size_t n, i;
        int t;
        tt_ctx("optim[%s] nn_step %s", nn_backend_name(nn_get_backend()), names[k]);
        m = tiny_model(opts[k], 5);
        if (!m) continue;
        n = collect(m, p, g, NULL, CAP);
        TT_CHECK(n == 4 * 3 + 4 + 4 * 2 + 2, "collected %lu parameters", (unsigned long)n);
        nn_rng_seed(&r, 77 + (unsigned)k);
        for (i = 0; i < n; i++) {
            *p[i] += 0.3f * nn_rng_normal(&r); /* non-zero biases */
            wr[i] = *p[i];
            mr[i] = vr[i] = 0.0;
        }
        for (t = 1; t <= 3; t++) {
            nn_status st;
            for (i = 0; i < n; i++) *g[i] = nn_rng_normal(&r);
            st = nn_step(m);
            TT_CHECK(st == NN_OK, "nn_step: %s", nn_model_error(m));
            for (i = 0; i < n; i++) ref_step(&ro, &wr[i], *g[i], &mr[i], &vr[i], t);
        }
        for (i = 0; i < n; i++) {
            got[i] = *p[i];
            want[i] = (float)wr[i];
        }
        TT_CMP_ARR("parameters after 3 nn_step calls vs PyTorch's formula", got, want, NULL, n, 1e-6,
                   1e-5 * opts[k].lr);
        nn_model_free(m);
    }
    /* PyTorch's defaults */
    tt_ctx("optim defaults");
    {
        nn_optimizer a = nn_adam(1e-3f), w = nn_adamw(1e-3f, 0.01f), r = nn_rmsprop(1e-2f), s = nn_sgd(0.1f);
        TT_CHECK(a.kind == NN_OPT_ADAM && a.beta1 == 0.9f && a.beta2 == 0.999f && a.eps == 1e-8f &&
                     a.weight_decay == 0.0f && a.clip_norm == 0.0f && a.lr == 1e-3f,
                 "nn_adam defaults: betas %g %g eps %g wd %g", (double)a.beta1, (double)a.beta2, (double)a.eps,
                 (double)a.weight_decay);
        TT_CHECK(w.kind == NN_OPT_ADAMW && w.weight_decay == 0.01f && w.beta1 == 0.9f && w.beta2 == 0.999f,
                 "nn_adamw defaults");
        TT_CHECK(r.kind == NN_OPT_RMSPROP && r.rho == 0.99f && r.eps == 1e-8f && r.momentum == 0.0f,
                 "nn_rmsprop defaults: rho %g eps %g", (double)r.rho, (double)r.eps);
        TT_CHECK(s.kind == NN_OPT_SGD && s.momentum == 0.0f && s.nesterov == 0 && s.weight_decay == 0.0f,
                 "nn_sgd defaults");
    }
}

static double block_norm2(nn_model *m, int layer) {
    size_t nw, nb, i;
    const float *gw = nn_layer_weight_grads(m, layer, &nw), *gb = nn_layer_bias_grads(m, layer, &nb);
    double s = 0;
    for (i = 0; i < nw; i++) s += (double)gw[i] * gw[i];
    for (i = 0; i < nb; i++) s += (double)gb[i] * gb[i];
    return s;
}

/* clip_norm rescales the global gradient norm (frozen layers excluded). */
static void clipping(void) {
    enum { CAP = 64 };
    float *p[CAP], *g[CAP], w0[CAP], got[CAP], want[CAP];
    int lay[CAP];
    size_t n, i;
    nn_model *m;
    nn_optimizer o = nn_sgd(0.1f);
    nn_rng r;
    double norm2 = 0;
    tt_ctx("optim[%s] clip_norm with gradients by hand", nn_backend_name(nn_get_backend()));
    o.clip_norm = 1.0f;
    m = tiny_model(o, 3);
    if (!m) return;
    n = collect(m, p, g, lay, CAP);
    nn_rng_seed(&r, 5);
    /* norm 5 > 1: scaled by 1/5 */
    for (i = 0; i < n; i++) *g[i] = nn_rng_normal(&r);
    for (i = 0; i < n; i++) norm2 += (double)*g[i] * *g[i];
    for (i = 0; i < n; i++) *g[i] = (float)(*g[i] * 5.0 / sqrt(norm2));
    for (i = 0; i < n; i++) {
        w0[i] = *p[i];
        want[i] = (float)(w0[i] - 0.1 * (double)*g[i] / 5.0);
    }
    TT_CHECK(nn_step(m) == NN_OK, "nn_step: %s", nn_model_error(m));
    for (i = 0; i < n; i++) got[i] = *p[i];
    TT_CMP_ARR("global norm 5, clip_norm 1: the step is lr * g / 5", got, want, NULL, n, 1e-6, 1e-7);
    /* norm 0.5 < 1: unchanged */
    for (i = 0; i < n; i++) *g[i] = (float)(*g[i] * 0.1);
    for (i = 0; i < n; i++) {
        w0[i] = *p[i];
        want[i] = (float)(w0[i] - 0.1 * (double)*g[i]);
    }
    TT_CHECK(nn_step(m) == NN_OK, "nn_step: %s", nn_model_error(m));
    for (i = 0; i < n; i++) got[i] = *p[i];
    TT_CMP_ARR("global norm 0.5, clip_norm 1: the step is not scaled", got, want, NULL, n, 1e-6, 1e-7);
    /* layer 0 frozen: its (huge) gradient buffer neither moves it nor counts
     * in the norm; layer 1 has norm 2 -> scaled by 1/2 */
    TT_CHECK(nn_layer_freeze(m, 0, 1) == NN_OK, "nn_layer_freeze");
    norm2 = 0;
    for (i = 0; i < n; i++)
        if (lay[i] == 1) norm2 += (double)*g[i] * *g[i];
    for (i = 0; i < n; i++) *g[i] = lay[i] == 0 ? 1000.0f : (float)(*g[i] * 2.0 / sqrt(norm2));
    for (i = 0; i < n; i++) {
        w0[i] = *p[i];
        want[i] = lay[i] == 0 ? w0[i] : (float)(w0[i] - 0.1 * (double)*g[i] / 2.0);
    }
    TT_CHECK(nn_step(m) == NN_OK, "nn_step: %s", nn_model_error(m));
    for (i = 0; i < n; i++) got[i] = *p[i];
    TT_CMP_ARR("frozen layer 0 is excluded from the norm and does not move", got, want, NULL, n, 1e-6, 1e-7);
    nn_model_free(m);

    /* through nn_train_on_batch: the same model with and without clipping */
    {
        static const float x[4 * 3] = {0.5f, -1, 0.25f, 1, 0.5f, -0.5f, -1, -0.75f, 0.3f, 0.2f, 0.9f, -0.4f};
        static const float y[4 * 2] = {3, -2, 1, 4, -3, 2, 2, 2};
        nn_model *a, *b;
        float L;
        double n2;
        tt_ctx("optim[%s] clip_norm in nn_train_on_batch", nn_backend_name(nn_get_backend()));
        a = tiny_model(nn_sgd(0.1f), 9);
        o = nn_sgd(0.1f);
        o.clip_norm = 0.05f;
        b = tiny_model(o, 9);
        if (!a || !b) {
            nn_model_free(a);
            nn_model_free(b);
            return;
        }
        TT_CHECK(nn_forward(a, x, 4, 1) == NN_OK && nn_backward(a, y, &L, NULL) == NN_OK, "forward/backward");
        n2 = block_norm2(a, 0) + block_norm2(a, 1);
        TT_CHECK(sqrt(n2) > 0.5, "gradient norm %g should exceed the clip norm", sqrt(n2));
        TT_CHECK(nn_train_on_batch(b, x, y, 4, &L, NULL) == NN_OK, "nn_train_on_batch: %s", nn_model_error(b));
        {
            size_t np, k;
            float *pa = nn_model_params(a, &np), *ga = nn_model_grads(a, NULL), *pb = nn_model_params(b, NULL);
            float *want2 = (float *)malloc(sizeof(float) * (np + 1));
            for (k = 0; k < np; k++) want2[k] = (float)(pa[k] - 0.1 * (double)ga[k] * 0.05 / sqrt(n2));
            TT_CMP_ARR("w - lr * g * clip / |g|", pb, want2, NULL, np, 1e-6, 1e-7);
            free(want2);
        }
        nn_model_free(a);
        nn_model_free(b);
    }
}

/* Frozen layers keep their weights bit for bit through training; the
 * layers before a frozen one still learn (its dx is still computed). */
static void freezing(void) {
    static const float x[6 * 3] = {0.5f, -1,   0.25f, 1,     0.5f,  -0.5f, -1,   -0.75f, 0.3f,
                                   0.2f, 0.9f, -0.4f, -0.1f, 0.35f, 0.8f,  0.6f, -0.2f,  -0.9f};
    static const float y[6 * 2] = {1, -1, 0.5f, 0.2f, -0.3f, 0.8f, 0.1f, 0.1f, -1, 0.4f, 0.7f, -0.6f};
    nn_model *m;
    float before[3][64], bb[3][8];
    size_t nw[3], nb[3];
    int i, s;
    nn_dataset ds;
    nn_fit_opts fo;
    tt_ctx("optim[%s] freezing", nn_backend_name(nn_get_backend()));
    m = nn_model_new(nn_shape1(3));
    nn_dense(m, 4, NN_TANH);
    nn_dense(m, 3, NN_TANH);
    nn_dense(m, 2, NN_LINEAR);
    if (!TT_CHECK(nn_compile(m, nn_adam(0.05f), NN_LOSS_MSE) == NN_OK, "compile: %s", nn_model_error(m))) {
        nn_model_free(m);
        return;
    }
    TT_CHECK(nn_layer_freeze(m, 1, 1) == NN_OK, "nn_layer_freeze(1)");
    for (i = 0; i < 3; i++) {
        const float *w = nn_layer_weights(m, i, &nw[i]), *b = nn_layer_bias(m, i, &nb[i]);
        memcpy(before[i], w, nw[i] * sizeof(float));
        memcpy(bb[i], b, nb[i] * sizeof(float));
    }
    for (s = 0; s < 5; s++) TT_CHECK(nn_train_on_batch(m, x, y, 6, NULL, NULL) == NN_OK, "nn_train_on_batch");
    TT_CHECK(memcmp(before[1], nn_layer_weights(m, 1, NULL), nw[1] * sizeof(float)) == 0 &&
                 memcmp(bb[1], nn_layer_bias(m, 1, NULL), nb[1] * sizeof(float)) == 0,
             "frozen layer 1 moved during nn_train_on_batch");
    {
        size_t k;
        const float *g = nn_layer_weight_grads(m, 1, NULL);
        int nz = 0;
        for (k = 0; k < nw[1]; k++) nz += g[k] != 0.0f;
        TT_CHECK(nz == 0, "frozen layer 1 has %d non-zero weight gradients", nz);
    }
    TT_CHECK(memcmp(before[0], nn_layer_weights(m, 0, NULL), nw[0] * sizeof(float)) != 0,
             "layer 0 (before the frozen layer) did not learn");
    TT_CHECK(memcmp(before[2], nn_layer_weights(m, 2, NULL), nw[2] * sizeof(float)) != 0, "layer 2 did not learn");
    /* nn_fit too */
    if (nn_dataset_from_arrays(&ds, 6, nn_shape1(3), x, 2, y) == NN_OK) {
        fo = nn_fit_defaults();
        fo.epochs = 3;
        fo.batch = 4;
        fo.verbose = 0;
        TT_CHECK(nn_fit(m, &ds, &fo) == NN_OK, "nn_fit: %s", nn_model_error(m));
        TT_CHECK(memcmp(before[1], nn_layer_weights(m, 1, NULL), nw[1] * sizeof(float)) == 0 &&
                     memcmp(bb[1], nn_layer_bias(m, 1, NULL), nb[1] * sizeof(float)) == 0,
                 "frozen layer 1 moved during nn_fit");
        /* unfreeze: it learns again */
        TT_CHECK(nn_layer_freeze(m, 1, 0) == NN_OK, "unfreeze");
        TT_CHECK(nn_fit(m, &ds, &fo) == NN_OK, "nn_fit: %s", nn_model_error(m));
        TT_CHECK(memcmp(before[1], nn_layer_weights(m, 1, NULL), nw[1] * sizeof(float)) != 0,
                 "unfrozen layer 1 did not learn");
        nn_dataset_free(&ds);
    } else
        TT_CHECK(0, "nn_dataset_from_arrays");
    nn_model_free(m);
}

/* nn.h may set FTZ/DAZ around its updates (TRAPS.md): the caller's
 * floating-point mode must come back unchanged, subnormals included. */
static int subnormals_work(void) {
    volatile float tiny = 1.17549435e-38f, q = 4.0f, r;
    r = tiny / q; /* 2.9e-39, subnormal: 0 under FTZ */
    return r != 0.0f && r * q == tiny;
}
static void fp_mode_restored(void) {
    static const float x[2 * 3] = {0.5f, -1, 0.25f, 1, 0.5f, -0.5f}, y[2 * 2] = {1, 0, 0, 1};
    float w[5] = {1, 2, 3, 4, 5}, g[5] = {1e-3f, 1, 1, 1, 1}, m[5] = {0}, v[5] = {0};
    nn_model *mo;
    int k;
    tt_ctx("optim[%s] floating-point mode restored", nn_backend_name(nn_get_backend()));
    if (!TT_CHECK(subnormals_work(), "subnormals do not work before any nn.h call (FTZ set by the build?)")) return;
    nn_adam_update(5, w, g, m, v, 0.01f, 0.9f, 0.999f, 1e-8f, 0, 0, 1);
    TT_CHECK(subnormals_work(), "subnormals flushed after nn_adam_update");
    nn_sgd_update(5, w, g, m, 0.01f, 0.9f, 0, 0);
    nn_rmsprop_update(5, w, g, v, 0.01f, 0.99f, 1e-8f, 0);
    TT_CHECK(subnormals_work(), "subnormals flushed after nn_sgd_update / nn_rmsprop_update");
    for (k = 0; k < 4; k++) {
        nn_optimizer o = k == 0   ? nn_sgd(0.1f)
                         : k == 1 ? nn_adam(0.01f)
                         : k == 2 ? nn_adamw(0.01f, 0.1f)
                                  : nn_rmsprop(0.01f);
        mo = tiny_model(o, 1);
        if (!mo) continue;
        nn_train_on_batch(mo, x, y, 2, NULL, NULL);
        TT_CHECK(subnormals_work(), "subnormals flushed after nn_train_on_batch with optimizer %d", k);
        nn_model_free(mo);
    }
}

void test_optim(void) {
    nn_backend bk[2];
    int bi;
    bk[0] = NN_BACKEND_SCALAR;
    bk[1] = best_simd();
    for (bi = 0; bi < 2; bi++) {
        if (bi == 1 && bk[1] == NN_BACKEND_SCALAR) {
            tt_skip("optim: no SIMD backend available in this build / on this CPU");
            break;
        }
        tt_set_backend(bk[bi]);
        update_kernels();
        model_steps();
        clipping();
        freezing();
        fp_mode_restored();
    }
    (void)nn_set_backend(NN_BACKEND_AUTO);
}

/* ======================================================================== */
/* train                                                                    */
/* ======================================================================== */

static const float xor_x[8] = {0, 0, 0, 1, 1, 0, 1, 1};
static const float xor_y[4] = {0, 1, 1, 0};

/* 2-10-1, Adam 0.05, batch 4, 500 epochs; returns the model (or NULL) */
static nn_model *xor_train(uint64_t seed, nn_status *st) {
    nn_model *m = nn_model_new(nn_shape1(2));
    nn_dataset ds;
    nn_fit_opts fo;
    nn_model_seed(m, seed);
    nn_dense(m, 10, NN_RELU);
    nn_dense(m, 1, NN_SIGMOID);
    *st = nn_compile(m, nn_adam(0.05f), NN_LOSS_BINARY_CE);
    if (*st != NN_OK) return m;
    *st = nn_dataset_from_arrays(&ds, 4, nn_shape1(2), xor_x, 1, xor_y);
    if (*st != NN_OK) return m;
    fo = nn_fit_defaults();
    fo.epochs = 500;
    fo.batch = 4;
    fo.verbose = 0;
    *st = nn_fit(m, &ds, &fo);
    nn_dataset_free(&ds);
    return m;
}

static void xor_learns(void) {
    static const uint64_t seeds[] = {1, 42};
    size_t i;
    for (i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        nn_status st;
        nn_model *m, *m2;
        float out[4];
        int k, right = 0;
        tt_ctx("train[%s] XOR seed %lu", nn_backend_name(nn_get_backend()), (unsigned long)seeds[i]);
        m = xor_train(seeds[i], &st);
        if (TT_CHECK(st == NN_OK, "fit: %s (%s)", nn_strerror(st), nn_model_error(m))) {
            TT_CHECK(nn_predict(m, xor_x, 4, out) == NN_OK, "predict");
            for (k = 0; k < 4; k++) right += (out[k] > 0.5f) == (xor_y[k] > 0.5f);
            TT_CHECK(right == 4, "XOR: %d of 4 right (p = %.3f %.3f %.3f %.3f)", right, (double)out[0], (double)out[1],
                     (double)out[2], (double)out[3]);
        }
        /* deterministic: the same seed gives the same weights, bit for bit */
        m2 = xor_train(seeds[i], &st);
        {
            size_t n1, n2;
            float *p1 = nn_model_params(m, &n1), *p2 = nn_model_params(m2, &n2);
            TT_CHECK(st == NN_OK && n1 == n2 && p1 && p2 && memcmp(p1, p2, n1 * sizeof(float)) == 0,
                     "two runs with seed %lu give different weights", (unsigned long)seeds[i]);
        }
        nn_model_free(m2);
        if (i == 0) { /* another seed: other weights */
            m2 = xor_train(seeds[i] + 1000, &st);
            TT_CHECK(memcmp(nn_model_params(m, NULL), nn_model_params(m2, NULL), 10 * sizeof(float)) != 0,
                     "seeds %lu and %lu give the same weights", (unsigned long)seeds[i],
                     (unsigned long)seeds[i] + 1000);
            nn_model_free(m2);
        }
        nn_model_free(m);
    }
}

static void fashion_cnn(void) {
#ifdef NN_TEST_SMALL
    tt_skip("train: Fashion-MNIST CNN (skipped under NN_TEST_SMALL)");
#else
    const char *img = "data/fashion-mnist/t10k-images-idx3-ubyte", *lab = "data/fashion-mnist/t10k-labels-idx1-ubyte";
    nn_dataset full, sub;
    nn_model *m;
    nn_fit_opts fo;
    nn_status st;
    float l0 = NAN, l1 = NAN, a0 = NAN, a1 = NAN;
    tt_ctx("train[%s] Fashion-MNIST CNN", nn_backend_name(nn_get_backend()));
    {
        FILE *fi = fopen(img, "rb"), *fl = fopen(lab, "rb");
        if (fi) fclose(fi);
        if (fl) fclose(fl);
        if (!fi || !fl) {
            tt_skip("train: Fashion-MNIST CNN: %s missing (run `make data`)", fi ? lab : img);
            return;
        }
    }
    st = nn_dataset_load_idx(&full, img, lab);
    if (!TT_CHECK(st == NN_OK, "nn_dataset_load_idx: %s", nn_strerror(st))) return;
    TT_CHECK(full.n == 10000 && full.shape.ndim == 3 && full.shape.d[0] == 28 && full.shape.d[1] == 28 &&
                 full.shape.d[2] == 1 && full.num_classes == 10,
             "t10k: n=%d shape (%d,%d,%d) classes %d", full.n, full.shape.d[0], full.shape.d[1], full.shape.d[2],
             full.num_classes);
    sub = full;
    sub.owns = 0;
    sub.n = 512;
    m = nn_model_new(nn_shape3(28, 28, 1));
    nn_conv2d(m, 8, 3, NN_RELU);
    nn_maxpool2d(m, 2);
    nn_flatten(m);
    nn_dense(m, 10, NN_SOFTMAX);
    st = nn_compile(m, nn_adam(1e-3f), NN_LOSS_SPARSE_CATEGORICAL_CE);
    if (TT_CHECK(st == NN_OK, "compile: %s", nn_model_error(m))) {
        TT_CHECK(nn_evaluate(m, &sub, 64, &l0, &a0) == NN_OK, "evaluate: %s", nn_model_error(m));
        fo = nn_fit_defaults();
        fo.epochs = 3;
        fo.batch = 32;
        fo.verbose = 0;
        st = nn_fit(m, &sub, &fo);
        TT_CHECK(st == NN_OK && fo.epochs_run == 3, "fit: %s (%s), %d epochs", nn_strerror(st), nn_model_error(m),
                 fo.epochs_run);
        TT_CHECK(nn_evaluate(m, &sub, 64, &l1, &a1) == NN_OK, "evaluate: %s", nn_model_error(m));
        TT_CHECK(l1 < 0.8f * l0 && a1 > a0, "loss %.4f -> %.4f, accuracy %.3f -> %.3f after 3 epochs on 512 images",
                 (double)l0, (double)l1, (double)a0, (double)a1);
        tt_info("Fashion-MNIST CNN, 512 images, 3 epochs [%s]: loss %.3f -> %.3f, accuracy %.3f -> %.3f",
                nn_backend_name(nn_get_backend()), (double)l0, (double)l1, (double)a0, (double)a1);
    }
    nn_model_free(m);
    nn_dataset_free(&full);
#endif
}

/* ---- fit options: schedules, early stopping, callbacks, validation ---- */
typedef struct {
    int epochs, batches;
    float lr[16], val_loss[16], loss[16];
    int stop_at_batch;
} fit_rec;
static int rec_epoch(const nn_fit_event *ev, void *user) {
    fit_rec *f = (fit_rec *)user;
    if (f->epochs < 16) {
        f->lr[f->epochs] = ev->lr;
        f->val_loss[f->epochs] = ev->val_loss;
        f->loss[f->epochs] = ev->loss;
    }
    f->epochs++;
    return 0;
}
static int count_batch(const nn_fit_event *ev, void *user) {
    fit_rec *f = (fit_rec *)user;
    (void)ev;
    f->batches++;
    return f->stop_at_batch && f->batches >= f->stop_at_batch;
}

static void fit_options(void) {
    enum { N = 24 };
    float x[N * 2], y[N], yv[N];
    nn_dataset ds, dv;
    nn_rng r;
    int i, e;
    nn_rng_seed(&r, 17);
    tt_fill_uniform(&r, x, N * 2, -1, 1);
    for (i = 0; i < N; i++) {
        y[i] = x[2 * i] + 0.5f * x[2 * i + 1];
        yv[i] = -y[i]; /* the validation set gets worse while training improves */
    }
    if (nn_dataset_from_arrays(&ds, N, nn_shape1(2), x, 1, y) != NN_OK ||
        nn_dataset_from_arrays(&dv, N, nn_shape1(2), x, 1, yv) != NN_OK) {
        TT_CHECK(0, "datasets");
        return;
    }
    /* learning-rate schedules, seen by on_epoch */
    for (i = 0; i < 2; i++) {
        nn_model *m = nn_model_new(nn_shape1(2));
        nn_fit_opts fo = nn_fit_defaults();
        fit_rec f;
        float want[6];
        tt_ctx("train: fit with the %s schedule", i ? "cosine" : "step");
        memset(&f, 0, sizeof f);
        nn_dense(m, 1, NN_LINEAR);
        nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE);
        fo.epochs = 6;
        fo.batch = 8;
        fo.verbose = 0;
        fo.schedule = i ? NN_SCHEDULE_COSINE : NN_SCHEDULE_STEP;
        fo.step_size = 2;
        fo.gamma = 0.5f;
        fo.min_lr = 0.01f;
        fo.on_epoch = rec_epoch;
        fo.user = &f;
        TT_CHECK(nn_fit(m, &ds, &fo) == NN_OK && f.epochs == 6 && fo.epochs_run == 6, "fit: %s, %d epochs",
                 nn_model_error(m), f.epochs);
        for (e = 0; e < 6; e++)
            want[e] = i ? (float)(0.01 + 0.5 * (0.1 - 0.01) * (1.0 + cos(3.14159265358979 * e / 6.0)))
                        : (float)(0.1 * pow(0.5, (double)(e / 2)));
        TT_CMP_ARR("lr per epoch", f.lr, want, NULL, 6, 1e-5, 0);
        nn_model_free(m);
    }
    /* early stopping: the validation loss is best after epoch 1 */
    for (i = 0; i < 2; i++) {
        nn_model *m = nn_model_new(nn_shape1(2));
        nn_fit_opts fo = nn_fit_defaults();
        fit_rec f;
        float vl = NAN;
        tt_ctx("train: early stopping, patience 2, restore_best %d", !i);
        memset(&f, 0, sizeof f);
        nn_dense(m, 1, NN_LINEAR);
        nn_compile(m, nn_sgd(0.2f), NN_LOSS_MSE);
        memset(nn_layer_weights(m, 0, NULL), 0, 2 * sizeof(float)); /* from 0, every step moves away from -y */
        fo.epochs = 10;
        fo.batch = 4;
        fo.verbose = 0;
        fo.val = &dv;
        fo.patience = 2;
        fo.restore_best = !i;
        fo.on_epoch = rec_epoch;
        fo.user = &f;
        TT_CHECK(nn_fit(m, &ds, &fo) == NN_OK, "fit: %s", nn_model_error(m));
        TT_CHECK(f.epochs >= 3 && f.val_loss[1] > f.val_loss[0] && f.val_loss[2] > f.val_loss[0],
                 "validation loss should get worse: %g %g %g", (double)f.val_loss[0], (double)f.val_loss[1],
                 (double)f.val_loss[2]);
        TT_CHECK(fo.epochs_run == 3 && f.epochs == 3, "stopped after %d epochs (%d callbacks), expected 3",
                 fo.epochs_run, f.epochs);
        TT_CHECK(nn_evaluate(m, &dv, 8, &vl, NULL) == NN_OK, "evaluate");
        if (f.epochs >= 3)
            TT_CLOSE(vl, i ? f.val_loss[f.epochs - 1] : f.val_loss[0], 1e-5);
        nn_model_free(m);
    }
    /* on_batch returning non-zero stops training; val_split holds out the end */
    {
        nn_model *m = nn_model_new(nn_shape1(2));
        nn_fit_opts fo = nn_fit_defaults();
        fit_rec f;
        tt_ctx("train: on_batch stops, val_split");
        memset(&f, 0, sizeof f);
        nn_dense(m, 1, NN_LINEAR);
        nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE);
        fo.epochs = 5;
        fo.batch = 4;
        fo.verbose = 0;
        fo.on_batch = count_batch;
        fo.on_epoch = rec_epoch;
        fo.user = &f;
        f.stop_at_batch = 7; /* 18 training samples = 5 batches per epoch: stops in epoch 2 */
        fo.val_split = 0.25f;
        TT_CHECK(nn_fit(m, &ds, &fo) == NN_OK, "fit: %s", nn_model_error(m));
        TT_CHECK(f.batches == 7, "on_batch called %d times after asking to stop at 7", f.batches);
        TT_CHECK(f.epochs >= 1 && f.val_loss[0] == f.val_loss[0], "epoch 1 has a validation loss (val_split)");
        TT_CHECK(fo.epochs_run <= 2, "epochs_run %d after stopping in epoch 2", fo.epochs_run);
        nn_model_free(m);
    }
    /* nn_dataset_split: the last fraction, as views */
    {
        nn_dataset a, b;
        tt_ctx("train: nn_dataset_split");
        TT_CHECK(nn_dataset_split(&ds, 0.25f, &a, &b) == NN_OK && a.n == 18 && b.n == 6 && a.x == ds.x &&
                     b.x == ds.x + 18 * 2 && b.y == ds.y + 18 && !a.owns && !b.owns,
                 "split 24 by 0.25: %d + %d", a.n, b.n);
        TT_CHECK(nn_dataset_split(&ds, 0.0f, &a, &b) == NN_ERR_INVALID_ARGUMENT &&
                     nn_dataset_split(&ds, 1.0f, &a, &b) == NN_ERR_INVALID_ARGUMENT &&
                     nn_dataset_split(&ds, 0.01f, &a, &b) == NN_ERR_INVALID_ARGUMENT,
                 "split fractions 0, 1 and one leaving no sample");
    }
    nn_dataset_free(&ds);
    nn_dataset_free(&dv);
}

/* predict / evaluate do not depend on how samples are batched */
/* A dense layer computes y = x W^T (rows, ragged ones too) or, for at least
 * a micro-kernel's width of rows and no more than its units, y^T = W x^T
 * transposed back: the same sums in the same order when K fits one slice,
 * so a prediction is the same bits at batch 1 and in a batch of 40 (and a
 * sequence's steps alike) */
static void dense_orientations(void) {
    enum { N = 40, IN = 50, T = 3, F = 20 };
    static float x[N * IN], o1[N * 70], o2[N * 70], xs[N * T * F], s1[N * T * 45], s2[N * T * 45];
    nn_model *m, *q;
    nn_rng r;
    int i;
    tt_ctx("train[%s] dense: batch 1 == batch 40, bit for bit", nn_backend_name(nn_get_backend()));
    nn_rng_seed(&r, 17);
    tt_fill_uniform(&r, x, N * IN, -1, 1);
    tt_fill_uniform(&r, xs, N * T * F, -1, 1);
    m = nn_model_new(nn_shape1(IN));
    nn_dense(m, 70, NN_RELU);    /* 40 rows, 70 units: W x^T on AVX-512 / AVX2 / NEON / wasm */
    nn_dense(m, 37, NN_TANH);    /* ragged units */
    nn_use_bias(m, 0);
    nn_dense(m, 3, NN_SOFTMAX);  /* fewer units than rows: x W^T */
    q = nn_model_new(nn_shape2(T, F));
    nn_dense(q, 45, NN_SIGMOID); /* a sequence: 120 rows, 45 units */
    if (nn_compile(m, nn_sgd(0.1f), NN_LOSS_SPARSE_CATEGORICAL_CE) != NN_OK ||
        nn_compile(q, nn_sgd(0.1f), NN_LOSS_MSE) != NN_OK) {
        TT_CHECK(0, "setup: %s / %s", nn_model_error(m), nn_model_error(q));
        nn_model_free(m);
        nn_model_free(q);
        return;
    }
    { /* a training step at the batch sizes plans the arenas for them (a model
       * predicts in chunks of the batch it was planned for) */
        float ym[N], ys[13 * T * 45];
        for (i = 0; i < N; i++) ym[i] = (float)(i % 3);
        for (i = 0; i < 13 * T * 45; i++) ys[i] = 0.5f;
        TT_CHECK(nn_train_on_batch(m, x, ym, N, NULL, NULL) == NN_OK &&
                     nn_train_on_batch(q, xs, ys, 13, NULL, NULL) == NN_OK,
                 "train: %s %s", nn_model_error(m), nn_model_error(q));
    }
    TT_CHECK(nn_predict(m, x, N, o1) == NN_OK && nn_predict(q, xs, 13, s1) == NN_OK, "predict in a batch");
    for (i = 0; i < N; i++) TT_CHECK(nn_predict(m, x + i * IN, 1, o2 + i * 3) == NN_OK, "predict 1");
    for (i = 0; i < 13; i++) TT_CHECK(nn_predict(q, xs + i * T * F, 1, s2 + i * T * 45) == NN_OK, "predict 1");
    TT_SAME_ARR("dense: 40 samples at once == one at a time", o2, o1, N * 3);
    TT_SAME_ARR("dense on a sequence: 13 samples at once == one at a time", s2, s1, 13 * T * 45);
    nn_model_free(m);
    nn_model_free(q);
}

static void batch_independence(void) {
    enum { N = 37 };
    float x[N * 36], y[N], o1[N * 3], o2[N * 3], l1 = NAN, l2 = NAN, a1 = NAN, a2 = NAN;
    nn_model *m;
    nn_dataset ds;
    nn_rng r;
    int i;
    tt_ctx("train[%s] batch independence of predict / evaluate", nn_backend_name(nn_get_backend()));
    nn_rng_seed(&r, 5);
    tt_fill_uniform(&r, x, N * 36, 0, 1);
    for (i = 0; i < N; i++) y[i] = (float)(i % 3);
    m = nn_model_new(nn_shape3(6, 6, 1));
    nn_conv2d(m, 3, 3, NN_RELU);
    nn_batchnorm(m);
    nn_maxpool2d(m, 2);
    nn_flatten(m);
    nn_dropout(m, 0.5f);
    nn_dense(m, 3, NN_SOFTMAX);
    if (nn_compile(m, nn_adam(0.01f), NN_LOSS_SPARSE_CATEGORICAL_CE) != NN_OK ||
        nn_dataset_from_arrays(&ds, N, nn_shape3(6, 6, 1), x, 1, y) != NN_OK) {
        TT_CHECK(0, "setup: %s", nn_model_error(m));
        nn_model_free(m);
        return;
    }
    for (i = 0; i < 3; i++) nn_train_on_batch(m, x, y, 8, NULL, NULL); /* arena for 8, BN stats moved */
    TT_CHECK(nn_predict(m, x, N, o1) == NN_OK, "predict %d", N);
    for (i = 0; i < N; i++) TT_CHECK(nn_predict(m, x + i * 36, 1, o2 + i * 3) == NN_OK, "predict 1");
    TT_CMP_ARR("nn_predict of 37 samples == one sample at a time", o1, o2, NULL, N * 3, 1e-5, 1e-7);
    TT_CHECK(nn_predict_dataset(m, &ds, 5, o2) == NN_OK, "predict_dataset");
    TT_CMP_ARR("nn_predict_dataset (batch 5) == nn_predict", o2, o1, NULL, N * 3, 1e-5, 1e-7);
    TT_CHECK(nn_evaluate(m, &ds, 37, &l1, &a1) == NN_OK && nn_evaluate(m, &ds, 4, &l2, &a2) == NN_OK, "evaluate");
    TT_CLOSE(l2, l1, 1e-5);
    TT_CHECK(a1 == a2, "accuracy %g (batch 37) vs %g (batch 4)", (double)a1, (double)a2);
    {
        double ref = 0;
        int ok = 0, k, am;
        for (i = 0; i < N; i++) {
            ref -= log(o1[i * 3 + (int)y[i]]);
            for (am = 0, k = 1; k < 3; k++)
                if (o1[i * 3 + k] > o1[i * 3 + am]) am = k;
            ok += am == (int)y[i];
        }
        TT_CLOSE(l1, ref / N, 1e-4);
        TT_CLOSE(a1, (double)ok / N, 1e-6);
    }
    nn_dataset_free(&ds);
    nn_model_free(m);
}

/* ---- normalization: nn_normalization_adapt ------------------------------- */

/* The outputs of layer `layer` (a normalization with od floats per sample,
 * C features: the last dimension) on every sample of ds: per feature, mean
 * 0 and biased variance 1 within 1e-4 -- except features whose input was
 * constant (flat[c], may be NULL), which must come out exactly 0.  One
 * check. */
static void norm_effect(nn_model *m, int layer, const nn_dataset *ds, size_t C, size_t od, const int *flat,
                        const char *what) {
    size_t ind = ds->x_dim, rows, r, c, bad = 0, worst_c = 0;
    float *x = (float *)malloc(sizeof(float) * ds->n * ind), *y = (float *)malloc(sizeof(float) * ds->n * od);
    double worst = 0, wm = 0, wv = 0;
    nn_status st;
    int i;
    for (i = 0; i < ds->n; i++) nn_dataset_get_x(ds, i, x + (size_t)i * ind);
    st = nn_predict_layers(m, 0, layer + 1, x, ds->n, y);
    if (!TT_CHECK(st == NN_OK, "%s: nn_predict_layers(0, %d): %s (%s)", what, layer + 1, nn_strerror(st),
                  nn_model_error(m))) {
        free(x);
        free(y);
        return;
    }
    rows = (size_t)ds->n * (od / C);
    for (c = 0; c < C; c++) {
        double s = 0, s2 = 0, mu, var, e;
        for (r = 0; r < rows; r++) s += y[r * C + c];
        mu = s / (double)rows;
        for (r = 0; r < rows; r++) s2 += (y[r * C + c] - mu) * (y[r * C + c] - mu);
        var = s2 / (double)rows;
        if (flat && flat[c]) e = fabs(mu) + var; /* exactly 0 expected */
        else e = fabs(mu) > fabs(var - 1.0) ? fabs(mu) : fabs(var - 1.0);
        if (!(e <= (flat && flat[c] ? 0.0 : 1e-4))) bad++;
        if (!(e <= worst)) worst = e, worst_c = c, wm = mu, wv = var;
    }
    TT_CHECK(bad == 0,
             "%s: %lu of %lu features not normalized; worst feature %lu: mean %.3g, variance %.9g (flat: %d)", what,
             (unsigned long)bad, (unsigned long)C, (unsigned long)worst_c, wm, wv,
             flat ? flat[worst_c] : 0);
    free(x);
    free(y);
}

/* n samples of shape sh: feature f (the last dimension) is
 * off[f % 6] + sc[f % 6] * N(0,1) */
static int norm_data(nn_dataset *ds, int n, nn_shape sh, unsigned seed) {
    static const float off[6] = {-3.0f, 0.0f, 1.5f, 2.5f, 0.2f, -1.0f}, sc[6] = {0.5f, 1.0f, 2.0f, 3.0f, 0.7f, 1.3f};
    size_t xd = (size_t)sh.d[0] * sh.d[1] * sh.d[2], C = (size_t)sh.d[sh.ndim - 1], i;
    float *x = (float *)malloc(sizeof(float) * n * xd), *y = (float *)malloc(sizeof(float) * n);
    nn_rng r;
    nn_status st;
    nn_rng_seed(&r, seed);
    for (i = 0; i < (size_t)n * xd; i++) x[i] = off[(i % C) % 6] + sc[(i % C) % 6] * nn_rng_normal(&r);
    for (i = 0; i < (size_t)n; i++) y[i] = 0.0f;
    st = nn_dataset_from_arrays(ds, n, sh, x, 1, y);
    free(x);
    free(y);
    return TT_CHECK(st == NN_OK, "nn_dataset_from_arrays: %s", nn_strerror(st));
}

static nn_model *norm_model(nn_shape in, int variant) {
    nn_model *m = nn_model_new(in);
    nn_status st;
    nn_model_seed(m, 17);
    switch (variant) {
    case 0: /* normalization first (layer 0) */
        nn_normalization(m);
        if (in.ndim == 3) nn_flatten(m);
        nn_dense(m, 2, NN_LINEAR);
        break;
    case 1: /* after a dense layer (layer 1) */
        nn_dense(m, 4, NN_TANH);
        nn_normalization(m);
        nn_dense(m, 2, NN_LINEAR);
        break;
    case 2: /* after dense, batch norm and dropout (layer 3): they run in inference mode */
        nn_dense(m, 5, NN_LINEAR);
        nn_batchnorm(m);
        nn_dropout(m, 0.5f);
        nn_normalization(m);
        nn_dense(m, 2, NN_LINEAR);
        break;
    default: /* after a conv (layer 1), per channel over the pixels */
        nn_conv2d_ex(m, 3, 3, 3, 1, 1, NN_LINEAR);
        nn_normalization(m);
        nn_flatten(m);
        nn_dense(m, 2, NN_LINEAR);
        break;
    }
    st = nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE);
    TT_CHECK(st == NN_OK, "norm model %d: %s (%s)", variant, nn_strerror(st), nn_model_error(m));
    return m;
}

static int same_floats(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

static void normalization_adapt(void) {
    static const struct {
        const char *what;
        int ndim, d0, d1, d2, variant, layer, n;
        int C, od; /* the normalization's features and floats per sample */
    } cs[] = {
        {"layer 0, 6 features, 300 samples (two batches of adapt)", 1, 6, 1, 1, 0, 0, 300, 6, 6},
        {"layer 0, 7 features, 1 sample", 1, 7, 1, 1, 0, 0, 1, 7, 7},
        {"layer 0, sequence (5 steps, 3 features)", 2, 5, 3, 1, 0, 0, 40, 3, 15},
        {"layer 0, image (4,3,3): per channel", 3, 4, 3, 3, 0, 0, 30, 3, 36},
        {"layer 1, after dense", 1, 5, 1, 1, 1, 1, 60, 4, 4},
        {"layer 3, after dense, batchnorm, dropout", 1, 5, 1, 1, 2, 3, 50, 5, 5},
        {"layer 1, after conv (5,4,2)", 3, 5, 4, 2, 3, 1, 20, 3, 60},
    };
    size_t k;
    for (k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        nn_shape in = cs[k].ndim == 1 ? nn_shape1(cs[k].d0)
                      : cs[k].ndim == 2 ? nn_shape2(cs[k].d0, cs[k].d1)
                                        : nn_shape3(cs[k].d0, cs[k].d1, cs[k].d2);
        nn_model *m = norm_model(in, cs[k].variant);
        nn_dataset ds, d2;
        size_t np, nx, i, C = (size_t)cs[k].C, od = (size_t)cs[k].od;
        float *p0, *o1 = NULL, *o2 = NULL, *x = NULL;
        nn_status st;
        int ok = 1;
        tt_ctx("train[%s] normalization adapt, %s", nn_backend_name(nn_get_backend()), cs[k].what);
        if (nn_model_status(m) != NN_OK || !norm_data(&ds, cs[k].n, in, 300 + (unsigned)k)) {
            nn_model_free(m);
            continue;
        }
        nx = (size_t)ds.n * ds.x_dim;
        x = (float *)malloc(sizeof(float) * nx);
        for (i = 0; i < (size_t)ds.n; i++) nn_dataset_get_x(&ds, (int)i, x + i * ds.x_dim);
        /* before adapt: mean 0, variance 1 -- the identity */
        if (cs[k].layer == 0) {
            o1 = (float *)malloc(sizeof(float) * nx);
            st = nn_predict_layers(m, 0, 1, x, ds.n, o1);
            TT_CHECK(st == NN_OK, "predict_layers before adapt: %s", nn_strerror(st));
            TT_SAME_ARR("a normalization not adapted is the identity", o1, x, nx);
            free(o1);
            o1 = NULL;
        }
        np = nn_model_num_params(m);
        p0 = (float *)malloc(sizeof(float) * (np + 1));
        memcpy(p0, nn_model_params(m, NULL), np * sizeof(float));
        st = nn_normalization_adapt(m, cs[k].layer, &ds);
        if (!TT_CHECK(st == NN_OK, "nn_normalization_adapt: %s (%s)", nn_strerror(st), nn_model_error(m))) ok = 0;
        TT_CHECK(same_floats(nn_model_params(m, NULL), p0, np), "nn_normalization_adapt changed the parameters");
        if (ok && ds.n > 1) norm_effect(m, cs[k].layer, &ds, C, od, NULL, "after adapt on D");
        if (ok && ds.n == 1) { /* one sample: every feature is flat, the output is 0 */
            int flat[8] = {1, 1, 1, 1, 1, 1, 1, 1};
            norm_effect(m, cs[k].layer, &ds, C, od, flat, "after adapt on one sample");
        }
        /* adapting again on the same data changes nothing; on other data
         * the statistics are replaced (not accumulated) */
        if (ok) {
            nn_shape os = nn_model_output_shape(m);
            size_t mo = (size_t)os.d[0] * os.d[1] * os.d[2];
            o1 = (float *)malloc(sizeof(float) * ds.n * mo);
            o2 = (float *)malloc(sizeof(float) * ds.n * mo);
            TT_CHECK(nn_predict(m, x, ds.n, o1) == NN_OK, "predict");
            TT_CHECK(nn_normalization_adapt(m, cs[k].layer, &ds) == NN_OK, "adapt again");
            TT_CHECK(nn_predict(m, x, ds.n, o2) == NN_OK, "predict");
            TT_SAME_ARR("adapting twice on the same data gives the same model", o2, o1, ds.n * mo);
            if (ds.n > 1 && norm_data(&d2, ds.n + 7, in, 900 + (unsigned)k)) {
                for (i = 0; i < (size_t)d2.n * d2.x_dim; i++) d2.x[i] = 0.5f * d2.x[i] + 1.0f;
                TT_CHECK(nn_normalization_adapt(m, cs[k].layer, &d2) == NN_OK, "adapt on D2");
                norm_effect(m, cs[k].layer, &d2, C, od, NULL, "after adapt on D then on D2 (= 0.5 D' + 1)");
                nn_dataset_free(&d2);
            }
        }
        free(o1);
        free(o2);
        free(p0);
        free(x);
        nn_dataset_free(&ds);
        nn_model_free(m);
    }
}

/* u8-backed datasets (as IDX images are kept): the samples reach the layer
 * as x_u8 * x_scale, so adapt on them equals adapt on those floats. */
static void normalization_adapt_u8(void) {
    enum { N = 45, F = 6 };
    static unsigned char xb[N * F];
    float xf[N * F], y[N], o1[N * 2], o2[N * 2];
    int variant, i;
    nn_rng r;
    nn_rng_seed(&r, 77);
    for (i = 0; i < N * F; i++) xb[i] = (unsigned char)(20 * (i % F) + nn_rng_below(&r, 100 + 25 * (i % 3)));
    for (i = 0; i < N; i++) y[i] = 0.0f;
    for (variant = 0; variant <= 1; variant++) {
        nn_dataset du, df;
        nn_model *mu = norm_model(nn_shape1(F), variant), *mf = norm_model(nn_shape1(F), variant);
        int layer = variant; /* 0: first, 1: after a dense */
        nn_status st;
        tt_ctx("train[%s] normalization adapt on a u8 dataset, layer %d", nn_backend_name(nn_get_backend()), layer);
        memset(&du, 0, sizeof du);
        du.n = N;
        du.shape = nn_shape1(F);
        du.x_dim = F;
        du.y_dim = 1;
        du.x_u8 = xb;
        du.x_scale = 1.0f / 255.0f;
        du.y = y;
        du.owns = 0;
        for (i = 0; i < N; i++) nn_dataset_get_x(&du, i, xf + i * F);
        if (nn_model_status(mu) != NN_OK || nn_model_status(mf) != NN_OK ||
            !TT_CHECK(nn_dataset_from_arrays(&df, N, nn_shape1(F), xf, 1, y) == NN_OK, "float twin")) {
            nn_model_free(mu);
            nn_model_free(mf);
            continue;
        }
        st = nn_normalization_adapt(mu, layer, &du);
        TT_CHECK(st == NN_OK, "adapt on u8: %s (%s)", nn_strerror(st), nn_model_error(mu));
        norm_effect(mu, layer, &du, variant ? 4 : F, variant ? 4 : F, NULL, "after adapt on the u8 dataset");
        TT_CHECK(nn_normalization_adapt(mf, layer, &df) == NN_OK, "adapt on the float twin");
        TT_CHECK(nn_predict(mu, xf, N, o1) == NN_OK && nn_predict(mf, xf, N, o2) == NN_OK, "predict");
        TT_SAME_ARR("adapt on u8 samples == adapt on the same samples as floats", o1, o2, N * 2);
        nn_dataset_free(&df);
        nn_model_free(mu);
        nn_model_free(mf);
    }
}

/* A feature that is constant in the data has variance 0: the layer then
 * divides by 1e-7 (Keras' floor), so outputs stay finite: exactly 0 on the
 * data, (x - c) / 1e-7 elsewhere. */
static void normalization_flat(void) {
    enum { N = 20, F = 4 };
    float x[N * F], y[N], q[2 * F], out[2 * F], full[2 * 2];
    int flat[F] = {1, 0, 1, 0}, i;
    nn_dataset ds;
    nn_model *m = norm_model(nn_shape1(F), 0);
    nn_rng r;
    tt_ctx("train[%s] normalization of constant features", nn_backend_name(nn_get_backend()));
    nn_rng_seed(&r, 8);
    for (i = 0; i < N; i++) {
        x[i * F + 0] = 2.5f;
        x[i * F + 1] = 1.0f + nn_rng_normal(&r);
        x[i * F + 2] = 0.0f;
        x[i * F + 3] = -4.0f + 0.25f * nn_rng_normal(&r);
        y[i] = 0.0f;
    }
    if (nn_model_status(m) != NN_OK || nn_dataset_from_arrays(&ds, N, nn_shape1(F), x, 1, y) != NN_OK) {
        nn_model_free(m);
        return;
    }
    TT_CHECK(nn_normalization_adapt(m, 0, &ds) == NN_OK, "adapt: %s", nn_model_error(m));
    norm_effect(m, 0, &ds, F, F, flat, "constant features");
    for (i = 0; i < F; i++) q[i] = q[F + i] = x[i];
    q[0] = 3.0f;      /* 0.5 from the constant 2.5 */
    q[2] = 1e-3f;     /* 1e-3 from the constant 0 */
    q[F + 0] = 2.0f;  /* -0.5 */
    q[F + 2] = -1.0f; /* -1 */
    TT_CHECK(nn_predict_layers(m, 0, 1, q, 2, out) == NN_OK, "predict_layers");
    TT_CHECK(isfinite(out[0]) && isfinite(out[2]) && isfinite(out[F]) && isfinite(out[F + 2]),
             "outputs of constant features: %g %g %g %g", (double)out[0], (double)out[2], (double)out[F],
             (double)out[F + 2]);
    TT_CLOSE(out[0], 0.5f / 1e-7f, 1e-6);
    TT_CLOSE(out[2], 1e-3f / 1e-7f, 1e-6);
    TT_CLOSE(out[F], -0.5f / 1e-7f, 1e-6);
    TT_CLOSE(out[F + 2], -1.0f / 1e-7f, 1e-6);
    TT_CHECK(nn_predict(m, q, 2, full) == NN_OK && isfinite(full[0]) && isfinite(full[1]) && isfinite(full[2]) &&
                 isfinite(full[3]),
             "nn_predict after a constant feature: %g %g %g %g", (double)full[0], (double)full[1], (double)full[2],
             (double)full[3]);
    nn_dataset_free(&ds);
    nn_model_free(m);
}

void test_train(void) {
    nn_backend bk[2];
    int bi;
    bk[0] = NN_BACKEND_SCALAR;
    bk[1] = best_simd();
    for (bi = 0; bi < 2; bi++) {
        if (bi == 1 && bk[1] == NN_BACKEND_SCALAR) {
            tt_skip("train: no SIMD backend available in this build / on this CPU");
            break;
        }
        tt_set_backend(bk[bi]);
        xor_learns();
        dense_orientations();
        batch_independence();
        normalization_adapt();
        normalization_adapt_u8();
        normalization_flat();
    }
    (void)nn_set_backend(NN_BACKEND_AUTO);
    fit_options();
    fashion_cnn();
}

/* ======================================================================== */
/* errors                                                                   */
/* ======================================================================== */

/* Layers whose parameter or output count would wrap a size_t product are
 * refused with NN_ERR_SHAPE at the builder (an LSTM of 2^31 units on 92680
 * features had nw + nb wrap to 166832 floats and nn_compile's init wrote
 * 1.8e19 of them); 'same' geometry near INT_MAX computes without overflow. */
/* Sizes that pass 2^32 bytes in total though every layer is legal: with a
 * 32-bit size_t (make test-i386, make test-wasm) they wrapped to small
 * blocks that were overrun; now an error everywhere (allocations over 1 GiB
 * refused here, so that 64-bit machines answer as quickly). */
static void past_32_bits(void) {
    nn_model *m;
    nn_status st;
    int i, n = 1 << 20;
    float *x = (float *)calloc((size_t)n, sizeof(float)), loss = 0.0f;
    tt_ctx("errors: sizes past 32 bits");
    if (!TT_CHECK(x != NULL, "calloc")) return;
    tt_alloc_cap = (size_t)1 << 30;
    /* five dense layers of 9e8 weights: 4.5e9 parameters */
    m = nn_model_new(nn_shape1(30000));
    for (i = 0; i < 5; i++) nn_dense(m, 30000, NN_RELU);
    st = nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE);
    TT_CHECK(st == NN_ERR_SHAPE || st == NN_ERR_NO_MEMORY, "5 x dense 30000 on 30000: %s (%s)", nn_strerror(st),
             nn_model_error(m));
    nn_model_free(m);
    /* batch 2^20 of 4096 activations: a 16 GiB arena (2^32 floats) */
    m = nn_model_new(nn_shape1(1));
    nn_dense(m, 4096, NN_RELU);
    nn_dense(m, 1, NN_LINEAR);
    st = nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE);
    TT_EQ_INT(st, NN_OK);
    if (st == NN_OK) {
        st = nn_train_on_batch(m, x, x, n, &loss, NULL);
        TT_CHECK(st == NN_ERR_NO_MEMORY, "batch 2^20 x 4096: %s (%s)", nn_strerror(st), nn_model_error(m));
        /* predict goes in chunks: it works */
        TT_EQ_INT(nn_predict(m, x, 1000, x + 1000), NN_OK);
    }
    nn_model_free(m);
    tt_alloc_cap = 0;
    free(x);
}
static void huge_layers(void) {
    static const struct {
        const char *what;
        int kind, in0, in1, in2, a, b, c;
    } cs[] = {
        {"lstm 2147437308 units on 92680 features", 0, 92680, 1, 0, 2147437308, 0, 0},
        {"gru 100000 units on 100000 features", 1, 1, 100000, 0, 100000, 1, 0},
        {"rnn INT_MAX units", 2, 3, 4, 0, 2147483647, 0, 0},
        {"dense INT_MAX units on 3 features", 3, 3, 0, 0, 2147483647, 0, 0},
        {"dense 70000 units on a sequence of 20000 steps", 4, 20000, 5, 0, 70000, 0, 0},
        {"conv 'same' 65536x65536 kernel, 2^20 filters", 5, 8, 8, 3, 1 << 20, 65536, 1},
        {"conv 'same' INT_MAX kernel and stride", 5, 8, 8, 1, 2, 2147483647, 2147483647},
        {"conv 'same' 40000 filters on a 40000x40000 image", 5, 40000, 40000, 1, 40000, 3, 1},
    };
    size_t i;
    for (i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        nn_model *m;
        nn_status st = NN_OK;
        tt_ctx("errors: huge layer, %s", cs[i].what);
        switch (cs[i].kind) {
        case 0: m = nn_model_new(nn_shape2(1, cs[i].in0)); st = nn_lstm(m, cs[i].a, cs[i].b); break;
        case 1: m = nn_model_new(nn_shape2(cs[i].in0, cs[i].in1)); st = nn_gru(m, cs[i].a, cs[i].b); break;
        case 2: m = nn_model_new(nn_shape2(cs[i].in0, cs[i].in1)); st = nn_rnn(m, cs[i].a, 1); break;
        case 3: m = nn_model_new(nn_shape1(cs[i].in0)); st = nn_dense(m, cs[i].a, NN_RELU); break;
        case 4: m = nn_model_new(nn_shape2(cs[i].in0, cs[i].in1)); st = nn_dense(m, cs[i].a, NN_RELU); break;
        default:
            m = nn_model_new(nn_shape3(cs[i].in0, cs[i].in1, cs[i].in2));
            st = nn_conv2d_ex(m, cs[i].a, cs[i].b, cs[i].b, cs[i].c, 1, NN_RELU);
            break;
        }
        TT_CHECK(st == NN_ERR_SHAPE, "the builder returned %s (%s)", nn_strerror(st), nn_model_error(m));
        TT_CHECK(nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE) == NN_ERR_SHAPE, "nn_compile after it");
        nn_model_free(m);
    }
    {
        nn_conv_geom g;
        tt_ctx("errors: 'same' geometry near INT_MAX");
        nn_status st = nn_conv_geom_init(&g, 1, 2147483647, 5, 1, 3, 3, 2147483647, 1);
        TT_CHECK(st == NN_OK && g.oh == 1 && g.ow == 1 && g.pt == 0 && g.pl == 0,
                 "h INT_MAX, stride INT_MAX: %s, oh %d ow %d pt %d pl %d", nn_strerror(st), g.oh, g.ow, g.pt,
                 g.pl);
        st = nn_conv_geom_init(&g, 1, 7, 7, 1, 2147483647, 3, 2147483646, 1);
        TT_CHECK(st == NN_OK && g.oh == 1 && g.pt == 1073741820, "kernel INT_MAX: %s, oh %d pt %d",
                 nn_strerror(st), g.oh, g.pt);
    }
}

static void build_errors(void) {
    nn_model *m;
    nn_status st;
    huge_layers();
    past_32_bits();
    tt_ctx("errors: model building");
    /* dense after conv without flatten */
    m = nn_model_new(nn_shape3(6, 6, 1));
    TT_CHECK(nn_conv2d(m, 2, 3, NN_RELU) == NN_OK, "conv2d on 6x6x1");
    st = nn_dense(m, 4, NN_RELU);
    TT_CHECK(st == NN_ERR_SHAPE, "dense after conv returned %s", nn_strerror(st));
    TT_CHECK(nn_flatten(m) == NN_ERR_SHAPE, "builder calls after an error return the sticky status");
    st = nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE);
    TT_CHECK(st == NN_ERR_SHAPE, "nn_compile returned %s, expected the sticky NN_ERR_SHAPE", nn_strerror(st));
    TT_CHECK(has(nn_model_error(m), "layer 1") && has(nn_model_error(m), "dense") && has(nn_model_error(m), "flatten"),
             "message should name layer 1 (dense) and suggest flatten: \"%s\"", nn_model_error(m));
    TT_CHECK(nn_model_status(m) == NN_ERR_SHAPE, "nn_model_status");
    nn_model_free(m);

    /* kernel larger than its input ('valid'); fine with 'same' */
    m = nn_model_new(nn_shape3(3, 3, 1));
    st = nn_conv2d(m, 2, 5, NN_RELU);
    TT_CHECK(st == NN_ERR_SHAPE, "5x5 valid conv on 3x3 returned %s", nn_strerror(st));
    TT_CHECK(has(nn_model_error(m), "layer 0"), "message should name layer 0: \"%s\"", nn_model_error(m));
    TT_CHECK(nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE) == NN_ERR_SHAPE, "compile after the kernel error");
    nn_model_free(m);
    m = nn_model_new(nn_shape3(3, 3, 1));
    TT_CHECK(nn_conv2d_ex(m, 2, 5, 5, 1, 1, NN_RELU) == NN_OK, "5x5 'same' conv on 3x3: %s", nn_model_error(m));
    st = nn_maxpool2d(m, 4);
    TT_CHECK(st == NN_ERR_SHAPE, "maxpool 4 on 3x3 returned %s", nn_strerror(st));
    nn_model_free(m);

    /* conv / pool on a vector */
    m = nn_model_new(nn_shape1(16));
    TT_CHECK(nn_conv2d(m, 2, 3, NN_RELU) == NN_ERR_SHAPE, "conv2d on a vector");
    nn_model_free(m);
    m = nn_model_new(nn_shape1(16));
    TT_CHECK(nn_avgpool2d(m, 2) == NN_ERR_SHAPE, "avgpool2d on a vector");
    nn_model_free(m);
    m = nn_model_new(nn_shape1(16));
    st = nn_global_avgpool2d(m);
    TT_CHECK(st == NN_ERR_SHAPE, "global_avgpool2d on a vector returned %s", nn_strerror(st));
    TT_CHECK(has(nn_model_error(m), "layer 0") && has(nn_model_error(m), "global_avgpool2d"),
             "message should name layer 0 (global_avgpool2d): \"%s\"", nn_model_error(m));
    nn_model_free(m);
    m = nn_model_new(nn_shape2(5, 3));
    TT_CHECK(nn_global_avgpool2d(m) == NN_ERR_SHAPE, "global_avgpool2d on a sequence");
    nn_model_free(m);
    /* after global pooling the output is a vector: no second one */
    m = nn_model_new(nn_shape3(4, 4, 2));
    TT_CHECK(nn_global_avgpool2d(m) == NN_OK, "global_avgpool2d on (4,4,2)");
    TT_CHECK(nn_global_avgpool2d(m) == NN_ERR_SHAPE, "global_avgpool2d on its own (2) output");
    nn_model_free(m);
    TT_EQ_INT(nn_global_avgpool2d(NULL), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_normalization(NULL), NN_ERR_INVALID_ARGUMENT);
    /* bad arguments */
    m = nn_model_new(nn_shape1(4));
    TT_CHECK(nn_dense(m, 0, NN_RELU) == NN_ERR_INVALID_ARGUMENT, "dense with 0 units");
    nn_model_free(m);
    m = nn_model_new(nn_shape1(4));
    TT_CHECK(nn_dropout(m, 1.0f) == NN_ERR_INVALID_ARGUMENT, "dropout rate 1");
    nn_model_free(m);
    m = nn_model_new(nn_shape1(4));
    TT_CHECK(nn_dense(m, 3, (nn_activation)42) == NN_ERR_INVALID_ARGUMENT, "unknown activation");
    nn_model_free(m);
    m = nn_model_new(nn_shape1(0));
    TT_CHECK(m == NULL || nn_model_status(m) != NN_OK, "input of 0 features accepted");
    TT_CHECK(m == NULL || nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE) != NN_OK, "compile of a 0-feature model");
    nn_model_free(m);
    m = nn_model_new(nn_shape1(4));
    TT_CHECK(nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE) == NN_ERR_STATE, "compile without layers");
    nn_model_free(m);
    m = nn_model_new(nn_shape1(4));
    nn_dense(m, 2, NN_LINEAR);
    {
        nn_optimizer o = nn_sgd(-1.0f);
        TT_CHECK(nn_compile(m, o, NN_LOSS_MSE) == NN_ERR_INVALID_ARGUMENT, "negative learning rate");
    }
    nn_model_free(m);
    m = nn_model_new(nn_shape1(4));
    nn_dense(m, 2, NN_LINEAR);
    {
        nn_optimizer o = nn_adam(0.1f);
        o.beta1 = 1.0f;
        TT_CHECK(nn_compile(m, o, NN_LOSS_MSE) == NN_ERR_INVALID_ARGUMENT, "beta1 = 1");
    }
    nn_model_free(m);
    m = nn_model_new(nn_shape1(4));
    nn_dense(m, 2, NN_LINEAR);
    TT_CHECK(nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE) == NN_OK, "compile");
    TT_CHECK(nn_dense(m, 2, NN_LINEAR) == NN_ERR_STATE, "adding a layer after compile");
    TT_CHECK(nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE) == NN_ERR_STATE, "compiling twice");
    TT_CHECK(nn_layer_weights(m, 5, NULL) == NULL && nn_layer_weights(m, -1, NULL) == NULL,
             "nn_layer_weights of a missing layer");
    TT_CHECK(nn_layer_freeze(m, 5, 1) == NN_ERR_INVALID_ARGUMENT, "freezing a missing layer");
    nn_model_free(m);
    m = nn_model_new(nn_shape1(4));
    nn_dense(m, 2, NN_LINEAR);
    {
        float x[4] = {1, 2, 3, 4}, y[2] = {0, 0};
        nn_dataset ds;
        TT_CHECK(nn_forward(m, x, 1, 1) == NN_ERR_STATE, "nn_forward before compile");
        TT_CHECK(nn_predict(m, x, 1, y) == NN_ERR_STATE, "nn_predict before compile");
        if (nn_dataset_from_arrays(&ds, 1, nn_shape1(4), x, 2, y) == NN_OK) {
            TT_CHECK(nn_fit(m, &ds, NULL) == NN_ERR_STATE, "nn_fit before compile");
            nn_dataset_free(&ds);
        }
    }
    nn_model_free(m);
    TT_CHECK(nn_fit(NULL, NULL, NULL) == NN_ERR_INVALID_ARGUMENT &&
                 nn_predict(NULL, NULL, 1, NULL) == NN_ERR_INVALID_ARGUMENT,
             "NULL model");
    TT_CHECK(nn_compile(NULL, nn_sgd(0.1f), NN_LOSS_MSE) == NN_ERR_INVALID_ARGUMENT, "nn_compile(NULL)");
    nn_model_free(NULL);
}

static void loss_errors(void) {
    static const struct {
        nn_activation act;
        int units;
        nn_loss loss;
        const char *why, *word;
    } cs[] = {
        {NN_RELU, 3, NN_LOSS_CATEGORICAL_CE, "categorical CE after relu", "softmax"},
        {NN_LINEAR, 3, NN_LOSS_SPARSE_CATEGORICAL_CE, "sparse CE after linear", "softmax"},
        {NN_SIGMOID, 3, NN_LOSS_CATEGORICAL_CE, "categorical CE after sigmoid", "softmax"},
        {NN_LINEAR, 1, NN_LOSS_BINARY_CE, "binary CE after linear", "sigmoid"},
        {NN_SOFTMAX, 2, NN_LOSS_BINARY_CE, "binary CE after softmax", "sigmoid"},
        {NN_SOFTMAX, 3, NN_LOSS_CATEGORICAL_CE_FROM_LOGITS, "CE from logits after softmax", "linear"},
        {NN_SIGMOID, 1, NN_LOSS_BINARY_CE_FROM_LOGITS, "BCE from logits after sigmoid", "linear"},
        {NN_SOFTMAX, 1, NN_LOSS_CATEGORICAL_CE, "categorical CE with one class", "class"},
        {NN_LINEAR, 1, NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS, "sparse CE from logits with one class", "class"},
    };
    size_t i;
    for (i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        nn_model *m = nn_model_new(nn_shape1(4));
        nn_status st;
        tt_ctx("errors: %s", cs[i].why);
        nn_dense(m, 5, NN_TANH);
        nn_dense(m, cs[i].units, cs[i].act);
        st = nn_compile(m, nn_sgd(0.1f), cs[i].loss);
        TT_CHECK(st == NN_ERR_INVALID_ARGUMENT || st == NN_ERR_SHAPE, "nn_compile returned %s", nn_strerror(st));
        TT_CHECK(has(nn_model_error(m), cs[i].word), "message should mention '%s': \"%s\"", cs[i].word,
                 nn_model_error(m));
        nn_model_free(m);
    }
    {
        nn_model *m = nn_model_new(nn_shape1(4));
        tt_ctx("errors: unknown loss");
        nn_dense(m, 2, NN_LINEAR);
        TT_CHECK(nn_compile(m, nn_sgd(0.1f), (nn_loss)99) == NN_ERR_INVALID_ARGUMENT, "loss 99 accepted");
        nn_model_free(m);
    }
}

static nn_model *clf_model(int in, int classes) {
    nn_model *m = nn_model_new(nn_shape1(in));
    nn_dense(m, 6, NN_TANH);
    nn_dense(m, classes, NN_SOFTMAX);
    if (nn_compile(m, nn_adam(0.01f), NN_LOSS_SPARSE_CATEGORICAL_CE) != NN_OK) TT_CHECK(0, "clf_model compile");
    return m;
}

static void data_errors(void) {
    enum { N = 8 };
    float x[N * 4], y[N];
    nn_dataset ds;
    nn_model *m;
    nn_fit_opts fo;
    nn_status st;
    nn_rng r;
    int i;
    float nanv = NAN, infv = INFINITY;
    nn_rng_seed(&r, 4);
    tt_fill_uniform(&r, x, N * 4, -1, 1);
    for (i = 0; i < N; i++) y[i] = (float)(i % 3);
    fo = nn_fit_defaults();
    fo.verbose = 0;
    fo.batch = 4;
    fo.epochs = 2;

    /* label out of range / not an integer / negative */
    {
        static const float bad[] = {3.0f, -1.0f, 1.5f};
        size_t b;
        for (b = 0; b < 3; b++) {
            tt_ctx("errors: label %g with 3 classes", (double)bad[b]);
            y[5] = bad[b];
            m = clf_model(4, 3);
            if (nn_dataset_from_arrays(&ds, N, nn_shape1(4), x, 1, y) != NN_OK) {
                TT_CHECK(0, "nn_dataset_from_arrays");
                nn_model_free(m);
                continue;
            }
            st = nn_fit(m, &ds, &fo);
            TT_CHECK(st == NN_ERR_INVALID_ARGUMENT || st == NN_ERR_FORMAT || st == NN_ERR_SHAPE, "nn_fit returned %s",
                     nn_strerror(st));
            TT_CHECK(has(nn_model_error(m), "label"), "message should mention the label: \"%s\"", nn_model_error(m));
            {
                float L;
                nn_model *m2 = clf_model(4, 3);
                st = nn_evaluate(m2, &ds, 4, &L, NULL);
                TT_CHECK(st != NN_OK, "nn_evaluate returned %s with label %g", nn_strerror(st), (double)bad[b]);
                nn_model_free(m2);
            }
            /* fixing the data lets training go on */
            ds.y[5] = 1.0f;
            st = nn_fit(m, &ds, &fo);
            TT_CHECK(st == NN_OK, "nn_fit on corrected labels after a label error returned %s (%s)", nn_strerror(st),
                     nn_model_error(m));
            nn_dataset_free(&ds);
            nn_model_free(m);
        }
        y[5] = 2.0f;
    }

    /* dataset samples that do not match the model input */
    tt_ctx("errors: dataset shape");
    m = clf_model(4, 3);
    if (nn_dataset_from_arrays(&ds, N, nn_shape1(4), x, 1, y) == NN_OK) {
        nn_dataset d5;
        float out[3 * N];
        if (nn_dataset_from_arrays(&d5, N / 2, nn_shape1(5), x, 1, y) == NN_OK) {
            TT_CHECK(nn_fit(m, &d5, &fo) == NN_ERR_SHAPE, "fit on 5 features with a 4-feature model");
            TT_CHECK(has(nn_model_error(m), "(5)") && has(nn_model_error(m), "(4)"),
                     "message should give both shapes: \"%s\"", nn_model_error(m));
            TT_CHECK(nn_evaluate(m, &d5, 4, NULL, NULL) == NN_ERR_SHAPE, "evaluate on 5 features");
            TT_CHECK(nn_predict_dataset(m, &d5, 4, out) == NN_ERR_SHAPE, "predict_dataset on 5 features");
            nn_dataset_free(&d5);
        }
        {
            /* one-hot targets (3 per sample) for a sparse loss */
            float oh[N * 3];
            nn_dataset d3;
            for (i = 0; i < N * 3; i++) oh[i] = (i % 3) == 0;
            if (nn_dataset_from_arrays(&d3, N, nn_shape1(4), x, 3, oh) == NN_OK) {
                TT_CHECK(nn_evaluate(m, &d3, 4, NULL, NULL) == NN_ERR_SHAPE, "3 targets per sample for sparse CE");
                nn_dataset_free(&d3);
            }
        }
        nn_dataset_free(&ds);
    }
    nn_model_free(m);
    {
        /* images: (2,8,1) samples into a (4,4,1) model: same size, other shape */
        float img[N * 16];
        nn_dataset di;
        tt_fill_uniform(&r, img, N * 16, 0, 1);
        m = nn_model_new(nn_shape3(4, 4, 1));
        nn_conv2d(m, 2, 3, NN_RELU);
        nn_flatten(m);
        nn_dense(m, 3, NN_SOFTMAX);
        TT_CHECK(nn_compile(m, nn_sgd(0.1f), NN_LOSS_SPARSE_CATEGORICAL_CE) == NN_OK, "compile");
        if (nn_dataset_from_arrays(&di, N, nn_shape3(2, 8, 1), img, 1, y) == NN_OK) {
            st = nn_fit(m, &di, &fo);
            TT_CHECK(st == NN_ERR_SHAPE, "fit of (2,8,1) images into a (4,4,1) model returned %s", nn_strerror(st));
            nn_dataset_free(&di);
        }
        if (nn_dataset_from_arrays(&di, N / 2, nn_shape3(5, 5, 1), img, 1, y) == NN_OK) {
            st = nn_fit(m, &di, &fo);
            TT_CHECK(st == NN_ERR_SHAPE, "fit of (5,5,1) images into a (4,4,1) model returned %s", nn_strerror(st));
            nn_dataset_free(&di);
        }
        nn_model_free(m);
    }

    /* NaN / Inf in data */
    tt_ctx("errors: non-finite data");
    x[7] = nanv;
    st = nn_dataset_from_arrays(&ds, N, nn_shape1(4), x, 1, y);
    TT_CHECK(st == NN_ERR_NONFINITE, "NaN in x: nn_dataset_from_arrays returned %s", nn_strerror(st));
    if (st == NN_OK) nn_dataset_free(&ds);
    x[7] = -infv;
    st = nn_dataset_from_arrays(&ds, N, nn_shape1(4), x, 1, y);
    TT_CHECK(st == NN_ERR_NONFINITE, "-Inf in x: nn_dataset_from_arrays returned %s", nn_strerror(st));
    if (st == NN_OK) nn_dataset_free(&ds);
    x[7] = 0.5f;
    y[2] = nanv;
    st = nn_dataset_from_arrays(&ds, N, nn_shape1(4), x, 1, y);
    TT_CHECK(st == NN_ERR_NONFINITE, "NaN in y: nn_dataset_from_arrays returned %s", nn_strerror(st));
    if (st == NN_OK) nn_dataset_free(&ds);
    y[2] = 2.0f;
    m = clf_model(4, 3);
    {
        float out[N * 3];
        x[9] = nanv;
        st = nn_predict(m, x, N, out);
        TT_CHECK(st == NN_ERR_NONFINITE, "NaN input: nn_predict returned %s", nn_strerror(st));
        st = nn_forward(m, x, N, 1);
        TT_CHECK(st == NN_ERR_NONFINITE, "NaN input: nn_forward returned %s", nn_strerror(st));
        x[9] = 0.25f;
        TT_CHECK(nn_predict(m, x, N, out) == NN_OK, "nn_predict on clean input after a rejected one");
        /* a rejected input does not break the model for training */
        if (nn_dataset_from_arrays(&ds, N, nn_shape1(4), x, 1, y) == NN_OK) {
            st = nn_fit(m, &ds, &fo);
            TT_CHECK(st == NN_OK, "nn_fit after nn_predict rejected a NaN input returned %s (%s)", nn_strerror(st),
                     nn_model_error(m));
            nn_dataset_free(&ds);
        }
    }
    nn_model_free(m);
}

/* Training that produces NaN / Inf reports NN_ERR_NONFINITE and a layer. */
static void divergence(void) {
    enum { N = 16 };
    float x[N * 3], y[N];
    nn_dataset ds;
    nn_model *m;
    nn_fit_opts fo;
    nn_status st;
    nn_rng r;
    int i;
    nn_rng_seed(&r, 8);
    tt_fill_uniform(&r, x, N * 3, -1, 1);
    for (i = 0; i < N; i++) y[i] = 100.0f * x[3 * i];
    if (!TT_CHECK(nn_dataset_from_arrays(&ds, N, nn_shape1(3), x, 1, y) == NN_OK, "dataset")) return;
    fo = nn_fit_defaults();
    fo.verbose = 0;
    fo.batch = 8;

    tt_ctx("errors: NaN weight before fit");
    m = nn_model_new(nn_shape1(3));
    nn_dense(m, 4, NN_TANH);
    nn_dense(m, 4, NN_TANH);
    nn_dense(m, 1, NN_LINEAR);
    nn_compile(m, nn_sgd(0.01f), NN_LOSS_MSE);
    nn_layer_weights(m, 1, NULL)[2] = NAN;
    fo.epochs = 2;
    st = nn_fit(m, &ds, &fo);
    TT_CHECK(st == NN_ERR_NONFINITE, "nn_fit returned %s", nn_strerror(st));
    TT_CHECK(has(nn_model_error(m), "layer 1"), "message should name layer 1: \"%s\"", nn_model_error(m));
    nn_model_free(m);

    tt_ctx("errors: huge learning rate");
    m = nn_model_new(nn_shape1(3));
    nn_dense(m, 8, NN_RELU);
    nn_dense(m, 1, NN_LINEAR);
    nn_compile(m, nn_sgd(1e4f), NN_LOSS_MSE);
    fo.epochs = 200;
    st = nn_fit(m, &ds, &fo);
    TT_CHECK(st == NN_ERR_NONFINITE, "nn_fit with lr 1e4 returned %s", nn_strerror(st));
    /* the output layer's values or the loss itself may be the first to overflow */
    TT_CHECK(has(nn_model_error(m), "layer") || has(nn_model_error(m), "loss"),
             "message should name the layer (or the loss): \"%s\"", nn_model_error(m));
    TT_CHECK(fo.epochs_run < 200, "epochs_run %d", fo.epochs_run);
    nn_model_free(m);

    /* a loss beyond FLT_MAX is not a finite float: no NN_OK with loss = Inf */
    tt_ctx("errors: loss overflowing float");
    m = nn_model_new(nn_shape1(1));
    nn_dense(m, 1, NN_LINEAR);
    nn_compile(m, nn_sgd(0.01f), NN_LOSS_MSE);
    {
        float xi = 10.0f, t = 0.0f, L = 0.0f, Le = 0.0f;
        nn_dataset d1;
        nn_layer_weights(m, 0, NULL)[0] = 1e19f; /* output 1e20, squared 1e40 */
        st = nn_forward(m, &xi, 1, 1);
        if (st == NN_OK) st = nn_backward(m, &t, &L, NULL);
        TT_CHECK(st == NN_ERR_NONFINITE || (st == NN_OK && isfinite(L)),
                 "nn_backward returned %s with loss %g (output 1e20, target 0)", nn_strerror(st), (double)L);
        if (nn_dataset_from_arrays(&d1, 1, nn_shape1(1), &xi, 1, &t) == NN_OK) {
            st = nn_evaluate(m, &d1, 1, &Le, NULL);
            TT_CHECK(st == NN_ERR_NONFINITE || (st == NN_OK && isfinite(Le)),
                     "nn_evaluate returned %s with loss %g (output 1e20, target 0)", nn_strerror(st), (double)Le);
            nn_dataset_free(&d1);
        }
    }
    nn_model_free(m);
    nn_dataset_free(&ds);
}

/* nn_normalization_adapt: the layer must exist and be a normalization
 * (NN_ERR_INVALID_ARGUMENT), the model compiled (NN_ERR_STATE), the samples
 * fit the model input (NN_ERR_SHAPE), the data finite (NN_ERR_NONFINITE);
 * a refused call leaves the statistics and the model usable. */
static void normalization_errors(void) {
    enum { N = 10 };
    float x[N * 4], y[N], q[2 * 4], o1[2 * 2], o2[2 * 2];
    static unsigned char xb[N * 5];
    nn_dataset ds, d5, du;
    nn_model *m;
    nn_status st;
    nn_rng r;
    int i;
    tt_ctx("errors: nn_normalization_adapt");
    nn_rng_seed(&r, 12);
    tt_fill_normal(&r, x, N * 4, 2.0f);
    tt_fill_normal(&r, q, 2 * 4, 1.0f);
    for (i = 0; i < N; i++) y[i] = 0.0f;
    if (!TT_CHECK(nn_dataset_from_arrays(&ds, N, nn_shape1(4), x, 1, y) == NN_OK &&
                      nn_dataset_from_arrays(&d5, N / 2, nn_shape1(5), x, 1, y) == NN_OK,
                  "datasets"))
        return;
    /* before nn_compile */
    m = nn_model_new(nn_shape1(4));
    nn_dense(m, 3, NN_TANH);
    nn_normalization(m);
    st = nn_normalization_adapt(m, 1, &ds);
    TT_CHECK(st == NN_ERR_STATE, "adapt before nn_compile returned %s, expected NN_ERR_STATE", nn_strerror(st));
    nn_model_free(m);
    m = nn_model_new(nn_shape1(4));
    nn_normalization(m);
    st = nn_normalization_adapt(m, 0, &ds);
    TT_CHECK(st == NN_ERR_STATE, "adapt of layer 0 before nn_compile returned %s, expected NN_ERR_STATE",
             nn_strerror(st));
    /* not sticky: the model still compiles, and adapt works after it */
    nn_dense(m, 2, NN_LINEAR);
    st = nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE);
    TT_CHECK(st == NN_OK, "compile after an early adapt returned %s (%s)", nn_strerror(st), nn_model_error(m));
    TT_CHECK(nn_normalization_adapt(m, 0, &ds) == NN_OK, "adapt after compile: %s", nn_model_error(m));
    nn_model_free(m);
    /* compiled: dense (0), normalization (1), dense (2) */
    m = nn_model_new(nn_shape1(4));
    nn_dense(m, 3, NN_TANH);
    nn_normalization(m);
    nn_dense(m, 2, NN_LINEAR);
    if (!TT_CHECK(nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE) == NN_OK, "compile: %s", nn_model_error(m))) {
        nn_model_free(m);
        nn_dataset_free(&ds);
        nn_dataset_free(&d5);
        return;
    }
    TT_CHECK(nn_normalization_adapt(m, 1, &ds) == NN_OK, "adapt: %s", nn_model_error(m));
    TT_CHECK(nn_predict(m, q, 2, o1) == NN_OK, "predict");
    {
        static const int bad_layers[] = {-1, 3, 1000, 0, 2};
        size_t k;
        for (k = 0; k < sizeof bad_layers / sizeof bad_layers[0]; k++) {
            st = nn_normalization_adapt(m, bad_layers[k], &ds);
            TT_CHECK(st == NN_ERR_INVALID_ARGUMENT,
                     "adapt of layer %d (%s) returned %s, expected NN_ERR_INVALID_ARGUMENT", bad_layers[k],
                     bad_layers[k] == 0 || bad_layers[k] == 2 ? "a dense layer" : "out of range", nn_strerror(st));
        }
        TT_CHECK(has(nn_model_error(m), "normalization"), "message should say what was expected: \"%s\"",
                 nn_model_error(m));
    }
    st = nn_normalization_adapt(m, 1, &d5);
    TT_CHECK(st == NN_ERR_SHAPE, "adapt on 5-feature samples for a 4-feature model returned %s, expected NN_ERR_SHAPE",
             nn_strerror(st));
    /* a u8-backed dataset of the wrong size */
    memset(&du, 0, sizeof du);
    du.n = N;
    du.shape = nn_shape1(5);
    du.x_dim = 5;
    du.y_dim = 1;
    du.x_u8 = xb;
    du.x_scale = 1.0f / 255.0f;
    du.y = y;
    st = nn_normalization_adapt(m, 1, &du);
    TT_CHECK(st == NN_ERR_SHAPE, "adapt on u8 samples of 5 features returned %s, expected NN_ERR_SHAPE",
             nn_strerror(st));
    /* no data: NN_ERR_INVALID_ARGUMENT, as nn_fit and nn_evaluate say */
    st = nn_normalization_adapt(m, 1, NULL);
    TT_CHECK(st == NN_ERR_INVALID_ARGUMENT, "adapt on a NULL dataset returned %s", nn_strerror(st));
    {
        nn_dataset empty;
        memset(&empty, 0, sizeof empty);
        st = nn_normalization_adapt(m, 1, &empty);
        TT_CHECK(st == NN_ERR_INVALID_ARGUMENT, "adapt on an empty dataset returned %s", nn_strerror(st));
    }
    /* an image of the same size but another shape: refused as nn_fit refuses it */
    {
        nn_model *mi = nn_model_new(nn_shape3(4, 3, 2));
        nn_dataset di;
        float xi[2 * 24], yi[2] = {0, 1};
        size_t j;
        for (j = 0; j < 2 * 24; j++) xi[j] = (float)j;
        nn_normalization(mi);
        nn_flatten(mi);
        nn_dense(mi, 2, NN_LINEAR);
        TT_CHECK(nn_compile(mi, nn_sgd(0.1f), NN_LOSS_MSE) == NN_OK, "image model compiles");
        TT_CHECK(nn_dataset_from_arrays(&di, 2, nn_shape3(3, 4, 2), xi, 1, yi) == NN_OK, "image dataset");
        st = nn_normalization_adapt(mi, 0, &di);
        TT_CHECK(st == NN_ERR_SHAPE, "adapt on (3,4,2) images for a (4,3,2) model returned %s", nn_strerror(st));
        TT_CHECK(strstr(nn_model_error(mi), "(3,4,2)") && strstr(nn_model_error(mi), "(4,3,2)"),
                 "the message names both shapes: \"%s\"", nn_model_error(mi));
        nn_dataset_free(&di);
        nn_model_free(mi);
    }
    TT_EQ_INT(nn_normalization_adapt(NULL, 0, &ds), NN_ERR_INVALID_ARGUMENT);
    /* NaN in the data (put there after the dataset was validated) */
    ds.x[4 * 3 + 2] = NAN;
    st = nn_normalization_adapt(m, 1, &ds);
    TT_CHECK(st == NN_ERR_NONFINITE, "adapt on data with a NaN returned %s, expected NN_ERR_NONFINITE",
             nn_strerror(st));
    ds.x[4 * 3 + 2] = INFINITY;
    st = nn_normalization_adapt(m, 1, &ds);
    TT_CHECK(st == NN_ERR_NONFINITE, "adapt on data with an Inf returned %s, expected NN_ERR_NONFINITE",
             nn_strerror(st));
    /* none of the refused calls touched the statistics or broke the model */
    TT_CHECK(nn_model_status(m) == NN_OK, "a refused adapt made the compiled model's status %s",
             nn_strerror(nn_model_status(m)));
    TT_CHECK(nn_predict(m, q, 2, o2) == NN_OK, "predict after the refused calls: %s", nn_model_error(m));
    TT_SAME_ARR("predictions after refused adapt calls are unchanged", o2, o1, 4);
    ds.x[4 * 3 + 2] = 0.5f;
    TT_CHECK(nn_normalization_adapt(m, 1, &ds) == NN_OK, "adapt on the repaired data: %s", nn_model_error(m));
    nn_model_free(m);
    nn_dataset_free(&ds);
    nn_dataset_free(&d5);
}

void test_errors(void) {
    build_errors();
    loss_errors();
    data_errors();
    divergence();
    normalization_errors();
}

/* ======================================================================== */
/* alloc                                                                    */
/* ======================================================================== */

typedef struct {
    long at_batch2, at_last, batches;
} alloc_rec;
static int rec_batch(const nn_fit_event *ev, void *user) {
    alloc_rec *a = (alloc_rec *)user;
    if (ev->epoch == 1 && ev->batch == 2) a->at_batch2 = tt_alloc_calls;
    a->at_last = tt_alloc_calls;
    a->batches++;
    return 0;
}

static nn_model *cnn_model(void) {
    nn_model *m = nn_model_new(nn_shape3(8, 8, 1));
    nn_conv2d(m, 4, 3, NN_RELU);
    nn_batchnorm(m);
    nn_maxpool2d(m, 2);
    nn_dropout(m, 0.2f);
    nn_flatten(m);
    nn_dense(m, 8, NN_RELU);
    nn_dense(m, 3, NN_SOFTMAX);
    nn_compile(m, nn_adam(1e-3f), NN_LOSS_SPARSE_CATEGORICAL_CE);
    return m;
}
static nn_model *mlp_model(void) {
    nn_model *m = nn_model_new(nn_shape1(64));
    nn_dense(m, 16, NN_TANH);
    nn_dropout(m, 0.1f);
    nn_dense(m, 3, NN_LINEAR);
    nn_compile(m, nn_sgd_momentum(0.01f, 0.9f, 1), NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS);
    return m;
}

/* No NN_MALLOC per training step, evaluation or prediction once sized. */
static void steady_state(void) {
    enum { N = 70, NV = 20 };
    float *x = (float *)malloc(sizeof(float) * N * 64), y[N], out[10 * 3];
    nn_dataset ds, dv;
    nn_rng r;
    int i, k;
    nn_rng_seed(&r, 12);
    tt_fill_uniform(&r, x, N * 64, 0, 1);
    for (i = 0; i < N; i++) y[i] = (float)(i % 3);
    for (k = 0; k < 2; k++) {
        nn_model *m = k ? mlp_model() : cnn_model();
        nn_fit_opts fo = nn_fit_defaults();
        alloc_rec a;
        nn_status st;
        long c0;
        tt_ctx("alloc: steady state, %s", k ? "MLP + SGD nesterov" : "CNN + BN + dropout + Adam");
        if (!TT_CHECK(nn_model_status(m) == NN_OK, "model: %s", nn_model_error(m))) {
            nn_model_free(m);
            continue;
        }
        if (nn_dataset_from_arrays(&ds, N, k ? nn_shape1(64) : nn_shape3(8, 8, 1), x, 1, y) != NN_OK ||
            nn_dataset_from_arrays(&dv, NV, k ? nn_shape1(64) : nn_shape3(8, 8, 1), x, 1, y) != NN_OK) {
            TT_CHECK(0, "datasets");
            nn_model_free(m);
            continue;
        }
        memset(&a, 0, sizeof a);
        fo.epochs = 3;
        fo.batch = 16; /* 5 batches, the last one partial */
        fo.verbose = 0;
        fo.val = &dv;
        fo.on_batch = rec_batch;
        fo.user = &a;
        st = nn_fit(m, &ds, &fo);
        TT_CHECK(st == NN_OK && a.batches == 15, "fit: %s, %ld batches", nn_model_error(m), a.batches);
        TT_CHECK(a.at_last == a.at_batch2, "%ld NN_MALLOC calls between batch 2 of epoch 1 and the last batch",
                 a.at_last - a.at_batch2);
        c0 = tt_alloc_calls;
        TT_CHECK(nn_evaluate(m, &dv, 16, NULL, NULL) == NN_OK, "evaluate");
        TT_CHECK(nn_predict(m, x, 10, out) == NN_OK, "predict");
        for (i = 0; i < 5; i++) nn_train_on_batch(m, x, y, 16, NULL, NULL);
        for (i = 0; i < 3; i++) nn_train_on_batch(m, x, y, 7, NULL, NULL); /* smaller batch */
        TT_CHECK(tt_alloc_calls == c0, "%ld NN_MALLOC calls in evaluate / predict / train_on_batch after fit",
                 tt_alloc_calls - c0);
        nn_dataset_free(&ds);
        nn_dataset_free(&dv);
        nn_model_free(m);
    }
    free(x);
}

/* temp file names unique per run (concurrent runs share build/) */
static const char *tmp_path(const char *name) {
    static char buf[256];
    static unsigned long tag;
    FILE *f;
    if (!tag) {
        int local;
        nn_rng r;
        nn_rng_seed(&r, (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20) ^ (uint64_t)(uintptr_t)&local);
        tag = nn_rng_u32(&r) | 1u;
    }
    snprintf(buf, sizeof buf, "build/test_tmp_%08lx_%s", tag, name);
    f = fopen(buf, "wb");
    if (f) {
        fclose(f);
        return buf;
    }
    snprintf(buf, sizeof buf, "test_tmp_%08lx_%s", tag, name);
    return buf;
}

/* One pass of the whole API with the k-th NN_MALLOC failing.  Returns the
 * number of NN_MALLOC calls; *first is the first non-OK status (NN_OK if
 * none) and *where the call that returned it. */
static long oom_pass(long k, const nn_dataset *ds, const float *x, const char *path, nn_status *first,
                     const char **where) {
    nn_model *m, *m2 = NULL;
    nn_status st;
    nn_fit_opts fo = nn_fit_defaults();
    float out[8 * 3];
    *first = NN_OK;
    *where = "";
#define OOM_NOTE(call, s)                                                                                              \
    do {                                                                                                               \
        nn_status s_ = (s);                                                                                            \
        if (s_ != NN_OK && *first == NN_OK) {                                                                          \
            *first = s_;                                                                                               \
            *where = call;                                                                                             \
        }                                                                                                              \
    } while (0)
    remove(path);
    tt_alloc_calls = 0;
    tt_alloc_fail_at = k;
    m = nn_model_new(nn_shape3(6, 6, 1));
    if (!m) {
        OOM_NOTE("nn_model_new", NN_ERR_NO_MEMORY);
        tt_alloc_fail_at = 0;
        return tt_alloc_calls;
    }
    /* more than 8 layers: the layer array grows twice */
    OOM_NOTE("nn_conv2d", nn_conv2d(m, 3, 3, NN_RELU));
    OOM_NOTE("nn_batchnorm", nn_batchnorm(m));
    OOM_NOTE("nn_activation_layer", nn_activation_layer(m, NN_TANH));
    OOM_NOTE("nn_maxpool2d", nn_maxpool2d(m, 2));
    OOM_NOTE("nn_dropout", nn_dropout(m, 0.25f));
    OOM_NOTE("nn_flatten", nn_flatten(m));
    OOM_NOTE("nn_dense", nn_dense(m, 6, NN_RELU));
    OOM_NOTE("nn_batchnorm", nn_batchnorm(m));
    OOM_NOTE("nn_dense", nn_dense(m, 5, NN_TANH));
    OOM_NOTE("nn_dense", nn_dense(m, 3, NN_SOFTMAX));
    OOM_NOTE("nn_compile", nn_compile(m, nn_adam(0.01f), NN_LOSS_SPARSE_CATEGORICAL_CE));
    fo.epochs = 2;
    fo.batch = 4;
    fo.verbose = 0;
    fo.val_split = 0.25f;
    fo.patience = 1; /* allocates the best-weights copy */
    OOM_NOTE("nn_fit", nn_fit(m, ds, &fo));
    OOM_NOTE("nn_predict", nn_predict(m, x, 8, out));
    st = nn_save(m, path, 1);
    OOM_NOTE("nn_save", st);
    if (st == NN_OK) {
        st = nn_load(&m2, path);
        OOM_NOTE("nn_load", st);
        TT_CHECK((st == NN_OK) == (m2 != NULL), "nn_load returned %s with model %p", nn_strerror(st), (void *)m2);
        if (m2) OOM_NOTE("nn_predict (loaded)", nn_predict(m2, x, 8, out));
    }
    nn_model_free(m2);
    m2 = NULL;
    { /* safetensors: export, rebuild from it, load into the model */
        char sp[300];
        snprintf(sp, sizeof sp, "%s.safetensors", path);
        st = nn_save_safetensors(m, sp);
        OOM_NOTE("nn_save_safetensors", st);
        if (st == NN_OK) {
            st = nn_load(&m2, sp);
            OOM_NOTE("nn_load (safetensors)", st);
            TT_CHECK((st == NN_OK) == (m2 != NULL), "nn_load returned %s with model %p", nn_strerror(st), (void *)m2);
            if (m2) OOM_NOTE("nn_predict (loaded)", nn_predict(m2, x, 8, out));
            OOM_NOTE("nn_load_safetensors", nn_load_safetensors(m, sp));
        }
        remove(sp);
    }
    nn_model_free(m2);
    nn_model_free(m);
    tt_alloc_fail_at = 0;
#undef OOM_NOTE
    return tt_alloc_calls;
}

static void failing_malloc(void) {
    enum { N = 12 };
    float x[N * 36], y[N];
    nn_dataset ds;
    nn_rng r;
    nn_status first;
    const char *where, *path = tmp_path("oom.nnm");
    long total, k, live0, bad_status = 0, no_report = 0, leaks = 0, firstbad = 0;
    int i;
    char msg[160] = "", calls[160] = "";
    tt_ctx("alloc: NN_MALLOC failing at call k (model, fit, predict, save, load)");
    nn_rng_seed(&r, 2);
    tt_fill_uniform(&r, x, N * 36, 0, 1);
    for (i = 0; i < N; i++) y[i] = (float)(i % 3);
    if (!TT_CHECK(nn_dataset_from_arrays(&ds, N, nn_shape3(6, 6, 1), x, 1, y) == NN_OK, "dataset")) return;
    live0 = tt_alloc_live;
    total = oom_pass(0, &ds, x, path, &first, &where);
    TT_CHECK(first == NN_OK, "the pass without failures: %s returned %s", where, nn_strerror(first));
    TT_CHECK(tt_alloc_live == live0, "the pass without failures leaks %ld blocks", tt_alloc_live - live0);
    TT_CHECK(total >= 15, "only %ld NN_MALLOC calls in the whole pass", total);
    for (k = 1; k <= total; k++) {
        live0 = tt_alloc_live;
        oom_pass(k, &ds, x, path, &first, &where);
        if (first == NN_OK) {
            no_report++;
            if (!msg[0]) snprintf(msg, sizeof msg, "k=%ld: no call reported the failure", k);
        } else if (first != NN_ERR_NO_MEMORY) {
            bad_status++;
            if (!firstbad) {
                firstbad = k;
                snprintf(msg, sizeof msg, "k=%ld: %s returned %s instead of NN_ERR_NO_MEMORY", k, where,
                         nn_strerror(first));
            }
            if (!strstr(calls, where) && strlen(calls) + strlen(where) + 3 < sizeof calls) {
                if (calls[0]) strcat(calls, ", ");
                strcat(calls, where);
            }
        }
        if (tt_alloc_live != live0) leaks++;
    }
    TT_CHECK(no_report == 0 && bad_status == 0,
             "of %ld failing calls, %ld went unreported and %ld were reported with another status (by: %s); first: %s",
             total, no_report, bad_status, calls, msg);
    TT_CHECK(leaks == 0, "%ld of %ld passes leaked NN_MALLOC blocks", leaks, total);
    nn_dataset_free(&ds);
    remove(path);
}

/* Dataset constructors and loaders with a failing NN_MALLOC. */
static void failing_malloc_data(void) {
    static const unsigned char idx_img[16 + 2 * 4] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                                                      0, 0, 0, 2, 0, 1, 2, 3, 4, 5, 6, 7};
    static const unsigned char idx_lab[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 0};
    const char *csv = "1,2,3\n4,5,6\n";
    char pimg[256], plab[256], pcsv[256];
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[2] = {0, 1};
    FILE *f;
    int which;
    snprintf(pimg, sizeof pimg, "%s", tmp_path("oom_img.idx"));
    snprintf(plab, sizeof plab, "%s", tmp_path("oom_lab.idx"));
    snprintf(pcsv, sizeof pcsv, "%s", tmp_path("oom.csv"));
    f = fopen(pimg, "wb");
    if (f) fwrite(idx_img, 1, sizeof idx_img, f), fclose(f);
    f = fopen(plab, "wb");
    if (f) fwrite(idx_lab, 1, sizeof idx_lab, f), fclose(f);
    f = fopen(pcsv, "wb");
    if (f) fputs(csv, f), fclose(f);
    for (which = 0; which < 3; which++) {
        static const char *names[3] = {"nn_dataset_from_arrays", "nn_dataset_load_idx", "nn_dataset_load_csv"};
        long k, total = 0, bad = 0, leaks = 0;
        nn_status st;
        tt_ctx("alloc: NN_MALLOC failing in %s", names[which]);
        for (k = 0; k == 0 || k <= total; k++) {
            nn_dataset ds;
            long live0 = tt_alloc_live;
            tt_alloc_calls = 0;
            tt_alloc_fail_at = k;
            st = which == 0   ? nn_dataset_from_arrays(&ds, 2, nn_shape1(4), x, 1, y)
                 : which == 1 ? nn_dataset_load_idx(&ds, pimg, plab)
                              : nn_dataset_load_csv(&ds, pcsv, 0, -1);
            tt_alloc_fail_at = 0;
            if (k == 0) {
                total = tt_alloc_calls;
                TT_CHECK(st == NN_OK, "without failures: %s", nn_strerror(st));
            } else if (st != NN_ERR_NO_MEMORY)
                bad++;
            if (st == NN_OK) nn_dataset_free(&ds);
            if (tt_alloc_live != live0) leaks++;
        }
        TT_CHECK(total > 0 && bad == 0, "%ld of %ld failing calls not reported as NN_ERR_NO_MEMORY", bad, total);
        TT_CHECK(leaks == 0, "%ld passes leaked", leaks);
    }
    remove(pimg);
    remove(plab);
    remove(pcsv);
}

/* The SGEMM workspace planned for the fit batch must also cover smaller
 * batches (the partial last batch, nn_train_on_batch / nn_evaluate with
 * fewer samples): a K slice of a smaller batch can be deeper than the
 * slices of the planned one (k = 576 runs as 2 x 288 but k = 504 as one
 * slice).  Sweeps every last-batch size; the overflow shows under ASan
 * (make test-asan) or as a crash. */
static void smaller_batches(void) {
    enum { B = 16, BD = 600, ND = 1200 };
    float *x = (float *)malloc(sizeof(float) * ND * 20), y[ND], out[B * 3];
    nn_rng r;
    int rest, i, k;
    nn_rng_seed(&r, 31);
    tt_fill_uniform(&r, x, ND * 20, 0, 1);
    for (i = 0; i < ND; i++) y[i] = (float)(i % 3);
    tt_ctx("alloc: workspace for smaller batches than planned (conv)");
    for (rest = 1; rest < B; rest++) {
        nn_model *m = nn_model_new(nn_shape3(8, 8, 1));
        nn_dataset ds;
        nn_fit_opts fo = nn_fit_defaults();
        nn_conv2d(m, 4, 3, NN_RELU); /* dW: m = 9, n = 4, k = 36 * batch */
        nn_conv2d(m, 5, 3, NN_TANH); /* and dx through a second conv */
        nn_flatten(m);
        nn_dense(m, 3, NN_SOFTMAX);
        if (nn_compile(m, nn_sgd(0.01f), NN_LOSS_SPARSE_CATEGORICAL_CE) != NN_OK ||
            nn_dataset_from_arrays(&ds, B + rest, nn_shape3(8, 8, 1), x, 1, y) != NN_OK) {
            TT_CHECK(0, "setup: %s", nn_model_error(m));
            nn_model_free(m);
            break;
        }
        fo.batch = B;
        fo.verbose = 0;
        fo.shuffle = 0;
        TT_CHECK(nn_fit(m, &ds, &fo) == NN_OK, "fit with a last batch of %d: %s", rest, nn_model_error(m));
        TT_CHECK(nn_train_on_batch(m, x, y, rest, NULL, NULL) == NN_OK, "train_on_batch(%d)", rest);
        TT_CHECK(nn_evaluate(m, &ds, rest, NULL, NULL) == NN_OK, "evaluate(batch %d)", rest);
        TT_CHECK(nn_predict(m, x, rest, out) == NN_OK, "predict(%d)", rest);
        nn_dataset_free(&ds);
        nn_model_free(m);
    }
    tt_ctx("alloc: workspace for smaller batches than planned (dense)");
    for (k = 0; k < 3; k++) {
        static const int lastb[3] = {400, 500, 129}; /* 600 = 2 x 300 (KC 512), 3 x 200 (KC 256) */
        nn_model *m = nn_model_new(nn_shape1(20));
        nn_dataset ds;
        nn_fit_opts fo = nn_fit_defaults();
        nn_dense(m, 16, NN_RELU); /* dW: m = 20, n = 16, k = batch */
        nn_dense(m, 3, NN_SOFTMAX);
        if (nn_compile(m, nn_sgd(0.01f), NN_LOSS_SPARSE_CATEGORICAL_CE) != NN_OK ||
            nn_dataset_from_arrays(&ds, BD + lastb[k], nn_shape1(20), x, 1, y) != NN_OK) {
            TT_CHECK(0, "setup: %s", nn_model_error(m));
            nn_model_free(m);
            break;
        }
        fo.batch = BD;
        fo.verbose = 0;
        fo.shuffle = 0;
        TT_CHECK(nn_fit(m, &ds, &fo) == NN_OK, "fit batch %d with a last batch of %d: %s", BD, lastb[k],
                 nn_model_error(m));
        nn_dataset_free(&ds);
        nn_model_free(m);
    }
    free(x);
}

void test_alloc(void) {
    steady_state();
    failing_malloc();
    failing_malloc_data();
    smaller_batches(); /* last: an overflow aborts an ASan run */
}
