// bench/bench.cc - Google Benchmark driver for nn.h (see `make bench`).
//
// nn.h is compiled as C in bench/harness.c; this file only includes its
// declarations (extern "C").  Built with plain -O2, no -m flags: every
// kernel row selects its backend with nn_set_backend() at run time.
//
// Row names (parsed by bench/summary.py; Google Benchmark appends /real_time):
//   kern/<kernel>/<backend>           nn.h kernel on scalar | avx2 | avx512
//   base/memcpy_<S>MiB                memcpy of S MiB: moves 2*S MiB (read S + write S)
//   base/libm_<f>_1M                  plain C loop over libm, compiled at -O2
//   gemm/<TT>/<M>x<K>x<N>/<impl>      C(MxN) = op(A)(MxK) op(B)(KxN); TT = transa transb
//                                     as N/T; impl = scalar | avx2 | avx512 (nn_sgemm_ws)
//                                     | <backend>-alloc (nn_sgemm) | naive | openblas
//   q8gemm/<M>x<K>x<N>/<backend>      int8 C(MxN, int32) = A(MxK, u8) B(KxN, s8, packed), one thread;
//                                     counted as 2MNK operations, beside gemm/NN/ at the same shape
//   thr/gemm/<TT>/<M>x<K>x<N>/threads=<T>  nn_sgemm (threaded) on the best backend, T threads
//   thr/cnn_step_b32/threads=<T>      one nn_train_on_batch of the seed CNN at batch 32, T threads
//                                     (T = 1 and T = every core: nn_set_threads(1) / (0))
//
// Fair memcpy comparison: an elementwise kernel over n floats that reads R
// arrays and writes W arrays moves (R+W)*4n bytes.  A memcpy of S bytes moves
// 2S (S read + S written), so each kernel is compared with a memcpy of
// S = (R+W)*4n/2 bytes: the same bytes moved and the same buffer footprint,
// all buffers warm (in L3: the largest footprint is 12 MiB, L3 is 32 MiB).
//   vsum (R1):                 memcpy 2 MiB
//   vdot, vrelu/exp/sigmoid/tanh (R1W1 or R2): memcpy 4 MiB
//   vadd, vmul, vaxpy (R2W1):  memcpy 6 MiB
//
// Extra options (stripped before Google Benchmark sees argv):
//   --openblas   register only the OpenBLAS cblas_sgemm rows (needs
//                -DNN_BENCH_OPENBLAS); run it once per OPENBLAS_CORETYPE.
//   --threads    register only the thr/ rows (1 thread vs every core of the
//                process's affinity; run it unpinned).  Without it every row
//                runs at nn_set_threads(1) (the -alloc rows call the threaded
//                nn_sgemm), so the pinned run measures one thread.
#include <benchmark/benchmark.h>

#include <sched.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../nn.h"
#include "harness.h"

#ifdef NN_BENCH_OPENBLAS
#include <cblas.h>
#endif

#ifndef NN_BENCH_NNH_ID
#define NN_BENCH_NNH_ID "unknown"
#endif

namespace {

const size_t kN = size_t(1) << 20;  // elementwise kernels: 1M floats (4 MiB per array)

// Buffers for one benchmark run: 64-byte aligned, filled (so every page is
// touched before timing), freed at the end of the run.
class Arena {
 public:
  ~Arena() {
    for (void* p : ps_) nn_aligned_free(p);
  }
  float* get(size_t n, float lo = -1.0f, float hi = 1.0f) {
    float* p = static_cast<float*>(nn_aligned_alloc(n * sizeof(float) + 64));
    if (!p) {
      std::fprintf(stderr, "bench: out of memory\n");
      std::exit(1);
    }
    hb_fill_uniform(p, n, lo, hi, 1000 + ps_.size());
    ps_.push_back(p);
    return p;
  }
  void* raw(size_t bytes) {
    void* p = nn_aligned_alloc(bytes + 64);
    if (!p) {
      std::fprintf(stderr, "bench: out of memory\n");
      std::exit(1);
    }
    std::memset(p, 0, bytes);
    ps_.push_back(p);
    return p;
  }

