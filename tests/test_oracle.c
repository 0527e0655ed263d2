/* PyTorch as the oracle: the cases of tests/fixtures/oracle/ (written by
 * scripts/make_oracle.py, which describes the format) hold a model, a batch,
 * the initial parameters and what PyTorch computed in float64: the output
 * and the input gradient in inference mode, then the training forward, the
 * loss, every parameter gradient, and the parameters and batch-norm
 * statistics after one optimizer step (two for the optimizer cases).  Every
 * layer kind, activation, loss and optimizer, padded pooling
 * (nn_maxpool2d_ex / nn_avgpool2d_ex) and layers without a bias
 * (nn_use_bias(m, 0): no bias tensor in nn.h where PyTorch's bias=False
 * has none, and the parameter count PyTorch's); each case on every kernel
 * backend available (AUTO restored after), a case with a Winograd conv also
 * with its convs on im2col.  A tensor passes when every element is within
 * 1e-4 of the largest magnitude of the expected tensor; one check per
 * tensor, its message naming the case, the tensor, the backend and the
 * largest error.  Read from the repository root (or tests/). */
#include "nn.h"
#include "tt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void test_oracle(void);

#define OR_TOL 1e-4
#define OR_MAX_LAYERS 16
#define OR_MAX_TENSORS 128

typedef struct or_tensor {
    char name[32];
    size_t n;
    float *v;
} or_tensor;

typedef struct or_layer {
    char kind[24];
    int a[6];
    float f;
    nn_activation act;
    int has_slope;
    float slope;
    int nobias; /* nn_use_bias(m, 0): PyTorch's bias=False */
} or_layer;

typedef struct or_case {
    char name[64];
    nn_shape input;
    int batch, nl, nt, steps, im2col_too;
    or_layer L[OR_MAX_LAYERS];
    nn_loss loss;
    nn_optimizer opt;
    or_tensor t[OR_MAX_TENSORS];
} or_case;

/* Where nn.h disagrees with PyTorch and the fault is nn.h's: the check is
 * replaced by a SKIP line giving the reason (and the error).  None known. */
typedef struct or_known {
    const char *name, *tensor, *why;
} or_known;
static const or_known or_known_list[] = {{"", "", ""}};

static const char *or_known_why(const char *name, const char *tensor) {
    size_t i;
    for (i = 0; i < sizeof or_known_list / sizeof or_known_list[0]; i++)
        if (or_known_list[i].name[0] && strcmp(or_known_list[i].name, name) == 0 &&
            strcmp(or_known_list[i].tensor, tensor) == 0)
            return or_known_list[i].why;
    return NULL;
}

/* ---- reading a case ------------------------------------------------------ */
static char *or_slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = (char *)malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = 0;
    fclose(f);
    return buf;
}

/* the next white-space separated token ('#' to the end of the line is a
 * comment), or NULL at the end */
static char *or_tok(char **p) {
    char *s = *p, *t;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
        if (*s != '#') break;
        while (*s && *s != '\n') s++;
    }
    if (!*s) {
        *p = s;
        return NULL;
    }
    t = s;
    while (*s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') s++;
    if (*s) *s++ = 0;
    *p = s;
    return t;
}
/* the next token starts with a digit */
static int or_peek_digit(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    return *s >= '0' && *s <= '9';
}
static int or_int(char **p, int *out) {
    char *t = or_tok(p), *end;
    long v;
    if (!t) return 0;
    v = strtol(t, &end, 10);
    if (*end || v < -1000000 || v > 1000000) return 0;
    *out = (int)v;
    return 1;
}
static int or_float(char **p, float *out) {
    char *t = or_tok(p), *end;
    if (!t) return 0;
    *out = strtof(t, &end);
    return *end == 0;
}

