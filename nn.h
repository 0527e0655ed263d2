/* nn.h - a SIMD-optimised, single-header C library for training and running
 *        small neural networks.                           public domain / MIT
 *
 * Not to be confused with the other projects called "nn.h" (tsoding's nn.h
 * and others): this is an stb-style library with run-time SIMD dispatch.
 *
 * USAGE
 *   In exactly one C or C++ file:
 *       #define NN_IMPLEMENTATION
 *       #include "nn.h"
 *   Everywhere else just #include "nn.h".  Build: cc -O2 prog.c -lm
 *   No -mavx2 is needed: AVX2 / AVX-512 kernels are compiled with target
 *   attributes and chosen at run time (see nn_set_backend).
 *
 * CONFIGURATION (define before including the implementation)
 *   NN_STATIC          all functions static (private copy per translation unit)
 *   NN_MALLOC/NN_FREE  replace the allocator (define both or neither)
 *   NN_ASSERT(x)       replace assert (used only for internal invariants)
 *   NN_NO_SIMD         build the scalar backend only
 *
 * GLOBAL STATE
 *   The only process-global mutable state is the kernel backend choice
 *   (nn_set_backend).  Set it before training.  nn.h is single-threaded
 *   today; separate models may be used from separate threads as long as
 *   nobody changes the backend meanwhile.
 *
 * VALIDATION POLICY
 *   Functions returning nn_status validate their arguments (null pointers,
 *   negative sizes, leading dimensions) and never crash on bad input.  The
 *   vector kernels nn_v*() and the other void kernels are hot-path calls that
 *   trust their caller: sizes and pointers must be right.
 *
 * TABLE OF CONTENTS   (grep -n "^/\* =\+ [0-9]" nn.h)
 *   1. Configuration
 *   2. Public types and API
 *   3. Platform: allocation, CPU features, RNG, status strings
 *   4. Kernels
 *      4.1 scalar backend (the reference)
 *      4.2 SIMD kernels written once against a small vocabulary
 *      4.3 AVX2+FMA, 4.4 AVX-512, 4.5 NEON vocabularies and micro-kernels
 *      4.6 backend table and dispatch
 *      4.7 SGEMM driver (packing, blocking)
 *      4.8 im2col / col2im
 *
 * LICENSE: see end of file.
 */

/* ========================================================================= */
/* ==== 1. Configuration                                                      */
/* ========================================================================= */
#ifndef NN_H_INCLUDED
#define NN_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define NN_VERSION_MAJOR 0
#define NN_VERSION_MINOR 1
#define NN_VERSION_PATCH 0
#define NN_VERSION "0.1.0"

#ifndef NNDEF
#ifdef NN_STATIC
#define NNDEF static
#else
#define NNDEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ========================================================================= */
/* ==== 2. Public types and API                                               */
/* ========================================================================= */

/* ---- status ------------------------------------------------------------- */
typedef enum nn_status {
    NN_OK = 0,
    NN_ERR_INVALID_ARGUMENT, /* null pointer, negative size, bad stride      */
    NN_ERR_NO_MEMORY,        /* NN_MALLOC returned NULL                      */
    NN_ERR_UNSUPPORTED,      /* backend not compiled in or not on this CPU   */
    NN_ERR_SHAPE,            /* shapes do not fit together                   */
    NN_ERR_IO,               /* could not open / read / write a file         */
    NN_ERR_FORMAT,           /* malformed, truncated or corrupt file         */
    NN_ERR_NONFINITE,        /* NaN or Inf in data, loss or activations      */
    NN_ERR_STATE             /* call not valid in the object's current state */
} nn_status;

/* A sentence describing a status code; never NULL. */
NNDEF const char *nn_strerror(nn_status s);

/* ---- kernel backends (the one piece of global state) -------------------- */
typedef enum nn_backend {
    NN_BACKEND_AUTO = 0,
    NN_BACKEND_SCALAR,
    NN_BACKEND_AVX2,   /* AVX2 + FMA                         */
    NN_BACKEND_AVX512, /* AVX-512F (Zen 4/5, Skylake-X ...)   */
    NN_BACKEND_NEON    /* aarch64 Advanced SIMD              */
} nn_backend;

/* Select the kernels.  AUTO honours the NN_BACKEND environment variable
 * (scalar|avx2|avx512|neon|auto) when set, else picks the best the CPU and
 * OS support.  Returns NN_ERR_UNSUPPORTED (and changes nothing) when the
 * build or the CPU lacks the backend, NN_ERR_INVALID_ARGUMENT for an
 * unknown value. */
NNDEF nn_status nn_set_backend(nn_backend b);
/* The concrete backend in use (never AUTO).  First call initialises AUTO. */
NNDEF nn_backend nn_get_backend(void);
/* 1 when the backend is compiled in and the CPU/OS can run it. */
NNDEF int nn_backend_available(nn_backend b);
/* "scalar", "avx2", "avx512", "neon", "auto"; "unknown" otherwise. */
NNDEF const char *nn_backend_name(nn_backend b);
/* Parse one of the names above (case-sensitive). */
NNDEF nn_status nn_backend_from_name(const char *name, nn_backend *out);
/* A short description of the CPU ("AMD EPYC ... family 26 avx2 avx512f"). */
NNDEF const char *nn_cpu_description(void);

/* ---- memory --------------------------------------------------------------- */
/* 64-byte aligned block from NN_MALLOC (over-allocates); NULL on failure
 * or overflow.  Free with nn_aligned_free. */
NNDEF void *nn_aligned_alloc(size_t bytes);
NNDEF void nn_aligned_free(void *p);

/* ---- random numbers: PCG32, seeded, reproducible --------------------------- */
typedef struct nn_rng {
    uint64_t state, inc;
} nn_rng;
NNDEF void nn_rng_seed(nn_rng *r, uint64_t seed);
NNDEF uint32_t nn_rng_u32(nn_rng *r);
NNDEF uint32_t nn_rng_below(nn_rng *r, uint32_t bound); /* uniform in [0,bound) */
NNDEF float nn_rng_uniform(nn_rng *r);                  /* uniform in [0,1)     */
NNDEF float nn_rng_normal(nn_rng *r);                   /* N(0,1), Box-Muller  */

/* ---- tensors ---------------------------------------------------------------- */
/* float32, row-major, up to 4 dimensions; images are NHWC, sequences
 * (batch, time, features).  data is 64-byte aligned when nn.h allocated it. */
#define NN_MAX_DIMS 4
typedef struct nn_tensor {
    float *data;
    int ndim;
    int shape[NN_MAX_DIMS];
    size_t size; /* product of shape */
    int owns;    /* 1 when nn_tensor_free releases data */
} nn_tensor;
/* Allocate a zero-filled tensor; dims with ndim entries, each > 0. */
NNDEF nn_status nn_tensor_init(nn_tensor *t, int ndim, const int *dims);
/* Wrap caller memory (not freed by nn_tensor_free). */
NNDEF nn_status nn_tensor_wrap(nn_tensor *t, float *data, int ndim, const int *dims);
NNDEF void nn_tensor_free(nn_tensor *t);
NNDEF void nn_tensor_fill(nn_tensor *t, float v);

/* ---- vector kernels (hot path: no validation, any alignment) -------------
 * They run on the current backend.  In-place use (y == x) is allowed.     */
NNDEF void nn_vadd(size_t n, const float *a, const float *b, float *y); /* y = a + b   */
NNDEF void nn_vsub(size_t n, const float *a, const float *b, float *y); /* y = a - b   */
NNDEF void nn_vmul(size_t n, const float *a, const float *b, float *y); /* y = a * b   */
NNDEF void nn_vscale(size_t n, float s, const float *x, float *y);      /* y = s * x   */
NNDEF void nn_vaxpy(size_t n, float a, const float *x, float *y);       /* y += a * x  */
NNDEF float nn_vdot(size_t n, const float *a, const float *b);          /* sum a*b     */
NNDEF float nn_vsum(size_t n, const float *x);                          /* sum x       */
NNDEF float nn_vmax(size_t n, const float *x);                          /* max x; -inf if n==0 */
NNDEF void nn_vexp(size_t n, const float *x, float *y);                 /* y = e^x     */
NNDEF void nn_vrelu(size_t n, const float *x, float *y);                /* y = max(x,0), NaN kept */
NNDEF void nn_vsigmoid(size_t n, const float *x, float *y);             /* y = 1/(1+e^-x) */
NNDEF void nn_vtanh(size_t n, const float *x, float *y);                /* y = tanh x  */
/* Derivatives from the forward output y:  dx = dy * f'(x)                 */
NNDEF void nn_vrelu_backward(size_t n, const float *y, const float *dy, float *dx);    /* dy*(y>0) */
NNDEF void nn_vsigmoid_backward(size_t n, const float *y, const float *dy, float *dx); /* dy*y*(1-y) */
NNDEF void nn_vtanh_backward(size_t n, const float *y, const float *dy, float *dx);    /* dy*(1-y^2) */
/* Row-wise softmax of a rows x cols matrix, stable (subtracts the row max). */
NNDEF void nn_softmax_rows(size_t rows, size_t cols, const float *x, float *y);
/* dx = y * (dy - sum_j dy_j y_j), row-wise. */
NNDEF void nn_softmax_backward_rows(size_t rows, size_t cols, const float *y, const float *dy, float *dx);

/* 2x2 max-pool, stride 2, NHWC.  x (n,h,w,c) -> y (n,h/2,w/2,c), floor.
 * Backward writes every element of dx (n,h,w,c): dy goes to the first
 * maximum of each window (row-major order), zero elsewhere. */
NNDEF void nn_maxpool2x2(int n, int h, int w, int c, const float *x, float *y);
NNDEF void nn_maxpool2x2_backward(int n, int h, int w, int c, const float *x, const float *y,
                                  const float *dy, float *dx);

/* Optimizer updates over a flat parameter buffer (PyTorch's formulas).
 * SGD:  g' = g + wd*w;  v = mu*v + g';  step = nesterov ? g' + mu*v : v
 *       (mu == 0: step = g', v untouched and may be NULL);  w -= lr*step  */
NNDEF void nn_sgd_update(size_t n, float *w, const float *g, float *v, float lr, float momentum,
                         float weight_decay, int nesterov);
/* Adam (adamw=0: L2 wd added to g) / AdamW (adamw=1: w *= 1-lr*wd).  t is
 * the 1-based step.  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 * w -= (lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps)                  */
NNDEF void nn_adam_update(size_t n, float *w, const float *g, float *m, float *v, float lr, float beta1,
                          float beta2, float eps, float weight_decay, int adamw, long t);

/* ---- SGEMM ------------------------------------------------------------------
 * Row-major BLAS semantics: C = alpha*op(A)*op(B) + beta*C, op(X) = X or X^T
 * (transa/transb 0 or 1).  op(A) is m x k, op(B) k x n, C m x n.  beta == 0
 * never reads C.  Returns NN_ERR_INVALID_ARGUMENT for negative sizes, bad
 * leading dimensions or null pointers (when the matrix is used).
 * nn_sgemm allocates its packing buffer per call (NN_MALLOC);
 * nn_sgemm_ws takes workspace of nn_sgemm_ws_size(m,n,k) bytes (any
 * alignment) and allocates nothing. */
NNDEF nn_status nn_sgemm(int transa, int transb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);
NNDEF size_t nn_sgemm_ws_size(int m, int n, int k);
NNDEF nn_status nn_sgemm_ws(int transa, int transb, int m, int n, int k, float alpha, const float *a, int lda,
                            const float *b, int ldb, float beta, float *c, int ldc, void *workspace);

/* ---- convolution geometry, im2col / col2im (NHWC) -------------------------
 * x (n,h,w,c); a kh x kw window at stride (sh,sw) with pt/pl zeros on top /
 * left (and whatever the bottom / right needs).  col has one row per output
 * pixel (n*oh*ow rows) and kh*kw*c columns ordered (ky, kx, channel),
 * matching weights stored (KH,KW,C,F). */
typedef struct nn_conv_geom {
    int n, h, w, c;
    int kh, kw, sh, sw;
    int pt, pl;
    int oh, ow;
} nn_conv_geom;
/* same_padding 0: 'valid'; 1: 'same' (TensorFlow rule: oh = ceil(h/stride),
 * extra padding goes to the bottom/right).  Validates all sizes. */
NNDEF nn_status nn_conv_geom_init(nn_conv_geom *g, int n, int h, int w, int c, int kh, int kw, int stride,
                                  int same_padding);
/* Rows [row0, row0+rows) of the col matrix (for tiling large batches). */
NNDEF void nn_im2col(const nn_conv_geom *g, size_t row0, size_t rows, const float *x, float *col);
/* dx += col2im(col) for the same rows; zero dx first for a plain col2im. */
NNDEF void nn_col2im(const nn_conv_geom *g, size_t row0, size_t rows, const float *col, float *dx);