 private:
  std::vector<void*> ps_;
};

using Call = std::function<void()>;
using Maker = std::function<Call(Arena&)>;

// One timed row: select the backend (-1: none) and the thread count (0:
// leave it), build buffers, one untimed warm-up call (it also starts the
// pool's workers), then the loop.  bytes/items are per call.
void RunRow(benchmark::State& st, int backend, int threads, const Maker& make, double bytes, double items,
            double flops) {
  if (backend >= 0 && nn_set_backend(static_cast<nn_backend>(backend)) != NN_OK) {
    st.SkipWithError("backend not available");
    return;
  }
  if (threads > 0 && (nn_set_threads(threads) != NN_OK || nn_get_threads() != threads)) {
    st.SkipWithError("thread count not available");
    return;
  }
  Arena ar;
  Call call = make(ar);
  call();  // warm: caches, TLB, branch predictors
  for (auto _ : st) {
    call();
    benchmark::ClobberMemory();
  }
  if (bytes > 0) st.SetBytesProcessed(static_cast<int64_t>(bytes * static_cast<double>(st.iterations())));
  if (items > 0) st.SetItemsProcessed(static_cast<int64_t>(items * static_cast<double>(st.iterations())));
  if (flops > 0) st.counters["FLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
}

// threads > 0: the row sets that count, and its CPU time is the process's
// (every worker), so CPU / real time is the number of cores kept busy.
void Add(const std::string& name, int backend, Maker make, double bytes, double items, double flops = 0,
         int threads = 0) {
  benchmark::internal::Benchmark* r = benchmark::RegisterBenchmark(
      name.c_str(), [=](benchmark::State& st) { RunRow(st, backend, threads, make, bytes, items, flops); });
  r->UseRealTime()->Unit(benchmark::kMicrosecond);
  if (threads > 0) r->MeasureProcessCPUTime();
}

// ---- kernels --------------------------------------------------------------
struct Kern {
  std::string name;
  double bytes, items;  // per call: bytes read + written (ideal, each array once), elements
  Maker make;
};

std::vector<Kern> Kernels() {
  std::vector<Kern> ks;
  const double n = double(kN), F = sizeof(float);
  ks.push_back({"vadd_1M", 3 * F * n, n, [](Arena& a) {
                  float *x = a.get(kN), *y = a.get(kN), *z = a.get(kN);
                  return Call([=] { nn_vadd(kN, x, y, z); });
                }});
  ks.push_back({"vmul_1M", 3 * F * n, n, [](Arena& a) {
                  float *x = a.get(kN), *y = a.get(kN), *z = a.get(kN);
                  return Call([=] { nn_vmul(kN, x, y, z); });
                }});
  ks.push_back({"vaxpy_1M", 3 * F * n, n, [](Arena& a) {  // reads x, y; writes y
                  float *x = a.get(kN), *y = a.get(kN);
                  return Call([=] { nn_vaxpy(kN, 1e-6f, x, y); });
                }});
  ks.push_back({"vrelu_1M", 2 * F * n, n, [](Arena& a) {
                  float *x = a.get(kN), *y = a.get(kN);
                  return Call([=] { nn_vrelu(kN, x, y); });
                }});
  ks.push_back({"vexp_1M", 2 * F * n, n, [](Arena& a) {
                  float *x = a.get(kN, -5, 5), *y = a.get(kN);
                  return Call([=] { nn_vexp(kN, x, y); });
                }});
  ks.push_back({"vsigmoid_1M", 2 * F * n, n, [](Arena& a) {
                  float *x = a.get(kN, -5, 5), *y = a.get(kN);
                  return Call([=] { nn_vsigmoid(kN, x, y); });
                }});
  ks.push_back({"vtanh_1M", 2 * F * n, n, [](Arena& a) {
                  float *x = a.get(kN, -5, 5), *y = a.get(kN);
                  return Call([=] { nn_vtanh(kN, x, y); });
                }});
  ks.push_back({"vdot_1M", 2 * F * n, n, [](Arena& a) {
                  float *x = a.get(kN), *y = a.get(kN);
                  return Call([=] { benchmark::DoNotOptimize(nn_vdot(kN, x, y)); });
                }});
  ks.push_back({"vsum_1M", 1 * F * n, n, [](Arena& a) {
                  float* x = a.get(kN);
                  return Call([=] { benchmark::DoNotOptimize(nn_vsum(kN, x)); });
                }});
  const size_t sm[][2] = {{32, 10}, {1024, 1000}};
  for (auto& s : sm) {
    size_t r = s[0], c = s[1];
    ks.push_back({"softmax_" + std::to_string(r) + "x" + std::to_string(c), 2 * F * double(r * c), double(r * c),
                  [r, c](Arena& a) {
                    float *x = a.get(r * c, -5, 5), *y = a.get(r * c);
                    return Call([=] { nn_softmax_rows(r, c, x, y); });
                  }});
  }
  {  // CNN max-pool after conv1 at batch 32: (32,26,26,32) -> (32,13,13,32)
    const int N = 32, H = 26, W = 26, C = 32;
    const size_t xin = size_t(N) * H * W * C, yout = size_t(N) * (H / 2) * (W / 2) * C;
    ks.push_back({"maxpool_32x26x26x32", F * double(xin + yout), double(xin), [=](Arena& a) {
                    float *x = a.get(xin), *y = a.get(yout);
                    return Call([=] { nn_maxpool2x2(N, H, W, C, x, y); });
                  }});
    ks.push_back({"maxpool_bwd_32x26x26x32", F * double(2 * xin + 2 * yout), double(xin), [=](Arena& a) {
                    float *x = a.get(xin), *y = a.get(yout), *dy = a.get(yout), *dx = a.get(xin);
                    nn_maxpool2x2(N, H, W, C, x, y);
                    return Call([=] { nn_maxpool2x2_backward(N, H, W, C, x, y, dy, dx); });
                  }});
  }
  {  // the same max-pool keeping the argmax (training), and the backward from it (no read of x)
    const int N = 32, H = 26, W = 26, C = 32;
    const size_t xin = size_t(N) * H * W * C, yout = size_t(N) * (H / 2) * (W / 2) * C;
    ks.push_back({"maxpool_argmax_32x26x26x32", F * double(xin + 2 * yout), double(xin), [=](Arena& a) {
                    float *x = a.get(xin), *y = a.get(yout), *ix = a.get(yout);
                    return Call([=] { nn_maxpool2x2_argmax(N, H, W, C, x, y, ix); });
                  }});
    ks.push_back({"maxpool_bwd_argmax_32x26x26x32", F * double(xin + 2 * yout), double(xin), [=](Arena& a) {
                    float *x = a.get(xin), *y = a.get(yout), *ix = a.get(yout), *dy = a.get(yout), *dx = a.get(xin);
                    nn_maxpool2x2_argmax(N, H, W, C, x, y, ix);
                    return Call([=] { nn_maxpool2x2_backward_argmax(N, H, W, C, ix, dy, dx); });
                  }});
  }
  {  // global average pooling of the CNN's conv2 output at batch 32: (32,11,11,64) -> (32,64)
    const size_t N = 32, HW = 11 * 11, C = 64, xin = N * HW * C, yout = N * C;
    ks.push_back({"global_avgpool_32x11x11x64", F * double(xin + yout), double(xin), [=](Arena& a) {
                    float *x = a.get(xin), *y = a.get(yout);
                    return Call([=] { nn_global_avgpool(N, HW, C, x, y); });
                  }});
    ks.push_back({"global_avgpool_bwd_32x11x11x64", F * double(xin + yout), double(xin), [=](Arena& a) {
                    float *dy = a.get(yout), *dx = a.get(xin);
                    return Call([=] { nn_global_avgpool_backward(N, HW, C, dy, dx); });
                  }});
  }
  {  // Winograd F(4x4,3x3) transforms of the seed CNN's conv2 at batch 32: 288 tiles of 6x6
     // pixels (13x13x32 input, 11x11 output in 3x3 tiles of 4x4), 36 points each
    const size_t T = 288, C = 32, Fo = 64, sv = T * C + 16, sm = T * Fo + 16;
    ks.push_back({"winograd_input_288x32ch", F * double(2 * 36 * T * C), double(36 * T * C), [=](Arena& a) {
                    float *x = a.get(32 * 13 * 13 * C), *z = a.get(C, 0, 0), *v = a.get(36 * sv);
                    std::vector<const float*> p(36 * T);
                    for (size_t t = 0; t < T; t++)
                      for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) {
                          size_t b = t / 9, ty = t % 9 / 3, tx = t % 3, iy = 4 * ty + i, ix = 4 * tx + j;
                          p[t * 36 + i * 6 + j] = iy < 13 && ix < 13 ? x + ((b * 13 + iy) * 13 + ix) * C : z;
                        }
                    return Call([=] {
                      for (size_t t = 0; t < T; t++) nn_winograd_input(C, p.data() + t * 36, v + t * C, sv);
                    });
                  }});
    ks.push_back({"winograd_output_288x64ch", F * double(36 * T * Fo + 16 * T * Fo), double(16 * T * Fo),
                  [=](Arena& a) {
                    float *m = a.get(36 * sm), *y = a.get(32 * 12 * 12 * Fo), *bias = a.get(Fo);
                    std::vector<float*> q(16 * T);
                    for (size_t t = 0; t < T; t++)
                      for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++) {
                          size_t b = t / 9, oy = 4 * (t % 9 / 3) + i, ox = 4 * (t % 3) + j;
                          q[t * 16 + i * 4 + j] = oy < 11 && ox < 11 ? y + ((b * 12 + oy) * 12 + ox) * Fo : nullptr;
                        }
                    return Call([=] {
                      for (size_t t = 0; t < T; t++) nn_winograd_output(Fo, m + t * Fo, sm, bias, 1, q.data() + t * 16);
                    });
                  }});
    ks.push_back({"winograd_dy_288x64ch", F * double(16 * T * Fo + 36 * T * Fo), double(36 * T * Fo), [=](Arena& a) {
                    float *dy = a.get(32 * 12 * 12 * Fo), *u = a.get(36 * sm);
                    std::vector<const float*> g(16 * T);
                    for (size_t t = 0; t < T; t++)
                      for (int i = 0; i < 16; i++) g[t * 16 + i] = dy + (t * 16 + i) % (32 * 144) * Fo;
                    return Call([=] {
                      for (size_t t = 0; t < T; t++) nn_winograd_dy(Fo, g.data() + t * 16, u + t * Fo, sm);
                    });
                  }});
    ks.push_back({"winograd_filter_32x64", F * double(9 * C * Fo + 36 * C * Fo), double(36 * C * Fo), [=](Arena& a) {
                    float *w = a.get(9 * C * Fo), *u = a.get(36 * (C * Fo + 16));
                    return Call([=] {
                      for (size_t ci = 0; ci < C; ci++) {
                        const float* g[9];
                        for (int k = 0; k < 9; k++) g[k] = w + (k * C + ci) * Fo;
                        nn_winograd_filter(Fo, g, u + ci * Fo, C * Fo + 16);
                      }
                    });
                  }});
    ks.push_back({"winograd_wgrad_32x64", F * double(36 * C * Fo + 9 * C * Fo), double(9 * C * Fo), [=](Arena& a) {
                    float *m = a.get(36 * (C * Fo + 16)), *dw = a.get(9 * C * Fo);
                    return Call([=] {
                      for (size_t ci = 0; ci < C; ci++) {
                        float* o[9];
                        for (int k = 0; k < 9; k++) o[k] = dw + (k * C + ci) * Fo;
                        nn_winograd_wgrad(Fo, m + ci * Fo, C * Fo + 16, o);
                      }
                    });
                  }});
  }
  {  // Adam over 100k parameters: reads w g m v, writes w m v
    const size_t P = 100000;
    ks.push_back({"adam_100k", 7 * F * double(P), double(P), [=](Arena& a) {
                    float *w = a.get(P), *g = a.get(P, -1e-2f, 1e-2f), *m = a.get(P, 0, 0), *v = a.get(P, 0, 0);
                    return Call([=] { nn_adam_update(P, w, g, m, v, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0, 10); });
                  }});
  }
  {  // im2col, 3x3 valid conv (conv2 of the seed CNN) on (32,13,13,32): 3872 x 288
    nn_conv_geom g;
    if (nn_conv_geom_init(&g, 32, 13, 13, 32, 3, 3, 1, 0) == NN_OK) {
      const size_t rows = size_t(g.n) * g.oh * g.ow, cols = size_t(g.kh) * g.kw * g.c;
      const size_t xin = size_t(g.n) * g.h * g.w * g.c;
      // bytes: every col element written once and read once (from x, mostly cached)
      ks.push_back({"im2col_3x3_32x13x13x32", 2 * F * double(rows * cols), double(rows * cols), [=](Arena& a) {
                      float *x = a.get(xin), *col = a.get(rows * cols);
                      return Call([=] { nn_im2col(&g, 0, rows, x, col); });
                    }});
    }
  }
  return ks;
}