static int or_act(const char *s, nn_activation *a) {
    static const char *const names[] = {"linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"};
    static const nn_activation acts[] = {NN_LINEAR, NN_RELU, NN_LEAKY_RELU, NN_SIGMOID, NN_TANH, NN_SOFTMAX};
    size_t i;
    for (i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i]) == 0) {
            *a = acts[i];
            return 1;
        }
    return 0;
}
static int or_loss(const char *s, nn_loss *l) {
    static const char *const names[] = {"mse",
                                        "binary_ce",
                                        "binary_ce_from_logits",
                                        "categorical_ce",
                                        "categorical_ce_from_logits",
                                        "sparse_categorical_ce",
                                        "sparse_categorical_ce_from_logits"};
    static const nn_loss losses[] = {NN_LOSS_MSE,
                                     NN_LOSS_BINARY_CE,
                                     NN_LOSS_BINARY_CE_FROM_LOGITS,
                                     NN_LOSS_CATEGORICAL_CE,
                                     NN_LOSS_CATEGORICAL_CE_FROM_LOGITS,
                                     NN_LOSS_SPARSE_CATEGORICAL_CE,
                                     NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS};
    size_t i;
    for (i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i]) == 0) {
            *l = losses[i];
            return 1;
        }
    return 0;
}

/* the number of int settings a layer line carries, and whether an
 * activation (or a rate) follows them; -1 for an unknown kind */
static int or_layer_args(const char *kind, int *has_act, int *has_float) {
    static const struct {
        const char *kind;
        int ints, act, flt;
    } k[] = {{"dense", 1, 1, 0},      {"conv2d", 5, 1, 0},    {"maxpool2d", 1, 0, 0},
             {"avgpool2d", 1, 0, 0},  {"global_avgpool2d", 0, 0, 0}, {"flatten", 0, 0, 0},
             {"upsample2d", 1, 0, 0}, {"activation", 0, 1, 0}, {"dropout", 0, 0, 1},
             {"batchnorm", 0, 0, 0},  {"normalization", 0, 0, 0}, {"embedding", 2, 0, 0},
             {"rnn", 2, 0, 0},        {"lstm", 2, 0, 0},       {"gru", 2, 0, 0},
             {"maxpool2d_ex", 2, 0, 0}, {"avgpool2d_ex", 2, 0, 0}};
    size_t i;
    for (i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strcmp(kind, k[i].kind) == 0) {
            *has_act = k[i].act;
            *has_float = k[i].flt;
            return k[i].ints;
        }
    return -1;
}

static void or_free(or_case *c) {
    int i;
    for (i = 0; i < c->nt; i++) free(c->t[i].v);
    c->nt = 0;
}

