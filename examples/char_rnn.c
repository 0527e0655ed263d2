/* char_rnn.c - a character-level language model (LSTM by default).
 *
 *   cc -O2 -o char_rnn examples/char_rnn.c -lm
 *   ./char_rnn --steps 2000
 *   ./char_rnn --cell gru --text mybook.txt
 *
 * Text: --text FILE, or by default every regular file (symlinks skipped) in
 * /usr/share/common-licenses concatenated in name order (strcmp).  The
 * vocabulary is the set of distinct bytes, in increasing byte order; the
 * first 90% of the text trains, the last 10% validates.
 *
 * Model: token ids (as floats, seq per sample) -> Embedding(vocab, --embed 64)
 * -> LSTM / GRU / RNN(--hidden, all steps) -> Dense(vocab, softmax) at every
 * step; sparse categorical cross-entropy against the next character at each
 * step.  Adam 2e-3, gradient clipping at global norm 5, batch 32 windows of
 * 64 characters drawn at random positions of the training text (seeded
 * nn_rng), one nn_train_on_batch per step.
 *
 * Every 200 steps (and after the last) the model reads the whole held-out
 * text in consecutive chunks of --seq characters as one stream, the
 * recurrent state carried from chunk to chunk (nn_reset_state, then
 * nn_predict_stateful with n = 1), and reports bits per character: the mean
 * of -log2 p(next char) over every character after the first.  The best
 * weights are kept (a copy of nn_model_params) and restored at the end.
 *
 * Then a second model with a one-step input and the same layers gets those
 * weights, reads the first 40 characters of the held-out text and goes on
 * to generate --sample characters (temperature --temp) one at a time with
 * nn_predict_stateful; the text goes to stderr.
 *
 * Timing: each training step (nn_train_on_batch) is timed alone; validation,
 * batch building and sampling are not.  train_s is their sum (with the CPU
 * time beside it on stderr: far less means the core was shared); ms_per_step is
 * the median of the per-step means over blocks of 50 steps after 20 warm-up
 * steps (the mean of all steps when there are fewer than 70), as
 * bench/torch_reference.py --model lstm reports it.
 *
 * Flags: --text FILE --cell rnn|lstm|gru --hidden N --seq N --embed N
 * --steps N --eval-every N --sample N --temp T, and --batch --seed
 * --backend --lr --save --threads N (0: every core; default NN_THREADS or
 * every core).  Progress on stderr; stdout gets one line:
 *   RESULT val_bpc=... train_s=... steps=... ms_per_step=... cell=lstm backend=avx512 ... threads=N */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#define NN_IMPLEMENTATION
#include "../nn.h"
#include "common/args.h"

#define CR_DEFAULT_DIR "/usr/share/common-licenses"
#define CR_WARMUP 20 /* steps left out of ms_per_step */
#define CR_BLOCK 50  /* ms_per_step: median over blocks of this many steps */

typedef struct cr_opts {
    const char *text, *cell;
    int hidden, seq, embed, steps, eval_every, sample;
    float temp;
} cr_opts;

/* Takes this example's flags out of argv (the rest goes to ex_parse).
 * Returns 0, or 1 after printing what is wrong. */