void AddBaselines() {
  const size_t mib = size_t(1) << 20;
  for (int s : {2, 4, 6}) {
    const size_t bytes = size_t(s) * mib;
    Add("base/memcpy_" + std::to_string(s) + "MiB", -1,
        [bytes](Arena& a) {
          void *src = a.get(bytes / sizeof(float)), *dst = a.raw(bytes);
          return Call([=] { std::memcpy(dst, src, bytes); });
        },
        2.0 * double(bytes), double(bytes / sizeof(float)));
  }
  struct L {
    const char* name;
    void (*fn)(size_t, const float*, float*);
  };
  for (L l : {L{"expf", hb_libm_expf}, L{"tanhf", hb_libm_tanhf}, L{"sigmoid", hb_libm_sigmoid}}) {
    auto fn = l.fn;
    Add(std::string("base/libm_") + l.name + "_1M", -1,
        [fn](Arena& a) {
          float *x = a.get(kN, -5, 5), *y = a.get(kN);
          return Call([=] { fn(kN, x, y); });
        },
        8.0 * double(kN), double(kN));
  }
}

// ---- SGEMM ----------------------------------------------------------------
struct Gemm {
  int ta, tb, m, k, n;
  bool naive;  // add the naive i-k-j row (NN squares <= 512)
};

