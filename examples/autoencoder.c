/* autoencoder.c - a (denoising) autoencoder on Fashion-MNIST, with pictures.
 *
 *   cc -O2 -o autoencoder examples/autoencoder.c -lm
 *   ./autoencoder --epochs 5                       # dense 784-128-32-128-784
 *   ./autoencoder --code 2 --out ae2               # 2-D code: also ae2_codes.png, ae2_manifold.png
 *   ./autoencoder --noise 0.3 --out dae            # denoising: noisy input, clean target
 *   ./autoencoder --model conv --out cae           # convolutional, 7x7x8 code
 *   ./autoencoder --data DIR                       # other images (below)
 *   ./autoencoder --int8                           # also the int8 model's test MSE (nn_quantize)
 *
 * The image size comes from the data: --data DIR (default data/fashion-mnist, `make data`) holds
 * four gunzipped IDX files named as Fashion-MNIST's (train-images-idx3-ubyte,
 * train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte), gray images of
 * one size H x W (28x28 for Fashion-MNIST, so P = H*W = 784 pixels) and labels 0..9 (the
 * colours of PREFIX_codes.png); train and test must have the same size.
 *
 * Models (MSE loss on pixels in [0,1], Adam 1e-3, batch 32, 5 epochs by default):
 *   dense: Dense(128, relu) Dense(code, linear) | Dense(128, relu) Dense(P, sigmoid)
 *   conv:  Conv(16,3x3,same,relu) MaxPool2 Conv(8,3x3,same,relu) MaxPool2 | [H/4 x W/4 x 8 code]
 *          Upsample2 Conv(8,3x3,same,relu) Upsample2 Conv(1,3x3,same,sigmoid)
 *          (the two poolings need H and W divisible by 4: other sizes stop with a message)
 * '|' marks the split: the encoder is layers [0,k), the decoder [k, layers), and
 * nn_predict_layers runs either one alone.
 *
 * A custom loop: every epoch the training images are shuffled with a seeded
 * nn_rng, each batch of 32 is converted from uint8 to [0,1] floats (target),
 * and with --noise S the input is the target plus Gaussian noise of std S,
 * clipped to [0,1]; nn_train_on_batch does forward, backward and the Adam step.
 * train_s times the batch loop only (batch building and training steps; not
 * loading, shuffling or evaluation).  test_mse: mean squared error over all
 * pixels of the test images (10k for Fashion-MNIST; inputs noisy like training, with their own
 * seeded noise, when --noise > 0), against the clean images.
 *
 * Pictures (examples/common/png.h, no dependencies):
 *   PREFIX_recon.png     16 test originals on top, (the noisy inputs,) the reconstructions below; 3x scale
 *   PREFIX_codes.png     --code 2 only: the 2-D codes of the test images, coloured by class; the
 *                        legend on the right shows each colour with a test image of that class
 *                        (scaled to fit 56x56: 2x for 28x28)
 *   PREFIX_manifold.png  --code 2 only: the decoder run on a 20x20 grid of codes spanning the scatter
 *                        plot's area (same orientation: code[0] grows to the right, code[1] upwards);
 *                        20H x 20W pixels
 * Class colours (matplotlib's tab10): 0 T-shirt/top blue, 1 Trouser orange, 2 Pullover green,
 * 3 Dress red, 4 Coat purple, 5 Sandal brown, 6 Shirt pink, 7 Sneaker gray, 8 Bag olive,
 * 9 Ankle boot cyan.
 *
 * Flags: --data --epochs --batch --seed --limit --backend --lr --save --threads N
 * (0: every core; default NN_THREADS or every core), and
 * --model dense|conv --code N (1..P, dense only) --noise S (>= 0) --out PREFIX.
 * Progress on stderr; stdout gets one line:
 *   RESULT test_mse=0.0123 train_s=... epochs=5 s_per_epoch=... model=dense code=32 backend=avx512 threads=2
 * (" noise=S" is appended when --noise > 0, " int8_test_mse=M" with --int8). */
