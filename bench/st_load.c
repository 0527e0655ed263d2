/* bench/st_load.c - how long nn_load_safetensors takes on a 100 MB file
 * against reading the same file as cat does (read() into a 128 KiB
 * buffer), page cache warm.  Run by bench/st_load.sh (which also times
 * cat itself and prints the CPU):
 *   cc -O2 -I. -o build/st_load bench/st_load.c -lm
 *   build/st_load build/st_100mb.safetensors [reps]
 * The model: dense 1024 -> 4096 -> 4096 -> 1024 (25.2 M parameters,
 * 100.7 MB of F32); its weights are PyTorch's (out, in), transposed into
 * nn.h's (in, out) on the way in.  Also nn_load (which builds and compiles
 * the model first: 4 buffers of 100 MB) and nn_save_safetensors. */
#define NN_IMPLEMENTATION
#include "nn.h"

#include <stdio.h>
#include <stdlib.h>
#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <unistd.h>
#endif

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
/* what cat does: read() into one 128 KiB buffer until the end */
static double read_like_cat(const char *path) {
    static char buf[131072];
    double t = nn_time_seconds();
#if defined(__unix__) || defined(__APPLE__)
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1.0;
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
#else
    FILE *f = fopen(path, "rb");
    if (!f) return -1.0;
    while (fread(buf, 1, sizeof buf, f) > 0) {
    }
    fclose(f);
#endif
    return nn_time_seconds() - t;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "build/st_100mb.safetensors";
    int reps = argc > 2 ? atoi(argv[2]) : 11, r;
    nn_model *m = nn_model_new(nn_shape1(1024)), *m2 = NULL;
    double *tl = (double *)malloc(sizeof(double) * (size_t)reps),
           *tc = (double *)malloc(sizeof(double) * (size_t)reps), ts, tn = 1e9;
    nn_status s;
    nn_dense(m, 4096, NN_RELU);
    nn_dense(m, 4096, NN_RELU);
    nn_dense(m, 1024, NN_LINEAR);
    if (nn_compile(m, nn_sgd(0.1f), NN_LOSS_MSE) != NN_OK) return 1;
    ts = nn_time_seconds();
    s = nn_save_safetensors(m, path);
    ts = nn_time_seconds() - ts;
    if (s != NN_OK) {
        fprintf(stderr, "st_load: cannot write %s: %s\n", path, nn_strerror(s));
        return 1;
    }
    read_like_cat(path); /* warm the page cache */
    /* interleaved, so that both see the same machine */
    for (r = 0; r < reps; r++) {
        tc[r] = read_like_cat(path);
        tl[r] = nn_time_seconds();
        s = nn_load_safetensors(m, path);
        tl[r] = nn_time_seconds() - tl[r];
        if (s != NN_OK) {
            fprintf(stderr, "st_load: %s\n", nn_model_error(m));
            return 1;
        }
    }
    for (r = 0; r < 3; r++) {
        double t = nn_time_seconds();
        if (nn_load(&m2, path) != NN_OK) return 1;
        t = nn_time_seconds() - t;
        if (t < tn) tn = t;
        nn_model_free(m2);
    }
    printf("file: %s, %.1f MB, %lu parameters; cpu: %s\n", path, 100.7, (unsigned long)nn_model_num_params(m),
           nn_cpu_description());
    printf("| what | median of %d | ratio |\n|---|---|---|\n", reps);
    printf("| read() like cat, 128 KiB | %.1f ms | 1.00 |\n", median(tc, reps) * 1e3);
    printf("| nn_load_safetensors (into the compiled model) | %.1f ms | %.2f |\n", median(tl, reps) * 1e3,
           median(tl, reps) / median(tc, reps));
    printf("| nn_load (builds, compiles, loads; best of 3) | %.1f ms | %.2f |\n", tn * 1e3, tn / median(tc, reps));
    printf("| nn_save_safetensors (once, cold) | %.1f ms | |\n", ts * 1e3);
    nn_model_free(m);
    free(tl);
    free(tc);
    return 0;
}