std::vector<Gemm> GemmShapes() {
  std::vector<Gemm> g;
  for (int s : {64, 128, 256, 512, 1024}) g.push_back({0, 0, s, s, s, s <= 512});
  // Seed-CNN / MLP training shapes at batch 32 (M x K x N), with the
  // transposes the layer uses: forward y = x W (NN), weight gradient
  // dW = x^T dy (TN), input gradient dx = dy W^T (NT).
  g.push_back({0, 0, 32, 784, 64, false});     // dense 784->64 forward
  g.push_back({1, 0, 784, 32, 64, false});     // its dW = x^T dy
  g.push_back({0, 1, 32, 64, 784, false});     // its dx = dy W^T
  g.push_back({0, 0, 3872, 288, 64, false});   // conv2 forward: im2col(3872x288) * W(288x64)
  g.push_back({1, 0, 288, 3872, 64, false});   // conv2 dW = col^T dy
  g.push_back({0, 1, 3872, 64, 288, false});   // conv2 dcol = dy W^T
  g.push_back({0, 0, 21632, 9, 32, false});    // conv1 forward: im2col(21632x9) * W(9x32)
  g.push_back({1, 0, 9, 21632, 32, false});    // conv1 dW = col^T dy
  return g;
}

std::string GemmName(const Gemm& s, const std::string& impl) {
  return std::string("gemm/") + (s.ta ? "T" : "N") + (s.tb ? "T" : "N") + "/" + std::to_string(s.m) + "x" +
         std::to_string(s.k) + "x" + std::to_string(s.n) + "/" + impl;
}

