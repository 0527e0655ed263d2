/* test_torch_bridge.c - the nn.h half of scripts/test_torch_bridge.py (which builds and runs it):
 *
 *   cc -O2 -I. -o build/test_torch_bridge scripts/test_torch_bridge.c -lm
 *
 *   train NAME STEPS PREFIX X.bin N   build family NAME (tests/fixtures/safetensors/models.h),
 *                                     adapt its normalization layers, train STEPS batches of 8
 *                                     random samples, write PREFIX.nnm (nn_save with the
 *                                     optimizer state) and PREFIX.safetensors
 *                                     (nn_save_safetensors), predict the N samples of X.bin
 *                                     into PREFIX.out.bin
 *   load NAME FILE X.bin N OUT.bin [named]
 *                                     build NAME in C (named: the dotted layer names of
 *                                     st_cnn_names via nn_layer_set_name), nn_load_safetensors
 *                                     FILE into it, predict
 *   nnload FILE X.bin N OUT.bin [RESAVE]
 *                                     nn_load FILE (safetensors or nn.h's own format), predict;
 *                                     RESAVE: nn_save_safetensors the loaded model there
 *   fashion FILE DATA_DIR OUT.bin [named]
 *                                     the CNN of examples/fashion_cnn.c; named: layers 0, 2,
 *                                     5, 6 named conv1, conv2, fc1, fc2 (bench/torch_reference.py's
 *                                     module names); nn_load_safetensors FILE, or nn_load FILE
 *                                     when not named; predict the 10k test images, write each
 *                                     predicted class as one byte
 *
 * Raw files are little-endian float32, nn.h's layout (images NHWC).  Exit status 0 on success;
 * a failure prints the call, nn_strerror and nn_model_error. */
#define NN_IMPLEMENTATION
#include "../nn.h"
#include "../tests/fixtures/safetensors/models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, nn_status s, const nn_model *m) {
    fprintf(stderr, "test_torch_bridge: %s: %s%s%s\n", what, nn_strerror(s),
            m && *nn_model_error(m) ? ": " : "", m ? nn_model_error(m) : "");
    return 1;
}

static size_t shape_size(nn_shape s) {
    size_t n = 1;
    int i;
    for (i = 0; i < s.ndim; i++) n *= (size_t)s.d[i];
    return n;
}

static float *read_floats(const char *path, size_t n) {
    FILE *f = fopen(path, "rb");
    float *p = (float *)malloc(n * sizeof(float) + 1);
    if (!f || !p || fread(p, sizeof(float), n, f) != n) {
        fprintf(stderr, "test_torch_bridge: cannot read %zu floats from %s\n", n, path);
        if (f) fclose(f);
        free(p);
        return NULL;
    }
    fclose(f);
    return p;
}

static int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        fprintf(stderr, "test_torch_bridge: cannot write %s\n", path);
        if (f) fclose(f);
        return 1;
    }
    return fclose(f) != 0;
}

/* predict the n samples of xpath into outpath */
static int predict_file(nn_model *m, const char *xpath, int n, const char *outpath) {
    size_t in = shape_size(nn_model_input_shape(m)), out = shape_size(nn_model_output_shape(m));
    float *x = read_floats(xpath, in * (size_t)n), *y = (float *)malloc(out * (size_t)n * sizeof(float));
    nn_status s;
    int rc;
    if (!x || !y) {
        free(x);
        free(y);
        return 1;
    }
    s = nn_predict(m, x, n, y);
    rc = s != NN_OK ? fail("nn_predict", s, m) : write_bytes(outpath, y, out * (size_t)n * sizeof(float));
    free(x);
    free(y);
    return rc;
}

/* random inputs the family accepts: token ids (lstm_lm), images in [0,1), N(1.5, 3^2) features */
static void random_x(const char *name, nn_model *m, nn_rng *r, float *x, int n) {
    size_t in = shape_size(nn_model_input_shape(m)) * (size_t)n, i;
    for (i = 0; i < in; i++)
        x[i] = !strcmp(name, "lstm_lm")                ? (float)nn_rng_below(r, 11)
               : nn_model_input_shape(m).ndim == 3 ? nn_rng_uniform(r)
                                                   : 1.5f + 3.0f * nn_rng_normal(r);
}

