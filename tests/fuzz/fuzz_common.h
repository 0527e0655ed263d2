/* tests/fuzz/fuzz_common.h - shared by the libFuzzer harnesses of nn.h.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *         -I. tests/fuzz/fuzz_load_raw.c -o build/fuzz_load_raw -lm
 *
 * nn.h's loaders take paths, so every harness writes its input to a file of
 * its own process (/dev/shm when it exists, else $TMPDIR or /tmp) and loads
 * that.  The pool runs one thread (NN_THREADS=1, nn_set_threads(1)) so a
 * crash reproduces from its input alone. */
#ifndef NN_FUZZ_COMMON_H
#define NN_FUZZ_COMMON_H
#define _POSIX_C_SOURCE 200809L
#define NN_IMPLEMENTATION
#include "nn.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* not every harness uses every helper */
#define FZ_FN static __attribute__((unused))

static char fz_path[2][512];
static FILE *fz_null; /* /dev/null, for nn_model_summary */

FZ_FN void fz_cleanup(void) {
    unlink(fz_path[0]);
    unlink(fz_path[1]);
}
FZ_FN void fz_init(const char *name) {
    const char *dir = getenv("TMPDIR");
    if (access("/dev/shm", W_OK) == 0) dir = "/dev/shm";
    if (!dir || !*dir) dir = "/tmp";
    snprintf(fz_path[0], sizeof fz_path[0], "%s/nnfuzz_%s_%ld_a", dir, name, (long)getpid());
    snprintf(fz_path[1], sizeof fz_path[1], "%s/nnfuzz_%s_%ld_b", dir, name, (long)getpid());
    setenv("NN_THREADS", "1", 1);
    nn_set_threads(1);
    fz_null = fopen("/dev/null", "w");
    atexit(fz_cleanup);
}

/* Write n bytes to fz_path[which]; returns the path, or NULL (then skip the input). */
FZ_FN const char *fz_write(int which, const uint8_t *data, size_t n) {
    FILE *f = fopen(fz_path[which], "wb");
    if (!f) return NULL;
    if (n && fwrite(data, 1, n, f) != n) {
        fclose(f);
        return NULL;
    }
    if (fclose(f) != 0) return NULL;
    return fz_path[which];
}