enum GemmImpl { kNnWs, kNnAlloc, kNaive, kOpenblas };

Maker GemmMaker(Gemm s, GemmImpl impl) {
  return [s, impl](Arena& a) {
    const int lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n, ldc = s.n;
    float* A = a.get(size_t(s.ta ? s.k : s.m) * lda);
    float* B = a.get(size_t(s.tb ? s.n : s.k) * ldb);
    float* C = a.get(size_t(s.m) * ldc);
    switch (impl) {
      case kNnWs: {
        void* ws = a.raw(nn_sgemm_ws_size(s.m, s.n, s.k));
        return Call([=] { nn_sgemm_ws(s.ta, s.tb, s.m, s.n, s.k, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, ws); });
      }
      case kNnAlloc:
        return Call([=] { nn_sgemm(s.ta, s.tb, s.m, s.n, s.k, 1.0f, A, lda, B, ldb, 0.0f, C, ldc); });
      case kNaive:
        return Call([=] { hb_naive_sgemm(s.m, s.n, s.k, A, B, C); });
      case kOpenblas:
#ifdef NN_BENCH_OPENBLAS
        return Call([=] {
          cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, s.m, s.n,
                      s.k, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
        });
#else
        break;
#endif
    }
    return Call([] {});
  };
}

double Flops(const Gemm& s) { return 2.0 * s.m * s.n * s.k; }

