/* The test runner: the one translation unit with NN_IMPLEMENTATION.
 *
 *   build/run_tests                       run every group
 *   build/run_tests --only NAME           run one group (platform, backend,
 *                                         kernels, activations, sgemm, conv,
 *                                         grad, optim, train, errors, io, seq,
 *                                         alloc, compat, tables, threads, parallel,
 *                                         inputgrad, oracle, safetensors, torch_files)
 *   build/run_tests --expect-backend B    only check that nn_set_backend(AUTO)
 *                                         picks B (a backend name, or "best"
 *                                         for the best available); run.sh
 *                                         calls this with NN_BACKEND set.
 *
 * Last line: "N passed, N failed, N skipped"; exit status 1 on failure. */
/* POSIX threads for the tests of calls from several threads (test_threads.c
 * and the first kernel call below) */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
/* Counting allocator for the allocation tests (tests/test_model.c,
 * test_io.c): every NN_MALLOC call is counted; call number tt_alloc_fail_at
 * (1-based, 0 = never) returns NULL, and so does any request above
 * tt_alloc_cap bytes (0 = no cap); tt_alloc_max is the largest request
 * seen; tt_alloc_live is the number of blocks not yet freed.  The counters
 * are atomic: test_threads.c allocates from several threads (the failure
 * tests run on one thread, where the counts are exact). */
