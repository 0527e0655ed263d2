/* Vector kernels, softmax, max-pool and optimizer updates.
 *
 * 1. Semantics on every backend (scalar included): hand-computed values,
 *    NaN/inf rules, softmax of huge values, max-pool tie placement.
 * 2. Every non-scalar backend against the scalar one on seeded random data
 *    at sizes 0..1000, with misaligned pointers, guard floats around every
 *    output, inputs allocated to their exact size (ASan sees over-reads) and
 *    in-place calls compared with out-of-place ones. */
#include "nn.h"
#include "tt.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define EPS ((double)FLT_EPSILON)

static const size_t sizes[] = {0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 255, 1000};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static float fnan(void) { return (float)NAN; }

/* ======================================================================== */
/* 1. semantics                                                              */
/* ======================================================================== */

static void sem_elementwise(void) {
    enum { N = 37 };
    float a[N], b[N], y[N], r[N];
    int i;
    for (i = 0; i < N; i++) {
        a[i] = (float)(i + 1);
        b[i] = (float)(2 * i);
    }
    nn_vadd(N, a, b, y);
    for (i = 0; i < N; i++) r[i] = (float)(3 * i + 1);
    TT_SAME_ARR("vadd 1..37 + 2i", y, r, N);
    nn_vsub(N, a, b, y);
    for (i = 0; i < N; i++) r[i] = (float)(1 - i);
    TT_SAME_ARR("vsub", y, r, N);
    nn_vmul(N, a, b, y);
    for (i = 0; i < N; i++) r[i] = (float)((i + 1) * 2 * i);
    TT_SAME_ARR("vmul", y, r, N);
    nn_vscale(N, -0.5f, a, y);
    for (i = 0; i < N; i++) r[i] = -0.5f * (float)(i + 1);
    TT_SAME_ARR("vscale", y, r, N);
    memcpy(y, b, sizeof y);
    nn_vaxpy(N, 3.0f, a, y);
    for (i = 0; i < N; i++) r[i] = (float)(2 * i + 3 * (i + 1));
    TT_SAME_ARR("vaxpy", y, r, N);
    memcpy(y, a, sizeof y);
    nn_vadd(N, y, y, y);
    for (i = 0; i < N; i++) r[i] = (float)(2 * (i + 1));
    TT_SAME_ARR("vadd in place y=y+y", y, r, N);
}

static void sem_reductions(void) {
    static float a[1000], ones[1000];
    size_t k;
    int i;
    for (i = 0; i < 1000; i++) {
        a[i] = (float)(i + 1);
        ones[i] = 1.0f;
    }
    /* integer sums below 2^24 are exact in any order */
    for (k = 0; k < NSIZES; k++) {
        size_t n = sizes[k];
        float want = (float)(n * (n + 1) / 2);
        TT_CHECK(nn_vdot(n, a, ones) == want, "vdot(1..%lu, 1) = %.9g, expected %.9g", (unsigned long)n,
                 (double)nn_vdot(n, a, ones), (double)want);
        TT_CHECK(nn_vsum(n, a) == want, "vsum(1..%lu) = %.9g, expected %.9g", (unsigned long)n,
                 (double)nn_vsum(n, a), (double)want);
    }
    TT_CHECK(nn_vdot(0, NULL, NULL) == 0.0f, "vdot(0) must be 0");
    TT_CHECK(nn_vsum(0, NULL) == 0.0f, "vsum(0) must be 0");
    TT_CHECK(nn_vmax(0, a) == -INFINITY, "vmax(0 elements) = %g, expected -inf", (double)nn_vmax(0, a));

    /* NaN anywhere wins, in the vector body and in the tail */
    {
        static float x[300];
        size_t ns[] = {1, 5, 16, 17, 37, 64, 65, 255};
        size_t t, p;
        for (t = 0; t < sizeof ns / sizeof ns[0]; t++) {
            size_t n = ns[t];
            int allnan = 1, maxok = 1;
            for (p = 0; p < n; p++) {
                for (i = 0; i < (int)n; i++) x[i] = (float)i - 100.0f;
                x[p] = fnan();
                allnan &= tt_is_nan(nn_vmax(n, x));
                /* max placed at p (body or tail) */
                x[p] = 1000.0f;
                maxok &= nn_vmax(n, x) == 1000.0f;
            }
            TT_CHECK(allnan, "vmax of %lu elements with one NaN must be NaN at every position", (unsigned long)n);
            TT_CHECK(maxok, "vmax of %lu negative elements misses the max at some position", (unsigned long)n);
            for (i = 0; i < (int)n; i++) x[i] = -INFINITY;
            TT_CHECK(nn_vmax(n, x) == -INFINITY, "vmax of %lu x -inf", (unsigned long)n);
            for (i = 0; i < (int)n; i++) x[i] = -1e30f - (float)i;
            TT_CHECK(nn_vmax(n, x) == -1e30f, "vmax of all-negative %lu = %g", (unsigned long)n,
                     (double)nn_vmax(n, x));
        }
    }
}

