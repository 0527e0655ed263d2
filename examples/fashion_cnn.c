/* fashion_cnn.c - the CNN of the Keras/PyTorch tutorials on Fashion-MNIST.
 *
 *   cc -O2 -o fashion_cnn examples/fashion_cnn.c -lm
 *   ./fashion_cnn --epochs 5
 *
 * Conv(32,3x3,ReLU) MaxPool2 Conv(64,3x3,ReLU) MaxPool2 Flatten Dense(64,ReLU)
 * Dense(10,softmax); sparse categorical cross-entropy, Adam 1e-3, batch 32.
 * --head gap replaces Flatten by global average pooling (each of the 64
 * feature maps of the last conv averaged to one value: 4.2k parameters in
 * the dense head instead of 102k, as in GoogLeNet / ResNet heads):
 *   ./fashion_cnn --head gap --epochs 5
 * Data: `make data` first (or --data DIR).  Flags: --data --epochs --batch
 * --seed --limit --backend --lr --save FILE (writes the trained model)
 * --head flatten|gap --threads N (0: every core; default NN_THREADS or
 * every core) --saliency FILE.png (after training: which pixels decided the
 * class of the first 8 test images, from nn_input_gradient -- the gradient
 * of the loss for the predicted class with respect to each pixel; top row
 * the images, bottom row the pixels that mattered in red).
 * --int8: after training, the model quantized to int8 (nn_quantize, 1000
 * training images to calibrate); the RESULT line gains int8_acc= and
 * int8_infer_s= (the 10k test images at batch 32, timed like infer_s), and
 * b1_ms= / int8_b1_ms= (ms per image predicting 1000 test images one at a time).
 * Ends with "RESULT test_acc=... train_s=... epochs=... infer_s=... threads=N":
 * train_s is the training loop only; infer_s the time to predict the 10k
 * test images at batch 32. */
#define NN_IMPLEMENTATION
#include "../nn.h"
#include "common/args.h"
#include "common/fashion.h"
#include "common/png.h"

/* A saliency picture: for each of the first 8 test images, |d loss / d pixel|
 * for the class the model predicts, scaled to the image's largest value. */
static int saliency_png(nn_model *m, const nn_dataset *test, const float *probs, const char *path) {
    enum { K = 8, W = 28, GAP = 2 };
    float x[K * W * W], y[K], dx[K * W * W];
    unsigned char *pix;
    int i, p, c, pw = K * (W + GAP), ph = 2 * W + GAP, rc;
    if (test->shape.ndim != 3 || test->shape.d[0] != W || test->shape.d[1] != W || test->shape.d[2] != 1)
        return -1; /* drawn for 28x28 gray images */
    for (i = 0; i < K && i < test->n; i++) {
        int best = 0;
        nn_dataset_get_x(test, i, x + i * W * W);
        for (c = 1; c < 10; c++)
            if (probs[i * 10 + c] > probs[i * 10 + best]) best = c;
        y[i] = (float)best;
    }
    if (i < K || nn_input_gradient(m, x, y, K, dx) != NN_OK) return -1;
    pix = (unsigned char *)calloc((size_t)pw * ph * 3, 1);
    if (!pix) return -1;
    for (i = 0; i < K; i++) {
        float mx = 1e-30f;
        for (p = 0; p < W * W; p++) mx = fabsf(dx[i * W * W + p]) > mx ? fabsf(dx[i * W * W + p]) : mx;
        for (p = 0; p < W * W; p++) {
            int r = p / W, col = i * (W + GAP) + p % W;
            unsigned char g = (unsigned char)(255.0f * x[i * W * W + p]);
            unsigned char s = (unsigned char)(255.0f * sqrtf(fabsf(dx[i * W * W + p]) / mx));
            unsigned char *top = pix + ((size_t)r * pw + col) * 3,
                          *bot = pix + ((size_t)(r + W + GAP) * pw + col) * 3;
            top[0] = top[1] = top[2] = g;
            bot[0] = (unsigned char)(g / 3 > s ? g / 3 : s); /* the image dimmed, saliency in red */
            bot[1] = bot[2] = (unsigned char)(g / 3);
        }
    }
    rc = png_write_rgb(path, pw, ph, pix);
    free(pix);
    return rc;
}

