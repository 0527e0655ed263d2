/* xor.c - the classic: a 2-10-1 network learns XOR.
 *
 *   cc -O2 -o xor examples/xor.c -lm
 *   ./xor
 *
 * ReLU hidden layer, sigmoid output, binary cross-entropy, Adam.
 * Deterministic for a given --seed and backend (and the same for any
 * thread count).  Flags: --epochs --seed --backend --lr --threads N (0:
 * every core; default NN_THREADS or every core).  Ends with
 * "RESULT accuracy=... threads=N". */
#define NN_IMPLEMENTATION
#include "../nn.h"
#include "common/args.h"

int main(int argc, char **argv) {
    static const float x[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    static const float y[4] = {0, 1, 1, 0};
    ex_args a;
    nn_model *m;
    nn_dataset ds;
    nn_fit_opts fo;
    float out[4], acc;
    int i, right = 0;
    memset(&a, 0, sizeof a);
    a.epochs = 500;
    a.batch = 4;
    a.seed = 1;
    a.lr = 0.05f;
    if (ex_parse(argc, argv, &a, "[--epochs N] [--seed S] [--backend NAME] [--lr LR] [--threads N]") ||
        ex_backend(a.backend))
        return 2;
    if (ex_threads(argv[0], a.threads)) return 1;

    m = nn_model_new(nn_shape1(2));
    nn_model_seed(m, a.seed);
    nn_dense(m, 10, NN_RELU);
    nn_dense(m, 1, NN_SIGMOID);
    if (nn_compile(m, nn_adam(a.lr), NN_LOSS_BINARY_CE) != NN_OK) {
        fprintf(stderr, "compile: %s\n", nn_model_error(m));
        return 1;
    }
    if (nn_dataset_from_arrays(&ds, 4, nn_shape1(2), x, 1, y) != NN_OK) return 1;
    fo = nn_fit_defaults();
    fo.epochs = a.epochs;
    fo.batch = a.batch;
    fo.verbose = 0;
    if (nn_fit(m, &ds, &fo) != NN_OK) {
        fprintf(stderr, "fit: %s\n", nn_model_error(m));
        return 1;
    }
    nn_predict(m, x, 4, out);
    for (i = 0; i < 4; i++) {
        int p = out[i] > 0.5f;
        right += p == (int)y[i];
        printf("%g xor %g = %d   (p = %.4f)\n", x[2 * i], x[2 * i + 1], p, out[i]);
    }
    acc = right / 4.0f;
    printf("RESULT accuracy=%.2f epochs=%d backend=%s threads=%d\n", acc, a.epochs, nn_backend_name(nn_get_backend()),
           nn_get_threads());
    nn_dataset_free(&ds);
    nn_model_free(m);
    return acc == 1.0f ? 0 : 1;
}