static int cmd_train(const char *name, int steps, const char *prefix, const char *xpath, int n) {
    enum { B = 8, NADAPT = 64 };
    nn_model *m = st_build(name, 7);
    nn_rng r;
    nn_shape os;
    size_t in, out, ydim, i;
    float *x, *y;
    char path[1024];
    int l, step, k;
    nn_status s;
    if (!m) {
        fprintf(stderr, "test_torch_bridge: cannot build %s\n", name);
        return 1;
    }
    nn_rng_seed(&r, 11);
    in = shape_size(nn_model_input_shape(m));
    os = nn_model_output_shape(m);
    out = shape_size(os);
    /* sparse CE: one class id per sample (per step of a sequence); else targets like the output */
    k = os.d[os.ndim - 1];
    ydim = !strcmp(name, "gru_rnn") || !strcmp(name, "conv_ae") ? out : out / (size_t)k;
    x = (float *)malloc(sizeof(float) * in * NADAPT);
    y = (float *)malloc(sizeof(float) * (out > ydim ? out : ydim) * NADAPT);
    if (!x || !y) return 1;
    for (l = 0; l < nn_model_num_layers(m); l++) {
        size_t nb = 0, nw = 0;
        nn_dataset ds;
        /* a normalization layer: buffers and no weights (batch norm has weights) */
        if (!nn_layer_buffers(m, l, &nb) || nn_layer_weights(m, l, &nw)) continue;
        random_x(name, m, &r, x, NADAPT);
        memset(y, 0, sizeof(float) * NADAPT);
        if ((s = nn_dataset_from_arrays(&ds, NADAPT, nn_model_input_shape(m), x, 1, y)) != NN_OK)
            return fail("nn_dataset_from_arrays", s, m);
        s = nn_normalization_adapt(m, l, &ds);
        nn_dataset_free(&ds);
        if (s != NN_OK) return fail("nn_normalization_adapt", s, m);
    }
    for (step = 0; step < steps; step++) {
        float loss;
        random_x(name, m, &r, x, B);
        for (i = 0; i < ydim * B; i++) {
            if (!strcmp(name, "conv_ae")) y[i] = x[i]; /* the autoencoder: input = target */
            else if (!strcmp(name, "gru_rnn")) y[i] = nn_rng_normal(&r);
            else y[i] = (float)nn_rng_below(&r, (uint32_t)k);
        }
        if ((s = nn_train_on_batch(m, x, y, B, &loss, NULL)) != NN_OK)
            return fail("nn_train_on_batch", s, m);
    }
    snprintf(path, sizeof path, "%s.nnm", prefix);
    if ((s = nn_save(m, path, 1)) != NN_OK) return fail("nn_save", s, m);
    snprintf(path, sizeof path, "%s.safetensors", prefix);
    if ((s = nn_save_safetensors(m, path)) != NN_OK) return fail("nn_save_safetensors", s, m);
    snprintf(path, sizeof path, "%s.out.bin", prefix);
    free(x);
    free(y);
    k = predict_file(m, xpath, n, path);
    nn_model_free(m);
    return k;
}

static int cmd_load(const char *name, const char *file, const char *xpath, int n, const char *outpath,
                    int named) {
    nn_model *m = st_build(name, 3);
    nn_status s;
    int i, rc;
    if (!m) return 1;
    if (named) {
        if (nn_model_num_layers(m) != ST_CNN_NLAYERS) return 1;
        for (i = 0; i < ST_CNN_NLAYERS; i++)
            if ((s = nn_layer_set_name(m, i, st_cnn_names[i])) != NN_OK)
                return fail("nn_layer_set_name", s, m);
    }
    if ((s = nn_load_safetensors(m, file)) != NN_OK) return fail("nn_load_safetensors", s, m);
    rc = predict_file(m, xpath, n, outpath);
    nn_model_free(m);
    return rc;
}