/* Parse the text of a case; on failure returns 0 with a reason in err. */
static int or_parse(char *text, or_case *c, char *err, size_t errlen) {
    char *p = text, *t;
    int i, d[3], nd = 0;
    memset(c, 0, sizeof *c);
#define OR_FAIL(...)                            \
    do {                                        \
        snprintf(err, errlen, __VA_ARGS__);     \
        return 0;                               \
    } while (0)
    while ((t = or_tok(&p)) != NULL) {
        if (strcmp(t, "case") == 0) {
            if (!(t = or_tok(&p)) || strlen(t) >= sizeof c->name) OR_FAIL("bad case name");
            strcpy(c->name, t);
        } else if (strcmp(t, "input") == 0) {
            /* 1 to 3 dimensions: the integers up to the next keyword */
            nd = 0;
            while (nd < 3 && or_peek_digit(p))
                if (!or_int(&p, &d[nd++])) OR_FAIL("bad input shape");
            if (nd == 1) c->input = nn_shape1(d[0]);
            else if (nd == 2) c->input = nn_shape2(d[0], d[1]);
            else if (nd == 3) c->input = nn_shape3(d[0], d[1], d[2]);
            else OR_FAIL("bad input shape");
        } else if (strcmp(t, "batch") == 0) {
            if (!or_int(&p, &c->batch) || c->batch < 1) OR_FAIL("bad batch");
        } else if (strcmp(t, "layer") == 0) {
            or_layer *L;
            int ni, ha, hf;
            if (c->nl >= OR_MAX_LAYERS) OR_FAIL("too many layers");
            L = &c->L[c->nl++];
            if (!(t = or_tok(&p)) || strlen(t) >= sizeof L->kind) OR_FAIL("bad layer kind");
            strcpy(L->kind, t);
            if ((ni = or_layer_args(L->kind, &ha, &hf)) < 0) OR_FAIL("unknown layer kind %s", L->kind);
            for (i = 0; i < ni; i++)
                if (!or_int(&p, &L->a[i])) OR_FAIL("layer %s: bad setting", L->kind);
            if (ha && !or_act(or_tok(&p), &L->act)) OR_FAIL("layer %s: bad activation", L->kind);
            if (hf && !or_float(&p, &L->f)) OR_FAIL("layer %s: bad rate", L->kind);
        } else if (strcmp(t, "slope") == 0) {
            if (!c->nl || !or_float(&p, &c->L[c->nl - 1].slope)) OR_FAIL("bad slope");
            c->L[c->nl - 1].has_slope = 1;
        } else if (strcmp(t, "nobias") == 0) {
            const char *kind = c->nl ? c->L[c->nl - 1].kind : "";
            if (strcmp(kind, "dense") != 0 && strcmp(kind, "conv2d") != 0)
                OR_FAIL("nobias after a layer that is not dense or conv2d");
            c->L[c->nl - 1].nobias = 1;
        } else if (strcmp(t, "loss") == 0) {
            if (!or_loss(or_tok(&p), &c->loss)) OR_FAIL("bad loss");
        } else if (strcmp(t, "opt") == 0) {
            nn_optimizer *o = &c->opt;
            float lr, mom, b1, b2, eps, rho, wd, clip;
            int nest, ok;
            t = or_tok(&p);
            if (!t) OR_FAIL("bad optimizer");
            ok = or_float(&p, &lr) && or_float(&p, &mom) && or_int(&p, &nest) && or_float(&p, &b1) &&
                 or_float(&p, &b2) && or_float(&p, &eps) && or_float(&p, &rho) && or_float(&p, &wd) &&
                 or_float(&p, &clip);
            if (!ok) OR_FAIL("bad optimizer settings");
            *o = nn_sgd(lr);
            if (strcmp(t, "adam") == 0) o->kind = NN_OPT_ADAM;
            else if (strcmp(t, "adamw") == 0) o->kind = NN_OPT_ADAMW;
            else if (strcmp(t, "rmsprop") == 0) o->kind = NN_OPT_RMSPROP;
            else if (strcmp(t, "sgd") != 0) OR_FAIL("unknown optimizer %s", t);
            o->momentum = mom;
            o->nesterov = nest;
            o->beta1 = b1;
            o->beta2 = b2;
            o->eps = eps;
            o->rho = rho;
            o->weight_decay = wd;
            o->clip_norm = clip;
        } else if (strcmp(t, "steps") == 0) {
            if (!or_int(&p, &c->steps) || c->steps < 0) OR_FAIL("bad steps");
        } else if (strcmp(t, "im2col_too") == 0) {
            if (!or_int(&p, &c->im2col_too)) OR_FAIL("bad im2col_too");
        } else if (strcmp(t, "tensor") == 0) {
            or_tensor *T;
            int n;
            size_t j;
            if (c->nt >= OR_MAX_TENSORS) OR_FAIL("too many tensors");
            T = &c->t[c->nt];
            if (!(t = or_tok(&p)) || strlen(t) >= sizeof T->name) OR_FAIL("bad tensor name");
            strcpy(T->name, t);
            if (!or_int(&p, &n) || n < 1) OR_FAIL("tensor %s: bad count", T->name);
            T->n = (size_t)n;
            T->v = (float *)malloc(T->n * sizeof(float));
            if (!T->v) OR_FAIL("out of memory");
            c->nt++;
            for (j = 0; j < T->n; j++)
                if (!or_float(&p, &T->v[j])) OR_FAIL("tensor %s: bad number %lu", T->name, (unsigned long)j);
        } else if (strcmp(t, "end") == 0) {
            break;
        } else {
            OR_FAIL("unknown keyword %s", t);
        }
    }
#undef OR_FAIL
    if (!c->name[0] || !c->nl || !c->batch || c->loss == NN_LOSS_NONE || c->input.ndim == 0) {
        snprintf(err, errlen, "incomplete case");
        return 0;
    }
    return 1;
}

static const or_tensor *or_get(const or_case *c, const char *name) {
    int i;
    for (i = 0; i < c->nt; i++)
        if (strcmp(c->t[i].name, name) == 0) return &c->t[i];
    return NULL;
}
static const or_tensor *or_getf(const or_case *c, const char *fmt, int a, int b) {
    char name[48];
    snprintf(name, sizeof name, fmt, a, b);
    return or_get(c, name);
}

