/* bench/harness.h - the C side of the benchmark suite.
 *
 * bench/harness.c is the one translation unit that compiles nn.h's
 * implementation, as C (#define NN_IMPLEMENTATION), at plain -O2: the
 * library dispatches AVX2 / AVX-512 at run time, so no -m flags.  The C++
 * driver (bench/bench.cc) includes nn.h for the declarations only (they are
 * extern "C") and calls the nn_* functions directly; this header adds the
 * baselines, which are compiled as C at -O2 as well. */
#ifndef NN_BENCH_HARNESS_H
#define NN_BENCH_HARNESS_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Plain libm loops (C, -O2, no -ffast-math: gcc calls the scalar libm). */
void hb_libm_expf(size_t n, const float *x, float *y);      /* y = expf(x)         */
void hb_libm_tanhf(size_t n, const float *x, float *y);     /* y = tanhf(x)        */
void hb_libm_sigmoid(size_t n, const float *x, float *y);   /* y = 1/(1+expf(-x))  */

/* Naive row-major C = A*B (no transposes), the i-k-j loop order. */
void hb_naive_sgemm(int m, int n, int k, const float *a, const float *b, float *c);

/* Uniform floats in [lo, hi) from nn.h's PCG32. */
void hb_fill_uniform(float *p, size_t n, float lo, float hi, uint64_t seed);

/* Quick correctness check of nn_sgemm_ws on one backend (all four transpose
 * combinations, odd sizes, alpha/beta) against a double-precision reference.
 * Returns 0 when every case is within tolerance; otherwise writes the first
 * failure into msg.  Leaves the backend selected. */
int hb_sgemm_selfcheck(int backend, char *msg, size_t msglen);

/* FMA peak: iters x 12 independent FMAs of hb_fma_peak_lanes(backend)
 * lanes (scalar, avx2, avx512; 0 lanes: not on this architecture).  The
 * caller checks nn_backend_available first.  Returns a value to keep. */
double hb_fma_peak_run(int backend, long iters);
int hb_fma_peak_lanes(int backend);

/* int8 GEMM (nn.h section 4.9): C (int32, m x n) = A (u8, m x k) . B (s8,
 * k x n, packed once by hb_q8_new, random data); hb_q8_run computes it once
 * on one backend's table (-1: not available) and returns C[0]. */
typedef struct hb_q8 hb_q8;
hb_q8 *hb_q8_new(int m, int n, int k, uint64_t seed);
int hb_q8_run(hb_q8 *q, int backend);
void hb_q8_free(hb_q8 *q);

#ifdef __cplusplus
}
#endif
#endif
