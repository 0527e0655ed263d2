/* safetensors (nn.h section 8.4): round trips of every layer kind through
 * nn_save_safetensors, nn_load (which rebuilds the model from the file's
 * metadata) and nn_load_safetensors; PyTorch's layouts checked element by
 * element on files written here by hand (the flatten permutation, conv
 * (F,C,KH,KW), LSTM gates, the summed RNN biases) in F32, F16, BF16 and
 * F64; and hostile headers and data, each refused with its status and a
 * message, the model left unchanged.  Files written by PyTorch itself:
 * tests/test_torch_files.c. */
#include "nn.h"
#include "tt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void test_safetensors(void);

/* ---- a tiny writer for hand-made files ---------------------------------- */
typedef struct st_tensor {
    const char *name, *dtype;
    int ndim;
    long shape[4];
    const void *data;
    size_t bytes;
} st_tensor;

/* header text as given (NULL: built from t), padded with spaces to 8 */
static int st_write(const char *path, const char *meta, const char *raw_header, const st_tensor *t,
                    int n) {
    char *h = (char *)malloc(65536);
    size_t hl = 0, off = 0, total = 0, i;
    unsigned char *buf;
    int k, ok;
    if (!h) return 0;
    if (raw_header) {
        hl = (size_t)snprintf(h, 65536, "%s", raw_header);
    } else {
        hl += (size_t)snprintf(h + hl, 65536 - hl, "{");
        if (meta) hl += (size_t)snprintf(h + hl, 65536 - hl, "\"__metadata__\":{%s}%s", meta, n ? "," : "");
        for (k = 0; k < n; k++) {
            int d;
            hl += (size_t)snprintf(h + hl, 65536 - hl, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", k ? "," : "",
                                   t[k].name, t[k].dtype);
            for (d = 0; d < t[k].ndim; d++)
                hl += (size_t)snprintf(h + hl, 65536 - hl, "%s%ld", d ? "," : "", t[k].shape[d]);
            hl += (size_t)snprintf(h + hl, 65536 - hl, "],\"data_offsets\":[%lu,%lu]}", (unsigned long)off,
                                   (unsigned long)(off + t[k].bytes));
            off += t[k].bytes;
        }
        hl += (size_t)snprintf(h + hl, 65536 - hl, "}");
    }
    while ((8 + hl) % 8) h[hl++] = ' ';
    for (k = 0; k < n; k++) total += t[k].bytes;
    buf = (unsigned char *)malloc(8 + hl + total + 1);
    for (i = 0; i < 8; i++) buf[i] = (unsigned char)((unsigned long long)hl >> (8 * i));
    memcpy(buf + 8, h, hl);
    off = 8 + hl;
    for (k = 0; k < n; k++) {
        if (t[k].bytes) memcpy(buf + off, t[k].data, t[k].bytes);
        off += t[k].bytes;
    }
    ok = tt_write_bytes(path, buf, off);
    free(buf);
    free(h);
    return ok;
}

/* little-endian encodings of a float array */
static void st_enc(const float *v, size_t n, const char *dtype, unsigned char *out) {
    size_t i;
    for (i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        if (strcmp(dtype, "F32") == 0) {
            int k;
            for (k = 0; k < 4; k++) out[4 * i + k] = (unsigned char)(u >> (8 * k));
        } else if (strcmp(dtype, "BF16") == 0) { /* the values here are exact in bf16 */
            out[2 * i] = (unsigned char)(u >> 16);
            out[2 * i + 1] = (unsigned char)(u >> 24);
        } else if (strcmp(dtype, "F16") == 0) { /* normal halves and zero only */
            uint32_t s = (u >> 16) & 0x8000u, e = (u >> 23) & 0xFFu, mnt = (u >> 13) & 0x3FFu;
            uint32_t hv = (u & 0x7FFFFFFFu) == 0 ? s : (s | ((e - 112) << 10) | mnt);
            out[2 * i] = (unsigned char)hv;
            out[2 * i + 1] = (unsigned char)(hv >> 8);
        } else { /* F64 */
            double d = (double)v[i];
            uint64_t w;
            int k;
            memcpy(&w, &d, 8);
            for (k = 0; k < 8; k++) out[8 * i + k] = (unsigned char)(w >> (8 * k));
        }
    }
}
static size_t st_dsize(const char *dtype) {
    return strcmp(dtype, "F32") == 0 ? 4 : strcmp(dtype, "F64") == 0 ? 8 : 2;
}

/* ---- models ---------------------------------------------------------------- */
/* 0: image layout model; 1: sequence layout model; 2..4: round-trip models */
static nn_model *st_model(int kind) {
    nn_model *m;
    if (kind == 0) { /* (2,3,2) -> conv 3 filters 2x2 'same' -> flatten -> bn -> dense 4 */
        m = nn_model_new(nn_shape3(2, 3, 2));
        nn_conv2d_ex(m, 3, 2, 2, 1, 1, NN_LINEAR);
        nn_flatten(m);
        nn_batchnorm(m);
        nn_dense(m, 4, NN_LINEAR);
        nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE);
    } else if (kind == 1) { /* ids (3) -> embedding 5x3 -> lstm 4 -> rnn 2 (last) */
        m = nn_model_new(nn_shape1(3));
        nn_embedding(m, 5, 3);
        nn_lstm(m, 4, 1);
        nn_rnn(m, 2, 0);
        nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE);
    } else if (kind == 2) { /* CNN: every image layer */
        m = nn_model_new(nn_shape3(12, 12, 2));
        nn_conv2d_ex(m, 8, 3, 3, 1, 1, NN_RELU);
        nn_batchnorm(m);
        nn_maxpool2d(m, 2);
        nn_conv2d(m, 8, 3, NN_RELU); /* Winograd */
        nn_avgpool2d(m, 2);
        nn_flatten(m);
        nn_normalization(m);
        nn_dropout(m, 0.25f);
        nn_batchnorm(m);
        nn_dense(m, 12, NN_LEAKY_RELU);
        nn_leaky_relu_slope(m, 0.2f);
        nn_activation_layer(m, NN_TANH);
        nn_dense(m, 5, NN_SOFTMAX);
        nn_compile(m, nn_adam(1e-2f), NN_LOSS_SPARSE_CATEGORICAL_CE);
    } else if (kind == 3) { /* sequences */
        m = nn_model_new(nn_shape1(6));
        nn_embedding(m, 9, 4);
        nn_lstm(m, 5, 1);
        nn_gru(m, 6, 1);
        nn_dense(m, 3, NN_RELU);
        nn_rnn(m, 4, 0);
        nn_dense(m, 9, NN_SOFTMAX);
        nn_compile(m, nn_adam(1e-2f), NN_LOSS_SPARSE_CATEGORICAL_CE);
    } else { /* conv autoencoder and global pooling */
        m = nn_model_new(nn_shape3(8, 8, 1));
        nn_conv2d_ex(m, 4, 3, 3, 2, NN_PADDING(1), NN_RELU);
        nn_upsample2d(m, 2);
        nn_conv2d_ex(m, 3, 3, 3, 1, 1, NN_SIGMOID);
        nn_global_avgpool2d(m);
        nn_dense(m, 2, NN_LINEAR);
        nn_compile(m, nn_sgd_momentum(0.05f, 0.9f, 1), NN_LOSS_MSE);
    }
    return m;
}

