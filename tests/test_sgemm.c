/* nn_sgemm / nn_sgemm_ws against a double-precision triple loop, on every
 * backend, all four (transa, transb), alpha in {1, 0.5, -2, 0}, beta in
 * {0, 1, 0.3}.  The padding of A and B (leading dimension > minimum) holds
 * NaN, so reading it shows up in C; the padding of C holds guard values
 * that must stay untouched; beta == 0 runs with C prefilled with NaN.
 * Tolerance: (k+3) eps |alpha| sum_p |a_ip||b_pj| + 3 eps |beta c_ij|. */
#include "nn.h"
#include "tt.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS ((double)FLT_EPSILON)

typedef struct {
    int m, n, k;
} shape;

static const shape shapes[] = {
    {1, 1, 1},     {1, 17, 3},    {13, 33, 7},  {17, 1, 5},   {31, 65, 129},
    {100, 37, 300}, {200, 40, 270}, /* > MC of every backend and > KC */
    {70, 2100, 40}, /* n > NC = 2048 */
    /* one tile, n == NR, k > KC: B read in place, K unsliced (per backend NR) */
    {9, 32, 700},   {12, 32, 1100}, {5, 16, 600}, {4, 12, 530}, {3, 8, 300},
#ifndef NN_TEST_SMALL
    {300, 70, 600}, /* dropped under qemu (NN_TEST_SMALL) */
#endif
};
static const shape ws_shapes[] = {{13, 33, 7}, {200, 40, 270}, {70, 2100, 40}, {9, 32, 700}, {5, 16, 600}};

static float fnan(void) { return (float)NAN; }
static const float guard_val = -777.25f;

/* logical X (rows x cols) stored as X (trans 0) or X^T (trans 1) with
 * leading dimension ld; padding is NaN */
static float *store(const float *x, int rows, int cols, int trans, int ld) {
    int prow = trans ? cols : rows, pcol = trans ? rows : cols, i, j;
    size_t total = (size_t)prow * ld;
    float *p = tt_xalloc(total ? total : 1);
    for (i = 0; i < (int)total; i++) p[i] = fnan();
    for (i = 0; i < prow; i++)
        for (j = 0; j < pcol; j++) p[(size_t)i * ld + j] = trans ? x[(size_t)j * cols + i] : x[(size_t)i * cols + j];
    return p;
}

/* one check for C (m x n, ldc) against ref with per-element tol, one for the padding */
static void check_c(const char *what, const float *c, int m, int n, int ldc, const double *ref, const double *tol) {
    long bad = 0, padbad = 0;
    int i, j, fi = 0, fj = 0;
    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            double g = c[(size_t)i * ldc + j], r = ref[(size_t)i * n + j];
            if (!(fabs(g - r) <= tol[(size_t)i * n + j])) {
                if (!bad) {
                    fi = i;
                    fj = j;
                }
                bad++;
            }
        }
        for (j = n; j < ldc; j++) padbad += memcmp(&c[(size_t)i * ldc + j], &guard_val, sizeof(float)) != 0;
    }
    if (bad)
        TT_CHECK(0, "%s: %ld of %d elements wrong; first C[%d][%d] = %.9g, expected %.9g (tol %.3g)", what, bad, m * n,
                 fi, fj, (double)c[(size_t)fi * ldc + fj], ref[(size_t)fi * n + fj], tol[(size_t)fi * n + fj]);
    else
        TT_CHECK(1, "%s", what);
    TT_CHECK(padbad == 0, "%s: %ld floats of C's padding (columns n..ldc-1) were written", what, padbad);
}

