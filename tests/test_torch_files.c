/* Safetensors files written by PyTorch load into nn.h (group "torch_files").
 *
 * tests/fixtures/safetensors/ holds files written from PyTorch by scripts/torch_bridge.py's
 * save_for_nnh (make_fixtures.py there regenerates them; it needs python3-torch): one per
 * model family of models.h / models.py, in F64, F16, BF16 and F32, with the architecture in
 * the metadata, plus NAME.x.bin (inputs, nn.h's layout) and NAME.out.bin (the PyTorch twin's
 * output on them, float64 from the weights as the file rounds them), little-endian float32.
 * On every backend, for each file:
 *   - nn_load rebuilds the model from the metadata (cnn_winograd: with its dotted layer
 *     names) and nn_predict matches;
 *   - nn_load_safetensors into the model models.h builds in C (cnn_winograd: after
 *     nn_layer_set_name of those names) matches too;
 *   - cnn_winograd into the C-built model without the names is refused, the model unchanged.
 * plain.safetensors: mlp_bn_dropout's weights as F32 with no metadata (as any PyTorch
 * program writes a state_dict): nn_load_safetensors reads it, nn_load cannot rebuild a model
 * from it.  Tolerance: 1e-4 of the largest expected magnitude.  The tests read the files
 * relative to the repository root (make test runs there; ../ is tried too). */
#include "nn.h"
#include "tt.h"
#include "fixtures/safetensors/models.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void test_torch_files(void);

#define TF_N 4        /* samples per input file (make_fixtures.py N_SAMPLES) */
#define TF_TOL 1e-4   /* of the largest expected magnitude */

typedef struct {
    const char *name, *dtype;
    int in_dim, out_dim, layers, named;
} tf_fixture;

static const tf_fixture tf_fixtures[] = {
    {"mlp_bn_dropout", "F64", 12, 4, 6, 0},    {"cnn_winograd", "F16", 300, 5, 9, 1},
    {"lstm_lm", "BF16", 7, 77, 3, 0},          {"gru_rnn", "F32", 24, 2, 3, 0},
    {"conv_ae", "BF16", 288, 288, 10, 0},      {"cnn_gap", "F16", 162, 3, 5, 0},
};

static const char *tf_dir(void) {
    static const char *const dirs[] = {"tests/fixtures/safetensors", "../tests/fixtures/safetensors"};
    static const char *found;
    size_t i;
    if (found) return found;
    for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[256];
        FILE *f;
        snprintf(path, sizeof path, "%s/plain.safetensors", dirs[i]);
        f = fopen(path, "rb");
        if (f) {
            fclose(f);
            return found = dirs[i];
        }
    }
    return NULL;
}

/* exactly n little-endian float32 from DIR/NAME SUFFIX, or NULL with one failed check */
static float *tf_read(const char *name, const char *suffix, size_t n) {
    char path[256];
    FILE *f;
    unsigned char *b;
    float *x;
    long sz;
    size_t i;
    snprintf(path, sizeof path, "%s/%s%s", tf_dir(), name, suffix);
    f = fopen(path, "rb");
    if (!TT_CHECK(f != NULL, "cannot open %s", path)) return NULL;
    fseek(f, 0, SEEK_END);
    sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = (unsigned char *)malloc(4 * n + 1);
    x = (float *)malloc(n * sizeof(float) + 1);
    if (!TT_CHECK(sz == (long)(4 * n) && b && x && fread(b, 1, 4 * n, f) == 4 * n, "%s: %ld bytes, expected %lu floats",
                  path, sz, (unsigned long)n)) {
        fclose(f);
        free(b);
        free(x);
        return NULL;
    }
    fclose(f);
    for (i = 0; i < n; i++) {
        uint32_t u = (uint32_t)b[4 * i] | ((uint32_t)b[4 * i + 1] << 8) | ((uint32_t)b[4 * i + 2] << 16) |
                     ((uint32_t)b[4 * i + 3] << 24);
        memcpy(&x[i], &u, 4);
    }
    free(b);
    return x;
}

static double tf_max_abs(const float *x, size_t n) {
    double a = 0;
    size_t i;
    for (i = 0; i < n; i++)
        if (fabs((double)x[i]) > a) a = fabs((double)x[i]);
    return a;
}

static size_t tf_size(nn_shape s) {
    size_t n = 1;
    int i;
    if (s.ndim < 1 || s.ndim > 3) return 0;
    for (i = 0; i < s.ndim; i++) n *= (size_t)s.d[i];
    return n;
}

/* nn_predict of m on x against want (TF_N samples of out_dim), one check */
static void tf_predict(nn_model *m, const tf_fixture *fx, const float *x, const float *want, const char *what) {
    size_t n = (size_t)TF_N * (size_t)fx->out_dim;
    float *got = tt_galloc(n);
    nn_status st;
    if (!TT_CHECK(tf_size(nn_model_output_shape(m)) == (size_t)fx->out_dim && tf_size(nn_model_input_shape(m)) ==
                      (size_t)fx->in_dim, "%s: input %lu / output %lu floats per sample, expected %d / %d", what,
                  (unsigned long)tf_size(nn_model_input_shape(m)), (unsigned long)tf_size(nn_model_output_shape(m)),
                  fx->in_dim, fx->out_dim)) {
        tt_gfree(got);
        return;
    }
    st = nn_predict(m, x, TF_N, got);
    if (TT_CHECK(st == NN_OK, "%s: nn_predict: %s (%s)", what, nn_strerror(st), nn_model_error(m)))
        TT_CMP_ARR(what, got, want, NULL, n, 0.0, TF_TOL * tf_max_abs(want, n));
    TT_GUARDS_OK(got);
    tt_gfree(got);
}