static void sem_activations(void) {
    float x[12] = {0, -0.0f, 1, -1, 0, 0, 0, 0, 0, 0, 0, 0}, y[12];
    x[4] = fnan();
    x[5] = INFINITY;
    x[6] = -INFINITY;
    x[7] = 2.5f;
    x[8] = -2.5f;
    x[9] = 1e-40f; /* subnormal */
    x[10] = 1000.0f;
    x[11] = -1000.0f;

    nn_vrelu(12, x, y);
    TT_CHECK(y[0] == 0 && y[1] == 0 && y[2] == 1 && y[3] == 0 && tt_is_nan(y[4]) && y[5] == INFINITY && y[6] == 0 &&
                 y[7] == 2.5f && y[8] == 0 && y[9] == 1e-40f && y[10] == 1000 && y[11] == 0,
             "vrelu specials: %g %g %g %g %g %g %g", (double)y[0], (double)y[3], (double)y[4], (double)y[5],
             (double)y[6], (double)y[8], (double)y[11]);
    {
        /* NaN at every position of a 37-vector survives relu */
        float v[37], o[37];
        int p, i, ok = 1;
        for (p = 0; p < 37; p++) {
            for (i = 0; i < 37; i++) v[i] = (float)(i - 18);
            v[p] = fnan();
            nn_vrelu(37, v, o);
            ok &= tt_is_nan(o[p]);
            for (i = 0; i < 37; i++)
                if (i != p) ok &= o[i] == (i < 18 ? 0.0f : (float)(i - 18));
        }
        TT_CHECK(ok, "vrelu: NaN must stay NaN at every position, others max(x,0)");
    }

    nn_vexp(12, x, y);
    TT_CHECK(y[0] == 1.0f && y[1] == 1.0f, "exp(+-0) = %.9g %.9g, expected 1", (double)y[0], (double)y[1]);
    TT_CHECK(tt_is_nan(y[4]), "exp(NaN) = %g", (double)y[4]);
    TT_CHECK(y[5] == INFINITY, "exp(inf) = %g", (double)y[5]);
    TT_CHECK(y[6] == 0.0f, "exp(-inf) = %g", (double)y[6]);
    TT_CHECK(y[9] == 1.0f, "exp(1e-40) = %.9g", (double)y[9]);
    TT_CHECK(y[10] == INFINITY, "exp(1000) = %g", (double)y[10]);
    TT_CHECK(y[11] == 0.0f, "exp(-1000) = %g", (double)y[11]);
    TT_CLOSE(y[2], 2.718281828459045, 3e-7);
    TT_CLOSE(y[3], 0.36787944117144233, 3e-7);

    nn_vsigmoid(12, x, y);
    TT_CHECK(y[0] == 0.5f && y[1] == 0.5f, "sigmoid(+-0) = %.9g %.9g", (double)y[0], (double)y[1]);
    TT_CHECK(tt_is_nan(y[4]), "sigmoid(NaN) = %g", (double)y[4]);
    TT_CHECK(y[5] == 1.0f, "sigmoid(inf) = %.9g", (double)y[5]);
    TT_CHECK(y[6] == 0.0f, "sigmoid(-inf) = %g", (double)y[6]);
    TT_CHECK(y[10] == 1.0f, "sigmoid(1000) = %.9g", (double)y[10]);
    TT_CHECK(y[11] == 0.0f, "sigmoid(-1000) = %g", (double)y[11]);
    TT_CLOSE(y[2], 0.7310585786300049, 5e-7);
    TT_CLOSE(y[3], 0.2689414213699951, 5e-7);

    nn_vtanh(12, x, y);
    TT_CHECK(y[0] == 0.0f && y[1] == 0.0f, "tanh(+-0) = %g %g", (double)y[0], (double)y[1]);
    TT_CHECK(tt_is_nan(y[4]), "tanh(NaN) = %g", (double)y[4]);
    TT_CHECK(fabsf(y[5] - 1.0f) <= 3e-7f && y[5] <= 1.0f, "tanh(inf) = %.9g", (double)y[5]);
    TT_CHECK(fabsf(y[6] + 1.0f) <= 3e-7f && y[6] >= -1.0f, "tanh(-inf) = %.9g", (double)y[6]);
    TT_CHECK(y[9] == 1e-40f, "tanh(1e-40) = %g", (double)y[9]);
    TT_CLOSE_ABS(y[10], 1.0, 3e-7);
    TT_CLOSE_ABS(y[11], -1.0, 3e-7);
    TT_CLOSE(y[2], 0.7615941559557649, 4e-7);
    TT_CLOSE(y[3], -0.7615941559557649, 4e-7);

    {
        float yy[5] = {0, 1, 2, 0, 0.5f}, dy[5] = {5, 6, 7, 8, 1}, dx[5];
        yy[3] = -0.0f;
        nn_vrelu_backward(5, yy, dy, dx);
        TT_CHECK(dx[0] == 0 && dx[1] == 6 && dx[2] == 7 && dx[3] == 0 && dx[4] == 1, "relu_backward %g %g %g %g %g",
                 (double)dx[0], (double)dx[1], (double)dx[2], (double)dx[3], (double)dx[4]);
        nn_vsigmoid_backward(5, yy, dy, dx);
        TT_CHECK(dx[4] == 0.25f && dx[0] == 0 && dx[1] == 0, "sigmoid_backward(y=0.5, dy=1) = %g, expected 0.25",
                 (double)dx[4]);
        nn_vtanh_backward(5, yy, dy, dx);
        TT_CHECK(dx[4] == 0.75f && dx[0] == 5 && dx[1] == 0, "tanh_backward(y=0.5, dy=1) = %g, expected 0.75",
                 (double)dx[4]);
    }
}

static void sem_softmax(void) {
    float x[8], y[8];
    /* huge values: stable */
    x[0] = 1000.0f;
    x[1] = 1001.0f;
    nn_softmax_rows(1, 2, x, y);
    TT_CHECK(y[0] == y[0] && y[1] == y[1] && !isinf(y[0]) && !isinf(y[1]), "softmax(1000,1001) not finite: %g %g",
             (double)y[0], (double)y[1]);
    TT_CLOSE(y[0], 0.2689414213699951, 1e-6);
    TT_CLOSE(y[1], 0.7310585786300049, 1e-6);
    x[0] = -1000.0f;
    x[1] = -1001.0f;
    nn_softmax_rows(1, 2, x, y);
    TT_CLOSE(y[0], 0.7310585786300049, 1e-6);
    TT_CLOSE(y[1], 0.2689414213699951, 1e-6);
    /* -inf entries get probability 0 */
    x[0] = -INFINITY;
    x[1] = 0.0f;
    x[2] = -INFINITY;
    nn_softmax_rows(1, 3, x, y);
    TT_CHECK(y[0] == 0.0f && y[1] == 1.0f && y[2] == 0.0f, "softmax(-inf,0,-inf) = %g %g %g", (double)y[0],
             (double)y[1], (double)y[2]);
    /* one column: exactly 1 */
    x[0] = 3.0f;
    x[1] = -7.0f;
    x[2] = 1e30f;
    nn_softmax_rows(3, 1, x, y);
    TT_CHECK(y[0] == 1.0f && y[1] == 1.0f && y[2] == 1.0f, "softmax of 1-column rows = %g %g %g", (double)y[0],
             (double)y[1], (double)y[2]);
    /* equal entries: uniform */
    {
        float e[7] = {2, 2, 2, 2, 2, 2, 2}, o[7];
        int i, ok = 1;
        nn_softmax_rows(1, 7, e, o);
        for (i = 0; i < 7; i++) ok &= fabs(o[i] - 1.0 / 7) <= 2e-7;
        TT_CHECK(ok, "softmax of equal entries is not uniform (%.9g)", (double)o[0]);
    }
    /* rows of random data sum to 1 and match a double-precision softmax */
    {
        static const size_t cols[] = {1, 2, 3, 7, 8, 15, 16, 17, 33, 64, 65, 255, 1000};
        nn_rng r;
        size_t k, j;
        nn_rng_seed(&r, 7);
        for (k = 0; k < sizeof cols / sizeof cols[0]; k++) {
            size_t c = cols[k], rows = 3;
            float *xi = tt_xalloc(rows * c), *yo = tt_galloc(rows * c), *ref = tt_galloc(rows * c);
            int sumok = 1;
            tt_fill_normal(&r, xi, rows * c, 4.0f);
            for (j = 0; j < c; j++) xi[2 * c + j] += 500.0f; /* a shifted row */
            nn_softmax_rows(rows, c, xi, yo);
            {
                size_t rr;
                for (rr = 0; rr < rows; rr++) {
                    double mx = -INFINITY, s = 0, sy = 0;
                    for (j = 0; j < c; j++)
                        if (xi[rr * c + j] > mx) mx = xi[rr * c + j];
                    for (j = 0; j < c; j++) s += exp((double)xi[rr * c + j] - mx);
                    for (j = 0; j < c; j++) {
                        ref[rr * c + j] = (float)(exp((double)xi[rr * c + j] - mx) / s);
                        sy += yo[rr * c + j];
                    }
                    sumok &= fabs(sy - 1.0) <= 1e-6 + (double)c * EPS;
                }
            }
            TT_CHECK(sumok, "softmax rows (cols=%lu) do not sum to 1", (unsigned long)c);
            TT_CMP_ARR("softmax vs double reference", yo, ref, NULL, rows * c, 1e-6 + (double)c * EPS, 1e-30);
            TT_GUARDS_OK(yo);
            tt_xfree(xi);
            tt_gfree(yo);
            tt_gfree(ref);
        }
    }
    /* backward by hand: y=(0.25,0.75), dy=(1,0): s=0.25 */
    {
        float yy[2] = {0.25f, 0.75f}, dy[2] = {1, 0}, dx[2];
        nn_softmax_backward_rows(1, 2, yy, dy, dx);
        TT_CLOSE(dx[0], 0.1875, 1e-7);
        TT_CLOSE(dx[1], -0.1875, 1e-7);
    }
    /* constant dy gives zero gradient */
    {
        float yy[9], dy[9], dx[9];
        int i, ok = 1;
        for (i = 0; i < 9; i++) {
            yy[i] = 1.0f / 9.0f;
            dy[i] = 3.0f;
        }
        nn_softmax_backward_rows(1, 9, yy, dy, dx);
        for (i = 0; i < 9; i++) ok &= fabsf(dx[i]) <= 1e-6f;
        TT_CHECK(ok, "softmax backward of constant dy should be ~0, got %g", (double)dx[0]);
    }
}

