/* bench/amdahl.c - where the time of a training step goes, and what more
 * cores would give (README "Threads: scaling beyond this machine").
 *
 *   make amdahl, i.e.
 *   cc -O2 -o build/region_cost bench/amdahl.c -lm
 *   cc -O2 -DNN__PAR_STATS -o build/amdahl bench/amdahl.c -lm
 *   NN_REGION_US=$(build/region_cost) build/amdahl
 *
 * Built with NN__PAR_STATS, nn.h runs every parallel region on the calling
 * thread, split as it would be for 64 workers, and times each.  For each
 * workload (the seed CNN's training step and its inference at batch 32, the
 * MLP's step, the char LSTM's step: random data, the examples' shapes) it
 * prints the time of a step on one core, the serial part (outside regions),
 * the regions per step, and a projection for N cores:
 *     T(N) = serial + sum over regions of t_r * ceil(tasks_r / N) / tasks_r
 *            + regions * c(N)
 * (each region's tasks equal; a region cannot use more cores than it has
 * tasks: the batch-size limit), with c(N) the cost of starting and ending a
 * region, measured here for 2 threads (the second part of the output, a
 * normal pool) and assumed to grow as log2(N) beyond.  Memory bandwidth and
 * the caches of other cores are not modelled: the projection is an upper
 * bound. */
#define NN_IMPLEMENTATION
#include "../nn.h"
#include <stdio.h>
#include <stdlib.h>

#ifndef NN__PAR_STATS
/* the start and end of a region: two tasks of ~5 us on the pool with every
 * core, minus one task alone (empty tasks would measure nothing: the caller
 * takes both before a worker joins); microseconds, median of 9 runs */
static volatile float sink;
static void work(void *ctx, int t, int w) {
    float acc = 0.0f;
    int i;
    (void)ctx, (void)t, (void)w;
    for (i = 0; i < 5000; i++) acc = acc * 0.999f + 1.0f; /* a dependent chain: ~4 ns a step */
    sink = acc;
}
static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
/* a cache line passed back and forth between two threads (on the two
 * cores, each spinning): the round trip tells how far apart the cores are
 * (on this VM 80-100 ns, or 400+ ns when the host runs the two vCPUs on
 * distant cores: then small regions lose) */
static int pp_flag;
static void *pp_other(void *arg) {
    int i;
    (void)arg;
    for (i = 0; i < 100000; i++) {
        while (__atomic_load_n(&pp_flag, __ATOMIC_ACQUIRE) != 1) continue;
        __atomic_store_n(&pp_flag, 0, __ATOMIC_RELEASE);
    }
    return NULL;
}
static double round_trip_ns(void) {
    pthread_t t;
    double t0;
    int i;
    if (pthread_create(&t, NULL, pp_other, NULL) != 0) return 0;
    t0 = nn_time_seconds();
    for (i = 0; i < 100000; i++) {
        __atomic_store_n(&pp_flag, 1, __ATOMIC_RELEASE);
        while (__atomic_load_n(&pp_flag, __ATOMIC_ACQUIRE) != 0) continue;
    }
    t0 = nn_time_seconds() - t0;
    pthread_join(t, NULL);
    return t0 / 100000 * 1e9;
}
int main(void) {
    double r[9], one[9];
    int i, k;
    fprintf(stderr, "cache-line round trip between two threads: %.0f ns\n", round_trip_ns());
    nn_set_threads(0);
    for (k = 0; k < 9; k++) {
        double t0 = nn_time_seconds();
        for (i = 0; i < 2000; i++) work(NULL, 0, 0);
        one[k] = (nn_time_seconds() - t0) / 2000 * 1e6;
        t0 = nn_time_seconds();
        for (i = 0; i < 2000; i++) nn__par(2, work, NULL, 2);
        r[k] = (nn_time_seconds() - t0) / 2000 * 1e6;
    }
    qsort(r, 9, sizeof r[0], cmpd);
    qsort(one, 9, sizeof one[0], cmpd);
    printf("%.2f\n", r[4] - one[4] > 0 ? r[4] - one[4] : 0.0);
    return 0;
}
#else
static float *rnd(nn_rng *r, size_t n, int ints) {
    float *v = (float *)malloc(n * sizeof(float));
    size_t i;
    for (i = 0; v && i < n; i++) v[i] = ints ? (float)nn_rng_below(r, (uint32_t)ints) : nn_rng_uniform(r);
    return v;
}

static void stats_reset(void) { memset(&nn__stats, 0, sizeof nn__stats); }

typedef struct wl {
    const char *name;
    double t1, serial, regions, on[NN__STAT_N];
} wl;

