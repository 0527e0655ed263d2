/* Model files and dataset loaders (group "io").
 *
 * Save/load: nn_predict of a loaded model is bit-identical; with the
 * optimizer state saved, training continues exactly as the original does.
 * Damaged files are rejected, never crash: every truncation, every single
 * byte changed (CRC), wrong magic / version / counts with a valid CRC
 * (zlib CRC-32 over all bytes before the last 4, little-endian).
 * A model with global average pooling and adapted normalization layers
 * round-trips bit for bit (their statistics are in the file, the kinds by
 * name) and prints them in its summary.
 * IDX and CSV loaders: values, and rejection of malformed files.
 * nn_dataset_shuffle: rows move with their targets, a permutation, seeded.
 *
 * Temporary files go to build/test_tmp_<tag>_* (or ./test_tmp_<tag>_* when
 * build/ is not writable; the tag differs per run) and are removed. */
#include "nn.h"
#include "tt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void test_io(void);

extern size_t tt_alloc_cap, tt_alloc_max; /* tests/test_main.c */

/* A per-process tag keeps concurrent test runs from sharing temp files
 * (C99 has no getpid: time, clock and a stack address (ASLR) instead). */
static unsigned long run_tag(void) {
    static unsigned long tag;
    if (!tag) {
        int local;
        nn_rng r;
        nn_rng_seed(&r, (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20) ^ (uint64_t)(uintptr_t)&local);
        tag = nn_rng_u32(&r) | 1u;
    }
    return tag;
}
const char *tt_tmp_name(const char *name, char *buf, size_t len) {
    FILE *f;
    snprintf(buf, len, "build/test_tmp_%08lx_%s", run_tag(), name);
    f = fopen(buf, "wb");
    if (f) {
        fclose(f);
        return buf;
    }
    snprintf(buf, len, "test_tmp_%08lx_%s", run_tag(), name);
    return buf;
}

int tt_write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok;
    if (!f) return 0;
    ok = n == 0 || fwrite(p, 1, n, f) == n;
    return (fclose(f) == 0) && ok;
}
unsigned char *tt_read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *p;
    long sz;
    *n = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = (unsigned char *)malloc((size_t)sz + 1);
    if (fread(p, 1, (size_t)sz, f) != (size_t)sz) {
        free(p);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return p;
}

/* zlib's CRC-32 (reflected 0xEDB88320), computed independently of nn.h
 * (tt.h: the other tests that repair a file's CRC use it too) */
uint32_t tt_crc32(const unsigned char *p, size_t n) {
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
static uint32_t get32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}
static uint64_t get64(const unsigned char *p) { return get32(p) | ((uint64_t)get32(p + 4) << 32); }
static void put64(unsigned char *p, uint64_t v) {
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}
static void fix_crc(unsigned char *p, size_t n) { put32(p + n - 4, tt_crc32(p, n - 4)); }
#define TAG(a, b, c, d) ((uint32_t)(a) | ((uint32_t)(b) << 8) | ((uint32_t)(c) << 16) | ((uint32_t)(d) << 24))
/* offset of the payload of section `tag` (header: u32 tag, u32 0, u64 len), or 0 */
static size_t section(const unsigned char *p, size_t n, uint32_t tag, uint64_t *len) {
    size_t pos = 12;
    uint32_t ns = get32(p + 8), s;
    for (s = 0; s < ns && pos + 16 <= n - 4; s++) {
        uint64_t l = get64(p + pos + 8);
        if (get32(p + pos) == tag) {
            if (len) *len = l;
            return pos + 16;
        }
        if (l > n) return 0;
        pos += 16 + (size_t)l;
    }
    return 0;
}

/* ---- save / load round trip --------------------------------------------- */

static nn_model *big_model(void) {
    nn_model *m = nn_model_new(nn_shape3(6, 6, 2));
    nn_model_seed(m, 21);
    nn_conv2d_ex(m, 3, 3, 3, 1, 1, NN_RELU);       /* 0: 6x6x3 */
    nn_batchnorm(m);                               /* 1 */
    nn_maxpool2d(m, 2);                            /* 2: 3x3x3 */
    nn_conv2d_ex(m, 4, 2, 2, 1, 0, NN_LEAKY_RELU); /* 3: 2x2x4 */
    nn_leaky_relu_slope(m, 0.2f);
    nn_avgpool2d(m, 2);                 /* 4: 1x1x4 */
    nn_flatten(m);                      /* 5 */
    nn_dense(m, 5, NN_TANH);            /* 6 */
    nn_batchnorm(m);                    /* 7 */
    nn_dropout(m, 0.25f);               /* 8 */
    nn_activation_layer(m, NN_SIGMOID); /* 9 */
    nn_dense(m, 3, NN_SOFTMAX);         /* 10 */
    if (nn_compile(m, nn_adam(0.01f), NN_LOSS_SPARSE_CATEGORICAL_CE) != NN_OK)
        TT_CHECK(0, "big model: %s", nn_model_error(m));
    return m;
}

static int same_params(nn_model *a, nn_model *b) {
    size_t na, nb;
    const float *pa = nn_model_params(a, &na), *pb = nn_model_params(b, &nb);
    return na == nb && pa && pb && memcmp(pa, pb, na * sizeof(float)) == 0;
}

static void round_trip(void) {
    enum { N = 12 };
    float x[N * 72], y[N], o1[N * 3], o2[N * 3];
    char path[256];
    nn_model *m, *l = NULL;
    nn_dataset ds;
    nn_fit_opts fo;
    nn_rng r;
    nn_status st;
    int i, s;
    tt_ctx("io[%s] save/load round trip", nn_backend_name(nn_get_backend()));
    tt_tmp_name("model.nnm", path, sizeof path);
    nn_rng_seed(&r, 1);
    tt_fill_uniform(&r, x, N * 72, 0, 1);
    for (i = 0; i < N; i++) y[i] = (float)(i % 3);
    m = big_model();
    if (nn_model_status(m) != NN_OK || nn_dataset_from_arrays(&ds, N, nn_shape3(6, 6, 2), x, 1, y) != NN_OK) {
        nn_model_free(m);
        return;
    }
    fo = nn_fit_defaults();
    fo.epochs = 2;
    fo.batch = 4;
    fo.verbose = 0;
    TT_CHECK(nn_fit(m, &ds, &fo) == NN_OK, "fit: %s", nn_model_error(m));
    nn_layer_freeze(m, 6, 1);

    /* weights only */
    st = nn_save(m, path, 0);
    TT_CHECK(st == NN_OK, "nn_save: %s", nn_strerror(st));
    st = nn_load(&l, path);
    if (TT_CHECK(st == NN_OK && l, "nn_load: %s", nn_strerror(st))) {
        nn_shape a = nn_model_output_shape(m), b = nn_model_output_shape(l);
        TT_CHECK(nn_model_num_layers(l) == nn_model_num_layers(m) && nn_model_num_params(l) == nn_model_num_params(m) &&
                     a.ndim == b.ndim && a.d[0] == b.d[0],
                 "loaded model: %d layers, %lu params", nn_model_num_layers(l), (unsigned long)nn_model_num_params(l));
        TT_CHECK(same_params(m, l), "loaded parameters differ");
        TT_CHECK(nn_predict(m, x, N, o1) == NN_OK && nn_predict(l, x, N, o2) == NN_OK, "predict");
        TT_SAME_ARR("nn_predict of the loaded model (weights only) is bit-identical", o2, o1, N * 3);
        for (i = 0, s = 1; i < N; i++) s &= fabsf(o1[3 * i] + o1[3 * i + 1] + o1[3 * i + 2] - 1.0f) < 1e-5f;
        TT_CHECK(s, "predictions are probabilities (softmax head restored)");
    }
    nn_model_free(l);
    l = NULL;

    /* with the optimizer: continuing training matches the original */
    st = nn_save(m, path, 1);
    TT_CHECK(st == NN_OK, "nn_save with optimizer: %s", nn_strerror(st));
    st = nn_load(&l, path);
    if (TT_CHECK(st == NN_OK && l, "nn_load: %s", nn_strerror(st))) {
        size_t nw;
        float w6[64];
        const float *p6 = nn_layer_weights(l, 6, &nw);
        memcpy(w6, p6, nw * sizeof(float));
        nn_model_seed(m, 99); /* the RNG (dropout, shuffle) is not part of the file */
        nn_model_seed(l, 99);
        for (s = 0; s < 4; s++) {
            TT_CHECK(nn_train_on_batch(m, x + s * 3 * 72, y + s * 3, 3, NULL, NULL) == NN_OK, "train original");
            TT_CHECK(nn_train_on_batch(l, x + s * 3 * 72, y + s * 3, 3, NULL, NULL) == NN_OK, "train loaded");
        }
        fo.epochs = 1;
        TT_CHECK(nn_fit(m, &ds, &fo) == NN_OK && nn_fit(l, &ds, &fo) == NN_OK, "fit both");
        TT_CHECK(same_params(m, l), "after resuming (Adam state saved), the weights differ from the original's");
        TT_CHECK(memcmp(w6, nn_layer_weights(l, 6, NULL), nw * sizeof(float)) == 0,
                 "layer 6 was frozen when saved but moved after loading");
        TT_CHECK(nn_predict(m, x, N, o1) == NN_OK && nn_predict(l, x, N, o2) == NN_OK, "predict");
        TT_SAME_ARR("predictions after resuming are bit-identical", o2, o1, N * 3);
    }
    nn_model_free(l);
    nn_dataset_free(&ds);
    nn_model_free(m);
    remove(path);
}