#ifdef __cplusplus
}
#endif
#endif /* NN_H_INCLUDED */

/* ========================================================================= */
/*                           IMPLEMENTATION                                  */
/* ========================================================================= */
#ifdef NN_IMPLEMENTATION
#ifndef NN_IMPLEMENTATION_DONE
#define NN_IMPLEMENTATION_DONE

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(NN_MALLOC) != defined(NN_FREE)
#error "nn.h: define both NN_MALLOC and NN_FREE, or neither"
#endif
#ifndef NN_MALLOC
#define NN_MALLOC(sz) malloc(sz)
#define NN_FREE(p) free(p)
#endif
#ifndef NN_ASSERT
#include <assert.h>
#define NN_ASSERT(x) assert(x)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define NN__UNUSED __attribute__((unused))
#else
#define NN__UNUSED
#endif
#ifdef NN_STATIC
#define NN__API static NN__UNUSED
#else
#define NN__API
#endif

/* Which SIMD backends are compiled in.  MSVC builds get the scalar backend
 * (it has no per-function target attribute); patches welcome. */
#if !defined(NN_NO_SIMD) && (defined(__GNUC__) || defined(__clang__))
#if defined(__x86_64__) || defined(__i386__)
#define NN__HAVE_X86 1
/* g++ 12 warns inside its own avx512fintrin.h (_mm512_undefined_ps is
 * self-initialised); the warning is located in the header, so silencing
 * it around the include is enough and leaves user code untouched. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
#include <cpuid.h>
#endif
#if defined(__aarch64__)
#define NN__HAVE_NEON 1
#include <arm_neon.h>
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ========================================================================= */
/* ==== 3. Platform: allocation, CPU features, RNG, status strings            */
/* ========================================================================= */

NN__API const char *nn_strerror(nn_status s) {
    switch (s) {
    case NN_OK: return "ok";
    case NN_ERR_INVALID_ARGUMENT: return "invalid argument";
    case NN_ERR_NO_MEMORY: return "out of memory";
    case NN_ERR_UNSUPPORTED: return "not supported by this build or CPU";
    case NN_ERR_SHAPE: return "shapes do not fit";
    case NN_ERR_IO: return "input/output error";
    case NN_ERR_FORMAT: return "malformed or corrupt data";
    case NN_ERR_NONFINITE: return "NaN or Inf encountered";
    case NN_ERR_STATE: return "invalid in the current state";
    }
    return "unknown status";
}

/* Over-allocate by 64 bytes and keep the offset in the byte before the
 * block: works with any NN_MALLOC and needs no posix_memalign (not declared
 * under -std=c99). */
NN__API void *nn_aligned_alloc(size_t bytes) {
    unsigned char *raw, *p;
    if (bytes > (size_t)-1 - 64) return NULL;
    raw = (unsigned char *)NN_MALLOC(bytes + 64);
    if (!raw) return NULL;
    p = (unsigned char *)(((uintptr_t)raw + 64) & ~(uintptr_t)63);
    p[-1] = (unsigned char)(p - raw);
    return p;
}
NN__API void nn_aligned_free(void *ptr) {
    unsigned char *p = (unsigned char *)ptr;
    if (p) NN_FREE(p - p[-1]);
}

