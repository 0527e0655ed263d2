/* Backend names, availability and switching. */
#include "nn.h"
#include "tt.h"

#include <stdlib.h>
#include <string.h>

/* "auto", then every line of NN_BACKEND_LIST (a new backend is picked up) */
#define NAME(id, nm) {#nm, NN_BACKEND_##id},
static const struct {
    const char *name;
    nn_backend b;
} names[] = {{"auto", NN_BACKEND_AUTO}, NN_BACKEND_LIST(NAME)};
#undef NAME
#define NNAMES (sizeof names / sizeof names[0])

static void test_names(void) {
    static const char *bad[] = {"", "AVX2", "Scalar", "sse", "avx", "avx-512", "neon ", " auto", "unknown"};
    size_t i;
    nn_backend out;
    tt_ctx("backend/names");
    /* the list, the enum and the tests' tables agree */
    TT_EQ_INT(NNAMES, NN_BACKEND_COUNT);
    TT_EQ_INT(TT_NBACKENDS, NN_BACKEND_COUNT - 1);
    TT_EQ_INT(TT_NSIMD, NN_BACKEND_COUNT - 2);
    for (i = 0; i < NNAMES; i++)
        TT_CHECK((int)names[i].b == (int)i, "NN_BACKEND_LIST line %lu (%s) has enum value %d", (unsigned long)i,
                 names[i].name, (int)names[i].b);
    for (i = 0; i < (size_t)TT_NBACKENDS; i++)
        TT_CHECK(tt_backends[i] == names[i + 1].b, "tt_backends[%lu] = %d, expected %s", (unsigned long)i,
                 (int)tt_backends[i], names[i + 1].name);
    TT_CHECK(tt_backends[0] == NN_BACKEND_SCALAR && tt_simd_backends == tt_backends + 1,
             "scalar must be the first backend of the list, the SIMD ones the rest");
    for (i = 0; i < NNAMES; i++) {
        out = (nn_backend)77;
        TT_CHECK(nn_backend_from_name(names[i].name, &out) == NN_OK && out == names[i].b,
                 "nn_backend_from_name(\"%s\") -> %d, expected %d", names[i].name, (int)out, (int)names[i].b);
        TT_CHECK(nn_backend_name(names[i].b) && strcmp(nn_backend_name(names[i].b), names[i].name) == 0,
                 "nn_backend_name(%d) = \"%s\", expected \"%s\"", (int)names[i].b,
                 nn_backend_name(names[i].b) ? nn_backend_name(names[i].b) : "(null)", names[i].name);
        /* round trip */
        TT_CHECK(nn_backend_from_name(nn_backend_name(names[i].b), &out) == NN_OK && out == names[i].b,
                 "round trip of %s", names[i].name);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TT_CHECK(nn_backend_from_name(bad[i], &out) == NN_ERR_INVALID_ARGUMENT,
                 "nn_backend_from_name(\"%s\") must be NN_ERR_INVALID_ARGUMENT", bad[i]);
    TT_EQ_INT(nn_backend_from_name(NULL, &out), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_backend_from_name("scalar", NULL), NN_ERR_INVALID_ARGUMENT);
    TT_CHECK(nn_backend_name((nn_backend)99) && strcmp(nn_backend_name((nn_backend)99), "unknown") == 0,
             "nn_backend_name(99) must be \"unknown\"");
    TT_CHECK(nn_cpu_description() != NULL && nn_cpu_description()[0] != 0, "nn_cpu_description empty");
}

static void test_switching(void) {
    size_t i;
    const char *env = getenv("NN_BACKEND");
    nn_backend before, best = NN_BACKEND_SCALAR;
    tt_ctx("backend/switching");

    TT_CHECK(nn_backend_available(NN_BACKEND_SCALAR), "scalar must always be available");
    TT_CHECK(!nn_backend_available((nn_backend)99), "nn_backend_available(99) must be 0");
#if defined(__x86_64__) || defined(__i386__)
    TT_CHECK(!nn_backend_available(NN_BACKEND_NEON), "NEON available on x86?");
#endif
#if !defined(__wasm__)
    TT_CHECK(!nn_backend_available(NN_BACKEND_WASM), "wasm SIMD128 available outside WebAssembly?");
#elif defined(__wasm_simd128__) && !defined(NN_NO_SIMD)
    TT_CHECK(nn_backend_available(NN_BACKEND_WASM), "wasm SIMD128 compiled in (-msimd128) but not available");
#else
    TT_CHECK(!nn_backend_available(NN_BACKEND_WASM), "wasm SIMD128 available in a build without -msimd128");
#endif
#if defined(__aarch64__)
    TT_CHECK(nn_backend_available(NN_BACKEND_NEON), "NEON is baseline on aarch64");
    TT_CHECK(!nn_backend_available(NN_BACKEND_AVX2) && !nn_backend_available(NN_BACKEND_AVX512),
             "AVX available on aarch64?");
#endif
    if (nn_backend_available(NN_BACKEND_AVX512))
        TT_CHECK(nn_backend_available(NN_BACKEND_AVX2), "AVX-512 available but not AVX2");

    for (i = 1; i < NNAMES; i++) {
        nn_backend b = names[i].b;
        nn_status s;
        TT_EQ_INT(nn_set_backend(NN_BACKEND_SCALAR), NN_OK);
        before = nn_get_backend();
        s = nn_set_backend(b);
        if (nn_backend_available(b)) {
            TT_CHECK(s == NN_OK && nn_get_backend() == b, "nn_set_backend(%s) -> %d, now %s", names[i].name, (int)s,
                     nn_backend_name(nn_get_backend()));
        } else {
            TT_CHECK(s == NN_ERR_UNSUPPORTED, "nn_set_backend(unavailable %s) -> %d, expected NN_ERR_UNSUPPORTED",
                     names[i].name, (int)s);
            TT_CHECK(nn_get_backend() == before, "failed nn_set_backend(%s) changed the backend to %s", names[i].name,
                     nn_backend_name(nn_get_backend()));
        }
    }
    /* invalid values: error, backend unchanged */
    TT_EQ_INT(nn_set_backend(NN_BACKEND_SCALAR), NN_OK);
    TT_CHECK(nn_set_backend((nn_backend)99) != NN_OK, "nn_set_backend(99) must fail");
    TT_EQ_INT(nn_set_backend((nn_backend)99), NN_ERR_INVALID_ARGUMENT);
    TT_CHECK(nn_get_backend() == NN_BACKEND_SCALAR, "nn_set_backend(99) changed the backend");
    TT_CHECK(nn_set_backend((nn_backend)-1) != NN_OK, "nn_set_backend(-1) must fail");
    TT_CHECK(nn_get_backend() == NN_BACKEND_SCALAR, "nn_set_backend(-1) changed the backend");

    /* AUTO resolves to something concrete; without NN_BACKEND, the best:
     * the last available line of NN_BACKEND_LIST (increasing preference) */
    for (i = 1; i < NNAMES; i++)
        if (nn_backend_available(names[i].b)) best = names[i].b;
    TT_CHECK(tt_best_backend() == best, "tt_best_backend() = %s, the last available of the list is %s",
             nn_backend_name(tt_best_backend()), nn_backend_name(best));
    TT_EQ_INT(nn_set_backend(NN_BACKEND_AUTO), NN_OK);
    TT_CHECK(nn_get_backend() != NN_BACKEND_AUTO, "nn_get_backend() after AUTO is AUTO");
    TT_CHECK(nn_backend_available(nn_get_backend()), "AUTO chose an unavailable backend %s",
             nn_backend_name(nn_get_backend()));
    if (!env || !*env)
        TT_CHECK(nn_get_backend() == best, "AUTO chose %s, the best available is %s", nn_backend_name(nn_get_backend()),
                 nn_backend_name(best));
}

void test_backend(void) {
    test_names();
    test_switching();
}