static void run_shape(nn_backend b, const shape *sh, unsigned seed) {
    static const float alphas[] = {1.0f, 0.5f, -2.0f, 0.0f}, betas[] = {0.0f, 1.0f, 0.3f};
    int m = sh->m, n = sh->n, k = sh->k, ta, tb, ai, bi, i, j, p, combo = 0;
    float *A = (float *)malloc(sizeof(float) * (size_t)m * k + 4), *B = (float *)malloc(sizeof(float) * (size_t)k * n + 4);
    float *C0 = (float *)malloc(sizeof(float) * (size_t)m * n);
    double *P = (double *)malloc(sizeof(double) * (size_t)m * n), *S = (double *)malloc(sizeof(double) * (size_t)m * n);
    double *ref = (double *)malloc(sizeof(double) * (size_t)m * n), *tol = (double *)malloc(sizeof(double) * (size_t)m * n);
    nn_rng r;
    nn_rng_seed(&r, seed);
    tt_fill_normal(&r, A, (size_t)m * k, 1.0f);
    tt_fill_normal(&r, B, (size_t)k * n, 1.0f);
    tt_fill_normal(&r, C0, (size_t)m * n, 1.0f);
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            double s = 0, sa = 0;
            for (p = 0; p < k; p++) {
                double t = (double)A[(size_t)i * k + p] * B[(size_t)p * n + j];
                s += t;
                sa += fabs(t);
            }
            P[(size_t)i * n + j] = s;
            S[(size_t)i * n + j] = sa;
        }
    for (ta = 0; ta <= 1; ta++)
        for (tb = 0; tb <= 1; tb++)
            for (ai = 0; ai < 4; ai++)
                for (bi = 0; bi < 3; bi++, combo++) {
                    int pad = combo & 1;
                    int lda = (ta ? m : k) + (pad ? 3 : 0), ldb = (tb ? k : n) + (pad ? 5 : 0), ldc = n + (pad ? 7 : 0);
                    float alpha = alphas[ai], beta = betas[bi];
                    float *a, *bb, *c;
                    nn_status st;
                    if (lda < 1) lda = 1;
                    if (ldb < 1) ldb = 1;
                    a = store(A, m, k, ta, lda);
                    bb = store(B, k, n, tb, ldb);
                    c = tt_galloc((size_t)m * ldc);
                    for (i = 0; i < m; i++)
                        for (j = 0; j < ldc; j++)
                            c[(size_t)i * ldc + j] = j >= n ? guard_val : beta == 0.0f ? fnan() : C0[(size_t)i * n + j];
                    for (i = 0; i < m * n; i++) {
                        double bc = beta == 0.0f ? 0.0 : (double)beta * C0[i];
                        ref[i] = (double)alpha * P[i] + bc;
                        tol[i] = (double)(k + 3) * EPS * fabs(alpha) * S[i] + 3 * EPS * fabs(bc) + 1e-30;
                    }
                    tt_ctx("sgemm[%s] %dx%dx%d transa=%d transb=%d alpha=%g beta=%g lda=%d ldb=%d ldc=%d",
                           nn_backend_name(b), m, n, k, ta, tb, (double)alpha, (double)beta, lda, ldb, ldc);
                    st = nn_sgemm(ta, tb, m, n, k, alpha, a, lda, bb, ldb, beta, c, ldc);
                    if (TT_CHECK(st == NN_OK, "nn_sgemm returned %d", (int)st)) check_c("C", c, m, n, ldc, ref, tol);
                    TT_GUARDS_OK(c);
                    tt_xfree(a);
                    tt_xfree(bb);
                    tt_gfree(c);
                }
    free(A);
    free(B);
    free(C0);
    free(P);
    free(S);
    free(ref);
    free(tol);
}

/* nn_sgemm_ws with exactly nn_sgemm_ws_size bytes at offsets 0, +1, +4 */
static void run_ws(nn_backend b, const shape *sh, unsigned seed) {
    static const size_t offs[] = {0, 4, 1};
    int m = sh->m, n = sh->n, k = sh->k, i, p, j;
    size_t o, bytes = nn_sgemm_ws_size(m, n, k);
    float *A = tt_xalloc((size_t)m * k), *B = tt_xalloc((size_t)k * n), *c = tt_galloc((size_t)m * n);
    double *ref = (double *)malloc(sizeof(double) * (size_t)m * n), *tol = (double *)malloc(sizeof(double) * (size_t)m * n);
    const float alpha = 1.5f, beta = 0.5f;
    nn_rng r;
    nn_rng_seed(&r, seed);
    tt_fill_normal(&r, A, (size_t)m * k, 1.0f);
    tt_fill_normal(&r, B, (size_t)k * n, 1.0f);
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            double s = 0, sa = 0;
            for (p = 0; p < k; p++) {
                double t = (double)A[(size_t)i * k + p] * B[(size_t)p * n + j];
                s += t;
                sa += fabs(t);
            }
            ref[(size_t)i * n + j] = alpha * s + beta * 2.0;
            tol[(size_t)i * n + j] = (double)(k + 3) * EPS * alpha * sa + 3 * EPS * 1.0 + 1e-30;
        }
    TT_CHECK(bytes > 0, "nn_sgemm_ws_size(%d,%d,%d) = 0", m, n, k);
    for (o = 0; o < sizeof offs / sizeof offs[0]; o++) {
        unsigned char *raw = (unsigned char *)malloc(bytes + offs[o]);
        nn_status st;
        tt_ctx("sgemm_ws[%s] %dx%dx%d workspace of exactly %lu bytes at malloc+%lu", nn_backend_name(b), m, n, k,
               (unsigned long)bytes, (unsigned long)offs[o]);
        for (i = 0; i < m * n; i++) c[i] = 2.0f;
        st = nn_sgemm_ws(0, 0, m, n, k, alpha, A, k, B, n, beta, c, n, raw + offs[o]);
        if (TT_CHECK(st == NN_OK, "nn_sgemm_ws returned %d", (int)st)) check_c("C", c, m, n, n, ref, tol);
        TT_GUARDS_OK(c);
        free(raw);
    }
    tt_xfree(A);
    tt_xfree(B);
    tt_gfree(c);
    free(ref);
    free(tol);
}

