/* tests/fuzz/gen_seeds.c - writes the seed corpora of the fuzz harnesses
 * (committed; rerun after a format change):
 *
 *   cc -O1 -I. tests/fuzz/gen_seeds.c -o build/gen_seeds -lm && build/gen_seeds tests/fuzz
 *
 * model/: tiny models of every layer kind, each saved with and without
 *         optimizer state (format 2); the format-1 files of
 *         tests/fixtures/v1 are copied there as v1_*.nnm by hand (cp).
 * idx/:   u32 LE images length, images (IDX u8 3-dim), labels (IDX u8 1-dim)
 * csv/:   option byte (bit 0 header), label_col byte (signed), the CSV text */
#define NN_IMPLEMENTATION
#include "nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dir;

static void save_model(nn_model *m, const char *name, nn_optimizer o, nn_loss loss) {
    char p[512];
    if (nn_compile(m, o, loss) != NN_OK) {
        fprintf(stderr, "gen_seeds: %s: %s\n", name, nn_model_error(m));
        exit(1);
    }
    snprintf(p, sizeof p, "%s/model/%s.nnm", dir, name);
    if (nn_save(m, p, 0) != NN_OK) exit(1);
    snprintf(p, sizeof p, "%s/model/%s_opt.nnm", dir, name);
    if (nn_save(m, p, 1) != NN_OK) exit(1);
    nn_model_free(m);
}

static void put(const char *sub, const char *name, const void *p, size_t n) {
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "gen_seeds: cannot write %s\n", path);
        exit(1);
    }
}

static size_t be32(unsigned char *p, unsigned v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
    return 4;
}

/* one IDX seed: n images of h x w, n labels */
static void idx_seed(const char *name, unsigned n, unsigned h, unsigned w) {
    unsigned char b[4096];
    size_t k = 4, il, i;
    b[k++] = 0, b[k++] = 0, b[k++] = 8, b[k++] = 3;
    k += be32(b + k, n);
    k += be32(b + k, h);
    k += be32(b + k, w);
    for (i = 0; i < (size_t)n * h * w; i++) b[k++] = (unsigned char)(i * 37);
    il = k - 4;
    b[0] = (unsigned char)il, b[1] = (unsigned char)(il >> 8), b[2] = 0, b[3] = 0;
    b[k++] = 0, b[k++] = 0, b[k++] = 8, b[k++] = 1;
    k += be32(b + k, n);
    for (i = 0; i < n; i++) b[k++] = (unsigned char)(i % 10);
    put("idx", name, b, k);
}

static void csv_seed(const char *name, int header, int label_col, const char *text) {
    char b[4096];
    size_t n = strlen(text);
    b[0] = (char)header;
    b[1] = (char)(signed char)label_col;
    memcpy(b + 2, text, n);
    put("csv", name, b, n + 2);
}

int main(int argc, char **argv) {
    nn_model *m;
    dir = argc > 1 ? argv[1] : "tests/fuzz";
    nn_set_threads(1);

    /* dense MLP (every activation, leaky slope, dropout, normalization, frozen layer) */
    m = nn_model_new(nn_shape1(4));
    nn_normalization(m);
    nn_dense(m, 8, NN_LEAKY_RELU);
    nn_leaky_relu_slope(m, 0.2f);
    nn_dropout(m, 0.25f);
    nn_dense(m, 6, NN_TANH);
    nn_dense(m, 5, NN_SIGMOID);
    nn_activation_layer(m, NN_RELU);
    nn_dense(m, 3, NN_SOFTMAX);
    nn_layer_freeze(m, 1, 1);
    save_model(m, "mlp", nn_adam(0.01f), NN_LOSS_CATEGORICAL_CE);

    m = nn_model_new(nn_shape1(3));
    nn_dense(m, 4, NN_RELU);
    nn_batchnorm(m);
    nn_dense(m, 1, NN_LINEAR);
    save_model(m, "mlp_bn_mse", nn_sgd_momentum(0.1f, 0.9f, 1), NN_LOSS_MSE);

    /* CNN: conv (valid and same, stride 2), maxpool, avgpool, flatten, dense */
    m = nn_model_new(nn_shape3(8, 8, 1));
    nn_conv2d(m, 2, 3, NN_RELU);
    nn_maxpool2d(m, 2);
    nn_conv2d_ex(m, 3, 2, 2, 2, 1, NN_LINEAR);
    nn_flatten(m);
    nn_dense(m, 3, NN_LINEAR);
    save_model(m, "cnn", nn_sgd(0.05f), NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS);

    /* conv autoencoder: avgpool, upsample, batchnorm on an image, global pool */
    m = nn_model_new(nn_shape3(4, 4, 2));
    nn_conv2d_ex(m, 2, 3, 3, 1, 1, NN_RELU);
    nn_batchnorm(m);
    nn_avgpool2d(m, 2);
    nn_upsample2d(m, 2);
    nn_conv2d_ex(m, 2, 1, 1, 1, 0, NN_SIGMOID);
    save_model(m, "conv_ae", nn_rmsprop(0.001f), NN_LOSS_BINARY_CE);

    /* Winograd conv (3x3, >= 8 channels in and out), global average pool */
    m = nn_model_new(nn_shape3(6, 6, 8));
    nn_conv2d(m, 8, 3, NN_RELU);
    nn_global_avgpool2d(m);
    nn_dense(m, 2, NN_LINEAR);
    save_model(m, "cnn_winograd", nn_adamw(0.01f, 0.01f), NN_LOSS_BINARY_CE_FROM_LOGITS);

    /* embedding + LSTM language model (per-step sparse CE) */
    m = nn_model_new(nn_shape1(5));
    nn_embedding(m, 7, 3);
    nn_lstm(m, 4, 1);
    nn_dense(m, 7, NN_LINEAR);
    save_model(m, "lstm_lm", nn_adam(0.01f), NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS);

    /* GRU (last state) + batchnorm, and a plain RNN */
    m = nn_model_new(nn_shape2(4, 3));
    nn_gru(m, 5, 0);
    nn_batchnorm(m);
    nn_dense(m, 2, NN_SOFTMAX);
    save_model(m, "gru_bn", nn_rmsprop(0.01f), NN_LOSS_SPARSE_CATEGORICAL_CE);

    m = nn_model_new(nn_shape2(3, 2));
    nn_rnn(m, 3, 1);
    nn_normalization(m);
    nn_dense(m, 1, NN_LINEAR);
    save_model(m, "rnn_seq", nn_sgd(0.1f), NN_LOSS_MSE);

    idx_seed("tiny_2x3x3", 2, 3, 3);
    idx_seed("one_1x1x1", 1, 1, 1);
    idx_seed("ten_10x4x4", 10, 4, 4);

    csv_seed("header_last", 1, -1, "a,b,c\n0.5,1,0\n-2,3e2,1\n4, 5 ,2\n");
    csv_seed("noheader_first", 0, 0, "1,0.25,-0.5\r\n0,1e-3,2.5\r\n\r\n2,7,8\r\n");
    csv_seed("regression", 0, 2, "1.5,2,3.25,4\n0x1p3,-1,0.75,2\n");
    csv_seed("blank_lines", 1, 1, "h1,h2\n\n  1,2\n\t3,4\n\n5,6");
    return 0;
}
