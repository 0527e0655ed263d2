/* args.h - the flags every example shares (not part of the library).
 * --data DIR --epochs N --batch B --seed S --limit N --backend NAME
 * --threads N (ex_threads: N >= 1 threads, 0 = every core; absent: nn.h's
 * default, NN_THREADS or every core) */
#ifndef EXAMPLES_ARGS_H
#define EXAMPLES_ARGS_H
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ex_args {
    const char *data, *save, *backend, *threads; /* threads: NULL = not given */
    int epochs, batch, limit;
    unsigned long seed;
    float lr;
} ex_args;

/* Returns 0 on success; prints usage and returns 1 on a bad flag. */
static int ex_parse(int argc, char **argv, ex_args *a, const char *usage) {
    int i = 1;
    while (i < argc) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            fprintf(stderr, "usage: %s %s\n", argv[0], usage);
            exit(0);
        }
        if (!v) {
            fprintf(stderr, "%s: flag %s needs a value\nusage: %s %s\n", argv[0], f, argv[0], usage);
            return 1;
        }
        if (!strcmp(f, "--data")) a->data = v;
        else if (!strcmp(f, "--save")) a->save = v;
        else if (!strcmp(f, "--backend")) a->backend = v;
        else if (!strcmp(f, "--threads")) a->threads = v;
        else if (!strcmp(f, "--epochs")) a->epochs = atoi(v);
        else if (!strcmp(f, "--batch")) a->batch = atoi(v);
        else if (!strcmp(f, "--limit")) a->limit = atoi(v);
        else if (!strcmp(f, "--seed")) a->seed = strtoul(v, NULL, 10);
        else if (!strcmp(f, "--lr")) a->lr = (float)atof(v);
        else {
            fprintf(stderr, "%s: unknown flag %s\nusage: %s %s\n", argv[0], f, argv[0], usage);
            return 1;
        }
        i += 2; /* flag and value */
    }
    if (a->epochs <= 0 || a->batch <= 0 || a->limit < 0) {
        fprintf(stderr, "%s: --epochs and --batch must be > 0, --limit >= 0\n", argv[0]);
        return 1;
    }
    return 0;
}

#if defined(__GNUC__) || defined(__clang__)
#define EX_UNUSED __attribute__((unused))
#else
#define EX_UNUSED
#endif
/* A whole number in [lo, hi] from a flag's value; 1 (after a message) if not. */
EX_UNUSED static int ex_int(const char *prog, const char *flag, const char *v, int lo, int hi, int *out) {
    char *end;
    long x;
    errno = 0;
    x = strtol(v, &end, 10);
    if (end == v || *end || errno || x < lo || x > hi) {
        fprintf(stderr, "%s: %s needs a whole number in [%d, %d], not '%s'\n", prog, flag, lo, hi, v);
        return 1;
    }
    *out = (int)x;
    return 0;
}

/* Apply --threads N with nn_set_threads: N >= 1 threads, 0 = every core
 * this process may run on.  NULL (flag absent) keeps nn.h's default.  1,
 * after a message, for a bad value (the caller exits 1). */
EX_UNUSED static int ex_threads(const char *prog, const char *v) {
    int n;
    nn_status s;
    if (!v) return 0;
    if (ex_int(prog, "--threads", v, 0, NN_MAX_THREADS, &n)) return 1;
    s = nn_set_threads(n);
    if (s != NN_OK) {
        fprintf(stderr, "%s: --threads %d: %s\n", prog, n, nn_strerror(s));
        return 1;
    }
    return 0;
}

/* Moves the flags named in names[] (NULL-terminated) and their values out
 * of argv, so that the rest can go to ex_parse: values[i] gets the value of
 * names[i] (left alone when the flag is absent).  1, after a message, when
 * a flag has no value. */
