/* tt.h - a tiny test framework for the nn.h test suite (C99).
 *
 * One binary runs every test file.  Exactly one file defines
 * TT_IMPLEMENTATION before including tt.h (tests/test_main.c).
 *
 *   TT_CHECK(cond, fmt, ...)        one check; on failure prints fmt
 *   TT_CLOSE(a, b, rtol)            |a-b| <= rtol*max(|a|,|b|), NaN==NaN
 *   TT_CLOSE_ABS(a, b, atol)        |a-b| <= atol, NaN==NaN
 *   TT_EQ_INT(a, b)                 integer equality
 *   TT_CMP_ARR(what, got, ref, scale, n, rtol, atol)
 *                                   ONE check over a whole array: element i
 *                                   passes when both are NaN, both are the
 *                                   same infinity, or |got-ref| <= atol +
 *                                   rtol*(scale ? scale[i] : |ref[i]|)
 *   TT_SAME_ARR(what, got, ref, n)  ONE check: identical values (NaN==NaN,
 *                                   -0 == +0)
 *   tt_skip(fmt, ...)               count one skip and print it
 *   tt_info(fmt, ...)               informational line
 *   tt_ctx(fmt, ...)                context printed with every failure
 *
 * Buffers: tt_galloc(n) returns n floats that are NOT 64-byte aligned (one
 * float past an aligned address) with TT_GUARD sentinel floats on both
 * sides; TT_GUARDS_OK(p) is one check that no sentinel changed.
 * tt_xalloc(n) returns exactly n floats (malloc'd, misaligned by 4 bytes)
 * so AddressSanitizer sees any read past the end.
 *
 * Every line the binary prints for a failure starts with "FAIL ", for a
 * skip with "SKIP ", for information with "info ".  The last line is
 * "N passed, N failed, N skipped". */
#ifndef TT_H_INCLUDED
#define TT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define TT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TT_PRINTF(f, a)
#endif

#define TT_GUARD 64 /* floats on each side of a guarded buffer (> 1 zmm) */

/* Emscripten without -pthread links pthread_create to a stub that always
 * fails, and has no fork(): the tests that start threads of their own skip
 * there (nn.h's pool then runs everything on the calling thread). */
#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
#define TT_NO_USER_THREADS 1
#endif

extern long tt_passed, tt_failed, tt_skipped;

void tt_ctx(const char *fmt, ...) TT_PRINTF(1, 2);
const char *tt_ctx_get(void);
int tt_check_(int ok, const char *file, int line, const char *fmt, ...) TT_PRINTF(4, 5);
void tt_skip(const char *fmt, ...) TT_PRINTF(1, 2);
void tt_info(const char *fmt, ...) TT_PRINTF(1, 2);
int tt_close_(double a, double b, double rtol, const char *sa, const char *sb, const char *file, int line);
int tt_close_abs_(double a, double b, double atol, const char *sa, const char *sb, const char *file, int line);
int tt_eq_int_(long a, long b, const char *sa, const char *sb, const char *file, int line);
int tt_cmp_arr_(const char *file, int line, const char *what, const float *got, const float *ref,
                const float *scale, size_t n, double rtol, double atol);
int tt_same_arr_(const char *file, int line, const char *what, const float *got, const float *ref, size_t n);

float *tt_galloc(size_t n);
int tt_guards_ok_(const char *file, int line, const float *p);
void tt_gfree(float *p);
float *tt_xalloc(size_t n);
void tt_xfree(float *p);
int tt_is_nan(float x); /* bit test: immune to -ffast-math */
/* Files (tests/test_io.c): a fresh temporary path build/test_tmp_<run>_<name>
 * (./ when build/ is not writable); whole files in and out (malloc'd; NULL
 * or 0 on failure). */