static void sem_maxpool(void) {
    /* 1x4x4x1 with values 1..16: maxima 6 8 14 16 at the bottom-right */
    float x[16], y[4], dy[4] = {1, 2, 3, 4}, dx[16];
    int i, ok = 1;
    for (i = 0; i < 16; i++) x[i] = (float)(i + 1);
    nn_maxpool2x2(1, 4, 4, 1, x, y);
    TT_CHECK(y[0] == 6 && y[1] == 8 && y[2] == 14 && y[3] == 16, "maxpool 1..16 = %g %g %g %g", (double)y[0],
             (double)y[1], (double)y[2], (double)y[3]);
    nn_maxpool2x2_backward(1, 4, 4, 1, x, y, dy, dx);
    for (i = 0; i < 16; i++) {
        float want = i == 5 ? 1 : i == 7 ? 2 : i == 13 ? 3 : i == 15 ? 4 : 0;
        ok &= dx[i] == want;
    }
    TT_CHECK(ok, "maxpool backward 1..16 routes dy to the wrong places");
    /* ties: all four equal -> top-left; [0 5; 5 1] -> top-right; [0 1; 5 5] -> bottom-left */
    {
        float t[3][4] = {{2, 2, 2, 2}, {0, 5, 5, 1}, {0, 1, 5, 5}};
        int want[3] = {0, 1, 2}, k;
        for (k = 0; k < 3; k++) {
            float xx[4], yy[1], g[1] = {7}, d[4];
            int j, pos = -1, cnt = 0;
            /* layout 1x2x2x1: index = row*2 + col */
            for (j = 0; j < 4; j++) xx[j] = t[k][j];
            nn_maxpool2x2(1, 2, 2, 1, xx, yy);
            nn_maxpool2x2_backward(1, 2, 2, 1, xx, yy, g, d);
            for (j = 0; j < 4; j++)
                if (d[j] != 0) {
                    pos = j;
                    cnt++;
                }
            TT_CHECK(cnt == 1 && pos == want[k] && d[pos] == 7, "maxpool tie case %d: dy went to %d (%d places), expected %d",
                     k, pos, cnt, want[k]);
        }
    }
    /* odd h, w: the last row / column is dropped (floor) and gets zero gradient */
    {
        float xx[15], yy[2], g[2] = {1, 1}, d[15];
        int j;
        ok = 1;
        for (j = 0; j < 15; j++) xx[j] = (float)(100 - j); /* 1x3x5x1, max at top-left of each window */
        nn_maxpool2x2(1, 3, 5, 1, xx, yy);
        TT_CHECK(yy[0] == 100 && yy[1] == 98, "maxpool 3x5: %g %g", (double)yy[0], (double)yy[1]);
        for (j = 0; j < 15; j++) d[j] = -1;
        nn_maxpool2x2_backward(1, 3, 5, 1, xx, yy, g, d);
        for (j = 0; j < 15; j++) ok &= d[j] == ((j == 0 || j == 2) ? 1.0f : 0.0f);
        TT_CHECK(ok, "maxpool 3x5 backward must write dy at the window maxima and 0 everywhere else");
    }
    /* NaN wins the window */
    {
        float xx[4] = {1, 0, 2, 3}, yy[1];
        xx[1] = fnan();
        nn_maxpool2x2(1, 2, 2, 1, xx, yy);
        TT_CHECK(tt_is_nan(yy[0]), "maxpool of a window with NaN = %g, expected NaN", (double)yy[0]);
    }
}

static void sem_optim(void) {
    /* SGD by hand (PyTorch's formulas) */
    struct {
        float mu, wd;
        int nest;
        double w, v;
    } c[] = {
        {0.0f, 0.0f, 0, 1.0 - 0.1 * 0.5, 0.2},
        {0.0f, 0.1f, 0, 1.0 - 0.1 * 0.6, 0.2},
        {0.9f, 0.0f, 0, 1.0 - 0.1 * 0.68, 0.68},
        {0.9f, 0.0f, 1, 1.0 - 0.1 * (0.5 + 0.9 * 0.68), 0.68},
        {0.9f, 0.1f, 1, 1.0 - 0.1 * (0.6 + 0.9 * 0.78), 0.78},
    };
    size_t k;
    for (k = 0; k < sizeof c / sizeof c[0]; k++) {
        float w[19], g[19], v[19];
        int i, ok = 1;
        for (i = 0; i < 19; i++) {
            w[i] = 1.0f;
            g[i] = 0.5f;
            v[i] = 0.2f;
        }
        nn_sgd_update(19, w, g, c[k].mu != 0.0f ? v : NULL, 0.1f, c[k].mu, c[k].wd, c[k].nest);
        for (i = 0; i < 19; i++) ok &= fabs(w[i] - c[k].w) <= 1e-6 && fabs(v[i] - c[k].v) <= 1e-6;
        TT_CHECK(ok, "sgd case %lu (mu=%g wd=%g nesterov=%d): w=%.9g v=%.9g, expected %.9g %.9g", (unsigned long)k,
                 (double)c[k].mu, (double)c[k].wd, c[k].nest, (double)w[18], (double)v[18], c[k].w, c[k].v);
    }
    /* Adam step 1 from m=v=0: w -= lr * g / (|g| + eps);  AdamW decays w first;
     * Adam (adamw=0) adds wd*w to g */
    {
        float w[21], g[21], m[21], v[21];
        int i, adamw, ok;
        for (adamw = 0; adamw <= 1; adamw++) {
            double wd = 0.1, lr = 0.01;
            for (i = 0; i < 21; i++) {
                w[i] = 2.0f;
                g[i] = (float)(i - 10) * 0.25f;
                m[i] = v[i] = 0.0f;
            }
            nn_adam_update(21, w, g, m, v, (float)lr, 0.9f, 0.999f, 1e-8f, (float)wd, adamw, 1);
            ok = 1;
            for (i = 0; i < 21; i++) {
                double w0 = adamw ? 2.0 * (1.0 - lr * wd) : 2.0;
                double gi = (double)g[i] + (adamw ? 0.0 : wd * 2.0);
                double want = w0 - lr * gi / (fabs(gi) + 1e-8);
                double mw = (1 - 0.9) * gi, vw = (1 - 0.999) * gi * gi;
                ok &= fabs(w[i] - want) <= 1e-6 && fabs(m[i] - mw) <= 1e-6 * (1 + fabs(mw)) &&
                      fabs(v[i] - vw) <= 1e-6 * (1 + vw);
            }
            TT_CHECK(ok, "%s step 1 by hand: w[0]=%.9g", adamw ? "AdamW" : "Adam", (double)w[0]);
        }
        /* bias correction at t=3, one element, by hand in double */
        {
            float w1 = 1.0f, g1 = 0.3f, m1 = 0.05f, v1 = 0.01f;
            double b1 = 0.9, b2 = 0.999, lr = 0.001, t = 3;
            double mm = b1 * 0.05 + (1 - b1) * 0.3, vv = b2 * 0.01 + (1 - b2) * 0.09;
            double want = 1.0 - lr / (1 - pow(b1, t)) * mm / (sqrt(vv) / sqrt(1 - pow(b2, t)) + 1e-8);
            nn_adam_update(1, &w1, &g1, &m1, &v1, (float)lr, 0.9f, 0.999f, 1e-8f, 0.0f, 0, 3);
            TT_CLOSE(w1, want, 1e-6);
            TT_CLOSE(m1, mm, 1e-6);
            TT_CLOSE(v1, vv, 1e-6);
        }
    }
}

