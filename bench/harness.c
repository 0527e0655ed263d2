/* bench/harness.c - compiles nn.h as C and provides the C baselines.
 * Built with plain -O2 (see the Makefile's bench stanza). */
#define NN_IMPLEMENTATION
#include "../nn.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hb_libm_expf(size_t n, const float *x, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = expf(x[i]);
}
void hb_libm_tanhf(size_t n, const float *x, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = tanhf(x[i]);
}
void hb_libm_sigmoid(size_t n, const float *x, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

/* restrict lets the compiler do whatever -O2 allows with the inner loop
 * (the strongest honest "naive" baseline); no blocking, no packing. */
void hb_naive_sgemm(int m, int n, int k, const float *restrict a, const float *restrict b, float *restrict c) {
    int i, j, p;
    for (i = 0; i < m; i++) {
        float *restrict ci = c + (size_t)i * n;
        for (j = 0; j < n; j++) ci[j] = 0.0f;
        for (p = 0; p < k; p++) {
            const float aip = a[(size_t)i * k + p];
            const float *restrict bp = b + (size_t)p * n;
            for (j = 0; j < n; j++) ci[j] += aip * bp[j];
        }
    }
}

void hb_fill_uniform(float *p, size_t n, float lo, float hi, uint64_t seed) {
    nn_rng r;
    size_t i;
    nn_rng_seed(&r, seed);
    for (i = 0; i < n; i++) p[i] = lo + (hi - lo) * nn_rng_uniform(&r);
}

static int hb__check_one(int ta, int tb, int m, int n, int k, float alpha, float beta, char *msg, size_t msglen) {
    int lda = ta ? m : k, ldb = tb ? k : n, ldc = n + 3; /* ldc > n: strided C */
    size_t asz = (size_t)(ta ? k : m) * lda, bsz = (size_t)(tb ? n : k) * ldb, csz = (size_t)m * ldc;
    float *a = (float *)malloc((asz + 1) * sizeof(float)), *b = (float *)malloc((bsz + 1) * sizeof(float));
    float *c = (float *)malloc((csz + 1) * sizeof(float)), *c0 = (float *)malloc((csz + 1) * sizeof(float));
    void *ws = malloc(nn_sgemm_ws_size(m, n, k));
    int i, j, p, bad = 0;
    nn_status s;
    if (!a || !b || !c || !c0 || !ws) {
        snprintf(msg, msglen, "out of memory");
        bad = 1;
        goto done;
    }
    hb_fill_uniform(a, asz, -1.0f, 1.0f, 11);
    hb_fill_uniform(b, bsz, -1.0f, 1.0f, 12);
    hb_fill_uniform(c0, csz, -1.0f, 1.0f, 13);
    memcpy(c, c0, csz * sizeof(float));
    if (beta == 0.0f)
        for (i = 0; i < (int)csz; i++) c[i] = NAN; /* beta == 0 must not read C */
    s = nn_sgemm_ws(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ws);
    if (s != NN_OK) {
        snprintf(msg, msglen, "nn_sgemm_ws returned %s", nn_strerror(s));
        bad = 1;
        goto done;
    }
    for (i = 0; i < m && !bad; i++)
        for (j = 0; j < n; j++) {
            double acc = 0.0, mag = 0.0, ref, err;
            for (p = 0; p < k; p++) {
                double x = ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                double y = tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                acc += x * y;
                mag += fabs(x * y);
            }
            ref = alpha * acc + (beta == 0.0f ? 0.0 : beta * (double)c0[(size_t)i * ldc + j]);
            err = fabs((double)c[(size_t)i * ldc + j] - ref);
            if (!(err <= 4.0 * (k + 2) * 1.2e-7 * (fabs(alpha) * mag + fabs(beta) + 1.0))) {
                snprintf(msg, msglen, "ta=%d tb=%d m=%d n=%d k=%d: C[%d][%d]=%g, expected %g", ta, tb, m, n, k, i, j,
                         (double)c[(size_t)i * ldc + j], ref);
                bad = 1;
                break;
            }
        }
done:
    free(a);
    free(b);
    free(c);
    free(c0);
    free(ws);
    return bad;
}

int hb_sgemm_selfcheck(int backend, char *msg, size_t msglen) {
    static const int shapes[][3] = {{37, 53, 71}, {1, 1, 1}, {5, 300, 9}, {130, 17, 260}, {64, 64, 64}};
    int s, ta, tb;
    if (nn_set_backend((nn_backend)backend) != NN_OK) {
        snprintf(msg, msglen, "backend unavailable");
        return 1;
    }
    for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++)
        for (ta = 0; ta < 2; ta++)
            for (tb = 0; tb < 2; tb++) {
                if (hb__check_one(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 1.0f, 0.0f, msg, msglen))
                    return 1;
                if (hb__check_one(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], -0.5f, 0.75f, msg, msglen))
                    return 1;
            }
    snprintf(msg, msglen, "ok");
    return 0;
}

