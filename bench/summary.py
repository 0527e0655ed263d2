#!/usr/bin/python3
"""Print compact markdown tables from bench/bench.cc's Google Benchmark JSON.

usage: bench/summary.py [--make-cmd CMD] NN.json [THREADS.json] [OPENBLAS_BEST.json OPENBLAS_HASWELL.json ...]

NN.json is the run without --openblas; THREADS.json the `--threads` process
(thr/ rows: 1 thread vs every core); each OpenBLAS file is one `--openblas`
process (its context says which OPENBLAS_CORETYPE it ran under).  Uses the
median aggregate (run with --benchmark_repetitions=N
--benchmark_report_aggregates_only=true); falls back to single runs.
Plain /usr/bin/python3, standard library only.
"""
import json
import sys

BACKENDS = ["scalar", "avx2", "avx512"]
# elementwise kernels: memcpy baseline that moves the same bytes (see bench.cc)
MEMCPY_FOR = {
    "vadd_1M": "memcpy_6MiB", "vmul_1M": "memcpy_6MiB", "vaxpy_1M": "memcpy_6MiB",
    "vrelu_1M": "memcpy_4MiB", "vexp_1M": "memcpy_4MiB", "vsigmoid_1M": "memcpy_4MiB",
    "vtanh_1M": "memcpy_4MiB", "vdot_1M": "memcpy_4MiB", "vsum_1M": "memcpy_2MiB",
}
LIBM_FOR = {"vexp_1M": "libm_expf_1M", "vsigmoid_1M": "libm_sigmoid_1M", "vtanh_1M": "libm_tanhf_1M"}
MEMCPY_TARGET, LIBM_TARGET = 1.5, 4.0
GEMM_USE = {
    "NN/32x784x64": "dense 784-64 fwd", "TN/784x32x64": "dense 784-64 dW", "NT/32x64x784": "dense 784-64 dx",
    "NN/3872x288x64": "conv2 fwd", "TN/288x3872x64": "conv2 dW", "NT/3872x64x288": "conv2 dcol",
    "NN/21632x9x32": "conv1 fwd", "TN/9x21632x32": "conv1 dW",
}
NOISY_CV, NOISY_WALL = 0.10, 1.10  # flag rows: cv > 10 % or real time > 1.1 x CPU time


def load(path):
    with open(path) as f:
        text = f.read()
    if not text.strip():  # a process whose --benchmark_filter matched no row writes nothing
        return {}, {}
    d = json.loads(text)
    rows, cvs = {}, {}
    for b in d.get("benchmarks", []):
        name = b.get("run_name", b["name"])
        if name.endswith("/real_time"):
            name = name[: -len("/real_time")]
        if name.endswith("/process_time"):  # thr/ rows: CPU time of every thread
            name = name[: -len("/process_time")]
        agg = b.get("aggregate_name")
        if agg == "cv":
            cvs[name] = b.get("real_time", 0.0)
        if agg not in (None, "median") or b.get("error_occurred"):
            continue
        if agg is None and name in rows and rows[name].get("_median"):
            continue
        r = dict(b)
        r["_median"] = agg == "median"
        r["_reps"] = b.get("repetitions", 1) if agg else 1
        rows[name] = r
    for name, cv in cvs.items():
        if name in rows:
            rows[name]["_cv"] = cv
    order = sorted(rows, key=lambda n: (rows[n].get("family_index", 0), rows[n].get("per_family_instance_index", 0)))
    return d.get("context", {}), {n: rows[n] for n in order}


def seconds(r):
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[r.get("time_unit", "ns")]
    return r["real_time"] * scale


def noisy(r):
    cpu = r.get("cpu_time", 0) or 0
    if "/process_time" in r.get("run_name", r.get("name", "")):
        cpu = 0  # the process's CPU time (every worker): only the cv tells
    return r.get("_cv", 0) > NOISY_CV or (cpu > 0 and r["real_time"] > NOISY_WALL * cpu)