static void sem_winograd(void);
static void semantics(nn_backend b) {
    tt_set_backend(b);
    tt_ctx("kernels/semantics[%s]", nn_backend_name(b));
    sem_elementwise();
    sem_reductions();
    sem_activations();
    sem_softmax();
    sem_maxpool();
    sem_optim();
    sem_winograd();
}

/* ======================================================================== */
/* 2. every backend against scalar                                           */
/* ======================================================================== */

typedef void (*unary_fn)(size_t, const float *, float *);
typedef void (*binary_fn)(size_t, const float *, const float *, float *);

static void add_specials(float *x, size_t n) {
    static const float sp[] = {0.0f, -0.0f, 1e-40f, -1e-40f, 100.0f, -100.0f, FLT_MAX, -FLT_MAX, 1e-3f, -5e-4f};
    size_t i, k = 0;
    for (i = 4; i < n; i += 13, k++) {
        if (k % 12 == 10) x[i] = fnan();
        else if (k % 12 == 11) x[i] = (k & 1) ? INFINITY : -INFINITY;
        else x[i] = sp[k % 12];
    }
    if (n > 7) x[n - 1] = INFINITY; /* a special in the tail too */
    if (n > 9) x[n - 2] = -INFINITY;
    if (n > 11) x[n - 3] = fnan();
}

static void cross_unary(nn_backend b) {
    static const struct {
        const char *name;
        unary_fn fn;
        float lo, hi;
        double rtol, atol;
    } k[] = {
        {"vexp", nn_vexp, -95.0f, 95.0f, 1e-6, 2e-44},
        {"vrelu", nn_vrelu, -5.0f, 5.0f, 0, 0},
        {"vsigmoid", nn_vsigmoid, -30.0f, 30.0f, 1e-6, 1e-37},
        {"vtanh", nn_vtanh, -10.0f, 10.0f, 1e-6, 6e-7},
    };
    size_t i, s;
    nn_rng r;
    for (i = 0; i < sizeof k / sizeof k[0]; i++)
        for (s = 0; s < NSIZES; s++) {
            size_t n = sizes[s];
            float *x = tt_xalloc(n), *ref = tt_galloc(n), *got = tt_galloc(n), *inp = tt_galloc(n);
            nn_rng_seed(&r, 100 * i + s);
            tt_fill_uniform(&r, x, n, k[i].lo, k[i].hi);
            add_specials(x, n);
            tt_set_backend(NN_BACKEND_SCALAR);
            k[i].fn(n, x, ref);
            tt_set_backend(b);
            k[i].fn(n, x, got);
            tt_ctx("kernels[%s] %s n=%lu", nn_backend_name(b), k[i].name, (unsigned long)n);
            TT_CMP_ARR("vs scalar", got, ref, NULL, n, k[i].rtol, k[i].atol);
            TT_GUARDS_OK(got);
            if (n) memcpy(inp, x, n * sizeof(float));
            k[i].fn(n, inp, inp);
            TT_SAME_ARR("in place (y == x) == out of place", inp, got, n);
            TT_GUARDS_OK(inp);
            tt_xfree(x);
            tt_gfree(ref);
            tt_gfree(got);
            tt_gfree(inp);
        }
}

/* two inputs -> one output: add, sub, mul and the three backward kernels */
static void cross_binary(nn_backend b) {
    enum { ADD, SUB, MUL, RELU_B, SIG_B, TANH_B };
    static const struct {
        const char *name;
        binary_fn fn;
        int kind;
    } k[] = {{"vadd", nn_vadd, ADD},
             {"vsub", nn_vsub, SUB},
             {"vmul", nn_vmul, MUL},
             {"vrelu_backward", nn_vrelu_backward, RELU_B},
             {"vsigmoid_backward", nn_vsigmoid_backward, SIG_B},
             {"vtanh_backward", nn_vtanh_backward, TANH_B}};
    size_t i, s, j;
    nn_rng r;
    for (i = 0; i < sizeof k / sizeof k[0]; i++)
        for (s = 0; s < NSIZES; s++) {
            size_t n = sizes[s];
            float *a = tt_xalloc(n), *c = tt_xalloc(n), *scale = tt_xalloc(n);
            float *ref = tt_galloc(n), *got = tt_galloc(n), *inp = tt_galloc(n);
            double rtol = EPS;
            nn_rng_seed(&r, 1000 + 100 * i + s);
            tt_fill_normal(&r, a, n, 10.0f);
            tt_fill_normal(&r, c, n, 10.0f);
            for (j = 0; j < n; j++) {
                switch (k[i].kind) {
                case RELU_B: a[j] = a[j] < 0 ? 0.0f : a[j]; break; /* y = relu output, many exact zeros */
                case SIG_B: a[j] = nn_rng_uniform(&r); break;
                case TANH_B: a[j] = 2.0f * nn_rng_uniform(&r) - 1.0f; break;
                default: break;
                }
                /* tanh backward is dy*(1-y*y): FMA or not, error ~ eps*|dy|*(1+y^2) */
                scale[j] = k[i].kind == TANH_B ? fabsf(c[j]) * (1.0f + a[j] * a[j]) : 0.0f;
            }
            tt_set_backend(NN_BACKEND_SCALAR);
            k[i].fn(n, a, c, ref);
            tt_set_backend(b);
            k[i].fn(n, a, c, got);
            tt_ctx("kernels[%s] %s n=%lu", nn_backend_name(b), k[i].name, (unsigned long)n);
            if (k[i].kind == TANH_B) TT_CMP_ARR("vs scalar", got, ref, scale, n, 2 * EPS, 0);
            else TT_CMP_ARR("vs scalar", got, ref, NULL, n, k[i].kind == RELU_B ? 0 : rtol, 0);
            TT_GUARDS_OK(got);
            /* in place, output over the first and over the second input */
            if (n) memcpy(inp, a, n * sizeof(float));
            k[i].fn(n, inp, c, inp);
            TT_SAME_ARR("in place (out == first input)", inp, got, n);
            if (n) memcpy(inp, c, n * sizeof(float));
            k[i].fn(n, a, inp, inp);
            TT_SAME_ARR("in place (out == second input)", inp, got, n);
            TT_GUARDS_OK(inp);
            tt_xfree(a);
            tt_xfree(c);
            tt_xfree(scale);
            tt_gfree(ref);
            tt_gfree(got);
            tt_gfree(inp);
        }
}

