/* libFuzzer: safetensors files (nn.h section 8.4).  The input is the file.
 * It is loaded
 *   - by nn_load, which tells it from an nn.h model file by its content and
 *     rebuilds the model from the "nnh.arch" metadata: an accepted model is
 *     used (fz_use_model: summary, prediction, input gradient, a training
 *     step), then saved with nn_save_safetensors and loaded again, which
 *     must succeed and give the same parameters and statistics;
 *   - by nn_load_safetensors into each of the fixed compiled models of
 *     fz_st_model (CNN, embedding + LSTM + GRU + RNN, named dense layers),
 *     so mutations reach the name matching, the shapes, the F16 / BF16 /
 *     F64 conversions and the transposing scatter.  An accepted file is
 *     followed by a prediction; a refused one must leave the model's
 *     parameters and statistics unchanged, bit for bit (nn.h promises it)
 *     and the model usable (nn_model_status NN_OK).
 * Seeds (tests/fuzz/safetensors/, gen_seeds.c): nn_save_safetensors files
 * of those models and others, and variants in F16, BF16, F64, mixed
 * dtypes, escaped names and reordered data. */
#include "fuzz_common.h"

#include <math.h>

static nn_model *fixed[FZ_ST_MODELS];
static float *snap[FZ_ST_MODELS]; /* parameters, then every layer's buffers */
static size_t snap_n[FZ_ST_MODELS];
static float *fx_in[FZ_ST_MODELS], *fx_out[FZ_ST_MODELS];

/* parameters then buffers of m into dst (NULL: count them) */
static size_t state_copy(nn_model *m, float *dst) {
    size_t n, c, k = 0;
    int i, nl = nn_model_num_layers(m);
    const float *p = nn_model_params(m, &n);
    if (dst && n) memcpy(dst, p, n * sizeof(float));
    k = n;
    for (i = 0; i < nl; i++) {
        const float *b = nn_layer_buffers(m, i, &c);
        if (b && c) {
            if (dst) memcpy(dst + k, b, c * sizeof(float));
            k += c;
        }
    }
    return k;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    int k;
    (void)argc, (void)argv;
    fz_init("safetensors");
    for (k = 0; k < FZ_ST_MODELS; k++) {
        size_t in, out, i;
        fixed[k] = fz_st_model(k);
        snap_n[k] = state_copy(fixed[k], NULL);
        snap[k] = (float *)malloc((snap_n[k] ? snap_n[k] : 1) * sizeof(float));
        in = fz_shape_floats(nn_model_input_shape(fixed[k]));
        out = fz_shape_floats(nn_model_output_shape(fixed[k]));
        fx_in[k] = (float *)malloc(in * sizeof(float));
        fx_out[k] = (float *)malloc(out * sizeof(float));
        if (!snap[k] || !fx_in[k] || !fx_out[k]) abort();
        state_copy(fixed[k], snap[k]);
        /* token ids below the vocabulary for model 1, a wave otherwise */
        for (i = 0; i < in; i++) fx_in[k][i] = k == 1 ? (float)(i * 3 % 10) : (float)sin(0.37 * (double)i);
    }
    return 0;
}

static int same_float(float a, float b) { return a == b || (isnan(a) && isnan(b)); }

/* An accepted model, used, saved and loaded again: the same model */
static void check_loaded(nn_model *m, const uint8_t *data, size_t size) {
    nn_model *m2 = NULL;
    size_t n1, n2, i;
    float *s1, *s2;
    int nl = nn_model_num_layers(m);
    fz_use_model(m, data, size);
    if (nn_model_num_params(m) > FZ_MAX_PARAMS) return;
    if (nn_save_safetensors(m, fz_path[1]) != NN_OK) abort();
    if (nn_load(&m2, fz_path[1]) != NN_OK || !m2) abort(); /* nn.h refuses its own file */
    if (nn_model_num_layers(m2) != nl) abort();
    for (i = 0; i < (size_t)nl; i++)
        if (strcmp(nn_layer_name(m, (int)i), nn_layer_name(m2, (int)i)) != 0) abort();
    n1 = state_copy(m, NULL);
    n2 = state_copy(m2, NULL);
    if (n1 != n2) abort();
    s1 = (float *)malloc((n1 ? n1 : 1) * sizeof(float));
    s2 = (float *)malloc((n1 ? n1 : 1) * sizeof(float));
    if (s1 && s2) {
        state_copy(m, s1);
        state_copy(m2, s2);
        for (i = 0; i < n1; i++)
            if (!same_float(s1[i], s2[i])) abort(); /* the round trip changed a value */
    }
    free(s1);
    free(s2);
    nn_model_free(m2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nn_model *m = NULL;
    const char *path = fz_write(0, data, size);
    int k;
    if (!path) return 0;
    if (nn_load(&m, path) == NN_OK) {
        if (!m) abort(); /* NN_OK must come with a model */
        check_loaded(m, data, size);
    } else if (m) {
        abort(); /* a failed load must leave *out NULL */
    }
    nn_model_free(m);

    for (k = 0; k < FZ_ST_MODELS; k++) {
        nn_model *f = fixed[k];
        nn_status s = nn_load_safetensors(f, path);
        if (nn_model_status(f) != NN_OK) abort(); /* a refused file must not poison the model */
        if (s == NN_OK) {
            if (nn_predict(f, fx_in[k], 1, fx_out[k]) != NN_OK) abort();
            state_copy(f, snap[k]); /* the new state is the reference */
        } else {
            float *now = (float *)malloc((snap_n[k] ? snap_n[k] : 1) * sizeof(float));
            if (!now) continue;
            if (state_copy(f, now) != snap_n[k]) abort();
            /* "A refused file leaves the model unchanged" (no NN_ERR_IO here:
             * the file does not change while it is read) */
            if (memcmp(now, snap[k], snap_n[k] * sizeof(float)) != 0) abort();
            free(now);
        }
    }
    return 0;
}