const char *tt_tmp_name(const char *name, char *buf, size_t len);
int tt_write_bytes(const char *path, const void *p, size_t n);
unsigned char *tt_read_bytes(const char *path, size_t *n);
uint32_t tt_crc32(const unsigned char *p, size_t n); /* zlib's CRC-32, independent of nn.h */

#define TT_CHECK(cond, ...) tt_check_((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)
#define TT_CLOSE(a, b, rtol) tt_close_((double)(a), (double)(b), (double)(rtol), #a, #b, __FILE__, __LINE__)
#define TT_CLOSE_ABS(a, b, atol) tt_close_abs_((double)(a), (double)(b), (double)(atol), #a, #b, __FILE__, __LINE__)
#define TT_EQ_INT(a, b) tt_eq_int_((long)(a), (long)(b), #a, #b, __FILE__, __LINE__) /* each evaluated once */
#define TT_CMP_ARR(what, got, ref, scale, n, rtol, atol)                                                      \
    tt_cmp_arr_(__FILE__, __LINE__, what, got, ref, scale, n, rtol, atol)
#define TT_SAME_ARR(what, got, ref, n) tt_same_arr_(__FILE__, __LINE__, what, got, ref, n)
#define TT_GUARDS_OK(p) tt_guards_ok_(__FILE__, __LINE__, p)

/* ---- helpers for the nn.h suite (declared when nn.h came first) ---- */
#ifdef NN_H_INCLUDED
#ifndef TT_NN_DECLS
#define TT_NN_DECLS
/* Every backend of NN_BACKEND_LIST in its order (increasing preference,
 * scalar first), and the non-scalar ones every group loops over: both are
 * generated from the list, so a new line of it is picked up here. */
#define TT_NBACKENDS ((int)NN_BACKEND_COUNT - 1)
#define TT_NSIMD (TT_NBACKENDS - 1)
extern const nn_backend tt_backends[TT_NBACKENDS];
extern const nn_backend *const tt_simd_backends; /* TT_NSIMD entries: tt_backends + 1 */
/* What nn_set_backend(AUTO) picks without NN_BACKEND: the last available
 * backend of the list (scalar when no other is). */
nn_backend tt_best_backend(void);
/* Switch to b for a test group: returns 1 when available (and selected),
 * else prints one SKIP line for the group, counts it and returns 0. */
int tt_use_backend(const char *group, nn_backend b);
void tt_set_backend(nn_backend b); /* must succeed (one check on failure) */
void tt_fill_normal(nn_rng *r, float *x, size_t n, float scale);
void tt_fill_uniform(nn_rng *r, float *x, size_t n, float lo, float hi);
#endif
#endif

/* test groups (one per file) */
void test_platform(void);
void test_backend(void);
void test_kernels(void);
void test_activations(void);
void test_sgemm(void);
void test_conv(void);

#endif /* TT_H_INCLUDED */

/* ------------------------------------------------------------------------ */
#ifdef TT_IMPLEMENTATION
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long tt_passed, tt_failed, tt_skipped;
static char tt__ctx[256];

void tt_ctx(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tt__ctx, sizeof tt__ctx, fmt, ap);
    va_end(ap);
}
const char *tt_ctx_get(void) { return tt__ctx; }

static const char *tt__base(const char *file) {
    const char *s = strrchr(file, '/');
    return s ? s + 1 : file;
}