/* PCG32 (O'Neill): small state, good statistics, identical everywhere. */
NN__API void nn_rng_seed(nn_rng *r, uint64_t seed) {
    r->state = 0;
    r->inc = (seed << 1) | 1u;
    (void)nn_rng_u32(r);
    r->state += 0x853c49e6748fea9bULL ^ seed;
    (void)nn_rng_u32(r);
}
NN__API uint32_t nn_rng_u32(nn_rng *r) {
    uint64_t old = r->state;
    uint32_t xs, rot;
    r->state = old * 6364136223846793005ULL + r->inc;
    xs = (uint32_t)(((old >> 18) ^ old) >> 27);
    rot = (uint32_t)(old >> 59);
    return (xs >> rot) | (xs << ((32 - rot) & 31));
}
NN__API uint32_t nn_rng_below(nn_rng *r, uint32_t bound) {
    /* rejection sampling: no modulo bias */
    uint32_t threshold, x;
    if (bound <= 1) return 0;
    threshold = (uint32_t)(0u - bound) % bound;
    do x = nn_rng_u32(r);
    while (x < threshold);
    return x % bound;
}
NN__API float nn_rng_uniform(nn_rng *r) { return (float)(nn_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }
NN__API float nn_rng_normal(nn_rng *r) {
    double u1 = ((double)nn_rng_u32(r) + 1.0) / 4294967297.0; /* (0,1) */
    double u2 = (double)nn_rng_u32(r) / 4294967296.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* ---- tensors ---- */
NN__API nn_status nn_tensor_init(nn_tensor *t, int ndim, const int *dims) {
    size_t size = 1;
    int i;
    if (!t) return NN_ERR_INVALID_ARGUMENT;
    memset(t, 0, sizeof *t);
    if (!dims || ndim < 1 || ndim > NN_MAX_DIMS) return NN_ERR_INVALID_ARGUMENT;
    for (i = 0; i < ndim; i++) {
        if (dims[i] <= 0 || size > ((size_t)-1 / sizeof(float)) / (size_t)dims[i]) return NN_ERR_INVALID_ARGUMENT;
        size *= (size_t)dims[i];
        t->shape[i] = dims[i];
    }
    t->data = (float *)nn_aligned_alloc(size * sizeof(float));
    if (!t->data) return NN_ERR_NO_MEMORY;
    memset(t->data, 0, size * sizeof(float));
    t->ndim = ndim;
    t->size = size;
    t->owns = 1;
    return NN_OK;
}
NN__API nn_status nn_tensor_wrap(nn_tensor *t, float *data, int ndim, const int *dims) {
    size_t size = 1;
    int i;
    if (!t) return NN_ERR_INVALID_ARGUMENT;
    memset(t, 0, sizeof *t);
    if (!data || !dims || ndim < 1 || ndim > NN_MAX_DIMS) return NN_ERR_INVALID_ARGUMENT;
    for (i = 0; i < ndim; i++) {
        if (dims[i] <= 0) return NN_ERR_INVALID_ARGUMENT;
        size *= (size_t)dims[i];
        t->shape[i] = dims[i];
    }
    t->data = data;
    t->ndim = ndim;
    t->size = size;
    return NN_OK;
}
NN__API void nn_tensor_free(nn_tensor *t) {
    if (!t) return;
    if (t->owns) nn_aligned_free(t->data);
    memset(t, 0, sizeof *t);
}
NN__API void nn_tensor_fill(nn_tensor *t, float v) {
    size_t i;
    if (!t || !t->data) return;
    for (i = 0; i < t->size; i++) t->data[i] = v;
}

/* ---- CPU features ---- */
enum { NN__CPU_AVX2 = 1, NN__CPU_AVX512 = 2, NN__CPU_NEON = 4 };

#if NN__HAVE_X86
/* xgetbv through inline asm: the _xgetbv intrinsic needs target("xsave")
 * under gcc 12.  Callers check CPUID.1:ECX.OSXSAVE first (else SIGILL). */
static uint64_t nn__xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static unsigned nn__cpu_features(void) {
    unsigned f = 0;
#if NN__HAVE_X86
    unsigned a, b, c, d, max_leaf;
    uint64_t xcr0;
    if (!__get_cpuid(0, &max_leaf, &b, &c, &d)) return 0;
    if (max_leaf < 7) return 0;
    __cpuid(1, a, b, c, d);
    if (!(c & (1u << 27))) return 0;                           /* OSXSAVE */
    if (!(c & (1u << 12)) || !(c & (1u << 28))) return 0;      /* FMA, AVX */
    xcr0 = nn__xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return 0;                          /* XMM+YMM state saved */
    __cpuid_count(7, 0, a, b, c, d);
    if (b & (1u << 5)) f |= NN__CPU_AVX2;
    /* AVX-512F, and the OS saves opmask + ZMM state */
    if ((f & NN__CPU_AVX2) && (b & (1u << 16)) && (xcr0 & 0xE6) == 0xE6) f |= NN__CPU_AVX512;
#elif NN__HAVE_NEON
    f |= NN__CPU_NEON; /* baseline on aarch64 */
#endif
    return f;
}

NN__API const char *nn_cpu_description(void) {
    /* computed on each call into a static buffer: read-only after the
     * first call in practice; not part of the documented mutable state */
    static char buf[160];
    unsigned f = nn__cpu_features();
    buf[0] = 0;
#if NN__HAVE_X86
    {
        unsigned regs[12], a, b, c, d, i, fam, model;
        char name[49];
        memset(name, 0, sizeof name);
        if (__get_cpuid(0x80000000u, &a, &b, &c, &d) && a >= 0x80000004u) {
            for (i = 0; i < 3; i++) __cpuid(0x80000002u + i, regs[4 * i], regs[4 * i + 1], regs[4 * i + 2], regs[4 * i + 3]);
            memcpy(name, regs, 48);
        }
        __cpuid(1, a, b, c, d);
        fam = (a >> 8) & 0xf;
        model = (a >> 4) & 0xf;
        if (fam == 0xf) fam += (a >> 20) & 0xff;
        if (fam >= 6) model |= ((a >> 16) & 0xf) << 4;
        i = 0;
        while (name[i] == ' ') i++;
        {
            size_t len = strlen(name + i);
            while (len > 0 && name[i + len - 1] == ' ') name[i + --len] = 0;
        }
        snprintf(buf, sizeof buf, "%s (family %u, model %u)%s%s", name + i, fam, model,
                 (f & NN__CPU_AVX2) ? " avx2" : "", (f & NN__CPU_AVX512) ? " avx512f" : "");
    }
#else
    snprintf(buf, sizeof buf, "%s%s", (f & NN__CPU_NEON) ? "aarch64 neon" : "generic cpu", "");
#endif
    return buf;
}

/* ========================================================================= */
/* ==== 4. Kernels                                                            */
/* ========================================================================= */

/* SGEMM micro-kernel arguments: C[mr x nr] = alpha * A B + beta * C over
 * depth kc.  Row i of the A panel at depth p is a[i*rsa + p*csa]: a packed
 * panel has rsa = 1, csa = MR; an unpacked op(A) is read in place (rsa =
 * lda, csa = 1 for A; rsa = 1, csa = lda for A^T), which saves the packing
 * pass when n is small.  Rows past mr are read only from packed, zero-padded
 * panels.  B is always packed: kc rows of NR floats, 64-byte aligned.
 * beta == 0 never reads C. */
typedef struct nn__uk {
    size_t kc, rsa, csa, ldc;
    const float *a, *b;
    float *c;
    float alpha, beta;
    int mr, nr;
} nn__uk;

/* One table of function pointers per backend.  Everything above this
 * section calls kernels only through nn__k (the current table). */
typedef struct nn__ktab {
    nn_backend id;
    void (*add)(size_t, const float *, const float *, float *);
    void (*sub)(size_t, const float *, const float *, float *);
    void (*mul)(size_t, const float *, const float *, float *);
    void (*scale)(size_t, float, const float *, float *);
    void (*axpy)(size_t, float, const float *, float *);
    float (*dot)(size_t, const float *, const float *);
    float (*sum)(size_t, const float *);
    float (*max)(size_t, const float *);
    void (*exp)(size_t, const float *, float *);
    void (*relu)(size_t, const float *, float *);
    void (*sigmoid)(size_t, const float *, float *);
    void (*tanh)(size_t, const float *, float *);
    void (*relu_bwd)(size_t, const float *, const float *, float *);
    void (*sigmoid_bwd)(size_t, const float *, const float *, float *);
    void (*tanh_bwd)(size_t, const float *, const float *, float *);
    void (*softmax)(size_t, size_t, const float *, float *);
    void (*softmax_bwd)(size_t, size_t, const float *, const float *, float *);
    void (*maxpool)(int, int, int, int, const float *, float *);
    void (*maxpool_bwd)(int, int, int, int, const float *, const float *, const float *, float *);
    void (*sgd)(size_t, float *, const float *, float *, float, float, float, int);
    void (*adam)(size_t, float *, const float *, float *, float *, float, float, float, float, float, float,
                 float, int);
    void (*ukr)(const struct nn__uk *u); /* SGEMM micro-kernel, see nn__uk */
    int MR, NR, MC, KC, NC;
} nn__ktab;

/* ---- 4.1 scalar backend: the reference every SIMD kernel is tested
 * against.  Plain C at the user's flags (the compiler may auto-vectorise
 * it with the baseline ISA, as it would any user loop). */
static void nn__s_add(size_t n, const float *a, const float *b, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = a[i] + b[i];
}
static void nn__s_sub(size_t n, const float *a, const float *b, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = a[i] - b[i];
}
static void nn__s_mul(size_t n, const float *a, const float *b, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = a[i] * b[i];
}
static void nn__s_scale(size_t n, float s, const float *x, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = s * x[i];
}
static void nn__s_axpy(size_t n, float a, const float *x, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] += a * x[i];
}
static float nn__s_dot(size_t n, const float *a, const float *b) {
    /* four partial sums: better rounding than one running sum, and the
     * same shape of computation as the SIMD versions */
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}
static float nn__s_sum(size_t n, const float *x) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i];
        s1 += x[i + 1];
        s2 += x[i + 2];
        s3 += x[i + 3];
    }
    for (; i < n; i++) s0 += x[i];
    return (s0 + s1) + (s2 + s3);
}
/* max propagates NaN, like torch.max */
static float nn__s_max(size_t n, const float *x) {
    float m = -INFINITY;
    size_t i;
    for (i = 0; i < n; i++) {
        if (x[i] != x[i]) return x[i];
        if (x[i] > m) m = x[i];
    }
    return m;
}
static void nn__s_exp(size_t n, const float *x, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = expf(x[i]);
}
static void nn__s_relu(size_t n, const float *x, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN stays NaN */
}
static void nn__s_sigmoid(size_t n, const float *x, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}
static void nn__s_tanh(size_t n, const float *x, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = tanhf(x[i]);
}
static void nn__s_relu_bwd(size_t n, const float *y, const float *dy, float *dx) {
    size_t i;
    for (i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
static void nn__s_sigmoid_bwd(size_t n, const float *y, const float *dy, float *dx) {
    size_t i;
    for (i = 0; i < n; i++) dx[i] = dy[i] * (y[i] * (1.0f - y[i]));
}
static void nn__s_tanh_bwd(size_t n, const float *y, const float *dy, float *dx) {
    size_t i;
    for (i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}
/* Softmax and its backward are written once over a table's own vector
 * kernels, so each backend's version uses its own max/exp/sum/scale. */
static void nn__softmax_with(const nn__ktab *k, size_t rows, size_t cols, const float *x, float *y) {
    size_t r;
    for (r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float mx = k->max(cols, xr), s;
        if (cols == 0) continue;
        if (mx == INFINITY || mx == -INFINITY) mx = 0.0f; /* inf rows give NaN like torch; -inf-only rows too */
        {
            size_t j;
            for (j = 0; j < cols; j++) yr[j] = xr[j] - mx;
        }
        k->exp(cols, yr, yr);
        s = k->sum(cols, yr);
        k->scale(cols, 1.0f / s, yr, yr);
    }
}
static void nn__softmax_bwd_with(const nn__ktab *k, size_t rows, size_t cols, const float *y, const float *dy,
                                 float *dx) {
    size_t r, j;
    for (r = 0; r < rows; r++) {
        const float *yr = y + r * cols, *dyr = dy + r * cols;
        float *dxr = dx + r * cols;
        float s = k->dot(cols, yr, dyr);
        for (j = 0; j < cols; j++) dxr[j] = yr[j] * (dyr[j] - s);
    }
}

/* 2x2 max-pool: the scalar twin defines the tie rule (first max in
 * row-major window order wins, NaN wins over numbers). */
static void nn__s_maxpool(int n, int h, int w, int c, const float *x, float *y) {
    int b, i, j, ch, oh = h / 2, ow = w / 2;
    for (b = 0; b < n; b++)
        for (i = 0; i < oh; i++)
            for (j = 0; j < ow; j++) {
                const float *p0 = x + (((size_t)b * h + 2 * i) * w + 2 * j) * c;
                const float *p1 = p0 + (size_t)w * c;
                float *o = y + (((size_t)b * oh + i) * ow + j) * c;
                for (ch = 0; ch < c; ch++) {
                    float m = p0[ch];
                    if (p0[c + ch] > m || p0[c + ch] != p0[c + ch]) m = p0[c + ch];
                    if (p1[ch] > m || p1[ch] != p1[ch]) m = p1[ch];
                    if (p1[c + ch] > m || p1[c + ch] != p1[c + ch]) m = p1[c + ch];
                    o[ch] = m;
                }
            }
}
/* Scatter dy to the first window position equal to y (NaN == NaN here via
 * bit comparison would be overkill: a NaN window already poisons training). */
static void nn__s_maxpool_bwd(int n, int h, int w, int c, const float *x, const float *y, const float *dy,
                              float *dx) {
    int b, i, j, ch, oh = h / 2, ow = w / 2;
    memset(dx, 0, (size_t)n * h * w * c * sizeof(float));
    for (b = 0; b < n; b++)
        for (i = 0; i < oh; i++)
            for (j = 0; j < ow; j++) {
                size_t o0 = (((size_t)b * oh + i) * ow + j) * c;
                size_t i0 = (((size_t)b * h + 2 * i) * w + 2 * j) * c, i1 = i0 + (size_t)w * c;
                for (ch = 0; ch < c; ch++) {
                    float m = y[o0 + ch], g = dy[o0 + ch];
                    if (x[i0 + ch] == m) dx[i0 + ch] = g;
                    else if (x[i0 + c + ch] == m) dx[i0 + c + ch] = g;
                    else if (x[i1 + ch] == m) dx[i1 + ch] = g;
                    else if (x[i1 + c + ch] == m) dx[i1 + c + ch] = g;
                }
            }
}
static void nn__s_sgd(size_t n, float *w, const float *g, float *v, float lr, float mu, float wd, int nesterov) {
    size_t i;
    for (i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        if (mu != 0.0f) {
            float vi = mu * v[i] + gi;
            v[i] = vi;
            gi = nesterov ? gi + mu * vi : vi;
        }
        w[i] -= lr * gi;
    }
}
/* step_size = lr/bc1, inv_sqrt_bc2 = 1/sqrt(bc2), decay = 1 - lr*wd (AdamW)
 * or 1; l2 = wd (Adam) or 0. */
static void nn__s_adam(size_t n, float *w, const float *g, float *m, float *v, float b1, float b2, float eps,
                       float step_size, float inv_sqrt_bc2, float decay, float l2, int unused) {
    size_t i;
    (void)unused;
    for (i = 0; i < n; i++) {
        float wi = w[i] * decay;
        float gi = g[i] + l2 * wi;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - step_size * (mi / (sqrtf(vi) * inv_sqrt_bc2 + eps));
    }
}

/* Scalar SGEMM micro-kernel, 4x8: the same blocked algorithm as the SIMD
 * backends, so the SIMD/scalar ratio measures the instruction set, not
 * the algorithm.  Fixed trip counts let the compiler keep c[][] in
 * registers. */
#define NN__S_MR 4
#define NN__S_NR 8
static void nn__s_ukr(const nn__uk *u) {
    float acc[NN__S_MR][NN__S_NR];
    const float *a = u->a, *b = u->b;
    size_t p, rs = u->rsa;
    int i, j;
    for (i = 0; i < NN__S_MR; i++)
        for (j = 0; j < NN__S_NR; j++) acc[i][j] = 0.0f;
    for (p = 0; p < u->kc; p++) {
        for (i = 0; i < NN__S_MR; i++) {
            float av = a[i * rs];
            for (j = 0; j < NN__S_NR; j++) acc[i][j] += av * b[j];
        }
        a += u->csa;
        b += NN__S_NR;
    }
    for (i = 0; i < u->mr; i++) {
        float *cr = u->c + (size_t)i * u->ldc;
        if (u->beta == 0.0f)
            for (j = 0; j < u->nr; j++) cr[j] = u->alpha * acc[i][j];
        else
            for (j = 0; j < u->nr; j++) cr[j] = u->beta * cr[j] + u->alpha * acc[i][j];
    }
}

/* ---- 4.2 SIMD kernels written once ---------------------------------------
 * Each SIMD backend defines this vocabulary, expands NN__SIMD_KERNELS(pfx)
 * and undefines it again:
 *   NN__ATTR          the target attribute every function carries
 *   NN__VF, NN__VI    float / int32 vector types; NN__W lanes
 *   NN__LD, NN__ST    unaligned load/store; NN__LDN/NN__STN first n lanes
 *                     (others read as 0, never touched in memory)
 *   NN__SET1, NN__ADD, NN__SUB, NN__MUL, NN__DIV, NN__SQRT
 *   NN__FMA(a,b,c)    a*b + c;  NN__FNMA(a,b,c)  c - a*b
 *   NN__MAX(a,b), NN__MIN(a,b)  x86 semantics: b when either is NaN
 *   NN__SEL_GT(a,b,x,y)  a > b ? x : y lane-wise (false for NaN)
 *   NN__SEL_EQ(a,b,x,y)  a == b ? x : y
 *   NN__HSUM, NN__HMAX  horizontal reductions
 *   NN__RNDI(v)       float -> int32 round-to-nearest;  NN__I2F, NN__ISHL23,
 *   NN__IADD, NN__ISRA1, NN__ISUB, NN__ISET1, NN__I2BITS (reinterpret) */

/* e^x on a vector.  Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, the
 * Cephes degree-7 polynomial for e^r, then 2^n applied as two factors
 * 2^(n>>1) 2^(n-(n>>1)) so that overflow to inf and gradual underflow to
 * subnormals come out right over the whole float range.
 * Measured against libm expf (tests/test_kernels.c, "exp accuracy"):
 *   relative error <= 3e-7 (about 3 ulp) for x in [-87.3, 88.7];
 *   absolute error <= 1e-44 below -87.3 (subnormal results);
 *   +inf above 88.7228, 0 below -103.97, NaN in -> NaN out. */
#define NN__DEF_VEXP(pfx)                                                                                    \
    NN__ATTR static inline NN__VF nn__##pfx##_vexp(NN__VF x) {                                              \
        NN__VF fn, r, p;                                                                                     \
        NN__VI ni, n1, n2;                                                                                   \
        x = NN__MIN(NN__SET1(88.73f), x); /* operand order keeps NaN */                                    \
        x = NN__MAX(NN__SET1(-104.0f), x);                                                                   \
        ni = NN__RNDI(NN__MUL(x, NN__SET1(1.44269504088896341f)));                                           \
        fn = NN__I2F(ni);                                                                                    \
        r = NN__FNMA(fn, NN__SET1(0.693359375f), x);                                                         \
        r = NN__FNMA(fn, NN__SET1(-2.12194440e-4f), r);                                                      \
        p = NN__SET1(1.9875691500E-4f);                                                                      \
        p = NN__FMA(p, r, NN__SET1(1.3981999507E-3f));                                                       \
        p = NN__FMA(p, r, NN__SET1(8.3334519073E-3f));                                                       \
        p = NN__FMA(p, r, NN__SET1(4.1665795894E-2f));                                                       \
        p = NN__FMA(p, r, NN__SET1(1.6666665459E-1f));                                                       \
        p = NN__FMA(p, r, NN__SET1(5.0000001201E-1f));                                                       \
        p = NN__FMA(p, NN__MUL(r, r), NN__ADD(r, NN__SET1(1.0f)));                                           \
        n1 = NN__ISRA1(ni);                                                                                  \
        n2 = NN__ISUB(ni, n1);                                                                               \
        p = NN__MUL(p, NN__I2BITS(NN__ISHL23(NN__IADD(n1, NN__ISET1(127)))));                               \
        return NN__MUL(p, NN__I2BITS(NN__ISHL23(NN__IADD(n2, NN__ISET1(127)))));                            \
    }

/* tanh: Eigen's rational minimax approximation (odd degree 13 over even
 * degree 6) on [-7.9988, 7.9988]; beyond that tanh rounds to +-1 within
 * 2.3e-7.  |x| < 4e-4 returns x (tanh x = x within float rounding there).
 * Measured against libm tanhf: absolute error <= 3e-7 everywhere,
 * relative error <= 4e-7 for |x| >= 1e-3 (tests: "tanh accuracy"). */
#define NN__DEF_VTANH(pfx)                                                                                   \
    NN__ATTR static inline NN__VF nn__##pfx##_vtanh(NN__VF x0) {                                            \
        NN__VF x = NN__MAX(NN__SET1(-7.99881172180175781f), NN__MIN(NN__SET1(7.99881172180175781f), x0));   \
        NN__VF x2 = NN__MUL(x, x), p, q, ax;                                                                 \
        p = NN__FMA(x2, NN__SET1(-2.76076847742355e-16f), NN__SET1(2.00018790482477e-13f));                  \
        p = NN__FMA(x2, p, NN__SET1(-8.60467152213735e-11f));                                                \
        p = NN__FMA(x2, p, NN__SET1(5.12229709037114e-08f));                                                 \
        p = NN__FMA(x2, p, NN__SET1(1.48572235717979e-05f));                                                 \
        p = NN__FMA(x2, p, NN__SET1(6.37261928875436e-04f));                                                 \
        p = NN__FMA(x2, p, NN__SET1(4.89352455891786e-03f));                                                 \
        p = NN__MUL(x, p);                                                                                   \
        q = NN__FMA(x2, NN__SET1(1.19825839466702e-06f), NN__SET1(1.18534705686654e-04f));                   \
        q = NN__FMA(x2, q, NN__SET1(2.26843463243900e-03f));                                                 \
        q = NN__FMA(x2, q, NN__SET1(4.89352518554385e-03f));                                                 \
        ax = NN__MAX(x0, NN__SUB(NN__SET1(0.0f), x0));                                                       \
        return NN__SEL_GT(NN__SET1(0.0004f), ax, x0, NN__DIV(p, q));                                         \
    }

/* Map kernels: full vectors, then one masked vector for the tail so the
 * tail gets exactly the same arithmetic as the body. */
#define NN__MAP1(name, EXPR)                                                                                 \
    NN__ATTR static void name(size_t n, const float *x, float *y) {                                          \
        size_t i = 0;                                                                                        \
        NN__VF v;                                                                                            \
        for (; i + NN__W <= n; i += NN__W) {                                                                 \
            v = NN__LD(x + i);                                                                               \
            NN__ST(y + i, EXPR);                                                                             \
        }                                                                                                    \
        if (i < n) {                                                                                         \
            v = NN__LDN(x + i, n - i);                                                                       \
            NN__STN(y + i, EXPR, n - i);                                                                     \
        }                                                                                                    \
    }
#define NN__MAP2(name, EXPR)                                                                                 \
    NN__ATTR static void name(size_t n, const float *a, const float *b, float *y) {                          \
        size_t i = 0;                                                                                        \
        NN__VF u, v;                                                                                         \
        for (; i + NN__W <= n; i += NN__W) {                                                                 \
            u = NN__LD(a + i);                                                                               \
            v = NN__LD(b + i);                                                                               \
            NN__ST(y + i, EXPR);                                                                             \
        }                                                                                                    \
        if (i < n) {                                                                                         \
            u = NN__LDN(a + i, n - i);                                                                       \
            v = NN__LDN(b + i, n - i);                                                                       \
            NN__STN(y + i, EXPR, n - i);                                                                     \
        }                                                                                                    \
    }
/* (x, y, dy) -> dx with u = y, v = dy */
#define NN__MAPB(name, EXPR) NN__MAP2(name, EXPR)

#define NN__SIMD_KERNELS(pfx)                                                                                \
    NN__DEF_VEXP(pfx)                                                                                        \
    NN__DEF_VTANH(pfx)                                                                                       \
    NN__MAP2(nn__##pfx##_add, NN__ADD(u, v))                                                                 \
    NN__MAP2(nn__##pfx##_sub, NN__SUB(u, v))                                                                 \
    NN__MAP2(nn__##pfx##_mul, NN__MUL(u, v))                                                                 \
    NN__MAP1(nn__##pfx##_exp, nn__##pfx##_vexp(v))                                                           \
    NN__MAP1(nn__##pfx##_relu, NN__MAX(NN__SET1(0.0f), v))                                                   \
    NN__MAP1(nn__##pfx##_sigmoid,                                                                            \
             NN__DIV(NN__SET1(1.0f), NN__ADD(NN__SET1(1.0f), nn__##pfx##_vexp(NN__SUB(NN__SET1(0.0f), v)))))  \
    NN__MAP1(nn__##pfx##_tanh, nn__##pfx##_vtanh(v))                                                         \
    NN__MAPB(nn__##pfx##_relu_bwd, NN__SEL_GT(u, NN__SET1(0.0f), v, NN__SET1(0.0f)))                         \
    NN__MAPB(nn__##pfx##_sigmoid_bwd, NN__MUL(v, NN__MUL(u, NN__SUB(NN__SET1(1.0f), u))))                    \
    NN__MAPB(nn__##pfx##_tanh_bwd, NN__MUL(v, NN__FNMA(u, u, NN__SET1(1.0f))))                               \
    NN__ATTR static void nn__##pfx##_scale(size_t n, float s, const float *x, float *y) {                   \
        size_t i = 0;                                                                                        \
        NN__VF vs = NN__SET1(s);                                                                             \
        for (; i + NN__W <= n; i += NN__W) NN__ST(y + i, NN__MUL(vs, NN__LD(x + i)));                         \
        if (i < n) NN__STN(y + i, NN__MUL(vs, NN__LDN(x + i, n - i)), n - i);                                 \
    }                                                                                                        \
    NN__ATTR static void nn__##pfx##_axpy(size_t n, float a, const float *x, float *y) {                    \
        size_t i = 0;                                                                                        \
        NN__VF va = NN__SET1(a);                                                                             \
        for (; i + NN__W <= n; i += NN__W) NN__ST(y + i, NN__FMA(va, NN__LD(x + i), NN__LD(y + i)));          \
        if (i < n) NN__STN(y + i, NN__FMA(va, NN__LDN(x + i, n - i), NN__LDN(y + i, n - i)), n - i);          \
    }                                                                                                        \
    /* two accumulators hide the add latency; masked tail adds zeros */                                     \
    NN__ATTR static float nn__##pfx##_dot(size_t n, const float *a, const float *b) {                       \
        size_t i = 0;                                                                                        \
        NN__VF s0 = NN__SET1(0.0f), s1 = NN__SET1(0.0f);                                                     \
        for (; i + 2 * NN__W <= n; i += 2 * NN__W) {                                                         \
            s0 = NN__FMA(NN__LD(a + i), NN__LD(b + i), s0);                                                  \
            s1 = NN__FMA(NN__LD(a + i + NN__W), NN__LD(b + i + NN__W), s1);                                  \
        }                                                                                                    \
        for (; i + NN__W <= n; i += NN__W) s0 = NN__FMA(NN__LD(a + i), NN__LD(b + i), s0);                   \
        if (i < n) s1 = NN__FMA(NN__LDN(a + i, n - i), NN__LDN(b + i, n - i), s1);                           \
        return NN__HSUM(NN__ADD(s0, s1));                                                                    \
    }                                                                                                        \
    NN__ATTR static float nn__##pfx##_sum(size_t n, const float *x) {                                       \
        size_t i = 0;                                                                                        \
        NN__VF s0 = NN__SET1(0.0f), s1 = NN__SET1(0.0f);                                                     \
        for (; i + 2 * NN__W <= n; i += 2 * NN__W) {                                                         \
            s0 = NN__ADD(s0, NN__LD(x + i));                                                                 \
            s1 = NN__ADD(s1, NN__LD(x + i + NN__W));                                                         \
        }                                                                                                    \
        for (; i + NN__W <= n; i += NN__W) s0 = NN__ADD(s0, NN__LD(x + i));                                  \
        if (i < n) s1 = NN__ADD(s1, NN__LDN(x + i, n - i));                                                  \
        return NN__HSUM(NN__ADD(s0, s1));                                                                    \
    }                                                                                                        \
    /* NaN must win (like torch.max): count NaN lanes beside the max */     \
    NN__ATTR static float nn__##pfx##_max(size_t n, const float *x) {                                       \
        size_t i = 0;                                                                                        \
        float m = -INFINITY;                                                                                 \
        if (n >= NN__W) {                                                                                    \
            NN__VF acc = NN__LD(x), nanc = NN__SEL_EQ(acc, acc, NN__SET1(0.0f), NN__SET1(1.0f));             \
            for (i = NN__W; i + NN__W <= n; i += NN__W) {                                                    \
                NN__VF v = NN__LD(x + i);                                                                    \
                nanc = NN__ADD(nanc, NN__SEL_EQ(v, v, NN__SET1(0.0f), NN__SET1(1.0f)));                      \
                acc = NN__MAX(acc, v);                                                                       \
            }                                                                                                \
            if (NN__HSUM(nanc) != 0.0f) return NAN;                                                          \
            m = NN__HMAX(acc);                                                                               \
        }                                                                                                    \
        for (; i < n; i++) {                                                                                 \
            if (x[i] != x[i]) return x[i];                                                                   \
            if (x[i] > m) m = x[i];                                                                          \
        }                                                                                                    \
        return m;                                                                                            \
    }                                                                                                        \
    NN__ATTR static void nn__##pfx##_softmax(size_t rows, size_t cols, const float *x, float *y) {          \
        size_t r, i;                                                                                         \
        for (r = 0; r < rows; r++) {                                                                         \
            const float *xr = x + r * cols;                                                                  \
            float *yr = y + r * cols, mx = nn__##pfx##_max(cols, xr);                                        \
            NN__VF vm, s = NN__SET1(0.0f), e;                                                                \
            float inv;                                                                                       \
            if (mx == INFINITY || mx == -INFINITY) mx = 0.0f;                                                \
            vm = NN__SET1(mx);                                                                               \
            for (i = 0; i + NN__W <= cols; i += NN__W) {                                                     \
                e = nn__##pfx##_vexp(NN__SUB(NN__LD(xr + i), vm));                                           \
                s = NN__ADD(s, e);                                                                           \
                NN__ST(yr + i, e);                                                                           \
            }                                                                                                \
            if (i < cols) {                                                                                  \
                e = nn__##pfx##_vexp(NN__SUB(NN__LDN(xr + i, cols - i), vm));                                \
                NN__STN(yr + i, e, cols - i);                                                                \
                s = NN__ADD(s, NN__SEL_GT(NN__SET1((float)(cols - i)), nn__##pfx##_iota(), e, NN__SET1(0.0f))); \
            }                                                                                                \
            inv = 1.0f / NN__HSUM(s);                                                                        \
            nn__##pfx##_scale(cols, inv, yr, yr);                                                            \
        }                                                                                                    \
    }                                                                                                        \
    NN__ATTR static void nn__##pfx##_softmax_bwd(size_t rows, size_t cols, const float *y, const float *dy, \
                                                 float *dx) {                                                \
        size_t r, i;                                                                                         \
        for (r = 0; r < rows; r++) {                                                                         \
            const float *yr = y + r * cols, *dyr = dy + r * cols;                                            \
            float *dxr = dx + r * cols;                                                                      \
            NN__VF s = NN__SET1(nn__##pfx##_dot(cols, yr, dyr));                                             \
            for (i = 0; i + NN__W <= cols; i += NN__W)                                                       \
                NN__ST(dxr + i, NN__MUL(NN__LD(yr + i), NN__SUB(NN__LD(dyr + i), s)));                       \
            if (i < cols)                                                                                    \
                NN__STN(dxr + i, NN__MUL(NN__LDN(yr + i, cols - i), NN__SUB(NN__LDN(dyr + i, cols - i), s)),  \
                        cols - i);                                                                           \
        }                                                                                                    \
    }                                                                                                        \
    /* max-pool over channels, vectorised along C; same tie/NaN rule as the \
     * scalar twin: take the candidate when it is greater or NaN */                                          \
    NN__ATTR static inline NN__VF nn__##pfx##_pmax(NN__VF m, NN__VF c) {                                    \
        return NN__SEL_GT(c, m, c, NN__SEL_EQ(c, c, m, c));                                                  \
    }                                                                                                        \
    NN__ATTR static void nn__##pfx##_maxpool(int n, int h, int w, int c, const float *x, float *y) {         \
        int b, i, j, ch, oh = h / 2, ow = w / 2;                                                             \
        for (b = 0; b < n; b++)                                                                              \
            for (i = 0; i < oh; i++)                                                                         \
                for (j = 0; j < ow; j++) {                                                                   \
                    const float *p0 = x + (((size_t)b * h + 2 * i) * w + 2 * j) * c;                         \
                    const float *p1 = p0 + (size_t)w * c;                                                    \
                    float *o = y + (((size_t)b * oh + i) * ow + j) * c;                                      \
                    for (ch = 0; ch + NN__W <= c; ch += NN__W) {                                             \
                        NN__VF m = NN__LD(p0 + ch);                                                          \
                        m = nn__##pfx##_pmax(m, NN__LD(p0 + c + ch));                                        \
                        m = nn__##pfx##_pmax(m, NN__LD(p1 + ch));                                            \
                        m = nn__##pfx##_pmax(m, NN__LD(p1 + c + ch));                                        \
                        NN__ST(o + ch, m);                                                                   \
                    }                                                                                        \
                    if (ch < c) {                                                                            \
                        size_t t = (size_t)(c - ch);                                                         \
                        NN__VF m = NN__LDN(p0 + ch, t);                                                      \
                        m = nn__##pfx##_pmax(m, NN__LDN(p0 + c + ch, t));                                    \
                        m = nn__##pfx##_pmax(m, NN__LDN(p1 + ch, t));                                        \
                        m = nn__##pfx##_pmax(m, NN__LDN(p1 + c + ch, t));                                    \
                        NN__STN(o + ch, m, t);                                                               \
                    }                                                                                        \
                }                                                                                            \
    }                                                                                                        \
    /* backward: each window position takes dy where it equals the max and  \
     * no earlier position did ("taken" tracks that) */                                                      \
    NN__ATTR static void nn__##pfx##_maxpool_bwd(int n, int h, int w, int c, const float *x, const float *y, \
                                                 const float *dy, float *dx) {                               \
        int b, i, j, ch, oh = h / 2, ow = w / 2, q;                                                          \
        memset(dx, 0, (size_t)n * h * w * c * sizeof(float));                                               \
        for (b = 0; b < n; b++)                                                                              \
            for (i = 0; i < oh; i++)                                                                         \
                for (j = 0; j < ow; j++) {                                                                   \
                    size_t o0 = (((size_t)b * oh + i) * ow + j) * c;                                         \
                    size_t i0 = (((size_t)b * h + 2 * i) * w + 2 * j) * c, i1 = i0 + (size_t)w * c;          \
                    size_t pos[4];                                                                           \
                    pos[0] = i0;                                                                             \
                    pos[1] = i0 + c;                                                                         \
                    pos[2] = i1;                                                                             \
                    pos[3] = i1 + c;                                                                         \
                    for (ch = 0; ch < c; ch += NN__W) {                                                      \
                        size_t t = (size_t)(c - ch) < (size_t)NN__W ? (size_t)(c - ch) : (size_t)NN__W;      \
                        NN__VF m = NN__LDN(y + o0 + ch, t), g = NN__LDN(dy + o0 + ch, t);                    \
                        NN__VF taken = NN__SET1(0.0f);                                                       \
                        for (q = 0; q < 4; q++) {                                                            \
                            NN__VF xv = NN__LDN(x + pos[q] + ch, t);                                         \
                            NN__VF hit = NN__SEL_EQ(xv, m, NN__SET1(1.0f), NN__SET1(0.0f));                  \
                            hit = NN__SEL_GT(taken, NN__SET1(0.5f), NN__SET1(0.0f), hit);                    \
                            NN__STN(dx + pos[q] + ch, NN__SEL_GT(hit, NN__SET1(0.5f), g, NN__SET1(0.0f)), t); \
                            taken = NN__ADD(taken, hit);                                                     \
                        }                                                                                    \
                    }                                                                                        \
                }                                                                                            \
    }                                                                                                        \
    NN__ATTR static void nn__##pfx##_sgd(size_t n, float *w, const float *g, float *v, float lr, float mu,    \
                                         float wd, int nesterov) {                                           \
        size_t i = 0, t;                                                                                     \
        NN__VF vlr = NN__SET1(lr), vmu = NN__SET1(mu), vwd = NN__SET1(wd);                                   \
        for (; i < n; i += NN__W) {                                                                          \
            NN__VF wi, gi, vi;                                                                               \
            t = n - i < (size_t)NN__W ? n - i : (size_t)NN__W;                                               \
            wi = NN__LDN(w + i, t);                                                                          \
            gi = NN__FMA(vwd, wi, NN__LDN(g + i, t));                                                        \
            if (mu != 0.0f) {                                                                                \
                vi = NN__FMA(vmu, NN__LDN(v + i, t), gi);                                                    \
                NN__STN(v + i, vi, t);                                                                       \
                gi = nesterov ? NN__FMA(vmu, vi, gi) : vi;                                                   \
            }                                                                                                \
            NN__STN(w + i, NN__FNMA(vlr, gi, wi), t);                                                        \
        }                                                                                                    \
    }                                                                                                        \
    NN__ATTR static void nn__##pfx##_adam(size_t n, float *w, const float *g, float *m, float *v, float b1,  \
                                          float b2, float eps, float step_size, float inv_sqrt_bc2,          \
                                          float decay, float l2, int unused) {                               \
        size_t i = 0, t;                                                                                     \
        NN__VF vb1 = NN__SET1(b1), vb2 = NN__SET1(b2), c1 = NN__SET1(1.0f - b1), c2 = NN__SET1(1.0f - b2);   \
        NN__VF ve = NN__SET1(eps), vs = NN__SET1(step_size), vi2 = NN__SET1(inv_sqrt_bc2);                   \
        NN__VF vd = NN__SET1(decay), vl2 = NN__SET1(l2);                                                     \
        (void)unused;                                                                                        \
        for (; i < n; i += NN__W) {                                                                          \
            NN__VF wi, gi, mi, vv;                                                                           \
            t = n - i < (size_t)NN__W ? n - i : (size_t)NN__W;                                               \
            wi = NN__MUL(NN__LDN(w + i, t), vd);                                                             \
            gi = NN__FMA(vl2, wi, NN__LDN(g + i, t));                                                        \
            mi = NN__FMA(vb1, NN__LDN(m + i, t), NN__MUL(c1, gi));                                           \
            vv = NN__FMA(vb2, NN__LDN(v + i, t), NN__MUL(NN__MUL(c2, gi), gi));                              \
            NN__STN(m + i, mi, t);                                                                           \
            NN__STN(v + i, vv, t);                                                                           \
            NN__STN(w + i, NN__FNMA(vs, NN__DIV(mi, NN__FMA(NN__SQRT(vv), vi2, ve)), wi), t);                \
        }                                                                                                    \
    }

/* The SGEMM micro-kernel rows, shared by the SIMD backends: each row is two
 * or more named accumulators (TRAPS: an accumulator array spills). */

#if NN__HAVE_X86
/* ---- 4.3 AVX2 + FMA ----------------------------------------------------- */
#define NN__ATTR __attribute__((target("avx2,fma")))
#define NN__W 8
#define NN__VF __m256
#define NN__VI __m256i
#define NN__LD(p) _mm256_loadu_ps(p)
#define NN__ST(p, v) _mm256_storeu_ps(p, v)
#define NN__LDN(p, n) _mm256_maskload_ps(p, nn__avx2_mask(n))
#define NN__STN(p, v, n) _mm256_maskstore_ps(p, nn__avx2_mask(n), v)
#define NN__SET1(x) _mm256_set1_ps(x)
#define NN__ADD _mm256_add_ps
#define NN__SUB _mm256_sub_ps
#define NN__MUL _mm256_mul_ps
#define NN__DIV _mm256_div_ps
#define NN__SQRT _mm256_sqrt_ps
#define NN__FMA _mm256_fmadd_ps
#define NN__FNMA _mm256_fnmadd_ps
#define NN__MAX _mm256_max_ps
#define NN__MIN _mm256_min_ps
#define NN__SEL_GT(a, b, x, y) _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_GT_OQ))
#define NN__SEL_EQ(a, b, x, y) _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_EQ_OQ))
#define NN__HSUM nn__avx2_hsum
#define NN__HMAX nn__avx2_hmax
#define NN__RNDI _mm256_cvtps_epi32
#define NN__I2F _mm256_cvtepi32_ps
#define NN__ISHL23(v) _mm256_slli_epi32(v, 23)
#define NN__IADD _mm256_add_epi32
#define NN__ISUB _mm256_sub_epi32
#define NN__ISRA1(v) _mm256_srai_epi32(v, 1)
#define NN__ISET1 _mm256_set1_epi32
#define NN__I2BITS _mm256_castsi256_ps
NN__ATTR static inline __m256i nn__avx2_mask(size_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
NN__ATTR static inline __m256 nn__avx2_iota(void) { return _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7); }
NN__ATTR static inline float nn__avx2_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
NN__ATTR static inline float nn__avx2_hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
NN__SIMD_KERNELS(avx2)

/* 6x16 micro-kernel: 12 ymm accumulators + 2 for B + 1 broadcast = 15 of
 * 16 registers; 12 FMAs per 2 loads + 6 broadcasts. */
#define NN__A2_ROW(ap, c0, c1)                                                                               \
    do {                                                                                                     \
        __m256 ai = _mm256_broadcast_ss(ap);                                                                 \
        c0 = _mm256_fmadd_ps(ai, b0, c0);                                                                    \
        c1 = _mm256_fmadd_ps(ai, b1, c1);                                                                    \
    } while (0)
/* store one row of the tile: c = alpha*acc + beta*c, first nr columns */
NN__ATTR static inline void nn__avx2_store_row(float *c, __m256 c0, __m256 c1, const nn__uk *u) {
    __m256i m0 = nn__avx2_mask((size_t)u->nr), m1 = nn__avx2_mask(u->nr > 8 ? (size_t)(u->nr - 8) : 0);
    if (u->alpha != 1.0f) {
        __m256 va = _mm256_set1_ps(u->alpha);
        c0 = _mm256_mul_ps(va, c0);
        c1 = _mm256_mul_ps(va, c1);
    }
    if (u->nr == 16) {
        if (u->beta != 0.0f) {
            __m256 vb = _mm256_set1_ps(u->beta);
            c0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), c0);
            c1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), c1);
        }
        _mm256_storeu_ps(c, c0);
        _mm256_storeu_ps(c + 8, c1);
        return;
    }
    if (u->beta != 0.0f) {
        __m256 vb = _mm256_set1_ps(u->beta);
        c0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c, m0), c0);
        c1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c + 8, m1), c1);
    }
    _mm256_maskstore_ps(c, m0, c0);
    _mm256_maskstore_ps(c + 8, m1, c1);
}
NN__ATTR static void nn__avx2_ukr(const nn__uk *u) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    size_t p, rs = u->rsa, cs = u->csa, ldc = u->ldc;
    const float *a0 = u->a, *a3 = u->a + 3 * rs, *pb = u->b;
    float *c = u->c;
    int mr = u->mr;
    for (p = 0; p < u->kc; p++) {
        __m256 b0 = _mm256_load_ps(pb), b1 = _mm256_load_ps(pb + 8);
        NN__A2_ROW(a0, c00, c01);
        NN__A2_ROW(a0 + rs, c10, c11);
        NN__A2_ROW(a0 + 2 * rs, c20, c21);
        NN__A2_ROW(a3, c30, c31);
        NN__A2_ROW(a3 + rs, c40, c41);
        NN__A2_ROW(a3 + 2 * rs, c50, c51);
        a0 += cs;
        a3 += cs;
        pb += 16;
    }
    if (mr > 0) nn__avx2_store_row(c, c00, c01, u);
    if (mr > 1) nn__avx2_store_row(c + ldc, c10, c11, u);
    if (mr > 2) nn__avx2_store_row(c + 2 * ldc, c20, c21, u);
    if (mr > 3) nn__avx2_store_row(c + 3 * ldc, c30, c31, u);
    if (mr > 4) nn__avx2_store_row(c + 4 * ldc, c40, c41, u);
    if (mr > 5) nn__avx2_store_row(c + 5 * ldc, c50, c51, u);
}
#undef NN__A2_ROW
#undef NN__ATTR
#undef NN__W
#undef NN__VF
#undef NN__VI
#undef NN__LD
#undef NN__ST
#undef NN__LDN
#undef NN__STN
#undef NN__SET1
#undef NN__ADD
#undef NN__SUB
#undef NN__MUL
#undef NN__DIV
#undef NN__SQRT
#undef NN__FMA
#undef NN__FNMA
#undef NN__MAX
#undef NN__MIN
#undef NN__SEL_GT
#undef NN__SEL_EQ
#undef NN__HSUM
#undef NN__HMAX
#undef NN__RNDI
#undef NN__I2F
#undef NN__ISHL23
#undef NN__IADD
#undef NN__ISUB
#undef NN__ISRA1
#undef NN__ISET1
#undef NN__I2BITS

