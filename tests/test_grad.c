/* Gradient checks of the training layer: every layer kind, activation and
 * loss, under the scalar backend and the best SIMD backend.
 *
 * A small model is built from a table, its parameters are randomised, and
 * nn_forward(training) + nn_backward give the analytic gradients.  Each
 * parameter (all of them, or an even sample of big blocks) is moved by +-h
 * and the loss recomputed the same way: central differences, h = 1e-2,
 * relative tolerance 1e-2 plus a small absolute floor tied to the largest
 * gradient of the model.  Weight gradients of every layer suffice to check
 * every layer's dx: each layer's dx feeds the weight gradient of a layer
 * before it, so the cases put a parameter layer before the layer under test
 * (e.g. a 1x1 conv before the conv under test, whose dx is otherwise never
 * computed as layer 0 gets dx == NULL).
 *
 * Kinks (TRAPS.md): ReLU / leaky ReLU only right after the first layer,
 * whose pre-activations are recomputed in double and kept at least 4h away
 * from 0 by shifting the bias; max-pool only right after the first conv,
 * whose outputs are recomputed and the data re-drawn until the largest
 * element of every window leads the second by 3h (a weight moved by h moves
 * each output by at most h: inputs are in [-1,1]).  Dropout: the model's RNG
 * is re-seeded before every forward, so the mask is the same for all
 * evaluations; an exact check of dx == dy * mask / (1 - p) follows.
 * Normalization layers are adapted (nn_normalization_adapt) on data with
 * a per-feature offset and scale before the check, so their mean and
 * variance are not the identity's 0 and 1.
 * Also checked: the loss value against a double recomputation from
 * nn_output(), and batch norm's running statistics. */
#include "nn.h"
#include "tt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void test_grad(void);

enum {
    S_END = 0,
    S_DENSE,
    S_CONV,
    S_MAXPOOL,
    S_AVGPOOL,
    S_FLATTEN,
    S_ACT,
    S_DROPOUT,
    S_BN,
    S_SLOPE,
    S_UPSAMPLE,
    S_GAP,
    S_NORM,
    S_NOBIAS
};
enum { G_NONE = 0, G_RELU, G_POOL };
typedef struct {
    int kind, units, kh, kw, stride, same;
    nn_activation act;
    float f; /* dropout rate / leaky slope */
} lspec;
#define DENSE(u, a) {S_DENSE, u, 0, 0, 0, 0, a, 0}
#define CONV(f, kh, kw, s, same, a) {S_CONV, f, kh, kw, s, same, a, 0}
#define MAXPOOL(p) {S_MAXPOOL, p, 0, 0, 0, 0, NN_LINEAR, 0}
#define AVGPOOL(p) {S_AVGPOOL, p, 0, 0, 0, 0, NN_LINEAR, 0}
#define MAXPOOL_PAD(p, pad) {S_MAXPOOL, p, 0, 0, 0, pad, NN_LINEAR, 0}
#define AVGPOOL_PAD(p, pad) {S_AVGPOOL, p, 0, 0, 0, pad, NN_LINEAR, 0}
#define NOBIAS {S_NOBIAS, 0, 0, 0, 0, 0, NN_LINEAR, 0}
#define FLATTEN {S_FLATTEN, 0, 0, 0, 0, 0, NN_LINEAR, 0}
#define ACT(a) {S_ACT, 0, 0, 0, 0, 0, a, 0}
#define DROPOUT(r) {S_DROPOUT, 0, 0, 0, 0, 0, NN_LINEAR, r}
#define BN {S_BN, 0, 0, 0, 0, 0, NN_LINEAR, 0}
#define SLOPE(s) {S_SLOPE, 0, 0, 0, 0, 0, NN_LINEAR, s}
#define GAP {S_GAP, 0, 0, 0, 0, 0, NN_LINEAR, 0}
#define NORM {S_NORM, 0, 0, 0, 0, 0, NN_LINEAR, 0}
#define END {S_END, 0, 0, 0, 0, 0, NN_LINEAR, 0}

typedef struct {
    const char *name;
    struct {
        int h, w, c; /* input: w == 0 means a vector of h features */
        int B;
        nn_loss loss;
        int guard; /* G_RELU: first-layer pre-activation margin; G_POOL: window gaps */
        int soft;  /* categorical CE with soft targets */
    } k;
    lspec L[9];
} gcase;