static void run_degenerate(nn_backend b) {
    float a[64], bm[64], c[64];
    int i, ok;
    for (i = 0; i < 64; i++) {
        a[i] = 1.0f;
        bm[i] = 1.0f;
    }
    /* k == 0: C = beta*C (beta 0: zeros even over NaN) */
    {
        static const float betas[] = {0.0f, 1.0f, 0.3f};
        int bi;
        for (bi = 0; bi < 3; bi++) {
            tt_ctx("sgemm[%s] k=0 beta=%g", nn_backend_name(b), (double)betas[bi]);
            for (i = 0; i < 35; i++) c[i] = betas[bi] == 0.0f ? fnan() : (float)(i + 1);
            TT_EQ_INT(nn_sgemm(0, 0, 5, 7, 0, 1.0f, a, 1, bm, 7, betas[bi], c, 7), NN_OK);
            ok = 1;
            for (i = 0; i < 35; i++) ok &= c[i] == (betas[bi] == 0.0f ? 0.0f : betas[bi] * (float)(i + 1));
            TT_CHECK(ok, "k=0 must give C = beta*C; C[0] = %g", (double)c[0]);
            /* A and B are not used when k == 0: NULL is fine */
            for (i = 0; i < 35; i++) c[i] = 2.0f;
            TT_EQ_INT(nn_sgemm(1, 1, 5, 7, 0, 1.0f, NULL, 5, NULL, 1, betas[bi], c, 7), NN_OK);
            ok = 1;
            for (i = 0; i < 35; i++) ok &= c[i] == betas[bi] * 2.0f;
            TT_CHECK(ok, "k=0 with NULL A, B must give C = beta*C; C[0] = %g", (double)c[0]);
            for (i = 0; i < 35; i++) c[i] = 2.0f;
            TT_EQ_INT(nn_sgemm_ws(0, 0, 5, 7, 0, 1.0f, a, 1, bm, 7, betas[bi], c, 7, NULL), NN_OK);
            ok = 1;
            for (i = 0; i < 35; i++) ok &= c[i] == betas[bi] * 2.0f;
            TT_CHECK(ok, "nn_sgemm_ws k=0 with NULL workspace must give C = beta*C");
        }
    }
    /* m == 0 or n == 0: nothing written */
    tt_ctx("sgemm[%s] m=0 / n=0", nn_backend_name(b));
    for (i = 0; i < 64; i++) c[i] = guard_val;
    TT_EQ_INT(nn_sgemm(0, 0, 0, 5, 3, 1.0f, a, 3, bm, 5, 0.0f, c, 5), NN_OK);
    TT_EQ_INT(nn_sgemm(0, 0, 4, 0, 3, 1.0f, a, 3, bm, 1, 0.0f, c, 1), NN_OK);
    TT_EQ_INT(nn_sgemm(0, 0, 0, 0, 0, 1.0f, a, 1, bm, 1, 0.0f, c, 1), NN_OK);
    TT_EQ_INT(nn_sgemm(0, 0, 0, 5, 3, 1.0f, a, 3, bm, 5, 0.0f, NULL, 5), NN_OK);
    ok = 1;
    for (i = 0; i < 64; i++) ok &= memcmp(&c[i], &guard_val, sizeof(float)) == 0;
    TT_CHECK(ok, "m=0 or n=0 must not write C");
    /* alpha == 0: C = beta*C, A and B need not be read (BLAS) */
    tt_ctx("sgemm[%s] alpha=0 with NaN in A and B", nn_backend_name(b));
    for (i = 0; i < 64; i++) {
        a[i] = fnan();
        bm[i] = fnan();
        c[i] = 4.0f;
    }
    TT_EQ_INT(nn_sgemm(0, 0, 3, 4, 5, 0.0f, a, 5, bm, 4, 0.5f, c, 4), NN_OK);
    ok = 1;
    for (i = 0; i < 12; i++) ok &= c[i] == 2.0f;
    TT_CHECK(ok, "alpha=0: C must be beta*C without touching A, B; C[0] = %g", (double)c[0]);
}