static void tf_one(const tf_fixture *fx) {
    float *x = tf_read(fx->name, ".x.bin", (size_t)TF_N * fx->in_dim);
    float *want = tf_read(fx->name, ".out.bin", (size_t)TF_N * fx->out_dim);
    char path[256];
    int bi, i;
    snprintf(path, sizeof path, "%s/%s.safetensors", tf_dir(), fx->name);
    for (bi = 0; x && want && bi < TT_NBACKENDS; bi++) {
        nn_model *m = NULL;
        nn_status st;
        char label[128];
        snprintf(label, sizeof label, "torch_files %s", fx->name);
        if (!tt_use_backend(label, tt_backends[bi])) continue;
        tt_ctx("torch_files[%s] %s (%s)", nn_backend_name(tt_backends[bi]), fx->name, fx->dtype);
        /* nn_load: the model from the metadata */
        st = nn_load(&m, path);
        if (TT_CHECK(st == NN_OK && m, "nn_load(%s): %s", path, nn_strerror(st))) {
            TT_EQ_INT(nn_model_num_layers(m), fx->layers);
            if (fx->named)
                for (i = 0; i < ST_CNN_NLAYERS; i++) {
                    const char *nm = nn_layer_name(m, i);
                    TT_CHECK(nm && !strcmp(nm, st_cnn_names[i]), "layer %d named '%s' after nn_load, expected '%s'", i,
                             nm ? nm : "(null)", st_cnn_names[i]);
                }
            tf_predict(m, fx, x, want, "nn_load of PyTorch's file: nn_predict matches the twin");
        }
        nn_model_free(m);
        /* nn_load_safetensors into the model built in C */
        m = st_build(fx->name, 5);
        if (!TT_CHECK(m != NULL, "models.h builds %s", fx->name)) continue;
        if (fx->named) {
            /* without the names the keys do not fit: refused, the model unchanged */
            size_t np = 0, k;
            float *p = nn_model_params(m, &np), *copy = (float *)malloc((np + 1) * sizeof(float));
            if (copy) memcpy(copy, p, np * sizeof(float));
            st = nn_load_safetensors(m, path);
            TT_CHECK(st != NN_OK, "nn_load_safetensors of dotted keys into a model without the names: accepted");
            for (k = 0; copy && k < np && !memcmp(&copy[k], &p[k], sizeof(float)); k++) continue;
            TT_CHECK(copy && k == np, "a refused file changed parameter %lu of %lu", (unsigned long)k,
                     (unsigned long)np);
            free(copy);
            for (i = 0; i < ST_CNN_NLAYERS; i++) {
                st = nn_layer_set_name(m, i, st_cnn_names[i]);
                TT_CHECK(st == NN_OK, "nn_layer_set_name(%d, %s): %s", i, st_cnn_names[i], nn_strerror(st));
            }
        }
        st = nn_load_safetensors(m, path);
        if (TT_CHECK(st == NN_OK, "nn_load_safetensors(%s): %s (%s)", path, nn_strerror(st), nn_model_error(m)))
            tf_predict(m, fx, x, want, "nn_load_safetensors into the C-built model: nn_predict matches the twin");
        nn_model_free(m);
    }
    free(x);
    free(want);
}

/* plain.safetensors: keys only, F32, no metadata */
static void tf_plain(void) {
    const tf_fixture *fx = &tf_fixtures[0]; /* mlp_bn_dropout: its weights, its inputs */
    float *x = tf_read(fx->name, ".x.bin", (size_t)TF_N * fx->in_dim);
    float *want = tf_read(fx->name, ".out.bin", (size_t)TF_N * fx->out_dim);
    char path[256];
    nn_model *m = NULL;
    nn_status st;
    snprintf(path, sizeof path, "%s/plain.safetensors", tf_dir());
    tt_ctx("torch_files plain.safetensors (no metadata)");
    st = nn_load(&m, path);
    TT_CHECK(st != NN_OK && m == NULL, "nn_load of a file without nnh.arch: %s, expected a refusal", nn_strerror(st));
    nn_model_free(m);
    m = st_build(fx->name, 5);
    if (x && want && TT_CHECK(m != NULL, "models.h builds %s", fx->name)) {
        st = nn_load_safetensors(m, path);
        if (TT_CHECK(st == NN_OK, "nn_load_safetensors(%s): %s (%s)", path, nn_strerror(st), nn_model_error(m)))
            tf_predict(m, fx, x, want, "a plain state_dict file into the C-built model: nn_predict matches");
    }
    nn_model_free(m);
    free(x);
    free(want);
}

void test_torch_files(void) {
    size_t i;
    if (!tf_dir()) {
        TT_CHECK(0, "tests/fixtures/safetensors not found (run from the repository root)");
        return;
    }
    for (i = 0; i < sizeof tf_fixtures / sizeof tf_fixtures[0]; i++) tf_one(&tf_fixtures[i]);
    tf_plain();
    (void)nn_set_backend(NN_BACKEND_AUTO);
}