static void cross_scale_axpy(nn_backend b) {
    size_t s, j;
    nn_rng r;
    for (s = 0; s < NSIZES; s++) {
        size_t n = sizes[s];
        float *x = tt_xalloc(n), *y0 = tt_xalloc(n), *scale = tt_xalloc(n);
        float *ref = tt_galloc(n), *got = tt_galloc(n), *inp = tt_galloc(n);
        float alpha = -1.7f;
        nn_rng_seed(&r, 5000 + s);
        tt_fill_normal(&r, x, n, 3.0f);
        tt_fill_normal(&r, y0, n, 3.0f);
        for (j = 0; j < n; j++) scale[j] = fabsf(alpha * x[j]) + fabsf(y0[j]);

        tt_ctx("kernels[%s] vscale n=%lu", nn_backend_name(b), (unsigned long)n);
        tt_set_backend(NN_BACKEND_SCALAR);
        nn_vscale(n, alpha, x, ref);
        tt_set_backend(b);
        nn_vscale(n, alpha, x, got);
        TT_CMP_ARR("vs scalar", got, ref, NULL, n, EPS, 0);
        TT_GUARDS_OK(got);
        if (n) memcpy(inp, x, n * sizeof(float));
        nn_vscale(n, alpha, inp, inp);
        TT_SAME_ARR("in place", inp, got, n);

        tt_ctx("kernels[%s] vaxpy n=%lu", nn_backend_name(b), (unsigned long)n);
        if (n) memcpy(ref, y0, n * sizeof(float));
        if (n) memcpy(got, y0, n * sizeof(float));
        tt_set_backend(NN_BACKEND_SCALAR);
        nn_vaxpy(n, alpha, x, ref);
        tt_set_backend(b);
        nn_vaxpy(n, alpha, x, got);
        TT_CMP_ARR("vs scalar (tol 2 eps (|a x| + |y|))", got, ref, scale, n, 2 * EPS, 0);
        TT_GUARDS_OK(got);
        /* x == y: y = y + a*y */
        if (n) memcpy(ref, x, n * sizeof(float));
        if (n) memcpy(inp, x, n * sizeof(float));
        tt_set_backend(NN_BACKEND_SCALAR);
        nn_vaxpy(n, alpha, ref, ref);
        tt_set_backend(b);
        nn_vaxpy(n, alpha, inp, inp);
        TT_CMP_ARR("in place x == y vs scalar", inp, ref, NULL, n, 2 * EPS, 0);
        TT_GUARDS_OK(inp);
        tt_xfree(x);
        tt_xfree(y0);
        tt_xfree(scale);
        tt_gfree(ref);
        tt_gfree(got);
        tt_gfree(inp);
    }
}

static void cross_reductions(nn_backend b) {
    size_t s, j;
    nn_rng r;
    for (s = 0; s < NSIZES; s++) {
        size_t n = sizes[s];
        float *a = tt_xalloc(n), *c = tt_xalloc(n);
        double sab = 0, sa = 0;
        float rd, gd, rs, gs, rm, gm;
        nn_rng_seed(&r, 7000 + s);
        tt_fill_normal(&r, a, n, 2.0f);
        tt_fill_normal(&r, c, n, 2.0f);
        for (j = 0; j < n; j++) {
            sab += fabs((double)a[j] * c[j]);
            sa += fabs((double)a[j]);
        }
        tt_ctx("kernels[%s] reductions n=%lu", nn_backend_name(b), (unsigned long)n);
        tt_set_backend(NN_BACKEND_SCALAR);
        rd = nn_vdot(n, a, c);
        rs = nn_vsum(n, a);
        rm = nn_vmax(n, a);
        tt_set_backend(b);
        gd = nn_vdot(n, a, c);
        gs = nn_vsum(n, a);
        gm = nn_vmax(n, a);
        TT_CHECK(fabs((double)gd - rd) <= (double)(n + 4) * EPS * sab, "vdot %.9g vs scalar %.9g (tol %.3g)", (double)gd,
                 (double)rd, (double)(n + 4) * EPS * sab);
        TT_CHECK(fabs((double)gs - rs) <= (double)(n + 4) * EPS * sa, "vsum %.9g vs scalar %.9g (tol %.3g)", (double)gs,
                 (double)rs, (double)(n + 4) * EPS * sa);
        TT_CHECK(gm == rm, "vmax %.9g vs scalar %.9g", (double)gm, (double)rm);
        /* all negative, max in the last element */
        for (j = 0; j < n; j++) a[j] = -1.0f - fabsf(a[j]);
        if (n) a[n - 1] = -0.5f;
        tt_set_backend(NN_BACKEND_SCALAR);
        rm = nn_vmax(n, a);
        tt_set_backend(b);
        gm = nn_vmax(n, a);
        TT_CHECK(gm == rm, "vmax (all negative, max last) %.9g vs scalar %.9g", (double)gm, (double)rm);
        tt_xfree(a);
        tt_xfree(c);
    }
}

static void cross_softmax(nn_backend b) {
    static const size_t shapes[][2] = {{1, 1},  {3, 7},  {2, 8},  {5, 15}, {4, 16},  {3, 17},  {2, 33},
                                       {7, 63}, {1, 64}, {1, 65}, {2, 255}, {2, 1000}, {0, 5},   {5, 0}};
    size_t s, j;
    nn_rng r;
    for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
        float *x = tt_xalloc(n), *dy = tt_xalloc(n), *scale = tt_xalloc(n);
        float *ref = tt_galloc(n), *got = tt_galloc(n), *inp = tt_galloc(n);
        float *dref = tt_galloc(n), *dgot = tt_galloc(n);
        nn_rng_seed(&r, 9000 + s);
        tt_fill_normal(&r, x, n, 4.0f);
        tt_fill_normal(&r, dy, n, 1.0f);
        if (rows > 1)
            for (j = 0; j < cols; j++) x[cols + j] += 300.0f; /* second row far from 0 */
        tt_ctx("kernels[%s] softmax %lux%lu", nn_backend_name(b), (unsigned long)rows, (unsigned long)cols);
        tt_set_backend(NN_BACKEND_SCALAR);
        nn_softmax_rows(rows, cols, x, ref);
        tt_set_backend(b);
        nn_softmax_rows(rows, cols, x, got);
        /* exp error (3e-7 each side) plus the row-sum rounding */
        TT_CMP_ARR("forward vs scalar", got, ref, NULL, n, 1e-6 + (double)cols * EPS, 1e-38);
        TT_GUARDS_OK(got);
        if (n) memcpy(inp, x, n * sizeof(float));
        nn_softmax_rows(rows, cols, inp, inp);
        TT_SAME_ARR("in place == out of place", inp, got, n);
        TT_GUARDS_OK(inp);

        /* backward from the scalar forward output; tolerance from the dot
         * error plus the cancellation in dy - s */
        {
            size_t rr;
            for (rr = 0; rr < rows; rr++) {
                double sabs = 0, sdot = 0;
                for (j = 0; j < cols; j++) {
                    sabs += fabs((double)ref[rr * cols + j] * dy[rr * cols + j]);
                    sdot += (double)ref[rr * cols + j] * dy[rr * cols + j];
                }
                for (j = 0; j < cols; j++) {
                    double yj = fabs((double)ref[rr * cols + j]);
                    scale[rr * cols + j] =
                        (float)(yj * (4.0 * (fabs((double)dy[rr * cols + j]) + fabs(sdot)) + (double)(cols + 4) * sabs));
                }
            }
        }
        tt_set_backend(NN_BACKEND_SCALAR);
        nn_softmax_backward_rows(rows, cols, ref, dy, dref);
        tt_set_backend(b);
        nn_softmax_backward_rows(rows, cols, ref, dy, dgot);
        TT_CMP_ARR("backward vs scalar", dgot, dref, scale, n, EPS, 1e-38);
        TT_GUARDS_OK(dgot);
        tt_xfree(x);
        tt_xfree(dy);
        tt_xfree(scale);
        tt_gfree(ref);
        tt_gfree(got);
        tt_gfree(inp);
        tt_gfree(dref);
        tt_gfree(dgot);
    }
}

