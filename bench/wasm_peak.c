/* wasm_peak.c - what V8 can do with WebAssembly SIMD128 arithmetic: f32x4 multiply then add
 * (no FMA: emcc 3.1.6 / clang 14 has no usable relaxed-SIMD fused multiply-add), 12 independent
 * accumulators in registers, no memory traffic.  The ceiling for nn.h's `wasm` backend, whose
 * SGEMM micro-kernel is the same two instructions per lane (bench/wasm_bench.sh measures it).
 *
 *   NODE_PATH=/usr/share/nodejs emcc -O2 -msimd128 -sWASM_ASYNC_COMPILATION=0 -o build/wasm_peak.js bench/wasm_peak.c
 *   taskset -c 0 node --no-experimental-fetch --no-liftoff build/wasm_peak.js
 *
 * --no-liftoff: V8 compiles with TurboFan, its optimizing compiler, from the start.  Without it
 * this one function stayed in Liftoff's baseline code however often it was called (node 20:
 * 16-19 GFLOP/s against 65 here); nn.h's kernels do reach TurboFan (the CNN's predict takes the
 * same time with and without the flag), so the TurboFan figure is the ceiling that applies. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c99 */
#include <stdio.h>
#include <time.h>
#include <wasm_simd128.h>

static volatile float sink; /* run() writes it: a call with an effect, kept between the clock reads */
#define NACC 12 /* 12 accumulators + 2 constants fit x86's 16 xmm registers; 14 spill */
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
__attribute__((noinline)) static float run(long n, float seed) {
    v128_t a[NACC], b = wasm_f32x4_splat(0.999f + seed * 1e-9f), c = wasm_f32x4_splat(1e-7f * seed);
    float s = 0.0f;
    long i;
    int k;
    for (k = 0; k < NACC; k++) a[k] = wasm_f32x4_splat(seed + (float)k);
    for (i = 0; i < n; i++)
        for (k = 0; k < NACC; k++) a[k] = wasm_f32x4_add(wasm_f32x4_mul(a[k], b), c);
    for (k = 0; k < NACC; k++) s += wasm_f32x4_extract_lane(a[k], 0);
    sink = s;
    return s;
}
int main(void) {
    volatile long nv = 20000; /* not a constant the compiler could fold the loop against */
    const long n = nv;
    double best = 1e9, t;
    float s = 0.0f;
    int r;
    for (r = 0; r < 4000; r++) {
        t = now();
        s += run(n, (float)r);
        t = now() - t;
        if (t < best) best = t;
    }
    printf("f32x4 multiply + add, %d chains: %.1f GFLOP/s (best of 4000 calls; checksum %g)\n", NACC,
           (double)n * NACC * 8 / best * 1e-9, (double)s);
    return 0;
}
