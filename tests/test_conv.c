/* Convolution geometry, im2col / col2im (NHWC, weights KH,KW,C,F).
 * Forward: im2col + nn_sgemm against a naive direct convolution in double.
 * Backward: col2im is the adjoint of im2col, <im2col(x), y> == <x, col2im(y)>.
 * Tiling by rows gives the same result as one call.
 * Winograd layers (3x3 stride 1, >= 8 channels) against the same model on
 * im2col (nn_conv_winograd off): outputs and every gradient agree; the
 * switch refuses layers it does not apply to. */
#include "nn.h"
#include "tt.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS ((double)FLT_EPSILON)

typedef struct {
    int n, h, w, c, kh, kw, stride, same;
} conv_case;

static const conv_case cases[] = {
    {2, 7, 5, 3, 3, 3, 1, 0}, {2, 7, 5, 3, 3, 3, 1, 1},  {2, 7, 5, 3, 3, 3, 2, 0}, {2, 7, 5, 3, 3, 3, 2, 1},
    {1, 6, 9, 1, 2, 4, 2, 1}, {1, 6, 9, 1, 2, 4, 1, 0},  {3, 5, 5, 4, 1, 1, 1, 0}, {1, 4, 4, 2, 5, 5, 1, 1},
    {1, 9, 7, 5, 3, 2, 3, 1}, {2, 8, 8, 17, 3, 3, 2, 1}, {1, 11, 13, 3, 5, 3, 2, 0}, {1, 3, 3, 1, 3, 3, 1, 0},
    {2, 10, 6, 33, 3, 3, 1, 1},
};
#define NF 5 /* filters */

static void expected_geom(const conv_case *cc, int *oh, int *ow, int *pt, int *pl) {
    if (cc->same) {
        int ph, pw;
        *oh = (cc->h + cc->stride - 1) / cc->stride;
        *ow = (cc->w + cc->stride - 1) / cc->stride;
        ph = (*oh - 1) * cc->stride + cc->kh - cc->h;
        pw = (*ow - 1) * cc->stride + cc->kw - cc->w;
        *pt = ph > 0 ? ph / 2 : 0;
        *pl = pw > 0 ? pw / 2 : 0;
    } else {
        *oh = (cc->h - cc->kh) / cc->stride + 1;
        *ow = (cc->w - cc->kw) / cc->stride + 1;
        *pt = *pl = 0;
    }
}