static int cr_parse(int *argc, char **argv, cr_opts *o) {
    int i, j = 1;
    for (i = 1; i < *argc; i++) {
        const char *f = argv[i], *v = i + 1 < *argc ? argv[i + 1] : NULL;
        int ours = !strcmp(f, "--text") || !strcmp(f, "--cell") || !strcmp(f, "--hidden") || !strcmp(f, "--seq") ||
                   !strcmp(f, "--embed") || !strcmp(f, "--steps") || !strcmp(f, "--eval-every") ||
                   !strcmp(f, "--sample") || !strcmp(f, "--temp");
        if (!ours) {
            argv[j++] = argv[i];
            continue;
        }
        if (!v) {
            fprintf(stderr, "%s: flag %s needs a value\n", argv[0], f);
            return 1;
        }
        i++;
        if (!strcmp(f, "--text")) o->text = v;
        else if (!strcmp(f, "--cell")) {
            if (strcmp(v, "rnn") && strcmp(v, "lstm") && strcmp(v, "gru")) {
                fprintf(stderr, "%s: --cell must be rnn, lstm or gru, not '%s'\n", argv[0], v);
                return 1;
            }
            o->cell = v;
        } else if (!strcmp(f, "--hidden")) {
            if (ex_int(argv[0], f, v, 1, 4096, &o->hidden)) return 1;
        } else if (!strcmp(f, "--seq")) {
            if (ex_int(argv[0], f, v, 1, 100000, &o->seq)) return 1;
        } else if (!strcmp(f, "--embed")) {
            if (ex_int(argv[0], f, v, 1, 4096, &o->embed)) return 1;
        } else if (!strcmp(f, "--steps")) {
            if (ex_int(argv[0], f, v, 1, 100000000, &o->steps)) return 1;
        } else if (!strcmp(f, "--eval-every")) {
            if (ex_int(argv[0], f, v, 1, 100000000, &o->eval_every)) return 1;
        } else if (!strcmp(f, "--sample")) {
            if (ex_int(argv[0], f, v, 0, 1000000, &o->sample)) return 1;
        } else {
            char *end;
            double t = strtod(v, &end);
            if (end == v || *end || !(t > 0.0 && t <= 100.0)) {
                fprintf(stderr, "%s: --temp needs a temperature in (0, 100], not '%s'\n", argv[0], v);
                return 1;
            }
            o->temp = (float)t;
        }
    }
    argv[j] = NULL;
    *argc = j;
    return 0;
}

/* Append the file at path to *buf (size *len, capacity *cap).  0 or 1 after a message. */
static int cr_append_file(const char *path, unsigned char **buf, size_t *len, size_t *cap) {
    FILE *f = fopen(path, "rb");
    size_t got;
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    for (;;) {
        if (*cap - *len < 65536) {
            size_t nc = *cap ? *cap * 2 : 1 << 20;
            unsigned char *nb = (unsigned char *)realloc(*buf, nc);
            if (!nb) {
                fclose(f);
                fprintf(stderr, "out of memory reading %s\n", path);
                return 1;
            }
            *buf = nb;
            *cap = nc;
        }
        got = fread(*buf + *len, 1, *cap - *len, f);
        *len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        fprintf(stderr, "error reading %s\n", path);
        fclose(f);
        return 1;
    }
    fclose(f);
    return 0;
}

static int cr_cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every regular file of dir (not symlinks, not subdirectories), in strcmp order of the names. */
static int cr_load_dir(const char *dir, unsigned char **buf, size_t *len, int *nfiles) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL, path[4096];
    size_t n = 0, cap = 0, i;
    size_t bcap = 0;
    int rc = 0;
    if (!d) {
        fprintf(stderr, "cannot open directory %s: %s (use --text FILE)\n", dir, strerror(errno));
        return 1;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path) continue;
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (n == cap) {
            char **nn = (char **)realloc(names, (cap = cap ? 2 * cap : 32) * sizeof *names);
            if (!nn) {
                rc = 1;
                break;
            }
            names = nn;
        }
        if (!(names[n] = (char *)malloc(strlen(e->d_name) + 1))) {
            rc = 1;
            break;
        }
        strcpy(names[n++], e->d_name);
    }
    closedir(d);
    if (rc) fprintf(stderr, "out of memory listing %s\n", dir);
    if (!rc && n) qsort(names, n, sizeof *names, cr_cmp_names);
    for (i = 0; i < n; i++) {
        if (!rc) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            rc = cr_append_file(path, buf, len, &bcap);
        }
        free(names[i]);
    }
    free(names);
    *nfiles = (int)n;
    return rc;
}

static int cr_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Bits per character of ids[0..n) read as one stream in chunks of seq:
 * mean of -log2 p(ids[i+1] | ids[0..i]) over i = 0..n-2.  The last chunk is
 * padded with id 0 after the text (the model is causal: the padding cannot
 * change the predictions that count).  NAN on error (message printed). */