def ftime(s):
    if s >= 1.0:
        return "%.2f s" % s
    if s >= 1e-3:
        return "%.3g ms" % (s * 1e3)
    if s >= 1e-6:
        return "%.3g µs" % (s * 1e6)
    return "%.3g ns" % (s * 1e9)


def fnum(x, digits=3):
    return ("%." + str(digits) + "g") % x


def run_command(ctx):
    """Rebuild the command from what the process saw (env, affinity, argv)."""
    unset, env = [], []
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "NN_BACKEND"):
        v = ctx.get("env_" + var)
        if v is None:
            continue
        if var.startswith("OPENBLAS") and ctx.get("mode") != "openblas":
            # the nn run never calls OpenBLAS: only its thread count matters
            if var != "OPENBLAS_NUM_THREADS" or ctx.get("openblas_linked") != "yes":
                continue
        if v == "(unset)":
            if var.startswith("OPENBLAS"):
                unset.append("-u " + var)
        else:
            env.append("%s=%s" % (var, v))
    env = unset + env  # env(1) takes its options before the assignments
    pre = ("env " + " ".join(env) + " ") if env else ""
    cpus = ctx.get("pinned_cpus")
    if cpus and cpus != "?":
        pre += "taskset -c %s " % cpus
    return pre + ctx.get("command", "?")


def kernel_table(rows):
    kernels = []
    for name in rows:
        p = name.split("/")
        if p[0] == "kern" and len(p) == 3 and p[1] not in kernels:
            kernels.append(p[1])
    out = ["| kernel | scalar | avx2 | avx512 | SIMD / scalar (avx2, avx512) "
           "| time / memcpy of equal bytes (avx2, avx512; target ≤ %.1f) "
           "| elem/s vs libm (avx2, avx512; target ≥ %g×) |" % (MEMCPY_TARGET, LIBM_TARGET),
           "|---|---|---|---|---|---|---|"]
    flagged = False
    for k in kernels:
        cells, t = [], {}
        for be in BACKENDS:
            r = rows.get("kern/%s/%s" % (k, be))
            if not r:
                cells.append("n/a")
                continue
            t[be] = seconds(r)
            mark = ""
            if noisy(r):
                mark, flagged = " †", True
            bps = r.get("bytes_per_second")
            cells.append("%s · %s GB/s%s" % (ftime(t[be]), fnum(bps / 1e9), mark) if bps else ftime(t[be]) + mark)
        simd = [be for be in ("avx2", "avx512") if be in t]
        sp = ", ".join("%.1f×" % (t["scalar"] / t[be]) for be in simd) if "scalar" in t and simd else "—"
        mc = "—"
        if k in MEMCPY_FOR and ("base/" + MEMCPY_FOR[k]) in rows:
            tm = seconds(rows["base/" + MEMCPY_FOR[k]])
            parts = []
            for be in simd:
                ratio = t[be] / tm
                parts.append("%.2f %s" % (ratio, "✓" if ratio <= MEMCPY_TARGET else "✗"))
            mc = ", ".join(parts) + " (%s)" % MEMCPY_FOR[k].replace("_", " ")
        lm = "—"
        if k in LIBM_FOR and ("base/" + LIBM_FOR[k]) in rows:
            tl = seconds(rows["base/" + LIBM_FOR[k]])
            parts = []
            for be in simd:
                ratio = tl / t[be]
                parts.append("%.1f× %s" % (ratio, "✓" if ratio >= LIBM_TARGET else "✗"))
            lm = ", ".join(parts)
        out.append("| %s | %s | %s | %s | %s |" % (k, " | ".join(cells), sp, mc, lm))
    base = [n for n in rows if n.startswith("base/")]
    if base:
        out.append("")
        out.append("| baseline (C, -O2) | time | throughput |")
        out.append("|---|---|---|")
        for n in base:
            r = rows[n]
            mark = ""
            if noisy(r):
                mark, flagged = " †", True
            if "memcpy" in n:
                thr = "%s GB/s moved (read + write)" % fnum(r["bytes_per_second"] / 1e9)
            else:
                thr = "%s Gelem/s" % fnum(r["items_per_second"] / 1e9)
            out.append("| %s | %s%s | %s |" % (n[5:], ftime(seconds(r)), mark, thr))
    return out, flagged