// ---- int8 GEMM (nn.h section 4.9), at the fp32 rows' NN shapes ------------
std::vector<Gemm> Q8Shapes() {
  std::vector<Gemm> g;
  for (const Gemm& s : GemmShapes())
    if (!s.ta && !s.tb) g.push_back(s);  // the forward products: squares, dense, conv1, conv2
  return g;
}
Maker Q8Maker(Gemm s, nn_backend b) {
  return [s, b](Arena&) {
    std::shared_ptr<hb_q8> q(hb_q8_new(s.m, s.n, s.k, 7), hb_q8_free);
    if (!q) {
      std::fprintf(stderr, "bench: out of memory\n");
      std::exit(1);
    }
    return Call([q, b] { benchmark::DoNotOptimize(hb_q8_run(q.get(), b)); });
  };
}

// ---- the seed CNN's training step -------------------------------------------
// conv 32 3x3 relu, maxpool 2, conv 64 3x3 relu, maxpool 2, flatten, dense 64
// relu, dense 10 softmax; sparse categorical cross-entropy, Adam 1e-3 (as
// examples/fashion_cnn.c).  One nn_train_on_batch of 32 random images with
// random labels per call (the same batch every call: the cost does not
// depend on the values).
const int kCnnBatch = 32;

Maker CnnStepMaker() {
  return [](Arena& a) {
    std::shared_ptr<nn_model> m(nn_model_new(nn_shape3(28, 28, 1)), nn_model_free);
    if (!m) {
      std::fprintf(stderr, "bench: out of memory\n");
      std::exit(1);
    }
    nn_model_seed(m.get(), 1);
    nn_conv2d(m.get(), 32, 3, NN_RELU);
    nn_maxpool2d(m.get(), 2);
    nn_conv2d(m.get(), 64, 3, NN_RELU);
    nn_maxpool2d(m.get(), 2);
    nn_flatten(m.get());
    nn_dense(m.get(), 64, NN_RELU);
    nn_dense(m.get(), 10, NN_SOFTMAX);
    if (nn_compile(m.get(), nn_adam(1e-3f), NN_LOSS_SPARSE_CATEGORICAL_CE) != NN_OK) {
      std::fprintf(stderr, "bench: CNN compile: %s\n", nn_model_error(m.get()));
      std::exit(1);
    }
    float* x = a.get(size_t(kCnnBatch) * 784, 0.0f, 1.0f);
    float* y = a.get(kCnnBatch, 0.0f, 10.0f);
    for (int i = 0; i < kCnnBatch; i++) y[i] = float(int(y[i]));  // class ids 0..9
    return Call([m, x, y] {
      float loss;
      if (nn_train_on_batch(m.get(), x, y, kCnnBatch, &loss, nullptr) != NN_OK) {
        std::fprintf(stderr, "bench: train_on_batch: %s\n", nn_model_error(m.get()));
        std::exit(1);
      }
      benchmark::DoNotOptimize(loss);
    });
  };
}

