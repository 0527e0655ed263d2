/* kernels.c - what nn.h's kernels do on this CPU: SGEMM GFLOP/s and
 * vectorised exp throughput for every backend the CPU supports.
 *
 *   cc -O2 -o kernels examples/kernels.c -lm
 *   ./kernels
 *
 * A quick look only (wall-clock time, nn_time_seconds); bench/ has the
 * careful measurements (Google Benchmark, pinned, interleaved).
 * Flags: --backend NAME (only that backend), --size N (square SGEMM size),
 * --threads N (nn_sgemm's threads; 0: every core; default NN_THREADS or
 * every core; nn_vexp is single-threaded).
 * Ends with "RESULT best_sgemm_gflops=... simd_over_scalar=... size=N threads=N". */
#define NN_IMPLEMENTATION
#include "../nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* wall clock: with threads, CPU time (clock()) would count every worker */
static double seconds(void) { return nn_time_seconds(); }

int main(int argc, char **argv) {
    static const nn_backend all[] = {NN_BACKEND_SCALAR, NN_BACKEND_AVX2, NN_BACKEND_AVX512, NN_BACKEND_NEON};
    nn_backend only = NN_BACKEND_AUTO;
    int size = 384, i, threads = -1; /* -1: --threads not given */
    size_t b, len = (size_t)1 << 20;
    float *a, *bm, *c, *x, *y;
    double base_gf = 0, best_gf = 0;
    nn_rng rng;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
            if (nn_backend_from_name(argv[++i], &only) != NN_OK) {
                fprintf(stderr, "unknown backend '%s' (scalar|avx2|avx512|neon|auto)\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            size = atoi(argv[++i]);
            if (size < 1 || size > 4096) { fprintf(stderr, "--size must be 1..4096\n"); return 2; }
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            char *end;
            long t = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end || t < 0 || t > NN_MAX_THREADS) {
                fprintf(stderr, "%s: --threads needs a whole number in [0, %d], not '%s'\n", argv[0], NN_MAX_THREADS,
                        argv[i]);
                return 1;
            }
            threads = (int)t;
        } else {
            fprintf(stderr, "usage: %s [--backend scalar|avx2|avx512|neon|auto] [--size N] [--threads N]\n", argv[0]);
            return 2;
        }
    }
    if (threads >= 0) {
        nn_status s = nn_set_threads(threads);
        if (s != NN_OK) {
            fprintf(stderr, "%s: --threads %d: %s\n", argv[0], threads, nn_strerror(s));
            return 1;
        }
    }
    a = (float *)nn_aligned_alloc(sizeof(float) * size * size);
    bm = (float *)nn_aligned_alloc(sizeof(float) * size * size);
    c = (float *)nn_aligned_alloc(sizeof(float) * size * size);
    x = (float *)nn_aligned_alloc(sizeof(float) * len);
    y = (float *)nn_aligned_alloc(sizeof(float) * len);
    if (!a || !bm || !c || !x || !y) { fprintf(stderr, "out of memory\n"); return 1; }
    nn_rng_seed(&rng, 42);
    for (b = 0; b < (size_t)size * size; b++) { a[b] = nn_rng_uniform(&rng) - 0.5f; bm[b] = nn_rng_uniform(&rng) - 0.5f; }
    for (b = 0; b < len; b++) x[b] = 20.0f * nn_rng_uniform(&rng) - 10.0f;

    printf("nn.h %s on %s\n", NN_VERSION, nn_cpu_description());
    (void)nn_set_backend(NN_BACKEND_AUTO);
    printf("auto picks: %s; threads: %d of %d core(s)\n\n", nn_backend_name(nn_get_backend()), nn_get_threads(),
           nn_cpu_cores());
    printf("%-8s %16s %18s\n", "backend", "sgemm GFLOP/s", "exp Melem/s");
    for (b = 0; b < sizeof all / sizeof all[0]; b++) {
        double t0, t, gf, me;
        int reps;
        if (only != NN_BACKEND_AUTO && all[b] != only) continue;
        if (nn_set_backend(all[b]) != NN_OK) continue;
        reps = 0;
        t0 = seconds();
        do { nn_sgemm(0, 0, size, size, size, 1.0f, a, size, bm, size, 0.0f, c, size); reps++; } while ((t = seconds() - t0) < 0.3);
        gf = 2.0 * size * size * (double)size * reps / t * 1e-9;
        reps = 0;
        t0 = seconds();
        do { nn_vexp(len, x, y); reps++; } while ((t = seconds() - t0) < 0.2);
        me = (double)len * reps / t * 1e-6;
        printf("%-8s %16.1f %18.0f\n", nn_backend_name(all[b]), gf, me);
        if (all[b] == NN_BACKEND_SCALAR) base_gf = gf;
        if (gf > best_gf) best_gf = gf;
    }
    printf("\nRESULT best_sgemm_gflops=%.1f simd_over_scalar=%.1f size=%d threads=%d\n", best_gf,
           base_gf > 0 ? best_gf / base_gf : 0.0, size, nn_get_threads());
    nn_aligned_free(a); nn_aligned_free(bm); nn_aligned_free(c); nn_aligned_free(x); nn_aligned_free(y);
    return 0;
}