/* FMA throughput peak of one core, for calibrating the SGEMM table: 12
 * independent accumulator chains (enough for 2 FMA pipes x 4-5 cycles of
 * latency) of a*x + y.  Compiled with target attributes, like nn.h. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HB__CHAINS(T, SET1, FMA, ADD)                                                               \
    volatile float s0 = 1.0f;                                                                         \
    T a0 = SET1(s0), a1 = SET1(s0 + 1), a2 = SET1(s0 + 2), a3 = SET1(s0 + 3), a4 = SET1(s0 + 4);       \
    T a5 = SET1(s0 + 5), a6 = SET1(s0 + 6), a7 = SET1(s0 + 7), a8 = SET1(s0 + 8), a9 = SET1(s0 + 9);   \
    T a10 = SET1(s0 + 10), a11 = SET1(s0 + 11), x = SET1(0.9999f), y = SET1(1e-4f);                  \
    long i;                                                                                           \
    for (i = 0; i < iters; i++) {                                                                     \
        a0 = FMA(a0, x, y); a1 = FMA(a1, x, y); a2 = FMA(a2, x, y); a3 = FMA(a3, x, y);               \
        a4 = FMA(a4, x, y); a5 = FMA(a5, x, y); a6 = FMA(a6, x, y); a7 = FMA(a7, x, y);               \
        a8 = FMA(a8, x, y); a9 = FMA(a9, x, y); a10 = FMA(a10, x, y); a11 = FMA(a11, x, y);           \
    }                                                                                                 \
    a0 = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                           \
    a0 = ADD(a0, ADD(ADD(a8, a9), ADD(a10, a11)))

__attribute__((target("fma"))) static float hb__peak_scalar(long iters) {
    HB__CHAINS(__m128, _mm_set_ss, _mm_fmadd_ss, _mm_add_ss);
    return _mm_cvtss_f32(a0);
}
__attribute__((target("avx2,fma"))) static float hb__peak_avx2(long iters) {
    HB__CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps);
    return _mm256_cvtss_f32(a0);
}
__attribute__((target("avx512f,fma"))) static float hb__peak_avx512(long iters) {
    HB__CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps);
    return _mm512_cvtss_f32(a0);
}
#endif

double hb_fma_peak_run(int backend, long iters) {
#if defined(__x86_64__) || defined(__i386__)
    switch (backend) {
    case NN_BACKEND_SCALAR: return hb__peak_scalar(iters);
    case NN_BACKEND_AVX2: return hb__peak_avx2(iters);
    case NN_BACKEND_AVX512: return hb__peak_avx512(iters);
    default: break;
    }
#endif
    (void)backend;
    (void)iters;
    return 0.0;
}
int hb_fma_peak_lanes(int backend) {
#if defined(__x86_64__) || defined(__i386__)
    switch (backend) {
    case NN_BACKEND_SCALAR: return 1;
    case NN_BACKEND_AVX2: return 8;
    case NN_BACKEND_AVX512: return 16;
    default: break;
    }
#endif
    (void)backend;
    return 0;
}

/* ---- int8 GEMM (nn.h section 4.9) ---------------------------------------- */
struct hb_q8 {
    int m, n, k;
    size_t lda;
    unsigned char *a;
    signed char *bp;
    int32_t *c;
};
hb_q8 *hb_q8_new(int m, int n, int k, uint64_t seed) {
    hb_q8 *q = (hb_q8 *)calloc(1, sizeof *q);
    signed char *b;
    nn_rng r;
    size_t i;
    if (!q) return NULL;
    q->m = m, q->n = n, q->k = k;
    q->lda = 4 * nn__q8_k4((size_t)k);
    q->a = (unsigned char *)malloc((size_t)m * q->lda);
    q->bp = (signed char *)malloc(nn__q8_pack_bytes((size_t)k, (size_t)n));
    q->c = (int32_t *)malloc((size_t)m * (size_t)n * sizeof(int32_t));
    b = (signed char *)malloc((size_t)k * (size_t)n);
    if (!q->a || !q->bp || !q->c || !b) {
        free(b);
        hb_q8_free(q);
        return NULL;
    }
    nn_rng_seed(&r, seed);
    for (i = 0; i < (size_t)m * q->lda; i++) q->a[i] = (unsigned char)nn_rng_below(&r, 256);
    for (i = 0; i < (size_t)k * (size_t)n; i++) b[i] = (signed char)((int)nn_rng_below(&r, 255) - 127);
    nn__q8_pack((size_t)k, (size_t)n, b, (size_t)n, q->bp);
    free(b);
    return q;
}
int hb_q8_run(hb_q8 *q, int backend) {
    /* the tables looked up once: nn__table_for asks CPUID, which a VM traps */
    static const nn__ktab *tabs[NN_BACKEND_COUNT];
    static int looked[NN_BACKEND_COUNT];
    const nn__ktab *t;
    if (backend <= 0 || backend >= (int)NN_BACKEND_COUNT) return -1;
    if (!looked[backend]) tabs[backend] = nn__table_for((nn_backend)backend), looked[backend] = 1;
    t = tabs[backend];
    if (!t) return -1;
    nn__q8_gemm(t, (size_t)q->m, (size_t)q->n, (size_t)q->k, q->a, q->lda, q->bp, q->c, (size_t)q->n);
    return (int)q->c[0];
}
void hb_q8_free(hb_q8 *q) {
    if (!q) return;
    free(q->a);
    free(q->bp);
    free(q->c);
    free(q);
}