static void st_fill_input(int kind, float *x, int n, size_t in) {
    size_t i;
    for (i = 0; i < (size_t)n * in; i++)
        x[i] = kind == 3 ? (float)((i * 7 + 3) % 9) : (float)sin(0.37 * (double)i + 0.1);
}

/* save, nn_load, nn_load_safetensors: the same model, bit for bit */
static void st_roundtrip(void) {
    int kind;
    for (kind = 2; kind <= 4; kind++) {
        nn_model *m = st_model(kind), *a = NULL, *b = st_model(kind);
        size_t in, out, np, np2, i;
        float *x, *y, *ya, *yb, *t;
        char path[256];
        nn_shape is = nn_model_input_shape(m), os = nn_model_output_shape(m);
        tt_ctx("safetensors round trip, model %d", kind);
        TT_EQ_INT(nn_model_status(m), NN_OK);
        in = (size_t)is.d[0] * (size_t)is.d[1] * (size_t)is.d[2];
        out = (size_t)os.d[0] * (size_t)os.d[1] * (size_t)os.d[2];
        x = (float *)malloc(4 * in * sizeof(float));
        y = (float *)malloc(4 * out * sizeof(float));
        ya = (float *)malloc(4 * out * sizeof(float));
        yb = (float *)malloc(4 * out * sizeof(float));
        t = (float *)malloc(4 * out * sizeof(float));
        st_fill_input(kind, x, 4, in);
        for (i = 0; i < 4 * out; i++) t[i] = (float)(i % 3);
        if (kind == 2) nn_layer_set_name(m, 0, "features.0");
        if (kind == 2) nn_layer_set_name(m, 11, "classifier");
        /* trained a little: weights, statistics and the step count move */
        for (i = 0; i < 3; i++)
            TT_EQ_INT(nn_train_on_batch(m, x, kind == 4 ? t : t, 4, NULL, NULL), NN_OK);
        TT_EQ_INT(nn_predict(m, x, 4, y), NN_OK);
        TT_EQ_INT(nn_save_safetensors(m, tt_tmp_name("rt.safetensors", path, sizeof path)), NN_OK);
        TT_EQ_INT(nn_load(&a, path), NN_OK);
        if (a) {
            TT_EQ_INT(nn_model_num_layers(a), nn_model_num_layers(m));
            TT_EQ_INT(nn_predict(a, x, 4, ya), NN_OK);
            TT_SAME_ARR("nn_load predictions", ya, y, 4 * out);
            {
                const float *pa = nn_model_params(a, &np), *pm = nn_model_params(m, &np2);
                TT_CHECK(np == np2 && memcmp(pa, pm, np * sizeof(float)) == 0, "nn_load: parameters differ");
            }
            if (kind == 2)
                TT_CHECK(strcmp(nn_layer_name(a, 0), "features.0") == 0 &&
                             strcmp(nn_layer_name(a, 11), "classifier") == 0 &&
                             strcmp(nn_layer_name(a, 1), "1") == 0,
                         "names not kept: '%s' '%s'", nn_layer_name(a, 0), nn_layer_name(a, 11));
        }
        if (kind == 2) {
            /* unnamed: the tensors are refused by name; then named, loaded */
            TT_EQ_INT(nn_load_safetensors(b, path), NN_ERR_SHAPE);
            TT_CHECK(strstr(nn_model_error(b), "'0.weight' is missing") != NULL, "message: %s", nn_model_error(b));
            nn_layer_set_name(b, 0, "features.0");
            nn_layer_set_name(b, 11, "classifier");
        }
        TT_EQ_INT(nn_load_safetensors(b, path), NN_OK);
        TT_EQ_INT(nn_predict(b, x, 4, yb), NN_OK);
        TT_SAME_ARR("nn_load_safetensors predictions", yb, y, 4 * out);
        nn_model_free(m);
        nn_model_free(a);
        nn_model_free(b);
        free(x), free(y), free(ya), free(yb), free(t);
        remove(path);
    }
}