/* ---- the model ----------------------------------------------------------- */
static nn_model *or_build(const or_case *c, int im2col, char *err, size_t errlen) {
    nn_model *m = nn_model_new(c->input);
    int i;
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (i = 0; i < c->nl; i++) {
        const or_layer *L = &c->L[i];
        const char *k = L->kind;
        if (strcmp(k, "dense") == 0) nn_dense(m, L->a[0], L->act);
        else if (strcmp(k, "conv2d") == 0)
            nn_conv2d_ex(m, L->a[0], L->a[1], L->a[2], L->a[3], L->a[4], L->act);
        else if (strcmp(k, "maxpool2d") == 0) nn_maxpool2d(m, L->a[0]);
        else if (strcmp(k, "avgpool2d") == 0) nn_avgpool2d(m, L->a[0]);
        else if (strcmp(k, "maxpool2d_ex") == 0) nn_maxpool2d_ex(m, L->a[0], L->a[1]);
        else if (strcmp(k, "avgpool2d_ex") == 0) nn_avgpool2d_ex(m, L->a[0], L->a[1]);
        else if (strcmp(k, "global_avgpool2d") == 0) nn_global_avgpool2d(m);
        else if (strcmp(k, "flatten") == 0) nn_flatten(m);
        else if (strcmp(k, "upsample2d") == 0) nn_upsample2d(m, L->a[0]);
        else if (strcmp(k, "activation") == 0) nn_activation_layer(m, L->act);
        else if (strcmp(k, "dropout") == 0) nn_dropout(m, L->f);
        else if (strcmp(k, "batchnorm") == 0) nn_batchnorm(m);
        else if (strcmp(k, "normalization") == 0) nn_normalization(m);
        else if (strcmp(k, "embedding") == 0) nn_embedding(m, L->a[0], L->a[1]);
        else if (strcmp(k, "rnn") == 0) nn_rnn(m, L->a[0], L->a[1]);
        else if (strcmp(k, "lstm") == 0) nn_lstm(m, L->a[0], L->a[1]);
        else if (strcmp(k, "gru") == 0) nn_gru(m, L->a[0], L->a[1]);
        if (L->has_slope) nn_leaky_relu_slope(m, L->slope);
        if (L->nobias) nn_use_bias(m, 0);
    }
    if (nn_compile(m, c->opt, c->loss) != NN_OK) {
        snprintf(err, errlen, "build: %s", nn_model_error(m));
        nn_model_free(m);
        return NULL;
    }
    /* the initial parameters and buffers: every one the model has, no other */
    for (i = 0; i < c->nl; i++) {
        static const char *const what[3] = {"w.%d", "b.%d", "s.%d"};
        int j;
        for (j = 0; j < 3; j++) {
            size_t cnt = 0;
            float *dst = j == 0 ? nn_layer_weights(m, i, &cnt)
                         : j == 1 ? nn_layer_bias(m, i, &cnt)
                                  : nn_layer_buffers(m, i, &cnt);
            const or_tensor *src = or_getf(c, what[j], i, 0);
            if ((src ? src->n : 0) != cnt) {
                snprintf(err, errlen, "layer %d (%s): the model has %lu %s, the fixture %lu", i, c->L[i].kind,
                         (unsigned long)cnt, j == 0 ? "weights" : j == 1 ? "biases" : "buffer floats",
                         (unsigned long)(src ? src->n : 0));
                nn_model_free(m);
                return NULL;
            }
            if (cnt) memcpy(dst, src->v, cnt * sizeof(float));
        }
        if (im2col && strcmp(c->L[i].kind, "conv2d") == 0 && nn_conv_winograd(m, i, 0) != NN_OK) {
            snprintf(err, errlen, "nn_conv_winograd(%d, 0): %s", i, nn_model_error(m));
            nn_model_free(m);
            return NULL;
        }
    }
    return m;
}

/* ---- comparing ------------------------------------------------------------- */
/* the closest call of the run: error / tolerance, and where */
static double or_worst_ratio;
static char or_worst_where[160];

typedef struct or_run_ctx {
    const or_case *c;
    const char *backend, *variant;
} or_run_ctx;

static double or_maxabs(const float *v, size_t n) {
    double mx = 0.0;
    size_t i;
    for (i = 0; i < n; i++)
        if (fabs((double)v[i]) > mx) mx = fabs((double)v[i]);
    return mx;
}