FZ_FN uint32_t fz_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* zlib's CRC-32 (the one nn_save writes), table-driven */
FZ_FN uint32_t fz_crc32(const uint8_t *p, size_t n) {
    static uint32_t tab[256];
    static int init;
    uint32_t c = 0xFFFFFFFFu;
    size_t i;
    if (!init) {
        uint32_t k, j, v;
        for (k = 0; k < 256; k++) {
            v = k;
            for (j = 0; j < 8; j++) v = v & 1 ? 0xEDB88320u ^ (v >> 1) : v >> 1;
            tab[k] = v;
        }
        init = 1;
    }
    for (i = 0; i < n; i++) c = tab[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* The input shape stored in the ARCH section of a model file nn_load
 * accepted (nn.h has no accessor for it): the number of floats per sample,
 * or 0 when not found. */
FZ_FN size_t fz_model_input_floats(const uint8_t *p, size_t n) {
    size_t pos = 12;
    uint32_t ns, s;
    if (n < 16) return 0;
    ns = fz_le32(p + 8);
    for (s = 0; s < ns && pos + 16 <= n - 4; s++) {
        uint32_t tag = fz_le32(p + pos);
        uint64_t len = (uint64_t)fz_le32(p + pos + 8) | ((uint64_t)fz_le32(p + pos + 12) << 32);
        pos += 16;
        if (len > n - 4 - pos) return 0;
        if (tag == 0x48435241u /* "ARCH" */ && len >= 16) {
            uint32_t ndim = fz_le32(p + pos), i;
            size_t sz = 1;
            if (ndim < 1 || ndim > 3) return 0;
            for (i = 0; i < ndim; i++) {
                uint32_t d = fz_le32(p + pos + 4 + 4 * i);
                if (d == 0 || d > (1u << 30)) return 0;
                sz *= d;
                if (sz > ((size_t)1 << 32)) return 0;
            }
            return sz;
        }
        pos += (size_t)len;
    }
    return 0;
}

FZ_FN size_t fz_shape_floats(nn_shape s) {
    size_t sz = 1;
    int i;
    if (s.ndim < 1 || s.ndim > 3) return 0;
    for (i = 0; i < s.ndim; i++) {
        if (s.d[i] <= 0) return 0;
        sz *= (size_t)s.d[i];
    }
    return sz;
}

/* Budgets for using an accepted model: a model over them is loaded and
 * summarised but not run, so one huge-but-legal model (nn.h allows 1e9
 * floats per layer output) cannot exhaust libFuzzer's 2 GB malloc limit or
 * stall a run. */
#define FZ_MAX_IO_FLOATS ((size_t)1 << 16)
#define FZ_MAX_ACT_FLOATS ((size_t)1 << 20)
#define FZ_MAX_PARAMS ((size_t)1 << 18)

/* Use a model the way a program would: summary, a prediction on zeros
 * (zero is a valid token id for an embedding), the input gradient, one
 * training step on zero targets (zero is a valid class id) resuming from
 * the saved optimizer state, and a prediction after it. */
FZ_FN void fz_use_model(nn_model *m, const uint8_t *file, size_t n) {
    size_t in = fz_shape_floats(nn_model_input_shape(m));
    size_t out = fz_shape_floats(nn_model_output_shape(m));
    size_t act = 0;
    float *x, *y, *dx;
    int i, nl = nn_model_num_layers(m);
    nn_model_summary(m, fz_null);
    /* the model's input is the file's: an accepted file whose input shape
     * differs from the model nn_load built is itself a bug (an nn.h model
     * file; nn_load also takes safetensors, whose input is in hex metadata) */
    if (in == 0 || (n >= 4 && memcmp(file, "NNH\x1a", 4) == 0 && in != fz_model_input_floats(file, n)))
        abort();
    for (i = 0; i < nl; i++) act += fz_shape_floats(nn_layer_output_shape(m, i));
    if (out == 0 || in > FZ_MAX_IO_FLOATS || out > FZ_MAX_IO_FLOATS || act > FZ_MAX_ACT_FLOATS ||
        nn_model_num_params(m) > FZ_MAX_PARAMS)
        return;
    x = (float *)calloc(in, sizeof(float));
    y = (float *)calloc(out, sizeof(float));
    dx = (float *)calloc(in, sizeof(float));
    if (x && y && dx) {
        float loss, acc;
        (void)nn_predict(m, x, 1, y);
        memset(y, 0, out * sizeof(float));
        (void)nn_input_gradient(m, x, y, 1, dx);
        (void)nn_train_on_batch(m, x, y, 1, &loss, &acc);
        (void)nn_predict(m, x, 1, y);
    }
    free(x);
    free(y);
    free(dx);
}

/* The fixed compiled models fuzz_safetensors loads every input into (and
 * gen_seeds.c saves as its seeds: the same builders), k = 0 .. FZ_ST_MODELS-1.
 * 0: CNN (conv 'same', batch norm, max pool, conv, flatten, batch norm in
 *    PyTorch's (c, h, w) order, dense 32 -> 16: the 8 x 8 transposes);
 * 1: embedding + LSTM + GRU + RNN (summed biases, gate order) + dense;
 * 2: dense with normalization, batch norm, dropout and named layers
 *    ("fc1", "head.out": nnh.names). */
#define FZ_ST_MODELS 3
FZ_FN nn_model *fz_st_model(int k) {
    nn_model *m;
    if (k == 0) {
        m = nn_model_new(nn_shape3(8, 8, 2));
        nn_conv2d_ex(m, 4, 3, 3, 1, 1, NN_RELU);
        nn_batchnorm(m);
        nn_maxpool2d(m, 2);
        nn_conv2d_ex(m, 8, 3, 3, 2, 1, NN_RELU);
        nn_flatten(m);
        nn_batchnorm(m);
        nn_dense(m, 16, NN_RELU);
        nn_dense(m, 3, NN_LINEAR);
        nn_compile(m, nn_sgd(0.05f), NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS);
    } else if (k == 1) {
        m = nn_model_new(nn_shape1(6));
        nn_embedding(m, 10, 8);
        nn_lstm(m, 8, 1);
        nn_gru(m, 8, 1);
        nn_rnn(m, 8, 0);
        nn_dense(m, 4, NN_LINEAR);
        nn_compile(m, nn_adam(0.01f), NN_LOSS_MSE);
    } else {
        m = nn_model_new(nn_shape1(8));
        nn_normalization(m);
        nn_dense(m, 12, NN_RELU);
        nn_batchnorm(m);
        nn_dropout(m, 0.25f);
        nn_dense(m, 3, NN_SOFTMAX);
        nn_compile(m, nn_adam(0.01f), NN_LOSS_CATEGORICAL_CE);
        nn_layer_set_name(m, 1, "fc1");
        nn_layer_set_name(m, 4, "head.out");
    }
    if (!m || nn_model_status(m) != NN_OK) {
        fprintf(stderr, "fz_st_model(%d): %s\n", k, m ? nn_model_error(m) : "out of memory");
        exit(1);
    }
    return m;
}

#endif
