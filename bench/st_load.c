/* bench/st_load.c - how long nn_load_safetensors takes on a 100 MB file
 * against reading the same file as cat does (read() into a 128 KiB
 * buffer), page cache warm.  Run by bench/st_load.sh (which also times
 * cat itself and prints the CPU):
 *   cc -O2 -I. -o build/st_load bench/st_load.c -lm
 *   build/st_load [DIR [reps]]      (files written into DIR, default build)
 * Two models of 25.2 M F32 parameters (100.7 MB): dense 1024 -> 4096 ->
 * 4096 -> 1024, whose weights are PyTorch's (out, in), nn.h's order since
 * 0.4.0 (0.3.0 transposed them on the way in: 3.2x cat); and an embedding
 * table.  Both are read straight into the model.  Also nn_load (which builds and
 * compiles the model first) and nn_save_safetensors. */
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

/* one file: write it, then interleave reading as cat does and loading */
static void one(const char *what, nn_model *m, const char *path, int reps) {
    double *tl = (double *)malloc(sizeof(double) * (size_t)reps),
           *tc = (double *)malloc(sizeof(double) * (size_t)reps), ts, tn = 1e9;
    nn_model *m2 = NULL;
    nn_status s;
    int r;
    ts = nn_time_seconds();
    s = nn_save_safetensors(m, path);
    ts = nn_time_seconds() - ts;
    if (s != NN_OK) {
        fprintf(stderr, "st_load: cannot write %s: %s\n", path, nn_strerror(s));
        exit(1);
    }
    read_like_cat(path); /* warm the page cache */
    for (r = 0; r < reps; r++) {
        tc[r] = read_like_cat(path);
        tl[r] = nn_time_seconds();
        s = nn_load_safetensors(m, path);
        tl[r] = nn_time_seconds() - tl[r];
        if (s != NN_OK) {
            fprintf(stderr, "st_load: %s\n", nn_model_error(m));
            exit(1);
        }
    }
    for (r = 0; r < 3; r++) {
        double t = nn_time_seconds();
        if (nn_load(&m2, path) != NN_OK) exit(1);
        t = nn_time_seconds() - t;
        if (t < tn) tn = t;
        nn_model_free(m2);
    }
    printf("| %s | %.1f ms | %.1f ms | **%.2f** | %.1f ms (%.2f) | %.0f ms |\n", what, median(tc, reps) * 1e3,
           median(tl, reps) * 1e3, median(tl, reps) / median(tc, reps), tn * 1e3, tn / median(tc, reps), ts * 1e3);
    free(tl);
    free(tc);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "build";
    int reps = argc > 2 ? atoi(argv[2]) : 11;
    char p1[512], p2[512];
    nn_model *d = nn_model_new(nn_shape1(1024)), *e = nn_model_new(nn_shape1(4));
    nn_dense(d, 4096, NN_RELU);
    nn_dense(d, 4096, NN_RELU);
    nn_dense(d, 1024, NN_LINEAR);
    nn_embedding(e, 25000, 1007); /* 25.2 M floats, in nn.h's own order */
    if (nn_compile(d, nn_sgd(0.1f), NN_LOSS_MSE) != NN_OK || nn_compile(e, nn_sgd(0.1f), NN_LOSS_MSE) != NN_OK)
        return 1;
    snprintf(p1, sizeof p1, "%s/st_100mb_dense.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/st_100mb_embedding.safetensors", dir);
    printf("cpu: %s; threads %d\n", nn_cpu_description(), nn_get_threads());
    printf("| 100.7 MB file | read() as cat (median of %d) | nn_load_safetensors | ratio | nn_load (best of 3) | "
           "nn_save_safetensors |\n|---|---|---|---|---|---|\n", reps);
    one("MLP 1024-4096-4096-1024 (dense (out, in): read in place)", d, p1, reps);
    one("embedding 25000 x 1007 (read in place)", e, p2, reps);
    nn_model_free(d);
    nn_model_free(e);
    return 0;
}
