/* Backend names, availability and switching. */
#include "nn.h"
#include "tt.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    nn_backend b;
} names[] = {{"auto", NN_BACKEND_AUTO},
             {"scalar", NN_BACKEND_SCALAR},
             {"avx2", NN_BACKEND_AVX2},
             {"avx512", NN_BACKEND_AVX512},
             {"neon", NN_BACKEND_NEON}};

static void test_names(void) {
    static const char *bad[] = {"", "AVX2", "Scalar", "sse", "avx", "avx-512", "neon ", " auto", "unknown"};
    size_t i;
    nn_backend out;
    tt_ctx("backend/names");
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
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
    static const nn_backend order[] = {NN_BACKEND_AVX512, NN_BACKEND_AVX2, NN_BACKEND_NEON};
    tt_ctx("backend/switching");

    TT_CHECK(nn_backend_available(NN_BACKEND_SCALAR), "scalar must always be available");
    TT_CHECK(!nn_backend_available((nn_backend)99), "nn_backend_available(99) must be 0");
#if defined(__x86_64__) || defined(__i386__)
    TT_CHECK(!nn_backend_available(NN_BACKEND_NEON), "NEON available on x86?");
#endif
#if defined(__aarch64__)
    TT_CHECK(nn_backend_available(NN_BACKEND_NEON), "NEON is baseline on aarch64");
    TT_CHECK(!nn_backend_available(NN_BACKEND_AVX2) && !nn_backend_available(NN_BACKEND_AVX512),
             "AVX available on aarch64?");
#endif
    if (nn_backend_available(NN_BACKEND_AVX512))
        TT_CHECK(nn_backend_available(NN_BACKEND_AVX2), "AVX-512 available but not AVX2");

    for (i = 1; i < sizeof names / sizeof names[0]; i++) {
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

    /* AUTO resolves to something concrete; without NN_BACKEND, the best */
    for (i = 0; i < sizeof order / sizeof order[0]; i++)
        if (nn_backend_available(order[i])) {
            best = order[i];
            break;
        }
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