EX_UNUSED static int ex_take(int *argc, char **argv, const char *const *names, const char **values) {
    int i, j = 1, k;
    for (i = 1; i < *argc; i++) {
        for (k = 0; names[k] && strcmp(argv[i], names[k]) != 0; k++) continue;
        if (!names[k]) {
            argv[j++] = argv[i];
            continue;
        }
        if (i + 1 >= *argc) {
            fprintf(stderr, "%s: flag %s needs a value\n", argv[0], argv[i]);
            return 1;
        }
        values[k] = argv[++i];
    }
    *argc = j;
    argv[j] = NULL;
    return 0;
}

/* Takes a flag without a value (e.g. "--int8") out of argv: 1 when it was there. */
EX_UNUSED static int ex_flag(int *argc, char **argv, const char *name) {
    int i, j = 1, found = 0;
    for (i = 1; i < *argc; i++) {
        if (!strcmp(argv[i], name)) found = 1;
        else argv[j++] = argv[i];
    }
    *argc = j;
    argv[j] = NULL;
    return found;
}

/* ms per image predicting images one at a time (the first 1000 of ds) */
EX_UNUSED static double ex_batch1_ms(nn_model *m, const nn_dataset *ds, float *x, float *out) {
    int i, n = ds->n < 1000 ? ds->n : 1000;
    double t0;
    nn_dataset_get_x(ds, 0, x);
    nn_predict(m, x, 1, out); /* plans the batch of 1 */
    t0 = nn_time_seconds();
    for (i = 0; i < n; i++) {
        nn_dataset_get_x(ds, i, x);
        nn_predict(m, x, 1, out);
    }
    return (nn_time_seconds() - t0) * 1e3 / n;
}

/* --int8: the trained model quantized with 1000 training images (nn_quantize),
 * its test accuracy and loss, the time to predict the test set at batch 32
 * (as infer_s), and the ms per image one at a time for both models (b1).
 * probs: room for the test set's outputs.  0 on success. */
EX_UNUSED static int ex_int8(nn_model *m, const nn_dataset *train, const nn_dataset *test, float *probs,
                             float *acc, float *loss, double *infer_s, double *b1_ms, double *q_b1_ms) {
    nn_model *q = NULL;
    double t0;
    nn_status s = nn_quantize(m, train, train->n < 1000 ? train->n : 1000, &q);
    if (s != NN_OK) {
        fprintf(stderr, "int8: %s (%s)\n", nn_strerror(s), nn_model_error(m));
        return 1;
    }
    if (nn_evaluate(q, test, 32, loss, acc) != NN_OK) {
        fprintf(stderr, "int8 evaluate: %s\n", nn_model_error(q));
        nn_model_free(q);
        return 1;
    }
    t0 = nn_time_seconds();
    if (nn_predict_dataset(q, test, 32, probs) != NN_OK) {
        fprintf(stderr, "int8 predict: %s\n", nn_model_error(q));
        nn_model_free(q);
        return 1;
    }
    *infer_s = nn_time_seconds() - t0;
    nn_model_summary(q, stderr); /* the int8 ops, and their bytes against the float ones */
    *b1_ms = ex_batch1_ms(m, test, probs + 16, probs);
    *q_b1_ms = ex_batch1_ms(q, test, probs + 16, probs);
    fprintf(stderr, "int8: test accuracy %.4f, loss %.4f, %.3f s for %d test images; one at a time %.4f ms "
                    "(float %.4f ms)\n",
            (double)*acc, (double)*loss, *infer_s, test->n, *q_b1_ms, *b1_ms);
    nn_model_free(q);
    return 0;
}

/* Apply --backend with nn_backend_from_name; 0 on success. */
static int ex_backend(const char *name) {
    nn_backend b;
    nn_status s;
    if (!name) name = "auto";
    if (nn_backend_from_name(name, &b) != NN_OK) {
        fprintf(stderr, "unknown backend '%s' (scalar|avx2|avx512|neon|auto)\n", name);
        return 1;
    }
    s = nn_set_backend(b);
    if (s != NN_OK) {
        fprintf(stderr, "backend '%s': %s\n", name, nn_strerror(s));
        return 1;
    }
    return 0;
}
#endif