/* every loss and optimizer survives a round trip; resume is exact */
static void round_trip_small(void) {
    static const struct {
        nn_activation act;
        int units;
        nn_loss loss;
        int ydim;
    } cs[] = {
        {NN_SIGMOID, 1, NN_LOSS_BINARY_CE, 1},
        {NN_LINEAR, 2, NN_LOSS_BINARY_CE_FROM_LOGITS, 2},
        {NN_SOFTMAX, 3, NN_LOSS_CATEGORICAL_CE, 3},
        {NN_LINEAR, 3, NN_LOSS_CATEGORICAL_CE_FROM_LOGITS, 3},
        {NN_LINEAR, 3, NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS, 1},
        {NN_TANH, 2, NN_LOSS_MSE, 2},
    };
    nn_optimizer opts[4];
    char path[256];
    float x[8 * 4], y[8 * 3], o1[8 * 3], o2[8 * 3];
    nn_rng r;
    size_t c;
    int i;
    opts[0] = nn_sgd_momentum(0.05f, 0.9f, 1);
    opts[0].weight_decay = 0.01f;
    opts[1] = nn_rmsprop(0.01f);
    opts[2] = nn_adamw(0.01f, 0.05f);
    opts[3] = nn_adam(0.02f);
    opts[3].clip_norm = 0.5f;
    tt_tmp_name("small.nnm", path, sizeof path);
    nn_rng_seed(&r, 3);
    tt_fill_uniform(&r, x, 8 * 4, -1, 1);
    for (c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        nn_model *m = nn_model_new(nn_shape1(4)), *l = NULL;
        nn_status st;
        int s;
        tt_ctx("io[%s] round trip, loss %d, optimizer %d", nn_backend_name(nn_get_backend()), (int)cs[c].loss,
               (int)opts[c % 4].kind);
        for (i = 0; i < 8 * cs[c].ydim; i++)
            y[i] = cs[c].ydim == 1 ? (float)(i % 3 < cs[c].units ? i % 3 : 0) : (float)((i * 7) % 3 == 0);
        if (cs[c].loss == NN_LOSS_BINARY_CE)
            for (i = 0; i < 8; i++) y[i] = (float)(i & 1);
        nn_dense(m, 5, NN_LEAKY_RELU);
        nn_dense(m, cs[c].units, cs[c].act);
        st = nn_compile(m, opts[c % 4], cs[c].loss);
        if (!TT_CHECK(st == NN_OK, "compile: %s", nn_model_error(m))) {
            nn_model_free(m);
            continue;
        }
        for (s = 0; s < 3; s++) nn_train_on_batch(m, x, y, 8, NULL, NULL);
        TT_CHECK(nn_save(m, path, 1) == NN_OK, "save");
        st = nn_load(&l, path);
        if (TT_CHECK(st == NN_OK && l, "load: %s", nn_strerror(st))) {
            TT_CHECK(nn_predict(m, x, 8, o1) == NN_OK && nn_predict(l, x, 8, o2) == NN_OK, "predict");
            TT_SAME_ARR("nn_predict after load is bit-identical", o2, o1, 8 * (size_t)cs[c].units);
            for (s = 0; s < 3; s++) {
                nn_train_on_batch(m, x, y, 8, NULL, NULL);
                nn_train_on_batch(l, x, y, 8, NULL, NULL);
            }
            TT_CHECK(same_params(m, l), "training after load (optimizer state saved) differs from the original");
        }
        nn_model_free(l);
        nn_model_free(m);
    }
    remove(path);
}

/* count of the occurrences of s in p[0..n) */
static int count_in(const unsigned char *p, size_t n, const char *s) {
    size_t k = strlen(s), i;
    int c = 0;
    for (i = 0; k && i + k <= n; i++) c += memcmp(p + i, s, k) == 0;
    return c;
}
/* the summary table of m (up to "total parameters") into buf; 0 on failure */
static int summary_text(const nn_model *m, const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "w+");
    size_t n;
    char *end;
    if (!f) return 0;
    nn_model_summary(m, f);
    rewind(f);
    n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = 0;
    end = strstr(buf, "total parameters");
    if (end) *end = 0;
    return n > 0;
}

/* global_avgpool2d and normalization: adapted statistics are saved (a
 * model that lost them predicts differently), predictions after loading
 * are bit-identical, training resumes exactly, the file names the kinds,
 * the summary prints them. */
