/* timeseries.c - a recurrent regressor: the next value of a series from the previous 32.
 *
 *   cc -O2 -o timeseries examples/timeseries.c -lm
 *   ./timeseries
 *   ./timeseries --csv data.csv --column 2
 *
 * Series: by default 20000 points of y_t = sin(2 pi t/50) + 0.5 sin(2 pi t/13)
 * + N(0, 0.1^2) (seeded; the noise floor of the task is 0.01), or column N
 * (0-based) of a CSV file (--csv FILE --column N; a first line that is not
 * a number there is taken as a header, any later one is an error).  The
 * last 20% of the points are the validation targets (their input windows
 * may reach back into the training part); the training windows end before.
 *
 * Model: input (32 steps, 1 feature) -> LSTM(32, last state) -> Dense(1,
 * linear), MSE, Adam 2e-3, batch 32, 10 epochs (nn_fit, shuffled), the
 * weights of the best validation epoch kept.  The series is standardised
 * with the training part's mean and standard deviation for the network;
 * every MSE printed is in the series' own units.
 *
 * Baselines on the same validation targets: the last value (y_t = y_{t-1})
 * and a linear autoregression AR(32) with intercept, least squares on the
 * training windows (normal equations in double, ridge 1e-8 x mean diagonal,
 * Cholesky).
 *
 * Flags: --csv FILE --column N --points N --window N --units N, and
 * --epochs --batch --seed --backend --lr --save --threads N (0: every core;
 * default NN_THREADS or every core).  Progress on stderr; stdout gets one line:
 *   RESULT val_mse=... baseline_mse=... ar_mse=... train_s=... epochs=10 backend=avx512 ... threads=N
 * train_s: nn_fit's training loop only (not validation). */
#include <errno.h>
#include <math.h>

#define NN_IMPLEMENTATION
#include "../nn.h"
#include "common/args.h"

typedef struct ts_opts {
    const char *csv;
    int column, points, window, units;
} ts_opts;

/* Takes this example's flags out of argv (the rest goes to ex_parse). */
static int ts_parse(int *argc, char **argv, ts_opts *o) {
    int i, j = 1;
    for (i = 1; i < *argc; i++) {
        const char *f = argv[i], *v = i + 1 < *argc ? argv[i + 1] : NULL;
        int ours = !strcmp(f, "--csv") || !strcmp(f, "--column") || !strcmp(f, "--points") ||
                   !strcmp(f, "--window") || !strcmp(f, "--units");
        if (!ours) {
            argv[j++] = argv[i];
            continue;
        }
        if (!v) {
            fprintf(stderr, "%s: flag %s needs a value\n", argv[0], f);
            return 1;
        }
        i++;
        if (!strcmp(f, "--csv")) o->csv = v;
        else if (!strcmp(f, "--column")) {
            if (ex_int(argv[0], f, v, 0, 1000000, &o->column)) return 1;
        } else if (!strcmp(f, "--points")) {
            if (ex_int(argv[0], f, v, 2, 100000000, &o->points)) return 1;
        } else if (!strcmp(f, "--window")) {
            if (ex_int(argv[0], f, v, 1, 4096, &o->window)) return 1;
        } else if (ex_int(argv[0], f, v, 1, 4096, &o->units)) return 1;
    }
    argv[j] = NULL;
    *argc = j;
    return 0;
}

/* Column col (0-based, comma-separated) of every line of path into *out (*n values).
 * 0, or 1 after a message. */
static int ts_load_csv(const char *path, int col, double **out, size_t *n) {
    FILE *f = fopen(path, "r");
    char line[65536];
    size_t cap = 0, lineno = 0;
    double *v = NULL;
    *n = 0;
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    while (fgets(line, sizeof line, f)) {
        char *p = line, *end;
        double d;
        int c;
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            fprintf(stderr, "%s:%lu: line longer than %d bytes\n", path, (unsigned long)lineno, (int)sizeof line);
            goto fail;
        }
        if (line[strspn(line, " \t\r\n")] == '\0') continue; /* blank line */
        for (c = 0; c < col && p; c++) {
            p = strchr(p, ',');
            if (p) p++;
        }
        if (!p) {
            fprintf(stderr, "%s:%lu: no column %d (columns are 0-based, comma-separated)\n", path,
                    (unsigned long)lineno, col);
            goto fail;
        }
        errno = 0;
        d = strtod(p, &end);
        while (*end == ' ' || *end == '\t' || *end == '\r') end++;
        if (end == p || errno == ERANGE || (*end && *end != ',' && *end != '\n') || !isfinite(d)) {
            if (*n == 0 && lineno == 1) continue; /* header */
            fprintf(stderr, "%s:%lu: column %d is not a finite number\n", path, (unsigned long)lineno, col);
            goto fail;
        }
        if (*n == cap) {
            double *nv = (double *)realloc(v, (cap = cap ? 2 * cap : 4096) * sizeof *v);
            if (!nv) {
                fprintf(stderr, "out of memory reading %s\n", path);
                goto fail;
            }
            v = nv;
        }
        v[(*n)++] = d;
    }
    fclose(f);
    *out = v;
    return 0;