int main(int argc, char **argv) {
    ex_args a;
    static const char *const own[] = {"--head", "--saliency", NULL};
    const char *head[2] = {"flatten", NULL};
    int gap, int8;
    nn_dataset train, test;
    nn_model *m;
    nn_fit_opts fo;
    float loss, acc, *probs, q_acc = 0, q_loss = 0;
    double t0, infer_s, q_infer_s = 0, b1 = 0, q_b1 = 0;
    memset(&a, 0, sizeof a);
    a.data = "data/fashion-mnist";
    a.epochs = 5;
    a.batch = 32;
    a.seed = 1;
    a.lr = 1e-3f;
    if (ex_take(&argc, argv, own, head)) return 2;
    int8 = ex_flag(&argc, argv, "--int8");
    gap = !strcmp(head[0], "gap");
    if (!gap && strcmp(head[0], "flatten")) {
        fprintf(stderr, "%s: --head must be flatten or gap, not '%s'\n", argv[0], head[0]);
        return 2;
    }
    if (ex_parse(argc, argv, &a,
                 "[--data DIR] [--epochs N] [--batch B] [--seed S] [--limit N] [--backend NAME] [--lr LR] "
                 "[--save FILE] [--head flatten|gap] [--threads N] [--saliency FILE.png] [--int8]") ||
        ex_backend(a.backend))
        return 2;
    if (ex_threads(argv[0], a.threads)) return 1;
    if (ex_load_fashion(a.data, a.limit, &train, &test)) return 1;

    m = nn_model_new(train.shape); /* (h, w, 1) of the images loaded */
    nn_model_seed(m, a.seed);
    nn_conv2d(m, 32, 3, NN_RELU);
    nn_maxpool2d(m, 2);
    nn_conv2d(m, 64, 3, NN_RELU);
    nn_maxpool2d(m, 2);
    if (gap) nn_global_avgpool2d(m); /* (5,5,64) -> (64) */
    else nn_flatten(m);              /* (5,5,64) -> (1600) */
    nn_dense(m, 64, NN_RELU);
    nn_dense(m, 10, NN_SOFTMAX);
    if (nn_compile(m, nn_adam(a.lr), NN_LOSS_SPARSE_CATEGORICAL_CE) != NN_OK) {
        fprintf(stderr, "compile: %s\n", nn_model_error(m));
        return 1;
    }
    fprintf(stderr, "backend %s on %s\n", nn_backend_name(nn_get_backend()), nn_cpu_description());
    fo = nn_fit_defaults();
    fo.epochs = a.epochs;
    fo.batch = a.batch;
    if (nn_fit(m, &train, &fo) != NN_OK) {
        fprintf(stderr, "fit: %s\n", nn_model_error(m));
        return 1;
    }
    nn_model_summary(m, stderr);
    /* batch 32 as in training: the arena is already that size (a bigger
     * evaluation batch would grow it, and peak memory with it) */
    if (nn_evaluate(m, &test, 32, &loss, &acc) != NN_OK) {
        fprintf(stderr, "evaluate: %s\n", nn_model_error(m));
        return 1;
    }
    /* inference: the 10k test images at batch 32 */
    probs = (float *)malloc(sizeof(float) * 10 * (size_t)test.n);
    if (!probs) return 1;
    t0 = nn_time_seconds();
    if (nn_predict_dataset(m, &test, 32, probs) != NN_OK) {
        fprintf(stderr, "predict: %s\n", nn_model_error(m));
        return 1;
    }
    infer_s = nn_time_seconds() - t0;
    if (head[1]) {
        if (saliency_png(m, &test, probs, head[1]))
            fprintf(stderr, "could not write the saliency picture %s: %s\n", head[1], nn_model_error(m));
        else fprintf(stderr, "wrote %s: the first 8 test images, and the pixels that decided their class\n", head[1]);
    }
    if (a.save) {
        nn_status s = nn_save(m, a.save, 1);
        if (s != NN_OK) fprintf(stderr, "could not save %s: %s\n", a.save, nn_strerror(s));
        else fprintf(stderr, "saved %s\n", a.save);
    }
    if (int8 && ex_int8(m, &train, &test, probs, &q_acc, &q_loss, &q_infer_s, &b1, &q_b1)) return 1;
    printf("RESULT test_acc=%.4f test_loss=%.4f train_s=%.2f epochs=%d infer_s=%.3f s_per_epoch=%.2f backend=%s head=%s threads=%d",
           acc, loss, fo.train_seconds, fo.epochs_run, infer_s, fo.train_seconds / (fo.epochs_run ? fo.epochs_run : 1),
           nn_backend_name(nn_get_backend()), gap ? "gap" : "flatten", nn_get_threads());
    if (int8) printf(" int8_acc=%.4f int8_infer_s=%.3f b1_ms=%.4f int8_b1_ms=%.4f", q_acc, q_infer_s, b1, q_b1);
    printf("\n");
    free(probs);
    nn_model_free(m);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    return 0;
}