static void run_case(nn_backend b, const conv_case *cc, unsigned seed, int check_geom) {
    nn_conv_geom g;
    nn_status st;
    int oh, ow, pt, pl, bb, oy, ox, f, ky, kx, ch;
    size_t rows, K, nx, i, j;
    float *x, *wt, *col, *out, *y, *dx, *dx2, *tiled;
    double *ref, *tol;
    nn_rng r;
    tt_ctx("conv[%s] n=%d h=%d w=%d c=%d k=%dx%d stride=%d %s", nn_backend_name(b), cc->n, cc->h, cc->w, cc->c, cc->kh,
           cc->kw, cc->stride, cc->same ? "same" : "valid");
    st = nn_conv_geom_init(&g, cc->n, cc->h, cc->w, cc->c, cc->kh, cc->kw, cc->stride, cc->same);
    if (!TT_CHECK(st == NN_OK, "nn_conv_geom_init returned %d", (int)st)) return;
    expected_geom(cc, &oh, &ow, &pt, &pl);
    if (check_geom)
        TT_CHECK(g.oh == oh && g.ow == ow && g.pt == pt && g.pl == pl && g.sh == cc->stride && g.sw == cc->stride &&
                     g.n == cc->n && g.h == cc->h && g.w == cc->w && g.c == cc->c && g.kh == cc->kh && g.kw == cc->kw,
                 "geometry oh=%d ow=%d pt=%d pl=%d, expected %d %d %d %d", g.oh, g.ow, g.pt, g.pl, oh, ow, pt, pl);
    oh = g.oh;
    ow = g.ow;
    pt = g.pt;
    pl = g.pl;
    rows = (size_t)cc->n * oh * ow;
    K = (size_t)cc->kh * cc->kw * cc->c;
    nx = (size_t)cc->n * cc->h * cc->w * cc->c;
    x = tt_xalloc(nx);
    wt = tt_xalloc(K * NF);
    col = tt_galloc(rows * K);
    tiled = tt_galloc(rows * K);
    out = tt_galloc(rows * NF);
    y = tt_xalloc(rows * K);
    dx = tt_galloc(nx);
    dx2 = tt_galloc(nx);
    ref = (double *)malloc(sizeof(double) * rows * NF);
    tol = (double *)malloc(sizeof(double) * rows * NF);
    nn_rng_seed(&r, seed);
    tt_fill_normal(&r, x, nx, 1.0f);
    tt_fill_normal(&r, wt, K * NF, 1.0f);
    tt_fill_normal(&r, y, rows * K, 1.0f);

    /* naive direct convolution in double */
    for (bb = 0; bb < cc->n; bb++)
        for (oy = 0; oy < oh; oy++)
            for (ox = 0; ox < ow; ox++)
                for (f = 0; f < NF; f++) {
                    double s = 0, sa = 0;
                    for (ky = 0; ky < cc->kh; ky++)
                        for (kx = 0; kx < cc->kw; kx++) {
                            int iy = oy * cc->stride - pt + ky, ix = ox * cc->stride - pl + kx;
                            if (iy < 0 || iy >= cc->h || ix < 0 || ix >= cc->w) continue;
                            for (ch = 0; ch < cc->c; ch++) {
                                double t = (double)x[(((size_t)bb * cc->h + iy) * cc->w + ix) * cc->c + ch] *
                                           wt[(((size_t)ky * cc->kw + kx) * cc->c + ch) * NF + f];
                                s += t;
                                sa += fabs(t);
                            }
                        }
                    i = (((size_t)bb * oh + oy) * ow + ox) * NF + f;
                    ref[i] = s;
                    tol[i] = (double)(K + 3) * EPS * sa + 1e-30;
                }

    nn_im2col(&g, 0, rows, x, col);
    TT_GUARDS_OK(col);
    st = nn_sgemm(0, 0, (int)rows, NF, (int)K, 1.0f, col, (int)K, wt, NF, 0.0f, out, NF);
    TT_CHECK(st == NN_OK, "nn_sgemm returned %d", (int)st);
    {
        size_t bad = 0, first = 0;
        for (i = 0; i < rows * NF; i++)
            if (!(fabs((double)out[i] - ref[i]) <= tol[i])) {
                if (!bad) first = i;
                bad++;
            }
        TT_CHECK(bad == 0, "im2col+sgemm vs direct convolution: %lu of %lu wrong, first [%lu] = %.9g expected %.9g",
                 (unsigned long)bad, (unsigned long)(rows * NF), (unsigned long)first, bad ? (double)out[first] : 0.0,
                 bad ? ref[first] : 0.0);
    }

    /* tiled im2col: odd chunk sizes assemble the same matrix */
    {
        size_t chunk = 5, r0;
        for (r0 = 0; r0 < rows; r0 += chunk) {
            size_t nr = rows - r0 < chunk ? rows - r0 : chunk;
            nn_im2col(&g, r0, nr, x, tiled + r0 * K);
        }
        TT_SAME_ARR("im2col in chunks of 5 rows == one call", tiled, col, rows * K);
        TT_GUARDS_OK(tiled);
    }

    /* adjoint: <im2col(x), y> == <x, col2im(y)> */
    {
        double lhs = 0, rhs = 0, mag = 0;
        nn_col2im(&g, 0, rows, y, dx);
        TT_GUARDS_OK(dx);
        for (i = 0; i < rows * K; i++) {
            lhs += (double)col[i] * y[i];
            mag += fabs((double)col[i] * y[i]);
        }
        for (i = 0; i < nx; i++) rhs += (double)x[i] * dx[i];
        TT_CHECK(fabs(lhs - rhs) <= 1e-5 * mag + 1e-30, "<im2col(x),y> = %.12g but <x,col2im(y)> = %.12g", lhs, rhs);
        /* direct scatter in double as a second reference */
        {
            double *acc = (double *)calloc(nx, sizeof(double));
            size_t bad = 0;
            for (i = 0; i < rows; i++) {
                size_t pix = i, ohw = (size_t)oh * ow, b2 = pix / ohw, rem = pix % ohw;
                int py = (int)(rem / ow), px = (int)(rem % ow);
                const float *src = y + i * K;
                for (ky = 0; ky < cc->kh; ky++)
                    for (kx = 0; kx < cc->kw; kx++) {
                        int iy = py * cc->stride - pt + ky, ix = px * cc->stride - pl + kx;
                        for (ch = 0; ch < cc->c; ch++, src++)
                            if (iy >= 0 && iy < cc->h && ix >= 0 && ix < cc->w)
                                acc[((b2 * cc->h + iy) * cc->w + ix) * cc->c + ch] += *src;
                    }
            }
            for (i = 0; i < nx; i++)
                if (!(fabs(acc[i] - dx[i]) <= 1e-5 * (1.0 + fabs(acc[i])))) bad++;
            TT_CHECK(bad == 0, "col2im vs direct scatter: %lu of %lu elements wrong", (unsigned long)bad,
                     (unsigned long)nx);
            free(acc);
        }
    }
    /* col2im accumulates (dx += ...), also when tiled */
    {
        size_t chunk = 7, r0;
        for (j = 0; j < nx; j++) dx2[j] = 0.0f;
        for (r0 = 0; r0 < rows; r0 += chunk) {
            size_t nr = rows - r0 < chunk ? rows - r0 : chunk;
            nn_col2im(&g, r0, nr, y + r0 * K, dx2);
        }
        TT_SAME_ARR("col2im in chunks of 7 rows == one call", dx2, dx, nx);
        for (j = 0; j < nx; j++) dx2[j] = 1.0f;
        nn_col2im(&g, 0, rows, y, dx2);
        {
            size_t bad = 0;
            for (j = 0; j < nx; j++)
                if (!(fabs((double)dx2[j] - (1.0 + dx[j])) <= 1e-5 * (1.0 + fabs(dx[j])))) bad++;
            TT_CHECK(bad == 0, "col2im must add into dx: %lu elements wrong", (unsigned long)bad);
        }
        TT_GUARDS_OK(dx2);
    }
    tt_xfree(x);
    tt_xfree(wt);
    tt_gfree(col);
    tt_gfree(tiled);
    tt_gfree(out);
    tt_xfree(y);
    tt_gfree(dx);
    tt_gfree(dx2);
    free(ref);
    free(tol);
}

