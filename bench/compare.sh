#!/usr/bin/env bash
# nn.h vs PyTorch on Fashion-MNIST, the same number of threads each (one by default).
# `make compare [EPOCHS=N] [THREADS=T]` runs this after `make data` and `make examples`.  For each
# model (mlp, cnn) it runs, on the first T cores of this process's affinity (CPUS; core 0 for T=1):
#   PyTorch: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 taskset -c CPUS \
#              /usr/bin/python3 bench/torch_reference.py --model M --epochs N --data DIR --threads T
#            (torch.set_num_threads(T); OpenBLAS single-threaded under torch's threads, no
#            oversubscription; the CNN a second time with --channels-last)
#   nn.h:    taskset -c CPUS build/fashion_M --epochs N --data DIR --threads T
# each under /usr/bin/time -v, reads the last "RESULT key=value ..." line of its stdout and the
# "Maximum resident set size", and prints a markdown table (also saved to build/compare.md).
# Logs: build/compare/<framework>_<model>.{out,err,time}.
# Environment: EPOCHS (1), THREADS (1; 0 = every core of the affinity), LIMIT (0 = all 60k training
# images; N: the first N only, for a quick check), DATA (data/fashion-mnist), MODELS ("mlp cnn"),
# TORCH_PY (/usr/bin/python3), BIN (build: where fashion_mlp and fashion_cnn are),
# TORCH_CHANNELS_LAST (1: the CNN also runs in PyTorch with --channels-last, its faster NHWC layout;
# 0: NCHW only).
set -u
cd "$(dirname "$0")/.."

EPOCHS=${EPOCHS:-1}
DATA=${DATA:-data/fashion-mnist}
MODELS=${MODELS:-mlp cnn}
TORCH_PY=${TORCH_PY:-/usr/bin/python3}
BIN=${BIN:-build}
THREADS=${THREADS:-1}
LIMIT=${LIMIT:-0}
OUT=build/compare
mkdir -p "$OUT"

# the cores this process may run on (its affinity), one number a line
cpus_allowed() {
    local r a b
    for r in $(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status | tr ',' ' '); do
        a=${r%-*}; b=${r#*-}
        seq "$a" "$b"
    done
}
allowed=$(cpus_allowed | wc -l)
[ "$allowed" -ge 1 ] || allowed=1
case $THREADS in
    ''|*[!0-9]*) echo "compare.sh: THREADS must be a whole number >= 0 (0 = every core), not '$THREADS'" >&2; exit 2 ;;
esac
[ "$THREADS" -eq 0 ] && THREADS=$allowed
if [ "$THREADS" -gt "$allowed" ]; then
    echo "compare.sh: THREADS=$THREADS but this process may run on $allowed core(s)" >&2
    exit 2
fi
case $LIMIT in
    ''|*[!0-9]*) echo "compare.sh: LIMIT must be a whole number >= 0, not '$LIMIT'" >&2; exit 2 ;;
esac
# the first THREADS allowed cores (core 0 alone for THREADS=1, as before)
CPUS=$(cpus_allowed | head -n "$THREADS" | paste -sd, -)
[ -n "$CPUS" ] || CPUS=0
LIMIT_ARGS=()
[ "$LIMIT" -gt 0 ] && LIMIT_ARGS=(--limit "$LIMIT")

# value KEY FILE: KEY=value from the last RESULT line of FILE (empty if absent).
value() {
    grep '^RESULT ' "$2" 2>/dev/null | tail -n 1 | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1
}

rows=()
status=0
run() {  # run NAME MODEL LABEL CMD...
    local name=$1 model=$2 label=$3; shift 3
    local base="$OUT/${name}_${model}"
    echo ">>> $*" >&2
    /usr/bin/time -v -o "$base.time" "$@" > "$base.out" 2> >(tee "$base.err" >&2)
    local rc=$?
    wait  # let tee finish
    cat "$base.out"
    local fw spe inf acc rss train ep thr
    fw=$(value framework "$base.out"); fw=${fw:-$label}
    local be; be=$(value backend "$base.out"); [ -n "$be" ] && fw="$fw ($be)"
    local mf; mf=$(value memory_format "$base.out"); [ -n "$mf" ] && fw="$fw ($mf)"
    spe=$(value s_per_epoch "$base.out")
    train=$(value train_s "$base.out"); ep=$(value epochs "$base.out")
    if [ -z "$spe" ] && [ -n "$train" ] && [ -n "$ep" ]; then
        spe=$(awk -v t="$train" -v e="$ep" 'BEGIN { printf "%.3f", t / e }')
    fi
    inf=$(value infer_s "$base.out")
    thr=$(value threads "$base.out")
    acc=$(value test_acc "$base.out")
    rss=$(awk -F': *' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$base.time" 2>/dev/null)
    if [ $rc -ne 0 ] || [ -z "$acc" ]; then
        status=1
        rows+=("| $model | $fw | ${thr:-?} | failed (exit $rc, see $base.err) | | | ${rss:-} |")
    else
        if [ "${thr:-?}" != "$THREADS" ]; then  # same N on both sides, or the row says so
            echo "compare.sh: $name $model ran on ${thr:-?} thread(s), not $THREADS" >&2
            status=1
        fi
        rows+=("| $model | $fw | ${thr:-?} | ${spe:-?} | ${inf:-?} | $acc | ${rss:-?} |")
    fi
}

for m in $MODELS; do
    run torch "$m" torch env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \
        taskset -c "$CPUS" "$TORCH_PY" bench/torch_reference.py --model "$m" --epochs "$EPOCHS" --data "$DATA" \
        --threads "$THREADS" ${LIMIT_ARGS[@]+"${LIMIT_ARGS[@]}"}
    if [ "$m" = cnn ] && [ "${TORCH_CHANNELS_LAST:-1}" = 1 ]; then
        # PyTorch's faster CPU layout (NHWC in memory, like nn.h): opt-in in PyTorch, shown too.
        run torch_cl "$m" torch env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \
            taskset -c "$CPUS" "$TORCH_PY" bench/torch_reference.py --model "$m" --epochs "$EPOCHS" --data "$DATA" \
            --threads "$THREADS" ${LIMIT_ARGS[@]+"${LIMIT_ARGS[@]}"} --channels-last
    fi
    run nn "$m" nn.h taskset -c "$CPUS" "$BIN/fashion_$m" --epochs "$EPOCHS" --data "$DATA" \
        --threads "$THREADS" ${LIMIT_ARGS[@]+"${LIMIT_ARGS[@]}"}
done

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
fam=$(lscpu | sed -n 's/^CPU family: *//p' | head -n 1)
mod=$(lscpu | sed -n 's/^Model: *//p' | head -n 1)
{
    echo
    echo "## nn.h vs PyTorch, Fashion-MNIST, $EPOCHS epoch(s), batch 32, threads=$THREADS each" \
        "(taskset -c $CPUS)$([ "$LIMIT" -gt 0 ] && echo ", first $LIMIT training images")"
    echo
    echo "CPU: $cpu (family $fam, model $mod); threads=$THREADS: PyTorch torch.set_num_threads($THREADS)" \
        "with OPENBLAS_NUM_THREADS=1, nn.h --threads $THREADS"
    echo
    echo "| model | framework | threads | s/epoch | infer_s (10k, batch 32) | test_acc | peak RSS MB |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
} | tee build/compare.md
exit $status