static double cr_eval_bpc(nn_model *m, const unsigned char *ids, size_t n, int seq, int vocab, float *x, float *p) {
    double bits = 0.0;
    size_t pos, count = 0;
    int t;
    nn_reset_state(m);
    for (pos = 0; pos + 1 < n; pos += (size_t)seq) {
        size_t len = n - 1 - pos < (size_t)seq ? n - 1 - pos : (size_t)seq; /* targets in this chunk */
        nn_status s;
        for (t = 0; t < seq; t++) x[t] = (size_t)t < len ? (float)ids[pos + t] : 0.0f;
        if ((s = nn_predict_stateful(m, x, 1, p)) != NN_OK) {
            fprintf(stderr, "validation: %s: %s\n", nn_strerror(s), nn_model_error(m));
            return NAN;
        }
        for (t = 0; (size_t)t < len; t++) {
            float q = p[(size_t)t * vocab + ids[pos + t + 1]];
            bits -= log2(q > 1e-30f ? (double)q : 1e-30);
        }
        count += len;
    }
    return bits / (double)count;
}

static nn_status cr_build(nn_model *m, const cr_opts *o, int vocab, float lr) {
    nn_optimizer opt = nn_adam(lr);
    opt.clip_norm = 5.0f;
    nn_embedding(m, vocab, o->embed);
    if (!strcmp(o->cell, "lstm")) nn_lstm(m, o->hidden, 1);
    else if (!strcmp(o->cell, "gru")) nn_gru(m, o->hidden, 1);
    else nn_rnn(m, o->hidden, 1);
    nn_dense(m, vocab, NN_SOFTMAX);
    return nn_compile(m, opt, NN_LOSS_SPARSE_CATEGORICAL_CE);
}