/* PyTorch layouts, written by hand in each dtype */
static void st_layouts(void) {
    static const char *dtypes[] = {"F32", "F16", "BF16", "F64"};
    int di;
    for (di = 0; di < 4; di++) {
        const char *dt = dtypes[di];
        size_t ds = st_dsize(dt), i, cnt;
        char path[256];
        float cw[3 * 2 * 2 * 2], cb[3], bw[18], bb[18], rm[18], rv[18], dw[4 * 18], db[4];
        unsigned char e[13][4 * 18 * 8];
        long long steps = 7;
        st_tensor t[13];
        nn_model *m = st_model(0), *q = st_model(1);
        float *w;
        int f, c, ky, kx, o, y, x, ok;
        tt_ctx("safetensors layouts, %s", dt);
        /* values exact in every dtype: small integers and halves */
        for (i = 0; i < 24; i++) cw[i] = (float)i - 12.0f;
        for (i = 0; i < 3; i++) cb[i] = 0.5f * (float)i;
        for (i = 0; i < 18; i++) bw[i] = 1.0f + (float)i, bb[i] = -(float)i, rm[i] = 0.25f * (float)i, rv[i] = 2.0f + (float)i;
        for (i = 0; i < 72; i++) dw[i] = (float)i - 36.0f;
        for (i = 0; i < 4; i++) db[i] = 8.0f * (float)i;
        memset(t, 0, sizeof t);
        {
            const float *src[] = {cw, cb, bw, bb, rm, rv, dw, db};
            static const char *names[] = {"0.weight", "0.bias", "2.weight", "2.bias", "2.running_mean", "2.running_var", "3.weight", "3.bias"};
            static const int nd[] = {4, 1, 1, 1, 1, 1, 2, 1};
            static const long shp[][4] = {{3, 2, 2, 2}, {3}, {18}, {18}, {18}, {18}, {4, 18}, {4}};
            static const size_t n[] = {24, 3, 18, 18, 18, 18, 72, 4};
            int k;
            for (k = 0; k < 8; k++) {
                t[k].name = names[k];
                t[k].dtype = dt;
                t[k].ndim = nd[k];
                memcpy(t[k].shape, shp[k], sizeof shp[k]);
                st_enc(src[k], n[k], dt, e[k]);
                t[k].data = e[k];
                t[k].bytes = n[k] * ds;
            }
            t[8].name = "2.num_batches_tracked";
            t[8].dtype = "I64";
            t[8].ndim = 0;
            for (k = 0; k < 8; k++) e[8][k] = (unsigned char)((unsigned long long)steps >> (8 * k));
            t[8].data = e[8];
            t[8].bytes = 8;
        }
        TT_CHECK(st_write(tt_tmp_name("layout.safetensors", path, sizeof path), "\"format\":\"pt\"", NULL, t, 9),
                 "write");
        TT_EQ_INT(nn_load_safetensors(m, path), NN_OK);
        /* conv: file (F,C,KH,KW), nn.h (KH,KW,C,F) */
        w = nn_layer_weights(m, 0, &cnt);
        ok = cnt == 24;
        for (f = 0; f < 3; f++)
            for (c = 0; c < 2; c++)
                for (ky = 0; ky < 2; ky++)
                    for (kx = 0; kx < 2; kx++)
                        ok &= w[((ky * 2 + kx) * 2 + c) * 3 + f] == cw[((f * 2 + c) * 2 + ky) * 2 + kx];
        TT_CHECK(ok, "conv weight layout");
        /* batch norm after the flatten of (2,3,3): file index c*6 + y*3 + x,
         * nn.h (y*3 + x)*3 + c; the running statistics alike */
        {
            float *g = nn_layer_weights(m, 2, NULL), *bv = nn_layer_bias(m, 2, NULL), *st = nn_layer_buffers(m, 2, &cnt);
            ok = cnt == 36;
            for (c = 0; c < 3; c++)
                for (y = 0; y < 2; y++)
                    for (x = 0; x < 3; x++) {
                        int fi = c * 6 + y * 3 + x, ni = (y * 3 + x) * 3 + c;
                        ok &= g[ni] == bw[fi] && bv[ni] == bb[fi] && st[ni] == rm[fi] && st[18 + ni] == rv[fi];
                    }
            TT_CHECK(ok, "batch norm after a flatten: (c,h,w) order");
        }
        /* dense after the flatten: file (out, c*h*w), nn.h W (out, h*w*c) */
        w = nn_layer_weights(m, 3, NULL);
        ok = 1;
        for (o = 0; o < 4; o++)
            for (c = 0; c < 3; c++)
                for (y = 0; y < 2; y++)
                    for (x = 0; x < 3; x++)
                        ok &= w[o * 18 + (y * 3 + x) * 3 + c] == dw[o * 18 + c * 6 + y * 3 + x];
        TT_CHECK(ok, "dense after a flatten: (c,h,w) order");
        TT_CHECK(nn_layer_bias(m, 3, NULL)[2] == db[2], "dense bias");
        /* and back out: the same bytes for F32 */
        if (di == 0) {
            char p2[256];
            size_t n1, n2, h1, h2;
            unsigned char *a, *b;
            TT_EQ_INT(nn_save_safetensors(m, tt_tmp_name("layout2.safetensors", p2, sizeof p2)), NN_OK);
            a = tt_read_bytes(path, &n1);
            b = tt_read_bytes(p2, &n2);
            if (a && b && n1 >= 8 && n2 >= 8) {
                h1 = (size_t)a[0] | ((size_t)a[1] << 8);
                h2 = (size_t)b[0] | ((size_t)b[1] << 8);
                /* our tensor data: conv, bn, dense (nn.h writes the I64 first) */
                TT_CHECK(n2 - 8 - h2 == n1 - 8 - h1, "data sizes %lu vs %lu", (unsigned long)(n2 - 8 - h2),
                         (unsigned long)(n1 - 8 - h1));
                TT_CHECK(memcmp(b + 8 + h2 + 8, a + 8 + h1, n1 - 8 - h1 - 8) == 0,
                         "exported tensors differ from the PyTorch-layout input");
            }
            free(a);
            free(b);
            remove(p2);
        }
        remove(path);
        /* LSTM: weight_ih (16,3) -> Wx (3,16); biases summed; RNN too */
        {
            float ew[15], wih[48], whh[64], bih[16], bhh[16], rih[2 * 4], rhh[4], rbi[2], rbh[2];
            st_tensor s[9];
            static const char *names[] = {"0.weight", "1.weight_ih_l0", "1.weight_hh_l0", "1.bias_ih_l0", "1.bias_hh_l0",
                                          "2.weight_ih_l0", "2.weight_hh_l0", "2.bias_ih_l0", "2.bias_hh_l0"};
            const float *src[] = {ew, wih, whh, bih, bhh, rih, rhh, rbi, rbh};
            static const int nd[] = {2, 2, 2, 1, 1, 2, 2, 1, 1};
            static const long shp[][4] = {{5, 3}, {16, 3}, {16, 4}, {16}, {16}, {2, 4}, {2, 2}, {2}, {2}};
            static const size_t n[] = {15, 48, 64, 16, 16, 8, 4, 2, 2};
            int k, g;
            for (i = 0; i < 15; i++) ew[i] = (float)i;
            for (i = 0; i < 48; i++) wih[i] = (float)i * 0.5f;
            for (i = 0; i < 64; i++) whh[i] = -(float)i;
            for (i = 0; i < 16; i++) bih[i] = (float)i, bhh[i] = 100.0f;
            for (i = 0; i < 8; i++) rih[i] = (float)i;
            for (i = 0; i < 4; i++) rhh[i] = 10.0f + (float)i;
            rbi[0] = 1, rbi[1] = 2, rbh[0] = 0.5f, rbh[1] = -4;
            memset(s, 0, sizeof s);
            for (k = 0; k < 9; k++) {
                s[k].name = names[k];
                s[k].dtype = dt;
                s[k].ndim = nd[k];
                memcpy(s[k].shape, shp[k], sizeof shp[k]);
                st_enc(src[k], n[k], dt, e[k]);
                s[k].data = e[k];
                s[k].bytes = n[k] * ds;
            }
            TT_CHECK(st_write(tt_tmp_name("lstm.safetensors", path, sizeof path), NULL, NULL, s, 9), "write");
            TT_EQ_INT(nn_load_safetensors(q, path), NN_OK);
            TT_CHECK(memcmp(nn_layer_weights(q, 0, NULL), ew, sizeof ew) == 0, "embedding weight");
            w = nn_layer_weights(q, 1, &cnt);
            ok = cnt == (3 + 4) * 16;
            for (g = 0; g < 16; g++) {
                for (f = 0; f < 3; f++) ok &= w[f * 16 + g] == wih[g * 3 + f];
                for (f = 0; f < 4; f++) ok &= w[48 + f * 16 + g] == whh[g * 4 + f];
                ok &= nn_layer_bias(q, 1, NULL)[g] == bih[g] + 100.0f;
            }
            TT_CHECK(ok, "LSTM: weights transposed, the two biases summed");
            w = nn_layer_bias(q, 2, &cnt);
            TT_CHECK(cnt == 2 && w[0] == 1.5f && w[1] == -2.0f, "RNN biases summed: %g %g", (double)w[0],
                     (double)w[1]);
            /* export: bias_hh_l0 zero, bias_ih_l0 the sum (checked by loading back) */
            if (di == 0) {
                char p2[256];
                nn_model *r = NULL;
                TT_EQ_INT(nn_save_safetensors(q, tt_tmp_name("lstm2.safetensors", p2, sizeof p2)), NN_OK);
                TT_EQ_INT(nn_load(&r, p2), NN_OK);
                if (r) {
                    TT_CHECK(memcmp(nn_layer_bias(r, 1, NULL), nn_layer_bias(q, 1, NULL), 16 * sizeof(float)) == 0,
                             "merged bias round trip");
                    nn_model_free(r);
                }
                remove(p2);
            }
            remove(path);
        }
        nn_model_free(m);
        nn_model_free(q);
    }
}