static void report(wl *w, double c2) {
    static const int show[] = {2, 4, 8, 16, 64};
    int i, j;
    printf("%-22s %9.3f %7.1f%% %8.0f", w->name, w->t1 * 1e3, 100.0 * w->serial / w->t1, w->regions);
    for (i = 0; i < 5; i++) {
        double lg = 0, tN;
        for (j = 0; j < NN__STAT_N && nn__stat_workers[j] != show[i]; j++) continue;
        for (lg = 0; (1 << (int)(lg + 1)) <= show[i]; lg++) continue;
        tN = w->serial + w->on[j] + w->regions * c2 * lg;
        printf("  %5.2fx", w->t1 / tN);
    }
    printf("\n");
}

static void measure(wl *w, nn_model *m, const float *x, const float *y, int B, int steps, int infer) {
    int s, i;
    double t0;
    for (s = 0; s < 3; s++) /* warm-up: plans the arena */
        if (infer) nn_forward(m, x, B, 0);
        else nn_train_on_batch(m, x, y, B, NULL, NULL);
    stats_reset();
    t0 = nn_time_seconds();
    for (s = 0; s < steps; s++)
        if (infer) nn_forward(m, x, B, 0);
        else nn_train_on_batch(m, x, y, B, NULL, NULL);
    w->t1 = (nn_time_seconds() - t0) / steps;
    w->serial = w->t1 - nn__stats.seconds / steps;
    w->regions = (double)nn__stats.regions / steps;
    for (i = 0; i < NN__STAT_N; i++) w->on[i] = nn__stats.on[i] / steps;
}

int main(void) {
    nn_rng r;
    wl w[4];
    nn_model *m;
    float *x, *y;
    double c2;
    int i;
    nn_rng_seed(&r, 1);
    printf("CPU: %s\n", nn_cpu_description());
    printf("backend %s\n", nn_backend_name(nn_get_backend()));
    nn_set_threads(64); /* split every region as for 64 workers */

    memset(w, 0, sizeof w);
    /* the seed CNN */
    m = nn_model_new(nn_shape3(28, 28, 1));
    nn_conv2d(m, 32, 3, NN_RELU);
    nn_maxpool2d(m, 2);
    nn_conv2d(m, 64, 3, NN_RELU);
    nn_maxpool2d(m, 2);
    nn_flatten(m);
    nn_dense(m, 64, NN_RELU);
    nn_dense(m, 10, NN_SOFTMAX);
    nn_compile(m, nn_adam(1e-3f), NN_LOSS_SPARSE_CATEGORICAL_CE);
    x = rnd(&r, 32 * 784, 0);
    y = rnd(&r, 32, 10);
    w[0].name = "CNN train step, B=32";
    measure(&w[0], m, x, y, 32, 200, 0);
    w[1].name = "CNN inference, B=32";
    measure(&w[1], m, x, y, 32, 400, 1);
    nn_model_free(m);
    free(x);
    free(y);
    /* the MLP */
    m = nn_model_new(nn_shape1(784));
    nn_dense(m, 64, NN_RELU);
    nn_dense(m, 64, NN_RELU);
    nn_dense(m, 10, NN_SOFTMAX);
    nn_compile(m, nn_adam(1e-3f), NN_LOSS_SPARSE_CATEGORICAL_CE);
    x = rnd(&r, 32 * 784, 0);
    y = rnd(&r, 32, 10);
    w[2].name = "MLP train step, B=32";
    measure(&w[2], m, x, y, 32, 3000, 0);
    nn_model_free(m);
    free(x);
    free(y);
    /* the char LSTM (char_rnn defaults: 86 symbols, embedding 64, LSTM 128, 64 steps) */
    m = nn_model_new(nn_shape1(64));
    nn_embedding(m, 86, 64);
    nn_lstm(m, 128, 1);
    nn_dense(m, 86, NN_SOFTMAX);
    nn_compile(m, nn_adam(2e-3f), NN_LOSS_SPARSE_CATEGORICAL_CE);
    x = rnd(&r, 32 * 64, 86);
    y = rnd(&r, 32 * 64, 86);
    w[3].name = "LSTM train step, B=32";
    measure(&w[3], m, x, y, 32, 40, 0);
    nn_model_free(m);
    free(x);
    free(y);

    /* the cost of a region on the live pool: measured by the build without
     * NN__PAR_STATS (make amdahl passes it on) */
    {
        const char *e = getenv("NN_REGION_US");
        c2 = e ? atof(e) * 1e-6 : 1e-6;
    }
    printf("threads: %d cores here; region start + end with all of them: %.2f us\n", nn_cpu_cores(),
           c2 * 1e6);
    printf("\nprojection: T(N) = serial + regions split over N cores (no region beyond its task count)"
           " + regions x %.2f us x log2 N\n\n", c2 * 1e6);
    printf("%-22s %9s %8s %8s  %6s  %6s  %6s  %6s  %6s\n", "workload", "1 core ms", "serial",
           "regions", "2", "4", "8", "16", "64");
    for (i = 0; i < 4; i++) report(&w[i], c2);
    return 0;
}
#endif
