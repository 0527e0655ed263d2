/* tests/fuzz/gen_seeds.c - writes the seed corpora of the fuzz harnesses
 * (committed; rerun after a format change):
 *
 *   cc -O1 -I. tests/fuzz/gen_seeds.c -o build/gen_seeds -lm && build/gen_seeds tests/fuzz
 *
 * model/: tiny models of every layer kind, each saved with and without
 *         optimizer state (format 2); int8 models (q8_*.nnm: nn_quantize
 *         of a model trained two steps, calibrated on 32 made-up samples,
 *         nn_save(q, path, 0): the QINT section); the format-1 files of
 *         tests/fixtures/v1 are copied there as v1_*.nnm by hand (cp).
 * idx/:   u32 LE images length, images (IDX u8 3-dim), labels (IDX u8 1-dim)
 * csv/:   option byte (bit 0 header), label_col byte (signed), the CSV text
 * safetensors/: nn_save_safetensors files of fuzz_safetensors' fixed models
 *         (fz_st_model, trained two steps) and of other layer kinds (for
 *         nn_load), and variants of the fixed ones rewritten here: every
 *         float tensor as F16, BF16 or F64 (with NaN, infinities, halves'
 *         subnormals, F64 beyond float's range), mixed dtypes, names and
 *         metadata keys with \u escapes and UTF-8, data in reverse order
 *         under a header with whitespace. */
#include "fuzz_common.h" /* nn.h's implementation, fz_st_model */

#include <math.h>
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