/* ---- 4.4 AVX-512F --------------------------------------------------------
 * Masked loads/stores make the tails free; on Zen 4 the 512-bit ops are
 * double-pumped, so the larger register tile (not the width) is the win. */
#define NN__ATTR __attribute__((target("avx512f,avx2,fma")))
#define NN__W 16
#define NN__VF __m512
#define NN__VI __m512i
#define NN__LD(p) _mm512_loadu_ps(p)
#define NN__ST(p, v) _mm512_storeu_ps(p, v)
#define NN__LDN(p, n) _mm512_maskz_loadu_ps(nn__avx512_mask(n), p)
#define NN__STN(p, v, n) _mm512_mask_storeu_ps(p, nn__avx512_mask(n), v)
#define NN__SET1(x) _mm512_set1_ps(x)
#define NN__ADD _mm512_add_ps
#define NN__SUB _mm512_sub_ps
#define NN__MUL _mm512_mul_ps
#define NN__DIV _mm512_div_ps
#define NN__SQRT _mm512_sqrt_ps
#define NN__FMA _mm512_fmadd_ps
#define NN__FNMA _mm512_fnmadd_ps
#define NN__MAX _mm512_max_ps
#define NN__MIN _mm512_min_ps
#define NN__SEL_GT(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_GT_OQ), y, x)
#define NN__SEL_EQ(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ), y, x)
#define NN__HSUM _mm512_reduce_add_ps
#define NN__HMAX _mm512_reduce_max_ps
#define NN__RNDI _mm512_cvtps_epi32
#define NN__I2F _mm512_cvtepi32_ps
#define NN__ISHL23(v) _mm512_slli_epi32(v, 23)
#define NN__IADD _mm512_add_epi32
#define NN__ISUB _mm512_sub_epi32
#define NN__ISRA1(v) _mm512_srai_epi32(v, 1)
#define NN__ISET1 _mm512_set1_epi32
#define NN__I2BITS _mm512_castsi512_ps
NN__ATTR static inline __mmask16 nn__avx512_mask(size_t n) {
    return (__mmask16)(n >= 16 ? 0xFFFFu : ((1u << n) - 1u));
}
NN__ATTR static inline __m512 nn__avx512_iota(void) {
    return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
NN__SIMD_KERNELS(avx512)

/* 12x32 micro-kernel: 24 zmm accumulators + 2 for B + 1 broadcast = 27 of
 * 32 registers; 24 FMAs per 2 loads + 12 broadcasts.  The tile is four
 * times AVX2's, which halves the loads per FMA. */
#define NN__A5_ROW(ap, c0, c1)                                                                               \
    do {                                                                                                     \
        __m512 ai = _mm512_set1_ps(*(ap));                                                                   \
        c0 = _mm512_fmadd_ps(ai, b0, c0);                                                                    \
        c1 = _mm512_fmadd_ps(ai, b1, c1);                                                                    \
    } while (0)
/* store one row of the tile, masked past nr: no scratch tile and no
 * out-of-bounds access at the edges */
NN__ATTR static inline void nn__avx512_store_row(float *c, __m512 c0, __m512 c1, const nn__uk *u) {
    __mmask16 m0 = nn__avx512_mask((size_t)u->nr), m1 = nn__avx512_mask(u->nr > 16 ? (size_t)(u->nr - 16) : 0);
    if (u->alpha != 1.0f) {
        __m512 va = _mm512_set1_ps(u->alpha);
        c0 = _mm512_mul_ps(va, c0);
        c1 = _mm512_mul_ps(va, c1);
    }
    if (u->beta != 0.0f) {
        __m512 vb = _mm512_set1_ps(u->beta);
        c0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), c0);
        c1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), c1);
    }
    _mm512_mask_storeu_ps(c, m0, c0);
    _mm512_mask_storeu_ps(c + 16, m1, c1);
}
NN__ATTR static void nn__avx512_ukr(const nn__uk *u) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m512 c60 = c00, c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00;
    __m512 c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
    size_t p, rs = u->rsa, cs = u->csa, ldc = u->ldc;
    const float *a0 = u->a, *a3 = a0 + 3 * rs, *a6 = a0 + 6 * rs, *a9 = a0 + 9 * rs, *pb = u->b;
    float *c = u->c;
    int mr = u->mr, i;
    /* C rows are ldc apart and often map to the same L1 sets; fetching them
     * while the FMAs run hides the miss at the store */
    for (i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)i * ldc + 16), _MM_HINT_T0);
    }
    for (p = 0; p < u->kc; p++) {
        __m512 b0 = _mm512_load_ps(pb), b1 = _mm512_load_ps(pb + 16);
        NN__A5_ROW(a0, c00, c01);
        NN__A5_ROW(a0 + rs, c10, c11);
        NN__A5_ROW(a0 + 2 * rs, c20, c21);
        NN__A5_ROW(a3, c30, c31);
        NN__A5_ROW(a3 + rs, c40, c41);
        NN__A5_ROW(a3 + 2 * rs, c50, c51);
        NN__A5_ROW(a6, c60, c61);
        NN__A5_ROW(a6 + rs, c70, c71);
        NN__A5_ROW(a6 + 2 * rs, c80, c81);
        NN__A5_ROW(a9, c90, c91);
        NN__A5_ROW(a9 + rs, ca0, ca1);
        NN__A5_ROW(a9 + 2 * rs, cb0, cb1);
        a0 += cs;
        a3 += cs;
        a6 += cs;
        a9 += cs;
        pb += 32;
    }
    if (mr > 0) nn__avx512_store_row(c, c00, c01, u);
    if (mr > 1) nn__avx512_store_row(c + ldc, c10, c11, u);
    if (mr > 2) nn__avx512_store_row(c + 2 * ldc, c20, c21, u);
    if (mr > 3) nn__avx512_store_row(c + 3 * ldc, c30, c31, u);
    if (mr > 4) nn__avx512_store_row(c + 4 * ldc, c40, c41, u);
    if (mr > 5) nn__avx512_store_row(c + 5 * ldc, c50, c51, u);
    if (mr > 6) nn__avx512_store_row(c + 6 * ldc, c60, c61, u);
    if (mr > 7) nn__avx512_store_row(c + 7 * ldc, c70, c71, u);
    if (mr > 8) nn__avx512_store_row(c + 8 * ldc, c80, c81, u);
    if (mr > 9) nn__avx512_store_row(c + 9 * ldc, c90, c91, u);
    if (mr > 10) nn__avx512_store_row(c + 10 * ldc, ca0, ca1, u);
    if (mr > 11) nn__avx512_store_row(c + 11 * ldc, cb0, cb1, u);
}
#undef NN__A5_ROW
#undef NN__ATTR
#undef NN__W
#undef NN__VF
#undef NN__VI
#undef NN__LD
#undef NN__ST
#undef NN__LDN
#undef NN__STN
#undef NN__SET1
#undef NN__ADD
#undef NN__SUB
#undef NN__MUL
#undef NN__DIV
#undef NN__SQRT
#undef NN__FMA
#undef NN__FNMA
#undef NN__MAX
#undef NN__MIN
#undef NN__SEL_GT
#undef NN__SEL_EQ
#undef NN__HSUM
#undef NN__HMAX
#undef NN__RNDI
#undef NN__I2F
#undef NN__ISHL23
#undef NN__IADD
#undef NN__ISUB
#undef NN__ISRA1
#undef NN__ISET1
#undef NN__I2BITS
#endif /* NN__HAVE_X86 */