#define NN_IMPLEMENTATION
#include "../nn.h"
#include "common/args.h"
#include "common/fashion.h"
#include "common/png.h"

#include <errno.h>
#include <math.h>

#define AE_SHOW 16  /* images in PREFIX_recon.png */
#define AE_SCALE 3  /* pixel size in PREFIX_recon.png */
#define AE_GRID 20  /* PREFIX_manifold.png is AE_GRID x AE_GRID decoded images */
#define AE_PLOT 600 /* scatter plot area, pixels */

static const unsigned char ae_palette[10][3] = {
    {31, 119, 180},  /* 0 T-shirt/top  blue   */
    {255, 127, 14},  /* 1 Trouser      orange */
    {44, 160, 44},   /* 2 Pullover     green  */
    {214, 39, 40},   /* 3 Dress        red    */
    {148, 103, 189}, /* 4 Coat         purple */
    {140, 86, 75},   /* 5 Sandal       brown  */
    {227, 119, 194}, /* 6 Shirt        pink   */
    {127, 127, 127}, /* 7 Sneaker      gray   */
    {188, 189, 34},  /* 8 Bag          olive  */
    {23, 190, 207},  /* 9 Ankle boot   cyan   */
};

typedef struct ae_opts {
    const char *model, *out;
    int code, code_given;
    float noise;
} ae_opts;

/* Takes --model --code --noise --out out of argv (the rest goes to ex_parse).
 * Returns 0, or 1 after printing what is wrong. */
static int ae_parse(int *argc, char **argv, ae_opts *o) {
    int i, j = 1;
    for (i = 1; i < *argc; i++) {
        const char *f = argv[i], *v = i + 1 < *argc ? argv[i + 1] : NULL;
        char *end;
        int ours = !strcmp(f, "--model") || !strcmp(f, "--code") || !strcmp(f, "--noise") || !strcmp(f, "--out");
        if (!ours) {
            argv[j++] = argv[i];
            continue;
        }
        if (!v) {
            fprintf(stderr, "%s: flag %s needs a value\n", argv[0], f);
            return 1;
        }
        i++;
        if (!strcmp(f, "--model")) {
            if (strcmp(v, "dense") && strcmp(v, "conv")) {
                fprintf(stderr, "%s: --model must be dense or conv, not '%s'\n", argv[0], v);
                return 1;
            }
            o->model = v;
        } else if (!strcmp(f, "--code")) {
            long c;
            errno = 0;
            c = strtol(v, &end, 10);
            if (end == v || *end || errno) {
                fprintf(stderr, "%s: --code needs a whole number, not '%s'\n", argv[0], v);
                return 1;
            }
            if (c < 1 || c > 1000000000L) { /* the bound, the images' pixel count, is checked once they are loaded */
                fprintf(stderr, "%s: --code %ld does not fit: the bottleneck must have at least 1 unit "
                                "(and at most as many as the images have pixels)\n", argv[0], c);
                return 1;
            }
            o->code = (int)c;
            o->code_given = 1;
        } else if (!strcmp(f, "--noise")) {
            double s = strtod(v, &end);
            if (end == v || *end || !(s >= 0.0 && s <= 1e6)) {
                fprintf(stderr, "%s: --noise needs a standard deviation >= 0, not '%s'\n", argv[0], v);
                return 1;
            }
            o->noise = (float)s;
        } else {
            if (!*v) {
                fprintf(stderr, "%s: --out needs a non-empty prefix\n", argv[0]);
                return 1;
            }
            o->out = v;
        }
    }
    argv[j] = NULL;
    *argc = j;
    return 0;
}

/* Standard normal deviates from a seeded nn_rng, two at a time (Marsaglia's polar method: one
 * logf and one sqrtf per pair, several times cheaper than nn_rng_normal's double-precision
 * Box-Muller, which keeps --noise from dominating the timed loop). */