/* One check: got[0..n) against ref within OR_TOL of the scale mx (+ extra);
 * mx < 0: the largest magnitude of ref.  A layer's weights and bias are one
 * parameter block (adjacent in nn.h, one norm for clipping): their scale is
 * the largest of both, so that a gradient that is zero but for rounding
 * (the bias of a dense layer before batch norm) is measured against the
 * layer's. */
static void or_cmp(const or_run_ctx *r, const char *tensor, const float *got, size_t ngot, const float *ref,
                   size_t n, double mx, double extra) {
    double worst = -1.0, tol;
    size_t i, at = 0;
    int ok;
    const char *why;
    if (!got || ngot != n) {
        TT_CHECK(0, "%s / %s [%s%s]: nn.h gives %lu values, the fixture %lu", r->c->name, tensor, r->backend,
                 r->variant, (unsigned long)(got ? ngot : 0), (unsigned long)n);
        return;
    }
    if (mx < 0.0) mx = or_maxabs(ref, n);
    tol = OR_TOL * mx + extra;
    for (i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)ref[i]);
        if (e != e) { /* a NaN is the worst */
            worst = e;
            at = i;
            break;
        }
        if (e > worst) {
            worst = e;
            at = i;
        }
    }
    ok = worst <= tol;
    if (tol > 0.0 && worst / tol > or_worst_ratio) {
        or_worst_ratio = worst / tol;
        snprintf(or_worst_where, sizeof or_worst_where, "%s / %s [%s%s]", r->c->name, tensor, r->backend,
                 r->variant);
    }
    why = or_known_why(r->c->name, tensor);
    if (why && !ok) {
        tt_skip("oracle: %s / %s [%s%s]: nn.h is off by %.3g (max |expected| %.3g): %s", r->c->name, tensor,
                r->backend, r->variant, worst, mx, why);
        return;
    }
    TT_CHECK(ok,
             "%s / %s [%s%s]: max error %.3g at [%lu] (got %.9g, expected %.9g), tolerance %.3g = 1e-4 of "
             "the largest expected magnitude %.3g",
             r->c->name, tensor, r->backend, r->variant, worst, (unsigned long)at, (double)got[at],
             (double)ref[at], tol, mx);
}
static void or_cmp_t(const or_run_ctx *r, const char *tensor, const float *got, size_t ngot) {
    const or_tensor *t = or_get(r->c, tensor);
    if (!TT_CHECK(t != NULL, "%s: no tensor %s in the fixture", r->c->name, tensor)) return;
    or_cmp(r, tensor, got, ngot, t->v, t->n, -1.0, 0.0);
}
/* a layer's weights (j 0) or bias (j 1) tensor "PRE.L" (or "PRE.L@K"),
 * measured against the layer's scale: the largest magnitude of both */
static void or_cmp_wb(const or_run_ctx *r, const char *pre, int layer, int step, int j, const float *got,
                      size_t ngot) {
    char name[2][48];
    const or_tensor *t[2];
    int q;
    for (q = 0; q < 2; q++) {
        if (step) snprintf(name[q], sizeof name[q], "%s%c.%d@%d", pre, q ? 'b' : 'w', layer, step);
        else snprintf(name[q], sizeof name[q], "%s%c.%d", pre, q ? 'b' : 'w', layer);
        t[q] = or_get(r->c, name[q]);
    }
    if (!TT_CHECK(t[j] != NULL, "%s: no tensor %s in the fixture", r->c->name, name[j])) return;
    or_cmp(r, name[j], got, ngot, t[j]->v, t[j]->n,
           fmax(or_maxabs(t[0] ? t[0]->v : NULL, t[0] ? t[0]->n : 0),
                or_maxabs(t[1] ? t[1]->v : NULL, t[1] ? t[1]->n : 0)),
           0.0);
}

static size_t or_shape_size(nn_shape s) {
    size_t n = 1;
    int i;
    for (i = 0; i < s.ndim; i++) n *= (size_t)s.d[i];
    return n;
}

/* The parameters are the fixture's (PyTorch's, converted): nn_model_num_params
 * counts the w.L and b.L tensors and nothing else, and a layer without a bias
 * (PyTorch's bias=False) has none in nn.h either: nn_layer_bias (after the
 * backward also nn_layer_bias_grads) NULL with count 0, and the fixture holds
 * no bias, bias gradient or bias update for it. */