def gflops(r):
    if not r:
        return None
    f = r.get("FLOPS")
    return f / 1e9 if f else None


def q8_table(rows):
    """int8 GEMM rows (q8gemm/MxKxN/backend) beside the fp32 NN rows at the same shape."""
    shapes, backs = [], []
    for name in rows:
        p = name.split("/")
        if p[0] == "q8gemm" and len(p) == 3:
            if p[1] not in shapes:
                shapes.append(p[1])
            if p[2] not in backs:
                backs.append(p[2])
    if not shapes:
        return []
    flagged = False

    def cell(r):
        nonlocal flagged
        g = gflops(r)
        if g is None:
            return "—", None
        if noisy(r):
            flagged = True
            return "%.0f †" % g, g
        return "%.0f" % g, g

    out = ["| M x K x N | " + " | ".join("int8 %s" % b for b in backs) + " | fp32 %s | int8 / fp32 (%s) |" % (
        backs[-1], backs[-1]), "|---" * (len(backs) + 3) + "|"]
    for shp in shapes:
        cells, last = [], None
        for b in backs:
            c, last = cell(rows.get("q8gemm/%s/%s" % (shp, b)))
            cells.append(c)
        fc, fg = cell(rows.get("gemm/NN/%s/%s" % (shp, backs[-1])))
        ratio = "%.2f×" % (last / fg) if last and fg else "—"
        out.append("| %s | %s | %s | %s |" % (shp, " | ".join(cells), fc, ratio))
    return out + ([""] if not flagged else ["", "† noisy: rerun before quoting."])


def gemm_table(rows, ob_best, ob_hsw, best_name, hsw_name):
    shapes = []
    for name in rows:
        p = name.split("/")
        if p[0] == "gemm" and len(p) == 4 and (p[1], p[2]) not in shapes:
            shapes.append((p[1], p[2]))
    for obrows in (ob_best, ob_hsw):
        for name in obrows:
            p = name.split("/")
            if p[0] == "gemm" and len(p) == 4 and (p[1], p[2]) not in shapes:
                shapes.append((p[1], p[2]))
    flagged = False

    def cell(r):
        nonlocal flagged
        g = gflops(r)
        if g is None:
            return "—"
        if noisy(r):
            flagged = True
            return "%.1f †" % g
        return "%.1f" % g

    def ratio(a, b):
        ga, gb = gflops(a), gflops(b)
        return "%.2f" % (ga / gb) if ga and gb else "—"

    cols = ["M x K x N", "op", "use", "scalar", "avx2", "avx512", "naive ikj"]
    if ob_best:
        cols.append("OpenBLAS best (%s)" % best_name)
    if ob_hsw:
        cols.append("OpenBLAS %s" % hsw_name)
    if ob_best:
        cols.append("avx512 / OB best")
    if ob_hsw:
        cols.append("avx2 / OB %s" % hsw_name)
    cols.append("scalar / naive")
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for tt, shp in shapes:
        key = "gemm/%s/%s/" % (tt, shp)
        r = {be: rows.get(key + be) for be in BACKENDS + ["naive"]}
        ob = ob_best.get(key + "openblas")
        oh = ob_hsw.get(key + "openblas")
        c = [shp, tt, GEMM_USE.get("%s/%s" % (tt, shp), "square" if len(set(shp.split("x"))) == 1 else ""),
             cell(r["scalar"]), cell(r["avx2"]), cell(r["avx512"]), cell(r["naive"])]
        if ob_best:
            c.append(cell(ob))
        if ob_hsw:
            c.append(cell(oh))
        if ob_best:
            c.append(ratio(r["avx512"], ob))
        if ob_hsw:
            c.append(ratio(r["avx2"], oh))
        c.append(ratio(r["scalar"], r["naive"]))
        out.append("| " + " | ".join(c) + " |")
    notes = []
    for name in rows:
        p = name.split("/")
        if p[0] == "gemm" and len(p) == 4 and p[3].endswith("-alloc"):
            be = p[3][: -len("-alloc")]
            ws = rows.get("/".join(p[:3] + [be]))
            if ws:
                ta, tw = seconds(rows[name]), seconds(ws)
                notes.append("%s %s: %s vs %s (%+.1f %%)" % (p[1], p[2], ftime(ta), ftime(tw), 100 * (ta / tw - 1)))
    if notes:
        be = [n.split("/")[3][:-6] for n in rows if n.startswith("gemm/") and n.endswith("-alloc")][0]
        out.append("")
        out.append("Allocating nn_sgemm vs nn_sgemm_ws on %s: " % be + "; ".join(notes) + ".")
    return out, flagged


