/* nn.h - a SIMD-optimised, single-header C library for training and running
 *        small neural networks.                           public domain / MIT
 *
 * Not to be confused with the other projects called "nn.h" (tsoding's nn.h
 * and others): this is an stb-style library with run-time SIMD dispatch.
 *
 * USAGE
 *   In exactly one C or C++ file:
 *       #define NN_IMPLEMENTATION
 *       #include "nn.h"
 *   Everywhere else just #include "nn.h".  Build: cc -O2 prog.c -lm
 *   No -mavx2 is needed: AVX2 / AVX-512 kernels are compiled with target
 *   attributes and chosen at run time (see nn_set_backend).  Training and
 *   inference use every core (see nn_set_threads; NN_THREADS=1 for one);
 *   POSIX threads are in libc on glibc >= 2.34, musl and macOS; an older
 *   glibc needs -pthread.
 *   WebAssembly: emcc -O2 -msimd128 prog.c builds the SIMD128 backend
 *   (without -msimd128: scalar only); without -pthread everything runs on
 *   the calling thread.
 *
 * CONFIGURATION (define before including the implementation)
 *   NN_STATIC          all functions static (private copy per translation unit)
 *   NN_MALLOC/NN_FREE  replace the allocator (define both or neither)
 *   NN_ASSERT(x)       replace assert (used only for internal invariants)
 *   NN_NO_SIMD         build the scalar backend only
 *   NN_NO_THREADS      no thread pool: everything on the calling thread,
 *                      no pthread (or Win32 thread) symbol referenced
 *
 * GLOBAL STATE
 *   Process-global mutable state, all of it:
 *   - the kernel backend choice (nn_set_backend).  It is made once, by the
 *     first kernel call (AUTO) or by nn_set_backend, and read and written
 *     atomically: two threads that make their first call at the same time
 *     get the same table.  Set it before training; separate models may be
 *     used from separate threads as long as nobody changes the backend
 *     meanwhile.
 *   - the thread pool (section 3.1): the thread count (nn_set_threads,
 *     atomic), the workers and the one parallel region in progress.  A
 *     region that finds the pool busy (another user thread's) runs on its
 *     caller alone, with the same results.  fork() children start a pool of
 *     their own.
 *   - write-once facts, filled by the first caller while others wait: the
 *     text of nn_cpu_description, the cache sizes and core count, and the
 *     SGEMM block sizes derived from them (one per backend); and whether
 *     the CPU has AVX512_VNNI, or on aarch64 the dot product (the int8
 *     GEMM asks CPUID or getauxval once: any caller computes the same
 *     value, stored with a relaxed atomic).
 *
 * VALIDATION POLICY
 *   Functions returning nn_status validate their arguments (null pointers,
 *   negative sizes, leading dimensions) and never crash on bad input.  The
 *   vector kernels nn_v*() and the other void kernels are hot-path calls that
 *   trust their caller: sizes and pointers must be right.
 *
 * TABLE OF CONTENTS   (grep -n "^/\* =\+ [0-9]\|^/\* -\+ [0-9]" nn.h)
 *   1. Configuration
 *   2. Public types and API
 *   3. Platform: status strings, allocation, RNG, tensors, time, CPU features
 *      3.1 threads: the pool and its parallel regions (nn__par)
 *   4. Kernels (the only intrinsics), the list of a table's slots (NN__KSLOTS)
 *      4.1 scalar backend (the reference)
 *      4.2 SIMD kernels written once against a small vocabulary
 *      4.3 AVX2+FMA, 4.4 AVX-512, 4.5 NEON, 4.5b WebAssembly SIMD128
 *          vocabularies and micro-kernels
 *      4.6 backend tables (NN_BACKEND_LIST) and dispatch
 *      4.7 SGEMM driver (packing, blocking)
 *      4.8 im2col / col2im
 *      4.9 int8 GEMM (exact: the core of int8 inference)
 *   5. Layers: the layer and model records, the row of a layer kind
 *      (and the checklist "Adding a layer")
 *      5.1 helpers shared by the layers
 *      5.2 the layers: dense, conv2d (im2col, Winograd), pooling, global
 *          average pooling, flatten, activation, dropout, batch norm,
 *          normalization, upsampling, embedding, RNN / LSTM / GRU
 *      5.3 the table of layer kinds
 *   6. Losses and optimizers
 *   7. Model
 *      7.1 build, 7.2 compile (the fusion pass), 7.3 the memory plan,
 *      7.4 forward and backward, 7.5 layer access and the summary,
 *      7.6 training and inference: fit, evaluate, predict
 *   8. Data and I/O
 *      8.1 datasets, 8.2 loaders (IDX, CSV), 8.3 model files (format 2),
 *      8.4 safetensors (PyTorch's names and layouts, both ways)
 *   9. int8 inference: nn_quantize, the int8 ops and their forward, files
 *
 * LICENSE: see end of file.
 */

/* ========================================================================= */
/* ==== 1. Configuration                                                      */
/* ========================================================================= */
#ifndef NN_H_INCLUDED
#define NN_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define NN_VERSION_MAJOR 0
#define NN_VERSION_MINOR 4
#define NN_VERSION_PATCH 1
#define NN_VERSION "0.4.1"

#ifndef NNDEF
#ifdef NN_STATIC
#define NNDEF static
#else
#define NNDEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ========================================================================= */
/* ==== 2. Public types and API                                               */
/* ========================================================================= */

/* ---- status ------------------------------------------------------------- */
typedef enum nn_status {
    NN_OK = 0,
    NN_ERR_INVALID_ARGUMENT, /* null pointer, negative size, bad stride      */
    NN_ERR_NO_MEMORY,        /* NN_MALLOC returned NULL                      */
    NN_ERR_UNSUPPORTED,      /* backend not compiled in or not on this CPU   */
    NN_ERR_SHAPE,            /* shapes do not fit together                   */
    NN_ERR_IO,               /* could not open / read / write a file         */
    NN_ERR_FORMAT,           /* malformed, truncated or corrupt file         */
    NN_ERR_NONFINITE,        /* NaN or Inf in data, loss or activations      */
    NN_ERR_STATE             /* call not valid in the object's current state */
} nn_status;

/* A sentence describing a status code; never NULL. */
NNDEF const char *nn_strerror(nn_status s);

/* ---- kernel backends (the one piece of global state) -------------------- */
/* Every backend, in increasing order of preference (AUTO picks the last
 * one available): X(ID, name).  This one list generates the enum, the
 * names, the availability checks and the tables (section 4.6); programs
 * and tests may expand it too.  Values are stable: new backends go last.
 *   scalar  always present, the reference
 *   avx2    AVX2 + FMA
 *   avx512  AVX-512F (Zen 4/5, Skylake-X ...)
 *   neon    aarch64 Advanced SIMD
 *   wasm    WebAssembly SIMD128 (built with -msimd128) */
#define NN_BACKEND_LIST(X)                                                                         \
    X(SCALAR, scalar) X(AVX2, avx2) X(AVX512, avx512) X(NEON, neon) X(WASM, wasm)
#define NN__BACKEND_ENUM(id, name) NN_BACKEND_##id,
typedef enum nn_backend {
    NN_BACKEND_AUTO = 0,
    NN_BACKEND_LIST(NN__BACKEND_ENUM) NN_BACKEND_COUNT /* one past the last */
} nn_backend;

/* Select the kernels.  AUTO honours the NN_BACKEND environment variable
 * (scalar|avx2|avx512|neon|wasm|auto) when set, else picks the best the CPU and
 * OS support.  Returns NN_ERR_UNSUPPORTED (and changes nothing) when the
 * build or the CPU lacks the backend, NN_ERR_INVALID_ARGUMENT for an
 * unknown value. */
NNDEF nn_status nn_set_backend(nn_backend b);
/* The concrete backend in use (never AUTO).  First call initialises AUTO. */
NNDEF nn_backend nn_get_backend(void);
/* 1 when the backend is compiled in and the CPU/OS can run it. */
NNDEF int nn_backend_available(nn_backend b);
/* "scalar", "avx2", "avx512", "neon", "auto"; "unknown" otherwise. */
NNDEF const char *nn_backend_name(nn_backend b);
/* Parse one of the names above (case-sensitive). */
NNDEF nn_status nn_backend_from_name(const char *name, nn_backend *out);
/* A short description of the CPU ("AMD EPYC ... family 26 avx2 avx512f"). */
NNDEF const char *nn_cpu_description(void);

/* ---- threads ------------------------------------------------------------- */
/* Worker threads for training and inference (a pool inside nn.h, started on
 * first use, sleeping when idle).  n >= 1 threads, or 0 = every core this
 * process may run on (its CPU affinity); at most NN_MAX_THREADS.  The default
 * is the NN_THREADS environment variable when it holds such a number, else
 * every core.  1 runs everything on the calling thread with no pool at all.
 * Results do not depend on the count: training with 1, 2, 3 or 8 threads
 * gives the same weights bit for bit.  Thread-safe; a region that finds the
 * pool busy (another user thread's) runs on its caller alone.  Built with
 * NN_NO_THREADS: always 1 (nn_set_threads(n > 1) returns NN_ERR_UNSUPPORTED). */
#define NN_MAX_THREADS 64
NNDEF nn_status nn_set_threads(int n);
/* the number in use (reads NN_THREADS on the first call) */
NNDEF int nn_get_threads(void);
/* cores this process may run on (affinity), at least 1 */
NNDEF int nn_cpu_cores(void);

/* ---- memory --------------------------------------------------------------- */
/* 64-byte aligned block from NN_MALLOC (over-allocates); NULL on failure
 * or overflow.  Free with nn_aligned_free. */
NNDEF void *nn_aligned_alloc(size_t bytes);
NNDEF void nn_aligned_free(void *p);

/* ---- random numbers: PCG32, seeded, reproducible --------------------------- */
typedef struct nn_rng {
    uint64_t state, inc;
} nn_rng;
NNDEF void nn_rng_seed(nn_rng *r, uint64_t seed);
NNDEF uint32_t nn_rng_u32(nn_rng *r);
NNDEF uint32_t nn_rng_below(nn_rng *r, uint32_t bound); /* uniform in [0,bound) */
NNDEF float nn_rng_uniform(nn_rng *r);                  /* uniform in [0,1)     */
NNDEF float nn_rng_normal(nn_rng *r);                   /* N(0,1), Box-Muller  */

/* ---- tensors ---------------------------------------------------------------- */
/* float32, row-major, up to 4 dimensions; images are NHWC, sequences
 * (batch, time, features).  data is 64-byte aligned when nn.h allocated it. */
#define NN_MAX_DIMS 4
typedef struct nn_tensor {
    float *data;
    int ndim;
    int shape[NN_MAX_DIMS];
    size_t size; /* product of shape */
    int owns;    /* 1 when nn_tensor_free releases data */
} nn_tensor;
/* Allocate a zero-filled tensor; dims with ndim entries, each > 0. */
NNDEF nn_status nn_tensor_init(nn_tensor *t, int ndim, const int *dims);
/* Wrap caller memory (not freed by nn_tensor_free). */
NNDEF nn_status nn_tensor_wrap(nn_tensor *t, float *data, int ndim, const int *dims);
NNDEF void nn_tensor_free(nn_tensor *t);
NNDEF void nn_tensor_fill(nn_tensor *t, float v);

/* ---- vector kernels (hot path: no validation, any alignment) -------------
 * They run on the current backend.  In-place use (y == x) is allowed.     */
NNDEF void nn_vadd(size_t n, const float *a, const float *b, float *y); /* y = a + b   */
NNDEF void nn_vsub(size_t n, const float *a, const float *b, float *y); /* y = a - b   */
NNDEF void nn_vmul(size_t n, const float *a, const float *b, float *y); /* y = a * b   */
NNDEF void nn_vscale(size_t n, float s, const float *x, float *y);      /* y = s * x   */
NNDEF void nn_vaxpy(size_t n, float a, const float *x, float *y);       /* y += a * x  */
NNDEF float nn_vdot(size_t n, const float *a, const float *b);          /* sum a*b     */
NNDEF float nn_vsum(size_t n, const float *x);                          /* sum x       */
NNDEF float nn_vmax(size_t n, const float *x);                          /* max x; -inf if n==0 */
NNDEF void nn_vexp(size_t n, const float *x, float *y);                 /* y = e^x     */
NNDEF void nn_vrelu(size_t n, const float *x, float *y);                /* y = max(x,0), NaN kept */
NNDEF void nn_vsigmoid(size_t n, const float *x, float *y);             /* y = 1/(1+e^-x) */
NNDEF void nn_vtanh(size_t n, const float *x, float *y);                /* y = tanh x  */
/* y = scale * x */
NNDEF void nn_vconvert_u8(size_t n, const unsigned char *x, float scale, float *y);
/* Derivatives from the forward output y:  dx = dy * f'(x)                 */
/* dx = dy*(y>0), dy*y*(1-y), dy*(1-y^2) */
NNDEF void nn_vrelu_backward(size_t n, const float *y, const float *dy, float *dx);
NNDEF void nn_vsigmoid_backward(size_t n, const float *y, const float *dy, float *dx);
NNDEF void nn_vtanh_backward(size_t n, const float *y, const float *dy, float *dx);
/* Row-wise softmax of a rows x cols matrix, stable (subtracts the row max). */
NNDEF void nn_softmax_rows(size_t rows, size_t cols, const float *x, float *y);
/* dx = y * (dy - sum_j dy_j y_j), row-wise. */
NNDEF void nn_softmax_backward_rows(size_t rows, size_t cols, const float *y, const float *dy,
                                    float *dx);

/* 2x2 max-pool, stride 2, NHWC.  x (n,h,w,c) -> y (n,h/2,w/2,c), floor.
 * Backward writes every element of dx (n,h,w,c): dy goes to the first
 * maximum of each window (row-major order), zero elsewhere. */
NNDEF void nn_maxpool2x2(int n, int h, int w, int c, const float *x, float *y);
NNDEF void nn_maxpool2x2_backward(int n, int h, int w, int c, const float *x, const float *y,
                                  const float *dy, float *dx);
/* The same forward also writing idx (n,h/2,w/2,c): the window position of
 * each maximum as a float, 0..3 row-major (4: none, a NaN window); and the
 * backward from idx, which does not read x. */
NNDEF void nn_maxpool2x2_argmax(int n, int h, int w, int c, const float *x, float *y, float *idx);
/* Global average pooling, NHWC: x (n, hw pixels, c) -> y (n, c), each the
 * sum of its hw pixels in order, divided by hw; the backward writes every
 * element of dx (n, hw, c) = dy / hw.  Equal on every backend, bit for bit. */
NNDEF void nn_global_avgpool(size_t n, size_t hw, size_t c, const float *x, float *y);
NNDEF void nn_global_avgpool_backward(size_t n, size_t hw, size_t c, const float *dy, float *dx);
NNDEF void nn_maxpool2x2_backward_argmax(int n, int h, int w, int c, const float *idx,
                                         const float *dy, float *dx);

/* Winograd F(4x4,3x3) transforms, the kernels of 3x3 stride-1 conv2d layers
 * (see nn_conv_winograd).  Each works on c (or f) channels of each point
 * of a tile, point i at offset i*stride of the output (or input):
 *   input   v (36 points) = B^T d B of the 6x6 tile of pixels p[0..35]
 *   output  the 4x4 result A^T m A of 36 points (+ bias[c] if bias, then
 *           ReLU if relu) into y[0..15] (a NULL pointer skips that pixel)
 *   filter  u (36 points) = G g G^T of a 3x3 filter g[0..8]
 *   dy      u (36 points) = A g A^T of a 4x4 tile of the output gradient
 *   wgrad   the 3x3 weight gradient dw[0..8] = G^T m G of a summed tile
 * (all row-major; the matrices are listed at nn__s_bt6 in the
 * implementation). */
NNDEF void nn_winograd_input(size_t c, const float *const *p, float *v, size_t vstride);
NNDEF void nn_winograd_output(size_t f, const float *m, size_t mstride, const float *bias, int relu,
                              float *const *y);
NNDEF void nn_winograd_filter(size_t f, const float *const *g, float *u, size_t ustride);
NNDEF void nn_winograd_dy(size_t f, const float *const *g, float *u, size_t ustride);
NNDEF void nn_winograd_wgrad(size_t f, const float *m, size_t mstride, float *const *dw);

/* Optimizer updates over a flat parameter buffer (PyTorch's formulas).
 * SGD:  g' = g + wd*w;  v = mu*v + g';  step = nesterov ? g' + mu*v : v
 *       (mu == 0: step = g', v untouched and may be NULL);  w -= lr*step  */
NNDEF void nn_sgd_update(size_t n, float *w, const float *g, float *v, float lr, float momentum,
                         float weight_decay, int nesterov);
/* Adam (adamw=0: L2 wd added to g) / AdamW (adamw=1: w *= 1-lr*wd).  t is
 * the 1-based step.  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 * w -= (lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps)                  */
NNDEF void nn_adam_update(size_t n, float *w, const float *g, float *m, float *v, float lr,
                          float beta1, float beta2, float eps, float weight_decay, int adamw,
                          long t);

/* RMSprop: g' = g + wd*w;  v = rho*v + (1-rho) g'^2;  w -= lr g'/(sqrt(v)+eps) */
NNDEF void nn_rmsprop_update(size_t n, float *w, const float *g, float *v, float lr, float rho,
                             float eps, float weight_decay);

/* ---- SGEMM ------------------------------------------------------------------
 * Row-major BLAS semantics: C = alpha*op(A)*op(B) + beta*C, op(X) = X or X^T
 * (transa/transb 0 or 1).  op(A) is m x k, op(B) k x n, C m x n.  beta == 0
 * never reads C.  Returns NN_ERR_INVALID_ARGUMENT for negative sizes, bad
 * leading dimensions or null pointers (when the matrix is used).
 * nn_sgemm allocates its packing buffers per call (NN_MALLOC) and splits
 * products of 10^5 multiply-adds or more over nn_get_threads() threads
 * (every C element by one thread: the same bits for any count);
 * nn_sgemm_ws takes workspace of nn_sgemm_ws_size(m,n,k) bytes (any
 * alignment), allocates nothing and runs on the calling thread. */
NNDEF nn_status nn_sgemm(int transa, int transb, int m, int n, int k, float alpha, const float *a,
                         int lda, const float *b, int ldb, float beta, float *c, int ldc);
NNDEF size_t nn_sgemm_ws_size(int m, int n, int k);
NNDEF nn_status nn_sgemm_ws(int transa, int transb, int m, int n, int k, float alpha,
                            const float *a, int lda, const float *b, int ldb, float beta, float *c,
                            int ldc, void *workspace);

/* ---- convolution geometry, im2col / col2im (NHWC) -------------------------
 * x (n,h,w,c); a kh x kw window at stride (sh,sw) with pt/pl zeros on top /
 * left (and whatever the bottom / right needs).  col has one row per output
 * pixel (n*oh*ow rows) and kh*kw*c columns ordered (ky, kx, channel),
 * matching weights stored (KH,KW,C,F). */
typedef struct nn_conv_geom {
    int n, h, w, c;
    int kh, kw, sh, sw;
    int pt, pl;
    int oh, ow;
} nn_conv_geom;
/* same_padding 0: 'valid'; 1: 'same' (TensorFlow rule: oh = ceil(h/stride),
 * extra padding goes to the bottom/right); NN_PADDING(p): p zeros on every
 * side, PyTorch's padding=p (oh = floor((h + 2p - kh) / stride) + 1: a
 * Conv2d(k=3, stride=2, padding=1) on an even input, which 'same' cannot
 * express).  Validates all sizes. */
#define NN_PADDING(p) (-1 - (p))
NNDEF nn_status nn_conv_geom_init(nn_conv_geom *g, int n, int h, int w, int c, int kh, int kw,
                                  int stride, int same_padding);
/* Rows [row0, row0+rows) of the col matrix (for tiling large batches). */
NNDEF void nn_im2col(const nn_conv_geom *g, size_t row0, size_t rows, const float *x, float *col);
/* dx += col2im(col) for the same rows; zero dx first for a plain col2im. */
NNDEF void nn_col2im(const nn_conv_geom *g, size_t row0, size_t rows, const float *col, float *dx);

/* ---- models: layers, losses, optimizers, training ---------------------------
 * Build a sequential model, compile it with an optimizer and a loss, fit,
 * evaluate, predict, save.  Builder calls record the first error in the
 * model (a sticky error) and turn into no-ops after it; nn_compile reports
 * it, and nn_model_error() gives the sentence naming the layer and shapes.
 *
 * Memory: nn_compile allocates the parameters (one contiguous buffer); the
 * gradients and the optimizer state (one buffer each) come with the first
 * call that needs them (backward, step, a gradient accessor), so a model
 * used only for inference holds its parameters alone.  Batch size is not known at
 * compile: the activation arena (activations, gradients, im2col tiles and
 * SGEMM workspace in one block) is sized at the first step that needs more
 * (first fit step, first predict) and never again while the batch size
 * stays the same or shrinks.  A training step allocates nothing. */
typedef enum nn_activation {
    NN_LINEAR = 0, /* identity */
    NN_RELU,
    NN_LEAKY_RELU, /* slope 0.01 below zero (nn_leaky_relu_slope to change) */
    NN_SIGMOID,
    NN_TANH,
    NN_SOFTMAX /* over the last dimension */
} nn_activation;

typedef enum nn_loss {
    NN_LOSS_NONE = 0,
    NN_LOSS_MSE,                               /* mean over all outputs                      */
    NN_LOSS_BINARY_CE,                         /* needs a sigmoid output: fused, stable      */
    NN_LOSS_BINARY_CE_FROM_LOGITS,             /* linear output, sigmoid inside the loss     */
    NN_LOSS_CATEGORICAL_CE,                    /* one-hot targets; needs a softmax output    */
    NN_LOSS_CATEGORICAL_CE_FROM_LOGITS,        /* linear output, softmax inside the loss     */
    NN_LOSS_SPARSE_CATEGORICAL_CE,             /* integer class targets; softmax output      */
    NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS  /* integer targets, linear output             */
} nn_loss;

typedef enum nn_opt_kind { NN_OPT_SGD = 0, NN_OPT_ADAM, NN_OPT_ADAMW, NN_OPT_RMSPROP } nn_opt_kind;
/* Optimizer settings (plain data: change fields freely before compile).
 * SGD momentum and Nesterov follow torch.optim.SGD, Adam/AdamW/RMSprop
 * follow torch.optim.  weight_decay is L2 (added to the gradient) except
 * for AdamW, where it is decoupled.  clip_norm > 0 rescales the gradient
 * when its global L2 norm exceeds it. */
typedef struct nn_optimizer {
    nn_opt_kind kind;
    float lr, momentum, beta1, beta2, eps, rho, weight_decay, clip_norm;
    int nesterov;
} nn_optimizer;
NNDEF nn_optimizer nn_sgd(float lr);
NNDEF nn_optimizer nn_sgd_momentum(float lr, float momentum, int nesterov);
NNDEF nn_optimizer nn_adam(float lr);                       /* betas 0.9, 0.999, eps 1e-8 */
NNDEF nn_optimizer nn_adamw(float lr, float weight_decay);  /* PyTorch default wd: 0.01  */
NNDEF nn_optimizer nn_rmsprop(float lr);                    /* alpha 0.99, eps 1e-8       */

/* per-sample shapes: (features), (time, features) or (height, width, channels) */
typedef struct nn_shape {
    int ndim;
    int d[3];
} nn_shape;
NNDEF nn_shape nn_shape1(int n);
NNDEF nn_shape nn_shape2(int t, int f); /* a sequence of t steps of f features */
NNDEF nn_shape nn_shape3(int h, int w, int c);

typedef struct nn_model nn_model;

NNDEF nn_model *nn_model_new(nn_shape input); /* NULL only when out of memory */
NNDEF void nn_model_free(nn_model *m);
NNDEF nn_status nn_model_status(const nn_model *m);
NNDEF const char *nn_model_error(const nn_model *m); /* last detailed message, "" if none */
NNDEF void nn_model_seed(nn_model *m, uint64_t seed); /* init, dropout, shuffle (default 42) */

/* Layers (append to the model; return the model's sticky status). */
NNDEF nn_status nn_dense(nn_model *m, int units, nn_activation act);
/* kernel k x k, stride 1, 'valid' padding */
NNDEF nn_status nn_conv2d(nn_model *m, int filters, int k, nn_activation act);
/* same_padding: 0 'valid', 1 'same', or NN_PADDING(p) (see nn_conv_geom_init) */
NNDEF nn_status nn_conv2d_ex(nn_model *m, int filters, int kh, int kw, int stride, int same_padding,
                             nn_activation act);
NNDEF nn_status nn_maxpool2d(nn_model *m, int size); /* stride = size, floor */
NNDEF nn_status nn_avgpool2d(nn_model *m, int size);
/* padding p <= size/2 on every side, PyTorch's MaxPool2d / AvgPool2d(size,
 * padding=p): max-pooling pads with -inf, average pooling with zeros that
 * count (count_include_pad=True); out = floor((in + 2p - size)/size) + 1 */
NNDEF nn_status nn_maxpool2d_ex(nn_model *m, int size, int padding);
NNDEF nn_status nn_avgpool2d_ex(nn_model *m, int size, int padding);
/* (h,w,c) -> (c): the mean of each channel over the image (Keras
 * GlobalAveragePooling2D; PyTorch AdaptiveAvgPool2d(1) then flatten) */
NNDEF nn_status nn_global_avgpool2d(nn_model *m);
NNDEF nn_status nn_flatten(nn_model *m);
/* nearest-neighbour upsampling by an integer factor: (h,w,c) -> (h*f,w*f,c)
 * (the decoder half of a convolutional autoencoder) */
NNDEF nn_status nn_upsample2d(nn_model *m, int factor);
/* Sequences (batch, time, features).  A dense layer on a (t, f) input is
 * applied at every step (time-distributed); a loss on a (t, k) output is
 * per step (sparse cross-entropy then takes t class ids per sample).
 * Embedding: input (t) token ids stored as floats -> (t, dim); an id
 * outside [0, vocab) makes nn_fit / nn_forward / nn_predict fail with
 * NN_ERR_INVALID_ARGUMENT naming the id.
 * Recurrent layers on (t, f): return_sequences 1 gives (t, units), 0 the
 * last step's state (units).  Full backpropagation through time; the input
 * projections of all steps are one SGEMM, the recurrence one SGEMM per step.
 * Gates and initialisation follow PyTorch: LSTM gates i, f, g, o; GRU
 * r, z, n with the reset gate applied after the recurrent product; all
 * weights U(-1/sqrt(units), 1/sqrt(units)), biases zero. */
NNDEF nn_status nn_embedding(nn_model *m, int vocab, int dim);
/* h = tanh(x Wx + h Wh + b) */
NNDEF nn_status nn_rnn(nn_model *m, int units, int return_sequences);
NNDEF nn_status nn_lstm(nn_model *m, int units, int return_sequences);
NNDEF nn_status nn_gru(nn_model *m, int units, int return_sequences);
/* Stateful inference (generation): nn_predict_stateful runs n samples as
 * n independent streams whose recurrent state carries over from the
 * previous call; nn_reset_state zeroes it.  It also restarts from zero when
 * n changes, and after any call that needed a larger batch than the model
 * had planned (fit, predict, evaluate), since the state lives in the arena. */
NNDEF nn_status nn_predict_stateful(nn_model *m, const float *x, int n, float *out);
NNDEF void nn_reset_state(nn_model *m);
NNDEF nn_status nn_activation_layer(nn_model *m, nn_activation act);
NNDEF nn_status nn_dropout(nn_model *m, float rate);      /* inverted dropout, train only */
NNDEF nn_status nn_batchnorm(nn_model *m);                /* momentum 0.1, eps 1e-5 (PyTorch) */
/* Keras Normalization: y = (x - mean) / max(sqrt(var), 1e-7) per feature
 * (the last dimension of the input: features, channels of an image, or
 * of every step of a sequence).  mean 0 and var 1 until
 * nn_normalization_adapt sets them from data; saved with the model. */
NNDEF nn_status nn_normalization(nn_model *m);
NNDEF nn_status nn_leaky_relu_slope(nn_model *m, float slope); /* for the last layer */
/* use_bias 0: the last layer (dense or conv2d) has no bias, PyTorch's
 * bias=False (a conv before batch norm); before nn_compile */
NNDEF nn_status nn_use_bias(nn_model *m, int use_bias);

/* Plans memory, initialises weights (He uniform before ReLU-family
 * activations, Glorot uniform otherwise; biases zero), checks the loss
 * against the output layer (cross-entropy needs softmax or _FROM_LOGITS). */
NNDEF nn_status nn_compile(nn_model *m, nn_optimizer opt, nn_loss loss);

/* Layer access for custom loops and inspection. */
NNDEF int nn_model_num_layers(const nn_model *m);
NNDEF nn_shape nn_model_input_shape(const nn_model *m);
NNDEF nn_shape nn_model_output_shape(const nn_model *m);
/* output shape of layer i (ndim 0 for a bad model or index) */
NNDEF nn_shape nn_layer_output_shape(const nn_model *m, int layer);
/* the kind of layer i as nn.h's files name it: "dense", "conv2d",
 * "maxpool2d", "lstm", ... (NULL: no layer) */
NNDEF const char *nn_layer_kind(const nn_model *m, int layer);
NNDEF size_t nn_model_num_params(const nn_model *m);
/* Weights and biases of layer i (NULL/0 if it has none); gradients alike.
 * Layouts, row-major: dense (units, in), PyTorch's Linear.weight (nn.h
 * 0.3.0 and older: (in, units)); conv2d (KH, KW, C, F); batch norm gamma;
 * embedding (vocab, dim); RNN / LSTM / GRU [Wx (F, G); Wh (H, G)]. */
NNDEF float *nn_layer_weights(nn_model *m, int layer, size_t *count);
NNDEF float *nn_layer_bias(nn_model *m, int layer, size_t *count);
NNDEF float *nn_layer_weight_grads(nn_model *m, int layer, size_t *count);
NNDEF float *nn_layer_bias_grads(nn_model *m, int layer, size_t *count);
/* The statistics a layer keeps besides its trained parameters, read and
 * write: batch norm's running mean (C floats) then running variance (C,
 * unbiased, as PyTorch's running_var); normalization's mean then variance.
 * NULL/0 for a layer without any. */
NNDEF float *nn_layer_buffers(nn_model *m, int layer, size_t *count);
NNDEF nn_status nn_layer_freeze(nn_model *m, int layer, int frozen);
/* 3x3 stride-1 conv2d layers with at least 8 input channels and 8 filters
 * run as Winograd F(4x4,3x3) (forward and both gradients: up to 4x fewer
 * multiplies; rounding differs from the direct sum by ~1e-6 relative);
 * enable = 0 switches layer `layer` to im2col + SGEMM, 1 back (if eligible).
 * Any time; the next forward re-plans the activation arena (so a backward
 * needs a forward after the switch: NN_ERR_STATE otherwise). */
NNDEF nn_status nn_conv_winograd(nn_model *m, int layer, int enable);
NNDEF float *nn_model_params(nn_model *m, size_t *count); /* all parameters, one buffer */
NNDEF float *nn_model_grads(nn_model *m, size_t *count);

/* ---- datasets ----------------------------------------------------------------
 * n samples of x (per-sample shape) and y (y_dim floats each: one class id
 * per sample for sparse cross-entropy, else targets).  Images loaded from
 * IDX stay uint8 (scaled by 1/255 per batch) to keep memory low. */
typedef struct nn_dataset {
    int n;
    nn_shape shape;  /* per-sample x shape */
    size_t x_dim;    /* floats per sample */
    int y_dim;       /* floats per target */
    float *x;        /* n * x_dim floats, or NULL when x_u8 is used */
    unsigned char *x_u8;
    float x_scale;   /* x = x_u8 * x_scale */
    float *y;        /* n * y_dim */
    int num_classes; /* for class labels: max label + 1 (0 if not labels) */
    int owns;
} nn_dataset;
/* Copy the caller's arrays (validated: no NaN/Inf). */
NNDEF nn_status nn_dataset_from_arrays(nn_dataset *ds, int n, nn_shape shape, const float *x,
                                       int y_dim, const float *y);
/* MNIST-format IDX images (u8, 3 dims) + labels (u8, 1 dim). */
NNDEF nn_status nn_dataset_load_idx(nn_dataset *ds, const char *images_path,
                                    const char *labels_path);
/* Numeric CSV: the label column by index (0-based; -1 = last; below -1:
 * NN_ERR_INVALID_ARGUMENT), the other
 * columns are features; header line skipped when has_header. */
NNDEF nn_status nn_dataset_load_csv(nn_dataset *ds, const char *path, int has_header,
                                    int label_col);
NNDEF void nn_dataset_free(nn_dataset *ds);
/* Split off the last `fraction` of samples as a view (no copy; free only
 * the original). */
NNDEF nn_status nn_dataset_split(const nn_dataset *ds, float fraction, nn_dataset *first,
                                 nn_dataset *second);
/* Copy sample i's features as floats into out (x_dim floats). */
NNDEF void nn_dataset_get_x(const nn_dataset *ds, int i, float *out);
/* Shuffle the samples (x and y rows together) in place with a seeded
 * PCG32 Fisher-Yates: a file sorted by class can then be split fairly.
 * A view (nn_dataset_split) shuffles the memory it shares. */
NNDEF nn_status nn_dataset_shuffle(nn_dataset *ds, uint64_t seed);
/* Set normalization layer `layer`'s mean and (biased) variance from the
 * samples of ds, as they reach that layer (the layers before it run in
 * inference mode, through nn_predict_layers: that may plan the arena and
 * replaces the last forward's activations).  After nn_compile, which
 * allocates the statistics (NN_ERR_STATE before it, not sticky); allocates
 * its own scratch (a batch of inputs and outputs). */
NNDEF nn_status nn_normalization_adapt(nn_model *m, int layer, const nn_dataset *ds);


/* ---- training ------------------------------------------------------------ */
typedef enum nn_schedule {
    NN_SCHEDULE_CONSTANT = 0,
    NN_SCHEDULE_STEP,
    NN_SCHEDULE_COSINE
} nn_schedule;
typedef enum nn_monitor { NN_MONITOR_VAL_LOSS = 0, NN_MONITOR_VAL_ACCURACY } nn_monitor;
typedef struct nn_fit_event {
    int epoch, epochs;      /* 1-based epoch */
    int batch, batches;     /* 1-based batch within the epoch (0 at epoch end) */
    float loss, accuracy;   /* running means over the epoch so far */
    float val_loss, val_accuracy; /* at epoch end when validating, else NAN */
    float lr;
    double elapsed_s;       /* since fit started (clock()) */
} nn_fit_event;
/* Return non-zero to stop training. */
typedef int (*nn_fit_callback)(const nn_fit_event *ev, void *user);
typedef struct nn_fit_opts {
    int epochs, batch;
    int shuffle;                 /* 1: reshuffle every epoch with the model's seeded RNG */
    const nn_dataset *val;       /* validation set, or NULL */
    float val_split;             /* if val == NULL: hold out this fraction of the training data */
    int patience;                /* early stopping: epochs without improvement (0 = off) */
    nn_monitor monitor;          /* what early stopping watches */
    int restore_best;            /* with early stopping: keep the best epoch's weights */
    nn_schedule schedule;        /* learning-rate schedule per epoch */
    int step_size;               /* STEP: multiply lr by gamma every step_size epochs */
    float gamma;
    float min_lr;                /* COSINE: anneal from lr to min_lr over the epochs */
    int verbose;                 /* 1 (default): progress on stderr; 0: silent */
    nn_fit_callback on_batch, on_epoch;
    void *user;
    double train_seconds;        /* out: wall time of the training loop only */
    int epochs_run;              /* out */
} nn_fit_opts;
NNDEF nn_fit_opts nn_fit_defaults(void);
NNDEF nn_status nn_fit(nn_model *m, const nn_dataset *train, nn_fit_opts *opts);
/* loss and accuracy over a dataset (accuracy NAN for MSE); either out may be NULL */
NNDEF nn_status nn_evaluate(nn_model *m, const nn_dataset *ds, int batch, float *loss,
                            float *accuracy);
/* Forward n samples (n * input floats) into out (n * output floats);
 * inference mode (dropout off, batch norm running stats). */
NNDEF nn_status nn_predict(nn_model *m, const float *x, int n, float *out);
NNDEF nn_status nn_predict_dataset(nn_model *m, const nn_dataset *ds, int batch, float *out);
/* Run only layers [first, last) in inference mode: x holds n inputs of
 * layer `first` (the model input when first == 0), out receives n outputs
 * of layer last-1 (pre-head: no fused softmax/sigmoid unless last == the
 * layer count).  E.g. an autoencoder's encoder (0..k) or decoder (k..n). */
NNDEF nn_status nn_predict_layers(nn_model *m, int first, int last, const float *x, int n,
                                  float *out);
/* Print a Keras-like summary table to a FILE* (stdout if NULL). */
NNDEF void nn_model_summary(const nn_model *m, void *file);

/* Custom loops: forward (training mode) on n samples, backward from
 * targets, then the optimizer step; or all three in train_on_batch. */
NNDEF nn_status nn_forward(nn_model *m, const float *x, int n, int training);
NNDEF const float *nn_output(const nn_model *m); /* last forward's output (n * out floats) */
NNDEF nn_status nn_backward(nn_model *m, const float *y, float *loss, float *accuracy);
NNDEF nn_status nn_step(nn_model *m);
NNDEF nn_status nn_train_on_batch(nn_model *m, const float *x, const float *y, int n, float *loss,
                                  float *accuracy);
/* The gradient of the loss with respect to the input: dx (n * input size
 * floats) = d(mean loss over the n samples of x against targets y) / dx,
 * with the model in inference mode (batch norm on its running statistics,
 * no dropout), as PyTorch's loss.backward() after model.eval() with
 * x.requires_grad.  Parameters and optimizer state are unchanged; the
 * parameter gradients are overwritten (as by nn_backward).  For saliency
 * maps: which inputs decided an output.  NN_ERR_UNSUPPORTED when the first
 * layer is an embedding (token ids have no gradient). */
NNDEF nn_status nn_input_gradient(nn_model *m, const float *x, const float *y, int n, float *dx);

/* ---- model files -------------------------------------------------------------
 * Little-endian; magic "NNH\x1a", format version, sections with lengths,
 * CRC32 over everything.  with_optimizer stores the optimizer state so
 * training resumes exactly. */
NNDEF nn_status nn_save(const nn_model *m, const char *path, int with_optimizer);
NNDEF nn_status nn_load(nn_model **out, const char *path);
/* ---- safetensors: models to and from PyTorch --------------------------------
 * The format of Hugging Face's safetensors (u64 header length, a JSON
 * header, raw little-endian data) with PyTorch's names and layouts, so the
 * file is what the PyTorch twin's state_dict() holds: tensor "<name>.<param>",
 * name = the layer's index (every layer counts, pooling and flatten too)
 * or what nn_layer_set_name gave it.
 *   dense        weight (out, in), bias (out)
 *   conv2d       weight (F, C, KH, KW), bias (F)
 *   batchnorm    weight, bias, running_mean, running_var (C),
 *                num_batches_tracked (I64, shape []: the training steps)
 *   normalization mean, variance (C)
 *   embedding    weight (vocab, dim)
 *   rnn/lstm/gru weight_ih_l0 (G, F), weight_hh_l0 (G, H), bias_ih_l0,
 *                bias_hh_l0 (G), PyTorch's gate order; RNN and LSTM keep one
 *                bias: exported as bias_ih_l0 and a zero bias_hh_l0,
 *                imported as their sum
 * After a flatten of an (h, w, c) image, per-feature axes are in PyTorch's
 * (c, h, w) order, as nn.Flatten gives them on NCHW: the first dense
 * layer's input axis, and the vectors of a batch norm or normalization on
 * the way (layers that keep the shape carry the order; a dense ends it).
 * nn_save_safetensors writes F32 and, in "__metadata__", the architecture
 * ("nnh.arch"), so nn_load rebuilds the model from the file (it tells the
 * two formats apart by their content).  nn_load_safetensors loads into a
 * compiled model with the same layers: F32, F16, BF16 or F64 tensors;
 * every tensor the model has must be there with its shape, and nothing
 * else (NN_ERR_SHAPE naming the tensor: nn_model_error; a dtype it does
 * not read: NN_ERR_UNSUPPORTED); the header is checked as the reference
 * library does (<= 100 MB, offsets covering the data exactly, no duplicate
 * keys: NN_ERR_FORMAT).  A refused file leaves the model unchanged:
 * everything is checked before the first value is read.  Values are taken
 * as they are, like PyTorch (NaN stays NaN, F64 beyond float's range
 * becomes infinite).  A read that fails after the checks (the file
 * truncated meanwhile, a disk error) returns NN_ERR_IO with part of the
 * tensors loaded (and an RNN's or LSTM's bias possibly zero).  Where long
 * is 32 bits (Windows, 32-bit systems) files of 2 GiB and more cannot be
 * read (stdio's ftell). */
NNDEF nn_status nn_save_safetensors(const nn_model *m, const char *path);
NNDEF nn_status nn_load_safetensors(nn_model *m, const char *path);
/* Name layer i for its tensors ("features.0" -> "features.0.weight"), any
 * time: 1 to 63 of [A-Za-z0-9_.-], no empty part between dots, unique in
 * the model; a name of digits only must be the layer's own index.  NULL or
 * "" restores the index.  nn_layer_name: the name in use (NULL: no layer).
 * Names travel in safetensors files; nn.h's own format (nn_save) does not
 * keep them. */
NNDEF nn_status nn_layer_set_name(nn_model *m, int layer, const char *name);
NNDEF const char *nn_layer_name(const nn_model *m, int layer);
/* ---- int8 inference ------------------------------------------------------------
 * nn_quantize makes *out, an int8 copy of the compiled model m for
 * inference (m is not changed): weights int8 per output channel
 * (symmetric), activations uint8 per tensor with the ranges n samples of
 * calib reach (post-training static quantization), int32 products,
 * integer requantization, batch norm folded into the dense or conv before
 * it, ReLU fused; the last layer's output and the head (softmax, sigmoid)
 * stay float.  Every backend gives the same int8 result bit for bit.
 * nn_predict, nn_predict_dataset, nn_evaluate and nn_model_summary take it;
 * training it is NN_ERR_STATE; its float parameters are gone
 * (nn_layer_weights: NULL).  Layers: dense, conv2d, pooling, global
 * average pooling, flatten, dropout, batch norm, normalization,
 * activations (softmax only as the last), upsampling; recurrent layers and
 * embeddings: NN_ERR_UNSUPPORTED (nn_model_error(m) says which).  nn_save
 * keeps it int8 (the architecture and the int8 numbers: a byte per weight)
 * and nn_load reads it back; safetensors files hold float models only. */
NNDEF nn_status nn_quantize(const nn_model *m, const nn_dataset *calib, int n, nn_model **out);
NNDEF int nn_model_is_int8(const nn_model *m);

/* Wall clock in seconds (clock_gettime where POSIX, else clock()). */
NNDEF double nn_time_seconds(void);

#ifdef __cplusplus
}
#endif
#endif /* NN_H_INCLUDED */

/* ========================================================================= */
/*                           IMPLEMENTATION                                  */
/* ========================================================================= */
#ifdef NN_IMPLEMENTATION
#ifndef NN_IMPLEMENTATION_DONE
#define NN_IMPLEMENTATION_DONE

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/time.h>
#include <unistd.h>
#define NN__HAVE_ISATTY 1
#endif

/* threads (section 3.1); windows.h also for the clock */
#if !defined(NN_NO_THREADS) && (defined(__unix__) || defined(__APPLE__))
#include <pthread.h>
#define NN__PTHREADS 1
#elif defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX /* windows.h's min/max macros would break k->max(...) */
#endif
#include <windows.h>
#ifndef NN_NO_THREADS
#define NN__WINTHREADS 1
#endif
#endif

#if defined(NN_MALLOC) != defined(NN_FREE)
#error "nn.h: define both NN_MALLOC and NN_FREE, or neither"
#endif
#ifndef NN_MALLOC
#define NN_MALLOC(sz) malloc(sz)
#define NN_FREE(p) free(p)
#endif
#ifndef NN_ASSERT
#include <assert.h>
#define NN_ASSERT(x) assert(x)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define NN__UNUSED __attribute__((unused))
#else
#define NN__UNUSED
#endif
#ifdef NN_STATIC
#define NN__API static NN__UNUSED
#else
#define NN__API
#endif

/* Which SIMD backends are compiled in.  MSVC builds get the scalar backend
 * (it has no per-function target attribute); patches welcome. */
#if !defined(NN_NO_SIMD) && (defined(__GNUC__) || defined(__clang__))
#if defined(__x86_64__) || defined(__i386__)
#define NN__HAVE_X86 1
/* g++ 12 warns inside its own avx512fintrin.h (_mm512_undefined_ps is
 * self-initialised); the warning is located in the header, so silencing
 * it around the include is enough and leaves user code untouched. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
#include <cpuid.h>
#endif
#if defined(__aarch64__)
#define NN__HAVE_NEON 1
#include <arm_neon.h>
/* The dot product (sdot, optional from ARMv8.2) for the int8 GEMM: always
 * there when the compiler targets it (__ARM_FEATURE_DOTPROD: Apple M1 and
 * -march=...+dotprod builds); otherwise compiled with a target attribute
 * (gcc needs the whole "arch=armv8.2-a+dotprod": arm_neon.h's own functions
 * carry it and "+dotprod" alone fails to inline them; clang 14 takes
 * "dotprod") and used when Linux reports it (getauxval, HWCAP_ASIMDDP).
 * Other systems without the compile-time feature: the widening kernel. */
#if defined(__ARM_FEATURE_DOTPROD)
#define NN__HAVE_SDOT 1
#define NN__SDOT_ATTR
#elif (defined(__clang__) && __clang_major__ >= 8) || (!defined(__clang__) && __GNUC__ >= 8)
#define NN__HAVE_SDOT 1
#if defined(__clang__)
#define NN__SDOT_ATTR __attribute__((target("dotprod")))
#else
#define NN__SDOT_ATTR __attribute__((target("arch=armv8.2-a+dotprod")))
#endif
#endif
#if defined(__linux__)
#include <sys/auxv.h> /* getauxval */
#endif
#endif
#if defined(__wasm_simd128__) /* clang -msimd128 (emcc): available iff compiled in */
#define NN__HAVE_WASM 1
#include <wasm_simd128.h>
#endif
#endif

#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#define NN__HAVE_MXCSR 1 /* SSE is baseline on x86-64: _mm_getcsr needs no target */
#include <xmmintrin.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ========================================================================= */
/* ==== 3. Platform: status strings, allocation, RNG, tensors, time, CPU     */
/* ========================================================================= */

NN__API const char *nn_strerror(nn_status s) {
    switch (s) {
    case NN_OK: return "ok";
    case NN_ERR_INVALID_ARGUMENT: return "invalid argument";
    case NN_ERR_NO_MEMORY: return "out of memory";
    case NN_ERR_UNSUPPORTED: return "not supported by this build or CPU";
    case NN_ERR_SHAPE: return "shapes do not fit";
    case NN_ERR_IO: return "input/output error";
    case NN_ERR_FORMAT: return "malformed or corrupt data";
    case NN_ERR_NONFINITE: return "NaN or Inf encountered";
    case NN_ERR_STATE: return "invalid in the current state";
    }
    return "unknown status";
}

/* Over-allocate by 64 bytes and keep the offset in the byte before the
 * block: works with any NN_MALLOC and needs no posix_memalign (not declared
 * under -std=c99). */
NN__API void *nn_aligned_alloc(size_t bytes) {
    unsigned char *raw, *p;
    if (bytes > (size_t)-1 - 64) return NULL;
    raw = (unsigned char *)NN_MALLOC(bytes + 64);
    if (!raw) return NULL;
    p = (unsigned char *)(((uintptr_t)raw + 64) & ~(uintptr_t)63);
    p[-1] = (unsigned char)(p - raw);
    return p;
}
NN__API void nn_aligned_free(void *ptr) {
    unsigned char *p = (unsigned char *)ptr;
    if (p) NN_FREE(p - p[-1]);
}

/* PCG32 (O'Neill): small state, good statistics, identical everywhere. */
NN__API void nn_rng_seed(nn_rng *r, uint64_t seed) {
    r->state = 0;
    r->inc = (seed << 1) | 1u;
    (void)nn_rng_u32(r);
    r->state += 0x853c49e6748fea9bULL ^ seed;
    (void)nn_rng_u32(r);
}
NN__API uint32_t nn_rng_u32(nn_rng *r) {
    uint64_t old = r->state;
    uint32_t xs, rot;
    r->state = old * 6364136223846793005ULL + r->inc;
    xs = (uint32_t)(((old >> 18) ^ old) >> 27);
    rot = (uint32_t)(old >> 59);
    return (xs >> rot) | (xs << ((32 - rot) & 31));
}
/* the state delta draws later, in O(log delta) steps (PCG's jump ahead:
 * the affine step composed with itself) */
static void nn__rng_advance(nn_rng *r, uint64_t delta) {
    uint64_t mul = 6364136223846793005ULL, add = r->inc, acc_mul = 1, acc_add = 0;
    while (delta) {
        if (delta & 1) acc_mul *= mul, acc_add = acc_add * mul + add;
        add = (mul + 1) * add;
        mul *= mul;
        delta >>= 1;
    }
    r->state = acc_mul * r->state + acc_add;
}
NN__API uint32_t nn_rng_below(nn_rng *r, uint32_t bound) {
    /* rejection sampling: no modulo bias */
    uint32_t threshold, x;
    if (bound <= 1) return 0;
    threshold = (uint32_t)(0u - bound) % bound;
    do x = nn_rng_u32(r);
    while (x < threshold);
    return x % bound;
}
NN__API float nn_rng_uniform(nn_rng *r) {
    return (float)(nn_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}
NN__API float nn_rng_normal(nn_rng *r) {
    double u1 = ((double)nn_rng_u32(r) + 1.0) / 4294967297.0; /* (0,1) */
    double u2 = (double)nn_rng_u32(r) / 4294967296.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* ---- tensors ---- */
NN__API nn_status nn_tensor_init(nn_tensor *t, int ndim, const int *dims) {
    size_t size = 1;
    int i;
    if (!t) return NN_ERR_INVALID_ARGUMENT;
    memset(t, 0, sizeof *t);
    if (!dims || ndim < 1 || ndim > NN_MAX_DIMS) return NN_ERR_INVALID_ARGUMENT;
    for (i = 0; i < ndim; i++) {
        if (dims[i] <= 0 || size > ((size_t)-1 / sizeof(float)) / (size_t)dims[i])
            return NN_ERR_INVALID_ARGUMENT;
        size *= (size_t)dims[i];
        t->shape[i] = dims[i];
    }
    t->data = (float *)nn_aligned_alloc(size * sizeof(float));
    if (!t->data) return NN_ERR_NO_MEMORY;
    memset(t->data, 0, size * sizeof(float));
    t->ndim = ndim;
    t->size = size;
    t->owns = 1;
    return NN_OK;
}
NN__API nn_status nn_tensor_wrap(nn_tensor *t, float *data, int ndim, const int *dims) {
    size_t size = 1;
    int i;
    if (!t) return NN_ERR_INVALID_ARGUMENT;
    memset(t, 0, sizeof *t);
    if (!data || !dims || ndim < 1 || ndim > NN_MAX_DIMS) return NN_ERR_INVALID_ARGUMENT;
    for (i = 0; i < ndim; i++) {
        if (dims[i] <= 0) return NN_ERR_INVALID_ARGUMENT;
        size *= (size_t)dims[i];
        t->shape[i] = dims[i];
    }
    t->data = data;
    t->ndim = ndim;
    t->size = size;
    return NN_OK;
}
NN__API void nn_tensor_free(nn_tensor *t) {
    if (!t) return;
    if (t->owns) nn_aligned_free(t->data);
    memset(t, 0, sizeof *t);
}
NN__API void nn_tensor_fill(nn_tensor *t, float v) {
    size_t i;
    if (!t || !t->data) return;
    for (i = 0; i < t->size; i++) t->data[i] = v;
}

/* ---- time ---- */
NN__API double nn_time_seconds(void) {
#if defined(_WIN32)
    LARGE_INTEGER f, c;
    if (QueryPerformanceFrequency(&f) && QueryPerformanceCounter(&c))
        return (double)c.QuadPart / (double)f.QuadPart;
#elif defined(CLOCK_MONOTONIC)
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
#elif defined(NN__HAVE_ISATTY)
    /* strict ISO C builds (-std=c99: time.h hides clock_gettime, but
     * sys/time.h still declares gettimeofday): wall time, not monotonic */
    struct timeval tv;
    if (gettimeofday(&tv, NULL) == 0) return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
#endif
    /* elsewhere processor time, which is wall time only with one thread */
    return (double)clock() / (double)CLOCKS_PER_SEC;
}

/* ---- CPU features ---- */
enum { NN__CPU_AVX2 = 1, NN__CPU_AVX512 = 2, NN__CPU_NEON = 4, NN__CPU_VNNI = 8, NN__CPU_SDOT = 16 };

#if NN__HAVE_X86
/* xgetbv through inline asm: the _xgetbv intrinsic needs target("xsave")
 * under gcc 12.  Callers check CPUID.1:ECX.OSXSAVE first (else SIGILL). */
static uint64_t nn__xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static unsigned nn__cpu_features(void) {
    unsigned f = 0;
#if NN__HAVE_X86
    unsigned a, b, c, d, max_leaf;
    uint64_t xcr0;
    if (!__get_cpuid(0, &max_leaf, &b, &c, &d)) return 0;
    if (max_leaf < 7) return 0;
    __cpuid(1, a, b, c, d);
    if (!(c & (1u << 27))) return 0;                           /* OSXSAVE */
    if (!(c & (1u << 12)) || !(c & (1u << 28))) return 0;      /* FMA, AVX */
    xcr0 = nn__xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return 0;                          /* XMM+YMM state saved */
    __cpuid_count(7, 0, a, b, c, d);
    if (b & (1u << 5)) f |= NN__CPU_AVX2;
    /* AVX-512F, and the OS saves opmask + ZMM state */
    if ((f & NN__CPU_AVX2) && (b & (1u << 16)) && (xcr0 & 0xE6) == 0xE6) f |= NN__CPU_AVX512;
    /* AVX512_VNNI (vpdpbusd: the int8 GEMM) with AVX512BW */
    if ((f & NN__CPU_AVX512) && (b & (1u << 30)) && (c & (1u << 11))) f |= NN__CPU_VNNI;
#elif NN__HAVE_NEON
    f |= NN__CPU_NEON; /* baseline on aarch64 */
#if defined(__ARM_FEATURE_DOTPROD)
    f |= NN__CPU_SDOT;
#elif defined(__linux__) && defined(NN__HAVE_SDOT)
    if (getauxval(AT_HWCAP) & (1ul << 20)) f |= NN__CPU_SDOT; /* HWCAP_ASIMDDP */
#endif
#endif
    return f;
}

/* The data caches one core sees, in bytes: L1d and L2 its own (on Zen),
 * L3 the whole slice it shares.  x86: CPUID leaf 4 (Intel) or 0x8000001D
 * (AMD, with TopologyExtensions); Linux elsewhere: sysfs; a field it cannot
 * read keeps the default (32 KiB, 1 MiB, 8 MiB: Zen 4's L1d and L2).  The
 * SGEMM and Winograd block sizes follow them (nn__blocking, nn__wg_chunk). */
typedef struct nn__caches {
    size_t l1d, l2, l3;
} nn__caches;
/* unused where neither CPUID nor sysfs can be asked (wasm, macOS) */
NN__UNUSED static void nn__cache_put(nn__caches *c, unsigned level, size_t bytes) {
    if (!bytes) return;
    if (level == 1) c->l1d = bytes;
    else if (level == 2) c->l2 = bytes;
    else if (level == 3) c->l3 = bytes;
}
static nn__caches nn__cache_sizes(void) {
    nn__caches c;
    c.l1d = (size_t)32 << 10;
    c.l2 = (size_t)1 << 20;
    c.l3 = (size_t)8 << 20;
#if NN__HAVE_X86
    {
        unsigned a, b, cc, d, leaf = 0, maxl, i;
        if (!__get_cpuid(0, &maxl, &b, &cc, &d)) return c;
        if (b == 0x68747541u) { /* "Auth"enticAMD: leaf 0x8000001D when TopologyExtensions */
            if (__get_cpuid(0x80000000u, &a, &b, &cc, &d) && a >= 0x8000001Du) {
                __cpuid(0x80000001u, a, b, cc, d);
                if (cc & (1u << 22)) leaf = 0x8000001Du;
            }
        } else if (maxl >= 4)
            leaf = 4;
        for (i = 0; leaf && i < 16; i++) {
            unsigned type;
            __cpuid_count(leaf, i, a, b, cc, d);
            type = a & 31u;
            if (type == 0) break;                 /* no more caches */
            if (type != 1 && type != 3) continue; /* data or unified only */
            /* ways x partitions x line size x sets */
            nn__cache_put(&c, (a >> 5) & 7u,
                          (size_t)((b >> 22) + 1) * (((b >> 12) & 0x3ffu) + 1) *
                              ((b & 0xfffu) + 1) * ((size_t)cc + 1));
        }
    }
#elif defined(__linux__)
    {
        int i;
        for (i = 0; i < 8; i++) {
            char path[96], text[32];
            unsigned level = 0;
            size_t kib = 0;
            FILE *f;
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
            if (!(f = fopen(path, "r"))) break;
            text[0] = 0;
            if (!fgets(text, sizeof text, f)) text[0] = 0;
            fclose(f);
            if (strncmp(text, "Data", 4) != 0 && strncmp(text, "Unified", 7) != 0) continue;
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
            if ((f = fopen(path, "r"))) {
                if (fscanf(f, "%u", &level) != 1) level = 0;
                fclose(f);
            }
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
            if ((f = fopen(path, "r"))) {
                unsigned long v;
                if (fscanf(f, "%luK", &v) == 1 && v < ((unsigned long)1 << 30)) kib = (size_t)v;
                fclose(f);
            }
            nn__cache_put(&c, level, kib << 10);
        }
    }
#endif
    return c;
}

/* The caches, read once (CPUID exits a virtual machine: ~1 us a leaf):
 * the first caller fills it, one arriving meanwhile waits (as in
 * nn_cpu_description).  Write-once state, documented with the globals. */
static int nn__once_begin(int *state);
static void nn__once_done(int *state);
static nn__caches nn__caches_once(void) {
    static nn__caches c;
    static int state = 0;
    if (nn__once_begin(&state)) {
        c = nn__cache_sizes();
        nn__once_done(&state);
    }
    return c;
}

/* Write-once state (0 empty, 1 being filled, 2 ready): nn__once_begin
 * returns 1 to the one caller that fills it, which then calls
 * nn__once_done; everyone else gets 0 once it is ready (waiting meanwhile),
 * so no thread reads it half written. */
static int nn__once_begin(int *state) {
#if defined(__GNUC__) || defined(__clang__)
    int expect = 0;
    if (__atomic_load_n(state, __ATOMIC_ACQUIRE) == 2) return 0;
    if (__atomic_compare_exchange_n(state, &expect, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return 1;
    while (__atomic_load_n(state, __ATOMIC_ACQUIRE) != 2) continue;
    return 0;
#else /* MSVC: aligned int stores are atomic; two first callers both fill it */
    return *state != 2;
#endif
}
static void nn__once_done(int *state) {
#if defined(__GNUC__) || defined(__clang__)
    __atomic_store_n(state, 2, __ATOMIC_RELEASE);
#else
    *state = 2;
#endif
}

static void nn__cpu_describe(char *buf, size_t bufsz);
static void nn__blocking_text(char *buf, size_t len); /* section 4.7 */
NN__API const char *nn_cpu_description(void) {
    /* written once into a static buffer (the text never changes) */
    static char buf[320];
    static int state = 0;
    if (nn__once_begin(&state)) {
        nn__cpu_describe(buf, sizeof buf);
        nn__once_done(&state);
    }
    return buf;
}
static void nn__cpu_describe(char *buf, size_t bufsz) {
    unsigned f = nn__cpu_features();
    buf[0] = 0;
#if NN__HAVE_X86
    {
        unsigned regs[12], a, b, c, d, i, fam, model;
        char name[49];
        memset(name, 0, sizeof name);
        if (__get_cpuid(0x80000000u, &a, &b, &c, &d) && a >= 0x80000004u) {
            for (i = 0; i < 3; i++)
                __cpuid(0x80000002u + i, regs[4 * i], regs[4 * i + 1], regs[4 * i + 2],
                        regs[4 * i + 3]);
            memcpy(name, regs, 48);
        }
        __cpuid(1, a, b, c, d);
        fam = (a >> 8) & 0xf;
        model = (a >> 4) & 0xf;
        if (fam == 0xf) fam += (a >> 20) & 0xff;
        if (fam >= 6) model |= ((a >> 16) & 0xf) << 4;
        i = 0;
        while (name[i] == ' ') i++;
        {
            size_t len = strlen(name + i);
            while (len > 0 && name[i + len - 1] == ' ') name[i + --len] = 0;
        }
        snprintf(buf, bufsz, "%s (family %u, model %u)%s%s", name + i, fam, model,
                 (f & NN__CPU_AVX2) ? " avx2" : "", (f & NN__CPU_AVX512) ? " avx512f" : "");
    }
#else
    snprintf(buf, bufsz, "%s%s", (f & NN__CPU_NEON) ? "aarch64 neon" : "generic cpu",
             (f & NN__CPU_SDOT) ? " dotprod" : "");
#endif
    {
        nn__caches c = nn__cache_sizes();
        size_t len = strlen(buf);
        snprintf(buf + len, bufsz - len, "; L1d %luK L2 %luK L3 %luK; %d cores; ",
                 (unsigned long)(c.l1d >> 10), (unsigned long)(c.l2 >> 10),
                 (unsigned long)(c.l3 >> 10), nn_cpu_cores());
        len = strlen(buf);
        nn__blocking_text(buf + len, bufsz - len);
    }
}

/* ---- 3.1 threads: the pool and its parallel regions ----------------------
 * One pool per process (the second documented global): workers are started
 * on the first parallel region, sleep on a condition variable when idle
 * (after a short spin, so that back-to-back regions of one training step do
 * not pay a wake-up each), and are reused for every region.
 *
 * A region is nn__par(ntasks, fn, ctx, maxw): tasks 0..ntasks-1 are run by
 * the caller (worker 0) and the workers 1..maxw-1, each taking its own
 * share first and then helping with the others' (nn__pool_tasks);
 * fn(ctx, task, worker) uses the worker's own scratch.
 * Who runs which task varies from run to run, so a task's result must not
 * depend on it: every task writes its own outputs, and a reduction writes
 * one partial per task, summed in task order afterwards (fixed chunks, not
 * one partial per worker).  That is what keeps training bit-identical for
 * any thread count.
 *
 * One region at a time: a caller that finds the pool busy (another user
 * thread's region, or a task that starts a region of its own) runs its tasks
 * alone, in order, as worker 0 of its own scratch.  Never a deadlock, and the
 * same results.  fork(): the child starts a pool of its own when it needs
 * one (pthread_atfork).  The caller's MXCSR (flush-to-zero) is copied into
 * every worker for the region. */

/* int atomics: gcc/clang builtins (C99 has no stdatomic), Interlocked on
 * MSVC */
#if defined(__GNUC__) || defined(__clang__)
#define NN__AT_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define NN__AT_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define NN__AT_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_ACQ_REL) /* old value */
#define NN__AT_CAS(p, e, d) nn__at_cas(p, e, d)
static NN__UNUSED int nn__at_cas(int *p, int e, int d) {
    return __atomic_compare_exchange_n(p, &e, d, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
#elif defined(_MSC_VER)
#include <intrin.h>
#define NN__AT_LOAD(p) _InterlockedOr((volatile long *)(p), 0)
#define NN__AT_STORE(p, v) _InterlockedExchange((volatile long *)(p), (long)(v))
#define NN__AT_ADD(p, v) _InterlockedExchangeAdd((volatile long *)(p), (long)(v))
#define NN__AT_CAS(p, e, d) (_InterlockedCompareExchange((volatile long *)(p), (d), (e)) == (e))
#else
#define NN__AT_LOAD(p) (*(p))
#define NN__AT_STORE(p, v) (*(p) = (v))
#define NN__AT_ADD(p, v) ((*(p) += (v)) - (v))
#define NN__AT_CAS(p, e, d) (*(p) == (e) ? (*(p) = (d), 1) : 0)
#endif

typedef void (*nn__task_fn)(void *ctx, int task, int worker);

/* cores this process may run on: its affinity mask (Linux: Cpus_allowed of
 * /proc/self/status, readable without _GNU_SOURCE), else the online CPUs */
NN__API int nn_cpu_cores(void) {
    int n = 0;
#if defined(__linux__)
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[1024];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "Cpus_allowed:", 13) == 0) {
                const char *p;
                for (p = line + 13; *p; p++) {
                    int v = *p >= '0' && *p <= '9' ? *p - '0'
                          : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
                    for (; v > 0; v &= v - 1) n++;
                }
                break;
            }
        fclose(f);
    }
#endif
#if defined(NN__WINTHREADS)
    if (n <= 0) {
        DWORD_PTR pm, sm;
        if (GetProcessAffinityMask(GetCurrentProcess(), &pm, &sm))
            for (; pm; pm &= pm - 1) n++;
    }
#elif defined(_SC_NPROCESSORS_ONLN)
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
#endif
    return n < 1 ? 1 : n;
}

/* n, or every core for 0, within 1..NN_MAX_THREADS */
static int nn__threads_for(int n) {
    if (n == 0) n = nn_cpu_cores();
    return n < 1 ? 1 : n > NN_MAX_THREADS ? NN_MAX_THREADS : n;
}

#if defined(NN__PTHREADS) || defined(NN__WINTHREADS)
#if defined(NN__PTHREADS)
typedef pthread_mutex_t nn__mutex;
typedef pthread_cond_t nn__cond;
typedef pthread_t nn__thread;
#define NN__LOCK(p) pthread_mutex_lock(p)
#define NN__UNLOCK(p) pthread_mutex_unlock(p)
#define NN__WAIT(c, p) pthread_cond_wait(c, p)
#define NN__BROADCAST(c) pthread_cond_broadcast(c)
#define NN__SIGNAL(c) pthread_cond_signal(c)
#else
typedef CRITICAL_SECTION nn__mutex;
typedef CONDITION_VARIABLE nn__cond;
typedef HANDLE nn__thread;
#define NN__LOCK(p) EnterCriticalSection(p)
#define NN__UNLOCK(p) LeaveCriticalSection(p)
#define NN__WAIT(c, p) SleepConditionVariableCS(c, p, INFINITE)
#define NN__BROADCAST(c) WakeAllConditionVariable(c)
#define NN__SIGNAL(c) WakeConditionVariable(c)
#endif

static struct nn__tpool {
    int want;    /* threads asked for (caller included); 0 until first read */
    int started; /* workers running (the caller not counted) */
    int busy;    /* a region (or a resize) owns the pool */
    int inited;  /* mutex and conditions exist */
    int quit;
    /* the current region: written by its caller before gen moves on */
    nn__task_fn fn;
    void *ctx;
    int ntasks, maxw;
    unsigned csr;
    /* worker w's share of the tasks ends at end[w]; next[16 w] is the next
     * of it to claim (one cache line each) */
    int end[NN_MAX_THREADS], next[16 * NN_MAX_THREADS];
    int state;    /* workers that joined the region, | NN__CLOSED once the caller closed it */
    int finished; /* joined workers done with it */
    int gen;    /* region number: workers wait for it to change */
    int seen0[NN_MAX_THREADS]; /* gen when worker i was started */
    nn__mutex mu;
    nn__cond wake, idle;
    nn__thread th[NN_MAX_THREADS];
} nn__tp;

/* spin iterations before a worker (or the caller) sleeps: tens of
 * microseconds, long enough to cover the serial gap between two regions of
 * a training step, short enough that an idle process burns nothing */
#ifndef NN__SPIN
#define NN__SPIN 200000
#endif
static void nn__relax(void) {
#if defined(NN__HAVE_MXCSR) && defined(NN_SPIN_PAUSE)
    _mm_pause();
#endif
}

/* A worker takes the tasks of its own share first, then helps the others
 * with theirs.  The same share each region: worker w gets the same blocks of
 * C, images or chunks step after step, so they stay in its core's cache
 * (claiming from one shared counter moved them between cores every step,
 * and on this VM at times made two threads slower than one). */
static void nn__pool_tasks(int worker) {
    int v, t, n = nn__tp.maxw;
    for (v = 0; v < n; v++) {
        int o = (worker + v) % n;
        while ((t = NN__AT_ADD(&nn__tp.next[16 * o], 1)) < nn__tp.end[o])
            nn__tp.fn(nn__tp.ctx, t, worker);
    }
}
#define NN__CLOSED 0x40000000
/* A worker joins the region in progress unless its caller has closed it
 * (the caller closes once every task is claimed, then waits only for the
 * workers that joined): a worker that wakes late, or never gets a core on a
 * busy machine, costs nothing, and reads the region only after joining. */
static void nn__pool_worker(int id) {
    int seen = nn__tp.seen0[id], spin;
    for (;;) {
        int s;
        for (spin = 0; spin < NN__SPIN && NN__AT_LOAD(&nn__tp.gen) == seen; spin++) nn__relax();
        if (NN__AT_LOAD(&nn__tp.gen) == seen) {
            NN__LOCK(&nn__tp.mu);
            while (NN__AT_LOAD(&nn__tp.gen) == seen && !NN__AT_LOAD(&nn__tp.quit))
                NN__WAIT(&nn__tp.wake, &nn__tp.mu);
            NN__UNLOCK(&nn__tp.mu);
        }
        if (NN__AT_LOAD(&nn__tp.quit)) return;
        seen = NN__AT_LOAD(&nn__tp.gen);
        s = NN__AT_LOAD(&nn__tp.state);
        while (!(s & NN__CLOSED) && !NN__AT_CAS(&nn__tp.state, s, s + 1))
            s = NN__AT_LOAD(&nn__tp.state);
        if (s & NN__CLOSED) continue; /* too late: its caller did the tasks */
        if (id < nn__tp.maxw) {
#if defined(NN__HAVE_MXCSR)
            unsigned old = _mm_getcsr();
            if (old != nn__tp.csr) _mm_setcsr(nn__tp.csr);
            nn__pool_tasks(id);
            if (old != nn__tp.csr) _mm_setcsr(old);
#else
            nn__pool_tasks(id);
#endif
        }
        s = NN__AT_ADD(&nn__tp.finished, 1) + 1;
        if (s == (NN__AT_LOAD(&nn__tp.state) & ~NN__CLOSED)) { /* perhaps the last: tell */
            NN__LOCK(&nn__tp.mu);
            NN__SIGNAL(&nn__tp.idle);
            NN__UNLOCK(&nn__tp.mu);
        }
    }
}
#if defined(NN__PTHREADS)
static void *nn__pool_main(void *arg) {
    nn__pool_worker((int)(intptr_t)arg);
    return NULL;
}
static int nn__thread_start(nn__thread *t, int id) {
    return pthread_create(t, NULL, nn__pool_main, (void *)(intptr_t)id) == 0;
}
static void nn__thread_join(nn__thread t) { pthread_join(t, NULL); }
static void nn__pool_sync_init(void) {
    pthread_mutex_init(&nn__tp.mu, NULL);
    pthread_cond_init(&nn__tp.wake, NULL);
    pthread_cond_init(&nn__tp.idle, NULL);
}
/* in a child of fork() only the forking thread exists: forget the workers
 * (their memory is the parent's copy) and start anew on the next region */
static void nn__pool_atfork_child(void) {
    nn__tp.started = 0;
    nn__tp.busy = 0;
    nn__tp.quit = 0;
    nn__pool_sync_init();
}
#else
static DWORD WINAPI nn__pool_main(LPVOID arg) {
    nn__pool_worker((int)(intptr_t)arg);
    return 0;
}
static int nn__thread_start(nn__thread *t, int id) {
    *t = CreateThread(NULL, 0, nn__pool_main, (LPVOID)(intptr_t)id, 0, NULL);
    return *t != NULL;
}
static void nn__thread_join(nn__thread t) {
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
}
static void nn__pool_sync_init(void) {
    InitializeCriticalSection(&nn__tp.mu);
    InitializeConditionVariable(&nn__tp.wake);
    InitializeConditionVariable(&nn__tp.idle);
}
#endif

/* take the pool (0: someone else has it); the first taker initialises */
static int nn__pool_take(void) {
    if (!NN__AT_CAS(&nn__tp.busy, 0, 1)) return 0;
    if (!nn__tp.inited) {
        nn__pool_sync_init();
#if defined(NN__PTHREADS)
        pthread_atfork(NULL, NULL, nn__pool_atfork_child);
#endif
        nn__tp.inited = 1;
    }
    return 1;
}
static void nn__pool_give(void) { NN__AT_STORE(&nn__tp.busy, 0); }
/* stop every worker (pool taken) */
static void nn__pool_stop(void) {
    int i;
    if (!nn__tp.started) return;
    NN__LOCK(&nn__tp.mu);
    NN__AT_STORE(&nn__tp.quit, 1);
    NN__BROADCAST(&nn__tp.wake);
    NN__UNLOCK(&nn__tp.mu);
    for (i = 0; i < nn__tp.started; i++) nn__thread_join(nn__tp.th[i]);
    nn__tp.started = 0;
    NN__AT_STORE(&nn__tp.quit, 0);
}
/* make want - 1 workers exist (pool taken); fewer if the OS refuses */
static void nn__pool_start(int want) {
    while (nn__tp.started < want - 1) {
        int id = nn__tp.started + 1;
        nn__tp.seen0[id] = NN__AT_LOAD(&nn__tp.gen); /* regions before it are not its */
        if (!nn__thread_start(&nn__tp.th[nn__tp.started], id)) break;
        nn__tp.started++;
    }
}
#endif /* threads */

static NN__UNUSED int nn__threads_env(void) {
    const char *e = getenv("NN_THREADS");
    char *end;
    long v;
    if (!e || !*e) return 0;
    v = strtol(e, &end, 10);
    if (*end || v < 0 || v > NN_MAX_THREADS) return 0; /* not a count: every core */
    return (int)v;
}

/* threads to use (caller included), reading NN_THREADS the first time */
static int nn__threads(void) {
#if defined(NN__PTHREADS) || defined(NN__WINTHREADS)
    int w = NN__AT_LOAD(&nn__tp.want);
    if (w) return w;
    w = nn__threads_for(nn__threads_env());
    (void)NN__AT_CAS(&nn__tp.want, 0, w); /* a concurrent first call writes the same */
    return NN__AT_LOAD(&nn__tp.want);
#else
    return 1;
#endif
}
NN__API int nn_get_threads(void) { return nn__threads(); }
NN__API nn_status nn_set_threads(int n) {
    if (n < 0 || n > NN_MAX_THREADS) return NN_ERR_INVALID_ARGUMENT;
#if defined(NN__PTHREADS) || defined(NN__WINTHREADS)
    n = nn__threads_for(n);
    NN__AT_STORE(&nn__tp.want, n);
    /* fewer workers than running: stop them once the pool is free (more
     * are started by the next region) */
    while (!nn__pool_take()) nn__relax();
    if (nn__tp.started > n - 1) nn__pool_stop();
    nn__pool_give();
    return NN_OK;
#else
    return nn__threads_for(n) == 1 ? NN_OK : NN_ERR_UNSUPPORTED;
#endif
}

#ifdef NN__PAR_STATS
/* bench/amdahl.c's hook (not for programs): regions run on the caller
 * alone, split as for nn_get_threads() workers, and each is timed, with
 * what it would take on N workers if its tasks were equal (ceil(ntasks / N)
 * / ntasks of it): the serial fraction and the batch-size limit of a
 * workload. */
#define NN__STAT_N 8
static const int nn__stat_workers[NN__STAT_N] = {1, 2, 4, 8, 16, 32, 64, 128};
static struct {
    long regions;
    double seconds, on[NN__STAT_N];
    int depth;
} nn__stats;
#endif
/* Run fn(ctx, t, worker) for t in 0..ntasks-1 on up to maxw workers (worker
 * < maxw indexes the caller's per-worker scratch); returns when all are
 * done. */
static void nn__par(int ntasks, nn__task_fn fn, void *ctx, int maxw) {
    int t;
#ifdef NN__PAR_STATS
    if (!nn__stats.depth && ntasks > 0) { /* always on the caller, timed */
        double t0 = nn_time_seconds(), dt;
        int i;
        nn__stats.depth++;
        for (t = 0; t < ntasks; t++) fn(ctx, t, 0);
        nn__stats.depth--;
        dt = nn_time_seconds() - t0;
        nn__stats.regions++;
        nn__stats.seconds += dt;
        for (i = 0; i < NN__STAT_N; i++)
            nn__stats.on[i] += dt * (double)((ntasks + nn__stat_workers[i] - 1) /
                                             nn__stat_workers[i]) / ntasks;
        (void)maxw;
        return;
    }
#endif
#if defined(NN__PTHREADS) || defined(NN__WINTHREADS)
    int want = nn__threads(), spin, joined;
    if (maxw > want) maxw = want;
    if (maxw > ntasks) maxw = ntasks;
    if (maxw > 1 && nn__pool_take()) {
        nn__pool_start(want);
        if (nn__tp.started > 0) {
            nn__tp.fn = fn;
            nn__tp.ctx = ctx;
            nn__tp.ntasks = ntasks;
            nn__tp.maxw = maxw;
#if defined(NN__HAVE_MXCSR)
            nn__tp.csr = _mm_getcsr();
#endif
            for (t = 0; t < maxw; t++) {
                nn__tp.end[t] = (int)((long)ntasks * (t + 1) / maxw);
                NN__AT_STORE(&nn__tp.next[16 * t], (int)((long)ntasks * t / maxw));
            }
            NN__AT_STORE(&nn__tp.finished, 0);
            NN__AT_STORE(&nn__tp.state, 0); /* open */
            NN__LOCK(&nn__tp.mu);
            NN__AT_ADD(&nn__tp.gen, 1); /* publishes the region */
            NN__BROADCAST(&nn__tp.wake);
            NN__UNLOCK(&nn__tp.mu);
            nn__pool_tasks(0);
            /* every task is claimed: close, then wait for those who joined */
            joined = NN__AT_LOAD(&nn__tp.state);
            while (!NN__AT_CAS(&nn__tp.state, joined, joined | NN__CLOSED))
                joined = NN__AT_LOAD(&nn__tp.state);
            for (spin = 0; spin < NN__SPIN && NN__AT_LOAD(&nn__tp.finished) != joined; spin++)
                nn__relax();
            if (NN__AT_LOAD(&nn__tp.finished) != joined) {
                NN__LOCK(&nn__tp.mu);
                while (NN__AT_LOAD(&nn__tp.finished) != joined)
                    NN__WAIT(&nn__tp.idle, &nn__tp.mu);
                NN__UNLOCK(&nn__tp.mu);
            }
            nn__pool_give();
            return;
        }
        nn__pool_give();
    }
#else
    (void)maxw;
#endif
    for (t = 0; t < ntasks; t++) fn(ctx, t, 0);
}

/* ========================================================================= */
/* ==== 4. Kernels                                                            */
/* ========================================================================= */

/* SGEMM micro-kernel arguments: C[mr x nr] = alpha * A B + beta * C over
 * depth kc.  Row i of the A panel at depth p is a[i*rsa + p*csa]: a packed
 * panel has rsa = 1, csa = MR; an unpacked op(A) is read in place (rsa =
 * lda, csa = 1 for A; rsa = 1, csa = lda for A^T), which saves the packing
 * pass when n is small.  Rows past mr are read only from packed, zero-padded
 * panels.  B is kc rows of NR floats: packed, or B itself when it already
 * has that layout (any alignment).
 * beta == 0 never reads C. */
typedef struct nn__uk {
    size_t kc, rsa, csa, ldc;
    const float *a, *b;
    float *c;
    float alpha, beta;
    int mr, nr;
    int relu; /* ReLU on the stored values (the last K slice of a product without bias) */
} nn__uk;

/* An int8 GEMM's A (section 4.9).  Row r starts at p + ro[r], or at p +
 * r*lda where ro is NULL, and holds its K in segments of sg groups of 4
 * bytes, ss bytes apart: group k at (k / sg)*ss + 4*(k % sg) from the
 * row's start (sg >= k4: one run).  The table and the segments let a conv
 * read its input in place (section 9): a row is an output pixel's window,
 * a segment one kernel row.  pool: the rows come in fours (a 2x2 max-pool
 * window's pixels) and C's row i is the max of the products' rows 4i to
 * 4i + 3. */
typedef struct nn__q8a {
    const unsigned char *p;
    size_t lda;
    const uint32_t *ro;
    size_t sg, ss;
    int pool;
} nn__q8a;

/* One table of function pointers per backend.  Everything above this
 * section calls kernels only through nn__k (the current table).  The slots
 * are one list, X(P, slot, return type, argument types): it declares the
 * struct's members and fills every backend's table with P_slot in the same
 * order (section 4.6), so a table is filled by name: a kernel cannot land
 * in another slot of the same signature, and a missing one does not
 * compile.  Adding a kernel: one line here, its scalar twin nn__s_NAME and
 * its SIMD version in NN__SIMD_KERNELS (or an alias, see 4.6). */
#define NN__KSLOTS(X, P)                                                                         \
    X(P, add, void, (size_t, const float *, const float *, float *))                             \
    X(P, sub, void, (size_t, const float *, const float *, float *))                             \
    X(P, mul, void, (size_t, const float *, const float *, float *))                             \
    X(P, scale, void, (size_t, float, const float *, float *))                                   \
    X(P, axpy, void, (size_t, float, const float *, float *))                                    \
    X(P, dot, float, (size_t, const float *, const float *))                                     \
    X(P, sum, float, (size_t, const float *))                                                    \
    X(P, max, float, (size_t, const float *))                                                    \
    X(P, exp, void, (size_t, const float *, float *))                                            \
    X(P, relu, void, (size_t, const float *, float *))                                           \
    X(P, sigmoid, void, (size_t, const float *, float *))                                        \
    X(P, tanh, void, (size_t, const float *, float *))                                           \
    X(P, relu_bwd, void, (size_t, const float *, const float *, float *))                        \
    X(P, sigmoid_bwd, void, (size_t, const float *, const float *, float *))                     \
    X(P, tanh_bwd, void, (size_t, const float *, const float *, float *))                        \
    X(P, softmax, void, (size_t, size_t, const float *, float *))                                \
    X(P, softmax_bwd, void, (size_t, size_t, const float *, const float *, float *))             \
    X(P, maxpool, void, (int, int, int, int, const float *, float *))                            \
    X(P, maxpool_bwd, void, (int, int, int, int, const float *, const float *, const float *,    \
                             float *))                                                           \
    /* + window index, and the backward from it */                                             \
    X(P, maxpool_fi, void, (int, int, int, int, const float *, float *, float *))                \
    X(P, maxpool_bi, void, (int, int, int, int, const float *, const float *, float *))          \
    /* global average pool: y[c] = mean over hw pixels (see nn__s_gap) */                        \
    X(P, gap, void, (size_t, size_t, size_t, const float *, float *))                            \
    X(P, gap_bwd, void, (size_t, size_t, size_t, const float *, float *))                        \
    X(P, sgd, void, (size_t, float *, const float *, float *, float, float, float, int))         \
    X(P, adam, void, (size_t, float *, const float *, float *, float *, float, float, float,      \
                      float, float, float, float, int))                                          \
    X(P, rmsprop, void, (size_t, float *, const float *, float *, float, float, float, float))   \
    X(P, ukr, void, (const struct nn__uk *)) /* SGEMM micro-kernel, see nn__uk */               \
    X(P, u8f, void, (size_t, const unsigned char *, float, float *))                             \
    /* one LSTM row of one step, forward and backward (see nn__s_lstm_fwd) */                   \
    X(P, lstm_fwd, void, (size_t, float *, const float *, float *, float *, float *))            \
    X(P, lstm_bwd, void, (size_t, const float *, const float *, const float *, const float *,   \
                          float *, float *))                                                     \
    /* 8x8 transpose, dst[p*ldd + j] = src[j*lds + p]: packing op(B) = B^T */                  \
    X(P, tr8, void, (const float *, size_t, float *, size_t))                                    \
    /* the same over a rows x cols block (multiples of 8) that goes to memory,  \
     * not to be read soon: streaming stores where dst allows (safetensors) */                    \
    X(P, trs, void, (const float *, size_t, float *, size_t, size_t, size_t))                    \
    /* int8 GEMM rows: C (rows x ncols <= 32, int32) = A (u8) . one packed     \
     * panel of B (s8), exact, A as nn__q8a describes it (section 4.9) */   \
    X(P, q8rows, void, (size_t, size_t, const struct nn__q8a *, const signed char *, int32_t *,   \
                        size_t, size_t))                                                          \
    /* out[i] = max of a, b, c, d at i, bytes (int8 2x2 max-pool) */                          \
    X(P, q8max4, void, (size_t, const unsigned char *, const unsigned char *,                    \
                        const unsigned char *, const unsigned char *, unsigned char *))          \
    /* floats to u8: out = clamp(floor(x * inv + z + 0.5)), see nn__s_q8quant */                \
    X(P, q8quant, void, (size_t, const float *, float, int, unsigned char *))                    \
    /* int8 requantization of rows x n: out = clamp(zero + rq(acc + bias, mul, shift), lo, 255) */ \
    X(P, q8req, void, (size_t, size_t, const int32_t *, const int32_t *, const int32_t *,         \
                       const int32_t *, int, int, unsigned char *))                               \
    /* Winograd F(4x4,3x3) transforms (see nn__s_bt6) */                                        \
    X(P, wg_in, void, (size_t, const float *const *, float *, size_t))                           \
    X(P, wg_out, void, (size_t, const float *, size_t, const float *, int, float *const *))      \
    X(P, wg_dy, void, (size_t, const float *const *, float *, size_t))                           \
    X(P, wg_w, void, (size_t, const float *const *, float *, size_t))                            \
    X(P, wg_wout, void, (size_t, const float *, size_t, float *const *))
#define NN__KSLOT_DECL(P, slot, ret, args) ret(*slot) args;
#define NN__KSLOT_INIT(P, slot, ret, args) P##_##slot,
typedef struct nn__ktab {
    nn_backend id;
    NN__KSLOTS(NN__KSLOT_DECL, _)
    int MR, NR, MC, KC, NC; /* SGEMM register tile and cache blocks (see 4.6) */
} nn__ktab;

/* ---- 4.1 scalar backend: the reference every SIMD kernel is tested
 * against.  Plain C at the user's flags (the compiler may auto-vectorise
 * it with the baseline ISA, as it would any user loop). */
static void nn__s_add(size_t n, const float *a, const float *b, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = a[i] + b[i];
}
static void nn__s_sub(size_t n, const float *a, const float *b, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = a[i] - b[i];
}
static void nn__s_mul(size_t n, const float *a, const float *b, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = a[i] * b[i];
}
static void nn__s_scale(size_t n, float s, const float *x, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = s * x[i];
}
static void nn__s_axpy(size_t n, float a, const float *x, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] += a * x[i];
}
/* uint8 pixels to scaled floats: the per-batch conversion of IDX images */
static void nn__s_u8f(size_t n, const unsigned char *x, float scale, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = scale * (float)x[i];
}
static float nn__s_dot(size_t n, const float *a, const float *b) {
    /* four partial sums: better rounding than one running sum, and the
     * same shape of computation as the SIMD versions */
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}
static float nn__s_sum(size_t n, const float *x) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i];
        s1 += x[i + 1];
        s2 += x[i + 2];
        s3 += x[i + 3];
    }
    for (; i < n; i++) s0 += x[i];
    return (s0 + s1) + (s2 + s3);
}
/* max propagates NaN, like torch.max */
static float nn__s_max(size_t n, const float *x) {
    float m = -INFINITY;
    size_t i;
    for (i = 0; i < n; i++) {
        if (x[i] != x[i]) return x[i];
        if (x[i] > m) m = x[i];
    }
    return m;
}
static void nn__s_exp(size_t n, const float *x, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = expf(x[i]);
}
static void nn__s_relu(size_t n, const float *x, float *y) {
    size_t i;
    /* bit select, not a branch (random signs mispredict: 5x slower):
     * negative numbers -> +0, NaN of either sign kept */
    for (i = 0; i < n; i++) {
        float v = x[i];
        uint32_t u, neg;
        memcpy(&u, &v, 4);
        neg = (u >> 31) & (uint32_t)(v == v);
        u &= neg - 1u;
        memcpy(&y[i], &u, 4);
    }
}
static void nn__s_sigmoid(size_t n, const float *x, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}
static void nn__s_tanh(size_t n, const float *x, float *y) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = tanhf(x[i]);
}
static void nn__s_relu_bwd(size_t n, const float *y, const float *dy, float *dx) {
    size_t i;
    for (i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
static void nn__s_sigmoid_bwd(size_t n, const float *y, const float *dy, float *dx) {
    size_t i;
    for (i = 0; i < n; i++) dx[i] = dy[i] * (y[i] * (1.0f - y[i]));
}
static void nn__s_tanh_bwd(size_t n, const float *y, const float *dy, float *dx) {
    size_t i;
    for (i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}
/* Softmax and its backward are written once over a table's own vector
 * kernels, so each backend's version uses its own max/exp/sum/scale. */
static void nn__softmax_with(const nn__ktab *k, size_t rows, size_t cols, const float *x,
                             float *y) {
    size_t r;
    for (r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float mx = k->max(cols, xr), s;
        if (cols == 0) continue;
        if (mx == INFINITY || mx == -INFINITY)
            mx = 0.0f; /* inf rows give NaN like torch; -inf-only rows too */
        {
            size_t j;
            for (j = 0; j < cols; j++) yr[j] = xr[j] - mx;
        }
        k->exp(cols, yr, yr);
        s = k->sum(cols, yr);
        k->scale(cols, 1.0f / s, yr, yr);
    }
}
static void nn__softmax_bwd_with(const nn__ktab *k, size_t rows, size_t cols, const float *y,
                                 const float *dy, float *dx) {
    size_t r, j;
    for (r = 0; r < rows; r++) {
        const float *yr = y + r * cols, *dyr = dy + r * cols;
        float *dxr = dx + r * cols;
        float s = k->dot(cols, yr, dyr);
        for (j = 0; j < cols; j++) dxr[j] = yr[j] * (dyr[j] - s);
    }
}

/* 2x2 max-pool: the scalar twin defines the tie rule (first max in
 * row-major window order wins, NaN wins over numbers). */
static void nn__s_maxpool_fi(int n, int h, int w, int c, const float *x, float *y, float *idx);
static void nn__s_maxpool(int n, int h, int w, int c, const float *x, float *y) {
    nn__s_maxpool_fi(n, h, w, c, x, y, NULL);
}
/* Scatter dy to the first window position equal to y (NaN == NaN here via
 * bit comparison would be overkill: a NaN window already poisons training). */
static void nn__s_maxpool_bwd(int n, int h, int w, int c, const float *x, const float *y,
                              const float *dy, float *dx) {
    int b, i, j, ch, oh = h / 2, ow = w / 2;
    memset(dx, 0, (size_t)n * h * w * c * sizeof(float));
    for (b = 0; b < n; b++)
        for (i = 0; i < oh; i++)
            for (j = 0; j < ow; j++) {
                size_t o0 = (((size_t)b * oh + i) * ow + j) * c;
                size_t i0 = (((size_t)b * h + 2 * i) * w + 2 * j) * c, i1 = i0 + (size_t)w * c;
                for (ch = 0; ch < c; ch++) {
                    float m = y[o0 + ch], g = dy[o0 + ch];
                    if (x[i0 + ch] == m) dx[i0 + ch] = g;
                    else if (x[i0 + c + ch] == m) dx[i0 + c + ch] = g;
                    else if (x[i1 + ch] == m) dx[i1 + ch] = g;
                    else if (x[i1 + c + ch] == m) dx[i1 + c + ch] = g;
                }
            }
}
/* The same pooling keeping the window position of each maximum (0..3 in
 * row-major order, the first that equals it; 4 when none does, a NaN
 * window; idx NULL: not kept), as floats: the backward then scatters dy
 * without reading x again (in a CNN, x is the first conv's output: the
 * largest tensor). */
static void nn__s_maxpool_fi(int n, int h, int w, int c, const float *x, float *y, float *idx) {
    int b, i, j, ch, oh = h / 2, ow = w / 2;
    for (b = 0; b < n; b++)
        for (i = 0; i < oh; i++)
            for (j = 0; j < ow; j++) {
                const float *p0 = x + (((size_t)b * h + 2 * i) * w + 2 * j) * c;
                const float *p1 = p0 + (size_t)w * c;
                size_t o = (((size_t)b * oh + i) * ow + j) * c;
                for (ch = 0; ch < c; ch++) {
                    float m = p0[ch];
                    if (p0[c + ch] > m || p0[c + ch] != p0[c + ch]) m = p0[c + ch];
                    if (p1[ch] > m || p1[ch] != p1[ch]) m = p1[ch];
                    if (p1[c + ch] > m || p1[c + ch] != p1[c + ch]) m = p1[c + ch];
                    y[o + ch] = m;
                    if (idx)
                        idx[o + ch] = p0[ch] == m       ? 0.0f
                                      : p0[c + ch] == m ? 1.0f
                                      : p1[ch] == m     ? 2.0f
                                      : p1[c + ch] == m ? 3.0f
                                                        : 4.0f;
                }
            }
}
static void nn__s_maxpool_bi(int n, int h, int w, int c, const float *idx, const float *dy,
                             float *dx) {
    int b, i, j, ch, q, oh = h / 2, ow = w / 2;
    if ((h | w) & 1) memset(dx, 0, (size_t)n * h * w * c * sizeof(float));
    for (b = 0; b < n; b++)
        for (i = 0; i < oh; i++)
            for (j = 0; j < ow; j++) {
                size_t o = (((size_t)b * oh + i) * ow + j) * c;
                size_t i0 = (((size_t)b * h + 2 * i) * w + 2 * j) * c, i1 = i0 + (size_t)w * c;
                size_t pos[4];
                pos[0] = i0, pos[1] = i0 + c, pos[2] = i1, pos[3] = i1 + c;
                for (q = 0; q < 4; q++)
                    for (ch = 0; ch < c; ch++)
                        dx[pos[q] + ch] = idx[o + ch] == (float)q ? dy[o + ch] : 0.0f;
            }
}
/* global average pool, NHWC: x (n, hw, c) -> y (n, c), y = (sum of the hw
 * pixels in order) / hw, PyTorch's AdaptiveAvgPool2d(1) arithmetic; the
 * SIMD twins sum the same pixels in the same order (lanes are channels),
 * so they agree bit for bit.  Backward: dx = dy / hw at every pixel. */
static void nn__s_gap(size_t n, size_t hw, size_t c, const float *x, float *y) {
    size_t b, p, ch;
    for (b = 0; b < n; b++) {
        const float *xb = x + b * hw * c;
        float *yb = y + b * c;
        for (ch = 0; ch < c; ch++) {
            float s = xb[ch];
            for (p = 1; p < hw; p++) s += xb[p * c + ch];
            yb[ch] = s / (float)hw;
        }
    }
}
static void nn__s_gap_bwd(size_t n, size_t hw, size_t c, const float *dy, float *dx) {
    size_t b, p, ch;
    for (b = 0; b < n; b++)
        for (ch = 0; ch < c; ch++) {
            float g = dy[b * c + ch] / (float)hw;
            for (p = 0; p < hw; p++) dx[(b * hw + p) * c + ch] = g;
        }
}
static void nn__s_sgd(size_t n, float *w, const float *g, float *v, float lr, float mu, float wd,
                      int nesterov) {
    size_t i;
    for (i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        if (mu != 0.0f) {
            float vi = mu * v[i] + gi;
            v[i] = vi;
            gi = nesterov ? gi + mu * vi : vi;
        }
        w[i] -= lr * gi;
    }
}
/* step_size = lr/bc1, inv_sqrt_bc2 = 1/sqrt(bc2), decay = 1 - lr*wd (AdamW)
 * or 1; l2 = wd (Adam) or 0. */
static void nn__s_adam(size_t n, float *w, const float *g, float *m, float *v, float b1, float b2,
                       float eps, float step_size, float inv_sqrt_bc2, float decay, float l2,
                       int unused) {
    size_t i;
    (void)unused;
    for (i = 0; i < n; i++) {
        float wi = w[i] * decay;
        float gi = g[i] + l2 * wi;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - step_size * (mi / (sqrtf(vi) * inv_sqrt_bc2 + eps));
    }
}

/* One LSTM row of one step: pre-activations g = (i, f, g, o) become the
 * gate values in place, then c = f c_prev + i g, tc = tanh c, h = o tc. */
static void nn__s_lstm_fwd(size_t H, float *g, const float *cp, float *c, float *tc, float *h) {
    size_t j;
    nn__s_sigmoid(2 * H, g, g);
    nn__s_tanh(H, g + 2 * H, g + 2 * H);
    nn__s_sigmoid(H, g + 3 * H, g + 3 * H);
    for (j = 0; j < H; j++) c[j] = g[H + j] * cp[j] + g[j] * g[2 * H + j];
    nn__s_tanh(H, c, tc);
    for (j = 0; j < H; j++) h[j] = g[3 * H + j] * tc[j];
}
/* One LSTM row of one step of backpropagation through time: from dh and
 * the carried dc to the gradients of the pre-activations of the gates
 * g = (i, f, g, o) (post-activation values), given tanh(c) and c_{t-1}. */
static void nn__s_lstm_bwd(size_t H, const float *g, const float *tc, const float *cp,
                           const float *dh, float *dc, float *dg) {
    size_t j;
    for (j = 0; j < H; j++) {
        float gi = g[j], gf = g[H + j], gg = g[2 * H + j], go = g[3 * H + j], th = tc[j];
        float dcj = dc[j] + dh[j] * go * (1.0f - th * th);
        dg[j] = dcj * gg * gi * (1.0f - gi);
        dg[H + j] = dcj * cp[j] * gf * (1.0f - gf);
        dg[2 * H + j] = dcj * gi * (1.0f - gg * gg);
        dg[3 * H + j] = dh[j] * th * go * (1.0f - go);
        dc[j] = dcj * gf;
    }
}
/* RMSprop (torch.optim.RMSprop, centered=False, momentum=0):
 * g' = g + wd*w;  v = rho*v + (1-rho)*g'^2;  w -= lr * g' / (sqrt(v) + eps) */
static void nn__s_rmsprop(size_t n, float *w, const float *g, float *v, float lr, float rho,
                          float eps, float wd) {
    size_t i;
    for (i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float vi = rho * v[i] + (1.0f - rho) * gi * gi;
        v[i] = vi;
        w[i] -= lr * (gi / (sqrtf(vi) + eps));
    }
}

static void nn__s_tr8(const float *src, size_t lds, float *dst, size_t ldd) {
    size_t j, p;
    for (p = 0; p < 8; p++)
        for (j = 0; j < 8; j++) dst[p * ldd + j] = src[j * lds + p];
}
/* dst[p*ldd + j] = src[j*lds + p] for j < rows, p < cols (multiples of 8),
 * block by block: dst's rows are filled one after the other */
static void nn__s_trs(const float *src, size_t lds, float *dst, size_t ldd, size_t rows,
                      size_t cols) {
    size_t a, r;
    for (a = 0; a < cols; a += 8)
        for (r = 0; r < rows; r += 8) nn__s_tr8(src + r * lds + a, lds, dst + a * ldd + r, ldd);
}
/* int8 GEMM, one panel (section 4.9): C[r][c] = sum over k < 4*k4 of
 * A[r][k] (u8) * B[k][c] (s8), B packed as [k4][32 columns][4] bytes, A
 * as nn__q8a describes it (with pool, rows a multiple of 4 and C's row
 * r/4 the max of four); int32, exact while 4*k4 * 255 * 128 < 2^31
 * (nn__q8_gemm's K limit) */
static const unsigned char *nn__q8row(const nn__q8a *a, size_t r) {
    return a->p + (a->ro ? (size_t)a->ro[r] : r * a->lda);
}
static void nn__s_q8rows(size_t rows, size_t k4, const nn__q8a *a, const signed char *Bp, int32_t *C,
                         size_t ldc, size_t ncols) {
    size_t g = a->pool ? 4 : 1, r, i, c, k, j, q, so;
    for (r = 0; r < rows; r += g)
        for (c = 0; c < ncols; c++) {
            int32_t m = 0;
            for (i = 0; i < g; i++) {
                const unsigned char *row = nn__q8row(a, r + i);
                int32_t acc = 0;
                for (k = 0, so = 0; k < k4; so += a->ss) /* segment by segment */
                    for (q = 0; q < a->sg && k < k4; q++, k++)
                        for (j = 0; j < 4; j++)
                            acc += (int32_t)row[so + 4 * q + j] * (int32_t)Bp[(k * 32 + c) * 4 + j];
                m = i == 0 || acc > m ? acc : m;
            }
            C[r / g * ldc + c] = m;
        }
}
/* A kernel that takes plain rows (one run of 4*k4 bytes each, lda apart,
 * no pool: AVX2's, NEON's) under the whole nn__q8a: rows by a table or
 * in segments gathered into runs, and the pool's max taken after, 16
 * rows at a time (4*k4 <= 4096 where rows are gathered: section 9 reads
 * in place only such K; a larger one goes to the scalar twin) */
typedef void (*nn__q8run_fn)(size_t, size_t, const unsigned char *, size_t, const signed char *,
                             int32_t *, size_t, size_t);
NN__UNUSED static void nn__q8_via(nn__q8run_fn kern, size_t rows, size_t k4, const nn__q8a *a,
                                  const signed char *Bp, int32_t *C, size_t ldc, size_t ncols) {
    unsigned char buf[16384];
    int32_t t[16 * 32];
    int gather = a->ro || a->sg < k4;
    size_t per = 16, r, i, k, c, n, so, run;
    if (!gather && !a->pool) {
        kern(rows, k4, a->p, a->lda, Bp, C, ldc, ncols);
        return;
    }
    if (gather) {
        if (per > sizeof buf / (4 * k4)) per = sizeof buf / (4 * k4) / 4 * 4;
        if (per == 0) { /* a K past section 9's limit for rows read in place: the twin, slowly */
            nn__s_q8rows(rows, k4, a, Bp, C, ldc, ncols);
            return;
        }
    }
    for (r = 0; r < rows; r += n) {
        const unsigned char *A = a->p + r * a->lda;
        size_t lda = a->lda;
        n = rows - r < per ? rows - r : per;
        if (gather) { /* a segment's groups are one run */
            for (i = 0; i < n; i++) {
                const unsigned char *row = nn__q8row(a, r + i);
                for (k = 0, so = 0; k < k4; k += run, so += a->ss) {
                    run = k4 - k < a->sg ? k4 - k : a->sg;
                    if (run == 1) memcpy(buf + (i * k4 + k) * 4, row + so, 4); /* inlined: one channel */
                    else memcpy(buf + (i * k4 + k) * 4, row + so, 4 * run);
                }
            }
            A = buf, lda = 4 * k4;
        }
        if (!a->pool) {
            kern(n, k4, A, lda, Bp, C + r * ldc, ldc, ncols);
            continue;
        }
        kern(n, k4, A, lda, Bp, t, 32, ncols);
        for (i = 0; i < n; i += 4) { /* the max of each four rows */
            const int32_t *t0 = t + i * 32, *t1 = t0 + 32, *t2 = t1 + 32, *t3 = t2 + 32;
            int32_t *d = C + (r + i) / 4 * ldc;
            for (c = 0; c < ncols; c++) {
                int32_t u = t0[c] > t1[c] ? t0[c] : t1[c], v = t2[c] > t3[c] ? t2[c] : t3[c];
                d[c] = u > v ? u : v;
            }
        }
    }
}
/* int8 requantization, exact integer arithmetic (no float): for each j,
 *   v = floor(((acc[j] + bias[j]) * mul[j] + 2^(shift[j]-1)) / 2^shift[j])
 * (the real multiplier mul * 2^-shift < 1: mul in [2^30, 2^31), shift in
 * [31, 62], so v fits 32 bits), then out[j] = clamp(zero + v, lo, 255);
 * rows of n after one another in acc and out, the columns' bias, mul and
 * shift the same for every row.
 * Rounding half up; the SIMD versions compute the same 64-bit products. */
static void nn__s_q8max4(size_t n, const unsigned char *a, const unsigned char *b,
                         const unsigned char *c, const unsigned char *d, unsigned char *out) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char u = a[i] > b[i] ? a[i] : b[i], v = c[i] > d[i] ? c[i] : d[i];
        out[i] = u > v ? u : v;
    }
}
/* The one float step of int8 inference (its input): t = x * inv rounded,
 * then + (z + 0.5) rounded, clamped to [0, 255] (NaN to 0), truncated (a
 * floor, t >= 0).  The product goes through double, where it is exact, and
 * back to float: the float product's rounding, and no compiler can fuse it
 * with the add into an FMA (one rounding instead of two), so every backend
 * and every build gives the same bytes. */
static void nn__s_q8quant(size_t n, const float *x, float inv, int z, unsigned char *out) {
    const float c = (float)z + 0.5f;
    size_t i;
    for (i = 0; i < n; i++) {
        float t = (float)((double)x[i] * (double)inv) + c;
        out[i] = (unsigned char)(int)(t >= 0.0f ? (t <= 255.0f ? t : 255.0f) : 0.0f);
    }
}
static int64_t nn__asr64(int64_t x, int s) { /* floor(x / 2^s), free of C's implementation-defined >> */
    return x >= 0 ? x >> s : -(((-x) - 1) >> s) - 1;
}
static void nn__s_q8req(size_t rows, size_t n, const int32_t *acc, const int32_t *bias,
                        const int32_t *mul, const int32_t *shift, int zero, int lo,
                        unsigned char *out) {
    size_t r, j;
    for (r = 0; r < rows; r++, acc += n, out += n)
        for (j = 0; j < n; j++) {
            int64_t x = (int64_t)acc[j] + bias[j];
            int64_t v = nn__asr64(x * mul[j] + ((int64_t)1 << (shift[j] - 1)), shift[j]) + zero;
            out[j] = (unsigned char)(v < lo ? lo : v > 255 ? 255 : v);
        }
}

/* Winograd F(4x4,3x3) (Lavin & Gray 2015), points 0, 1, -1, 2, -2, inf:
 * 36 multiplies per 16 outputs instead of 144 (section 5, nn__wg_*).
 *   data    V = B^T d B  (6x6 tile d)
 *   filter  U = G g G^T  (3x3 filter g)
 *   output  Y = A^T M A  (4x4 outputs)
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
 *          0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6;
 *          1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 * The weight gradient dW = sum over tiles of d (6x6) correlated with dy
 * (4x4) is the transpose of that algorithm (F(3x3,4x4)): the same V, dy
 * transformed by A dy A^T, and dW = G^T M G.
 * Every product here is exact (by 2, 4, 8, 0.25, 0.5) or the rounding of
 * the last step (by 1/6, an explicit fmaf where an add follows), so a
 * compiler contracting a*b+c into an FMA cannot change a result and the
 * SIMD twins are bit-identical on every target.  2-D transforms: the 1-D
 * one down the columns, then along the rows. */
static void nn__s_bt6(const float *x, size_t xs, float *y, size_t ys) {
    float x0 = x[0], x1 = x[xs], x2 = x[2 * xs], x3 = x[3 * xs], x4 = x[4 * xs], x5 = x[5 * xs];
    float t1 = x4 - 4.0f * x2, t2 = x3 - 4.0f * x1, t3 = x4 - x2, t4 = (x3 - x1) * 2.0f;
    y[0] = ((4.0f * x0 - 4.0f * x2) - x2) + x4;
    y[ys] = t1 + t2;
    y[2 * ys] = t1 - t2;
    y[3 * ys] = t3 + t4;
    y[4 * ys] = t3 - t4;
    y[5 * ys] = ((4.0f * x1 - 4.0f * x3) - x3) + x5;
}
static void nn__s_at6(const float *m, size_t ms, float *y, size_t ys) {
    float a = m[ms] + m[2 * ms], b = m[ms] - m[2 * ms], c = m[3 * ms] + m[4 * ms],
          d = m[3 * ms] - m[4 * ms];
    y[0] = (m[0] + a) + c;
    y[ys] = b + 2.0f * d;
    y[2 * ys] = a + 4.0f * c;
    y[3 * ys] = (b + 8.0f * d) + m[5 * ms];
}
static void nn__s_g3(const float *g, size_t gs, float *u, size_t us) {
    float g0 = g[0], g1 = g[gs], g2 = g[2 * gs], q = 0.25f * g0, h = 0.5f * g1;
    u[0] = q;
    u[us] = ((g0 + g1) + g2) * -(1.0f / 6.0f);
    u[2 * us] = ((g0 - g1) + g2) * -(1.0f / 6.0f);
    u[3 * us] = ((q + h) + g2) * (1.0f / 6.0f);
    u[4 * us] = ((q - h) + g2) * (1.0f / 6.0f);
    u[5 * us] = g2;
}
static void nn__s_a4(const float *g, size_t gs, float *u, size_t us) { /* A (6x4) g */
    float g0 = g[0], g1 = g[gs], g2 = g[2 * gs], g3 = g[3 * gs];
    float a = g0 + g2, b = g1 + g3, c = g0 + 4.0f * g2, d = (g1 + 4.0f * g3) * 2.0f;
    u[0] = g0;
    u[us] = a + b;
    u[2 * us] = a - b;
    u[3 * us] = c + d;
    u[4 * us] = c - d;
    u[5 * us] = g3;
}
static void nn__s_gt6(const float *m, size_t ms, float *o, size_t os) { /* G^T (3x6) m */
    float s = m[ms] + m[2 * ms], p = m[3 * ms] + m[4 * ms];
    o[0] = fmaf(0.25f * p - s, 1.0f / 6.0f, 0.25f * m[0]);
    o[os] = ((m[2 * ms] - m[ms]) + 0.5f * (m[3 * ms] - m[4 * ms])) * (1.0f / 6.0f);
    o[2 * os] = fmaf(p - s, 1.0f / 6.0f, m[5 * ms]);
}
/* v[i*vs] = B^T d B of the 6x6 tile of pixels p[0..35] (row-major) */
static void nn__s_wg_in(size_t c, const float *const *p, float *v, size_t vs) {
    size_t ch;
    int i, j;
    for (ch = 0; ch < c; ch++) {
        float d[36], t[36], r[6];
        for (i = 0; i < 36; i++) d[i] = p[i][ch];
        for (j = 0; j < 6; j++) nn__s_bt6(d + j, 6, t + j, 6);
        for (i = 0; i < 6; i++) {
            nn__s_bt6(t + 6 * i, 1, r, 1);
            for (j = 0; j < 6; j++) v[(size_t)(6 * i + j) * vs + ch] = r[j];
        }
    }
}
/* the 4x4 outputs y[0..15] (NULL: outside the image, skipped) = A^T m A,
 * plus bias, then ReLU (x < 0 -> 0, NaN and -0 kept, as x86 max(0, x)) */
static void nn__s_wg_out(size_t f, const float *m, size_t ms, const float *bias, int relu,
                         float *const *y) {
    size_t ch;
    int i, j;
    for (ch = 0; ch < f; ch++) {
        float a[36], s[24], o[4];
        for (i = 0; i < 36; i++) a[i] = m[(size_t)i * ms + ch];
        for (j = 0; j < 6; j++) nn__s_at6(a + j, 6, s + j, 6);
        for (i = 0; i < 4; i++) {
            nn__s_at6(s + 6 * i, 1, o, 1);
            for (j = 0; j < 4; j++) {
                float v = o[j];
                if (bias) v += bias[ch];
                if (relu && v < 0.0f) v = 0.0f;
                if (y[4 * i + j]) y[4 * i + j][ch] = v;
            }
        }
    }
}
/* u[i*us] = G g G^T of the 3x3 filter g[0..8] */
static void nn__s_wg_w(size_t f, const float *const *g, float *u, size_t us) {
    size_t ch;
    int i, j;
    for (ch = 0; ch < f; ch++) {
        float a[9], q[18], r[6];
        for (i = 0; i < 9; i++) a[i] = g[i][ch];
        for (j = 0; j < 3; j++) nn__s_g3(a + j, 3, q + j, 3);
        for (i = 0; i < 6; i++) {
            nn__s_g3(q + 3 * i, 1, r, 1);
            for (j = 0; j < 6; j++) u[(size_t)(6 * i + j) * us + ch] = r[j];
        }
    }
}
/* u[i*us] = A g A^T of a 4x4 tile of the output gradient g[0..15] */
static void nn__s_wg_dy(size_t f, const float *const *g, float *u, size_t us) {
    size_t ch;
    int i, j;
    for (ch = 0; ch < f; ch++) {
        float a[16], q[24], r[6];
        for (i = 0; i < 16; i++) a[i] = g[i][ch];
        for (j = 0; j < 4; j++) nn__s_a4(a + j, 4, q + j, 4);
        for (i = 0; i < 6; i++) {
            nn__s_a4(q + 4 * i, 1, r, 1);
            for (j = 0; j < 6; j++) u[(size_t)(6 * i + j) * us + ch] = r[j];
        }
    }
}
/* dw[0..8] (row-major 3x3) = G^T m G of a tile summed over the batch */
static void nn__s_wg_wout(size_t f, const float *m, size_t ms, float *const *dw) {
    size_t ch;
    int i, j;
    for (ch = 0; ch < f; ch++) {
        float a[36], s[18], o[3];
        for (i = 0; i < 36; i++) a[i] = m[(size_t)i * ms + ch];
        for (j = 0; j < 6; j++) nn__s_gt6(a + j, 6, s + j, 6);
        for (i = 0; i < 3; i++) {
            nn__s_gt6(s + 6 * i, 1, o, 1);
            for (j = 0; j < 3; j++) dw[3 * i + j][ch] = o[j];
        }
    }
}

/* Scalar SGEMM micro-kernel, 4x8: the same blocked algorithm as the SIMD
 * backends, so the SIMD/scalar ratio measures the instruction set, not
 * the algorithm.  Fixed trip counts let the compiler keep c[][] in
 * registers. */
#define NN__S_MR 4
#define NN__S_NR 8
static void nn__s_ukr(const nn__uk *u) {
    float acc[NN__S_MR][NN__S_NR];
    const float *a = u->a, *b = u->b;
    size_t p, rs = u->rsa;
    int i, j;
    for (i = 0; i < NN__S_MR; i++)
        for (j = 0; j < NN__S_NR; j++) acc[i][j] = 0.0f;
    for (p = 0; p < u->kc; p++) {
        for (i = 0; i < NN__S_MR; i++) {
            float av = a[i * rs];
            for (j = 0; j < NN__S_NR; j++) acc[i][j] += av * b[j];
        }
        a += u->csa;
        b += NN__S_NR;
    }
    for (i = 0; i < u->mr; i++) {
        float *cr = u->c + (size_t)i * u->ldc;
        if (u->beta == 0.0f)
            for (j = 0; j < u->nr; j++) cr[j] = u->alpha * acc[i][j];
        else
            for (j = 0; j < u->nr; j++) cr[j] = u->beta * cr[j] + u->alpha * acc[i][j];
        if (u->relu) nn__s_relu((size_t)u->nr, cr, cr);
    }
}

/* ---- 4.2 SIMD kernels written once ---------------------------------------
 * Each SIMD backend defines this vocabulary, expands NN__SIMD_KERNELS(pfx)
 * and undefines it again:
 *   NN__ATTR          the target attribute every function carries
 *   NN__VF, NN__VI    float / int32 vector types; NN__W lanes
 *   NN__LD, NN__ST    unaligned load/store; NN__LDN/NN__STN first n lanes
 *                     (others read as 0, never touched in memory)
 *   NN__SET1, NN__ADD, NN__SUB, NN__MUL, NN__DIV, NN__SQRT
 *   NN__FMA(a,b,c)    a*b + c;  NN__FNMA(a,b,c)  c - a*b
 *   NN__FMAF(a,b,c)   a*b + c rounded once, as the scalar twins' fmaf
 *                     (NN__FMA where that is fused)
 *   NN__MAX(a,b), NN__MIN(a,b)  x86 semantics: b when either is NaN
 *   NN__SEL_GT(a,b,x,y)  a > b ? x : y lane-wise (false for NaN)
 *   NN__SEL_EQ(a,b,x,y)  a == b ? x : y
 *   NN__HSUM, NN__HMAX  horizontal reductions
 *   NN__RNDI(v)       float -> int32 round-to-nearest;  NN__I2F, NN__ISHL23,
 *   NN__IADD, NN__ISRA1, NN__ISUB, NN__ISET1, NN__I2BITS (reinterpret) */

/* e^x on a vector.  Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, the
 * Cephes degree-7 polynomial for e^r, then 2^n applied as two factors
 * 2^(n>>1) 2^(n-(n>>1)) so that overflow to inf and gradual underflow to
 * subnormals come out right over the whole float range.
 * Bounds held by tests/test_activations.c against double-precision exp
 * (measured max on AVX2/AVX-512/NEON: 1.2e-7 relative, 1.1e-45 absolute):
 *   relative error <= 3e-7 (about 3 ulp) for x in [-87.3, 88.7];
 *   absolute error <= 1e-44 below -87.3 (subnormal results);
 *   +inf above 88.7228, 0 below -103.97, NaN in -> NaN out. */
#define NN__DEF_VEXP(pfx)                                                                          \
    NN__ATTR static inline NN__VF nn__##pfx##_vexp(NN__VF x) {                                     \
        NN__VF fn, r, p;                                                                           \
        NN__VI ni, n1, n2;                                                                         \
        x = NN__MIN(NN__SET1(88.73f), x); /* operand order keeps NaN */                            \
        x = NN__MAX(NN__SET1(-104.0f), x);                                                         \
        ni = NN__RNDI(NN__MUL(x, NN__SET1(1.44269504088896341f)));                                 \
        fn = NN__I2F(ni);                                                                          \
        r = NN__FNMA(fn, NN__SET1(0.693359375f), x);                                               \
        r = NN__FNMA(fn, NN__SET1(-2.12194440e-4f), r);                                            \
        p = NN__SET1(1.9875691500E-4f);                                                            \
        p = NN__FMA(p, r, NN__SET1(1.3981999507E-3f));                                             \
        p = NN__FMA(p, r, NN__SET1(8.3334519073E-3f));                                             \
        p = NN__FMA(p, r, NN__SET1(4.1665795894E-2f));                                             \
        p = NN__FMA(p, r, NN__SET1(1.6666665459E-1f));                                             \
        p = NN__FMA(p, r, NN__SET1(5.0000001201E-1f));                                             \
        p = NN__FMA(p, NN__MUL(r, r), NN__ADD(r, NN__SET1(1.0f)));                                 \
        n1 = NN__ISRA1(ni);                                                                        \
        n2 = NN__ISUB(ni, n1);                                                                     \
        p = NN__MUL(p, NN__I2BITS(NN__ISHL23(NN__IADD(n1, NN__ISET1(127)))));                      \
        return NN__MUL(p, NN__I2BITS(NN__ISHL23(NN__IADD(n2, NN__ISET1(127)))));                   \
    }

/* tanh: Eigen's rational minimax approximation (odd degree 13 over even
 * degree 6) on [-7.9988, 7.9988]; beyond that tanh rounds to +-1 within
 * 2.3e-7.  |x| < 4e-4 returns x (tanh x = x within float rounding there).
 * Against double-precision tanh (tests/test_activations.c): absolute error
 * <= 3e-7 everywhere (4e-7 on wasm, without FMA: measured 3.7e-7), relative
 * error <= 4e-7 for |x| >= 1e-3 (measured max: 2.5e-7 and 2.8e-7).  Sigmoid, 1/(1 + e^-x) from this exp with an IEEE
 * division: <= 5e-7 relative and absolute (measured 1.9e-7, 8.9e-8). */
#define NN__DEF_VTANH(pfx)                                                                         \
    NN__ATTR static inline NN__VF nn__##pfx##_vtanh(NN__VF x0) {                                   \
        NN__VF x =                                                                                 \
            NN__MAX(NN__SET1(-7.99881172180175781f), NN__MIN(NN__SET1(7.99881172180175781f), x0)); \
        NN__VF x2 = NN__MUL(x, x), p, q, ax;                                                       \
        p = NN__FMA(x2, NN__SET1(-2.76076847742355e-16f), NN__SET1(2.00018790482477e-13f));        \
        p = NN__FMA(x2, p, NN__SET1(-8.60467152213735e-11f));                                      \
        p = NN__FMA(x2, p, NN__SET1(5.12229709037114e-08f));                                       \
        p = NN__FMA(x2, p, NN__SET1(1.48572235717979e-05f));                                       \
        p = NN__FMA(x2, p, NN__SET1(6.37261928875436e-04f));                                       \
        p = NN__FMA(x2, p, NN__SET1(4.89352455891786e-03f));                                       \
        p = NN__MUL(x, p);                                                                         \
        q = NN__FMA(x2, NN__SET1(1.19825839466702e-06f), NN__SET1(1.18534705686654e-04f));         \
        q = NN__FMA(x2, q, NN__SET1(2.26843463243900e-03f));                                       \
        q = NN__FMA(x2, q, NN__SET1(4.89352518554385e-03f));                                       \
        ax = NN__MAX(x0, NN__SUB(NN__SET1(0.0f), x0));                                             \
        return NN__SEL_GT(NN__SET1(0.0004f), ax, x0, NN__DIV(p, q));                               \
    }

/* The Winograd transforms (nn__s_wg_in and below), a vector of channels at
 * a time (t lanes): the same operations in the same order as the scalar
 * twins.  Columns are read straight from the pixels (points); the rows go
 * through a small stack tile, as 36 points do not fit in registers. */
#define NN__DEF_WG(pfx)                                                                            \
    NN__ATTR static inline void nn__##pfx##_bt6(NN__VF x0, NN__VF x1, NN__VF x2, NN__VF x3,        \
                                                NN__VF x4, NN__VF x5, NN__VF *y, size_t ys) {      \
        NN__VF k4 = NN__SET1(4.0f), t1 = NN__FNMA(k4, x2, x4), t2 = NN__FNMA(k4, x1, x3);          \
        NN__VF t3 = NN__SUB(x4, x2), t4 = NN__MUL(NN__SUB(x3, x1), NN__SET1(2.0f));                \
        y[0] = NN__ADD(NN__SUB(NN__FNMA(k4, x2, NN__MUL(k4, x0)), x2), x4);                        \
        y[ys] = NN__ADD(t1, t2);                                                                   \
        y[2 * ys] = NN__SUB(t1, t2);                                                               \
        y[3 * ys] = NN__ADD(t3, t4);                                                               \
        y[4 * ys] = NN__SUB(t3, t4);                                                               \
        y[5 * ys] = NN__ADD(NN__SUB(NN__FNMA(k4, x3, NN__MUL(k4, x1)), x3), x5);                   \
    }                                                                                              \
    NN__ATTR static inline void nn__##pfx##_at6(NN__VF m0, NN__VF m1, NN__VF m2, NN__VF m3,        \
                                                NN__VF m4, NN__VF m5, NN__VF *y, size_t ys) {      \
        NN__VF a = NN__ADD(m1, m2), b = NN__SUB(m1, m2), c = NN__ADD(m3, m4), d = NN__SUB(m3, m4); \
        y[0] = NN__ADD(NN__ADD(m0, a), c);                                                         \
        y[ys] = NN__FMA(NN__SET1(2.0f), d, b);                                                     \
        y[2 * ys] = NN__FMA(NN__SET1(4.0f), c, a);                                                 \
        y[3 * ys] = NN__ADD(NN__FMA(NN__SET1(8.0f), d, b), m5);                                    \
    }                                                                                              \
    NN__ATTR static inline void nn__##pfx##_g3(NN__VF g0, NN__VF g1, NN__VF g2, NN__VF *u,         \
                                               size_t us) {                                        \
        NN__VF q = NN__MUL(NN__SET1(0.25f), g0), h = NN__MUL(NN__SET1(0.5f), g1);                  \
        NN__VF s6 = NN__SET1(1.0f / 6.0f), n6 = NN__SET1(-(1.0f / 6.0f));                          \
        u[0] = q;                                                                                  \
        u[us] = NN__MUL(NN__ADD(NN__ADD(g0, g1), g2), n6);                                         \
        u[2 * us] = NN__MUL(NN__ADD(NN__SUB(g0, g1), g2), n6);                                     \
        u[3 * us] = NN__MUL(NN__ADD(NN__ADD(q, h), g2), s6);                                       \
        u[4 * us] = NN__MUL(NN__ADD(NN__SUB(q, h), g2), s6);                                       \
        u[5 * us] = g2;                                                                            \
    }                                                                                              \
    NN__ATTR static inline void nn__##pfx##_a4(NN__VF g0, NN__VF g1, NN__VF g2, NN__VF g3,         \
                                               NN__VF *u, size_t us) {                             \
        NN__VF k4 = NN__SET1(4.0f), a = NN__ADD(g0, g2), b = NN__ADD(g1, g3),                      \
               c = NN__FMA(k4, g2, g0);                                                            \
        NN__VF d = NN__MUL(NN__FMA(k4, g3, g1), NN__SET1(2.0f));                                   \
        u[0] = g0;                                                                                 \
        u[us] = NN__ADD(a, b);                                                                     \
        u[2 * us] = NN__SUB(a, b);                                                                 \
        u[3 * us] = NN__ADD(c, d);                                                                 \
        u[4 * us] = NN__SUB(c, d);                                                                 \
        u[5 * us] = g3;                                                                            \
    }                                                                                              \
    NN__ATTR static inline void nn__##pfx##_gt6(NN__VF m0, NN__VF m1, NN__VF m2, NN__VF m3,        \
                                                NN__VF m4, NN__VF m5, NN__VF *o, size_t os) {      \
        NN__VF s = NN__ADD(m1, m2), p = NN__ADD(m3, m4), q = NN__SET1(0.25f),                      \
               s6 = NN__SET1(1.0f / 6.0f);                                                         \
        o[0] = NN__FMAF(NN__SUB(NN__MUL(q, p), s), s6, NN__MUL(q, m0));                            \
        o[os] = NN__MUL(NN__ADD(NN__SUB(m2, m1), NN__MUL(NN__SET1(0.5f), NN__SUB(m3, m4))), s6);   \
        o[2 * os] = NN__FMAF(NN__SUB(p, s), s6, m5);                                               \
    }                                                                                              \
    NN__ATTR static inline void nn__##pfx##_wg_out1(NN__VF y, const float *bias, int relu,         \
                                                    float *p, size_t o, size_t t) {                \
        if (bias) y = NN__ADD(y, NN__LDT(bias + o, t));                                            \
        if (relu) y = NN__MAX(NN__SET1(0.0f), y);                                                  \
        if (p) NN__STT(p + o, y, t);                                                               \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_wg_in(size_t c, const float *const *p, float *v, size_t vs) { \
        size_t o, t;                                                                               \
        int i, j;                                                                                  \
        NN__VF tm[36], r[6];                                                                       \
        for (o = 0; o < c; o += NN__W) {                                                           \
            t = c - o < (size_t)NN__W ? c - o : (size_t)NN__W;                                     \
            for (j = 0; j < 6; j++)                                                                \
                nn__##pfx##_bt6(NN__LDT(p[j] + o, t), NN__LDT(p[6 + j] + o, t),                    \
                                NN__LDT(p[12 + j] + o, t), NN__LDT(p[18 + j] + o, t),              \
                                NN__LDT(p[24 + j] + o, t), NN__LDT(p[30 + j] + o, t), tm + j, 6);  \
            for (i = 0; i < 6; i++) {                                                              \
                const NN__VF *q = tm + 6 * i;                                                      \
                nn__##pfx##_bt6(q[0], q[1], q[2], q[3], q[4], q[5], r, 1);                         \
                for (j = 0; j < 6; j++) NN__STT(v + (size_t)(6 * i + j) * vs + o, r[j], t);        \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_wg_out(size_t f, const float *m, size_t ms,                   \
                                            const float *bias, int relu, float *const *y) {        \
        size_t o, t;                                                                               \
        int i, j;                                                                                  \
        NN__VF s[24], r[4];                                                                        \
        for (o = 0; o < f; o += NN__W) {                                                           \
            t = f - o < (size_t)NN__W ? f - o : (size_t)NN__W;                                     \
            for (j = 0; j < 6; j++)                                                                \
                nn__##pfx##_at6(NN__LDT(m + (size_t)j * ms + o, t),                                \
                                NN__LDT(m + (size_t)(6 + j) * ms + o, t),                          \
                                NN__LDT(m + (size_t)(12 + j) * ms + o, t),                         \
                                NN__LDT(m + (size_t)(18 + j) * ms + o, t),                         \
                                NN__LDT(m + (size_t)(24 + j) * ms + o, t),                         \
                                NN__LDT(m + (size_t)(30 + j) * ms + o, t), s + j, 6);              \
            for (i = 0; i < 4; i++) {                                                              \
                const NN__VF *q = s + 6 * i;                                                       \
                nn__##pfx##_at6(q[0], q[1], q[2], q[3], q[4], q[5], r, 1);                         \
                for (j = 0; j < 4; j++) nn__##pfx##_wg_out1(r[j], bias, relu, y[4 * i + j], o, t); \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_wg_w(size_t f, const float *const *g, float *u, size_t us) {  \
        size_t o, t;                                                                               \
        int i, j;                                                                                  \
        NN__VF q[18], r[6];                                                                        \
        for (o = 0; o < f; o += NN__W) {                                                           \
            t = f - o < (size_t)NN__W ? f - o : (size_t)NN__W;                                     \
            for (j = 0; j < 3; j++)                                                                \
                nn__##pfx##_g3(NN__LDT(g[j] + o, t), NN__LDT(g[3 + j] + o, t),                     \
                               NN__LDT(g[6 + j] + o, t), q + j, 3);                                \
            for (i = 0; i < 6; i++) {                                                              \
                nn__##pfx##_g3(q[3 * i], q[3 * i + 1], q[3 * i + 2], r, 1);                        \
                for (j = 0; j < 6; j++) NN__STT(u + (size_t)(6 * i + j) * us + o, r[j], t);        \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_wg_dy(size_t f, const float *const *g, float *u, size_t us) { \
        size_t o, t;                                                                               \
        int i, j;                                                                                  \
        NN__VF q[24], r[6];                                                                        \
        for (o = 0; o < f; o += NN__W) {                                                           \
            t = f - o < (size_t)NN__W ? f - o : (size_t)NN__W;                                     \
            for (j = 0; j < 4; j++)                                                                \
                nn__##pfx##_a4(NN__LDT(g[j] + o, t), NN__LDT(g[4 + j] + o, t),                     \
                               NN__LDT(g[8 + j] + o, t), NN__LDT(g[12 + j] + o, t), q + j, 4);     \
            for (i = 0; i < 6; i++) {                                                              \
                nn__##pfx##_a4(q[4 * i], q[4 * i + 1], q[4 * i + 2], q[4 * i + 3], r, 1);          \
                for (j = 0; j < 6; j++) NN__STT(u + (size_t)(6 * i + j) * us + o, r[j], t);        \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_wg_wout(size_t f, const float *m, size_t ms,                  \
                                             float *const *dw) {                                   \
        size_t o, t;                                                                               \
        int i, j;                                                                                  \
        NN__VF s[18], r[3];                                                                        \
        for (o = 0; o < f; o += NN__W) {                                                           \
            t = f - o < (size_t)NN__W ? f - o : (size_t)NN__W;                                     \
            for (j = 0; j < 6; j++)                                                                \
                nn__##pfx##_gt6(NN__LDT(m + (size_t)j * ms + o, t),                                \
                                NN__LDT(m + (size_t)(6 + j) * ms + o, t),                          \
                                NN__LDT(m + (size_t)(12 + j) * ms + o, t),                         \
                                NN__LDT(m + (size_t)(18 + j) * ms + o, t),                         \
                                NN__LDT(m + (size_t)(24 + j) * ms + o, t),                         \
                                NN__LDT(m + (size_t)(30 + j) * ms + o, t), s + j, 6);              \
            for (i = 0; i < 3; i++) {                                                              \
                const NN__VF *q = s + 6 * i;                                                       \
                nn__##pfx##_gt6(q[0], q[1], q[2], q[3], q[4], q[5], r, 1);                         \
                for (j = 0; j < 3; j++) NN__STT(dw[3 * i + j] + o, r[j], t);                       \
            }                                                                                      \
        }                                                                                          \
    }

/* Map kernels: full vectors, then one masked vector for the tail so the
 * tail gets exactly the same arithmetic as the body. */
#define NN__MAP1(name, EXPR)                                                                       \
    NN__ATTR static void name(size_t n, const float *x, float *y) {                                \
        size_t i = 0;                                                                              \
        NN__VF v;                                                                                  \
        for (; i + NN__W <= n; i += NN__W) {                                                       \
            v = NN__LD(x + i);                                                                     \
            NN__ST(y + i, EXPR);                                                                   \
        }                                                                                          \
        if (i < n) {                                                                               \
            v = NN__LDN(x + i, n - i);                                                             \
            NN__STN(y + i, EXPR, n - i);                                                           \
        }                                                                                          \
    }
#define NN__MAP2(name, EXPR)                                                                       \
    NN__ATTR static void name(size_t n, const float *a, const float *b, float *y) {                \
        size_t i = 0;                                                                              \
        NN__VF u, v;                                                                               \
        for (; i + NN__W <= n; i += NN__W) {                                                       \
            u = NN__LD(a + i);                                                                     \
            v = NN__LD(b + i);                                                                     \
            NN__ST(y + i, EXPR);                                                                   \
        }                                                                                          \
        if (i < n) {                                                                               \
            u = NN__LDN(a + i, n - i);                                                             \
            v = NN__LDN(b + i, n - i);                                                             \
            NN__STN(y + i, EXPR, n - i);                                                           \
        }                                                                                          \
    }
/* (x, y, dy) -> dx with u = y, v = dy */
#define NN__MAPB(name, EXPR) NN__MAP2(name, EXPR)
/* load/store t lanes: the plain instruction for whole vectors, masked only
 * for the tail (masked AVX2 moves cost ~1.6x plain ones) */
#define NN__LDT(p, t) ((t) == (size_t)NN__W ? NN__LD(p) : NN__LDN(p, t))
#define NN__STT(p, v, t)                                                                           \
    do {                                                                                           \
        if ((t) == (size_t)NN__W)                                                                  \
            NN__ST(p, v);                                                                          \
        else                                                                                       \
            NN__STN(p, v, t);                                                                      \
    } while (0)

#define NN__SIMD_KERNELS(pfx)                                                                      \
    NN__DEF_VEXP(pfx)                                                                              \
    NN__DEF_VTANH(pfx)                                                                             \
    NN__DEF_WG(pfx)                                                                                \
    NN__MAP2(nn__##pfx##_add, NN__ADD(u, v))                                                       \
    NN__MAP2(nn__##pfx##_sub, NN__SUB(u, v))                                                       \
    NN__MAP2(nn__##pfx##_mul, NN__MUL(u, v))                                                       \
    NN__MAP1(nn__##pfx##_exp, nn__##pfx##_vexp(v))                                                 \
    NN__MAP1(nn__##pfx##_relu, NN__MAX(NN__SET1(0.0f), v))                                         \
    NN__MAP1(nn__##pfx##_sigmoid,                                                                  \
             NN__DIV(NN__SET1(1.0f),                                                               \
                     NN__ADD(NN__SET1(1.0f), nn__##pfx##_vexp(NN__SUB(NN__SET1(0.0f), v)))))       \
    NN__MAP1(nn__##pfx##_tanh, nn__##pfx##_vtanh(v))                                               \
    NN__MAPB(nn__##pfx##_relu_bwd, NN__SEL_GT(u, NN__SET1(0.0f), v, NN__SET1(0.0f)))               \
    NN__MAPB(nn__##pfx##_sigmoid_bwd, NN__MUL(v, NN__MUL(u, NN__SUB(NN__SET1(1.0f), u))))          \
    NN__MAPB(nn__##pfx##_tanh_bwd, NN__MUL(v, NN__FNMA(u, u, NN__SET1(1.0f))))                     \
    NN__ATTR static void nn__##pfx##_scale(size_t n, float s, const float *x, float *y) {          \
        size_t i = 0;                                                                              \
        NN__VF vs = NN__SET1(s);                                                                   \
        for (; i + NN__W <= n; i += NN__W) NN__ST(y + i, NN__MUL(vs, NN__LD(x + i)));              \
        if (i < n) NN__STN(y + i, NN__MUL(vs, NN__LDN(x + i, n - i)), n - i);                      \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_axpy(size_t n, float a, const float *x, float *y) {           \
        size_t i = 0;                                                                              \
        NN__VF va = NN__SET1(a);                                                                   \
        for (; i + NN__W <= n; i += NN__W)                                                         \
            NN__ST(y + i, NN__FMA(va, NN__LD(x + i), NN__LD(y + i)));                              \
        if (i < n)                                                                                 \
            NN__STN(y + i, NN__FMA(va, NN__LDN(x + i, n - i), NN__LDN(y + i, n - i)), n - i);      \
    }                                                                                              \
    /* two accumulators hide the add latency; masked tail adds zeros */                            \
    NN__ATTR static float nn__##pfx##_dot(size_t n, const float *a, const float *b) {              \
        size_t i = 0;                                                                              \
        NN__VF s0 = NN__SET1(0.0f), s1 = NN__SET1(0.0f);                                           \
        for (; i + 2 * NN__W <= n; i += 2 * NN__W) {                                               \
            s0 = NN__FMA(NN__LD(a + i), NN__LD(b + i), s0);                                        \
            s1 = NN__FMA(NN__LD(a + i + NN__W), NN__LD(b + i + NN__W), s1);                        \
        }                                                                                          \
        for (; i + NN__W <= n; i += NN__W) s0 = NN__FMA(NN__LD(a + i), NN__LD(b + i), s0);         \
        if (i < n) s1 = NN__FMA(NN__LDN(a + i, n - i), NN__LDN(b + i, n - i), s1);                 \
        return NN__HSUM(NN__ADD(s0, s1));                                                          \
    }                                                                                              \
    NN__ATTR static float nn__##pfx##_sum(size_t n, const float *x) {                              \
        size_t i = 0;                                                                              \
        NN__VF s0 = NN__SET1(0.0f), s1 = NN__SET1(0.0f);                                           \
        for (; i + 2 * NN__W <= n; i += 2 * NN__W) {                                               \
            s0 = NN__ADD(s0, NN__LD(x + i));                                                       \
            s1 = NN__ADD(s1, NN__LD(x + i + NN__W));                                               \
        }                                                                                          \
        for (; i + NN__W <= n; i += NN__W) s0 = NN__ADD(s0, NN__LD(x + i));                        \
        if (i < n) s1 = NN__ADD(s1, NN__LDN(x + i, n - i));                                        \
        return NN__HSUM(NN__ADD(s0, s1));                                                          \
    }                                                                                              \
    /* NaN must win (like torch.max): count NaN lanes beside the max */                            \
    NN__ATTR static float nn__##pfx##_max(size_t n, const float *x) {                              \
        size_t i = 0;                                                                              \
        float m = -INFINITY;                                                                       \
        if (n >= NN__W) {                                                                          \
            NN__VF acc = NN__LD(x), nanc = NN__SEL_EQ(acc, acc, NN__SET1(0.0f), NN__SET1(1.0f));   \
            for (i = NN__W; i + NN__W <= n; i += NN__W) {                                          \
                NN__VF v = NN__LD(x + i);                                                          \
                nanc = NN__ADD(nanc, NN__SEL_EQ(v, v, NN__SET1(0.0f), NN__SET1(1.0f)));            \
                acc = NN__MAX(acc, v);                                                             \
            }                                                                                      \
            if (NN__HSUM(nanc) != 0.0f) return NAN;                                                \
            m = NN__HMAX(acc);                                                                     \
        }                                                                                          \
        for (; i < n; i++) {                                                                       \
            if (x[i] != x[i]) return x[i];                                                         \
            if (x[i] > m) m = x[i];                                                                \
        }                                                                                          \
        return m;                                                                                  \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_softmax(size_t rows, size_t cols, const float *x, float *y) { \
        size_t r, i;                                                                               \
        for (r = 0; r < rows; r++) {                                                               \
            const float *xr = x + r * cols;                                                        \
            float *yr = y + r * cols, mx = nn__##pfx##_max(cols, xr);                              \
            NN__VF vm, s = NN__SET1(0.0f), e;                                                      \
            float inv;                                                                             \
            if (mx == INFINITY || mx == -INFINITY) mx = 0.0f;                                      \
            vm = NN__SET1(mx);                                                                     \
            for (i = 0; i + NN__W <= cols; i += NN__W) {                                           \
                e = nn__##pfx##_vexp(NN__SUB(NN__LD(xr + i), vm));                                 \
                s = NN__ADD(s, e);                                                                 \
                NN__ST(yr + i, e);                                                                 \
            }                                                                                      \
            if (i < cols) {                                                                        \
                e = nn__##pfx##_vexp(NN__SUB(NN__LDN(xr + i, cols - i), vm));                      \
                NN__STN(yr + i, e, cols - i);                                                      \
                s = NN__ADD(s, NN__SEL_GT(NN__SET1((float)(cols - i)), nn__##pfx##_iota(), e,      \
                                          NN__SET1(0.0f)));                                        \
            }                                                                                      \
            inv = 1.0f / NN__HSUM(s);                                                              \
            nn__##pfx##_scale(cols, inv, yr, yr);                                                  \
        }                                                                                          \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_softmax_bwd(size_t rows, size_t cols, const float *y,         \
                                                 const float *dy, float *dx) {                     \
        size_t r, i;                                                                               \
        for (r = 0; r < rows; r++) {                                                               \
            const float *yr = y + r * cols, *dyr = dy + r * cols;                                  \
            float *dxr = dx + r * cols;                                                            \
            NN__VF s = NN__SET1(nn__##pfx##_dot(cols, yr, dyr));                                   \
            for (i = 0; i + NN__W <= cols; i += NN__W)                                             \
                NN__ST(dxr + i, NN__MUL(NN__LD(yr + i), NN__SUB(NN__LD(dyr + i), s)));             \
            if (i < cols)                                                                          \
                NN__STN(                                                                           \
                    dxr + i,                                                                       \
                    NN__MUL(NN__LDN(yr + i, cols - i), NN__SUB(NN__LDN(dyr + i, cols - i), s)),    \
                    cols - i);                                                                     \
        }                                                                                          \
    }                                                                                              \
    /* max-pool over channels, vectorised along C; same tie/NaN rule as the \
     * scalar twin: take the candidate when it is greater or NaN */                      \
    NN__ATTR static inline NN__VF nn__##pfx##_pmax(NN__VF m, NN__VF c) {                           \
        return NN__SEL_GT(c, m, c, NN__SEL_EQ(c, c, m, c));                                        \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_maxpool(int n, int h, int w, int c, const float *x,           \
                                             float *y) {                                           \
        int b, i, j, ch, oh = h / 2, ow = w / 2;                                                   \
        for (b = 0; b < n; b++)                                                                    \
            for (i = 0; i < oh; i++)                                                               \
                for (j = 0; j < ow; j++) {                                                         \
                    const float *p0 = x + (((size_t)b * h + 2 * i) * w + 2 * j) * c;               \
                    const float *p1 = p0 + (size_t)w * c;                                          \
                    float *o = y + (((size_t)b * oh + i) * ow + j) * c;                            \
                    for (ch = 0; ch + NN__W <= c; ch += NN__W) {                                   \
                        NN__VF m = NN__LD(p0 + ch);                                                \
                        m = nn__##pfx##_pmax(m, NN__LD(p0 + c + ch));                              \
                        m = nn__##pfx##_pmax(m, NN__LD(p1 + ch));                                  \
                        m = nn__##pfx##_pmax(m, NN__LD(p1 + c + ch));                              \
                        NN__ST(o + ch, m);                                                         \
                    }                                                                              \
                    if (ch < c) {                                                                  \
                        size_t t = (size_t)(c - ch);                                               \
                        NN__VF m = NN__LDN(p0 + ch, t);                                            \
                        m = nn__##pfx##_pmax(m, NN__LDN(p0 + c + ch, t));                          \
                        m = nn__##pfx##_pmax(m, NN__LDN(p1 + ch, t));                              \
                        m = nn__##pfx##_pmax(m, NN__LDN(p1 + c + ch, t));                          \
                        NN__STN(o + ch, m, t);                                                     \
                    }                                                                              \
                }                                                                                  \
    }                                                                                              \
    NN__ATTR static inline void nn__##pfx##_pool_scatter(                                          \
        const float *x, const size_t *pos, size_t off, NN__VF m, NN__VF g, float *dx, size_t t) {  \
        NN__VF taken = NN__SET1(0.0f), one = NN__SET1(1.0f), zero = NN__SET1(0.0f),                \
               half = NN__SET1(0.5f);                                                              \
        int q;                                                                                     \
        for (q = 0; q < 4; q++) {                                                                  \
            NN__VF xv =                                                                            \
                t == (size_t)NN__W ? NN__LD(x + pos[q] + off) : NN__LDN(x + pos[q] + off, t);      \
            NN__VF hit = NN__SEL_GT(taken, half, zero, NN__SEL_EQ(xv, m, one, zero));              \
            NN__VF d = NN__SEL_GT(hit, half, g, zero);                                             \
            if (t == (size_t)NN__W)                                                                \
                NN__ST(dx + pos[q] + off, d);                                                      \
            else                                                                                   \
                NN__STN(dx + pos[q] + off, d, t);                                                  \
            taken = NN__ADD(taken, hit);                                                           \
        }                                                                                          \
    }                                                                                              \
    /* backward: each window position takes dy where it equals the max and  \
     * no earlier position did; every covered dx is written, so only the    \
     * uncovered last row/column of odd sizes needs zeroing first */                      \
    NN__ATTR static void nn__##pfx##_maxpool_bwd(int n, int h, int w, int c, const float *x,       \
                                                 const float *y, const float *dy, float *dx) {     \
        int b, i, j, ch, oh = h / 2, ow = w / 2;                                                   \
        if ((h | w) & 1) memset(dx, 0, (size_t)n *h *w *c * sizeof(float));                        \
        for (b = 0; b < n; b++)                                                                    \
            for (i = 0; i < oh; i++)                                                               \
                for (j = 0; j < ow; j++) {                                                         \
                    size_t o0 = (((size_t)b * oh + i) * ow + j) * c;                               \
                    size_t i0 = (((size_t)b * h + 2 * i) * w + 2 * j) * c,                         \
                           i1 = i0 + (size_t)w * c;                                                \
                    size_t pos[4];                                                                 \
                    pos[0] = i0;                                                                   \
                    pos[1] = i0 + c;                                                               \
                    pos[2] = i1;                                                                   \
                    pos[3] = i1 + c;                                                               \
                    for (ch = 0; ch + NN__W <= c; ch += NN__W)                                     \
                        nn__##pfx##_pool_scatter(x, pos, (size_t)ch, NN__LD(y + o0 + ch),          \
                                                 NN__LD(dy + o0 + ch), dx, (size_t)NN__W);         \
                    if (ch < c) {                                                                  \
                        size_t t = (size_t)(c - ch);                                               \
                        nn__##pfx##_pool_scatter(x, pos, (size_t)ch, NN__LDN(y + o0 + ch, t),      \
                                                 NN__LDN(dy + o0 + ch, t), dx, t);                 \
                    }                                                                              \
                }                                                                                  \
    }                                                                                              \
    NN__ATTR static inline void nn__##pfx##_pool_fi1(const float *p0, const float *p1, size_t c,   \
                                                     float *o, float *ix, size_t t) {              \
        NN__VF x0 = NN__LDT(p0, t), x1 = NN__LDT(p0 + c, t), x2 = NN__LDT(p1, t),                  \
               x3 = NN__LDT(p1 + c, t), m, q;                                                      \
        m = nn__##pfx##_pmax(nn__##pfx##_pmax(nn__##pfx##_pmax(x0, x1), x2), x3);                  \
        q = NN__SEL_EQ(x3, m, NN__SET1(3.0f), NN__SET1(4.0f));                                     \
        q = NN__SEL_EQ(x2, m, NN__SET1(2.0f), q);                                                  \
        q = NN__SEL_EQ(x1, m, NN__SET1(1.0f), q);                                                  \
        q = NN__SEL_EQ(x0, m, NN__SET1(0.0f), q);                                                  \
        NN__STT(o, m, t);                                                                          \
        NN__STT(ix, q, t);                                                                         \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_maxpool_fi(int n, int h, int w, int c, const float *x,        \
                                                float *y, float *idx) {                            \
        int b, i, j, oh = h / 2, ow = w / 2;                                                       \
        size_t ch, t;                                                                              \
        for (b = 0; b < n; b++)                                                                    \
            for (i = 0; i < oh; i++)                                                               \
                for (j = 0; j < ow; j++) {                                                         \
                    const float *p0 = x + (((size_t)b * h + 2 * i) * w + 2 * j) * c,               \
                                *p1 = p0 + (size_t)w * c;                                          \
                    size_t o = (((size_t)b * oh + i) * ow + j) * c;                                \
                    for (ch = 0; ch < (size_t)c; ch += t) {                                        \
                        t = (size_t)c - ch < (size_t)NN__W ? (size_t)c - ch : (size_t)NN__W;       \
                        nn__##pfx##_pool_fi1(p0 + ch, p1 + ch, (size_t)c, y + o + ch,              \
                                             idx + o + ch, t);                                     \
                    }                                                                              \
                }                                                                                  \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_maxpool_bi(int n, int h, int w, int c, const float *idx,      \
                                                const float *dy, float *dx) {                      \
        int b, i, j, q, oh = h / 2, ow = w / 2;                                                    \
        size_t ch, t;                                                                              \
        NN__VF z = NN__SET1(0.0f);                                                                 \
        if ((h | w) & 1) memset(dx, 0, (size_t)n *h *w *c * sizeof(float));                        \
        for (b = 0; b < n; b++)                                                                    \
            for (i = 0; i < oh; i++)                                                               \
                for (j = 0; j < ow; j++) {                                                         \
                    size_t o = (((size_t)b * oh + i) * ow + j) * c;                                \
                    size_t i0 = (((size_t)b * h + 2 * i) * w + 2 * j) * c,                         \
                           i1 = i0 + (size_t)w * c, pos[4];                                        \
                    pos[0] = i0, pos[1] = i0 + c, pos[2] = i1, pos[3] = i1 + c;                    \
                    for (ch = 0; ch < (size_t)c; ch += t) {                                        \
                        NN__VF qv, g;                                                              \
                        t = (size_t)c - ch < (size_t)NN__W ? (size_t)c - ch : (size_t)NN__W;       \
                        qv = NN__LDT(idx + o + ch, t);                                             \
                        g = NN__LDT(dy + o + ch, t);                                               \
                        for (q = 0; q < 4; q++)                                                    \
                            NN__STT(dx + pos[q] + ch, NN__SEL_EQ(qv, NN__SET1((float)q), g, z),    \
                                    t);                                                            \
                    }                                                                              \
                }                                                                                  \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_gap(size_t n, size_t hw, size_t c, const float *x,            \
                                         float *y) {                                               \
        size_t b, p, ch, t;                                                                        \
        NN__VF d = NN__SET1((float)hw);                                                            \
        for (b = 0; b < n; b++)                                                                    \
            for (ch = 0; ch < c; ch += t) {                                                        \
                const float *xb = x + b * hw * c + ch;                                             \
                NN__VF s;                                                                          \
                t = c - ch < (size_t)NN__W ? c - ch : (size_t)NN__W;                               \
                s = NN__LDT(xb, t);                                                                \
                for (p = 1; p < hw; p++) s = NN__ADD(s, NN__LDT(xb + p * c, t));                   \
                NN__STT(y + b * c + ch, NN__DIV(s, d), t);                                         \
            }                                                                                      \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_gap_bwd(size_t n, size_t hw, size_t c, const float *dy,       \
                                             float *dx) {                                          \
        size_t b, p, ch, t;                                                                        \
        NN__VF d = NN__SET1((float)hw);                                                            \
        for (b = 0; b < n; b++)                                                                    \
            for (ch = 0; ch < c; ch += t) {                                                        \
                NN__VF g;                                                                          \
                t = c - ch < (size_t)NN__W ? c - ch : (size_t)NN__W;                               \
                g = NN__DIV(NN__LDT(dy + b * c + ch, t), d);                                       \
                for (p = 0; p < hw; p++) NN__STT(dx + (b * hw + p) * c + ch, g, t);                \
            }                                                                                      \
    }                                                                                              \
    /* the same gate arithmetic as the scalar twin, one pass per row */                            \
    NN__ATTR static void nn__##pfx##_lstm_fwd(size_t H, float *g, const float *cp, float *c,       \
                                              float *tc, float *h) {                               \
        size_t j, t;                                                                               \
        NN__VF one = NN__SET1(1.0f), zero = NN__SET1(0.0f);                                        \
        for (j = 0; j < H; j += NN__W) {                                                           \
            NN__VF gi, gf, gg, go, cj, th;                                                         \
            t = H - j < (size_t)NN__W ? H - j : (size_t)NN__W;                                     \
            gi = NN__DIV(one, NN__ADD(one, nn__##pfx##_vexp(NN__SUB(zero, NN__LDT(g + j, t)))));   \
            gf = NN__DIV(one,                                                                      \
                         NN__ADD(one, nn__##pfx##_vexp(NN__SUB(zero, NN__LDT(g + H + j, t)))));    \
            gg = nn__##pfx##_vtanh(NN__LDT(g + 2 * H + j, t));                                     \
            go = NN__DIV(                                                                          \
                one, NN__ADD(one, nn__##pfx##_vexp(NN__SUB(zero, NN__LDT(g + 3 * H + j, t)))));    \
            cj = NN__FMA(gf, NN__LDT(cp + j, t), NN__MUL(gi, gg));                                 \
            th = nn__##pfx##_vtanh(cj);                                                            \
            NN__STT(g + j, gi, t);                                                                 \
            NN__STT(g + H + j, gf, t);                                                             \
            NN__STT(g + 2 * H + j, gg, t);                                                         \
            NN__STT(g + 3 * H + j, go, t);                                                         \
            NN__STT(c + j, cj, t);                                                                 \
            NN__STT(tc + j, th, t);                                                                \
            NN__STT(h + j, NN__MUL(go, th), t);                                                    \
        }                                                                                          \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_lstm_bwd(size_t H, const float *g, const float *tc,           \
                                              const float *cp, const float *dh, float *dc,         \
                                              float *dg) {                                         \
        size_t j, t;                                                                               \
        NN__VF one = NN__SET1(1.0f);                                                               \
        for (j = 0; j < H; j += NN__W) {                                                           \
            NN__VF gi, gf, gg, go, th, dhv, dcj;                                                   \
            t = H - j < (size_t)NN__W ? H - j : (size_t)NN__W;                                     \
            gi = NN__LDT(g + j, t);                                                                \
            gf = NN__LDT(g + H + j, t);                                                            \
            gg = NN__LDT(g + 2 * H + j, t);                                                        \
            go = NN__LDT(g + 3 * H + j, t);                                                        \
            th = NN__LDT(tc + j, t);                                                               \
            dhv = NN__LDT(dh + j, t);                                                              \
            dcj = NN__FMA(NN__MUL(dhv, go), NN__FNMA(th, th, one), NN__LDT(dc + j, t));            \
            NN__STT(dg + j, NN__MUL(NN__MUL(dcj, gg), NN__MUL(gi, NN__SUB(one, gi))), t);          \
            NN__STT(dg + H + j,                                                                    \
                    NN__MUL(NN__MUL(dcj, NN__LDT(cp + j, t)), NN__MUL(gf, NN__SUB(one, gf))), t);  \
            NN__STT(dg + 2 * H + j, NN__MUL(NN__MUL(dcj, gi), NN__FNMA(gg, gg, one)), t);          \
            NN__STT(dg + 3 * H + j, NN__MUL(NN__MUL(dhv, th), NN__MUL(go, NN__SUB(one, go))), t);  \
            NN__STT(dc + j, NN__MUL(dcj, gf), t);                                                  \
        }                                                                                          \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_sgd(size_t n, float *w, const float *g, float *v, float lr,   \
                                         float mu, float wd, int nesterov) {                       \
        size_t i = 0, t;                                                                           \
        NN__VF vlr = NN__SET1(lr), vmu = NN__SET1(mu), vwd = NN__SET1(wd);                         \
        for (; i < n; i += NN__W) {                                                                \
            NN__VF wi, gi, vi;                                                                     \
            t = n - i < (size_t)NN__W ? n - i : (size_t)NN__W;                                     \
            wi = NN__LDT(w + i, t);                                                                \
            gi = NN__FMA(vwd, wi, NN__LDT(g + i, t));                                              \
            if (mu != 0.0f) {                                                                      \
                vi = NN__FMA(vmu, NN__LDT(v + i, t), gi);                                          \
                NN__STT(v + i, vi, t);                                                             \
                gi = nesterov ? NN__FMA(vmu, vi, gi) : vi;                                         \
            }                                                                                      \
            NN__STT(w + i, NN__FNMA(vlr, gi, wi), t);                                              \
        }                                                                                          \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_rmsprop(size_t n, float *w, const float *g, float *v,         \
                                             float lr, float rho, float eps, float wd) {           \
        size_t i = 0, t;                                                                           \
        NN__VF vr = NN__SET1(rho), vc = NN__SET1(1.0f - rho), ve = NN__SET1(eps),                  \
               vl = NN__SET1(lr);                                                                  \
        NN__VF vwd = NN__SET1(wd);                                                                 \
        for (; i < n; i += NN__W) {                                                                \
            NN__VF wi, gi, vi;                                                                     \
            t = n - i < (size_t)NN__W ? n - i : (size_t)NN__W;                                     \
            wi = NN__LDT(w + i, t);                                                                \
            gi = NN__FMA(vwd, wi, NN__LDT(g + i, t));                                              \
            vi = NN__FMA(vr, NN__LDT(v + i, t), NN__MUL(NN__MUL(vc, gi), gi));                     \
            NN__STT(v + i, vi, t);                                                                 \
            NN__STT(w + i, NN__FNMA(vl, NN__DIV(gi, NN__ADD(NN__SQRT(vi), ve)), wi), t);           \
        }                                                                                          \
    }                                                                                              \
    NN__ATTR static void nn__##pfx##_adam(size_t n, float *w, const float *g, float *m, float *v,  \
                                          float b1, float b2, float eps, float step_size,          \
                                          float inv_sqrt_bc2, float decay, float l2, int unused) { \
        size_t i = 0, t;                                                                           \
        NN__VF vb1 = NN__SET1(b1), vb2 = NN__SET1(b2), c1 = NN__SET1(1.0f - b1),                   \
               c2 = NN__SET1(1.0f - b2);                                                           \
        NN__VF ve = NN__SET1(eps), vs = NN__SET1(step_size), vi2 = NN__SET1(inv_sqrt_bc2);         \
        NN__VF vd = NN__SET1(decay), vl2 = NN__SET1(l2);                                           \
        (void)unused;                                                                              \
        for (; i < n; i += NN__W) {                                                                \
            NN__VF wi, gi, mi, vv;                                                                 \
            t = n - i < (size_t)NN__W ? n - i : (size_t)NN__W;                                     \
            wi = NN__MUL(NN__LDT(w + i, t), vd);                                                   \
            gi = NN__FMA(vl2, wi, NN__LDT(g + i, t));                                              \
            mi = NN__FMA(vb1, NN__LDT(m + i, t), NN__MUL(c1, gi));                                 \
            vv = NN__FMA(vb2, NN__LDT(v + i, t), NN__MUL(NN__MUL(c2, gi), gi));                    \
            NN__STT(m + i, mi, t);                                                                 \
            NN__STT(v + i, vv, t);                                                                 \
            NN__STT(w + i, NN__FNMA(vs, NN__DIV(mi, NN__FMA(NN__SQRT(vv), vi2, ve)), wi), t);      \
        }                                                                                          \
    }

/* The SGEMM micro-kernel rows, shared by the SIMD backends: each row is two
 * or more named accumulators (TRAPS: an accumulator array spills). */

#if NN__HAVE_X86
/* ---- 4.3 AVX2 + FMA ----------------------------------------------------- */
#define NN__ATTR __attribute__((target("avx2,fma")))
#define NN__W 8
#define NN__VF __m256
#define NN__VI __m256i
#define NN__LD(p) _mm256_loadu_ps(p)
#define NN__ST(p, v) _mm256_storeu_ps(p, v)
#define NN__LDN(p, n) _mm256_maskload_ps(p, nn__avx2_mask(n))
#define NN__STN(p, v, n) _mm256_maskstore_ps(p, nn__avx2_mask(n), v)
#define NN__SET1(x) _mm256_set1_ps(x)
#define NN__ADD _mm256_add_ps
#define NN__SUB _mm256_sub_ps
#define NN__MUL _mm256_mul_ps
#define NN__DIV _mm256_div_ps
#define NN__SQRT _mm256_sqrt_ps
#define NN__FMA _mm256_fmadd_ps
#define NN__FNMA _mm256_fnmadd_ps
#define NN__FMAF NN__FMA
#define NN__MAX _mm256_max_ps
#define NN__MIN _mm256_min_ps
#define NN__SEL_GT(a, b, x, y) _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_GT_OQ))
#define NN__SEL_EQ(a, b, x, y) _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_EQ_OQ))
#define NN__HSUM nn__avx2_hsum
#define NN__HMAX nn__avx2_hmax
#define NN__RNDI _mm256_cvtps_epi32
#define NN__I2F _mm256_cvtepi32_ps
#define NN__ISHL23(v) _mm256_slli_epi32(v, 23)
#define NN__IADD _mm256_add_epi32
#define NN__ISUB _mm256_sub_epi32
#define NN__ISRA1(v) _mm256_srai_epi32(v, 1)
#define NN__ISET1 _mm256_set1_epi32
#define NN__I2BITS _mm256_castsi256_ps
NN__ATTR static inline __m256i nn__avx2_mask(size_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
NN__ATTR static inline __m256 nn__avx2_iota(void) { return _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7); }
NN__ATTR static inline float nn__avx2_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
NN__ATTR static inline float nn__avx2_hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
NN__SIMD_KERNELS(avx2)
NN__ATTR static void nn__avx2_u8f(size_t n, const unsigned char *x, float scale, float *y) {
    size_t i = 0;
    __m256 vs = _mm256_set1_ps(scale);
    for (; i + 8 <= n; i += 8) {
        __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)(x + i));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(vs, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b))));
    }
    for (; i < n; i++) y[i] = scale * (float)x[i];
}

/* 6x16 micro-kernel: 12 ymm accumulators + 2 for B + 1 broadcast = 15 of
 * 16 registers; 12 FMAs per 2 loads + 6 broadcasts. */
#define NN__A2_ROW(ap, c0, c1)                                                                     \
    do {                                                                                           \
        __m256 ai = _mm256_broadcast_ss(ap);                                                       \
        c0 = _mm256_fmadd_ps(ai, b0, c0);                                                          \
        c1 = _mm256_fmadd_ps(ai, b1, c1);                                                          \
    } while (0)
/* store one row of the tile: c = alpha*acc + beta*c, first nr columns */
NN__ATTR static inline void nn__avx2_store_row(float *c, __m256 c0, __m256 c1, const nn__uk *u) {
    __m256i m0 = nn__avx2_mask((size_t)u->nr),
            m1 = nn__avx2_mask(u->nr > 8 ? (size_t)(u->nr - 8) : 0);
    if (u->alpha != 1.0f) {
        __m256 va = _mm256_set1_ps(u->alpha);
        c0 = _mm256_mul_ps(va, c0);
        c1 = _mm256_mul_ps(va, c1);
    }
    if (u->nr == 16) {
        if (u->beta != 0.0f) {
            __m256 vb = _mm256_set1_ps(u->beta);
            c0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), c0);
            c1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), c1);
        }
        if (u->relu) {
            c0 = _mm256_max_ps(_mm256_setzero_ps(), c0);
            c1 = _mm256_max_ps(_mm256_setzero_ps(), c1);
        }
        _mm256_storeu_ps(c, c0);
        _mm256_storeu_ps(c + 8, c1);
        return;
    }
    if (u->beta != 0.0f) {
        __m256 vb = _mm256_set1_ps(u->beta);
        c0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c, m0), c0);
        c1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c + 8, m1), c1);
    }
    if (u->relu) {
        c0 = _mm256_max_ps(_mm256_setzero_ps(), c0);
        c1 = _mm256_max_ps(_mm256_setzero_ps(), c1);
    }
    _mm256_maskstore_ps(c, m0, c0);
    _mm256_maskstore_ps(c + 8, m1, c1);
}
/* unpack / shuffle / permute: 24 shuffles for 64 floats instead of 64
 * scalar gathers (packing B^T was half the time of dense dx = dy W^T);
 * o[p] is row p of the transposed block */
NN__ATTR static inline void nn__avx2_tr8v(const float *src, size_t lds, __m256 *o) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds),
           r2 = _mm256_loadu_ps(src + 2 * lds);
    __m256 r3 = _mm256_loadu_ps(src + 3 * lds), r4 = _mm256_loadu_ps(src + 4 * lds);
    __m256 r5 = _mm256_loadu_ps(src + 5 * lds), r6 = _mm256_loadu_ps(src + 6 * lds);
    __m256 r7 = _mm256_loadu_ps(src + 7 * lds);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)),
           u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)),
           u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)),
           u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)),
           u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    o[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    o[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    o[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    o[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    o[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    o[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    o[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    o[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}
/* the eight rows stored by st, spelled out: a loop over o kept it on the
 * stack (gcc 12) */
#define NN__TR8_STORES(st)                                                                         \
    st(dst, o[0]), st(dst + ldd, o[1]), st(dst + 2 * ldd, o[2]), st(dst + 3 * ldd, o[3]),          \
        st(dst + 4 * ldd, o[4]), st(dst + 5 * ldd, o[5]), st(dst + 6 * ldd, o[6]),                 \
        st(dst + 7 * ldd, o[7])
NN__ATTR static void nn__avx2_tr8(const float *src, size_t lds, float *dst, size_t ldd) {
    __m256 o[8];
    nn__avx2_tr8v(src, lds, o);
    NN__TR8_STORES(_mm256_storeu_ps);
}
/* streaming stores (no read for ownership of dst's lines: a load writes
 * 100 MB it will not read back soon) when dst and ldd keep every row
 * 32-byte aligned; a fence before returning, so that the stores are
 * visible to whoever joins this thread */
NN__ATTR static void nn__avx2_tr8s(const float *src, size_t lds, float *dst, size_t ldd) {
    __m256 o[8];
    nn__avx2_tr8v(src, lds, o);
    NN__TR8_STORES(_mm256_stream_ps);
}
#undef NN__TR8_STORES
NN__ATTR static void nn__avx2_trs(const float *src, size_t lds, float *dst, size_t ldd, size_t rows,
                                  size_t cols) {
    size_t a, r;
    int nt = ((uintptr_t)dst % 32 == 0) && ldd % 8 == 0;
    for (a = 0; a < cols; a += 8)
        for (r = 0; r < rows; r += 8) {
            if (nt) nn__avx2_tr8s(src + r * lds + a, lds, dst + a * ldd + r, ldd);
            else nn__avx2_tr8(src + r * lds + a, lds, dst + a * ldd + r, ldd);
        }
    _mm_sfence();
}
/* int8 GEMM without VNNI, exact: the packed bytes widened to int16 and
 * multiplied by vpmaddwd, whose pair sums (2 x 255 x 128) cannot saturate,
 * unlike vpmaddubsw's (TRAPS).  A register holds 4 columns x 4 k as int16;
 * its products leave two partial sums per column, added by one hadd at the
 * end.  2 rows x 16 columns per step (13 of the 16 ymm registers). */
NN__ATTR static inline __m256i nn__avx2_q8a(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(v)));
}
NN__ATTR static inline __m256i nn__avx2_q8sum(__m256i lo, __m256i hi) { /* 8 columns in order */
    return _mm256_permute4x64_epi64(_mm256_hadd_epi32(lo, hi), 0xD8);
}
NN__ATTR static void nn__avx2_q8run(size_t rows, size_t k4, const unsigned char *A, size_t lda,
                                    const signed char *Bp, int32_t *C, size_t ldc, size_t ncols) {
    size_t r, h, k;
    int32_t tile[2][16];
    for (h = 0; h < 32 && h < ncols; h += 16)
        for (r = 0; r < rows; r += 2) {
            const unsigned char *a0 = A + r * lda, *a1 = r + 1 < rows ? a0 + lda : a0;
            __m256i x0 = _mm256_setzero_si256(), x1 = x0, x2 = x0, x3 = x0, y0 = x0, y1 = x0,
                    y2 = x0, y3 = x0;
            int full = r + 1 < rows && h + 16 <= ncols;
            for (k = 0; k < k4; k++) {
                const signed char *bp = Bp + (k * 32 + h) * 4;
                __m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)bp));
                __m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(bp + 16)));
                __m256i b2 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(bp + 32)));
                __m256i b3 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(bp + 48)));
                __m256i a = nn__avx2_q8a(a0 + 4 * k);
                x0 = _mm256_add_epi32(x0, _mm256_madd_epi16(a, b0));
                x1 = _mm256_add_epi32(x1, _mm256_madd_epi16(a, b1));
                x2 = _mm256_add_epi32(x2, _mm256_madd_epi16(a, b2));
                x3 = _mm256_add_epi32(x3, _mm256_madd_epi16(a, b3));
                a = nn__avx2_q8a(a1 + 4 * k);
                y0 = _mm256_add_epi32(y0, _mm256_madd_epi16(a, b0));
                y1 = _mm256_add_epi32(y1, _mm256_madd_epi16(a, b1));
                y2 = _mm256_add_epi32(y2, _mm256_madd_epi16(a, b2));
                y3 = _mm256_add_epi32(y3, _mm256_madd_epi16(a, b3));
            }
            if (full) {
                _mm256_storeu_si256((__m256i *)(void *)(C + r * ldc + h), nn__avx2_q8sum(x0, x1));
                _mm256_storeu_si256((__m256i *)(void *)(C + r * ldc + h + 8), nn__avx2_q8sum(x2, x3));
                _mm256_storeu_si256((__m256i *)(void *)(C + (r + 1) * ldc + h), nn__avx2_q8sum(y0, y1));
                _mm256_storeu_si256((__m256i *)(void *)(C + (r + 1) * ldc + h + 8),
                                    nn__avx2_q8sum(y2, y3));
            } else { /* a ragged edge: through a tile */
                size_t i, j, nc = ncols - h < 16 ? ncols - h : 16;
                _mm256_storeu_si256((__m256i *)(void *)tile[0], nn__avx2_q8sum(x0, x1));
                _mm256_storeu_si256((__m256i *)(void *)(tile[0] + 8), nn__avx2_q8sum(x2, x3));
                _mm256_storeu_si256((__m256i *)(void *)tile[1], nn__avx2_q8sum(y0, y1));
                _mm256_storeu_si256((__m256i *)(void *)(tile[1] + 8), nn__avx2_q8sum(y2, y3));
                for (i = 0; i < 2 && r + i < rows; i++)
                    for (j = 0; j < nc; j++) C[(r + i) * ldc + h + j] = tile[i][j];
            }
        }
}
static void nn__avx2_q8rows(size_t rows, size_t k4, const nn__q8a *a, const signed char *Bp, int32_t *C,
                            size_t ldc, size_t ncols) {
    nn__q8_via(nn__avx2_q8run, rows, k4, a, Bp, C, ldc, ncols);
}
NN__ATTR static void nn__avx2_q8max4(size_t n, const unsigned char *a, const unsigned char *b,
                                     const unsigned char *c, const unsigned char *d,
                                     unsigned char *out) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i u = _mm256_max_epu8(_mm256_loadu_si256((const __m256i *)(const void *)(a + i)),
                                    _mm256_loadu_si256((const __m256i *)(const void *)(b + i)));
        __m256i v = _mm256_max_epu8(_mm256_loadu_si256((const __m256i *)(const void *)(c + i)),
                                    _mm256_loadu_si256((const __m256i *)(const void *)(d + i)));
        _mm256_storeu_si256((__m256i *)(void *)(out + i), _mm256_max_epu8(u, v));
    }
    if (i < n) nn__s_q8max4(n - i, a + i, b + i, c + i, d + i, out + i);
}
/* nn__s_q8quant, 8 lanes: the product in double (cvtps_pd, exact) and back */
NN__ATTR static void nn__avx2_q8quant(size_t n, const float *x, float inv, int z, unsigned char *out) {
    const __m256d vi = _mm256_set1_pd((double)inv);
    const __m256 c = _mm256_set1_ps((float)z + 0.5f), lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(255.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), t;
        __m128 p0 = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), vi));
        __m128 p1 = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), vi));
        __m256i q;
        __m128i w;
        t = _mm256_add_ps(_mm256_insertf128_ps(_mm256_castps128_ps256(p0), p1, 1), c);
        t = _mm256_min_ps(_mm256_max_ps(t, lo), hi); /* max(NaN, 0) is 0, as the scalar twin */
        q = _mm256_cvttps_epi32(t);
        w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(void *)(out + i), _mm_packus_epi16(w, w));
    }
    if (i < n) nn__s_q8quant(n - i, x + i, inv, z, out + i);
}
/* requantization, 8 lanes: 64-bit products of even and odd lanes
 * (vpmuldq), the rounding constant and the shift per lane; AVX2 has no
 * 64-bit arithmetic right shift, so floor(x / 2^s) = ~(~x >> s) for x < 0 */
NN__ATTR static inline __m256i nn__avx2_rq64(__m256i p, __m256i s) {
    const __m256i one = _mm256_set1_epi64x(1);
    __m256i r = _mm256_sllv_epi64(one, _mm256_sub_epi64(s, one)), sg;
    p = _mm256_add_epi64(p, r);
    sg = _mm256_cmpgt_epi64(_mm256_setzero_si256(), p);
    return _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(p, sg), s), sg);
}
NN__ATTR static void nn__avx2_q8req1(size_t n, const int32_t *acc, const int32_t *bias,
                                     const int32_t *mul, const int32_t *shift, int zero, int lo,
                                     unsigned char *out) {
    size_t j = 0;
    const __m256i z = _mm256_set1_epi32(zero), vlo = _mm256_set1_epi32(lo),
                  vhi = _mm256_set1_epi32(255), lo32 = _mm256_set1_epi64x(0xFFFFFFFF);
    for (; j + 8 <= n; j += 8) {
        __m256i x = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(acc + j)),
                                     _mm256_loadu_si256((const __m256i *)(const void *)(bias + j)));
        __m256i m = _mm256_loadu_si256((const __m256i *)(const void *)(mul + j));
        __m256i sh = _mm256_loadu_si256((const __m256i *)(const void *)(shift + j));
        __m256i ev = nn__avx2_rq64(_mm256_mul_epi32(x, m), _mm256_and_si256(sh, lo32));
        __m256i od = nn__avx2_rq64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32)),
                                   _mm256_srli_epi64(sh, 32));
        __m256i v = _mm256_blend_epi32(ev, _mm256_slli_epi64(od, 32), 0xAA);
        __m128i w;
        v = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(v, z), vlo), vhi);
        w = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storel_epi64((__m128i *)(void *)(out + j), _mm_packus_epi16(w, w));
    }
    if (j < n) nn__s_q8req(1, n - j, acc + j, bias + j, mul + j, shift + j, zero, lo, out + j);
}
NN__ATTR static void nn__avx2_q8req(size_t rows, size_t n, const int32_t *acc, const int32_t *bias,
                                    const int32_t *mul, const int32_t *shift, int zero, int lo,
                                    unsigned char *out) {
    size_t r;
    for (r = 0; r < rows; r++) nn__avx2_q8req1(n, acc + r * n, bias, mul, shift, zero, lo, out + r * n);
}
/* 4-row kernel for the rows left over by 6-row panels (batch 32 = 5 x 6 + 2) */
NN__ATTR static void nn__avx2_ukr4(const nn__uk *u) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00;
    size_t p, rs = u->rsa, cs = u->csa, ldc = u->ldc;
    const float *a0 = u->a, *pb = u->b;
    float *c = u->c;
    int mr = u->mr;
    for (p = 0; p < u->kc; p++) {
        __m256 b0 = _mm256_loadu_ps(pb), b1 = _mm256_loadu_ps(pb + 8);
        NN__A2_ROW(a0, c00, c01);
        NN__A2_ROW(a0 + rs, c10, c11);
        NN__A2_ROW(a0 + 2 * rs, c20, c21);
        NN__A2_ROW(a0 + 3 * rs, c30, c31);
        a0 += cs;
        pb += 16;
    }
    if (mr > 0) nn__avx2_store_row(c, c00, c01, u);
    if (mr > 1) nn__avx2_store_row(c + ldc, c10, c11, u);
    if (mr > 2) nn__avx2_store_row(c + 2 * ldc, c20, c21, u);
    if (mr > 3) nn__avx2_store_row(c + 3 * ldc, c30, c31, u);
}
NN__ATTR static void nn__avx2_ukr(const nn__uk *u) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    size_t p, rs = u->rsa, cs = u->csa, ldc = u->ldc;
    const float *a0 = u->a, *a3 = u->a + 3 * rs, *pb = u->b;
    float *c = u->c;
    int mr = u->mr;
    if (mr <= 4) {
        nn__avx2_ukr4(u);
        return;
    }
    for (p = 0; p < u->kc; p++) {
        __m256 b0 = _mm256_loadu_ps(pb), b1 = _mm256_loadu_ps(pb + 8);
        NN__A2_ROW(a0, c00, c01);
        NN__A2_ROW(a0 + rs, c10, c11);
        NN__A2_ROW(a0 + 2 * rs, c20, c21);
        NN__A2_ROW(a3, c30, c31);
        NN__A2_ROW(a3 + rs, c40, c41);
        NN__A2_ROW(a3 + 2 * rs, c50, c51);
        a0 += cs;
        a3 += cs;
        pb += 16;
    }
    if (mr > 0) nn__avx2_store_row(c, c00, c01, u);
    if (mr > 1) nn__avx2_store_row(c + ldc, c10, c11, u);
    if (mr > 2) nn__avx2_store_row(c + 2 * ldc, c20, c21, u);
    if (mr > 3) nn__avx2_store_row(c + 3 * ldc, c30, c31, u);
    if (mr > 4) nn__avx2_store_row(c + 4 * ldc, c40, c41, u);
    if (mr > 5) nn__avx2_store_row(c + 5 * ldc, c50, c51, u);
}
#undef NN__A2_ROW
#undef NN__ATTR
#undef NN__W
#undef NN__VF
#undef NN__VI
#undef NN__LD
#undef NN__ST
#undef NN__LDN
#undef NN__STN
#undef NN__SET1
#undef NN__ADD
#undef NN__SUB
#undef NN__MUL
#undef NN__DIV
#undef NN__SQRT
#undef NN__FMA
#undef NN__FNMA
#undef NN__FMAF
#undef NN__MAX
#undef NN__MIN
#undef NN__SEL_GT
#undef NN__SEL_EQ
#undef NN__HSUM
#undef NN__HMAX
#undef NN__RNDI
#undef NN__I2F
#undef NN__ISHL23
#undef NN__IADD
#undef NN__ISUB
#undef NN__ISRA1
#undef NN__ISET1
#undef NN__I2BITS

/* ---- 4.4 AVX-512F --------------------------------------------------------
 * Masked loads/stores make the tails free; on Zen 4 the 512-bit ops are
 * double-pumped, so the larger register tile (not the width) is the win. */
#define NN__ATTR __attribute__((target("avx512f,avx2,fma")))
#define NN__W 16
#define NN__VF __m512
#define NN__VI __m512i
#define NN__LD(p) _mm512_loadu_ps(p)
#define NN__ST(p, v) _mm512_storeu_ps(p, v)
#define NN__LDN(p, n) _mm512_maskz_loadu_ps(nn__avx512_mask(n), p)
#define NN__STN(p, v, n) _mm512_mask_storeu_ps(p, nn__avx512_mask(n), v)
#define NN__SET1(x) _mm512_set1_ps(x)
#define NN__ADD _mm512_add_ps
#define NN__SUB _mm512_sub_ps
#define NN__MUL _mm512_mul_ps
#define NN__DIV _mm512_div_ps
#define NN__SQRT _mm512_sqrt_ps
#define NN__FMA _mm512_fmadd_ps
#define NN__FNMA _mm512_fnmadd_ps
#define NN__FMAF NN__FMA
#define NN__MAX _mm512_max_ps
#define NN__MIN _mm512_min_ps
#define NN__SEL_GT(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_GT_OQ), y, x)
#define NN__SEL_EQ(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ), y, x)
#define NN__HSUM _mm512_reduce_add_ps
#define NN__HMAX _mm512_reduce_max_ps
#define NN__RNDI _mm512_cvtps_epi32
#define NN__I2F _mm512_cvtepi32_ps
#define NN__ISHL23(v) _mm512_slli_epi32(v, 23)
#define NN__IADD _mm512_add_epi32
#define NN__ISUB _mm512_sub_epi32
#define NN__ISRA1(v) _mm512_srai_epi32(v, 1)
#define NN__ISET1 _mm512_set1_epi32
#define NN__I2BITS _mm512_castsi512_ps
NN__ATTR static inline __mmask16 nn__avx512_mask(size_t n) {
    return (__mmask16)(n >= 16 ? 0xFFFFu : ((1u << n) - 1u));
}
NN__ATTR static inline __m512 nn__avx512_iota(void) {
    return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
NN__SIMD_KERNELS(avx512)
NN__ATTR static void nn__avx512_u8f(size_t n, const unsigned char *x, float scale, float *y) {
    size_t i = 0;
    __m512 vs = _mm512_set1_ps(scale);
    for (; i + 16 <= n; i += 16) {
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(x + i));
        _mm512_storeu_ps(y + i, _mm512_mul_ps(vs, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b))));
    }
    for (; i < n; i++) y[i] = scale * (float)x[i];
}

/* 12x32 micro-kernel: 24 zmm accumulators + 2 for B + 1 broadcast = 27 of
 * 32 registers; 24 FMAs per 2 loads + 12 broadcasts.  The tile is four
 * times AVX2's, which halves the loads per FMA. */
#define NN__A5_ROW(ap, c0, c1)                                                                     \
    do {                                                                                           \
        __m512 ai = _mm512_set1_ps(*(ap));                                                         \
        c0 = _mm512_fmadd_ps(ai, b0, c0);                                                          \
        c1 = _mm512_fmadd_ps(ai, b1, c1);                                                          \
    } while (0)
/* store one row of the tile, masked past nr: no scratch tile and no
 * out-of-bounds access at the edges */
NN__ATTR static inline void nn__avx512_store_row(float *c, __m512 c0, __m512 c1, const nn__uk *u) {
    __mmask16 m0 = nn__avx512_mask((size_t)u->nr),
              m1 = nn__avx512_mask(u->nr > 16 ? (size_t)(u->nr - 16) : 0);
    if (u->alpha != 1.0f) {
        __m512 va = _mm512_set1_ps(u->alpha);
        c0 = _mm512_mul_ps(va, c0);
        c1 = _mm512_mul_ps(va, c1);
    }
    if (u->beta != 0.0f) {
        __m512 vb = _mm512_set1_ps(u->beta);
        c0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), c0);
        c1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), c1);
    }
    if (u->relu) {
        c0 = _mm512_max_ps(_mm512_setzero_ps(), c0);
        c1 = _mm512_max_ps(_mm512_setzero_ps(), c1);
    }
    _mm512_mask_storeu_ps(c, m0, c0);
    _mm512_mask_storeu_ps(c + 16, m1, c1);
}
/* 4-row kernel for partial panels (m % 12 left over, e.g. batch 32 =
 * 12 + 12 + 8): computing only the rows that exist instead of all 12 */
NN__ATTR static void nn__avx512_ukr4(const nn__uk *u) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00;
    size_t p, rs = u->rsa, cs = u->csa, ldc = u->ldc;
    const float *a0 = u->a, *pb = u->b;
    float *c = u->c;
    int mr = u->mr;
    for (p = 0; p < u->kc; p++) {
        __m512 b0 = _mm512_loadu_ps(pb), b1 = _mm512_loadu_ps(pb + 16);
        NN__A5_ROW(a0, c00, c01);
        NN__A5_ROW(a0 + rs, c10, c11);
        NN__A5_ROW(a0 + 2 * rs, c20, c21);
        NN__A5_ROW(a0 + 3 * rs, c30, c31);
        a0 += cs;
        pb += 32;
    }
    if (mr > 0) nn__avx512_store_row(c, c00, c01, u);
    if (mr > 1) nn__avx512_store_row(c + ldc, c10, c11, u);
    if (mr > 2) nn__avx512_store_row(c + 2 * ldc, c20, c21, u);
    if (mr > 3) nn__avx512_store_row(c + 3 * ldc, c30, c31, u);
}
NN__ATTR static void nn__avx512_ukr(const nn__uk *u) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m512 c60 = c00, c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00;
    __m512 c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
    size_t p, rs = u->rsa, cs = u->csa, ldc = u->ldc;
    const float *a0 = u->a, *a3 = a0 + 3 * rs, *a6 = a0 + 6 * rs, *a9 = a0 + 9 * rs, *pb = u->b;
    float *c = u->c;
    int mr = u->mr, i;
    if (mr <= 8) {
        nn__uk h = *u;
        h.mr = mr < 4 ? mr : 4;
        nn__avx512_ukr4(&h);
        if (mr > 4) {
            h.a = u->a + 4 * rs;
            h.c = u->c + 4 * ldc;
            h.mr = mr - 4;
            nn__avx512_ukr4(&h);
        }
        return;
    }
    /* C rows are ldc apart and often map to the same L1 sets; fetching them
     * while the FMAs run hides the miss at the store */
    for (i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)i * ldc + 16), _MM_HINT_T0);
    }
    for (p = 0; p < u->kc; p++) {
        __m512 b0 = _mm512_loadu_ps(pb), b1 = _mm512_loadu_ps(pb + 16);
        NN__A5_ROW(a0, c00, c01);
        NN__A5_ROW(a0 + rs, c10, c11);
        NN__A5_ROW(a0 + 2 * rs, c20, c21);
        NN__A5_ROW(a3, c30, c31);
        NN__A5_ROW(a3 + rs, c40, c41);
        NN__A5_ROW(a3 + 2 * rs, c50, c51);
        NN__A5_ROW(a6, c60, c61);
        NN__A5_ROW(a6 + rs, c70, c71);
        NN__A5_ROW(a6 + 2 * rs, c80, c81);
        NN__A5_ROW(a9, c90, c91);
        NN__A5_ROW(a9 + rs, ca0, ca1);
        NN__A5_ROW(a9 + 2 * rs, cb0, cb1);
        a0 += cs;
        a3 += cs;
        a6 += cs;
        a9 += cs;
        pb += 32;
    }
    if (mr > 0) nn__avx512_store_row(c, c00, c01, u);
    if (mr > 1) nn__avx512_store_row(c + ldc, c10, c11, u);
    if (mr > 2) nn__avx512_store_row(c + 2 * ldc, c20, c21, u);
    if (mr > 3) nn__avx512_store_row(c + 3 * ldc, c30, c31, u);
    if (mr > 4) nn__avx512_store_row(c + 4 * ldc, c40, c41, u);
    if (mr > 5) nn__avx512_store_row(c + 5 * ldc, c50, c51, u);
    if (mr > 6) nn__avx512_store_row(c + 6 * ldc, c60, c61, u);
    if (mr > 7) nn__avx512_store_row(c + 7 * ldc, c70, c71, u);
    if (mr > 8) nn__avx512_store_row(c + 8 * ldc, c80, c81, u);
    if (mr > 9) nn__avx512_store_row(c + 9 * ldc, c90, c91, u);
    if (mr > 10) nn__avx512_store_row(c + 10 * ldc, ca0, ca1, u);
    if (mr > 11) nn__avx512_store_row(c + 11 * ldc, cb0, cb1, u);
}
#undef NN__A5_ROW
#undef NN__ATTR
#undef NN__W
#undef NN__VF
#undef NN__VI
#undef NN__LD
#undef NN__ST
#undef NN__LDN
#undef NN__STN
#undef NN__SET1
#undef NN__ADD
#undef NN__SUB
#undef NN__MUL
#undef NN__DIV
#undef NN__SQRT
#undef NN__FMA
#undef NN__FNMA
#undef NN__FMAF
#undef NN__MAX
#undef NN__MIN
#undef NN__SEL_GT
#undef NN__SEL_EQ
#undef NN__HSUM
#undef NN__HMAX
#undef NN__RNDI
#undef NN__I2F
#undef NN__ISHL23
#undef NN__IADD
#undef NN__ISUB
#undef NN__ISRA1
#undef NN__ISET1
#undef NN__I2BITS
#endif /* NN__HAVE_X86 */

#if NN__HAVE_NEON
/* ---- 4.5 NEON (aarch64) -------------------------------------------------- */
#define NN__ATTR
#define NN__W 4
#define NN__VF float32x4_t
#define NN__VI int32x4_t
#define NN__LD(p) vld1q_f32(p)
#define NN__ST(p, v) vst1q_f32(p, v)
#define NN__LDN(p, n) nn__neon_ldn(p, n)
#define NN__STN(p, v, n) nn__neon_stn(p, v, n)
#define NN__SET1(x) vdupq_n_f32(x)
#define NN__ADD vaddq_f32
#define NN__SUB vsubq_f32
#define NN__MUL vmulq_f32
#define NN__DIV vdivq_f32
#define NN__SQRT vsqrtq_f32
#define NN__FMA(a, b, c) vfmaq_f32(c, a, b)
#define NN__FNMA(a, b, c) vfmsq_f32(c, a, b)
#define NN__FMAF NN__FMA
/* x86 semantics (second operand when either is NaN) so that every backend
 * propagates NaN the same way */
#define NN__MAX(a, b) vbslq_f32(vcgtq_f32(a, b), a, b)
#define NN__MIN(a, b) vbslq_f32(vcltq_f32(a, b), a, b)
#define NN__SEL_GT(a, b, x, y) vbslq_f32(vcgtq_f32(a, b), x, y)
#define NN__SEL_EQ(a, b, x, y) vbslq_f32(vceqq_f32(a, b), x, y)
#define NN__HSUM vaddvq_f32
#define NN__HMAX vmaxvq_f32
#define NN__RNDI vcvtnq_s32_f32
#define NN__I2F vcvtq_f32_s32
#define NN__ISHL23(v) vshlq_n_s32(v, 23)
#define NN__IADD vaddq_s32
#define NN__ISUB vsubq_s32
#define NN__ISRA1(v) vshrq_n_s32(v, 1)
#define NN__ISET1 vdupq_n_s32
#define NN__I2BITS vreinterpretq_f32_s32
static inline float32x4_t nn__neon_ldn(const float *p, size_t n) {
    float t[4] = {0, 0, 0, 0};
    memcpy(t, p, n * sizeof(float));
    return vld1q_f32(t);
}
static inline void nn__neon_stn(float *p, float32x4_t v, size_t n) {
    float t[4];
    vst1q_f32(t, v);
    memcpy(p, t, n * sizeof(float));
}
static inline float32x4_t nn__neon_iota(void) {
    static const float io[4] = {0, 1, 2, 3};
    return vld1q_f32(io);
}
NN__SIMD_KERNELS(neon)
static void nn__neon_u8f(size_t n, const unsigned char *x, float scale, float *y) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16x8_t h = vmovl_u8(vld1_u8(x + i));
        vst1q_f32(y + i, vmulq_n_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(h))), scale));
        vst1q_f32(y + i + 4, vmulq_n_f32(vcvtq_f32_u32(vmovl_u16(vget_high_u16(h))), scale));
    }
    for (; i < n; i++) y[i] = scale * (float)x[i];
}
/* 8x8 transpose as four 4x4 ones (vtrn + halves): packing W^T for a dense
 * layer's forward, and A for conv1's dW (the scalar one was a gather) */
static void nn__neon_tr8(const float *src, size_t lds, float *dst, size_t ldd) {
    int bi, bj;
    for (bi = 0; bi < 8; bi += 4)
        for (bj = 0; bj < 8; bj += 4) {
            const float *s0 = src + (size_t)bi * lds + bj;
            float32x4x2_t t01 = vtrnq_f32(vld1q_f32(s0), vld1q_f32(s0 + lds)),
                          t23 = vtrnq_f32(vld1q_f32(s0 + 2 * lds), vld1q_f32(s0 + 3 * lds));
            float *d0 = dst + (size_t)bj * ldd + bi;
            vst1q_f32(d0, vcombine_f32(vget_low_f32(t01.val[0]), vget_low_f32(t23.val[0])));
            vst1q_f32(d0 + ldd, vcombine_f32(vget_low_f32(t01.val[1]), vget_low_f32(t23.val[1])));
            vst1q_f32(d0 + 2 * ldd, vcombine_f32(vget_high_f32(t01.val[0]), vget_high_f32(t23.val[0])));
            vst1q_f32(d0 + 3 * ldd, vcombine_f32(vget_high_f32(t01.val[1]), vget_high_f32(t23.val[1])));
        }
}
/* 8x12 micro-kernel: 24 q-register accumulators, A by lane (vfmaq_laneq). */
#define NN__N_ROW(a, l, c0, c1, c2)                                                                \
    do {                                                                                           \
        c0 = vfmaq_laneq_f32(c0, b0, a, l);                                                        \
        c1 = vfmaq_laneq_f32(c1, b1, a, l);                                                        \
        c2 = vfmaq_laneq_f32(c2, b2, a, l);                                                        \
    } while (0)
static inline void nn__neon_store_row(float *c, float32x4_t c0, float32x4_t c1, float32x4_t c2,
                                      const nn__uk *u) {
    float t[12];
    int j;
    vst1q_f32(t, vmulq_n_f32(c0, u->alpha));
    vst1q_f32(t + 4, vmulq_n_f32(c1, u->alpha));
    vst1q_f32(t + 8, vmulq_n_f32(c2, u->alpha));
    if (u->beta == 0.0f)
        for (j = 0; j < u->nr; j++) c[j] = t[j];
    else
        for (j = 0; j < u->nr; j++) c[j] = u->beta * c[j] + t[j];
    if (u->relu) /* max(0, x) as NN__MAX: NaN and -0 kept */
        for (j = 0; j < u->nr; j++) c[j] = 0.0f > c[j] ? 0.0f : c[j];
}
static void nn__neon_ukr(const nn__uk *u) {
    float32x4_t z = vdupq_n_f32(0.0f);
    float32x4_t c00 = z, c01 = z, c02 = z, c10 = z, c11 = z, c12 = z, c20 = z, c21 = z, c22 = z;
    float32x4_t c30 = z, c31 = z, c32 = z, c40 = z, c41 = z, c42 = z, c50 = z, c51 = z, c52 = z;
    float32x4_t c60 = z, c61 = z, c62 = z, c70 = z, c71 = z, c72 = z;
    size_t p, rs = u->rsa, ldc = u->ldc;
    const float *pa = u->a, *pb = u->b;
    float *c = u->c;
    int mr = u->mr;
    for (p = 0; p < u->kc; p++) {
        float32x4_t a0, a1, b0 = vld1q_f32(pb), b1 = vld1q_f32(pb + 4), b2 = vld1q_f32(pb + 8);
        if (rs == 1) {
            a0 = vld1q_f32(pa);
            a1 = vld1q_f32(pa + 4);
        } else {
            float t[8];
            int i;
            for (i = 0; i < 8; i++) t[i] = pa[i * rs];
            a0 = vld1q_f32(t);
            a1 = vld1q_f32(t + 4);
        }
        NN__N_ROW(a0, 0, c00, c01, c02);
        NN__N_ROW(a0, 1, c10, c11, c12);
        NN__N_ROW(a0, 2, c20, c21, c22);
        NN__N_ROW(a0, 3, c30, c31, c32);
        NN__N_ROW(a1, 0, c40, c41, c42);
        NN__N_ROW(a1, 1, c50, c51, c52);
        NN__N_ROW(a1, 2, c60, c61, c62);
        NN__N_ROW(a1, 3, c70, c71, c72);
        pa += u->csa;
        pb += 12;
    }
    if (mr > 0) nn__neon_store_row(c, c00, c01, c02, u);
    if (mr > 1) nn__neon_store_row(c + ldc, c10, c11, c12, u);
    if (mr > 2) nn__neon_store_row(c + 2 * ldc, c20, c21, c22, u);
    if (mr > 3) nn__neon_store_row(c + 3 * ldc, c30, c31, c32, u);
    if (mr > 4) nn__neon_store_row(c + 4 * ldc, c40, c41, c42, u);
    if (mr > 5) nn__neon_store_row(c + 5 * ldc, c50, c51, c52, u);
    if (mr > 6) nn__neon_store_row(c + 6 * ldc, c60, c61, c62, u);
    if (mr > 7) nn__neon_store_row(c + 7 * ldc, c70, c71, c72, u);
}
#undef NN__N_ROW
#endif /* NN__HAVE_NEON */

#if NN__HAVE_WASM
/* ---- 4.5b WebAssembly SIMD128 (clang -msimd128, emcc) ---------------------
 * Four lanes as NEON.  The engine (V8, SpiderMonkey) maps each v128 op to
 * one or two SSE/AVX or NEON instructions.  SIMD128 has no fused
 * multiply-add (relaxed SIMD's is unusable with clang 14: TRAPS), so FMA is
 * a multiply and an add, rounded twice: results differ from the FMA
 * backends within the tolerances the tests already allow for gcc's and
 * clang's different contraction.  The int8 slots (section 4.9) use the
 * scalar kernels, which are exact. */
#define NN__ATTR
#define NN__W 4
#define NN__VF v128_t
#define NN__VI v128_t
#define NN__LD(p) wasm_v128_load(p)
#define NN__ST(p, v) wasm_v128_store(p, v)
#define NN__LDN(p, n) nn__wasm_ldn(p, n)
#define NN__STN(p, v, n) nn__wasm_stn(p, v, n)
#define NN__SET1(x) wasm_f32x4_splat(x)
#define NN__ADD wasm_f32x4_add
#define NN__SUB wasm_f32x4_sub
#define NN__MUL wasm_f32x4_mul
#define NN__DIV wasm_f32x4_div
#define NN__SQRT wasm_f32x4_sqrt
#define NN__FMA(a, b, c) wasm_f32x4_add(wasm_f32x4_mul(a, b), c)
#define NN__FNMA(a, b, c) wasm_f32x4_sub(c, wasm_f32x4_mul(a, b))
/* fmaf lane by lane (libm: exact): the Winograd weight-gradient output
 * must equal its scalar twin's fmaf, and runs once per layer and step */
#define NN__FMAF nn__wasm_fmaf
/* x86 semantics (b when either is NaN): pmax(b, a) is b < a ? a : b, one
 * instruction (f32x4.max would return NaN from either side) */
#define NN__MAX(a, b) wasm_f32x4_pmax(b, a)
#define NN__MIN(a, b) wasm_f32x4_pmin(b, a)
#define NN__SEL_GT(a, b, x, y) wasm_v128_bitselect(x, y, wasm_f32x4_gt(a, b))
#define NN__SEL_EQ(a, b, x, y) wasm_v128_bitselect(x, y, wasm_f32x4_eq(a, b))
#define NN__HSUM nn__wasm_hsum
#define NN__HMAX nn__wasm_hmax
/* round to nearest even, then an exact conversion (no overflow: the
 * callers clamp first) */
#define NN__RNDI(v) wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(v))
#define NN__I2F wasm_f32x4_convert_i32x4
#define NN__ISHL23(v) wasm_i32x4_shl(v, 23)
#define NN__IADD wasm_i32x4_add
#define NN__ISUB wasm_i32x4_sub
#define NN__ISRA1(v) wasm_i32x4_shr(v, 1)
#define NN__ISET1 wasm_i32x4_splat
#define NN__I2BITS(v) (v) /* one v128_t type for floats and ints */
static inline v128_t nn__wasm_ldn(const float *p, size_t n) {
    float t[4] = {0, 0, 0, 0};
    memcpy(t, p, n * sizeof(float));
    return wasm_v128_load(t);
}
static inline void nn__wasm_stn(float *p, v128_t v, size_t n) {
    float t[4];
    wasm_v128_store(t, v);
    memcpy(p, t, n * sizeof(float));
}
static inline v128_t nn__wasm_fmaf(v128_t a, v128_t b, v128_t c) {
    float x[4], y[4], z[4];
    int i;
    wasm_v128_store(x, a);
    wasm_v128_store(y, b);
    wasm_v128_store(z, c);
    for (i = 0; i < 4; i++) x[i] = fmaf(x[i], y[i], z[i]);
    return wasm_v128_load(x);
}
static inline v128_t nn__wasm_iota(void) { return wasm_f32x4_make(0.0f, 1.0f, 2.0f, 3.0f); }
static inline float nn__wasm_hsum(v128_t v) {
    v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
    v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
    return wasm_f32x4_extract_lane(v, 0);
}
static inline float nn__wasm_hmax(v128_t v) {
    v = NN__MAX(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
    v = NN__MAX(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
    return wasm_f32x4_extract_lane(v, 0);
}
NN__SIMD_KERNELS(wasm)
static void nn__wasm_u8f(size_t n, const unsigned char *x, float scale, float *y) {
    size_t i = 0;
    v128_t vs = wasm_f32x4_splat(scale);
    for (; i + 8 <= n; i += 8) {
        v128_t h = wasm_u16x8_load8x8(x + i);
        wasm_v128_store(y + i, wasm_f32x4_mul(vs, wasm_f32x4_convert_u32x4(wasm_u32x4_extend_low_u16x8(h))));
        wasm_v128_store(y + i + 4,
                        wasm_f32x4_mul(vs, wasm_f32x4_convert_u32x4(wasm_u32x4_extend_high_u16x8(h))));
    }
    for (; i < n; i++) y[i] = scale * (float)x[i];
}
/* 8x8 transpose as four 4x4 blocks of two shuffle stages each (packing
 * op(B) = B^T): 32 shuffles instead of 64 scalar gathers */
static inline void nn__wasm_tr4(const float *s, size_t lds, float *d, size_t ldd) {
    v128_t r0 = wasm_v128_load(s), r1 = wasm_v128_load(s + lds), r2 = wasm_v128_load(s + 2 * lds),
           r3 = wasm_v128_load(s + 3 * lds);
    v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
    v128_t t2 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
    wasm_v128_store(d, wasm_i64x2_shuffle(t0, t2, 0, 2));
    wasm_v128_store(d + ldd, wasm_i64x2_shuffle(t0, t2, 1, 3));
    wasm_v128_store(d + 2 * ldd, wasm_i64x2_shuffle(t1, t3, 0, 2));
    wasm_v128_store(d + 3 * ldd, wasm_i64x2_shuffle(t1, t3, 1, 3));
}
static void nn__wasm_tr8(const float *src, size_t lds, float *dst, size_t ldd) {
    nn__wasm_tr4(src, lds, dst, ldd);
    nn__wasm_tr4(src + 4, lds, dst + 4 * ldd, ldd);
    nn__wasm_tr4(src + 4 * lds, lds, dst + 4, ldd);
    nn__wasm_tr4(src + 4 * lds + 4, lds, dst + 4 * ldd + 4, ldd);
}
/* no streaming stores in SIMD128: the block loop of the scalar twin */
static void nn__wasm_trs(const float *src, size_t lds, float *dst, size_t ldd, size_t rows,
                         size_t cols) {
    size_t a, r;
    for (a = 0; a < cols; a += 8)
        for (r = 0; r < rows; r += 8) nn__wasm_tr8(src + r * lds + a, lds, dst + a * ldd + r, ldd);
}

/* NN__WA_MR x 8 micro-kernel: two accumulators a row, B as two vectors, A
 * one splat load a row (v128.load32_splat reads packed and in-place A
 * alike).  Without FMA each product needs a temporary: 5 rows are 10
 * accumulators + 2 B + 1 A + 1 product of V8's 15 allocatable xmm.
 * Measured in node 20 (Zen 5, busy machine): 5x8 about 1.2x 4x8; 6x8
 * spills and runs at a third of 5x8. */
#define NN__WA_MR 5
#define NN__WA_ROW(i, c0, c1)                                                                      \
    do {                                                                                           \
        v128_t a_ = wasm_v128_load32_splat(pa + (i) * rs);                                          \
        c0 = wasm_f32x4_add(c0, wasm_f32x4_mul(a_, b0));                                           \
        c1 = wasm_f32x4_add(c1, wasm_f32x4_mul(a_, b1));                                           \
    } while (0)
/* store one row of the tile: c = alpha*acc + beta*c, first nr columns */
static inline void nn__wasm_store_row(float *c, v128_t c0, v128_t c1, const nn__uk *u) {
    v128_t z = wasm_f32x4_splat(0.0f);
    float t[8];
    int j;
    if (u->alpha != 1.0f) {
        v128_t va = wasm_f32x4_splat(u->alpha);
        c0 = wasm_f32x4_mul(va, c0);
        c1 = wasm_f32x4_mul(va, c1);
    }
    if (u->nr == 8) {
        if (u->beta != 0.0f) {
            v128_t vb = wasm_f32x4_splat(u->beta);
            c0 = NN__FMA(vb, wasm_v128_load(c), c0);
            c1 = NN__FMA(vb, wasm_v128_load(c + 4), c1);
        }
        if (u->relu) {
            c0 = NN__MAX(z, c0);
            c1 = NN__MAX(z, c1);
        }
        wasm_v128_store(c, c0);
        wasm_v128_store(c + 4, c1);
        return;
    }
    wasm_v128_store(t, c0);
    wasm_v128_store(t + 4, c1);
    if (u->beta != 0.0f)
        for (j = 0; j < u->nr; j++) t[j] += u->beta * c[j];
    if (u->relu) /* max(0, x) as NN__MAX: NaN and -0 kept */
        for (j = 0; j < u->nr; j++) t[j] = 0.0f > t[j] ? 0.0f : t[j];
    for (j = 0; j < u->nr; j++) c[j] = t[j];
}
static void nn__wasm_ukr(const nn__uk *u) {
    v128_t z = wasm_f32x4_splat(0.0f);
    v128_t c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z, c41 = z;
    size_t p, rs = u->rsa, csa = u->csa, ldc = u->ldc;
    const float *pa = u->a, *pb = u->b;
    float *c = u->c;
    int mr = u->mr;
    for (p = 0; p < u->kc; p++) {
        v128_t b0 = wasm_v128_load(pb), b1 = wasm_v128_load(pb + 4);
        NN__WA_ROW(0, c00, c01);
        NN__WA_ROW(1, c10, c11);
        NN__WA_ROW(2, c20, c21);
        NN__WA_ROW(3, c30, c31);
        NN__WA_ROW(4, c40, c41);
        pa += csa;
        pb += 8;
    }
    if (mr > 0) nn__wasm_store_row(c, c00, c01, u);
    if (mr > 1) nn__wasm_store_row(c + ldc, c10, c11, u);
    if (mr > 2) nn__wasm_store_row(c + 2 * ldc, c20, c21, u);
    if (mr > 3) nn__wasm_store_row(c + 3 * ldc, c30, c31, u);
    if (mr > 4) nn__wasm_store_row(c + 4 * ldc, c40, c41, u);
}
#undef NN__WA_ROW
#endif /* NN__HAVE_WASM */

/* ---- 4.6 backend tables and dispatch ------------------------------------
 * Every backend is a line of NN_BACKEND_LIST (section 2): it makes the
 * enum value and the name, and here the table lookup (NN__TAB_<ID>), the
 * CPU check (NN__NEEDS_<ID>), AUTO's choice (the last available) and
 * nn_sgemm_ws_size's maximum over the backends built in; the tests loop
 * over the same list.
 *
 * Adding a backend (as WASM was, for SIMD128):
 *   1. a line at the end of NN_BACKEND_LIST (values are stable);
 *   2. its vocabulary (NN__W, NN__VF, NN__LD, ... as in 4.3-4.5) under the
 *      #if that detects the compiler's target, then NN__SIMD_KERNELS(name)
 *      and its SGEMM micro-kernel nn__<name>_ukr (plus an alias below for
 *      any slot it borrows);
 *   3. its table: static const nn__ktab nn__tab_<name> = {NN_BACKEND_<ID>,
 *      NN__KSLOTS(NN__KSLOT_INIT, nn__<name>) MR, NR, MC, KC, NC}, and
 *      NN__TAB_<ID> / NN__NEEDS_<ID> (NULL / 0u where it is not built);
 *   4. if the CPU must be asked: a bit in nn__cpu_features (section 3).
 * The tests' backend loops, the names, nn_backend_from_name and the
 * range checks follow from the list; tests/test_main.c checks that every
 * slot of every available table is set. */
static void nn__s_softmax(size_t rows, size_t cols, const float *x, float *y);
static void nn__s_softmax_bwd(size_t rows, size_t cols, const float *y, const float *dy, float *dx);

#if NN__HAVE_X86
/* int8 GEMM with AVX512_VNNI: vpdpbusd adds four u8 x s8 products into
 * each int32 lane, 64 multiply-adds per instruction (4x an fp32 FMA's).
 * Rows of 2 zmm (32 columns = one packed panel); 12 rows per step (24
 * accumulators + 2 B + 1 A of the 32 registers), then 4, then 1.  The
 * accumulation is inline asm: with the intrinsic gcc 12 copied every
 * accumulator through the stack each iteration (measured: 406 against 1007
 * GOP/s, Zen 5, one core). */
#define NN__Q8ATTR __attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma")))
#define NN__DPBUSD(acc, a, b) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))
/* one row's step: four bytes of A (at NN__Q8AD(i), defined per kernel
 * below) broadcast, two vpdpbusd */
#define NN__Q8ROW(i, x0, x1)                                                                       \
    {                                                                                              \
        int32_t v_;                                                                                \
        __m512i a_;                                                                                \
        memcpy(&v_, NN__Q8AD(i), 4);                                                               \
        a_ = _mm512_set1_epi32(v_);                                                                \
        NN__DPBUSD(x0, a_, b0);                                                                    \
        NN__DPBUSD(x1, a_, b1);                                                                    \
    }
#define NN__Q8ST(i, x0, x1)                                                                        \
    if (full) {                                                                                    \
        _mm512_storeu_si512((void *)(C + (i) * ldc), x0);                                          \
        _mm512_storeu_si512((void *)(C + (i) * ldc + 16), x1);                                     \
    } else {                                                                                       \
        int32_t t_[32];                                                                            \
        size_t j_;                                                                                 \
        _mm512_storeu_si512((void *)t_, x0);                                                       \
        _mm512_storeu_si512((void *)(t_ + 16), x1);                                                \
        for (j_ = 0; j_ < ncols; j_++) C[(i) * ldc + j_] = t_[j_];                                 \
    }
/* pool: row i of C gets the max of four rows' sums (nn__q8a) */
#define NN__Q8STP(i, a0, a1, b0, b1, c0, c1, d0, d1)                                               \
    NN__Q8ST(i, _mm512_max_epi32(_mm512_max_epi32(a0, b0), _mm512_max_epi32(c0, d0)),             \
             _mm512_max_epi32(_mm512_max_epi32(a1, b1), _mm512_max_epi32(c1, d1)))
/* The tiles' bodies after a loop header (which opens the block of one
 * group of K: b0, b1 and the rows' addresses NN__Q8AD) */
#define NN__Q8B(k) const __m512i b0 = _mm512_loadu_si512((const void *)(Bp + (k) * 128)),           \
                                 b1 = _mm512_loadu_si512((const void *)(Bp + (k) * 128 + 64));
#define NN__Q8T12(HEAD)                                                                            \
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,   \
            c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, \
            c70 = c00, c71 = c00, c80 = c00, c81 = c00, c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, \
            cb0 = c00, cb1 = c00;                                                                  \
    int full = ncols == 32;                                                                        \
    HEAD                                                                                           \
    NN__Q8ROW(0, c00, c01) NN__Q8ROW(1, c10, c11) NN__Q8ROW(2, c20, c21)                           \
    NN__Q8ROW(3, c30, c31) NN__Q8ROW(4, c40, c41) NN__Q8ROW(5, c50, c51)                           \
    NN__Q8ROW(6, c60, c61) NN__Q8ROW(7, c70, c71) NN__Q8ROW(8, c80, c81)                           \
    NN__Q8ROW(9, c90, c91) NN__Q8ROW(10, ca0, ca1) NN__Q8ROW(11, cb0, cb1)                         \
    }                                                                                              \
    if (pool) { /* three windows: 6 stores instead of 24 */                                        \
        NN__Q8STP(0, c00, c01, c10, c11, c20, c21, c30, c31)                                       \
        NN__Q8STP(1, c40, c41, c50, c51, c60, c61, c70, c71)                                       \
        NN__Q8STP(2, c80, c81, c90, c91, ca0, ca1, cb0, cb1)                                       \
        return;                                                                                    \
    }                                                                                              \
    NN__Q8ST(0, c00, c01) NN__Q8ST(1, c10, c11) NN__Q8ST(2, c20, c21) NN__Q8ST(3, c30, c31)        \
    NN__Q8ST(4, c40, c41) NN__Q8ST(5, c50, c51) NN__Q8ST(6, c60, c61) NN__Q8ST(7, c70, c71)        \
    NN__Q8ST(8, c80, c81) NN__Q8ST(9, c90, c91) NN__Q8ST(10, ca0, ca1) NN__Q8ST(11, cb0, cb1)
#define NN__Q8T4(HEAD)                                                                             \
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,   \
            c30 = c00, c31 = c00;                                                                  \
    int full = ncols == 32;                                                                        \
    HEAD                                                                                           \
    NN__Q8ROW(0, c00, c01) NN__Q8ROW(1, c10, c11) NN__Q8ROW(2, c20, c21) NN__Q8ROW(3, c30, c31)    \
    }                                                                                              \
    if (pool) {                                                                                    \
        NN__Q8STP(0, c00, c01, c10, c11, c20, c21, c30, c31)                                       \
        return;                                                                                    \
    }                                                                                              \
    NN__Q8ST(0, c00, c01) NN__Q8ST(1, c10, c11) NN__Q8ST(2, c20, c21) NN__Q8ST(3, c30, c31)
#define NN__Q8T1(HEAD)                                                                             \
    __m512i c00 = _mm512_setzero_si512(), c01 = c00;                                               \
    int full = ncols == 32;                                                                        \
    HEAD                                                                                           \
    NN__Q8ROW(0, c00, c01)                                                                         \
    }                                                                                              \
    NN__Q8ST(0, c00, c01)
/* Plain rows (one run each, lda apart: a dense layer, im2col rows): the
 * rows' addresses from A, lda and small multiples, in registers */
#define NN__Q8HEAD_RUN                                                                             \
    size_t k;                                                                                      \
    for (k = 0; k < k4; k++) {                                                                     \
        NN__Q8B(k) const unsigned char *ap = A + 4 * k;
#define NN__Q8AD(i) (ap + (i) * lda)
NN__Q8ATTR static void nn__vnni_q8x12(size_t k4, const unsigned char *A, size_t lda, const signed char *Bp,
                                      int32_t *C, size_t ldc, size_t ncols, int pool) {
    NN__Q8T12(NN__Q8HEAD_RUN)
}
NN__Q8ATTR static void nn__vnni_q8x4(size_t k4, const unsigned char *A, size_t lda, const signed char *Bp,
                                     int32_t *C, size_t ldc, size_t ncols, int pool) {
    NN__Q8T4(NN__Q8HEAD_RUN)
}
NN__Q8ATTR static void nn__vnni_q8x1(size_t k4, const unsigned char *A, size_t lda, const signed char *Bp,
                                     int32_t *C, size_t ldc, size_t ncols) {
    NN__Q8T1(NN__Q8HEAD_RUN)
}
#undef NN__Q8AD
/* Rows by pointers (a conv read in place: nn__q8a's table), K in
 * segments.  The pointers are read from memory at each step (a volatile
 * view): with them as plain locals gcc 12 kept twelve pointers in xmm
 * registers and moved them back through the vector ports every step,
 * which cost 9% of the rate (934 against 1028 GOP/s, Zen 5) */
#define NN__Q8HEAD_TAB                                                                             \
    size_t k, so, j;                                                                               \
    const unsigned char *const volatile *pv = p;                                                   \
    for (k = 0, so = 0; k < k4; so += ss)                                                          \
        for (j = 0; j < sg && k < k4; j++, k++) {                                                  \
            NN__Q8B(k) const size_t o = so + 4 * j;
#define NN__Q8AD(i) (pv[i] + o)
NN__Q8ATTR static void nn__vnni_q8t12(size_t k4, const unsigned char *const *p, size_t sg, size_t ss,
                                      const signed char *Bp, int32_t *C, size_t ldc, size_t ncols, int pool) {
    NN__Q8T12(NN__Q8HEAD_TAB)
}
NN__Q8ATTR static void nn__vnni_q8t4(size_t k4, const unsigned char *const *p, size_t sg, size_t ss,
                                     const signed char *Bp, int32_t *C, size_t ldc, size_t ncols, int pool) {
    NN__Q8T4(NN__Q8HEAD_TAB)
}
NN__Q8ATTR static void nn__vnni_q8t1(size_t k4, const unsigned char *const *p, size_t sg, size_t ss,
                                     const signed char *Bp, int32_t *C, size_t ldc, size_t ncols) {
    NN__Q8T1(NN__Q8HEAD_TAB)
}
#undef NN__Q8AD
#undef NN__Q8HEAD_RUN
#undef NN__Q8HEAD_TAB
#undef NN__Q8T12
#undef NN__Q8T4
#undef NN__Q8T1
#undef NN__Q8B
#undef NN__Q8ROW
#undef NN__Q8ST
#undef NN__Q8STP
#undef NN__DPBUSD
/* the AVX-512 table's int8 rows: VNNI when the CPU has it (every AVX-512
 * CPU since Ice Lake, Zen 4 and 5), else AVX2's exact kernel */
static void nn__avx512_q8rows(size_t rows, size_t k4, const nn__q8a *a, const signed char *Bp, int32_t *C,
                              size_t ldc, size_t ncols) {
    const unsigned char *p[12];
    size_t i, g = a->pool ? 4 : 1, r = 0;
    static int vnni = -1; /* a write-once fact (CPUID traps to the hypervisor in a VM: ask once) */
    int v = __atomic_load_n(&vnni, __ATOMIC_RELAXED);
    if (v < 0) {
        v = (nn__cpu_features() & NN__CPU_VNNI) != 0;
        __atomic_store_n(&vnni, v, __ATOMIC_RELAXED);
    }
    if (!v) {
        nn__avx2_q8rows(rows, k4, a, Bp, C, ldc, ncols);
        return;
    }
    if (!a->ro && a->sg >= k4) { /* plain rows */
        const unsigned char *A = a->p;
        size_t lda = a->lda;
        for (; r + 12 <= rows; r += 12) nn__vnni_q8x12(k4, A + r * lda, lda, Bp, C + r / g * ldc, ldc, ncols, a->pool);
        for (; r + 4 <= rows; r += 4) nn__vnni_q8x4(k4, A + r * lda, lda, Bp, C + r / g * ldc, ldc, ncols, a->pool);
        for (; r < rows; r++) nn__vnni_q8x1(k4, A + r * lda, lda, Bp, C + r * ldc, ldc, ncols); /* never pooled */
        return;
    }
    for (; r + 12 <= rows; r += 12) {
        if (a->ro) /* the table's rows (a conv in place) */
            for (i = 0; i < 12; i++) p[i] = a->p + a->ro[r + i];
        else
            for (i = 0; i < 12; i++) p[i] = a->p + (r + i) * a->lda;
        nn__vnni_q8t12(k4, p, a->sg, a->ss, Bp, C + r / g * ldc, ldc, ncols, a->pool);
    }
    for (; r + 4 <= rows; r += 4) {
        for (i = 0; i < 4; i++) p[i] = nn__q8row(a, r + i);
        nn__vnni_q8t4(k4, p, a->sg, a->ss, Bp, C + r / g * ldc, ldc, ncols, a->pool);
    }
    for (; r < rows; r++) { /* never pooled: its rows come in fours */
        p[0] = nn__q8row(a, r);
        nn__vnni_q8t1(k4, p, a->sg, a->ss, Bp, C + r * ldc, ldc, ncols);
    }
}
#undef NN__Q8ATTR
/* requantization, 16 lanes (AVX-512F has the 64-bit arithmetic shift):
 * 16 columns at a time, their bias, multipliers, shifts and rounding terms
 * loaded once for all the rows */
__attribute__((target("avx512f,avx2,fma"))) static void nn__avx512_q8req(
    size_t rows, size_t n, const int32_t *acc, const int32_t *bias, const int32_t *mul,
    const int32_t *shift, int zero, int lo, unsigned char *out) {
    size_t j, r;
    const __m512i z = _mm512_set1_epi32(zero), vlo = _mm512_set1_epi32(lo),
                  vhi = _mm512_set1_epi32(255), one = _mm512_set1_epi64(1),
                  lo32 = _mm512_set1_epi64(0xFFFFFFFF);
    for (j = 0; j < n; j += 16) {
        const __mmask16 k = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1u);
        const __m512i bi = _mm512_maskz_loadu_epi32(k, bias + j), m = _mm512_maskz_loadu_epi32(k, mul + j),
                      mo = _mm512_srli_epi64(m, 32),
                      sh = _mm512_mask_loadu_epi32(_mm512_set1_epi32(31), k, shift + j),
                      se = _mm512_and_si512(sh, lo32), so = _mm512_srli_epi64(sh, 32),
                      re = _mm512_sllv_epi64(one, _mm512_sub_epi64(se, one)),
                      ro = _mm512_sllv_epi64(one, _mm512_sub_epi64(so, one));
        const int32_t *a = acc + j;
        for (r = 0; r < rows; r++, a += n) {
            __m512i x = _mm512_add_epi32(_mm512_maskz_loadu_epi32(k, a), bi), ev, od, v;
            ev = _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, m), re), se);
            od = _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), mo), ro), so);
            v = _mm512_mask_blend_epi32((__mmask16)0xAAAA, ev, _mm512_slli_epi64(od, 32));
            v = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(v, z), vlo), vhi);
            _mm512_mask_cvtepi32_storeu_epi8(out + r * n + j, k, v);
        }
    }
}
#endif

#if NN__HAVE_NEON
/* int8 GEMM on NEON (section 4.9).  sdot and vmull_s8 multiply s8 by s8
 * (u8 x s8, usdot, is ARMv8.6's i8mm): A's bytes go in as a - 128 (the top
 * bit flipped) and every column starts at 128 x its sum of B, so the int32
 * result is sum (a - 128) b + 128 sum b = sum a b, the scalar twin's sum
 * exactly (int32 adds wrap, which no order of them can change, and the
 * final sum is below 2^31 in size by NN__Q8_MAXK).  Two kernels:
 *   sdot      (dot product: Cortex-A55, A76 and later, Apple M1) four
 *             s8 x s8 products into each int32 lane; 4 rows x 16 columns
 *             a step (16 accumulators), A by lane: one 16-byte load holds
 *             four groups of K of a row.  By inline asm, which gcc and
 *             clang 14 both take under their target attribute (clang 14's
 *             arm_neon.h offers vdotq only with the feature at compile time)
 *   widening  (Cortex-A53, A57, A72: Raspberry Pi 3 and 4) vmull_s8 makes
 *             eight s16 products, |p| <= 128 x 128 = 2^14, and vpadalq_s16
 *             adds each pair into an int32 lane at once.  Two products
 *             summed in int16 (vmlal_s8) would overflow: (-128)(-128) x 2
 *             = 2^15; a pair added into int32 cannot.  2 rows x 16 columns
 *             (16 accumulators, two columns each: lanes k0+k1, k2+k3).
 * The column sums (vpaddlq_s8 then vpadalq_s16, plain NEON) cost one pass
 * over 16 columns of the panel per call, beside rows passes for the
 * products. */
static void nn__neon_q8colsum(size_t k4, const signed char *Bp, int32_t *cs) {
    int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0;
    size_t k;
    for (k = 0; k < k4; k++, Bp += 128) {
        s0 = vpadalq_s16(s0, vpaddlq_s8(vld1q_s8(Bp)));
        s1 = vpadalq_s16(s1, vpaddlq_s8(vld1q_s8(Bp + 16)));
        s2 = vpadalq_s16(s2, vpaddlq_s8(vld1q_s8(Bp + 32)));
        s3 = vpadalq_s16(s3, vpaddlq_s8(vld1q_s8(Bp + 48)));
    }
    vst1q_s32(cs, vshlq_n_s32(s0, 7));
    vst1q_s32(cs + 4, vshlq_n_s32(s1, 7));
    vst1q_s32(cs + 8, vshlq_n_s32(s2, 7));
    vst1q_s32(cs + 12, vshlq_n_s32(s3, 7));
}
/* a group of 4 bytes of A as a - 128, in every 32-bit lane */
static inline int8x16_t nn__neon_q8a4(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return vreinterpretq_s8_u8(veorq_u8(vreinterpretq_u8_s32(vdupq_n_s32(v)), vdupq_n_u8(0x80)));
}
static inline void nn__neon_q8st(int32_t *c, int32x4_t x0, int32x4_t x1, int32x4_t x2, int32x4_t x3,
                                 size_t nc) {
    int32_t t[16];
    int32_t *d = nc == 16 ? c : t; /* a ragged edge: through a tile */
    vst1q_s32(d, x0);
    vst1q_s32(d + 4, x1);
    vst1q_s32(d + 8, x2);
    vst1q_s32(d + 12, x3);
    if (d == t) memcpy(c, t, nc * sizeof(int32_t));
}
/* B's group g at the 16 columns Bp points to: four registers */
#define NN__Q8B(g)                                                                                 \
    const int8x16_t b0 = vld1q_s8(Bp + (g)*128), b1 = vld1q_s8(Bp + (g)*128 + 16),             \
                    b2 = vld1q_s8(Bp + (g)*128 + 32), b3 = vld1q_s8(Bp + (g)*128 + 48);
#if defined(NN__HAVE_SDOT)
/* acc (4 columns) += the dot products of b's columns with x's lane l.  The
 * "memory" clobber keeps each group's B loads between the sdots: without
 * it gcc 12 hoisted the 16 loads of four groups above them and spilled
 * registers to the stack every iteration. */
#define NN__SDOT(acc, b, x, l) __asm__("sdot %0.4s, %1.16b, %2.4b[" #l "]" : "+w"(acc) : "w"(b), "w"(x) : "memory")
#define NN__Q8DR(x, c0, c1, c2, c3, l)                                                            \
    NN__SDOT(c0, b0, x, l);                                                                        \
    NN__SDOT(c1, b1, x, l);                                                                        \
    NN__SDOT(c2, b2, x, l);                                                                        \
    NN__SDOT(c3, b3, x, l);
#define NN__Q8D4(g, l)                                                                             \
    {                                                                                              \
        NN__Q8B(g)                                                                                 \
        NN__Q8DR(x0, c00, c01, c02, c03, l) NN__Q8DR(x1, c10, c11, c12, c13, l)                   \
        NN__Q8DR(x2, c20, c21, c22, c23, l) NN__Q8DR(x3, c30, c31, c32, c33, l)                   \
    }
#define NN__Q8D1(g, l)                                                                             \
    {                                                                                              \
        NN__Q8B(g)                                                                                 \
        NN__Q8DR(x0, c00, c01, c02, c03, l)                                                        \
    }
#define NN__Q8X(p) vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p), f)) /* 4 groups, a - 128 */
/* 4 rows x 16 columns, each column starting at cs (its 128 x sum of B) */
NN__SDOT_ATTR static void nn__neon_q8dot4(size_t k4, const unsigned char *A, size_t lda,
                                          const signed char *Bp, const int32_t *cs, int32_t *C,
                                          size_t ldc, size_t nc) {
    const uint8x16_t f = vdupq_n_u8(0x80);
    const unsigned char *a0 = A, *a1 = A + lda, *a2 = a1 + lda, *a3 = a2 + lda;
    int32x4_t c00 = vld1q_s32(cs), c01 = vld1q_s32(cs + 4), c02 = vld1q_s32(cs + 8),
              c03 = vld1q_s32(cs + 12);
    int32x4_t c10 = c00, c11 = c01, c12 = c02, c13 = c03, c20 = c00, c21 = c01, c22 = c02,
              c23 = c03, c30 = c00, c31 = c01, c32 = c02, c33 = c03;
    size_t k = 0;
    for (; k + 4 <= k4; k += 4) {
        const int8x16_t x0 = NN__Q8X(a0 + 4 * k), x1 = NN__Q8X(a1 + 4 * k), x2 = NN__Q8X(a2 + 4 * k),
                        x3 = NN__Q8X(a3 + 4 * k);
        NN__Q8D4(k, 0) NN__Q8D4(k + 1, 1) NN__Q8D4(k + 2, 2) NN__Q8D4(k + 3, 3)
    }
    for (; k < k4; k++) { /* K's last groups, one at a time (A may end there) */
        const int8x16_t x0 = nn__neon_q8a4(a0 + 4 * k), x1 = nn__neon_q8a4(a1 + 4 * k),
                        x2 = nn__neon_q8a4(a2 + 4 * k), x3 = nn__neon_q8a4(a3 + 4 * k);
        NN__Q8D4(k, 0)
    }
    nn__neon_q8st(C, c00, c01, c02, c03, nc);
    nn__neon_q8st(C + ldc, c10, c11, c12, c13, nc);
    nn__neon_q8st(C + 2 * ldc, c20, c21, c22, c23, nc);
    nn__neon_q8st(C + 3 * ldc, c30, c31, c32, c33, nc);
}
NN__SDOT_ATTR static void nn__neon_q8dot1(size_t k4, const unsigned char *A, const signed char *Bp,
                                          const int32_t *cs, int32_t *C, size_t nc) {
    const uint8x16_t f = vdupq_n_u8(0x80);
    int32x4_t c00 = vld1q_s32(cs), c01 = vld1q_s32(cs + 4), c02 = vld1q_s32(cs + 8),
              c03 = vld1q_s32(cs + 12);
    size_t k = 0;
    for (; k + 4 <= k4; k += 4) {
        const int8x16_t x0 = NN__Q8X(A + 4 * k);
        NN__Q8D1(k, 0) NN__Q8D1(k + 1, 1) NN__Q8D1(k + 2, 2) NN__Q8D1(k + 3, 3)
    }
    for (; k < k4; k++) {
        const int8x16_t x0 = nn__neon_q8a4(A + 4 * k);
        NN__Q8D1(k, 0)
    }
    nn__neon_q8st(C, c00, c01, c02, c03, nc);
}
#undef NN__SDOT
#undef NN__Q8DR
#undef NN__Q8D4
#undef NN__Q8D1
#undef NN__Q8X
#endif /* NN__HAVE_SDOT */
/* the widening kernel: x holds a row's group in every lane; c0..c7 its 16
 * columns, two to an accumulator */
#define NN__Q8W(x, c0, c1, c2, c3, c4, c5, c6, c7)                                                \
    c0 = vpadalq_s16(c0, vmull_s8(vget_low_s8(b0), vget_low_s8(x)));                              \
    c1 = vpadalq_s16(c1, vmull_high_s8(b0, x));                                                    \
    c2 = vpadalq_s16(c2, vmull_s8(vget_low_s8(b1), vget_low_s8(x)));                              \
    c3 = vpadalq_s16(c3, vmull_high_s8(b1, x));                                                    \
    c4 = vpadalq_s16(c4, vmull_s8(vget_low_s8(b2), vget_low_s8(x)));                              \
    c5 = vpadalq_s16(c5, vmull_high_s8(b2, x));                                                    \
    c6 = vpadalq_s16(c6, vmull_s8(vget_low_s8(b3), vget_low_s8(x)));                              \
    c7 = vpadalq_s16(c7, vmull_high_s8(b3, x));
/* columns 4i..4i+3 from their pair sums, plus cs */
#define NN__Q8WS(cp, ce, co, i) vaddq_s32(vpaddq_s32(ce, co), vld1q_s32((cp) + 4 * (i)))
static void nn__neon_q8wide2(size_t k4, const unsigned char *A, size_t lda, const signed char *Bp,
                             const int32_t *cs, int32_t *C, size_t ldc, size_t nc) {
    const unsigned char *a1 = A + lda;
    int32x4_t c0 = vdupq_n_s32(0), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    int32x4_t d0 = c0, d1 = c0, d2 = c0, d3 = c0, d4 = c0, d5 = c0, d6 = c0, d7 = c0;
    size_t k;
    for (k = 0; k < k4; k++) {
        const int8x16_t x = nn__neon_q8a4(A + 4 * k), y = nn__neon_q8a4(a1 + 4 * k);
        NN__Q8B(k)
        NN__Q8W(x, c0, c1, c2, c3, c4, c5, c6, c7)
        NN__Q8W(y, d0, d1, d2, d3, d4, d5, d6, d7)
    }
    nn__neon_q8st(C, NN__Q8WS(cs, c0, c1, 0), NN__Q8WS(cs, c2, c3, 1), NN__Q8WS(cs, c4, c5, 2),
                  NN__Q8WS(cs, c6, c7, 3), nc);
    nn__neon_q8st(C + ldc, NN__Q8WS(cs, d0, d1, 0), NN__Q8WS(cs, d2, d3, 1), NN__Q8WS(cs, d4, d5, 2),
                  NN__Q8WS(cs, d6, d7, 3), nc);
}
static void nn__neon_q8wide1(size_t k4, const unsigned char *A, const signed char *Bp,
                             const int32_t *cs, int32_t *C, size_t nc) {
    int32x4_t c0 = vdupq_n_s32(0), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    size_t k;
    for (k = 0; k < k4; k++) {
        const int8x16_t x = nn__neon_q8a4(A + 4 * k);
        NN__Q8B(k)
        NN__Q8W(x, c0, c1, c2, c3, c4, c5, c6, c7)
    }
    nn__neon_q8st(C, NN__Q8WS(cs, c0, c1, 0), NN__Q8WS(cs, c2, c3, 1), NN__Q8WS(cs, c4, c5, 2),
                  NN__Q8WS(cs, c6, c7, 3), nc);
}
#undef NN__Q8W
#undef NN__Q8WS
#undef NN__Q8B
/* one panel by either kernel, 16 columns at a time (sdot != 0: the CPU
 * has the dot product) */
static void nn__neon_q8rows_by(int sdot, size_t rows, size_t k4, const unsigned char *A,
                               size_t lda, const signed char *Bp, int32_t *C, size_t ldc,
                               size_t ncols) {
    int32_t cs[16];
    size_t h, r;
    for (h = 0; h < ncols; h += 16) {
        const signed char *bh = Bp + h * 4;
        size_t nc = ncols - h < 16 ? ncols - h : 16;
        nn__neon_q8colsum(k4, bh, cs);
        r = 0;
#if defined(NN__HAVE_SDOT)
        if (sdot) {
            for (; r + 4 <= rows; r += 4)
                nn__neon_q8dot4(k4, A + r * lda, lda, bh, cs, C + r * ldc + h, ldc, nc);
            for (; r < rows; r++) nn__neon_q8dot1(k4, A + r * lda, bh, cs, C + r * ldc + h, nc);
        }
#else
        (void)sdot;
#endif
        for (; r + 2 <= rows; r += 2)
            nn__neon_q8wide2(k4, A + r * lda, lda, bh, cs, C + r * ldc + h, ldc, nc);
        if (r < rows) nn__neon_q8wide1(k4, A + r * lda, bh, cs, C + r * ldc + h, nc);
    }
}
/* whether the dot product kernel runs: a write-once fact (as VNNI's) */
static int nn__neon_sdot(void) {
    static int sdot = -1;
    int v = __atomic_load_n(&sdot, __ATOMIC_RELAXED);
    if (v < 0) {
        v = (nn__cpu_features() & NN__CPU_SDOT) != 0;
        __atomic_store_n(&sdot, v, __ATOMIC_RELAXED);
    }
    return v;
}
static void nn__neon_q8run(size_t rows, size_t k4, const unsigned char *A, size_t lda,
                           const signed char *Bp, int32_t *C, size_t ldc, size_t ncols) {
    nn__neon_q8rows_by(nn__neon_sdot(), rows, k4, A, lda, Bp, C, ldc, ncols);
}
static void nn__neon_q8rows(size_t rows, size_t k4, const nn__q8a *a, const signed char *Bp, int32_t *C,
                            size_t ldc, size_t ncols) {
    nn__q8_via(nn__neon_q8run, rows, k4, a, Bp, C, ldc, ncols);
}
/* the widening kernel whatever the CPU (the tests put it in a table) */
static void nn__neon_q8run_wide(size_t rows, size_t k4, const unsigned char *A, size_t lda,
                                const signed char *Bp, int32_t *C, size_t ldc, size_t ncols) {
    nn__neon_q8rows_by(0, rows, k4, A, lda, Bp, C, ldc, ncols);
}
NN__UNUSED static void nn__neon_q8rows_wide(size_t rows, size_t k4, const nn__q8a *a, const signed char *Bp,
                                            int32_t *C, size_t ldc, size_t ncols) {
    nn__q8_via(nn__neon_q8run_wide, rows, k4, a, Bp, C, ldc, ncols);
}
/* requantization, 4 lanes: the 64-bit products (vmull_s32) and srshl by
 * -shift, which adds 2^(shift-1) and shifts as one step computed wider
 * than 64 bits: floor((x mul + 2^(s-1)) / 2^s), the scalar twin's.
 * vqrdmulh + a rounding shift (gemmlowp) would round twice, at 2^31 and
 * at the shift, and differ from it (2.5 -> 3 -> 1.5 -> 2, not 1.25 -> 1). */
static inline int32x4_t nn__neon_rq4(const int32_t *acc, const int32_t *bias, const int32_t *mul,
                                     const int32_t *shift) {
    int32x4_t x = vaddq_s32(vld1q_s32(acc), vld1q_s32(bias)), m = vld1q_s32(mul),
              s = vnegq_s32(vld1q_s32(shift));
    int64x2_t lo = vrshlq_s64(vmull_s32(vget_low_s32(x), vget_low_s32(m)), vmovl_s32(vget_low_s32(s)));
    int64x2_t hi = vrshlq_s64(vmull_high_s32(x, m), vmovl_high_s32(s));
    return vcombine_s32(vqmovn_s64(lo), vqmovn_s64(hi));
}
static void nn__neon_q8req(size_t rows, size_t n, const int32_t *acc, const int32_t *bias,
                           const int32_t *mul, const int32_t *shift, int zero, int lo,
                           unsigned char *out) {
    const int32x4_t z = vdupq_n_s32(zero), vlo = vdupq_n_s32(lo), vhi = vdupq_n_s32(255);
    size_t r, j;
    for (r = 0; r < rows; r++, acc += n, out += n) {
        for (j = 0; j + 8 <= n; j += 8) {
            int32x4_t v0 = nn__neon_rq4(acc + j, bias + j, mul + j, shift + j),
                      v1 = nn__neon_rq4(acc + j + 4, bias + j + 4, mul + j + 4, shift + j + 4);
            v0 = vminq_s32(vmaxq_s32(vqaddq_s32(v0, z), vlo), vhi);
            v1 = vminq_s32(vmaxq_s32(vqaddq_s32(v1, z), vlo), vhi);
            vst1_u8(out + j, vmovn_u16(vcombine_u16(vmovn_u32(vreinterpretq_u32_s32(v0)),
                                                    vmovn_u32(vreinterpretq_u32_s32(v1)))));
        }
        if (j < n) nn__s_q8req(1, n - j, acc + j, bias + j, mul + j, shift + j, zero, lo, out + j);
    }
}
static void nn__neon_q8max4(size_t n, const unsigned char *a, const unsigned char *b,
                            const unsigned char *c, const unsigned char *d, unsigned char *out) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        vst1q_u8(out + i, vmaxq_u8(vmaxq_u8(vld1q_u8(a + i), vld1q_u8(b + i)),
                                   vmaxq_u8(vld1q_u8(c + i), vld1q_u8(d + i))));
    if (i < n) nn__s_q8max4(n - i, a + i, b + i, c + i, d + i, out + i);
}
#endif /* NN__HAVE_NEON */

/* Slots a backend fills with another backend's kernel (the tables are
 * filled by name, nn__<backend>_<slot>; scalar softmax is defined below,
 * once its table exists). */
#define nn__avx512_tr8 nn__avx2_tr8
#define nn__avx512_trs nn__avx2_trs
#define nn__avx512_q8max4 nn__avx2_q8max4
#define nn__avx512_q8quant nn__avx2_q8quant
#define nn__neon_trs nn__s_trs
#define nn__neon_q8quant nn__s_q8quant /* the input's quantization: scalar (a vcvt path: to come) */
/* wasm: the int8 GEMM rows, requantization, max-pools and the input's
 * quantization in scalar C (exact, as every backend; i32x4.dot_i16x8_s
 * kernels: to come) */
#define nn__wasm_q8rows nn__s_q8rows
#define nn__wasm_q8req nn__s_q8req
#define nn__wasm_q8max4 nn__s_q8max4
#define nn__wasm_q8quant nn__s_q8quant

/* Block sizes: KC x NR of packed B stays in L1 while the MC x KC block of A
 * streams from L2; NC bounds the packed B panel (L2/L3).  The values here
 * were tuned with bench/ on Zen 5 (48 KiB L1d, 1 MiB L2); nn__blocking
 * scales them to the CPU it runs on.  Each table: the id, the slots by
 * name, then MR, NR, MC, KC, NC. */
static const nn__ktab nn__tab_scalar = {
    NN_BACKEND_SCALAR, NN__KSLOTS(NN__KSLOT_INIT, nn__s) NN__S_MR, NN__S_NR, 128, 256, 2048};
static void nn__s_softmax(size_t rows, size_t cols, const float *x, float *y) {
    nn__softmax_with(&nn__tab_scalar, rows, cols, x, y);
}
static void nn__s_softmax_bwd(size_t rows, size_t cols, const float *y, const float *dy,
                              float *dx) {
    nn__softmax_bwd_with(&nn__tab_scalar, rows, cols, y, dy, dx);
}
#if NN__HAVE_X86
static const nn__ktab nn__tab_avx2 = {
    NN_BACKEND_AVX2, NN__KSLOTS(NN__KSLOT_INIT, nn__avx2) 6, 16, 144, 768, 2048};
static const nn__ktab nn__tab_avx512 = {
    NN_BACKEND_AVX512, NN__KSLOTS(NN__KSLOT_INIT, nn__avx512) 12, 32, 192, 512, 2048};
#define NN__TAB_AVX2 (&nn__tab_avx2)
#define NN__TAB_AVX512 (&nn__tab_avx512)
#else
#define NN__TAB_AVX2 NULL
#define NN__TAB_AVX512 NULL
#endif
#if NN__HAVE_NEON
static const nn__ktab nn__tab_neon = {
    NN_BACKEND_NEON, NN__KSLOTS(NN__KSLOT_INIT, nn__neon) 8, 12, 128, 256, 2048};
#define NN__TAB_NEON (&nn__tab_neon)
#else
#define NN__TAB_NEON NULL
#endif
#if NN__HAVE_WASM
static const nn__ktab nn__tab_wasm = {
    NN_BACKEND_WASM, NN__KSLOTS(NN__KSLOT_INIT, nn__wasm) NN__WA_MR, 8, 125, 256, 2048};
#define NN__TAB_WASM (&nn__tab_wasm)
#else
#define NN__TAB_WASM NULL
#endif
#define NN__TAB_SCALAR (&nn__tab_scalar)
/* what each backend needs of the CPU (nn__cpu_features bits; NEON is
 * baseline on aarch64) */
#define NN__NEEDS_SCALAR 0u
#define NN__NEEDS_AVX2 ((unsigned)NN__CPU_AVX2)
#define NN__NEEDS_AVX512 ((unsigned)NN__CPU_AVX512)
#define NN__NEEDS_NEON 0u
#define NN__NEEDS_WASM 0u /* available iff compiled in */

/* THE documented global: the current kernel table (NULL until first use,
 * then set by nn_set_backend or the first kernel call, which runs AUTO).
 * Read and written atomically (gcc/clang builtins, usable in C99): two
 * threads that make the first call at once both compute the same table. */
static const nn__ktab *nn__k_cur = NULL;
#if defined(__GNUC__) || defined(__clang__)
#define NN__LOAD_ACQ(v) __atomic_load_n(&(v), __ATOMIC_ACQUIRE)
#define NN__STORE_REL(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELEASE)
#else /* MSVC: aligned pointer loads and stores are atomic on x86 and ARM64 */
#define NN__LOAD_ACQ(v) (v)
#define NN__STORE_REL(v, x) ((v) = (x))
#endif

/* the table of backend b if it is compiled in (whatever the CPU) */
static const nn__ktab *nn__table_built(nn_backend b) {
#define NN__BACKEND_TAB(id, name)                                                                \
    case NN_BACKEND_##id: return NN__TAB_##id;
    switch (b) {
        NN_BACKEND_LIST(NN__BACKEND_TAB)
    default: return NULL;
    }
#undef NN__BACKEND_TAB
}
/* ... and only if the CPU and OS can run it */
static const nn__ktab *nn__table_for(nn_backend b) {
    unsigned need = 0;
#define NN__BACKEND_NEED(id, name)                                                               \
    case NN_BACKEND_##id: need = NN__NEEDS_##id; break;
    switch (b) {
        NN_BACKEND_LIST(NN__BACKEND_NEED)
    default: return NULL;
    }
#undef NN__BACKEND_NEED
    return (nn__cpu_features() & need) == need ? nn__table_built(b) : NULL;
}
/* the last available backend of the list (it is in increasing preference) */
static const nn__ktab *nn__best_table(void) {
    int b;
    for (b = (int)NN_BACKEND_COUNT - 1; b > (int)NN_BACKEND_AUTO; b--) {
        const nn__ktab *t = nn__table_for((nn_backend)b);
        if (t) return t;
    }
    return &nn__tab_scalar;
}
static const nn__ktab *nn__k(void) {
    const nn__ktab *t = NN__LOAD_ACQ(nn__k_cur);
    if (t) return t;
    (void)nn_set_backend(NN_BACKEND_AUTO);
    return NN__LOAD_ACQ(nn__k_cur);
}

NN__API const char *nn_backend_name(nn_backend b) {
#define NN__BACKEND_NAME(id, name)                                                               \
    case NN_BACKEND_##id: return #name;
    switch (b) {
    case NN_BACKEND_AUTO: return "auto";
        NN_BACKEND_LIST(NN__BACKEND_NAME)
    default: return "unknown";
    }
#undef NN__BACKEND_NAME
}
NN__API nn_status nn_backend_from_name(const char *name, nn_backend *out) {
    int b;
    if (!name || !out) return NN_ERR_INVALID_ARGUMENT;
    for (b = (int)NN_BACKEND_AUTO; b < (int)NN_BACKEND_COUNT; b++)
        if (strcmp(name, nn_backend_name((nn_backend)b)) == 0) {
            *out = (nn_backend)b;
            return NN_OK;
        }
    return NN_ERR_INVALID_ARGUMENT;
}
NN__API int nn_backend_available(nn_backend b) {
    if (b == NN_BACKEND_AUTO) return 1;
    return nn__table_for(b) != NULL;
}
NN__API nn_status nn_set_backend(nn_backend b) {
    const nn__ktab *t;
    if ((int)b < (int)NN_BACKEND_AUTO || (int)b >= (int)NN_BACKEND_COUNT)
        return NN_ERR_INVALID_ARGUMENT;
    if (b == NN_BACKEND_AUTO) {
        const char *env = getenv("NN_BACKEND");
        nn_backend eb;
        t = NULL;
        /* an env value that names an available backend wins; anything else
         * (unknown name, unsupported backend) falls back to the best */
        if (env && *env && nn_backend_from_name(env, &eb) == NN_OK && eb != NN_BACKEND_AUTO)
            t = nn__table_for(eb);
        if (!t) t = nn__best_table();
    } else {
        t = nn__table_for(b);
        if (!t) return NN_ERR_UNSUPPORTED;
    }
    NN__STORE_REL(nn__k_cur, t);
    return NN_OK;
}
NN__API nn_backend nn_get_backend(void) { return nn__k()->id; }

/* ---- public wrappers: one indirect call each ---- */
NN__API void nn_vadd(size_t n, const float *a, const float *b, float *y) {
    nn__k()->add(n, a, b, y);
}
NN__API void nn_vsub(size_t n, const float *a, const float *b, float *y) {
    nn__k()->sub(n, a, b, y);
}
NN__API void nn_vmul(size_t n, const float *a, const float *b, float *y) {
    nn__k()->mul(n, a, b, y);
}
NN__API void nn_vscale(size_t n, float s, const float *x, float *y) { nn__k()->scale(n, s, x, y); }
NN__API void nn_vaxpy(size_t n, float a, const float *x, float *y) { nn__k()->axpy(n, a, x, y); }
NN__API float nn_vdot(size_t n, const float *a, const float *b) { return nn__k()->dot(n, a, b); }
NN__API float nn_vsum(size_t n, const float *x) { return nn__k()->sum(n, x); }
NN__API float nn_vmax(size_t n, const float *x) { return nn__k()->max(n, x); }
NN__API void nn_vexp(size_t n, const float *x, float *y) { nn__k()->exp(n, x, y); }
NN__API void nn_vrelu(size_t n, const float *x, float *y) { nn__k()->relu(n, x, y); }
NN__API void nn_vsigmoid(size_t n, const float *x, float *y) { nn__k()->sigmoid(n, x, y); }
NN__API void nn_vtanh(size_t n, const float *x, float *y) { nn__k()->tanh(n, x, y); }
NN__API void nn_vconvert_u8(size_t n, const unsigned char *x, float scale, float *y) {
    nn__k()->u8f(n, x, scale, y);
}
NN__API void nn_vrelu_backward(size_t n, const float *y, const float *dy, float *dx) {
    nn__k()->relu_bwd(n, y, dy, dx);
}
NN__API void nn_vsigmoid_backward(size_t n, const float *y, const float *dy, float *dx) {
    nn__k()->sigmoid_bwd(n, y, dy, dx);
}
NN__API void nn_vtanh_backward(size_t n, const float *y, const float *dy, float *dx) {
    nn__k()->tanh_bwd(n, y, dy, dx);
}
NN__API void nn_softmax_rows(size_t rows, size_t cols, const float *x, float *y) {
    nn__k()->softmax(rows, cols, x, y);
}
NN__API void nn_softmax_backward_rows(size_t rows, size_t cols, const float *y, const float *dy,
                                      float *dx) {
    nn__k()->softmax_bwd(rows, cols, y, dy, dx);
}
NN__API void nn_maxpool2x2(int n, int h, int w, int c, const float *x, float *y) {
    nn__k()->maxpool(n, h, w, c, x, y);
}
NN__API void nn_maxpool2x2_backward(int n, int h, int w, int c, const float *x, const float *y,
                                    const float *dy, float *dx) {
    nn__k()->maxpool_bwd(n, h, w, c, x, y, dy, dx);
}
NN__API void nn_maxpool2x2_argmax(int n, int h, int w, int c, const float *x, float *y,
                                  float *idx) {
    nn__k()->maxpool_fi(n, h, w, c, x, y, idx);
}
NN__API void nn_maxpool2x2_backward_argmax(int n, int h, int w, int c, const float *idx,
                                           const float *dy, float *dx) {
    nn__k()->maxpool_bi(n, h, w, c, idx, dy, dx);
}
NN__API void nn_global_avgpool(size_t n, size_t hw, size_t c, const float *x, float *y) {
    nn__k()->gap(n, hw, c, x, y);
}
NN__API void nn_global_avgpool_backward(size_t n, size_t hw, size_t c, const float *dy, float *dx) {
    nn__k()->gap_bwd(n, hw, c, dy, dx);
}
NN__API void nn_winograd_input(size_t c, const float *const *p, float *v, size_t vstride) {
    nn__k()->wg_in(c, p, v, vstride);
}
NN__API void nn_winograd_output(size_t f, const float *m, size_t mstride, const float *bias,
                                int relu, float *const *y) {
    nn__k()->wg_out(f, m, mstride, bias, relu, y);
}
NN__API void nn_winograd_filter(size_t f, const float *const *g, float *u, size_t ustride) {
    nn__k()->wg_w(f, g, u, ustride);
}
NN__API void nn_winograd_dy(size_t f, const float *const *g, float *u, size_t ustride) {
    nn__k()->wg_dy(f, g, u, ustride);
}
NN__API void nn_winograd_wgrad(size_t f, const float *m, size_t mstride, float *const *dw) {
    nn__k()->wg_wout(f, m, mstride, dw);
}
/* Optimizer state of parameters whose gradient stays 0 (say, weights of an
 * always-black border pixel) decays geometrically into subnormal floats,
 * which made Adam 3-4x slower on x86 (measured: 26-38 us instead of 9 us
 * per step for 55k parameters).  The updates run with flush-to-zero and
 * denormals-are-zero, saved and restored around the call (MXCSR is the
 * caller's per-thread state).  Numerically harmless: such a state moves
 * its weight by less than 1e-30.  Every backend, scalar included, runs
 * with the same setting, so they agree. */
#if NN__HAVE_MXCSR
#define NN__FTZ_BEGIN                                                                              \
    unsigned nn__csr = _mm_getcsr();                                                               \
    _mm_setcsr(nn__csr | 0x8040u)
#define NN__FTZ_END _mm_setcsr(nn__csr)
#else
#define NN__FTZ_BEGIN                                                                              \
    do {                                                                                           \
    } while (0)
#define NN__FTZ_END                                                                                \
    do {                                                                                           \
    } while (0)
#endif
NN__API void nn_sgd_update(size_t n, float *w, const float *g, float *v, float lr, float momentum,
                           float weight_decay, int nesterov) {
    NN__FTZ_BEGIN;
    nn__k()->sgd(n, w, g, v, lr, momentum, weight_decay, nesterov);
    NN__FTZ_END;
}
NN__API void nn_rmsprop_update(size_t n, float *w, const float *g, float *v, float lr, float rho,
                               float eps, float weight_decay) {
    NN__FTZ_BEGIN;
    nn__k()->rmsprop(n, w, g, v, lr, rho, eps, weight_decay);
    NN__FTZ_END;
}
NN__API void nn_adam_update(size_t n, float *w, const float *g, float *m, float *v, float lr,
                            float beta1, float beta2, float eps, float weight_decay, int adamw,
                            long t) {
    /* bias corrections in double, once per call, as PyTorch does in Python */
    double bc1 = 1.0 - pow((double)beta1, (double)t), bc2 = 1.0 - pow((double)beta2, (double)t);
    float step = (float)(lr / bc1), isb = (float)(1.0 / sqrt(bc2));
    float decay = adamw ? 1.0f - lr * weight_decay : 1.0f, l2 = adamw ? 0.0f : weight_decay;
    NN__FTZ_BEGIN;
    nn__k()->adam(n, w, g, m, v, beta1, beta2, eps, step, isb, decay, l2, 0);
    NN__FTZ_END;
}

/* ---- 4.7 SGEMM driver ----------------------------------------------------
 * Goto/BLIS blocking: for each NC block of columns, for each KC slice of
 * depth, pack op(B) into NR-wide panels; for each MC block of rows pack
 * alpha*op(A) into MR-high panels; then the micro-kernel walks NR panels
 * (outer) and MR panels (inner), so one KC x NR panel of B stays in L1
 * while A streams from L2.  Packing pads partial panels with zeros, so the
 * micro-kernel always runs full depth and only its stores are masked. */
#define NN__ALIGN_UP(x) (((x) + 15) & ~(size_t)15)
/* a workspace's first 64-byte boundary (workspaces carry 64 spare bytes) */
static float *nn__ws_align(void *workspace) {
    return (float *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
}


/* Depth of a K slice: at most KC, split evenly (k = 784 runs as 2 x 392,
 * not 512 + 272) so no slice is a short, overhead-dominated one. */
/* With at most two row panels, a B panel is reused at most twice, so
 * keeping it in L1 matters less than touching C less often: deeper slices
 * (conv1's dW, 9 x 21632 x 32, was re-storing C 43 times). */
/* The cache blocks on this CPU.  A table's MC, KC, NC were tuned on Zen 5
 * (48 KiB L1d, 1 MiB L2, 32 MiB L3): KC scales with L1d (the KC x NR panel
 * of B and an A panel stream through L1: on Zen 4's 32 KiB, AVX2's 768 deep
 * panels no longer fit), MC with L2 (the MC x KC block of A), and NC is
 * bounded so that a packed B block per core fits its share of L3.  On Zen 5
 * these are the tuned values exactly.  Fixed for the process (caches,
 * cores, read once), so a workspace planned once stays large enough.  KC sets where K
 * is sliced, i.e. the order of the sums: results on two CPUs with other
 * L1d sizes may differ in the last bits, as between backends. */
typedef struct nn__blk {
    int MC, KC, NC;
} nn__blk;
static nn__blk nn__blocking_for(const nn__ktab *t, nn__caches c, int cores) {
    nn__blk b;
    size_t kc = (size_t)t->KC * (c.l1d >> 10) / 48, mc = (size_t)t->MC * (c.l2 >> 10) / 1024,
           nc;
    size_t kmax = (size_t)(2 * t->KC), mmin = (size_t)(4 * t->MR), mmax = (size_t)(4 * t->MC),
           nmin = (size_t)(4 * t->NR);
    kc = kc < 64 ? 64 : kc > kmax ? kmax : kc & ~(size_t)15;
    mc = mc < mmin ? mmin : mc > mmax ? mmax : mc;
    mc = mc / (size_t)t->MR * (size_t)t->MR;
    nc = c.l3 / ((size_t)cores * kc * sizeof(float) * 2); /* half of a core's L3 share */
    /* the tuned NC as it is (NEON's 2048 is no multiple of 12), else whole panels */
    if (nc >= (size_t)t->NC) nc = (size_t)t->NC;
    else nc = nc < nmin ? nmin : nc / (size_t)t->NR * (size_t)t->NR;
    b.MC = (int)mc;
    b.KC = (int)kc;
    b.NC = (int)nc;
    return b;
}
/* per backend, worked out once (write-once state, as nn__caches_once): the
 * SGEMM driver asks several times per product */
static nn__blk nn__blocking(const nn__ktab *t) {
    static nn__blk blk[NN_BACKEND_COUNT];
    static int state[NN_BACKEND_COUNT];
    int i = (int)t->id;
    if (nn__once_begin(&state[i])) {
        blk[i] = nn__blocking_for(t, nn__caches_once(), nn_cpu_cores());
        nn__once_done(&state[i]);
    }
    return blk[i];
}
/* "sgemm avx512 blocks MC 192 KC 512 NC 2048" for the best backend */
static void nn__blocking_text(char *buf, size_t len) {
    const nn__ktab *t = nn__best_table();
    nn__blk b = nn__blocking(t);
    snprintf(buf, len, "sgemm %s blocks MC %d KC %d NC %d", nn_backend_name(t->id), b.MC, b.KC,
             b.NC);
}
static int nn__gemm_kcap(const nn__ktab *t, int m) {
    int kc = nn__blocking(t).KC;
    return m <= 2 * t->MR ? 4 * kc : kc;
}
static int nn__gemm_kc(const nn__ktab *t, int m, int k) {
    int cap = nn__gemm_kcap(t, m), slices = (k + cap - 1) / cap;
    return slices > 1 ? (k + slices - 1) / slices : k;
}
/* One MR x NR tile (m <= MR, n == NR): B row-major with ldb == NR is
 * already in packed layout, and nothing is reused across tiles, so B is
 * read in place and K is not sliced (conv1's dW = col^T dy: 9 x 21632 x 32
 * ran at a quarter of peak from re-packing and re-storing C per slice). */
static int nn__gemm_single_tile(const nn__ktab *t, int m, int n) {
    return m <= t->MR && n == t->NR;
}
static size_t nn__gemm_ws_floats1(const nn__ktab *t, int m, int n, int k) {
    nn__blk bk = nn__blocking(t);
    size_t mc = (size_t)(m < bk.MC ? m : bk.MC), nc = (size_t)(n < bk.NC ? n : bk.NC);
    /* min(k, KC), not the balanced slice: the workspace planned for one k
     * must also cover every smaller k (504 runs as one slice, 576 as two
     * of 288) */
    size_t kc = (size_t)(k < nn__gemm_kcap(t, m) ? k : nn__gemm_kcap(t, m));
    size_t kca = nn__gemm_single_tile(t, m, n) ? (size_t)k : kc;
    mc = (mc + t->MR - 1) / t->MR * t->MR;
    nc = (nc + t->NR - 1) / t->NR * t->NR;
    return NN__ALIGN_UP(mc * kca) + NN__ALIGN_UP(nc * kc) + 16;
}

/* op(A)[i][p] for rows i0..i0+mc, depth p0..p0+kc into MR-high panels,
 * zero-padded to a whole panel. */
static void nn__pack_a(const nn__ktab *t, int ta, const float *a, int lda, int i0, int mc, int p0,
                       int kc, int MR, float *pa) {
    int ir, i, p;
    for (ir = 0; ir < mc; ir += MR) {
        int mr = mc - ir < MR ? mc - ir : MR, i8 = mr & ~7, p8 = kc & ~7;
        if (!ta) {
            /* a transposing copy: 8x8 blocks by the backend's transpose (the
             * first conv's dW, 10 x 676 per image, spent 8% of a CNN step in
             * scalar stores 48 bytes apart), the ragged edges by hand; the
             * padding rows by one memset of the panel first */
            if (mr < MR) memset(pa, 0, (size_t)MR * kc * sizeof(float));
            for (i = 0; i < i8; i += 8)
                for (p = 0; p < p8; p += 8)
                    t->tr8(a + (size_t)(i0 + ir + i) * lda + p0 + p, (size_t)lda,
                           pa + (size_t)p * MR + i, (size_t)MR);
            for (i = 0; i < mr; i++) {
                const float *src = a + (size_t)(i0 + ir + i) * lda + p0;
                for (p = i < i8 ? p8 : 0; p < kc; p++) pa[(size_t)p * MR + i] = src[p];
            }
        } else {
            /* one memset for the padding, then runs of mr floats (a select
             * per element here was 5% of a Winograd CNN step) */
            if (mr < MR) memset(pa, 0, (size_t)MR * kc * sizeof(float));
            for (p = 0; p < kc; p++) {
                const float *src = a + (size_t)(p0 + p) * lda + i0 + ir;
                float *d = pa + (size_t)p * MR;
                if (mr == 8) memcpy(d, src, 8 * sizeof(float)); /* constant sizes: inlined moves */
                else if (mr == 4) memcpy(d, src, 4 * sizeof(float));
                else
                    for (i = 0; i < mr; i++)
                        d[i] = src[i] + 0.0f; /* "+ 0": no memcpy call per step */
            }
        }
        pa += (size_t)MR * kc;
    }
}
static void nn__pack_b(const nn__ktab *t, int tb, const float *b, int ldb, int p0, int kc, int j0,
                       int nc, int NR, float *pb) {
    int jr, j, p;
    for (jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        if (!tb) {
            for (p = 0; p < kc; p++) {
                const float *src = b + (size_t)(p0 + p) * ldb + j0 + jr;
                float *dst = pb + (size_t)p * NR;
                /* constant sizes: the compiler inlines these copies, where a
                 * memcpy call per 64-byte row cost more than the FMAs of
                 * skinny products (conv1's dW) */
                if (nr == NR && NR == 32) memcpy(dst, src, 32 * sizeof(float));
                else if (nr == NR && NR == 16) memcpy(dst, src, 16 * sizeof(float));
                else if (nr == NR && NR == 12) memcpy(dst, src, 12 * sizeof(float));
                else if (nr == NR && NR == 8) memcpy(dst, src, 8 * sizeof(float));
                else if (nr == NR) memcpy(dst, src, (size_t)NR * sizeof(float));
                else {
                    memcpy(dst, src, (size_t)nr * sizeof(float));
                    memset(dst + nr, 0, (size_t)(NR - nr) * sizeof(float));
                }
            }
        } else {
            /* op(B)[p][j] = b[j*ldb + p]: whole 8x8 blocks by the backend's
             * transpose, the ragged edges by hand */
            int j8 = nr & ~7, p8 = kc & ~7;
            for (j = 0; j < j8; j += 8)
                for (p = 0; p < p8; p += 8)
                    t->tr8(b + (size_t)(j0 + jr + j) * ldb + p0 + p, (size_t)ldb,
                           pb + (size_t)p * NR + j, (size_t)NR);
            for (j = 0; j < nr; j++) {
                const float *src = b + (size_t)(j0 + jr + j) * ldb + p0;
                for (p = j < j8 ? p8 : 0; p < kc; p++) pb[(size_t)p * NR + j] = src[p];
            }
            if (nr < NR)
                for (p = 0; p < kc; p++)
                    for (j = nr; j < NR; j++) pb[(size_t)p * NR + j] = 0.0f;
        }
        pb += (size_t)NR * kc;
    }
}

static void nn__gemm_scale_c(int m, int n, float beta, float *c, int ldc) {
    int i, j;
    for (i = 0; i < m; i++) {
        float *cr = c + (size_t)i * ldc;
        if (beta == 0.0f) memset(cr, 0, (size_t)n * sizeof(float));
        else if (beta != 1.0f)
            for (j = 0; j < n; j++) cr[j] *= beta;
    }
}

/* Epilogue for the layers: after the last K slice of a tile, add a bias
 * per column and apply ReLU while the tile is still in L1 (saves two
 * passes over the output), with the backend's own vector kernels. */
static void nn__tile_epilogue(const nn__ktab *t, float *c, size_t ldc, int mr, int nr,
                              const float *bias, int relu) {
    int i;
    for (i = 0; i < mr; i++) {
        float *cr = c + (size_t)i * ldc;
        if (bias) t->add((size_t)nr, cr, bias, cr);
        if (relu) t->relu((size_t)nr, cr, cr);
    }
}

/* Row panel heights: MR, except that a 6-row backend finishes 7 or 8 rows
 * as 4 + 3 / 4 + 4 with its 4-row kernel instead of 6 + 1 / 6 + 2 (a
 * batch of 32 is 6+6+6+6+4+4: no wasted rows). */
static int nn__panel_h(const nn__ktab *t, int rem) {
    if (t->MR == 6 && rem > 6 && rem <= 8) return 4;
    return rem < t->MR ? rem : t->MR;
}
/* Panels whose every row the micro-kernel reads exist can be read in place;
 * others are packed with zero padding. */
static int nn__panel_direct(const nn__ktab *t, int h) {
    return h == t->MR || (t->MR == 6 && h == 4);
}

/* K slice depth and whether B is read in place: decided by the whole
 * product, and passed down to each worker's block of it, so that a C
 * element sums the same slices in the same order however C is split */
static int nn__gemm_inplace(const nn__ktab *t, int tb, int m, int n, int ldb) {
    return !tb && ldb == t->NR && nn__gemm_single_tile(t, m, n);
}
static void nn__gemm_blk(const nn__ktab *t, int ta, int tb, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc, float *ws, const float *bias, int relu, const float *prepacked,
                         int kblk, int b_inplace) {
    int jc, pc, ic, jr, ir;
    size_t kcmax;
    nn__blk bk = nn__blocking(t);
    size_t mcmax = (size_t)(m < bk.MC ? m : bk.MC);
    float *pa = ws, *pb;
    nn__uk u;
    kcmax = (size_t)kblk;
    mcmax = (mcmax + t->MR - 1) / t->MR * t->MR;
    pb = ws + NN__ALIGN_UP(mcmax * kcmax);
    /* Full MR-row panels of op(A) are read in place rather than packed:
     * packing A is a transposing copy that costs as much as the FMAs
     * when n is small (training shapes have n = 10..288), and measured on
     * Zen 5 the in-place read was as fast or faster at every shape we
     * benchmark, squares included.  Only partial panels are packed. */
    u.ldc = (size_t)ldc;
    u.alpha = alpha;
    u.relu = 0;
    for (jc = 0; jc < n; jc += bk.NC) {
        int nc = n - jc < bk.NC ? n - jc : bk.NC;
        for (pc = 0; pc < k; pc += kblk) {
            int kc = k - pc < kblk ? k - pc : kblk;
            u.kc = (size_t)kc;
            u.beta = pc == 0 ? beta : 1.0f;
            if (prepacked)
                pb = (float *)(uintptr_t)prepacked; /* one slice, one block: packed by the caller */
            else if (!b_inplace) nn__pack_b(t, tb, b, ldb, pc, kc, jc, nc, t->NR, pb);
            for (ic = 0; ic < m; ic += bk.MC) {
                int mc = m - ic < bk.MC ? m - ic : bk.MC, h;
                for (ir = 0; ir < mc; ir += h) { /* at most the last panel is packed */
                    h = nn__panel_h(t, mc - ir);
                    if (!nn__panel_direct(t, h))
                        nn__pack_a(t, ta, a, lda, ic + ir, h, pc, kc, t->MR, pa);
                }
                for (jr = 0; jr < nc; jr += t->NR) {
                    u.nr = nc - jr < t->NR ? nc - jr : t->NR;
                    u.b = b_inplace ? b : pb + (size_t)jr * kc;
                    for (ir = 0; ir < mc; ir += u.mr) {
                        u.mr = nn__panel_h(t, mc - ir);
                        u.c = c + (size_t)(ic + ir) * ldc + jc + jr;
                        if (!nn__panel_direct(t, u.mr)) {
                            u.a = pa;
                            u.rsa = 1;
                            u.csa = (size_t)t->MR;
                        } else if (!ta) {
                            u.a = a + (size_t)(ic + ir) * lda + pc;
                            u.rsa = (size_t)lda;
                            u.csa = 1;
                        } else {
                            u.a = a + (size_t)pc * lda + ic + ir;
                            u.rsa = 1;
                            u.csa = (size_t)lda;
                        }
                        /* ReLU alone goes into the micro-kernel's store (a call
                         * per row here was 2% of a CNN step); with a bias, after it */
                        u.relu = relu && !bias && pc + kc == k;
                        t->ukr(&u);
                        if (bias && pc + kc == k)
                            nn__tile_epilogue(t, u.c, u.ldc, u.mr, u.nr, bias + jc + jr, relu);
                    }
                }
            }
        }
    }
}
static void nn__gemm_run(const nn__ktab *t, int ta, int tb, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc, float *ws, const float *bias, int relu, const float *prepacked) {
    int inpl = nn__gemm_inplace(t, tb, m, n, ldb);
    nn__gemm_blk(t, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ws, bias, relu,
                 prepacked, inpl ? k : nn__gemm_kc(t, m, k), inpl);
}

/* The product over workers: C split into blocks of whole MR x NR panels,
 * columns first (each worker packs only its columns of B; A is mostly read
 * in place), then rows of at least 4 panels (each row block packs B anew).
 * Products under NN__GEMM_PAR_MIN multiply-adds stay on one thread: below
 * it a region's start and end (~0.5 us here, make amdahl) cost about what a
 * second core gains.  Measured on the MLP epoch, the least forgiving case:
 * thresholds of 98K, 262K, 300K and 1M gave the same time. */
#ifndef NN__GEMM_PAR_MIN
#define NN__GEMM_PAR_MIN 98304.0
#endif
typedef struct nn__gemm_job {
    const nn__ktab *t;
    int ta, tb, m, n, k, lda, ldb, ldc, relu, kblk, inpl, mstep, nstep, nt;
    float alpha, beta;
    const float *a, *b, *bias, *pre;
    float *c;
    void *const *ws;
} nn__gemm_job;
static void nn__gemm_task(void *ctx, int task, int w) {
    const nn__gemm_job *j = (const nn__gemm_job *)ctx;
    int i0 = (task / j->nt) * j->mstep, j0 = (task % j->nt) * j->nstep;
    int mb = j->m - i0 < j->mstep ? j->m - i0 : j->mstep,
        nb = j->n - j0 < j->nstep ? j->n - j0 : j->nstep;
    const float *a = j->ta ? j->a + i0 : j->a + (size_t)i0 * j->lda;
    const float *b = !j->b ? NULL : j->tb ? j->b + (size_t)j0 * j->ldb : j->b + j0;
    if (mb <= 0 || nb <= 0) return;
    nn__gemm_blk(j->t, j->ta, j->tb, mb, nb, j->k, j->alpha, a, j->lda, b, j->ldb,
                 j->beta, j->c + (size_t)i0 * j->ldc + j0, j->ldc,
                 nn__ws_align(j->ws[w]),
                 j->bias ? j->bias + j0 : NULL, j->relu,
                 j->pre ? j->pre + (size_t)j0 * j->k : NULL, j->kblk, j->inpl);
}
/* nn__gemm_run on up to nw workers, worker w's workspace ws[w] (each as
 * large as the whole product needs) */
static void nn__gemm_par(const nn__ktab *t, int ta, int tb, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc, void *const *ws, int nw, const float *bias, int relu,
                         const float *prepacked) {
    nn__gemm_job j;
    int pm = (m + t->MR - 1) / t->MR, pn = (n + t->NR - 1) / t->NR, mt, nt;
    if (nw > 1) nw = nn__threads() < nw ? nn__threads() : nw;
    j.inpl = nn__gemm_inplace(t, tb, m, n, ldb);
    if (nw <= 1 || j.inpl || (double)m * n * k < NN__GEMM_PAR_MIN) {
        nn__gemm_run(t, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                     nn__ws_align(ws[0]), bias, relu, prepacked);
        return;
    }
    /* prepacked B is one K slice: columns split at whole panels only */
    nt = pn < nw ? pn : nw;
    mt = (2 * nw + nt - 1) / nt;
    if (mt > pm / 4) mt = pm / 4 > 0 ? pm / 4 : 1;
    j.t = t;
    j.ta = ta;
    j.tb = tb;
    j.m = m;
    j.n = n;
    j.k = k;
    j.lda = lda;
    j.ldb = ldb;
    j.ldc = ldc;
    j.relu = relu;
    j.kblk = j.inpl ? k : nn__gemm_kc(t, m, k);
    j.alpha = alpha;
    j.beta = beta;
    j.a = a;
    j.b = b;
    j.bias = bias;
    j.pre = prepacked;
    j.c = c;
    j.ws = ws;
    j.mstep = (pm + mt - 1) / mt * t->MR;
    j.nstep = (pn + nt - 1) / nt * t->NR;
    j.nt = (n + j.nstep - 1) / j.nstep;
    mt = (m + j.mstep - 1) / j.mstep;
    nn__par(mt * j.nt, nn__gemm_task, &j, nw);
}

static nn_status nn__gemm_check(int ta, int tb, int m, int n, int k, const float *a, int lda,
                                const float *b, int ldb, const float *c, int ldc) {
    int arows = ta ? k : m, acols = ta ? m : k, bcols = tb ? k : n, brows = tb ? n : k;
    if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1)) return NN_ERR_INVALID_ARGUMENT;
    if (m < 0 || n < 0 || k < 0) return NN_ERR_INVALID_ARGUMENT;
    if (lda < (acols > 1 ? acols : 1) || ldb < (bcols > 1 ? bcols : 1) || ldc < (n > 1 ? n : 1))
        return NN_ERR_INVALID_ARGUMENT;
    if (m > 0 && n > 0 && !c) return NN_ERR_INVALID_ARGUMENT;
    if (m > 0 && n > 0 && k > 0 && (!a || !b)) return NN_ERR_INVALID_ARGUMENT;
    (void)arows;
    (void)brows;
    return NN_OK;
}

/* Smaller m can take deeper K slices (two row panels or fewer, a single
 * tile), so the workspace for m must cover every m' <= m too: the layers
 * plan it for the fit batch and then run a partial last batch, a single
 * prediction, or a batch-1 stateful step with it. */
static size_t nn__gemm_ws_floats(const nn__ktab *t, int m, int n, int k) {
    size_t w = nn__gemm_ws_floats1(t, m, n, k), w2;
    if (m > 2 * t->MR && (w2 = nn__gemm_ws_floats1(t, 2 * t->MR, n, k)) > w) w = w2;
    if (m > t->MR && (w2 = nn__gemm_ws_floats1(t, t->MR, n, k)) > w) w = w2;
    return w;
}

/* Workspace for the largest block of any compiled-in backend, so switching
 * backends after planning memory stays safe. */
NN__API size_t nn_sgemm_ws_size(int m, int n, int k) {
    size_t best = 0;
    int b;
    if (m < 0 || n < 0 || k < 0) return 0;
    /* every backend built in */
    for (b = (int)NN_BACKEND_AUTO + 1; b < (int)NN_BACKEND_COUNT; b++) {
        const nn__ktab *t = nn__table_built((nn_backend)b);
        size_t s = t ? nn__gemm_ws_floats(t, m, n, k) : 0;
        if (s > best) best = s;
    }
    return best * sizeof(float) + 64;
}
NN__API nn_status nn_sgemm_ws(int transa, int transb, int m, int n, int k, float alpha,
                              const float *a, int lda, const float *b, int ldb, float beta,
                              float *c, int ldc, void *workspace) {
    nn_status s = nn__gemm_check(transa, transb, m, n, k, a, lda, b, ldb, c, ldc);
    float *ws;
    if (s != NN_OK) return s;
    if (m == 0 || n == 0) return NN_OK;
    if (k == 0 || alpha == 0.0f) {
        nn__gemm_scale_c(m, n, beta, c, ldc);
        return NN_OK;
    }
    if (!workspace) return NN_ERR_INVALID_ARGUMENT;
    ws = nn__ws_align(workspace);
    nn__gemm_run(nn__k(), transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ws, NULL, 0,
                 NULL);
    return NN_OK;
}
/* Products with a B used many times (the recurrent weights, once per time
 * step): when op(B) is one K slice and one column block for this m, pack it
 * once with nn__gemm_prepack and pass the packed copy; 0 when it is not
 * (then call nn_sgemm_ws as usual).  Packed size: nn__gemm_prepack_floats. */
static size_t nn__gemm_prepack_floats(int n, int k) { return ((size_t)n + 32) * (size_t)k + 16; }
static int nn__gemm_prepack(int tb, int m, int n, int k, const float *b, int ldb, float *dst) {
    const nn__ktab *t = nn__k();
    if (n > nn__blocking(t).NC || nn__gemm_kc(t, m, k) != k || nn__gemm_single_tile(t, m, n))
        return 0;
    nn__pack_b(t, tb, b, ldb, 0, k, 0, n, t->NR, dst);
    return 1;
}
static void nn__sgemm_packed(int m, int n, int k, const float *a, int lda, const float *packed,
                             float beta, float *c, int ldc, const float *bias, void *workspace) {
    float *ws = nn__ws_align(workspace);
    nn__gemm_run(nn__k(), 0, 0, m, n, k, 1.0f, a, lda, NULL, n, beta, c, ldc, ws, bias, 0, packed);
}
NN__API nn_status nn_sgemm(int transa, int transb, int m, int n, int k, float alpha, const float *a,
                           int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    nn_status s = nn__gemm_check(transa, transb, m, n, k, a, lda, b, ldb, c, ldc);
    void *ws;
    if (s != NN_OK) return s;
    if (m == 0 || n == 0 || k == 0 || alpha == 0.0f) {
        nn__gemm_scale_c(m, n, beta, c, ldc);
        return NN_OK;
    }
    {
        /* a workspace per thread (nn_get_threads), each on its own cache
         * lines: the product is split over them (nn__gemm_par) */
        size_t one = (nn_sgemm_ws_size(m, n, k) + 63) & ~(size_t)63;
        int nw = nn__threads(), w;
        void *blocks[NN_MAX_THREADS];
        if ((double)m * n * k < NN__GEMM_PAR_MIN) nw = 1;
        ws = NN_MALLOC(one * (size_t)nw);
        if (!ws && nw > 1) ws = NN_MALLOC(one * (size_t)(nw = 1));
        if (!ws) return NN_ERR_NO_MEMORY;
        for (w = 0; w < nw; w++) blocks[w] = (char *)ws + (size_t)w * one;
        nn__gemm_par(nn__k(), transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, blocks,
                     nw, NULL, 0, NULL);
        NN_FREE(ws);
    }
    return NN_OK;
}

/* ---- 4.8 im2col / col2im (NHWC) ------------------------------------------
 * Pure data movement: each window position contributes c contiguous floats,
 * so the copy is a memcpy (already the widest copy the libc has) and the
 * accumulate in col2im is the backend's vector add. */
NN__API nn_status nn_conv_geom_init(nn_conv_geom *g, int n, int h, int w, int c, int kh, int kw,
                                    int stride, int same_padding) {
    if (!g) return NN_ERR_INVALID_ARGUMENT;
    memset(g, 0, sizeof *g);
    if (n <= 0 || h <= 0 || w <= 0 || c <= 0 || kh <= 0 || kw <= 0 || stride <= 0)
        return NN_ERR_INVALID_ARGUMENT;
    g->n = n;
    g->h = h;
    g->w = w;
    g->c = c;
    g->kh = kh;
    g->kw = kw;
    g->sh = g->sw = stride;
    if (same_padding < 0) { /* NN_PADDING(p) */
        long long p = -1LL - same_padding, oh, ow;
        if (p > 1000000) return NN_ERR_INVALID_ARGUMENT;
        if ((long long)h + 2 * p < kh || (long long)w + 2 * p < kw) return NN_ERR_SHAPE;
        oh = ((long long)h + 2 * p - kh) / stride + 1;
        ow = ((long long)w + 2 * p - kw) / stride + 1;
        if (oh > 0x3fffffff || ow > 0x3fffffff) return NN_ERR_SHAPE;
        g->oh = (int)oh;
        g->ow = (int)ow;
        g->pt = g->pl = (int)p;
    } else if (same_padding) {
        /* in long long: h + stride and kh + (oh - 1) stride overflow int
         * near INT_MAX; (oh - 1) stride < h, so the padding is below kh */
        long long oh = ((long long)h + stride - 1) / stride;
        long long ow = ((long long)w + stride - 1) / stride;
        long long ph = (oh - 1) * stride + kh - h, pw = (ow - 1) * stride + kw - w;
        g->oh = (int)oh;
        g->ow = (int)ow;
        g->pt = ph > 0 ? (int)(ph / 2) : 0;
        g->pl = pw > 0 ? (int)(pw / 2) : 0;
    } else {
        if (kh > h || kw > w) return NN_ERR_SHAPE;
        g->oh = (h - kh) / stride + 1;
        g->ow = (w - kw) / stride + 1;
    }
    return NN_OK;
}
/* Copies of a few floats are written out: a memcpy call per 4-byte pixel
 * (C = 1, the first conv layer) cost more than the convolution's FMAs. */
static inline void nn__copy_small(float *d, const float *s, size_t n) {
    size_t j;
    if (n > 16) {
        memcpy(d, s, n * sizeof(float));
        return;
    }
    for (j = 0; j < n; j++) d[j] = s[j] + 0.0f; /* "+ 0" keeps gcc from turning this into memcpy */
}
/* im2col with a row stride ldc >= kh*kw*c; ones != 0 also writes 1.0 in
 * column kh*kw*c, so that the layers fold the bias into the GEMM (weights
 * (KH*KW*C, F) followed by the bias row are one (K+1, F) matrix).  Rows
 * are taken one output-image row at a time, kernel row by kernel row, so
 * the inner loop is a run of kw*C floats per output pixel with no index
 * arithmetic; pixels whose window leaves the image go through the slow
 * per-pixel path. */
static void nn__im2col(const nn_conv_geom *g, size_t row0, size_t rows, const float *x, float *col,
                       size_t ldc, int ones) {
    size_t ohw = (size_t)g->oh * g->ow, C = (size_t)g->c, K = (size_t)g->kh * g->kw * C;
    size_t run = (size_t)g->kw * C, r = 0, b = row0 / ohw, rem = row0 % ohw;
    int oy = (int)(rem / g->ow), ox0 = (int)(rem % g->ow), ky, kx, ox;
    /* output columns [lo, hi) have their whole window inside the row */
    int lo = (g->pl + g->sw - 1) / g->sw, hi = (g->w - g->kw + g->pl) / g->sw + 1;
    if (g->w - g->kw + g->pl < 0) hi = 0; /* (the division truncates toward 0) */
    if (hi > g->ow) hi = g->ow;
    if (lo > hi) lo = hi;
    while (r < rows) {
        int n = g->ow - ox0,
            iy0 = oy * g->sh - g->pt; /* n: pixels of this output row in the block */
        const float *img = x + b * g->h * g->w * C;
        if ((size_t)n > rows - r) n = (int)(rows - r);
        for (ox = ox0; ox < ox0 + n; ox++) {
            int ix0 = ox * g->sw - g->pl, inside = ox >= lo && ox < hi;
            float *dst = col + (r + (size_t)(ox - ox0)) * ldc;
            for (ky = 0; ky < g->kh; ky++, dst += run) {
                int iy = iy0 + ky; /* pointers are formed only for rows inside the image */
                const float *row = iy < 0 || iy >= g->h ? NULL : img + (size_t)iy * g->w * C;
                if (!row) {
                    memset(dst, 0, run * sizeof(float));
                } else if (inside) { /* kw adjacent pixels in NHWC */
                    nn__copy_small(dst, row + (size_t)ix0 * C, run);
                } else {
                    for (kx = 0; kx < g->kw; kx++) {
                        int ix = ix0 + kx;
                        if (ix < 0 || ix >= g->w) memset(dst + kx * C, 0, C * sizeof(float));
                        else nn__copy_small(dst + kx * C, row + (size_t)ix * C, C);
                    }
                }
            }
            if (ones) col[(r + (size_t)(ox - ox0)) * ldc + K] = 1.0f;
        }
        r += (size_t)n;
        ox0 = 0;
        if (++oy == g->oh) {
            oy = 0;
            b++;
        }
    }
}
NN__API void nn_im2col(const nn_conv_geom *g, size_t row0, size_t rows, const float *x,
                       float *col) {
    nn__im2col(g, row0, rows, x, col, (size_t)g->kh * g->kw * g->c, 0);
}
/* The transposed layout for layers with few input channels (C < 4, the
 * first conv of an image model): colT (K+1 rows of ldt floats) holds output
 * pixels [row0, row0+rows) in columns, and its row k is one kernel tap
 * (ky,kx,ci) over those pixels, a shifted copy of image rows: with C == 1
 * and stride 1 a memcpy per output row, where the row layout wrote 3
 * floats at a time (9 KiB of a 3x3x1 col cost 2.5x its GEMM).  Row K is
 * the ones of the bias.  The SGEMMs read it as op(A) = colT^T. */
static void nn__im2colT(const nn_conv_geom *g, size_t row0, size_t rows, const float *x, float *ct,
                        size_t ldt) {
    size_t ohw = (size_t)g->oh * g->ow, C = (size_t)g->c, K = (size_t)g->kh * g->kw * C, k, r;
    for (k = 0; k < K; k++) {
        int ky = (int)(k / ((size_t)g->kw * C)), kx = (int)((k / C) % (size_t)g->kw), ox, ox0;
        size_t ci = k % C, b = row0 / ohw, rem = row0 % ohw;
        float *dst = ct + k * ldt + row0;
        int oy = (int)(rem / g->ow);
        ox0 = (int)(rem % g->ow);
        for (r = 0; r < rows;) {
            int n = g->ow - ox0, iy = oy * g->sh - g->pt + ky;
            if ((size_t)n > rows - r) n = (int)(rows - r);
            if (iy < 0 || iy >= g->h) {
                memset(dst + r, 0, (size_t)n * sizeof(float));
            } else {
                const float *src = x + ((b * g->h + (size_t)iy) * g->w) * C + ci;
                float *d = dst + r - ox0; /* d[ox] for ox in [ox0, ox0 + n) */
                if (C == 1 && g->sw == 1) { /* [lo, hi): ix = ox - pl + kx inside the row */
                    int lo = g->pl - kx, hi = g->w + g->pl - kx;
                    if (lo < ox0) lo = ox0;
                    if (hi > ox0 + n) hi = ox0 + n;
                    if (hi < lo) hi = lo;
                    for (ox = ox0; ox < lo; ox++) d[ox] = 0.0f;
                    if (hi > lo)
                        memcpy(d + lo, src + (lo - g->pl + kx), (size_t)(hi - lo) * sizeof(float));
                    for (ox = hi; ox < ox0 + n; ox++) d[ox] = 0.0f;
                } else {
                    for (ox = ox0; ox < ox0 + n; ox++) {
                        int ix = ox * g->sw - g->pl + kx;
                        d[ox] = ix >= 0 && ix < g->w ? src[(size_t)ix * C] : 0.0f;
                    }
                }
            }
            r += (size_t)n;
            ox0 = 0;
            if (++oy == g->oh) {
                oy = 0;
                b++;
            }
        }
    }
    for (r = 0; r < rows; r++) ct[K * ldt + row0 + r] = 1.0f;
}
static void nn__col2im(const nn_conv_geom *g, size_t row0, size_t rows, const float *col,
                       size_t ldc, float *dx) {
    const nn__ktab *t = nn__k();
    size_t r, ohw = (size_t)g->oh * g->ow, C = (size_t)g->c, b = row0 / ohw, rem = row0 % ohw;
    int oy = (int)(rem / g->ow), ox = (int)(rem % g->ow), ky, kx;
    for (r = 0; r < rows; r++) {
        const float *src = col + r * ldc;
        int ix0 = ox * g->sw - g->pl;
        for (ky = 0; ky < g->kh; ky++) {
            int iy = oy * g->sh - g->pt + ky;
            float *row;
            if (iy < 0 || iy >= g->h) {
                src += (size_t)g->kw * C;
                continue;
            }
            row = dx + (b * g->h + (size_t)iy) * g->w * C;
            if (ix0 >= 0 && ix0 + g->kw <= g->w) {
                float *d = row + (size_t)ix0 * C;
                t->add((size_t)g->kw * C, d, src, d); /* one contiguous run per kernel row */
                src += (size_t)g->kw * C;
                continue;
            }
            for (kx = 0; kx < g->kw; kx++, src += C) {
                int ix = ix0 + kx;
                if (ix >= 0 && ix < g->w)
                    t->add(C, row + (size_t)ix * C, src, row + (size_t)ix * C);
            }
        }
        if (++ox == g->ow) {
            ox = 0;
            if (++oy == g->oh) {
                oy = 0;
                b++;
            }
        }
    }
}
NN__API void nn_col2im(const nn_conv_geom *g, size_t row0, size_t rows, const float *col,
                       float *dx) {
    nn__col2im(g, row0, rows, col, (size_t)g->kh * g->kw * g->c, dx);
}

/* ---- 4.9 int8 GEMM ---------------------------------------------------------
 * The integer core of int8 inference (section 9): C (int32) = A (u8
 * activations) . B (s8 weights),
 * exact on every backend, so every backend gives the same bits.  B is
 * packed once into panels of 32 columns, K in groups of 4 bytes (the
 * order vpdpbusd and sdot consume): panel p, group g, column c, byte j at
 * ((p * k4 + g) * 32 + c) * 4 + j, zero past K and N.  A is read in place,
 * as nn__q8a describes it: rows by stride or by a table, K in one run or
 * in segments (what lies past K is multiplied by zeros).
 * (NN__UNUSED: an NN_STATIC program that never quantizes leaves them
 * unused.) */
#define NN__Q8_MAXK 65536 /* 65536 x 255 x 128 < 2^31: the int32 sums cannot overflow */
static size_t nn__q8_k4(size_t K) { return (K + 3) / 4; }
/* K's groups of 4 when K comes in segments of seg bytes (0: one run), each
 * segment padded to whole groups: a conv's kw x C bytes per kernel row,
 * read in place from its input (section 9) */
static size_t nn__q8_k4s(size_t K, size_t seg) {
    return seg && seg < K ? K / seg * ((seg + 3) / 4) : nn__q8_k4(K);
}
static size_t nn__q8_pack_bytes_s(size_t K, size_t seg, size_t N) {
    return (N + 31) / 32 * 32 * nn__q8_k4s(K, seg) * 4;
}
NN__UNUSED static size_t nn__q8_pack_bytes(size_t K, size_t N) { return nn__q8_pack_bytes_s(K, 0, N); }
/* B (K x N s8, row-major, ldb) into out (nn__q8_pack_bytes_s), K's row k
 * at k's place in the segmented order; the padding zero */
NN__UNUSED static void nn__q8_pack_s(size_t K, size_t seg, size_t N, const signed char *B, size_t ldb,
                                     signed char *out) {
    size_t k4 = nn__q8_k4s(K, seg), k, n, kk;
    memset(out, 0, nn__q8_pack_bytes_s(K, seg, N));
    for (k = 0; k < K; k++) {
        kk = seg && seg < K ? k / seg * 4 * ((seg + 3) / 4) + k % seg : k;
        for (n = 0; n < N; n++) out[((n / 32 * k4 + kk / 4) * 32 + n % 32) * 4 + kk % 4] = B[k * ldb + n];
    }
}
NN__UNUSED static void nn__q8_pack(size_t K, size_t N, const signed char *B, size_t ldb,
                                   signed char *out) {
    nn__q8_pack_s(K, 0, N, B, ldb, out);
}
/* C (M x N, ldc; M / 4 rows with pool) = A (M rows of k4 groups as a
 * describes them) . B (packed), 4*k4 <= NN__Q8_MAXK; rows in blocks of 96
 * so that a block of A stays in cache across the panels */
NN__UNUSED static void nn__q8_gemm_s(const nn__ktab *t, size_t M, size_t N, size_t k4, const nn__q8a *a,
                                     const signed char *Bp, int32_t *C, size_t ldc) {
    size_t m0, p, g = a->pool ? 4 : 1;
    NN_ASSERT(4 * k4 <= NN__Q8_MAXK && a->sg >= 1 && M % g == 0);
    for (m0 = 0; m0 < M; m0 += 96) {
        size_t mr = M - m0 < 96 ? M - m0 : 96;
        nn__q8a b = *a;
        if (a->ro) b.ro = a->ro + m0;
        else b.p = a->p + m0 * a->lda;
        for (p = 0; p * 32 < N; p++)
            t->q8rows(mr, k4, &b, Bp + p * k4 * 128, C + m0 / g * ldc + p * 32, ldc, N - p * 32 < 32 ? N - p * 32 : 32);
    }
}
/* C (M x N, ldc) = A (M x K, rows of lda >= K rounded up to 4) . B (packed) */
NN__UNUSED static void nn__q8_gemm(const nn__ktab *t, size_t M, size_t N, size_t K,
                                   const unsigned char *A, size_t lda, const signed char *Bp,
                                   int32_t *C, size_t ldc) {
    nn__q8a a;
    a.p = A, a.lda = lda, a.ro = NULL, a.sg = nn__q8_k4(K), a.ss = 0, a.pool = 0;
    NN_ASSERT(K <= NN__Q8_MAXK && lda >= 4 * nn__q8_k4(K));
    nn__q8_gemm_s(t, M, N, nn__q8_k4(K), &a, Bp, C, ldc);
}

/* ========================================================================= */
/* ==== 5. Layers                                                             */
/* ========================================================================= */
/* A layer kind is one row (struct nn__lkind below; every row is listed in
 * NN__KINDS at the end of this section): its name, shape rule,
 * initialisation, scratch rule, forward, backward, settings in a model
 * file, summary text and PyTorch parameter names.  A layer (nn__layer)
 * points at its row and keeps its kind's settings in a named member.
 * Layers never read their neighbours:
 * what crosses a layer boundary (conv + ReLU + max-pool run image by image,
 * ReLU' applied by the pool, the initialiser picked by the next activation)
 * is decided once by nn__fuse at compile and recorded in the plan (the
 * layers' fz members and the model's ops).  Shapes in comments are per
 * batch of B.
 *
 * Adding a layer:
 *   1. its settings: a named member of nn__layer (if it has any);
 *   2. its functions here: shape, forward, backward (+ init, plan, reset
 *      when it has parameters, scratch or state), save/load of the
 *      settings, describe, and its tensors (PyTorch's names and layouts,
 *      for safetensors files) when it has parameters or buffers; kernels
 *      in section 4 with scalar twins.  A setting added to an existing
 *      kind goes after the others, 0 meaning the old behaviour, with
 *      nset_min left at the old count (older readers keep reading files
 *      that do not use it);
 *   3. its row (nn__row_NAME) and one line in NN__KINDS;
 *   4. its builder (section 7) and declaration (section 2);
 *   5. tests: gradient check (tests/test_grad.c), save/load, summary, a
 *      PyTorch oracle case (scripts/make_oracle.py), a safetensors round
 *      trip (tests/test_safetensors.c), and a model with it in
 *      tests/test_parallel.c if it has parallel work.
 * Threads: products go through nn__msgemm (split over the model's workers
 * by output blocks), independent items (images, elements) through
 * nn__par_range, anything else through nn__par with per-task outputs; a
 * sum over the batch is one partial per fixed chunk, added in chunk order,
 * so results never depend on the thread count.  Per-worker scratch is the
 * worker's workspace block (plan: raise *ws).
 * The file format, the arena plan, compile and the summary need no edit:
 * they read the row. */

typedef struct nn__lkind nn__lkind;

/* the memory plan of one layer at the arena's batch (nn__plan) */
typedef struct nn__lplan {
    size_t scratch;   /* floats of scratch in the arena */
    size_t tile_rows; /* conv: rows of an im2col tile, or tiles of a Winograd chunk */
    int colT;         /* conv: the whole batch's col kept transposed (nn__im2colT) */
} nn__lplan;

typedef struct nn__layer {
    const nn__lkind *k; /* its kind: the row of the table */
    nn_activation act;  /* fused activation on the output */
    float slope;        /* leaky ReLU slope */
    nn_shape in, out;
    char name[64];      /* nn_layer_set_name, else its index: safetensors keys "<name>.<param>" */
    size_t in_dim, out_dim;
    size_t nw, nb, nbuf; /* weights, biases (trained); buffers (statistics: saved, not trained) */
    size_t woff, boff, bufoff; /* their offsets in params / bufs */
    int frozen;
    int nobias; /* dense / conv2d without bias (nn_use_bias): its nb zeros stay zero, untrained */
    /* the settings of its kind (only its own member is used) */
    struct { int units; } dense;
    struct {
        int filters, kh, kw, stride, same;
        int wino;       /* 3x3 stride 1 with enough channels: Winograd F(4x4,3x3) */
        nn_conv_geom g; /* geometry of one sample */
    } conv;
    struct { int size, max, pad; } pool; /* window = stride; max 1: max-pool, 0: average; pad zeros (-inf) */
    struct { int factor; } up;
    struct { float rate; } drop;
    struct { int vocab, dim; } embed;
    struct { int cell, units, seqs; } rnn; /* cell NN__RNN / LSTM / GRU; seqs: return_sequences */
    /* the fusion plan (nn__fuse, at compile) */
    struct {
        int act_by_next;         /* its ReLU' is applied by the next layer (a max-pool) */
        int relu_first;          /* a max-pool after such a conv: ReLU' on dy first */
        nn_activation init_act;  /* the activation that picks its initialiser */
    } fz;
    /* the memory plan (nn__plan) and the state of the last forward */
    nn__lplan lp, lp_next; /* in force, and computed by a plan not yet allocated */
    float *y;              /* output activations, B x out_dim (arena) */
    float *scratch;        /* lp.scratch floats (arena) */
    int idx_valid;         /* maxpool 2x2: scratch holds the argmax of the last forward */
    int fwd_training;      /* the last forward was in training mode (batch norm's backward) */
} nn__layer;

/* A step of forward and backward (the plan nn__fuse writes): one layer, or
 * a fused group of count layers from first. */
enum { NN__OP_LAYER = 0, NN__OP_CONV_POOL };
typedef struct nn__op {
    int kind, first, count;
    int fused_now; /* CONV_POOL: the last forward ran fused (the conv's y holds no batch) */
} nn__op;

enum { NN__HEAD_NONE = 0, NN__HEAD_SOFTMAX, NN__HEAD_SIGMOID };

/* Workers-to-be: each has its own SGEMM workspace (packing buffers), so
 * that no two workers write the same scratch.  One today. */

struct nn_model {
    nn_status status;
    char msg[320];
    nn_shape input;
    size_t in_dim;
    nn__layer *L;
    int n, cap;
    int compiled;
    nn_optimizer opt;
    float lr_now;
    nn_loss loss;
    int head;                  /* fused output activation (computed inside the loss) */
    int opt_in_bwd;            /* the optimizer step runs inside the backward (nn__fuse) */
    nn__op *ops;               /* the plan: steps of the forward (nn__fuse) */
    int nops;
    size_t nparams, nbufs;
    float *params, *grads, *om, *ov, *bufs;
    long step;
    /* activation arena */
    float *arena;
    size_t arena_floats;
    int arena_batch;
    float *xin, *ybuf, *g0, *g1, *prob;
    void *ws;                        /* SGEMM workspace: nworkers blocks of ws_bytes */
    void *wk_ws[NN_MAX_THREADS];    /* worker w's block */
    int nworkers;
    int par_cap;                     /* 1: nn_fit measured one thread faster (nn__probe) */
    float *dx0;                      /* nn_input_gradient: the first layer's dx goes here */
    size_t ws_bytes;
    int cur_n;
    const float *cur_x;
    int stateful, state_n;   /* nn_predict_stateful in progress; streams in the carried state */
    unsigned arena_gen;      /* bumped whenever the arena is re-planned (the state lives in it) */
    unsigned state_gen;
    int bad_token_layer;     /* first embedding that saw an id out of range (-1: none) */
    int from_file;           /* nn_load: compile leaves the parameters to the file (no init) */
    struct nn__q8 *q8;       /* an int8 model (nn_quantize, section 9): its forward; no float parameters */
    float bad_token;
    nn_rng rng;
};

/* One tensor of a layer as a safetensors file holds it (section 8.4): its
 * PyTorch name and shape, and where its elements live in nn.h's arrays:
 * the file's elements, row-major over it[0..3], are at
 * off + i0*st[0] + i1*st[1] + i2*st[2] + i3*st[3] of params (or bufs). */
enum {
    NN__STM_COPY = 0,
    NN__STM_SUM0,  /* two file tensors summed into one nn.h vector (an RNN's biases): */
    NN__STM_SUM1,  /*   exported as the vector and as zeros; imported as their sum */
    NN__STM_STEPS  /* batch norm's num_batches_tracked: an I64 scalar, the step count */
};
typedef struct nn__st_t {
    char name[96];     /* "<layer name>.<param>": 63 + 1 + the longest param (19) + NUL */
    const char *param; /* "weight", "running_mean", ... */
    int ndim;          /* the shape PyTorch declares (0: a scalar) */
    size_t shape[4];
    size_t it[4], st[4];
    int bufs; /* 0: in params, 1: in bufs */
    size_t off;
    int mode;
    int layer;
    size_t ent;    /* import: its entry in the file */
    uint64_t fbeg; /* and where its data begins */
} nn__st_t;
/* The (h, w, c) of an image a flatten turned into this layer's input
 * (through layers that keep the order of features): PyTorch flattens
 * NCHW, so such per-feature axes are stored in (c, h, w) order.  A layer
 * whose matrix consumes the order sets used. */
typedef struct nn__st_perm {
    int on, h, w, c, used;
} nn__st_perm;
#define NN__ST_MAX 5 /* tensors of one layer, at most */

/* the layers' tensor lists (their rows' tensors slot) are written with these */
static nn__st_t *nn__st_add(nn__st_t *t, int *n, const char *param, int bufs, size_t off,
                            int mode) {
    nn__st_t *x = &t[(*n)++];
    memset(x, 0, sizeof *x);
    x->param = param;
    x->bufs = bufs;
    x->off = off;
    x->mode = mode;
    x->it[0] = x->it[1] = x->it[2] = x->it[3] = 1;
    return x;
}
static void nn__st_shape(nn__st_t *x, int ndim, size_t a, size_t b, size_t c, size_t d) {
    x->ndim = ndim;
    x->shape[0] = a, x->shape[1] = b, x->shape[2] = c, x->shape[3] = d;
}
static void nn__st_iter(nn__st_t *x, size_t d0, size_t s0, size_t d1, size_t s1, size_t d2,
                        size_t s2, size_t d3, size_t s3) {
    x->it[0] = d0, x->st[0] = s0, x->it[1] = d1, x->st[1] = s1;
    x->it[2] = d2, x->st[2] = s2, x->it[3] = d3, x->st[3] = s3;
}
/* a plain vector of n values, in nn.h's order (a bias) */
static void nn__st_plain(nn__st_t *x, size_t n) {
    nn__st_shape(x, 1, n, 1, 1, 1);
    nn__st_iter(x, n, 1, 1, 0, 1, 0, 1, 0);
}
/* a vector of C features: in PyTorch's (c, h, w) order after a flatten */
static void nn__st_vec(nn__st_t *x, size_t C, const nn__st_perm *p) {
    if (!p->on) {
        nn__st_plain(x, C);
        return;
    }
    nn__st_shape(x, 1, C, 1, 1, 1);
    nn__st_iter(x, (size_t)p->c, 1, (size_t)p->h, (size_t)p->w * p->c, (size_t)p->w, (size_t)p->c, 1, 0);
}

/* The row of a layer kind.  Every function-pointer slot has its own
 * signature, so rows written positionally cannot swap two slots. */
struct nn__lkind {
    const char *name; /* stable: model files (format 2) and the summary name the kind by it */
    int nset;         /* settings it writes to a model file (int32 each) */
    /* from L->in (and its settings): L->out, nw, nb, nbuf, or an error naming layer idx
     * (in_str: the input shape as text) */
    nn_status (*shape)(nn_model *m, nn__layer *L, int idx, const char *in_str);
    /* parameters w (nw then nb, zeroed) and buffers buf (nbuf); NULL: all zero */
    void (*init)(const nn__layer *L, float *w, float *buf, nn_rng *rng);
    /* scratch floats (and conv tiling) at batch B into lp; raises *ws to the
     * largest SGEMM workspace its forward and backward use; NULL: none */
    void (*plan)(const nn_model *m, const nn__layer *L, int B, nn__lplan *lp, size_t *ws);
    void (*fwd)(nn_model *m, nn__layer *L, const float *x, int B, int training);
    /* dx NULL: the first layer (no input gradient needed) */
    void (*bwd)(nn_model *m, nn__layer *L, const float *x, float *dy, float *dx, int B);
    void (*save)(const nn__layer *L, int32_t *set);                     /* nset settings */
    nn_status (*load)(nn_model *m, const int32_t *set, nn_activation act); /* its builder */
    void (*describe)(const nn__layer *L, nn_activation act, char *buf, size_t len);
    void (*reset)(const nn_model *m, const nn__layer *L); /* zero carried state; NULL: none */
    /* settings files must hold (nn.h 0.2.0's count: settings added later
     * are written only when not zero, so older readers still read them) */
    int nset_min;
    /* its tensors in a safetensors file, PyTorch's names and layouts
     * (section 8.4); returns the count, at most NN__ST_MAX; NULL: none */
    int (*tensors)(const nn__layer *L, nn__st_perm *p, nn__st_t *t);
};
#define NN__MAX_SET 8 /* settings of one kind, at most */

static nn_status nn__train_state(nn_model *m, int opt); /* section 7.2 */
struct nn__q8;
static void nn__q8_free(struct nn__q8 *q);                         /* section 9 */
static nn_status nn__q8_forward(nn_model *m, const float *x, int B); /* section 9 */
typedef struct nn__wbuf nn__wbuf;
typedef struct nn__rbuf nn__rbuf;
static void nn__q8_put(nn__wbuf *w, const struct nn__q8 *q);    /* section 9 */
static int nn__q8_get(nn__rbuf *r, nn_model *m, int *oom);       /* section 9 */
static void nn__q8_summary(const nn_model *m, FILE *f);          /* section 9 */
static nn_status nn__fail(nn_model *m, nn_status s, const char *fmt, ...) {
    va_list ap;
    if (!m) return s;
    va_start(ap, fmt);
    vsnprintf(m->msg, sizeof m->msg, fmt, ap);
    va_end(ap);
    /* sticky only while building: a bad batch or file later must not
     * poison a compiled model */
    if (m->status == NN_OK && !m->compiled) m->status = s;
    return s;
}

static const char *nn__act_name(nn_activation a) {
    switch (a) {
    case NN_LINEAR: return "linear";
    case NN_RELU: return "relu";
    case NN_LEAKY_RELU: return "leaky_relu";
    case NN_SIGMOID: return "sigmoid";
    case NN_TANH: return "tanh";
    case NN_SOFTMAX: return "softmax";
    }
    return "?";
}
static void nn__shape_str(nn_shape s, char *buf, size_t len) {
    if (s.ndim == 1) snprintf(buf, len, "(%d)", s.d[0]);
    else if (s.ndim == 2) snprintf(buf, len, "(%d,%d)", s.d[0], s.d[1]);
    else snprintf(buf, len, "(%d,%d,%d)", s.d[0], s.d[1], s.d[2]);
}
/* the dimensions past ndim are 1, as nn_shape1/2 make them: layers size
 * their work by the first ndim only (an (n) input carrying d[1] = 3 made
 * the embedding write past its output, from a crafted model file) */
static int nn__shape_tail_ok(nn_shape s) {
    return (s.ndim >= 2 || s.d[1] == 1) && (s.ndim >= 3 || s.d[2] == 1);
}
/* the parameters a layer trains: its bias too unless it has none */
static size_t nn__ntrain(const nn__layer *L) { return L->nw + (L->nobias ? 0 : L->nb); }
static size_t nn__shape_size(nn_shape s) {
    return (size_t)s.d[0] * (size_t)s.d[1] * (size_t)s.d[2];
}

NN__API nn_shape nn_shape1(int n) {
    nn_shape s;
    s.ndim = 1;
    s.d[0] = n;
    s.d[1] = s.d[2] = 1;
    return s;
}
NN__API nn_shape nn_shape2(int t, int f) {
    nn_shape s;
    s.ndim = 2;
    s.d[0] = t;
    s.d[1] = f;
    s.d[2] = 1;
    return s;
}
NN__API nn_shape nn_shape3(int h, int w, int c) {
    nn_shape s;
    s.ndim = 3;
    s.d[0] = h;
    s.d[1] = w;
    s.d[2] = c;
    return s;
}

/* ---- 5.1 helpers shared by the layers ---- */
/* db = sum over rows of dy */
static void nn__col_sums(size_t rows, size_t cols, const float *dy, float *db) {
    const nn__ktab *k = nn__k();
    size_t r;
    memset(db, 0, cols * sizeof(float));
    for (r = 0; r < rows; r++) k->add(cols, db, dy + r * cols, db);
}
/* the last dimension: channels of an image, features of a vector */
static size_t nn__channels(nn_shape s) { return (size_t)s.d[s.ndim - 1]; }
/* raise *ws to the workspace of an SGEMM of m x n x k */
static void nn__ws_need(size_t *ws, int m, int n, int k) {
    size_t w = nn_sgemm_ws_size(m, n, k);
    if (w > *ws) *ws = w;
}
/* workers a region of this model may use: its workspace blocks, or one
 * while nn_fit finds one thread faster (nn__probe) */
static int nn__mw(const nn_model *m) { return m->par_cap == 1 ? 1 : m->nworkers; }
/* The layers' products, on the model's workers (nn__gemm_par; each worker
 * has its own workspace block).  Sizes are trusted (planned at compile). */
static void nn__msgemm(nn_model *m, int ta, int tb, int M, int N, int K, float alpha,
                       const float *a, int lda, const float *b, int ldb, float beta, float *c,
                       int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) nn__gemm_scale_c(M, N, beta, c, ldc);
    else
        nn__gemm_par(nn__k(), ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc, m->wk_ws,
                     nn__mw(m), NULL, 0, NULL);
}
/* C = A op(B) + bias (per column), then ReLU if asked; K > 0 */
static void nn__mgemm_bias_act(nn_model *m, int tb, int M, int N, int K, const float *a, int lda,
                               const float *b, int ldb, float *c, int ldc, const float *bias,
                               int relu) {
    nn__gemm_par(nn__k(), 0, tb, M, N, K, 1.0f, a, lda, b, ldb, 0.0f, c, ldc, m->wk_ws, nn__mw(m),
                 bias, relu, NULL);
}
/* with B packed by nn__gemm_prepack */
static void nn__mgemm_packed(nn_model *m, int M, int N, int K, const float *a, int lda,
                             const float *packed, float beta, float *c, int ldc,
                             const float *bias) {
    nn__gemm_par(nn__k(), 0, 0, M, N, K, 1.0f, a, lda, NULL, N, beta, c, ldc, m->wk_ws, nn__mw(m),
                 bias, 0, packed);
}
/* fn(ctx, i0, n) over [0, total) in fixed chunks of `chunk` (the tasks of
 * a region when there are several and the model has workers): for work
 * whose items are independent (elements, images), so the chunks can be any
 * size; element chunks are multiples of 64 so that every element goes
 * through the same vector path as in one call. */
typedef void (*nn__range_fn)(void *ctx, size_t i0, size_t n);
typedef struct nn__range_job {
    nn__range_fn fn;
    void *ctx;
    size_t total, chunk;
} nn__range_job;
static void nn__range_task(void *ctx, int t, int w) {
    const nn__range_job *j = (const nn__range_job *)ctx;
    size_t i0 = (size_t)t * j->chunk;
    (void)w;
    j->fn(j->ctx, i0, j->total - i0 < j->chunk ? j->total - i0 : j->chunk);
}
static void nn__par_range(const nn_model *m, size_t total, size_t chunk, nn__range_fn fn,
                          void *ctx) {
    nn__range_job j;
    if (chunk < 1) chunk = 1;
    if (nn__mw(m) <= 1 || total <= chunk || nn__threads() <= 1) {
        fn(ctx, 0, total);
        return;
    }
    j.fn = fn;
    j.ctx = ctx;
    j.total = total;
    j.chunk = chunk;
    nn__par((int)((total + chunk - 1) / chunk), nn__range_task, &j, nn__mw(m));
}
/* Element-wise work below this many floats per task is not worth a
 * region (measured on Zen 5: Adam over 50k floats takes 6-8 us, so a chunk
 * of 8192 about 1 us, against ~0.5 us for a region's start and end). */
#ifndef NN__PAR_ELEMS
#define NN__PAR_ELEMS 8192
#endif
/* dy <- dy * ReLU'(y), in place, over n floats */
typedef struct nn__ew_job {
    const float *y;
    float *dy;
} nn__ew_job;
static void nn__relu_bwd_range(void *ctx, size_t i0, size_t n) {
    const nn__ew_job *j = (const nn__ew_job *)ctx;
    nn__k()->relu_bwd(n, j->y + i0, j->dy + i0, j->dy + i0);
}
static void nn__relu_bwd_par(const nn_model *m, size_t n, const float *y, float *dy) {
    nn__ew_job j;
    j.y = y;
    j.dy = dy;
    nn__par_range(m, n, 4 * NN__PAR_ELEMS, nn__relu_bwd_range, &j);
}
/* images per task for per-image work of `per` floats */
static size_t nn__img_chunk(size_t per) {
    size_t c = NN__PAR_ELEMS / (per ? per : 1);
    return c ? c : 1;
}
/* activations applied in place on a rows x cols block */
static void nn__act_forward_with(const nn__ktab *k, nn_activation a, float slope, size_t rows,
                                 size_t cols, float *y) {
    size_t n = rows * cols, i;
    switch (a) {
    case NN_LINEAR: break;
    case NN_RELU: k->relu(n, y, y); break;
    case NN_LEAKY_RELU:
        for (i = 0; i < n; i++)
            if (y[i] < 0.0f) y[i] *= slope;
        break;
    case NN_SIGMOID: k->sigmoid(n, y, y); break;
    case NN_TANH: k->tanh(n, y, y); break;
    case NN_SOFTMAX: k->softmax(rows, cols, y, y); break;
    }
}
static void nn__act_forward1(nn_activation a, float slope, size_t rows, size_t cols, float *y) {
    nn__act_forward_with(nn__k(), a, slope, rows, cols, y);
}
/* dy <- dy * f'(.) from the output y (in place) */
static void nn__act_backward1(nn_activation a, float slope, size_t rows, size_t cols,
                              const float *y, float *dy) {
    const nn__ktab *k = nn__k();
    size_t n = rows * cols, i;
    switch (a) {
    case NN_LINEAR: break;
    case NN_RELU: k->relu_bwd(n, y, dy, dy); break;
    case NN_LEAKY_RELU:
        for (i = 0; i < n; i++)
            if (!(y[i] > 0.0f)) dy[i] *= slope;
        break;
    case NN_SIGMOID: k->sigmoid_bwd(n, y, dy, dy); break;
    case NN_TANH: k->tanh_bwd(n, y, dy, dy); break;
    case NN_SOFTMAX: k->softmax_bwd(rows, cols, y, dy, dy); break;
    }
}
/* ... over the model's workers for large blocks: chunks of whole rows
 * (softmax) whose size is a multiple of 64 floats (the element-wise
 * kernels take every element through the same vector path as in one call) */
typedef struct nn__act_job {
    nn_activation a;
    float slope;
    size_t cols;
    float *y, *dy;
} nn__act_job;
static void nn__act_fwd_range(void *ctx, size_t r0, size_t nr) {
    const nn__act_job *j = (const nn__act_job *)ctx;
    nn__act_forward1(j->a, j->slope, nr, j->cols, j->y + r0 * j->cols);
}
static void nn__act_bwd_range(void *ctx, size_t r0, size_t nr) {
    const nn__act_job *j = (const nn__act_job *)ctx;
    nn__act_backward1(j->a, j->slope, nr, j->cols, j->y + r0 * j->cols, j->dy + r0 * j->cols);
}
static size_t nn__act_chunk(size_t cols) {
    size_t step, g = cols, b = 64, rows;
    while (b) { /* step = 64 / gcd(cols, 64): rows whose floats are a multiple of 64 */
        size_t t = g % b;
        g = b;
        b = t;
    }
    step = 64 / g;
    rows = (4 * (size_t)NN__PAR_ELEMS + cols - 1) / cols;
    return (rows + step - 1) / step * step;
}
static void nn__act_forward(const nn_model *m, nn_activation a, float slope, size_t rows,
                            size_t cols, float *y) {
    nn__act_job j;
    if (a == NN_LINEAR || cols == 0) return;
    j.a = a;
    j.slope = slope;
    j.cols = cols;
    j.y = y;
    j.dy = NULL;
    nn__par_range(m, rows, nn__act_chunk(cols), nn__act_fwd_range, &j);
}
static void nn__act_backward(const nn_model *m, nn_activation a, float slope, size_t rows,
                             size_t cols, const float *y, float *dy) {
    nn__act_job j;
    if (a == NN_LINEAR || cols == 0) return;
    j.a = a;
    j.slope = slope;
    j.cols = cols;
    j.y = (float *)(uintptr_t)y;
    j.dy = dy;
    nn__par_range(m, rows, nn__act_chunk(cols), nn__act_bwd_range, &j);
}
/* uniform in +-lim: He (sqrt(6 / fan_in)) before a ReLU-family activation,
 * Glorot (sqrt(6 / (fan_in + fan_out)), Keras' default) otherwise */
static double nn__init_lim(const nn__layer *L, double fan_in, double fan_out) {
    nn_activation a = L->fz.init_act;
    return (a == NN_RELU || a == NN_LEAKY_RELU) ? sqrt(6.0 / fan_in) : sqrt(6.0 / (fan_in + fan_out));
}
static void nn__init_fan(const nn__layer *L, float *w, double fan_in, double fan_out, nn_rng *rng) {
    double lim = nn__init_lim(L, fan_in, fan_out);
    size_t j;
    for (j = 0; j < L->nw; j++) w[j] = (float)((2.0 * nn_rng_uniform(rng) - 1.0) * lim);
}
/* summary text: the kind's name, then the activation (always, or only
 * when it is not linear) */
static void nn__desc_act(const nn__layer *L, nn_activation a, char *buf, size_t len);
static void nn__desc_plain(const nn__layer *L, nn_activation a, char *buf, size_t len);

/* ---- 5.2 the layers, forward and backward side by side ---- */
/* dense: x (R,in) W (units,in) b (units) -> y = x W^T + b (R,units); R = B
 * rows, or B*T for a sequence (the same dense at every step).  W is in
 * PyTorch's (out, in) order (0.3.0 held W^T), so a safetensors file's weight
 * is read straight into the model; the product packs W^T as dy W^T did. */
/* y^T = W x^T instead, where it is the same sums in the same order (the
 * K slices of a product depend on its row count, nn__gemm_kc: both row
 * counts must give one slicing, or K fit in one slice either way) and
 * faster: at least a micro-kernel's width of samples (fewer waste its
 * columns), no more than the units (there W^T, packed anew for every
 * batch, is the larger copy) */
static int nn__dense_wxt(int R, int U, int in) {
    const nn__ktab *t = nn__k();
    int cr = nn__gemm_kcap(t, R), cu = nn__gemm_kcap(t, U);
    return R <= U && R >= t->NR && (cr == cu || (in <= cr && in <= cu));
}
static void nn__dense_fwd(nn_model *m, nn__layer *L, const float *x, int B, int training) {
    const float *W = m->params + L->woff, *b = m->params + L->boff;
    int in = (int)nn__channels(L->in), R = B * (int)(L->in_dim / (size_t)in), U = L->dense.units;
    (void)training;
    if (L->scratch && nn__dense_wxt(R, U, in)) {
        /* no more rows than units (a batch through a wide layer):
         * W read in place as A and x^T packed cost less than packing W^T;
         * the U x R result is transposed into y, and the bias added, as the
         * tile epilogue would */
        const nn__ktab *t = nn__k();
        float *yT = L->scratch, *y = L->y;
        int r, u, r8 = R & ~7, u8 = U & ~7;
        nn__msgemm(m, 0, 1, U, R, in, 1.0f, W, in, x, in, 0.0f, yT, R);
        for (u = 0; u < u8; u += 8)
            for (r = 0; r < r8; r += 8) t->tr8(yT + (size_t)u * R + r, (size_t)R, y + (size_t)r * U + u, (size_t)U);
        for (r = 0; r < R; r++)
            for (u = r < r8 ? u8 : 0; u < U; u++) y[(size_t)r * U + u] = yT[(size_t)u * R + r];
        for (r = 0; r < R; r++) t->add((size_t)U, y + (size_t)r * U, b, y + (size_t)r * U);
        nn__act_forward(m, L->act, L->slope, (size_t)R, (size_t)U, y);
        return;
    }
    nn__mgemm_bias_act(m, 1, R, U, in, x, in, W, in, L->y, U, b, L->act == NN_RELU);
    if (L->act != NN_RELU) nn__act_forward(m, L->act, L->slope, (size_t)R, (size_t)U, L->y);
}
/* dW = dy^T x, db = colsum dy, dx = dy W */
static void nn__dense_bwd(nn_model *m, nn__layer *L, const float *x, float *dy, float *dx, int B) {
    const float *W = m->params + L->woff;
    int in = (int)nn__channels(L->in), R = B * (int)(L->in_dim / (size_t)in);
    nn__act_backward(m, L->act, L->slope, (size_t)R, (size_t)L->dense.units, L->y, dy);
    if (!L->frozen) {
        nn__msgemm(m, 1, 0, L->dense.units, in, R, 1.0f, dy, L->dense.units, x, in, 0.0f,
                    m->grads + L->woff, in);
        nn__col_sums((size_t)R, (size_t)L->dense.units, dy, m->grads + L->boff);
    }
    if (dx)
        nn__msgemm(m, 0, 0, R, in, L->dense.units, 1.0f, dy, L->dense.units, W, in, 0.0f, dx, in);
}

static nn_status nn__dense_shape(nn_model *m, nn__layer *L, int idx, const char *sb) {
    nn_shape in = L->in;
    if (in.ndim == 3)
        return nn__fail(
            m, NN_ERR_SHAPE,
            "layer %d (dense %d): input %s is an image; add nn_flatten before a dense layer", idx,
            L->dense.units, sb);
    if (L->dense.units <= 0)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT, "layer %d (dense): units must be > 0", idx);
    if (((double)nn__channels(in) + 1.0) * L->dense.units > 1e9 ||
        (double)L->in_dim / (double)nn__channels(in) * L->dense.units > 1e9)
        return nn__fail(m, NN_ERR_SHAPE,
                        "layer %d (dense %d on %s): over 1e9 parameters or outputs", idx,
                        L->dense.units, sb);
    L->out = in.ndim == 2 ? nn_shape2(in.d[0], L->dense.units) : nn_shape1(L->dense.units);
    L->nw = nn__channels(in) * (size_t)L->dense.units;
    L->nb = (size_t)L->dense.units;
    return NN_OK;
}
/* fan-in is the whole input (t * f for a sequence: 0.1.0's rule, kept so
 * that trained weights do not change); drawn in 0.3.0's (in, units) order
 * for the same reason */
static void nn__dense_init(const nn__layer *L, float *w, float *buf, nn_rng *rng) {
    double lim = nn__init_lim(L, (double)L->in_dim, (double)L->dense.units);
    size_t U = (size_t)L->dense.units, in = nn__channels(L->in), k, u;
    (void)buf;
    for (k = 0; k < in; k++)
        for (u = 0; u < U; u++) w[u * in + k] = (float)((2.0 * nn_rng_uniform(rng) - 1.0) * lim);
}
static void nn__dense_plan(const nn_model *m, const nn__layer *L, int B, nn__lplan *lp,
                           size_t *ws) {
    int in = (int)nn__channels(L->in), R = B * (int)(L->in_dim / (size_t)in), bk;
    size_t r = (size_t)(R < L->dense.units ? R : L->dense.units), nr = (size_t)1 << 20;
    (void)m;
    /* y^T for nn__dense_wxt, which takes R >= the backend's NR and R <= U:
     * none when min(R, U) is below every compiled backend's NR */
    for (bk = (int)NN_BACKEND_AUTO + 1; bk < (int)NN_BACKEND_COUNT; bk++) {
        const nn__ktab *t = nn__table_built((nn_backend)bk);
        if (t && (size_t)t->NR < nr) nr = (size_t)t->NR;
    }
    lp->scratch = r >= nr ? r * (size_t)L->dense.units : 0;
    nn__ws_need(ws, L->dense.units, R, in);
    nn__ws_need(ws, R, L->dense.units, in);
    nn__ws_need(ws, L->dense.units, in, R);
    nn__ws_need(ws, R, in, L->dense.units);
}
static void nn__dense_save(const nn__layer *L, int32_t *set) {
    set[0] = L->dense.units;
    set[1] = L->nobias;
}
static nn_status nn__dense_load(nn_model *m, const int32_t *set, nn_activation act) {
    nn_status s = nn_dense(m, set[0], act);
    return s == NN_OK && set[1] ? nn_use_bias(m, 0) : s;
}
/* weight (units, in) and bias, PyTorch's Linear and nn.h's own order */
static int nn__dense_tensors(const nn__layer *L, nn__st_perm *p, nn__st_t *t) {
    size_t U = (size_t)L->dense.units, in = nn__channels(L->in);
    int n = 0;
    nn__st_t *x = nn__st_add(t, &n, "weight", 0, L->woff, NN__STM_COPY);
    nn__st_shape(x, 2, U, in, 1, 1);
    if (p->on && L->in.ndim == 1) /* input pixel (y, x, ch) is column (y*w + x)*c + ch of W */
        nn__st_iter(x, U, in, (size_t)p->c, 1, (size_t)p->h, (size_t)p->w * p->c, (size_t)p->w,
                    (size_t)p->c);
    else nn__st_iter(x, U, in, in, 1, 1, 0, 1, 0);
    p->used = 1;
    if (!L->nobias) nn__st_plain(nn__st_add(t, &n, "bias", 0, L->boff, NN__STM_COPY), U);
    return n;
}
static const nn__lkind nn__row_dense = {"dense", 2, nn__dense_shape, nn__dense_init, nn__dense_plan,
    nn__dense_fwd, nn__dense_bwd, nn__dense_save, nn__dense_load, nn__desc_act, NULL, 1, nn__dense_tensors};

/* ---- conv2d as Winograd -------------------------------------------------
 * A 3x3 stride-1 convolution with at least NN__WG_MIN channels in and out
 * runs on Winograd F(4x4,3x3) tiles instead of one im2col SGEMM (and so
 * needs no im2col): per chunk of tiles, 36 SGEMMs, one per point of the
 * 6x6 transformed tile (transforms: nn__s_bt6).
 *  - forward: (tiles x cin)(cin x cout) with U = G g G^T of the filter;
 *  - data gradient: the same on dy, with the filter flipped and its
 *    channels swapped (the full correlation);
 *  - weight gradient: the transposed algorithm F(3x3,4x4), (cin x tiles)
 *    (tiles x cout) summed over the batch, then G^T . G per filter tap.
 * 36 multiplies per 16 outputs instead of 144: on the Fashion CNN's second
 * conv (13x13x32 -> 11x11x64, batch 32) the three products do 2.7x fewer
 * multiplies than im2col's (161 vs 428 MFLOP per batch), tile padding
 * included (the data gradient's 13x13 output pads to 16x16).  Rounding differs from
 * the direct sum (factors up to 8 and 1/6): within 1e-5 of the output's
 * scale in the tests (test_conv.c), as with cuDNN's and oneDNN's Winograd.
 * Layer scratch: the regions of nn__wg_mem, laid out by nn__wg_regions
 * (the one place that knows the offsets). */
#define NN__WG_MIN 8
static int nn__wg_eligible(const nn__layer *L) {
    return L->conv.kh == 3 && L->conv.kw == 3 && L->conv.stride == 1 && L->in.d[2] >= NN__WG_MIN &&
           L->conv.filters >= NN__WG_MIN && L->conv.g.pt <= 2 && L->conv.g.pl <= 2;
}
static size_t nn__r16(size_t n) { return (n + 15) & ~(size_t)15; }
static size_t nn__wg_pkf(const nn__layer *L) {
    size_t a = nn__gemm_prepack_floats(L->conv.filters, L->in.d[2]),
           b = nn__gemm_prepack_floats(L->in.d[2], L->conv.filters);
    return nn__r16(a > b ? a : b);
}
/* Tiles per chunk: the chunk's transformed tiles (~NN__WG_CHUNK floats per
 * MiB of L2) stay in L2 between the transforms and the SGEMMs; a multiple
 * of 12 rows (whole panels for MR 6 and 12).  Measured on Zen 5: 512 KiB as
 * good as 0.75-1.5 MiB. */
#define NN__WG_CHUNK 131072
static size_t nn__wg_chunk(const nn__layer *L, int B) {
    size_t C = (size_t)L->in.d[2], F = (size_t)L->conv.filters;
    size_t T = (size_t)NN__WG_CHUNK * (nn__caches_once().l2 >> 10) / 1024 / (36 * (C + F));
    size_t to = (size_t)((L->conv.g.oh + 3) / 4) * ((L->conv.g.ow + 3) / 4);
    size_t ti = (size_t)((L->in.d[0] + 3) / 4) * ((L->in.d[1] + 3) / 4);
    size_t tiles = (size_t)B * (to > ti ? to : ti);
    T = T / 12 * 12;
    if (T < 12) T = 12;
    return T < tiles ? T : tiles;
}
/* A Winograd layer's scratch, in floats (the points of U, Ud and dWh are
 * us = C F + 16 apart, off 4 KiB multiples) */
typedef struct nn__wg_mem {
    float *zeros; /* max(C, F): the padding outside an image                */
    float *U;     /* 36 points of C x F: the filter's transform            */
    float *Ud;    /* 36 points of F x C: the flipped filter's (data grad.) */
    float *Wt;    /* 9 C F: the filter flipped, channels swapped            */
    float *pk;    /* 36 packed B operands (pkf floats each)                 */
    float *dWh;   /* 36 points of C x F: the weight gradient's transform   */
    float *vm;    /* a chunk: 36 (T (C+F) + 32), T = tile_rows tiles        */
    size_t us, pkf, total;
} nn__wg_mem;
/* the regions of a layer's scratch at base (NULL: only the sizes) for T
 * tiles per chunk */
static nn__wg_mem nn__wg_regions(const nn__layer *L, float *base, size_t T) {
    size_t C = (size_t)L->in.d[2], F = (size_t)L->conv.filters, o = 0;
    nn__wg_mem r;
    r.us = C * F + 16;
    r.pkf = nn__wg_pkf(L);
#define NN__WG_AT(p, n) (r.p = base ? base + o : NULL, o += (n))
    NN__WG_AT(zeros, nn__r16(C > F ? C : F));
    NN__WG_AT(U, 36 * r.us);
    NN__WG_AT(Ud, 36 * r.us);
    NN__WG_AT(Wt, 9 * C * F);
    NN__WG_AT(pk, 36 * r.pkf);
    NN__WG_AT(dWh, 36 * r.us);
    NN__WG_AT(vm, 36 * (T * (C + F) + 32));
#undef NN__WG_AT
    r.total = o;
    return r;
}
/* floats between the points of a chunk: 64 bytes past the T x c rows, so
 * that the streams of a transform never sit 4 KiB apart (T = 96 with 32 or
 * 64 channels put every stream in one L1 set: 25% slower) */
static size_t nn__wg_st(size_t T, size_t c) { return T * c + 16; }
/* p[s*i + j] (i, j < s) = pixel (y0 + i, x0 + j) of image b of x (H,W,c),
 * or pad outside the image: a tile for a transform */
static void nn__wg_ptrs(const float *x, size_t b, int H, int W, int c, int y0, int x0, int s,
                        const float *pad, const float **p) {
    int i, j;
    for (i = 0; i < s; i++)
        for (j = 0; j < s; j++) {
            int iy = y0 + i, ix = x0 + j;
            p[s * i + j] =
                iy >= 0 && iy < H && ix >= 0 && ix < W
                    ? x + ((b * (size_t)H + (size_t)iy) * (size_t)W + (size_t)ix) * (size_t)c
                    : pad;
        }
}
/* y (n,OH,OW,cout) = x (n,H,W,cin) zero-padded by (pt,pl), correlated with
 * the 3x3 filter whose F(4x4,3x3) transform at point xi is the (cin x
 * cout) matrix Bm + xi bs, or its packed copy pk + xi pkf when pk_ok;
 * then bias and ReLU.  Chunks of Tmax tiles are independent (each writes
 * its own outputs): they are the tasks, each in its worker's block of ws
 * (nn__ws_align: vm of 36 (Tmax (cin + cout) + 32) floats, then the SGEMM's
 * workspace). */
typedef struct nn__wg_job {
    const nn__ktab *k;
    void *const *ws;
    size_t Tmax, bs, pkf, nt, th, tw;
    const float *zeros, *x, *Bm, *pk, *bias;
    float *y;
    int n, H, W, cin, pt, pl, OH, OW, cout, pk_ok, relu;
} nn__wg_job;
static size_t nn__wg_vm(size_t Tmax, size_t cin, size_t cout) {
    return nn__r16(36 * (Tmax * (cin + cout) + 32));
}
static void nn__wg_chunk_task(void *ctx, int c, int w) {
    const nn__wg_job *j = (const nn__wg_job *)ctx;
    const nn__ktab *k = j->k;
    size_t cin = (size_t)j->cin, cout = (size_t)j->cout, t0 = (size_t)c * j->Tmax, t,
           th = j->th, tw = j->tw;
    size_t T = j->nt - t0 < j->Tmax ? j->nt - t0 : j->Tmax, sv = nn__wg_st(T, cin),
           sm = nn__wg_st(T, cout);
    float *V = nn__ws_align(j->ws[w]), *M = V + 36 * nn__wg_st(j->Tmax, cin),
          *gws = V + nn__wg_vm(j->Tmax, cin, cout);
    int xi;
    for (t = 0; t < T; t++) {
        size_t tile = t0 + t, b = tile / (th * tw), r = tile % (th * tw);
        const float *p[36];
        nn__wg_ptrs(j->x, b, j->H, j->W, j->cin, 4 * (int)(r / tw) - j->pt,
                    4 * (int)(r % tw) - j->pl, 6, j->zeros, p);
        k->wg_in(cin, p, V + t * cin, sv);
    }
    for (xi = 0; xi < 36; xi++) {
        float *Mx = M + (size_t)xi * sm;
        const float *Vx = V + (size_t)xi * sv;
        if (j->pk_ok && !nn__gemm_single_tile(k, (int)T, j->cout))
            nn__sgemm_packed((int)T, j->cout, j->cin, Vx, j->cin, j->pk + (size_t)xi * j->pkf, 0.0f,
                             Mx, j->cout, NULL, gws);
        else
            nn_sgemm_ws(0, 0, (int)T, j->cout, j->cin, 1.0f, Vx, j->cin, j->Bm + (size_t)xi * j->bs,
                        j->cout, 0.0f, Mx, j->cout, gws);
    }
    for (t = 0; t < T; t++) {
        size_t tile = t0 + t, b = tile / (th * tw), r = tile % (th * tw);
        int ty = (int)(r / tw), tx = (int)(r % tw), i, jj;
        float *q[16];
        for (i = 0; i < 4; i++)
            for (jj = 0; jj < 4; jj++) {
                int oy = 4 * ty + i, ox = 4 * tx + jj;
                q[4 * i + jj] = oy < j->OH && ox < j->OW
                                    ? j->y + ((b * (size_t)j->OH + (size_t)oy) * (size_t)j->OW +
                                              (size_t)ox) *
                                                 cout
                                    : NULL;
            }
        k->wg_out(cout, M + t * cout, sm, j->bias, j->relu, q);
    }
}
static void nn__wg_conv(const nn__ktab *k, const nn_model *m, size_t Tmax, const float *zeros,
                        const float *x, int n, int H, int W, int cin, int pt, int pl, float *y,
                        int OH, int OW, int cout, const float *Bm, size_t bs, const float *pk,
                        size_t pkf, int pk_ok, const float *bias, int relu) {
    nn__wg_job j;
    j.k = k;
    j.ws = m->wk_ws;
    j.Tmax = Tmax;
    j.bs = bs;
    j.pkf = pkf;
    j.th = (size_t)(OH + 3) / 4;
    j.tw = (size_t)(OW + 3) / 4;
    j.nt = (size_t)n * j.th * j.tw;
    j.zeros = zeros;
    j.x = x;
    j.Bm = Bm;
    j.pk = pk;
    j.bias = bias;
    j.y = y;
    j.n = n;
    j.H = H;
    j.W = W;
    j.cin = cin;
    j.pt = pt;
    j.pl = pl;
    j.OH = OH;
    j.OW = OW;
    j.cout = cout;
    j.pk_ok = pk_ok;
    j.relu = relu;
    nn__par((int)((j.nt + Tmax - 1) / Tmax), nn__wg_chunk_task, &j, nn__mw(m));
}
/* U (36 points of cin x cout, us floats apart) of the filter w (3x3 taps of
 * cin x cout, row-major), one 3x3 of a (ci, vector of co) at a time */
static void nn__wg_filter(const nn__ktab *k, const float *w, int cin, int cout, float *U,
                          size_t us) {
    int ci, tap;
    for (ci = 0; ci < cin; ci++) {
        const float *g[9];
        for (tap = 0; tap < 9; tap++) g[tap] = w + ((size_t)tap * cin + ci) * cout;
        k->wg_w((size_t)cout, g, U + (size_t)ci * cout, us);
    }
}
static void nn__conv_fwd_wg(nn_model *m, nn__layer *L, const float *x, int B) {
    const nn__ktab *k = nn__k();
    int C = L->in.d[2], F = L->conv.filters, xi, ok = 1;
    size_t CF = (size_t)C * F, T = L->lp.tile_rows;
    nn__wg_mem r = nn__wg_regions(L, L->scratch, T);
    size_t us = r.us, pkf = r.pkf;
    float *zeros = r.zeros, *U = r.U, *pk = r.pk;
    const float *W = m->params + L->woff;
    nn__wg_filter(k, W, C, F, U, us);
    for (xi = 0; xi < 36; xi++)
        ok &= nn__gemm_prepack(0, (int)T, F, C, U + xi * us, F, pk + xi * pkf);
    nn__wg_conv(k, m, T, zeros, x, B, L->in.d[0], L->in.d[1], C, L->conv.g.pt, L->conv.g.pl,
                L->y, L->conv.g.oh, L->conv.g.ow, F, U, us, pk, pkf, ok, W + 9 * CF,
                L->act == NN_RELU);
    if (L->act != NN_RELU)
        nn__act_forward(m, L->act, L->slope, (size_t)B * L->conv.g.oh * L->conv.g.ow, (size_t)F, L->y);
}
/* the weight gradient's chunk: transforms of x and dy into V and G, then
 * dWh[xi] (+)= V[xi]^T G[xi] */
#define NN__WG_TGROUP 6
typedef struct nn__wgd_job {
    const nn__ktab *k;
    void *const *ws;
    const float *x, *dy, *zeros;
    const nn__layer *L;
    size_t Tmax, th, tw, t0, T, us;
    float *V, *G, *dWh;
} nn__wgd_job;
static void nn__wgd_in_task(void *ctx, int task, int w) {
    const nn__wgd_job *j = (const nn__wgd_job *)ctx;
    const nn__layer *L = j->L;
    size_t C = (size_t)L->in.d[2], F = (size_t)L->conv.filters, sv = nn__wg_st(j->T, C),
           sg = nn__wg_st(j->T, F), t, t1 = ((size_t)task + 1) * NN__WG_TGROUP;
    (void)w;
    for (t = (size_t)task * NN__WG_TGROUP; t < t1 && t < j->T; t++) {
        size_t tile = j->t0 + t, b = tile / (j->th * j->tw), r = tile % (j->th * j->tw);
        int ty = (int)(r / j->tw), tx = (int)(r % j->tw);
        const float *p[36], *g[16];
        nn__wg_ptrs(j->x, b, L->in.d[0], L->in.d[1], (int)C, 4 * ty - L->conv.g.pt,
                    4 * tx - L->conv.g.pl, 6, j->zeros, p);
        nn__wg_ptrs(j->dy, b, L->conv.g.oh, L->conv.g.ow, (int)F, 4 * ty, 4 * tx, 4, j->zeros, g);
        j->k->wg_in(C, p, j->V + t * C, sv);
        j->k->wg_dy(F, g, j->G + t * F, sg);
    }
}
static void nn__wgd_gemm_task(void *ctx, int xi, int w) {
    const nn__wgd_job *j = (const nn__wgd_job *)ctx;
    int C = j->L->in.d[2], F = j->L->conv.filters;
    size_t sv = nn__wg_st(j->T, (size_t)C), sg = nn__wg_st(j->T, (size_t)F);
    nn_sgemm_ws(1, 0, C, F, (int)j->T, 1.0f, j->V + (size_t)xi * sv, C, j->G + (size_t)xi * sg, F,
                j->t0 ? 1.0f : 0.0f, j->dWh + (size_t)xi * j->us, F,
                nn__ws_align(j->ws[w]) + nn__wg_vm(j->Tmax, (size_t)C, (size_t)F));
}
/* dW (9 C x F, then the bias row) by F(3x3,4x4) on the forward's tiles;
 * dx by F(4x4,3x3) with the filter flipped and its channels swapped */
static void nn__conv_bwd_wg(nn_model *m, nn__layer *L, const float *x, const float *dy, float *dx,
                            int B) {
    const nn__ktab *k = nn__k();
    int C = L->in.d[2], F = L->conv.filters, H = L->in.d[0], Wd = L->in.d[1], OH = L->conv.g.oh,
        OW = L->conv.g.ow, xi, ci, tap;
    size_t CF = (size_t)C * F, Tmax = L->lp.tile_rows;
    nn__wg_mem r = nn__wg_regions(L, L->scratch, Tmax);
    size_t us = r.us, pkf = r.pkf;
    float *zeros = r.zeros, *Ud = r.Ud, *Wt = r.Wt, *pk = r.pk, *dWh = r.dWh, *vm = r.vm,
          *dW = m->grads + L->woff;
    const float *W = m->params + L->woff;
    if (!L->frozen) {
        /* per chunk of tiles: the transforms (tasks: groups of tiles), then
         * the 36 products (tasks: points), each point's dWh summed over the
         * chunks in order whatever the thread count */
        nn__wgd_job j;
        size_t nt;
        j.k = k;
        j.ws = m->wk_ws;
        j.x = x;
        j.dy = dy;
        j.zeros = zeros;
        j.L = L;
        j.Tmax = Tmax;
        j.th = (size_t)(OH + 3) / 4;
        j.tw = (size_t)(OW + 3) / 4;
        j.V = vm;
        j.G = vm + 36 * nn__wg_st(Tmax, (size_t)C);
        j.dWh = dWh;
        j.us = us;
        nt = (size_t)B * j.th * j.tw;
        for (j.t0 = 0; j.t0 < nt; j.t0 += Tmax) {
            j.T = nt - j.t0 < Tmax ? nt - j.t0 : Tmax;
            nn__par((int)((j.T + NN__WG_TGROUP - 1) / NN__WG_TGROUP), nn__wgd_in_task, &j,
                    nn__mw(m));
            nn__par(36, nn__wgd_gemm_task, &j, nn__mw(m));
        }
        for (ci = 0; ci < C; ci++) {
            float *o[9];
            for (tap = 0; tap < 9; tap++) o[tap] = dW + ((size_t)tap * C + ci) * F;
            k->wg_wout((size_t)F, dWh + (size_t)ci * F, us, o);
        }
        nn__col_sums((size_t)B * OH * OW, (size_t)F, dy, dW + 9 * CF);
    }
    if (dx) {
        int ok = 1, f;
        size_t T = Tmax;
        for (tap = 0; tap < 9; tap++) /* Wt[tap] (F x C) = W[8 - tap]^T */
            for (ci = 0; ci < C; ci++)
                for (f = 0; f < F; f++)
                    Wt[((size_t)tap * F + f) * C + ci] = W[((size_t)(8 - tap) * C + ci) * F + f];
        nn__wg_filter(k, Wt, F, C, Ud, us);
        for (xi = 0; xi < 36; xi++)
            ok &= nn__gemm_prepack(0, (int)T, C, F, Ud + xi * us, C, pk + xi * pkf);
        nn__wg_conv(k, m, T, zeros, dy, B, OH, OW, F, 2 - L->conv.g.pt, 2 - L->conv.g.pl,
                    dx, H, Wd, C, Ud, us, pk, pkf, ok, NULL, 0);
    }
}

/* conv2d (NHWC): x (B,H,W,C), W (KH,KW,C,F), b (F) -> y (B,OH,OW,F) as
 * im2col tiles times W: rows of the col matrix are output pixels, so the
 * whole batch is one tall SGEMM, tiled to keep the col tile in L2. */
/* The col rows carry a trailing 1 and the weights (K, F) are followed by
 * the bias row, so y = col' W' adds the bias and dW' = col'^T dy yields
 * the bias gradient as its last row: no separate bias or column-sum pass. */
static void nn__conv_fwd(nn_model *m, nn__layer *L, const float *x, int B, int training) {
    nn_conv_geom g = L->conv.g;
    size_t rows = (size_t)B * g.oh * g.ow, K = (size_t)g.kh * g.kw * g.c, K1 = K + 1, r0;
    const float *W = m->params + L->woff; /* (K+1) x F with the bias as row K */
    int F = L->conv.filters;
    (void)training;
    if (L->conv.wino) {
        nn__conv_fwd_wg(m, L, x, B);
        return;
    }
    g.n = B;
    if (L->lp.colT) {
        nn__im2colT(&g, 0, rows, x, L->scratch, rows);
        nn__gemm_par(nn__k(), 1, 0, (int)rows, F, (int)K1, 1.0f, L->scratch, (int)rows, W, F, 0.0f,
                     L->y, F, m->wk_ws, nn__mw(m), NULL, L->act == NN_RELU, NULL);
        if (L->act != NN_RELU) nn__act_forward(m, L->act, L->slope, rows, (size_t)F, L->y);
        return;
    }
    for (r0 = 0; r0 < rows; r0 += L->lp.tile_rows) {
        size_t nr = rows - r0 < L->lp.tile_rows ? rows - r0 : L->lp.tile_rows;
        nn__im2col(&g, r0, nr, x, L->scratch, K1, 1);
        nn__mgemm_bias_act(m, 0, (int)nr, F, (int)K1, L->scratch, (int)K1, W, F, L->y + r0 * F, F, NULL,
                           L->act == NN_RELU);
    }
    if (L->act != NN_RELU) nn__act_forward(m, L->act, L->slope, rows, (size_t)F, L->y);
}
static void nn__conv_bwd(nn_model *m, nn__layer *L, const float *x, float *dy, float *dx, int B) {
    nn_conv_geom g = L->conv.g;
    size_t rows = (size_t)B * g.oh * g.ow, K = (size_t)g.kh * g.kw * g.c, K1 = K + 1, r0;
    const float *W = m->params + L->woff;
    float *col = L->scratch, *dcol = L->scratch + L->lp.tile_rows * K1;
    int F = L->conv.filters;
    g.n = B;
    if (!L->fz.act_by_next) nn__act_backward(m, L->act, L->slope, rows, (size_t)F, L->y, dy);
    if (L->conv.wino) {
        nn__conv_bwd_wg(m, L, x, dy, dx, B);
        return;
    }
    if (dx) memset(dx, 0, (size_t)B * L->in_dim * sizeof(float));
    for (r0 = 0; r0 < rows; r0 += L->lp.tile_rows) {
        size_t nr = rows - r0 < L->lp.tile_rows ? rows - r0 : L->lp.tile_rows;
        const float *dyt = dy + r0 * F;
        if (!L->frozen && L->lp.colT) { /* one tile: the forward's colT (K1 x rows) */
            nn__msgemm(m, 0, 0, (int)K1, F, (int)rows, 1.0f, col, (int)rows, dyt, F, 0.0f,
                        m->grads + L->woff, F);
        } else if (!L->frozen) {
            if (nr < rows)
                nn__im2col(&g, r0, nr, x, col, K1, 1); /* else the forward's col is still here */
            nn__msgemm(m, 1, 0, (int)K1, F, (int)nr, 1.0f, col, (int)K1, dyt, F,
                        r0 == 0 ? 0.0f : 1.0f, m->grads + L->woff, F);
        }
        if (dx) {
            nn__msgemm(m, 0, 1, (int)nr, (int)K, F, 1.0f, dyt, F, W, F, 0.0f, dcol, (int)K1);
            nn__col2im(&g, r0, nr, dcol, K1, dx);
        }
    }
}

static nn_status nn__conv_shape(nn_model *m, nn__layer *L, int idx, const char *sb) {
    nn_shape in = L->in;
    nn_status s;
    if (in.ndim != 3)
        return nn__fail(m, NN_ERR_SHAPE, "layer %d (conv2d): input %s is not an image (h,w,c)", idx,
                        sb);
    if (L->conv.filters <= 0 || L->conv.kh <= 0 || L->conv.kw <= 0 || L->conv.stride <= 0)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT,
                        "layer %d (conv2d): filters, kernel and stride must be > 0", idx);
    /* bounded before any size product can wrap */
    if (((double)L->conv.kh * L->conv.kw * in.d[2] + 1.0) * L->conv.filters > 1e9 ||
        (double)in.d[0] * in.d[1] * L->conv.filters > 1e9)
        return nn__fail(m, NN_ERR_SHAPE,
                        "layer %d (conv2d %d %dx%d on %s): over 1e9 parameters or outputs", idx,
                        L->conv.filters, L->conv.kh, L->conv.kw, sb);
    s = nn_conv_geom_init(&L->conv.g, 1, in.d[0], in.d[1], in.d[2], L->conv.kh, L->conv.kw,
                          L->conv.stride, L->conv.same);
    if (s != NN_OK)
        return nn__fail(
            m, s, "layer %d (conv2d %dx%d): kernel larger than its padded input %s (or padding over 1e6)",
            idx, L->conv.kh, L->conv.kw, sb);
    if ((double)L->conv.g.oh * L->conv.g.ow * L->conv.filters > 1e9)
        return nn__fail(m, NN_ERR_SHAPE, "layer %d (conv2d): the output (%d,%d,%d) is over 1e9", idx,
                        L->conv.g.oh, L->conv.g.ow, L->conv.filters);
    L->out = nn_shape3(L->conv.g.oh, L->conv.g.ow, L->conv.filters);
    L->nw = (size_t)L->conv.kh * L->conv.kw * in.d[2] * L->conv.filters;
    L->nb = (size_t)L->conv.filters;
    L->conv.wino = nn__wg_eligible(L);
    return NN_OK;
}
static void nn__conv_init(const nn__layer *L, float *w, float *buf, nn_rng *rng) {
    double taps = (double)L->conv.kh * L->conv.kw;
    (void)buf;
    nn__init_fan(L, w, taps * L->in.d[2], taps * L->conv.filters, rng);
}
/* Rows of a conv layer's im2col tile at batch B: ~512 KiB of col stays in
 * L2 while the SGEMM reuses it. */
static size_t nn__conv_tile_rows(const nn__layer *L, int B) {
    size_t K = (size_t)L->conv.kh * L->conv.kw * L->in.d[2] + 1,
           rows = (size_t)B * L->conv.g.oh * L->conv.g.ow;
    size_t tr = (size_t)131072 / K;
    /* up to 1 MiB: one tile for the whole batch, which the backward then
     * reuses instead of repeating im2col (the first conv of an MNIST CNN) */
    if (rows * K <= (size_t)262144) return rows;
    if (tr < 16) tr = 16;
    if (tr > rows) tr = rows;
    return tr;
}
/* im2col: two col tiles (col and its gradient); Winograd: nn__wg_mem.
 * The workspace covers both ways (nn_conv_winograd re-plans anyway). */
static size_t nn__cp_slices(const nn__layer *L);
static void nn__conv_plan(const nn_model *m, const nn__layer *L, int B, nn__lplan *lp, size_t *ws) {
    size_t K = (size_t)L->conv.kh * L->conv.kw * L->in.d[2] + 1, tr = nn__conv_tile_rows(L, B);
    int F = L->conv.filters;
    (void)m;
    if (L->conv.wino) {
        int T = (int)nn__wg_chunk(L, B), C = L->in.d[2];
        size_t g = 0;
        lp->tile_rows = (size_t)T;
        lp->scratch = nn__wg_regions(L, NULL, (size_t)T).total;
        /* a worker's block: its chunk (vm), then its SGEMM workspace */
        nn__ws_need(&g, T, F, C);
        nn__ws_need(&g, T, C, F);
        nn__ws_need(&g, C, F, T);
        g += 64 + nn__wg_vm((size_t)T, (size_t)C, (size_t)F) * sizeof(float);
        if (g > *ws) *ws = g;
    } else {
        size_t rows = (size_t)B * L->conv.g.oh * L->conv.g.ow;
        lp->tile_rows = tr;
        lp->colT = tr >= rows && L->in.d[2] < 4;
        /* col and its gradient; one tile for the batch: the per-image weight
         * gradients of the conv + pool path too (nn__pool_conv_bwd) */
        lp->scratch = 2 * tr * K + (tr >= rows ? (size_t)B * nn__cp_slices(L) * K * F : 0);
    }
    nn__ws_need(ws, (int)tr, F, (int)K);
    nn__ws_need(ws, (int)K, F, (int)tr);
    nn__ws_need(ws, (int)tr, (int)K, F);
}
static void nn__conv_save(const nn__layer *L, int32_t *set) {
    set[0] = L->conv.filters;
    set[1] = L->conv.kh;
    set[2] = L->conv.kw;
    set[3] = L->conv.stride;
    set[4] = L->conv.same;
    set[5] = L->nobias;
}
static nn_status nn__conv_load(nn_model *m, const int32_t *set, nn_activation act) {
    nn_status s = nn_conv2d_ex(m, set[0], set[1], set[2], set[3], set[4], act);
    return s == NN_OK && set[5] ? nn_use_bias(m, 0) : s;
}
static void nn__conv_describe(const nn__layer *L, nn_activation a, char *buf, size_t len) {
    char pad[24] = "";
    if (L->conv.same < 0) snprintf(pad, sizeof pad, " pad %d", -1 - L->conv.same);
    else if (L->conv.same) snprintf(pad, sizeof pad, " same");
    if (L->nobias) strncat(pad, " nobias", sizeof pad - strlen(pad) - 1);
    snprintf(buf, len, "conv2d %dx%d/%d%s %s", L->conv.kh, L->conv.kw, L->conv.stride, pad,
             nn__act_name(a));
}
/* weight (F, C, KH, KW) from nn.h's (KH, KW, C, F), and bias */
static int nn__conv_tensors(const nn__layer *L, nn__st_perm *p, nn__st_t *t) {
    size_t F = (size_t)L->conv.filters, C = nn__channels(L->in), KH = (size_t)L->conv.kh,
           KW = (size_t)L->conv.kw;
    int n = 0;
    nn__st_t *x = nn__st_add(t, &n, "weight", 0, L->woff, NN__STM_COPY);
    (void)p;
    nn__st_shape(x, 4, F, C, KH, KW);
    nn__st_iter(x, F, 1, C, F, KH, KW * C * F, KW, C * F);
    if (!L->nobias) nn__st_plain(nn__st_add(t, &n, "bias", 0, L->boff, NN__STM_COPY), F);
    return n;
}
static const nn__lkind nn__row_conv = {"conv2d", 6, nn__conv_shape, nn__conv_init, nn__conv_plan,
    nn__conv_fwd, nn__conv_bwd, nn__conv_save, nn__conv_load, nn__conv_describe, NULL, 5, nn__conv_tensors};

/* pooling, window = stride = pool, floor: x (B,H,W,C) -> y (B,H/p,W/p,C) */
/* 2x2 max pooling of images [b0, b0 + n): images are independent, and the
 * kept argmax is a window position (0..3), so any split is the same */
typedef struct nn__pool_job {
    const nn__layer *L;
    const float *x;
    const float *dy;
    float *dx;
} nn__pool_job;
static void nn__pool_fwd_range(void *ctx, size_t b0, size_t n) {
    const nn__pool_job *j = (const nn__pool_job *)ctx;
    const nn__layer *L = j->L;
    const float *x = j->x + b0 * L->in_dim;
    float *y = L->y + b0 * L->out_dim;
    if (L->idx_valid)
        nn__k()->maxpool_fi((int)n, L->in.d[0], L->in.d[1], L->in.d[2], x, y,
                            L->scratch + b0 * L->out_dim);
    else nn_maxpool2x2((int)n, L->in.d[0], L->in.d[1], L->in.d[2], x, y);
}
static void nn__pool_bwd_range(void *ctx, size_t b0, size_t n) {
    const nn__pool_job *j = (const nn__pool_job *)ctx;
    const nn__layer *L = j->L;
    const float *dy = j->dy + b0 * L->out_dim;
    float *dx = j->dx + b0 * L->in_dim;
    if (L->idx_valid)
        nn__k()->maxpool_bi((int)n, L->in.d[0], L->in.d[1], L->in.d[2],
                            L->scratch + b0 * L->out_dim, dy, dx);
    else
        nn_maxpool2x2_backward((int)n, L->in.d[0], L->in.d[1], L->in.d[2], j->x + b0 * L->in_dim,
                               L->y + b0 * L->out_dim, dy, dx);
}
static void nn__pool_fwd(nn_model *m, nn__layer *L, const float *x, int B, int training) {
    int H = L->in.d[0], Wd = L->in.d[1], C = L->in.d[2], p = L->pool.size, oh = L->out.d[0],
        ow = L->out.d[1], pad = L->pool.pad;
    int b, i, j, dy, dx, c;
    (void)m;
    (void)training;
    if (L->pool.max && p == 2 && !pad) {
        nn__pool_job j;
        L->idx_valid = training && L->scratch;
        j.L = L;
        j.x = x;
        nn__par_range(m, (size_t)B, nn__img_chunk(L->in_dim), nn__pool_fwd_range, &j);
        return;
    }
    /* the padding (PyTorch's): -inf for max, zeros counted by average */
    for (b = 0; b < B; b++)
        for (i = 0; i < oh; i++)
            for (j = 0; j < ow; j++) {
                float *o = L->y + (((size_t)b * oh + i) * ow + j) * C;
                for (c = 0; c < C; c++) o[c] = L->pool.max ? -INFINITY : 0.0f;
                for (dy = 0; dy < p; dy++)
                    for (dx = 0; dx < p; dx++) {
                        int yy = i * p + dy - pad, xx = j * p + dx - pad;
                        const float *s;
                        if (yy < 0 || yy >= H || xx < 0 || xx >= Wd) continue;
                        s = x + (((size_t)b * H + yy) * Wd + xx) * C;
                        for (c = 0; c < C; c++) {
                            if (!L->pool.max) o[c] += s[c];
                            else if (s[c] > o[c] || s[c] != s[c]) o[c] = s[c];
                        }
                    }
                if (!L->pool.max)
                    for (c = 0; c < C; c++) o[c] /= (float)p * (float)p;
            }
}
static void nn__pool_bwd(nn_model *m, nn__layer *L, const float *x, float *dyv, float *dxv, int B) {
    int H = L->in.d[0], Wd = L->in.d[1], C = L->in.d[2], p = L->pool.size, oh = L->out.d[0],
        ow = L->out.d[1], pad = L->pool.pad;
    int b, i, j, dy, dx, c;
    (void)m;
    if (!dxv) return;
    if (L->fz.relu_first) nn__relu_bwd_par(m, (size_t)B * L->out_dim, L->y, dyv);
    if (L->pool.max && p == 2 && !pad) {
        nn__pool_job j;
        j.L = L;
        j.x = x;
        j.dy = dyv;
        j.dx = dxv;
        nn__par_range(m, (size_t)B, nn__img_chunk(L->in_dim), nn__pool_bwd_range, &j);
        return;
    }
    memset(dxv, 0, (size_t)B * L->in_dim * sizeof(float));
    for (b = 0; b < B; b++)
        for (i = 0; i < oh; i++)
            for (j = 0; j < ow; j++) {
                size_t o = (((size_t)b * oh + i) * ow + j) * C;
                for (c = 0; c < C; c++) {
                    int done = 0;
                    for (dy = 0; dy < p && !done; dy++)
                        for (dx = 0; dx < p && !done; dx++) {
                            int yy = i * p + dy - pad, xx = j * p + dx - pad;
                            size_t s;
                            if (yy < 0 || yy >= H || xx < 0 || xx >= Wd) continue;
                            s = (((size_t)b * H + yy) * Wd + xx) * C + c;
                            if (!L->pool.max) dxv[s] = dyv[o + c] / ((float)p * (float)p);
                            else if (x[s] == L->y[o + c]) {
                                dxv[s] = dyv[o + c];
                                done = 1;
                            }
                        }
                }
            }
}

static nn_status nn__pool_shape(nn_model *m, nn__layer *L, int idx, const char *sb) {
    nn_shape in = L->in;
    if (in.ndim != 3)
        return nn__fail(m, NN_ERR_SHAPE, "layer %d (%s): input %s is not an image (h,w,c)", idx,
                        L->k->name, sb);
    if (L->pool.pad < 0 || L->pool.pad > L->pool.size / 2)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT,
                        "layer %d (%s %d): padding %d is not in [0, size/2] (PyTorch's rule)", idx,
                        L->k->name, L->pool.size, L->pool.pad);
    /* a window reaches past the image by the padding at most: no larger
     * than the image then (a hostile file's 2^30 window would loop 2^60 times) */
    if (L->pool.size <= 0 || L->pool.size > in.d[0] || L->pool.size > in.d[1] ||
        (long long)L->pool.size > (long long)in.d[0] + 2LL * L->pool.pad)
        return nn__fail(m, NN_ERR_SHAPE, "layer %d (%s %d): pool size does not fit input %s", idx,
                        L->k->name, L->pool.size, sb);
    L->out = nn_shape3((int)(((long long)in.d[0] + 2LL * L->pool.pad) / L->pool.size),
                       (int)(((long long)in.d[1] + 2LL * L->pool.pad) / L->pool.size), in.d[2]);
    return NN_OK;
}
/* max-pool 2x2: the argmax of each window (its backward reads no input) */
static void nn__pool_plan(const nn_model *m, const nn__layer *L, int B, nn__lplan *lp, size_t *ws) {
    (void)m;
    (void)ws;
    if (L->pool.max && L->pool.size == 2 && !L->pool.pad) lp->scratch = (size_t)B * L->out_dim;
}
static void nn__pool_save(const nn__layer *L, int32_t *set) {
    set[0] = L->pool.size;
    set[1] = L->pool.pad;
}
static nn_status nn__maxpool_load(nn_model *m, const int32_t *set, nn_activation act) {
    (void)act;
    return nn_maxpool2d_ex(m, set[0], set[1]);
}
static nn_status nn__avgpool_load(nn_model *m, const int32_t *set, nn_activation act) {
    (void)act;
    return nn_avgpool2d_ex(m, set[0], set[1]);
}
static void nn__pool_describe(const nn__layer *L, nn_activation a, char *buf, size_t len) {
    (void)a;
    if (L->pool.pad) snprintf(buf, len, "%s %d pad %d", L->k->name, L->pool.size, L->pool.pad);
    else snprintf(buf, len, "%s %d", L->k->name, L->pool.size);
}
static const nn__lkind nn__row_maxpool = {"maxpool2d", 2, nn__pool_shape, NULL, nn__pool_plan,
    nn__pool_fwd, nn__pool_bwd, nn__pool_save, nn__maxpool_load, nn__pool_describe, NULL, 1, NULL};
static const nn__lkind nn__row_avgpool = {"avgpool2d", 2, nn__pool_shape, NULL, nn__pool_plan,
    nn__pool_fwd, nn__pool_bwd, nn__pool_save, nn__avgpool_load, nn__pool_describe, NULL, 1, NULL};

/* global average pooling (Keras GlobalAveragePooling2D, PyTorch
 * AdaptiveAvgPool2d(1) + flatten): x (B,H,W,C) -> y (B,C) */
static nn_status nn__gap_shape(nn_model *m, nn__layer *L, int idx, const char *sb) {
    if (L->in.ndim != 3)
        return nn__fail(m, NN_ERR_SHAPE,
                        "layer %d (global_avgpool2d): input %s is not an image (h,w,c)", idx, sb);
    L->out = nn_shape1(L->in.d[2]);
    return NN_OK;
}
static void nn__gap_fwd(nn_model *m, nn__layer *L, const float *x, int B, int training) {
    (void)m;
    (void)training;
    nn__k()->gap((size_t)B, (size_t)L->in.d[0] * L->in.d[1], (size_t)L->in.d[2], x, L->y);
}
static void nn__gap_bwd(nn_model *m, nn__layer *L, const float *x, float *dy, float *dx, int B) {
    (void)m;
    (void)x;
    if (dx)
        nn__k()->gap_bwd((size_t)B, (size_t)L->in.d[0] * L->in.d[1], (size_t)L->in.d[2], dy, dx);
}
static void nn__none_save(const nn__layer *L, int32_t *set) {
    (void)L;
    (void)set;
}
static nn_status nn__gap_load(nn_model *m, const int32_t *set, nn_activation act) {
    (void)set;
    (void)act;
    return nn_global_avgpool2d(m);
}
static const nn__lkind nn__row_gap = {"global_avgpool2d", 0, nn__gap_shape, NULL, NULL, nn__gap_fwd,
    nn__gap_bwd, nn__none_save, nn__gap_load, nn__desc_plain, NULL, 0, NULL};

/* conv (im2col, ReLU) then max-pool 2x2, image by image: the conv output
 * of one image (in the first image's slot of its y) is pooled while it is
 * in L2, so the largest tensor of an MNIST CNN (the first conv's output,
 * 2.8 MB at batch 32) is never written out; the col matrix is still kept
 * whole for the backward, which needs neither the conv output (the pool
 * applies ReLU' and keeps the argmax) nor any other.  The conv layer's y
 * then holds no batch (nn__first_nonfinite_layer skips it).  0 when the
 * layer does not qualify (Winograd, col not kept, big images). */
/* Images are the tasks: worker w computes an image's conv output in slot w
 * of the conv's y (so at most B workers) with its own SGEMM workspace. */
typedef struct nn__cp_job {
    const nn_model *m;
    nn__layer *L, *P;
    const float *x;
    float *dyp, *part;
    size_t nsl; /* partials per image (nn__cp_slices) */
    int B;
} nn__cp_job;
/* workers for the images: at most one per image (slots of y), and one
 * alone when the whole batch is a small product */
static int nn__cp_workers(const nn_model *m, const nn__layer *L, int B) {
    double fma = (double)B * L->conv.g.oh * L->conv.g.ow * L->conv.filters *
                 ((double)L->conv.g.kh * L->conv.g.kw * L->conv.g.c + 1);
    if (fma < NN__GEMM_PAR_MIN) return 1;
    return nn__mw(m) < B ? nn__mw(m) : B;
}
static void nn__cp_fwd_task(void *ctx, int bi, int w) {
    const nn__cp_job *j = (const nn__cp_job *)ctx;
    nn__layer *L = j->L, *P = j->P;
    nn_conv_geom g = L->conv.g;
    size_t ohw = (size_t)g.oh * g.ow, K1 = (size_t)g.kh * g.kw * g.c + 1, b = (size_t)bi;
    const float *W = j->m->params + L->woff;
    int F = L->conv.filters;
    float *py = P->y + b * P->out_dim, *cy = L->y + (size_t)w * ohw * (size_t)F,
          *ws = nn__ws_align(j->m->wk_ws[w]);
    g.n = j->B;
    if (L->lp.colT) { /* columns [b ohw, (b+1) ohw) of the batch's colT */
        nn__im2colT(&g, b * ohw, ohw, j->x, L->scratch, (size_t)j->B * ohw);
        nn__gemm_run(nn__k(), 1, 0, (int)ohw, F, (int)K1, 1.0f, L->scratch + b * ohw,
                     j->B * (int)ohw, W, F, 0.0f, cy, F, ws, NULL, 1, NULL);
    } else {
        float *col = L->scratch + b * ohw * K1;
        nn__im2col(&g, b * ohw, ohw, j->x, col, K1, 1);
        nn__gemm_run(nn__k(), 0, 0, (int)ohw, F, (int)K1, 1.0f, col, (int)K1, W, F, 0.0f, cy, F,
                     ws, NULL, 1, NULL);
    }
    if (P->idx_valid) nn__k()->maxpool_fi(1, g.oh, g.ow, F, cy, py, P->scratch + b * P->out_dim);
    else nn_maxpool2x2(1, g.oh, g.ow, F, cy, py);
}
static int nn__conv_pool_fwd(nn_model *m, nn__layer *L, nn__layer *P, const float *x, int B) {
    size_t ohw = (size_t)L->conv.g.oh * L->conv.g.ow;
    nn__cp_job j;
    if (L->conv.wino || L->lp.tile_rows < (size_t)B * ohw || ohw * (size_t)L->conv.filters > 65536)
        return 0;
    /* the argmax even when not training: the conv output is gone, and a
     * backward after an inference-mode forward must still find the max */
    P->idx_valid = P->scratch != NULL;
    j.m = m;
    j.L = L;
    j.P = P;
    j.x = x;
    j.B = B;
    nn__par(B, nn__cp_fwd_task, &j, nn__cp_workers(m, L, B));
    return 1;
}
/* The backward of that pair when the conv is the first layer (no dx):
 * image by image, the pool's gradient is scattered into the conv output's
 * slot (L2) and multiplied with the kept col rows at once, so the conv
 * output's gradient (as big as the output) is never stored either.  Each
 * image's weight gradient is its own (a task's); they are summed in image
 * order afterwards, as the one-thread loop accumulated them. */
/* The K slices of an image's weight gradient (K1 x F over ohw pixels) as
 * the SGEMM driver cuts them: one partial per slice keeps the sums of the
 * one-thread loop exactly (it added slice after slice into dW). */
static int nn__cp_kblk(const nn__ktab *t, const nn__layer *L) {
    int K1 = L->conv.kh * L->conv.kw * L->conv.g.c + 1, ohw = L->conv.g.oh * L->conv.g.ow;
    return nn__gemm_inplace(t, 0, K1, L->conv.filters, L->conv.filters) ? ohw
                                                                        : nn__gemm_kc(t, K1, ohw);
}
static size_t nn__cp_slices(const nn__layer *L) { /* the most of any backend built in */
    size_t most = 1, ohw = (size_t)L->conv.g.oh * L->conv.g.ow;
    int b;
    for (b = (int)NN_BACKEND_AUTO + 1; b < (int)NN_BACKEND_COUNT; b++) {
        const nn__ktab *t = nn__table_built((nn_backend)b);
        size_t k = t ? (size_t)nn__cp_kblk(t, L) : ohw, sl = (ohw + k - 1) / k;
        if (sl > most) most = sl;
    }
    return most;
}
static void nn__cp_bwd_task(void *ctx, int bi, int w) {
    const nn__cp_job *j = (const nn__cp_job *)ctx;
    const nn__ktab *t = nn__k();
    nn__layer *L = j->L, *P = j->P;
    nn_conv_geom g = L->conv.g;
    size_t ohw = (size_t)g.oh * g.ow, K1 = (size_t)g.kh * g.kw * g.c + 1, b = (size_t)bi, p0;
    int F = L->conv.filters, kblk = nn__cp_kblk(t, L);
    float *cy = L->y + (size_t)w * ohw * (size_t)F, *ws = nn__ws_align(j->m->wk_ws[w]),
          *part = j->part + b * j->nsl * K1 * (size_t)F;
    t->maxpool_bi(1, g.oh, g.ow, F, P->scratch + b * P->out_dim, j->dyp + b * P->out_dim, cy);
    for (p0 = 0; p0 < ohw; p0 += (size_t)kblk, part += K1 * (size_t)F) {
        int kc = ohw - p0 < (size_t)kblk ? (int)(ohw - p0) : kblk;
        if (L->lp.colT)
            nn__gemm_run(t, 0, 0, (int)K1, F, kc, 1.0f, L->scratch + b * ohw + p0,
                         j->B * (int)ohw, cy + p0 * F, F, 0.0f, part, F, ws, NULL, 0, NULL);
        else
            nn__gemm_run(t, 1, 0, (int)K1, F, kc, 1.0f, L->scratch + (b * ohw + p0) * K1, (int)K1,
                         cy + p0 * F, F, 0.0f, part, F, ws, NULL, 0, NULL);
    }
}
static int nn__pool_conv_bwd(nn_model *m, nn__layer *L, nn__layer *P, float *dyp, int B) {
    nn_conv_geom g = L->conv.g;
    size_t ohw = (size_t)g.oh * g.ow, K1 = (size_t)g.kh * g.kw * g.c + 1, n = K1 * L->conv.filters,
           b, i, sl;
    float *dW = m->grads + L->woff;
    nn__cp_job j;
    if (!P->idx_valid || L->conv.wino || L->lp.tile_rows < (size_t)B * ohw ||
        ohw * (size_t)L->conv.filters > 65536)
        return 0;
    nn__relu_bwd_par(m, (size_t)B * P->out_dim, P->y, dyp); /* ReLU' on the pooled gradient */
    if (L->frozen) return 1;
    j.m = m;
    j.L = L;
    j.P = P;
    j.dyp = dyp;
    j.B = B;
    j.part = L->scratch + 2 * L->lp.tile_rows * K1; /* the partials (nn__conv_plan) */
    j.nsl = nn__cp_slices(L);
    nn__par(B, nn__cp_bwd_task, &j, nn__cp_workers(m, L, B));
    {
        /* image by image, slice by slice: the one-thread order */
        size_t kblk = (size_t)nn__cp_kblk(nn__k(), L), used = (ohw + kblk - 1) / kblk;
        memcpy(dW, j.part, n * sizeof(float));
        for (b = 0; b < (size_t)B; b++)
            for (sl = b ? 0 : 1; sl < used; sl++) {
                const float *p = j.part + (b * j.nsl + sl) * n;
                for (i = 0; i < n; i++) dW[i] += p[i];
            }
    }
    return 1;
}
static void nn__copy_fwd(nn_model *m, nn__layer *L, const float *x, int B, int training) {
    (void)m;
    (void)training;
    memcpy(L->y, x, (size_t)B * L->out_dim * sizeof(float));
    nn__act_forward(m, L->act, L->slope, (size_t)B * (L->out_dim / nn__channels(L->out)),
                    nn__channels(L->out), L->y);
}
static void nn__copy_bwd(nn_model *m, nn__layer *L, const float *x, float *dy, float *dx, int B) {
    (void)m;
    (void)x;
    nn__act_backward(m, L->act, L->slope, (size_t)B * (L->out_dim / nn__channels(L->out)),
                     nn__channels(L->out), L->y, dy);
    if (dx) memcpy(dx, dy, (size_t)B * L->in_dim * sizeof(float));
}

static nn_status nn__flatten_shape(nn_model *m, nn__layer *L, int idx, const char *sb) {
    (void)m;
    (void)idx;
    (void)sb;
    L->out = nn_shape1((int)L->in_dim);
    return NN_OK;
}
static nn_status nn__same_shape(nn_model *m, nn__layer *L, int idx, const char *sb) {
    (void)m;
    (void)idx;
    (void)sb;
    L->out = L->in;
    return NN_OK;
}
static nn_status nn__flatten_load(nn_model *m, const int32_t *set, nn_activation act) {
    (void)set;
    (void)act;
    return nn_flatten(m);
}
static nn_status nn__act_load(nn_model *m, const int32_t *set, nn_activation act) {
    (void)set;
    return nn_activation_layer(m, act);
}
/* a head fused after a flatten belongs to the loss: the name alone */
static void nn__flatten_describe(const nn__layer *L, nn_activation a, char *buf, size_t len) {
    (void)a;
    snprintf(buf, len, "%s", L->k->name);
}
static const nn__lkind nn__row_flatten = {"flatten", 0, nn__flatten_shape, NULL, NULL, nn__copy_fwd,
    nn__copy_bwd, nn__none_save, nn__flatten_load, nn__flatten_describe, NULL, 0, NULL};
static const nn__lkind nn__row_act = {"activation", 0, nn__same_shape, NULL, NULL, nn__copy_fwd,
    nn__copy_bwd, nn__none_save, nn__act_load, nn__desc_act, NULL, 0, NULL};

/* inverted dropout: y = x * mask / (1 - rate) in training, y = x otherwise */
static void nn__dropout_fwd(nn_model *m, nn__layer *L, const float *x, int B, int training) {
    size_t n = (size_t)B * L->out_dim, i;
    float keep = 1.0f - L->drop.rate, inv = keep > 0.0f ? 1.0f / keep : 0.0f;
    if (!training || L->drop.rate <= 0.0f) {
        memcpy(L->y, x, n * sizeof(float));
        for (i = 0; i < n; i++) L->scratch[i] = 1.0f;
        return;
    }
    for (i = 0; i < n; i++) L->scratch[i] = nn_rng_uniform(&m->rng) < L->drop.rate ? 0.0f : inv;
    nn__k()->mul(n, x, L->scratch, L->y);
}
static void nn__dropout_bwd(nn_model *m, nn__layer *L, const float *x, float *dy, float *dx,
                            int B) {
    (void)m;
    (void)x;
    if (dx) nn__k()->mul((size_t)B * L->out_dim, dy, L->scratch, dx);
}

static void nn__dropout_plan(const nn_model *m, const nn__layer *L, int B, nn__lplan *lp,
                             size_t *ws) {
    (void)m;
    (void)ws;
    lp->scratch = (size_t)B * L->out_dim; /* the mask */
}
static void nn__dropout_save(const nn__layer *L, int32_t *set) {
    memcpy(&set[0], &L->drop.rate, 4);
}
static nn_status nn__dropout_load(nn_model *m, const int32_t *set, nn_activation act) {
    float rate;
    (void)act;
    memcpy(&rate, &set[0], 4);
    return nn_dropout(m, rate);
}
static void nn__dropout_describe(const nn__layer *L, nn_activation a, char *buf, size_t len) {
    (void)a;
    snprintf(buf, len, "dropout %.2f", (double)L->drop.rate);
}
static const nn__lkind nn__row_dropout = {"dropout", 1, nn__same_shape, NULL, nn__dropout_plan,
    nn__dropout_fwd, nn__dropout_bwd, nn__dropout_save, nn__dropout_load, nn__dropout_describe,
    NULL, 1, NULL};

/* batch norm over the last dimension (features, or channels of NHWC):
 * rows = B * spatial.  scratch: xhat (rows x C), mean (C), invstd (C). */
#define NN__BN_MOMENTUM 0.1f
#define NN__BN_EPS 1e-5f
static void nn__bn_fwd(nn_model *m, nn__layer *L, const float *x, int B, int training) {
    size_t C = nn__channels(L->in), rows = (size_t)B * (L->in_dim / C), r, c;
    const float *gamma = m->params + L->woff, *beta = m->params + L->boff;
    float *rm = m->bufs + L->bufoff, *rv = rm + C;
    float *xhat = L->scratch, *mean = xhat + (size_t)m->arena_batch * L->in_dim, *istd = mean + C;
    if (training) {
        /* mean and biased variance per channel, accumulated in double */
        for (c = 0; c < C; c++) {
            double s = 0.0, s2 = 0.0, mu;
            for (r = 0; r < rows; r++) s += x[r * C + c];
            mu = s / (double)rows;
            for (r = 0; r < rows; r++) {
                double d = x[r * C + c] - mu;
                s2 += d * d;
            }
            mean[c] = (float)mu;
            istd[c] = (float)(1.0 / sqrt(s2 / (double)rows + NN__BN_EPS));
            rm[c] = (1.0f - NN__BN_MOMENTUM) * rm[c] + NN__BN_MOMENTUM * (float)mu;
            /* unbiased variance, as torch */
            rv[c] = (1.0f - NN__BN_MOMENTUM) * rv[c] +
                    NN__BN_MOMENTUM * (float)(rows > 1 ? s2 / (double)(rows - 1) : s2);
        }
    } else {
        for (c = 0; c < C; c++) {
            mean[c] = rm[c];
            istd[c] = 1.0f / sqrtf(rv[c] + NN__BN_EPS);
        }
    }
    for (r = 0; r < rows; r++)
        for (c = 0; c < C; c++) {
            float h = (x[r * C + c] - mean[c]) * istd[c];
            xhat[r * C + c] = h;
            L->y[r * C + c] = gamma[c] * h + beta[c];
        }
    nn__act_forward(m, L->act, L->slope, rows, C, L->y);
}
static void nn__bn_bwd(nn_model *m, nn__layer *L, const float *x, float *dy, float *dx, int B) {
    size_t C = nn__channels(L->in), rows = (size_t)B * (L->in_dim / C), r, c;
    const float *gamma = m->params + L->woff;
    float *xhat = L->scratch, *istd = xhat + (size_t)m->arena_batch * L->in_dim + C;
    float *dg = m->grads + L->woff, *db = m->grads + L->boff;
    (void)x;
    nn__act_backward(m, L->act, L->slope, rows, C, L->y, dy);
    for (c = 0; c < C; c++) {
        double sg = 0.0, sb = 0.0;
        for (r = 0; r < rows; r++) {
            sg += (double)dy[r * C + c] * xhat[r * C + c];
            sb += dy[r * C + c];
        }
        if (!L->frozen) {
            dg[c] = (float)sg;
            db[c] = (float)sb;
        }
        if (dx && !L->fwd_training) { /* running statistics: a fixed affine map */
            float k = gamma[c] * istd[c];
            for (r = 0; r < rows; r++) dx[r * C + c] = k * dy[r * C + c];
        } else if (dx) {
            float k = gamma[c] * istd[c] / (float)rows, fsb = (float)sb, fsg = (float)sg;
            for (r = 0; r < rows; r++)
                dx[r * C + c] = k * ((float)rows * dy[r * C + c] - fsb - xhat[r * C + c] * fsg);
        }
    }
}

static nn_status nn__bn_shape(nn_model *m, nn__layer *L, int idx, const char *sb) {
    (void)m;
    (void)idx;
    (void)sb;
    L->out = L->in;
    L->nw = L->nb = nn__channels(L->in);
    L->nbuf = 2 * L->nb; /* running mean, running variance */
    return NN_OK;
}
/* gamma 1, beta 0; running mean 0, running variance 1 */
static void nn__bn_init(const nn__layer *L, float *w, float *buf, nn_rng *rng) {
    size_t j;
    (void)rng;
    for (j = 0; j < L->nw; j++) {
        w[j] = 1.0f;
        buf[j] = 0.0f;
        buf[L->nw + j] = 1.0f;
    }
}
static void nn__bn_plan(const nn_model *m, const nn__layer *L, int B, nn__lplan *lp, size_t *ws) {
    (void)m;
    (void)ws;
    lp->scratch = (size_t)B * L->in_dim + 2 * nn__channels(L->in);
}
static nn_status nn__bn_load(nn_model *m, const int32_t *set, nn_activation act) {
    (void)set;
    (void)act;
    return nn_batchnorm(m);
}
/* weight, bias, running_mean, running_var, num_batches_tracked (BatchNorm1d/2d) */
static int nn__bn_tensors(const nn__layer *L, nn__st_perm *p, nn__st_t *t) {
    size_t C = L->nw;
    int n = 0;
    nn__st_vec(nn__st_add(t, &n, "weight", 0, L->woff, NN__STM_COPY), C, p);
    nn__st_vec(nn__st_add(t, &n, "bias", 0, L->boff, NN__STM_COPY), C, p);
    nn__st_vec(nn__st_add(t, &n, "running_mean", 1, L->bufoff, NN__STM_COPY), C, p);
    nn__st_vec(nn__st_add(t, &n, "running_var", 1, L->bufoff + C, NN__STM_COPY), C, p);
    nn__st_shape(nn__st_add(t, &n, "num_batches_tracked", 0, 0, NN__STM_STEPS), 0, 1, 1, 1, 1);
    return n;
}
static const nn__lkind nn__row_bn = {"batchnorm", 0, nn__bn_shape, nn__bn_init, nn__bn_plan,
    nn__bn_fwd, nn__bn_bwd, nn__none_save, nn__bn_load, nn__desc_plain, NULL, 0, nn__bn_tensors};

/* Keras Normalization: y = (x - mean) / max(sqrt(var), 1e-7) per feature
 * (the last dimension), mean and var set by nn_normalization_adapt and
 * saved with the model; dx = dy / max(sqrt(var), 1e-7).  Scratch: the C
 * denominators of the last forward. */
#define NN__NORM_EPS 1e-7f
static nn_status nn__norm_shape(nn_model *m, nn__layer *L, int idx, const char *sb) {
    (void)m;
    (void)idx;
    (void)sb;
    L->out = L->in;
    L->nbuf = 2 * nn__channels(L->in); /* mean, variance */
    return NN_OK;
}
static void nn__norm_init(const nn__layer *L, float *w, float *buf, nn_rng *rng) {
    size_t j, C = L->nbuf / 2;
    (void)w;
    (void)rng;
    for (j = 0; j < C; j++) {
        buf[j] = 0.0f;
        buf[C + j] = 1.0f;
    }
}
static void nn__norm_plan(const nn_model *m, const nn__layer *L, int B, nn__lplan *lp, size_t *ws) {
    (void)m;
    (void)B;
    (void)ws;
    lp->scratch = nn__channels(L->in);
}
static void nn__norm_fwd(nn_model *m, nn__layer *L, const float *x, int B, int training) {
    size_t C = nn__channels(L->in), rows = (size_t)B * (L->in_dim / C), r, c;
    const float *mean = m->bufs + L->bufoff, *var = mean + C;
    float *d = L->scratch;
    (void)training;
    for (c = 0; c < C; c++) {
        d[c] = sqrtf(var[c]);
        if (!(d[c] >= NN__NORM_EPS)) d[c] = NN__NORM_EPS;
    }
    for (r = 0; r < rows; r++)
        for (c = 0; c < C; c++) L->y[r * C + c] = (x[r * C + c] - mean[c]) / d[c];
    nn__act_forward(m, L->act, L->slope, rows, C, L->y);
}
static void nn__norm_bwd(nn_model *m, nn__layer *L, const float *x, float *dy, float *dx, int B) {
    size_t C = nn__channels(L->in), rows = (size_t)B * (L->in_dim / C), r, c;
    (void)m;
    (void)x;
    nn__act_backward(m, L->act, L->slope, rows, C, L->y, dy);
    if (!dx) return;
    for (r = 0; r < rows; r++)
        for (c = 0; c < C; c++) dx[r * C + c] = dy[r * C + c] / L->scratch[c];
}
static nn_status nn__norm_load(nn_model *m, const int32_t *set, nn_activation act) {
    (void)set;
    (void)act;
    return nn_normalization(m);
}
/* mean, variance (Keras names: PyTorch has no such layer) */
static int nn__norm_tensors(const nn__layer *L, nn__st_perm *p, nn__st_t *t) {
    size_t C = L->nbuf / 2;
    int n = 0;
    nn__st_vec(nn__st_add(t, &n, "mean", 1, L->bufoff, NN__STM_COPY), C, p);
    nn__st_vec(nn__st_add(t, &n, "variance", 1, L->bufoff + C, NN__STM_COPY), C, p);
    return n;
}
static const nn__lkind nn__row_norm = {"normalization", 0, nn__norm_shape, nn__norm_init,
    nn__norm_plan, nn__norm_fwd, nn__norm_bwd, nn__none_save, nn__norm_load, nn__desc_plain, NULL, 0, nn__norm_tensors};

/* upsampling: x (B,H,W,C) -> y (B,H*f,W*f,C), each pixel copied to an
 * f x f block; backward sums the block */
static void nn__up_fwd(nn_model *m, nn__layer *L, const float *x, int B, int training) {
    int H = L->in.d[0], Wd = L->in.d[1], C = L->in.d[2], f = L->up.factor, b, i, j, di, dj;
    size_t cs = (size_t)C * sizeof(float);
    (void)m;
    (void)training;
    for (b = 0; b < B; b++)
        for (i = 0; i < H; i++)
            for (j = 0; j < Wd; j++) {
                const float *s = x + (((size_t)b * H + i) * Wd + j) * C;
                for (di = 0; di < f; di++)
                    for (dj = 0; dj < f; dj++)
                        memcpy(L->y + (((size_t)b * H * f + (size_t)i * f + di) * Wd * f +
                                       (size_t)j * f + dj) *
                                          C,
                               s, cs);
            }
    nn__act_forward(m, L->act, L->slope, (size_t)B * L->out_dim / C, (size_t)C, L->y);
}
static void nn__up_bwd(nn_model *m, nn__layer *L, const float *x, float *dy, float *dx, int B) {
    int H = L->in.d[0], Wd = L->in.d[1], C = L->in.d[2], f = L->up.factor, b, i, j, di, dj;
    const nn__ktab *k = nn__k();
    (void)m;
    (void)x;
    nn__act_backward(m, L->act, L->slope, (size_t)B * L->out_dim / C, (size_t)C, L->y, dy);
    if (!dx) return;
    memset(dx, 0, (size_t)B * L->in_dim * sizeof(float));
    for (b = 0; b < B; b++)
        for (i = 0; i < H; i++)
            for (j = 0; j < Wd; j++) {
                float *d = dx + (((size_t)b * H + i) * Wd + j) * C;
                for (di = 0; di < f; di++)
                    for (dj = 0; dj < f; dj++)
                        k->add((size_t)C, d,
                               dy + (((size_t)b * H * f + (size_t)i * f + di) * Wd * f +
                                     (size_t)j * f + dj) *
                                        C,
                               d);
            }
}

static nn_status nn__up_shape(nn_model *m, nn__layer *L, int idx, const char *sb) {
    nn_shape in = L->in;
    int f = L->up.factor;
    if (in.ndim != 3)
        return nn__fail(m, NN_ERR_SHAPE, "layer %d (upsample2d): input %s is not an image (h,w,c)",
                        idx, sb);
    if (f < 1 || (double)in.d[0] * f * in.d[1] * f * in.d[2] > 1e9)
        return nn__fail(m, NN_ERR_SHAPE,
                        "layer %d (upsample2d %d): factor must be >= 1 and the output fit", idx, f);
    L->out = nn_shape3(in.d[0] * f, in.d[1] * f, in.d[2]);
    return NN_OK;
}
static void nn__up_save(const nn__layer *L, int32_t *set) { set[0] = L->up.factor; }
static nn_status nn__up_load(nn_model *m, const int32_t *set, nn_activation act) {
    (void)act;
    return nn_upsample2d(m, set[0]);
}
static void nn__up_describe(const nn__layer *L, nn_activation a, char *buf, size_t len) {
    (void)a;
    snprintf(buf, len, "%s %d", L->k->name, L->up.factor);
}
static const nn__lkind nn__row_up = {"upsample2d", 1, nn__up_shape, NULL, NULL, nn__up_fwd,
    nn__up_bwd, nn__up_save, nn__up_load, nn__up_describe, NULL, 1, NULL};

/* ---- sequences: embedding and recurrent layers ------------------------------
 * Tensors are (B, T, X) row-major: row b*T + t.  Scratch of a recurrent
 * layer (units H, gates G = 1, 4 or 3 H wide):
 *   gates  B*T*G     post-activation gates (pre-activations computed in place)
 *   hs     B*(T+1)*H hidden states, step 0 = initial state
 *   cs     B*(T+1)*H cell states (LSTM only), tanh(c) in tc (B*T*H)
 *   hp     B*T*G     GRU: the recurrent products W_h h + b_h of every step;
 *                    backward overwrites each with its gradient
 *   dg     B*T*G     gradients of the pre-activations (backward)
 *   dh, dc B*H       gradients flowing to the previous step
 *   st_h, st_c B*H   carried state for nn_predict_stateful
 *   hprev  B*T*(F+H) rows [x | h_{t-1}] for the weight gradients
 *   pwh, pwht        W_h and W_h^T packed once per pass */
enum { NN__RNN = 1, NN__LSTM, NN__GRU };
static size_t nn__rnn_gw(const nn__layer *L) {
    return (size_t)L->rnn.units * (L->rnn.cell == NN__LSTM ? 4 : L->rnn.cell == NN__GRU ? 3 : 1);
}
static size_t nn__rnn_scratch(const nn__layer *L, size_t B) {
    size_t T = (size_t)L->in.d[0], H = (size_t)L->rnn.units, G = nn__rnn_gw(L);
    return 3 * B * T * G + 2 * B * (T + 1) * H + B * T * H + B * T * ((size_t)L->in.d[1] + H) +
           2 * B * H + 2 * B * H + nn__gemm_prepack_floats((int)G, (int)H) +
           nn__gemm_prepack_floats((int)H, (int)G) + 64;
}
typedef struct nn__rnn_buf {
    float *gates, *hs, *cs, *tc, *hp, *dg, *dh, *dc, *st_h, *st_c, *pwh, *pwht, *hprev;
} nn__rnn_buf;
static nn__rnn_buf nn__rnn_bufs(const nn_model *m, const nn__layer *L) {
    size_t B = (size_t)m->arena_batch, T = (size_t)L->in.d[0], H = (size_t)L->rnn.units,
           G = nn__rnn_gw(L);
    nn__rnn_buf r;
    float *p = L->scratch;
    r.gates = p, p += B * T * G;
    r.hp = p, p += B * T * G;
    r.dg = p, p += B * T * G;
    r.hs = p, p += B * (T + 1) * H;
    r.cs = p, p += B * (T + 1) * H;
    r.tc = p, p += B * T * H;
    r.hprev = p,
    p += B * T * ((size_t)L->in.d[1] + H); /* [x | h_{t-1}] of every (b, t), in x's row order */
    r.dh = p, p += B * H;
    r.dc = p, p += B * H;
    r.st_h = p, p += B * H;
    r.st_c = p, p += B * H;
    r.pwh = p, p += nn__gemm_prepack_floats((int)G, (int)H); /* W_h packed for h W_h      */
    r.pwht = p;                                            /* W_h^T packed for dq W_h^T */
    return r;
}

/* x (B,T,F) -> y (B,T,H) or (B,H) */
static void nn__rnn_fwd(nn_model *m, nn__layer *L, const float *x, int B, int training) {
    const nn__ktab *k = nn__k();
    nn__rnn_buf r = nn__rnn_bufs(m, L);
    size_t T = (size_t)L->in.d[0], F = (size_t)L->in.d[1], H = (size_t)L->rnn.units,
           G = nn__rnn_gw(L);
    size_t b, t, j, hsld = (T + 1) * H;
    const float *Wx = m->params + L->woff, *Wh = Wx + F * G, *bx = m->params + L->boff,
                *bh = bx + G;
    int packed = nn__gemm_prepack(0, B, (int)G, (int)H, Wh, (int)G, r.pwh);
    (void)training;
    /* input projections of every step: one SGEMM (+ bias) */
    nn__mgemm_bias_act(m, 0, B * (int)T, (int)G, (int)F, x, (int)F, Wx, (int)G, r.gates, (int)G, bx, 0);
    for (b = 0; b < (size_t)B; b++) {
        float *h0 = r.hs + b * hsld, *c0 = r.cs + b * hsld;
        if (m->stateful) {
            memcpy(h0, r.st_h + b * H, H * sizeof(float));
            memcpy(c0, r.st_c + b * H, H * sizeof(float));
        } else {
            memset(h0, 0, H * sizeof(float));
            memset(c0, 0, H * sizeof(float));
        }
    }
    for (t = 0; t < T; t++) {
        const float *hprev = r.hs + t * H;
        float *gt = r.gates + t * G;
        if (L->rnn.cell == NN__GRU) {
            /* hp_t = h W_h + b_h, kept for backward (the reset gate multiplies it) */
            float *hpt = r.hp + t * G;
            if (packed)
                nn__mgemm_packed(m, B, (int)G, (int)H, hprev, (int)hsld, r.pwh, 0.0f, hpt,
                                 (int)(T * G), bh);
            else
                nn__mgemm_bias_act(m, 0, B, (int)G, (int)H, hprev, (int)hsld, Wh, (int)G, hpt,
                                   (int)(T * G), bh, 0);
            for (b = 0; b < (size_t)B; b++) {
                float *g = gt + b * T * G, *hq = hpt + b * T * G,
                      *h = r.hs + b * hsld + (t + 1) * H;
                const float *hpv = r.hs + b * hsld + t * H;
                for (j = 0; j < 2 * H; j++) g[j] += hq[j];
                k->sigmoid(2 * H, g, g); /* r, z */
                for (j = 0; j < H; j++) g[2 * H + j] += g[j] * hq[2 * H + j];
                k->tanh(H, g + 2 * H, g + 2 * H); /* n */
                for (j = 0; j < H; j++) h[j] = (1.0f - g[H + j]) * g[2 * H + j] + g[H + j] * hpv[j];
            }
            continue;
        }
        /* gates_t += h_{t-1} W_h: rows of step t are T*G apart */
        if (packed)
            nn__mgemm_packed(m, B, (int)G, (int)H, hprev, (int)hsld, r.pwh, 1.0f, gt, (int)(T * G),
                             NULL);
        else
            nn__msgemm(m, 0, 0, B, (int)G, (int)H, 1.0f, hprev, (int)hsld, Wh, (int)G, 1.0f, gt,
                        (int)(T * G));
        for (b = 0; b < (size_t)B; b++) {
            float *g = gt + b * T * G, *h = r.hs + b * hsld + (t + 1) * H;
            if (L->rnn.cell == NN__RNN) {
                k->tanh(H, g, g);
                memcpy(h, g, H * sizeof(float));
            } else {
                const float *cp = r.cs + b * hsld + t * H;
                float *c = r.cs + b * hsld + (t + 1) * H, *tc = r.tc + (b * T + t) * H;
                k->lstm_fwd(H, g, cp, c, tc, h);
            }
        }
    }
    for (b = 0; b < (size_t)B; b++) {
        const float *hb = r.hs + b * hsld;
        if (L->out.ndim == 2) memcpy(L->y + b * T * H, hb + H, T * H * sizeof(float));
        else memcpy(L->y + b * H, hb + T * H, H * sizeof(float));
        if (m->stateful) {
            memcpy(r.st_h + b * H, hb + T * H, H * sizeof(float));
            memcpy(r.st_c + b * H, r.cs + b * hsld + T * H, H * sizeof(float));
        }
    }
}

/* backpropagation through time */
static void nn__rnn_bwd(nn_model *m, nn__layer *L, const float *x, float *dy, float *dx, int B) {
    nn__rnn_buf r = nn__rnn_bufs(m, L);
    size_t T = (size_t)L->in.d[0], F = (size_t)L->in.d[1], H = (size_t)L->rnn.units,
           G = nn__rnn_gw(L);
    size_t b, t, j, hsld = (T + 1) * H;
    const float *Wx = m->params + L->woff, *Wh = Wx + F * G;
    float *dWx = m->grads + L->woff, *dWh = dWx + F * G, *dbx = m->grads + L->boff, *dbh = dbx + G;
    int seq = L->out.ndim == 2, packed = nn__gemm_prepack(1, B, (int)H, (int)G, Wh, (int)G, r.pwht);
    memset(r.dh, 0, (size_t)B * H * sizeof(float));
    memset(r.dc, 0, (size_t)B * H * sizeof(float));
    for (t = T; t-- > 0;) {
        float *dgt = r.dg + t * G;
        for (b = 0; b < (size_t)B; b++) {
            const float *g = r.gates + (b * T + t) * G;
            float *dgr = dgt + b * T * G, *dh = r.dh + b * H;
            const float *dyt = seq ? dy + (b * T + t) * H : (t == T - 1 ? dy + b * H : NULL);
            if (dyt)
                for (j = 0; j < H; j++) dh[j] += dyt[j];
            if (L->rnn.cell == NN__RNN) {
                for (j = 0; j < H; j++) dgr[j] = dh[j] * (1.0f - g[j] * g[j]);
            } else if (L->rnn.cell == NN__LSTM) {
                nn__k()->lstm_bwd(H, g, r.tc + (b * T + t) * H, r.cs + b * hsld + t * H, dh,
                                  r.dc + b * H, dgr);
            } else { /* GRU: dq overwrites hq of the same (b, t), read just above */
                float *hq = r.hp + (b * T + t) * G, *dq = hq;
                const float *hpv = r.hs + b * hsld + t * H;
                for (j = 0; j < H; j++) {
                    float gr = g[j], gz = g[H + j], gn = g[2 * H + j], d = dh[j];
                    float dn = d * (1.0f - gz) * (1.0f - gn * gn);
                    float dz = d * (hpv[j] - gn) * gz * (1.0f - gz);
                    float dr = dn * hq[2 * H + j] * gr * (1.0f - gr);
                    dgr[j] = dr;
                    dgr[H + j] = dz;
                    dgr[2 * H + j] = dn;
                    dq[j] = dr;
                    dq[H + j] = dz;
                    dq[2 * H + j] = dn * gr;
                    dh[j] = d * gz; /* the direct path h' = ... + z h */
                }
            }
        }
        {
            /* the recurrent product's gradient: GRU's differs from the
             * input projection's (the reset gate sits inside it); dW_h is
             * one SGEMM over all steps after the loop */
            const float *dq = L->rnn.cell == NN__GRU ? r.hp + t * G : dgt;
            int ldq = (int)(T * G);
            /* dh_{t-1} = dq W_h^T (+ the GRU's direct path already in dh) */
            if (packed)
                nn__mgemm_packed(m, B, (int)H, (int)G, dq, ldq, r.pwht,
                                 L->rnn.cell == NN__GRU ? 1.0f : 0.0f, r.dh, (int)H, NULL);
            else
                nn__msgemm(m, 0, 1, B, (int)H, (int)G, 1.0f, dq, ldq, Wh, (int)G,
                            L->rnn.cell == NN__GRU ? 1.0f : 0.0f, r.dh, (int)H);
        }
    }
    if (!L->frozen) {
        /* dW_x and dW_h are sums over (b, t) of x^T dg and h_{t-1}^T dq:
         * each one SGEMM of depth B*T (not T of depth B).  RNN and LSTM
         * have dq == dg, and W_x, W_h are adjacent, so rows [x | h_{t-1}]
         * give both in one product. */
        size_t FH = F + H, row;
        float *xh = r.hprev;
        for (row = 0; row < (size_t)B * T; row++) {
            b = row / T;
            t = row % T;
            memcpy(xh + row * FH, x + row * F, F * sizeof(float));
            memcpy(xh + row * FH + F, r.hs + b * hsld + t * H, H * sizeof(float));
        }
        if (L->rnn.cell == NN__GRU) {
            nn__msgemm(m, 1, 0, (int)H, (int)G, B * (int)T, 1.0f, xh + F, (int)FH, r.hp, (int)G, 0.0f,
                        dWh, (int)G);
            nn__col_sums((size_t)B * T, G, r.hp, dbh);
            nn__msgemm(m, 1, 0, (int)F, (int)G, B * (int)T, 1.0f, x, (int)F, r.dg, (int)G, 0.0f, dWx,
                        (int)G);
        } else
            nn__msgemm(m, 1, 0, (int)FH, (int)G, B * (int)T, 1.0f, xh, (int)FH, r.dg, (int)G, 0.0f,
                        dWx, (int)G);
        nn__col_sums((size_t)B * T, G, r.dg, dbx);
    }
    if (dx)
        nn__msgemm(m, 0, 1, B * (int)T, (int)F, (int)G, 1.0f, r.dg, (int)G, Wx, (int)G, 0.0f, dx,
                    (int)F);
}

static const char *nn__cell_name(int cell) {
    return cell == NN__LSTM ? "lstm" : cell == NN__GRU ? "gru" : "rnn";
}
static nn_status nn__rnn_shape(nn_model *m, nn__layer *L, int idx, const char *sb) {
    nn_shape in = L->in;
    if (in.ndim != 2)
        return nn__fail(
            m, NN_ERR_SHAPE,
            "layer %d (%s): input %s is not a sequence (t, features); use nn_shape2 or an embedding",
            idx, nn__cell_name(L->rnn.cell), sb);
    if (L->rnn.units <= 0)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT, "layer %d (%s): units must be > 0", idx,
                        nn__cell_name(L->rnn.cell));
    /* (features + units + 2) x gates x units parameters: bounded before any
     * size_t product can wrap */
    if (((double)in.d[1] + L->rnn.units + 2.0) * 4.0 * L->rnn.units > 1e9)
        return nn__fail(m, NN_ERR_SHAPE, "layer %d (%s %d on %s): more than 1e9 parameters", idx,
                        nn__cell_name(L->rnn.cell), L->rnn.units, sb);
    L->out = L->rnn.seqs ? nn_shape2(in.d[0], L->rnn.units) : nn_shape1(L->rnn.units);
    L->nw = ((size_t)in.d[1] + (size_t)L->rnn.units) * nn__rnn_gw(L);
    L->nb = nn__rnn_gw(L) * (L->rnn.cell == NN__GRU ? 2 : 1);
    return NN_OK;
}
/* U(-1/sqrt(units), 1/sqrt(units)), PyTorch's RNN/LSTM/GRU default */
static void nn__rnn_init(const nn__layer *L, float *w, float *buf, nn_rng *rng) {
    double lim = 1.0 / sqrt((double)L->rnn.units);
    size_t j;
    (void)buf;
    for (j = 0; j < L->nw; j++) w[j] = (float)((2.0 * nn_rng_uniform(rng) - 1.0) * lim);
}
static void nn__rnn_plan(const nn_model *m, const nn__layer *L, int B, nn__lplan *lp, size_t *ws) {
    int T = L->in.d[0], F = L->in.d[1], H = L->rnn.units, G = (int)nn__rnn_gw(L);
    (void)m;
    lp->scratch = nn__rnn_scratch(L, (size_t)B);
    nn__ws_need(ws, B * T, G, F);
    nn__ws_need(ws, B, G, H);
    nn__ws_need(ws, H, G, B * T);
    nn__ws_need(ws, B, H, G);
    nn__ws_need(ws, F + H, G, B * T);
    nn__ws_need(ws, B * T, F, G);
}
static void nn__rnn_reset(const nn_model *m, const nn__layer *L) {
    nn__rnn_buf r = nn__rnn_bufs(m, L);
    memset(r.st_h, 0, (size_t)m->arena_batch * L->rnn.units * sizeof(float));
    memset(r.st_c, 0, (size_t)m->arena_batch * L->rnn.units * sizeof(float));
}
static void nn__rnn_save(const nn__layer *L, int32_t *set) {
    set[0] = L->rnn.units;
    set[1] = L->rnn.seqs;
}
static nn_status nn__rnn_load(nn_model *m, const int32_t *set, nn_activation act) {
    (void)act;
    return nn_rnn(m, set[0], set[1]);
}
static nn_status nn__lstm_load(nn_model *m, const int32_t *set, nn_activation act) {
    (void)act;
    return nn_lstm(m, set[0], set[1]);
}
static nn_status nn__gru_load(nn_model *m, const int32_t *set, nn_activation act) {
    (void)act;
    return nn_gru(m, set[0], set[1]);
}
static void nn__rnn_describe(const nn__layer *L, nn_activation a, char *buf, size_t len) {
    (void)a;
    snprintf(buf, len, "%s%s", L->k->name, L->rnn.seqs ? " (sequences)" : " (last state)");
}
/* weight_ih_l0 (G, F), weight_hh_l0 (G, H): nn.h's [Wx; Wh] (F+H, G)
 * transposed, gates in PyTorch's order; bias_ih_l0, bias_hh_l0: GRU keeps
 * both, RNN and LSTM one merged bias (exported with zero bias_hh_l0,
 * imported as the sum) */
static int nn__rnn_tensors(const nn__layer *L, nn__st_perm *p, nn__st_t *t) {
    size_t F = (size_t)L->in.d[1], H = (size_t)L->rnn.units, G = nn__rnn_gw(L);
    int n = 0, gru = L->rnn.cell == NN__GRU;
    nn__st_t *x = nn__st_add(t, &n, "weight_ih_l0", 0, L->woff, NN__STM_COPY);
    (void)p;
    nn__st_shape(x, 2, G, F, 1, 1);
    nn__st_iter(x, G, 1, F, G, 1, 0, 1, 0);
    x = nn__st_add(t, &n, "weight_hh_l0", 0, L->woff + F * G, NN__STM_COPY);
    nn__st_shape(x, 2, G, H, 1, 1);
    nn__st_iter(x, G, 1, H, G, 1, 0, 1, 0);
    nn__st_plain(nn__st_add(t, &n, "bias_ih_l0", 0, L->boff, gru ? NN__STM_COPY : NN__STM_SUM0), G);
    nn__st_plain(nn__st_add(t, &n, "bias_hh_l0", 0, L->boff + (gru ? G : 0),
                            gru ? NN__STM_COPY : NN__STM_SUM1),
                 G);
    return n;
}
static const nn__lkind nn__row_rnn = {"rnn", 2, nn__rnn_shape, nn__rnn_init, nn__rnn_plan,
    nn__rnn_fwd, nn__rnn_bwd, nn__rnn_save, nn__rnn_load, nn__rnn_describe, nn__rnn_reset, 2, nn__rnn_tensors};
static const nn__lkind nn__row_lstm = {"lstm", 2, nn__rnn_shape, nn__rnn_init, nn__rnn_plan,
    nn__rnn_fwd, nn__rnn_bwd, nn__rnn_save, nn__lstm_load, nn__rnn_describe, nn__rnn_reset, 2, nn__rnn_tensors};
static const nn__lkind nn__row_gru = {"gru", 2, nn__rnn_shape, nn__rnn_init, nn__rnn_plan,
    nn__rnn_fwd, nn__rnn_bwd, nn__rnn_save, nn__gru_load, nn__rnn_describe, nn__rnn_reset, 2, nn__rnn_tensors};

/* embedding: ids (B,T) as floats -> (B,T,D); an id outside [0,vocab) is
 * recorded in the model (the caller turns it into an error) */
static void nn__embed_fwd(nn_model *m, nn__layer *L, const float *x, int B, int training) {
    size_t n = (size_t)B * L->in_dim, i, D = (size_t)L->embed.dim;
    const float *W = m->params + L->woff;
    (void)training;
    for (i = 0; i < n; i++) {
        float v = x[i];
        if (!(v >= 0.0f && v < (float)L->embed.vocab) || v != (float)(int)v) {
            if (m->bad_token_layer < 0) {
                m->bad_token_layer = (int)(L - m->L);
                m->bad_token = v;
            }
            memset(L->y + i * D, 0, D * sizeof(float));
        } else memcpy(L->y + i * D, W + (size_t)v * D, D * sizeof(float));
    }
}
static void nn__embed_bwd(nn_model *m, nn__layer *L, const float *x, float *dy, float *dx, int B) {
    size_t n = (size_t)B * L->in_dim, i, D = (size_t)L->embed.dim;
    float *dW = m->grads + L->woff;
    (void)dx;
    if (L->frozen) return;
    memset(dW, 0, L->nw * sizeof(float));
    for (i = 0; i < n; i++) {
        float v = x[i];
        if (v >= 0.0f && v < (float)L->embed.vocab)
            nn__k()->add(D, dW + (size_t)v * D, dy + i * D, dW + (size_t)v * D);
    }
}

static nn_status nn__embed_shape(nn_model *m, nn__layer *L, int idx, const char *sb) {
    if (idx != 0 || L->in.ndim != 1)
        return nn__fail(
            m, NN_ERR_SHAPE,
            "layer %d (embedding): must be the first layer, on an input of (t) token ids (got %s)",
            idx, sb);
    if (L->embed.dim <= 0 || L->embed.vocab <= 0 || (double)L->embed.vocab * L->embed.dim > 1e9)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT,
                        "layer %d (embedding): vocab and dim must be > 0", idx);
    L->out = nn_shape2(L->in.d[0], L->embed.dim);
    L->nw = (size_t)L->embed.vocab * (size_t)L->embed.dim;
    return NN_OK;
}
/* N(0,1), as torch.nn.Embedding */
static void nn__embed_init(const nn__layer *L, float *w, float *buf, nn_rng *rng) {
    size_t j;
    (void)buf;
    for (j = 0; j < L->nw; j++) w[j] = nn_rng_normal(rng);
}
static void nn__embed_save(const nn__layer *L, int32_t *set) {
    set[0] = L->embed.vocab;
    set[1] = L->embed.dim;
}
static nn_status nn__embed_load(nn_model *m, const int32_t *set, nn_activation act) {
    (void)act;
    return nn_embedding(m, set[0], set[1]);
}
static void nn__embed_describe(const nn__layer *L, nn_activation a, char *buf, size_t len) {
    (void)a;
    snprintf(buf, len, "embedding %d", L->embed.vocab);
}
/* weight (vocab, dim), nn.h's layout */
static int nn__embed_tensors(const nn__layer *L, nn__st_perm *p, nn__st_t *t) {
    int n = 0;
    nn__st_t *x = nn__st_add(t, &n, "weight", 0, L->woff, NN__STM_COPY);
    (void)p;
    nn__st_shape(x, 2, (size_t)L->embed.vocab, (size_t)L->embed.dim, 1, 1);
    nn__st_iter(x, (size_t)L->embed.vocab, (size_t)L->embed.dim, (size_t)L->embed.dim, 1, 1, 0, 1, 0);
    return n;
}
static const nn__lkind nn__row_embed = {"embedding", 2, nn__embed_shape, nn__embed_init, NULL,
    nn__embed_fwd, nn__embed_bwd, nn__embed_save, nn__embed_load, nn__embed_describe, NULL, 2, nn__embed_tensors};

static void nn__desc_act(const nn__layer *L, nn_activation a, char *buf, size_t len) {
    snprintf(buf, len, "%s %s", L->k->name, nn__act_name(a));
}
static void nn__desc_plain(const nn__layer *L, nn_activation a, char *buf, size_t len) {
    if (a == NN_LINEAR) snprintf(buf, len, "%s", L->k->name);
    else nn__desc_act(L, a, buf, len);
}

/* ---- 5.3 the table of layer kinds ---------------------------------------
 * Every row, for lookups by name (model files).  A kind is defined by its
 * row; order here means nothing (files store names), so nothing is
 * indexed by position and nothing needs an order check; tests/test_main.c
 * checks that every row is complete and its name unique.  Adding a layer:
 * the checklist at the top of section 5. */
#define NN__KINDS(X)                                                                               \
    X(dense)                                                                                       \
    X(conv) X(maxpool) X(avgpool) X(gap) X(flatten) X(act) X(dropout) X(bn) X(norm) X(up) X(embed) \
        X(rnn) X(lstm) X(gru)
#define NN__KIND_PTR(r) &nn__row_##r,
static const nn__lkind *const nn__kinds[] = {NN__KINDS(NN__KIND_PTR)};
#undef NN__KIND_PTR
#define NN__NKINDS (sizeof nn__kinds / sizeof nn__kinds[0])
static const nn__lkind *nn__kind_named(const char *name, size_t len) {
    size_t i;
    for (i = 0; i < NN__NKINDS; i++)
        if (strlen(nn__kinds[i]->name) == len && memcmp(nn__kinds[i]->name, name, len) == 0)
            return nn__kinds[i];
    return NULL;
}

/* ========================================================================= */
/* ==== 6. Losses and optimizers                                              */
/* ========================================================================= */

NN__API nn_optimizer nn_sgd(float lr) {
    nn_optimizer o;
    memset(&o, 0, sizeof o);
    o.kind = NN_OPT_SGD;
    o.lr = lr;
    o.beta1 = 0.9f;
    o.beta2 = 0.999f;
    o.eps = 1e-8f;
    o.rho = 0.99f;
    return o;
}
NN__API nn_optimizer nn_sgd_momentum(float lr, float momentum, int nesterov) {
    nn_optimizer o = nn_sgd(lr);
    o.momentum = momentum;
    o.nesterov = nesterov;
    return o;
}
NN__API nn_optimizer nn_adam(float lr) {
    nn_optimizer o = nn_sgd(lr);
    o.kind = NN_OPT_ADAM;
    return o;
}
NN__API nn_optimizer nn_adamw(float lr, float weight_decay) {
    nn_optimizer o = nn_adam(lr);
    o.kind = NN_OPT_ADAMW;
    o.weight_decay = weight_decay;
    return o;
}
NN__API nn_optimizer nn_rmsprop(float lr) {
    nn_optimizer o = nn_sgd(lr);
    o.kind = NN_OPT_RMSPROP;
    return o;
}

static int nn__loss_is_ce(nn_loss l) {
    return l == NN_LOSS_CATEGORICAL_CE || l == NN_LOSS_CATEGORICAL_CE_FROM_LOGITS ||
           l == NN_LOSS_SPARSE_CATEGORICAL_CE || l == NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS;
}
static int nn__loss_is_bce(nn_loss l) {
    return l == NN_LOSS_BINARY_CE || l == NN_LOSS_BINARY_CE_FROM_LOGITS;
}
static int nn__loss_sparse(nn_loss l) {
    return l == NN_LOSS_SPARSE_CATEGORICAL_CE || l == NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS;
}
static int nn__y_dim(const nn_model *m) {
    const nn__layer *L = &m->L[m->n - 1];
    return nn__loss_sparse(m->loss) ? (int)(L->out_dim / nn__channels(L->out)) : (int)L->out_dim;
}

/* Loss over B rows of outputs z (logits when the head is fused) against
 * targets t.  Writes dL/dz into dz and the head's probabilities into prob.
 * Cross-entropy uses log-sum-exp on the logits, so it is finite for any
 * finite logits (no log(0)); BCE uses max(z,0) - z t + log(1 + e^-|z|). */
/* Rows the cross-entropy sees: one per sample, or one per step of a
 * sequence output (t, k). */
static size_t nn__ce_rows(const nn_model *m, int B) {
    const nn__layer *L = &m->L[m->n - 1];
    return (size_t)B * (L->out_dim / nn__channels(L->out));
}
/* what accuracy is a fraction of: rows for cross-entropy, outputs for BCE */
static long nn__acc_den(const nn_model *m, int B) {
    return nn__loss_is_bce(m->loss) ? (long)B * (long)m->L[m->n - 1].out_dim
                                    : (long)nn__ce_rows(m, B);
}
static nn_status nn__loss_eval(nn_model *m, const float *z, const float *t, int B, float *dz,
                               double *loss_sum, long *correct) {
    const nn__ktab *k = nn__k();
    size_t K = nn__channels(m->L[m->n - 1].out), R = nn__ce_rows(m, B), r, j;
    double L = 0.0;
    long ok = 0;
    float inv = 1.0f / (float)R;
    if (nn__loss_is_ce(m->loss)) {
        int sparse = nn__loss_sparse(m->loss);
        k->softmax(R, K, z, m->prob);
        for (r = 0; r < R; r++) {
            const float *zr = z + r * K, *pr = m->prob + r * K, *tr = t + (sparse ? r : r * K);
            float *dr = dz ? dz + r * K : NULL;
            float mx = k->max(K, zr), lse;
            size_t am = 0, tm = 0;
            for (j = 1; j < K; j++)
                if (pr[j] > pr[am]) am = j;
            /* log-sum-exp from the softmax already computed: the largest
             * logit has p = e^0 / sum, so lse = max - log p_max; p_max >= 1/K
             * never underflows (no K exps per row, no log(0)) */
            lse = mx - (float)log((double)pr[am]);
            if (sparse) {
                float lab = tr[0];
                int c = lab >= 0.0f && lab < (float)K ? (int)lab : -1; /* range first: no UB cast */
                if (c < 0 || lab != (float)c)
                    return nn__fail(m, NN_ERR_INVALID_ARGUMENT,
                                    "label %g of sample %lu is not a class in [0,%lu)", (double)lab,
                                    (unsigned long)r, (unsigned long)K);
                L += (double)(lse - zr[c]);
                ok += am == (size_t)c;
                if (dr) {
                    for (j = 0; j < K; j++) dr[j] = pr[j] * inv;
                    dr[c] -= inv;
                }
            } else {
                float st = 0.0f;
                for (j = 0; j < K; j++) {
                    L -= (double)tr[j] * (double)(zr[j] - lse);
                    st += tr[j];
                    if (tr[j] > tr[tm]) tm = j;
                }
                ok += am == tm;
                if (dr)
                    for (j = 0; j < K; j++) dr[j] = (pr[j] * st - tr[j]) * inv;
            }
        }
        L /= (double)R;
    } else if (nn__loss_is_bce(m->loss)) {
        /* every output of a sample: images, sequences */
        size_t n = (size_t)B * m->L[m->n - 1].out_dim;
        float invn = 1.0f / (float)n;
        k->sigmoid(n, z, m->prob);
        for (j = 0; j < n; j++) {
            float zj = z[j], tj = t[j];
            L += (double)((zj > 0.0f ? zj : 0.0f) - zj * tj + log1pf(expf(-fabsf(zj))));
            ok += (m->prob[j] > 0.5f) == (tj > 0.5f);
            if (dz) dz[j] = (m->prob[j] - tj) * invn;
        }
        L /= (double)n;
    } else { /* MSE */
        size_t n = (size_t)B * m->L[m->n - 1].out_dim;
        float s = 2.0f / (float)n;
        for (j = 0; j < n; j++) {
            float d = z[j] - t[j];
            L += (double)d * d;
            if (dz) dz[j] = s * d;
        }
        L /= (double)n;
        ok = -1;
    }
    if (!(L == L) || !((float)L - (float)L == 0.0f)) /* NaN, or beyond float range */
        return nn__fail(m, NN_ERR_NONFINITE, "loss is %g at step %ld", L, m->step + 1);
    *loss_sum = L;
    *correct = ok;
    return NN_OK;
}

static float nn__global_norm(const nn_model *m) {
    double s = 0.0;
    int i;
    for (i = 0; i < m->n; i++) {
        const nn__layer *L = &m->L[i];
        if (L->frozen || nn__ntrain(L) == 0) continue;
        s += (double)nn__k()->dot(nn__ntrain(L), m->grads + L->woff, m->grads + L->woff);
    }
    return (float)sqrt(s);
}

/* The optimizer update of parameters [off, off + cnt) (element-wise, so
 * any split into chunks gives the same bits) */
typedef struct nn__opt_job {
    nn_model *m;
    size_t off;
} nn__opt_job;
static void nn__opt_range(void *ctx, size_t i0, size_t cnt) {
    const nn__opt_job *j = (const nn__opt_job *)ctx;
    nn_model *m = j->m;
    const nn_optimizer *o = &m->opt;
    size_t off = j->off + i0;
    float lr = m->lr_now;
    switch (o->kind) {
    case NN_OPT_SGD:
        nn_sgd_update(cnt, m->params + off, m->grads + off, m->om + off, lr, o->momentum,
                      o->weight_decay, o->nesterov);
        break;
    case NN_OPT_ADAM:
    case NN_OPT_ADAMW:
        nn_adam_update(cnt, m->params + off, m->grads + off, m->om + off, m->ov + off, lr, o->beta1,
                       o->beta2, o->eps, o->weight_decay, o->kind == NN_OPT_ADAMW, m->step);
        break;
    case NN_OPT_RMSPROP:
        nn_rmsprop_update(cnt, m->params + off, m->grads + off, m->ov + off, lr, o->rho, o->eps,
                          o->weight_decay);
        break;
    }
}
/* One layer's optimizer update (weights and bias are adjacent: one range). */
static void nn__opt_layer(nn_model *m, nn__layer *L) {
    nn__opt_job j;
    if (L->frozen || nn__ntrain(L) == 0) return; /* frozen: optimizer state does not move */
    j.m = m;
    j.off = L->woff;
    nn__par_range(m, nn__ntrain(L), NN__PAR_ELEMS, nn__opt_range, &j);
}

NN__API nn_status nn_step(nn_model *m) {
    const nn_optimizer *o;
    int i;
    if (!m) return NN_ERR_INVALID_ARGUMENT;
    if (!m->compiled) return nn__fail(m, NN_ERR_STATE, "nn_step before nn_compile");
    if (m->q8) return nn__fail(m, NN_ERR_STATE, "an int8 model runs inference only (nn_quantize)");
    if (nn__train_state(m, 1) != NN_OK) return NN_ERR_NO_MEMORY;
    o = &m->opt;
    m->step++;
    if (o->clip_norm > 0.0f) {
        float norm = nn__global_norm(m);
        if (!(norm == norm) || norm == INFINITY)
            return nn__fail(m, NN_ERR_NONFINITE, "gradient norm is %g at step %ld", (double)norm,
                            m->step);
        if (norm > o->clip_norm) {
            float s = o->clip_norm / norm;
            for (i = 0; i < m->n; i++)
                if (!m->L[i].frozen && nn__ntrain(&m->L[i]))
                    nn_vscale(nn__ntrain(&m->L[i]), s, m->grads + m->L[i].woff,
                              m->grads + m->L[i].woff);
        }
    }
    for (i = 0; i < m->n; i++) nn__opt_layer(m, &m->L[i]);
    return NN_OK;
}

/* ========================================================================= */
/* ==== 7. Model                                                              */
/* ========================================================================= */
/* A sequential model: nn_model (section 5) holds the layers, the plan, the
 * parameters and the arena.
 *   build    builders append layers; the first error sticks (nn__fail)
 *            and nn_compile reports it.
 *   compile  the head (softmax / sigmoid fused into cross-entropy), the
 *            fusion pass (nn__fuse: m->ops and each layer's fz), the
 *            parameters (one buffer, weights then bias per layer, padded
 *            to 16 floats), gradients and optimizer state alike, buffers
 *            (running statistics), initialisation by each row.
 *   plan     the activation arena at the first step of a batch size larger
 *            than before (nn__plan, 7.3); never again while B stays.
 *   step     forward over m->ops, the loss, backward in reverse (with the
 *            optimizer update fused into it unless clipping needs the
 *            global norm first). */

/* ---- 7.1 build ---- */

NN__API nn_model *nn_model_new(nn_shape input) {
    nn_model *m = (nn_model *)NN_MALLOC(sizeof(nn_model));
    if (!m) return NULL;
    memset(m, 0, sizeof *m);
    m->input = input;
    nn_rng_seed(&m->rng, 42);
    m->bad_token_layer = -1;
    if (input.ndim < 1 || input.ndim > 3) {
        nn__fail(m, NN_ERR_SHAPE, "input shape must have 1, 2 or 3 dimensions (got %d)",
                 input.ndim);
        return m;
    }
    if (input.d[0] <= 0 || input.d[1] <= 0 || input.d[2] <= 0 ||
        (double)input.d[0] * input.d[1] * input.d[2] > 1e9) {
        nn__fail(m, NN_ERR_SHAPE, "input dimensions must be positive and below 1e9 elements");
        return m;
    }
    if (!nn__shape_tail_ok(input)) {
        nn__fail(m, NN_ERR_SHAPE,
                 "input shape of %d dimension%s has extra dimensions (%d,%d,%d): "
                 "build it with nn_shape%d",
                 input.ndim, input.ndim == 1 ? "" : "s", input.d[0], input.d[1], input.d[2],
                 input.ndim);
        return m;
    }
    m->in_dim = nn__shape_size(input);
    return m;
}
NN__API void nn_model_free(nn_model *m) {
    if (!m) return;
    nn__q8_free(m->q8);
    nn_aligned_free(m->params);
    nn_aligned_free(m->grads);
    nn_aligned_free(m->om);
    nn_aligned_free(m->ov);
    nn_aligned_free(m->bufs);
    nn_aligned_free(m->arena);
    NN_FREE(m->ws);
    NN_FREE(m->ops);
    NN_FREE(m->L);
    NN_FREE(m);
}
NN__API nn_status nn_model_status(const nn_model *m) {
    return m ? m->status : NN_ERR_INVALID_ARGUMENT;
}
NN__API const char *nn_model_error(const nn_model *m) {
    if (!m) return "model is NULL (out of memory?)";
    return m->msg;
}
NN__API void nn_model_seed(nn_model *m, uint64_t seed) {
    if (m) nn_rng_seed(&m->rng, seed);
}

/* Append a layer after its row's shape rule accepts the previous output. */
static nn_status nn__add_layer(nn_model *m, nn__layer *L) {
    char sb[48];
    int idx;
    nn_status s;
    if (!m) return NN_ERR_INVALID_ARGUMENT;
    if (m->status != NN_OK) return m->status;
    if (m->compiled) return nn__fail(m, NN_ERR_STATE, "cannot add layers after nn_compile");
    idx = m->n;
    L->in = m->n ? m->L[m->n - 1].out : m->input;
    L->in_dim = nn__shape_size(L->in);
    nn__shape_str(L->in, sb, sizeof sb);
    if ((int)L->act < (int)NN_LINEAR || (int)L->act > (int)NN_SOFTMAX)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT, "layer %d (%s): unknown activation %d", idx,
                        L->k->name, (int)L->act);
    NN_ASSERT(L->k->nset <= NN__MAX_SET); /* a row's settings fit the file code's arrays */
    if ((s = L->k->shape(m, L, idx, sb)) != NN_OK) return s;
    L->out_dim = nn__shape_size(L->out);
    snprintf(L->name, sizeof L->name, "%d", idx);
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 8;
        nn__layer *nl = (nn__layer *)NN_MALLOC((size_t)cap * sizeof(nn__layer));
        if (!nl) return nn__fail(m, NN_ERR_NO_MEMORY, "out of memory adding layer %d", idx);
        if (m->n) memcpy(nl, m->L, (size_t)m->n * sizeof(nn__layer));
        NN_FREE(m->L);
        m->L = nl;
        m->cap = cap;
    }
    m->L[m->n++] = *L;
    return NN_OK;
}
static nn__layer nn__layer_init(const nn__lkind *k, nn_activation act) {
    nn__layer L;
    memset(&L, 0, sizeof L);
    L.k = k;
    L.act = act;
    L.slope = 0.01f;
    return L;
}
NN__API nn_status nn_dense(nn_model *m, int units, nn_activation act) {
    nn__layer L = nn__layer_init(&nn__row_dense, act);
    L.dense.units = units;
    return nn__add_layer(m, &L);
}
NN__API nn_status nn_conv2d_ex(nn_model *m, int filters, int kh, int kw, int stride,
                               int same_padding, nn_activation act) {
    nn__layer L = nn__layer_init(&nn__row_conv, act);
    L.conv.filters = filters;
    L.conv.kh = kh;
    L.conv.kw = kw;
    L.conv.stride = stride;
    L.conv.same = same_padding < 0 ? same_padding : same_padding != 0; /* NN_PADDING(p) kept */
    return nn__add_layer(m, &L);
}
NN__API nn_status nn_conv2d(nn_model *m, int filters, int k, nn_activation act) {
    return nn_conv2d_ex(m, filters, k, k, 1, 0, act);
}
static nn_status nn__pool(nn_model *m, const nn__lkind *k, int size, int max, int pad) {
    nn__layer L = nn__layer_init(k, NN_LINEAR);
    L.pool.size = size;
    L.pool.max = max;
    L.pool.pad = pad;
    return nn__add_layer(m, &L);
}
NN__API nn_status nn_maxpool2d(nn_model *m, int size) {
    return nn__pool(m, &nn__row_maxpool, size, 1, 0);
}
NN__API nn_status nn_avgpool2d(nn_model *m, int size) {
    return nn__pool(m, &nn__row_avgpool, size, 0, 0);
}
NN__API nn_status nn_maxpool2d_ex(nn_model *m, int size, int padding) {
    return nn__pool(m, &nn__row_maxpool, size, 1, padding);
}
NN__API nn_status nn_avgpool2d_ex(nn_model *m, int size, int padding) {
    return nn__pool(m, &nn__row_avgpool, size, 0, padding);
}
NN__API nn_status nn_use_bias(nn_model *m, int use_bias) {
    nn__layer *L;
    if (!m) return NN_ERR_INVALID_ARGUMENT;
    if (m->status != NN_OK) return m->status;
    if (m->compiled) return nn__fail(m, NN_ERR_STATE, "nn_use_bias: the model is compiled");
    L = m->n ? &m->L[m->n - 1] : NULL;
    if (!L || (L->k != &nn__row_dense && L->k != &nn__row_conv))
        return nn__fail(m, NN_ERR_STATE, "nn_use_bias: the last layer is not dense or conv2d");
    L->nobias = !use_bias;
    return NN_OK;
}
NN__API nn_status nn_global_avgpool2d(nn_model *m) {
    nn__layer L = nn__layer_init(&nn__row_gap, NN_LINEAR);
    return nn__add_layer(m, &L);
}
NN__API nn_status nn_embedding(nn_model *m, int vocab, int dim) {
    nn__layer L = nn__layer_init(&nn__row_embed, NN_LINEAR);
    L.embed.dim = dim;
    L.embed.vocab = vocab;
    return nn__add_layer(m, &L);
}
static nn_status nn__recurrent(nn_model *m, const nn__lkind *k, int cell, int units,
                               int return_sequences) {
    nn__layer L = nn__layer_init(k, NN_LINEAR);
    L.rnn.cell = cell;
    L.rnn.units = units;
    L.rnn.seqs = return_sequences != 0;
    return nn__add_layer(m, &L);
}
NN__API nn_status nn_rnn(nn_model *m, int units, int return_sequences) {
    return nn__recurrent(m, &nn__row_rnn, NN__RNN, units, return_sequences);
}
NN__API nn_status nn_lstm(nn_model *m, int units, int return_sequences) {
    return nn__recurrent(m, &nn__row_lstm, NN__LSTM, units, return_sequences);
}
NN__API nn_status nn_gru(nn_model *m, int units, int return_sequences) {
    return nn__recurrent(m, &nn__row_gru, NN__GRU, units, return_sequences);
}
NN__API nn_status nn_upsample2d(nn_model *m, int factor) {
    nn__layer L = nn__layer_init(&nn__row_up, NN_LINEAR);
    L.up.factor = factor;
    return nn__add_layer(m, &L);
}
NN__API nn_status nn_flatten(nn_model *m) {
    nn__layer L = nn__layer_init(&nn__row_flatten, NN_LINEAR);
    return nn__add_layer(m, &L);
}
NN__API nn_status nn_activation_layer(nn_model *m, nn_activation act) {
    nn__layer L = nn__layer_init(&nn__row_act, act);
    return nn__add_layer(m, &L);
}
NN__API nn_status nn_dropout(nn_model *m, float rate) {
    nn__layer L = nn__layer_init(&nn__row_dropout, NN_LINEAR);
    if (m && m->status == NN_OK && !(rate >= 0.0f && rate < 1.0f))
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT, "layer %d (dropout): rate %g must be in [0,1)",
                        m->n, (double)rate);
    L.drop.rate = rate;
    return nn__add_layer(m, &L);
}
NN__API nn_status nn_batchnorm(nn_model *m) {
    nn__layer L = nn__layer_init(&nn__row_bn, NN_LINEAR);
    return nn__add_layer(m, &L);
}
NN__API nn_status nn_normalization(nn_model *m) {
    nn__layer L = nn__layer_init(&nn__row_norm, NN_LINEAR);
    return nn__add_layer(m, &L);
}
NN__API nn_status nn_leaky_relu_slope(nn_model *m, float slope) {
    if (!m) return NN_ERR_INVALID_ARGUMENT;
    if (m->status != NN_OK) return m->status;
    if (m->n == 0 || !(slope >= 0.0f && slope < 1.0f))
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT,
                        "nn_leaky_relu_slope: needs a layer and a slope in [0,1)");
    m->L[m->n - 1].slope = slope;
    return NN_OK;
}

/* ---- 7.2 compile: the fusion pass and the parameters ----
 * nn__fuse decides everything that crosses a layer boundary, once, and
 * records it: the plan (m->ops: single layers and fused groups) and each
 * layer's fz member.  Forward and backward read only that. */
static nn_status nn__fuse(nn_model *m, const nn_optimizer *opt) {
    int i;
    /* each layer's optimizer update right after its backward, while its
     * gradients are in cache, unless clipping needs the global norm of all
     * gradients first */
    m->opt_in_bwd = !(opt->clip_norm > 0.0f);
    m->ops = (nn__op *)NN_MALLOC((size_t)m->n * sizeof(nn__op));
    if (!m->ops) return nn__fail(m, NN_ERR_NO_MEMORY, "out of memory planning %d layers", m->n);
    m->nops = 0;
    for (i = 0; i < m->n; i++) {
        nn__layer *L = &m->L[i], *N = i + 1 < m->n ? L + 1 : NULL,
                  *N2 = i + 2 < m->n ? L + 2 : NULL;
        /* the initialiser follows the layer's activation, or that of a
         * directly following activation layer (or batch norm, then one);
         * the head layer's logits get Glorot */
        L->fz.init_act = L->act;
        if (L->act == NN_LINEAR && N && N->k == &nn__row_act) L->fz.init_act = N->act;
        else if (L->act == NN_LINEAR && N && N->k == &nn__row_bn && N2 && N2->k == &nn__row_act)
            L->fz.init_act = N2->act;
        if (i == m->n - 1 && m->head != NN__HEAD_NONE) L->fz.init_act = NN_LINEAR;
        /* ReLU then max-pool: the window's max is the ReLU of the max, and
         * the pool routes the gradient to the argmax only, so applying ReLU'
         * to the pooled gradient (a quarter of the size for 2x2) is the same
         * as applying it to the conv output's gradient: one full pass fewer */
        L->fz.act_by_next =
            L->k == &nn__row_conv && L->act == NN_RELU && N && N->k == &nn__row_maxpool;
        if (N) N->fz.relu_first = L->fz.act_by_next;
    }
    /* the steps: a conv with ReLU before a 2x2 max-pool is one group, run
     * image by image (nn__conv_pool_fwd); every other layer alone */
    for (i = 0; i < m->n; i++) {
        nn__op *op = &m->ops[m->nops++];
        op->kind = NN__OP_LAYER;
        op->first = i;
        op->count = 1;
        op->fused_now = 0;
        if (m->L[i].fz.act_by_next && m->L[i + 1].pool.size == 2 && !m->L[i + 1].pool.pad) {
            op->kind = NN__OP_CONV_POOL;
            op->count = 2;
            i++;
        }
    }
    return NN_OK;
}

/* The gradients (zero), on the first call that needs them (backward, a
 * gradient accessor), and with opt the optimizer's moments too (a step, a
 * file with optimizer state): nn_input_gradient needs no moments.
 * Afterwards training allocates nothing.  Not from two threads at once
 * (a model is one thread's at a time). */
static nn_status nn__train_state(nn_model *m, int opt) {
    size_t np = m->nparams ? m->nparams : 1;
    if (!m->grads) {
        m->grads = (float *)nn_aligned_alloc(np * sizeof(float));
        if (!m->grads)
            return nn__fail(m, NN_ERR_NO_MEMORY, "out of memory allocating the gradients of %lu parameters",
                            (unsigned long)m->nparams);
        memset(m->grads, 0, np * sizeof(float));
    }
    if (opt && !m->om) {
        m->om = (float *)nn_aligned_alloc(np * sizeof(float));
        m->ov = (float *)nn_aligned_alloc(np * sizeof(float));
        if (!m->om || !m->ov) {
            nn_aligned_free(m->om);
            nn_aligned_free(m->ov);
            m->om = m->ov = NULL;
            return nn__fail(m, NN_ERR_NO_MEMORY, "out of memory allocating the optimizer state of %lu parameters",
                            (unsigned long)m->nparams);
        }
        memset(m->om, 0, np * sizeof(float));
        memset(m->ov, 0, np * sizeof(float));
    }
    return NN_OK;
}

NN__API nn_status nn_compile(nn_model *m, nn_optimizer opt, nn_loss loss) {
    size_t np = 0, nb = 0;
    int i;
    nn__layer *last;
    if (!m) return NN_ERR_INVALID_ARGUMENT;
    if (m->status != NN_OK) return m->status;
    if (m->compiled) return nn__fail(m, NN_ERR_STATE, "model already compiled");
    if (m->n == 0) return nn__fail(m, NN_ERR_STATE, "model has no layers");
    if ((int)loss < (int)NN_LOSS_NONE || (int)loss > (int)NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT, "unknown loss %d", (int)loss);
    if ((int)opt.kind < 0 || (int)opt.kind > (int)NN_OPT_RMSPROP || !(opt.lr >= 0.0f) ||
        !(opt.momentum >= 0.0f) || !(opt.eps > 0.0f) || !(opt.beta1 >= 0.0f && opt.beta1 < 1.0f) ||
        !(opt.beta2 >= 0.0f && opt.beta2 < 1.0f) || !(opt.weight_decay >= 0.0f) ||
        !(opt.clip_norm >= 0.0f))
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT,
                        "optimizer settings out of range (lr, eps, betas, decay)");
    last = &m->L[m->n - 1];
    m->head = NN__HEAD_NONE;
    /* Fuse a final softmax with cross-entropy (sigmoid with binary CE):
     * the layer then outputs logits, the loss works on logits (stable), and
     * predict applies the activation. */
    if (loss == NN_LOSS_CATEGORICAL_CE || loss == NN_LOSS_SPARSE_CATEGORICAL_CE) {
        if (last->act != NN_SOFTMAX)
            return nn__fail(
                m, NN_ERR_INVALID_ARGUMENT,
                "layer %d (%s, %s): cross-entropy needs a softmax output; use NN_SOFTMAX or the "
                "_FROM_LOGITS loss",
                m->n - 1, last->k->name, nn__act_name(last->act));
        last->act = NN_LINEAR;
        m->head = NN__HEAD_SOFTMAX;
    } else if (loss == NN_LOSS_BINARY_CE) {
        if (last->act != NN_SIGMOID)
            return nn__fail(
                m, NN_ERR_INVALID_ARGUMENT,
                "layer %d (%s, %s): binary cross-entropy needs a sigmoid output; use NN_SIGMOID or "
                "NN_LOSS_BINARY_CE_FROM_LOGITS",
                m->n - 1, last->k->name, nn__act_name(last->act));
        last->act = NN_LINEAR;
        m->head = NN__HEAD_SIGMOID;
    } else if (loss == NN_LOSS_CATEGORICAL_CE_FROM_LOGITS ||
               loss == NN_LOSS_SPARSE_CATEGORICAL_CE_FROM_LOGITS ||
               loss == NN_LOSS_BINARY_CE_FROM_LOGITS) {
        if (last->act != NN_LINEAR)
            return nn__fail(m, NN_ERR_INVALID_ARGUMENT,
                            "layer %d (%s, %s): a _FROM_LOGITS loss needs a linear output layer",
                            m->n - 1, last->k->name, nn__act_name(last->act));
        m->head = nn__loss_is_bce(loss) ? NN__HEAD_SIGMOID : NN__HEAD_SOFTMAX;
    }
    if (nn__loss_is_ce(loss) && (last->out.ndim == 3 || nn__channels(last->out) < 2))
        return nn__fail(
            m, NN_ERR_SHAPE,
            "cross-entropy needs an output of (k) or (t, k) with at least 2 classes (flatten images)");
    if (nn__fuse(m, &opt) != NN_OK) return m->status;
    /* each layer's weights then bias, adjacent (one optimizer call per
     * layer), padded to 16 floats so every weight block is 64-byte aligned */
    for (i = 0; i < m->n; i++) {
        /* checked before adding: with a 32-bit size_t, five layers of 9e8
         * weights wrapped to a small count and initialisation overran it */
        const size_t lim = ((size_t)-1 - 64) / sizeof(float) / 4, /* + gradients, 2 states */
            w = (m->L[i].nw + m->L[i].nb + 15) & ~(size_t)15;
        if (w > lim - np || m->L[i].nbuf > lim - nb)
            return nn__fail(m, NN_ERR_SHAPE,
                            "more than %lu parameters or statistics up to layer %d: too many for "
                            "memory",
                            (unsigned long)lim, i);
        m->L[i].woff = np;
        m->L[i].boff = np + m->L[i].nw;
        np += w;
        m->L[i].bufoff = nb;
        nb += m->L[i].nbuf;
    }
    m->nparams = np;
    m->nbufs = nb;
    /* the gradients and the optimizer state come with the first use that
     * needs them (nn__train_state): a model only used for inference, a
     * loaded one above all, holds its parameters and nothing more */
    m->params = (float *)nn_aligned_alloc((np ? np : 1) * sizeof(float));
    m->bufs = (float *)nn_aligned_alloc((nb ? nb : 1) * sizeof(float));
    if (!m->params || !m->bufs) {
        nn_aligned_free(m->params);
        nn_aligned_free(m->bufs);
        m->params = m->bufs = NULL;
        return nn__fail(m, NN_ERR_NO_MEMORY, "out of memory allocating %lu parameters",
                        (unsigned long)np);
    }
    if (!m->from_file) {
        memset(m->params, 0, (np ? np : 1) * sizeof(float));
    } else { /* the file writes the rest: zero what it may not (padding, absent biases) */
        for (i = 0; i < m->n; i++) {
            const nn__layer *L = &m->L[i];
            size_t end = i + 1 < m->n ? m->L[i + 1].woff : np;
            size_t from = L->nobias ? L->boff : L->boff + L->nb;
            memset(m->params + from, 0, (end - from) * sizeof(float));
        }
        if (!np) m->params[0] = 0.0f; /* np == 0 allocates one */
    }
    memset(m->bufs, 0, (nb ? nb : 1) * sizeof(float));
    /* initialisation by each row, in layer order (one RNG stream); a model
     * nn_load builds gets its parameters from its file (initialising 25 M
     * of them took longer than reading them): only layers with statistics
     * start as they would, in case the file has no BUFS section */
    for (i = 0; i < m->n; i++)
        if (m->L[i].k->init && m->from_file && !m->L[i].nbuf)
            /* skipped, but the random stream moves on as if it had run (the
             * dropout masks and shuffles of a loaded model stay those of
             * 0.2.0): one draw per weight, two for the embedding's normals */
            nn__rng_advance(&m->rng, (uint64_t)m->L[i].nw * (m->L[i].k == &nn__row_embed ? 2u : 1u));
        else if (m->L[i].k->init)
            m->L[i].k->init(&m->L[i], m->params + m->L[i].woff, m->bufs + m->L[i].bufoff, &m->rng);
    m->opt = opt;
    m->lr_now = opt.lr;
    m->loss = loss;
    m->compiled = 1;
    return NN_OK;
}

/* ---- 7.3 the memory plan ----
 * The activation arena for batch B (planned again only when B exceeds what
 * it has): one block holding the input copy, the targets, the head's
 * probabilities, every layer's output and scratch (its row's plan rule),
 * and two gradient buffers as large as the largest output; beside it, one
 * SGEMM workspace per worker, as large as the largest product needs.  The
 * rows' rules run once into lp_next; a layer's lp (its tiling) changes only
 * once the new arena exists, so a failed plan leaves the model as it was. */
/* Workspace blocks of ws bytes for every thread in use (nn_get_threads):
 * anew when the blocks grow (must: failure is an error) or the thread count
 * went up (may: on failure the workers already there do the work). */
static nn_status nn__plan_workers(nn_model *m, size_t ws, int must) {
    int nw = nn__threads(), w;
    void *wsp;
    if (!must && nw <= m->nworkers) return NN_OK;
    if (nw < m->nworkers) nw = m->nworkers;
    wsp = NN_MALLOC(ws ? ws * (size_t)nw : 1);
    if (!wsp) {
        if (!must) return NN_OK;
        return nn__fail(m, NN_ERR_NO_MEMORY, "out of memory for %d x %lu bytes of SGEMM workspace",
                        nw, (unsigned long)ws);
    }
    NN_FREE(m->ws);
    m->ws = wsp;
    for (w = 0; w < nw; w++) m->wk_ws[w] = (char *)wsp + (size_t)w * ws;
    m->nworkers = nw;
    m->ws_bytes = ws;
    return NN_OK;
}
/* Whether the arena for batch B can be counted in a size_t: a bound in
 * double (exact below 2^53), B times the floats of one sample.  With a
 * 32-bit size_t (i386, wasm32) B times a layer's size wrapped, and a small
 * arena was overrun.  Every plan rule is at most linear in B (tiles of at
 * most B images' rows, scratch(B) <= B scratch(1)). */
static int nn__plan_fits(const nn_model *m, int B) {
    double per = (double)m->in_dim + 2.0 * (double)m->L[m->n - 1].out_dim + 48.0, maxdim = m->in_dim;
    int i;
    for (i = 0; i < m->n; i++) {
        const nn__layer *L = &m->L[i];
        nn__lplan one;
        size_t ws1 = 0;
        memset(&one, 0, sizeof one);
        if (L->k->plan) L->k->plan(m, L, 1, &one, &ws1);
        per += (double)L->out_dim + (double)one.scratch + 32.0;
        if ((double)L->out_dim > maxdim) maxdim = (double)L->out_dim;
    }
    per += 2.0 * maxdim + 32.0;
    return (double)B * per * sizeof(float) + 64.0 < (double)(size_t)-1;
}
static nn_status nn__plan(nn_model *m, int B) {
    size_t total = 0, maxdim = m->in_dim, ws = 0, out = m->L[m->n - 1].out_dim;
    int i;
    float *a;
    nn_status s;
    if (B <= m->arena_batch) return nn__plan_workers(m, m->ws_bytes, 0);
    if (!nn__plan_fits(m, B))
        return nn__fail(m, NN_ERR_NO_MEMORY,
                        "the activations for batch %d do not fit in the address space", B);
    total = nn__r16((size_t)B * m->in_dim) + 2 * nn__r16((size_t)B * out); /* xin, ybuf, prob */
    for (i = 0; i < m->n; i++) {
        nn__layer *L = &m->L[i];
        memset(&L->lp_next, 0, sizeof L->lp_next);
        if (L->k->plan) L->k->plan(m, L, B, &L->lp_next, &ws);
        if (L->out_dim > maxdim) maxdim = L->out_dim;
        total += nn__r16((size_t)B * L->out_dim) + nn__r16(L->lp_next.scratch);
    }
    total += 2 * nn__r16((size_t)B * maxdim); /* g0, g1 */
    a = (float *)nn_aligned_alloc(total * sizeof(float));
    if (!a)
        return nn__fail(m, NN_ERR_NO_MEMORY,
                        "out of memory planning %lu floats of activations for batch %d",
                        (unsigned long)total, B);
    ws = (ws + 63) & ~(size_t)63; /* each worker's block on its own cache lines */
    if (ws > m->ws_bytes && (s = nn__plan_workers(m, ws, 1)) != NN_OK) {
        nn_aligned_free(a);
        return s;
    }
    memset(a, 0, total * sizeof(float));
    nn_aligned_free(m->arena);
    m->arena = a;
    m->arena_gen++;
    m->arena_floats = total;
    m->arena_batch = B;
#define NN__GIVE(p, n) (p = a, a += nn__r16(n))
    NN__GIVE(m->xin, (size_t)B * m->in_dim);
    NN__GIVE(m->ybuf, (size_t)B * out);
    NN__GIVE(m->prob, (size_t)B * out);
    for (i = 0; i < m->n; i++) {
        nn__layer *L = &m->L[i];
        L->lp = L->lp_next;
        NN__GIVE(L->y, (size_t)B * L->out_dim);
        NN__GIVE(L->scratch, L->lp.scratch);
    }
    NN__GIVE(m->g0, (size_t)B * maxdim);
    NN__GIVE(m->g1, (size_t)B * maxdim);
#undef NN__GIVE
    return NN_OK;
}

/* first layer (from 0) whose output holds NaN or Inf, or -1 */
static int nn__first_nonfinite_layer(const nn_model *m, int B) {
    int i;
    size_t j;
    int o;
    for (o = 0; o < m->nops; o++)
        for (i = m->ops[o].first; i < m->ops[o].first + m->ops[o].count; i++) {
            const float *y = m->L[i].y;
            if (i == m->ops[o].first && m->ops[o].fused_now)
                continue; /* not materialised: the pool tells */
            for (j = 0; j < (size_t)B * m->L[i].out_dim; j++)
                if (!(y[j] - y[j] == 0.0f)) return i;
        }
    return -1;
}
/* no NaN or Inf in x: exponent bits all ones, tested on the bits in eight
 * independent lanes (a float sum of x * 0 was one dependent add per element:
 * 25 us for a 32 x 784 batch, 40% of an MLP's nn_train_on_batch) */
static int nn__all_finite(const float *x, size_t n) {
    size_t i, j;
    uint32_t bad[8] = {0, 0, 0, 0, 0, 0, 0, 0}, any = 0;
    for (i = 0; i + 8 <= n; i += 8)
        for (j = 0; j < 8; j++) {
            uint32_t u;
            memcpy(&u, x + i + j, 4);
            bad[j] |= (u & 0x7f800000u) + 0x00800000u; /* bit 31 set: exponent all ones */
        }
    for (; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, 4);
        bad[0] |= (u & 0x7f800000u) + 0x00800000u;
    }
    for (j = 0; j < 8; j++) any |= bad[j];
    return !(any & 0x80000000u);
}

/* ---- 7.4 forward and backward: the steps of the plan ---- */
static void nn__forward_batch(nn_model *m, const float *x, int B, int training) {
    int o, i;
    const float *in = x;
    m->bad_token_layer = -1;
    for (o = 0; o < m->nops; o++) {
        nn__op *op = &m->ops[o];
        nn__layer *L = &m->L[op->first];
        op->fused_now = op->kind == NN__OP_CONV_POOL && nn__conv_pool_fwd(m, L, L + 1, in, B);
        if (op->fused_now) {
            in = L[1].y;
            continue;
        }
        for (i = 0; i < op->count; i++) {
            L[i].fwd_training = training;
            L[i].k->fwd(m, &L[i], in, B, training);
            in = L[i].y;
        }
    }
    m->cur_n = B;
    m->cur_x = x;
}
/* forward, then the errors a layer can only record (embedding ids) */
static nn_status nn__forward_checked(nn_model *m, const float *x, int B, int training) {
    if (m->q8)
        return training ? nn__fail(m, NN_ERR_STATE, "an int8 model runs inference only (nn_quantize)")
                        : nn__q8_forward(m, x, B);
    nn__forward_batch(m, x, B, training);
    if (m->bad_token_layer >= 0)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT,
                        "layer %d (embedding): token id %g is not in [0,%d)", m->bad_token_layer,
                        (double)m->bad_token, m->L[m->bad_token_layer].embed.vocab);
    return NN_OK;
}
/* Gradient w.r.t. the last output is in m->g0.  With fused_step (fit and
 * train_on_batch without gradient clipping) each layer is updated right
 * after its backward, while its gradients are still in cache: the same
 * arithmetic as nn_step (Adam is element-wise), and it kept the MLP's
 * optimizer from costing 30% of the step in L3 misses. */
static void nn__backward_batch(nn_model *m, int B, int fused_step) {
    float *dy = m->g0, *dx = m->g1, *t;
    int o, i;
    if (fused_step) m->step++;
    for (o = m->nops - 1; o >= 0; o--) {
        const nn__op *op = &m->ops[o];
        /* the first layer's conv + pool, image by image (no dx to form) */
        if (op->first == 0 && op->fused_now && !m->dx0 &&
            nn__pool_conv_bwd(m, &m->L[0], &m->L[1], dy, B)) {
            if (fused_step) nn__opt_layer(m, &m->L[0]);
            break; /* both layers done */
        }
        for (i = op->first + op->count - 1; i >= op->first; i--) {
            nn__layer *L = &m->L[i];
            const float *x = i ? m->L[i - 1].y : m->cur_x;
            L->k->bwd(m, L, x, dy, i || m->dx0 ? dx : NULL, B);
            if (fused_step) nn__opt_layer(m, L);
            t = dy;
            dy = dx;
            dx = t;
        }
    }
    if (m->dx0) memcpy(m->dx0, dy, (size_t)B * m->in_dim * sizeof(float)); /* layer 0's dx */
}
/* probabilities (or outputs) of the last forward into m->prob */
static void nn__head(nn_model *m, int B) {
    const nn__layer *L = &m->L[m->n - 1];
    /* an int8 model's float head on the scalar kernels: the same bits on
     * every backend, as its integer part */
    const nn__ktab *k = m->q8 ? &nn__tab_scalar : nn__k();
    if (m->head == NN__HEAD_SOFTMAX)
        k->softmax(nn__ce_rows(m, B), nn__channels(L->out), L->y, m->prob);
    else if (m->head == NN__HEAD_SIGMOID) k->sigmoid((size_t)B * L->out_dim, L->y, m->prob);
    else memcpy(m->prob, L->y, (size_t)B * L->out_dim * sizeof(float));
}

NN__API nn_status nn_forward(nn_model *m, const float *x, int n, int training) {
    nn_status s;
    if (!m || !x || n <= 0)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT, "nn_forward: need a model, x and n > 0");
    if (!m->compiled) return nn__fail(m, NN_ERR_STATE, "nn_forward before nn_compile");
    if (!nn__all_finite(x, (size_t)n * m->in_dim))
        return nn__fail(m, NN_ERR_NONFINITE, "input batch contains NaN or Inf");
    if ((s = nn__plan(m, n)) != NN_OK) return s;
    if ((s = nn__forward_checked(m, x, n, training)) != NN_OK) return s;
    nn__head(m, n);
    return NN_OK;
}
NN__API const float *nn_output(const nn_model *m) { return m ? m->prob : NULL; }

static nn_status nn__backward(nn_model *m, const float *y, float *loss, float *accuracy,
                              int fused_step);
NN__API nn_status nn_backward(nn_model *m, const float *y, float *loss, float *accuracy) {
    return nn__backward(m, y, loss, accuracy, 0);
}
static nn_status nn__backward(nn_model *m, const float *y, float *loss, float *accuracy,
                              int fused_step) {
    double L = 0.0; /* set by nn__loss_eval; the initialisers quiet gcc -O3 */
    long ok = 0;
    nn_status s;
    int B;
    if (!m || !y)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT, "nn_backward: need a model and targets");
    if (!m->compiled || m->cur_n == 0 || m->loss == NN_LOSS_NONE)
        return nn__fail(m, NN_ERR_STATE,
                        "nn_backward needs a compiled model with a loss and a forward pass first");
    if (m->q8) return nn__fail(m, NN_ERR_STATE, "an int8 model runs inference only (nn_quantize)");
    if ((s = nn__train_state(m, fused_step)) != NN_OK) return s;
    B = m->cur_n;
    s = nn__loss_eval(m, m->L[m->n - 1].y, y, B, m->g0, &L, &ok);
    if (s != NN_OK) {
        if (s == NN_ERR_NONFINITE) {
            int bad = nn__first_nonfinite_layer(m, B);
            if (bad >= 0)
                nn__fail(m, s, "NaN/Inf in the output of layer %d (%s) at step %ld", bad,
                         m->L[bad].k->name, m->step + 1);
            else
                nn__fail(
                    m, s,
                    "loss overflows at step %ld: the output of layer %d (%s) is finite but huge "
                    "(training diverged: lower the learning rate?)",
                    m->step + 1, m->n - 1, m->L[m->n - 1].k->name);
        }
        return s;
    }
    nn__backward_batch(m, B, fused_step);
    if (loss) *loss = (float)L;
    if (accuracy) *accuracy = ok < 0 ? NAN : (float)ok / (float)nn__acc_den(m, B);
    return NN_OK;
}
NN__API nn_status nn_train_on_batch(nn_model *m, const float *x, const float *y, int n, float *loss,
                                    float *accuracy) {
    nn_status s = nn_forward(m, x, n, 1);
    if (s != NN_OK) return s;
    if (m->opt_in_bwd) return nn__backward(m, y, loss, accuracy, 1);
    s = nn_backward(m, y, loss, accuracy);
    if (s != NN_OK) return s;
    return nn_step(m);
}
NN__API nn_status nn_input_gradient(nn_model *m, const float *x, const float *y, int n, float *dx) {
    nn_status s;
    if (!m || !x || !y || !dx || n <= 0)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT, "nn_input_gradient: need model, x, y, dx, n > 0");
    if (!m->compiled || m->loss == NN_LOSS_NONE)
        return nn__fail(m, NN_ERR_STATE, "nn_input_gradient needs a compiled model with a loss");
    if (m->L[0].k == &nn__row_embed)
        return nn__fail(m, NN_ERR_UNSUPPORTED,
                        "nn_input_gradient: the first layer is an embedding (token ids have no "
                        "gradient)");
    if ((s = nn_forward(m, x, n, 0)) != NN_OK) return s;
    m->dx0 = dx;
    s = nn__backward(m, y, NULL, NULL, 0);
    m->dx0 = NULL;
    return s;
}

/* ---- 7.5 layer access and the summary ---- */
static nn__layer *nn__layer_at(nn_model *m, int i) {
    if (!m || i < 0 || i >= m->n) return NULL;
    return &m->L[i];
}
static float *nn__pbuf(nn_model *m, int layer, int bias, int grad, size_t *count) {
    nn__layer *L = nn__layer_at(m, layer);
    size_t cnt = L ? (bias ? (L->nobias ? 0 : L->nb) : L->nw) : 0;
    if (count) *count = 0;
    if (!L || !m->compiled || cnt == 0 || m->q8 || (grad && nn__train_state(m, 0) != NN_OK)) return NULL;
    if (count) *count = cnt;
    return (grad ? m->grads : m->params) + (bias ? L->boff : L->woff);
}
NN__API float *nn_layer_weights(nn_model *m, int layer, size_t *count) {
    return nn__pbuf(m, layer, 0, 0, count);
}
NN__API float *nn_layer_bias(nn_model *m, int layer, size_t *count) {
    return nn__pbuf(m, layer, 1, 0, count);
}
NN__API float *nn_layer_weight_grads(nn_model *m, int layer, size_t *count) {
    return nn__pbuf(m, layer, 0, 1, count);
}
NN__API float *nn_layer_bias_grads(nn_model *m, int layer, size_t *count) {
    return nn__pbuf(m, layer, 1, 1, count);
}
/* layer names: 1..63 of [A-Za-z0-9_.-], no empty part between dots, unique;
 * all digits only as the layer's own index (the default names) */
NN__API nn_status nn_layer_set_name(nn_model *m, int layer, const char *name) {
    nn__layer *L = nn__layer_at(m, layer);
    char idx[16];
    size_t n, i;
    int digits = 1, j;
    if (!L) { /* not sticky: a name is not part of the build */
        if (m) snprintf(m->msg, sizeof m->msg, "nn_layer_set_name: no layer %d", layer);
        return NN_ERR_INVALID_ARGUMENT;
    }
    snprintf(idx, sizeof idx, "%d", layer);
    if (!name || !*name) name = idx;
    n = strlen(name);
    for (i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || (c == '.' && i > 0 && i + 1 < n && name[i + 1] != '.');
        if (c < '0' || c > '9') digits = 0;
        if (!ok) {
            n = 64; /* refused below */
            break;
        }
    }
    if (n > 63 || (digits && strcmp(name, idx) != 0)) {
        snprintf(m->msg, sizeof m->msg,
                 "nn_layer_set_name: layer %d: a name is 1 to 63 of A-Z a-z 0-9 _ - and inner "
                 "dots, digits only for the layer's own index", layer);
        return NN_ERR_INVALID_ARGUMENT;
    }
    for (j = 0; j < m->n; j++)
        if (j != layer && strcmp(m->L[j].name, name) == 0) {
            snprintf(m->msg, sizeof m->msg, "nn_layer_set_name: layer %d is already named '%s'", j,
                     name);
            return NN_ERR_INVALID_ARGUMENT;
        }
    memmove(L->name, name, n + 1); /* name may be nn_layer_name(m, layer) itself */
    return NN_OK;
}
NN__API const char *nn_layer_name(const nn_model *m, int layer) {
    if (!m || layer < 0 || layer >= m->n) return NULL;
    return m->L[layer].name;
}
NN__API const char *nn_layer_kind(const nn_model *m, int layer) {
    if (!m || layer < 0 || layer >= m->n) return NULL;
    return m->L[layer].k->name;
}
NN__API nn_status nn_layer_freeze(nn_model *m, int layer, int frozen) {
    nn__layer *L = nn__layer_at(m, layer);
    if (!L) return nn__fail(m, NN_ERR_INVALID_ARGUMENT, "nn_layer_freeze: no layer %d", layer);
    L->frozen = frozen != 0;
    if (L->frozen && m->grads && L->nw + L->nb)
        memset(m->grads + L->woff, 0, (L->nw + L->nb) * sizeof(float));
    return NN_OK;
}
NN__API nn_status nn_conv_winograd(nn_model *m, int layer, int enable) {
    nn__layer *L = nn__layer_at(m, layer);
    int on;
    if (!L || L->k != &nn__row_conv)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT,
                        "nn_conv_winograd: layer %d is not a conv2d layer", layer);
    on = enable && nn__wg_eligible(L);
    if (enable && !on)
        return nn__fail(
            m, NN_ERR_INVALID_ARGUMENT,
            "nn_conv_winograd: layer %d (conv2d %dx%d, stride %d, %d -> %d channels) is not 3x3 "
            "stride 1 with at least %d channels in and out",
            layer, L->conv.kh, L->conv.kw, L->conv.stride, L->in.d[2], L->conv.filters, NN__WG_MIN);
    if (on != L->conv.wino) {
        L->conv.wino = on;
        m->arena_batch = 0; /* scratch sizes change: plan again at the next step */
        m->cur_n = 0;       /* and the last forward's buffers no longer fit a backward */
    }
    return NN_OK;
}
NN__API float *nn_model_params(nn_model *m, size_t *count) {
    if (count) *count = m ? m->nparams : 0;
    return m ? m->params : NULL;
}
NN__API float *nn_model_grads(nn_model *m, size_t *count) {
    if (count) *count = 0;
    if (!m || !m->compiled || m->q8 || nn__train_state(m, 0) != NN_OK) return NULL;
    if (count) *count = m->nparams;
    return m->grads;
}
NN__API int nn_model_num_layers(const nn_model *m) { return m ? m->n : 0; }
NN__API nn_shape nn_model_input_shape(const nn_model *m) {
    nn_shape z;
    memset(&z, 0, sizeof z);
    return m ? m->input : z;
}
NN__API nn_shape nn_layer_output_shape(const nn_model *m, int layer) {
    nn_shape z;
    memset(&z, 0, sizeof z);
    if (!m || layer < 0 || layer >= m->n) return z;
    return m->L[layer].out;
}
NN__API float *nn_layer_buffers(nn_model *m, int layer, size_t *count) {
    nn__layer *L = nn__layer_at(m, layer);
    if (count) *count = L && m->compiled && m->bufs ? L->nbuf : 0;
    return L && m->compiled && m->bufs && L->nbuf ? m->bufs + L->bufoff : NULL;
}
NN__API nn_shape nn_model_output_shape(const nn_model *m) {
    return (m && m->n) ? m->L[m->n - 1].out : (m ? m->input : nn_shape1(0));
}
NN__API size_t nn_model_num_params(const nn_model *m) {
    size_t s = 0;
    int i;
    if (!m) return 0;
    for (i = 0; i < m->n; i++) s += nn__ntrain(&m->L[i]);
    return s;
}

NN__API void nn_model_summary(const nn_model *m, void *file) {
    FILE *f = file ? (FILE *)file : stdout;
    int i;
    char sb[48], name[64];
    if (!m) return;
    fprintf(f, "%-4s %-26s %-16s %12s\n", "#", "layer", "output shape", "params");
    fprintf(f, "---------------------------------------------------------------\n");
    nn__shape_str(m->input, sb, sizeof sb);
    fprintf(f, "%-4s %-26s %-16s %12s\n", "", "input", sb, "");
    for (i = 0; i < m->n; i++) {
        const nn__layer *L = &m->L[i];
        nn_activation a = (i == m->n - 1 && m->head == NN__HEAD_SOFTMAX)   ? NN_SOFTMAX
                          : (i == m->n - 1 && m->head == NN__HEAD_SIGMOID) ? NN_SIGMOID
                                                                           : L->act;
        L->k->describe(L, a, name, sizeof name);
        if (L->frozen) strncat(name, " (frozen)", sizeof name - strlen(name) - 1);
        nn__shape_str(L->out, sb, sizeof sb);
        fprintf(f, "%-4d %-26s %-16s %12lu\n", i, name, sb, (unsigned long)nn__ntrain(L));
    }
    fprintf(f, "---------------------------------------------------------------\n");
    fprintf(f, "total parameters: %lu", (unsigned long)nn_model_num_params(m));
    if (m->arena_batch)
        fprintf(f, "    arena: %.2f MB at batch %d (+ %.2f MB workspace x %d threads)\n",
                (double)m->arena_floats * 4.0 / 1048576.0, m->arena_batch,
                (double)m->ws_bytes / 1048576.0, m->nworkers);
    else fprintf(f, "    arena: sized at the first fit/predict\n");
    if (m->q8) nn__q8_summary(m, f);
}

/* ---- 7.6 training and inference: fit, evaluate, predict ----
 * Each call plans the arena for its batch (nn__plan) before its loop, so
 * the loop allocates nothing; fit's progress line and callbacks come from
 * nn_fit_event. */
NN__API nn_fit_opts nn_fit_defaults(void) {
    nn_fit_opts o;
    memset(&o, 0, sizeof o);
    o.epochs = 1;
    o.batch = 32;
    o.shuffle = 1;
    o.restore_best = 1;
    o.monitor = NN_MONITOR_VAL_LOSS;
    o.step_size = 10;
    o.gamma = 0.1f;
    o.verbose = 1;
    return o;
}

/* the samples of ds fit the model's input (an image must match exactly) */
static nn_status nn__check_shape(nn_model *m, const nn_dataset *ds, const char *what) {
    char a[48], b[48];
    if (ds->x_dim != m->in_dim ||
        (m->input.ndim == 3 &&
         (ds->shape.ndim != 3 || ds->shape.d[0] != m->input.d[0] ||
          ds->shape.d[1] != m->input.d[1] || ds->shape.d[2] != m->input.d[2]))) {
        nn__shape_str(ds->shape, a, sizeof a);
        nn__shape_str(m->input, b, sizeof b);
        return nn__fail(m, NN_ERR_SHAPE, "%s samples have shape %s but the model takes %s", what, a,
                        b);
    }
    return NN_OK;
}
static nn_status nn__check_data(nn_model *m, const nn_dataset *ds, const char *what) {
    nn_status s;
    if (!ds || ds->n <= 0 || (!ds->x && !ds->x_u8) || !ds->y)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT, "%s dataset is empty or NULL", what);
    if ((s = nn__check_shape(m, ds, what)) != NN_OK) return s;
    if (ds->y_dim != nn__y_dim(m))
        return nn__fail(m, NN_ERR_SHAPE,
                        "%s targets have %d values per sample; the model and loss need %d", what,
                        ds->y_dim, nn__y_dim(m));
    if (ds->x && !nn__all_finite(ds->x, (size_t)ds->n * ds->x_dim))
        return nn__fail(m, NN_ERR_NONFINITE, "%s data contains NaN or Inf", what);
    if (!nn__all_finite(ds->y, (size_t)ds->n * ds->y_dim))
        return nn__fail(m, NN_ERR_NONFINITE, "%s targets contain NaN or Inf", what);
    return NN_OK;
}
/* gather rows idx[0..B) (or start..start+B when idx is NULL) into xin/ybuf */
static void nn__gather(nn_model *m, const nn_dataset *ds, const int *idx, int start, int B) {
    int b;
    for (b = 0; b < B; b++) {
        int i = idx ? idx[start + b] : start + b;
        nn_dataset_get_x(ds, i, m->xin + (size_t)b * m->in_dim);
        memcpy(m->ybuf + (size_t)b * ds->y_dim, ds->y + (size_t)i * ds->y_dim,
               (size_t)ds->y_dim * sizeof(float));
    }
}

NN__API nn_status nn_evaluate(nn_model *m, const nn_dataset *ds, int batch, float *loss,
                              float *accuracy) {
    double Ls = 0.0;
    long oks = 0, denom = 0;
    int start;
    nn_status s;
    if (!m) return NN_ERR_INVALID_ARGUMENT;
    if (!m->compiled || m->loss == NN_LOSS_NONE)
        return nn__fail(m, NN_ERR_STATE, "nn_evaluate needs a compiled model with a loss");
    if ((s = nn__check_data(m, ds, "evaluation")) != NN_OK) return s;
    if (batch <= 0) batch = 32;
    if (batch > ds->n) batch = ds->n;
    if ((s = nn__plan(m, batch)) != NN_OK) return s;
    for (start = 0; start < ds->n; start += ds->n - start < batch ? ds->n - start : batch) {
        int B = ds->n - start < batch ? ds->n - start : batch;
        double L = 0.0;
        long ok = 0;
        nn__gather(m, ds, NULL, start, B);
        if ((s = nn__forward_checked(m, m->xin, B, 0)) != NN_OK) return s;
        if ((s = nn__loss_eval(m, m->L[m->n - 1].y, m->ybuf, B, NULL, &L, &ok)) != NN_OK) return s;
        Ls += L * B;
        oks += ok;
        denom += nn__acc_den(m, B);
    }
    if (loss) *loss = (float)(Ls / ds->n);
    if (accuracy) *accuracy = oks < 0 ? NAN : (float)oks / (float)denom;
    return NN_OK;
}

NN__API nn_status nn_predict(nn_model *m, const float *x, int n, float *out) {
    nn_status s;
    size_t od;
    int start, batch;
    if (!m || !x || !out || n <= 0)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT, "nn_predict: need model, x, out, n > 0");
    if (!m->compiled) return nn__fail(m, NN_ERR_STATE, "nn_predict before nn_compile");
    if (!nn__all_finite(x, (size_t)n * m->in_dim))
        return nn__fail(m, NN_ERR_NONFINITE, "nn_predict: input contains NaN or Inf");
    batch = m->arena_batch > 0 ? m->arena_batch : (n < 32 ? n : 32);
    if ((s = nn__plan(m, batch < n ? batch : n)) != NN_OK) return s;
    od = m->L[m->n - 1].out_dim;
    for (start = 0; start < n; start += n - start < batch ? n - start : batch) {
        int B = n - start < batch ? n - start : batch;
        if ((s = nn__forward_checked(m, x + (size_t)start * m->in_dim, B, 0)) != NN_OK) return s;
        nn__head(m, B);
        memcpy(out + (size_t)start * od, m->prob, (size_t)B * od * sizeof(float));
    }
    return NN_OK;
}
NN__API nn_status nn_predict_layers(nn_model *m, int first, int last, const float *x, int n,
                                    float *out) {
    nn_status s;
    size_t ind, od;
    int start, batch, i;
    if (!m || !x || !out || n <= 0)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT, "nn_predict_layers: need model, x, out, n > 0");
    if (!m->compiled) return nn__fail(m, NN_ERR_STATE, "nn_predict_layers before nn_compile");
    if (m->q8) return nn__fail(m, NN_ERR_UNSUPPORTED, "%s: not for an int8 model (nn_quantize)", "nn_predict_layers");
    if (first < 0 || last > m->n || first >= last)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT,
                        "nn_predict_layers: layer range [%d,%d) outside [0,%d)", first, last, m->n);
    ind = first ? m->L[first - 1].out_dim : m->in_dim;
    od = m->L[last - 1].out_dim;
    if (!nn__all_finite(x, (size_t)n * ind))
        return nn__fail(m, NN_ERR_NONFINITE, "nn_predict_layers: input contains NaN or Inf");
    batch = m->arena_batch > 0 ? m->arena_batch : (n < 32 ? n : 32);
    if ((s = nn__plan(m, batch < n ? batch : n)) != NN_OK) return s;
    for (start = 0; start < n; start += n - start < batch ? n - start : batch) {
        int B = n - start < batch ? n - start : batch;
        const float *in = x + (size_t)start * ind;
        m->bad_token_layer = -1;
        for (i = first; i < last; i++) {
            m->L[i].k->fwd(m, &m->L[i], in, B, 0);
            in = m->L[i].y;
        }
        if (m->bad_token_layer >= 0)
            return nn__fail(
                m, NN_ERR_INVALID_ARGUMENT, "layer %d (embedding): token id %g is not in [0,%d)",
                m->bad_token_layer, (double)m->bad_token, m->L[m->bad_token_layer].embed.vocab);
        if (last == m->n) {
            nn__head(m, B);
            in = m->prob;
        }
        memcpy(out + (size_t)start * od, in, (size_t)B * od * sizeof(float));
    }
    return NN_OK;
}
NN__API nn_status nn_normalization_adapt(nn_model *m, int layer, const nn_dataset *ds) {
    nn__layer *L = nn__layer_at(m, layer);
    size_t C, ind, per, r, c;
    double *acc;
    float *xb, *yb;
    int start, batch = 256;
    nn_status s = NN_OK;
    if (!L || L->k != &nn__row_norm)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT,
                        "nn_normalization_adapt: layer %d is not a normalization layer", layer);
    if (!m->compiled) { /* not sticky: the build itself is fine, nn_compile may follow */
        nn__fail(m, NN_ERR_STATE, "nn_normalization_adapt before nn_compile (which allocates "
                                  "the statistics)");
        m->status = NN_OK;
        return NN_ERR_STATE;
    }
    if (!ds || ds->n <= 0 || (!ds->x && !ds->x_u8))
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT,
                        "nn_normalization_adapt: dataset is empty or NULL");
    if ((s = nn__check_shape(m, ds, "nn_normalization_adapt: the")) != NN_OK) return s;
    C = nn__channels(L->in);
    ind = L->in_dim;
    per = ind / C;
    if (batch > ds->n) batch = ds->n;
    /* per feature: the first value seen (a shift that keeps the sums of
     * squares well conditioned), the sum and the sum of squares, in double */
    acc = (double *)NN_MALLOC(3 * C * sizeof(double));
    xb = (float *)NN_MALLOC((size_t)batch * m->in_dim * sizeof(float));
    yb = (float *)NN_MALLOC((size_t)batch * ind * sizeof(float));
    if (!acc || !xb || !yb) {
        NN_FREE(acc);
        NN_FREE(xb);
        NN_FREE(yb);
        return nn__fail(m, NN_ERR_NO_MEMORY, "nn_normalization_adapt: out of memory");
    }
    for (start = 0; start < ds->n && s == NN_OK;
         start += ds->n - start < batch ? ds->n - start : batch) {
        int B = ds->n - start < batch ? ds->n - start : batch, b;
        const float *in = xb;
        for (b = 0; b < B; b++) nn_dataset_get_x(ds, start + b, xb + (size_t)b * m->in_dim);
        if (!nn__all_finite(xb, (size_t)B * m->in_dim)) {
            s = nn__fail(m, NN_ERR_NONFINITE,
                         "nn_normalization_adapt: the data contains NaN or Inf");
            break;
        }
        if (layer > 0) {
            s = nn_predict_layers(m, 0, layer, xb, B, yb);
            in = yb;
        }
        for (r = 0; s == NN_OK && r < (size_t)B * per; r++)
            for (c = 0; c < C; c++) {
                double v = in[r * C + c], d;
                if (start == 0 && r == 0) acc[c] = v, acc[C + c] = acc[2 * C + c] = 0.0;
                d = v - acc[c];
                acc[C + c] += d;
                acc[2 * C + c] += d * d;
            }
    }
    if (s == NN_OK) {
        double cnt = (double)ds->n * (double)per;
        float *mean = m->bufs + L->bufoff, *var = mean + C;
        for (c = 0; c < C; c++) {
            double mu = acc[C + c] / cnt, v = acc[2 * C + c] / cnt - mu * mu;
            mean[c] = (float)(acc[c] + mu);
            var[c] = (float)(v > 0.0 ? v : 0.0);
        }
    }
    NN_FREE(acc);
    NN_FREE(xb);
    NN_FREE(yb);
    return s;
}
NN__API void nn_reset_state(nn_model *m) {
    int i;
    if (!m || !m->arena) return;
    for (i = 0; i < m->n; i++)
        if (m->L[i].k->reset) m->L[i].k->reset(m, &m->L[i]);
}
NN__API nn_status nn_predict_stateful(nn_model *m, const float *x, int n, float *out) {
    nn_status s;
    if (!m || !x || !out || n <= 0)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT,
                        "nn_predict_stateful: need model, x, out, n > 0");
    if (!m->compiled) return nn__fail(m, NN_ERR_STATE, "nn_predict_stateful before nn_compile");
    if (m->q8) return nn__fail(m, NN_ERR_UNSUPPORTED, "%s: not for an int8 model (nn_quantize)", "nn_predict_stateful");
    if (!nn__all_finite(x, (size_t)n * m->in_dim))
        return nn__fail(m, NN_ERR_NONFINITE, "nn_predict_stateful: input contains NaN or Inf");
    if ((s = nn__plan(m, n)) != NN_OK) return s;
    if (n != m->state_n || m->arena_gen != m->state_gen) { /* new streams, or a new arena */
        nn_reset_state(m);
        m->state_n = n;
        m->state_gen = m->arena_gen;
    }
    m->stateful = 1;
    s = nn__forward_checked(m, x, n, 0);
    m->stateful = 0;
    if (s != NN_OK) return s;
    nn__head(m, n);
    memcpy(out, m->prob, (size_t)n * m->L[m->n - 1].out_dim * sizeof(float));
    return NN_OK;
}
NN__API nn_status nn_predict_dataset(nn_model *m, const nn_dataset *ds, int batch, float *out) {
    nn_status s;
    size_t od;
    int start;
    if (!m || !ds || !out)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT, "nn_predict_dataset: NULL argument");
    if (!m->compiled) return nn__fail(m, NN_ERR_STATE, "nn_predict_dataset before nn_compile");
    if (ds->x_dim != m->in_dim || ds->n <= 0)
        return nn__fail(m, NN_ERR_SHAPE, "dataset samples do not match the model input");
    if (batch <= 0) batch = 32;
    if (batch > ds->n) batch = ds->n;
    if ((s = nn__plan(m, batch)) != NN_OK) return s;
    od = m->L[m->n - 1].out_dim;
    for (start = 0; start < ds->n; start += ds->n - start < batch ? ds->n - start : batch) {
        int B = ds->n - start < batch ? ds->n - start : batch, b;
        for (b = 0; b < B; b++) nn_dataset_get_x(ds, start + b, m->xin + (size_t)b * m->in_dim);
        if ((s = nn__forward_checked(m, m->xin, B, 0)) != NN_OK) return s;
        nn__head(m, B);
        memcpy(out + (size_t)start * od, m->prob, (size_t)B * od * sizeof(float));
    }
    return NN_OK;
}

static int nn__stderr_tty(void) {
#if NN__HAVE_ISATTY
    return isatty(2);
#else
    return 0;
#endif
}
static void nn__progress(const nn_fit_event *ev, int tty, int samples, int final) {
    double rate = ev->elapsed_s > 0 ? samples / ev->elapsed_s : 0.0;
    if (tty && !final) {
        int w = 24, fill = ev->batches ? (int)((long)w * ev->batch / ev->batches) : w, i;
        double eta = ev->batch ? ev->elapsed_s / ev->batch * (ev->batches - ev->batch) : 0.0;
        char bar[32];
        for (i = 0; i < w; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : '.');
        bar[w] = 0;
        fprintf(stderr, "\rEpoch %d/%d [%s] %d/%d - loss %.4f", ev->epoch, ev->epochs, bar,
                ev->batch, ev->batches, (double)ev->loss);
        if (ev->accuracy == ev->accuracy) fprintf(stderr, " - acc %.4f", (double)ev->accuracy);
        fprintf(stderr, " - ETA %.0fs - %.0f samples/s   ", eta, rate);
        fflush(stderr);
        return;
    }
    if (final) {
        if (tty) fprintf(stderr, "\r");
        fprintf(stderr, "Epoch %d/%d - %.1fs - loss %.4f", ev->epoch, ev->epochs, ev->elapsed_s,
                (double)ev->loss);
        if (ev->accuracy == ev->accuracy) fprintf(stderr, " - acc %.4f", (double)ev->accuracy);
        if (ev->val_loss == ev->val_loss) fprintf(stderr, " - val_loss %.4f", (double)ev->val_loss);
        if (ev->val_accuracy == ev->val_accuracy)
            fprintf(stderr, " - val_acc %.4f", (double)ev->val_accuracy);
        fprintf(stderr, " - %.0f samples/s%s\n", rate, tty ? "                 " : "");
    }
}

/* nn_fit's check that the threads pay: every NN__PROBE_EVERY steps it runs
 * NN__PROBE_PAIRS pairs of steps, one on the workers and one on one thread
 * (alternating, so that drift cancels), and goes on with the faster by the
 * medians (one thread only when 5% faster).  Threads or not, the results
 * are the same bits, so the choice is free to change: it catches models too
 * small to gain, and machines where the cores are far apart (on this VM the
 * host at times runs the two vCPUs on distant cores: a cache-line round trip
 * of 400 ns instead of 90, and two threads slower than one on the MLP). */
#define NN__PROBE_EVERY 1024
#define NN__PROBE_PAIRS 24
typedef struct nn__probe {
    long step; /* steps of this fit so far */
    double t0, t[2][NN__PROBE_PAIRS];
} nn__probe;
static long nn__probe_k(const nn__probe *p) { /* step of the probe, or -1 */
    long k = (p->step + NN__PROBE_EVERY - 16) % NN__PROBE_EVERY; /* the first at step 16 */
    return k < 2 * NN__PROBE_PAIRS ? k : -1;
}
static void nn__probe_before(nn_model *m, nn__probe *p) {
    long k = nn__probe_k(p);
    if (k < 0 || m->nworkers < 2 || nn__threads() < 2) return;
    m->par_cap = (int)(k & 1); /* even: the workers, odd: one thread */
    p->t0 = nn_time_seconds();
}
static double nn__median(double *v, int n) {
    int i, j;
    for (i = 1; i < n; i++) /* insertion sort: n is small */
        for (j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}
static void nn__probe_after(nn_model *m, nn__probe *p) {
    long k = nn__probe_k(p);
    p->step++;
    if (k < 0 || m->nworkers < 2 || nn__threads() < 2) return;
    p->t[k & 1][k >> 1] = nn_time_seconds() - p->t0;
    if (k == 2 * NN__PROBE_PAIRS - 1)
        m->par_cap = nn__median(p->t[1], NN__PROBE_PAIRS) <
                             0.95 * nn__median(p->t[0], NN__PROBE_PAIRS) ? 1 : 0;
}
NN__API nn_status nn_fit(nn_model *m, const nn_dataset *train_in, nn_fit_opts *opts) {
    nn_fit_opts o = opts ? *opts : nn_fit_defaults();
    nn_dataset train, val;
    const nn_dataset *vp = NULL;
    int *perm = NULL, epoch, i, tty, bad = 0, nb;
    float *best = NULL, best_score = INFINITY;
    double train_time = 0.0;
    nn_status s = NN_OK;
    nn__probe probe;
    memset(&probe, 0, sizeof probe);
    if (!m) return NN_ERR_INVALID_ARGUMENT;
    if (m->status != NN_OK) return m->status;
    if (!m->compiled || m->loss == NN_LOSS_NONE)
        return nn__fail(m, NN_ERR_STATE, "nn_fit needs nn_compile with a loss first");
    if (!train_in) return nn__fail(m, NN_ERR_INVALID_ARGUMENT, "nn_fit: training dataset is NULL");
    if (o.epochs <= 0 || o.batch <= 0 || !(o.val_split >= 0.0f && o.val_split < 1.0f) ||
        o.patience < 0)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT,
                        "nn_fit: epochs and batch must be > 0, val_split in [0,1)");
    train = *train_in;
    if (o.val) vp = o.val;
    else if (o.val_split > 0.0f) {
        if (nn_dataset_split(train_in, o.val_split, &train, &val) != NN_OK)
            return nn__fail(m, NN_ERR_INVALID_ARGUMENT,
                            "nn_fit: val_split %g leaves no data on one side", (double)o.val_split);
        vp = &val;
    }
    if ((s = nn__check_data(m, &train, "training")) != NN_OK) return s;
    if (vp && (s = nn__check_data(m, vp, "validation")) != NN_OK) return s;
    if (o.patience > 0 && !vp)
        return nn__fail(m, NN_ERR_INVALID_ARGUMENT,
                        "early stopping (patience) needs a validation set or val_split");
    if (o.batch > train.n) o.batch = train.n;
    /* everything fit needs is allocated here, before the first step */
    if ((s = nn__plan(m, o.batch)) != NN_OK) return s;
    perm = (int *)NN_MALLOC((size_t)train.n * sizeof(int));
    if (!perm) return nn__fail(m, NN_ERR_NO_MEMORY, "out of memory for the shuffle index");
    if (o.patience > 0 && o.restore_best) {
        best = (float *)nn_aligned_alloc((m->nparams + m->nbufs + 1) * sizeof(float));
        if (!best) {
            NN_FREE(perm);
            return nn__fail(m, NN_ERR_NO_MEMORY, "out of memory for the best weights");
        }
    }
    for (i = 0; i < train.n; i++) perm[i] = i;
    tty = o.verbose && nn__stderr_tty();
    nb = (train.n + o.batch - 1) / o.batch;
    o.epochs_run = 0;
    for (epoch = 1; epoch <= o.epochs && s == NN_OK; epoch++) {
        nn_fit_event ev;
        double Ls = 0.0, t0, tlast = 0.0;
        long oks = 0, denom = 0, seen = 0;
        int b, stop = 0;
        /* learning rate for this epoch */
        if (o.schedule == NN_SCHEDULE_STEP && o.step_size > 0)
            m->lr_now =
                m->opt.lr * (float)pow((double)o.gamma, (double)((epoch - 1) / o.step_size));
        else if (o.schedule == NN_SCHEDULE_COSINE)
            m->lr_now = o.min_lr +
                        0.5f * (m->opt.lr - o.min_lr) *
                            (float)(1.0 + cos(3.14159265358979 * (epoch - 1) / (double)o.epochs));
        else m->lr_now = m->opt.lr;
        if (o.shuffle)
            for (i = train.n - 1; i > 0; i--) {
                int j = (int)nn_rng_below(&m->rng, (uint32_t)i + 1), t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
        memset(&ev, 0, sizeof ev);
        ev.epoch = epoch;
        ev.epochs = o.epochs;
        ev.batches = nb;
        ev.lr = m->lr_now;
        ev.val_loss = ev.val_accuracy = NAN;
        t0 = nn_time_seconds();
        for (b = 0; b < nb; b++) {
            int start = b * o.batch, B = train.n - start < o.batch ? train.n - start : o.batch;
            float L, acc;
            nn__probe_before(m, &probe);
            nn__gather(m, &train, perm, start, B);
            if ((s = nn__forward_checked(m, m->xin, B, 1)) != NN_OK) break;
            if (m->opt_in_bwd) s = nn__backward(m, m->ybuf, &L, &acc, 1);
            else {
                s = nn_backward(m, m->ybuf, &L, &acc);
                if (s == NN_OK) s = nn_step(m);
            }
            nn__probe_after(m, &probe);
            if (s != NN_OK) break;
            Ls += (double)L * B;
            seen += B;
            if (acc == acc) {
                long d = nn__acc_den(m, B);
                oks += (long)(acc * (float)d + 0.5f);
                denom += d;
            }
            if (o.verbose || o.on_batch) {
                double now = nn_time_seconds();
                ev.batch = b + 1;
                ev.loss = (float)(Ls / seen);
                ev.accuracy = denom ? (float)oks / (float)denom : NAN;
                ev.elapsed_s = now - t0;
                if (tty && (now - tlast > 0.1 || b + 1 == nb)) {
                    nn__progress(&ev, 1, (int)seen, 0);
                    tlast = now;
                }
                if (o.on_batch && o.on_batch(&ev, o.user)) stop = 1;
                if (stop) break;
            }
        }
        train_time += nn_time_seconds() - t0;
        if (s != NN_OK) break;
        o.epochs_run = epoch;
        ev.batch = 0;
        ev.loss = seen ? (float)(Ls / seen) : NAN;
        ev.accuracy = denom ? (float)oks / (float)denom : NAN;
        ev.elapsed_s = nn_time_seconds() - t0;
        if (vp) {
            s = nn_evaluate(m, vp, o.batch, &ev.val_loss, &ev.val_accuracy);
            if (s != NN_OK) break;
        }
        if (o.verbose) nn__progress(&ev, tty, (int)seen, 1);
        if (o.on_epoch && o.on_epoch(&ev, o.user)) stop = 1;
        if (o.patience > 0) {
            float score = o.monitor == NN_MONITOR_VAL_ACCURACY ? -ev.val_accuracy : ev.val_loss;
            if (score < best_score) {
                best_score = score;
                bad = 0;
                if (best) {
                    memcpy(best, m->params, m->nparams * sizeof(float));
                    if (m->nbufs) memcpy(best + m->nparams, m->bufs, m->nbufs * sizeof(float));
                }
            } else if (++bad >= o.patience) {
                if (o.verbose)
                    fprintf(stderr, "early stopping after epoch %d (best epoch %d)\n", epoch,
                            epoch - bad);
                stop = 1;
            }
        }
        if (stop) break;
    }
    if (best && s == NN_OK && best_score < INFINITY) {
        memcpy(m->params, best, m->nparams * sizeof(float));
        if (m->nbufs) memcpy(m->bufs, best + m->nparams, m->nbufs * sizeof(float));
    }
    nn_aligned_free(best);
    NN_FREE(perm);
    m->par_cap = 0; /* the probe's choice ends with the fit */
    if (opts) {
        opts->train_seconds = train_time;
        opts->epochs_run = o.epochs_run;
    }
    return s;
}

/* ========================================================================= */
/* ==== 8. Data and I/O                                                       */
/* ========================================================================= */
/* ---- 8.1 datasets ---- */

NN__API void nn_dataset_free(nn_dataset *ds) {
    if (!ds) return;
    if (ds->owns) {
        nn_aligned_free(ds->x);
        nn_aligned_free(ds->x_u8);
        nn_aligned_free(ds->y);
    }
    memset(ds, 0, sizeof *ds);
}
static int nn__labels_classes(const float *y, int n) {
    int i, mx = -1;
    for (i = 0; i < n; i++) {
        float v = y[i];
        if (!(v >= 0.0f && v <= 1e6f) || v != (float)(int)v) return 0;
        if ((int)v > mx) mx = (int)v;
    }
    return mx + 1;
}
NN__API nn_status nn_dataset_from_arrays(nn_dataset *ds, int n, nn_shape shape, const float *x,
                                         int y_dim, const float *y) {
    size_t xd;
    if (!ds) return NN_ERR_INVALID_ARGUMENT;
    memset(ds, 0, sizeof *ds);
    if (n <= 0 || !x || y_dim < 0 || (y_dim > 0 && !y) || shape.ndim < 1 || shape.ndim > 3)
        return NN_ERR_INVALID_ARGUMENT;
    if (shape.d[0] <= 0 || shape.d[1] <= 0 || shape.d[2] <= 0) return NN_ERR_INVALID_ARGUMENT;
    /* a sample holds at most 1e9 floats, and the arrays' sizes fit in a
     * size_t (a (2^21, 2^21, 2^22) sample wrapped to 0 floats; (2^16)^3
     * asked for 2^48) */
    if (!nn__shape_tail_ok(shape) ||
        (double)shape.d[0] * shape.d[1] * shape.d[2] > 1e9 ||
        (double)n * ((double)shape.d[0] * shape.d[1] * shape.d[2] + (double)y_dim) >
            (double)((size_t)-1 / sizeof(float) / 2))
        return NN_ERR_SHAPE;
    xd = nn__shape_size(shape);
    if (!nn__all_finite(x, (size_t)n * xd)) return NN_ERR_NONFINITE;
    if (y_dim && !nn__all_finite(y, (size_t)n * y_dim)) return NN_ERR_NONFINITE;
    ds->x = (float *)nn_aligned_alloc((size_t)n * xd * sizeof(float));
    ds->y = (float *)nn_aligned_alloc(((size_t)n * y_dim + 1) * sizeof(float));
    if (!ds->x || !ds->y) {
        nn_aligned_free(ds->x);
        nn_aligned_free(ds->y);
        memset(ds, 0, sizeof *ds);
        return NN_ERR_NO_MEMORY;
    }
    memcpy(ds->x, x, (size_t)n * xd * sizeof(float));
    if (y_dim) memcpy(ds->y, y, (size_t)n * y_dim * sizeof(float));
    ds->n = n;
    ds->shape = shape;
    ds->x_dim = xd;
    ds->y_dim = y_dim;
    ds->x_scale = 1.0f;
    ds->num_classes = y_dim == 1 ? nn__labels_classes(ds->y, n) : 0;
    ds->owns = 1;
    return NN_OK;
}
NN__API void nn_dataset_get_x(const nn_dataset *ds, int i, float *out) {
    if (ds->x_u8) nn__k()->u8f(ds->x_dim, ds->x_u8 + (size_t)i * ds->x_dim, ds->x_scale, out);
    else memcpy(out, ds->x + (size_t)i * ds->x_dim, ds->x_dim * sizeof(float));
}
static void nn__swap_bytes(unsigned char *a, unsigned char *b, size_t n) {
    size_t k;
    for (k = 0; k < n; k++) {
        unsigned char t = a[k];
        a[k] = b[k];
        b[k] = t;
    }
}
NN__API nn_status nn_dataset_shuffle(nn_dataset *ds, uint64_t seed) {
    nn_rng rng;
    int i;
    size_t xb, yb;
    if (!ds || ds->n <= 0 || (!ds->x && !ds->x_u8) || ds->y_dim < 0 || (ds->y_dim > 0 && !ds->y))
        return NN_ERR_INVALID_ARGUMENT;
    xb = ds->x_dim * sizeof(float);
    yb = (size_t)ds->y_dim * sizeof(float);
    nn_rng_seed(&rng, seed);
    /* rows i and j swap in place: nothing allocated; every array the
     * dataset has moves (x and x_u8 alike, whichever nn_dataset_get_x reads) */
    for (i = ds->n - 1; i > 0; i--) {
        size_t j = nn_rng_below(&rng, (uint32_t)i + 1);
        if (j == (size_t)i) continue;
        if (ds->x) nn__swap_bytes((unsigned char *)(ds->x + (size_t)i * ds->x_dim),
                                  (unsigned char *)(ds->x + j * ds->x_dim), xb);
        if (ds->x_u8)
            nn__swap_bytes(ds->x_u8 + (size_t)i * ds->x_dim, ds->x_u8 + j * ds->x_dim, ds->x_dim);
        if (yb) nn__swap_bytes((unsigned char *)(ds->y + (size_t)i * ds->y_dim),
                               (unsigned char *)(ds->y + j * ds->y_dim), yb);
    }
    return NN_OK;
}
NN__API nn_status nn_dataset_split(const nn_dataset *ds, float fraction, nn_dataset *first,
                                   nn_dataset *second) {
    int n2;
    if (!ds || !first || !second || !(fraction > 0.0f && fraction < 1.0f))
        return NN_ERR_INVALID_ARGUMENT;
    n2 = (int)((double)ds->n * fraction);
    if (n2 < 1 || n2 >= ds->n) return NN_ERR_INVALID_ARGUMENT;
    *first = *ds;
    *second = *ds;
    first->owns = second->owns = 0;
    first->n = ds->n - n2;
    second->n = n2;
    if (ds->x) second->x = ds->x + (size_t)first->n * ds->x_dim;
    if (ds->x_u8) second->x_u8 = ds->x_u8 + (size_t)first->n * ds->x_dim;
    second->y = ds->y + (size_t)first->n * ds->y_dim;
    return NN_OK;
}

/* ---- 8.2 loaders: IDX, CSV ---- */
/* Whole file into memory, refusing anything over `limit` bytes. */
static nn_status nn__read_file(const char *path, size_t limit, unsigned char **out, size_t *len) {
    FILE *f;
    long sz;
    unsigned char *buf;
    *out = NULL;
    *len = 0;
    if (!path) return NN_ERR_INVALID_ARGUMENT;
    f = fopen(path, "rb");
    if (!f) return NN_ERR_IO;
    if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NN_ERR_IO;
    }
    if ((unsigned long)sz > (unsigned long)limit) {
        fclose(f);
        return NN_ERR_FORMAT;
    }
    /* A directory opens and seeks on Linux, with whatever size its file
     * system reports (ext4 tells a 32-bit process 2^31 - 1, which then
     * failed as "out of memory"): read a byte before allocating. */
    if (sz > 0 && (getc(f) == EOF || fseek(f, 0, SEEK_SET) != 0)) {
        fclose(f);
        return NN_ERR_IO;
    }
    buf = (unsigned char *)NN_MALLOC((size_t)sz + 1);
    if (!buf) {
        fclose(f);
        return NN_ERR_NO_MEMORY;
    }
    if (sz > 0 && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        NN_FREE(buf);
        fclose(f);
        return NN_ERR_IO;
    }
    fclose(f);
    *out = buf;
    *len = (size_t)sz;
    return NN_OK;
}
static uint32_t nn__be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
/* IDX: 2 zero bytes, type 0x08 (u8), ndims, big-endian dims, data */
static nn_status nn__idx_parse(const unsigned char *b, size_t len, int want_dims, uint32_t *dims) {
    uint64_t need = 1; /* 64 bits: 2^40 does not fit a 32-bit size_t (wasm32, i386) */
    int i;
    if (len < 4 || b[0] != 0 || b[1] != 0) return NN_ERR_FORMAT;
    if (b[2] != 0x08 || b[3] != want_dims) return NN_ERR_FORMAT;
    if (len < 4 + 4 * (size_t)want_dims) return NN_ERR_FORMAT;
    for (i = 0; i < want_dims; i++) {
        dims[i] = nn__be32(b + 4 + 4 * i);
        if (dims[i] == 0 || dims[i] > (1u << 28)) return NN_ERR_FORMAT;
        if (need > ((uint64_t)1 << 40) / dims[i]) return NN_ERR_FORMAT;
        need *= dims[i];
    }
    if ((uint64_t)len != 4 + 4 * (uint64_t)want_dims + need) return NN_ERR_FORMAT;
    return NN_OK;
}
NN__API nn_status nn_dataset_load_idx(nn_dataset *ds, const char *images_path,
                                      const char *labels_path) {
    unsigned char *ib = NULL, *lb = NULL;
    size_t il, ll, i, npix;
    uint32_t idim[3], ldim[1];
    nn_status s;
    if (!ds) return NN_ERR_INVALID_ARGUMENT;
    memset(ds, 0, sizeof *ds);
    if ((s = nn__read_file(images_path, (size_t)1 << 31, &ib, &il)) != NN_OK) return s;
    if ((s = nn__read_file(labels_path, (size_t)1 << 28, &lb, &ll)) != NN_OK) {
        NN_FREE(ib);
        return s;
    }
    s = nn__idx_parse(ib, il, 3, idim);
    if (s == NN_OK) s = nn__idx_parse(lb, ll, 1, ldim);
    if (s == NN_OK && idim[0] != ldim[0]) s = NN_ERR_FORMAT;
    if (s != NN_OK) {
        NN_FREE(ib);
        NN_FREE(lb);
        return s;
    }
    npix = (size_t)idim[1] * idim[2];
    ds->x_u8 = (unsigned char *)nn_aligned_alloc((size_t)idim[0] * npix);
    ds->y = (float *)nn_aligned_alloc((size_t)idim[0] * sizeof(float));
    if (!ds->x_u8 || !ds->y) {
        nn_aligned_free(ds->x_u8);
        nn_aligned_free(ds->y);
        NN_FREE(ib);
        NN_FREE(lb);
        memset(ds, 0, sizeof *ds);
        return NN_ERR_NO_MEMORY;
    }
    memcpy(ds->x_u8, ib + 16, (size_t)idim[0] * npix);
    ds->num_classes = 0;
    for (i = 0; i < ldim[0]; i++) {
        ds->y[i] = (float)lb[8 + i];
        if ((int)lb[8 + i] + 1 > ds->num_classes) ds->num_classes = lb[8 + i] + 1;
    }
    NN_FREE(ib);
    NN_FREE(lb);
    ds->n = (int)idim[0];
    ds->shape = nn_shape3((int)idim[1], (int)idim[2], 1);
    ds->x_dim = npix;
    ds->y_dim = 1;
    ds->x_scale = 1.0f / 255.0f;
    ds->owns = 1;
    return NN_OK;
}

/* CSV: numbers separated by commas; one row per line; every row the same
 * number of columns. */
NN__API nn_status nn_dataset_load_csv(nn_dataset *ds, const char *path, int has_header,
                                      int label_col) {
    unsigned char *buf;
    size_t len, rows = 0, cols = 0, pass, k, xk, yk;
    nn_status s;
    float *x = NULL, *y = NULL;
    if (!ds) return NN_ERR_INVALID_ARGUMENT;
    memset(ds, 0, sizeof *ds);
    if (label_col < -1) return NN_ERR_INVALID_ARGUMENT; /* -1 is the last column, -5 nothing */
    if ((s = nn__read_file(path, (size_t)1 << 30, &buf, &len)) != NN_OK) return s;
    buf[len] = 0;
    /* pass 0 counts and validates, pass 1 fills */
    for (pass = 0; pass < 2; pass++) {
        char *p = (char *)buf;
        size_t r = 0, lc;
        xk = yk = 0;
        if (has_header) {
            while (*p && *p != '\n') p++;
            if (*p) p++;
        }
        while (*p) {
            size_t c = 0;
            int lab;
            while (*p == '\r' || *p == ' ' || *p == '\t') p++;
            if (*p == '\n') { p++; continue; } /* blank line */
            if (!*p) break;
            for (;;) {
                char *end;
                double v = strtod(p, &end);
                /* NaN, Inf, or beyond float */
                if (end == p || !(v == v) || v > FLT_MAX || v < -FLT_MAX) {
                    NN_FREE(buf);
                    nn_aligned_free(x);
                    nn_aligned_free(y);
                    return pass == 0 && end != p ? NN_ERR_NONFINITE : NN_ERR_FORMAT;
                }
                if (pass == 1) {
                    lab = label_col < 0 ? (c == cols - 1) : (c == (size_t)label_col);
                    if (lab) y[yk++] = (float)v;
                    else x[xk++] = (float)v;
                }
                c++;
                p = end;
                while (*p == ' ' || *p == '\t' || *p == '\r') p++;
                if (*p == ',') {
                    p++;
                    while (*p == ' ' || *p == '\t') p++;
                    /* empty field: strtod would skip the newline */
                    if (*p == '\n' || *p == '\r' || !*p) {
                        NN_FREE(buf);
                        nn_aligned_free(x);
                        nn_aligned_free(y);
                        return NN_ERR_FORMAT;
                    }
                    continue;
                }
                if (*p == '\n' || !*p) { if (*p) p++; break; }
                NN_FREE(buf);
                nn_aligned_free(x);
                nn_aligned_free(y);
                return NN_ERR_FORMAT;
            }
            lc = c;
            if (r == 0 && pass == 0) cols = lc;
            if (lc != cols) {
                NN_FREE(buf);
                nn_aligned_free(x);
                nn_aligned_free(y);
                return NN_ERR_FORMAT;
            }
            r++;
        }
        if (pass == 0) {
            rows = r;
            if (rows == 0 || cols < 2 || (label_col >= 0 && (size_t)label_col >= cols) ||
                rows > (size_t)1 << 30) {
                NN_FREE(buf);
                return NN_ERR_FORMAT;
            }
            x = (float *)nn_aligned_alloc(rows * (cols - 1) * sizeof(float));
            y = (float *)nn_aligned_alloc(rows * sizeof(float));
            if (!x || !y) {
                NN_FREE(buf);
                nn_aligned_free(x);
                nn_aligned_free(y);
                return NN_ERR_NO_MEMORY;
            }
        }
    }
    NN_FREE(buf);
    (void)k;
    ds->x = x;
    ds->y = y;
    ds->n = (int)rows;
    ds->shape = nn_shape1((int)cols - 1);
    ds->x_dim = cols - 1;
    ds->y_dim = 1;
    ds->x_scale = 1.0f;
    ds->num_classes = nn__labels_classes(y, (int)rows);
    ds->owns = 1;
    return NN_OK;
}

/* ---- 8.3 model files ---------------------------------------------------------
 * Little-endian throughout: "NNH\x1a", u32 version, u32 nsections, then
 * sections (u32 tag, u32 0, u64 length, payload), then a u32 CRC32 of
 * everything before it.  Sections:
 *   ARCH  input shape (u32 ndim, 3 x u32), u32 layers, each layer (below),
 *         then the loss and the optimizer settings (u32 loss, u32 kind, 8 x
 *         f32 lr momentum beta1 beta2 eps rho weight_decay clip_norm, u32
 *         nesterov)
 *   PARM  u64 count, the parameters (layer by layer: weights then bias,
 *         each layer padded to 16 floats; a dense layer's weights in
 *         (in, units) order, as 0.1.0 held them: nn__params_io)
 *   BUFS  u64 count, the buffers (batch-norm running statistics, ...)
 *   OPTS  (optional) u64 step, u64 count, first then second moments
 * A layer, format 2: u32 name length, its row's name (no NUL), u32
 * activation, u32 frozen, f32 leaky slope, u32 nset, nset x i32 settings
 * (the row's save/load).  Kinds are found by name, so the order of rows,
 * enums or anything else in nn.h never changes what a file means.
 * Format 1 (nn.h 0.1.0) wrote 11 fixed fields with the kind as a number:
 * nn__v1_layer maps them, and files of both formats load. */
#define NN__FILE_VERSION 2u
#define NN__TAG(a, b, c, d)                                                                        \
    ((uint32_t)(a) | ((uint32_t)(b) << 8) | ((uint32_t)(c) << 16) | ((uint32_t)(d) << 24))

static uint32_t nn__crc32(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    size_t i;
    int k;
    for (i = 0; i < n; i++) {
        c ^= p[i];
        for (k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}
struct nn__wbuf {
    unsigned char *p;
    size_t n, cap;
    int oom;
};
static void nn__put(nn__wbuf *w, const void *src, size_t n) {
    if (w->oom) return;
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        unsigned char *np;
        while (cap < w->n + n) cap *= 2;
        np = (unsigned char *)NN_MALLOC(cap);
        if (!np) {
            w->oom = 1;
            return;
        }
        if (w->n) memcpy(np, w->p, w->n);
        NN_FREE(w->p);
        w->p = np;
        w->cap = cap;
    }
    memcpy(w->p + w->n, src, n);
    w->n += n;
}
static void nn__put_u32(nn__wbuf *w, uint32_t v) {
    unsigned char b[4];
    b[0] = (unsigned char)v;
    b[1] = (unsigned char)(v >> 8);
    b[2] = (unsigned char)(v >> 16);
    b[3] = (unsigned char)(v >> 24);
    nn__put(w, b, 4);
}
static void nn__put_u64(nn__wbuf *w, uint64_t v) {
    nn__put_u32(w, (uint32_t)v);
    nn__put_u32(w, (uint32_t)(v >> 32));
}
static void nn__put_f32(nn__wbuf *w, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    nn__put_u32(w, u);
}
static void nn__put_floats(nn__wbuf *w, const float *f, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) nn__put_f32(w, f[i]);
}
struct nn__rbuf {
    const unsigned char *p;
    size_t n, pos;
    int bad;
};
static float nn__get_f32(nn__rbuf *r);
/* One parameter-shaped array (parameters, either optimizer moment) in file
 * order, to w or from r: nn.h holds dense weights (units, in) since 0.4,
 * PyTorch's order, so that safetensors files read in place; format 2 keeps
 * the (in, units) of the files 0.1.0 to 0.3.0 wrote and read. */
static void nn__params_io(const nn_model *m, float *a, nn__wbuf *w, nn__rbuf *r) {
    size_t pos = 0, k, u;
    int i;
    for (i = 0; i <= m->n; i++) {
        const nn__layer *L = i < m->n ? &m->L[i] : NULL;
        size_t end = L ? L->woff : m->nparams, U, in;
        for (; pos < end; pos++) /* everything but dense weights: as it is */
            if (w) nn__put_f32(w, a[pos]);
            else a[pos] = nn__get_f32(r);
        if (!L || L->k != &nn__row_dense || !L->nw) continue;
        U = (size_t)L->dense.units, in = nn__channels(L->in);
        for (k = 0; k < in; k++)
            for (u = 0; u < U; u++)
                if (w) nn__put_f32(w, a[pos + u * in + k]);
                else a[pos + u * in + k] = nn__get_f32(r);
        pos += L->nw;
    }
}
static uint32_t nn__get_u32(nn__rbuf *r) {
    const unsigned char *b;
    if (r->bad || r->n - r->pos < 4) {
        r->bad = 1;
        return 0;
    }
    b = r->p + r->pos;
    r->pos += 4;
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}
static uint64_t nn__get_u64(nn__rbuf *r) {
    uint64_t lo = nn__get_u32(r);
    return lo | ((uint64_t)nn__get_u32(r) << 32);
}
static float nn__get_f32(nn__rbuf *r) {
    uint32_t u = nn__get_u32(r);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static int32_t nn__get_i32(nn__rbuf *r) {
    uint32_t u = nn__get_u32(r);
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

/* The ARCH payload: the input shape, the layers, the loss and the optimizer
 * settings (also the "nnh.arch" metadata of a safetensors file, in hex) */
static void nn__arch_put(nn__wbuf *w, const nn_model *m) {
    int i;
    nn__put_u32(w, (uint32_t)m->input.ndim);
    for (i = 0; i < 3; i++) nn__put_u32(w, (uint32_t)m->input.d[i]);
    nn__put_u32(w, (uint32_t)m->n);
    for (i = 0; i < m->n; i++) {
        const nn__layer *L = &m->L[i];
        int32_t set[NN__MAX_SET];
        int j, nset = L->k->nset;
        /* a fused head is saved as the activation it was built with */
        nn_activation a =
            (i == m->n - 1 && m->head != NN__HEAD_NONE &&
             (m->loss == NN_LOSS_CATEGORICAL_CE || m->loss == NN_LOSS_SPARSE_CATEGORICAL_CE ||
              m->loss == NN_LOSS_BINARY_CE))
                ? (m->head == NN__HEAD_SOFTMAX ? NN_SOFTMAX : NN_SIGMOID)
                : L->act;
        nn__put_u32(w, (uint32_t)strlen(L->k->name));
        nn__put(w, L->k->name, strlen(L->k->name));
        nn__put_u32(w, (uint32_t)a);
        nn__put_u32(w, (uint32_t)L->frozen);
        nn__put_f32(w, L->slope);
        memset(set, 0, sizeof set);
        L->k->save(L, set);
        /* settings added after 0.2.0 go out only when set: older readers
         * still read every file that does not use them */
        while (nset > L->k->nset_min && set[nset - 1] == 0) nset--;
        nn__put_u32(w, (uint32_t)nset);
        for (j = 0; j < nset; j++) nn__put_u32(w, (uint32_t)set[j]);
    }
    nn__put_u32(w, (uint32_t)m->loss);
    nn__put_u32(w, (uint32_t)m->opt.kind);
    nn__put_f32(w, m->opt.lr);
    nn__put_f32(w, m->opt.momentum);
    nn__put_f32(w, m->opt.beta1);
    nn__put_f32(w, m->opt.beta2);
    nn__put_f32(w, m->opt.eps);
    nn__put_f32(w, m->opt.rho);
    nn__put_f32(w, m->opt.weight_decay);
    nn__put_f32(w, m->opt.clip_norm);
    nn__put_u32(w, (uint32_t)m->opt.nesterov);
}

NN__API nn_status nn_save(const nn_model *m, const char *path, int with_optimizer) {
    nn__wbuf w;
    size_t lenpos, start;
    int i;
    FILE *f;
    uint32_t crc;
    if (!m || !path) return NN_ERR_INVALID_ARGUMENT;
    if (!m->compiled) return NN_ERR_STATE;
    memset(&w, 0, sizeof w);
    nn__put(&w, "NNH\x1a", 4);
    nn__put_u32(&w, NN__FILE_VERSION);
    nn__put_u32(&w, m->q8 ? 2u : with_optimizer ? 4u : 3u); /* int8: ARCH, QINT */
    /* ARCH */
    nn__put_u32(&w, NN__TAG('A', 'R', 'C', 'H'));
    nn__put_u32(&w, 0);
    lenpos = w.n;
    nn__put_u64(&w, 0);
    start = w.n;
    nn__arch_put(&w, m);
    if (!w.oom) {
        uint64_t len = w.n - start;
        for (i = 0; i < 8; i++) w.p[lenpos + i] = (unsigned char)(len >> (8 * i));
    }
    if (m->q8) { /* the int8 numbers instead of the float ones (section 9) */
        nn__put_u32(&w, NN__TAG('Q', 'I', 'N', 'T'));
        nn__put_u32(&w, 0);
        lenpos = w.n;
        nn__put_u64(&w, 0);
        start = w.n;
        nn__q8_put(&w, m->q8);
        if (!w.oom) {
            uint64_t len = w.n - start;
            for (i = 0; i < 8; i++) w.p[lenpos + i] = (unsigned char)(len >> (8 * i));
        }
        goto crc;
    }
    /* PARM, BUFS */
    nn__put_u32(&w, NN__TAG('P', 'A', 'R', 'M'));
    nn__put_u32(&w, 0);
    nn__put_u64(&w, 8 + 4 * (uint64_t)m->nparams);
    nn__put_u64(&w, m->nparams);
    nn__params_io(m, m->params, &w, NULL);
    nn__put_u32(&w, NN__TAG('B', 'U', 'F', 'S'));
    nn__put_u32(&w, 0);
    nn__put_u64(&w, 8 + 4 * (uint64_t)m->nbufs);
    nn__put_u64(&w, m->nbufs);
    nn__put_floats(&w, m->bufs, m->nbufs);
    if (with_optimizer) {
        nn__put_u32(&w, NN__TAG('O', 'P', 'T', 'S'));
        nn__put_u32(&w, 0);
        nn__put_u64(&w, 16 + 8 * (uint64_t)m->nparams);
        nn__put_u64(&w, (uint64_t)m->step);
        nn__put_u64(&w, m->nparams);
        if (m->om) {
            nn__params_io(m, m->om, &w, NULL);
            nn__params_io(m, m->ov, &w, NULL);
        } else { /* never trained since compile or load: the moments are zero */
            size_t z;
            for (z = 0; z < 2 * m->nparams; z++) nn__put_f32(&w, 0.0f);
        }
    }
crc:
    if (w.oom) {
        NN_FREE(w.p);
        return NN_ERR_NO_MEMORY;
    }
    crc = nn__crc32(w.p, w.n);
    nn__put_u32(&w, crc);
    if (w.oom) {
        NN_FREE(w.p);
        return NN_ERR_NO_MEMORY;
    }
    f = fopen(path, "wb");
    if (!f) {
        NN_FREE(w.p);
        return NN_ERR_IO;
    }
    if (fwrite(w.p, 1, w.n, f) != w.n) {
        fclose(f);
        NN_FREE(w.p);
        return NN_ERR_IO;
    }
    NN_FREE(w.p);
    return fclose(f) == 0 ? NN_OK : NN_ERR_IO;
}

/* A layer record of format 2 (see above): its row, or NULL */
static const nn__lkind *nn__v2_layer(nn__rbuf *r, int *act, int *frozen, float *slope,
                                     int32_t *set) {
    uint32_t len = nn__get_u32(r), nset, j;
    const nn__lkind *k;
    if (r->bad || len == 0 || len > 64 || len > r->n - r->pos) return NULL;
    k = nn__kind_named((const char *)r->p + r->pos, len);
    r->pos += len;
    *act = (int)nn__get_u32(r);
    *frozen = nn__get_i32(r);
    *slope = nn__get_f32(r);
    nset = nn__get_u32(r);
    if (!k || r->bad || nset < (uint32_t)k->nset_min || nset > (uint32_t)k->nset ||
        nset > NN__MAX_SET)
        return NULL;
    for (j = 0; j < nset; j++) set[j] = nn__get_i32(r); /* the rest stay 0 */
    return k;
}
/* A layer record of format 1 (nn.h 0.1.0): kind, act, units, kh (the cell
 * for a recurrent layer), kw, stride, same, pool, frozen, rate, slope, the
 * kind numbered 1 dense, 2 conv2d, 3 maxpool2d, 4 avgpool2d, 5 flatten,
 * 6 activation, 7 dropout, 8 batchnorm, 9 upsample2d, 10 embedding,
 * 11 recurrent (cell 1 rnn, 2 lstm, 3 gru).  Frozen forever: kinds added
 * later never appear in format 1. */
static const nn__lkind *nn__v1_layer(nn__rbuf *r, int *act, int *frozen, float *slope,
                                     int32_t *set) {
    static const nn__lkind *const kinds[] = {NULL,
                                             &nn__row_dense,
                                             &nn__row_conv,
                                             &nn__row_maxpool,
                                             &nn__row_avgpool,
                                             &nn__row_flatten,
                                             &nn__row_act,
                                             &nn__row_dropout,
                                             &nn__row_bn,
                                             &nn__row_up,
                                             &nn__row_embed,
                                             NULL};
    uint32_t kind = nn__get_u32(r);
    int32_t units, kh, kw, st, same, pool;
    float rate;
    *act = (int)nn__get_u32(r);
    units = nn__get_i32(r);
    kh = nn__get_i32(r);
    kw = nn__get_i32(r);
    st = nn__get_i32(r);
    same = nn__get_i32(r);
    pool = nn__get_i32(r);
    *frozen = nn__get_i32(r);
    rate = nn__get_f32(r);
    *slope = nn__get_f32(r);
    if (r->bad || kind < 1 || kind > 11) return NULL;
    switch (kind) {
    case 1: set[0] = units; break;
    case 2: set[0] = units, set[1] = kh, set[2] = kw, set[3] = st, set[4] = same; break;
    case 3: case 4: case 9: set[0] = pool; break;
    case 7: memcpy(&set[0], &rate, 4); break;
    case 10: set[0] = pool, set[1] = units; break;
    case 11:
        set[0] = units, set[1] = same;
        return kh == 1 ? &nn__row_rnn : kh == 2 ? &nn__row_lstm : kh == 3 ? &nn__row_gru : NULL;
    default: break;
    }
    return kinds[kind];
}

/* Build and compile the model an ARCH payload describes (r at its start,
 * end its end).  avail_floats bounds the parameters the rest of the file
 * can hold, checked before anything that large is allocated.  NN_ERR_FORMAT
 * for anything malformed, NN_ERR_NO_MEMORY; *pm NULL unless NN_OK. */
static nn_status nn__arch_get(nn__rbuf *r, uint32_t version, size_t end, uint64_t avail_floats,
                              nn_model **pm) {
    nn_shape in;
    uint32_t nl, i;
    nn_optimizer o;
    nn_loss loss;
    int frozen, act, oom = 0;
    float slope;
    nn_model *m;
    *pm = NULL;
    in.ndim = (int)nn__get_u32(r);
    in.d[0] = nn__get_i32(r);
    in.d[1] = nn__get_i32(r);
    in.d[2] = nn__get_i32(r);
    nl = nn__get_u32(r);
    /* a layer record is at least 21 bytes (format 2), 44 (format 1):
     * the count is bounded by the file before anything is built */
    if (r->bad || nl == 0 || nl > 65536 || (uint64_t)nl * (version == 1 ? 44 : 21) > r->n - r->pos)
        return NN_ERR_FORMAT;
    m = nn_model_new(in);
    if (!m) return NN_ERR_NO_MEMORY;
    for (i = 0; i < nl && !r->bad; i++) {
        int32_t set[NN__MAX_SET] = {0};
        const nn__lkind *k = version == 1 ? nn__v1_layer(r, &act, &frozen, &slope, set)
                                          : nn__v2_layer(r, &act, &frozen, &slope, set);
        if (!k || r->bad || act < (int)NN_LINEAR || act > (int)NN_SOFTMAX) {
            r->bad = 1;
            break;
        }
        k->load(m, set, (nn_activation)act);
        if (m->status == NN_OK && act == NN_LEAKY_RELU) nn_leaky_relu_slope(m, slope);
        if (m->status != NN_OK) r->bad = 1;
        else m->L[m->n - 1].frozen = frozen != 0; /* compile leaves it alone */
    }
    if (m->status == NN_ERR_NO_MEMORY) oom = 1;
    loss = (nn_loss)nn__get_u32(r);
    memset(&o, 0, sizeof o);
    o.kind = (nn_opt_kind)nn__get_u32(r);
    o.lr = nn__get_f32(r);
    o.momentum = nn__get_f32(r);
    o.beta1 = nn__get_f32(r);
    o.beta2 = nn__get_f32(r);
    o.eps = nn__get_f32(r);
    o.rho = nn__get_f32(r);
    o.weight_decay = nn__get_f32(r);
    o.clip_norm = nn__get_f32(r);
    o.nesterov = (int)nn__get_u32(r);
    if (!r->bad && r->pos == end) {
        /* the parameters the architecture implies must fit in the rest of
         * the file before anything that large is allocated */
        uint64_t np = 0;
        nn_status cs;
        /* statistics too: the file holds them (BUFS, or tensors) */
        for (i = 0; i < (uint32_t)m->n; i++)
            np += ((m->L[i].nw + m->L[i].nb + 15) & ~(size_t)15) + (uint64_t)m->L[i].nbuf;
        if (np > avail_floats + 16 || np >= ((uint64_t)1 << 30)) {
            r->bad = 1;
        } else if ((m->from_file = 1, cs = nn_compile(m, o, loss)) != NN_OK) {
            oom = cs == NN_ERR_NO_MEMORY;
            r->bad = 1;
        }
    } else {
        r->bad = 1;
    }
    if (r->bad) {
        nn_model_free(m);
        return oom ? NN_ERR_NO_MEMORY : NN_ERR_FORMAT;
    }
    *pm = m;
    return NN_OK;
}

static nn_status nn__st_load_model(nn_model **out, const char *path);
NN__API nn_status nn_load(nn_model **out, const char *path) {
    unsigned char *buf;
    size_t len;
    nn__rbuf r;
    nn_status s;
    uint32_t nsec, sec, crc, version;
    nn_model *m = NULL;
    int have_parm = 0, oom = 0, q8file = 0;
    if (!out) return NN_ERR_INVALID_ARGUMENT;
    *out = NULL;
    { /* a safetensors file (nn_save_safetensors) starts with its header's length */
        FILE *f = path ? fopen(path, "rb") : NULL;
        unsigned char magic[4];
        int st = f && fread(magic, 1, 4, f) == 4 && memcmp(magic, "NNH\x1a", 4) != 0;
        if (f) fclose(f);
        if (st) return nn__st_load_model(out, path);
    }
    if ((s = nn__read_file(path, (size_t)1 << 31, &buf, &len)) != NN_OK) return s;
    if (len < 16 || memcmp(buf, "NNH\x1a", 4) != 0) {
        NN_FREE(buf);
        return NN_ERR_FORMAT;
    }
    crc = (uint32_t)buf[len - 4] | ((uint32_t)buf[len - 3] << 8) | ((uint32_t)buf[len - 2] << 16) |
          ((uint32_t)buf[len - 1] << 24);
    if (nn__crc32(buf, len - 4) != crc) {
        NN_FREE(buf);
        return NN_ERR_FORMAT;
    }
    r.p = buf;
    r.n = len - 4;
    r.pos = 4;
    r.bad = 0;
    version = nn__get_u32(&r);
    if (version < 1 || version > NN__FILE_VERSION) {
        NN_FREE(buf);
        return NN_ERR_UNSUPPORTED;
    }
    nsec = nn__get_u32(&r);
    if (nsec < 2 || nsec > 16) {
        NN_FREE(buf);
        return NN_ERR_FORMAT;
    }
    { /* an int8 model's file (a QINT section) holds a byte per weight, not 4 */
        size_t p = r.pos;
        for (sec = 0; sec < nsec && r.n - p >= 16; sec++) {
            uint64_t l = 0;
            int k;
            if (memcmp(r.p + p, "QINT", 4) == 0) q8file = 1;
            for (k = 7; k >= 0; k--) l = (l << 8) | r.p[p + 8 + (size_t)k];
            if (l > r.n - p - 16) break;
            p += 16 + (size_t)l;
        }
    }
    for (sec = 0; sec < nsec && !r.bad; sec++) {
        uint32_t tag = nn__get_u32(&r);
        uint64_t slen;
        size_t end;
        (void)nn__get_u32(&r);
        slen = nn__get_u64(&r);
        if (r.bad || slen > r.n - r.pos) {
            r.bad = 1;
            break;
        }
        end = r.pos + (size_t)slen;
        if (tag == NN__TAG('A', 'R', 'C', 'H') && !m) {
            nn_status as = nn__arch_get(&r, version, end, (uint64_t)(r.n - end) / (q8file ? 1 : 4), &m);
            if (as != NN_OK) {
                oom = as == NN_ERR_NO_MEMORY;
                r.bad = 1;
                break;
            }
        } else if (tag == NN__TAG('P', 'A', 'R', 'M') && m && !m->q8) {
            uint64_t cnt = nn__get_u64(&r), i;
            if (r.bad || cnt != m->nparams || slen != 8 + 4 * cnt) {
                r.bad = 1;
                break;
            }
            nn__params_io(m, m->params, NULL, &r);
            for (i = 0; i < (uint64_t)m->n; i++) /* a layer without bias has zeros there, whatever the file says */
                if (m->L[i].nobias) memset(m->params + m->L[i].boff, 0, m->L[i].nb * sizeof(float));
            have_parm = 1;
        } else if (tag == NN__TAG('B', 'U', 'F', 'S') && m && !m->q8) {
            uint64_t cnt = nn__get_u64(&r), i;
            if (r.bad || cnt != m->nbufs || slen != 8 + 4 * cnt) {
                r.bad = 1;
                break;
            }
            for (i = 0; i < cnt; i++) m->bufs[i] = nn__get_f32(&r);
        } else if (tag == NN__TAG('Q', 'I', 'N', 'T') && m && !have_parm) { /* an int8 model */
            if (!nn__q8_get(&r, m, &oom)) {
                r.bad = 1;
                break;
            }
            have_parm = 1;
        } else if (tag == NN__TAG('O', 'P', 'T', 'S') && m && !m->q8) {
            uint64_t step = nn__get_u64(&r), cnt = nn__get_u64(&r);
            if (r.bad || cnt != m->nparams || slen != 16 + 8 * cnt || step > ((uint64_t)1 << 40)) {
                r.bad = 1;
                break;
            }
            if (nn__train_state(m, 1) != NN_OK) {
                oom = 1;
                r.bad = 1;
                break;
            }
            m->step = (long)step;
            nn__params_io(m, m->om, NULL, &r);
            nn__params_io(m, m->ov, NULL, &r);
        } else {
            r.bad = 1; /* unknown or misplaced section */
            break;
        }
        if (r.pos != end) r.bad = 1;
    }
    NN_FREE(buf);
    if (r.bad || !m || !have_parm || r.pos != r.n) {
        nn_model_free(m);
        return oom ? NN_ERR_NO_MEMORY : NN_ERR_FORMAT;
    }
    *out = m;
    return NN_OK;
}

/* ---- 8.4 safetensors -----------------------------------------------------------
 * The file: u64 N (little-endian), N bytes of JSON, the data.  The header is
 * one object: "__metadata__" (string -> string) and, per tensor,
 * {"dtype", "shape", "data_offsets": [begin, end)} relative to the data.
 * Checked as the reference library checks it, before any data is used:
 * N <= 100 MB and within the file; strict JSON (strings valid UTF-8 with
 * their escapes decoded, integers without sign, fraction or leading zero;
 * no duplicate key); every shape product times the element size, without
 * overflow, equal to its span; the spans, sorted, tile the data from 0 to
 * its end with no hole and no overlap.  Then every tensor the model has
 * (its layers' tensors slots) is matched by name, dtype and shape.  Only
 * then is the data read, in order, through one buffer of about
 * NN__ST_CHUNK bytes, and converted straight into the model: a refused
 * file never reaches that point.  (Staging the values first and copying
 * them after would have made a file whose read fails half-way harmless,
 * but it tripled the time of a load: 100 MB took 3x cat's time at best.) */
#define NN__ST_MAX_HEADER 100000000u /* the reference library's limit */
#define NN__ST_MAX_DIMS 8
#define NN__ST_CHUNK ((size_t)1 << 20)
enum { NN__DT_F32 = 0, NN__DT_F16, NN__DT_BF16, NN__DT_F64, NN__DT_I64, NN__DT_OTHER };
static const struct {
    const char *name;
    int size, code;
} nn__st_dtypes[] = {{"F32", 4, NN__DT_F32},      {"F16", 2, NN__DT_F16},
                     {"BF16", 2, NN__DT_BF16},    {"F64", 8, NN__DT_F64},
                     {"I64", 8, NN__DT_I64},      {"BOOL", 1, NN__DT_OTHER},
                     {"U8", 1, NN__DT_OTHER},     {"I8", 1, NN__DT_OTHER},
                     {"I16", 2, NN__DT_OTHER},    {"U16", 2, NN__DT_OTHER},
                     {"I32", 4, NN__DT_OTHER},    {"U32", 4, NN__DT_OTHER},
                     {"U64", 8, NN__DT_OTHER},    {"F8_E5M2", 1, NN__DT_OTHER},
                     {"F8_E4M3", 1, NN__DT_OTHER}};

typedef struct nn__st_ent {
    const char *name; /* NUL-terminated, decoded */
    int dt;           /* index into nn__st_dtypes */
    int ndim;
    uint64_t shape[NN__ST_MAX_DIMS];
    uint64_t begin, end;
    int used;
} nn__st_ent;
typedef struct nn__st_hdr {
    char *pool; /* decoded strings */
    size_t pn;
    nn__st_ent *e;
    size_t ne, ecap;
    const char **md; /* metadata: key, value, key, value ... */
    size_t nmd, mdcap;
    int has_md;
    uint64_t data_len, data_start; /* the data: its bytes, and where it starts in the file */
    char err[256];
} nn__st_hdr;
typedef struct nn__jp {
    const unsigned char *p;
    size_t n, i;
    nn__st_hdr *h;
} nn__jp;

static void nn__st_hdr_free(nn__st_hdr *h) {
    NN_FREE(h->pool);
    NN_FREE(h->e);
    NN_FREE((void *)h->md);
    h->pool = NULL;
    h->e = NULL;
    h->md = NULL;
}
static nn_status nn__st_err(nn__st_hdr *h, nn_status s, const char *fmt, ...) {
    va_list ap;
    if (h->err[0]) return s; /* the first error is the one to report */
    va_start(ap, fmt);
    vsnprintf(h->err, sizeof h->err, fmt, ap);
    va_end(ap);
    return s;
}
static void nn__j_ws(nn__jp *j) {
    while (j->i < j->n &&
           (j->p[j->i] == ' ' || j->p[j->i] == '\t' || j->p[j->i] == '\n' || j->p[j->i] == '\r'))
        j->i++;
}
static int nn__j_lit(nn__jp *j, char c) {
    nn__j_ws(j);
    if (j->i < j->n && j->p[j->i] == (unsigned char)c) {
        j->i++;
        return 1;
    }
    return 0;
}
static int nn__j_hex4(nn__jp *j, uint32_t *v) {
    int k;
    *v = 0;
    if (j->n - j->i < 4) return 0;
    for (k = 0; k < 4; k++) {
        unsigned char c = j->p[j->i++];
        uint32_t d = c >= '0' && c <= '9'   ? (uint32_t)(c - '0')
                     : c >= 'a' && c <= 'f' ? (uint32_t)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (uint32_t)(c - 'A' + 10)
                                            : 99u;
        if (d > 15) return 0;
        *v = *v * 16 + d;
    }
    return 1;
}
/* A string, decoded into the pool (which has room: decoding never grows a
 * string past its quotes); NULL when malformed, not UTF-8, or holding NUL */
static const char *nn__j_str(nn__jp *j) {
    char *out = j->h->pool + j->h->pn;
    size_t o = 0;
    nn__j_ws(j);
    if (j->i >= j->n || j->p[j->i] != '"') return NULL;
    j->i++;
    for (;;) {
        unsigned char c;
        uint32_t cp;
        if (j->i >= j->n) return NULL;
        c = j->p[j->i++];
        if (c == '"') break;
        if (c < 0x20) return NULL; /* control characters must be escaped */
        if (c == '\\') {
            if (j->i >= j->n) return NULL;
            c = j->p[j->i++];
            switch (c) {
            case '"': case '\\': case '/': out[o++] = (char)c; continue;
            case 'b': out[o++] = '\b'; continue;
            case 'f': out[o++] = '\f'; continue;
            case 'n': out[o++] = '\n'; continue;
            case 'r': out[o++] = '\r'; continue;
            case 't': out[o++] = '\t'; continue;
            case 'u': break;
            default: return NULL;
            }
            if (!nn__j_hex4(j, &cp) || cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) return NULL;
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair */
                uint32_t lo;
                if (j->n - j->i < 2 || j->p[j->i] != '\\' || j->p[j->i + 1] != 'u') return NULL;
                j->i += 2;
                if (!nn__j_hex4(j, &lo) || lo < 0xDC00 || lo > 0xDFFF) return NULL;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp < 0x80) {
                out[o++] = (char)cp;
            } else if (cp < 0x800) {
                out[o++] = (char)(0xC0 | (cp >> 6));
                out[o++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                out[o++] = (char)(0xE0 | (cp >> 12));
                out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[o++] = (char)(0x80 | (cp & 0x3F));
            } else {
                out[o++] = (char)(0xF0 | (cp >> 18));
                out[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[o++] = (char)(0x80 | (cp & 0x3F));
            }
        } else if (c >= 0x80) { /* UTF-8: shortest form, no surrogates, <= U+10FFFF */
            int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0, k;
            if (len == 0 || c > 0xF4 || c == 0xC0 || c == 0xC1 || j->n - j->i < (size_t)(len - 1))
                return NULL;
            cp = c & (0x7Fu >> len);
            for (k = 1; k < len; k++) {
                unsigned char d = j->p[j->i + (size_t)k - 1];
                if ((d & 0xC0) != 0x80) return NULL;
                cp = (cp << 6) | (d & 0x3Fu);
            }
            if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
                (cp >= 0xD800 && cp <= 0xDFFF))
                return NULL;
            out[o++] = (char)c;
            for (k = 1; k < len; k++) out[o++] = (char)j->p[j->i++];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = 0;
    j->h->pn += o + 1;
    return out;
}
/* a non-negative integer: no sign, fraction, exponent or leading zero */
static int nn__j_uint(nn__jp *j, uint64_t *v) {
    nn__j_ws(j);
    *v = 0;
    if (j->i >= j->n || j->p[j->i] < '0' || j->p[j->i] > '9') return 0;
    if (j->p[j->i] == '0' && j->i + 1 < j->n && j->p[j->i + 1] >= '0' && j->p[j->i + 1] <= '9')
        return 0;
    while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9') {
        uint64_t d = (uint64_t)(j->p[j->i++] - '0');
        if (*v > (UINT64_MAX - d) / 10) return 0;
        *v = *v * 10 + d;
    }
    return !(j->i < j->n && (j->p[j->i] == '.' || j->p[j->i] == 'e' || j->p[j->i] == 'E'));
}
/* room for `have + 2` elements of `size` bytes in *p (have in use) */
static int nn__st_grow(void **p, size_t *cap, size_t have, size_t size) {
    void *np;
    size_t c;
    if (have + 2 <= *cap) return 1;
    c = *cap ? 2 * *cap : 64;
    np = NN_MALLOC(c * size);
    if (!np) return 0;
    if (have) memcpy(np, *p, have * size);
    NN_FREE(*p);
    *p = np;
    *cap = c;
    return 1;
}
static int nn__st_cmp_name(const void *a, const void *b) {
    return strcmp(((const nn__st_ent *)a)->name, ((const nn__st_ent *)b)->name);
}
static int nn__st_cmp_span(const void *a, const void *b) {
    const nn__st_ent *x = *(const nn__st_ent *const *)a, *y = *(const nn__st_ent *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}
static int nn__st_cmp_key(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* one tensor's {"dtype", "shape", "data_offsets"} */
static nn_status nn__st_tensor(nn__jp *j, nn__st_ent *e) {
    int seen = 0;
    nn__st_hdr *h = j->h;
    if (!nn__j_lit(j, '{')) return NN_ERR_FORMAT;
    e->dt = -1;
    do {
        const char *f = nn__j_str(j);
        if (!f || !nn__j_lit(j, ':')) return NN_ERR_FORMAT;
        if (strcmp(f, "dtype") == 0 && !(seen & 1)) {
            const char *d = nn__j_str(j);
            size_t k;
            if (!d) return NN_ERR_FORMAT;
            for (k = 0; k < sizeof nn__st_dtypes / sizeof nn__st_dtypes[0]; k++)
                if (strcmp(d, nn__st_dtypes[k].name) == 0) e->dt = (int)k;
            if (e->dt < 0) return nn__st_err(h, NN_ERR_FORMAT, "tensor '%s': unknown dtype '%s'", e->name, d);
            seen |= 1;
        } else if (strcmp(f, "shape") == 0 && !(seen & 2)) {
            if (!nn__j_lit(j, '[')) return NN_ERR_FORMAT;
            if (!nn__j_lit(j, ']')) {
                do {
                    if (e->ndim == NN__ST_MAX_DIMS)
                        return nn__st_err(h, NN_ERR_FORMAT, "tensor '%s': more than %d dimensions",
                                          e->name, NN__ST_MAX_DIMS);
                    if (!nn__j_uint(j, &e->shape[e->ndim++])) return NN_ERR_FORMAT;
                } while (nn__j_lit(j, ','));
                if (!nn__j_lit(j, ']')) return NN_ERR_FORMAT;
            }
            seen |= 2;
        } else if (strcmp(f, "data_offsets") == 0 && !(seen & 4)) {
            if (!nn__j_lit(j, '[') || !nn__j_uint(j, &e->begin) || !nn__j_lit(j, ',') ||
                !nn__j_uint(j, &e->end) || !nn__j_lit(j, ']'))
                return NN_ERR_FORMAT;
            seen |= 4;
        } else {
            return nn__st_err(h, NN_ERR_FORMAT, "tensor '%s': unexpected or repeated field '%s'",
                              e->name, f);
        }
    } while (nn__j_lit(j, ','));
    if (!nn__j_lit(j, '}')) return NN_ERR_FORMAT;
    if (seen != 7)
        return nn__st_err(h, NN_ERR_FORMAT, "tensor '%s': needs dtype, shape and data_offsets", e->name);
    return NN_OK;
}

/* Parse and check a header of n bytes; data_len: the bytes after it */
static nn_status nn__st_parse(const unsigned char *p, size_t n, uint64_t data_len, nn__st_hdr *h) {
    nn__jp j;
    nn_status s = NN_OK;
    nn__st_ent **order = NULL;
    size_t i;
    uint64_t pos = 0;
    memset(h, 0, sizeof *h);
    h->data_len = data_len;
    h->pool = (char *)NN_MALLOC(n + 1);
    if (!h->pool) return NN_ERR_NO_MEMORY;
    j.p = p, j.n = n, j.i = 0, j.h = h;
    if (n == 0 || p[0] != '{' || !nn__j_lit(&j, '{')) /* no leading space: the reference refuses it */
        return nn__st_err(h, NN_ERR_FORMAT, "the header is not a JSON object");
    if (!nn__j_lit(&j, '}')) {
        do {
            const char *key = nn__j_str(&j);
            if (!key || !nn__j_lit(&j, ':')) {
                s = NN_ERR_FORMAT;
                break;
            }
            if (strcmp(key, "__metadata__") == 0) {
                if (h->has_md++) {
                    s = nn__st_err(h, NN_ERR_FORMAT, "duplicate key '__metadata__'");
                    break;
                }
                if (!nn__j_lit(&j, '{')) {
                    s = nn__st_err(h, NN_ERR_FORMAT, "__metadata__ is not an object of strings");
                    break;
                }
                if (nn__j_lit(&j, '}')) continue;
                do {
                    const char *k = nn__j_str(&j), *v;
                    if (!k || !nn__j_lit(&j, ':') || !(v = nn__j_str(&j))) {
                        s = nn__st_err(h, NN_ERR_FORMAT, "__metadata__ is not an object of strings");
                        break;
                    }
                    if (!nn__st_grow((void **)&h->md, &h->mdcap, h->nmd, sizeof(char *))) {
                        s = NN_ERR_NO_MEMORY;
                        break;
                    }
                    h->md[h->nmd++] = k;
                    h->md[h->nmd++] = v;
                } while (nn__j_lit(&j, ','));
                if (s == NN_OK && !nn__j_lit(&j, '}')) s = NN_ERR_FORMAT;
            } else {
                nn__st_ent *e;
                if (!nn__st_grow((void **)&h->e, &h->ecap, h->ne, sizeof(nn__st_ent))) {
                    s = NN_ERR_NO_MEMORY;
                    break;
                }
                e = &h->e[h->ne++];
                memset(e, 0, sizeof *e);
                e->name = key;
                s = nn__st_tensor(&j, e);
            }
            if (s != NN_OK) break;
        } while (nn__j_lit(&j, ','));
        if (s == NN_OK && !nn__j_lit(&j, '}')) s = NN_ERR_FORMAT;
    }
    nn__j_ws(&j);
    if (s == NN_OK && j.i != n) s = nn__st_err(h, NN_ERR_FORMAT, "bytes after the header's object");
    if (s != NN_OK)
        return nn__st_err(h, s, s == NN_ERR_NO_MEMORY ? "out of memory reading the header"
                                                      : "malformed header near byte %lu",
                          (unsigned long)j.i);
    /* sizes: the shape's product times the element size is the span */
    for (i = 0; i < h->ne; i++) {
        nn__st_ent *e = &h->e[i];
        uint64_t cnt = 1, sz = (uint64_t)nn__st_dtypes[e->dt].size;
        int k;
        for (k = 0; k < e->ndim; k++) {
            if (e->shape[k] && cnt > UINT64_MAX / sz / e->shape[k])
                return nn__st_err(h, NN_ERR_FORMAT, "tensor '%s': shape too large", e->name);
            cnt *= e->shape[k];
        }
        if (e->begin > e->end || e->end > data_len || e->end - e->begin != cnt * sz)
            return nn__st_err(h, NN_ERR_FORMAT,
                              "tensor '%s': data_offsets [%llu, %llu] do not hold its %llu bytes "
                              "within the %llu of data",
                              e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                              (unsigned long long)(cnt * sz), (unsigned long long)data_len);
    }
    /* the spans tile the data */
    if (h->ne) {
        order = (nn__st_ent **)NN_MALLOC(h->ne * sizeof *order);
        if (!order) return nn__st_err(h, NN_ERR_NO_MEMORY, "out of memory reading the header");
        for (i = 0; i < h->ne; i++) order[i] = &h->e[i];
        qsort(order, h->ne, sizeof *order, nn__st_cmp_span);
        for (i = 0; i < h->ne && s == NN_OK; i++) {
            if (order[i]->begin != pos)
                s = nn__st_err(h, NN_ERR_FORMAT, "tensor '%s': data_offsets leave a %s at byte %llu",
                               order[i]->name, order[i]->begin > pos ? "hole" : "overlap",
                               (unsigned long long)pos);
            pos = order[i]->end;
        }
        NN_FREE(order);
        if (s != NN_OK) return s;
    }
    if (pos != data_len)
        return nn__st_err(h, NN_ERR_FORMAT, "%llu bytes of data after the last tensor",
                          (unsigned long long)(data_len - pos));
    /* no duplicate key: sorted, neighbours differ */
    if (h->ne) qsort(h->e, h->ne, sizeof *h->e, nn__st_cmp_name);
    for (i = 1; i < h->ne; i++)
        if (strcmp(h->e[i - 1].name, h->e[i].name) == 0)
            return nn__st_err(h, NN_ERR_FORMAT, "duplicate tensor '%s'", h->e[i].name);
    {
        const char **keys = NULL;
        size_t nk = h->nmd / 2;
        if (nk > 1) {
            keys = (const char **)NN_MALLOC(nk * sizeof *keys);
            if (!keys) return nn__st_err(h, NN_ERR_NO_MEMORY, "out of memory reading the header");
            for (i = 0; i < nk; i++) keys[i] = h->md[2 * i];
            qsort(keys, nk, sizeof *keys, nn__st_cmp_key);
            for (i = 1; i < nk && s == NN_OK; i++)
                if (strcmp(keys[i - 1], keys[i]) == 0)
                    s = nn__st_err(h, NN_ERR_FORMAT, "duplicate __metadata__ key '%s'", keys[i]);
            NN_FREE((void *)keys);
        }
    }
    return s;
}
static const char *nn__st_meta(const nn__st_hdr *h, const char *key) {
    size_t i;
    for (i = 0; i + 1 < h->nmd; i += 2)
        if (strcmp(h->md[i], key) == 0) return h->md[i + 1];
    return NULL;
}
static nn__st_ent *nn__st_find(nn__st_hdr *h, const char *name) {
    size_t lo = 0, hi = h->ne;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(h->e[mid].name, name);
        if (c == 0) return &h->e[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* The model's tensors, in layer order (t NULL: count them) */
static size_t nn__st_list(const nn_model *m, nn__st_t *t) {
    nn__st_perm p;
    nn__st_t tmp[NN__ST_MAX];
    size_t n = 0;
    int i, k, c;
    memset(&p, 0, sizeof p);
    for (i = 0; i < m->n; i++) {
        const nn__layer *L = &m->L[i];
        p.used = 0;
        if (L->in.ndim != 1) p.on = 0;
        c = L->k->tensors ? L->k->tensors(L, &p, tmp) : 0;
        NN_ASSERT(c <= NN__ST_MAX);
        for (k = 0; k < c; k++, n++) {
            if (!t) continue;
            t[n] = tmp[k];
            t[n].layer = i;
            snprintf(t[n].name, sizeof t[n].name, "%s.%s", L->name, tmp[k].param);
        }
        /* a flatten of an image starts the (c, h, w) order; layers that
         * keep their shape carry it, a matrix consumes it */
        if (L->in.ndim == 3 && L->out.ndim == 1 && L->in_dim == L->out_dim) {
            p.on = 1, p.h = L->in.d[0], p.w = L->in.d[1], p.c = L->in.d[2];
        } else if (p.used || L->in.ndim != L->out.ndim || L->in_dim != L->out_dim) {
            p.on = 0;
        }
    }
    return n;
}
static size_t nn__st_count(const nn__st_t *x) {
    return x->it[0] * x->it[1] * x->it[2] * x->it[3];
}

static float nn__half_to_float(uint32_t h) {
    uint32_t sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, mant = h & 0x3FFu, u;
    float f;
    if (e == 0x1F) {
        u = sign | 0x7F800000u | (mant << 13);
    } else if (e == 0) { /* zero or subnormal: mant * 2^-24, exact in float */
        f = (float)mant * (1.0f / 16777216.0f);
        return sign ? -f : f;
    } else {
        u = sign | ((e + 112) << 23) | (mant << 13);
    }
    memcpy(&f, &u, 4);
    return f;
}
/* n elements of a little-endian tensor of dtype dt as floats into out
 * (F32 on a little-endian CPU: out may be src itself).  Values are taken
 * as they are, as PyTorch takes them: NaN stays NaN, F64 beyond float's
 * range becomes infinite. */
static void nn__st_floats(const unsigned char *b, size_t n, int dt, float *out) {
    size_t i;
    uint32_t one = 1, u;
    const int code = nn__st_dtypes[dt].code;
    if (code == NN__DT_F32) {
        unsigned char le;
        memcpy(&le, &one, 1);
        if (le) {
            if ((const void *)b != (const void *)out) memcpy(out, b, n * 4);
        } else { /* in place: each value's 4 bytes are read before they are written */
            for (i = 0; i < n; i++) {
                u = (uint32_t)b[4 * i] | ((uint32_t)b[4 * i + 1] << 8) | ((uint32_t)b[4 * i + 2] << 16) |
                    ((uint32_t)b[4 * i + 3] << 24);
                memcpy(&out[i], &u, 4);
            }
        }
    } else if (code == NN__DT_BF16) {
        for (i = 0; i < n; i++) {
            u = ((uint32_t)b[2 * i] << 16) | ((uint32_t)b[2 * i + 1] << 24);
            memcpy(&out[i], &u, 4);
        }
    } else if (code == NN__DT_F16) {
        for (i = 0; i < n; i++)
            out[i] = nn__half_to_float((uint32_t)b[2 * i] | ((uint32_t)b[2 * i + 1] << 8));
    } else {
        for (i = 0; i < n; i++) {
            uint64_t v = 0;
            double d;
            int k;
            for (k = 7; k >= 0; k--) v = (v << 8) | b[8 * i + (size_t)k];
            memcpy(&d, &v, 8);
            /* beyond FLT_MAX and half its last step: infinite, as the
             * rounding would make it (a C cast out of range is undefined) */
            if (d != d) out[i] = (float)d;
            else if (d >= 3.4028235677973366e38 || d <= -3.4028235677973366e38)
                out[i] = d > 0 ? HUGE_VALF : -HUGE_VALF;
            else out[i] = d > FLT_MAX ? FLT_MAX : d < -FLT_MAX ? -FLT_MAX : (float)d;
        }
    }
}
/* dst rows [64 task, 64 task + 64) of a transposing scatter: the piece's
 * `rows` floats of each dst row (whole cache lines) one after the other */
typedef struct nn__st_tjob {
    const float *src;
    float *dst;
    size_t rows, in0, n1, s1;
    const nn__ktab *k;
} nn__st_tjob;
static void nn__st_tr_task(void *ctx, int task, int worker) {
    const nn__st_tjob *j = (const nn__st_tjob *)ctx;
    size_t a0 = (size_t)task * 64, a1 = a0 + 64 < j->n1 ? a0 + 64 : j->n1, a, r;
    size_t r8 = j->rows & ~(size_t)7, a8 = a0 + ((a1 - a0) & ~(size_t)7);
    (void)worker;
    if (a8 > a0 && r8) j->k->trs(j->src + a0, j->in0, j->dst + a0 * j->s1, j->s1, r8, a8 - a0);
    for (a = a8; a < a1; a++)
        for (r = 0; r < r8; r++) j->dst[a * j->s1 + r] = j->src[r * j->in0 + a];
    for (a = a0; a < a1; a++)
        for (r = r8; r < j->rows; r++) j->dst[a * j->s1 + r] = j->src[r * j->in0 + a];
}
/* Elements [i0a, i0b) of dimension 0 of tensor x, floats in the file's
 * order at src, into nn.h's layout at dst (+= when sum).  Layouts whose
 * last dimension is contiguous in nn.h run along it; transposed ones
 * (st[0] == 1) along dimension 0, so that dst's cache lines are written
 * whole. */
static void nn__st_scatter(const nn__st_t *x, const float *src, size_t i0a, size_t i0b,
                           float *dst, int sum) {
    size_t n1 = x->it[1], n2 = x->it[2], n3 = x->it[3], rows = i0b - i0a, in0 = n1 * n2 * n3;
    size_t a, b, c, r;
    dst += x->off + i0a * x->st[0];
    if (x->st[0] == 1 && rows > 1 && n1 > 1 && n2 == 1 && n3 == 1) {
        /* a plain transpose (no sums here), 8 x 8 blocks by the backend's
         * transpose, by dst rows (the threads split the file, not this) */
        nn__st_tjob j;
        int tk, ntk = (int)((n1 + 63) / 64);
        NN_ASSERT(!sum);
        j.src = src, j.dst = dst, j.rows = rows, j.in0 = in0, j.n1 = n1, j.s1 = x->st[1];
        j.k = nn__k();
        for (tk = 0; tk < ntk; tk++) nn__st_tr_task(&j, tk, 0);
        return;
    }
    if (x->st[0] == 1 && rows > 1 && x->st[3] != 1) {
        for (a = 0; a < n1; a++)
            for (b = 0; b < n2; b++)
                for (c = 0; c < n3; c++) {
                    const float *sp = src + (a * n2 + b) * n3 + c;
                    float *d = dst + a * x->st[1] + b * x->st[2] + c * x->st[3];
                    if (sum)
                        for (r = 0; r < rows; r++) d[r] += sp[r * in0];
                    else
                        for (r = 0; r < rows; r++) d[r] = sp[r * in0];
                }
        return;
    }
    for (r = 0; r < rows; r++)
        for (a = 0; a < n1; a++)
            for (b = 0; b < n2; b++) {
                const float *sp = src + ((r * n1 + a) * n2 + b) * n3;
                float *d = dst + r * x->st[0] + a * x->st[1] + b * x->st[2];
                const size_t s3 = x->st[3];
                if (sum)
                    for (c = 0; c < n3; c++) d[c * s3] += sp[c];
                else if (s3 == 1)
                    memcpy(d, sp, n3 * sizeof(float));
                else
                    for (c = 0; c < n3; c++) d[c * s3] = sp[c];
            }
}

static int nn__st_cmp_t(const void *a, const void *b) { /* by the file's order */
    const nn__st_t *x = *(const nn__st_t *const *)a, *y = *(const nn__st_t *const *)b;
    return x->fbeg < y->fbeg ? -1 : x->fbeg > y->fbeg;
}

/* The data phase: pieces of about bufbytes (a tensor's rows [i0, i0+nr)),
 * read and converted straight into the model, the file split between the
 * threads (each with its own FILE, buffers allocated before anything is
 * written): reading and writing 100 MB are bound by memory bandwidth, and
 * one core has too little of it.  The summed pairs (an RNN's two biases
 * into one) are done last, on the caller. */
typedef struct nn__st_piece {
    const nn__st_t *x;
    int dt;
    size_t i0, nr, bytes;
    uint64_t off; /* in the file */
} nn__st_piece;
typedef struct nn__st_rjob {
    nn_model *m;
    const nn__st_piece *pc;
    size_t bufbytes;
    size_t cut[NN_MAX_THREADS + 1]; /* task t: pieces [cut[t], cut[t+1]) */
    FILE *f[NN_MAX_THREADS];
    unsigned char *buf[NN_MAX_THREADS];
    int bad[NN_MAX_THREADS];
} nn__st_rjob;
/* a tensor whose file order is nn.h's (row-major over it[], unit last
 * stride), in F32 on a little-endian CPU, plainly copied: read in place */
static int nn__st_direct(const nn__st_t *x, int dt) {
    uint32_t one = 1;
    unsigned char le;
    size_t run = 1;
    int d;
    memcpy(&le, &one, 1);
    if (!le || nn__st_dtypes[dt].code != NN__DT_F32 || x->mode != NN__STM_COPY) return 0;
    for (d = 3; d >= 0; d--) { /* dimensions of size 1 have no stride that matters */
        if (x->it[d] == 1) continue;
        if (x->st[d] != run) return 0;
        run *= x->it[d];
    }
    return 1;
}
static int nn__st_pieces(nn__st_rjob *j, size_t from, size_t to, FILE *f, unsigned char *buf) {
    size_t p;
    for (p = from; p < to; p++) {
        const nn__st_piece *q = &j->pc[p];
        const nn__st_t *x = q->x;
        size_t esz = (size_t)nn__st_dtypes[q->dt].size, ne = q->bytes / esz;
        float *src = nn__st_dtypes[q->dt].code == NN__DT_F32 ? (float *)(void *)buf
                                                              : (float *)(void *)(buf + j->bufbytes);
        if (q->off > (uint64_t)LONG_MAX || fseek(f, (long)q->off, SEEK_SET) != 0) return 0;
        if (nn__st_direct(x, q->dt)) { /* F32 in nn.h's own order: straight into the model */
            float *d = (x->bufs ? j->m->bufs : j->m->params) + x->off + q->i0 * x->st[0];
            if (fread(d, 1, q->bytes, f) != q->bytes) return 0;
            continue;
        }
        if (fread(buf, 1, q->bytes, f) != q->bytes) return 0;
        nn__st_floats(buf, ne, q->dt, src);
        nn__st_scatter(x, src, q->i0, q->i0 + q->nr, x->bufs ? j->m->bufs : j->m->params,
                       x->mode != NN__STM_COPY);
    }
    return 1;
}
static void nn__st_read_task(void *ctx, int task, int worker) {
    nn__st_rjob *j = (nn__st_rjob *)ctx;
    (void)worker;
    j->bad[task] = !nn__st_pieces(j, j->cut[task], j->cut[task + 1], j->f[task], j->buf[task]);
}
/* rows of tensor x per piece: whole cache lines of a transpose's dst rows */
static size_t nn__st_per(const nn__st_t *x, size_t esz, size_t bufbytes) {
    size_t per = bufbytes / (nn__st_count(x) / x->it[0] * esz);
    return per >= 16 ? per & ~(size_t)15 : per;
}
static nn_status nn__st_read(nn_model *m, const nn__st_hdr *h, const char *path, nn__st_t *const *ord,
                             size_t nt, size_t bufbytes) {
    nn__st_rjob j;
    nn__st_piece *pc;
    size_t np = 0, i, nsum = 0, nplain = 0, total = 0, acc = 0;
    int T = nn__threads(), t, k;
    nn_status s = NN_OK;
    memset(&j, 0, sizeof j);
    for (i = 0; i < nt; i++) { /* count the pieces */
        const nn__st_t *x = ord[i];
        size_t per = nn__st_per(x, (size_t)nn__st_dtypes[h->e[x->ent].dt].size, bufbytes);
        if (x->mode != NN__STM_STEPS) np += (x->it[0] + per - 1) / per;
    }
    pc = (nn__st_piece *)NN_MALLOC((np ? np : 1) * sizeof *pc);
    if (!pc) return nn__fail(m, NN_ERR_NO_MEMORY, "out of memory loading a safetensors file");
    /* the pieces: plain ones first (file order), then the summed ones */
    for (k = 0; k < 2; k++) {
        for (i = 0; i < nt; i++) {
            const nn__st_t *x = ord[i];
            const nn__st_ent *e = &h->e[x->ent];
            size_t esz = (size_t)nn__st_dtypes[e->dt].size, inner = nn__st_count(x) / x->it[0],
                   per = nn__st_per(x, esz, bufbytes), i0;
            int summed = x->mode == NN__STM_SUM0 || x->mode == NN__STM_SUM1;
            if (x->mode == NN__STM_STEPS || summed != (k == 1)) continue; /* steps: nn.h counts its own */
            for (i0 = 0; i0 < x->it[0]; i0 += per) {
                nn__st_piece *q = &pc[nsum++];
                q->x = x;
                q->dt = e->dt;
                q->i0 = i0;
                q->nr = x->it[0] - i0 < per ? x->it[0] - i0 : per;
                q->bytes = q->nr * inner * esz;
                q->off = h->data_start + e->begin + (uint64_t)i0 * inner * esz;
                if (!summed) total += q->bytes;
            }
        }
        if (k == 0) nplain = nsum;
    }
    np = nsum;
    /* split the plain pieces into T runs of about equal bytes */
    if (T > NN_MAX_THREADS) T = NN_MAX_THREADS;
    if (total < ((size_t)4 << 20)) T = 1; /* small files: one thread, no region */
    for (i = 0, t = 1; i < nplain && t < T; i++) {
        acc += pc[i].bytes;
        if (acc >= total / (size_t)T * (size_t)t) j.cut[t++] = i + 1;
    }
    while (t <= T) j.cut[t++] = nplain;
    j.m = m;
    j.pc = pc;
    j.bufbytes = bufbytes;
    /* every buffer and file before the first write */
    for (t = 0; t < T && s == NN_OK; t++) {
        j.buf[t] = (unsigned char *)NN_MALLOC(bufbytes * 3); /* the bytes, then as floats */
        j.f[t] = fopen(path, "rb");
        if (!j.buf[t]) s = nn__fail(m, NN_ERR_NO_MEMORY, "out of memory loading a safetensors file");
        else if (!j.f[t]) s = nn__fail(m, NN_ERR_IO, "safetensors: cannot open '%s' again", path);
    }
    if (s == NN_OK) {
        for (i = 0; i < nt; i++) /* the summed pairs start from zero */
            if (ord[i]->mode == NN__STM_SUM0)
                memset(m->params + ord[i]->off, 0, nn__st_count(ord[i]) * sizeof(float));
        if (T > 1) nn__par(T, nn__st_read_task, &j, T);
        else nn__st_read_task(&j, 0, 0);
        for (t = 0; t < T; t++)
            if (j.bad[t]) s = NN_ERR_IO;
        if (s == NN_OK && !nn__st_pieces(&j, nplain, np, j.f[0], j.buf[0])) s = NN_ERR_IO;
        if (s != NN_OK) s = nn__fail(m, NN_ERR_IO, "safetensors: a read failed (the file changed?)");
    }
    for (t = 0; t < T; t++) {
        NN_FREE(j.buf[t]);
        if (j.f[t]) fclose(j.f[t]);
    }
    NN_FREE(pc);
    return s;
}

/* Load the tensors of a parsed header of path into m.  Everything is
 * checked before the first value is read: nothing in m changes unless the
 * file fits it (only a failing read, after the checks, leaves it half
 * loaded). */
static nn_status nn__st_apply(nn_model *m, nn__st_hdr *h, const char *path) {
    size_t nt = nn__st_list(m, NULL), i, used = 0, bufbytes = NN__ST_CHUNK;
    nn__st_t *t, **ord = NULL;
    nn_status s = NN_OK;
    t = (nn__st_t *)NN_MALLOC((nt ? nt : 1) * sizeof *t);
    ord = (nn__st_t **)NN_MALLOC((nt ? nt : 1) * sizeof *ord);
    if (!t || !ord) {
        NN_FREE(t);
        NN_FREE((void *)ord);
        return nn__fail(m, NN_ERR_NO_MEMORY, "out of memory loading a safetensors file");
    }
    nn__st_list(m, t);
    for (i = 0; i < h->ne; i++) h->e[i].used = 0;
    /* names, dtypes and shapes */
    for (i = 0; i < nt && s == NN_OK; i++) {
        nn__st_t *x = &t[i];
        nn__st_ent *e = nn__st_find(h, x->name);
        int k, same, code;
        char want[64] = "[", got[64] = "[";
        if (!e) {
            s = nn__fail(m, NN_ERR_SHAPE, "safetensors: tensor '%s' is missing (layer %d, %s)",
                         x->name, x->layer, m->L[x->layer].k->name);
            break;
        }
        code = nn__st_dtypes[e->dt].code;
        if (x->mode == NN__STM_STEPS ? code != NN__DT_I64 : code > NN__DT_F64) {
            s = nn__fail(m, NN_ERR_UNSUPPORTED, "safetensors: tensor '%s' is %s; nn.h reads %s",
                         x->name, nn__st_dtypes[e->dt].name,
                         x->mode == NN__STM_STEPS ? "I64" : "F32, F16, BF16 or F64");
            break;
        }
        same = e->ndim == x->ndim;
        for (k = 0; k < x->ndim; k++) {
            if (same && e->shape[k] != x->shape[k]) same = 0;
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lu", k ? ", " : "",
                     (unsigned long)x->shape[k]);
        }
        for (k = 0; k < e->ndim && strlen(got) < 40; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", k ? ", " : "",
                     (unsigned long long)e->shape[k]);
        if (!same) {
            s = nn__fail(m, NN_ERR_SHAPE, "safetensors: tensor '%s' has shape %s] but the model's is %s]",
                         x->name, got, want);
            break;
        }
        x->ent = (size_t)(e - h->e);
        x->fbeg = e->begin;
        e->used = 1;
        used++;
        ord[i] = x;
        if (x->mode != NN__STM_STEPS && nn__st_count(x) / x->it[0] > ((size_t)-1 / 24)) {
            s = nn__fail(m, NN_ERR_SHAPE, "safetensors: tensor '%s': a row too large for memory", x->name);
            break;
        }
        if (x->mode != NN__STM_STEPS && nn__st_count(x) / x->it[0] * 8 > bufbytes)
            bufbytes = nn__st_count(x) / x->it[0] * 8; /* one row, F64 (x3 below: fits, checked) */
    }
    if (s == NN_OK && used != h->ne) {
        i = 0;
        while (i < h->ne && h->e[i].used) i++;
        s = nn__fail(m, NN_ERR_SHAPE, "safetensors: tensor '%s' is not in the model",
                     i < h->ne ? h->e[i].name : "?");
    }
    if (s == NN_OK) {
        qsort(ord, nt, sizeof *ord, nn__st_cmp_t);
        s = nn__st_read(m, h, path, ord, nt, bufbytes);
    }
    NN_FREE(t);
    NN_FREE((void *)ord);
    return s;
}

/* Read and check path's header */
static nn_status nn__st_open(const char *path, nn__st_hdr *h) {
    FILE *f;
    unsigned char b8[8], *hb;
    uint64_t n = 0;
    long sz;
    nn_status s;
    int k;
    memset(h, 0, sizeof *h);
    if (!path) return NN_ERR_INVALID_ARGUMENT;
    f = fopen(path, "rb");
    if (!f) return nn__st_err(h, NN_ERR_IO, "cannot open '%s'", path);
    if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return nn__st_err(h, NN_ERR_IO, "cannot size '%s'", path);
    }
    if (sz < 8 || fread(b8, 1, 8, f) != 8) {
        fclose(f);
        return nn__st_err(h, NN_ERR_FORMAT, "'%s' is too short for a safetensors file", path);
    }
    for (k = 7; k >= 0; k--) n = (n << 8) | b8[k];
    if (n < 2 || n > NN__ST_MAX_HEADER || n > (uint64_t)sz - 8) {
        fclose(f);
        return nn__st_err(h, NN_ERR_FORMAT, "header length %llu: not within the file and 100 MB",
                          (unsigned long long)n);
    }
    hb = (unsigned char *)NN_MALLOC((size_t)n);
    if (!hb) {
        fclose(f);
        return nn__st_err(h, NN_ERR_NO_MEMORY, "out of memory reading the header");
    }
    if (fread(hb, 1, (size_t)n, f) != (size_t)n) {
        NN_FREE(hb);
        fclose(f);
        return nn__st_err(h, NN_ERR_IO, "short read");
    }
    fclose(f);
    s = nn__st_parse(hb, (size_t)n, (uint64_t)sz - 8 - n, h);
    NN_FREE(hb);
    if (s != NN_OK) {
        nn__st_hdr_free(h);
        return s;
    }
    h->data_start = 8 + n;
    return NN_OK;
}

NN__API nn_status nn_load_safetensors(nn_model *m, const char *path) {
    nn__st_hdr h;
    nn_status s;
    if (!m || !path) return NN_ERR_INVALID_ARGUMENT;
    if (!m->compiled) return nn__fail(m, NN_ERR_STATE, "nn_load_safetensors: compile the model first");
    if (m->q8) return nn__fail(m, NN_ERR_UNSUPPORTED, "%s: not for an int8 model (nn_quantize)", "nn_load_safetensors");
    s = nn__st_open(path, &h);
    if (s != NN_OK) return nn__fail(m, s, "safetensors: %s", h.err[0] ? h.err : nn_strerror(s));
    s = nn__st_apply(m, &h, path);
    nn__st_hdr_free(&h);
    return s;
}

/* nn_load of a safetensors file: the model from "nnh.arch", then its tensors */
static nn_status nn__st_load_model(nn_model **out, const char *path) {
    nn__st_hdr h;
    nn_status s;
    const char *arch, *names;
    size_t len, i;
    unsigned char *bin;
    nn__rbuf r;
    nn_model *m = NULL;
    s = nn__st_open(path, &h);
    if (s != NN_OK) return s;
    arch = nn__st_meta(&h, "nnh.arch");
    names = nn__st_meta(&h, "nnh.names");
    len = arch ? strlen(arch) : 0;
    bin = (unsigned char *)NN_MALLOC(len / 2 + 1);
    if (!arch || len % 2 || !bin) {
        s = !arch || len % 2 ? NN_ERR_FORMAT : NN_ERR_NO_MEMORY; /* not written by nn.h */
    } else {
        for (i = 0; i < len / 2 && s == NN_OK; i++) {
            int hi = arch[2 * i], lo = arch[2 * i + 1];
            hi = hi >= '0' && hi <= '9' ? hi - '0' : hi >= 'a' && hi <= 'f' ? hi - 'a' + 10 : -1;
            lo = lo >= '0' && lo <= '9' ? lo - '0' : lo >= 'a' && lo <= 'f' ? lo - 'a' + 10 : -1;
            if (hi < 0 || lo < 0) s = NN_ERR_FORMAT;
            bin[i] = (unsigned char)(hi * 16 + lo);
        }
        if (s == NN_OK) {
            r.p = bin, r.n = len / 2, r.pos = 0, r.bad = 0;
            /* every parameter takes 2 bytes of data at least (F16) */
            s = nn__arch_get(&r, NN__FILE_VERSION, r.n, h.data_len / 2 + 16 * 65536, &m);
        }
    }
    NN_FREE(bin);
    if (s == NN_OK && names) { /* "a,b,c": one per layer */
        const char *p = names;
        int li;
        for (li = 0; li < m->n && s == NN_OK; li++) {
            const char *e = strchr(p, ',');
            size_t nl = e ? (size_t)(e - p) : strlen(p);
            char nm[64];
            if (nl >= sizeof nm || (!e) != (li == m->n - 1)) {
                s = NN_ERR_FORMAT;
                break;
            }
            memcpy(nm, p, nl);
            nm[nl] = 0;
            if (nn_layer_set_name(m, li, nm) != NN_OK) s = NN_ERR_FORMAT;
            p = e ? e + 1 : p + nl;
        }
    }
    if (s == NN_OK) s = nn__st_apply(m, &h, path);
    nn__st_hdr_free(&h);
    if (s != NN_OK) {
        nn_model_free(m);
        return s;
    }
    *out = m;
    return NN_OK;
}

/* The inverse of nn__st_scatter: rows [i0a, i0b) of tensor x in the file's
 * order into out, from nn.h's layout at base (zeros for the second of a
 * summed pair) */
static void nn__st_gather(const nn__st_t *x, const float *base, size_t i0a, size_t i0b,
                          float *out) {
    size_t n1 = x->it[1], n2 = x->it[2], n3 = x->it[3], rows = i0b - i0a, in0 = n1 * n2 * n3;
    size_t a, b, c, r;
    const float *src = base + x->off + i0a * x->st[0];
    if (x->mode == NN__STM_SUM1) {
        memset(out, 0, rows * in0 * sizeof(float));
        return;
    }
    if (x->st[0] == 1 && rows > 1 && n1 > 1 && n2 == 1 && n3 == 1) {
        /* out (rows x n1) = the transpose of nn.h's (n1 x rows), 8 x 8 blocks */
        const nn__ktab *k = nn__k();
        const size_t s1 = x->st[1], r8 = rows & ~(size_t)7, a8 = n1 & ~(size_t)7;
        for (a = 0; a < a8; a += 8)
            for (r = 0; r < r8; r += 8) k->tr8(src + a * s1 + r, s1, out + r * in0 + a, in0);
        for (r = 0; r < rows; r++)
            for (a = r < r8 ? a8 : 0; a < n1; a++) out[r * in0 + a] = src[a * s1 + r];
        return;
    }
    for (r = 0; r < rows; r++)
        for (a = 0; a < n1; a++)
            for (b = 0; b < n2; b++) {
                const float *sp = src + r * x->st[0] + a * x->st[1] + b * x->st[2];
                float *o = out + ((r * n1 + a) * n2 + b) * n3;
                for (c = 0; c < n3; c++) o[c] = sp[c * x->st[3]];
            }
}
/* floats to little-endian bytes in place (nothing to do on such a CPU) */
static void nn__st_le32(float *v, size_t n) {
    uint32_t one = 1, u;
    unsigned char le, *b = (unsigned char *)v;
    size_t i;
    memcpy(&le, &one, 1);
    if (le) return;
    for (i = 0; i < n; i++) {
        memcpy(&u, &v[i], 4);
        b[4 * i] = (unsigned char)u, b[4 * i + 1] = (unsigned char)(u >> 8);
        b[4 * i + 2] = (unsigned char)(u >> 16), b[4 * i + 3] = (unsigned char)(u >> 24);
    }
}
/* bytes of the longest row (dimension 0 slice) of any tensor of m, as F32 */
static size_t nn__st_maxrow(const nn_model *m) {
    nn__st_t tmp[NN__ST_MAX];
    nn__st_perm p;
    size_t mx = 0;
    int i, k, c;
    memset(&p, 0, sizeof p);
    for (i = 0; i < m->n; i++) {
        c = m->L[i].k->tensors ? m->L[i].k->tensors(&m->L[i], &p, tmp) : 0;
        for (k = 0; k < c; k++)
            if (nn__st_count(&tmp[k]) / tmp[k].it[0] * 4 > mx) mx = nn__st_count(&tmp[k]) / tmp[k].it[0] * 4;
    }
    return mx;
}

static void nn__st_put_str(nn__wbuf *w, const char *s) { nn__put(w, s, strlen(s)); }
NN__API nn_status nn_save_safetensors(const nn_model *m, const char *path) {
    nn__wbuf w, a;
    size_t nt, i, hlen, cbytes;
    nn__st_t *t;
    uint64_t off = 0;
    FILE *f;
    float *chunk;
    int li, named = 0, ok;
    char num[64];
    static const char hex[] = "0123456789abcdef";
    if (!m || !path) return NN_ERR_INVALID_ARGUMENT;
    if (!m->compiled) return NN_ERR_STATE;
    if (m->q8) return NN_ERR_UNSUPPORTED; /* an int8 model has no float tensors */
    nt = nn__st_list(m, NULL);
    t = (nn__st_t *)NN_MALLOC((nt ? nt : 1) * sizeof *t);
    cbytes = nn__st_maxrow(m) > NN__ST_CHUNK ? nn__st_maxrow(m) : NN__ST_CHUNK;
    chunk = (float *)NN_MALLOC(cbytes);
    memset(&w, 0, sizeof w);
    memset(&a, 0, sizeof a);
    if (!t || !chunk) {
        NN_FREE(t);
        NN_FREE(chunk);
        return NN_ERR_NO_MEMORY;
    }
    nn__st_list(m, t);
    nn__arch_put(&a, m);
    nn__st_put_str(&w, "{\"__metadata__\":{\"format\":\"pt\",\"nnh\":\"" NN_VERSION "\",\"nnh.arch\":\"");
    for (i = 0; i < a.n; i++) {
        char hx[2];
        hx[0] = hex[a.p[i] >> 4];
        hx[1] = hex[a.p[i] & 15];
        nn__put(&w, hx, 2);
    }
    nn__put(&w, "\"", 1);
    for (li = 0; li < m->n; li++) {
        snprintf(num, sizeof num, "%d", li);
        if (strcmp(num, m->L[li].name) != 0) named = 1;
    }
    if (named) {
        nn__st_put_str(&w, ",\"nnh.names\":\"");
        for (li = 0; li < m->n; li++) {
            if (li) nn__put(&w, ",", 1);
            nn__st_put_str(&w, m->L[li].name);
        }
        nn__put(&w, "\"", 1);
    }
    nn__put(&w, "}", 1);
    /* the I64 scalars first, then the F32 tensors: each aligned to its size */
    for (ok = 0; ok < 2; ok++)
        for (i = 0; i < nt; i++) {
            uint64_t bytes = t[i].mode == NN__STM_STEPS ? 8 : 4 * (uint64_t)nn__st_count(&t[i]);
            int k;
            if ((t[i].mode == NN__STM_STEPS) != (ok == 0)) continue;
            nn__st_put_str(&w, ",\"");
            nn__st_put_str(&w, t[i].name);
            nn__st_put_str(&w, t[i].mode == NN__STM_STEPS ? "\":{\"dtype\":\"I64\",\"shape\":["
                                                          : "\":{\"dtype\":\"F32\",\"shape\":[");
            for (k = 0; k < t[i].ndim; k++) {
                snprintf(num, sizeof num, "%s%lu", k ? "," : "", (unsigned long)t[i].shape[k]);
                nn__st_put_str(&w, num);
            }
            snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                     (unsigned long long)(off + bytes));
            nn__st_put_str(&w, num);
            off += bytes;
        }
    nn__put(&w, "}", 1);
    while ((8 + w.n) % 8) nn__put(&w, " ", 1);
    hlen = w.n;
    NN_FREE(a.p);
    if (w.oom || a.oom) {
        NN_FREE(w.p);
        NN_FREE(t);
        NN_FREE(chunk);
        return NN_ERR_NO_MEMORY;
    }
    f = fopen(path, "wb");
    ok = f != NULL;
    if (ok) {
        unsigned char b8[8];
        for (i = 0; i < 8; i++) b8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
        ok = fwrite(b8, 1, 8, f) == 8 && fwrite(w.p, 1, hlen, f) == hlen;
    }
    /* the data: pieces of rows gathered from nn.h's layout, written LE */
    for (li = 0; li < 2 && ok; li++)
        for (i = 0; i < nt && ok; i++) {
            const nn__st_t *x = &t[i];
            size_t per = nn__st_per(x, 4, cbytes), i0;
            unsigned char *cb = (unsigned char *)chunk;
            if ((x->mode == NN__STM_STEPS) != (li == 0)) continue;
            if (x->mode == NN__STM_STEPS) {
                for (i0 = 0; i0 < 8; i0++) cb[i0] = (unsigned char)((uint64_t)m->step >> (8 * i0));
                ok = fwrite(cb, 1, 8, f) == 8;
                continue;
            }
            for (i0 = 0; i0 < x->it[0] && ok; i0 += per) {
                size_t nr = x->it[0] - i0 < per ? x->it[0] - i0 : per, ne = nr * nn__st_count(x) / x->it[0];
                nn__st_gather(x, x->bufs ? m->bufs : m->params, i0, i0 + nr, chunk);
                nn__st_le32(chunk, ne);
                ok = fwrite(chunk, 4, ne, f) == ne;
            }
        }
    if (f && fclose(f) != 0) ok = 0;
    NN_FREE(w.p);
    NN_FREE(t);
    NN_FREE(chunk);
    return ok ? NN_OK : NN_ERR_IO;
}

/* ========================================================================= */
/* ==== 9. int8 inference                                                     */
/* ========================================================================= */
/* nn_quantize turns a trained model into an inference-only int8 one: the
 * same layers (a model rebuilt from the fp32 one's architecture, so that
 * shapes, nn_predict, nn_evaluate and the head are the fp32 code), whose
 * forward runs the ops below on uint8 activations instead of the layers.
 *   activations  u8 per tensor, real = s (q - z), s and z from the range
 *                the calibration samples reach at the op's output (always
 *                holding 0, so zero padding is exact: q = z)
 *   weights      s8 per output channel, symmetric (|q| <= 127), batch
 *                norm folded in first
 *   products     u8 x s8 -> int32 (section 4.9), exact; the input's zero
 *                point and the bias go into one int32 per column.  A
 *                conv without padding reads its input in place (rows by
 *                a table of window offsets, K in kernel-row segments: no
 *                im2col, nn__q8_inplace); a padded one builds im2col
 *                rows.  Image by image, in chunks that stay in L1
 *   outputs      requantized by q8req (integer multiplier and shift, no
 *                float), ReLU fused as the clamp at z; the last GEMM's
 *                output is dequantized to float and the head (softmax,
 *                sigmoid) and the loss run in float as in the fp32 model
 *   pooling      a conv's 2x2 max-pool on its int32 sums, before the
 *                requantization (monotone, so the same as pooling bytes,
 *                on 4x fewer values), inside the GEMM (nn__q8a's pool:
 *                VNNI keeps a window's four rows in registers), its rows
 *                window by window so that an odd last row or column is
 *                never computed; other
 *                max-pools on u8 directly; average and global average as
 *                rounded integer means; upsampling copies
 *   elementwise  any other activation (tanh, sigmoid, leaky ReLU, a
 *                batch norm or normalization left alone) is a table of
 *                256 bytes per channel, computed once at quantization
 * Integer arithmetic is exact, so every backend gives the same bits. */
enum {
    NN__Q8_GEMM = 1, /* dense, or conv (in place or by im2col) */
    NN__Q8_MAXPOOL,
    NN__Q8_AVGPOOL,
    NN__Q8_GAP,
    NN__Q8_UP,
    NN__Q8_LUT,      /* a table per channel (C x 256) */
    NN__Q8_SAME      /* flatten, dropout: the bytes as they are */
};
typedef struct nn__q8op {
    int kind, first, last;  /* the fp32 layers [first, last] it stands for */
    nn_shape in, out;
    size_t in_dim, out_dim; /* per sample */
    float s_in, s_out;      /* scales and zero points of its input and output */
    int z_in, z_out;
    /* GEMM */
    int conv, relu, float_out;
    int pool2;              /* a 2x2 max-pool of the int32 sums before the requantization */
    nn_conv_geom g;         /* one sample (conv) */
    size_t K, N;
    size_t seg, k4;         /* conv read in place: K in segments of seg bytes (nn__q8_inplace), else 0; K's groups of 4 */
    uint32_t *ro;           /* conv read in place: each row's window, from the image's start */
    signed char *w, *wp;    /* K x N weights, and packed (section 4.9) */
    int32_t *bias, *mul, *shift; /* per column: bias - z_in * column sum; requantization */
    float *fscale;          /* float_out: y = fscale[n] * (acc + bias[n]) */
    /* pooling, upsampling */
    int size, pad;
    /* LUT: C tables of 256 */
    unsigned char *lut;
    size_t C;
} nn__q8op;
struct nn__q8 {
    nn__q8op *op;
    int nop;
    float s_x;              /* the input's quantization */
    int z_x;
    /* buffers planned at a batch: two activation buffers, the im2col
     * matrix, the int32 products */
    int batch;
    unsigned char *act[2], *col;
    int32_t *acc;
    size_t actS, colS, accS; /* the most one sample takes of each: a thread's samples start at b0 * these */
};

static void nn__q8_free(struct nn__q8 *q) {
    int i;
    if (!q) return;
    for (i = 0; i < q->nop; i++) {
        nn__q8op *o = &q->op[i];
        NN_FREE(o->w);
        nn_aligned_free(o->wp);
        NN_FREE(o->bias);
        NN_FREE(o->mul);
        NN_FREE(o->shift);
        NN_FREE(o->fscale);
        NN_FREE(o->lut);
        NN_FREE(o->ro);
    }
    NN_FREE(q->op);
    nn_aligned_free(q->act[0]);
    nn_aligned_free(q->act[1]);
    nn_aligned_free(q->col);
    nn_aligned_free(q->acc);
    NN_FREE(q);
}

/* the quantization of a range: s and z with 0 exactly representable */
static void nn__q8_range(float mn, float mx, float *s, int *z) {
    double lo = mn < 0.0f ? mn : 0.0, hi = mx > 0.0f ? mx : 0.0, sc = (hi - lo) / 255.0, zz;
    if (!(sc > 1e-30)) sc = 1e-30 > hi / 255.0 ? 1.0 : hi / 255.0;
    if (!(sc > 0.0)) sc = 1.0;
    zz = floor(-lo / sc + 0.5);
    *s = (float)sc;
    *z = zz < 0 ? 0 : zz > 255 ? 255 : (int)zz;
}
/* x as u8 with scale s, zero z: round half up, clamped (the one float step,
 * the same C on every backend) */
static unsigned char nn__q8_quant1(float x, float inv_s, int z) {
    unsigned char q;
    nn__s_q8quant(1, &x, inv_s, z, &q);
    return q;
}
/* a real multiplier m in (0, 1) as mul * 2^-shift, mul in [2^30, 2^31),
 * shift in [31, 62] (q8req's contract); tiny ones end at shift 62 */
static void nn__q8_mult(double m, int32_t *mul, int32_t *shift) {
    int e;
    double f = frexp(m, &e); /* m = f * 2^e, f in [0.5, 1) */
    long long q = (long long)floor(f * 2147483648.0 + 0.5);
    if (q >= 2147483648LL) q /= 2, e++;
    if (m <= 0.0) q = 0, e = 0;
    if (31 - e > 62) { /* below 2^-32: fewer bits of mul */
        q = (long long)floor(m * 4611686018427387904.0 + 0.5);
        e = 31 - 62;
    }
    *mul = (int32_t)q;
    *shift = 31 - e;
}
static size_t nn__q8_S(size_t n) { return (n + 3) & ~(size_t)3; } /* a sample's bytes, rows of 4 */

/* The ops of a model: which fp32 layers each stands for.  Returns the
 * count, or -1 with a message for a layer int8 does not run. */
static int nn__q8_plan_ops(nn_model *c, nn__q8op *op) {
    int i = 0, n = 0;
    while (i < c->n) {
        nn__layer *L = &c->L[i];
        nn__q8op *o = op ? &op[n] : NULL, tmp;
        if (!o) o = &tmp;
        memset(o, 0, sizeof *o);
        o->first = o->last = i;
        if (L->k == &nn__row_dense || L->k == &nn__row_conv) {
            o->kind = NN__Q8_GEMM;
            o->conv = L->k == &nn__row_conv;
            if (L->act == NN_LINEAR && i + 1 < c->n && c->L[i + 1].k == &nn__row_bn &&
                c->L[i + 1].act == NN_LINEAR)
                o->last = ++i; /* batch norm folded into the weights */
            if (c->L[o->last].act == NN_LINEAR && i + 1 < c->n && c->L[i + 1].k == &nn__row_act &&
                c->L[i + 1].act == NN_RELU)
                o->last = ++i; /* ReLU as the clamp */
            o->relu = c->L[o->last].act == NN_RELU || (o->last > o->first && c->L[o->last].k == &nn__row_act);
            /* a 2x2 max-pool after a conv: on the int32 sums, before the
             * requantization (monotone, so the same as pooling its bytes),
             * which then has 4x fewer values */
            if (o->conv && (o->relu || c->L[o->last].act == NN_LINEAR) && i + 2 < c->n &&
                c->L[i + 1].k == &nn__row_maxpool && c->L[i + 1].pool.size == 2 && !c->L[i + 1].pool.pad)
                o->pool2 = 1, o->last = ++i;
            o->float_out = o->last == c->n - 1;
            n++;
            /* any other activation of the layer: a table after it */
            if (!o->float_out && c->L[o->last].act != NN_LINEAR && c->L[o->last].act != NN_RELU) {
                nn__q8op *t = op ? &op[n] : &tmp;
                if (op) memset(t, 0, sizeof *t);
                t->kind = NN__Q8_LUT;
                t->first = t->last = o->last;
                n++;
            }
            i++;
            continue;
        }
        if (L->k == &nn__row_maxpool) o->kind = NN__Q8_MAXPOOL;
        else if (L->k == &nn__row_avgpool) o->kind = NN__Q8_AVGPOOL;
        else if (L->k == &nn__row_gap) o->kind = NN__Q8_GAP;
        else if (L->k == &nn__row_up) o->kind = NN__Q8_UP;
        else if (L->k == &nn__row_flatten || L->k == &nn__row_dropout ||
                 (L->k == &nn__row_act && L->act == NN_LINEAR))
            o->kind = NN__Q8_SAME;
        else if (L->k == &nn__row_act || L->k == &nn__row_bn || L->k == &nn__row_norm)
            o->kind = NN__Q8_LUT;
        else {
            nn__fail(c, NN_ERR_UNSUPPORTED,
                     "nn_quantize: layer %d (%s) has no int8 version (dense, conv2d, pooling, "
                     "flatten, dropout, batch norm, normalization, activations, upsampling do)",
                     i, L->k->name);
            return -1;
        }
        if (o->kind != NN__Q8_LUT && L->act != NN_LINEAR) {
            nn__fail(c, NN_ERR_UNSUPPORTED, "nn_quantize: layer %d (%s) with a fused activation", i,
                     L->k->name);
            return -1;
        }
        n++;
        i++;
    }
    return n;
}

/* Ranges for calibration: the fp32 model c run layer by layer on n
 * samples of ds; lo/hi[i] = the range of layer i's output, and for a
 * layer whose activation becomes a table, pre[i] = the range before it */
static nn_status nn__q8_calibrate(nn_model *c, const nn_dataset *ds, int n, float *lo, float *hi,
                                  float *plo, float *phi, float *xlo, float *xhi) {
    int start, i, B = 64;
    nn_status s = nn__plan(c, n < B ? n : B);
    size_t j;
    if (s != NN_OK) return s;
    B = c->arena_batch < n ? c->arena_batch : n;
    for (i = 0; i < c->n; i++) lo[i] = plo[i] = HUGE_VALF, hi[i] = phi[i] = -HUGE_VALF;
    *xlo = HUGE_VALF, *xhi = -HUGE_VALF;
    for (start = 0; start < n; start += B) {
        int b = n - start < B ? n - start : B;
        const float *in;
        nn__gather(c, ds, NULL, start, b);
        in = c->xin;
        for (j = 0; j < (size_t)b * c->in_dim; j++) {
            if (in[j] < *xlo) *xlo = in[j];
            if (in[j] > *xhi) *xhi = in[j];
        }
        for (i = 0; i < c->n; i++) {
            nn__layer *L = &c->L[i];
            nn_activation a = L->act;
            size_t cnt = (size_t)b * L->out_dim;
            /* the range before a table-made activation: the layer linear, then the activation */
            int split = (L->k == &nn__row_dense || L->k == &nn__row_conv) && a != NN_LINEAR && a != NN_RELU;
            if (split) L->act = NN_LINEAR;
            L->k->fwd(c, L, in, b, 0);
            if (split) {
                for (j = 0; j < cnt; j++) {
                    if (L->y[j] < plo[i]) plo[i] = L->y[j];
                    if (L->y[j] > phi[i]) phi[i] = L->y[j];
                }
                L->act = a;
                nn__act_forward(c, a, L->slope, cnt / nn__channels(L->out), nn__channels(L->out), L->y);
            }
            for (j = 0; j < cnt; j++) {
                if (L->y[j] < lo[i]) lo[i] = L->y[j];
                if (L->y[j] > hi[i]) hi[i] = L->y[j];
            }
            in = L->y;
        }
    }
    return NN_OK;
}

/* the real function a table stands for, at x, channel ch */
static double nn__q8_lut_f(const nn_model *c, const nn__layer *L, size_t ch, double x) {
    if (L->k == &nn__row_bn) {
        const float *g = c->params + L->woff, *b = c->params + L->boff, *mean = c->bufs + L->bufoff,
                    *var = mean + L->nw;
        x = (x - mean[ch]) / sqrt((double)var[ch] + 1e-5) * g[ch] + b[ch];
    } else if (L->k == &nn__row_norm) {
        const float *mean = c->bufs + L->bufoff, *var = mean + L->nbuf / 2;
        double d = sqrt((double)var[ch]);
        x = (x - mean[ch]) / (d >= 1e-7 ? d : 1e-7);
    }
    switch (L->act) {
    case NN_RELU: return x > 0.0 ? x : 0.0;
    case NN_LEAKY_RELU: return x > 0.0 ? x : x * L->slope;
    case NN_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case NN_TANH: return tanh(x);
    default: return x;
    }
}

/* Whether a conv op reads its input in place, without im2col rows: a
 * row of A is then an output pixel's window, found through a table of
 * offsets (o->ro), and its K comes in kh segments of kw x C bytes (a
 * kernel row: adjacent pixels in NHWC), one input row apart, each padded
 * to whole groups of 4 (the bytes read past a segment, at most 3 past the
 * image, meet zero weights).  For a conv with no padding ('valid'), every
 * window inside the image, any stride: im2col rows cost about as much as
 * the products for a narrow K (the Fashion CNN's first conv, Zen 5: 3.7
 * against 3.6 thousand cycles an image) and a third of them for a wide
 * one (its second).  A padded conv builds rows (its windows leave the
 * image); so does a conv whose K (4 x k4) is over 4096 bytes, where the
 * gathering of AVX2 and NEON (nn__q8_via) would not fit its buffer.  Returns the
 * segment's bytes, or 0. */
static size_t nn__q8_inplace(const nn__q8op *o) {
    const nn_conv_geom *g = &o->g;
    size_t seg = (size_t)g->kw * (size_t)g->c;
    if (!o->conv || g->pt || g->pl || (g->oh - 1) * g->sh + g->kh > g->h ||
        (g->ow - 1) * g->sw + g->kw > g->w || (size_t)g->kh * ((seg + 3) / 4) > 1024 ||
        (size_t)g->h * (size_t)g->w * (size_t)g->c > 0x7FFFFFFFu)
        return 0;
    return seg;
}
/* the rows of an op's A, and of its int32 sums, per sample: with a 2x2
 * max-pool after a conv, only the pixels the pool reads, window by window,
 * four rows each ((2py, 2px), (2py, 2px + 1), (2py + 1, 2px), (2py + 1,
 * 2px + 1)), so that the pool takes four adjacent rows and an odd last
 * row or column is never computed (the Fashion CNN's second conv: 100
 * rows, not 121) */
static size_t nn__q8_rows(const nn__q8op *o) {
    if (!o->conv) return o->in_dim / o->K;
    if (o->pool2) return 4 * (size_t)(o->g.oh / 2) * (size_t)(o->g.ow / 2);
    return (size_t)o->g.oh * (size_t)o->g.ow;
}
/* output pixel of row r (nn__q8_rows' order) */
static void nn__q8_pixel(const nn__q8op *o, size_t r, int *oy, int *ox) {
    if (o->pool2) {
        size_t w = r / 4, PW = (size_t)o->g.ow / 2;
        *oy = 2 * (int)(w / PW) + (int)(r >> 1 & 1), *ox = 2 * (int)(w % PW) + (int)(r & 1);
    } else {
        *oy = (int)(r / (size_t)o->g.ow), *ox = (int)(r % (size_t)o->g.ow);
    }
}
/* the packed weights of a GEMM op, in the order its rows give K, and
 * the rows' table of a conv read in place */
static int nn__q8_packw(nn__q8op *o) {
    size_t r, rows;
    int oy, ox;
    o->seg = nn__q8_inplace(o);
    o->k4 = nn__q8_k4s(o->K, o->seg);
    o->wp = (signed char *)nn_aligned_alloc(nn__q8_pack_bytes_s(o->K, o->seg, o->N));
    if (!o->wp) return 0;
    nn__q8_pack_s(o->K, o->seg, o->N, o->w, o->N, o->wp);
    if (!o->seg) return 1;
    rows = nn__q8_rows(o);
    o->ro = (uint32_t *)NN_MALLOC(rows * sizeof(uint32_t));
    if (!o->ro) return 0;
    for (r = 0; r < rows; r++) {
        nn__q8_pixel(o, r, &oy, &ox);
        o->ro[r] = (uint32_t)(((size_t)oy * (size_t)o->g.sh * (size_t)o->g.w + (size_t)ox * (size_t)o->g.sw) *
                              (size_t)o->g.c);
    }
    return 1;
}

/* weights and requantization of a GEMM op (batch norm folded) */
static nn_status nn__q8_gemm_op(nn_model *c, nn__q8op *o) {
    const nn__layer *L = &c->L[o->first], *bn = o->last > o->first && c->L[o->first + 1].k == &nn__row_bn
                                                   ? &c->L[o->first + 1]
                                                   : NULL;
    const float *W = c->params + L->woff, *b = L->nobias ? NULL : c->params + L->boff;
    size_t K = L->nw / (L->k == &nn__row_dense ? (size_t)L->dense.units : (size_t)L->conv.filters), N,
           k, n, ks, ns;
    double *sw, *wf, *bf, mmax = 0.0;
    N = L->nw / K;
    /* W[k][n] at W[k*ks + n*ns]: a conv's is (K, F), a dense one's (units, in) */
    ks = L->k == &nn__row_dense ? 1 : N;
    ns = L->k == &nn__row_dense ? K : 1;
    if (K > NN__Q8_MAXK / 4) /* the products' sum and the bias stay below 2^30 each */
        return nn__fail(c, NN_ERR_UNSUPPORTED, "nn_quantize: layer %d has %lu inputs per output, over %d",
                        o->first, (unsigned long)K, NN__Q8_MAXK / 4);
    o->K = K, o->N = N;
    o->w = (signed char *)NN_MALLOC(K * N);
    o->bias = (int32_t *)NN_MALLOC(N * sizeof(int32_t));
    o->mul = (int32_t *)NN_MALLOC(N * sizeof(int32_t));
    o->shift = (int32_t *)NN_MALLOC(N * sizeof(int32_t));
    o->fscale = (float *)NN_MALLOC(N * sizeof(float));
    sw = (double *)NN_MALLOC(N * sizeof(double));
    bf = (double *)NN_MALLOC(N * sizeof(double));
    wf = (double *)NN_MALLOC(N * sizeof(double)); /* the batch norm factor per column */
    if (!o->w || !o->bias || !o->mul || !o->shift || !o->fscale || !sw || !bf || !wf) {
        NN_FREE(sw), NN_FREE(bf), NN_FREE(wf);
        return nn__fail(c, NN_ERR_NO_MEMORY, "nn_quantize: out of memory");
    }
    for (n = 0; n < N; n++) {
        double g = 1.0, bb = b ? b[n] : 0.0, mx = 0.0;
        if (bn) {
            const float *ga = c->params + bn->woff, *be = c->params + bn->boff, *mean = c->bufs + bn->bufoff,
                        *var = mean + bn->nw;
            g = ga[n] / sqrt((double)var[n] + 1e-5);
            bb = (bb - mean[n]) * g + be[n];
        }
        for (k = 0; k < K; k++)
            if (fabs(W[k * ks + n * ns] * g) > mx) mx = fabs(W[k * ks + n * ns] * g);
        sw[n] = mx > 0.0 ? mx / 127.0 : 1.0;
        wf[n] = g;
        bf[n] = bb;
    }
    /* the output's scale: every column's multiplier below 1 (q8req) */
    for (n = 0; n < N; n++)
        if ((double)o->s_in * sw[n] > mmax) mmax = (double)o->s_in * sw[n];
    if (!o->float_out && mmax >= o->s_out) { /* a coarser output: rare, tiny ranges */
        double lo = (double)o->s_out * -o->z_out;
        o->s_out = (float)(mmax * 1.0001);
        o->z_out = (int)floor(-lo / o->s_out + 0.5);
        if (o->z_out > 255) o->z_out = 255;
    }
    for (n = 0; n < N; n++) {
        long long colsum = 0, bq;
        double sacc = (double)o->s_in * sw[n];
        for (k = 0; k < K; k++) {
            double q = floor(W[k * ks + n * ns] * wf[n] / sw[n] + 0.5);
            signed char v = (signed char)(q > 127 ? 127 : q < -127 ? -127 : q);
            o->w[k * N + n] = v;
            colsum += v;
        }
        bq = (long long)floor(bf[n] / sacc + 0.5) - (long long)o->z_in * colsum;
        if (bq > (1LL << 29)) bq = 1LL << 29; /* |acc + bias| < 2^31 in any int32 lane */
        if (bq < -(1LL << 29)) bq = -(1LL << 29);
        o->bias[n] = (int32_t)bq;
        o->fscale[n] = (float)sacc;
        nn__q8_mult(o->float_out ? 0.5 : sacc / o->s_out, &o->mul[n], &o->shift[n]);
    }
    NN_FREE(sw), NN_FREE(bf), NN_FREE(wf);
    if (!nn__q8_packw(o)) return nn__fail(c, NN_ERR_NO_MEMORY, "nn_quantize: out of memory");
    return NN_OK;
}

/* int8 model files: nn.h's format 2 with the ARCH section (the float
 * model's architecture: shapes, head, loss) and a QINT section instead of
 * PARM and BUFS: the input's scale and zero point, then per op its kind
 * and layers (checked against the ops the architecture implies), scales
 * and zero points, and its numbers: s8 weights K x N (packed on loading),
 * per column bias, multiplier, shift and float scale, or a pool's size and
 * padding, or the tables.  Every value is checked on loading: zero points
 * in [0, 255], shifts in [31, 62], multipliers in [0, 2^31), biases within
 * 2^29 (no int32 lane can overflow), sizes those of the layers. */
static void nn__q8_put(nn__wbuf *w, const struct nn__q8 *q) {
    int i;
    size_t j;
    nn__put_u32(w, (uint32_t)q->nop);
    nn__put_f32(w, q->s_x);
    nn__put_u32(w, (uint32_t)q->z_x);
    for (i = 0; i < q->nop; i++) {
        const nn__q8op *o = &q->op[i];
        nn__put_u32(w, (uint32_t)o->kind);
        nn__put_u32(w, (uint32_t)o->first);
        nn__put_u32(w, (uint32_t)o->last);
        nn__put_f32(w, o->s_in);
        nn__put_f32(w, o->s_out);
        nn__put_u32(w, (uint32_t)o->z_in);
        nn__put_u32(w, (uint32_t)o->z_out);
        if (o->kind == NN__Q8_GEMM) {
            nn__put_u64(w, o->K);
            nn__put_u64(w, o->N);
            nn__put(w, o->w, o->K * o->N);
            for (j = 0; j < o->N; j++) {
                nn__put_u32(w, (uint32_t)o->bias[j]);
                nn__put_u32(w, (uint32_t)o->mul[j]);
                nn__put_u32(w, (uint32_t)o->shift[j]);
                nn__put_f32(w, o->fscale[j]);
            }
        } else if (o->kind == NN__Q8_LUT) {
            nn__put_u64(w, o->C);
            nn__put(w, o->lut, o->C * 256);
        }
    }
}
static int nn__q8_zs(float s, int32_t z) { return s > 0.0f && s < 1e30f && z >= 0 && z <= 255; }
/* the QINT section into m (built from the ARCH section), or 0 */
static int nn__q8_get(nn__rbuf *r, nn_model *m, int *oom) {
    struct nn__q8 *q;
    int n = nn__q8_plan_ops(m, NULL), i;
    size_t j;
    uint32_t nop = nn__get_u32(r);
    if (n < 0 || r->bad || nop != (uint32_t)n) return 0;
    q = (struct nn__q8 *)NN_MALLOC(sizeof *q);
    if (!q) return *oom = 1, 0;
    memset(q, 0, sizeof *q);
    q->op = (nn__q8op *)NN_MALLOC((size_t)n * sizeof(nn__q8op));
    if (!q->op) {
        NN_FREE(q);
        return *oom = 1, 0;
    }
    q->nop = nn__q8_plan_ops(m, q->op);
    m->q8 = q; /* freed with m on any failure */
    q->s_x = nn__get_f32(r);
    q->z_x = nn__get_i32(r);
    if (!nn__q8_zs(q->s_x, q->z_x)) return 0;
    for (i = 0; i < n && !r->bad; i++) {
        nn__q8op *o = &q->op[i];
        const nn__layer *F = &m->L[o->first], *La = &m->L[o->last];
        int kind = nn__get_i32(r), first = nn__get_i32(r), last = nn__get_i32(r);
        if (r->bad || kind != o->kind || first != o->first || last != o->last) return 0;
        o->s_in = nn__get_f32(r);
        o->s_out = nn__get_f32(r);
        o->z_in = nn__get_i32(r);
        o->z_out = nn__get_i32(r);
        if (!nn__q8_zs(o->s_in, o->z_in) || !nn__q8_zs(o->s_out, o->z_out)) return 0;
        o->in = F->in, o->out = La->out, o->in_dim = F->in_dim, o->out_dim = La->out_dim;
        if (o->kind == NN__Q8_LUT && (F->k == &nn__row_dense || F->k == &nn__row_conv))
            o->in = La->out, o->in_dim = La->out_dim;
        if (o->kind == NN__Q8_GEMM) {
            uint64_t K = nn__get_u64(r), N = nn__get_u64(r);
            size_t Kw = F->nw / (F->k == &nn__row_dense ? (size_t)F->dense.units : (size_t)F->conv.filters);
            if (r->bad || K != Kw || N != F->nw / Kw || K > NN__Q8_MAXK / 4 || K * N > r->n - r->pos)
                return 0;
            o->K = (size_t)K, o->N = (size_t)N;
            o->w = (signed char *)NN_MALLOC(o->K * o->N);
            o->bias = (int32_t *)NN_MALLOC(o->N * sizeof(int32_t));
            o->mul = (int32_t *)NN_MALLOC(o->N * sizeof(int32_t));
            o->shift = (int32_t *)NN_MALLOC(o->N * sizeof(int32_t));
            o->fscale = (float *)NN_MALLOC(o->N * sizeof(float));
            if (!o->w || !o->bias || !o->mul || !o->shift || !o->fscale) return *oom = 1, 0;
            memcpy(o->w, r->p + r->pos, o->K * o->N);
            r->pos += o->K * o->N;
            for (j = 0; j < o->N; j++) {
                o->bias[j] = nn__get_i32(r);
                o->mul[j] = nn__get_i32(r);
                o->shift[j] = nn__get_i32(r);
                o->fscale[j] = nn__get_f32(r);
                if (o->bias[j] > (1 << 29) || o->bias[j] < -(1 << 29) || o->mul[j] < 0 ||
                    o->shift[j] < 31 || o->shift[j] > 62 || !(o->fscale[j] - o->fscale[j] == 0.0f))
                    return 0;
            }
            for (j = 0; j < o->K * o->N; j++)
                if (o->w[j] < -127) return 0;
            if (o->conv && nn_conv_geom_init(&o->g, 1, F->in.d[0], F->in.d[1], F->in.d[2], F->conv.kh,
                                             F->conv.kw, F->conv.stride, F->conv.same) != NN_OK)
                return 0;
            if (!nn__q8_packw(o)) return *oom = 1, 0;
        } else if (o->kind == NN__Q8_LUT) {
            uint64_t C = nn__get_u64(r);
            uint64_t want = La->k == &nn__row_bn || La->k == &nn__row_norm ? nn__channels(La->out) : 1;
            if (r->bad || C != want || C * 256 > r->n - r->pos) return 0;
            o->C = (size_t)C;
            o->lut = (unsigned char *)NN_MALLOC(o->C * 256);
            if (!o->lut) return *oom = 1, 0;
            memcpy(o->lut, r->p + r->pos, o->C * 256);
            r->pos += o->C * 256;
        } else if (o->kind == NN__Q8_MAXPOOL || o->kind == NN__Q8_AVGPOOL) {
            o->size = F->pool.size, o->pad = F->pool.pad;
        } else if (o->kind == NN__Q8_UP) {
            o->size = F->up.factor;
        }
    }
    if (r->bad) return 0;
    nn_aligned_free(m->params); /* the float values: none in an int8 model */
    nn_aligned_free(m->bufs);
    m->params = m->bufs = NULL;
    return 1;
}
/* the int8 part of nn_model_summary: each op, its layers, its output's
 * scale and zero point, its bytes */
static void nn__q8_summary(const nn_model *m, FILE *f) {
    static const char *const kinds[] = {"?", "int8 gemm", "maxpool u8", "avgpool u8", "gap u8",
                                        "upsample u8", "table", "as is"};
    const struct nn__q8 *q = m->q8;
    size_t bytes = 0;
    int i;
    fprintf(f, "int8 (nn_quantize): input u8 scale %.4g zero %d; %d ops\n", (double)q->s_x, q->z_x, q->nop);
    for (i = 0; i < q->nop; i++) {
        const nn__q8op *o = &q->op[i];
        size_t b = o->kind == NN__Q8_GEMM ? o->K * o->N + 16 * o->N : o->C * 256;
        bytes += b;
        fprintf(f, "  %-12s layers %d-%d%s%s  out scale %.4g zero %d  %lu bytes\n",
                o->kind >= 1 && o->kind <= 7 ? kinds[o->kind] : "?", o->first, o->last,
                o->relu ? " relu" : "", o->float_out ? " float out" : "", (double)o->s_out, o->z_out,
                (unsigned long)b);
    }
    fprintf(f, "int8 numbers: %lu bytes (float: %lu)\n", (unsigned long)bytes,
            (unsigned long)nn_model_num_params(m) * 4);
}
NN__API int nn_model_is_int8(const nn_model *m) { return m && m->q8 != NULL; }
NN__API nn_status nn_quantize(const nn_model *m, const nn_dataset *calib, int n, nn_model **out) {
    nn__wbuf w;
    nn__rbuf r;
    nn_model *c = NULL;
    struct nn__q8 *q = NULL;
    float *lo = NULL, *hi = NULL, *plo = NULL, *phi = NULL, xlo, xhi, s_cur;
    int i, nop, z_cur;
    nn_status s;
    if (!out) return NN_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!m || !calib || n <= 0 || n > calib->n)
        return NN_ERR_INVALID_ARGUMENT;
    if (!m->compiled || m->q8) return NN_ERR_STATE;
    if (calib->x_dim != m->in_dim) return NN_ERR_SHAPE;
    /* the same model, rebuilt from its architecture, with its values */
    memset(&w, 0, sizeof w);
    nn__arch_put(&w, m);
    if (w.oom) {
        NN_FREE(w.p);
        return NN_ERR_NO_MEMORY;
    }
    r.p = w.p, r.n = w.n, r.pos = 0, r.bad = 0;
    s = nn__arch_get(&r, NN__FILE_VERSION, r.n, (uint64_t)1 << 40, &c);
    NN_FREE(w.p);
    if (s != NN_OK) return s;
    memcpy(c->params, m->params, m->nparams * sizeof(float));
    memcpy(c->bufs, m->bufs, m->nbufs * sizeof(float));
    for (i = 0; i < m->n; i++) memcpy(c->L[i].name, m->L[i].name, sizeof c->L[i].name);
    q = (struct nn__q8 *)NN_MALLOC(sizeof *q);
    lo = (float *)NN_MALLOC(4 * (size_t)c->n * sizeof(float));
    if (!q || !lo) {
        s = NN_ERR_NO_MEMORY;
        goto fail;
    }
    memset(q, 0, sizeof *q);
    hi = lo + c->n, plo = hi + c->n, phi = plo + c->n;
    nop = nn__q8_plan_ops(c, NULL);
    if (nop < 0) {
        s = NN_ERR_UNSUPPORTED;
        snprintf(((nn_model *)m)->msg, sizeof m->msg, "%s", c->msg);
        goto fail;
    }
    q->op = (nn__q8op *)NN_MALLOC((size_t)nop * sizeof(nn__q8op));
    if (!q->op) {
        s = NN_ERR_NO_MEMORY;
        goto fail;
    }
    q->nop = nn__q8_plan_ops(c, q->op);
    if ((s = nn__q8_calibrate(c, calib, n, lo, hi, plo, phi, &xlo, &xhi)) != NN_OK) goto fail;
    nn__q8_range(xlo, xhi, &q->s_x, &q->z_x);
    s_cur = q->s_x, z_cur = q->z_x;
    for (i = 0; i < q->nop && s == NN_OK; i++) {
        nn__q8op *o = &q->op[i];
        const nn__layer *F = &c->L[o->first], *La = &c->L[o->last];
        o->in = F->in, o->out = La->out;
        o->in_dim = F->in_dim, o->out_dim = La->out_dim;
        if (o->kind == NN__Q8_LUT && (F->k == &nn__row_dense || F->k == &nn__row_conv))
            o->in = La->out, o->in_dim = La->out_dim; /* a dense or conv layer's own activation */
        o->s_in = s_cur, o->z_in = z_cur;
        o->s_out = s_cur, o->z_out = z_cur; /* pooling, copies: the input's */
        if (o->kind == NN__Q8_GEMM) {
            int table_next = i + 1 < q->nop && q->op[i + 1].kind == NN__Q8_LUT && q->op[i + 1].first == o->last;
            if (table_next) { /* the pre-activation's range */
                o->out = La->out;
                nn__q8_range(plo[o->last], phi[o->last], &o->s_out, &o->z_out);
            } else {
                nn__q8_range(o->relu ? 0.0f : lo[o->last], hi[o->last], &o->s_out, &o->z_out);
            }
            if (o->conv) {
                if ((s = nn_conv_geom_init(&o->g, 1, F->in.d[0], F->in.d[1], F->in.d[2], F->conv.kh, F->conv.kw,
                                           F->conv.stride, F->conv.same)) != NN_OK)
                    break;
            }
            s = nn__q8_gemm_op(c, o);
        } else if (o->kind == NN__Q8_LUT) {
            size_t ch, v, C = nn__channels(La->out);
            const nn__layer *T = La;
            int per_ch = T->k == &nn__row_bn || T->k == &nn__row_norm;
            if (T->act == NN_SOFTMAX) {
                s = nn__fail(c, NN_ERR_UNSUPPORTED, "nn_quantize: softmax inside the model (layer %d)", o->last);
                break;
            }
            nn__q8_range(lo[o->last], hi[o->last], &o->s_out, &o->z_out);
            o->C = per_ch ? C : 1;
            o->lut = (unsigned char *)NN_MALLOC(o->C * 256);
            if (!o->lut) {
                s = NN_ERR_NO_MEMORY;
                break;
            }
            for (ch = 0; ch < o->C; ch++)
                for (v = 0; v < 256; v++) {
                    double x = (double)o->s_in * ((double)v - o->z_in), y;
                    /* a dense/conv layer's own activation: only the activation */
                    if (T->k != &nn__row_bn && T->k != &nn__row_norm && T->k != &nn__row_act) {
                        nn__layer A = *T;
                        A.k = &nn__row_act;
                        y = nn__q8_lut_f(c, &A, ch, x);
                    } else {
                        y = nn__q8_lut_f(c, T, ch, x);
                    }
                    o->lut[ch * 256 + v] = nn__q8_quant1((float)y, 1.0f / o->s_out, o->z_out);
                }
        } else if (o->kind == NN__Q8_MAXPOOL || o->kind == NN__Q8_AVGPOOL) {
            o->size = F->pool.size, o->pad = F->pool.pad;
        } else if (o->kind == NN__Q8_UP) {
            o->size = F->up.factor;
        }
        s_cur = o->s_out, z_cur = o->z_out;
    }
    if (s != NN_OK) goto fail;
    /* the float values are not needed any more: the model holds its int8 ones */
    nn_aligned_free(c->params);
    nn_aligned_free(c->bufs);
    c->params = c->bufs = NULL;
    c->q8 = q;
    NN_FREE(lo);
    *out = c;
    return NN_OK;
fail:
    if (c && c->msg[0] && m) snprintf(((nn_model *)m)->msg, sizeof m->msg, "%s", c->msg);
    nn__q8_free(q);
    NN_FREE(lo);
    nn_model_free(c);
    return s;
}

/* buffers for a batch of B (grown, never shrunk: a predict at the same
 * batch size allocates nothing) */
static nn_status nn__q8_buffers(nn_model *m, int B) {
    struct nn__q8 *q = m->q8;
    size_t act = nn__q8_S(m->in_dim), col = 0, acc = 0;
    int i;
    if (B <= q->batch) return NN_OK;
    for (i = 0; i < q->nop; i++) {
        const nn__q8op *o = &q->op[i];
        if (nn__q8_S(o->out_dim) > act) act = nn__q8_S(o->out_dim);
        if (o->kind == NN__Q8_GEMM) {
            size_t rows = nn__q8_rows(o);
            if (!o->seg && rows * 4 * o->k4 > col) col = rows * 4 * o->k4;
            if (rows * o->N > acc) acc = rows * o->N;
        }
    }
    act += 16; /* slack: im2col's moves and a conv read in place read up to 15 bytes past a sample */
    nn_aligned_free(q->act[0]);
    nn_aligned_free(q->act[1]);
    nn_aligned_free(q->col);
    nn_aligned_free(q->acc);
    q->act[0] = (unsigned char *)nn_aligned_alloc((size_t)B * act + 64);
    q->act[1] = (unsigned char *)nn_aligned_alloc((size_t)B * act + 64);
    q->col = (unsigned char *)nn_aligned_alloc((size_t)B * col + 64);
    q->acc = (int32_t *)nn_aligned_alloc(((size_t)B * acc + 16) * sizeof(int32_t));
    q->actS = act, q->colS = col, q->accS = acc;
    q->batch = 0;
    if (!q->act[0] || !q->act[1] || !q->col || !q->acc)
        return nn__fail(m, NN_ERR_NO_MEMORY, "int8 predict: out of memory for a batch of %d", B);
    /* the bytes between a row's K and its 4-byte groups meet zero weights:
     * any value gives the same sums, but let it be a defined one */
    memset(q->act[0], 0, (size_t)B * act + 64);
    memset(q->act[1], 0, (size_t)B * act + 64);
    memset(q->col, 0, (size_t)B * col + 64);
    q->batch = B;
    return NN_OK;
}

/* n bytes from s to d in whole moves of 4, 8 or 16 (inlined: a memcpy
 * call of a variable size cost more than the copy): up to 15 bytes past
 * s + n are read (a sample's activations have 16 bytes of slack, see
 * nn__q8_buffers) and, where room <= n rounded up, the tail is copied
 * exactly so that nothing is written at or past d + room */
static inline void nn__q8_copy(unsigned char *d, const unsigned char *s, size_t n, size_t room) {
    size_t i;
    if (n <= 4 && room >= 4) memcpy(d, s, 4);
    else if (n <= 8 && room >= 8) memcpy(d, s, 8);
    else {
        for (i = 0; i + 32 <= n; i += 32) memcpy(d + i, s + i, 32);
        for (; i + 16 <= n || (i < n && i + 16 <= room); i += 16) memcpy(d + i, s + i, 16);
        if (i < n) memcpy(d + i, s + i, n - i);
    }
}
/* One im2col row of a u8 image: output pixel (oy, ox)'s window, kernel
 * row after kernel row (kw x C bytes each), the padding at z; room: the
 * bytes the row may take (its lda) */
static void nn__q8_col_row(const nn_conv_geom *g, const unsigned char *x, int z, int oy, int ox,
                           unsigned char *d, size_t room) {
    int ky, kx, C = g->c;
    size_t run = (size_t)g->kw * (size_t)C;
    int ix0 = ox * g->sw - g->pl, inside = ix0 >= 0 && ix0 + g->kw <= g->w;
    for (ky = 0; ky < g->kh; ky++, d += run, room -= run) {
        int iy = oy * g->sh - g->pt + ky;
        if (iy < 0 || iy >= g->h) {
            memset(d, z, run);
        } else if (inside) { /* kw adjacent pixels in NHWC: one run of bytes */
            nn__q8_copy(d, x + ((size_t)iy * g->w + (size_t)ix0) * C, run, room);
        } else {
            /* the row's pointer only for rows inside the image (a negative
             * offset is undefined even unused: clang's UBSan) */
            const unsigned char *row = x + (size_t)iy * g->w * C;
            for (kx = 0; kx < g->kw; kx++) {
                int ix = ix0 + kx;
                if (ix < 0 || ix >= g->w) memset(d + kx * C, z, (size_t)C);
                else memcpy(d + kx * C, row + (size_t)ix * C, (size_t)C);
            }
        }
    }
}
/* im2col rows [r0, r1) (nn__q8_rows' order) of one u8 image into rows of
 * lda bytes from col, the padding at z */
static void nn__q8_im2col(const nn__q8op *o, const unsigned char *x, unsigned char *col, size_t lda,
                          size_t r0, size_t r1) {
    size_t r;
    int oy, ox;
    for (r = r0; r < r1; r++, col += lda) {
        nn__q8_pixel(o, r, &oy, &ox);
        nn__q8_col_row(&o->g, x, o->z_in, oy, ox, col, lda);
    }
}
/* A of a conv read in place (nn__q8_inplace) from image x, rows from r0 */
static nn__q8a nn__q8_inplace_a(const nn__q8op *o, const unsigned char *x, size_t r0) {
    nn__q8a a;
    a.p = x, a.lda = 0, a.ro = o->ro + r0, a.sg = (o->seg + 3) / 4;
    a.ss = (size_t)o->g.w * (size_t)o->g.c, a.pool = o->pool2;
    return a;
}
/* A conv op (not the last) on one image, in chunks of rows whose int32
 * sums (and im2col rows) stay in L1: the products (2x2-pooled where a
 * max-pool follows), then their requantization */
static void nn__q8_conv(const nn__ktab *k, const nn__q8op *o, const unsigned char *x, unsigned char *col,
                        int32_t *acc, unsigned char *out) {
    size_t N = o->N, rows = nn__q8_rows(o), lda = 4 * o->k4, r0, nr, g = o->pool2 ? 4 : 1;
    size_t step = 24576 / ((o->seg ? 0 : lda) + 4 * N) / 12 * 12; /* a multiple of 4 (pool) and 12 (VNNI's rows) */
    int lo = o->relu ? o->z_out : 0;
    nn__q8a a;
    if (step < 12) step = 12;
    for (r0 = 0; r0 < rows; r0 += nr) {
        nr = rows - r0 < step ? rows - r0 : step;
        if (o->seg) {
            a = nn__q8_inplace_a(o, x, r0);
        } else {
            nn__q8_im2col(o, x, col, lda, r0, r0 + nr);
            a.p = col, a.lda = lda, a.ro = NULL, a.sg = o->k4, a.ss = 0, a.pool = o->pool2;
        }
        nn__q8_gemm_s(k, nr, N, o->k4, &a, o->wp, acc, N);
        k->q8req(nr / g, N, acc, o->bias, o->mul, o->shift, o->z_out, lo, out + r0 / g * N);
    }
}
/* Ops [i0, i1) on samples l0 .. l0 + nb - 1 of the calling thread's range
 * (global index g0 = its first sample + l0).  Sample l's activations are
 * at l * actS in both buffers whatever the op, so samples can go through
 * the ops one at a time or together, with the same bytes; col and acc are
 * scratch for one op, from their start.  Returns the activation buffer the
 * last op wrote, or -1 when a GEMM with a float output ended the forward. */
static int nn__q8_ops(nn_model *m, int i0, int i1, size_t l0, size_t g0, size_t nb,
                      unsigned char *const *act, unsigned char *col, int32_t *acc, int cur) {
    struct nn__q8 *q = m->q8;
    const nn__ktab *k = nn__k();
    unsigned char *in, *outb;
    size_t j, b;
    int i;
    for (i = i0; i < i1; i++) {
        const nn__q8op *o = &q->op[i];
        size_t Si = q->actS, So = q->actS; /* a sample's stride */
        in = act[cur] + l0 * Si;
        outb = act[cur ^ 1] + l0 * So;
        switch (o->kind) {
        case NN__Q8_GEMM: {
            size_t rows = nn__q8_rows(o), lda = 4 * o->k4, r;
            float *fy = m->L[o->last].y;
            const unsigned char *A = col;
            size_t ldA = lda;
            if (o->conv && !o->float_out) {
                for (b = 0; b < nb; b++) nn__q8_conv(k, o, in + b * Si, col, acc, outb + b * So);
                break;
            }
            if (o->seg) {
                /* a conv read in place, the last op: below */
            } else if (!o->conv && rows == 1) {
                A = in, ldA = Si; /* one row a sample: read in place */
            } else {
                for (b = 0; b < nb; b++) {
                    unsigned char *Ab = col + b * rows * lda;
                    if (o->conv) nn__q8_im2col(o, in + b * Si, Ab, lda, 0, rows);
                    else
                        for (r = 0; r < rows; r++) memcpy(Ab + r * lda, in + b * Si + r * o->K, o->K);
                }
            }
            if (o->seg) { /* a conv read in place, the last op (never pooled) */
                for (b = 0; b < nb; b++) {
                    nn__q8a a = nn__q8_inplace_a(o, in + b * Si, 0);
                    nn__q8_gemm_s(k, rows, o->N, o->k4, &a, o->wp, acc + b * rows * o->N, o->N);
                }
            } else {
                nn__q8a a;
                a.p = A, a.lda = ldA, a.ro = NULL, a.sg = o->k4, a.ss = 0, a.pool = 0;
                nn__q8_gemm_s(k, nb * rows, o->N, o->k4, &a, o->wp, acc, o->N);
            }
            if (o->float_out) {
                for (r = 0; r < nb * rows; r++) {
                    const int32_t *a = acc + r * o->N;
                    float *y = fy + (g0 + r / rows) * o->out_dim + (r % rows) * o->N;
                    for (j = 0; j < o->N; j++) y[j] = o->fscale[j] * (float)(a[j] + o->bias[j]);
                }
            } else { /* a dense op: a sample's rows follow one another in acc and in the output */
                for (b = 0; b < nb; b++)
                    k->q8req(rows, o->N, acc + b * rows * o->N, o->bias, o->mul, o->shift, o->z_out,
                             o->relu ? o->z_out : 0, outb + b * So);
            }
            if (o->float_out) {
                const nn__layer *L = &m->L[o->last];
                if (L->act != NN_LINEAR) /* the scalar kernels: the same bits everywhere */
                    nn__act_forward_with(&nn__tab_scalar, L->act, L->slope,
                                         nb * o->out_dim / nn__channels(L->out), nn__channels(L->out),
                                         m->L[o->last].y + g0 * o->out_dim);
                return -1;
            }
            break;
        }
        case NN__Q8_MAXPOOL:
        case NN__Q8_AVGPOOL: {
            int H = o->in.d[0], W = o->in.d[1], C = o->in.d[2], OH = o->out.d[0], OW = o->out.d[1], p = o->size, pad = o->pad;
            int oy, ox, dy, dx, c;
            if (o->kind == NN__Q8_MAXPOOL && !pad && p == 2) { /* the most common: four rows of channels */
                for (b = 0; b < nb; b++)
                    for (oy = 0; oy < OH; oy++)
                        for (ox = 0; ox < OW; ox++) {
                            unsigned char *d = outb + b * So + ((size_t)oy * OW + ox) * C;
                            const unsigned char *s0 = in + b * Si + ((size_t)oy * 2 * W + (size_t)ox * 2) * C,
                                                *s1 = s0 + C, *s2 = s0 + (size_t)W * C, *s3 = s2 + C;
                            k->q8max4((size_t)C, s0, s1, s2, s3, d);
                        }
                break;
            }
            if (o->kind == NN__Q8_MAXPOOL && !pad) { /* the common case: rows of channels, no bounds */
                for (b = 0; b < nb; b++)
                    for (oy = 0; oy < OH; oy++)
                        for (ox = 0; ox < OW; ox++) {
                            unsigned char *d = outb + b * So + ((size_t)oy * OW + ox) * C;
                            const unsigned char *s0 = in + b * Si + ((size_t)oy * p * W + (size_t)ox * p) * C;
                            memcpy(d, s0, (size_t)C);
                            for (dy = 0; dy < p; dy++)
                                for (dx = 0; dx < p; dx++) {
                                    const unsigned char *sp = s0 + ((size_t)dy * W + dx) * C;
                                    for (c = 0; c < C; c++) d[c] = sp[c] > d[c] ? sp[c] : d[c];
                                }
                        }
                break;
            }
            for (b = 0; b < nb; b++)
                for (oy = 0; oy < OH; oy++)
                    for (ox = 0; ox < OW; ox++) {
                        unsigned char *d = outb + b * So + ((size_t)oy * OW + ox) * C;
                        for (c = 0; c < C; c++) {
                            int mx = -1;
                            size_t sum = 0, pp = (size_t)p * (size_t)p;
                            for (dy = 0; dy < p; dy++)
                                for (dx = 0; dx < p; dx++) {
                                    int iy = oy * p + dy - pad, ix = ox * p + dx - pad, v;
                                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
                                        sum += (size_t)o->z_in; /* counted zeros */
                                        continue;
                                    }
                                    v = in[b * Si + ((size_t)iy * W + ix) * C + c];
                                    if (v > mx) mx = v;
                                    sum += (size_t)v;
                                }
                            d[c] = (unsigned char)(o->kind == NN__Q8_MAXPOOL
                                                       ? (size_t)mx
                                                       : (sum + pp / 2) / pp);
                        }
                    }
            break;
        }
        case NN__Q8_GAP: {
            size_t C = nn__channels(o->in), hw = o->in_dim / C, px, c;
            for (b = 0; b < nb; b++)
                for (c = 0; c < C; c++) {
                    size_t sum = 0;
                    for (px = 0; px < hw; px++) sum += in[b * Si + px * C + c];
                    outb[b * So + c] = (unsigned char)((sum + hw / 2) / hw);
                }
            break;
        }
        case NN__Q8_UP: {
            int H = o->in.d[0], W = o->in.d[1], C = o->in.d[2], f = o->size, y, xx;
            for (b = 0; b < nb; b++)
                for (y = 0; y < H * f; y++)
                    for (xx = 0; xx < W * f; xx++)
                        memcpy(outb + b * So + ((size_t)y * W * f + xx) * C,
                               in + b * Si + ((size_t)(y / f) * W + xx / f) * C, (size_t)C);
            break;
        }
        case NN__Q8_LUT: {
            size_t C = o->C;
            for (b = 0; b < nb; b++)
                for (j = 0; j < o->out_dim; j++)
                    outb[b * So + j] = o->lut[(C > 1 ? j % C : 0) * 256 + in[b * Si + j]];
            break;
        }
        default: /* SAME: the bytes as they are */
            continue;
        }
        cur ^= 1;
    }
    return cur;
}
/* Samples [b0, b0 + nb) of x (one thread's): the image ops image by image,
 * while an image's buffers are in L1/L2 (the whole batch's int32 sums of
 * the first conv were 2.8 MB), then the rest (dense: the GEMM wants rows)
 * on all of them at once */
typedef struct nn__q8_job {
    nn_model *m;
    const float *x;
} nn__q8_job;
static void nn__q8_samples(void *ctx, size_t b0, size_t nb) {
    const nn__q8_job *jb = (const nn__q8_job *)ctx;
    nn_model *m = jb->m;
    const float *x = jb->x;
    struct nn__q8 *q = m->q8;
    unsigned char *act[2], *col = q->col + b0 * q->colS;
    int32_t *acc = q->acc + b0 * q->accS;
    size_t j, b, l0, S = q->actS, sub;
    float inv = 1.0f / q->s_x;
    int split = 0, cur = 0;
    act[0] = q->act[0] + b0 * q->actS;
    act[1] = q->act[1] + b0 * q->actS;
    while (split < q->nop && q->op[split].in.ndim == 3) split++;
    sub = split > 0 ? 1 : nb;
    for (l0 = 0; l0 < nb; l0 += sub) {
        size_t n = nb - l0 < sub ? nb - l0 : sub;
        for (b = l0; b < l0 + n; b++)
            nn__k()->q8quant(m->in_dim, x + (b0 + b) * m->in_dim, inv, q->z_x, act[0] + b * S);
        cur = nn__q8_ops(m, 0, split, l0, b0 + l0, n, act, col, acc, 0);
    }
    if (cur >= 0) cur = nn__q8_ops(m, split, q->nop, 0, b0, nb, act, col, acc, cur);
    if (cur >= 0) { /* the last op is not a GEMM: its bytes to float */
        const nn__q8op *o = &q->op[q->nop - 1];
        float *y = m->L[m->n - 1].y;
        size_t So = q->actS;
        for (b = 0; b < nb; b++)
            for (j = 0; j < o->out_dim; j++)
                y[(b0 + b) * o->out_dim + j] = o->s_out * (float)((int)act[cur][b * So + j] - o->z_out);
    }
}
/* The int8 forward of B samples of x: the float output into the last
 * layer's y (what the head and the loss read); samples over the threads */
static nn_status nn__q8_forward(nn_model *m, const float *x, int B) {
    nn__q8_job jb;
    int T = nn__mw(m) > 0 ? nn__mw(m) : 1;
    nn_status s = nn__q8_buffers(m, B);
    if (s != NN_OK) return s;
    jb.m = m, jb.x = x;
    nn__par_range(m, (size_t)B, (size_t)(B + T - 1) / (size_t)T, nn__q8_samples, &jb);
    return NN_OK;
}

#ifdef __cplusplus
}
#endif
#endif /* NN_IMPLEMENTATION_DONE */
#endif /* NN_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
This software is available under 2 licenses -- choose whichever you prefer.
------------------------------------------------------------------------------
ALTERNATIVE A - MIT License
Copyright (c) 2026 the nn.h authors
Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:
The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
ALTERNATIVE B - Public Domain (www.unlicense.org)
This is free and unencumbered software released into the public domain.
Anyone is free to copy, modify, publish, use, compile, sell, or distribute this
software, either in source code form or as a compiled binary, for any purpose,
commercial or non-commercial, and by any means.
------------------------------------------------------------------------------
*/