static void or_check_nobias(const or_run_ctx *r, nn_model *m, int grads) {
    const or_case *c = r->c;
    size_t want = 0, n;
    int i, k;
    const float *p;
    for (i = 0; i < c->nl; i++) {
        const or_tensor *w = or_getf(c, "w.%d", i, 0), *b = or_getf(c, "b.%d", i, 0);
        want += (w ? w->n : 0) + (b ? b->n : 0);
        if (!c->L[i].nobias) continue;
        n = 99; /* must become 0 */
        p = grads ? nn_layer_bias_grads(m, i, &n) : nn_layer_bias(m, i, &n);
        TT_CHECK(p == NULL && n == 0, "%s [%s%s]: layer %d (%s, no bias): nn_layer_bias%s gives %p, count %lu",
                 c->name, r->backend, r->variant, i, c->L[i].kind, grads ? "_grads" : "", (const void *)p,
                 (unsigned long)n);
        if (grads) continue;
        TT_CHECK(!b && !or_getf(c, "gb.%d", i, 0), "%s: layer %d has no bias, yet the fixture holds b.%d or gb.%d",
                 c->name, i, i, i);
        for (k = 1; k <= c->steps; k++)
            TT_CHECK(!or_getf(c, "ub.%d@%d", i, k), "%s: layer %d has no bias, yet the fixture holds ub.%d@%d",
                     c->name, i, i, k);
    }
    if (!grads)
        TT_CHECK(nn_model_num_params(m) == want, "%s [%s%s]: nn_model_num_params %lu, the fixture's w and b %lu",
                 c->name, r->backend, r->variant, (unsigned long)nn_model_num_params(m), (unsigned long)want);
}

/* inference on a fresh model: nn_input_gradient (or nn_forward for token
 * ids) against eval.dx and eval.out */
static void or_eval(const or_run_ctx *r, int im2col) {
    const or_case *c = r->c;
    char err[400];
    nn_model *m = or_build(c, im2col, err, sizeof err);
    const or_tensor *x = or_get(c, "x"), *y = or_get(c, "y"), *edx = or_get(c, "eval.dx");
    size_t nin = (size_t)c->batch * or_shape_size(c->input), nout;
    if (!TT_CHECK(m != NULL, "%s [%s%s]: %s", c->name, r->backend, r->variant, err)) return;
    nout = (size_t)c->batch * or_shape_size(nn_model_output_shape(m));
    or_check_nobias(r, m, 0);
    if (!TT_CHECK(x && y && x->n == nin, "%s: x and y in the fixture, x of %lu floats", c->name,
                  (unsigned long)nin)) {
        nn_model_free(m);
        return;
    }
    if (edx) {
        float *dx = (float *)malloc(nin * sizeof(float));
        nn_status s = nn_input_gradient(m, x->v, y->v, c->batch, dx);
        if (TT_CHECK(s == NN_OK, "%s [%s%s]: nn_input_gradient: %s", c->name, r->backend, r->variant,
                     nn_model_error(m))) {
            or_cmp_t(r, "eval.dx", dx, nin);
            or_cmp_t(r, "eval.out", nn_output(m), nout);
        }
        free(dx);
    } else if (TT_CHECK(nn_forward(m, x->v, c->batch, 0) == NN_OK, "%s [%s%s]: nn_forward: %s", c->name,
                        r->backend, r->variant, nn_model_error(m))) {
        or_cmp_t(r, "eval.out", nn_output(m), nout);
    }
    nn_model_free(m);
}

/* Layer i after step k: its weights and bias against the reference's
 * (before + the fixture's update, in double), and nn.h's update (after -
 * before, exact in float) against the fixture's within 1e-4 of the layer's
 * largest update plus one float32 rounding of its largest parameter.
 * gotp / refp: the parameters before the step, updated here; tmp: 4 x most
 * floats. */