int main(int argc, char **argv) {
    static const char *usage = "[--text FILE] [--cell rnn|lstm|gru] [--hidden N] [--seq N] [--embed N] [--steps N] "
                               "[--eval-every N] [--sample N] [--temp T] [--batch B] [--seed S] [--backend NAME] "
                               "[--lr LR] [--save FILE] [--threads N]";
    ex_args a;
    cr_opts o;
    unsigned char *text = NULL, *ids, map[256];
    size_t len = 0, ntrain, nval, i, nparams, n2;
    int used[256], vocab = 0, nfiles = 1, step, c, best_step = 0, nblocks = 0;
    nn_model *m, *g;
    nn_rng rng;
    float *x, *y, *xv, *pv, *best, *params, loss;
    double *step_s, *blocks, train_s = 0.0, ms_per_step, best_bpc = INFINITY, loss_acc = 0.0, t0;
    long loss_n = 0;
    clock_t c0, cpu_ticks = 0;
    nn_status s;

    memset(&a, 0, sizeof a);
    a.epochs = 1; /* unused; ex_parse wants it > 0 */
    a.batch = 32;
    a.seed = 1;
    a.lr = 2e-3f;
    memset(&o, 0, sizeof o);
    o.cell = "lstm";
    o.hidden = 128;
    o.seq = 64;
    o.embed = 64;
    o.steps = 2000;
    o.eval_every = 200;
    o.sample = 300;
    o.temp = 0.8f;
    if (cr_parse(&argc, argv, &o)) {
        fprintf(stderr, "usage: %s %s\n", argv[0], usage);
        return 2;
    }
    if (ex_parse(argc, argv, &a, usage) || ex_backend(a.backend)) return 2;
    if (ex_threads(argv[0], a.threads)) return 1;

    /* ---- text and vocabulary ---- */
    if (o.text) {
        size_t cap = 0;
        if (cr_append_file(o.text, &text, &len, &cap)) return 1;
    } else if (cr_load_dir(CR_DEFAULT_DIR, &text, &len, &nfiles)) return 1;
    if (len < 2) {
        fprintf(stderr, "%s: the text has %lu byte%s; a language model needs at least 2 characters\n",
                o.text ? o.text : CR_DEFAULT_DIR, (unsigned long)len, len == 1 ? "" : "s");
        return 1;
    }
    memset(used, 0, sizeof used);
    for (i = 0; i < len; i++) used[text[i]] = 1;
    for (c = 0; c < 256; c++)
        if (used[c]) map[c] = (unsigned char)vocab++;
    /* bytes: at most 256 symbols, so the vocabulary always fits the ids (kept as a guard) */
    if (vocab > 256) {
        fprintf(stderr, "the text has %d distinct symbols; at most 256 are supported\n", vocab);
        return 1;
    }
    if (vocab < 2) {
        fprintf(stderr, "the text uses a single distinct character; there is nothing to predict\n");
        return 1;
    }
    ntrain = len * 9 / 10;
    nval = len - ntrain;
    if (ntrain < (size_t)o.seq + 1 || nval < 2) {
        fprintf(stderr, "the text (%lu bytes) is too short: its first 90%% (%lu bytes) must hold a window of --seq + 1 = "
                        "%d bytes and its last 10%% (%lu bytes) at least 2\n",
                (unsigned long)len, (unsigned long)ntrain, o.seq + 1, (unsigned long)nval);
        return 1;
    }
    ids = text; /* ids replace the bytes in place */
    for (i = 0; i < len; i++) ids[i] = map[text[i]];
    fprintf(stderr, "text: %lu bytes from %d file%s (%s), vocabulary %d, train %lu, validation %lu\n",
            (unsigned long)len, nfiles, nfiles == 1 ? "" : "s", o.text ? o.text : CR_DEFAULT_DIR, vocab,
            (unsigned long)ntrain, (unsigned long)nval);

    /* ---- model ---- */
    m = nn_model_new(nn_shape1(o.seq));
    if (!m) return 1;
    nn_model_seed(m, a.seed);
    if (cr_build(m, &o, vocab, a.lr) != NN_OK) {
        fprintf(stderr, "compile: %s\n", nn_model_error(m));
        return 1;
    }
    nn_model_summary(m, stderr);
    fprintf(stderr, "backend %s on %s\n", nn_backend_name(nn_get_backend()), nn_cpu_description());

    params = nn_model_params(m, &nparams);
    x = (float *)malloc(sizeof(float) * (size_t)a.batch * o.seq);
    y = (float *)malloc(sizeof(float) * (size_t)a.batch * o.seq);
    xv = (float *)malloc(sizeof(float) * (size_t)o.seq);
    pv = (float *)malloc(sizeof(float) * (size_t)o.seq * vocab);
    best = (float *)malloc(sizeof(float) * (nparams ? nparams : 1));
    step_s = (double *)malloc(sizeof(double) * (size_t)o.steps);
    blocks = (double *)malloc(sizeof(double) * ((size_t)o.steps / CR_BLOCK + 1));
    if (!x || !y || !xv || !pv || !best || !step_s || !blocks || !params) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    memcpy(best, params, nparams * sizeof(float));

    /* ---- training ---- */
    nn_rng_seed(&rng, a.seed);
    for (step = 1; step <= o.steps; step++) {
        int b, t;
        for (b = 0; b < a.batch; b++) {
            size_t st = nn_rng_below(&rng, (uint32_t)(ntrain - (size_t)o.seq)); /* window + next char in train */
            for (t = 0; t < o.seq; t++) {
                x[(size_t)b * o.seq + t] = (float)ids[st + t];
                y[(size_t)b * o.seq + t] = (float)ids[st + t + 1];
            }
        }
        c0 = clock();
        t0 = nn_time_seconds();
        s = nn_train_on_batch(m, x, y, a.batch, &loss, NULL);
        step_s[step - 1] = nn_time_seconds() - t0;
        cpu_ticks += clock() - c0;
        if (s != NN_OK) {
            fprintf(stderr, "step %d: %s: %s\n", step, nn_strerror(s), nn_model_error(m));
            return 1;
        }
        train_s += step_s[step - 1];
        loss_acc += loss;
        loss_n++;
        if (step % o.eval_every == 0 || step == o.steps) {
            double bpc = cr_eval_bpc(m, ids + ntrain, nval, o.seq, vocab, xv, pv);
            if (bpc != bpc) return 1;
            if (bpc < best_bpc) {
                best_bpc = bpc;
                best_step = step;
                memcpy(best, params, nparams * sizeof(float));
            }
            fprintf(stderr, "step %5d  train %.3f bpc  val %.4f bpc%s  %.1f s, %.2f ms/step\n", step,
                    loss_acc / loss_n / log(2.0), bpc, best_step == step ? " *" : "", train_s, 1e3 * train_s / step);
            loss_acc = 0.0;
            loss_n = 0;
        }
    }
    memcpy(params, best, nparams * sizeof(float));
    if (o.steps >= CR_WARMUP + CR_BLOCK) {
        for (step = CR_WARMUP; step + CR_BLOCK <= o.steps; step += CR_BLOCK) {
            double sum = 0.0;
            int k;
            for (k = 0; k < CR_BLOCK; k++) sum += step_s[step + k];
            blocks[nblocks++] = sum / CR_BLOCK;
        }
        qsort(blocks, (size_t)nblocks, sizeof *blocks, cr_cmp_double);
        ms_per_step = 1e3 * (nblocks % 2 ? blocks[nblocks / 2] : 0.5 * (blocks[nblocks / 2 - 1] + blocks[nblocks / 2]));
    } else ms_per_step = 1e3 * train_s / o.steps;
    fprintf(stderr, "best validation %.4f bpc at step %d (weights restored); training %.2f s, cpu %.2f s%s\n", best_bpc,
            best_step, train_s, (double)cpu_ticks / CLOCKS_PER_SEC,
            (double)cpu_ticks / CLOCKS_PER_SEC < 0.9 * train_s ? " -- warning: the core was shared, the time is not clean"
                                                                : "");
    if (a.save && nn_save(m, a.save, 0) != NN_OK) fprintf(stderr, "could not save %s: %s\n", a.save, nn_model_error(m));

    /* ---- generation: same layers on a one-step input, the trained weights ---- */
    g = nn_model_new(nn_shape1(1));
    if (!g) return 1;
    if (cr_build(g, &o, vocab, a.lr) != NN_OK) {
        fprintf(stderr, "generator compile: %s\n", nn_model_error(g));
        return 1;
    }
    if (nn_model_params(g, &n2) == NULL || n2 != nparams) {
        fprintf(stderr, "generator has %lu parameters, the model %lu\n", (unsigned long)n2, (unsigned long)nparams);
        return 1;
    }
    memcpy(nn_model_params(g, &n2), params, nparams * sizeof(float));
    if (o.sample > 0) {
        /* prime with the start of the held-out text, then sample p^(1/T) (normalised) one step at a time */
        unsigned char inv[256];
        double wgt[256];
        int prime = nval < 40 ? (int)nval : 40, cur = 0, k, j;
        for (c = 0; c < 256; c++)
            if (used[c]) inv[map[c]] = (unsigned char)c;
        nn_reset_state(g);
        fprintf(stderr, "---- the first %d characters of the validation text, then %d sampled (temperature %.2f) ----\n",
                prime, o.sample, o.temp);
        for (k = 0; k < prime + o.sample - 1; k++) {
            double z = 0.0, r, mx = -INFINITY;
            float xin = (float)(k < prime ? ids[ntrain + (size_t)k] : cur);
            if ((s = nn_predict_stateful(g, &xin, 1, pv)) != NN_OK) {
                fprintf(stderr, "sampling: %s: %s\n", nn_strerror(s), nn_model_error(g));
                return 1;
            }
            if (k < prime) fputc(inv[ids[ntrain + (size_t)k]], stderr);
            if (k < prime - 1) continue;
            for (j = 0; j < vocab; j++) {
                wgt[j] = log(pv[j] > 1e-30f ? (double)pv[j] : 1e-30) / o.temp;
                if (wgt[j] > mx) mx = wgt[j];
            }
            for (j = 0; j < vocab; j++) z += (wgt[j] = exp(wgt[j] - mx));
            r = nn_rng_uniform(&rng) * z;
            for (j = 0; j < vocab - 1; j++)
                if ((r -= wgt[j]) < 0.0) break;
            cur = j;
            fputc(inv[cur], stderr);
        }
        fprintf(stderr, "\n---- end of sample ----\n");
    }

    printf("RESULT val_bpc=%.4f train_s=%.2f steps=%d ms_per_step=%.3f cell=%s backend=%s best_step=%d vocab=%d "
           "hidden=%d seq=%d batch=%d threads=%d\n",
           best_bpc, train_s, o.steps, ms_per_step, o.cell, nn_backend_name(nn_get_backend()), best_step, vocab,
           o.hidden, o.seq, a.batch, nn_get_threads());
    nn_model_free(g);
    nn_model_free(m);
    free(x);
    free(y);
    free(xv);
    free(pv);
    free(best);
    free(step_s);
    free(blocks);
    free(text);
    return 0;
}