static int cmd_nnload(const char *file, const char *xpath, int n, const char *outpath, const char *resave) {
    nn_model *m = NULL;
    nn_status s = nn_load(&m, file);
    int rc;
    if (s != NN_OK) return fail("nn_load", s, NULL);
    rc = predict_file(m, xpath, n, outpath);
    if (!rc && resave && (s = nn_save_safetensors(m, resave)) != NN_OK)
        rc = fail("nn_save_safetensors", s, m);
    nn_model_free(m);
    return rc;
}

static int cmd_fashion(const char *file, const char *dir, const char *outpath, int named) {
    char ip[1024], lp[1024];
    nn_dataset test;
    nn_model *m = NULL;
    float *probs;
    unsigned char *cls;
    nn_status s;
    int i, c, rc;
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte", dir);
    snprintf(lp, sizeof lp, "%s/t10k-labels-idx1-ubyte", dir);
    if ((s = nn_dataset_load_idx(&test, ip, lp)) != NN_OK) return fail(ip, s, NULL);
    if (named) { /* as examples/fashion_cnn.c builds it */
        m = nn_model_new(test.shape);
        nn_conv2d(m, 32, 3, NN_RELU);
        nn_maxpool2d(m, 2);
        nn_conv2d(m, 64, 3, NN_RELU);
        nn_maxpool2d(m, 2);
        nn_flatten(m);
        nn_dense(m, 64, NN_RELU);
        nn_dense(m, 10, NN_SOFTMAX);
        if ((s = nn_compile(m, nn_adam(1e-3f), NN_LOSS_SPARSE_CATEGORICAL_CE)) != NN_OK)
            return fail("nn_compile", s, m);
        nn_layer_set_name(m, 0, "conv1");
        nn_layer_set_name(m, 2, "conv2");
        nn_layer_set_name(m, 5, "fc1");
        if ((s = nn_layer_set_name(m, 6, "fc2")) != NN_OK) return fail("nn_layer_set_name", s, m);
        if ((s = nn_load_safetensors(m, file)) != NN_OK) return fail("nn_load_safetensors", s, m);
    } else if ((s = nn_load(&m, file)) != NN_OK) {
        return fail("nn_load", s, NULL);
    }
    c = (int)shape_size(nn_model_output_shape(m));
    probs = (float *)malloc(sizeof(float) * (size_t)c * (size_t)test.n);
    cls = (unsigned char *)malloc((size_t)test.n);
    if (!probs || !cls) return 1;
    if ((s = nn_predict_dataset(m, &test, 256, probs)) != NN_OK) return fail("nn_predict_dataset", s, m);
    for (i = 0; i < test.n; i++) {
        int j, best = 0;
        for (j = 1; j < c; j++)
            if (probs[(size_t)i * c + j] > probs[(size_t)i * c + best]) best = j;
        cls[i] = (unsigned char)best;
    }
    rc = write_bytes(outpath, cls, (size_t)test.n);
    free(probs);
    free(cls);
    nn_model_free(m);
    nn_dataset_free(&test);
    return rc;
}

int main(int argc, char **argv) {
    if (argc >= 7 && !strcmp(argv[1], "train"))
        return cmd_train(argv[2], atoi(argv[3]), argv[4], argv[5], atoi(argv[6]));
    if (argc >= 7 && !strcmp(argv[1], "load"))
        return cmd_load(argv[2], argv[3], argv[4], atoi(argv[5]), argv[6], argc > 7 && !strcmp(argv[7], "named"));
    if (argc >= 6 && !strcmp(argv[1], "nnload"))
        return cmd_nnload(argv[2], argv[3], atoi(argv[4]), argv[5], argc > 6 ? argv[6] : NULL);
    if (argc >= 5 && !strcmp(argv[1], "fashion"))
        return cmd_fashion(argv[2], argv[3], argv[4], argc > 5 && !strcmp(argv[5], "named"));
    fprintf(stderr, "usage: %s train NAME STEPS PREFIX X.bin N | load NAME FILE X.bin N OUT.bin [named] |\n"
                    "       nnload FILE X.bin N OUT.bin [RESAVE] | fashion FILE DATA_DIR OUT.bin [named]\n",
            argv[0]);
    return 2;
}