typedef struct ae_gauss {
    nn_rng rng;
    float spare;
    int has_spare;
} ae_gauss;
static float ae_normal(ae_gauss *g) {
    float u, v, s, f;
    if (g->has_spare) {
        g->has_spare = 0;
        return g->spare;
    }
    do {
        u = 2.0f * nn_rng_uniform(&g->rng) - 1.0f;
        v = 2.0f * nn_rng_uniform(&g->rng) - 1.0f;
        s = u * u + v * v;
    } while (s >= 1.0f || s == 0.0f);
    f = sqrtf(-2.0f * logf(s) / s);
    g->spare = v * f;
    g->has_spare = 1;
    return u * f;
}

/* uint8 images of npix pixels -> floats in [0,1]; with noise > 0 also the noisy copy, clipped to [0,1] */
static void ae_make_batch(const unsigned char *u8, size_t npix, const int *idx, int start, int B, float noise,
                          ae_gauss *rng, float *clean, float *noisy) {
    int b;
    size_t j;
    for (b = 0; b < B; b++) {
        int i = idx ? idx[start + b] : start + b;
        nn_vconvert_u8(npix, u8 + (size_t)i * npix, 1.0f / 255.0f, clean + (size_t)b * npix);
    }
    if (noise > 0.0f)
        for (j = 0; j < (size_t)B * npix; j++) {
            float v = clean[j] + noise * ae_normal(rng);
            noisy[j] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
        }
}

static unsigned char ae_u8(float v) {
    v = v * 255.0f + 0.5f;
    return (unsigned char)(v <= 0.0f ? 0 : (v >= 255.0f ? 255 : (int)v));
}

/* rows of AE_SHOW h x w images (each h*w floats in [0,1]), scaled AE_SCALE x, 2-pixel gray gaps */
static int ae_write_recon(const char *path, const float *const *rows, int nrows, int h, int w) {
    const int gap = 2, cellw = w * AE_SCALE + gap, cellh = h * AE_SCALE + gap;
    int W = AE_SHOW * cellw + gap, H = nrows * cellh + gap, r, i, y, x, rc;
    unsigned char *img = (unsigned char *)malloc((size_t)W * H);
    if (!img) return -1;
    memset(img, 110, (size_t)W * H);
    for (r = 0; r < nrows; r++)
        for (i = 0; i < AE_SHOW; i++)
            for (y = 0; y < h * AE_SCALE; y++)
                for (x = 0; x < w * AE_SCALE; x++)
                    img[(size_t)(gap + r * cellh + y) * W + gap + i * cellw + x] =
                        ae_u8(rows[r][(size_t)i * h * w + (size_t)(y / AE_SCALE) * w + x / AE_SCALE]);
    rc = png_write_gray(path, W, H, img);
    free(img);
    return rc;
}

static int ae_cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}
/* [lo, hi] of the central 99% of v[0], v[stride], ... (n values), widened by 5% */
static void ae_range(const float *v, int n, int stride, float *lo, float *hi) {
    float *t = (float *)malloc(sizeof(float) * (size_t)n), pad;
    int i;
    if (!t) {
        *lo = -1.0f;
        *hi = 1.0f;
        return;
    }
    for (i = 0; i < n; i++) t[i] = v[(size_t)i * stride];
    qsort(t, (size_t)n, sizeof(float), ae_cmp_float);
    *lo = t[(int)(0.005 * (n - 1))];
    *hi = t[(int)(0.995 * (n - 1))];
    free(t);
    if (!(*hi > *lo)) *hi = *lo + 1.0f;
    pad = 0.05f * (*hi - *lo);
    *lo -= pad;
    *hi += pad;
}