static void test_geom_errors(void) {
    nn_conv_geom g;
    tt_ctx("conv/geometry errors");
    TT_EQ_INT(nn_conv_geom_init(&g, 1, 3, 3, 1, 4, 3, 1, 0), NN_ERR_SHAPE);
    TT_EQ_INT(nn_conv_geom_init(&g, 1, 3, 3, 1, 3, 4, 1, 0), NN_ERR_SHAPE);
    TT_EQ_INT(nn_conv_geom_init(&g, 1, 3, 3, 1, 3, 3, 1, 0), NN_OK); /* kernel == input: one pixel */
    TT_CHECK(g.oh == 1 && g.ow == 1, "3x3 kernel on 3x3 valid: %dx%d", g.oh, g.ow);
    TT_EQ_INT(nn_conv_geom_init(&g, 1, 3, 3, 1, 4, 4, 1, 1), NN_OK); /* same padding: fine */
    TT_CHECK(g.oh == 3 && g.ow == 3, "4x4 kernel on 3x3 same: %dx%d", g.oh, g.ow);
    TT_EQ_INT(nn_conv_geom_init(&g, 0, 3, 3, 1, 3, 3, 1, 0), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_conv_geom_init(&g, 1, 0, 3, 1, 3, 3, 1, 0), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_conv_geom_init(&g, 1, 3, -3, 1, 3, 3, 1, 0), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_conv_geom_init(&g, 1, 3, 3, 0, 3, 3, 1, 0), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_conv_geom_init(&g, 1, 3, 3, 1, 0, 3, 1, 0), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_conv_geom_init(&g, 1, 3, 3, 1, 3, -1, 1, 0), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_conv_geom_init(&g, 1, 3, 3, 1, 3, 3, 0, 0), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_conv_geom_init(&g, 1, 3, 3, 1, 3, 3, -2, 1), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_conv_geom_init(&g, -1, 3, 3, 1, 3, 3, 1, 1), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_conv_geom_init(NULL, 1, 3, 3, 1, 3, 3, 1, 0), NN_ERR_INVALID_ARGUMENT);

    /* by hand: 1x3x3x1 input 1..9, 2x2 kernel of ones, valid -> 12 16 24 28 */
    {
        float x[9], col[16], w[4] = {1, 1, 1, 1}, out[4];
        int i;
        tt_ctx("conv/by hand");
        for (i = 0; i < 9; i++) x[i] = (float)(i + 1);
        TT_EQ_INT(nn_conv_geom_init(&g, 1, 3, 3, 1, 2, 2, 1, 0), NN_OK);
        nn_im2col(&g, 0, 4, x, col);
        TT_CHECK(col[0] == 1 && col[1] == 2 && col[2] == 4 && col[3] == 5 && col[12] == 5 && col[15] == 9,
                 "im2col 3x3 / 2x2: row0 = %g %g %g %g", (double)col[0], (double)col[1], (double)col[2],
                 (double)col[3]);
        TT_EQ_INT(nn_sgemm(0, 0, 4, 1, 4, 1.0f, col, 4, w, 1, 0.0f, out, 1), NN_OK);
        TT_CHECK(out[0] == 12 && out[1] == 16 && out[2] == 24 && out[3] == 28, "conv by hand: %g %g %g %g",
                 (double)out[0], (double)out[1], (double)out[2], (double)out[3]);
        /* same padding, 3x3 kernel on 3x3: pt = pl = 1, corner rows start with zeros */
        TT_EQ_INT(nn_conv_geom_init(&g, 1, 3, 3, 1, 3, 3, 1, 1), NN_OK);
        TT_CHECK(g.pt == 1 && g.pl == 1 && g.oh == 3 && g.ow == 3, "same 3x3: pt=%d pl=%d", g.pt, g.pl);
    }
}