static void or_after(const or_run_ctx *r, nn_model *m, int i, int k, float *gotp[2], double *refp[2], float *tmp,
                     size_t most) {
    const or_case *c = r->c;
    const float *w[2];
    const or_tensor *u[2];
    float *ra[2], *gu[2];
    size_t n[2], e;
    double sa = 0.0, su = 0.0, wmax = 0.0;
    char name[48];
    int j;
    for (j = 0; j < 2; j++) {
        w[j] = j ? nn_layer_bias(m, i, &n[j]) : nn_layer_weights(m, i, &n[j]);
        u[j] = or_getf(c, j ? "ub.%d@%d" : "uw.%d@%d", i, k);
        ra[j] = tmp + (size_t)(2 * j) * most;
        gu[j] = ra[j] + most;
        if (!n[j]) continue;
        if (!TT_CHECK(u[j] && u[j]->n == n[j], "%s: no update %s.%d@%d of %lu floats in the fixture", c->name,
                      j ? "ub" : "uw", i, k, (unsigned long)n[j])) {
            n[j] = 0;
            continue;
        }
        for (e = 0; e < n[j]; e++) {
            refp[j][e] += (double)u[j]->v[e];
            ra[j][e] = (float)refp[j][e];
            gu[j][e] = w[j][e] - gotp[j][e]; /* exact: two close float32 */
            if (fabs((double)w[j][e]) > wmax) wmax = fabs((double)w[j][e]);
        }
        sa = fmax(sa, or_maxabs(ra[j], n[j]));
        su = fmax(su, or_maxabs(u[j]->v, n[j]));
    }
    for (j = 0; j < 2; j++) {
        if (!n[j]) continue;
        snprintf(name, sizeof name, "%c.%d@%d", j ? 'b' : 'w', i, k);
        or_cmp(r, name, w[j], n[j], ra[j], n[j], sa, 0.0);
        snprintf(name, sizeof name, "u%c.%d@%d (update)", j ? 'b' : 'w', i, k);
        or_cmp(r, name, gu[j], n[j], u[j]->v, n[j], su, wmax * 1.2e-7);
        memcpy(gotp[j], w[j], n[j] * sizeof(float));
    }
}

/* training: forward, loss, gradients, then the parameters and buffers
 * after each step; the update (after - before) too, against the fixture's,
 * within 1e-4 of its largest magnitude plus one float32 rounding of the
 * parameter */
static void or_train(const or_run_ctx *r, int im2col) {
    const or_case *c = r->c;
    char err[400], name[48];
    nn_model *m = or_build(c, im2col, err, sizeof err);
    const or_tensor *x = or_get(c, "x"), *y = or_get(c, "y");
    double *refp[OR_MAX_LAYERS][2];
    float *gotp[OR_MAX_LAYERS][2], *tmp = NULL;
    size_t np[OR_MAX_LAYERS][2], nout, most = 1;
    int i, j, k;
    if (!TT_CHECK(m != NULL, "%s [%s%s]: %s", c->name, r->backend, r->variant, err)) return;
    if (!x || !y) { /* or_eval said so */
        nn_model_free(m);
        return;
    }
    nout = (size_t)c->batch * or_shape_size(nn_model_output_shape(m));
    /* the parameters before each step: nn.h's own and the reference's (double) */
    for (i = 0; i < c->nl; i++)
        for (j = 0; j < 2; j++) {
            const float *w = j ? nn_layer_bias(m, i, &np[i][j]) : nn_layer_weights(m, i, &np[i][j]);
            size_t e;
            gotp[i][j] = (float *)malloc((np[i][j] + 1) * sizeof(float));
            refp[i][j] = (double *)malloc((np[i][j] + 1) * sizeof(double));
            for (e = 0; e < np[i][j]; e++) gotp[i][j][e] = w[e], refp[i][j][e] = w[e];
            if (np[i][j] > most) most = np[i][j];
        }
    tmp = (float *)malloc(4 * most * sizeof(float));
    for (k = 1; k <= c->steps; k++) {
        float loss = NAN;
        if (!TT_CHECK(nn_forward(m, x->v, c->batch, 1) == NN_OK, "%s [%s%s]: nn_forward (training): %s",
                      c->name, r->backend, r->variant, nn_model_error(m)))
            break;
        if (k == 1) or_cmp_t(r, "out", nn_output(m), nout);
        if (!TT_CHECK(nn_backward(m, y->v, &loss, NULL) == NN_OK, "%s [%s%s]: nn_backward: %s", c->name,
                      r->backend, r->variant, nn_model_error(m)))
            break;
        snprintf(name, sizeof name, "loss.%d", k);
        or_cmp_t(r, name, &loss, 1);
        if (k == 1) or_check_nobias(r, m, 1);
        if (k == 1)
            for (i = 0; i < c->nl; i++) {
                size_t n;
                const float *g = nn_layer_weight_grads(m, i, &n);
                if (n) or_cmp_wb(r, "g", i, 0, 0, g, n);
                g = nn_layer_bias_grads(m, i, &n);
                if (n) or_cmp_wb(r, "g", i, 0, 1, g, n);
            }
        if (!TT_CHECK(nn_step(m) == NN_OK, "%s [%s%s]: nn_step: %s", c->name, r->backend, r->variant,
                      nn_model_error(m)))
            break;
        for (i = 0; i < c->nl; i++) {
            size_t n;
            const float *s = nn_layer_buffers(m, i, &n);
            if (n) {
                snprintf(name, sizeof name, "s.%d@%d", i, k);
                or_cmp_t(r, name, s, n);
            }
            or_after(r, m, i, k, gotp[i], refp[i], tmp, most);
        }
    }
    for (i = 0; i < c->nl; i++)
        for (j = 0; j < 2; j++) {
            free(gotp[i][j]);
            free(refp[i][j]);
        }
    free(tmp);
    nn_model_free(m);
}

