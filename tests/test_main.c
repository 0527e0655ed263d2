/* The test runner: the one translation unit with NN_IMPLEMENTATION.
 *
 *   build/run_tests                       run every group
 *   build/run_tests --only NAME           run one group (platform, backend,
 *                                         kernels, activations, sgemm, conv,
 *                                         grad, optim, train, errors, io, seq,
 *                                         alloc, compat)
 *   build/run_tests --expect-backend B    only check that nn_set_backend(AUTO)
 *                                         picks B (a backend name, or "best"
 *                                         for the best available); run.sh
 *                                         calls this with NN_BACKEND set.
 *
 * Last line: "N passed, N failed, N skipped"; exit status 1 on failure. */
#include <stddef.h>
#include <stdlib.h>
/* Counting allocator for the allocation tests (tests/test_model.c,
 * test_io.c): every NN_MALLOC call is counted; call number tt_alloc_fail_at
 * (1-based, 0 = never) returns NULL, and so does any request above
 * tt_alloc_cap bytes (0 = no cap); tt_alloc_max is the largest request
 * seen; tt_alloc_live is the number of blocks not yet freed. */
long tt_alloc_calls, tt_alloc_fail_at, tt_alloc_live;
size_t tt_alloc_cap, tt_alloc_max;
void *tt_malloc(size_t n);
void tt_free(void *p);
void *tt_malloc(size_t n) {
    void *p;
    if (n > tt_alloc_max) tt_alloc_max = n;
    if (++tt_alloc_calls == tt_alloc_fail_at || (tt_alloc_cap && n > tt_alloc_cap)) return NULL;
    p = malloc(n);
    if (p) tt_alloc_live++;
    return p;
}
void tt_free(void *p) {
    if (p) tt_alloc_live--;
    free(p);
}
#define NN_MALLOC(sz) tt_malloc(sz)
#define NN_FREE(p) tt_free(p)

#define NN_IMPLEMENTATION
#include "nn.h"
#define TT_IMPLEMENTATION
#include "tt.h"

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

static nn_backend best_available(void) {
    static const nn_backend order[] = {NN_BACKEND_AVX512, NN_BACKEND_AVX2, NN_BACKEND_NEON};
    size_t i;
    for (i = 0; i < sizeof order / sizeof order[0]; i++)
        if (nn_backend_available(order[i])) return order[i];
    return NN_BACKEND_SCALAR;
}

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
                                   {"alloc", test_alloc},       {"compat", test_compat}};
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
    tt_info("cpu: %s; backends available:%s%s%s%s", nn_cpu_description(), " scalar",
            nn_backend_available(NN_BACKEND_AVX2) ? " avx2" : "",
            nn_backend_available(NN_BACKEND_AVX512) ? " avx512" : "",
            nn_backend_available(NN_BACKEND_NEON) ? " neon" : "");
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
