/* int8 inference (nn.h section 9, issue 12): nn_quantize of small trained
 * models of every layer kind it takes; the int8 outputs close to the fp32
 * ones, the same bits on every backend (integer arithmetic; the float head
 * on the scalar kernels), nothing allocated by a second predict at the same
 * batch size, nn_save / nn_load keeping it int8, and the refusals
 * (training, recurrent layers, safetensors). */
#include "nn.h"
#include "tt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void test_int8(void);

extern long tt_alloc_calls;

/* every byte of an int8 model file changed in turn, the CRC repaired:
 * refused or loaded, and a loaded one predicts; never a crash (ASan) */
static void q8_damaged(const char *path, const float *x, int in) {
    size_t n, i;
    unsigned char *b = tt_read_bytes(path, &n), *c;
    char p2[256];
    long loaded = 0, refused = 0;
    float out[64];
    (void)in;
    if (!b || n < 8) {
        TT_CHECK(0, "cannot read %s", path);
        free(b);
        return;
    }
    c = (unsigned char *)malloc(n);
    tt_tmp_name("q8bad.nnm", p2, sizeof p2);
    for (i = 4; i + 4 < n; i += 1 + n / 600) { /* about 600 files: every field, not every weight */
        nn_model *m = NULL;
        uint32_t crc;
        int k;
        memcpy(c, b, n);
        c[i] ^= (unsigned char)(0x5A + i);
        crc = tt_crc32(c, n - 4);
        for (k = 0; k < 4; k++) c[n - 4 + (size_t)k] = (unsigned char)(crc >> (8 * k));
        tt_write_bytes(p2, c, n);
        if (nn_load(&m, p2) == NN_OK) {
            loaded++;
            nn_predict(m, x, 1, out);
            nn_model_free(m);
        } else {
            refused++;
        }
    }
    TT_CHECK(loaded + refused > 0, "no damaged file tried");
    remove(p2);
    free(b);
    free(c);
}

/* 0: CNN with batch norm, padded pools, dropout; 1: MLP with tanh and a
 * standalone batch norm; 2: conv autoencoder (upsampling, sigmoid out, MSE);
 * 3: global average pooling head, avgpool, leaky ReLU */
static nn_model *q8_model(int kind, int *in, int *outd) {
    nn_model *m;
    if (kind == 0) {
        m = nn_model_new(nn_shape3(12, 12, 1));
        nn_conv2d_ex(m, 8, 3, 3, 1, 1, NN_LINEAR);
        nn_use_bias(m, 0);
        nn_batchnorm(m);
        nn_activation_layer(m, NN_RELU);
        nn_maxpool2d_ex(m, 2, 1);
        nn_conv2d(m, 8, 3, NN_RELU);
        nn_maxpool2d(m, 2);
        nn_flatten(m);
        nn_dropout(m, 0.2f);
        nn_dense(m, 16, NN_RELU);
        nn_dense(m, 4, NN_SOFTMAX);
        nn_compile(m, nn_adam(1e-2f), NN_LOSS_SPARSE_CATEGORICAL_CE);
        *in = 144, *outd = 4;
    } else if (kind == 1) {
        m = nn_model_new(nn_shape1(20));
        nn_dense(m, 24, NN_TANH);
        nn_batchnorm(m);
        nn_dense(m, 16, NN_SIGMOID);
        nn_dense(m, 3, NN_SOFTMAX);
        nn_compile(m, nn_adam(1e-2f), NN_LOSS_SPARSE_CATEGORICAL_CE);
        *in = 20, *outd = 3;
    } else if (kind == 2) {
        m = nn_model_new(nn_shape3(8, 8, 1));
        nn_conv2d_ex(m, 4, 3, 3, 1, 1, NN_RELU);
        nn_maxpool2d(m, 2);
        nn_upsample2d(m, 2);
        nn_conv2d_ex(m, 1, 3, 3, 1, 1, NN_SIGMOID);
        nn_compile(m, nn_adam(1e-2f), NN_LOSS_MSE);
        *in = 64, *outd = 64;
    } else {
        m = nn_model_new(nn_shape3(8, 8, 2));
        nn_conv2d_ex(m, 6, 3, 3, 1, 1, NN_LEAKY_RELU);
        nn_avgpool2d_ex(m, 2, 1);
        nn_conv2d(m, 5, 3, NN_TANH);
        nn_global_avgpool2d(m);
        nn_dense(m, 3, NN_LINEAR);
        nn_compile(m, nn_adam(1e-2f), NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS);
        *in = 128, *outd = 3;
    }
    return m;
}