// thr/ rows: nn_sgemm at every GemmShapes() shape and the CNN step, at 1
// thread and at every core (best backend).  Returns the thread counts.
std::vector<int> AddThreadRows(nn_backend best) {
  nn_set_threads(0);
  const int all = nn_get_threads();
  std::vector<int> counts = {1};
  if (all > 1) counts.push_back(all);
  for (int t : counts) {
    const std::string tn = "threads=" + std::to_string(t);
    for (const Gemm& s : GemmShapes()) {
      Add("thr/" + GemmName(s, tn), best, GemmMaker(s, kNnAlloc), 0, 0, Flops(s), t);
    }
    Add("thr/cnn_step_b" + std::to_string(kCnnBatch) + "/" + tn, best, CnnStepMaker(), 0, kCnnBatch, 0, t);
  }
  return counts;
}

std::string PinnedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return "?";
  std::string r;
  for (int i = 0; i < CPU_SETSIZE; i++)
    if (CPU_ISSET(i, &set)) r += (r.empty() ? "" : ",") + std::to_string(i);
  return r;
}

std::string EnvOr(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string("(unset)");
}

}  // namespace

int main(int argc, char** argv) {
  bool openblas_mode = false, threads_mode = false;
  std::string cmdline;
  std::vector<char*> args;
  for (int i = 0; i < argc; i++) {
    if (i > 0 && std::strcmp(argv[i], "--openblas") == 0) {
      openblas_mode = true;
    } else if (i > 0 && std::strcmp(argv[i], "--threads") == 0) {
      threads_mode = true;
    } else {
      args.push_back(argv[i]);
    }
    cmdline += (i ? " " : "") + std::string(argv[i]);
  }
  int nargs = static_cast<int>(args.size());

  const nn_backend all[] = {NN_BACKEND_SCALAR, NN_BACKEND_AVX2, NN_BACKEND_AVX512};
  std::vector<nn_backend> backends;
  std::string have, missing, selfcheck;
  for (nn_backend b : all) {
    if (nn_backend_available(b)) {
      backends.push_back(b);
      have += (have.empty() ? "" : " ") + std::string(nn_backend_name(b));
    } else {
      missing += (missing.empty() ? "" : " ") + std::string(nn_backend_name(b));
    }
  }
  nn_set_backend(NN_BACKEND_AUTO);
  const std::string autob = nn_backend_name(nn_get_backend());

  benchmark::AddCustomContext("nn_cpu", nn_cpu_description());
  benchmark::AddCustomContext("nn_backends", have);
  benchmark::AddCustomContext("nn_backends_missing", missing.empty() ? "none" : missing);
  benchmark::AddCustomContext("nn_auto_backend", autob);
  benchmark::AddCustomContext("nn_h_id", NN_BENCH_NNH_ID);
  benchmark::AddCustomContext("pinned_cpus", PinnedCpus());
  benchmark::AddCustomContext("nn_cpu_cores", std::to_string(nn_cpu_cores()));
  benchmark::AddCustomContext("command", cmdline);
  benchmark::AddCustomContext("env_OPENBLAS_CORETYPE", EnvOr("OPENBLAS_CORETYPE"));
  benchmark::AddCustomContext("env_OPENBLAS_NUM_THREADS", EnvOr("OPENBLAS_NUM_THREADS"));
  benchmark::AddCustomContext("env_OPENBLAS_L2_SIZE", EnvOr("OPENBLAS_L2_SIZE"));
  benchmark::AddCustomContext("env_NN_BACKEND", EnvOr("NN_BACKEND"));
  benchmark::AddCustomContext("env_NN_THREADS", EnvOr("NN_THREADS"));
#ifdef NN_BENCH_OPENBLAS
  benchmark::AddCustomContext("openblas_linked", "yes");
#else
  benchmark::AddCustomContext("openblas_linked", "no");
#endif

  if (openblas_mode && threads_mode) {
    std::fprintf(stderr, "bench: --openblas and --threads are separate runs\n");
    return 2;
  }
  if (threads_mode) {
    benchmark::AddCustomContext("mode", "threads");
    std::string counts;
    for (int t : AddThreadRows(backends.back())) counts += (counts.empty() ? "" : " ") + std::to_string(t);
    benchmark::AddCustomContext("nn_threads", counts);
    nn_set_backend(NN_BACKEND_AUTO);
  } else if (openblas_mode) {
#ifdef NN_BENCH_OPENBLAS
    benchmark::AddCustomContext("mode", "openblas");
    benchmark::AddCustomContext("openblas_corename", openblas_get_corename());
    benchmark::AddCustomContext("openblas_num_threads", std::to_string(openblas_get_num_threads()));
    benchmark::AddCustomContext("openblas_config", openblas_get_config());
    for (const Gemm& s : GemmShapes()) Add(GemmName(s, "openblas"), -1, GemmMaker(s, kOpenblas), 0, 0, Flops(s));
#else
    std::fprintf(stderr, "bench: --openblas needs a build with -DNN_BENCH_OPENBLAS (make bench BLAS=openblas)\n");
    return 2;
#endif
  } else {
    benchmark::AddCustomContext("mode", "nn");
    nn_set_threads(1);  // every nn row on one thread (nn_sgemm, the -alloc rows, is threaded)
    benchmark::AddCustomContext("nn_threads", std::to_string(nn_get_threads()));
    // SGEMM self-check per backend first: a fast but wrong kernel must not
    // produce a table that looks good.
    for (nn_backend b : backends) {
      char msg[256];
      if (hb_sgemm_selfcheck(b, msg, sizeof msg) != 0) {
        std::fprintf(stderr, "bench: WARNING: nn_sgemm_ws self-check FAILED on %s: %s\n", nn_backend_name(b), msg);
        selfcheck += std::string(nn_backend_name(b)) + ": FAIL " + msg + "; ";
      } else {
        selfcheck += std::string(nn_backend_name(b)) + ": ok; ";
      }
    }
    nn_set_backend(NN_BACKEND_AUTO);
    benchmark::AddCustomContext("nn_sgemm_selfcheck", selfcheck);

    for (const Kern& k : Kernels())
      for (nn_backend b : backends) Add("kern/" + k.name + "/" + nn_backend_name(b), b, k.make, k.bytes, k.items);
    AddBaselines();
    // FMA peak of this core per ISA, to calibrate the SGEMM table
    for (nn_backend b : backends) {
      const int lanes = hb_fma_peak_lanes(b);
      const long iters = 1 << 20;
      if (lanes > 0)
        Add(std::string("peak/fma/") + nn_backend_name(b), -1,
            [b](Arena&) { return Call([b] { benchmark::DoNotOptimize(hb_fma_peak_run(b, iters)); }); }, 0, 0,
            2.0 * 12 * lanes * double(iters));
    }
    const nn_backend best = backends.back();
    for (const Gemm& s : GemmShapes()) {
      for (nn_backend b : backends) Add(GemmName(s, nn_backend_name(b)), b, GemmMaker(s, kNnWs), 0, 0, Flops(s));
      if (s.naive) Add(GemmName(s, "naive"), -1, GemmMaker(s, kNaive), 0, 0, Flops(s));
      // the allocating call, on the best backend, where its overhead shows most
      if ((s.m == 64 && s.k == 64 && s.n == 64) || (s.m == 32 && s.k == 784 && !s.ta && !s.tb) ||
          (s.m == 3872 && s.k == 288))
        Add(GemmName(s, std::string(nn_backend_name(best)) + "-alloc"), best, GemmMaker(s, kNnAlloc), 0, 0, Flops(s));
    }
    for (const Gemm& s : Q8Shapes())
      for (nn_backend b : backends)
        Add("q8gemm/" + std::to_string(s.m) + "x" + std::to_string(s.k) + "x" + std::to_string(s.n) + "/" +
                nn_backend_name(b),
            b, Q8Maker(s, b), 0, 0, Flops(s));
  }

  benchmark::Initialize(&nargs, args.data());
  if (benchmark::ReportUnrecognizedArguments(nargs, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