long tt_alloc_calls, tt_alloc_fail_at, tt_alloc_live;
size_t tt_alloc_cap, tt_alloc_max;
void *tt_malloc(size_t n);
void tt_free(void *p);
void *tt_malloc(size_t n) {
    void *p;
    size_t mx = __atomic_load_n(&tt_alloc_max, __ATOMIC_RELAXED);
    while (n > mx && !__atomic_compare_exchange_n(&tt_alloc_max, &mx, n, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        continue;
    if (__atomic_add_fetch(&tt_alloc_calls, 1, __ATOMIC_RELAXED) == tt_alloc_fail_at ||
        (tt_alloc_cap && n > tt_alloc_cap))
        return NULL;
    p = malloc(n);
    if (p) __atomic_add_fetch(&tt_alloc_live, 1, __ATOMIC_RELAXED);
    return p;
}
void tt_free(void *p) {
    if (p) __atomic_sub_fetch(&tt_alloc_live, 1, __ATOMIC_RELAXED);
    free(p);
}
#define NN_MALLOC(sz) tt_malloc(sz)
#define NN_FREE(p) tt_free(p)

#define NN_IMPLEMENTATION
#include "nn.h"
#define TT_IMPLEMENTATION
#include "tt.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* groups of the training layer (tests/test_grad.c, test_model.c, test_io.c) */
void test_grad(void);
void test_optim(void);
void test_train(void);
void test_errors(void);
void test_alloc(void);
void test_seq(void);
void test_io(void);
void test_compat(void); /* tests/test_compat.c: format-v1 files from tests/fixtures/v1 */
void test_threads(void); /* tests/test_threads.c: separate models from separate threads */
void test_parallel(void); /* tests/test_parallel.c: the same bits for any thread count */
void test_inputgrad(void); /* tests/test_inputgrad.c: the gradient with respect to the input */
void test_oracle(void); /* tests/test_oracle.c: PyTorch's numbers (tests/fixtures/oracle) */
void test_safetensors(void); /* tests/test_safetensors.c: safetensors files both ways */
void test_int8(void);        /* tests/test_int8.c: nn_quantize, int8 inference */
void test_torch_files(void); /* tests/test_torch_files.c: files written by PyTorch (tests/fixtures/safetensors) */

/* ======================================================================== */
/* tables: the private kernel tables, reachable only from this translation   */
/* unit (it has the implementation)                                          */
/* ======================================================================== */

/* Every backend compiled in and available has a table that is its own
 * (id) and fills every slot of NN__KSLOTS; an unavailable one has none. */
static void tables_slots(void) {
    int b;
    for (b = (int)NN_BACKEND_AUTO + 1; b < (int)NN_BACKEND_COUNT; b++) {
        const nn__ktab *t = nn__table_for((nn_backend)b);
        char missing[512] = "";
        int nmissing = 0, nslots = 0;
        tt_ctx("tables[%s] slots", nn_backend_name((nn_backend)b));
        TT_CHECK((t != NULL) == (nn_backend_available((nn_backend)b) != 0),
                 "nn__table_for(%s) is %s but nn_backend_available says %d", nn_backend_name((nn_backend)b),
                 t ? "a table" : "NULL", nn_backend_available((nn_backend)b));
        if (!t) continue;
        TT_CHECK(t->id == (nn_backend)b, "the table for %s has id %d (%s)", nn_backend_name((nn_backend)b), (int)t->id,
                 nn_backend_name(t->id));
#define TT_SLOT_SET(P, slot, ret, args)                                                                            \
    nslots++;                                                                                                      \
    if (!t->slot) {                                                                                                \
        nmissing++;                                                                                                \
        if (strlen(missing) + sizeof #slot + 1 < sizeof missing) strcat(missing, " " #slot);                      \
    }
        NN__KSLOTS(TT_SLOT_SET, unused)
#undef TT_SLOT_SET
        TT_CHECK(nmissing == 0, "%d of the %d slots of the %s table are NULL:%s", nmissing, nslots,
                 nn_backend_name((nn_backend)b), missing);
    }
    tt_ctx("tables: AUTO");
    TT_CHECK(nn__best_table() == nn__table_for(tt_best_backend()),
             "nn__best_table() is the %s table, the last available of the list is %s",
             nn_backend_name(nn__best_table()->id), nn_backend_name(tt_best_backend()));
}

/* Global average pooling: every SIMD table's gap and gap_bwd against the
 * scalar twins nn__s_gap / nn__s_gap_bwd, bit for bit (the same pixels are
 * summed in the same order, lanes are channels, one division), on odd and
 * even channel counts (vector tails), misaligned guarded outputs and inputs
 * of their exact size; the scalar forward against a double mean; and a
 * model's global_avgpool2d layer (nn_predict) runs the table's kernel. */
static void tables_gap(void) {
    static const size_t ns[] = {1, 2, 3}, hws[] = {1, 2, 3, 5, 9, 16, 25, 121};
    size_t cs[43], nc = 0, ni, hi, ci, si, i;
    nn_rng r;
    for (i = 1; i <= 40; i++) cs[nc++] = i;
    cs[nc++] = 63;
    cs[nc++] = 64;
    cs[nc++] = 65;
    /* the scalar forward is the mean (each sum of hw floats within hw ulps) */
    for (hi = 0; hi < sizeof hws / sizeof hws[0]; hi++) {
        size_t n = 2, hw = hws[hi], c = 37, nx = n * hw * c, ny = n * c, bad = 0, ch, b, p;
        float *x = tt_xalloc(nx), *y = tt_galloc(ny), *dy = tt_xalloc(ny), *dx = tt_galloc(nx);
        tt_ctx("tables[scalar] gap n=%lu hw=%lu c=%lu against the mean in double", (unsigned long)n,
               (unsigned long)hw, (unsigned long)c);
        nn_rng_seed(&r, 7100 + hi);
        tt_fill_normal(&r, x, nx, 1.0f);
        tt_fill_normal(&r, dy, ny, 1.0f);
        nn__s_gap(n, hw, c, x, y);
        for (b = 0; b < n; b++)
            for (ch = 0; ch < c; ch++) {
                double s = 0, sa = 0;
                for (p = 0; p < hw; p++) {
                    s += x[(b * hw + p) * c + ch];
                    sa += fabs(x[(b * hw + p) * c + ch]);
                }
                if (!(fabs(y[b * c + ch] - s / (double)hw) <= (double)(hw + 1) * FLT_EPSILON * sa / (double)hw + 1e-30))
                    bad++;
            }
        TT_CHECK(bad == 0, "%lu of %lu means off by more than hw ulps", (unsigned long)bad, (unsigned long)ny);
        TT_GUARDS_OK(y);
        nn__s_gap_bwd(n, hw, c, dy, dx);
        for (b = 0, bad = 0; b < n; b++)
            for (p = 0; p < hw; p++)
                for (ch = 0; ch < c; ch++) bad += dx[(b * hw + p) * c + ch] != dy[b * c + ch] / (float)hw;
        TT_CHECK(bad == 0, "backward: %lu of %lu elements are not dy / hw", (unsigned long)bad, (unsigned long)nx);
        TT_GUARDS_OK(dx);
        tt_xfree(x);
        tt_xfree(dy);
        tt_gfree(y);
        tt_gfree(dx);
    }
    for (si = 0; si < (size_t)TT_NSIMD; si++) {
        nn_backend bk = tt_simd_backends[si];
        const nn__ktab *t = nn__table_for(bk);
        if (!t) {
            tt_skip("tables gap[%s]: backend not available in this build / on this CPU", nn_backend_name(bk));
            continue;
        }
        for (ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (hi = 0; hi < sizeof hws / sizeof hws[0]; hi++)
                for (ci = 0; ci < nc; ci++) {
                    size_t n = ns[ni], hw = hws[hi], c = cs[ci], nx = n * hw * c, ny = n * c;
                    float *x = tt_xalloc(nx), *dy = tt_xalloc(ny);
                    float *yref = tt_galloc(ny), *ygot = tt_galloc(ny), *dref = tt_galloc(nx), *dgot = tt_galloc(nx);
                    tt_ctx("tables[%s] gap n=%lu hw=%lu c=%lu", nn_backend_name(bk), (unsigned long)n,
                           (unsigned long)hw, (unsigned long)c);
                    nn_rng_seed(&r, 7000 + 1000 * ni + 100 * hi + ci);
                    tt_fill_normal(&r, x, nx, 1.0f);
                    tt_fill_normal(&r, dy, ny, 1.0f);
                    for (i = 0; i < ny; i++) ygot[i] = 12345.0f;
                    for (i = 0; i < nx; i++) dref[i] = -777.0f, dgot[i] = 12345.0f;
                    nn__s_gap(n, hw, c, x, yref);
                    t->gap(n, hw, c, x, ygot);
                    TT_SAME_ARR("gap == scalar", ygot, yref, ny);
                    TT_GUARDS_OK(ygot);
                    nn__s_gap_bwd(n, hw, c, dy, dref);
                    t->gap_bwd(n, hw, c, dy, dgot);
                    TT_SAME_ARR("gap_bwd == scalar (every element of dx written)", dgot, dref, nx);
                    TT_GUARDS_OK(dgot);
                    tt_xfree(x);
                    tt_xfree(dy);
                    tt_gfree(yref);
                    tt_gfree(ygot);
                    tt_gfree(dref);
                    tt_gfree(dgot);
                }
    }
    /* the layer runs the current table's kernel: nn_predict == t->gap */
    for (si = 0; si < (size_t)TT_NBACKENDS; si++) {
        nn_backend bk = tt_backends[si];
        static const int shp[][3] = {{3, 3, 5}, {1, 1, 17}, {11, 11, 33}};
        size_t k;
        if (!tt_use_backend("tables gap layer", bk)) continue;
        for (k = 0; k < sizeof shp / sizeof shp[0]; k++) {
            int h = shp[k][0], w = shp[k][1], c = shp[k][2], n = 3;
            size_t nx = (size_t)n * h * w * c, ny = (size_t)n * c;
            nn_model *m = nn_model_new(nn_shape3(h, w, c));
            float *x = tt_xalloc(nx), *yref = tt_galloc(ny), *ygot = tt_galloc(ny);
            nn_status st;
            tt_ctx("tables[%s] global_avgpool2d layer on (%d,%d,%d)", nn_backend_name(bk), h, w, c);
            nn_rng_seed(&r, 7500 + k);
            tt_fill_normal(&r, x, nx, 1.0f);
            nn_global_avgpool2d(m);
            st = nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE);
            if (TT_CHECK(st == NN_OK, "compile: %s (%s)", nn_strerror(st), nn_model_error(m))) {
                nn_shape os = nn_model_output_shape(m);
                TT_CHECK(os.ndim == 1 && os.d[0] == c, "output shape ndim %d (%d), expected (%d)", os.ndim, os.d[0],
                         c);
                nn__table_for(bk)->gap((size_t)n, (size_t)h * w, (size_t)c, x, yref);
                st = nn_predict(m, x, n, ygot);
                TT_CHECK(st == NN_OK, "nn_predict: %s (%s)", nn_strerror(st), nn_model_error(m));
                TT_SAME_ARR("nn_predict == the table's gap", ygot, yref, ny);
                TT_GUARDS_OK(ygot);
            }
            nn_model_free(m);
            tt_xfree(x);
            tt_gfree(yref);
            tt_gfree(ygot);
        }
    }
    (void)nn_set_backend(NN_BACKEND_AUTO);
}

/* The table of layer kinds: every row complete, its name unique and found
 * by nn__kind_named (model files look kinds up by name), its settings fit
 * NN__MAX_SET.  (Save / load round trips of every kind: test_io.c.) */
static void tables_kinds(void) {
    size_t i, j;
    tt_ctx("tables: layer kinds");
    TT_CHECK(NN__NKINDS >= 15, "only %d layer kinds", (int)NN__NKINDS);
    for (i = 0; i < NN__NKINDS; i++) {
        const nn__lkind *k = nn__kinds[i];
        TT_CHECK(k->name && k->name[0] && k->shape && k->fwd && k->bwd && k->save && k->load && k->describe,
                 "row %d (%s) has an empty slot", (int)i, k->name ? k->name : "?");
        TT_CHECK(k->nset >= 0 && k->nset <= NN__MAX_SET, "row %s: %d settings", k->name, k->nset);
        TT_CHECK(k->nset_min >= 0 && k->nset_min <= k->nset, "row %s: nset_min %d", k->name,
                 k->nset_min);
        /* a kind with trained parameters says how safetensors files hold them */
        TT_CHECK(k->init == NULL || k->tensors != NULL, "row %s: parameters but no tensors slot",
                 k->name);
        TT_CHECK(nn__kind_named(k->name, strlen(k->name)) == k, "nn__kind_named(\"%s\") finds another row",
                 k->name);
        for (j = 0; j < i; j++)
            TT_CHECK(strcmp(k->name, nn__kinds[j]->name) != 0, "two rows are named %s", k->name);
    }
    TT_CHECK(nn__kind_named("dens", 4) == NULL && nn__kind_named("densee", 6) == NULL,
             "a prefix or extension of a name finds a row");
}

/* The public wrappers run the current backend's kernels: equal to the
 * scalar twins bit for bit on every backend (odd sizes, tails). */
static void tables_gap_public(void) {
    static const size_t sizes[][3] = {{1, 1, 1}, {2, 9, 17}, {3, 121, 64}, {1, 25, 33}};
    size_t s, i;
    int b;
    for (b = (int)NN_BACKEND_AUTO + 1; b < (int)NN_BACKEND_COUNT; b++) {
        if (!nn_backend_available((nn_backend)b)) continue;
        tt_set_backend((nn_backend)b);
        tt_ctx("tables[%s]: nn_global_avgpool and its backward", nn_backend_name((nn_backend)b));
        for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t n = sizes[s][0], hw = sizes[s][1], c = sizes[s][2], nx = n * hw * c, ny = n * c;
            float *x = tt_xalloc(nx), *y = tt_xalloc(ny), *yr = tt_xalloc(ny), *dx = tt_xalloc(nx),
                  *dxr = tt_xalloc(nx);
            for (i = 0; i < nx; i++) x[i] = (float)((i * 2654435761u) % 1000) / 37.0f - 13.0f;
            nn_global_avgpool(n, hw, c, x, y);
            nn__s_gap(n, hw, c, x, yr);
            TT_SAME_ARR("nn_global_avgpool = scalar twin", y, yr, ny);
            nn_global_avgpool_backward(n, hw, c, y, dx);
            nn__s_gap_bwd(n, hw, c, y, dxr);
            TT_SAME_ARR("nn_global_avgpool_backward = scalar twin", dx, dxr, nx);
            tt_xfree(x);
            tt_xfree(y);
            tt_xfree(yr);
            tt_xfree(dx);
            tt_xfree(dxr);
        }
    }
    (void)nn_set_backend(NN_BACKEND_AUTO);
}

/* The caches read from the CPU (or the defaults): plausible sizes, listed
 * by nn_cpu_description.  Not against lscpu: the build machine may differ. */
static void tables_caches(void) {
    nn__caches c = nn__cache_sizes();
    char want[128];
    tt_ctx("tables: cache sizes");
    tt_info("caches: L1d %lu KiB, L2 %lu KiB, L3 %lu KiB", (unsigned long)(c.l1d >> 10),
            (unsigned long)(c.l2 >> 10), (unsigned long)(c.l3 >> 10));
    TT_CHECK(c.l1d >= ((size_t)4 << 10) && c.l1d <= ((size_t)4 << 20), "L1d %lu bytes", (unsigned long)c.l1d);
    TT_CHECK(c.l2 >= c.l1d && c.l2 <= ((size_t)256 << 20), "L2 %lu bytes", (unsigned long)c.l2);
    TT_CHECK(c.l3 >= ((size_t)64 << 10) && c.l3 / 1024 <= ((size_t)4 << 20), "L3 %lu bytes", (unsigned long)c.l3);
    snprintf(want, sizeof want, "L1d %luK L2 %luK L3 %luK", (unsigned long)(c.l1d >> 10),
             (unsigned long)(c.l2 >> 10), (unsigned long)(c.l3 >> 10));
    TT_CHECK(strstr(nn_cpu_description(), want) != NULL, "nn_cpu_description \"%s\" lacks \"%s\"",
             nn_cpu_description(), want);
}

/* Block sizes from the caches: the tuned values on Zen 5's caches; smaller
 * K slices for Zen 4's 32 KiB L1d; always whole register tiles, within the
 * clamps, and a workspace planned for the blocks covers the product. */
static void tables_blocking(void) {
    int b;
    nn__caches zen5, zen4, tiny, huge;
    zen5.l1d = (size_t)48 << 10, zen5.l2 = (size_t)1 << 20, zen5.l3 = (size_t)32 << 20;
    zen4 = zen5;
    zen4.l1d = (size_t)32 << 10;
    tiny.l1d = (size_t)4 << 10, tiny.l2 = (size_t)64 << 10, tiny.l3 = (size_t)64 << 10;
    huge.l1d = (size_t)1 << 20, huge.l2 = (size_t)256 << 20, huge.l3 = (size_t)4 << 30;
    for (b = 0; b < TT_NBACKENDS; b++) {
        const nn__ktab *t = nn__table_built(tt_backends[b]);
        const nn__caches *cs[4];
        int i;
        if (!t) continue;
        tt_ctx("tables: blocking of %s", nn_backend_name(tt_backends[b]));
        {
            nn__blk z5 = nn__blocking_for(t, zen5, 2), z4 = nn__blocking_for(t, zen4, 2);
            TT_CHECK(z5.MC == t->MC && z5.KC == t->KC && z5.NC == t->NC,
                     "Zen 5 caches give the tuned blocks (%d %d %d vs %d %d %d)", z5.MC, z5.KC, z5.NC,
                     t->MC, t->KC, t->NC);
            TT_CHECK(z4.KC < z5.KC && z4.KC >= z5.KC * 2 / 3 - 16, "Zen 4's L1d: KC %d (Zen 5 %d)",
                     z4.KC, z5.KC);
        }
        cs[0] = &zen5, cs[1] = &zen4, cs[2] = &tiny, cs[3] = &huge;
        for (i = 0; i < 4; i++) {
            nn__blk k = nn__blocking_for(t, *cs[i], i == 2 ? 64 : 1);
            TT_CHECK(k.MC >= 4 * t->MR && k.MC % t->MR == 0 && k.KC >= 64 && k.KC % 16 == 0 &&
                         k.KC <= 2 * t->KC && k.NC >= 4 * t->NR && (k.NC % t->NR == 0 || k.NC == t->NC) &&
                         k.NC <= t->NC,
                     "caches %d: MC %d KC %d NC %d", i, k.MC, k.KC, k.NC);
        }
    }
    tt_ctx("tables: blocking in nn_cpu_description");
    TT_CHECK(strstr(nn_cpu_description(), " blocks MC ") != NULL, "\"%s\"", nn_cpu_description());
}

/* The first kernel call, made by two threads at once, picks one table for
 * both (the choice is atomic; make test-tsan checks there is no race). */
static void *first_call(void *out) {
    float x[3] = {1, 2, 3};
    *(float *)out = nn_vsum(3, x);
    return NULL;
}
static void tables_first_call(void) {
    const nn__ktab *before = nn__k();
    pthread_t th[2];
    float got[2] = {0, 0};
    int i, made = 0;
    tt_ctx("tables: the first kernel call from two threads");
#ifdef TT_NO_USER_THREADS
    tt_skip("tables: the first kernel call from two threads (no threads in this build)");
    return;
#endif
    NN__STORE_REL(nn__k_cur, (const nn__ktab *)NULL); /* as at process start */
    for (i = 0; i < 2; i++) made += pthread_create(&th[i], NULL, first_call, &got[i]) == 0;
    TT_CHECK(made == 2, "pthread_create");
    for (i = 0; i < made; i++) pthread_join(th[i], NULL);
    TT_CHECK(got[0] == 6.0f && (made < 2 || got[1] == 6.0f), "sums %g %g", (double)got[0], (double)got[1]);
    TT_CHECK(NN__LOAD_ACQ(nn__k_cur) != NULL, "no table chosen");
    TT_CHECK(nn_backend_available(nn_get_backend()), "an unavailable table was chosen");
    NN__STORE_REL(nn__k_cur, before);
}

/* the streaming block transpose (safetensors loads) equals the scalar
 * twin on every backend: aligned rows (streaming stores) and not, guards
 * around dst intact */
static void tables_trs(void) {
    static const size_t dims[][4] = {/* rows, cols, lds, ldd */
                                     {8, 8, 8, 8},     {16, 24, 24, 16},  {64, 8, 13, 64},
                                     {8, 64, 64, 9},   {24, 40, 45, 24},  {64, 64, 64, 72}};
    size_t si, di, off, i;
    nn_rng r;
    for (si = 0; si < (size_t)TT_NBACKENDS; si++) {
        nn_backend bk = tt_backends[si];
        const nn__ktab *t = nn__table_for(bk);
        if (!t) {
            tt_skip("tables trs[%s]: backend not available in this build / on this CPU", nn_backend_name(bk));
            continue;
        }
        for (di = 0; di < sizeof dims / sizeof dims[0]; di++)
            for (off = 0; off < 8; off += 7) { /* tt_galloc is 4 bytes past 64: +7 floats aligns dst */
                size_t rows = dims[di][0], cols = dims[di][1], lds = dims[di][2], ldd = dims[di][3];
                size_t ns = rows * lds, nd = cols * ldd + off;
                float *x = tt_xalloc(ns), *ref = tt_galloc(nd), *got = tt_galloc(nd);
                tt_ctx("tables[%s] trs rows %lu cols %lu lds %lu ldd %lu dst+%lu floats", nn_backend_name(bk),
                       (unsigned long)rows, (unsigned long)cols, (unsigned long)lds, (unsigned long)ldd,
                       (unsigned long)off);
                nn_rng_seed(&r, 900 + 10 * di + off);
                tt_fill_normal(&r, x, ns, 1.0f);
                for (i = 0; i < nd; i++) ref[i] = got[i] = -5.0f; /* untouched between rows */
                nn__s_trs(x, lds, ref + off, ldd, rows, cols);
                t->trs(x, lds, got + off, ldd, rows, cols);
                TT_SAME_ARR("trs == scalar", got, ref, nd);
                { /* and the table's 8x8 one (packing op(B) = B^T), block by block */
                    size_t a, b;
                    for (i = 0; i < nd; i++) got[i] = -5.0f;
                    for (a = 0; a < cols; a += 8)
                        for (b = 0; b < rows; b += 8) t->tr8(x + b * lds + a, lds, got + off + a * ldd + b, ldd);
                    TT_SAME_ARR("tr8 == scalar", got, ref, nd);
                }
                if (off) TT_CHECK((uintptr_t)(got + off) % 32 == 0, "the aligned case is not aligned");
                TT_GUARDS_OK(got);
                tt_xfree(x);
                tt_gfree(ref);
                tt_gfree(got);
            }
    }
}

/* int8 GEMM (section 4.9): every table's q8rows equals the scalar twin
 * exactly, and both equal a direct int64 sum, on ragged rows, columns and
 * K (the packing's zero padding), a wide lda, bytes at the extremes (A 0
 * or 255, B -128 or 127: NEON's s8 x s8 products (a - 128) b reach
 * (-128)(-128) = 2^14) and 255 x -128 over the largest K (no saturation,
 * no overflow).  On NEON the widening kernel is also checked on its own,
 * whatever the CPU runs (make test-arm runs a CPU with and one without the
 * dot product). */
static void q8_gemm_check(const nn__ktab *t, const char *name) {
    static const size_t Ms[] = {1, 2, 3, 4, 5, 11, 12, 13, 25, 100}, Ns[] = {1, 5, 16, 17, 31, 32, 33, 70},
                        Ks[] = {1, 3, 4, 9, 29, 288};
    size_t mi, ni, ki, i, j, k;
    long bad = 0, badref = 0, cases = 0;
    nn_rng r;
    tt_ctx("tables[%s] int8 GEMM against the scalar twin and an int64 sum", name);
    for (mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++)
        for (ni = 0; ni < sizeof Ns / sizeof Ns[0]; ni++)
            for (ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++) {
                size_t M = Ms[mi], N = Ns[ni], K = Ks[ki], lda = 4 * nn__q8_k4(K) + (mi % 2) * 8;
                int ext = (mi + ni + ki) % 3 == 0; /* bytes at the extremes only */
                unsigned char *A = (unsigned char *)malloc(M * lda);
                signed char *B = (signed char *)malloc(K * N), *Bp = (signed char *)malloc(nn__q8_pack_bytes(K, N));
                int32_t *C = (int32_t *)malloc(M * N * 4), *R = (int32_t *)malloc(M * N * 4);
                nn_rng_seed(&r, 40 + 1000 * mi + 10 * ni + ki);
                for (i = 0; i < M * lda; i++)
                    A[i] = (unsigned char)(ext ? 255 * nn_rng_below(&r, 2) : nn_rng_below(&r, 256));
                for (i = 0; i < K * N; i++)
                    B[i] = (signed char)(ext ? (nn_rng_below(&r, 4) ? -128 : 127) : (int)nn_rng_below(&r, 256) - 128);
                nn__q8_pack(K, N, B, N, Bp);
                for (i = 0; i < M * N; i++) C[i] = R[i] = 0x7eadbeef;
                nn__q8_gemm(t, M, N, K, A, lda, Bp, C, N);
                nn__q8_gemm(&nn__tab_scalar, M, N, K, A, lda, Bp, R, N);
                for (i = 0; i < M; i++)
                    for (j = 0; j < N; j++) {
                        long long s = 0;
                        for (k = 0; k < K; k++) s += (long long)A[i * lda + k] * B[k * N + j];
                        bad += C[i * N + j] != R[i * N + j];
                        badref += (long long)R[i * N + j] != s;
                    }
                cases++;
                free(A), free(B), free(Bp), free(C), free(R);
            }
    TT_CHECK(bad == 0 && badref == 0, "%ld elements differ from the scalar twin, %ld scalar from int64 (%ld cases)",
             bad, badref, cases);
    { /* the extremes over the largest K: 255 x -128 and 255 x 127, then 0 x -128 and 0 x 127 */
        size_t M = 13, N = 33, K = NN__Q8_MAXK, lda = K;
        unsigned char *A = (unsigned char *)malloc(M * lda);
        signed char *B = (signed char *)malloc(K * N), *Bp = (signed char *)malloc(nn__q8_pack_bytes(K, N));
        int32_t *C = (int32_t *)malloc(M * N * 4);
        memset(A, 255, M * lda);
        for (k = 0; k < K; k++)
            for (j = 0; j < N; j++) B[k * N + j] = (signed char)(j % 2 ? 127 : -128);
        nn__q8_pack(K, N, B, N, Bp);
        nn__q8_gemm(t, M, N, K, A, lda, Bp, C, N);
        TT_CHECK(C[0] == -255L * 128 * (long)K && C[1] == 255L * 127 * (long)K && C[M * N - 1] == -255L * 128 * (long)K,
                 "extremes: %ld %ld (K = %lu)", (long)C[0], (long)C[1], (unsigned long)K);
        memset(A, 0, M * lda);
        nn__q8_gemm(t, M, N, K, A, lda, Bp, C, N);
        for (i = 0, bad = 0; i < M * N; i++) bad += C[i] != 0;
        TT_CHECK(bad == 0, "extremes: %ld of A = 0's sums are not 0 (K = %lu)", bad, (unsigned long)K);
        free(A), free(B), free(Bp), free(C);
    }
}
static void tables_q8(void) {
    size_t si;
    for (si = 0; si < (size_t)TT_NBACKENDS; si++) {
        nn_backend bk = tt_backends[si];
        const nn__ktab *t = nn__table_for(bk);
        if (!t) {
            tt_skip("tables q8[%s]: backend not available in this build / on this CPU", nn_backend_name(bk));
            continue;
        }
        q8_gemm_check(t, nn_backend_name(bk));
    }
#if NN__HAVE_NEON
    {
        nn__ktab w = nn__tab_neon;
        tt_info("int8 GEMM on NEON: the %s kernel (and the widening one on its own)",
                nn__neon_sdot() ? "sdot (dot product)" : "widening (no dot product)");
        w.q8rows = nn__neon_q8rows_wide;
        q8_gemm_check(&w, "neon widening");
    }
#endif
}

/* int8 requantization: every table equals the scalar twin exactly, and
 * the scalar twin equals the definition computed in long double (exact
 * here: the products stay below 2^63 and the division is by a power of 2) */
static void tables_q8req(void) {
    size_t si, n, j;
    int rep;
    nn_rng r;
    for (si = 0; si < (size_t)TT_NBACKENDS; si++) {
        nn_backend bk = tt_backends[si];
        const nn__ktab *t = nn__table_for(bk);
        long bad = 0, badref = 0;
        if (!t) {
            tt_skip("tables q8req[%s]: backend not available in this build / on this CPU", nn_backend_name(bk));
            continue;
        }
        tt_ctx("tables[%s] int8 requantization", nn_backend_name(bk));
        nn_rng_seed(&r, 77);
        for (rep = 0; rep < 60; rep++)
            for (n = 1; n <= 41; n += (n < 20 ? 1 : 7)) {
                int32_t acc[48], bias[48], mul[48], sh[48];
                unsigned char got[48 + 16], ref[48];
                int zero = (int)nn_rng_below(&r, 256), lo = rep % 2 ? zero : 0;
                for (j = 0; j < n; j++) {
                    acc[j] = (int32_t)nn_rng_u32(&r) >> 2; /* |acc + bias| < 2^31 */
                    bias[j] = (int32_t)nn_rng_u32(&r) >> (2 + nn_rng_below(&r, 20));
                    mul[j] = (int32_t)((1u << 30) + nn_rng_below(&r, 1u << 30));
                    sh[j] = 31 + (int32_t)nn_rng_below(&r, 32);
                    if (rep < 10) sh[j] = 31 + (int32_t)nn_rng_below(&r, 8); /* large outputs: the clamps */
                }
                memset(got, 0xAB, sizeof got);
                t->q8req(1, n, acc, bias, mul, sh, zero, lo, got);
                nn__s_q8req(1, n, acc, bias, mul, sh, zero, lo, ref);
                for (j = 0; j < n; j++) {
                    long double x = ((long double)acc[j] + bias[j]) * mul[j] + ldexpl(1.0L, sh[j] - 1);
                    long double v = floorl(ldexpl(x, -sh[j])) + zero;
                    int e = v < lo ? lo : v > 255 ? 255 : (int)v;
                    bad += got[j] != ref[j];
                    badref += ref[j] != e;
                }
                bad += got[n] != 0xAB; /* nothing written past n */
            }
        TT_CHECK(bad == 0 && badref == 0, "%ld values differ from the scalar twin, %ld scalar from the definition",
                 bad, badref);
    }
}

/* the bytes' 4-way max (int8 2x2 max-pool) equals the scalar twin, tails included */
static void tables_q8max4(void) {
    size_t si, n, i;
    nn_rng r;
    for (si = 0; si < (size_t)TT_NBACKENDS; si++) {
        const nn__ktab *t = nn__table_for(tt_backends[si]);
        long bad = 0;
        if (!t) {
            tt_skip("tables q8max4[%s]: backend not available in this build / on this CPU",
                    nn_backend_name(tt_backends[si]));
            continue;
        }
        tt_ctx("tables[%s] q8max4", nn_backend_name(tt_backends[si]));
        nn_rng_seed(&r, 5);
        for (n = 0; n <= 100; n += (n < 40 ? 1 : 13)) {
            unsigned char a[128], b[128], c[128], d[128], got[129], ref[128];
            for (i = 0; i < n; i++)
                a[i] = (unsigned char)nn_rng_below(&r, 256), b[i] = (unsigned char)nn_rng_below(&r, 256),
                c[i] = (unsigned char)nn_rng_below(&r, 256), d[i] = (unsigned char)nn_rng_below(&r, 256);
            got[n] = 0x5A;
            t->q8max4(n, a, b, c, d, got);
            nn__s_q8max4(n, a, b, c, d, ref);
            for (i = 0; i < n; i++) bad += got[i] != ref[i];
            bad += got[n] != 0x5A;
        }
        TT_CHECK(bad == 0, "%ld bytes differ from the scalar twin (or written past n)", bad);
    }
}

/* int8 GEMM rows as nn__q8a describes them (a conv reading its input in
 * place, section 9): through a table of row offsets with K in segments,
 * and with the 2x2 pool's max of four rows; every table equals the scalar
 * twin and a direct sum over the bytes the definition names, segments of
 * 1 to 9 groups, 1 to 5 of them, rows anywhere, ragged columns.  On NEON
 * the widening kernel also on its own. */
static void q8rows_seg_check(const nn__ktab *t, const char *name) {
    size_t sg, ns, M, ncols;
    int pool;
    long bad = 0, badref = 0, cases = 0;
    nn_rng r;
    tt_ctx("tables[%s] q8rows by a row table, K in segments, pooled", name);
    nn_rng_seed(&r, 9);
    for (pool = 0; pool <= 1; pool++)
        for (sg = 1; sg <= 9; sg += 2)
            for (ns = 1; ns <= 5; ns += 2)
                for (M = 4; M <= 32; M += 4 + 3 * (1 - pool))
                    for (ncols = 5; ncols <= 32; ncols += 27) {
                        size_t k4 = sg * ns, ss = 4 * sg + nn_rng_below(&r, 40), span = (ns - 1) * ss + 4 * sg, i, c, k;
                        size_t nbytes = 3000 + span, g = pool ? 4 : 1;
                        unsigned char *A = (unsigned char *)malloc(nbytes);
                        signed char *Bp = (signed char *)malloc(k4 * 128);
                        int32_t C[32 * 32], R[32 * 32];
                        uint32_t ro[32];
                        nn__q8a a;
                        for (i = 0; i < nbytes; i++) A[i] = (unsigned char)nn_rng_below(&r, 256);
                        for (i = 0; i < k4 * 128; i++) Bp[i] = (signed char)((int)nn_rng_below(&r, 256) - 128);
                        for (i = 0; i < M; i++) ro[i] = (uint32_t)nn_rng_below(&r, 3000);
                        a.p = A, a.lda = 0, a.ro = ro, a.sg = sg, a.ss = ss, a.pool = pool;
                        for (i = 0; i < 32 * 32; i++) C[i] = R[i] = 0x7eadbeef;
                        t->q8rows(M, k4, &a, Bp, C, 32, ncols);
                        nn__s_q8rows(M, k4, &a, Bp, R, 32, ncols);
                        for (i = 0; i < M / g; i++)
                            for (c = 0; c < ncols; c++) {
                                long long e = 0, best = 0;
                                size_t j;
                                for (j = 0; j < g; j++) {
                                    e = 0;
                                    for (k = 0; k < 4 * k4; k++)
                                        e += (long long)A[ro[i * g + j] + (k / 4 / sg) * ss + (k / 4 % sg) * 4 + k % 4] *
                                             Bp[((k / 4) * 32 + c) * 4 + k % 4];
                                    best = j == 0 || e > best ? e : best;
                                }
                                bad += C[i * 32 + c] != R[i * 32 + c];
                                badref += R[i * 32 + c] != best;
                            }
                        for (i = M / g * 32; i < 32 * 32; i++) bad += C[i] != 0x7eadbeef; /* no row past M / g */
                        cases++;
                        free(A), free(Bp);
                    }
    TT_CHECK(bad == 0 && badref == 0 && cases > 200, "%ld sums differ from the scalar twin (or written past), %ld twin from the definition (%ld cases)",
             bad, badref, cases);
}
static void tables_q8rows_seg(void) {
    size_t si;
    for (si = 0; si < (size_t)TT_NBACKENDS; si++) {
        const nn__ktab *t = nn__table_for(tt_backends[si]);
        if (!t) {
            tt_skip("tables q8rows segments[%s]: backend not available in this build / on this CPU",
                    nn_backend_name(tt_backends[si]));
            continue;
        }
        q8rows_seg_check(t, nn_backend_name(tt_backends[si]));
    }
#if NN__HAVE_NEON
    {
        nn__ktab w = nn__tab_neon;
        w.q8rows = nn__neon_q8rows_wide;
        q8rows_seg_check(&w, "neon widening");
    }
#endif
}

/* A conv op of an int8 model (section 9) against a direct computation:
 * windows of the image (the zero point outside it), products with the
 * K x N weights, the 2x2 max-pool where there is one, q8req; over
 * strides, kernel sizes, channels, 'valid' (read in place), 'same' and
 * explicit padding (im2col rows), with and without the pool, on every
 * table.  Where a conv can be read in place it is also run with im2col
 * rows, which must give the same bytes. */
static void tables_q8conv(void) {
    static const int pads[3] = {0, 1, NN_PADDING(1)}, chans[4] = {1, 3, 8, 32};
    int h, kh, kw, ci, st, pi, pool, bad = 0, badref = 0, cases = 0, inplace = 0;
    size_t si;
    nn_rng r;
    nn_rng_seed(&r, 10);
    tt_ctx("tables q8 conv ops against a direct computation");
    for (h = 4; h <= 13; h += 3)
        for (kh = 1; kh <= 3; kh++)
            for (kw = 1; kw <= 3; kw += 2)
                for (ci = 0; ci < 4; ci++)
                    for (st = 1; st <= 2; st++)
                        for (pi = 0; pi < 3; pi++)
                            for (pool = 0; pool <= 1; pool++) {
                                nn__q8op o;
                                int w = h + 1, C = chans[ci], oy, ox, ky, kx, c, pass;
                                size_t N = (size_t)(1 + (h * 7 + kh + ci) % 40), K, rows, n, j, outn;
                                unsigned char *x, *col, *out, *ref;
                                int32_t *acc, *tmp;
                                memset(&o, 0, sizeof o);
                                if (nn_conv_geom_init(&o.g, 1, h, w, C, kh, kw, st, pads[pi]) != NN_OK || o.g.oh < 2 ||
                                    o.g.ow < 2)
                                    continue;
                                o.conv = 1, o.pool2 = pool, o.relu = (h + kh) % 2;
                                o.z_in = (int)nn_rng_below(&r, 256), o.z_out = (int)nn_rng_below(&r, 256);
                                o.K = K = (size_t)kh * kw * C, o.N = N;
                                o.w = (signed char *)malloc(K * N);
                                o.bias = (int32_t *)malloc(N * 4), o.mul = (int32_t *)malloc(N * 4),
                                o.shift = (int32_t *)malloc(N * 4);
                                for (j = 0; j < K * N; j++) o.w[j] = (signed char)((int)nn_rng_below(&r, 255) - 127);
                                for (n = 0; n < N; n++) {
                                    o.bias[n] = (int32_t)nn_rng_below(&r, 20001) - 10000;
                                    o.mul[n] = (int32_t)((1u << 30) + nn_rng_below(&r, 1u << 30));
                                    o.shift[n] = 38 + (int32_t)nn_rng_below(&r, 8);
                                }
                                x = (unsigned char *)malloc((size_t)h * w * C + 16);
                                for (j = 0; j < (size_t)h * w * C + 16; j++) x[j] = (unsigned char)nn_rng_below(&r, 256);
                                rows = nn__q8_rows(&o);
                                outn = (pool ? rows / 4 : rows) * N;
                                col = (unsigned char *)malloc(rows * (4 * nn__q8_k4(K) + 16) + 64);
                                acc = (int32_t *)malloc(rows * N * 4 + 64);
                                tmp = (int32_t *)malloc((size_t)o.g.oh * o.g.ow * N * 4);
                                out = (unsigned char *)malloc(outn + 1);
                                ref = (unsigned char *)malloc(outn);
                                /* the direct computation */
                                for (oy = 0; oy < o.g.oh; oy++)
                                    for (ox = 0; ox < o.g.ow; ox++)
                                        for (n = 0; n < N; n++) {
                                            int32_t s = 0;
                                            for (ky = 0; ky < kh; ky++)
                                                for (kx = 0; kx < kw; kx++)
                                                    for (c = 0; c < C; c++) {
                                                        int iy = oy * st - o.g.pt + ky, ix = ox * st - o.g.pl + kx;
                                                        int v = iy < 0 || iy >= h || ix < 0 || ix >= w ? o.z_in : x[(iy * w + ix) * C + c];
                                                        s += v * o.w[((size_t)(ky * kw + kx) * C + c) * N + n];
                                                    }
                                            tmp[((size_t)oy * o.g.ow + ox) * N + n] = s;
                                        }
                                for (j = 0; j < outn; j++) {
                                    size_t p = j / N;
                                    int32_t v;
                                    n = j % N;
                                    if (pool) {
                                        size_t PW = (size_t)o.g.ow / 2, py = p / PW, px = p % PW, a = (2 * py * o.g.ow + 2 * px) * N + n;
                                        v = tmp[a];
                                        v = tmp[a + N] > v ? tmp[a + N] : v;
                                        v = tmp[a + o.g.ow * N] > v ? tmp[a + o.g.ow * N] : v;
                                        v = tmp[a + (o.g.ow + 1) * N] > v ? tmp[a + (o.g.ow + 1) * N] : v;
                                    } else {
                                        v = tmp[p * N + n];
                                    }
                                    nn__s_q8req(1, 1, &v, o.bias + n, o.mul + n, o.shift + n, o.z_out, o.relu ? o.z_out : 0,
                                                ref + j);
                                }
                                for (pass = 0; pass < 2; pass++) {
                                    TT_CHECK(nn__q8_packw(&o), "packw");
                                    if (pass == 1) { /* the same op through im2col rows */
                                        int was = o.seg != 0;
                                        nn_aligned_free(o.wp), NN_FREE(o.ro), o.ro = NULL, o.wp = NULL;
                                        if (!was) break;
                                        o.seg = 0, o.k4 = nn__q8_k4(K);
                                        o.wp = (signed char *)nn_aligned_alloc(nn__q8_pack_bytes(K, N));
                                        nn__q8_pack(K, N, o.w, N, o.wp);
                                    }
                                    inplace += pass == 0 && o.seg;
                                    for (si = 0; si < (size_t)TT_NBACKENDS; si++) {
                                        const nn__ktab *t = nn__table_for(tt_backends[si]);
                                        if (!t) continue;
                                        out[outn] = 0xAB;
                                        nn__q8_conv(t, &o, x, col, acc, out);
                                        for (j = 0; j < outn; j++) {
                                            bad += out[j] != ref[j];
                                            badref += si == 0 && out[j] != ref[j];
                                        }
                                        bad += out[outn] != 0xAB;
                                    }
                                    nn_aligned_free(o.wp), NN_FREE(o.ro);
                                    o.wp = NULL, o.ro = NULL;
                                }
                                cases++;
                                free(o.w), free(o.bias), free(o.mul), free(o.shift);
                                free(x), free(col), free(acc), free(tmp), free(out), free(ref);
                            }
    TT_CHECK(bad == 0 && cases > 200 && inplace > 50, "%d bytes differ (%d on scalar) in %d conv ops (%d read in place)",
             bad, badref, cases, inplace);
}

/* int8 im2col (section 9): every row's first K bytes are the window's
 * pixels, the zero point where the window leaves the image (its moves of
 * 4, 8 and 16 bytes: stride and padding of any kind, one to five channels) */
static void tables_q8im2col(void) {
    static const int pads[4] = {0, 1, NN_PADDING(1), NN_PADDING(2)};
    int h, w, kh, c, st, pi, bad = 0, cases = 0;
    nn_rng r;
    nn_rng_seed(&r, 8);
    tt_ctx("tables q8 im2col");
    for (c = 1; c <= 5; c += 1 + (c == 2))
        for (kh = 1; kh <= 7; kh++)
            for (h = 3; h <= 11; h += 2)
                for (w = 3; w <= 12; w += 3)
                    for (st = 1; st <= 3; st++)
                        for (pi = 0; pi < 4; pi++) {
                            nn_conv_geom g;
                            nn__q8op o;
                            unsigned char x[12 * 12 * 5 + 16], *col; /* moves read up to 15 bytes past the image */
                            size_t K, lda, i;
                            int oy, ox, ky, kx, ch;
                            if (nn_conv_geom_init(&g, 1, h, w, c, kh, 3, st, pads[pi]) != NN_OK || g.oh < 1 || g.ow < 1)
                                continue;
                            K = (size_t)kh * 3 * (size_t)c;
                            lda = 4 * nn__q8_k4(K);
                            col = (unsigned char *)malloc((size_t)g.oh * g.ow * lda + 64);
                            if (!col) continue;
                            for (i = 0; i < (size_t)h * w * c; i++) x[i] = (unsigned char)nn_rng_below(&r, 256);
                            memset(&o, 0, sizeof o);
                            o.conv = 1, o.g = g, o.z_in = 77;
                            nn__q8_im2col(&o, x, col, lda, 0, (size_t)g.oh * g.ow);
                            cases++;
                            for (oy = 0; oy < g.oh; oy++)
                                for (ox = 0; ox < g.ow; ox++)
                                    for (ky = 0; ky < kh; ky++)
                                        for (kx = 0; kx < 3; kx++)
                                            for (ch = 0; ch < c; ch++) {
                                                int iy = oy * g.sh - g.pt + ky, ix = ox * g.sw - g.pl + kx;
                                                unsigned char e = iy < 0 || iy >= h || ix < 0 || ix >= w
                                                                      ? 77 : x[(iy * w + ix) * c + ch];
                                                bad += col[((size_t)oy * g.ow + ox) * lda + ((size_t)ky * 3 + kx) * c + ch] != e;
                                            }
                            free(col);
                        }
    TT_CHECK(cases > 500 && bad == 0, "%d bytes wrong in %d geometries", bad, cases);
}

/* the input's quantization (int8): every table equals the scalar twin byte
 * for byte and the twin equals the definition (float product, float add,
 * clamp, NaN to 0), on random values, the rounding edges k - 0.5 and
 * specials, every length to 40 and tails */
static void tables_q8quant(void) {
    static const float invs[3] = {255.0f, 1.0f / 0.0173f, 3.7e-3f};
    static const int zs[3] = {0, 117, 255};
    size_t si, n, i;
    nn_rng r;
    for (si = 0; si < (size_t)TT_NBACKENDS; si++) {
        const nn__ktab *t = nn__table_for(tt_backends[si]);
        long bad = 0, badref = 0;
        int v;
        if (!t) {
            tt_skip("tables q8quant[%s]: backend not available in this build / on this CPU",
                    nn_backend_name(tt_backends[si]));
            continue;
        }
        tt_ctx("tables[%s] q8quant", nn_backend_name(tt_backends[si]));
        nn_rng_seed(&r, 9);
        for (v = 0; v < 3; v++)
            for (n = 0; n <= 67; n += (n < 40 ? 1 : 9)) {
                float x[80];
                unsigned char got[81], ref[80];
                for (i = 0; i < n; i++) {
                    uint32_t k = nn_rng_below(&r, 8);
                    if (k == 0) /* on a rounding edge: (q - z - 0.5) / inv */
                        x[i] = ((float)nn_rng_below(&r, 300) - 20.0f - (float)zs[v] - 0.5f) / invs[v];
                    else if (k == 1) {
                        static const float sp[6] = {0.0f, -0.0f, 1e30f, -1e30f, 1e-40f, -3.0f};
                        x[i] = sp[nn_rng_below(&r, 6)];
                    } else if (k == 2)
                        x[i] = (i & 1) ? NAN : (i & 2 ? INFINITY : -INFINITY);
                    else
                        x[i] = (2.0f * nn_rng_uniform(&r) - 0.5f) * 300.0f / invs[v];
                }
                got[n] = 0x5A;
                t->q8quant(n, x, invs[v], zs[v], got);
                nn__s_q8quant(n, x, invs[v], zs[v], ref);
                for (i = 0; i < n; i++) {
                    volatile float p = x[i] * invs[v]; /* rounded: no fused multiply-add */
                    float tt = p + ((float)zs[v] + 0.5f);
                    int e = tt >= 0.0f ? (tt <= 255.0f ? (int)tt : 255) : 0;
                    bad += got[i] != ref[i];
                    badref += ref[i] != (unsigned char)e;
                }
                bad += got[n] != 0x5A;
            }
        TT_CHECK(bad == 0 && badref == 0, "%ld bytes differ from the scalar twin (or written past n), %ld scalar from the definition",
                 bad, badref);
    }
}

static void test_tables(void) {
    tables_first_call();
    tables_caches();
    tables_blocking();
    tables_slots();
    tables_kinds();
    tables_gap();
    tables_gap_public();
    tables_trs();
    tables_q8();
    tables_q8req();
    tables_q8max4();
    tables_q8rows_seg();
    tables_q8conv();
    tables_q8im2col();
    tables_q8quant();
}

/* AUTO's choice: the last available backend of NN_BACKEND_LIST */
static nn_backend best_available(void) { return tt_best_backend(); }

static void expect_backend(const char *name) {
    nn_backend want = NN_BACKEND_AUTO, got;
    const char *env = getenv("NN_BACKEND");
    tt_ctx("expect-backend NN_BACKEND=%s", env ? env : "(unset)");
    if (strcmp(name, "best") == 0) want = best_available();
    else if (nn_backend_from_name(name, &want) != NN_OK) {
        TT_CHECK(0, "unknown backend name '%s' on the command line", name);
        return;
    }
    TT_CHECK(nn_set_backend(NN_BACKEND_AUTO) == NN_OK && (got = nn_get_backend()) == want,
             "nn_set_backend(AUTO) then nn_get_backend() = %s, expected %s", nn_backend_name(nn_get_backend()),
             nn_backend_name(want));
}

typedef struct {
    const char *name;
    void (*fn)(void);
} group;

int main(int argc, char **argv) {
    static const group groups[] = {{"platform", test_platform}, {"backend", test_backend},
                                   {"kernels", test_kernels},   {"activations", test_activations},
                                   {"sgemm", test_sgemm},       {"conv", test_conv},
                                   {"grad", test_grad},         {"optim", test_optim},
                                   {"train", test_train},       {"errors", test_errors},
                                   {"io", test_io},             {"seq", test_seq},
                                   {"alloc", test_alloc},       {"compat", test_compat},
                                   {"tables", test_tables},     {"threads", test_threads},
                                   {"parallel", test_parallel},
                                   {"inputgrad", test_inputgrad}, {"oracle", test_oracle},
                                   {"safetensors", test_safetensors}, {"int8", test_int8},
                                   {"torch_files", test_torch_files}};
    const char *only = NULL;
    int i;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--expect-backend") == 0 && i + 1 < argc) {
            expect_backend(argv[++i]);
            printf("%ld passed, %ld failed, %ld skipped\n", tt_passed, tt_failed, tt_skipped);
            return tt_failed ? 1 : 0;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--only GROUP] [--expect-backend NAME|best]\n", argv[0]);
            return 2;
        }
    }
    {
        char avail[128] = "";
        for (i = 0; i < TT_NBACKENDS; i++)
            if (nn_backend_available(tt_backends[i]) && strlen(avail) + 16 < sizeof avail) {
                strcat(avail, " ");
                strcat(avail, nn_backend_name(tt_backends[i]));
            }
        tt_info("cpu: %s; backends available:%s", nn_cpu_description(), avail);
    }
#ifdef NN_TEST_SMALL
    tt_info("NN_TEST_SMALL: reduced sweeps");
#endif
    for (i = 0; i < (int)(sizeof groups / sizeof groups[0]); i++) {
        if (only && strcmp(only, groups[i].name) != 0) continue;
        tt_ctx("%s", groups[i].name);
        groups[i].fn();
        fflush(stdout);
    }
    (void)nn_set_backend(NN_BACKEND_AUTO);
    printf("%ld passed, %ld failed, %ld skipped\n", tt_passed, tt_failed, tt_skipped);
    return tt_failed ? 1 : 0;
}