static void cross_maxpool(nn_backend b) {
    static const int shapes[][4] = {{2, 5, 7, 1},  {2, 5, 7, 3},  {2, 5, 7, 17}, {2, 5, 7, 33}, {1, 2, 2, 5},
                                    {1, 4, 4, 8},  {1, 4, 6, 16}, {3, 4, 6, 31}, {1, 6, 3, 64}, {1, 3, 5, 65},
                                    {1, 1, 4, 3},  {2, 3, 1, 4}};
    static const char *modes[] = {"random", "ties", "NaNs"};
    size_t s;
    int mode;
    nn_rng r;
    for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (mode = 0; mode < 3; mode++) {
            int n = shapes[s][0], h = shapes[s][1], w = shapes[s][2], c = shapes[s][3];
            size_t nx = (size_t)n * h * w * c, ny = (size_t)n * (h / 2) * (w / 2) * c, i;
            float *x = tt_xalloc(nx), *dy = tt_xalloc(ny);
            float *yref = tt_galloc(ny), *ygot = tt_galloc(ny), *dref = tt_galloc(nx), *dgot = tt_galloc(nx);
            nn_rng_seed(&r, 11000 + 10 * s + mode);
            tt_fill_normal(&r, x, nx, 1.0f);
            tt_fill_normal(&r, dy, ny, 1.0f);
            for (i = 0; i < nx; i++) {
                if (mode == 1) x[i] = (float)nn_rng_below(&r, 3) - 1.0f; /* -1, 0, 1: many ties (and -0?) */
                if (mode == 1 && nn_rng_below(&r, 8) == 0) x[i] = -0.0f;
                if (mode == 2 && nn_rng_below(&r, 9) == 0) x[i] = fnan();
            }
            /* dx prefilled with garbage: backward must overwrite every element */
            for (i = 0; i < nx; i++) dref[i] = dgot[i] = 12345.0f;
            tt_ctx("kernels[%s] maxpool n=%d h=%d w=%d c=%d %s", nn_backend_name(b), n, h, w, c, modes[mode]);
            tt_set_backend(NN_BACKEND_SCALAR);
            nn_maxpool2x2(n, h, w, c, x, yref);
            nn_maxpool2x2_backward(n, h, w, c, x, yref, dy, dref);
            tt_set_backend(b);
            nn_maxpool2x2(n, h, w, c, x, ygot);
            TT_SAME_ARR("forward == scalar", ygot, yref, ny);
            TT_GUARDS_OK(ygot);
            /* backward from the same (scalar) y so placement is compared */
            nn_maxpool2x2_backward(n, h, w, c, x, yref, dy, dgot);
            TT_SAME_ARR("backward == scalar (placement)", dgot, dref, nx);
            TT_GUARDS_OK(dgot);
            {
                int all = 1;
                for (i = 0; i < nx; i++) all &= dgot[i] != 12345.0f;
                TT_CHECK(all, "backward left elements of dx unwritten");
            }
            { /* the argmax variant: same y; idx == scalar; its backward == the backward from x */
                float *ia = tt_galloc(ny), *ib = tt_galloc(ny), *ya = tt_galloc(ny), *da = tt_galloc(nx);
                for (i = 0; i < nx; i++) da[i] = 12345.0f;
                tt_set_backend(NN_BACKEND_SCALAR);
                nn_maxpool2x2_argmax(n, h, w, c, x, ya, ia);
                tt_set_backend(b);
                nn_maxpool2x2_argmax(n, h, w, c, x, ygot, ib);
                TT_SAME_ARR("argmax forward: y == plain forward", ygot, yref, ny);
                TT_SAME_ARR("argmax forward: idx == scalar", ib, ia, ny);
                TT_GUARDS_OK(ygot);
                TT_GUARDS_OK(ib);
                nn_maxpool2x2_backward_argmax(n, h, w, c, ia, dy, da);
                TT_SAME_ARR("backward from idx == backward from x", da, dref, nx);
                TT_GUARDS_OK(da);
                tt_set_backend(NN_BACKEND_SCALAR);
                for (i = 0; i < nx; i++) da[i] = 12345.0f;
                nn_maxpool2x2_backward_argmax(n, h, w, c, ia, dy, da);
                TT_SAME_ARR("scalar backward from idx == backward from x", da, dref, nx);
                tt_set_backend(b);
                tt_gfree(ia);
                tt_gfree(ib);
                tt_gfree(ya);
                tt_gfree(da);
            }
            tt_xfree(x);
            tt_xfree(dy);
            tt_gfree(yref);
            tt_gfree(ygot);
            tt_gfree(dref);
            tt_gfree(dgot);
        }
}

static void cross_sgd(nn_backend b) {
    static const struct {
        float mu, wd;
        int nest;
    } v[] = {{0, 0, 0}, {0, 1e-2f, 0}, {0.9f, 0, 0}, {0.9f, 1e-2f, 0}, {0.9f, 0, 1}, {0.9f, 1e-2f, 1}};
    size_t s, k, j;
    nn_rng r;
    const float lr = 0.05f;
    for (k = 0; k < sizeof v / sizeof v[0]; k++)
        for (s = 0; s < NSIZES; s++) {
            size_t n = sizes[s];
            float *w0 = tt_xalloc(n), *g = tt_xalloc(n), *v0 = tt_xalloc(n), *tw = tt_xalloc(n), *tv = tt_xalloc(n);
            float *wr = tt_galloc(n), *wg = tt_galloc(n), *vr = tt_galloc(n), *vg = tt_galloc(n);
            int mom = v[k].mu != 0.0f;
            nn_rng_seed(&r, 13000 + 100 * k + s);
            tt_fill_normal(&r, w0, n, 1.0f);
            tt_fill_normal(&r, g, n, 1.0f);
            tt_fill_normal(&r, v0, n, 1.0f);
            for (j = 0; j < n; j++) {
                double gm = fabs(g[j]) + v[k].wd * fabs(w0[j]);
                double vm = v[k].mu * fabs(v0[j]) + gm;
                double step = mom ? (v[k].nest ? gm + v[k].mu * vm : vm) : gm;
                tw[j] = (float)(fabs(w0[j]) + lr * step);
                tv[j] = (float)vm;
            }
            if (n) {
                memcpy(wr, w0, n * sizeof(float));
                memcpy(wg, w0, n * sizeof(float));
                memcpy(vr, v0, n * sizeof(float));
                memcpy(vg, v0, n * sizeof(float));
            }
            tt_ctx("kernels[%s] sgd mu=%g wd=%g nesterov=%d n=%lu", nn_backend_name(b), (double)v[k].mu,
                   (double)v[k].wd, v[k].nest, (unsigned long)n);
            tt_set_backend(NN_BACKEND_SCALAR);
            nn_sgd_update(n, wr, g, mom ? vr : NULL, lr, v[k].mu, v[k].wd, v[k].nest);
            tt_set_backend(b);
            nn_sgd_update(n, wg, g, mom ? vg : NULL, lr, v[k].mu, v[k].wd, v[k].nest);
            TT_CMP_ARR("w vs scalar", wg, wr, tw, n, 6 * EPS, 0);
            TT_GUARDS_OK(wg);
            if (mom) {
                TT_CMP_ARR("v vs scalar", vg, vr, tv, n, 4 * EPS, 0);
                TT_GUARDS_OK(vg);
            } else {
                TT_SAME_ARR("v untouched when momentum == 0", vg, v0, n);
            }
            tt_xfree(w0);
            tt_xfree(g);
            tt_xfree(v0);
            tt_xfree(tw);
            tt_xfree(tv);
            tt_gfree(wr);
            tt_gfree(wg);
            tt_gfree(vr);
            tt_gfree(vg);
        }
}