#if NN__HAVE_NEON
/* ---- 4.5 NEON (aarch64) -------------------------------------------------- */
#define NN__ATTR
#define NN__W 4
#define NN__VF float32x4_t
#define NN__VI int32x4_t
#define NN__LD(p) vld1q_f32(p)
#define NN__ST(p, v) vst1q_f32(p, v)
#define NN__LDN(p, n) nn__neon_ldn(p, n)
#define NN__STN(p, v, n) nn__neon_stn(p, v, n)
#define NN__SET1(x) vdupq_n_f32(x)
#define NN__ADD vaddq_f32
#define NN__SUB vsubq_f32
#define NN__MUL vmulq_f32
#define NN__DIV vdivq_f32
#define NN__SQRT vsqrtq_f32
#define NN__FMA(a, b, c) vfmaq_f32(c, a, b)
#define NN__FNMA(a, b, c) vfmsq_f32(c, a, b)
/* x86 semantics (second operand when either is NaN) so that every backend
 * propagates NaN the same way */
#define NN__MAX(a, b) vbslq_f32(vcgtq_f32(a, b), a, b)
#define NN__MIN(a, b) vbslq_f32(vcltq_f32(a, b), a, b)
#define NN__SEL_GT(a, b, x, y) vbslq_f32(vcgtq_f32(a, b), x, y)
#define NN__SEL_EQ(a, b, x, y) vbslq_f32(vceqq_f32(a, b), x, y)
#define NN__HSUM vaddvq_f32
#define NN__HMAX vmaxvq_f32
#define NN__RNDI vcvtnq_s32_f32
#define NN__I2F vcvtq_f32_s32
#define NN__ISHL23(v) vshlq_n_s32(v, 23)
#define NN__IADD vaddq_s32
#define NN__ISUB vsubq_s32
#define NN__ISRA1(v) vshrq_n_s32(v, 1)
#define NN__ISET1 vdupq_n_s32
#define NN__I2BITS vreinterpretq_f32_s32
static inline float32x4_t nn__neon_ldn(const float *p, size_t n) {
    float t[4] = {0, 0, 0, 0};
    memcpy(t, p, n * sizeof(float));
    return vld1q_f32(t);
}
static inline void nn__neon_stn(float *p, float32x4_t v, size_t n) {
    float t[4];
    vst1q_f32(t, v);
    memcpy(p, t, n * sizeof(float));
}
static inline float32x4_t nn__neon_iota(void) {
    static const float io[4] = {0, 1, 2, 3};
    return vld1q_f32(io);
}
NN__SIMD_KERNELS(neon)