/* conv2d layers that run as Winograd F(2x2,3x3) against the same model
 * switched to im2col + SGEMM (nn_conv_winograd): outputs, loss and every
 * gradient agree to rounding, under every backend; odd sizes, both
 * paddings, channel counts off the vector width, a batch of one. */
static void winograd_vs_direct(nn_backend b) {
    static const int shapes[][6] = {/* h, w, c, filters, same, batch */
                                    {7, 5, 9, 8, 0, 3},  {7, 5, 9, 8, 1, 3},  {13, 13, 32, 64, 0, 4},
                                    {6, 6, 17, 33, 1, 2}, {3, 3, 8, 8, 1, 1}, {4, 9, 8, 12, 1, 5}};
    size_t s;
    for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int H = shapes[s][0], W = shapes[s][1], C = shapes[s][2], F = shapes[s][3], same = shapes[s][4];
        int B = shapes[s][5], v, i;
        nn_model *mm[2];
        size_t n = (size_t)B * H * W * C, np = 0, no = 0, j;
        float *x = (float *)malloc(n * sizeof(float)), *y = (float *)malloc((size_t)B * sizeof(float));
        float loss[2], *out[2], *g[2];
        nn_rng r;
        tt_ctx("conv[%s] winograd vs im2col h=%d w=%d c=%d f=%d %s batch %d", nn_backend_name(b), H, W, C, F,
               same ? "same" : "valid", B);
        nn_rng_seed(&r, 900 + s);
        for (j = 0; j < n; j++) x[j] = nn_rng_uniform(&r) * 2.0f - 0.7f;
        for (i = 0; i < B; i++) y[i] = (float)(i % 3);
        for (v = 0; v < 2; v++) {
            nn_model *m = nn_model_new(nn_shape3(H, W, C));
            nn_model_seed(m, 5);
            nn_conv2d_ex(m, F, 3, 3, 1, same, NN_RELU);
            nn_conv2d_ex(m, F + 3, 3, 3, 1, same, NN_TANH);
            nn_flatten(m);
            nn_dense(m, 3, NN_SOFTMAX);
            TT_EQ_INT(nn_compile(m, nn_sgd(0.0f), NN_LOSS_SPARSE_CATEGORICAL_CE), NN_OK);
            if (v) {
                TT_EQ_INT(nn_conv_winograd(m, 0, 0), NN_OK);
                TT_EQ_INT(nn_conv_winograd(m, 1, 0), NN_OK);
            }
            TT_EQ_INT(nn_forward(m, x, B, 1), NN_OK);
            TT_EQ_INT(nn_backward(m, y, &loss[v], NULL), NN_OK);
            out[v] = (float *)malloc((size_t)B * 3 * sizeof(float));
            memcpy(out[v], nn_output(m), (size_t)B * 3 * sizeof(float));
            g[v] = nn_model_grads(m, &np);
            mm[v] = m;
            no = (size_t)B * 3;
        }
        TT_CLOSE(loss[0], loss[1], 1e-5);
        TT_CMP_ARR("probabilities: Winograd vs im2col", out[0], out[1], NULL, no, 1e-5, 1e-6);
        {
            float gmax = 0.0f;
            for (j = 0; j < np; j++) gmax = fabsf(g[1][j]) > gmax ? fabsf(g[1][j]) : gmax;
            TT_CMP_ARR("every gradient: Winograd vs im2col", g[0], g[1], NULL, np, 1e-4, 1e-5 * gmax);
        }
        for (v = 0; v < 2; v++) {
            nn_model_free(mm[v]);
            free(out[v]);
        }
        free(x);
        free(y);
    }
}
/* conv + ReLU + max-pool 2x2 runs fused, image by image (the conv output
 * is never stored): the model's forward must equal the layers run one by
 * one (nn_predict_layers does not fuse), pooled outputs bit for bit. */
