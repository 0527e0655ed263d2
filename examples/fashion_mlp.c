/* fashion_mlp.c - a 784-64-64-10 multilayer perceptron on Fashion-MNIST.
 *
 *   cc -O2 -o fashion_mlp examples/fashion_mlp.c -lm
 *   ./fashion_mlp --epochs 5
 *
 * ReLU hidden layers, softmax output with sparse categorical cross-entropy
 * (fused, stable), Adam 1e-3, batch 32.  Data: `make data` first (or
 * --data DIR).  Flags: --data --epochs --batch --seed --limit --backend --lr
 * --threads N (0: every core; default NN_THREADS or every core).
 * --int8: after training, the model quantized to int8 (1000 training images
 * calibrate it); RESULT gains int8_acc=, int8_infer_s=, b1_ms= and int8_b1_ms=.
 * Ends with "RESULT test_acc=... train_s=... epochs=... threads=N", where train_s is
 * the training loop only (no loading, no evaluation). */
#define NN_IMPLEMENTATION
#include "../nn.h"
#include "common/args.h"
#include "common/fashion.h"

int main(int argc, char **argv) {
    ex_args a;
    nn_dataset train, test;
    nn_model *m;
    nn_fit_opts fo;
    float loss, acc, *probs, q_acc = 0, q_loss = 0;
    double t0, infer_s, q_infer_s = 0, b1 = 0, q_b1 = 0;
    int int8 = ex_flag(&argc, argv, "--int8");
    memset(&a, 0, sizeof a);
    a.data = "data/fashion-mnist";
    a.epochs = 5;
    a.batch = 32;
    a.seed = 1;
    a.lr = 1e-3f;
    if (ex_parse(argc, argv, &a, "[--data DIR] [--epochs N] [--batch B] [--seed S] [--limit N] [--backend NAME] [--lr LR] "
                 "[--threads N] [--int8]") ||
        ex_backend(a.backend))
        return 2;
    if (ex_threads(argv[0], a.threads)) return 1;
    if (ex_load_fashion(a.data, a.limit, &train, &test)) return 1;

    m = nn_model_new(nn_shape1((int)train.x_dim)); /* the pixels of an image, whatever its size */
    nn_model_seed(m, a.seed);
    nn_dense(m, 64, NN_RELU);
    nn_dense(m, 64, NN_RELU);
    nn_dense(m, 10, NN_SOFTMAX);
    if (nn_compile(m, nn_adam(a.lr), NN_LOSS_SPARSE_CATEGORICAL_CE) != NN_OK) {
        fprintf(stderr, "compile: %s\n", nn_model_error(m));
        return 1;
    }
    /* the IDX images are (h,w,1); the MLP takes them as h*w features */
    train.shape = nn_shape1((int)train.x_dim);
    test.shape = nn_shape1((int)test.x_dim);
    fprintf(stderr, "backend %s on %s\n", nn_backend_name(nn_get_backend()), nn_cpu_description());
    fo = nn_fit_defaults();
    fo.epochs = a.epochs;
    fo.batch = a.batch;
    if (nn_fit(m, &train, &fo) != NN_OK) {
        fprintf(stderr, "fit: %s\n", nn_model_error(m));
        return 1;
    }
    nn_model_summary(m, stderr);
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
    if (int8 && ex_int8(m, &train, &test, probs, &q_acc, &q_loss, &q_infer_s, &b1, &q_b1)) return 1;
    free(probs);
    if (a.save && nn_save(m, a.save, 0) != NN_OK) fprintf(stderr, "could not save %s\n", a.save);
    printf("RESULT test_acc=%.4f test_loss=%.4f train_s=%.2f epochs=%d infer_s=%.3f s_per_epoch=%.3f backend=%s threads=%d",
           acc, loss, fo.train_seconds, fo.epochs_run, infer_s, fo.train_seconds / (fo.epochs_run ? fo.epochs_run : 1),
           nn_backend_name(nn_get_backend()), nn_get_threads());
    if (int8) printf(" int8_acc=%.4f int8_infer_s=%.3f b1_ms=%.4f int8_b1_ms=%.4f", q_acc, q_infer_s, b1, q_b1);
    printf("\n");
    nn_model_free(m);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    return 0;
}