/* 8x12 micro-kernel: 24 q-register accumulators, A by lane (vfmaq_laneq). */
#define NN__N_ROW(a, l, c0, c1, c2)                                                                          \
    do {                                                                                                     \
        c0 = vfmaq_laneq_f32(c0, b0, a, l);                                                                  \
        c1 = vfmaq_laneq_f32(c1, b1, a, l);                                                                  \
        c2 = vfmaq_laneq_f32(c2, b2, a, l);                                                                  \
    } while (0)
static inline void nn__neon_store_row(float *c, float32x4_t c0, float32x4_t c1, float32x4_t c2,
                                      const nn__uk *u) {
    float t[12];
    int j;
    vst1q_f32(t, vmulq_n_f32(c0, u->alpha));
    vst1q_f32(t + 4, vmulq_n_f32(c1, u->alpha));
    vst1q_f32(t + 8, vmulq_n_f32(c2, u->alpha));
    if (u->beta == 0.0f)
        for (j = 0; j < u->nr; j++) c[j] = t[j];
    else
        for (j = 0; j < u->nr; j++) c[j] = u->beta * c[j] + t[j];
}
static void nn__neon_ukr(const nn__uk *u) {
    float32x4_t z = vdupq_n_f32(0.0f);
    float32x4_t c00 = z, c01 = z, c02 = z, c10 = z, c11 = z, c12 = z, c20 = z, c21 = z, c22 = z;
    float32x4_t c30 = z, c31 = z, c32 = z, c40 = z, c41 = z, c42 = z, c50 = z, c51 = z, c52 = z;
    float32x4_t c60 = z, c61 = z, c62 = z, c70 = z, c71 = z, c72 = z;
    size_t p, rs = u->rsa, ldc = u->ldc;
    const float *pa = u->a, *pb = u->b;
    float *c = u->c;
    int mr = u->mr;
    for (p = 0; p < u->kc; p++) {
        float32x4_t a0, a1, b0 = vld1q_f32(pb), b1 = vld1q_f32(pb + 4), b2 = vld1q_f32(pb + 8);
        if (rs == 1) {
            a0 = vld1q_f32(pa);
            a1 = vld1q_f32(pa + 4);
        } else {
            float t[8];
            int i;
            for (i = 0; i < 8; i++) t[i] = pa[i * rs];
            a0 = vld1q_f32(t);
            a1 = vld1q_f32(t + 4);
        }
        NN__N_ROW(a0, 0, c00, c01, c02);
        NN__N_ROW(a0, 1, c10, c11, c12);
        NN__N_ROW(a0, 2, c20, c21, c22);
        NN__N_ROW(a0, 3, c30, c31, c32);
        NN__N_ROW(a1, 0, c40, c41, c42);
        NN__N_ROW(a1, 1, c50, c51, c52);
        NN__N_ROW(a1, 2, c60, c61, c62);
        NN__N_ROW(a1, 3, c70, c71, c72);
        pa += u->csa;
        pb += 12;
    }
    if (mr > 0) nn__neon_store_row(c, c00, c01, c02, u);
    if (mr > 1) nn__neon_store_row(c + ldc, c10, c11, c12, u);
    if (mr > 2) nn__neon_store_row(c + 2 * ldc, c20, c21, c22, u);
    if (mr > 3) nn__neon_store_row(c + 3 * ldc, c30, c31, c32, u);
    if (mr > 4) nn__neon_store_row(c + 4 * ldc, c40, c41, c42, u);
    if (mr > 5) nn__neon_store_row(c + 5 * ldc, c50, c51, c52, u);
    if (mr > 6) nn__neon_store_row(c + 6 * ldc, c60, c61, c62, u);
    if (mr > 7) nn__neon_store_row(c + 7 * ldc, c70, c71, c72, u);
}
#undef NN__N_ROW
#endif /* NN__HAVE_NEON */