static void cross_adam(nn_backend b) {
    static const struct {
        int adamw;
        float wd;
        long t;
    } v[] = {{0, 0, 1}, {0, 1e-2f, 1}, {1, 1e-2f, 1}, {0, 1e-2f, 7}, {1, 1e-1f, 100}};
    const float lr = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    size_t s, k, j;
    nn_rng r;
    for (k = 0; k < sizeof v / sizeof v[0]; k++)
        for (s = 0; s < NSIZES; s++) {
            size_t n = sizes[s];
            float *w0 = tt_xalloc(n), *g = tt_xalloc(n), *m0 = tt_xalloc(n), *v0 = tt_xalloc(n);
            float *tw = tt_xalloc(n), *tm = tt_xalloc(n), *tv = tt_xalloc(n);
            float *wr = tt_galloc(n), *wg = tt_galloc(n), *mr = tt_galloc(n), *mg = tt_galloc(n);
            float *vr = tt_galloc(n), *vg = tt_galloc(n);
            double bc1 = 1.0 - pow(b1, (double)v[k].t), bc2 = 1.0 - pow(b2, (double)v[k].t);
            double step = lr / bc1, isb = 1.0 / sqrt(bc2);
            double decay = v[k].adamw ? 1.0 - (double)lr * v[k].wd : 1.0, l2 = v[k].adamw ? 0.0 : v[k].wd;
            nn_rng_seed(&r, 17000 + 100 * k + s);
            tt_fill_normal(&r, w0, n, 1.0f);
            tt_fill_normal(&r, g, n, 1.0f);
            tt_fill_normal(&r, m0, n, 0.3f);
            for (j = 0; j < n; j++) v0[j] = 0.1f * nn_rng_uniform(&r);
            for (j = 0; j < n; j++) {
                /* error magnitudes of each stage: every term's size, times a few eps */
                double wd_ = fabs(w0[j]) * decay;
                double ga = fabs(g[j]) + l2 * wd_;
                double mt = b1 * fabs(m0[j]) + (1 - b1) * ga;
                double mv = b1 * m0[j] + (1 - b1) * (g[j] + l2 * wd_);
                double vt = b2 * v0[j] + (1 - b2) * ga * ga;
                double gg = g[j] + l2 * w0[j] * decay;
                double den = sqrt(b2 * v0[j] + (1 - b2) * gg * gg) * isb + eps;
                tm[j] = (float)mt;
                tv[j] = (float)vt;
                tw[j] = (float)(wd_ + step * (2.0 * mt + 4.0 * fabs(mv)) / den);
            }
            if (n) {
                memcpy(wr, w0, n * sizeof(float));
                memcpy(wg, w0, n * sizeof(float));
                memcpy(mr, m0, n * sizeof(float));
                memcpy(mg, m0, n * sizeof(float));
                memcpy(vr, v0, n * sizeof(float));
                memcpy(vg, v0, n * sizeof(float));
            }
            tt_ctx("kernels[%s] %s wd=%g t=%ld n=%lu", nn_backend_name(b), v[k].adamw ? "AdamW" : "Adam",
                   (double)v[k].wd, v[k].t, (unsigned long)n);
            tt_set_backend(NN_BACKEND_SCALAR);
            nn_adam_update(n, wr, g, mr, vr, lr, b1, b2, eps, v[k].wd, v[k].adamw, v[k].t);
            tt_set_backend(b);
            nn_adam_update(n, wg, g, mg, vg, lr, b1, b2, eps, v[k].wd, v[k].adamw, v[k].t);
            TT_CMP_ARR("m vs scalar", mg, mr, tm, n, 4 * EPS, 0);
            TT_CMP_ARR("v vs scalar", vg, vr, tv, n, 4 * EPS, 0);
            TT_CMP_ARR("w vs scalar", wg, wr, tw, n, 4 * EPS, 0);
            TT_GUARDS_OK(wg);
            TT_GUARDS_OK(mg);
            TT_GUARDS_OK(vg);
            tt_xfree(w0);
            tt_xfree(g);
            tt_xfree(m0);
            tt_xfree(v0);
            tt_xfree(tw);
            tt_xfree(tm);
            tt_xfree(tv);
            tt_gfree(wr);
            tt_gfree(wg);
            tt_gfree(mr);
            tt_gfree(mg);
            tt_gfree(vr);
            tt_gfree(vg);
        }
}

/* uint8 -> float conversion (nn_vconvert_u8): every size, unaligned
 * source, exact against the scalar twin (one multiply, no rounding freedom) */
static void cross_u8(nn_backend b) {
    static const size_t sizes[] = {0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 255, 1000};
    unsigned char src[1001];
    float ref[1000], got[1002];
    size_t s, i;
    for (i = 0; i < sizeof src; i++) src[i] = (unsigned char)(i * 37u + 11u);
    for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        int ok = 1;
        nn_set_backend(NN_BACKEND_SCALAR);
        nn_vconvert_u8(n, src + 1, 1.0f / 255.0f, ref);
        nn_set_backend(b);
        got[n + 1] = -7.0f;
        nn_vconvert_u8(n, src + 1, 1.0f / 255.0f, got + 1);
        for (i = 0; i < n; i++) ok &= got[i + 1] == ref[i];
        TT_CHECK(ok && got[n + 1] == -7.0f, "u8 -> float [%s] n=%lu: equal to scalar, nothing written past n",
                 nn_backend_name(b), (unsigned long)n);
    }
}


/* Winograd F(4x4,3x3) transforms: SIMD == scalar bit for bit (the same
 * operations in the same order) at every channel count, tails included;
 * and, per backend, a whole tile (input, filter, product, output) and a
 * whole weight-gradient tile (input, dy, product, wgrad) against the
 * direct sums in double. */