static void round_trip_gap_norm(void) {
    enum { N = 10, H = 5, W = 5, C = 3, K = 3 };
    static float x[N * H * W * C];
    float y[N], o0[N * K], o1[N * K], o2[N * K];
    char path[256], spath[256], s1[4096], s2[4096];
    nn_model *m, *l = NULL;
    nn_dataset ds;
    nn_rng r;
    nn_status st;
    int i, ok;
    tt_ctx("io[%s] save/load with global_avgpool2d and normalization", nn_backend_name(nn_get_backend()));
    tt_tmp_name("gapnorm.nnm", path, sizeof path);
    tt_tmp_name("summary.txt", spath, sizeof spath);
    nn_rng_seed(&r, 31);
    for (i = 0; i < N * H * W * C; i++) x[i] = (float)(i % C) - 1.5f + (1.0f + (float)(i % C)) * nn_rng_normal(&r);
    for (i = 0; i < N; i++) y[i] = (float)(i % K);
    m = nn_model_new(nn_shape3(H, W, C));
    nn_model_seed(m, 5);
    nn_normalization(m);                         /* 0 */
    nn_conv2d_ex(m, 6, 3, 3, 1, 1, NN_RELU);     /* 1 */
    nn_global_avgpool2d(m);                      /* 2 */
    nn_normalization(m);                         /* 3 */
    nn_dense(m, K, NN_SOFTMAX);                  /* 4 */
    st = nn_compile(m, nn_adam(0.01f), NN_LOSS_SPARSE_CATEGORICAL_CE);
    if (!TT_CHECK(st == NN_OK, "compile: %s (%s)", nn_strerror(st), nn_model_error(m)) ||
        !TT_CHECK(nn_dataset_from_arrays(&ds, N, nn_shape3(H, W, C), x, 1, y) == NN_OK, "dataset")) {
        nn_model_free(m);
        return;
    }
    TT_CHECK(nn_predict(m, x, N, o0) == NN_OK, "predict");
    TT_CHECK(nn_normalization_adapt(m, 0, &ds) == NN_OK && nn_normalization_adapt(m, 3, &ds) == NN_OK,
             "adapt: %s", nn_model_error(m));
    TT_CHECK(nn_predict(m, x, N, o1) == NN_OK, "predict");
    TT_CHECK(memcmp(o0, o1, sizeof o0) != 0, "adapting the normalizations did not change the predictions");
    for (i = 0; i < 3; i++) nn_train_on_batch(m, x + i * 3 * H * W * C, y + i * 3, 3, NULL, NULL);

    /* weights only */
    st = nn_save(m, path, 0);
    TT_CHECK(st == NN_OK, "nn_save: %s", nn_strerror(st));
    {
        size_t n;
        unsigned char *b = tt_read_bytes(path, &n);
        TT_CHECK(b && count_in(b, n, "global_avgpool2d") == 1 && count_in(b, n, "normalization") == 2,
                 "the file names its kinds: global_avgpool2d %d times (1), normalization %d times (2)",
                 b ? count_in(b, n, "global_avgpool2d") : -1, b ? count_in(b, n, "normalization") : -1);
        free(b);
    }
    st = nn_load(&l, path);
    if (TT_CHECK(st == NN_OK && l, "nn_load: %s", nn_strerror(st))) {
        nn_shape os = nn_model_output_shape(l);
        TT_CHECK(nn_model_num_layers(l) == 5 && os.ndim == 1 && os.d[0] == K, "loaded: %d layers, output (%d)",
                 nn_model_num_layers(l), os.d[0]);
        TT_CHECK(same_params(m, l), "loaded parameters differ");
        TT_CHECK(nn_predict(m, x, N, o1) == NN_OK && nn_predict(l, x, N, o2) == NN_OK, "predict");
        TT_SAME_ARR("nn_predict of the loaded model is bit-identical (normalization statistics saved)", o2, o1,
                    N * K);
        ok = summary_text(m, spath, s1, sizeof s1) && summary_text(l, spath, s2, sizeof s2);
        if (TT_CHECK(ok, "nn_model_summary to %s", spath)) {
            TT_CHECK(strstr(s1, "\n2    global_avgpool2d") != NULL && strstr(s1, "\n0    normalization") != NULL &&
                         strstr(s1, "\n3    normalization") != NULL,
                     "summary lacks the global_avgpool2d / normalization lines:\n%s", s1);
            TT_CHECK(strcmp(s1, s2) == 0, "the loaded model's summary differs:\n%s\nvs\n%s", s2, s1);
        }
    }
    nn_model_free(l);
    l = NULL;
    /* a flatten as the last layer with a fused head: the head belongs to
     * the loss, the line says "flatten" (as 0.1.0 printed it) */
    {
        nn_model *f = nn_model_new(nn_shape3(2, 2, 1));
        char s3[2048];
        nn_conv2d(f, 1, 1, NN_LINEAR);
        nn_flatten(f);
        TT_CHECK(nn_compile(f, nn_sgd(0.1f), NN_LOSS_BINARY_CE_FROM_LOGITS) == NN_OK, "flatten-last model");
        if (TT_CHECK(summary_text(f, spath, s3, sizeof s3), "summary of the flatten-last model"))
            TT_CHECK(strstr(s3, "\n1    flatten ") != NULL && strstr(s3, "flatten sigmoid") == NULL,
                     "the flatten line of a model with a fused sigmoid head:\n%s", s3);
        nn_model_free(f);
    }

    /* with the optimizer: training resumes exactly */
    st = nn_save(m, path, 1);
    TT_CHECK(st == NN_OK, "nn_save with optimizer: %s", nn_strerror(st));
    st = nn_load(&l, path);
    if (TT_CHECK(st == NN_OK && l, "nn_load: %s", nn_strerror(st))) {
        for (i = 0; i < 3; i++) {
            TT_CHECK(nn_train_on_batch(m, x + i * 3 * H * W * C, y + i * 3, 3, NULL, NULL) == NN_OK, "train original");
            TT_CHECK(nn_train_on_batch(l, x + i * 3 * H * W * C, y + i * 3, 3, NULL, NULL) == NN_OK, "train loaded");
        }
        TT_CHECK(same_params(m, l), "after resuming, the weights differ from the original's");
        TT_CHECK(nn_predict(m, x, N, o1) == NN_OK && nn_predict(l, x, N, o2) == NN_OK, "predict");
        TT_SAME_ARR("predictions after resuming are bit-identical", o2, o1, N * K);
    }
    nn_model_free(l);
    nn_dataset_free(&ds);
    nn_model_free(m);
    remove(path);
    remove(spath);
}

/* ---- damaged files ---------------------------------------------------------- */

static nn_status load_bytes(const char *path, const unsigned char *p, size_t n, nn_model **out) {
    nn_status st;
    *out = NULL;
    if (!tt_write_bytes(path, p, n)) return (nn_status)-1;
    st = nn_load(out, path);
    if (st != NN_OK || !*out) {
        if (*out) TT_CHECK(0, "nn_load returned %s but set the model", nn_strerror(st));
    }
    return st;
}

/* one check: the edited (CRC fixed) file is rejected with one of two codes */
static void expect_reject(const char *what, const char *path, const unsigned char *good, size_t n, size_t off,
                          const unsigned char *bytes, size_t nb, nn_status want, nn_status also) {
    unsigned char *p = (unsigned char *)malloc(n);
    nn_model *m;
    nn_status st;
    memcpy(p, good, n);
    memcpy(p + off, bytes, nb);
    fix_crc(p, n);
    st = load_bytes(path, p, n, &m);
    TT_CHECK(st == want || st == also, "%s: nn_load returned %s, expected %s", what, nn_strerror(st),
             nn_strerror(want));
    nn_model_free(m);
    free(p);
}