int tt_check_(int ok, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    if (ok) {
        tt_passed++;
        return 1;
    }
    tt_failed++;
    printf("FAIL [%s] %s:%d: ", tt__ctx, tt__base(file), line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return 0;
}

void tt_skip(const char *fmt, ...) {
    va_list ap;
    tt_skipped++;
    printf("SKIP ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

void tt_info(const char *fmt, ...) {
    va_list ap;
    printf("info ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

int tt_is_nan(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu) != 0;
}
static int tt__isnan_d(double x) { return x != x; }

int tt_close_(double a, double b, double rtol, const char *sa, const char *sb, const char *file, int line) {
    double m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    int ok = (tt__isnan_d(a) && tt__isnan_d(b)) || a == b || fabs(a - b) <= rtol * m;
    return tt_check_(ok, file, line, "%s ~ %s: got %.9g, expected %.9g (rel tol %.3g)", sa, sb, a, b, rtol);
}
int tt_close_abs_(double a, double b, double atol, const char *sa, const char *sb, const char *file, int line) {
    int ok = (tt__isnan_d(a) && tt__isnan_d(b)) || a == b || fabs(a - b) <= atol;
    return tt_check_(ok, file, line, "%s ~ %s: got %.9g, expected %.9g (abs tol %.3g)", sa, sb, a, b, atol);
}

int tt_eq_int_(long a, long b, const char *sa, const char *sb, const char *file, int line) {
    return tt_check_(a == b, file, line, "%s == %s: got %ld, expected %ld", sa, sb, a, b);
}

int tt_cmp_arr_(const char *file, int line, const char *what, const float *got, const float *ref,
                const float *scale, size_t n, double rtol, double atol) {
    size_t i, bad = 0, first = 0;
    double firsttol = 0, worst = 0;
    for (i = 0; i < n; i++) {
        float g = got[i], r = ref[i];
        int ok;
        double tol = atol + rtol * (scale ? fabs((double)scale[i]) : fabs((double)r));
        if (tt_is_nan(g) || tt_is_nan(r)) ok = tt_is_nan(g) && tt_is_nan(r);
        else if (isinf(g) || isinf(r)) ok = g == r;
        else ok = fabs((double)g - (double)r) <= tol;
        if (!ok) {
            double e = fabs((double)g - (double)r);
            if (!bad) {
                first = i;
                firsttol = tol;
            }
            if (!(e <= worst)) worst = e;
            bad++;
        }
    }
    if (!bad) return tt_check_(1, file, line, "%s", what);
    return tt_check_(0, file, line,
                     "%s: %lu of %lu elements differ; first at [%lu]: got %.9g (%a), expected %.9g (%a), "
                     "tol %.3g; max abs diff %.3g",
                     what, (unsigned long)bad, (unsigned long)n, (unsigned long)first, (double)got[first],
                     (double)got[first], (double)ref[first], (double)ref[first], firsttol, worst);
}

int tt_same_arr_(const char *file, int line, const char *what, const float *got, const float *ref, size_t n) {
    size_t i, bad = 0, first = 0;
    for (i = 0; i < n; i++) {
        int ok = (tt_is_nan(got[i]) && tt_is_nan(ref[i])) || got[i] == ref[i];
        if (!ok) {
            if (!bad) first = i;
            bad++;
        }
    }
    if (!bad) return tt_check_(1, file, line, "%s", what);
    return tt_check_(0, file, line, "%s: %lu of %lu elements differ; first at [%lu]: got %.9g, expected %.9g", what,
                     (unsigned long)bad, (unsigned long)n, (unsigned long)first, (double)got[first],
                     (double)ref[first]);
}

/* Guarded buffer layout (floats):  [hdr ... | a: guard TT_GUARD+1 | p: n | guard TT_GUARD]
 * a is 64-byte aligned, so p = a + TT_GUARD + 1 is 4 bytes past a 64-byte
 * boundary.  The header keeps the raw pointer and n just before a. */
static const uint32_t tt__sentinel = 0x7fc0dead; /* a quiet NaN no kernel computes */
typedef struct tt__ghdr {
    void *raw;
    size_t n;
} tt__ghdr;

float *tt_galloc(size_t n) {
    size_t total = 128 + sizeof(tt__ghdr) + (n + 2 * TT_GUARD + 1) * sizeof(float);
    unsigned char *raw = (unsigned char *)malloc(total);
    float *a, *p;
    tt__ghdr h;
    size_t i;
    if (!raw) {
        fprintf(stderr, "tt_galloc: out of memory\n");
        exit(2);
    }
    a = (float *)(((uintptr_t)raw + sizeof(tt__ghdr) + 63) & ~(uintptr_t)63);
    h.raw = raw;
    h.n = n;
    memcpy((unsigned char *)a - sizeof h, &h, sizeof h);
    p = a + TT_GUARD + 1;
    for (i = 0; i < TT_GUARD + 1; i++) memcpy(a + i, &tt__sentinel, 4);
    for (i = 0; i < TT_GUARD; i++) memcpy(p + n + i, &tt__sentinel, 4);
    for (i = 0; i < n; i++) p[i] = 0.0f;
    return p;
}
static tt__ghdr tt__hdr(const float *p) {
    tt__ghdr h;
    memcpy(&h, (const unsigned char *)(p - TT_GUARD - 1) - sizeof h, sizeof h);
    return h;
}
int tt_guards_ok_(const char *file, int line, const float *p) {
    tt__ghdr h = tt__hdr(p);
    const float *a = p - TT_GUARD - 1;
    long i;
    for (i = 0; i < TT_GUARD + 1; i++)
        if (memcmp(a + i, &tt__sentinel, 4) != 0)
            return tt_check_(0, file, line, "write before the buffer start at index %ld (n=%lu)",
                             i - (long)TT_GUARD - 1, (unsigned long)h.n);
    for (i = 0; i < TT_GUARD; i++)
        if (memcmp(p + h.n + i, &tt__sentinel, 4) != 0)
            return tt_check_(0, file, line, "write past the end at index n+%ld (n=%lu)", i, (unsigned long)h.n);
    return tt_check_(1, file, line, "guards");
}
void tt_gfree(float *p) {
    if (p) free(tt__hdr(p).raw);
}

float *tt_xalloc(size_t n) {
    float *raw = (float *)malloc((n + 1) * sizeof(float));
    if (!raw) {
        fprintf(stderr, "tt_xalloc: out of memory\n");
        exit(2);
    }
    return raw + 1;
}
void tt_xfree(float *p) {
    if (p) free(p - 1);
}

#ifdef NN_H_INCLUDED
#define TT__BACKEND_ID(id, name) NN_BACKEND_##id,
const nn_backend tt_backends[TT_NBACKENDS] = {NN_BACKEND_LIST(TT__BACKEND_ID)};
#undef TT__BACKEND_ID
/* scalar is the first line of the list (the enum follows the list), so the
 * SIMD backends are the rest of it */
typedef char tt__scalar_is_first[NN_BACKEND_SCALAR == NN_BACKEND_AUTO + 1 ? 1 : -1];
const nn_backend *const tt_simd_backends = tt_backends + 1;

nn_backend tt_best_backend(void) {
    int i;
    for (i = TT_NBACKENDS - 1; i > 0; i--)
        if (nn_backend_available(tt_backends[i])) return tt_backends[i];
    return NN_BACKEND_SCALAR;
}

int tt_use_backend(const char *group, nn_backend b) {
    if (!nn_backend_available(b)) {
        tt_skip("%s[%s]: backend not available in this build / on this CPU", group, nn_backend_name(b));
        return 0;
    }
    tt_set_backend(b);
    return 1;
}
void tt_set_backend(nn_backend b) {
    nn_status s = nn_set_backend(b);
    if (s != NN_OK) TT_CHECK(0, "nn_set_backend(%s) returned %d", nn_backend_name(b), (int)s);
}
void tt_fill_normal(nn_rng *r, float *x, size_t n, float scale) {
    size_t i;
    for (i = 0; i < n; i++) x[i] = scale * nn_rng_normal(r);
}
void tt_fill_uniform(nn_rng *r, float *x, size_t n, float lo, float hi) {
    size_t i;
    for (i = 0; i < n; i++) x[i] = lo + (hi - lo) * nn_rng_uniform(r);
}
#endif

#endif /* TT_IMPLEMENTATION */
