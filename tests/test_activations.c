/* Accuracy of exp / tanh / sigmoid against double-precision libm, on a
 * dense grid, for every backend (scalar = libm float, as a baseline).
 *
 * Bounds checked are the ones stated in nn.h section 4.2:
 *   exp:  relative <= 3e-7 on [-87.3, 88.7]; absolute <= 1e-44 below -87.3;
 *         +inf from the first float whose e^x rounds to inf; 0 below -104
 *   tanh: absolute <= 3e-7 everywhere (4e-7 on wasm, which has no FMA);
 *         relative <= 4e-7 for |x| >= 1e-3
 * nn.h states no bound for sigmoid; the test uses the one that follows
 * from exp's: relative and absolute <= 5e-7 on [-20, 20] (3e-7 from exp
 * plus three float roundings).  The measured maxima are printed as info
 * lines ("info accuracy ...") so the comments can be kept up to date. */
#include "nn.h"
#include "tt.h"

#include <float.h>
#include <math.h>
#include <stdio.h>

#ifdef NN_TEST_SMALL
#define GRID 100000
#else
#define GRID 1000000
#endif
#define CHUNK 4096

#define EXP_REL 3e-7
#define EXP_ABS_LOW 1e-44
#define TANH_ABS 3e-7
#define TANH_ABS_NOFMA 4e-7 /* wasm: mul + add, rounded twice */
#define TANH_REL 4e-7
#define SIG_REL 5e-7
#define SIG_ABS 5e-7

typedef struct {
    double max_abs, max_rel, x_abs, x_rel;
    long bad_nonfinite; /* NaN/inf where a finite value was expected */
    double x_bad;
} errs;

typedef void (*unary_fn)(size_t, const float *, float *);

static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* Sweep n points of [lo, hi]; relative error counted where |ref| >= rel_min. */
static errs sweep(unary_fn fn, double (*ref)(double), double lo, double hi, long n, double rel_min) {
    static float x[CHUNK], y[CHUNK];
    errs e = {0, 0, 0, 0, 0, 0};
    long i0, i;
    for (i0 = 0; i0 < n; i0 += CHUNK) {
        long m = n - i0 < CHUNK ? n - i0 : CHUNK;
        for (i = 0; i < m; i++) x[i] = (float)(lo + (hi - lo) * (double)(i0 + i) / (double)(n - 1));
        fn((size_t)m, x, y);
        for (i = 0; i < m; i++) {
            double r = ref((double)x[i]), d;
            if (!(fabs((double)y[i]) <= DBL_MAX) && fabs(r) <= FLT_MAX) {
                if (!e.bad_nonfinite) e.x_bad = x[i];
                e.bad_nonfinite++;
                continue;
            }
            if (fabs(r) > FLT_MAX) continue; /* overflow region handled elsewhere */
            d = fabs((double)y[i] - r);
            if (d > e.max_abs) {
                e.max_abs = d;
                e.x_abs = x[i];
            }
            if (fabs(r) >= rel_min && d / fabs(r) > e.max_rel) {
                e.max_rel = d / fabs(r);
                e.x_rel = x[i];
            }
        }
    }
    return e;
}

static void check_rel(const char *what, errs e, double bound) {
    TT_CHECK(e.bad_nonfinite == 0, "%s: %ld non-finite results where the value is finite (first x=%.9g)", what,
             e.bad_nonfinite, e.x_bad);
    TT_CHECK(e.max_rel <= bound, "%s: max relative error %.3g at x=%.9g exceeds the stated bound %.3g", what,
             e.max_rel, e.x_rel, bound);
}
static void check_abs(const char *what, errs e, double bound) {
    TT_CHECK(e.bad_nonfinite == 0, "%s: %ld non-finite results where the value is finite (first x=%.9g)", what,
             e.bad_nonfinite, e.x_bad);
    TT_CHECK(e.max_abs <= bound, "%s: max absolute error %.3g at x=%.9g exceeds the stated bound %.3g", what,
             e.max_abs, e.x_abs, bound);
}

/* every x in [lo, hi] (n points) must map to exactly want (inf, 0) */
static void sweep_exact(unary_fn fn, const char *what, double lo, double hi, long n, float want) {
    static float x[CHUNK], y[CHUNK];
    long i0, i, bad = 0;
    double xb = 0, yb = 0;
    for (i0 = 0; i0 < n; i0 += CHUNK) {
        long m = n - i0 < CHUNK ? n - i0 : CHUNK;
        for (i = 0; i < m; i++) x[i] = (float)(lo + (hi - lo) * (double)(i0 + i) / (double)(n - 1));
        fn((size_t)m, x, y);
        for (i = 0; i < m; i++)
            if (y[i] != want) {
                if (!bad) {
                    xb = x[i];
                    yb = y[i];
                }
                bad++;
            }
    }
    TT_CHECK(bad == 0, "%s: %ld of %ld points differ from %g, first x=%.9g -> %.9g", what, bad, n, (double)want, xb,
             yb);
}