/* an LCG in [-1, 1): the same made-up data on every libc */
static float q8_rand(unsigned *st) {
    *st = *st * 1103515245u + 12345u;
    return (float)((*st >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

/* Compile m, train it two steps and quantize it, calibrated on 32 random
 * samples; save the int8 copy as model/q8_<name>.nnm (no optimizer state:
 * an int8 model has none). */
static void save_q8(nn_model *m, const char *name, nn_optimizer o, nn_loss loss) {
    enum { NS = 32 };
    size_t in, out, i;
    float *x, *y;
    unsigned st = 12345u;
    nn_dataset ds;
    nn_model *q = NULL;
    char p[512];
    if (nn_compile(m, o, loss) != NN_OK) {
        fprintf(stderr, "gen_seeds: %s: %s\n", name, nn_model_error(m));
        exit(1);
    }
    in = fz_shape_floats(nn_model_input_shape(m)), out = fz_shape_floats(nn_model_output_shape(m));
    x = (float *)malloc(NS * in * sizeof(float));
    y = (float *)malloc(NS * out * sizeof(float));
    if (!x || !y) exit(1);
    for (i = 0; i < NS * in; i++) x[i] = q8_rand(&st);
    for (i = 0; i < NS * out; i++) y[i] = i % out == (i / out) % out ? 1.0f : 0.0f; /* one-hot */
    if (nn_train_on_batch(m, x, y, NS, NULL, NULL) != NN_OK || nn_train_on_batch(m, x, y, NS, NULL, NULL) != NN_OK ||
        nn_dataset_from_arrays(&ds, NS, nn_model_input_shape(m), x, (int)out, y) != NN_OK) {
        fprintf(stderr, "gen_seeds: %s: %s\n", name, nn_model_error(m));
        exit(1);
    }
    if (nn_quantize(m, &ds, NS, &q) != NN_OK) {
        fprintf(stderr, "gen_seeds: quantizing %s: %s\n", name, nn_model_error(m));
        exit(1);
    }
    snprintf(p, sizeof p, "%s/model/q8_%s.nnm", dir, name);
    if (nn_save(q, p, 0) != NN_OK) {
        fprintf(stderr, "gen_seeds: cannot write %s\n", p);
        exit(1);
    }
    nn_model_free(q);
    nn_dataset_free(&ds);
    nn_model_free(m);
    free(x), free(y);
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

/* ---- safetensors ------------------------------------------------------- */
static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *b;
    long sz;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) exit(1);
    b = (unsigned char *)malloc((size_t)sz + 1);
    if (!b || fread(b, 1, (size_t)sz, f) != (size_t)sz) exit(1);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

/* a few training steps on made-up data: statistics, steps and weights move */
static void st_train(nn_model *m, int k) {
    size_t in = fz_shape_floats(nn_model_input_shape(m)), out = fz_shape_floats(nn_model_output_shape(m));
    float x[4 * 128], y[4 * 16];
    size_t i;
    int s;
    if (in > 128 || out > 16) exit(1);
    for (i = 0; i < 4 * in; i++) x[i] = k == 1 ? (float)(i * 7 % 10) : (float)sin(0.3 * (double)i);
    for (i = 0; i < 4 * out; i++) y[i] = k == 0 ? (float)(i % 3) : k == 2 ? (float)(i % 3 == 0) : 0.5f;
    for (s = 0; s < 2; s++)
        if (nn_train_on_batch(m, x, y, 4, NULL, NULL) != NN_OK) {
            fprintf(stderr, "gen_seeds: training model %d: %s\n", k, nn_model_error(m));
            exit(1);
        }
}

static void st_save(nn_model *m, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/safetensors/%s.safetensors", dir, name);
    if (nn_save_safetensors(m, p) != NN_OK) {
        fprintf(stderr, "gen_seeds: cannot write %s\n", p);
        exit(1);
    }
}

/* float -> IEEE half, round to nearest even (infinity beyond its range) */
static uint16_t f2h(float f) {
    uint32_t u, s, a, h, rem;
    memcpy(&u, &f, 4);
    s = (u >> 16) & 0x8000u, a = u & 0x7FFFFFFFu;
    if (a >= 0x7F800000u) return (uint16_t)(s | 0x7C00u | (a > 0x7F800000u ? 0x200u : 0));
    if (a >= 0x477FF000u) return (uint16_t)(s | 0x7C00u);
    if (a < 0x38800000u) { /* a half subnormal: v * 2^24, rounded */
        float v;
        memcpy(&v, &a, 4);
        return (uint16_t)(s | (uint32_t)lrintf(v * 16777216.0f));
    }
    a -= 0x38000000u;
    h = a >> 13, rem = a & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)(s | h);
}
static uint16_t f2bf(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
}

enum { V_F16 = 1, V_BF16, V_F64, V_MIXED, V_ESCAPED, V_REVERSED, V_F16_SPECIAL, V_F64_SPECIAL };

/* "0.weight" -> "\u0030\u002ew\u0065ight": every '.', the first
 * character and every 'e' escaped */
static void esc_name(char *out, const char *in) {
    size_t o = 0, i;
    for (i = 0; in[i]; i++) {
        if (i == 0 || in[i] == '.' || in[i] == 'e') o += (size_t)sprintf(out + o, "\\u%04x", (unsigned)(unsigned char)in[i]);
        else out[o++] = in[i];
    }
    out[o] = 0;
}

/* Rewrite the F32 file nn_save_safetensors wrote at src (its header in
 * nn.h's own layout: metadata, then "name":{"dtype","shape","data_offsets"}
 * in data order) as variant v into dst. */
static void st_variant(const char *src, const char *dst, int v) {
    size_t n, hl, i, ne = 0, hn = 0, dn = 0, pos;
    unsigned char *f = slurp(src, &n), *data;
    char *h, *p, *out = (char *)malloc(1 << 20);
    static const char *mixed[] = {"F16", "BF16", "F64", "F32"};
    struct {
        char name[128], dtype[8], shape[64];
        unsigned long long b, e, nb, ne_;
        const char *to;
    } t[64];
    unsigned char *od = (unsigned char *)malloc(n * 2 + 64);
    char md[4096];
    const char *ws = v == V_REVERSED ? " \n\t" : "";
    if (!out || !od) exit(1);
    hl = 0;
    for (i = 0; i < 8; i++) hl |= (size_t)f[i] << (8 * i);
    h = (char *)malloc(hl + 1);
    memcpy(h, f + 8, hl);
    h[hl] = 0;
    data = f + 8 + hl;
    /* the metadata object, as written */
    p = strstr(h, "\"__metadata__\":{");
    if (!p) exit(1);
    p += strlen("\"__metadata__\":{");
    i = (size_t)(strchr(p, '}') - p);
    memcpy(md, p, i);
    md[i] = 0;
    p += i + 1;
    while (*p == ',') {
        char *q;
        p += 2; /* ,"  */
        q = strchr(p, '"');
        memcpy(t[ne].name, p, (size_t)(q - p));
        t[ne].name[q - p] = 0;
        p = strstr(q, "\"dtype\":\"") + 9;
        q = strchr(p, '"');
        memcpy(t[ne].dtype, p, (size_t)(q - p));
        t[ne].dtype[q - p] = 0;
        p = strstr(q, "\"shape\":[") + 9;
        q = strchr(p, ']');
        memcpy(t[ne].shape, p, (size_t)(q - p));
        t[ne].shape[q - p] = 0;
        p = strstr(q, "\"data_offsets\":[") + 16;
        if (sscanf(p, "%llu,%llu", &t[ne].b, &t[ne].e) != 2) exit(1);
        p = strchr(p, '}') + 1;
        if (++ne == 64) exit(1);
    }
    /* the data, converted */
    for (i = 0; i < ne; i++) {
        size_t k = v == V_REVERSED ? ne - 1 - i : i, c, j;
        const unsigned char *sp = data + t[k].b;
        int isf = strcmp(t[k].dtype, "F32") == 0;
        const char *to = !isf ? t[k].dtype
                         : v == V_F16 || v == V_F16_SPECIAL ? "F16"
                         : v == V_BF16 ? "BF16"
                         : v == V_F64 || v == V_F64_SPECIAL ? "F64"
                         : v == V_MIXED ? mixed[k % 4] : "F32";
        c = isf ? (size_t)(t[k].e - t[k].b) / 4 : 0;
        t[k].to = to;
        t[k].nb = dn;
        if (!isf || strcmp(to, "F32") == 0) {
            memcpy(od + dn, sp, (size_t)(t[k].e - t[k].b));
            dn += (size_t)(t[k].e - t[k].b);
        } else {
            for (j = 0; j < c; j++) {
                float x;
                uint32_t u = (uint32_t)sp[4 * j] | ((uint32_t)sp[4 * j + 1] << 8) |
                             ((uint32_t)sp[4 * j + 2] << 16) | ((uint32_t)sp[4 * j + 3] << 24);
                memcpy(&x, &u, 4);
                if (to[1] == '1') { /* F16 */
                    static const uint16_t sp16[] = {0x7C00, 0xFC00, 0x7E01, 0x0001, 0x8000, 0x7BFF, 0x03FF, 0x0400};
                    uint16_t hv = v == V_F16_SPECIAL && j < 8 ? sp16[j] : f2h(x);
                    od[dn++] = (unsigned char)hv, od[dn++] = (unsigned char)(hv >> 8);
                } else if (to[0] == 'B') {
                    uint16_t hv = f2bf(x);
                    od[dn++] = (unsigned char)hv, od[dn++] = (unsigned char)(hv >> 8);
                } else {
                    static const double sp64[] = {1e300, -1e300, 1e-300, 3.4028235677973366e38, -0.0};
                    double d = v == V_F64_SPECIAL && j < 5 ? sp64[j] : (double)x;
                    uint64_t w;
                    int b;
                    if (v == V_F64_SPECIAL && j == 5) d = nan("");
                    memcpy(&w, &d, 8);
                    for (b = 0; b < 8; b++) od[dn++] = (unsigned char)(w >> (8 * b));
                }
            }
        }
        t[k].ne_ = dn;
    }
    /* the header */
    hn += (size_t)sprintf(out + hn, "{%s\"__metadata__\"%s:%s{", ws, ws, ws);
    if (v == V_ESCAPED) { /* keys escaped, and a value of escapes and raw UTF-8 */
        char *a = strstr(md, "\"nnh.arch\""), *nm = strstr(md, "\"nnh.names\"");
        size_t pre = (size_t)(a - md);
        memcpy(out + hn, md, pre);
        hn += pre;
        hn += (size_t)sprintf(out + hn, "\"\\u006enh\\u002earch\"");
        a += strlen("\"nnh.arch\"");
        if (nm) {
            memcpy(out + hn, a, (size_t)(nm - a));
            hn += (size_t)(nm - a);
            hn += (size_t)sprintf(out + hn, "\"nnh\\u002enames\"%s", nm + strlen("\"nnh.names\""));
        } else {
            hn += (size_t)sprintf(out + hn, "%s", a);
        }
        hn += (size_t)sprintf(out + hn, ",\"n\\/te\":\"caf\\u00e9 \\ud83d\\ude00 \xe2\x82\xac\\t\\\"\\\\\"");
    } else {
        hn += (size_t)sprintf(out + hn, "%s", md);
    }
    hn += (size_t)sprintf(out + hn, "}");
    for (i = 0; i < ne; i++) {
        char nm[512];
        if (v == V_ESCAPED) esc_name(nm, t[i].name);
        else strcpy(nm, t[i].name);
        hn += (size_t)sprintf(out + hn, ",%s\"%s\"%s:%s{\"dtype\":%s\"%s\",\"shape\":%s[%s],%s\"data_offsets\":[%llu,%s%llu]}",
                              ws, nm, ws, ws, ws, t[i].to, ws, t[i].shape, ws, t[i].nb, ws, t[i].ne_);
    }
    hn += (size_t)sprintf(out + hn, "%s}", ws);
    while ((8 + hn) % 8) out[hn++] = ' ';
    {
        unsigned char *b = (unsigned char *)malloc(8 + hn + dn);
        char name[512];
        const char *base = strrchr(dst, '/');
        if (!b) exit(1);
        for (pos = 0; pos < 8; pos++) b[pos] = (unsigned char)((unsigned long long)hn >> (8 * pos));
        memcpy(b + 8, out, hn);
        memcpy(b + 8 + hn, od, dn);
        snprintf(name, sizeof name, "%s", base ? base + 1 : dst);
        put("safetensors", name, b, 8 + hn + dn);
        free(b);
    }
    free(f), free(h), free(out), free(od);
}

static void safetensors_seeds(void) {
    static const char *vname[] = {"", "f16", "bf16", "f64", "mixed", "escaped", "reversed", "f16_special",
                                  "f64_special"};
    nn_model *m;
    int k, v;
    for (k = 0; k < FZ_ST_MODELS; k++) {
        char src[512], dst[512], name[64];
        m = fz_st_model(k);
        st_train(m, k);
        snprintf(name, sizeof name, "fixed%d", k);
        st_save(m, name);
        nn_model_free(m);
        snprintf(src, sizeof src, "%s/safetensors/fixed%d.safetensors", dir, k);
        for (v = V_F16; v <= V_F64_SPECIAL; v++) {
            snprintf(dst, sizeof dst, "fixed%d_%s.safetensors", k, vname[v]);
            st_variant(src, dst, v);
        }
    }
    /* for nn_load: more layer kinds */
    m = nn_model_new(nn_shape3(6, 6, 3));
    nn_conv2d_ex(m, 4, 3, 3, 1, 1, NN_LINEAR);
    nn_use_bias(m, 0);
    nn_batchnorm(m);
    nn_activation_layer(m, NN_RELU);
    nn_maxpool2d_ex(m, 2, 1);
    nn_avgpool2d_ex(m, 2, 1);
    nn_upsample2d(m, 2);
    nn_conv2d(m, 8, 3, NN_TANH);
    nn_global_avgpool2d(m);
    nn_dense(m, 5, NN_LEAKY_RELU);
    nn_leaky_relu_slope(m, 0.1f);
    nn_use_bias(m, 0);
    nn_dense(m, 2, NN_SIGMOID);
    if (nn_compile(m, nn_rmsprop(0.01f), NN_LOSS_BINARY_CE) != NN_OK) exit(1);
    nn_layer_set_name(m, 0, "features.0");
    nn_layer_set_name(m, 11, "classifier");
    st_save(m, "misc_image");
    nn_model_free(m);

    m = nn_model_new(nn_shape2(5, 3));
    nn_normalization(m);
    nn_gru(m, 4, 1);
    nn_dense(m, 3, NN_TANH);
    nn_lstm(m, 2, 0);
    nn_dense(m, 1, NN_LINEAR);
    if (nn_compile(m, nn_sgd_momentum(0.1f, 0.9f, 1), NN_LOSS_MSE) != NN_OK) exit(1);
    st_save(m, "misc_seq");
    nn_model_free(m);

    m = nn_model_new(nn_shape3(8, 8, 8)); /* Winograd */
    nn_conv2d(m, 8, 3, NN_RELU);
    nn_flatten(m);
    nn_dense(m, 2, NN_LINEAR);
    if (nn_compile(m, nn_adamw(0.01f, 0.01f), NN_LOSS_BINARY_CE_FROM_LOGITS) != NN_OK) exit(1);
    st_save(m, "misc_winograd");
    nn_model_free(m);
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

    /* int8 (nn_quantize): a CNN (conv relu, its 2x2 max-pool, conv,
     * flatten, dense relu, dense softmax) */
    m = nn_model_new(nn_shape3(8, 8, 1));
    nn_conv2d_ex(m, 4, 3, 3, 1, 1, NN_RELU);
    nn_maxpool2d(m, 2);
    nn_conv2d(m, 4, 3, NN_RELU);
    nn_flatten(m);
    nn_dense(m, 8, NN_RELU);
    nn_dense(m, 3, NN_SOFTMAX);
    save_q8(m, "cnn", nn_adam(0.01f), NN_LOSS_CATEGORICAL_CE);

    /* an MLP: tanh, batch norm between the dense layers (folded) */
    m = nn_model_new(nn_shape1(6));
    nn_dense(m, 8, NN_TANH);
    nn_batchnorm(m);
    nn_dense(m, 8, NN_LINEAR);
    nn_batchnorm(m);
    nn_activation_layer(m, NN_TANH);
    nn_dense(m, 3, NN_LINEAR);
    save_q8(m, "mlp_tanh_bn", nn_sgd(0.05f), NN_LOSS_MSE);

    /* a conv, a padded average pool, a conv, global average pooling */
    m = nn_model_new(nn_shape3(7, 7, 2));
    nn_conv2d_ex(m, 4, 3, 3, 1, 1, NN_RELU);
    nn_avgpool2d_ex(m, 2, 1);
    nn_conv2d(m, 5, 3, NN_LINEAR);
    nn_global_avgpool2d(m);
    nn_dense(m, 2, NN_SIGMOID);
    save_q8(m, "conv_avgpool_gap", nn_adam(0.01f), NN_LOSS_BINARY_CE);

    idx_seed("tiny_2x3x3", 2, 3, 3);
    idx_seed("one_1x1x1", 1, 1, 1);
    idx_seed("ten_10x4x4", 10, 4, 4);

    csv_seed("header_last", 1, -1, "a,b,c\n0.5,1,0\n-2,3e2,1\n4, 5 ,2\n");
    csv_seed("noheader_first", 0, 0, "1,0.25,-0.5\r\n0,1e-3,2.5\r\n\r\n2,7,8\r\n");
    csv_seed("regression", 0, 2, "1.5,2,3.25,4\n0x1p3,-1,0.75,2\n");
    csv_seed("blank_lines", 1, 1, "h1,h2\n\n  1,2\n\t3,4\n\n5,6");

    safetensors_seeds();
    return 0;
}