static void ae_rect(unsigned char *img, int W, int H, int x0, int y0, int w, int h, const unsigned char *rgb) {
    int x, y;
    for (y = y0; y < y0 + h; y++)
        for (x = x0; x < x0 + w; x++)
            if (x >= 0 && y >= 0 && x < W && y < H) memcpy(img + ((size_t)y * W + x) * 3, rgb, 3);
}

/* Scatter plot of the 2-D codes coloured by label; legend: colour swatch + a test image of the class in its colour
 * (the h x w images scaled to fit 56x56: by a whole factor when they are smaller, 2x for 28x28). */
static int ae_write_codes(const char *path, const float *codes, const float *labels, const unsigned char *u8, int n,
                          int h, int w, float x0, float x1, float y0, float y1) {
    static const unsigned char white[3] = {255, 255, 255}, black[3] = {0, 0, 0}, axis[3] = {200, 200, 200};
    const int M = 20, LX = M + AE_PLOT + 24, LW = 24 + 8 + 56 + M, W = LX + LW, H = AE_PLOT + 2 * M;
    const int big = h > w ? h : w, num = big <= 56 ? 56 / big : 56, den = big <= 56 ? 1 : big;
    const int th = h * num / den > 0 ? h * num / den : 1, tw = w * num / den > 0 ? w * num / den : 1;
    unsigned char *img = (unsigned char *)malloc((size_t)W * H * 3);
    int i, c, rc, px, py;
    if (!img) return -1;
    ae_rect(img, W, H, 0, 0, W, H, white);
    /* the axes code = 0 where they fall inside the plot, then a frame */
    px = (int)((0.0f - x0) / (x1 - x0) * AE_PLOT);
    py = (int)((y1 - 0.0f) / (y1 - y0) * AE_PLOT);
    if (px > 0 && px < AE_PLOT) ae_rect(img, W, H, M + px, M, 1, AE_PLOT, axis);
    if (py > 0 && py < AE_PLOT) ae_rect(img, W, H, M, M + py, AE_PLOT, 1, axis);
    for (i = 0; i < n; i++) {
        int lab = (int)labels[i];
        float fx = (codes[2 * i] - x0) / (x1 - x0), fy = (y1 - codes[2 * i + 1]) / (y1 - y0);
        if (lab < 0 || lab > 9 || !(fx >= 0.0f && fx < 1.0f && fy >= 0.0f && fy < 1.0f)) continue;
        ae_rect(img, W, H, M + (int)(fx * AE_PLOT) - 1, M + (int)(fy * AE_PLOT) - 1, 3, 3, ae_palette[lab]);
    }
    ae_rect(img, W, H, M - 1, M - 1, AE_PLOT + 2, 1, black);
    ae_rect(img, W, H, M - 1, M + AE_PLOT, AE_PLOT + 2, 1, black);
    ae_rect(img, W, H, M - 1, M - 1, 1, AE_PLOT + 2, black);
    ae_rect(img, W, H, M + AE_PLOT, M - 1, 1, AE_PLOT + 2, black);
    /* legend: one row of 60 pixels per class, top to bottom 0..9; the image centred vertically in 56 */
    for (c = 0; c < 10; c++) {
        int top = M + c * 60 + 2, y, x;
        for (i = 0; i < n && (int)labels[i] != c; i++) {}
        ae_rect(img, W, H, LX, top + 16, 24, 24, ae_palette[c]);
        if (i == n) continue;
        top += (56 - th) / 2;
        for (y = 0; y < th; y++)
            for (x = 0; x < tw; x++) {
                unsigned v = u8[(size_t)i * h * w + (size_t)(y * den / num) * w + x * den / num];
                unsigned char *p = img + ((size_t)(top + y) * W + LX + 32 + x) * 3;
                int k;
                for (k = 0; k < 3; k++) p[k] = (unsigned char)(255 - v * (255u - ae_palette[c][k]) / 255u);
            }
    }
    rc = png_write_rgb(path, W, H, img);
    free(img);
    return rc;
}