static const char *or_dirs[] = {"tests/fixtures/oracle", "../tests/fixtures/oracle"};

void test_oracle(void) {
    char path[512], err[400], *index = NULL, *p, *t;
    const char *dir = NULL;
    or_case *cases = NULL;
    int ncases = 0, cap = 0, b, i, v;
    size_t d;
    double t0 = nn_time_seconds();
    tt_ctx("oracle");
    or_worst_ratio = 0.0;
    or_worst_where[0] = 0;
    for (d = 0; d < sizeof or_dirs / sizeof or_dirs[0] && !index; d++) {
        snprintf(path, sizeof path, "%s/INDEX", or_dirs[d]);
        if ((index = or_slurp(path)) != NULL) dir = or_dirs[d];
    }
    if (!TT_CHECK(index != NULL, "tests/fixtures/oracle/INDEX not found: run the tests from the repository root"))
        return;
    p = index;
    while ((t = or_tok(&p)) != NULL) {
        char *text;
        if (ncases == cap) {
            or_case *nc;
            cap = cap ? 2 * cap : 32;
            nc = (or_case *)realloc(cases, (size_t)cap * sizeof(or_case));
            if (!nc) break;
            cases = nc;
        }
        snprintf(path, sizeof path, "%s/%s.txt", dir, t);
        text = or_slurp(path);
        if (!TT_CHECK(text != NULL, "cannot read %s", path)) continue;
        if (TT_CHECK(or_parse(text, &cases[ncases], err, sizeof err), "%s: %s", path, err) &&
            TT_CHECK(strcmp(cases[ncases].name, t) == 0, "%s holds case %s", path, cases[ncases].name))
            ncases++;
        else
            or_free(&cases[ncases]);
        free(text);
    }
    free(index);
    TT_CHECK(ncases >= 79, "%d cases in tests/fixtures/oracle (expected 79 or more)", ncases);
    for (b = 0; b < TT_NBACKENDS; b++) {
        if (!tt_use_backend("oracle", tt_backends[b])) continue;
        for (i = 0; i < ncases; i++)
            for (v = 0; v <= cases[i].im2col_too; v++) {
                or_run_ctx r;
                r.c = &cases[i];
                r.backend = nn_backend_name(tt_backends[b]);
                r.variant = v ? ", convs on im2col" : "";
                tt_ctx("oracle[%s] %s%s", r.backend, cases[i].name, r.variant);
                or_eval(&r, v);
                if (cases[i].steps > 0) or_train(&r, v);
            }
    }
    tt_set_backend(NN_BACKEND_AUTO);
    tt_info("oracle: %d PyTorch cases on every available backend in %.2f s; the largest error is %.2g of "
            "its tolerance (%s)",
            ncases, nn_time_seconds() - t0, or_worst_ratio, or_worst_where);
    for (i = 0; i < ncases; i++) or_free(&cases[i]);
    free(cases);
}