static void fused_conv_pool(void) {
    nn_model *m = nn_model_new(nn_shape3(11, 9, 1));
    enum { B = 3 };
    float x[B * 11 * 9], pa[B * 4], pb[B * 4];
    size_t i;
    nn_rng r;
    tt_ctx("conv: fused conv+ReLU+max-pool vs layer by layer");
    nn_rng_seed(&r, 77);
    for (i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = nn_rng_uniform(&r);
    nn_model_seed(m, 3);
    nn_conv2d(m, 6, 3, NN_RELU); /* 9x7x6, pooled to 4x3x6 (odd sizes: a row and a column dropped) */
    nn_maxpool2d(m, 2);
    nn_flatten(m);
    nn_dense(m, 4, NN_SOFTMAX);
    TT_EQ_INT(nn_compile(m, nn_adam(1e-3f), NN_LOSS_SPARSE_CATEGORICAL_CE), NN_OK);
    TT_EQ_INT(nn_predict(m, x, B, pa), NN_OK);
    TT_EQ_INT(nn_predict_layers(m, 0, 4, x, B, pb), NN_OK);
    TT_SAME_ARR("probabilities: fused forward == layer by layer", pa, pb, B * 4);
    TT_EQ_INT(nn_forward(m, x, B, 1), NN_OK); /* fused, training mode (keeps the argmax) */
    TT_SAME_ARR("probabilities: fused training forward == layer by layer", nn_output(m), pb, B * 4);
    nn_model_free(m);
}
/* A conv2d layer's output (nn_predict_layers: the layer alone) against the
 * direct sum in double from its own weights and bias, for each way the
 * layer can run: the transposed col of few-channel inputs (C < 4: C = 1 at
 * stride 1 takes a memcpy path), the row col (C >= 4), and Winograd. */
static void layer_vs_direct(nn_backend be) {
    static const int cs[][8] = {/* h, w, c, f, k, stride, same, batch */
                                {9, 7, 1, 5, 3, 1, 0, 3}, {9, 7, 1, 5, 3, 1, 1, 2}, {8, 9, 1, 4, 3, 2, 1, 2},
                                {6, 5, 3, 4, 3, 1, 1, 2}, {7, 6, 2, 3, 5, 2, 0, 2}, {6, 7, 5, 6, 3, 1, 0, 2},
                                {9, 8, 8, 9, 3, 1, 1, 2}, {5, 5, 1, 3, 1, 1, 0, 2}};
    size_t s;
    for (s = 0; s < sizeof cs / sizeof cs[0]; s++) {
        int H = cs[s][0], W = cs[s][1], C = cs[s][2], F = cs[s][3], k = cs[s][4], st = cs[s][5], same = cs[s][6];
        int B = cs[s][7], oh, ow, pt, pl, b, oy, ox, f, ky, kx, ch, bad = 0;
        conv_case cc;
        nn_model *m = nn_model_new(nn_shape3(H, W, C));
        size_t nx = (size_t)B * H * W * C, ny, i, nw, nb;
        float *x = (float *)malloc(nx * sizeof(float)), *y, *wt, *bias;
        double worst = 0.0;
        nn_rng r;
        cc.n = B, cc.h = H, cc.w = W, cc.c = C, cc.kh = k, cc.kw = k, cc.stride = st, cc.same = same;
        expected_geom(&cc, &oh, &ow, &pt, &pl);
        ny = (size_t)B * oh * ow * F;
        y = (float *)malloc(ny * sizeof(float));
        tt_ctx("conv[%s] layer vs direct sum h=%d w=%d c=%d f=%d k=%d stride=%d %s%s", nn_backend_name(be), H, W,
               C, F, k, st, same ? "same" : "valid", s % 2 ? " relu" : "");
        nn_rng_seed(&r, 300 + s);
        for (i = 0; i < nx; i++) x[i] = nn_rng_uniform(&r) * 2.0f - 1.0f;
        nn_model_seed(m, 9);
        nn_conv2d_ex(m, F, k, k, st, same, s % 2 ? NN_RELU : NN_LINEAR); /* ReLU: in the SGEMM's store */
        TT_EQ_INT(nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE), NN_OK);
        wt = nn_layer_weights(m, 0, &nw);
        bias = nn_layer_bias(m, 0, &nb);
        for (i = 0; i < nb; i++) bias[i] = 0.1f * (float)(i + 1); /* non-zero bias */
        TT_EQ_INT(nn_predict_layers(m, 0, 1, x, B, y), NN_OK);
        for (b = 0; b < B; b++)
            for (oy = 0; oy < oh; oy++)
                for (ox = 0; ox < ow; ox++)
                    for (f = 0; f < F; f++) {
                        double sum = bias[f], d;
                        for (ky = 0; ky < k; ky++)
                            for (kx = 0; kx < k; kx++)
                                for (ch = 0; ch < C; ch++) {
                                    int iy = oy * st - pt + ky, ix = ox * st - pl + kx;
                                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                    sum += (double)x[(((size_t)b * H + iy) * W + ix) * C + ch] *
                                           wt[(((size_t)ky * k + kx) * C + ch) * F + f];
                                }
                        if (s % 2 && sum < 0.0) sum = 0.0;
                        d = fabs(sum - y[(((size_t)b * oh + oy) * ow + ox) * F + f]);
                        if (d > worst) worst = d;
                        bad += d > 1e-5 * (1.0 + fabs(sum));
                    }
        TT_CHECK(bad == 0, "%d of %lu outputs differ from the direct sum (worst %g)", bad, (unsigned long)ny, worst);
        nn_model_free(m);
        free(x);
        free(y);
    }
}
/* The same pair with an activation layer between conv and ReLU (never
 * fused) must give the same gradients, after a training-mode and after an
 * inference-mode forward (the fused forward keeps the argmax either way),
 * with the conv first (fused backward) or second. */