/* AE_GRID x AE_GRID decoded images, h x w each, no gaps; row 0 = largest code[1] */
static int ae_write_manifold(const char *path, const float *dec, int h, int w) {
    const int W = AE_GRID * w, H = AE_GRID * h;
    unsigned char *img = (unsigned char *)malloc((size_t)W * H);
    int gy, gx, y, x, rc;
    if (!img) return -1;
    for (gy = 0; gy < AE_GRID; gy++)
        for (gx = 0; gx < AE_GRID; gx++)
            for (y = 0; y < h; y++)
                for (x = 0; x < w; x++)
                    img[(size_t)(gy * h + y) * W + gx * w + x] =
                        ae_u8(dec[(size_t)(gy * AE_GRID + gx) * h * w + (size_t)y * w + x]);
    rc = png_write_gray(path, W, H, img);
    free(img);
    return rc;
}

int main(int argc, char **argv) {
    ex_args a;
    ae_opts o;
    nn_dataset train, test;
    nn_model *m;
    nn_rng rng;
    ae_gauss nrng;
    int *perm = NULL, conv, k, nl, epoch, i, n, nt, h, w, code_dim, rc = 1;
    size_t npix, e;
    float *xb = NULL, *tb = NULL, *xtest = NULL, *ctest = NULL, *recon = NULL, *codes = NULL;
    double train_s = 0.0, se = 0.0, test_mse, q_mse = -1.0;
    char path[1024];
    int int8 = ex_flag(&argc, argv, "--int8");
    const char *usage = "[--data DIR] [--epochs N] [--batch B] [--seed S] [--limit N] [--backend NAME] [--lr LR] "
                        "[--save FILE] [--model dense|conv] [--code N] [--noise S] [--out PREFIX] [--threads N] [--int8]";

    memset(&a, 0, sizeof a);
    a.data = "data/fashion-mnist";
    a.epochs = 5;
    a.batch = 32;
    a.seed = 1;
    a.lr = 1e-3f;
    memset(&o, 0, sizeof o);
    o.model = "dense";
    o.out = "ae";
    o.code = 32;
    if (ae_parse(&argc, argv, &o)) {
        fprintf(stderr, "usage: %s %s\n", argv[0], usage);
        return 2;
    }
    if (ex_parse(argc, argv, &a, usage) || ex_backend(a.backend)) return 2;
    if (ex_threads(argv[0], a.threads)) return 1;
    conv = !strcmp(o.model, "conv");
    if (ex_load_fashion(a.data, a.limit, &train, &test)) return 1;

    /* ---- the image size, h x w gray pixels, from the data ---- */
    h = train.shape.d[0];
    w = train.shape.d[1];
    if (!train.x_u8 || !test.x_u8 || train.shape.ndim != 3 || train.shape.d[2] != 1 || h < 1 || w < 1) {
        fprintf(stderr, "expected uint8 gray images (h, w, 1) in %s\n", a.data);
        goto done_data;
    }
    if (test.shape.ndim != 3 || test.shape.d[0] != h || test.shape.d[1] != w || test.shape.d[2] != 1) {
        fprintf(stderr, "the images in %s differ in size: the training images are %dx%d, the test images %dx%d\n",
                a.data, h, w, test.shape.d[0], test.shape.d[1]);
        goto done_data;
    }
    npix = (size_t)h * (size_t)w;
    if (train.n < 1 || test.n < AE_SHOW) {
        fprintf(stderr, "%s has %d training and %d test images: needs at least 1 training and %d test images\n",
                a.data, train.n, test.n, AE_SHOW);
        goto done_data;
    }
    if (conv && (h % 4 || w % 4)) {
        fprintf(stderr, "--model conv pools twice by 2, so it needs image height and width divisible by 4; "
                        "the images in %s are %dx%d\n", a.data, h, w);
        goto done_data;
    }
    if (!conv && (size_t)o.code > npix) {
        fprintf(stderr, "%s: --code %d does not fit: the bottleneck must have 1 to %d units "
                        "(the images have %d pixels, %dx%d)\nusage: %s %s\n",
                argv[0], o.code, (int)npix, (int)npix, h, w, argv[0], usage);
        rc = 2;
        goto done_data;
    }
    if (conv && o.code_given)
        fprintf(stderr, "note: --code is ignored with --model conv (its code is the %dx%dx8 = %d feature map)\n",
                h / 4, w / 4, h / 4 * (w / 4) * 8);

    /* ---- the model; k = number of encoder layers (code layer index + 1) ---- */
    m = nn_model_new(conv ? nn_shape3(h, w, 1) : nn_shape1((int)npix));
    if (!m) goto done_data;
    nn_model_seed(m, a.seed);
    if (conv) {
        nn_conv2d_ex(m, 16, 3, 3, 1, 1, NN_RELU);
        nn_maxpool2d(m, 2);
        nn_conv2d_ex(m, 8, 3, 3, 1, 1, NN_RELU);
        nn_maxpool2d(m, 2); /* h/4 x w/4 x 8 code: 7x7x8 for 28x28 */
        k = 4;
        nn_upsample2d(m, 2);
        nn_conv2d_ex(m, 8, 3, 3, 1, 1, NN_RELU);
        nn_upsample2d(m, 2);
        nn_conv2d_ex(m, 1, 3, 3, 1, 1, NN_SIGMOID);
        code_dim = h / 4 * (w / 4) * 8;
    } else {
        nn_dense(m, 128, NN_RELU);
        nn_dense(m, o.code, NN_LINEAR); /* the code */
        k = 2;
        nn_dense(m, 128, NN_RELU);
        nn_dense(m, (int)npix, NN_SIGMOID);
        code_dim = o.code;
    }
    if (nn_compile(m, nn_adam(a.lr), NN_LOSS_MSE) != NN_OK) {
        fprintf(stderr, "compile: %s\n", nn_model_error(m));
        goto done;
    }
    nl = nn_model_num_layers(m);
    /* the images as the model takes them: (h,w,1) for conv, h*w features for dense */
    train.shape = test.shape = conv ? nn_shape3(h, w, 1) : nn_shape1((int)npix);
    nn_model_summary(m, stderr);
    fprintf(stderr, "backend %s on %s; %s autoencoder, code %d, noise %g, train %d, test %d, batch %d\n",
            nn_backend_name(nn_get_backend()), nn_cpu_description(), o.model, code_dim, (double)o.noise, train.n,
            test.n, a.batch);

    n = train.n;
    nt = test.n;
    perm = (int *)malloc(sizeof(int) * (size_t)n);
    xb = (float *)malloc(sizeof(float) * npix * (size_t)a.batch * 2);
    xtest = (float *)malloc(sizeof(float) * npix * (size_t)nt);
    ctest = (float *)malloc(sizeof(float) * npix * (size_t)nt);
    recon = (float *)malloc(sizeof(float) * npix * (size_t)nt);
    if (!perm || !xb || !xtest || !ctest || !recon) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    tb = xb + npix * (size_t)a.batch;
    for (i = 0; i < n; i++) perm[i] = i;
    nn_rng_seed(&rng, a.seed);
    memset(&nrng, 0, sizeof nrng);
    nn_rng_seed(&nrng.rng, a.seed + 1000003UL); /* the noise: its own stream */

    /* ---- training ---- */
    for (epoch = 1; epoch <= a.epochs; epoch++) {
        double t0, dt, lsum = 0.0;
        int start;
        for (i = n - 1; i > 0; i--) { /* Fisher-Yates, outside the timed loop */
            int j = (int)nn_rng_below(&rng, (uint32_t)i + 1), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        t0 = nn_time_seconds();
        for (start = 0; start < n; start += a.batch) {
            int B = n - start < a.batch ? n - start : a.batch;
            float loss;
            nn_status s;
            ae_make_batch(train.x_u8, npix, perm, start, B, o.noise, &nrng, tb, xb);
            s = nn_train_on_batch(m, o.noise > 0.0f ? xb : tb, tb, B, &loss, NULL);
            if (s != NN_OK) {
                fprintf(stderr, "epoch %d, batch at %d: %s\n", epoch, start, nn_model_error(m));
                goto done;
            }
            lsum += (double)loss * B;
        }
        dt = nn_time_seconds() - t0;
        train_s += dt;
        fprintf(stderr, "epoch %d/%d: loss %.5f, %.3f s (%.0f img/s)\n", epoch, a.epochs, lsum / n, dt, n / dt);
    }

    /* ---- test MSE: nn_predict in batches of 1000, against the clean images ---- */
    ae_make_batch(test.x_u8, npix, NULL, 0, nt, o.noise, &nrng, ctest, xtest);
    if (o.noise <= 0.0f) memcpy(xtest, ctest, sizeof(float) * npix * (size_t)nt);
    for (i = 0; i < nt; i += 1000) {
        int B = nt - i < 1000 ? nt - i : 1000;
        if (nn_predict(m, xtest + (size_t)i * npix, B, recon + (size_t)i * npix) != NN_OK) {
            fprintf(stderr, "predict: %s\n", nn_model_error(m));
            goto done;
        }
    }
    for (e = 0; e < (size_t)nt * npix; e++) {
        double d = (double)recon[e] - (double)ctest[e];
        se += d * d;
    }
    test_mse = se / ((double)nt * (double)npix);
    fprintf(stderr, "test MSE %.5f over %d images\n", test_mse, nt);
    if (int8) { /* the model quantized with 1000 training images: its test MSE */
        nn_model *q = NULL;
        nn_status qs = nn_quantize(m, &train, train.n < 1000 ? train.n : 1000, &q);
        if (qs != NN_OK) {
            fprintf(stderr, "int8: %s (%s)\n", nn_strerror(qs), nn_model_error(m));
            goto done;
        }
        se = 0.0;
        for (i = 0; i < nt && qs == NN_OK; i += 1000) {
            int B = nt - i < 1000 ? nt - i : 1000, j;
            float *rq = recon + (size_t)i * npix;
            qs = nn_predict(q, xtest + (size_t)i * npix, B, rq);
            for (j = 0; j < B * (int)npix; j++) {
                double d = (double)rq[j] - (double)ctest[(size_t)i * npix + (size_t)j];
                se += d * d;
            }
        }
        nn_model_free(q);
        if (qs != NN_OK) {
            fprintf(stderr, "int8 predict: %s\n", nn_strerror(qs));
            goto done;
        }
        q_mse = se / ((double)nt * (double)npix);
        fprintf(stderr, "int8: test MSE %.5f\n", q_mse);
        /* the float reconstructions again for the pictures below */
        for (i = 0; i < nt; i += 1000) {
            int B = nt - i < 1000 ? nt - i : 1000;
            nn_predict(m, xtest + (size_t)i * npix, B, recon + (size_t)i * npix);
        }
    }

    /* ---- encoder and decoder alone must give the full model's output ---- */
    codes = (float *)malloc(sizeof(float) * (size_t)code_dim * (size_t)nt);
    if (!codes) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    if (nn_predict_layers(m, 0, k, xtest, nt, codes) != NN_OK) {
        fprintf(stderr, "encoder: %s\n", nn_model_error(m));
        goto done;
    }
    {
        float *dec = (float *)malloc(sizeof(float) * AE_SHOW * npix), md = 0.0f;
        if (!dec) {
            fprintf(stderr, "out of memory\n");
            goto done;
        }
        if (nn_predict_layers(m, k, nl, codes, AE_SHOW, dec) != NN_OK) {
            fprintf(stderr, "decoder: %s\n", nn_model_error(m));
            free(dec);
            goto done;
        }
        for (e = 0; e < AE_SHOW * npix; e++) md = fmaxf(md, fabsf(dec[e] - recon[e]));
        free(dec);
        fprintf(stderr, "decoder(encoder(x)) vs the full model on %d images: max |diff| %.2g%s\n", AE_SHOW,
                (double)md, md > 1e-5f ? " -- MISMATCH" : "");
    }

    /* ---- pictures ---- */
    {
        const float *rows[3];
        int nr = 0;
        rows[nr++] = ctest;
        if (o.noise > 0.0f) rows[nr++] = xtest;
        rows[nr++] = recon;
        snprintf(path, sizeof path, "%s_recon.png", o.out);
        if (ae_write_recon(path, rows, nr, h, w)) fprintf(stderr, "could not write %s\n", path);
        else fprintf(stderr, "wrote %s (originals%s, reconstructions)\n", path, o.noise > 0.0f ? ", noisy inputs" : "");
    }
    if (!conv && o.code == 2) {
        float x0, x1, y0, y1, *grid, *dec;
        int gx, gy;
        ae_range(codes, nt, 2, &x0, &x1);
        ae_range(codes + 1, nt, 2, &y0, &y1);
        snprintf(path, sizeof path, "%s_codes.png", o.out);
        if (ae_write_codes(path, codes, test.y, test.x_u8, nt, h, w, x0, x1, y0, y1))
            fprintf(stderr, "could not write %s\n", path);
        else
            fprintf(stderr, "wrote %s (code[0] in [%.2f, %.2f] left to right, code[1] in [%.2f, %.2f] bottom to top)\n",
                    path, (double)x0, (double)x1, (double)y0, (double)y1);
        grid = (float *)malloc(sizeof(float) * 2 * AE_GRID * AE_GRID);
        dec = (float *)malloc(sizeof(float) * npix * AE_GRID * AE_GRID);
        if (!grid || !dec) {
            free(grid);
            free(dec);
            fprintf(stderr, "out of memory\n");
            goto done;
        }
        for (gy = 0; gy < AE_GRID; gy++)
            for (gx = 0; gx < AE_GRID; gx++) { /* cell centres; row 0 at the top = largest code[1] */
                grid[2 * (gy * AE_GRID + gx)] = x0 + (x1 - x0) * (gx + 0.5f) / AE_GRID;
                grid[2 * (gy * AE_GRID + gx) + 1] = y1 - (y1 - y0) * (gy + 0.5f) / AE_GRID;
            }
        if (nn_predict_layers(m, k, nl, grid, AE_GRID * AE_GRID, dec) != NN_OK) {
            fprintf(stderr, "decoder: %s\n", nn_model_error(m));
            free(grid);
            free(dec);
            goto done;
        }
        snprintf(path, sizeof path, "%s_manifold.png", o.out);
        if (ae_write_manifold(path, dec, h, w)) fprintf(stderr, "could not write %s\n", path);
        else fprintf(stderr, "wrote %s (%dx%d decoded grid over the scatter plot's area)\n", path, AE_GRID, AE_GRID);
        free(grid);
        free(dec);
    }
    if (a.save && nn_save(m, a.save, 0) != NN_OK) fprintf(stderr, "could not save %s\n", a.save);

    printf("RESULT test_mse=%.4f train_s=%.2f epochs=%d s_per_epoch=%.3f model=%s code=%d backend=%s threads=%d",
           test_mse, train_s, a.epochs, train_s / a.epochs, o.model, code_dim, nn_backend_name(nn_get_backend()),
           nn_get_threads());
    if (o.noise > 0.0f) printf(" noise=%g", (double)o.noise);
    if (int8) printf(" int8_test_mse=%.4f", q_mse);
    printf("\n");
    rc = 0;
done:
    free(codes);
    free(recon);
    free(ctest);
    free(xtest);
    free(xb);
    free(perm);
    nn_model_free(m);
done_data:
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    return rc;
}