def threads_table(rows, ctx):
    """thr/ rows: nn_sgemm and the CNN step at each thread count of the --threads run."""
    counts = ctx.get("nn_threads", "1").split()
    keys = []
    for name in rows:
        p = name.split("/")
        if p[0] == "thr" and p[-1].startswith("threads=") and "/".join(p[1:-1]) not in keys:
            keys.append("/".join(p[1:-1]))
    flagged = False
    cols = ["row", "use"] + ["threads=%s" % t for t in counts]
    if len(counts) > 1:
        cols += ["speed-up threads=%s / threads=1" % counts[-1], "cores busy at threads=%s (CPU / wall)" % counts[-1]]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for key in keys:
        p = key.split("/")
        gemm = p[0] == "gemm"
        if gemm:
            label, use = "nn_sgemm %s %s" % (p[1], p[2]), GEMM_USE.get("%s/%s" % (p[1], p[2]), "square")
        else:
            label, use = key, "seed CNN: forward, backward, Adam (nn_train_on_batch)"
        c, t = [label, use], {}
        for n in counts:
            r = rows.get("thr/%s/threads=%s" % (key, n))
            if not r:
                c.append("—")
                continue
            t[n] = r
            mark = ""
            if noisy(r):
                mark, flagged = " †", True
            if gemm:
                c.append("%.1f GFLOP/s%s" % (gflops(r) or 0, mark))
            else:
                ips = r.get("items_per_second")
                c.append("%s%s" % (ftime(seconds(r)), " · %.0f img/s" % ips if ips else "") + mark)
        if len(counts) > 1:
            a, b = t.get(counts[0]), t.get(counts[-1])
            c.append("%.2f×" % (seconds(a) / seconds(b)) if a and b else "—")
            c.append("%.2f" % (b["cpu_time"] / b["real_time"]) if b and b.get("real_time") else "—")
        out.append("| " + " | ".join(c) + " |")
    return out, flagged