fail:
    fclose(f);
    free(v);
    return 1;
}

/* Solve A x = b (A symmetric positive definite, k x k, overwritten by its Cholesky factor).
 * 0, or 1 when A is not positive definite. */
static int ts_cholesky_solve(double *A, double *b, int k) {
    int i, j, l;
    for (j = 0; j < k; j++) {
        double d = A[j * k + j];
        for (l = 0; l < j; l++) d -= A[j * k + l] * A[j * k + l];
        if (!(d > 0.0)) return 1;
        d = sqrt(d);
        A[j * k + j] = d;
        for (i = j + 1; i < k; i++) {
            double s = A[i * k + j];
            for (l = 0; l < j; l++) s -= A[i * k + l] * A[j * k + l];
            A[i * k + j] = s / d;
        }
    }
    for (i = 0; i < k; i++) { /* L z = b */
        double s = b[i];
        for (l = 0; l < i; l++) s -= A[i * k + l] * b[l];
        b[i] = s / A[i * k + i];
    }
    for (i = k - 1; i >= 0; i--) { /* L^T x = z */
        double s = b[i];
        for (l = i + 1; l < k; l++) s -= A[l * k + i] * b[l];
        b[i] = s / A[i * k + i];
    }
    return 0;
}

/* AR(W) with intercept fitted on targets t in [W, split), evaluated on [split, n): validation MSE. */
static double ts_ar_mse(const double *y, size_t n, size_t split, int W) {
    int k = W + 1, i, j;
    double *A = (double *)calloc((size_t)k * k, sizeof *A), *b = (double *)calloc((size_t)k, sizeof *b);
    double *f = (double *)malloc((size_t)k * sizeof *f), tr = 0.0, se = 0.0;
    size_t t;
    if (!A || !b || !f) {
        free(A);
        free(b);
        free(f);
        return NAN;
    }
    for (t = (size_t)W; t < split; t++) {
        for (i = 0; i < W; i++) f[i] = y[t - (size_t)W + (size_t)i];
        f[W] = 1.0;
        for (i = 0; i < k; i++) {
            for (j = 0; j <= i; j++) A[i * k + j] += f[i] * f[j];
            b[i] += f[i] * y[t];
        }
    }
    for (i = 0; i < k; i++)
        for (j = i + 1; j < k; j++) A[i * k + j] = A[j * k + i];
    for (i = 0; i < k; i++) tr += A[i * k + i];
    for (i = 0; i < k; i++) A[i * k + i] += 1e-8 * tr / k; /* tiny ridge */
    if (ts_cholesky_solve(A, b, k)) {
        free(A);
        free(b);
        free(f);
        return NAN;
    }
    for (t = split; t < n; t++) {
        double p = b[W], d;
        for (i = 0; i < W; i++) p += b[i] * y[t - (size_t)W + (size_t)i];
        d = p - y[t];
        se += d * d;
    }
    free(A);
    free(b);
    free(f);
    return se / (double)(n - split);
}