static void damaged_files(void) {
    char path[256], bad[256];
    unsigned char *good, *p, b4[4], b8[8];
    size_t n, k, arch, parm, opts;
    uint64_t plen;
    nn_model *m, *l;
    nn_status st;
    long wrong = 0, loaded = 0;
    size_t first_wrong = 0;
    nn_status first_st = NN_OK;
    tt_ctx("io: damaged model files");
    tt_tmp_name("good.nnm", path, sizeof path);
    tt_tmp_name("bad.nnm", bad, sizeof bad);
    m = nn_model_new(nn_shape1(3));
    nn_dense(m, 2, NN_RELU);
    nn_batchnorm(m);
    nn_dense(m, 2, NN_SOFTMAX);
    nn_compile(m, nn_adam(0.01f), NN_LOSS_CATEGORICAL_CE);
    st = nn_save(m, path, 1);
    nn_model_free(m);
    good = tt_read_bytes(path, &n);
    if (!TT_CHECK(st == NN_OK && good && n > 64, "saving the small model: %s", nn_strerror(st))) {
        free(good);
        return;
    }
    TT_CHECK(memcmp(good, "NNH\x1a", 4) == 0, "magic");
    TT_CHECK(get32(good + n - 4) == tt_crc32(good, n - 4), "the file ends with zlib's CRC-32, little-endian");
    st = load_bytes(bad, good, n, &l);
    TT_CHECK(st == NN_OK, "the intact file loads: %s", nn_strerror(st));
    nn_model_free(l);

    /* every truncation */
    for (k = 0; k < n; k++) {
        st = load_bytes(bad, good, k, &l);
        if (st != NN_ERR_FORMAT) {
            if (!wrong) {
                first_wrong = k;
                first_st = st;
            }
            wrong++;
        }
        loaded += l != NULL;
        nn_model_free(l);
    }
    TT_CHECK(wrong == 0 && loaded == 0,
             "truncated files (0..%lu bytes): %ld not rejected with NN_ERR_FORMAT (first: %lu bytes -> %s), %ld loaded",
             (unsigned long)n - 1, wrong, (unsigned long)first_wrong, nn_strerror(first_st), loaded);

    /* every single byte changed: the CRC catches it */
    p = (unsigned char *)malloc(n);
    wrong = loaded = 0;
    for (k = 0; k < n; k++) {
        memcpy(p, good, n);
        p[k] ^= (unsigned char)(k % 7 == 0 ? 0x01 : 0xA5);
        st = load_bytes(bad, p, n, &l);
        if (st != NN_ERR_FORMAT) {
            if (!wrong) {
                first_wrong = k;
                first_st = st;
            }
            wrong++;
        }
        loaded += l != NULL;
        nn_model_free(l);
    }
    TT_CHECK(wrong == 0 && loaded == 0,
             "single changed bytes: %ld of %lu not rejected with NN_ERR_FORMAT (first: byte %lu -> %s), %ld loaded",
             wrong, (unsigned long)n, (unsigned long)first_wrong, nn_strerror(first_st), loaded);
    /* appended bytes (CRC valid over everything) */
    {
        unsigned char *q = (unsigned char *)malloc(n + 8);
        memcpy(q, good, n - 4);
        memset(q + n - 4, 0, 8);
        fix_crc(q, n + 4);
        st = load_bytes(bad, q, n + 4, &l);
        TT_CHECK(st == NN_ERR_FORMAT, "4 extra bytes before the CRC: %s", nn_strerror(st));
        nn_model_free(l);
        free(q);
    }
    free(p);

    /* fields changed with a valid CRC */
    memcpy(b4, "NNH\x1b", 4);
    expect_reject("wrong magic", bad, good, n, 0, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
    put32(b4, 3);
    expect_reject("version 3", bad, good, n, 4, b4, 4, NN_ERR_UNSUPPORTED, NN_ERR_FORMAT);
    put32(b4, 0);
    expect_reject("version 0", bad, good, n, 4, b4, 4, NN_ERR_UNSUPPORTED, NN_ERR_FORMAT);
    put32(b4, 0xFFFFFFFFu);
    expect_reject("section count 0xFFFFFFFF", bad, good, n, 8, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
    put32(b4, 1);
    expect_reject("section count 1", bad, good, n, 8, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
    put32(b4, 5);
    expect_reject("section count 5 (one more than present)", bad, good, n, 8, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
    arch = section(good, n, TAG('A', 'R', 'C', 'H'), NULL);
    parm = section(good, n, TAG('P', 'A', 'R', 'M'), &plen);
    opts = section(good, n, TAG('O', 'P', 'T', 'S'), NULL);
    if (TT_CHECK(arch == 28 && parm > arch && opts > parm, "sections at %lu %lu %lu", (unsigned long)arch,
                 (unsigned long)parm, (unsigned long)opts)) {
        static const uint32_t counts[] = {0, 2, 4, 257, 1000, 0x7FFFFFFFu, 0xFFFFFFFFu};
        static const uint64_t pcounts[] = {0, 1, 1000, (uint64_t)1 << 40, ~(uint64_t)0};
        size_t i;
        char what[96];
        for (i = 0; i < sizeof counts / sizeof counts[0]; i++) {
            put32(b4, counts[i]);
            snprintf(what, sizeof what, "layer count %lu (file has 3)", (unsigned long)counts[i]);
            expect_reject(what, bad, good, n, arch + 16, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
        }
        for (i = 0; i < sizeof pcounts / sizeof pcounts[0]; i++) {
            put64(b8, pcounts[i]);
            snprintf(what, sizeof what, "parameter count %llu", (unsigned long long)pcounts[i]);
            expect_reject(what, bad, good, n, parm, b8, 8, NN_ERR_FORMAT, NN_ERR_FORMAT);
            snprintf(what, sizeof what, "optimizer state count %llu", (unsigned long long)pcounts[i]);
            expect_reject(what, bad, good, n, opts + 8, b8, 8, NN_ERR_FORMAT, NN_ERR_FORMAT);
        }
        put64(b8, get64(good + parm) + 1);
        expect_reject("parameter count + 1", bad, good, n, parm, b8, 8, NN_ERR_FORMAT, NN_ERR_FORMAT);
        put64(b8, ~(uint64_t)0);
        expect_reject("PARM section length 2^64-1", bad, good, n, parm - 8, b8, 8, NN_ERR_FORMAT, NN_ERR_FORMAT);
        put64(b8, plen + 4);
        expect_reject("PARM section length + 4", bad, good, n, parm - 8, b8, 8, NN_ERR_FORMAT, NN_ERR_FORMAT);
        put64(b8, ~(uint64_t)0);
        expect_reject("ARCH section length 2^64-1", bad, good, n, arch - 8, b8, 8, NN_ERR_FORMAT, NN_ERR_FORMAT);
        put64(b8, (uint64_t)1 << 62);
        expect_reject("optimizer step 2^62", bad, good, n, opts, b8, 8, NN_ERR_FORMAT, NN_ERR_FORMAT);
        put32(b4, TAG('P', 'A', 'R', 'X'));
        expect_reject("unknown section tag", bad, good, n, parm - 16, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
        /* architecture fields: input dims, layer records, loss, optimizer
         * kind.  Format 2's layer record: u32 name length, the name, u32
         * activation, u32 frozen, f32 slope, u32 nset, nset settings; here
         * "dense" (5 chars, 1 setting), "batchnorm" (9, 0), "dense": 29
         * bytes each, the first from arch + 20. */
#define L0 (arch + 20)
#define RECS (3 * 29)
        put32(b4, 0xFFFFFFFFu);
        expect_reject("input ndim -1", bad, good, n, arch, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
        expect_reject("input size -1", bad, good, n, arch + 4, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
        put32(b4, 9); /* (4 would fit: layer blocks are padded to 16 floats) */
        expect_reject("input size 9 (parameter count no longer matches)", bad, good, n, arch + 4, b4, 4, NN_ERR_FORMAT,
                      NN_ERR_FORMAT);
        TT_CHECK(get32(good + L0) == 5 && memcmp(good + L0 + 4, "dense", 5) == 0, "the first layer record names dense");
        put32(b4, 99);
        expect_reject("layer name length 99", bad, good, n, L0, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
        put32(b4, 0);
        expect_reject("layer name length 0", bad, good, n, L0, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
        put32(b4, 0xFFFFFFFFu);
        expect_reject("layer name length 2^32-1", bad, good, n, L0, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
        expect_reject("unknown layer kind 'dansk'", bad, good, n, L0 + 4, (const unsigned char *)"dansk", 5,
                      NN_ERR_FORMAT, NN_ERR_FORMAT);
        expect_reject("layer kind 'flatt' (a prefix of flatten)", bad, good, n, L0 + 4,
                      (const unsigned char *)"flatt", 5, NN_ERR_FORMAT, NN_ERR_FORMAT);
        put32(b4, 99);
        expect_reject("activation 99", bad, good, n, L0 + 9, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
        put32(b4, 2);
        expect_reject("settings count 2 (dense has 1)", bad, good, n, L0 + 21, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
        put32(b4, 0x80000000u);
        expect_reject("units -2^31", bad, good, n, L0 + 25, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
        put32(b4, 3);
        expect_reject("units 3 (parameter count no longer matches)", bad, good, n, L0 + 25, b4, 4, NN_ERR_FORMAT,
                      NN_ERR_FORMAT);
        put32(b4, 99);
        expect_reject("loss 99", bad, good, n, L0 + RECS, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
        put32(b4, 99);
        expect_reject("optimizer kind 99", bad, good, n, L0 + RECS + 4, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
        {
            float lr = -1.0f;
            uint32_t u;
            memcpy(&u, &lr, 4);
            put32(b4, u);
            expect_reject("learning rate -1", bad, good, n, L0 + RECS + 8, b4, 4, NN_ERR_FORMAT, NN_ERR_FORMAT);
        }
#undef L0
#undef RECS
    }
    /* an architecture far bigger than the file: rejected from the sizes,
     * before allocating (requests above 256 MB fail here instead of
     * reaching malloc) */
    if (arch) {
        static const int32_t dims[][3] = {{900000000, 1, 1}, {30000, 30000, 1}, {1000000, 1, 1}};
        size_t i;
        for (i = 0; i < sizeof dims / sizeof dims[0]; i++) {
            unsigned char *q = (unsigned char *)malloc(n);
            char what[96];
            memcpy(q, good, n);
            if (dims[i][1] > 1) put32(q + arch, 3); /* (h, w, c): an image, then dense needs flatten */
            put32(q + arch + 4, (uint32_t)dims[i][0]);
            put32(q + arch + 8, (uint32_t)dims[i][1]);
            put32(q + arch + 12, (uint32_t)dims[i][2]);
            fix_crc(q, n);
            tt_alloc_max = 0;
            tt_alloc_cap = (size_t)256 << 20;
            st = load_bytes(bad, q, n, &l);
            tt_alloc_cap = 0;
            snprintf(what, sizeof what, "input (%ld,%ld,%ld) in a %lu-byte file", (long)dims[i][0], (long)dims[i][1],
                     (long)dims[i][2], (unsigned long)n);
            TT_CHECK(st == NN_ERR_FORMAT, "%s: nn_load returned %s, expected NN_ERR_FORMAT", what, nn_strerror(st));
            TT_CHECK(tt_alloc_max <= ((size_t)16 << 20), "%s: nn_load asked NN_MALLOC for %.0f MB before rejecting it",
                     what, (double)tt_alloc_max / 1048576.0);
            nn_model_free(l);
            free(q);
        }
    }
    free(good);

    /* paths and arguments */
    l = (nn_model *)&l;
    st = nn_load(&l, "build/no/such/dir/model.nnm");
    TT_CHECK(st == NN_ERR_IO && l == NULL, "nonexistent path: %s (model set to NULL: %d)", nn_strerror(st), l == NULL);
    st = nn_load(&l, ".");
    TT_CHECK(st == NN_ERR_IO || st == NN_ERR_FORMAT, "loading a directory: %s", nn_strerror(st));
    nn_model_free(l);
    TT_CHECK(nn_load(NULL, path) == NN_ERR_INVALID_ARGUMENT, "nn_load(NULL, path)");
    m = nn_model_new(nn_shape1(3));
    nn_dense(m, 2, NN_LINEAR);
    TT_CHECK(nn_save(m, path, 0) == NN_ERR_STATE, "nn_save before compile");
    nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE);
    TT_CHECK(nn_save(m, "build/no/such/dir/model.nnm", 0) == NN_ERR_IO, "nn_save into a missing directory");
    TT_CHECK(nn_save(NULL, path, 0) == NN_ERR_INVALID_ARGUMENT && nn_save(m, NULL, 0) == NN_ERR_INVALID_ARGUMENT,
             "nn_save with NULL");
    nn_model_free(m);
    remove(path);
    remove(bad);
}

/* ---- IDX ------------------------------------------------------------------------ */

static size_t idx_header(unsigned char *p, unsigned char type, int nd, const uint32_t *dims) {
    int i;
    p[0] = p[1] = 0;
    p[2] = type;
    p[3] = (unsigned char)nd;
    for (i = 0; i < nd; i++) {
        p[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        p[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        p[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        p[7 + 4 * i] = (unsigned char)dims[i];
    }
    return 4 + 4 * (size_t)nd;
}

static void idx_files(void) {
    enum { NI = 3, R = 2, C = 4 };
    unsigned char img[16 + NI * R * C + 8], lab[8 + NI + 8], tmp[64];
    uint32_t d3[3] = {NI, R, C}, d1[1] = {NI};
    char pi[256], pl[256], pb[256];
    size_t hi, hl, ni, nl, i;
    nn_dataset ds;
    nn_status st;
    tt_ctx("io: IDX loader");
    tt_tmp_name("img.idx", pi, sizeof pi);
    tt_tmp_name("lab.idx", pl, sizeof pl);
    tt_tmp_name("bad.idx", pb, sizeof pb);
    hi = idx_header(img, 0x08, 3, d3);
    for (i = 0; i < NI * R * C; i++) img[hi + i] = (unsigned char)(i * 37 + 3);
    img[hi] = 255;
    img[hi + 1] = 0;
    ni = hi + NI * R * C;
    hl = idx_header(lab, 0x08, 1, d1);
    lab[hl] = 2;
    lab[hl + 1] = 0;
    lab[hl + 2] = 9;
    nl = hl + NI;
    tt_write_bytes(pi, img, ni);
    tt_write_bytes(pl, lab, nl);
    st = nn_dataset_load_idx(&ds, pi, pl);
    if (TT_CHECK(st == NN_OK, "loading a valid 3x2x4 IDX pair: %s", nn_strerror(st))) {
        float row[R * C], want[R * C];
        int ok = 1, s;
        TT_CHECK(ds.n == NI && ds.shape.ndim == 3 && ds.shape.d[0] == R && ds.shape.d[1] == C && ds.shape.d[2] == 1 &&
                     ds.x_dim == R * C && ds.y_dim == 1 && ds.num_classes == 10,
                 "n=%d shape (%d,%d,%d) x_dim %lu y_dim %d classes %d", ds.n, ds.shape.d[0], ds.shape.d[1],
                 ds.shape.d[2], (unsigned long)ds.x_dim, ds.y_dim, ds.num_classes);
        TT_CHECK(ds.y[0] == 2 && ds.y[1] == 0 && ds.y[2] == 9, "labels %g %g %g", (double)ds.y[0], (double)ds.y[1],
                 (double)ds.y[2]);
        for (s = 0; s < NI; s++) {
            nn_dataset_get_x(&ds, s, row);
            for (i = 0; i < R * C; i++) want[i] = (float)img[hi + s * R * C + i] / 255.0f;
            ok &= tt_cmp_arr_(__FILE__, __LINE__, "pixels are u8 / 255", row, want, NULL, R * C, 1e-6, 0);
        }
        (void)ok;
        nn_dataset_free(&ds);
    }
    /* rejections (images file damaged, labels intact unless said) */
    {
        struct {
            const char *what;
            int labels; /* damage the labels file instead */
            size_t off;
            int val;  /* byte value at off, or -1 */
            long len; /* new length (negative: relative to full) */
        } cs[] = {
            {"bad magic (first byte 1)", 0, 0, 1, 0},
            {"bad magic (second byte 8)", 0, 1, 8, 0},
            {"type byte 0x09 (signed byte)", 0, 2, 0x09, 0},
            {"type byte 0x0D (float)", 0, 2, 0x0D, 0},
            {"labels type byte 0x0B", 1, 2, 0x0B, 0},
            {"images with 2 dims", 0, 3, 2, 0},
            {"images with 4 dims", 0, 3, 4, 0},
            {"labels with 3 dims", 1, 3, 3, 0},
            {"image count 4 (file holds 3)", 0, 7, 4, 0},
            {"image count 2 (file holds 3; labels 3)", 0, 7, 2, 0},
            {"label count 2 (file holds 3)", 1, 7, 2, 0},
            {"rows 0", 0, 11, 0, 0},
            {"rows 3 (file holds 2)", 0, 11, 3, 0},
            {"huge dim", 0, 8, 0xFF, 0},
            {"images one byte short", 0, 0, -1, -1},
            {"images one byte long", 0, 0, -1, 1},
            {"labels one byte short", 1, 0, -1, -1},
            {"labels one byte long", 1, 0, -1, 1},
            {"images truncated in the header", 0, 0, -1, -(long)(NI * R * C) - 5},
            {"labels truncated in the header", 1, 0, -1, -(long)NI - 2},
            {"images file of 3 bytes", 0, 0, -1, -(long)(16 + NI * R * C) + 3},
            {"empty images file", 0, 0, -1, -(long)(16 + NI * R * C)},
            {"empty labels file", 1, 0, -1, -(long)(8 + NI)},
        };
        for (i = 0; i < sizeof cs / sizeof cs[0]; i++) {
            unsigned char *src = cs[i].labels ? lab : img;
            size_t len = cs[i].labels ? nl : ni;
            unsigned char buf[sizeof img];
            memcpy(buf, src, len);
            if (cs[i].len > 0) buf[len] = 7;
            len = (size_t)((long)len + cs[i].len);
            if (cs[i].val >= 0) buf[cs[i].off] = (unsigned char)cs[i].val;
            tt_write_bytes(pb, buf, len);
            memset(&ds, 0x5A, sizeof ds);
            st = cs[i].labels ? nn_dataset_load_idx(&ds, pi, pb) : nn_dataset_load_idx(&ds, pb, pl);
            TT_CHECK(st == NN_ERR_FORMAT, "IDX %s: %s, expected NN_ERR_FORMAT", cs[i].what, nn_strerror(st));
            if (st == NN_OK)
                nn_dataset_free(&ds);
            else
                TT_CHECK(ds.n == 0 && ds.x == NULL && ds.x_u8 == NULL && ds.y == NULL && ds.owns == 0,
                         "IDX %s: the dataset is not left empty", cs[i].what);
            nn_dataset_free(&ds); /* safe on an emptied dataset */
        }
    }
    /* labels count mismatch with a consistent labels file */
    {
        uint32_t d4[1] = {NI + 1};
        size_t h = idx_header(tmp, 0x08, 1, d4);
        memset(tmp + h, 1, NI + 1);
        tt_write_bytes(pb, tmp, h + NI + 1);
        st = nn_dataset_load_idx(&ds, pi, pb);
        TT_CHECK(st == NN_ERR_FORMAT, "3 images with 4 labels: %s", nn_strerror(st));
        if (st == NN_OK) nn_dataset_free(&ds);
    }
    st = nn_dataset_load_idx(&ds, "build/no/such/file.idx", pl);
    TT_CHECK(st == NN_ERR_IO, "missing images file: %s", nn_strerror(st));
    st = nn_dataset_load_idx(&ds, pi, "build/no/such/file.idx");
    TT_CHECK(st == NN_ERR_IO, "missing labels file: %s", nn_strerror(st));
    TT_CHECK(nn_dataset_load_idx(NULL, pi, pl) == NN_ERR_INVALID_ARGUMENT, "NULL dataset");
    remove(pi);
    remove(pl);
    remove(pb);
}

/* ---- nn_dataset_shuffle ---------------------------------------------------------- */

/* Row r of a float dataset built by shuffle_float_ds holds k = x[r][0]:
 * x = {k, 100+k, 200+k}, y = {k, -k}.  Returns 1 when every row is such a
 * row with its own target and each k in [0,n) appears once; *moved counts
 * rows not at their start. */
static int float_rows_ok(const nn_dataset *ds, int *moved, char *why, size_t len) {
    int r, seen[64] = {0};
    *moved = 0;
    for (r = 0; r < ds->n; r++) {
        const float *x = ds->x + (size_t)r * 3, *y = ds->y + (size_t)r * 2;
        int k = (int)x[0];
        if (!(x[0] == (float)k && k >= 0 && k < ds->n && x[1] == 100.0f + k && x[2] == 200.0f + k)) {
            snprintf(why, len, "row %d: x = {%g, %g, %g} is not a row of the dataset", r, (double)x[0], (double)x[1],
                     (double)x[2]);
            return 0;
        }
        if (y[0] != (float)k || y[1] != (float)-k) {
            snprintf(why, len, "row %d: x of row %d with y = {%g, %g} (pair split)", r, k, (double)y[0], (double)y[1]);
            return 0;
        }
        if (seen[k]++) {
            snprintf(why, len, "row %d appears twice", k);
            return 0;
        }
        *moved += k != r;
    }
    return 1;
}
static int shuffle_float_ds(nn_dataset *ds, int n) {
    float x[64 * 3], y[64 * 2];
    int i;
    for (i = 0; i < n; i++) {
        x[i * 3] = (float)i;
        x[i * 3 + 1] = 100.0f + (float)i;
        x[i * 3 + 2] = 200.0f + (float)i;
        y[i * 2] = (float)i;
        y[i * 2 + 1] = (float)-i;
    }
    return nn_dataset_from_arrays(ds, n, nn_shape1(3), x, 2, y) == NN_OK;
}

static void shuffle_datasets(void) {
    enum { N = 20 };
    nn_dataset a, b, c;
    char why[160];
    int moved, i;
    nn_status st;
    tt_ctx("io: nn_dataset_shuffle (float)");
    if (!TT_CHECK(shuffle_float_ds(&a, N) && shuffle_float_ds(&b, N) && shuffle_float_ds(&c, N), "datasets")) return;
    st = nn_dataset_shuffle(&a, 1);
    TT_CHECK(st == NN_OK, "shuffle: %s", nn_strerror(st));
    why[0] = 0;
    TT_CHECK(float_rows_ok(&a, &moved, why, sizeof why), "after shuffle: %s", why);
    TT_CHECK(moved >= N / 2, "shuffle of %d rows moved only %d", N, moved);
    TT_CHECK(a.n == N && a.x_dim == 3 && a.y_dim == 2 && a.shape.ndim == 1 && a.shape.d[0] == 3 && a.owns == 1,
             "shuffle changed the dataset's fields");
    TT_CHECK(nn_dataset_shuffle(&b, 1) == NN_OK && nn_dataset_shuffle(&c, 2) == NN_OK, "shuffle");
    TT_CHECK(memcmp(a.x, b.x, N * 3 * sizeof(float)) == 0 && memcmp(a.y, b.y, N * 2 * sizeof(float)) == 0,
             "the same seed gave another order");
    TT_CHECK(memcmp(a.x, c.x, N * 3 * sizeof(float)) != 0, "seeds 1 and 2 gave the same order");
    TT_CHECK(float_rows_ok(&c, &moved, why, sizeof why), "after shuffle with seed 2: %s", why);
    /* shuffling again continues from the shuffled order (and stays a permutation) */
    TT_CHECK(nn_dataset_shuffle(&a, 1) == NN_OK && float_rows_ok(&a, &moved, why, sizeof why),
             "second shuffle: %s", why);
    nn_dataset_free(&b);
    nn_dataset_free(&c);

    /* a view (nn_dataset_split) shuffles the memory it shares, and only it */
    tt_ctx("io: nn_dataset_shuffle of a split view");
    if (TT_CHECK(shuffle_float_ds(&b, N), "dataset")) {
        nn_dataset f, s;
        int ok = 1;
        if (TT_CHECK(nn_dataset_split(&b, 0.5f, &f, &s) == NN_OK, "split")) {
            TT_CHECK(nn_dataset_shuffle(&s, 3) == NN_OK, "shuffle the second part");
            for (i = 0; i < f.n; i++) ok &= b.x[i * 3] == (float)i && b.y[i * 2] == (float)i;
            TT_CHECK(ok, "shuffling the second part of a split moved rows of the first");
            TT_CHECK(float_rows_ok(&b, &moved, why, sizeof why), "the whole after shuffling a view: %s", why);
            TT_CHECK(moved > 0, "the view was not shuffled");
        }
        nn_dataset_free(&b);
    }

    /* every order equally likely: the 6 orders of 3 rows over 6000 seeds */
    tt_ctx("io: nn_dataset_shuffle is uniform");
    if (TT_CHECK(shuffle_float_ds(&b, 3), "dataset")) {
        long cnt[6] = {0, 0, 0, 0, 0, 0};
        int seed, lo = 6000, hi = 0, bad = 0;
        for (seed = 0; seed < 6000; seed++) {
            int p0, p1;
            for (i = 0; i < 3; i++) { /* restore 0,1,2 */
                b.x[i * 3] = (float)i, b.x[i * 3 + 1] = 100.0f + (float)i, b.x[i * 3 + 2] = 200.0f + (float)i;
                b.y[i * 2] = (float)i, b.y[i * 2 + 1] = (float)-i;
            }
            nn_dataset_shuffle(&b, (uint64_t)seed * 7919u + 1u);
            if (!float_rows_ok(&b, &moved, why, sizeof why)) bad++;
            p0 = (int)b.x[0];
            p1 = (int)b.x[3];
            if (p0 >= 0 && p0 < 3 && p1 >= 0 && p1 < 3) cnt[p0 * 2 + (p1 > p0 ? p1 - 1 : p1)]++;
        }
        for (i = 0; i < 6; i++) {
            if (cnt[i] < lo) lo = (int)cnt[i];
            if (cnt[i] > hi) hi = (int)cnt[i];
        }
        TT_CHECK(bad == 0, "%d of 6000 shuffles of 3 rows were not permutations", bad);
        TT_CHECK(lo >= 850 && hi <= 1150,
                 "orders of 3 rows over 6000 seeds: between %d and %d times each (1000 +- 150)", lo, hi);
        nn_dataset_free(&b);
    }

    /* one row: nothing to do, still OK */
    tt_ctx("io: nn_dataset_shuffle of one row");
    if (TT_CHECK(shuffle_float_ds(&b, 1), "dataset")) {
        TT_CHECK(nn_dataset_shuffle(&b, 5) == NN_OK, "shuffle of one row");
        TT_CHECK(b.n == 1 && b.x[0] == 0.0f && b.x[2] == 200.0f && b.y[0] == 0.0f, "the one row changed");
        nn_dataset_free(&b);
    }
    /* no targets (y_dim 0) */
    {
        float x0[N * 3];
        for (i = 0; i < N * 3; i++) x0[i] = (float)(i / 3) + 0.25f * (float)(i % 3);
        if (TT_CHECK(nn_dataset_from_arrays(&b, N, nn_shape1(3), x0, 0, NULL) == NN_OK, "dataset without targets")) {
            int seen[N] = {0}, ok = 1;
            TT_CHECK(nn_dataset_shuffle(&b, 9) == NN_OK, "shuffle of a dataset without targets");
            for (i = 0; i < N; i++) {
                int k = (int)b.x[i * 3];
                ok &= k >= 0 && k < N && b.x[i * 3 + 1] == (float)k + 0.25f && b.x[i * 3 + 2] == (float)k + 0.5f;
                if (k >= 0 && k < N) ok &= seen[k]++ == 0;
            }
            TT_CHECK(ok, "rows without targets: not a permutation of whole rows");
            nn_dataset_free(&b);
        }
    }
    /* a dataset made by hand: y NULL with y_dim 0 (no pointer arithmetic on
     * NULL: clang's UBSan), and both x and x_u8 (both move, so whichever
     * nn_dataset_get_x reads stays with its row) */
    {
        float xf[N * 2], yv[N];
        unsigned char xu[N * 2];
        nn_dataset h;
        int ok = 1;
        memset(&h, 0, sizeof h);
        for (i = 0; i < N; i++) {
            xf[2 * i] = xf[2 * i + 1] = (float)i;
            xu[2 * i] = xu[2 * i + 1] = (unsigned char)i;
            yv[i] = (float)i;
        }
        h.n = N;
        h.shape = nn_shape1(2);
        h.x_dim = 2;
        h.x = xf;
        h.x_scale = 1.0f;
        TT_CHECK(nn_dataset_shuffle(&h, 5) == NN_OK, "shuffle with y NULL and y_dim 0");
        for (i = 0; i < N; i++) xf[2 * i] = xf[2 * i + 1] = (float)i; /* back in order */
        h.x_u8 = xu;
        h.y = yv;
        h.y_dim = 1;
        TT_CHECK(nn_dataset_shuffle(&h, 6) == NN_OK, "shuffle with both x and x_u8");
        for (i = 0; i < N; i++) {
            float got[2];
            nn_dataset_get_x(&h, i, got);
            ok &= got[0] == yv[i] && xf[2 * i] == yv[i] && (float)xu[2 * i] == yv[i];
        }
        TT_CHECK(ok, "x, x_u8 and y rows moved together");
    }
    /* errors */
    tt_ctx("io: nn_dataset_shuffle errors");
    TT_EQ_INT(nn_dataset_shuffle(NULL, 1), NN_ERR_INVALID_ARGUMENT);
    memset(&b, 0, sizeof b);
    TT_EQ_INT(nn_dataset_shuffle(&b, 1), NN_ERR_INVALID_ARGUMENT);
    nn_dataset_free(&a);
    TT_EQ_INT(nn_dataset_shuffle(&a, 1), NN_ERR_INVALID_ARGUMENT); /* freed: emptied */
}

/* u8 images from an IDX pair: image k's pixels are 10k + p, its label k */
static void shuffle_idx(void) {
    enum { NI = 9, R = 2, C = 3 };
    unsigned char img[16 + NI * R * C], lab[8 + NI];
    uint32_t d3[3] = {NI, R, C}, d1[1] = {NI};
    char pi[256], pl[256];
    size_t hi, hl, i;
    nn_dataset ds, d2;
    nn_status st;
    tt_ctx("io: nn_dataset_shuffle of u8 images (IDX)");
    tt_tmp_name("shuf_img.idx", pi, sizeof pi);
    tt_tmp_name("shuf_lab.idx", pl, sizeof pl);
    hi = idx_header(img, 0x08, 3, d3);
    for (i = 0; i < NI * R * C; i++) img[hi + i] = (unsigned char)(10 * (i / (R * C)) + i % (R * C));
    hl = idx_header(lab, 0x08, 1, d1);
    for (i = 0; i < NI; i++) lab[hl + i] = (unsigned char)i;
    tt_write_bytes(pi, img, hi + NI * R * C);
    tt_write_bytes(pl, lab, hl + NI);
    st = nn_dataset_load_idx(&ds, pi, pl);
    if (TT_CHECK(st == NN_OK, "load: %s", nn_strerror(st)) && TT_CHECK(ds.x_u8 != NULL && ds.x == NULL, "u8-backed")) {
        int seen[NI] = {0}, ok = 1, moved = 0, r;
        float row[R * C];
        st = nn_dataset_shuffle(&ds, 4);
        TT_CHECK(st == NN_OK, "shuffle: %s", nn_strerror(st));
        for (r = 0; r < NI; r++) {
            int k = (int)ds.y[r], p;
            if (!(k >= 0 && k < NI)) {
                ok = 0;
                continue;
            }
            for (p = 0; p < R * C; p++) ok &= ds.x_u8[(size_t)r * R * C + p] == (unsigned char)(10 * k + p);
            ok &= seen[k]++ == 0;
            moved += k != r;
            nn_dataset_get_x(&ds, r, row);
            ok &= fabsf(row[1] - (float)(10 * k + 1) / 255.0f) < 1e-6f;
        }
        TT_CHECK(ok, "u8 rows and labels: not the same pairs, or not a permutation");
        TT_CHECK(moved > 0, "shuffle of %d u8 rows moved none", NI);
        TT_CHECK(ds.num_classes == NI && ds.x_scale > 0.0f, "shuffle changed num_classes / x_scale");
        /* the same seed on a fresh copy: the same order */
        if (TT_CHECK(nn_dataset_load_idx(&d2, pi, pl) == NN_OK, "reload")) {
            TT_CHECK(nn_dataset_shuffle(&d2, 4) == NN_OK, "shuffle");
            TT_CHECK(memcmp(d2.x_u8, ds.x_u8, NI * R * C) == 0 && memcmp(d2.y, ds.y, NI * sizeof(float)) == 0,
                     "the same seed gave another order of u8 rows");
            nn_dataset_free(&d2);
        }
        nn_dataset_free(&ds);
    }
    remove(pi);
    remove(pl);
}

/* ---- CSV ------------------------------------------------------------------------ */

static nn_status load_csv_text(const char *path, const char *text, int header, int col, nn_dataset *ds) {
    tt_write_bytes(path, text, strlen(text));
    memset(ds, 0x5A, sizeof *ds);
    return nn_dataset_load_csv(ds, path, header, col);
}

static void csv_files(void) {
    char pc[256];
    nn_dataset ds;
    nn_status st;
    size_t i;
    static const float want_x[4] = {0.5f, 2.0f, -1.0f, 300.0f}, want_y[2] = {1.0f, 0.0f};
    static const struct {
        const char *what, *text;
        int header, col;
    } good[] = {
        {"header, label column 0", "label,a,b\n1,0.5,2\n0,-1,3e2\n", 1, 0},
        {"label column -1 (last)", "0.5,2,1\n-1,300,0\n", 0, -1},
        {"label column 1 (middle)", "0.5,1,2\n-1,0,300\n", 0, 1},
        {"CRLF, spaces, blank lines, no final newline", "label, a ,b\r\n\r\n 1 , 0.5 ,2\r\n\n0,-1,  3e2", 1, 0},
        {"header with numbers is still skipped", "9,9,9\n1,0.5,2\n0,-1,300\n", 1, 0},
    };
    static const struct {
        const char *what, *text;
        int header, col;
        nn_status want;
    } bad[] = {
        {"ragged rows (fewer columns)", "1,2,3\n4,5\n", 0, -1, NN_ERR_FORMAT},
        {"ragged rows (more columns)", "1,2\n3,4,5\n", 0, -1, NN_ERR_FORMAT},
        {"empty field", "1,,3\n4,5,6\n", 0, -1, NN_ERR_FORMAT},
        {"empty last field joins the next line", "1,2,3\n4,5,\n6\n", 0, -1, NN_ERR_FORMAT},
        {"non-numeric value", "1,2,3\n4,abc,6\n", 0, -1, NN_ERR_FORMAT},
        {"number followed by letters", "1,2,3\n4,5x,6\n", 0, -1, NN_ERR_FORMAT},
        {"header without has_header", "a,b,c\n1,2,3\n", 0, -1, NN_ERR_FORMAT},
        {"semicolons", "1;2;3\n4;5;6\n", 0, -1, NN_ERR_FORMAT},
        {"nan feature", "1,2,3\n4,nan,6\n", 0, -1, NN_ERR_NONFINITE},
        {"NaN label", "1,2,3\n4,5,NaN\n", 0, -1, NN_ERR_NONFINITE},
        {"inf feature", "1,inf,3\n4,5,6\n", 0, -1, NN_ERR_NONFINITE},
        {"-Infinity feature", "1,-Infinity,3\n4,5,6\n", 0, -1, NN_ERR_NONFINITE},
        {"1e999 (overflows to inf)", "1,1e999,3\n4,5,6\n", 0, -1, NN_ERR_NONFINITE},
        {"label column 3 of 3", "1,2,3\n4,5,6\n", 0, 3, NN_ERR_FORMAT},
        {"label column -5 (only -1 means the last)", "1,2,3\n4,5,6\n", 0, -5, NN_ERR_INVALID_ARGUMENT},
        {"only one column", "1\n2\n3\n", 0, -1, NN_ERR_FORMAT},
        {"empty file", "", 0, -1, NN_ERR_FORMAT},
        {"header only", "a,b,c\n", 1, -1, NN_ERR_FORMAT},
        {"blank lines only", "\n\n\r\n", 0, -1, NN_ERR_FORMAT},
    };
    tt_ctx("io: CSV loader");
    tt_tmp_name("data.csv", pc, sizeof pc);
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        st = load_csv_text(pc, good[i].text, good[i].header, good[i].col, &ds);
        if (!TT_CHECK(st == NN_OK, "CSV %s: %s", good[i].what, nn_strerror(st))) continue;
        TT_CHECK(ds.n == 2 && ds.x_dim == 2 && ds.y_dim == 1 && ds.shape.ndim == 1 && ds.shape.d[0] == 2 &&
                     ds.num_classes == 2 && ds.x && ds.y,
                 "CSV %s: n=%d x_dim=%lu y_dim=%d classes %d", good[i].what, ds.n, (unsigned long)ds.x_dim, ds.y_dim,
                 ds.num_classes);
        if (ds.x && ds.y && ds.n == 2 && ds.x_dim == 2) {
            TT_SAME_ARR(good[i].what, ds.x, want_x, 4);
            TT_SAME_ARR(good[i].what, ds.y, want_y, 2);
        }
        nn_dataset_free(&ds);
    }
    /* non-integer targets: a regression set (num_classes 0) */
    st = load_csv_text(pc, "1,2,0.5\n3,4,-2.25\n5,6,7\n", 0, -1, &ds);
    if (TT_CHECK(st == NN_OK, "CSV with real-valued targets: %s", nn_strerror(st))) {
        TT_CHECK(ds.n == 3 && ds.num_classes == 0 && ds.y[1] == -2.25f, "n=%d classes=%d y[1]=%g", ds.n, ds.num_classes,
                 (double)ds.y[1]);
        nn_dataset_free(&ds);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st = load_csv_text(pc, bad[i].text, bad[i].header, bad[i].col, &ds);
        TT_CHECK(st == bad[i].want, "CSV %s: %s, expected %s", bad[i].what, nn_strerror(st), nn_strerror(bad[i].want));
        if (st == NN_OK)
            nn_dataset_free(&ds);
        else
            TT_CHECK(ds.n == 0 && ds.x == NULL && ds.y == NULL && ds.owns == 0, "CSV %s: dataset not left empty",
                     bad[i].what);
    }
    st = nn_dataset_load_csv(&ds, "build/no/such/file.csv", 0, -1);
    TT_CHECK(st == NN_ERR_IO, "missing CSV file: %s", nn_strerror(st));
    remove(pc);
}

/* Crashes reported in the interop issue, as regression tests: an input
 * shape with dimensions past its ndim (a valid CRC over it made the
 * embedding write past its output), and sizes that wrapped. */
static void hostile_shapes(void) {
    char path[256], bad[256];
    unsigned char *good, *p;
    size_t n, arch;
    nn_model *m;
    nn_status st;
    nn_shape sh;
    nn_dataset ds;
    float x[8] = {0, 1, 2, 3, 0, 1, 2, 3};
    tt_ctx("io: input shapes with extra dimensions, sizes that wrap");
    sh.ndim = 1, sh.d[0] = 4, sh.d[1] = 3, sh.d[2] = 2;
    m = nn_model_new(sh);
    nn_embedding(m, 10, 8);
    TT_CHECK(nn_model_status(m) == NN_ERR_SHAPE, "nn_model_new((4) with d[1] = 3): %s",
             nn_strerror(nn_model_status(m)));
    nn_model_free(m);
    sh.ndim = 2, sh.d[0] = 4, sh.d[1] = 3, sh.d[2] = 2;
    m = nn_model_new(sh);
    TT_CHECK(nn_model_status(m) == NN_ERR_SHAPE, "nn_model_new((4,3) with d[2] = 2): %s",
             nn_strerror(nn_model_status(m)));
    nn_model_free(m);
    /* the same through a model file with a valid CRC */
    tt_tmp_name("emb.nnm", path, sizeof path);
    tt_tmp_name("emb_bad.nnm", bad, sizeof bad);
    m = nn_model_new(nn_shape1(4));
    nn_embedding(m, 10, 8);
    nn_flatten(m);
    nn_dense(m, 3, NN_SOFTMAX);
    nn_compile(m, nn_adam(0.01f), NN_LOSS_SPARSE_CATEGORICAL_CE);
    st = nn_save(m, path, 0);
    nn_model_free(m);
    good = tt_read_bytes(path, &n);
    arch = good ? section(good, n, 0x48435241u /* "ARCH" */, NULL) : 0;
    if (TT_CHECK(st == NN_OK && good && arch, "saving the embedding model")) {
        p = (unsigned char *)malloc(n);
        memcpy(p, good, n);
        put32(p + arch + 8, 3); /* input d[1] */
        fix_crc(p, n);
        st = load_bytes(bad, p, n, &m);
        TT_CHECK(st != NN_OK && !m, "an (n) input with d[1] = 3 behind a valid CRC: %s",
                 nn_strerror(st));
        if (m) {
            float out[2 * 32];
            (void)nn_predict(m, x, 2, out); /* ASan saw the overflow here */
            nn_model_free(m);
        }
        free(p);
    }
    free(good);
    /* datasets whose sizes wrap */
    sh = nn_shape3(1 << 21, 1 << 21, 1 << 22);
    TT_CHECK(nn_dataset_from_arrays(&ds, 1, sh, x, 0, NULL) == NN_ERR_SHAPE,
             "nn_dataset_from_arrays (2^21, 2^21, 2^22) (wrapped to 0 floats)");
    sh = nn_shape3(1 << 16, 1 << 16, 1 << 16);
    TT_CHECK(nn_dataset_from_arrays(&ds, 1, sh, x, 0, NULL) == NN_ERR_SHAPE,
             "nn_dataset_from_arrays (2^16, 2^16, 2^16) (2^48 floats)");
    sh.ndim = 1, sh.d[0] = 2, sh.d[1] = 2, sh.d[2] = 1;
    TT_CHECK(nn_dataset_from_arrays(&ds, 2, sh, x, 0, NULL) == NN_ERR_SHAPE,
             "nn_dataset_from_arrays: (2) with d[1] = 2");
    TT_CHECK(nn_dataset_from_arrays(&ds, 2, nn_shape1(4), x, 0, NULL) == NN_OK, "a small one");
    nn_dataset_free(&ds);
}

/* Files are portable: the same model written on x86-64 and on aarch64
 * (tests/fixtures/make_portable.c, under qemu for the latter) is the same
 * bytes, loads with every parameter and statistic bit for bit on either,
 * and saving what was loaded gives the file again.  make test checks both
 * files on x86-64, make test-arm on aarch64. */
#include "fixtures/portable.h"
static void portable_files(void) {
    static const char *const arch[2] = {"x86_64", "aarch64"};
    char path[256], out[256];
    int a;
    tt_tmp_name("portable_resaved.nnm", out, sizeof out);
    for (a = 0; a < 2; a++) {
        unsigned char *file = NULL, *again;
        size_t n = 0, n2, np, i, k = 100000, bad = 0;
        nn_model *m = NULL;
        nn_status st;
        int l, d;
        tt_ctx("io: a model file written on %s", arch[a]);
        for (d = 0; d < 2 && !file; d++) {
            snprintf(path, sizeof path, "%stests/fixtures/portable/%s.nnm", d ? "../" : "", arch[a]);
            file = tt_read_bytes(path, &n);
        }
        if (!TT_CHECK(file != NULL, "cannot read tests/fixtures/portable/%s.nnm", arch[a])) continue;
        st = nn_load(&m, path);
        if (TT_CHECK(st == NN_OK && m, "nn_load: %s", nn_strerror(st))) {
            const float *p = nn_model_params(m, &np);
            TT_EQ_INT(nn_model_num_layers(m), 4);
            for (i = 0; i < np; i++) {
                uint32_t u;
                size_t fi = i; /* its place in the file: dense weights are (in, units) there */
                for (l = 0; l < nn_model_num_layers(m); l++) {
                    size_t c;
                    const float *w = nn_layer_weights(m, l, &c);
                    if (w && strcmp(nn_layer_kind(m, l), "dense") == 0 && p + i >= w && p + i < w + c) {
                        nn_shape o = nn_layer_output_shape(m, l);
                        size_t U = (size_t)o.d[o.ndim - 1], in = c / U, e = (size_t)(p + i - w);
                        fi = (size_t)(w - p) + (e % in) * U + e / in;
                    }
                }
                memcpy(&u, p + i, 4);
                bad += u != portable_bits(fi);
            }
            for (l = 0; l < nn_model_num_layers(m); l++) {
                size_t c;
                const float *b = nn_layer_buffers(m, l, &c);
                for (i = 0; b && i < c; i++) {
                    uint32_t u;
                    memcpy(&u, b + i, 4);
                    bad += u != portable_bits(k++);
                }
            }
            TT_CHECK(bad == 0 && k > 100000, "%lu of %lu parameters and statistics differ in their bits",
                     (unsigned long)bad, (unsigned long)(np + k - 100000));
            st = nn_save(m, out, 1);
            again = tt_read_bytes(out, &n2);
            TT_CHECK(st == NN_OK && again && n2 == n && memcmp(again, file, n) == 0,
                     "saved again here: the same %lu bytes", (unsigned long)n);
            free(again);
        }
        nn_model_free(m);
        free(file);
    }
    remove(out);
}

void test_io(void) {
    nn_backend b[2];
    int i;
    b[0] = NN_BACKEND_SCALAR;
    b[1] = NN_BACKEND_AUTO;
    for (i = 0; i < 2; i++) {
        tt_set_backend(b[i]);
        round_trip();
        round_trip_small();
        round_trip_gap_norm();
    }
    damaged_files();
    hostile_shapes();
    portable_files();
    idx_files();
    csv_files();
    shuffle_datasets();
    shuffle_idx();
}