def main(argv):
    make_cmd = None
    files = []
    i = 1
    while i < len(argv):
        if argv[i] == "--make-cmd":
            make_cmd = argv[i + 1]
            i += 2
        else:
            files.append(argv[i])
            i += 1
    if not files:
        sys.stderr.write(__doc__)
        return 2
    ctx, rows = load(files[0])
    ob_best, ob_hsw, best_name, hsw_name, ob_ctx = {}, {}, "not run", "Haswell", []
    thr_ctx, thr_rows = None, {}
    for path in files[1:]:
        c, r = load(path)
        if c.get("mode") == "threads":
            thr_ctx, thr_rows = c, r
            continue
        if c.get("mode") != "openblas":
            rows.update(r)
            continue
        ob_ctx.append(c)
        core = c.get("openblas_corename", "?")
        if c.get("env_OPENBLAS_CORETYPE", "(unset)") == "(unset)":
            ob_best, best_name = r, core
        else:
            ob_hsw, hsw_name = r, core
    if not ctx and thr_ctx:  # the filter matched thr/ rows only
        ctx = dict(thr_ctx, nn_threads="(no rows run)", pinned_cpus="(no rows run)")
        nn_ctx = []
    else:
        nn_ctx = [ctx]
    reps = max([r["_reps"] for r in list(rows.values()) + list(thr_rows.values())] or [1])
    print("## nn.h benchmarks: %s" % ctx.get("nn_cpu", "?"))
    print()
    if make_cmd:
        print("Command: `%s`." % make_cmd)
    print("Runs (rebuilt from each process's environment, affinity and argv):")
    print()
    for c in nn_ctx + ([thr_ctx] if thr_ctx else []) + ob_ctx:
        print("- `%s`" % run_command(c))
    print()
    print("nn.h backends: %s (auto: %s, missing: %s); nn.h %s; SGEMM self-check: %s" % (
        ctx.get("nn_backends", "?"), ctx.get("nn_auto_backend", "?"), ctx.get("nn_backends_missing", "?"),
        ctx.get("nn_h_id", "?"), ctx.get("nn_sgemm_selfcheck", "?").strip().rstrip(";")))
    print("nn.h threads: %s in the main run (pinned cpus %s)%s." % (
        ctx.get("nn_threads", "?"), ctx.get("pinned_cpus", "?"),
        "; the thr/ run: %s (cpus %s, nn_cpu_cores %s)" % (
            " and ".join(thr_ctx.get("nn_threads", "?").split()), thr_ctx.get("pinned_cpus", "?"),
            thr_ctx.get("nn_cpu_cores", "?")) if thr_ctx else ""))
    for c in ob_ctx:
        print("OpenBLAS: %s, corename %s, %s thread(s), OPENBLAS_CORETYPE=%s." % (
            c.get("openblas_config", "?"), c.get("openblas_corename", "?"), c.get("openblas_num_threads", "?"),
            c.get("env_OPENBLAS_CORETYPE", "?")))
    print("Median of %d repetition(s) (randomly interleaved), wall-clock time, warm buffers; load average at "
          "start %s." % (reps, ", ".join("%.2f" % x for x in ctx.get("load_avg", [])) or "?"))
    print()
    print("### Kernels (time per call · bytes read + written per second)")
    print()
    kt, f1 = kernel_table(rows)
    print("\n".join(kt))
    print()
    print("### SGEMM, GFLOP/s (2·M·N·K per call; nn_sgemm_ws with preallocated workspace)")
    print()
    peaks = [(n.split("/")[2], gflops(r)) for n, r in rows.items() if n.startswith("peak/fma/")]
    if peaks:
        print("FMA peak of this core, measured in the same run (12 independent FMA chains): " +
              ", ".join("%s %.1f" % (be, g) for be, g in peaks if g) + " GFLOP/s.")
        print()
    gt, f2 = gemm_table(rows, ob_best, ob_hsw, best_name, hsw_name)
    print("\n".join(gt))
    qt = q8_table(rows)
    if qt:
        print()
        print("### int8 GEMM (u8 x s8 -> int32, exact), GOP/s (2·M·N·K per call), beside fp32 SGEMM (GFLOP/s)")
        print()
        print("\n".join(qt))
    f3 = False
    if thr_rows:
        counts = thr_ctx.get("nn_threads", "1").split()
        print()
        print("### Threads: %s (nn_set_threads(1) vs nn_set_threads(0), every core of the affinity), %s backend"
              % (" vs ".join("threads=%s" % n for n in counts), thr_ctx.get("nn_auto_backend", "?")))
        print()
        if len(counts) < 2:
            print("Only one core in this process's affinity: no multi-thread rows.")
            print()
        tt, f3 = threads_table(thr_rows, thr_ctx)
        print("\n".join(tt))
    if f1 or f2 or f3:
        print()
        print("† noisy: cv > %d %% across the repetitions (the median ignores a lone outlier) or wall time > "
              "%.2f× CPU time (the core was shared); rerun before quoting a close call." % (NOISY_CV * 100, NOISY_WALL))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
