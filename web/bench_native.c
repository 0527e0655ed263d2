/* bench_native.c - the page's benchmark rows (web/app.c) in a native build, for the
 * browser-against-native ratio of the README:
 *
 *   cc -O2 -o build/web_bench_native web/bench_native.c -lm
 *   NN_BACKEND=avx2 taskset -c 0 build/web_bench_native
 *
 * One thread, as in the page's worker; NN_BACKEND picks the kernels (default: the
 * best the CPU has).  Each figure is the best run within its time budget, as the
 * page's table shows it. */
#include "app.c"

int main(void) {
    double s;
    nn_set_threads(1);
    printf("backend %s, 1 thread, on %s\n", nn_backend_name(nn_get_backend()), nn_cpu_description());
    s = app_bench_sgemm(256, 1.0);
    printf("sgemm256     %8.2f GFLOP/s\n", 2.0 * 256 * 256 * 256 / s / 1e9);
    s = app_bench_sgemm(512, 1.0);
    printf("sgemm512     %8.2f GFLOP/s\n", 2.0 * 512 * 512 * 512 / s / 1e9);
    printf("cnn_step     %8.3f ms (batch 32)\n", 1e3 * app_bench_model(APP_CNN, 0, 2.0));
    printf("cnn_predict  %8.3f ms (one image)\n", 1e3 * app_bench_model(APP_CNN, 1, 1.0));
    printf("mlp_step     %8.3f ms (batch 32)\n", 1e3 * app_bench_model(APP_MLP, 0, 1.0));
    return 0;
}
