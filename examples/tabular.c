/* tabular.c - a small MLP on a numeric CSV: why shuffling and feature
 * scaling matter.
 *
 *   cc -O2 -o tabular examples/tabular.c -lm
 *   ./tabular                                   # shuffled, normalized
 *   ./tabular --shuffle 0 --normalize 0         # file order, raw features
 *
 * Data: --data FILE, a CSV with a header line and the class label in the
 * last column.  By default the Wisconsin breast-cancer table that Debian's
 * python3-sklearn ships (569 rows, 30 features, 2 classes):
 *   apt-get install python3-sklearn
 *   /usr/lib/python3/dist-packages/sklearn/datasets/data/breast_cancer.csv
 *
 * Steps: nn_dataset_load_csv; nn_dataset_shuffle(seed) unless --shuffle 0
 * (a file sorted or grouped by class then splits fairly); the last
 * --test-frac (0.2) held out (nn_dataset_split); Normalization (Keras':
 * per-feature mean and variance, adapted on the training part only, so
 * nothing leaks from the test rows) unless --normalize 0; Dense(16, ReLU);
 * Dense(classes, softmax); sparse categorical cross-entropy, Adam, batch
 * 32, --epochs 100.
 * Flags: --data --epochs --batch --seed --backend --lr --save --threads N
 * (0: every core; default NN_THREADS or every core), and
 * --shuffle 0|1 --normalize 0|1 --test-frac F.
 * Ends with "RESULT test_acc=... train_acc=... shuffle=... normalize=...
 * ... threads=N". */
#define NN_IMPLEMENTATION
#include "../nn.h"
#include "common/args.h"

/* "0" or "1" into *out; 1 after a message otherwise */
static int flag01(const char *prog, const char *flag, const char *v, int *out) {
    if (strcmp(v, "0") && strcmp(v, "1")) {
        fprintf(stderr, "%s: %s must be 0 or 1, not '%s'\n", prog, flag, v);
        return 1;
    }
    *out = v[0] == '1';
    return 0;
}

int main(int argc, char **argv) {
    ex_args a;
    nn_dataset all, train, test;
    nn_model *m;
    nn_fit_opts fo;
    nn_status s;
    static const char *const own[] = {"--shuffle", "--normalize", "--test-frac", NULL};
    const char *val[3] = {"1", "1", "0.2"};
    float test_acc, train_acc, frac;
    int shuffle, normalize;
    memset(&a, 0, sizeof a);
    a.data = "/usr/lib/python3/dist-packages/sklearn/datasets/data/breast_cancer.csv";
    a.epochs = 100;
    a.batch = 32;
    a.seed = 1;
    a.lr = 1e-3f;
    if (ex_take(&argc, argv, own, val) || flag01(argv[0], own[0], val[0], &shuffle) ||
        flag01(argv[0], own[1], val[1], &normalize))
        return 2;
    frac = (float)atof(val[2]);
    if (!(frac > 0.0f && frac < 1.0f)) {
        fprintf(stderr, "%s: --test-frac must be in (0, 1), not '%s'\n", argv[0], val[2]);
        return 2;
    }
    if (ex_parse(argc, argv, &a,
                 "[--data FILE.csv] [--epochs N] [--batch B] [--seed S] [--backend NAME] [--lr LR] "
                 "[--save FILE] [--shuffle 0|1] [--normalize 0|1] [--test-frac F] [--threads N]") ||
        ex_backend(a.backend))
        return 2;
    if (ex_threads(argv[0], a.threads)) return 1;
    s = nn_dataset_load_csv(&all, a.data, 1, -1);
    if (s != NN_OK) {
        fprintf(stderr, "cannot load %s: %s\n(the default is Debian's python3-sklearn copy of the "
                        "breast-cancer table: apt-get install python3-sklearn, or pass --data FILE)\n",
                a.data, nn_strerror(s));
        return 1;
    }
    if (all.num_classes < 2) {
        fprintf(stderr, "%s: the last column must hold class ids 0, 1, ...\n", a.data);
        return 1;
    }
    if (shuffle && nn_dataset_shuffle(&all, a.seed) != NN_OK) return 1;
    if (nn_dataset_split(&all, frac, &train, &test) != NN_OK) {
        fprintf(stderr, "--test-frac %g leaves no rows on one side\n", (double)frac);
        return 1;
    }
    m = nn_model_new(all.shape); /* the input shape is the data's: (features) */
    nn_model_seed(m, a.seed);
    if (normalize) nn_normalization(m);
    nn_dense(m, 16, NN_RELU);
    nn_dense(m, all.num_classes, NN_SOFTMAX);
    if (nn_compile(m, nn_adam(a.lr), NN_LOSS_SPARSE_CATEGORICAL_CE) != NN_OK ||
        (normalize && nn_normalization_adapt(m, 0, &train) != NN_OK)) {
        fprintf(stderr, "model: %s\n", nn_model_error(m));
        return 1;
    }
    fprintf(stderr, "%d rows x %lu features, %d classes: %d train, %d test; shuffle %d, normalize %d\n",
            all.n, (unsigned long)all.x_dim, all.num_classes, train.n, test.n, shuffle, normalize);
    fo = nn_fit_defaults();
    fo.epochs = a.epochs;
    fo.batch = a.batch;
    fo.verbose = 0;
    if (nn_fit(m, &train, &fo) != NN_OK || nn_evaluate(m, &train, a.batch, NULL, &train_acc) != NN_OK ||
        nn_evaluate(m, &test, a.batch, NULL, &test_acc) != NN_OK) {
        fprintf(stderr, "fit: %s\n", nn_model_error(m));
        return 1;
    }
    nn_model_summary(m, stderr);
    if (a.save) {
        s = nn_save(m, a.save, 0);
        if (s != NN_OK) fprintf(stderr, "could not save %s: %s\n", a.save, nn_strerror(s));
    }
    printf("RESULT test_acc=%.4f train_acc=%.4f shuffle=%d normalize=%d epochs=%d train_s=%.3f backend=%s threads=%d\n",
           test_acc, train_acc, shuffle, normalize, fo.epochs_run, fo.train_seconds,
           nn_backend_name(nn_get_backend()), nn_get_threads());
    nn_model_free(m);
    nn_dataset_free(&all);
    return 0;
}