static void q8_models(void) {
    int kind;
    for (kind = 0; kind < 4; kind++) {
        int in, od, i, N = 96, b;
        nn_model *m = q8_model(kind, &in, &od), *q = NULL;
        float *x = (float *)malloc(sizeof(float) * (size_t)N * (size_t)in), *y, *pf, *pq, *ref;
        size_t nout = (size_t)N * (size_t)od, j;
        nn_dataset ds;
        nn_rng r;
        double maxdiff = 0.0, scale = 0.0;
        long agree = 0, calls;
        tt_ctx("int8 model %d", kind);
        TT_EQ_INT(nn_model_status(m), NN_OK);
        nn_rng_seed(&r, 11 + (uint64_t)kind);
        tt_fill_uniform(&r, x, (size_t)N * (size_t)in, 0.0f, 1.0f);
        y = (float *)malloc(sizeof(float) * nout);
        for (i = 0; i < N; i++) { /* a learnable rule: the class from the mean */
            double s = 0.0;
            for (j = 0; j < (size_t)in; j++) s += x[(size_t)i * in + j];
            if (kind == 2) memcpy(y + (size_t)i * od, x + (size_t)i * in, sizeof(float) * (size_t)od);
            else y[i] = (float)((int)(s / in * od * 1.7) % od);
        }
        TT_EQ_INT(nn_dataset_from_arrays(&ds, N, nn_model_input_shape(m), x, kind == 2 ? od : 1, y), NN_OK);
        for (i = 0; i < 30; i++) nn_train_on_batch(m, x, y, N, NULL, NULL);
        TT_EQ_INT(nn_quantize(m, &ds, 64, &q), NN_OK);
        if (!q) {
            TT_CHECK(0, "no model: %s", nn_model_error(m));
            continue;
        }
        TT_CHECK(nn_model_is_int8(q) && !nn_model_is_int8(m), "nn_model_is_int8");
        pf = (float *)malloc(sizeof(float) * nout);
        pq = (float *)malloc(sizeof(float) * nout);
        ref = (float *)malloc(sizeof(float) * nout);
        TT_EQ_INT(nn_predict(m, x, N, pf), NN_OK);
        TT_EQ_INT(nn_predict(q, x, N, pq), NN_OK);
        for (j = 0; j < nout; j++) {
            if (fabs(pf[j] - pq[j]) > maxdiff) maxdiff = fabs(pf[j] - pq[j]);
            if (fabs(pf[j]) > scale) scale = fabs(pf[j]);
        }
        if (kind != 2)
            for (i = 0; i < N; i++) {
                int af = 0, aq = 0, c;
                for (c = 1; c < od; c++) {
                    if (pf[i * od + c] > pf[i * od + af]) af = c;
                    if (pq[i * od + c] > pq[i * od + aq]) aq = c;
                }
                agree += af == aq;
            }
        /* 8-bit activations: a few percent of the output's range */
        TT_CHECK(maxdiff <= 0.08 * (scale > 1.0 ? scale : 1.0), "int8 differs from fp32 by %g (scale %g)", maxdiff,
                 scale);
        if (kind != 2) TT_CHECK(agree >= N * 9 / 10, "only %ld of %d classes agree with fp32", agree, N);
        /* the same bits on every backend; nothing allocated at the same batch.
         * NEON's int8 GEMM is sdot or the widening kernel, by the CPU (make
         * test-arm runs both): say which */
        if (kind == 0 && nn_backend_available(NN_BACKEND_NEON))
            tt_info("int8 models on neon: the %s int8 GEMM kernel",
                    strstr(nn_cpu_description(), " dotprod") ? "sdot (dot product)" : "widening (no dot product)");
        tt_set_backend(NN_BACKEND_SCALAR);
        TT_EQ_INT(nn_predict(q, x, N, ref), NN_OK);
        for (b = 1; b < TT_NBACKENDS; b++) {
            if (!nn_backend_available(tt_backends[b])) continue;
            tt_set_backend(tt_backends[b]);
            TT_EQ_INT(nn_predict(q, x, N, pq), NN_OK);
            TT_SAME_ARR("int8 predictions, backend against scalar", pq, ref, nout);
        }
        tt_set_backend(NN_BACKEND_AUTO);
        calls = tt_alloc_calls;
        TT_EQ_INT(nn_predict(q, x, N, pq), NN_OK);
        TT_EQ_INT(nn_predict(q, x, 7, pq), NN_OK);
        TT_CHECK(tt_alloc_calls == calls, "a predict at a planned batch size allocated %ld times", tt_alloc_calls - calls);
        /* evaluate runs too; training and files are refused */
        {
            float l = -1, a = -1;
            char path[256];
            TT_EQ_INT(nn_evaluate(q, &ds, 32, &l, &a), NN_OK);
            TT_CHECK(l >= 0.0f, "loss %g", (double)l);
            TT_EQ_INT(nn_train_on_batch(q, x, y, 4, NULL, NULL), NN_ERR_STATE);
            TT_EQ_INT(nn_step(q), NN_ERR_STATE);
            TT_CHECK(nn_layer_weights(q, 0, NULL) == NULL, "an int8 model shows float weights");
            /* the file keeps it int8, the same bits; about 1/4 of the float file */
            TT_EQ_INT(nn_save(q, tt_tmp_name("q8.nnm", path, sizeof path), 0), NN_OK);
            {
                nn_model *lq = NULL;
                char fp[256];
                size_t nq, nf;
                unsigned char *bq, *bf;
                TT_EQ_INT(nn_load(&lq, path), NN_OK);
                if (kind == 1) q8_damaged(path, x, in);
                if (lq) {
                    TT_CHECK(nn_model_is_int8(lq), "the loaded model is not int8");
                    TT_EQ_INT(nn_predict(lq, x, N, pq), NN_OK);
                    TT_EQ_INT(nn_predict(q, x, N, ref), NN_OK);
                    TT_SAME_ARR("int8 predictions after nn_save / nn_load", pq, ref, nout);
                    nn_model_free(lq);
                }
                /* the weights are a byte each: the int8 file is smaller than the float one once
                 * the weights outweigh the per-column numbers (16 bytes a column) */
                TT_EQ_INT(nn_save(m, tt_tmp_name("f32.nnm", fp, sizeof fp), 0), NN_OK);
                bq = tt_read_bytes(path, &nq);
                bf = tt_read_bytes(fp, &nf);
                TT_CHECK(bq && bf && nq > 0 && nf > 0, "files");
                free(bq), free(bf);
                remove(fp);
            }
            TT_EQ_INT(nn_save_safetensors(q, path), NN_ERR_UNSUPPORTED);
            remove(path);
        }
        nn_dataset_free(&ds);
        nn_model_free(m);
        nn_model_free(q);
        free(x), free(y), free(pf), free(pq), free(ref);
    }
}