int main(int argc, char **argv) {
    static const char *usage = "[--csv FILE --column N] [--points N] [--window N] [--units N] [--epochs N] "
                               "[--batch B] [--seed S] [--backend NAME] [--lr LR] [--save FILE] [--threads N]";
    ex_args a;
    ts_opts o;
    double *y = NULL, mean = 0.0, sd = 0.0, base = 0.0, ar, se = 0.0;
    size_t n, split, ntr, nva, t, i;
    float *xs, *ts, *pred;
    nn_dataset train, val;
    nn_model *m;
    nn_fit_opts fo;
    nn_rng rng;
    int W;

    memset(&a, 0, sizeof a);
    a.epochs = 10;
    a.batch = 32;
    a.seed = 1;
    a.lr = 2e-3f;
    memset(&o, 0, sizeof o);
    o.points = 20000;
    o.window = 32;
    o.units = 32;
    if (ts_parse(&argc, argv, &o)) {
        fprintf(stderr, "usage: %s %s\n", argv[0], usage);
        return 2;
    }
    if (ex_parse(argc, argv, &a, usage) || ex_backend(a.backend)) return 2;
    if (ex_threads(argv[0], a.threads)) return 1;
    W = o.window;

    /* ---- the series ---- */
    if (o.csv) {
        if (ts_load_csv(o.csv, o.column, &y, &n)) return 1;
    } else {
        n = (size_t)o.points;
        y = (double *)malloc(n * sizeof *y);
        if (!y) return 1;
        nn_rng_seed(&rng, a.seed);
        for (t = 0; t < n; t++)
            y[t] = sin(2.0 * 3.14159265358979 * (double)t / 50.0) + 0.5 * sin(2.0 * 3.14159265358979 * (double)t / 13.0) +
                   0.1 * nn_rng_normal(&rng);
    }
    split = n - n / 5;
    if (split < (size_t)W + 1 || n - split < 1) {
        fprintf(stderr, "the series has %lu points, too few for --window %d: its first 80%% (%lu points) must hold "
                        "a window and its target, its last 20%% at least one target\n",
                (unsigned long)n, W, (unsigned long)split);
        return 1;
    }
    ntr = split - (size_t)W;
    nva = n - split;
    for (t = 0; t < split; t++) mean += y[t];
    mean /= (double)split;
    for (t = 0; t < split; t++) sd += (y[t] - mean) * (y[t] - mean);
    sd = sqrt(sd / (double)split);
    if (!(sd > 0.0)) sd = 1.0; /* constant training part */
    fprintf(stderr, "series: %lu points (%s), window %d, train windows %lu, validation targets %lu, mean %.4g sd %.4g\n",
            (unsigned long)n, o.csv ? o.csv : "sin(2 pi t/50) + 0.5 sin(2 pi t/13) + N(0, 0.01)", W,
            (unsigned long)ntr, (unsigned long)nva, mean, sd);

    /* ---- windows (standardised) ---- */
    xs = (float *)malloc(sizeof(float) * (ntr > nva ? ntr : nva) * (size_t)W);
    ts = (float *)malloc(sizeof(float) * (ntr > nva ? ntr : nva));
    pred = (float *)malloc(sizeof(float) * nva);
    if (!xs || !ts || !pred) return 1;
    for (i = 0; i < ntr; i++) { /* target y[W + i] */
        int k;
        for (k = 0; k < W; k++) xs[i * W + k] = (float)((y[i + k] - mean) / sd);
        ts[i] = (float)((y[i + W] - mean) / sd);
    }
    if (nn_dataset_from_arrays(&train, (int)ntr, nn_shape2(W, 1), xs, 1, ts) != NN_OK) {
        fprintf(stderr, "training set: bad data\n");
        return 1;
    }
    for (i = 0; i < nva; i++) { /* target y[split + i] */
        int k;
        for (k = 0; k < W; k++) xs[i * W + k] = (float)((y[split + i - W + k] - mean) / sd);
        ts[i] = (float)((y[split + i] - mean) / sd);
    }
    if (nn_dataset_from_arrays(&val, (int)nva, nn_shape2(W, 1), xs, 1, ts) != NN_OK) {
        fprintf(stderr, "validation set: bad data\n");
        return 1;
    }

    /* ---- baselines ---- */
    for (t = split; t < n; t++) base += (y[t] - y[t - 1]) * (y[t] - y[t - 1]);
    base /= (double)nva;
    ar = ts_ar_mse(y, n, split, W);
    fprintf(stderr, "baselines on the validation targets: last value %.5f, AR(%d) %.5f\n", base, W, ar);

    /* ---- model ---- */
    m = nn_model_new(nn_shape2(W, 1));
    if (!m) return 1;
    nn_model_seed(m, a.seed);
    nn_lstm(m, o.units, 0);
    nn_dense(m, 1, NN_LINEAR);
    if (nn_compile(m, nn_adam(a.lr), NN_LOSS_MSE) != NN_OK) {
        fprintf(stderr, "compile: %s\n", nn_model_error(m));
        return 1;
    }
    nn_model_summary(m, stderr);
    fprintf(stderr, "backend %s on %s\n", nn_backend_name(nn_get_backend()), nn_cpu_description());
    fo = nn_fit_defaults();
    fo.epochs = a.epochs;
    fo.batch = a.batch;
    fo.val = &val;
    fo.patience = a.epochs; /* never stops early, but tracks and restores the best epoch */
    fo.restore_best = 1;
    if (nn_fit(m, &train, &fo) != NN_OK) {
        fprintf(stderr, "fit: %s\n", nn_model_error(m));
        return 1;
    }
    if (nn_predict(m, val.x, val.n, pred) != NN_OK) {
        fprintf(stderr, "predict: %s\n", nn_model_error(m));
        return 1;
    }
    for (i = 0; i < nva; i++) {
        double d = (double)pred[i] * sd + mean - y[split + i];
        se += d * d;
    }
    se /= (double)nva;
    fprintf(stderr, "validation MSE: LSTM %.5f, last value %.5f (x%.2f), AR(%d) %.5f (x%.2f)\n", se, base, se / base,
            W, ar, se / ar);
    if (a.save && nn_save(m, a.save, 0) != NN_OK) fprintf(stderr, "could not save %s: %s\n", a.save, nn_model_error(m));
    printf("RESULT val_mse=%.5f baseline_mse=%.5f ar_mse=%.5f train_s=%.2f epochs=%d backend=%s vs_baseline=%.3f "
           "vs_ar=%.3f threads=%d\n",
           se, base, ar, fo.train_seconds, fo.epochs_run, nn_backend_name(nn_get_backend()), se / base, se / ar,
           nn_get_threads());
    nn_model_free(m);
    nn_dataset_free(&train);
    nn_dataset_free(&val);
    free(xs);
    free(ts);
    free(pred);
    free(y);
    return 0;
}