static void run_bad_args(void) {
    float a[64], bm[64], c[64], ws[256];
    int i, ok;
    struct {
        const char *what;
        int ta, tb, m, n, k, lda, ldb, ldc, na, nb, nc;
    } cases[] = {
        {"m < 0", 0, 0, -1, 4, 3, 3, 4, 4, 0, 0, 0},
        {"n < 0", 0, 0, 2, -1, 3, 3, 4, 4, 0, 0, 0},
        {"k < 0", 0, 0, 2, 4, -1, 3, 4, 4, 0, 0, 0},
        {"lda < k (transa=0)", 0, 0, 2, 4, 3, 2, 4, 4, 0, 0, 0},
        {"lda < m (transa=1)", 1, 0, 5, 4, 3, 4, 4, 4, 0, 0, 0},
        {"ldb < n (transb=0)", 0, 0, 2, 4, 3, 3, 3, 4, 0, 0, 0},
        {"ldb < k (transb=1)", 0, 1, 2, 4, 3, 3, 2, 4, 0, 0, 0},
        {"ldc < n", 0, 0, 2, 4, 3, 3, 4, 3, 0, 0, 0},
        {"lda = 0 with k = 0", 0, 0, 2, 4, 0, 0, 4, 4, 0, 0, 0},
        {"ldc = 0", 0, 0, 2, 4, 3, 3, 4, 0, 0, 0, 0},
        {"negative lda", 0, 0, 2, 4, 3, -3, 4, 4, 0, 0, 0},
        {"transa = 2", 2, 0, 2, 4, 3, 3, 4, 4, 0, 0, 0},
        {"transb = 2", 0, 2, 2, 4, 3, 3, 4, 4, 0, 0, 0},
        {"transa = -1", -1, 0, 2, 4, 3, 3, 4, 4, 0, 0, 0},
        {"A == NULL", 0, 0, 2, 4, 3, 3, 4, 4, 1, 0, 0},
        {"B == NULL", 0, 0, 2, 4, 3, 3, 4, 4, 0, 1, 0},
        {"C == NULL", 0, 0, 2, 4, 3, 3, 4, 4, 0, 0, 1},
    };
    size_t t;
    tt_set_backend(NN_BACKEND_SCALAR);
    for (i = 0; i < 64; i++) {
        a[i] = 1.0f;
        bm[i] = 1.0f;
    }
    for (t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        nn_status s1, s2;
        tt_ctx("sgemm bad arguments: %s", cases[t].what);
        for (i = 0; i < 64; i++) c[i] = guard_val;
        s1 = nn_sgemm(cases[t].ta, cases[t].tb, cases[t].m, cases[t].n, cases[t].k, 1.0f, cases[t].na ? NULL : a,
                      cases[t].lda, cases[t].nb ? NULL : bm, cases[t].ldb, 0.0f, cases[t].nc ? NULL : c, cases[t].ldc);
        s2 = nn_sgemm_ws(cases[t].ta, cases[t].tb, cases[t].m, cases[t].n, cases[t].k, 1.0f, cases[t].na ? NULL : a,
                         cases[t].lda, cases[t].nb ? NULL : bm, cases[t].ldb, 0.0f, cases[t].nc ? NULL : c,
                         cases[t].ldc, ws);
        TT_CHECK(s1 == NN_ERR_INVALID_ARGUMENT, "nn_sgemm returned %d, expected NN_ERR_INVALID_ARGUMENT", (int)s1);
        TT_CHECK(s2 == NN_ERR_INVALID_ARGUMENT, "nn_sgemm_ws returned %d, expected NN_ERR_INVALID_ARGUMENT", (int)s2);
        ok = 1;
        for (i = 0; i < 64; i++) ok &= memcmp(&c[i], &guard_val, sizeof(float)) == 0;
        TT_CHECK(ok, "C written despite the error");
    }
    tt_ctx("sgemm_ws bad arguments: workspace == NULL");
    TT_EQ_INT(nn_sgemm_ws(0, 0, 2, 4, 3, 1.0f, a, 3, bm, 4, 0.0f, c, 4, NULL), NN_ERR_INVALID_ARGUMENT);
}

void test_sgemm(void) {
    const nn_backend *all = tt_backends; /* NN_BACKEND_LIST, scalar first */
    size_t bi, s;
    for (bi = 0; bi < (size_t)TT_NBACKENDS; bi++) {
        nn_backend b = all[bi];
        if (!tt_use_backend("sgemm", b)) continue;
        for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            tt_set_backend(b);
            run_shape(b, &shapes[s], 300 + (unsigned)s);
        }
        for (s = 0; s < sizeof ws_shapes / sizeof ws_shapes[0]; s++) run_ws(b, &ws_shapes[s], 400 + (unsigned)s);
        run_degenerate(b);
    }
    run_bad_args();
}