/* hostile or mismatched files: refused with a status and a message, the
 * model unchanged; then a good file still loads */
static void st_hostile(void) {
    static const struct {
        const char *header; /* NULL: built from the tensors with a twist */
        int twist; /* 1 missing, 2 unexpected, 3 wrong shape, 4 I32, 7 num_batches F32; (5 NaN, 6 F64 1e300: loaded) */
        nn_status want;
        const char *why;
    } cases[] = {
        {"[]", 0, NN_ERR_FORMAT, "not an object"},
        {"{} x", 0, NN_ERR_FORMAT, "bytes after the object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 0, NN_ERR_FORMAT, "duplicate key"},
        {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, NN_ERR_FORMAT, "duplicate metadata key"},
        {"{\"__metadata__\":{\"k\":1}}", 0, NN_ERR_FORMAT, "metadata value not a string"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, NN_ERR_FORMAT, "two metadata"},
        {"{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, NN_ERR_FORMAT, "unknown dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 0, NN_ERR_FORMAT, "negative dim"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 0, NN_ERR_FORMAT, "fraction"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 0, NN_ERR_FORMAT, "leading zero"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 0, NN_ERR_FORMAT, "unknown field"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0, NN_ERR_FORMAT, "no data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 0, NN_ERR_FORMAT, "product overflow"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551615],\"data_offsets\":[0,4]}}", 0, NN_ERR_FORMAT, "huge dim"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551616],\"data_offsets\":[0,4]}}", 0, NN_ERR_FORMAT, "dim over 64 bits"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 0, NN_ERR_FORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 0, NN_ERR_FORMAT, "hole at the start"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, NN_ERR_FORMAT, "data left after the tensors"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 0, NN_ERR_FORMAT, "begin after end"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", 0, NN_ERR_FORMAT, "beyond the data"},
        {"{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, NN_ERR_FORMAT, "escaped NUL"},
        {"{\"a\\ud800\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, NN_ERR_FORMAT, "lone surrogate"},
        {"{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, NN_ERR_FORMAT, "not UTF-8"},
        {"{\"a\xc0\x80\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, NN_ERR_FORMAT, "overlong UTF-8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 0, NN_ERR_FORMAT, "unclosed"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,2,3,4,5,6,7,8,9],\"data_offsets\":[0,4]}}", 0, NN_ERR_FORMAT, "9 dims"},
        {NULL, 1, NN_ERR_SHAPE, "a tensor missing"},
        {NULL, 2, NN_ERR_SHAPE, "an unexpected tensor"},
        {NULL, 3, NN_ERR_SHAPE, "a wrong shape"},
        {NULL, 4, NN_ERR_UNSUPPORTED, "I32 weights"},
        {NULL, 7, NN_ERR_UNSUPPORTED, "num_batches_tracked as F32"},
    };
    nn_model *m = st_model(0);
    size_t np, nb, i;
    float *p0, *b0;
    char path[256];
    unsigned char data[4096];
    memset(data, 0, sizeof data);
    nn_model_params(m, &np);
    p0 = (float *)malloc(np * sizeof(float));
    b0 = (float *)malloc(64 * sizeof(float));
    memcpy(p0, nn_model_params(m, NULL), np * sizeof(float));
    nn_layer_buffers(m, 2, &nb);
    memcpy(b0, nn_layer_buffers(m, 2, NULL), nb * sizeof(float));
    tt_tmp_name("hostile.safetensors", path, sizeof path);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nn_status s;
        nn_model *lm = NULL;
        tt_ctx("safetensors hostile file: %s", cases[i].why);
        if (cases[i].header) {
            st_tensor d;
            memset(&d, 0, sizeof d);
            d.data = data;
            d.bytes = strstr(cases[i].header, "data_offsets") ? 8 : 0;
            TT_CHECK(st_write(path, NULL, cases[i].header, &d, 1), "write");
        } else {
            /* the layout model's tensors, one twisted */
            static const char *names[] = {"0.weight", "0.bias", "2.weight", "2.bias", "2.running_mean", "2.running_var", "3.weight", "3.bias", "2.num_batches_tracked", "9.extra"};
            static const int nd[] = {4, 1, 1, 1, 1, 1, 2, 1, 0, 1};
            static const long shp[][4] = {{3, 2, 2, 2}, {3}, {18}, {18}, {18}, {18}, {4, 18}, {4}, {0}, {2}};
            static const size_t n[] = {24, 3, 18, 18, 18, 18, 72, 4, 1, 2};
            st_tensor t[10];
            int k, nt = 9, tw = cases[i].twist;
            unsigned char *e = data;
            memset(t, 0, sizeof t);
            for (k = 0; k < 10; k++) {
                t[k].name = names[k];
                t[k].dtype = k == 8 ? "I64" : "F32";
                t[k].ndim = nd[k];
                memcpy(t[k].shape, shp[k], sizeof shp[k]);
                t[k].bytes = (k == 8 ? 8 : 4) * n[k];
                t[k].data = e;
                memset(e, 0, t[k].bytes);
                if (k < 8) {
                    size_t j;
                    for (j = 0; j < n[k]; j++) {
                        float v = 0.5f + (float)j;
                        memcpy(e + 4 * j, &v, 4);
                    }
                }
                e += t[k].bytes;
            }
            if (tw == 1) t[3] = t[8], nt = 8;
            if (tw == 2) nt = 10;
            if (tw == 3) t[6].shape[0] = 18, t[6].shape[1] = 4;
            if (tw == 4) t[7].dtype = "I32";
            if (tw == 5) memset((unsigned char *)t[6].data + 40, 0xFF, 4);
            if (tw == 6) { /* a double of 1e300 in place of "3.bias" (two floats' room doubled) */
                static unsigned char d64[32];
                double big = 1e300;
                uint64_t u;
                int b;
                memcpy(&u, &big, 8);
                for (b = 0; b < 8; b++) d64[b] = (unsigned char)(u >> (8 * b));
                t[7].dtype = "F64";
                t[7].data = d64;
                t[7].bytes = 32;
            }
            if (tw == 7) t[8].dtype = "F32", t[8].bytes = 4;
            if (tw == 7) t[8].ndim = 0;
            TT_CHECK(st_write(path, NULL, NULL, t, nt), "write");
        }
        s = nn_load_safetensors(m, path);
        TT_EQ_INT(s, cases[i].want);
        TT_CHECK(nn_model_error(m)[0] != 0, "no message");
        TT_CHECK(memcmp(p0, nn_model_params(m, NULL), np * sizeof(float)) == 0 &&
                     memcmp(b0, nn_layer_buffers(m, 2, NULL), nb * sizeof(float)) == 0,
                 "a refused file changed the model (%s)", nn_model_error(m));
        /* nn_load on it: refused too (none carries nnh.arch) */
        TT_CHECK(nn_load(&lm, path) != NN_OK && lm == NULL, "nn_load accepted it");
    }
    remove(path);
    free(p0);
    free(b0);
    nn_model_free(m);
}

/* values are taken as they are, like PyTorch: NaN stays NaN, F64 beyond
 * float's range becomes infinite */
static void st_values(void) {
    static const char *names[] = {"0.weight", "0.bias", "2.weight", "2.bias", "2.running_mean",
                                  "2.running_var", "3.weight", "3.bias", "2.num_batches_tracked"};
    static const int nd[] = {4, 1, 1, 1, 1, 1, 2, 1, 0};
    static const long shp[][4] = {{3, 2, 2, 2}, {3}, {18}, {18}, {18}, {18}, {4, 18}, {4}, {0}};
    static const size_t n[] = {24, 3, 18, 18, 18, 18, 72, 4, 1};
    static unsigned char data[8 * 200];
    st_tensor t[9];
    nn_model *m = st_model(0);
    char path[256];
    unsigned char *e = data;
    double big = 1e300;
    uint64_t u;
    int k;
    const float *w, *b;
    tt_ctx("safetensors values as they are");
    memset(t, 0, sizeof t);
    for (k = 0; k < 9; k++) {
        t[k].name = names[k];
        t[k].dtype = k == 8 ? "I64" : k == 7 ? "F64" : "F32";
        t[k].ndim = nd[k];
        memcpy(t[k].shape, shp[k], sizeof shp[k]);
        t[k].bytes = (k >= 7 ? 8 : 4) * n[k];
        t[k].data = e;
        e += t[k].bytes;
    }
    memset((unsigned char *)t[6].data + 40, 0xFF, 4); /* a NaN in 3.weight */
    memcpy(&u, &big, 8);
    for (k = 0; k < 8; k++) ((unsigned char *)t[7].data)[k] = (unsigned char)(u >> (8 * k));
    TT_CHECK(st_write(tt_tmp_name("values.safetensors", path, sizeof path), NULL, NULL, t, 9), "write");
    TT_EQ_INT(nn_load_safetensors(m, path), NN_OK);
    w = nn_layer_weights(m, 3, NULL);
    b = nn_layer_bias(m, 3, NULL);
    /* file element 10 of (4, 18): o = 0, j = 10 = c*6 + y*3 + x -> c 1, y 1, x 1 */
    TT_CHECK(tt_is_nan(w[0 * 18 + (1 * 3 + 1) * 3 + 1]), "the NaN did not arrive where it belongs");
    TT_CHECK(b[0] > 3e38f && b[1] == 0.0f, "F64 1e300: %g", (double)b[0]);
    remove(path);
    nn_model_free(m);
}

static void st_names(void) {
    nn_model *m = st_model(0);
    tt_ctx("nn_layer_set_name");
    TT_EQ_INT(nn_layer_set_name(m, 0, "features.0"), NN_OK);
    TT_CHECK(strcmp(nn_layer_name(m, 0), "features.0") == 0, "name %s", nn_layer_name(m, 0));
    TT_EQ_INT(nn_layer_set_name(m, 1, "features.0"), NN_ERR_INVALID_ARGUMENT); /* taken */
    TT_EQ_INT(nn_layer_set_name(m, 1, "0"), NN_ERR_INVALID_ARGUMENT);          /* another's index */
    TT_EQ_INT(nn_layer_set_name(m, 1, "1"), NN_OK);                            /* its own */
    TT_EQ_INT(nn_layer_set_name(m, 1, "a..b"), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_layer_set_name(m, 1, ".a"), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_layer_set_name(m, 1, "a."), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_layer_set_name(m, 1, "a\"b"), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_layer_set_name(m, 1, "a,b"), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_layer_set_name(m, 1, "0123456789012345678901234567890123456789012345678901234567890123"),
              NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_layer_set_name(m, 9, "x"), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_layer_set_name(m, 0, NULL), NN_OK);
    TT_CHECK(strcmp(nn_layer_name(m, 0), "0") == 0, "reset to the index");
    TT_CHECK(nn_layer_name(m, 4) == NULL && nn_layer_name(NULL, 0) == NULL, "no layer: NULL");
    TT_EQ_INT(nn_model_status(m), NN_OK); /* not sticky */
    TT_EQ_INT(nn_save_safetensors(NULL, "x"), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_load_safetensors(m, NULL), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_load_safetensors(m, "build/no/such/file.safetensors"), NN_ERR_IO);
    nn_model_free(m);
    m = nn_model_new(nn_shape1(3));
    nn_dense(m, 2, NN_LINEAR);
    TT_EQ_INT(nn_save_safetensors(m, "x"), NN_ERR_STATE);
    TT_EQ_INT(nn_load_safetensors(m, "x"), NN_ERR_STATE);
    nn_model_free(m);
}

/* a transpose large enough for the backend's 8x8 blocks, and ragged
 * edges, on every backend: an RNN's weight_ih (20, 37) and weight_hh
 * (20, 20) into nn.h's Wx (37, 20) and Wh (20, 20), exact; a dense
 * layer's weight, in the same order in both, read in place */
static void st_transpose_backends(void) {
    int bi;
    for (bi = 0; bi < TT_NBACKENDS; bi++) {
        nn_model *m;
        static float v[37 * 20], vh[20 * 20], dw[20 * 5];
        static unsigned char e[37 * 20 * 4], eh[20 * 20 * 4], ed[20 * 5 * 4];
        float bias[20], zero[20], db[5];
        unsigned char be[80], bz[80], bd[20];
        st_tensor t[6];
        char path[256];
        const float *w;
        int o, j, ok = 1;
        if (!tt_use_backend("safetensors transpose", tt_backends[bi])) continue;
        tt_ctx("safetensors transpose [%s]", nn_backend_name(tt_backends[bi]));
        m = nn_model_new(nn_shape2(3, 37));
        nn_rnn(m, 20, 0);
        nn_dense(m, 5, NN_LINEAR);
        nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE);
        for (j = 0; j < 37 * 20; j++) v[j] = (float)j;
        for (j = 0; j < 20 * 20; j++) vh[j] = -0.5f * (float)j;
        for (j = 0; j < 20 * 5; j++) dw[j] = 0.25f * (float)j;
        for (j = 0; j < 20; j++) bias[j] = -1.0f - (float)j, zero[j] = 0.0f; /* no -0: exported as -0 + 0 */
        for (j = 0; j < 5; j++) db[j] = (float)j;
        memset(t, 0, sizeof t);
        t[0].name = "0.weight_ih_l0", t[0].dtype = "F32", t[0].ndim = 2, t[0].shape[0] = 20, t[0].shape[1] = 37;
        st_enc(v, 37 * 20, "F32", e);
        t[0].data = e, t[0].bytes = sizeof e;
        t[1].name = "0.weight_hh_l0", t[1].dtype = "F32", t[1].ndim = 2, t[1].shape[0] = 20, t[1].shape[1] = 20;
        st_enc(vh, 20 * 20, "F32", eh);
        t[1].data = eh, t[1].bytes = sizeof eh;
        t[2].name = "0.bias_ih_l0", t[2].dtype = "F32", t[2].ndim = 1, t[2].shape[0] = 20;
        st_enc(bias, 20, "F32", be);
        t[2].data = be, t[2].bytes = sizeof be;
        t[3].name = "0.bias_hh_l0", t[3].dtype = "F32", t[3].ndim = 1, t[3].shape[0] = 20;
        st_enc(zero, 20, "F32", bz);
        t[3].data = bz, t[3].bytes = sizeof bz;
        t[4].name = "1.weight", t[4].dtype = "F32", t[4].ndim = 2, t[4].shape[0] = 5, t[4].shape[1] = 20;
        st_enc(dw, 20 * 5, "F32", ed);
        t[4].data = ed, t[4].bytes = sizeof ed;
        t[5].name = "1.bias", t[5].dtype = "F32", t[5].ndim = 1, t[5].shape[0] = 5;
        st_enc(db, 5, "F32", bd);
        t[5].data = bd, t[5].bytes = sizeof bd;
        TT_CHECK(st_write(tt_tmp_name("tr.safetensors", path, sizeof path), NULL, NULL, t, 6), "write");
        TT_EQ_INT(nn_load_safetensors(m, path), NN_OK);
        w = nn_layer_weights(m, 0, NULL);
        for (o = 0; o < 20; o++)
            for (j = 0; j < 37; j++) ok &= w[j * 20 + o] == v[o * 37 + j];
        for (o = 0; o < 20; o++)
            for (j = 0; j < 20; j++) ok &= w[37 * 20 + j * 20 + o] == vh[o * 20 + j];
        TT_CHECK(ok, "rnn weight_ih (20, 37) and weight_hh (20, 20) transposed into nn.h's Wx (37, 20), Wh (20, 20)");
        w = nn_layer_weights(m, 1, NULL);
        TT_CHECK(w && memcmp(w, dw, sizeof dw) == 0, "dense weight (5, 20): nn.h's own order");
        { /* and back: the same bytes (the tensors, after the header) */
            size_t n1, n2, h1, h2;
            unsigned char *fa, *fb;
            char p2[256];
            TT_EQ_INT(nn_save_safetensors(m, tt_tmp_name("tr2.safetensors", p2, sizeof p2)), NN_OK);
            fa = tt_read_bytes(path, &n1);
            fb = tt_read_bytes(p2, &n2);
            if (fa && fb && n1 > 8 && n2 > 8) {
                h1 = (size_t)fa[0] | ((size_t)fa[1] << 8);
                h2 = (size_t)fb[0] | ((size_t)fb[1] << 8);
                TT_CHECK(n1 - h1 == n2 - h2 && memcmp(fa + 8 + h1, fb + 8 + h2, n1 - 8 - h1) == 0,
                         "exported tensors differ from the file loaded");
            }
            free(fa);
            free(fb);
            remove(p2);
        }
        remove(path);
        nn_model_free(m);
    }
    tt_set_backend(NN_BACKEND_AUTO);
}

/* nn_use_bias(m, 0): no bias tensor in files, none reported, none trained */
static void st_nobias(void) {
    nn_model *m = nn_model_new(nn_shape3(6, 6, 2)), *a = NULL, *b;
    float x[4 * 72], y[4 * 3], ya[4 * 3], t[4 * 3];
    size_t cnt = 7, i;
    char path[256], p2[256];
    tt_ctx("nn_use_bias(m, 0)");
    nn_conv2d_ex(m, 4, 3, 3, 2, NN_PADDING(1), NN_RELU);
    TT_EQ_INT(nn_use_bias(m, 0), NN_OK);
    nn_batchnorm(m);
    nn_maxpool2d_ex(m, 2, 1);
    nn_flatten(m);
    nn_dense(m, 3, NN_LINEAR);
    TT_EQ_INT(nn_use_bias(m, 0), NN_OK);
    TT_EQ_INT(nn_compile(m, nn_adamw(1e-2f, 0.1f), NN_LOSS_MSE), NN_OK);
    TT_EQ_INT(nn_use_bias(m, 1), NN_ERR_STATE); /* after compile */
    TT_CHECK(nn_layer_bias(m, 0, &cnt) == NULL && cnt == 0, "conv reports a bias");
    TT_CHECK(nn_layer_bias(m, 4, &cnt) == NULL && cnt == 0, "dense reports a bias");
    /* conv 4*3*3*2, bn 4 + 4, dense (2*2*4 = 16 inputs) * 3 */
    TT_EQ_INT(nn_model_num_params(m), 72 + 8 + 48);
    st_fill_input(0, x, 4, 72);
    for (i = 0; i < 12; i++) t[i] = (float)(i % 4) * 0.5f;
    for (i = 0; i < 5; i++) nn_train_on_batch(m, x, t, 4, NULL, NULL);
    TT_EQ_INT(nn_predict(m, x, 4, y), NN_OK);
    /* both file formats keep it */
    TT_EQ_INT(nn_save(m, tt_tmp_name("nobias.nnm", p2, sizeof p2), 1), NN_OK);
    TT_EQ_INT(nn_load(&a, p2), NN_OK);
    if (a) {
        TT_EQ_INT(nn_predict(a, x, 4, ya), NN_OK);
        TT_SAME_ARR("nn_save/nn_load", ya, y, 12);
        TT_CHECK(nn_layer_bias(a, 4, &cnt) == NULL, "the loaded dense has a bias");
        nn_model_free(a);
        a = NULL;
    }
    TT_EQ_INT(nn_save_safetensors(m, tt_tmp_name("nobias.safetensors", path, sizeof path)), NN_OK);
    TT_EQ_INT(nn_load(&a, path), NN_OK);
    if (a) {
        TT_EQ_INT(nn_predict(a, x, 4, ya), NN_OK);
        TT_SAME_ARR("safetensors", ya, y, 12);
        nn_model_free(a);
    }
    /* a model with biases misses them in the file */
    b = nn_model_new(nn_shape3(6, 6, 2));
    nn_conv2d_ex(b, 4, 3, 3, 2, NN_PADDING(1), NN_RELU);
    nn_batchnorm(b);
    nn_maxpool2d_ex(b, 2, 1);
    nn_flatten(b);
    nn_dense(b, 3, NN_LINEAR);
    nn_compile(b, nn_sgd(0.1f), NN_LOSS_MSE);
    TT_EQ_INT(nn_load_safetensors(b, path), NN_ERR_SHAPE);
    TT_CHECK(strstr(nn_model_error(b), "'0.bias' is missing") != NULL, "message: %s", nn_model_error(b));
    nn_model_free(b);
    /* the builder's checks */
    b = nn_model_new(nn_shape3(6, 6, 2));
    nn_maxpool2d(b, 2);
    TT_EQ_INT(nn_use_bias(b, 0), NN_ERR_STATE); /* not dense / conv */
    nn_model_free(b);
    b = nn_model_new(nn_shape3(6, 6, 2));
    TT_EQ_INT(nn_maxpool2d_ex(b, 2, 2), NN_ERR_INVALID_ARGUMENT); /* pad > size/2 */
    nn_model_free(b);
    remove(path);
    remove(p2);
    nn_model_free(m);
}

/* Review findings, as regressions: a file whose architecture asks for
 * statistics far beyond its size, a pool window of 2^30, a 63-character
 * name's keys kept whole, and a loaded model's random stream equal to the
 * freshly compiled one's (dropout masks after nn_load as in 0.2.0). */
static int memmem_st(const unsigned char *h, size_t n, const char *needle) {
    size_t l = strlen(needle), i;
    for (i = 0; i + l <= n; i++)
        if (memcmp(h + i, needle, l) == 0) return 1;
    return 0;
}
static void st_put32(unsigned char *b, size_t *n, uint32_t v) {
    int k;
    for (k = 0; k < 4; k++) b[(*n)++] = (unsigned char)(v >> (8 * k));
}
static size_t st_arch(unsigned char *b, int d0, const char *kind, int nset, const int32_t *set) {
    size_t n = 0;
    int k;
    float slope = 0.01f, lr = 0.1f;
    uint32_t u;
    st_put32(b, &n, 1), st_put32(b, &n, (uint32_t)d0), st_put32(b, &n, 1), st_put32(b, &n, 1);
    if (!kind) { /* (1,1,1) image and a max-pool */
        n = 0;
        st_put32(b, &n, 3), st_put32(b, &n, 1), st_put32(b, &n, 1), st_put32(b, &n, 1);
        kind = "maxpool2d";
    }
    st_put32(b, &n, 1);
    st_put32(b, &n, (uint32_t)strlen(kind));
    memcpy(b + n, kind, strlen(kind)), n += strlen(kind);
    st_put32(b, &n, 0), st_put32(b, &n, 0);
    memcpy(&u, &slope, 4), st_put32(b, &n, u);
    st_put32(b, &n, (uint32_t)nset);
    for (k = 0; k < nset; k++) st_put32(b, &n, (uint32_t)set[k]);
    st_put32(b, &n, 1), st_put32(b, &n, 0); /* MSE, SGD */
    memcpy(&u, &lr, 4), st_put32(b, &n, u);
    for (k = 0; k < 7; k++) st_put32(b, &n, 0);
    st_put32(b, &n, 0);
    return n;
}
static void st_review(void) {
    static const char hx[] = "0123456789abcdef";
    unsigned char arch[256];
    char meta[700], path[256];
    size_t n, i;
    nn_model *m = NULL;
    int32_t pool[2] = {1 << 30, 1 << 29};
    tt_ctx("safetensors review regressions");
    for (i = 0; i < 2; i++) {
        size_t k = 0;
        n = i == 0 ? st_arch(arch, (1 << 28) + 8, "normalization", 0, NULL) : st_arch(arch, 1, NULL, 2, pool);
        k += (size_t)snprintf(meta + k, sizeof meta - k, "\"nnh.arch\":\"");
        {
            size_t j;
            for (j = 0; j < n; j++) meta[k++] = hx[arch[j] >> 4], meta[k++] = hx[arch[j] & 15];
        }
        meta[k++] = '"';
        meta[k] = 0;
        TT_CHECK(st_write(tt_tmp_name("review.safetensors", path, sizeof path), meta, NULL, NULL, 0), "write");
        TT_CHECK(nn_load(&m, path) == NN_ERR_FORMAT && m == NULL, "%s: loaded",
                 i == 0 ? "statistics of 2^28 floats from a small file" : "a pool window of 2^30");
        nn_model_free(m);
        m = NULL;
        remove(path);
    }
    { /* a 63-character name: every key whole */
        char name[64];
        unsigned char *f;
        size_t fn;
        m = nn_model_new(nn_shape1(3));
        nn_dense(m, 2, NN_LINEAR);
        nn_batchnorm(m);
        nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE);
        memset(name, 'b', 63);
        name[63] = 0;
        TT_EQ_INT(nn_layer_set_name(m, 1, name), NN_OK);
        TT_EQ_INT(nn_layer_set_name(m, 1, nn_layer_name(m, 1)), NN_OK); /* its own name again */
        TT_EQ_INT(nn_save_safetensors(m, tt_tmp_name("long.safetensors", path, sizeof path)), NN_OK);
        f = tt_read_bytes(path, &fn);
        {
            char key[100];
            snprintf(key, sizeof key, "\"%s.num_batches_tracked\"", name);
            TT_CHECK(f && fn > 0 && memmem_st(f, fn, key), "the key %s is not in the file", key);
        }
        free(f);
        remove(path);
        nn_model_free(m);
    }
    { /* the random stream of a loaded model: dropout masks as the original's */
        nn_model *a = nn_model_new(nn_shape1(8)), *b = NULL;
        float x[4 * 8], y[4 * 2], la = -1, lb = -2;
        for (i = 0; i < 32; i++) x[i] = (float)i * 0.1f;
        for (i = 0; i < 8; i++) y[i] = (float)(i % 2);
        nn_dense(a, 16, NN_RELU);
        nn_dropout(a, 0.5f);
        nn_dense(a, 2, NN_LINEAR);
        nn_compile(a, nn_sgd(0.1f), NN_LOSS_MSE);
        TT_EQ_INT(nn_save(a, tt_tmp_name("rng.nnm", path, sizeof path), 0), NN_OK);
        TT_EQ_INT(nn_load(&b, path), NN_OK);
        if (b) {
            nn_train_on_batch(a, x, y, 4, &la, NULL);
            nn_train_on_batch(b, x, y, 4, &lb, NULL);
            TT_CHECK(la == lb, "first step with dropout: loss %g, loaded model %g", (double)la, (double)lb);
        }
        remove(path);
        nn_model_free(a);
        nn_model_free(b);
    }
}

void test_safetensors(void) {
    st_nobias();
    st_transpose_backends();
    st_names();
    st_roundtrip();
    st_layouts();
    st_hostile();
    st_values();
    st_review();
}