static void fused_vs_unfused_grads(void) {
    enum { B = 3, H = 10, W = 9 };
    int lead, training;
    for (lead = 0; lead < 2; lead++)
        for (training = 0; training < 2; training++) {
            nn_model *m[2];
            float x[B * H * W], y[B] = {0, 1, 2}, loss[2], *g[2];
            size_t i, n[2];
            int v, conv = lead, dense[2];
            nn_rng r;
            tt_ctx("conv: fused conv+ReLU+max-pool gradients vs unfused (conv at layer %d, %s forward)", lead,
                   training ? "training" : "inference");
            nn_rng_seed(&r, 78);
            for (i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = nn_rng_uniform(&r);
            for (v = 0; v < 2; v++) {
                m[v] = nn_model_new(nn_shape3(H, W, 1));
                nn_model_seed(m[v], 4);
                if (lead) nn_conv2d_ex(m[v], 2, 1, 1, 1, 0, NN_LINEAR);
                nn_conv2d(m[v], 5, 3, v ? NN_LINEAR : NN_RELU);
                if (v) nn_activation_layer(m[v], NN_RELU);
                nn_maxpool2d(m[v], 2);
                nn_flatten(m[v]);
                nn_dense(m[v], 3, NN_SOFTMAX);
                dense[v] = nn_model_num_layers(m[v]) - 1;
                TT_EQ_INT(nn_compile(m[v], nn_sgd(0.0f), NN_LOSS_SPARSE_CATEGORICAL_CE), NN_OK);
            }
            /* same parameters in both */
            for (i = 0; i < 2; i++) {
                int la = i ? dense[0] : conv, lb = i ? dense[1] : conv;
                size_t na, nb;
                float *wa = nn_layer_weights(m[0], la, &na), *wb = nn_layer_weights(m[1], lb, &nb);
                if (wa && wb && na == nb) memcpy(wb, wa, na * sizeof(float));
                wa = nn_layer_bias(m[0], la, &na), wb = nn_layer_bias(m[1], lb, &nb);
                if (wa && wb && na == nb) memcpy(wb, wa, na * sizeof(float));
            }
            if (lead) {
                size_t na, nb;
                float *wa = nn_layer_weights(m[0], 0, &na), *wb = nn_layer_weights(m[1], 0, &nb);
                memcpy(wb, wa, na * sizeof(float));
                (void)nb;
            }
            for (v = 0; v < 2; v++) {
                TT_EQ_INT(nn_forward(m[v], x, B, training), NN_OK);
                TT_EQ_INT(nn_backward(m[v], y, &loss[v], NULL), NN_OK);
            }
            TT_CLOSE(loss[0], loss[1], 1e-6);
            g[0] = nn_layer_weight_grads(m[0], conv, &n[0]);
            g[1] = nn_layer_weight_grads(m[1], conv, &n[1]);
            TT_CMP_ARR("conv weight gradients: fused vs unfused", g[0], g[1], NULL, n[0], 1e-5, 1e-6);
            g[0] = nn_layer_bias_grads(m[0], conv, &n[0]);
            g[1] = nn_layer_bias_grads(m[1], conv, &n[1]);
            TT_CMP_ARR("conv bias gradients: fused vs unfused", g[0], g[1], NULL, n[0], 1e-5, 1e-6);
            if (lead) {
                g[0] = nn_layer_weight_grads(m[0], 0, &n[0]);
                g[1] = nn_layer_weight_grads(m[1], 0, &n[1]);
                TT_CMP_ARR("first (1x1) conv gradients: fused vs unfused", g[0], g[1], NULL, n[0], 1e-5, 1e-6);
            }
            nn_model_free(m[0]);
            nn_model_free(m[1]);
        }
}
static void winograd_switch(void) {
    nn_model *m = nn_model_new(nn_shape3(8, 8, 8));
    tt_ctx("conv: nn_conv_winograd");
    nn_conv2d(m, 8, 3, NN_RELU);        /* 0: eligible */
    nn_conv2d_ex(m, 8, 5, 5, 1, 1, NN_RELU); /* 1: 5x5 */
    nn_conv2d_ex(m, 8, 3, 3, 2, 1, NN_RELU); /* 2: stride 2 */
    nn_flatten(m);                      /* 3 */
    nn_dense(m, 2, NN_SOFTMAX);
    TT_EQ_INT(nn_compile(m, nn_adam(1e-3f), NN_LOSS_SPARSE_CATEGORICAL_CE), NN_OK);
    TT_EQ_INT(nn_conv_winograd(m, 0, 0), NN_OK);
    TT_EQ_INT(nn_conv_winograd(m, 0, 1), NN_OK);
    TT_EQ_INT(nn_conv_winograd(m, 1, 1), NN_ERR_INVALID_ARGUMENT);
    TT_CHECK(strstr(nn_model_error(m), "not 3x3") != NULL, "message: %s", nn_model_error(m));
    TT_EQ_INT(nn_conv_winograd(m, 2, 1), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_conv_winograd(m, 1, 0), NN_OK); /* off is always allowed */
    TT_EQ_INT(nn_conv_winograd(m, 3, 0), NN_ERR_INVALID_ARGUMENT);
    TT_CHECK(strstr(nn_model_error(m), "not a conv2d") != NULL, "message: %s", nn_model_error(m));
    TT_EQ_INT(nn_conv_winograd(m, 9, 0), NN_ERR_INVALID_ARGUMENT);
    TT_EQ_INT(nn_conv_winograd(NULL, 0, 0), NN_ERR_INVALID_ARGUMENT);
    {
        float x[2 * 8 * 8 * 8] = {0}, y[2] = {0, 1}, loss;
        TT_EQ_INT(nn_train_on_batch(m, x, y, 2, &loss, NULL), NN_OK); /* the model still trains */
        TT_EQ_INT(nn_forward(m, x, 2, 1), NN_OK);
        TT_EQ_INT(nn_conv_winograd(m, 0, 0), NN_OK); /* switching re-plans at the next forward... */
        TT_EQ_INT(nn_backward(m, y, &loss, NULL), NN_ERR_STATE); /* ...so no backward of the old one */
        TT_EQ_INT(nn_train_on_batch(m, x, y, 2, &loss, NULL), NN_OK);
        TT_EQ_INT(nn_forward(m, x, 2, 1), NN_OK);
        TT_EQ_INT(nn_conv_winograd(m, 0, 1), NN_OK);
        TT_EQ_INT(nn_backward(m, y, &loss, NULL), NN_ERR_STATE);
        TT_EQ_INT(nn_train_on_batch(m, x, y, 2, &loss, NULL), NN_OK);
    }
    nn_model_free(m);
}

void test_conv(void) {
    const nn_backend *all = tt_backends; /* NN_BACKEND_LIST, scalar first */
    size_t bi, k;
    test_geom_errors();
    for (bi = 0; bi < (size_t)TT_NBACKENDS; bi++) {
        if (!tt_use_backend("conv", all[bi])) continue;
        for (k = 0; k < sizeof cases / sizeof cases[0]; k++) run_case(all[bi], &cases[k], 500 + (unsigned)k, bi == 0);
        tt_set_backend(all[bi]);
        winograd_vs_direct(all[bi]);
        layer_vs_direct(all[bi]);
    }
    (void)nn_set_backend(NN_BACKEND_AUTO);
    winograd_switch();
    fused_conv_pool();
    fused_vs_unfused_grads();
}