/* ---- 4.6 backend tables and dispatch ------------------------------------ */
static void nn__s_softmax(size_t rows, size_t cols, const float *x, float *y);
static void nn__s_softmax_bwd(size_t rows, size_t cols, const float *y, const float *dy, float *dx);

/* Block sizes: KC x NR of packed B stays in L1 (32 KiB on Zen 4) while the
 * MC x KC block of A streams from L2 (1 MiB); NC bounds the packed B panel
 * (L2/L3).  Tuned with bench/ on Zen 4 and Zen 5. */
static const nn__ktab nn__tab_scalar = {
    NN_BACKEND_SCALAR, nn__s_add, nn__s_sub, nn__s_mul, nn__s_scale, nn__s_axpy, nn__s_dot, nn__s_sum, nn__s_max,
    nn__s_exp, nn__s_relu, nn__s_sigmoid, nn__s_tanh, nn__s_relu_bwd, nn__s_sigmoid_bwd, nn__s_tanh_bwd,
    nn__s_softmax, nn__s_softmax_bwd, nn__s_maxpool, nn__s_maxpool_bwd, nn__s_sgd, nn__s_adam, nn__s_ukr,
    NN__S_MR, NN__S_NR, 128, 256, 2048};
static void nn__s_softmax(size_t rows, size_t cols, const float *x, float *y) {
    nn__softmax_with(&nn__tab_scalar, rows, cols, x, y);
}
static void nn__s_softmax_bwd(size_t rows, size_t cols, const float *y, const float *dy, float *dx) {
    nn__softmax_bwd_with(&nn__tab_scalar, rows, cols, y, dy, dx);
}
#if NN__HAVE_X86
static const nn__ktab nn__tab_avx2 = {
    NN_BACKEND_AVX2, nn__avx2_add, nn__avx2_sub, nn__avx2_mul, nn__avx2_scale, nn__avx2_axpy, nn__avx2_dot,
    nn__avx2_sum, nn__avx2_max, nn__avx2_exp, nn__avx2_relu, nn__avx2_sigmoid, nn__avx2_tanh,
    nn__avx2_relu_bwd, nn__avx2_sigmoid_bwd, nn__avx2_tanh_bwd, nn__avx2_softmax, nn__avx2_softmax_bwd,
    nn__avx2_maxpool, nn__avx2_maxpool_bwd, nn__avx2_sgd, nn__avx2_adam, nn__avx2_ukr, 6, 16, 144, 512, 2048};
static const nn__ktab nn__tab_avx512 = {
    NN_BACKEND_AVX512, nn__avx512_add, nn__avx512_sub, nn__avx512_mul, nn__avx512_scale, nn__avx512_axpy,
    nn__avx512_dot, nn__avx512_sum, nn__avx512_max, nn__avx512_exp, nn__avx512_relu, nn__avx512_sigmoid,
    nn__avx512_tanh, nn__avx512_relu_bwd, nn__avx512_sigmoid_bwd, nn__avx512_tanh_bwd, nn__avx512_softmax,
    nn__avx512_softmax_bwd, nn__avx512_maxpool, nn__avx512_maxpool_bwd, nn__avx512_sgd, nn__avx512_adam,
    nn__avx512_ukr, 12, 32, 192, 512, 2048};
#endif
#if NN__HAVE_NEON
static const nn__ktab nn__tab_neon = {
    NN_BACKEND_NEON, nn__neon_add, nn__neon_sub, nn__neon_mul, nn__neon_scale, nn__neon_axpy, nn__neon_dot,
    nn__neon_sum, nn__neon_max, nn__neon_exp, nn__neon_relu, nn__neon_sigmoid, nn__neon_tanh,
    nn__neon_relu_bwd, nn__neon_sigmoid_bwd, nn__neon_tanh_bwd, nn__neon_softmax, nn__neon_softmax_bwd,
    nn__neon_maxpool, nn__neon_maxpool_bwd, nn__neon_sgd, nn__neon_adam, nn__neon_ukr, 8, 12, 128, 256, 2048};
#endif

/* THE documented global: the current kernel table (NULL until first use,
 * then set by nn_set_backend or the first kernel call, which runs AUTO). */
static const nn__ktab *nn__k_cur = NULL;

static const nn__ktab *nn__table_for(nn_backend b) {
    unsigned f = nn__cpu_features();
    (void)f;
    switch (b) {
    case NN_BACKEND_SCALAR: return &nn__tab_scalar;
#if NN__HAVE_X86
    case NN_BACKEND_AVX2: return (f & NN__CPU_AVX2) ? &nn__tab_avx2 : NULL;
    case NN_BACKEND_AVX512: return (f & NN__CPU_AVX512) ? &nn__tab_avx512 : NULL;
#endif
#if NN__HAVE_NEON
    case NN_BACKEND_NEON: return &nn__tab_neon;
#endif
    default: return NULL;
    }
}
static const nn__ktab *nn__best_table(void) {
    static const nn_backend order[] = {NN_BACKEND_AVX512, NN_BACKEND_AVX2, NN_BACKEND_NEON, NN_BACKEND_SCALAR};
    size_t i;
    for (i = 0; i < sizeof order / sizeof order[0]; i++) {
        const nn__ktab *t = nn__table_for(order[i]);
        if (t) return t;
    }
    return &nn__tab_scalar;
}
static const nn__ktab *nn__k(void) {
    if (!nn__k_cur) (void)nn_set_backend(NN_BACKEND_AUTO);
    return nn__k_cur;
}

NN__API const char *nn_backend_name(nn_backend b) {
    switch (b) {
    case NN_BACKEND_AUTO: return "auto";
    case NN_BACKEND_SCALAR: return "scalar";
    case NN_BACKEND_AVX2: return "avx2";
    case NN_BACKEND_AVX512: return "avx512";
    case NN_BACKEND_NEON: return "neon";
    }
    return "unknown";
}
NN__API nn_status nn_backend_from_name(const char *name, nn_backend *out) {
    static const nn_backend all[] = {NN_BACKEND_AUTO, NN_BACKEND_SCALAR, NN_BACKEND_AVX2, NN_BACKEND_AVX512,
                                     NN_BACKEND_NEON};
    size_t i;
    if (!name || !out) return NN_ERR_INVALID_ARGUMENT;
    for (i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, nn_backend_name(all[i])) == 0) {
            *out = all[i];
            return NN_OK;
        }
    return NN_ERR_INVALID_ARGUMENT;
}
NN__API int nn_backend_available(nn_backend b) {
    if (b == NN_BACKEND_AUTO) return 1;
    return nn__table_for(b) != NULL;
}
NN__API nn_status nn_set_backend(nn_backend b) {
    const nn__ktab *t;
    if ((int)b < (int)NN_BACKEND_AUTO || (int)b > (int)NN_BACKEND_NEON) return NN_ERR_INVALID_ARGUMENT;
    if (b == NN_BACKEND_AUTO) {
        const char *env = getenv("NN_BACKEND");
        nn_backend eb;
        t = NULL;
        /* an env value that names an available backend wins; anything else
         * (unknown name, unsupported backend) falls back to the best */
        if (env && *env && nn_backend_from_name(env, &eb) == NN_OK && eb != NN_BACKEND_AUTO) t = nn__table_for(eb);
        if (!t) t = nn__best_table();
    } else {
        t = nn__table_for(b);
        if (!t) return NN_ERR_UNSUPPORTED;
    }
    nn__k_cur = t;
    return NN_OK;
}
NN__API nn_backend nn_get_backend(void) { return nn__k()->id; }

/* ---- public wrappers: one indirect call each ---- */
NN__API void nn_vadd(size_t n, const float *a, const float *b, float *y) { nn__k()->add(n, a, b, y); }
NN__API void nn_vsub(size_t n, const float *a, const float *b, float *y) { nn__k()->sub(n, a, b, y); }
NN__API void nn_vmul(size_t n, const float *a, const float *b, float *y) { nn__k()->mul(n, a, b, y); }
NN__API void nn_vscale(size_t n, float s, const float *x, float *y) { nn__k()->scale(n, s, x, y); }
NN__API void nn_vaxpy(size_t n, float a, const float *x, float *y) { nn__k()->axpy(n, a, x, y); }
NN__API float nn_vdot(size_t n, const float *a, const float *b) { return nn__k()->dot(n, a, b); }
NN__API float nn_vsum(size_t n, const float *x) { return nn__k()->sum(n, x); }
NN__API float nn_vmax(size_t n, const float *x) { return nn__k()->max(n, x); }
NN__API void nn_vexp(size_t n, const float *x, float *y) { nn__k()->exp(n, x, y); }
NN__API void nn_vrelu(size_t n, const float *x, float *y) { nn__k()->relu(n, x, y); }
NN__API void nn_vsigmoid(size_t n, const float *x, float *y) { nn__k()->sigmoid(n, x, y); }
NN__API void nn_vtanh(size_t n, const float *x, float *y) { nn__k()->tanh(n, x, y); }
NN__API void nn_vrelu_backward(size_t n, const float *y, const float *dy, float *dx) {
    nn__k()->relu_bwd(n, y, dy, dx);
}
NN__API void nn_vsigmoid_backward(size_t n, const float *y, const float *dy, float *dx) {
    nn__k()->sigmoid_bwd(n, y, dy, dx);
}
NN__API void nn_vtanh_backward(size_t n, const float *y, const float *dy, float *dx) {
    nn__k()->tanh_bwd(n, y, dy, dx);
}
NN__API void nn_softmax_rows(size_t rows, size_t cols, const float *x, float *y) {
    nn__k()->softmax(rows, cols, x, y);
}
NN__API void nn_softmax_backward_rows(size_t rows, size_t cols, const float *y, const float *dy, float *dx) {
    nn__k()->softmax_bwd(rows, cols, y, dy, dx);
}
NN__API void nn_maxpool2x2(int n, int h, int w, int c, const float *x, float *y) {
    nn__k()->maxpool(n, h, w, c, x, y);
}
NN__API void nn_maxpool2x2_backward(int n, int h, int w, int c, const float *x, const float *y, const float *dy,
                                    float *dx) {
    nn__k()->maxpool_bwd(n, h, w, c, x, y, dy, dx);
}
NN__API void nn_sgd_update(size_t n, float *w, const float *g, float *v, float lr, float momentum,
                           float weight_decay, int nesterov) {
    nn__k()->sgd(n, w, g, v, lr, momentum, weight_decay, nesterov);
}
NN__API void nn_adam_update(size_t n, float *w, const float *g, float *m, float *v, float lr, float beta1,
                            float beta2, float eps, float weight_decay, int adamw, long t) {
    /* bias corrections in double, once per call, as PyTorch does in Python */
    double bc1 = 1.0 - pow((double)beta1, (double)t), bc2 = 1.0 - pow((double)beta2, (double)t);
    float step = (float)(lr / bc1), isb = (float)(1.0 / sqrt(bc2));
    float decay = adamw ? 1.0f - lr * weight_decay : 1.0f, l2 = adamw ? 0.0f : weight_decay;
    nn__k()->adam(n, w, g, m, v, beta1, beta2, eps, step, isb, decay, l2, 0);
}

/* ---- 4.7 SGEMM driver ----------------------------------------------------
 * Goto/BLIS blocking: for each NC block of columns, for each KC slice of
 * depth, pack op(B) into NR-wide panels; for each MC block of rows pack
 * alpha*op(A) into MR-high panels; then the micro-kernel walks NR panels
 * (outer) and MR panels (inner), so one KC x NR panel of B stays in L1
 * while A streams from L2.  Packing pads partial panels with zeros, so the
 * micro-kernel always runs full depth and only its stores are masked. */
#define NN__ALIGN_UP(x) (((x) + 15) & ~(size_t)15)


/* Depth of a K slice: at most KC, split evenly (k = 784 runs as 2 x 392,
 * not 512 + 272) so no slice is a short, overhead-dominated one. */
static int nn__gemm_kc(const nn__ktab *t, int k) {
    int slices = (k + t->KC - 1) / t->KC;
    return slices > 1 ? (k + slices - 1) / slices : k;
}
static size_t nn__gemm_ws_floats(const nn__ktab *t, int m, int n, int k) {
    size_t mc = (size_t)(m < t->MC ? m : t->MC), nc = (size_t)(n < t->NC ? n : t->NC);
    size_t kc = (size_t)nn__gemm_kc(t, k);
    mc = (mc + t->MR - 1) / t->MR * t->MR;
    nc = (nc + t->NR - 1) / t->NR * t->NR;
    return NN__ALIGN_UP(mc * kc) + NN__ALIGN_UP(nc * kc) + 16;
}

/* op(A)[i][p] for rows i0..i0+mc, depth p0..p0+kc into MR-high panels,
 * zero-padded to a whole panel. */