static float *wg_ptrs(nn_rng *r, const float **p, int npts, size_t c, const float *zeros) {
    float *buf = tt_xalloc((size_t)npts * c + 1);
    int i;
    tt_fill_normal(r, buf, (size_t)npts * c + 1, 1.0f);
    for (i = 0; i < npts; i++) p[i] = nn_rng_below(r, 7) == 0 ? zeros : buf + (size_t)i * c;
    return buf;
}
static void cross_winograd(nn_backend b) {
    static const size_t cs[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 65};
    size_t s, i;
    nn_rng r;
    for (s = 0; s < sizeof cs / sizeof cs[0]; s++) {
        size_t c = cs[s], st = c + 5, n36 = 36 * st;
        const float *p[36];
        float *zeros = tt_xalloc(c), *in, *ref = tt_galloc(n36), *got = tt_galloc(n36), *m = tt_xalloc(n36);
        float *bias = tt_xalloc(c), *yr[16], *yg[16];
        int mode, q;
        for (i = 0; i < c; i++) zeros[i] = 0.0f;
        nn_rng_seed(&r, 12000 + s);
        tt_ctx("kernels[%s] winograd c=%lu", nn_backend_name(b), (unsigned long)c);
        /* input transform (the gaps between points stay untouched) */
        in = wg_ptrs(&r, p, 36, c, zeros);
        for (i = 0; i < n36; i++) ref[i] = got[i] = 777.0f;
        tt_set_backend(NN_BACKEND_SCALAR);
        nn_winograd_input(c, p, ref, st);
        tt_set_backend(b);
        nn_winograd_input(c, p, got, st);
        TT_SAME_ARR("input transform == scalar", got, ref, n36);
        TT_GUARDS_OK(got);
        tt_xfree(in);
        /* filter (9 taps) and output-gradient (16 pixels) transforms */
        in = wg_ptrs(&r, p, 16, c, zeros);
        tt_set_backend(NN_BACKEND_SCALAR);
        nn_winograd_filter(c, p, ref, st);
        tt_set_backend(b);
        nn_winograd_filter(c, p, got, st);
        TT_SAME_ARR("filter transform == scalar", got, ref, n36);
        TT_GUARDS_OK(got);
        tt_set_backend(NN_BACKEND_SCALAR);
        nn_winograd_dy(c, p, ref, st);
        tt_set_backend(b);
        nn_winograd_dy(c, p, got, st);
        TT_SAME_ARR("dy transform == scalar", got, ref, n36);
        TT_GUARDS_OK(got);
        tt_xfree(in);
        /* output transform (bias, ReLU, a skipped pixel) and weight-gradient output */
        tt_fill_normal(&r, m, n36, 1.0f);
        tt_fill_normal(&r, bias, c, 1.0f);
        for (q = 0; q < 16; q++) {
            yr[q] = tt_galloc(c);
            yg[q] = tt_galloc(c);
        }
        for (mode = 0; mode < 4; mode++) {
            float *pr[16], *pg[16];
            int skip = 5 * mode; /* 0, 5, 10, 15 */
            for (q = 0; q < 16; q++) {
                for (i = 0; i < c; i++) yr[q][i] = yg[q][i] = 12345.0f;
                pr[q] = q == skip ? NULL : yr[q];
                pg[q] = q == skip ? NULL : yg[q];
            }
            tt_set_backend(NN_BACKEND_SCALAR);
            nn_winograd_output(c, m, st, mode & 2 ? bias : NULL, mode & 1, pr);
            tt_set_backend(b);
            nn_winograd_output(c, m, st, mode & 2 ? bias : NULL, mode & 1, pg);
            for (q = 0; q < 16; q++) {
                TT_SAME_ARR("output transform == scalar", yg[q], yr[q], c);
                TT_GUARDS_OK(yg[q]);
                if (q == skip) TT_CHECK(yg[q][0] == 12345.0f, "a NULL output pixel was written");
            }
        }
        tt_set_backend(NN_BACKEND_SCALAR);
        nn_winograd_wgrad(c, m, st, yr);
        tt_set_backend(b);
        nn_winograd_wgrad(c, m, st, yg);
        for (q = 0; q < 9; q++) {
            TT_SAME_ARR("weight-gradient output == scalar", yg[q], yr[q], c);
            TT_GUARDS_OK(yg[q]);
        }
        for (q = 0; q < 16; q++) {
            tt_gfree(yr[q]);
            tt_gfree(yg[q]);
        }
        tt_xfree(zeros);
        tt_xfree(m);
        tt_xfree(bias);
        tt_gfree(ref);
        tt_gfree(got);
    }
}
/* one tile, c = 5 channels: the transforms compose to the direct sums */
static void sem_winograd(void) {
    enum { C = 5 };
    float d[36][C], g[9][C], h[16][C], v[36 * C], u[36 * C], w[36 * C], out[16][C];
    const float *pd[36], *pg[9], *ph[16];
    float *po[16];
    double maxerr = 0.0, maxerr2 = 0.0, scale = 0.0, scale2 = 0.0;
    int i, j, a, bb, ch;
    nn_rng r;
    nn_rng_seed(&r, 12500);
    for (i = 0; i < 36; i++) {
        for (ch = 0; ch < C; ch++) d[i][ch] = nn_rng_uniform(&r) * 2.0f - 1.0f;
        pd[i] = d[i];
    }
    for (i = 0; i < 9; i++) {
        for (ch = 0; ch < C; ch++) g[i][ch] = nn_rng_uniform(&r) * 2.0f - 1.0f;
        pg[i] = g[i];
    }
    for (i = 0; i < 16; i++) {
        for (ch = 0; ch < C; ch++) h[i][ch] = nn_rng_uniform(&r) * 2.0f - 1.0f;
        ph[i] = h[i];
        po[i] = out[i];
    }
    tt_ctx("kernels[%s] winograd tile vs direct sums", nn_backend_name(nn_get_backend()));
    nn_winograd_input(C, pd, v, C);
    nn_winograd_filter(C, pg, u, C);
    for (i = 0; i < 36 * C; i++) w[i] = v[i] * u[i];
    nn_winograd_output(C, w, C, NULL, 0, po);
    for (i = 0; i < 4; i++)
        for (j = 0; j < 4; j++)
            for (ch = 0; ch < C; ch++) {
                double s = 0.0;
                for (a = 0; a < 3; a++)
                    for (bb = 0; bb < 3; bb++) s += (double)d[(i + a) * 6 + j + bb][ch] * g[a * 3 + bb][ch];
                if (fabs(s - out[i * 4 + j][ch]) > maxerr) maxerr = fabs(s - out[i * 4 + j][ch]);
                if (fabs(s) > scale) scale = fabs(s);
            }
    TT_CHECK(maxerr <= 1e-5 * scale, "F(4x4,3x3) tile differs from the direct 3x3 correlation by %g (scale %g)",
             maxerr, scale);
    nn_winograd_dy(C, ph, u, C);
    for (i = 0; i < 36 * C; i++) w[i] = v[i] * u[i];
    nn_winograd_wgrad(C, w, C, po);
    for (i = 0; i < 3; i++)
        for (j = 0; j < 3; j++)
            for (ch = 0; ch < C; ch++) {
                double s = 0.0;
                for (a = 0; a < 4; a++)
                    for (bb = 0; bb < 4; bb++) s += (double)d[(i + a) * 6 + j + bb][ch] * h[a * 4 + bb][ch];
                if (fabs(s - out[i * 3 + j][ch]) > maxerr2) maxerr2 = fabs(s - out[i * 3 + j][ch]);
                if (fabs(s) > scale2) scale2 = fabs(s);
            }
    TT_CHECK(maxerr2 <= 1e-5 * scale2,
             "F(3x3,4x4) weight-gradient tile differs from the direct 4x4 correlation by %g (scale %g)", maxerr2,
             scale2);
}

void test_kernels(void) {
    size_t i;
    semantics(NN_BACKEND_SCALAR);
    for (i = 0; i < (size_t)TT_NSIMD; i++) {
        nn_backend b = tt_simd_backends[i];
        if (!tt_use_backend("kernels", b)) continue;
        semantics(b);
        cross_unary(b);
        cross_binary(b);
        cross_scale_axpy(b);
        cross_reductions(b);
        cross_softmax(b);
        cross_maxpool(b);
        cross_winograd(b);
        cross_sgd(b);
        cross_adam(b);
        cross_u8(b);
    }
}