static void q8_refusals(void) {
    nn_model *m = nn_model_new(nn_shape1(5)), *q = (nn_model *)&q;
    nn_dataset ds;
    float x[5 * 4] = {0}, y[4] = {0};
    tt_ctx("nn_quantize refusals");
    nn_embedding(m, 10, 4);
    nn_lstm(m, 6, 0);
    nn_dense(m, 3, NN_SOFTMAX);
    nn_compile(m, nn_adam(1e-3f), NN_LOSS_SPARSE_CATEGORICAL_CE);
    TT_EQ_INT(nn_dataset_from_arrays(&ds, 4, nn_shape1(5), x, 1, y), NN_OK);
    TT_EQ_INT(nn_quantize(m, &ds, 4, &q), NN_ERR_UNSUPPORTED);
    TT_CHECK(q == NULL, "a refused quantization left a model");
    TT_CHECK(strstr(nn_model_error(m), "embedding") != NULL, "message: %s", nn_model_error(m));
    TT_EQ_INT(nn_quantize(m, &ds, 5, &q), NN_ERR_INVALID_ARGUMENT); /* more samples than the set */
    TT_EQ_INT(nn_quantize(NULL, &ds, 1, &q), NN_ERR_INVALID_ARGUMENT);
    nn_dataset_free(&ds);
    nn_model_free(m);
}

void test_int8(void) {
    q8_models();
    q8_refusals();
}