static void nn__pack_a(int ta, const float *a, int lda, int i0, int mc, int p0, int kc, int MR, float *pa) {
    int ir, i, p;
    for (ir = 0; ir < mc; ir += MR) {
        int mr = mc - ir < MR ? mc - ir : MR;
        if (!ta) {
            for (i = 0; i < mr; i++) {
                const float *src = a + (size_t)(i0 + ir + i) * lda + p0;
                for (p = 0; p < kc; p++) pa[(size_t)p * MR + i] = src[p];
            }
        } else {
            for (p = 0; p < kc; p++) {
                const float *src = a + (size_t)(p0 + p) * lda + i0 + ir;
                for (i = 0; i < mr; i++) pa[(size_t)p * MR + i] = src[i];
            }
        }
        if (mr < MR)
            for (p = 0; p < kc; p++)
                for (i = mr; i < MR; i++) pa[(size_t)p * MR + i] = 0.0f;
        pa += (size_t)MR * kc;
    }
}
static void nn__pack_b(int tb, const float *b, int ldb, int p0, int kc, int j0, int nc, int NR, float *pb) {
    int jr, j, p;
    for (jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        if (!tb) {
            for (p = 0; p < kc; p++) {
                const float *src = b + (size_t)(p0 + p) * ldb + j0 + jr;
                float *dst = pb + (size_t)p * NR;
                if (nr == NR) memcpy(dst, src, (size_t)NR * sizeof(float));
                else {
                    memcpy(dst, src, (size_t)nr * sizeof(float));
                    memset(dst + nr, 0, (size_t)(NR - nr) * sizeof(float));
                }
            }
        } else {
            for (j = 0; j < nr; j++) {
                const float *src = b + (size_t)(j0 + jr + j) * ldb + p0;
                for (p = 0; p < kc; p++) pb[(size_t)p * NR + j] = src[p];
            }
            if (nr < NR)
                for (p = 0; p < kc; p++)
                    for (j = nr; j < NR; j++) pb[(size_t)p * NR + j] = 0.0f;
        }
        pb += (size_t)NR * kc;
    }
}

static void nn__gemm_scale_c(int m, int n, float beta, float *c, int ldc) {
    int i, j;
    for (i = 0; i < m; i++) {
        float *cr = c + (size_t)i * ldc;
        if (beta == 0.0f) memset(cr, 0, (size_t)n * sizeof(float));
        else if (beta != 1.0f)
            for (j = 0; j < n; j++) cr[j] *= beta;
    }
}

static void nn__gemm_run(const nn__ktab *t, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                         int lda, const float *b, int ldb, float beta, float *c, int ldc, float *ws) {
    int jc, pc, ic, jr, ir, direct, kblk;
    size_t kcmax;
    size_t mcmax = (size_t)(m < t->MC ? m : t->MC);
    float *pa = ws, *pb;
    nn__uk u;
    if (m == 0 || n == 0) return;
    kblk = nn__gemm_kc(t, k);
    kcmax = (size_t)kblk;
    mcmax = (mcmax + t->MR - 1) / t->MR * t->MR;
    pb = ws + NN__ALIGN_UP(mcmax * kcmax);
    if (k == 0 || alpha == 0.0f) {
        nn__gemm_scale_c(m, n, beta, c, ldc);
        return;
    }
    /* Full MR-row panels of op(A) are read in place rather than packed:
     * packing A is a transposing copy that costs as much as the FMAs
     * when n is small (training shapes have n = 10..288), and measured on
     * Zen 5 the in-place read was as fast or faster at every shape we
     * benchmark, squares included.  Only partial panels are packed. */
    direct = 1;
    u.ldc = (size_t)ldc;
    u.alpha = alpha;
    for (jc = 0; jc < n; jc += t->NC) {
        int nc = n - jc < t->NC ? n - jc : t->NC;
        for (pc = 0; pc < k; pc += kblk) {
            int kc = k - pc < kblk ? k - pc : kblk;
            u.kc = (size_t)kc;
            u.beta = pc == 0 ? beta : 1.0f;
            nn__pack_b(tb, b, ldb, pc, kc, jc, nc, t->NR, pb);
            for (ic = 0; ic < m; ic += t->MC) {
                int mc = m - ic < t->MC ? m - ic : t->MC, mfull = mc / t->MR * t->MR;
                if (!direct) nn__pack_a(ta, a, lda, ic, mc, pc, kc, t->MR, pa);
                else if (mfull < mc) nn__pack_a(ta, a, lda, ic + mfull, mc - mfull, pc, kc, t->MR, pa);
                for (jr = 0; jr < nc; jr += t->NR) {
                    u.nr = nc - jr < t->NR ? nc - jr : t->NR;
                    u.b = pb + (size_t)jr * kc;
                    for (ir = 0; ir < mc; ir += t->MR) {
                        u.mr = mc - ir < t->MR ? mc - ir : t->MR;
                        u.c = c + (size_t)(ic + ir) * ldc + jc + jr;
                        if (!direct || u.mr < t->MR) {
                            u.a = pa + (direct ? 0 : (size_t)ir * kc);
                            u.rsa = 1;
                            u.csa = (size_t)t->MR;
                        } else if (!ta) {
                            u.a = a + (size_t)(ic + ir) * lda + pc;
                            u.rsa = (size_t)lda;
                            u.csa = 1;
                        } else {
                            u.a = a + (size_t)pc * lda + ic + ir;
                            u.rsa = 1;
                            u.csa = (size_t)lda;
                        }
                        t->ukr(&u);
                    }
                }
            }
        }
    }
}

static nn_status nn__gemm_check(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b,
                                int ldb, const float *c, int ldc) {
    int arows = ta ? k : m, acols = ta ? m : k, bcols = tb ? k : n, brows = tb ? n : k;
    if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1)) return NN_ERR_INVALID_ARGUMENT;
    if (m < 0 || n < 0 || k < 0) return NN_ERR_INVALID_ARGUMENT;
    if (lda < (acols > 1 ? acols : 1) || ldb < (bcols > 1 ? bcols : 1) || ldc < (n > 1 ? n : 1))
        return NN_ERR_INVALID_ARGUMENT;
    if (m > 0 && n > 0 && !c) return NN_ERR_INVALID_ARGUMENT;
    if (m > 0 && n > 0 && k > 0 && (!a || !b)) return NN_ERR_INVALID_ARGUMENT;
    (void)arows;
    (void)brows;
    return NN_OK;
}

/* Workspace for the largest block of any compiled-in backend, so switching
 * backends after planning memory stays safe. */
NN__API size_t nn_sgemm_ws_size(int m, int n, int k) {
    size_t best;
    if (m < 0 || n < 0 || k < 0) return 0;
    best = nn__gemm_ws_floats(&nn__tab_scalar, m, n, k);
#if NN__HAVE_X86
    {
        size_t s2 = nn__gemm_ws_floats(&nn__tab_avx2, m, n, k), s5 = nn__gemm_ws_floats(&nn__tab_avx512, m, n, k);
        if (s2 > best) best = s2;
        if (s5 > best) best = s5;
    }
#endif
#if NN__HAVE_NEON
    {
        size_t s = nn__gemm_ws_floats(&nn__tab_neon, m, n, k);
        if (s > best) best = s;
    }
#endif
    return best * sizeof(float) + 64;
}
NN__API nn_status nn_sgemm_ws(int transa, int transb, int m, int n, int k, float alpha, const float *a, int lda,
                              const float *b, int ldb, float beta, float *c, int ldc, void *workspace) {
    nn_status s = nn__gemm_check(transa, transb, m, n, k, a, lda, b, ldb, c, ldc);
    float *ws;
    if (s != NN_OK) return s;
    if (!workspace && m > 0 && n > 0 && k > 0) return NN_ERR_INVALID_ARGUMENT;
    ws = (float *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    nn__gemm_run(nn__k(), transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ws);
    return NN_OK;
}
NN__API nn_status nn_sgemm(int transa, int transb, int m, int n, int k, float alpha, const float *a, int lda,
                           const float *b, int ldb, float beta, float *c, int ldc) {
    nn_status s = nn__gemm_check(transa, transb, m, n, k, a, lda, b, ldb, c, ldc);
    void *ws;
    if (s != NN_OK) return s;
    if (m == 0 || n == 0 || k == 0 || alpha == 0.0f)
        return nn_sgemm_ws(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL);
    ws = NN_MALLOC(nn_sgemm_ws_size(m, n, k));
    if (!ws) return NN_ERR_NO_MEMORY;
    s = nn_sgemm_ws(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ws);
    NN_FREE(ws);
    return s;
}

/* ---- 4.8 im2col / col2im (NHWC) ------------------------------------------
 * Pure data movement: each window position contributes c contiguous floats,
 * so the copy is a memcpy (already the widest copy the libc has) and the
 * accumulate in col2im is the backend's vector add. */
NN__API nn_status nn_conv_geom_init(nn_conv_geom *g, int n, int h, int w, int c, int kh, int kw, int stride,
                                    int same_padding) {
    if (!g) return NN_ERR_INVALID_ARGUMENT;
    memset(g, 0, sizeof *g);
    if (n <= 0 || h <= 0 || w <= 0 || c <= 0 || kh <= 0 || kw <= 0 || stride <= 0) return NN_ERR_INVALID_ARGUMENT;
    g->n = n;
    g->h = h;
    g->w = w;
    g->c = c;
    g->kh = kh;
    g->kw = kw;
    g->sh = g->sw = stride;
    if (same_padding) {
        int ph, pw;
        g->oh = (h + stride - 1) / stride;
        g->ow = (w + stride - 1) / stride;
        ph = (g->oh - 1) * stride + kh - h;
        pw = (g->ow - 1) * stride + kw - w;
        g->pt = ph > 0 ? ph / 2 : 0;
        g->pl = pw > 0 ? pw / 2 : 0;
    } else {
        if (kh > h || kw > w) return NN_ERR_SHAPE;
        g->oh = (h - kh) / stride + 1;
        g->ow = (w - kw) / stride + 1;
    }
    return NN_OK;
}
NN__API void nn_im2col(const nn_conv_geom *g, size_t row0, size_t rows, const float *x, float *col) {
    size_t r, ohw = (size_t)g->oh * g->ow, cs = (size_t)g->c * sizeof(float);
    size_t rowlen = (size_t)g->kh * g->kw * g->c;
    for (r = 0; r < rows; r++) {
        size_t pix = row0 + r, b = pix / ohw, rem = pix % ohw;
        int oy = (int)(rem / g->ow), ox = (int)(rem % g->ow), ky, kx;
        float *dst = col + r * rowlen;
        for (ky = 0; ky < g->kh; ky++) {
            int iy = oy * g->sh - g->pt + ky;
            for (kx = 0; kx < g->kw; kx++, dst += g->c) {
                int ix = ox * g->sw - g->pl + kx;
                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) memset(dst, 0, cs);
                else memcpy(dst, x + ((b * g->h + (size_t)iy) * g->w + (size_t)ix) * g->c, cs);
            }
        }
    }
}
NN__API void nn_col2im(const nn_conv_geom *g, size_t row0, size_t rows, const float *col, float *dx) {
    const nn__ktab *t = nn__k();
    size_t r, ohw = (size_t)g->oh * g->ow;
    size_t rowlen = (size_t)g->kh * g->kw * g->c;
    for (r = 0; r < rows; r++) {
        size_t pix = row0 + r, b = pix / ohw, rem = pix % ohw;
        int oy = (int)(rem / g->ow), ox = (int)(rem % g->ow), ky, kx;
        const float *src = col + r * rowlen;
        for (ky = 0; ky < g->kh; ky++) {
            int iy = oy * g->sh - g->pt + ky;
            for (kx = 0; kx < g->kw; kx++, src += g->c) {
                int ix = ox * g->sw - g->pl + kx;
                if (iy >= 0 && iy < g->h && ix >= 0 && ix < g->w) {
                    float *d = dx + ((b * g->h + (size_t)iy) * g->w + (size_t)ix) * g->c;
                    t->add((size_t)g->c, d, src, d);
                }
            }
        }
    }
}

#ifdef __cplusplus
}
#endif
#endif /* NN_IMPLEMENTATION_DONE */
#endif /* NN_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
This software is available under 2 licenses -- choose whichever you prefer.
------------------------------------------------------------------------------
ALTERNATIVE A - MIT License
Copyright (c) 2026 the nn.h authors
Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:
The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
ALTERNATIVE B - Public Domain (www.unlicense.org)
This is free and unencumbered software released into the public domain.
Anyone is free to copy, modify, publish, use, compile, sell, or distribute this
software, either in source code form or as a compiled binary, for any purpose,
commercial or non-commercial, and by any means.
------------------------------------------------------------------------------
*/