static const gcase cases[] = {
    /* dense: each activation on the hidden layer, MSE */
    {"dense linear", {4, 0, 0, 4, NN_LOSS_MSE, G_NONE, 0}, {DENSE(5, NN_LINEAR), DENSE(3, NN_LINEAR), END}},
    {"dense relu", {4, 0, 0, 4, NN_LOSS_MSE, G_RELU, 0}, {DENSE(5, NN_RELU), DENSE(3, NN_LINEAR), END}},
    {"dense leaky_relu", {4, 0, 0, 4, NN_LOSS_MSE, G_RELU, 0}, {DENSE(5, NN_LEAKY_RELU), DENSE(3, NN_LINEAR), END}},
    {"dense leaky_relu slope 0.2",
     {4, 0, 0, 4, NN_LOSS_MSE, G_RELU, 0},
     {DENSE(5, NN_LEAKY_RELU), SLOPE(0.2f), DENSE(3, NN_LINEAR), END}},
    {"dense sigmoid", {4, 0, 0, 4, NN_LOSS_MSE, G_NONE, 0}, {DENSE(5, NN_SIGMOID), DENSE(3, NN_LINEAR), END}},
    {"dense tanh", {4, 0, 0, 4, NN_LOSS_MSE, G_NONE, 0}, {DENSE(5, NN_TANH), DENSE(3, NN_LINEAR), END}},
    {"dense softmax (hidden)", {4, 0, 0, 4, NN_LOSS_MSE, G_NONE, 0}, {DENSE(5, NN_SOFTMAX), DENSE(3, NN_LINEAR), END}},
    /* activations on the output layer (not fused: MSE) */
    {"output relu, MSE", {4, 0, 0, 4, NN_LOSS_MSE, G_RELU, 0}, {DENSE(3, NN_RELU), END}},
    {"output leaky_relu, MSE", {4, 0, 0, 4, NN_LOSS_MSE, G_RELU, 0}, {DENSE(3, NN_LEAKY_RELU), END}},
    {"output sigmoid, MSE", {4, 0, 0, 4, NN_LOSS_MSE, G_NONE, 0}, {DENSE(4, NN_TANH), DENSE(3, NN_SIGMOID), END}},
    {"output tanh, MSE", {4, 0, 0, 4, NN_LOSS_MSE, G_NONE, 0}, {DENSE(4, NN_TANH), DENSE(3, NN_TANH), END}},
    {"output softmax, MSE", {4, 0, 0, 4, NN_LOSS_MSE, G_NONE, 0}, {DENSE(4, NN_TANH), DENSE(3, NN_SOFTMAX), END}},
    /* activation layers */
    {"act layer linear",
     {4, 0, 0, 4, NN_LOSS_MSE, G_NONE, 0},
     {DENSE(5, NN_LINEAR), ACT(NN_LINEAR), DENSE(3, NN_LINEAR), END}},
    {"act layer relu",
     {4, 0, 0, 4, NN_LOSS_MSE, G_RELU, 0},
     {DENSE(5, NN_LINEAR), ACT(NN_RELU), DENSE(3, NN_LINEAR), END}},
    {"act layer leaky_relu slope 0.1",
     {4, 0, 0, 4, NN_LOSS_MSE, G_RELU, 0},
     {DENSE(5, NN_LINEAR), ACT(NN_LEAKY_RELU), SLOPE(0.1f), DENSE(3, NN_LINEAR), END}},
    {"act layer sigmoid",
     {4, 0, 0, 4, NN_LOSS_MSE, G_NONE, 0},
     {DENSE(5, NN_LINEAR), ACT(NN_SIGMOID), DENSE(3, NN_LINEAR), END}},
    {"act layer tanh",
     {4, 0, 0, 4, NN_LOSS_MSE, G_NONE, 0},
     {DENSE(5, NN_LINEAR), ACT(NN_TANH), DENSE(3, NN_LINEAR), END}},
    {"act layer softmax",
     {4, 0, 0, 4, NN_LOSS_MSE, G_NONE, 0},
     {DENSE(5, NN_LINEAR), ACT(NN_SOFTMAX), DENSE(3, NN_LINEAR), END}},
    {"act layer softmax over channels",
     {4, 4, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(3, 3, 3, 1, 1, NN_LINEAR), ACT(NN_SOFTMAX), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"act layer tanh on an image",
     {4, 4, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(3, 3, 3, 1, 0, NN_LINEAR), ACT(NN_TANH), FLATTEN, DENSE(2, NN_LINEAR), END}},
    /* conv2d: a 1x1 conv first so that the tested conv's dx is checked */
    {"conv 3x3 valid stride 1",
     {5, 5, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(2, 1, 1, 1, 0, NN_LINEAR), CONV(3, 3, 3, 1, 0, NN_TANH), FLATTEN, DENSE(3, NN_LINEAR), END}},
    {"conv 3x3 same stride 1",
     {5, 5, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(2, 1, 1, 1, 0, NN_LINEAR), CONV(3, 3, 3, 1, 1, NN_TANH), FLATTEN, DENSE(3, NN_LINEAR), END}},
    {"conv 3x3 valid stride 2",
     {6, 5, 3, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(2, 1, 1, 1, 0, NN_LINEAR), CONV(3, 3, 3, 2, 0, NN_SIGMOID), FLATTEN, DENSE(3, NN_LINEAR), END}},
    {"conv 3x3 same stride 2",
     {6, 5, 3, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(2, 1, 1, 1, 0, NN_LINEAR), CONV(3, 3, 3, 2, 1, NN_LINEAR), FLATTEN, DENSE(3, NN_LINEAR), END}},
    {"conv 2x3 same stride 1 then 3x2 valid stride 2",
     {6, 7, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(3, 2, 3, 1, 1, NN_TANH), CONV(2, 3, 2, 2, 0, NN_TANH), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"conv 4x4 same stride 2 (even kernel)",
     {5, 6, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(2, 1, 1, 1, 0, NN_TANH), CONV(3, 4, 4, 2, 1, NN_LINEAR), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"conv 3x3 valid stride 1, Winograd (8 -> 9 channels)",
     {5, 6, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(8, 1, 1, 1, 0, NN_LINEAR), CONV(9, 3, 3, 1, 0, NN_TANH), FLATTEN, DENSE(3, NN_LINEAR), END}},
    {"conv 3x3 same stride 1, Winograd (8 -> 8, odd sizes)",
     {5, 3, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(8, 1, 1, 1, 0, NN_LINEAR), CONV(8, 3, 3, 1, 1, NN_TANH), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"conv 3x3 padding 1 stride 2 on an even input (PyTorch's Conv2d(3, stride=2, padding=1))",
     {6, 6, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(2, 1, 1, 1, 0, NN_LINEAR), CONV(3, 3, 3, 2, NN_PADDING(1), NN_TANH), FLATTEN, DENSE(3, NN_LINEAR), END}},
    {"conv 2x3 padding 3 stride 1 (more padding than the kernel needs)",
     {4, 5, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(2, 1, 1, 1, 0, NN_LINEAR), CONV(2, 2, 3, 1, NN_PADDING(3), NN_TANH), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"conv 3x3 padding 2 stride 1, Winograd (8 -> 8)",
     {5, 4, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(8, 1, 1, 1, 0, NN_LINEAR), CONV(8, 3, 3, 1, NN_PADDING(2), NN_TANH), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"dense and conv without bias (PyTorch bias=False)",
     {5, 5, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(3, 3, 3, 1, 1, NN_TANH), NOBIAS, BN, FLATTEN, DENSE(4, NN_TANH), NOBIAS, DENSE(2, NN_LINEAR), END}},
    {"maxpool 2 padding 1 (PyTorch's MaxPool2d(2, padding=1))",
     {5, 6, 2, 2, NN_LOSS_MSE, G_POOL, 0},
     {CONV(2, 3, 3, 1, 1, NN_TANH), MAXPOOL_PAD(2, 1), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"maxpool 3 padding 1",
     {7, 5, 2, 2, NN_LOSS_MSE, G_POOL, 0},
     {CONV(2, 3, 3, 1, 1, NN_LINEAR), MAXPOOL_PAD(3, 1), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"avgpool 2 padding 1 (zeros counted)",
     {5, 6, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(2, 1, 1, 1, 0, NN_TANH), AVGPOOL_PAD(2, 1), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"conv relu (first layer)",
     {5, 5, 2, 2, NN_LOSS_MSE, G_RELU, 0},
     {CONV(3, 3, 3, 1, 1, NN_RELU), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"conv leaky_relu (first layer)",
     {5, 5, 2, 2, NN_LOSS_MSE, G_RELU, 0},
     {CONV(3, 3, 3, 1, 0, NN_LEAKY_RELU), FLATTEN, DENSE(2, NN_LINEAR), END}},
    /* pooling */
    {"maxpool 2",
     {6, 6, 2, 2, NN_LOSS_MSE, G_POOL, 0},
     {CONV(3, 3, 3, 1, 1, NN_LINEAR), MAXPOOL(2), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"conv relu then maxpool 2 (the pool applies ReLU')",
     {6, 6, 2, 2, NN_LOSS_MSE, G_POOL, 0},
     {CONV(3, 3, 3, 1, 1, NN_RELU), MAXPOOL(2), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"maxpool 2, odd input (floor)",
     {5, 7, 2, 2, NN_LOSS_MSE, G_POOL, 0},
     {CONV(2, 3, 3, 1, 1, NN_TANH), MAXPOOL(2), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"maxpool 3",
     {7, 7, 2, 2, NN_LOSS_MSE, G_POOL, 0},
     {CONV(2, 3, 3, 1, 1, NN_LINEAR), MAXPOOL(3), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"maxpool 3 after a tanh activation layer",
     {6, 6, 1, 2, NN_LOSS_MSE, G_POOL, 0},
     {CONV(2, 3, 3, 1, 1, NN_LINEAR), ACT(NN_TANH), MAXPOOL(3), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"avgpool 2",
     {5, 4, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(3, 3, 3, 1, 1, NN_TANH), AVGPOOL(2), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"upsample 2 between convs (conv autoencoder decoder)",
     {3, 3, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(2, 3, 3, 1, 1, NN_TANH), {S_UPSAMPLE, 2, 0, 0, 0, 0, NN_LINEAR, 0.0f}, CONV(2, 3, 3, 1, 1, NN_SIGMOID),
      FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"avgpool 3 (floor)",
     {7, 8, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(2, 3, 3, 1, 1, NN_LINEAR), AVGPOOL(3), FLATTEN, DENSE(2, NN_LINEAR), END}},
    /* global average pooling: its dx feeds the conv's weight gradient */
    {"conv, global avgpool, dense",
     {5, 4, 2, 3, NN_LOSS_MSE, G_NONE, 0},
     {CONV(3, 3, 3, 1, 1, NN_TANH), GAP, DENSE(2, NN_LINEAR), END}},
    {"1x1 conv, conv, global avgpool, dense (17 channels: vector tails)",
     {4, 5, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(2, 1, 1, 1, 0, NN_LINEAR), CONV(17, 3, 3, 1, 0, NN_TANH), GAP, DENSE(3, NN_LINEAR), END}},
    {"conv, global avgpool of a 1x1 image, dense",
     {3, 3, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(4, 3, 3, 1, 0, NN_TANH), GAP, DENSE(2, NN_LINEAR), END}},
    {"conv, global avgpool, dense, sparse categorical CE",
     {6, 6, 1, 3, NN_LOSS_SPARSE_CATEGORICAL_CE, G_NONE, 0},
     {CONV(5, 3, 3, 2, 1, NN_SIGMOID), GAP, DENSE(3, NN_SOFTMAX), END}},
    /* batch norm (training mode) */
    {"batchnorm after dense",
     {4, 0, 0, 6, NN_LOSS_MSE, G_NONE, 0},
     {DENSE(5, NN_LINEAR), BN, ACT(NN_TANH), DENSE(3, NN_LINEAR), END}},
    {"batchnorm after dense, then dense",
     {4, 0, 0, 5, NN_LOSS_MSE, G_NONE, 0},
     {DENSE(4, NN_TANH), BN, DENSE(2, NN_LINEAR), END}},
    {"batchnorm after conv",
     {4, 4, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(3, 3, 3, 1, 1, NN_LINEAR), BN, ACT(NN_TANH), FLATTEN, DENSE(2, NN_LINEAR), END}},
    /* normalization (adapted: mean and variance not 0 and 1); a parameter
     * layer before it checks its dx */
    {"normalization on a vector input, then dense",
     {5, 0, 0, 4, NN_LOSS_MSE, G_NONE, 0},
     {NORM, DENSE(3, NN_TANH), DENSE(2, NN_LINEAR), END}},
    {"dense, normalization, dense",
     {4, 0, 0, 5, NN_LOSS_MSE, G_NONE, 0},
     {DENSE(5, NN_TANH), NORM, DENSE(3, NN_LINEAR), END}},
    {"normalization on an image input, then flatten, dense",
     {3, 4, 3, 2, NN_LOSS_MSE, G_NONE, 0},
     {NORM, FLATTEN, DENSE(3, NN_LINEAR), END}},
    {"normalization on an image input, then conv",
     {4, 4, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {NORM, CONV(3, 3, 3, 1, 1, NN_TANH), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"conv, normalization over channels, flatten, dense",
     {4, 4, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(3, 3, 3, 1, 1, NN_LINEAR), NORM, FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"dense, normalization, tanh activation, dense",
     {4, 0, 0, 5, NN_LOSS_MSE, G_NONE, 0},
     {DENSE(6, NN_LINEAR), NORM, ACT(NN_TANH), DENSE(3, NN_LINEAR), END}},
    {"conv, normalization, sigmoid activation, global avgpool, dense",
     {4, 4, 2, 3, NN_LOSS_MSE, G_NONE, 0},
     {CONV(5, 3, 3, 1, 1, NN_LINEAR), NORM, ACT(NN_SIGMOID), GAP, DENSE(2, NN_LINEAR), END}},
    {"dense, normalization, softmax activation layer, dense",
     {5, 0, 0, 4, NN_LOSS_MSE, G_NONE, 0},
     {DENSE(5, NN_LINEAR), NORM, ACT(NN_SOFTMAX), DENSE(2, NN_LINEAR), END}},
    /* dropout with a fixed mask (RNG re-seeded before every forward) */
    {"dropout 0.3 (fixed mask)",
     {4, 0, 0, 4, NN_LOSS_MSE, G_NONE, 0},
     {DENSE(6, NN_TANH), DROPOUT(0.3f), DENSE(3, NN_LINEAR), END}},
    {"dropout 0.5 on an image",
     {4, 4, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(3, 3, 3, 1, 1, NN_TANH), DROPOUT(0.5f), FLATTEN, DENSE(2, NN_LINEAR), END}},
    {"dropout 0 (identity)",
     {4, 0, 0, 4, NN_LOSS_MSE, G_NONE, 0},
     {DENSE(5, NN_TANH), DROPOUT(0.0f), DENSE(2, NN_LINEAR), END}},
    /* losses */
    {"binary CE (sigmoid, fused)",
     {4, 0, 0, 4, NN_LOSS_BINARY_CE, G_NONE, 0},
     {DENSE(4, NN_TANH), DENSE(2, NN_SIGMOID), END}},
    {"binary CE from logits",
     {4, 0, 0, 4, NN_LOSS_BINARY_CE_FROM_LOGITS, G_NONE, 0},
     {DENSE(4, NN_TANH), DENSE(1, NN_LINEAR), END}},
    {"categorical CE (softmax, fused)",
     {4, 0, 0, 4, NN_LOSS_CATEGORICAL_CE, G_NONE, 0},
     {DENSE(4, NN_TANH), DENSE(3, NN_SOFTMAX), END}},
    {"categorical CE, soft targets (sum != 1)",
     {4, 0, 0, 4, NN_LOSS_CATEGORICAL_CE, G_NONE, 1},
     {DENSE(4, NN_TANH), DENSE(3, NN_SOFTMAX), END}},
    {"categorical CE from logits",
     {4, 0, 0, 4, NN_LOSS_CATEGORICAL_CE_FROM_LOGITS, G_NONE, 0},
     {DENSE(4, NN_TANH), DENSE(3, NN_LINEAR), END}},
    {"sparse categorical CE (softmax, fused)",
     {4, 0, 0, 4, NN_LOSS_SPARSE_CATEGORICAL_CE, G_NONE, 0},
     {DENSE(4, NN_TANH), DENSE(3, NN_SOFTMAX), END}},
    {"sparse categorical CE from logits",
     {4, 0, 0, 4, NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS, G_NONE, 0},
     {DENSE(4, NN_TANH), DENSE(3, NN_LINEAR), END}},
    {"MSE on an image output (conv autoencoder)",
     {5, 4, 2, 2, NN_LOSS_MSE, G_NONE, 0},
     {CONV(2, 1, 1, 1, 0, NN_LINEAR), CONV(3, 3, 3, 1, 1, NN_TANH), END}},
    {"binary CE on an image output (sigmoid, fused)",
     {4, 5, 2, 2, NN_LOSS_BINARY_CE, G_NONE, 0},
     {CONV(2, 1, 1, 1, 0, NN_TANH), CONV(2, 3, 3, 1, 1, NN_SIGMOID), END}},
    {"sparse categorical CE after conv/pool/flatten",
     {6, 6, 1, 3, NN_LOSS_SPARSE_CATEGORICAL_CE, G_NONE, 0},
     {CONV(2, 3, 3, 1, 0, NN_TANH), AVGPOOL(2), FLATTEN, DENSE(3, NN_SOFTMAX), END}},
};

#define FD_H 1e-2f
#define MAX_CHECK 40 /* parameters checked per block (evenly spaced) */

static nn_status build(nn_model *m, const gcase *gc) {
    const lspec *s;
    for (s = gc->L; s->kind != S_END; s++) {
        switch (s->kind) {
        case S_DENSE: nn_dense(m, s->units, s->act); break;
        case S_CONV: nn_conv2d_ex(m, s->units, s->kh, s->kw, s->stride, s->same, s->act); break;
        case S_MAXPOOL: nn_maxpool2d_ex(m, s->units, s->same); break;
        case S_AVGPOOL: nn_avgpool2d_ex(m, s->units, s->same); break;
        case S_NOBIAS: nn_use_bias(m, 0); break;
        case S_UPSAMPLE: nn_upsample2d(m, s->units); break;
        case S_FLATTEN: nn_flatten(m); break;
        case S_ACT: nn_activation_layer(m, s->act); break;
        case S_DROPOUT: nn_dropout(m, s->f); break;
        case S_BN: nn_batchnorm(m); break;
        case S_SLOPE: nn_leaky_relu_slope(m, s->f); break;
        case S_GAP: nn_global_avgpool2d(m); break;
        case S_NORM: nn_normalization(m); break;
        }
    }
    return nn_model_status(m);
}

/* Adapt every normalization layer of the model on NA samples whose
 * feature f is off + sc * U(-1,1), off and sc depending on f (the layers
 * before it see them in inference mode).  Returns 1 on success. */
static int adapt_norms(nn_model *m, const gcase *gc, size_t in_dim, unsigned seed) {
    enum { NA = 24 };
    nn_shape in = gc->k.w ? nn_shape3(gc->k.h, gc->k.w, gc->k.c) : nn_shape1(gc->k.h);
    size_t F = gc->k.w ? (size_t)gc->k.c : in_dim, i;
    const lspec *s;
    int layer = 0, ok = 1;
    float *xa = NULL;
    nn_dataset ds;
    nn_rng r;
    for (s = gc->L; s->kind != S_END; s++) {
        nn_status st;
        if (s->kind == S_SLOPE || s->kind == S_NOBIAS) continue;
        if (s->kind == S_NORM) {
            if (!xa) {
                xa = (float *)malloc(sizeof(float) * NA * in_dim);
                nn_rng_seed(&r, seed);
                for (i = 0; i < NA * in_dim; i++) {
                    size_t f = i % F;
                    float off = 0.4f * (float)(f % 3) - 0.5f, sc = 0.6f + 0.3f * (float)(f % 4);
                    xa[i] = off + sc * (2.0f * nn_rng_uniform(&r) - 1.0f);
                }
                if (!TT_CHECK(nn_dataset_from_arrays(&ds, NA, in, xa, 0, NULL) == NN_OK, "adapt dataset")) {
                    free(xa);
                    return 0;
                }
            }
            st = nn_normalization_adapt(m, layer, &ds);
            ok &= TT_CHECK(st == NN_OK, "nn_normalization_adapt(layer %d): %s (%s)", layer, nn_strerror(st),
                           nn_model_error(m));
        }
        layer++;
    }
    if (xa) {
        nn_dataset_free(&ds);
        free(xa);
    }
    return ok;
}

static int n_layers(const gcase *gc) {
    int n = 0;
    const lspec *s;
    for (s = gc->L; s->kind != S_END; s++) n += s->kind != S_SLOPE && s->kind != S_NOBIAS;
    return n;
}

/* First layer (dense or conv) outputs in double, before the activation. */
static int first_preact(nn_model *m, const gcase *gc, const float *x, double *z, int *rows, int *cols,
                        nn_conv_geom *gout) {
    const lspec *s = &gc->L[0];
    size_t nw, nb;
    const float *W = nn_layer_weights(m, 0, &nw), *b = nn_layer_bias(m, 0, &nb);
    int B = gc->k.B, r, j;
    if (s->kind == S_DENSE) {
        int in = gc->k.h, U = s->units, i;
        for (r = 0; r < B; r++)
            for (j = 0; j < U; j++) {
                double acc = b[j];
                for (i = 0; i < in; i++) acc += (double)x[r * in + i] * W[j * in + i]; /* W (U, in) */
                z[r * U + j] = acc;
            }
        *rows = B;
        *cols = U;
        return 1;
    }
    if (s->kind == S_CONV) {
        nn_conv_geom g;
        int F = s->units, oy, ox, ky, kx, c;
        if (nn_conv_geom_init(&g, B, gc->k.h, gc->k.w, gc->k.c, s->kh, s->kw, s->stride, s->same) != NN_OK) return 0;
        for (r = 0; r < B; r++)
            for (oy = 0; oy < g.oh; oy++)
                for (ox = 0; ox < g.ow; ox++)
                    for (j = 0; j < F; j++) {
                        double acc = b[j];
                        for (ky = 0; ky < s->kh; ky++)
                            for (kx = 0; kx < s->kw; kx++) {
                                int iy = oy * s->stride - g.pt + ky, ix = ox * s->stride - g.pl + kx;
                                if (iy < 0 || iy >= gc->k.h || ix < 0 || ix >= gc->k.w) continue;
                                for (c = 0; c < gc->k.c; c++)
                                    acc += (double)x[(((size_t)r * gc->k.h + iy) * gc->k.w + ix) * gc->k.c + c] *
                                           W[(((size_t)ky * s->kw + kx) * gc->k.c + c) * F + j];
                            }
                        z[(((size_t)r * g.oh + oy) * g.ow + ox) * F + j] = acc;
                    }
        *rows = B * g.oh * g.ow;
        *cols = F;
        if (gout) *gout = g;
        return 1;
    }
    return 0;
}

/* Shift each first-layer bias so that every pre-activation is >= margin
 * away from the ReLU kink.  Returns 1 on success. */
static int guard_relu(nn_model *m, const gcase *gc, const float *x, double *z, double margin) {
    int rows, cols, r, j, k;
    float *b = nn_layer_bias(m, 0, NULL);
    if (!first_preact(m, gc, x, z, &rows, &cols, NULL)) return 0;
    for (j = 0; j < cols; j++) {
        int found = 0;
        for (k = 0; k < 41 && !found; k++) {
            double shift = (k & 1 ? 1 : -1) * 0.05 * ((k + 1) / 2), mn = 1e30;
            for (r = 0; r < rows; r++) {
                double v = fabs(z[(size_t)r * cols + j] + shift);
                if (v < mn) mn = v;
            }
            if (mn >= margin) {
                b[j] += (float)shift;
                found = 1;
            }
        }
        if (!found) return 0;
    }
    /* verify with the stored (float) bias */
    first_preact(m, gc, x, z, &rows, &cols, NULL);
    for (r = 0; r < rows * cols; r++)
        if (fabs(z[r]) < 0.9 * margin) return 0;
    return 1;
}

/* Every max-pool window of the first conv's output (after an optional
 * monotone activation layer) has a unique maximum by at least margin; with
 * a ReLU, that maximum is also at least margin away from 0. */
static int guard_pool(nn_model *m, const gcase *gc, const float *x, double *z, double margin) {
    int rows, cols, p, pad, b, i, j, dy, dx, c, li = 1;
    nn_conv_geom g;
    nn_activation a = gc->L[0].act;
    if (!first_preact(m, gc, x, z, &rows, &cols, &g)) return 0;
    if (gc->L[1].kind == S_ACT) {
        a = gc->L[1].act;
        li = 2;
    }
    if (gc->L[li].kind != S_MAXPOOL) return 0;
    p = gc->L[li].units;
    pad = gc->L[li].same;
    for (i = 0; i < rows * cols; i++) {
        if (a == NN_TANH)
            z[i] = tanh(z[i]);
        else if (a == NN_SIGMOID)
            z[i] = 1.0 / (1.0 + exp(-z[i]));
        else if (a != NN_LINEAR && a != NN_RELU)
            return 0;
    }
    for (b = 0; b < gc->k.B; b++)
        for (i = 0; i < (g.oh + 2 * pad) / p; i++)
            for (j = 0; j < (g.ow + 2 * pad) / p; j++)
                for (c = 0; c < cols; c++) {
                    double t1 = -1e30, t2 = -1e30;
                    for (dy = 0; dy < p; dy++)
                        for (dx = 0; dx < p; dx++) {
                            int yy = i * p + dy - pad, xx = j * p + dx - pad;
                            double v;
                            if (yy < 0 || yy >= g.oh || xx < 0 || xx >= g.ow) continue; /* padding */
                            v = z[(((size_t)b * g.oh + yy) * g.ow + xx) * cols + c];
                            if (v > t1) {
                                t2 = t1;
                                t1 = v;
                            } else if (v > t2)
                                t2 = v;
                        }
                    if (t1 - t2 < margin) return 0;
                    /* ReLU (on the pre-activations): the max also keeps clear of the kink */
                    if (a == NN_RELU && fabs(t1) < margin) return 0;
                }
    return 1;
}

static float eval_loss(nn_model *m, const float *x, int B, const float *y, nn_status *st) {
    float L = NAN;
    nn_model_seed(m, 777); /* the same dropout mask every time */
    *st = nn_forward(m, x, B, 1);
    if (*st == NN_OK) *st = nn_backward(m, y, &L, NULL);
    return L;
}

/* The loss recomputed in double from nn_output (probabilities for a fused
 * or _FROM_LOGITS head, the last layer's output for MSE). */
static int is_ce_loss(nn_loss l) {
    return l == NN_LOSS_CATEGORICAL_CE || l == NN_LOSS_CATEGORICAL_CE_FROM_LOGITS || l == NN_LOSS_SPARSE_CATEGORICAL_CE ||
           l == NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS;
}
static double ref_loss(const gcase *gc, const float *out, const float *y, int K) {
    int B = gc->k.B, r, j;
    double s = 0;
    for (r = 0; r < B; r++)
        for (j = 0; j < K; j++) {
            double p = out[r * K + j];
            switch (gc->k.loss) {
            case NN_LOSS_MSE: s += (p - y[r * K + j]) * (p - y[r * K + j]) / K; break;
            case NN_LOSS_BINARY_CE:
            case NN_LOSS_BINARY_CE_FROM_LOGITS:
                s -= (y[r * K + j] * log(p) + (1 - y[r * K + j]) * log(1 - p)) / K;
                break;
            case NN_LOSS_CATEGORICAL_CE:
            case NN_LOSS_CATEGORICAL_CE_FROM_LOGITS: s -= y[r * K + j] * log(p); break;
            case NN_LOSS_SPARSE_CATEGORICAL_CE:
            case NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS:
                if ((int)y[r] == j) s -= log(p);
                break;
            default: break;
            }
        }
    return s / B;
}

static void run_case(const gcase *gc) {
    nn_shape in = gc->k.w ? nn_shape3(gc->k.h, gc->k.w, gc->k.c) : nn_shape1(gc->k.h);
    size_t in_dim = gc->k.w ? (size_t)gc->k.h * gc->k.w * gc->k.c : (size_t)gc->k.h;
    int B = gc->k.B, nl = n_layers(gc), K, ydim, seed, ok = 0, i;
    int sparse = gc->k.loss == NN_LOSS_SPARSE_CATEGORICAL_CE || gc->k.loss == NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS;
    nn_model *m = NULL;
    float *x = NULL, *y = NULL, *gsave = NULL, *an = NULL, *fd = NULL;
    double *z = NULL, gmax = 0;
    nn_status st;
    float L0;
    size_t np, j;
    nn_rng r;
    tt_ctx("grad[%s] %s", nn_backend_name(nn_get_backend()), gc->name);
    x = (float *)malloc(sizeof(float) * B * in_dim);
    z = (double *)malloc(sizeof(double) * B * 512);
    /* draw data (and re-draw when a guard cannot be satisfied) */
    for (seed = 1; seed <= 60 && !ok; seed++) {
        nn_model_free(m);
        free(y);
        m = nn_model_new(in);
        if (!m) {
            TT_CHECK(0, "nn_model_new returned NULL");
            goto done;
        }
        nn_model_seed(m, (uint64_t)seed);
        if ((st = build(m, gc)) != NN_OK || (st = nn_compile(m, nn_sgd(0.1f), gc->k.loss)) != NN_OK) {
            TT_CHECK(0, "building the model: %s (%s)", nn_strerror(st), nn_model_error(m));
            goto done;
        }
        { /* outputs per sample: MSE and binary CE also take images (a conv autoencoder's output) */
            nn_shape os = nn_model_output_shape(m);
            int d;
            K = os.ndim >= 1 ? 1 : 0;
            for (d = 0; d < os.ndim; d++) K *= os.d[d];
            if (os.ndim > 1 && is_ce_loss(gc->k.loss)) K = 0;
        }
        if (nn_model_num_layers(m) != nl || K <= 0) {
            TT_CHECK(0, "model has %d layers (expected %d) and %d outputs", nn_model_num_layers(m), nl, K);
            goto done;
        }
        ydim = sparse ? 1 : K;
        y = (float *)malloc(sizeof(float) * B * ydim);
        nn_rng_seed(&r, 1000u + (unsigned)seed);
        tt_fill_uniform(&r, x, B * in_dim, -1.0f, 1.0f);
        for (i = 0; i < B; i++) {
            int c = (int)nn_rng_below(&r, (uint32_t)K), k;
            if (sparse)
                y[i] = (float)c;
            else if (gc->k.loss == NN_LOSS_MSE)
                for (k = 0; k < K; k++) y[i * K + k] = 0.5f * nn_rng_normal(&r);
            else if (gc->k.loss == NN_LOSS_BINARY_CE || gc->k.loss == NN_LOSS_BINARY_CE_FROM_LOGITS)
                for (k = 0; k < K; k++) y[i * K + k] = (float)nn_rng_below(&r, 2);
            else if (gc->k.soft) /* soft targets, not summing to 1: dL/dz = p sum(t) - t */
                for (k = 0; k < K; k++) y[i * K + k] = 0.1f + 0.4f * nn_rng_uniform(&r);
            else
                for (k = 0; k < K; k++) y[i * K + k] = k == c ? 1.0f : 0.0f;
        }
        /* random biases and batch-norm gamma/beta, so every gradient is generic */
        for (i = 0; i < nl; i++) {
            size_t nw, nb, k;
            float *w = nn_layer_weights(m, i, &nw), *b = nn_layer_bias(m, i, &nb);
            for (k = 0; k < nb; k++) b[k] = 0.2f * nn_rng_normal(&r);
            if (w && nw == nb) {
                /* batch norm (no dense/conv of these cases has nw == nb) */
                for (k = 0; k < nw; k++) w[k] = 1.0f + 0.2f * nn_rng_normal(&r);
            }
        }
        if (!adapt_norms(m, gc, in_dim, 2000u + (unsigned)seed)) goto done;
        if (gc->k.guard == G_RELU)
            ok = guard_relu(m, gc, x, z, 4.0 * FD_H);
        else if (gc->k.guard == G_POOL)
            ok = guard_pool(m, gc, x, z, 3.0 * FD_H);
        else
            ok = 1;
    }
    if (!TT_CHECK(ok, "could not draw data that keeps ReLU kinks / max-pool ties away")) goto done;

    /* analytic gradients and the loss */
    L0 = eval_loss(m, x, B, y, &st);
    if (!TT_CHECK(st == NN_OK, "forward/backward: %s (%s)", nn_strerror(st), nn_model_error(m))) goto done;
    {
        double ref = ref_loss(gc, nn_output(m), y, K);
        TT_CHECK(fabs(L0 - ref) <= 1e-4 * fabs(ref) + 1e-6, "loss %.9g, recomputed from nn_output %.9g", (double)L0,
                 ref);
    }
    {
        float *gb = nn_model_grads(m, &np);
        gsave = (float *)malloc(sizeof(float) * (np + 1));
        memcpy(gsave, gb, np * sizeof(float));
        for (j = 0; j < np; j++)
            if (fabs(gsave[j]) > gmax) gmax = fabs(gsave[j]);
    }
    TT_CHECK(gmax > 1e-4 && gmax < 1e3, "largest gradient %g: the check would be meaningless", gmax);
    an = (float *)malloc(sizeof(float) * MAX_CHECK);
    fd = (float *)malloc(sizeof(float) * MAX_CHECK);
    for (i = 0; i < nl; i++) {
        int bias;
        for (bias = 0; bias <= 1; bias++) {
            size_t cnt, k, nchk;
            float *p = bias ? nn_layer_bias(m, i, &cnt) : nn_layer_weights(m, i, &cnt);
            float *gp = bias ? nn_layer_bias_grads(m, i, NULL) : nn_layer_weight_grads(m, i, NULL);
            size_t off;
            char what[96];
            if (!p) continue;
            if (!TT_CHECK(gp != NULL, "layer %d has %s but no gradient buffer", i, bias ? "biases" : "weights"))
                continue;
            off = (size_t)(gp - nn_model_grads(m, NULL));
            nchk = cnt < MAX_CHECK ? cnt : MAX_CHECK;
            for (k = 0; k < nchk; k++) {
                size_t idx = nchk == cnt ? k : k * cnt / nchk;
                float w0 = p[idx], lp, lm;
                nn_status s1, s2;
                p[idx] = w0 + FD_H;
                lp = eval_loss(m, x, B, y, &s1);
                p[idx] = w0 - FD_H;
                lm = eval_loss(m, x, B, y, &s2);
                p[idx] = w0;
                if (s1 != NN_OK || s2 != NN_OK) {
                    TT_CHECK(0, "forward/backward failed during the finite differences: %s", nn_model_error(m));
                    goto done;
                }
                fd[k] = (float)(((double)lp - (double)lm) / (2.0 * FD_H));
                an[k] = gsave[off + idx];
            }
            snprintf(what, sizeof what, "layer %d %s: analytic gradient vs central differences (%lu of %lu)", i,
                     bias ? "bias" : "weights", (unsigned long)nchk, (unsigned long)cnt);
            TT_CMP_ARR(what, an, fd, NULL, nchk, 1e-2, 2e-3 * gmax + 2e-5);
        }
    }
done:
    nn_model_free(m);
    free(x);
    free(y);
    free(z);
    free(gsave);
    free(an);
    free(fd);
}

/* Dropout exactly: Dense(identity) -> Dropout(p), MSE.  The forward output
 * reveals the mask (0 or x / (1-p)); the dense weight gradient must be
 * x^T (dy * mask / (1-p)) with dy = 2 (out - t) / n. */
static void dropout_exact(void) {
    enum { B = 5, D = 6 };
    const float rate = 0.4f;
    float x[B * D], t[B * D], out[B * D];
    const float keep = 1.0f - rate, inv = 1.0f / keep;
    double ew[D * D], eb[D];
    nn_model *m;
    nn_rng r;
    float *W, *b, *gW, *gb, L;
    int i, j, k, dropped = 0, bad = 0;
    nn_status st;
    tt_ctx("grad[%s] dropout exact", nn_backend_name(nn_get_backend()));
    m = nn_model_new(nn_shape1(D));
    nn_dense(m, D, NN_LINEAR);
    nn_dropout(m, rate);
    st = nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE);
    if (!TT_CHECK(st == NN_OK, "compile: %s", nn_model_error(m))) {
        nn_model_free(m);
        return;
    }
    W = nn_layer_weights(m, 0, NULL);
    b = nn_layer_bias(m, 0, NULL);
    for (i = 0; i < D; i++)
        for (j = 0; j < D; j++) W[i * D + j] = i == j ? 1.0f : 0.0f;
    for (j = 0; j < D; j++) b[j] = 0.0f;
    nn_rng_seed(&r, 99);
    for (i = 0; i < B * D; i++) {
        x[i] = (nn_rng_uniform(&r) < 0.5f ? -1.0f : 1.0f) * (0.5f + nn_rng_uniform(&r));
        t[i] = nn_rng_normal(&r);
    }
    nn_model_seed(m, 5);
    st = nn_forward(m, x, B, 1);
    if (st == NN_OK) memcpy(out, nn_output(m), sizeof out);
    if (st == NN_OK) st = nn_backward(m, t, &L, NULL);
    if (!TT_CHECK(st == NN_OK, "forward/backward: %s", nn_model_error(m))) {
        nn_model_free(m);
        return;
    }
    for (i = 0; i < B * D; i++) {
        if (out[i] == 0.0f)
            dropped++;
        else if (fabs((double)out[i] - (double)x[i] * inv) > 1e-6 * fabs((double)x[i] * inv))
            bad++;
    }
    TT_CHECK(bad == 0, "training output: %d of %d elements are neither 0 nor x/(1-p)", bad, B * D);
    TT_CHECK(dropped >= 3 && dropped <= 22, "dropout %.1f dropped %d of %d elements", (double)rate, dropped, B * D);
    /* expected gradients from the observed mask */
    for (i = 0; i < D * D; i++) ew[i] = 0;
    for (j = 0; j < D; j++) eb[j] = 0;
    for (k = 0; k < B; k++)
        for (j = 0; j < D; j++) {
            double dy = 2.0 * ((double)out[k * D + j] - t[k * D + j]) / (B * D);
            double dxd = out[k * D + j] != 0.0f ? dy * inv : 0.0;
            eb[j] += dxd;
            for (i = 0; i < D; i++) ew[j * D + i] += (double)x[k * D + i] * dxd; /* dW (units, in) */
        }
    gW = nn_layer_weight_grads(m, 0, NULL);
    gb = nn_layer_bias_grads(m, 0, NULL);
    {
        float efw[D * D], efb[D];
        for (i = 0; i < D * D; i++) efw[i] = (float)ew[i];
        for (j = 0; j < D; j++) efb[j] = (float)eb[j];
        TT_CMP_ARR("dW == x^T (dy * mask / (1-p))", gW, efw, NULL, D * D, 1e-5, 1e-7);
        TT_CMP_ARR("db == colsum(dy * mask / (1-p))", gb, efb, NULL, D, 1e-5, 1e-7);
    }
    /* inference: identity */
    st = nn_predict(m, x, B, out);
    TT_CHECK(st == NN_OK, "predict: %s", nn_model_error(m));
    TT_SAME_ARR("dropout at inference is the identity", out, x, B * D);
    /* the same seed gives the same mask; another seed another mask */
    {
        float o1[B * D], o2[B * D];
        nn_model_seed(m, 5);
        nn_forward(m, x, B, 1);
        memcpy(o1, nn_output(m), sizeof o1);
        nn_model_seed(m, 6);
        nn_forward(m, x, B, 1);
        memcpy(o2, nn_output(m), sizeof o2);
        nn_model_seed(m, 5);
        nn_forward(m, x, B, 1);
        TT_SAME_ARR("same model seed -> same dropout mask", nn_output(m), o1, B * D);
        TT_CHECK(memcmp(o1, o2, sizeof o1) != 0, "another seed gave the same mask");
    }
    nn_model_free(m);
}

/* Batch norm: training output normalises with the batch statistics, the
 * running statistics move by momentum 0.1 (unbiased variance, as PyTorch),
 * inference uses them. */
static void batchnorm_stats(void) {
    enum { B = 4, C = 3 };
    float x[B * C], out[B * C], exp_out[B * C], x2[C * 2];
    double mean[C], var[C], rm[C], rv[C];
    nn_model *m;
    nn_rng r;
    int i, c;
    nn_status st;
    tt_ctx("grad[%s] batchnorm statistics", nn_backend_name(nn_get_backend()));
    m = nn_model_new(nn_shape1(C));
    nn_batchnorm(m);
    st = nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE);
    if (!TT_CHECK(st == NN_OK, "compile: %s", nn_model_error(m))) {
        nn_model_free(m);
        return;
    }
    nn_rng_seed(&r, 3);
    tt_fill_normal(&r, x, B * C, 2.0f);
    for (i = 0; i < B * C; i++) x[i] += (float)(i % C);
    tt_fill_normal(&r, x2, 2 * C, 1.0f);
    for (c = 0; c < C; c++) {
        double s = 0, s2 = 0;
        for (i = 0; i < B; i++) s += x[i * C + c];
        mean[c] = s / B;
        for (i = 0; i < B; i++) s2 += (x[i * C + c] - mean[c]) * (x[i * C + c] - mean[c]);
        var[c] = s2 / B;
        rm[c] = 0.1 * mean[c];
        rv[c] = 0.9 + 0.1 * s2 / (B - 1);
        for (i = 0; i < B; i++) exp_out[i * C + c] = (float)((x[i * C + c] - mean[c]) / sqrt(var[c] + 1e-5));
    }
    st = nn_forward(m, x, B, 1);
    TT_CHECK(st == NN_OK, "forward: %s", nn_model_error(m));
    TT_CMP_ARR("batch norm training output", nn_output(m), exp_out, NULL, B * C, 1e-5, 1e-6);
    st = nn_predict(m, x2, 2, out);
    TT_CHECK(st == NN_OK, "predict: %s", nn_model_error(m));
    for (i = 0; i < 2 * C; i++) exp_out[i] = (float)((x2[i] - rm[i % C]) / sqrt(rv[i % C] + 1e-5));
    TT_CMP_ARR("batch norm inference uses running mean/var after one step", out, exp_out, NULL, 2 * C, 1e-5, 1e-6);
    nn_model_free(m);
}

/* the best SIMD backend: what AUTO picks, the last available of NN_BACKEND_LIST */
static nn_backend best_simd(void) { return tt_best_backend(); }

void test_grad(void) {
    nn_backend bk[2];
    int bi;
    size_t i;
    bk[0] = NN_BACKEND_SCALAR;
    bk[1] = best_simd();
    for (bi = 0; bi < 2; bi++) {
        if (bi == 1 && bk[1] == NN_BACKEND_SCALAR) {
            tt_skip("grad: no SIMD backend available in this build / on this CPU");
            break;
        }
        tt_set_backend(bk[bi]);
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
        dropout_exact();
        batchnorm_stats();
    }
    (void)nn_set_backend(NN_BACKEND_AUTO);
}