static void accuracy(nn_backend b) {
    const char *bn = nn_backend_name(b);
    /* smallest float whose e^x rounds to +inf, largest finite below it */
    const float xinf = 88.72283935546875f, xmaxfin = 88.72283172607422f;
    errs e, e2, e3;
    tt_set_backend(b);

    /* ---- exp ---- */
    tt_ctx("activations[%s] exp", bn);
    e = sweep(nn_vexp, exp, -87.3, 88.7, GRID, 0.0);
    check_rel("exp on [-87.3, 88.7]", e, EXP_REL);
    e2 = sweep(nn_vexp, exp, -104.0, -87.3, GRID / 4, 0.0);
    check_abs("exp on [-104, -87.3]", e2, EXP_ABS_LOW);
    e3 = sweep(nn_vexp, exp, 88.7, (double)xmaxfin, GRID / 100, 0.0);
    TT_CHECK(e3.bad_nonfinite == 0, "exp overflows early on [88.7, 88.7228317] (first x=%.9g)", e3.x_bad);
    sweep_exact(nn_vexp, "exp on [88.7228394, 1000] must be +inf", (double)xinf, 1000.0, GRID / 10, INFINITY);
    sweep_exact(nn_vexp, "exp on [-1000, -104] must be 0", -1000.0, -104.0, GRID / 10, 0.0f);
    tt_info("accuracy exp[%s]: max rel err %.3g at x=%.9g on [-87.3,88.7] (bound %.0e); max abs err %.3g at "
            "x=%.9g on [-104,-87.3] (bound %.0e); max rel err %.3g on [88.7,88.7228317] (no bound stated)",
            bn, e.max_rel, e.x_rel, EXP_REL, e2.max_abs, e2.x_abs, EXP_ABS_LOW, e3.max_rel);
    {
        float x[2], y[2];
        x[0] = xinf;
        x[1] = xmaxfin;
        nn_vexp(2, x, y);
        TT_CHECK(y[0] == INFINITY, "exp(%.9g) = %.9g, expected inf", (double)x[0], (double)y[0]);
        TT_CHECK(y[1] <= FLT_MAX, "exp(%.9g) = %.9g, expected finite", (double)x[1], (double)y[1]);
    }

    /* ---- tanh ---- */
    tt_ctx("activations[%s] tanh", bn);
    e = sweep(nn_vtanh, tanh, -20.0, 20.0, GRID, INFINITY);
    check_abs("tanh on [-20, 20]", e, nn_get_backend() == NN_BACKEND_WASM ? TANH_ABS_NOFMA : TANH_ABS);
    /* relative error for |x| >= 1e-3, both signs, plus a fine grid near 1e-3 */
    e2 = sweep(nn_vtanh, tanh, 1e-3, 20.0, GRID / 2, 0.0);
    e3 = sweep(nn_vtanh, tanh, -20.0, -1e-3, GRID / 2, 0.0);
    if (e3.max_rel > e2.max_rel) {
        e2.max_rel = e3.max_rel;
        e2.x_rel = e3.x_rel;
    }
    e3 = sweep(nn_vtanh, tanh, 1e-3, 0.1, GRID / 4, 0.0);
    if (e3.max_rel > e2.max_rel) {
        e2.max_rel = e3.max_rel;
        e2.x_rel = e3.x_rel;
    }
    check_rel("tanh for 1e-3 <= |x| <= 20", e2, TANH_REL);
    e3 = sweep(nn_vtanh, tanh, -1e-3, 1e-3, GRID / 4, 0.0);
    tt_info("accuracy tanh[%s]: max abs err %.3g at x=%.9g on [-20,20] (bound %.0e); max rel err %.3g at x=%.9g "
            "for |x|>=1e-3 (bound %.0e); max rel err %.3g at x=%.9g for |x|<1e-3 (no bound stated)",
            bn, e.max_abs, e.x_abs, TANH_ABS, e2.max_rel, e2.x_rel, TANH_REL, e3.max_rel, e3.x_rel);
    {
        /* |tanh| <= 1 (else 1 - y^2 in the backward goes negative) */
        static float x[CHUNK], y[CHUNK];
        int i, ok = 1;
        float worst = 0;
        for (i = 0; i < CHUNK; i++) x[i] = (i & 1 ? -1.0f : 1.0f) * (3.0f + 30.0f * (float)i / CHUNK);
        nn_vtanh(CHUNK, x, y);
        for (i = 0; i < CHUNK; i++)
            if (!(fabsf(y[i]) <= 1.0f)) {
                ok = 0;
                worst = y[i];
            }
        TT_CHECK(ok, "|tanh(x)| > 1: got %.9g", (double)worst);
    }

    /* ---- sigmoid ---- */
    tt_ctx("activations[%s] sigmoid", bn);
    e = sweep(nn_vsigmoid, ref_sigmoid, -20.0, 20.0, GRID, 0.0);
    check_rel("sigmoid on [-20, 20] (relative)", e, SIG_REL);
    check_abs("sigmoid on [-20, 20] (absolute)", e, SIG_ABS);
    e2 = sweep(nn_vsigmoid, ref_sigmoid, -87.0, 87.0, GRID / 4, 0.0);
    tt_info("accuracy sigmoid[%s]: max rel err %.3g at x=%.9g, max abs err %.3g at x=%.9g on [-20,20] (test "
            "bound %.0e); on [-87,87] max rel %.3g at x=%.9g",
            bn, e.max_rel, e.x_rel, e.max_abs, e.x_abs, SIG_REL, e2.max_rel, e2.x_rel);

    /* ---- special values ---- */
    tt_ctx("activations[%s] special values", bn);
    {
        float x[10], y[10];
        int i;
        x[0] = (float)NAN;
        x[1] = INFINITY;
        x[2] = -INFINITY;
        x[3] = 0.0f;
        x[4] = -0.0f;
        x[5] = FLT_MAX;
        x[6] = -FLT_MAX;
        x[7] = FLT_MIN;
        x[8] = 1e-45f; /* smallest subnormal */
        x[9] = 1e-30f;
        nn_vexp(10, x, y);
        TT_CHECK(tt_is_nan(y[0]) && y[1] == INFINITY && y[2] == 0.0f && y[3] == 1.0f && y[4] == 1.0f &&
                     y[5] == INFINITY && y[6] == 0.0f && y[7] == 1.0f && y[8] == 1.0f && y[9] == 1.0f,
                 "exp specials (NaN inf -inf 0 -0 max -max min denorm 1e-30) -> %g %g %g %g %g %g %g %g %g %g",
                 (double)y[0], (double)y[1], (double)y[2], (double)y[3], (double)y[4], (double)y[5], (double)y[6],
                 (double)y[7], (double)y[8], (double)y[9]);
        nn_vsigmoid(10, x, y);
        TT_CHECK(tt_is_nan(y[0]) && y[1] == 1.0f && y[2] == 0.0f && y[3] == 0.5f && y[4] == 0.5f && y[5] == 1.0f &&
                     y[6] == 0.0f && y[7] == 0.5f && y[8] == 0.5f && y[9] == 0.5f,
                 "sigmoid specials -> %g %g %g %g %g %g %g %g %g %g", (double)y[0], (double)y[1], (double)y[2],
                 (double)y[3], (double)y[4], (double)y[5], (double)y[6], (double)y[7], (double)y[8], (double)y[9]);
        nn_vtanh(10, x, y);
        {
            int ok = tt_is_nan(y[0]) && fabs(y[1] - 1.0) <= TANH_ABS && fabs(y[2] + 1.0) <= TANH_ABS &&
                     y[3] == 0.0f && y[4] == 0.0f && fabs(y[5] - 1.0) <= TANH_ABS && fabs(y[6] + 1.0) <= TANH_ABS;
            for (i = 7; i < 10; i++) ok &= y[i] == x[i]; /* tanh x == x in float for tiny x */
            TT_CHECK(ok, "tanh specials -> %.9g %.9g %.9g %g %g %.9g %.9g %g %g %g", (double)y[0], (double)y[1],
                     (double)y[2], (double)y[3], (double)y[4], (double)y[5], (double)y[6], (double)y[7],
                     (double)y[8], (double)y[9]);
        }
    }
}

void test_activations(void) {
    size_t i;
    accuracy(NN_BACKEND_SCALAR);
    for (i = 0; i < (size_t)TT_NSIMD; i++)
        if (tt_use_backend("activations", tt_simd_backends[i])) accuracy(tt_simd_backends[i]);
}
